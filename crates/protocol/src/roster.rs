//! The firm roster (`protocol-spec/roster.md`).
//!
//! An append-only list of events, each naming the hash of its predecessor and signed by
//! the master key of a member allowed to make it. [`Roster`] folds the chain from genesis,
//! refusing the first event that breaks a rule, and then answers membership questions,
//! including "was device D allowed to read file F at time T".

use crate::constants::{
    CTX_CONVERSATION_ROOM, CTX_DEVICE_CERT, CTX_ROSTER_EVENT, CTX_ROSTER_HASH, CTX_TEAM_NAME,
};
use crate::crypto;
use crate::encoding::{DecodeError, Reader, Writer};
use crate::ids::{DeviceId, FileId, FirmId, MemberId, TeamId};
use crate::keys::{verifying_key_from_bytes, MasterSigningKey, VerifyingKey, WrapPublicKey};
use crate::retention::RetentionPolicy;
use crate::PROTOCOL_VERSION;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Hash of a roster event; the genesis event's `prev` is all zeros.
pub type EventHash = [u8; 32];

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Appends roster events: members, devices, roles, file access.
    Admin = 1,
    /// Works in the files granted to them.
    Member = 2,
    /// Reads the access log and its checkpoints; never granted a customer file.
    Auditor = 3,
    /// One of the firm's customers, bound to one customer file's conversation for good
    /// (`EventKind::GuestAdded`); never granted a file, a team or a cover, and never made
    /// by `MemberAdded` or `RoleChanged` (the role byte 4 does not decode there).
    Guest = 4,
}

impl Role {
    /// Whether a member of this role may be granted files, join teams and cover for
    /// somebody: staff (admins and members), not auditors or guests.
    pub fn may_hold_files(self) -> bool {
        matches!(self, Self::Admin | Self::Member)
    }

    /// The role byte of `MemberAdded` and `RoleChanged`: a guest comes only from
    /// `GuestAdded`, so 4 does not decode there.
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(Self::Admin),
            2 => Ok(Self::Member),
            3 => Ok(Self::Auditor),
            _ => Err(DecodeError::InvalidValue("role")),
        }
    }
}

/// The public keys of one device, certified by its member's master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKeys {
    /// Ed25519: signs requests and records.
    pub signing: VerifyingKey,
    /// Curve25519 identity key of the device's Olm account.
    pub identity: [u8; 32],
    /// X25519 key that receives member-key wraps.
    pub wrap: WrapPublicKey,
}

/// A member's certificate for a device: binds firm, member, device id and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// The member owning the device.
    pub member: MemberId,
    /// The device.
    pub device: DeviceId,
    /// Its keys.
    pub keys: DeviceKeys,
    /// Ed25519 by the member's master key over [`DeviceCertificate::signed_bytes`].
    pub signature: [u8; 64],
}

impl DeviceCertificate {
    /// Certifies `device` for `member` in `firm`.
    pub fn issue(
        firm: FirmId,
        member: MemberId,
        device: DeviceId,
        keys: DeviceKeys,
        master: &MasterSigningKey,
    ) -> Self {
        let msg = Self::signed_bytes(firm, member, device, &keys);
        let signature = crypto::sign(master.inner(), CTX_DEVICE_CERT, &msg).to_bytes();
        Self {
            member,
            device,
            keys,
            signature,
        }
    }

    /// `version || firm || member || device || signing || identity || wrap`.
    pub fn signed_bytes(
        firm: FirmId,
        member: MemberId,
        device: DeviceId,
        keys: &DeviceKeys,
    ) -> Vec<u8> {
        Writer::new()
            .u8(PROTOCOL_VERSION)
            .fixed(&firm.0)
            .fixed(&member.0)
            .fixed(&device.0)
            .fixed(keys.signing.as_bytes())
            .fixed(&keys.identity)
            .fixed(keys.wrap.as_bytes())
            .finish()
    }

    /// Whether the member's master key certified these keys for this device in `firm`.
    pub fn verify(&self, firm: FirmId, master: &VerifyingKey) -> bool {
        let msg = Self::signed_bytes(firm, self.member, self.device, &self.keys);
        crypto::verify(master, CTX_DEVICE_CERT, &msg, &self.signature)
    }
}

/// The change an event makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// First event: the owner founds the firm as its first admin.
    Genesis {
        /// The owner's master public key; the event's signer is the owner.
        owner_key: VerifyingKey,
    },
    /// A person joins.
    MemberAdded {
        /// New member.
        member: MemberId,
        /// Their master public key.
        master_key: VerifyingKey,
        /// Their role.
        role: Role,
    },
    /// A customer joins as a guest of one file's conversation (`protocol-spec/guests.md`).
    GuestAdded {
        /// New member (role guest).
        member: MemberId,
        /// Their master public key.
        master_key: VerifyingKey,
        /// The one customer file whose conversation they may join.
        file: FileId,
    },
    /// A person leaves; final.
    MemberRemoved {
        /// Leaving member.
        member: MemberId,
    },
    /// A device joins, with its member's certificate.
    DeviceAdded(DeviceCertificate),
    /// A device is revoked; final.
    DeviceRevoked {
        /// Revoked device.
        device: DeviceId,
    },
    /// A member's role changes.
    RoleChanged {
        /// Member.
        member: MemberId,
        /// New role.
        role: Role,
    },
    /// A member may read and write a customer file from now on.
    FileAccessGranted {
        /// File.
        file: FileId,
        /// Member.
        member: MemberId,
    },
    /// A member's access to a customer file ends.
    FileAccessRemoved {
        /// File.
        file: FileId,
        /// Member.
        member: MemberId,
    },
    /// Absence cover: `colleague` may work in the files `absent` holds at this event, from
    /// `from_ms` (or at once, if that is not later than the event) until `until_ms`, when
    /// the cover expires by itself.
    CoverGranted {
        /// The member who is away.
        absent: MemberId,
        /// The member who covers.
        colleague: MemberId,
        /// Start, milliseconds since the Unix epoch.
        from_ms: u64,
        /// Expiry, exclusive; later than `from_ms` and than the event.
        until_ms: u64,
    },
    /// A cover ends: early, or (after its expiry) as the record that its keys were rotated.
    CoverEnded {
        /// `seq` of the cover's `CoverGranted` event.
        cover: u64,
    },
    /// A customer file's retention policy from now on (`protocol-spec/retention.md`).
    RetentionSet {
        /// File.
        file: FileId,
        /// The policy; zero periods keep that kind of content until erasure.
        policy: RetentionPolicy,
    },
    /// The relay's audit-log key for this firm, as an admin's device verified it: every
    /// device and auditor checks the log's checkpoints under it (`protocol-spec/checkpoints.md`).
    LogKeySet {
        /// The log's Ed25519 public key.
        key: VerifyingKey,
    },
    /// A team is founded. Its name travels encrypted; the roster holds a commitment to it
    /// ([`team_name_commitment`]).
    TeamCreated {
        /// New team.
        team: TeamId,
        /// Commitment to the team's name.
        name: [u8; 32],
    },
    /// A team's name changes.
    TeamRenamed {
        /// Team.
        team: TeamId,
        /// Commitment to the new name.
        name: [u8; 32],
    },
    /// A team is dissolved; final. Its memberships and file grants end.
    TeamDeleted {
        /// Team.
        team: TeamId,
    },
    /// A member joins a team (and from now on reads the team's files).
    TeamMemberAdded {
        /// Team.
        team: TeamId,
        /// Member.
        member: MemberId,
    },
    /// A member leaves a team.
    TeamMemberRemoved {
        /// Team.
        team: TeamId,
        /// Member.
        member: MemberId,
    },
    /// A team's members may read and write a customer file from now on.
    FileTeamGranted {
        /// File.
        file: FileId,
        /// Team.
        team: TeamId,
    },
    /// A team's access to a customer file ends.
    FileTeamRemoved {
        /// File.
        file: FileId,
        /// Team.
        team: TeamId,
    },
    /// The firm's recovery policy from now on (`protocol-spec/recovery.md`): with
    /// `admin_assisted`, members' devices seal each new recovery key to the admins' devices,
    /// so that an admin can reprovision a member who lost both device and key.
    RecoveryPolicySet {
        /// Admin-assisted recovery on or off.
        admin_assisted: bool,
    },
}

/// The room id of a customer file's conversation with its guests:
/// the first 16 bytes of `SHA-256(CTX_CONVERSATION_ROOM || 0x00 || firm || file)`.
/// Everyone derives it, so nobody has to tell a guest where their conversation is, and the
/// relay recognises the one file room guests may enter.
pub fn conversation_room(firm: &FirmId, file: &FileId) -> [u8; 16] {
    let h = crypto::sha256(&[CTX_CONVERSATION_ROOM.as_bytes(), &[0], &firm.0, &file.0]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    id
}

/// The commitment a roster keeps to a team's name:
/// `SHA-256(CTX_TEAM_NAME || 0x00 || team || salt || name)`. The name and the 16-byte salt
/// travel encrypted between devices; a device shows a name only if it matches the roster.
pub fn team_name_commitment(team: &TeamId, salt: &[u8; 16], name: &str) -> [u8; 32] {
    crypto::sha256(&[
        CTX_TEAM_NAME.as_bytes(),
        &[0],
        &team.0,
        salt,
        name.as_bytes(),
    ])
}

impl EventKind {
    fn tag(&self) -> u8 {
        match self {
            Self::Genesis { .. } => 1,
            Self::MemberAdded { .. } => 2,
            Self::MemberRemoved { .. } => 3,
            Self::DeviceAdded(_) => 4,
            Self::DeviceRevoked { .. } => 5,
            Self::RoleChanged { .. } => 6,
            Self::FileAccessGranted { .. } => 7,
            Self::FileAccessRemoved { .. } => 8,
            Self::CoverGranted { .. } => 9,
            Self::CoverEnded { .. } => 10,
            Self::RetentionSet { .. } => 11,
            Self::LogKeySet { .. } => 12,
            Self::TeamCreated { .. } => 13,
            Self::TeamRenamed { .. } => 14,
            Self::TeamDeleted { .. } => 15,
            Self::TeamMemberAdded { .. } => 16,
            Self::TeamMemberRemoved { .. } => 17,
            Self::FileTeamGranted { .. } => 18,
            Self::FileTeamRemoved { .. } => 19,
            Self::RecoveryPolicySet { .. } => 20,
            Self::GuestAdded { .. } => 21,
        }
    }

    fn encode_into(&self, w: &mut Writer) {
        w.u8(self.tag());
        match self {
            Self::Genesis { owner_key } => {
                w.fixed(owner_key.as_bytes());
            }
            Self::MemberAdded {
                member,
                master_key,
                role,
            } => {
                w.fixed(&member.0)
                    .fixed(master_key.as_bytes())
                    .u8(*role as u8);
            }
            Self::GuestAdded {
                member,
                master_key,
                file,
            } => {
                w.fixed(&member.0)
                    .fixed(master_key.as_bytes())
                    .fixed(&file.0);
            }
            Self::MemberRemoved { member } => {
                w.fixed(&member.0);
            }
            Self::DeviceAdded(c) => {
                w.fixed(&c.member.0)
                    .fixed(&c.device.0)
                    .fixed(c.keys.signing.as_bytes())
                    .fixed(&c.keys.identity)
                    .fixed(c.keys.wrap.as_bytes())
                    .fixed(&c.signature);
            }
            Self::DeviceRevoked { device } => {
                w.fixed(&device.0);
            }
            Self::RoleChanged { member, role } => {
                w.fixed(&member.0).u8(*role as u8);
            }
            Self::FileAccessGranted { file, member } | Self::FileAccessRemoved { file, member } => {
                w.fixed(&file.0).fixed(&member.0);
            }
            Self::CoverGranted {
                absent,
                colleague,
                from_ms,
                until_ms,
            } => {
                w.fixed(&absent.0)
                    .fixed(&colleague.0)
                    .u64(*from_ms)
                    .u64(*until_ms);
            }
            Self::CoverEnded { cover } => {
                w.u64(*cover);
            }
            Self::RetentionSet { file, policy } => {
                w.fixed(&file.0)
                    .u16(policy.chat_months)
                    .u16(policy.docs_years)
                    .u8(u8::from(policy.legal_hold));
            }
            Self::LogKeySet { key } => {
                w.fixed(key.as_bytes());
            }
            Self::TeamCreated { team, name } | Self::TeamRenamed { team, name } => {
                w.fixed(&team.0).fixed(name);
            }
            Self::TeamDeleted { team } => {
                w.fixed(&team.0);
            }
            Self::TeamMemberAdded { team, member } | Self::TeamMemberRemoved { team, member } => {
                w.fixed(&team.0).fixed(&member.0);
            }
            Self::FileTeamGranted { file, team } | Self::FileTeamRemoved { file, team } => {
                w.fixed(&file.0).fixed(&team.0);
            }
            Self::RecoveryPolicySet { admin_assisted } => {
                w.u8(u8::from(*admin_assisted));
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let member = |r: &mut Reader<'_>| r.array("member").map(MemberId);
        let team = |r: &mut Reader<'_>| r.array("team").map(TeamId);
        let key =
            |r: &mut Reader<'_>, what| r.array(what).and_then(|b| verifying_key_from_bytes(&b));
        Ok(match r.u8("kind")? {
            1 => Self::Genesis {
                owner_key: key(r, "owner_key")?,
            },
            2 => Self::MemberAdded {
                member: member(r)?,
                master_key: key(r, "master_key")?,
                role: Role::from_u8(r.u8("role")?)?,
            },
            3 => Self::MemberRemoved { member: member(r)? },
            4 => Self::DeviceAdded(DeviceCertificate {
                member: member(r)?,
                device: DeviceId(r.array("device")?),
                keys: DeviceKeys {
                    signing: key(r, "signing_key")?,
                    identity: r.array("identity_key")?,
                    wrap: WrapPublicKey::from(r.array::<32>("wrap_key")?),
                },
                signature: r.array("device_cert_signature")?,
            }),
            5 => Self::DeviceRevoked {
                device: DeviceId(r.array("device")?),
            },
            6 => Self::RoleChanged {
                member: member(r)?,
                role: Role::from_u8(r.u8("role")?)?,
            },
            7 => Self::FileAccessGranted {
                file: FileId(r.array("file")?),
                member: member(r)?,
            },
            8 => Self::FileAccessRemoved {
                file: FileId(r.array("file")?),
                member: member(r)?,
            },
            9 => Self::CoverGranted {
                absent: member(r)?,
                colleague: member(r)?,
                from_ms: r.u64("from_ms")?,
                until_ms: r.u64("until_ms")?,
            },
            10 => Self::CoverEnded {
                cover: r.u64("cover")?,
            },
            11 => Self::RetentionSet {
                file: FileId(r.array("file")?),
                policy: RetentionPolicy {
                    chat_months: r.u16("chat_months")?,
                    docs_years: r.u16("docs_years")?,
                    legal_hold: match r.u8("legal_hold")? {
                        0 => false,
                        1 => true,
                        _ => return Err(DecodeError::InvalidValue("legal_hold")),
                    },
                },
            },
            12 => Self::LogKeySet {
                key: key(r, "log_key")?,
            },
            13 => Self::TeamCreated {
                team: team(r)?,
                name: r.array("team_name")?,
            },
            14 => Self::TeamRenamed {
                team: team(r)?,
                name: r.array("team_name")?,
            },
            15 => Self::TeamDeleted { team: team(r)? },
            16 => Self::TeamMemberAdded {
                team: team(r)?,
                member: member(r)?,
            },
            17 => Self::TeamMemberRemoved {
                team: team(r)?,
                member: member(r)?,
            },
            18 => Self::FileTeamGranted {
                file: FileId(r.array("file")?),
                team: team(r)?,
            },
            19 => Self::FileTeamRemoved {
                file: FileId(r.array("file")?),
                team: team(r)?,
            },
            20 => Self::RecoveryPolicySet {
                admin_assisted: match r.u8("admin_assisted")? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::InvalidValue("admin_assisted")),
                },
            },
            21 => Self::GuestAdded {
                member: member(r)?,
                master_key: key(r, "master_key")?,
                file: FileId(r.array("file")?),
            },
            _ => return Err(DecodeError::InvalidValue("kind")),
        })
    }
}

/// The signed part of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody {
    /// Firm whose roster this is.
    pub firm: FirmId,
    /// Position in the chain, 0 for genesis.
    pub seq: u64,
    /// Hash of the event at `seq - 1`; zeros for genesis.
    pub prev: EventHash,
    /// Milliseconds since the Unix epoch, signer's clock; never decreases along the chain.
    pub timestamp_ms: u64,
    /// Member whose master key signs.
    pub signer: MemberId,
    /// The change.
    pub kind: EventKind,
}

/// A signed roster event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEvent {
    /// Signed part.
    pub body: EventBody,
    /// Ed25519 by the signer's master key over `CTX_ROSTER_EVENT || 0x00 || body`.
    pub signature: [u8; 64],
}

impl EventBody {
    /// Canonical bytes of the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION)
            .fixed(&self.firm.0)
            .u64(self.seq)
            .fixed(&self.prev)
            .u64(self.timestamp_ms)
            .fixed(&self.signer.0);
        self.kind.encode_into(&mut w);
        w.finish()
    }

    /// Signs the body.
    pub fn sign(self, key: &MasterSigningKey) -> RosterEvent {
        let signature = crypto::sign(key.inner(), CTX_ROSTER_EVENT, &self.to_bytes()).to_bytes();
        RosterEvent {
            body: self,
            signature,
        }
    }
}

impl RosterEvent {
    /// Canonical bytes: body then signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.body.to_bytes();
        b.extend_from_slice(&self.signature);
        b
    }

    /// Decodes one event, refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let body = EventBody {
            firm: FirmId(r.array("firm")?),
            seq: r.u64("seq")?,
            prev: r.array("prev")?,
            timestamp_ms: r.u64("timestamp")?,
            signer: MemberId(r.array("signer")?),
            kind: EventKind::decode(&mut r)?,
        };
        let signature = r.array("signature")?;
        r.finish()?;
        Ok(Self { body, signature })
    }

    /// `SHA-256(CTX_ROSTER_HASH || 0x00 || body || signature)`: the next event's `prev`.
    pub fn hash(&self) -> EventHash {
        crypto::sha256(&[CTX_ROSTER_HASH.as_bytes(), &[0], &self.to_bytes()])
    }
}

/// Why a chain was refused. Each variant is a distinct failure class of the vectors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RosterError {
    /// Bytes that are not an event.
    #[error("malformed roster event: {0}")]
    Malformed(#[from] DecodeError),
    /// The first event is not a genesis, or a genesis appears later.
    #[error("event {seq}: genesis must be first and only first")]
    BadGenesis {
        /// Position.
        seq: u64,
    },
    /// The event names another firm.
    #[error("event {seq}: belongs to another firm")]
    WrongFirm {
        /// Position.
        seq: u64,
    },
    /// The sequence number skips or repeats.
    #[error("event {seq}: expected sequence number {expected}")]
    Gap {
        /// Position found.
        seq: u64,
        /// Position expected.
        expected: u64,
    },
    /// `prev` is not the hash of the previous event: the chain was forked or rewritten.
    #[error("event {seq}: previous-hash mismatch (fork or rewrite)")]
    Fork {
        /// Position.
        seq: u64,
    },
    /// The timestamp is earlier than the previous event's.
    #[error("event {seq}: timestamp goes backwards")]
    TimeReversed {
        /// Position.
        seq: u64,
    },
    /// The signature does not verify under the signer's master key.
    #[error("event {seq}: bad signature")]
    BadSignature {
        /// Position.
        seq: u64,
    },
    /// The signer may not make this change.
    #[error("event {seq}: signer is not allowed to make this change")]
    Unauthorized {
        /// Position.
        seq: u64,
    },
    /// The event refers to, or is signed by, a removed member or a revoked device.
    #[error("event {seq}: refers to a removed member or revoked device")]
    AfterRevocation {
        /// Position.
        seq: u64,
    },
    /// The event refers to a member or device that does not exist.
    #[error("event {seq}: unknown member or device")]
    Unknown {
        /// Position.
        seq: u64,
    },
    /// The event adds something that already exists, or grants what is granted.
    #[error("event {seq}: duplicate member, device or grant")]
    Duplicate {
        /// Position.
        seq: u64,
    },
    /// The device certificate does not verify under the member's master key.
    #[error("event {seq}: bad device certificate")]
    BadDeviceCertificate {
        /// Position.
        seq: u64,
    },
    /// The event would leave the firm without an admin.
    #[error("event {seq}: would remove the last admin")]
    LastAdmin {
        /// Position.
        seq: u64,
    },
    /// An absence cover for oneself, ending before it starts, or already over.
    #[error("event {seq}: a cover needs two members and a window that ends after it starts and after the event")]
    BadCover {
        /// Position.
        seq: u64,
    },
    /// A retention policy beyond the limits, or for a file the roster never granted.
    #[error("event {seq}: a retention policy needs a granted file and periods within the limits")]
    BadRetention {
        /// Position.
        seq: u64,
    },
}

impl RosterError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Malformed",
            Self::BadGenesis { .. } => "BadGenesis",
            Self::WrongFirm { .. } => "WrongFirm",
            Self::Gap { .. } => "ChainGap",
            Self::Fork { .. } => "ChainFork",
            Self::TimeReversed { .. } => "TimeReversed",
            Self::BadSignature { .. } => "BadSignature",
            Self::Unauthorized { .. } => "NonAdminSigner",
            Self::AfterRevocation { .. } => "EventAfterRevocation",
            Self::Unknown { .. } => "UnknownSubject",
            Self::Duplicate { .. } => "Duplicate",
            Self::BadDeviceCertificate { .. } => "BadDeviceCertificate",
            Self::LastAdmin { .. } => "LastAdmin",
            Self::BadCover { .. } => "BadCover",
            Self::BadRetention { .. } => "BadRetention",
        }
    }
}

/// A half-open interval `[from, until)` of milliseconds; `until = None` is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Start, inclusive.
    pub from: u64,
    /// End, exclusive.
    pub until: Option<u64>,
}

impl Interval {
    fn contains(&self, t: u64) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

/// A member as the folded roster knows it.
#[derive(Debug, Clone)]
pub struct MemberState {
    /// Master public key.
    pub master_key: VerifyingKey,
    /// Current role.
    pub role: Role,
    /// Membership.
    pub active: Interval,
    /// For a guest, the one file whose conversation they may join.
    pub guest_of: Option<FileId>,
}

/// A device as the folded roster knows it.
#[derive(Debug, Clone)]
pub struct DeviceState {
    /// Owner.
    pub member: MemberId,
    /// Certified keys.
    pub keys: DeviceKeys,
    /// When it could act.
    pub active: Interval,
}

/// An absence cover as the folded roster knows it (`protocol-spec/roster.md`).
#[derive(Debug, Clone)]
pub struct Cover {
    /// The member who is away.
    pub absent: MemberId,
    /// The member who covers.
    pub colleague: MemberId,
    /// Time of the `CoverGranted` event (signer's clock).
    pub granted_ms: u64,
    /// Start as signed.
    pub from_ms: u64,
    /// Expiry as signed (exclusive).
    pub until_ms: u64,
    /// Time of the `CoverEnded` event, once there is one.
    pub ended_ms: Option<u64>,
    /// The absent member's files at the grant.
    pub files: BTreeSet<FileId>,
}

impl Cover {
    /// When the colleague's access starts.
    pub fn start_ms(&self) -> u64 {
        self.from_ms.max(self.granted_ms)
    }

    /// When the colleague's access ends: expiry, or an earlier `CoverEnded`.
    pub fn end_ms(&self) -> u64 {
        self.ended_ms
            .map_or(self.until_ms, |e| e.min(self.until_ms))
    }

    /// Whether the cover lets the colleague in at `now_ms` (the relay's clock): started —
    /// a cover granted to start at once counts as started whatever the clocks say — not
    /// expired, not ended.
    pub fn in_force(&self, now_ms: u64) -> bool {
        self.ended_ms.is_none()
            && now_ms < self.until_ms
            && (self.from_ms <= self.granted_ms || self.from_ms <= now_ms)
    }

    /// Whether new epoch keys are wrapped for the colleague at `now_ms`: from the grant
    /// (a cover that starts later finds its keys ready) until expiry or end.
    pub fn holds_keys(&self, now_ms: u64) -> bool {
        self.ended_ms.is_none() && now_ms < self.until_ms
    }

    /// Whether expiry has passed at `now_ms` and no `CoverEnded` records its rotation yet.
    pub fn expired_unrotated(&self, now_ms: u64) -> bool {
        self.ended_ms.is_none() && now_ms >= self.until_ms
    }

    fn covered_at(&self, t_ms: u64) -> bool {
        self.start_ms() <= t_ms && t_ms < self.end_ms()
    }
}

/// A team as the folded roster knows it.
#[derive(Debug, Clone)]
pub struct TeamState {
    /// Commitment to the current name ([`team_name_commitment`]).
    pub name: [u8; 32],
    /// From creation to deletion.
    pub active: Interval,
}

/// The verified roster: the chain and its folded state.
#[derive(Debug, Clone)]
pub struct Roster {
    firm: FirmId,
    head: EventHash,
    len: u64,
    last_time: u64,
    members: BTreeMap<MemberId, MemberState>,
    devices: BTreeMap<DeviceId, DeviceState>,
    grants: BTreeMap<(FileId, MemberId), Vec<Interval>>,
    teams: BTreeMap<TeamId, TeamState>,
    team_members: BTreeMap<(TeamId, MemberId), Vec<Interval>>,
    team_grants: BTreeMap<(FileId, TeamId), Vec<Interval>>,
    covers: BTreeMap<u64, Cover>,
    /// The relay's audit-log keys as admins recorded them, in order: `(seq, key)`.
    log_keys: Vec<(u64, VerifyingKey)>,
    /// Retention policies per file, in order: `(seq, time, policy)`.
    retention: BTreeMap<FileId, Vec<(u64, u64, RetentionPolicy)>>,
    /// Whether admins may reprovision members (`RecoveryPolicySet`).
    admin_assisted_recovery: bool,
    owner: MemberId,
}

impl Roster {
    /// The member who founded the firm (signed the genesis event).
    pub fn owner(&self) -> MemberId {
        self.owner
    }

    /// Verifies a genesis event and starts a roster.
    pub fn from_genesis(event: &RosterEvent) -> Result<Self, RosterError> {
        let b = &event.body;
        let EventKind::Genesis { owner_key } = &b.kind else {
            return Err(RosterError::BadGenesis { seq: b.seq });
        };
        if b.seq != 0 {
            return Err(RosterError::Gap {
                seq: b.seq,
                expected: 0,
            });
        }
        if b.prev != [0; 32] {
            return Err(RosterError::Fork { seq: 0 });
        }
        if !crypto::verify(owner_key, CTX_ROSTER_EVENT, &b.to_bytes(), &event.signature) {
            return Err(RosterError::BadSignature { seq: 0 });
        }
        let mut members = BTreeMap::new();
        members.insert(
            b.signer,
            MemberState {
                master_key: *owner_key,
                role: Role::Admin,
                active: Interval {
                    from: b.timestamp_ms,
                    until: None,
                },
                guest_of: None,
            },
        );
        Ok(Self {
            firm: b.firm,
            head: event.hash(),
            len: 1,
            last_time: b.timestamp_ms,
            members,
            devices: BTreeMap::new(),
            grants: BTreeMap::new(),
            teams: BTreeMap::new(),
            team_members: BTreeMap::new(),
            team_grants: BTreeMap::new(),
            covers: BTreeMap::new(),
            retention: BTreeMap::new(),
            log_keys: Vec::new(),
            admin_assisted_recovery: false,
            owner: b.signer,
        })
    }

    /// Verifies a whole chain from genesis.
    pub fn verify_chain<'a, I: IntoIterator<Item = &'a RosterEvent>>(
        events: I,
    ) -> Result<Self, RosterError> {
        let mut it = events.into_iter();
        let genesis = it.next().ok_or(RosterError::BadGenesis { seq: 0 })?;
        let mut roster = Self::from_genesis(genesis)?;
        for e in it {
            roster.apply(e)?;
        }
        Ok(roster)
    }

    /// Verifies and applies the next event. On error the roster is unchanged.
    pub fn apply(&mut self, event: &RosterEvent) -> Result<(), RosterError> {
        let mut next = self.clone();
        next.apply_in_place(event)?;
        *self = next;
        Ok(())
    }

    fn apply_in_place(&mut self, event: &RosterEvent) -> Result<(), RosterError> {
        let b = &event.body;
        let seq = b.seq;
        if b.firm != self.firm {
            return Err(RosterError::WrongFirm { seq });
        }
        if seq != self.len {
            return Err(RosterError::Gap {
                seq,
                expected: self.len,
            });
        }
        if b.prev != self.head {
            return Err(RosterError::Fork { seq });
        }
        if b.timestamp_ms < self.last_time {
            return Err(RosterError::TimeReversed { seq });
        }
        let signer = self
            .members
            .get(&b.signer)
            .ok_or(RosterError::Unauthorized { seq })?;
        if signer.active.until.is_some() {
            return Err(RosterError::AfterRevocation { seq });
        }
        if !crypto::verify(
            &signer.master_key,
            CTX_ROSTER_EVENT,
            &b.to_bytes(),
            &event.signature,
        ) {
            return Err(RosterError::BadSignature { seq });
        }
        let signer_is_admin = signer.role == Role::Admin;
        let now = b.timestamp_ms;

        match &b.kind {
            EventKind::Genesis { .. } => return Err(RosterError::BadGenesis { seq }),
            EventKind::MemberAdded {
                member,
                master_key,
                role,
            } => {
                require(
                    signer_is_admin && *role != Role::Guest,
                    RosterError::Unauthorized { seq },
                )?;
                self.new_member(member, seq)?;
                self.members.insert(
                    *member,
                    MemberState {
                        master_key: *master_key,
                        role: *role,
                        active: Interval {
                            from: now,
                            until: None,
                        },
                        guest_of: None,
                    },
                );
            }
            EventKind::GuestAdded {
                member,
                master_key,
                file,
            } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.new_member(member, seq)?;
                // A guest joins a file the firm has: one granted to somebody at some time.
                require(self.files().contains(file), RosterError::Unknown { seq })?;
                self.members.insert(
                    *member,
                    MemberState {
                        master_key: *master_key,
                        role: Role::Guest,
                        active: Interval {
                            from: now,
                            until: None,
                        },
                        guest_of: Some(*file),
                    },
                );
            }
            EventKind::MemberRemoved { member } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.active_member(member, seq)?;
                if self
                    .members
                    .get(member)
                    .is_some_and(|m| m.role == Role::Admin)
                    && self.admin_count() <= 1
                {
                    return Err(RosterError::LastAdmin { seq });
                }
                if let Some(m) = self.members.get_mut(member) {
                    m.active.until = Some(now);
                }
                for d in self.devices.values_mut().filter(|d| d.member == *member) {
                    d.active.until.get_or_insert(now);
                }
                for ((_, m), intervals) in self.grants.iter_mut() {
                    if m == member {
                        end_open(intervals, now);
                    }
                }
                for ((_, m), intervals) in self.team_members.iter_mut() {
                    if m == member {
                        end_open(intervals, now);
                    }
                }
            }
            EventKind::DeviceAdded(cert) => {
                require(
                    signer_is_admin || b.signer == cert.member,
                    RosterError::Unauthorized { seq },
                )?;
                let owner = self.active_member(&cert.member, seq)?;
                if !cert.verify(self.firm, &owner.master_key) {
                    return Err(RosterError::BadDeviceCertificate { seq });
                }
                if self.devices.contains_key(&cert.device) {
                    return Err(RosterError::Duplicate { seq });
                }
                self.devices.insert(
                    cert.device,
                    DeviceState {
                        member: cert.member,
                        keys: cert.keys.clone(),
                        active: Interval {
                            from: now,
                            until: None,
                        },
                    },
                );
            }
            EventKind::DeviceRevoked { device } => {
                let d = self
                    .devices
                    .get(device)
                    .ok_or(RosterError::Unknown { seq })?;
                require(
                    signer_is_admin || b.signer == d.member,
                    RosterError::Unauthorized { seq },
                )?;
                if d.active.until.is_some() {
                    return Err(RosterError::AfterRevocation { seq });
                }
                if let Some(d) = self.devices.get_mut(device) {
                    d.active.until = Some(now);
                }
            }
            EventKind::RoleChanged { member, role } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                let current = self.active_member(member, seq)?.role;
                // A guest stays a guest and nobody becomes one: a guest's key never held
                // anything of the firm's but one conversation.
                require(
                    current != Role::Guest && *role != Role::Guest,
                    RosterError::Unauthorized { seq },
                )?;
                if current == *role {
                    return Err(RosterError::Duplicate { seq });
                }
                if current == Role::Admin && self.admin_count() <= 1 {
                    return Err(RosterError::LastAdmin { seq });
                }
                if let Some(m) = self.members.get_mut(member) {
                    m.role = *role;
                }
            }
            EventKind::FileAccessGranted { file, member } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.active_member(member, seq)?;
                require(
                    self.members
                        .get(member)
                        .is_some_and(|m| m.role.may_hold_files()),
                    RosterError::Unauthorized { seq },
                )?;
                open_interval(self.grants.entry((*file, *member)).or_default(), now, seq)?;
            }
            EventKind::FileAccessRemoved { file, member } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.active_member(member, seq)?;
                close_interval(self.grants.get_mut(&(*file, *member)), now, seq)?;
            }
            EventKind::CoverGranted {
                absent,
                colleague,
                from_ms,
                until_ms,
            } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                let absent_role = self.active_member(absent, seq)?.role;
                let role = self.active_member(colleague, seq)?.role;
                require(
                    role.may_hold_files() && absent_role.may_hold_files(),
                    RosterError::Unauthorized { seq },
                )?;
                require(
                    absent != colleague && from_ms < until_ms && now < *until_ms,
                    RosterError::BadCover { seq },
                )?;
                let files = self.granted_files(absent);
                self.covers.insert(
                    seq,
                    Cover {
                        absent: *absent,
                        colleague: *colleague,
                        granted_ms: now,
                        from_ms: *from_ms,
                        until_ms: *until_ms,
                        ended_ms: None,
                        files,
                    },
                );
            }
            EventKind::CoverEnded { cover } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                let c = self
                    .covers
                    .get_mut(cover)
                    .ok_or(RosterError::Unknown { seq })?;
                if c.ended_ms.is_some() {
                    return Err(RosterError::Duplicate { seq });
                }
                c.ended_ms = Some(now);
            }
            EventKind::RetentionSet { file, policy } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                require(
                    policy.is_valid() && self.files().contains(file),
                    RosterError::BadRetention { seq },
                )?;
                let history = self.retention.entry(*file).or_default();
                if history.last().is_some_and(|(_, _, p)| p == policy) {
                    return Err(RosterError::Duplicate { seq });
                }
                history.push((seq, now, *policy));
            }
            EventKind::RecoveryPolicySet { admin_assisted } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                if self.admin_assisted_recovery == *admin_assisted {
                    return Err(RosterError::Duplicate { seq });
                }
                self.admin_assisted_recovery = *admin_assisted;
            }
            EventKind::LogKeySet { key } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                if self.log_keys.last().is_some_and(|(_, k)| k == key) {
                    return Err(RosterError::Duplicate { seq });
                }
                self.log_keys.push((seq, *key));
            }
            EventKind::TeamCreated { team, name } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                if let Some(t) = self.teams.get(team) {
                    return Err(if t.active.until.is_some() {
                        RosterError::AfterRevocation { seq }
                    } else {
                        RosterError::Duplicate { seq }
                    });
                }
                self.teams.insert(
                    *team,
                    TeamState {
                        name: *name,
                        active: Interval {
                            from: now,
                            until: None,
                        },
                    },
                );
            }
            EventKind::TeamRenamed { team, name } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                require(
                    self.active_team(team, seq)?.name != *name,
                    RosterError::Duplicate { seq },
                )?;
                if let Some(t) = self.teams.get_mut(team) {
                    t.name = *name;
                }
            }
            EventKind::TeamDeleted { team } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.active_team(team, seq)?;
                if let Some(t) = self.teams.get_mut(team) {
                    t.active.until = Some(now);
                }
                for ((t, _), intervals) in self.team_members.iter_mut() {
                    if t == team {
                        end_open(intervals, now);
                    }
                }
                for ((_, t), intervals) in self.team_grants.iter_mut() {
                    if t == team {
                        end_open(intervals, now);
                    }
                }
            }
            EventKind::TeamMemberAdded { team, member } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.active_team(team, seq)?;
                let role = self.active_member(member, seq)?.role;
                require(role.may_hold_files(), RosterError::Unauthorized { seq })?;
                open_interval(
                    self.team_members.entry((*team, *member)).or_default(),
                    now,
                    seq,
                )?;
            }
            EventKind::TeamMemberRemoved { team, member } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.active_team(team, seq)?;
                close_interval(self.team_members.get_mut(&(*team, *member)), now, seq)?;
            }
            EventKind::FileTeamGranted { file, team } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.active_team(team, seq)?;
                open_interval(
                    self.team_grants.entry((*file, *team)).or_default(),
                    now,
                    seq,
                )?;
            }
            EventKind::FileTeamRemoved { file, team } => {
                require(signer_is_admin, RosterError::Unauthorized { seq })?;
                self.active_team(team, seq)?;
                close_interval(self.team_grants.get_mut(&(*file, *team)), now, seq)?;
            }
        }
        self.head = event.hash();
        self.len += 1;
        self.last_time = now;
        Ok(())
    }

    /// A member id not seen before (ids are never reused).
    fn new_member(&self, member: &MemberId, seq: u64) -> Result<(), RosterError> {
        match self.members.get(member) {
            Some(m) if m.active.until.is_some() => Err(RosterError::AfterRevocation { seq }),
            Some(_) => Err(RosterError::Duplicate { seq }),
            None => Ok(()),
        }
    }

    fn active_member(&self, member: &MemberId, seq: u64) -> Result<&MemberState, RosterError> {
        let m = self
            .members
            .get(member)
            .ok_or(RosterError::Unknown { seq })?;
        if m.active.until.is_some() {
            return Err(RosterError::AfterRevocation { seq });
        }
        Ok(m)
    }

    fn active_team(&self, team: &TeamId, seq: u64) -> Result<&TeamState, RosterError> {
        let t = self.teams.get(team).ok_or(RosterError::Unknown { seq })?;
        if t.active.until.is_some() {
            return Err(RosterError::AfterRevocation { seq });
        }
        Ok(t)
    }

    fn admin_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.role == Role::Admin && m.active.until.is_none())
            .count()
    }

    /// The firm.
    pub fn firm(&self) -> FirmId {
        self.firm
    }

    /// Hash of the last applied event: the `prev` of the next one.
    pub fn head(&self) -> EventHash {
        self.head
    }

    /// Number of events applied; the `seq` of the next one.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a roster has at least its genesis.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// A member, active or removed.
    pub fn member(&self, id: &MemberId) -> Option<&MemberState> {
        self.members.get(id)
    }

    /// Every member, active or removed.
    pub fn members(&self) -> impl Iterator<Item = (&MemberId, &MemberState)> {
        self.members.iter()
    }

    /// A device, active or revoked.
    pub fn device(&self, id: &DeviceId) -> Option<&DeviceState> {
        self.devices.get(id)
    }

    /// The active devices of a member now.
    pub fn active_devices(
        &self,
        member: &MemberId,
    ) -> impl Iterator<Item = (&DeviceId, &DeviceState)> {
        let member = *member;
        self.devices
            .iter()
            .filter(move |(_, d)| d.member == member && d.active.until.is_none())
    }

    /// Every device ever certified, active or not.
    pub fn devices_all(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.devices.keys().copied()
    }

    /// Every device ever certified for a member, active or not.
    pub fn devices_of_member(&self, member: &MemberId) -> Vec<DeviceId> {
        self.devices
            .iter()
            .filter(|(_, d)| d.member == *member)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every device that is active now (not revoked, member not removed).
    pub fn all_active_devices(&self) -> Vec<DeviceId> {
        self.devices
            .iter()
            .filter(|(_, d)| {
                d.active.until.is_none()
                    && self
                        .members
                        .get(&d.member)
                        .is_some_and(|m| m.active.until.is_none())
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Files a member may work in at `now_ms`: their grants, their teams' grants and the
    /// covers in force.
    pub fn files_of(&self, member: &MemberId, now_ms: u64) -> BTreeSet<FileId> {
        let mut files = self.granted_files(member);
        files.extend(self.team_files(member));
        if self.is_active(member) {
            for c in self.covers_of(member) {
                if c.in_force(now_ms) {
                    files.extend(c.files.iter().copied());
                }
            }
        }
        files
    }

    /// Files a member holds by an open grant (no covers).
    pub fn granted_files(&self, member: &MemberId) -> BTreeSet<FileId> {
        self.grants
            .iter()
            .filter(|((_, m), v)| m == member && v.last().is_some_and(|i| i.until.is_none()))
            .map(|((f, _), _)| *f)
            .collect()
    }

    /// Files whose current keys a member may hold, whatever the time: grants, their teams'
    /// grants and every cover not yet ended by a `CoverEnded` (keys outlive an expiry until
    /// the rotation).
    fn held_files(&self, member: &MemberId) -> BTreeSet<FileId> {
        self.held_files_beside(member, None)
    }

    /// [`Self::held_files`] without what the member holds through `team`.
    fn held_files_beside(&self, member: &MemberId, team: Option<&TeamId>) -> BTreeSet<FileId> {
        let mut files = self.granted_files(member);
        for t in self.teams_of(member) {
            if Some(&t) != team {
                files.extend(self.files_of_team(&t));
            }
        }
        for c in self.covers_of(member) {
            if c.ended_ms.is_none() {
                files.extend(c.files.iter().copied());
            }
        }
        files
    }

    fn covers_of<'a>(&'a self, colleague: &'a MemberId) -> impl Iterator<Item = &'a Cover> + 'a {
        self.covers
            .values()
            .filter(move |c| c.colleague == *colleague)
    }

    fn is_active(&self, member: &MemberId) -> bool {
        self.members
            .get(member)
            .is_some_and(|m| m.active.until.is_none())
    }

    /// The last moment up to `now_ms` at which someone's access to `file` ended (a grant
    /// removed, a member removed, a cover ended or expired), if any. A sender's room
    /// session older than that may have reached them and is replaced.
    pub fn last_access_end(&self, file: &FileId, now_ms: u64) -> Option<u64> {
        let grants = self
            .grants
            .range((*file, MemberId([0; 16]))..=(*file, MemberId([0xff; 16])))
            .flat_map(|(_, v)| v.iter().filter_map(|i| i.until));
        let covers = self
            .covers
            .values()
            .filter(|c| c.files.contains(file))
            .map(|c| c.end_ms());
        let teams = self
            .team_access_ends()
            .into_iter()
            .filter(|(f, _, _)| f == file)
            .map(|(_, _, t)| t);
        grants
            .chain(covers)
            .chain(teams)
            .filter(|t| *t <= now_ms)
            .max()
    }

    /// A team, deleted or not.
    pub fn team(&self, team: &TeamId) -> Option<&TeamState> {
        self.teams.get(team)
    }

    /// Every team ever created, deleted ones included.
    pub fn teams(&self) -> impl Iterator<Item = (&TeamId, &TeamState)> {
        self.teams.iter()
    }

    /// Teams a member belongs to now.
    pub fn teams_of(&self, member: &MemberId) -> BTreeSet<TeamId> {
        self.team_members
            .iter()
            .filter(|((_, m), v)| m == member && is_open(v))
            .map(|((t, _), _)| *t)
            .collect()
    }

    /// A team's members now.
    pub fn team_members(&self, team: &TeamId) -> BTreeSet<MemberId> {
        self.team_members
            .range((*team, MemberId([0; 16]))..=(*team, MemberId([0xff; 16])))
            .filter(|(_, v)| is_open(v))
            .map(|((_, m), _)| *m)
            .collect()
    }

    /// A team's members at time `t_ms`.
    pub fn team_members_at(&self, team: &TeamId, t_ms: u64) -> Vec<MemberId> {
        self.team_members
            .range((*team, MemberId([0; 16]))..=(*team, MemberId([0xff; 16])))
            .filter(|(_, v)| v.iter().any(|i| i.contains(t_ms)))
            .map(|((_, m), _)| *m)
            .collect()
    }

    /// Files granted to a team now.
    pub fn files_of_team(&self, team: &TeamId) -> BTreeSet<FileId> {
        self.team_grants
            .iter()
            .filter(|((_, t), v)| t == team && is_open(v))
            .map(|((f, _), _)| *f)
            .collect()
    }

    /// Teams granted a file now: the file's epoch keys are wrapped under their team keys.
    pub fn file_teams(&self, file: &FileId) -> BTreeSet<TeamId> {
        self.team_grants
            .range((*file, TeamId([0; 16]))..=(*file, TeamId([0xff; 16])))
            .filter(|(_, v)| is_open(v))
            .map(|((_, t), _)| *t)
            .collect()
    }

    /// Files a member holds through their teams now.
    pub fn team_files(&self, member: &MemberId) -> BTreeSet<FileId> {
        self.teams_of(member)
            .iter()
            .flat_map(|t| self.files_of_team(t))
            .collect()
    }

    /// Members a team's key is wrapped for now: its members and every active admin (who
    /// wrap new epoch keys under it); nobody once the team is deleted.
    pub fn team_key_holders(&self, team: &TeamId) -> BTreeSet<MemberId> {
        if self
            .teams
            .get(team)
            .is_none_or(|t| t.active.until.is_some())
        {
            return BTreeSet::new();
        }
        let mut holders = self.team_members(team);
        holders.extend(
            self.members
                .iter()
                .filter(|(_, m)| m.role == Role::Admin && m.active.until.is_none())
                .map(|(id, _)| *id),
        );
        holders
    }

    /// Whether `member` could reach `file` through a team at `t_ms`: a team that held a
    /// grant for the file at `t_ms` had them as a member at `t_ms`.
    fn team_access(&self, file: &FileId, member: &MemberId, t_ms: u64) -> bool {
        self.team_grants
            .range((*file, TeamId([0; 16]))..=(*file, TeamId([0xff; 16])))
            .filter(|(_, v)| v.iter().any(|i| i.contains(t_ms)))
            .any(|((_, team), _)| {
                self.team_members
                    .get(&(*team, *member))
                    .is_some_and(|v| v.iter().any(|i| i.contains(t_ms)))
            })
    }

    /// Every moment a member's access to a file through a team ended, as `(file, member,
    /// time)`: the membership or the team's grant ended while the other was open.
    fn team_access_ends(&self) -> Vec<(FileId, MemberId, u64)> {
        let mut ends = Vec::new();
        for ((file, team), grants) in &self.team_grants {
            for ((_, member), spans) in self
                .team_members
                .range((*team, MemberId([0; 16]))..=(*team, MemberId([0xff; 16])))
            {
                for g in grants {
                    for m in spans {
                        let from = g.from.max(m.from);
                        let end = match (g.until, m.until) {
                            (Some(a), Some(b)) => a.min(b),
                            (Some(a), None) | (None, Some(a)) => a,
                            (None, None) => continue,
                        };
                        if from < end {
                            ends.push((*file, *member, end));
                        }
                    }
                }
            }
        }
        ends
    }

    /// Every absence cover, by the `seq` of its `CoverGranted` event.
    pub fn covers(&self) -> impl Iterator<Item = (u64, &Cover)> {
        self.covers.iter().map(|(seq, c)| (*seq, c))
    }

    /// Whether the firm's policy lets admins reprovision members (`RecoveryPolicySet`).
    pub fn admin_assisted_recovery(&self) -> bool {
        self.admin_assisted_recovery
    }

    /// The relay's audit-log key as the newest LogKeySet records it.
    pub fn log_key(&self) -> Option<VerifyingKey> {
        self.log_keys.last().map(|(_, k)| *k)
    }

    /// Every audit-log key admins ever recorded, with the `seq` of its event.
    pub fn log_keys(&self) -> &[(u64, VerifyingKey)] {
        &self.log_keys
    }

    /// A file's retention policy now, with the `seq` of the event that set it.
    pub fn retention(&self, file: &FileId) -> Option<(u64, RetentionPolicy)> {
        self.retention
            .get(file)
            .and_then(|h| h.last())
            .map(|(seq, _, p)| (*seq, *p))
    }

    /// Every file with a retention policy, and the policy now (`seq`, policy).
    pub fn retention_policies(&self) -> impl Iterator<Item = (FileId, u64, RetentionPolicy)> + '_ {
        self.retention
            .iter()
            .filter_map(|(f, h)| h.last().map(|(seq, _, p)| (*f, *seq, *p)))
    }

    /// The retention policy a file had among the first `len` events (the roster as it
    /// stood when it was `len` events long), with the `seq` of the event that set it.
    pub fn retention_within(&self, file: &FileId, len: u64) -> Option<(u64, RetentionPolicy)> {
        self.retention
            .get(file)?
            .iter()
            .rev()
            .find(|(seq, _, _)| *seq < len)
            .map(|(seq, _, p)| (*seq, *p))
    }

    /// One absence cover, by the `seq` of its `CoverGranted` event.
    pub fn cover(&self, seq: u64) -> Option<&Cover> {
        self.covers.get(&seq)
    }

    /// Every moment a member's access to a file ended `(file, member, time ms)` — by a
    /// removal from the file or from the firm, or by the end of an absence cover the
    /// member held no grant beside — in file and member order.
    pub fn access_ends(&self) -> Vec<(FileId, MemberId, u64)> {
        let mut ends: Vec<(FileId, MemberId, u64)> = self
            .grants
            .iter()
            .flat_map(|((f, m), v)| v.iter().filter_map(move |i| i.until.map(|t| (*f, *m, t))))
            .collect();
        for (f, m, end) in self.team_access_ends() {
            if !self.had_access(&f, &m, end) {
                ends.push((f, m, end));
            }
        }
        for c in self.covers.values() {
            let left = self
                .members
                .get(&c.colleague)
                .and_then(|m| m.active.until)
                .unwrap_or(u64::MAX);
            let end = c.end_ms().min(left);
            for f in &c.files {
                let granted = self
                    .grants
                    .get(&(*f, c.colleague))
                    .is_some_and(|v| v.iter().any(|i| i.contains(end)));
                if !granted {
                    ends.push((*f, c.colleague, end));
                }
            }
        }
        ends.sort();
        ends.dedup();
        ends
    }

    /// What `kind`, applied to this roster, would expose (`protocol-spec/offboarding.md`):
    /// the member keys a revoked device (or removed admin) held, and the customer files
    /// whose current epoch keys those, or a lost access, could open. Both must be rotated.
    pub fn exposed_by(&self, kind: &EventKind) -> (BTreeSet<MemberId>, BTreeSet<FileId>) {
        let is_admin = |m: &MemberId| {
            self.members
                .get(m)
                .is_some_and(|s| s.role == Role::Admin && s.active.until.is_none())
        };
        let active: BTreeSet<MemberId> = self
            .members
            .iter()
            .filter(|(_, m)| m.active.until.is_none())
            .map(|(id, _)| *id)
            .collect();
        let all_files = || {
            self.grants
                .iter()
                .filter(|(_, v)| is_open(v))
                .map(|((f, _), _)| *f)
                .chain(
                    self.team_grants
                        .iter()
                        .filter(|(_, v)| is_open(v))
                        .map(|((f, _), _)| *f),
                )
                .chain(
                    self.covers
                        .values()
                        .filter(|c| c.ended_ms.is_none())
                        .flat_map(|c| c.files.iter().copied()),
                )
                .collect::<BTreeSet<FileId>>()
        };
        // What the members of `team` lose by leaving it, beside what they keep otherwise.
        let lost_with_team = |team: &TeamId, members: BTreeSet<MemberId>| {
            let files = self.files_of_team(team);
            members
                .iter()
                .flat_map(|m| {
                    let kept = self.held_files_beside(m, Some(team));
                    files.difference(&kept).copied().collect::<Vec<_>>()
                })
                .collect::<BTreeSet<FileId>>()
        };
        match kind {
            EventKind::FileAccessRemoved { file, .. } | EventKind::FileTeamRemoved { file, .. } => {
                (BTreeSet::new(), BTreeSet::from([*file]))
            }
            EventKind::TeamMemberRemoved { team, member } => (
                BTreeSet::new(),
                lost_with_team(team, BTreeSet::from([*member])),
            ),
            EventKind::TeamDeleted { team } => (
                BTreeSet::new(),
                lost_with_team(team, self.team_members(team)),
            ),
            EventKind::MemberRemoved { member } if is_admin(member) => (
                active.into_iter().filter(|m| m != member).collect(),
                all_files(),
            ),
            EventKind::MemberRemoved { member } => (BTreeSet::new(), self.held_files(member)),
            EventKind::DeviceRevoked { device } => match self.devices.get(device) {
                Some(d) if d.active.until.is_none() && is_admin(&d.member) => (active, all_files()),
                Some(d) if d.active.until.is_none() => {
                    (BTreeSet::from([d.member]), self.held_files(&d.member))
                }
                _ => (BTreeSet::new(), BTreeSet::new()),
            },
            // The colleague held the covered files' keys; those they keep by a grant or
            // another open cover stay theirs.
            EventKind::CoverEnded { cover } => match self.covers.get(cover) {
                Some(c) if c.ended_ms.is_none() => {
                    let mut others = self.granted_files(&c.colleague);
                    others.extend(self.team_files(&c.colleague));
                    for (seq, o) in &self.covers {
                        if seq != cover && o.colleague == c.colleague && o.ended_ms.is_none() {
                            others.extend(o.files.iter().copied());
                        }
                    }
                    (
                        BTreeSet::new(),
                        c.files.difference(&others).copied().collect(),
                    )
                }
                _ => (BTreeSet::new(), BTreeSet::new()),
            },
            _ => (BTreeSet::new(), BTreeSet::new()),
        }
    }

    /// The team keys `kind`, applied to this roster, would expose: those a removed team
    /// member, a removed member or a revoked device held (every team's, for an admin, who
    /// holds them all). Each must be rotated before a new epoch key is wrapped under it.
    pub fn teams_exposed_by(&self, kind: &EventKind) -> BTreeSet<TeamId> {
        let is_admin = |m: &MemberId| {
            self.members
                .get(m)
                .is_some_and(|s| s.role == Role::Admin && s.active.until.is_none())
        };
        let all_teams = || {
            self.teams
                .iter()
                .filter(|(_, t)| t.active.until.is_none())
                .map(|(id, _)| *id)
                .collect()
        };
        match kind {
            EventKind::TeamMemberRemoved { team, .. } => BTreeSet::from([*team]),
            EventKind::MemberRemoved { member } if is_admin(member) => all_teams(),
            EventKind::MemberRemoved { member } => self.teams_of(member),
            EventKind::DeviceRevoked { device } => match self.devices.get(device) {
                Some(d) if d.active.until.is_none() && is_admin(&d.member) => all_teams(),
                Some(d) if d.active.until.is_none() => self.teams_of(&d.member),
                _ => BTreeSet::new(),
            },
            _ => BTreeSet::new(),
        }
    }

    /// Every device revoked on its own (a lost device; its member stayed):
    /// `(device, member, time ms)`, in device order.
    pub fn device_revocations(&self) -> Vec<(DeviceId, MemberId, u64)> {
        self.devices
            .iter()
            .filter_map(|(id, d)| {
                let t = d.active.until?;
                let member_stayed = self
                    .members
                    .get(&d.member)
                    .is_some_and(|m| m.active.contains(t));
                member_stayed.then_some((*id, d.member, t))
            })
            .collect()
    }

    /// Every member removed from the firm: `(member, time ms)`, in member order.
    pub fn removals(&self) -> Vec<(MemberId, u64)> {
        self.members
            .iter()
            .filter_map(|(id, m)| m.active.until.map(|t| (*id, t)))
            .collect()
    }

    /// Members of the firm at time `t_ms`.
    pub fn members_at(&self, t_ms: u64) -> Vec<MemberId> {
        self.members
            .iter()
            .filter(|(_, m)| m.active.contains(t_ms))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether `member` held a grant for `file`, reached it through a team, or covered it
    /// for an absent colleague, at time `t_ms`.
    pub fn had_access(&self, file: &FileId, member: &MemberId, t_ms: u64) -> bool {
        self.grants
            .get(&(*file, *member))
            .is_some_and(|v| v.iter().any(|i| i.contains(t_ms)))
            || self.team_access(file, member, t_ms)
            || (self
                .members
                .get(member)
                .is_some_and(|m| m.active.contains(t_ms))
                && self
                    .covers_of(member)
                    .any(|c| c.files.contains(file) && c.covered_at(t_ms)))
    }

    /// Every file that ever had a grant, to a member or a team.
    pub fn files(&self) -> BTreeSet<FileId> {
        self.grants
            .keys()
            .map(|(f, _)| *f)
            .chain(self.team_grants.keys().map(|(f, _)| *f))
            .collect()
    }

    /// The active guests of a file's conversation.
    pub fn guests_of(&self, file: &FileId) -> BTreeSet<MemberId> {
        self.members
            .iter()
            .filter(|(_, m)| m.guest_of == Some(*file) && m.active.until.is_none())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The file a member is a guest of, if they are a guest.
    pub fn guest_file(&self, member: &MemberId) -> Option<FileId> {
        self.members.get(member).and_then(|m| m.guest_of)
    }

    /// Who is in a file's customer conversation at `now_ms`: the file's members and its
    /// active guests (`protocol-spec/guests.md`).
    pub fn conversation_members(&self, file: &FileId, now_ms: u64) -> BTreeSet<MemberId> {
        let mut all = self.file_members(file, now_ms);
        all.extend(self.guests_of(file));
        all
    }

    /// Members who were ever granted a file (open grant or ended).
    pub fn ever_granted(&self, file: &FileId) -> BTreeSet<MemberId> {
        self.grants
            .range((*file, MemberId([0; 16]))..=(*file, MemberId([0xff; 16])))
            .map(|((_, m), _)| *m)
            .collect()
    }

    /// Members who may work in a file at `now_ms`: open grants, members of teams granted
    /// it, and covers in force.
    pub fn file_members(&self, file: &FileId, now_ms: u64) -> BTreeSet<MemberId> {
        self.file_members_where(file, true, |c| c.in_force(now_ms))
    }

    /// Members a new epoch key of a file is wrapped for, under their member keys, at
    /// `now_ms`: open grants, and covers from their grant until expiry (a cover that starts
    /// later finds its keys ready; the relay withholds them until the start). Teams granted
    /// the file hold it under their team keys instead ([`Self::file_teams`]).
    pub fn key_holders(&self, file: &FileId, now_ms: u64) -> BTreeSet<MemberId> {
        self.file_members_where(file, false, |c| c.holds_keys(now_ms))
    }

    fn file_members_where(
        &self,
        file: &FileId,
        include_teams: bool,
        cover: impl Fn(&Cover) -> bool,
    ) -> BTreeSet<MemberId> {
        let mut members: BTreeSet<MemberId> = self
            .grants
            .range((*file, MemberId([0; 16]))..=(*file, MemberId([0xff; 16])))
            .filter(|(_, v)| is_open(v))
            .map(|((_, m), _)| *m)
            .collect();
        if include_teams {
            for t in self.file_teams(file) {
                members.extend(self.team_members(&t));
            }
        }
        for c in self.covers.values() {
            if c.files.contains(file) && cover(c) && self.is_active(&c.colleague) {
                members.insert(c.colleague);
            }
        }
        members
    }

    /// Whether `device` could act for the firm at time `t_ms`.
    pub fn device_active_at(&self, device: &DeviceId, t_ms: u64) -> bool {
        self.devices.get(device).is_some_and(|d| {
            d.active.contains(t_ms)
                && self
                    .members
                    .get(&d.member)
                    .is_some_and(|m| m.active.contains(t_ms))
        })
    }

    /// Whether `device` was allowed to read `file` at time `t_ms`: the device was certified
    /// and not revoked, its member was in the firm, and the member held a grant for the file.
    pub fn was_allowed_to_read(&self, device: &DeviceId, file: &FileId, t_ms: u64) -> bool {
        let Some(d) = self.devices.get(device) else {
            return false;
        };
        self.device_active_at(device, t_ms) && self.had_access(file, &d.member, t_ms)
    }
}

/// Whether the last interval of a list is open.
fn is_open(intervals: &[Interval]) -> bool {
    intervals.last().is_some_and(|i| i.until.is_none())
}

/// Ends the open interval of a list, if there is one.
fn end_open(intervals: &mut [Interval], now: u64) {
    if let Some(last) = intervals.last_mut() {
        last.until.get_or_insert(now);
    }
}

/// Opens a new interval; `Duplicate` if one is open.
fn open_interval(intervals: &mut Vec<Interval>, now: u64, seq: u64) -> Result<(), RosterError> {
    if intervals.last().is_some_and(|i| i.until.is_none()) {
        return Err(RosterError::Duplicate { seq });
    }
    intervals.push(Interval {
        from: now,
        until: None,
    });
    Ok(())
}

/// Closes the open interval; `UnknownSubject` if none is open.
fn close_interval(
    intervals: Option<&mut Vec<Interval>>,
    now: u64,
    seq: u64,
) -> Result<(), RosterError> {
    let open = intervals
        .and_then(|v| v.last_mut())
        .filter(|i| i.until.is_none())
        .ok_or(RosterError::Unknown { seq })?;
    open.until = Some(now);
    Ok(())
}

fn require(cond: bool, err: RosterError) -> Result<(), RosterError> {
    if cond {
        Ok(())
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{DeviceSigningKey, DeviceWrapSecret};
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    struct Firm {
        rng: ChaCha20Rng,
        firm: FirmId,
        events: Vec<RosterEvent>,
        roster: Roster,
        owner: (MemberId, MasterSigningKey),
    }

    impl Firm {
        fn new() -> Self {
            let mut rng = ChaCha20Rng::seed_from_u64(9);
            let firm = FirmId::random(&mut rng);
            let owner = (
                MemberId::random(&mut rng),
                MasterSigningKey::generate(&mut rng),
            );
            let genesis = EventBody {
                firm,
                seq: 0,
                prev: [0; 32],
                timestamp_ms: 1000,
                signer: owner.0,
                kind: EventKind::Genesis {
                    owner_key: owner.1.verifying_key(),
                },
            }
            .sign(&owner.1);
            let roster = Roster::from_genesis(&genesis).unwrap();
            Self {
                rng,
                firm,
                events: vec![genesis],
                roster,
                owner,
            }
        }

        fn body(&self, t: u64, signer: MemberId, kind: EventKind) -> EventBody {
            EventBody {
                firm: self.firm,
                seq: self.roster.len(),
                prev: self.roster.head(),
                timestamp_ms: t,
                signer,
                kind,
            }
        }

        fn push(&mut self, t: u64, kind: EventKind) -> Result<(), RosterError> {
            let e = self.body(t, self.owner.0, kind).sign(&self.owner.1);
            self.roster.apply(&e)?;
            self.events.push(e);
            Ok(())
        }

        fn add_member(&mut self, t: u64, role: Role) -> (MemberId, MasterSigningKey) {
            let id = MemberId::random(&mut self.rng);
            let key = MasterSigningKey::generate(&mut self.rng);
            self.push(
                t,
                EventKind::MemberAdded {
                    member: id,
                    master_key: key.verifying_key(),
                    role,
                },
            )
            .unwrap();
            (id, key)
        }

        fn add_device(&mut self, t: u64, member: MemberId, master: &MasterSigningKey) -> DeviceId {
            let id = DeviceId::random(&mut self.rng);
            let keys = DeviceKeys {
                signing: DeviceSigningKey::generate(&mut self.rng).verifying_key(),
                identity: [7; 32],
                wrap: DeviceWrapSecret::generate(&mut self.rng).public_key(),
            };
            let cert = DeviceCertificate::issue(self.firm, member, id, keys, master);
            self.push(t, EventKind::DeviceAdded(cert)).unwrap();
            id
        }
    }

    #[test]
    fn guests_are_bound_to_one_file_and_hold_nothing_else() {
        let mut f = Firm::new();
        let (anna, _) = f.add_member(2000, Role::Member);
        let (a, b) = (FileId([0xa; 16]), FileId([0xb; 16]));
        f.push(
            3000,
            EventKind::FileAccessGranted {
                file: a,
                member: anna,
            },
        )
        .unwrap();
        let guest = MemberId([0x6; 16]);
        let key = MasterSigningKey::generate(&mut f.rng);
        let added = |file| EventKind::GuestAdded {
            member: guest,
            master_key: key.verifying_key(),
            file,
        };
        // Only a file the firm has.
        assert!(matches!(
            f.push(4000, added(b)),
            Err(RosterError::Unknown { .. })
        ));
        f.push(4000, added(a)).unwrap();
        let laptop = f.add_device(4100, guest, &key);
        assert_eq!(f.roster.member(&guest).unwrap().role, Role::Guest);
        assert_eq!(f.roster.guest_file(&guest), Some(a));
        assert_eq!(f.roster.guests_of(&a), BTreeSet::from([guest]));
        assert_eq!(f.roster.file_members(&a, 5000), BTreeSet::from([anna]));
        assert_eq!(
            f.roster.conversation_members(&a, 5000),
            BTreeSet::from([anna, guest])
        );
        assert!(!f.roster.was_allowed_to_read(&laptop, &a, 5000));
        // Nothing else may ever come to a guest.
        for kind in [
            EventKind::FileAccessGranted {
                file: a,
                member: guest,
            },
            EventKind::RoleChanged {
                member: guest,
                role: Role::Member,
            },
            EventKind::RoleChanged {
                member: anna,
                role: Role::Guest,
            },
            EventKind::MemberAdded {
                member: MemberId([0x7; 16]),
                master_key: key.verifying_key(),
                role: Role::Guest,
            },
            EventKind::CoverGranted {
                absent: anna,
                colleague: guest,
                from_ms: 5000,
                until_ms: 9000,
            },
        ] {
            assert!(
                matches!(
                    f.push(5000, kind.clone()),
                    Err(RosterError::Unauthorized { .. })
                ),
                "{kind:?}"
            );
        }
        // The id is taken, also by a second GuestAdded.
        assert!(matches!(
            f.push(5000, added(a)),
            Err(RosterError::Duplicate { .. })
        ));
        // The role byte 4 does not decode in MemberAdded.
        let mut forged = f
            .body(
                5000,
                f.owner.0,
                EventKind::MemberAdded {
                    member: MemberId([0x8; 16]),
                    master_key: key.verifying_key(),
                    role: Role::Member,
                },
            )
            .sign(&f.owner.1)
            .to_bytes();
        let role_at = forged.len() - 64 - 1;
        forged[role_at] = 4;
        assert!(RosterEvent::from_bytes(&forged).is_err());
        // Removing the guest ends their conversation; no file key is exposed by it.
        let remove = EventKind::MemberRemoved { member: guest };
        assert_eq!(
            f.roster.exposed_by(&remove),
            (BTreeSet::new(), BTreeSet::new())
        );
        f.push(6000, remove).unwrap();
        assert!(f.roster.guests_of(&a).is_empty());
        // Encoding round trip of the new kind.
        let e = f.body(7000, f.owner.0, added(a)).sign(&f.owner.1);
        assert_eq!(RosterEvent::from_bytes(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn teams_give_access_over_time_and_their_changes_expose_what_they_must() {
        let mut f = Firm::new();
        let (anna, anna_key) = f.add_member(2000, Role::Member);
        let (jan, _) = f.add_member(2000, Role::Member);
        let (audit, _) = f.add_member(2000, Role::Auditor);
        let laptop = f.add_device(2500, anna, &anna_key);
        let payroll = TeamId([1; 16]);
        let vat = TeamId([2; 16]);
        let (a, b) = (FileId([0xa; 16]), FileId([0xb; 16]));
        let name = team_name_commitment(&payroll, &[3; 16], "Płace");
        f.push(
            3000,
            EventKind::TeamCreated {
                team: payroll,
                name,
            },
        )
        .unwrap();
        let e = f
            .push(
                3000,
                EventKind::TeamCreated {
                    team: payroll,
                    name,
                },
            )
            .unwrap_err();
        assert_eq!(e.class(), "Duplicate");
        let e = f
            .push(
                3000,
                EventKind::TeamRenamed {
                    team: payroll,
                    name,
                },
            )
            .unwrap_err();
        assert_eq!(e.class(), "Duplicate");
        let renamed = team_name_commitment(&payroll, &[4; 16], "Kadry i płace");
        f.push(
            3000,
            EventKind::TeamRenamed {
                team: payroll,
                name: renamed,
            },
        )
        .unwrap();
        assert_eq!(f.roster.team(&payroll).unwrap().name, renamed);
        let e = f
            .push(
                3000,
                EventKind::TeamMemberAdded {
                    team: payroll,
                    member: audit,
                },
            )
            .unwrap_err();
        assert_eq!(e.class(), "NonAdminSigner", "an auditor never reads a file");
        let e = f
            .push(3000, EventKind::FileTeamGranted { file: a, team: vat })
            .unwrap_err();
        assert_eq!(e.class(), "UnknownSubject");
        for member in [anna, jan] {
            f.push(
                4000,
                EventKind::TeamMemberAdded {
                    team: payroll,
                    member,
                },
            )
            .unwrap();
        }
        for file in [a, b] {
            f.push(
                5000,
                EventKind::FileTeamGranted {
                    file,
                    team: payroll,
                },
            )
            .unwrap();
        }
        // Anna also holds file B directly.
        f.push(
            5000,
            EventKind::FileAccessGranted {
                file: b,
                member: anna,
            },
        )
        .unwrap();
        let r = &f.roster;
        assert_eq!(r.files_of(&anna, 6000), BTreeSet::from([a, b]));
        assert_eq!(r.file_members(&a, 6000), BTreeSet::from([anna, jan]));
        assert_eq!(r.key_holders(&a, 6000), BTreeSet::new());
        assert_eq!(r.key_holders(&b, 6000), BTreeSet::from([anna]));
        assert_eq!(r.file_teams(&a), BTreeSet::from([payroll]));
        assert_eq!(
            r.team_key_holders(&payroll),
            BTreeSet::from([anna, jan, f.owner.0]),
            "members and admins hold the team key"
        );
        assert!(r.was_allowed_to_read(&laptop, &a, 5000));
        assert!(
            !r.was_allowed_to_read(&laptop, &a, 4999),
            "before the team's grant"
        );
        // Removing Anna from the team: the team key is exposed, and file A (B she keeps).
        let leave = EventKind::TeamMemberRemoved {
            team: payroll,
            member: anna,
        };
        assert_eq!(r.exposed_by(&leave), (BTreeSet::new(), BTreeSet::from([a])));
        assert_eq!(r.teams_exposed_by(&leave), BTreeSet::from([payroll]));
        // Revoking Jan: his member key, both team files, the team key.
        let out = EventKind::MemberRemoved { member: jan };
        assert_eq!(r.exposed_by(&out).1, BTreeSet::from([a, b]));
        assert_eq!(r.teams_exposed_by(&out), BTreeSet::from([payroll]));
        f.push(7000, leave).unwrap();
        let r = &f.roster;
        assert!(!r.was_allowed_to_read(&laptop, &a, 7000));
        assert!(r.was_allowed_to_read(&laptop, &a, 6999));
        assert!(
            r.was_allowed_to_read(&laptop, &b, 7000),
            "her own grant stays"
        );
        assert!(r.access_ends().contains(&(a, anna, 7000)));
        assert!(
            !r.access_ends()
                .iter()
                .any(|(f, m, _)| *f == b && *m == anna),
            "no access to B ended"
        );
        assert_eq!(r.last_access_end(&a, 8000), Some(7000));
        // Deleting the team ends Jan's access to both files; the id is never reused.
        let delete = EventKind::TeamDeleted { team: payroll };
        assert_eq!(r.exposed_by(&delete).1, BTreeSet::from([a, b]));
        f.push(8000, delete).unwrap();
        let r = &f.roster;
        assert!(r.file_members(&a, 9000).is_empty());
        assert_eq!(r.file_members(&b, 9000), BTreeSet::from([anna]));
        assert!(r.team_key_holders(&payroll).is_empty());
        assert!(r.access_ends().contains(&(a, jan, 8000)));
        assert!(r.access_ends().contains(&(b, jan, 8000)));
        let e = f
            .push(
                9000,
                EventKind::TeamCreated {
                    team: payroll,
                    name,
                },
            )
            .unwrap_err();
        assert_eq!(e.class(), "EventAfterRevocation");
        let e = f
            .push(
                9000,
                EventKind::TeamMemberAdded {
                    team: payroll,
                    member: jan,
                },
            )
            .unwrap_err();
        assert_eq!(e.class(), "EventAfterRevocation");
        // Every team event survives encoding.
        for e in &f.events {
            assert_eq!(&RosterEvent::from_bytes(&e.to_bytes()).unwrap(), e);
        }
        assert!(Roster::verify_chain(&f.events).is_ok());
    }

    #[test]
    fn an_auditor_is_never_granted_a_file() {
        let mut f = Firm::new();
        let (audit, _) = f.add_member(2000, Role::Auditor);
        let file = FileId([6; 16]);
        let e = f
            .push(
                3000,
                EventKind::FileAccessGranted {
                    file,
                    member: audit,
                },
            )
            .unwrap_err();
        assert_eq!(e.class(), "NonAdminSigner");
        assert_eq!(f.roster.member(&audit).unwrap().role, Role::Auditor);
    }

    #[test]
    fn access_follows_grants_and_revocations_over_time() {
        let mut f = Firm::new();
        let (anna, anna_key) = f.add_member(2000, Role::Member);
        let laptop = f.add_device(3000, anna, &anna_key);
        let file = FileId([5; 16]);
        f.push(4000, EventKind::FileAccessGranted { file, member: anna })
            .unwrap();
        f.push(5000, EventKind::FileAccessRemoved { file, member: anna })
            .unwrap();
        f.push(6000, EventKind::FileAccessGranted { file, member: anna })
            .unwrap();
        f.push(7000, EventKind::DeviceRevoked { device: laptop })
            .unwrap();

        let r = &f.roster;
        assert!(!r.was_allowed_to_read(&laptop, &file, 3999));
        assert!(r.was_allowed_to_read(&laptop, &file, 4000));
        assert!(!r.was_allowed_to_read(&laptop, &file, 5000));
        assert!(r.was_allowed_to_read(&laptop, &file, 6500));
        assert!(!r.was_allowed_to_read(&laptop, &file, 7000));
        assert_eq!(r.file_members(&file, 8000), BTreeSet::from([anna]));
        assert_eq!(r.files_of(&anna, 8000), BTreeSet::from([file]));
        assert_eq!(r.files(), BTreeSet::from([file]));

        let again = Roster::verify_chain(&f.events).unwrap();
        assert_eq!(again.head(), f.roster.head());
    }

    #[test]
    fn the_log_key_is_recorded_by_admins_and_replaced_in_order() {
        let mut f = Firm::new();
        let (anna, anna_key) = f.add_member(2000, Role::Member);
        let k1 = DeviceSigningKey::generate(&mut rand_core::OsRng).verifying_key();
        let k2 = DeviceSigningKey::generate(&mut rand_core::OsRng).verifying_key();
        assert_eq!(f.roster.log_key(), None);
        let e = f
            .body(2100, anna, EventKind::LogKeySet { key: k1 })
            .sign(&anna_key);
        assert_eq!(f.roster.apply(&e).unwrap_err().class(), "NonAdminSigner");
        f.push(2200, EventKind::LogKeySet { key: k1 }).unwrap();
        assert_eq!(
            f.push(2300, EventKind::LogKeySet { key: k1 })
                .unwrap_err()
                .class(),
            "Duplicate"
        );
        f.push(2400, EventKind::LogKeySet { key: k2 }).unwrap();
        assert_eq!(f.roster.log_key(), Some(k2));
        assert_eq!(f.roster.log_keys().len(), 2);
    }

    #[test]
    fn retention_policies_are_set_by_admins_for_granted_files_and_kept_in_order() {
        let mut f = Firm::new();
        let (anna, anna_key) = f.add_member(2000, Role::Member);
        let file = FileId([1; 16]);
        let policy = |chat_months, docs_years, legal_hold| RetentionPolicy {
            chat_months,
            docs_years,
            legal_hold,
        };
        let set = |p| EventKind::RetentionSet { file, policy: p };
        // Not before the file was ever granted.
        assert_eq!(
            f.push(2500, set(policy(12, 5, false))).unwrap_err().class(),
            "BadRetention"
        );
        f.push(3000, EventKind::FileAccessGranted { file, member: anna })
            .unwrap();
        assert_eq!(
            f.push(
                3100,
                set(policy(crate::retention::MAX_CHAT_MONTHS + 1, 5, false))
            )
            .unwrap_err()
            .class(),
            "BadRetention"
        );
        let first = f.roster.len();
        f.push(3200, set(policy(12, 5, false))).unwrap();
        assert_eq!(
            f.push(3300, set(policy(12, 5, false))).unwrap_err().class(),
            "Duplicate"
        );
        // A member may not set one.
        let e = f.body(3400, anna, set(policy(1, 1, false))).sign(&anna_key);
        assert_eq!(f.roster.apply(&e).unwrap_err().class(), "NonAdminSigner");
        let held = f.roster.len();
        f.push(3500, set(policy(12, 5, true))).unwrap();
        assert_eq!(f.roster.retention(&file), Some((held, policy(12, 5, true))));
        assert_eq!(
            f.roster.retention_within(&file, held),
            Some((first, policy(12, 5, false)))
        );
        assert_eq!(f.roster.retention_within(&file, first), None);
        assert_eq!(f.roster.retention_policies().count(), 1);
    }

    #[test]
    fn an_absence_cover_opens_the_absent_members_files_for_its_window_only() {
        let mut f = Firm::new();
        let (anna, anna_key) = f.add_member(2000, Role::Member);
        let (bob, bob_key) = f.add_member(2100, Role::Member);
        let _ = f.add_device(2200, anna, &anna_key);
        let bob_laptop = f.add_device(2300, bob, &bob_key);
        let (f1, f2, f3) = (FileId([1; 16]), FileId([2; 16]), FileId([3; 16]));
        for (file, member) in [(f1, anna), (f2, anna), (f2, bob), (f3, bob)] {
            f.push(3000, EventKind::FileAccessGranted { file, member })
                .unwrap();
        }
        let cover = |from_ms, until_ms| EventKind::CoverGranted {
            absent: anna,
            colleague: bob,
            from_ms,
            until_ms,
        };
        // Refused: for oneself, a window that ends before it starts or before the event.
        let bad = EventKind::CoverGranted {
            absent: bob,
            colleague: bob,
            from_ms: 5000,
            until_ms: 9000,
        };
        assert_eq!(f.push(4000, bad).unwrap_err().class(), "BadCover");
        assert_eq!(
            f.push(4000, cover(9000, 5000)).unwrap_err().class(),
            "BadCover"
        );
        assert_eq!(
            f.push(4000, cover(1000, 3999)).unwrap_err().class(),
            "BadCover"
        );
        let seq = f.roster.len();
        f.push(4000, cover(5000, 9000)).unwrap();
        let r = &f.roster;
        // Keys are wrapped for Bob from the grant; he may work in Anna's files from 5000.
        assert_eq!(r.key_holders(&f1, 4000), BTreeSet::from([anna, bob]));
        assert_eq!(r.file_members(&f1, 4000), BTreeSet::from([anna]));
        assert_eq!(r.file_members(&f1, 5000), BTreeSet::from([anna, bob]));
        assert_eq!(r.files_of(&bob, 4999), BTreeSet::from([f2, f3]));
        assert_eq!(r.files_of(&bob, 5000), BTreeSet::from([f1, f2, f3]));
        assert!(!r.was_allowed_to_read(&bob_laptop, &f1, 4999));
        assert!(r.was_allowed_to_read(&bob_laptop, &f1, 8999));
        // Expiry by itself, on any clock past it.
        assert!(!r.was_allowed_to_read(&bob_laptop, &f1, 9000));
        assert_eq!(r.file_members(&f1, 9000), BTreeSet::from([anna]));
        assert_eq!(r.key_holders(&f1, 9000), BTreeSet::from([anna]));
        assert!(r.cover(seq).unwrap().expired_unrotated(9000));
        // Its end exposes the files Bob held only through the cover.
        let end = EventKind::CoverEnded { cover: seq };
        assert_eq!(r.exposed_by(&end), (BTreeSet::new(), BTreeSet::from([f1])));
        assert!(r.access_ends().contains(&(f1, bob, 9000)));
        assert_eq!(r.last_access_end(&f1, 8999), None);
        assert_eq!(r.last_access_end(&f1, 9000), Some(9000));
        assert!(!r.access_ends().iter().any(|(f, _, _)| *f == f2));
        f.push(9500, end.clone()).unwrap();
        assert_eq!(f.push(9600, end).unwrap_err().class(), "Duplicate");
        assert_eq!(
            f.push(9600, EventKind::CoverEnded { cover: 1 })
                .unwrap_err()
                .class(),
            "UnknownSubject"
        );
        assert!(!f.roster.cover(seq).unwrap().expired_unrotated(10_000));
        assert_eq!(
            f.roster.exposed_by(&EventKind::CoverEnded { cover: seq }).1,
            BTreeSet::new()
        );

        // Ended early: access stops at the event, not at the expiry.
        let early = f.roster.len();
        f.push(10_000, cover(0, 20_000)).unwrap();
        assert!(f.roster.was_allowed_to_read(&bob_laptop, &f1, 10_000));
        f.push(12_000, EventKind::CoverEnded { cover: early })
            .unwrap();
        assert!(!f.roster.was_allowed_to_read(&bob_laptop, &f1, 12_000));
        assert!(f.roster.access_ends().contains(&(f1, bob, 12_000)));
        // Only an admin grants a cover.
        let e = f.body(13_000, bob, cover(13_000, 20_000)).sign(&bob_key);
        assert_eq!(f.roster.apply(&e).unwrap_err().class(), "NonAdminSigner");
        let again = Roster::verify_chain(&f.events).unwrap();
        assert_eq!(again.head(), f.roster.head());
    }

    #[test]
    fn rules_are_enforced() {
        let mut f = Firm::new();
        let (bob, bob_key) = f.add_member(2000, Role::Member);
        // A non-admin may not add members.
        let e = f
            .body(
                2100,
                bob,
                EventKind::MemberAdded {
                    member: MemberId([9; 16]),
                    master_key: bob_key.verifying_key(),
                    role: Role::Admin,
                },
            )
            .sign(&bob_key);
        assert_eq!(
            f.roster.apply(&e),
            Err(RosterError::Unauthorized { seq: 2 })
        );
        // The last admin cannot leave.
        assert_eq!(
            f.push(2200, EventKind::MemberRemoved { member: f.owner.0 }),
            Err(RosterError::LastAdmin { seq: 2 })
        );
        f.push(2300, EventKind::MemberRemoved { member: bob })
            .unwrap();
        // Nothing may refer to a removed member.
        assert_eq!(
            f.push(
                2400,
                EventKind::FileAccessGranted {
                    file: FileId([1; 16]),
                    member: bob
                }
            ),
            Err(RosterError::AfterRevocation { seq: 3 })
        );
        // Time may not go backwards.
        assert_eq!(
            f.push(
                100,
                EventKind::FileAccessGranted {
                    file: FileId([1; 16]),
                    member: f.owner.0
                }
            ),
            Err(RosterError::TimeReversed { seq: 3 })
        );
    }

    proptest! {
        #[test]
        fn event_round_trip_and_bit_flips(bit in 0usize..2000) {
            let mut f = Firm::new();
            let (anna, key) = f.add_member(2000, Role::Member);
            f.add_device(3000, anna, &key);
            let event = f.events.last().unwrap().clone();
            let bytes = event.to_bytes();
            prop_assert_eq!(RosterEvent::from_bytes(&bytes).unwrap(), event.clone());

            let mut flipped = bytes.clone();
            let bit = bit % (bytes.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            let mut before = Roster::verify_chain(&f.events[..f.events.len() - 1]).unwrap();
            let accepted = RosterEvent::from_bytes(&flipped).map(|e| before.apply(&e).is_ok()).unwrap_or(false);
            prop_assert!(!accepted);
        }
    }
}
