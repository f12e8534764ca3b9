//! Several relay instances behind one address (`protocol-spec/scale-out.md`): two real
//! relay processes on one PostgreSQL database (Debian's server, on loopback) and one data
//! directory (log key, blobs). A client on one instance is pushed what was sent through
//! the other, sees its revocation, and cannot replay there what the other accepted; an
//! instance killed with SIGKILL under load from both loses nothing acknowledged, its
//! clients carry on at the other, and the firm's audit log stays one verified sequence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::streaming::Streaming;
use common::*;
use futures_util::StreamExt;
use ledgerline_protocol::audit::LogEntry;
use ledgerline_protocol::checkpoint::open_checkpoint;
use ledgerline_protocol::ids::{DocumentId, FileId};
use ledgerline_protocol::keys::VerifyingKey;
use ledgerline_protocol::merkle::{leaf_hash, root};
use ledgerline_protocol::roster::{EventKind, Role};
use ledgerline_testkit::postgres::Postgres;
use ledgerline_testkit::s3::{ACCESS_KEY_ID, BUCKET, S3, SECRET_ACCESS_KEY};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// PostgreSQL, an S3-compatible bucket (moto) and two instances on them. The instances
/// share nothing else but the log key: each has its own data directory, into which the
/// second copies the first's `log-key.secret`.
async fn two_instances(dir: &Path) -> (Services, Relay, Relay) {
    let services = Services::start(dir).await;
    let args = services.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Relay::start(&dir.join("a"), &args);
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::copy(dir.join("a/log-key.secret"), dir.join("b/log-key.secret")).unwrap();
    let b = Relay::start(&dir.join("b"), &args);
    (services, a, b)
}

/// The servers the instances share.
struct Services {
    pg: Postgres,
    s3: S3,
}

impl Services {
    async fn start(dir: &Path) -> Self {
        let at = dir.join("pg");
        let (pg, s3) = tokio::join!(
            tokio::task::spawn_blocking(move || Postgres::start(&at)),
            tokio::task::spawn_blocking(S3::start)
        );
        Self {
            pg: pg.unwrap(),
            s3: s3.unwrap(),
        }
    }

    /// An instance's flags.
    fn args(&self) -> Vec<String> {
        [
            "--database-url",
            &self.pg.url(),
            "--s3-bucket",
            BUCKET,
            "--s3-endpoint",
            &self.s3.endpoint(),
            "--s3-access-key-id",
            ACCESS_KEY_ID,
            "--s3-secret-access-key",
            SECRET_ACCESS_KEY,
            "--rate-per-second",
            "100000",
            "--rate-burst",
            "100000",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// The bucket, as the relay reads it.
    async fn bucket(&self) -> ledgerline_relay::blobs::Bucket {
        ledgerline_relay::blobs::Bucket::open(&ledgerline_relay::config::Config {
            s3_bucket: Some(BUCKET.into()),
            s3_endpoint: Some(self.s3.endpoint()),
            s3_access_key_id: Some(ACCESS_KEY_ID.into()),
            s3_secret_access_key: Some(SECRET_ACCESS_KEY.to_owned().into()),
            ..Default::default()
        })
        .await
        .unwrap()
    }
}

/// `device` talking to another instance.
fn at(device: &Device, relay: &Relay) -> Device {
    Device {
        base: relay.base.clone(),
        ..device.clone()
    }
}

/// Waits (at most 10 s) for the socket to be closed; the close frame's reason.
async fn close_reason<S>(ws: &mut S) -> Option<String>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match msg {
            Ok(tokio_tungstenite::tungstenite::Message::Close(frame)) => {
                return Some(frame.map(|f| f.reason.to_string()).unwrap_or_default())
            }
            Err(_) => return Some(String::new()),
            Ok(_) => {}
        }
    }
    None
}

/// Sends `ciphertext` (hex) to `room` through `device`'s instance; the answer.
async fn say(http: &reqwest::Client, device: &Device, room: &str, ciphertext: &str) -> Value {
    device
        .ok(
            http,
            "POST",
            &format!("/v1/rooms/{room}/messages"),
            Some(json!({ "ciphertext": ciphertext })),
        )
        .await
}

/// Waits for the next event of `type`, skipping others.
async fn event_of<S>(ws: &mut S, kind: &str) -> Value
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        let v = next_event(ws)
            .await
            .unwrap_or_else(|| panic!("no {kind} event"));
        if v["type"] == kind {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_revocations_and_the_replay_window_reach_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let (services, a, b) = two_instances(dir.path()).await;
    let http = client();
    // The firm is founded on A; its members are added on A, and one device on B, which
    // judges the event on the roster A stored.
    let mut firm = Firm::create(&http, &a.base, 61).await;
    let owner = firm.owner_device.clone();
    let (anna, anna_dev) = firm.add_member(&http, Role::Member).await;
    let owner_on_b = at(&owner, &b);
    let phone = new_device(&mut firm.rng, firm.id, anna.id, &b.base);
    let added = firm.event(
        &firm.owner_clone(),
        EventKind::DeviceAdded(certify(firm.id, &anna, &phone)),
    );
    firm.append(&http, &owner_on_b, added).await;
    let room = hex::encode(firm.random16());
    owner
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": [firm.owner.id, anna.id] })),
        )
        .await;

    // Anna listens on B; the owner writes on A.
    let anna_on_b = at(&anna_dev, &b);
    let mut ws = websocket(&anna_on_b, b.addr).await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "hello");
    let sent = say(&http, &owner, &room, "c0ffee").await;
    let pushed = event_of(&mut ws, "room_message").await;
    assert_eq!(pushed["seq"], sent["seq"], "pushed by B what A accepted");
    assert_eq!(pushed["ciphertext"], "c0ffee");
    // Too large for a notification: the push arrives as a hint, the message by paging.
    let large = "ab".repeat(6_000);
    let sent = say(&http, &owner, &room, &large).await;
    let pushed = event_of(&mut ws, "room_message").await;
    assert_eq!(pushed["seq"], sent["seq"]);
    assert_eq!(pushed["partial"], true);
    assert!(pushed.get("ciphertext").is_none());
    let stored = anna_on_b.all_messages(&http, &room).await;
    assert_eq!(stored[&sent["seq"].as_u64().unwrap()], large);

    // A request A accepted is a replay at B, and the other way round.
    for (first, second) in [(&a, &b), (&b, &a)] {
        let body = serde_json::to_vec(&json!({ "ciphertext": "0badc0de" })).unwrap();
        let s = owner.sign("POST", &format!("/v1/rooms/{room}/messages"), &body);
        let (status, v) = send(&http, &first.base, &s).await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = send(&http, &second.base, &s).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (401, Some("replayed_request")),
            "a request replayed to the other instance: {v}"
        );
    }

    // Revoked on A: Anna's socket on B is closed as revoked, and B refuses the device.
    let revoke = firm.event(
        &firm.owner_clone(),
        EventKind::DeviceRevoked {
            device: anna_dev.id,
        },
    );
    firm.append(&http, &owner, revoke).await;
    let reason = close_reason(&mut ws).await;
    assert_eq!(reason.as_deref(), Some("revoked"), "B closed the socket");
    let (status, v) = anna_on_b.call(&http, "GET", "/v1/roster", None).await;
    assert_eq!((status, v["code"].as_str()), (401, Some("revoked_device")));
    // Her other device goes on, on either instance.
    at(&phone, &a).ok(&http, "GET", "/v1/roster", None).await;
    phone.ok(&http, "GET", "/v1/roster", None).await;

    // The instances lose their notification connections (PostgreSQL restarted them, say):
    // each listens again, re-reads its firms and closes its sockets so that their clients
    // catch up; then pushes flow as before.
    let mut ws = websocket(&phone, b.addr).await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "hello");
    let (pg_client, connection) =
        tokio_postgres::connect(&services.pg.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let cut = pg_client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN ledgerline_v1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cut.len(), 2, "one listener per instance");
    let reason = close_reason(&mut ws).await;
    assert_eq!(reason.as_deref(), Some("resync"), "B closed its sockets");
    let mut ws = websocket(&phone, b.addr).await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "hello");
    let sent = say(&http, &owner, &room, "aa55").await;
    assert_eq!(event_of(&mut ws, "room_message").await["seq"], sent["seq"]);
}

/// What the writers got acknowledged.
#[derive(Default)]
struct Acked {
    messages: Vec<(u64, String)>,
    signatures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_load_loses_nothing_and_the_log_stays_one() {
    let dir = tempfile::tempdir().unwrap();
    let (services, mut a, b) = two_instances(dir.path()).await;
    let http = client();
    let mut firm = Firm::create(&http, &a.base, 62).await;
    let owner = firm.owner_device.clone();
    let (anna, anna_dev) = firm.add_member(&http, Role::Member).await;
    let room = hex::encode(firm.random16());
    owner
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": [firm.owner.id, anna.id] })),
        )
        .await;
    let v = owner.ok(&http, "GET", "/v1/audit/checkpoint", None).await;
    let origin = v["origin"].as_str().unwrap().to_owned();
    let key = VerifyingKey::from_bytes(
        &hex::decode(v["log_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    // Anna listens on A.
    let mut ws = websocket(&anna_dev, a.addr).await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "hello");

    // Four writers, two on each instance; a writer whose instance stops answering moves
    // to the other (what a load balancer does) and goes on.
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (a_base, b_base) = (a.base.clone(), b.base.clone());
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let (owner, room, acked, http, stop) = (
            owner.clone(),
            room.clone(),
            acked.clone(),
            http.clone(),
            stop.clone(),
        );
        let mut base = if w % 2 == 0 {
            a_base.clone()
        } else {
            b_base.clone()
        };
        let other = b_base.clone();
        writers.push(tokio::spawn(async move {
            let mut moved = false;
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ct = format!("{w:02x}{i:08x}");
                let body = serde_json::to_vec(&json!({ "ciphertext": ct })).unwrap();
                let s = owner.sign("POST", &format!("/v1/rooms/{room}/messages"), &body);
                match tokio::time::timeout(Duration::from_secs(5), try_send(&http, &base, &s))
                    .await
                    .ok()
                    .flatten()
                {
                    Some((200, v)) => {
                        let mut a = acked.lock().unwrap();
                        a.messages.push((v["seq"].as_u64().unwrap(), ct));
                        a.signatures.push(s.signature());
                    }
                    Some((status, v)) => panic!("writer {w}: {status} {v}"),
                    None => {
                        assert!(!moved, "writer {w}: B stopped answering too");
                        base = other.clone();
                        moved = true;
                    }
                }
                i += 1;
            }
            moved
        }));
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before_kill = acked.lock().unwrap().messages.len();
    a.kill();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut moved = 0;
    for w in writers {
        moved += usize::from(w.await.unwrap());
    }
    assert_eq!(moved, 2, "both writers on A moved to B");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        before_kill > 50 && acked.messages.len() > before_kill + 50,
        "too little load: {before_kill} before the kill, {} in all",
        acked.messages.len()
    );

    // Anna's socket died with A; she reconnects to B and is pushed there.
    assert!(
        close_reason(&mut ws).await.is_some(),
        "the socket on the killed instance is gone"
    );
    let anna_on_b = at(&anna_dev, &b);
    let mut ws = websocket(&anna_on_b, b.addr).await;
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "hello");
    let owner_on_b = at(&owner, &b);
    let sent = say(&http, &owner_on_b, &room, "afe7").await;
    assert_eq!(event_of(&mut ws, "room_message").await["seq"], sent["seq"]);

    // Every acknowledged message is there, numbered densely from both instances.
    let stored = anna_on_b.all_messages(&http, &room).await;
    for (seq, ct) in &acked.messages {
        assert_eq!(stored.get(seq), Some(ct), "acknowledged message {seq} lost");
    }
    let top = sent["seq"].as_u64().unwrap();
    assert_eq!(
        stored.len() as u64,
        top,
        "message numbers 1..={top}, no gap"
    );

    // A restarted A signs the same log: one sequence, its entries hash to the signed root,
    // and every acknowledged write is in it exactly once.
    let args = services.args();
    a = Relay::start(
        &a.data,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let owner_on_a = at(&owner, &a);
    let v = owner_on_a
        .ok(&http, "GET", "/v1/audit/checkpoint", None)
        .await;
    let cp = open_checkpoint(v["checkpoint"].as_str().unwrap().as_bytes(), &origin, &key)
        .expect("the checkpoint of the restarted instance under the pinned key");
    let entries = owner_on_b.audit_entries(&http, cp.size()).await;
    let leaves: Vec<[u8; 32]> = entries.iter().map(|e| leaf_hash(e)).collect();
    assert_eq!(
        &root(&leaves),
        cp.root(),
        "the entries hash to the signed root"
    );
    let mut logged = HashSet::new();
    for e in &entries {
        if let LogEntry::Request(l) = LogEntry::from_bytes(e).unwrap() {
            assert!(
                logged.insert(hex::encode(l.request.signature)),
                "a request logged twice"
            );
        }
    }
    for sig in &acked.signatures {
        assert!(logged.contains(sig), "an acknowledged write is not logged");
    }
    println!(
        "{} messages acknowledged by two instances ({before_kill} before A was killed), all present; audit log of {} entries verified",
        acked.messages.len(),
        cp.size()
    );
    drop(b);
}

/// Downloads a document through `device`'s instance, with a `Range` header if given.
async fn download(
    http: &reqwest::Client,
    device: &Device,
    file: FileId,
    doc: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let path = format!("/v1/files/{file}/documents/{doc}");
    let s = device.sign("GET", &path, b"");
    let mut req = http.get(format!("{}{path}", device.base));
    for (k, v) in &s.headers {
        req = req.header(*k, v);
    }
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_live_in_the_bucket_and_any_instance_serves_any_part_of_them() {
    use ledgerline_protocol::document::parts_root;
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let (services, a, b) = two_instances(dir.path()).await;
    let bucket = services.bucket().await;
    let http = client();
    let mut firm = Firm::create(&http, &a.base, 63).await;
    let file = FileId(firm.random16());
    firm.grant(&http, file, firm.owner.id).await;
    let owner = firm.owner_device.clone();
    let owner_on_b = at(&owner, &b);
    let share = [6u8; 32];
    let share_hash = hex::encode(sha2::Sha256::digest(share));

    // One request, 20 MiB: streamed to S3 in parts of 8 MiB, served by the other instance.
    let whole: Vec<u8> = (0..20u32 << 20).map(|i| (i % 253) as u8).collect();
    let doc = hex::encode(firm.random16());
    let path = format!("/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}");
    let mut s = owner.sign("PUT", &path, &whole);
    s.body = whole.clone();
    s.headers
        .push(("ledgerline-release-share", hex::encode(share)));
    let (status, v) = send(&http, &a.base, &s).await;
    assert_eq!(status, 201, "{v}");
    let (status, headers, got) = download(&http, &owner_on_b, file, &doc, None).await;
    assert_eq!(status, 200);
    assert!(got == whole, "the document read back through B");
    assert_eq!(
        headers["ledgerline-content-sha256"].to_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&whole))
    );
    // Ranges, as a resumed download asks for them.
    for (range, want) in [
        ("bytes=100-199", &whole[100..200]),
        ("bytes=8388600-8388700", &whole[8_388_600..8_388_701]),
        ("bytes=-10", &whole[whole.len() - 10..]),
        ("bytes=20971000-", &whole[20_971_000..]),
    ] {
        let (status, headers, got) = download(&http, &owner_on_b, file, &doc, Some(range)).await;
        assert_eq!(status, 206, "{range}");
        assert!(got == want, "{range}");
        assert!(headers["content-range"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/{}", whole.len())));
    }
    let (status, headers, _) =
        download(&http, &owner_on_b, file, &doc, Some("bytes=99999999-")).await;
    assert_eq!(status, 416);
    assert_eq!(
        headers["content-range"].to_str().unwrap(),
        format!("bytes */{}", whole.len())
    );

    // A body that is not the signed one: refused, and the bucket holds nothing of it.
    let bad = hex::encode(firm.random16());
    let path = format!("/v1/files/{file}/documents/{bad}?epoch=0&share_sha256={share_hash}");
    let mut s = owner.sign(
        "PUT",
        &path,
        b"the body that was signed, not the one that is sent",
    );
    s.body = vec![0x55; 9 << 20];
    s.headers
        .push(("ledgerline-release-share", hex::encode(share)));
    let (status, v) = send(&http, &b.base, &s).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (401, Some("body_hash_mismatch"))
    );
    let bad_id = DocumentId(hex::decode(&bad).unwrap().try_into().unwrap());
    assert!(bucket
        .all_objects(firm.id, bad_id)
        .await
        .unwrap()
        .is_empty());

    // In parts of 64 KiB (below S3's 5 MiB minimum: each part is an object of its own),
    // sent to either instance, completed on the other.
    let part_size = 65_536usize;
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let parts: Vec<&[u8]> = blob.chunks(part_size).collect();
    let hashes: Vec<[u8; 32]> = parts
        .iter()
        .map(|p| sha2::Sha256::digest(p).into())
        .collect();
    let doc2 = hex::encode(firm.random16());
    let begin = serde_json::to_vec(&json!({
        "epoch": 0, "share_sha256": share_hash, "size": blob.len(), "part_size": part_size
    }))
    .unwrap();
    let mut s = owner.sign("POST", &format!("/v1/files/{file}/uploads/{doc2}"), &begin);
    s.body = begin;
    s.headers
        .push(("ledgerline-release-share", hex::encode(share)));
    let (status, v) = send(&http, &a.base, &s).await;
    assert_eq!(status, 200, "{v}");
    for (n, part) in parts.iter().enumerate() {
        let via = if n % 2 == 0 { &a } else { &b };
        let mut s = owner.sign(
            "PUT",
            &format!("/v1/files/{file}/uploads/{doc2}/parts/{n}"),
            part,
        );
        s.body = part.to_vec();
        let (status, v) = send(&http, &via.base, &s).await;
        assert_eq!(
            (status, v["received"].as_u64()),
            (200, Some(n as u64 + 1)),
            "{v}"
        );
    }
    let root = parts_root(part_size as u64, &hashes);
    let v = owner_on_b
        .ok(
            &http,
            "POST",
            &format!("/v1/files/{file}/uploads/{doc2}/complete"),
            Some(json!({ "root": hex::encode(root) })),
        )
        .await;
    assert_eq!(v["size"].as_u64(), Some(blob.len() as u64));
    let (status, _, got) = download(&http, &owner, file, &doc2, None).await;
    assert_eq!(status, 200);
    assert!(got == blob, "the parts read back in order through A");
    let (_, _, got) = download(&http, &owner, file, &doc2, Some("bytes=65530-131080")).await;
    assert!(got == blob[65_530..131_081], "a range across three parts");

    // Nothing of it on either instance's disk; erasing the file empties the bucket of it.
    for d in ["a", "b"] {
        let on_disk = walk(&dir.path().join(d).join("blobs"));
        assert!(on_disk.is_empty(), "{d} kept blobs on disk: {on_disk:?}");
    }
    owner_on_b
        .ok(&http, "DELETE", &format!("/v1/files/{file}"), None)
        .await;
    for d in [&doc, &doc2] {
        let id = DocumentId(hex::decode(d).unwrap().try_into().unwrap());
        assert!(
            bucket.all_objects(firm.id, id).await.unwrap().is_empty(),
            "erased"
        );
    }
}

/// Two uploads of one document id at once on two instances (a client's retry that landed
/// on the other one): the first recorded is the document, whole, served by both; the other
/// is `409 document_exists` and leaves nothing in the bucket. Before copies were named, the
/// second wrote its bytes over the first's object and then deleted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_take_one_document_id_at_once_and_keep_the_first_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (services, a, b) = two_instances(dir.path()).await;
    let bucket = services.bucket().await;
    let http = client();
    let mut firm = Firm::create(&http, &a.base, 64).await;
    let file = FileId(firm.random16());
    firm.grant(&http, file, firm.owner.id).await;
    let owner = firm.owner_device.clone();
    let owner_on_b = at(&owner, &b);
    // Larger than one S3 part: each is a multipart upload of its own.
    let first: Vec<u8> = (0..10u32 << 20).map(|i| (i % 251) as u8).collect();
    let second: Vec<u8> = (0..10u32 << 20).map(|i| (i % 241) as u8).collect();
    let doc = hex::encode(firm.random16());
    let (one, one_rest) = Streaming::start(&http, &owner, file, &doc, &first, 1 << 20).await;
    let (two, two_rest) = Streaming::start(&http, &owner_on_b, file, &doc, &second, 1 << 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (st, v) = one.finish(one_rest).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = two.finish(two_rest).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (409, Some("document_exists")),
        "{v}"
    );
    for device in [&owner, &owner_on_b] {
        let (status, headers, got) = download(&http, device, file, &doc, None).await;
        assert_eq!(status, 200);
        assert!(got == first, "the first recorded is served whole");
        assert_eq!(
            headers["ledgerline-content-sha256"].to_str().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&first))
        );
    }
    let id = DocumentId(hex::decode(&doc).unwrap().try_into().unwrap());
    assert_eq!(
        bucket.all_objects(firm.id, id).await.unwrap().len(),
        1,
        "the loser's copy is gone"
    );
}

/// Every file under `dir` (none if it does not exist).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
