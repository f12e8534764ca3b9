//! Signed requests (`protocol-spec/signed-request.md`).
//!
//! Every request a device sends to the relay is signed by the device's Ed25519 key over a
//! canonical signature base: firm, device, method, path (with query), timestamp, nonce and
//! SHA-256 of the body. The relay checks freshness, the signature, the body hash and
//! finally that the nonce is new, in that order (see [`RequestVerifier::verify`]).

use crate::constants::CTX_REQUEST;
use crate::crypto;
use crate::encoding::{DecodeError, Reader, Writer};
use crate::ids::{DeviceId, FirmId};
use crate::keys::{DeviceSigner, VerifyingKey};
use crate::PROTOCOL_VERSION;
use rand_core::{CryptoRng, RngCore};
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// Longest accepted method token.
pub const MAX_METHOD_LEN: usize = 16;
/// Longest accepted path including the query string.
pub const MAX_PATH_LEN: usize = 2048;
/// Default accepted clock difference between device and relay, either direction.
pub const DEFAULT_MAX_SKEW_MS: u64 = 300_000;

/// The signed fields of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The firm the request acts in.
    pub firm: FirmId,
    /// The signing device.
    pub device: DeviceId,
    /// HTTP method, uppercase ASCII letters.
    pub method: String,
    /// Absolute path with query, visible ASCII, starting with `/`.
    pub path: String,
    /// Milliseconds since the Unix epoch, device clock.
    pub timestamp_ms: u64,
    /// 16 random bytes, never reused by the device.
    pub nonce: [u8; 16],
    /// SHA-256 of the exact body bytes (of the empty string when there is no body).
    pub body_sha256: [u8; 32],
}

/// A request head with the device's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The signed fields.
    pub head: RequestHead,
    /// Ed25519 over `CTX_REQUEST || 0x00 || head.signature_base()`.
    pub signature: [u8; 64],
}

/// Why a request was refused. Each variant is a distinct failure class of the vectors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The bytes or header values are not a well-formed request.
    #[error("malformed request: {0}")]
    Malformed(#[from] DecodeError),
    /// The timestamp is older than the permitted skew.
    #[error("request timestamp is too old")]
    Stale,
    /// The timestamp is further in the future than the permitted skew.
    #[error("request timestamp is in the future")]
    FromFuture,
    /// The signature does not verify under the device key.
    #[error("request signature is invalid")]
    BadSignature,
    /// The body does not hash to the signed value.
    #[error("request body does not match its signed hash")]
    BodyHashMismatch,
    /// The (device, nonce) pair was already seen inside the window.
    #[error("request was replayed")]
    Replayed,
}

impl RequestError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Malformed",
            Self::Stale => "Stale",
            Self::FromFuture => "FromFuture",
            Self::BadSignature => "BadSignature",
            Self::BodyHashMismatch => "BodyHashMismatch",
            Self::Replayed => "Replayed",
        }
    }
}

fn validate_method(m: &str) -> Result<(), DecodeError> {
    if m.is_empty() || m.len() > MAX_METHOD_LEN || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(DecodeError::InvalidValue("method"));
    }
    Ok(())
}

fn validate_path(p: &str) -> Result<(), DecodeError> {
    if p.len() > MAX_PATH_LEN || !p.starts_with('/') || !p.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DecodeError::InvalidValue("path"));
    }
    Ok(())
}

impl RequestHead {
    /// A head for `body`, with a fresh nonce.
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: RngCore + CryptoRng>(
        firm: FirmId,
        device: DeviceId,
        method: &str,
        path: &str,
        timestamp_ms: u64,
        body: &[u8],
        rng: &mut R,
    ) -> Result<Self, DecodeError> {
        validate_method(method)?;
        validate_path(path)?;
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        Ok(Self {
            firm,
            device,
            method: method.to_owned(),
            path: path.to_owned(),
            timestamp_ms,
            nonce,
            body_sha256: crypto::sha256(&[body]),
        })
    }

    /// As [`RequestHead::new`] for a body too large to hold in memory, whose SHA-256 the
    /// caller computed while streaming it (e.g. a document's ciphertext).
    pub fn with_body_sha256<R: RngCore + CryptoRng>(
        firm: FirmId,
        device: DeviceId,
        method: &str,
        path: &str,
        timestamp_ms: u64,
        body_sha256: [u8; 32],
        rng: &mut R,
    ) -> Result<Self, DecodeError> {
        let mut head = Self::new(firm, device, method, path, timestamp_ms, &[], rng)?;
        head.body_sha256 = body_sha256;
        Ok(head)
    }

    /// Encodes the fields (without context) in canonical order.
    fn encode_into(&self, w: &mut Writer) {
        w.u8(PROTOCOL_VERSION)
            .fixed(&self.firm.0)
            .fixed(&self.device.0)
            .var(self.method.as_bytes())
            .var(self.path.as_bytes())
            .u64(self.timestamp_ms)
            .fixed(&self.nonce)
            .fixed(&self.body_sha256);
    }

    /// The bytes the signature covers (after the context).
    pub fn signature_base(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_into(&mut w);
        w.finish()
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version(PROTOCOL_VERSION)?;
        let firm = FirmId(r.array("firm")?);
        let device = DeviceId(r.array("device")?);
        let method = std::str::from_utf8(r.var("method", MAX_METHOD_LEN)?)
            .map_err(|_| DecodeError::InvalidValue("method"))?
            .to_owned();
        validate_method(&method)?;
        let path = std::str::from_utf8(r.var("path", MAX_PATH_LEN)?)
            .map_err(|_| DecodeError::InvalidValue("path"))?
            .to_owned();
        validate_path(&path)?;
        Ok(Self {
            firm,
            device,
            method,
            path,
            timestamp_ms: r.u64("timestamp")?,
            nonce: r.array("nonce")?,
            body_sha256: r.array("body_sha256")?,
        })
    }

    /// Signs the head with the device key.
    pub fn sign(self, key: &impl DeviceSigner) -> SignedRequest {
        let signature = crypto::sign_as_device(key, CTX_REQUEST, &self.signature_base());
        SignedRequest {
            head: self,
            signature,
        }
    }
}

/// The header values that carry a signed request on HTTP (`signed-request.md`).
#[derive(Debug, Clone, Copy)]
pub struct HttpHeaders<'a> {
    /// `ledgerline-firm`: 32 lowercase hex digits.
    pub firm: &'a str,
    /// `ledgerline-device`: 32 lowercase hex digits.
    pub device: &'a str,
    /// `ledgerline-timestamp`: decimal milliseconds, no sign, no leading zeros.
    pub timestamp: &'a str,
    /// `ledgerline-nonce`: 32 lowercase hex digits.
    pub nonce: &'a str,
    /// `ledgerline-content-sha256`: 64 lowercase hex digits.
    pub content_sha256: &'a str,
    /// `ledgerline-signature`: 128 lowercase hex digits.
    pub signature: &'a str,
}

fn strict_hex<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], DecodeError> {
    if s.len() != 2 * N || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(DecodeError::InvalidValue(what));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| DecodeError::InvalidValue(what))?;
    Ok(out)
}

impl SignedRequest {
    /// Rebuilds a signed request from an HTTP request's method, path (with query, exactly
    /// as on the request line) and headers. Refuses any non-canonical header value.
    pub fn from_http(method: &str, path: &str, h: &HttpHeaders<'_>) -> Result<Self, DecodeError> {
        validate_method(method)?;
        validate_path(path)?;
        let ts = h.timestamp;
        if ts.is_empty()
            || ts.len() > 20
            || !ts.bytes().all(|b| b.is_ascii_digit())
            || (ts.len() > 1 && ts.starts_with('0'))
        {
            return Err(DecodeError::InvalidValue("timestamp"));
        }
        let timestamp_ms = ts
            .parse()
            .map_err(|_| DecodeError::InvalidValue("timestamp"))?;
        Ok(Self {
            head: RequestHead {
                firm: FirmId(strict_hex(h.firm, "firm")?),
                device: DeviceId(strict_hex(h.device, "device")?),
                method: method.to_owned(),
                path: path.to_owned(),
                timestamp_ms,
                nonce: strict_hex(h.nonce, "nonce")?,
                body_sha256: strict_hex(h.content_sha256, "content_sha256")?,
            },
            signature: strict_hex(h.signature, "signature")?,
        })
    }

    /// The `(header name, value)` pairs to send with the HTTP request.
    pub fn http_headers(&self) -> [(&'static str, String); 6] {
        use crate::constants::headers;
        [
            (headers::FIRM, self.head.firm.to_hex()),
            (headers::DEVICE, self.head.device.to_hex()),
            (headers::TIMESTAMP, self.head.timestamp_ms.to_string()),
            (headers::NONCE, hex::encode(self.head.nonce)),
            (headers::CONTENT_SHA256, hex::encode(self.head.body_sha256)),
            (headers::SIGNATURE, hex::encode(self.signature)),
        ]
    }

    /// Canonical encoding: signature base followed by the 64-byte signature. This is how a
    /// request is stored inside an audit-log leaf.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.head.encode_into(&mut w);
        w.fixed(&self.signature);
        w.finish()
    }

    /// Decodes [`SignedRequest::to_bytes`] output, refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let s = Self::decode(&mut r)?;
        r.finish()?;
        Ok(s)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let head = RequestHead::decode(r)?;
        let signature = r.array("signature")?;
        Ok(Self { head, signature })
    }

    pub(crate) fn encode_into(&self, w: &mut Writer) {
        self.head.encode_into(w);
        w.fixed(&self.signature);
    }

    /// Checks only the signature (used by auditors on logged requests).
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), RequestError> {
        if crypto::verify(
            key,
            CTX_REQUEST,
            &self.head.signature_base(),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(RequestError::BadSignature)
        }
    }
}

/// Verifies many requests' signatures at once (each under its key) with Ed25519 batch
/// verification; `Err(i)`: request `i` is the first that does not verify. For auditors
/// checking logged requests in bulk (see `crypto::verify_batch` for the acceptance rule).
pub fn verify_signatures_batch(items: &[(&SignedRequest, &VerifyingKey)]) -> Result<(), usize> {
    let bases: Vec<Vec<u8>> = items.iter().map(|(r, _)| r.head.signature_base()).collect();
    let args: Vec<(&VerifyingKey, &str, &[u8], &[u8; 64])> = items
        .iter()
        .zip(&bases)
        .map(|((r, k), b)| (*k, CTX_REQUEST, b.as_slice(), &r.signature))
        .collect();
    crypto::verify_batch(&args)
}

/// Remembers the nonces of accepted requests for as long as their timestamps are fresh.
///
/// A request older than the skew window is refused as stale, so a nonce needs to be kept
/// only until its timestamp leaves the window; memory stays bounded by the request rate.
#[derive(Debug, Default)]
pub struct NonceWindow {
    seen: HashMap<(DeviceId, [u8; 16]), u64>,
    by_expiry: BTreeMap<u64, Vec<(DeviceId, [u8; 16])>>,
}

impl NonceWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `(device, nonce)` valid until `expires_ms`; `false` if it was already there.
    pub fn insert(
        &mut self,
        device: DeviceId,
        nonce: [u8; 16],
        expires_ms: u64,
        now_ms: u64,
    ) -> bool {
        self.evict(now_ms);
        if self.seen.contains_key(&(device, nonce)) {
            return false;
        }
        self.seen.insert((device, nonce), expires_ms);
        self.by_expiry
            .entry(expires_ms)
            .or_default()
            .push((device, nonce));
        true
    }

    /// The remembered `(device, nonce, expires_ms)` triples, for persisting the window.
    pub fn entries(&self) -> Vec<(DeviceId, [u8; 16], u64)> {
        self.seen.iter().map(|((d, n), e)| (*d, *n, *e)).collect()
    }

    /// Number of remembered nonces.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn evict(&mut self, now_ms: u64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= now_ms {
                break;
            }
            for k in entry.remove() {
                self.seen.remove(&k);
            }
        }
    }
}

/// The relay's request check: skew policy plus replay window.
#[derive(Debug)]
pub struct RequestVerifier {
    max_skew_ms: u64,
    nonces: NonceWindow,
}

impl Default for RequestVerifier {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SKEW_MS)
    }
}

impl RequestVerifier {
    /// A verifier accepting timestamps within `max_skew_ms` of the relay's clock.
    pub fn new(max_skew_ms: u64) -> Self {
        Self {
            max_skew_ms,
            nonces: NonceWindow::new(),
        }
    }

    /// Checks a request, in this order: freshness, signature, body hash, nonce.
    ///
    /// The nonce is remembered only once everything else passed, so an attacker without
    /// the device key cannot fill the window.
    pub fn verify(
        &mut self,
        req: &SignedRequest,
        key: &VerifyingKey,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), RequestError> {
        check_request(req, key, body, now_ms, self.max_skew_ms)?;
        if !self.remember(req, now_ms) {
            return Err(RequestError::Replayed);
        }
        Ok(())
    }

    /// The replay window, for persisting across restarts.
    pub fn window(&self) -> &NonceWindow {
        &self.nonces
    }

    /// Restores a persisted entry of the window.
    pub fn restore(&mut self, device: DeviceId, nonce: [u8; 16], expires_ms: u64, now_ms: u64) {
        self.nonces.insert(device, nonce, expires_ms, now_ms);
    }

    /// The accepted clock skew.
    pub fn max_skew_ms(&self) -> u64 {
        self.max_skew_ms
    }

    /// Records the request's nonce as used until its timestamp leaves the window, without
    /// other checks (for restoring the window, e.g. from a relay's durable nonce table).
    /// Returns `false` if the nonce was already recorded.
    pub fn remember(&mut self, req: &SignedRequest, now_ms: u64) -> bool {
        let expires = req.head.timestamp_ms.saturating_add(self.max_skew_ms);
        self.nonces
            .insert(req.head.device, req.head.nonce, expires, now_ms)
    }
}

/// The checks of [`RequestVerifier::verify`] that need no replay window: freshness,
/// signature, body hash, in that order. They hold no state, so a server runs them on any
/// thread and takes the lock around its window only for [`RequestVerifier::remember`]
/// afterwards (a signature verification under that lock would serialize every request).
pub fn check_request(
    req: &SignedRequest,
    key: &VerifyingKey,
    body: &[u8],
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<(), RequestError> {
    check_fresh(req.head.timestamp_ms, now_ms, max_skew_ms)?;
    req.verify_signature(key)?;
    if crypto::sha256(&[body]) != req.head.body_sha256 {
        return Err(RequestError::BodyHashMismatch);
    }
    Ok(())
}

/// `Stale` when `ts < now - skew`, `FromFuture` when `ts > now + skew`.
pub fn check_fresh(ts_ms: u64, now_ms: u64, max_skew_ms: u64) -> Result<(), RequestError> {
    if ts_ms < now_ms.saturating_sub(max_skew_ms) {
        return Err(RequestError::Stale);
    }
    if ts_ms > now_ms.saturating_add(max_skew_ms) {
        return Err(RequestError::FromFuture);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::DeviceSigningKey;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn batch_verification_names_the_first_bad_signature_and_refuses_small_order_r() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let keys: Vec<DeviceSigningKey> = (0..3)
            .map(|_| DeviceSigningKey::generate(&mut rng))
            .collect();
        let mut reqs: Vec<SignedRequest> = (0..40)
            .map(|i| {
                RequestHead::new(
                    FirmId([1; 16]),
                    DeviceId([2; 16]),
                    "GET",
                    &format!("/v1/x/{i}"),
                    1_000 + i,
                    b"",
                    &mut rng,
                )
                .unwrap()
                .sign(&keys[i as usize % 3])
            })
            .collect();
        let vks: Vec<VerifyingKey> = keys.iter().map(DeviceSigningKey::verifying_key).collect();
        let check = |reqs: &[SignedRequest]| {
            let items: Vec<(&SignedRequest, &VerifyingKey)> = reqs
                .iter()
                .enumerate()
                .map(|(i, r)| (r, &vks[i % 3]))
                .collect();
            verify_signatures_batch(&items)
        };
        assert_eq!(check(&reqs), Ok(()));
        assert_eq!(check(&[]), Ok(()));
        let mut bad = reqs.clone();
        bad[17].head.path = "/v1/other".into();
        bad[30].signature[5] ^= 1;
        assert_eq!(check(&bad), Err(17));
        // R = the identity (a small-order point): strict verification refuses it, so the
        // batch must too, whatever the equation says.
        reqs[3].signature[..32].copy_from_slice(&{
            let mut id = [0u8; 32];
            id[0] = 1;
            id
        });
        assert_eq!(check(&reqs), Err(3));
    }

    fn fixture() -> (DeviceSigningKey, SignedRequest, Vec<u8>) {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = DeviceSigningKey::generate(&mut rng);
        let body = b"{\"x\":1}".to_vec();
        let head = RequestHead::new(
            FirmId([1; 16]),
            DeviceId([2; 16]),
            "POST",
            "/v1/rooms/ab/messages?x=1",
            1_000_000,
            &body,
            &mut rng,
        )
        .unwrap();
        (key.clone(), head.sign(&key), body)
    }

    #[test]
    fn accepts_once_then_refuses_replay() {
        let (key, req, body) = fixture();
        let mut v = RequestVerifier::default();
        assert_eq!(
            v.verify(&req, &key.verifying_key(), &body, 1_000_500),
            Ok(())
        );
        assert_eq!(
            v.verify(&req, &key.verifying_key(), &body, 1_000_600),
            Err(RequestError::Replayed)
        );
    }

    #[test]
    fn skew_policy() {
        let (key, req, body) = fixture();
        let mut v = RequestVerifier::new(1000);
        let vk = key.verifying_key();
        assert_eq!(
            v.verify(&req, &vk, &body, 1_001_001),
            Err(RequestError::Stale)
        );
        assert_eq!(
            v.verify(&req, &vk, &body, 998_999),
            Err(RequestError::FromFuture)
        );
        assert_eq!(
            v.verify(&req, &vk, b"other", 1_000_000),
            Err(RequestError::BodyHashMismatch)
        );
        // A failed attempt must not burn the nonce.
        assert_eq!(v.verify(&req, &vk, &body, 1_000_000), Ok(()));
    }

    #[test]
    fn http_headers_round_trip_and_are_strict() {
        let (_, req, _) = fixture();
        let h = req.http_headers();
        let get = |name: &str| {
            h.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        use crate::constants::headers as hn;
        let mut hv = HttpHeaders {
            firm: get(hn::FIRM),
            device: get(hn::DEVICE),
            timestamp: get(hn::TIMESTAMP),
            nonce: get(hn::NONCE),
            content_sha256: get(hn::CONTENT_SHA256),
            signature: get(hn::SIGNATURE),
        };
        assert_eq!(
            SignedRequest::from_http(&req.head.method, &req.head.path, &hv).unwrap(),
            req
        );
        let upper = hv.nonce.to_uppercase();
        hv.nonce = &upper;
        assert!(SignedRequest::from_http(&req.head.method, &req.head.path, &hv).is_err());
        hv.nonce = get(hn::NONCE);
        hv.timestamp = "01000000";
        assert!(SignedRequest::from_http(&req.head.method, &req.head.path, &hv).is_err());
    }

    #[test]
    fn nonce_window_forgets_expired_entries() {
        let mut w = NonceWindow::new();
        assert!(w.insert(DeviceId([1; 16]), [0; 16], 10, 0));
        assert!(!w.insert(DeviceId([1; 16]), [0; 16], 10, 5));
        assert!(w.insert(DeviceId([1; 16]), [1; 16], 30, 11));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn malformed_heads_are_refused() {
        let (key, req, _) = fixture();
        for (m, p) in [("post", "/a"), ("POST", "a"), ("POST", "/a b"), ("", "/")] {
            let mut h = req.head.clone();
            h.method = m.into();
            h.path = p.into();
            let bytes = h.sign(&key).to_bytes();
            assert!(matches!(
                SignedRequest::from_bytes(&bytes),
                Err(DecodeError::InvalidValue(_))
            ));
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(path in "/[a-z0-9/?=&]{0,60}", ts in any::<u64>(), nonce in any::<[u8; 16]>()) {
            let (key, mut req, _) = fixture();
            req.head.path = path;
            req.head.timestamp_ms = ts;
            req.head.nonce = nonce;
            let signed = req.head.sign(&key);
            prop_assert_eq!(SignedRequest::from_bytes(&signed.to_bytes()).unwrap(), signed);
        }

        #[test]
        fn every_bit_flip_is_rejected(bit in 0usize..(8 * 200)) {
            let (key, req, _) = fixture();
            let mut bytes = req.to_bytes();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            let ok = SignedRequest::from_bytes(&bytes)
                .map(|r| r.verify_signature(&key.verifying_key()).is_ok())
                .unwrap_or(false);
            prop_assert!(!ok);
        }
    }
}
