//! A profile: one device of one member of one firm, with its encrypted local store, and
//! every action the CLI and the desktop app offer (found a firm, invite, join, approve,
//! customer files and their epochs, chat, search, sync).
//!
//! Durability rule: every action ends with one transaction that writes all state it
//! changed (pickles, keys, cursors, decrypted messages) together; network effects that
//! must not be repeated are ordered so a crash at any point either repeats harmlessly or
//! is detected on the next sync (the outbox is checked against the relay before a resend).

use crate::device::DeviceAccount;
use crate::olm::OlmSessions;
use crate::onboarding::{self, OnboardingError};
use crate::room::{OutboundRoom, Received, RoomEvent, RoomKey, Timeline};
use crate::store::{LocalStore, SearchHit, StoreError, StoreKey, StoredMessage};
use crate::transport::{HttpTransport, RelayClient, RelayError};
use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, MemberId, RecordId};
use ledgerline_protocol::invite::{fingerprint, fingerprint_text, Invite, FINGERPRINT_LEN};
use ledgerline_protocol::keys::{EpochKey, MasterSigningKey, MemberKey};
use ledgerline_protocol::record::{open_record, seal_record, RecordEnvelope, RecordHeader};
use ledgerline_protocol::roster::{
    conversation_room, EventBody, EventKind, Role, Roster, RosterEvent,
};
use ledgerline_protocol::wrap::{
    unchain_epoch_key, unwrap_epoch_key, unwrap_member_key, wrap_epoch_key, wrap_member_key,
    EpochChainContext, EpochKeyContext, Holder, MemberKeyContext,
};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

mod audit;
mod cover;
mod devices;
mod documents;
mod guests;
mod ksef;
mod mail;
mod offboard;
mod recovery;
mod retention;
mod teams;
mod watch;
mod work;
pub use audit::{ExportSummary, LostDocument, Reconciled, RestoreReport};
pub use cover::{CoverGrant, CoverView};
pub use documents::{DocumentManifest, Phase, Progress};
pub use guests::{CustomerMessage, GuestView, MAX_GUEST_INVITE_TTL_MS};
pub use ksef::{InvoiceView, KsefFileReport, KsefReport, KsefView, DUE_SOON_DAYS};
pub use mail::{
    AssignReport, FailedMail, InboxView, MailReport, MailView, MailboxView, PlacedMail, RuleView,
};
pub use offboard::{RevocationPlan, RotationProgress, RotationReport};
pub use recovery::{BackupStatus, RecoveryReport};
pub use retention::{parse_document_year, this_year, Expired};
pub use teams::{TeamView, TEAM_NAME_MAX};
pub use watch::WatchEvent;
pub use work::{
    today, AgendaItem, CustomerCard, CustomerView, EventSpec, OfferView, ReplyTemplate, TaskSpec,
    TaskView, TimelineItem, CUSTOMER_CARD,
};

/// The store file inside a profile directory.
pub const STORE_FILE: &str = "ledgerline.db";
/// The Argon2id salt next to it (not secret).
pub const SALT_FILE: &str = "store.salt";
/// One-time keys published when a device starts.
pub const ONE_TIME_KEYS: usize = 50;
/// Invitations expire after this long.
pub const INVITE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// Room messages fetched (and committed) per page while syncing; the relay's default
/// `max_page`.
pub const SYNC_PAGE: u32 = 500;
/// How far a restored relay moves its room numbering ahead (`ledgerline-relay restore`).
const RESTORE_GAP: u64 = 1 << 32;
/// A jump at least this large past a device's cursor means the relay was restored.
const RESTORE_JUMP: u64 = 1 << 31;
/// The record that holds a customer file's profile (its name).
pub const FILE_PROFILE_RECORD: RecordId = RecordId([0; 16]);

/// Why an action failed. Each variant maps to one CLI exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The local store failed or the key is wrong.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The relay is down, refused or misbehaved.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// Onboarding checks failed.
    #[error(transparent)]
    Onboarding(#[from] OnboardingError),
    /// The OS keyring holding the store key failed.
    #[error(transparent)]
    Keyring(#[from] crate::keystore::KeystoreError),
    /// Something named does not exist (file, member, profile).
    #[error("{0}")]
    NotFound(String),
    /// This member may not do that (e.g. not an admin).
    #[error("{0}")]
    NotAllowed(String),
    /// A cryptographic or consistency check failed: data from the relay is not what a
    /// member signed. Nothing was changed.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// The request itself is wrong (bad code, a profile that already exists...).
    #[error("{0}")]
    Invalid(String),
    /// The request is wrong for a reason the user can act on, named by a stable word (a
    /// message too long to send: `message_too_long`). Its kind is [`ErrorKind::Invalid`].
    #[error("{message}")]
    Declined {
        /// The stable word.
        reason: &'static str,
        /// The text for people.
        message: String,
    },
    /// A mail server could not be reached or refused the login.
    #[error(transparent)]
    Mail(#[from] crate::mail::imap::ImapError),
    /// KSeF could not be reached, refused the login or answered unexpectedly.
    #[error(transparent)]
    Ksef(crate::ksef::api::KsefError),
    /// The message is safe in the outbox but the relay did not take it yet.
    #[error("queued: {0}; `ledgerline sync` sends it when the relay is back")]
    Queued(String),
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The kind of a [`ClientError`], one stable word each: the CLI prints it under `--json`
/// and picks its exit code by it; the desktop app names its message by it. It never holds
/// data, so it may go anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The relay could not be reached.
    RelayUnreachable,
    /// The relay refused the request (its own code is the reason).
    RelayRefused,
    /// The relay answered something that is not an answer.
    RelayGarbage,
    /// Data from the relay is not what a member signed.
    Integrity,
    /// The fingerprint read out differs from the request's.
    FingerprintMismatch,
    /// Another onboarding check failed.
    Onboarding,
    /// Something named does not exist.
    NotFound,
    /// This member may not do that.
    NotAllowed,
    /// The key does not open the local store.
    WrongKey,
    /// The OS keyring failed.
    Keyring,
    /// The local store failed.
    Store,
    /// The request itself is wrong.
    Invalid,
    /// Kept to send later.
    Queued,
    /// The mail server failed.
    Mail,
    /// KSeF failed.
    Ksef,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [Self; 15] = [
        Self::RelayUnreachable,
        Self::RelayRefused,
        Self::RelayGarbage,
        Self::Integrity,
        Self::FingerprintMismatch,
        Self::Onboarding,
        Self::NotFound,
        Self::NotAllowed,
        Self::WrongKey,
        Self::Keyring,
        Self::Store,
        Self::Invalid,
        Self::Queued,
        Self::Mail,
        Self::Ksef,
    ];

    /// The stable word (`relay_unreachable`, …).
    pub const fn code(self) -> &'static str {
        match self {
            Self::RelayUnreachable => "relay_unreachable",
            Self::RelayRefused => "relay_refused",
            Self::RelayGarbage => "relay_garbage",
            Self::Integrity => "integrity",
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::Onboarding => "onboarding",
            Self::NotFound => "not_found",
            Self::NotAllowed => "not_allowed",
            Self::WrongKey => "wrong_key",
            Self::Keyring => "keyring",
            Self::Store => "store",
            Self::Invalid => "invalid",
            Self::Queued => "queued",
            Self::Mail => "mail_server",
            Self::Ksef => "ksef",
        }
    }
}

impl ClientError {
    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Relay(RelayError::Unreachable(_)) => ErrorKind::RelayUnreachable,
            Self::Relay(RelayError::Refused { .. }) => ErrorKind::RelayRefused,
            Self::Relay(RelayError::Garbage(_)) => ErrorKind::RelayGarbage,
            Self::Integrity(_) => ErrorKind::Integrity,
            Self::Onboarding(OnboardingError::FingerprintMismatch { .. }) => {
                ErrorKind::FingerprintMismatch
            }
            Self::Onboarding(_) => ErrorKind::Onboarding,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::NotAllowed(_) => ErrorKind::NotAllowed,
            Self::Store(StoreError::WrongKey) => ErrorKind::WrongKey,
            Self::Keyring(_) => ErrorKind::Keyring,
            Self::Store(_) => ErrorKind::Store,
            Self::Invalid(_) | Self::Declined { .. } => ErrorKind::Invalid,
            Self::Queued(_) => ErrorKind::Queued,
            Self::Mail(_) => ErrorKind::Mail,
            Self::Ksef(_) => ErrorKind::Ksef,
        }
    }

    /// A stable word that says more than the kind, where there is one: the relay's own
    /// code when it refused (`revoked_device`, `rate_limited`, …), which step failed with
    /// a mail server, KSeF, the keyring or the store. Like the kind it never holds data.
    pub fn reason(&self) -> Option<&str> {
        use crate::keystore::KeystoreError;
        use crate::ksef::api::KsefError;
        use crate::mail::imap::ImapError;
        Some(match self {
            Self::Relay(RelayError::Refused { code, .. }) => code,
            Self::Declined { reason, .. } => reason,
            Self::Store(StoreError::TooNew(_)) => "too_new",
            Self::Store(StoreError::Kdf(_)) => "kdf",
            Self::Keyring(KeystoreError::Unavailable(_)) => "unavailable",
            Self::Keyring(KeystoreError::Missing(_)) => "missing",
            Self::Keyring(KeystoreError::Damaged(_)) => "damaged",
            Self::Mail(ImapError::Unreachable(_)) => "unreachable",
            Self::Mail(ImapError::Login(_)) => "login",
            Self::Ksef(KsefError::Unreachable(_)) => "unreachable",
            Self::Ksef(KsefError::Refused { .. } | KsefError::Unauthorized) => "login",
            Self::Ksef(KsefError::RateLimited(_)) => "rate_limited",
            Self::Ksef(KsefError::Rejected(_)) => "rejected",
            _ => return None,
        })
    }
}

/// A local file this device cannot read (`unreadable`). The path is the user's own, told
/// to the user; it never reaches the relay.
pub(crate) fn unreadable(path: &Path, e: impl std::fmt::Display) -> ClientError {
    declined("unreadable", format!("cannot read {}: {e}", path.display()))
}

/// A local file this device cannot write (`unwritable`: the folder is missing or read-only,
/// the disk is full).
pub(crate) fn unwritable(path: &Path, e: impl std::fmt::Display) -> ClientError {
    declined(
        "unwritable",
        format!("cannot write {}: {e}", path.display()),
    )
}

/// A document whose file name is not UTF-8 (`file_name`): the name travels encrypted as
/// text.
pub(crate) fn not_utf8_name() -> ClientError {
    declined("file_name", "the document needs a UTF-8 file name")
}

/// A request refused for `reason`, a stable word ([`ClientError::Declined`]).
pub(crate) fn declined(reason: &'static str, message: impl Into<String>) -> ClientError {
    ClientError::Declined {
        reason,
        message: message.into(),
    }
}

/// A relay's "not now" (its disk is full, it is overloaded) for something this device
/// already keeps to send again (a message in the outbox, a pending upload): it waits, and
/// the next sync sends it. Anything else is passed on.
fn wait_if_busy(e: ClientError) -> ClientError {
    match e {
        ClientError::Relay(RelayError::Refused {
            status: 503 | 507,
            code,
            message,
        }) => ClientError::Queued(format!("{message} ({code})")),
        other => other,
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    // `LEDGERLINE_CLOCK_OFFSET_MS` moves this device's clock, as `clock_offset_ms` moves the
    // relay's: for tests of time-bound behaviour (retention expiry). Never set in use.
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let offset = *OFFSET.get_or_init(|| {
        std::env::var("LEDGERLINE_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    });
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
        .saturating_add_signed(offset)
}

/// How the store key is obtained.
pub enum Unlock {
    /// A passphrase through Argon2id with the profile's salt.
    Passphrase(Zeroizing<String>),
    /// A raw 32-byte key.
    Key(StoreKey),
    /// The key this profile keeps in the OS keyring.
    Keyring,
    /// A new random key, kept in the OS keyring (when creating a profile).
    NewKeyring,
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unlock([redacted])")
    }
}

fn open_store(
    dir: &Path,
    unlock: Unlock,
    create: bool,
) -> Result<(LocalStore, Zeroizing<[u8; 32]>)> {
    let db = dir.join(STORE_FILE);
    if create && db.exists() {
        return Err(ClientError::Invalid(format!(
            "a profile already exists in {}",
            dir.display()
        )));
    }
    if !create && !db.exists() {
        return Err(ClientError::NotFound(format!(
            "no profile in {} (run `firm create` or `join` first)",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| ClientError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    let key = match unlock {
        Unlock::Key(k) => k,
        Unlock::Keyring => crate::keystore::load(dir)?,
        Unlock::NewKeyring if create => crate::keystore::create(dir)?,
        Unlock::NewKeyring => {
            return Err(ClientError::Invalid(
                "a new keyring key is only for a new profile".into(),
            ))
        }
        // Current profiles: a random key wrapped under the passphrase (changeable).
        Unlock::Passphrase(p) if create || crate::keystore::uses_wrapped_key(dir) => {
            let wrapped = if create {
                crate::keystore::create_wrapped(dir, &p)
            } else {
                crate::keystore::load_wrapped(dir, &p)
            };
            wrapped.map_err(|e| match e {
                crate::keystore::PassphraseError::Wrong => ClientError::Store(StoreError::WrongKey),
                other => ClientError::Invalid(other.to_string()),
            })?
        }
        // Profiles made before: the key is the passphrase's Argon2id hash.
        Unlock::Passphrase(p) => {
            let salt_path = dir.join(SALT_FILE);
            let salt = match std::fs::read(&salt_path) {
                Ok(s) => <[u8; 16]>::try_from(s.as_slice()).map_err(|_| {
                    ClientError::Invalid(format!("{} is damaged", salt_path.display()))
                })?,
                Err(e) => {
                    return Err(ClientError::Invalid(format!(
                        "cannot read {}: {e}",
                        salt_path.display()
                    )))
                }
            };
            StoreKey::from_passphrase(&p, &salt)?
        }
    };
    let store = LocalStore::open(&db, &key)?;
    Ok((store, key.pickle_key()))
}

/// Who this profile is (written once).
#[derive(Serialize, Deserialize)]
struct Identity {
    version: u8,
    relay: String,
    firm: FirmId,
    member: MemberId,
    device: DeviceId,
    name: String,
    master: String,
}

impl Identity {
    fn new(
        relay: &str,
        firm: FirmId,
        member: MemberId,
        device: DeviceId,
        name: &str,
        master: Option<&MasterSigningKey>,
    ) -> Self {
        Self {
            version: 1,
            relay: relay.to_owned(),
            firm,
            member,
            device,
            name: name.to_owned(),
            master: master
                .map(|m| hex::encode(*m.to_bytes()))
                .unwrap_or_default(),
        }
    }
}

/// A client for the unauthenticated routes (before this device is in any roster).
fn probe(relay: &str) -> Result<RelayClient<HttpTransport>> {
    Ok(RelayClient::new(
        HttpTransport::new(relay)?,
        FirmId([0; 16]),
        DeviceId([0; 16]),
    ))
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.master.zeroize();
    }
}

/// An invitation this admin issued and has not yet approved.
#[derive(Serialize, Deserialize, Clone)]
struct PendingInvite {
    code: String,
    name: String,
    /// `admin`, `member`, `auditor` or `guest`.
    role: String,
    expires_ms: u64,
    /// For a guest: the file whose conversation they join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<FileId>,
}

/// What this profile knows of a customer file.
#[derive(Serialize, Deserialize, Clone, Default)]
struct FileState {
    name: Option<String>,
    /// Record sync cursor.
    records: u64,
    /// The file lost a member and its next epoch is not fully keyed yet.
    #[serde(default)]
    rekey: bool,
    /// Incremental fetch cursors of this file's epoch-key wraps and chain links.
    #[serde(default)]
    keys_cursor: u64,
    #[serde(default)]
    links_cursor: u64,
    /// Epoch-key wraps fetched before the member key they need: `(epoch, holder key
    /// version, hex wrap)`, retried at every sync.
    #[serde(default)]
    pending_wraps: Vec<(u64, u32, String)>,
    /// The file's chain links by epoch (hex), as fetched.
    #[serde(default)]
    links: BTreeMap<u64, String>,
    /// Incremental fetch cursors of the wraps held by this member's teams.
    #[serde(default)]
    team_cursors: BTreeMap<ledgerline_protocol::ids::TeamId, u64>,
    /// Team-held wraps fetched before the team key they need: `(team, epoch, team key
    /// version, hex wrap)`.
    #[serde(default)]
    team_pending: Vec<(ledgerline_protocol::ids::TeamId, u64, u32, String)>,
}

/// A room message sent but not yet confirmed by the relay.
#[derive(Serialize, Deserialize, Clone)]
struct Outgoing {
    room: String,
    ciphertext: String,
    /// The event itself (the local store is encrypted at rest): if the room's session
    /// was replaced before this leaves (a revocation while offline), it is sealed again
    /// under the new one rather than sent under a key a revoked device holds.
    #[serde(default)]
    event: Option<RoomEvent>,
}

/// Everything else the profile keeps, in one state entry (written in every commit).
#[derive(Serialize, Deserialize, Default)]
struct LocalState {
    member_names: BTreeMap<MemberId, String>,
    /// `member:version` → hex member key (our own, and every member's for admins).
    member_keys: BTreeMap<String, String>,
    /// File → epoch → hex epoch key.
    epoch_keys: BTreeMap<FileId, BTreeMap<u64, String>>,
    files: BTreeMap<FileId, FileState>,
    invites: Vec<PendingInvite>,
    to_device_after: u64,
    prekeys_published: bool,
    outbox: Vec<Outgoing>,
    /// For a joiner until the first roster is checked: the inviter's fingerprint (hex).
    inviter: Option<String>,
    /// Room (hex) → devices in the current outbound session's audience that have not
    /// received its key yet (no prekeys at the time); retried at every sync.
    #[serde(default)]
    undelivered: BTreeMap<String, BTreeSet<DeviceId>>,
    /// Document manifests by file, from records.
    #[serde(default)]
    documents: BTreeMap<FileId, BTreeMap<ledgerline_protocol::ids::DocumentId, DocumentManifest>>,
    /// Uploads spooled but not yet confirmed (hold their release shares).
    #[serde(default)]
    uploads: Vec<documents::PendingUpload>,
    /// Private payloads (master key, directory) waiting for an Olm session.
    #[serde(default)]
    private_outbox: Vec<devices::PrivatePayload>,
    /// A linked device before its first roster: the member is not known yet.
    #[serde(default)]
    linking: bool,
    /// Internal rooms and direct chats this device knows (hex room id).
    #[serde(default)]
    rooms: BTreeMap<String, RoomState>,
    /// Next sequence number to fetch, per room (hex room id; file rooms too).
    #[serde(default)]
    room_cursors: BTreeMap<String, u64>,
    /// The firm's audit log as this device pinned and last accepted it.
    #[serde(default)]
    log: Option<audit::LogView>,
    /// Incremental fetch cursor of this device's member-key wraps.
    #[serde(default)]
    member_keys_cursor: u64,
    /// On an owner's device: the largest checkpoint it cosigned as the firm's witness.
    #[serde(default)]
    witnessed: u64,
    /// Conversations opened from the local store, not yet reported to the log: (hex
    /// room, time ms).
    #[serde(default)]
    opened: Vec<(String, u64)>,
    /// The last hybrid-logical-clock reading this device gave a work item edit.
    #[serde(default)]
    work_clock: crate::work::merge::Hlc,
    /// Customer files erased by an admin: nothing of them is kept or fetched.
    #[serde(default)]
    erased: BTreeSet<FileId>,
    /// The firm's office file, once found (saves a scan of every file's card).
    #[serde(default)]
    office: Option<FileId>,
    /// `team:version` → hex team key (this member's teams; every team's for admins).
    #[serde(default)]
    team_keys: BTreeMap<String, String>,
    /// Incremental fetch cursor of this member's team-key wraps.
    #[serde(default)]
    team_keys_cursor: u64,
    /// Team-key wraps fetched before the member key they need: `(team, version, member
    /// key version, hex wrap)`.
    #[serde(default)]
    team_pending: Vec<(ledgerline_protocol::ids::TeamId, u32, u32, String)>,
    /// Team names (with their commitments' salts) as an admin's directory told them.
    #[serde(default)]
    team_names: BTreeMap<ledgerline_protocol::ids::TeamId, teams::TeamName>,
    /// The member's key backup as this device seals to it.
    #[serde(default)]
    backup: Option<recovery::BackupState>,
    /// A recovery key an admin sent for reprovisioning, until the backup is restored.
    #[serde(default)]
    pending_restore: Option<String>,
    /// A sync found signs of a relay restored from a backup (a room's numbering jumped, a
    /// file's room gone): the next sync gives back what the relay lost.
    #[serde(default)]
    restore_noticed: bool,
    /// Customer files whose conversation room this device knows the relay has.
    #[serde(default)]
    conversations: BTreeSet<FileId>,
}

/// What this profile knows of an internal room or direct chat.
#[derive(Serialize, Deserialize, Clone, Default)]
struct RoomState {
    /// From the latest room profile event; `None` until one decrypts.
    name: Option<String>,
    members: Vec<MemberId>,
    direct: bool,
}

/// Where a message goes: a customer file's room, its conversation with the customer, or
/// an internal room / direct chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversation {
    /// A customer file's staff room (room id = file id): internal to the office.
    File(FileId),
    /// A customer file's conversation with its guests (`protocol-spec/guests.md`).
    Customer {
        /// The file.
        file: FileId,
        /// Its conversation room ([`conversation_room`]).
        room: [u8; 16],
    },
    /// An internal room or direct chat.
    Room([u8; 16]),
}

impl Conversation {
    /// The relay's room id.
    pub fn room_id(&self) -> [u8; 16] {
        match self {
            Self::File(f) => *f.as_bytes(),
            Self::Customer { room, .. } | Self::Room(room) => *room,
        }
    }

    /// The customer conversation of `file` in `firm`.
    pub fn customer(firm: &ledgerline_protocol::ids::FirmId, file: FileId) -> Self {
        Self::Customer {
            file,
            room: conversation_room(firm, &file),
        }
    }
}

/// An internal room or direct chat as `room list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    /// Room id (hex).
    pub id: String,
    /// Name (from the encrypted room profile), if known.
    pub name: Option<String>,
    /// Members.
    pub members: Vec<MemberId>,
    /// A direct chat.
    pub direct: bool,
}

impl Drop for LocalState {
    fn drop(&mut self) {
        for v in self.member_keys.values_mut() {
            v.zeroize();
        }
        for m in self.epoch_keys.values_mut() {
            for v in m.values_mut() {
                v.zeroize();
            }
        }
        for i in &mut self.invites {
            i.code.zeroize();
        }
    }
}

fn key32(hex_key: &str) -> Option<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_key, out.as_mut()).ok()?;
    Some(out)
}

/// A member as `member list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Id.
    pub id: MemberId,
    /// Name, if this profile knows it.
    pub name: Option<String>,
    /// `admin`, `member` or `auditor`.
    pub role: String,
    /// Still a member.
    pub active: bool,
    /// Master-key fingerprint.
    pub fingerprint: String,
    /// This profile's member.
    pub me: bool,
}

/// An open invitation, as the admin sees it.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationView {
    /// The name it was issued for.
    pub name: String,
    /// `admin`, `member` or `auditor`.
    pub role: String,
    /// The one-time code, to hand over again.
    pub code: String,
    /// When it expires (ms since the Unix epoch).
    pub expires_ms: u64,
}

/// A device as `device list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// Id.
    pub id: DeviceId,
    /// Owner.
    pub member: MemberId,
    /// Not revoked.
    pub active: bool,
    /// This profile's device.
    pub me: bool,
}

/// A customer file as `file list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    /// Id.
    pub id: FileId,
    /// Name (from the encrypted file profile record).
    pub name: Option<String>,
    /// Current epoch this profile holds a key for.
    pub epoch: Option<u64>,
    /// Members with access: by a grant, through a team, or covering for someone.
    pub members: Vec<MemberId>,
    /// Of those, the members granted the file themselves (whom `file remove` takes out).
    pub granted: Vec<MemberId>,
    /// Teams granted the file.
    pub teams: Vec<ledgerline_protocol::ids::TeamId>,
}

/// A chat message as `chat read` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// Relay sequence number.
    pub seq: u64,
    /// Sending device.
    pub sender: DeviceId,
    /// Its member, per the roster.
    pub member: Option<MemberId>,
    /// The member's name, if known.
    pub name: Option<String>,
    /// Relay time.
    pub created_ms: u64,
    /// Text (edited text if edited); `None` while the key has not arrived or if deleted.
    pub body: Option<String>,
    /// Replied-to message.
    pub reply_to: Option<u64>,
    /// The customer-file document this message attaches (its `body` is the file name).
    pub attachment: Option<ledgerline_protocol::ids::DocumentId>,
    /// Edited by its sender.
    pub edited: bool,
    /// Deleted by its sender.
    pub deleted: bool,
    /// Waiting for its room key.
    pub waiting_for_key: bool,
    /// Members (other than the sender) whose read marker covers this message.
    pub read_by: Vec<MemberId>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// New roster events.
    pub roster_events: usize,
    /// Room keys received.
    pub room_keys: usize,
    /// New or newly decrypted messages.
    pub messages: usize,
    /// Messages still waiting for keys.
    pub waiting: usize,
    /// Customer-file records received (work items, documents, file profiles).
    pub records: usize,
    /// Outbox messages sent.
    pub sent: usize,
    /// Uploads a crash had interrupted, now finished.
    pub uploads_finished: usize,
    /// Entries in the firm's audit log at the checkpoint this sync accepted.
    pub log_size: u64,
    /// Files an interrupted offboarding rotation gave a new epoch in this sync.
    pub rotated_files: u64,
    /// Work item edits made offline (or merged with another device's) that landed now.
    pub work_sent: usize,
    /// What retention policies deleted from this device in this sync.
    pub expired: retention::Expired,
    /// This device's messages a restored relay had lost, posted again.
    #[serde(default)]
    pub resent: usize,
    /// Problems that did not stop the sync (bad data from a peer, skipped).
    pub warnings: Vec<String>,
    /// The relay was found restored from a backup: what this device gave back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<audit::Reconciled>,
}

/// A joined (or founded) profile, open.
pub struct Profile {
    dir: PathBuf,
    store: LocalStore,
    pickle_key: Zeroizing<[u8; 32]>,
    id: Identity,
    /// The member's master key: absent on a newly linked device until one of the member's
    /// other devices sends it over Olm.
    master: Option<MasterSigningKey>,
    account: DeviceAccount,
    olm: OlmSessions,
    timeline: Timeline,
    events: Vec<RosterEvent>,
    /// How many of `events` the local store holds (the rest go with the next commit).
    events_saved: usize,
    roster: Option<Roster>,
    outbound: BTreeMap<[u8; 16], OutboundRoom>,
    local: LocalState,
    /// An offboarding rotation not finished yet (admins), with its new keys; committed on
    /// its own, so that planning one is a small write.
    rotation: offboard::RotationJob,
    relay: RelayClient<HttpTransport>,
    /// Decrypted messages to write with the next commit.
    page: Vec<(StoredMessage, Option<String>)>,
    /// A recovery key made at onboarding, until the caller shows it (never stored).
    fresh_recovery_key: Option<Zeroizing<String>>,
    /// Whether this process asked the relay for the member's backup key already.
    backup_checked: bool,
    /// While accepting a restored relay: every record it still lists, by file.
    restore_seen: Option<audit::RestoreSeen>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Profile {{ dir: {}, firm: {}, device: {} }}",
            self.dir.display(),
            self.id.firm,
            self.id.device
        )
    }
}

impl Profile {
    fn assemble(
        dir: &Path,
        (store, pickle_key): (LocalStore, Zeroizing<[u8; 32]>),
        id: Identity,
        account: DeviceAccount,
        local: LocalState,
    ) -> Result<Self> {
        let master = if id.master.is_empty() {
            None
        } else {
            let seed =
                key32(&id.master).ok_or_else(|| ClientError::Integrity("master key".into()))?;
            Some(MasterSigningKey::from_bytes(&seed))
        };
        let relay = RelayClient::new(HttpTransport::new(&id.relay)?, id.firm, id.device);
        Ok(Self {
            dir: dir.to_owned(),
            store,
            pickle_key,
            id,
            master,
            account,
            olm: OlmSessions::default(),
            timeline: Timeline::default(),
            events: Vec::new(),
            events_saved: 0,
            roster: None,
            outbound: BTreeMap::new(),
            local,
            rotation: offboard::RotationJob::default(),
            relay,
            page: Vec::new(),
            fresh_recovery_key: None,
            backup_checked: false,
            restore_seen: None,
        })
    }

    /// Founds a firm on the relay at `relay`: this profile is its owner and first admin.
    pub async fn create_firm(
        dir: &Path,
        unlock: Unlock,
        relay: &str,
        firm_name: &str,
        me: &str,
    ) -> Result<Self> {
        let rng = &mut OsRng;
        let firm = FirmId::random(rng);
        let member = MemberId::random(rng);
        let master = MasterSigningKey::generate(rng);
        let account =
            DeviceAccount::generate(firm, rng).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let events = onboarding::found_firm(member, &master, &account, now_ms());
        // The relay first: a refused genesis leaves no profile behind.
        let client = RelayClient::new(HttpTransport::new(relay)?, firm, account.device());
        client
            .create_firm(&events.iter().map(RosterEvent::to_bytes).collect::<Vec<_>>())
            .await?;
        let store = open_store(dir, unlock, true)?;
        let id = Identity::new(relay, firm, member, account.device(), me, Some(&master));
        let mut local = LocalState::default();
        local.member_names.insert(member, me.to_owned());
        let mut p = Self::assemble(dir, store, id, account, local)?;
        p.store.put_state("firm_name", firm_name)?;
        p.accept_roster(&events)?;
        // The owner's member key, wrapped for the owner's device.
        let mk = MemberKey::generate(rng);
        p.local_member_key_insert(member, 1, &mk);
        p.prepare_recovery_key()?;
        p.commit()?;
        p.share_member_key(member, 1, &mk, &[p.id.device]).await?;
        p.publish_prekeys().await?;
        p.sync_backup().await?;
        p.commit()?;
        Ok(p)
    }

    /// Joins with an invitation code: registers this device's join request with the
    /// relay. Returns the profile and the fingerprint to read out to the admin.
    pub async fn join(
        dir: &Path,
        unlock: Unlock,
        relay: &str,
        code: &str,
        me: &str,
    ) -> Result<(Self, String)> {
        let invite = Invite::parse(code)
            .map_err(|e| declined("invite_code", format!("invitation code: {e}")))?;
        let rng = &mut OsRng;
        let firm = probe(relay)?.invite_firm(invite.id()).await?;
        let member = MemberId::random(rng);
        let master = MasterSigningKey::generate(rng);
        let account =
            DeviceAccount::generate(firm, rng).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let sealed = onboarding::seal_join_request(&invite, member, &master, &account, me, rng);
        let store = open_store(dir, unlock, true)?;
        let id = Identity::new(relay, firm, member, account.device(), me, Some(&master));
        let mut local = LocalState::default();
        local.inviter = Some(hex::encode(invite.inviter()));
        local.member_names.insert(member, me.to_owned());
        let mut p = Self::assemble(dir, store, id, account, local)?;
        // The backup key is registered at the first sync after approval.
        p.prepare_recovery_key()?;
        // Keys are safe on disk before the request leaves.
        p.commit()?;
        p.relay.post_join_request(invite.id(), &sealed).await?;
        let fp = p.fingerprint().unwrap_or_default();
        Ok((p, fp))
    }

    /// Points this profile at another relay URL (the firm moved its relay, or a proxy);
    /// not persisted.
    pub fn use_relay(&mut self, relay: &str) -> Result<()> {
        self.relay = RelayClient::new(HttpTransport::new(relay)?, self.id.firm, self.id.device);
        Ok(())
    }

    /// Moves this profile to another address of its relay (a new host name, a port),
    /// for good. The move is kept only once a sync there succeeds: the relay must serve
    /// this firm's roster and log, and both must verify against what this device holds.
    pub async fn set_relay(&mut self, relay: &str) -> Result<()> {
        let client = RelayClient::new(HttpTransport::new(relay)?, self.id.firm, self.id.device);
        let old = std::mem::replace(&mut self.relay, client);
        match self.sync().await {
            Ok(_) => {
                self.id.relay = relay.to_owned();
                self.commit()
            }
            Err(e) => {
                self.relay = old;
                Err(e)
            }
        }
    }

    /// Changes the passphrase that protects this profile's local store (profiles whose
    /// key is wrapped under a passphrase: every profile made with one since the wrapped
    /// key). The store key itself stays: nothing in the store is rewritten, and a crash
    /// leaves either passphrase working, never neither.
    pub fn change_passphrase(&self, old: &str, new: &str) -> Result<()> {
        use crate::keystore::{self, PassphraseError};
        if keystore::uses_keyring(&self.dir) {
            return Err(ClientError::NotAllowed(
                "this profile's store key is in the OS keyring: there is no passphrase to change"
                    .into(),
            ));
        }
        if !keystore::uses_wrapped_key(&self.dir) {
            return Err(ClientError::NotAllowed(
                "this profile was made before passphrases could be changed: its key is the passphrase itself".into(),
            ));
        }
        if new.chars().count() < 8 {
            return Err(ClientError::Declined {
                reason: "passphrase_short",
                message: "a passphrase needs at least 8 characters".into(),
            });
        }
        keystore::change_passphrase(&self.dir, old, new).map_err(|e| match e {
            PassphraseError::Wrong => ClientError::Store(StoreError::WrongKey),
            other => ClientError::Invalid(other.to_string()),
        })
    }

    /// Opens an existing profile.
    pub fn open(dir: &Path, unlock: Unlock) -> Result<Self> {
        let (store, pickle_key) = open_store(dir, unlock, false)?;
        let id: Identity = read_json(&store, "identity")?
            .ok_or_else(|| ClientError::Integrity("the profile has no identity".into()))?;
        let account = DeviceAccount::from_pickle(
            &store
                .state("account")?
                .ok_or_else(|| ClientError::Integrity("the profile has no device".into()))?,
            &pickle_key,
        )
        .map_err(|e| ClientError::Integrity(format!("device state: {e}")))?;
        let local: LocalState = read_json(&store, "local")?.unwrap_or_default();
        let mut p = Self::assemble(dir, (store, pickle_key), id, account, local)?;
        if let Some(s) = p.store.state("olm")? {
            p.olm = OlmSessions::from_pickle(&s, &p.pickle_key)
                .ok_or_else(|| ClientError::Integrity("Olm sessions".into()))?;
        }
        let pickled = p.store.state("timeline")?;
        p.timeline = Timeline::restore(
            pickled.as_deref(),
            p.store.megolm_sessions()?,
            p.store.megolm_seen()?,
            &p.pickle_key,
        )
        .ok_or_else(|| ClientError::Integrity("room sessions".into()))?;
        if let Some(s) = p.store.state("outbound")? {
            let list: Vec<String> = serde_json::from_str(&s)
                .map_err(|_| ClientError::Integrity("outbound sessions".into()))?;
            for o in list {
                let out = OutboundRoom::from_pickle(&o, &p.pickle_key)
                    .ok_or_else(|| ClientError::Integrity("outbound session".into()))?;
                p.outbound.insert(out.room(), out);
            }
        }
        p.rotation = read_json(&p.store, "rotation")?.unwrap_or_default();
        let stored = p.store.roster_events()?;
        let events = if stored.is_empty() {
            // A profile from before the roster table: the roster as one state entry; it
            // moves to the table with the next commit.
            let legacy: Vec<String> = read_json(&p.store, "roster")?.unwrap_or_default();
            legacy
                .iter()
                .map(|h| hex::decode(h).unwrap_or_default())
                .collect()
        } else {
            p.events_saved = stored.len();
            stored
        };
        let events = events
            .iter()
            .map(|b| {
                RosterEvent::from_bytes(b)
                    .map_err(|_| ClientError::Integrity("stored roster".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        if !events.is_empty() {
            let roster = Roster::verify_chain(&events)
                .map_err(|e| ClientError::Integrity(format!("stored roster: {e}")))?;
            p.roster = Some(roster);
            p.events = events;
        }
        Ok(p)
    }

    /// Writes every piece of changed state and the pending messages in one transaction.
    fn commit(&mut self) -> Result<()> {
        let pk = &*self.pickle_key;
        let outbound: Vec<String> = self.outbound.values().map(|o| o.pickle(pk)).collect();
        let states = vec![
            ("identity".to_owned(), json_string(&self.id)),
            ("account".to_owned(), self.account.pickle(pk)),
            ("olm".to_owned(), self.olm.pickle(pk)),
            ("timeline".to_owned(), self.timeline.pickle()),
            ("outbound".to_owned(), json_string(&outbound)),
            ("local".to_owned(), json_string(&self.local)),
            ("rotation".to_owned(), json_string(&self.rotation)),
        ];
        // Only the roster events not stored yet: a firm's roster grows into thousands.
        let new_events: Vec<(u64, Vec<u8>)> = self
            .events
            .iter()
            .skip(self.events_saved)
            .map(|e| (e.body.seq, e.to_bytes()))
            .collect();
        // Sessions and replay records as rows, only those added since the last commit.
        let timeline = self.timeline.changes(pk);
        self.store
            .commit_all(&states, &self.page, &new_events, &timeline)?;
        self.timeline.saved();
        self.events_saved = self.events.len();
        self.page.clear();
        crash_after_commit();
        Ok(())
    }

    // ------------------------------------------------------------------ accessors

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This member.
    pub fn member(&self) -> MemberId {
        self.id.member
    }

    /// This device.
    pub fn device(&self) -> DeviceId {
        self.id.device
    }

    /// The firm.
    pub fn firm(&self) -> FirmId {
        self.id.firm
    }

    /// The name this member gave when founding or joining.
    pub fn my_name(&self) -> &str {
        &self.id.name
    }

    /// The firm's name, as its founder gave it (`None` on a device that did not found it).
    pub fn firm_name(&self) -> Option<String> {
        self.store.state("firm_name").ok().flatten()
    }

    /// Whether this member is in the roster (an approved joiner, or the founder).
    pub fn admitted(&self) -> bool {
        self.roster
            .as_ref()
            .is_some_and(|r| r.member(&self.id.member).is_some())
    }

    /// The relay this profile talks to.
    pub fn relay_url(&self) -> &str {
        &self.id.relay
    }

    /// This member's fingerprint (what the admin compares when approving); `None` on a
    /// linked device that has not received the master key yet.
    pub fn fingerprint(&self) -> Option<String> {
        self.master.as_ref().map(onboarding::joiner_fingerprint)
    }

    /// This device's fingerprint (of its signing key): what the member compares when
    /// linking it.
    pub fn device_fingerprint(&self) -> String {
        fingerprint_text(&fingerprint(&self.account.keys().signing))
    }

    fn master(&self) -> Result<&MasterSigningKey> {
        self.master.as_ref().ok_or_else(|| {
            ClientError::NotAllowed(
                "this device has not received its member's master key yet: run `ledgerline sync` after the linking device has synced".into(),
            )
        })
    }

    fn roster(&self) -> Result<&Roster> {
        self.roster.as_ref().ok_or_else(|| {
            ClientError::NotAllowed(
                "this device is not in the firm's roster yet: ask an admin to approve it, then run `ledgerline sync`".into(),
            )
        })
    }

    fn require_admin(&self) -> Result<()> {
        let r = self.roster()?;
        if r.member(&self.id.member).map(|m| m.role) == Some(Role::Admin) {
            Ok(())
        } else {
            Err(ClientError::NotAllowed(
                "only an admin of the firm may do this".into(),
            ))
        }
    }

    fn local_member_key_insert(&mut self, member: MemberId, version: u32, key: &MemberKey) {
        self.local
            .member_keys
            .insert(format!("{member}:{version}"), hex::encode(key.expose()));
    }

    /// The newest member key of `member` this profile holds.
    fn member_key(&self, member: MemberId) -> Option<(u32, MemberKey)> {
        let prefix = format!("{member}:");
        self.local
            .member_keys
            .iter()
            .filter_map(|(k, v)| {
                let version: u32 = k.strip_prefix(&prefix)?.parse().ok()?;
                Some((version, MemberKey::from_bytes(*key32(v)?)))
            })
            .max_by_key(|(v, _)| *v)
    }

    fn member_key_version(&self, member: MemberId, version: u32) -> Option<MemberKey> {
        self.local
            .member_keys
            .get(&format!("{member}:{version}"))
            .and_then(|v| key32(v))
            .map(|k| MemberKey::from_bytes(*k))
    }

    fn epoch_key(&self, file: FileId, epoch: u64) -> Option<EpochKey> {
        self.local
            .epoch_keys
            .get(&file)
            .and_then(|m| m.get(&epoch))
            .and_then(|v| key32(v))
            .map(|k| EpochKey::from_bytes(*k))
    }

    fn current_epoch(&self, file: FileId) -> Option<(u64, EpochKey)> {
        let (e, _) = self.local.epoch_keys.get(&file)?.last_key_value()?;
        Some((*e, self.epoch_key(file, *e)?))
    }

    fn set_epoch_key(&mut self, file: FileId, epoch: u64, key: &EpochKey) {
        self.local
            .epoch_keys
            .entry(file)
            .or_default()
            .insert(epoch, hex::encode(key.expose()));
    }

    // ------------------------------------------------------------------ roster

    /// Verifies and applies new roster events (from the relay or our own).
    fn accept_roster(&mut self, new: &[RosterEvent]) -> Result<()> {
        for e in new {
            match &mut self.roster {
                None => {
                    self.roster = Some(
                        Roster::from_genesis(e)
                            .map_err(|err| ClientError::Integrity(format!("roster: {err}")))?,
                    )
                }
                Some(r) => r
                    .apply(e)
                    .map_err(|err| ClientError::Integrity(format!("roster: {err}")))?,
            }
            self.events.push(e.clone());
        }
        Ok(())
    }

    /// Signs and appends a roster event; returns when the relay acknowledged it (from then
    /// on the relay enforces it), after committing it here too.
    async fn append(&mut self, kind: EventKind) -> Result<std::time::Instant> {
        let r = self.roster()?;
        let event = EventBody {
            firm: self.id.firm,
            seq: r.len(),
            prev: r.head(),
            timestamp_ms: now_ms().max(last_time(&self.events)),
            signer: self.id.member,
            kind,
        }
        .sign(self.master()?);
        self.relay
            .append_roster(&self.account, &event.to_bytes())
            .await?;
        let acknowledged = std::time::Instant::now();
        self.accept_roster(std::slice::from_ref(&event))?;
        self.commit()?;
        Ok(acknowledged)
    }

    async fn sync_roster(&mut self, report: &mut SyncReport) -> Result<()> {
        let since = self.events.len() as u64;
        let fetched = match self.relay.roster(&self.account, since).await {
            Err(RelayError::Refused {
                status: 401, code, ..
            }) if code == "unknown_device" && self.roster.is_none() => {
                return Err(ClientError::NotAllowed(if self.local.linking {
                    "not linked yet: on your other device run `ledgerline device approve --fingerprint FP` with this device's fingerprint; then run `ledgerline sync` here".into()
                } else {
                    "not approved yet: read your fingerprint to the admin, who runs `ledgerline approve NAME --fingerprint FP`; then run `ledgerline sync` again".into()
                }))
            }
            other => other?,
        };
        let events = fetched
            .iter()
            .map(|b| {
                RosterEvent::from_bytes(b)
                    .map_err(|e| ClientError::Integrity(format!("roster event: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        report.roster_events += events.len();
        let self_revoked = events.iter().any(|e| match &e.body.kind {
            EventKind::DeviceRevoked { device } => self
                .roster
                .as_ref()
                .and_then(|r| r.device(device))
                .is_some_and(|d| d.member == e.body.signer),
            _ => false,
        });
        let before = if self_revoked && self.require_admin().is_ok() {
            self.roster.clone()
        } else {
            None
        };
        self.accept_roster(&events)?;
        self.welcome_self_certified(&events);
        if let Some(before) = before {
            self.plan_for_self_revocations(&before, &events).await?;
        }
        if let Some(fp) = self.local.inviter.clone() {
            let mut inviter = [0u8; FINGERPRINT_LEN];
            hex::decode_to_slice(&fp, &mut inviter)
                .map_err(|_| ClientError::Integrity("stored inviter fingerprint".into()))?;
            if self.local.linking {
                self.adopt_member(&inviter)?;
            } else {
                onboarding::check_inviter(self.roster()?, &inviter)?;
            }
            let mine = self.roster()?.device(&self.id.device).map(|d| &d.keys);
            if mine != Some(&self.account.keys()) {
                return Err(ClientError::Integrity(
                    "the roster does not certify this device's keys".into(),
                ));
            }
            self.local.inviter = None;
        }
        Ok(())
    }

    // ------------------------------------------------------------------ keys

    async fn publish_prekeys(&mut self) -> Result<()> {
        if self.local.prekeys_published {
            return Ok(());
        }
        let mut keys = self.account.new_one_time_keys(ONE_TIME_KEYS);
        keys.extend(self.account.new_fallback_key());
        // Persist the account first: a key the relay hands out must be one we still have.
        self.commit()?;
        self.relay.publish_prekeys(&self.account, &keys).await?;
        self.local.prekeys_published = true;
        Ok(())
    }

    /// Wraps a member key for `devices` (the member's own, or admins' for escrow).
    async fn share_member_key(
        &self,
        member: MemberId,
        version: u32,
        key: &MemberKey,
        devices: &[DeviceId],
    ) -> Result<()> {
        let r = self.roster()?;
        for d in devices {
            let ds = r
                .device(d)
                .ok_or_else(|| ClientError::NotFound(format!("device {d} is not in the roster")))?;
            let ctx = MemberKeyContext {
                firm: self.id.firm,
                member,
                device: *d,
                key_version: version,
            };
            let wrapped = wrap_member_key(key, &ds.keys.wrap, &ctx, &mut OsRng);
            self.relay
                .put_member_key(&self.account, member, version, *d, &wrapped)
                .await?;
        }
        Ok(())
    }

    /// Fetches the member-key wraps stored since the last fetch (every fetch that brings
    /// one is an audit-log entry, so nothing is fetched twice).
    async fn sync_member_keys(&mut self, report: &mut SyncReport) -> Result<()> {
        let (wraps, next) = self
            .relay
            .member_keys(&self.account, self.local.member_keys_cursor)
            .await?;
        for w in wraps {
            let Some(member) = w.member else { continue };
            if self.member_key_version(member, w.version).is_some() {
                continue;
            }
            let ctx = MemberKeyContext {
                firm: self.id.firm,
                member,
                device: self.id.device,
                key_version: w.version,
            };
            match unwrap_member_key(&w.wrapped, self.account.wrap_secret(), &ctx) {
                Ok(k) => self.local_member_key_insert(member, w.version, &k),
                Err(e) => report
                    .warnings
                    .push(format!("member key {member} v{}: {e}", w.version)),
            }
        }
        self.local.member_keys_cursor = next;
        Ok(())
    }

    /// Fetches a file's epoch-key wraps and chain links stored since the last fetch; a
    /// wrap whose member key has not arrived yet waits in the file's state.
    async fn sync_file_keys(&mut self, file: FileId, report: &mut SyncReport) -> Result<()> {
        let state = self.local.files.entry(file).or_default();
        let (keys_since, links_since) = (state.keys_cursor, state.links_cursor);
        let (wraps, keys_next) = self
            .relay
            .epoch_keys(&self.account, file, keys_since, None)
            .await?;
        let (links, links_next) = self
            .relay
            .epoch_links(&self.account, file, links_since)
            .await?;
        let state = self.local.files.entry(file).or_default();
        let mut waiting = std::mem::take(&mut state.pending_wraps);
        waiting.extend(
            wraps
                .into_iter()
                .map(|w| (w.epoch, w.version, hex::encode(&w.wrapped))),
        );
        for link in links {
            state.links.insert(link.epoch, hex::encode(&link.wrapped));
        }
        state.keys_cursor = keys_next;
        state.links_cursor = links_next;
        let mut still = Vec::new();
        for (epoch, version, wrapped) in waiting {
            if self.epoch_key(file, epoch).is_some() {
                continue;
            }
            let Some(mk) = self.member_key_version(self.id.member, version) else {
                report.warnings.push(format!(
                    "file {file} epoch {epoch}: member key v{version} not here yet"
                ));
                still.push((epoch, version, wrapped));
                continue;
            };
            let ctx = EpochKeyContext {
                firm: self.id.firm,
                file,
                epoch,
                holder: Holder::Member(self.id.member),
                holder_key_version: version,
            };
            let unwrapped = hex::decode(&wrapped)
                .map_err(|e| e.to_string())
                .and_then(|w| unwrap_epoch_key(&w, &mk, &ctx).map_err(|e| e.to_string()));
            match unwrapped {
                Ok(k) => self.set_epoch_key(file, epoch, &k),
                Err(e) => report
                    .warnings
                    .push(format!("file {file} epoch {epoch}: {e}")),
            }
        }
        if let Some(f) = self.local.files.get_mut(&file) {
            f.pending_wraps = still;
        }
        self.sync_team_file_keys(file, report).await?;
        let links = self
            .local
            .files
            .get(&file)
            .map(|f| f.links.clone())
            .unwrap_or_default();
        // Older epochs through the chain, newest first.
        for (epoch, wrapped) in links.iter().rev() {
            let (Some(newer), None) = (
                self.epoch_key(file, *epoch),
                self.epoch_key(file, epoch.saturating_sub(1)),
            ) else {
                continue;
            };
            let ctx = EpochChainContext {
                firm: self.id.firm,
                file,
                epoch: *epoch,
            };
            let unchained = hex::decode(wrapped)
                .map_err(|e| e.to_string())
                .and_then(|w| unchain_epoch_key(&w, &newer, &ctx).map_err(|e| e.to_string()));
            match unchained {
                Ok(k) => self.set_epoch_key(file, epoch - 1, &k),
                Err(e) => report
                    .warnings
                    .push(format!("file {file} link {epoch}: {e}")),
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ files

    /// Resolves a customer file by id or by name.
    pub fn resolve_file(&self, name_or_id: &str) -> Result<FileId> {
        if let Ok(id) = name_or_id.parse::<FileId>() {
            if self.local.files.contains_key(&id) {
                return Ok(id);
            }
        }
        let hits: Vec<FileId> = self
            .local
            .files
            .iter()
            .filter(|(_, f)| f.name.as_deref() == Some(name_or_id))
            .map(|(id, _)| *id)
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(ClientError::NotFound(format!(
                "no customer file named {name_or_id:?} that this member can see (try `ledgerline sync`)"
            ))),
            _ => Err(ClientError::Invalid(format!(
                "several customer files are named {name_or_id:?}: use the id"
            ))),
        }
    }

    /// Resolves a member by id or by name.
    pub fn resolve_member(&self, name_or_id: &str) -> Result<MemberId> {
        let r = self.roster()?;
        if let Ok(id) = name_or_id.parse::<MemberId>() {
            if r.member(&id).is_some() {
                return Ok(id);
            }
        }
        let hits: Vec<MemberId> = self
            .local
            .member_names
            .iter()
            .filter(|(_, n)| n.as_str() == name_or_id)
            .map(|(id, _)| *id)
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(ClientError::NotFound(format!(
                "no member named {name_or_id:?} known to this profile"
            ))),
            _ => Err(ClientError::Invalid(format!(
                "several members are named {name_or_id:?}: use the id"
            ))),
        }
    }

    /// Creates a customer file named `name` (admin): grants this member access, makes
    /// epoch 0's key, the file's room and its encrypted profile record.
    pub async fn create_file(&mut self, name: &str) -> Result<FileId> {
        self.require_admin()?;
        let (version, mk) = self
            .member_key(self.id.member)
            .ok_or_else(|| ClientError::NotFound("this member's key has not arrived".into()))?;
        let file = FileId::random(&mut OsRng);
        let ek = EpochKey::generate(&mut OsRng);
        // The key is on disk before anything refers to it.
        self.set_epoch_key(file, 0, &ek);
        self.local.files.insert(
            file,
            FileState {
                name: Some(name.to_owned()),
                ..FileState::default()
            },
        );
        self.append(EventKind::FileAccessGranted {
            file,
            member: self.id.member,
        })
        .await?;
        let ctx = EpochKeyContext {
            firm: self.id.firm,
            file,
            epoch: 0,
            holder: Holder::Member(self.id.member),
            holder_key_version: version,
        };
        let wrapped = wrap_epoch_key(&ek, &mk, &ctx, &mut OsRng);
        self.relay
            .put_epoch_key(&self.account, file, 0, self.id.member, version, &wrapped)
            .await?;
        self.relay
            .create_room(&self.account, *file.as_bytes(), Some(file), &[])
            .await?;
        self.write_file_profile(file, name, 1).await?;
        self.store.index("file", &file.to_hex(), name)?;
        self.commit()?;
        Ok(file)
    }

    async fn write_file_profile(&mut self, file: FileId, name: &str, version: u64) -> Result<()> {
        let body = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({ "type": "file_profile", "name": name }))
                .unwrap_or_default(),
        );
        self.put_sealed_record(file, FILE_PROFILE_RECORD, version, &body)
            .await
    }

    /// Seals `body` as version `version` of a record under the file's newest epoch key,
    /// signs and stores it. If the relay knows a newer epoch (`stale_epoch`: this device
    /// has not synced since a rotation), fetches the file's keys and seals again, once.
    async fn put_sealed_record(
        &mut self,
        file: FileId,
        record: RecordId,
        version: u64,
        body: &[u8],
    ) -> Result<()> {
        for attempt in 0..2 {
            let (epoch, ek) = self
                .current_epoch(file)
                .ok_or_else(|| ClientError::NotFound("no key for this file".into()))?;
            let header = RecordHeader {
                firm: self.id.firm,
                file,
                record,
                epoch,
                version,
                author: self.id.device,
            };
            let env = seal_record(&header, &ek, &self.account, body, &mut OsRng)
                .map_err(|e| ClientError::Invalid(format!("record: {e}")))?;
            match self
                .relay
                .put_record(&self.account, file, record, &env.to_bytes())
                .await
            {
                Ok(_) => return Ok(()),
                Err(RelayError::Refused { code, .. }) if code == "stale_epoch" && attempt == 0 => {
                    self.sync_file_keys(file, &mut SyncReport::default())
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ClientError::Integrity(
            "the relay keeps naming a newer key epoch this device cannot open".into(),
        ))
    }

    /// Fetches a file's records changed since its cursor, page after page.
    async fn sync_records(&mut self, file: FileId, report: &mut SyncReport) -> Result<()> {
        loop {
            let since = self.local.files.get(&file).map_or(0, |f| f.records);
            let (records, next) = self.relay.records(&self.account, file, since).await?;
            let last = records.len() < crate::transport::RECORDS_PAGE || next <= since;
            self.receive_records(file, records, report)?;
            self.local.files.entry(file).or_default().records = next;
            if last {
                return Ok(());
            }
        }
    }

    fn receive_records(
        &mut self,
        file: FileId,
        records: Vec<crate::transport::ListedRecord>,
        report: &mut SyncReport,
    ) -> Result<()> {
        report.records += records.len();
        for rec in records {
            if let Some(seen) = self.restore_seen.as_mut() {
                seen.records.insert((file, rec.record));
            }
            let opened = RecordEnvelope::from_bytes(&rec.envelope)
                .map_err(|e| e.to_string())
                .and_then(|env| {
                    let author = self
                        .roster()
                        .ok()
                        .and_then(|r| r.device(&env.header.author))
                        .map(|d| d.keys.signing)
                        .ok_or("unknown author")?;
                    let ek = self
                        .epoch_key(file, env.header.epoch)
                        .ok_or("no key for its epoch")?;
                    let expected = ledgerline_protocol::record::RecordRef {
                        firm: self.id.firm,
                        file,
                        record: rec.record,
                    };
                    open_record(&env, &expected, &ek, &author)
                        .map(|p| (p, env.header.version))
                        .map_err(|e| e.to_string())
                });
            match opened {
                Ok((plain, version)) => {
                    let ty = serde_json::from_slice::<serde_json::Value>(&plain)
                        .ok()
                        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
                    if ty.as_deref() == Some("work") {
                        if let Err(e) = self.receive_item(file, rec.record, version, &plain) {
                            report
                                .warnings
                                .push(format!("file {file} record {}: {e}", rec.record));
                        }
                    } else if let Ok(m) = serde_json::from_slice::<DocumentManifest>(&plain) {
                        if m.kind == "document" {
                            if let Some(seen) = self.restore_seen.as_mut() {
                                seen.documents.insert(m.document);
                            }
                            self.remember_document(file, &m)?;
                        }
                    } else if rec.record == FILE_PROFILE_RECORD {
                        let v: serde_json::Value =
                            serde_json::from_slice(&plain).unwrap_or_default();
                        if let Some(name) = v.get("name").and_then(|n| n.as_str()) {
                            let f = self.local.files.entry(file).or_default();
                            if f.name.as_deref() != Some(name) {
                                f.name = Some(name.to_owned());
                                self.store.index("file", &file.to_hex(), name)?;
                            }
                        }
                    }
                }
                Err(e) => report
                    .warnings
                    .push(format!("file {file} record {}: {e}", rec.record)),
            }
        }
        Ok(())
    }

    /// Gives `member` access to `file` (admin): roster event, then the current epoch key
    /// wrapped under the member's key.
    pub async fn grant(&mut self, file: FileId, member: MemberId) -> Result<()> {
        self.require_admin()?;
        let (epoch, ek) = self.current_epoch(file).ok_or_else(|| {
            ClientError::NotAllowed("this profile holds no key for the file".into())
        })?;
        let (version, mk) = self.member_key(member).ok_or_else(|| {
            ClientError::NotFound(format!("no member key of {member} here (escrow missing)"))
        })?;
        if !self.roster()?.granted_files(&member).contains(&file) {
            self.append(EventKind::FileAccessGranted { file, member })
                .await?;
        }
        let ctx = EpochKeyContext {
            firm: self.id.firm,
            file,
            epoch,
            holder: Holder::Member(member),
            holder_key_version: version,
        };
        let wrapped = wrap_epoch_key(&ek, &mk, &ctx, &mut OsRng);
        self.relay
            .put_epoch_key(&self.account, file, epoch, member, version, &wrapped)
            .await?;
        // The file's conversation so far, for the new member's devices.
        self.forward_history(file, member)?;
        // The file's guests see who joined their conversation, by name.
        self.introduce_to_guests(file, member)?;
        self.commit()?;
        self.flush_private(&mut SyncReport::default()).await
    }

    /// Erases a customer file for good (admin; GDPR): the relay deletes its ciphertext,
    /// wrapped keys and conversation in one logged step, and every device then forgets its
    /// keys and decrypted copy (crypto-shredding: a backup of the ciphertext stays
    /// unreadable).
    pub async fn erase_file(&mut self, file: FileId) -> Result<()> {
        self.require_admin()?;
        match self.relay.erase_file(&self.account, file).await {
            Ok(()) | Err(RelayError::Refused { status: 410, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.forget_file(file)
    }

    /// Drops everything this device holds of an erased file: keys, decrypted records,
    /// messages, document manifests, pending edits and uploads.
    fn forget_file(&mut self, file: FileId) -> Result<()> {
        self.local.erased.insert(file);
        self.local.files.remove(&file);
        self.local.epoch_keys.remove(&file);
        self.local.documents.remove(&file);
        self.local.uploads.retain(|u| u.file() != file);
        self.local.undelivered.remove(&hex::encode(file.as_bytes()));
        self.local
            .room_cursors
            .remove(&hex::encode(file.as_bytes()));
        self.outbound.remove(file.as_bytes());
        self.local
            .outbox
            .retain(|o| o.room != hex::encode(file.as_bytes()));
        self.store.forget_file(file.as_bytes())?;
        // Its customer conversation goes with it.
        let conversation = self.customer_conversation(file).room_id();
        self.store
            .forget_expired(&conversation, Some(u64::MAX), &[])?;
        self.local.room_cursors.remove(&hex::encode(conversation));
        self.outbound.remove(&conversation);
        self.local.conversations.remove(&file);
        self.commit()
    }

    /// Customer files this member can see.
    pub fn files(&self) -> Result<Vec<FileView>> {
        let r = self.roster()?;
        let now = now_ms();
        Ok(r.files_of(&self.id.member, now)
            .into_iter()
            .filter(|f| !self.local.erased.contains(f))
            .map(|f| {
                let members: Vec<MemberId> = r.file_members(&f, now).into_iter().collect();
                FileView {
                    id: f,
                    name: self.local.files.get(&f).and_then(|s| s.name.clone()),
                    epoch: self.current_epoch(f).map(|(e, _)| e),
                    granted: members
                        .iter()
                        .filter(|m| r.granted_files(m).contains(&f))
                        .copied()
                        .collect(),
                    teams: r.file_teams(&f).into_iter().collect(),
                    members,
                }
            })
            .collect())
    }

    // ------------------------------------------------------------------ onboarding

    /// Issues an invitation (admin); returns the one-time code to hand over.
    pub async fn invite(&mut self, name: &str, role: Role) -> Result<String> {
        self.require_admin()?;
        self.open_invite(name, role_name(role)).await
    }

    /// Opens an invitation mailbox whose code carries this member's fingerprint, and
    /// remembers the code (for approving, later) as `role` (a roster role or a device link).
    async fn open_invite(&mut self, name: &str, role: &str) -> Result<String> {
        self.open_invite_for(name, role, None, INVITE_TTL_MS).await
    }

    /// [`Profile::open_invite`] for a guest of `file` (or anyone, with `None`), open for
    /// `ttl_ms`.
    async fn open_invite_for(
        &mut self,
        name: &str,
        role: &str,
        file: Option<FileId>,
        ttl_ms: u64,
    ) -> Result<String> {
        let invite = Invite::generate(&self.master()?.verifying_key(), &mut OsRng);
        let expires_ms = now_ms() + ttl_ms;
        self.relay
            .create_invite(&self.account, invite.id(), expires_ms)
            .await?;
        let code = invite.code();
        self.local.invites.push(PendingInvite {
            code: code.clone(),
            name: name.to_owned(),
            role: role.to_owned(),
            expires_ms,
            file,
        });
        self.commit()?;
        Ok(code)
    }

    /// Approves the joiner named `name` (the invitation's name or the joiner's own):
    /// compares the fingerprint, appends the roster events, makes the member's key and
    /// wraps it for the joiner's device and for every admin device (escrow).
    pub async fn approve(&mut self, name: &str, told_fingerprint: &str) -> Result<MemberId> {
        self.require_admin()?;
        // The roster events go on top of the newest roster, not a stale copy.
        self.sync_roster(&mut SyncReport::default()).await?;
        let now = now_ms();
        let mut found = None;
        for (i, inv) in self.local.invites.iter().enumerate() {
            if inv.expires_ms < now || inv.role == devices::DEVICE_INVITE {
                continue;
            }
            let invite = Invite::parse(&inv.code)
                .map_err(|e| ClientError::Integrity(format!("stored invitation: {e}")))?;
            for sealed in self.relay.join_requests(&self.account, invite.id()).await? {
                let Ok(join) = onboarding::open_join_request(&invite, self.id.firm, &sealed) else {
                    continue;
                };
                if inv.name == name || join.request.name == name {
                    let role = match (inv.role.as_str(), inv.file) {
                        ("guest", Some(_)) => Role::Guest,
                        (other, _) => parse_role(other).ok_or_else(|| {
                            ClientError::Integrity("stored invitation role".into())
                        })?,
                    };
                    found = Some((i, invite.clone(), join, role, inv.file));
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        let (index, invite, join, role, guest_of) = found.ok_or_else(|| {
            ClientError::NotFound(format!(
                "no join request from {name:?} on an open invitation (has the joiner run `ledgerline join`?)"
            ))
        })?;
        let events = onboarding::approve(
            &join,
            told_fingerprint,
            self.roster()?,
            self.id.member,
            self.master()?,
            match guest_of {
                Some(file) if role == Role::Guest => onboarding::Admit::Guest(file),
                _ => onboarding::Admit::Member(role),
            },
            now.max(last_time(&self.events)),
        )?;
        for e in &events {
            self.relay
                .append_roster(&self.account, &e.to_bytes())
                .await?;
            self.accept_roster(std::slice::from_ref(e))?;
        }
        let member = join.request.member;
        self.local
            .member_names
            .insert(member, join.request.name.clone());
        self.local.invites.remove(index);
        // A guest holds no member key: nothing of the firm is ever wrapped for them.
        if role != Role::Guest {
            let mk = MemberKey::generate(&mut OsRng);
            self.local_member_key_insert(member, 1, &mk);
            self.commit()?;
            let mut devices = vec![join.request.device];
            devices.extend(self.admin_devices()?);
            self.share_member_key(member, 1, &mk, &devices).await?;
        }
        if role == Role::Admin {
            // Admins hold every team key (they wrap new epochs under them).
            self.share_team_keys_with(member).await?;
        }
        self.announce_member(member, join.request.device)?;
        self.commit()?;
        self.flush_private(&mut SyncReport::default()).await?;
        // The mailbox has served its one use.
        self.close_invite(invite.id()).await;
        Ok(member)
    }

    /// The member invitations this admin issued that are still open (not approved, not
    /// expired), newest last.
    pub fn invitations(&self) -> Vec<InvitationView> {
        let now = now_ms();
        self.local
            .invites
            .iter()
            .filter(|i| i.expires_ms >= now && i.role != devices::DEVICE_INVITE)
            .map(|i| InvitationView {
                name: i.name.clone(),
                role: i.role.clone(),
                code: i.code.clone(),
                expires_ms: i.expires_ms,
            })
            .collect()
    }

    /// Closes an invitation mailbox after its one use (best effort: it expires anyway).
    async fn close_invite(&self, id: [u8; 16]) {
        let _ = self
            .relay
            .call(
                &self.account,
                "DELETE",
                &format!("/v1/invites/{}", hex::encode(id)),
                None,
            )
            .await;
    }

    fn admin_devices(&self) -> Result<Vec<DeviceId>> {
        let r = self.roster()?;
        Ok(r.members()
            .filter(|(_, m)| m.role == Role::Admin && m.active.until.is_none())
            .flat_map(|(id, _)| r.devices_of_member(id))
            .filter(|d| r.device(d).is_some_and(|s| s.active.until.is_none()))
            .collect())
    }

    /// The roster's members.
    pub fn members(&self) -> Result<Vec<MemberView>> {
        let r = self.roster()?;
        Ok(r.members()
            .map(|(id, m)| MemberView {
                id: *id,
                name: self.local.member_names.get(id).cloned(),
                role: role_name(m.role).to_owned(),
                active: m.active.until.is_none(),
                fingerprint: fingerprint_text(&fingerprint(&m.master_key)),
                me: *id == self.id.member,
            })
            .collect())
    }

    /// The roster's devices.
    pub fn devices(&self) -> Result<Vec<DeviceView>> {
        let r = self.roster()?;
        Ok(r.members()
            .flat_map(|(id, _)| r.devices_of_member(id))
            .filter_map(|d| {
                r.device(&d).map(|s| DeviceView {
                    id: d,
                    member: s.member,
                    active: s.active.until.is_none(),
                    me: d == self.id.device,
                })
            })
            .collect())
    }

    // ------------------------------------------------------------------ chat

    /// Sends an event to a conversation; returns its sequence number. If the relay is
    /// unreachable after the message was encrypted, it stays in the outbox and the error is
    /// [`ClientError::Queued`].
    pub async fn send(&mut self, to: Conversation, event: RoomEvent) -> Result<u64> {
        let mut report = SyncReport::default();
        // Offline, a message can still be encrypted and queued if the room key already
        // reached every device; anything that must talk to the relay fails clearly.
        // Sending needs the current roster (who may read), not a full catch-up.
        let light = async {
            self.sync_roster(&mut report).await?;
            self.publish_prekeys().await
        };
        let offline = match light.await {
            Ok(()) => false,
            Err(ClientError::Relay(RelayError::Unreachable(_))) => true,
            Err(e) => return Err(e),
        };
        let room = to.room_id();
        if let (Conversation::Customer { file, .. }, false) = (to, offline) {
            self.open_conversation(file).await?;
        }
        let devices = self.audience(to, offline).await?;
        self.ensure_session(room, &devices, offline, &mut report)
            .await?;
        let out = self
            .outbound
            .get_mut(&room)
            .ok_or_else(|| ClientError::Integrity("outbound session".into()))?;
        let ciphertext = out.encrypt(&event);
        // The relay refuses a larger message for good: never queue one it would refuse.
        if ciphertext.len() > ledgerline_protocol::history::ROOM_MESSAGE_MAX_BYTES {
            return Err(ClientError::Declined {
                reason: "message_too_long",
                message: format!(
                    "the message is too long ({} bytes encrypted, at most {}): send the text as a document",
                    ciphertext.len(),
                    ledgerline_protocol::history::ROOM_MESSAGE_MAX_BYTES
                ),
            });
        }
        self.local.outbox.push(Outgoing {
            room: hex::encode(room),
            ciphertext: hex::encode(&ciphertext),
            event: Some(event),
        });
        self.commit()?;
        if offline {
            return Err(ClientError::Queued("the relay is unreachable".into()));
        }
        match self
            .relay
            .send_message(&self.account, room, &ciphertext)
            .await
        {
            Ok(seq) => {
                self.local
                    .outbox
                    .retain(|o| o.ciphertext != hex::encode(&ciphertext));
                self.store.put_sent(&room, seq, &ciphertext)?;
                self.commit()?;
                Ok(seq)
            }
            Err(RelayError::Unreachable(e)) => Err(ClientError::Queued(e)),
            Err(e) => Err(wait_if_busy(e.into())),
        }
    }

    /// Makes sure this device's outbound session of `room` reached every device of
    /// `devices`: a new session when the audience changed or a limit ran out, its key over
    /// Olm to the devices that lack it. Returns how many devices got the key now.
    async fn ensure_session(
        &mut self,
        room: [u8; 16],
        devices: &BTreeSet<DeviceId>,
        offline: bool,
        report: &mut SyncReport,
    ) -> Result<usize> {
        let now = now_ms();
        // Someone's access to the file ended since the session began: it may have reached
        // them (shared, or forwarded by an admin with the file's history), so it is retired.
        let access_ended = self.roster()?.last_access_end(&FileId(room), now);
        let rotate = self.outbound.get(&room).is_none_or(|o| {
            o.needs_rotation(devices, now) || access_ended.is_some_and(|t| t >= o.created_ms())
        });
        if rotate {
            self.outbound.insert(room, OutboundRoom::new(room, now));
        }
        let shared = self
            .outbound
            .get(&room)
            .map(|o| o.shared_with().clone())
            .unwrap_or_default();
        let missing: Vec<DeviceId> = devices.difference(&shared).copied().collect();
        let mut reached_now = 0;
        if !missing.is_empty() {
            if offline {
                return Err(ClientError::Relay(RelayError::Unreachable(
                    "the room key must reach new devices first".into(),
                )));
            }
            let reached = self.olm_reach(&missing, report).await?;
            reached_now = reached.len();
            let out = self
                .outbound
                .get_mut(&room)
                .ok_or_else(|| ClientError::Integrity("outbound session".into()))?;
            // The audience is every device allowed now; the ones without prekeys get the
            // key at a later sync (their messages wait, then decrypt).
            let key = out.share(self.id.device, devices);
            self.deliver_key(&key, &reached).await?;
            let _ = self.timeline.add_key(self.id.device, &key);
            self.note_undelivered(room, missing.iter(), |d| reached.contains(d));
        }
        Ok(reached_now)
    }

    /// Remembers which of `audience` (other than this device) a room key did not reach,
    /// for a later sync to deliver.
    fn note_undelivered<'a>(
        &mut self,
        room: [u8; 16],
        audience: impl Iterator<Item = &'a DeviceId>,
        reached: impl Fn(&DeviceId) -> bool,
    ) {
        let later: BTreeSet<DeviceId> = audience
            .filter(|d| **d != self.id.device && !reached(d))
            .copied()
            .collect();
        if later.is_empty() {
            self.local.undelivered.remove(&hex::encode(room));
        } else {
            self.local.undelivered.insert(hex::encode(room), later);
        }
    }

    /// The devices a conversation's room key goes to. File rooms: from the verified roster.
    /// Internal rooms: the members the relay enforces, but only those the room's own
    /// (encrypted, signed) profile names — the relay cannot add a listener.
    async fn audience(&mut self, to: Conversation, offline: bool) -> Result<BTreeSet<DeviceId>> {
        let members: BTreeSet<MemberId> = match to {
            Conversation::Customer { file, .. } => {
                self.roster()?.conversation_members(&file, now_ms())
            }
            Conversation::File(file) => {
                let m = self.roster()?.file_members(&file, now_ms());
                if !m.contains(&self.id.member) {
                    return Err(ClientError::NotAllowed(
                        "this member has no access to the file".into(),
                    ));
                }
                m
            }
            Conversation::Room(room) => {
                let known: BTreeSet<MemberId> = self
                    .local
                    .rooms
                    .get(&hex::encode(room))
                    .ok_or_else(|| ClientError::NotFound("unknown room".into()))?
                    .members
                    .iter()
                    .copied()
                    .collect();
                if offline {
                    known
                } else {
                    let info = self.relay.room_info(&self.account, room).await?;
                    info.members
                        .into_iter()
                        .filter(|m| known.contains(m))
                        .collect()
                }
            }
        };
        if !members.contains(&self.id.member) {
            return Err(ClientError::NotAllowed(
                "this member is not in the conversation".into(),
            ));
        }
        let r = self.roster()?;
        Ok(members
            .iter()
            .flat_map(|m| r.active_devices(m).map(|(d, _)| *d).collect::<Vec<_>>())
            .collect())
    }

    /// Creates an internal room (or, with `direct`, a direct chat) with `members` (this
    /// member is added); its name and members travel in the first, encrypted event.
    pub async fn create_room(
        &mut self,
        name: &str,
        members: &[MemberId],
        direct: bool,
    ) -> Result<[u8; 16]> {
        let mut all: BTreeSet<MemberId> = members.iter().copied().collect();
        all.insert(self.id.member);
        let r = self.roster()?;
        if let Some(m) = all
            .iter()
            .find(|m| r.member(m).is_none_or(|s| s.active.until.is_some()))
        {
            return Err(ClientError::NotFound(format!(
                "{m} is not an active member"
            )));
        }
        let mut room = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut room);
        let list: Vec<MemberId> = all.into_iter().collect();
        self.relay
            .create_room(&self.account, room, None, &list)
            .await?;
        self.local.rooms.insert(
            hex::encode(room),
            RoomState {
                name: Some(name.to_owned()),
                members: list.clone(),
                direct,
            },
        );
        self.commit()?;
        self.send(
            Conversation::Room(room),
            RoomEvent::RoomProfile {
                name: name.to_owned(),
                members: list,
                direct,
            },
        )
        .await?;
        Ok(room)
    }

    /// The direct chat with `member`, created on first use.
    pub async fn direct_chat(&mut self, member: MemberId) -> Result<[u8; 16]> {
        let mut pair = vec![self.id.member, member];
        pair.sort();
        if let Some((id, _)) = self.local.rooms.iter().find(|(_, r)| {
            let mut m = r.members.clone();
            m.sort();
            r.direct && m == pair
        }) {
            let mut room = [0u8; 16];
            hex::decode_to_slice(id, &mut room)
                .map_err(|_| ClientError::Integrity("stored room id".into()))?;
            return Ok(room);
        }
        self.create_room("", &[member], true).await
    }

    /// Internal rooms and direct chats this device knows.
    pub fn rooms(&self) -> Vec<RoomView> {
        self.local
            .rooms
            .iter()
            .map(|(id, r)| RoomView {
                id: id.clone(),
                name: r.name.clone(),
                members: r.members.clone(),
                direct: r.direct,
            })
            .collect()
    }

    /// Resolves a conversation: a customer file (name or id), an internal room (name or
    /// id), or `@member` for the direct chat with that member (created on first use).
    pub async fn resolve_conversation(&mut self, target: &str) -> Result<Conversation> {
        if let Some(who) = target.strip_prefix('@') {
            let member = self.resolve_member(who)?;
            return Ok(Conversation::Room(self.direct_chat(member).await?));
        }
        if let Ok(f) = self.resolve_file(target) {
            return Ok(Conversation::File(f));
        }
        let hits: Vec<&String> = self
            .local
            .rooms
            .iter()
            .filter(|(id, r)| id.as_str() == target || r.name.as_deref() == Some(target))
            .map(|(id, _)| id)
            .collect();
        match hits.as_slice() {
            [one] => {
                let mut room = [0u8; 16];
                hex::decode_to_slice(one, &mut room)
                    .map_err(|_| ClientError::Integrity("stored room id".into()))?;
                Ok(Conversation::Room(room))
            }
            [] => Err(ClientError::NotFound(format!(
                "no customer file or room named {target:?} (try `ledgerline sync`)"
            ))),
            _ => Err(ClientError::Invalid(format!(
                "several rooms are named {target:?}: use the id"
            ))),
        }
    }

    /// Marks everything stored so far as read (a `read` event others see).
    pub async fn mark_read(&mut self, to: Conversation) -> Result<Option<u64>> {
        let last = self
            .store
            .messages(&to.room_id())?
            .iter()
            .filter(|m| !m.event.is_empty())
            .map(|m| m.seq)
            .max();
        if let Some(up_to) = last {
            self.send(to, RoomEvent::Read { up_to }).await?;
        }
        Ok(last)
    }

    /// Makes sure an Olm session exists with each device; returns the ones reached.
    async fn olm_reach(
        &mut self,
        devices: &[DeviceId],
        report: &mut SyncReport,
    ) -> Result<Vec<DeviceId>> {
        // The keys needed, copied out of the roster (not the roster itself: it is big).
        let keys: Vec<(DeviceId, [u8; 32], ledgerline_protocol::keys::VerifyingKey)> = {
            let r = self.roster()?;
            devices
                .iter()
                .filter(|d| **d != self.id.device)
                .filter_map(|d| r.device(d).map(|s| (*d, s.keys.identity, s.keys.signing)))
                .collect()
        };
        let need: Vec<DeviceId> = keys
            .iter()
            .filter(|(_, identity, _)| !self.olm.has_session(identity))
            .map(|(d, _, _)| *d)
            .collect();
        if !need.is_empty() {
            let claimed = self.relay.claim_prekeys(&self.account, &need).await?;
            for (d, identity, signing) in keys.iter().filter(|(d, _, _)| need.contains(d)) {
                match claimed.get(d).cloned().flatten() {
                    Some(pk) => {
                        if pk.verify(self.id.firm, *d, signing).is_err() {
                            report
                                .warnings
                                .push(format!("device {d}: prekey signature invalid, skipped"));
                            continue;
                        }
                        self.olm
                            .open(&self.account, *identity, &pk)
                            .map_err(|e| ClientError::Integrity(e.to_string()))?;
                    }
                    None => report.warnings.push(format!(
                        "device {d} has no prekeys yet; it gets the key later"
                    )),
                }
            }
        }
        Ok(keys
            .iter()
            .filter(|(_, identity, _)| self.olm.has_session(identity))
            .map(|(d, _, _)| *d)
            .collect())
    }

    async fn deliver_key(&mut self, key: &RoomKey, devices: &[DeviceId]) -> Result<()> {
        let batch = self.seal_key_for(key, devices)?;
        if !batch.is_empty() {
            self.relay.send_to_device(&self.account, &batch).await?;
        }
        Ok(())
    }

    /// A room key Olm-encrypted for each of `devices` (the roster's identity keys).
    fn seal_key_for(
        &mut self,
        key: &RoomKey,
        devices: &[DeviceId],
    ) -> Result<Vec<(DeviceId, Vec<u8>)>> {
        let identities: Vec<(DeviceId, [u8; 32])> = {
            let r = self.roster()?;
            devices
                .iter()
                .filter_map(|d| r.device(d).map(|s| (*d, s.keys.identity)))
                .collect()
        };
        let plain = Zeroizing::new(serde_json::to_vec(key).unwrap_or_default());
        let mut batch = Vec::with_capacity(identities.len());
        for (d, identity) in identities {
            let ct = self
                .olm
                .encrypt(&identity, &plain)
                .map_err(|e| ClientError::Integrity(e.to_string()))?;
            batch.push((d, ct));
        }
        Ok(batch)
    }

    async fn sync_to_device(&mut self, report: &mut SyncReport) -> Result<()> {
        loop {
            let inbox = self
                .relay
                .to_device(&self.account, self.local.to_device_after)
                .await?;
            let Some(last) = inbox.last().map(|m| m.id) else {
                return Ok(());
            };
            let r = self.roster()?.clone();
            for m in inbox {
                let Some(sender) = r.device(&m.sender) else {
                    report
                        .warnings
                        .push(format!("to-device from unknown device {}", m.sender));
                    continue;
                };
                let plain =
                    match self
                        .olm
                        .decrypt(&mut self.account, sender.keys.identity, &m.ciphertext)
                    {
                        Ok(p) => Zeroizing::new(p),
                        Err(e) => {
                            report
                                .warnings
                                .push(format!("to-device from {}: {e}", m.sender));
                            continue;
                        }
                    };
                let Ok(key) = serde_json::from_slice::<RoomKey>(&plain) else {
                    if let Err(e) = self.accept_private(m.sender, &plain) {
                        report
                            .warnings
                            .push(format!("to-device from {}: {e}", m.sender));
                    }
                    continue;
                };
                match self.timeline.add_key(m.sender, &key) {
                    Ok(decrypted) => {
                        report.room_keys += 1;
                        let is_file = key
                            .room
                            .parse::<FileId>()
                            .is_ok_and(|f| r.files().contains(&f));
                        if !is_file && !self.local.rooms.contains_key(&key.room) {
                            // A key for a room we did not know: someone added us.
                            self.local
                                .rooms
                                .insert(key.room.clone(), RoomState::default());
                        }
                        for d in decrypted.into_iter().flatten() {
                            self.apply_room_profile(d.room, d.sender, &d.event);
                            self.page.push(stored(&d.event, d.room, d.seq, d.sender, 0));
                        }
                    }
                    Err(e) => report
                        .warnings
                        .push(format!("room key from {}: {e}", m.sender)),
                }
            }
            self.local.to_device_after = last;
            report.messages += self.page.len();
            self.commit()?;
            self.relay.ack_to_device(&self.account, last).await?;
        }
    }

    async fn sync_room(&mut self, room: [u8; 16], report: &mut SyncReport) -> Result<()> {
        let key = hex::encode(room);
        loop {
            let from = self
                .local
                .room_cursors
                .get(&key)
                .copied()
                .unwrap_or(1)
                .max(1);
            let (page, next) = self
                .relay
                .messages_page(&self.account, room, from, SYNC_PAGE)
                .await?;
            // A restored relay numbers on far past what it had lost
            // (`protocol-spec/operations.md`): this device's lost messages go again, then
            // reading continues in the new numbering.
            let ahead = page.first().map(|m| m.seq).or(next);
            if let Some(start) = ahead.filter(|s| *s >= from.saturating_add(RESTORE_JUMP)) {
                self.local.restore_noticed = true;
                report.resent += self.repost_lost(room, start).await?;
                self.local.room_cursors.insert(key.clone(), start);
                self.commit()?;
                continue;
            }
            let Some(last) = page.last().map(|m| m.seq) else {
                return Ok(());
            };
            for m in page {
                if m.sender == self.id.device {
                    if !self.local.outbox.is_empty() {
                        // Our own message reached the relay: never send it again.
                        let hexct = hex::encode(&m.ciphertext);
                        self.local.outbox.retain(|o| o.ciphertext != hexct);
                    }
                    self.store.put_sent(&room, m.seq, &m.ciphertext)?;
                }
                match self.timeline.receive(room, m.seq, m.sender, &m.ciphertext) {
                    Ok(Received::Decrypted(d)) => {
                        self.apply_room_profile(room, d.sender, &d.event);
                        self.page
                            .push(stored(&d.event, room, m.seq, m.sender, m.created_ms));
                    }
                    Ok(Received::Pending) => self.page.push((
                        StoredMessage {
                            room,
                            seq: m.seq,
                            sender: m.sender.0,
                            event: String::new(),
                            created_ms: m.created_ms,
                        },
                        None,
                    )),
                    // The same message at a second position: posted again after a relay
                    // restore (this device holds it already), or replayed; shown once.
                    Err(crate::room::RoomError::Replayed) => {}
                    Err(e) => report
                        .warnings
                        .push(format!("message {} of room {key}: {e}", m.seq)),
                }
            }
            self.local.room_cursors.insert(key.clone(), last + 1);
            report.messages += self
                .page
                .iter()
                .filter(|(m, _)| !m.event.is_empty())
                .count();
            self.commit()?;
        }
    }

    /// A decrypted room profile updates an internal room's name and members, if its
    /// sender is a member of the room as this device knows it (or it is the first).
    fn apply_room_profile(&mut self, room: [u8; 16], sender: DeviceId, event: &RoomEvent) {
        let RoomEvent::RoomProfile {
            name,
            members,
            direct,
        } = event
        else {
            return;
        };
        let from = self
            .roster
            .as_ref()
            .and_then(|r| r.device(&sender))
            .map(|d| d.member);
        let Some(state) = self.local.rooms.get_mut(&hex::encode(room)) else {
            return;
        };
        let trusted = state.members.is_empty() || from.is_some_and(|m| state.members.contains(&m));
        if trusted && from.is_some_and(|m| members.contains(&m)) {
            state.name = Some(name.clone());
            state.members = members.clone();
            state.direct = *direct;
        }
    }

    /// Retries room keys that could not reach some devices when they were shared.
    async fn deliver_late_keys(&mut self, report: &mut SyncReport) -> Result<()> {
        let pending: Vec<(String, BTreeSet<DeviceId>)> = self
            .local
            .undelivered
            .iter()
            .map(|(r, d)| (r.clone(), d.clone()))
            .collect();
        for (room_hex, devices) in pending {
            let mut room = [0u8; 16];
            if hex::decode_to_slice(&room_hex, &mut room).is_err() {
                self.local.undelivered.remove(&room_hex);
                continue;
            }
            // Only devices still allowed in the room, and only this session's audience.
            let conv = self.conversation_of_room(room);
            let allowed = match self.audience(conv, false).await {
                Ok(a) => a,
                Err(ClientError::Relay(e)) => return Err(e.into()),
                Err(_) => BTreeSet::new(),
            };
            let Some(audience) = self.outbound.get(&room).map(|o| o.shared_with().clone()) else {
                self.local.undelivered.remove(&room_hex);
                continue;
            };
            let targets: Vec<DeviceId> = devices
                .iter()
                .filter(|d| allowed.contains(d) && audience.contains(d))
                .copied()
                .collect();
            let reached = self.olm_reach(&targets, report).await?;
            if !reached.is_empty() {
                let key = self
                    .outbound
                    .get_mut(&room)
                    .map(|o| o.share(self.id.device, &audience))
                    .ok_or_else(|| ClientError::Integrity("outbound session".into()))?;
                self.deliver_key(&key, &reached).await?;
            }
            let left: BTreeSet<DeviceId> = targets
                .into_iter()
                .filter(|d| !reached.contains(d))
                .collect();
            if left.is_empty() {
                self.local.undelivered.remove(&room_hex);
            } else {
                self.local.undelivered.insert(room_hex, left);
            }
            self.commit()?;
        }
        Ok(())
    }

    /// Posts again, as they were, this device's messages of `room` that a restored relay
    /// lost: those it had numbered from the restored end up to `start`, where the relay's
    /// new numbering begins ([`RESTORE_JUMP`]). Returns how many.
    async fn repost_lost(&mut self, room: [u8; 16], start: u64) -> Result<usize> {
        let restored_end = start.saturating_sub(RESTORE_GAP);
        let lost = self.store.sent_between(&room, restored_end, start)?;
        for (old, ct) in &lost {
            let seq = self.relay.send_message(&self.account, room, ct).await?;
            self.store.forget_sent(&room, *old)?;
            self.store.put_sent(&room, seq, ct)?;
        }
        if !lost.is_empty() {
            // Their keys' first share may be lost with them.
            self.reshare_own_sessions(room).await?;
        }
        Ok(lost.len())
    }

    async fn flush_outbox(&mut self, report: &mut SyncReport) -> Result<()> {
        while let Some(o) = self.local.outbox.first().cloned() {
            let mut room = [0u8; 16];
            let ct = hex::decode(&o.ciphertext).ok();
            let (Ok(()), Some(ct)) = (hex::decode_to_slice(&o.room, &mut room), ct) else {
                self.local.outbox.remove(0);
                continue;
            };
            let ct = self.reseal_if_replaced(room, &o, ct, report).await?;
            let seq = self.relay.send_message(&self.account, room, &ct).await?;
            self.store.put_sent(&room, seq, &ct)?;
            self.local.outbox.remove(0);
            self.commit()?;
            report.sent += 1;
        }
        Ok(())
    }

    /// A queued message whose session is no longer this device's current one for the
    /// room (replaced after a revocation, or by the rotation policy) is encrypted again
    /// under a session for the audience allowed now; the outbox entry is updated first.
    async fn reseal_if_replaced(
        &mut self,
        room: [u8; 16],
        o: &Outgoing,
        ct: Vec<u8>,
        report: &mut SyncReport,
    ) -> Result<Vec<u8>> {
        let Some(event) = &o.event else {
            return Ok(ct);
        };
        let current = self.outbound.get(&room).map(OutboundRoom::session_id);
        let queued = crate::room::session_id_of(&ct);
        let to = self.conversation_of_room(room);
        let devices = match self.audience(to, false).await {
            Ok(d) => d,
            // No longer allowed in: the relay refuses it, as it should.
            Err(ClientError::NotAllowed(_) | ClientError::NotFound(_)) => return Ok(ct),
            Err(e) => return Err(e),
        };
        let stale_audience = self
            .outbound
            .get(&room)
            .is_some_and(|out| !out.shared_with().is_subset(&devices));
        if current.is_some() && current.as_deref() == queued.as_deref() && !stale_audience {
            return Ok(ct);
        }
        if stale_audience {
            self.outbound.remove(&room);
        }
        self.ensure_session(room, &devices, false, report).await?;
        let out = self
            .outbound
            .get_mut(&room)
            .ok_or_else(|| ClientError::Integrity("outbound session".into()))?;
        let fresh = out.encrypt(event);
        if let Some(first) = self.local.outbox.first_mut() {
            first.ciphertext = hex::encode(&fresh);
        }
        self.commit()?;
        Ok(fresh)
    }

    /// What waits to go out, after a sync read everything in: openings for the log, late
    /// room keys, private payloads, interrupted uploads, then the outbox.
    async fn send_pending(&mut self, report: &mut SyncReport) -> Result<()> {
        self.flush_opened().await?;
        self.deliver_late_keys(report).await?;
        self.flush_private(report).await?;
        report.uploads_finished = self.resume_uploads(report).await?;
        // The outbox goes last: every own message the relay already has was seen above.
        self.flush_outbox(report).await
    }

    async fn sync_inner(&mut self, report: &mut SyncReport) -> Result<()> {
        self.sync_roster(report).await?;
        if let Some(file) = self.guest_file() {
            return self.sync_as_guest(file, report).await;
        }
        report.log_size = self.check_log().await?;
        self.publish_prekeys().await?;
        self.sync_member_keys(report).await?;
        self.sync_team_keys(report).await?;
        self.commit()?;
        // An offboarding rotation an interruption left is finished before anything else.
        if let Some(r) = self.resume_rotation(&mut |_| {}).await? {
            report.rotated_files = r.files;
        }
        // Absence covers past their expiry: their end is recorded and their keys rotated.
        report.rotated_files += self.expire_covers().await?;
        // New members of staff get the office file.
        self.grant_office_to_staff().await?;
        self.sync_to_device(report).await?;
        // A reprovisioned device restores its member's backup before reading anything.
        self.finish_reprovision().await?;
        let files = self.roster()?.files_of(&self.id.member, now_ms());
        for file in files {
            if self.local.erased.contains(&file) {
                continue;
            }
            self.local.files.entry(file).or_default();
            let synced = async {
                self.sync_file_keys(file, report).await?;
                self.sync_records(file, report).await?;
                self.sync_room(*file.as_bytes(), report).await
            }
            .await;
            match synced {
                Err(ClientError::Relay(RelayError::Refused { status: 410, .. })) => {
                    self.forget_file(file)?;
                }
                // A file of the roster whose room the relay does not know: it lost it (a
                // restore from a backup older than the file).
                Err(ClientError::Relay(RelayError::Refused { status: 404, .. })) => {
                    self.local.restore_noticed = true;
                    report
                        .warnings
                        .push(format!("file {file}: the relay has lost its conversation"));
                }
                other => other?,
            }
        }
        self.sync_conversations(report).await?;
        let rooms: Vec<String> = self.local.rooms.keys().cloned().collect();
        for hex_room in rooms {
            let mut room = [0u8; 16];
            if hex::decode_to_slice(&hex_room, &mut room).is_ok() {
                match self.sync_room(room, report).await {
                    // Taken out of the room: keep what we have, stop fetching.
                    Err(ClientError::Relay(RelayError::Refused { status: 403, .. })) => {}
                    // Lost by a relay restored from an older backup.
                    Err(ClientError::Relay(RelayError::Refused { status: 404, .. })) => {
                        self.local.restore_noticed = true;
                    }
                    other => other?,
                }
            }
        }
        self.commit()?;
        self.send_pending(report).await?;
        report.work_sent = self.flush_work().await?;
        // Every room session this device holds now, in the member's key backup.
        self.sync_backup().await?;
        report.expired = self.apply_retention()?;
        report.waiting = self.timeline.waiting();
        Ok(())
    }

    /// Opens the relay's signed push channel for this device: each text frame says that
    /// something new waits (a hint; [`Profile::sync`] fetches it). For a caller that
    /// runs its own loop; [`Profile::watch`] is the ready-made one.
    pub async fn push_channel(&self) -> Result<crate::transport::PushSocket> {
        Ok(self.relay.push_socket(&self.account).await?)
    }

    /// Catches up with the relay: roster, keys, room keys, records, messages; then sends
    /// what waits in the outbox.
    pub async fn sync(&mut self) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        self.sync_inner(&mut report).await?;
        // The relay was restored from a backup and this device's view of the access log
        // still fits it (else the sync failed above: `after_restore`): it gives back what
        // the relay lost, on its own.
        if self.local.restore_noticed && self.restore_seen.is_none() {
            report.restored = Some(self.reconcile_restored(&mut report).await?);
        }
        Ok(report)
    }

    /// A conversation as stored locally (run [`Profile::sync`] first), with edits,
    /// deletions and read markers applied.
    pub fn conversation(&self, to: Conversation) -> Result<Vec<MessageView>> {
        let r = self.roster()?;
        let stored = self.store.messages(&to.room_id())?;
        let mut read: BTreeMap<MemberId, u64> = BTreeMap::new();
        let mut out: Vec<MessageView> = Vec::new();
        let mut index: BTreeMap<u64, usize> = BTreeMap::new();
        for m in stored {
            let sender = DeviceId(m.sender);
            let member = r.device(&sender).map(|d| d.member);
            let event: Option<RoomEvent> = serde_json::from_str(&m.event).ok();
            match event {
                Some(RoomEvent::Edit { target, body }) => {
                    if let Some(t) = index.get(&target).and_then(|i| out.get_mut(*i)) {
                        if t.sender == sender && !t.deleted {
                            t.body = Some(body);
                            t.edited = true;
                        }
                    }
                }
                Some(RoomEvent::Delete { target }) => {
                    if let Some(t) = index.get(&target).and_then(|i| out.get_mut(*i)) {
                        if t.sender == sender {
                            t.body = None;
                            t.deleted = true;
                        }
                    }
                }
                Some(RoomEvent::Read { up_to }) => {
                    // Nobody reads the future: a marker covers at most what preceded it.
                    if let Some(who) = member {
                        let e = read.entry(who).or_default();
                        *e = (*e).max(up_to.min(m.seq));
                    }
                }
                Some(RoomEvent::RoomProfile { .. }) => {}
                text => {
                    let (body, reply_to, attachment) = match text {
                        Some(RoomEvent::Text { body, reply_to }) => (Some(body), reply_to, None),
                        Some(
                            RoomEvent::Attachment { document, name }
                            | RoomEvent::SharedDocument { document, name, .. },
                        ) => (Some(name), None, Some(document)),
                        _ => (None, None, None),
                    };
                    index.insert(m.seq, out.len());
                    out.push(MessageView {
                        seq: m.seq,
                        sender,
                        member,
                        name: member.and_then(|id| self.local.member_names.get(&id).cloned()),
                        created_ms: m.created_ms,
                        waiting_for_key: body.is_none(),
                        body,
                        reply_to,
                        attachment,
                        edited: false,
                        deleted: false,
                        read_by: Vec::new(),
                    });
                }
            }
        }
        for v in &mut out {
            v.read_by = read
                .iter()
                .filter(|(m, up_to)| **up_to >= v.seq && Some(**m) != v.member)
                .map(|(m, _)| *m)
                .collect();
        }
        Ok(out)
    }

    /// Local full-text search.
    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        Ok(self.store.search(query, limit)?)
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Member => "member",
        Role::Auditor => "auditor",
        Role::Guest => "guest",
    }
}

/// Failpoint for crash tests: with `LEDGERLINE_CRASH_AFTER_COMMITS=n` in the environment
/// the process aborts right after its n-th local commit, as a power cut or `kill -9`
/// would stop it between two transactions.
fn crash_after_commit() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COMMITS: AtomicU64 = AtomicU64::new(0);
    let Some(limit) = std::env::var("LEDGERLINE_CRASH_AFTER_COMMITS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if COMMITS.fetch_add(1, Ordering::SeqCst) + 1 >= limit {
        std::process::abort();
    }
}

/// Failpoint for crash tests: with `LEDGERLINE_CRASH_AFTER_REVOCATION=1` the process
/// aborts right after a revocation's roster event landed, before any rotation.
fn crash_after_revocation() {
    if std::env::var_os("LEDGERLINE_CRASH_AFTER_REVOCATION").is_some() {
        std::process::abort();
    }
}

/// Failpoint for crash tests: with `LEDGERLINE_CRASH_AFTER_EPOCHS=n` the process aborts
/// once the relay has accepted n new epochs of a rotation, before they are committed
/// locally (the resumed job must recognise them, not wrap them again).
fn crash_after_epochs(landed: u64) {
    if std::env::var("LEDGERLINE_CRASH_AFTER_EPOCHS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|limit| landed >= limit)
    {
        std::process::abort();
    }
}

/// Failpoint for crash tests: with `LEDGERLINE_CRASH_AFTER_UPLOAD_BYTES=n` the process
/// aborts once n bytes of a document body have been handed to the connection.
fn crash_after_upload_bytes(sent: u64) {
    if std::env::var("LEDGERLINE_CRASH_AFTER_UPLOAD_BYTES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|limit| sent >= limit)
    {
        std::process::abort();
    }
}

/// Parses `admin`, `member` or `auditor`.
pub fn parse_role(s: &str) -> Option<Role> {
    match s {
        "admin" => Some(Role::Admin),
        "member" => Some(Role::Member),
        "auditor" => Some(Role::Auditor),
        _ => None,
    }
}

fn last_time(events: &[RosterEvent]) -> u64 {
    events.last().map_or(0, |e| e.body.timestamp_ms)
}

pub(crate) fn stored(
    event: &RoomEvent,
    room: [u8; 16],
    seq: u64,
    sender: DeviceId,
    created_ms: u64,
) -> (StoredMessage, Option<String>) {
    let text = match event {
        RoomEvent::Text { body, .. } | RoomEvent::Edit { body, .. } => Some(body.clone()),
        RoomEvent::Attachment { name, .. } | RoomEvent::SharedDocument { name, .. } => {
            Some(name.clone())
        }
        _ => None,
    };
    (
        StoredMessage {
            room,
            seq,
            sender: sender.0,
            event: serde_json::to_string(event).unwrap_or_default(),
            created_ms,
        },
        text,
    )
}

fn json_string<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn read_json<T: for<'de> Deserialize<'de>>(store: &LocalStore, name: &str) -> Result<Option<T>> {
    store
        .state(name)?
        .map(|s| {
            serde_json::from_str(&s)
                .map_err(|_| ClientError::Integrity(format!("stored {name} is damaged")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_words_are_distinct_and_carry_no_data() {
        let codes: BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len(), "two kinds share a word");
        let refused = ClientError::Relay(RelayError::Refused {
            status: 401,
            code: "revoked_device".into(),
            message: "the device 0a1b… is revoked".into(),
        });
        assert_eq!(refused.kind().code(), "relay_refused");
        assert_eq!(refused.reason(), Some("revoked_device"));
        // Free text (a name, a path) stays in the message, never in the words.
        let named = ClientError::NotFound("no customer file named \"Kowalski\"".into());
        assert_eq!((named.kind(), named.reason()), (ErrorKind::NotFound, None));
        let declined = ClientError::Declined {
            reason: "message_too_long",
            message: "the message is too long".into(),
        };
        assert_eq!(declined.kind(), ErrorKind::Invalid);
        assert_eq!(declined.reason(), Some("message_too_long"));
        let login = ClientError::Mail(crate::mail::imap::ImapError::Login("NO [AUTH]".into()));
        assert_eq!(
            (login.kind().code(), login.reason()),
            ("mail_server", Some("login"))
        );
    }
}
