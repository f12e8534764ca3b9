//! # Ledgerline protocol
//!
//! Every byte that Ledgerline signs, encrypts or sends is defined here, once. The relay and
//! the client depend on this crate and never on each other. The crate performs no I/O and
//! has no async code: callers hand in bytes, keys, the current time and a random number
//! generator, and get bytes or a typed error back.
//!
//! The normative description of each construction lives in `protocol-spec/` at the
//! repository root; every module names the spec file it implements.
//!
//! | module | construction | spec |
//! |---|---|---|
//! | [`encoding`] | canonical byte encoding, size limits | `protocol-spec/encoding.md` |
//! | [`history`] | room history pages in binary form | `protocol-spec/relay-api.md` |
//! | [`ids`] | opaque 16-byte identifiers | `protocol-spec/encoding.md` |
//! | [`invite`] | invitation codes and sealed join requests | `protocol-spec/invites.md` |
//! | [`keys`] | device, member and log signing keys; symmetric secrets | `protocol-spec/keys.md` |
//! | [`request`] | signed HTTP requests, replay and skew policy | `protocol-spec/signed-request.md` |
//! | [`roster`] | the firm roster: hash-chained, admin-signed events | `protocol-spec/roster.md` |
//! | [`wrap`] | member-key wraps, epoch-key wraps, the epoch chain | `protocol-spec/key-hierarchy.md` |
//! | [`prekeys`] | signed one-time and fallback keys | `protocol-spec/prekeys.md` |
//! | [`record`] | record envelopes | `protocol-spec/records.md` |
//! | [`document`] | chunked document streams, accountable document keys | `protocol-spec/documents.md` |
//! | [`merkle`] | RFC 6962 hashing, inclusion and consistency proofs | `protocol-spec/audit-log.md` |
//! | [`audit`] | audit-log leaves | `protocol-spec/audit-log.md` |
//! | [`recovery`] | recovery keys, key backup items, backup-key signatures | `protocol-spec/recovery.md` |
//! | [`retention`] | retention policies and what they allow the relay to delete | `protocol-spec/retention.md` |
//! | [`checkpoint`] | C2SP checkpoints, signed notes, witness cosignatures | `protocol-spec/checkpoints.md` |
//!
//! ## Example: a record round trip
//!
//! ```
//! use ledgerline_protocol::{ids::*, keys::*, record::*};
//! let mut rng = rand_core::OsRng;
//! let author = DeviceSigningKey::generate(&mut rng);
//! let epoch_key = EpochKey::generate(&mut rng);
//! let header = RecordHeader {
//!     firm: FirmId::random(&mut rng),
//!     file: FileId::random(&mut rng),
//!     record: RecordId::random(&mut rng),
//!     epoch: 1,
//!     version: 1,
//!     author: DeviceId::random(&mut rng),
//! };
//! let sealed = seal_record(&header, &epoch_key, &author, b"note: VAT-7 filed", &mut rng).unwrap();
//! let bytes = sealed.to_bytes();
//! let parsed = RecordEnvelope::from_bytes(&bytes).unwrap();
//! let plain = open_record(&parsed, &header.reference(), &epoch_key, &author.verifying_key()).unwrap();
//! assert_eq!(&plain[..], b"note: VAT-7 filed");
//! ```
#![forbid(unsafe_code)]

pub mod audit;
pub mod checkpoint;
pub mod constants;
pub mod document;
pub mod encoding;
pub mod history;
pub mod ids;
pub mod invite;
pub mod keys;
pub mod merkle;
pub mod prekeys;
pub mod record;
pub mod recovery;
pub mod request;
pub mod retention;
pub mod roster;
pub mod wrap;

mod crypto;

/// Protocol version carried as the first byte of every binary structure.
pub const PROTOCOL_VERSION: u8 = 1;
