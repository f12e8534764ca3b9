//! `checkpoint.json` (`protocol-spec/checkpoints.md`).

use crate::{array, bytes, check_all, file, h, uint, Counts, Expect, Outcome, Tests};
use base64::prelude::{Engine, BASE64_STANDARD};
use ledgerline_protocol::checkpoint::{
    cosign, open_checkpoint, open_cosigned_checkpoint, Checkpoint, CheckpointError,
};
use ledgerline_protocol::keys::{verifying_key_from_bytes, LogSigningKey, WitnessSigningKey};
use ledgerline_protocol::merkle::{leaf_hash, root};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

const ORIGIN: &str =
    "relay.biuro-kowalski.example/ledgerline/firm/5d41402abc4b2a76b9719d911017c592";
const WITNESS: &str = "biuro-kowalski.example/owner-witness";

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let log = LogSigningKey::generate(rng);
    let other_log = LogSigningKey::generate(rng);
    let witness = WitnessSigningKey::generate(rng);
    let other_witness = WitnessSigningKey::generate(rng);
    let leaves: Vec<[u8; 32]> = (0..5u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let cp = Checkpoint::new(ORIGIN, 5, root(&leaves)).expect("valid origin");
    let note = cp.sign(&log);
    let text = String::from_utf8_lossy(&note).into_owned();

    let case = |note: &[u8], origin: &str, cosig: Option<u64>| {
        json!({
            "note": h(note),
            "origin": origin,
            "treeSize": cp.size(),
            "root": h(cp.root()),
            "cosignatureTime": cosig.unwrap_or(0),
        })
    };
    let group_keys = json!({
        "logPublicKey": h(log.verifying_key().as_bytes()),
        "witnessName": WITNESS,
        "witnessPublicKey": h(witness.verifying_key().as_bytes()),
    });

    let mut t = Tests::default();
    t.push(
        "checkpoint signed by the log",
        Expect::Valid,
        case(&note, ORIGIN, None),
    );
    let empty = Checkpoint::new(ORIGIN, 0, root(&[]))
        .expect("valid origin")
        .sign(&log);
    t.push("empty log", Expect::Valid, json!({ "note": h(&empty), "origin": ORIGIN, "treeSize": 0, "root": h(&root(&[])), "cosignatureTime": 0 }));
    let extra = format!(
        "{text}— other.example/log {}\n",
        base64_encode(&[[0, 0, 0, 1].as_slice(), &[0xff; 64]].concat())
    );
    t.push(
        "an unknown extra signature is ignored",
        Expect::Valid,
        case(extra.as_bytes(), ORIGIN, None),
    );

    t.push(
        "verified for another origin",
        Expect::Invalid("WrongOrigin"),
        case(&note, "relay.example/ledgerline/firm/00", None),
    );
    let foreign = Checkpoint::new("relay.example/other-log", 5, *cp.root())
        .expect("valid origin")
        .sign(&log);
    t.push(
        "checkpoint of another log signed with the same key",
        Expect::Invalid("WrongOrigin"),
        case(&foreign, ORIGIN, None),
    );
    t.push(
        "signed by another key",
        Expect::Invalid("MissingSignature"),
        case(&cp.sign(&other_log), ORIGIN, None),
    );
    let body_len = cp.body().len();
    t.push(
        "signature removed",
        Expect::Invalid("Malformed"),
        case(&note[..body_len], ORIGIN, None),
    );
    let flipped = edit_last_signature(&text, |raw| {
        if let Some(x) = raw.get_mut(10) {
            *x ^= 1;
        }
    });
    t.push(
        "signature bit flipped",
        Expect::Invalid("BadSignature"),
        case(flipped.as_bytes(), ORIGIN, None),
    );
    let bigger = text.replacen("\n5\n", "\n6\n", 1);
    t.push(
        "tree size changed after signing",
        Expect::Invalid("BadSignature"),
        case(bigger.as_bytes(), ORIGIN, None),
    );
    let other_root = Checkpoint::new(ORIGIN, 5, root(&leaves[..4])).expect("valid origin");
    let swapped = text.replacen(&cp.body(), &other_root.body(), 1);
    t.push(
        "root changed after signing",
        Expect::Invalid("BadSignature"),
        case(swapped.as_bytes(), ORIGIN, None),
    );
    for (comment, bad) in [
        (
            "size with a leading zero",
            text.replacen("\n5\n", "\n05\n", 1),
        ),
        (
            "an extension line",
            text.replacen("=\n\n", "=\nextension\n\n", 1),
        ),
        (
            "missing blank line before signatures",
            text.replacen("=\n\n", "=\n", 1),
        ),
        (
            "root hash not 32 bytes",
            text.replacen("\n5\n", "\n5\nAAAA\n", 1),
        ),
        (
            "control character in the note",
            text.replacen("\n5\n", "\n5\u{7}\n", 1),
        ),
    ] {
        t.push(
            comment,
            Expect::Invalid("Malformed"),
            case(bad.as_bytes(), ORIGIN, None),
        );
    }
    let signed = t.group("CheckpointVerify", group_keys.clone());

    let mut t = Tests::default();
    let ts = 1_775_000_123;
    let cosigned = cosign(&note, WITNESS, &witness, ts).expect("cosign");
    t.push(
        "cosigned by the owner's witness",
        Expect::Valid,
        case(&cosigned, ORIGIN, Some(ts)),
    );
    let twice = cosign(
        &cosign(&note, "someone-else.example/w", &other_witness, 5).unwrap_or_default(),
        WITNESS,
        &witness,
        ts,
    )
    .unwrap_or_default();
    t.push(
        "other cosignatures present as well",
        Expect::Valid,
        case(&twice, ORIGIN, Some(ts)),
    );
    t.push(
        "no cosignature",
        Expect::Invalid("MissingSignature"),
        case(&note, ORIGIN, None),
    );
    t.push(
        "cosigned by another witness key",
        Expect::Invalid("MissingSignature"),
        case(
            &cosign(&note, WITNESS, &other_witness, ts).unwrap_or_default(),
            ORIGIN,
            None,
        ),
    );
    let ctext = String::from_utf8_lossy(&cosigned).into_owned();
    let timestamp_changed = edit_last_signature(&ctext, |raw| {
        if let Some(x) = raw.get_mut(4 + 7) {
            *x ^= 1;
        }
    });
    t.push(
        "cosignature timestamp changed",
        Expect::Invalid("BadSignature"),
        case(timestamp_changed.as_bytes(), ORIGIN, None),
    );
    let flipped = edit_last_signature(&ctext, |raw| {
        if let Some(x) = raw.last_mut() {
            *x ^= 1;
        }
    });
    t.push(
        "cosignature bit flipped",
        Expect::Invalid("BadSignature"),
        case(flipped.as_bytes(), ORIGIN, None),
    );
    let no_time = edit_last_signature(&ctext, |raw| raw.truncate(4 + 64));
    t.push(
        "cosignature without its timestamp",
        Expect::Invalid("BadSignature"),
        case(no_time.as_bytes(), ORIGIN, None),
    );
    let log_bad = cosign(&cp.sign(&other_log), WITNESS, &witness, ts).unwrap_or_default();
    t.push(
        "cosigned, but the log signature is by another key",
        Expect::Invalid("MissingSignature"),
        case(&log_bad, ORIGIN, None),
    );
    let cosigned_group = t.group("CosignedCheckpointVerify", group_keys);

    file(
        "LEDGERLINE-CHECKPOINT-V1",
        "protocol-spec/checkpoints.md",
        &[
            ("Valid", "The note carries a valid log signature (and, for CosignedCheckpointVerify, a valid witness cosignature at cosignatureTime); the body states treeSize and root."),
            ("Malformed", "Not a well-formed signed note or checkpoint body."),
            ("WrongOrigin", "The origin line is not the expected log's."),
            ("BadSignature", "A signature by an expected key is present and invalid."),
            ("MissingSignature", "No signature by an expected key."),
        ],
        vec![signed, cosigned_group],
    )
}

/// `text` with the signature bytes (key id included) of its last line changed by `edit`.
fn edit_last_signature(text: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let body = text.trim_end_matches('\n');
    let (head, last) = body
        .rsplit_once('\n')
        .expect("a signed note has a signature line");
    let (prefix, b64) = last
        .rsplit_once(' ')
        .expect("a signature line ends in base64");
    let mut raw = base64_decode(b64);
    edit(&mut raw);
    format!("{head}\n{prefix} {}\n", base64_encode(&raw))
}

fn base64_decode(s: &str) -> Vec<u8> {
    BASE64_STANDARD
        .decode(s)
        .expect("generator produced valid base64")
}

fn base64_encode(b: &[u8]) -> String {
    BASE64_STANDARD.encode(b)
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |g, t| {
        let log =
            verifying_key_from_bytes(&array(g, "logPublicKey")?).map_err(|e| e.to_string())?;
        let witness =
            verifying_key_from_bytes(&array(g, "witnessPublicKey")?).map_err(|e| e.to_string())?;
        let wname = g["witnessName"].as_str().ok_or("witnessName missing")?;
        let origin = t["origin"].as_str().ok_or("origin missing")?;
        let note = bytes(t, "note")?;
        let r = match g["type"].as_str() {
            Some("CheckpointVerify") => open_checkpoint(&note, origin, &log).map(|cp| (cp, 0)),
            Some("CosignedCheckpointVerify") => {
                open_cosigned_checkpoint(&note, origin, &log, wname, &witness)
            }
            other => return Err(format!("unknown group type {other:?}")),
        };
        if let Ok((cp, ts)) = &r {
            if cp.size() != uint(t, "treeSize")?
                || cp.root() != &array::<32>(t, "root")?
                || *ts != uint(t, "cosignatureTime")?
            {
                return Err("checkpoint contents differ".into());
            }
        }
        Ok(Outcome::of(r, CheckpointError::class))
    })
}
