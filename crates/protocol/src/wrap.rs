//! The key hierarchy (`protocol-spec/key-hierarchy.md`).
//!
//! * A [`MemberKey`] is wrapped for each device of its member with an ephemeral X25519
//!   exchange, HKDF-SHA256 and ChaCha20-Poly1305 ([`wrap_member_key`]).
//! * A [`TeamKey`] is wrapped symmetrically under the member key of each team member and
//!   each admin ([`wrap_team_key`]).
//! * A file's [`EpochKey`] is wrapped symmetrically under the member key of every member
//!   with access, and under the team key of every team with access ([`wrap_epoch_key`]).
//! * Each new epoch key wraps its predecessor ([`chain_epoch_key`]), so that whoever holds
//!   the newest key can walk back through the file's history.
//!
//! Associated data binds every wrap to its context, so a wrapped key cannot be replayed
//! for another member, device, file, epoch or key version.

use crate::constants::{
    INFO_KEK_EPOCH_CHAIN, INFO_KEK_EPOCH_KEY, INFO_KEK_TEAM_KEY, INFO_MEMBER_KEY_WRAP,
    INFO_SEALED_TO_DEVICE,
};
use crate::crypto;
use crate::encoding::{DecodeError, Reader, Writer};
use crate::ids::{DeviceId, FileId, FirmId, MemberId, TeamId, ID_LEN};
use crate::keys::{DeviceWrapSecret, EpochKey, MemberKey, TeamKey, WrapPublicKey};
use crate::PROTOCOL_VERSION;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// Size of a wrapped member key: version, ephemeral public key, ciphertext with tag.
pub const MEMBER_KEY_WRAP_LEN: usize = 1 + 32 + 32 + 16;
/// Size of a symmetric wrap: version, 24-byte nonce, ciphertext with tag.
pub const SYMMETRIC_WRAP_LEN: usize = 1 + 24 + 32 + 16;

/// Why an unwrap failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnwrapError {
    /// Wrong size or version.
    #[error("malformed wrapped key: {0}")]
    Malformed(#[from] DecodeError),
    /// The ephemeral key is of low order: the exchange would not be contributory.
    #[error("ephemeral key is not contributory")]
    NonContributory,
    /// The AEAD refused: wrong key, wrong context or tampered bytes.
    #[error("wrapped key failed authentication")]
    AuthFailed,
}

impl UnwrapError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Malformed",
            Self::NonContributory => "NonContributory",
            Self::AuthFailed => "AuthFailed",
        }
    }
}

/// Context of a member-key wrap: which firm, member, device and key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberKeyContext {
    /// Firm.
    pub firm: FirmId,
    /// Member whose key this is.
    pub member: MemberId,
    /// Recipient device.
    pub device: DeviceId,
    /// Version of the member key; rises at every rotation.
    pub key_version: u32,
}

impl MemberKeyContext {
    /// Associated data: `version || firm || member || device || key_version`.
    pub fn associated_data(&self) -> Vec<u8> {
        Writer::new()
            .u8(PROTOCOL_VERSION)
            .fixed(&self.firm.0)
            .fixed(&self.member.0)
            .fixed(&self.device.0)
            .u32(self.key_version)
            .finish()
    }
}

/// Wraps `key` for the device whose wrap public key is `recipient`.
pub fn wrap_member_key<R: RngCore + CryptoRng>(
    key: &MemberKey,
    recipient: &WrapPublicKey,
    ctx: &MemberKeyContext,
    rng: &mut R,
) -> Vec<u8> {
    seal_ephemeral(
        INFO_MEMBER_KEY_WRAP,
        key.expose(),
        recipient,
        &ctx.associated_data(),
        rng,
    )
}

/// Unwraps a member key with the receiving device's wrap secret.
pub fn unwrap_member_key(
    wrapped: &[u8],
    secret: &DeviceWrapSecret,
    ctx: &MemberKeyContext,
) -> Result<MemberKey, UnwrapError> {
    // The exact shape first: version, ephemeral key, 32-byte key + tag, nothing more.
    let mut r = Reader::new(wrapped);
    r.version(PROTOCOL_VERSION)?;
    r.array::<32>("ephemeral_key")?;
    r.take(48, "ciphertext")?;
    r.finish()?;
    let pt = open_ephemeral(
        INFO_MEMBER_KEY_WRAP,
        wrapped,
        secret,
        &ctx.associated_data(),
    )?;
    to_key(pt.to_vec()).map(MemberKey::from_bytes)
}

/// Seals `plaintext` (any length) to one device: a fresh X25519 key agreement with the
/// device's wrap key, HKDF-SHA256 (`INFO_SEALED_TO_DEVICE`, salt = both public keys) and
/// ChaCha20-Poly1305 over `ad`. Output: `version || ephemeral public key || ciphertext`.
/// Used for what one device hands to another outside Olm (an audit bundle's name map).
pub fn seal_to_device<R: RngCore + CryptoRng>(
    plaintext: &[u8],
    recipient: &WrapPublicKey,
    ad: &[u8],
    rng: &mut R,
) -> Vec<u8> {
    seal_ephemeral(INFO_SEALED_TO_DEVICE, plaintext, recipient, ad, rng)
}

/// Opens what [`seal_to_device`] sealed to this device.
pub fn open_sealed(
    sealed: &[u8],
    secret: &DeviceWrapSecret,
    ad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, UnwrapError> {
    open_ephemeral(INFO_SEALED_TO_DEVICE, sealed, secret, ad)
}

/// `version || E || ChaCha20-Poly1305(kek, 0, ad, plaintext)`, `E` a fresh X25519 key and
/// `kek = HKDF-SHA256(salt = E || recipient, X25519(e, recipient), info)`. A fresh key per
/// message makes the fixed nonce safe.
pub(crate) fn seal_ephemeral<R: RngCore + CryptoRng>(
    info: &str,
    plaintext: &[u8],
    recipient: &WrapPublicKey,
    ad: &[u8],
    rng: &mut R,
) -> Vec<u8> {
    let eph = x25519_dalek::StaticSecret::random_from_rng(&mut *rng);
    let eph_pub = WrapPublicKey::from(&eph);
    let shared = eph.diffie_hellman(recipient);
    let kek = ephemeral_kek(info, shared.as_bytes(), &eph_pub, recipient);
    let ct = crypto::seal_chacha(&kek, &[0; 12], ad, plaintext);
    let mut out = Vec::with_capacity(1 + 32 + ct.len());
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(eph_pub.as_bytes());
    out.extend_from_slice(&ct);
    out
}

pub(crate) fn open_ephemeral(
    info: &str,
    sealed: &[u8],
    secret: &DeviceWrapSecret,
    ad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, UnwrapError> {
    let mut r = Reader::new(sealed);
    r.version(PROTOCOL_VERSION)?;
    let eph_pub = WrapPublicKey::from(r.array::<32>("ephemeral_key")?);
    let ct = r.rest();
    if ct.len() < 16 {
        return Err(DecodeError::Truncated("ciphertext").into());
    }
    let shared = secret.inner().diffie_hellman(&eph_pub);
    if !shared.was_contributory() {
        return Err(UnwrapError::NonContributory);
    }
    let kek = ephemeral_kek(info, shared.as_bytes(), &eph_pub, &secret.public_key());
    crypto::open_chacha(&kek, &[0; 12], ad, ct)
        .map(Zeroizing::new)
        .ok_or(UnwrapError::AuthFailed)
}

fn ephemeral_kek(
    info: &str,
    shared: &[u8; 32],
    eph: &WrapPublicKey,
    recipient: &WrapPublicKey,
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(eph.as_bytes());
    salt[32..].copy_from_slice(recipient.as_bytes());
    crypto::hkdf32(Some(&salt), shared, &[info.as_bytes()])
}

fn to_key(pt: Vec<u8>) -> Result<[u8; 32], UnwrapError> {
    let pt = Zeroizing::new(pt);
    let arr: [u8; 32] = pt
        .as_slice()
        .try_into()
        .map_err(|_| UnwrapError::AuthFailed)?;
    Ok(arr)
}

/// Who holds a wrapped epoch key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holder {
    /// A member, under their member key.
    Member(MemberId),
    /// A team, under its team key.
    Team(TeamId),
}

impl Holder {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Member(m) => {
                w.u8(1).fixed(&m.0);
            }
            Self::Team(t) => {
                w.u8(2).fixed(&t.0);
            }
        }
    }
}

/// A key that wraps epoch keys: a member key or a team key. The wrap's context names which
/// ([`Holder`]); a key of the other kind opens nothing.
pub trait HolderKey {
    /// The raw key.
    fn holder_key_bytes(&self) -> &[u8; 32];
}

impl HolderKey for MemberKey {
    fn holder_key_bytes(&self) -> &[u8; 32] {
        self.expose()
    }
}

impl HolderKey for TeamKey {
    fn holder_key_bytes(&self) -> &[u8; 32] {
        self.expose()
    }
}

/// Context of a team-key wrap: the team's key of `team_key_version`, under the member key
/// of `member` at `member_key_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeamKeyContext {
    /// Firm.
    pub firm: FirmId,
    /// Team.
    pub team: TeamId,
    /// Version of the team key; rises at every rotation.
    pub team_key_version: u32,
    /// Member whose member key wraps it (a team member or an admin).
    pub member: MemberId,
    /// Version of that member key.
    pub member_key_version: u32,
}

impl TeamKeyContext {
    /// Associated data: `version || firm || team || team_key_version || member || member_key_version`.
    pub fn associated_data(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION)
            .fixed(&self.firm.0)
            .fixed(&self.team.0)
            .u32(self.team_key_version)
            .fixed(&self.member.0)
            .u32(self.member_key_version);
        w.finish()
    }
}

/// Wraps a team key under a member key.
pub fn wrap_team_key<R: RngCore + CryptoRng>(
    key: &TeamKey,
    member_key: &MemberKey,
    ctx: &TeamKeyContext,
    rng: &mut R,
) -> Vec<u8> {
    let kek = crypto::hkdf32(None, member_key.expose(), &[INFO_KEK_TEAM_KEY.as_bytes()]);
    seal_symmetric(&kek, &ctx.associated_data(), key.expose(), rng)
}

/// Unwraps a team key with a member key.
pub fn unwrap_team_key(
    wrapped: &[u8],
    member_key: &MemberKey,
    ctx: &TeamKeyContext,
) -> Result<TeamKey, UnwrapError> {
    let kek = crypto::hkdf32(None, member_key.expose(), &[INFO_KEK_TEAM_KEY.as_bytes()]);
    open_symmetric(&kek, &ctx.associated_data(), wrapped).map(TeamKey::from_bytes)
}

/// Context of an epoch-key wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochKeyContext {
    /// Firm.
    pub firm: FirmId,
    /// Customer file.
    pub file: FileId,
    /// Epoch of the wrapped key.
    pub epoch: u64,
    /// Holder of the wrapping key.
    pub holder: Holder,
    /// Version of the holder's key.
    pub holder_key_version: u32,
}

impl EpochKeyContext {
    /// Associated data: `version || firm || file || epoch || holder_kind || holder_id || holder_key_version`.
    pub fn associated_data(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION)
            .fixed(&self.firm.0)
            .fixed(&self.file.0)
            .u64(self.epoch);
        self.holder.encode(&mut w);
        w.u32(self.holder_key_version);
        w.finish()
    }
}

fn seal_symmetric<R: RngCore + CryptoRng>(
    kek: &[u8; 32],
    ad: &[u8],
    key: &[u8; 32],
    rng: &mut R,
) -> Vec<u8> {
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let ct = crypto::seal_xchacha(kek, &nonce, ad, key);
    let mut out = Vec::with_capacity(SYMMETRIC_WRAP_LEN);
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open_symmetric(kek: &[u8; 32], ad: &[u8], wrapped: &[u8]) -> Result<[u8; 32], UnwrapError> {
    let mut r = Reader::new(wrapped);
    r.version(PROTOCOL_VERSION)?;
    let nonce: [u8; 24] = r.array("nonce")?;
    let ct = r.take(48, "ciphertext")?;
    r.finish()?;
    let pt = crypto::open_xchacha(kek, &nonce, ad, ct).ok_or(UnwrapError::AuthFailed)?;
    to_key(pt)
}

/// Wraps a file's epoch key under a member key or a team key (`ctx.holder` says which).
pub fn wrap_epoch_key<R: RngCore + CryptoRng>(
    key: &EpochKey,
    holder_key: &impl HolderKey,
    ctx: &EpochKeyContext,
    rng: &mut R,
) -> Vec<u8> {
    let kek = crypto::hkdf32(
        None,
        holder_key.holder_key_bytes(),
        &[INFO_KEK_EPOCH_KEY.as_bytes()],
    );
    seal_symmetric(&kek, &ctx.associated_data(), key.expose(), rng)
}

/// Unwraps a file's epoch key with a member key or a team key.
pub fn unwrap_epoch_key(
    wrapped: &[u8],
    holder_key: &impl HolderKey,
    ctx: &EpochKeyContext,
) -> Result<EpochKey, UnwrapError> {
    let kek = crypto::hkdf32(
        None,
        holder_key.holder_key_bytes(),
        &[INFO_KEK_EPOCH_KEY.as_bytes()],
    );
    open_symmetric(&kek, &ctx.associated_data(), wrapped).map(EpochKey::from_bytes)
}

/// Context of an epoch-chain link: the key of `epoch` wraps the key of `epoch - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochChainContext {
    /// Firm.
    pub firm: FirmId,
    /// File.
    pub file: FileId,
    /// Epoch of the wrapping (newer) key; at least 1.
    pub epoch: u64,
}

impl EpochChainContext {
    /// Associated data: `version || firm || file || epoch || epoch - 1`.
    pub fn associated_data(&self) -> Vec<u8> {
        Writer::new()
            .u8(PROTOCOL_VERSION)
            .fixed(&self.firm.0)
            .fixed(&self.file.0)
            .u64(self.epoch)
            .u64(self.epoch.saturating_sub(1))
            .finish()
    }
}

/// `newer` (the key of `ctx.epoch`) wraps `older` (the key of `ctx.epoch - 1`).
pub fn chain_epoch_key<R: RngCore + CryptoRng>(
    newer: &EpochKey,
    older: &EpochKey,
    ctx: &EpochChainContext,
    rng: &mut R,
) -> Result<Vec<u8>, DecodeError> {
    if ctx.epoch == 0 {
        return Err(DecodeError::InvalidValue("epoch"));
    }
    let kek = crypto::hkdf32(None, newer.expose(), &[INFO_KEK_EPOCH_CHAIN.as_bytes()]);
    Ok(seal_symmetric(
        &kek,
        &ctx.associated_data(),
        older.expose(),
        rng,
    ))
}

/// Recovers the key of `ctx.epoch - 1` from the key of `ctx.epoch`.
pub fn unchain_epoch_key(
    wrapped: &[u8],
    newer: &EpochKey,
    ctx: &EpochChainContext,
) -> Result<EpochKey, UnwrapError> {
    if ctx.epoch == 0 {
        return Err(UnwrapError::Malformed(DecodeError::InvalidValue("epoch")));
    }
    let kek = crypto::hkdf32(None, newer.expose(), &[INFO_KEK_EPOCH_CHAIN.as_bytes()]);
    open_symmetric(&kek, &ctx.associated_data(), wrapped).map(EpochKey::from_bytes)
}

const _: () = assert!(ID_LEN == 16);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn team_keys_open_only_in_their_context_and_wrap_epoch_keys_as_a_team() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let mk = MemberKey::generate(&mut rng);
        let tk = TeamKey::generate(&mut rng);
        let ctx = TeamKeyContext {
            firm: FirmId([1; 16]),
            team: TeamId([2; 16]),
            team_key_version: 3,
            member: MemberId([4; 16]),
            member_key_version: 5,
        };
        let wrapped = wrap_team_key(&tk, &mk, &ctx, &mut rng);
        assert_eq!(wrapped.len(), SYMMETRIC_WRAP_LEN);
        assert_eq!(unwrap_team_key(&wrapped, &mk, &ctx).unwrap(), tk);
        for other in [
            TeamKeyContext {
                team: TeamId([9; 16]),
                ..ctx
            },
            TeamKeyContext {
                team_key_version: 4,
                ..ctx
            },
            TeamKeyContext {
                member: MemberId([9; 16]),
                ..ctx
            },
            TeamKeyContext {
                member_key_version: 6,
                ..ctx
            },
        ] {
            assert_eq!(
                unwrap_team_key(&wrapped, &mk, &other).unwrap_err().class(),
                "AuthFailed"
            );
        }
        // An epoch key wrapped for the team opens with the team key only, and not as a
        // member's wrap with the same id bytes.
        let ek = EpochKey::generate(&mut rng);
        let ectx = EpochKeyContext {
            firm: ctx.firm,
            file: FileId([7; 16]),
            epoch: 2,
            holder: Holder::Team(ctx.team),
            holder_key_version: 3,
        };
        let w = wrap_epoch_key(&ek, &tk, &ectx, &mut rng);
        assert_eq!(unwrap_epoch_key(&w, &tk, &ectx).unwrap(), ek);
        let as_member = EpochKeyContext {
            holder: Holder::Member(MemberId(ctx.team.0)),
            ..ectx
        };
        assert_eq!(
            unwrap_epoch_key(&w, &tk, &as_member).unwrap_err().class(),
            "AuthFailed"
        );
        assert_eq!(
            unwrap_epoch_key(&w, &mk, &ectx).unwrap_err().class(),
            "AuthFailed"
        );
        // The KEKs differ by purpose: a team-key wrap is not an epoch-key wrap.
        let tctx_as_epoch = EpochKeyContext {
            holder: Holder::Member(ctx.member),
            ..ectx
        };
        assert!(unwrap_epoch_key(&wrapped, &mk, &tctx_as_epoch).is_err());
    }

    #[test]
    fn sealed_messages_open_only_for_their_device_and_context() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let me = DeviceWrapSecret::generate(&mut rng);
        let other = DeviceWrapSecret::generate(&mut rng);
        let text = "Kowalski sp. z o.o. — Wyciąg 03-2026.pdf".repeat(50);
        let sealed = seal_to_device(text.as_bytes(), &me.public_key(), b"ad", &mut rng);
        assert_eq!(sealed.len(), 1 + 32 + text.len() + 16);
        assert_eq!(
            open_sealed(&sealed, &me, b"ad").unwrap().as_slice(),
            text.as_bytes()
        );
        assert_eq!(
            open_sealed(&sealed, &other, b"ad").unwrap_err().class(),
            "AuthFailed"
        );
        assert_eq!(
            open_sealed(&sealed, &me, b"other").unwrap_err().class(),
            "AuthFailed"
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            open_sealed(&flipped, &me, b"ad").unwrap_err().class(),
            "AuthFailed"
        );
        assert_eq!(
            open_sealed(&sealed[..40], &me, b"ad").unwrap_err().class(),
            "Malformed"
        );
        // A low-order ephemeral key is refused before any decryption.
        let mut low = sealed;
        low[1..33].copy_from_slice(&[0; 32]);
        assert_eq!(
            open_sealed(&low, &me, b"ad").unwrap_err().class(),
            "NonContributory"
        );
    }

    fn ctx() -> MemberKeyContext {
        MemberKeyContext {
            firm: FirmId([1; 16]),
            member: MemberId([2; 16]),
            device: DeviceId([3; 16]),
            key_version: 4,
        }
    }

    #[test]
    fn member_key_round_trip_and_context_binding() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let dev = DeviceWrapSecret::generate(&mut rng);
        let mk = MemberKey::generate(&mut rng);
        let w = wrap_member_key(&mk, &dev.public_key(), &ctx(), &mut rng);
        assert_eq!(w.len(), MEMBER_KEY_WRAP_LEN);
        assert_eq!(unwrap_member_key(&w, &dev, &ctx()).unwrap(), mk);
        let other = MemberKeyContext {
            key_version: 5,
            ..ctx()
        };
        assert_eq!(
            unwrap_member_key(&w, &dev, &other),
            Err(UnwrapError::AuthFailed)
        );
        let wrong = DeviceWrapSecret::generate(&mut rng);
        assert_eq!(
            unwrap_member_key(&w, &wrong, &ctx()),
            Err(UnwrapError::AuthFailed)
        );
    }

    #[test]
    fn low_order_ephemeral_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let dev = DeviceWrapSecret::generate(&mut rng);
        let mut w = vec![PROTOCOL_VERSION];
        w.extend_from_slice(&[0u8; 32]);
        w.extend_from_slice(&[0u8; 48]);
        assert_eq!(
            unwrap_member_key(&w, &dev, &ctx()),
            Err(UnwrapError::NonContributory)
        );
    }

    #[test]
    fn epoch_chain_walks_back() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let keys: Vec<EpochKey> = (0..4).map(|_| EpochKey::generate(&mut rng)).collect();
        let (firm, file) = (FirmId([1; 16]), FileId([2; 16]));
        let links: Vec<Vec<u8>> = (1..4)
            .map(|e| {
                chain_epoch_key(
                    &keys[e],
                    &keys[e - 1],
                    &EpochChainContext {
                        firm,
                        file,
                        epoch: e as u64,
                    },
                    &mut rng,
                )
                .unwrap()
            })
            .collect();
        let mut k = keys[3].clone();
        for e in (1..4).rev() {
            k = unchain_epoch_key(
                &links[e - 1],
                &k,
                &EpochChainContext {
                    firm,
                    file,
                    epoch: e as u64,
                },
            )
            .unwrap();
            assert_eq!(k, keys[e - 1]);
        }
        // A link cannot be used at another position in the chain.
        assert!(unchain_epoch_key(
            &links[0],
            &keys[1],
            &EpochChainContext {
                firm,
                file,
                epoch: 2
            }
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn every_bit_flip_of_a_wrap_is_rejected(bit in 0usize..(8 * SYMMETRIC_WRAP_LEN), mbit in 0usize..(8 * MEMBER_KEY_WRAP_LEN)) {
            let mut rng = ChaCha20Rng::seed_from_u64(5);
            let mk = MemberKey::generate(&mut rng);
            let ek = EpochKey::generate(&mut rng);
            let c = EpochKeyContext { firm: FirmId([1; 16]), file: FileId([2; 16]), epoch: 3, holder: Holder::Member(MemberId([4; 16])), holder_key_version: 1 };
            let mut w = wrap_epoch_key(&ek, &mk, &c, &mut rng);
            prop_assert_eq!(unwrap_epoch_key(&w, &mk, &c).unwrap(), ek);
            w[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(unwrap_epoch_key(&w, &mk, &c).is_err());

            let dev = DeviceWrapSecret::generate(&mut rng);
            let mut w = wrap_member_key(&mk, &dev.public_key(), &ctx(), &mut rng);
            w[mbit / 8] ^= 1 << (mbit % 8);
            prop_assert!(unwrap_member_key(&w, &dev, &ctx()).is_err());
        }
    }
}
