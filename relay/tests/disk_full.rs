//! Disk full on the relay's data directory: writes are refused with a clear error (507
//! `storage_full`), nothing acknowledged is lost, reads go on, the database stays whole,
//! and the relay writes again once there is room. The fault is real: every file the relay
//! writes is limited in size (`RLIMIT_FSIZE`), so SQLite's and the blob store's writes fail
//! as on a full disk.

mod common;

use common::*;
use ledgerline_protocol::document::{document_key, encrypt_document, DocumentContext};
use ledgerline_protocol::ids::{DocumentId, FileId};
use ledgerline_protocol::keys::{EpochKey, ReleaseShare};
use rand_chacha::rand_core::SeedableRng;
use serde_json::{json, Value};
use sha2::Digest;

const LIMIT: u64 = 3 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--rate-per-second", "100000", "--rate-burst", "100000"];
    let mut relay = Relay::start_with_file_limit(&data, &args, LIMIT);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 61).await;
    let mut owner = a.owner_device.clone();
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    owner
        .ok(
            &http,
            "PUT",
            &format!("/v1/files/{file}/epochs/0/keys/{}", a.owner.id),
            Some(json!({ "holder_key_version": 1, "wrapped": "ab".repeat(73) })),
        )
        .await;
    let room = hex::encode(a.random16());
    owner
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": [a.owner.id] })),
        )
        .await;

    // Messages of 48 KiB until the disk is full.
    let mut acked: Vec<(u64, String)> = Vec::new();
    let refused = loop {
        let ct = hex::encode(a.random16()).repeat(3 * 1024);
        let (status, v) = owner
            .call(
                &http,
                "POST",
                &format!("/v1/rooms/{room}/messages"),
                Some(json!({ "ciphertext": ct })),
            )
            .await;
        if status != 200 {
            break (status, v);
        }
        acked.push((v["seq"].as_u64().unwrap(), ct));
        assert!(acked.len() < 1000, "the limit never bit");
    };
    assert_eq!(
        refused.0,
        507,
        "{refused:?} after {} messages; log: {}",
        acked.len(),
        std::fs::read_to_string(&relay.stderr_log).unwrap_or_default()
    );
    assert_eq!(refused.1["code"], "storage_full", "{refused:?}");
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap()
            .contains("disk is full"),
        "{refused:?}"
    );
    assert!(acked.len() > 10, "{}", acked.len());
    // Still full: refused again, the same way; a document larger than what fits is
    // refused too, and nothing of it is served.
    let (status, v) = owner
        .call(
            &http,
            "POST",
            &format!("/v1/rooms/{room}/messages"),
            Some(json!({ "ciphertext": "ff".repeat(64 * 1024) })),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (507, Some("storage_full")),
        "{v}"
    );
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let doc = DocumentId(a.random16());
    let share = ReleaseShare::generate(&mut rng);
    let dk = document_key(
        &EpochKey::generate(&mut rng),
        &share,
        &DocumentContext {
            firm: a.id,
            file,
            document: doc,
            epoch: 0,
        },
    );
    let blob = encrypt_document(&dk, &vec![7u8; (LIMIT + (512 << 10)) as usize], &mut rng);
    let share_hash = hex::encode(sha2::Sha256::digest(share.expose()));
    let path = format!("/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}");
    let mut s = owner.sign("PUT", &path, &blob);
    s.headers
        .push(("ledgerline-release-share", hex::encode(share.expose())));
    let (status, v) = owner.send(&http, &s).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (507, Some("storage_full")),
        "{v}"
    );
    let (status, _) = owner
        .call(
            &http,
            "GET",
            &format!("/v1/files/{file}/documents/{doc}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "no part of the refused document stays");
    // Reads go on: every acknowledged message is there, byte for byte.
    let stored = owner.all_messages(&http, &room).await;
    for (seq, ct) in &acked {
        assert_eq!(stored.get(seq), Some(ct), "acknowledged message {seq}");
    }
    let health = http
        .get(format!("{}/healthz", relay.base))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    // The log says why, for the operator.
    let log = std::fs::read_to_string(&relay.stderr_log).unwrap_or_default();
    assert!(log.contains("disk is full"), "{log}");
    assert_eq!(relay.stop(), Some(0), "a clean stop on a full disk");

    // Room again (the operator freed space): the database is whole, nothing acknowledged
    // is lost, and writes go on where they stopped.
    let integrity: String = rusqlite::Connection::open(data.join("relay.sqlite3"))
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let relay = Relay::start(&data, &args);
    owner.base = relay.base.clone();
    let stored = owner.all_messages(&http, &room).await;
    for (seq, ct) in &acked {
        assert_eq!(stored.get(seq), Some(ct), "acknowledged message {seq}");
    }
    let v: Value = owner
        .ok(
            &http,
            "POST",
            &format!("/v1/rooms/{room}/messages"),
            Some(json!({ "ciphertext": "00ff" })),
        )
        .await;
    let last = acked.iter().map(|(s, _)| *s).max().unwrap();
    assert!(v["seq"].as_u64().unwrap() > last, "{v}");
    drop(relay);
}
