//! Key backup and recovery routes (`protocol-spec/recovery.md`): what the relay accepts,
//! and every way it refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::recovery::{
    seal_item, sign_backup_key, ItemContext, ItemKind, RecoveryKey,
};
use ledgerline_protocol::roster::{EventKind, Role};
use rand_chacha::rand_core::SeedableRng;
use serde_json::{json, Value};

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_recovery_routes_accept_only_what_the_member_signed() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 31).await;
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let key = RecoveryKey::generate(&mut rng);
    let id = hex::encode(key.id());
    let sig = sign_backup_key(&anna.master, a.id, anna.id, &key.backup_key(), &key.id());
    let body = |sig: &[u8]| {
        json!({
            "recovery_id": id,
            "backup_key": hex::encode(key.backup_key().as_bytes()),
            "signature": hex::encode(sig),
        })
    };

    // Nothing yet: no key, items refused, the recovery id unknown.
    let (s, v) = anna_dev.call(&http, "GET", "/v1/backup/key", None).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = anna_dev
        .call(
            &http,
            "PUT",
            "/v1/backup/items",
            Some(json!({ "backup_key": hex::encode([7u8; 32]), "items": [] })),
        )
        .await;
    assert_eq!((s, code(&v)), (409, "backup_key_changed"), "{v}");
    let r = http
        .get(format!("{}/v1/recovery/{id}", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http
        .get(format!("{}/v1/recovery/zz", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // A key signed by someone else's master key (here: the owner's) is refused.
    let forged = sign_backup_key(&a.owner.master, a.id, anna.id, &key.backup_key(), &key.id());
    let (s, v) = anna_dev
        .call(&http, "PUT", "/v1/backup/key", Some(body(&forged)))
        .await;
    assert_eq!((s, code(&v)), (400, "bad_signature"), "{v}");
    let (s, v) = anna_dev
        .call(&http, "PUT", "/v1/backup/key", Some(body(&sig)))
        .await;
    assert_eq!(s, 204, "{v}");
    // The owner's device cannot put Anna's key id under the owner's member.
    let (s, v) = a
        .owner_device
        .call(&http, "PUT", "/v1/backup/key", Some(body(&sig)))
        .await;
    assert_eq!((s, code(&v)), (400, "bad_signature"), "{v}");

    // Items: bounded, typed, under the current key only; the identity item makes the
    // backup recoverable.
    let seal = |kind: ItemKind, item: &[u8], rng: &mut rand_chacha::ChaCha20Rng| {
        let ctx = ItemContext {
            firm: a.id,
            member: anna.id,
            kind,
            id: item,
        };
        seal_item(b"{}", &key.backup_key(), &ctx, rng)
    };
    let bk = hex::encode(key.backup_key().as_bytes());
    let room = seal(ItemKind::RoomKey, b"s1", &mut rng);
    for (items, want) in [
        (
            json!([{ "kind": 9, "id": "00", "sealed": hex::encode(&room) }]),
            "bad_item",
        ),
        (
            json!([{ "kind": 3, "id": "00".repeat(65), "sealed": hex::encode(&room) }]),
            "bad_item",
        ),
        (
            json!([{ "kind": 3, "id": "00", "sealed": "00" }]),
            "bad_item",
        ),
    ] {
        let (s, v) = anna_dev
            .call(
                &http,
                "PUT",
                "/v1/backup/items",
                Some(json!({ "backup_key": bk, "items": items })),
            )
            .await;
        assert_eq!((s, code(&v)), (400, want), "{v}");
    }
    let (s, v) = anna_dev
        .call(
            &http,
            "PUT",
            "/v1/backup/items",
            Some(json!({ "backup_key": bk, "items": [{ "kind": 3, "id": hex::encode(b"s1"), "sealed": hex::encode(&room) }] })),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let r = http
        .get(format!("{}/v1/recovery/{id}", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "no identity item yet");
    let identity = seal(ItemKind::Identity, b"", &mut rng);
    let (s, v) = anna_dev
        .call(
            &http,
            "PUT",
            "/v1/backup/items",
            Some(json!({ "backup_key": bk, "items": [{ "kind": 1, "id": "", "sealed": hex::encode(&identity) }] })),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    // Only Anna's member reads Anna's items.
    let (s, v) = anna_dev
        .call(&http, "GET", "/v1/backup/items?after=0", None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = a
        .owner_device
        .call(&http, "GET", "/v1/backup/items?after=0", None)
        .await;
    assert!(v["items"].as_array().unwrap().is_empty(), "{v}");

    let found: Value = http
        .get(format!("{}/v1/recovery/{id}", relay.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["member"], json!(anna.id), "{found}");
    assert_eq!(found["identity"], json!(hex::encode(&identity)));
    assert_eq!(
        found["roster"].as_array().unwrap().len() as u64,
        a.next_seq,
        "the whole roster"
    );

    // Self-certification: only a DeviceAdded of exactly the requesting device, for the
    // backup's member, signed by them, under the request signed by that device's key.
    let post = format!("/v1/recovery/{id}/device");
    let fresh = new_device(&mut a.rng, a.id, anna.id, &relay.base);
    let cases: Vec<(Value, &Device, u16, &str)> = {
        let mine = a.event(&anna, EventKind::DeviceAdded(certify(a.id, &anna, &fresh)));
        // (None is appended: each is refused.)
        let revoke = a.event(
            &anna,
            EventKind::DeviceRevoked {
                device: anna_dev.id,
            },
        );
        let by_owner = a.event(
            &a.owner_clone(),
            EventKind::DeviceAdded(certify(a.id, &anna, &fresh)),
        );
        vec![
            // Another kind of event.
            (
                json!({ "event": hex::encode(revoke.to_bytes()) }),
                &fresh,
                400,
                "bad_event",
            ),
            // Signed into the roster by someone else.
            (
                json!({ "event": hex::encode(by_owner.to_bytes()) }),
                &fresh,
                403,
                "forbidden",
            ),
            // Requested by another device than the one it adds (Anna's old one).
            (
                json!({ "event": hex::encode(mine.to_bytes()) }),
                &anna_dev,
                403,
                "forbidden",
            ),
        ]
    };
    for (body, dev, status, want) in &cases {
        let (s, v) = dev.call(&http, "POST", &post, Some(body.clone())).await;
        assert_eq!((s, code(&v)), (*status, *want), "{v}");
    }
    // A request whose signature is not the new device's key.
    let mut impostor = fresh.clone();
    impostor.key = ledgerline_protocol::keys::DeviceSigningKey::generate(&mut rng);
    let mine = a.event(&anna, EventKind::DeviceAdded(certify(a.id, &anna, &fresh)));
    let (s, v) = impostor
        .call(
            &http,
            "POST",
            &post,
            Some(json!({ "event": hex::encode(mine.to_bytes()) })),
        )
        .await;
    assert_eq!((s, code(&v)), (401, "bad_signature"), "{v}");
    // The real thing: appended, audited, and the new device is in.
    let (s, v) = fresh
        .call(
            &http,
            "POST",
            &post,
            Some(json!({ "event": hex::encode(mine.to_bytes()) })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = fresh.call(&http, "GET", "/v1/roster?since=0", None).await;
    assert_eq!(s, 200, "{v}");
    let listed = v["events"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(listed, a.next_seq + 1, "{v}");

    // A member who left cannot come back through their backup.
    a.next_seq += 1;
    a.head = mine.hash();
    let gone = a.event(
        &a.owner_clone(),
        EventKind::MemberRemoved { member: anna.id },
    );
    let owner_dev = a.owner_device.clone();
    a.append(&http, &owner_dev, gone).await;
    let r = http
        .get(format!("{}/v1/recovery/{id}", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_escrow_follows_the_firms_policy_and_reaches_only_admin_devices() {
    use ledgerline_protocol::recovery::{open_escrow, seal_escrow};
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 32).await;
    let (anna, anna_dev) = a.add_member(&http, Role::Member).await;
    let (_, bartek_dev) = a.add_member(&http, Role::Member).await;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
    let key = RecoveryKey::generate(&mut rng);
    let sig = sign_backup_key(&anna.master, a.id, anna.id, &key.backup_key(), &key.id());
    let bk = hex::encode(key.backup_key().as_bytes());
    let (s, v) = anna_dev
        .call(
            &http,
            "PUT",
            "/v1/backup/key",
            Some(json!({ "recovery_id": hex::encode(key.id()), "backup_key": bk, "signature": hex::encode(sig) })),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let owner = a.owner_device.clone();
    let sealed = seal_escrow(
        &key,
        &owner.wrap.public_key(),
        a.id,
        anna.id,
        owner.id,
        &mut rng,
    );
    let escrow = |device: &Device, sealed: &[u8]| json!({ "backup_key": bk, "entries": [{ "device": device.id, "sealed": hex::encode(sealed) }] });
    let get = format!("/v1/backup/escrow/{}", anna.id);
    // Policy off: neither stored nor handed out.
    let (s, v) = anna_dev
        .call(
            &http,
            "PUT",
            "/v1/backup/escrow",
            Some(escrow(&owner, &sealed)),
        )
        .await;
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    let (s, v) = owner.call(&http, "GET", &get, None).await;
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    // A member cannot turn it on; an admin can.
    let on = a.event(
        &anna,
        EventKind::RecoveryPolicySet {
            admin_assisted: true,
        },
    );
    let (s, v) = anna_dev
        .call(
            &http,
            "POST",
            "/v1/roster",
            Some(json!({ "event": hex::encode(on.to_bytes()) })),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "roster_rejected"), "{v}");
    let on = a.event(
        &a.owner_clone(),
        EventKind::RecoveryPolicySet {
            admin_assisted: true,
        },
    );
    a.append(&http, &owner, on).await;
    // Only for admin devices, only 81 bytes, only under the current key.
    let (s, v) = anna_dev
        .call(
            &http,
            "PUT",
            "/v1/backup/escrow",
            Some(escrow(&bartek_dev, &sealed)),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "unknown_device"), "{v}");
    let (s, v) = anna_dev
        .call(
            &http,
            "PUT",
            "/v1/backup/escrow",
            Some(escrow(&owner, &sealed[..40])),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "bad_item"), "{v}");
    let mut stale = escrow(&owner, &sealed);
    stale["backup_key"] = json!(hex::encode([9u8; 32]));
    let (s, v) = anna_dev
        .call(&http, "PUT", "/v1/backup/escrow", Some(stale))
        .await;
    assert_eq!((s, code(&v)), (409, "backup_key_changed"), "{v}");
    let (s, v) = anna_dev
        .call(
            &http,
            "PUT",
            "/v1/backup/escrow",
            Some(escrow(&owner, &sealed)),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    // Only admins fetch it, each their own device's entry; it opens there only.
    let (s, v) = bartek_dev.call(&http, "GET", &get, None).await;
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    let (s, v) = owner.call(&http, "GET", &get, None).await;
    assert_eq!(s, 200, "{v}");
    let got = hex::decode(v["sealed"].as_str().unwrap()).unwrap();
    let opened = open_escrow(&got, &owner.wrap, a.id, anna.id, owner.id).unwrap();
    assert_eq!(opened.as_bytes(), key.as_bytes());
    let second = a.add_device(&http, &a.owner_clone()).await;
    let (s, _) = second.call(&http, "GET", &get, None).await;
    assert_eq!(s, 404, "nothing was sealed to the admin's later device");
}
