//! A KSeF 2.0 API client, written against the official OpenAPI description
//! (`../shared/ksef/open-api.json`, CIRFMF/ksef-docs "version 2.6") for the calls an
//! office's client needs to fetch a customer's invoices: the KSeF-token login
//! (`uwierzytelnianie.md` §2.2), the metadata query and the download
//! (`pobieranie-faktur/`). Types are hand-written for these few operations (a generated
//! client of all 80 operations would be mostly dead code; no maintained crate covers
//! KSeF 2.0). Every answer is untrusted input: bounded in size, parsed into types, and
//! errors say what failed without echoing tokens.
//!
//! Rate limits (`limity/limity-api.md`) are kept on our side too: requests are paced to
//! the published per-second and per-minute limits of the environment, a `429` is waited
//! out for its `Retry-After` when that is short, and reported when it is long (the
//! hourly limits), so a sync stops cleanly and resumes later.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Overrides the API address of every environment (a test server or an office's proxy).
/// Must be `https://`.
pub const API_URL_ENV: &str = "LEDGERLINE_KSEF_URL";
/// An extra CA (PEM) to trust for KSeF's TLS (a test server or an inspecting proxy).
pub const CA_FILE_ENV: &str = "LEDGERLINE_KSEF_CA_FILE";
/// The longest `Retry-After` waited out; a longer one stops the sync for that customer.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The largest metadata page read.
const MAX_PAGE_BYTES: usize = 8 << 20;
/// Page size asked for (the API's largest).
pub const PAGE_SIZE: u32 = 250;

/// A KSeF environment (`srodowiska.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// TE: integration tests (limits ten times production's).
    Test,
    /// Pre-production (production's limits).
    Demo,
    /// Production.
    Prod,
}

impl Environment {
    /// Parses `test`, `demo` or `prod`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(Self::Test),
            "demo" => Some(Self::Demo),
            "prod" => Some(Self::Prod),
            _ => None,
        }
    }

    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Demo => "demo",
            Self::Prod => "prod",
        }
    }

    /// The API's address.
    pub fn base(self) -> &'static str {
        match self {
            Self::Test => "https://api-test.ksef.mf.gov.pl/v2",
            Self::Demo => "https://api-demo.ksef.mf.gov.pl/v2",
            Self::Prod => "https://api.ksef.mf.gov.pl/v2",
        }
    }

    /// Published limits per group: (per second, per minute, per hour).
    fn limits(self, group: Group) -> (usize, usize, usize) {
        let (s, m, h) = match group {
            Group::Metadata => (8, 16, 20),
            Group::Download => (8, 16, 64),
        };
        match self {
            Self::Test => (s * 10, m * 10, h * 10),
            Self::Demo | Self::Prod => (s, m, h),
        }
    }
}

/// Rate-limit groups of the calls made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Group {
    Metadata,
    Download,
}

/// What went wrong talking to KSeF.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KsefError {
    /// No answer (network, TLS, timeout).
    #[error("KSeF could not be reached: {0}")]
    Unreachable(String),
    /// KSeF refused the login (a revoked or wrong token, no permission for the NIP).
    #[error("KSeF refused the login ({code}: {reason})")]
    Refused {
        /// KSeF's status code (415, 450, …).
        code: i64,
        /// Its description.
        reason: String,
    },
    /// The access token is no longer accepted.
    #[error("KSeF no longer accepts this session's token")]
    Unauthorized,
    /// Over a rate limit for longer than is worth waiting.
    #[error("KSeF's rate limit: try again in {0} s")]
    RateLimited(u64),
    /// An answer we cannot use.
    #[error("KSeF answered unexpectedly: {0}")]
    Protocol(String),
    /// KSeF said no to a request (HTTP 400 and its exception).
    #[error("KSeF refused the request: {0}")]
    Rejected(String),
}

type Result<T> = std::result::Result<T, KsefError>;

/// A logged-in session (access and refresh tokens).
#[derive(Clone)]
pub struct Session {
    access: Zeroizing<String>,
    /// When the access token expires.
    pub access_until: DateTime<Utc>,
    refresh: Zeroizing<String>,
    /// When the refresh token expires.
    pub refresh_until: DateTime<Utc>,
}

impl Session {
    /// A session kept from before.
    pub fn from_parts(
        access: &str,
        access_until: DateTime<Utc>,
        refresh: &str,
        refresh_until: DateTime<Utc>,
    ) -> Self {
        Self {
            access: Zeroizing::new(access.to_owned()),
            access_until,
            refresh: Zeroizing::new(refresh.to_owned()),
            refresh_until,
        }
    }

    /// The access token (to keep it in the encrypted store).
    pub fn access_token(&self) -> &str {
        &self.access
    }

    /// The refresh token (to keep it in the encrypted store).
    pub fn refresh_token(&self) -> &str {
        &self.refresh
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_until", &self.access_until)
            .field("refresh_until", &self.refresh_until)
            .finish_non_exhaustive()
    }
}

/// Whose invoices: the customer as seller (sales) or as buyer (purchases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Subject {
    /// `Subject1`: invoices the customer issued.
    Subject1,
    /// `Subject2`: invoices the customer received.
    Subject2,
}

impl Subject {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject1 => "Subject1",
            Self::Subject2 => "Subject2",
        }
    }
}

/// One invoice in a metadata page (the fields used).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceMeta {
    /// KSeF number.
    pub ksef_number: String,
    /// Issuer's number.
    #[serde(default)]
    pub invoice_number: String,
    /// When KSeF stored it for good (the incremental fetch's clock).
    pub permanent_storage_date: DateTime<Utc>,
    /// SHA-256 of the invoice, base64.
    pub invoice_hash: String,
}

/// A metadata page.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataPage {
    /// More results follow.
    pub has_more: bool,
    /// The query hit the 10,000-record limit: narrow the range and start again.
    pub is_truncated: bool,
    /// Everything stored up to this time is complete.
    pub permanent_storage_hwm_date: Option<DateTime<Utc>>,
    /// The invoices.
    pub invoices: Vec<InvoiceMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Certificate {
    certificate: String,
    public_key_id: Option<String>,
    valid_from: DateTime<Utc>,
    valid_to: DateTime<Utc>,
    usage: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Challenge {
    challenge: String,
    timestamp_ms: i64,
}

#[derive(Deserialize)]
struct TokenInfo {
    token: String,
    #[serde(rename = "validUntil")]
    valid_until: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitResponse {
    reference_number: String,
    authentication_token: TokenInfo,
}

#[derive(Deserialize)]
struct StatusInfo {
    code: i64,
    description: String,
}

#[derive(Deserialize)]
struct AuthStatus {
    status: StatusInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tokens {
    access_token: TokenInfo,
    refresh_token: Option<TokenInfo>,
}

/// A client of one environment.
#[derive(Debug)]
pub struct KsefClient {
    http: reqwest::Client,
    base: String,
    env: Environment,
    hits: HashMap<Group, VecDeque<Instant>>,
    /// `429` answers waited out (for the report).
    pub waited: u32,
}

/// Reads a body of at most `max` bytes.
async fn body(mut res: reqwest::Response, max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| KsefError::Unreachable(crate::transport::describe(e)))?
    {
        if out.len() + chunk.len() > max {
            return Err(KsefError::Protocol(format!(
                "an answer larger than {max} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn json_of<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| KsefError::Protocol(format!("{what}: {e}")))
}

/// KSeF's description of a 400 (its exception list or problem details), bounded.
fn rejection(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let text = v
        .pointer("/exception/exceptionDetailList/0")
        .map(|d| {
            format!(
                "{} {}",
                d.get("exceptionCode").cloned().unwrap_or_default(),
                d.get("exceptionDescription")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
            )
        })
        .or_else(|| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "no description".into());
    crate::mail::parse::one_line(&text, 300)
}

impl KsefClient {
    /// A client of `env` (or of `LEDGERLINE_KSEF_URL` when set).
    pub fn new(env: Environment) -> Result<Self> {
        let base = match std::env::var(API_URL_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => env.base().to_owned(),
        };
        if !base.starts_with("https://") {
            return Err(KsefError::Unreachable(format!(
                "{API_URL_ENV} must be an https:// address"
            )));
        }
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .https_only(true)
            .user_agent(concat!("Ledgerline/", env!("CARGO_PKG_VERSION")));
        let http = crate::transport::extra_roots(builder, CA_FILE_ENV)
            .map_err(KsefError::Unreachable)?
            .build()
            .map_err(|e| KsefError::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            env,
            hits: HashMap::new(),
            waited: 0,
        })
    }

    /// Waits until a request of `group` keeps within the published per-second and
    /// per-minute limits; the hourly limit is reported instead (too long to wait).
    async fn pace(&mut self, group: Group) -> Result<()> {
        let (per_s, per_m, per_h) = self.env.limits(group);
        loop {
            let now = Instant::now();
            let hits = self.hits.entry(group).or_default();
            while hits
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
            {
                hits.pop_front();
            }
            let wait_for = |n: usize, window: Duration| -> Option<Duration> {
                let recent: Vec<&Instant> = hits
                    .iter()
                    .filter(|t| now.duration_since(**t) < window)
                    .collect();
                (recent.len() >= n).then(|| {
                    recent.first().map_or(Duration::ZERO, |t| {
                        window.saturating_sub(now.duration_since(**t))
                    })
                })
            };
            if let Some(w) = wait_for(per_h, Duration::from_secs(3600)) {
                return Err(KsefError::RateLimited(w.as_secs().max(1)));
            }
            let wait = wait_for(per_s, Duration::from_secs(1))
                .into_iter()
                .chain(wait_for(per_m, Duration::from_secs(60)))
                .max();
            match wait {
                Some(w) => tokio::time::sleep(w + Duration::from_millis(5)).await,
                None => {
                    hits.push_back(now);
                    return Ok(());
                }
            }
        }
    }

    /// Sends a request, waiting out short `429`s. Returns the status and body.
    async fn send(
        &mut self,
        build: &(dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Sync),
        max: usize,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>)> {
        for _ in 0..8 {
            let res = build(&self.http)
                .send()
                .await
                .map_err(|e| KsefError::Unreachable(crate::transport::describe(e)))?;
            let status = res.status().as_u16();
            if status == 429 {
                let after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(30);
                if Duration::from_secs(after) > MAX_WAIT {
                    return Err(KsefError::RateLimited(after));
                }
                self.waited += 1;
                tokio::time::sleep(Duration::from_secs(after)).await;
                continue;
            }
            let headers = res.headers().clone();
            let bytes = body(res, max).await?;
            return Ok((status, headers, bytes));
        }
        Err(KsefError::RateLimited(MAX_WAIT.as_secs()))
    }

    /// Logs in to the context `nip` with a KSeF token: challenge, the token and the
    /// challenge's timestamp encrypted to the Ministry's published key (RSA-OAEP,
    /// SHA-256), then the status until it is settled, then the tokens.
    pub async fn login(&mut self, nip: &str, token: &str) -> Result<Session> {
        let base = self.base.clone();
        let (status, _, bytes) = self
            .send(
                &|c| c.get(format!("{base}/security/public-key-certificates")),
                1 << 20,
            )
            .await?;
        if status != 200 {
            return Err(KsefError::Protocol(format!(
                "the public keys: HTTP {status}"
            )));
        }
        let certificates: Vec<Certificate> = json_of(&bytes, "the public keys")?;
        let now = Utc::now();
        let cert = certificates
            .iter()
            .filter(|c| c.usage.iter().any(|u| u == "KsefTokenEncryption"))
            .filter(|c| c.valid_from <= now && now <= c.valid_to)
            .max_by_key(|c| c.valid_from)
            .ok_or_else(|| KsefError::Protocol("no valid key for encrypting KSeF tokens".into()))?;
        let key = public_key(&cert.certificate)?;

        let (status, _, bytes) = self
            .send(&|c| c.post(format!("{base}/auth/challenge")), 64 << 10)
            .await?;
        if status != 200 {
            return Err(KsefError::Protocol(format!("the challenge: HTTP {status}")));
        }
        let challenge: Challenge = json_of(&bytes, "the challenge")?;
        let plain = Zeroizing::new(format!("{token}|{}", challenge.timestamp_ms));
        let encrypted = key
            .encrypt(
                &mut rand_core::OsRng,
                rsa::Oaep::new::<Sha256>(),
                plain.as_bytes(),
            )
            .map_err(|e| KsefError::Protocol(format!("encrypting the token: {e}")))?;
        let body = json!({
            "challenge": challenge.challenge,
            "contextIdentifier": {"type": "Nip", "value": nip},
            "encryptedToken": base64::engine::general_purpose::STANDARD.encode(encrypted),
            "publicKeyId": cert.public_key_id,
        });
        let (status, _, bytes) = self
            .send(
                &|c| c.post(format!("{base}/auth/ksef-token")).json(&body),
                64 << 10,
            )
            .await?;
        match status {
            202 | 200 => {}
            400 => return Err(KsefError::Rejected(rejection(&bytes))),
            s => return Err(KsefError::Protocol(format!("the login: HTTP {s}"))),
        }
        let init: InitResponse = json_of(&bytes, "the login")?;
        let auth = Zeroizing::new(init.authentication_token.token);
        let reference = init.reference_number;
        if !reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(KsefError::Protocol("a malformed reference number".into()));
        }
        // Settled within a minute (checks of a token are immediate; of a certificate not).
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut pause = Duration::from_millis(200);
        loop {
            let (status, _, bytes) = self
                .send(
                    &|c| {
                        c.get(format!("{base}/auth/{reference}"))
                            .bearer_auth(auth.as_str())
                    },
                    64 << 10,
                )
                .await?;
            if status != 200 {
                return Err(KsefError::Protocol(format!(
                    "the login's status: HTTP {status}"
                )));
            }
            let s: AuthStatus = json_of(&bytes, "the login's status")?;
            match s.status.code {
                100 if Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                100 => {
                    return Err(KsefError::Unreachable(
                        "the login did not settle within a minute".into(),
                    ))
                }
                200 => break,
                code => {
                    return Err(KsefError::Refused {
                        code,
                        reason: crate::mail::parse::one_line(&s.status.description, 200),
                    })
                }
            }
        }
        let (status, _, bytes) = self
            .send(
                &|c| {
                    c.post(format!("{base}/auth/token/redeem"))
                        .bearer_auth(auth.as_str())
                },
                64 << 10,
            )
            .await?;
        if status != 200 {
            return Err(KsefError::Protocol(format!(
                "redeeming the tokens: HTTP {status}"
            )));
        }
        let tokens: Tokens = json_of(&bytes, "the tokens")?;
        let refresh = tokens
            .refresh_token
            .ok_or_else(|| KsefError::Protocol("no refresh token".into()))?;
        Ok(Session {
            access: Zeroizing::new(tokens.access_token.token),
            access_until: tokens.access_token.valid_until,
            refresh: Zeroizing::new(refresh.token),
            refresh_until: refresh.valid_until,
        })
    }

    /// A new access token from the refresh token.
    pub async fn refresh(&mut self, session: &mut Session) -> Result<()> {
        let base = self.base.clone();
        let refresh = session.refresh.clone();
        let (status, _, bytes) = self
            .send(
                &|c| {
                    c.post(format!("{base}/auth/token/refresh"))
                        .bearer_auth(refresh.as_str())
                },
                64 << 10,
            )
            .await?;
        match status {
            200 => {
                let t: Tokens = json_of(&bytes, "the refreshed token")?;
                session.access = Zeroizing::new(t.access_token.token);
                session.access_until = t.access_token.valid_until;
                Ok(())
            }
            401 | 403 => Err(KsefError::Unauthorized),
            s => Err(KsefError::Protocol(format!(
                "refreshing the token: HTTP {s}"
            ))),
        }
    }

    /// One page of invoice metadata: `subject`'s invoices stored permanently from `from`
    /// (to `to`, else to now), never past the high-water mark, oldest first.
    pub async fn query(
        &mut self,
        session: &Session,
        subject: Subject,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
        page: u32,
    ) -> Result<MetadataPage> {
        self.pace(Group::Metadata).await?;
        let base = self.base.clone();
        let body = json!({
            "subjectType": subject.as_str(),
            "dateRange": {
                "dateType": "PermanentStorage",
                "from": from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "to": to.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                "restrictToPermanentStorageHwmDate": true,
            },
        });
        let access = session.access.clone();
        let (status, _, bytes) = self
            .send(
                &|c| {
                    c.post(format!(
                        "{base}/invoices/query/metadata?sortOrder=Asc&pageOffset={page}&pageSize={PAGE_SIZE}"
                    ))
                    .bearer_auth(access.as_str())
                    .json(&body)
                },
                MAX_PAGE_BYTES,
            )
            .await?;
        match status {
            200 => json_of(&bytes, "the invoice list"),
            401 => Err(KsefError::Unauthorized),
            400 => Err(KsefError::Rejected(rejection(&bytes))),
            s => Err(KsefError::Protocol(format!("the invoice list: HTTP {s}"))),
        }
    }

    /// Downloads an invoice's XML, byte for byte.
    pub async fn download(&mut self, session: &Session, ksef_number: &str) -> Result<Vec<u8>> {
        // The number goes into the path: only its own characters.
        if !ksef_number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(KsefError::Protocol("a malformed KSeF number".into()));
        }
        self.pace(Group::Download).await?;
        let base = self.base.clone();
        let access = session.access.clone();
        let (status, _, bytes) = self
            .send(
                &|c| {
                    c.get(format!("{base}/invoices/ksef/{ksef_number}"))
                        .bearer_auth(access.as_str())
                },
                super::invoice::MAX_INVOICE_BYTES + 1,
            )
            .await?;
        match status {
            200 => Ok(bytes),
            401 => Err(KsefError::Unauthorized),
            400 => Err(KsefError::Rejected(rejection(&bytes))),
            s => Err(KsefError::Protocol(format!("the invoice: HTTP {s}"))),
        }
    }
}

/// The RSA public key of a published certificate (base64 DER X.509; a bare
/// SubjectPublicKeyInfo is accepted too, as the OpenAPI example shows one).
fn public_key(b64: &str) -> Result<rsa::RsaPublicKey> {
    use rsa::pkcs8::DecodePublicKey;
    use x509_cert::der::{Decode, Encode};
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| KsefError::Protocol("the public key is not base64".into()))?;
    let spki = match x509_cert::Certificate::from_der(&der) {
        Ok(cert) => cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| KsefError::Protocol(format!("the certificate's key: {e}")))?,
        Err(_) => der,
    };
    rsa::RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| KsefError::Protocol(format!("the public key is not RSA: {e}")))
}
