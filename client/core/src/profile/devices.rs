//! A member's second (third...) device, and private payloads between devices over Olm.
//!
//! Linking: an existing device opens an invitation mailbox whose code carries the member's
//! fingerprint; the new device drops its public keys there, sealed under the code, and
//! shows its own fingerprint; the member compares it on the existing device, which then
//! certifies the new device with the master key (`DeviceAdded`, signed by the member
//! themself), wraps the member keys it holds for it (all of them, for an admin: escrow),
//! and sends the master key and the name directory over Olm once the new device has
//! published prekeys. The new device accepts a master key only from a device of its own
//! member and only if it matches the roster; names only from its member's or an admin's
//! devices.

use super::{
    key32, now_ms, ClientError, Identity, LocalState, Profile, Result, SyncReport, Unlock,
};
use crate::device::DeviceAccount;
use crate::room::ForwardedKey;
use ledgerline_protocol::ids::{DeviceId, MemberId};
use ledgerline_protocol::invite::{fingerprint, fingerprint_text, Invite, FINGERPRINT_LEN};
use ledgerline_protocol::keys::{verifying_key_from_bytes, MasterSigningKey, WrapPublicKey};
use ledgerline_protocol::roster::{DeviceCertificate, DeviceKeys, EventKind, Role};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::{Zeroize, Zeroizing};

/// Forwarded room sessions per to-device message (~400 bytes each before encryption).
const FORWARDED_KEYS_PER_MESSAGE: usize = 50;

/// The role recorded for a device-link invitation (never a roster role).
pub(super) const DEVICE_INVITE: &str = "device";

/// What a new device sends, sealed under the link code.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    device: DeviceId,
    signing_key: String,
    identity_key: String,
    wrap_key: String,
    name: String,
}

/// A payload for one device, sent over Olm when a session can be opened.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct PrivatePayload {
    device: DeviceId,
    /// JSON of a [`Private`].
    json: String,
}

impl Drop for PrivatePayload {
    fn drop(&mut self) {
        self.json.zeroize();
    }
}

/// Private to-device payloads (room keys have their own type).
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Private {
    /// The member's master key, for another device of the same member.
    MasterKey {
        /// Member.
        member: MemberId,
        /// Hex seed.
        key: String,
    },
    /// Names of members, from an admin (or the member's own device).
    Directory {
        /// Member → name.
        names: BTreeMap<MemberId, String>,
        /// The firm's name, for a device that joins (it has no other way to learn it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        firm: Option<String>,
        /// Team → name and the salt of its roster commitment.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        teams: BTreeMap<ledgerline_protocol::ids::TeamId, super::teams::TeamName>,
    },
    /// The member's recovery key, from the admin who reprovisioned this device (the firm's
    /// policy allows it): the device restores the member's key backup with it.
    Reprovision {
        /// Member.
        member: MemberId,
        /// The recovery key's text.
        recovery_key: String,
    },
    /// A file room's sessions, from the admin who granted this member the file.
    ForwardedRoomKeys {
        /// The sessions.
        keys: Vec<crate::room::ForwardedKey>,
    },
}

fn norm(fp: &str) -> String {
    fp.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn hex32(s: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| ClientError::Integrity("malformed link request".into()))?;
    Ok(out)
}

impl Profile {
    /// Opens a link code for a new device of this member (any member).
    pub async fn link_device(&mut self) -> Result<String> {
        self.roster()?;
        let name = self.id.name.clone();
        self.open_invite(&name, DEVICE_INVITE).await
    }

    /// On the new device: registers its keys under a link code. Returns the profile and
    /// the device fingerprint to compare on the linking device.
    pub async fn join_device(
        dir: &Path,
        unlock: Unlock,
        relay: &str,
        code: &str,
        name: &str,
    ) -> Result<(Self, String)> {
        let invite =
            Invite::parse(code).map_err(|e| ClientError::Invalid(format!("link code: {e}")))?;
        let firm = super::probe(relay)?.invite_firm(invite.id()).await?;
        let account = DeviceAccount::generate(firm, &mut OsRng)
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let keys = account.keys();
        let request = Zeroizing::new(
            serde_json::to_vec(&LinkRequest {
                device: account.device(),
                signing_key: hex::encode(keys.signing.as_bytes()),
                identity_key: hex::encode(keys.identity),
                wrap_key: hex::encode(keys.wrap.as_bytes()),
                name: name.to_owned(),
            })
            .unwrap_or_default(),
        );
        let sealed = invite.seal_request(&request, &mut OsRng);
        let store = super::open_store(dir, unlock, true)?;
        let id = Identity::new(relay, firm, MemberId([0; 16]), account.device(), name, None);
        let mut local = LocalState::default();
        local.inviter = Some(hex::encode(invite.inviter()));
        local.linking = true;
        let mut p = Self::assemble(dir, store, id, account, local)?;
        p.commit()?;
        p.relay.post_join_request(invite.id(), &sealed).await?;
        let fp = p.device_fingerprint();
        Ok((p, fp))
    }

    /// The link request, among this device's open invitations of `role`, whose device
    /// fingerprint is the one read out: `(invitation index, invitation, device, keys)`.
    pub(super) async fn find_link_request(
        &self,
        role: &str,
        told_fingerprint: &str,
    ) -> Result<(usize, Invite, DeviceId, DeviceKeys)> {
        let now = now_ms();
        for (i, inv) in self.local.invites.iter().enumerate() {
            if inv.expires_ms < now || inv.role != role {
                continue;
            }
            let invite = Invite::parse(&inv.code)
                .map_err(|e| ClientError::Integrity(format!("stored link code: {e}")))?;
            for sealed in self.relay.join_requests(&self.account, invite.id()).await? {
                let Ok(plain) = invite.open_request(&sealed) else {
                    continue;
                };
                let Ok(req) = serde_json::from_slice::<LinkRequest>(&plain) else {
                    continue;
                };
                let keys = DeviceKeys {
                    signing: verifying_key_from_bytes(&hex32(&req.signing_key)?)
                        .map_err(|_| ClientError::Integrity("link request key".into()))?,
                    identity: hex32(&req.identity_key)?,
                    wrap: WrapPublicKey::from(hex32(&req.wrap_key)?),
                };
                if norm(&fingerprint_text(&fingerprint(&keys.signing))) == norm(told_fingerprint) {
                    return Ok((i, invite.clone(), req.device, keys));
                }
            }
        }
        Err(ClientError::NotFound(
            "no link request with that fingerprint (has the new device run `ledgerline device join`?)".into(),
        ))
    }

    /// On the linking device: admits the new device whose fingerprint the member read.
    pub async fn approve_device(&mut self, told_fingerprint: &str) -> Result<DeviceId> {
        let master = self.master()?.clone();
        // The roster event goes on top of the newest roster, not a stale copy.
        self.sync_roster(&mut SyncReport::default()).await?;
        let (index, invite, device, keys) = self
            .find_link_request(DEVICE_INVITE, told_fingerprint)
            .await?;
        let cert = DeviceCertificate::issue(self.id.firm, self.id.member, device, keys, &master);
        self.append(EventKind::DeviceAdded(cert)).await?;
        self.local.invites.remove(index);
        // Every member key this device holds (its own; every member's for an admin).
        let held: Vec<(MemberId, u32)> = self
            .local
            .member_keys
            .keys()
            .filter_map(|k| {
                let (m, v) = k.split_once(':')?;
                Some((m.parse().ok()?, v.parse().ok()?))
            })
            .collect();
        for (member, version) in held {
            if let Some(k) = self.member_key_version(member, version) {
                self.share_member_key(member, version, &k, &[device])
                    .await?;
            }
        }
        let seed = Zeroizing::new(hex::encode(*master.to_bytes()));
        self.queue_private(
            device,
            &Private::MasterKey {
                member: self.id.member,
                key: seed.to_string(),
            },
        );
        self.queue_full_directory(device);
        // Every conversation's history this device can read, for the new device to read.
        let sessions: Vec<String> = self.timeline.session_ids().map(str::to_owned).collect();
        let keys: Vec<crate::room::ForwardedKey> = sessions
            .iter()
            .filter_map(|sid| self.timeline.export_session(sid))
            .collect();
        for chunk in keys.chunks(FORWARDED_KEYS_PER_MESSAGE) {
            self.queue_private(
                device,
                &Private::ForwardedRoomKeys {
                    keys: chunk.to_vec(),
                },
            );
        }
        self.commit()?;
        self.close_invite(invite.id()).await;
        Ok(device)
    }

    /// A linked device's first roster: its member is the one with the code's fingerprint
    /// whose certificate names this device with exactly these keys.
    pub(super) fn adopt_member(&mut self, inviter: &[u8; FINGERPRINT_LEN]) -> Result<()> {
        let r = self.roster()?;
        let Some(dev) = r.device(&self.id.device) else {
            return Err(ClientError::Integrity(
                "the roster does not list this device".into(),
            ));
        };
        let member = dev.member;
        let m = r
            .member(&member)
            .ok_or_else(|| ClientError::Integrity("the device's member is unknown".into()))?;
        // Linked by the member's own device (the code carries the member's fingerprint),
        // or reprovisioned by an admin (the code carries that admin's, who appended the
        // certificate; `protocol-spec/recovery.md`).
        let by_admin = r.admin_assisted_recovery()
            && self.events.iter().any(|e| {
                matches!(&e.body.kind, EventKind::DeviceAdded(c) if c.device == self.id.device)
                    && r.member(&e.body.signer).is_some_and(|a| {
                        a.role == Role::Admin && fingerprint(&a.master_key) == *inviter
                    })
            });
        if fingerprint(&m.master_key) != *inviter && !by_admin {
            return Err(ClientError::Integrity(format!(
                "this device was certified by a member whose fingerprint is not the code's {}",
                fingerprint_text(inviter)
            )));
        }
        self.id.member = member;
        self.local.linking = false;
        Ok(())
    }

    /// On an admin's device: a device its member certified alone (linked, or recovered
    /// with the recovery key) hears every name from an admin too.
    pub(super) fn welcome_self_certified(
        &mut self,
        events: &[ledgerline_protocol::roster::RosterEvent],
    ) {
        if self.require_admin().is_err() {
            return;
        }
        for e in events {
            if let EventKind::DeviceAdded(cert) = &e.body.kind {
                if e.body.signer == cert.member && cert.member != self.id.member {
                    self.queue_full_directory(cert.device);
                }
            }
        }
    }

    /// Tells everyone a new member's name, and the new member everyone's (admins only
    /// approve members, so the directory comes from an admin).
    pub(super) fn announce_member(&mut self, member: MemberId, device: DeviceId) -> Result<()> {
        let Some(name) = self.local.member_names.get(&member).cloned() else {
            return Ok(());
        };
        let others: Vec<DeviceId> = self
            .roster()?
            .all_active_devices()
            .into_iter()
            .filter(|d| *d != device && *d != self.id.device)
            .collect();
        for d in others {
            self.queue_directory(
                d,
                BTreeMap::from([(member, name.clone())]),
                BTreeMap::new(),
                None,
            );
        }
        self.queue_full_directory(device);
        Ok(())
    }

    /// Everything a new device should know by name: members, the firm, teams.
    pub(super) fn queue_full_directory(&mut self, device: DeviceId) {
        self.queue_directory(
            device,
            self.local.member_names.clone(),
            self.local.team_names.clone(),
            self.firm_name(),
        );
    }

    pub(super) fn queue_directory(
        &mut self,
        device: DeviceId,
        names: BTreeMap<MemberId, String>,
        teams: BTreeMap<ledgerline_protocol::ids::TeamId, super::teams::TeamName>,
        firm: Option<String>,
    ) {
        // A guest's device hears the names of the people in their conversation only, and
        // of no team (`protocol-spec/guests.md`).
        let guest_of = self.roster.as_ref().and_then(|r| {
            let member = r.device(&device)?.member;
            Some((r.guest_file(&member)?, r))
        });
        let (names, teams) = match guest_of {
            Some((file, r)) => {
                let people = r.conversation_members(&file, now_ms());
                (
                    names
                        .into_iter()
                        .filter(|(m, _)| people.contains(m))
                        .collect(),
                    BTreeMap::new(),
                )
            }
            None => (names, teams),
        };
        self.queue_private(device, &Private::Directory { names, firm, teams });
    }

    /// Passes a file room's history (the sessions this device holds) to a member just
    /// granted the file, on each of their devices.
    pub(super) fn forward_history(
        &mut self,
        file: ledgerline_protocol::ids::FileId,
        member: MemberId,
    ) -> Result<()> {
        // The staff room's history, and the customer conversation's.
        let mut keys = self.timeline.export_room(*file.as_bytes());
        keys.extend(
            self.timeline
                .export_room(self.customer_conversation(file).room_id()),
        );
        if keys.is_empty() {
            return Ok(());
        }
        let devices: Vec<DeviceId> = self
            .roster()?
            .active_devices(&member)
            .map(|(d, _)| *d)
            .collect();
        // A few dozen sessions per message keeps every to-device message far below the
        // relay's body limit, whatever the room's history.
        for d in devices {
            for chunk in keys.chunks(FORWARDED_KEYS_PER_MESSAGE) {
                self.queue_private(
                    d,
                    &Private::ForwardedRoomKeys {
                        keys: chunk.to_vec(),
                    },
                );
            }
        }
        Ok(())
    }

    /// After a relay restore lost this device's messages in `room` and their keys' first
    /// share: its own sessions of the room, from their first known index, to every device
    /// of the room's audience now (the relay lost the to-device messages too).
    pub(super) async fn reshare_own_sessions(&mut self, room: [u8; 16]) -> Result<()> {
        let me = self.id.device;
        let keys: Vec<ForwardedKey> = self
            .timeline
            .export_room(room)
            .into_iter()
            .filter(|k| k.owner == me)
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let to = self.conversation_of_room(room);
        let devices = match self.audience(to, false).await {
            Ok(d) => d,
            Err(ClientError::NotAllowed(_) | ClientError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        for d in devices.into_iter().filter(|d| *d != me) {
            for chunk in keys.chunks(FORWARDED_KEYS_PER_MESSAGE) {
                self.queue_private(
                    d,
                    &Private::ForwardedRoomKeys {
                        keys: chunk.to_vec(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Hands the member's recovery key to their reprovisioned device over Olm.
    pub(super) fn queue_reprovision(&mut self, device: DeviceId, member: MemberId, key: &str) {
        self.queue_private(
            device,
            &Private::Reprovision {
                member,
                recovery_key: key.to_owned(),
            },
        );
    }

    fn queue_private(&mut self, device: DeviceId, payload: &Private) {
        self.local.private_outbox.push(PrivatePayload {
            device,
            json: serde_json::to_string(payload).unwrap_or_default(),
        });
    }

    /// Sends queued private payloads to every device that has (or now gets) an Olm
    /// session; the others wait for a later sync.
    pub(super) async fn flush_private(&mut self, report: &mut SyncReport) -> Result<()> {
        if self.local.private_outbox.is_empty() {
            return Ok(());
        }
        let r = self.roster()?.clone();
        // Payloads for devices that are gone are dropped.
        self.local.private_outbox.retain(|p| {
            r.device(&p.device)
                .is_some_and(|d| d.active.until.is_none())
        });
        let mut targets: Vec<DeviceId> =
            self.local.private_outbox.iter().map(|p| p.device).collect();
        targets.sort();
        targets.dedup();
        let reached = self.olm_reach(&targets, report).await?;
        let mut batch = Vec::new();
        let mut sent = Vec::new();
        for (i, p) in self.local.private_outbox.iter().enumerate() {
            if !reached.contains(&p.device) {
                continue;
            }
            let Some(d) = r.device(&p.device) else {
                continue;
            };
            let ct = self
                .olm
                .encrypt(&d.keys.identity, p.json.as_bytes())
                .map_err(|e| ClientError::Integrity(e.to_string()))?;
            batch.push((p.device, ct));
            sent.push(i);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.relay.send_to_device(&self.account, &batch).await?;
        let mut i = 0;
        self.local.private_outbox.retain(|_| {
            let keep = !sent.contains(&i);
            i += 1;
            keep
        });
        self.commit()
    }

    /// Handles a private payload from `sender` (already Olm-authenticated).
    pub(super) fn accept_private(&mut self, sender: DeviceId, plain: &[u8]) -> Result<()> {
        let payload: Private = serde_json::from_slice(plain)
            .map_err(|_| ClientError::Integrity("unknown to-device payload".into()))?;
        let r = self.roster()?.clone();
        let from = r
            .device(&sender)
            .map(|d| d.member)
            .ok_or_else(|| ClientError::Integrity("sender not in the roster".into()))?;
        match payload {
            Private::Reprovision {
                member,
                mut recovery_key,
            } => {
                let admin = r.member(&from).is_some_and(|m| m.role == Role::Admin);
                if !admin || !r.admin_assisted_recovery() || member != self.id.member {
                    recovery_key.zeroize();
                    return Err(ClientError::Integrity(
                        "a recovery key from a device that may not reprovision this member".into(),
                    ));
                }
                // Restored at this sync's end (it needs the relay); kept encrypted at rest
                // until then.
                self.local.pending_restore = Some(std::mem::take(&mut recovery_key));
            }
            Private::MasterKey { member, mut key } => {
                let seed = key32(&key);
                key.zeroize();
                let seed = seed.ok_or_else(|| ClientError::Integrity("master key".into()))?;
                let master = MasterSigningKey::from_bytes(&seed);
                let roster_key = r.member(&member).map(|m| m.master_key);
                if from != self.id.member
                    || member != self.id.member
                    || roster_key != Some(master.verifying_key())
                {
                    return Err(ClientError::Integrity(
                        "a master key from another member's device, or not the roster's".into(),
                    ));
                }
                self.id.master = hex::encode(*master.to_bytes());
                self.master = Some(master);
            }
            Private::ForwardedRoomKeys { keys } => {
                // From an admin, for a file this member has access to now; or from one of
                // this member's own devices, for every conversation it reads (linking); or
                // from the very device whose sessions they are, sharing them again (after a
                // relay restore lost its first share): no more than its own first share.
                let own = from == self.id.member;
                let its_own = keys.iter().all(|k| k.owner == sender);
                if !own && !its_own && r.member(&from).is_none_or(|m| m.role != Role::Admin) {
                    return Err(ClientError::Integrity(
                        "forwarded room keys from a device that is neither an admin's, nor this member's, nor the sessions' own".into(),
                    ));
                }
                let now = super::now_ms();
                let conversations = self.conversation_files();
                for key in keys {
                    let file = key.room.parse::<ledgerline_protocol::ids::FileId>().ok();
                    let is_file = file.is_some_and(|f| r.files().contains(&f));
                    // A customer conversation: for a member of it, from an admin or the
                    // member's own device, or from the session's own device.
                    let conversation = conversations.iter().copied().find(|f| {
                        hex::encode(self.customer_conversation(*f).room_id()) == key.room
                    });
                    let allowed = if let Some(f) = conversation {
                        r.conversation_members(&f, now).contains(&self.id.member)
                            && (own || its_own || r.file_members(&f, now).contains(&self.id.member))
                    } else if is_file {
                        file.is_some_and(|f| {
                            r.key_holders(&f, super::now_ms()).contains(&self.id.member)
                                || r.team_files(&self.id.member).contains(&f)
                        })
                    } else {
                        // An internal room or direct chat: only the member's own devices
                        // pass on its sessions, or the session's device for a room this
                        // device is in (the relay still decides what it serves).
                        own || (its_own && self.local.rooms.contains_key(&key.room))
                    };
                    if !allowed {
                        continue;
                    }
                    if !is_file && conversation.is_none() {
                        self.local.rooms.entry(key.room.clone()).or_default();
                    }
                    let decrypted = self
                        .timeline
                        .add_forwarded_key(&key)
                        .map_err(|e| ClientError::Integrity(format!("forwarded key: {e}")))?;
                    for d in decrypted.into_iter().flatten() {
                        self.page
                            .push(super::stored(&d.event, d.room, d.seq, d.sender, 0));
                    }
                }
            }
            Private::Directory { names, firm, teams } => {
                let admin = r.member(&from).is_some_and(|m| m.role == Role::Admin);
                if !(admin || from == self.id.member) {
                    return Err(ClientError::Integrity(
                        "a name directory from a device that may not send one".into(),
                    ));
                }
                // The first name heard is kept: a later directory cannot rename the firm.
                if let Some(firm) = firm.filter(|f| !f.trim().is_empty() && f.len() <= 200) {
                    if self.firm_name().is_none() {
                        self.store.put_state("firm_name", &firm)?;
                    }
                }
                for (m, n) in names {
                    if r.member(&m).is_some() && !n.trim().is_empty() && n.len() <= 200 {
                        self.local.member_names.insert(m, n);
                    }
                }
                // A team's name is kept only if it is the one the roster committed to.
                for (t, n) in teams {
                    if r.team(&t).is_some_and(|s| n.matches(&t, &s.name)) {
                        self.local.team_names.insert(t, n);
                    }
                }
            }
        }
        Ok(())
    }
}
