//! The firm's audit log over HTTP (`protocol-spec/relay-api.md`, "Audit log"): signed
//! checkpoints, entries, inclusion and consistency proofs.
//!
//! Checkpoints are signed on request for the log's current size with the firm's log key,
//! derived from the relay's secret (`keys.md`). Every device of the firm may fetch
//! checkpoints and proofs (clients verify their own view at every sync); entries — which
//! say who touched which opaque id when — are for admins and auditors.

use super::*;
use ledgerline_protocol::checkpoint::Checkpoint;
use ledgerline_protocol::keys::LogSigningKey;

/// The firm's log key.
pub(super) fn log_key<S: Store>(state: &AppState<S>, firm: FirmId) -> LogSigningKey {
    LogSigningKey::derive(&state.log_secret, &firm)
}

/// A signed checkpoint of the first `size` leaves: `(note, root)`.
pub(super) async fn signed_checkpoint<S: Store>(
    state: &AppState<S>,
    firm: FirmId,
    size: u64,
) -> Result<(String, [u8; 32]), ApiError> {
    let root = state
        .store
        .audit_root(firm, size)
        .await
        .map_err(store_err)?;
    let cp = Checkpoint::new(&state.config.log_origin(firm), size, root)
        .map_err(|e| ApiError::internal("checkpoint", e))?;
    let note = String::from_utf8(cp.sign(&log_key(state, firm)))
        .map_err(|e| ApiError::internal("checkpoint", e))?;
    Ok((note, root))
}

fn hexes(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// `GET /v1/audit/checkpoint`: the log's state now, signed, with the latest checkpoint
/// the firm's witness cosigned.
pub(super) async fn get_checkpoint<S: Store>(
    State(state): State<AppState<S>>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let firm = s.caller.firm;
    let size = state.store.audit_size(firm).await.map_err(store_err)?;
    let (note, root) = signed_checkpoint(&state, firm, size).await?;
    let cosigned = state
        .store
        .cosigned_checkpoint(firm)
        .await
        .map_err(store_err)?
        .map(|(_, note)| String::from_utf8_lossy(&note).into_owned());
    Ok(Json(json!({
        "origin": state.config.log_origin(firm),
        "log_key": hex::encode(log_key(&state, firm).verifying_key().as_bytes()),
        "size": size,
        "root": hex::encode(root),
        "checkpoint": note,
        "cosigned": cosigned,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntriesQuery {
    from: Option<u64>,
    limit: Option<u32>,
}

/// `GET /v1/audit/entries?from&limit`: leaves in order (admins and auditors).
pub(super) async fn get_entries<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<EntriesQuery>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    if !matches!(c.role, Role::Admin | Role::Auditor) {
        return Err(ApiError::forbidden(
            "the audit log's entries are for admins and auditors",
        ));
    }
    let from = q.from.unwrap_or(0);
    let leaves = state
        .store
        .audit_leaves(c.firm, from, page(q.limit, state.config.max_page))
        .await
        .map_err(store_err)?;
    Ok(Json(json!({
        "from": from,
        "entries": leaves.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InclusionQuery {
    index: u64,
    size: u64,
}

/// `GET /v1/audit/inclusion?index&size`: RFC 6962 inclusion proof.
pub(super) async fn get_inclusion<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<InclusionQuery>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let proof = state
        .store
        .audit_inclusion(s.caller.firm, q.index, q.size)
        .await
        .map_err(|e| beyond_log(e, "index must be below size, size within the log"))?;
    Ok(Json(
        json!({ "index": q.index, "size": q.size, "proof": hexes(&proof) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// `GET /v1/audit/consistency?from&to`: RFC 6962 consistency proof.
pub(super) async fn get_consistency<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<ConsistencyQuery>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let proof = state
        .store
        .audit_consistency(s.caller.firm, q.from, q.to)
        .await
        .map_err(|e| beyond_log(e, "from must not exceed to, to within the log"))?;
    Ok(Json(
        json!({ "from": q.from, "to": q.to, "proof": hexes(&proof) }),
    ))
}

fn beyond_log(e: StoreError, what: &str) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::bad_request("beyond_log", what.to_owned()),
        other => store_err(other),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Cosigned {
    checkpoint: String,
}

/// `POST /v1/audit/cosignatures`: a device of the firm's owner hands in a checkpoint it
/// cosigned as the firm's witness. The relay checks its own signature, that the root is
/// its tree's at that size, and the cosignature under the device's certified key.
pub(super) async fn post_cosignature<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<Cosigned>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let c = &s.caller;
    let owner = with_roster(&state, c.firm, |r| r.owner())?;
    if c.member != owner {
        return Err(ApiError::forbidden(
            "only the owner's devices witness the firm's log",
        ));
    }
    let key = caller_signing_key(&state, c)?;
    let note = s.body.checkpoint.as_bytes();
    let (cp, _) = ledgerline_protocol::checkpoint::open_cosigned_checkpoint(
        note,
        &state.config.log_origin(c.firm),
        &log_key(&state, c.firm).verifying_key(),
        &ledgerline_protocol::checkpoint::device_witness_name(&c.firm, &c.device),
        &key,
    )
    .map_err(|e| ApiError::bad_request("bad_cosignature", format!("checkpoint refused: {e}")))?;
    let root = state
        .store
        .audit_root(c.firm, cp.size())
        .await
        .map_err(|e| beyond_log(e, "the checkpoint is larger than the log"))?;
    if root != *cp.root() {
        return Err(ApiError::bad_request(
            "bad_cosignature",
            "the checkpoint's root is not this log's",
        ));
    }
    state
        .store
        .put_cosigned_checkpoint(c.firm, cp.size(), note.to_vec())
        .await
        .map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(json!({ "size": cp.size() }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CosignedQuery {
    from_size: Option<u64>,
    limit: Option<u32>,
}

/// `GET /v1/audit/cosigned?from_size&limit`: the witness-cosigned checkpoints, ascending.
pub(super) async fn get_cosigned<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<CosignedQuery>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = state
        .store
        .cosigned_checkpoints(
            s.caller.firm,
            q.from_size.unwrap_or(0),
            page(q.limit, state.config.max_page),
        )
        .await
        .map_err(store_err)?;
    Ok(Json(json!({
        "checkpoints": list
            .into_iter()
            .map(|(_, n)| String::from_utf8_lossy(&n).into_owned())
            .collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenedQuery {
    room: String,
    at: u64,
}

/// `POST /v1/audit/opened?room&at`: a device opened a conversation from its local store at
/// `at` (its clock): the signed request itself is the entry, so the room and the time are
/// the device's own words. Any active device of the firm may report a room of the firm —
/// a member who lost access still holds what was cached, and reading it is on the record.
pub(super) async fn post_opened<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<OpenedQuery>,
    s: Signed,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let c = &s.caller;
    let room = path_id16(&q.room)?;
    if q.at > state.now_ms().saturating_add(state.config.max_skew_ms) {
        return Err(ApiError::bad_request(
            "bad_time",
            "an opening cannot be in the future",
        ));
    }
    let r = state
        .store
        .room(c.firm, room)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::not_found("no such room"))?;
    // A guest reports their own conversation only (every room they can read).
    if c.role == Role::Guest {
        super::load_room_for(&state, c, room).await?;
    }
    let mut about = vec![(SubjectKind::Room, room)];
    about.extend(r.file.map(|f| (SubjectKind::File, f.0)));
    let index = state
        .store
        .append_audit_leaf(c.firm, entry(c, state.now_ms(), &about))
        .await
        .map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(json!({ "audit_index": index }))))
}
