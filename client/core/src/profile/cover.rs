//! Absence cover (`protocol-spec/offboarding.md`, "Absence cover"): an admin lets a
//! colleague work in an absent member's files from date A to date B.
//!
//! The grant is a signed roster event; the colleague's member key gets the current epoch
//! key of every covered file at once (the relay withholds it until A), with the file's
//! conversation keys this admin holds. At B every relay refuses the colleague by itself;
//! the first admin client to sync after B appends the `CoverEnded` event and runs the
//! same durable rotation as a revocation: a new epoch for each covered file the colleague
//! holds no other way, and new room sessions without the colleague's devices.

use super::offboard::{RotationProgress, RotationReport, Trigger};
use super::{now_ms, ClientError, Profile, Result, SyncReport};
use crate::transport::RelayError;
use futures_util::stream::{self, StreamExt};
use ledgerline_protocol::ids::{DeviceId, FileId, MemberId};
use ledgerline_protocol::roster::{EventKind, Role};
use ledgerline_protocol::wrap::{wrap_epoch_key, EpochKeyContext, Holder};
use rand_core::OsRng;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Instant;

/// Requests in flight while wrapping keys for the colleague.
const IN_FLIGHT: usize = 16;

/// An absence cover as the roster has it, for lists and the desktop app.
#[derive(Debug, Clone, Serialize)]
pub struct CoverView {
    /// The `seq` of its `CoverGranted` event: the id `cover end` takes.
    pub id: u64,
    /// The member who is away.
    pub absent: MemberId,
    /// Their display name, when this profile knows it.
    pub absent_name: Option<String>,
    /// The member who covers.
    pub colleague: MemberId,
    /// Their display name, when this profile knows it.
    pub colleague_name: Option<String>,
    /// Start (ms since the Unix epoch).
    pub from_ms: u64,
    /// Expiry (ms since the Unix epoch, exclusive).
    pub until_ms: u64,
    /// When a `CoverEnded` event recorded its end, if one did.
    pub ended_ms: Option<u64>,
    /// `planned`, `active`, `expired` (past B, rotation not recorded yet) or `ended`.
    pub state: &'static str,
    /// Number of covered files.
    pub files: usize,
}

/// What granting a cover did.
#[derive(Debug, Clone, Serialize)]
pub struct CoverGrant {
    /// The cover's id (the `seq` of its roster event).
    pub id: u64,
    /// Covered files: the absent member's files now.
    pub files: usize,
    /// Current epoch keys wrapped for the colleague.
    pub wrapped: usize,
    /// Files whose conversation keys this admin held and forwarded.
    pub forwarded: usize,
}

impl Profile {
    /// Grants `colleague` the files of `absent` from `from_ms` until `until_ms` (admin).
    /// Running it again with the same arguments finishes an interrupted grant (the keys
    /// are wrapped again where missing; no second cover is made).
    pub async fn grant_cover(
        &mut self,
        absent: MemberId,
        colleague: MemberId,
        from_ms: u64,
        until_ms: u64,
    ) -> Result<CoverGrant> {
        self.require_admin()?;
        self.sync_roster(&mut SyncReport::default()).await?;
        let same = |c: &ledgerline_protocol::roster::Cover| {
            c.absent == absent
                && c.colleague == colleague
                && c.from_ms == from_ms
                && c.until_ms == until_ms
                && c.ended_ms.is_none()
        };
        let existing = self
            .roster()?
            .covers()
            .find(|(_, c)| same(c))
            .map(|(seq, _)| seq);
        let id = match existing {
            Some(seq) => seq,
            None => {
                let kind = EventKind::CoverGranted {
                    absent,
                    colleague,
                    from_ms,
                    until_ms,
                };
                self.check_event(kind.clone())?;
                let seq = self.roster()?.len();
                self.append(kind).await?;
                seq
            }
        };
        let files: Vec<FileId> = self
            .roster()?
            .cover(id)
            .map(|c| c.files.iter().copied().collect())
            .unwrap_or_default();
        let (version, mk) = self.member_key(colleague).ok_or_else(|| {
            ClientError::NotFound(format!(
                "no member key of {colleague} here (escrow missing)"
            ))
        })?;
        let mut wraps = Vec::with_capacity(files.len());
        for file in &files {
            if self.local.erased.contains(file) {
                continue;
            }
            if self.current_epoch(*file).is_none() {
                match self.recover_epoch(*file).await {
                    // Erased: nothing to open.
                    Err(ClientError::Relay(RelayError::Refused { status: 410, .. })) => continue,
                    other => other?,
                }
            }
            let (epoch, ek) = self
                .current_epoch(*file)
                .ok_or_else(|| ClientError::NotFound(format!("no key of file {file} here")))?;
            let ctx = EpochKeyContext {
                firm: self.id.firm,
                file: *file,
                epoch,
                holder: Holder::Member(colleague),
                holder_key_version: version,
            };
            wraps.push((*file, epoch, wrap_epoch_key(&ek, &mk, &ctx, &mut OsRng)));
        }
        let relay = &self.relay;
        let account = &self.account;
        let results: Vec<std::result::Result<(), RelayError>> = stream::iter(wraps.iter())
            .map(|(file, epoch, w)| {
                relay.put_epoch_key(account, *file, *epoch, colleague, version, w)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for res in results {
            match res {
                Ok(()) => {}
                // Wrapped before an interruption.
                Err(RelayError::Refused { code, .. }) if code == "exists" || code == "erased" => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut forwarded = 0;
        for file in &files {
            if !self.timeline.export_room(*file.as_bytes()).is_empty() {
                forwarded += 1;
            }
            self.forward_history(*file, colleague)?;
        }
        self.commit()?;
        self.flush_private(&mut SyncReport::default()).await?;
        Ok(CoverGrant {
            id,
            files: files.len(),
            wrapped: wraps.len(),
            forwarded,
        })
    }

    /// Ends a cover now (admin): its `CoverEnded` event, then a new epoch for every file the
    /// colleague held only through it and new room sessions without their devices. After
    /// its expiry this is what every admin's sync does by itself. Re-running finishes an
    /// interrupted rotation.
    pub async fn end_cover(
        &mut self,
        id: u64,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        let start = Instant::now();
        self.require_admin()?;
        self.sync_roster(&mut SyncReport::default()).await?;
        let r = self.roster()?;
        let cover = r.cover(id).ok_or_else(|| {
            ClientError::NotFound(format!(
                "no absence cover {id} (see `ledgerline cover list`)"
            ))
        })?;
        let colleague = cover.colleague;
        let (_, files) = r.exposed_by(&EventKind::CoverEnded { cover: id });
        if cover.ended_ms.is_none() {
            let trigger = Trigger::CoverEnded(id);
            self.check_event(trigger.event())?;
            self.plan_rotation(trigger, &BTreeSet::new(), &BTreeSet::new(), files.clone())
                .await?;
        }
        let devices: BTreeSet<DeviceId> = self
            .roster()?
            .devices_of_member(&colleague)
            .into_iter()
            .collect();
        let rooms: BTreeSet<[u8; 16]> = files.iter().map(|f| *f.as_bytes()).collect();
        self.finish_rotation(&devices, Some(&rooms), start, progress)
            .await
    }

    /// Covers whose expiry has passed without a `CoverEnded` get one, and their rotation
    /// (at every sync of an admin's device). Returns how many files got a new epoch.
    pub(super) async fn expire_covers(&mut self) -> Result<u64> {
        if self.require_admin().is_err() {
            return Ok(0);
        }
        let now = now_ms();
        let due: Vec<u64> = self
            .roster()?
            .covers()
            .filter(|(_, c)| c.expired_unrotated(now))
            .map(|(seq, _)| seq)
            .collect();
        let mut files = 0;
        for id in due {
            match self.end_cover(id, &mut |_| {}).await {
                Ok(r) => files += r.files,
                // Another admin ended it first: their rotation covers it.
                Err(ClientError::NotAllowed(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(files)
    }

    /// Every absence cover of the firm, newest first.
    pub fn covers(&self) -> Result<Vec<CoverView>> {
        let r = self.roster()?;
        let now = now_ms();
        let name = |m: &MemberId| self.local.member_names.get(m).cloned();
        let mut out: Vec<CoverView> = r
            .covers()
            .map(|(id, c)| CoverView {
                id,
                absent: c.absent,
                absent_name: name(&c.absent),
                colleague: c.colleague,
                colleague_name: name(&c.colleague),
                from_ms: c.from_ms,
                until_ms: c.until_ms,
                ended_ms: c.ended_ms,
                state: if c.ended_ms.is_some() {
                    "ended"
                } else if c.expired_unrotated(now) {
                    "expired"
                } else if c.in_force(now) {
                    "active"
                } else {
                    "planned"
                },
                files: c.files.len(),
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    /// The members `colleague` covers for at `now_ms` (their tasks show to the colleague).
    pub fn covering_for(&self, colleague: MemberId, now_ms: u64) -> Result<Vec<MemberId>> {
        let r = self.roster()?;
        Ok(r.covers()
            .filter(|(_, c)| c.colleague == colleague && c.in_force(now_ms))
            .map(|(_, c)| c.absent)
            .filter(|m| r.member(m).is_some_and(|s| s.role != Role::Auditor))
            .collect())
    }
}
