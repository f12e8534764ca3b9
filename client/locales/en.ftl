# Ledgerline — the desktop app's words, English.
# Every message here has its Polish twin in pl.ftl; the build refuses a catalog that lacks one.

app-title = Ledgerline
app-tagline = The encrypted accounting office: chat, customers, documents and tasks.

## Onboarding
onboarding-create = Found an office
onboarding-join = Join an office
onboarding-relay = Server (relay) address
onboarding-firm = Office name
onboarding-me = Your name
onboarding-code = Invitation code
onboarding-create-submit = Found
onboarding-join-submit = Join
onboarding-fingerprint = This device's fingerprint
onboarding-fingerprint-help = Read it out to the admin, who compares it and approves you.
onboarding-recovery = Your recovery key
onboarding-recovery-help = Write it down and keep it somewhere safe (e.g. the office safe). It is shown only now. If you lose this device, this key brings your whole history back on a new one ("Recover" when the app first starts).
onboarding-recovery-saved = I have written it down — continue
onboarding-recover = Recover
onboarding-recover-help = Lost your device? Enter the recovery key you wrote down when you joined. Your previous devices are cut off, and your whole history comes back to this one.
onboarding-recovery-input = Recovery key
onboarding-recover-submit = Recover my account
onboarding-working = One moment…
onboarding-continue = Continue

## The main window
nav-customers = Customers
nav-search = Search customers
nav-add-customer = Add a customer
nav-sync = Sync
nav-synced = Synced: { $messages ->
    [one] { $messages } new message
   *[other] { $messages } new messages
}
nav-language = Language
nav-signed-in = { $me } · { $firm }

customer-name = Company name
customer-nip = NIP (tax id)
customer-add-submit = Add
customer-none = No customers yet. Add the first one.
customer-pick = Pick a customer from the list.
customer-lead = lead

tab-timeline = Timeline
tab-chat = Chat
tab-tasks = Tasks

timeline-empty = Nothing here yet.
timeline-kind-message = Message
timeline-kind-note = Note
timeline-kind-task = Task
timeline-kind-event = Event
timeline-kind-document = Document

chat-empty = No messages yet. Write the first one.
chat-placeholder = Write a message…
chat-send = Send
chat-waiting = (waiting for its key)
chat-deleted = (deleted)

task-title = Task
task-due = Due
task-add-submit = Add task
task-none = No tasks.
task-open = open
task-done = done

error-title = That did not work

## Sections
nav-leads = Leads
nav-board = Tasks
nav-calendar = Calendar
nav-office = Office
nav-audit = Audit
nav-settings = Settings
nav-global-search = Search everything…

tab-documents = Documents

chat-reply = Reply
chat-edit = Edit
chat-delete = Delete
chat-edited = (edited)
chat-replying = Replying to
chat-editing = Editing

doc-drop = Drop files here to encrypt and upload them.
doc-year = Year they concern
doc-col-name = Name
doc-col-size = Size
doc-col-year = Year
doc-col-added = Added
doc-none = No documents.
doc-download = Download
doc-uploaded = Encrypted and uploaded.
doc-saved = Saved: { $path }

## Task board and calendar
board-column-open = To do
board-column-delegated = Delegated (waiting)
board-column-done = Done
board-delegated = delegated
board-rolling = rolling
board-recurring = recurring
board-mark-done = Done
calendar-month = Month
calendar-week = Week
calendar-today = Today

## Leads
lead-add-submit = Add lead
lead-none = No leads.
lead-convert = Make a customer
lead-stage-new = new
lead-stage-contacted = contacted
lead-stage-offer = offer sent
lead-stage-won = won
lead-stage-lost = lost

## Search
search-title = Results for "{ $query }"
search-none = Nothing found.
search-kind-message = message
search-kind-file = customer
search-kind-document = document
search-kind-note = note

## Office
office-members = Members and devices
office-member = Person
office-role = Role
office-fingerprint = Fingerprint
office-devices = Devices
office-files = Customers
office-you = you
office-revoked = revoked
office-revoke = Revoke
office-invite = Invite
office-invite-name = The new person's name
office-invite-code = Invitation code (hand it over in person):
office-invitations = Open invitations
office-expires = valid until { $when }
office-approve = Approve
office-approve-name = Who is joining
office-approve-fingerprint = The fingerprint they read out
office-approve-help = Compare the fingerprint the person sees on their screen before approving: a different one means someone is impersonating them.
office-access = Access to customers
office-access-team = team { $team }
office-access-via = has access through a team or a cover
office-grant = Give access
office-remove-access = Remove access
office-covers = Absence cover
office-cover-line = Away: { $absent }; covering: { $colleague }; from { $from } to { $until } inclusive
office-cover-absent = Away
office-cover-colleague = Covering
office-cover-from = From
office-cover-until = Until (inclusive)
office-cover-grant = Arrange cover
office-cover-end = End now
office-rotation-pending = An earlier revocation did not finish replacing keys; the next sync finishes it.
cover-state-planned = planned
cover-state-active = active
cover-state-expired = expired
cover-state-ended = ended
role-admin = admin
role-member = member
role-auditor = auditor

revoke-title = Revoke { $name }?
revoke-plan-devices = { $count ->
    [one] { $count } device is cut off from the server at once
   *[other] { $count } devices are cut off from the server at once
}
revoke-plan-keys = { $count ->
    [one] { $count } member key gets a new version
   *[other] { $count } member keys get new versions
}
revoke-plan-files = { $count ->
    [one] { $count } customer gets a new key:
   *[other] { $count } customers get new keys:
}
revoke-warning = This cannot be undone: the person can come back only through a new invitation.
revoke-confirm = Revoke { $name }
revoke-progress-keys = New member keys
revoke-progress-files = New customer keys
revoke-done = Done: { $files } customers and { $keys } member keys replaced. The server refuses the revoked devices.
dialog-close = Close
dialog-cancel = Cancel

## Audit
audit-export = Export for an auditor
audit-out = Bundle file
audit-from = From day
audit-to = To day
audit-for = Names for the auditor
audit-no-names = no names (ids only)
audit-export-submit = Export
audit-exported = Bundle written: { $entries } log entries, { $checkpoints } checkpoints.
audit-verify = Verify a bundle (offline)
audit-bundle = Bundle file to check
audit-verify-submit = Verify
audit-verified = The bundle is genuine: { $size } entries ({ $entries } whole), { $checkpoints } checkpoints, { $roster } roster events. Every signature, checkpoint and root checks out.
audit-rotation = Rotation complete after { $what } ({ $at }): new keys for { $files } customers, { $keys } member keys.
audit-ended-member_removed = the removal of { $who } from the office
audit-ended-device_revoked = the revocation of device { $device } of { $who }
audit-ended-file_access_removed = the end of { $who }'s access to customer { $file }
audit-ended-cover_expired = the end of { $colleague }'s cover for { $who }
audit-ended-cover_ended_early = the early end of { $colleague }'s cover for { $who }
audit-filter-who = Who
audit-filter-what = What
audit-rows = Showing { $shown } of { $total }
audit-col-time = When (UTC)
audit-col-who = Who
audit-col-what = What
audit-col-subjects = Concerning

## Settings
settings-relay = Server (relay) address
settings-relay-help = A new address is kept only once the server there serves this office's log and roster, and both check out.
settings-save = Save
settings-saved = Saved.
settings-store = Data on this computer
settings-store-keyring = The local store is encrypted with a key from the system keyring.
settings-store-passphrase = The local store is encrypted with a key protected by a passphrase (Argon2id).
settings-fingerprint = Your fingerprint

## The live channel
live-online = ● live
live-offline = ○ offline, retrying in { $seconds } s
live-revoked = This device has been revoked

## Waiting for approval
waiting-title = Waiting for approval
waiting-help = An admin of "{ $firm }" compares this fingerprint with the one you read out and approves you. This window moves on by itself.
waiting-check = Check now

## Dialogs
doc-choose = Choose files…
choose = Choose…
doc-preview = Preview

## The local store's passphrase
passphrase-why = This computer has no system keyring: the office's data on it is encrypted with a passphrase you choose now (at least 8 characters). Nobody can open it without — you neither.
passphrase-new = New passphrase
passphrase-repeat = Repeat the passphrase
passphrase-old = Current passphrase
passphrase-mismatch = The passphrases differ.
passphrase-change = Change the passphrase
passphrase-change-submit = Change
passphrase-changed = Passphrase changed.
unlock-help = The office's data on this computer is encrypted. Give the passphrase to open it.
unlock-passphrase = Passphrase
unlock-submit = Open

## Notes, attachments, devices
note-placeholder = A note about the customer (seen by everyone with access)…
note-add = Add note
chat-drop-hint = Drop a file on the conversation to encrypt and attach it.
office-this-device = this device
office-revoke-device = Revoke device
revoke-device-title = Revoke device { $device } ({ $name })?
revoke-device-help = For a lost or stolen computer: the server refuses this device at once. { $name } stays in the office with a new key, and the customers that key opened get new keys.

## The access log's actions (keyed by the verifier's English words)
audit-action-changed-the-roster = changed the roster
audit-action-created-a-room = created a room
audit-action-changed-a-room-s-members = changed a room's members
audit-action-sent-a-message = sent a message
audit-action-read-conversation-history = read conversation history
audit-action-wrote-a-record = wrote a record
audit-action-read-records = read records
audit-action-shared-a-member-key = shared a member key
audit-action-fetched-member-keys = fetched member keys
audit-action-shared-a-file-key = shared a file key
audit-action-shared-a-file-key-with-a-team = shared a file key with a team
audit-action-made-a-new-team-key = made a new team key
audit-action-shared-a-team-key = shared a team key
audit-action-fetched-team-keys = fetched team keys
audit-action-fetched-file-keys = fetched file keys
audit-action-started-a-new-key-epoch = started a new key epoch
audit-action-fetched-older-file-keys = fetched older file keys
audit-action-uploaded-a-document = uploaded a document
audit-action-downloaded-a-document = downloaded a document
audit-action-opened-a-document = opened a document
audit-action-opened-a-conversation-on-the-device = opened a conversation on the device
audit-action-erased-a-customer-file = erased a customer file

## Reply templates
reply-title = Reply templates
reply-help = Answers the office gives often. In the text: {"{"}klient{"}"} (the customer's name), {"{"}termin{"}"} (a date), {"{"}kwota{"}"} (an amount in złoty).
reply-personal = mine
reply-firm = the office's
reply-only-mine = only for me
reply-name = Name
reply-body = Text
reply-save = Save template
reply-delete = Delete
reply-pick = Reply template…
reply-insert = Insert
reply-deadline = Deadline
reply-amount = Amount, e.g. 1234,50

## Teams
office-teams = Teams
office-teams-help = A customer given to a team is open to everyone in it. Team names never reach the server.
office-team-name = Team name
office-team-create = Create team
office-team-add = Add to team
office-team-remove = Take out of the team (the team's keys and its customers' keys are replaced)

## Offers
timeline-kind-offer = Offer
offer-status-draft = draft
offer-status-sent = sent
offer-status-accepted = accepted
offer-status-rejected = rejected
tab-offers = Offers
offer-none = No offers.
offer-service = Service
offer-billing = Billing
offer-billing-monthly = monthly
offer-billing-once = one-off
offer-net = Net
offer-vat = VAT
offer-vat-amount = VAT amount
offer-gross = Gross
offer-line-add = Add a service
offer-line-remove = Remove the service
offer-valid-until = Valid until
offer-add-submit = Make the offer
offer-number = Offer { $number }
offer-valid-through = valid through { $day }
offer-expired = expired
offer-total-monthly = Total monthly
offer-total-once = Total one-off
offer-send = Send (PDF to documents)
offer-accept = Mark accepted
offer-reject = Mark rejected
offer-pdf-stored = The offer's PDF is in the customer's documents.

## Conversation with the customer (guests)
tab-conversation = Customer
timeline-kind-conversation = Customer conversation
conversation-staff-help = The conversation with the customer's people (guests). Internal messages are seen by the office only.
conversation-internal = internal
conversation-internal-only = Office only
conversation-internal-placeholder = Internal remark (the customer will not see it)…
conversation-drop-hint = Drop a file on the conversation to encrypt it and share it here.
guest-invite = Invite a guest
guest-invite-name = The guest's full name
guest-invite-code = Invitation code (valid 7 days) — hand it over a channel you trust:
guest-signed-in = { $me } · guest of { $firm }
guest-title = Conversation with { $firm }
guest-help = Here you write with your accounting office and exchange documents. Everything is encrypted on your device.

## Mail intake
timeline-kind-mail = E-mail
search-kind-mail = e-mail
mail-category-invoice = Invoice
mail-category-bank_statement = Bank statement
mail-category-tax_office = Tax office
mail-category-payroll = Payroll
mail-category-other = Other
nav-mail = Mail
tab-mail = E-mails
mail-title = Office mail
mail-connect-title = Connect a mailbox
mail-connect-help = Mail is read on this computer (IMAP over TLS) and stored encrypted in customers' files. The password stays in the system keyring, never on the server.
mail-host = IMAP server
mail-port = Port
mail-user = Login
mail-password = Password
mail-folder = Folder
mail-ca-file = Office CA certificate (PEM file, optional)
mail-connect = Connect
mail-password-in-keyring = (password in the system keyring)
mail-password-in-store = (password in this device's encrypted store)
mail-fetch = Fetch mail
mail-fetching = Fetching…
mail-summary = New messages: { $read }; into customer files: { $imported }; to the inbox: { $inbox }; seen before: { $duplicates }; unreadable: { $failed }.
mail-unreadable = Message UID { $uid } is unreadable
mail-renumbered = { $mailbox }: the server renumbered the folder; read again, nothing doubled
mail-inbox = To assign
mail-inbox-empty = Every message is in a customer's file.
mail-pick-customer = Pick a customer
mail-rule-none = No rule
mail-rule-from = Always from { $from }
mail-rule-domain = Always from this domain
mail-rule-subject = Always with this subject
mail-assign = Assign
mail-rules = Office rules
mail-rules-none = No rules: mail goes to customers by sender address, domain or NIP.
mail-rule-on-from = Sender
mail-rule-on-domain = Domain
mail-rule-on-subject = Subject
mail-rule-on-attachment = Attachment
mail-rule-remove = Remove
mail-none = No e-mail from this customer.
mail-no-subject = (no subject)
mail-connect-another = Connect another mailbox
mail-basis-rule = office rule
mail-basis-address = sender's address on the customer's card
mail-basis-domain = sender's domain on the customer's card
mail-basis-nip = NIP in the subject or an attachment's name
mail-basis-manual = assigned by hand
mail-basis-none = nothing matches
mail-basis-ambiguous = matches several customers

## KSeF intake
timeline-kind-invoice = KSeF invoice
search-kind-invoice = invoice
invoice-direction-sales = sales
invoice-direction-purchase = purchase
tab-ksef = KSeF invoices
ksef-token-title = Connect to KSeF
ksef-token-change = Change the KSeF token
ksef-token-help = The customer's KSeF token is checked by logging in to KSeF, then kept encrypted in the customer's file (colleagues with access fetch invoices with it). The Ledgerline server never sees it.
ksef-token = KSeF token
ksef-nip = NIP
ksef-nip-card = from the customer's card
ksef-environment = Environment
ksef-env-prod = production
ksef-env-demo = pre-production (demo)
ksef-env-test = test
ksef-since = Fetch from
ksef-token-save = Check and save
ksef-checking = Checking with KSeF…
ksef-settings = NIP { $nip }, { $environment } environment, invoices from { $since }.
ksef-sync = Fetch invoices from KSeF
ksef-syncing = Fetching from KSeF…
ksef-summary = New sales invoices: { $sales }; purchase: { $purchases }; already in the file: { $known }; payment tasks: { $tasks }.
ksef-stopped = Stopped: { $reason }. The next fetch goes on from here.
ksef-none = No KSeF invoices in this file.
ksef-unreadable = unreadable
ksef-col-issued = Issued
ksef-col-direction = Kind
ksef-col-number = Number
ksef-col-party = Counterparty
ksef-col-net = Net
ksef-col-vat = VAT
ksef-col-gross = Gross
ksef-col-due = Due

## Failures. A command's failure names its words: error-KIND-REASON where this catalog has
## it, else error-KIND (the CLI's --json `code` and `reason`, with "-" for "_"). The English
## detail is shown folded under error-details.
error-details = Details (for support)
error-unknown = Something unexpected failed.
error-relay-unreachable = The server cannot be reached. Check the network connection and try again.
error-relay-unreachable-timeout = The server did not answer in time. Check the network connection; the app will try again by itself.
error-relay-unreachable-closed = The server closed the connection (for example while restarting); the app will try again by itself.
error-relay-unreachable-dropped = The connection to the server was cut; the app will try again by itself.
error-relay-refused = The server refused the request.
error-relay-refused-revoked-device = This device has been revoked: it no longer has access to the office.
error-relay-refused-unknown-device = The server does not know this device or this office.
error-relay-refused-stale-request = This computer's clock is behind: set the correct time and try again.
error-relay-refused-future-request = This computer's clock is ahead: set the correct time and try again.
error-relay-refused-rate-limited = Too many requests at once: wait a moment and try again.
error-relay-refused-forbidden = Your role in the office does not allow this.
error-relay-refused-guest-forbidden = A guest can use only their own conversation with the office.
error-relay-refused-erased = This customer file has been erased.
error-relay-refused-storage-full = The server's disk is full: tell the office's administrator.
error-relay-refused-message-too-large = The message is too long: send the text as a document.
error-relay-refused-body-too-large = This is larger than the server accepts.
error-relay-refused-legal-hold = This customer file is under legal hold: nothing in it can be removed now.
error-relay-refused-version-conflict = Someone changed this at the same moment: refresh and try again.
error-relay-refused-not-found = The server does not have what was asked for.
error-relay-garbage = The server answered something invalid. Nothing was changed.
error-integrity = Integrity check failed: data from the server is not what a member of the office signed. Nothing was changed; tell the office's administrator.
error-fingerprint-mismatch = The fingerprints differ: do not approve. Compare the fingerprint with the person by phone or in person.
error-onboarding = The invitation or the request to join is not valid.
error-not-found = Not found.
error-not-allowed = Your role in the office does not allow this.
error-wrong-key = Wrong passphrase.
error-keyring = The system keyring that holds this profile's key is not available.
error-keyring-missing = The system keyring no longer holds this profile's key.
error-store = The local database failed.
error-store-too-new = This profile was saved by a newer Ledgerline: update the app.
error-invalid = This request is not valid.
error-invalid-message-too-long = The message is too long: send the text as a document.
error-invalid-preview-not-image = Only images (PNG, JPEG, GIF, WebP) are shown here.
error-invalid-preview-too-big = Too big to show here: download it instead.
error-invalid-passphrase-short = A passphrase needs at least 8 characters.
error-invalid-passphrase-needed = No system keyring is available for the key: choose a passphrase.
error-invalid-names-needed = The office's name and yours are both needed.
error-invalid-name-needed = The new person's name is needed.
error-invalid-role = A role is administrator, member or auditor.
error-invalid-file-id = That is not a customer file.
error-invalid-empty-message = An empty message is not sent.
error-invalid-empty-edit = An edit cannot empty a message: delete it instead.
error-invalid-empty-note = An empty note is not kept.
error-invalid-day = A day is written YYYY-MM-DD.
error-invalid-time = A time is a day (YYYY-MM-DD) or a day and an hour.
error-invalid-cover-order = The cover ends before it starts.
error-invalid-bundle-name = Give the bundle a file name.
error-invalid-unreadable = The file cannot be read.
error-invalid-unwritable = The file cannot be written there: check the folder and the free space.
error-invalid-file-name = The file's name has characters that cannot be read: rename it.
error-invalid-email = That is not an e-mail address.
error-invalid-nip = That is not a valid NIP: check the digits (10, the last a check digit).
error-invalid-regon = That is not a valid REGON: check the digits (9 or 14, the last a check digit).
error-invalid-template-id = A template's id is lowercase letters, digits and dashes (e.g. zus-15).
error-invalid-rule-no-deadline = This rule gives no deadline in the next year.
error-invalid-not-a-file = Only a file can be chosen, not a folder.
error-invalid-guest-hours = A guest invitation is valid from 1 to 720 hours.
error-invalid-ksef-environment = Unknown KSeF environment.
error-invalid-mail-rule = Unknown rule for a message.
error-invalid-calendar-span = The calendar shows at most two months at once.
error-invalid-offer-line = An offer line is not complete: service, billing, net amount and VAT rate.
error-invalid-language = Unknown language.
error-invalid-invite-code = That is not a valid invitation code: check it with the person who sent it.
error-invalid-recovery-key = That is not a valid recovery key: check every group of characters.
error-invalid-title-needed = A title is needed.
error-invalid-event-order = An event must end after it starts.
error-invalid-offer-past = An offer's validity cannot end in the past.
error-invalid-offer-expired = This offer's validity has passed: make a new one.
error-invalid-ksef-token = That is not a KSeF token.
error-invalid-nip-needed = The customer's card has no NIP: enter it.
error-invalid-mailbox-needed = A mailbox needs a server and a user name.
error-invalid-rekeyed-during-upload = Someone's access to this customer file was revoked during the upload: upload the document again.
error-queued = The server is not taking it right now: it waits on this computer and is sent at the next sync.
error-mail-server = The mail server failed.
error-mail-server-unreachable = The mail server cannot be reached.
error-mail-server-login = The mail server refused the login: check the user name and password.
error-ksef = KSeF failed.
error-ksef-unreachable = KSeF cannot be reached.
error-ksef-login = KSeF refused the login: check the token and the NIP.
error-ksef-rate-limited = KSeF limits requests now: try again later.
error-ksef-rejected = KSeF refused the request.
error-app = The app failed.
error-app-stopped = The app's background work stopped: restart the app.
error-app-no-profile = No profile yet: found or join an office first.
error-app-dialog = The dialog closed unexpectedly.
error-app-no-downloads = There is no Downloads folder.
error-audit-finding = The access log does not verify: do not rely on it.
error-audit-finding-malformed = This is not a readable Ledgerline access log bundle.
error-audit-finding-fork = The access log forks: the server showed different histories.
error-audit-finding-bad-signature = An entry's signature does not verify: the log was altered.
error-audit-finding-root-mismatch = The log does not match its signed checkpoint: the log was altered.
error-audit-finding-checkpoint-signature = The signature of the log's checkpoint does not verify.
error-audit-finding-out-of-order = The entries are out of order: the log was altered.
