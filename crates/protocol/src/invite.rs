//! Invitations (`protocol-spec/invites.md`).
//!
//! An admin invites a person with a one-time code, given out of band (in person, by phone,
//! in a letter). The code carries a 16-byte secret and the fingerprint of the inviting
//! admin's master key, so the joiner can check the roster it is shown. The relay learns
//! only the invite id derived from the secret; the joiner's request (keys, name) is sealed
//! under a key derived from the secret, so only the admin holding the invite can read it.

use crate::constants::{CTX_INVITE_CODE, CTX_INVITE_ID, INFO_INVITE_KEY};
use crate::crypto;
use crate::keys::VerifyingKey;
use crate::PROTOCOL_VERSION;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Bytes of the fingerprint carried in a code.
pub const FINGERPRINT_LEN: usize = 10;
/// Bytes of an invite before its checksum: version, secret, fingerprint.
const INVITE_LEN: usize = 1 + 16 + FINGERPRINT_LEN;
/// Prefix of the text form.
pub const CODE_PREFIX: &str = "LL";

/// Why a code or a join request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InviteError {
    /// Not a code: wrong prefix, characters, length or version.
    #[error("not a Ledgerline invitation code")]
    Malformed,
    /// The checksum does not match: a typo.
    #[error("the invitation code has a typo (checksum mismatch)")]
    BadChecksum,
    /// A join request that does not open under this invite.
    #[error("join request does not belong to this invitation or was altered")]
    AuthFailed,
}

impl InviteError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed => "Malformed",
            Self::BadChecksum => "BadChecksum",
            Self::AuthFailed => "AuthFailed",
        }
    }
}

/// The fingerprint of a master key: the first 10 bytes of `SHA-256(key)`.
pub fn fingerprint(key: &VerifyingKey) -> [u8; FINGERPRINT_LEN] {
    let h = crypto::sha256(&[key.as_bytes()]);
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(&h[..FINGERPRINT_LEN]);
    out
}

/// A fingerprint for people to compare: lowercase hex in groups of four.
pub fn fingerprint_text(fp: &[u8; FINGERPRINT_LEN]) -> String {
    hex::encode(fp)
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An invitation: secret and the inviter's fingerprint.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Invite {
    secret: [u8; 16],
    #[zeroize(skip)]
    inviter: [u8; FINGERPRINT_LEN],
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Invite {{ id: {}, inviter: {}, secret: [redacted] }}",
            hex::encode(self.id()),
            fingerprint_text(&self.inviter)
        )
    }
}

fn checksum(invite: &[u8]) -> [u8; 2] {
    let h = crypto::sha256(&[CTX_INVITE_CODE.as_bytes(), &[0], invite]);
    [h[0], h[1]]
}

impl Invite {
    /// A new invitation by the admin whose master key is `inviter`.
    pub fn generate<R: RngCore + CryptoRng>(inviter: &VerifyingKey, rng: &mut R) -> Self {
        let mut secret = [0u8; 16];
        rng.fill_bytes(&mut secret);
        Self {
            secret,
            inviter: fingerprint(inviter),
        }
    }

    /// Rebuilds an invitation from its parts.
    pub fn from_parts(secret: [u8; 16], inviter: [u8; FINGERPRINT_LEN]) -> Self {
        Self { secret, inviter }
    }

    /// The inviter's fingerprint.
    pub fn inviter(&self) -> [u8; FINGERPRINT_LEN] {
        self.inviter
    }

    /// The secret (for the admin's local store only).
    pub fn secret(&self) -> &[u8; 16] {
        &self.secret
    }

    /// The mailbox id on the relay: `SHA-256(CTX_INVITE_ID || 0x00 || secret)[..16]`.
    pub fn id(&self) -> [u8; 16] {
        let h = crypto::sha256(&[CTX_INVITE_ID.as_bytes(), &[0], &self.secret]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h[..16]);
        out
    }

    fn key(&self) -> Zeroizing<[u8; 32]> {
        crypto::hkdf32(None, &self.secret, &[INFO_INVITE_KEY.as_bytes()])
    }

    /// The code people type: `LL-` and Crockford base32 of `version || secret || fingerprint
    /// || checksum` in groups of five.
    pub fn code(&self) -> String {
        let mut raw = Zeroizing::new(Vec::with_capacity(INVITE_LEN + 2));
        raw.push(PROTOCOL_VERSION);
        raw.extend_from_slice(&self.secret);
        raw.extend_from_slice(&self.inviter);
        let sum = checksum(&raw);
        raw.extend_from_slice(&sum);
        let text = Zeroizing::new(base32::encode(base32::Alphabet::Crockford, &raw));
        let groups: Vec<&str> = text
            .as_bytes()
            .chunks(5)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!("{CODE_PREFIX}-{}", groups.join("-"))
    }

    /// Parses a code as typed: case, dashes and spaces do not matter; Crockford's look-alikes
    /// (`O` for 0, `I`/`L` for 1) are accepted.
    pub fn parse(code: &str) -> Result<Self, InviteError> {
        let cleaned: String = code
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .collect::<String>()
            .to_ascii_uppercase();
        let body = cleaned
            .strip_prefix(CODE_PREFIX)
            .ok_or(InviteError::Malformed)?;
        let raw = Zeroizing::new(
            base32::decode(base32::Alphabet::Crockford, body).ok_or(InviteError::Malformed)?,
        );
        if raw.len() != INVITE_LEN + 2
            || base32::encode(base32::Alphabet::Crockford, &raw).len() != body.len()
        {
            return Err(InviteError::Malformed);
        }
        let (invite, sum) = raw.split_at(INVITE_LEN);
        if checksum(invite) != sum {
            return Err(InviteError::BadChecksum);
        }
        let mut r = crate::encoding::Reader::new(invite);
        r.version(PROTOCOL_VERSION)
            .map_err(|_| InviteError::Malformed)?;
        let secret: [u8; 16] = r.array("secret").map_err(|_| InviteError::Malformed)?;
        let inviter: [u8; FINGERPRINT_LEN] =
            r.array("fingerprint").map_err(|_| InviteError::Malformed)?;
        Ok(Self { secret, inviter })
    }

    /// Seals a join request (the joiner's keys and name) for the inviting admin:
    /// `0x01 || nonce(24) || XChaCha20-Poly1305(invite key, nonce, ad = invite id, request)`.
    pub fn seal_request<R: RngCore + CryptoRng>(&self, request: &[u8], rng: &mut R) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        let ct = crypto::seal_xchacha(&self.key(), &nonce, &self.id(), request);
        let mut out = vec![PROTOCOL_VERSION];
        out.extend_from_slice(&nonce);
        out.extend(ct);
        out
    }

    /// Opens a join request sealed with [`Invite::seal_request`].
    pub fn open_request(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, InviteError> {
        let [v, rest @ ..] = sealed else {
            return Err(InviteError::Malformed);
        };
        if *v != PROTOCOL_VERSION || rest.len() < 24 + 16 {
            return Err(InviteError::Malformed);
        }
        let (nonce, ct) = rest.split_at(24);
        let mut n = [0u8; 24];
        n.copy_from_slice(nonce);
        crypto::open_xchacha(&self.key(), &n, &self.id(), ct)
            .map(Zeroizing::new)
            .ok_or(InviteError::AuthFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MasterSigningKey;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;

    fn invite() -> (Invite, rand_chacha::ChaCha20Rng) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let admin = MasterSigningKey::generate(&mut rng);
        (Invite::generate(&admin.verifying_key(), &mut rng), rng)
    }

    #[test]
    fn code_round_trip_and_human_forgiveness() {
        let (inv, _) = invite();
        let code = inv.code();
        assert!(code.starts_with("LL-"), "{code}");
        let back = Invite::parse(&code).unwrap();
        assert_eq!((back.id(), back.inviter()), (inv.id(), inv.inviter()));
        let sloppy = code.to_lowercase().replace('-', " ").replace('0', "o");
        assert_eq!(Invite::parse(&sloppy).unwrap().id(), inv.id());
        assert!(!format!("{inv:?}").contains(&hex::encode(inv.secret())));
    }

    proptest! {
        #[test]
        fn any_single_character_typo_is_caught(pos in 3usize..60, c in proptest::sample::select(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".to_vec())) {
            let (inv, _) = invite();
            let code = inv.code();
            let pos = pos % code.len();
            prop_assume!(code.as_bytes()[pos] != b'-' && code.as_bytes()[pos] != c);
            let mut typo = code.into_bytes();
            typo[pos] = c;
            let typo = String::from_utf8(typo).unwrap();
            match Invite::parse(&typo) {
                Ok(p) => prop_assert_eq!(p.id(), inv.id(), "a typo was accepted as another invitation"),
                Err(e) => prop_assert!(matches!(e, InviteError::BadChecksum | InviteError::Malformed)),
            }
        }
    }

    #[test]
    fn join_requests_open_only_under_their_invite() {
        let (inv, mut rng) = invite();
        let sealed = inv.seal_request(b"{\"name\":\"Anna Nowak\"}", &mut rng);
        assert_eq!(
            &inv.open_request(&sealed).unwrap()[..],
            b"{\"name\":\"Anna Nowak\"}"
        );
        let admin = MasterSigningKey::generate(&mut rng);
        let other = Invite::generate(&admin.verifying_key(), &mut rng);
        assert_eq!(other.open_request(&sealed), Err(InviteError::AuthFailed));
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert_eq!(inv.open_request(&bad), Err(InviteError::AuthFailed));
        assert_eq!(inv.open_request(&sealed[..20]), Err(InviteError::Malformed));
    }
}
