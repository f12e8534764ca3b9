//! Checkpoints (`protocol-spec/checkpoints.md`).
//!
//! A checkpoint is a C2SP tlog-checkpoint body (origin, tree size, base64 root hash) inside
//! a C2SP signed note. The relay signs it with the firm log's Ed25519 key (signature type
//! 0x01, key name = origin); the owner's device co-signs it as a witness with a C2SP
//! tlog-cosignature/v1 (signature type 0x04). Note framing and key ids come from the
//! `signed_note` crate; signing and strict verification are ours, so that both signature
//! types share one verification mode.

use crate::crypto;
use crate::keys::{LogSigningKey, VerifyingKey, WitnessSigningKey};
use crate::merkle::Hash;
use base64::prelude::{Engine, BASE64_STANDARD};
use ed25519_dalek::Signer as _;
use signed_note::{Note, NoteError, VerificationError, Verifier, VerifierList};
use thiserror::Error;

/// Signed-note signature type of Ed25519 signatures.
pub const SIG_TYPE_ED25519: u8 = 0x01;
/// Signed-note signature type of tlog-cosignature/v1 Ed25519 cosignatures.
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;
/// Longest accepted origin line.
pub const MAX_ORIGIN_LEN: usize = 256;

/// A log's state: origin, size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
}

/// Why a checkpoint was refused. Each variant is a distinct failure class.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckpointError {
    /// Not a well-formed note or checkpoint body.
    #[error("malformed checkpoint")]
    Malformed,
    /// The origin line is not the expected log's.
    #[error("checkpoint is from another log")]
    WrongOrigin,
    /// A signature by the expected key is present and invalid.
    #[error("checkpoint signature is invalid")]
    BadSignature,
    /// No signature by the expected key.
    #[error("checkpoint is not signed by the expected key")]
    MissingSignature,
}

impl CheckpointError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed => "Malformed",
            Self::WrongOrigin => "WrongOrigin",
            Self::BadSignature => "BadSignature",
            Self::MissingSignature => "MissingSignature",
        }
    }
}

fn valid_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin.len() <= MAX_ORIGIN_LEN
        && signed_note::is_key_name_valid(origin)
        && origin.chars().all(|c| !c.is_control())
}

impl Checkpoint {
    /// A checkpoint; the origin must be a valid note key name (no spaces, no `+`).
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        if !valid_origin(origin) {
            return Err(CheckpointError::Malformed);
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Root hash.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// `origin\nsize\nbase64(root)\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64_STANDARD.encode(self.root)
        )
    }

    /// Parses a body. Extension lines are refused: Ledgerline logs write none.
    pub fn parse_body(text: &[u8]) -> Result<Self, CheckpointError> {
        let text = std::str::from_utf8(text).map_err(|_| CheckpointError::Malformed)?;
        let rest = text.strip_suffix('\n').ok_or(CheckpointError::Malformed)?;
        let mut lines = rest.split('\n');
        let (Some(origin), Some(size), Some(root), None) =
            (lines.next(), lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed);
        };
        // Decimal without sign or leading zeros.
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(CheckpointError::Malformed);
        }
        let size: u64 = size.parse().map_err(|_| CheckpointError::Malformed)?;
        let root_bytes = BASE64_STANDARD
            .decode(root)
            .map_err(|_| CheckpointError::Malformed)?;
        let root: Hash = root_bytes
            .try_into()
            .map_err(|_| CheckpointError::Malformed)?;
        Self::new(origin, size, root)
    }

    /// A signed note of the body, signed by the log key under the origin as key name.
    pub fn sign(&self, key: &LogSigningKey) -> Vec<u8> {
        // The origin was validated as a key name on construction, so this cannot fail.
        sign_note(&self.body(), &self.origin, key).unwrap_or_default()
    }
}

/// Signs `text` as a C2SP signed note with an Ed25519 key named `name`. `text` must end in a
/// newline and hold no other control characters; `name` must be a valid key name.
pub fn sign_note(text: &str, name: &str, key: &LogSigningKey) -> Result<Vec<u8>, CheckpointError> {
    if !text.ends_with('\n')
        || text.chars().any(|c| c.is_control() && c != '\n')
        || !signed_note::is_key_name_valid(name)
    {
        return Err(CheckpointError::Malformed);
    }
    let id = Ed25519NoteKey::new(name, key.verifying_key()).key_id();
    let sig = key.inner().sign(text.as_bytes());
    let mut out = text.as_bytes().to_vec();
    out.push(b'\n');
    out.extend_from_slice(signature_line(name, id, &sig.to_bytes()).as_bytes());
    Ok(out)
}

fn signature_line(name: &str, id: u32, sig: &[u8]) -> String {
    let mut raw = id.to_be_bytes().to_vec();
    raw.extend_from_slice(sig);
    format!("— {} {}\n", name, BASE64_STANDARD.encode(raw))
}

/// A note verifier for a log's Ed25519 key, with strict verification.
#[derive(Debug, Clone)]
pub struct Ed25519NoteKey {
    name: String,
    key: VerifyingKey,
}

impl Ed25519NoteKey {
    /// Verifier for `key` under key name `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Self {
        Self {
            name: name.to_owned(),
            key,
        }
    }

    /// The verifier key string `name+hexid+base64(0x01 || key)`.
    pub fn vkey(&self) -> String {
        let mut raw = vec![SIG_TYPE_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id(),
            BASE64_STANDARD.encode(raw)
        )
    }
}

impl Verifier for Ed25519NoteKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        let mut raw = vec![SIG_TYPE_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        signed_note::key_id(&self.name, &raw)
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        <[u8; 64]>::try_from(sig).is_ok_and(|sig| crypto::verify_raw(&self.key, msg, &sig))
    }
}

/// A note verifier for a witness's tlog-cosignature/v1 key.
#[derive(Debug, Clone)]
pub struct CosignatureKey {
    name: String,
    key: VerifyingKey,
}

impl CosignatureKey {
    /// Verifier for witness `key` under key name `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Self {
        Self {
            name: name.to_owned(),
            key,
        }
    }
}

/// `cosignature/v1\ntime <t>\n<checkpoint body>`.
pub fn cosignature_message(body: &[u8], timestamp_s: u64) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp_s}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

impl Verifier for CosignatureKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        let mut raw = vec![SIG_TYPE_COSIGNATURE_V1];
        raw.extend_from_slice(self.key.as_bytes());
        signed_note::key_id(&self.name, &raw)
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let (ts, s) = sig.split_at(8);
        let (Ok(ts), Ok(s)) = (<[u8; 8]>::try_from(ts), <[u8; 64]>::try_from(s)) else {
            return false;
        };
        crypto::verify_raw(
            &self.key,
            &cosignature_message(msg, u64::from_be_bytes(ts)),
            &s,
        )
    }
}

fn note_error(e: NoteError) -> CheckpointError {
    match e {
        NoteError::InvalidSignature { .. } => CheckpointError::BadSignature,
        NoteError::UnverifiedNote => CheckpointError::MissingSignature,
        _ => CheckpointError::Malformed,
    }
}

/// Verifies a signed checkpoint from the log `origin` with key `log_key`.
pub fn open_checkpoint(
    note: &[u8],
    origin: &str,
    log_key: &VerifyingKey,
) -> Result<Checkpoint, CheckpointError> {
    let note = Note::from_bytes(note).map_err(note_error)?;
    let cp = Checkpoint::parse_body(note.text())?;
    if cp.origin != origin {
        return Err(CheckpointError::WrongOrigin);
    }
    let verifiers = VerifierList::new(vec![Box::new(Ed25519NoteKey::new(origin, *log_key))]);
    note.verify(&verifiers).map_err(note_error)?;
    Ok(cp)
}

/// Adds the witness's cosignature (at `timestamp_s`, seconds) to a checkpoint note the
/// witness has verified (signature and consistency) beforehand.
pub fn cosign(
    note: &[u8],
    witness_name: &str,
    key: &WitnessSigningKey,
    timestamp_s: u64,
) -> Result<Vec<u8>, CheckpointError> {
    cosign_with(note, witness_name, &key.verifying_key(), timestamp_s, |m| {
        key.inner().sign(m).to_bytes()
    })
}

/// The witness name of a firm's device that cosigns its log: the owner's devices witness
/// with the Ed25519 key the roster certifies for them (`checkpoints.md`).
pub fn device_witness_name(firm: &crate::ids::FirmId, device: &crate::ids::DeviceId) -> String {
    format!("ledgerline-witness/{}/{}", firm.to_hex(), device.to_hex())
}

/// [`cosign`] by a device's own signing key, under [`device_witness_name`].
pub fn cosign_as_device(
    note: &[u8],
    firm: &crate::ids::FirmId,
    device: &crate::ids::DeviceId,
    signer: &impl crate::keys::DeviceSigner,
    timestamp_s: u64,
) -> Result<Vec<u8>, CheckpointError> {
    cosign_with(
        note,
        &device_witness_name(firm, device),
        &signer.public_key(),
        timestamp_s,
        |m| signer.sign_bytes(m),
    )
}

fn cosign_with(
    note: &[u8],
    witness_name: &str,
    public: &VerifyingKey,
    timestamp_s: u64,
    sign: impl FnOnce(&[u8]) -> [u8; 64],
) -> Result<Vec<u8>, CheckpointError> {
    let parsed = Note::from_bytes(note).map_err(note_error)?;
    Checkpoint::parse_body(parsed.text())?;
    if !signed_note::is_key_name_valid(witness_name) {
        return Err(CheckpointError::Malformed);
    }
    let verifier = CosignatureKey::new(witness_name, *public);
    let sig = sign(&cosignature_message(parsed.text(), timestamp_s));
    let mut raw = timestamp_s.to_be_bytes().to_vec();
    raw.extend_from_slice(&sig);
    let mut out = note.to_vec();
    out.extend_from_slice(signature_line(witness_name, verifier.key_id(), &raw).as_bytes());
    Ok(out)
}

/// Verifies the log signature and the witness's cosignature; returns the checkpoint and
/// the cosignature's timestamp.
pub fn open_cosigned_checkpoint(
    note: &[u8],
    origin: &str,
    log_key: &VerifyingKey,
    witness_name: &str,
    witness_key: &VerifyingKey,
) -> Result<(Checkpoint, u64), CheckpointError> {
    let cp = open_checkpoint(note, origin, log_key)?;
    let parsed = Note::from_bytes(note).map_err(note_error)?;
    let witness = CosignatureKey::new(witness_name, *witness_key);
    let id = witness.key_id();
    let verifiers = VerifierList::new(vec![Box::new(witness)]);
    let (verified, _) = parsed.verify(&verifiers).map_err(note_error)?;
    let sig = verified
        .iter()
        .find(|s| s.name() == witness_name && s.id() == id)
        .ok_or(CheckpointError::MissingSignature)?;
    let ts: [u8; 8] = sig
        .signature()
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(CheckpointError::Malformed)?;
    Ok((cp, u64::from_be_bytes(ts)))
}

// Keep the error type of the library visible to callers matching on it.
#[doc(hidden)]
pub type NoteVerificationError = VerificationError;

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn keys() -> (LogSigningKey, WitnessSigningKey) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        (
            LogSigningKey::generate(&mut rng),
            WitnessSigningKey::generate(&mut rng),
        )
    }

    #[test]
    fn sign_open_cosign() {
        let (log, wit) = keys();
        let cp = Checkpoint::new("relay.example/ledgerline/firm/01", 42, [7; 32]).unwrap();
        let note = cp.sign(&log);
        assert_eq!(
            open_checkpoint(&note, cp.origin(), &log.verifying_key()).unwrap(),
            cp
        );
        let cosigned = cosign(&note, "owner.example/witness", &wit, 1_800_000_000).unwrap();
        let (again, ts) = open_cosigned_checkpoint(
            &cosigned,
            cp.origin(),
            &log.verifying_key(),
            "owner.example/witness",
            &wit.verifying_key(),
        )
        .unwrap();
        assert_eq!((again, ts), (cp.clone(), 1_800_000_000));
        assert_eq!(
            open_cosigned_checkpoint(
                &note,
                cp.origin(),
                &log.verifying_key(),
                "owner.example/witness",
                &wit.verifying_key()
            ),
            Err(CheckpointError::MissingSignature)
        );
        assert_eq!(
            open_checkpoint(&note, "other.example/log", &log.verifying_key()),
            Err(CheckpointError::WrongOrigin)
        );
    }

    proptest::proptest! {
        #[test]
        fn every_bit_flip_of_a_signature_is_rejected(bit in 0usize..(8 * 76), cosig in proptest::bool::ANY) {
            let (log, wit) = keys();
            let cp = Checkpoint::new("relay.example/log", 7, [3; 32]).unwrap();
            let note = cosign(&cp.sign(&log), "w.example/w", &wit, 99).unwrap();
            let text = String::from_utf8(note).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let idx = if cosig { lines.len() - 1 } else { lines.len() - 2 };
            let (prefix, b64) = lines[idx].rsplit_once(' ').unwrap();
            let mut raw = BASE64_STANDARD.decode(b64).unwrap();
            let bit = bit % (8 * (raw.len() - 4)) + 32; // skip the key id: that is "unknown key"
            raw[bit / 8] ^= 1 << (bit % 8);
            lines[idx] = format!("{prefix} {}", BASE64_STANDARD.encode(raw));
            let tampered = lines.join("\n") + "\n";
            let r = open_cosigned_checkpoint(tampered.as_bytes(), cp.origin(), &log.verifying_key(), "w.example/w", &wit.verifying_key());
            proptest::prop_assert_eq!(r, Err(CheckpointError::BadSignature));
        }
    }

    #[test]
    fn bodies_are_strict() {
        for bad in [
            "o\n01\nAAAA\n",
            "o\n-1\n",
            "o\n1\nAAAA\n",
            "o\n1\n",
            "o o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        ] {
            assert_eq!(
                Checkpoint::parse_body(bad.as_bytes()),
                Err(CheckpointError::Malformed),
                "{bad:?}"
            );
        }
    }
}
