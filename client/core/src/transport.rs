//! Talking to the relay: a [`Transport`] trait (HTTP by default, anything in tests) and a
//! [`RelayClient`] that signs every request as the device and turns the relay's answers
//! into typed results — or into a clear error when the relay is down or misbehaves.

use ledgerline_protocol::history;
use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, MemberId, RecordId, TeamId};
use ledgerline_protocol::keys::DeviceSigner;
use ledgerline_protocol::prekeys::SignedPrekey;
use ledgerline_protocol::request::RequestHead;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;

/// Why a relay call failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay could not be reached (down, refused, timed out, connection dropped).
    #[error("relay unreachable: {0}")]
    Unreachable(String),
    /// The relay refused the request with its JSON error.
    #[error("relay refused the request ({status} {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Relay's explanation.
        message: String,
    },
    /// The relay answered something that is not a valid answer (peer misbehaved).
    #[error("relay sent an invalid answer: {0}")]
    Garbage(String),
}

/// A raw HTTP exchange.
pub trait Transport: Send + Sync {
    /// Sends `method path` with `headers` and `body`; returns status and body.
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(u16, Vec<u8>), RelayError>> + Send;
}

/// Environment variable naming a PEM file of extra trusted CA certificates.
pub const CA_FILE_ENV: &str = "LEDGERLINE_CA_FILE";

/// HTTP(S) to a relay base URL.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    base: String,
    client: reqwest::Client,
}

impl HttpTransport {
    /// A transport to `base` (e.g. `http://127.0.0.1:8448`).
    ///
    /// `https://` relays are verified against the system's roots and, when the environment
    /// names one in `LEDGERLINE_CA_FILE` (PEM), the office's own CA as well.
    pub fn new(base: &str) -> Result<Self, RelayError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(120))
            .https_only(base.starts_with("https://"));
        builder = extra_roots(builder, CA_FILE_ENV).map_err(RelayError::Unreachable)?;
        let client = builder
            .build()
            .map_err(|e| RelayError::Unreachable(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }
}

impl Transport for HttpTransport {
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), RelayError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| RelayError::Unreachable(e.to_string()))?;
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        let res = rb
            .body(body)
            .send()
            .await
            .map_err(|e| RelayError::Unreachable(describe(e)))?;
        let status = res.status().as_u16();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| RelayError::Unreachable(describe(e)))?;
        Ok((status, bytes.to_vec()))
    }
}

/// Records asked for per page; a shorter page is the last one.
pub const RECORDS_PAGE: usize = 500;

/// How often a rate-limited call is retried (pauses 0.2 s, 0.4 s, ... 3.2 s).
pub const RATE_LIMIT_RETRIES: usize = 5;

/// A transport error with its causes ("error sending request: ... Connection refused"),
/// without the URL (which may carry ids).
/// Adds the PEM certificates of the file the environment variable `env` names (an office's
/// own CA) to the roots an HTTP client trusts; nothing when it is unset.
pub(crate) fn extra_roots(
    mut builder: reqwest::ClientBuilder,
    env: &str,
) -> Result<reqwest::ClientBuilder, String> {
    if let Some(path) = std::env::var_os(env) {
        let pem = std::fs::read(&path).map_err(|e| format!("cannot read {env}: {e}"))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{env} is not PEM: {e}"))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

/// A to-device message as listed by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToDeviceMessage {
    /// Acknowledgement cursor.
    pub id: u64,
    /// Sending device.
    pub sender: DeviceId,
    /// Olm ciphertext.
    pub ciphertext: Vec<u8>,
}

/// A room message as listed by the relay: the protocol's history-page message (the sender as
/// the relay states it; the timeline checks it).
pub use ledgerline_protocol::history::PageMessage as RoomMessage;

/// A wrapped key addressed to this device or member, as listed by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// Member whose key it is (member keys) — or the holder (epoch keys).
    pub member: Option<MemberId>,
    /// Member-key version, or the holder's key version for an epoch key.
    pub version: u32,
    /// Epoch (epoch keys and links only).
    pub epoch: u64,
    /// The wrap.
    pub wrapped: Vec<u8>,
}

/// A team key wrapped for this member, as listed by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamKeyWrap {
    /// Team.
    pub team: TeamId,
    /// Team-key version.
    pub version: u32,
    /// Version of this member's key that wraps it.
    pub member_key_version: u32,
    /// The wrap.
    pub wrapped: Vec<u8>,
}

/// A record envelope as listed by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRecord {
    /// Record id.
    pub record: RecordId,
    /// Version.
    pub version: u64,
    /// Sync cursor.
    pub cursor: u64,
    /// Envelope bytes (unverified).
    pub envelope: Vec<u8>,
}

/// Membership of a room as the relay derives it from the roster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoomInfo {
    /// Members now.
    pub members: Vec<MemberId>,
    /// Their active devices.
    pub devices: Vec<DeviceId>,
}

/// Runs `attempt` (which signs anew each time: a resent signature would be a replay) again
/// after a `429`, up to [`RATE_LIMIT_RETRIES`] times with pauses of 0.2 s, 0.4 s, ...
async fn retry_rate_limited<R, F, Fut>(mut attempt: F) -> Result<R, RelayError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<R, RelayError>>,
{
    let mut pause = std::time::Duration::from_millis(200);
    for _ in 0..RATE_LIMIT_RETRIES {
        match attempt().await {
            Err(RelayError::Refused { status: 429, .. }) => {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
            other => return other,
        }
    }
    attempt().await
}

/// Turns a relay answer into JSON or a clear error.
fn interpret(status: u16, bytes: &[u8]) -> Result<Value, RelayError> {
    let parsed: Option<Value> = if bytes.is_empty() {
        Some(Value::Null)
    } else {
        serde_json::from_slice(bytes).ok()
    };
    match (status, parsed) {
        (200..=299, Some(v)) => Ok(v),
        (200..=299, None) => Err(RelayError::Garbage(format!(
            "status {status} with a body that is not JSON"
        ))),
        (_, Some(v)) if field_of(&v, "code").is_string() => Err(RelayError::Refused {
            status,
            code: field_of(&v, "code").as_str().unwrap_or_default().to_owned(),
            message: field_of(&v, "message")
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect(),
        }),
        (_, _) => Err(RelayError::Garbage(format!(
            "status {status} without an error body"
        ))),
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

use crate::profile::now_ms;

/// A JSON member, `Null` when absent (indexing `Value` never panics; this says so).
fn field_of<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get(name).unwrap_or(&Value::Null)
}

fn uint(v: &Value, field: &str) -> Result<u64, RelayError> {
    field_of(v, field)
        .as_u64()
        .ok_or_else(|| RelayError::Garbage(format!("{field} missing")))
}

fn u32_field(v: &Value, field: &str) -> Result<u32, RelayError> {
    u32::try_from(uint(v, field)?).map_err(|_| RelayError::Garbage(format!("{field} out of range")))
}

fn list<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, RelayError> {
    field_of(v, field)
        .as_array()
        .ok_or_else(|| RelayError::Garbage(format!("{field} missing")))
}

fn hex_field(v: &Value, field: &str) -> Result<Vec<u8>, RelayError> {
    field_of(v, field)
        .as_str()
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(|| RelayError::Garbage(format!("field {field} is not hex")))
}

fn typed<T: DeserializeOwned>(v: &Value, field: &str) -> Result<T, RelayError> {
    serde_json::from_value(field_of(v, field).clone())
        .map_err(|_| RelayError::Garbage(format!("field {field} has the wrong shape")))
}

/// A member's backup key as the relay returns it (verify the signature before use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupKeyInfo {
    /// Recovery id.
    pub recovery_id: [u8; 16],
    /// X25519 backup key.
    pub key: [u8; 32],
    /// Master-key signature.
    pub signature: [u8; 64],
}

/// What the relay holds for a recovery id.
#[derive(Debug, Clone)]
pub struct RecoveryInfo {
    /// Firm.
    pub firm: FirmId,
    /// Member.
    pub member: ledgerline_protocol::ids::MemberId,
    /// The member's backup key.
    pub key: BackupKeyInfo,
    /// The sealed identity item.
    pub identity: Vec<u8>,
    /// The firm's roster events.
    pub roster: Vec<Vec<u8>>,
}

fn fixed_field<const N: usize>(v: &Value, field: &str) -> Result<[u8; N], RelayError> {
    hex_field(v, field)?
        .try_into()
        .map_err(|_| RelayError::Garbage(format!("field {field} has the wrong length")))
}

fn backup_key_of(v: &Value) -> Result<BackupKeyInfo, RelayError> {
    Ok(BackupKeyInfo {
        recovery_id: fixed_field(v, "recovery_id")?,
        key: fixed_field(v, "backup_key")?,
        signature: fixed_field(v, "signature")?,
    })
}

/// The relay API, signed as one device of one firm.
#[derive(Debug, Clone)]
pub struct RelayClient<T> {
    transport: T,
    firm: FirmId,
    device: DeviceId,
    /// Requests sent so far (for reports and benchmarks).
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<T: Transport> RelayClient<T> {
    /// Requests sent so far by this client.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A client for `device` of `firm`.
    pub fn new(transport: T, firm: FirmId, device: DeviceId) -> Self {
        Self {
            transport,
            firm,
            device,
            sent: std::sync::Arc::default(),
        }
    }

    /// One request as sent, counted; the status and body as answered.
    async fn exchange_raw(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), RelayError> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.transport.send(method, path, headers, body).await
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Result<Value, RelayError> {
        let (status, bytes) = self.exchange_raw(method, path, headers, body).await?;
        interpret(status, &bytes)
    }

    fn signed_headers(
        &self,
        signer: &impl DeviceSigner,
        method: &str,
        path: &str,
        body_sha256: [u8; 32],
    ) -> Result<Vec<(&'static str, String)>, RelayError> {
        let head = RequestHead::with_body_sha256(
            self.firm,
            self.device,
            method,
            path,
            now_ms(),
            body_sha256,
            &mut rand_core::OsRng,
        )
        .map_err(|e| RelayError::Garbage(format!("cannot sign this request: {e}")))?;
        Ok(head.sign(signer).http_headers().to_vec())
    }

    /// A signed `GET` whose successful answer is bytes in the form `accept` names rather
    /// than JSON; refusals and `429` retries as in [`Self::call`].
    async fn get_bytes(
        &self,
        signer: &impl DeviceSigner,
        path: &str,
        accept: &str,
    ) -> Result<Vec<u8>, RelayError> {
        retry_rate_limited(|| async {
            let mut headers = self.signed_headers(signer, "GET", path, sha256(&[]))?;
            headers.push(("accept", accept.to_owned()));
            let (status, bytes) = self.exchange_raw("GET", path, headers, Vec::new()).await?;
            if (200..=299).contains(&status) {
                return Ok(bytes);
            }
            Err(interpret(status, &bytes)
                .err()
                .unwrap_or_else(|| RelayError::Garbage(format!("status {status}"))))
        })
        .await
    }

    /// A signed call with a JSON body (or none). A `429` is retried a few times with
    /// growing pauses, each time freshly signed (a resent signature would be a replay).
    pub async fn call(
        &self,
        signer: &impl DeviceSigner,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RelayError> {
        let body = body
            .map(|b| serde_json::to_vec(&b).unwrap_or_default())
            .unwrap_or_default();
        retry_rate_limited(|| self.call_once(signer, method, path, &body)).await
    }

    async fn call_once(
        &self,
        signer: &impl DeviceSigner,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Value, RelayError> {
        let headers = self.signed_headers(signer, method, path, sha256(body))?;
        self.exchange(method, path, headers, body.to_vec()).await
    }

    /// Erases a customer file for good (admin): `410 erased` for every later request.
    pub async fn erase_file(&self, s: &impl DeviceSigner, file: FileId) -> Result<(), RelayError> {
        self.call(s, "DELETE", &format!("/v1/files/{file}"), None)
            .await
            .map(|_| ())
    }

    /// Creates the firm from its first roster events (unauthenticated).
    pub async fn create_firm(&self, events: &[Vec<u8>]) -> Result<(), RelayError> {
        let body = serde_json::to_vec(
            &json!({ "events": events.iter().map(hex::encode).collect::<Vec<_>>() }),
        )
        .unwrap_or_default();
        self.exchange("POST", "/v1/firms", vec![], body)
            .await
            .map(|_| ())
    }

    /// Opens an invitation mailbox (admin).
    pub async fn create_invite(
        &self,
        s: &impl DeviceSigner,
        invite_id: [u8; 16],
        expires_ms: u64,
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "POST",
            "/v1/invites",
            Some(json!({ "invite": hex::encode(invite_id), "expires_ms": expires_ms })),
        )
        .await
        .map(|_| ())
    }

    /// The firm of an open invitation (unauthenticated).
    pub async fn invite_firm(&self, invite_id: [u8; 16]) -> Result<FirmId, RelayError> {
        let v = self
            .exchange(
                "GET",
                &format!("/v1/invites/{}", hex::encode(invite_id)),
                vec![],
                vec![],
            )
            .await?;
        typed(&v, "firm")
    }

    /// What a fresh device needs to recover a member (`protocol-spec/recovery.md`):
    /// unauthenticated, the recovery id is the credential.
    pub async fn recovery(&self, recovery_id: [u8; 16]) -> Result<RecoveryInfo, RelayError> {
        let v = self
            .exchange(
                "GET",
                &format!("/v1/recovery/{}", hex::encode(recovery_id)),
                vec![],
                vec![],
            )
            .await?;
        let roster = list(&v, "roster")?
            .iter()
            .map(|e| {
                e.as_str()
                    .and_then(|s| hex::decode(s).ok())
                    .ok_or_else(|| RelayError::Garbage("roster event is not hex".into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(RecoveryInfo {
            firm: typed(&v, "firm")?,
            member: typed(&v, "member")?,
            key: backup_key_of(&v)?,
            identity: hex_field(&v, "identity")?,
            roster,
        })
    }

    /// Adds this (new) device to the roster with a `DeviceAdded` event its member signed,
    /// under the backup's recovery id.
    pub async fn recovery_device(
        &self,
        s: &impl DeviceSigner,
        recovery_id: [u8; 16],
        event: &[u8],
    ) -> Result<u64, RelayError> {
        let v = self
            .call(
                s,
                "POST",
                &format!("/v1/recovery/{}/device", hex::encode(recovery_id)),
                Some(json!({ "event": hex::encode(event) })),
            )
            .await?;
        uint(&v, "seq")
    }

    /// Sets the caller's member's backup key.
    pub async fn put_backup_key(
        &self,
        s: &impl DeviceSigner,
        key: &BackupKeyInfo,
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "PUT",
            "/v1/backup/key",
            Some(json!({
                "recovery_id": hex::encode(key.recovery_id),
                "backup_key": hex::encode(key.key),
                "signature": hex::encode(key.signature),
            })),
        )
        .await
        .map(|_| ())
    }

    /// The caller's member's backup key, if there is one.
    pub async fn backup_key(
        &self,
        s: &impl DeviceSigner,
    ) -> Result<Option<BackupKeyInfo>, RelayError> {
        match self.call(s, "GET", "/v1/backup/key", None).await {
            Ok(v) => backup_key_of(&v).map(Some),
            Err(RelayError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds items `(kind, id, sealed)` sealed to `sealed_to`.
    pub async fn put_backup_items(
        &self,
        s: &impl DeviceSigner,
        sealed_to: [u8; 32],
        items: &[(u8, Vec<u8>, Vec<u8>)],
    ) -> Result<(), RelayError> {
        let items: Vec<Value> = items
            .iter()
            .map(|(k, id, sealed)| json!({ "kind": k, "id": hex::encode(id), "sealed": hex::encode(sealed) }))
            .collect();
        self.call(
            s,
            "PUT",
            "/v1/backup/items",
            Some(json!({ "backup_key": hex::encode(sealed_to), "items": items })),
        )
        .await
        .map(|_| ())
    }

    /// Stores the caller's member's recovery key sealed to admin devices.
    pub async fn put_escrow(
        &self,
        s: &impl DeviceSigner,
        sealed_to: [u8; 32],
        entries: &[(DeviceId, Vec<u8>)],
    ) -> Result<(), RelayError> {
        let entries: Vec<Value> = entries
            .iter()
            .map(|(d, sealed)| json!({ "device": d, "sealed": hex::encode(sealed) }))
            .collect();
        self.call(
            s,
            "PUT",
            "/v1/backup/escrow",
            Some(json!({ "backup_key": hex::encode(sealed_to), "entries": entries })),
        )
        .await
        .map(|_| ())
    }

    /// `member`'s recovery key as sealed to this (admin) device.
    pub async fn escrow(
        &self,
        s: &impl DeviceSigner,
        member: ledgerline_protocol::ids::MemberId,
    ) -> Result<Vec<u8>, RelayError> {
        let v = self
            .call(s, "GET", &format!("/v1/backup/escrow/{member}"), None)
            .await?;
        hex_field(&v, "sealed")
    }

    /// A page of the caller's member's backup items after `after`, and the next position.
    pub async fn backup_items(
        &self,
        s: &impl DeviceSigner,
        after: u64,
    ) -> Result<(Vec<(u8, Vec<u8>, Vec<u8>)>, Option<u64>), RelayError> {
        let v = self
            .call(s, "GET", &format!("/v1/backup/items?after={after}"), None)
            .await?;
        let items = list(&v, "items")?
            .iter()
            .map(|it| {
                Ok((
                    u8::try_from(uint(it, "kind")?)
                        .map_err(|_| RelayError::Garbage("item kind".into()))?,
                    hex_field(it, "id")?,
                    hex_field(it, "sealed")?,
                ))
            })
            .collect::<Result<_, RelayError>>()?;
        let next = match field_of(&v, "next") {
            Value::Null => None,
            n => Some(
                n.as_u64()
                    .filter(|n| *n > after)
                    .ok_or_else(|| RelayError::Garbage("backup cursor went back".into()))?,
            ),
        };
        Ok((items, next))
    }

    /// Drops a sealed join request (unauthenticated: the joiner has no device yet).
    pub async fn post_join_request(
        &self,
        invite_id: [u8; 16],
        sealed: &[u8],
    ) -> Result<u64, RelayError> {
        let body =
            serde_json::to_vec(&json!({ "request": hex::encode(sealed) })).unwrap_or_default();
        let v = self
            .exchange(
                "POST",
                &format!("/v1/invites/{}/requests", hex::encode(invite_id)),
                vec![],
                body,
            )
            .await?;
        uint(&v, "id")
    }

    /// The sealed join requests of an invitation (admin).
    pub async fn join_requests(
        &self,
        s: &impl DeviceSigner,
        invite_id: [u8; 16],
    ) -> Result<Vec<Vec<u8>>, RelayError> {
        let v = self
            .call(
                s,
                "GET",
                &format!("/v1/invites/{}/requests", hex::encode(invite_id)),
                None,
            )
            .await?;
        let list = list(&v, "requests")?;
        list.iter().map(|r| hex_field(r, "request")).collect()
    }

    /// Roster events from `since`.
    pub async fn roster(
        &self,
        s: &impl DeviceSigner,
        since: u64,
    ) -> Result<Vec<Vec<u8>>, RelayError> {
        let v = self
            .call(s, "GET", &format!("/v1/roster?since={since}"), None)
            .await?;
        let list: Vec<String> = typed(&v, "events")?;
        list.iter()
            .map(|e| {
                hex::decode(e).map_err(|_| RelayError::Garbage("roster event is not hex".into()))
            })
            .collect()
    }

    /// Appends a roster event.
    pub async fn append_roster(
        &self,
        s: &impl DeviceSigner,
        event: &[u8],
    ) -> Result<u64, RelayError> {
        let v = self
            .call(
                s,
                "POST",
                "/v1/roster",
                Some(json!({ "event": hex::encode(event) })),
            )
            .await?;
        uint(&v, "seq")
    }

    /// Publishes signed prekeys; returns the one-time keys left on the relay.
    pub async fn publish_prekeys(
        &self,
        s: &impl DeviceSigner,
        keys: &[SignedPrekey],
    ) -> Result<u64, RelayError> {
        let v = self.call(s, "PUT", "/v1/devices/self/prekeys", Some(json!({ "prekeys": keys.iter().map(|k| hex::encode(k.to_bytes())).collect::<Vec<_>>() }))).await?;
        uint(&v, "one_time_keys")
    }

    /// Claims one prekey per device (unverified: the caller checks each against the roster).
    pub async fn claim_prekeys(
        &self,
        s: &impl DeviceSigner,
        devices: &[DeviceId],
    ) -> Result<BTreeMap<DeviceId, Option<SignedPrekey>>, RelayError> {
        let v = self
            .call(
                s,
                "POST",
                "/v1/prekeys/claim",
                Some(json!({ "devices": devices })),
            )
            .await?;
        let raw: BTreeMap<DeviceId, Option<String>> = typed(&v, "prekeys")?;
        raw.into_iter()
            .map(|(d, k)| {
                let k = k
                    .map(|h| {
                        hex::decode(h)
                            .ok()
                            .and_then(|b| SignedPrekey::from_bytes(&b).ok())
                            .ok_or_else(|| {
                                RelayError::Garbage("claimed prekey is malformed".into())
                            })
                    })
                    .transpose()?;
                Ok((d, k))
            })
            .collect()
    }

    /// Queues to-device ciphertexts.
    pub async fn send_to_device(
        &self,
        s: &impl DeviceSigner,
        messages: &[(DeviceId, Vec<u8>)],
    ) -> Result<Vec<u64>, RelayError> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|(d, c)| json!({ "device": d, "ciphertext": hex::encode(c) }))
            .collect();
        let v = self
            .call(
                s,
                "POST",
                "/v1/to-device",
                Some(json!({ "messages": msgs })),
            )
            .await?;
        typed(&v, "ids")
    }

    /// To-device messages after `after`.
    pub async fn to_device(
        &self,
        s: &impl DeviceSigner,
        after: u64,
    ) -> Result<Vec<ToDeviceMessage>, RelayError> {
        let v = self
            .call(s, "GET", &format!("/v1/to-device?after={after}"), None)
            .await?;
        let list = list(&v, "messages")?;
        list.iter()
            .map(|m| {
                Ok(ToDeviceMessage {
                    id: uint(m, "id")?,
                    sender: typed(m, "sender")?,
                    ciphertext: hex_field(m, "ciphertext")?,
                })
            })
            .collect()
    }

    /// Acknowledges to-device messages up to `up_to`.
    pub async fn ack_to_device(&self, s: &impl DeviceSigner, up_to: u64) -> Result<(), RelayError> {
        self.call(
            s,
            "POST",
            "/v1/to-device/ack",
            Some(json!({ "up_to": up_to })),
        )
        .await
        .map(|_| ())
    }

    /// Creates a room for a customer file, or with explicit members.
    pub async fn create_room(
        &self,
        s: &impl DeviceSigner,
        room: [u8; 16],
        file: Option<FileId>,
        members: &[MemberId],
    ) -> Result<(), RelayError> {
        let body = match file {
            Some(f) => json!({ "room": hex::encode(room), "file": f }),
            None => json!({ "room": hex::encode(room), "members": members }),
        };
        self.call(s, "POST", "/v1/rooms", Some(body))
            .await
            .map(|_| ())
    }

    /// Replaces an internal room's members.
    pub async fn set_room_members(
        &self,
        s: &impl DeviceSigner,
        room: [u8; 16],
        members: &[MemberId],
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "PUT",
            &format!("/v1/rooms/{}/members", hex::encode(room)),
            Some(json!({ "members": members })),
        )
        .await
        .map(|_| ())
    }

    /// Members and devices of a room now.
    pub async fn room_info(
        &self,
        s: &impl DeviceSigner,
        room: [u8; 16],
    ) -> Result<RoomInfo, RelayError> {
        let v = self
            .call(s, "GET", &format!("/v1/rooms/{}", hex::encode(room)), None)
            .await?;
        serde_json::from_value(v)
            .map_err(|_| RelayError::Garbage("room info has the wrong shape".into()))
    }

    /// Sends a room message; returns its sequence number.
    pub async fn send_message(
        &self,
        s: &impl DeviceSigner,
        room: [u8; 16],
        ciphertext: &[u8],
    ) -> Result<u64, RelayError> {
        let path = match crate::room::session_tag(ciphertext) {
            Some(tag) => format!("/v1/rooms/{}/messages?session={tag}", hex::encode(room)),
            None => format!("/v1/rooms/{}/messages", hex::encode(room)),
        };
        let v = self
            .call(
                s,
                "POST",
                &path,
                Some(json!({ "ciphertext": hex::encode(ciphertext) })),
            )
            .await?;
        uint(&v, "seq")
    }

    /// Room messages from `from`.
    pub async fn messages(
        &self,
        s: &impl DeviceSigner,
        room: [u8; 16],
        from: u64,
        limit: u32,
    ) -> Result<Vec<RoomMessage>, RelayError> {
        Ok(self.messages_page(s, room, from, limit).await?.0)
    }

    /// A page of messages and the number the room's next message will get (a relay that
    /// does not say: `None`).
    ///
    /// Asks for the binary page form (`protocol-spec/relay-api.md`, "History pages"); a
    /// relay that answers JSON instead (one from before that form) is read as JSON.
    pub async fn messages_page(
        &self,
        s: &impl DeviceSigner,
        room: [u8; 16],
        from: u64,
        limit: u32,
    ) -> Result<(Vec<RoomMessage>, Option<u64>), RelayError> {
        let path = format!(
            "/v1/rooms/{}/messages?from={from}&limit={limit}",
            hex::encode(room)
        );
        let bytes = self.get_bytes(s, &path, history::MEDIA_TYPE).await?;
        if bytes.first() != Some(&b'{') {
            let page = history::HistoryPage::from_bytes(&bytes)
                .map_err(|e| RelayError::Garbage(format!("history page: {e}")))?;
            return Ok((page.messages, Some(page.next)));
        }
        let v = interpret(200, &bytes)?;
        let list = list(&v, "messages")?;
        let page = list
            .iter()
            .map(|m| {
                Ok(RoomMessage {
                    seq: uint(m, "seq")?,
                    sender: typed(m, "sender")?,
                    ciphertext: hex_field(m, "ciphertext")?,
                    created_ms: field_of(m, "created_ms").as_u64().unwrap_or(0),
                })
            })
            .collect::<Result<_, RelayError>>()?;
        Ok((page, field_of(&v, "next").as_u64()))
    }

    /// Opens (or resumes) a multipart document upload; returns the SHA-256 of each part
    /// the relay already holds.
    #[allow(clippy::too_many_arguments)]
    pub async fn begin_upload(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        document: ledgerline_protocol::ids::DocumentId,
        epoch: u64,
        share: &[u8; 32],
        size: u64,
        part_size: u64,
        year: u16,
    ) -> Result<Vec<[u8; 32]>, RelayError> {
        // The year is in the signed path, so the audit log shows what the upload said.
        let path = format!("/v1/files/{file}/uploads/{document}?year={year}");
        let body = serde_json::to_vec(&json!({
            "epoch": epoch,
            "share_sha256": hex::encode(sha256(share)),
            "size": size,
            "part_size": part_size,
        }))
        .unwrap_or_default();
        let mut headers = self.signed_headers(s, "POST", &path, sha256(&body))?;
        headers.push((
            ledgerline_protocol::constants::headers::RELEASE_SHARE,
            hex::encode(share),
        ));
        let v = self.exchange("POST", &path, headers, body).await?;
        list(&v, "parts")?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|h| {
                        let mut out = [0u8; 32];
                        hex::decode_to_slice(h, &mut out).ok().map(|_| out)
                    })
                    .ok_or_else(|| RelayError::Garbage("part hash is not 32 hex bytes".into()))
            })
            .collect()
    }

    /// Sends part `n` of a multipart upload; returns how many parts the relay holds.
    pub async fn put_part(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        document: ledgerline_protocol::ids::DocumentId,
        n: u64,
        part: Vec<u8>,
        part_sha256: [u8; 32],
    ) -> Result<u64, RelayError> {
        let path = format!("/v1/files/{file}/uploads/{document}/parts/{n}");
        let headers = self.signed_headers(s, "PUT", &path, part_sha256)?;
        let v = self.exchange("PUT", &path, headers, part).await?;
        uint(&v, "received")
    }

    /// Completes a multipart upload whose parts root is `root`.
    pub async fn complete_upload(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        document: ledgerline_protocol::ids::DocumentId,
        root: [u8; 32],
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "POST",
            &format!("/v1/files/{file}/uploads/{document}/complete"),
            Some(json!({ "root": hex::encode(root) })),
        )
        .await
        .map(|_| ())
    }

    /// Stores a member-key wrap for `device` (one of the member's devices or an admin's).
    pub async fn put_member_key(
        &self,
        s: &impl DeviceSigner,
        member: MemberId,
        version: u32,
        device: DeviceId,
        wrapped: &[u8],
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "PUT",
            &format!("/v1/members/{member}/keys/{version}/{device}"),
            Some(json!({ "wrapped": hex::encode(wrapped) })),
        )
        .await
        .map(|_| ())
    }

    /// Member-key wraps addressed to this device.
    pub async fn member_keys(
        &self,
        s: &impl DeviceSigner,
        since: u64,
    ) -> Result<(Vec<WrappedKey>, u64), RelayError> {
        let v = self
            .call(
                s,
                "GET",
                &format!("/v1/devices/self/member-keys?since={since}"),
                None,
            )
            .await?;
        let wraps = list(&v, "wraps")?
            .iter()
            .map(|w| {
                Ok(WrappedKey {
                    member: Some(typed(w, "member")?),
                    version: u32_field(w, "key_version")?,
                    epoch: 0,
                    wrapped: hex_field(w, "wrapped")?,
                })
            })
            .collect::<Result<_, RelayError>>()?;
        Ok((wraps, next_cursor(&v, since)?))
    }

    /// Stores an epoch key wrapped under `holder`'s member key.
    pub async fn put_epoch_key(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        epoch: u64,
        holder: MemberId,
        holder_key_version: u32,
        wrapped: &[u8],
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "PUT",
            &format!("/v1/files/{file}/epochs/{epoch}/keys/{holder}"),
            Some(json!({ "holder_key_version": holder_key_version, "wrapped": hex::encode(wrapped) })),
        )
        .await
        .map(|_| ())
    }

    /// Epoch-key wraps of a file held by `holder` (this member when `None`; another
    /// member's only for an admin, who holds every member key in escrow).
    pub async fn epoch_keys(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        since: u64,
        holder: Option<MemberId>,
    ) -> Result<(Vec<WrappedKey>, u64), RelayError> {
        let path = match holder {
            Some(h) => format!("/v1/files/{file}/epochs/keys?since={since}&holder={h}"),
            None => format!("/v1/files/{file}/epochs/keys?since={since}"),
        };
        self.epoch_keys_at(s, &path, since, holder).await
    }

    /// Epoch-key wraps of a file held by `team` (for the team's members while it holds
    /// the file, and for admins).
    pub async fn team_epoch_keys(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        since: u64,
        team: TeamId,
    ) -> Result<(Vec<WrappedKey>, u64), RelayError> {
        let path = format!("/v1/files/{file}/epochs/keys?since={since}&team={team}");
        self.epoch_keys_at(s, &path, since, None).await
    }

    async fn epoch_keys_at(
        &self,
        s: &impl DeviceSigner,
        path: &str,
        since: u64,
        holder: Option<MemberId>,
    ) -> Result<(Vec<WrappedKey>, u64), RelayError> {
        let v = self.call(s, "GET", path, None).await?;
        let wraps = list(&v, "wraps")?
            .iter()
            .map(|w| {
                Ok(WrappedKey {
                    member: holder,
                    version: u32_field(w, "holder_key_version")?,
                    epoch: uint(w, "epoch")?,
                    wrapped: hex_field(w, "wrapped")?,
                })
            })
            .collect::<Result<_, RelayError>>()?;
        Ok((wraps, next_cursor(&v, since)?))
    }

    /// Starts epoch `epoch` of a file: the link wrapping the previous epoch's key, and the
    /// new key wrapped for each holder `(member, member-key version, wrap)` — exactly the
    /// file's members, in member order — and for each team holding the file `(team,
    /// team-key version, wrap)`, in team order. All or nothing.
    pub async fn start_epoch(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        epoch: u64,
        link: &[u8],
        wraps: &[(MemberId, u32, Vec<u8>)],
        team_wraps: &[(TeamId, u32, Vec<u8>)],
    ) -> Result<(), RelayError> {
        let holders: Vec<String> = wraps.iter().map(|(m, v, _)| format!("{m}.{v}")).collect();
        let body: Vec<Value> = wraps
            .iter()
            .map(|(m, v, w)| json!({ "member": m.to_string(), "holder_key_version": v, "wrapped": hex::encode(w) }))
            .collect();
        let mut path = format!(
            "/v1/files/{file}/epochs/{epoch}?holders={}",
            holders.join(",")
        );
        let json = if team_wraps.is_empty() {
            json!({ "link": hex::encode(link), "wraps": body })
        } else {
            let teams: Vec<String> = team_wraps
                .iter()
                .map(|(t, v, _)| format!("{t}.{v}"))
                .collect();
            path.push_str(&format!("&teams={}", teams.join(",")));
            let team_body: Vec<Value> = team_wraps
                .iter()
                .map(|(t, v, w)| json!({ "team": t.to_string(), "holder_key_version": v, "wrapped": hex::encode(w) }))
                .collect();
            json!({ "link": hex::encode(link), "wraps": body, "team_wraps": team_body })
        };
        self.call(s, "PUT", &path, Some(json)).await.map(|_| ())
    }

    /// Stores a file's epoch key wrapped under a team's (newest) key.
    pub async fn put_team_epoch_key(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        epoch: u64,
        team: TeamId,
        team_key_version: u32,
        wrapped: &[u8],
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "PUT",
            &format!("/v1/files/{file}/epochs/{epoch}/teams/{team}"),
            Some(
                json!({ "holder_key_version": team_key_version, "wrapped": hex::encode(wrapped) }),
            ),
        )
        .await
        .map(|_| ())
    }

    /// Stores version `version` of a team's key, wrapped for each holder `(member,
    /// member-key version, wrap)` — exactly the team's members and the admins, in member
    /// order. All or nothing.
    pub async fn put_team_key_version(
        &self,
        s: &impl DeviceSigner,
        team: TeamId,
        version: u32,
        wraps: &[(MemberId, u32, Vec<u8>)],
    ) -> Result<(), RelayError> {
        let holders: Vec<String> = wraps.iter().map(|(m, v, _)| format!("{m}.{v}")).collect();
        let body: Vec<Value> = wraps
            .iter()
            .map(|(m, v, w)| json!({ "member": m.to_string(), "member_key_version": v, "wrapped": hex::encode(w) }))
            .collect();
        self.call(
            s,
            "PUT",
            &format!(
                "/v1/teams/{team}/keys/{version}?holders={}",
                holders.join(",")
            ),
            Some(json!({ "wraps": body })),
        )
        .await
        .map(|_| ())
    }

    /// Stores one wrap of a team's newest key for `member`.
    pub async fn put_team_key(
        &self,
        s: &impl DeviceSigner,
        team: TeamId,
        version: u32,
        member: MemberId,
        member_key_version: u32,
        wrapped: &[u8],
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "PUT",
            &format!("/v1/teams/{team}/keys/{version}/{member}"),
            Some(json!({ "member_key_version": member_key_version, "wrapped": hex::encode(wrapped) })),
        )
        .await
        .map(|_| ())
    }

    /// This member's team-key wraps stored since `since`.
    pub async fn team_keys(
        &self,
        s: &impl DeviceSigner,
        since: u64,
    ) -> Result<(Vec<TeamKeyWrap>, u64), RelayError> {
        let v = self
            .call(s, "GET", &format!("/v1/teams/keys?since={since}"), None)
            .await?;
        let wraps = list(&v, "wraps")?
            .iter()
            .map(|w| {
                Ok(TeamKeyWrap {
                    team: typed(w, "team")?,
                    version: u32_field(w, "version")?,
                    member_key_version: u32_field(w, "member_key_version")?,
                    wrapped: hex_field(w, "wrapped")?,
                })
            })
            .collect::<Result<_, RelayError>>()?;
        Ok((wraps, next_cursor(&v, since)?))
    }

    /// The epoch chain links of a file.
    pub async fn epoch_links(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        since: u64,
    ) -> Result<(Vec<WrappedKey>, u64), RelayError> {
        let v = self
            .call(
                s,
                "GET",
                &format!("/v1/files/{file}/epochs/links?since={since}"),
                None,
            )
            .await?;
        let links = list(&v, "links")?
            .iter()
            .map(|w| {
                Ok(WrappedKey {
                    member: None,
                    version: 0,
                    epoch: uint(w, "epoch")?,
                    wrapped: hex_field(w, "wrapped")?,
                })
            })
            .collect::<Result<_, RelayError>>()?;
        Ok((links, next_cursor(&v, since)?))
    }

    /// Stores a new version of a record; returns its sync cursor.
    pub async fn put_record(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        record: RecordId,
        envelope: &[u8],
    ) -> Result<u64, RelayError> {
        let v = self
            .call(
                s,
                "PUT",
                &format!("/v1/files/{file}/records/{record}"),
                Some(json!({ "envelope": hex::encode(envelope) })),
            )
            .await?;
        uint(&v, "cursor")
    }

    /// Records of a file changed after `since`; returns them and the next cursor.
    pub async fn records(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        since: u64,
    ) -> Result<(Vec<ListedRecord>, u64), RelayError> {
        let v = self
            .call(
                s,
                "GET",
                &format!("/v1/files/{file}/records?since={since}&limit={RECORDS_PAGE}"),
                None,
            )
            .await?;
        let records = list(&v, "records")?
            .iter()
            .map(|r| {
                Ok(ListedRecord {
                    record: typed(r, "record")?,
                    version: uint(r, "version")?,
                    cursor: uint(r, "cursor")?,
                    envelope: hex_field(r, "envelope")?,
                })
            })
            .collect::<Result<Vec<_>, RelayError>>()?;
        let next = field_of(&v, "next").as_u64().unwrap_or(since);
        Ok((records, next))
    }
}

/// A document's release as the relay answers it.
#[derive(Debug)]
pub struct Release {
    /// The release share (a secret: zeroized on drop).
    pub share: zeroize::Zeroizing<[u8; 32]>,
    /// The epoch the document was encrypted under.
    pub epoch: u64,
    /// Index of the audit-log leaf holding this device's signed request.
    pub audit_index: u64,
    /// That leaf's bytes.
    pub entry: Vec<u8>,
    /// A signed checkpoint (note text) of a log that holds the leaf.
    pub checkpoint: String,
    /// The leaf's inclusion proof in that checkpoint.
    pub inclusion: Vec<[u8; 32]>,
}

/// The relay's current view of the firm's audit log.
#[derive(Debug, Clone)]
pub struct LogHead {
    /// The log's name.
    pub origin: String,
    /// The firm's log key, as the relay states it (pinned on first contact).
    pub log_key: [u8; 32],
    /// The signed checkpoint (note text).
    pub checkpoint: String,
}

fn hashes_field(v: &Value, field: &str) -> Result<Vec<[u8; 32]>, RelayError> {
    let items = list(v, field)?;
    if items.len() > ledgerline_protocol::merkle::MAX_PROOF_HASHES {
        return Err(RelayError::Garbage(format!("{field} is too long")));
    }
    items
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| hex::decode(s).ok())
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| RelayError::Garbage(format!("{field} holds a bad hash")))
        })
        .collect()
}

/// An incremental fetch's `next` cursor, which must not move backwards.
fn next_cursor(v: &Value, since: u64) -> Result<u64, RelayError> {
    let next = uint(v, "next")?;
    if next < since {
        return Err(RelayError::Garbage(format!(
            "cursor went back from {since} to {next}"
        )));
    }
    Ok(next)
}

fn string_field(v: &Value, field: &str) -> Result<String, RelayError> {
    field_of(v, field)
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| RelayError::Garbage(format!("{field} missing")))
}

/// A document's ciphertext arriving from the relay, chunk by chunk.
#[derive(Debug)]
pub struct DownloadStream {
    res: reqwest::Response,
    /// Size the relay announced.
    pub size: Option<u64>,
}

impl DownloadStream {
    /// The next piece of the body; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, RelayError> {
        self.res
            .chunk()
            .await
            .map(|c| c.map(|b| b.to_vec()))
            .map_err(|e| RelayError::Unreachable(describe(e)))
    }
}

/// A frame on the push channel.
pub use tokio_tungstenite::tungstenite::Message as PushFrame;

/// The relay's push channel.
pub type PushSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// TLS for the push channel: the system's roots plus `LEDGERLINE_CA_FILE`, as for HTTP.
fn tls_config() -> Result<std::sync::Arc<rustls::ClientConfig>, RelayError> {
    let extra = std::env::var_os(CA_FILE_ENV).map(std::path::PathBuf::from);
    client_tls(extra.as_deref(), CA_FILE_ENV).map_err(RelayError::Unreachable)
}

/// A rustls client configuration with the system's roots plus the office's CA
/// ([`ledgerline_tls::client_config`]). Shared by the relay's push channel and the mail
/// intake's IMAP connections.
pub(crate) fn client_tls(
    extra_ca: Option<&std::path::Path>,
    what: &str,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    ledgerline_tls::client_config(extra_ca, what)
}

/// Streaming document routes (HTTP only: the body never sits in memory whole).
impl RelayClient<HttpTransport> {
    /// Opens the signed push channel (`/v1/ws`).
    pub async fn push_socket(&self, s: &impl DeviceSigner) -> Result<PushSocket, RelayError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let base = &self.transport.base;
        let url = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}/v1/ws")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}/v1/ws")
        } else {
            return Err(RelayError::Unreachable(
                "the relay URL must start with http:// or https://".into(),
            ));
        };
        let mut req = url
            .into_client_request()
            .map_err(|e| RelayError::Unreachable(e.to_string()))?;
        for (k, v) in self.signed_headers(s, "GET", "/v1/ws", self::sha256(&[]))? {
            let v = v
                .parse()
                .map_err(|_| RelayError::Garbage("header value".into()))?;
            req.headers_mut().insert(k, v);
        }
        let connector = tokio_tungstenite::Connector::Rustls(tls_config()?);
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(connector));
        match tokio::time::timeout(std::time::Duration::from_secs(15), connect).await {
            Err(_) => Err(RelayError::Unreachable("push channel: timed out".into())),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(res))) => {
                let status = res.status().as_u16();
                let body = res.body().clone().unwrap_or_default();
                Err(interpret(status, &body)
                    .err()
                    .unwrap_or_else(|| RelayError::Garbage(format!("status {status}"))))
            }
            Ok(Err(e)) => Err(RelayError::Unreachable(format!("push channel: {e}"))),
            Ok(Ok((ws, _))) => Ok(ws),
        }
    }

    /// Asks for a document's release share: the relay logs this signed request first.
    pub async fn release_document(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        document: ledgerline_protocol::ids::DocumentId,
    ) -> Result<Release, RelayError> {
        let v = self
            .call(
                s,
                "POST",
                &format!("/v1/files/{file}/documents/{document}/release"),
                None,
            )
            .await?;
        let raw = hex_field(&v, "release_share")?;
        let share = <[u8; 32]>::try_from(raw.as_slice())
            .map_err(|_| RelayError::Garbage("release share is not 32 bytes".into()))?;
        Ok(Release {
            share: zeroize::Zeroizing::new(share),
            epoch: uint(&v, "epoch")?,
            audit_index: uint(&v, "audit_index")?,
            entry: hex_field(&v, "entry")?,
            checkpoint: string_field(&v, "checkpoint")?,
            inclusion: hashes_field(&v, "inclusion")?,
        })
    }

    /// The audit log's current signed checkpoint.
    pub async fn audit_head(&self, s: &impl DeviceSigner) -> Result<LogHead, RelayError> {
        let v = self.call(s, "GET", "/v1/audit/checkpoint", None).await?;
        let key = hex_field(&v, "log_key")?;
        Ok(LogHead {
            origin: string_field(&v, "origin")?,
            log_key: <[u8; 32]>::try_from(key.as_slice())
                .map_err(|_| RelayError::Garbage("log key is not 32 bytes".into()))?,
            checkpoint: string_field(&v, "checkpoint")?,
        })
    }

    /// Tells the log that this device opened a conversation from its local store at
    /// `at_ms` (its clock).
    pub async fn post_opened(
        &self,
        s: &impl DeviceSigner,
        room: [u8; 16],
        at_ms: u64,
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "POST",
            &format!("/v1/audit/opened?room={}&at={at_ms}", hex::encode(room)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Hands in a checkpoint this device cosigned as the firm's witness.
    pub async fn post_cosignature(
        &self,
        s: &impl DeviceSigner,
        note: &str,
    ) -> Result<(), RelayError> {
        self.call(
            s,
            "POST",
            "/v1/audit/cosignatures",
            Some(json!({ "checkpoint": note })),
        )
        .await
        .map(|_| ())
    }

    /// Witness-cosigned checkpoints of size at least `from_size`, ascending (one page).
    pub async fn cosigned_checkpoints(
        &self,
        s: &impl DeviceSigner,
        from_size: u64,
    ) -> Result<Vec<String>, RelayError> {
        let v = self
            .call(
                s,
                "GET",
                &format!("/v1/audit/cosignatures?from_size={from_size}"),
                None,
            )
            .await?;
        list(&v, "checkpoints")?
            .iter()
            .map(|n| {
                n.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| RelayError::Garbage("a checkpoint is not text".into()))
            })
            .collect()
    }

    /// Audit-log entries from `from`, at most `limit` (admins and auditors).
    pub async fn audit_entries(
        &self,
        s: &impl DeviceSigner,
        from: u64,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, RelayError> {
        let v = self
            .call(
                s,
                "GET",
                &format!("/v1/audit/entries?from={from}&limit={limit}"),
                None,
            )
            .await?;
        list(&v, "entries")?
            .iter()
            .map(|e| {
                e.as_str()
                    .and_then(|s| hex::decode(s).ok())
                    .ok_or_else(|| RelayError::Garbage("an audit entry is not hex".into()))
            })
            .collect()
    }

    /// RFC 6962 consistency proof between two sizes of the audit log.
    pub async fn audit_consistency(
        &self,
        s: &impl DeviceSigner,
        from: u64,
        to: u64,
    ) -> Result<Vec<[u8; 32]>, RelayError> {
        let v = self
            .call(
                s,
                "GET",
                &format!("/v1/audit/consistency?from={from}&to={to}"),
                None,
            )
            .await?;
        hashes_field(&v, "proof")
    }

    /// Starts downloading a document's ciphertext.
    pub async fn download_document(
        &self,
        s: &impl DeviceSigner,
        file: FileId,
        document: ledgerline_protocol::ids::DocumentId,
    ) -> Result<DownloadStream, RelayError> {
        let path = format!("/v1/files/{file}/documents/{document}");
        let headers = self.signed_headers(s, "GET", &path, self::sha256(&[]))?;
        let mut rb = self
            .transport
            .client
            .get(format!("{}{path}", self.transport.base))
            .timeout(std::time::Duration::from_secs(24 * 3600));
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        let res = rb
            .send()
            .await
            .map_err(|e| RelayError::Unreachable(describe(e)))?;
        let status = res.status().as_u16();
        if !(200..=299).contains(&status) {
            let bytes = res
                .bytes()
                .await
                .map_err(|e| RelayError::Unreachable(describe(e)))?;
            return Err(interpret(status, &bytes)
                .err()
                .unwrap_or_else(|| RelayError::Garbage(format!("status {status}"))));
        }
        let size = res.content_length();
        Ok(DownloadStream { res, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerline_protocol::keys::DeviceSigningKey;

    /// A transport that answers `429` to the first `busy` requests, then `status` with
    /// `body`; it counts the requests and keeps the headers of the last.
    struct Scripted {
        status: u16,
        body: Vec<u8>,
        busy: usize,
        seen: std::sync::atomic::AtomicUsize,
        headers: std::sync::Mutex<Vec<(&'static str, String)>>,
    }

    impl Scripted {
        fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
            Self {
                status,
                body: body.into(),
                busy: 0,
                seen: Default::default(),
                headers: Default::default(),
            }
        }

        fn busy_first(self, busy: usize) -> Self {
            Self { busy, ..self }
        }
    }

    impl Transport for Scripted {
        async fn send(
            &self,
            _: &str,
            _: &str,
            headers: Vec<(&'static str, String)>,
            _: Vec<u8>,
        ) -> Result<(u16, Vec<u8>), RelayError> {
            *self.headers.lock().unwrap() = headers;
            let seen = self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(if seen < self.busy {
                (
                    429,
                    br#"{"code":"rate_limited","message":"slow down"}"#.to_vec(),
                )
            } else {
                (self.status, self.body.clone())
            })
        }
    }

    fn client(t: Scripted) -> RelayClient<Scripted> {
        RelayClient::new(t, FirmId([1; 16]), DeviceId([2; 16]))
    }

    #[tokio::test]
    async fn garbage_and_refusals_become_clear_errors() {
        let key = DeviceSigningKey::from_bytes(&[3; 32]);
        let e = client(Scripted::new(200, b"<html>"))
            .roster(&key, 0)
            .await
            .unwrap_err();
        assert!(matches!(e, RelayError::Garbage(_)), "{e}");
        let e = client(Scripted::new(200, br#"{"events":[5]}"#))
            .roster(&key, 0)
            .await
            .unwrap_err();
        assert!(matches!(e, RelayError::Garbage(_)), "{e}");
        let e = client(Scripted::new(200, br#"{"events":["zz"]}"#))
            .roster(&key, 0)
            .await
            .unwrap_err();
        assert!(matches!(e, RelayError::Garbage(_)), "{e}");
        let e = client(Scripted::new(502, b"bad gateway"))
            .roster(&key, 0)
            .await
            .unwrap_err();
        assert!(matches!(e, RelayError::Garbage(_)), "{e}");
        let e = client(Scripted::new(
            403,
            br#"{"code":"forbidden","message":"no access"}"#,
        ))
        .roster(&key, 0)
        .await
        .unwrap_err();
        assert!(
            matches!(&e, RelayError::Refused { status: 403, code, .. } if code == "forbidden"),
            "{e}"
        );
        let e = client(Scripted::new(
            200,
            br#"{"prekeys":{"0202020202020202020202020202020202":"00"}}"#,
        ))
        .claim_prekeys(&key, &[])
        .await
        .unwrap_err();
        assert!(matches!(e, RelayError::Garbage(_)), "{e}");
    }

    #[tokio::test]
    async fn history_pages_are_asked_for_in_binary_and_read_in_either_form() {
        let key = DeviceSigningKey::from_bytes(&[3; 32]);
        let page = history::HistoryPage {
            next: 8,
            messages: vec![history::PageMessage {
                seq: 7,
                sender: DeviceId([9; 16]),
                created_ms: 1234,
                ciphertext: b"megolm".to_vec(),
            }],
        };
        let relay = client(Scripted::new(200, page.to_bytes()));
        let (got, next) = relay.messages_page(&key, [4; 16], 1, 100).await.unwrap();
        assert_eq!(next, Some(8));
        assert_eq!(
            got,
            vec![RoomMessage {
                seq: 7,
                sender: DeviceId([9; 16]),
                ciphertext: b"megolm".to_vec(),
                created_ms: 1234,
            }]
        );
        let asked = relay.transport.headers.lock().unwrap().clone();
        assert!(asked.contains(&("accept", history::MEDIA_TYPE.to_owned())));

        // A relay that answers JSON (one from before the binary form) is still read.
        let json = format!(
            r#"{{"messages":[{{"seq":7,"sender":"{}","ciphertext":"{}","created_ms":1234}}],"next":8}}"#,
            hex::encode([9; 16]),
            hex::encode(b"megolm")
        );
        let relay = client(Scripted::new(200, json.into_bytes()));
        assert_eq!(
            relay.messages_page(&key, [4; 16], 1, 100).await.unwrap(),
            (got, Some(8))
        );

        // A page that repeats a message, one cut short, and a refusal: clear errors.
        let mut twice = page.clone();
        twice.messages.push(twice.messages[0].clone());
        let mut cut = page.to_bytes();
        cut.pop();
        for bytes in [twice.to_bytes(), cut, b"<html>".to_vec()] {
            let e = client(Scripted::new(200, bytes))
                .messages_page(&key, [4; 16], 1, 100)
                .await
                .unwrap_err();
            assert!(matches!(e, RelayError::Garbage(_)), "{e}");
        }
        let e = client(Scripted::new(
            403,
            br#"{"code":"forbidden","message":"not a member of this room"}"#,
        ))
        .messages_page(&key, [4; 16], 1, 100)
        .await
        .unwrap_err();
        assert!(
            matches!(&e, RelayError::Refused { status: 403, code, .. } if code == "forbidden"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_rate_limited_request_is_retried_then_given_up() {
        let key = DeviceSigningKey::from_bytes(&[3; 32]);
        let page = history::HistoryPage {
            next: 1,
            messages: vec![],
        };
        let relay = |busy| client(Scripted::new(200, page.to_bytes()).busy_first(busy));
        let r = relay(2);
        assert_eq!(
            r.messages_page(&key, [4; 16], 1, 100).await.unwrap(),
            (vec![], Some(1))
        );
        assert_eq!(r.requests_sent(), 3);
        let r = relay(usize::MAX);
        let e = r.messages_page(&key, [4; 16], 1, 100).await.unwrap_err();
        assert!(matches!(&e, RelayError::Refused { status: 429, .. }), "{e}");
        assert_eq!(r.requests_sent(), RATE_LIMIT_RETRIES as u64 + 1);
    }

    #[tokio::test]
    async fn an_unreachable_relay_is_reported_as_such() {
        // Port 9 (discard) on loopback is closed on this machine kind.
        let t = HttpTransport::new("http://127.0.0.1:9").unwrap();
        let key = DeviceSigningKey::from_bytes(&[3; 32]);
        let e = RelayClient::new(t, FirmId([1; 16]), DeviceId([2; 16]))
            .roster(&key, 0)
            .await
            .unwrap_err();
        assert!(matches!(e, RelayError::Unreachable(_)), "{e}");
    }
}
