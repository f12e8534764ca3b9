//! `history-page.json` (`protocol-spec/relay-api.md`, "History pages").

use crate::{bytes, check_all, file, h, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::history::{HistoryPage, PageMessage, ROOM_MESSAGE_MAX_BYTES};
use ledgerline_protocol::ids::DeviceId;
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

fn expected(p: &HistoryPage) -> Value {
    json!({
        "next": p.next,
        "messages": p.messages.iter().map(|m| json!({
            "seq": m.seq,
            "sender": h(&m.sender.0),
            "createdMs": m.created_ms,
            "ciphertext": h(&m.ciphertext),
        })).collect::<Vec<_>>(),
    })
}

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let mut message = |seq: u64, len: usize| {
        let mut sender = [0u8; 16];
        rng.fill_bytes(&mut sender);
        let mut ciphertext = vec![0u8; len];
        rng.fill_bytes(&mut ciphertext);
        PageMessage {
            seq,
            sender: DeviceId(sender),
            created_ms: 1_775_000_000_000 + seq * 1_000,
            ciphertext,
        }
    };
    let three = HistoryPage {
        next: 104,
        messages: vec![message(101, 290), message(102, 1), message(103, 633)],
    };
    let gap = HistoryPage {
        // A restored relay numbers on far past what it had lost (operations.md).
        next: 1_000_002,
        messages: vec![message(7, 200), message(1_000_001, 200)],
    };
    let empty = HistoryPage {
        next: 1,
        messages: vec![],
    };
    let mut t = Tests::default();
    let valid = |t: &mut Tests, comment: &str, p: &HistoryPage| {
        t.push(
            comment,
            Expect::Valid,
            json!({ "page": h(&p.to_bytes()), "expected": expected(p) }),
        );
    };
    valid(&mut t, "three messages", &three);
    valid(
        &mut t,
        "a gap in the numbering (after a relay restore)",
        &gap,
    );
    valid(&mut t, "an empty page of an empty room", &empty);

    let raw = three.to_bytes();
    let invalid = |t: &mut Tests, comment: &str, page: Vec<u8>| {
        t.push(
            comment,
            Expect::Invalid("Malformed"),
            json!({ "page": h(&page) }),
        );
    };
    let mut v2 = raw.clone();
    v2[0] = 2;
    invalid(&mut t, "unknown version", v2);
    invalid(
        &mut t,
        "truncated ciphertext",
        raw[..raw.len() - 1].to_vec(),
    );
    invalid(&mut t, "trailing byte", [raw.clone(), vec![0]].concat());
    let mut repeated = three.clone();
    repeated.messages[1].seq = 101;
    invalid(&mut t, "a sequence number repeated", repeated.to_bytes());
    let mut descending = three.clone();
    descending.messages.swap(0, 2);
    invalid(&mut t, "sequence numbers descending", descending.to_bytes());
    let mut empty_ct = three.clone();
    empty_ct.messages[1].ciphertext.clear();
    invalid(&mut t, "an empty ciphertext", empty_ct.to_bytes());
    let mut count = empty.to_bytes();
    count[9..13].copy_from_slice(&10_001u32.to_be_bytes());
    invalid(&mut t, "count over 10,000", count);
    let mut huge = raw.clone();
    let at = 1 + 8 + 4 + 8 + 16 + 8;
    huge[at..at + 4].copy_from_slice(&(ROOM_MESSAGE_MAX_BYTES as u32 + 1).to_be_bytes());
    invalid(&mut t, "a ciphertext length over 1 MiB", huge);
    let mut more = raw.clone();
    more[9..13].copy_from_slice(&4u32.to_be_bytes());
    invalid(&mut t, "count larger than the messages sent", more);
    invalid(&mut t, "a JSON answer", b"{\"messages\":[]}".to_vec());

    file(
        "LEDGERLINE-HISTORY-PAGE-V1",
        "protocol-spec/relay-api.md",
        &[
            (
                "Valid",
                "The page decodes to `expected` and encodes back to the same bytes.",
            ),
            ("Malformed", "Not a canonical history page."),
        ],
        vec![t.group("HistoryPageDecode", json!({}))],
    )
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |_, t| {
        let raw = bytes(t, "page")?;
        let Ok(p) = HistoryPage::from_bytes(&raw) else {
            return Ok(Outcome::Invalid("Malformed".into()));
        };
        if expected(&p) != t["expected"] {
            return Err("decoded page differs from `expected`".into());
        }
        if p.to_bytes() != raw {
            return Err("decoding is not canonical".into());
        }
        Ok(Outcome::Valid)
    })
}
