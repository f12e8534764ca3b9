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
