//! Founding a firm, inviting, joining and approving, against the real relay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{now, start_relay};
use ledgerline_client_core::device::DeviceAccount;
use ledgerline_client_core::onboarding::{
    approve, check_inviter, found_firm, joiner_fingerprint, open_join_request, seal_join_request,
    Admit, OnboardingError,
};
use ledgerline_client_core::transport::{HttpTransport, RelayClient, RelayError};
use ledgerline_protocol::ids::{FirmId, MemberId};
use ledgerline_protocol::invite::Invite;
use ledgerline_protocol::keys::MasterSigningKey;
use ledgerline_protocol::roster::{Role, Roster, RosterEvent};
use rand_chacha::rand_core::SeedableRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_invite_join_approve() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _stop) = start_relay(dir.path()).await;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);

    // The owner founds the firm.
    let firm = FirmId::random(&mut rng);
    let (owner, owner_key) = (
        MemberId::random(&mut rng),
        MasterSigningKey::generate(&mut rng),
    );
    let owner_dev = DeviceAccount::generate(firm, &mut rng).unwrap();
    let events = found_firm(owner, &owner_key, &owner_dev, now());
    let admin = RelayClient::new(HttpTransport::new(&base).unwrap(), firm, owner_dev.device());
    admin
        .create_firm(&events.iter().map(RosterEvent::to_bytes).collect::<Vec<_>>())
        .await
        .unwrap();

    // …and invites Anna; the code goes to her out of band.
    let invite = Invite::generate(&owner_key.verifying_key(), &mut rng);
    admin
        .create_invite(&owner_dev, invite.id(), now() + 86_400_000)
        .await
        .unwrap();
    let code = invite.code();

    // Anna joins with only the relay URL and the code.
    let anna_invite = Invite::parse(&code).unwrap();
    let anon = RelayClient::new(
        HttpTransport::new(&base).unwrap(),
        FirmId([0; 16]),
        ledgerline_protocol::ids::DeviceId([0; 16]),
    );
    let anna_firm = anon.invite_firm(anna_invite.id()).await.unwrap();
    assert_eq!(anna_firm, firm);
    let (anna, anna_key) = (
        MemberId::random(&mut rng),
        MasterSigningKey::generate(&mut rng),
    );
    let anna_dev = DeviceAccount::generate(anna_firm, &mut rng).unwrap();
    let sealed = seal_join_request(
        &anna_invite,
        anna,
        &anna_key,
        &anna_dev,
        "Anna Nowak",
        &mut rng,
    );
    anon.post_join_request(anna_invite.id(), &sealed)
        .await
        .unwrap();
    let told = joiner_fingerprint(&anna_key); // read out on the phone
    let anna_client = RelayClient::new(HttpTransport::new(&base).unwrap(), firm, anna_dev.device());
    let before = anna_client.roster(&anna_dev, 0).await.unwrap_err();
    assert!(
        matches!(&before, RelayError::Refused { status: 401, code, .. } if code == "unknown_device"),
        "{before}"
    );

    // The owner opens the request, compares fingerprints and approves.
    let requests = admin.join_requests(&owner_dev, invite.id()).await.unwrap();
    assert_eq!(requests.len(), 1);
    let join = open_join_request(&invite, firm, &requests[0]).unwrap();
    assert_eq!(join.request.name, "Anna Nowak");
    let roster = Roster::verify_chain(&events).unwrap();
    let wrong = approve(
        &join,
        "0000 0000 0000 0000 0000",
        &roster,
        owner,
        &owner_key,
        Admit::Member(Role::Member),
        now(),
    );
    assert!(matches!(
        wrong,
        Err(OnboardingError::FingerprintMismatch { .. })
    ));
    for e in approve(
        &join,
        &told,
        &roster,
        owner,
        &owner_key,
        Admit::Member(Role::Member),
        now(),
    )
    .unwrap()
    {
        admin
            .append_roster(&owner_dev, &e.to_bytes())
            .await
            .unwrap();
    }

    // Anna's device is now in the roster; she checks the inviter's fingerprint in it.
    let fetched: Vec<RosterEvent> = anna_client
        .roster(&anna_dev, 0)
        .await
        .unwrap()
        .iter()
        .map(|e| RosterEvent::from_bytes(e).unwrap())
        .collect();
    let seen = Roster::verify_chain(&fetched).unwrap();
    check_inviter(&seen, &anna_invite.inviter()).unwrap();
    assert!(seen.device_active_at(&anna_dev.device(), now() + 5_000));
    // A roster of another firm would not pass her check.
    let stranger = MasterSigningKey::generate(&mut rng);
    let other_dev = DeviceAccount::generate(FirmId([9; 16]), &mut rng).unwrap();
    let other =
        Roster::verify_chain(&found_firm(MemberId([9; 16]), &stranger, &other_dev, now())).unwrap();
    assert!(matches!(
        check_inviter(&other, &anna_invite.inviter()),
        Err(OnboardingError::InviterNotFound(_))
    ));
    // A request sealed for another invitation, or certified for another firm, is refused.
    let other_invite = Invite::generate(&owner_key.verifying_key(), &mut rng);
    assert_eq!(
        open_join_request(&other_invite, firm, &requests[0]).err(),
        Some(OnboardingError::WrongInvite)
    );
    assert_eq!(
        open_join_request(&invite, FirmId([9; 16]), &requests[0]).err(),
        Some(OnboardingError::BadCertificate)
    );
}
