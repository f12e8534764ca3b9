//! Sealing pickled state for the local store: XChaCha20-Poly1305 under a key derived
//! (HKDF-SHA256, [`crate::PICKLE_INFO`]) from the store's pickle key. The store is
//! encrypted as a whole too; this layer keeps secrets sealed also in memory dumps of rows
//! and in exported backups.

use rand_core::RngCore;
use zeroize::Zeroizing;

/// XChaCha20-Poly1305 under a key derived from the pickle key; `nonce || ciphertext`, hex.
pub(crate) fn seal(pickle_key: &[u8; 32], plaintext: &[u8]) -> String {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let key = derive(pickle_key);
    let mut nonce = [0u8; 24];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let ct = chacha20poly1305::XChaCha20Poly1305::new((&*key).into())
        .encrypt((&nonce).into(), plaintext)
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend(ct);
    hex::encode(out)
}

pub(crate) fn open(pickle_key: &[u8; 32], sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let raw = hex::decode(sealed).ok()?;
    if raw.len() < 24 {
        return None;
    }
    let (nonce, ct) = raw.split_at(24);
    let key = derive(pickle_key);
    chacha20poly1305::XChaCha20Poly1305::new((&*key).into())
        .decrypt(nonce.into(), ct)
        .ok()
        .map(Zeroizing::new)
}

fn derive(pickle_key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    let _ = hkdf::Hkdf::<sha2::Sha256>::new(None, pickle_key)
        .expand(crate::PICKLE_INFO.as_bytes(), out.as_mut());
    out
}
