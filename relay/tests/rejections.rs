//! Every route × every bad-input class gets a 4xx with a JSON `{code, message}`: never a
//! 5xx, a panic or a hang.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::ids::{DeviceId, FileId, MemberId, RecordId};
use ledgerline_protocol::roster::{EventKind, Role};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

struct Route {
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// The body with one hex field made invalid.
    bad_hex: Option<Value>,
    /// The path with one id made invalid.
    bad_path: Option<String>,
    /// Whether the route reads a customer file (403 for a member without access).
    file_scoped: bool,
}

fn route(
    method: &'static str,
    path: String,
    body: Option<Value>,
    bad_hex: Option<Value>,
    bad_path: Option<String>,
    file_scoped: bool,
) -> Route {
    Route {
        method,
        path,
        body,
        bad_hex,
        bad_path,
        file_scoped,
    }
}

fn routes(
    file: FileId,
    room: &str,
    member: MemberId,
    device: DeviceId,
    record: RecordId,
    doc: &str,
) -> Vec<Route> {
    let ev = json!({ "event": "00" });
    vec![
        route("GET", "/v1/roster?since=0".into(), None, None, None, false),
        route(
            "POST",
            "/v1/roster".into(),
            Some(ev),
            Some(json!({ "event": "zz" })),
            None,
            false,
        ),
        route(
            "PUT",
            "/v1/devices/self/prekeys".into(),
            Some(json!({ "prekeys": [] })),
            Some(json!({ "prekeys": ["0g"] })),
            None,
            false,
        ),
        route(
            "POST",
            "/v1/prekeys/claim".into(),
            Some(json!({ "devices": [device] })),
            Some(json!({ "devices": ["nothex"] })),
            None,
            false,
        ),
        route(
            "POST",
            "/v1/to-device".into(),
            Some(json!({ "messages": [{ "device": device, "ciphertext": "00" }] })),
            Some(json!({ "messages": [{ "device": device, "ciphertext": "0" }] })),
            None,
            false,
        ),
        route(
            "GET",
            "/v1/to-device?after=0".into(),
            None,
            None,
            None,
            false,
        ),
        route(
            "POST",
            "/v1/to-device/ack".into(),
            Some(json!({ "up_to": 0 })),
            None,
            None,
            false,
        ),
        route(
            "POST",
            "/v1/rooms".into(),
            Some(json!({ "room": "11".repeat(16), "file": file })),
            Some(json!({ "room": "XX".repeat(16), "file": file })),
            None,
            false,
        ),
        route(
            "GET",
            format!("/v1/rooms/{room}"),
            None,
            None,
            Some("/v1/rooms/xyz".into()),
            false,
        ),
        route(
            "POST",
            format!("/v1/rooms/{room}/messages"),
            Some(json!({ "ciphertext": "00" })),
            Some(json!({ "ciphertext": "0x00" })),
            Some("/v1/rooms/00/messages".into()),
            false,
        ),
        route(
            "GET",
            format!("/v1/rooms/{room}/messages?from=1"),
            None,
            None,
            Some(format!("/v1/rooms/{}/messages", "G".repeat(32))),
            false,
        ),
        route(
            "GET",
            format!("/v1/files/{file}/records?since=0"),
            None,
            None,
            Some("/v1/files/1234/records".into()),
            true,
        ),
        route(
            "PUT",
            format!("/v1/files/{file}/records/{record}"),
            Some(json!({ "envelope": "00" })),
            Some(json!({ "envelope": "q" })),
            Some(format!("/v1/files/{file}/records/nope")),
            true,
        ),
        route(
            "PUT",
            format!("/v1/members/{member}/keys/1/{device}"),
            Some(json!({ "wrapped": "00" })),
            Some(json!({ "wrapped": "-" })),
            Some(format!("/v1/members/{member}/keys/x/{device}")),
            false,
        ),
        route(
            "GET",
            "/v1/devices/self/member-keys".into(),
            None,
            None,
            None,
            false,
        ),
        route(
            "PUT",
            format!("/v1/files/{file}/epochs/1/keys/{member}"),
            Some(json!({ "holder_key_version": 1, "wrapped": "00" })),
            Some(json!({ "holder_key_version": 1, "wrapped": "zz" })),
            Some(format!("/v1/files/{file}/epochs/-1/keys/{member}")),
            true,
        ),
        route(
            "GET",
            format!("/v1/files/{file}/epochs/keys"),
            None,
            None,
            Some("/v1/files/%00/epochs/keys".into()),
            true,
        ),
        route(
            "PUT",
            format!("/v1/files/{file}/epochs/1?holders={member}.1"),
            Some(json!({ "link": "00", "wraps": [] })),
            Some(json!({ "link": "0z", "wraps": [] })),
            Some(format!(
                "/v1/files/{file}/epochs/99999999999999999999999?holders={member}.1"
            )),
            true,
        ),
        route(
            "PUT",
            format!("/v1/files/{file}/epochs/1/teams/{member}"),
            Some(json!({ "holder_key_version": 1, "wrapped": "00" })),
            Some(json!({ "holder_key_version": 1, "wrapped": "zz" })),
            Some(format!("/v1/files/{file}/epochs/1/teams/zz")),
            true,
        ),
        route(
            "GET",
            "/v1/teams/keys?since=0".into(),
            None,
            None,
            None,
            false,
        ),
        route(
            "PUT",
            format!("/v1/teams/{member}/keys/1?holders={member}.1"),
            Some(json!({ "wraps": [] })),
            Some(
                json!({ "wraps": [{ "member": member, "member_key_version": 1, "wrapped": "0Z" }] }),
            ),
            Some(format!("/v1/teams/{member}/keys/-1?holders={member}.1")),
            false,
        ),
        route(
            "PUT",
            format!("/v1/teams/{member}/keys/1/{member}"),
            Some(json!({ "member_key_version": 1, "wrapped": "00" })),
            Some(json!({ "member_key_version": 1, "wrapped": "zz" })),
            Some(format!("/v1/teams/{member}/keys/1/x")),
            false,
        ),
        route(
            "GET",
            format!("/v1/files/{file}/epochs/links"),
            None,
            None,
            None,
            true,
        ),
        route(
            "GET",
            format!("/v1/files/{file}/documents/{doc}"),
            None,
            None,
            Some(format!("/v1/files/{file}/documents/{}", &doc[..30])),
            true,
        ),
        route(
            "POST",
            format!("/v1/files/{file}/documents/{doc}/release"),
            None,
            None,
            None,
            true,
        ),
        route(
            "POST",
            format!("/v1/files/{file}/uploads/{doc}"),
            Some(
                json!({ "epoch": 0, "share_sha256": "00".repeat(32), "size": 100_000, "part_size": 65_536 }),
            ),
            None,
            Some(format!("/v1/files/{file}/uploads/{}", &doc[..30])),
            true,
        ),
        route(
            "POST",
            format!("/v1/files/{file}/uploads/{doc}/complete"),
            Some(json!({ "root": "00".repeat(32) })),
            Some(json!({ "root": "zz" })),
            Some(format!("/v1/files/{file}/uploads/zz/complete")),
            true,
        ),
        route(
            "POST",
            "/v1/invites".into(),
            Some(json!({ "invite": "22".repeat(16), "expires_ms": 1 })),
            Some(json!({ "invite": "2", "expires_ms": 1 })),
            None,
            false,
        ),
        route(
            "GET",
            format!("/v1/invites/{}/requests", "33".repeat(16)),
            None,
            None,
            Some("/v1/invites/333/requests".into()),
            false,
        ),
        route(
            "DELETE",
            format!("/v1/invites/{}", "33".repeat(16)),
            None,
            None,
            Some("/v1/invites/zz".into()),
            false,
        ),
        route(
            "POST",
            format!("/v1/audit/opened?room={room}&at=1"),
            None,
            None,
            None,
            false,
        ),
        route(
            "GET",
            "/v1/audit/checkpoint".into(),
            None,
            None,
            None,
            false,
        ),
        route(
            "GET",
            "/v1/audit/entries?from=0".into(),
            None,
            None,
            None,
            false,
        ),
        route(
            "GET",
            "/v1/audit/inclusion?index=0&size=1".into(),
            None,
            None,
            None,
            false,
        ),
        route(
            "GET",
            "/v1/audit/consistency?from=0&to=1".into(),
            None,
            None,
            None,
            false,
        ),
        route("GET", "/v1/ws".into(), None, None, None, false),
    ]
}

fn body_bytes(v: &Option<Value>) -> Vec<u8> {
    v.as_ref()
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default()
}

fn expect(class: &str, r: &Route, got: (u16, Value), status: u16, code: &str) {
    assert!(
        got.0 == status && got.1["code"] == code && got.1["message"].is_string(),
        "{class}: {} {} answered {} {} (expected {status} {code})",
        r.method,
        r.path,
        got.0,
        got.1
    );
}

/// The fuzz target `relay_bodies` in CI: every route's body (valid, and with a bad hex
/// field), the regression inputs under `fuzz/regressions/relay_bodies/` and nine
/// mutations of each body, decoded as every request body type: no panic.
#[test]
fn every_request_body_decoder_survives_the_routes_bodies_and_their_mutations() {
    use rand_chacha::rand_core::SeedableRng;
    let all = routes(
        FileId([1; 16]),
        &"ab".repeat(16),
        MemberId([2; 16]),
        DeviceId([3; 16]),
        RecordId([4; 16]),
        &"cd".repeat(16),
    );
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0xb0d1e5);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for r in &all {
        for body in [&r.body, &r.bad_hex] {
            let b = body_bytes(body);
            if !b.is_empty() {
                inputs.extend(ledgerline_vectors::fuzzing::mutations(&b, &mut rng));
                inputs.push(b);
            }
        }
    }
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/relay_bodies");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            inputs.push(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    assert!(inputs.len() > 200, "{}", inputs.len());
    for input in &inputs {
        ledgerline_relay::api::decode_request_bodies(input);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_bad_input_class() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(
        &dir.path().join("data"),
        &[
            "--max-body-bytes",
            "4096",
            "--rate-per-second",
            "100000",
            "--rate-burst",
            "100000",
        ],
    );
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 11).await;
    let (outsider, outsider_dev) = a.add_member(&http, Role::Member).await;
    let (gone, gone_dev) = a.add_member(&http, Role::Member).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let owner = a.owner_device.clone();
    let room = a.file_room(&http, file).await;
    let revoke = a.event(
        &a.owner_clone(),
        EventKind::MemberRemoved { member: gone.id },
    );
    a.append(&http, &owner, revoke).await;
    let record = RecordId(a.random16());
    let doc = hex::encode(a.random16());
    let stranger = new_device(&mut a.rng, a.id, MemberId([9; 16]), &relay.base);
    let mut routes = routes(file, &room, outsider.id, outsider_dev.id, record, &doc);
    // Its own file: the owner's first valid request erases it for good.
    let spare = FileId(a.random16());
    a.grant(&http, spare, a.owner.id).await;
    routes.push(route(
        "DELETE",
        format!("/v1/files/{spare}"),
        None,
        None,
        Some("/v1/files/zz".into()),
        true,
    ));
    let mut checked = 0;

    for r in &routes {
        let body = body_bytes(&r.body);

        // Authentication classes.
        let mut rb = http.request(
            r.method.parse().unwrap(),
            format!("{}{}", relay.base, r.path),
        );
        rb = rb.body(body.clone());
        let res = rb.send().await.unwrap();
        let got = (
            res.status().as_u16(),
            res.json::<Value>().await.unwrap_or(Value::Null),
        );
        expect("missing signature", r, got, 401, "missing_signature");

        let mut s = owner.sign(r.method, &r.path, &body);
        let sig = s
            .headers
            .iter_mut()
            .find(|(k, _)| *k == "ledgerline-signature")
            .unwrap();
        sig.1 = format!(
            "{}{}",
            if sig.1.starts_with('0') { "1" } else { "0" },
            &sig.1[1..]
        );
        expect(
            "bad signature",
            r,
            owner.send(&http, &s).await,
            401,
            "bad_signature",
        );

        let s = owner.sign_at(r.method, &r.path, &body, now_ms() - 600_000);
        expect(
            "stale",
            r,
            owner.send(&http, &s).await,
            401,
            "stale_request",
        );
        let s = owner.sign_at(r.method, &r.path, &body, now_ms() + 600_000);
        expect(
            "future",
            r,
            owner.send(&http, &s).await,
            401,
            "future_request",
        );

        let mut s = owner.sign(r.method, &r.path, &body);
        s.body = b"{\"other\":true}".to_vec();
        expect(
            "signature over another body",
            r,
            owner.send(&http, &s).await,
            401,
            "body_hash_mismatch",
        );

        let s = owner.sign(r.method, &r.path, &body);
        let _first = owner.send(&http, &s).await;
        if r.path != "/v1/ws" {
            expect(
                "replay",
                r,
                owner.send(&http, &s).await,
                401,
                "replayed_request",
            );
        }

        expect(
            "unknown device",
            r,
            stranger
                .call(&http, r.method, &r.path, r.body.clone())
                .await,
            401,
            "unknown_device",
        );
        expect(
            "revoked device",
            r,
            gone_dev
                .call(&http, r.method, &r.path, r.body.clone())
                .await,
            401,
            "revoked_device",
        );

        let big = vec![b' '; 5000];
        let s = owner.sign(r.method, &r.path, &big);
        expect(
            "oversized body",
            r,
            owner.send(&http, &s).await,
            413,
            "body_too_large",
        );

        if r.file_scoped {
            expect(
                "no file access",
                r,
                outsider_dev
                    .call(&http, r.method, &r.path, r.body.clone())
                    .await,
                403,
                "forbidden",
            );
        }

        // Body classes.
        if r.body.is_some() {
            for (class, raw) in [
                ("bad JSON", b"{".to_vec()),
                ("wrong type", b"[]".to_vec()),
                ("unknown field", {
                    let mut v = r.body.clone().unwrap();
                    v["unexpected"] = json!(1);
                    serde_json::to_vec(&v).unwrap()
                }),
            ] {
                let s = owner.sign(r.method, &r.path, &raw);
                expect(class, r, owner.send(&http, &s).await, 400, "bad_json");
            }
        } else if r.path != "/v1/ws" {
            let s = owner.sign(r.method, &r.path, b"{}");
            expect(
                "unexpected body",
                r,
                owner.send(&http, &s).await,
                400,
                "unexpected_body",
            );
        }
        if let Some(bad) = &r.bad_hex {
            expect(
                "bad hex",
                r,
                owner
                    .call(&http, r.method, &r.path, Some(bad.clone()))
                    .await,
                400,
                "bad_json",
            );
        }
        if let Some(bad) = &r.bad_path {
            expect(
                "bad path id",
                r,
                owner.call(&http, r.method, bad, r.body.clone()).await,
                400,
                "bad_path",
            );
        }
        checked += 1;
    }
    assert_eq!(checked, routes.len());

    // Query strings.
    for path in [
        "/v1/roster?since=-1",
        "/v1/to-device?after=x",
        &format!("/v1/rooms/{room}/messages?limit=1e3"),
        &format!("/v1/files/{file}/records?what=1"),
        "/v1/audit/entries?from=-1",
        "/v1/audit/inclusion?index=0",
        "/v1/audit/consistency?from=x&to=1",
    ] {
        let (status, v) = owner.call(&http, "GET", path, None).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (400, Some("bad_query")),
            "{path}"
        );
    }
    // Semantic refusals.
    let (status, v) = owner
        .call(&http, "POST", "/v1/roster", Some(json!({ "event": "00" })))
        .await;
    assert_eq!((status, v["code"].as_str()), (400, Some("bad_event")));
    let (status, v) = owner
        .call(
            &http,
            "PUT",
            &format!("/v1/files/{file}/records/{record}"),
            Some(json!({ "envelope": "0101" })),
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (400, Some("bad_envelope")));
    let (status, v) = owner
        .call(
            &http,
            "PUT",
            "/v1/devices/self/prekeys",
            Some(json!({ "prekeys": ["00"] })),
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (400, Some("bad_prekey")));
    let (status, v) = owner
        .call(
            &http,
            "POST",
            "/v1/to-device",
            Some(json!({ "messages": [{ "device": stranger.id, "ciphertext": "00" }] })),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("unknown_recipient"))
    );
    let (status, v) = owner
        .call(
            &http,
            "GET",
            &format!("/v1/files/{file}/documents/{doc}"),
            None,
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (404, Some("not_found")));
    // Unauthenticated routes and unknown routes.
    let res = http
        .post(format!("{}/v1/firms", relay.base))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "bad_json");
    let res = http
        .post(format!("{}/v1/firms", relay.base))
        .json(&json!({ "events": ["00"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "bad_event");
    let res = http
        .get(format!("{}/v1/nothing", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "not_found");
    let res = http
        .delete(format!("{}/v1/roster", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "method_not_allowed"
    );

    // Nothing above may have produced a 5xx or a panic.
    let log = relay.log();
    assert!(
        !log.contains("panicked") && !log.contains("status=5"),
        "relay log shows a server error:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_refuse_bad_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &["--max-document-bytes", "1000"]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 12).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let owner = a.owner_device.clone();
    let share = [5u8; 32];
    let share_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(share));
    let doc = hex::encode(a.random16());
    let path = format!("/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}");
    let upload = |body: Vec<u8>, share_header: Option<String>, signed_body: Option<Vec<u8>>| {
        let mut s = owner.sign("PUT", &path, signed_body.as_deref().unwrap_or(&body));
        s.body = body;
        if let Some(h) = share_header {
            s.headers.push(("ledgerline-release-share", h));
        }
        s
    };
    let cases: Vec<(&str, Signed, u16, &str)> = vec![
        (
            "missing share",
            upload(vec![1; 10], None, None),
            400,
            "missing_release_share",
        ),
        (
            "share not matching the signed hash",
            upload(vec![1; 10], Some(hex::encode([6u8; 32])), None),
            400,
            "bad_release_share",
        ),
        (
            "share not hex",
            upload(vec![1; 10], Some("zz".repeat(32)), None),
            400,
            "bad_release_share",
        ),
        (
            "too large",
            upload(vec![1; 1001], Some(hex::encode(share)), None),
            413,
            "body_too_large",
        ),
        (
            "body differs from the signed one",
            upload(vec![1; 10], Some(hex::encode(share)), Some(vec![2; 10])),
            401,
            "body_hash_mismatch",
        ),
    ];
    for (class, s, status, code) in cases {
        let (got, v) = owner.send(&http, &s).await;
        assert_eq!(
            (got, v["code"].as_str()),
            (status, Some(code)),
            "{class}: {v}"
        );
    }
    let (got, v) = owner
        .call(
            &http,
            "PUT",
            &format!("/v1/files/{file}/documents/{doc}?epoch=x&share_sha256={share_hash}"),
            None,
        )
        .await;
    assert_eq!((got, v["code"].as_str()), (400, Some("bad_query")));
    // Nothing was stored by the refused uploads.
    let (got, _) = owner
        .call(
            &http,
            "GET",
            &format!("/v1/files/{file}/documents/{doc}"),
            None,
        )
        .await;
    assert_eq!(got, 404);
    assert_eq!(
        std::fs::read_dir(relay.data.join("blobs/tmp"))
            .unwrap()
            .count(),
        0,
        "no temporary file may remain"
    );
}

#[test]
fn slow_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(
        &dir.path().join("data"),
        &["--header-timeout-ms", "300", "--body-timeout-ms", "300"],
    );
    // Headers that never finish: the connection is closed.
    let mut tcp = std::net::TcpStream::connect(relay.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "slow headers were not cut off"
    );

    // A body that stalls: 408 from the firm-creation route.
    let mut tcp = std::net::TcpStream::connect(relay.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"POST /v1/firms HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"events\":")
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "stalled body: {text}");
    assert!(text.contains("body_timeout"));
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_apply_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(
        &dir.path().join("data"),
        &["--rate-per-second", "1", "--rate-burst", "5"],
    );
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 13).await;
    let (_p, other) = a.add_member(&http, Role::Member).await;
    let owner = a.owner_device.clone();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(owner.call(&http, "GET", "/v1/roster", None).await);
    }
    let limited = statuses
        .iter()
        .filter(|(s, v)| *s == 429 && v["code"] == "rate_limited")
        .count();
    assert!(limited >= 2, "expected the burst to run out: {statuses:?}");
    other.ok(&http, "GET", "/v1/roster", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_go_in_order_resume_after_a_restart_and_check_the_root() {
    use ledgerline_protocol::document::parts_root;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut relay = Relay::start(&data, &["--max-document-bytes", "1000000"]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 13).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let (_m, other) = a.add_member(&http, Role::Member).await;
    a.grant(&http, file, _m.id).await;
    let owner = a.owner_device.clone();
    let share = [5u8; 32];
    let share_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(share));
    let doc = hex::encode(a.random16());
    let part_size = 65_536usize;
    let blob: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let parts: Vec<&[u8]> = blob.chunks(part_size).collect();
    let hashes: Vec<[u8; 32]> = parts
        .iter()
        .map(|p| <sha2::Sha256 as sha2::Digest>::digest(p).into())
        .collect();
    let begin_path = format!("/v1/files/{file}/uploads/{doc}");
    let begin = |dev: Device, base: String, size: usize| {
        let http = http.clone();
        let path = begin_path.clone();
        let share_hash = share_hash.clone();
        async move {
            let body = serde_json::to_vec(&json!({
                "epoch": 0, "share_sha256": share_hash, "size": size, "part_size": part_size
            }))
            .unwrap();
            let mut s = dev.sign("POST", &path, &body);
            s.body = body;
            s.headers
                .push(("ledgerline-release-share", hex::encode(share)));
            send(&http, &base, &s).await
        }
    };
    let put = |dev: &Device, base: &str, n: usize, body: Vec<u8>| {
        let mut s = dev.sign(
            "PUT",
            &format!("/v1/files/{file}/uploads/{doc}/parts/{n}"),
            &body,
        );
        s.body = body;
        let http = http.clone();
        let base = base.to_owned();
        async move { send(&http, &base, &s).await }
    };
    let (st, v) = begin(owner.clone(), relay.base.clone(), blob.len()).await;
    assert_eq!((st, v["received"].as_u64()), (200, Some(0)), "{v}");
    // Beyond the parts in flight, wrong size, wrong device: refused.
    let (st, v) = put(&owner, &relay.base, 2, parts[2].to_vec()).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("part_out_of_order")));
    let (st, v) = put(&owner, &relay.base, 0, parts[0][..100].to_vec()).await;
    assert_eq!((st, v["code"].as_str()), (400, Some("bad_part_size")));
    let (st, _) = put(&other, &relay.base, 0, parts[0].to_vec()).await;
    assert_eq!(st, 403);
    let (st, v) = put(&owner, &relay.base, 0, parts[0].to_vec()).await;
    assert_eq!((st, v["received"].as_u64()), (200, Some(1)), "{v}");
    // A repeated part is acknowledged, not appended twice.
    let (st, v) = put(&owner, &relay.base, 0, parts[0].to_vec()).await;
    assert_eq!((st, v["received"].as_u64()), (200, Some(1)));
    // The relay is killed: the part survives, the upload resumes after it.
    relay.kill();
    relay = Relay::start(&data, &["--max-document-bytes", "1000000"]);
    let owner = Device {
        base: relay.base.clone(),
        ..owner
    };
    let (st, v) = begin(owner.clone(), relay.base.clone(), blob.len()).await;
    assert_eq!((st, v["received"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(v["parts"][0], hex::encode(hashes[0]));
    // Killed again, and this time the part's bytes did not survive intact (as after a
    // power cut before the data reached the disk): the relay notices and asks for it again.
    relay.kill();
    let upload_file = data
        .join("blobs")
        .join("uploads")
        .join(format!("{}-{doc}", a.id.to_hex()));
    let mut bytes = std::fs::read(&upload_file).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&upload_file, bytes).unwrap();
    relay = Relay::start(
        &data,
        &[
            "--max-document-bytes",
            "1000000",
            "--body-timeout-ms",
            "3000",
        ],
    );
    let owner = Device {
        base: relay.base.clone(),
        ..owner
    };
    let (st, v) = begin(owner.clone(), relay.base.clone(), blob.len()).await;
    assert_eq!((st, v["received"].as_u64()), (200, Some(0)), "{v}");
    let (st, v) = put(&owner, &relay.base, 0, parts[0].to_vec()).await;
    assert_eq!((st, v["received"].as_u64()), (200, Some(1)), "{v}");
    // A part whose predecessor never comes waits one body timeout, then is refused.
    let t = Instant::now();
    let (st, v) = put(&owner, &relay.base, 2, parts[2].to_vec()).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("part_out_of_order")));
    assert!(
        t.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    // Other parameters for the same id: refused.
    let (st, v) = begin(owner.clone(), relay.base.clone(), blob.len() + 1).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("upload_mismatch")));
    let complete = |root: [u8; 32]| {
        let http = http.clone();
        let owner = owner.clone();
        let path = format!("/v1/files/{file}/uploads/{doc}/complete");
        async move {
            owner
                .call(
                    &http,
                    "POST",
                    &path,
                    Some(json!({ "root": hex::encode(root) })),
                )
                .await
        }
    };
    let root = parts_root(part_size as u64, &hashes);
    let (st, v) = complete(root).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("upload_incomplete")));
    // Two parts on their way at once: part 2 arrives first and waits for part 1; the same
    // part sent twice meanwhile is refused while the first copy is being handled.
    let early = tokio::spawn(put(&owner, &relay.base, 2, parts[2].to_vec()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twice = tokio::spawn(put(&owner, &relay.base, 2, parts[2].to_vec()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (st, v) = put(&owner, &relay.base, 1, parts[1].to_vec()).await;
    assert_eq!(st, 200, "{v}");
    let mut answers = [early.await.unwrap(), twice.await.unwrap()];
    answers.sort_by_key(|(st, _)| *st);
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert_eq!(answers[0].1["received"].as_u64(), Some(3));
    assert_eq!(
        (answers[1].0, answers[1].1["code"].as_str()),
        (409, Some("part_in_progress"))
    );
    let (st, v) = complete([0; 32]).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("root_mismatch")));
    let (st, v) = complete(root).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["root"], hex::encode(root));
    let (st, v) = begin(owner.clone(), relay.base.clone(), blob.len()).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("document_exists")));
    // The stored blob is exactly the parts, and is served with its root.
    let s = owner.sign("GET", &format!("/v1/files/{file}/documents/{doc}"), b"");
    let mut rb = http.get(format!("{}{}", relay.base, s.path));
    for (k, v) in &s.headers {
        rb = rb.header(*k, v);
    }
    let res = rb.send().await.unwrap();
    assert_eq!(
        res.headers()["ledgerline-content-sha256"].to_str().unwrap(),
        hex::encode(root)
    );
    assert_eq!(res.bytes().await.unwrap().to_vec(), blob);
}
