//! The streaming verifier (`protocol-spec/audit-bundle.md`, "Verification").

use crate::bundle::{Header, Line, FORMAT};
use crate::report::{action, format_ms};
use ledgerline_protocol::audit::{AuditLeaf, LogEntry, RetentionSweep, SubjectKind};
use ledgerline_protocol::checkpoint::{
    device_witness_name, open_checkpoint, open_cosigned_checkpoint, Checkpoint,
};
use ledgerline_protocol::ids::{DeviceId, DocumentId, FileId, FirmId, MemberId, TeamId};
use ledgerline_protocol::keys::VerifyingKey;
use ledgerline_protocol::merkle::{self, Hash};
use ledgerline_protocol::request::verify_signatures_batch;
use ledgerline_protocol::roster::{conversation_room, EventKind, Role, Roster, RosterEvent};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use thiserror::Error;

/// What the auditor insists on.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest accepted difference between a device's signed time and the relay's receipt.
    pub max_skew_ms: u64,
    /// Require the last checkpoint (the one covering every entry) to carry a witness's
    /// cosignature.
    pub witness: Option<Witness>,
    /// Verify each signature on its own (strict Ed25519) instead of in batches.
    pub strict: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_skew_ms: ledgerline_protocol::request::DEFAULT_MAX_SKEW_MS,
            witness: None,
            strict: false,
        }
    }
}

/// Whose cosignature the auditor requires.
#[derive(Debug, Clone)]
pub enum Witness {
    /// A named witness key the auditor holds.
    Key(String, Box<VerifyingKey>),
    /// A device of the firm's owner, as certified in the roster and active when it
    /// cosigned (`checkpoints.md`, witness name `ledgerline-witness/<firm>/<device>`).
    Owner,
}

/// Why a bundle does not verify. Each variant is a distinct finding; entries are named by
/// their index in the log.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditError {
    /// A line is not what the format allows there.
    #[error("line {line}: {what}")]
    Malformed {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        what: String,
    },
    /// The roster chain does not verify.
    #[error("the roster does not verify: {0}")]
    Roster(String),
    /// A checkpoint is not signed by the log key (or names another log).
    #[error("checkpoint {index} (line {line}): {reason}")]
    Checkpoint {
        /// Position among the bundle's checkpoints.
        index: usize,
        /// 1-based line number.
        line: u64,
        /// Why.
        reason: String,
    },
    /// The last checkpoint lacks the required witness cosignature.
    #[error("the checkpoint of size {size} has no valid cosignature by {witness}")]
    MissingWitness {
        /// Its size.
        size: u64,
        /// The required witness.
        witness: String,
    },
    /// Two checkpoints of one size with different roots: the relay showed two histories.
    #[error("fork: two checkpoints of size {size} with different roots")]
    Fork {
        /// The size.
        size: u64,
    },
    /// The entries do not hash to a checkpoint's root.
    #[error(
        "the log does not match the checkpoint of size {size}: an entry between index \
         {after} and {size} was modified, removed, reordered or inserted"
    )]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// The previous checkpoint's size (entries before it matched).
        after: u64,
    },
    /// An entry does not decode canonically or names another firm.
    #[error("entry {index}: {reason}")]
    BadEntry {
        /// Index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// An entry's request was signed by a device the roster never had.
    #[error("entry {index}: signed by device {device}, which the roster does not know")]
    UnknownDevice {
        /// Index.
        index: u64,
        /// Device.
        device: DeviceId,
    },
    /// An entry's request was signed by a device not active at the time.
    #[error(
        "entry {index}: signed by device {device} at {at}, when the roster did not admit it \
         (not yet added, or revoked)"
    )]
    InactiveDevice {
        /// Index.
        index: u64,
        /// Device.
        device: DeviceId,
        /// The request's signed time.
        at: String,
    },
    /// An entry's request signature does not verify under its device's key.
    #[error("entry {index}: the request's signature does not verify (the entry was altered)")]
    BadSignature {
        /// Index.
        index: u64,
    },
    /// An entry repeats an earlier entry's request (same device and nonce).
    #[error("entry {index}: repeats the request of entry {first}")]
    Replayed {
        /// Index.
        index: u64,
        /// The earlier entry.
        first: u64,
    },
    /// An entry was received before the entry preceding it.
    #[error("entry {index}: received at {at}, before the entry preceding it (reordered)")]
    OutOfOrder {
        /// Index.
        index: u64,
        /// Its receipt time.
        at: String,
    },
    /// The bundle's log key is not one the firm's admins recorded in the roster.
    #[error("the bundle's log key {key} is not the audit-log key the firm's admins recorded in the roster")]
    UntrustedLogKey {
        /// The header's key, hex.
        key: String,
    },
    /// A retention sweep deleted what no policy in force allowed it to delete.
    #[error("entry {index}: a retention sweep of file {file} is not justified: {reason}")]
    UnjustifiedDeletion {
        /// Index.
        index: u64,
        /// The file swept.
        file: FileId,
        /// Why.
        reason: String,
    },
    /// The relay's receipt time and the device's signed time are too far apart.
    #[error("entry {index}: relay time and device time differ by {diff_ms} ms")]
    Skew {
        /// Index.
        index: u64,
        /// Difference.
        diff_ms: u64,
    },
    /// After a member lost access to a file, the file did not get a new epoch, or the new
    /// epoch's key was wrapped for that member anyway.
    #[error("file {file}: after member {member} lost access or a key at {since}, {what}")]
    IncompleteRotation {
        /// The file.
        file: FileId,
        /// The member who lost access.
        member: MemberId,
        /// When.
        since: String,
        /// What is missing or wrong.
        what: String,
    },
    /// After a member was taken out of an internal room, or lost a device or their
    /// membership while in it, a message used a room session they could read.
    #[error("room {room}: after member {member} lost it at {since}, {what}")]
    RoomNotRotated {
        /// The room, hex.
        room: String,
        /// The member who lost access.
        member: MemberId,
        /// When.
        since: String,
        /// What is wrong.
        what: String,
    },
    /// A member key was exposed (a device holding it revoked) and no new version followed.
    #[error("member {member}'s key was exposed at {since}, but no new version followed")]
    KeyNotRotated {
        /// The member whose key it is.
        member: MemberId,
        /// When it was exposed.
        since: String,
    },
    /// A member key was wrapped for a device that was not active at the time.
    #[error("member {member}'s key v{version} was wrapped for device {device} at {at}, which was not active")]
    LeakedKey {
        /// The member whose key it is.
        member: MemberId,
        /// Its version.
        version: u32,
        /// The device.
        device: DeviceId,
        /// When.
        at: String,
    },
    /// The bundle holds fewer or more entries than its header and last checkpoint say.
    #[error("the bundle holds {have} entries, its last checkpoint covers {want}")]
    WrongLength {
        /// Entries present.
        have: u64,
        /// Entries expected.
        want: u64,
    },
}

impl AuditError {
    /// A short stable name of the finding, for scripts (`--json`).
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::Roster(_) => "roster",
            Self::Checkpoint { .. } => "checkpoint_signature",
            Self::MissingWitness { .. } => "missing_witness",
            Self::Fork { .. } => "fork",
            Self::RootMismatch { .. } => "root_mismatch",
            Self::BadEntry { .. } => "bad_entry",
            Self::UnknownDevice { .. } => "unknown_device",
            Self::InactiveDevice { .. } => "inactive_device",
            Self::BadSignature { .. } => "bad_signature",
            Self::Replayed { .. } => "replayed",
            Self::OutOfOrder { .. } => "out_of_order",
            Self::Skew { .. } => "skew",
            Self::UnjustifiedDeletion { .. } => "unjustified_deletion",
            Self::UntrustedLogKey { .. } => "untrusted_log_key",
            Self::WrongLength { .. } => "wrong_length",
            Self::IncompleteRotation { .. }
            | Self::RoomNotRotated { .. }
            | Self::KeyNotRotated { .. }
            | Self::LeakedKey { .. } => "incomplete_rotation",
        }
    }
}

/// One verified entry of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Index in the log.
    pub index: u64,
    /// The relay's receipt time (ms).
    pub received_ms: u64,
    /// The same, RFC 3339 UTC.
    pub time: String,
    /// The signing device; none for the relay's own entries (retention sweeps).
    pub device: Option<DeviceId>,
    /// Its member.
    pub member: Option<MemberId>,
    /// What the request did, in words.
    pub action: String,
    /// `METHOD path`.
    pub request: String,
    /// `kind:id` of each subject.
    pub subjects: Vec<String>,
}

/// What a verified bundle held.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The firm.
    pub firm: FirmId,
    /// Entries in the log covered.
    pub size: u64,
    /// Entries verified whole (signature, roster, order).
    pub entries: u64,
    /// Checkpoints verified.
    pub checkpoints: usize,
    /// Whether every checkpoint carried the required witness cosignature.
    pub witnessed: bool,
    /// Roster events verified.
    pub roster_events: usize,
    /// Every revocation in the whole entries and what followed it (all complete, or the
    /// verification fails).
    pub revocations: Vec<RevocationSummary>,
    /// Retention sweeps in the entries, each checked against the policy in force.
    pub retention: RetentionSummary,
    /// Whether the roster records the log key the checkpoints are signed with (a firm
    /// founded before LogKeySet existed may not, until an admin's device syncs).
    pub log_key_in_roster: bool,
}

/// What the relay's retention sweeps deleted, all checked against the roster's policies.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RetentionSummary {
    /// Sweep entries.
    pub sweeps: u64,
    /// Messages deleted.
    pub messages: u64,
    /// Documents deleted.
    pub documents: u64,
}

/// A revocation (or an access end) and the rotation that completed it.
#[derive(Debug, Clone, Serialize)]
pub struct RevocationSummary {
    /// When, as the roster has it.
    pub at: String,
    /// What the roster event did, in English words with ids.
    pub what: String,
    /// What ended access, as a stable word a user interface translates.
    pub kind: AccessEnd,
    /// The member whose access ended (the owner of a revoked device; the absent member of
    /// a cover), as hex.
    pub member: String,
    /// The revoked device, as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The customer file a member was removed from, as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The colleague whose absence cover ended, as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colleague: Option<String>,
    /// Customer files that got a new epoch for it.
    pub files: usize,
    /// Member keys that got a new version for it.
    pub member_keys: usize,
}

impl RevocationSummary {
    /// An access end at `ms`, its rotation counts not yet known.
    fn new(ms: u64, what: String, kind: AccessEnd, member: MemberId) -> Self {
        Self {
            at: format_ms(ms),
            what,
            kind,
            member: member.to_hex(),
            device: None,
            file: None,
            colleague: None,
            files: 0,
            member_keys: 0,
        }
    }

    /// The device, file or colleague it concerns.
    fn about(
        self,
        device: Option<DeviceId>,
        file: Option<FileId>,
        colleague: Option<MemberId>,
    ) -> Self {
        Self {
            device: device.map(|d| d.to_hex()),
            file: file.map(|f| f.to_hex()),
            colleague: colleague.map(|c| c.to_hex()),
            ..self
        }
    }
}

/// What ended someone's access, for [`RevocationSummary::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessEnd {
    /// A member was removed from the firm.
    MemberRemoved,
    /// One device was revoked.
    DeviceRevoked,
    /// A member's access to one customer file was removed.
    FileAccessRemoved,
    /// An absence cover reached its signed end.
    CoverExpired,
    /// An absence cover was ended before its signed end.
    CoverEndedEarly,
}

impl AccessEnd {
    /// Every kind, for a user interface's catalog check.
    pub const ALL: [AccessEnd; 5] = [
        AccessEnd::MemberRemoved,
        AccessEnd::DeviceRevoked,
        AccessEnd::FileAccessRemoved,
        AccessEnd::CoverExpired,
        AccessEnd::CoverEndedEarly,
    ];
}

enum Phase {
    Header,
    Roster(Vec<RosterEvent>),
    Checkpoints,
    Log,
}

/// Verifies a bundle line by line.
pub struct Verifier {
    opts: Options,
    line: u64,
    phase: Phase,
    header: Option<(Header, FirmId, String, VerifyingKey)>,
    roster: Option<Roster>,
    roster_len: usize,
    /// size → root, verified.
    checkpoints: BTreeMap<u64, Hash>,
    /// The note of the largest checkpoint (for the witness check).
    last_note: String,
    checkpoint_count: usize,
    /// RFC 6962 compact range of the entries so far: complete subtrees, left to right,
    /// with their heights.
    stack: Vec<(u32, Hash)>,
    count: u64,
    /// The last checkpoint size whose root matched.
    matched: u64,
    last_received: u64,
    /// Nonces of recent entries (a replay outside the skew window fails the skew check),
    /// with their signed times in log order, for eviction.
    nonces: HashMap<(DeviceId, [u8; 16]), u64>,
    nonce_times: VecDeque<(u64, (DeviceId, [u8; 16]))>,
    /// Entries decoded and checked, waiting for their batch's signature check.
    pending: Vec<Pending>,
    /// What revocations oblige, and what the entries showed so far.
    completeness: Completeness,
    /// Roster events by the SHA-256 of the request body that appended them: `seq` and
    /// description.
    roster_bodies: HashMap<[u8; 32], (u64, String)>,
    /// How long the roster was, as far as the entries so far show its appends.
    roster_appended: u64,
    /// Documents whose upload the entries showed: file and the year it concerns.
    uploads: HashMap<DocumentId, (FileId, u16)>,
    retention: RetentionSummary,
    /// Revocations and access ends by their time, their rotation counts not yet filled in.
    revocations_at: BTreeMap<u64, RevocationSummary>,
    entries: u64,
}

/// Entries whose signatures are checked together.
const BATCH: usize = 64;

/// The offboarding obligations of a bundle and the key operations seen so far.
#[derive(Default)]
struct Completeness {
    /// Files that must get a new epoch.
    rotations: Vec<Rotation>,
    /// Member keys that must get a new version.
    key_rotations: Vec<KeyRotation>,
    /// Member-key versions put so far, per member: `(signed time, version)`.
    key_versions: HashMap<MemberId, Vec<(u64, u32)>>,
    /// Megolm session tags seen in rooms: room → tag → first signed time.
    room_sessions: HashMap<[u8; 16], HashMap<String, u64>>,
    /// Internal rooms' member lists, from the logged bodies that set them: room → (signed
    /// time, members), in log order.
    room_members: HashMap<[u8; 16], Vec<(u64, BTreeSet<MemberId>)>>,
    /// Members taken out of an internal room: room → (signed time, member).
    room_removals: HashMap<[u8; 16], Vec<(u64, MemberId)>>,
    /// Revocations in the roster inside the whole entries (a device revoked, a member
    /// removed): (time, member). Judged in every internal room the member was in then.
    revocations: Vec<(u64, MemberId)>,
    /// Customer conversations (`protocol-spec/guests.md`): room id → its file.
    conversations: HashMap<[u8; 16], FileId>,
}

impl Completeness {
    fn check(
        &mut self,
        method: &str,
        path: &str,
        t: u64,
        body: Option<&[u8]>,
        roster: &Roster,
    ) -> Result<(), AuditError> {
        check_rotation(self, method, path, t, body, roster)
    }
}

/// One file that must get a new epoch after `since`: someone lost access to it (`left`
/// must not hold the new key), or a member key that could open it was exposed
/// (`fresh_key_of` must hold the new key, if at all, under a member key rotated since).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rotation {
    file: FileId,
    since: u64,
    left: Option<MemberId>,
    fresh_key_of: Option<MemberId>,
    new_epoch: Option<u64>,
    /// The access ended by an absence cover's expiry: no entry marks that moment.
    expiry: bool,
}

/// A member key exposed at `since` (a device of the member, or of an admin holding it in
/// escrow, was revoked or removed): a new version must follow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct KeyRotation {
    member: MemberId,
    since: u64,
    /// The first version put after `since` that no earlier entry had put.
    new_version: Option<u32>,
}

/// A roster event in words (ids, not names: the report maps them).
fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Genesis { .. } => "founded the firm".into(),
        EventKind::MemberAdded { member, role, .. } => {
            format!("added member {member} as {}", role_word(*role))
        }
        EventKind::GuestAdded { member, file, .. } => {
            format!("added guest {member} to the conversation of file {file}")
        }
        EventKind::MemberRemoved { member } => format!("revoked member {member}"),
        EventKind::DeviceAdded(c) => format!("added device {} of member {}", c.device, c.member),
        EventKind::DeviceRevoked { device } => format!("revoked device {device}"),
        EventKind::RoleChanged { member, role } => {
            format!("made member {member} {}", role_word(*role))
        }
        EventKind::FileAccessGranted { file, member } => {
            format!("granted file {file} to member {member}")
        }
        EventKind::FileAccessRemoved { file, member } => {
            format!("removed member {member} from file {file}")
        }
        EventKind::CoverGranted {
            absent,
            colleague,
            from_ms,
            until_ms,
        } => format!(
            "member {colleague} covers member {absent} from {} until {}",
            crate::report::format_ms(*from_ms),
            crate::report::format_ms(*until_ms)
        ),
        EventKind::CoverEnded { cover } => {
            format!("ended the absence cover of roster event {cover}")
        }
        EventKind::LogKeySet { key } => format!(
            "recorded the relay's audit-log key {}",
            hex::encode(key.as_bytes())
        ),
        EventKind::TeamCreated { team, .. } => format!("created team {team}"),
        EventKind::TeamRenamed { team, .. } => format!("renamed team {team}"),
        EventKind::TeamDeleted { team } => format!("deleted team {team}"),
        EventKind::TeamMemberAdded { team, member } => {
            format!("added member {member} to team {team}")
        }
        EventKind::TeamMemberRemoved { team, member } => {
            format!("removed member {member} from team {team}")
        }
        EventKind::FileTeamGranted { file, team } => format!("granted file {file} to team {team}"),
        EventKind::FileTeamRemoved { file, team } => {
            format!("removed team {team} from file {file}")
        }
        EventKind::RecoveryPolicySet { admin_assisted } => format!(
            "turned admin-assisted recovery {}",
            if *admin_assisted { "on" } else { "off" }
        ),
        EventKind::RetentionSet { file, policy } => format!(
            "set the retention of file {file}: chat {} months, documents {} years{}",
            policy.chat_months,
            policy.docs_years,
            if policy.legal_hold {
                ", legal hold"
            } else {
                ""
            }
        ),
    }
}

fn role_word(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Member => "member",
        Role::Auditor => "auditor",
        Role::Guest => "guest",
    }
}

/// What a revocation obliges the firm's admins to do, from the roster alone: new epochs
/// for the files the revoked keys could open, new member keys for the exposed ones.
fn obligations(roster: &Roster, from: u64) -> (Vec<Rotation>, Vec<KeyRotation>) {
    let mut files = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let expiries: BTreeSet<(FileId, MemberId, u64)> = roster
        .covers()
        .filter(|(_, c)| c.end_ms() == c.until_ms)
        .flat_map(|(_, c)| c.files.iter().map(|f| (*f, c.colleague, c.until_ms)))
        .collect();
    for (file, member, since) in roster.access_ends() {
        if since >= from {
            files.insert(Rotation {
                file,
                since,
                left: Some(member),
                fresh_key_of: None,
                new_epoch: None,
                expiry: expiries.contains(&(file, member, since)),
            });
        }
    }
    let is_admin = |m: &MemberId| roster.member(m).is_some_and(|s| s.role == Role::Admin);
    // A revoked device exposed its member's key; an admin's device (or a removed admin)
    // exposed every member key it held in escrow.
    let mut exposures: Vec<(MemberId, u64, bool)> = roster
        .device_revocations()
        .into_iter()
        .map(|(_, m, t)| (m, t, true))
        .collect();
    exposures.extend(roster.removals().into_iter().map(|(m, t)| (m, t, false)));
    for (holder, since, own_key) in exposures {
        if since < from {
            continue;
        }
        let mut exposed: Vec<MemberId> = if is_admin(&holder) {
            roster.members_at(since)
        } else {
            vec![holder]
        };
        if !own_key {
            exposed.retain(|m| *m != holder);
        }
        for member in exposed {
            keys.insert(KeyRotation {
                member,
                since,
                new_version: None,
            });
            for file in roster.files() {
                if roster.had_access(&file, &member, since) {
                    files.insert(Rotation {
                        file,
                        since,
                        left: None,
                        fresh_key_of: Some(member),
                        new_epoch: None,
                        expiry: false,
                    });
                }
            }
        }
    }
    (files.into_iter().collect(), keys.into_iter().collect())
}

struct Pending {
    /// A device request and the key that must have signed it; `None` for the relay's own
    /// entries, which no device signs.
    signed: Option<(AuditLeaf, VerifyingKey)>,
    hash: Hash,
    row: Row,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("line", &self.line)
            .field("entries", &self.count)
            .field("checkpoints", &self.checkpoint_count)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with the auditor's requirements.
    pub fn new(opts: Options) -> Self {
        Self {
            opts,
            line: 0,
            phase: Phase::Header,
            header: None,
            roster: None,
            roster_len: 0,
            checkpoints: BTreeMap::new(),
            last_note: String::new(),
            checkpoint_count: 0,
            stack: Vec::new(),
            count: 0,
            matched: 0,
            last_received: 0,
            nonces: HashMap::new(),
            nonce_times: VecDeque::new(),
            pending: Vec::new(),
            completeness: Completeness::default(),
            roster_bodies: HashMap::new(),
            roster_appended: 0,
            uploads: HashMap::new(),
            retention: RetentionSummary::default(),
            revocations_at: BTreeMap::new(),
            entries: 0,
        }
    }

    fn revocation_summaries(&self) -> Vec<RevocationSummary> {
        self.revocations_at
            .iter()
            .filter(|(t, _)| {
                self.completeness.rotations.iter().any(|r| r.since == **t)
                    || self
                        .completeness
                        .key_rotations
                        .iter()
                        .any(|k| k.since == **t)
            })
            .map(|(t, ended)| RevocationSummary {
                files: self
                    .completeness
                    .rotations
                    .iter()
                    .filter(|r| r.since == *t)
                    .map(|r| r.file)
                    .collect::<BTreeSet<_>>()
                    .len(),
                member_keys: self
                    .completeness
                    .key_rotations
                    .iter()
                    .filter(|k| k.since == *t)
                    .count(),
                ..ended.clone()
            })
            .collect()
    }

    fn malformed(&self, what: impl Into<String>) -> AuditError {
        AuditError::Malformed {
            line: self.line,
            what: what.into(),
        }
    }

    /// Feeds the next line; returns the report rows of the whole entries verified by now
    /// (signatures are checked in batches, so rows may come a few lines later).
    pub fn line(&mut self, text: &str) -> Result<Vec<Row>, AuditError> {
        self.line += 1;
        let line: Line = serde_json::from_str(text)
            .map_err(|e| self.malformed(format!("not a bundle line ({e})")))?;
        match (&mut self.phase, line) {
            (Phase::Header, Line::Header(h)) => {
                self.header(h)?;
                self.phase = Phase::Roster(Vec::new());
                Ok(Vec::new())
            }
            (Phase::Header, _) => Err(self.malformed("the bundle must start with its header")),
            // Sealed names: for whoever can open them; nothing to verify here.
            (Phase::Roster(events), Line::Names(_)) if events.is_empty() => Ok(Vec::new()),
            (Phase::Roster(events), Line::Roster(hex_event)) => {
                let event = lower_hex(&hex_event)
                    .ok()
                    .and_then(|b| RosterEvent::from_bytes(&b).ok())
                    .ok_or_else(|| {
                        AuditError::Roster(format!("line {}: undecodable event", self.line))
                    })?;
                events.push(event);
                Ok(Vec::new())
            }
            (Phase::Roster(_), Line::Checkpoint(note)) => {
                let Phase::Roster(events) = std::mem::replace(&mut self.phase, Phase::Checkpoints)
                else {
                    return Err(self.malformed("phase"));
                };
                self.roster(&events)?;
                self.checkpoint(&note)?;
                Ok(Vec::new())
            }
            (Phase::Checkpoints, Line::Checkpoint(note)) => {
                self.checkpoint(&note)?;
                Ok(Vec::new())
            }
            (Phase::Checkpoints | Phase::Log, Line::Entry(hex_leaf)) => {
                self.start_log()?;
                match self.check_entry(&hex_leaf) {
                    Ok(p) => {
                        self.pending.push(p);
                        if self.pending.len() >= BATCH {
                            self.flush()
                        } else {
                            Ok(Vec::new())
                        }
                    }
                    Err(e) => {
                        // An earlier entry of the batch may be the first bad one.
                        self.flush()?;
                        Err(e)
                    }
                }
            }
            (Phase::Checkpoints | Phase::Log, Line::Hashes(hashes)) => {
                self.start_log()?;
                let rows = self.flush()?;
                for h in hashes {
                    let hash: Hash = lower_hex(&h)
                        .ok()
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| self.malformed("a leaf hash is not 32 bytes of hex"))?;
                    self.push(hash)?;
                }
                Ok(rows)
            }
            _ => Err(self
                .malformed("lines must come as header, roster events, checkpoints, then the log")),
        }
    }

    fn header(&mut self, h: Header) -> Result<(), AuditError> {
        if h.bundle != FORMAT {
            return Err(self.malformed(format!(
                "unknown bundle format {:?} (this verifier reads {FORMAT})",
                h.bundle
            )));
        }
        if h.firm.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(self.malformed("the header's firm must be lowercase hex"));
        }
        let firm: FirmId = h
            .firm
            .parse()
            .map_err(|_| self.malformed("the header's firm is not an id"))?;
        let key = lower_hex(&h.log_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| self.malformed("the header's log key is not an Ed25519 key"))?;
        let origin = h.origin.clone();
        self.header = Some((h, firm, origin, key));
        Ok(())
    }

    fn roster(&mut self, events: &[RosterEvent]) -> Result<(), AuditError> {
        let roster = Roster::verify_chain(events).map_err(|e| AuditError::Roster(e.to_string()))?;
        let firm = self.header.as_ref().map(|h| h.1);
        if events.first().map(|e| e.body.firm) != firm {
            return Err(AuditError::Roster(
                "the roster belongs to another firm than the header".into(),
            ));
        }
        self.roster_len = events.len();
        if let Some((_, _, _, key)) = &self.header {
            if !roster.log_keys().is_empty() && !roster.log_keys().iter().any(|(_, k)| k == key) {
                return Err(AuditError::UntrustedLogKey {
                    key: hex::encode(key.as_bytes()),
                });
            }
        }
        for e in events {
            let what = describe(&e.body.kind);
            let body = serde_json::json!({ "event": hex::encode(e.to_bytes()) }).to_string();
            let ended = match &e.body.kind {
                EventKind::MemberRemoved { member } => {
                    Some((AccessEnd::MemberRemoved, *member, None, None))
                }
                EventKind::DeviceRevoked { device } => roster
                    .device(device)
                    .map(|d| (AccessEnd::DeviceRevoked, d.member, Some(*device), None)),
                EventKind::FileAccessRemoved { file, member } => {
                    Some((AccessEnd::FileAccessRemoved, *member, None, Some(*file)))
                }
                _ => None,
            };
            if let Some((kind, member, device, file)) = ended {
                self.revocations_at.insert(
                    e.body.timestamp_ms,
                    RevocationSummary::new(e.body.timestamp_ms, what.clone(), kind, member)
                        .about(device, file, None),
                );
            }
            self.roster_bodies
                .insert(Sha256::digest(body.as_bytes()).into(), (e.body.seq, what));
        }
        for (seq, c) in roster.covers() {
            let (how, kind) = if c.end_ms() == c.until_ms {
                ("expired", AccessEnd::CoverExpired)
            } else {
                ("ended early", AccessEnd::CoverEndedEarly)
            };
            let what = format!(
                "absence cover {seq} {how}: member {} covered member {}",
                c.colleague, c.absent
            );
            self.revocations_at.insert(
                c.end_ms(),
                RevocationSummary::new(c.end_ms(), what, kind, c.absent).about(
                    None,
                    None,
                    Some(c.colleague),
                ),
            );
        }
        // Rotations can be checked for access ends inside the whole entries, up to the end.
        if let Some((h, ..)) = &self.header {
            if h.to_ms.is_none() {
                let from = h.from_ms.unwrap_or(0);
                (self.completeness.rotations, self.completeness.key_rotations) =
                    obligations(&roster, from);
                self.completeness.revocations = roster
                    .device_revocations()
                    .into_iter()
                    .map(|(_, m, t)| (t, m))
                    .chain(roster.removals().into_iter().map(|(m, t)| (t, m)))
                    .filter(|(t, _)| *t >= from)
                    .collect();
                self.completeness.conversations = roster
                    .files()
                    .into_iter()
                    .map(|f| (conversation_room(&roster.firm(), &f), f))
                    .collect();
            }
        }
        self.roster = Some(roster);
        Ok(())
    }

    fn checkpoint(&mut self, note: &str) -> Result<(), AuditError> {
        let Some((_, _, origin, key)) = &self.header else {
            return Err(self.malformed("checkpoint before the header"));
        };
        let index = self.checkpoint_count;
        let cp: Checkpoint =
            open_checkpoint(note.as_bytes(), origin, key).map_err(|e| AuditError::Checkpoint {
                index,
                line: self.line,
                reason: e.to_string(),
            })?;
        self.checkpoint_count += 1;
        if let Some(root) = self.checkpoints.get(&cp.size()) {
            if root != cp.root() {
                return Err(AuditError::Fork { size: cp.size() });
            }
        }
        if self
            .checkpoints
            .keys()
            .next_back()
            .is_some_and(|&s| s > cp.size())
        {
            return Err(self.malformed("checkpoints must come in ascending size"));
        }
        self.checkpoints.insert(cp.size(), *cp.root());
        self.last_note = note.to_owned();
        Ok(())
    }

    /// The required witness cosigned the last checkpoint.
    fn check_witness(&self, size: u64) -> Result<(), AuditError> {
        let Some(w) = &self.opts.witness else {
            return Ok(());
        };
        let (Some((_, firm, origin, key)), Some(roster)) = (&self.header, &self.roster) else {
            return Err(self.malformed("witness check before the roster"));
        };
        let note = self.last_note.as_bytes();
        let (witnessed, who) = match w {
            Witness::Key(name, wkey) => (
                open_cosigned_checkpoint(note, origin, key, name, wkey).is_ok(),
                format!("the witness {name}"),
            ),
            Witness::Owner => {
                let ok = roster.devices_of_member(&roster.owner()).iter().any(|d| {
                    roster.device(d).is_some_and(|state| {
                        open_cosigned_checkpoint(
                            note,
                            origin,
                            key,
                            &device_witness_name(firm, d),
                            &state.keys.signing,
                        )
                        .is_ok_and(|(_, t)| roster.device_active_at(d, t.saturating_mul(1000)))
                    })
                });
                (ok, "a device of the firm's owner".to_owned())
            }
        };
        if witnessed {
            Ok(())
        } else {
            Err(AuditError::MissingWitness { size, witness: who })
        }
    }

    fn start_log(&mut self) -> Result<(), AuditError> {
        if matches!(self.phase, Phase::Log) {
            return Ok(());
        }
        let size = self.header.as_ref().map(|h| h.0.size).unwrap_or(0);
        if self.checkpoints.keys().next_back() != Some(&size) {
            return Err(self.malformed(format!(
                "the last checkpoint must cover the header's {size} entries"
            )));
        }
        self.check_witness(size)?;
        self.phase = Phase::Log;
        // The empty prefix is covered by a checkpoint of size 0, if there is one.
        self.check_prefix()?;
        Ok(())
    }

    /// Adds a leaf hash to the compact range and checks any checkpoint of the new size.
    fn push(&mut self, leaf: Hash) -> Result<(), AuditError> {
        let mut node = (0u32, leaf);
        while let Some(&(h, left)) = self.stack.last() {
            if h != node.0 {
                break;
            }
            self.stack.pop();
            node = (h + 1, merkle::node_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.count += 1;
        self.check_prefix()
    }

    /// The RFC 6962 root of the entries so far.
    fn prefix_root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut root)) = it.next() else {
            return merkle::empty_root();
        };
        for (_, left) in it {
            root = merkle::node_hash(left, &root);
        }
        root
    }

    fn check_prefix(&mut self) -> Result<(), AuditError> {
        if let Some(want) = self.checkpoints.get(&self.count) {
            if self.prefix_root() != *want {
                return Err(AuditError::RootMismatch {
                    size: self.count,
                    after: self.matched,
                });
            }
            self.matched = self.count;
        }
        Ok(())
    }

    /// Decodes an entry and runs every check but the signature's; the entry waits for its
    /// batch.
    fn check_entry(&mut self, hex_leaf: &str) -> Result<Pending, AuditError> {
        let index = self.count + self.pending.len() as u64;
        let bad = |reason: &str| AuditError::BadEntry {
            index,
            reason: reason.to_owned(),
        };
        let bytes = lower_hex(hex_leaf).map_err(|_| bad("not lowercase hex"))?;
        let leaf = match LogEntry::from_bytes(&bytes).map_err(|e| bad(&e.to_string()))? {
            LogEntry::Request(leaf) => leaf,
            LogEntry::Sweep(sweep) => return self.check_sweep(index, sweep, &bytes),
        };
        if leaf.to_bytes() != bytes {
            return Err(bad("not in canonical form"));
        }
        let firm = self.header.as_ref().map(|h| h.1);
        if Some(leaf.firm) != firm {
            return Err(bad("belongs to another firm's log"));
        }
        let head = &leaf.request.head;
        let roster = self
            .roster
            .as_ref()
            .ok_or_else(|| self.malformed("entries before the roster"))?;
        let device = roster
            .device(&head.device)
            .ok_or(AuditError::UnknownDevice {
                index,
                device: head.device,
            })?;
        if !roster.device_active_at(&head.device, head.timestamp_ms) {
            return Err(AuditError::InactiveDevice {
                index,
                device: head.device,
                at: format_ms(head.timestamp_ms),
            });
        }
        let diff_ms = leaf.received_ms.abs_diff(head.timestamp_ms);
        if diff_ms > self.opts.max_skew_ms {
            return Err(AuditError::Skew { index, diff_ms });
        }
        if leaf.received_ms < self.last_received {
            return Err(AuditError::OutOfOrder {
                index,
                at: format_ms(leaf.received_ms),
            });
        }
        let id = (head.device, head.nonce);
        if let Some(&first) = self.nonces.get(&id) {
            return Err(AuditError::Replayed { index, first });
        }
        self.last_received = leaf.received_ms;
        // A request signed more than two skew windows before this receipt could only
        // come back failing the skew check: its nonce need not be kept.
        let horizon = leaf
            .received_ms
            .saturating_sub(2 * self.opts.max_skew_ms.max(1));
        while self.nonce_times.front().is_some_and(|(t, _)| *t < horizon) {
            if let Some((_, old)) = self.nonce_times.pop_front() {
                self.nonces.remove(&old);
            }
        }
        self.nonces.insert(id, index);
        self.nonce_times.push_back((head.timestamp_ms, id));
        self.completeness.check(
            &head.method,
            &head.path,
            head.timestamp_ms,
            leaf.body.as_deref(),
            roster,
        )?;
        let appended = match (
            head.method.as_str(),
            self.roster_bodies.get(&head.body_sha256),
        ) {
            ("POST", Some((seq, what))) if head.path == "/v1/roster" => Some((*seq, what.clone())),
            _ => None,
        };
        if let Some((seq, _)) = &appended {
            self.roster_appended = self.roster_appended.max(seq + 1);
        }
        if let Some((document, file, year)) = upload_of(&head.method, &head.path, leaf.received_ms)
        {
            self.uploads.insert(document, (file, year));
        }
        let row = Row {
            index,
            received_ms: leaf.received_ms,
            time: format_ms(leaf.received_ms),
            device: Some(head.device),
            member: Some(device.member),
            action: match appended {
                Some((_, what)) => what,
                None => action(&head.method, &head.path),
            },
            request: format!("{} {}", head.method, head.path),
            subjects: leaf
                .subjects
                .iter()
                .map(|s| format!("{}:{}", kind_name(s.kind), hex::encode(s.id)))
                .collect(),
        };
        Ok(Pending {
            signed: Some((leaf, device.keys.signing)),
            hash: merkle::leaf_hash(&bytes),
            row,
        })
    }

    /// Checks a retention sweep against the roster: the policy it names is the file's
    /// policy in force (no later policy's append precedes it in the log), holds no legal
    /// hold, and allowed every deletion at the sweep's time; a document whose upload the
    /// entries showed concerned the year and file the sweep says.
    fn check_sweep(
        &mut self,
        index: u64,
        sweep: RetentionSweep,
        bytes: &[u8],
    ) -> Result<Pending, AuditError> {
        let file = sweep.file;
        let unjustified = |reason: String| AuditError::UnjustifiedDeletion {
            index,
            file,
            reason,
        };
        if Some(sweep.firm) != self.header.as_ref().map(|h| h.1) {
            return Err(AuditError::BadEntry {
                index,
                reason: "belongs to another firm's log".into(),
            });
        }
        if sweep.swept_ms < self.last_received {
            return Err(AuditError::OutOfOrder {
                index,
                at: format_ms(sweep.swept_ms),
            });
        }
        let roster = self
            .roster
            .as_ref()
            .ok_or_else(|| self.malformed("entries before the roster"))?;
        // The event the sweep names must set this file's policy.
        let named = roster
            .retention_within(&file, sweep.policy_seq.saturating_add(1))
            .filter(|(seq, _)| *seq == sweep.policy_seq);
        let Some((_, policy)) = named else {
            return Err(unjustified(format!(
                "roster event {} sets no retention policy for this file",
                sweep.policy_seq
            )));
        };
        // And no later policy of the file may have been appended before the sweep (the
        // roster was at least as long as every append the log showed so far).
        if let Some((seq, _)) = roster
            .retention_within(&file, self.roster_appended)
            .filter(|(seq, _)| *seq > sweep.policy_seq)
        {
            return Err(unjustified(format!(
                "it applied roster event {}, but event {seq} had replaced that policy",
                sweep.policy_seq
            )));
        }
        if policy.legal_hold {
            return Err(unjustified("the file was under legal hold".into()));
        }
        if sweep.messages > 0 {
            let allowed = policy.chat_before_ms(sweep.swept_ms).unwrap_or(0);
            if sweep.chat_before_ms > allowed {
                return Err(unjustified(format!(
                    "messages received until {} were deleted; the policy ({} months) allowed until {}",
                    format_ms(sweep.chat_before_ms),
                    policy.chat_months,
                    format_ms(allowed)
                )));
            }
        }
        for d in &sweep.documents {
            if !policy.may_delete_document(d.year, sweep.swept_ms) {
                return Err(unjustified(format!(
                    "document {} of {} was deleted; the policy keeps documents {} years",
                    d.document, d.year, policy.docs_years
                )));
            }
            if let Some((up_file, year)) = self.uploads.get(&d.document) {
                if (*up_file, *year) != (file, d.year) {
                    return Err(unjustified(format!(
                        "document {} was uploaded for {year}, the sweep says {}",
                        d.document, d.year
                    )));
                }
            }
        }
        self.last_received = sweep.swept_ms;
        self.retention.sweeps += 1;
        self.retention.messages += sweep.messages;
        self.retention.documents += sweep.documents.len() as u64;
        let mut what = Vec::new();
        if sweep.messages > 0 {
            what.push(format!(
                "{} messages received before {}",
                sweep.messages,
                format_ms(sweep.chat_before_ms)
            ));
        }
        if !sweep.documents.is_empty() {
            what.push(format!("{} documents", sweep.documents.len()));
        }
        let mut subjects = vec![format!("file:{}", hex::encode(file.0))];
        subjects.extend(
            sweep
                .documents
                .iter()
                .map(|d| format!("document:{}", hex::encode(d.document.0))),
        );
        Ok(Pending {
            signed: None,
            hash: merkle::leaf_hash(bytes),
            row: Row {
                index,
                received_ms: sweep.swept_ms,
                time: format_ms(sweep.swept_ms),
                device: None,
                member: None,
                action: format!(
                    "relay deleted {} of file {file} under the retention policy of roster event {}",
                    what.join(" and "),
                    sweep.policy_seq
                ),
                request: "retention sweep".into(),
                subjects,
            },
        })
    }

    /// Checks the waiting entries' signatures, then adds them to the tree in order.
    fn flush(&mut self) -> Result<Vec<Row>, AuditError> {
        let pending = std::mem::take(&mut self.pending);
        let signed: Vec<(usize, &AuditLeaf, &VerifyingKey)> = pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.signed.as_ref().map(|(l, k)| (i, l, k)))
            .collect();
        let bad = if self.opts.strict {
            signed
                .iter()
                .find(|(_, l, k)| l.request.verify_signature(k).is_err())
                .map(|(i, ..)| *i)
        } else {
            let items: Vec<_> = signed.iter().map(|(_, l, k)| (&l.request, *k)).collect();
            verify_signatures_batch(&items)
                .err()
                .and_then(|b| signed.get(b).map(|(i, ..)| *i))
        };
        let first = self.count;
        let good = bad.unwrap_or(pending.len());
        let mut rows = Vec::with_capacity(good);
        for p in pending.into_iter().take(good) {
            self.push(p.hash)?;
            self.entries += 1;
            rows.push(p.row);
        }
        match bad {
            Some(b) => Err(AuditError::BadSignature {
                index: first + b as u64,
            }),
            None => Ok(rows),
        }
    }

    /// Ends the bundle: verifies the last batch (its rows) and that every entry the last
    /// checkpoint covers came.
    pub fn finish(mut self) -> Result<(Summary, Vec<Row>), AuditError> {
        if !matches!(self.phase, Phase::Log) {
            self.start_log()?;
        }
        let rows = self.flush()?;
        let (header, firm, _, header_key) = self
            .header
            .take()
            .ok_or_else(|| self.malformed("empty bundle"))?;
        if self.count != header.size {
            return Err(AuditError::WrongLength {
                have: self.count,
                want: header.size,
            });
        }
        // A revocation after the last entry has had no time to be followed by anything:
        // the next bundle checks it. An absence cover's expiry is no entry at all (it
        // needs no event): it is judged once the bundle was exported after it.
        let end = self.last_received;
        let exported = end.max(header.exported_ms);
        self.completeness
            .rotations
            .retain(|r| r.since <= if r.expiry { exported } else { end });
        self.completeness.key_rotations.retain(|k| k.since <= end);
        if let Some(k) = self
            .completeness
            .key_rotations
            .iter()
            .find(|k| k.new_version.is_none())
        {
            return Err(AuditError::KeyNotRotated {
                member: k.member,
                since: format_ms(k.since),
            });
        }
        if let Some(r) = self
            .completeness
            .rotations
            .iter()
            .find(|r| r.new_epoch.is_none())
        {
            return Err(AuditError::IncompleteRotation {
                file: r.file,
                member: r.left.or(r.fresh_key_of).unwrap_or(MemberId([0; 16])),
                since: format_ms(r.since),
                what: "no new epoch followed by the end of the log".into(),
            });
        }
        Ok((
            Summary {
                firm,
                size: header.size,
                entries: self.entries,
                checkpoints: self.checkpoint_count,
                witnessed: self.opts.witness.is_some(),
                roster_events: self.roster_len,
                revocations: self.revocation_summaries(),
                retention: self.retention,
                log_key_in_roster: self
                    .roster
                    .as_ref()
                    .is_some_and(|r| r.log_keys().iter().any(|(_, k)| *k == header_key)),
            },
            rows,
        ))
    }
}

/// The document, file and year of an upload request (`PUT .../documents/{d}` or
/// `POST .../uploads/{d}`): the year its signed query names, else the year it arrived.
fn upload_of(method: &str, path: &str, received_ms: u64) -> Option<(DocumentId, FileId, u16)> {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let parts: Vec<&str> = route.split('/').collect();
    let (file, document) = match (method, parts.as_slice()) {
        ("PUT", ["", "v1", "files", f, "documents", d])
        | ("POST", ["", "v1", "files", f, "uploads", d]) => (f.parse().ok()?, d.parse().ok()?),
        _ => return None,
    };
    let year = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("year="))
        .and_then(|y| y.parse().ok())
        .or_else(|| ledgerline_protocol::retention::year_of(received_ms))?;
    Some((document, file, year))
}

/// Follows key changes for the obligations being checked. The first epoch started for a
/// file after `since` is its new epoch: it must not be wrapped for the member who left,
/// and an exposed member's key in it must be a version put after `since`. A member key
/// put after `since` in a version never put before is the rotation of that key; a
/// member key wrapped for a device that is not active is a leak.
fn check_rotation(
    c: &mut Completeness,
    method: &str,
    path: &str,
    t: u64,
    body: Option<&[u8]>,
    roster: &Roster,
) -> Result<(), AuditError> {
    if method == "POST" || method == "PUT" {
        note_room_members(c, method, path, t, body);
    }
    let Completeness {
        rotations,
        key_rotations,
        key_versions,
        room_sessions,
        room_members,
        room_removals,
        revocations,
        conversations,
    } = c;
    // Reads change no key: most entries end here, before any parsing.
    if method != "POST" && method != "PUT" {
        return Ok(());
    }
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let parts: Vec<&str> = route.split('/').collect();
    if method == "POST" {
        if let ["", "v1", "rooms", room, "messages"] = parts.as_slice() {
            let Some((id, tag, first)) = note_session(room_sessions, room, query, t) else {
                return Ok(());
            };
            // A customer conversation: the file's staff who left it, and its guests.
            if let Some(file) = conversations.get(&id) {
                check_room_session(rotations, *file, &tag, first, t)?;
                let guests: Vec<(u64, MemberId)> = revocations
                    .iter()
                    .filter(|(_, m)| roster.guest_file(m) == Some(*file))
                    .copied()
                    .collect();
                return check_removals(&guests, id, &tag, first, t);
            }
            check_room_session(rotations, FileId(id), &tag, first, t)?;
            return check_internal_room(
                room_members,
                room_removals,
                revocations,
                id,
                &tag,
                first,
                t,
            );
        }
        return Ok(());
    }
    if method != "PUT" {
        return Ok(());
    }
    match parts.as_slice() {
        ["", "v1", "members", m, "keys", v, d] => {
            let (Ok(member), Ok(version), Ok(device)) = (
                m.parse::<MemberId>(),
                v.parse::<u32>(),
                d.parse::<DeviceId>(),
            ) else {
                return Ok(());
            };
            if !roster.device_active_at(&device, t) {
                return Err(AuditError::LeakedKey {
                    member,
                    version,
                    device,
                    at: format_ms(t),
                });
            }
            let seen = key_versions.entry(member).or_default();
            for k in key_rotations
                .iter_mut()
                .filter(|k| k.member == member && k.new_version.is_none() && t >= k.since)
            {
                if !seen.iter().any(|(_, old)| *old >= version) {
                    k.new_version = Some(version);
                }
            }
            seen.push((t, version));
            Ok(())
        }
        ["", "v1", "files", f, "epochs", e, "link"] => {
            let (Ok(file), Ok(epoch)) = (f.parse::<FileId>(), e.parse::<u64>()) else {
                return Ok(());
            };
            new_epoch(rotations, key_rotations, file, epoch, None, t)
        }
        ["", "v1", "files", f, "epochs", e] => {
            let (Ok(file), Ok(epoch)) = (f.parse::<FileId>(), e.parse::<u64>()) else {
                return Ok(());
            };
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or("")
            };
            let holders: Vec<(MemberId, u32)> = param("holders")
                .split(',')
                .filter_map(|h| {
                    let (m, v) = h.split_once('.')?;
                    Some((m.parse().ok()?, v.parse().ok()?))
                })
                .collect();
            // Whoever reads the new key through a team holding it holds it too.
            let through_teams: Vec<MemberId> = param("teams")
                .split(',')
                .filter_map(|h| h.split_once('.')?.0.parse::<TeamId>().ok())
                .flat_map(|team| roster.team_members_at(&team, t))
                .collect();
            new_epoch(
                rotations,
                key_rotations,
                file,
                epoch,
                Some((&holders, &through_teams)),
                t,
            )
        }
        ["", "v1", "files", f, "epochs", e, "keys", m] => {
            let (Ok(file), Ok(epoch), Ok(member)) =
                (f.parse::<FileId>(), e.parse::<u64>(), m.parse::<MemberId>())
            else {
                return Ok(());
            };
            for r in rotations
                .iter()
                .filter(|r| r.file == file && t >= r.since && r.left == Some(member))
            {
                if r.new_epoch.is_some_and(|new| epoch >= new)
                    && !roster.had_access(&file, &member, t)
                {
                    return Err(AuditError::IncompleteRotation {
                        file,
                        member,
                        since: format_ms(r.since),
                        what: format!(
                            "epoch {epoch}'s key was wrapped for them at {}",
                            format_ms(t)
                        ),
                    });
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Records the session tag a room message states: `(room, tag, first time the tag was
/// seen in the room)`; `None` when the path names no room or no tag.
fn note_session(
    room_sessions: &mut HashMap<[u8; 16], HashMap<String, u64>>,
    room: &str,
    query: &str,
    t: u64,
) -> Option<([u8; 16], String, u64)> {
    let id = room.parse::<FileId>().ok()?.0;
    let tag = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("session="))
        .filter(|tag| tag.len() == 32)?;
    let seen = room_sessions.entry(id).or_default();
    let first = *seen.entry(tag.to_owned()).or_insert(t);
    Some((id, tag.to_owned(), first))
}

/// An internal room's member list from the body of its creation or of a change (a file
/// room's body names a file and no members: its members follow file access). A member
/// left out of a change is taken out of the room at its time.
fn note_room_members(c: &mut Completeness, method: &str, path: &str, t: u64, body: Option<&[u8]>) {
    let route = path.split_once('?').map_or(path, |(r, _)| r);
    let parts: Vec<&str> = route.split('/').collect();
    let Some(v) = body.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()) else {
        return;
    };
    let room = match (method, parts.as_slice()) {
        ("POST", ["", "v1", "rooms"]) if v.get("file").is_none_or(|f| f.is_null()) => v
            .get("room")
            .and_then(|r| r.as_str())
            .and_then(|r| r.parse::<FileId>().ok()),
        ("PUT", ["", "v1", "rooms", room, "members"]) => room.parse::<FileId>().ok(),
        _ => None,
    };
    let (Some(room), Some(list)) = (room, v.get("members").and_then(|m| m.as_array())) else {
        return;
    };
    let members: BTreeSet<MemberId> = list
        .iter()
        .filter_map(|m| m.as_str().and_then(|m| m.parse().ok()))
        .collect();
    let history = c.room_members.entry(room.0).or_default();
    if let Some((_, before)) = history.last() {
        let removals = c.room_removals.entry(room.0).or_default();
        removals.extend(before.difference(&members).map(|m| (t, *m)));
    }
    history.push((t, members));
}

/// A message in an internal room (one whose member list the log showed): after a member
/// was taken out of it, or lost a device or their membership of the firm while in it, no
/// message may use a session that was in use in the room before — its key reached them.
fn check_internal_room(
    room_members: &HashMap<[u8; 16], Vec<(u64, BTreeSet<MemberId>)>>,
    room_removals: &HashMap<[u8; 16], Vec<(u64, MemberId)>>,
    revocations: &[(u64, MemberId)],
    room: [u8; 16],
    tag: &str,
    first: u64,
    t: u64,
) -> Result<(), AuditError> {
    let Some(history) = room_members.get(&room) else {
        return Ok(());
    };
    let member_then = |since: u64, m: &MemberId| {
        history
            .iter()
            .rev()
            .find(|(at, _)| *at <= since)
            .is_some_and(|(_, set)| set.contains(m))
    };
    let removed = room_removals
        .get(&room)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ends: Vec<(u64, MemberId)> = removed
        .iter()
        .chain(
            revocations
                .iter()
                .filter(|(since, m)| member_then(*since, m)),
        )
        .copied()
        .collect();
    check_removals(&ends, room, tag, first, t)
}

/// A message at `t` under a session first seen at `first` in `room`: none of `ends`
/// (time, member who could read the room's sessions until then) may fall in between.
fn check_removals(
    ends: &[(u64, MemberId)],
    room: [u8; 16],
    tag: &str,
    first: u64,
    t: u64,
) -> Result<(), AuditError> {
    if let Some((since, member)) = ends.iter().find(|(since, _)| first < *since && t >= *since) {
        return Err(AuditError::RoomNotRotated {
            room: hex::encode(room),
            member: *member,
            since: format_ms(*since),
            what: format!(
                "a message at {} used the room session {tag}, which they could read (it was in use before)",
                format_ms(t)
            ),
        });
    }
    Ok(())
}

/// A message in a customer file's room (its id is the file's) with the sender's session
/// tag: after someone lost access to the file (or a key that could read it), no message may
/// use a session that was in use in that room before — its key reached the revoked devices.
fn check_room_session(
    rotations: &[Rotation],
    file: FileId,
    tag: &str,
    first: u64,
    t: u64,
) -> Result<(), AuditError> {
    if let Some(r) = rotations
        .iter()
        .find(|r| r.file == file && first < r.since && t >= r.since)
    {
        return Err(AuditError::IncompleteRotation {
            file,
            member: r.left.or(r.fresh_key_of).unwrap_or(MemberId([0; 16])),
            since: format_ms(r.since),
            what: format!(
                "a message at {} used the room session {tag}, which they could read (it was in use before)",
                format_ms(t)
            ),
        });
    }
    Ok(())
}

/// Who holds a new epoch key, as its signed path names them: members with the version of
/// their member key, and the members of the teams it was wrapped for.
type NewKeyHolders<'a> = (&'a [(MemberId, u32)], &'a [MemberId]);

/// A new epoch of `file` started at `t`, wrapped for `holders` when the path names them.
fn new_epoch(
    rotations: &mut [Rotation],
    key_rotations: &[KeyRotation],
    file: FileId,
    epoch: u64,
    holders: Option<NewKeyHolders<'_>>,
    t: u64,
) -> Result<(), AuditError> {
    for r in rotations
        .iter_mut()
        .filter(|r| r.file == file && t >= r.since && r.new_epoch.is_none())
    {
        let bad = |what: String| AuditError::IncompleteRotation {
            file,
            member: r.left.or(r.fresh_key_of).unwrap_or(MemberId([0; 16])),
            since: format_ms(r.since),
            what,
        };
        if let (Some(left), Some((h, through_teams))) = (r.left, holders) {
            if h.iter().any(|(m, _)| *m == left) || through_teams.contains(&left) {
                return Err(bad(format!(
                    "epoch {epoch}'s key was wrapped for them at {}",
                    format_ms(t)
                )));
            }
        }
        if let (Some(member), Some((h, _))) = (r.fresh_key_of, holders) {
            if let Some((_, v)) = h.iter().find(|(m, _)| *m == member) {
                let fresh = key_rotations
                    .iter()
                    .filter(|k| k.member == member && k.since == r.since)
                    .filter_map(|k| k.new_version)
                    .next();
                if fresh.is_none_or(|new| *v < new) {
                    return Err(bad(format!(
                        "epoch {epoch} was wrapped under their exposed member key (v{v}) at {}",
                        format_ms(t)
                    )));
                }
            }
        }
        r.new_epoch = Some(epoch);
    }
    Ok(())
}

fn kind_name(k: SubjectKind) -> &'static str {
    match k {
        SubjectKind::File => "file",
        SubjectKind::Room => "room",
        SubjectKind::Record => "record",
        SubjectKind::Document => "document",
        SubjectKind::Member => "member",
        SubjectKind::Device => "device",
        SubjectKind::Team => "team",
    }
}

/// Hex as the bundle writes it: lowercase only, so that a bundle has one spelling.
fn lower_hex(s: &str) -> Result<Vec<u8>, hex::FromHexError> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(hex::FromHexError::InvalidHexCharacter { c: 'A', index: 0 });
    }
    hex::decode(s)
}
