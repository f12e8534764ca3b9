//! `signed-request.json` (`protocol-spec/signed-request.md`).

use crate::{array, bytes, check_all, file, flip, h, uint, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::ids::{DeviceId, FirmId};
use ledgerline_protocol::keys::{verifying_key_from_bytes, DeviceSigningKey};
use ledgerline_protocol::request::{RequestError, RequestHead, RequestVerifier, SignedRequest};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

const SKEW: u64 = 300_000;
const NOW: u64 = 1_775_000_000_000;

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let key = DeviceSigningKey::generate(rng);
    let other = DeviceSigningKey::generate(rng);
    let firm = FirmId::random(rng);
    let device = DeviceId::random(rng);
    let mut t = Tests::default();

    let mk = |rng: &mut ChaCha20Rng, method: &str, path: &str, ts: u64, body: &[u8]| {
        RequestHead::new(firm, device, method, path, ts, body, rng).expect("valid head")
    };
    let case = |req: &[u8], body: &[u8], seen: &[[u8; 16]]| {
        json!({
            "request": h(req),
            "body": h(body),
            "nowMs": NOW,
            "seenNonces": seen.iter().map(|n| h(n)).collect::<Vec<_>>(),
        })
    };

    let get = mk(
        rng,
        "GET",
        "/v1/files/0a0b/records?since=17",
        NOW - 1200,
        b"",
    )
    .sign(&key);
    let body = br#"{"ciphertext":"00ff"}"#;
    let post = mk(rng, "POST", "/v1/rooms/77/messages", NOW + 900, body).sign(&key);
    t.push(
        "GET with empty body",
        Expect::Valid,
        case(&get.to_bytes(), b"", &[]),
    );
    t.push(
        "POST with body",
        Expect::Valid,
        case(&post.to_bytes(), body, &[]),
    );
    let old_edge = mk(rng, "DELETE", "/v1/records/1", NOW - SKEW, b"").sign(&key);
    t.push(
        "timestamp exactly max skew in the past",
        Expect::Valid,
        case(&old_edge.to_bytes(), b"", &[]),
    );
    let new_edge = mk(rng, "PUT", "/v1/records/1", NOW + SKEW, b"x").sign(&key);
    t.push(
        "timestamp exactly max skew in the future",
        Expect::Valid,
        case(&new_edge.to_bytes(), b"x", &[]),
    );
    t.push(
        "other nonces seen before do not matter",
        Expect::Valid,
        case(&post.to_bytes(), body, &[[0; 16], [0xff; 16]]),
    );

    let stale = mk(rng, "GET", "/v1/sync", NOW - SKEW - 1, b"").sign(&key);
    t.push(
        "timestamp one millisecond too old",
        Expect::Invalid("Stale"),
        case(&stale.to_bytes(), b"", &[]),
    );
    let future = mk(rng, "GET", "/v1/sync", NOW + SKEW + 1, b"").sign(&key);
    t.push(
        "timestamp one millisecond too far ahead",
        Expect::Invalid("FromFuture"),
        case(&future.to_bytes(), b"", &[]),
    );
    t.push(
        "nonce already accepted: replay",
        Expect::Invalid("Replayed"),
        case(&post.to_bytes(), body, &[post.head.nonce]),
    );
    t.push(
        "body differs from the signed hash",
        Expect::Invalid("BodyHashMismatch"),
        case(&post.to_bytes(), b"{\"ciphertext\":\"00fe\"}", &[]),
    );
    t.push(
        "body missing",
        Expect::Invalid("BodyHashMismatch"),
        case(&post.to_bytes(), b"", &[]),
    );

    let forged = post.head.clone().sign(&other);
    t.push(
        "signed by another device's key",
        Expect::Invalid("BadSignature"),
        case(&forged.to_bytes(), body, &[]),
    );

    let fields: [(&str, fn(&mut RequestHead)); 8] = [
        ("firm id", |h| h.firm.0[0] ^= 1),
        ("device id", |h| h.device.0[15] ^= 1),
        ("method", |h| h.method = "PUT".into()),
        ("path", |h| h.path.push('x')),
        ("path query", |h| {
            h.path = h.path.replace("messages", "messagez")
        }),
        ("timestamp", |h| h.timestamp_ms ^= 1),
        ("nonce", |h| h.nonce[3] ^= 0x80),
        ("body hash", |h| h.body_sha256[31] ^= 1),
    ];
    for (name, change) in fields {
        let mut changed = post.clone();
        change(&mut changed.head);
        t.push(
            &format!("{name} changed after signing"),
            Expect::Invalid("BadSignature"),
            case(&changed.to_bytes(), body, &[]),
        );
    }
    let raw = post.to_bytes();
    let sig_at = raw.len() - 64;
    for (i, at) in [0usize, 31, 32, 63].into_iter().enumerate() {
        t.push(
            &format!("signature byte {at} flipped ({})", i + 1),
            Expect::Invalid("BadSignature"),
            case(&flip(&raw, sig_at + at), body, &[]),
        );
    }
    // Malleability: S + L is refused by strict verification.
    let mut malleable = post.clone();
    add_l(&mut malleable.signature);
    t.push(
        "signature S replaced by S + L (malleable)",
        Expect::Invalid("BadSignature"),
        case(&malleable.to_bytes(), body, &[]),
    );
    let mut zero = post.clone();
    zero.signature = [0; 64];
    t.push(
        "all-zero signature",
        Expect::Invalid("BadSignature"),
        case(&zero.to_bytes(), body, &[]),
    );

    t.push(
        "truncated by one byte",
        Expect::Invalid("Malformed"),
        case(&raw[..raw.len() - 1], body, &[]),
    );
    let mut trailing = raw.clone();
    trailing.push(0);
    t.push(
        "one trailing byte",
        Expect::Invalid("Malformed"),
        case(&trailing, body, &[]),
    );
    t.push(
        "unknown version byte",
        Expect::Invalid("Malformed"),
        case(&flip(&raw, 0), body, &[]),
    );
    t.push(
        "empty input",
        Expect::Invalid("Malformed"),
        case(&[], body, &[]),
    );
    let mut lower = post.head.clone();
    lower.method = "post".into();
    t.push(
        "lowercase method",
        Expect::Invalid("Malformed"),
        case(&lower.sign(&key).to_bytes(), body, &[]),
    );
    let mut relative = post.head.clone();
    relative.path = "v1/rooms".into();
    t.push(
        "path without leading slash",
        Expect::Invalid("Malformed"),
        case(&relative.sign(&key).to_bytes(), body, &[]),
    );
    let mut spaced = post.head.clone();
    spaced.path = "/v1/rooms /x".into();
    t.push(
        "path with a space",
        Expect::Invalid("Malformed"),
        case(&spaced.sign(&key).to_bytes(), body, &[]),
    );
    // Method length prefix (after version, firm, device) announcing more than 16 bytes.
    let mut long = raw.clone();
    long[33 + 3] = 17;
    t.push(
        "method length prefix over the maximum",
        Expect::Invalid("Malformed"),
        case(&long, body, &[]),
    );

    let group = t.group(
        "SignedRequestVerify",
        json!({ "publicKey": h(key.verifying_key().as_bytes()), "maxSkewMs": SKEW }),
    );
    file(
        "LEDGERLINE-SIGNED-REQUEST-V1",
        "protocol-spec/signed-request.md",
        &[
            ("Valid", "The relay accepts the request."),
            ("Malformed", "The bytes are not a canonical signed request."),
            ("Stale", "Timestamp older than nowMs - maxSkewMs."),
            ("FromFuture", "Timestamp newer than nowMs + maxSkewMs."),
            (
                "BadSignature",
                "Strict Ed25519 verification over the signature base fails.",
            ),
            (
                "BodyHashMismatch",
                "SHA-256 of body differs from the signed hash.",
            ),
            (
                "Replayed",
                "The nonce is in seenNonces (accepted before, inside the window).",
            ),
        ],
        vec![group],
    )
}

/// Adds the group order L to the little-endian scalar S (second half of the signature).
fn add_l(sig: &mut [u8; 64]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (s, l) in sig[32..].iter_mut().zip(L) {
        let v = u16::from(*s) + u16::from(l) + carry;
        *s = v as u8;
        carry = v >> 8;
    }
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |g, t| {
        let key = verifying_key_from_bytes(&array(g, "publicKey")?).map_err(|e| e.to_string())?;
        let skew = uint(g, "maxSkewMs")?;
        let now = uint(t, "nowMs")?;
        let req = match SignedRequest::from_bytes(&bytes(t, "request")?) {
            Ok(r) => r,
            Err(_) => return Ok(Outcome::Invalid("Malformed".into())),
        };
        let mut verifier = RequestVerifier::new(skew);
        // Seed the replay window as if the seen nonces had been accepted at nowMs.
        for n in t["seenNonces"].as_array().ok_or("seenNonces missing")? {
            let n: [u8; 16] = hex::decode(n.as_str().unwrap_or_default())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or("bad nonce")?;
            let mut prior = req.clone();
            prior.head.nonce = n;
            verifier.remember(&prior, now);
        }
        Ok(Outcome::of(
            verifier.verify(&req, &key, &bytes(t, "body")?, now),
            RequestError::class,
        ))
    })
}
