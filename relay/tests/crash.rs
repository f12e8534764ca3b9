//! Crash safety: kill -9 the relay at random moments under write load, twenty times; after
//! each restart the audit log's checkpoint is signed by the same key and consistent with
//! the one before, and at the end every acknowledged message, record and document is
//! present, every acknowledged write's signed request is in the audit log, and the log's
//! entries hash to the root the relay signed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::audit::LogEntry;
use ledgerline_protocol::checkpoint::{open_checkpoint, Checkpoint};
use ledgerline_protocol::ids::{DocumentId, FileId, RecordId};
use ledgerline_protocol::keys::{EpochKey, VerifyingKey};
use ledgerline_protocol::merkle::{leaf_hash, root, verify_consistency};
use ledgerline_protocol::record::{seal_record, RecordHeader};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};
use sha2::Digest;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: u32 = 20;

/// What the writers got acknowledged.
#[derive(Default)]
struct Acked {
    messages: Vec<(u64, String)>,
    records: Vec<RecordId>,
    documents: Vec<(DocumentId, Vec<u8>)>,
    /// The signature (hex) of every acknowledged request.
    signatures: Vec<String>,
}

/// The relay's checkpoint, opened under the pinned key, and consistent with `before`.
async fn checkpoint(
    http: &reqwest::Client,
    owner: &Device,
    origin: &str,
    key: &VerifyingKey,
    before: Option<&Checkpoint>,
) -> Checkpoint {
    let v = owner.ok(http, "GET", "/v1/audit/checkpoint", None).await;
    let cp = open_checkpoint(v["checkpoint"].as_str().unwrap().as_bytes(), origin, key)
        .unwrap_or_else(|e| panic!("checkpoint after a restart: {e}"));
    if let Some(old) = before.filter(|o| o.size() > 0) {
        assert!(cp.size() >= old.size(), "the log shrank");
        let v = owner
            .ok(
                http,
                "GET",
                &format!("/v1/audit/consistency?from={}&to={}", old.size(), cp.size()),
                None,
            )
            .await;
        verify_consistency(
            old.size(),
            cp.size(),
            old.root(),
            cp.root(),
            &proof_hashes(&v["proof"]),
        )
        .unwrap_or_else(|e| panic!("log of {} not consistent after kill -9: {e}", cp.size()));
    }
    cp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--rate-per-second", "100000", "--rate-burst", "100000"];
    let mut relay = Relay::start(&data, &args);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 41).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let mut owner = a.owner_device.clone();
    let room = hex::encode(a.random16());
    owner
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": [a.owner.id] })),
        )
        .await;
    // Pinned on first contact, like a client.
    let v = owner.ok(&http, "GET", "/v1/audit/checkpoint", None).await;
    let origin = v["origin"].as_str().unwrap().to_owned();
    let key = VerifyingKey::from_bytes(
        &hex::decode(v["log_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let mut last = checkpoint(&http, &owner, &origin, &key, None).await;
    let epoch_key = EpochKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
    let acked: Arc<Mutex<Acked>> = Arc::new(Mutex::new(Acked::default()));
    let mut chaos = rand_chacha::ChaCha20Rng::seed_from_u64(7);

    for round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for w in 0..6u32 {
            let (owner, room, acked, http) =
                (owner.clone(), room.clone(), acked.clone(), http.clone());
            let key = epoch_key.clone();
            let firm = a.id;
            tasks.push(tokio::spawn(async move {
                let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(round * 100 + w));
                for i in 0..100_000u32 {
                    let send = |s: Signed| {
                        let http = http.clone();
                        let base = owner.base.clone();
                        async move {
                            tokio::time::timeout(Duration::from_secs(5), try_send(&http, &base, &s))
                                .await
                                .ok()
                                .flatten()
                        }
                    };
                    let result = if i % 4 == 0 {
                        let mut id = [0u8; 16];
                        rng.fill_bytes(&mut id);
                        let record = RecordId(id);
                        let header = RecordHeader {
                            firm,
                            file,
                            record,
                            epoch: 0,
                            version: 1,
                            author: owner.id,
                        };
                        let env = seal_record(&header, &key, &owner.key, b"crash test", &mut rng)
                            .unwrap();
                        let body =
                            serde_json::to_vec(&json!({ "envelope": hex::encode(env.to_bytes()) }))
                                .unwrap();
                        let s =
                            owner.sign("PUT", &format!("/v1/files/{file}/records/{record}"), &body);
                        let sig = s.signature();
                        match send(s).await {
                            Some((200, _)) => {
                                let mut a = acked.lock().unwrap();
                                a.records.push(record);
                                a.signatures.push(sig);
                                true
                            }
                            _ => false,
                        }
                    } else if i % 16 == 1 {
                        let mut id = [0u8; 16];
                        rng.fill_bytes(&mut id);
                        let doc = DocumentId(id);
                        let mut blob = vec![0u8; 4096];
                        rng.fill_bytes(&mut blob);
                        let share = [9u8; 32];
                        let share_hash = hex::encode(sha2::Sha256::digest(share));
                        let path = format!(
                            "/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}"
                        );
                        let mut s = owner.sign("PUT", &path, &blob);
                        s.headers
                            .push(("ledgerline-release-share", hex::encode(share)));
                        let sig = s.signature();
                        match send(s).await {
                            Some((201, _)) => {
                                let mut a = acked.lock().unwrap();
                                a.documents.push((doc, blob));
                                a.signatures.push(sig);
                                true
                            }
                            _ => false,
                        }
                    } else {
                        let ct = format!("{round:02x}{w:02x}{i:08x}");
                        let body = serde_json::to_vec(&json!({ "ciphertext": ct })).unwrap();
                        let s = owner.sign("POST", &format!("/v1/rooms/{room}/messages"), &body);
                        let sig = s.signature();
                        match send(s).await {
                            Some((200, v)) => {
                                let mut a = acked.lock().unwrap();
                                a.messages.push((v["seq"].as_u64().unwrap(), ct));
                                a.signatures.push(sig);
                                true
                            }
                            _ => false,
                        }
                    };
                    if !result {
                        break;
                    }
                }
            }));
        }
        // Kill at a random moment.
        tokio::time::sleep(Duration::from_millis(150 + chaos.next_u64() % 400)).await;
        relay.kill();
        for t in tasks {
            t.await.unwrap();
        }
        relay = Relay::start(&data, &args);
        owner.base = relay.base.clone();
        // The same log, grown: signed by the pinned key, consistent with the last one.
        last = checkpoint(&http, &owner, &origin, &key, Some(&last)).await;
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.messages.len() > 100,
        "too little load: {}",
        acked.messages.len()
    );
    assert!(!acked.documents.is_empty(), "no document acknowledged");
    let stored = owner.all_messages(&http, &room).await;
    for (seq, ct) in &acked.messages {
        assert_eq!(
            stored.get(seq),
            Some(ct),
            "acknowledged message {seq} lost after kill -9"
        );
    }
    let mut have = HashSet::new();
    let mut since = 0;
    loop {
        let v: Value = owner
            .ok(
                &http,
                "GET",
                &format!("/v1/files/{file}/records?since={since}&limit=500"),
                None,
            )
            .await;
        let list = v["records"].as_array().unwrap().clone();
        if list.is_empty() {
            break;
        }
        for r in &list {
            have.insert(r["record"].as_str().unwrap().to_owned());
        }
        since = v["next"].as_u64().unwrap();
    }
    for r in &acked.records {
        assert!(
            have.contains(&r.to_hex()),
            "acknowledged record {r} lost after kill -9"
        );
    }
    for (doc, blob) in &acked.documents {
        let s = owner.sign("GET", &format!("/v1/files/{file}/documents/{doc}"), b"");
        let r = http
            .get(format!("{}/v1/files/{file}/documents/{doc}", owner.base))
            .headers(
                s.headers
                    .iter()
                    .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                    .collect(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "acknowledged document {doc} lost after kill -9"
        );
        assert!(
            r.bytes().await.unwrap()[..] == blob[..],
            "document {doc} changed"
        );
    }

    // The whole log: its entries hash to the root the relay signed, and every acknowledged
    // write's signed request is one of them.
    let last = checkpoint(&http, &owner, &origin, &key, Some(&last)).await;
    let entries = owner.audit_entries(&http, last.size()).await;
    let leaves: Vec<[u8; 32]> = entries.iter().map(|e| leaf_hash(e)).collect();
    assert_eq!(
        &root(&leaves),
        last.root(),
        "the entries hash to the signed root"
    );
    let logged: HashSet<String> = entries
        .iter()
        .filter_map(|e| match LogEntry::from_bytes(e).unwrap() {
            LogEntry::Request(l) => Some(hex::encode(l.request.signature)),
            LogEntry::Sweep(_) => None,
        })
        .collect();
    for sig in &acked.signatures {
        assert!(
            logged.contains(sig),
            "an acknowledged write is not in the audit log"
        );
    }
    println!(
        "{ROUNDS} kill -9 rounds: {} messages, {} records, {} documents acknowledged, all present; audit log of {} entries verified",
        acked.messages.len(),
        acked.records.len(),
        acked.documents.len(),
        last.size()
    );
}
