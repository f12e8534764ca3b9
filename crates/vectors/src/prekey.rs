//! `prekey.json` (`protocol-spec/prekeys.md`).

use crate::{array, bytes, check_all, file, flip, h, uint, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::ids::{DeviceId, FirmId};
use ledgerline_protocol::keys::{verifying_key_from_bytes, DeviceSigningKey};
use ledgerline_protocol::prekeys::{KeyKind, PrekeyError, SignedPrekey};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use serde_json::{json, Value};

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let dev = DeviceSigningKey::generate(rng);
    let other = DeviceSigningKey::generate(rng);
    let firm = FirmId::random(rng);
    let device = DeviceId::random(rng);
    let mut t = Tests::default();
    let case = |firm: FirmId,
                device: DeviceId,
                signer: &DeviceSigningKey,
                encoded: &[u8],
                k: Option<&SignedPrekey>| {
        json!({
            "firm": h(&firm.0),
            "device": h(&device.0),
            "devicePublicKey": h(signer.verifying_key().as_bytes()),
            "prekey": h(encoded),
            "kind": k.map(|k| if k.kind == KeyKind::OneTime { "one-time" } else { "fallback" }).unwrap_or(""),
            "keyId": k.map(|k| k.key_id).unwrap_or(0),
            "key": k.map(|k| h(&k.key)).unwrap_or_default(),
        })
    };
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    let otk = SignedPrekey::sign(firm, device, KeyKind::OneTime, 1, key, &dev);
    rng.fill_bytes(&mut key);
    let fb = SignedPrekey::sign(firm, device, KeyKind::Fallback, u32::MAX, key, &dev);
    let raw = otk.to_bytes();
    t.push(
        "one-time key",
        Expect::Valid,
        case(firm, device, &dev, &raw, Some(&otk)),
    );
    t.push(
        "fallback key",
        Expect::Valid,
        case(firm, device, &dev, &fb.to_bytes(), Some(&fb)),
    );
    t.push(
        "verified for another device",
        Expect::Invalid("BadSignature"),
        case(firm, DeviceId([0; 16]), &dev, &raw, None),
    );
    t.push(
        "verified in another firm",
        Expect::Invalid("BadSignature"),
        case(FirmId([0; 16]), device, &dev, &raw, None),
    );
    t.push(
        "signed by another device's key",
        Expect::Invalid("BadSignature"),
        case(firm, device, &other, &raw, None),
    );
    let mut as_fallback = raw.clone();
    as_fallback[1] = 2;
    t.push(
        "one-time key relabelled as fallback",
        Expect::Invalid("BadSignature"),
        case(firm, device, &dev, &as_fallback, None),
    );
    for (name, at) in [
        ("key id", 5usize),
        ("key", 6),
        ("key end", 37),
        ("signature", 38),
        ("signature end", 101),
    ] {
        t.push(
            &format!("bit flipped in {name}"),
            Expect::Invalid("BadSignature"),
            case(firm, device, &dev, &flip(&raw, at), None),
        );
    }
    let mut bad_kind = raw.clone();
    bad_kind[1] = 3;
    t.push(
        "unknown kind",
        Expect::Invalid("Malformed"),
        case(firm, device, &dev, &bad_kind, None),
    );
    t.push(
        "unknown version",
        Expect::Invalid("Malformed"),
        case(firm, device, &dev, &flip(&raw, 0), None),
    );
    t.push(
        "truncated",
        Expect::Invalid("Malformed"),
        case(firm, device, &dev, &raw[..101], None),
    );
    t.push(
        "trailing byte",
        Expect::Invalid("Malformed"),
        case(firm, device, &dev, &[raw.clone(), vec![0]].concat(), None),
    );
    file(
        "LEDGERLINE-PREKEY-V1",
        "protocol-spec/prekeys.md",
        &[
            (
                "Valid",
                "The key decodes and its signature verifies for firm and device.",
            ),
            (
                "Malformed",
                "Not a 102-byte encoded key of version 1 with a known kind.",
            ),
            ("BadSignature", "The device's signature does not verify."),
        ],
        vec![t.group("PrekeyVerify", json!({}))],
    )
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |_, t| {
        let Ok(k) = SignedPrekey::from_bytes(&bytes(t, "prekey")?) else {
            return Ok(Outcome::Invalid("Malformed".into()));
        };
        let key =
            verifying_key_from_bytes(&array(t, "devicePublicKey")?).map_err(|e| e.to_string())?;
        let r = k.verify(
            FirmId(array(t, "firm")?),
            DeviceId(array(t, "device")?),
            &key,
        );
        if r.is_ok() {
            let kind = if k.kind == KeyKind::OneTime {
                "one-time"
            } else {
                "fallback"
            };
            if t["kind"].as_str() != Some(kind)
                || u64::from(k.key_id) != uint(t, "keyId")?
                || k.key[..] != bytes(t, "key")?[..]
            {
                return Err("decoded fields differ".into());
            }
        }
        Ok(Outcome::of(r, PrekeyError::class))
    })
}
