//! Teams (`protocol-spec/roster.md`, "Teams"; `key-hierarchy.md`, "Team keys").
//!
//! Offices grant customer files to teams ("payroll", "VAT") rather than person by person.
//! A team's key is wrapped under the member key of each team member and each admin; a
//! file granted to the team has its epoch keys wrapped under the team key. Adding someone
//! to a team is one wrap of the team key; removing someone gives the team key a new
//! version and the team's files new epochs (through the offboarding rotation job, so an
//! interruption resumes). Team names never reach the relay: the roster holds a salted
//! commitment, the names travel to the firm's devices in the encrypted directory.

use super::offboard::Trigger;
use super::{ClientError, Profile, Result, RotationProgress, RotationReport, SyncReport};
use crate::transport::RelayError;
use ledgerline_protocol::ids::{FileId, MemberId, TeamId};
use ledgerline_protocol::keys::TeamKey;
use ledgerline_protocol::roster::{team_name_commitment, EventKind};
use ledgerline_protocol::wrap::{
    unwrap_epoch_key, unwrap_team_key, wrap_epoch_key, wrap_team_key, EpochKeyContext, Holder,
    TeamKeyContext,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Instant;

/// Longest team name, in bytes.
pub const TEAM_NAME_MAX: usize = 200;

/// A team's name with the salt of its roster commitment (kept locally, and sent to the
/// firm's devices in the encrypted directory).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct TeamName {
    pub(super) name: String,
    /// Hex, 16 bytes.
    pub(super) salt: String,
}

impl TeamName {
    /// Whether this name is the one the roster committed to for `team`.
    pub(super) fn matches(&self, team: &TeamId, commitment: &[u8; 32]) -> bool {
        let mut salt = [0u8; 16];
        hex::decode_to_slice(&self.salt, &mut salt).is_ok()
            && self.name.len() <= TEAM_NAME_MAX
            && team_name_commitment(team, &salt, &self.name) == *commitment
    }
}

/// A team as this profile shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TeamView {
    /// Id.
    pub id: TeamId,
    /// Name, once a directory carrying it (matching the roster) arrived.
    pub name: Option<String>,
    /// Members now.
    pub members: Vec<MemberId>,
    /// Customer files granted to the team now.
    pub files: Vec<FileId>,
}

fn check_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.len() > TEAM_NAME_MAX {
        return Err(ClientError::Invalid(format!(
            "a team name is 1 to {TEAM_NAME_MAX} bytes"
        )));
    }
    Ok(name)
}

impl Profile {
    pub(super) fn team_key(&self, team: TeamId, version: u32) -> Option<TeamKey> {
        self.local
            .team_keys
            .get(&format!("{team}:{version}"))
            .and_then(|v| super::key32(v))
            .map(|k| TeamKey::from_bytes(*k))
    }

    /// The newest key of `team` this profile holds.
    pub(super) fn newest_team_key(&self, team: TeamId) -> Option<(u32, TeamKey)> {
        let prefix = format!("{team}:");
        self.local
            .team_keys
            .iter()
            .filter_map(|(k, v)| {
                let version: u32 = k.strip_prefix(&prefix)?.parse().ok()?;
                Some((version, TeamKey::from_bytes(*super::key32(v)?)))
            })
            .max_by_key(|(v, _)| *v)
    }

    pub(super) fn set_team_key(&mut self, team: TeamId, version: u32, key: &TeamKey) {
        self.local
            .team_keys
            .insert(format!("{team}:{version}"), hex::encode(key.expose()));
    }

    /// Fetches this member's team-key wraps stored since the last fetch; a wrap whose
    /// member key has not arrived yet waits and is retried at every sync.
    pub(super) async fn sync_team_keys(&mut self, report: &mut SyncReport) -> Result<()> {
        let (wraps, next) = self
            .relay
            .team_keys(&self.account, self.local.team_keys_cursor)
            .await?;
        let mut waiting = std::mem::take(&mut self.local.team_pending);
        waiting.extend(wraps.into_iter().map(|w| {
            (
                w.team,
                w.version,
                w.member_key_version,
                hex::encode(w.wrapped),
            )
        }));
        let mut still = Vec::new();
        for (team, version, mkv, wrapped) in waiting {
            if self.team_key(team, version).is_some() {
                continue;
            }
            let Some(mk) = self.member_key_version(self.id.member, mkv) else {
                still.push((team, version, mkv, wrapped));
                continue;
            };
            let ctx = TeamKeyContext {
                firm: self.id.firm,
                team,
                team_key_version: version,
                member: self.id.member,
                member_key_version: mkv,
            };
            let opened = hex::decode(&wrapped)
                .map_err(|e| e.to_string())
                .and_then(|w| unwrap_team_key(&w, &mk, &ctx).map_err(|e| e.to_string()));
            match opened {
                Ok(k) => self.set_team_key(team, version, &k),
                Err(e) => report
                    .warnings
                    .push(format!("team key {team} v{version}: {e}")),
            }
        }
        self.local.team_pending = still;
        self.local.team_keys_cursor = next;
        Ok(())
    }

    /// Fetches and opens a file's epoch keys held by this member's teams that hold the
    /// file (before the chain links are walked, so history opens too).
    pub(super) async fn sync_team_file_keys(
        &mut self,
        file: FileId,
        report: &mut SyncReport,
    ) -> Result<()> {
        let r = self.roster()?;
        let teams: Vec<TeamId> = r
            .teams_of(&self.id.member)
            .intersection(&r.file_teams(&file))
            .copied()
            .collect();
        for team in teams {
            let since = self
                .local
                .files
                .get(&file)
                .and_then(|f| f.team_cursors.get(&team).copied())
                .unwrap_or(0);
            let (wraps, next) = self
                .relay
                .team_epoch_keys(&self.account, file, since, team)
                .await?;
            let state = self.local.files.entry(file).or_default();
            let mut waiting = std::mem::take(&mut state.team_pending);
            waiting.extend(
                wraps
                    .into_iter()
                    .map(|w| (team, w.epoch, w.version, hex::encode(&w.wrapped))),
            );
            state.team_cursors.insert(team, next);
            let mut still = Vec::new();
            for (t, epoch, version, wrapped) in waiting {
                if self.epoch_key(file, epoch).is_some() {
                    continue;
                }
                let Some(tk) = self.team_key(t, version) else {
                    report.warnings.push(format!(
                        "file {file} epoch {epoch}: key v{version} of team {t} not here yet"
                    ));
                    still.push((t, epoch, version, wrapped));
                    continue;
                };
                let ctx = EpochKeyContext {
                    firm: self.id.firm,
                    file,
                    epoch,
                    holder: Holder::Team(t),
                    holder_key_version: version,
                };
                let opened = hex::decode(&wrapped)
                    .map_err(|e| e.to_string())
                    .and_then(|w| unwrap_epoch_key(&w, &tk, &ctx).map_err(|e| e.to_string()));
                match opened {
                    Ok(k) => self.set_epoch_key(file, epoch, &k),
                    Err(e) => report
                        .warnings
                        .push(format!("file {file} epoch {epoch} (team {t}): {e}")),
                }
            }
            if let Some(f) = self.local.files.get_mut(&file) {
                f.team_pending = still;
            }
        }
        Ok(())
    }

    /// An admin's way to a file's newest epoch key through a team that holds it (the
    /// admin holds every team key).
    pub(super) async fn recover_epoch_through_teams(
        &mut self,
        file: FileId,
        newest: u64,
    ) -> Result<bool> {
        let teams = self.roster()?.file_teams(&file);
        for team in teams {
            let (wraps, _) = self
                .relay
                .team_epoch_keys(&self.account, file, 0, team)
                .await?;
            for w in wraps.iter().filter(|w| w.epoch == newest) {
                let Some(tk) = self.team_key(team, w.version) else {
                    continue;
                };
                let ctx = EpochKeyContext {
                    firm: self.id.firm,
                    file,
                    epoch: newest,
                    holder: Holder::Team(team),
                    holder_key_version: w.version,
                };
                if let Ok(k) = unwrap_epoch_key(&w.wrapped, &tk, &ctx) {
                    self.set_epoch_key(file, newest, &k);
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Resolves a team by its id or its name.
    pub fn resolve_team(&self, name_or_id: &str) -> Result<TeamId> {
        let r = self.roster()?;
        if let Ok(id) = name_or_id.parse::<TeamId>() {
            if r.team(&id).is_some() {
                return Ok(id);
            }
        }
        let hits: Vec<TeamId> = self
            .teams()?
            .into_iter()
            .filter(|t| t.name.as_deref() == Some(name_or_id.trim()))
            .map(|t| t.id)
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(ClientError::NotFound(format!(
                "no team named {name_or_id:?} (see `ledgerline team list`)"
            ))),
            _ => Err(ClientError::Invalid(format!(
                "several teams are named {name_or_id:?}: use the id"
            ))),
        }
    }

    /// The firm's teams now (deleted ones left out), with the names this profile knows.
    pub fn teams(&self) -> Result<Vec<TeamView>> {
        let r = self.roster()?;
        Ok(r.teams()
            .filter(|(_, t)| t.active.until.is_none())
            .map(|(id, t)| TeamView {
                id: *id,
                name: self
                    .local
                    .team_names
                    .get(id)
                    .filter(|n| n.matches(id, &t.name))
                    .map(|n| n.name.clone()),
                members: r.team_members(id).into_iter().collect(),
                files: r.files_of_team(id).into_iter().collect(),
            })
            .collect())
    }

    /// Creates a team (admin): the roster event with the name's commitment, the team's
    /// first key for the admins, and the name to every device of the firm.
    pub async fn create_team(&mut self, name: &str) -> Result<TeamId> {
        self.require_admin()?;
        let name = check_name(name)?.to_owned();
        self.sync_roster(&mut SyncReport::default()).await?;
        if self
            .teams()?
            .iter()
            .any(|t| t.name.as_deref() == Some(name.as_str()))
        {
            return Err(ClientError::Invalid(format!(
                "a team named {name:?} exists already"
            )));
        }
        let team = TeamId::random(&mut OsRng);
        let named = self.name_team(team, &name);
        self.append(EventKind::TeamCreated { team, name: named })
            .await?;
        self.commit()?;
        self.ensure_team_key(team).await?;
        self.announce_team(team)?;
        self.commit()?;
        self.flush_private(&mut SyncReport::default()).await?;
        Ok(team)
    }

    /// Renames a team (admin).
    pub async fn rename_team(&mut self, team: TeamId, name: &str) -> Result<()> {
        self.require_admin()?;
        let name = check_name(name)?.to_owned();
        self.sync_roster(&mut SyncReport::default()).await?;
        let named = self.name_team(team, &name);
        self.append(EventKind::TeamRenamed { team, name: named })
            .await?;
        self.announce_team(team)?;
        self.commit()?;
        self.flush_private(&mut SyncReport::default()).await
    }

    /// A fresh salt and commitment for `name`, kept locally.
    fn name_team(&mut self, team: TeamId, name: &str) -> [u8; 32] {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        self.local.team_names.insert(
            team,
            TeamName {
                name: name.to_owned(),
                salt: hex::encode(salt),
            },
        );
        team_name_commitment(&team, &salt, name)
    }

    /// Tells every other device of the firm the team's name.
    fn announce_team(&mut self, team: TeamId) -> Result<()> {
        let Some(name) = self.local.team_names.get(&team).cloned() else {
            return Ok(());
        };
        let devices: Vec<_> = self
            .roster()?
            .all_active_devices()
            .into_iter()
            .filter(|d| *d != self.id.device)
            .collect();
        for d in devices {
            self.queue_directory(d, Default::default(), [(team, name.clone())].into(), None);
        }
        Ok(())
    }

    /// The team's newest key, made (version 1, for its key holders) if the relay has
    /// none yet — a crash after the roster event and before the key is recovered here.
    async fn ensure_team_key(&mut self, team: TeamId) -> Result<(u32, TeamKey)> {
        self.sync_team_keys(&mut SyncReport::default()).await?;
        if let Some(k) = self.newest_team_key(team) {
            return Ok(k);
        }
        let key = TeamKey::generate(&mut OsRng);
        match self.put_team_key_version(team, 1, &key).await {
            Ok(()) => {}
            Err(ClientError::Relay(RelayError::Refused { code, .. }))
                if code == "team_key_version" =>
            {
                // Another admin made it meanwhile.
                self.sync_team_keys(&mut SyncReport::default()).await?;
                return self.newest_team_key(team).ok_or_else(|| {
                    ClientError::NotFound(format!("no key of team {team} reached this device"))
                });
            }
            Err(e) => return Err(e),
        }
        self.set_team_key(team, 1, &key);
        self.commit()?;
        Ok((1, key))
    }

    /// Stores version `version` of a team's key for exactly its key holders now (its
    /// members and the admins), each under their newest member key.
    pub(super) async fn put_team_key_version(
        &self,
        team: TeamId,
        version: u32,
        key: &TeamKey,
    ) -> Result<()> {
        let mut wraps = Vec::new();
        for m in self.roster()?.team_key_holders(&team) {
            let (mkv, mk) = self.member_key(m).ok_or_else(|| {
                ClientError::NotFound(format!("no member key of {m} here (escrow missing)"))
            })?;
            let ctx = TeamKeyContext {
                firm: self.id.firm,
                team,
                team_key_version: version,
                member: m,
                member_key_version: mkv,
            };
            wraps.push((m, mkv, wrap_team_key(key, &mk, &ctx, &mut OsRng)));
        }
        if wraps.is_empty() {
            return Err(ClientError::NotFound(format!(
                "team {team} is not in the roster or was deleted"
            )));
        }
        Ok(self
            .relay
            .put_team_key_version(&self.account, team, version, &wraps)
            .await?)
    }

    /// After a relay restore (admins): every team key version this device holds that the
    /// relay lost goes again, in order, for the team's key holders now; the newest one is
    /// wrapped again for each holder (a member added after the backup). Returns how many
    /// versions and wraps went.
    pub(super) async fn restore_team_keys(&mut self) -> Result<usize> {
        let mut sent = 0;
        let teams: Vec<TeamId> = self.teams()?.into_iter().map(|t| t.id).collect();
        for team in teams {
            let Some((newest, newest_key)) = self.newest_team_key(team) else {
                continue;
            };
            for version in 1..=newest {
                let Some(key) = self.team_key(team, version) else {
                    continue;
                };
                match self.put_team_key_version(team, version, &key).await {
                    Ok(()) => sent += 1,
                    // There already; or a team deleted meanwhile.
                    Err(ClientError::Relay(RelayError::Refused { code, .. }))
                        if code == "team_key_version" => {}
                    Err(ClientError::NotFound(_)) => break,
                    Err(e) => return Err(e),
                }
            }
            for member in self.roster()?.team_key_holders(&team) {
                let Some((mkv, mk)) = self.member_key(member) else {
                    continue;
                };
                let ctx = TeamKeyContext {
                    firm: self.id.firm,
                    team,
                    team_key_version: newest,
                    member,
                    member_key_version: mkv,
                };
                let wrapped = wrap_team_key(&newest_key, &mk, &ctx, &mut OsRng);
                match self
                    .relay
                    .put_team_key(&self.account, team, newest, member, mkv, &wrapped)
                    .await
                {
                    Ok(()) => sent += 1,
                    // A rotation due (the relay wants a newer team key first): left to it.
                    Err(RelayError::Refused { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(sent)
    }

    /// Wraps every team's newest key for `member` (a new admin).
    pub(super) async fn share_team_keys_with(&mut self, member: MemberId) -> Result<()> {
        self.sync_team_keys(&mut SyncReport::default()).await?;
        let (mkv, mk) = self.member_key(member).ok_or_else(|| {
            ClientError::NotFound(format!("no member key of {member} here (escrow missing)"))
        })?;
        let teams: Vec<TeamId> = self.teams()?.into_iter().map(|t| t.id).collect();
        for team in teams {
            let Some((version, tk)) = self.newest_team_key(team) else {
                continue;
            };
            let ctx = TeamKeyContext {
                firm: self.id.firm,
                team,
                team_key_version: version,
                member,
                member_key_version: mkv,
            };
            let wrapped = wrap_team_key(&tk, &mk, &ctx, &mut OsRng);
            self.relay
                .put_team_key(&self.account, team, version, member, mkv, &wrapped)
                .await?;
        }
        Ok(())
    }

    /// Adds `member` to `team` (admin): the roster event, the team's newest key wrapped
    /// for them, and the conversations of the team's files so far for their devices.
    pub async fn team_add(&mut self, team: TeamId, member: MemberId) -> Result<()> {
        self.require_admin()?;
        self.sync_roster(&mut SyncReport::default()).await?;
        let (version, tk) = self.ensure_team_key(team).await?;
        let (mkv, mk) = self.member_key(member).ok_or_else(|| {
            ClientError::NotFound(format!("no member key of {member} here (escrow missing)"))
        })?;
        if !self.roster()?.team_members(&team).contains(&member) {
            self.append(EventKind::TeamMemberAdded { team, member })
                .await?;
        }
        let ctx = TeamKeyContext {
            firm: self.id.firm,
            team,
            team_key_version: version,
            member,
            member_key_version: mkv,
        };
        let wrapped = wrap_team_key(&tk, &mk, &ctx, &mut OsRng);
        self.relay
            .put_team_key(&self.account, team, version, member, mkv, &wrapped)
            .await?;
        for file in self.roster()?.files_of_team(&team) {
            self.forward_history(file, member)?;
        }
        self.commit()?;
        self.flush_private(&mut SyncReport::default()).await
    }

    /// Gives `team` access to `file` (admin): the roster event, then the file's current
    /// epoch key wrapped under the team's newest key, and the conversation so far for the
    /// team's members.
    pub async fn grant_team(&mut self, file: FileId, team: TeamId) -> Result<()> {
        self.require_admin()?;
        self.sync_roster(&mut SyncReport::default()).await?;
        if self.current_epoch(file).is_none() {
            self.recover_epoch(file).await?;
        }
        let (epoch, ek) = self.current_epoch(file).ok_or_else(|| {
            ClientError::NotAllowed("this profile holds no key for the file".into())
        })?;
        let (version, tk) = self.ensure_team_key(team).await?;
        if !self.roster()?.file_teams(&file).contains(&team) {
            self.append(EventKind::FileTeamGranted { file, team })
                .await?;
        }
        let ctx = EpochKeyContext {
            firm: self.id.firm,
            file,
            epoch,
            holder: Holder::Team(team),
            holder_key_version: version,
        };
        let wrapped = wrap_epoch_key(&ek, &tk, &ctx, &mut OsRng);
        self.relay
            .put_team_epoch_key(&self.account, file, epoch, team, version, &wrapped)
            .await?;
        for member in self.roster()?.team_members(&team) {
            self.forward_history(file, member)?;
        }
        self.commit()?;
        self.flush_private(&mut SyncReport::default()).await
    }

    /// Removes `member` from `team` (admin): the roster event, a new version of the team's
    /// key for the rest, new epochs of the team's files the member keeps no other way.
    pub async fn team_remove(
        &mut self,
        team: TeamId,
        member: MemberId,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        self.team_change(Trigger::TeamMemberRemoved(team, member), progress)
            .await
    }

    /// Ends `team`'s access to `file` (admin): the roster event, a new epoch of the file
    /// for its remaining holders.
    pub async fn ungrant_team(
        &mut self,
        file: FileId,
        team: TeamId,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        self.team_change(Trigger::FileTeamRemoved(file, team), progress)
            .await
    }

    /// Deletes `team` (admin): its memberships and grants end; files its members keep no
    /// other way get new epochs.
    pub async fn delete_team(
        &mut self,
        team: TeamId,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        self.team_change(Trigger::TeamDeleted(team), progress).await
    }

    async fn team_change(
        &mut self,
        trigger: Trigger,
        progress: &mut dyn FnMut(&RotationProgress),
    ) -> Result<RotationReport> {
        let start = Instant::now();
        self.require_admin()?;
        self.sync_roster(&mut SyncReport::default()).await?;
        self.sync_team_keys(&mut SyncReport::default()).await?;
        let event = trigger.event();
        self.check_event(event.clone())?;
        let r = self.roster()?;
        let (_, files) = r.exposed_by(&event);
        let teams = r.teams_exposed_by(&event);
        self.plan_rotation(trigger, &BTreeSet::new(), &teams, files)
            .await?;
        let sent = self.relay.requests_sent();
        let mut report = RotationReport::default();
        self.run_rotation(progress, &mut report).await?;
        report.total_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        report.requests = self.relay.requests_sent() - sent;
        Ok(report)
    }
}
