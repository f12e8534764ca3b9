//! Onboarding: founding a firm, inviting, joining and approving (`protocol-spec/invites.md`).
//!
//! The joiner's request travels sealed under the invitation; it carries the joiner's
//! member id and master key, a device certificate signed by that master key, and the
//! joiner's name (which never reaches the relay in clear). The admin compares the
//! joiner's fingerprint read out by the joiner before appending the roster events; the
//! joiner checks that the roster gives the inviter the fingerprint printed in the code.

use crate::device::DeviceAccount;
use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, MemberId};
use ledgerline_protocol::invite::{fingerprint, fingerprint_text, Invite, FINGERPRINT_LEN};
use ledgerline_protocol::keys::{verifying_key_from_bytes, MasterSigningKey, WrapPublicKey};
use ledgerline_protocol::roster::{
    DeviceCertificate, DeviceKeys, EventBody, EventKind, Role, Roster, RosterEvent,
};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// Why onboarding failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OnboardingError {
    /// The join request is not what a joiner would send.
    #[error("malformed join request")]
    Malformed,
    /// The request does not open under this invitation.
    #[error("join request does not belong to this invitation")]
    WrongInvite,
    /// The fingerprint read out by the joiner differs: do not approve.
    #[error("fingerprint mismatch: expected {expected}, the request has {actual}")]
    FingerprintMismatch {
        /// What the admin was told.
        expected: String,
        /// What the request carries.
        actual: String,
    },
    /// The device certificate does not verify under the joiner's master key.
    #[error("the joiner's device certificate is invalid")]
    BadCertificate,
    /// No admin in the roster has the inviter's fingerprint: the joiner is being shown
    /// another firm or a forged roster.
    #[error("no admin in this roster has the inviter's fingerprint {0}")]
    InviterNotFound(String),
}

/// What a joiner sends, sealed under the invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The joiner's member id (chosen by the joiner).
    pub member: MemberId,
    /// Hex of the joiner's master public key.
    pub master_key: String,
    /// The joiner's first device.
    pub device: DeviceId,
    /// Hex of the device's Ed25519 signing key.
    pub signing_key: String,
    /// Hex of the device's Curve25519 identity key.
    pub identity_key: String,
    /// Hex of the device's X25519 wrap key.
    pub wrap_key: String,
    /// Hex of the member's certificate of the device.
    pub certificate: String,
    /// The joiner's name, for the admin and (later) the firm's directory.
    pub name: String,
}

/// The first two roster events of a new firm: the owner's genesis and first device.
pub fn found_firm(
    owner: MemberId,
    master: &MasterSigningKey,
    device: &DeviceAccount,
    now_ms: u64,
) -> Vec<RosterEvent> {
    let firm = device.firm();
    let genesis = EventBody {
        firm,
        seq: 0,
        prev: [0; 32],
        timestamp_ms: now_ms,
        signer: owner,
        kind: EventKind::Genesis {
            owner_key: master.verifying_key(),
        },
    }
    .sign(master);
    let cert = DeviceCertificate::issue(firm, owner, device.device(), device.keys(), master);
    let added = EventBody {
        firm,
        seq: 1,
        prev: genesis.hash(),
        timestamp_ms: now_ms,
        signer: owner,
        kind: EventKind::DeviceAdded(cert),
    }
    .sign(master);
    vec![genesis, added]
}

/// The joiner's fingerprint to read out to the admin: of the master key.
pub fn joiner_fingerprint(master: &MasterSigningKey) -> String {
    fingerprint_text(&fingerprint(&master.verifying_key()))
}

/// Builds and seals the joiner's request.
pub fn seal_join_request<R: RngCore + CryptoRng>(
    invite: &Invite,
    member: MemberId,
    master: &MasterSigningKey,
    device: &DeviceAccount,
    name: &str,
    rng: &mut R,
) -> Vec<u8> {
    let keys = device.keys();
    let cert =
        DeviceCertificate::issue(device.firm(), member, device.device(), keys.clone(), master);
    let req = JoinRequest {
        member,
        master_key: hex::encode(master.verifying_key().as_bytes()),
        device: device.device(),
        signing_key: hex::encode(keys.signing.as_bytes()),
        identity_key: hex::encode(keys.identity),
        wrap_key: hex::encode(keys.wrap.as_bytes()),
        certificate: hex::encode(cert.signature),
        name: name.to_owned(),
    };
    let json = zeroize::Zeroizing::new(serde_json::to_vec(&req).unwrap_or_default());
    invite.seal_request(&json, rng)
}

fn hex32(s: &str) -> Result<[u8; 32], OnboardingError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| OnboardingError::Malformed)?;
    Ok(out)
}

/// A join request as the admin sees it after opening and checking it.
#[derive(Debug, Clone)]
pub struct VerifiedJoin {
    /// The request.
    pub request: JoinRequest,
    /// The joiner's master key fingerprint, for comparison.
    pub fingerprint: String,
    certificate: DeviceCertificate,
    master: ledgerline_protocol::keys::VerifyingKey,
}

/// Opens a sealed request and verifies its device certificate for `firm`.
pub fn open_join_request(
    invite: &Invite,
    firm: FirmId,
    sealed: &[u8],
) -> Result<VerifiedJoin, OnboardingError> {
    let json = invite
        .open_request(sealed)
        .map_err(|_| OnboardingError::WrongInvite)?;
    let request: JoinRequest =
        serde_json::from_slice(&json).map_err(|_| OnboardingError::Malformed)?;
    let master = verifying_key_from_bytes(&hex32(&request.master_key)?)
        .map_err(|_| OnboardingError::Malformed)?;
    let keys = DeviceKeys {
        signing: verifying_key_from_bytes(&hex32(&request.signing_key)?)
            .map_err(|_| OnboardingError::Malformed)?,
        identity: hex32(&request.identity_key)?,
        wrap: WrapPublicKey::from(hex32(&request.wrap_key)?),
    };
    let mut signature = [0u8; 64];
    hex::decode_to_slice(&request.certificate, &mut signature)
        .map_err(|_| OnboardingError::Malformed)?;
    let certificate = DeviceCertificate {
        member: request.member,
        device: request.device,
        keys,
        signature,
    };
    // The roster verifier checks certificates too; checking here refuses garbage before
    // anything is signed.
    if !certificate.verify(firm, &master) {
        return Err(OnboardingError::BadCertificate);
    }
    let fingerprint = fingerprint_text(&fingerprint(&master));
    Ok(VerifiedJoin {
        request,
        fingerprint,
        certificate,
        master,
    })
}

/// What an approval admits the joiner as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// A member of the firm with this role.
    Member(Role),
    /// A guest of this customer file's conversation.
    Guest(FileId),
}

/// After the fingerprint comparison, the roster events that admit the joiner:
/// `MemberAdded` (or `GuestAdded`, for a guest of a file) and `DeviceAdded`, signed by
/// the approving admin, extending `roster`.
pub fn approve(
    join: &VerifiedJoin,
    told_fingerprint: &str,
    roster: &Roster,
    admin: MemberId,
    admin_key: &MasterSigningKey,
    admit: Admit,
    now_ms: u64,
) -> Result<Vec<RosterEvent>, OnboardingError> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    if norm(told_fingerprint) != norm(&join.fingerprint) {
        return Err(OnboardingError::FingerprintMismatch {
            expected: told_fingerprint.to_owned(),
            actual: join.fingerprint.clone(),
        });
    }
    let added = EventBody {
        firm: roster.firm(),
        seq: roster.len(),
        prev: roster.head(),
        timestamp_ms: now_ms,
        signer: admin,
        kind: match admit {
            Admit::Guest(file) => EventKind::GuestAdded {
                member: join.request.member,
                master_key: join.master,
                file,
            },
            Admit::Member(role) => EventKind::MemberAdded {
                member: join.request.member,
                master_key: join.master,
                role,
            },
        },
    }
    .sign(admin_key);
    let device = EventBody {
        firm: roster.firm(),
        seq: roster.len() + 1,
        prev: added.hash(),
        timestamp_ms: now_ms,
        signer: admin,
        kind: EventKind::DeviceAdded(join.certificate.clone()),
    }
    .sign(admin_key);
    Ok(vec![added, device])
}

/// The joiner's check of the roster it is shown: some admin (now or at any point) has the
/// inviter's fingerprint from the code.
pub fn check_inviter(
    roster: &Roster,
    inviter: &[u8; FINGERPRINT_LEN],
) -> Result<(), OnboardingError> {
    if roster
        .members()
        .any(|(_, m)| fingerprint(&m.master_key) == *inviter && m.role == Role::Admin)
    {
        Ok(())
    } else {
        Err(OnboardingError::InviterNotFound(fingerprint_text(inviter)))
    }
}
