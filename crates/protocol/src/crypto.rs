//! Thin, misuse-resistant wrappers over the primitives, shared by the constructions.

use crate::encoding::Writer;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// HKDF-SHA256 producing 32 bytes.
pub(crate) fn hkdf32(salt: Option<&[u8]>, ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = hk.expand_multi_info(info, okm.as_mut());
    okm
}

/// Ed25519 over `ctx || 0x00 || msg`.
pub(crate) fn sign(key: &SigningKey, ctx: &str, msg: &[u8]) -> Signature {
    key.sign(&context_message(ctx, msg))
}

/// Strict Ed25519 verification over `ctx || 0x00 || msg` (rejects small-order keys,
/// non-canonical encodings and malleable signatures).
pub(crate) fn verify(key: &VerifyingKey, ctx: &str, msg: &[u8], sig: &[u8; 64]) -> bool {
    let sig = Signature::from_bytes(sig);
    key.verify_strict(&context_message(ctx, msg), &sig).is_ok()
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
