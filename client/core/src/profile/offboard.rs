//! Offboarding (`protocol-spec/offboarding.md`): revoking a member or a device, and the
//! durable rotation job that follows.
//!
//! The roster event lands first: from then on the relay refuses the revoked devices. The
//! admin's client then replaces what they could open: every member key they held (their
//! own, or — for an admin — every member key held in escrow) gets a new version, and every
//! customer file those keys could open gets a new epoch wrapped for the remaining holders
//! only. The plan, with every new key, is committed to the local store before the first
//! request, so an interrupted job resumes with the same keys: a request that landed
//! before the crash is recognised (`epoch_exists` with our own link), never wrapped twice.

use super::{now_ms, ClientError, Profile, Result, SyncReport};
use crate::transport::RelayError;
use futures_util::stream::{self, StreamExt};
use ledgerline_protocol::ids::{DeviceId, FileId, MemberId, TeamId};
use ledgerline_protocol::keys::{EpochKey, MemberKey, TeamKey};
use ledgerline_protocol::roster::{EventBody, EventKind, Role, Roster, RosterEvent};
use ledgerline_protocol::wrap::{
    chain_epoch_key, unchain_epoch_key, unwrap_epoch_key, wrap_epoch_key, wrap_member_key,
    EpochChainContext, EpochKeyContext, Holder, MemberKeyContext,
};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Requests in flight while rotating.
const IN_FLIGHT: usize = 16;
/// Most to-device messages in one request (the relay's limit).
const TO_DEVICE_BATCH: usize = 1000;
/// Files prepared at once (their requests then go 16 at a time). Progress is committed
/// once, at the end: a crash re-sends, and what had landed is recognised by its link.
const CHUNK: usize = 128;
/// Rounds over the files left (a round retries what a concurrent change refused).
const ROUNDS: usize = 3;

/// The roster event that starts a job; appended by the job if a crash came first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(super) enum Trigger {
    MemberRemoved(MemberId),
    DeviceRevoked(DeviceId),
    FileAccessRemoved(FileId, MemberId),
    /// The `seq` of the cover's `CoverGranted` event.
    CoverEnded(u64),
    TeamMemberRemoved(TeamId, MemberId),
    FileTeamRemoved(FileId, TeamId),
    TeamDeleted(TeamId),
}

impl Trigger {
    pub(super) fn event(&self) -> EventKind {
        match self {
            Self::MemberRemoved(member) => EventKind::MemberRemoved { member: *member },
            Self::DeviceRevoked(device) => EventKind::DeviceRevoked { device: *device },
            Self::FileAccessRemoved(file, member) => EventKind::FileAccessRemoved {
                file: *file,
                member: *member,
            },
            Self::CoverEnded(cover) => EventKind::CoverEnded { cover: *cover },
            Self::TeamMemberRemoved(team, member) => EventKind::TeamMemberRemoved {
                team: *team,
                member: *member,
            },
            Self::FileTeamRemoved(file, team) => EventKind::FileTeamRemoved {
                file: *file,
                team: *team,
            },
            Self::TeamDeleted(team) => EventKind::TeamDeleted { team: *team },
        }
    }
}

/// A new team key not yet stored for the team's key holders.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct NewTeamKey {
    version: u32,
    /// Hex; the local store is encrypted at rest.
    key: String,
}

/// A new member key not yet wrapped for every device that should hold it.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct NewMemberKey {
    version: u32,
    /// Hex; the local store is encrypted at rest.
    key: String,
}

/// The rotation still to do, as committed to the local store.
#[derive(Serialize, Deserialize, Clone, Default)]
pub(super) struct RotationJob {
    /// Roster events to append before rotating (a crash may have come first).
    triggers: Vec<Trigger>,
    /// Member keys to replace.
    member_keys: BTreeMap<MemberId, NewMemberKey>,
    /// Team keys to replace (after the member keys, before the files).
    #[serde(default)]
    team_keys: BTreeMap<TeamId, NewTeamKey>,
    /// Files to give a new epoch, with its key (hex).
    files: BTreeMap<FileId, String>,
    /// Totals since the job was planned, for progress and the report.
    files_total: u64,
    member_keys_total: u64,
}

impl RotationJob {
    pub(super) fn is_empty(&self) -> bool {
        self.triggers.is_empty()
            && self.member_keys.is_empty()
            && self.team_keys.is_empty()
            && self.files.is_empty()
    }
}

/// Where a rotation stands (for a progress bar).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotationProgress {
    /// Member keys replaced so far.
    pub member_keys_done: u64,
    /// Member keys to replace in all.
    pub member_keys_total: u64,
    /// Files with their new epoch so far.
    pub files_done: u64,
    /// Files to re-key in all.
    pub files_total: u64,
}

/// What a revocation did, with the time each step took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotationReport {
    /// Devices the relay refuses from now on.
    pub revoked_devices: Vec<DeviceId>,
    /// Milliseconds until the roster event landed (the relay refuses them from then on).
    pub refused_after_ms: u64,
    /// Member keys given a new version.
    pub member_keys: u64,
    /// Wraps of new member keys for devices (X25519 each).
    pub member_key_wraps: u64,
    /// Files given a new epoch.
    pub files: u64,
    /// Team keys given a new version (each wrapped for the team's members and admins).
    pub team_keys: u64,
    /// Wraps of new epoch keys under member keys and team keys, and chain links
    /// (symmetric each).
    pub epoch_wraps: u64,
    /// This device's outbound room sessions that had reached a revoked device, replaced
    /// by new ones shared with the remaining devices (every other device starts a new
    /// session at its next message, as its audience changed).
    pub room_sessions: u64,
    /// Olm encryptions of the new room keys (one per remaining device and room).
    pub olm_shares: u64,
    /// Milliseconds spent on room sessions.
    pub room_ms: u64,
    /// HTTP requests from the roster event to the end (revocation and rotation).
    pub requests: u64,
    /// Microseconds spent wrapping keys (CPU).
    pub wrap_us: u64,
    /// Milliseconds from the start until everything was rotated.
    pub total_ms: u64,
    /// What is left (non-zero only when the job stopped on an error and will resume).
    pub files_left: u64,
}

/// A file's new epoch, ready to send.
struct Prepared {
    file: FileId,
    epoch: u64,
    old: EpochKey,
    link: Vec<u8>,
    wraps: Vec<(MemberId, u32, Vec<u8>)>,
    team_wraps: Vec<(TeamId, u32, Vec<u8>)>,
}

/// What revoking a member would do, shown before the admin confirms.
#[derive(Debug, Clone, Serialize)]
pub struct RevocationPlan {
    /// The member.
    pub member: MemberId,
    /// Their name, if this profile knows it.
    pub name: Option<String>,
    /// Devices the relay refuses from the moment the roster event lands.
    pub devices: Vec<DeviceId>,
    /// Member keys given a new version (theirs, or every key an admin held in escrow).
    pub member_keys: u64,
    /// Customer files given a new epoch, with their names where known.
    pub files: Vec<(FileId, Option<String>)>,
    /// Teams whose key gets a new version (the member's teams), with their names.
    pub teams: Vec<(TeamId, Option<String>)>,
    /// Already revoked: confirming only finishes an interrupted rotation.
    pub already_revoked: bool,
}

impl Profile {
    /// What [`Profile::revoke_member`] would rotate, from the roster this device holds;
    /// nothing is sent.
    pub fn revocation_plan(&self, member: MemberId) -> Result<RevocationPlan> {
        let r = self.roster()?;
        let state = r
            .member(&member)
            .ok_or_else(|| ClientError::NotFound(format!("no member {member}")))?;
        let already_revoked = state.active.until.is_some();
        let (holders, files) = if already_revoked {
            (BTreeSet::new(), BTreeSet::new())
        } else {
            r.exposed_by(&Trigger::MemberRemoved(member).event())
        };
        let teams = if already_revoked {
            BTreeSet::new()
        } else {
            r.teams_exposed_by(&Trigger::MemberRemoved(member).event())
        };
        let names = self.teams()?;
        Ok(RevocationPlan {
            member,
            name: self.local.member_names.get(&member).cloned(),
            devices: r
                .devices_of_member(&member)
                .into_iter()
                .filter(|d| r.device(d).is_some_and(|s| s.active.until.is_none()))
                .collect(),
            member_keys: holders.len() as u64,
            files: files
                .into_iter()
                .map(|f| (f, self.local.files.get(&f).and_then(|s| s.name.clone())))
                .collect(),
            teams: teams
                .into_iter()
                .map(|t| {
                    let name = names
                        .iter()
                        .find(|v| v.id == t)
                        .and_then(|v| v.name.clone());
                    (t, name)
                })
                .collect(),
            already_revoked,
        })
    }

    /// Removes `member` from the firm (admin) and rotates everything they could open.
    /// Re-running it after an interruption finishes the rotation.
    pub async fn revoke_member(
        &mut self,
        member: MemberId,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        let start = Instant::now();
        self.require_admin()?;
        if member == self.id.member {
            return Err(ClientError::NotAllowed(
                "you cannot revoke yourself: another admin can".into(),
            ));
        }
        self.sync_roster(&mut SyncReport::default()).await?;
        let r = self.roster()?;
        let state = r
            .member(&member)
            .ok_or_else(|| ClientError::NotFound(format!("no member {member}")))?;
        let devices = r.devices_of_member(&member);
        if state.active.until.is_none() {
            let trigger = Trigger::MemberRemoved(member);
            let (holders, files) = r.exposed_by(&trigger.event());
            let teams = r.teams_exposed_by(&trigger.event());
            self.check_event(trigger.event())?;
            self.plan_rotation(trigger, &holders, &teams, files).await?;
        }
        self.finish_revocation(devices, start, progress).await
    }

    /// Revokes `device` (a lost or stolen laptop; admin): its member stays, with a new
    /// member key; every file that key could open gets a new epoch.
    pub async fn revoke_device(
        &mut self,
        device: DeviceId,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        let start = Instant::now();
        self.require_admin()?;
        if device == self.id.device {
            return Err(ClientError::NotAllowed(
                "you cannot revoke the device you are using: revoke it from another admin device"
                    .into(),
            ));
        }
        self.sync_roster(&mut SyncReport::default()).await?;
        let r = self.roster()?;
        let d = r
            .device(&device)
            .ok_or_else(|| ClientError::NotFound(format!("no device {device}")))?;
        if d.active.until.is_none() {
            let trigger = Trigger::DeviceRevoked(device);
            let (holders, files) = r.exposed_by(&trigger.event());
            let teams = r.teams_exposed_by(&trigger.event());
            self.check_event(trigger.event())?;
            self.plan_rotation(trigger, &holders, &teams, files).await?;
        }
        self.finish_revocation(vec![device], start, progress).await
    }

    /// Ends `member`'s access to `file` (admin): roster event (the relay refuses them from
    /// now on), then a new epoch wrapped for the remaining members only. Re-running
    /// finishes an interrupted re-key. Returns the file's epoch.
    pub async fn remove(&mut self, file: FileId, member: MemberId) -> Result<u64> {
        self.require_admin()?;
        let r = self.roster()?;
        if !r.granted_files(&member).contains(&file) && r.team_files(&member).contains(&file) {
            return Err(ClientError::NotAllowed(
                "this member reaches the file through a team, not a grant of their own: take them out of the team, or the team off the file".into(),
            ));
        }
        if self.roster()?.granted_files(&member).contains(&file) {
            self.plan_rotation(
                Trigger::FileAccessRemoved(file, member),
                &BTreeSet::new(),
                &BTreeSet::new(),
                BTreeSet::from([file]),
            )
            .await?;
        }
        self.run_rotation(&mut |_| {}, &mut RotationReport::default())
            .await?;
        self.current_epoch(file)
            .map(|(e, _)| e)
            .ok_or_else(|| ClientError::NotAllowed("this profile holds no key for the file".into()))
    }

    /// Resolves a device by its id or a unique prefix of it (at least 8 hex digits).
    pub fn resolve_device(&self, id_or_prefix: &str) -> Result<DeviceId> {
        let r = self.roster()?;
        let want = id_or_prefix.to_ascii_lowercase();
        if want.len() < 8 {
            return Err(ClientError::Invalid(
                "give the device id, or at least its first 8 hex digits".into(),
            ));
        }
        let hits: Vec<DeviceId> = r
            .devices_all()
            .filter(|d| d.to_string().starts_with(&want))
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(ClientError::NotFound(format!(
                "no device {id_or_prefix:?} in the roster (see `ledgerline device list`)"
            ))),
            _ => Err(ClientError::Invalid(format!(
                "several devices start with {id_or_prefix:?}: give more digits"
            ))),
        }
    }

    /// Refuses, before anything is planned, an event the roster would refuse (the last
    /// admin, someone already gone).
    pub(super) fn check_event(&self, kind: EventKind) -> Result<()> {
        let r = self.roster()?;
        let event = EventBody {
            firm: self.id.firm,
            seq: r.len(),
            prev: r.head(),
            timestamp_ms: now_ms().max(super::last_time(&self.events)),
            signer: self.id.member,
            kind,
        }
        .sign(self.master()?);
        r.clone()
            .apply(&event)
            .map_err(|e| ClientError::NotAllowed(format!("the roster refuses this: {e}")))
    }

    /// A member who recovered with their recovery key revoked their own old devices
    /// (`protocol-spec/recovery.md`): the relay cut those off at once, but only an admin
    /// holds the keys to rotate what they could open. The firm's *designated* admin (the
    /// active admin with the smallest member id that has an active device; one, so that two
    /// admins never race for the same new versions) plans that rotation here; the sync
    /// that follows runs it. `before` is the roster before `events`.
    pub(super) async fn plan_for_self_revocations(
        &mut self,
        before: &Roster,
        events: &[RosterEvent],
    ) -> Result<()> {
        let r = self.roster()?;
        let designated = r
            .members()
            .filter(|(id, m)| {
                m.role == Role::Admin
                    && m.active.until.is_none()
                    && r.active_devices(id).next().is_some()
            })
            .map(|(id, _)| *id)
            .min();
        if designated != Some(self.id.member) {
            return Ok(());
        }
        let mut at = before.clone();
        let mut plans = Vec::new();
        for e in events {
            if let EventKind::DeviceRevoked { device } = &e.body.kind {
                let by_admin = at
                    .member(&e.body.signer)
                    .is_some_and(|m| m.role == Role::Admin);
                if !by_admin {
                    let (holders, files) = at.exposed_by(&e.body.kind);
                    let teams = at.teams_exposed_by(&e.body.kind);
                    plans.push((Trigger::DeviceRevoked(*device), holders, teams, files));
                }
            }
            at.apply(e)
                .map_err(|err| ClientError::Integrity(format!("roster: {err}")))?;
        }
        for (trigger, holders, teams, files) in plans {
            self.plan_rotation(trigger, &holders, &teams, files).await?;
        }
        Ok(())
    }

    /// Finishes a rotation an interruption left (at every sync of an admin's device).
    pub async fn resume_rotation(
        &mut self,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<Option<RotationReport>> {
        self.adopt_legacy_rekeys();
        if self.rotation.is_empty() {
            return Ok(None);
        }
        if self.require_admin().is_err() {
            // No longer an admin: the job cannot run here; another admin's revocation
            // tooling must finish it (the audit report names what is missing).
            self.rotation = Default::default();
            self.commit()?;
            return Ok(None);
        }
        let start = Instant::now();
        let sent = self.relay.requests_sent();
        let mut report = RotationReport::default();
        self.run_rotation(progress, &mut report).await?;
        report.total_ms = ms(start);
        report.requests = self.relay.requests_sent() - sent;
        Ok(Some(report))
    }

    /// What is left of an interrupted rotation, if anything.
    pub fn rotation_pending(&self) -> Option<RotationProgress> {
        let j = &self.rotation;
        (!j.is_empty()).then(|| progress_of(j))
    }

    /// Files whose re-key an older version of this client left pending join the job.
    fn adopt_legacy_rekeys(&mut self) {
        let legacy: Vec<FileId> = self
            .local
            .files
            .iter()
            .filter(|(_, f)| f.rekey)
            .map(|(id, _)| *id)
            .collect();
        for file in legacy {
            let job = &mut self.rotation;
            if let std::collections::btree_map::Entry::Vacant(slot) = job.files.entry(file) {
                let key = EpochKey::generate(&mut OsRng);
                slot.insert(hex::encode(key.expose()));
                job.files_total += 1;
            }
            if let Some(f) = self.local.files.get_mut(&file) {
                f.rekey = false;
            }
        }
    }

    /// Adds to the job: the trigger, a new key for each of `holders`' member keys and of
    /// `teams`' keys, a new epoch for each of `files`; commits it before anything is sent.
    pub(super) async fn plan_rotation(
        &mut self,
        trigger: Trigger,
        holders: &BTreeSet<MemberId>,
        teams: &BTreeSet<TeamId>,
        files: BTreeSet<FileId>,
    ) -> Result<()> {
        // The newest versions first, so that a new version is really new.
        self.sync_member_keys(&mut SyncReport::default()).await?;
        if !teams.is_empty() {
            self.sync_team_keys(&mut SyncReport::default()).await?;
        }
        let mut team_versions = Vec::new();
        for t in teams {
            if !self.rotation.team_keys.contains_key(t) {
                let newest = self.newest_team_key(*t).map_or(0, |(v, _)| v);
                team_versions.push((*t, newest + 1));
            }
        }
        let mut keys = Vec::new();
        for m in holders {
            if self.rotation.member_keys.contains_key(m) {
                continue;
            }
            let version = self.member_key(*m).map(|(v, _)| v).ok_or_else(|| {
                ClientError::NotFound(format!("no member key of {m} here (escrow missing)"))
            })? + 1;
            keys.push((*m, version));
        }
        let job = &mut self.rotation;
        for (m, version) in keys {
            let key = MemberKey::generate(&mut OsRng);
            job.member_keys.insert(
                m,
                NewMemberKey {
                    version,
                    key: hex::encode(key.expose()),
                },
            );
            job.member_keys_total += 1;
        }
        for (t, version) in team_versions {
            let key = TeamKey::generate(&mut OsRng);
            job.team_keys.insert(
                t,
                NewTeamKey {
                    version,
                    key: hex::encode(key.expose()),
                },
            );
        }
        for f in files {
            if let std::collections::btree_map::Entry::Vacant(slot) = job.files.entry(f) {
                let key = EpochKey::generate(&mut OsRng);
                slot.insert(hex::encode(key.expose()));
                job.files_total += 1;
            }
        }
        if !job.triggers.contains(&trigger) {
            job.triggers.push(trigger);
        }
        // Only the job: a small write, so the revocation is not held up by the profile's
        // whole state.
        let job = super::json_string(&self.rotation);
        self.store.commit(&[("rotation".to_owned(), job)], &[])?;
        Ok(())
    }

    async fn finish_revocation(
        &mut self,
        revoked: Vec<DeviceId>,
        start: Instant,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        let cut: BTreeSet<DeviceId> = revoked.iter().copied().collect();
        let mut report = self.finish_rotation(&cut, None, start, progress).await?;
        report.revoked_devices = revoked;
        Ok(report)
    }

    /// Appends the job's roster events, runs the job, then replaces this device's room
    /// sessions that reached `cut` (in `rooms` only, when given).
    pub(super) async fn finish_rotation(
        &mut self,
        cut: &BTreeSet<DeviceId>,
        rooms: Option<&BTreeSet<[u8; 16]>>,
        start: Instant,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        let sent = self.relay.requests_sent();
        let mut report = RotationReport::default();
        let acknowledged = self.append_triggers().await?;
        report.refused_after_ms = ms_between(start, acknowledged.unwrap_or_else(Instant::now));
        super::crash_after_revocation();
        self.run_rotation(progress, &mut report).await?;
        self.rotate_room_sessions(cut, rooms, &mut report).await?;
        report.total_ms = ms(start);
        report.requests = self.relay.requests_sent() - sent;
        Ok(report)
    }

    /// Replaces every outbound room session of this device that had reached a device of
    /// `revoked` (in `only` rooms, when given) with a new one, shared over Olm with the
    /// devices allowed now: audiences
    /// fetched concurrently, sessions made and keys encrypted here, then the keys sent in
    /// batches of up to 1,000. (A crash before this is harmless: the next message
    /// notices the changed audience.)
    async fn rotate_room_sessions(
        &mut self,
        revoked: &BTreeSet<DeviceId>,
        only: Option<&BTreeSet<[u8; 16]>>,
        report: &mut RotationReport,
    ) -> Result<()> {
        let t = Instant::now();
        let rooms: Vec<[u8; 16]> = self
            .outbound
            .iter()
            .filter(|(room, o)| {
                !o.shared_with().is_disjoint(revoked) && only.is_none_or(|set| set.contains(*room))
            })
            .map(|(room, _)| *room)
            .collect();
        for room in &rooms {
            self.outbound.remove(room);
        }
        // Who may read each room now (the rules of `audience`).
        let internal: Vec<[u8; 16]> = rooms
            .iter()
            .filter(|r| self.local.rooms.contains_key(&hex::encode(r)))
            .copied()
            .collect();
        let relay = &self.relay;
        let account = &self.account;
        let infos: Vec<([u8; 16], std::result::Result<_, RelayError>)> =
            stream::iter(internal.iter())
                .map(|room| async move { (*room, relay.room_info(account, *room).await) })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
        let mut on_relay: BTreeMap<[u8; 16], BTreeSet<MemberId>> = BTreeMap::new();
        for (room, info) in infos {
            match info {
                Ok(i) => {
                    on_relay.insert(room, i.members.into_iter().collect());
                }
                // Taken out of the room: the old session is dropped, that is all.
                Err(RelayError::Refused {
                    status: 403 | 404, ..
                }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut audiences: Vec<([u8; 16], BTreeSet<DeviceId>)> = Vec::new();
        {
            let r = self.roster()?;
            for room in &rooms {
                let members: BTreeSet<MemberId> = match self.local.rooms.get(&hex::encode(room)) {
                    Some(state) => match on_relay.get(room) {
                        Some(relay_members) => state
                            .members
                            .iter()
                            .filter(|m| relay_members.contains(m))
                            .copied()
                            .collect(),
                        None => continue,
                    },
                    None => r.file_members(&FileId(*room), now_ms()),
                };
                if !members.contains(&self.id.member) {
                    continue;
                }
                let devices = members
                    .iter()
                    .flat_map(|m| r.active_devices(m).map(|(d, _)| *d).collect::<Vec<_>>())
                    .collect();
                audiences.push((*room, devices));
            }
        }
        // Olm sessions with every device concerned (one claim for those without).
        let everyone: Vec<DeviceId> = audiences
            .iter()
            .flat_map(|(_, d)| d.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut sync = SyncReport::default();
        let reached: BTreeSet<DeviceId> = self
            .olm_reach(&everyone, &mut sync)
            .await?
            .into_iter()
            .collect();
        let now = now_ms();
        let mut batches = Vec::with_capacity(audiences.len());
        for (room, devices) in audiences {
            let mut out = crate::room::OutboundRoom::new(room, now);
            let key = out.share(self.id.device, &devices);
            self.outbound.insert(room, out);
            let _ = self.timeline.add_key(self.id.device, &key);
            let to: Vec<DeviceId> = devices
                .iter()
                .filter(|d| reached.contains(d))
                .copied()
                .collect();
            self.note_undelivered(room, devices.iter(), |d| reached.contains(d));
            let batch = self.seal_key_for(&key, &to)?;
            report.olm_shares += batch.len() as u64;
            report.room_sessions += 1;
            if !batch.is_empty() {
                batches.push(batch);
            }
        }
        // The new sessions are kept before their keys leave: a message sent later uses them.
        self.commit()?;
        // Grouped by device, each device's keys in room order and never split between two
        // requests, so that the requests can go concurrently while every device still
        // receives its Olm messages in the order they were encrypted (a receiver keeps
        // only a few skipped message keys). At most 1,000 messages a request.
        let (requests, in_order) =
            to_device_requests(batches.into_iter().flatten().collect(), TO_DEVICE_BATCH);
        let relay = &self.relay;
        let account = &self.account;
        let sent: Vec<std::result::Result<_, RelayError>> = stream::iter(requests.iter())
            .map(|r| relay.send_to_device(account, r))
            .buffered(if in_order { 1 } else { IN_FLIGHT })
            .collect()
            .await;
        for res in sent {
            res?;
        }
        report.room_ms = ms(t);
        Ok(())
    }

    /// Appends the job's roster events that have not landed yet.
    async fn append_triggers(&mut self) -> Result<Option<Instant>> {
        let mut acknowledged = None;
        let triggers = self.rotation.triggers.clone();
        for t in triggers {
            let r = self.roster()?;
            let pending = match &t {
                Trigger::MemberRemoved(m) => r.member(m).is_some_and(|s| s.active.until.is_none()),
                Trigger::DeviceRevoked(d) => r.device(d).is_some_and(|s| s.active.until.is_none()),
                Trigger::FileAccessRemoved(f, m) => r.granted_files(m).contains(f),
                Trigger::CoverEnded(c) => r.cover(*c).is_some_and(|c| c.ended_ms.is_none()),
                Trigger::TeamMemberRemoved(t, m) => r.team_members(t).contains(m),
                Trigger::FileTeamRemoved(f, t) => r.file_teams(f).contains(t),
                Trigger::TeamDeleted(t) => r.team(t).is_some_and(|s| s.active.until.is_none()),
            };
            if pending {
                acknowledged = Some(self.append(t.event()).await?);
            }
            self.rotation.triggers.retain(|x| *x != t);
        }
        self.commit()?;
        Ok(acknowledged)
    }

    /// Runs the job to its end: member keys first (the new epochs are wrapped under them),
    /// then the files, with bounded concurrency and a commit every few files.
    pub(super) async fn run_rotation(
        &mut self,
        progress: &mut dyn FnMut(&RotationProgress),
        report: &mut RotationReport,
    ) -> Result<()> {
        self.append_triggers().await?;
        progress(&progress_of(&self.rotation));
        self.rotate_member_keys(report).await?;
        self.rotate_team_keys(report).await?;
        progress(&progress_of(&self.rotation));
        for _ in 0..ROUNDS {
            if self.rotation.files.is_empty() {
                break;
            }
            self.rotate_files(progress, report).await?;
        }
        report.files_left = self.rotation.files.len() as u64;
        if report.files_left > 0 {
            return Err(ClientError::Integrity(format!(
                "{} files could not be given a new epoch (concurrent changes); run `ledgerline sync` to retry",
                report.files_left
            )));
        }
        self.rotation = Default::default();
        self.commit()
    }

    async fn rotate_member_keys(&mut self, report: &mut RotationReport) -> Result<()> {
        let pending: Vec<(MemberId, NewMemberKey)> = self
            .rotation
            .member_keys
            .iter()
            .map(|(m, k)| (*m, k.clone()))
            .collect();
        for (member, nk) in pending {
            let key = super::key32(&nk.key)
                .map(|k| MemberKey::from_bytes(*k))
                .ok_or_else(|| ClientError::Integrity("stored member key".into()))?;
            let r = self.roster()?;
            // The member's devices and every admin's (escrow), as the roster has them now.
            let mut devices: BTreeSet<DeviceId> =
                r.active_devices(&member).map(|(d, _)| *d).collect();
            for (m, s) in r.members() {
                if s.role == Role::Admin && s.active.until.is_none() {
                    devices.extend(r.active_devices(m).map(|(d, _)| *d));
                }
            }
            let t = Instant::now();
            let mut wraps = Vec::with_capacity(devices.len());
            for d in &devices {
                let Some(ds) = r.device(d) else { continue };
                let ctx = MemberKeyContext {
                    firm: self.id.firm,
                    member,
                    device: *d,
                    key_version: nk.version,
                };
                wraps.push((*d, wrap_member_key(&key, &ds.keys.wrap, &ctx, &mut OsRng)));
            }
            report.wrap_us += us(t);
            let relay = &self.relay;
            let account = &self.account;
            let results: Vec<std::result::Result<(), RelayError>> = stream::iter(wraps.iter())
                .map(|(d, w)| relay.put_member_key(account, member, nk.version, *d, w))
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for res in results {
                res?;
            }
            report.member_key_wraps += wraps.len() as u64;
            report.member_keys += 1;
            self.local_member_key_insert(member, nk.version, &key);
            self.rotation.member_keys.remove(&member);
            self.commit()?;
        }
        Ok(())
    }

    /// New versions of the exposed team keys, for the team's key holders now, each under
    /// their (by now rotated) member key. A version another admin took meanwhile moves
    /// ours to the next one.
    async fn rotate_team_keys(&mut self, report: &mut RotationReport) -> Result<()> {
        let pending: Vec<(TeamId, NewTeamKey)> = self
            .rotation
            .team_keys
            .iter()
            .map(|(t, k)| (*t, k.clone()))
            .collect();
        for (team, mut nk) in pending {
            let key = super::key32(&nk.key)
                .map(|k| TeamKey::from_bytes(*k))
                .ok_or_else(|| ClientError::Integrity("stored team key".into()))?;
            let mut stored = false;
            for _ in 0..ROUNDS {
                if self.roster()?.team_key_holders(&team).is_empty() {
                    // Deleted meanwhile: nothing is wrapped under it again.
                    break;
                }
                match self.put_team_key_version(team, nk.version, &key).await {
                    Ok(()) => {
                        stored = true;
                        break;
                    }
                    Err(ClientError::Relay(RelayError::Refused { code, .. }))
                        if code == "team_key_version" =>
                    {
                        self.sync_team_keys(&mut SyncReport::default()).await?;
                        nk.version = self.newest_team_key(team).map_or(0, |(v, _)| v) + 1;
                        self.rotation.team_keys.insert(team, nk.clone());
                    }
                    Err(ClientError::Relay(RelayError::Refused { code, .. }))
                        if code == "holders_changed" =>
                    {
                        self.sync_roster(&mut SyncReport::default()).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            if stored {
                self.set_team_key(team, nk.version, &key);
                report.team_keys += 1;
            } else if !self.roster()?.team_key_holders(&team).is_empty() {
                self.commit()?;
                return Err(ClientError::Integrity(format!(
                    "the key of team {team} could not be given a new version (concurrent changes); run `ledgerline sync` to retry"
                )));
            }
            self.rotation.team_keys.remove(&team);
            self.commit()?;
        }
        Ok(())
    }

    /// One round over the files left.
    async fn rotate_files(
        &mut self,
        progress: &mut dyn FnMut(&RotationProgress),
        report: &mut RotationReport,
    ) -> Result<()> {
        let files: Vec<(FileId, String)> = self
            .rotation
            .files
            .iter()
            .map(|(f, k)| (*f, k.clone()))
            .collect();
        for chunk in files.chunks(CHUNK) {
            let mut ready = Vec::with_capacity(chunk.len());
            for (file, key_hex) in chunk {
                let new = super::key32(key_hex)
                    .map(|k| EpochKey::from_bytes(*k))
                    .ok_or_else(|| ClientError::Integrity("stored epoch key".into()))?;
                if self.local.erased.contains(file) {
                    // Erased: nothing of it is left to re-key.
                    self.rotation.files.remove(file);
                    continue;
                }
                if self.current_epoch(*file).is_none() {
                    match self.recover_epoch(*file).await {
                        Err(ClientError::Relay(RelayError::Refused { status: 410, .. })) => {
                            self.rotation.files.remove(file);
                            continue;
                        }
                        other => other?,
                    }
                }
                let t = Instant::now();
                let prepared = self.prepare_epoch(*file, new)?;
                report.wrap_us += us(t);
                ready.push(prepared);
            }
            let relay = &self.relay;
            let account = &self.account;
            let results: Vec<(usize, std::result::Result<(), RelayError>)> =
                stream::iter(ready.iter().enumerate())
                    .map(|(i, p)| async move {
                        (
                            i,
                            relay
                                .start_epoch(
                                    account,
                                    p.file,
                                    p.epoch,
                                    &p.link,
                                    &p.wraps,
                                    &p.team_wraps,
                                )
                                .await,
                        )
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .collect()
                    .await;
            let mut refresh_roster = false;
            for (i, res) in results {
                let Some(p) = ready.get(i) else { continue };
                let landed = match res {
                    Ok(()) => true,
                    Err(RelayError::Refused { code, .. }) if code == "epoch_exists" => {
                        // Ours, from before a crash, or another admin's.
                        self.ours_landed(p).await?
                    }
                    Err(RelayError::Refused { code, .. }) if code == "epoch_not_next" => {
                        self.recover_epoch(p.file).await?;
                        false
                    }
                    Err(RelayError::Refused { code, .. }) if code == "holders_changed" => {
                        refresh_roster = true;
                        false
                    }
                    // Erased meanwhile: nothing is left to re-key.
                    Err(RelayError::Refused { status: 410, .. }) => {
                        self.rotation.files.remove(&p.file);
                        false
                    }
                    Err(e) => {
                        self.commit()?;
                        return Err(e.into());
                    }
                };
                if landed {
                    report.files += 1;
                    super::crash_after_epochs(report.files);
                    report.epoch_wraps += (p.wraps.len() + p.team_wraps.len()) as u64 + 1;
                    if let Some(new) = self
                        .rotation
                        .files
                        .remove(&p.file)
                        .and_then(|k| super::key32(&k))
                    {
                        self.set_epoch_key(p.file, p.epoch, &EpochKey::from_bytes(*new));
                    }
                }
            }
            progress(&progress_of(&self.rotation));
            if refresh_roster {
                self.sync_roster(&mut SyncReport::default()).await?;
            }
        }
        Ok(())
    }

    /// The link and wraps of `file`'s next epoch under `new`, for its members now.
    fn prepare_epoch(&self, file: FileId, new: EpochKey) -> Result<Prepared> {
        let (current, old) = self
            .current_epoch(file)
            .ok_or_else(|| ClientError::NotFound(format!("no key of file {file} here")))?;
        self.prepare_epoch_at(file, current + 1, new, old)
    }

    /// The link and wraps of `file`'s epoch `epoch` (key `new`, after `old`), for its
    /// members now.
    fn prepare_epoch_at(
        &self,
        file: FileId,
        epoch: u64,
        new: EpochKey,
        old: EpochKey,
    ) -> Result<Prepared> {
        // The new key wraps the old one (never the reverse: whoever held the old key
        // must learn nothing of the new).
        let link = chain_epoch_key(
            &new,
            &old,
            &EpochChainContext {
                firm: self.id.firm,
                file,
                epoch,
            },
            &mut OsRng,
        )
        .map_err(|e| ClientError::Invalid(format!("epoch chain: {e}")))?;
        let mut wraps = Vec::new();
        for m in self.roster()?.key_holders(&file, now_ms()) {
            let (version, mk) = self.member_key(m).ok_or_else(|| {
                ClientError::NotFound(format!("no member key of {m} here (escrow missing)"))
            })?;
            let ctx = EpochKeyContext {
                firm: self.id.firm,
                file,
                epoch,
                holder: Holder::Member(m),
                holder_key_version: version,
            };
            wraps.push((m, version, wrap_epoch_key(&new, &mk, &ctx, &mut OsRng)));
        }
        let mut team_wraps = Vec::new();
        for t in self.roster()?.file_teams(&file) {
            let (version, tk) = self.newest_team_key(t).ok_or_else(|| {
                ClientError::NotFound(format!("no key of team {t} here (not an admin?)"))
            })?;
            let ctx = EpochKeyContext {
                firm: self.id.firm,
                file,
                epoch,
                holder: Holder::Team(t),
                holder_key_version: version,
            };
            team_wraps.push((t, version, wrap_epoch_key(&new, &tk, &ctx, &mut OsRng)));
        }
        Ok(Prepared {
            file,
            epoch,
            old,
            link,
            wraps,
            team_wraps,
        })
    }

    /// After `epoch_exists`: whether the stored link is ours (it opens, under our new
    /// key, to the key we chained). If not, another admin started the epoch: learn it and
    /// try again with the next one.
    async fn ours_landed(&mut self, p: &Prepared) -> Result<bool> {
        let (links, _) = self.relay.epoch_links(&self.account, p.file, 0).await?;
        let new = self
            .rotation
            .files
            .get(&p.file)
            .and_then(|k| super::key32(k))
            .map(|k| EpochKey::from_bytes(*k));
        let ctx = EpochChainContext {
            firm: self.id.firm,
            file: p.file,
            epoch: p.epoch,
        };
        let ours = links.iter().any(|l| {
            l.epoch == p.epoch
                && new.as_ref().is_some_and(|new| {
                    unchain_epoch_key(&l.wrapped, new, &ctx)
                        .is_ok_and(|old| old.expose() == p.old.expose())
                })
        });
        if !ours {
            self.recover_epoch(p.file).await?;
        }
        Ok(ours)
    }

    /// After a relay restore (admins): gives the relay back what it lost of a file this
    /// device holds the keys of — its conversation room, the epochs started after the
    /// backup (each linked to the one before, wrapped for the file's members now) and the
    /// newest epoch's key for every member who holds the file and has no wrap of it.
    /// Returns how many pieces went again.
    pub(super) async fn restore_file_keys(&mut self, file: FileId) -> Result<usize> {
        let Some((mine, _)) = self.current_epoch(file) else {
            return Ok(0);
        };
        let mut sent = 0;
        match self
            .relay
            .create_room(&self.account, *file.as_bytes(), Some(file), &[])
            .await
        {
            Ok(()) => sent += 1,
            Err(RelayError::Refused { status: 409, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let (links, _) = self.relay.epoch_links(&self.account, file, 0).await?;
        let theirs = links.iter().map(|l| l.epoch).max().unwrap_or(0);
        for epoch in theirs.saturating_add(1)..=mine {
            let (Some(new), Some(old)) =
                (self.epoch_key(file, epoch), self.epoch_key(file, epoch - 1))
            else {
                return Err(ClientError::Integrity(format!(
                    "this device lacks a key of file {file} between epochs {theirs} and {mine}"
                )));
            };
            let p = self.prepare_epoch_at(file, epoch, new, old)?;
            match self
                .relay
                .start_epoch(&self.account, file, epoch, &p.link, &p.wraps, &p.team_wraps)
                .await
            {
                Ok(()) => sent += 1,
                Err(RelayError::Refused { code, .. }) if code == "epoch_exists" => {}
                Err(e) => return Err(e.into()),
            }
        }
        let Some(current) = self.epoch_key(file, mine) else {
            return Ok(sent);
        };
        // The newest epoch for the file's teams (idempotent: one wrap per team and epoch).
        for team in self.roster()?.file_teams(&file) {
            let Some((version, tk)) = self.newest_team_key(team) else {
                continue;
            };
            let ctx = EpochKeyContext {
                firm: self.id.firm,
                file,
                epoch: mine,
                holder: Holder::Team(team),
                holder_key_version: version,
            };
            let wrapped = wrap_epoch_key(&current, &tk, &ctx, &mut OsRng);
            match self
                .relay
                .put_team_epoch_key(&self.account, file, mine, team, version, &wrapped)
                .await
            {
                Ok(()) => sent += 1,
                // A rotation due (the relay wants a newer team key first): left to it.
                Err(RelayError::Refused { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for holder in self.roster()?.key_holders(&file, now_ms()) {
            let asked = (holder != self.id.member).then_some(holder);
            let (wraps, _) = self.relay.epoch_keys(&self.account, file, 0, asked).await?;
            if wraps.iter().any(|w| w.epoch == mine) {
                continue;
            }
            let Some((version, mk)) = self.member_key(holder) else {
                continue;
            };
            let ctx = EpochKeyContext {
                firm: self.id.firm,
                file,
                epoch: mine,
                holder: Holder::Member(holder),
                holder_key_version: version,
            };
            let wrapped = wrap_epoch_key(&current, &mk, &ctx, &mut OsRng);
            self.relay
                .put_epoch_key(&self.account, file, mine, holder, version, &wrapped)
                .await?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Learns a file's newest epoch and its key from the relay: through this member's
    /// own wraps, or (escrow) through any member's whose key this admin holds.
    pub(super) async fn recover_epoch(&mut self, file: FileId) -> Result<()> {
        let (links, _) = self.relay.epoch_links(&self.account, file, 0).await?;
        let newest = links.iter().map(|l| l.epoch).max().unwrap_or(0);
        if self.epoch_key(file, newest).is_some() {
            return Ok(());
        }
        let r = self.roster()?;
        let mut candidates: Vec<MemberId> = vec![self.id.member];
        candidates.extend(r.key_holders(&file, now_ms()));
        candidates.extend(r.members().map(|(m, _)| *m));
        let mut seen = BTreeSet::new();
        for holder in candidates {
            if !seen.insert(holder) || self.member_key(holder).is_none() {
                continue;
            }
            let asked = (holder != self.id.member).then_some(holder);
            let (wraps, _) = self.relay.epoch_keys(&self.account, file, 0, asked).await?;
            for w in wraps.iter().filter(|w| w.epoch == newest) {
                let Some(mk) = self.member_key_version(holder, w.version) else {
                    continue;
                };
                let ctx = EpochKeyContext {
                    firm: self.id.firm,
                    file,
                    epoch: newest,
                    holder: Holder::Member(holder),
                    holder_key_version: w.version,
                };
                if let Ok(k) = unwrap_epoch_key(&w.wrapped, &mk, &ctx) {
                    self.set_epoch_key(file, newest, &k);
                    return Ok(());
                }
            }
        }
        if self.recover_epoch_through_teams(file, newest).await? {
            return Ok(());
        }
        Err(ClientError::NotFound(format!(
            "no key of epoch {newest} of file {file} can be opened here"
        )))
    }
}

/// To-device messages: recipient and Olm ciphertext.
type Batch = Vec<(DeviceId, Vec<u8>)>;

/// Splits to-device messages into requests of at most `max`: grouped by device (stable:
/// each device's messages keep their order), a device's group never split unless it is
/// larger than `max` — then the second value says the requests must go in order.
fn to_device_requests(mut all: Batch, max: usize) -> (Vec<Batch>, bool) {
    all.sort_by_key(|(d, _)| *d);
    let mut requests: Vec<Batch> = vec![Vec::new()];
    let mut in_order = false;
    let mut rest = all.as_slice();
    while let Some((first, _)) = rest.first() {
        let n = rest.iter().take_while(|(d, _)| d == first).count();
        in_order |= n > max;
        let (group, tail) = rest.split_at(n);
        rest = tail;
        if requests
            .last()
            .is_some_and(|r| !r.is_empty() && r.len() + group.len() > max)
        {
            requests.push(Vec::new());
        }
        for chunk in group.chunks(max.max(1)) {
            match requests.last_mut() {
                Some(last) if last.is_empty() || last.len() + chunk.len() <= max => {
                    last.extend_from_slice(chunk)
                }
                _ => requests.push(chunk.to_vec()),
            }
        }
    }
    requests.retain(|r| !r.is_empty());
    (requests, in_order)
}

fn progress_of(j: &RotationJob) -> RotationProgress {
    RotationProgress {
        member_keys_done: j
            .member_keys_total
            .saturating_sub(j.member_keys.len() as u64),
        member_keys_total: j.member_keys_total,
        files_done: j.files_total.saturating_sub(j.files.len() as u64),
        files_total: j.files_total,
    }
}

fn us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn ms(since: Instant) -> u64 {
    ms_between(since, Instant::now())
}

fn ms_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_batches_keep_each_devices_order_and_never_split_a_device() {
        let d = |i: u8| DeviceId([i; 16]);
        // Room-major order, as the rotation produces it: room r to devices 1..=5.
        let all: Vec<(DeviceId, Vec<u8>)> = (0..30u8)
            .flat_map(|r| (1..=5u8).map(move |i| (d(i), vec![r])))
            .collect();
        let (requests, in_order) = to_device_requests(all.clone(), 70);
        assert!(!in_order);
        assert!(requests.iter().all(|r| r.len() <= 70 && !r.is_empty()));
        assert_eq!(requests.iter().map(Vec::len).sum::<usize>(), all.len());
        for i in 1..=5u8 {
            let holding: Vec<usize> = (0..requests.len())
                .filter(|k| requests[*k].iter().any(|(x, _)| *x == d(i)))
                .collect();
            assert_eq!(holding.len(), 1, "device {i} split across requests");
            let rooms: Vec<u8> = requests[holding[0]]
                .iter()
                .filter(|(x, _)| *x == d(i))
                .map(|(_, m)| m[0])
                .collect();
            assert_eq!(
                rooms,
                (0..30).collect::<Vec<u8>>(),
                "device {i} out of order"
            );
        }
        // A device with more than one request holds: split, and sent in order.
        let (requests, in_order) = to_device_requests(all, 20);
        assert!(in_order);
        assert!(requests.iter().all(|r| r.len() <= 20));
        let flat: Vec<(DeviceId, u8)> =
            requests.iter().flatten().map(|(x, m)| (*x, m[0])).collect();
        let mut sorted = flat.clone();
        sorted.sort_by_key(|(x, _)| *x);
        assert_eq!(flat, sorted, "in order, device by device, rooms in order");
    }
}
