//! Chat end to end against the real relay (in process, real loopback HTTP): Olm sessions
//! from claimed prekeys, a room key shared over to-device, a late key, and a member removed
//! from the room who cannot read what follows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{now, start_relay};
use ledgerline_client_core::device::DeviceAccount;
use ledgerline_client_core::olm::OlmSessions;
use ledgerline_client_core::room::{OutboundRoom, Received, RoomEvent, RoomKey, Timeline};
use ledgerline_client_core::transport::{HttpTransport, RelayClient, RelayError};
use ledgerline_protocol::ids::{FirmId, MemberId};
use ledgerline_protocol::keys::MasterSigningKey;
use ledgerline_protocol::roster::{
    DeviceCertificate, EventBody, EventKind, Role, Roster, RosterEvent,
};
use rand_chacha::rand_core::SeedableRng;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn olm_room_keys_late_keys_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _stop) = start_relay(dir.path()).await;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let firm = FirmId::random(&mut rng);
    let (owner, owner_key) = (
        MemberId::random(&mut rng),
        MasterSigningKey::generate(&mut rng),
    );
    let (anna, anna_key) = (
        MemberId::random(&mut rng),
        MasterSigningKey::generate(&mut rng),
    );
    let a = DeviceAccount::generate(firm, &mut rng).unwrap();
    let mut b = DeviceAccount::generate(firm, &mut rng).unwrap();

    // Roster: genesis, the owner's device A; then Anna and her device B.
    let t = now();
    let mut events: Vec<RosterEvent> = Vec::new();
    let push = |signer: MemberId,
                key: &MasterSigningKey,
                kind: EventKind,
                events: &mut Vec<RosterEvent>| {
        let prev = events.last().map(RosterEvent::hash).unwrap_or([0; 32]);
        let e = EventBody {
            firm,
            seq: events.len() as u64,
            prev,
            timestamp_ms: t,
            signer,
            kind,
        }
        .sign(key);
        events.push(e);
    };
    push(
        owner,
        &owner_key,
        EventKind::Genesis {
            owner_key: owner_key.verifying_key(),
        },
        &mut events,
    );
    push(
        owner,
        &owner_key,
        EventKind::DeviceAdded(DeviceCertificate::issue(
            firm,
            owner,
            a.device(),
            a.keys(),
            &owner_key,
        )),
        &mut events,
    );
    let ca = RelayClient::new(HttpTransport::new(&base).unwrap(), firm, a.device());
    ca.create_firm(&events.iter().map(RosterEvent::to_bytes).collect::<Vec<_>>())
        .await
        .unwrap();
    push(
        owner,
        &owner_key,
        EventKind::MemberAdded {
            member: anna,
            master_key: anna_key.verifying_key(),
            role: Role::Member,
        },
        &mut events,
    );
    push(
        owner,
        &owner_key,
        EventKind::DeviceAdded(DeviceCertificate::issue(
            firm,
            anna,
            b.device(),
            b.keys(),
            &anna_key,
        )),
        &mut events,
    );
    for e in &events[2..] {
        ca.append_roster(&a, &e.to_bytes()).await.unwrap();
    }
    let cb = RelayClient::new(HttpTransport::new(&base).unwrap(), firm, b.device());

    // B verifies the roster it is given and publishes prekeys.
    let fetched: Vec<RosterEvent> = cb
        .roster(&b, 0)
        .await
        .unwrap()
        .iter()
        .map(|e| RosterEvent::from_bytes(e).unwrap())
        .collect();
    let roster = Roster::verify_chain(&fetched).unwrap();
    assert_eq!(roster.head(), events.last().unwrap().hash());
    let mut prekeys = b.new_one_time_keys(5);
    prekeys.extend(b.new_fallback_key());
    assert_eq!(cb.publish_prekeys(&b, &prekeys).await.unwrap(), 5);

    // A opens a room and sends two messages before anyone has the key.
    let room = [42u8; 16];
    ca.create_room(&a, room, None, &[owner, anna])
        .await
        .unwrap();
    let mut out = OutboundRoom::new(room, 0);
    for body in ["Dzień dobry, Pani Anno", "Proszę o fakturę korygującą"] {
        ca.send_message(
            &a,
            room,
            &out.encrypt(&RoomEvent::Text {
                body: body.into(),
                reply_to: None,
            }),
        )
        .await
        .unwrap();
    }
    let mut tb = Timeline::default();
    for m in cb.messages(&b, room, 1, 100).await.unwrap() {
        assert_eq!(
            tb.receive(room, m.seq, m.sender, &m.ciphertext).unwrap(),
            Received::Pending
        );
    }

    // A shares the key with exactly the room's devices, over Olm from a claimed prekey.
    let info = ca.room_info(&a, room).await.unwrap();
    let devices: BTreeSet<_> = info.devices.iter().copied().collect();
    assert_eq!(devices, BTreeSet::from([a.device(), b.device()]));
    let claimed = ca.claim_prekeys(&a, &[b.device()]).await.unwrap();
    let b_keys = &roster.device(&b.device()).unwrap().keys;
    let pk = claimed[&b.device()].clone().unwrap();
    pk.verify(firm, b.device(), &b_keys.signing).unwrap();
    let mut olm_a = OlmSessions::default();
    olm_a.open(&a, b_keys.identity, &pk).unwrap();
    let key = out.share(a.device(), &devices);
    let sealed = olm_a
        .encrypt(&b_keys.identity, &serde_json::to_vec(&key).unwrap())
        .unwrap();
    ca.send_to_device(&a, &[(b.device(), sealed)])
        .await
        .unwrap();

    // B receives it: the waiting messages decrypt, in order.
    let mut olm_b = OlmSessions::default();
    let inbox = cb.to_device(&b, 0).await.unwrap();
    assert_eq!(inbox.len(), 1);
    let sender_identity = roster.device(&inbox[0].sender).unwrap().keys.identity;
    let plain = olm_b
        .decrypt(&mut b, sender_identity, &inbox[0].ciphertext)
        .unwrap();
    let got: RoomKey = serde_json::from_slice(&plain).unwrap();
    let decrypted = tb.add_key(inbox[0].sender, &got).unwrap();
    let bodies: Vec<String> = decrypted
        .into_iter()
        .map(|d| match d.unwrap().event {
            RoomEvent::Text { body, .. } => body,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        bodies,
        vec!["Dzień dobry, Pani Anno", "Proszę o fakturę korygującą"]
    );
    cb.ack_to_device(&b, inbox[0].id).await.unwrap();
    assert!(cb.to_device(&b, 0).await.unwrap().is_empty());

    // Anna leaves the room: the relay refuses her, and the rotated session never reaches her.
    ca.set_room_members(&a, room, &[owner]).await.unwrap();
    let devices: BTreeSet<_> = ca
        .room_info(&a, room)
        .await
        .unwrap()
        .devices
        .into_iter()
        .collect();
    assert!(out.needs_rotation(&devices, 1));
    let mut out2 = OutboundRoom::new(room, 1);
    let _only_a = out2.share(a.device(), &devices);
    let seq = ca
        .send_message(
            &a,
            room,
            &out2.encrypt(&RoomEvent::Text {
                body: "po odejściu".into(),
                reply_to: None,
            }),
        )
        .await
        .unwrap();
    let refused = cb.messages(&b, room, 1, 100).await.unwrap_err();
    assert!(
        matches!(&refused, RelayError::Refused { status: 403, .. }),
        "{refused}"
    );
    // Even given the ciphertext (a relay helping her), her timeline cannot read it.
    let leaked = ca.messages(&a, room, seq, 1).await.unwrap().remove(0);
    assert_eq!(
        tb.receive(room, leaked.seq, leaked.sender, &leaked.ciphertext)
            .unwrap(),
        Received::Pending
    );
}
