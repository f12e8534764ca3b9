//! Keys (`protocol-spec/keys.md`).
//!
//! Secret types zeroize on drop, print as `[redacted]` in `Debug`, compare in constant time
//! and are not `Serialize`: persisting one is an explicit call to `to_bytes`, whose result is
//! itself zeroized on drop.

use rand_core::{CryptoRng, RngCore};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use ed25519_dalek::VerifyingKey;
pub use x25519_dalek::PublicKey as WrapPublicKey;

use crate::encoding::DecodeError;

/// Parses a 32-byte Ed25519 public key (must be a valid curve point encoding).
pub fn verifying_key_from_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, DecodeError> {
    VerifyingKey::from_bytes(bytes).map_err(|_| DecodeError::InvalidValue("ed25519 public key"))
}

macro_rules! signing_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(ed25519_dalek::SigningKey);

        impl $name {
            /// A fresh key from `rng`.
            pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
                Self(ed25519_dalek::SigningKey::generate(rng))
            }

            /// The key from its 32-byte seed.
            pub fn from_bytes(seed: &[u8; 32]) -> Self {
                Self(ed25519_dalek::SigningKey::from_bytes(seed))
            }

            /// The 32-byte seed, for storage in an encrypted local store only.
            pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
                Zeroizing::new(self.0.to_bytes())
            }

            /// The public half.
            pub fn verifying_key(&self) -> VerifyingKey {
                self.0.verifying_key()
            }

            #[allow(dead_code)] // device keys sign through `DeviceSigner` instead
            pub(crate) fn inner(&self) -> &ed25519_dalek::SigningKey {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!(stringify!($name), "{{ public: {}, secret: [redacted] }}"),
                    hex::encode(self.0.verifying_key().as_bytes())
                )
            }
        }
    };
}

signing_key!(
    /// A device's Ed25519 key as a plain key pair. The client signs with its Olm account's
    /// Ed25519 key instead (through [`DeviceSigner`]); this type serves tools and tests.
    DeviceSigningKey
);

/// Anything that signs as a device: the Ed25519 key of the device's Olm account in the
/// client, or a [`DeviceSigningKey`]. Signatures must be RFC 8032 Ed25519 over exactly the
/// given bytes; the protocol adds its signing contexts itself.
pub trait DeviceSigner {
    /// Ed25519 signature over `message`.
    fn sign_bytes(&self, message: &[u8]) -> [u8; 64];
    /// The public key the roster certifies for the device.
    fn public_key(&self) -> VerifyingKey;
}

impl DeviceSigner for DeviceSigningKey {
    fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.0.sign(message).to_bytes()
    }

    fn public_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }
}
signing_key!(
    /// A member's Ed25519 master key: certifies the member's devices; an admin's signs
    /// roster events.
    MasterSigningKey
);
signing_key!(
    /// The relay's Ed25519 key for one firm's log: signs checkpoints.
    LogSigningKey
);
impl LogSigningKey {
    /// The log key of `firm` derived from a relay's 32-byte secret:
    /// `HKDF-SHA256(ikm = secret, info = INFO_RELAY_LOG_KEY || firm)` (`keys.md`). One
    /// secret backs every firm log of a relay, and each firm's key stands apart.
    pub fn derive(secret: &[u8; 32], firm: &crate::ids::FirmId) -> Self {
        let seed = crate::crypto::hkdf32(
            None,
            secret,
            &[crate::constants::INFO_RELAY_LOG_KEY.as_bytes(), &firm.0],
        );
        Self::from_bytes(&seed)
    }
}

signing_key!(
    /// A witness's Ed25519 key (the owner's device): co-signs checkpoints.
    WitnessSigningKey
);

/// A device's X25519 key pair used only to receive member-key wraps.
///
/// Kept apart from the Olm identity key on purpose: one key, one protocol.
#[derive(Clone)]
pub struct DeviceWrapSecret(x25519_dalek::StaticSecret);

impl DeviceWrapSecret {
    /// A fresh key from `rng`.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(x25519_dalek::StaticSecret::random_from_rng(rng))
    }

    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The secret bytes, for storage in an encrypted local store only.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half, published in the roster.
    pub fn public_key(&self) -> WrapPublicKey {
        WrapPublicKey::from(&self.0)
    }

    pub(crate) fn inner(&self) -> &x25519_dalek::StaticSecret {
        &self.0
    }
}

impl fmt::Debug for DeviceWrapSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeviceWrapSecret {{ public: {}, secret: [redacted] }}",
            hex::encode(self.public_key().as_bytes())
        )
    }
}

macro_rules! symmetric_secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// A fresh random key.
            pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
                let mut k = [0u8; 32];
                rng.fill_bytes(&mut k);
                Self(k)
            }

            /// Wraps raw bytes (from an unwrap or an encrypted local store).
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub fn expose(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl Eq for $name {}
    };
}

symmetric_secret!(
    /// A member's symmetric key, wrapped for each of the member's devices.
    MemberKey
);
symmetric_secret!(
    /// A team's symmetric key, wrapped under each holder's member key.
    TeamKey
);
symmetric_secret!(
    /// A customer file's key for one epoch.
    EpochKey
);
symmetric_secret!(
    /// The relay-held share of an accountable document key.
    ReleaseShare
);
symmetric_secret!(
    /// A document's key: derived from the epoch key and the release share.
    DocumentKey
);

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn debug_output_never_shows_secrets() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let dev = DeviceSigningKey::generate(&mut rng);
        let seed_hex = hex::encode(*dev.to_bytes());
        let dbg = format!("{dev:?}");
        assert!(!dbg.contains(&seed_hex), "{dbg}");
        assert!(dbg.contains("[redacted]"));

        let wrap = DeviceWrapSecret::generate(&mut rng);
        let dbg = format!("{wrap:?}");
        assert!(!dbg.contains(&hex::encode(*wrap.to_bytes())));

        let k = EpochKey::from_bytes([0x42; 32]);
        assert_eq!(format!("{k:?}"), "EpochKey([redacted])");
        assert_eq!(
            format!("{:?}", MemberKey::from_bytes([1; 32])),
            "MemberKey([redacted])"
        );
    }

    #[test]
    fn secrets_compare_by_value() {
        assert_eq!(EpochKey::from_bytes([1; 32]), EpochKey::from_bytes([1; 32]));
        assert_ne!(EpochKey::from_bytes([1; 32]), EpochKey::from_bytes([2; 32]));
    }
}
