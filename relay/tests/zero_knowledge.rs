//! Zero knowledge: run a full scenario with known plaintext markers and known private keys,
//! then scan every file the relay wrote (SQLite database, WAL, shared memory, blobs) and its
//! log. None of those bytes may appear, in raw or hex form.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::document::{document_key, encrypt_document, DocumentContext};
use ledgerline_protocol::ids::{DocumentId, FileId, RecordId};
use ledgerline_protocol::keys::{EpochKey, MemberKey, ReleaseShare};
use ledgerline_protocol::record::{seal_record, RecordHeader};
use ledgerline_protocol::roster::Role;
use ledgerline_protocol::wrap::{
    wrap_epoch_key, wrap_member_key, EpochKeyContext, Holder, MemberKeyContext,
};
use rand_chacha::rand_core::SeedableRng;
use serde_json::json;
use sha2::Digest;
use std::path::Path;

const NOTE: &str = "ZKMARKER-notatka: Kowalski sp. z o.o. zalega z VAT-7 za 03/2026";
const FILE_NAME: &str = "ZKMARKER-VAT-7 03-2026 Kowalski.pdf";
const CHAT: &str = "ZKMARKER-czat: prosze o korekte faktury FV/12/2026";
const DOC: &str = "ZKMARKER-dokument: Faktura VAT nr FV/12/2026, NIP 5260250274";

fn files_under(p: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files_under(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn scan(dir: &Path, log: &str, secrets: &[(&str, Vec<u8>)]) -> Vec<String> {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    assert!(files
        .iter()
        .any(|f| f.to_string_lossy().ends_with("relay.sqlite3")));
    let mut found = Vec::new();
    let mut contents: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .collect();
    contents.push(("relay log".into(), log.as_bytes().to_vec()));
    for (name, secret) in secrets {
        let forms = [
            secret.clone(),
            hex::encode(secret).into_bytes(),
            hex::encode_upper(secret).into_bytes(),
        ];
        for (file, bytes) in &contents {
            if forms.iter().any(|f| find(bytes, f)) {
                found.push(format!("{name} found in {file}"));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_files_and_log_hold_no_plaintext_and_no_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut relay = Relay::start(&data, &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 31).await;
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let owner = a.owner_device.clone();
    let file = FileId(a.random16());
    a.grant(&http, file, anna.id).await;
    a.grant(&http, file, a.owner.id).await;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(99);

    // Keys, wrapped for the relay.
    let member_key = MemberKey::generate(&mut rng);
    let epoch_key = EpochKey::generate(&mut rng);
    let w = wrap_member_key(
        &member_key,
        &anna_dev.wrap.public_key(),
        &MemberKeyContext {
            firm: a.id,
            member: anna.id,
            device: anna_dev.id,
            key_version: 1,
        },
        &mut rng,
    );
    owner
        .ok(
            &http,
            "PUT",
            &format!("/v1/members/{}/keys/1/{}", anna.id, anna_dev.id),
            Some(json!({ "wrapped": hex::encode(w) })),
        )
        .await;
    let ew = wrap_epoch_key(
        &epoch_key,
        &member_key,
        &EpochKeyContext {
            firm: a.id,
            file,
            epoch: 0,
            holder: Holder::Member(anna.id),
            holder_key_version: 1,
        },
        &mut rng,
    );
    owner
        .ok(
            &http,
            "PUT",
            &format!("/v1/files/{file}/epochs/0/keys/{}", anna.id),
            Some(json!({ "holder_key_version": 1, "wrapped": hex::encode(ew) })),
        )
        .await;

    // A note record, and a document manifest holding the file name.
    for (i, text) in [
        NOTE,
        &format!("{{\"kind\":\"document\",\"name\":\"{FILE_NAME}\"}}"),
    ]
    .iter()
    .enumerate()
    {
        let record = RecordId(a.random16());
        let header = RecordHeader {
            firm: a.id,
            file,
            record,
            epoch: 0,
            version: 1,
            author: anna_dev.id,
        };
        let env = seal_record(
            &header,
            &epoch_key,
            &anna_dev.key,
            text.as_bytes(),
            &mut rng,
        )
        .unwrap();
        anna_dev
            .ok(
                &http,
                "PUT",
                &format!("/v1/files/{file}/records/{record}"),
                Some(json!({ "envelope": hex::encode(env.to_bytes()) })),
            )
            .await;
        assert!(i < 2);
    }
    // A chat message (encrypted as the client will; Megolm arrives with the client core).
    let room = hex::encode(a.random16());
    owner
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "file": file })),
        )
        .await;
    let chat = seal_record(
        &RecordHeader {
            firm: a.id,
            file,
            record: RecordId(a.random16()),
            epoch: 0,
            version: 1,
            author: owner.id,
        },
        &epoch_key,
        &owner.key,
        CHAT.as_bytes(),
        &mut rng,
    )
    .unwrap();
    owner
        .ok(
            &http,
            "POST",
            &format!("/v1/rooms/{room}/messages"),
            Some(json!({ "ciphertext": hex::encode(chat.to_bytes()) })),
        )
        .await;
    // A document.
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
    let plaintext = DOC.repeat(3000).into_bytes();
    let blob = encrypt_document(&dk, &plaintext, &mut rng);
    let path = format!(
        "/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={}",
        hex::encode(sha2::Sha256::digest(share.expose()))
    );
    let mut s = anna_dev.sign("PUT", &path, &blob);
    s.headers
        .push(("ledgerline-release-share", hex::encode(share.expose())));
    assert_eq!(anna_dev.send(&http, &s).await.0, 201);
    owner
        .ok(
            &http,
            "POST",
            &format!("/v1/files/{file}/documents/{doc}/release"),
            None,
        )
        .await;

    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("note plaintext", NOTE.as_bytes().to_vec()),
        ("file name", FILE_NAME.as_bytes().to_vec()),
        ("chat plaintext", CHAT.as_bytes().to_vec()),
        ("document plaintext", DOC.as_bytes().to_vec()),
        ("marker", b"ZKMARKER".to_vec()),
        ("owner master key", a.owner.master.to_bytes().to_vec()),
        ("anna master key", anna.master.to_bytes().to_vec()),
        ("owner device key", owner.key.to_bytes().to_vec()),
        ("anna device key", anna_dev.key.to_bytes().to_vec()),
        ("anna wrap secret", anna_dev.wrap.to_bytes().to_vec()),
        ("member key", member_key.expose().to_vec()),
        ("epoch key", epoch_key.expose().to_vec()),
        ("document key", dk.expose().to_vec()),
    ];
    // While running (the WAL holds recent writes)...
    let found = scan(&data, &relay.log(), &secrets);
    assert!(found.is_empty(), "{found:#?}");
    // ...and after a graceful stop (the WAL checkpointed into the database).
    assert_eq!(relay.stop(), Some(0));
    let found = scan(&data, &relay.log(), &secrets);
    assert!(found.is_empty(), "{found:#?}");
    // The scan itself must be able to fail: the release share is meant to be on the relay.
    let own = scan(&data, "", &[("release share", share.expose().to_vec())]);
    assert!(
        !own.is_empty(),
        "the scanner did not find bytes that are stored on purpose"
    );
}
