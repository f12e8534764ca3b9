//! The HTTP and WebSocket API (`protocol-spec/relay-api.md`).

use crate::auth::{parse_json, read_body, Caller, Signed, SignedJson, SignedUpload, P, Q};
use crate::blobs::{Blobs, BucketWriter, FileSink};
use crate::error::ApiError;
use crate::hub::Push;
use crate::state::{AppState, FirmState};
use crate::store::{
    EpochKeyWrap, Holder, MemberKeyWrap, Room, RoomId, RotationDue, Store, StoreError,
};
use axum::body::Body;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use ledgerline_protocol::audit::{AuditLeaf, Subject, SubjectKind};
use ledgerline_protocol::constants::{
    DOCUMENT_PARTS_IN_FLIGHT, DOCUMENT_PART_MAX, DOCUMENT_PART_MIN, TAG_SIZE,
};
use ledgerline_protocol::document::{parts_root, CONVERSATION_EPOCH, HEADER_LEN};
use ledgerline_protocol::history;
use ledgerline_protocol::ids::{DeviceId, DocumentId, FileId, FirmId, MemberId, RecordId, TeamId};
use ledgerline_protocol::prekeys::SignedPrekey;
use ledgerline_protocol::record::RecordEnvelope;
use ledgerline_protocol::roster::{
    conversation_room, EventKind, Role, Roster, RosterError, RosterEvent,
};
use ledgerline_protocol::wrap::{MEMBER_KEY_WRAP_LEN, SYMMETRIC_WRAP_LEN};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Header carrying a document's release share on upload (hex); its SHA-256 is in the
/// signed query string.
pub const RELEASE_SHARE_HEADER: &str = ledgerline_protocol::constants::headers::RELEASE_SHARE;
/// Default page length of list endpoints.
const DEFAULT_PAGE: u32 = 100;

mod audit;
mod backup;
mod teams;

/// Decodes `data` as every JSON request body the relay accepts, the way a handler does
/// (`parse_json`): malformed input is an error, never a panic. The body of the fuzz target
/// `relay_bodies` and of its CI replay (`tests/rejections.rs`); not part of the API.
#[doc(hidden)]
pub fn decode_request_bodies(data: &[u8]) {
    fn one<T: serde::de::DeserializeOwned>(data: &[u8]) {
        let _ = parse_json::<T>(data);
    }
    one::<AppendEvent>(data);
    one::<PutPrekeys>(data);
    one::<Claim>(data);
    one::<SendToDevice>(data);
    one::<Ack>(data);
    one::<CreateRoom>(data);
    one::<RoomMembers>(data);
    one::<SendMessage>(data);
    one::<PutRecord>(data);
    one::<Wrapped>(data);
    one::<PutEpochKey>(data);
    one::<StartEpoch>(data);
    one::<BeginUpload>(data);
    one::<CompleteUpload>(data);
    one::<CreateInvite>(data);
    one::<audit::Cosigned>(data);
    one::<backup::PutKey>(data);
    one::<backup::PutItems>(data);
    one::<backup::PutEscrow>(data);
    one::<teams::TeamKeyVersion>(data);
    one::<teams::OneTeamWrap>(data);
}

/// The relay's routes.
pub fn router<S: Store>(state: AppState<S>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::<S>))
        .route("/v1/firms", post(create_firm::<S>))
        .route("/v1/roster", get(get_roster::<S>).post(append_roster::<S>))
        .route("/v1/devices/self/prekeys", put(put_prekeys::<S>))
        .route("/v1/prekeys/claim", post(claim_prekeys::<S>))
        .route(
            "/v1/to-device",
            post(send_to_device::<S>).get(get_to_device::<S>),
        )
        .route("/v1/to-device/ack", post(ack_to_device::<S>))
        .route("/v1/rooms", post(create_room::<S>))
        .route("/v1/rooms/{room}", get(get_room::<S>))
        .route("/v1/rooms/{room}/members", put(set_room_members::<S>))
        .route(
            "/v1/rooms/{room}/messages",
            post(send_message::<S>).get(get_messages::<S>),
        )
        .route("/v1/files/{file}", delete(erase_file::<S>))
        .route("/v1/files/{file}/records", get(get_records::<S>))
        .route("/v1/files/{file}/records/{record}", put(put_record::<S>))
        .route(
            "/v1/members/{member}/keys/{version}/{device}",
            put(put_member_key::<S>),
        )
        .route("/v1/devices/self/member-keys", get(get_member_keys::<S>))
        .route("/v1/files/{file}/epochs/keys", get(get_epoch_keys::<S>))
        .route("/v1/files/{file}/epochs/links", get(get_epoch_links::<S>))
        .route(
            "/v1/files/{file}/epochs/{epoch}/keys/{member}",
            put(put_epoch_key::<S>),
        )
        .route("/v1/files/{file}/epochs/{epoch}", put(start_epoch::<S>))
        .route(
            "/v1/files/{file}/epochs/{epoch}/teams/{team}",
            put(teams::put_team_epoch_key::<S>),
        )
        .route("/v1/teams/keys", get(teams::get_team_keys::<S>))
        .route(
            "/v1/teams/{team}/keys/{version}",
            put(teams::put_team_key_version::<S>),
        )
        .route(
            "/v1/teams/{team}/keys/{version}/{member}",
            put(teams::put_team_key_wrap::<S>),
        )
        .route(
            "/v1/files/{file}/documents/{document}",
            put(upload_document::<S>).get(download_document::<S>),
        )
        .route(
            "/v1/files/{file}/uploads/{document}",
            post(begin_upload::<S>),
        )
        .route(
            "/v1/files/{file}/uploads/{document}/parts/{n}",
            put(put_upload_part::<S>),
        )
        .route(
            "/v1/files/{file}/uploads/{document}/complete",
            post(complete_upload::<S>),
        )
        .route(
            "/v1/files/{file}/documents/{document}/release",
            post(release_document::<S>),
        )
        .route("/v1/audit/checkpoint", get(audit::get_checkpoint::<S>))
        .route("/v1/audit/entries", get(audit::get_entries::<S>))
        .route("/v1/audit/inclusion", get(audit::get_inclusion::<S>))
        .route("/v1/audit/consistency", get(audit::get_consistency::<S>))
        .route("/v1/audit/opened", post(audit::post_opened::<S>))
        .route(
            "/v1/audit/cosignatures",
            get(audit::get_cosigned::<S>).post(audit::post_cosignature::<S>),
        )
        .route("/v1/invites", post(create_invite::<S>))
        .route(
            "/v1/invites/{invite}",
            get(get_invite::<S>).delete(delete_invite::<S>),
        )
        .route(
            "/v1/invites/{invite}/requests",
            post(post_join_request::<S>).get(get_join_requests::<S>),
        )
        .route(
            "/v1/backup/key",
            get(backup::get_backup_key::<S>).put(backup::put_backup_key::<S>),
        )
        .route(
            "/v1/backup/items",
            get(backup::get_items::<S>).put(backup::put_items::<S>),
        )
        .route("/v1/backup/escrow", put(backup::put_escrow::<S>))
        .route("/v1/backup/escrow/{member}", get(backup::get_escrow::<S>))
        .route("/v1/recovery/{id}", get(backup::get_recovery::<S>))
        .route("/v1/recovery/{id}/device", post(backup::post_device::<S>))
        .route("/v1/ws", get(websocket::<S>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe::<S>))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// Metrics and a log line per request: route template, method, status, latency. Never
/// the concrete path, the body or any header value.
async fn observe<S: Store>(State(state): State<AppState<S>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    state
        .metrics
        .requests
        .get_or_create(&crate::metrics::RouteLabels {
            route: route.clone(),
            method: method.clone(),
            status,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&crate::metrics::LatencyLabels {
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    tracing::info!(%method, %route, status, micros = elapsed.as_micros() as u64, "request");
    res
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics<S: Store>(State(state): State<AppState<S>>) -> Result<Response, ApiError> {
    let usage = state.store.usage().await.map_err(store_err)?;
    let m = &state.metrics;
    m.connected_devices
        .set(state.hub.connected_devices() as i64);
    m.stored_bytes.set(
        i64::try_from(usage.stored_bytes + state.blobs.total_bytes().unwrap_or(0))
            .unwrap_or(i64::MAX),
    );
    m.audit_leaves
        .set(i64::try_from(usage.audit_leaves).unwrap_or(i64::MAX));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &m.registry)
        .map_err(|e| ApiError::internal("metrics", e))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Exists => ApiError::conflict("exists", "it exists already"),
        StoreError::VersionConflict { current } => ApiError::conflict(
            "version_conflict",
            format!("stale version: the stored version is {current}"),
        ),
        StoreError::StaleEpoch {
            rotating: false,
            newest,
        } => ApiError::conflict(
            "stale_epoch",
            format!("the file has a newer key epoch ({newest}): sync and try again"),
        ),
        StoreError::StaleEpoch { rotating: true, .. } => ApiError::conflict(
            "rotation_pending",
            "an admin is re-keying this file after a revocation: try again when it is done",
        ),
        StoreError::StaleTeamKey { team } => ApiError::conflict(
            "team_key_stale",
            format!(
                "team {team} has a newer key, or its key must be rotated first: sync and try again"
            ),
        ),
        StoreError::NotFound => ApiError::not_found("not found"),
        StoreError::Full => ApiError::storage_full(),
        StoreError::Backend(m) => ApiError::internal("store", m),
    }
}

/// Lowercase hex bytes in JSON, refused without echoing the input.
#[derive(Debug, Clone)]
struct Hex(Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom("hex must be lowercase"));
        }
        hex::decode(s.as_bytes())
            .map(Hex)
            .map_err(|_| serde::de::Error::custom("invalid hex"))
    }
}

fn page(limit: Option<u32>, max: u32) -> u32 {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, max)
}

/// The audit entry of the caller's request, about `subjects`, received at `received_ms`.
fn entry(c: &Caller, received_ms: u64, subjects: &[(SubjectKind, [u8; 16])]) -> Vec<u8> {
    entry_with_body(c, received_ms, subjects, None)
}

/// An audit entry that also carries the request's body (room membership: opaque ids an
/// auditor needs to judge rotation, `protocol-spec/audit-log.md`).
fn entry_with_body(
    c: &Caller,
    received_ms: u64,
    subjects: &[(SubjectKind, [u8; 16])],
    body: Option<Vec<u8>>,
) -> Vec<u8> {
    AuditLeaf {
        firm: c.firm,
        received_ms,
        request: c.request.clone(),
        subjects: subjects
            .iter()
            .map(|&(kind, id)| Subject { kind, id })
            .collect(),
        body,
    }
    .normalise()
    .to_bytes()
}

/// What a roster event is about, for its audit entry.
fn roster_subjects(roster: &Roster, kind: &EventKind) -> Vec<(SubjectKind, [u8; 16])> {
    match kind {
        EventKind::Genesis { .. } => vec![],
        EventKind::MemberAdded { member, .. }
        | EventKind::MemberRemoved { member }
        | EventKind::RoleChanged { member, .. } => vec![(SubjectKind::Member, member.0)],
        EventKind::GuestAdded { member, file, .. } => {
            vec![(SubjectKind::Member, member.0), (SubjectKind::File, file.0)]
        }
        EventKind::DeviceAdded(cert) => vec![
            (SubjectKind::Member, cert.member.0),
            (SubjectKind::Device, cert.device.0),
        ],
        EventKind::DeviceRevoked { device } => vec![(SubjectKind::Device, device.0)],
        EventKind::FileAccessGranted { file, member }
        | EventKind::FileAccessRemoved { file, member } => {
            vec![(SubjectKind::File, file.0), (SubjectKind::Member, member.0)]
        }
        EventKind::CoverGranted {
            absent, colleague, ..
        } => vec![
            (SubjectKind::Member, absent.0),
            (SubjectKind::Member, colleague.0),
        ],
        EventKind::CoverEnded { cover } => roster
            .cover(*cover)
            .map(|c| {
                vec![
                    (SubjectKind::Member, c.absent.0),
                    (SubjectKind::Member, c.colleague.0),
                ]
            })
            .unwrap_or_default(),
        EventKind::RetentionSet { file, .. } => vec![(SubjectKind::File, file.0)],
        EventKind::LogKeySet { .. } | EventKind::RecoveryPolicySet { .. } => vec![],
        EventKind::TeamCreated { team, .. }
        | EventKind::TeamRenamed { team, .. }
        | EventKind::TeamDeleted { team } => vec![(SubjectKind::Team, team.0)],
        EventKind::TeamMemberAdded { team, member }
        | EventKind::TeamMemberRemoved { team, member } => {
            vec![(SubjectKind::Team, team.0), (SubjectKind::Member, member.0)]
        }
        EventKind::FileTeamGranted { file, team } | EventKind::FileTeamRemoved { file, team } => {
            vec![(SubjectKind::File, file.0), (SubjectKind::Team, team.0)]
        }
    }
}

/// Logs a read that delivered content (an empty answer reveals nothing and is not logged)
/// before the answer leaves.
async fn log_read<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    subjects: &[(SubjectKind, [u8; 16])],
) -> Result<(), ApiError> {
    state
        .store
        .append_audit_leaf(c.firm, entry(c, state.now_ms(), subjects))
        .await
        .map(|_| ())
        .map_err(store_err)
}

/// The cursor after the last of `cursors` (or `since` when there are none).
fn next_cursor(since: u64, cursors: impl Iterator<Item = u64>) -> u64 {
    cursors.map(|c| c + 1).max().unwrap_or(since).max(since)
}

fn roster_of<S: Store>(state: &AppState<S>, firm: FirmId) -> Result<Arc<FirmState>, ApiError> {
    state
        .firm(firm)
        .ok_or_else(|| ApiError::internal("firm state", "missing for an authenticated caller"))
}

/// Reads the caller's roster under the lock.
fn with_roster<S: Store, T>(
    state: &AppState<S>,
    firm: FirmId,
    f: impl FnOnce(&Roster) -> T,
) -> Result<T, ApiError> {
    let fs = roster_of(state, firm)?;
    let r = fs
        .roster
        .read()
        .map_err(|_| ApiError::internal("roster lock", "poisoned"))?;
    Ok(f(&r))
}

/// `410 erased` for a file erased for good.
fn require_not_erased<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    file: FileId,
) -> Result<(), ApiError> {
    let fs = roster_of(state, firm)?;
    let erased = fs
        .erased
        .read()
        .map_err(|_| ApiError::internal("erased lock", "poisoned"))?
        .contains(&file);
    if erased {
        Err(ApiError::gone(
            "erased",
            "this customer file was erased; nothing of it is kept",
        ))
    } else {
        Ok(())
    }
}

fn require_file_access<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    file: FileId,
) -> Result<(), ApiError> {
    require_not_erased(state, c.firm, file)?;
    if with_roster(state, c.firm, |r| {
        r.file_members(&file, state.now_ms()).contains(&c.member)
    })? {
        Ok(())
    } else {
        Err(ApiError::forbidden("no access to this customer file"))
    }
}

/// A guest's one file (`protocol-spec/guests.md`); `None` for staff and auditors.
fn guest_file<S: Store>(state: &AppState<S>, c: &Caller) -> Result<Option<FileId>, ApiError> {
    if c.role != Role::Guest {
        return Ok(None);
    }
    with_roster(state, c.firm, |r| r.guest_file(&c.member))?
        .map(Some)
        .ok_or_else(|| ApiError::internal("guest", "a guest without a file"))
}

fn guest_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "guest_forbidden",
        "a guest may use only their own conversation and its documents",
    )
}

/// Documents: staff with access to the file reach all of them; a guest only those of
/// their own file's conversation (uploaded under [`CONVERSATION_EPOCH`]).
fn require_document_access<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    file: FileId,
    epoch: u64,
) -> Result<(), ApiError> {
    require_document_file(state, c, file)?;
    require_document_epoch(c, epoch)
}

/// The file half of [`require_document_access`], checked before a document or upload is
/// looked up: staff need access to the file, a guest must be its guest.
fn require_document_file<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    file: FileId,
) -> Result<(), ApiError> {
    match guest_file(state, c)? {
        None => require_file_access(state, c, file),
        Some(own) => {
            require_not_erased(state, c.firm, file)?;
            if own == file {
                Ok(())
            } else {
                Err(guest_refused())
            }
        }
    }
}

/// The epoch half: a guest reaches conversation documents only.
fn require_document_epoch(c: &Caller, epoch: u64) -> Result<(), ApiError> {
    if c.role == Role::Guest && epoch != CONVERSATION_EPOCH {
        Err(guest_refused())
    } else {
        Ok(())
    }
}

/// The members a guest may exchange Olm messages with: the people in their conversation.
/// `None` for staff (anybody in the firm).
fn guest_peers<S: Store>(
    state: &AppState<S>,
    c: &Caller,
) -> Result<Option<std::collections::BTreeSet<MemberId>>, ApiError> {
    match guest_file(state, c)? {
        None => Ok(None),
        Some(file) => with_roster(state, c.firm, |r| {
            Some(r.conversation_members(&file, state.now_ms()))
        }),
    }
}

/// Whether `device` belongs to one of `peers`.
fn device_among<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    device: &DeviceId,
    peers: &std::collections::BTreeSet<MemberId>,
) -> Result<bool, ApiError> {
    with_roster(state, firm, |r| {
        r.device(device).is_some_and(|d| peers.contains(&d.member))
    })
}

/// Active devices of the given members.
fn devices_of<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    members: impl IntoIterator<Item = MemberId>,
) -> Result<Vec<DeviceId>, ApiError> {
    with_roster(state, firm, |r| {
        members
            .into_iter()
            .flat_map(|m| r.active_devices(&m).map(|(d, _)| *d).collect::<Vec<_>>())
            .collect()
    })
}

/// The calling device's signing key, from the roster.
fn caller_signing_key<S: Store>(
    state: &AppState<S>,
    c: &Caller,
) -> Result<ledgerline_protocol::keys::VerifyingKey, ApiError> {
    with_roster(state, c.firm, |r| {
        r.device(&c.device).map(|d| d.keys.signing)
    })?
    .ok_or_else(|| ApiError::internal("device", "missing"))
}

/// Pushes an event to the active devices of every member with access to `file`.
fn push_to_file<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    file: FileId,
    event: &serde_json::Value,
) -> Result<(), ApiError> {
    let members = with_roster(state, firm, |r| r.file_members(&file, state.now_ms()))?;
    let devices = devices_of(state, firm, members)?;
    push_to(state, firm, &devices, event);
    Ok(())
}

fn push_to<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    devices: &[DeviceId],
    event: &serde_json::Value,
) {
    state.hub.push_all(firm, devices, &event.to_string());
}

// ---------------------------------------------------------------- firms and roster

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFirm {
    events: Vec<Hex>,
}

fn decode_event(b: &[u8]) -> Result<RosterEvent, ApiError> {
    RosterEvent::from_bytes(b)
        .map_err(|e| ApiError::bad_request("bad_event", format!("roster event: {e}")))
}

fn roster_rejected(e: RosterError) -> ApiError {
    ApiError::bad_request(
        "roster_rejected",
        format!("roster event refused ({}): {e}", e.class()),
    )
}

/// Firm genesis: the owner's signed genesis and first events (typically the owner's own
/// device). No device exists yet, so this is the one unauthenticated write; the events'
/// signatures are the authentication.
async fn create_firm<S: Store>(
    State(state): State<AppState<S>>,
    req: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if !state.config.open_registration {
        return Err(ApiError::forbidden("this relay does not accept new firms"));
    }
    let body = read_body(
        req.into_body(),
        state.config.max_body_bytes,
        Duration::from_millis(state.config.body_timeout_ms),
    )
    .await?;
    let CreateFirm { events } = parse_json(&body)?;
    if events.is_empty() || events.len() > 64 {
        return Err(ApiError::bad_request(
            "bad_event",
            "a firm starts with 1 to 64 roster events",
        ));
    }
    let parsed = events
        .iter()
        .map(|e| decode_event(&e.0))
        .collect::<Result<Vec<_>, _>>()?;
    let roster = Roster::verify_chain(&parsed).map_err(roster_rejected)?;
    let firm = roster.firm();
    state
        .store
        .create_firm(
            firm,
            events.into_iter().map(|e| e.0).collect(),
            state.now_ms(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Exists => ApiError::conflict("firm_exists", "a firm with this id exists"),
            other => store_err(other),
        })?;
    let len = roster.len();
    if let Ok(mut m) = state.firms.write() {
        m.insert(
            firm,
            Arc::new(FirmState {
                roster: std::sync::RwLock::new(roster),
                append: tokio::sync::Mutex::new(()),
                erased: std::sync::RwLock::new(Default::default()),
            }),
        );
    }
    if let Some(peers) = state.hub.peers() {
        peers.firm_changed(firm);
    }
    tracing::info!(firm = %firm, "firm created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "firm": firm, "next_seq": len })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    since: Option<u64>,
}

async fn get_roster<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<Since>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let events = state
        .store
        .roster_events(s.caller.firm, q.since.unwrap_or(0))
        .await
        .map_err(store_err)?;
    Ok(Json(
        json!({ "events": events.iter().map(hex::encode).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendEvent {
    event: Hex,
}

async fn append_roster<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<AppendEvent>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let event = decode_event(&s.body.event.0)?;
    append_event(&state, &s.caller, event, s.body.event.0).await
}

/// Appends a decoded roster event (its bytes as sent) for `c`: checks, stores with its
/// audit entry, then cuts off what it revokes and tells every device.
async fn append_event<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    event: RosterEvent,
    bytes: Vec<u8>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let state = state.clone();
    if state.store.shared() {
        // Another instance may have appended since: judge the event on the stored roster.
        state
            .refresh_firm(c.firm)
            .await
            .map_err(|e| ApiError::internal("roster refresh", e))?;
    }
    let fs = roster_of(&state, c.firm)?;
    let _guard = fs.append.lock().await;
    let mut next = fs
        .roster
        .read()
        .map_err(|_| ApiError::internal("roster lock", "poisoned"))?
        .clone();
    if event.body.seq != next.len() {
        return Err(ApiError::conflict(
            "roster_conflict",
            format!("the roster has {} events; fetch and retry", next.len()),
        ));
    }
    // What the event exposes, judged on the roster before it: those files take no new
    // writes until their new epoch exists.
    let (_, exposed) = next.exposed_by(&event.body.kind);
    let teams_exposed = next.teams_exposed_by(&event.body.kind);
    // The firm's log key is the relay's to state: recording another would leave every
    // device refusing every checkpoint.
    if let EventKind::LogKeySet { key } = &event.body.kind {
        if *key != audit::log_key(&state, c.firm).verifying_key() {
            return Err(ApiError::bad_request(
                "wrong_log_key",
                "this is not the relay's audit-log key for the firm",
            ));
        }
    }
    next.apply(&event).map_err(roster_rejected)?;
    let seq = event.body.seq;
    let audit = entry(c, state.now_ms(), &roster_subjects(&next, &event.body.kind));
    let stored = state
        .store
        .append_roster_event(
            c.firm,
            seq,
            bytes,
            RotationDue {
                files: exposed.into_iter().collect(),
                teams: teams_exposed.into_iter().collect(),
            },
            audit,
        )
        .await;
    match stored {
        Ok(()) => {}
        Err(StoreError::Exists) => {
            // Another instance took the position: hold what it stored before the retry.
            drop(_guard);
            let _ = state.refresh_firm(c.firm).await;
            return Err(ApiError::conflict(
                "roster_conflict",
                "another event took this position",
            ));
        }
        Err(other) => return Err(store_err(other)),
    }
    if let Some(peers) = state.hub.peers() {
        peers.firm_changed(c.firm);
    }
    let revoked: Vec<DeviceId> = match &event.body.kind {
        EventKind::DeviceRevoked { device } => vec![*device],
        EventKind::MemberRemoved { member } => next.devices_of_member(member),
        _ => vec![],
    };
    let all_devices: Vec<DeviceId> = next.all_active_devices();
    *fs.roster
        .write()
        .map_err(|_| ApiError::internal("roster lock", "poisoned"))? = next;
    drop(_guard);
    // Revocation takes effect at once: the roster above already refuses the devices; now
    // close their sockets and drop what was queued for them.
    for d in &revoked {
        state.hub.close_device(c.firm, *d, "revoked");
        state
            .store
            .forget_device(c.firm, *d)
            .await
            .map_err(store_err)?;
    }
    push_to(
        &state,
        c.firm,
        &all_devices,
        &json!({ "type": "roster", "seq": seq }),
    );
    Ok(Json(json!({ "seq": seq })))
}

// ---------------------------------------------------------------- prekeys

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutPrekeys {
    prekeys: Vec<Hex>,
}

async fn put_prekeys<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<PutPrekeys>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    if s.body.prekeys.len() > 200 {
        return Err(ApiError::bad_request(
            "too_many_keys",
            "at most 200 keys per upload",
        ));
    }
    let key = caller_signing_key(&state, c)?;
    let mut keys = Vec::with_capacity(s.body.prekeys.len());
    for raw in s.body.prekeys {
        let k = SignedPrekey::from_bytes(&raw.0)
            .map_err(|e| ApiError::bad_request("bad_prekey", format!("prekey: {e}")))?;
        k.verify(c.firm, c.device, &key)
            .map_err(|_| ApiError::bad_request("bad_prekey", "prekey signature does not verify"))?;
        keys.push((k.kind as u8, k.key_id, raw.0));
    }
    let before = state
        .store
        .count_one_time_keys(c.firm, c.device)
        .await
        .map_err(store_err)?;
    state
        .store
        .put_prekeys(c.firm, c.device, keys)
        .await
        .map_err(store_err)?;
    let left = state
        .store
        .count_one_time_keys(c.firm, c.device)
        .await
        .map_err(store_err)?;
    // A device that could not be reached before (new, or out of one-time keys) now can:
    // the firm's other devices hear it, so that what waits for it (names, room keys,
    // member keys queued while it had no keys) is sent now rather than at their next sync.
    if before == 0 && left > 0 {
        let others: Vec<DeviceId> = with_roster(&state, c.firm, |r| r.all_active_devices())?
            .into_iter()
            .filter(|d| *d != c.device)
            .collect();
        push_to(
            &state,
            c.firm,
            &others,
            &json!({ "type": "device_ready", "device": c.device }),
        );
    }
    Ok(Json(json!({ "one_time_keys": left })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Claim {
    devices: Vec<DeviceId>,
}

async fn claim_prekeys<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<Claim>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    if s.body.devices.len() > 100 {
        return Err(ApiError::bad_request(
            "too_many_devices",
            "at most 100 devices per claim",
        ));
    }
    let now = state.now_ms();
    let peers = guest_peers(&state, c)?;
    let mut out = BTreeMap::new();
    for d in s.body.devices {
        if let Some(p) = &peers {
            if !device_among(&state, c.firm, &d, p)? {
                return Err(guest_refused());
            }
        }
        let active = with_roster(&state, c.firm, |r| r.device_active_at(&d, now))?;
        let key = if active {
            state
                .store
                .claim_prekey(c.firm, d)
                .await
                .map_err(store_err)?
                .map(hex::encode)
        } else {
            None
        };
        out.insert(d.to_hex(), key);
    }
    Ok(Json(json!({ "prekeys": out })))
}

// ---------------------------------------------------------------- to-device

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutgoingToDevice {
    device: DeviceId,
    ciphertext: Hex,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendToDevice {
    messages: Vec<OutgoingToDevice>,
}

async fn send_to_device<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<SendToDevice>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    if s.body.messages.is_empty() || s.body.messages.len() > 1000 {
        return Err(ApiError::bad_request(
            "bad_batch",
            "send 1 to 1000 messages at once",
        ));
    }
    let now = state.now_ms();
    let all_active = with_roster(&state, c.firm, |r| {
        s.body
            .messages
            .iter()
            .all(|m| r.device_active_at(&m.device, now))
    })?;
    if !all_active {
        return Err(ApiError::bad_request(
            "unknown_recipient",
            "a recipient is not an active device of this firm",
        ));
    }
    if let Some(p) = guest_peers(&state, c)? {
        for m in &s.body.messages {
            if !device_among(&state, c.firm, &m.device, &p)? {
                return Err(guest_refused());
            }
        }
    }
    let msgs: Vec<(DeviceId, Vec<u8>)> = s
        .body
        .messages
        .into_iter()
        .map(|m| (m.device, m.ciphertext.0))
        .collect();
    let pushes: Vec<(DeviceId, String)> =
        msgs.iter().map(|(d, ct)| (*d, hex::encode(ct))).collect();
    let ids = state
        .store
        .send_to_device(c.firm, c.device, msgs, now)
        .await
        .map_err(store_err)?;
    for ((d, ct), id) in pushes.iter().zip(&ids) {
        let ev = json!({ "type": "to_device", "id": id, "sender": c.device, "ciphertext": ct });
        state.hub.push(c.firm, *d, &ev.to_string());
    }
    Ok(Json(json!({ "ids": ids })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    after: Option<u64>,
    limit: Option<u32>,
}

async fn get_to_device<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<After>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    let msgs = state
        .store
        .pending_to_device(
            c.firm,
            c.device,
            q.after.unwrap_or(0),
            page(q.limit, state.config.max_page),
        )
        .await
        .map_err(store_err)?;
    let msgs: Vec<_> = msgs
        .into_iter()
        .map(|m| json!({ "id": m.id, "sender": m.sender, "ciphertext": hex::encode(m.ciphertext), "created_ms": m.created_ms }))
        .collect();
    Ok(Json(json!({ "messages": msgs })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    up_to: u64,
}

async fn ack_to_device<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<Ack>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let n = state
        .store
        .ack_to_device(s.caller.firm, s.caller.device, s.body.up_to)
        .await
        .map_err(store_err)?;
    Ok(Json(json!({ "deleted": n })))
}

// ---------------------------------------------------------------- rooms

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    room: Hex,
    file: Option<FileId>,
    #[serde(default)]
    members: Vec<MemberId>,
}

fn body_id16(b: &[u8]) -> Result<RoomId, ApiError> {
    b.try_into()
        .map_err(|_| ApiError::bad_request("bad_id", "an id is 16 bytes"))
}

fn path_id16(s: &str) -> Result<RoomId, ApiError> {
    let mut id = [0u8; 16];
    if s.len() != 32
        || s.bytes().any(|b| b.is_ascii_uppercase())
        || hex::decode_to_slice(s, &mut id).is_err()
    {
        return Err(ApiError::bad_request(
            "bad_path",
            "a path parameter is not a valid id or number",
        ));
    }
    Ok(id)
}

/// Members of a room now: the file's members, or the explicit list.
fn room_members<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    room: &Room,
) -> Result<Vec<MemberId>, ApiError> {
    match room.file {
        Some(f) if room.id == conversation_room(&firm, &f) => with_roster(state, firm, |r| {
            r.conversation_members(&f, state.now_ms())
                .into_iter()
                .collect()
        }),
        Some(f) => with_roster(state, firm, |r| {
            r.file_members(&f, state.now_ms()).into_iter().collect()
        }),
        None => with_roster(state, firm, |r| {
            room.members
                .iter()
                .copied()
                .filter(|m| r.member(m).is_some_and(|s| s.active.until.is_none()))
                .collect()
        }),
    }
}

async fn load_room_for<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    room: RoomId,
) -> Result<(Room, Vec<MemberId>), ApiError> {
    let r = state
        .store
        .room(c.firm, room)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::not_found("no such room"))?;
    let members = room_access(state, c, &r)?;
    Ok((r, members))
}

/// Whether the caller may use `room`: its current members, or why not.
fn room_access<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    r: &Room,
) -> Result<Vec<MemberId>, ApiError> {
    // A customer file's rooms (staff room and conversation) end with the file.
    if let Some(file) = r.file {
        require_not_erased(state, c.firm, file)?;
    }
    let members = room_members(state, c.firm, r)?;
    if !members.contains(&c.member) {
        return Err(ApiError::forbidden("not a member of this room"));
    }
    Ok(members)
}

async fn create_room<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<CreateRoom>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let c = &s.caller;
    let id = body_id16(&s.body.room.0)?;
    let room = match s.body.file {
        Some(file) => {
            if !s.body.members.is_empty() {
                return Err(ApiError::bad_request(
                    "bad_room",
                    "a file room's members follow file access; give no member list",
                ));
            }
            match guest_file(&state, c)? {
                // A guest may open their conversation only (the one room of their file
                // they are a member of).
                Some(own) => {
                    require_not_erased(&state, c.firm, file)?;
                    if own != file || id != conversation_room(&c.firm, &file) {
                        return Err(guest_refused());
                    }
                }
                None => require_file_access(&state, c, file)?,
            }
            Room {
                id,
                file: Some(file),
                created_by: c.member,
                members: vec![],
            }
        }
        None if c.role == Role::Guest => return Err(guest_refused()),
        None => {
            let members = checked_members(&state, c.firm, s.body.members)?;
            if !members.contains(&c.member) {
                return Err(ApiError::bad_request(
                    "bad_room",
                    "the member list must include the creator (at most 1000 members)",
                ));
            }
            Room {
                id,
                file: None,
                created_by: c.member,
                members,
            }
        }
    };
    let mut about = vec![(SubjectKind::Room, room.id)];
    about.extend(room.file.map(|f| (SubjectKind::File, f.0)));
    // An internal room's members are the body: the leaf carries it, so an auditor can
    // judge its rotation after a revocation.
    let body = room.file.is_none().then(|| s.raw.clone());
    let audit = entry_with_body(c, state.now_ms(), &about, body);
    state
        .store
        .create_room(c.firm, room, audit)
        .await
        .map_err(|e| match e {
            StoreError::Exists => ApiError::conflict("room_exists", "a room with this id exists"),
            other => store_err(other),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "room": hex::encode(id) })),
    ))
}

async fn get_room<S: Store>(
    State(state): State<AppState<S>>,
    P(room): P<String>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (r, members) = load_room_for(&state, &s.caller, path_id16(&room)?).await?;
    let devices = devices_of(&state, s.caller.firm, members.iter().copied())?;
    Ok(Json(
        json!({ "room": hex::encode(r.id), "file": r.file, "members": members, "devices": devices }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomMembers {
    members: Vec<MemberId>,
}

/// A room's member list, sorted and deduplicated: 1 to 1000 active members of the firm.
fn checked_members<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    mut members: Vec<MemberId>,
) -> Result<Vec<MemberId>, ApiError> {
    members.sort();
    members.dedup();
    if members.is_empty() || members.len() > 1000 {
        return Err(ApiError::bad_request(
            "bad_room",
            "a room has 1 to 1000 members",
        ));
    }
    let all_active = with_roster(state, firm, |r| {
        members
            .iter()
            .all(|m| r.member(m).is_some_and(|s| s.active.until.is_none()))
    })?;
    if !all_active {
        return Err(ApiError::bad_request(
            "unknown_member",
            "a member is not an active member of this firm",
        ));
    }
    let any_guest = with_roster(state, firm, |r| {
        members
            .iter()
            .any(|m| r.member(m).is_some_and(|s| s.role == Role::Guest))
    })?;
    if any_guest {
        return Err(ApiError::bad_request(
            "guest_member",
            "a guest is in their file's conversation only, never in an internal room",
        ));
    }
    Ok(members)
}

/// Replaces the member list of an internal room or direct chat (a file room follows file
/// access instead). Any current member may do it; clients rotate the room's Megolm
/// session on every change.
async fn set_room_members<S: Store>(
    State(state): State<AppState<S>>,
    P(room): P<String>,
    s: SignedJson<RoomMembers>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    let room = path_id16(&room)?;
    let (r, old) = load_room_for(&state, c, room).await?;
    if r.file.is_some() {
        return Err(ApiError::bad_request(
            "bad_room",
            "a file room's members follow file access",
        ));
    }
    let members = checked_members(&state, c.firm, s.body.members)?;
    let audit = entry_with_body(
        c,
        state.now_ms(),
        &[(SubjectKind::Room, room)],
        Some(s.raw.clone()),
    );
    state
        .store
        .set_room_members(c.firm, room, members.clone(), audit)
        .await
        .map_err(store_err)?;
    let devices = devices_of(&state, c.firm, old.into_iter().chain(members))?;
    push_to(
        &state,
        c.firm,
        &devices,
        &json!({ "type": "room_members", "room": hex::encode(room) }),
    );
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    ciphertext: Hex,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessageQuery {
    /// The sender's statement of its Megolm session (a tag, `protocol-spec/client-payloads.md`),
    /// in the signed path so that the audit log shows rotation after revocations.
    session: Option<String>,
}

async fn send_message<S: Store>(
    State(state): State<AppState<S>>,
    P(room): P<String>,
    Q(q): Q<SendMessageQuery>,
    s: SignedJson<SendMessage>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    let room = path_id16(&room)?;
    if q.session.as_ref().is_some_and(|t| {
        t.len() != 32
            || !t
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }) {
        return Err(ApiError::bad_request(
            "bad_session",
            "session is 32 lowercase hex digits",
        ));
    }
    let (_, members) = load_room_for(&state, c, room).await?;
    if s.body.ciphertext.0.is_empty() {
        return Err(ApiError::bad_request(
            "empty_message",
            "a message needs ciphertext",
        ));
    }
    if s.body.ciphertext.0.len() > history::ROOM_MESSAGE_MAX_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!(
                "a room message is limited to {} bytes of ciphertext; send a document instead",
                history::ROOM_MESSAGE_MAX_BYTES
            ),
        ));
    }
    let ct_hex = hex::encode(&s.body.ciphertext.0);
    let now = state.now_ms();
    let seq = state
        .store
        .append_message(
            c.firm,
            room,
            c.device,
            s.body.ciphertext.0,
            now,
            entry(c, now, &[(SubjectKind::Room, room)]),
        )
        .await
        .map_err(store_err)?;
    let devices = devices_of(&state, c.firm, members)?;
    let ev = json!({ "type": "room_message", "room": hex::encode(room), "seq": seq, "sender": c.device, "ciphertext": ct_hex, "created_ms": now });
    push_to(&state, c.firm, &devices, &ev);
    Ok(Json(json!({ "seq": seq })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FromSeq {
    from: Option<u64>,
    limit: Option<u32>,
}

async fn get_messages<S: Store>(
    State(state): State<AppState<S>>,
    P(room): P<String>,
    Q(q): Q<FromSeq>,
    headers: HeaderMap,
    s: Signed,
) -> Result<Response, ApiError> {
    let c = &s.caller;
    let room = path_id16(&room)?;
    // The room and the page in one read; nothing leaves before access is checked.
    let (head, mut msgs, next) = state
        .store
        .message_page(
            c.firm,
            room,
            q.from.unwrap_or(1),
            page(q.limit, state.config.max_page),
        )
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::not_found("no such room"))?;
    room_access(&state, c, &head)?;
    // A page of large messages ends early (never empty): a bounded answer for both sides.
    let mut bytes = 0usize;
    let keep = msgs
        .iter()
        .take_while(|m| {
            let before = bytes;
            bytes = bytes.saturating_add(m.ciphertext.len());
            before < history::PAGE_SOFT_BYTES
        })
        .count();
    msgs.truncate(keep);
    if !msgs.is_empty() {
        log_read(&state, c, &[(SubjectKind::Room, room)]).await?;
    }
    if accepts(&headers, history::MEDIA_TYPE) {
        let page = history::HistoryPage {
            next,
            messages: msgs,
        };
        return Ok((
            [
                (header::CONTENT_TYPE, history::MEDIA_TYPE),
                (header::VARY, "accept"),
            ],
            page.to_bytes(),
        )
            .into_response());
    }
    let msgs: Vec<_> = msgs
        .into_iter()
        .map(|m| json!({ "seq": m.seq, "sender": m.sender, "ciphertext": hex::encode(m.ciphertext), "created_ms": m.created_ms }))
        .collect();
    Ok((
        [(header::VARY, "accept")],
        Json(json!({ "messages": msgs, "next": next })),
    )
        .into_response())
}

/// Whether the request's `Accept` header lists `media_type` (and not with `q=0`).
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let mut parts = t.split(';');
            let named = parts
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(media_type));
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            named && !refused
        })
}

// ---------------------------------------------------------------- records

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutRecord {
    envelope: Hex,
}

async fn put_record<S: Store>(
    State(state): State<AppState<S>>,
    P((file, record)): P<(FileId, RecordId)>,
    s: SignedJson<PutRecord>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    require_file_access(&state, c, file)?;
    let env = RecordEnvelope::from_bytes(&s.body.envelope.0)
        .map_err(|e| ApiError::bad_request("bad_envelope", format!("record envelope: {e}")))?;
    let h = env.header;
    if h.firm != c.firm || h.file != file || h.record != record {
        return Err(ApiError::bad_request(
            "envelope_mismatch",
            "the envelope names another firm, file or record than the path",
        ));
    }
    if h.author != c.device {
        return Err(ApiError::forbidden(
            "the envelope's author is not the requesting device",
        ));
    }
    let key = caller_signing_key(&state, c)?;
    env.verify_signature(&key).map_err(|_| {
        ApiError::bad_request("bad_envelope", "the author's signature does not verify")
    })?;
    let cursor = state
        .store
        .put_record(
            c.firm,
            file,
            record,
            h.version,
            h.epoch,
            c.device,
            s.body.envelope.0,
            state.now_ms(),
            entry(
                c,
                state.now_ms(),
                &[(SubjectKind::File, file.0), (SubjectKind::Record, record.0)],
            ),
        )
        .await
        .map_err(store_err)?;
    push_to_file(
        &state,
        c.firm,
        file,
        &json!({ "type": "record", "file": file, "record": record, "version": h.version, "cursor": cursor }),
    )?;
    Ok(Json(json!({ "version": h.version, "cursor": cursor })))
}

async fn get_records<S: Store>(
    State(state): State<AppState<S>>,
    P(file): P<FileId>,
    Q(q): Q<Since2>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    require_file_access(&state, c, file)?;
    let recs = state
        .store
        .records_since(
            c.firm,
            file,
            q.since.unwrap_or(0),
            page(q.limit, state.config.max_page),
        )
        .await
        .map_err(store_err)?;
    if !recs.is_empty() {
        log_read(&state, c, &[(SubjectKind::File, file.0)]).await?;
    }
    let next = recs
        .last()
        .map(|r| r.cursor)
        .unwrap_or(q.since.unwrap_or(0));
    let recs: Vec<_> = recs
        .into_iter()
        .map(|r| json!({ "record": r.record, "version": r.version, "cursor": r.cursor, "envelope": hex::encode(r.envelope) }))
        .collect();
    Ok(Json(json!({ "records": recs, "next": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Since2 {
    since: Option<u64>,
    limit: Option<u32>,
}

// ---------------------------------------------------------------- wrapped keys

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    wrapped: Hex,
}

async fn put_member_key<S: Store>(
    State(state): State<AppState<S>>,
    P((member, version, device)): P<(MemberId, u32, DeviceId)>,
    s: SignedJson<Wrapped>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    if c.member != member && c.role != Role::Admin {
        return Err(ApiError::forbidden(
            "only the member or an admin may store the member's key",
        ));
    }
    // The recipient is one of the member's devices, or an admin's device: admins hold
    // every member key (escrow), which lets them re-key files symmetrically
    // (protocol-spec/key-hierarchy.md, "Admin escrow").
    let recipient_ok = with_roster(&state, c.firm, |r| {
        r.active_devices(&member).any(|(d, _)| *d == device)
            || r.device(&device).is_some_and(|d| {
                d.active.until.is_none()
                    && r.member(&d.member)
                        .is_some_and(|m| m.role == Role::Admin && m.active.until.is_none())
            })
    })?;
    if !recipient_ok {
        return Err(ApiError::bad_request(
            "unknown_device",
            "the device is neither an active device of that member nor an admin's",
        ));
    }
    if s.body.wrapped.0.len() != MEMBER_KEY_WRAP_LEN {
        return Err(ApiError::bad_request(
            "bad_wrapped_key",
            format!("a wrapped member key is {MEMBER_KEY_WRAP_LEN} bytes"),
        ));
    }
    state
        .store
        .put_member_key_wrap(
            c.firm,
            MemberKeyWrap {
                member,
                key_version: version,
                device,
                wrapped: s.body.wrapped.0,
            },
            entry(
                c,
                state.now_ms(),
                &[
                    (SubjectKind::Member, member.0),
                    (SubjectKind::Device, device.0),
                ],
            ),
        )
        .await
        .map_err(store_err)?;
    state.hub.push(
        c.firm,
        device,
        &json!({ "type": "member_key", "member": member, "key_version": version }).to_string(),
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn get_member_keys<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<Since>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    let since = q.since.unwrap_or(0);
    let wraps = state
        .store
        .member_key_wraps_for(c.firm, c.device, since)
        .await
        .map_err(store_err)?;
    if !wraps.is_empty() {
        log_read(&state, c, &[(SubjectKind::Device, c.device.0)]).await?;
    }
    let next = next_cursor(since, wraps.iter().map(|(cur, _)| *cur));
    let wraps: Vec<_> = wraps.into_iter().map(|(_, w)| json!({ "member": w.member, "key_version": w.key_version, "wrapped": hex::encode(w.wrapped) })).collect();
    Ok(Json(json!({ "wraps": wraps, "next": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutEpochKey {
    holder_key_version: u32,
    wrapped: Hex,
}

async fn put_epoch_key<S: Store>(
    State(state): State<AppState<S>>,
    P((file, epoch, member)): P<(FileId, u64, MemberId)>,
    s: SignedJson<PutEpochKey>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    require_file_access_or_admin(&state, c, file)?;
    if !with_roster(&state, c.firm, |r| {
        r.key_holders(&file, state.now_ms()).contains(&member)
    })? {
        return Err(ApiError::forbidden(
            "the holder has no access to this customer file",
        ));
    }
    store_epoch_wrap(
        &state,
        c,
        file,
        epoch,
        Holder::Member(member),
        s.body,
        vec![member],
    )
    .await
}

/// Stores one epoch-key wrap (73 bytes) for `holder`, logged with the file and the
/// holder as subjects, and tells `readers`' devices a key for the file arrived.
async fn store_epoch_wrap<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    file: FileId,
    epoch: u64,
    holder: Holder,
    body: PutEpochKey,
    readers: Vec<MemberId>,
) -> Result<StatusCode, ApiError> {
    if body.wrapped.0.len() != SYMMETRIC_WRAP_LEN {
        return Err(ApiError::bad_request(
            "bad_wrapped_key",
            format!("a wrapped epoch key is {SYMMETRIC_WRAP_LEN} bytes"),
        ));
    }
    let who = match holder {
        Holder::Member(m) => (SubjectKind::Member, m.0),
        Holder::Team(t) => (SubjectKind::Team, t.0),
    };
    let w = EpochKeyWrap {
        epoch,
        holder,
        holder_key_version: body.holder_key_version,
        wrapped: body.wrapped.0,
    };
    state
        .store
        .put_epoch_key_wrap(
            c.firm,
            file,
            w,
            entry(c, state.now_ms(), &[(SubjectKind::File, file.0), who]),
        )
        .await
        .map_err(store_err)?;
    let devices = devices_of(state, c.firm, readers)?;
    push_to(
        state,
        c.firm,
        &devices,
        &json!({ "type": "epoch_key", "file": file, "epoch": epoch }),
    );
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysQuery {
    since: Option<u64>,
    /// Whose wraps: the caller's by default; an admin may name any member (escrow: the
    /// admin holds every member key, so this reveals nothing the admin cannot open).
    holder: Option<MemberId>,
    /// A team's wraps instead: for the team's members while it holds the file, and for
    /// admins (who hold every team key).
    team: Option<TeamId>,
}

/// Admins act on any file for rotation (escrow); everyone else needs access.
fn require_file_access_or_admin<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    file: FileId,
) -> Result<(), ApiError> {
    if c.role == Role::Admin {
        require_not_erased(state, c.firm, file)
    } else {
        require_file_access(state, c, file)
    }
}

/// Erases a customer file for good (admins; GDPR erasure): ciphertext, wrapped keys, chain
/// links and conversation deleted in one transaction with its log entry; then the blobs.
/// Every later request about the file is `410 erased`.
async fn erase_file<S: Store>(
    State(state): State<AppState<S>>,
    P(file): P<FileId>,
    s: Signed,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    if c.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin erases a customer file"));
    }
    require_not_erased(&state, c.firm, file)?;
    if !with_roster(&state, c.firm, |r| r.files().contains(&file))? {
        return Err(ApiError::not_found("no such customer file"));
    }
    if with_roster(&state, c.firm, |r| {
        r.retention(&file).is_some_and(|(_, p)| p.legal_hold)
    })? {
        return Err(ApiError::conflict(
            "legal_hold",
            "this customer file is under legal hold: lift the hold before erasing it",
        ));
    }
    // Who held it, for the push (before anything is gone): key holders and its teams'
    // members.
    let members = with_roster(&state, c.firm, |r| {
        let mut m = r.key_holders(&file, state.now_ms());
        m.extend(r.file_members(&file, state.now_ms()));
        m
    })?;
    let now = state.now_ms();
    let docs = state
        .store
        .erase_file(
            c.firm,
            file,
            now,
            entry(c, now, &[(SubjectKind::File, file.0)]),
        )
        .await
        .map_err(|e| match e {
            StoreError::Exists => ApiError::gone("erased", "this customer file was erased already"),
            other => store_err(other),
        })?;
    if let Ok(fs) = roster_of(&state, c.firm) {
        if let Ok(mut set) = fs.erased.write() {
            set.insert(file);
        }
    }
    if let Some(peers) = state.hub.peers() {
        peers.firm_changed(c.firm);
    }
    for d in docs {
        state.blobs.remove(c.firm, d).await;
    }
    let devices = devices_of(&state, c.firm, members)?;
    push_to(
        &state,
        c.firm,
        &devices,
        &json!({ "type": "file_erased", "file": file }),
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn get_epoch_keys<S: Store>(
    State(state): State<AppState<S>>,
    P(file): P<FileId>,
    Q(q): Q<KeysQuery>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    let holder = match (q.holder, q.team) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "bad_holder",
                "name a member or a team, not both",
            ))
        }
        (None, Some(team)) => {
            teams::require_team_file_access(&state, c, file, team)?;
            Holder::Team(team)
        }
        (member, None) => {
            let member = member.unwrap_or(c.member);
            if member == c.member {
                require_file_access_or_admin(&state, c, file)?;
            } else if c.role != Role::Admin {
                return Err(ApiError::forbidden(
                    "only an admin may read another member's wraps",
                ));
            }
            Holder::Member(member)
        }
    };
    let since = q.since.unwrap_or(0);
    let wraps = state
        .store
        .epoch_key_wraps(c.firm, file, holder, since)
        .await
        .map_err(store_err)?;
    if !wraps.is_empty() {
        let who = match holder {
            Holder::Member(m) => (SubjectKind::Member, m.0),
            Holder::Team(t) => (SubjectKind::Team, t.0),
        };
        log_read(&state, c, &[(SubjectKind::File, file.0), who]).await?;
    }
    let next = next_cursor(since, wraps.iter().map(|(cur, _)| *cur));
    let wraps: Vec<_> = wraps
        .into_iter()
        .map(|(_, w)| json!({ "epoch": w.epoch, "holder_key_version": w.holder_key_version, "wrapped": hex::encode(w.wrapped) }))
        .collect();
    Ok(Json(json!({ "wraps": wraps, "next": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartEpochQuery {
    /// `MEMBER.VERSION` of every holder, comma-separated, in member order: part of the
    /// signed path, so the log shows for whom the new key was wrapped.
    holders: String,
    /// `TEAM.VERSION` of every team holding the file (team-key version), in team order;
    /// absent when no team holds it.
    teams: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartEpoch {
    link: Hex,
    wraps: Vec<StartEpochWrap>,
    #[serde(default)]
    team_wraps: Vec<StartEpochTeamWrap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartEpochTeamWrap {
    team: TeamId,
    holder_key_version: u32,
    wrapped: Hex,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartEpochWrap {
    member: MemberId,
    holder_key_version: u32,
    wrapped: Hex,
}

/// Parses `holders=` (or `teams=`) into (id, version) pairs, strictly increasing by id.
fn parse_holders<T: std::str::FromStr + Ord + Copy>(s: &str) -> Result<Vec<(T, u32)>, ApiError> {
    let bad = || ApiError::bad_request("bad_holders", "holders is ID.VERSION,… in id order");
    let mut out: Vec<(T, u32)> = Vec::new();
    // A file nobody holds any more still gets its epoch (the link keeps its history for
    // whoever is granted it next).
    if s.is_empty() {
        return Ok(out);
    }
    for item in s.split(',') {
        let (m, v) = item.split_once('.').ok_or_else(bad)?;
        let m: T = m.parse().map_err(|_| bad())?;
        if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let v: u32 = v.parse().map_err(|_| bad())?;
        if out.last().is_some_and(|(last, _)| *last >= m) {
            return Err(bad());
        }
        out.push((m, v));
    }
    Ok(out)
}

/// Starts a new epoch of a file (after someone lost access, or a member key rotated): the
/// link and a wrap for every member with access, all or nothing. The holders named in the
/// signed path must be exactly the file's members now.
async fn start_epoch<S: Store>(
    State(state): State<AppState<S>>,
    P((file, epoch)): P<(FileId, u64)>,
    Q(q): Q<StartEpochQuery>,
    s: SignedJson<StartEpoch>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    require_file_access_or_admin(&state, c, file)?;
    if epoch == CONVERSATION_EPOCH {
        return Err(ApiError::bad_request(
            "bad_epoch",
            "this epoch number is reserved for conversation documents",
        ));
    }
    if epoch == 0 {
        return Err(ApiError::bad_request(
            "bad_epoch",
            "epoch 0 has no predecessor",
        ));
    }
    let holders: Vec<(MemberId, u32)> = parse_holders(&q.holders)?;
    let team_holders: Vec<(TeamId, u32)> = parse_holders(q.teams.as_deref().unwrap_or(""))?;
    let (members, teams): (Vec<MemberId>, Vec<TeamId>) = with_roster(&state, c.firm, |r| {
        (
            r.key_holders(&file, state.now_ms()).into_iter().collect(),
            r.file_teams(&file).into_iter().collect(),
        )
    })?;
    if holders.iter().map(|(m, _)| *m).ne(members.iter().copied())
        || team_holders
            .iter()
            .map(|(t, _)| *t)
            .ne(teams.iter().copied())
    {
        return Err(ApiError::conflict(
            "holders_changed",
            "the holders must be exactly the file's key holders now (grants, teams and absence covers): fetch the roster and retry",
        ));
    }
    let body = s.body;
    if body.link.0.len() != SYMMETRIC_WRAP_LEN
        || body
            .wraps
            .iter()
            .map(|w| &w.wrapped)
            .chain(body.team_wraps.iter().map(|w| &w.wrapped))
            .any(|w| w.0.len() != SYMMETRIC_WRAP_LEN)
    {
        return Err(ApiError::bad_request(
            "bad_wrapped_key",
            format!("links and wrapped epoch keys are {SYMMETRIC_WRAP_LEN} bytes"),
        ));
    }
    if body
        .wraps
        .iter()
        .map(|w| (w.member, w.holder_key_version))
        .ne(holders.iter().copied())
        || body
            .team_wraps
            .iter()
            .map(|w| (w.team, w.holder_key_version))
            .ne(team_holders.iter().copied())
    {
        return Err(ApiError::bad_request(
            "bad_holders",
            "the wraps must match the holders in the path, in order",
        ));
    }
    let wraps = body
        .wraps
        .into_iter()
        .map(|w| EpochKeyWrap {
            epoch,
            holder: Holder::Member(w.member),
            holder_key_version: w.holder_key_version,
            wrapped: w.wrapped.0,
        })
        .chain(body.team_wraps.into_iter().map(|w| EpochKeyWrap {
            epoch,
            holder: Holder::Team(w.team),
            holder_key_version: w.holder_key_version,
            wrapped: w.wrapped.0,
        }))
        .collect();
    state
        .store
        .start_epoch(
            c.firm,
            file,
            epoch,
            body.link.0,
            wraps,
            entry(c, state.now_ms(), &[(SubjectKind::File, file.0)]),
        )
        .await
        .map_err(|e| match e {
            StoreError::Exists => {
                ApiError::conflict("epoch_exists", "this epoch has been started already")
            }
            StoreError::VersionConflict { current } => ApiError::conflict(
                "epoch_not_next",
                format!("the file's newest epoch is {current}"),
            ),
            other => store_err(other),
        })?;
    let team_members: Vec<MemberId> = with_roster(&state, c.firm, |r| {
        teams.iter().flat_map(|t| r.team_members(t)).collect()
    })?;
    let devices = devices_of(&state, c.firm, members.into_iter().chain(team_members))?;
    push_to(
        &state,
        c.firm,
        &devices,
        &json!({ "type": "epoch_key", "file": file, "epoch": epoch }),
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn get_epoch_links<S: Store>(
    State(state): State<AppState<S>>,
    P(file): P<FileId>,
    Q(q): Q<Since>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    require_file_access_or_admin(&state, c, file)?;
    let since = q.since.unwrap_or(0);
    let links = state
        .store
        .epoch_links(c.firm, file, since)
        .await
        .map_err(store_err)?;
    if !links.is_empty() {
        log_read(&state, c, &[(SubjectKind::File, file.0)]).await?;
    }
    let next = next_cursor(since, links.iter().map(|(cur, _, _)| *cur));
    let links: Vec<_> = links
        .into_iter()
        .map(|(_, e, w)| json!({ "epoch": e, "wrapped": hex::encode(w) }))
        .collect();
    Ok(Json(json!({ "links": links, "next": next })))
}

// ---------------------------------------------------------------- documents

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    epoch: u64,
    share_sha256: String,
    /// The year the document concerns; the upload's year when absent.
    year: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearQuery {
    year: Option<u16>,
}

/// The year a document concerns (`protocol-spec/retention.md`): as the signed query says,
/// or the current one.
fn document_year(asked: Option<u16>, now_ms: u64) -> Result<u16, ApiError> {
    let year = asked
        .or_else(|| ledgerline_protocol::retention::year_of(now_ms))
        .unwrap_or(0);
    if !ledgerline_protocol::retention::DOCUMENT_YEARS.contains(&year) {
        return Err(ApiError::bad_request(
            "bad_year",
            "a document concerns a year from 1900 to 2999",
        ));
    }
    Ok(year)
}

/// Streams a ciphertext blob to disk while hashing it; stores it only if the hash is the
/// signed one and the size within the limit.
async fn upload_document<S: Store>(
    State(state): State<AppState<S>>,
    P((file, document)): P<(FileId, DocumentId)>,
    Q(q): Q<UploadQuery>,
    up: SignedUpload,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let SignedUpload {
        caller: c,
        body,
        expected_sha256,
        headers,
    } = up;
    require_document_access(&state, &c, file, q.epoch)?;
    let share = release_share(&headers, &q.share_sha256)?;
    let year = document_year(q.year, state.now_ms())?;
    if state
        .store
        .document(c.firm, document)
        .await
        .map_err(store_err)?
        .is_some()
    {
        return Err(ApiError::conflict(
            "document_exists",
            "a document with this id exists",
        ));
    }
    let max = state.config.max_document_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > max {
            return Err(too_large(max));
        }
    }
    // This upload's own copy: another upload of the same id at the same time (a retry while
    // this one still streams, here or on another instance) writes its own, the database
    // admits one row, and the loser deletes only its copy (`crate::blobs`).
    let copy = crate::blobs::new_copy();
    let (size, sha) = match &state.blobs {
        Blobs::Dir(dir) => {
            let temp = dir.temp_path();
            let stored = async {
                let (size, sha) = stream_to_file(&state, body, &temp, max).await?;
                if sha != expected_sha256 {
                    return Err(hash_mismatch());
                }
                crate::auth::accept_upload(&state, &c).await?;
                dir.commit(&temp, c.firm, document, copy)
                    .await
                    .map_err(|e| ApiError::internal("blob commit", e))?;
                Ok((size, sha))
            }
            .await;
            if stored.is_err() {
                let _ = tokio::fs::remove_file(&temp).await;
            }
            stored?
        }
        Blobs::Bucket(bucket) => {
            let mut writer = bucket
                .writer(c.firm, document, Some(copy))
                .await
                .map_err(|e| ApiError::internal("blob upload", e))?;
            let received = async {
                let (size, sha) =
                    copy_body(&state, body, &mut Out::Bucket(&mut writer), max, || {
                        too_large(max)
                    })
                    .await?;
                if sha != expected_sha256 {
                    return Err(hash_mismatch());
                }
                crate::auth::accept_upload(&state, &c).await?;
                Ok((size, sha))
            }
            .await;
            match received {
                Ok(v) => {
                    // Only now does the object appear, whole.
                    writer
                        .finish()
                        .await
                        .map_err(|e| ApiError::internal("blob upload", e))?;
                    v
                }
                Err(e) => {
                    writer.abort().await;
                    return Err(e);
                }
            }
        }
    };
    let meta = crate::store::DocumentMeta {
        document,
        file,
        epoch: q.epoch,
        size,
        sha256: sha,
        release_share: share,
        uploaded_by: c.device,
        year,
        blob: Some(copy),
    };
    let audit = entry(
        &c,
        state.now_ms(),
        &[
            (SubjectKind::File, file.0),
            (SubjectKind::Document, document.0),
        ],
    );
    if let Err(e) = state
        .store
        .put_document(c.firm, meta, state.now_ms(), audit)
        .await
    {
        state.blobs.discard(c.firm, document, copy).await;
        return Err(match e {
            StoreError::Exists => {
                ApiError::conflict("document_exists", "a document with this id exists")
            }
            other => store_err(other),
        });
    }
    push_to_file(
        &state,
        c.firm,
        file,
        &json!({ "type": "document", "file": file, "document": document }),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "size": size, "sha256": hex::encode(sha) })),
    ))
}

fn hash_mismatch() -> ApiError {
    ApiError::unauthorized("body_hash_mismatch", "body does not match the signed hash")
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("documents are limited to {max} bytes"),
    )
}

/// The release share from its header, checked against the signed `share_sha256`.
fn release_share(headers: &HeaderMap, share_sha256: &str) -> Result<[u8; 32], ApiError> {
    let share_hex = headers
        .get(RELEASE_SHARE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_release_share",
                format!("header {RELEASE_SHARE_HEADER} is required"),
            )
        })?;
    let mut share = [0u8; 32];
    if share_hex.len() != 64
        || share_hex.bytes().any(|b| b.is_ascii_uppercase())
        || hex::decode_to_slice(share_hex, &mut share).is_err()
    {
        return Err(ApiError::bad_request(
            "bad_release_share",
            "the release share is 64 lowercase hex digits",
        ));
    }
    if hex::encode(Sha256::digest(share)) != share_sha256 {
        return Err(ApiError::bad_request(
            "bad_release_share",
            "the release share does not match the signed share_sha256",
        ));
    }
    Ok(share)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BeginUpload {
    epoch: u64,
    share_sha256: String,
    size: u64,
    part_size: u64,
}

/// Bytes of the first `parts` parts of an upload.
fn parts_len(u: &crate::store::UploadSession, parts: u64) -> u64 {
    parts.saturating_mul(u.part_size).min(u.size)
}

fn upload_answer(parts: &[[u8; 32]]) -> Json<serde_json::Value> {
    Json(json!({
        "received": parts.len(),
        "parts": parts.iter().map(hex::encode).collect::<Vec<_>>(),
    }))
}

/// Opens (or, with the same parameters, resumes) a multipart upload.
async fn begin_upload<S: Store>(
    State(state): State<AppState<S>>,
    P((file, document)): P<(FileId, DocumentId)>,
    Q(q): Q<YearQuery>,
    headers: HeaderMap,
    s: SignedJson<BeginUpload>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    require_document_access(&state, c, file, s.body.epoch)?;
    let year = document_year(q.year, state.now_ms())?;
    let b = &s.body;
    let share = release_share(&headers, &b.share_sha256)?;
    let max = state.config.max_document_bytes;
    if b.size > max {
        return Err(too_large(max));
    }
    if b.size < (HEADER_LEN + TAG_SIZE) as u64 {
        return Err(ApiError::bad_request(
            "bad_size",
            "a document stream is at least 52 bytes",
        ));
    }
    if !(DOCUMENT_PART_MIN..=DOCUMENT_PART_MAX).contains(&b.part_size) {
        return Err(ApiError::bad_request(
            "bad_part_size",
            format!("parts are {DOCUMENT_PART_MIN}..={DOCUMENT_PART_MAX} bytes"),
        ));
    }
    if state
        .store
        .document(c.firm, document)
        .await
        .map_err(store_err)?
        .is_some()
    {
        return Err(ApiError::conflict(
            "document_exists",
            "a document with this id exists",
        ));
    }
    let wanted = crate::store::UploadSession {
        document,
        file,
        epoch: b.epoch,
        release_share: share,
        size: b.size,
        part_size: b.part_size,
        uploaded_by: c.device,
        year,
    };
    // First touch of this upload since the relay started (it may have crashed since the
    // parts were written): check the recorded parts against the bytes on disk.
    let first_touch = state
        .upload_locks
        .lock()
        .map(|m| !m.contains_key(&(c.firm, document)))
        .unwrap_or(true);
    let upload = state.upload_lock(c.firm, document);
    let _slot = upload.slot.lock().await;
    match state
        .store
        .upload(c.firm, document)
        .await
        .map_err(store_err)?
    {
        Some((open, mut parts)) => {
            if open != wanted {
                return Err(ApiError::conflict(
                    "upload_mismatch",
                    "an upload of this id is open with other parameters",
                ));
            }
            let keep = match &state.blobs {
                Blobs::Dir(dir) if first_touch => {
                    intact_parts(&dir.upload_path(c.firm, document), &open, &parts).await
                }
                // A part in a bucket was stored whole before it was recorded.
                _ => parts.len() as u64,
            };
            if keep < parts.len() as u64 {
                state
                    .store
                    .truncate_upload(c.firm, document, keep)
                    .await
                    .map_err(store_err)?;
                parts.truncate(usize::try_from(keep).unwrap_or(0));
            }
            Ok(upload_answer(&parts))
        }
        None => {
            if let Blobs::Dir(dir) = &state.blobs {
                tokio::fs::File::create(dir.upload_path(c.firm, document))
                    .await
                    .map_err(|e| ApiError::internal("upload create", e))?;
            }
            state
                .store
                .begin_upload(c.firm, wanted, state.now_ms())
                .await
                .map_err(store_err)?;
            Ok(upload_answer(&[]))
        }
    }
}

async fn open_upload<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    file: FileId,
    document: DocumentId,
) -> Result<(crate::store::UploadSession, Vec<[u8; 32]>), ApiError> {
    require_document_file(state, c, file)?;
    let (u, parts) = state
        .store
        .upload(c.firm, document)
        .await
        .map_err(store_err)?
        .filter(|(u, _)| u.file == file)
        .ok_or_else(|| ApiError::not_found("no upload of this document is open"))?;
    require_document_epoch(c, u.epoch)?;
    if u.uploaded_by != c.device {
        return Err(ApiError::forbidden(
            "only the device that began an upload continues it",
        ));
    }
    Ok((u, parts))
}

/// How many leading recorded parts are on disk byte for byte (parts are written without a
/// sync each; the file is synced once at completion, so after a crash this decides).
async fn intact_parts(
    path: &std::path::Path,
    u: &crate::store::UploadSession,
    parts: &[[u8; 32]],
) -> u64 {
    use tokio::io::AsyncReadExt;
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return 0;
    };
    let mut buf = vec![0u8; 256 * 1024];
    for (n, want) in parts.iter().enumerate() {
        let n = n as u64;
        let mut left = parts_len(u, n + 1) - parts_len(u, n);
        let mut h = Sha256::new();
        while left > 0 {
            let take = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let Some(slice) = buf.get_mut(..take) else {
                return n;
            };
            match f.read_exact(slice).await {
                Ok(_) => h.update(&*slice),
                Err(_) => return n,
            }
            left -= take as u64;
        }
        if <[u8; 32]>::from(h.finalize()) != *want {
            return n;
        }
    }
    parts.len() as u64
}

/// Appends part `n` (the next one) of a multipart upload and records its hash.
async fn put_upload_part<S: Store>(
    State(state): State<AppState<S>>,
    P((file, document, n)): P<(FileId, DocumentId, u64)>,
    up: SignedUpload,
) -> Result<Json<serde_json::Value>, ApiError> {
    let SignedUpload {
        caller,
        body,
        expected_sha256,
        ..
    } = up;
    let mut body = Some(body);
    let result = upload_part(
        &state,
        &caller,
        (file, document, n),
        &mut body,
        expected_sha256,
    )
    .await;
    if result.is_err() {
        // Refused before the body was read: read (and drop) it, bounded, so the client
        // receives our answer instead of a reset connection.
        if let Some(b) = body.take() {
            let mut stream = b.into_data_stream();
            let mut seen = 0u64;
            let idle = Duration::from_millis(state.config.body_timeout_ms);
            while seen <= DOCUMENT_PART_MAX {
                match tokio::time::timeout(idle, stream.next()).await {
                    Ok(Some(Ok(chunk))) => seen += chunk.len() as u64,
                    _ => break,
                }
            }
        }
    }
    result
}

async fn upload_part<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    (file, document, n): (FileId, DocumentId, u64),
    body: &mut Option<Body>,
    expected_sha256: [u8; 32],
) -> Result<Json<serde_json::Value>, ApiError> {
    let upload = state.upload_lock(c.firm, document);
    // Admission: one of the next DOCUMENT_PARTS_IN_FLIGHT parts, not being written now.
    let (u, claim) = {
        let _slot = upload.slot.lock().await;
        let (u, parts) = open_upload(state, c, file, document).await?;
        let received = parts.len() as u64;
        if n < received {
            // Already here (the client did not see our answer): nothing to do.
            crate::auth::accept_upload(state, c).await?;
            return Ok(upload_answer(&parts));
        }
        if n >= received + DOCUMENT_PARTS_IN_FLIGHT {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "part_out_of_order",
                format!("the next part is {received}"),
            ));
        }
        let Some(claim) = upload.claim(n) else {
            return Err(ApiError::conflict(
                "part_in_progress",
                "this part is being received in another request",
            ));
        };
        (u, claim)
    };
    let offset = parts_len(&u, n);
    let expected = parts_len(&u, n + 1) - offset;
    if expected == 0 {
        return Err(ApiError::bad_request(
            "bad_part",
            "this part lies beyond the announced size",
        ));
    }
    let Some(b) = body.take() else {
        return Err(ApiError::internal("upload body", "taken twice"));
    };
    let (sha, written) = match &state.blobs {
        // Written at its own offset, concurrently with its predecessor.
        Blobs::Dir(dir) => {
            let path = dir.upload_path(c.firm, document);
            let (sha, f) = append_part(state, b, &path, offset, expected).await?;
            if sha != expected_sha256 {
                return Err(hash_mismatch());
            }
            (sha, Some(f))
        }
        // Received whole, checked, then stored as its own object.
        Blobs::Bucket(bucket) => {
            let mut chunks = Vec::new();
            let bad_size = || bad_part_size(expected);
            let (size, sha) =
                copy_body(state, b, &mut Out::Memory(&mut chunks), expected, bad_size).await?;
            if size != expected {
                return Err(bad_part_size(expected));
            }
            if sha != expected_sha256 {
                return Err(hash_mismatch());
            }
            bucket
                .put_object(c.firm, document, n, chunks)
                .await
                .map_err(|e| ApiError::internal("part upload", e))?;
            (sha, None)
        }
    };
    crate::auth::accept_upload(state, c).await?;
    // Recorded in turn: wait (at most one body timeout) for the parts before it.
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(state.config.body_timeout_ms);
    loop {
        let turn = upload.recorded.notified();
        {
            let mut slot = upload.slot.lock().await;
            let (_, mut parts) = open_upload(state, c, file, document).await?;
            let received = parts.len() as u64;
            if received == n {
                state
                    .store
                    .add_upload_part(c.firm, document, n, sha)
                    .await
                    .map_err(store_err)?;
                if let Some(f) = written {
                    slot.start_writeback(f);
                }
                upload.recorded.notify_waiters();
                parts.push(sha);
                drop(claim);
                return Ok(upload_answer(&parts));
            }
            if received > n {
                return Ok(upload_answer(&parts));
            }
        }
        if tokio::time::timeout_at(deadline, turn).await.is_err() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "part_out_of_order",
                "the parts before this one did not arrive",
            ));
        }
    }
}

/// Writes one part at `offset`, exactly `len` bytes (a part's bytes never leave its own
/// range, so parts can be written side by side); returns its SHA-256 and the file
/// (written, not synced).
async fn append_part<S: Store>(
    state: &AppState<S>,
    body: Body,
    path: &std::path::Path,
    offset: u64,
    len: u64,
) -> Result<([u8; 32], std::fs::File), ApiError> {
    let path = path.to_owned();
    let sink = FileSink::start(move || {
        use std::io::Seek;
        let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
        f.seek(std::io::SeekFrom::Start(offset))?;
        Ok(f)
    });
    let (size, sha, f) = receive_to_file(
        state,
        body,
        sink,
        len,
        || bad_part_size(len),
        "upload write",
    )
    .await?;
    if size != len {
        return Err(bad_part_size(len));
    }
    Ok((sha, f))
}

fn bad_part_size(len: u64) -> ApiError {
    ApiError::bad_request(
        "bad_part_size",
        format!("this part must be exactly {len} bytes"),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteUpload {
    root: Hex,
}

/// Checks every part and the parts root, then stores the document.
async fn complete_upload<S: Store>(
    State(state): State<AppState<S>>,
    P((file, document)): P<(FileId, DocumentId)>,
    s: SignedJson<CompleteUpload>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let c = &s.caller;
    let upload = state.upload_lock(c.firm, document);
    let mut slot = upload.slot.lock().await;
    let (u, parts) = open_upload(&state, c, file, document).await?;
    let count = u.size.div_ceil(u.part_size);
    if parts.len() as u64 != count {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "upload_incomplete",
            format!("{} of {count} parts received", parts.len()),
        ));
    }
    let root = parts_root(u.part_size, &parts);
    if s.body.root.0 != root {
        return Err(ApiError::conflict(
            "root_mismatch",
            "the parts received do not have the announced root",
        ));
    }
    let copy = match &state.blobs {
        Blobs::Dir(dir) => {
            let path = dir.upload_path(c.firm, document);
            let f = tokio::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .await
                .map_err(|e| ApiError::internal("upload open", e))?;
            let on_disk = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            if on_disk != u.size {
                return Err(ApiError::internal("upload size", "stored bytes differ"));
            }
            // Parts are written without a sync each (a write-back starts after each in the
            // background); the whole file is synced once, here.
            slot.settle().await;
            f.sync_all()
                .await
                .map_err(|e| ApiError::internal("upload sync", e))?;
            let copy = crate::blobs::new_copy();
            dir.commit(&path, c.firm, document, copy)
                .await
                .map_err(|e| ApiError::internal("blob commit", e))?;
            Some(copy)
        }
        Blobs::Bucket(bucket) => {
            // Every recorded part is an object of its exact size; nothing more to write.
            let objects = bucket
                .objects(c.firm, document, None)
                .await
                .map_err(|e| ApiError::internal("upload objects", e))?;
            let sizes_right = objects.len() as u64 == count
                && objects.iter().enumerate().all(|(n, (_, size))| {
                    let n = n as u64;
                    *size == parts_len(&u, n + 1) - parts_len(&u, n)
                });
            if !sizes_right {
                return Err(ApiError::internal("upload size", "stored objects differ"));
            }
            // The parts are the upload session's own objects (one session per id).
            None
        }
    };
    let meta = crate::store::DocumentMeta {
        document,
        file,
        epoch: u.epoch,
        size: u.size,
        sha256: root,
        release_share: u.release_share,
        uploaded_by: c.device,
        year: u.year,
        blob: copy,
    };
    let finished = state
        .store
        .finish_upload(
            c.firm,
            meta,
            state.now_ms(),
            entry(
                c,
                state.now_ms(),
                &[
                    (SubjectKind::File, file.0),
                    (SubjectKind::Document, document.0),
                ],
            ),
        )
        .await;
    if let Err(e) = finished {
        if let (Blobs::Dir(dir), Some(copy)) = (&state.blobs, copy) {
            if matches!(e, StoreError::Exists) {
                state.blobs.discard(c.firm, document, copy).await;
            } else if let Err(back) = tokio::fs::rename(
                dir.path(c.firm, document, Some(copy)),
                dir.upload_path(c.firm, document),
            )
            .await
            {
                // The session cannot complete again; the client starts a new upload.
                tracing::warn!(error = %back, "an unrecorded upload was not put back");
            }
        }
        return Err(match e {
            StoreError::Exists => {
                ApiError::conflict("document_exists", "a document with this id exists")
            }
            other => store_err(other),
        });
    }
    if let Ok(mut m) = state.upload_locks.lock() {
        m.remove(&(c.firm, document));
    }
    push_to_file(
        &state,
        c.firm,
        file,
        &json!({ "type": "document", "file": file, "document": document }),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "size": u.size, "root": hex::encode(root) })),
    ))
}

async fn stream_to_file<S: Store>(
    state: &AppState<S>,
    body: Body,
    path: &std::path::Path,
    max: u64,
) -> Result<(u64, [u8; 32]), ApiError> {
    let target = path.to_owned();
    let sink = FileSink::start(move || std::fs::File::create(target));
    let (size, sha, f) =
        receive_to_file(state, body, sink, max, || too_large(max), "blob write").await?;
    tokio::task::spawn_blocking(move || f.sync_all())
        .await
        .map_err(|e| ApiError::internal("blob sync", e))?
        .map_err(|e| ApiError::internal("blob sync", e))?;
    Ok((size, sha))
}

/// Receives a body into `sink`'s file (at most `limit` bytes, `over` naming the error) and
/// waits for the writer, so nothing writes to the file once this returns, whatever the
/// outcome. Returns the size, the SHA-256 and the file (written, not synced).
async fn receive_to_file<S: Store>(
    state: &AppState<S>,
    body: Body,
    mut sink: FileSink,
    limit: u64,
    over: impl Fn() -> ApiError,
    what: &'static str,
) -> Result<(u64, [u8; 32], std::fs::File), ApiError> {
    let copied = copy_body(state, body, &mut Out::File(&mut sink), limit, over).await;
    let f = sink
        .finish()
        .await
        .map_err(|e| ApiError::internal(what, e))?;
    let (size, sha) = copied?;
    Ok((size, sha, f))
}

/// Where a body being received goes.
enum Out<'a> {
    /// A file, through its writer thread.
    File(&'a mut FileSink),
    /// An S3 multipart upload.
    Bucket(&'a mut BucketWriter),
    /// Memory (a part, at most [`DOCUMENT_PART_MAX`] bytes, before it is stored whole).
    Memory(&'a mut Vec<axum::body::Bytes>),
}

impl Out<'_> {
    async fn write(&mut self, chunk: axum::body::Bytes) -> Result<(), ApiError> {
        match self {
            Self::File(sink) => sink
                .write(chunk)
                .await
                .map_err(|()| ApiError::internal("blob write", "the writer stopped")),
            Self::Bucket(w) => w
                .write(chunk)
                .await
                .map_err(|e| ApiError::internal("blob upload", e)),
            Self::Memory(v) => {
                v.push(chunk);
                Ok(())
            }
        }
    }
}

/// Copies a request body into `out` while hashing it: at most `limit` bytes (`over` names
/// the error), each chunk within the body timeout (a large upload may take long, a stalled
/// one may not). Returns the size and SHA-256.
async fn copy_body<S: Store>(
    state: &AppState<S>,
    body: Body,
    out: &mut Out<'_>,
    limit: u64,
    over: impl Fn() -> ApiError,
) -> Result<(u64, [u8; 32]), ApiError> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    let idle = Duration::from_millis(state.config.body_timeout_ms);
    loop {
        let next = tokio::time::timeout(idle, stream.next())
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "upload stalled",
                )
            })?;
        let Some(chunk) = next else { break };
        let chunk =
            chunk.map_err(|_| ApiError::bad_request("bad_body", "upload was interrupted"))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(over());
        }
        hasher.update(&chunk);
        if let Err(e) = out.write(chunk).await {
            drain(&mut stream, idle).await;
            return Err(e);
        }
    }
    Ok((size, hasher.finalize().into()))
}

/// Reads and drops what is left of a body the relay answers early with an error (its
/// disk is full, say), at most [`DOCUMENT_PART_MAX`] bytes more and each chunk within the
/// body timeout. A connection closed under a body still arriving is reset, and the client
/// may lose the answer with it; so a part (and any body of that size) gets its answer.
async fn drain(
    stream: &mut (impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
    idle: Duration,
) {
    let mut left = DOCUMENT_PART_MAX;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(idle, stream.next()).await {
        let Some(rest) = left.checked_sub(chunk.len() as u64) else {
            break;
        };
        left = rest;
    }
}

async fn document_for<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    file: FileId,
    document: DocumentId,
) -> Result<crate::store::DocumentMeta, ApiError> {
    require_document_file(state, c, file)?;
    let meta = state
        .store
        .document(c.firm, document)
        .await
        .map_err(store_err)?
        .filter(|m| m.file == file)
        .ok_or_else(|| ApiError::not_found("no such document in this customer file"))?;
    require_document_epoch(c, meta.epoch)?;
    Ok(meta)
}

/// The byte range a `Range` header asks of a `size`-byte document: `Ok(None)` for the
/// whole (no header, or one we do not serve in parts: several ranges, other units), an
/// error when it lies outside the document.
fn asked_range(headers: &HeaderMap, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(())?;
    let number = |t: &str| t.trim().parse::<u64>().map_err(|_| ());
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        // The last n bytes.
        (true, false) => {
            let n = number(last)?.min(size);
            size - n..size
        }
        (false, true) => number(first)?..size,
        (false, false) => {
            let (a, b) = (number(first)?, number(last)?);
            if b < a {
                return Err(());
            }
            a..b.saturating_add(1).min(size)
        }
        (true, true) => return Err(()),
    };
    if range.start >= range.end {
        return Err(());
    }
    Ok(Some(range))
}

async fn download_document<S: Store>(
    State(state): State<AppState<S>>,
    P((file, document)): P<(FileId, DocumentId)>,
    headers: HeaderMap,
    s: Signed,
) -> Result<Response, ApiError> {
    let meta = document_for(&state, &s.caller, file, document).await?;
    let Ok(asked) = asked_range(&headers, meta.size) else {
        return Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{}", meta.size))],
        )
            .into_response());
    };
    log_read(
        &state,
        &s.caller,
        &[
            (SubjectKind::File, file.0),
            (SubjectKind::Document, document.0),
        ],
    )
    .await?;
    let range = asked.clone().unwrap_or(0..meta.size);
    let body = match &state.blobs {
        Blobs::Dir(dir) => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let mut f = tokio::fs::File::open(dir.path(s.caller.firm, document, meta.blob))
                .await
                .map_err(|e| ApiError::internal("blob open", e))?;
            f.seek(std::io::SeekFrom::Start(range.start))
                .await
                .map_err(|e| ApiError::internal("blob seek", e))?;
            // 256 KiB reads: the default 4 KiB would make a gigabyte a quarter-million frames.
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                f.take(range.end - range.start),
                256 * 1024,
            ))
        }
        Blobs::Bucket(bucket) => Body::from_stream(
            bucket
                .read(s.caller.firm, document, meta.blob, meta.size, range.clone())
                .await
                .map_err(|e| ApiError::internal("blob read", e))?,
        ),
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_LENGTH,
                (range.end - range.start).to_string(),
            ),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
            (
                header::HeaderName::from_static("ledgerline-content-sha256"),
                hex::encode(meta.sha256),
            ),
        ],
        body,
    )
        .into_response();
    if asked.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = header::HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            range.start,
            range.end - 1,
            meta.size
        )) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// Hands out a document's release share, after appending the device's signed request to
/// the firm's audit log, together with a signed checkpoint and the inclusion proof of that
/// entry: a client that verifies them knows its download is on the record.
async fn release_document<S: Store>(
    State(state): State<AppState<S>>,
    P((file, document)): P<(FileId, DocumentId)>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    let meta = document_for(&state, c, file, document).await?;
    let leaf = AuditLeaf {
        firm: c.firm,
        received_ms: state.now_ms(),
        request: c.request.clone(),
        subjects: vec![
            Subject {
                kind: SubjectKind::File,
                id: file.0,
            },
            Subject {
                kind: SubjectKind::Document,
                id: document.0,
            },
        ],
        body: None,
    }
    .normalise()
    .to_bytes();
    let index = state
        .store
        .append_audit_leaf(c.firm, leaf.clone())
        .await
        .map_err(store_err)?;
    // Any size that holds the entry will do; the latest also covers concurrent appends.
    let size = state.store.audit_size(c.firm).await.map_err(store_err)?;
    let (checkpoint, _) = audit::signed_checkpoint(&state, c.firm, size).await?;
    let proof = state
        .store
        .audit_inclusion(c.firm, index, size)
        .await
        .map_err(store_err)?;
    Ok(Json(json!({
        "release_share": hex::encode(meta.release_share),
        "epoch": meta.epoch,
        "audit_index": index,
        "entry": hex::encode(leaf),
        "checkpoint": checkpoint,
        "inclusion": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

// ---------------------------------------------------------------- invitations

/// Most join requests queued per invitation.
const MAX_JOIN_REQUESTS: u64 = 10;
/// Largest sealed join request.
const MAX_JOIN_REQUEST_BYTES: usize = 16 * 1024;
/// Longest an invitation may stay open.
const MAX_INVITE_LIFETIME_MS: u64 = 30 * 24 * 3600 * 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInvite {
    invite: Hex,
    expires_ms: u64,
}

/// A member opens a mailbox for the join requests of one invitation.
async fn create_invite<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<CreateInvite>,
) -> Result<StatusCode, ApiError> {
    // Any member may open a mailbox: admins invite people, members link their own new
    // devices. Who may then be admitted is the roster's rule, not the mailbox's.
    let c = &s.caller;
    let invite = body_id16(&s.body.invite.0)?;
    let now = state.now_ms();
    if s.body.expires_ms <= now || s.body.expires_ms > now + MAX_INVITE_LIFETIME_MS {
        return Err(ApiError::bad_request(
            "bad_expiry",
            "an invitation expires within 30 days from now",
        ));
    }
    state
        .store
        .create_invite(c.firm, invite, c.member, s.body.expires_ms)
        .await
        .map_err(|e| match e {
            StoreError::Exists => {
                ApiError::conflict("invite_exists", "an invitation with this id exists")
            }
            other => store_err(other),
        })?;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    request: Hex,
}

/// The joiner drops a sealed request. Unauthenticated (the joiner has no device in the
/// roster yet); knowing the invite id requires the code, and the queue is bounded.
async fn post_join_request<S: Store>(
    State(state): State<AppState<S>>,
    P(invite): P<String>,
    req: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let invite = path_id16(&invite)?;
    let body = read_body(
        req.into_body(),
        MAX_JOIN_REQUEST_BYTES * 2 + 64,
        Duration::from_millis(state.config.body_timeout_ms),
    )
    .await?;
    let JoinRequest { request } = parse_json(&body)?;
    if request.0.is_empty() || request.0.len() > MAX_JOIN_REQUEST_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a join request is at most {MAX_JOIN_REQUEST_BYTES} bytes"),
        ));
    }
    match state.store.invite(invite).await.map_err(store_err)? {
        Some((_, _, expires)) if expires > state.now_ms() => {}
        _ => return Err(ApiError::not_found("no open invitation with this id")),
    }
    let id = state
        .store
        .add_join_request(invite, request.0, state.now_ms(), MAX_JOIN_REQUESTS)
        .await
        .map_err(|e| match e {
            StoreError::Exists => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "invite_full",
                "this invitation has too many pending requests",
            ),
            other => store_err(other),
        })?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// Which firm an open invitation belongs to (unauthenticated: the joiner needs the firm id
/// to certify its device; a lying relay only makes the admin's check of that certificate
/// fail).
async fn get_invite<S: Store>(
    State(state): State<AppState<S>>,
    P(invite): P<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let invite = path_id16(&invite)?;
    match state.store.invite(invite).await.map_err(store_err)? {
        Some((firm, _, expires)) if expires > state.now_ms() => {
            Ok(Json(json!({ "firm": firm, "expires_ms": expires })))
        }
        _ => Err(ApiError::not_found("no open invitation with this id")),
    }
}

async fn invite_of_caller<S: Store>(
    state: &AppState<S>,
    c: &Caller,
    invite: [u8; 16],
) -> Result<(), ApiError> {
    match state.store.invite(invite).await.map_err(store_err)? {
        Some((firm, creator, _)) if firm == c.firm => {
            if creator == c.member || c.role == Role::Admin {
                Ok(())
            } else {
                Err(ApiError::forbidden(
                    "only its creator or an admin may read or close an invitation",
                ))
            }
        }
        _ => Err(ApiError::not_found(
            "no invitation with this id in this firm",
        )),
    }
}

async fn get_join_requests<S: Store>(
    State(state): State<AppState<S>>,
    P(invite): P<String>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let invite = path_id16(&invite)?;
    invite_of_caller(&state, &s.caller, invite).await?;
    let list = state.store.join_requests(invite).await.map_err(store_err)?;
    let list: Vec<_> = list
        .into_iter()
        .map(|(id, sealed, t)| json!({ "id": id, "request": hex::encode(sealed), "created_ms": t }))
        .collect();
    Ok(Json(json!({ "requests": list })))
}

async fn delete_invite<S: Store>(
    State(state): State<AppState<S>>,
    P(invite): P<String>,
    s: Signed,
) -> Result<StatusCode, ApiError> {
    let invite = path_id16(&invite)?;
    invite_of_caller(&state, &s.caller, invite).await?;
    state.store.delete_invite(invite).await.map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- WebSocket

/// Read buffer of a WebSocket connection.
const WS_READ_BUFFER: usize = 8 * 1024;

async fn websocket<S: Store>(
    State(state): State<AppState<S>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    s: Signed,
) -> Result<Response, ApiError> {
    let c = s.caller;
    let ws = ws.map_err(|_| {
        ApiError::bad_request("websocket_required", "this route needs a WebSocket upgrade")
    })?;
    // Clients send the relay little on this channel (it pushes; they write over HTTP):
    // an 8 KiB read buffer instead of tungstenite's 128 KiB keeps a thousand connections
    // at a few MiB instead of over a hundred (BENCHMARKS.md, relay-bench --rooms).
    Ok(ws
        .max_message_size(64 * 1024)
        .read_buffer_size(WS_READ_BUFFER)
        .on_upgrade(move |socket| serve_socket(state, c.firm, c.device, socket)))
}

#[derive(Serialize)]
struct Hello {
    r#type: &'static str,
    device: DeviceId,
}

async fn serve_socket<S: Store>(
    state: AppState<S>,
    firm: FirmId,
    device: DeviceId,
    mut socket: WebSocket,
) {
    let (id, mut rx) = state.hub.register(firm, device);
    let hello = serde_json::to_string(&Hello {
        r#type: "hello",
        device,
    })
    .unwrap_or_default();
    if socket.send(WsMessage::Text(hello.into())).await.is_ok() {
        loop {
            tokio::select! {
                push = rx.recv() => match push {
                    Some(Push::Event(text)) => {
                        if socket.send(WsMessage::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Push::Close(reason)) => {
                        let frame = axum::extract::ws::CloseFrame { code: 4001, reason: reason.into() };
                        let _ = socket.send(WsMessage::Close(Some(frame))).await;
                        break;
                    }
                    None => break,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    // Clients only listen; pings are answered by the library.
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    state.hub.unregister(firm, device, id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn accept_names_the_binary_page_form_or_not() {
        let t = history::MEDIA_TYPE;
        for yes in [
            &["application/vnd.ledgerline.history-page"][..],
            &["application/json;q=0.5, application/vnd.ledgerline.history-page"],
            &["text/html", "Application/VND.Ledgerline.History-Page; q=1"],
            &["application/vnd.ledgerline.history-page;q=0.1"],
        ] {
            assert!(accepts(&accept(yes), t), "{yes:?}");
        }
        for no in [
            &[][..],
            &["application/json"],
            &["*/*"],
            &["application/vnd.ledgerline.history-page;q=0"],
            &["application/vnd.ledgerline.history-page; q=0.0, application/json"],
            &["application/vnd.ledgerline.history-pages"],
        ] {
            assert!(!accepts(&accept(no), t), "{no:?}");
        }
    }
}
