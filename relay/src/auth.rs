//! Authentication of signed requests (`protocol-spec/signed-request.md`) and the
//! extractors that carry the result into handlers.

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Store;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use ledgerline_protocol::constants::headers;
use ledgerline_protocol::ids::{DeviceId, FirmId, MemberId};
use ledgerline_protocol::request::{
    check_fresh, check_request, HttpHeaders, RequestError, SignedRequest,
};
use ledgerline_protocol::roster::Role;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The authenticated device behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Firm.
    pub firm: FirmId,
    /// Device.
    pub device: DeviceId,
    /// The device's member.
    pub member: MemberId,
    /// The member's role now.
    pub role: Role,
    /// The verified signed request (for audit leaves).
    pub request: SignedRequest,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    h.get(name)
        .ok_or_else(|| {
            ApiError::unauthorized("missing_signature", format!("header {name} is required"))
        })?
        .to_str()
        .map_err(|_| {
            ApiError::unauthorized("malformed_signature", format!("header {name} is not ASCII"))
        })
}

fn parse_request(parts: &Parts) -> Result<SignedRequest, ApiError> {
    let h = &parts.headers;
    let hv = HttpHeaders {
        firm: header(h, headers::FIRM)?,
        device: header(h, headers::DEVICE)?,
        timestamp: header(h, headers::TIMESTAMP)?,
        nonce: header(h, headers::NONCE)?,
        content_sha256: header(h, headers::CONTENT_SHA256)?,
        signature: header(h, headers::SIGNATURE)?,
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    SignedRequest::from_http(parts.method.as_str(), path, &hv).map_err(|e| {
        ApiError::unauthorized("malformed_signature", format!("signature headers: {e}"))
    })
}

fn request_error(e: RequestError) -> ApiError {
    let (code, msg) = match e {
        RequestError::Malformed(_) => ("malformed_signature", "malformed signed request"),
        RequestError::Stale => (
            "stale_request",
            "request timestamp is too old; check the device clock",
        ),
        RequestError::FromFuture => (
            "future_request",
            "request timestamp is in the future; check the device clock",
        ),
        RequestError::BadSignature => ("bad_signature", "request signature does not verify"),
        RequestError::BodyHashMismatch => {
            ("body_hash_mismatch", "body does not match the signed hash")
        }
        RequestError::Replayed => ("replayed_request", "request nonce was already used"),
    };
    ApiError::unauthorized(code, msg)
}

/// Identifies the device and checks that it is active; returns the caller without having
/// verified the signature yet.
fn identify<S: Store>(
    state: &AppState<S>,
    req: SignedRequest,
) -> Result<(Caller, ledgerline_protocol::keys::VerifyingKey), ApiError> {
    let firm = req.head.firm;
    let unknown =
        || ApiError::unauthorized("unknown_device", "device is not in this firm's roster");
    let fs = state.firm(firm).ok_or_else(unknown)?;
    let roster = fs
        .roster
        .read()
        .map_err(|_| ApiError::internal("roster lock", "poisoned"))?;
    let device = roster.device(&req.head.device).ok_or_else(unknown)?;
    if !roster.device_active_at(&req.head.device, state.now_ms()) {
        return Err(ApiError::unauthorized(
            "revoked_device",
            "device or member has been revoked",
        ));
    }
    let member = roster.member(&device.member).ok_or_else(unknown)?;
    let caller = Caller {
        firm,
        device: req.head.device,
        member: device.member,
        role: member.role,
        request: req,
    };
    Ok((caller, device.keys.signing))
}

/// The routes a guest's device may use (`protocol-spec/guests.md`): its roster, its own
/// devices and prekeys, Olm messages, rooms and documents (each handler then holds the
/// guest to their one conversation), the log's checkpoints and consistency proofs (a
/// guest's client verifies that its own downloads are on the record, and that the log it
/// saw is never rewritten), reporting an opened room, and the push channel.
/// Everything else is `403 guest_forbidden`, so a route added later is closed to guests
/// until somebody opens it here on purpose.
const GUEST_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/roster"),
    ("POST", "/v1/roster"),
    ("PUT", "/v1/devices/self/prekeys"),
    ("POST", "/v1/prekeys/claim"),
    ("POST", "/v1/to-device"),
    ("GET", "/v1/to-device"),
    ("POST", "/v1/to-device/ack"),
    ("POST", "/v1/rooms"),
    ("GET", "/v1/rooms/{room}"),
    ("POST", "/v1/rooms/{room}/messages"),
    ("GET", "/v1/rooms/{room}/messages"),
    ("PUT", "/v1/files/{file}/documents/{document}"),
    ("GET", "/v1/files/{file}/documents/{document}"),
    ("POST", "/v1/files/{file}/documents/{document}/release"),
    ("POST", "/v1/files/{file}/uploads/{document}"),
    ("PUT", "/v1/files/{file}/uploads/{document}/parts/{n}"),
    ("POST", "/v1/files/{file}/uploads/{document}/complete"),
    ("GET", "/v1/audit/checkpoint"),
    ("GET", "/v1/audit/consistency"),
    ("POST", "/v1/audit/opened"),
    ("GET", "/v1/ws"),
];

/// Refuses a guest's request on a route not in [`GUEST_ROUTES`].
fn guest_gate(parts: &Parts, c: &Caller) -> Result<(), ApiError> {
    if c.role != Role::Guest {
        return Ok(());
    }
    let route = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(axum::extract::MatchedPath::as_str);
    let method = parts.method.as_str();
    if route.is_some_and(|r| GUEST_ROUTES.contains(&(method, r))) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "guest_forbidden",
            "a guest may use only their own conversation and its documents",
        ))
    }
}

fn rate_limit<S: Store>(state: &AppState<S>, c: &Caller) -> Result<(), ApiError> {
    if state.limiter.allow(c.firm, c.device) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this device; slow down",
        ))
    }
}

/// Reads a whole body, refusing more than `limit` bytes or a body slower than the timeout.
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Vec<u8>, ApiError> {
    let read = async {
        let mut out = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|_| ApiError::bad_request("bad_body", "request body could not be read"))?;
            if out.len() + chunk.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request body exceeds {limit} bytes"),
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "request body was not received in time",
        )
    })?
}

async fn authenticate<S: Store>(
    state: &AppState<S>,
    req: Request,
) -> Result<(Caller, Vec<u8>), ApiError> {
    let (parts, body) = req.into_parts();
    let signed = parse_request(&parts)?;
    state.fresh_firm(signed.head.firm).await?;
    let (caller, key) = identify(state, signed)?;
    guest_gate(&parts, &caller)?;
    let body = read_body(
        body,
        state.config.max_body_bytes,
        Duration::from_millis(state.config.body_timeout_ms),
    )
    .await?;
    check_request(
        &caller.request,
        &key,
        &body,
        state.now_ms(),
        state.config.max_skew_ms,
    )
    .map_err(request_error)?;
    claim_nonce(state, &caller.request).await?;
    rate_limit(state, &caller)?;
    Ok((caller, body))
}

/// Claims a verified request's nonce: in this instance's replay window (the lock is held
/// for that lookup alone; the signature was checked before, outside it) and, on a shared
/// store, in the window all instances share. `replayed_request` if it was used.
async fn claim_nonce<S: Store>(
    state: &AppState<S>,
    request: &SignedRequest,
) -> Result<(), ApiError> {
    let fresh = state
        .verifier
        .lock()
        .map_err(|_| ApiError::internal("verifier lock", "poisoned"))?
        .remember(request, state.now_ms());
    if !fresh {
        return Err(request_error(RequestError::Replayed));
    }
    claim_shared_nonce(state, request).await
}

/// On a store other instances share, the nonce of a request this instance accepted is
/// also recorded there, and refused if another instance accepted it first: a request
/// replayed to a different instance is as dead as one replayed to the same.
async fn claim_shared_nonce<S: Store>(
    state: &AppState<S>,
    request: &SignedRequest,
) -> Result<(), ApiError> {
    if !state.store.shared() {
        return Ok(());
    }
    let expires = request
        .head
        .timestamp_ms
        .saturating_add(state.config.max_skew_ms);
    let fresh = state
        .store
        .claim_nonce(request.head.device, request.head.nonce, expires)
        .await
        .map_err(|e| ApiError::internal("nonce", e))?;
    if fresh {
        Ok(())
    } else {
        Err(request_error(RequestError::Replayed))
    }
}

/// A signed request whose body is JSON of type `T` (unknown fields refused).
#[derive(Debug)]
pub struct SignedJson<T> {
    /// Who sent it.
    pub caller: Caller,
    /// The parsed body.
    pub body: T,
    /// The body as signed (for the audit leaves that carry it).
    pub raw: Vec<u8>,
}

/// Parses JSON without echoing any of the input in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON"
            }
            serde_json::error::Category::Data => "JSON does not match the expected shape",
            serde_json::error::Category::Io => "JSON could not be read",
        };
        ApiError::bad_request(
            "bad_json",
            format!(
                "request body: {what} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

impl<S: Store, T: DeserializeOwned + Send> FromRequest<AppState<S>> for SignedJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, ApiError> {
        let (caller, raw) = authenticate(state, req).await?;
        Ok(Self {
            caller,
            body: parse_json(&raw)?,
            raw,
        })
    }
}

/// A signed request from a device the roster does not list yet, body read but nothing
/// verified: the handler finds the key in the body (a device certifying itself with its
/// member's master key, `protocol-spec/recovery.md`) and calls [`Unlisted::verify`].
#[derive(Debug)]
pub struct Unlisted {
    /// The parsed signature headers.
    pub request: SignedRequest,
    /// The body as sent.
    pub body: Vec<u8>,
}

impl Unlisted {
    /// Verifies the request under `key` (freshness, body hash, signature, replay) and
    /// applies the device's rate limit; returns the caller.
    pub async fn verify<S: Store>(
        self,
        state: &AppState<S>,
        key: &ledgerline_protocol::keys::VerifyingKey,
        member: MemberId,
        role: Role,
    ) -> Result<Caller, ApiError> {
        check_request(
            &self.request,
            key,
            &self.body,
            state.now_ms(),
            state.config.max_skew_ms,
        )
        .map_err(request_error)?;
        claim_nonce(state, &self.request).await?;
        let caller = Caller {
            firm: self.request.head.firm,
            device: self.request.head.device,
            member,
            role,
            request: self.request,
        };
        rate_limit(state, &caller)?;
        Ok(caller)
    }
}

impl<S: Store> FromRequest<AppState<S>> for Unlisted {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let request = parse_request(&parts)?;
        let body = read_body(
            body,
            state.config.max_body_bytes,
            Duration::from_millis(state.config.body_timeout_ms),
        )
        .await?;
        Ok(Self { request, body })
    }
}

/// A signed request without a body.
#[derive(Debug)]
pub struct Signed {
    /// Who sent it.
    pub caller: Caller,
}

impl<S: Store> FromRequest<AppState<S>> for Signed {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, ApiError> {
        let (caller, body) = authenticate(state, req).await?;
        if !body.is_empty() {
            return Err(ApiError::bad_request(
                "unexpected_body",
                "this request takes no body",
            ));
        }
        Ok(Self { caller })
    }
}

/// A signed upload: headers verified (freshness, signature), body not yet read. The
/// handler streams the body, compares its hash with `expected_sha256`, and only then calls
/// [`accept_upload`], which records the nonce.
#[derive(Debug)]
pub struct SignedUpload {
    /// Who sends it.
    pub caller: Caller,
    /// The body stream.
    pub body: Body,
    /// The signed SHA-256 of the body.
    pub expected_sha256: [u8; 32],
    /// Request headers (for upload metadata).
    pub headers: HeaderMap,
}

/// Records an upload's nonce once its body matched; `replayed_request` if it was used.
pub async fn accept_upload<S: Store>(state: &AppState<S>, caller: &Caller) -> Result<(), ApiError> {
    claim_nonce(state, &caller.request).await
}

impl<S: Store> FromRequest<AppState<S>> for SignedUpload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let signed = parse_request(&parts)?;
        state.fresh_firm(signed.head.firm).await?;
        let (caller, key) = identify(state, signed)?;
        guest_gate(&parts, &caller)?;
        check_fresh(
            caller.request.head.timestamp_ms,
            state.now_ms(),
            state.config.max_skew_ms,
        )
        .map_err(request_error)?;
        caller
            .request
            .verify_signature(&key)
            .map_err(request_error)?;
        rate_limit(state, &caller)?;
        let expected_sha256 = caller.request.head.body_sha256;
        Ok(Self {
            caller,
            body,
            expected_sha256,
            headers: parts.headers,
        })
    }
}

/// Path parameters, with rejections in the relay's error format.
#[derive(Debug)]
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|_| {
                ApiError::bad_request("bad_path", "a path parameter is not a valid id or number")
            })
    }
}

/// Query parameters, with rejections in the relay's error format.
#[derive(Debug)]
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Q(t))
            .map_err(|_| {
                ApiError::bad_request(
                    "bad_query",
                    "the query string has unknown, missing or invalid parameters",
                )
            })
    }
}
