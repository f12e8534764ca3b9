//! Storage behind a trait (`Store`), so that the handlers never see SQL. The rules live
//! once in [`sql`]; [`sqlite`] (the embedded default) and [`postgres`] (scale-out) run
//! them, and both pass the conformance suite of [`conformance`].
//!
//! The store holds only opaque ids, ciphertext, wrapped keys, signed roster events and
//! audit leaves. It never interprets content.

pub use ledgerline_protocol::audit::SweptDocument;
use ledgerline_protocol::ids::{DeviceId, DocumentId, FileId, FirmId, MemberId, RecordId, TeamId};
pub use ledgerline_protocol::wrap::Holder;
use std::future::Future;

pub mod conformance;
pub mod postgres;
pub mod sql;
pub mod sqlite;

/// Opaque room id (16 bytes).
pub type RoomId = [u8; 16];

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The thing exists already (firm, room, roster position, document).
    #[error("already exists")]
    Exists,
    /// A record write based on a stale version.
    #[error("version conflict: current version is {current}")]
    VersionConflict {
        /// The stored version (0 if none).
        current: u64,
    },
    /// The referenced thing does not exist.
    #[error("not found")]
    NotFound,
    /// A write under an epoch older than the file's newest, or (`rotating`) below the
    /// epoch a revocation made due, which does not exist yet.
    #[error("stale key epoch: the file's newest is {newest}")]
    StaleEpoch {
        /// The file's newest epoch.
        newest: u64,
        /// A revocation exposed the file's key and its new epoch is not there yet.
        rotating: bool,
    },
    /// An epoch-key wrap under a team key that is not the team's newest, or whose
    /// rotation a roster event made due.
    #[error("stale team key: team {team}")]
    StaleTeamKey {
        /// The team.
        team: TeamId,
    },
    /// The disk under the store is full: nothing of the write was stored.
    #[error("the relay's disk is full")]
    Full,
    /// The backend failed.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Whether an error means the disk takes no more: SQLite's `SQLITE_FULL` or
/// `SQLITE_IOERR_WRITE` (what SQLite reports for `ENOSPC` and for `EFBIG`, a file that may
/// grow no larger), or such an I/O error from the blob store.
pub fn is_storage_full(err: &dyn std::any::Any) -> bool {
    if let Some(rusqlite::Error::SqliteFailure(e, _)) = err.downcast_ref::<rusqlite::Error>() {
        return e.code == rusqlite::ErrorCode::DiskFull
            || e.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE;
    }
    if let Some(e) = err.downcast_ref::<std::io::Error>() {
        return matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge
        );
    }
    matches!(err.downcast_ref::<StoreError>(), Some(StoreError::Full))
}

/// What a roster event makes due: new epochs of these files, new versions of these
/// teams' keys, before anything is written or wrapped under the exposed keys again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationDue {
    /// Files whose next write needs a new epoch.
    pub files: Vec<FileId>,
    /// Teams whose key must get a new version before it wraps an epoch key again.
    pub teams: Vec<TeamId>,
}

/// A member's backup key as the relay stores it (`protocol-spec/recovery.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupKey {
    /// Where a fresh device finds the backup (derived from the recovery key).
    pub recovery_id: [u8; 16],
    /// The X25519 public key items are sealed to.
    pub key: [u8; 32],
    /// The member's master-key signature over it.
    pub signature: [u8; 64],
}

/// One sealed backup item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupItem {
    /// Kind (`recovery::ItemKind`).
    pub kind: u8,
    /// Id within the kind.
    pub item: Vec<u8>,
    /// Sealed to the backup key.
    pub sealed: Vec<u8>,
}

/// A team key wrapped for one holder (a team member or an admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamKeyWrap {
    /// Team.
    pub team: TeamId,
    /// Version of the team key.
    pub version: u32,
    /// Holder whose member key wraps it.
    pub member: MemberId,
    /// Version of that member key.
    pub member_key_version: u32,
    /// Wrapped key (73 bytes).
    pub wrapped: Vec<u8>,
}

/// A to-device message waiting for its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToDevice {
    /// Increasing id, the acknowledgement cursor.
    pub id: u64,
    /// Sending device.
    pub sender: DeviceId,
    /// Olm ciphertext.
    pub ciphertext: Vec<u8>,
    /// Relay time of receipt.
    pub created_ms: u64,
}

/// A room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Id.
    pub id: RoomId,
    /// Customer file whose access decides membership, if any.
    pub file: Option<FileId>,
    /// Creator.
    pub created_by: MemberId,
    /// Explicit members (rooms without a file).
    pub members: Vec<MemberId>,
}

/// A stored room message: what a history page carries (position from 1, sending device,
/// Megolm ciphertext, relay time of receipt).
pub use ledgerline_protocol::history::PageMessage as Message;

/// A stored record version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Record id.
    pub record: RecordId,
    /// Version.
    pub version: u64,
    /// Change cursor (per firm, increasing).
    pub cursor: u64,
    /// Encoded record envelope.
    pub envelope: Vec<u8>,
}

/// A member key wrapped for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberKeyWrap {
    /// Member.
    pub member: MemberId,
    /// Key version.
    pub key_version: u32,
    /// Recipient device.
    pub device: DeviceId,
    /// Wrapped key.
    pub wrapped: Vec<u8>,
}

/// An epoch key wrapped for a member or a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochKeyWrap {
    /// Epoch.
    pub epoch: u64,
    /// Holder.
    pub holder: Holder,
    /// Version of the holder's key (member key or team key).
    pub holder_key_version: u32,
    /// Wrapped key.
    pub wrapped: Vec<u8>,
}

/// Metadata of a stored document (the ciphertext is in the blob store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentMeta {
    /// Document.
    pub document: DocumentId,
    /// Customer file it belongs to.
    pub file: FileId,
    /// Epoch of its key.
    pub epoch: u64,
    /// Ciphertext size.
    pub size: u64,
    /// SHA-256 of the ciphertext.
    pub sha256: [u8; 32],
    /// Relay-held release share.
    pub release_share: [u8; 32],
    /// Uploading device.
    pub uploaded_by: DeviceId,
    /// The year the document concerns (retention counts from its end).
    pub year: u16,
    /// Which stored copy holds the bytes: the random name the winning upload wrote them
    /// under, or `None` for the document's own name (documents stored before copies were
    /// named, and multipart uploads into a bucket) (`crate::blobs`).
    pub blob: Option<[u8; 16]>,
}

/// An open upload and the SHA-256 of each part recorded so far, in order.
pub type OpenUpload = (UploadSession, Vec<[u8; 32]>);

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    /// Document.
    pub document: DocumentId,
    /// Customer file.
    pub file: FileId,
    /// Epoch of its key.
    pub epoch: u64,
    /// Relay-held release share.
    pub release_share: [u8; 32],
    /// Announced ciphertext size.
    pub size: u64,
    /// Part size.
    pub part_size: u64,
    /// Uploading device.
    pub uploaded_by: DeviceId,
    /// The year the document concerns.
    pub year: u16,
}

/// An encoded audit leaf (`protocol-spec/audit-log.md`) describing a change: a backend
/// appends it to the firm's log in the same transaction as the change, and only when the
/// change succeeds.
pub type AuditEntry = Vec<u8>;

/// What one retention sweep step may delete from a customer file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPlan {
    /// The file (its conversation room has the same id).
    pub file: FileId,
    /// Messages received before this instant go; `None`: no message goes.
    pub chat_before_ms: Option<u64>,
    /// Documents concerning this year or earlier go; `None`: no document goes.
    pub docs_through_year: Option<u16>,
    /// Most documents in one step.
    pub max_documents: usize,
}

/// What a sweep step deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Messages deleted.
    pub messages: u64,
    /// Highest sequence number deleted (0: none).
    pub through_seq: u64,
    /// The cutoff applied when messages were deleted (0: none).
    pub chat_before_ms: u64,
    /// Documents deleted, by id.
    pub documents: Vec<SweptDocument>,
}

/// Builds the tombstone leaf of a sweep step from what it deleted.
pub type SweepLeaf = Box<dyn FnOnce(&Swept) -> AuditEntry + Send>;

/// Sizes for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of ciphertext and wrapped keys stored (excluding blobs).
    pub stored_bytes: u64,
    /// Audit leaves across firms.
    pub audit_leaves: u64,
}

/// The relay's storage. Methods are async; a backend that blocks (SQLite) must do its work
/// off the async threads.
pub trait Store: Send + Sync + 'static {
    /// Creates a firm with its first roster events (genesis first). `Exists` if present.
    fn create_firm(
        &self,
        firm: FirmId,
        events: Vec<Vec<u8>>,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// All firms.
    fn firms(&self) -> impl Future<Output = Result<Vec<FirmId>, StoreError>> + Send;
    /// Roster events from `from_seq` on, in order.
    fn roster_events(
        &self,
        firm: FirmId,
        from_seq: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;
    /// Appends the event at `seq`; `Exists` if that position is taken.
    fn append_roster_event(
        &self,
        firm: FirmId,
        seq: u64,
        event: Vec<u8>,
        due: RotationDue,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores prekeys `(kind, key_id, encoded)`; a new fallback key replaces the old one.
    fn put_prekeys(
        &self,
        firm: FirmId,
        device: DeviceId,
        keys: Vec<(u8, u32, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes one one-time key (deleting it), or else returns the fallback key.
    fn claim_prekey(
        &self,
        firm: FirmId,
        device: DeviceId,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Number of one-time keys left.
    fn count_one_time_keys(
        &self,
        firm: FirmId,
        device: DeviceId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Queues to-device messages `(recipient, ciphertext)`; returns their ids.
    fn send_to_device(
        &self,
        firm: FirmId,
        sender: DeviceId,
        messages: Vec<(DeviceId, Vec<u8>)>,
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send;
    /// Messages for `recipient` with id above `after`.
    fn pending_to_device(
        &self,
        firm: FirmId,
        recipient: DeviceId,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ToDevice>, StoreError>> + Send;
    /// Deletes messages for `recipient` up to and including `up_to`; returns how many.
    fn ack_to_device(
        &self,
        firm: FirmId,
        recipient: DeviceId,
        up_to: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Deletes everything queued for a revoked device, and its prekeys.
    fn forget_device(
        &self,
        firm: FirmId,
        device: DeviceId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates a room; `Exists` if present.
    fn create_room(
        &self,
        firm: FirmId,
        room: Room,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A room.
    fn room(
        &self,
        firm: FirmId,
        room: RoomId,
    ) -> impl Future<Output = Result<Option<Room>, StoreError>> + Send;
    /// Replaces the explicit member list of a room; `NotFound` if there is no such room.
    fn set_room_members(
        &self,
        firm: FirmId,
        room: RoomId,
        members: Vec<MemberId>,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Appends a message; returns its sequence number.
    fn append_message(
        &self,
        firm: FirmId,
        room: RoomId,
        sender: DeviceId,
        ciphertext: Vec<u8>,
        now_ms: u64,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Messages with `seq >= from`, at most `limit`.
    fn messages(
        &self,
        firm: FirmId,
        room: RoomId,
        from: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Message>, StoreError>> + Send;
    /// A history page in one read: the room ([`Store::room`]; `None` for no room), its
    /// [`Store::messages`], then [`Store::room_next_seq`] (so the number is past every
    /// message of the page). The caller checks access before anything leaves.
    fn message_page(
        &self,
        firm: FirmId,
        room: RoomId,
        from: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Option<(Room, Vec<Message>, u64)>, StoreError>> + Send;

    /// Stores `version` of a record if the stored version is `version - 1` (0 = none);
    /// returns the change cursor, or `VersionConflict`.
    #[allow(clippy::too_many_arguments)]
    fn put_record(
        &self,
        firm: FirmId,
        file: FileId,
        record: RecordId,
        version: u64,
        epoch: u64,
        author: DeviceId,
        envelope: Vec<u8>,
        now_ms: u64,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Records of a file changed after `cursor`, in cursor order.
    fn records_since(
        &self,
        firm: FirmId,
        file: FileId,
        cursor: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, StoreError>> + Send;

    /// Stores (or replaces) a member-key wrap.
    fn put_member_key_wrap(
        &self,
        firm: FirmId,
        wrap: MemberKeyWrap,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Member-key wraps addressed to a device.
    /// Member-key wraps addressed to `device` stored at or after cursor `since`, with
    /// their cursors, in cursor order. A wrap's cursor is the audit-log index of the write
    /// that stored it.
    fn member_key_wraps_for(
        &self,
        firm: FirmId,
        device: DeviceId,
        since: u64,
    ) -> impl Future<Output = Result<Vec<(u64, MemberKeyWrap)>, StoreError>> + Send;
    /// Stores version `version` of a team's key whole: a wrap for every holder.
    /// `VersionConflict` (with the newest version, 0 if none) unless `version` is exactly
    /// one past the newest; clears the team's rotation due.
    fn put_team_key_version(
        &self,
        firm: FirmId,
        team: TeamId,
        version: u32,
        wraps: Vec<TeamKeyWrap>,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores (or replaces) one wrap of the team's newest key version (for a member who
    /// joined the team, or a new admin); `VersionConflict` if the version is not the newest.
    fn put_team_key_wrap(
        &self,
        firm: FirmId,
        wrap: TeamKeyWrap,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Team-key wraps held by `member` stored at or after cursor `since`, with their
    /// cursors, in cursor order.
    fn team_key_wraps_for(
        &self,
        firm: FirmId,
        member: MemberId,
        since: u64,
    ) -> impl Future<Output = Result<Vec<(u64, TeamKeyWrap)>, StoreError>> + Send;
    /// Stores (or replaces) an epoch-key wrap. A team's wrap must be under the team's
    /// newest key version with no rotation due (`StaleTeamKey`).
    fn put_epoch_key_wrap(
        &self,
        firm: FirmId,
        file: FileId,
        wrap: EpochKeyWrap,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Epoch-key wraps of a file held by a member or a team, stored at or after cursor
    /// `since`, with their cursors, in cursor order.
    fn epoch_key_wraps(
        &self,
        firm: FirmId,
        file: FileId,
        holder: Holder,
        since: u64,
    ) -> impl Future<Output = Result<Vec<(u64, EpochKeyWrap)>, StoreError>> + Send;
    /// Starts epoch `epoch` of a file in one transaction: its chain link (wrapping the
    /// previous epoch's key) and its key wrapped for every holder. `Exists` if the epoch
    /// has a link already; `VersionConflict` (with the current epoch) unless `epoch` is
    /// exactly one past the newest epoch with a wrap; `StaleTeamKey` for a team's wrap not
    /// under its newest key. Nothing is stored on error.
    fn start_epoch(
        &self,
        firm: FirmId,
        file: FileId,
        epoch: u64,
        link: Vec<u8>,
        wraps: Vec<EpochKeyWrap>,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Chain links of a file `(epoch, wrapped)`.
    /// Chain links of a file stored at or after cursor `since`: `(cursor, epoch, wrapped)`
    /// in cursor order.
    fn epoch_links(
        &self,
        firm: FirmId,
        file: FileId,
        since: u64,
    ) -> impl Future<Output = Result<Vec<(u64, u64, Vec<u8>)>, StoreError>> + Send;

    /// Records a document whose blob is stored; `Exists` if the id is taken.
    fn put_document(
        &self,
        firm: FirmId,
        meta: DocumentMeta,
        now_ms: u64,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Opens a multipart upload; `Exists` if one is open for the id.
    fn begin_upload(
        &self,
        firm: FirmId,
        upload: UploadSession,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// An open upload and the hashes of its recorded parts, in order.
    fn upload(
        &self,
        firm: FirmId,
        document: DocumentId,
    ) -> impl Future<Output = Result<Option<OpenUpload>, StoreError>> + Send;
    /// Records part `n`; `VersionConflict { current }` unless exactly `n` parts are
    /// recorded (`current` of them).
    fn add_upload_part(
        &self,
        firm: FirmId,
        document: DocumentId,
        n: u64,
        sha256: [u8; 32],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets parts from `keep` on (their bytes did not survive a crash).
    fn truncate_upload(
        &self,
        firm: FirmId,
        document: DocumentId,
        keep: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records the completed document and closes its upload, in one transaction;
    /// `Exists` if the document id is taken.
    fn finish_upload(
        &self,
        firm: FirmId,
        meta: DocumentMeta,
        now_ms: u64,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Erases a customer file (GDPR): its records, documents, uploads, epoch-key wraps,
    /// chain links, pending rotation and conversation go, it is marked erased for good,
    /// and `audit` is appended, all in one transaction. Returns the documents whose blobs
    /// (whole or partial) the caller deletes next. `Exists` if it was erased already.
    fn erase_file(
        &self,
        firm: FirmId,
        file: FileId,
        now_ms: u64,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<Vec<DocumentId>, StoreError>> + Send;
    /// One step of a retention sweep (`protocol-spec/retention.md`): deletes the file's
    /// conversation messages received before `plan.chat_before_ms` and up to
    /// `plan.max_documents` documents (lowest ids first) concerning `plan.docs_through_year`
    /// or earlier, and, if anything went, appends `leaf(&swept)`, all in one transaction.
    /// Nothing happens for an erased file. The caller deletes the documents' blobs next
    /// and repeats while a full batch of documents went.
    fn sweep_file(
        &self,
        firm: FirmId,
        plan: SweepPlan,
        leaf: SweepLeaf,
    ) -> impl Future<Output = Result<Swept, StoreError>> + Send;
    /// Every erased file of a firm.
    fn erased_files(
        &self,
        firm: FirmId,
    ) -> impl Future<Output = Result<Vec<FileId>, StoreError>> + Send;
    /// A document's metadata.
    fn document(
        &self,
        firm: FirmId,
        document: DocumentId,
    ) -> impl Future<Output = Result<Option<DocumentMeta>, StoreError>> + Send;

    /// Appends an audit leaf; returns its index.
    fn append_audit_leaf(
        &self,
        firm: FirmId,
        leaf: Vec<u8>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Audit leaves from `from`, at most `limit`.
    fn audit_leaves(
        &self,
        firm: FirmId,
        from: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;
    /// Number of leaves in a firm's audit log.
    fn audit_size(&self, firm: FirmId) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// RFC 6962 root of the first `size` leaves; `NotFound` beyond the log.
    fn audit_root(
        &self,
        firm: FirmId,
        size: u64,
    ) -> impl Future<Output = Result<[u8; 32], StoreError>> + Send;
    /// RFC 6962 inclusion proof of leaf `index` in the tree of `size` leaves; `NotFound`
    /// unless `index < size ≤` the log's size.
    fn audit_inclusion(
        &self,
        firm: FirmId,
        index: u64,
        size: u64,
    ) -> impl Future<Output = Result<Vec<[u8; 32]>, StoreError>> + Send;
    /// RFC 6962 consistency proof from `old` to `new` leaves; `NotFound` unless
    /// `old ≤ new ≤` the log's size.
    fn audit_consistency(
        &self,
        firm: FirmId,
        old: u64,
        new: u64,
    ) -> impl Future<Output = Result<Vec<[u8; 32]>, StoreError>> + Send;
    /// Keeps a checkpoint note cosigned by the firm's witness (one per size).
    fn put_cosigned_checkpoint(
        &self,
        firm: FirmId,
        size: u64,
        note: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Cosigned checkpoints `(size, note)` of size at least `from_size`, ascending, at most
    /// `limit`.
    fn cosigned_checkpoints(
        &self,
        firm: FirmId,
        from_size: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>, StoreError>> + Send;
    /// The largest cosigned checkpoint `(size, note)`.
    fn cosigned_checkpoint(
        &self,
        firm: FirmId,
    ) -> impl Future<Output = Result<Option<(u64, Vec<u8>)>, StoreError>> + Send;

    /// Registers an invitation mailbox; `Exists` if the id is taken.
    fn create_invite(
        &self,
        firm: FirmId,
        invite: [u8; 16],
        created_by: MemberId,
        expires_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The firm, creator and expiry of an invitation.
    fn invite(
        &self,
        invite: [u8; 16],
    ) -> impl Future<Output = Result<Option<(FirmId, MemberId, u64)>, StoreError>> + Send;
    /// Adds a sealed join request unless `max` are queued (`Exists` then); returns its id.
    fn add_join_request(
        &self,
        invite: [u8; 16],
        sealed: Vec<u8>,
        now_ms: u64,
        max: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The join requests of an invitation `(id, sealed, created_ms)`.
    fn join_requests(
        &self,
        invite: [u8; 16],
    ) -> impl Future<Output = Result<Vec<(u64, Vec<u8>, u64)>, StoreError>> + Send;
    /// Deletes an invitation and its requests.
    fn delete_invite(
        &self,
        invite: [u8; 16],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets `member`'s backup key, dropping the items sealed to a previous one;
    /// `Exists` if another member's backup has this recovery id.
    fn put_backup_key(
        &self,
        firm: FirmId,
        member: MemberId,
        key: BackupKey,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// `member`'s backup key.
    fn backup_key(
        &self,
        firm: FirmId,
        member: MemberId,
    ) -> impl Future<Output = Result<Option<BackupKey>, StoreError>> + Send;
    /// The member whose backup has this recovery id, and its key.
    fn backup_by_recovery_id(
        &self,
        recovery_id: [u8; 16],
    ) -> impl Future<Output = Result<Option<(FirmId, MemberId, BackupKey)>, StoreError>> + Send;
    /// Adds items sealed to `sealed_to`; an item already held is kept as it is.
    /// `NotFound` if `sealed_to` is not the member's backup key (any more).
    fn put_backup_items(
        &self,
        firm: FirmId,
        member: MemberId,
        sealed_to: [u8; 32],
        items: Vec<BackupItem>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The sequence number the room's next message will get (`NotFound` for no room).
    fn room_next_seq(
        &self,
        firm: FirmId,
        room: RoomId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// One sealed item of `member`'s backup.
    fn backup_item(
        &self,
        firm: FirmId,
        member: MemberId,
        kind: u8,
        item: Vec<u8>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Stores `member`'s recovery key sealed to admin devices `(device, sealed)`, replacing
    /// what those devices held; `NotFound` unless `sealed_to` is the current backup key.
    fn put_escrow(
        &self,
        firm: FirmId,
        member: MemberId,
        sealed_to: [u8; 32],
        entries: Vec<(DeviceId, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// `member`'s recovery key as sealed to `device`, if escrowed under the current key.
    fn escrow(
        &self,
        firm: FirmId,
        member: MemberId,
        device: DeviceId,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Up to `limit` items of `member`'s backup after position `after`, with positions.
    fn backup_items(
        &self,
        firm: FirmId,
        member: MemberId,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, BackupItem)>, StoreError>> + Send;

    /// Persists the replay window `(device, nonce, expires_ms)` (at shutdown).
    fn save_nonces(
        &self,
        nonces: Vec<(DeviceId, [u8; 16], u64)>,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a request's nonce in the store, for relays whose store other instances
    /// share ([`Store::shared`]): `false` if an instance has already accepted it. A
    /// single relay keeps its replay window in memory and calls this never.
    fn claim_nonce(
        &self,
        device: DeviceId,
        nonce: [u8; 16],
        expires_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Drops nonces whose requests are no longer fresh anywhere.
    fn prune_nonces(&self, now_ms: u64) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Loads the unexpired replay window (at startup).
    fn load_nonces(
        &self,
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<(DeviceId, [u8; 16], u64)>, StoreError>> + Send;

    /// Sizes for metrics.
    fn usage(&self) -> impl Future<Output = Result<Usage, StoreError>> + Send;

    /// Whether other relay instances may write this store at the same time (PostgreSQL):
    /// then what a relay keeps in memory (rosters, erased files, the replay window) is
    /// refreshed from the store and the other instances (`protocol-spec/scale-out.md`).
    fn shared(&self) -> bool {
        false
    }
}
