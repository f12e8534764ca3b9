//! Recovery keys and the key backup (`protocol-spec/recovery.md`).
//!
//! A member's **recovery key** is 32 random bytes shown once, as base58 text with a
//! checksum. Everything else derives from it:
//!
//! * the **backup secret**, an X25519 key whose public half (the *backup key*) every device
//!   of the member holds, signed by the member's master key ([`sign_backup_key`]): any
//!   device seals items to it ([`seal_item`]), only the recovery key opens them
//!   ([`open_item`]);
//! * the **recovery id**, under which the relay files the member's backup, so that a fresh
//!   device holding nothing but the recovery key can find it.
//!
//! The relay stores backup items and never holds a key that opens them.

use crate::constants::{
    CTX_BACKUP_KEY, CTX_RECOVERY_KEY, INFO_BACKUP_ITEM, INFO_BACKUP_SECRET, INFO_RECOVERY_ESCROW,
    INFO_RECOVERY_ID,
};
use crate::crypto;
use crate::encoding::Writer;
use crate::ids::{DeviceId, FirmId, MemberId};
use crate::keys::{DeviceWrapSecret, MasterSigningKey, WrapPublicKey};
use crate::wrap::{open_ephemeral, seal_ephemeral, UnwrapError};
use crate::PROTOCOL_VERSION;
use ed25519_dalek::VerifyingKey;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// Bytes of a recovery key.
pub const RECOVERY_KEY_LEN: usize = 32;
/// Bytes of the checksum at the end of a recovery key's text.
const CHECKSUM_LEN: usize = 3;
/// Longest item id (a Megolm session id is 43 characters).
pub const MAX_ITEM_ID: usize = 64;

/// Why a recovery key's text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RecoveryKeyError {
    /// Not base58, the wrong length or an unknown version.
    #[error("not a recovery key: it has 12 or 13 groups of four letters and digits")]
    Malformed,
    /// The checksum does not match: a character is mistyped.
    #[error("the recovery key has a typo: its checksum does not match")]
    BadChecksum,
}

impl RecoveryKeyError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed => "Malformed",
            Self::BadChecksum => "BadChecksum",
        }
    }
}

/// A member's recovery key.
pub struct RecoveryKey(Zeroizing<[u8; RECOVERY_KEY_LEN]>);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecoveryKey {{ id: {}, secret: [redacted] }}",
            hex::encode(self.id())
        )
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let h = crypto::sha256(&[CTX_RECOVERY_KEY.as_bytes(), &[0], body]);
    [h[0], h[1], h[2]]
}

impl RecoveryKey {
    /// A fresh recovery key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; RECOVERY_KEY_LEN]);
        rng.fill_bytes(&mut k[..]);
        Self(k)
    }

    /// The key from its bytes (tests and vectors).
    pub fn from_bytes(bytes: [u8; RECOVERY_KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8; RECOVERY_KEY_LEN] {
        &self.0
    }

    /// The text people write down: base58 (Bitcoin alphabet) of `version || key ||
    /// checksum`, in groups of four characters separated by spaces.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(1 + RECOVERY_KEY_LEN + CHECKSUM_LEN));
        raw.push(PROTOCOL_VERSION);
        raw.extend_from_slice(&self.0[..]);
        let sum = checksum(&raw);
        raw.extend_from_slice(&sum);
        let text = Zeroizing::new(bs58::encode(&raw[..]).into_string());
        let groups: Vec<&str> = text
            .as_bytes()
            .chunks(4)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        Zeroizing::new(groups.join(" "))
    }

    /// Parses the text, ignoring spaces, dashes and line breaks.
    pub fn parse(text: &str) -> Result<Self, RecoveryKeyError> {
        let compact: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect(),
        );
        if compact.is_empty() || compact.len() > 64 {
            return Err(RecoveryKeyError::Malformed);
        }
        let raw = Zeroizing::new(
            bs58::decode(compact.as_bytes())
                .into_vec()
                .map_err(|_| RecoveryKeyError::Malformed)?,
        );
        let raw: &[u8; 1 + RECOVERY_KEY_LEN + CHECKSUM_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| RecoveryKeyError::Malformed)?;
        let (body, sum) = raw.split_at(1 + RECOVERY_KEY_LEN);
        let Some((&version, key)) = body.split_first() else {
            return Err(RecoveryKeyError::Malformed);
        };
        if version != PROTOCOL_VERSION {
            return Err(RecoveryKeyError::Malformed);
        }
        if checksum(body)[..] != sum[..] {
            return Err(RecoveryKeyError::BadChecksum);
        }
        let mut k = Zeroizing::new([0u8; RECOVERY_KEY_LEN]);
        k.copy_from_slice(key);
        Ok(Self(k))
    }

    /// The backup secret: `HKDF-SHA256(ikm = key, info = INFO_BACKUP_SECRET)` as an X25519
    /// secret.
    pub fn backup_secret(&self) -> DeviceWrapSecret {
        let s = crypto::hkdf32(None, &self.0[..], &[INFO_BACKUP_SECRET.as_bytes()]);
        DeviceWrapSecret::from_bytes(*s)
    }

    /// The backup key: the backup secret's public half.
    pub fn backup_key(&self) -> WrapPublicKey {
        self.backup_secret().public_key()
    }

    /// The recovery id: `HKDF-SHA256(ikm = key, info = INFO_RECOVERY_ID)[..16]`.
    pub fn id(&self) -> [u8; 16] {
        let h = crypto::hkdf32(None, &self.0[..], &[INFO_RECOVERY_ID.as_bytes()]);
        let mut out = [0u8; 16];
        for (o, b) in out.iter_mut().zip(h.iter()) {
            *o = *b;
        }
        out
    }
}

/// What a backup item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ItemKind {
    /// The member's master key seed (id empty): what lets a new device certify itself.
    Identity = 1,
    /// One version of the member key (id: the version, `u32` big-endian).
    MemberKey = 2,
    /// One Megolm room session, exported at its first known index (id: the session id).
    RoomKey = 3,
}

impl ItemKind {
    /// The kind from its byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Identity),
            2 => Some(Self::MemberKey),
            3 => Some(Self::RoomKey),
            _ => None,
        }
    }
}

/// Which item: the member whose backup it is, its kind and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemContext<'a> {
    /// Firm.
    pub firm: FirmId,
    /// Member.
    pub member: MemberId,
    /// Kind.
    pub kind: ItemKind,
    /// Id within the kind, at most [`MAX_ITEM_ID`] bytes.
    pub id: &'a [u8],
}

impl ItemContext<'_> {
    /// Associated data: `version || firm || member || u8 kind || u16 len || id`.
    pub fn associated_data(&self) -> Vec<u8> {
        Writer::new()
            .u8(PROTOCOL_VERSION)
            .fixed(&self.firm.0)
            .fixed(&self.member.0)
            .u8(self.kind as u8)
            .var(self.id)
            .finish()
    }
}

/// Seals one backup item to a member's backup key: a fresh X25519 exchange, HKDF-SHA256
/// (`INFO_BACKUP_ITEM`, salt = both public keys) and ChaCha20-Poly1305 over the item's
/// context. Output: `version || ephemeral public key || ciphertext`.
pub fn seal_item<R: RngCore + CryptoRng>(
    plaintext: &[u8],
    backup_key: &WrapPublicKey,
    ctx: &ItemContext<'_>,
    rng: &mut R,
) -> Vec<u8> {
    seal_ephemeral(
        INFO_BACKUP_ITEM,
        plaintext,
        backup_key,
        &ctx.associated_data(),
        rng,
    )
}

/// Opens a backup item with the recovery key.
pub fn open_item(
    sealed: &[u8],
    key: &RecoveryKey,
    ctx: &ItemContext<'_>,
) -> Result<Zeroizing<Vec<u8>>, UnwrapError> {
    open_ephemeral(
        INFO_BACKUP_ITEM,
        sealed,
        &key.backup_secret(),
        &ctx.associated_data(),
    )
}

/// Associated data of a recovery key sealed to an admin's device:
/// `version || firm || member || admin device`.
fn escrow_ad(firm: FirmId, member: MemberId, device: DeviceId) -> Vec<u8> {
    Writer::new()
        .u8(PROTOCOL_VERSION)
        .fixed(&firm.0)
        .fixed(&member.0)
        .fixed(&device.0)
        .finish()
}

/// Seals `member`'s recovery key to one admin device (admin-assisted recovery): the
/// construction of [`seal_item`] with `INFO_RECOVERY_ESCROW` and the escrow's context.
pub fn seal_escrow<R: RngCore + CryptoRng>(
    key: &RecoveryKey,
    admin_device_key: &WrapPublicKey,
    firm: FirmId,
    member: MemberId,
    admin_device: DeviceId,
    rng: &mut R,
) -> Vec<u8> {
    seal_ephemeral(
        INFO_RECOVERY_ESCROW,
        &key.0[..],
        admin_device_key,
        &escrow_ad(firm, member, admin_device),
        rng,
    )
}

/// Opens, on the admin device it was sealed to, `member`'s escrowed recovery key.
pub fn open_escrow(
    sealed: &[u8],
    device_secret: &DeviceWrapSecret,
    firm: FirmId,
    member: MemberId,
    admin_device: DeviceId,
) -> Result<RecoveryKey, UnwrapError> {
    let pt = open_ephemeral(
        INFO_RECOVERY_ESCROW,
        sealed,
        device_secret,
        &escrow_ad(firm, member, admin_device),
    )?;
    let bytes: [u8; RECOVERY_KEY_LEN] = pt
        .as_slice()
        .try_into()
        .map_err(|_| UnwrapError::AuthFailed)?;
    Ok(RecoveryKey::from_bytes(bytes))
}

/// What a member's master key signs about their backup key:
/// `version || firm || member || backup key || recovery id`.
fn backup_key_bytes(
    firm: FirmId,
    member: MemberId,
    backup_key: &WrapPublicKey,
    recovery_id: &[u8; 16],
) -> Vec<u8> {
    Writer::new()
        .u8(PROTOCOL_VERSION)
        .fixed(&firm.0)
        .fixed(&member.0)
        .fixed(backup_key.as_bytes())
        .fixed(recovery_id)
        .finish()
}

/// The master key's signature over the member's backup key and recovery id
/// (`CTX_BACKUP_KEY`): a device seals only to a backup key its member signed, so a relay
/// cannot slip in a key of its own.
pub fn sign_backup_key(
    master: &MasterSigningKey,
    firm: FirmId,
    member: MemberId,
    backup_key: &WrapPublicKey,
    recovery_id: &[u8; 16],
) -> [u8; 64] {
    let msg = backup_key_bytes(firm, member, backup_key, recovery_id);
    crypto::sign(master.inner(), CTX_BACKUP_KEY, &msg).to_bytes()
}

/// Whether `master` signed this backup key and recovery id for `member` of `firm`.
pub fn verify_backup_key(
    master: &VerifyingKey,
    firm: FirmId,
    member: MemberId,
    backup_key: &WrapPublicKey,
    recovery_id: &[u8; 16],
    signature: &[u8; 64],
) -> bool {
    let msg = backup_key_bytes(firm, member, backup_key, recovery_id);
    crypto::verify(master, CTX_BACKUP_KEY, &msg, signature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn ctx(kind: ItemKind, id: &[u8]) -> ItemContext<'_> {
        ItemContext {
            firm: FirmId([1; 16]),
            member: MemberId([2; 16]),
            kind,
            id,
        }
    }

    #[test]
    fn text_round_trips_and_catches_every_single_typo() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..20 {
            let k = RecoveryKey::generate(&mut rng);
            let text = k.to_text();
            assert_eq!(text.split(' ').count(), text.len().div_ceil(5));
            let back = RecoveryKey::parse(&text).unwrap();
            assert_eq!(back.as_bytes(), k.as_bytes());
            let compact: String = text.chars().filter(|c| *c != ' ').collect();
            assert_eq!(
                RecoveryKey::parse(&compact).unwrap().as_bytes(),
                k.as_bytes()
            );
            // Every one-character substitution is caught: by the alphabet, the length or
            // the checksum (a 24-bit checksum misses 1 in 16 million).
            let chars: Vec<char> = compact.chars().collect();
            for i in 0..chars.len() {
                let mut c = chars.clone();
                c[i] = if c[i] == 'z' { 'y' } else { 'z' };
                let typo: String = c.into_iter().collect();
                assert!(RecoveryKey::parse(&typo).is_err(), "{typo}");
            }
        }
        assert_eq!(
            RecoveryKey::parse("").unwrap_err(),
            RecoveryKeyError::Malformed
        );
        assert_eq!(
            RecoveryKey::parse("0OIl 0OIl").unwrap_err(),
            RecoveryKeyError::Malformed
        );
    }

    #[test]
    fn items_open_only_with_their_key_and_context() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let k = RecoveryKey::generate(&mut rng);
        let other = RecoveryKey::generate(&mut rng);
        let c = ctx(ItemKind::RoomKey, b"session");
        let sealed = seal_item(b"exported session", &k.backup_key(), &c, &mut rng);
        assert_eq!(
            &open_item(&sealed, &k, &c).unwrap()[..],
            b"exported session"
        );
        assert_eq!(open_item(&sealed, &other, &c), Err(UnwrapError::AuthFailed));
        for wrong in [
            ctx(ItemKind::RoomKey, b"sessioN"),
            ctx(ItemKind::MemberKey, b"session"),
            ItemContext {
                member: MemberId([3; 16]),
                ..c.clone()
            },
        ] {
            assert_eq!(open_item(&sealed, &k, &wrong), Err(UnwrapError::AuthFailed));
        }
        assert!(matches!(
            open_item(&sealed[..20], &k, &c),
            Err(UnwrapError::Malformed(_))
        ));
    }

    #[test]
    fn an_escrowed_key_opens_only_on_its_admin_device_for_its_member() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let k = RecoveryKey::generate(&mut rng);
        let admin = DeviceWrapSecret::generate(&mut rng);
        let (f, m, d) = (FirmId([1; 16]), MemberId([2; 16]), DeviceId([3; 16]));
        let sealed = seal_escrow(&k, &admin.public_key(), f, m, d, &mut rng);
        assert_eq!(
            open_escrow(&sealed, &admin, f, m, d).unwrap().as_bytes(),
            k.as_bytes()
        );
        let other = DeviceWrapSecret::generate(&mut rng);
        assert_eq!(
            open_escrow(&sealed, &other, f, m, d).unwrap_err(),
            UnwrapError::AuthFailed
        );
        assert_eq!(
            open_escrow(&sealed, &admin, f, MemberId([4; 16]), d).unwrap_err(),
            UnwrapError::AuthFailed
        );
        assert_eq!(
            open_escrow(&sealed, &admin, f, m, DeviceId([5; 16])).unwrap_err(),
            UnwrapError::AuthFailed
        );
    }

    #[test]
    fn the_backup_key_signature_binds_member_key_and_id() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let master = MasterSigningKey::generate(&mut rng);
        let k = RecoveryKey::generate(&mut rng);
        let (f, m) = (FirmId([1; 16]), MemberId([2; 16]));
        let sig = sign_backup_key(&master, f, m, &k.backup_key(), &k.id());
        let vk = master.verifying_key();
        assert!(verify_backup_key(&vk, f, m, &k.backup_key(), &k.id(), &sig));
        let other = RecoveryKey::generate(&mut rng);
        assert!(!verify_backup_key(
            &vk,
            f,
            m,
            &other.backup_key(),
            &k.id(),
            &sig
        ));
        assert!(!verify_backup_key(
            &vk,
            f,
            m,
            &k.backup_key(),
            &other.id(),
            &sig
        ));
        assert!(!verify_backup_key(
            &vk,
            f,
            MemberId([3; 16]),
            &k.backup_key(),
            &k.id(),
            &sig
        ));
    }
}
