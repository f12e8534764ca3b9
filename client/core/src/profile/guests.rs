//! Guests: the firm's customers in their own file's conversation, and nowhere else
//! (`protocol-spec/guests.md`).
//!
//! A guest is bound by the roster to one customer file. They hold the Megolm sessions of
//! that file's *conversation* room and the secrets of the documents shared in it, never an
//! epoch key: the file's records (notes, tasks, manifests) stay out of their reach by keys,
//! and everything else by the relay's rules.

use super::documents::{DocumentManifest, Progress};
use super::{
    declined, now_ms, ClientError, Conversation, MessageView, Profile, Result, SyncReport,
};
use crate::room::RoomEvent;
use crate::transport::RelayError;
use ledgerline_protocol::document::CONVERSATION_EPOCH;
use ledgerline_protocol::ids::{DocumentId, FileId, MemberId};
use ledgerline_protocol::roster::Role;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// Longest a guest invitation may stay open (the relay's limit for any invitation).
pub const MAX_GUEST_INVITE_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// A guest as `guest list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GuestView {
    /// Member id.
    pub id: MemberId,
    /// Name, if this profile knows it.
    pub name: Option<String>,
    /// The customer file whose conversation they are in.
    pub file: FileId,
    /// The file's name, if this profile knows it.
    pub file_name: Option<String>,
    /// Still admitted (not revoked).
    pub active: bool,
}

/// A message of a customer's file as staff see it: the customer conversation and the
/// staff's internal messages, in time order.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerMessage {
    /// The message.
    #[serde(flatten)]
    pub message: MessageView,
    /// Written in the staff room: never seen by the customer.
    pub internal: bool,
}

impl Profile {
    /// The file this profile's member is a guest of; `None` for staff and auditors.
    pub fn guest_file(&self) -> Option<FileId> {
        self.roster
            .as_ref()
            .and_then(|r| r.guest_file(&self.id.member))
    }

    /// Whether this profile belongs to a guest.
    pub fn is_guest(&self) -> bool {
        self.guest_file().is_some()
    }

    /// Whether this profile may invite guests (an admin's): `NotAllowed` otherwise.
    pub fn may_invite_guests(&self) -> Result<()> {
        self.require_admin()
    }

    /// Invites a customer as a guest of `file` (admin): returns the one-time code, open
    /// for `ttl_ms`. The joiner runs `ledgerline join` with it; `approve` admits them.
    pub async fn invite_guest(&mut self, file: FileId, name: &str, ttl_ms: u64) -> Result<String> {
        self.require_admin()?;
        if ttl_ms == 0 || ttl_ms > MAX_GUEST_INVITE_TTL_MS {
            return Err(declined(
                "guest_hours",
                "a guest invitation is open for 1 hour to 30 days",
            ));
        }
        if !self.roster()?.files().contains(&file) {
            return Err(ClientError::NotFound(
                "the roster has no such customer file".into(),
            ));
        }
        self.open_invite_for(name, "guest", Some(file), ttl_ms)
            .await
    }

    /// The guests of the firm (of every file), as the roster lists them.
    pub fn guests(&self) -> Result<Vec<GuestView>> {
        let r = self.roster()?;
        Ok(r.members()
            .filter_map(|(id, m)| {
                let file = m.guest_of?;
                Some(GuestView {
                    id: *id,
                    name: self.local.member_names.get(id).cloned(),
                    file,
                    file_name: self.local.files.get(&file).and_then(|f| f.name.clone()),
                    active: m.active.until.is_none(),
                })
            })
            .collect())
    }

    /// The customer conversation of `file`.
    pub fn customer_conversation(&self, file: FileId) -> Conversation {
        Conversation::customer(&self.id.firm, file)
    }

    /// Which conversation a room id is: an internal room this device knows, a customer
    /// conversation of a file that has (or had) guests, or else a file's staff room.
    pub(super) fn conversation_of_room(&self, room: [u8; 16]) -> Conversation {
        if self.local.rooms.contains_key(&hex::encode(room)) {
            return Conversation::Room(room);
        }
        self.conversation_files()
            .into_iter()
            .map(|f| self.customer_conversation(f))
            .find(|c| c.room_id() == room)
            .unwrap_or(Conversation::File(FileId(room)))
    }

    /// Files the roster ever gave a guest: those that may have a customer conversation.
    pub(super) fn conversation_files(&self) -> BTreeSet<FileId> {
        self.roster
            .as_ref()
            .map(|r| r.members().filter_map(|(_, m)| m.guest_of).collect())
            .unwrap_or_default()
    }

    /// Makes sure the relay has `file`'s conversation room (whoever opens it first).
    pub(super) async fn open_conversation(&mut self, file: FileId) -> Result<()> {
        if self.local.conversations.contains(&file) {
            return Ok(());
        }
        let room = self.customer_conversation(file).room_id();
        match self
            .relay
            .create_room(&self.account, room, Some(file), &[])
            .await
        {
            Ok(()) => {}
            Err(RelayError::Refused { code, .. }) if code == "room_exists" => {}
            Err(e) => return Err(e.into()),
        }
        self.local.conversations.insert(file);
        self.commit()
    }

    /// A customer's file as staff read it: the conversation with the customer and, marked
    /// internal, the staff room's messages, in the relay's time order. A guest gets their
    /// conversation only.
    pub fn customer_view(&self, file: FileId) -> Result<Vec<CustomerMessage>> {
        let mut all: Vec<CustomerMessage> = self
            .conversation(self.customer_conversation(file))?
            .into_iter()
            .map(|message| CustomerMessage {
                message,
                internal: false,
            })
            .collect();
        if !self.is_guest() {
            all.extend(
                self.conversation(Conversation::File(file))?
                    .into_iter()
                    .map(|message| CustomerMessage {
                        message,
                        internal: true,
                    }),
            );
            all.sort_by_key(|m| (m.message.created_ms, m.internal, m.message.seq));
        }
        Ok(all)
    }

    /// Shares a document in `file`'s customer conversation: uploads it under the
    /// conversation epoch with a fresh secret, then posts the secret and the manifest in
    /// the conversation. The file's epoch keys are not involved, so a guest can share too.
    pub async fn share_document(
        &mut self,
        file: FileId,
        path: &Path,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        self.check_conversation(file).await?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(super::not_utf8_name)?
            .to_owned();
        let source = std::fs::canonicalize(path).map_err(|e| super::unreadable(path, e))?;
        let size = std::fs::metadata(&source)
            .map_err(|e| super::unreadable(path, e))?
            .len();
        self.start_shared_upload(file, name, size, source, progress)
            .await
    }

    /// The documents shared in `file`'s customer conversation, as its messages carry them.
    pub fn shared_documents(&self, file: FileId) -> Result<Vec<DocumentManifest>> {
        Ok(self
            .shared_events(file)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// Downloads a document shared in `file`'s conversation (by id or name) into `out`.
    /// As for any document, the relay logs the request before it releases the share.
    pub async fn download_shared(
        &mut self,
        file: FileId,
        name_or_id: &str,
        out: &Path,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        let shared = self.shared_events(file)?;
        let by_id = name_or_id.parse::<DocumentId>().ok();
        let hits: Vec<&(DocumentManifest, zeroize::Zeroizing<[u8; 32]>)> = shared
            .iter()
            .filter(|(m, _)| Some(m.document) == by_id || m.name == name_or_id)
            .collect();
        let (m, secret) = match hits.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(ClientError::NotFound(format!(
                    "no document {name_or_id:?} was shared in this conversation (try `ledgerline sync`)"
                )))
            }
            _ => {
                return Err(ClientError::Invalid(format!(
                    "several shared documents are named {name_or_id:?}: use the id"
                )))
            }
        };
        let key = ledgerline_protocol::keys::EpochKey::from_bytes(*secret);
        self.download_with_key(file, m, key, out, progress).await
    }

    /// Every `shared_document` event of the conversation, newest sharing of an id last.
    fn shared_events(
        &self,
        file: FileId,
    ) -> Result<Vec<(DocumentManifest, zeroize::Zeroizing<[u8; 32]>)>> {
        let room = self.customer_conversation(file).room_id();
        let mut out: Vec<(DocumentManifest, zeroize::Zeroizing<[u8; 32]>)> = Vec::new();
        for m in self.store.messages(&room)? {
            let Ok(RoomEvent::SharedDocument {
                document,
                name,
                size,
                ciphertext_size,
                part_size,
                root,
                year,
                key,
            }) = serde_json::from_str::<RoomEvent>(&m.event)
            else {
                continue;
            };
            let mut secret = zeroize::Zeroizing::new([0u8; 32]);
            if hex::decode_to_slice(&key.0, secret.as_mut()).is_err() {
                continue;
            }
            out.retain(|(d, _)| d.document != document);
            out.push((
                DocumentManifest {
                    kind: "document".into(),
                    document,
                    name,
                    size,
                    ciphertext_size,
                    part_size,
                    root,
                    epoch: CONVERSATION_EPOCH,
                    uploaded_ms: m.created_ms,
                    year: Some(year),
                },
                secret,
            ));
        }
        Ok(out)
    }

    /// This member is in `file`'s conversation now, and the relay has the room.
    pub(super) async fn check_conversation(&mut self, file: FileId) -> Result<()> {
        self.sync_roster(&mut SyncReport::default()).await?;
        if !self
            .roster()?
            .conversation_members(&file, now_ms())
            .contains(&self.id.member)
        {
            return Err(ClientError::NotAllowed(
                "this member is not in the file's customer conversation".into(),
            ));
        }
        self.open_conversation(file).await
    }

    /// A guest's sync: roster, the log's head, prekeys, Olm messages, their one
    /// conversation, then what waits to go out. Nothing else of the firm is theirs to
    /// fetch (the relay would refuse it).
    pub(super) async fn sync_as_guest(
        &mut self,
        file: FileId,
        report: &mut SyncReport,
    ) -> Result<()> {
        report.log_size = self.check_log().await?;
        self.publish_prekeys().await?;
        self.sync_to_device(report).await?;
        let room = self.customer_conversation(file).room_id();
        match self.sync_room(room, report).await {
            // Nobody has opened the conversation yet.
            Err(ClientError::Relay(RelayError::Refused { status: 404, .. })) => {}
            // The office erased the file: the conversation went with it.
            Err(ClientError::Relay(RelayError::Refused { status: 410, .. })) => {
                self.forget_file(file)?;
            }
            other => other?,
        }
        self.commit()?;
        self.send_pending(report).await?;
        report.expired = self.apply_retention()?;
        report.waiting = self.timeline.waiting();
        Ok(())
    }

    /// On staff devices: the customer conversations of the files this member works in.
    pub(super) async fn sync_conversations(&mut self, report: &mut SyncReport) -> Result<()> {
        let mine = self.roster()?.files_of(&self.id.member, now_ms());
        for file in self.conversation_files() {
            if !mine.contains(&file) || self.local.erased.contains(&file) {
                continue;
            }
            let room = self.customer_conversation(file).room_id();
            match self.sync_room(room, report).await {
                // Not opened yet, or gone with the file.
                Err(ClientError::Relay(RelayError::Refused {
                    status: 404 | 403 | 410,
                    ..
                })) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Tells the devices of `file`'s guests the name of `member`, who just joined the
    /// file (and so their conversation).
    pub(super) fn introduce_to_guests(&mut self, file: FileId, member: MemberId) -> Result<()> {
        let Some(name) = self.local.member_names.get(&member).cloned() else {
            return Ok(());
        };
        let r = self.roster()?;
        let devices: Vec<ledgerline_protocol::ids::DeviceId> = r
            .guests_of(&file)
            .iter()
            .flat_map(|g| r.active_devices(g).map(|(d, _)| *d).collect::<Vec<_>>())
            .collect();
        for d in devices {
            self.queue_directory(
                d,
                std::collections::BTreeMap::from([(member, name.clone())]),
                std::collections::BTreeMap::new(),
                None,
            );
        }
        Ok(())
    }

    /// Whether `member` is a guest (for the views that must not mix them with staff).
    pub fn is_guest_member(&self, member: &MemberId) -> bool {
        self.roster
            .as_ref()
            .and_then(|r| r.member(member))
            .is_some_and(|m| m.role == Role::Guest)
    }
}
