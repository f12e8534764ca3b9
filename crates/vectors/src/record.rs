//! `record.json` (`protocol-spec/records.md`).

use crate::{array, bytes, check_all, file, flip, h, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, RecordId};
use ledgerline_protocol::keys::{verifying_key_from_bytes, DeviceSigningKey, EpochKey};
use ledgerline_protocol::record::{
    open_record, seal_record, RecordEnvelope, RecordError, RecordHeader, RecordRef,
};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let author = DeviceSigningKey::generate(rng);
    let stranger = DeviceSigningKey::generate(rng);
    let key = EpochKey::generate(rng);
    let other_key = EpochKey::generate(rng);
    let header = RecordHeader {
        firm: FirmId::random(rng),
        file: FileId::random(rng),
        record: RecordId::random(rng),
        epoch: 5,
        version: 1,
        author: DeviceId::random(rng),
    };
    let r = header.reference();
    let case = |env: &[u8], k: &EpochKey, a: &DeviceSigningKey, want: &RecordRef, pt: &[u8]| {
        json!({
            "envelope": h(env),
            "expected": { "firm": h(&want.firm.0), "file": h(&want.file.0), "record": h(&want.record.0) },
            "epochKey": h(k.expose()),
            "authorPublicKey": h(a.verifying_key().as_bytes()),
            "plaintext": h(pt),
        })
    };
    let mut t = Tests::default();
    let note = "Notatka: klient dostarczył faktury za 03/2026; VAT-7 do 25.04.".as_bytes();
    let env = seal_record(&header, &key, &author, note, rng).expect("sealable");
    let raw = env.to_bytes();
    t.push(
        "note record (UTF-8, Polish)",
        Expect::Valid,
        case(&raw, &key, &author, &r, note),
    );
    let empty = seal_record(
        &RecordHeader {
            version: 2,
            ..header
        },
        &key,
        &author,
        b"",
        rng,
    )
    .expect("sealable");
    t.push(
        "empty plaintext, version 2",
        Expect::Valid,
        case(&empty.to_bytes(), &key, &author, &r, b""),
    );
    let big = vec![0x5a; 4096];
    let env_big = seal_record(
        &RecordHeader {
            epoch: 0,
            version: u64::MAX,
            ..header
        },
        &key,
        &author,
        &big,
        rng,
    )
    .expect("sealable");
    t.push(
        "4 KiB plaintext, epoch 0, maximum version",
        Expect::Valid,
        case(&env_big.to_bytes(), &key, &author, &r, &big),
    );

    t.push(
        "wrong epoch key",
        Expect::Invalid("AuthFailed"),
        case(&raw, &other_key, &author, &r, b""),
    );
    t.push(
        "signature checked against another device",
        Expect::Invalid("BadSignature"),
        case(&raw, &key, &stranger, &r, b""),
    );
    let other_ref = RecordRef {
        record: RecordId([0; 16]),
        ..r
    };
    t.push(
        "relay served another record than requested",
        Expect::Invalid("WrongRecord"),
        case(&raw, &key, &author, &other_ref, b""),
    );

    // Layout: version(1) firm(16) file(16) record(16) epoch(8) version(8) author(16) nonce(24) len(4) ct sig(64).
    for (name, at, class) in [
        ("firm id", 1usize, "WrongRecord"),
        ("file id", 17, "WrongRecord"),
        ("record id", 33, "WrongRecord"),
        ("epoch", 56, "BadSignature"),
        ("record version", 64, "BadSignature"),
        ("author id", 65, "BadSignature"),
        ("nonce", 81, "BadSignature"),
        ("ciphertext", 109, "BadSignature"),
        ("tag", raw.len() - 65, "BadSignature"),
        ("signature R", raw.len() - 64, "BadSignature"),
        ("signature S", raw.len() - 1, "BadSignature"),
    ] {
        t.push(
            &format!("bit flipped in {name}"),
            Expect::Invalid(class),
            case(&flip(&raw, at), &key, &author, &r, b""),
        );
    }
    // The author re-signs tampered envelopes: only the AEAD can catch these.
    let resigned = |change: fn(&mut RecordEnvelope)| {
        let mut e = env.clone();
        change(&mut e);
        e.sign(&author);
        e.to_bytes()
    };
    t.push(
        "epoch changed and re-signed by the author",
        Expect::Invalid("AuthFailed"),
        case(&resigned(|e| e.header.epoch += 1), &key, &author, &r, b""),
    );
    t.push(
        "record version changed and re-signed",
        Expect::Invalid("AuthFailed"),
        case(&resigned(|e| e.header.version += 1), &key, &author, &r, b""),
    );
    t.push(
        "nonce changed and re-signed",
        Expect::Invalid("AuthFailed"),
        case(&resigned(|e| e.nonce[0] ^= 1), &key, &author, &r, b""),
    );
    t.push(
        "ciphertext changed and re-signed",
        Expect::Invalid("AuthFailed"),
        case(&resigned(|e| e.ciphertext[0] ^= 1), &key, &author, &r, b""),
    );

    t.push(
        "unknown version",
        Expect::Invalid("Malformed"),
        case(&flip(&raw, 0), &key, &author, &r, b""),
    );
    t.push(
        "truncated signature",
        Expect::Invalid("Malformed"),
        case(&raw[..raw.len() - 1], &key, &author, &r, b""),
    );
    t.push(
        "trailing byte",
        Expect::Invalid("Malformed"),
        case(&[raw.clone(), vec![0]].concat(), &key, &author, &r, b""),
    );
    let mut huge = raw.clone();
    huge[105..109].copy_from_slice(&((1u32 << 20) + 17).to_be_bytes());
    t.push(
        "ciphertext length over the maximum",
        Expect::Invalid("Malformed"),
        case(&huge, &key, &author, &r, b""),
    );

    file(
        "LEDGERLINE-RECORD-V1",
        "protocol-spec/records.md",
        &[
            ("Valid", "The envelope opens to plaintext."),
            ("Malformed", "Not a canonical envelope."),
            (
                "WrongRecord",
                "The header names another firm, file or record than expected.",
            ),
            ("BadSignature", "The author's signature does not verify."),
            ("AuthFailed", "XChaCha20-Poly1305 refuses."),
        ],
        vec![t.group("RecordOpen", json!({}))],
    )
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |_, t| {
        let env = match RecordEnvelope::from_bytes(&bytes(t, "envelope")?) {
            Ok(e) => e,
            Err(_) => return Ok(Outcome::Invalid("Malformed".into())),
        };
        let e = &t["expected"];
        let want = RecordRef {
            firm: FirmId(array(e, "firm")?),
            file: FileId(array(e, "file")?),
            record: RecordId(array(e, "record")?),
        };
        let author =
            verifying_key_from_bytes(&array(t, "authorPublicKey")?).map_err(|e| e.to_string())?;
        let r = open_record(
            &env,
            &want,
            &EpochKey::from_bytes(array(t, "epochKey")?),
            &author,
        );
        if let Ok(pt) = &r {
            if pt[..] != bytes(t, "plaintext")?[..] {
                return Err("plaintext differs".into());
            }
        }
        Ok(Outcome::of(r, RecordError::class))
    })
}
