//! Pairwise Olm sessions between devices, for to-device messages (room keys, later
//! member-key notices). Wire format of a to-device ciphertext:
//! `0x01 || u8 message type (0 pre-key, 1 normal) || Olm message bytes`.

use crate::device::DeviceAccount;
use ledgerline_protocol::prekeys::SignedPrekey;
use std::collections::HashMap;
use vodozemac::olm::{OlmMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;

/// Why an Olm operation failed. `Malformed` and `Undecryptable` are the peer's (or the
/// relay's) fault; `Session` is a local problem.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OlmError {
    /// Bytes that are not a to-device ciphertext.
    #[error("malformed to-device message")]
    Malformed,
    /// No session decrypts it and it cannot start one.
    #[error("to-device message could not be decrypted")]
    Undecryptable,
    /// A session could not be created (non-contributory key, unknown one-time key).
    #[error("Olm session could not be created: {0}")]
    Session(String),
}

/// Olm sessions by peer identity key (newest first).
#[derive(Default)]
pub struct OlmSessions {
    by_peer: HashMap<[u8; 32], Vec<Session>>,
}

impl std::fmt::Debug for OlmSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OlmSessions {{ peers: {}, secrets: [redacted] }}",
            self.by_peer.len()
        )
    }
}

fn encode(m: &OlmMessage) -> Vec<u8> {
    let (t, bytes) = m.to_parts();
    let mut out = vec![1, u8::try_from(t).unwrap_or(u8::MAX)];
    out.extend(bytes);
    out
}

fn decode(b: &[u8]) -> Result<OlmMessage, OlmError> {
    match b {
        [1, t, rest @ ..] => {
            OlmMessage::from_parts(usize::from(*t), rest).map_err(|_| OlmError::Malformed)
        }
        _ => Err(OlmError::Malformed),
    }
}

/// Persisted form of [`OlmSessions`]: peer identity keys (public) and vodozemac session
/// pickles, each encrypted under the pickle key.
#[derive(serde::Serialize, serde::Deserialize)]
struct OlmSessionsPickleV1 {
    version: u8,
    peers: Vec<(String, Vec<String>)>,
}

impl OlmSessions {
    /// Serialises every session, encrypted under `pickle_key`.
    pub fn pickle(&self, pickle_key: &[u8; 32]) -> String {
        let peers = self
            .by_peer
            .iter()
            .map(|(k, v)| {
                (
                    hex::encode(k),
                    v.iter().map(|s| s.pickle().encrypt(pickle_key)).collect(),
                )
            })
            .collect();
        serde_json::to_string(&OlmSessionsPickleV1 { version: 1, peers }).unwrap_or_default()
    }

    /// Restores [`OlmSessions::pickle`]; `None` on a wrong key or corrupted state.
    pub fn from_pickle(pickled: &str, pickle_key: &[u8; 32]) -> Option<Self> {
        let p: OlmSessionsPickleV1 = serde_json::from_str(pickled).ok()?;
        if p.version != 1 {
            return None;
        }
        let mut by_peer = HashMap::new();
        for (peer, sessions) in p.peers {
            let mut id = [0u8; 32];
            hex::decode_to_slice(peer, &mut id).ok()?;
            let restored = sessions
                .iter()
                .map(|s| {
                    vodozemac::olm::SessionPickle::from_encrypted(s, pickle_key)
                        .ok()
                        .map(Session::from_pickle)
                })
                .collect::<Option<Vec<_>>>()?;
            by_peer.insert(id, restored);
        }
        Some(Self { by_peer })
    }

    /// Whether a session with `peer` exists.
    pub fn has_session(&self, peer_identity: &[u8; 32]) -> bool {
        self.by_peer
            .get(peer_identity)
            .is_some_and(|v| !v.is_empty())
    }

    /// Opens an outbound session to a device from its identity key (roster) and a claimed
    /// prekey the caller has verified against the roster's signing key.
    pub fn open(
        &mut self,
        me: &DeviceAccount,
        peer_identity: [u8; 32],
        prekey: &SignedPrekey,
    ) -> Result<(), OlmError> {
        let s = me
            .account()
            .create_outbound_session(
                SessionConfig::version_1(),
                Curve25519PublicKey::from_bytes(peer_identity),
                Curve25519PublicKey::from_bytes(prekey.key),
            )
            .map_err(|e| OlmError::Session(e.to_string()))?;
        self.by_peer.entry(peer_identity).or_default().insert(0, s);
        Ok(())
    }

    /// Encrypts for a peer with the newest session.
    pub fn encrypt(
        &mut self,
        peer_identity: &[u8; 32],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, OlmError> {
        let s = self
            .by_peer
            .get_mut(peer_identity)
            .and_then(|v| v.first_mut())
            .ok_or_else(|| OlmError::Session("no session with this device".into()))?;
        s.encrypt(plaintext)
            .map(|m| encode(&m))
            .map_err(|e| OlmError::Session(e.to_string()))
    }

    /// Decrypts a message from a peer (whose identity key the caller took from the roster
    /// entry of the relay-stated sender); a pre-key message may start a new session.
    pub fn decrypt(
        &mut self,
        me: &mut DeviceAccount,
        peer_identity: [u8; 32],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, OlmError> {
        let msg = decode(ciphertext)?;
        if let Some(sessions) = self.by_peer.get_mut(&peer_identity) {
            for s in sessions.iter_mut() {
                if let Ok(pt) = s.decrypt(&msg) {
                    return Ok(pt);
                }
            }
        }
        let OlmMessage::PreKey(pre) = &msg else {
            return Err(OlmError::Undecryptable);
        };
        let created = me
            .account_mut()
            .create_inbound_session(
                SessionConfig::version_1(),
                Curve25519PublicKey::from_bytes(peer_identity),
                pre,
            )
            .map_err(|_| OlmError::Undecryptable)?;
        self.by_peer
            .entry(peer_identity)
            .or_default()
            .insert(0, created.session);
        Ok(created.plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerline_protocol::ids::FirmId;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn session_from_claimed_prekey_both_ways() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let firm = FirmId([1; 16]);
        let mut alice = DeviceAccount::generate(firm, &mut rng).unwrap();
        let mut bob = DeviceAccount::generate(firm, &mut rng).unwrap();
        let claimed = bob.new_one_time_keys(1).remove(0);
        claimed
            .verify(firm, bob.device(), &bob.keys().signing)
            .unwrap();
        let (mut a, mut b) = (OlmSessions::default(), OlmSessions::default());
        a.open(&alice, bob.keys().identity, &claimed).unwrap();
        let c1 = a.encrypt(&bob.keys().identity, b"room key 1").unwrap();
        assert_eq!(
            b.decrypt(&mut bob, alice.keys().identity, &c1).unwrap(),
            b"room key 1"
        );
        let reply = b.encrypt(&alice.keys().identity, b"ack").unwrap();
        assert_eq!(
            a.decrypt(&mut alice, bob.keys().identity, &reply).unwrap(),
            b"ack"
        );
        // A message claiming another sender does not decrypt.
        let c2 = a.encrypt(&bob.keys().identity, b"x").unwrap();
        let mut eve = OlmSessions::default();
        let mut eve_acc = DeviceAccount::generate(firm, &mut rng).unwrap();
        assert_eq!(
            eve.decrypt(&mut eve_acc, alice.keys().identity, &c2),
            Err(OlmError::Undecryptable)
        );
        assert_eq!(
            b.decrypt(&mut bob, alice.keys().identity, &[9, 9]),
            Err(OlmError::Malformed)
        );
    }
}
