//! Key backup and recovery (`protocol-spec/recovery.md`).
//!
//! Every device of a member seals what it holds — the master key, the member's own member
//! keys, every Megolm room session — to the member's backup key and uploads it at sync;
//! the relay keeps it under the recovery id. A fresh device given the recovery key finds
//! the backup, opens the master key, certifies itself, revokes the member's other devices
//! (the lost laptop) and restores every key: the member's whole history reads again,
//! without anyone re-sending anything.

use super::{declined, key32, now_ms, ClientError, Identity, LocalState, Profile, Result};
use crate::device::DeviceAccount;
use crate::room::ForwardedKey;
use crate::transport::{BackupKeyInfo, RelayError};
use ledgerline_protocol::ids::{DeviceId, MemberId};
use ledgerline_protocol::keys::{MasterSigningKey, MemberKey, WrapPublicKey};
use ledgerline_protocol::recovery::{
    open_escrow, open_item, seal_escrow, seal_item, sign_backup_key, verify_backup_key,
    ItemContext, ItemKind, RecoveryKey,
};
use ledgerline_protocol::roster::{DeviceCertificate, EventBody, EventKind, Roster, RosterEvent};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;
use zeroize::{Zeroize, Zeroizing};

/// Items sealed and sent per request.
const ITEMS_PER_REQUEST: usize = 200;

/// This device's view of its member's key backup.
#[derive(Serialize, Deserialize, Clone, Default)]
pub(super) struct BackupState {
    /// Recovery id, hex.
    recovery_id: String,
    /// Backup key (X25519 public), hex.
    key: String,
    /// The master key's signature over it, hex.
    signature: String,
    /// Whether the relay has the key (a joiner makes it before being admitted).
    registered: bool,
    /// Items this device knows the backup holds: `kind:hex id`.
    done: BTreeSet<String>,
    /// A new recovery key (hex), kept only until this device knows whether the firm's
    /// policy wants it escrowed for the admins (the first sync in the roster), then erased.
    #[serde(default)]
    pending_key: Option<String>,
}

impl BackupState {
    fn from_info(k: &BackupKeyInfo, registered: bool) -> Self {
        Self {
            recovery_id: hex::encode(k.recovery_id),
            key: hex::encode(k.key),
            signature: hex::encode(k.signature),
            registered,
            done: BTreeSet::new(),
            pending_key: None,
        }
    }

    fn info(&self) -> Result<BackupKeyInfo> {
        let bad = || ClientError::Integrity("stored backup key".into());
        let mut k = BackupKeyInfo {
            recovery_id: [0; 16],
            key: [0; 32],
            signature: [0; 64],
        };
        hex::decode_to_slice(&self.recovery_id, &mut k.recovery_id).map_err(|_| bad())?;
        hex::decode_to_slice(&self.key, &mut k.key).map_err(|_| bad())?;
        hex::decode_to_slice(&self.signature, &mut k.signature).map_err(|_| bad())?;
        Ok(k)
    }
}

/// The identity item: what a fresh device needs to become this member's device.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityItem {
    /// Master key seed, hex.
    master: String,
    /// The member's name.
    name: String,
}

impl Drop for IdentityItem {
    fn drop(&mut self) {
        self.master.zeroize();
    }
}

fn done_key(kind: ItemKind, id: &[u8]) -> String {
    format!("{}:{}", kind as u8, hex::encode(id))
}

/// What a recovery did.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    /// The recovered member.
    pub member: MemberId,
    /// Their name, from the backup.
    pub name: String,
    /// The new device.
    pub device: DeviceId,
    /// The member's other devices, revoked (the relay refuses them from now on).
    pub revoked_devices: Vec<DeviceId>,
    /// Member-key versions restored from the backup.
    pub member_keys: u64,
    /// Room sessions restored from the backup.
    pub room_keys: u64,
}

/// What [`Profile::backup_status`] reports.
#[derive(Debug, Clone, Serialize)]
pub struct BackupStatus {
    /// Whether the member has a key backup this device seals to.
    pub enabled: bool,
    /// Whether the relay has the backup key yet (a new member's device registers it once
    /// admitted).
    pub registered: bool,
    /// Items this device put in (or found in) the backup.
    pub items: u64,
    /// Room sessions this device holds that are not in the backup yet.
    pub pending_room_keys: u64,
}

impl Profile {
    /// Makes a new recovery key for this member: from now on the backup is sealed to it
    /// (the relay drops what was sealed to an older one, and every device seals again).
    /// Returns the key's text, to show once; it is kept nowhere.
    pub async fn new_recovery_key(&mut self) -> Result<Zeroizing<String>> {
        let text = self.prepare_recovery_key()?;
        self.commit()?;
        self.sync_backup().await?;
        Ok(text)
    }

    /// The recovery key made at onboarding ([`Profile::create_firm`], [`Profile::join`]),
    /// once.
    pub fn take_recovery_key(&mut self) -> Option<Zeroizing<String>> {
        self.fresh_recovery_key.take()
    }

    /// A new recovery key, its backup key signed and stored for upload; nothing is sent.
    pub(super) fn prepare_recovery_key(&mut self) -> Result<Zeroizing<String>> {
        let master = self.master().map_err(|_| {
            ClientError::NotAllowed(
                "this device does not hold the member's master key yet: sync, then try again"
                    .into(),
            )
        })?;
        let key = RecoveryKey::generate(&mut OsRng);
        let public = key.backup_key();
        let info = BackupKeyInfo {
            recovery_id: key.id(),
            key: *public.as_bytes(),
            signature: sign_backup_key(master, self.id.firm, self.id.member, &public, &key.id()),
        };
        let mut state = BackupState::from_info(&info, false);
        state.pending_key = Some(hex::encode(key.as_bytes()));
        self.local.backup = Some(state);
        let text = key.to_text();
        self.fresh_recovery_key = Some(text.clone());
        Ok(text)
    }

    /// The backup as this device sees it.
    pub fn backup_status(&self) -> BackupStatus {
        let b = self.local.backup.as_ref();
        let pending = b.map_or(0, |b| {
            self.timeline
                .session_ids()
                .filter(|s| !b.done.contains(&done_key(ItemKind::RoomKey, s.as_bytes())))
                .count() as u64
        });
        BackupStatus {
            enabled: b.is_some(),
            registered: b.is_some_and(|b| b.registered),
            items: b.map_or(0, |b| b.done.len() as u64),
            pending_room_keys: pending,
        }
    }

    /// Verifies a backup key against this member's master key in the roster.
    fn check_backup_key(&self, k: &BackupKeyInfo) -> Result<()> {
        let master = self
            .roster()?
            .member(&self.id.member)
            .map(|m| m.master_key)
            .ok_or_else(|| ClientError::Integrity("this member is not in the roster".into()))?;
        if verify_backup_key(
            &master,
            self.id.firm,
            self.id.member,
            &WrapPublicKey::from(k.key),
            &k.recovery_id,
            &k.signature,
        ) {
            Ok(())
        } else {
            Err(ClientError::Integrity(
                "the relay's backup key is not signed by this member's master key".into(),
            ))
        }
    }

    /// Learns the member's backup key from the relay (a linked device, or after another
    /// device made a new recovery key); `false` if the member has none.
    async fn fetch_backup_key(&mut self) -> Result<bool> {
        let Some(k) = self.relay.backup_key(&self.account).await? else {
            self.local.backup = None;
            return Ok(false);
        };
        self.check_backup_key(&k)?;
        let same = self
            .local
            .backup
            .as_ref()
            .is_some_and(|b| b.info().ok().as_ref() == Some(&k));
        if !same {
            self.local.backup = Some(BackupState::from_info(&k, true));
        }
        Ok(true)
    }

    /// After a relay restore: the member's key backup is uploaded again whole at the sync
    /// that follows (the relay lost what came after its backup). The backup key is
    /// registered again when the relay lost it; one the relay holds (verified against the
    /// member's master key) is adopted, as at any sync.
    pub(super) async fn restore_backup(&mut self) -> Result<()> {
        if self.local.backup.is_none() {
            return Ok(());
        }
        match self.relay.backup_key(&self.account).await? {
            None => {
                if let Some(b) = self.local.backup.as_mut() {
                    b.registered = false;
                    b.done.clear();
                }
            }
            Some(k) => {
                self.check_backup_key(&k)?;
                let Some(b) = self.local.backup.as_mut() else {
                    return Ok(());
                };
                if b.info().ok().as_ref() == Some(&k) {
                    b.done.clear();
                } else {
                    *b = BackupState::from_info(&k, true);
                }
            }
        }
        Ok(())
    }

    /// At sync: registers the backup key if the relay lacks it, then seals and uploads
    /// what this device holds that the backup does not.
    pub(super) async fn sync_backup(&mut self) -> Result<()> {
        let admitted = self
            .roster
            .as_ref()
            .is_some_and(|r| r.device(&self.id.device).is_some());
        if !admitted || self.local.linking {
            return Ok(());
        }
        if self.local.backup.is_none() && !self.backup_checked {
            self.backup_checked = true;
            if !self.fetch_backup_key().await? {
                return Ok(());
            }
        }
        let Some(b) = self.local.backup.clone() else {
            return Ok(());
        };
        if !b.registered {
            self.relay.put_backup_key(&self.account, &b.info()?).await?;
            if let Some(b) = self.local.backup.as_mut() {
                b.registered = true;
            }
            self.commit()?;
        }
        self.escrow_pending().await?;
        for attempt in 0..2 {
            match self.upload_items().await {
                Err(ClientError::Relay(RelayError::Refused {
                    status: 409, code, ..
                })) if code == "backup_key_changed" && attempt == 0 => {
                    // Another device made a new recovery key: seal everything to it.
                    if !self.fetch_backup_key().await? {
                        return Ok(());
                    }
                }
                other => return other,
            }
        }
        Ok(())
    }

    /// A new recovery key waits for the roster's word: under an admin-assisted policy it is
    /// sealed to every active admin device and stored on the relay; then (either way) it is
    /// erased from this device.
    async fn escrow_pending(&mut self) -> Result<()> {
        let Some(b) = self.local.backup.clone() else {
            return Ok(());
        };
        let Some(pending) = b.pending_key.as_deref() else {
            return Ok(());
        };
        let r = self.roster()?;
        if r.admin_assisted_recovery() {
            let bytes = key32(pending)
                .ok_or_else(|| ClientError::Integrity("stored recovery key".into()))?;
            let key = RecoveryKey::from_bytes(*bytes);
            let mut entries = Vec::new();
            for d in self.admin_devices()? {
                if let Some(state) = r.device(&d) {
                    let sealed = seal_escrow(
                        &key,
                        &state.keys.wrap,
                        self.id.firm,
                        self.id.member,
                        d,
                        &mut OsRng,
                    );
                    entries.push((d, sealed));
                }
            }
            self.relay
                .put_escrow(&self.account, b.info()?.key, &entries)
                .await?;
        }
        if let Some(b) = self.local.backup.as_mut() {
            if let Some(mut k) = b.pending_key.take() {
                k.zeroize();
            }
        }
        self.commit()
    }

    /// Turns admin-assisted recovery on or off for the firm (admin). Members escrow their
    /// recovery key when they next make one (`backup new-key`) or join.
    pub async fn set_recovery_policy(&mut self, admin_assisted: bool) -> Result<()> {
        self.require_admin()?;
        self.sync_roster(&mut super::SyncReport::default()).await?;
        if self.roster()?.admin_assisted_recovery() == admin_assisted {
            return Ok(());
        }
        self.append(EventKind::RecoveryPolicySet { admin_assisted })
            .await?;
        Ok(())
    }

    /// A master key from a backup must be the member's in the roster.
    fn check_master(&self, member: MemberId, master: &MasterSigningKey) -> Result<()> {
        if self.roster()?.member(&member).map(|m| m.master_key) == Some(master.verifying_key()) {
            Ok(())
        } else {
            Err(ClientError::Integrity(
                "the backup's master key is not the member's in the roster".into(),
            ))
        }
    }

    /// This member's recovery key as escrowed for this admin device.
    async fn escrowed_key(&mut self, member: MemberId) -> Result<RecoveryKey> {
        self.require_admin()?;
        if !self.roster()?.admin_assisted_recovery() {
            return Err(ClientError::NotAllowed(
                "the firm's policy does not allow admin-assisted recovery (`ledgerline firm recovery-policy on`)".into(),
            ));
        }
        let sealed = match self.relay.escrow(&self.account, member).await {
            Err(RelayError::Refused { status: 404, .. }) => {
                return Err(ClientError::NotFound(
                    "no recovery key of this member is escrowed for this device: the member makes a new one (`ledgerline backup new-key`) while the policy is on".into(),
                ))
            }
            other => other?,
        };
        open_escrow(
            &sealed,
            self.account.wrap_secret(),
            self.id.firm,
            member,
            self.id.device,
        )
        .map_err(|e| ClientError::Integrity(format!("the escrowed recovery key: {e}")))
    }

    /// Admin-assisted recovery, first step: checks that this device can open the member's
    /// escrowed recovery key, and opens a link code (with this admin's fingerprint) for the
    /// member's new device, which runs `ledgerline device join` with it.
    pub async fn reprovision_start(&mut self, member: MemberId) -> Result<String> {
        self.sync_roster(&mut super::SyncReport::default()).await?;
        if member == self.id.member {
            return Err(ClientError::NotAllowed(
                "recover your own account with your recovery key, or ask another admin".into(),
            ));
        }
        self.escrowed_key(member).await?;
        let name = self
            .local
            .member_names
            .get(&member)
            .cloned()
            .unwrap_or_else(|| member.to_string());
        self.open_invite(&name, &reprovision_role(member)).await
    }

    /// Admin-assisted recovery, second step: admits the new device whose fingerprint the
    /// member read out — certified with the member's master key from their backup, in a
    /// roster event this admin signs — revokes the member's other devices (with the full
    /// rotation), and hands the new device the recovery key over Olm to restore from.
    pub async fn reprovision_finish(
        &mut self,
        member: MemberId,
        told_fingerprint: &str,
        progress: &mut dyn FnMut(&super::RotationProgress),
    ) -> Result<(DeviceId, super::RotationReport)> {
        self.sync_roster(&mut super::SyncReport::default()).await?;
        let key = self.escrowed_key(member).await?;
        let (index, invite, device, keys) = self
            .find_link_request(&reprovision_role(member), told_fingerprint)
            .await?;
        let info = self.relay.recovery(key.id()).await?;
        if info.member != member || info.firm != self.id.firm {
            return Err(ClientError::Integrity(
                "the relay answered with another member's backup".into(),
            ));
        }
        let (master, _) = open_identity(&info.identity, &key, info.firm, member)?;
        self.check_master(member, &master)?;
        let cert = DeviceCertificate::issue(self.id.firm, member, device, keys, &master);
        self.append(EventKind::DeviceAdded(cert)).await?;
        self.local.invites.remove(index);
        self.queue_reprovision(device, member, &key.to_text());
        self.queue_full_directory(device);
        self.commit()?;
        self.close_invite(invite.id()).await;
        let others: Vec<DeviceId> = self
            .roster()?
            .active_devices(&member)
            .map(|(d, _)| *d)
            .filter(|d| *d != device)
            .collect();
        let mut report = super::RotationReport::default();
        for d in others {
            let r = self.revoke_device(d, progress).await?;
            report.revoked_devices.extend(r.revoked_devices);
            report.member_keys += r.member_keys;
            report.files += r.files;
        }
        Ok((device, report))
    }

    /// On a reprovisioned device: restores the member's backup with the recovery key an
    /// admin sent, after checking it opens the member's own signed backup key.
    pub(super) async fn finish_reprovision(&mut self) -> Result<()> {
        let Some(text) = self.local.pending_restore.clone().map(Zeroizing::new) else {
            return Ok(());
        };
        let key = RecoveryKey::parse(&text)
            .map_err(|e| ClientError::Integrity(format!("the admin's recovery key: {e}")))?;
        if !self.fetch_backup_key().await? {
            return Err(ClientError::NotFound(
                "this member has no key backup".into(),
            ));
        }
        let relay_key = self
            .local
            .backup
            .as_ref()
            .map(BackupState::info)
            .transpose()?;
        if relay_key.map(|k| k.key) != Some(*key.backup_key().as_bytes()) {
            return Err(ClientError::Integrity(
                "the recovery key the admin sent does not open this member's backup".into(),
            ));
        }
        self.restore(&key).await?;
        if let Some(mut t) = self.local.pending_restore.take() {
            t.zeroize();
        }
        self.commit()
    }

    /// Seals and uploads the items the backup lacks, in batches; commits after each.
    async fn upload_items(&mut self) -> Result<()> {
        let Some(b) = self.local.backup.clone() else {
            return Ok(());
        };
        let info = b.info()?;
        let backup_key = WrapPublicKey::from(info.key);
        let mut todo: Vec<(ItemKind, Vec<u8>)> = Vec::new();
        if self.master.is_some() && !b.done.contains(&done_key(ItemKind::Identity, &[])) {
            todo.push((ItemKind::Identity, Vec::new()));
        }
        let prefix = format!("{}:", self.id.member);
        for k in self.local.member_keys.keys() {
            if let Some(v) = k.strip_prefix(&prefix).and_then(|v| v.parse::<u32>().ok()) {
                let id = v.to_be_bytes().to_vec();
                if !b.done.contains(&done_key(ItemKind::MemberKey, &id)) {
                    todo.push((ItemKind::MemberKey, id));
                }
            }
        }
        for sid in self.timeline.session_ids() {
            if !b
                .done
                .contains(&done_key(ItemKind::RoomKey, sid.as_bytes()))
            {
                todo.push((ItemKind::RoomKey, sid.as_bytes().to_vec()));
            }
        }
        for chunk in todo.chunks(ITEMS_PER_REQUEST) {
            let mut sealed = Vec::with_capacity(chunk.len());
            for (kind, id) in chunk {
                let Some(plain) = self.backup_plaintext(*kind, id)? else {
                    continue;
                };
                let ctx = ItemContext {
                    firm: self.id.firm,
                    member: self.id.member,
                    kind: *kind,
                    id,
                };
                sealed.push((
                    *kind as u8,
                    id.clone(),
                    seal_item(&plain, &backup_key, &ctx, &mut OsRng),
                ));
            }
            self.relay
                .put_backup_items(&self.account, info.key, &sealed)
                .await?;
            if let Some(b) = self.local.backup.as_mut() {
                for (kind, id) in chunk {
                    b.done.insert(done_key(*kind, id));
                }
            }
            self.commit()?;
        }
        Ok(())
    }

    fn backup_plaintext(&self, kind: ItemKind, id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(match kind {
            ItemKind::Identity => {
                let item = IdentityItem {
                    master: hex::encode(*self.master()?.to_bytes()),
                    name: self.id.name.clone(),
                };
                Some(Zeroizing::new(
                    serde_json::to_vec(&item).unwrap_or_default(),
                ))
            }
            ItemKind::MemberKey => {
                let v = <[u8; 4]>::try_from(id).map(u32::from_be_bytes).ok();
                v.and_then(|v| self.member_key_version(self.id.member, v))
                    .map(|k| Zeroizing::new(k.expose().to_vec()))
            }
            ItemKind::RoomKey => std::str::from_utf8(id)
                .ok()
                .and_then(|sid| self.timeline.export_session(sid))
                .map(|k| Zeroizing::new(serde_json::to_vec(&k).unwrap_or_default())),
        })
    }

    /// Recovers a member on a fresh profile in `dir` from their recovery key: finds the
    /// backup on the relay, certifies a new device with the master key it holds, revokes
    /// the member's other devices (unless `keep_devices`), restores every key, then syncs.
    /// A wrong key or a relay that does not answer truthfully changes nothing, here or
    /// there.
    pub async fn recover(
        dir: &Path,
        unlock: super::Unlock,
        relay: &str,
        recovery_key: &str,
        keep_devices: bool,
    ) -> Result<(Self, RecoveryReport)> {
        let key = RecoveryKey::parse(recovery_key)
            .map_err(|e| declined("recovery_key", format!("recovery key: {e}")))?;
        let info = match super::probe(relay)?.recovery(key.id()).await {
            Err(RelayError::Refused { status: 404, .. }) => {
                return Err(ClientError::NotFound(
                    "this relay holds no key backup for that recovery key (check it, and the relay address)".into(),
                ))
            }
            other => other?,
        };
        if info.key.key != *key.backup_key().as_bytes() || info.key.recovery_id != key.id() {
            return Err(ClientError::Integrity(
                "the relay answered with another member's backup".into(),
            ));
        }
        let (master, name) = open_identity(&info.identity, &key, info.firm, info.member)?;
        // The roster, checked event by event: the member must be in it, active, with the
        // master key the backup holds, and must have signed this backup key.
        let events = info
            .roster
            .iter()
            .map(|b| {
                RosterEvent::from_bytes(b)
                    .map_err(|e| ClientError::Integrity(format!("roster event: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let roster = roster_of(&events)?;
        let m = roster
            .member(&info.member)
            .filter(|m| m.active.until.is_none())
            .ok_or_else(|| ClientError::NotAllowed("this member has left the firm".into()))?;
        if m.master_key != master.verifying_key()
            || !verify_backup_key(
                &m.master_key,
                info.firm,
                info.member,
                &key.backup_key(),
                &key.id(),
                &info.key.signature,
            )
        {
            return Err(ClientError::Integrity(
                "the backup does not match the member's master key in the roster".into(),
            ));
        }
        let account = DeviceAccount::generate(info.firm, &mut OsRng)
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let cert = DeviceCertificate::issue(
            info.firm,
            info.member,
            account.device(),
            account.keys(),
            &master,
        );
        let event = EventBody {
            firm: info.firm,
            seq: roster.len(),
            prev: roster.head(),
            timestamp_ms: now_ms().max(events.last().map_or(0, |e| e.body.timestamp_ms)),
            signer: info.member,
            kind: EventKind::DeviceAdded(cert),
        }
        .sign(&master);
        // Keys are safe on disk before the request leaves.
        let store = super::open_store(dir, unlock, true)?;
        let id = Identity::new(
            relay,
            info.firm,
            info.member,
            account.device(),
            &name,
            Some(&master),
        );
        let mut local = LocalState::default();
        local.member_names.insert(info.member, name.clone());
        local.backup = Some(BackupState::from_info(&info.key, true));
        let mut p = Self::assemble(dir, store, id, account, local)?;
        p.accept_roster(&events)?;
        p.commit()?;
        p.relay
            .recovery_device(&p.account, key.id(), &event.to_bytes())
            .await?;
        p.accept_roster(std::slice::from_ref(&event))?;
        p.commit()?;
        let (member_keys, room_keys) = p.restore(&key).await?;
        let mut revoked = Vec::new();
        if !keep_devices {
            let others: Vec<DeviceId> = p
                .roster()?
                .active_devices(&info.member)
                .map(|(d, _)| *d)
                .filter(|d| *d != p.id.device)
                .collect();
            for d in others {
                p.append(EventKind::DeviceRevoked { device: d }).await?;
                revoked.push(d);
            }
        }
        p.sync().await?;
        let report = RecoveryReport {
            member: info.member,
            name: name.clone(),
            device: p.id.device,
            revoked_devices: revoked,
            member_keys,
            room_keys,
        };
        Ok((p, report))
    }

    /// Opens every item of the backup into this profile; returns the member keys and room
    /// sessions restored.
    async fn restore(&mut self, key: &RecoveryKey) -> Result<(u64, u64)> {
        let (mut member_keys, mut room_keys) = (0, 0);
        let mut after = 0;
        loop {
            let (items, next) = self.relay.backup_items(&self.account, after).await?;
            for (kind, id, sealed) in items {
                let Some(kind) = ItemKind::from_u8(kind) else {
                    continue;
                };
                let ctx = ItemContext {
                    firm: self.id.firm,
                    member: self.id.member,
                    kind,
                    id: &id,
                };
                let plain = open_item(&sealed, key, &ctx)
                    .map_err(|e| ClientError::Integrity(format!("a backup item: {e}")))?;
                match kind {
                    ItemKind::Identity if self.master.is_none() => {
                        let (master, _) = identity_of(&plain)?;
                        self.check_master(self.id.member, &master)?;
                        self.id.master = hex::encode(*master.to_bytes());
                        self.master = Some(master);
                    }
                    ItemKind::Identity => {}
                    ItemKind::MemberKey => {
                        let version = <[u8; 4]>::try_from(&id[..])
                            .map(u32::from_be_bytes)
                            .map_err(|_| ClientError::Integrity("member key id".into()))?;
                        let bytes = <[u8; 32]>::try_from(&plain[..])
                            .map_err(|_| ClientError::Integrity("member key".into()))?;
                        let k = MemberKey::from_bytes(bytes);
                        self.local_member_key_insert(self.id.member, version, &k);
                        member_keys += 1;
                    }
                    ItemKind::RoomKey => {
                        let k: ForwardedKey = serde_json::from_slice(&plain)
                            .map_err(|_| ClientError::Integrity("room key item".into()))?;
                        if k.session_id.as_bytes() != &id[..] {
                            return Err(ClientError::Integrity(
                                "a room key item under another session's id".into(),
                            ));
                        }
                        // An internal room or direct chat: known again, its history fetched
                        // at the next sync.
                        let is_file = k
                            .room
                            .parse::<ledgerline_protocol::ids::FileId>()
                            .is_ok_and(|f| {
                                self.roster.as_ref().is_some_and(|r| r.files().contains(&f))
                            });
                        if !is_file {
                            self.local.rooms.entry(k.room.clone()).or_default();
                        }
                        let decrypted = self
                            .timeline
                            .add_forwarded_key(&k)
                            .map_err(|e| ClientError::Integrity(format!("room key item: {e}")))?;
                        // Messages fetched before the key came now read.
                        for d in decrypted.into_iter().flatten() {
                            self.apply_room_profile(d.room, d.sender, &d.event);
                            self.page
                                .push(super::stored(&d.event, d.room, d.seq, d.sender, 0));
                        }
                        room_keys += 1;
                    }
                }
                if let Some(b) = self.local.backup.as_mut() {
                    b.done.insert(done_key(kind, &id));
                }
            }
            self.commit()?;
            match next {
                Some(n) => after = n,
                None => break,
            }
        }
        Ok((member_keys, room_keys))
    }
}

/// The master key and name an identity item holds.
fn identity_of(plain: &[u8]) -> Result<(MasterSigningKey, String)> {
    let identity: IdentityItem = serde_json::from_slice(plain)
        .map_err(|_| ClientError::Integrity("the backup's identity item".into()))?;
    let seed =
        key32(&identity.master).ok_or_else(|| ClientError::Integrity("master key".into()))?;
    Ok((MasterSigningKey::from_bytes(&seed), identity.name.clone()))
}

/// Opens a backup's sealed identity item with the recovery key.
fn open_identity(
    sealed: &[u8],
    key: &RecoveryKey,
    firm: ledgerline_protocol::ids::FirmId,
    member: MemberId,
) -> Result<(MasterSigningKey, String)> {
    let ctx = ItemContext {
        firm,
        member,
        kind: ItemKind::Identity,
        id: &[],
    };
    let plain = open_item(sealed, key, &ctx)
        .map_err(|e| ClientError::Integrity(format!("the backup's identity item: {e}")))?;
    identity_of(&plain)
}

/// The invitation role of a reprovisioning link for `member`.
fn reprovision_role(member: MemberId) -> String {
    format!("reprovision:{member}")
}

fn roster_of(events: &[RosterEvent]) -> Result<Roster> {
    let (first, rest) = events
        .split_first()
        .ok_or_else(|| ClientError::Integrity("the relay sent an empty roster".into()))?;
    let mut r =
        Roster::from_genesis(first).map_err(|e| ClientError::Integrity(format!("roster: {e}")))?;
    for e in rest {
        r.apply(e)
            .map_err(|e| ClientError::Integrity(format!("roster: {e}")))?;
    }
    Ok(r)
}
