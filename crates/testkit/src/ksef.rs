//! A KSeF 2.0 test server built from the official OpenAPI description
//! (`../shared/ksef/open-api.json`, CIRFMF/ksef-docs "version 2.6"): the real service cannot
//! be reached from these machines. It serves, over TLS on loopback, what a client that
//! fetches invoices uses:
//!
//! - `GET /security/public-key-certificates` (an RSA key in a real X.509 certificate);
//! - the KSeF-token login: `POST /auth/challenge`, `POST /auth/ksef-token` (the token and
//!   the challenge's timestamp, RSA-OAEP SHA-256, decrypted and checked here),
//!   `GET /auth/{ref}` (in progress once, then the outcome), `POST /auth/token/redeem`
//!   (once), `POST /auth/token/refresh`;
//! - `POST /invoices/query/metadata` with paging, `PermanentStorage` dates, the
//!   high-water mark (`restrictToPermanentStorageHwmDate`), truncation and the three-month
//!   range limit; `GET /invoices/ksef/{number}` with the `x-ms-meta-hash` header;
//! - the rate limits (per second, minute and hour, per group) with `429` and
//!   `Retry-After`, and `401` for expired tokens.
//!
//! Tests steer it directly: publish invoices (now, or late behind the high-water mark),
//! tamper with one, expire tokens, revoke a KSeF token, tighten a limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::fa3::Fa3;
use axum::extract::{Path as UrlPath, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Duration as Span, NaiveDate, SecondsFormat, Utc};
use rand::{Rng, RngCore};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One published invoice.
#[derive(Debug, Clone)]
struct Stored {
    ksef: String,
    xml: Vec<u8>,
    /// What the metadata says its SHA-256 is (differs from `xml`'s when tampered with).
    hash: [u8; 32],
    model: Option<Fa3>,
    seller: String,
    buyer: Option<String>,
    stored: DateTime<Utc>,
}

#[derive(Debug)]
struct AuthOp {
    auth_token: String,
    nip: String,
    outcome: (u16, &'static str),
    polls: u32,
    redeemed: bool,
}

/// Request counts a test checks.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// `POST /invoices/query/metadata` answered 200.
    pub queries: u64,
    /// Invoices downloaded.
    pub downloads: u64,
    /// `429` answers.
    pub too_many: u64,
    /// Logins completed (tokens redeemed).
    pub logins: u64,
    /// Access tokens refreshed.
    pub refreshes: u64,
    /// `401` answers.
    pub unauthorized: u64,
}

#[derive(Debug, Clone, Copy)]
struct Limit {
    per_second: usize,
    per_minute: usize,
    per_hour: usize,
}

#[derive(Debug)]
struct State {
    key: rsa::RsaPrivateKey,
    certificate: Vec<u8>,
    tokens: HashMap<String, String>,
    challenges: HashMap<String, (i64, bool)>,
    ops: HashMap<String, AuthOp>,
    access: HashMap<String, (String, DateTime<Utc>)>,
    refresh: HashMap<String, (String, DateTime<Utc>)>,
    access_life: Span,
    invoices: Vec<Stored>,
    hwm_lag: Span,
    truncate_at: usize,
    page_cap: usize,
    date_skew: Span,
    limits: HashMap<&'static str, Limit>,
    hits: HashMap<&'static str, VecDeque<Instant>>,
    stats: Stats,
    last_stored: DateTime<Utc>,
}

/// The KSeF test server (runs until dropped).
#[derive(Debug)]
pub struct KsefServer {
    /// Its API base, `https://localhost:PORT/v2`.
    pub url: String,
    /// The PEM of its certificate (the CA a client must trust).
    pub ca: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for KsefServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, false)
}

fn random_token(prefix: &str) -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    format!(
        "{prefix}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [("content-type", "application/problem+json")],
        json!({
            "title": status.canonical_reason().unwrap_or(""),
            "status": status.as_u16(),
            "detail": detail,
            "timestamp": stamp(Utc::now()),
        })
        .to_string(),
    )
        .into_response()
}

fn bad_request(code: u32, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"exception": {"exceptionDetailList": [
            {"exceptionCode": code, "exceptionDescription": description, "details": []}
        ], "timestamp": stamp(Utc::now())}})),
    )
        .into_response()
}

impl State {
    /// Counts a request of `group`; `Some(seconds)` when it is over a limit.
    fn over_limit(&mut self, group: &'static str) -> Option<u64> {
        let limit = *self.limits.get(group)?;
        let now = Instant::now();
        let hits = self.hits.entry(group).or_default();
        while hits
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3600))
        {
            hits.pop_front();
        }
        let within = |d: Duration| hits.iter().filter(|t| now.duration_since(**t) < d).count();
        for (n, window) in [
            (limit.per_second, Duration::from_secs(1)),
            (limit.per_minute, Duration::from_secs(60)),
            (limit.per_hour, Duration::from_secs(3600)),
        ] {
            if within(window) >= n {
                // Until the oldest request in that window leaves it.
                let oldest = hits
                    .iter()
                    .find(|t| now.duration_since(**t) < window)
                    .copied()
                    .unwrap_or(now);
                let wait = window.saturating_sub(now.duration_since(oldest));
                self.stats.too_many += 1;
                return Some(wait.as_secs().max(1));
            }
        }
        hits.push_back(now);
        None
    }

    #[allow(clippy::result_large_err)]
    fn context_of(&mut self, headers: &HeaderMap) -> Result<String, Response> {
        let token = bearer(headers);
        match token.and_then(|t| self.access.get(&t).cloned()) {
            Some((nip, until)) if until > Utc::now() => Ok(nip),
            Some(_) => {
                self.stats.unauthorized += 1;
                Err(problem(StatusCode::UNAUTHORIZED, "Token dostępu wygasł."))
            }
            None => {
                self.stats.unauthorized += 1;
                Err(problem(
                    StatusCode::UNAUTHORIZED,
                    "Brak ważnego tokena dostępu.",
                ))
            }
        }
    }

    fn hwm(&self) -> DateTime<Utc> {
        Utc::now() - self.hwm_lag
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

fn too_many(seconds: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", seconds.to_string())],
        Json(
            json!({"status": {"code": 429, "description": "Too Many Requests", "details": [
                format!("Przekroczono limit żądań. Spróbuj ponownie po {seconds} sekundach.")
            ]}}),
        ),
    )
        .into_response()
}

type Shared = Arc<Mutex<State>>;

async fn certificates(AxState(s): AxState<Shared>) -> Response {
    let s = s.lock().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let id = b64.encode(Sha256::digest(&s.certificate));
    Json(json!([{
        "certificate": b64.encode(&s.certificate),
        "certificateId": id,
        "publicKeyId": id,
        "validFrom": stamp(Utc::now() - Span::days(30)),
        "validTo": stamp(Utc::now() + Span::days(365)),
        "usage": ["KsefTokenEncryption", "SymmetricKeyEncryption"],
    }]))
    .into_response()
}

async fn challenge(AxState(s): AxState<Shared>) -> Response {
    let mut s = s.lock().unwrap();
    if let Some(wait) = s.over_limit("auth") {
        return too_many(wait);
    }
    let now = Utc::now();
    let challenge = format!(
        "{}-CR-{:010X}-{:010X}-{:02X}",
        now.format("%Y%m%d"),
        rand::thread_rng().gen::<u64>() & 0xFF_FFFF_FFFF,
        rand::thread_rng().gen::<u64>() & 0xFF_FFFF_FFFF,
        rand::thread_rng().gen::<u8>()
    );
    let ms = now.timestamp_millis();
    s.challenges.insert(challenge.clone(), (ms, false));
    Json(json!({
        "challenge": challenge,
        "timestamp": stamp(now),
        "timestampMs": ms,
        "clientIp": "127.0.0.1",
    }))
    .into_response()
}

async fn ksef_token(AxState(s): AxState<Shared>, Json(body): Json<Value>) -> Response {
    let mut s = s.lock().unwrap();
    if let Some(wait) = s.over_limit("auth") {
        return too_many(wait);
    }
    let challenge = body["challenge"].as_str().unwrap_or_default().to_owned();
    let nip = body["contextIdentifier"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if body["contextIdentifier"]["type"] != "Nip" {
        return bad_request(21405, "Błąd walidacji danych wejściowych.");
    }
    let Some((ms, used)) = s.challenges.get(&challenge).copied() else {
        return bad_request(21405, "Nieznane wyzwanie.");
    };
    if used || Utc::now().timestamp_millis() - ms > 10 * 60 * 1000 {
        return bad_request(21405, "Wyzwanie wygasło lub zostało użyte.");
    }
    s.challenges.insert(challenge, (ms, true));
    let encrypted = base64::engine::general_purpose::STANDARD
        .decode(body["encryptedToken"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let plain = s
        .key
        .decrypt(rsa::Oaep::new::<Sha256>(), &encrypted)
        .ok()
        .and_then(|p| String::from_utf8(p).ok());
    let outcome = match plain.as_deref().and_then(|p| p.rsplit_once('|')) {
        None => (450, "Nieprawidłowy token"),
        Some((_, t)) if t != ms.to_string() => (450, "Nieprawidłowy czas tokena"),
        Some((token, _)) => match s.tokens.get(token) {
            Some(n) if *n == nip => (200, "Uwierzytelnianie zakończone sukcesem"),
            Some(_) => (415, "Brak przypisanych uprawnień"),
            None => (450, "Nieprawidłowy token"),
        },
    };
    let reference = format!(
        "{}-AU-{:010X}-{:010X}-{:02X}",
        Utc::now().format("%Y%m%d"),
        rand::thread_rng().gen::<u64>() & 0xFF_FFFF_FFFF,
        rand::thread_rng().gen::<u64>() & 0xFF_FFFF_FFFF,
        rand::thread_rng().gen::<u8>()
    );
    let auth_token = random_token("auth");
    s.ops.insert(
        reference.clone(),
        AuthOp {
            auth_token: auth_token.clone(),
            nip,
            outcome,
            polls: 0,
            redeemed: false,
        },
    );
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "referenceNumber": reference,
            "authenticationToken": {"token": auth_token, "validUntil": stamp(Utc::now() + Span::minutes(15))},
        })),
    )
        .into_response()
}

async fn auth_status(
    AxState(s): AxState<Shared>,
    UrlPath(reference): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let mut s = s.lock().unwrap();
    let token = bearer(&headers);
    let Some(op) = s.ops.get_mut(&reference) else {
        return bad_request(21405, "Nieznana operacja.");
    };
    if token.as_deref() != Some(op.auth_token.as_str()) {
        return problem(StatusCode::UNAUTHORIZED, "Nieprawidłowy token operacji.");
    }
    op.polls += 1;
    // In progress at the first look, as the real service is while it checks.
    let (code, description) = if op.polls == 1 {
        (100, "Uwierzytelnianie w toku")
    } else {
        op.outcome
    };
    Json(json!({
        "startDate": stamp(Utc::now()),
        "authenticationMethod": "Token",
        "authenticationMethodInfo": {"category": "Token", "code": "token", "displayName": "Token KSeF"},
        "status": {"code": code, "description": description},
    }))
    .into_response()
}

async fn redeem(AxState(s): AxState<Shared>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    let token = bearer(&headers).unwrap_or_default();
    let life = s.access_life;
    let Some(op) = s.ops.values_mut().find(|o| o.auth_token == token) else {
        return problem(StatusCode::UNAUTHORIZED, "Nieprawidłowy token operacji.");
    };
    if op.redeemed || op.outcome.0 != 200 {
        return bad_request(
            21301,
            "Tokeny zostały już pobrane lub uwierzytelnienie nie powiodło się.",
        );
    }
    op.redeemed = true;
    let nip = op.nip.clone();
    let (access, refresh) = (random_token("access"), random_token("refresh"));
    let (a_until, r_until) = (Utc::now() + life, Utc::now() + Span::days(7));
    s.access.insert(access.clone(), (nip.clone(), a_until));
    s.refresh.insert(refresh.clone(), (nip, r_until));
    s.stats.logins += 1;
    Json(json!({
        "accessToken": {"token": access, "validUntil": stamp(a_until)},
        "refreshToken": {"token": refresh, "validUntil": stamp(r_until)},
    }))
    .into_response()
}

async fn refresh(AxState(s): AxState<Shared>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    let token = bearer(&headers).unwrap_or_default();
    match s.refresh.get(&token).cloned() {
        Some((nip, until)) if until > Utc::now() => {
            let access = random_token("access");
            let a_until = Utc::now() + s.access_life;
            s.access.insert(access.clone(), (nip, a_until));
            s.stats.refreshes += 1;
            Json(json!({"accessToken": {"token": access, "validUntil": stamp(a_until)}}))
                .into_response()
        }
        _ => {
            s.stats.unauthorized += 1;
            problem(StatusCode::UNAUTHORIZED, "Refresh token wygasł.")
        }
    }
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn metadata(
    AxState(s): AxState<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = s.lock().unwrap();
    let nip = match s.context_of(&headers) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Some(wait) = s.over_limit("invoiceMetadata") {
        return too_many(wait);
    }
    let offset: usize = q
        .get("pageOffset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let size: usize = q.get("pageSize").and_then(|v| v.parse().ok()).unwrap_or(10);
    if !(10..=250).contains(&size) || q.get("sortOrder").is_some_and(|o| o != "Asc") {
        return bad_request(21405, "Błąd walidacji danych wejściowych.");
    }
    // A page holds what was asked for, or fewer when a test caps pages to see paging.
    let size = size.min(s.page_cap);
    let range = &body["dateRange"];
    if range["dateType"] != "PermanentStorage" {
        return bad_request(
            21405,
            "Ten serwer testowy obsługuje tylko PermanentStorage.",
        );
    }
    let Some(from) = parse_time(&range["from"]) else {
        return bad_request(21405, "Błędna data początkowa.");
    };
    let now = Utc::now();
    let mut to = if range["to"].is_null() {
        now
    } else {
        match parse_time(&range["to"]) {
            Some(t) => t,
            None => return bad_request(21405, "Błędna data końcowa."),
        }
    };
    if to - from > Span::days(92) {
        return bad_request(21405, "Zakres dat przekracza 3 miesiące.");
    }
    let hwm = s.hwm();
    if range["restrictToPermanentStorageHwmDate"] == true {
        if from > hwm {
            return bad_request(
                21183,
                "Zakres filtrowania wykracza poza dostępny zakres danych.",
            );
        }
        to = to.min(hwm);
    }
    let subject = body["subjectType"].as_str().unwrap_or_default();
    let matching: Vec<&Stored> = s
        .invoices
        .iter()
        .filter(|i| i.stored >= from && i.stored <= to && i.stored <= now)
        .filter(|i| match subject {
            "Subject1" => i.seller == nip,
            "Subject2" => i.buyer.as_deref() == Some(nip.as_str()),
            _ => false,
        })
        .collect();
    let truncated = matching.len() > s.truncate_at;
    let visible = &matching[..matching.len().min(s.truncate_at)];
    let page: Vec<Value> = visible
        .iter()
        .skip(offset * size)
        .take(size)
        .map(|i| meta(i, s.date_skew))
        .collect();
    let more = visible.len() > (offset + 1) * size;
    let body = json!({
        "hasMore": more || truncated,
        "isTruncated": truncated && !more,
        "permanentStorageHwmDate": stamp(to),
        "invoices": page,
    });
    s.stats.queries += 1;
    Json(body).into_response()
}

fn meta(i: &Stored, skew: Span) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (net, vat, gross, number, issued, kind, seller, buyer) = match &i.model {
        Some(m) => (
            m.net(),
            m.vat(),
            m.gross(),
            m.number.clone(),
            m.issued.to_string(),
            if m.kind == "KOR" { "Kor" } else { "Vat" },
            m.seller.name.clone(),
            m.buyer.name.clone(),
        ),
        None => (
            0,
            0,
            0,
            "?".into(),
            i.stored.date_naive().to_string(),
            "Vat",
            String::new(),
            String::new(),
        ),
    };
    json!({
        "ksefNumber": i.ksef,
        "invoiceNumber": number,
        "issueDate": issued,
        "invoicingDate": stamp(i.stored),
        "acquisitionDate": stamp(i.stored),
        "permanentStorageDate": stamp(i.stored + skew),
        "seller": {"nip": i.seller, "name": seller},
        "buyer": {"identifier": match &i.buyer {
            Some(n) => json!({"type": "Nip", "value": n}),
            None => json!({"type": "None"}),
        }, "name": buyer},
        "netAmount": net as f64 / 100.0,
        "vatAmount": vat as f64 / 100.0,
        "grossAmount": gross as f64 / 100.0,
        "currency": "PLN",
        "invoicingMode": "Online",
        "invoiceType": kind,
        "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
        "isSelfInvoicing": false,
        "hasAttachment": false,
        "invoiceHash": b64.encode(i.hash),
        "thirdSubjects": [],
    })
}

async fn download(
    AxState(s): AxState<Shared>,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let mut s = s.lock().unwrap();
    let nip = match s.context_of(&headers) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Some(wait) = s.over_limit("invoiceDownload") {
        return too_many(wait);
    }
    let Some(i) = s
        .invoices
        .iter()
        .find(|i| i.ksef == number && (i.seller == nip || i.buyer.as_deref() == Some(&nip)))
        .cloned()
    else {
        return bad_request(21164, "Faktura o podanym identyfikatorze nie istnieje.");
    };
    s.stats.downloads += 1;
    (
        [
            ("content-type", "application/xml".to_owned()),
            (
                "x-ms-meta-hash",
                base64::engine::general_purpose::STANDARD.encode(i.hash),
            ),
        ],
        i.xml,
    )
        .into_response()
}

impl KsefServer {
    /// Starts the server with its files under `dir`.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut rng = rand::thread_rng();
        let key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
        // The token-encryption key in a real certificate, as the Ministry publishes it.
        let pkcs8 = {
            use rsa::pkcs8::EncodePrivateKey;
            key.to_pkcs8_der().unwrap()
        };
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "KSeF test: KsefTokenEncryption");
        let certificate = params.self_signed(&pair).unwrap().der().to_vec();

        let tls = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let ca = dir.join("ksef-ca.pem");
        std::fs::write(&ca, tls.cert.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![tls.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(tls.signing_key.serialize_der().into()),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let limits = HashMap::from([
            // The test environment's limits: ten times production's (`limity-api.md`).
            (
                "invoiceMetadata",
                Limit {
                    per_second: 80,
                    per_minute: 160,
                    per_hour: 200,
                },
            ),
            (
                "invoiceDownload",
                Limit {
                    per_second: 80,
                    per_minute: 160,
                    per_hour: 640,
                },
            ),
            (
                "auth",
                Limit {
                    per_second: 600,
                    per_minute: usize::MAX,
                    per_hour: usize::MAX,
                },
            ),
        ]);
        let state = Arc::new(Mutex::new(State {
            key,
            certificate,
            tokens: HashMap::new(),
            challenges: HashMap::new(),
            ops: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            access_life: Span::minutes(15),
            invoices: Vec::new(),
            hwm_lag: Span::zero(),
            truncate_at: 10_000,
            page_cap: 250,
            date_skew: Span::zero(),
            limits,
            hits: HashMap::new(),
            stats: Stats::default(),
            last_stored: Utc::now() - Span::days(1),
        }));
        let app = Router::new()
            .route("/v2/security/public-key-certificates", get(certificates))
            .route("/v2/auth/challenge", post(challenge))
            .route("/v2/auth/ksef-token", post(ksef_token))
            .route("/v2/auth/token/redeem", post(redeem))
            .route("/v2/auth/token/refresh", post(refresh))
            .route("/v2/auth/{reference}", get(auth_status))
            .route("/v2/invoices/query/metadata", post(metadata))
            .route("/v2/invoices/ksef/{number}", get(download))
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::pin!(stopped);
                loop {
                    let (tcp, _) = tokio::select! {
                        a = listener.accept() => match a { Ok(c) => c, Err(_) => continue },
                        _ = &mut stopped => break,
                    };
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                use tower::ServiceExt;
                                app.clone().oneshot(req.map(axum::body::Body::new))
                            },
                        );
                        let _ = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                    });
                }
            });
        });
        KsefServer {
            url: format!("https://localhost:{port}/v2"),
            ca,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Issues a KSeF token for the context `nip`.
    pub fn add_token(&self, nip: &str, token: &str) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.to_owned(), nip.to_owned());
    }

    /// Revokes a KSeF token (its next login fails).
    pub fn revoke_token(&self, token: &str) {
        self.state.lock().unwrap().tokens.remove(token);
    }

    /// Publishes an invoice now; returns its KSeF number.
    pub fn publish(&self, fa: &Fa3) -> String {
        let mut s = self.state.lock().unwrap();
        // Strictly increasing storage times, as a real repository's are in practice.
        let at = Utc::now().max(s.last_stored + Span::milliseconds(1));
        s.last_stored = at;
        drop(s);
        self.publish_at(fa, at)
    }

    /// Publishes an invoice stored at `at` (before now: one that materialised late,
    /// behind invoices already listed).
    pub fn publish_at(&self, fa: &Fa3, at: DateTime<Utc>) -> String {
        let seller = fa.seller.nip.clone().unwrap();
        let ksef = crate::fa3::ksef_number(&seller, at.date_naive(), &mut rand::thread_rng());
        let xml = fa.xml().into_bytes();
        let hash: [u8; 32] = Sha256::digest(&xml).into();
        let mut s = self.state.lock().unwrap();
        s.invoices.push(Stored {
            ksef: ksef.clone(),
            xml,
            hash,
            model: Some(fa.clone()),
            seller,
            buyer: fa.buyer.nip.clone(),
            stored: at,
        });
        s.invoices.sort_by_key(|i| i.stored);
        ksef
    }

    /// Publishes bytes that are not a readable invoice (from `seller` to `buyer`).
    pub fn publish_bytes(&self, seller: &str, buyer: &str, xml: &[u8]) -> String {
        let mut s = self.state.lock().unwrap();
        let at = Utc::now().max(s.last_stored + Span::milliseconds(1));
        s.last_stored = at;
        let ksef = crate::fa3::ksef_number(seller, at.date_naive(), &mut rand::thread_rng());
        s.invoices.push(Stored {
            ksef: ksef.clone(),
            xml: xml.to_vec(),
            hash: Sha256::digest(xml).into(),
            model: None,
            seller: seller.to_owned(),
            buyer: Some(buyer.to_owned()),
            stored: at,
        });
        ksef
    }

    /// Changes an invoice's bytes after its hash was recorded (a tampered download).
    pub fn tamper(&self, ksef: &str, from: &str, to: &str) {
        let mut s = self.state.lock().unwrap();
        let i = s.invoices.iter_mut().find(|i| i.ksef == ksef).unwrap();
        let text = String::from_utf8(i.xml.clone()).unwrap();
        assert!(text.contains(from));
        i.xml = text.replacen(from, to, 1).into_bytes();
    }

    /// How far the high-water mark trails now.
    pub fn set_hwm_lag(&self, lag: std::time::Duration) {
        self.state.lock().unwrap().hwm_lag = Span::from_std(lag).unwrap();
    }

    /// The most records one query lists before it is truncated (10,000 in KSeF).
    pub fn set_truncate_at(&self, n: usize) {
        self.state.lock().unwrap().truncate_at = n;
    }

    /// The most invoices one page holds, whatever the client asks for (to see paging
    /// with few invoices).
    pub fn set_page_cap(&self, n: usize) {
        self.state.lock().unwrap().page_cap = n.max(1);
    }

    /// Lists storage dates this far off the truth (a faulty or hostile server).
    pub fn set_date_skew(&self, skew: std::time::Duration) {
        self.state.lock().unwrap().date_skew = Span::from_std(skew).unwrap();
    }

    /// Sets a group's limits (`invoiceMetadata`, `invoiceDownload`, `auth`).
    pub fn set_limit(
        &self,
        group: &'static str,
        per_second: usize,
        per_minute: usize,
        per_hour: usize,
    ) {
        let mut s = self.state.lock().unwrap();
        s.limits.insert(
            group,
            Limit {
                per_second,
                per_minute,
                per_hour,
            },
        );
        s.hits.remove(group);
    }

    /// Every access token issued so far expires now.
    pub fn expire_access_tokens(&self) {
        let mut s = self.state.lock().unwrap();
        let past = Utc::now() - Span::seconds(1);
        for v in s.access.values_mut() {
            v.1 = past;
        }
    }

    /// Every refresh token issued so far expires now.
    pub fn expire_refresh_tokens(&self) {
        let mut s = self.state.lock().unwrap();
        let past = Utc::now() - Span::seconds(1);
        for v in s.refresh.values_mut() {
            v.1 = past;
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        self.state.lock().unwrap().stats.clone()
    }

    /// The invoice models published for `nip` as seller or buyer, with their numbers.
    pub fn published(&self) -> Vec<(String, Option<Fa3>, Vec<u8>)> {
        self.state
            .lock()
            .unwrap()
            .invoices
            .iter()
            .map(|i| (i.ksef.clone(), i.model.clone(), i.xml.clone()))
            .collect()
    }
}

/// A day as the generator takes it.
pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}
