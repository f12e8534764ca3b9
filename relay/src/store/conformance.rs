//! The contract every [`Store`] backend must meet. A backend's tests call
//! [`crate::store_conformance_tests!`] with an expression that builds a fresh, empty store
//! and a guard that keeps its resources alive.

// A test suite: failing loudly is its job.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;

const F: FirmId = FirmId([1; 16]);

/// A stand-in audit entry for writes (the store never interprets entries).
fn audit() -> AuditEntry {
    b"entry".to_vec()
}
const G: FirmId = FirmId([2; 16]);
const D1: DeviceId = DeviceId([11; 16]);
const D2: DeviceId = DeviceId([12; 16]);
const M1: MemberId = MemberId([21; 16]);
const M2: MemberId = MemberId([22; 16]);

async fn with_firms<S: Store>(s: &S) {
    s.create_firm(F, vec![b"genesis-f".to_vec()], 1)
        .await
        .expect("firm F");
    s.create_firm(G, vec![b"genesis-g".to_vec(), b"second".to_vec()], 1)
        .await
        .expect("firm G");
}

/// Firms and roster positions are unique; events come back in order.
pub async fn roster<S: Store>(s: S) {
    with_firms(&s).await;
    assert!(matches!(
        s.create_firm(F, vec![b"x".to_vec()], 2).await,
        Err(StoreError::Exists)
    ));
    assert_eq!(s.firms().await.expect("firms"), vec![F, G]);
    s.append_roster_event(F, 1, b"one".to_vec(), RotationDue::default(), audit())
        .await
        .expect("append");
    assert!(matches!(
        s.append_roster_event(F, 1, b"other".to_vec(), RotationDue::default(), audit())
            .await,
        Err(StoreError::Exists)
    ));
    assert_eq!(
        s.roster_events(F, 0).await.expect("events"),
        vec![b"genesis-f".to_vec(), b"one".to_vec()]
    );
    assert_eq!(
        s.roster_events(F, 1).await.expect("events"),
        vec![b"one".to_vec()]
    );
    assert_eq!(
        s.roster_events(G, 0).await.expect("events").len(),
        2,
        "firms are separate"
    );
}

/// One-time keys are handed out once each, then the fallback key, which stays.
pub async fn prekeys<S: Store>(s: S) {
    with_firms(&s).await;
    s.put_prekeys(
        F,
        D1,
        vec![
            (1, 1, b"otk1".to_vec()),
            (1, 2, b"otk2".to_vec()),
            (2, 9, b"fb1".to_vec()),
        ],
    )
    .await
    .expect("put");
    s.put_prekeys(F, D1, vec![(2, 10, b"fb2".to_vec())])
        .await
        .expect("replace fallback");
    assert_eq!(s.count_one_time_keys(F, D1).await.expect("count"), 2);
    let mut got = vec![
        s.claim_prekey(F, D1).await.expect("claim"),
        s.claim_prekey(F, D1).await.expect("claim"),
        s.claim_prekey(F, D1).await.expect("claim"),
        s.claim_prekey(F, D1).await.expect("claim"),
    ];
    got.sort();
    assert_eq!(
        got,
        vec![
            Some(b"fb2".to_vec()),
            Some(b"fb2".to_vec()),
            Some(b"otk1".to_vec()),
            Some(b"otk2".to_vec())
        ]
    );
    assert_eq!(
        s.claim_prekey(G, D1).await.expect("claim"),
        None,
        "firms are separate"
    );
    s.forget_device(F, D1).await.expect("forget");
    assert_eq!(s.claim_prekey(F, D1).await.expect("claim"), None);
}

/// To-device messages queue per recipient until acknowledged.
pub async fn to_device<S: Store>(s: S) {
    with_firms(&s).await;
    let ids = s
        .send_to_device(
            F,
            D1,
            vec![
                (D2, b"a".to_vec()),
                (D2, b"b".to_vec()),
                (D1, b"c".to_vec()),
            ],
            5,
        )
        .await
        .expect("send");
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let pending = s.pending_to_device(F, D2, 0, 10).await.expect("pending");
    assert_eq!(
        pending
            .iter()
            .map(|m| m.ciphertext.clone())
            .collect::<Vec<_>>(),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
    assert_eq!(pending[0].sender, D1);
    assert_eq!(
        s.pending_to_device(F, D2, pending[0].id, 10)
            .await
            .expect("after")
            .len(),
        1
    );
    assert_eq!(s.ack_to_device(F, D2, pending[0].id).await.expect("ack"), 1);
    assert_eq!(
        s.pending_to_device(F, D2, 0, 10)
            .await
            .expect("pending")
            .len(),
        1
    );
    assert!(s
        .pending_to_device(G, D2, 0, 10)
        .await
        .expect("other firm")
        .is_empty());
    s.forget_device(F, D2).await.expect("forget");
    assert!(s
        .pending_to_device(F, D2, 0, 10)
        .await
        .expect("pending")
        .is_empty());
    assert_eq!(
        s.pending_to_device(F, D1, 0, 10)
            .await
            .expect("pending")
            .len(),
        1
    );
}

/// Rooms number their messages from 1 without gaps and page by sequence number.
pub async fn rooms<S: Store>(s: S) {
    with_firms(&s).await;
    let room = Room {
        id: [7; 16],
        file: Some(FileId([8; 16])),
        created_by: M1,
        members: vec![],
    };
    s.create_room(F, room.clone(), audit()).await.expect("room");
    assert!(matches!(
        s.create_room(F, room.clone(), audit()).await,
        Err(StoreError::Exists)
    ));
    assert_eq!(s.room(F, [7; 16]).await.expect("get"), Some(room));
    assert_eq!(s.room(G, [7; 16]).await.expect("other firm"), None);
    let direct = Room {
        id: [9; 16],
        file: None,
        created_by: M1,
        members: vec![M1, MemberId([22; 16])],
    };
    s.create_room(F, direct.clone(), audit())
        .await
        .expect("direct");
    assert_eq!(s.room(F, [9; 16]).await.expect("get"), Some(direct.clone()));
    s.set_room_members(F, [9; 16], vec![MemberId([23; 16]), M1], audit())
        .await
        .expect("set members");
    let changed = s.room(F, [9; 16]).await.expect("get").expect("room");
    assert_eq!(changed.members, vec![M1, MemberId([23; 16])]);
    assert!(matches!(
        s.set_room_members(F, [5; 16], vec![M1], audit()).await,
        Err(StoreError::NotFound)
    ));
    for n in 1..=5u8 {
        assert_eq!(
            s.append_message(F, [7; 16], D1, vec![n], 10, audit())
                .await
                .expect("send"),
            u64::from(n)
        );
    }
    assert!(matches!(
        s.append_message(F, [6; 16], D1, vec![0], 10, audit()).await,
        Err(StoreError::NotFound)
    ));
    let page = s.messages(F, [7; 16], 2, 2).await.expect("page");
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(page[0].ciphertext, vec![2]);
    assert_eq!(s.room_next_seq(F, [7; 16]).await.expect("next"), 6);
    assert_eq!(s.room_next_seq(F, [9; 16]).await.expect("next"), 1);
    assert!(matches!(
        s.room_next_seq(F, [6; 16]).await,
        Err(StoreError::NotFound)
    ));
    // The room, the page and the room's next number in one read.
    let room = s.room(F, [7; 16]).await.expect("room").expect("exists");
    assert_eq!(
        s.message_page(F, [7; 16], 2, 2).await.expect("page"),
        Some((room, page, 6))
    );
    let (_, tail, next) = s
        .message_page(F, [7; 16], 5, 10)
        .await
        .expect("page")
        .expect("room");
    assert_eq!(
        (tail.iter().map(|m| m.seq).collect::<Vec<_>>(), next),
        (vec![5], 6)
    );
    let (_, empty, next) = s
        .message_page(F, [9; 16], 1, 10)
        .await
        .expect("empty")
        .expect("room");
    assert_eq!((empty, next), (vec![], 1));
    assert_eq!(s.message_page(F, [6; 16], 1, 10).await.expect("none"), None);
}

/// Records take version n+1 only; changes list by cursor.
pub async fn records<S: Store>(s: S) {
    with_firms(&s).await;
    let (file, r1, r2) = (FileId([3; 16]), RecordId([4; 16]), RecordId([5; 16]));
    let c1 = s
        .put_record(F, file, r1, 1, 0, D1, b"v1".to_vec(), 1, audit())
        .await
        .expect("v1");
    assert!(matches!(
        s.put_record(F, file, r1, 1, 0, D1, b"again".to_vec(), 1, audit())
            .await,
        Err(StoreError::VersionConflict { current: 1 })
    ));
    assert!(matches!(
        s.put_record(F, file, r1, 3, 0, D1, b"skip".to_vec(), 1, audit())
            .await,
        Err(StoreError::VersionConflict { current: 1 })
    ));
    let c2 = s
        .put_record(F, file, r2, 1, 0, D2, b"other".to_vec(), 1, audit())
        .await
        .expect("r2");
    let c3 = s
        .put_record(F, file, r1, 2, 0, D1, b"v2".to_vec(), 1, audit())
        .await
        .expect("v2");
    assert!(c1 < c2 && c2 < c3);
    let all = s.records_since(F, file, 0, 10).await.expect("since");
    assert_eq!(
        all.iter()
            .map(|r| (r.record, r.version))
            .collect::<Vec<_>>(),
        vec![(r2, 1), (r1, 2)]
    );
    assert_eq!(
        s.records_since(F, file, c2, 10).await.expect("since").len(),
        1
    );
    assert!(s
        .records_since(G, file, 0, 10)
        .await
        .expect("other firm")
        .is_empty());
}

/// Wrapped keys are stored per holder and version, links once per epoch.
pub async fn wrapped_keys<S: Store>(s: S) {
    with_firms(&s).await;
    let w = MemberKeyWrap {
        member: M1,
        key_version: 1,
        device: D1,
        wrapped: vec![1; 81],
    };
    s.put_member_key_wrap(F, w.clone(), audit())
        .await
        .expect("put");
    s.put_member_key_wrap(
        F,
        MemberKeyWrap {
            device: D2,
            ..w.clone()
        },
        audit(),
    )
    .await
    .expect("put");
    // Each write's cursor is the audit index of its entry; fetches are incremental.
    assert_eq!(
        s.member_key_wraps_for(F, D1, 0).await.expect("get"),
        vec![(0, w.clone())]
    );
    assert!(s
        .member_key_wraps_for(F, D1, 1)
        .await
        .expect("nothing new")
        .is_empty());
    assert!(s
        .member_key_wraps_for(G, D1, 0)
        .await
        .expect("other firm")
        .is_empty());
    let file = FileId([3; 16]);
    let e = EpochKeyWrap {
        epoch: 0,
        holder: Holder::Member(M1),
        holder_key_version: 1,
        wrapped: vec![2; 73],
    };
    s.put_epoch_key_wrap(F, file, e.clone(), audit())
        .await
        .expect("put");
    let e1 = EpochKeyWrap {
        epoch: 1,
        ..e.clone()
    };
    s.put_epoch_key_wrap(F, file, e1.clone(), audit())
        .await
        .expect("put");
    assert_eq!(
        s.epoch_key_wraps(F, file, Holder::Member(M1), 0)
            .await
            .expect("get"),
        vec![(2, e), (3, e1.clone())]
    );
    assert_eq!(
        s.epoch_key_wraps(F, file, Holder::Member(M1), 3)
            .await
            .expect("since"),
        vec![(3, e1.clone())]
    );
    // A replaced wrap comes again, under its new cursor.
    s.put_epoch_key_wrap(F, file, e1.clone(), audit())
        .await
        .expect("again");
    assert_eq!(
        s.epoch_key_wraps(F, file, Holder::Member(M1), 4)
            .await
            .expect("since"),
        vec![(4, e1)]
    );
    // Epoch 2 starts atomically: link and wraps, or nothing.
    let e2 = |member| EpochKeyWrap {
        epoch: 2,
        holder: Holder::Member(member),
        holder_key_version: 1,
        wrapped: vec![7; 73],
    };
    assert!(matches!(
        s.start_epoch(F, file, 3, vec![3; 73], vec![e2(M1)], audit())
            .await,
        Err(StoreError::VersionConflict { current: 1 })
    ));
    assert!(matches!(
        s.start_epoch(F, file, 2, vec![3; 73], vec![e2(M1), e2(M1)], audit())
            .await,
        Err(StoreError::Exists)
    ));
    assert!(s.epoch_links(F, file, 0).await.expect("links").is_empty());
    s.start_epoch(F, file, 2, vec![3; 73], vec![e2(M1), e2(M2)], audit())
        .await
        .expect("epoch 2");
    assert!(matches!(
        s.start_epoch(F, file, 2, vec![4; 73], vec![e2(M1)], audit())
            .await,
        Err(StoreError::Exists)
    ));
    assert_eq!(
        s.epoch_links(F, file, 0).await.expect("links"),
        vec![(5, 2, vec![3; 73])]
    );
    assert_eq!(
        s.epoch_key_wraps(F, file, Holder::Member(M2), 0)
            .await
            .expect("wraps"),
        vec![(5, e2(M2))]
    );
    // Writes use the newest epoch; after a revocation exposed the file, the next one.
    let rec = RecordId([9; 16]);
    let put =
        |version, epoch| s.put_record(F, file, rec, version, epoch, D1, b"r".to_vec(), 1, audit());
    assert!(matches!(
        put(1, 1).await,
        Err(StoreError::StaleEpoch {
            newest: 2,
            rotating: false
        })
    ));
    put(1, 2).await.expect("newest epoch");
    s.append_roster_event(
        F,
        1,
        b"revoked".to_vec(),
        RotationDue {
            files: vec![file],
            teams: vec![],
        },
        audit(),
    )
    .await
    .expect("event");
    assert!(matches!(
        put(2, 2).await,
        Err(StoreError::StaleEpoch { rotating: true, .. })
    ));
    s.start_epoch(
        F,
        file,
        3,
        vec![3; 73],
        vec![EpochKeyWrap { epoch: 3, ..e2(M1) }],
        audit(),
    )
    .await
    .expect("epoch 3");
    put(2, 3).await.expect("after the new epoch");
    assert_eq!(s.epoch_links(F, file, 6).await.expect("since").len(), 1);
    assert!(s.epoch_links(F, file, 100).await.expect("none").is_empty());
}

/// Team keys: versions stored whole and in order, single wraps only for the newest, wraps
/// found by holder and cursor; an epoch key wrapped for a team only under the team's newest
/// key, and never while a roster event has made its rotation due.
pub async fn team_keys<S: Store>(s: S) {
    with_firms(&s).await;
    let team = TeamId([4; 16]);
    let tw = |version, member| TeamKeyWrap {
        team,
        version,
        member,
        member_key_version: 1,
        wrapped: vec![version as u8; 73],
    };
    assert!(matches!(
        s.put_team_key_wrap(F, tw(1, M1), audit()).await,
        Err(StoreError::VersionConflict { current: 0 })
    ));
    assert!(matches!(
        s.put_team_key_version(F, team, 2, vec![tw(2, M1)], audit())
            .await,
        Err(StoreError::VersionConflict { current: 0 })
    ));
    assert!(matches!(
        s.put_team_key_version(F, team, 1, vec![tw(1, M1), tw(1, M1)], audit())
            .await,
        Err(StoreError::Exists)
    ));
    assert!(s
        .team_key_wraps_for(F, M1, 0)
        .await
        .expect("none")
        .is_empty());
    s.put_team_key_version(F, team, 1, vec![tw(1, M1)], audit())
        .await
        .expect("version 1");
    s.put_team_key_wrap(F, tw(1, M2), audit())
        .await
        .expect("M2 joins");
    assert_eq!(
        s.team_key_wraps_for(F, M1, 0).await.expect("M1"),
        vec![(0, tw(1, M1))]
    );
    assert_eq!(
        s.team_key_wraps_for(F, M2, 1).await.expect("M2"),
        vec![(1, tw(1, M2))]
    );
    assert!(s
        .team_key_wraps_for(G, M1, 0)
        .await
        .expect("other firm")
        .is_empty());
    // Epoch keys under the team key: the newest version only.
    let file = FileId([3; 16]);
    let ew = |epoch, version| EpochKeyWrap {
        epoch,
        holder: Holder::Team(team),
        holder_key_version: version,
        wrapped: vec![9; 73],
    };
    assert!(matches!(
        s.put_epoch_key_wrap(F, file, ew(0, 2), audit()).await,
        Err(StoreError::StaleTeamKey { team: t }) if t == team
    ));
    s.put_epoch_key_wrap(F, file, ew(0, 1), audit())
        .await
        .expect("under version 1");
    assert_eq!(
        s.epoch_key_wraps(F, file, Holder::Team(team), 0)
            .await
            .expect("team wraps"),
        vec![(2, ew(0, 1))]
    );
    assert!(
        s.epoch_key_wraps(F, file, Holder::Member(MemberId(team.0)), 0)
            .await
            .expect("member wraps")
            .is_empty(),
        "a team's wrap is not a member's with the same id"
    );
    // A member leaves the team: its key may wrap nothing until version 2 exists.
    s.append_roster_event(
        F,
        1,
        b"left the team".to_vec(),
        RotationDue {
            files: vec![file],
            teams: vec![team],
        },
        audit(),
    )
    .await
    .expect("event");
    let link = vec![5; 73];
    assert!(matches!(
        s.start_epoch(F, file, 1, link.clone(), vec![ew(1, 1)], audit())
            .await,
        Err(StoreError::StaleTeamKey { .. })
    ));
    s.put_team_key_version(F, team, 2, vec![tw(2, M1)], audit())
        .await
        .expect("version 2");
    assert!(
        matches!(
            s.start_epoch(F, file, 1, link.clone(), vec![ew(1, 1)], audit())
                .await,
            Err(StoreError::StaleTeamKey { .. })
        ),
        "not under the old version"
    );
    s.start_epoch(F, file, 1, link, vec![ew(1, 2)], audit())
        .await
        .expect("epoch 1 under version 2");
    assert_eq!(
        s.epoch_key_wraps(F, file, Holder::Team(team), 0)
            .await
            .expect("team wraps")
            .len(),
        2
    );
}

/// Documents, audit leaves, nonces and usage.
pub async fn documents_audit_nonces<S: Store>(s: S) {
    with_firms(&s).await;
    let meta = DocumentMeta {
        document: DocumentId([6; 16]),
        file: FileId([3; 16]),
        epoch: 2,
        size: 1000,
        sha256: [7; 32],
        release_share: [8; 32],
        uploaded_by: D1,
        year: 2020,
        blob: Some([5; 16]),
    };
    // A change and its audit entry commit together; a refused change logs nothing.
    s.put_document(F, meta.clone(), 1, b"put doc".to_vec())
        .await
        .expect("doc");
    assert!(matches!(
        s.put_document(F, meta.clone(), 1, b"refused".to_vec())
            .await,
        Err(StoreError::Exists)
    ));
    assert_eq!(
        s.audit_leaves(F, 0, 10).await.expect("leaves"),
        vec![b"put doc".to_vec()]
    );
    assert_eq!(
        s.document(F, meta.document).await.expect("get"),
        Some(meta.clone())
    );
    assert_eq!(
        s.document(G, meta.document).await.expect("other firm"),
        None
    );
    assert_eq!(
        s.append_audit_leaf(F, b"l1".to_vec()).await.expect("leaf"),
        1
    );
    assert_eq!(
        s.append_audit_leaf(F, b"l2".to_vec()).await.expect("leaf"),
        2
    );
    assert_eq!(
        s.append_audit_leaf(G, b"g0".to_vec()).await.expect("leaf"),
        0
    );
    assert_eq!(
        s.audit_leaves(F, 2, 10).await.expect("leaves"),
        vec![b"l2".to_vec()]
    );
    s.save_nonces(vec![(D1, [1; 16], 100), (D2, [2; 16], 10)], 50)
        .await
        .expect("save");
    assert_eq!(
        s.load_nonces(50).await.expect("load"),
        vec![(D1, [1; 16], 100)]
    );
    let usage = s.usage().await.expect("usage");
    assert_eq!(usage.audit_leaves, 4);
    assert!(usage.stored_bytes >= 1000);
}

/// The audit log's tree: roots, inclusion and consistency proofs that the protocol crate's
/// independent RFC 9162 verifiers accept, per firm, for every size up to 40 leaves.
pub async fn audit_tree<S: Store>(s: S) {
    use ledgerline_protocol::merkle;
    with_firms(&s).await;
    assert_eq!(s.audit_size(F).await.expect("size"), 0);
    assert_eq!(
        s.audit_root(F, 0).await.expect("root"),
        merkle::empty_root()
    );
    let mut hashes = Vec::new();
    for n in 0..40u64 {
        let leaf = format!("leaf {n}").into_bytes();
        assert_eq!(s.append_audit_leaf(F, leaf.clone()).await.expect("leaf"), n);
        // Another firm's log grows alongside and never mixes in.
        s.append_audit_leaf(G, b"other".to_vec()).await.expect("g");
        hashes.push(merkle::leaf_hash(&leaf));
    }
    assert_eq!(s.audit_size(F).await.expect("size"), 40);
    for size in 1..=40u64 {
        let root = s.audit_root(F, size).await.expect("root");
        assert_eq!(root, merkle::root(&hashes[..size as usize]), "root {size}");
        for index in [0, size / 2, size - 1] {
            let proof = s.audit_inclusion(F, index, size).await.expect("incl");
            merkle::verify_inclusion(&hashes[index as usize], index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("inclusion {index} in {size}: {e}"));
        }
        for old in [0, 1, size / 3, size - 1, size] {
            let old_root = s.audit_root(F, old).await.expect("old root");
            let proof = s.audit_consistency(F, old, size).await.expect("cons");
            merkle::verify_consistency(old, size, &old_root, &root, &proof)
                .unwrap_or_else(|e| panic!("consistency {old} → {size}: {e}"));
        }
    }
    // Beyond the log, or upside down: NotFound, never a proof.
    assert!(matches!(
        s.audit_root(F, 41).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.audit_inclusion(F, 40, 40).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.audit_consistency(F, 5, 41).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.audit_consistency(F, 6, 5).await,
        Err(StoreError::NotFound)
    ));
    // Cosigned checkpoints: the largest is the one served.
    assert_eq!(s.cosigned_checkpoint(F).await.expect("none"), None);
    s.put_cosigned_checkpoint(F, 7, b"seven".to_vec())
        .await
        .expect("7");
    s.put_cosigned_checkpoint(F, 9, b"nine".to_vec())
        .await
        .expect("9");
    s.put_cosigned_checkpoint(F, 8, b"eight".to_vec())
        .await
        .expect("8");
    assert_eq!(
        s.cosigned_checkpoint(F).await.expect("latest"),
        Some((9, b"nine".to_vec()))
    );
    assert_eq!(s.cosigned_checkpoint(G).await.expect("g"), None);
    assert_eq!(
        s.cosigned_checkpoints(F, 8, 10).await.expect("list"),
        vec![(8, b"eight".to_vec()), (9, b"nine".to_vec())]
    );
}

/// Invitation mailboxes: unique ids, bounded queues, deletion.
pub async fn invites<S: Store>(s: S) {
    with_firms(&s).await;
    s.create_invite(F, [8; 16], M1, 1000).await.expect("invite");
    assert!(matches!(
        s.create_invite(G, [8; 16], M1, 1000).await,
        Err(StoreError::Exists)
    ));
    assert_eq!(s.invite([8; 16]).await.expect("get"), Some((F, M1, 1000)));
    assert_eq!(s.invite([9; 16]).await.expect("get"), None);
    assert_eq!(
        s.add_join_request([8; 16], b"a".to_vec(), 5, 2)
            .await
            .expect("first"),
        1
    );
    assert_eq!(
        s.add_join_request([8; 16], b"b".to_vec(), 6, 2)
            .await
            .expect("second"),
        2
    );
    assert!(matches!(
        s.add_join_request([8; 16], b"c".to_vec(), 7, 2).await,
        Err(StoreError::Exists)
    ));
    assert_eq!(
        s.join_requests([8; 16]).await.expect("list"),
        vec![(1, b"a".to_vec(), 5), (2, b"b".to_vec(), 6)]
    );
    s.delete_invite([8; 16]).await.expect("delete");
    assert_eq!(s.invite([8; 16]).await.expect("get"), None);
    assert!(s.join_requests([8; 16]).await.expect("list").is_empty());
}

/// Multipart uploads: parts in order only, resumable state, one-transaction completion.
pub async fn uploads<S: Store>(s: S) {
    with_firms(&s).await;
    let doc = DocumentId([5; 16]);
    let session = UploadSession {
        document: doc,
        file: FileId([6; 16]),
        epoch: 2,
        release_share: [7; 32],
        size: 300,
        part_size: 128,
        uploaded_by: D1,
        year: 2020,
    };
    assert_eq!(s.upload(F, doc).await.expect("get"), None);
    s.begin_upload(F, session.clone(), 10).await.expect("begin");
    assert!(matches!(
        s.begin_upload(F, session.clone(), 11).await,
        Err(StoreError::Exists)
    ));
    // Another firm's upload of the same id is another upload.
    assert_eq!(s.upload(G, doc).await.expect("get"), None);
    s.add_upload_part(F, doc, 0, [1; 32]).await.expect("part 0");
    assert!(matches!(
        s.add_upload_part(F, doc, 2, [3; 32]).await,
        Err(StoreError::VersionConflict { current: 1 })
    ));
    assert!(matches!(
        s.add_upload_part(F, doc, 0, [1; 32]).await,
        Err(StoreError::VersionConflict { current: 1 })
    ));
    s.add_upload_part(F, doc, 1, [2; 32]).await.expect("part 1");
    assert_eq!(
        s.upload(F, doc).await.expect("get"),
        Some((session.clone(), vec![[1; 32], [2; 32]]))
    );
    s.truncate_upload(F, doc, 1).await.expect("truncate");
    assert_eq!(
        s.upload(F, doc).await.expect("get").expect("open").1,
        vec![[1; 32]]
    );
    s.add_upload_part(F, doc, 1, [2; 32])
        .await
        .expect("part 1 again");
    s.add_upload_part(F, doc, 2, [3; 32]).await.expect("part 2");
    let meta = DocumentMeta {
        document: doc,
        file: session.file,
        epoch: 2,
        size: 300,
        sha256: [9; 32],
        release_share: [7; 32],
        uploaded_by: D1,
        year: 2020,
        blob: None,
    };
    s.finish_upload(F, meta.clone(), 20, audit())
        .await
        .expect("finish");
    assert_eq!(s.upload(F, doc).await.expect("get"), None);
    assert_eq!(s.document(F, doc).await.expect("doc"), Some(meta.clone()));
    // Completing twice is refused (the document exists).
    s.begin_upload(F, session, 30).await.expect("begin again");
    assert!(matches!(
        s.finish_upload(F, meta, 31, audit()).await,
        Err(StoreError::Exists)
    ));
}

/// Erasing a file removes everything of it (and nothing of other files), logs once, and
/// names its documents for the blob store; it happens once.
pub async fn erasure<S: Store>(s: S) {
    with_firms(&s).await;
    let (file, other) = (FileId([3; 16]), FileId([9; 16]));
    for f in [file, other] {
        s.put_record(F, f, RecordId([4; 16]), 1, 0, D1, b"r".to_vec(), 1, audit())
            .await
            .expect("record");
        let meta = DocumentMeta {
            document: DocumentId([f.0[0]; 16]),
            file: f,
            epoch: 0,
            size: 10,
            sha256: [7; 32],
            release_share: [8; 32],
            uploaded_by: D1,
            year: 2020,
            blob: None,
        };
        s.put_document(F, meta, 1, audit()).await.expect("doc");
        // The file's customer conversation (`protocol-spec/guests.md`).
        let conversation = ledgerline_protocol::roster::conversation_room(&F, &f);
        let room = Room {
            id: conversation,
            file: Some(f),
            created_by: M1,
            members: vec![],
        };
        s.create_room(F, room, audit()).await.expect("room");
        s.append_message(F, conversation, D1, vec![1], 1, audit())
            .await
            .expect("message");
    }
    let before = s.audit_size(F).await.expect("size");
    let docs = s
        .erase_file(F, file, 5, b"erase".to_vec())
        .await
        .expect("erase");
    assert_eq!(docs, vec![DocumentId([3; 16])]);
    assert_eq!(s.audit_size(F).await.expect("size"), before + 1);
    assert!(s
        .records_since(F, file, 0, 10)
        .await
        .expect("records")
        .is_empty());
    assert_eq!(
        s.records_since(F, other, 0, 10)
            .await
            .expect("records")
            .len(),
        1
    );
    assert_eq!(s.document(F, DocumentId([3; 16])).await.expect("doc"), None);
    assert!(s
        .document(F, DocumentId([9; 16]))
        .await
        .expect("doc")
        .is_some());
    let talk = |f: &FileId| ledgerline_protocol::roster::conversation_room(&F, f);
    assert!(
        s.messages(F, talk(&file), 0, 10)
            .await
            .expect("m")
            .is_empty(),
        "the customer conversation goes with the file"
    );
    assert_eq!(
        s.messages(F, talk(&other), 0, 10).await.expect("m").len(),
        1
    );
    assert_eq!(s.erased_files(F).await.expect("erased"), vec![file]);
    assert!(s.erased_files(G).await.expect("erased").is_empty());
    assert!(matches!(
        s.erase_file(F, file, 6, b"again".to_vec()).await,
        Err(StoreError::Exists)
    ));
    assert_eq!(
        s.audit_size(F).await.expect("size"),
        before + 1,
        "a refused erasure logs nothing"
    );
}

/// A retention sweep deletes the file's old messages and old documents (in batches, lowest
/// ids first), logs each step that deleted something with the leaf built from what went,
/// logs nothing when nothing went, and leaves other files and erased files alone.
pub async fn retention_sweep<S: Store>(s: S) {
    with_firms(&s).await;
    let (file, other) = (FileId([3; 16]), FileId([9; 16]));
    for f in [file, other] {
        let room = Room {
            id: f.0,
            file: Some(f),
            created_by: M1,
            members: vec![],
        };
        s.create_room(F, room, audit()).await.expect("room");
        for t in [100, 200, 300] {
            s.append_message(F, f.0, D1, vec![1], t, audit())
                .await
                .expect("message");
        }
        for (n, year) in [(1u8, 2019), (2, 2020), (3, 2024)] {
            let meta = DocumentMeta {
                document: DocumentId([f.0[0] + n; 16]),
                file: f,
                epoch: 0,
                size: 10,
                sha256: [7; 32],
                release_share: [8; 32],
                uploaded_by: D1,
                year,
                blob: None,
            };
            s.put_document(F, meta, 1, audit()).await.expect("doc");
        }
    }
    // The file's customer conversation: one old message, one new.
    let conversation = ledgerline_protocol::roster::conversation_room(&F, &file);
    let room = Room {
        id: conversation,
        file: Some(file),
        created_by: M1,
        members: vec![],
    };
    s.create_room(F, room, audit()).await.expect("room");
    for t in [150, 400] {
        s.append_message(F, conversation, D1, vec![1], t, audit())
            .await
            .expect("message");
    }
    let plan = SweepPlan {
        file,
        chat_before_ms: Some(250),
        docs_through_year: Some(2020),
        max_documents: 1,
    };
    let leaf = |tag: &'static [u8]| -> SweepLeaf {
        Box::new(move |sw: &Swept| [tag, &sw.messages.to_be_bytes()].concat())
    };
    let before = s.audit_size(F).await.expect("size");
    let first = s.sweep_file(F, plan, leaf(b"one")).await.expect("sweep");
    assert_eq!(
        (first.messages, first.through_seq, first.chat_before_ms),
        (3, 2, 250),
        "two of the staff room, one of the conversation"
    );
    assert_eq!(
        first.documents,
        vec![SweptDocument {
            document: DocumentId([4; 16]),
            year: 2019
        }]
    );
    assert_eq!(s.audit_size(F).await.expect("size"), before + 1);
    let logged = s.audit_leaves(F, before, 1).await.expect("leaves");
    assert_eq!(logged, vec![[&b"one"[..], &3u64.to_be_bytes()].concat()]);
    let talk = s.messages(F, conversation, 0, 10).await.expect("messages");
    assert_eq!(
        talk.iter().map(|m| m.created_ms).collect::<Vec<_>>(),
        vec![400]
    );
    let left = s.messages(F, file.0, 0, 10).await.expect("messages");
    assert_eq!(
        left.iter().map(|m| m.created_ms).collect::<Vec<_>>(),
        vec![300]
    );
    let second = s
        .sweep_file(
            F,
            SweepPlan {
                chat_before_ms: None,
                ..plan
            },
            leaf(b"two"),
        )
        .await
        .expect("sweep");
    assert_eq!(second.messages, 0);
    assert_eq!(second.documents.len(), 1);
    assert_eq!(s.document(F, DocumentId([5; 16])).await.expect("doc"), None);
    assert!(s
        .document(F, DocumentId([6; 16]))
        .await
        .expect("doc")
        .is_some());
    // Nothing left to delete: nothing is logged.
    let none = s.sweep_file(F, plan, leaf(b"three")).await.expect("sweep");
    assert_eq!(none, Swept::default());
    assert_eq!(s.audit_size(F).await.expect("size"), before + 2);
    // The other file was not touched.
    assert_eq!(s.messages(F, other.0, 0, 10).await.expect("m").len(), 3);
    assert!(s
        .document(F, DocumentId([10; 16]))
        .await
        .expect("doc")
        .is_some());
    // An erased file is not swept (and not logged).
    s.erase_file(F, other, 5, audit()).await.expect("erase");
    let size = s.audit_size(F).await.expect("size");
    let erased = s
        .sweep_file(
            F,
            SweepPlan {
                file: other,
                ..plan
            },
            leaf(b"four"),
        )
        .await
        .expect("sweep");
    assert_eq!(erased, Swept::default());
    assert_eq!(s.audit_size(F).await.expect("size"), size);
}

/// One backup key per member; a new key drops the old items; items are immutable, paged
/// in order, only under the current key; recovery ids are unique and find their member.
pub async fn key_backup<S: Store>(s: S) {
    with_firms(&s).await;
    let key = |n: u8| BackupKey {
        recovery_id: [n; 16],
        key: [n; 32],
        signature: [n; 64],
    };
    let item = |kind: u8, id: &[u8], sealed: u8| BackupItem {
        kind,
        item: id.to_vec(),
        sealed: vec![sealed; 60],
    };
    assert_eq!(s.backup_key(F, M1).await.expect("none"), None);
    assert!(matches!(
        s.put_backup_items(F, M1, [1; 32], vec![item(3, b"s1", 1)])
            .await,
        Err(StoreError::NotFound)
    ));
    s.put_backup_key(F, M1, key(1), audit()).await.expect("key");
    assert_eq!(s.backup_key(F, M1).await.expect("key"), Some(key(1)));
    assert_eq!(
        s.backup_by_recovery_id([1; 16]).await.expect("by id"),
        Some((F, M1, key(1)))
    );
    assert!(matches!(
        s.put_backup_key(G, M2, key(1), audit()).await,
        Err(StoreError::Exists)
    ));
    s.put_backup_items(F, M1, [1; 32], vec![item(1, b"", 1), item(3, b"s1", 1)])
        .await
        .expect("items");
    // The same item again is ignored; a new one is added after.
    s.put_backup_items(F, M1, [1; 32], vec![item(3, b"s1", 9), item(3, b"s2", 2)])
        .await
        .expect("items");
    assert!(matches!(
        s.put_backup_items(F, M1, [2; 32], vec![item(3, b"s3", 3)])
            .await,
        Err(StoreError::NotFound)
    ));
    let all = s.backup_items(F, M1, 0, 100).await.expect("items");
    let got: Vec<(u8, Vec<u8>, u8)> = all
        .iter()
        .map(|(_, i)| (i.kind, i.item.clone(), i.sealed[0]))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, vec![], 1),
            (3, b"s1".to_vec(), 1),
            (3, b"s2".to_vec(), 2)
        ]
    );
    assert_eq!(
        s.backup_item(F, M1, 3, b"s1".to_vec()).await.expect("item"),
        Some(vec![1; 60])
    );
    assert_eq!(
        s.backup_item(F, M1, 3, b"s9".to_vec()).await.expect("none"),
        None
    );
    let first = s.backup_items(F, M1, 0, 2).await.expect("page");
    assert_eq!(first.len(), 2);
    let rest = s.backup_items(F, M1, first[1].0, 2).await.expect("page");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.item, b"s2".to_vec());
    assert!(s
        .backup_items(G, M1, 0, 100)
        .await
        .expect("other firm")
        .is_empty());
    // Escrow: per admin device, under the current key only.
    assert!(matches!(
        s.put_escrow(F, M1, [2; 32], vec![(D1, vec![1; 80])]).await,
        Err(StoreError::NotFound)
    ));
    s.put_escrow(F, M1, [1; 32], vec![(D1, vec![1; 80]), (D2, vec![2; 80])])
        .await
        .expect("escrow");
    assert_eq!(
        s.escrow(F, M1, D2).await.expect("escrow"),
        Some(vec![2; 80])
    );
    assert_eq!(s.escrow(F, M2, D2).await.expect("none"), None);
    // The same key again keeps the items and the escrow; a new key drops both and frees
    // the old id.
    s.put_backup_key(F, M1, key(1), audit())
        .await
        .expect("same");
    assert!(s.escrow(F, M1, D1).await.expect("kept").is_some());
    assert_eq!(s.backup_items(F, M1, 0, 100).await.expect("kept").len(), 3);
    s.put_backup_key(F, M1, key(2), audit()).await.expect("new");
    assert!(s
        .backup_items(F, M1, 0, 100)
        .await
        .expect("dropped")
        .is_empty());
    assert_eq!(s.escrow(F, M1, D1).await.expect("dropped"), None);
    assert_eq!(
        s.backup_by_recovery_id([1; 16]).await.expect("old id"),
        None
    );
    assert_eq!(
        s.backup_by_recovery_id([2; 16]).await.expect("new id"),
        Some((F, M1, key(2)))
    );
}

/// Runs the conformance suite against a backend: `store_conformance_tests!(make())` where
/// `make()` is an async expression yielding `(fresh store, guard)`; the guard (e.g. a
/// temporary directory) lives until the test ends.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn conformance_roster() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::roster(store).await;
        }
        #[tokio::test]
        async fn conformance_prekeys() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::prekeys(store).await;
        }
        #[tokio::test]
        async fn conformance_to_device() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::to_device(store).await;
        }
        #[tokio::test]
        async fn conformance_rooms() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::rooms(store).await;
        }
        #[tokio::test]
        async fn conformance_records() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::records(store).await;
        }
        #[tokio::test]
        async fn conformance_wrapped_keys() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::wrapped_keys(store).await;
        }
        #[tokio::test]
        async fn conformance_team_keys() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::team_keys(store).await;
        }
        #[tokio::test]
        async fn conformance_uploads() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::uploads(store).await;
        }
        #[tokio::test]
        async fn conformance_invites() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::invites(store).await;
        }
        #[tokio::test]
        async fn conformance_audit_tree() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::audit_tree(store).await;
        }
        #[tokio::test]
        async fn conformance_retention_sweep() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::retention_sweep(store).await;
        }
        #[tokio::test]
        async fn conformance_key_backup() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::key_backup(store).await;
        }
        #[tokio::test]
        async fn conformance_erasure() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::erasure(store).await;
        }
        #[tokio::test]
        async fn conformance_documents_audit_nonces() {
            let (store, _guard) = $make.await;
            $crate::store::conformance::documents_audit_nonces(store).await;
        }
    };
}
