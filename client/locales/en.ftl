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
onboarding-fingerprint-help = Read it out to the admin, who compares it and approves you. Then click "Sync".
onboarding-working = One moment…

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
