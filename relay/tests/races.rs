//! Two uploads of one document id at once — a client's retry while its first attempt is
//! still streaming, or a one-request upload beside a multipart one — against the real
//! relay over HTTP: the first to be recorded is the document, whole; the other is refused
//! with `document_exists` and leaves nothing behind (`relay/src/blobs.rs`).
//!
//! Before each upload wrote its own copy, the second renamed its bytes over the first's
//! blob and then, refused by the database, deleted it: the document the relay had just
//! acknowledged was gone. A document stored before copies were named still serves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::streaming::{Streaming, STREAMING_SHARE};
use common::*;
use ledgerline_protocol::document::parts_root;
use ledgerline_protocol::ids::FileId;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;

const SHARE: [u8; 32] = STREAMING_SHARE;

/// The document as the relay serves it, and the hash it serves it with.
async fn download(
    http: &reqwest::Client,
    dev: &Device,
    file: FileId,
    doc: &str,
) -> (Vec<u8>, String) {
    let s = dev.sign("GET", &format!("/v1/files/{file}/documents/{doc}"), b"");
    let mut rb = http.get(format!("{}{}", dev.base, s.path));
    for (k, v) in &s.headers {
        rb = rb.header(*k, v);
    }
    let res = rb.send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "the document downloads");
    let sha = res.headers()["ledgerline-content-sha256"]
        .to_str()
        .unwrap()
        .to_owned();
    (res.bytes().await.unwrap().to_vec(), sha)
}

/// The stored copies of a document, and what is left in the relay's temporary directory.
fn stored(relay: &Relay, firm: &str, doc: &str) -> (usize, usize) {
    let blobs = relay.data.join("blobs");
    let copies = std::fs::read_dir(blobs.join(firm).join(doc))
        .map(|d| d.count())
        .unwrap_or(0);
    let temp = std::fs::read_dir(blobs.join("tmp")).unwrap().count();
    (copies, temp)
}

/// Both one-request uploads pass the relay's "is the id free" check before either is
/// recorded; each finishing order keeps the first recorded whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_one_request_uploads_of_one_id_keep_the_first_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 21).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let owner = a.owner_device.clone();
    let first: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let second: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    for round in 0..2 {
        let doc = hex::encode(a.random16());
        let (one, one_rest) = Streaming::start(&http, &owner, file, &doc, &first, 1000).await;
        let (two, two_rest) = Streaming::start(&http, &owner, file, &doc, &second, 1000).await;
        // Both handlers are streaming (past the existence check) before either finishes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (winner, loser) = if round == 0 {
            (one.finish(one_rest).await, two.finish(two_rest).await)
        } else {
            let loser = one;
            let won = two.finish(two_rest).await;
            (won, loser.finish(one_rest).await)
        };
        assert_eq!(winner.0, 201, "round {round}: {}", winner.1);
        assert_eq!(
            (loser.0, loser.1["code"].as_str()),
            (409, Some("document_exists")),
            "round {round}: {}",
            loser.1
        );
        let kept = if round == 0 { &first } else { &second };
        let (bytes, sha) = download(&http, &owner, file, &doc).await;
        assert!(
            bytes == *kept,
            "round {round}: the recorded bytes are served"
        );
        assert_eq!(sha, hex::encode(Sha256::digest(kept)));
        assert_eq!(
            stored(&relay, &a.id.to_hex(), &doc),
            (1, 0),
            "round {round}: one copy, no temporary file"
        );
    }
    let log = relay.log();
    assert!(!log.contains("status=5"), "no server error:\n{log}");
}

/// A multipart upload and a one-request upload of one id: whichever is recorded first is
/// the document; the other is refused and its bytes never replace it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_and_a_one_request_upload_of_one_id_keep_the_first_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 22).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let owner = a.owner_device.clone();
    let part_size = 65_536usize;
    let parted: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let whole: Vec<u8> = (0..150_000u32).map(|i| (i % 239) as u8).collect();
    let share_hash = hex::encode(Sha256::digest(SHARE));
    let call = |path: String, body: Vec<u8>, method: &'static str, share: bool| {
        let mut s = owner.sign(method, &path, &body);
        s.body = body;
        if share {
            s.headers
                .push(("ledgerline-release-share", hex::encode(SHARE)));
        }
        let http = http.clone();
        let base = relay.base.clone();
        async move { send(&http, &base, &s).await }
    };
    // Begins and sends every part; completion is left to the caller.
    let parts_sent = |doc: String| {
        let call = &call;
        let parted = &parted;
        let share_hash = share_hash.clone();
        async move {
            let body = serde_json::to_vec(&json!({
                "epoch": 0, "share_sha256": share_hash,
                "size": parted.len(), "part_size": part_size
            }))
            .unwrap();
            let (st, v) = call(
                format!("/v1/files/{file}/uploads/{doc}"),
                body,
                "POST",
                true,
            )
            .await;
            assert_eq!(st, 200, "{v}");
            for (n, p) in parted.chunks(part_size).enumerate() {
                let path = format!("/v1/files/{file}/uploads/{doc}/parts/{n}");
                let (st, v) = call(path, p.to_vec(), "PUT", false).await;
                assert_eq!(st, 200, "{v}");
            }
        }
    };
    let root = parts_root(
        part_size as u64,
        &parted
            .chunks(part_size)
            .map(|p| Sha256::digest(p).into())
            .collect::<Vec<[u8; 32]>>(),
    );
    let complete = |doc: String| {
        let body = serde_json::to_vec(&json!({ "root": hex::encode(root) })).unwrap();
        call(
            format!("/v1/files/{file}/uploads/{doc}/complete"),
            body,
            "POST",
            false,
        )
    };

    // The one-request upload is recorded while the multipart one waits to complete.
    let doc = hex::encode(a.random16());
    parts_sent(doc.clone()).await;
    let (one, rest) = Streaming::start(&http, &owner, file, &doc, &whole, 1000).await;
    let (st, v) = one.finish(rest).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = complete(doc.clone()).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (409, Some("document_exists")),
        "{v}"
    );
    let (bytes, sha) = download(&http, &owner, file, &doc).await;
    assert!(bytes == whole, "the one-request upload's bytes are served");
    assert_eq!(sha, hex::encode(Sha256::digest(&whole)));
    assert_eq!(stored(&relay, &a.id.to_hex(), &doc), (1, 0));

    // The multipart upload completes while the one-request upload is still streaming.
    let doc = hex::encode(a.random16());
    parts_sent(doc.clone()).await;
    let (one, rest) = Streaming::start(&http, &owner, file, &doc, &whole, 1000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (st, v) = complete(doc.clone()).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = one.finish(rest).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (409, Some("document_exists")),
        "{v}"
    );
    let (bytes, sha) = download(&http, &owner, file, &doc).await;
    assert!(bytes == parted, "the multipart upload's bytes are served");
    assert_eq!(sha, hex::encode(root));
    assert_eq!(stored(&relay, &a.id.to_hex(), &doc), (1, 0));

    let log = relay.log();
    assert!(!log.contains("status=5"), "no server error:\n{log}");
}

/// A document stored before copies were named (its blob under the document's own name, no
/// copy in its row) is served by the relay that names copies, and erased whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_stored_before_copies_were_named_still_serves_and_erases() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut relay = Relay::start(&data, &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 23).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let owner = a.owner_device.clone();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 233) as u8).collect();
    let doc = hex::encode(a.random16());
    let (up, rest) = Streaming::start(&http, &owner, file, &doc, &bytes, 1000).await;
    let (st, v) = up.finish(rest).await;
    assert_eq!(st, 201, "{v}");
    relay.kill();
    // As the relay before migration 0012 left it.
    let name = data.join("blobs").join(a.id.to_hex()).join(&doc);
    let copy = std::fs::read_dir(&name)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let legacy = data.join("blobs").join("legacy");
    std::fs::rename(&copy, &legacy).unwrap();
    std::fs::remove_dir(&name).unwrap();
    std::fs::rename(&legacy, &name).unwrap();
    let db = rusqlite::Connection::open(data.join("relay.sqlite3")).unwrap();
    assert_eq!(
        db.execute("UPDATE documents SET blob = NULL", []).unwrap(),
        1
    );
    drop(db);

    relay = Relay::start(&data, &[]);
    let owner = Device {
        base: relay.base.clone(),
        ..owner
    };
    let (got, sha) = download(&http, &owner, file, &doc).await;
    assert!(got == bytes, "served from the old name");
    assert_eq!(sha, hex::encode(Sha256::digest(&bytes)));
    owner
        .ok(&http, "DELETE", &format!("/v1/files/{file}"), None)
        .await;
    assert!(!name.exists(), "erased");
}
