//! Crash safety: kill -9 the relay at random moments under write load; after each restart
//! every acknowledged message and record is present.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::ids::{FileId, RecordId};
use ledgerline_protocol::keys::EpochKey;
use ledgerline_protocol::record::{seal_record, RecordHeader};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let epoch_key = EpochKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
    let acked_msgs: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let acked_recs: Arc<Mutex<Vec<RecordId>>> = Arc::new(Mutex::new(Vec::new()));
    let mut chaos = rand_chacha::ChaCha20Rng::seed_from_u64(7);

    for round in 0..5u32 {
        let mut tasks = Vec::new();
        for w in 0..6u32 {
            let (owner, room, msgs, recs, http) = (
                owner.clone(),
                room.clone(),
                acked_msgs.clone(),
                acked_recs.clone(),
                http.clone(),
            );
            let key = epoch_key.clone();
            let firm = a.id;
            tasks.push(tokio::spawn(async move {
                let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(round * 100 + w));
                for i in 0..100_000u32 {
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
                        match tokio::time::timeout(
                            Duration::from_secs(5),
                            try_send(&http, &owner.base, &s),
                        )
                        .await
                        {
                            Ok(Some((200, _))) => {
                                recs.lock().unwrap().push(record);
                                true
                            }
                            _ => false,
                        }
                    } else {
                        let ct = format!("{round:02x}{w:02x}{i:08x}");
                        let body = serde_json::to_vec(&json!({ "ciphertext": ct })).unwrap();
                        let s = owner.sign("POST", &format!("/v1/rooms/{room}/messages"), &body);
                        match tokio::time::timeout(
                            Duration::from_secs(5),
                            try_send(&http, &owner.base, &s),
                        )
                        .await
                        {
                            Ok(Some((200, v))) => {
                                msgs.lock().unwrap().push((v["seq"].as_u64().unwrap(), ct));
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
    }

    let acked = acked_msgs.lock().unwrap().clone();
    assert!(acked.len() > 100, "too little load: {}", acked.len());
    let stored = owner.all_messages(&http, &room).await;
    for (seq, ct) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(ct),
            "acknowledged message {seq} lost after kill -9"
        );
    }
    let recs = acked_recs.lock().unwrap().clone();
    let mut have = std::collections::HashSet::new();
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
    for r in &recs {
        assert!(
            have.contains(&r.to_hex()),
            "acknowledged record {r} lost after kill -9"
        );
    }
    println!(
        "5 kill -9 rounds: {} messages and {} records acknowledged, all present",
        acked.len(),
        recs.len()
    );
}
