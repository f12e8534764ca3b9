//! Key backup and recovery (`protocol-spec/recovery.md`; `relay-api.md`, "Key backup").
//!
//! A member's devices keep their keys in a backup sealed to the member's backup key; the
//! relay files it under a recovery id and hands it to whoever presents that id (a fresh
//! device holding only the recovery key). Nothing here opens an item: the relay checks
//! sizes, the master key's signature over the backup key, and who may read what.

use super::*;
use crate::auth::Unlisted;
use crate::store::{BackupItem, BackupKey};
use ledgerline_protocol::keys::WrapPublicKey;
use ledgerline_protocol::recovery::{verify_backup_key, ItemKind, MAX_ITEM_ID};

/// Items per upload, and per page of a download.
const MAX_ITEMS: usize = 500;
/// Largest sealed item: a Megolm session export (~330 bytes) and its JSON, sealed.
const MAX_SEALED: usize = 2048;

fn key_json(k: &BackupKey) -> serde_json::Value {
    json!({
        "recovery_id": hex::encode(k.recovery_id),
        "backup_key": hex::encode(k.key),
        "signature": hex::encode(k.signature),
    })
}

fn fixed<const N: usize>(h: Hex, what: &str) -> Result<[u8; N], ApiError> {
    h.0.try_into()
        .map_err(|_| ApiError::bad_request("bad_backup", format!("{what}: expected {N} bytes")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutKey {
    recovery_id: Hex,
    backup_key: Hex,
    signature: Hex,
}

/// `PUT /v1/backup/key`: the caller's member's backup key, signed by their master key.
/// A new key drops the items sealed to the old one.
pub(super) async fn put_backup_key<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<PutKey>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    let key = BackupKey {
        recovery_id: fixed(s.body.recovery_id, "recovery_id")?,
        key: fixed(s.body.backup_key, "backup_key")?,
        signature: fixed(s.body.signature, "signature")?,
    };
    let master = with_roster(&state, c.firm, |r| {
        r.member(&c.member).map(|m| m.master_key)
    })?
    .ok_or_else(|| ApiError::internal("roster", "caller's member missing"))?;
    if !verify_backup_key(
        &master,
        c.firm,
        c.member,
        &WrapPublicKey::from(key.key),
        &key.recovery_id,
        &key.signature,
    ) {
        return Err(ApiError::bad_request(
            "bad_signature",
            "the backup key is not signed by this member's master key",
        ));
    }
    let audit = entry(c, state.now_ms(), &[(SubjectKind::Member, c.member.0)]);
    state
        .store
        .put_backup_key(c.firm, c.member, key, audit)
        .await
        .map_err(|e| match e {
            StoreError::Exists => ApiError::conflict(
                "recovery_id_taken",
                "another backup has this recovery id: make a new recovery key",
            ),
            other => store_err(other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/backup/key`: the caller's member's backup key (`404` if none yet).
pub(super) async fn get_backup_key<S: Store>(
    State(state): State<AppState<S>>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    match state
        .store
        .backup_key(c.firm, c.member)
        .await
        .map_err(store_err)?
    {
        Some(k) => Ok(Json(key_json(&k))),
        None => Err(ApiError::not_found("this member has no key backup yet")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Item {
    kind: u8,
    id: Hex,
    sealed: Hex,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutItems {
    backup_key: Hex,
    items: Vec<Item>,
}

/// `PUT /v1/backup/items`: adds items sealed to the member's current backup key
/// (`409 backup_key_changed` otherwise: the device fetches the new key and seals again).
pub(super) async fn put_items<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<PutItems>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    if s.body.items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "too_many_items",
            format!("at most {MAX_ITEMS} items per upload"),
        ));
    }
    let sealed_to = fixed(s.body.backup_key, "backup_key")?;
    let mut items = Vec::with_capacity(s.body.items.len());
    for it in s.body.items {
        if ItemKind::from_u8(it.kind).is_none() {
            return Err(ApiError::bad_request("bad_item", "unknown item kind"));
        }
        if it.id.0.len() > MAX_ITEM_ID || it.sealed.0.len() > MAX_SEALED || it.sealed.0.len() < 49 {
            return Err(ApiError::bad_request(
                "bad_item",
                format!("item id at most {MAX_ITEM_ID} bytes, sealed item 49 to {MAX_SEALED}"),
            ));
        }
        items.push(BackupItem {
            kind: it.kind,
            item: it.id.0,
            sealed: it.sealed.0,
        });
    }
    state
        .store
        .put_backup_items(c.firm, c.member, sealed_to, items)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::conflict(
                "backup_key_changed",
                "these items are sealed to a backup key that is not the member's current one",
            ),
            other => store_err(other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EscrowEntry {
    device: DeviceId,
    sealed: Hex,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutEscrow {
    backup_key: Hex,
    entries: Vec<EscrowEntry>,
}

/// `PUT /v1/backup/escrow`: the caller's member's recovery key sealed to admin devices,
/// while the firm's policy allows admin-assisted recovery; every entry for an active
/// admin's active device.
pub(super) async fn put_escrow<S: Store>(
    State(state): State<AppState<S>>,
    s: SignedJson<PutEscrow>,
) -> Result<StatusCode, ApiError> {
    let c = &s.caller;
    let sealed_to = fixed(s.body.backup_key, "backup_key")?;
    if s.body.entries.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "too_many_items",
            format!("at most {MAX_ITEMS} entries"),
        ));
    }
    let (policy, admins) = with_roster(&state, c.firm, |r| {
        let admins: std::collections::BTreeSet<DeviceId> = r
            .members()
            .filter(|(_, m)| m.role == Role::Admin && m.active.until.is_none())
            .flat_map(|(id, _)| r.active_devices(id).map(|(d, _)| *d).collect::<Vec<_>>())
            .collect();
        (r.admin_assisted_recovery(), admins)
    })?;
    if !policy {
        return Err(ApiError::forbidden(
            "the firm's policy does not allow admin-assisted recovery",
        ));
    }
    let mut entries = Vec::with_capacity(s.body.entries.len());
    for e in s.body.entries {
        if !admins.contains(&e.device) {
            return Err(ApiError::bad_request(
                "unknown_device",
                "an escrow entry is for a device that is not an active admin's",
            ));
        }
        if e.sealed.0.len() != 1 + 32 + 32 + 16 {
            return Err(ApiError::bad_request(
                "bad_item",
                "a sealed recovery key is 81 bytes",
            ));
        }
        entries.push((e.device, e.sealed.0));
    }
    state
        .store
        .put_escrow(c.firm, c.member, sealed_to, entries)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::conflict(
                "backup_key_changed",
                "the escrow is for a backup key that is not the member's current one",
            ),
            other => store_err(other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/backup/escrow/{member}`: an admin's device fetches the member's recovery key
/// as sealed to it, while the policy allows admin-assisted recovery. Audited: an admin
/// about to act as the member.
pub(super) async fn get_escrow<S: Store>(
    State(state): State<AppState<S>>,
    P(member): P<MemberId>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    if c.role != Role::Admin {
        return Err(ApiError::forbidden("only admins reprovision members"));
    }
    if !with_roster(&state, c.firm, |r| r.admin_assisted_recovery())? {
        return Err(ApiError::forbidden(
            "the firm's policy does not allow admin-assisted recovery",
        ));
    }
    let sealed = state
        .store
        .escrow(c.firm, member, c.device)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::not_found(
                "no recovery key of this member is escrowed for this device (the member runs `ledgerline backup new-key` while the policy is on)",
            )
        })?;
    log_read(&state, c, &[(SubjectKind::Member, member.0)]).await?;
    Ok(Json(json!({ "sealed": hex::encode(sealed) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct After {
    after: Option<u64>,
}

fn items_json(items: Vec<(u64, BackupItem)>) -> serde_json::Value {
    let next = items.last().map(|(seq, _)| *seq);
    let items: Vec<_> = items
        .into_iter()
        .map(|(_, it)| {
            json!({ "kind": it.kind, "id": hex::encode(it.item), "sealed": hex::encode(it.sealed) })
        })
        .collect();
    json!({ "items": items, "next": next })
}

/// `GET /v1/backup/items?after=N`: a page of the caller's member's backup. Reading it is
/// logged: the backup holds keys to the member's whole history.
pub(super) async fn get_items<S: Store>(
    State(state): State<AppState<S>>,
    Q(q): Q<After>,
    s: Signed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &s.caller;
    let items = state
        .store
        .backup_items(c.firm, c.member, q.after.unwrap_or(0), MAX_ITEMS as u32)
        .await
        .map_err(store_err)?;
    if !items.is_empty() {
        log_read(&state, c, &[(SubjectKind::Member, c.member.0)]).await?;
    }
    Ok(Json(items_json(items)))
}

async fn backup_of<S: Store>(
    state: &AppState<S>,
    id: &str,
) -> Result<(FirmId, MemberId, BackupKey), ApiError> {
    let id = path_id16(id)?;
    let found = state
        .store
        .backup_by_recovery_id(id)
        .await
        .map_err(store_err)?;
    // A member who left (or was removed) cannot come back through their backup.
    match found {
        Some((firm, member, key))
            if with_roster(state, firm, |r| {
                r.member(&member).is_some_and(|m| m.active.until.is_none())
            })
            .unwrap_or(false) =>
        {
            Ok((firm, member, key))
        }
        _ => Err(ApiError::not_found(
            "no key backup for this recovery key on this relay",
        )),
    }
}

/// `GET /v1/recovery/{id}`: what a fresh device needs to certify itself — the firm,
/// the member, the backup key and its signature, the identity item (the master key,
/// sealed) and the roster. Knowing the recovery id is the credential: it is derived from
/// the recovery key, and everything returned that matters is sealed or signed.
pub(super) async fn get_recovery<S: Store>(
    State(state): State<AppState<S>>,
    P(id): P<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (firm, member, key) = backup_of(&state, &id).await?;
    let identity = state
        .store
        .backup_item(firm, member, ItemKind::Identity as u8, Vec::new())
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::not_found("the backup holds no identity yet: a device must sync first")
        })?;
    let roster: Vec<String> = state
        .store
        .roster_events(firm, 0)
        .await
        .map_err(store_err)?
        .iter()
        .map(hex::encode)
        .collect();
    Ok(Json(json!({
        "recovery_id": hex::encode(key.recovery_id),
        "backup_key": hex::encode(key.key),
        "signature": hex::encode(key.signature),
        "firm": firm,
        "member": member,
        "identity": hex::encode(&identity),
        "roster": roster,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostDevice {
    event: Hex,
}

/// `POST /v1/recovery/{id}/device`: a fresh device adds itself to the roster with a
/// `DeviceAdded` event its member's master key signed, the request signed by the new
/// device's own key (the roster does not list it yet). Audited like any roster change.
pub(super) async fn post_device<S: Store>(
    State(state): State<AppState<S>>,
    P(id): P<String>,
    u: Unlisted,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (firm, member, _) = backup_of(&state, &id).await?;
    let body: PostDevice = parse_json(&u.body)?;
    let event = decode_event(&body.event.0)?;
    let EventKind::DeviceAdded(cert) = &event.body.kind else {
        return Err(ApiError::bad_request(
            "bad_event",
            "only a DeviceAdded event may be appended this way",
        ));
    };
    if u.request.head.firm != firm
        || event.body.signer != member
        || cert.member != member
        || cert.device != u.request.head.device
    {
        return Err(ApiError::forbidden(
            "the event must add the requesting device to the backup's member, signed by them",
        ));
    }
    let role = with_roster(&state, firm, |r| r.member(&member).map(|m| m.role))?
        .ok_or_else(|| ApiError::not_found("no such member"))?;
    let caller = u.verify(&state, &cert.keys.signing, member, role).await?;
    append_event(&state, &caller, event, body.event.0).await
}
