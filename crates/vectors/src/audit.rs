//! `audit-leaf.json` (`protocol-spec/audit-log.md`, "Leaves").

use crate::{array, bytes, check_all, file, flip, h, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::audit::{
    AuditLeaf, LogEntry, RetentionSweep, Subject, SubjectKind, SweptDocument,
};
use ledgerline_protocol::ids::{DeviceId, DocumentId, FileId, FirmId};
use ledgerline_protocol::keys::{verifying_key_from_bytes, DeviceSigningKey};
use ledgerline_protocol::merkle;
use ledgerline_protocol::request::RequestHead;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use serde_json::{json, Value};

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let key = DeviceSigningKey::generate(rng);
    let firm = FirmId::random(rng);
    let device = DeviceId::random(rng);
    let mut id = || {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        b
    };
    let (file_id, doc_id, room_id) = (id(), id(), id());
    let mut t = Tests::default();
    let case = |leaf: &[u8], hash: Option<[u8; 32]>| json!({ "leaf": h(leaf), "devicePublicKey": h(key.verifying_key().as_bytes()), "leafHash": hash.map(|x| h(&x)).unwrap_or_default() });
    let mk = |rng: &mut ChaCha20Rng, method: &str, path: &str, subjects: Vec<Subject>| {
        let req = RequestHead::new(firm, device, method, path, 1_775_000_000_000, b"", rng)
            .map(|h| h.sign(&key));
        req.map(|request| {
            AuditLeaf {
                firm,
                received_ms: 1_775_000_000_250,
                request,
                subjects,
                body: None,
            }
            .normalise()
        })
    };
    let download = mk(
        rng,
        "GET",
        &format!("/v1/documents/{}/release", h(&doc_id)),
        vec![
            Subject {
                kind: SubjectKind::Document,
                id: doc_id,
            },
            Subject {
                kind: SubjectKind::File,
                id: file_id,
            },
        ],
    )
    .expect("valid head");
    let history = mk(
        rng,
        "GET",
        &format!("/v1/rooms/{}/messages?from=0", h(&room_id)),
        vec![Subject {
            kind: SubjectKind::Room,
            id: room_id,
        }],
    )
    .expect("valid head");
    let bare = mk(rng, "POST", "/v1/roster", vec![]).expect("valid head");
    for (name, leaf) in [
        ("document download", &download),
        ("room history read", &history),
        ("no subjects", &bare),
    ] {
        t.push(
            name,
            Expect::Valid,
            case(&leaf.to_bytes(), Some(leaf.leaf_hash())),
        );
    }
    let raw = download.to_bytes();
    t.push(
        "unknown version",
        Expect::Invalid("Malformed"),
        case(&flip(&raw, 0), None),
    );
    t.push(
        "unknown leaf type",
        Expect::Invalid("Malformed"),
        case(&flip(&raw, 1), None),
    );
    t.push(
        "leaf firm differs from the request's firm",
        Expect::Invalid("Malformed"),
        case(&flip(&raw, 2), None),
    );
    t.push(
        "truncated",
        Expect::Invalid("Malformed"),
        case(&raw[..raw.len() - 1], None),
    );
    t.push(
        "trailing byte",
        Expect::Invalid("Malformed"),
        case(&[raw.clone(), vec![0]].concat(), None),
    );
    let mut unsorted = download.clone();
    unsorted.subjects.reverse();
    t.push(
        "subjects out of order",
        Expect::Invalid("Malformed"),
        case(&unsorted.to_bytes(), None),
    );
    let mut dup = download.clone();
    dup.subjects
        .push(*dup.subjects.last().expect("two subjects"));
    t.push(
        "subject repeated",
        Expect::Invalid("Malformed"),
        case(&dup.to_bytes(), None),
    );
    let kind_at = raw.len() - 2 * 17;
    let mut bad_kind = raw.clone();
    bad_kind[kind_at] = 9;
    t.push(
        "unknown subject kind",
        Expect::Invalid("Malformed"),
        case(&bad_kind, None),
    );
    let mut many = download.clone();
    many.subjects = (0..65u8)
        .map(|i| Subject {
            kind: SubjectKind::Record,
            id: [i; 16],
        })
        .collect();
    t.push(
        "65 subjects, over the maximum of 64",
        Expect::Invalid("Malformed"),
        case(&many.to_bytes(), None),
    );
    let sig_end = raw.len() - 2 - 2 * 17 - 1;
    t.push(
        "request signature bit flipped",
        Expect::Invalid("BadSignature"),
        case(&flip(&raw, sig_end), None),
    );
    let mut moved = download.clone();
    moved.request.head.path = "/v1/documents/other/release".into();
    t.push(
        "request path rewritten by the relay",
        Expect::Invalid("BadSignature"),
        case(&moved.to_bytes(), None),
    );
    let mut late = download.clone();
    late.received_ms += 1;
    t.push(
        "receive time changed: leaf hash differs",
        Expect::Invalid("LeafHashMismatch"),
        {
            let mut c = case(&late.to_bytes(), Some(download.leaf_hash()));
            c["leafHash"] = json!(h(&download.leaf_hash()));
            c
        },
    );
    // A room membership change carries its body (opaque member ids) for the auditor.
    let body = format!(r#"{{"members":["{}","{}"]}}"#, h(&file_id), h(&doc_id));
    let request = RequestHead::new(
        firm,
        device,
        "PUT",
        &format!("/v1/rooms/{}/members", h(&room_id)),
        1_775_000_000_000,
        body.as_bytes(),
        rng,
    )
    .expect("valid head")
    .sign(&key);
    let members = AuditLeaf {
        firm,
        received_ms: 1_775_000_000_300,
        request,
        subjects: vec![Subject {
            kind: SubjectKind::Room,
            id: room_id,
        }],
        body: Some(body.clone().into_bytes()),
    };
    let raw = members.to_bytes();
    t.push(
        "room members replaced: the leaf carries the signed body",
        Expect::Valid,
        case(&raw, Some(members.leaf_hash())),
    );
    let mut other = members.clone();
    other.body = Some(body.replace("\"]}", "0\"]}").into_bytes());
    t.push(
        "room membership body that the request did not sign",
        Expect::Invalid("Malformed"),
        case(&other.to_bytes(), None),
    );
    let mut no_body = raw.clone();
    no_body[1] = 1;
    t.push(
        "type 1 leaf with trailing body bytes",
        Expect::Invalid("Malformed"),
        case(&no_body, None),
    );
    sweeps(&mut t, firm, file_id, doc_id, case);

    file(
        "LEDGERLINE-AUDIT-LEAF-V1",
        "protocol-spec/audit-log.md",
        &[
            ("Valid", "The leaf decodes, re-encodes to the same bytes, hashes to leafHash, and (a device request) its request signature verifies; a retention sweep (leaf type 2) carries no signature and devicePublicKey is ignored."),
            ("Malformed", "Not a canonical leaf."),
            ("BadSignature", "The embedded request's signature does not verify under devicePublicKey."),
            ("LeafHashMismatch", "The leaf does not hash to leafHash."),
        ],
        vec![t.group("AuditLeafVerify", json!({}))],
    )
}

/// Retention sweeps (leaf type 2, `protocol-spec/retention.md`).
fn sweeps(
    t: &mut Tests,
    firm: FirmId,
    file_id: [u8; 16],
    doc_id: [u8; 16],
    case: impl Fn(&[u8], Option<[u8; 32]>) -> Value,
) {
    let sweep = RetentionSweep {
        firm,
        swept_ms: 1_775_000_000_000,
        file: FileId(file_id),
        policy_seq: 12,
        chat_before_ms: 1_743_464_000_000,
        messages: 40,
        through_seq: 57,
        documents: vec![
            SweptDocument {
                document: DocumentId([0x01; 16]),
                year: 2019,
            },
            SweptDocument {
                document: DocumentId(doc_id),
                year: 2020,
            },
        ],
    };
    let hash = |b: &[u8]| merkle::leaf_hash(b);
    let raw = sweep.to_bytes();
    t.push(
        "retention sweep: 40 messages and two documents deleted",
        Expect::Valid,
        case(&raw, Some(hash(&raw))),
    );
    let mut docs_only = sweep.clone();
    (
        docs_only.messages,
        docs_only.through_seq,
        docs_only.chat_before_ms,
    ) = (0, 0, 0);
    let raw_docs = docs_only.to_bytes();
    t.push(
        "retention sweep: documents only",
        Expect::Valid,
        case(&raw_docs, Some(hash(&raw_docs))),
    );
    let mut empty = docs_only.clone();
    empty.documents.clear();
    t.push(
        "retention sweep that deleted nothing",
        Expect::Invalid("Malformed"),
        case(&empty.to_bytes(), None),
    );
    let mut no_cutoff = sweep.clone();
    no_cutoff.chat_before_ms = 0;
    t.push(
        "retention sweep: messages deleted without a cutoff",
        Expect::Invalid("Malformed"),
        case(&no_cutoff.to_bytes(), None),
    );
    let mut future = sweep.clone();
    future.chat_before_ms = future.swept_ms + 1;
    t.push(
        "retention sweep: cutoff after the sweep",
        Expect::Invalid("Malformed"),
        case(&future.to_bytes(), None),
    );
    let mut unsorted = sweep.clone();
    unsorted.documents.reverse();
    t.push(
        "retention sweep: documents out of order",
        Expect::Invalid("Malformed"),
        case(&unsorted.to_bytes(), None),
    );
    t.push(
        "retention sweep: trailing byte",
        Expect::Invalid("Malformed"),
        case(&[raw.clone(), vec![0]].concat(), None),
    );
    let mut moved = sweep.clone();
    moved.messages += 1;
    t.push(
        "retention sweep: count changed, leaf hash differs",
        Expect::Invalid("LeafHashMismatch"),
        case(&moved.to_bytes(), Some(hash(&raw))),
    );
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |_, t| {
        let raw = bytes(t, "leaf")?;
        let leaf = match LogEntry::from_bytes(&raw) {
            Err(_) => return Ok(Outcome::Invalid("Malformed".into())),
            Ok(LogEntry::Sweep(sweep)) => {
                if sweep.to_bytes() != raw {
                    return Err("re-encoding differs".into());
                }
                if merkle::leaf_hash(&raw) != array::<32>(t, "leafHash")? {
                    return Ok(Outcome::Invalid("LeafHashMismatch".into()));
                }
                return Ok(Outcome::Valid);
            }
            Ok(LogEntry::Request(leaf)) => leaf,
        };
        if leaf.to_bytes() != raw {
            return Err("re-encoding differs".into());
        }
        let key =
            verifying_key_from_bytes(&array(t, "devicePublicKey")?).map_err(|e| e.to_string())?;
        if leaf.request.verify_signature(&key).is_err() {
            return Ok(Outcome::Invalid("BadSignature".into()));
        }
        if leaf.leaf_hash() != array::<32>(t, "leafHash")? {
            return Ok(Outcome::Invalid("LeafHashMismatch".into()));
        }
        Ok(Outcome::Valid)
    })
}
