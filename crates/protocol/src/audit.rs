//! Audit-log leaves (`protocol-spec/audit-log.md`, "Leaves").
//!
//! A leaf records one request that read or changed content: the device's own signed request
//! (so the device cannot deny it and the relay cannot invent it), the relay's receive time
//! and the opaque ids the request touched. Leaves never carry names or content.

use crate::encoding::{DecodeError, Reader, Writer};
use crate::ids::{FirmId, ID_LEN};
use crate::merkle;
use crate::request::SignedRequest;
use crate::PROTOCOL_VERSION;

/// Most ids one leaf may name.
pub const MAX_LEAF_SUBJECTS: usize = 64;

/// Leaf type: a device request.
pub const LEAF_TYPE_DEVICE_REQUEST: u8 = 1;

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
}

impl AuditLeaf {
    /// Canonical bytes: `version || type || firm || received_ms || request || count || subjects`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION)
            .u8(LEAF_TYPE_DEVICE_REQUEST)
            .fixed(&self.firm.0)
            .u64(self.received_ms);
        self.request.encode_into(&mut w);
        w.u16(u16::try_from(self.subjects.len()).unwrap_or(u16::MAX));
        for s in &self.subjects {
            w.u8(s.kind as u8).fixed(&s.id);
        }
        w.finish()
    }

    /// Decodes a leaf: refuses trailing bytes, unknown types, a firm mismatch, and subjects
    /// that are unsorted, repeated or too many.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        if r.u8("leaf type")? != LEAF_TYPE_DEVICE_REQUEST {
            return Err(DecodeError::InvalidValue("leaf type"));
        }
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
        r.finish()?;
        Ok(Self {
            firm,
            received_ms,
            request,
            subjects,
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
