//! Opaque identifiers (`protocol-spec/encoding.md`, "Identifiers").
//!
//! Every id is 16 random bytes chosen by the client that creates the thing. Ids carry no
//! meaning, so the relay learns nothing from them but equality. On JSON they travel as 32
//! lowercase hex digits.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Size of every identifier in bytes.
pub const ID_LEN: usize = 16;

/// An id that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an identifier must be 32 lowercase hex digits")]
pub struct ParseIdError;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// A fresh random id.
            pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
                let mut b = [0u8; ID_LEN];
                rng.fill_bytes(&mut b);
                Self(b)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }

            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                if s.len() != 2 * ID_LEN || s.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(ParseIdError);
                }
                let mut b = [0u8; ID_LEN];
                hex::decode_to_slice(s, &mut b).map_err(|_| ParseIdError)?;
                Ok(Self(b))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

opaque_id!(
    /// A firm (one roster, one audit log).
    FirmId
);
opaque_id!(
    /// A member of a firm (a person).
    MemberId
);
opaque_id!(
    /// One device of a member.
    DeviceId
);
opaque_id!(
    /// A customer file.
    FileId
);
opaque_id!(
    /// A team of members (payroll, VAT, …) that customer files can be granted to.
    TeamId
);
opaque_id!(
    /// A record inside a customer file.
    RecordId
);
opaque_id!(
    /// A document (attachment) inside a customer file.
    DocumentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_strictness() {
        let id = FileId([0xab; 16]);
        assert_eq!(id.to_hex().parse::<FileId>(), Ok(id));
        assert!("AB".repeat(16).parse::<FileId>().is_err());
        assert!("ab".repeat(15).parse::<FileId>().is_err());
        assert!("zz".repeat(16).parse::<FileId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<FileId>(&json).unwrap(), id);
    }
}
