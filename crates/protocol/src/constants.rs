//! Every domain-separation string of the protocol, by name.
//!
//! Each constant appears verbatim in `protocol-spec/constants.md`. An Ed25519 signature is
//! always computed over `CONTEXT || 0x00 || message`; an HKDF `info` always starts with the
//! named label. Changing any of these is a protocol version change.

/// Signing context of a device's signed request (`signed-request.md`).
pub const CTX_REQUEST: &str = "ledgerline/v1/request";
/// Signing context of a roster event (`roster.md`).
pub const CTX_ROSTER_EVENT: &str = "ledgerline/v1/roster-event";
/// Hash context of a roster event's chain hash (`roster.md`).
pub const CTX_ROSTER_HASH: &str = "ledgerline/v1/roster-hash";
/// Signing context of a member's certificate for one of its devices (`roster.md`).
pub const CTX_DEVICE_CERT: &str = "ledgerline/v1/device-cert";
/// Signing context of a device's one-time or fallback key (`prekeys.md`).
pub const CTX_ONE_TIME_KEY: &str = "ledgerline/v1/one-time-key";
/// Signing context of a record envelope (`records.md`).
pub const CTX_RECORD: &str = "ledgerline/v1/record";

/// Hash context of the session tag a sender states with a room message
/// (`client-payloads.md`, "Session tags").
pub const CTX_ROOM_SESSION_TAG: &str = "ledgerline/v1/room-session-tag";

/// Hash context of an invitation code's checksum (`invites.md`).
pub const CTX_INVITE_CODE: &str = "ledgerline/v1/invite-code";
/// Hash context of an invitation's mailbox id on the relay (`invites.md`).
pub const CTX_INVITE_ID: &str = "ledgerline/v1/invite-id";
/// Hash context of a multipart document's parts root (`documents.md`).
pub const CTX_DOCUMENT_PARTS: &str = "ledgerline/v1/document-parts";
/// Signing context of a member's backup key, by their master key (`recovery.md`).
pub const CTX_BACKUP_KEY: &str = "ledgerline/v1/backup-key";
/// Hash context of a recovery key's checksum (`recovery.md`).
pub const CTX_RECOVERY_KEY: &str = "ledgerline/v1/recovery-key";
/// HKDF info of the X25519 backup secret derived from a recovery key (`recovery.md`).
pub const INFO_BACKUP_SECRET: &str = "ledgerline/v1/backup-secret";
/// HKDF info of the recovery id the relay files a backup under (`recovery.md`).
pub const INFO_RECOVERY_ID: &str = "ledgerline/v1/recovery-id";
/// HKDF info of the key that seals a recovery key to an admin's device (`recovery.md`).
pub const INFO_RECOVERY_ESCROW: &str = "ledgerline/v1/recovery-escrow";
/// HKDF info of the key that seals one backup item to a backup key (`recovery.md`).
pub const INFO_BACKUP_ITEM: &str = "ledgerline/v1/backup-item";
/// Hash context of a team name's commitment in the roster (`roster.md`).
pub const CTX_TEAM_NAME: &str = "ledgerline/v1/team-name";
/// The id of a customer file's conversation room with its guests (`guests.md`).
pub const CTX_CONVERSATION_ROOM: &str = "ledgerline/v1/conversation-room";
/// HKDF info of the key that seals join requests (`invites.md`).
pub const INFO_INVITE_KEY: &str = "ledgerline/v1/invite-key";

/// HKDF info of the member-key wrap for a device (`key-hierarchy.md`).
pub const INFO_MEMBER_KEY_WRAP: &str = "ledgerline/v1/member-key-wrap";
/// HKDF info of a message sealed to one device's wrap key (`key-hierarchy.md`).
pub const INFO_SEALED_TO_DEVICE: &str = "ledgerline/v1/sealed-to-device";
/// HKDF info of the key-encryption key derived from a member key for epoch keys.
pub const INFO_KEK_EPOCH_KEY: &str = "ledgerline/v1/kek/epoch-key";
/// HKDF info of the key-encryption key derived from a member key for team keys.
pub const INFO_KEK_TEAM_KEY: &str = "ledgerline/v1/kek/team-key";
/// HKDF info of the key-encryption key derived from an epoch key for its predecessor.
pub const INFO_KEK_EPOCH_CHAIN: &str = "ledgerline/v1/kek/epoch-chain";
/// HKDF info of the record key derived from an epoch key (`records.md`).
pub const INFO_RECORD_KEY: &str = "ledgerline/v1/record-key";
/// HKDF info prefix of the accountable document key (`documents.md`).
pub const INFO_DOCUMENT_KEY: &str = "ledgerline/v1/document-key";
/// HKDF info of a document stream's payload key (`documents.md`).
pub const INFO_DOCUMENT_PAYLOAD: &str = "ledgerline/v1/document-payload";
/// HKDF info of a relay's per-firm log key (followed by the firm id).
pub const INFO_RELAY_LOG_KEY: &str = "ledgerline/v1/relay-log-key";

/// Magic bytes opening a document stream (`documents.md`).
pub const DOCUMENT_MAGIC: [u8; 4] = *b"LLD1";

/// Header names of a signed request on HTTP (`signed-request.md`).
pub mod headers {
    /// Hex of the firm id.
    pub const FIRM: &str = "ledgerline-firm";
    /// Hex of the device id.
    pub const DEVICE: &str = "ledgerline-device";
    /// Decimal milliseconds since the Unix epoch.
    pub const TIMESTAMP: &str = "ledgerline-timestamp";
    /// Hex of the 16-byte nonce.
    pub const NONCE: &str = "ledgerline-nonce";
    /// Hex of SHA-256 of the body.
    pub const CONTENT_SHA256: &str = "ledgerline-content-sha256";
    /// Hex of the 64-byte Ed25519 signature.
    pub const SIGNATURE: &str = "ledgerline-signature";
    /// Hex of a document's release share, on upload only (`relay-api.md`).
    pub const RELEASE_SHARE: &str = "ledgerline-release-share";
}

/// Smallest and largest part of a multipart document upload (`documents.md`).
pub const DOCUMENT_PART_MIN: u64 = 64 * 1024;
/// Largest part of a multipart document upload.
pub const DOCUMENT_PART_MAX: u64 = 16 * 1024 * 1024;
/// How many parts of one upload may be on their way at once: the relay takes part `n`
/// while `n < received + DOCUMENT_PARTS_IN_FLIGHT` and records parts in order
/// (`relay-api.md`).
pub const DOCUMENT_PARTS_IN_FLIGHT: u64 = 2;

/// Plaintext size of every document chunk but the last (`documents.md`).
pub const DOCUMENT_CHUNK_SIZE: usize = 64 * 1024;
/// Poly1305 tag size.
pub const TAG_SIZE: usize = 16;
