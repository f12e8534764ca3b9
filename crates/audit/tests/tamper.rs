//! Bundles built from real signatures (roster, device requests, log key, witness), then
//! tampered with one way at a time: each tampering is a distinct finding that names where.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ledgerline_audit::{
    AuditError, Header, Line, Options, Row, Summary, Verifier, Witness, FORMAT,
};
use ledgerline_protocol::audit::{AuditLeaf, RetentionSweep, SweptDocument};
use ledgerline_protocol::checkpoint::{cosign, Checkpoint};
use ledgerline_protocol::ids::{DeviceId, DocumentId, FileId, FirmId, MemberId};
use ledgerline_protocol::keys::{
    DeviceSigningKey, DeviceWrapSecret, LogSigningKey, MasterSigningKey, WitnessSigningKey,
};
use ledgerline_protocol::merkle;
use ledgerline_protocol::request::RequestHead;
use ledgerline_protocol::retention::RetentionPolicy;
use ledgerline_protocol::roster::{
    DeviceCertificate, DeviceKeys, EventBody, EventKind, Role, RosterEvent,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const T0: u64 = 1_780_000_000_000;
const ORIGIN: &str = "relay.example/ledgerline/firm/test";

struct World {
    rng: ChaCha20Rng,
    firm: FirmId,
    events: Vec<RosterEvent>,
    devices: Vec<(DeviceId, DeviceSigningKey)>,
    log_key: LogSigningKey,
    witness: WitnessSigningKey,
    leaves: Vec<Vec<u8>>,
    owner: (MemberId, MasterSigningKey),
    anna: (MemberId, MasterSigningKey),
}

impl World {
    /// The owner (device 0) and Anna (device 1); Anna's device is revoked at T0 + 50 s.
    fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let firm = FirmId::random(&mut rng);
        let owner = (
            MemberId::random(&mut rng),
            MasterSigningKey::generate(&mut rng),
        );
        let anna = (
            MemberId::random(&mut rng),
            MasterSigningKey::generate(&mut rng),
        );
        let mut w = Self {
            firm,
            events: Vec::new(),
            devices: Vec::new(),
            log_key: LogSigningKey::generate(&mut rng),
            witness: WitnessSigningKey::generate(&mut rng),
            leaves: Vec::new(),
            rng,
            owner: owner.clone(),
            anna: anna.clone(),
        };
        w.event(
            &owner,
            T0,
            EventKind::Genesis {
                owner_key: owner.1.verifying_key(),
            },
        );
        w.device(&owner, T0);
        w.event(
            &owner,
            T0 + 1,
            EventKind::MemberAdded {
                member: anna.0,
                master_key: anna.1.verifying_key(),
                role: Role::Member,
            },
        );
        w.device(&anna, T0 + 2);
        let anna_dev = w.devices[1].0;
        w.event(
            &owner,
            T0 + 50_000,
            EventKind::DeviceRevoked { device: anna_dev },
        );
        w
    }

    fn event(&mut self, signer: &(MemberId, MasterSigningKey), t: u64, kind: EventKind) {
        let prev = self.events.last().map(RosterEvent::hash).unwrap_or([0; 32]);
        let e = EventBody {
            firm: self.firm,
            seq: self.events.len() as u64,
            prev,
            timestamp_ms: t,
            signer: signer.0,
            kind,
        }
        .sign(&signer.1);
        self.events.push(e);
    }

    fn device(&mut self, owner_of: &(MemberId, MasterSigningKey), t: u64) {
        let id = DeviceId::random(&mut self.rng);
        let key = DeviceSigningKey::generate(&mut self.rng);
        let keys = DeviceKeys {
            signing: key.verifying_key(),
            identity: [7; 32],
            wrap: DeviceWrapSecret::generate(&mut self.rng).public_key(),
        };
        let cert = DeviceCertificate::issue(self.firm, owner_of.0, id, keys, &owner_of.1);
        // The owner adds every device.
        let owner = self.owner.clone();
        self.event(&owner, t, EventKind::DeviceAdded(cert));
        self.devices.push((id, key));
    }

    /// A leaf of device `d` asking `method path` at `t` (received 5 ms later).
    fn leaf(&mut self, d: usize, method: &str, path: &str, t: u64) -> Vec<u8> {
        let (id, key) = &self.devices[d];
        let request = RequestHead::new(self.firm, *id, method, path, t, b"", &mut self.rng)
            .unwrap()
            .sign(key);
        AuditLeaf {
            firm: self.firm,
            received_ms: t + 5,
            request,
            subjects: vec![],
            body: None,
        }
        .to_bytes()
    }

    fn hashes(&self) -> Vec<merkle::Hash> {
        self.leaves.iter().map(|l| merkle::leaf_hash(l)).collect()
    }

    fn checkpoint(&self, size: usize) -> String {
        let root = merkle::root(&self.hashes()[..size]);
        String::from_utf8(
            Checkpoint::new(ORIGIN, size as u64, root)
                .unwrap()
                .sign(&self.log_key),
        )
        .unwrap()
    }
}

/// The bundle's lines: entries in `whole` are whole, the others hashes.
fn bundle(
    w: &World,
    checkpoints: &[String],
    size: u64,
    whole: std::ops::Range<usize>,
) -> Vec<String> {
    let mut out = vec![Line::Header(Header {
        bundle: FORMAT.into(),
        firm: w.firm.to_hex(),
        origin: ORIGIN.into(),
        log_key: hex::encode(w.log_key.verifying_key().as_bytes()),
        size,
        from_ms: None,
        to_ms: None,
        exported_ms: T0 + 100_000,
    })
    .to_json()];
    out.extend(
        w.events
            .iter()
            .map(|e| Line::Roster(hex::encode(e.to_bytes())).to_json()),
    );
    out.extend(
        checkpoints
            .iter()
            .map(|c| Line::Checkpoint(c.clone()).to_json()),
    );
    for (i, l) in w.leaves.iter().enumerate() {
        out.push(if whole.contains(&i) {
            Line::Entry(hex::encode(l)).to_json()
        } else {
            Line::Hashes(vec![hex::encode(merkle::leaf_hash(l))]).to_json()
        });
    }
    out
}

fn run(lines: &[String], opts: Options) -> Result<(Summary, Vec<Row>), AuditError> {
    let mut v = Verifier::new(opts);
    let mut rows = Vec::new();
    for l in lines {
        rows.extend(v.line(l)?);
    }
    let (summary, last) = v.finish()?;
    rows.extend(last);
    Ok((summary, rows))
}

/// Twelve entries, owner and Anna alternating, 1 s apart, all before Anna's revocation.
fn scenario() -> (World, Vec<String>) {
    let mut w = World::new();
    for i in 0..12u64 {
        let d = (i % 2) as usize;
        let leaf = w.leaf(
            d,
            "GET",
            &format!("/v1/rooms/{i:032x}/messages"),
            T0 + 1_000 * (i + 3),
        );
        w.leaves.push(leaf);
    }
    let cps = vec![w.checkpoint(4), w.checkpoint(8), w.checkpoint(12)];
    (w, cps)
}

#[test]
fn an_honest_bundle_verifies_whole_or_in_part() {
    let (w, cps) = scenario();
    let (summary, rows) = run(&bundle(&w, &cps, 12, 0..12), Options::default()).unwrap();
    assert_eq!(
        (summary.size, summary.entries, summary.checkpoints),
        (12, 12, 3)
    );
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[1].device, Some(w.devices[1].0));
    assert_eq!(rows[1].action, "read conversation history");
    // A time range: the rest travels as hashes and still proves the roots.
    let (summary, rows) = run(&bundle(&w, &cps, 12, 5..7), Options::default()).unwrap();
    assert_eq!((summary.entries, rows.len()), (2, 2));
    assert_eq!(rows[0].index, 5);
}

fn tampered(edit: impl FnOnce(&mut World, &mut Vec<String>)) -> AuditError {
    let (mut w, mut cps) = scenario();
    edit(&mut w, &mut cps);
    let size = 12;
    run(
        &bundle(&w, &cps, size, 0..w.leaves.len()),
        Options::default(),
    )
    .unwrap_err()
}

#[test]
fn a_modified_entry_is_named() {
    let e = tampered(|w, _| {
        let mut leaf = AuditLeaf::from_bytes(&w.leaves[6]).unwrap();
        leaf.request.head.path = "/v1/rooms/00/messages".into();
        w.leaves[6] = leaf.to_bytes();
    });
    assert_eq!(e, AuditError::BadSignature { index: 6 });
}

#[test]
fn a_relay_rewritten_time_breaks_the_root() {
    let e = tampered(|w, _| {
        let mut leaf = AuditLeaf::from_bytes(&w.leaves[6]).unwrap();
        leaf.received_ms += 1;
        w.leaves[6] = leaf.to_bytes();
    });
    assert_eq!(e, AuditError::RootMismatch { size: 8, after: 4 });
}

#[test]
fn a_deleted_entry_breaks_the_root() {
    let e = tampered(|w, _| {
        w.leaves.remove(2);
    });
    assert_eq!(e, AuditError::RootMismatch { size: 4, after: 0 });
}

#[test]
fn reordered_entries_are_named() {
    let e = tampered(|w, _| w.leaves.swap(9, 10));
    assert_eq!(e.class(), "out_of_order");
    assert!(matches!(e, AuditError::OutOfOrder { index: 10, .. }), "{e}");
}

#[test]
fn an_inserted_copy_is_named() {
    let e = tampered(|w, _| {
        let copy = w.leaves[3].clone();
        w.leaves.insert(5, copy);
    });
    // Its time is earlier than its predecessor's: caught as out of order at 5; a copy
    // placed right after its original is a replay.
    assert!(matches!(e, AuditError::OutOfOrder { index: 5, .. }), "{e}");
    let e = tampered(|w, _| {
        let copy = w.leaves[3].clone();
        w.leaves.insert(4, copy);
    });
    assert_eq!(e, AuditError::Replayed { index: 4, first: 3 });
}

#[test]
fn a_truncated_log_is_named() {
    let (mut w, cps) = scenario();
    w.leaves.truncate(10);
    let e = run(&bundle(&w, &cps, 12, 0..10), Options::default()).unwrap_err();
    assert_eq!(e, AuditError::WrongLength { have: 10, want: 12 });
    // A header that disagrees with the last checkpoint is refused before any entry.
    let e = run(&bundle(&w, &cps, 10, 0..10), Options::default()).unwrap_err();
    assert_eq!(e.class(), "malformed");
}

#[test]
fn a_checkpoint_under_another_key_is_named() {
    let e = tampered(|w, cps| {
        let other = LogSigningKey::generate(&mut w.rng);
        let root = merkle::root(&w.hashes()[..8]);
        cps[1] = String::from_utf8(Checkpoint::new(ORIGIN, 8, root).unwrap().sign(&other)).unwrap();
    });
    assert!(matches!(e, AuditError::Checkpoint { index: 1, .. }), "{e}");
}

#[test]
fn two_roots_for_one_size_are_a_fork() {
    let e = tampered(|w, cps| {
        let forged = String::from_utf8(
            Checkpoint::new(ORIGIN, 8, [9; 32])
                .unwrap()
                .sign(&w.log_key),
        )
        .unwrap();
        cps.insert(2, forged);
    });
    assert_eq!(e, AuditError::Fork { size: 8 });
}

#[test]
fn an_entry_by_a_revoked_device_is_named() {
    let (mut w, mut cps) = scenario();
    let late = w.leaf(1, "GET", "/v1/files/ab/records", T0 + 60_000);
    w.leaves.push(late);
    cps.push(w.checkpoint(13));
    let e = run(&bundle(&w, &cps, 13, 0..13), Options::default()).unwrap_err();
    assert!(
        matches!(e, AuditError::InactiveDevice { index: 12, .. }),
        "{e}"
    );
}

#[test]
fn the_witness_is_required_when_asked_for() {
    let (w, cps) = scenario();
    let wkey = w.witness.verifying_key();
    let opts = Options {
        witness: Some(Witness::Key("owner.witness".into(), Box::new(wkey))),
        ..Options::default()
    };
    let e = run(&bundle(&w, &cps, 12, 0..12), opts.clone()).unwrap_err();
    assert_eq!(
        e,
        AuditError::MissingWitness {
            size: 12,
            witness: "the witness owner.witness".into()
        }
    );
    // Only the last checkpoint (covering everything) needs it.
    let mut last_only = cps.clone();
    last_only[2] = String::from_utf8(
        cosign(
            cps[2].as_bytes(),
            "owner.witness",
            &w.witness,
            1_780_000_100,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(run(&bundle(&w, &last_only, 12, 0..12), opts.clone()).is_ok());
    let signed: Vec<String> = cps
        .iter()
        .map(|c| {
            String::from_utf8(
                cosign(c.as_bytes(), "owner.witness", &w.witness, 1_780_000_100).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let (summary, _) = run(&bundle(&w, &signed, 12, 0..12), opts).unwrap();
    assert!(summary.witnessed);
}

#[test]
fn lines_out_of_place_are_malformed() {
    let (w, cps) = scenario();
    let mut lines = bundle(&w, &cps, 12, 0..12);
    lines.swap(0, 1);
    assert_eq!(
        run(&lines, Options::default()).unwrap_err().class(),
        "malformed"
    );
    let mut lines = bundle(&w, &cps, 12, 0..12);
    lines.insert(5, "{\"entry\":\"zz\"}".into());
    assert_eq!(
        run(&lines, Options::default()).unwrap_err().class(),
        "malformed"
    );
}

#[test]
fn batches_and_strict_checking_name_the_same_entry() {
    let mut w = World::new();
    for i in 0..200u64 {
        let leaf = w.leaf(
            (i % 2) as usize,
            "GET",
            &format!("/v1/files/{i:032x}/records"),
            T0 + 3_000 + 100 * i,
        );
        w.leaves.push(leaf);
    }
    let mut leaf = AuditLeaf::from_bytes(&w.leaves[150]).unwrap();
    leaf.request.signature[40] ^= 1;
    w.leaves[150] = leaf.to_bytes();
    let cps = vec![w.checkpoint(100), w.checkpoint(200)];
    for strict in [false, true] {
        let opts = Options {
            strict,
            ..Options::default()
        };
        let e = run(&bundle(&w, &cps, 200, 0..200), opts).unwrap_err();
        assert_eq!(
            e,
            AuditError::BadSignature { index: 150 },
            "strict: {strict}"
        );
    }
}

#[test]
fn the_owners_device_is_a_witness_the_roster_vouches_for() {
    use ledgerline_protocol::checkpoint::cosign_as_device;
    let (w, cps) = scenario();
    let opts = Options {
        witness: Some(Witness::Owner),
        ..Options::default()
    };
    let (owner_dev, owner_key) = &w.devices[0];
    let (anna_dev, anna_key) = &w.devices[1];
    let cosigned = |id, key: &DeviceSigningKey| {
        let mut c = cps.clone();
        c[2] = String::from_utf8(
            cosign_as_device(c[2].as_bytes(), &w.firm, id, key, (T0 + 20_000) / 1000).unwrap(),
        )
        .unwrap();
        c
    };
    assert!(run(
        &bundle(&w, &cosigned(owner_dev, owner_key), 12, 0..12),
        opts.clone()
    )
    .is_ok());
    // Anna is not the owner: her cosignature does not count.
    let e = run(
        &bundle(&w, &cosigned(anna_dev, anna_key), 12, 0..12),
        opts.clone(),
    )
    .unwrap_err();
    assert_eq!(e.class(), "missing_witness");
    let e = run(&bundle(&w, &cps, 12, 0..12), opts).unwrap_err();
    assert_eq!(e.class(), "missing_witness");
}

/// Ends a scenario's log with a read at T0+90 s (a revocation at the very end of a log is
/// not due yet), checkpoints it and verifies the whole bundle.
fn close_and_verify(mut w: World) -> Result<(Summary, Vec<Row>), AuditError> {
    let last = w.leaf(0, "GET", "/v1/files/00/records", T0 + 90_000);
    w.leaves.push(last);
    let n = w.leaves.len();
    let cps = vec![w.checkpoint(n)];
    run(&bundle(&w, &cps, n as u64, 0..n), Options::default())
}

/// The world where Anna is granted `file` at T0+60 s and removed from it at T0+70 s.
fn granted_then_removed(file: ledgerline_protocol::ids::FileId) -> (World, MemberId) {
    let mut w = World::new();
    let anna = w.anna.0;
    let owner = w.owner.clone();
    w.event(
        &owner,
        T0 + 60_000,
        EventKind::FileAccessGranted { file, member: anna },
    );
    w.event(
        &owner,
        T0 + 70_000,
        EventKind::FileAccessRemoved { file, member: anna },
    );
    (w, anna)
}

/// Anna gets a file at T0+60 s and loses it at T0+70 s; `after` are the owner's requests
/// that follow (path templates with `{f}` and `{anna}`).
fn removal(after: &[&str]) -> Result<(Summary, Vec<Row>), AuditError> {
    use ledgerline_protocol::ids::FileId;
    let file = FileId([0x42; 16]);
    let (mut w, anna) = granted_then_removed(file);
    // Anna's device was revoked at T0+50 s: her member key gets a new version.
    let owner_dev = w.devices[0].0;
    let rotated = w.leaf(
        0,
        "PUT",
        &format!("/v1/members/{}/keys/2/{owner_dev}", anna.to_hex()),
        T0 + 55_000,
    );
    w.leaves.push(rotated);
    let first = w.leaf(0, "GET", "/v1/files/00/records", T0 + 65_000);
    w.leaves.push(first);
    for (i, p) in after.iter().enumerate() {
        let path = p
            .replace("{f}", &file.to_hex())
            .replace("{anna}", &anna.to_hex());
        let leaf = w.leaf(0, "PUT", &path, T0 + 71_000 + i as u64);
        w.leaves.push(leaf);
    }
    close_and_verify(w)
}

#[test]
fn a_removal_needs_a_new_epoch_that_the_removed_member_never_gets() {
    assert!(removal(&["/v1/files/{f}/epochs/1/link"]).is_ok());
    let e = removal(&[]).unwrap_err();
    assert_eq!(e.class(), "incomplete_rotation");
    assert!(e.to_string().contains("no new epoch"), "{e}");
    let e = removal(&[
        "/v1/files/{f}/epochs/1/link",
        "/v1/files/{f}/epochs/1/keys/{anna}",
    ])
    .unwrap_err();
    assert_eq!(e.class(), "incomplete_rotation");
    assert!(e.to_string().contains("wrapped for them"), "{e}");
}

/// Like `removal`, with the owner's messages in the file's room: `before` at T0+65 s (with
/// session tag `a…`), then the new epoch, then `after` (method and path templates).
fn removal_with_messages(after: &[(&str, &str)]) -> Result<(Summary, Vec<Row>), AuditError> {
    use ledgerline_protocol::ids::FileId;
    let file = FileId([0x44; 16]);
    let (mut w, anna) = granted_then_removed(file);
    let owner_dev = w.devices[0].0;
    let old_tag = "a".repeat(32);
    let f = file.to_hex();
    let mut leaves: Vec<(u64, String, String)> = vec![
        (
            55_000,
            "PUT".into(),
            format!("/v1/members/{}/keys/2/{owner_dev}", anna.to_hex()),
        ),
        (
            65_000,
            "POST".into(),
            format!("/v1/rooms/{f}/messages?session={old_tag}"),
        ),
        (
            71_000,
            "PUT".into(),
            format!("/v1/files/{f}/epochs/1?holders="),
        ),
    ];
    for (i, (method, path)) in after.iter().enumerate() {
        leaves.push((
            72_000 + i as u64,
            (*method).to_owned(),
            path.replace("{f}", &f).replace("{old}", &old_tag),
        ));
    }
    for (t, method, path) in leaves {
        let leaf = w.leaf(0, &method, &path, T0 + t);
        w.leaves.push(leaf);
    }
    close_and_verify(w)
}

#[test]
fn a_room_session_the_removed_member_could_read_is_not_used_after() {
    let fresh = format!("/v1/rooms/{{f}}/messages?session={}", "b".repeat(32));
    assert!(removal_with_messages(&[("POST", fresh.as_str())]).is_ok());
    // No tag (an older client): nothing to judge.
    assert!(removal_with_messages(&[("POST", "/v1/rooms/{f}/messages")]).is_ok());
    let e = removal_with_messages(&[("POST", "/v1/rooms/{f}/messages?session={old}")]).unwrap_err();
    assert_eq!(e.class(), "incomplete_rotation");
    assert!(e.to_string().contains("room session"), "{e}");
}

#[test]
fn a_removal_is_checked_on_the_holders_a_new_epoch_names() {
    assert!(removal(&["/v1/files/{f}/epochs/1?holders="]).is_ok());
    let e = removal(&["/v1/files/{f}/epochs/1?holders={anna}.1"]).unwrap_err();
    assert_eq!(e.class(), "incomplete_rotation");
    assert!(e.to_string().contains("wrapped for them"), "{e}");
}

/// Anna holds a file from T0+60 s; her second device, added at T0+61 s, is lost and
/// revoked at T0+70 s. `after` are the owner's requests that follow (templates with
/// `{f}`, `{anna}`, `{owner_dev}` and `{lost}`).
fn lost_device(after: &[&str]) -> Result<(Summary, Vec<Row>), AuditError> {
    use ledgerline_protocol::ids::FileId;
    let mut w = World::new();
    let anna = w.anna.0;
    let file = FileId([0x43; 16]);
    let owner = w.owner.clone();
    w.event(
        &owner,
        T0 + 60_000,
        EventKind::FileAccessGranted { file, member: anna },
    );
    let anna_pair = w.anna.clone();
    w.device(&anna_pair, T0 + 61_000);
    let lost = w.devices[2].0;
    w.event(
        &owner,
        T0 + 70_000,
        EventKind::DeviceRevoked { device: lost },
    );
    let owner_dev = w.devices[0].0;
    for (t, path) in [
        (
            55_000,
            format!("/v1/members/{}/keys/2/{owner_dev}", anna.to_hex()),
        ),
        (65_000, "/v1/files/00/records".to_owned()),
    ] {
        let method = if t == 55_000 { "PUT" } else { "GET" };
        let leaf = w.leaf(0, method, &path, T0 + t);
        w.leaves.push(leaf);
    }
    for (i, p) in after.iter().enumerate() {
        let path = p
            .replace("{f}", &file.to_hex())
            .replace("{anna}", &anna.to_hex())
            .replace("{owner_dev}", &owner_dev.to_hex())
            .replace("{lost}", &lost.to_hex());
        let leaf = w.leaf(0, "PUT", &path, T0 + 71_000 + i as u64);
        w.leaves.push(leaf);
    }
    close_and_verify(w)
}

#[test]
fn a_lost_device_needs_a_new_member_key_and_new_epochs_under_it() {
    let (summary, _) = lost_device(&[
        "/v1/members/{anna}/keys/3/{owner_dev}",
        "/v1/files/{f}/epochs/1?holders={anna}.3",
    ])
    .unwrap();
    let last = summary.revocations.last().unwrap();
    assert!(last.what.starts_with("revoked device"), "{last:?}");
    // The words a user interface translates: the kind, the device and its owner.
    assert_eq!(last.kind, ledgerline_audit::AccessEnd::DeviceRevoked);
    let device = last.device.as_deref().unwrap();
    assert!(
        device.len() == 32 && last.what == format!("revoked device {device}"),
        "{last:?}"
    );
    assert_eq!(last.member, World::new().anna.0.to_hex(), "{last:?}");
    assert_eq!((last.file.as_ref(), last.colleague.as_ref()), (None, None));
    assert_eq!((last.files, last.member_keys), (1, 1));
    // Nothing done.
    let e = lost_device(&[]).unwrap_err();
    assert_eq!(e.class(), "incomplete_rotation");
    assert!(e.to_string().contains("no new version"), "{e}");
    // An old version put again is no rotation.
    let e = lost_device(&[
        "/v1/members/{anna}/keys/2/{owner_dev}",
        "/v1/files/{f}/epochs/1?holders={anna}.2",
    ])
    .unwrap_err();
    assert_eq!(e.class(), "incomplete_rotation");
    // The new epoch under the exposed key.
    let e = lost_device(&[
        "/v1/members/{anna}/keys/3/{owner_dev}",
        "/v1/files/{f}/epochs/1?holders={anna}.2",
    ])
    .unwrap_err();
    assert_eq!(e.class(), "incomplete_rotation");
    assert!(e.to_string().contains("exposed member key"), "{e}");
    // The file never re-keyed.
    let e = lost_device(&["/v1/members/{anna}/keys/3/{owner_dev}"]).unwrap_err();
    assert!(e.to_string().contains("no new epoch"), "{e}");
    // The new key handed to the lost device itself.
    let e = lost_device(&["/v1/members/{anna}/keys/3/{lost}"]).unwrap_err();
    assert_eq!(e.class(), "incomplete_rotation");
    assert!(e.to_string().contains("not active"), "{e}");
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn honest() -> Vec<String> {
        let (w, cps) = scenario();
        bundle(&w, &cps, 12, 0..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any line replaced by arbitrary text: a verdict, never a panic.
        #[test]
        fn arbitrary_lines(at in 0usize..30, junk in ".{0,300}") {
            let mut lines = honest();
            let at = at % lines.len();
            lines[at] = junk;
            let _ = run(&lines, Options::default());
        }

        /// Any byte of the bundle flipped: a verdict, never a panic; and, past the header
        /// (the exporter's unsigned description, e.g. its export time), never a pass
        /// unless the flip left the JSON meaning unchanged.
        #[test]
        fn flipped_bytes(line in 0usize..30, pos in 0usize..2000, bit in 0u8..8) {
            let mut lines = honest();
            let line = line % lines.len();
            let mut bytes = lines[line].clone().into_bytes();
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
            let before: serde_json::Value = serde_json::from_str(&lines[line]).unwrap();
            let same = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v == before);
            lines[line] = text;
            let verdict = run(&lines, Options::default());
            prop_assert!(verdict.is_err() || same || line == 0, "a changed bundle verified");
        }
    }
}

/// A retention sweep and what it is checked against: the policy event (with its logged
/// append), a document's logged upload, and the sweep leaf itself.
struct SweepCase {
    policies: Vec<RetentionPolicy>,
    /// How many of the policies' appends are logged before the sweep.
    logged_before: usize,
    upload_year: u16,
    sweep: RetentionSweep,
}

const DAY: u64 = 24 * 3600 * 1000;

fn sweep_case(edit: impl FnOnce(&mut SweepCase)) -> Result<(Summary, Vec<Row>), AuditError> {
    let mut w = World::new();
    w.events.pop(); // no revocation in this story
    let file = FileId([0xf1; 16]);
    let document = DocumentId([0xd0; 16]);
    let owner = w.owner.clone();
    let anna = w.anna.0;
    w.event(
        &owner,
        T0 + 10,
        EventKind::FileAccessGranted { file, member: anna },
    );
    let mut c = SweepCase {
        policies: vec![RetentionPolicy {
            chat_months: 1,
            docs_years: 5,
            legal_hold: false,
        }],
        logged_before: 1,
        upload_year: 2019,
        sweep: RetentionSweep {
            firm: w.firm,
            swept_ms: T0 + 40 * DAY,
            file,
            policy_seq: 0,
            chat_before_ms: T0 + 5 * DAY,
            messages: 3,
            through_seq: 3,
            documents: vec![SweptDocument {
                document,
                year: 2019,
            }],
        },
    };
    let first_policy = w.events.len() as u64;
    c.sweep.policy_seq = first_policy;
    edit(&mut c);
    let upload = format!(
        "/v1/files/{file}/documents/{document}?epoch=0&share_sha256=00&year={}",
        c.upload_year
    );
    let up = signed_leaf(&mut w, 0, "PUT", &upload, T0 + 1_000, b"");
    w.leaves.push(up);
    for (i, p) in c.policies.iter().enumerate() {
        let t = T0 + 2_000 + i as u64;
        w.event(&owner, t, EventKind::RetentionSet { file, policy: *p });
        let body = serde_json::json!({ "event": hex::encode(w.events.last().unwrap().to_bytes()) })
            .to_string();
        if i < c.logged_before {
            let l = signed_leaf(&mut w, 0, "POST", "/v1/roster", t, body.as_bytes());
            w.leaves.push(l);
        }
    }
    w.leaves.push(c.sweep.to_bytes());
    let n = w.leaves.len();
    let cps = vec![w.checkpoint(n)];
    run(&bundle(&w, &cps, n as u64, 0..n), Options::default())
}

/// A leaf of device `d` with a body (received 5 ms after `t`).
fn signed_leaf(w: &mut World, d: usize, method: &str, path: &str, t: u64, body: &[u8]) -> Vec<u8> {
    let (id, key) = &w.devices[d];
    let request = RequestHead::new(w.firm, *id, method, path, t, body, &mut w.rng)
        .unwrap()
        .sign(key);
    AuditLeaf {
        firm: w.firm,
        received_ms: t + 5,
        request,
        subjects: vec![],
        body: None,
    }
    .to_bytes()
}

#[test]
fn a_retention_sweep_under_the_policy_in_force_verifies_as_the_relays_entry() {
    let (summary, rows) = sweep_case(|_| {}).unwrap();
    assert_eq!(
        (
            summary.retention.sweeps,
            summary.retention.messages,
            summary.retention.documents
        ),
        (1, 3, 1)
    );
    let sweep = rows.last().unwrap();
    assert_eq!((sweep.device, sweep.member), (None, None));
    assert!(
        sweep
            .action
            .starts_with("relay deleted 3 messages received before"),
        "{}",
        sweep.action
    );
    assert!(rows[1].action.starts_with("set the retention of file"));
}

#[test]
fn a_sweep_the_policy_did_not_allow_is_an_unjustified_deletion() {
    let unjustified = |e: AuditError| {
        assert_eq!(e.class(), "unjustified_deletion", "{e}");
        e.to_string()
    };
    // Under legal hold.
    let e = sweep_case(|c| c.policies[0].legal_hold = true).unwrap_err();
    assert!(unjustified(e).contains("legal hold"));
    // Messages younger than the policy's month.
    let e = sweep_case(|c| c.sweep.chat_before_ms = T0 + 20 * DAY).unwrap_err();
    assert!(unjustified(e).contains("allowed until"));
    // A document still in its five years.
    let e = sweep_case(|c| {
        c.upload_year = 2022;
        c.sweep.documents[0].year = 2022;
    })
    .unwrap_err();
    assert!(unjustified(e).contains("keeps documents 5 years"));
    // The relay claims an older year than the upload said.
    let e = sweep_case(|c| c.sweep.documents[0].year = 2018).unwrap_err();
    assert!(unjustified(e).contains("uploaded for 2019"));
    // A policy replaced (documents kept) before the sweep, which applied the old one.
    let e = sweep_case(|c| {
        c.policies.push(RetentionPolicy {
            chat_months: 1,
            docs_years: 0,
            legal_hold: false,
        });
        c.logged_before = 2;
    })
    .unwrap_err();
    assert!(unjustified(e).contains("had replaced that policy"));
    // A policy the roster does not have.
    let e = sweep_case(|c| c.sweep.policy_seq = 1).unwrap_err();
    assert!(unjustified(e).contains("sets no retention policy"));
}

#[test]
fn the_bundle_must_be_signed_with_the_log_key_the_roster_records() {
    let (mut w, cps) = scenario();
    let (summary, _) = run(&bundle(&w, &cps, 12, 0..12), Options::default()).unwrap();
    assert!(!summary.log_key_in_roster);
    // Recorded by the owner (after the entries: the roster is what it is at export).
    let owner = w.owner.clone();
    let key = w.log_key.verifying_key();
    w.event(&owner, T0 + 60_000, EventKind::LogKeySet { key });
    let (summary, _) = run(&bundle(&w, &cps, 12, 0..12), Options::default()).unwrap();
    assert!(summary.log_key_in_roster);
    // A relay that signs with another key than the one recorded is refused outright.
    let other = LogSigningKey::generate(&mut w.rng);
    w.events.pop();
    w.event(
        &owner,
        T0 + 60_000,
        EventKind::LogKeySet {
            key: other.verifying_key(),
        },
    );
    let e = run(&bundle(&w, &cps, 12, 0..12), Options::default()).unwrap_err();
    assert_eq!(e.class(), "untrusted_log_key", "{e}");
}

/// A leaf that carries its request's body (room membership).
fn body_leaf(w: &mut World, d: usize, method: &str, path: &str, t: u64, body: &str) -> Vec<u8> {
    let mut leaf =
        AuditLeaf::from_bytes(&signed_leaf(w, d, method, path, t, body.as_bytes())).unwrap();
    leaf.body = Some(body.as_bytes().to_vec());
    leaf.to_bytes()
}

/// An internal room of the owner and Anna; a message, Anna taken out, another message
/// under `after_tag`.
fn internal_room(after_tag: &str) -> Result<(Summary, Vec<Row>), AuditError> {
    let mut w = World::new();
    let room = "ab".repeat(16);
    let (owner, anna) = (w.owner.0, w.anna.0);
    let create = format!(r#"{{"room":"{room}","members":["{owner}","{anna}"]}}"#);
    let l = body_leaf(&mut w, 0, "POST", "/v1/rooms", T0 + 3_000, &create);
    w.leaves.push(l);
    let before = "11".repeat(16);
    let path = |tag: &str| format!("/v1/rooms/{room}/messages?session={tag}");
    let l = signed_leaf(&mut w, 0, "POST", &path(&before), T0 + 4_000, b"");
    w.leaves.push(l);
    let only_owner = format!(r#"{{"members":["{owner}"]}}"#);
    let l = body_leaf(
        &mut w,
        0,
        "PUT",
        &format!("/v1/rooms/{room}/members"),
        T0 + 5_000,
        &only_owner,
    );
    w.leaves.push(l);
    let l = signed_leaf(&mut w, 0, "POST", &path(after_tag), T0 + 6_000, b"");
    w.leaves.push(l);
    let n = w.leaves.len();
    let cps = vec![w.checkpoint(n)];
    run(&bundle(&w, &cps, n as u64, 0..n), Options::default())
}

#[test]
fn an_internal_room_must_move_to_a_new_session_when_a_member_leaves_it() {
    internal_room(&"22".repeat(16)).unwrap();
    let e = internal_room(&"11".repeat(16)).unwrap_err();
    assert!(matches!(e, AuditError::RoomNotRotated { .. }), "{e}");
    assert_eq!(e.class(), "incomplete_rotation");
}

#[test]
fn an_internal_room_must_move_to_a_new_session_after_a_members_device_is_revoked() {
    let mut w = World::new();
    let room = "cd".repeat(16);
    let (owner, anna) = (w.owner.0, w.anna.0);
    let create = format!(r#"{{"room":"{room}","members":["{owner}","{anna}"]}}"#);
    let l = body_leaf(&mut w, 0, "POST", "/v1/rooms", T0 + 3_000, &create);
    w.leaves.push(l);
    let path = format!("/v1/rooms/{room}/messages?session={}", "33".repeat(16));
    let l = signed_leaf(&mut w, 0, "POST", &path, T0 + 4_000, b"");
    w.leaves.push(l);
    // Anna's device is revoked at T0 + 50 s (World::new); the owner keeps the session.
    let l = signed_leaf(&mut w, 0, "POST", &path, T0 + 51_000, b"");
    w.leaves.push(l);
    let n = w.leaves.len();
    let cps = vec![w.checkpoint(n)];
    let e = run(&bundle(&w, &cps, n as u64, 0..n), Options::default()).unwrap_err();
    assert!(
        matches!(&e, AuditError::RoomNotRotated { member, .. } if *member == anna),
        "{e}"
    );
}

/// A customer file with a guest: the owner writes in the file's customer conversation
/// under one session, the guest is removed at T0+70 s, and the owner writes again under
/// `after_tag`.
fn conversation_after_guest(after_tag: &str) -> Result<(Summary, Vec<Row>), AuditError> {
    use ledgerline_protocol::ids::FileId;
    let mut w = World::new();
    let file = FileId([0x46; 16]);
    let owner = w.owner.clone();
    w.event(
        &owner,
        T0 + 60_000,
        EventKind::FileAccessGranted {
            file,
            member: owner.0,
        },
    );
    let guest = (
        MemberId::random(&mut w.rng),
        MasterSigningKey::generate(&mut w.rng),
    );
    w.event(
        &owner,
        T0 + 61_000,
        EventKind::GuestAdded {
            member: guest.0,
            master_key: guest.1.verifying_key(),
            file,
        },
    );
    w.event(
        &owner,
        T0 + 70_000,
        EventKind::MemberRemoved { member: guest.0 },
    );
    // Anna's device was revoked at T0+50 s: her member key gets a new version.
    let (anna, owner_dev) = (w.anna.0, w.devices[0].0);
    let rotated = w.leaf(
        0,
        "PUT",
        &format!("/v1/members/{}/keys/2/{owner_dev}", anna.to_hex()),
        T0 + 55_000,
    );
    w.leaves.push(rotated);
    let room = hex::encode(ledgerline_protocol::roster::conversation_room(
        &w.firm, &file,
    ));
    let path = |tag: &str| format!("/v1/rooms/{room}/messages?session={tag}");
    let before = "44".repeat(16);
    let l = signed_leaf(&mut w, 0, "POST", &path(&before), T0 + 65_000, b"");
    w.leaves.push(l);
    let l = signed_leaf(&mut w, 0, "POST", &path(after_tag), T0 + 72_000, b"");
    w.leaves.push(l);
    let n = w.leaves.len();
    let cps = vec![w.checkpoint(n)];
    run(&bundle(&w, &cps, n as u64, 0..n), Options::default())
}

#[test]
fn a_customer_conversation_moves_to_a_new_session_when_a_guest_is_removed() {
    conversation_after_guest(&"55".repeat(16)).unwrap();
    let e = conversation_after_guest(&"44".repeat(16)).unwrap_err();
    assert!(matches!(e, AuditError::RoomNotRotated { .. }), "{e}");
    assert_eq!(e.class(), "incomplete_rotation");
}
