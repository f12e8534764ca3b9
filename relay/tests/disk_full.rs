//! Disk full on the relay's data directory: writes are refused with a clear error (507
//! `storage_full`), nothing acknowledged is lost, reads go on, the database stays whole,
//! and the relay writes again once there is room. The fault is real, two ways:
//!
//! - every file the relay writes is limited in size (`RLIMIT_FSIZE`), so SQLite's and the
//!   blob store's writes fail with `EFBIG` as on a full disk (any user, any machine);
//! - the data directory is a filesystem of its own, 3 MiB of tmpfs, that runs out of space:
//!   `ENOSPC` for every file at once, the WAL and the temporary files included; room comes
//!   back by growing it (`mount -o remount`). Mounting needs root: CI runs as root and
//!   must run it (the test fails there if it cannot mount); elsewhere without root it says
//!   it did not run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::document::{document_key, encrypt_document, DocumentContext};
use ledgerline_protocol::ids::{DocumentId, FileId};
use ledgerline_protocol::keys::{EpochKey, ReleaseShare};
use ledgerline_testkit::disk::Tmpfs;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{json, Value};
use sha2::Digest;
use std::path::Path;

const LIMIT: u64 = 3 << 20;
const ARGS: [&str; 4] = ["--rate-per-second", "100000", "--rate-burst", "100000"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_may_not_grow_refuse_writes_clearly_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let relay = Relay::start_with_file_limit(&data, &ARGS, LIMIT);
    fill_then_make_room(relay, &data, || Relay::start(&data, &ARGS)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filesystem_out_of_space_refuses_writes_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(fs) = Tmpfs::mount(&data, LIMIT) else {
        return;
    };
    let relay = Relay::start(&data, &ARGS);
    fill_then_make_room(relay, &data, || {
        fs.grow(64 << 20);
        Relay::start(&data, &ARGS)
    })
    .await;
    assert!(
        !std::fs::read_to_string(data.with_extension("log"))
            .unwrap()
            .contains("panicked"),
        "no panic"
    );
}

/// Fills the relay's disk with messages, checks what a full disk must and must not do,
/// stops the relay, makes room (`restart`) and checks that writes go on where they stopped.
async fn fill_then_make_room(mut relay: Relay, data: &Path, restart: impl FnOnce() -> Relay) {
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
    // Still full: refused again, the same way; a document that finds no room is
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
    // Larger than the file limit, and refused while it is still arriving: the relay reads
    // the rest of it (up to a part's size) so that the client gets the answer, not a reset.
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
    let relay = restart();
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
