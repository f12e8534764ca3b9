//! The real relay over real HTTP and WebSocket: the happy path for two firms, isolation,
//! revocation, restart persistence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use futures_util::StreamExt;
use ledgerline_protocol::audit::AuditLeaf;
use ledgerline_protocol::document::{document_key, encrypt_document, DocumentContext};
use ledgerline_protocol::ids::{DeviceId, DocumentId, FileId, RecordId};
use ledgerline_protocol::keys::{EpochKey, MemberKey, ReleaseShare};
use ledgerline_protocol::prekeys::{KeyKind, SignedPrekey};
use ledgerline_protocol::record::{seal_record, RecordHeader};
use ledgerline_protocol::roster::{EventKind, Role};
use ledgerline_protocol::wrap::{
    wrap_epoch_key, wrap_member_key, EpochKeyContext, Holder, MemberKeyContext,
};
use rand_chacha::rand_core::SeedableRng;
use serde_json::json;
use sha2::Digest;

/// What one firm's full run leaves behind, for the isolation checks.
struct FirmRun {
    firm: ledgerline_protocol::ids::FirmId,
    owner_dev: Device,
    room: String,
    file: FileId,
    doc: DocumentId,
}

/// The whole happy path for one firm: roster, prekeys, to-device, a file room with pushes
/// and pages, records, wrapped keys, a document with its release share.
async fn full_path(relay: &Relay, http: &reqwest::Client, seed: u64) -> FirmRun {
    let http = http.clone();
    let mut a = Firm::create(&http, &relay.base, seed).await;
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let owner_dev = a.owner_device.clone();
    let file = FileId(a.random16());
    a.grant(&http, file, anna.id).await;
    a.grant(&http, file, a.owner.id).await;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);

    // Roster sync.
    let roster = anna_dev.ok(&http, "GET", "/v1/roster?since=0", None).await;
    assert_eq!(
        roster["events"].as_array().unwrap().len() as u64,
        a.next_seq
    );

    // Anna listens on a WebSocket, and so does the owner.
    let mut ws = websocket(&anna_dev, relay.addr).await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "hello");
    let mut owner_ws = websocket(&owner_dev, relay.addr).await;
    assert_eq!(next_event(&mut owner_ws).await.unwrap()["type"], "hello");

    // Prekeys: publish, claim once each, then the fallback.
    let keys: Vec<String> = (1..=2u32)
        .map(|i| {
            hex::encode(
                SignedPrekey::sign(
                    a.id,
                    anna_dev.id,
                    KeyKind::OneTime,
                    i,
                    [i as u8; 32],
                    &anna_dev.key,
                )
                .to_bytes(),
            )
        })
        .chain([hex::encode(
            SignedPrekey::sign(
                a.id,
                anna_dev.id,
                KeyKind::Fallback,
                9,
                [9; 32],
                &anna_dev.key,
            )
            .to_bytes(),
        )])
        .collect();
    let v = anna_dev
        .ok(
            &http,
            "PUT",
            "/v1/devices/self/prekeys",
            Some(json!({ "prekeys": keys })),
        )
        .await;
    assert_eq!(v["one_time_keys"], 2);
    // Her first keys tell the others she can be reached.
    let ready = next_event(&mut owner_ws).await.unwrap();
    assert_eq!(ready["type"], "device_ready");
    assert_eq!(ready["device"], json!(anna_dev.id));
    drop(owner_ws);
    for expected in [Some(1u32), Some(2), None, None] {
        let v = owner_dev
            .ok(
                &http,
                "POST",
                "/v1/prekeys/claim",
                Some(json!({ "devices": [anna_dev.id] })),
            )
            .await;
        let k = SignedPrekey::from_bytes(
            &hex::decode(v["prekeys"][anna_dev.id.to_hex()].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        k.verify(a.id, anna_dev.id, &anna_dev.key.verifying_key())
            .unwrap();
        match expected {
            Some(id) => assert_eq!((k.kind, k.key_id), (KeyKind::OneTime, id)),
            None => assert_eq!(k.kind, KeyKind::Fallback),
        }
    }

    // To-device: pushed, listed, acknowledged.
    let v = owner_dev
        .ok(
            &http,
            "POST",
            "/v1/to-device",
            Some(json!({ "messages": [{ "device": anna_dev.id, "ciphertext": "0a0b0c" }] })),
        )
        .await;
    let id = v["ids"][0].as_u64().unwrap();
    let ev = next_event(&mut ws).await.unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["ciphertext"].as_str(),
            ev["id"].as_u64()
        ),
        (Some("to_device"), Some("0a0b0c"), Some(id))
    );
    let v = anna_dev
        .ok(&http, "GET", "/v1/to-device?after=0", None)
        .await;
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    anna_dev
        .ok(
            &http,
            "POST",
            "/v1/to-device/ack",
            Some(json!({ "up_to": id })),
        )
        .await;
    let v = anna_dev
        .ok(&http, "GET", "/v1/to-device?after=0", None)
        .await;
    assert!(v["messages"].as_array().unwrap().is_empty());

    // A room following file access; messages pushed and paginated.
    let room = hex::encode(a.random16());
    owner_dev
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "file": file })),
        )
        .await;
    let info = anna_dev
        .ok(&http, "GET", &format!("/v1/rooms/{room}"), None)
        .await;
    assert_eq!(info["members"].as_array().unwrap().len(), 2);
    // A session tag, if stated, is 32 lowercase hex digits.
    for bad in ["zz", "ABCDEF0123456789ABCDEF0123456789", "0123"] {
        let (status, v) = owner_dev
            .call(
                &http,
                "POST",
                &format!("/v1/rooms/{room}/messages?session={bad}"),
                Some(json!({ "ciphertext": "ff00" })),
            )
            .await;
        assert_eq!((status, v["code"].as_str()), (400, Some("bad_session")));
    }
    for i in 1..=3u64 {
        let tag = if i == 2 {
            "?session=0123456789abcdef0123456789abcdef"
        } else {
            ""
        };
        let v = owner_dev
            .ok(
                &http,
                "POST",
                &format!("/v1/rooms/{room}/messages{tag}"),
                Some(json!({ "ciphertext": format!("ff{i:02x}") })),
            )
            .await;
        assert_eq!(v["seq"], i);
        let ev = next_event(&mut ws).await.unwrap();
        assert_eq!(
            (ev["type"].as_str(), ev["seq"].as_u64()),
            (Some("room_message"), Some(i))
        );
    }
    let v = anna_dev
        .ok(
            &http,
            "GET",
            &format!("/v1/rooms/{room}/messages?from=2&limit=5"),
            None,
        )
        .await;
    assert_eq!(
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![2, 3]
    );

    // Records: versioned, conflict on stale version, listed by cursor.
    let epoch_key = EpochKey::generate(&mut rng);
    let record = RecordId(a.random16());
    let header = RecordHeader {
        firm: a.id,
        file,
        record,
        epoch: 0,
        version: 1,
        author: anna_dev.id,
    };
    let env = seal_record(&header, &epoch_key, &anna_dev.key, b"note", &mut rng).unwrap();
    let path = format!("/v1/files/{file}/records/{record}");
    anna_dev
        .ok(
            &http,
            "PUT",
            &path,
            Some(json!({ "envelope": hex::encode(env.to_bytes()) })),
        )
        .await;
    let (status, v) = anna_dev
        .call(
            &http,
            "PUT",
            &path,
            Some(json!({ "envelope": hex::encode(env.to_bytes()) })),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("version_conflict"))
    );
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "record");
    let v = owner_dev
        .ok(
            &http,
            "GET",
            &format!("/v1/files/{file}/records?since=0"),
            None,
        )
        .await;
    assert_eq!(v["records"][0]["envelope"], hex::encode(env.to_bytes()));

    // Wrapped keys.
    let mk = MemberKey::generate(&mut rng);
    let mctx = MemberKeyContext {
        firm: a.id,
        member: anna.id,
        device: anna_dev.id,
        key_version: 1,
    };
    let wrapped = wrap_member_key(&mk, &anna_dev.wrap.public_key(), &mctx, &mut rng);
    owner_dev
        .ok(
            &http,
            "PUT",
            &format!("/v1/members/{}/keys/1/{}", anna.id, anna_dev.id),
            Some(json!({ "wrapped": hex::encode(&wrapped) })),
        )
        .await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "member_key");
    let v = anna_dev
        .ok(&http, "GET", "/v1/devices/self/member-keys", None)
        .await;
    assert_eq!(v["wraps"][0]["wrapped"], hex::encode(&wrapped));
    let ectx = EpochKeyContext {
        firm: a.id,
        file,
        epoch: 0,
        holder: Holder::Member(anna.id),
        holder_key_version: 1,
    };
    let ew = wrap_epoch_key(&epoch_key, &mk, &ectx, &mut rng);
    owner_dev
        .ok(
            &http,
            "PUT",
            &format!("/v1/files/{file}/epochs/0/keys/{}", anna.id),
            Some(json!({ "holder_key_version": 1, "wrapped": hex::encode(&ew) })),
        )
        .await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "epoch_key");
    let v = anna_dev
        .ok(&http, "GET", &format!("/v1/files/{file}/epochs/keys"), None)
        .await;
    assert_eq!(v["wraps"][0]["wrapped"], hex::encode(&ew));

    // Documents: streaming upload, download, release share with an audit entry.
    let doc = DocumentId(a.random16());
    let share = ReleaseShare::generate(&mut rng);
    let dk = document_key(
        &epoch_key,
        &share,
        &DocumentContext {
            firm: a.id,
            file,
            document: doc,
            epoch: 0,
        },
    );
    let blob = encrypt_document(&dk, &vec![7u8; 200_000], &mut rng);
    let share_hash = hex::encode(sha2::Sha256::digest(share.expose()));
    let up_path = format!("/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}");
    let mut s = anna_dev.sign("PUT", &up_path, &blob);
    s.headers
        .push(("ledgerline-release-share", hex::encode(share.expose())));
    let (status, v) = anna_dev.send(&http, &s).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "document");
    let dl = anna_dev.sign("GET", &format!("/v1/files/{file}/documents/{doc}"), b"");
    let mut rb = http.get(format!("{}{}", relay.base, dl.path));
    for (k, v) in &dl.headers {
        rb = rb.header(*k, v);
    }
    let body = rb.send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), blob.as_slice());
    let v = owner_dev
        .ok(
            &http,
            "POST",
            &format!("/v1/files/{file}/documents/{doc}/release"),
            None,
        )
        .await;
    assert_eq!(v["release_share"], hex::encode(share.expose()));
    // Every change and every read that delivered content is in the log, each holding the
    // request its device signed; the release is the latest entry.
    let index = v["audit_index"].as_u64().unwrap();
    let log = owner_dev
        .ok(&http, "GET", "/v1/audit/entries?from=0&limit=500", None)
        .await;
    let entries: Vec<AuditLeaf> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| AuditLeaf::from_bytes(&hex::decode(e.as_str().unwrap()).unwrap()).unwrap())
        .collect();
    assert_eq!(entries.len() as u64, index + 1);
    let said: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            let path = e.request.head.path.split('?').next().unwrap().to_owned();
            (e.request.head.method.clone(), path)
        })
        .collect();
    for (method, path) in [
        ("POST", "/v1/roster".to_owned()),
        ("POST", "/v1/rooms".to_owned()),
        ("POST", format!("/v1/rooms/{room}/messages")),
        ("GET", format!("/v1/rooms/{room}/messages")),
        ("PUT", format!("/v1/files/{file}/records/{record}")),
        ("GET", format!("/v1/files/{file}/records")),
        ("GET", format!("/v1/files/{file}/epochs/keys")),
        ("PUT", format!("/v1/files/{file}/documents/{doc}")),
        ("GET", format!("/v1/files/{file}/documents/{doc}")),
        ("POST", format!("/v1/files/{file}/documents/{doc}/release")),
    ] {
        assert!(
            said.contains(&(method.to_owned(), path.clone())),
            "{method} {path} is not in the log: {said:?}"
        );
    }
    assert_eq!(
        said.last().unwrap(),
        &(
            "POST".to_owned(),
            format!("/v1/files/{file}/documents/{doc}/release")
        )
    );

    drop(ws);
    FirmRun {
        firm: a.id,
        owner_dev,
        room,
        file,
        doc,
    }
}

/// Nothing of `theirs` is reachable from `mine`.
async fn assert_isolated(http: &reqwest::Client, mine: &FirmRun, theirs: &FirmRun) {
    let d = &mine.owner_dev;
    let (status, v) = d
        .call(http, "GET", &format!("/v1/rooms/{}", theirs.room), None)
        .await;
    assert_eq!((status, v["code"].as_str()), (404, Some("not_found")));
    let (status, _) = d
        .call(
            http,
            "GET",
            &format!("/v1/files/{}/records?since=0", theirs.file),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = d
        .call(
            http,
            "GET",
            &format!("/v1/files/{}/documents/{}", theirs.file, theirs.doc),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let mut impostor = d.clone();
    impostor.firm = theirs.firm;
    let (status, v) = impostor.call(http, "GET", "/v1/roster", None).await;
    assert_eq!((status, v["code"].as_str()), (401, Some("unknown_device")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_for_two_firms() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    // Two firms run the whole path at the same time on one relay…
    let (a, b) = tokio::join!(full_path(&relay, &http, 1), full_path(&relay, &http, 2));
    // …and neither can reach anything of the other.
    assert_isolated(&http, &a, &b).await;
    assert_isolated(&http, &b, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_takes_effect_at_once_also_on_open_websockets() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 3).await;
    let (anna, laptop) = a.add_member(&http, Role::Member).await;
    let phone = a.add_device(&http, &anna).await;
    let owner_dev = a.owner_device.clone();
    owner_dev
        .ok(
            &http,
            "POST",
            "/v1/to-device",
            Some(json!({ "messages": [{ "device": laptop.id, "ciphertext": "01" }] })),
        )
        .await;
    let mut ws = websocket(&laptop, relay.addr).await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "hello");

    let revoke = a.event(
        &a.owner_clone(),
        EventKind::DeviceRevoked { device: laptop.id },
    );
    a.append(&http, &owner_dev, revoke).await;
    // The socket is closed by the relay...
    let mut closed = false;
    while let Ok(Some(msg)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await
    {
        if matches!(
            msg,
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)
        ) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the revoked device's WebSocket must be closed");
    // ...every request is refused...
    let (status, v) = laptop.call(&http, "GET", "/v1/to-device", None).await;
    assert_eq!((status, v["code"].as_str()), (401, Some("revoked_device")));
    // ...and its queue is gone, while the other device works.
    phone.ok(&http, "GET", "/v1/roster", None).await;
    let remove = a.event(
        &a.owner_clone(),
        EventKind::MemberRemoved { member: anna.id },
    );
    a.append(&http, &owner_dev, remove).await;
    let (status, _) = phone.call(&http, "GET", "/v1/roster", None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_replay_window_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut relay = Relay::start(&data, &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 4).await;
    let (_anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let owner_dev = a.owner_device.clone();
    let room = hex::encode(a.random16());
    owner_dev
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": [a.owner.id, anna_dev.member] })),
        )
        .await;
    let send = owner_dev.sign(
        "POST",
        &format!("/v1/rooms/{room}/messages"),
        br#"{"ciphertext":"abcd"}"#,
    );
    let (status, _) = owner_dev.send(&http, &send).await;
    assert_eq!(status, 200);
    assert_eq!(
        relay.stop(),
        Some(0),
        "graceful stop exits 0; log:\n{}",
        relay.log()
    );

    let relay = Relay::start(&data, &[]);
    let mut owner_dev = owner_dev;
    owner_dev.base = relay.base.clone();
    let mut anna_dev = anna_dev;
    anna_dev.base = relay.base.clone();
    let v = anna_dev
        .ok(&http, "GET", &format!("/v1/rooms/{room}/messages"), None)
        .await;
    assert_eq!(v["messages"][0]["ciphertext"], "abcd");
    // Members of an internal room can change; the removed member loses access.
    owner_dev
        .ok(
            &http,
            "PUT",
            &format!("/v1/rooms/{room}/members"),
            Some(json!({ "members": [a.owner.id] })),
        )
        .await;
    let (status, _) = anna_dev
        .call(&http, "GET", &format!("/v1/rooms/{room}/messages"), None)
        .await;
    assert_eq!(status, 403);
    // The same signed request again, after the restart: still a replay.
    let (status, v) = send_to(&http, &relay.base, &send).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (401, Some("replayed_request"))
    );
    let v = anna_dev.ok(&http, "GET", "/v1/roster", None).await;
    assert_eq!(v["events"].as_array().unwrap().len() as u64, a.next_seq);
}

async fn send_to(http: &reqwest::Client, base: &str, s: &Signed) -> (u16, serde_json::Value) {
    common::send(http, base, s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_mailbox_carries_sealed_join_requests_to_the_admin_only() {
    use ledgerline_protocol::invite::Invite;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 5).await;
    let owner = a.owner_device.clone();
    let (_m, member_dev) = a.add_member(&http, Role::Member).await;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
    let invite = Invite::generate(&a.owner.master.verifying_key(), &mut rng);
    let id = hex::encode(invite.id());
    let expires = now_ms() + 86_400_000;
    // A member may open a mailbox too (to link their own new device); who is admitted is
    // the roster's rule.
    let own = hex::encode([0x77u8; 16]);
    member_dev
        .ok(
            &http,
            "POST",
            "/v1/invites",
            Some(json!({ "invite": own, "expires_ms": expires })),
        )
        .await;
    member_dev
        .ok(&http, "GET", &format!("/v1/invites/{own}/requests"), None)
        .await;
    owner
        .ok(
            &http,
            "POST",
            "/v1/invites",
            Some(json!({ "invite": id, "expires_ms": expires })),
        )
        .await;

    // The joiner learns the firm from the invite id (unauthenticated).
    let v: serde_json::Value = http
        .get(format!("{}/v1/invites/{id}", relay.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["firm"], a.id.to_hex());
    let res = http
        .get(format!(
            "{}/v1/invites/{}",
            relay.base,
            hex::encode([7u8; 16])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);

    // The joiner only has the code.
    let parsed = Invite::parse(&invite.code()).unwrap();
    let sealed = parsed.seal_request(b"{\"name\":\"Anna Nowak\"}", &mut rng);
    let post = |body: serde_json::Value, id: String| {
        let http = http.clone();
        let base = relay.base.clone();
        async move {
            let res = http
                .post(format!("{base}/v1/invites/{id}/requests"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, _) = post(json!({ "request": hex::encode(&sealed) }), id.clone()).await;
    assert_eq!(status, 201);
    let (status, v) = post(json!({ "request": "00" }), hex::encode([7u8; 16])).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (404, Some("not_found")),
        "unknown invitations take nothing"
    );
    let (status, v) = post(json!({ "request": "00".repeat(20_000) }), id.clone()).await;
    assert_eq!((status, v["code"].as_str()), (413, Some("body_too_large")));
    for _ in 0..9 {
        assert_eq!(post(json!({ "request": "0102" }), id.clone()).await.0, 201);
    }
    let (status, v) = post(json!({ "request": "0102" }), id.clone()).await;
    assert_eq!((status, v["code"].as_str()), (429, Some("invite_full")));

    // Only the creator or an admin reads them, and only the invitation opens them.
    let (status, _) = member_dev
        .call(&http, "GET", &format!("/v1/invites/{id}/requests"), None)
        .await;
    assert_eq!(status, 403);
    let v = owner
        .ok(&http, "GET", &format!("/v1/invites/{id}/requests"), None)
        .await;
    let first = hex::decode(v["requests"][0]["request"].as_str().unwrap()).unwrap();
    assert_eq!(
        &invite.open_request(&first).unwrap()[..],
        b"{\"name\":\"Anna Nowak\"}"
    );
    owner
        .ok(&http, "DELETE", &format!("/v1/invites/{id}"), None)
        .await;
    let (status, _) = post(json!({ "request": "0102" }), id.clone()).await;
    assert_eq!(status, 404, "a closed invitation takes nothing");
    // The relay never saw the secret, the code or the name.
    drop(relay);
    let db = std::fs::read(dir.path().join("data/relay.sqlite3")).unwrap();
    for needle in [
        &invite.secret()[..],
        invite.code().as_bytes(),
        b"Anna Nowak",
    ] {
        assert!(!db.windows(needle.len()).any(|w| w == needle));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_keys_go_to_the_members_devices_and_to_admins_only() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 11).await;
    let owner = a.owner_device.clone();
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let (_bartek, bartek_dev) = a.add_member(&http, Role::Member).await;
    let put = |by: Device, to: DeviceId| {
        let http = http.clone();
        let path = format!("/v1/members/{}/keys/1/{to}", anna.id);
        async move {
            by.call(
                &http,
                "PUT",
                &path,
                Some(json!({ "wrapped": "ab".repeat(81) })),
            )
            .await
        }
    };
    // Escrow: Anna's key may be wrapped for an admin's device, by an admin or by Anna.
    assert_eq!(put(owner.clone(), owner.id).await.0, 204);
    assert_eq!(put(anna_dev.clone(), owner.id).await.0, 204);
    assert_eq!(put(anna_dev.clone(), anna_dev.id).await.0, 204);
    // Never for another member's device, whoever asks.
    for by in [owner.clone(), anna_dev.clone()] {
        let (status, v) = put(by, bartek_dev.id).await;
        assert_eq!((status, v["code"].as_str()), (400, Some("unknown_device")));
    }
    // And Bartek may not store Anna's key at all.
    let (status, _) = put(bartek_dev.clone(), bartek_dev.id).await;
    assert_eq!(status, 403);
    let v = owner
        .ok(&http, "GET", "/v1/devices/self/member-keys", None)
        .await;
    assert_eq!(v["wraps"][0]["member"], json!(anna.id));
    let v = bartek_dev
        .ok(&http, "GET", "/v1/devices/self/member-keys", None)
        .await;
    assert!(v["wraps"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_epoch_lands_whole_for_exactly_the_files_members() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 11).await;
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let (bob, bob_dev) = a.add_member(&http, Role::Member).await;
    let owner_dev = a.owner_device.clone();
    let file = FileId(a.random16());
    a.grant(&http, file, anna.id).await;
    a.grant(&http, file, bob.id).await;
    let wrap = hex::encode([5u8; 73]);
    for m in [anna.id, bob.id] {
        owner_dev
            .ok(
                &http,
                "PUT",
                &format!("/v1/files/{file}/epochs/0/keys/{m}"),
                Some(json!({ "holder_key_version": 1, "wrapped": wrap })),
            )
            .await;
    }
    let mut members = [anna.id, bob.id];
    members.sort();
    let holders = |ms: &[ledgerline_protocol::ids::MemberId]| {
        ms.iter()
            .map(|m| format!("{m}.2"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let body = |ms: &[ledgerline_protocol::ids::MemberId]| {
        json!({
            "link": hex::encode([6u8; 73]),
            "wraps": ms.iter().map(|m| json!({ "member": m.to_string(), "holder_key_version": 2, "wrapped": hex::encode([7u8; 73]) })).collect::<Vec<_>>(),
        })
    };
    let start = |epoch: u64, ms: &[ledgerline_protocol::ids::MemberId]| {
        (
            format!("/v1/files/{file}/epochs/{epoch}?holders={}", holders(ms)),
            body(ms),
        )
    };

    // Bob leaves the file: a new epoch must name exactly Anna.
    let remove = a.event(
        &a.owner_clone(),
        EventKind::FileAccessRemoved {
            file,
            member: bob.id,
        },
    );
    a.append(&http, &owner_dev, remove).await;
    // Until the new epoch exists, the file takes no writes under the exposed key.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
    let record = RecordId(a.random16());
    let note = |epoch, version, rng: &mut rand_chacha::ChaCha20Rng| {
        let header = RecordHeader {
            firm: a.id,
            file,
            record,
            epoch,
            version,
            author: anna_dev.id,
        };
        let env = seal_record(&header, &EpochKey::generate(rng), &anna_dev.key, b"n", rng).unwrap();
        json!({ "envelope": hex::encode(env.to_bytes()) })
    };
    let record_path = format!("/v1/files/{file}/records/{record}");
    let (status, v) = anna_dev
        .call(&http, "PUT", &record_path, Some(note(0, 1, &mut rng)))
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("rotation_pending"))
    );
    let (path, b) = start(1, &members);
    let (status, v) = owner_dev.call(&http, "PUT", &path, Some(b)).await;
    assert_eq!((status, v["code"].as_str()), (409, Some("holders_changed")));
    // Path and body must agree.
    let (path, _) = start(1, &[anna.id]);
    let (status, v) = owner_dev
        .call(&http, "PUT", &path, Some(body(&[bob.id])))
        .await;
    assert_eq!((status, v["code"].as_str()), (400, Some("bad_holders")));
    // Epochs do not skip.
    let (path, b) = start(2, &[anna.id]);
    let (status, v) = owner_dev.call(&http, "PUT", &path, Some(b)).await;
    assert_eq!((status, v["code"].as_str()), (409, Some("epoch_not_next")));
    // Bob, gone, cannot; the admin (not a member of the file) can, once.
    let (path, b) = start(1, &[anna.id]);
    let (status, _) = bob_dev.call(&http, "PUT", &path, Some(b.clone())).await;
    assert_eq!(status, 403);
    let (status, _) = owner_dev.call(&http, "PUT", &path, Some(b.clone())).await;
    assert_eq!(status, 204);
    let (status, v) = owner_dev.call(&http, "PUT", &path, Some(b)).await;
    assert_eq!((status, v["code"].as_str()), (409, Some("epoch_exists")));
    // Now writes go under epoch 1, never 0.
    let (status, v) = anna_dev
        .call(&http, "PUT", &record_path, Some(note(0, 1, &mut rng)))
        .await;
    assert_eq!((status, v["code"].as_str()), (409, Some("stale_epoch")));
    anna_dev
        .ok(&http, "PUT", &record_path, Some(note(1, 1, &mut rng)))
        .await;

    // Anna gets the new wrap and the link; Bob's wraps end at epoch 0.
    let v = anna_dev
        .ok(&http, "GET", &format!("/v1/files/{file}/epochs/keys"), None)
        .await;
    let epochs: Vec<u64> = v["wraps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![0, 1]);
    // Escrow: an admin reads any holder's wraps; a member only their own.
    let v = owner_dev
        .ok(
            &http,
            "GET",
            &format!("/v1/files/{file}/epochs/keys?holder={}", bob.id),
            None,
        )
        .await;
    assert_eq!(v["wraps"].as_array().unwrap().len(), 1);
    let (status, _) = anna_dev
        .call(
            &http,
            "GET",
            &format!("/v1/files/{file}/epochs/keys?holder={}", bob.id),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let v = owner_dev
        .ok(
            &http,
            "GET",
            &format!("/v1/files/{file}/epochs/links"),
            None,
        )
        .await;
    assert_eq!(v["links"][0]["epoch"], 1);
    // The last holder leaves too: the file still gets its new epoch, wrapped for nobody.
    let remove = a.event(
        &a.owner_clone(),
        EventKind::FileAccessRemoved {
            file,
            member: anna.id,
        },
    );
    a.append(&http, &owner_dev, remove).await;
    let (path, b) = start(2, &[]);
    assert!(path.ends_with("?holders="), "{path}");
    let (status, v) = owner_dev.call(&http, "PUT", &path, Some(b)).await;
    assert_eq!(status, 204, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absence_cover_lets_the_colleague_in_for_its_window_only() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 17).await;
    let (anna, _) = a.add_member(&http, Role::Member).await;
    let (bob, bob_dev) = a.add_member(&http, Role::Member).await;
    let owner_dev = a.owner_device.clone();
    let file = FileId(a.random16());
    a.grant(&http, file, anna.id).await;
    let wrap = json!({ "holder_key_version": 1, "wrapped": hex::encode([5u8; 73]) });
    owner_dev
        .ok(
            &http,
            "PUT",
            &format!("/v1/files/{file}/epochs/0/keys/{}", anna.id),
            Some(wrap.clone()),
        )
        .await;
    let keys = format!("/v1/files/{file}/epochs/keys");
    let (status, _) = bob_dev.call(&http, "GET", &keys, None).await;
    assert_eq!(status, 403, "Bob has no access before the cover");
    // Epoch keys go to Bob only while a cover holds; not before it is granted.
    let bob_key = format!("/v1/files/{file}/epochs/0/keys/{}", bob.id);
    let (status, _) = owner_dev
        .call(&http, "PUT", &bob_key, Some(wrap.clone()))
        .await;
    assert_eq!(status, 403);

    let from_ms = now_ms() + 2_000;
    let until_ms = from_ms + 2_000;
    let cover = a.event(
        &a.owner_clone(),
        EventKind::CoverGranted {
            absent: anna.id,
            colleague: bob.id,
            from_ms,
            until_ms,
        },
    );
    let cover_seq = cover.body.seq;
    a.append(&http, &owner_dev, cover).await;
    // Granted, not started: his key can be wrapped now, but the relay withholds it.
    owner_dev
        .ok(&http, "PUT", &bob_key, Some(wrap.clone()))
        .await;
    let (status, _) = bob_dev.call(&http, "GET", &keys, None).await;
    assert_eq!(status, 403, "refused before the start");
    // A new epoch must already name him: his keys are ready when the cover starts.
    let mut holders = vec![anna.id, bob.id];
    holders.sort();
    let start_epoch = |ms: &[ledgerline_protocol::ids::MemberId]| {
        (
            format!(
                "/v1/files/{file}/epochs/1?holders={}",
                ms.iter()
                    .map(|m| format!("{m}.1"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            json!({
                "link": hex::encode([6u8; 73]),
                "wraps": ms.iter().map(|m| json!({ "member": m.to_string(), "holder_key_version": 1, "wrapped": hex::encode([7u8; 73]) })).collect::<Vec<_>>(),
            }),
        )
    };
    let (path, body) = start_epoch(&[anna.id]);
    let (status, v) = owner_dev.call(&http, "PUT", &path, Some(body)).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("holders_changed")),
        "{v}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(
        from_ms.saturating_sub(now_ms()) + 50,
    ))
    .await;
    let (status, v) = bob_dev.call(&http, "GET", &keys, None).await;
    assert_eq!(status, 200, "in the window: {v}");
    assert_eq!(v["wraps"].as_array().map(Vec::len), Some(1), "{v}");

    // Expiry needs no event: past `until` the relay refuses him by itself…
    tokio::time::sleep(std::time::Duration::from_millis(
        until_ms.saturating_sub(now_ms()) + 50,
    ))
    .await;
    let (status, _) = bob_dev.call(&http, "GET", &keys, None).await;
    assert_eq!(status, 403, "refused from the expiry");
    // …and no new epoch may be wrapped for him any more.
    let (path, body) = start_epoch(&holders);
    let (status, v) = owner_dev.call(&http, "PUT", &path, Some(body)).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("holders_changed")),
        "{v}"
    );
    // The admin's CoverEnded marks the file for rotation; the new epoch is Anna's alone.
    let end = a.event(&a.owner_clone(), EventKind::CoverEnded { cover: cover_seq });
    a.append(&http, &owner_dev, end).await;
    let (path, body) = start_epoch(&[anna.id]);
    owner_dev.ok(&http, "PUT", &path, Some(body)).await;
    let again = a.event(&a.owner_clone(), EventKind::CoverEnded { cover: cover_seq });
    let (status, v) = owner_dev
        .call(
            &http,
            "POST",
            "/v1/roster",
            Some(json!({ "event": hex::encode(again.to_bytes()) })),
        )
        .await;
    assert_eq!(status, 400, "a cover ends once: {v}");
    assert!(v.to_string().contains("(Duplicate)"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_file_is_gone_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut relay = Relay::start(&data, &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 19).await;
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let owner_dev = a.owner_device.clone();
    let file = FileId(a.random16());
    a.grant(&http, file, anna.id).await;
    let wrap = json!({ "holder_key_version": 1, "wrapped": hex::encode([5u8; 73]) });
    owner_dev
        .ok(
            &http,
            "PUT",
            &format!("/v1/files/{file}/epochs/0/keys/{}", anna.id),
            Some(wrap),
        )
        .await;
    let keys = format!("/v1/files/{file}/epochs/keys");
    anna_dev.ok(&http, "GET", &keys, None).await;
    let erase = format!("/v1/files/{file}");
    let (status, _) = anna_dev.call(&http, "DELETE", &erase, None).await;
    assert_eq!(status, 403, "members do not erase");
    let (status, _) = owner_dev
        .call(
            &http,
            "DELETE",
            &format!("/v1/files/{}", FileId([0x77; 16])),
            None,
        )
        .await;
    assert_eq!(status, 404, "a file nobody was ever granted");
    let (status, v) = owner_dev.call(&http, "DELETE", &erase, None).await;
    assert_eq!(status, 204, "{v}");
    for (dev, method, path) in [
        (&anna_dev, "GET", keys.clone()),
        (
            &anna_dev,
            "GET",
            format!("/v1/files/{file}/records?since=0"),
        ),
        (&owner_dev, "GET", keys.clone()),
        (&owner_dev, "DELETE", erase.clone()),
    ] {
        let (status, v) = dev.call(&http, method, &path, None).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (410, Some("erased")),
            "{method} {path}: {v}"
        );
    }
    // For good: also after a restart.
    relay.stop();
    let relay = Relay::start(&data, &[]);
    let mut anna_dev = anna_dev;
    anna_dev.base = relay.base.clone();
    let (status, _) = anna_dev.call(&http, "GET", &keys, None).await;
    assert_eq!(status, 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_holds_its_files_under_a_team_key_rotated_when_someone_leaves() {
    use ledgerline_protocol::ids::TeamId;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 21).await;
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let (bob, bob_dev) = a.add_member(&http, Role::Member).await;
    let (_eve, eve_dev) = a.add_member(&http, Role::Member).await;
    let owner = a.owner_clone();
    let owner_dev = a.owner_device.clone();
    let team = TeamId(a.random16());
    let file = FileId(a.random16());
    let wrap = |b: u8| hex::encode([b; 73]);
    let mut holders = vec![owner.id, anna.id, bob.id];
    holders.sort();
    let version_path = |v: u32, ms: &[ledgerline_protocol::ids::MemberId]| {
        let list: Vec<String> = ms.iter().map(|m| format!("{m}.1")).collect();
        format!("/v1/teams/{team}/keys/{v}?holders={}", list.join(","))
    };
    let version_body = |ms: &[ledgerline_protocol::ids::MemberId], b: u8| json!({ "wraps": ms.iter().map(|m| json!({ "member": m.to_string(), "member_key_version": 1, "wrapped": wrap(b) })).collect::<Vec<_>>() });
    // No team in the roster yet: nothing to key.
    let (status, _) = owner_dev
        .call(
            &http,
            "PUT",
            &version_path(1, &[owner.id]),
            Some(version_body(&[owner.id], 1)),
        )
        .await;
    assert_eq!(status, 404);
    let name = ledgerline_protocol::roster::team_name_commitment(&team, &[1; 16], "Płace");
    let e = a.event(&owner, EventKind::TeamCreated { team, name });
    a.append(&http, &owner_dev, e).await;
    for member in [anna.id, bob.id] {
        let e = a.event(&owner, EventKind::TeamMemberAdded { team, member });
        a.append(&http, &owner_dev, e).await;
    }
    let e = a.event(&owner, EventKind::FileTeamGranted { file, team });
    a.append(&http, &owner_dev, e).await;
    // Version 1 for exactly the members and the admin; a member may not key a team.
    let (status, v) = owner_dev
        .call(
            &http,
            "PUT",
            &version_path(1, &[owner.id]),
            Some(version_body(&[owner.id], 1)),
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (409, Some("holders_changed")));
    let (status, _) = anna_dev
        .call(
            &http,
            "PUT",
            &version_path(1, &holders),
            Some(version_body(&holders, 1)),
        )
        .await;
    assert_eq!(status, 403);
    owner_dev
        .ok(
            &http,
            "PUT",
            &version_path(1, &holders),
            Some(version_body(&holders, 1)),
        )
        .await;
    let (status, v) = owner_dev
        .call(
            &http,
            "PUT",
            &version_path(1, &holders),
            Some(version_body(&holders, 1)),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("team_key_version"))
    );
    let keys = |v: &serde_json::Value| -> Vec<(u64, u64)> {
        v["wraps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["version"].as_u64().unwrap(),
                    w["member_key_version"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let v = anna_dev.ok(&http, "GET", "/v1/teams/keys", None).await;
    assert_eq!(keys(&v), vec![(1, 1)]);
    assert_eq!(v["wraps"][0]["team"], team.to_string());
    let v = eve_dev.ok(&http, "GET", "/v1/teams/keys", None).await;
    assert!(keys(&v).is_empty(), "not in the team");
    // The file's epoch key under the team key: for a team that holds the file only.
    let team_epoch = format!("/v1/files/{file}/epochs/0/teams/{team}");
    let other = TeamId([0xee; 16]);
    let (status, _) = owner_dev
        .call(
            &http,
            "PUT",
            &format!("/v1/files/{file}/epochs/0/teams/{other}"),
            Some(json!({ "holder_key_version": 1, "wrapped": wrap(5) })),
        )
        .await;
    assert_eq!(status, 403);
    let (status, v) = owner_dev
        .call(
            &http,
            "PUT",
            &team_epoch,
            Some(json!({ "holder_key_version": 2, "wrapped": wrap(5) })),
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (409, Some("team_key_stale")));
    owner_dev
        .ok(
            &http,
            "PUT",
            &team_epoch,
            Some(json!({ "holder_key_version": 1, "wrapped": wrap(5) })),
        )
        .await;
    let team_wraps = format!("/v1/files/{file}/epochs/keys?team={team}");
    let epochs = |v: &serde_json::Value| -> Vec<u64> {
        v["wraps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["epoch"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        epochs(&bob_dev.ok(&http, "GET", &team_wraps, None).await),
        vec![0]
    );
    let (status, _) = eve_dev.call(&http, "GET", &team_wraps, None).await;
    assert_eq!(status, 403, "a member outside the team");
    // Bob can work in the file through the team.
    let (status, _) = bob_dev
        .call(&http, "GET", &format!("/v1/files/{file}/records"), None)
        .await;
    assert_eq!(status, 200);

    // Bob leaves the team: he keeps no key to the team's files, and the file's new epoch
    // cannot go under the team key he held.
    let e = a.event(
        &owner,
        EventKind::TeamMemberRemoved {
            team,
            member: bob.id,
        },
    );
    a.append(&http, &owner_dev, e).await;
    let (status, _) = bob_dev.call(&http, "GET", &team_wraps, None).await;
    assert_eq!(status, 403);
    let v = bob_dev.ok(&http, "GET", "/v1/teams/keys", None).await;
    assert!(keys(&v).is_empty(), "withheld once he left");
    let start = |v: u32| {
        (
            format!("/v1/files/{file}/epochs/1?holders=&teams={team}.{v}"),
            json!({ "link": wrap(6), "wraps": [], "team_wraps": [{ "team": team.to_string(), "holder_key_version": v, "wrapped": wrap(7) }] }),
        )
    };
    let (path, body) = start(1);
    let (status, v) = owner_dev.call(&http, "PUT", &path, Some(body)).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("team_key_stale")),
        "{v}"
    );
    // The team without its grant in the path: the holders changed.
    let (status, v) = owner_dev
        .call(
            &http,
            "PUT",
            &format!("/v1/files/{file}/epochs/1?holders="),
            Some(json!({ "link": wrap(6), "wraps": [] })),
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (409, Some("holders_changed")));
    let remaining: Vec<_> = holders.iter().copied().filter(|m| *m != bob.id).collect();
    let (status, v) = owner_dev
        .call(
            &http,
            "PUT",
            &version_path(2, &holders),
            Some(version_body(&holders, 2)),
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (409, Some("holders_changed")));
    owner_dev
        .ok(
            &http,
            "PUT",
            &version_path(2, &remaining),
            Some(version_body(&remaining, 2)),
        )
        .await;
    let (path, body) = start(2);
    owner_dev.ok(&http, "PUT", &path, Some(body)).await;
    assert_eq!(
        epochs(&anna_dev.ok(&http, "GET", &team_wraps, None).await),
        vec![0, 1]
    );
    // A member joining later gets the newest team key only, by a single wrap.
    let e = a.event(
        &owner,
        EventKind::TeamMemberAdded {
            team,
            member: bob.id,
        },
    );
    a.append(&http, &owner_dev, e).await;
    let (status, v) = owner_dev
        .call(
            &http,
            "PUT",
            &format!("/v1/teams/{team}/keys/1/{}", bob.id),
            Some(json!({ "member_key_version": 1, "wrapped": wrap(1) })),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("team_key_version"))
    );
    owner_dev
        .ok(
            &http,
            "PUT",
            &format!("/v1/teams/{team}/keys/2/{}", bob.id),
            Some(json!({ "member_key_version": 1, "wrapped": wrap(2) })),
        )
        .await;
    let v = bob_dev.ok(&http, "GET", "/v1/teams/keys", None).await;
    assert!(keys(&v).contains(&(2, 1)), "{v}");
}

/// A download resumes where it stopped: `Range` on a document in the data directory
/// (the bucket's side is in `instances.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_served_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 31).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let owner = a.owner_device.clone();
    let doc = DocumentId(a.random16());
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8).collect();
    let share = [3u8; 32];
    let share_hash = hex::encode(sha2::Sha256::digest(share));
    let path = format!("/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}");
    let mut s = owner.sign("PUT", &path, &blob);
    s.headers
        .push(("ledgerline-release-share", hex::encode(share)));
    let (status, v) = owner.send(&http, &s).await;
    assert_eq!(status, 201, "{v}");
    let get = |range: Option<&'static str>| {
        let s = owner.sign("GET", &format!("/v1/files/{file}/documents/{doc}"), b"");
        let mut rb = http.get(format!("{}{}", relay.base, s.path));
        for (k, v) in &s.headers {
            rb = rb.header(*k, v);
        }
        if let Some(r) = range {
            rb = rb.header("range", r);
        }
        async move {
            let res = rb.send().await.unwrap();
            let status = res.status().as_u16();
            let range = res
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, range, res.bytes().await.unwrap().to_vec())
        }
    };
    let (status, range, body) = get(None).await;
    assert_eq!((status, range), (200, None));
    assert!(body == blob);
    for (asked, from, to) in [
        ("bytes=0-0", 0, 1),
        ("bytes=299990-", 299_990, 300_000),
        ("bytes=-1", 299_999, 300_000),
        ("bytes=1000-2000", 1000, 2001),
        ("bytes=299000-999999", 299_000, 300_000),
    ] {
        let (status, range, body) = get(Some(asked)).await;
        assert_eq!(status, 206, "{asked}");
        assert_eq!(range.unwrap(), format!("bytes {from}-{}/300000", to - 1));
        assert!(body == blob[from..to], "{asked}");
    }
    for unsatisfiable in ["bytes=300000-", "bytes=5-4", "bytes=-0", "bytes=x-"] {
        let (status, range, _) = get(Some(unsatisfiable)).await;
        assert_eq!(
            (status, range.as_deref()),
            (416, Some("bytes */300000")),
            "{unsatisfiable}"
        );
    }
    // Several ranges or other units: the whole document.
    let (status, _, body) = get(Some("bytes=0-1,5-6")).await;
    assert_eq!(status, 200);
    assert!(body == blob);
}

/// A page of room history as the binary form carries it, fetched over real HTTP.
async fn binary_page(
    http: &reqwest::Client,
    base: &str,
    dev: &Device,
    room: &str,
    from: u64,
    limit: u32,
) -> ledgerline_protocol::history::HistoryPage {
    use ledgerline_protocol::history::{HistoryPage, MEDIA_TYPE};
    let s = dev.sign(
        "GET",
        &format!("/v1/rooms/{room}/messages?from={from}&limit={limit}"),
        b"",
    );
    let mut rb = http.get(format!("{base}{}", s.path));
    for (k, v) in &s.headers {
        rb = rb.header(*k, v);
    }
    let res = rb
        .header("accept", format!("application/json;q=0.5, {MEDIA_TYPE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], MEDIA_TYPE);
    HistoryPage::from_bytes(&res.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_come_in_binary_form_bounded_and_logged_like_json() {
    use ledgerline_protocol::history::{PAGE_SOFT_BYTES, ROOM_MESSAGE_MAX_BYTES};
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &["--max-body-bytes", "8388608"]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 41).await;
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let file = FileId(a.random16());
    a.grant(&http, file, anna.id).await;
    a.grant(&http, file, a.owner.id).await;
    let owner = a.owner_device.clone();
    let room = a.file_room(&http, file).await;
    let post = |dev: &Device, ct: Vec<u8>| {
        let (http, dev, room) = (http.clone(), dev.clone(), room.clone());
        async move {
            dev.call(
                &http,
                "POST",
                &format!("/v1/rooms/{room}/messages"),
                Some(json!({ "ciphertext": hex::encode(ct) })),
            )
            .await
        }
    };
    // Small messages: the binary page carries what the JSON one does, and `next`.
    for i in 1..=3u8 {
        let dev = if i == 2 { &anna_dev } else { &owner };
        assert_eq!(post(dev, vec![i; 40 + i as usize]).await.0, 200);
    }
    let checkpoint = |v: serde_json::Value| v["size"].as_u64().unwrap();
    let before = checkpoint(
        anna_dev
            .ok(&http, "GET", "/v1/audit/checkpoint", None)
            .await,
    );
    let page = binary_page(&http, &relay.base, &anna_dev, &room, 2, 5).await;
    let json_page = anna_dev
        .ok(
            &http,
            "GET",
            &format!("/v1/rooms/{room}/messages?from=2&limit=5"),
            None,
        )
        .await;
    assert_eq!(page.next, 4);
    assert_eq!(json_page["next"], 4);
    let from_json: Vec<(u64, String, String, u64)> = json_page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["sender"].as_str().unwrap().to_owned(),
                m["ciphertext"].as_str().unwrap().to_owned(),
                m["created_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    let from_binary: Vec<(u64, String, String, u64)> = page
        .messages
        .iter()
        .map(|m| {
            (
                m.seq,
                m.sender.to_hex(),
                hex::encode(&m.ciphertext),
                m.created_ms,
            )
        })
        .collect();
    assert_eq!(from_binary, from_json);
    assert_eq!(
        from_binary.iter().map(|m| &m.1).collect::<Vec<_>>(),
        vec![&anna_dev.id.to_hex(), &owner.id.to_hex()]
    );
    // An empty page past the end: `next` still said, nothing logged.
    let empty = binary_page(&http, &relay.base, &anna_dev, &room, 4, 5).await;
    assert_eq!((empty.next, empty.messages.len()), (4, 0));
    // The two pages were logged, one leaf each, the empty one not (nor the checkpoint
    // read, which is not content).
    let after = checkpoint(
        anna_dev
            .ok(&http, "GET", "/v1/audit/checkpoint", None)
            .await,
    );
    assert_eq!(after, before + 2);

    // The size limit of one message, at the edge and past it.
    let (status, v) = post(&owner, vec![0xab; ROOM_MESSAGE_MAX_BYTES + 1]).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (413, Some("message_too_large"))
    );
    for _ in 0..5 {
        assert_eq!(
            post(&owner, vec![0xcd; ROOM_MESSAGE_MAX_BYTES]).await.0,
            200
        );
    }
    // Five messages of 1 MiB: a page asked for ten ends once it passed 4 MiB, in both
    // forms, and the reader goes on from there.
    let per_page = PAGE_SOFT_BYTES / ROOM_MESSAGE_MAX_BYTES;
    let first = binary_page(&http, &relay.base, &anna_dev, &room, 4, 10).await;
    assert_eq!(
        first.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (4..4 + per_page as u64).collect::<Vec<_>>()
    );
    let v = anna_dev
        .ok(
            &http,
            "GET",
            &format!("/v1/rooms/{room}/messages?from=4&limit=10"),
            None,
        )
        .await;
    assert_eq!(v["messages"].as_array().unwrap().len(), per_page);
    let rest = binary_page(
        &http,
        &relay.base,
        &anna_dev,
        &room,
        4 + per_page as u64,
        10,
    )
    .await;
    assert_eq!(
        rest.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (4 + per_page as u64..9).collect::<Vec<_>>()
    );
    assert!(rest
        .messages
        .iter()
        .all(|m| m.ciphertext.len() == ROOM_MESSAGE_MAX_BYTES));
}
