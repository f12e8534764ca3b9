//! The device: a vodozemac Olm `Account` whose Ed25519 key signs as the device
//! (requests, records, prekeys), plus the X25519 key that receives member-key wraps.

use ledgerline_protocol::ids::{DeviceId, FirmId};
use ledgerline_protocol::keys::{DeviceSigner, DeviceWrapSecret, VerifyingKey};
use ledgerline_protocol::prekeys::{KeyKind, SignedPrekey};
use ledgerline_protocol::roster::DeviceKeys;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use std::fmt;
use vodozemac::olm::{Account, AccountPickle};
use zeroize::Zeroizing;

/// Errors of device state handling.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The pickle could not be decrypted or parsed: wrong key or corrupted store.
    #[error("device state could not be unpickled (wrong key or corrupted store)")]
    Unpickle,
    /// The account's Ed25519 key is not a valid verifying key (cannot happen for keys
    /// vodozemac generated; reported rather than assumed).
    #[error("account signing key is invalid")]
    InvalidKey,
}

/// One device's long-term secrets.
pub struct DeviceAccount {
    firm: FirmId,
    device: DeviceId,
    account: Account,
    wrap: DeviceWrapSecret,
    next_key_id: u32,
    signing: VerifyingKey,
}

impl fmt::Debug for DeviceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeviceAccount {{ firm: {}, device: {}, secrets: [redacted] }}",
            self.firm, self.device
        )
    }
}

/// Versioned persisted form, itself encrypted by vodozemac's pickle encryption under the
/// store's pickle key before it is written anywhere.
#[derive(Serialize, Deserialize)]
struct DevicePickleV1 {
    version: u8,
    firm: FirmId,
    device: DeviceId,
    account: String,
    wrap: String,
    next_key_id: u32,
}

impl DeviceAccount {
    /// A new device of `firm` with a fresh Olm account and wrap key.
    pub fn generate<R: RngCore + CryptoRng>(
        firm: FirmId,
        rng: &mut R,
    ) -> Result<Self, DeviceError> {
        let device = DeviceId::random(rng);
        Self::assemble(
            firm,
            device,
            Account::new(),
            DeviceWrapSecret::generate(rng),
            1,
        )
    }

    fn assemble(
        firm: FirmId,
        device: DeviceId,
        account: Account,
        wrap: DeviceWrapSecret,
        next_key_id: u32,
    ) -> Result<Self, DeviceError> {
        let signing = VerifyingKey::from_bytes(account.ed25519_key().as_bytes())
            .map_err(|_| DeviceError::InvalidKey)?;
        Ok(Self {
            firm,
            device,
            account,
            wrap,
            next_key_id,
            signing,
        })
    }

    /// The firm.
    pub fn firm(&self) -> FirmId {
        self.firm
    }

    /// The device id.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// The public keys the member certifies in the roster.
    pub fn keys(&self) -> DeviceKeys {
        DeviceKeys {
            signing: self.signing,
            identity: self.account.curve25519_key().to_bytes(),
            wrap: self.wrap.public_key(),
        }
    }

    /// The wrap secret (to unwrap member keys).
    pub fn wrap_secret(&self) -> &DeviceWrapSecret {
        &self.wrap
    }

    pub(crate) fn account(&self) -> &Account {
        &self.account
    }

    pub(crate) fn account_mut(&mut self) -> &mut Account {
        &mut self.account
    }

    /// Generates `count` one-time keys, signed for upload.
    pub fn new_one_time_keys(&mut self, count: usize) -> Vec<SignedPrekey> {
        let created = self.account.generate_one_time_keys(count).created;
        self.account.mark_keys_as_published();
        created
            .into_iter()
            .map(|k| {
                let id = self.next_key_id;
                self.next_key_id = self.next_key_id.wrapping_add(1);
                SignedPrekey::sign(
                    self.firm,
                    self.device,
                    KeyKind::OneTime,
                    id,
                    k.to_bytes(),
                    self,
                )
            })
            .collect()
    }

    /// Generates a new fallback key, signed for upload.
    pub fn new_fallback_key(&mut self) -> Option<SignedPrekey> {
        let k = self
            .account
            .generate_fallback_key()
            .or_else(|| self.account.fallback_key().into_values().next())?;
        self.account.mark_keys_as_published();
        let id = self.next_key_id;
        self.next_key_id = self.next_key_id.wrapping_add(1);
        Some(SignedPrekey::sign(
            self.firm,
            self.device,
            KeyKind::Fallback,
            id,
            k.to_bytes(),
            self,
        ))
    }

    /// Encrypted pickle of all device secrets under `pickle_key`.
    pub fn pickle(&self, pickle_key: &[u8; 32]) -> String {
        let p = DevicePickleV1 {
            version: 1,
            firm: self.firm,
            device: self.device,
            account: self.account.pickle().encrypt(pickle_key),
            wrap: hex::encode(*self.wrap.to_bytes()),
            next_key_id: self.next_key_id,
        };
        let json = Zeroizing::new(serde_json::to_vec(&p).unwrap_or_default());
        crate::pickle::seal(pickle_key, &json)
    }

    /// Restores a device from [`DeviceAccount::pickle`].
    pub fn from_pickle(pickled: &str, pickle_key: &[u8; 32]) -> Result<Self, DeviceError> {
        let json = crate::pickle::open(pickle_key, pickled).ok_or(DeviceError::Unpickle)?;
        let p: DevicePickleV1 = serde_json::from_slice(&json).map_err(|_| DeviceError::Unpickle)?;
        if p.version != 1 {
            return Err(DeviceError::Unpickle);
        }
        let account = Account::from_pickle(
            AccountPickle::from_encrypted(&p.account, pickle_key)
                .map_err(|_| DeviceError::Unpickle)?,
        );
        let mut wrap = [0u8; 32];
        hex::decode_to_slice(&p.wrap, &mut wrap).map_err(|_| DeviceError::Unpickle)?;
        let wrap = DeviceWrapSecret::from_bytes(wrap);
        Self::assemble(p.firm, p.device, account, wrap, p.next_key_id)
    }
}

impl DeviceSigner for DeviceAccount {
    fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.account.sign(message).to_bytes()
    }

    fn public_key(&self) -> VerifyingKey {
        self.signing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerline_protocol::request::RequestHead;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn account_key_signs_requests_and_prekeys_that_verify() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut d = DeviceAccount::generate(FirmId([1; 16]), &mut rng).unwrap();
        let req = RequestHead::new(d.firm(), d.device(), "GET", "/v1/roster", 5, b"", &mut rng)
            .unwrap()
            .sign(&d);
        req.verify_signature(&d.keys().signing).unwrap();
        let keys = d.new_one_time_keys(3);
        assert_eq!(keys.len(), 3);
        for k in &keys {
            k.verify(d.firm(), d.device(), &d.keys().signing).unwrap();
        }
        assert_ne!(keys[0].key_id, keys[1].key_id);
        let fb = d.new_fallback_key().unwrap();
        assert_eq!(fb.kind, KeyKind::Fallback);
        let fb2 = d.new_fallback_key().unwrap();
        assert_ne!(
            fb.key, fb2.key,
            "each call yields the new fallback key, not the replaced one"
        );
    }

    #[test]
    fn pickle_round_trip_and_wrong_key() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let mut d = DeviceAccount::generate(FirmId([1; 16]), &mut rng).unwrap();
        d.new_one_time_keys(2);
        let key = [7u8; 32];
        let p = d.pickle(&key);
        let back = DeviceAccount::from_pickle(&p, &key).unwrap();
        assert_eq!(back.keys(), d.keys());
        assert_eq!(back.device(), d.device());
        assert!(matches!(
            DeviceAccount::from_pickle(&p, &[8u8; 32]),
            Err(DeviceError::Unpickle)
        ));
        let dbg = format!("{d:?}");
        assert!(dbg.contains("[redacted]") && !dbg.contains(&hex::encode(*d.wrap.to_bytes())));
        assert!(
            !p.contains(&hex::encode(*d.wrap.to_bytes())),
            "the pickle must not hold the wrap secret in clear"
        );
    }
}
