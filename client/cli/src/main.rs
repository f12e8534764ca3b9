//! `ledgerline`: the Ledgerline client on the command line. Every command works on one
//! profile directory (one device of one member), prints text for people or JSON with
//! `--json`, and exits with a code scripts can trust (see `ledgerline --help`).
#![forbid(unsafe_code)]

mod ksef;

use clap::{Args, Parser, Subcommand};
use ledgerline_client_core::chrono::NaiveDate;
use ledgerline_client_core::keystore;
use ledgerline_client_core::mail::imap::MailboxConfig;
use ledgerline_client_core::mail::sort::{Rule, RuleOn};
use ledgerline_client_core::profile::{
    parse_role, ClientError, Conversation, DocumentManifest, ErrorKind, Phase, PlacedMail, Profile,
    Progress, RotationProgress, RotationReport, RuleView, Unlock, WatchEvent,
};
use ledgerline_client_core::profile::{today, CustomerCard, EventSpec, TaskSpec, CUSTOMER_CARD};
use ledgerline_client_core::protocol::ids::{FileId, MemberId};
use ledgerline_client_core::protocol::retention::RetentionPolicy;
use ledgerline_client_core::room::RoomEvent;
use ledgerline_client_core::transport::RelayError;
use ledgerline_client_core::when::{self, DEFAULT_ZONE};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use zeroize::Zeroizing;

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   any other failure
  2   usage error
  3   relay unreachable (nothing was lost; retry later)
  4   relay refused the request
  5   integrity failure: the relay or a peer sent data that does not verify (and
      `audit verify`: the bundle does not verify; the message names the first finding)
  6   not found (profile, file, member, join request)
  7   not allowed (not an admin, not yet approved, no access)
  8   wrong store passphrase or key, or the OS keyring failed
  9   the mail server is unreachable or refused the login (`mail`)
  10  KSeF is unreachable, refused the login, or a sync stopped early (`ksef`;
      what was fetched is kept)
  75  queued: the message or edit is kept on this device; `ledgerline sync` sends it

Environment:
  LEDGERLINE_PROFILE     profile directory (instead of --profile)
  LEDGERLINE_RELAY       relay URL for this run (instead of --use-relay)
  LEDGERLINE_PASSPHRASE  passphrase of the encrypted local store; without it a new profile
                         keeps a random key in the OS keyring, else the passphrase is asked
  LEDGERLINE_CA_FILE     PEM file of extra CA certificates for an https:// relay
  LEDGERLINE_MAIL_PASSWORD  the mailbox password for `mail connect` (else
                         --password-stdin, else it is asked)
  LEDGERLINE_KSEF_TOKEN  the KSeF token for `ksef token set` (else --token-stdin, else
                         it is asked)
  LEDGERLINE_KSEF_URL    KSeF API address instead of the environment's (https://; a test
                         server or an office proxy)
  LEDGERLINE_KSEF_CA_FILE  PEM file of an extra CA for that address";

/// Ledgerline client: end-to-end encrypted chat and customer files for accounting offices.
#[derive(Parser, Debug)]
#[command(name = "ledgerline", version, after_help = EXIT_CODES)]
struct Cli {
    /// Profile directory: one device of one member of one firm.
    #[arg(long, env = "LEDGERLINE_PROFILE", global = true)]
    profile: Option<PathBuf>,
    /// Print JSON instead of text (errors too, on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Do not keep a new profile's store key in the OS keyring: ask for a passphrase.
    #[arg(long, env = "LEDGERLINE_NO_KEYRING", global = true)]
    no_keyring: bool,
    /// Use this relay URL instead of the profile's for this run.
    #[arg(long = "use-relay", env = "LEDGERLINE_RELAY", global = true)]
    relay: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Firm administration.
    #[command(subcommand)]
    Firm(FirmCmd),
    /// Invitations (admin).
    #[command(subcommand)]
    Invite(InviteCmd),
    /// Join a firm with an invitation code; prints the fingerprint to read to the admin.
    Join {
        /// Relay URL, e.g. http://127.0.0.1:8448.
        #[arg(long)]
        relay: String,
        /// The invitation code (LL-...).
        #[arg(long)]
        code: String,
        /// Your name as colleagues will see it.
        #[arg(long)]
        me: String,
    },
    /// Admit a joiner after comparing the fingerprint they read out (admin).
    Approve {
        /// The invitation's name or the joiner's own.
        name: String,
        /// The fingerprint the joiner read out; asked on a terminal when omitted.
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// Members of the firm: list them, or revoke one (offboarding).
    #[command(subcommand)]
    Member(MemberCmd),
    /// Devices: list them, or link a new device of your own.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Your key backup: every key you hold, sealed to your recovery key, kept by the relay.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Absence cover: a colleague works in an absent member's files for a time (admin).
    #[command(subcommand)]
    Cover(CoverCmd),
    /// Retention: how long a customer file keeps its conversation and documents; legal hold.
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// Customers (CRM): cards, notes, the timeline.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Leads: prospective customers, by stage; converted keeping their history.
    #[command(subcommand)]
    Lead(LeadCmd),
    /// Tasks: own, assigned, delegated, rolling, recurring.
    #[command(subcommand)]
    Task(TaskCmd),
    /// Deadline templates (VAT, ZUS, PIT…) applied to customers as recurring tasks.
    #[command(subcommand)]
    Template(TemplateCmd),
    /// Calendar: task deadlines by day, in Europe/Warsaw.
    #[command(subcommand)]
    Cal(CalCmd),
    /// Customer files.
    #[command(subcommand)]
    File(FileCmd),
    /// Offers to leads: services, monthly or once, with VAT; exact totals.
    #[command(subcommand)]
    Offer(OfferCmd),
    /// Reply templates: answers given again and again, with placeholders.
    #[command(subcommand)]
    Reply(ReplyCmd),
    /// Teams of staff (payroll, VAT, …): a customer file granted to a team is read by
    /// whoever is in it. Team names never reach the relay.
    #[command(subcommand)]
    Team(TeamCmd),
    /// The conversation of a customer file.
    #[command(subcommand)]
    Chat(ChatCmd),
    /// Internal rooms (team conversations) and direct chats.
    #[command(subcommand)]
    Room(RoomCmd),
    /// Guests: a customer invited into their own file's conversation, and nowhere else.
    #[command(subcommand)]
    Guest(GuestCmd),
    /// A customer file's conversation with its guests (the customer's people): messages,
    /// internal notes to staff, shared documents. A guest leaves out --file.
    #[command(subcommand, visible_alias = "conv")]
    Conversation(ConversationCmd),
    /// Documents of a customer file (encrypted on this device, streamed).
    #[command(subcommand)]
    Doc(DocCmd),
    /// Mail intake: the office's mailbox read here over IMAP, each message sorted into its
    /// customer's file (encrypted like any record), attachments as documents.
    #[command(subcommand)]
    Mail(MailCmd),
    /// KSeF intake: each customer's e-invoices fetched from KSeF on this device with the
    /// customer's token, kept encrypted in its file (the XML as a document, plus what it
    /// says); purchase invoices due soon become tasks.
    #[command(subcommand)]
    Ksef(ksef::KsefCmd),
    /// Full-text search over this device's decrypted data.
    Search {
        /// Words to find (prefixes match; Polish diacritics optional).
        query: String,
        /// Most results.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Catch up with the relay and send the outbox, then exit (or keep following pushes).
    Sync {
        /// Stay connected and sync whenever the relay pushes something, until Ctrl-C or
        /// SIGTERM; one line (or JSON object) per event.
        #[arg(long)]
        watch: bool,
        /// The relay was restored from a backup: accept its (shorter) access log, say what
        /// it lost, and send again what this device wrote that it no longer has.
        #[arg(long, conflicts_with = "watch")]
        after_restore: bool,
    },
    /// This profile: firm, member, device, fingerprint.
    Whoami,
    /// Change the passphrase of this device's store (profiles without an OS keyring). The
    /// current one comes from LEDGERLINE_PASSPHRASE or is asked; the new one from
    /// LEDGERLINE_NEW_PASSPHRASE or is asked twice. Only the wrapping of the store key
    /// changes: nothing in the store is rewritten.
    Passphrase,
    /// The firm's verifiable access log: export a bundle, verify one offline.
    #[command(subcommand)]
    Audit(AuditCmd),
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Write an audit bundle for an auditor (admins and auditors): the log as the relay
    /// signed it, the roster and the checkpoints this device accepted.
    Export {
        /// Bundle file to write (JSON Lines).
        #[arg(long)]
        out: PathBuf,
        /// Entries received from this time on are included whole (2026-11-01,
        /// 2026-11-01T10:00:00Z or ms); the others as hashes, which still prove the log.
        #[arg(long)]
        from: Option<String>,
        /// Entries received before this time are included whole.
        #[arg(long)]
        to: Option<String>,
        /// Seal the names of members, files, documents and rooms to this member's devices
        /// (an auditor; name or id), so their report reads in names.
        #[arg(long, value_name = "MEMBER")]
        for_auditor: Option<String>,
    },
    /// Verify a bundle offline, without a profile or a relay, and print who did what when.
    /// Exit 0 only when every signature, checkpoint and root verifies.
    Verify {
        /// The bundle file.
        bundle: PathBuf,
        /// CSV instead of a table (with --json: one JSON object per line).
        #[arg(long)]
        csv: bool,
        /// Require the last checkpoint to be cosigned by a witness: `owner` (a device of the
        /// firm's owner, as the roster certifies it) or NAME=HEXKEY.
        #[arg(long, value_name = "owner|NAME=HEXKEY")]
        require_witness: Option<String>,
        /// Check each signature on its own with strict Ed25519 instead of in batches
        /// (slower; accepts exactly what the protocol's single verification accepts).
        #[arg(long)]
        strict: bool,
        /// Show names: open the bundle's name map with this profile's device (the
        /// auditor's, as given with `audit export --for-auditor`). Still offline.
        #[arg(long)]
        names: bool,
    },
}

#[derive(Subcommand, Debug)]
enum FirmCmd {
    /// Found a firm: this profile becomes its owner and first admin.
    Create {
        /// Relay URL, e.g. http://127.0.0.1:8448.
        #[arg(long)]
        relay: String,
        /// The firm's name (kept on this device only).
        #[arg(long)]
        firm: String,
        /// Your name.
        #[arg(long)]
        me: String,
    },
    /// Admin-assisted recovery on or off (admin): with it on, members' devices seal each
    /// new recovery key to the admins' devices, so that an admin can reprovision a member
    /// who lost both device and recovery key (`member reprovision`).
    RecoveryPolicy {
        /// `on` or `off`.
        state: String,
    },
}

#[derive(Subcommand, Debug)]
enum InviteCmd {
    /// Issue a one-time invitation code.
    Create {
        /// Who it is for (used again by `approve`).
        #[arg(long)]
        name: String,
        /// Role of the new member.
        #[arg(long, default_value = "member", value_parser = ["member", "admin", "auditor"])]
        role: String,
    },
}

#[derive(Subcommand, Debug)]
enum MemberCmd {
    /// List them as the verified roster has them.
    List,
    /// Offboard a member (admin): the relay refuses their devices at once, then every
    /// customer file they could read gets a new epoch for the others only. Interrupted,
    /// it resumes at the next `ledgerline sync` (or by running it again).
    Revoke {
        /// Member name or id.
        member: String,
    },
    /// Admin-assisted recovery of a member who lost their device and their recovery key.
    /// Without --fingerprint: prints a link code for the member's new device (`device join`).
    /// With it: admits that device after comparing fingerprints, revokes the member's
    /// other devices (with the full rotation) and sends it the key to restore from.
    Reprovision {
        /// Member name or id.
        member: String,
        /// The fingerprint the new device shows.
        #[arg(long)]
        fingerprint: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum RetentionCmd {
    /// Set a customer file's retention (admin): messages go --chat-months after the relay
    /// received them, documents --docs-years after the end of the year they concern
    /// (`doc upload --year`); 0 keeps them. Options left out keep their current value.
    /// The relay deletes what expires and logs each deletion for auditors; every device
    /// deletes its own copy at its next sync. A legal hold stops all deletion, erasure
    /// included.
    Set {
        /// File name or id.
        file: String,
        /// Months a message is kept (0: until the file is erased).
        #[arg(long)]
        chat_months: Option<u16>,
        /// Years a document is kept after the end of the year it concerns (0: until the
        /// file is erased).
        #[arg(long)]
        docs_years: Option<u16>,
        /// Put the file under legal hold.
        #[arg(long, conflicts_with = "no_legal_hold")]
        legal_hold: bool,
        /// Lift the legal hold.
        #[arg(long)]
        no_legal_hold: bool,
    },
    /// Show a customer file's retention, or every file's with a policy.
    Show {
        /// File name or id; all files when omitted.
        file: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CoverCmd {
    /// Let COLLEAGUE work in ABSENT's customer files from --from until --until (admin).
    /// The colleague's keys are ready at once; the relay lets them in at the start and
    /// refuses them from the expiry by itself; the next admin sync after it records the
    /// end and rotates the keys. Dates are read in Europe/Warsaw: `--until 2026-12-14`
    /// includes the 14th. Running it again with the same arguments finishes an
    /// interrupted grant.
    Grant {
        /// The member who is away (name or id).
        absent: String,
        /// The member who covers (name or id).
        #[arg(long)]
        colleague: String,
        /// Start: a date (2026-12-01), a local time (2026-12-01 08:00) or RFC 3339;
        /// now when omitted.
        #[arg(long)]
        from: Option<String>,
        /// Expiry: a date (inclusive: the whole day), a local time or RFC 3339.
        #[arg(long)]
        until: String,
    },
    /// List the firm's absence covers, newest first.
    List,
    /// End a cover now (admin): the colleague is refused at once and the covered files get
    /// new keys. Interrupted, it resumes at the next `ledgerline sync`.
    End {
        /// The cover's id (see `ledgerline cover list`).
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
enum DeviceCmd {
    /// List the firm's devices as the verified roster has them.
    List,
    /// On a device you already use: print a one-time code to link a new device.
    Link,
    /// On the new device: join with the link code; prints this device's fingerprint.
    Join {
        /// Relay URL.
        #[arg(long)]
        relay: String,
        /// The link code (LL-...).
        #[arg(long)]
        code: String,
        /// A name for this device's profile (your name).
        #[arg(long)]
        me: String,
    },
    /// On the linking device: admit the new device after comparing its fingerprint.
    Approve {
        /// The fingerprint the new device shows.
        #[arg(long)]
        fingerprint: String,
    },
    /// Revoke a lost or stolen device (admin): the relay refuses it at once; its member
    /// gets a new member key and their customer files new epochs.
    Revoke {
        /// Device id, or its first 8+ hex digits (see `ledgerline device list`).
        device: String,
    },
    /// On a new device, after losing your only one: become your member again with your
    /// recovery key. Your other devices are revoked; your whole history reads again.
    Recover {
        /// Relay URL.
        #[arg(long)]
        relay: String,
        /// The recovery key you were shown when you joined (asked for on a terminal when
        /// omitted; or set LEDGERLINE_RECOVERY_KEY).
        #[arg(long)]
        recovery_key: Option<String>,
        /// Keep your other devices (only if you still have them: a lost one must go).
        #[arg(long)]
        keep_devices: bool,
    },
}

#[derive(Subcommand, Debug)]
enum BackupCmd {
    /// What the backup holds from this device.
    Status,
    /// Make a new recovery key (the old one stops working); printed once.
    NewKey,
}

/// A customer card's details (all optional, repeatable where a list).
#[derive(Args, Debug, Default)]
struct CardArgs {
    /// NIP (checked: 10 digits with a valid check digit; dashes and `PL` allowed).
    #[arg(long)]
    nip: Option<String>,
    /// REGON (9 or 14 digits, checked).
    #[arg(long)]
    regon: Option<String>,
    /// E-mail address (repeat for more).
    #[arg(long = "email")]
    emails: Vec<String>,
    /// Phone number (repeat for more).
    #[arg(long = "phone")]
    phones: Vec<String>,
    /// Contact person, e.g. "Jan Kowalski <jan@firma.pl>" (repeat for more).
    #[arg(long = "contact")]
    contacts: Vec<String>,
    /// Address (repeat for more).
    #[arg(long = "address")]
    addresses: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum CustomerCmd {
    /// Create a customer file with its card (admin).
    Add {
        /// Company name.
        name: String,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Customers and leads you can see.
    List,
    /// Change a field of a card: name, nip, regon, email, phone, address.
    Set {
        /// Customer file (name or id).
        file: String,
        /// Field.
        field: String,
        /// New value.
        value: String,
    },
    /// Dismiss the conflicting edits listed on a customer's card (after looking at them).
    Resolve {
        /// Customer file (name or id).
        file: String,
    },
    /// Add a note to a customer file.
    Note {
        /// Customer file (name or id).
        file: String,
        /// The note.
        text: String,
    },
    /// Everything about a customer in time order: messages, notes, tasks, documents.
    Timeline {
        /// Customer file (name or id).
        file: String,
        /// Show this many items, the newest.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only items before this cursor (the first item's `cursor` of the previous page,
        /// or a time in ms since the epoch).
        #[arg(long)]
        before: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum LeadCmd {
    /// Create a lead (admin): a customer file in stage `new`.
    Add {
        /// Company name.
        name: String,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Move a lead to a stage: new, contacted, offer, won, lost.
    Stage {
        /// Lead (name or id).
        lead: String,
        /// Stage.
        stage: String,
    },
    /// Convert a lead to a customer (same file, its history kept).
    Convert {
        /// Lead (name or id).
        lead: String,
    },
}

#[derive(Subcommand, Debug)]
enum TaskCmd {
    /// Add a task to a customer file, or (without --customer) to the office file for
    /// internal work (an admin's first such task creates it for all staff).
    Add {
        /// Title.
        title: String,
        /// Customer file (name or id).
        #[arg(long)]
        customer: Option<String>,
        /// Assign to a member (name or id); yourself by default.
        #[arg(long)]
        assign: Option<String>,
        /// Due day (YYYY-MM-DD).
        #[arg(long)]
        due: Option<String>,
        /// Recurrence, RFC 5545 RRULE (e.g. FREQ=MONTHLY;BYMONTHDAY=25).
        #[arg(long)]
        rrule: Option<String>,
        /// Move each due day to the next working day (weekends, Polish holidays).
        #[arg(long)]
        working_days: bool,
        /// Not done → carries over to the next working day.
        #[arg(long)]
        rolling: bool,
        /// Checklist item (repeat for more).
        #[arg(long = "check")]
        checklist: Vec<String>,
    },
    /// Tasks you can see (assigned to you, or to someone you cover for, with --mine).
    List {
        /// Only one customer file.
        #[arg(long)]
        customer: Option<String>,
        /// Only yours (and those of members you cover for).
        #[arg(long)]
        mine: bool,
    },
    /// Mark a task done (a recurring task: its current occurrence).
    Done {
        /// Task id (or its first 6+ hex digits).
        task: String,
    },
    /// Delegate a task to a member; they accept or return it.
    Delegate {
        /// Task id.
        task: String,
        /// Member (name or id).
        member: String,
    },
    /// Accept a task delegated to you.
    Accept {
        /// Task id.
        task: String,
    },
    /// Return a task delegated to you, with a comment.
    Return {
        /// Task id.
        task: String,
        /// Why.
        #[arg(long)]
        comment: String,
    },
    /// Attach a document of the task's customer file (name or id; upload it first).
    Attach {
        /// Task id.
        task: String,
        /// Document name or id.
        document: String,
    },
    /// Dismiss the conflicting edits listed on a task (after looking at them).
    Resolve {
        /// Task id.
        task: String,
    },
    /// Tick (or with --undo untick) a checklist item (1 = the first).
    Check {
        /// Task id.
        task: String,
        /// Item number.
        item: usize,
        /// Untick.
        #[arg(long)]
        undo: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TemplateCmd {
    /// The deadline templates.
    List,
    /// Add a firm template or change one (a built-in one too) (admins).
    Set {
        /// Template id (lowercase, digits, dashes), e.g. zus-15.
        id: String,
        /// Title in Polish (the task's title).
        #[arg(long)]
        title: String,
        /// Title in English.
        #[arg(long)]
        title_en: Option<String>,
        /// RFC 5545 RRULE of the nominal day, e.g. FREQ=MONTHLY;BYMONTHDAY=15.
        #[arg(long)]
        rrule: String,
        /// What it is, with its legal basis.
        #[arg(long)]
        note: Option<String>,
    },
    /// Apply a template to a customer: its recurring task, due on working days.
    Apply {
        /// Template id (e.g. vat-monthly).
        template: String,
        /// Customer file (name or id).
        #[arg(long)]
        customer: String,
    },
}

#[derive(Subcommand, Debug)]
enum CalCmd {
    /// Add an event to a customer file, or (without --customer) to the office file
    /// (times in Europe/Warsaw).
    Add {
        /// Title.
        title: String,
        /// Customer file (name or id).
        #[arg(long)]
        customer: Option<String>,
        /// Start: "2026-12-03 10:00".
        #[arg(long)]
        start: String,
        /// End (an hour after the start when omitted).
        #[arg(long)]
        end: Option<String>,
        /// Recurrence, RFC 5545 RRULE (e.g. FREQ=WEEKLY;BYDAY=MO).
        #[arg(long)]
        rrule: Option<String>,
        /// Where.
        #[arg(long)]
        location: Option<String>,
    },
    /// Cancel one occurrence of a recurring event.
    Except {
        /// Event id (or its first 6+ hex digits).
        event: String,
        /// The day of the occurrence (YYYY-MM-DD).
        day: String,
    },
    /// A month: events and deadlines day by day.
    Month {
        /// The month (YYYY-MM); this month when omitted.
        #[arg(long)]
        month: Option<String>,
    },
    /// A week (Monday to Sunday): events and deadlines day by day.
    Week {
        /// Any day of the week (YYYY-MM-DD); this week when omitted.
        #[arg(long)]
        day: Option<String>,
    },
    /// Write the calendar as iCalendar (.ics) for other calendar programs.
    Export {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Task deadlines and events day by day.
    Agenda {
        /// First day (YYYY-MM-DD); today when omitted.
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD); 30 days on when omitted.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum FileCmd {
    /// Create a customer file (admin); prints its id.
    Create {
        /// Name (encrypted; the relay never sees it).
        name: String,
    },
    /// Customer files this member can see.
    List,
    /// Give a member, or a team (`--team`), access (admin).
    Grant(FileMember),
    /// End a member's or a team's (`--team`) access (admin); starts a new epoch.
    Remove(FileMember),
    /// Erase a customer file for good (admin; GDPR erasure): the relay deletes its
    /// ciphertext, wrapped keys and conversation, logging it; every device forgets its
    /// keys and copy. Cannot be undone.
    Erase {
        /// File name or id.
        file: String,
        /// Confirms that the file and everything in it go for good.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args, Debug)]
struct FileMember {
    /// File name or id.
    file: String,
    /// Member name or id.
    #[arg(required_unless_present = "team")]
    member: Option<String>,
    /// A team (name or id) instead of a member.
    #[arg(long, conflicts_with = "member")]
    team: Option<String>,
}

#[derive(Subcommand, Debug)]
enum TeamCmd {
    /// Create a team (admin); prints its id.
    Create {
        /// Name (encrypted; the relay sees only a salted commitment).
        name: String,
    },
    /// Rename a team (admin).
    Rename {
        /// Team name or id.
        team: String,
        /// New name.
        name: String,
    },
    /// Delete a team (admin): its members lose the team's files (new epochs for them).
    Delete {
        /// Team name or id.
        team: String,
        /// Confirms.
        #[arg(long)]
        yes: bool,
    },
    /// Add a member to a team (admin): they read the team's files, history included.
    Add {
        /// Team name or id.
        team: String,
        /// Member name or id.
        member: String,
    },
    /// Remove a member from a team (admin): the team key gets a new version, the team's
    /// files they keep no other way get new epochs.
    Remove {
        /// Team name or id.
        team: String,
        /// Member name or id.
        member: String,
    },
    /// The firm's teams, their members and files.
    List,
}

#[derive(Subcommand, Debug)]
enum OfferCmd {
    /// Make an offer (a draft) to a lead or customer.
    Add {
        /// Lead or customer (name or id).
        lead: String,
        /// A service: `NAME|monthly|NET|23` or `NAME|one-off|NET|zw` (VAT 23, 8 or zw;
        /// net in złoty, e.g. 1200,00). Repeat for each service.
        #[arg(long = "service", required = true)]
        services: Vec<String>,
        /// Valid through this day, YYYY-MM-DD (default: 30 days from today).
        #[arg(long)]
        valid_until: Option<String>,
    },
    /// The offers of a lead or customer, with their totals.
    List {
        /// Lead or customer (name or id).
        lead: String,
    },
    /// Send an offer: its PDF is stored encrypted in the file, the offer is marked sent
    /// (a new or contacted lead moves to stage `offer`).
    Send {
        /// Offer id (or its first 6+ hex digits).
        offer: String,
        /// Language of the PDF: pl or en.
        #[arg(long, default_value = "pl")]
        lang: String,
    },
    /// Write an offer's PDF (any status, a draft to review too) to a file of yours.
    Pdf {
        /// Offer id (or its first 6+ hex digits).
        offer: String,
        /// Where to write it (owner-only, replaced whole).
        out: PathBuf,
        /// Language: pl or en.
        #[arg(long, default_value = "pl")]
        lang: String,
    },
    /// Mark an offer accepted: a lead becomes a customer, the offer stays in its file.
    Accept {
        /// Offer id (or its first 6+ hex digits).
        offer: String,
    },
    /// Mark an offer rejected.
    Reject {
        /// Offer id (or its first 6+ hex digits).
        offer: String,
    },
}

/// Values for a reply template's placeholders.
#[derive(Args, Debug)]
struct ReplyArgs {
    /// Fills {termin}/{deadline}: a day, YYYY-MM-DD.
    #[arg(long)]
    deadline: Option<String>,
    /// Fills {kwota}/{amount}: złoty, e.g. 1234,50.
    #[arg(long)]
    amount: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ReplyCmd {
    /// The reply templates you can use: the firm's and your own.
    List,
    /// Add or change a template: the firm's (admins), or your own (`--personal`).
    /// Placeholders: {klient}, {termin}, {kwota} (or {customer}, {deadline}, {amount}).
    Set {
        /// Name.
        name: String,
        /// Text with placeholders.
        text: String,
        /// Your own template, shown to you only.
        #[arg(long)]
        personal: bool,
    },
    /// Delete a template: the firm's (admins), or your own (`--personal`).
    Delete {
        /// Name.
        name: String,
        /// Your own template.
        #[arg(long)]
        personal: bool,
    },
    /// Show a template filled in (nothing is sent).
    Show {
        /// Name.
        name: String,
        /// Customer file whose name fills {klient}.
        #[arg(long)]
        customer: Option<String>,
        #[command(flatten)]
        values: ReplyArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ChatCmd {
    /// Send a message: a text, or a reply template filled for the customer.
    Send {
        /// Customer file or room (name or id), or @MEMBER for a direct chat.
        to: String,
        /// Text (`-`: read it from standard input, for texts longer than a command line).
        #[arg(required_unless_present = "template")]
        text: Option<String>,
        /// Reply to the message with this number.
        #[arg(long)]
        reply_to: Option<u64>,
        /// Send reply template NAME instead of a text (`ledgerline reply list`).
        #[arg(long, conflicts_with = "text")]
        template: Option<String>,
        #[command(flatten)]
        values: ReplyArgs,
    },
    /// Change one of your messages.
    Edit {
        /// Customer file or room, or @MEMBER.
        to: String,
        /// Message number.
        seq: u64,
        /// New text.
        text: String,
    },
    /// Delete one of your messages.
    Delete {
        /// Customer file or room, or @MEMBER.
        to: String,
        /// Message number.
        seq: u64,
    },
    /// Sync, then print the conversation.
    Read {
        /// Customer file or room, or @MEMBER.
        to: String,
    },
    /// Tell the others you have read everything so far.
    MarkRead {
        /// Customer file or room, or @MEMBER.
        to: String,
    },
}

#[derive(Subcommand, Debug)]
enum MailCmd {
    /// Connect a mailbox (IMAP over TLS): the login is checked, the password goes to the
    /// OS keyring (never to the relay).
    Connect {
        /// IMAP server.
        #[arg(long)]
        host: String,
        /// Port of IMAP over TLS.
        #[arg(long, default_value_t = 993)]
        port: u16,
        /// Login (often the address).
        #[arg(long)]
        user: String,
        /// Folder to read.
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// PEM file of an extra CA the server's certificate chains to.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Mailboxes this device reads.
    List,
    /// Stop reading a mailbox (what it imported stays).
    Disconnect {
        /// Mailbox (`user@host/folder`, as `mail list` shows it).
        mailbox: String,
    },
    /// Read new mail from every mailbox, sort it, store it in customer files.
    Fetch,
    /// Mail no rule placed.
    Inbox,
    /// Put an inbox message in a customer file; --rule also adds a rule for such mail and
    /// applies it to the rest of the inbox.
    Assign {
        /// Inbox message id (or its start).
        id: String,
        /// Customer file (name or id).
        file: String,
        /// Add a rule from this message: from (its sender), domain (the sender's domain) or
        /// subject.
        #[arg(long)]
        rule: Option<String>,
        /// Category (invoice, bank_statement, tax_office, payroll, other).
        #[arg(long)]
        category: Option<String>,
    },
    /// The firm's sorting rules, in the order they apply.
    Rules,
    /// Add a firm rule.
    RuleAdd {
        /// What it looks at: from, domain, subject, attachment.
        on: String,
        /// What it looks for.
        pattern: String,
        /// Customer file the mail goes to (name or id).
        #[arg(long)]
        file: Option<String>,
        /// Category it gets.
        #[arg(long)]
        category: Option<String>,
    },
    /// Remove a firm rule.
    RuleRemove {
        /// Rule id (or its start).
        id: String,
    },
    /// Mail of a customer file, newest first.
    Read {
        /// Customer file (name or id).
        file: String,
    },
    /// One mail, whole.
    Show {
        /// Mail id (or its start).
        id: String,
    },
    /// Change a mail's category.
    Categorise {
        /// Mail id (or its start).
        id: String,
        /// invoice, bank_statement, tax_office, payroll, other.
        category: String,
    },
    /// Mailboxes, where reading stands, and messages that could not be read.
    Status,
}

#[derive(Subcommand, Debug)]
enum GuestCmd {
    /// Invite a customer's person into the file's conversation (admin): prints a one-time
    /// code to hand over; they run `ledgerline join`, you run `ledgerline approve NAME`.
    Invite {
        /// Customer file (name or id).
        file: String,
        /// The guest's name.
        #[arg(long)]
        name: String,
        /// Hours the code stays valid (1 to 720).
        #[arg(long, default_value_t = 168)]
        hours: u64,
    },
    /// Guests of every file, as the roster lists them.
    List,
    /// Revoke a guest (admin): their devices are refused at once.
    Revoke {
        /// Guest name or id.
        guest: String,
    },
}

#[derive(Subcommand, Debug)]
enum ConversationCmd {
    /// Send a message to the customer (or, with --internal, to staff only).
    Send {
        /// Text.
        text: String,
        /// Customer file (name or id); a guest's is their own.
        #[arg(long)]
        file: Option<String>,
        /// Visible to staff only: goes to the file's staff room, never to the customer.
        #[arg(long)]
        internal: bool,
        /// Reply to the message with this number.
        #[arg(long)]
        reply_to: Option<u64>,
    },
    /// Sync, then print the conversation (staff also see internal messages, marked).
    Read {
        /// Customer file (name or id); a guest's is their own.
        #[arg(long)]
        file: Option<String>,
    },
    /// Share a document in the conversation (a guest's upload lands in the file here).
    Share {
        /// The document to encrypt and upload.
        path: PathBuf,
        /// Customer file (name or id); a guest's is their own.
        #[arg(long)]
        file: Option<String>,
    },
    /// Documents shared in the conversation.
    Docs {
        /// Customer file (name or id); a guest's is their own.
        #[arg(long)]
        file: Option<String>,
    },
    /// Download a document shared in the conversation.
    Download {
        /// Document name or id.
        doc: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Customer file (name or id); a guest's is their own.
        #[arg(long)]
        file: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum RoomCmd {
    /// Create an internal room (its name and members are encrypted).
    Create {
        /// Name.
        name: String,
        /// A member to add (name or id); repeat for more.
        #[arg(long = "member", required = true)]
        members: Vec<String>,
    },
    /// Internal rooms and direct chats this device knows.
    List,
}

#[derive(Subcommand, Debug)]
enum DocCmd {
    /// Encrypt and upload a document (progress bar on a terminal).
    Upload {
        /// File name or id.
        file: String,
        /// The document on disk.
        path: PathBuf,
        /// The year the document concerns (retention counts from its end) [default: this
        /// year].
        #[arg(long, value_parser = parse_year)]
        year: Option<u16>,
    },
    /// Download, verify and decrypt a document (the access is logged by the relay).
    Download {
        /// File name or id.
        file: String,
        /// Document name or id.
        doc: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Documents of a file.
    List {
        /// File name or id.
        file: String,
    },
}

/// A failure with its exit code and a stable code word (and, where there is one, a reason
/// word) for `--json`.
struct Failure {
    exit: u8,
    code: &'static str,
    reason: Option<String>,
    message: String,
}

/// The exit code of each kind of failure (README, "Exit codes").
fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Invalid | ErrorKind::Store => 1,
        ErrorKind::RelayUnreachable => 3,
        ErrorKind::RelayRefused => 4,
        ErrorKind::RelayGarbage
        | ErrorKind::Integrity
        | ErrorKind::FingerprintMismatch
        | ErrorKind::Onboarding => 5,
        ErrorKind::NotFound => 6,
        ErrorKind::NotAllowed => 7,
        ErrorKind::WrongKey | ErrorKind::Keyring => 8,
        ErrorKind::Mail => 9,
        ErrorKind::Ksef => 10,
        ErrorKind::Queued => 75,
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let kind = e.kind();
        Self {
            exit: exit_code(kind),
            code: kind.code(),
            reason: e.reason().map(str::to_owned),
            message: e.to_string(),
        }
    }
}

/// The recovery key as shown once, with what it is for.
fn recovery_text(key: Option<&str>) -> String {
    key.map(|k| {
        format!(
            "\n\nYour recovery key (write it down and keep it safe; it is shown only now):\n\n    {k}\n\nWith it you read your whole history on a new device if you lose this one:\n`ledgerline device recover --relay URL`."
        )
    })
    .unwrap_or_default()
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        exit: 2,
        code: "usage",
        reason: None,
        message: message.into(),
    }
}

/// The most a text read from standard input may hold before it is refused unread (the relay
/// takes 1 MiB of ciphertext per message; the client core says so exactly).
const STDIN_TEXT_MAX: u64 = 8 << 20;

/// A message text from standard input: UTF-8, one trailing newline dropped.
fn text_from_stdin() -> Result<String, Failure> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(STDIN_TEXT_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| usage(format!("cannot read the text from standard input: {e}")))?;
    if bytes.len() as u64 > STDIN_TEXT_MAX {
        return Err(usage(format!(
            "the text on standard input is longer than {STDIN_TEXT_MAX} bytes: send it as a document"
        )));
    }
    let mut text =
        String::from_utf8(bytes).map_err(|_| usage("the text on standard input is not UTF-8"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(usage("standard input held no text"));
    }
    Ok(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ledgerline: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(out) => {
            print_out(json, &out);
            ExitCode::SUCCESS
        }
        Err(f) => {
            if json {
                eprintln!(
                    "{}",
                    json!({ "error": { "code": f.code, "reason": f.reason, "message": f.message } })
                );
            } else {
                eprintln!("ledgerline: {}", f.message);
            }
            ExitCode::from(f.exit)
        }
    }
}

/// What a command printed: JSON, and its text rendering.
struct Output {
    json: Value,
    text: String,
}

fn print_out(json: bool, out: &Output) {
    let mut stdout = std::io::stdout().lock();
    let _ = if json {
        writeln!(stdout, "{}", out.json)
    } else if out.text.is_empty() {
        Ok(())
    } else {
        writeln!(stdout, "{}", out.text.trim_end())
    };
}

fn profile_dir(cli: &Cli) -> Result<PathBuf, Failure> {
    if let Some(p) = &cli.profile {
        return Ok(p.clone());
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".ledgerline").join("default"))
        .ok_or_else(|| usage("no --profile given and no HOME to default to"))
}

fn unlock(dir: &std::path::Path, creating: bool, no_keyring: bool) -> Result<Unlock, Failure> {
    // A profile that keeps its key in the keyring opens with it, whatever else is set.
    if !creating && keystore::uses_keyring(dir) {
        return Ok(Unlock::Keyring);
    }
    if let Ok(p) = std::env::var("LEDGERLINE_PASSPHRASE") {
        if p.is_empty() {
            return Err(usage("LEDGERLINE_PASSPHRASE is empty"));
        }
        return Ok(Unlock::Passphrase(Zeroizing::new(p)));
    }
    if creating && !no_keyring && keystore::available() {
        return Ok(Unlock::NewKeyring);
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "the local store needs a key: no OS keyring is available, so set LEDGERLINE_PASSPHRASE or run on a terminal",
        ));
    }
    let p = if creating {
        new_passphrase("New passphrase for this device's store: ")?
    } else {
        read_secret("Passphrase: ")?
    };
    if p.is_empty() {
        return Err(usage("an empty passphrase is not allowed"));
    }
    Ok(Unlock::Passphrase(p))
}

/// Reads a secret from the terminal without echoing it (the prompt and the answer go through
/// the controlling terminal, not stdout, so `--json` output stays clean).
fn read_secret(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| usage(format!("cannot read the terminal: {e}")))
}

/// A new passphrase, typed twice: a typo here would lock the store for good.
fn new_passphrase(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    let a = read_secret(prompt)?;
    let b = read_secret("The same passphrase again: ")?;
    if a != b {
        return Err(usage("the two passphrases differ; nothing was changed"));
    }
    Ok(a)
}

fn read_line(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| usage(format!("cannot read the terminal: {e}")))?;
    Ok(line.trim().to_owned())
}

async fn run(cli: Cli) -> Result<Output, Failure> {
    let dir = profile_dir(&cli)?;
    let relay_override = cli.relay.clone();
    let no_keyring = cli.no_keyring;
    let json = cli.json;
    match cli.command {
        Command::Firm(FirmCmd::Create { relay, firm, me }) => {
            let mut p =
                Profile::create_firm(&dir, unlock(&dir, true, no_keyring)?, &relay, &firm, &me)
                    .await?;
            let recovery = p.take_recovery_key();
            Ok(Output {
                text: format!(
                    "Founded {firm} as its owner.\nfirm:        {}\nmember:      {}\ndevice:      {}\nfingerprint: {}{}",
                    p.firm(),
                    p.member(),
                    p.device(),
                    p.fingerprint().unwrap_or_default(),
                    recovery_text(recovery.as_deref().map(String::as_str))
                ),
                json: json!({ "firm": p.firm(), "member": p.member(), "device": p.device(), "fingerprint": p.fingerprint(), "recovery_key": recovery.as_deref() }),
            })
        }
        Command::Join { relay, code, me } => {
            let (mut p, fp) =
                Profile::join(&dir, unlock(&dir, true, no_keyring)?, &relay, &code, &me).await?;
            let recovery = p.take_recovery_key();
            Ok(Output {
                text: format!(
                    "Join request sent. Read this fingerprint to the admin who invited you:\n\n    {fp}\n\nThen run `ledgerline sync`.{}",
                    recovery_text(recovery.as_deref().map(String::as_str))
                ),
                json: json!({ "firm": p.firm(), "member": p.member(), "device": p.device(), "fingerprint": fp, "recovery_key": recovery.as_deref() }),
            })
        }
        Command::Device(DeviceCmd::Join { relay, code, me }) => {
            let (p, fp) =
                Profile::join_device(&dir, unlock(&dir, true, no_keyring)?, &relay, &code, &me)
                    .await?;
            Ok(Output {
                text: format!(
                    "Link request sent. Compare this fingerprint on your other device:\n\n    {fp}\n\nThen run `ledgerline sync` here."
                ),
                json: json!({ "firm": p.firm(), "device": p.device(), "fingerprint": fp }),
            })
        }
        Command::Device(DeviceCmd::Recover {
            relay,
            recovery_key,
            keep_devices,
        }) => {
            let key = match recovery_key.or_else(|| std::env::var("LEDGERLINE_RECOVERY_KEY").ok()) {
                Some(k) => zeroize::Zeroizing::new(k),
                None if std::io::stdin().is_terminal() => {
                    zeroize::Zeroizing::new(read_line("Recovery key: ")?)
                }
                None => return Err(usage("pass --recovery-key or set LEDGERLINE_RECOVERY_KEY")),
            };
            let (p, r) = Profile::recover(
                &dir,
                unlock(&dir, true, no_keyring)?,
                &relay,
                &key,
                keep_devices,
            )
            .await?;
            Ok(Output {
                text: format!(
                    "Recovered {} on this new device {}.\nRestored {} member keys and {} conversation keys; revoked {} other device(s).\nfingerprint: {}",
                    r.name,
                    r.device,
                    r.member_keys,
                    r.room_keys,
                    r.revoked_devices.len(),
                    p.fingerprint().unwrap_or_default()
                ),
                json: serde_json::to_value(&r).unwrap_or_default(),
            })
        }
        Command::Audit(AuditCmd::Verify {
            bundle,
            csv,
            require_witness,
            strict,
            names,
        }) => {
            let names = if names {
                let p = Profile::open(&dir, unlock(&dir, false, no_keyring)?)?;
                let (header, sealed) = bundle_names(&bundle)?;
                Some(p.open_names(&header, &sealed)?.ok_or_else(|| Failure {
                    exit: 6,
                    code: "not_found",
                    reason: None,
                    message: "the bundle carries no names for this device".into(),
                })?)
            } else {
                None
            };
            verify_bundle(
                &bundle,
                csv,
                json,
                require_witness.as_deref(),
                strict,
                names.as_ref(),
            )
        }
        Command::Passphrase => {
            if keystore::uses_keyring(&dir) {
                return Err(Failure {
                    exit: 7,
                    code: "not_allowed",
                    reason: None,
                    message: "this profile's store key is in the OS keyring: there is no passphrase to change".into(),
                });
            }
            let old = match unlock(&dir, false, true)? {
                Unlock::Passphrase(p) => p,
                _ => return Err(usage("the current passphrase is needed")),
            };
            let p = Profile::open(&dir, Unlock::Passphrase(old.clone()))?;
            let new = match std::env::var("LEDGERLINE_NEW_PASSPHRASE") {
                Ok(n) if !n.is_empty() => Zeroizing::new(n),
                _ if std::io::stdin().is_terminal() => new_passphrase("New passphrase: ")?,
                _ => return Err(usage("set LEDGERLINE_NEW_PASSPHRASE or run on a terminal")),
            };
            p.change_passphrase(&old, &new)?;
            Ok(Output {
                text: "The store's passphrase is changed; the old one no longer opens it.".into(),
                json: json!({ "changed": true }),
            })
        }
        command => {
            let mut p = Profile::open(&dir, unlock(&dir, false, no_keyring)?)?;
            if let Some(relay) = &relay_override {
                p.use_relay(relay)?;
            }
            with_profile(&mut p, command, json).await
        }
    }
}

async fn with_profile(p: &mut Profile, command: Command, json: bool) -> Result<Output, Failure> {
    match command {
        Command::Firm(FirmCmd::RecoveryPolicy { state }) => {
            let on = match state.as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(usage("recovery-policy takes `on` or `off`")),
            };
            p.sync().await?;
            p.set_recovery_policy(on).await?;
            Ok(Output {
                text: if on {
                    "Admin-assisted recovery is on. Members who joined before escrow their recovery key with `ledgerline backup new-key`.".into()
                } else {
                    "Admin-assisted recovery is off.".into()
                },
                json: json!({ "admin_assisted": on }),
            })
        }
        Command::Firm(_) | Command::Join { .. } => Err(usage("a profile already exists here")),
        Command::Member(MemberCmd::Reprovision {
            member,
            fingerprint,
        }) => {
            p.sync().await?;
            let m = p.resolve_member(&member)?;
            match fingerprint {
                None => {
                    let code = p.reprovision_start(m).await?;
                    Ok(Output {
                        text: format!("Link code for {member}'s new device (give it over a channel you trust):\n\n    {code}\n\nOn the new device: `ledgerline device join --relay URL --code CODE --me NAME`; then compare its fingerprint and run `ledgerline member reprovision {member:?} --fingerprint FP`."),
                        json: json!({ "member": m, "code": code }),
                    })
                }
                Some(fp) => {
                    let (mut cb, bar) = rotation_bar(json);
                    let done = p.reprovision_finish(m, &fp, &mut cb).await;
                    if let Some(b) = bar {
                        b.finish_and_clear();
                    }
                    let (device, report) = done?;
                    let mut out = rotation_output(
                        &format!(
                            "{member} has a new device {device}; their other devices are revoked"
                        ),
                        &report,
                    );
                    if let Some(o) = out.json.as_object_mut() {
                        o.insert("device".into(), json!(device));
                    }
                    Ok(out)
                }
            }
        }
        Command::Invite(InviteCmd::Create { name, role }) => {
            let role = parse_role(&role).ok_or_else(|| usage("unknown role"))?;
            p.sync().await?;
            let code = p.invite(&name, role).await?;
            Ok(Output {
                text: format!("Invitation for {name} (give it over a channel you trust; valid 7 days):\n\n    {code}\n\nWhen {name} has joined, compare fingerprints and run `ledgerline approve {name:?}`."),
                json: json!({ "name": name, "code": code }),
            })
        }
        Command::Approve { name, fingerprint } => {
            let told = match fingerprint {
                Some(f) => f,
                None if std::io::stdin().is_terminal() => {
                    read_line(&format!("Fingerprint read out by {name}: "))?
                }
                None => {
                    return Err(usage(
                        "pass --fingerprint with the fingerprint the joiner read out",
                    ))
                }
            };
            p.sync().await?;
            let member = p.approve(&name, &told).await?;
            Ok(Output {
                text: format!("Approved {name} ({member})."),
                json: json!({ "member": member, "name": name }),
            })
        }
        Command::Member(MemberCmd::Revoke { member }) => {
            p.sync().await?;
            let m = p.resolve_member(&member)?;
            let (mut cb, bar) = rotation_bar(json);
            let report = p.revoke_member(m, &mut cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            Ok(rotation_output(&format!("{member} is revoked"), &report?))
        }
        Command::Device(DeviceCmd::Revoke { device }) => {
            p.sync().await?;
            let d = p.resolve_device(&device)?;
            let (mut cb, bar) = rotation_bar(json);
            let report = p.revoke_device(d, &mut cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            Ok(rotation_output(&format!("Device {d} is revoked"), &report?))
        }
        Command::Cover(cmd) => cover(p, cmd, json).await,
        Command::Retention(cmd) => retention(p, cmd).await,
        Command::Customer(cmd) => customer(p, cmd).await,
        Command::Lead(cmd) => lead(p, cmd).await,
        Command::Task(cmd) => task(p, cmd).await,
        Command::Template(cmd) => template(p, cmd).await,
        Command::Cal(cmd) => cal(p, cmd).await,
        Command::Member(MemberCmd::List) => {
            p.sync().await?;
            let members = p.members()?;
            let text = members
                .iter()
                .map(|m| {
                    format!(
                        "{}  {:<8} {:<24} {}{}{}",
                        m.id,
                        m.role,
                        m.name.as_deref().unwrap_or("?"),
                        m.fingerprint,
                        if m.active { "" } else { "  (removed)" },
                        if m.me { "  (you)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "members": members }),
            })
        }
        Command::Device(DeviceCmd::Join { .. } | DeviceCmd::Recover { .. }) => {
            Err(usage("a profile already exists here"))
        }
        Command::Backup(BackupCmd::Status) => {
            p.sync().await?;
            let st = p.backup_status();
            Ok(Output {
                text: if st.enabled {
                    format!(
                        "Key backup: on{}; {} items from this device, {} conversation keys waiting.",
                        if st.registered { "" } else { " (registered at the next sync after approval)" },
                        st.items,
                        st.pending_room_keys
                    )
                } else {
                    "Key backup: off. Run `ledgerline backup new-key` to make a recovery key."
                        .into()
                },
                json: serde_json::to_value(&st).unwrap_or_default(),
            })
        }
        Command::Backup(BackupCmd::NewKey) => {
            p.sync().await?;
            let key = p.new_recovery_key().await?;
            Ok(Output {
                text: format!(
                    "New recovery key; the old one no longer works.{}",
                    recovery_text(Some(&key))
                ),
                json: json!({ "recovery_key": key.as_str() }),
            })
        }
        Command::Device(DeviceCmd::Link) => {
            p.sync().await?;
            let code = p.link_device().await?;
            Ok(Output {
                text: format!("On the new device run:\n\n    ledgerline --profile DIR device join --relay URL --me NAME --code {code}\n\nthen compare its fingerprint and run `ledgerline device approve --fingerprint FP` here."),
                json: json!({ "code": code }),
            })
        }
        Command::Device(DeviceCmd::Approve { fingerprint }) => {
            p.sync().await?;
            let device = p.approve_device(&fingerprint).await?;
            Ok(Output {
                text: format!("Linked device {device}. Run `ledgerline sync` here once the new device has synced, to hand it the master key."),
                json: json!({ "device": device }),
            })
        }
        Command::Device(DeviceCmd::List) => {
            p.sync().await?;
            let devices = p.devices()?;
            let text = devices
                .iter()
                .map(|d| {
                    format!(
                        "{}  member {}{}{}",
                        d.id,
                        d.member,
                        if d.active { "" } else { "  (revoked)" },
                        if d.me { "  (this device)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "devices": devices }),
            })
        }
        Command::File(cmd) => file(p, cmd).await,
        Command::Team(cmd) => team(p, cmd, json).await,
        Command::Reply(cmd) => reply(p, cmd).await,
        Command::Offer(cmd) => offer(p, cmd).await,
        Command::Chat(cmd) => chat(p, cmd).await,
        Command::Doc(cmd) => doc(p, cmd, json).await,
        Command::Room(cmd) => room(p, cmd).await,
        Command::Guest(cmd) => guest(p, cmd, json).await,
        Command::Mail(cmd) => mail(p, cmd, json).await,
        Command::Ksef(cmd) => ksef::ksef(p, cmd, json).await,
        Command::Conversation(cmd) => conversation(p, cmd, json).await,
        Command::Search { query, limit } => {
            let hits = p.search(&query, limit)?;
            let text = hits
                .iter()
                .map(|h| format!("{:<8} {}  {}", h.kind, h.reference, h.body))
                .collect::<Vec<_>>()
                .join("\n");
            let list: Vec<Value> = hits
                .iter()
                .map(|h| json!({ "kind": h.kind, "ref": h.reference, "text": h.body }))
                .collect();
            Ok(Output {
                text,
                json: json!({ "results": list }),
            })
        }
        Command::Sync {
            after_restore: true,
            ..
        } => {
            let r = p.after_restore().await?;
            let mut text = format!(
                "The relay was restored: this device had seen {} access-log entries; the relay still holds the first {} of them and now has {}.\nSent again: {} roster event(s), {} message(s), {} work item(s) (of {} compared), {} file name(s), {} file room(s) and key(s); {} erasure(s) done again.",
                r.log_was,
                r.log_kept,
                r.log_now,
                r.roster_events,
                r.sync.resent,
                r.sync.work_sent,
                r.given_back.items_checked,
                r.given_back.file_names_resent,
                r.given_back.file_keys_resent,
                r.given_back.erasures_redone
            );
            lost_documents(&mut text, &r.given_back.documents_lost);
            for w in &r.sync.warnings {
                text.push_str(&format!("\nwarning: {w}"));
            }
            text.push_str("\nColleagues whose devices now stop with exit 5 run `ledgerline sync --after-restore` too; the others give back what they hold at their next sync.");
            Ok(Output {
                text,
                json: serde_json::to_value(&r).unwrap_or_default(),
            })
        }
        Command::Sync { watch: true, .. } => {
            let stop = async {
                #[cfg(unix)]
                {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .ok();
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = async {
                            match term.as_mut() {
                                Some(t) => { t.recv().await; }
                                None => std::future::pending::<()>().await,
                            }
                        } => {}
                    }
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
            };
            p.watch(
                |event| {
                    let (text, value) = match event {
                        WatchEvent::Connected => {
                            ("connected".to_owned(), json!({ "event": "connected" }))
                        }
                        WatchEvent::Synced(r) => (
                            format!(
                                "synced: {} message(s), {} room key(s), {} waiting",
                                r.messages, r.room_keys, r.waiting
                            ),
                            json!({ "event": "synced", "report": r }),
                        ),
                        WatchEvent::Disconnected { reason, retry_in } => (
                            format!("disconnected ({reason}); retrying in {retry_in:?}"),
                            json!({ "event": "disconnected", "reason": reason, "retry_ms": retry_in.as_millis() as u64 }),
                        ),
                    };
                    print_out(json, &Output { json: value, text });
                },
                stop,
            )
            .await?;
            Ok(Output {
                text: String::new(),
                json: json!({ "event": "stopped" }),
            })
        }
        Command::Sync { watch: false, .. } => {
            let r = p.sync().await?;
            let mut text = format!(
                "roster events: {}, room keys: {}, messages: {}, waiting for keys: {}, sent from outbox: {}, audit log: {} entries (verified)",
                r.roster_events, r.room_keys, r.messages, r.waiting, r.sent, r.log_size
            );
            if r.rotated_files > 0 {
                text.push_str(&format!(
                    "\nfinished an interrupted offboarding rotation: {} customer files re-keyed",
                    r.rotated_files
                ));
            }
            if let Some(g) = &r.restored {
                text.push_str(&format!(
                    "\nthe relay was restored from a backup: sent again {} message(s), {} work item(s), {} file name(s), {} file room(s) and key(s), {} room(s)",
                    r.resent, r.work_sent, g.file_names_resent, g.file_keys_resent, g.rooms_recreated
                ));
                lost_documents(&mut text, &g.documents_lost);
            }
            for w in &r.warnings {
                text.push_str(&format!("\nwarning: {w}"));
            }
            Ok(Output {
                text,
                json: serde_json::to_value(&r).unwrap_or_default(),
            })
        }
        Command::Audit(AuditCmd::Export {
            out,
            from,
            to,
            for_auditor,
        }) => {
            let t = |v: Option<String>| {
                v.map(|s| ledgerline_audit::parse_time(&s).map_err(usage))
                    .transpose()
            };
            let (from_ms, to_ms) = (t(from)?, t(to)?);
            let s = p
                .export_audit(&out, from_ms, to_ms, for_auditor.as_deref())
                .await?;
            Ok(Output {
                text: format!(
                    "Wrote {}: {} log entries ({} whole), {} checkpoints, {} roster events.",
                    out.display(),
                    s.size,
                    s.entries,
                    s.checkpoints,
                    s.roster_events
                ),
                json: serde_json::to_value(&s).unwrap_or_default(),
            })
        }
        Command::Audit(AuditCmd::Verify { .. }) => Err(usage("audit verify needs no profile")),
        Command::Passphrase => Err(usage("passphrase opens the profile itself")),
        Command::Whoami => {
            let (log_origin, log_key) = p.log_pin().unzip();
            Ok(Output {
                text: format!(
                    "firm:        {}\nmember:      {}\ndevice:      {}\nfingerprint: {}\ndevice fingerprint: {}\naudit log:   {}\nlog key:     {}\nprofile:     {}",
                    p.firm(),
                    p.member(),
                    p.device(),
                    p.fingerprint()
                        .unwrap_or_else(|| "(master key not received yet)".into()),
                    p.device_fingerprint(),
                    log_origin.as_deref().unwrap_or("(not pinned yet: run sync)"),
                    log_key.as_deref().unwrap_or("-"),
                    p.dir().display()
                ),
                json: json!({ "firm": p.firm(), "member": p.member(), "device": p.device(), "fingerprint": p.fingerprint(), "device_fingerprint": p.device_fingerprint(), "log_origin": log_origin, "log_key": log_key }),
            })
        }
    }
}

async fn file(p: &mut Profile, cmd: FileCmd) -> Result<Output, Failure> {
    match cmd {
        FileCmd::Create { name } => {
            p.sync().await?;
            let id = p.create_file(&name).await?;
            Ok(Output {
                text: id.to_string(),
                json: json!({ "file": id, "name": name }),
            })
        }
        FileCmd::List => {
            p.sync().await?;
            let files = p.files()?;
            let text = files
                .iter()
                .map(|f| {
                    format!(
                        "{}  {:<32} epoch {}  {} member(s)",
                        f.id,
                        f.name.as_deref().unwrap_or("?"),
                        f.epoch.map_or("-".to_owned(), |e| e.to_string()),
                        f.members.len()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "files": files }),
            })
        }
        FileCmd::Grant(FileMember {
            file: name,
            team: Some(team),
            ..
        }) => {
            p.sync().await?;
            let (file, t) = (p.resolve_file(&name)?, p.resolve_team(&team)?);
            p.grant_team(file, t).await?;
            Ok(Output {
                text: format!("Team {team} can now read and write {name}."),
                json: json!({ "file": file, "team": t }),
            })
        }
        FileCmd::Grant(fm) => {
            p.sync().await?;
            let who = fm.member.unwrap_or_default();
            let (file, member) = (p.resolve_file(&fm.file)?, p.resolve_member(&who)?);
            p.grant(file, member).await?;
            Ok(Output {
                text: format!("{who} can now read and write {}.", fm.file),
                json: json!({ "file": file, "member": member }),
            })
        }
        FileCmd::Erase { file, yes } => {
            if !yes {
                return Err(usage(
                    "erasing cannot be undone: add --yes to erase the file and everything in it",
                ));
            }
            p.sync().await?;
            let id = p.resolve_file(&file)?;
            p.erase_file(id).await?;
            Ok(Output {
                text: format!("{file} is erased: the relay deleted it, this device forgot it."),
                json: json!({ "file": id, "erased": true }),
            })
        }
        FileCmd::Remove(FileMember {
            file: name,
            team: Some(team),
            ..
        }) => {
            p.sync().await?;
            let (file, t) = (p.resolve_file(&name)?, p.resolve_team(&team)?);
            let report = p.ungrant_team(file, t, &mut |_| {}).await?;
            Ok(rotation_output(
                &format!("Team {team} no longer has access to {name}"),
                &report,
            ))
        }
        FileCmd::Remove(fm) => {
            p.sync().await?;
            let who = fm.member.unwrap_or_default();
            let (file, member) = (p.resolve_file(&fm.file)?, p.resolve_member(&who)?);
            let epoch = p.remove(file, member).await?;
            Ok(Output {
                text: format!(
                    "{who} no longer has access to {}; new epoch {epoch}.",
                    fm.file
                ),
                json: json!({ "file": file, "member": member, "epoch": epoch }),
            })
        }
    }
}

async fn team(p: &mut Profile, cmd: TeamCmd, json: bool) -> Result<Output, Failure> {
    p.sync().await?;
    match cmd {
        TeamCmd::Create { name } => {
            let id = p.create_team(&name).await?;
            Ok(Output {
                text: format!("Team {name} created: {id}"),
                json: json!({ "team": id, "name": name.trim() }),
            })
        }
        TeamCmd::Rename { team, name } => {
            let id = p.resolve_team(&team)?;
            p.rename_team(id, &name).await?;
            Ok(Output {
                text: format!("Team {team} is now {name}."),
                json: json!({ "team": id, "name": name.trim() }),
            })
        }
        TeamCmd::Delete { team, yes } => {
            if !yes {
                return Err(usage(
                    "deleting a team ends its members' access to its files: add --yes",
                ));
            }
            let id = p.resolve_team(&team)?;
            let (mut cb, bar) = rotation_bar(json);
            let report = p.delete_team(id, &mut cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            Ok(rotation_output(
                &format!("Team {team} is deleted"),
                &report?,
            ))
        }
        TeamCmd::Add { team, member } => {
            let (id, m) = (p.resolve_team(&team)?, p.resolve_member(&member)?);
            p.team_add(id, m).await?;
            Ok(Output {
                text: format!("{member} is in team {team}: they read its files now."),
                json: json!({ "team": id, "member": m }),
            })
        }
        TeamCmd::Remove { team, member } => {
            let (id, m) = (p.resolve_team(&team)?, p.resolve_member(&member)?);
            let (mut cb, bar) = rotation_bar(json);
            let report = p.team_remove(id, m, &mut cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            Ok(rotation_output(
                &format!("{member} is no longer in team {team}"),
                &report?,
            ))
        }
        TeamCmd::List => {
            let teams = p.teams()?;
            let known: std::collections::BTreeMap<MemberId, Option<String>> =
                p.members()?.into_iter().map(|m| (m.id, m.name)).collect();
            let names = |ids: &[MemberId]| {
                ids.iter()
                    .map(|m| {
                        known
                            .get(m)
                            .cloned()
                            .flatten()
                            .unwrap_or_else(|| m.to_string())
                    })
                    .collect::<Vec<_>>()
            };
            let text = teams
                .iter()
                .map(|t| {
                    format!(
                        "{}  {:<24} members: {}; files: {}",
                        t.id,
                        t.name.as_deref().unwrap_or("(name not received yet)"),
                        names(&t.members).join(", "),
                        t.files.len()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text: if text.is_empty() {
                    "No teams.".into()
                } else {
                    text
                },
                json: json!({ "teams": teams.iter().map(|t| json!({
                    "id": t.id,
                    "name": t.name,
                    "members": t.members,
                    "member_names": names(&t.members),
                    "files": t.files,
                })).collect::<Vec<_>>() }),
            })
        }
    }
}

/// Resolves a file by name or id, syncing once if this profile does not know it yet.
async fn file_of(p: &mut Profile, name: &str) -> Result<FileId, Failure> {
    match p.resolve_file(name) {
        Err(ClientError::NotFound(_)) => {
            p.sync().await?;
            Ok(p.resolve_file(name)?)
        }
        other => Ok(other?),
    }
}

/// A progress bar drawn with `template` on an interactive terminal; none with `--json` or
/// when stderr is not a terminal.
fn terminal_bar(json: bool, template: &str) -> Option<indicatif::ProgressBar> {
    (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    })
}

/// A secret the user gives: the first line of stdin (`from_stdin`), else the environment
/// variable `env`, else asked on the terminal with `prompt`.
fn secret_input(
    from_stdin: bool,
    env: &str,
    prompt: &str,
    flag: &str,
) -> Result<Zeroizing<String>, Failure> {
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| usage(format!("cannot read stdin: {e}")))?;
        Ok(Zeroizing::new(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    } else if let Ok(v) = std::env::var(env) {
        Ok(Zeroizing::new(v))
    } else if std::io::stdin().is_terminal() {
        read_secret(prompt)
    } else {
        Err(usage(format!("give it with {flag} or {env}")))
    }
}

/// Progress of a rotation: a bar on an interactive terminal, nothing otherwise.
type RotationCallback = Box<dyn FnMut(&RotationProgress)>;

fn rotation_bar(json: bool) -> (RotationCallback, Option<indicatif::ProgressBar>) {
    let Some(bar) = terminal_bar(json, "rotating [{bar:40}] {pos}/{len} files {msg}") else {
        return (Box::new(|_| {}), None);
    };
    let b = bar.clone();
    let cb = Box::new(move |p: &RotationProgress| {
        b.set_length(p.files_total);
        b.set_position(p.files_done);
        b.set_message(format!(
            "({}/{} member keys)",
            p.member_keys_done, p.member_keys_total
        ));
    });
    (cb, Some(bar))
}

/// Syncs first; offline, works from the local store (edits wait in it, exit 75).
async fn sync_unless_offline(p: &mut Profile) -> Result<(), Failure> {
    match p.sync().await {
        Ok(_) | Err(ClientError::Relay(RelayError::Unreachable(_))) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes decrypted data to `out`: owner-only (0600 on Unix), through `OUT.partial` and a
/// rename, so a file on disk is always whole.
fn write_private(out: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    let partial = PathBuf::from(name);
    let fail = |e: std::io::Error| Failure {
        exit: 1,
        code: "io",
        reason: None,
        message: format!("cannot write {}: {e}", out.display()),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&partial).map_err(fail)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(fail)?;
    std::fs::rename(&partial, out).map_err(fail)
}

fn card(a: CardArgs) -> CustomerCard {
    CustomerCard {
        nip: a.nip,
        regon: a.regon,
        emails: a.emails,
        phones: a.phones,
        contacts: a.contacts,
        addresses: a.addresses,
    }
}

fn day_arg(s: &str) -> Result<NaiveDate, Failure> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| usage(format!("{s:?} is not a day: use YYYY-MM-DD")))
}

async fn customer(p: &mut Profile, cmd: CustomerCmd) -> Result<Output, Failure> {
    sync_unless_offline(p).await?;
    match cmd {
        CustomerCmd::Add { name, card: c } => {
            let file = p.customer_add(&name, &card(c)).await?;
            Ok(Output {
                text: format!("Customer {name} added: {file}"),
                json: json!({ "file": file, "name": name }),
            })
        }
        CustomerCmd::List => {
            let list = p.customers()?;
            let text = list
                .iter()
                .map(|c| {
                    format!(
                        "{}  {:<8} {:<32} NIP {}{}{}",
                        c.file,
                        c.kind,
                        c.name,
                        c.nip.as_deref().unwrap_or("-"),
                        c.stage
                            .as_deref()
                            .map(|s| format!("  stage {s}"))
                            .unwrap_or_default(),
                        if c.conflicts.is_empty() {
                            String::new()
                        } else {
                            format!("  ({} conflicting edits)", c.conflicts.len())
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "customers": list }),
            })
        }
        CustomerCmd::Set { file, field, value } => {
            let f = p.resolve_file(&file)?;
            p.customer_set(f, &field, &value).await?;
            Ok(Output {
                text: format!("{file}: {field} set."),
                json: json!({ "file": f, "field": field }),
            })
        }
        CustomerCmd::Resolve { file } => {
            let f = p.resolve_file(&file)?;
            let n = p.dismiss_conflicts(f, CUSTOMER_CARD).await?;
            Ok(Output {
                text: format!("{n} conflicting edits dismissed."),
                json: json!({ "file": f, "dismissed": n }),
            })
        }
        CustomerCmd::Note { file, text } => {
            let f = p.resolve_file(&file)?;
            let id = p.note_add(f, &text).await?;
            Ok(Output {
                text: format!("Note added to {file}."),
                json: json!({ "file": f, "note": id.to_string() }),
            })
        }
        CustomerCmd::Timeline {
            file,
            limit,
            before,
        } => {
            let f = p.resolve_file(&file)?;
            let items = p.timeline(f, before.as_deref(), limit)?;
            let text = items
                .iter()
                .map(|i| {
                    format!(
                        "{}  {:<8} {}",
                        when::format(i.at_ms, DEFAULT_ZONE),
                        i.kind,
                        i.text
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "items": items }),
            })
        }
    }
}

async fn lead(p: &mut Profile, cmd: LeadCmd) -> Result<Output, Failure> {
    sync_unless_offline(p).await?;
    match cmd {
        LeadCmd::Add { name, card: c } => {
            let file = p.lead_add(&name, &card(c)).await?;
            Ok(Output {
                text: format!("Lead {name} added: {file}"),
                json: json!({ "file": file, "name": name }),
            })
        }
        LeadCmd::Stage { lead, stage } => {
            let f = p.resolve_file(&lead)?;
            p.lead_stage(f, &stage).await?;
            Ok(Output {
                text: format!("{lead}: stage {stage}."),
                json: json!({ "file": f, "stage": stage }),
            })
        }
        LeadCmd::Convert { lead } => {
            let f = p.resolve_file(&lead)?;
            p.lead_convert(f).await?;
            Ok(Output {
                text: format!("{lead} is a customer now; its history stays."),
                json: json!({ "file": f, "kind": "customer" }),
            })
        }
    }
}

async fn task(p: &mut Profile, cmd: TaskCmd) -> Result<Output, Failure> {
    sync_unless_offline(p).await?;
    match cmd {
        TaskCmd::Add {
            title,
            customer,
            assign,
            due,
            rrule,
            working_days,
            rolling,
            checklist,
        } => {
            let file = match customer {
                Some(c) => p.resolve_file(&c)?,
                None => p.ensure_office().await?,
            };
            let spec = TaskSpec {
                title: title.clone(),
                assignee: assign.map(|a| p.resolve_member(&a)).transpose()?,
                due: due.as_deref().map(day_arg).transpose()?,
                rrule,
                working_days,
                rolling,
                checklist,
                template: None,
            };
            let id = p.task_add(file, &spec).await?;
            Ok(Output {
                text: format!("Task {id}: {title}"),
                json: json!({ "task": id.to_string(), "file": file }),
            })
        }
        TaskCmd::List { customer, mine } => {
            let file = customer.map(|c| p.resolve_file(&c)).transpose()?;
            let list = p.tasks(file, mine)?;
            let text = list
                .iter()
                .map(|t| {
                    format!(
                        "{}  {:<5} {} {:<40} {}{}{}",
                        &t.id[..8.min(t.id.len())],
                        t.status,
                        t.shows_on
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "          ".into()),
                        t.title,
                        t.file_name.as_deref().unwrap_or(""),
                        if t.rolled_days > 0 {
                            format!("  (rolled {} days)", t.rolled_days)
                        } else {
                            String::new()
                        },
                        match t.delegation.as_deref() {
                            Some(d) => format!("  [delegated: {d}]"),
                            None => String::new(),
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "tasks": list }),
            })
        }
        TaskCmd::Done { task } => {
            let (f, t) = p.resolve_task(&task)?;
            p.task_done(f, t).await?;
            Ok(Output {
                text: "Done.".into(),
                json: json!({ "task": t.to_string(), "status": "done" }),
            })
        }
        TaskCmd::Delegate { task, member } => {
            let (f, t) = p.resolve_task(&task)?;
            let m = p.resolve_member(&member)?;
            p.task_delegate(f, t, m).await?;
            Ok(Output {
                text: format!("Delegated to {member}; waiting for them to accept."),
                json: json!({ "task": t.to_string(), "assignee": m }),
            })
        }
        TaskCmd::Accept { task } => {
            let (f, t) = p.resolve_task(&task)?;
            p.task_answer(f, t, true, None).await?;
            Ok(Output {
                text: "Accepted.".into(),
                json: json!({ "task": t.to_string(), "delegation": "accepted" }),
            })
        }
        TaskCmd::Return { task, comment } => {
            let (f, t) = p.resolve_task(&task)?;
            p.task_answer(f, t, false, Some(&comment)).await?;
            Ok(Output {
                text: "Returned.".into(),
                json: json!({ "task": t.to_string(), "delegation": "returned" }),
            })
        }
        TaskCmd::Resolve { task } => {
            let (f, t) = p.resolve_task(&task)?;
            let n = p.dismiss_conflicts(f, t).await?;
            Ok(Output {
                text: format!("{n} conflicting edits dismissed."),
                json: json!({ "task": t.to_string(), "dismissed": n }),
            })
        }
        TaskCmd::Attach { task, document } => {
            let (f, t) = p.resolve_task(&task)?;
            p.task_attach(f, t, &document).await?;
            Ok(Output {
                text: format!("{document} attached."),
                json: json!({ "task": t.to_string(), "document": document }),
            })
        }
        TaskCmd::Check { task, item, undo } => {
            let (f, t) = p.resolve_task(&task)?;
            if item == 0 {
                return Err(usage("checklist items count from 1"));
            }
            p.task_check(f, t, item - 1, !undo).await?;
            Ok(Output {
                text: "Checklist updated.".into(),
                json: json!({ "task": t.to_string(), "item": item, "done": !undo }),
            })
        }
    }
}

async fn template(p: &mut Profile, cmd: TemplateCmd) -> Result<Output, Failure> {
    match cmd {
        TemplateCmd::Set {
            id,
            title,
            title_en,
            rrule,
            note,
        } => {
            sync_unless_offline(p).await?;
            let t = ledgerline_client_core::work::templates::DeadlineTemplate {
                id: id.clone(),
                title_pl: title,
                title_en: title_en.unwrap_or_default(),
                rrule,
                note: note.unwrap_or_default(),
                source: "firm".into(),
            };
            p.template_set(&t).await?;
            Ok(Output {
                text: format!("Template {id} saved for the firm."),
                json: json!({ "template": t }),
            })
        }
        TemplateCmd::List => {
            sync_unless_offline(p).await?;
            let list = p.templates()?;
            let text = list
                .iter()
                .map(|t| {
                    format!(
                        "{:<14} {:<50} {:<32} {}",
                        t.id, t.title_pl, t.rrule, t.source
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "templates": list }),
            })
        }
        TemplateCmd::Apply { template, customer } => {
            p.sync().await?;
            let file = p.resolve_file(&customer)?;
            let id = p.template_apply(&template, file).await?;
            Ok(Output {
                text: format!("Template {template} applied to {customer}: task {id}"),
                json: json!({ "task": id.to_string(), "file": file, "template": template }),
            })
        }
    }
}

fn agenda_output(items: Vec<ledgerline_client_core::profile::AgendaItem>) -> Output {
    let text = items
        .iter()
        .map(|i| {
            format!(
                "{} {:<5}  {:<50} {}{}",
                i.date,
                i.time.as_deref().unwrap_or(""),
                i.title,
                i.file_name.as_deref().unwrap_or(""),
                if i.rolled_days > 0 {
                    format!("  (rolled {} days)", i.rolled_days)
                } else {
                    String::new()
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Output {
        text,
        json: json!({ "items": items }),
    }
}

fn local_time_arg(s: &str) -> Result<ledgerline_client_core::chrono::NaiveDateTime, Failure> {
    let s = s.trim();
    ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| ledgerline_client_core::chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| {
            usage(format!(
                "{s:?} is not a local time: use \"2026-12-03 10:00\""
            ))
        })
}

async fn cal(p: &mut Profile, cmd: CalCmd) -> Result<Output, Failure> {
    use ledgerline_client_core::chrono::{Datelike, Days, Months};
    sync_unless_offline(p).await?;
    match cmd {
        CalCmd::Add {
            title,
            customer,
            start,
            end,
            rrule,
            location,
        } => {
            let file = match customer {
                Some(c) => p.resolve_file(&c)?,
                None => p.ensure_office().await?,
            };
            let spec = EventSpec {
                title: title.clone(),
                start: local_time_arg(&start)?,
                end: end.as_deref().map(local_time_arg).transpose()?,
                rrule,
                location,
            };
            let id = p.event_add(file, &spec).await?;
            Ok(Output {
                text: format!("Event {id}: {title}"),
                json: json!({ "event": id.to_string(), "file": file }),
            })
        }
        CalCmd::Except { event, day } => {
            let (f, e) = p.resolve_event(&event)?;
            let d = day_arg(&day)?;
            p.event_except(f, e, d).await?;
            Ok(Output {
                text: format!("The occurrence on {d} is cancelled."),
                json: json!({ "event": e.to_string(), "cancelled": d }),
            })
        }
        CalCmd::Month { month } => {
            let first = match month {
                Some(m) => day_arg(&format!("{m}-01"))
                    .map_err(|_| usage(format!("{m:?} is not a month: use YYYY-MM")))?,
                None => today().with_day(1).unwrap_or_else(today),
            };
            let last = first
                .checked_add_months(Months::new(1))
                .and_then(|n| n.pred_opt())
                .unwrap_or(first);
            Ok(agenda_output(p.agenda(first, last)?))
        }
        CalCmd::Week { day } => {
            let d = match day {
                Some(d) => day_arg(&d)?,
                None => today(),
            };
            let monday = d
                .checked_sub_days(Days::new(u64::from(d.weekday().num_days_from_monday())))
                .unwrap_or(d);
            let sunday = monday.checked_add_days(Days::new(6)).unwrap_or(monday);
            Ok(agenda_output(p.agenda(monday, sunday)?))
        }
        CalCmd::Export { out } => {
            let text = p.ics()?;
            write_private(&out, text.as_bytes())?;
            Ok(Output {
                text: format!("Calendar written to {}", out.display()),
                json: json!({ "out": out, "bytes": text.len() }),
            })
        }
        CalCmd::Agenda { from, to } => {
            let from = match from {
                Some(f) => day_arg(&f)?,
                None => today(),
            };
            let to = match to {
                Some(t) => day_arg(&t)?,
                None => from
                    .checked_add_days(ledgerline_client_core::chrono::Days::new(30))
                    .unwrap_or(from),
            };
            if to < from {
                return Err(usage("--to must not come before --from"));
            }
            Ok(agenda_output(p.agenda(from, to)?))
        }
    }
}

fn parse_year(s: &str) -> Result<u16, String> {
    ledgerline_client_core::profile::parse_document_year(s).map_err(|e| e.to_string())
}

fn policy_text(p: &RetentionPolicy) -> String {
    let months = match p.chat_months {
        0 => "kept".to_owned(),
        n => format!("{n} months"),
    };
    let years = match p.docs_years {
        0 => "kept".to_owned(),
        n => format!("{n} years after their year"),
    };
    let hold = if p.legal_hold { ", LEGAL HOLD" } else { "" };
    format!("chat: {months}; documents: {years}{hold}")
}

async fn retention(p: &mut Profile, cmd: RetentionCmd) -> Result<Output, Failure> {
    match cmd {
        RetentionCmd::Set {
            file,
            chat_months,
            docs_years,
            legal_hold,
            no_legal_hold,
        } => {
            let id = file_of(p, &file).await?;
            let now = p.retention(id)?.unwrap_or_default();
            let policy = RetentionPolicy {
                chat_months: chat_months.unwrap_or(now.chat_months),
                docs_years: docs_years.unwrap_or(now.docs_years),
                legal_hold: (now.legal_hold || legal_hold) && !no_legal_hold,
            };
            let changed = p.set_retention(id, policy).await?;
            Ok(Output {
                text: format!(
                    "{}{file}: {}",
                    if changed { "" } else { "unchanged: " },
                    policy_text(&policy)
                ),
                json: json!({ "file": id, "policy": policy, "changed": changed }),
            })
        }
        RetentionCmd::Show { file } => {
            let only = match file {
                Some(f) => Some(file_of(p, &f).await?),
                None => None,
            };
            let mut rows = Vec::new();
            for f in p.files()? {
                if only.is_some_and(|o| o != f.id) {
                    continue;
                }
                if let Some(policy) = p.retention(f.id)? {
                    rows.push((f.id, f.name.unwrap_or_else(|| f.id.to_string()), policy));
                }
            }
            Ok(Output {
                text: if rows.is_empty() {
                    "No retention policy: everything is kept until a file is erased.".into()
                } else {
                    rows.iter()
                        .map(|(_, name, policy)| format!("{name}: {}", policy_text(policy)))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
                json: json!({ "files": rows.iter().map(|(f, name, policy)| json!({ "file": f, "name": name, "policy": policy })).collect::<Vec<_>>() }),
            })
        }
    }
}

async fn cover(p: &mut Profile, cmd: CoverCmd, json: bool) -> Result<Output, Failure> {
    use ledgerline_client_core::when::DateMeans;
    p.sync().await?;
    match cmd {
        CoverCmd::Grant {
            absent,
            colleague,
            from,
            until,
        } => {
            let time = |s: &str, means| when::parse(s, DEFAULT_ZONE, means).map_err(usage);
            let from_ms = match from {
                Some(f) => time(&f, DateMeans::StartOfDay)?,
                None => ledgerline_client_core::profile::now_ms(),
            };
            let until_ms = time(&until, DateMeans::EndOfDay)?;
            if until_ms <= from_ms {
                return Err(usage("--until must come after --from"));
            }
            let (a, c) = (p.resolve_member(&absent)?, p.resolve_member(&colleague)?);
            let g = p.grant_cover(a, c, from_ms, until_ms).await?;
            Ok(Output {
                text: format!(
                    "Cover {}: {colleague} works in {absent}'s {} customer files from {} until {}.\n\
                     Keys wrapped for {colleague}: {}; conversations forwarded: {}. \
                     It expires by itself; `ledgerline cover end {}` ends it sooner.",
                    g.id,
                    g.files,
                    when::format(from_ms, DEFAULT_ZONE),
                    when::format(until_ms, DEFAULT_ZONE),
                    g.wrapped,
                    g.forwarded,
                    g.id
                ),
                json: json!({ "cover": g, "from_ms": from_ms, "until_ms": until_ms }),
            })
        }
        CoverCmd::List => {
            let covers = p.covers()?;
            let who = |name: &Option<String>, id: &dyn std::fmt::Display| {
                name.clone().unwrap_or_else(|| id.to_string())
            };
            let text = if covers.is_empty() {
                "No absence covers.".to_owned()
            } else {
                covers
                    .iter()
                    .map(|c| {
                        format!(
                            "{:>4}  {:<8} {} covers {}  {} – {}  {} files",
                            c.id,
                            c.state,
                            who(&c.colleague_name, &c.colleague),
                            who(&c.absent_name, &c.absent),
                            when::format(c.from_ms, DEFAULT_ZONE),
                            when::format(c.until_ms, DEFAULT_ZONE),
                            c.files
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Ok(Output {
                text,
                json: json!({ "covers": covers }),
            })
        }
        CoverCmd::End { id } => {
            let (mut cb, bar) = rotation_bar(json);
            let report = p.end_cover(id, &mut cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let r = report?;
            Ok(Output {
                text: format!(
                    "Cover {id} has ended: the relay refuses the colleague in its files.\n\
                     Rotated in {} ms: {} customer files ({} epoch wraps and links), {} of this \
                     device's room sessions ({} Olm shares).",
                    r.total_ms, r.files, r.epoch_wraps, r.room_sessions, r.olm_shares
                ),
                json: json!(r),
            })
        }
    }
}

fn rotation_output(what: &str, r: &RotationReport) -> Output {
    Output {
        text: format!(
            "{what}: the relay refuses it from now on ({} ms).\n\
             Rotated in {} ms: {} member keys ({} device wraps), {} team keys, {} customer \
             files ({} epoch wraps and links), {} of this device's room sessions ({} Olm \
             shares, {} ms); {} requests, {} ms wrapping.\n\
             Every other device starts a new room session at its next message.",
            r.refused_after_ms,
            r.total_ms,
            r.member_keys,
            r.member_key_wraps,
            r.team_keys,
            r.files,
            r.epoch_wraps,
            r.room_sessions,
            r.olm_shares,
            r.room_ms,
            r.requests,
            r.wrap_us / 1000,
        ),
        json: json!(r),
    }
}

/// A progress bar on an interactive terminal (never with `--json`).
fn progress_bar(json: bool) -> (Progress, Option<indicatif::ProgressBar>) {
    let Some(bar) = terminal_bar(
        json,
        "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) else {
        return (Arc::new(|_, _, _| {}), None);
    };
    let b = bar.clone();
    let cb: Progress = Arc::new(move |phase, done, total| {
        b.set_message(match phase {
            Phase::Encrypt => "encrypt",
            Phase::Upload => "upload",
            Phase::Download => "download",
        });
        b.set_length(total);
        b.set_position(done);
    });
    (cb, Some(bar))
}

/// A list of documents: id, size and name per line.
fn document_list(docs: &[DocumentManifest]) -> Output {
    Output {
        text: docs
            .iter()
            .map(|m| format!("{}  {:>12}  {}", m.document, m.size, m.name))
            .collect::<Vec<_>>()
            .join("\n"),
        json: json!({ "documents": docs.iter().map(manifest_json).collect::<Vec<_>>() }),
    }
}

/// What a finished download prints.
fn downloaded(m: &DocumentManifest, out: &std::path::Path) -> Output {
    Output {
        text: format!(
            "{} → {} ({} bytes, SHA-256 verified)",
            m.name,
            out.display(),
            m.size
        ),
        json: manifest_json(m),
    }
}

fn manifest_json(m: &DocumentManifest) -> Value {
    json!({ "document": m.document, "name": m.name, "size": m.size, "root": m.root, "epoch": m.epoch, "uploaded_ms": m.uploaded_ms, "year": m.year() })
}

async fn doc(p: &mut Profile, cmd: DocCmd, json: bool) -> Result<Output, Failure> {
    match cmd {
        DocCmd::Upload { file, path, year } => {
            let file = file_of(p, &file).await?;
            let (cb, bar) = progress_bar(json);
            let m = p.upload_document(file, &path, year, cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let m = m?;
            Ok(Output {
                text: format!("uploaded {} ({} bytes) as {}", m.name, m.size, m.document),
                json: manifest_json(&m),
            })
        }
        DocCmd::Download { file, doc, out } => {
            let file = file_of(p, &file).await?;
            let doc = match p.resolve_document(file, &doc) {
                Err(ClientError::NotFound(_)) => {
                    p.sync().await?;
                    p.resolve_document(file, &doc)?
                }
                other => other?,
            };
            let (cb, bar) = progress_bar(json);
            let m = p.download_document(file, doc, &out, cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            Ok(downloaded(&m?, &out))
        }
        DocCmd::List { file } => {
            let file = file_of(p, &file).await?;
            p.sync().await?;
            let docs = p.documents(file)?;
            Ok(document_list(&docs))
        }
    }
}

fn mail_when(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| {
            ledgerline_client_core::chrono::TimeZone::timestamp_millis_opt(&DEFAULT_ZONE, ms)
                .single()
        })
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn placed_line(m: &PlacedMail) -> String {
    format!(
        "{}  → {}  [{}]  ({}){}",
        &m.id.to_string()[..12],
        m.file_name.clone().unwrap_or_else(|| m.file.to_string()),
        m.category,
        m.reason,
        if m.queued { "  (queued)" } else { "" }
    )
}

async fn mail(p: &mut Profile, cmd: MailCmd, json: bool) -> Result<Output, Failure> {
    match cmd {
        MailCmd::Connect {
            host,
            port,
            user,
            folder,
            ca_file,
            password_stdin,
        } => {
            let password = secret_input(
                password_stdin,
                "LEDGERLINE_MAIL_PASSWORD",
                &format!("Password of {user} at {host}: "),
                "--password-stdin",
            )?;
            if password.is_empty() {
                return Err(usage("the password is empty"));
            }
            let config = MailboxConfig {
                host,
                port,
                user,
                folder,
                ca_file: ca_file.map(|f| std::fs::canonicalize(&f).unwrap_or(f)),
            };
            let m = p.mail_connect(config, &password).await?;
            Ok(Output {
                text: format!(
                    "Connected {} (password kept in the {}). `ledgerline mail fetch` reads it.",
                    m.label, m.password_in
                ),
                json: json!(m),
            })
        }
        MailCmd::List => {
            let boxes = p.mailboxes()?;
            Ok(Output {
                text: boxes
                    .iter()
                    .map(|m| {
                        format!(
                            "{}  (read to UID {}, password in the {})",
                            m.label, m.last_uid, m.password_in
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!({ "mailboxes": boxes }),
            })
        }
        MailCmd::Disconnect { mailbox } => {
            p.mail_disconnect(&mailbox)?;
            Ok(Output {
                text: format!("{mailbox} is no longer read; its password is forgotten."),
                json: json!({ "disconnected": mailbox }),
            })
        }
        MailCmd::Fetch => {
            // Fresh rules and customer cards first; without the relay the mail is still
            // read, and the fetch stops (resumably) at the first message bound for a file.
            match p.sync().await {
                Ok(_) | Err(ClientError::Relay(RelayError::Unreachable(_))) => {}
                Err(e) => return Err(e.into()),
            }
            let bar = terminal_bar(json, "mail [{bar:40}] {pos}/{len}");
            let b = bar.clone();
            let report = p
                .mail_fetch(&move |done, total| {
                    if let Some(b) = &b {
                        b.set_length(total);
                        b.set_position(done);
                    }
                })
                .await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let r = report?;
            let mut text = format!(
                "{} new message(s) read: {} into customer files, {} to the inbox, {} seen before, {} unreadable.",
                r.read,
                r.imported.len(),
                r.inbox,
                r.duplicates,
                r.failed.len()
            );
            for m in &r.imported {
                text.push_str(&format!("\n  {}", placed_line(m)));
            }
            for f in &r.failed {
                text.push_str(&format!(
                    "\n  unreadable: {} UID {}: {}",
                    f.mailbox, f.uid, f.reason
                ));
            }
            for m in &r.uid_validity_changed {
                text.push_str(&format!("\n  {m}: the server renumbered the folder (UIDVALIDITY); read again, nothing imported twice"));
            }
            for (m, e) in &r.unreachable {
                text.push_str(&format!("\n  {m}: {e}"));
            }
            if let Some(stop) = &r.stopped {
                // What was read is kept; the rest comes at the next fetch.
                if json {
                    println!("{}", json!(r));
                }
                return Err(Failure {
                    exit: 3,
                    code: "relay_unreachable",
                    reason: None,
                    message: format!(
                        "{text}\nstopped: {stop}; `ledgerline mail fetch` goes on from here"
                    ),
                });
            }
            if r.inbox > 0 {
                text.push_str("\n`ledgerline mail inbox` lists the mail no rule placed.");
            }
            Ok(Output {
                text,
                json: json!(r),
            })
        }
        MailCmd::Inbox => {
            let inbox = p.mail_inbox()?;
            Ok(Output {
                text: inbox
                    .iter()
                    .map(|m| {
                        format!(
                            "{}  {}  {}  {}  [{}]  ({}){}",
                            m.id,
                            m.date_ms.map(mail_when).unwrap_or_default(),
                            m.from,
                            m.subject,
                            m.category,
                            m.reason,
                            if m.attachments.is_empty() {
                                String::new()
                            } else {
                                format!("  📎 {}", m.attachments.join(", "))
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!({ "inbox": inbox }),
            })
        }
        MailCmd::Assign {
            id,
            file,
            rule,
            category,
        } => {
            let rule = rule
                .map(|r| r.parse::<RuleOn>())
                .transpose()
                .map_err(usage)?;
            if rule == Some(RuleOn::Attachment) {
                return Err(usage(
                    "--rule is from (this sender), domain (the sender's domain) or subject",
                ));
            }
            let file = file_of(p, &file).await?;
            let r = p.mail_assign(&id, file, rule, category).await?;
            let mut text = format!("Assigned: {}", placed_line(&r.placed));
            if let Some(rule) = &r.rule {
                text.push_str(&format!(
                    "\nNew rule {}: {} {:?}",
                    &rule.id[..12],
                    rule.rule.on.word(),
                    rule.rule.pattern
                ));
            }
            for m in &r.also_placed {
                text.push_str(&format!("\nAlso placed by the rule: {}", placed_line(m)));
            }
            Ok(Output {
                text,
                json: json!(r),
            })
        }
        MailCmd::Rules => {
            p.sync().await?;
            let rules = p.mail_rules()?;
            Ok(Output {
                text: rules.iter().map(rule_line).collect::<Vec<_>>().join("\n"),
                json: json!({ "rules": rules }),
            })
        }
        MailCmd::RuleAdd {
            on,
            pattern,
            file,
            category,
        } => {
            let on: RuleOn = on.parse().map_err(usage)?;
            let file = match file {
                Some(f) => Some(file_of(p, &f).await?),
                None => None,
            };
            let r = p
                .mail_rule_add(Rule {
                    on,
                    pattern,
                    file,
                    category,
                })
                .await?;
            Ok(Output {
                text: format!("Rule added: {}", rule_line(&r)),
                json: json!(r),
            })
        }
        MailCmd::RuleRemove { id } => {
            p.sync().await?;
            p.mail_rule_remove(&id).await?;
            Ok(Output {
                text: "Rule removed.".into(),
                json: json!({ "removed": id }),
            })
        }
        MailCmd::Read { file } => {
            let file = file_of(p, &file).await?;
            p.sync().await?;
            let mails = p.mails(file)?;
            Ok(Output {
                text: mails
                    .iter()
                    .map(|m| {
                        format!(
                            "{}  {}  {}  {}  [{}]{}",
                            &m.id.to_string()[..12],
                            mail_when(m.date_ms),
                            m.from_name.clone().unwrap_or_else(|| m.from.clone()),
                            m.subject,
                            m.category,
                            if m.attachments.is_empty() {
                                String::new()
                            } else {
                                format!("  📎 {}", m.attachments.len())
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!({ "mail": mails }),
            })
        }
        MailCmd::Show { id } => {
            let m = p.mail(&id)?;
            let mut text = format!(
                "From: {}{}\nDate: {}\nSubject: {}\nCategory: {} ({})\n",
                m.from_name
                    .as_ref()
                    .map(|n| format!("{n} "))
                    .unwrap_or_default(),
                format_args!("<{}>", m.from),
                mail_when(m.date_ms),
                m.subject,
                m.category,
                m.reason
            );
            for (doc, name) in &m.attachments {
                text.push_str(&format!("Attachment: {name}  ({doc})\n"));
            }
            for w in &m.warnings {
                text.push_str(&format!("Note: {w}\n"));
            }
            text.push('\n');
            text.push_str(&m.text);
            Ok(Output {
                text,
                json: json!(m),
            })
        }
        MailCmd::Categorise { id, category } => {
            p.mail_categorise(&id, &category).await?;
            Ok(Output {
                text: format!("Category set to {category}."),
                json: json!({ "id": id, "category": category }),
            })
        }
        MailCmd::Status => {
            let boxes = p.mailboxes()?;
            let failed = p.mail_failures()?;
            let inbox = p.mail_inbox()?.len();
            let mut text = boxes
                .iter()
                .map(|m| {
                    format!(
                        "{}  UIDVALIDITY {}  read to UID {}",
                        m.label,
                        m.uid_validity
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "-".into()),
                        m.last_uid
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            text.push_str(&format!("\n{inbox} message(s) in the inbox."));
            for f in &failed {
                text.push_str(&format!(
                    "\nunreadable: {} UID {}: {}",
                    f.mailbox, f.uid, f.reason
                ));
            }
            Ok(Output {
                text,
                json: json!({ "mailboxes": boxes, "inbox": inbox, "failed": failed }),
            })
        }
    }
}

fn rule_line(r: &RuleView) -> String {
    let mut s = format!("{}  {} {:?}", &r.id[..12], r.rule.on.word(), r.rule.pattern);
    if let Some(f) = r.rule.file {
        s.push_str(&format!(
            " → {}",
            r.file_name.clone().unwrap_or_else(|| f.to_string())
        ));
    }
    if let Some(c) = &r.rule.category {
        s.push_str(&format!(" [{c}]"));
    }
    s
}

async fn guest(p: &mut Profile, cmd: GuestCmd, json: bool) -> Result<Output, Failure> {
    match cmd {
        GuestCmd::Invite { file, name, hours } => {
            if !(1..=720).contains(&hours) {
                return Err(usage("--hours is 1 to 720 (30 days)"));
            }
            p.sync().await?;
            p.may_invite_guests()?;
            let file = file_of(p, &file).await?;
            let code = p.invite_guest(file, &name, hours * 3600 * 1000).await?;
            Ok(Output {
                text: format!("Guest invitation for {name} (give it over a channel you trust; valid {hours} h):\n\n    {code}\n\nWhen {name} has joined, compare fingerprints and run `ledgerline approve {name:?}`."),
                json: json!({ "name": name, "code": code, "file": file, "expires_in_hours": hours }),
            })
        }
        GuestCmd::List => {
            p.sync().await?;
            let guests = p.guests()?;
            let text = guests
                .iter()
                .map(|g| {
                    format!(
                        "{}  {}  {}{}",
                        g.id,
                        g.name.as_deref().unwrap_or("?"),
                        g.file_name.clone().unwrap_or_else(|| g.file.to_string()),
                        if g.active { "" } else { "  (revoked)" }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "guests": guests }),
            })
        }
        GuestCmd::Revoke { guest } => {
            p.sync().await?;
            let m = p.resolve_member(&guest)?;
            if !p.is_guest_member(&m) {
                return Err(usage(format!(
                    "{guest} is not a guest (use `ledgerline member revoke` for staff)"
                )));
            }
            let (mut cb, bar) = rotation_bar(json);
            let report = p.revoke_member(m, &mut cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            Ok(rotation_output(&format!("{guest} is revoked"), &report?))
        }
    }
}

/// The file of a conversation command: a guest's own, or the one named (staff).
async fn conversation_file(p: &mut Profile, file: Option<String>) -> Result<FileId, Failure> {
    if p.guest_file().is_none() && file.is_none() {
        // A guest admitted since the last sync learns it here.
        p.sync().await?;
    }
    match (p.guest_file(), file) {
        (Some(own), None) => Ok(own),
        (Some(own), Some(named)) => {
            if named.parse::<FileId>().ok() == Some(own) {
                Ok(own)
            } else {
                Err(usage("a guest has one conversation: leave out --file"))
            }
        }
        (None, Some(named)) => file_of(p, &named).await,
        (None, None) => Err(usage("name the customer file with --file")),
    }
}

async fn conversation(
    p: &mut Profile,
    cmd: ConversationCmd,
    json: bool,
) -> Result<Output, Failure> {
    match cmd {
        ConversationCmd::Send {
            text,
            file,
            internal,
            reply_to,
        } => {
            let file = conversation_file(p, file).await?;
            if internal && p.is_guest() {
                return Err(usage("a guest's messages always go to the conversation"));
            }
            let to = if internal {
                Conversation::File(file)
            } else {
                p.customer_conversation(file)
            };
            let event = RoomEvent::Text {
                body: text,
                reply_to,
            };
            let seq = p.send(to, event).await?;
            Ok(Output {
                text: format!("sent #{seq}{}", if internal { " (internal)" } else { "" }),
                json: json!({ "file": file, "seq": seq, "internal": internal }),
            })
        }
        ConversationCmd::Read { file } => {
            let offline = match p.sync().await {
                Err(ClientError::Relay(RelayError::Unreachable(e))) => Some(e),
                other => other.map(|_| None)?,
            };
            let file = conversation_file(p, file).await?;
            let messages = p.customer_view(file)?;
            p.record_opened(p.customer_conversation(file)).await?;
            if let Some(e) = &offline {
                eprintln!("ledgerline: relay unreachable ({e}); showing what this device has");
            }
            let text = messages
                .iter()
                .map(|c| {
                    let m = &c.message;
                    let who = m
                        .name
                        .clone()
                        .unwrap_or_else(|| m.sender.to_string().chars().take(8).collect());
                    let body = if m.deleted {
                        "(deleted)".to_owned()
                    } else if m.waiting_for_key {
                        "(waiting for the key)".to_owned()
                    } else if m.attachment.is_some() {
                        format!("[document] {}", m.body.clone().unwrap_or_default())
                    } else {
                        m.body.clone().unwrap_or_default()
                    };
                    format!(
                        "{}#{} {}: {}",
                        if c.internal { "[internal] " } else { "" },
                        m.seq,
                        who,
                        body
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "file": file, "messages": messages }),
            })
        }
        ConversationCmd::Share { path, file } => {
            let file = conversation_file(p, file).await?;
            let (cb, bar) = progress_bar(json);
            let m = p.share_document(file, &path, cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let m = m?;
            Ok(Output {
                text: format!("shared {} ({} bytes) as {}", m.name, m.size, m.document),
                json: manifest_json(&m),
            })
        }
        ConversationCmd::Docs { file } => {
            p.sync().await?;
            let file = conversation_file(p, file).await?;
            let docs = p.shared_documents(file)?;
            Ok(document_list(&docs))
        }
        ConversationCmd::Download { doc, out, file } => {
            p.sync().await?;
            let file = conversation_file(p, file).await?;
            let (cb, bar) = progress_bar(json);
            let m = p.download_shared(file, &doc, &out, cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            Ok(downloaded(&m?, &out))
        }
    }
}

/// Resolves a conversation, syncing once if this profile does not know it yet.
async fn conversation_of(p: &mut Profile, target: &str) -> Result<Conversation, Failure> {
    match p.resolve_conversation(target).await {
        Err(ClientError::NotFound(_)) => {
            p.sync().await?;
            Ok(p.resolve_conversation(target).await?)
        }
        other => Ok(other?),
    }
}

fn conversation_json(c: Conversation) -> (&'static str, String) {
    match c {
        Conversation::File(f) => ("file", f.to_hex()),
        Conversation::Customer { room, .. } => ("conversation", hex::encode(room)),
        Conversation::Room(r) => ("room", hex::encode(r)),
    }
}

async fn chat(p: &mut Profile, cmd: ChatCmd) -> Result<Output, Failure> {
    let (to, event) = match cmd {
        ChatCmd::Read { to } => {
            // Out of reach, the conversation is read from the local store; the opening
            // reaches the access log at the next sync.
            let offline = match p.sync().await {
                Err(ClientError::Relay(RelayError::Unreachable(e))) => Some(e),
                other => other.map(|_| None)?,
            };
            let conv = conversation_of(p, &to).await?;
            let messages = p.conversation(conv)?;
            p.record_opened(conv).await?;
            if let Some(e) = &offline {
                eprintln!("ledgerline: relay unreachable ({e}); showing what this device has");
            }
            let text = messages
                .iter()
                .map(|m| {
                    let who = m
                        .name
                        .clone()
                        .unwrap_or_else(|| m.sender.to_string().chars().take(8).collect());
                    let body = if m.deleted {
                        "(deleted)".to_owned()
                    } else if m.waiting_for_key {
                        "(waiting for the key)".to_owned()
                    } else {
                        m.body.clone().unwrap_or_default()
                    };
                    format!(
                        "#{} {}: {}{}{}",
                        m.seq,
                        who,
                        body,
                        if m.edited { " (edited)" } else { "" },
                        if m.read_by.is_empty() {
                            String::new()
                        } else {
                            format!("  [read by {}]", m.read_by.len())
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let (kind, id) = conversation_json(conv);
            return Ok(Output {
                text,
                json: json!({ kind: id, "messages": messages }),
            });
        }
        ChatCmd::MarkRead { to } => {
            p.sync().await?;
            let conv = conversation_of(p, &to).await?;
            let up_to = p.mark_read(conv).await?;
            let (kind, id) = conversation_json(conv);
            return Ok(Output {
                text: format!("read up to #{}", up_to.unwrap_or(0)),
                json: json!({ kind: id, "up_to": up_to }),
            });
        }
        ChatCmd::Send {
            to,
            text,
            reply_to,
            template,
            values,
        } => {
            let body = match (text, template) {
                (Some(text), _) if text == "-" => text_from_stdin()?,
                (Some(text), _) => text,
                (None, Some(name)) => {
                    sync_unless_offline(p).await?;
                    let file = match conversation_of(p, &to).await? {
                        Conversation::File(f) | Conversation::Customer { file: f, .. } => Some(f),
                        Conversation::Room(_) => None,
                    };
                    render_reply(p, &name, file, &values)?
                }
                (None, None) => return Err(usage("give a text or --template NAME")),
            };
            (to, RoomEvent::Text { body, reply_to })
        }
        ChatCmd::Edit { to, seq, text } => (
            to,
            RoomEvent::Edit {
                target: seq,
                body: text,
            },
        ),
        ChatCmd::Delete { to, seq } => (to, RoomEvent::Delete { target: seq }),
    };
    let conv = conversation_of(p, &to).await?;
    let seq = p.send(conv, event).await?;
    let (kind, id) = conversation_json(conv);
    Ok(Output {
        text: format!("sent #{seq}"),
        json: json!({ kind: id, "seq": seq }),
    })
}

async fn offer(p: &mut Profile, cmd: OfferCmd) -> Result<Output, Failure> {
    use ledgerline_client_core::work::offers::parse_line;
    use ledgerline_client_core::work::replies::format_amount;
    sync_unless_offline(p).await?;
    let (offer, to) = match cmd {
        OfferCmd::Add {
            lead,
            services,
            valid_until,
        } => {
            let file = file_of(p, &lead).await?;
            let lines = services
                .iter()
                .map(|s| parse_line(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(usage)?;
            let until = match valid_until {
                Some(d) => day_arg(&d)?,
                None => today() + ledgerline_client_core::chrono::Days::new(30),
            };
            let id = p.offer_add(file, lines, until).await?;
            let view = p.offer(file, id)?;
            return Ok(Output {
                text: format!(
                    "Offer {id} (draft), valid through {until}: {} net monthly ({} gross), {} net once ({} gross).",
                    format_amount(view.totals.monthly.total.net),
                    format_amount(view.totals.monthly.total.gross),
                    format_amount(view.totals.one_off.total.net),
                    format_amount(view.totals.one_off.total.gross),
                ),
                json: json!(view),
            });
        }
        OfferCmd::List { lead } => {
            let file = file_of(p, &lead).await?;
            let all = p.offers(file)?;
            let text = all
                .iter()
                .map(|o| {
                    let mut s = format!(
                        "{}  {:<9} valid through {}{}\n",
                        o.id,
                        o.status,
                        o.valid_until.map(|d| d.to_string()).unwrap_or_default(),
                        if o.expired { " (expired)" } else { "" }
                    );
                    for l in &o.lines {
                        s.push_str(&format!(
                            "    {:<40} {:>16} {:<8} VAT {}\n",
                            l.service,
                            format_amount(l.net),
                            match l.billing {
                                ledgerline_client_core::work::offers::Billing::Monthly => "monthly",
                                ledgerline_client_core::work::offers::Billing::OneOff => "once",
                            },
                            l.vat.label()
                        ));
                    }
                    for (what, sum) in [("monthly", &o.totals.monthly), ("once", &o.totals.one_off)]
                    {
                        if !sum.rates.is_empty() {
                            s.push_str(&format!(
                                "    {what}: net {}, VAT {}, gross {}\n",
                                format_amount(sum.total.net),
                                format_amount(sum.total.vat),
                                format_amount(sum.total.gross)
                            ));
                        }
                    }
                    s
                })
                .collect::<String>();
            return Ok(Output {
                text: if text.is_empty() {
                    "No offers.".into()
                } else {
                    text.trim_end().to_owned()
                },
                json: json!({ "offers": all }),
            });
        }
        OfferCmd::Send { offer, lang } => {
            let lang = offer_lang(&lang)?;
            let (file, id) = p.resolve_offer(&offer)?;
            let pdf = p.offer_send(file, id, lang).await?;
            let name = p
                .documents(file)?
                .into_iter()
                .find(|m| m.document == pdf)
                .map(|m| m.name)
                .unwrap_or_default();
            return Ok(Output {
                text: format!("Offer {id} is sent; its PDF is in the file as {name:?}."),
                json: json!({ "offer": id, "file": file, "status": "sent", "document": pdf, "name": name }),
            });
        }
        OfferCmd::Pdf { offer, out, lang } => {
            let lang = offer_lang(&lang)?;
            let (file, id) = p.resolve_offer(&offer)?;
            let (name, bytes) = p.offer_pdf(file, id, lang)?;
            write_private(&out, &bytes)?;
            return Ok(Output {
                text: format!(
                    "Offer {id} written to {} ({} bytes).",
                    out.display(),
                    bytes.len()
                ),
                json: json!({ "offer": id, "file": file, "path": out, "name": name, "size": bytes.len() }),
            });
        }
        OfferCmd::Accept { offer } => (offer, "accepted"),
        OfferCmd::Reject { offer } => (offer, "rejected"),
    };
    let (file, id) = p.resolve_offer(&offer)?;
    p.offer_status(file, id, to).await?;
    Ok(Output {
        text: format!("Offer {id} is {to}."),
        json: json!({ "offer": id, "file": file, "status": to }),
    })
}

fn offer_lang(s: &str) -> Result<ledgerline_client_core::work::offer_pdf::Lang, Failure> {
    ledgerline_client_core::work::offer_pdf::Lang::parse(s)
        .ok_or_else(|| usage(format!("{s:?} is not a language: pl or en")))
}

fn render_reply(
    p: &Profile,
    name: &str,
    file: Option<FileId>,
    v: &ReplyArgs,
) -> Result<String, Failure> {
    let deadline = v.deadline.as_deref().map(day_arg).transpose()?;
    Ok(p.render_reply(name, file, deadline, v.amount.as_deref())?)
}

async fn reply(p: &mut Profile, cmd: ReplyCmd) -> Result<Output, Failure> {
    sync_unless_offline(p).await?;
    match cmd {
        ReplyCmd::List => {
            let all = p.reply_templates()?;
            let text = all
                .iter()
                .map(|t| {
                    format!(
                        "{:<24} {:<9} {}",
                        t.name,
                        if t.personal { "personal" } else { "firm" },
                        t.body.replace('\n', " ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text: if text.is_empty() {
                    "No reply templates.".into()
                } else {
                    text
                },
                json: json!({ "templates": all }),
            })
        }
        ReplyCmd::Set {
            name,
            text,
            personal,
        } => {
            p.reply_template_set(&name, &text, personal).await?;
            Ok(Output {
                text: format!(
                    "Template {name} saved ({}).",
                    if personal { "yours" } else { "the firm's" }
                ),
                json: json!({ "name": name.trim(), "personal": personal }),
            })
        }
        ReplyCmd::Delete { name, personal } => {
            p.reply_template_delete(&name, personal).await?;
            Ok(Output {
                text: format!("Template {name} deleted."),
                json: json!({ "name": name.trim(), "deleted": true }),
            })
        }
        ReplyCmd::Show {
            name,
            customer,
            values,
        } => {
            let file = match customer {
                Some(c) => Some(file_of(p, &c).await?),
                None => None,
            };
            let text = render_reply(p, &name, file, &values)?;
            Ok(Output {
                json: json!({ "name": name, "text": text }),
                text,
            })
        }
    }
}

async fn room(p: &mut Profile, cmd: RoomCmd) -> Result<Output, Failure> {
    p.sync().await?;
    match cmd {
        RoomCmd::Create { name, members } => {
            let ids = members
                .iter()
                .map(|m| p.resolve_member(m))
                .collect::<Result<Vec<_>, _>>()?;
            let room = p.create_room(&name, &ids, false).await?;
            Ok(Output {
                text: hex::encode(room),
                json: json!({ "room": hex::encode(room), "name": name }),
            })
        }
        RoomCmd::List => {
            let rooms = p.rooms();
            let text = rooms
                .iter()
                .map(|r| {
                    format!(
                        "{}  {:<24} {} member(s){}",
                        r.id,
                        r.name.as_deref().unwrap_or("?"),
                        r.members.len(),
                        if r.direct { "  (direct)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                text,
                json: json!({ "rooms": rooms }),
            })
        }
    }
}

/// `audit verify`: streams the bundle through the verifier, printing rows as they verify.
fn verify_bundle(
    path: &std::path::Path,
    csv: bool,
    json: bool,
    witness: Option<&str>,
    strict: bool,
    names: Option<&ledgerline_audit::NameMap>,
) -> Result<Output, Failure> {
    use std::io::BufRead;
    let mut opts = ledgerline_audit::Options {
        strict,
        ..ledgerline_audit::Options::default()
    };
    if witness == Some("owner") {
        opts.witness = Some(ledgerline_audit::Witness::Owner);
    } else if let Some(w) = witness {
        let (name, key) = w
            .split_once('=')
            .ok_or_else(|| usage("--require-witness takes NAME=HEXKEY"))?;
        let key = hex::decode(key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .and_then(|b| ledgerline_client_core::protocol::keys::VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| usage("the witness key must be 64 hex digits of an Ed25519 key"))?;
        opts.witness = Some(ledgerline_audit::Witness::Key(
            name.to_owned(),
            Box::new(key),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| Failure {
        exit: 6,
        code: "not_found",
        reason: None,
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    let found = |e: ledgerline_audit::AuditError| Failure {
        exit: 5,
        code: e.class(),
        reason: None,
        message: format!("the bundle does not verify: {e}"),
    };
    let mut v = ledgerline_audit::Verifier::new(opts);
    let mut stdout = std::io::stdout().lock();
    let _ = match (json, csv) {
        (false, true) => writeln!(stdout, "index,time,member,device,action,request,subjects"),
        (false, false) => writeln!(
            stdout,
            "{:>7}  {:<24}  {:<20}  {:<12}  action",
            "entry", "time (UTC)", "member", "device"
        ),
        _ => Ok(()),
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| Failure {
            exit: 1,
            code: "io",
            reason: None,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        for row in v.line(&line).map_err(found)? {
            print_row(&mut stdout, &row, json, csv, names);
        }
    }
    let (summary, rows) = v.finish().map_err(found)?;
    for row in rows {
        print_row(&mut stdout, &row, json, csv, names);
    }
    Ok(Output {
        text: if csv {
            String::new()
        } else {
            format!(
                "\nVerified: {} log entries ({} shown whole), {} checkpoints{}, {} roster events. \
                 Every signature, checkpoint and root checks out.",
                summary.size,
                summary.entries,
                summary.checkpoints,
                if summary.witnessed {
                    " (all cosigned by the witness)"
                } else {
                    ""
                },
                summary.roster_events
            ) + &summary
                .revocations
                .iter()
                .map(|r| {
                    format!(
                        "\nRotation complete: {} at {}: {} customer files got a new key epoch, {} member keys a new version.",
                        r.what, r.at, r.files, r.member_keys
                    )
                })
                .collect::<String>()
        },
        json: json!({ "ok": true, "summary": summary }),
    })
}

/// The header line and the sealed name maps at the top of a bundle.
fn bundle_names(
    path: &std::path::Path,
) -> Result<(String, Vec<ledgerline_audit::SealedNames>), Failure> {
    let file = std::fs::File::open(path).map_err(|e| Failure {
        exit: 6,
        code: "not_found",
        reason: None,
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    ledgerline_audit::read_names(std::io::BufReader::new(file)).map_err(|what| Failure {
        exit: 5,
        code: "malformed",
        reason: None,
        message: format!("{}: {what}", path.display()),
    })
}

fn print_row(
    out: &mut impl Write,
    row: &ledgerline_audit::Row,
    json: bool,
    csv: bool,
    names: Option<&ledgerline_audit::NameMap>,
) {
    // The relay's own entries (retention sweeps) have no member or device.
    let member = match row.member {
        Some(m) => names
            .and_then(|n| n.members.get(&m.to_hex()).cloned())
            .unwrap_or_else(|| m.to_hex()),
        None => "relay".to_owned(),
    };
    let device = row.device.map(|d| d.to_string()).unwrap_or_default();
    let subjects: Vec<String> = row
        .subjects
        .iter()
        .map(|s| names.map_or_else(|| s.clone(), |n| n.subject(s)))
        .collect();
    let _ = if json {
        let v = if names.is_some() {
            json!({ "row": row, "member_name": member, "subject_names": subjects })
        } else {
            json!({ "row": row })
        };
        writeln!(out, "{v}")
    } else if csv {
        writeln!(
            out,
            "{},{},{},{},{},{},{}",
            row.index,
            row.time,
            csv_field(&member),
            device,
            csv_field(&row.action),
            csv_field(&row.request),
            csv_field(&subjects.join("; "))
        )
    } else {
        let short = |s: String| s.chars().take(20).collect::<String>();
        let about = if names.is_some() {
            format!("  ({})", subjects.join(", "))
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:>7}  {:<24}  {:<20}  {:<12}  {}{about}",
            row.index,
            row.time,
            short(member),
            short(device).chars().take(12).collect::<String>(),
            row.action
        )
    };
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Names the documents a restored relay lost (local output only).
fn lost_documents(text: &mut String, lost: &[ledgerline_client_core::profile::LostDocument]) {
    if lost.is_empty() {
        return;
    }
    text.push_str("\nDocuments the relay lost (upload them again if you have them):");
    for d in lost {
        text.push_str(&format!(
            "\n  {} ({} bytes, file {})",
            d.name, d.size, d.file
        ));
    }
}
