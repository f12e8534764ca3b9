//! Where the local store's key lives: the OS keyring (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows) when one is available, else an Argon2id
//! passphrase.
//!
//! With the keyring, the key is 32 random bytes stored under service [`SERVICE`] and a
//! random per-profile account name, which a marker file in the profile directory records
//! (so a moved profile still finds its key). The marker holds no secret.

use crate::store::StoreKey;
use rand_core::{OsRng, RngCore};
use std::path::Path;
use zeroize::Zeroizing;

/// Keyring service name.
pub const SERVICE: &str = "ledgerline";
/// Marker file naming the profile's keyring entry.
pub const MARKER_FILE: &str = "keyring";
const MARKER_PREFIX: &str = "ledgerline-keyring-v1 ";

/// Why the keyring could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No usable keyring on this system (no Secret Service, locked, ...).
    #[error("the OS keyring is not available: {0}")]
    Unavailable(String),
    /// The profile's entry is gone from the keyring.
    #[error("the OS keyring has no key for this profile (entry {0}); was it deleted?")]
    Missing(String),
    /// The marker file or the stored value is damaged.
    #[error("keyring entry damaged: {0}")]
    Damaged(String),
}

fn entry(account: &str) -> Result<keyring::Entry, KeystoreError> {
    keyring::Entry::new(SERVICE, account).map_err(|e| KeystoreError::Unavailable(e.to_string()))
}

/// Whether a keyring answers (an absent probe entry counts as available).
pub fn available() -> bool {
    keyring::Entry::new(SERVICE, "availability-probe")
        .is_ok_and(|e| matches!(e.get_password(), Ok(_) | Err(keyring::Error::NoEntry)))
}

/// Whether the profile at `dir` keeps its key in the keyring.
pub fn uses_keyring(dir: &Path) -> bool {
    dir.join(MARKER_FILE).exists()
}

/// Makes a new random store key, stores it in the keyring and writes the marker.
pub fn create(dir: &Path) -> Result<StoreKey, KeystoreError> {
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let account = format!("profile-{}", hex::encode(id));
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    let e = entry(&account)?;
    e.set_secret(key.as_ref())
        .map_err(|e| KeystoreError::Unavailable(e.to_string()))?;
    // Read back: a keyring that accepts but does not keep is no keyring.
    let back = Zeroizing::new(
        e.get_secret()
            .map_err(|e| KeystoreError::Unavailable(e.to_string()))?,
    );
    if back.as_slice() != key.as_ref() {
        return Err(KeystoreError::Unavailable(
            "the keyring did not keep the key".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| KeystoreError::Damaged(e.to_string()))?;
    std::fs::write(dir.join(MARKER_FILE), format!("{MARKER_PREFIX}{account}\n"))
        .map_err(|e| KeystoreError::Damaged(e.to_string()))?;
    Ok(StoreKey::from_bytes(*key))
}

/// Reads the profile's store key from the keyring.
pub fn load(dir: &Path) -> Result<StoreKey, KeystoreError> {
    let marker = std::fs::read_to_string(dir.join(MARKER_FILE))
        .map_err(|e| KeystoreError::Damaged(format!("marker: {e}")))?;
    let account = marker
        .trim()
        .strip_prefix(MARKER_PREFIX)
        .filter(|a| a.starts_with("profile-") && a.len() == 40)
        .ok_or_else(|| KeystoreError::Damaged("marker file".into()))?;
    let secret = Zeroizing::new(entry(account)?.get_secret().map_err(|e| match e {
        keyring::Error::NoEntry => KeystoreError::Missing(account.to_owned()),
        other => KeystoreError::Unavailable(other.to_string()),
    })?);
    let key: [u8; 32] = secret
        .as_slice()
        .try_into()
        .map_err(|_| KeystoreError::Damaged("stored key length".into()))?;
    Ok(StoreKey::from_bytes(key))
}

/// Removes the profile's key from the keyring (the store becomes unreadable for good).
pub fn forget(dir: &Path) -> Result<(), KeystoreError> {
    let marker = std::fs::read_to_string(dir.join(MARKER_FILE))
        .map_err(|e| KeystoreError::Damaged(format!("marker: {e}")))?;
    let account = marker
        .trim()
        .strip_prefix(MARKER_PREFIX)
        .ok_or_else(|| KeystoreError::Damaged("marker file".into()))?;
    entry(account)?
        .delete_credential()
        .map_err(|e| KeystoreError::Unavailable(e.to_string()))
}

/// Keeps another secret of this profile (a mailbox password) under `account`.
pub fn put_secret(account: &str, secret: &str) -> Result<(), KeystoreError> {
    let e = entry(account)?;
    e.set_password(secret)
        .map_err(|e| KeystoreError::Unavailable(e.to_string()))?;
    let back = Zeroizing::new(
        e.get_password()
            .map_err(|e| KeystoreError::Unavailable(e.to_string()))?,
    );
    if back.as_str() != secret {
        return Err(KeystoreError::Unavailable(
            "the keyring did not keep the secret".into(),
        ));
    }
    Ok(())
}

/// Reads a secret kept with [`put_secret`].
pub fn secret(account: &str) -> Result<Zeroizing<String>, KeystoreError> {
    entry(account)?
        .get_password()
        .map(Zeroizing::new)
        .map_err(|e| match e {
            keyring::Error::NoEntry => KeystoreError::Missing(account.to_owned()),
            other => KeystoreError::Unavailable(other.to_string()),
        })
}

/// Deletes a secret kept with [`put_secret`] (absent is fine).
pub fn forget_secret(account: &str) -> Result<(), KeystoreError> {
    match entry(account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(KeystoreError::Unavailable(e.to_string())),
    }
}

// ---------------------------------------------------------------- passphrase

/// The file holding a passphrase profile's store key, wrapped under the passphrase.
pub const WRAPPED_KEY_FILE: &str = "store.key";
const WRAP_VERSION: u8 = 1;
const WRAP_AD: &[u8] = b"ledgerline store key v1";
/// version ‖ salt ‖ nonce ‖ sealed key (32 + 16 tag).
const WRAP_LEN: usize = 1 + 16 + 24 + 48;

/// Why a passphrase did not open (or re-wrap) the store key.
#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    /// The passphrase is wrong (the wrapped key does not open with it).
    #[error("wrong passphrase")]
    Wrong,
    /// The wrapped key file is damaged or unreadable.
    #[error("the wrapped store key ({WRAPPED_KEY_FILE}) is damaged: {0}")]
    Damaged(String),
    /// Writing the new wrapped key failed (the old one still works).
    #[error("cannot write the wrapped store key: {0}")]
    Write(String),
    /// The key derivation failed.
    #[error("key derivation: {0}")]
    Kdf(String),
}

fn kek(passphrase: &str, salt: &[u8; 16]) -> Result<StoreKey, PassphraseError> {
    StoreKey::from_passphrase(passphrase, salt).map_err(|e| PassphraseError::Kdf(e.to_string()))
}

fn seal(passphrase: &str, key: &StoreKey) -> Result<Vec<u8>, PassphraseError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let kek = kek(passphrase, &salt)?;
    let sealed = chacha20poly1305::XChaCha20Poly1305::new(kek.expose().into())
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: key.expose(),
                aad: WRAP_AD,
            },
        )
        .map_err(|_| PassphraseError::Kdf("sealing failed".into()))?;
    let mut out = Vec::with_capacity(WRAP_LEN);
    out.push(WRAP_VERSION);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open(passphrase: &str, wrapped: &[u8]) -> Result<StoreKey, PassphraseError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let body = match wrapped.split_first() {
        Some((&WRAP_VERSION, body)) if wrapped.len() == WRAP_LEN => body,
        _ => return Err(PassphraseError::Damaged("unknown format".into())),
    };
    let (salt, rest) = body.split_at(16);
    let (nonce, sealed) = rest.split_at(24);
    let salt: [u8; 16] = salt
        .try_into()
        .map_err(|_| PassphraseError::Damaged("salt".into()))?;
    let kek = kek(passphrase, &salt)?;
    let plain = Zeroizing::new(
        chacha20poly1305::XChaCha20Poly1305::new(kek.expose().into())
            .decrypt(
                nonce.into(),
                Payload {
                    msg: sealed,
                    aad: WRAP_AD,
                },
            )
            .map_err(|_| PassphraseError::Wrong)?,
    );
    let key: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| PassphraseError::Damaged("key length".into()))?;
    Ok(StoreKey::from_bytes(key))
}

/// Writes `bytes` to `dir/name` so that a crash leaves the old file or the new one whole.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PassphraseError> {
    use std::io::Write;
    let w = |e: std::io::Error| PassphraseError::Write(e.to_string());
    let tmp = dir.join(format!("{name}.new"));
    let mut f = std::fs::File::create(&tmp).map_err(w)?;
    f.write_all(bytes).map_err(w)?;
    f.sync_all().map_err(w)?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name)).map_err(w)?;
    // The rename itself is durable once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Whether the profile at `dir` keeps its store key wrapped under a passphrase (profiles
/// made before this scheme derive the key from the passphrase directly).
pub fn uses_wrapped_key(dir: &Path) -> bool {
    dir.join(WRAPPED_KEY_FILE).exists()
}

/// A new random store key for a new profile, wrapped under `passphrase` in `dir`.
pub fn create_wrapped(dir: &Path, passphrase: &str) -> Result<StoreKey, PassphraseError> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    let key = StoreKey::from_bytes(*key);
    std::fs::create_dir_all(dir).map_err(|e| PassphraseError::Write(e.to_string()))?;
    write_atomically(dir, WRAPPED_KEY_FILE, &seal(passphrase, &key)?)?;
    Ok(key)
}

/// The store key of the profile at `dir`, unwrapped with `passphrase`.
pub fn load_wrapped(dir: &Path, passphrase: &str) -> Result<StoreKey, PassphraseError> {
    let wrapped = std::fs::read(dir.join(WRAPPED_KEY_FILE))
        .map_err(|e| PassphraseError::Damaged(e.to_string()))?;
    open(passphrase, &wrapped)
}

/// Changes the passphrase: the store key stays, only its wrapping changes (nothing in the
/// store is rewritten). Refuses unless `old` opens the current wrapping.
pub fn change_passphrase(dir: &Path, old: &str, new: &str) -> Result<(), PassphraseError> {
    let key = load_wrapped(dir, old)?;
    write_atomically(dir, WRAPPED_KEY_FILE, &seal(new, &key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_with_its_passphrase_only_and_survives_a_change() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        let key = create_wrapped(d, "stare hasło").unwrap_or_else(|e| panic!("{e}"));
        let again = load_wrapped(d, "stare hasło").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.expose(), again.expose());
        assert!(matches!(
            load_wrapped(d, "zgadywane"),
            Err(PassphraseError::Wrong)
        ));
        assert!(matches!(
            change_passphrase(d, "zgadywane", "nowe"),
            Err(PassphraseError::Wrong)
        ));
        change_passphrase(d, "stare hasło", "nowe hasło").unwrap_or_else(|e| panic!("{e}"));
        let after = load_wrapped(d, "nowe hasło").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.expose(), after.expose(), "the data key never changes");
        assert!(matches!(
            load_wrapped(d, "stare hasło"),
            Err(PassphraseError::Wrong)
        ));
        // A damaged file is said to be damaged, not a wrong passphrase.
        std::fs::write(d.join(WRAPPED_KEY_FILE), b"\x01short").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            load_wrapped(d, "nowe hasło"),
            Err(PassphraseError::Damaged(_))
        ));
    }
}
