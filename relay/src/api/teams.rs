//! Team keys and team-held epoch keys (`protocol-spec/key-hierarchy.md`, "Team keys";
//! `relay-api.md`, "Wrapped keys").
//!
//! The roster says who is in a team and which files it holds; the relay stores the team's
//! key wrapped for each holder (the team's members and the admins) and the files' epoch
//! keys wrapped under the team key, and hands each only to whom the roster allows now.

use super::*;
use crate::store::TeamKeyWrap;

/// A team's wraps of a file's epoch keys are for the team's members while the team holds
/// the file, and for admins (who hold every team key, to wrap new epochs under it).
pub(super) fn require_team_file_access<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    file: FileId,
    team: TeamId,
) -> Result<(), ApiError> {
    require_not_erased(state, c.firm, file)?;
    let allowed = with_roster(state, c.firm, |r| {
        r.file_teams(&file).contains(&team)
            && (c.role == Role::Admin || r.team_members(&team).contains(&c.member))
    })?;
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not a member of a team that holds this customer file",
        ))
    }
}

fn require_admin(c: &Caller) -> Result<(), ApiError> {
    if c.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("only an admin manages team keys"))
    }
}

fn check_len(wrapped: &[u8]) -> Result<(), ApiError> {
    if wrapped.len() == SYMMETRIC_WRAP_LEN {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "bad_wrapped_key",
            format!("a wrapped team key is {SYMMETRIC_WRAP_LEN} bytes"),
        ))
    }
}

fn team_key_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::VersionConflict { current } => ApiError::conflict(
            "team_key_version",
            format!("the team's newest key version is {current}"),
        ),
        StoreError::Exists => ApiError::bad_request("bad_holders", "a holder is named twice"),
        other => store_err(other),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldersQuery {
    /// `MEMBER.VERSION` (member-key version) of every holder, in member order.
    holders: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TeamKeyVersion {
    wraps: Vec<TeamWrap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TeamWrap {
    member: MemberId,
    member_key_version: u32,
    wrapped: Hex,
}

/// `PUT /v1/teams/{team}/keys/{version}?holders=M.V,…`: a new version of a team's key,
/// wrapped for exactly the team's key holders now, all or nothing.
pub(super) async fn put_team_key_version<S: Store>(
    State(state): State<AppState<S>>,
    P((team, version)): P<(TeamId, u32)>,
    Q(q): Q<HoldersQuery>,
    s: SignedJson<TeamKeyVersion>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    require_admin(c)?;
    let holders: Vec<(MemberId, u32)> = parse_holders(&q.holders)?;
    let expected: Vec<MemberId> = with_roster(&state, c.firm, |r| r.team_key_holders(&team))?
        .into_iter()
        .collect();
    if expected.is_empty() {
        return Err(ApiError::not_found("no such team"));
    }
    if holders.iter().map(|(m, _)| *m).ne(expected.iter().copied()) {
        return Err(ApiError::conflict(
            "holders_changed",
            "the holders must be exactly the team's members and the firm's admins now: fetch the roster and retry",
        ));
    }
    let body = s.body;
    if body
        .wraps
        .iter()
        .map(|w| (w.member, w.member_key_version))
        .ne(holders.iter().copied())
    {
        return Err(ApiError::bad_request(
            "bad_holders",
            "the wraps must match the holders in the path, in order",
        ));
    }
    for w in &body.wraps {
        check_len(&w.wrapped.0)?;
    }
    let wraps = body
        .wraps
        .into_iter()
        .map(|w| TeamKeyWrap {
            team,
            version,
            member: w.member,
            member_key_version: w.member_key_version,
            wrapped: w.wrapped.0,
        })
        .collect();
    state
        .store
        .put_team_key_version(
            c.firm,
            team,
            version,
            wraps,
            entry(c, state.now_ms(), &[(SubjectKind::Team, team.0)]),
        )
        .await
        .map_err(team_key_conflict)?;
    push_team_key(&state, c.firm, expected, team, version)
}

/// Tells `holders`' devices a version of `team`'s key is there for them.
fn push_team_key<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    holders: Vec<MemberId>,
    team: TeamId,
    version: u32,
) -> Result<StatusCode, ApiError> {
    let devices = devices_of(state, firm, holders)?;
    push_to(
        state,
        firm,
        &devices,
        &json!({ "type": "team_key", "team": team, "version": version }),
    );
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OneTeamWrap {
    member_key_version: u32,
    wrapped: Hex,
}

/// `PUT /v1/teams/{team}/keys/{version}/{member}`: the newest team key for one holder
/// (a member who joined the team, an admin who did not hold it).
pub(super) async fn put_team_key_wrap<S: Store>(
    State(state): State<AppState<S>>,
    P((team, version, member)): P<(TeamId, u32, MemberId)>,
    s: SignedJson<OneTeamWrap>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    require_admin(c)?;
    if !with_roster(&state, c.firm, |r| {
        r.team_key_holders(&team).contains(&member)
    })? {
        return Err(ApiError::forbidden(
            "the holder is neither a member of the team nor an admin",
        ));
    }
    check_len(&s.body.wrapped.0)?;
    let w = TeamKeyWrap {
        team,
        version,
        member,
        member_key_version: s.body.member_key_version,
        wrapped: s.body.wrapped.0,
    };
    state
        .store
        .put_team_key_wrap(
            c.firm,
            w,
            entry(
                c,
                state.now_ms(),
                &[(SubjectKind::Member, member.0), (SubjectKind::Team, team.0)],
            ),
        )
        .await
        .map_err(team_key_conflict)?;
    push_team_key(&state, c.firm, vec![member], team, version)
}

/// `GET /v1/teams/keys?since=CURSOR`: the caller's member's team-key wraps stored at or
/// after the cursor, of the teams whose key the member holds now.
pub(super) async fn get_team_keys<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<Since>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    let since = q.since.unwrap_or(0);
    let all = state
        .store
        .team_key_wraps_for(c.firm, c.member, since)
        .await
        .map_err(store_err)?;
    let next = next_cursor(since, all.iter().map(|(cur, _)| *cur));
    let wraps: Vec<TeamKeyWrap> = with_roster(&state, c.firm, |r| {
        all.into_iter()
            .map(|(_, w)| w)
            .filter(|w| r.team_key_holders(&w.team).contains(&c.member))
            .collect()
    })?;
    if !wraps.is_empty() {
        log_read(&state, c, &[(SubjectKind::Device, c.device.0)]).await?;
    }
    let wraps: Vec<_> = wraps
        .into_iter()
        .map(|w| json!({ "team": w.team, "version": w.version, "member_key_version": w.member_key_version, "wrapped": hex::encode(w.wrapped) }))
        .collect();
    Ok(Json(json!({ "wraps": wraps, "next": next })))
}

/// `PUT /v1/files/{file}/epochs/{epoch}/teams/{team}`: a file's epoch key wrapped under
/// the key of a team that holds the file (when the file is granted to the team), under the
/// team's newest key version.
pub(super) async fn put_team_epoch_key<S: Store>(
    State(state): State<AppState<S>>,
    P((file, epoch, team)): P<(FileId, u64, TeamId)>,
    s: SignedJson<PutEpochKey>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    require_file_access_or_admin(&state, c, file)?;
    if !with_roster(&state, c.firm, |r| r.file_teams(&file).contains(&team))? {
        return Err(ApiError::forbidden(
            "the team has no access to this customer file",
        ));
    }
    let members = with_roster(&state, c.firm, |r| r.team_members(&team))?;
    store_epoch_wrap(
        &state,
        c,
        file,
        epoch,
        Holder::Team(team),
        s.body,
        members.into_iter().collect(),
    )
    .await
}
