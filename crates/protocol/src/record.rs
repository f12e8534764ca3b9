//! Record envelopes (`protocol-spec/records.md`).
//!
//! A record (note, contact, task, event, e-mail, document manifest) is encrypted under a
//! key derived from its file's epoch key, with the header as associated data, and signed by
//! the author device over header and ciphertext. The relay can check the signature against
//! the roster without being able to read anything.

use crate::constants::{CTX_RECORD, INFO_RECORD_KEY};
use crate::crypto;
use crate::encoding::{DecodeError, Reader, Writer};
use crate::ids::{DeviceId, FileId, FirmId, RecordId};
use crate::keys::{DeviceSigner, EpochKey, VerifyingKey};
use crate::PROTOCOL_VERSION;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// Largest record plaintext: 1 MiB. Larger content is a document.
pub const MAX_RECORD_PLAINTEXT: usize = 1 << 20;

/// The authenticated, unencrypted header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Firm.
    pub firm: FirmId,
    /// Customer file.
    pub file: FileId,
    /// Record.
    pub record: RecordId,
    /// Epoch of the key it is encrypted under.
    pub epoch: u64,
    /// Version of the record; each edit increments it.
    pub version: u64,
    /// Author device.
    pub author: DeviceId,
}

/// Which record a reader asked for; the opened header must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef {
    /// Firm.
    pub firm: FirmId,
    /// File.
    pub file: FileId,
    /// Record.
    pub record: RecordId,
}

impl RecordHeader {
    /// The reference naming this record.
    pub fn reference(&self) -> RecordRef {
        RecordRef {
            firm: self.firm,
            file: self.file,
            record: self.record,
        }
    }

    fn encode_into(&self, w: &mut Writer) {
        w.u8(PROTOCOL_VERSION)
            .fixed(&self.firm.0)
            .fixed(&self.file.0)
            .fixed(&self.record.0)
            .u64(self.epoch)
            .u64(self.version)
            .fixed(&self.author.0);
    }
}

/// A sealed record as stored and synced by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEnvelope {
    /// Header.
    pub header: RecordHeader,
    /// XChaCha20-Poly1305 nonce.
    pub nonce: [u8; 24],
    /// Ciphertext with tag.
    pub ciphertext: Vec<u8>,
    /// Author device's signature.
    pub signature: [u8; 64],
}

/// Why a record could not be opened. Each variant is a distinct failure class.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// Not a record envelope.
    #[error("malformed record: {0}")]
    Malformed(#[from] DecodeError),
    /// The envelope is another record than the one requested.
    #[error("record header does not match the requested record")]
    WrongRecord,
    /// The author's signature does not verify.
    #[error("record signature is invalid")]
    BadSignature,
    /// Decryption failed: wrong key or tampered ciphertext.
    #[error("record failed authentication")]
    AuthFailed,
    /// The plaintext is larger than a record may be.
    #[error("record plaintext too large")]
    TooLarge,
}

impl RecordError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Malformed",
            Self::WrongRecord => "WrongRecord",
            Self::BadSignature => "BadSignature",
            Self::AuthFailed => "AuthFailed",
            Self::TooLarge => "TooLarge",
        }
    }
}

impl RecordEnvelope {
    /// `header || nonce`: the AEAD associated data.
    fn associated_data(header: &RecordHeader, nonce: &[u8; 24]) -> Vec<u8> {
        let mut w = Writer::new();
        header.encode_into(&mut w);
        w.fixed(nonce);
        w.finish()
    }

    /// Everything but the signature: what the signature covers (after the context).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.header.encode_into(&mut w);
        w.fixed(&self.nonce).var(&self.ciphertext);
        w.finish()
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.signed_bytes();
        b.extend_from_slice(&self.signature);
        b
    }

    /// Decodes an envelope, refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let header = RecordHeader {
            firm: FirmId(r.array("firm")?),
            file: FileId(r.array("file")?),
            record: RecordId(r.array("record")?),
            epoch: r.u64("epoch")?,
            version: r.u64("version")?,
            author: DeviceId(r.array("author")?),
        };
        let nonce = r.array("nonce")?;
        let ciphertext = r.var("ciphertext", MAX_RECORD_PLAINTEXT + 16)?.to_vec();
        let signature = r.array("signature")?;
        r.finish()?;
        Ok(Self {
            header,
            nonce,
            ciphertext,
            signature,
        })
    }

    /// (Re-)signs the envelope as `author`. [`seal_record`] already does this; the separate
    /// call exists for tools that must build envelopes with chosen headers (test vectors).
    pub fn sign(&mut self, author: &impl DeviceSigner) {
        self.signature = crypto::sign_as_device(author, CTX_RECORD, &self.signed_bytes());
    }

    /// Checks the author's signature only (what the relay does).
    pub fn verify_signature(&self, author: &VerifyingKey) -> Result<(), RecordError> {
        if crypto::verify(author, CTX_RECORD, &self.signed_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(RecordError::BadSignature)
        }
    }
}

fn record_key(epoch_key: &EpochKey) -> Zeroizing<[u8; 32]> {
    crypto::hkdf32(None, epoch_key.expose(), &[INFO_RECORD_KEY.as_bytes()])
}

/// Encrypts and signs a record.
pub fn seal_record<R: RngCore + CryptoRng>(
    header: &RecordHeader,
    epoch_key: &EpochKey,
    author: &impl DeviceSigner,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<RecordEnvelope, RecordError> {
    if plaintext.len() > MAX_RECORD_PLAINTEXT {
        return Err(RecordError::TooLarge);
    }
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let ad = RecordEnvelope::associated_data(header, &nonce);
    let ciphertext = crypto::seal_xchacha(&record_key(epoch_key), &nonce, &ad, plaintext);
    let mut env = RecordEnvelope {
        header: *header,
        nonce,
        ciphertext,
        signature: [0; 64],
    };
    env.sign(author);
    Ok(env)
}

/// Checks that the envelope is the requested record, verifies the author's signature, then
/// decrypts. The caller looks up `author` in the roster from `env.header.author` and the
/// epoch key from `env.header.epoch`.
pub fn open_record(
    env: &RecordEnvelope,
    expected: &RecordRef,
    epoch_key: &EpochKey,
    author: &VerifyingKey,
) -> Result<Zeroizing<Vec<u8>>, RecordError> {
    if env.header.reference() != *expected {
        return Err(RecordError::WrongRecord);
    }
    env.verify_signature(author)?;
    let ad = RecordEnvelope::associated_data(&env.header, &env.nonce);
    crypto::open_xchacha(&record_key(epoch_key), &env.nonce, &ad, &env.ciphertext)
        .map(Zeroizing::new)
        .ok_or(RecordError::AuthFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::DeviceSigningKey;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn fixture(pt: &[u8]) -> (RecordEnvelope, EpochKey, DeviceSigningKey) {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let author = DeviceSigningKey::generate(&mut rng);
        let key = EpochKey::generate(&mut rng);
        let header = RecordHeader {
            firm: FirmId([1; 16]),
            file: FileId([2; 16]),
            record: RecordId([3; 16]),
            epoch: 7,
            version: 2,
            author: DeviceId([4; 16]),
        };
        (
            seal_record(&header, &key, &author, pt, &mut rng).unwrap(),
            key,
            author,
        )
    }

    #[test]
    fn wrong_record_is_refused_before_crypto() {
        let (env, key, author) = fixture(b"x");
        let other = RecordRef {
            record: RecordId([9; 16]),
            ..env.header.reference()
        };
        assert_eq!(
            open_record(&env, &other, &key, &author.verifying_key()),
            Err(RecordError::WrongRecord)
        );
    }

    proptest! {
        #[test]
        fn round_trip(pt in proptest::collection::vec(any::<u8>(), 0..512)) {
            let (env, key, author) = fixture(&pt);
            let parsed = RecordEnvelope::from_bytes(&env.to_bytes()).unwrap();
            prop_assert_eq!(&parsed, &env);
            let out = open_record(&parsed, &env.header.reference(), &key, &author.verifying_key()).unwrap();
            prop_assert_eq!(&out[..], &pt[..]);
        }

        #[test]
        fn every_bit_flip_is_rejected(bit in any::<usize>()) {
            let (env, key, author) = fixture(b"invoice 03/2026 paid");
            let mut bytes = env.to_bytes();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            let opened = RecordEnvelope::from_bytes(&bytes)
                .map_err(RecordError::from)
                .and_then(|e| open_record(&e, &env.header.reference(), &key, &author.verifying_key()).map(|_| ()));
            prop_assert!(opened.is_err());
        }
    }
}
