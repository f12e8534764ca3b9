//! The audit log over real HTTP: signed checkpoints under a pinned per-firm log key,
//! release shares that come with the proof of their own entry, consistency across growth
//! and restarts, entries for admins only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::audit::AuditLeaf;
use ledgerline_protocol::checkpoint::{cosign_as_device, open_checkpoint, Checkpoint};
use ledgerline_protocol::ids::{DocumentId, FileId};
use ledgerline_protocol::keys::{DeviceSigningKey, VerifyingKey};
use ledgerline_protocol::merkle::{verify_consistency, verify_inclusion};
use ledgerline_protocol::roster::{EventKind, Role};
use serde_json::json;
use serde_json::Value;
use sha2::Digest;

/// What a client pins on first contact.
struct Pinned {
    origin: String,
    key: VerifyingKey,
}

impl Pinned {
    fn open(&self, note: &Value) -> Checkpoint {
        open_checkpoint(note.as_str().unwrap().as_bytes(), &self.origin, &self.key)
            .unwrap_or_else(|e| panic!("checkpoint: {e}"))
    }
}

async fn upload(http: &reqwest::Client, dev: &Device, file: FileId, doc: DocumentId) {
    let share = [9u8; 32];
    let share_hash = hex::encode(sha2::Sha256::digest(share));
    let blob = vec![0x42u8; 4096];
    let path = format!("/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}");
    let mut s = dev.sign("PUT", &path, &blob);
    s.headers
        .push(("ledgerline-release-share", hex::encode(share)));
    let (status, v) = dev.send(http, &s).await;
    assert_eq!(status, 201, "{v}");
}

/// Releases `doc` and checks everything the answer proves; returns (index, checkpoint).
async fn release(
    http: &reqwest::Client,
    dev: &Device,
    pinned: &Pinned,
    file: FileId,
    doc: DocumentId,
) -> (u64, Checkpoint) {
    let s = dev.sign(
        "POST",
        &format!("/v1/files/{file}/documents/{doc}/release"),
        b"",
    );
    let (status, v) = dev.send(http, &s).await;
    assert_eq!(status, 200, "{v}");
    let index = v["audit_index"].as_u64().unwrap();
    let entry = hex::decode(v["entry"].as_str().unwrap()).unwrap();
    let leaf = AuditLeaf::from_bytes(&entry).unwrap();
    // The entry holds exactly the request this device signed.
    assert_eq!(hex::encode(leaf.request.signature), s.signature());
    assert_eq!(leaf.request.head.device, dev.id);
    let cp = pinned.open(&v["checkpoint"]);
    assert!(cp.size() > index);
    verify_inclusion(
        &leaf.leaf_hash(),
        index,
        cp.size(),
        &proof_hashes(&v["inclusion"]),
        cp.root(),
    )
    .unwrap_or_else(|e| panic!("inclusion of {index} in {}: {e}", cp.size()));
    (index, cp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_come_with_proof_and_the_log_stays_consistent_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut relay = Relay::start(&data, &["--log-name", "relay.biuro.example"]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 21).await;
    let (anna, mut anna_dev) = a.add_member(&http, Role::Member).await;
    let mut owner = a.owner_device.clone();
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    a.grant(&http, file, anna.id).await;
    let doc = DocumentId(a.random16());
    upload(&http, &owner, file, doc).await;

    // Pin the log on first contact; the empty log has the empty root.
    let v = owner.ok(&http, "GET", "/v1/audit/checkpoint", None).await;
    let origin = format!("relay.biuro.example/ledgerline/firm/{}", a.id.to_hex());
    assert_eq!(v["origin"], origin);
    let key_bytes: [u8; 32] = hex::decode(v["log_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let pinned = Pinned {
        origin,
        key: VerifyingKey::from_bytes(&key_bytes).unwrap(),
    };
    let first = pinned.open(&v["checkpoint"]);
    // The grants and the upload are in the log already.
    let s0 = first.size();
    assert!(s0 >= 3, "{s0}");

    let (i0, cp0) = release(&http, &owner, &pinned, file, doc).await;
    let (i1, _) = release(&http, &anna_dev, &pinned, file, doc).await;
    let (i2, cp2) = release(&http, &owner, &pinned, file, doc).await;
    assert_eq!((i0, i1, i2), (s0, s0 + 1, s0 + 2));

    // Consistency from an older checkpoint to a newer one.
    let v = anna_dev
        .ok(
            &http,
            "GET",
            &format!(
                "/v1/audit/consistency?from={}&to={}",
                cp0.size(),
                cp2.size()
            ),
            None,
        )
        .await;
    verify_consistency(
        cp0.size(),
        cp2.size(),
        cp0.root(),
        cp2.root(),
        &proof_hashes(&v["proof"]),
    )
    .unwrap();

    // Entries: for admins (and auditors), not for members.
    let v = owner
        .ok(
            &http,
            "GET",
            &format!("/v1/audit/entries?from={}&limit=10", s0 + 1),
            None,
        )
        .await;
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let second =
        AuditLeaf::from_bytes(&hex::decode(entries[0].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(second.request.head.device, anna_dev.id);
    let (status, v) = anna_dev.call(&http, "GET", "/v1/audit/entries", None).await;
    assert_eq!(status, 403, "{v}");

    // Questions beyond the log are refused, not answered with a made-up proof.
    for path in [
        format!("/v1/audit/inclusion?index={0}&size={0}", s0 + 3),
        format!("/v1/audit/inclusion?index=0&size={}", s0 + 4),
        format!("/v1/audit/consistency?from=2&to={}", s0 + 4),
        "/v1/audit/consistency?from=3&to=2".to_owned(),
    ] {
        let (status, v) = owner.call(&http, "GET", &path, None).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (400, Some("beyond_log")),
            "{path}"
        );
    }

    // A restart keeps the log key (pinned clients still verify) and the log.
    relay.kill();
    relay = Relay::start(&data, &["--log-name", "relay.biuro.example"]);
    owner.base = relay.base.clone();
    anna_dev.base = relay.base.clone();
    let v = owner.ok(&http, "GET", "/v1/audit/checkpoint", None).await;
    let after = pinned.open(&v["checkpoint"]);
    assert_eq!((after.size(), after.root()), (cp2.size(), cp2.root()));
    let (i3, cp3) = release(&http, &anna_dev, &pinned, file, doc).await;
    assert_eq!(i3, s0 + 3);
    let v = owner
        .ok(
            &http,
            "GET",
            &format!(
                "/v1/audit/consistency?from={}&to={}",
                cp2.size(),
                cp3.size()
            ),
            None,
        )
        .await;
    verify_consistency(
        cp2.size(),
        cp3.size(),
        cp2.root(),
        cp3.root(),
        &proof_hashes(&v["proof"]),
    )
    .unwrap();

    // The owner's device witnesses a checkpoint; a member's device may not; a forged
    // cosignature is refused; the witnessed checkpoint is served to everyone.
    let v = owner.ok(&http, "GET", "/v1/audit/checkpoint", None).await;
    let note = v["checkpoint"].as_str().unwrap().to_owned();
    let cosigned = |dev: &Device| {
        String::from_utf8(
            cosign_as_device(note.as_bytes(), &dev.firm, &dev.id, &dev.key, 1_780_000_000).unwrap(),
        )
        .unwrap()
    };
    let hand_in = |dev: &Device, note: String| {
        let (dev, http) = (dev.clone(), http.clone());
        async move {
            dev.call(
                &http,
                "POST",
                "/v1/audit/cosignatures",
                Some(json!({ "checkpoint": note })),
            )
            .await
        }
    };
    let (status, v) = hand_in(&anna_dev, cosigned(&anna_dev)).await;
    assert_eq!(status, 403, "{v}");
    let mut forged = cosigned(&owner);
    forged.insert(note.len() + 10, 'A');
    let (status, v) = hand_in(&owner, forged).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("bad_cosignature")),
        "{v}"
    );
    let (status, v) = hand_in(&owner, cosigned(&owner)).await;
    assert_eq!(status, 201, "{v}");
    let v = anna_dev
        .ok(&http, "GET", "/v1/audit/checkpoint", None)
        .await;
    assert_eq!(v["cosigned"].as_str().unwrap(), cosigned(&owner));
    let v = anna_dev
        .ok(&http, "GET", "/v1/audit/cosignatures?from_size=0", None)
        .await;
    assert_eq!(v["checkpoints"].as_array().unwrap().len(), 1);

    // Openings from a device's local store: a real room of the firm, a time not in the
    // future; the entry is the device's own signed words.
    let room = hex::encode(a.random16());
    owner
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "file": file })),
        )
        .await;
    let (status, v) = anna_dev
        .call(
            &http,
            "POST",
            &format!("/v1/audit/opened?room={room}&at={}", now_ms() - 60_000),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let index = v["audit_index"].as_u64().unwrap();
    let v = owner
        .ok(
            &http,
            "GET",
            &format!("/v1/audit/entries?from={index}"),
            None,
        )
        .await;
    let leaf =
        AuditLeaf::from_bytes(&hex::decode(v["entries"][0].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(leaf.request.head.device, anna_dev.id);
    assert!(leaf.request.head.path.starts_with("/v1/audit/opened?room="));
    for (path, want) in [
        (
            format!("/v1/audit/opened?room={}&at=1", "00".repeat(16)),
            404,
        ),
        (
            format!("/v1/audit/opened?room={room}&at={}", now_ms() + 3_600_000),
            400,
        ),
        (format!("/v1/audit/opened?room={room}"), 400),
    ] {
        let (status, v) = anna_dev.call(&http, "POST", &path, None).await;
        assert_eq!(status, want, "{path}: {v}");
    }

    // Another firm on the same relay: its own log, origin and key.
    let b = Firm::create(&http, &relay.base, 22).await;
    let v = b
        .owner_device
        .ok(&http, "GET", "/v1/audit/checkpoint", None)
        .await;
    assert_eq!(v["size"], 0);
    assert_ne!(v["log_key"].as_str().unwrap(), hex::encode(key_bytes));
    assert!(open_checkpoint(
        v["checkpoint"].as_str().unwrap().as_bytes(),
        &pinned.origin,
        &pinned.key
    )
    .is_err());

    // The secret the keys come from is the relay's own, readable by it alone.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("log-key.secret"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "log secret mode {mode:o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_relays_own_log_key_can_be_recorded_in_the_roster() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 23).await;
    let owner = a.owner_device.clone();
    let v = owner.ok(&http, "GET", "/v1/audit/checkpoint", None).await;
    let key_bytes: [u8; 32] = hex::decode(v["log_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let pinned = Pinned {
        origin: v["origin"].as_str().unwrap().to_owned(),
        key: VerifyingKey::from_bytes(&key_bytes).unwrap(),
    };
    // An admin records the log key in the roster; only the relay's own key is accepted.
    let owner_person = a.owner_clone();
    let wrong = a.event(
        &owner_person,
        EventKind::LogKeySet {
            key: DeviceSigningKey::generate(&mut rand_core::OsRng).verifying_key(),
        },
    );
    let (status, body) = owner
        .call(
            &http,
            "POST",
            "/v1/roster",
            Some(serde_json::json!({ "event": hex::encode(wrong.to_bytes()) })),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("wrong_log_key")),
        "{body}"
    );
    let right = a.event(&owner_person, EventKind::LogKeySet { key: pinned.key });
    a.append(&http, &owner, right).await;
    // And a member may not record one at all.
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let by_anna = a.event(&anna, EventKind::LogKeySet { key: pinned.key });
    let (status, body) = anna_dev
        .call(
            &http,
            "POST",
            "/v1/roster",
            Some(serde_json::json!({ "event": hex::encode(by_anna.to_bytes()) })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}
