//! This device's view of the firm's audit log (`protocol-spec/audit-log.md`, "Client
//! duties"): the log's origin and key, pinned on first contact; the latest checkpoint it
//! accepted; and an archive of every checkpoint it accepted (the local store's
//! `checkpoints` table). A checkpoint is accepted only when the pinned key signed it and
//! it extends the last one accepted (RFC 6962 consistency), so a relay that rolls the log
//! back, forks it or swaps its key is caught here and reported as an integrity error —
//! never ignored. A document's release share is used only after its own log entry is
//! proven to be in such a checkpoint.

use super::{now_ms, ClientError, Profile, Result, FILE_PROFILE_RECORD};

/// What accepting a restored relay found and did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// Entries in the access log this device had seen.
    pub log_was: u64,
    /// Entries in the restored relay's log.
    pub log_now: u64,
    /// Of the entries this device had seen, how many the restored log provably still
    /// holds (the largest checkpoint it had accepted that the new log extends).
    pub log_kept: u64,
    /// Roster events the relay had lost, appended again.
    pub roster_events: u64,
    /// What this device gave back besides.
    #[serde(flatten)]
    pub given_back: Reconciled,
    /// The sync that followed (its `resent`: this device's messages posted again; its
    /// `work_sent`: work items sent again).
    pub sync: super::SyncReport,
}

/// What a device gave back to a relay restored from a backup (besides its lost messages,
/// which each room's sync posts again) — after `--after-restore`, or on its own when a
/// sync finds a room's numbering jumped (protocol-spec/operations.md).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciled {
    /// Work items (notes, tasks, cards, events...) held here, compared with the relay's
    /// versions; those the relay lost or holds older are sent again by the sync (its
    /// `work_sent`).
    pub items_checked: usize,
    /// Customer-file names the relay had lost, written again.
    pub file_names_resent: usize,
    /// (Admins) Rooms, key epochs and members' wrapped file keys the relay had lost, given
    /// back from this device's keys.
    pub file_keys_resent: usize,
    /// (Admins) Erasures the relay had lost, done again.
    pub erasures_redone: usize,
    /// Internal rooms and direct chats the relay had lost, created again.
    pub rooms_recreated: usize,
    /// Member keys wrapped again for their members' and the admins' devices.
    pub member_key_wraps: usize,
    /// (Admins) Team key versions and wraps given back.
    pub team_keys_resent: usize,
    /// Documents whose upload the relay lost with its data: they can no longer be
    /// downloaded and are taken off this device's lists; someone who has the file must
    /// upload it again. (Names are shown here only, on this device.)
    pub documents_lost: Vec<LostDocument>,
}

/// A document the restored relay no longer holds.
#[derive(Debug, Clone, Serialize)]
pub struct LostDocument {
    /// Its customer file.
    pub file: FileId,
    /// The document.
    pub document: DocumentId,
    /// Its name, as uploaded.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// While accepting a restored relay: what its records still hold.
#[derive(Debug, Default)]
pub(super) struct RestoreSeen {
    /// Records listed, by file.
    pub records: BTreeSet<(FileId, RecordId)>,
    /// Documents whose manifest was listed.
    pub documents: BTreeSet<DocumentId>,
}

/// What a rollback or fork means to the person reading it.
const LOST_HISTORY: &str = ". The relay no longer holds history it acknowledged (a relay \
    restored from an older backup looks like this; protocol-spec/operations.md): this \
    device keeps what it has. If the firm's administrator restored the relay, run \
    `ledgerline sync --after-restore` to accept its state and send again what this device \
    wrote";
use crate::transport::{RelayError, Release};
use ledgerline_audit::{names_ad, Header, Line, NameMap, SealedNames, FORMAT};
use ledgerline_protocol::audit::{AuditLeaf, LogEntry};
use ledgerline_protocol::checkpoint::{cosign_as_device, open_checkpoint, Checkpoint};
use ledgerline_protocol::ids::{DeviceId, MemberId};
use ledgerline_protocol::ids::{DocumentId, FileId, RecordId};
use ledgerline_protocol::keys::WrapPublicKey;
use ledgerline_protocol::keys::{DeviceSigner, VerifyingKey};
use ledgerline_protocol::merkle::leaf_hash;
use ledgerline_protocol::merkle::{empty_root, verify_consistency, verify_inclusion};
use ledgerline_protocol::roster::{EventKind, Role, Roster};
use ledgerline_protocol::wrap::{open_sealed, seal_to_device};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Entries fetched per request while exporting.
const EXPORT_PAGE: u32 = 500;

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// Entries in the log the bundle covers.
    pub size: u64,
    /// Entries written whole (inside the time range).
    pub entries: u64,
    /// Checkpoints included.
    pub checkpoints: usize,
    /// Roster events included.
    pub roster_events: usize,
    /// Auditor devices the name map was sealed to (0: no names).
    pub names_sealed_for: usize,
}

/// The pinned log and the last checkpoint accepted.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(super) struct LogView {
    origin: String,
    /// Hex of the log's Ed25519 key.
    log_key: String,
    size: u64,
    /// Hex of the root at `size`.
    root: String,
}

fn pinned_key(view: &LogView) -> Result<VerifyingKey> {
    hex::decode(&view.log_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| integrity("the pinned log key is unreadable"))
}

fn integrity(what: impl Into<String>) -> ClientError {
    ClientError::Integrity(what.into())
}

impl Profile {
    /// Fetches the relay's current checkpoint and accepts it; pins the log on first
    /// contact. Returns the log's size.
    pub(super) async fn check_log(&mut self) -> Result<u64> {
        let head = self.relay.audit_head(&self.account).await?;
        let key = hex::encode(head.log_key);
        match &self.local.log {
            Some(view) if view.origin != head.origin || view.log_key != key => {
                return Err(integrity(format!(
                    "the relay presents the audit log as {} with key {key}, but this device \
                     pinned {} with key {}: a relay with a new log key could rewrite history",
                    head.origin, view.origin, view.log_key
                )))
            }
            Some(_) => {}
            None => {
                self.local.log = Some(LogView {
                    origin: head.origin,
                    log_key: key.clone(),
                    size: 0,
                    root: hex::encode(empty_root()),
                });
            }
        }
        // The key the firm's admins recorded in the roster outranks this device's first
        // contact: a relay showing this device another key than the others is caught.
        let recorded = self.roster.as_ref().and_then(Roster::log_key);
        if let Some(k) = recorded {
            if hex::encode(k.as_bytes()) != key {
                return Err(integrity(format!(
                    "the relay presents the audit log with key {key}, but the firm's admins \
                     recorded {} in the roster: this relay's log cannot be trusted",
                    hex::encode(k.as_bytes())
                )));
            }
        }
        let size = self.accept_checkpoint(&head.checkpoint).await?.size();
        self.witness(&head.checkpoint, size).await?;
        if recorded.is_none() {
            self.record_log_key(head.log_key).await?;
        }
        Ok(size)
    }

    /// On an admin's device that holds its master key: records the relay's log key (just
    /// verified against this device's pin and a checkpoint) in the roster, once per firm.
    async fn record_log_key(&mut self, key: [u8; 32]) -> Result<()> {
        let admin = self.roster.as_ref().is_some_and(|r| {
            r.member(&self.id.member)
                .is_some_and(|m| m.role == Role::Admin && m.active.until.is_none())
        });
        if !admin || self.master.is_none() {
            return Ok(());
        }
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| integrity("the relay's log key is not an Ed25519 key"))?;
        match self.append(EventKind::LogKeySet { key }).await {
            // Another admin recorded it first (or appended something else): the next sync
            // reads it.
            Err(ClientError::Relay(RelayError::Refused { status: 409, .. })) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// On the owner's devices: cosigns a checkpoint just accepted (signature and
    /// consistency verified) as the firm's witness and hands it to the relay, once per size.
    async fn witness(&mut self, note: &str, size: u64) -> Result<()> {
        let owner = self
            .roster
            .as_ref()
            .is_some_and(|r| r.owner() == self.id.member);
        if !owner || size == 0 || size <= self.local.witnessed {
            return Ok(());
        }
        let now_s = now_ms() / 1000;
        let cosigned = cosign_as_device(
            note.as_bytes(),
            &self.id.firm,
            &self.id.device,
            &self.account,
            now_s,
        )
        .map_err(|e| integrity(format!("cannot cosign the checkpoint: {e}")))?;
        let cosigned = String::from_utf8(cosigned)
            .map_err(|_| integrity("a cosigned checkpoint is not text"))?;
        self.relay
            .post_cosignature(&self.account, &cosigned)
            .await?;
        self.store.put_checkpoint(size, &cosigned, now_ms(), true)?;
        self.local.witnessed = size;
        Ok(())
    }

    /// After the relay was restored from a backup: accepts its (shorter or different) log
    /// under the pinned key and records what was lost, fetches again everything counted
    /// in log positions, appends again the roster events it lost (this device holds them,
    /// signed), then syncs — where each room posts this device's lost messages again.
    pub async fn after_restore(&mut self) -> Result<RestoreReport> {
        let head = self.relay.audit_head(&self.account).await?;
        let view =
            self.local.log.clone().ok_or_else(|| {
                integrity("the audit log is not pinned yet: run `ledgerline sync`")
            })?;
        if view.origin != head.origin || view.log_key != hex::encode(head.log_key) {
            return Err(integrity(format!(
                "the relay presents the audit log as {} with another key: that is not a restore \
                 of this firm's relay, and is not accepted",
                head.origin
            )));
        }
        let key = pinned_key(&view)?;
        let cp = open_checkpoint(head.checkpoint.as_bytes(), &view.origin, &key)
            .map_err(|e| integrity(format!("audit checkpoint refused: {e}")))?;
        // The roster: the relay's must be a prefix of this device's (or extend it).
        let theirs = self.relay.roster(&self.account, 0).await?;
        for (i, (a, b)) in theirs.iter().zip(self.events.iter()).enumerate() {
            if *a != b.to_bytes() {
                return Err(integrity(format!(
                    "the relay's roster differs from this device's at event {i}: not a restore \
                     of what this device saw"
                )));
            }
        }
        let mut roster_events = 0;
        let mine: Vec<Vec<u8>> = self
            .events
            .iter()
            .skip(theirs.len())
            .map(|e| e.to_bytes())
            .collect();
        for e in mine {
            self.relay.append_roster(&self.account, &e).await?;
            roster_events += 1;
        }
        // How much of the log this device saw the relay still holds: the largest
        // checkpoint it accepted before that the relay's log provably extends.
        let mut kept = 0;
        let mut archived = self.store.checkpoints()?;
        archived.retain(|(size, _)| *size <= cp.size() && *size > 0);
        for (size, note) in archived.iter().rev().take(32) {
            let Ok(old) = open_checkpoint(note.as_bytes(), &view.origin, &key) else {
                continue;
            };
            let proof = self
                .relay
                .audit_consistency(&self.account, *size, cp.size())
                .await?;
            if verify_consistency(*size, cp.size(), old.root(), cp.root(), &proof).is_ok() {
                kept = *size;
                break;
            }
        }
        let view_size = view.size;
        self.store
            .put_checkpoint(cp.size(), &head.checkpoint, now_ms(), false)?;
        self.local.log = Some(LogView {
            size: cp.size(),
            root: hex::encode(cp.root()),
            ..view
        });
        self.commit()?;
        let mut sync = super::SyncReport::default();
        let given_back = self.reconcile_restored(&mut sync).await?;
        Ok(RestoreReport {
            log_was: view_size,
            log_now: cp.size(),
            log_kept: kept,
            roster_events,
            given_back,
            sync,
        })
    }

    /// Gives a relay restored from a backup what this device holds that it lost, besides
    /// messages (each room's sync posts those again): everything counted in log positions
    /// is fetched again; an admin's device gives back erasures, files' rooms and keys;
    /// internal rooms are created again; every work item is compared with the relay's
    /// version and sent again where the relay lost it; lost file names are written again,
    /// lost documents reported. Runs a sync (into `report`). Harmless to repeat.
    pub(super) async fn reconcile_restored(
        &mut self,
        report: &mut super::SyncReport,
    ) -> Result<Reconciled> {
        let mut fix = Reconciled::default();
        // Everything counted in log positions is fetched again from the start.
        for f in self.local.files.values_mut() {
            f.records = 0;
            f.keys_cursor = 0;
            f.links_cursor = 0;
            f.team_cursors.clear();
        }
        self.local.member_keys_cursor = 0;
        self.local.team_keys_cursor = 0;
        // An admin's device erases again what was erased after the backup (a restore must
        // not bring back ciphertext the firm had deleted) and gives back the files' rooms
        // and keys the relay lost (files created, re-keyed or granted after the backup).
        let admin = self.require_admin().is_ok();
        if admin {
            let erased: Vec<FileId> = self.local.erased.iter().copied().collect();
            for file in erased {
                match self.relay.erase_file(&self.account, file).await {
                    Ok(()) => fix.erasures_redone += 1,
                    Err(RelayError::Refused {
                        status: 404 | 410, ..
                    }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let all: Vec<FileId> = self
                .roster()?
                .files()
                .into_iter()
                .filter(|f| !self.local.erased.contains(f))
                .collect();
            fix.team_keys_resent = self.restore_team_keys().await?;
            for file in all {
                fix.file_keys_resent += self.restore_file_keys(file).await?;
            }
        }
        // Member keys: this member's (every active member's, on an admin's device) newest
        // key wrapped again for the member's devices and the admins' (escrow) — a key
        // rotated, or a member who joined, after the backup, else unreadable to them.
        let holders: Vec<MemberId> = {
            let r = self.roster()?;
            r.members()
                .filter(|(id, m)| m.active.until.is_none() && (admin || **id == self.id.member))
                .map(|(id, _)| *id)
                .collect()
        };
        let admins = self.admin_devices()?;
        for member in holders {
            let Some((version, key)) = self.member_key(member) else {
                continue;
            };
            let mut devices: BTreeSet<DeviceId> = self
                .roster()?
                .active_devices(&member)
                .map(|(d, _)| *d)
                .collect();
            devices.extend(admins.iter().copied());
            let devices: Vec<DeviceId> = devices.into_iter().collect();
            self.share_member_key(member, version, &key, &devices)
                .await?;
            fix.member_key_wraps += devices.len();
        }
        // Internal rooms and direct chats, with the members this device knows.
        let rooms: Vec<(String, Vec<MemberId>)> = self
            .local
            .rooms
            .iter()
            .map(|(r, s)| (r.clone(), s.members.clone()))
            .collect();
        for (hex_room, members) in rooms {
            let mut room = [0u8; 16];
            if members.is_empty() || hex::decode_to_slice(&hex_room, &mut room).is_err() {
                continue;
            }
            match self
                .relay
                .create_room(&self.account, room, None, &members)
                .await
            {
                Ok(()) => fix.rooms_recreated += 1,
                // There still, or no longer ours to create: the relay decides.
                Err(RelayError::Refused { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Every work item held here is compared anew with the relay's version: what the
        // relay lost, or holds older, leaves again with the sync (`flush_work`).
        let files: Vec<FileId> = self
            .roster()?
            .files_of(&self.id.member, now_ms())
            .into_iter()
            .filter(|f| !self.local.erased.contains(f))
            .collect();
        for file in &files {
            fix.items_checked += self.store.reopen_works(file.as_bytes())?;
        }
        // The member's key backup goes again whole with the sync below.
        self.restore_backup().await?;
        self.commit()?;
        self.restore_seen = Some(RestoreSeen::default());
        let synced = self.sync_inner(report).await;
        let seen = self.restore_seen.take().unwrap_or_default();
        synced?;
        for file in &files {
            // The file's name, when the relay lost it and this device knows it.
            let name = self.local.files.get(file).and_then(|f| f.name.clone());
            if let Some(name) = name {
                if !seen.records.contains(&(*file, FILE_PROFILE_RECORD)) {
                    match self.write_file_profile(*file, &name, 1).await {
                        Ok(()) => fix.file_names_resent += 1,
                        Err(e) => report.warnings.push(format!("file {file}: {e}")),
                    }
                }
            }
            // Documents the relay no longer lists: named in the report, then forgotten.
            let Some(docs) = self.local.documents.get_mut(file) else {
                continue;
            };
            let mut refs = Vec::new();
            docs.retain(|id, m| {
                let kept = seen.documents.contains(id);
                if !kept {
                    refs.push(format!("{file}:{id}"));
                    fix.documents_lost.push(LostDocument {
                        file: *file,
                        document: *id,
                        name: m.name.clone(),
                        size: m.size,
                    });
                }
                kept
            });
            self.store.forget_expired(file.as_bytes(), None, &refs)?;
        }
        self.local.restore_noticed = false;
        self.commit()?;
        Ok(fix)
    }

    /// Accepts a checkpoint note: signed by the pinned key, no smaller than the last one
    /// accepted and consistent with it. Archives it and makes it the last one.
    pub(super) async fn accept_checkpoint(&mut self, note: &str) -> Result<Checkpoint> {
        let view = self
            .local
            .log
            .clone()
            .ok_or_else(|| integrity("the audit log is not pinned yet"))?;
        let key = pinned_key(&view)?;
        let cp = open_checkpoint(note.as_bytes(), &view.origin, &key)
            .map_err(|e| integrity(format!("audit checkpoint refused: {e}")))?;
        let last_root: [u8; 32] = hex::decode(&view.root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| integrity("the last checkpoint's root is unreadable"))?;
        if cp.size() < view.size {
            return Err(integrity(format!(
                "rollback: the relay shows the audit log with {} entries, this device saw {} \
                 before{LOST_HISTORY}",
                cp.size(),
                view.size
            )));
        }
        if cp.size() == view.size {
            if *cp.root() != last_root {
                return Err(integrity(format!(
                    "fork: the relay shows two different audit logs of {} entries{LOST_HISTORY}",
                    cp.size()
                )));
            }
            // Already archived, except the first (possibly empty) log a device pins.
            self.store
                .put_checkpoint(cp.size(), note, now_ms(), false)?;
            return Ok(cp);
        }
        let proof = self
            .relay
            .audit_consistency(&self.account, view.size, cp.size())
            .await?;
        verify_consistency(view.size, cp.size(), &last_root, cp.root(), &proof).map_err(|e| {
            integrity(format!(
                "fork: the audit log of {} entries does not extend the one of {} this device \
                 saw ({e}){LOST_HISTORY}",
                cp.size(),
                view.size
            ))
        })?;
        self.store
            .put_checkpoint(cp.size(), note, now_ms(), false)?;
        self.local.log = Some(LogView {
            size: cp.size(),
            root: hex::encode(cp.root()),
            ..view
        });
        Ok(cp)
    }

    /// Checks a document release before its share is used: the entry is this device's own
    /// signed request for this document, and a checkpoint consistent with everything this
    /// device saw includes it.
    pub(super) async fn check_release(
        &mut self,
        file: FileId,
        document: DocumentId,
        release: &Release,
    ) -> Result<()> {
        if self.local.log.is_none() {
            self.check_log().await?;
        }
        let leaf = AuditLeaf::from_bytes(&release.entry)
            .map_err(|e| integrity(format!("the audit entry of this download: {e}")))?;
        let head = &leaf.request.head;
        let own = head.firm == self.id.firm
            && leaf.firm == self.id.firm
            && head.device == self.id.device
            && head.method == "POST"
            && head.path == format!("/v1/files/{file}/documents/{document}/release")
            && leaf
                .request
                .verify_signature(&self.account.public_key())
                .is_ok();
        if !own {
            return Err(integrity(
                "the audit entry of this download is not this device's request for it",
            ));
        }
        let cp = self.accept_checkpoint(&release.checkpoint).await?;
        verify_inclusion(
            &leaf.leaf_hash(),
            release.audit_index,
            cp.size(),
            &release.inclusion,
            cp.root(),
        )
        .map_err(|e| {
            integrity(format!(
                "this download's entry is not in the audit log the relay signed ({e})"
            ))
        })?;
        // The checkpoint just accepted is the one the next sync must extend.
        self.commit()
    }

    /// Writes an audit bundle (`protocol-spec/audit-bundle.md`) to `out`: the log as the
    /// relay shows it now (after this device accepted its checkpoint), entries received in
    /// `[from_ms, to_ms)` whole and the others as leaf hashes, the roster chain and every
    /// checkpoint this device accepted. Admins and auditors only (the relay enforces it).
    /// Written to `OUT.partial` and renamed, so a bundle on disk is always complete.
    ///
    /// With `for_auditor` (a member's name or id), the bundle also carries the names of
    /// members, customer files, documents and rooms this device knows, sealed to each of
    /// that member's active devices and bound to this bundle's header.
    pub async fn export_audit(
        &mut self,
        out: &Path,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        for_auditor: Option<&str>,
    ) -> Result<ExportSummary> {
        // The roster as it stands now: entries signed by devices added since this
        // device's last sync must find their certificates in the bundle.
        self.sync_roster(&mut super::SyncReport::default()).await?;
        let auditor = for_auditor.map(|a| self.resolve_member(a)).transpose()?;
        let size = self.check_log().await?;
        self.commit()?;
        let partial = out.with_extension(match out.extension() {
            Some(e) => format!("{}.partial", e.to_string_lossy()),
            None => "partial".to_owned(),
        });
        match self
            .write_bundle(&partial, size, from_ms, to_ms, auditor)
            .await
        {
            Ok(summary) => {
                std::fs::rename(&partial, out).map_err(|e| super::unwritable(out, e))?;
                Ok(summary)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    async fn write_bundle(
        &mut self,
        partial: &Path,
        size: u64,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        auditor: Option<MemberId>,
    ) -> Result<ExportSummary> {
        use std::io::Write;
        let view = self
            .local
            .log
            .clone()
            .ok_or_else(|| integrity("the audit log is not pinned"))?;
        // Who touched what when is the firm's business: owner-only, like the profile.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(partial)
            .map_err(|e| super::unwritable(partial, e))?;
        let mut w = std::io::BufWriter::new(file);
        let io = |e: std::io::Error| super::unwritable(partial, e);
        let put = |w: &mut std::io::BufWriter<std::fs::File>, line: Line| {
            writeln!(w, "{}", line.to_json()).map_err(io)
        };
        let header = Line::Header(Header {
            bundle: FORMAT.into(),
            firm: self.id.firm.to_hex(),
            origin: view.origin.clone(),
            log_key: view.log_key.clone(),
            size,
            from_ms,
            to_ms,
            exported_ms: now_ms(),
        })
        .to_json();
        writeln!(w, "{header}").map_err(io)?;
        let mut sealed_for = 0;
        if let Some(auditor) = auditor {
            let names = serde_json::to_vec(&self.name_map())
                .map_err(|e| ClientError::Invalid(format!("name map: {e}")))?;
            let roster = self.roster()?;
            let devices: Vec<(DeviceId, WrapPublicKey)> = roster
                .active_devices(&auditor)
                .map(|(d, s)| (*d, s.keys.wrap))
                .collect();
            if devices.is_empty() {
                return Err(ClientError::NotFound(
                    "the auditor has no active device to seal the names to".into(),
                ));
            }
            for (device, wrap) in devices {
                let sealed = seal_to_device(&names, &wrap, &names_ad(&header), &mut OsRng);
                put(
                    &mut w,
                    Line::Names(SealedNames {
                        device: device.to_hex(),
                        sealed: hex::encode(sealed),
                    }),
                )?;
                sealed_for += 1;
            }
        }
        for e in &self.events {
            put(&mut w, Line::Roster(hex::encode(e.to_bytes())))?;
        }
        // This device's archive, with the witness's cosigned versions where the relay has
        // them (each checked under the pinned key; the verifier checks the rest).
        let mut notes: BTreeMap<u64, String> = self
            .store
            .checkpoints()?
            .into_iter()
            .filter(|(s, _)| *s <= size)
            .collect();
        let key = pinned_key(&view)?;
        let mut from = 0;
        loop {
            let page = self.relay.cosigned_checkpoints(&self.account, from).await?;
            let Some(last) = page.last() else { break };
            let last_size = open_checkpoint(last.as_bytes(), &view.origin, &key)
                .map(|c| c.size())
                .unwrap_or(u64::MAX);
            for note in &page {
                if let Ok(cp) = open_checkpoint(note.as_bytes(), &view.origin, &key) {
                    if cp.size() <= size {
                        notes.insert(cp.size(), note.clone());
                    }
                }
            }
            if last_size == u64::MAX || last_size >= size {
                break;
            }
            from = last_size + 1;
        }
        let checkpoints = notes.len();
        for note in notes.into_values() {
            put(&mut w, Line::Checkpoint(note))?;
        }
        let in_range = |t: u64| from_ms.is_none_or(|f| t >= f) && to_ms.is_none_or(|e| t < e);
        let (mut next, mut whole) = (0u64, 0u64);
        let mut hashes: Vec<String> = Vec::new();
        while next < size {
            let page = self
                .relay
                .audit_entries(&self.account, next, EXPORT_PAGE)
                .await?;
            if page.is_empty() {
                return Err(integrity(format!(
                    "the relay's log ended at {next} entries, its checkpoint says {size}"
                )));
            }
            for leaf in page
                .into_iter()
                .take(usize::try_from(size - next).unwrap_or(usize::MAX))
            {
                // An entry that does not decode goes whole: the verifier names it.
                let keep = LogEntry::from_bytes(&leaf).map_or(true, |l| in_range(l.time_ms()));
                if keep {
                    if !hashes.is_empty() {
                        put(&mut w, Line::Hashes(std::mem::take(&mut hashes)))?;
                    }
                    put(&mut w, Line::Entry(hex::encode(&leaf)))?;
                    whole += 1;
                } else {
                    hashes.push(hex::encode(leaf_hash(&leaf)));
                    if hashes.len() >= 1000 {
                        put(&mut w, Line::Hashes(std::mem::take(&mut hashes)))?;
                    }
                }
                next += 1;
            }
        }
        if !hashes.is_empty() {
            put(&mut w, Line::Hashes(hashes))?;
        }
        let file = w
            .into_inner()
            .map_err(|e| super::unwritable(partial, e.error()))?;
        file.sync_all().map_err(io)?;
        Ok(ExportSummary {
            size,
            entries: whole,
            checkpoints,
            roster_events: self.events.len(),
            names_sealed_for: sealed_for,
        })
    }

    /// Records that the user opened a conversation from this device's local store (the
    /// log hears of it at once, or at the next sync if the relay is out of reach): what
    /// is read offline is on the record too.
    pub async fn record_opened(&mut self, to: super::Conversation) -> Result<()> {
        self.local
            .opened
            .push((hex::encode(to.room_id()), now_ms()));
        self.commit()?;
        match self.flush_opened().await {
            Err(ClientError::Relay(crate::transport::RelayError::Unreachable(_))) => Ok(()),
            other => other,
        }
    }

    /// Reports queued openings, oldest first; each leaves the queue once the log has it.
    pub(super) async fn flush_opened(&mut self) -> Result<()> {
        while let Some((room_hex, at)) = self.local.opened.first().cloned() {
            let mut room = [0u8; 16];
            if hex::decode_to_slice(&room_hex, &mut room).is_ok() {
                match self.relay.post_opened(&self.account, room, at).await {
                    // The room is gone: nothing to report it against.
                    Err(crate::transport::RelayError::Refused { status: 404, .. }) => {}
                    other => other?,
                }
            }
            self.local.opened.remove(0);
            self.commit()?;
        }
        Ok(())
    }

    /// The names this device knows for the ids of an audit bundle.
    fn name_map(&self) -> NameMap {
        let mut m = NameMap::default();
        for (id, name) in &self.local.member_names {
            m.members.insert(id.to_hex(), name.clone());
        }
        for (id, f) in &self.local.files {
            if let Some(name) = &f.name {
                m.files.insert(id.to_hex(), name.clone());
            }
        }
        for docs in self.local.documents.values() {
            for (id, d) in docs {
                m.documents.insert(id.to_hex(), d.name.clone());
            }
        }
        for (id, r) in &self.local.rooms {
            if let Some(name) = &r.name {
                m.rooms.insert(id.clone(), name.clone());
            }
        }
        m
    }

    /// Opens a bundle's name map if it was sealed to this device (`None` otherwise).
    pub fn open_names(&self, header_line: &str, names: &[SealedNames]) -> Result<Option<NameMap>> {
        let me = self.id.device.to_hex();
        let Some(mine) = names.iter().find(|n| n.device == me) else {
            return Ok(None);
        };
        let sealed = hex::decode(&mine.sealed)
            .map_err(|_| ClientError::Invalid("the name map is not hex".into()))?;
        let plain = open_sealed(&sealed, self.account.wrap_secret(), &names_ad(header_line))
            .map_err(|e| integrity(format!("the name map does not open: {e}")))?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| ClientError::Invalid(format!("the name map is not readable: {e}")))
    }

    /// The audit-log checkpoints this device accepted `(size, note)`, smallest first.
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
        Ok(self.store.checkpoints()?)
    }

    /// The audit log this device pinned: `(origin, hex log key)` — what an owner reads out
    /// to an auditor, who compares it with the bundle's header and other devices' pins.
    pub fn log_pin(&self) -> Option<(String, String)> {
        self.local
            .log
            .as_ref()
            .map(|v| (v.origin.clone(), v.log_key.clone()))
    }

    /// Size of the audit log at the last checkpoint this device accepted.
    pub fn log_size(&self) -> Option<u64> {
        self.local.log.as_ref().map(|v| v.size)
    }
}
