//! Megolm rooms: one outbound session per room and sender, rotated on any membership
//! change, after 100 messages or after a week; room keys travel to exactly the room's
//! devices over Olm; the timeline keeps messages whose key has not arrived and decrypts
//! them when it does.
//!
//! Wire format of a room message (what the relay stores):
//! `0x01 || u8 n || session id (n ASCII bytes) || Megolm message bytes`; the Megolm
//! plaintext is a JSON [`RoomEvent`].

use ledgerline_protocol::ids::DeviceId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use vodozemac::megolm::{
    GroupSession, InboundGroupSession, MegolmMessage, SessionConfig, SessionKey,
};

/// Rotate the outbound session after this many messages.
pub const ROTATE_AFTER_MESSAGES: u32 = 100;
/// Rotate the outbound session after this long (ms).
pub const ROTATE_AFTER_MS: u64 = 7 * 24 * 3600 * 1000;
/// Most messages kept waiting for one missing key.
pub const MAX_PENDING_PER_SESSION: usize = 10_000;

/// A room id (16 bytes).
pub type RoomId = [u8; 16];

/// The content of a room message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RoomEvent {
    /// A text message, optionally replying to the message at `reply_to`.
    Text {
        /// Body.
        body: String,
        /// Sequence number replied to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
    },
    /// A document of the customer file, attached to the conversation (the document
    /// itself is in the file's records; this names it where the talk is).
    Attachment {
        /// The document.
        document: ledgerline_protocol::ids::DocumentId,
        /// Its file name as uploaded.
        name: String,
    },
    /// A new body for the sender's own message at `target`.
    Edit {
        /// Edited message.
        target: u64,
        /// New body.
        body: String,
    },
    /// Deletion of the sender's own message at `target`.
    Delete {
        /// Deleted message.
        target: u64,
    },
    /// The sender has read up to `up_to`.
    Read {
        /// Last read sequence number.
        up_to: u64,
    },
    /// An internal room's or direct chat's name and members (first event, and on changes).
    RoomProfile {
        /// Name (empty for a direct chat).
        name: String,
        /// Members.
        members: Vec<ledgerline_protocol::ids::MemberId>,
        /// A direct chat between two members.
        #[serde(default)]
        direct: bool,
    },
    /// A document shared in a customer conversation (`protocol-spec/guests.md`): uploaded
    /// under the conversation epoch, its key derived from `key` and the release share.
    /// Everything a reader needs is here, since a guest reads no record of the file.
    SharedDocument {
        /// The document.
        document: ledgerline_protocol::ids::DocumentId,
        /// File name as uploaded.
        name: String,
        /// Plaintext size.
        size: u64,
        /// Ciphertext size (the blob).
        ciphertext_size: u64,
        /// Part size of the upload.
        part_size: u64,
        /// Hex parts root of the ciphertext.
        root: String,
        /// The year the document concerns.
        year: u16,
        /// The document's 32-byte secret (hex): the key material in place of an epoch key.
        key: SecretHex,
    },
}

/// A secret in hex inside a room event: never printed, zeroized when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHex(pub String);

impl std::fmt::Debug for SecretHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHex(..)")
    }
}

impl Drop for SecretHex {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A room key as shared over Olm (the to-device plaintext), JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoomKey {
    /// Always `room_key`.
    pub r#type: String,
    /// Room, hex.
    pub room: String,
    /// Megolm session id.
    pub session_id: String,
    /// Megolm session key, base64.
    pub session_key: String,
    /// The sending device: the only device whose messages this session may carry.
    pub sender: DeviceId,
}

impl Drop for RoomKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.session_key);
    }
}

/// A room session passed on by an admin to a member granted the room's file later, so
/// the file's history reads for them too (exported at its first known index).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ForwardedKey {
    /// Room, hex.
    pub room: String,
    /// Megolm session id.
    pub session_id: String,
    /// Exported session key, base64.
    pub session_key: String,
    /// The device that owns (sent with) the session.
    pub owner: DeviceId,
}

impl Drop for ForwardedKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.session_key);
    }
}

/// Why a room operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoomError {
    /// Not a room message or room key.
    #[error("malformed room message or key")]
    Malformed,
    /// The relay-stated sender is not the device that owns the session.
    #[error("message sender does not own its Megolm session")]
    WrongSender,
    /// A room key claims another sender than the device that sent it over Olm.
    #[error("room key was forwarded by another device than its owner")]
    ForgedKey,
    /// The session belongs to another room.
    #[error("message is from another room's session")]
    WrongRoom,
    /// The Megolm message failed authentication.
    #[error("message could not be decrypted")]
    Undecryptable,
    /// The same Megolm message index appeared under another sequence number.
    #[error("message was replayed under another sequence number")]
    Replayed,
    /// Too many messages wait for one key.
    #[error("too many messages wait for a missing key")]
    TooManyPending,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OutboundPickleV1 {
    version: u8,
    room: String,
    session: String,
    initial_key: String,
    created_ms: u64,
    sent: u32,
    shared_with: Vec<DeviceId>,
}

/// This device's outbound session in one room.
pub struct OutboundRoom {
    room: RoomId,
    session: GroupSession,
    /// The key at message index 0: whoever receives it can read every message of the
    /// session, also those sent before the key reached them.
    initial_key: SessionKey,
    created_ms: u64,
    sent: u32,
    shared_with: BTreeSet<DeviceId>,
}

impl std::fmt::Debug for OutboundRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OutboundRoom {{ room: {}, sent: {}, session: [redacted] }}",
            hex::encode(self.room),
            self.sent
        )
    }
}

impl OutboundRoom {
    /// A fresh session for `room`, not yet shared with anyone.
    pub fn new(room: RoomId, now_ms: u64) -> Self {
        let session = GroupSession::new(SessionConfig::version_1());
        let initial_key = session.session_key();
        Self {
            room,
            session,
            initial_key,
            created_ms: now_ms,
            sent: 0,
            shared_with: BTreeSet::new(),
        }
    }

    /// When the session was made (ms since the Unix epoch).
    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// Whether this session must be replaced before sending to a room whose devices are now
    /// `devices`: any change of membership (so a removed device learns nothing new and a
    /// new one nothing old), the message limit, or the age limit.
    pub fn needs_rotation(&self, devices: &BTreeSet<DeviceId>, now_ms: u64) -> bool {
        (!self.shared_with.is_empty() && &self.shared_with != devices)
            || self.sent >= ROTATE_AFTER_MESSAGES
            || now_ms.saturating_sub(self.created_ms) >= ROTATE_AFTER_MS
    }

    /// Serialises the outbound session, encrypted under `pickle_key`.
    pub fn pickle(&self, pickle_key: &[u8; 32]) -> String {
        let p = OutboundPickleV1 {
            version: 1,
            room: hex::encode(self.room),
            session: self.session.pickle().encrypt(pickle_key),
            initial_key: crate::pickle::seal(pickle_key, self.initial_key.to_base64().as_bytes()),
            created_ms: self.created_ms,
            sent: self.sent,
            shared_with: self.shared_with.iter().copied().collect(),
        };
        serde_json::to_string(&p).unwrap_or_default()
    }

    /// Restores [`OutboundRoom::pickle`]; `None` on a wrong key or corrupted state.
    pub fn from_pickle(pickled: &str, pickle_key: &[u8; 32]) -> Option<Self> {
        let p: OutboundPickleV1 = serde_json::from_str(pickled).ok()?;
        if p.version != 1 {
            return None;
        }
        let mut room = [0u8; 16];
        hex::decode_to_slice(&p.room, &mut room).ok()?;
        let session = GroupSession::from_pickle(
            vodozemac::megolm::GroupSessionPickle::from_encrypted(&p.session, pickle_key).ok()?,
        );
        let key = crate::pickle::open(pickle_key, &p.initial_key)?;
        let initial_key = SessionKey::from_base64(std::str::from_utf8(&key).ok()?).ok()?;
        Some(Self {
            room,
            session,
            initial_key,
            created_ms: p.created_ms,
            sent: p.sent,
            shared_with: p.shared_with.into_iter().collect(),
        })
    }

    /// The id of the current Megolm session.
    pub fn session_id(&self) -> String {
        self.session.session_id()
    }

    /// The room.
    pub fn room(&self) -> RoomId {
        self.room
    }

    /// Devices the key went to.
    pub fn shared_with(&self) -> &BTreeSet<DeviceId> {
        &self.shared_with
    }

    /// The key to send over Olm to each of `devices`; records them as the audience.
    pub fn share(&mut self, sender: DeviceId, devices: &BTreeSet<DeviceId>) -> RoomKey {
        self.shared_with = devices.clone();
        RoomKey {
            r#type: "room_key".into(),
            room: hex::encode(self.room),
            session_id: self.session.session_id(),
            session_key: self.initial_key.to_base64(),
            sender,
        }
    }

    /// Encrypts an event into the wire format.
    pub fn encrypt(&mut self, event: &RoomEvent) -> Vec<u8> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(event).unwrap_or_default());
        let msg = self.session.encrypt(&*json);
        self.sent += 1;
        let sid = self.session.session_id();
        let mut out = vec![1, u8::try_from(sid.len()).unwrap_or(0)];
        out.extend_from_slice(sid.as_bytes());
        out.extend(msg.to_bytes());
        out
    }
}

/// The session id at the head of a room ciphertext, if it has one.
pub fn session_id_of(ciphertext: &[u8]) -> Option<String> {
    let (&version, rest) = ciphertext.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let sid = rest.get(..usize::from(len))?;
    if version != 1 || sid.is_empty() {
        return None;
    }
    String::from_utf8(sid.to_vec()).ok()
}

/// The tag a sender states for the Megolm session of a room ciphertext
/// (`protocol-spec/client-payloads.md`, "Session tags"): the first 16 bytes of
/// SHA-256(`CTX_ROOM_SESSION_TAG` || 0x00 || session id), lowercase hex. `None` if the
/// ciphertext does not start with a session id.
pub fn session_tag(ciphertext: &[u8]) -> Option<String> {
    use sha2::Digest;
    let sid = session_id_of(ciphertext)?;
    let digest = sha2::Sha256::new()
        .chain_update(ledgerline_protocol::constants::CTX_ROOM_SESSION_TAG.as_bytes())
        .chain_update([0u8])
        .chain_update(sid.as_bytes())
        .finalize();
    digest.get(..16).map(hex::encode)
}

/// A decrypted room message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// Room.
    pub room: RoomId,
    /// Relay sequence number.
    pub seq: u64,
    /// Sending device (checked against the session's owner).
    pub sender: DeviceId,
    /// Content.
    pub event: RoomEvent,
}

/// What happened to a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Decrypted now.
    Decrypted(Decrypted),
    /// Its key has not arrived; kept until it does.
    Pending,
}

struct Inbound {
    room: RoomId,
    owner: DeviceId,
    session: InboundGroupSession,
    seen: HashMap<u32, u64>,
}

struct PendingMessage {
    room: RoomId,
    seq: u64,
    sender: DeviceId,
    message: MegolmMessage,
}

/// Inbound sessions and messages waiting for their keys.
#[derive(Default)]
pub struct Timeline {
    inbound: HashMap<String, Inbound>,
    pending: HashMap<String, Vec<PendingMessage>>,
    /// Sessions added since the last save ([`Timeline::changes`]).
    unsaved_sessions: BTreeSet<String>,
    /// Replay records made since the last save: (session id, index, seq).
    unsaved_seen: Vec<(String, u32, u64)>,
}

/// One inbound session as saved: its id, and its pickle (room, owner, and the vodozemac
/// session encrypted under the pickle key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The Megolm session id.
    pub session_id: String,
    /// JSON of the room, the owner and the encrypted session.
    pub pickle: String,
}

/// What a [`Timeline`] holds that its last save does not: the sessions added and the replay
/// records made since. Saving them (with [`Timeline::pickle`], which keeps only the
/// messages waiting for keys) costs what changed, not the whole history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineChanges<'a> {
    /// Sessions to insert.
    pub sessions: Vec<SessionRow>,
    /// Replay records to insert: the message at `index` of the session is the relay's
    /// message `seq` (the same index at another position is a replay), as
    /// (session id, index, seq).
    pub seen: &'a [(String, u32, u64)],
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Timeline {{ sessions: {}, waiting: {} }}",
            self.inbound.len(),
            self.pending.values().map(Vec::len).sum::<usize>()
        )
    }
}

fn parse(bytes: &[u8]) -> Result<(String, MegolmMessage), RoomError> {
    let [1, n, rest @ ..] = bytes else {
        return Err(RoomError::Malformed);
    };
    let n = usize::from(*n);
    if rest.len() < n {
        return Err(RoomError::Malformed);
    }
    let (sid, msg) = rest.split_at(n);
    let sid = std::str::from_utf8(sid)
        .map_err(|_| RoomError::Malformed)?
        .to_owned();
    Ok((
        sid,
        MegolmMessage::from_bytes(msg).map_err(|_| RoomError::Malformed)?,
    ))
}

impl Inbound {
    /// Decrypts `msg`; a replay record it makes is also appended to `log` under `sid`.
    fn decrypt(
        &mut self,
        (sid, log): (&str, &mut Vec<(String, u32, u64)>),
        room: RoomId,
        seq: u64,
        sender: DeviceId,
        msg: &MegolmMessage,
    ) -> Result<Decrypted, RoomError> {
        if room != self.room {
            return Err(RoomError::WrongRoom);
        }
        if sender != self.owner {
            return Err(RoomError::WrongSender);
        }
        let d = self
            .session
            .decrypt(msg)
            .map_err(|_| RoomError::Undecryptable)?;
        match self.seen.get(&d.message_index) {
            Some(s) if *s != seq => return Err(RoomError::Replayed),
            Some(_) => {}
            None => {
                self.seen.insert(d.message_index, seq);
                log.push((sid.to_owned(), d.message_index, seq));
            }
        }
        let event = serde_json::from_slice(&zeroize::Zeroizing::new(d.plaintext))
            .map_err(|_| RoomError::Malformed)?;
        Ok(Decrypted {
            room,
            seq,
            sender,
            event,
        })
    }
}

/// A session in a version 1 timeline pickle (which held every session and replay record).
#[derive(serde::Deserialize)]
struct InboundPickle {
    session_id: String,
    room: String,
    owner: DeviceId,
    session: String,
    seen: Vec<(u32, u64)>,
}

/// A session as saved on its own ([`SessionRow::pickle`]).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionPickle {
    room: String,
    owner: DeviceId,
    session: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PendingPickle {
    session_id: String,
    room: String,
    seq: u64,
    sender: DeviceId,
    message: String,
}

/// Persisted form of a [`Timeline`]: version 1 held every session and replay record (a
/// save cost the whole history); version 2 holds only the messages waiting for keys, the
/// rest being saved row by row ([`TimelineChanges`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct TimelinePickle {
    version: u8,
    #[serde(default, skip_serializing)]
    inbound: Vec<InboundPickle>,
    pending: Vec<PendingPickle>,
}

impl Timeline {
    /// Serialises the messages still waiting for keys. Sessions and replay records are
    /// saved row by row: [`Timeline::changes`].
    pub fn pickle(&self) -> String {
        let pending = self
            .pending
            .iter()
            .flat_map(|(sid, v)| {
                v.iter().map(move |p| PendingPickle {
                    session_id: sid.clone(),
                    room: hex::encode(p.room),
                    seq: p.seq,
                    sender: p.sender,
                    message: hex::encode(p.message.to_bytes()),
                })
            })
            .collect();
        serde_json::to_string(&TimelinePickle {
            version: 2,
            inbound: Vec::new(),
            pending,
        })
        .unwrap_or_default()
    }

    /// The sessions added and replay records made since the last [`Timeline::saved`],
    /// sessions encrypted under `pickle_key`.
    pub fn changes(&self, pickle_key: &[u8; 32]) -> TimelineChanges<'_> {
        let sessions = self
            .unsaved_sessions
            .iter()
            .filter_map(|sid| {
                let i = self.inbound.get(sid)?;
                let pickle = serde_json::to_string(&SessionPickle {
                    room: hex::encode(i.room),
                    owner: i.owner,
                    session: i.session.pickle().encrypt(pickle_key),
                })
                .ok()?;
                Some(SessionRow {
                    session_id: sid.clone(),
                    pickle,
                })
            })
            .collect();
        TimelineChanges {
            sessions,
            seen: &self.unsaved_seen,
        }
    }

    /// The changes were saved: the next [`Timeline::changes`] starts from here.
    pub fn saved(&mut self) {
        self.unsaved_sessions.clear();
        self.unsaved_seen.clear();
    }

    /// Restores a timeline: `pickled` ([`Timeline::pickle`]), the saved sessions and the
    /// saved replay records. `None` on a wrong key or corrupted state. A version 1 pickle
    /// (sessions and records inside) comes back with all of them unsaved, so the next save
    /// moves them into rows.
    pub fn restore(
        pickled: Option<&str>,
        sessions: impl IntoIterator<Item = SessionRow>,
        seen: impl IntoIterator<Item = (String, u32, u64)>,
        pickle_key: &[u8; 32],
    ) -> Option<Self> {
        let p: TimelinePickle = match pickled {
            Some(s) => serde_json::from_str(s).ok()?,
            None => TimelinePickle {
                version: 2,
                inbound: Vec::new(),
                pending: Vec::new(),
            },
        };
        if !(p.version == 1 || (p.version == 2 && p.inbound.is_empty())) {
            return None;
        }
        let room_of = |h: &str| {
            let mut r = [0u8; 16];
            hex::decode_to_slice(h, &mut r).ok().map(|_| r)
        };
        let open = |pickle: &str| {
            vodozemac::megolm::InboundGroupSessionPickle::from_encrypted(pickle, pickle_key)
                .ok()
                .map(InboundGroupSession::from_pickle)
        };
        let mut t = Timeline::default();
        for row in sessions {
            let sp: SessionPickle = serde_json::from_str(&row.pickle).ok()?;
            let inbound = Inbound {
                room: room_of(&sp.room)?,
                owner: sp.owner,
                session: open(&sp.session)?,
                seen: HashMap::new(),
            };
            t.inbound.insert(row.session_id, inbound);
        }
        // Rows are written with their session in one transaction; a record whose session
        // is not there protects nothing and is passed over.
        for (sid, index, seq) in seen {
            if let Some(i) = t.inbound.get_mut(&sid) {
                i.seen.insert(index, seq);
            }
        }
        for i in p.inbound {
            t.inbound.insert(
                i.session_id.clone(),
                Inbound {
                    room: room_of(&i.room)?,
                    owner: i.owner,
                    session: open(&i.session)?,
                    seen: i.seen.iter().copied().collect(),
                },
            );
            t.unsaved_seen.extend(
                i.seen
                    .into_iter()
                    .map(|(index, seq)| (i.session_id.clone(), index, seq)),
            );
            t.unsaved_sessions.insert(i.session_id);
        }
        for m in p.pending {
            let message = MegolmMessage::from_bytes(&hex::decode(&m.message).ok()?).ok()?;
            t.pending
                .entry(m.session_id)
                .or_default()
                .push(PendingMessage {
                    room: room_of(&m.room)?,
                    seq: m.seq,
                    sender: m.sender,
                    message,
                });
        }
        Some(t)
    }

    /// Accepts a room key received over Olm from `from` (the device whose identity key
    /// decrypted the Olm message); returns the waiting messages it now decrypts, in
    /// sequence order.
    pub fn add_key(
        &mut self,
        from: DeviceId,
        key: &RoomKey,
    ) -> Result<Vec<Result<Decrypted, RoomError>>, RoomError> {
        if key.r#type != "room_key" {
            return Err(RoomError::Malformed);
        }
        if key.sender != from {
            return Err(RoomError::ForgedKey);
        }
        let mut room = [0u8; 16];
        hex::decode_to_slice(&key.room, &mut room).map_err(|_| RoomError::Malformed)?;
        let sk = SessionKey::from_base64(&key.session_key).map_err(|_| RoomError::Malformed)?;
        let session = InboundGroupSession::new(&sk, SessionConfig::version_1());
        if session.session_id() != key.session_id {
            return Err(RoomError::Malformed);
        }
        let sid = key.session_id.as_str();
        let entry = match self.inbound.entry(sid.to_owned()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.unsaved_sessions.insert(sid.to_owned());
                e.insert(Inbound {
                    room,
                    owner: from,
                    session,
                    seen: HashMap::new(),
                })
            }
        };
        if entry.owner != from || entry.room != room {
            return Err(RoomError::ForgedKey);
        }
        let mut waiting = self.pending.remove(sid).unwrap_or_default();
        waiting.sort_by_key(|p| p.seq);
        let log = &mut self.unsaved_seen;
        Ok(waiting
            .into_iter()
            .map(|p| entry.decrypt((sid, log), p.room, p.seq, p.sender, &p.message))
            .collect())
    }

    /// Every session of `room` this device can decrypt with, exported at its first known
    /// index, for a member granted the room later.
    pub fn export_room(&self, room: RoomId) -> Vec<ForwardedKey> {
        self.inbound
            .iter()
            .filter(|(_, i)| i.room == room)
            .map(|(sid, i)| ForwardedKey {
                room: hex::encode(room),
                session_id: sid.clone(),
                session_key: i.session.export_at_first_known_index().to_base64(),
                owner: i.owner,
            })
            .collect()
    }

    /// Ids of every inbound session this device holds.
    pub fn session_ids(&self) -> impl Iterator<Item = &str> {
        self.inbound.keys().map(String::as_str)
    }

    /// One session exported at its first known index (for the key backup).
    pub fn export_session(&self, session_id: &str) -> Option<ForwardedKey> {
        self.inbound.get(session_id).map(|i| ForwardedKey {
            room: hex::encode(i.room),
            session_id: session_id.to_owned(),
            session_key: i.session.export_at_first_known_index().to_base64(),
            owner: i.owner,
        })
    }

    /// Accepts a forwarded session (the caller checked that the forwarder may); returns
    /// the waiting messages it now decrypts. A session already held is left as it is.
    pub fn add_forwarded_key(
        &mut self,
        key: &ForwardedKey,
    ) -> Result<Vec<Result<Decrypted, RoomError>>, RoomError> {
        let mut room = [0u8; 16];
        hex::decode_to_slice(&key.room, &mut room).map_err(|_| RoomError::Malformed)?;
        let exported = vodozemac::megolm::ExportedSessionKey::from_base64(&key.session_key)
            .map_err(|_| RoomError::Malformed)?;
        let session = InboundGroupSession::import(&exported, SessionConfig::version_1());
        if session.session_id() != key.session_id {
            return Err(RoomError::Malformed);
        }
        if self.inbound.contains_key(&key.session_id) {
            return Ok(Vec::new());
        }
        let sid = key.session_id.as_str();
        self.unsaved_sessions.insert(sid.to_owned());
        let entry = self.inbound.entry(sid.to_owned()).or_insert(Inbound {
            room,
            owner: key.owner,
            session,
            seen: HashMap::new(),
        });
        let mut waiting = self.pending.remove(sid).unwrap_or_default();
        waiting.sort_by_key(|p| p.seq);
        let log = &mut self.unsaved_seen;
        Ok(waiting
            .into_iter()
            .map(|p| entry.decrypt((sid, log), p.room, p.seq, p.sender, &p.message))
            .collect())
    }

    /// Handles a message from the relay: decrypts it, or keeps it until its key arrives.
    pub fn receive(
        &mut self,
        room: RoomId,
        seq: u64,
        sender: DeviceId,
        bytes: &[u8],
    ) -> Result<Received, RoomError> {
        let (sid, msg) = parse(bytes)?;
        if let Some(inbound) = self.inbound.get_mut(&sid) {
            return inbound
                .decrypt((&sid, &mut self.unsaved_seen), room, seq, sender, &msg)
                .map(Received::Decrypted);
        }
        let waiting = self.pending.entry(sid).or_default();
        if waiting.len() >= MAX_PENDING_PER_SESSION {
            return Err(RoomError::TooManyPending);
        }
        waiting.push(PendingMessage {
            room,
            seq,
            sender,
            message: msg,
        });
        Ok(Received::Pending)
    }

    /// Messages still waiting for a key.
    pub fn waiting(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attachment_is_strict_json_naming_its_document() {
        let e = RoomEvent::Attachment {
            document: ledgerline_protocol::ids::DocumentId([7; 16]),
            name: "faktura 11/2026.pdf".into(),
        };
        let json = serde_json::to_string(&e).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"type":"attachment","document":"07070707070707070707070707070707","name":"faktura 11/2026.pdf"}"#
        );
        assert_eq!(serde_json::from_str::<RoomEvent>(&json).ok(), Some(e));
        let extra = json.replace("\"name\"", "\"x\":1,\"name\"");
        assert!(serde_json::from_str::<RoomEvent>(&extra).is_err());
    }

    #[test]
    fn a_session_tag_names_the_session_and_nothing_else() {
        let mut one = OutboundRoom::new(ROOM, 0);
        let mut two = OutboundRoom::new(ROOM, 0);
        let a = session_tag(&one.encrypt(&text("a"))).unwrap();
        let b = session_tag(&one.encrypt(&text("b"))).unwrap();
        let c = session_tag(&two.encrypt(&text("a"))).unwrap();
        assert_eq!(a, b, "one session, one tag");
        assert_ne!(a, c, "a new session, a new tag");
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|x| x.is_ascii_hexdigit() && !x.is_ascii_uppercase()));
        for junk in [&b""[..], &[1], &[1, 5, b'a'], &[2, 1, b'a', 0], &[1, 0, 0]] {
            assert_eq!(session_tag(junk), None, "{junk:?}");
        }
    }

    const ROOM: RoomId = [4; 16];
    const A: DeviceId = DeviceId([1; 16]);
    const B: DeviceId = DeviceId([2; 16]);
    const C: DeviceId = DeviceId([3; 16]);

    fn text(s: &str) -> RoomEvent {
        RoomEvent::Text {
            body: s.into(),
            reply_to: None,
        }
    }

    #[test]
    fn late_key_decrypts_waiting_messages_in_order() {
        let mut out = OutboundRoom::new(ROOM, 0);
        let devices = BTreeSet::from([A, B]);
        // Messages sent before the key is shared stay readable: the share starts at index 0.
        let m1 = out.encrypt(&text("Dzień dobry"));
        let key = out.share(A, &devices);
        let m2 = out.encrypt(&RoomEvent::Text {
            body: "faktura?".into(),
            reply_to: Some(1),
        });
        let mut tl = Timeline::default();
        assert_eq!(tl.receive(ROOM, 2, A, &m2), Ok(Received::Pending));
        assert_eq!(tl.receive(ROOM, 1, A, &m1), Ok(Received::Pending));
        assert_eq!(tl.waiting(), 2);
        let done = tl.add_key(A, &key).unwrap();
        let seqs: Vec<u64> = done.iter().map(|d| d.as_ref().unwrap().seq).collect();
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(done[0].as_ref().unwrap().event, text("Dzień dobry"));
        assert_eq!(tl.waiting(), 0);
        let m3 = out.encrypt(&RoomEvent::Edit {
            target: 1,
            body: "Dzień dobry!".into(),
        });
        assert!(matches!(
            tl.receive(ROOM, 3, A, &m3),
            Ok(Received::Decrypted(_))
        ));
    }

    #[test]
    fn forwarded_history_decrypts_for_a_member_granted_later() {
        let mut out = OutboundRoom::new(ROOM, 0);
        let key = out.share(A, &BTreeSet::from([A, C]));
        let m1 = out.encrypt(&text("przed przyznaniem dostępu"));
        // C (an admin) holds the session; B is granted later and has only the message.
        let mut admin = Timeline::default();
        admin.add_key(A, &key).unwrap();
        let mut late = Timeline::default();
        assert_eq!(late.receive(ROOM, 1, A, &m1), Ok(Received::Pending));
        let forwarded = admin.export_room(ROOM);
        assert_eq!(forwarded.len(), 1);
        assert!(admin.export_room([9; 16]).is_empty());
        let done = late.add_forwarded_key(&forwarded[0]).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(
            done[0].as_ref().unwrap().event,
            text("przed przyznaniem dostępu")
        );
        // The owner is still the original sender: a message from another device under
        // that session is refused.
        let m2 = out.encrypt(&text("dalej"));
        assert_eq!(late.receive(ROOM, 2, B, &m2), Err(RoomError::WrongSender));
        // A key that does not match its claimed session id is refused.
        let mut bad = forwarded[0].clone();
        bad.session_id = "x".into();
        assert_eq!(
            Timeline::default().add_forwarded_key(&bad),
            Err(RoomError::Malformed)
        );
    }

    #[test]
    fn state_survives_a_restart_through_pickles() {
        let key = [3u8; 32];
        let mut out = OutboundRoom::new(ROOM, 0);
        let m1 = out.encrypt(&text("przed restartem"));
        let share = out.share(A, &BTreeSet::from([A, B]));
        let mut tl = Timeline::default();
        assert_eq!(tl.receive(ROOM, 1, A, &m1), Ok(Received::Pending));
        // Restart both sides.
        let mut saved = Saved::default();
        let mut out = OutboundRoom::from_pickle(&out.pickle(&key), &key).unwrap();
        let mut tl = saved.restart(&mut tl, &key);
        assert_eq!(tl.waiting(), 1);
        assert_eq!(tl.add_key(A, &share).unwrap().len(), 1);
        let m2 = out.encrypt(&text("po restarcie"));
        let mut tl = saved.restart(&mut tl, &key);
        assert!(matches!(
            tl.receive(ROOM, 2, A, &m2),
            Ok(Received::Decrypted(_))
        ));
        // Replay protection survives too.
        let mut tl = saved.restart(&mut tl, &key);
        assert_eq!(tl.receive(ROOM, 9, A, &m2), Err(RoomError::Replayed));
        assert!(saved.open(&tl.pickle(), &[4u8; 32]).is_none());
        assert!(OutboundRoom::from_pickle(&out.pickle(&key), &[4u8; 32]).is_none());
    }

    /// What a store keeps of a timeline: its pickle, and the rows of its changes.
    #[derive(Default)]
    struct Saved {
        sessions: Vec<SessionRow>,
        seen: Vec<(String, u32, u64)>,
    }

    impl Saved {
        fn save(&mut self, tl: &mut Timeline, key: &[u8; 32]) -> String {
            let c = tl.changes(key);
            self.sessions.extend(c.sessions);
            self.seen.extend_from_slice(c.seen);
            tl.saved();
            tl.pickle()
        }

        fn open(&self, pickled: &str, key: &[u8; 32]) -> Option<Timeline> {
            Timeline::restore(Some(pickled), self.sessions.clone(), self.seen.clone(), key)
        }

        fn restart(&mut self, tl: &mut Timeline, key: &[u8; 32]) -> Timeline {
            let pickled = self.save(tl, key);
            self.open(&pickled, key).unwrap()
        }
    }

    /// A's session of `ROOM`, and a timeline holding its key.
    fn shared_session() -> (OutboundRoom, Timeline) {
        let mut out = OutboundRoom::new(ROOM, 0);
        let share = out.share(A, &BTreeSet::from([A, B]));
        let mut tl = Timeline::default();
        tl.add_key(A, &share).unwrap();
        (out, tl)
    }

    #[test]
    fn a_save_costs_what_changed_not_the_history() {
        let key = [3u8; 32];
        let (mut out, mut tl) = shared_session();
        let mut saved = Saved::default();
        let first = saved.save(&mut tl, &key);
        assert_eq!((saved.sessions.len(), saved.seen.len()), (1, 0));
        for seq in 1..=300 {
            let m = out.encrypt(&text("wyciąg bankowy"));
            assert!(matches!(
                tl.receive(ROOM, seq, A, &m),
                Ok(Received::Decrypted(_))
            ));
            if seq % 100 == 0 {
                // Each save carries the 100 new records and no session again; the pickle
                // (messages waiting for keys) does not grow with the history.
                let c = tl.changes(&key);
                assert_eq!((c.sessions.len(), c.seen.len()), (0, 100));
                assert_eq!(saved.save(&mut tl, &key), first);
            }
        }
        assert_eq!(saved.seen.len(), 300);
        // A delivery seen again at its own position is not a new record.
        let again = out.encrypt(&text("x"));
        tl.receive(ROOM, 301, A, &again).unwrap();
        tl.receive(ROOM, 301, A, &again).unwrap();
        assert_eq!(tl.changes(&key).seen.len(), 1);
        // Unsaved changes are not lost when a save fails: they stay until `saved`.
        assert_eq!(tl.changes(&key).seen.len(), 1);
    }

    #[test]
    fn a_version_1_pickle_is_read_and_moved_into_rows() {
        let key = [3u8; 32];
        let (mut out, mut tl) = shared_session();
        let m1 = out.encrypt(&text("jeden"));
        tl.receive(ROOM, 1, A, &m1).unwrap();
        // What the previous release wrote: every session and record inside the pickle.
        let (sid, inbound) = tl.inbound.iter().next().unwrap();
        let v1 = serde_json::json!({
            "version": 1,
            "inbound": [{
                "session_id": sid,
                "room": hex::encode(inbound.room),
                "owner": inbound.owner,
                "session": inbound.session.pickle().encrypt(&key),
                "seen": [[0, 1]],
            }],
            "pending": [],
        })
        .to_string();
        let mut old = Timeline::restore(Some(&v1), [], [], &key).unwrap();
        let c = old.changes(&key);
        assert_eq!((c.sessions.len(), c.seen.len()), (1, 1));
        assert_eq!(old.receive(ROOM, 7, A, &m1), Err(RoomError::Replayed));
        let mut saved = Saved::default();
        let mut tl = saved.restart(&mut old, &key);
        assert_eq!(tl.receive(ROOM, 7, A, &m1), Err(RoomError::Replayed));
        let m2 = out.encrypt(&text("dwa"));
        assert!(matches!(
            tl.receive(ROOM, 2, A, &m2),
            Ok(Received::Decrypted(_))
        ));
    }

    #[test]
    fn rotation_policy() {
        let mut out = OutboundRoom::new(ROOM, 0);
        let ab = BTreeSet::from([A, B]);
        out.share(A, &ab);
        assert!(!out.needs_rotation(&ab, 1));
        assert!(
            out.needs_rotation(&BTreeSet::from([A]), 1),
            "a removed device forces a new session"
        );
        assert!(
            out.needs_rotation(&BTreeSet::from([A, B, C]), 1),
            "so does an added one"
        );
        assert!(out.needs_rotation(&ab, ROTATE_AFTER_MS));
        for _ in 0..ROTATE_AFTER_MESSAGES {
            out.encrypt(&text("x"));
        }
        assert!(out.needs_rotation(&ab, 1));
    }

    #[test]
    fn a_removed_device_cannot_read_the_next_session() {
        let mut first = OutboundRoom::new(ROOM, 0);
        let k1 = first.share(A, &BTreeSet::from([A, B, C]));
        let mut c_timeline = Timeline::default();
        c_timeline.add_key(A, &k1).unwrap();
        assert!(matches!(
            c_timeline.receive(ROOM, 1, A, &first.encrypt(&text("before"))),
            Ok(Received::Decrypted(_))
        ));
        // C leaves: rotate and share with A and B only.
        assert!(first.needs_rotation(&BTreeSet::from([A, B]), 1));
        let mut second = OutboundRoom::new(ROOM, 1);
        let _k2 = second.share(A, &BTreeSet::from([A, B]));
        let after = second.encrypt(&text("after"));
        assert_eq!(
            c_timeline.receive(ROOM, 2, A, &after),
            Ok(Received::Pending),
            "C never gets the key"
        );
    }

    #[test]
    fn forged_keys_wrong_senders_rooms_and_replays_are_refused() {
        let mut out = OutboundRoom::new(ROOM, 0);
        let key = out.share(A, &BTreeSet::from([A, B]));
        let mut tl = Timeline::default();
        assert_eq!(tl.add_key(B, &key).err(), Some(RoomError::ForgedKey));
        tl.add_key(A, &key).unwrap();
        let m = out.encrypt(&text("x"));
        assert_eq!(tl.receive(ROOM, 1, B, &m), Err(RoomError::WrongSender));
        assert_eq!(tl.receive([9; 16], 1, A, &m), Err(RoomError::WrongRoom));
        assert!(tl.receive(ROOM, 1, A, &m).is_ok());
        assert!(
            tl.receive(ROOM, 1, A, &m).is_ok(),
            "the same message at the same position is idempotent"
        );
        assert_eq!(tl.receive(ROOM, 7, A, &m), Err(RoomError::Replayed));
        let mut bad = m.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(tl.receive(ROOM, 2, A, &bad), Err(RoomError::Undecryptable));
        assert_eq!(
            tl.receive(ROOM, 2, A, &[1, 200, 1]),
            Err(RoomError::Malformed)
        );
    }
}
