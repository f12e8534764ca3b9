//! The admin's commands: members and devices, invitations and approval, file access,
//! revocation (plan, then progress as `revoke-progress` events) and absence cover.

use crate::commands::{file_id, with, Answer, Desk, Failure};
use ledgerline_client_core::profile::{
    parse_role, CoverView, DeviceView, InvitationView, MemberView, Profile, RevocationPlan,
    RotationProgress, RotationReport, TeamView,
};
use ledgerline_client_core::protocol::ids::MemberId;
use serde::Serialize;
use tauri::{AppHandle, Emitter, State};

/// A member with their devices, as the admin view lists them.
#[derive(Debug, Serialize)]
pub struct MemberRow {
    /// The member.
    #[serde(flatten)]
    pub member: MemberView,
    /// Their devices.
    pub devices: Vec<DeviceView>,
    /// Customer files they can open now.
    pub files: usize,
}

/// What the admin view shows.
#[derive(Debug, Serialize)]
pub struct Office {
    /// Whether this member is an admin (the view is read-only otherwise).
    pub admin: bool,
    /// Members, newest last.
    pub members: Vec<MemberRow>,
    /// Open invitations.
    pub invitations: Vec<InvitationView>,
    /// Customer files with who can open them.
    pub files: Vec<FileAccess>,
    /// Absence covers.
    pub covers: Vec<CoverView>,
    /// Teams, their members and files.
    pub teams: Vec<TeamView>,
    /// What an interrupted rotation left to do, if anything.
    pub rotation_pending: Option<RotationProgress>,
}

/// A customer file and its members.
#[derive(Debug, Serialize)]
pub struct FileAccess {
    /// The file.
    pub id: String,
    /// Its name, where this device knows it.
    pub name: Option<String>,
    /// Members with access (granted, through a team, or covering).
    pub members: Vec<MemberId>,
    /// Members granted it themselves: the ones an admin removes here.
    pub granted: Vec<MemberId>,
    /// Teams granted it.
    pub teams: Vec<String>,
}

/// A rotation's progress, sent to the window as `revoke-progress` events.
fn rotation_progress(app: &AppHandle) -> impl FnMut(&RotationProgress) + '_ {
    move |r| {
        let _ = app.emit("revoke-progress", r);
    }
}

fn member_id(
    p: &Profile,
    m: &str,
) -> Result<MemberId, ledgerline_client_core::profile::ClientError> {
    p.resolve_member(m)
}

/// Members, devices, invitations, file access and covers (after catching up).
#[tauri::command]
pub async fn office(desk: State<'_, Desk>) -> Answer<Office> {
    with(&desk, async |p: &mut Profile| {
        p.sync().await?;
        let devices = p.devices()?;
        let files = p.files()?;
        let members = p
            .members()?
            .into_iter()
            .map(|m| MemberRow {
                devices: devices
                    .iter()
                    .filter(|d| d.member == m.id)
                    .cloned()
                    .collect(),
                files: files.iter().filter(|f| f.members.contains(&m.id)).count(),
                member: m,
            })
            .collect::<Vec<_>>();
        let admin = members
            .iter()
            .any(|m| m.member.me && m.member.role == "admin" && m.member.active);
        Ok(Office {
            admin,
            invitations: if admin { p.invitations() } else { Vec::new() },
            files: files
                .into_iter()
                .map(|f| FileAccess {
                    id: f.id.to_string(),
                    name: f.name,
                    members: f.members,
                    granted: f.granted,
                    teams: f.teams.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            covers: p.covers()?,
            teams: p.teams()?,
            rotation_pending: p.rotation_pending(),
            members,
        })
    })
    .await
}

/// Issues an invitation for `name` as `role`; returns the one-time code.
#[tauri::command]
pub async fn invite(desk: State<'_, Desk>, name: String, role: String) -> Answer<String> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(Failure::invalid(
            "name_needed",
            "the new member's name is needed",
        ));
    }
    let role = parse_role(&role)
        .ok_or_else(|| Failure::invalid("role", "a role is admin, member or auditor"))?;
    with(&desk, async move |p: &mut Profile| {
        p.invite(&name, role).await
    })
    .await
}

/// Approves the joiner `name` after comparing the fingerprint they read out.
#[tauri::command]
pub async fn approve(desk: State<'_, Desk>, name: String, fingerprint: String) -> Answer<String> {
    with(&desk, async move |p: &mut Profile| {
        p.approve(name.trim(), fingerprint.trim())
            .await
            .map(|m| m.to_string())
    })
    .await
}

/// Gives a member access to a customer file.
#[tauri::command]
pub async fn grant(desk: State<'_, Desk>, file: String, member: String) -> Answer<()> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        let m = member_id(p, &member)?;
        p.grant(file, m).await
    })
    .await
}

/// Ends a member's access to a customer file (the file gets a new epoch).
#[tauri::command]
pub async fn remove_access(desk: State<'_, Desk>, file: String, member: String) -> Answer<u64> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        let m = member_id(p, &member)?;
        p.remove(file, m).await
    })
    .await
}

/// Creates a team; returns its id.
#[tauri::command]
pub async fn team_create(desk: State<'_, Desk>, name: String) -> Answer<String> {
    with(&desk, async move |p: &mut Profile| {
        p.create_team(&name).await.map(|t| t.to_string())
    })
    .await
}

/// Adds a member to a team (they read its files, history included).
#[tauri::command]
pub async fn team_add(desk: State<'_, Desk>, team: String, member: String) -> Answer<()> {
    with(&desk, async move |p: &mut Profile| {
        let (t, m) = (p.resolve_team(&team)?, member_id(p, &member)?);
        p.team_add(t, m).await
    })
    .await
}

/// Takes a member out of a team: the team key and the files they keep no other way are
/// rotated; progress as `revoke-progress` events.
#[tauri::command]
pub async fn team_remove(
    app: AppHandle,
    desk: State<'_, Desk>,
    team: String,
    member: String,
) -> Answer<RotationReport> {
    with(&desk, async move |p: &mut Profile| {
        let (t, m) = (p.resolve_team(&team)?, member_id(p, &member)?);
        let mut progress = rotation_progress(&app);
        p.team_remove(t, m, &mut progress).await
    })
    .await
}

/// Gives a team access to a customer file.
#[tauri::command]
pub async fn team_grant(desk: State<'_, Desk>, file: String, team: String) -> Answer<()> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        let t = p.resolve_team(&team)?;
        p.grant_team(file, t).await
    })
    .await
}

/// What revoking `member` would rotate: shown for confirmation, nothing sent.
#[tauri::command]
pub async fn revoke_plan(desk: State<'_, Desk>, member: String) -> Answer<RevocationPlan> {
    with(&desk, async move |p: &mut Profile| {
        p.sync().await?;
        let m = member_id(p, &member)?;
        p.revocation_plan(m)
    })
    .await
}

/// Revokes `member`: the relay refuses their devices at once, then every key they could
/// open is replaced. Progress goes to the window as `revoke-progress` events.
#[tauri::command]
pub async fn revoke(
    app: AppHandle,
    desk: State<'_, Desk>,
    member: String,
) -> Answer<RotationReport> {
    with(&desk, async move |p: &mut Profile| {
        let m = member_id(p, &member)?;
        let mut progress = rotation_progress(&app);
        p.revoke_member(m, &mut progress).await
    })
    .await
}

/// Revokes one device (a lost or stolen laptop): its member stays, with a new member
/// key; the files it could open get new epochs. Progress as `revoke-progress` events.
#[tauri::command]
pub async fn revoke_device(
    app: AppHandle,
    desk: State<'_, Desk>,
    device: String,
) -> Answer<RotationReport> {
    with(&desk, async move |p: &mut Profile| {
        let d = p.resolve_device(&device)?;
        let mut progress = rotation_progress(&app);
        p.revoke_device(d, &mut progress).await
    })
    .await
}

/// Lets `colleague` open `absent`'s files from `from` until `until` (both `YYYY-MM-DD`,
/// Warsaw days; `until` inclusive).
#[tauri::command]
pub async fn cover_grant(
    desk: State<'_, Desk>,
    absent: String,
    colleague: String,
    from: String,
    until: String,
) -> Answer<u64> {
    use ledgerline_client_core::when::{parse, DateMeans, DEFAULT_ZONE};
    let day = |e| Failure::invalid("day", e);
    let from_ms = parse(&from, DEFAULT_ZONE, DateMeans::StartOfDay).map_err(day)?;
    let until_ms = parse(&until, DEFAULT_ZONE, DateMeans::EndOfDay).map_err(day)?;
    if until_ms <= from_ms {
        return Err(Failure::invalid(
            "cover_order",
            "the cover ends before it starts",
        ));
    }
    with(&desk, async move |p: &mut Profile| {
        let a = member_id(p, &absent)?;
        let c = member_id(p, &colleague)?;
        p.grant_cover(a, c, from_ms, until_ms).await.map(|g| g.id)
    })
    .await
}

/// Ends a cover now (its files get new epochs).
#[tauri::command]
pub async fn cover_end(app: AppHandle, desk: State<'_, Desk>, id: u64) -> Answer<RotationReport> {
    with(&desk, async move |p: &mut Profile| {
        let mut progress = rotation_progress(&app);
        p.end_cover(id, &mut progress).await
    })
    .await
}
