//! Audit-log leaves (`protocol-spec/audit-log.md`, "Leaves").
//!
//! A leaf records one request that read or changed content: the device's own signed request
//! (so the device cannot deny it and the relay cannot invent it), the relay's receive time
//! and the opaque ids the request touched. Leaves never carry names or content.

use crate::encoding::{DecodeError, Reader, Writer};
use crate::ids::{DocumentId, FileId, FirmId, ID_LEN};
use crate::merkle;
use crate::request::SignedRequest;
use crate::PROTOCOL_VERSION;

/// Most ids one leaf may name.
pub const MAX_LEAF_SUBJECTS: usize = 64;

/// Leaf type: a device request.
pub const LEAF_TYPE_DEVICE_REQUEST: u8 = 1;
/// Leaf type: the relay's retention sweep of one customer file (a tombstone).
pub const LEAF_TYPE_RETENTION_SWEEP: u8 = 2;
/// Leaf type: a device request with its body (room membership: the body is opaque ids).
pub const LEAF_TYPE_DEVICE_REQUEST_WITH_BODY: u8 = 3;
/// Largest request body a leaf may carry.
pub const MAX_LEAF_BODY: usize = 64 * 1024;
/// Most documents one sweep leaf may name.
pub const MAX_SWEPT_DOCUMENTS: usize = 64;

/// What an opaque id in a leaf names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SubjectKind {
    /// A customer file.
    File = 1,
    /// A chat room.
    Room = 2,
    /// A record.
    Record = 3,
    /// A document.
    Document = 4,
    /// A member.
    Member = 5,
    /// A device.
    Device = 6,
    /// A team.
    Team = 7,
}

impl SubjectKind {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            1 => Self::File,
            2 => Self::Room,
            3 => Self::Record,
            4 => Self::Document,
            5 => Self::Member,
            6 => Self::Device,
            7 => Self::Team,
            _ => return Err(DecodeError::InvalidValue("subject kind")),
        })
    }
}

/// One opaque id touched by the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subject {
    /// What it is.
    pub kind: SubjectKind,
    /// Its id.
    pub id: [u8; ID_LEN],
}

/// A leaf of a firm's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLeaf {
    /// Firm whose log this is; must equal the request's firm.
    pub firm: FirmId,
    /// Relay clock when the request arrived, milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// The device's signed request, verbatim.
    pub request: SignedRequest,
    /// Ids the request touched, sorted and without duplicates.
    pub subjects: Vec<Subject>,
    /// The request's body, for requests whose body an auditor needs (room membership);
    /// its SHA-256 is the one the request signs.
    pub body: Option<Vec<u8>>,
}

impl AuditLeaf {
    /// Canonical bytes: `version || type || firm || received_ms || request || count ||
    /// subjects`, then `body` (u32-prefixed) for type 3.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION)
            .u8(if self.body.is_some() {
                LEAF_TYPE_DEVICE_REQUEST_WITH_BODY
            } else {
                LEAF_TYPE_DEVICE_REQUEST
            })
            .fixed(&self.firm.0)
            .u64(self.received_ms);
        self.request.encode_into(&mut w);
        w.u16(u16::try_from(self.subjects.len()).unwrap_or(u16::MAX));
        for s in &self.subjects {
            w.u8(s.kind as u8).fixed(&s.id);
        }
        if let Some(body) = &self.body {
            w.var(body);
        }
        w.finish()
    }

    /// Decodes a leaf: refuses trailing bytes, unknown types, a firm mismatch, subjects
    /// that are unsorted, repeated or too many, and a body the request did not sign.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let with_body = match r.u8("leaf type")? {
            LEAF_TYPE_DEVICE_REQUEST => false,
            LEAF_TYPE_DEVICE_REQUEST_WITH_BODY => true,
            _ => return Err(DecodeError::InvalidValue("leaf type")),
        };
        let firm = FirmId(r.array("firm")?);
        let received_ms = r.u64("received_ms")?;
        let request = SignedRequest::decode(&mut r)?;
        if request.head.firm != firm {
            return Err(DecodeError::InvalidValue("request firm"));
        }
        let n = r.u16("subject count")? as usize;
        if n > MAX_LEAF_SUBJECTS {
            return Err(DecodeError::TooLong {
                field: "subjects",
                len: n,
                max: MAX_LEAF_SUBJECTS,
            });
        }
        let mut subjects = Vec::with_capacity(n);
        for _ in 0..n {
            let s = Subject {
                kind: SubjectKind::from_u8(r.u8("subject kind")?)?,
                id: r.array("subject id")?,
            };
            if subjects.last().is_some_and(|prev: &Subject| prev >= &s) {
                return Err(DecodeError::InvalidValue("subjects order"));
            }
            subjects.push(s);
        }
        let body = if with_body {
            let body = r.var("body", MAX_LEAF_BODY)?.to_vec();
            if crate::crypto::sha256(&[&body]) != request.head.body_sha256 {
                return Err(DecodeError::InvalidValue("body hash"));
            }
            Some(body)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            firm,
            received_ms,
            request,
            subjects,
            body,
        })
    }

    /// The leaf's Merkle hash, `SHA-256(0x00 || bytes)`.
    pub fn leaf_hash(&self) -> merkle::Hash {
        merkle::leaf_hash(&self.to_bytes())
    }

    /// Sorts and de-duplicates the subjects into canonical order.
    pub fn normalise(mut self) -> Self {
        self.subjects.sort();
        self.subjects.dedup();
        self
    }
}

/// A document deleted by a retention sweep, with the year it concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SweptDocument {
    /// The document.
    pub document: DocumentId,
    /// The year it concerned, as its upload said.
    pub year: u16,
}

/// A tombstone: what the relay's retention sweeper deleted from one customer file, under
/// which policy. The relay writes it (no device signs it); the signed checkpoints cover it
/// like every leaf, and an auditor checks it against the roster's policy offline
/// (`protocol-spec/retention.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSweep {
    /// Firm whose log this is.
    pub firm: FirmId,
    /// Relay clock at the sweep, milliseconds since the Unix epoch.
    pub swept_ms: u64,
    /// The customer file.
    pub file: FileId,
    /// `seq` of the roster's `RetentionSet` event applied.
    pub policy_seq: u64,
    /// Every message of the file's conversation received before this instant was deleted;
    /// 0 when no message was.
    pub chat_before_ms: u64,
    /// Messages deleted.
    pub messages: u64,
    /// Highest sequence number deleted; 0 when no message was.
    pub through_seq: u64,
    /// Documents deleted, sorted by id, at most [`MAX_SWEPT_DOCUMENTS`].
    pub documents: Vec<SweptDocument>,
}

impl RetentionSweep {
    /// Canonical bytes: `version || 2 || firm || swept_ms || file || policy_seq ||
    /// chat_before_ms || messages || through_seq || count || (document || year)*`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION)
            .u8(LEAF_TYPE_RETENTION_SWEEP)
            .fixed(&self.firm.0)
            .u64(self.swept_ms)
            .fixed(&self.file.0)
            .u64(self.policy_seq)
            .u64(self.chat_before_ms)
            .u64(self.messages)
            .u64(self.through_seq)
            .u16(u16::try_from(self.documents.len()).unwrap_or(u16::MAX));
        for d in &self.documents {
            w.fixed(&d.document.0).u16(d.year);
        }
        w.finish()
    }

    /// Decodes a sweep leaf: refuses trailing bytes, other types, an empty sweep, message
    /// counts without a cutoff (or the reverse) and documents unsorted, repeated or too many.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        if r.u8("leaf type")? != LEAF_TYPE_RETENTION_SWEEP {
            return Err(DecodeError::InvalidValue("leaf type"));
        }
        let firm = FirmId(r.array("firm")?);
        let swept_ms = r.u64("swept_ms")?;
        let file = FileId(r.array("file")?);
        let policy_seq = r.u64("policy_seq")?;
        let chat_before_ms = r.u64("chat_before_ms")?;
        let messages = r.u64("messages")?;
        let through_seq = r.u64("through_seq")?;
        if (messages == 0) != (chat_before_ms == 0) || (messages == 0) != (through_seq == 0) {
            return Err(DecodeError::InvalidValue("message cutoff"));
        }
        if chat_before_ms > swept_ms {
            return Err(DecodeError::InvalidValue("chat_before_ms"));
        }
        let n = r.u16("document count")? as usize;
        if n > MAX_SWEPT_DOCUMENTS {
            return Err(DecodeError::TooLong {
                field: "documents",
                len: n,
                max: MAX_SWEPT_DOCUMENTS,
            });
        }
        let mut documents: Vec<SweptDocument> = Vec::with_capacity(n);
        for _ in 0..n {
            let d = SweptDocument {
                document: DocumentId(r.array("document")?),
                year: r.u16("year")?,
            };
            if documents
                .last()
                .is_some_and(|prev| prev.document >= d.document)
            {
                return Err(DecodeError::InvalidValue("documents order"));
            }
            documents.push(d);
        }
        r.finish()?;
        if messages == 0 && documents.is_empty() {
            return Err(DecodeError::InvalidValue("empty sweep"));
        }
        Ok(Self {
            firm,
            swept_ms,
            file,
            policy_seq,
            chat_before_ms,
            messages,
            through_seq,
            documents,
        })
    }
}

/// Any leaf of a firm's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A device's signed request.
    Request(AuditLeaf),
    /// The relay's retention sweep of a file.
    Sweep(RetentionSweep),
}

impl LogEntry {
    /// Decodes a leaf of either type.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes.get(1) {
            Some(&LEAF_TYPE_RETENTION_SWEEP) => RetentionSweep::from_bytes(bytes).map(Self::Sweep),
            _ => AuditLeaf::from_bytes(bytes).map(Self::Request),
        }
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Request(l) => l.to_bytes(),
            Self::Sweep(s) => s.to_bytes(),
        }
    }

    /// The firm whose log holds it.
    pub fn firm(&self) -> FirmId {
        match self {
            Self::Request(l) => l.firm,
            Self::Sweep(s) => s.firm,
        }
    }

    /// The relay's clock when it was appended.
    pub fn time_ms(&self) -> u64 {
        match self {
            Self::Request(l) => l.received_ms,
            Self::Sweep(s) => s.swept_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DeviceId;
    use crate::keys::DeviceSigningKey;
    use crate::request::RequestHead;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;

    fn leaf(ids: &[[u8; 16]]) -> AuditLeaf {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let key = DeviceSigningKey::generate(&mut rng);
        let firm = FirmId([1; 16]);
        let req = RequestHead::new(
            firm,
            DeviceId([2; 16]),
            "GET",
            "/v1/files/x/records",
            10,
            b"",
            &mut rng,
        )
        .unwrap()
        .sign(&key);
        AuditLeaf {
            firm,
            received_ms: 11,
            request: req,
            subjects: ids
                .iter()
                .map(|id| Subject {
                    kind: SubjectKind::File,
                    id: *id,
                })
                .collect(),
            body: None,
        }
        .normalise()
    }

    proptest! {
        #[test]
        fn round_trip(ids in proptest::collection::vec(any::<[u8; 16]>(), 0..10)) {
            let l = leaf(&ids);
            prop_assert_eq!(AuditLeaf::from_bytes(&l.to_bytes()).unwrap(), l);
        }
    }

    fn sweep(docs: &[([u8; 16], u16)], messages: u64) -> RetentionSweep {
        let mut documents: Vec<SweptDocument> = docs
            .iter()
            .map(|(id, year)| SweptDocument {
                document: DocumentId(*id),
                year: *year,
            })
            .collect();
        documents.sort();
        documents.dedup_by_key(|d| d.document);
        RetentionSweep {
            firm: FirmId([1; 16]),
            swept_ms: 1_000_000,
            file: FileId([3; 16]),
            policy_seq: 7,
            chat_before_ms: if messages > 0 { 900_000 } else { 0 },
            messages,
            through_seq: messages,
            documents,
        }
    }

    proptest! {
        #[test]
        fn sweeps_round_trip(
            docs in proptest::collection::vec((any::<[u8; 16]>(), 1900u16..3000), 1..MAX_SWEPT_DOCUMENTS),
            messages in 0u64..1000,
        ) {
            let s = sweep(&docs, messages);
            let bytes = s.to_bytes();
            prop_assert_eq!(LogEntry::from_bytes(&bytes).unwrap(), LogEntry::Sweep(s));
            prop_assert!(AuditLeaf::from_bytes(&bytes).is_err());
        }
    }

    #[test]
    fn malformed_sweeps_are_refused() {
        let empty = sweep(&[], 0);
        assert_eq!(
            RetentionSweep::from_bytes(&empty.to_bytes()),
            Err(DecodeError::InvalidValue("empty sweep"))
        );
        let mut no_cutoff = sweep(&[], 3);
        no_cutoff.chat_before_ms = 0;
        assert_eq!(
            RetentionSweep::from_bytes(&no_cutoff.to_bytes()),
            Err(DecodeError::InvalidValue("message cutoff"))
        );
        let mut future = sweep(&[], 3);
        future.chat_before_ms = future.swept_ms + 1;
        assert_eq!(
            RetentionSweep::from_bytes(&future.to_bytes()),
            Err(DecodeError::InvalidValue("chat_before_ms"))
        );
        let mut unsorted = sweep(&[([1; 16], 2020), ([2; 16], 2020)], 0);
        unsorted.documents.reverse();
        assert_eq!(
            RetentionSweep::from_bytes(&unsorted.to_bytes()),
            Err(DecodeError::InvalidValue("documents order"))
        );
        let request = leaf(&[[1; 16]]);
        assert_eq!(
            LogEntry::from_bytes(&request.to_bytes()),
            Ok(LogEntry::Request(request.clone()))
        );
        assert!(RetentionSweep::from_bytes(&request.to_bytes()).is_err());
    }

    #[test]
    fn unsorted_subjects_are_refused() {
        let mut l = leaf(&[[1; 16], [2; 16]]);
        l.subjects.reverse();
        assert_eq!(
            AuditLeaf::from_bytes(&l.to_bytes()),
            Err(DecodeError::InvalidValue("subjects order"))
        );
    }
}
