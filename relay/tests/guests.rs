//! Guests (`protocol-spec/guests.md`): a customer bound to one file's conversation reaches
//! that conversation and its documents, and nothing else of the firm, over real HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::audit::AuditLeaf;
use ledgerline_protocol::document::CONVERSATION_EPOCH;
use ledgerline_protocol::ids::{DocumentId, FileId};
use ledgerline_protocol::roster::{conversation_room, EventKind, Role};
use serde_json::json;
use sha2::Digest;

/// Uploads 4 KiB under `epoch`; returns the status and the error code, if any.
async fn upload(
    http: &reqwest::Client,
    dev: &Device,
    file: FileId,
    doc: DocumentId,
    epoch: u64,
) -> (u16, Option<String>) {
    let share = [9u8; 32];
    let share_hash = hex::encode(sha2::Sha256::digest(share));
    let path = format!("/v1/files/{file}/documents/{doc}?epoch={epoch}&share_sha256={share_hash}");
    let mut s = dev.sign("PUT", &path, &[0x42u8; 4096]);
    s.headers
        .push(("ledgerline-release-share", hex::encode(share)));
    let (status, v) = dev.send(http, &s).await;
    (status, v["code"].as_str().map(str::to_owned))
}

async fn refused(
    http: &reqwest::Client,
    dev: &Device,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) {
    let (status, v) = dev.call(http, method, path, body).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("guest_forbidden")),
        "{method} {path}: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_reaches_their_conversation_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut firm = Firm::create(&http, &relay.base, 41).await;
    let (anna, anna_dev) = firm.add_member(&http, Role::Member).await;
    let (bartek, bartek_dev) = firm.add_member(&http, Role::Member).await;
    let (kowalski, other) = (FileId(firm.random16()), FileId(firm.random16()));
    firm.grant(&http, kowalski, anna.id).await;
    firm.grant(&http, other, bartek.id).await;
    let (guest, guest_dev) = firm.add_guest(&http, kowalski).await;

    // The staff room of the file (id = file id) exists; so does the other file's
    // conversation.
    anna_dev
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": kowalski.to_hex(), "file": kowalski })),
        )
        .await;
    let theirs = hex::encode(conversation_room(&firm.id, &other));
    bartek_dev
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": theirs, "file": other })),
        )
        .await;

    // A guest may open only their own conversation.
    let conv = hex::encode(conversation_room(&firm.id, &kowalski));
    refused(
        &http,
        &guest_dev,
        "POST",
        "/v1/rooms",
        Some(json!({ "room": hex::encode(firm.random16()), "file": kowalski })),
    )
    .await;
    refused(
        &http,
        &guest_dev,
        "POST",
        "/v1/rooms",
        Some(json!({ "room": theirs, "file": other })),
    )
    .await;
    refused(
        &http,
        &guest_dev,
        "POST",
        "/v1/rooms",
        Some(json!({ "room": hex::encode(firm.random16()), "members": [guest.id, anna.id] })),
    )
    .await;
    let (status, v) = anna_dev
        .call(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": hex::encode(firm.random16()), "members": [guest.id, anna.id] })),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("guest_member")),
        "staff cannot take a guest into an internal room"
    );
    guest_dev
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": conv, "file": kowalski })),
        )
        .await;
    // Its members: the file's staff and its guest; Bartek, without the file, is not.
    let v = anna_dev
        .ok(&http, "GET", &format!("/v1/rooms/{conv}"), None)
        .await;
    let members: Vec<String> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    assert!(members.contains(&guest.id.to_hex()) && members.contains(&anna.id.to_hex()));
    assert!(!members.contains(&bartek.id.to_hex()));
    assert!(v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d.as_str() == Some(&guest_dev.id.to_hex())));
    let (status, _) = bartek_dev
        .call(&http, "GET", &format!("/v1/rooms/{conv}"), None)
        .await;
    assert_eq!(status, 403);

    // Both sides write and read the conversation.
    for (dev, ct) in [(&anna_dev, "aa01"), (&guest_dev, "bb02")] {
        dev.ok(
            &http,
            "POST",
            &format!("/v1/rooms/{conv}/messages"),
            Some(json!({ "ciphertext": ct })),
        )
        .await;
    }
    assert_eq!(guest_dev.all_messages(&http, &conv).await.len(), 2);
    assert_eq!(anna_dev.all_messages(&http, &conv).await.len(), 2);
    // The staff room and the other conversation are closed to the guest.
    for room in [kowalski.to_hex(), theirs.clone()] {
        let (status, _) = guest_dev
            .call(
                &http,
                "GET",
                &format!("/v1/rooms/{room}/messages?from=1"),
                None,
            )
            .await;
        assert_eq!(status, 403, "room {room}");
        let (status, _) = guest_dev
            .call(
                &http,
                "POST",
                &format!("/v1/rooms/{room}/messages"),
                Some(json!({ "ciphertext": "cc" })),
            )
            .await;
        assert_eq!(status, 403, "room {room}");
    }

    // Everything that holds the file's internal work is refused by route.
    for (method, path) in [
        ("GET", format!("/v1/files/{kowalski}/records?since=0")),
        ("GET", format!("/v1/files/{kowalski}/epochs/keys")),
        ("GET", format!("/v1/files/{kowalski}/epochs/links")),
        ("GET", "/v1/devices/self/member-keys".to_owned()),
        ("GET", "/v1/teams/keys".to_owned()),
        ("GET", "/v1/audit/entries?from=0".to_owned()),
        ("GET", "/v1/backup/key".to_owned()),
        ("DELETE", format!("/v1/files/{kowalski}")),
    ] {
        refused(&http, &guest_dev, method, &path, None).await;
    }
    refused(
        &http,
        &guest_dev,
        "POST",
        "/v1/invites",
        Some(json!({ "invite": hex::encode(firm.random16()), "expires_ms": now_ms() + 60_000 })),
    )
    .await;

    // The log's head: a guest checks that their downloads are on the record.
    let (status, _) = guest_dev
        .call(&http, "GET", "/v1/audit/checkpoint", None)
        .await;
    assert_eq!(status, 200);

    // Olm messages and prekeys: with the people of the conversation only.
    let (status, v) = guest_dev
        .call(
            &http,
            "POST",
            "/v1/prekeys/claim",
            Some(json!({ "devices": [anna_dev.id] })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    refused(
        &http,
        &guest_dev,
        "POST",
        "/v1/prekeys/claim",
        Some(json!({ "devices": [bartek_dev.id] })),
    )
    .await;
    guest_dev
        .ok(
            &http,
            "POST",
            "/v1/to-device",
            Some(json!({ "messages": [{ "device": anna_dev.id, "ciphertext": "01" }] })),
        )
        .await;
    refused(
        &http,
        &guest_dev,
        "POST",
        "/v1/to-device",
        Some(json!({ "messages": [{ "device": bartek_dev.id, "ciphertext": "01" }] })),
    )
    .await;

    // Documents: the guest uploads into the conversation; Anna downloads it. A document of
    // the file's epochs stays out of the guest's reach, and so does the other file.
    let from_guest = DocumentId(firm.random16());
    assert_eq!(
        upload(&http, &guest_dev, kowalski, from_guest, CONVERSATION_EPOCH).await,
        (201, None)
    );
    let (status, _) = anna_dev
        .call(
            &http,
            "POST",
            &format!("/v1/files/{kowalski}/documents/{from_guest}/release"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, code) = upload(&http, &guest_dev, kowalski, DocumentId(firm.random16()), 0).await;
    assert_eq!((status, code.as_deref()), (403, Some("guest_forbidden")));
    let (status, code) = upload(
        &http,
        &guest_dev,
        other,
        DocumentId(firm.random16()),
        CONVERSATION_EPOCH,
    )
    .await;
    assert_eq!((status, code.as_deref()), (403, Some("guest_forbidden")));
    let internal = DocumentId(firm.random16());
    assert_eq!(
        upload(&http, &anna_dev, kowalski, internal, 0).await,
        (201, None)
    );
    let shared = DocumentId(firm.random16());
    assert_eq!(
        upload(&http, &anna_dev, kowalski, shared, CONVERSATION_EPOCH).await,
        (201, None)
    );
    refused(
        &http,
        &guest_dev,
        "GET",
        &format!("/v1/files/{kowalski}/documents/{internal}"),
        None,
    )
    .await;
    refused(
        &http,
        &guest_dev,
        "POST",
        &format!("/v1/files/{kowalski}/documents/{internal}/release"),
        None,
    )
    .await;
    let v = guest_dev
        .ok(
            &http,
            "POST",
            &format!("/v1/files/{kowalski}/documents/{shared}/release"),
            None,
        )
        .await;
    assert_eq!(v["epoch"].as_u64(), Some(CONVERSATION_EPOCH));
    // The conversation epoch is never a real one.
    let (status, v) = anna_dev
        .call(
            &http,
            "PUT",
            &format!("/v1/files/{kowalski}/epochs/{CONVERSATION_EPOCH}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 400, "{v}");

    // A guest may not be granted the file, even by the owner.
    let e = firm.event(
        &firm.owner_clone(),
        EventKind::FileAccessGranted {
            file: kowalski,
            member: guest.id,
        },
    );
    let owner_dev = firm.owner_device.clone();
    let (status, v) = owner_dev
        .call(
            &http,
            "POST",
            "/v1/roster",
            Some(json!({ "event": hex::encode(e.to_bytes()) })),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("roster_rejected")),
        "{v}"
    );

    // Every guest request is in the firm's log like any other: here the release.
    let log = owner_dev
        .ok(&http, "GET", "/v1/audit/entries?from=0&limit=1000", None)
        .await;
    let by_guest = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| AuditLeaf::from_bytes(&hex::decode(e.as_str().unwrap()).unwrap()).unwrap())
        .filter(|e| e.request.head.device == guest_dev.id)
        .map(|e| e.request.head.path.split('?').next().unwrap().to_owned())
        .collect::<Vec<_>>();
    for path in [
        "/v1/rooms".to_owned(),
        format!("/v1/rooms/{conv}/messages"),
        format!("/v1/files/{kowalski}/documents/{from_guest}"),
        format!("/v1/files/{kowalski}/documents/{shared}/release"),
    ] {
        assert!(
            by_guest.contains(&path),
            "{path} not in the log: {by_guest:?}"
        );
    }

    // Erasing the other file takes its conversation with it: `410 erased` from then on.
    let (status, _) = owner_dev
        .call(&http, "DELETE", &format!("/v1/files/{other}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, v) = bartek_dev
        .call(
            &http,
            "GET",
            &format!("/v1/rooms/{theirs}/messages?from=1"),
            None,
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (410, Some("erased")), "{v}");

    // Revoking the guest ends it at once.
    firm.clock += 1;
    let e = firm.event(
        &firm.owner_clone(),
        EventKind::MemberRemoved { member: guest.id },
    );
    firm.append(&http, &owner_dev, e).await;
    let (status, v) = guest_dev
        .call(
            &http,
            "GET",
            &format!("/v1/rooms/{conv}/messages?from=1"),
            None,
        )
        .await;
    assert_eq!((status, v["code"].as_str()), (401, Some("revoked_device")));
    let v = anna_dev
        .ok(&http, "GET", &format!("/v1/rooms/{conv}"), None)
        .await;
    assert!(!v["members"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m.as_str() == Some(&guest.id.to_hex())));
}
