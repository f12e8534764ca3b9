//! Signed one-time and fallback keys (`protocol-spec/prekeys.md`).
//!
//! A device publishes Curve25519 one-time keys of its Olm account (and one fallback key) so
//! that others can open Olm sessions to it while it is offline. Each key is signed by the
//! device's Ed25519 key: the relay checks the signature on upload and the claimer checks
//! it again, so a relay cannot substitute keys of its own.

use crate::constants::CTX_ONE_TIME_KEY;
use crate::crypto;
use crate::encoding::{DecodeError, Reader, Writer};
use crate::ids::{DeviceId, FirmId};
use crate::keys::{DeviceSigner, VerifyingKey};
use crate::PROTOCOL_VERSION;
use thiserror::Error;

/// Size of an encoded signed key.
pub const SIGNED_KEY_LEN: usize = 1 + 1 + 4 + 32 + 64;

/// One-time keys are used once; a fallback key is handed out when none is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Removed from the relay when claimed.
    OneTime = 1,
    /// Kept until the device replaces it.
    Fallback = 2,
}

/// A Curve25519 key of a device's Olm account, signed by the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPrekey {
    /// One-time or fallback.
    pub kind: KeyKind,
    /// Device-chosen id, unique per device and kind.
    pub key_id: u32,
    /// The Curve25519 public key.
    pub key: [u8; 32],
    /// Ed25519 by the device over `CTX_ONE_TIME_KEY || 0x00 || firm || device || kind || key_id || key`.
    pub signature: [u8; 64],
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrekeyError {
    /// Not an encoded signed key.
    #[error("malformed prekey: {0}")]
    Malformed(#[from] DecodeError),
    /// The device's signature does not verify.
    #[error("prekey signature is invalid")]
    BadSignature,
}

impl PrekeyError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Malformed",
            Self::BadSignature => "BadSignature",
        }
    }
}

fn signed_part(
    firm: FirmId,
    device: DeviceId,
    kind: KeyKind,
    key_id: u32,
    key: &[u8; 32],
) -> Vec<u8> {
    Writer::new()
        .u8(PROTOCOL_VERSION)
        .fixed(&firm.0)
        .fixed(&device.0)
        .u8(kind as u8)
        .u32(key_id)
        .fixed(key)
        .finish()
}

impl SignedPrekey {
    /// Signs a key of `device` in `firm`.
    pub fn sign(
        firm: FirmId,
        device: DeviceId,
        kind: KeyKind,
        key_id: u32,
        key: [u8; 32],
        signer: &impl DeviceSigner,
    ) -> Self {
        let signature = crypto::sign_as_device(
            signer,
            CTX_ONE_TIME_KEY,
            &signed_part(firm, device, kind, key_id, &key),
        );
        Self {
            kind,
            key_id,
            key,
            signature,
        }
    }

    /// Checks the signature of `device` in `firm`.
    pub fn verify(
        &self,
        firm: FirmId,
        device: DeviceId,
        signer: &VerifyingKey,
    ) -> Result<(), PrekeyError> {
        let msg = signed_part(firm, device, self.kind, self.key_id, &self.key);
        if crypto::verify(signer, CTX_ONE_TIME_KEY, &msg, &self.signature) {
            Ok(())
        } else {
            Err(PrekeyError::BadSignature)
        }
    }

    /// `version || kind || key_id || key || signature` (102 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new()
            .u8(PROTOCOL_VERSION)
            .u8(self.kind as u8)
            .u32(self.key_id)
            .fixed(&self.key)
            .fixed(&self.signature)
            .finish()
    }

    /// Decodes [`SignedPrekey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let kind = match r.u8("kind")? {
            1 => KeyKind::OneTime,
            2 => KeyKind::Fallback,
            _ => return Err(DecodeError::InvalidValue("kind")),
        };
        let k = Self {
            kind,
            key_id: r.u32("key_id")?,
            key: r.array("key")?,
            signature: r.array("signature")?,
        };
        r.finish()?;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::DeviceSigningKey;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;

    proptest! {
        #[test]
        fn round_trip_and_bit_flips(bit in 0usize..(8 * SIGNED_KEY_LEN), id in any::<u32>()) {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
            let dev = DeviceSigningKey::generate(&mut rng);
            let (firm, device) = (FirmId([1; 16]), DeviceId([2; 16]));
            let k = SignedPrekey::sign(firm, device, KeyKind::OneTime, id, [9; 32], &dev);
            let bytes = k.to_bytes();
            prop_assert_eq!(bytes.len(), SIGNED_KEY_LEN);
            prop_assert_eq!(SignedPrekey::from_bytes(&bytes).unwrap(), k.clone());
            prop_assert!(k.verify(firm, device, &dev.verifying_key()).is_ok());
            prop_assert!(k.verify(firm, DeviceId([3; 16]), &dev.verifying_key()).is_err());
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let ok = SignedPrekey::from_bytes(&flipped).map(|k| k.verify(firm, device, &dev.verifying_key()).is_ok()).unwrap_or(false);
            prop_assert!(!ok);
        }
    }
}
