//! `roster.json` (`protocol-spec/roster.md`).

use crate::{array, check_all, file, flip, h, uint, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, MemberId, TeamId};
use ledgerline_protocol::keys::{DeviceSigningKey, DeviceWrapSecret, MasterSigningKey};
use ledgerline_protocol::retention::RetentionPolicy;
use ledgerline_protocol::roster::{
    team_name_commitment, DeviceCertificate, DeviceKeys, EventBody, EventKind, Role, Roster,
    RosterError, RosterEvent,
};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

struct Person {
    id: MemberId,
    key: MasterSigningKey,
}

struct Scenario {
    firm: FirmId,
    owner: Person,
    anna: Person,
    bartek: Person,
    laptop: DeviceId,
    phone: DeviceId,
    desktop: DeviceId,
    f1: FileId,
    f2: FileId,
    events: Vec<RosterEvent>,
}

fn device_keys(rng: &mut ChaCha20Rng) -> DeviceKeys {
    let mut identity = [0u8; 32];
    rand_core::RngCore::fill_bytes(rng, &mut identity);
    DeviceKeys {
        signing: DeviceSigningKey::generate(rng).verifying_key(),
        identity,
        wrap: DeviceWrapSecret::generate(rng).public_key(),
    }
}

impl Scenario {
    fn body(&self, upto: usize, t: u64, signer: MemberId, kind: EventKind) -> EventBody {
        let prev = self
            .events
            .get(upto.wrapping_sub(1))
            .map(RosterEvent::hash)
            .unwrap_or([0; 32]);
        EventBody {
            firm: self.firm,
            seq: upto as u64,
            prev,
            timestamp_ms: t,
            signer,
            kind,
        }
    }

    /// A next event after the first `upto` events, signed by `who`.
    fn next(&self, upto: usize, t: u64, who: &Person, kind: EventKind) -> RosterEvent {
        self.body(upto, t, who.id, kind).sign(&who.key)
    }

    /// The next event after `chain`, signed by `who`.
    fn after(
        &self,
        chain: &[RosterEvent],
        time: u64,
        who: &Person,
        kind: EventKind,
    ) -> RosterEvent {
        EventBody {
            firm: self.firm,
            seq: chain.len() as u64,
            prev: chain.last().map(RosterEvent::hash).unwrap_or([0; 32]),
            timestamp_ms: time,
            signer: who.id,
            kind,
        }
        .sign(&who.key)
    }

    fn chain(&self, upto: usize, extra: &[RosterEvent]) -> Vec<RosterEvent> {
        self.events[..upto]
            .iter()
            .cloned()
            .chain(extra.iter().cloned())
            .collect()
    }

    fn cert(
        &self,
        rng: &mut ChaCha20Rng,
        member: &Person,
        device: DeviceId,
        signer: &MasterSigningKey,
    ) -> DeviceCertificate {
        DeviceCertificate::issue(self.firm, member.id, device, device_keys(rng), signer)
    }

    fn new_cert(
        &self,
        rng: &mut ChaCha20Rng,
        member: &Person,
        signer: &MasterSigningKey,
    ) -> DeviceCertificate {
        let device = DeviceId::random(rng);
        self.cert(rng, member, device, signer)
    }
}

fn build(rng: &mut ChaCha20Rng) -> Scenario {
    let person = |rng: &mut ChaCha20Rng| Person {
        id: MemberId::random(rng),
        key: MasterSigningKey::generate(rng),
    };
    let owner = person(rng);
    let anna = person(rng);
    let bartek = person(rng);
    let mut s = Scenario {
        firm: FirmId::random(rng),
        owner,
        anna,
        bartek,
        laptop: DeviceId::random(rng),
        phone: DeviceId::random(rng),
        desktop: DeviceId::random(rng),
        f1: FileId::random(rng),
        f2: FileId::random(rng),
        events: Vec::new(),
    };
    let push = |kind: EventKind, t: u64, who: fn(&Scenario) -> &Person, s: &mut Scenario| {
        let e = s.next(s.events.len(), t, who(s), kind);
        s.events.push(e);
    };
    let (o, a): (fn(&Scenario) -> &Person, fn(&Scenario) -> &Person) = (|s| &s.owner, |s| &s.anna);
    push(
        EventKind::Genesis {
            owner_key: s.owner.key.verifying_key(),
        },
        1_000,
        o,
        &mut s,
    );
    push(
        EventKind::MemberAdded {
            member: s.anna.id,
            master_key: s.anna.key.verifying_key(),
            role: Role::Member,
        },
        2_000,
        o,
        &mut s,
    );
    push(
        EventKind::MemberAdded {
            member: s.bartek.id,
            master_key: s.bartek.key.verifying_key(),
            role: Role::Admin,
        },
        2_100,
        o,
        &mut s,
    );
    let c = s.cert(rng, &s.anna, s.laptop, &s.anna.key);
    push(EventKind::DeviceAdded(c), 3_000, o, &mut s);
    let c = s.cert(rng, &s.anna, s.phone, &s.anna.key);
    push(EventKind::DeviceAdded(c), 3_100, a, &mut s);
    let c = s.cert(rng, &s.owner, s.desktop, &s.owner.key);
    push(EventKind::DeviceAdded(c), 3_200, o, &mut s);
    push(
        EventKind::FileAccessGranted {
            file: s.f1,
            member: s.anna.id,
        },
        4_000,
        o,
        &mut s,
    );
    push(
        EventKind::FileAccessGranted {
            file: s.f2,
            member: s.anna.id,
        },
        4_100,
        o,
        &mut s,
    );
    push(
        EventKind::RoleChanged {
            member: s.bartek.id,
            role: Role::Member,
        },
        4_500,
        o,
        &mut s,
    );
    push(
        EventKind::FileAccessRemoved {
            file: s.f1,
            member: s.anna.id,
        },
        5_000,
        o,
        &mut s,
    );
    push(
        EventKind::FileAccessGranted {
            file: s.f1,
            member: s.anna.id,
        },
        6_000,
        o,
        &mut s,
    );
    push(
        EventKind::DeviceRevoked { device: s.phone },
        6_500,
        a,
        &mut s,
    );
    push(
        EventKind::MemberRemoved { member: s.anna.id },
        7_000,
        o,
        &mut s,
    );
    s
}

fn case(events: &[RosterEvent]) -> Value {
    case_bytes(&events.iter().map(RosterEvent::to_bytes).collect::<Vec<_>>())
}

fn case_bytes(events: &[Vec<u8>]) -> Value {
    json!({ "events": events.iter().map(|e| h(e)).collect::<Vec<_>>() })
}

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let s = build(rng);
    let n = s.events.len();
    let mut t = Tests::default();
    let bad = |t: &mut Tests, comment: &str, class: &'static str, events: Vec<RosterEvent>| {
        let mut fields = case(&events);
        fields["failsAt"] = json!(events.len() - 1);
        t.push(comment, Expect::Invalid(class), fields);
    };

    // Valid chains, with access queries.
    let q = |d: DeviceId, f: FileId, time: u64, allowed: bool| json!({ "device": h(&d.0), "file": h(&f.0), "timeMs": time, "allowed": allowed });
    let mut full = case(&s.events);
    full["head"] = json!(h(&s.events[n - 1].hash()));
    full["queries"] = json!([
        q(s.laptop, s.f1, 3_999, false),
        q(s.laptop, s.f1, 4_000, true),
        q(s.laptop, s.f1, 4_999, true),
        q(s.laptop, s.f1, 5_000, false),
        q(s.laptop, s.f1, 6_000, true),
        q(s.laptop, s.f1, 7_000, false),
        q(s.phone, s.f2, 6_499, true),
        q(s.phone, s.f2, 6_500, false),
        q(s.desktop, s.f1, 5_000, false),
        q(DeviceId([0xee; 16]), s.f1, 5_000, false),
    ]);
    t.push(
        "full life cycle: members, devices, grants, removal, revocation",
        Expect::Valid,
        full,
    );
    let mut genesis = case(&s.events[..1]);
    genesis["head"] = json!(h(&s.events[0].hash()));
    genesis["queries"] = json!([]);
    t.push("genesis only", Expect::Valid, genesis);
    let mut part = case(&s.events[..8]);
    part["head"] = json!(h(&s.events[7].hash()));
    part["queries"] = json!([
        q(s.phone, s.f2, 4_100, true),
        q(s.phone, s.f1, 3_999, false)
    ]);
    t.push(
        "prefix of the life cycle, device added by its own member",
        Expect::Valid,
        part,
    );

    // Genesis rules.
    let not_genesis = s.next(
        0,
        1_000,
        &s.owner,
        EventKind::MemberAdded {
            member: s.anna.id,
            master_key: s.anna.key.verifying_key(),
            role: Role::Admin,
        },
    );
    bad(
        &mut t,
        "first event is not a genesis",
        "BadGenesis",
        vec![not_genesis],
    );
    let second = s.next(
        1,
        1_500,
        &s.owner,
        EventKind::Genesis {
            owner_key: s.owner.key.verifying_key(),
        },
    );
    bad(
        &mut t,
        "second genesis",
        "BadGenesis",
        s.chain(1, &[second]),
    );
    let mut g = s.events[0].body.clone();
    g.prev = [1; 32];
    bad(
        &mut t,
        "genesis with non-zero previous hash",
        "ChainFork",
        vec![g.sign(&s.owner.key)],
    );
    let g = s.events[0].body.clone().sign(&s.anna.key);
    bad(
        &mut t,
        "genesis not signed by the owner key it names",
        "BadSignature",
        vec![g],
    );

    // Chain integrity.
    let mut skip = s.chain(3, &[]);
    skip.push(s.events[4].clone());
    bad(
        &mut t,
        "event missing: gap in sequence numbers",
        "ChainGap",
        skip,
    );
    bad(
        &mut t,
        "event repeated",
        "ChainGap",
        s.chain(4, &[s.events[3].clone()]),
    );
    let other_device = s.new_cert(rng, &s.anna, &s.anna.key);
    let alt = s.next(3, 3_000, &s.owner, EventKind::DeviceAdded(other_device));
    bad(
        &mut t,
        "fork: another event at the same position, the old successor kept",
        "ChainFork",
        s.chain(3, &[alt, s.events[4].clone()]),
    );
    let mut b = s.events[5].body.clone();
    b.prev[0] ^= 1;
    bad(
        &mut t,
        "previous hash bit-flipped and re-signed",
        "ChainFork",
        s.chain(5, &[b.sign(&s.owner.key)]),
    );
    let mut b = s.events[5].body.clone();
    b.firm.0[0] ^= 1;
    bad(
        &mut t,
        "event of another firm",
        "WrongFirm",
        s.chain(5, &[b.sign(&s.owner.key)]),
    );
    let mut b = s.events[5].body.clone();
    b.timestamp_ms = 3_099;
    bad(
        &mut t,
        "timestamp earlier than the previous event",
        "TimeReversed",
        s.chain(5, &[b.sign(&s.owner.key)]),
    );

    // Signatures and signers.
    let last = s.events[5].to_bytes();
    let sig_at = last.len() - 64;
    for at in [0usize, 32, 63] {
        let mut events: Vec<Vec<u8>> = s.events[..5].iter().map(RosterEvent::to_bytes).collect();
        events.push(flip(&last, sig_at + at));
        let mut fields = case_bytes(&events);
        fields["failsAt"] = json!(5);
        t.push(
            &format!("signature byte {at} flipped"),
            Expect::Invalid("BadSignature"),
            fields,
        );
    }
    let mut b = s.events[5].body.clone();
    b.timestamp_ms += 1;
    let forged = RosterEvent {
        body: b,
        signature: s.events[5].signature,
    };
    bad(
        &mut t,
        "timestamp changed after signing",
        "BadSignature",
        s.chain(5, &[forged]),
    );
    let by_other_key = s
        .body(5, 3_200, s.owner.id, s.events[5].body.kind.clone())
        .sign(&s.bartek.key);
    bad(
        &mut t,
        "signed by another admin's key under the owner's id",
        "BadSignature",
        s.chain(5, &[by_other_key]),
    );
    let ghost = MasterSigningKey::generate(rng);
    let ghost_id = MemberId::random(rng);
    let e = s
        .body(
            6,
            4_000,
            ghost_id,
            EventKind::FileAccessGranted {
                file: s.f1,
                member: s.anna.id,
            },
        )
        .sign(&ghost);
    bad(
        &mut t,
        "signer is not a member",
        "NonAdminSigner",
        s.chain(6, &[e]),
    );
    let e = s.next(
        6,
        4_000,
        &s.anna,
        EventKind::FileAccessGranted {
            file: s.f1,
            member: s.anna.id,
        },
    );
    bad(
        &mut t,
        "member (not admin) grants herself a file",
        "NonAdminSigner",
        s.chain(6, &[e]),
    );
    let e = s.next(
        6,
        4_000,
        &s.anna,
        EventKind::MemberAdded {
            member: ghost_id,
            master_key: ghost.verifying_key(),
            role: Role::Admin,
        },
    );
    bad(
        &mut t,
        "member (not admin) adds a member",
        "NonAdminSigner",
        s.chain(6, &[e]),
    );
    let c = s.new_cert(rng, &s.owner, &s.owner.key);
    let e = s.next(6, 4_000, &s.anna, EventKind::DeviceAdded(c));
    bad(
        &mut t,
        "member adds a device of another member",
        "NonAdminSigner",
        s.chain(6, &[e]),
    );
    let e = s.next(
        9,
        4_600,
        &s.bartek,
        EventKind::FileAccessGranted {
            file: s.f2,
            member: s.bartek.id,
        },
    );
    bad(
        &mut t,
        "demoted admin grants a file",
        "NonAdminSigner",
        s.chain(9, &[e]),
    );
    let e = s.next(
        6,
        4_000,
        &s.anna,
        EventKind::DeviceRevoked { device: s.desktop },
    );
    bad(
        &mut t,
        "member revokes another member's device",
        "NonAdminSigner",
        s.chain(6, &[e]),
    );

    // After revocation.
    let e = s.next(
        n,
        7_100,
        &s.owner,
        EventKind::FileAccessGranted {
            file: s.f1,
            member: s.anna.id,
        },
    );
    bad(
        &mut t,
        "grant to a removed member",
        "EventAfterRevocation",
        s.chain(n, &[e]),
    );
    let e = s.next(
        n,
        7_100,
        &s.anna,
        EventKind::DeviceRevoked { device: s.laptop },
    );
    bad(
        &mut t,
        "removed member signs an event",
        "EventAfterRevocation",
        s.chain(n, &[e]),
    );
    let c = s.new_cert(rng, &s.anna, &s.anna.key);
    let e = s.next(n, 7_100, &s.owner, EventKind::DeviceAdded(c));
    bad(
        &mut t,
        "device added for a removed member",
        "EventAfterRevocation",
        s.chain(n, &[e]),
    );
    let e = s.next(
        n,
        7_100,
        &s.owner,
        EventKind::MemberAdded {
            member: s.anna.id,
            master_key: s.anna.key.verifying_key(),
            role: Role::Member,
        },
    );
    bad(
        &mut t,
        "removed member re-added under the same id",
        "EventAfterRevocation",
        s.chain(n, &[e]),
    );
    let e = s.next(
        12,
        6_600,
        &s.owner,
        EventKind::DeviceRevoked { device: s.phone },
    );
    bad(
        &mut t,
        "device revoked twice",
        "EventAfterRevocation",
        s.chain(12, &[e]),
    );

    // Unknown subjects and duplicates.
    let e = s.next(
        6,
        4_000,
        &s.owner,
        EventKind::DeviceRevoked {
            device: DeviceId([0xee; 16]),
        },
    );
    bad(
        &mut t,
        "revoke an unknown device",
        "UnknownSubject",
        s.chain(6, &[e]),
    );
    let e = s.next(
        6,
        4_000,
        &s.owner,
        EventKind::FileAccessGranted {
            file: s.f1,
            member: ghost_id,
        },
    );
    bad(
        &mut t,
        "grant to an unknown member",
        "UnknownSubject",
        s.chain(6, &[e]),
    );
    let e = s.next(
        6,
        4_000,
        &s.owner,
        EventKind::FileAccessRemoved {
            file: s.f1,
            member: s.anna.id,
        },
    );
    bad(
        &mut t,
        "remove access that was never granted",
        "UnknownSubject",
        s.chain(6, &[e]),
    );
    let e = s.next(
        3,
        2_200,
        &s.owner,
        EventKind::MemberAdded {
            member: s.anna.id,
            master_key: ghost.verifying_key(),
            role: Role::Member,
        },
    );
    bad(&mut t, "member added twice", "Duplicate", s.chain(3, &[e]));
    let c = s.cert(rng, &s.anna, s.laptop, &s.anna.key);
    let e = s.next(6, 4_000, &s.owner, EventKind::DeviceAdded(c));
    bad(
        &mut t,
        "device id added twice",
        "Duplicate",
        s.chain(6, &[e]),
    );
    let e = s.next(
        7,
        4_050,
        &s.owner,
        EventKind::FileAccessGranted {
            file: s.f1,
            member: s.anna.id,
        },
    );
    bad(&mut t, "grant twice", "Duplicate", s.chain(7, &[e]));
    let e = s.next(
        6,
        4_000,
        &s.owner,
        EventKind::RoleChanged {
            member: s.anna.id,
            role: Role::Member,
        },
    );
    bad(
        &mut t,
        "role changed to the role held",
        "Duplicate",
        s.chain(6, &[e]),
    );

    // Device certificates and the last admin.
    let c = s.new_cert(rng, &s.anna, &s.owner.key);
    let e = s.next(6, 4_000, &s.owner, EventKind::DeviceAdded(c));
    bad(
        &mut t,
        "device certificate signed by the admin, not the member",
        "BadDeviceCertificate",
        s.chain(6, &[e]),
    );
    let mut c = s.new_cert(rng, &s.anna, &s.anna.key);
    c.keys.identity[0] ^= 1;
    let e = s.next(6, 4_000, &s.owner, EventKind::DeviceAdded(c));
    bad(
        &mut t,
        "device keys changed after the member certified them",
        "BadDeviceCertificate",
        s.chain(6, &[e]),
    );
    let e = s.next(
        n,
        7_100,
        &s.owner,
        EventKind::MemberRemoved { member: s.owner.id },
    );
    bad(
        &mut t,
        "last admin removes herself",
        "LastAdmin",
        s.chain(n, &[e]),
    );
    let e = s.next(
        n,
        7_100,
        &s.owner,
        EventKind::RoleChanged {
            member: s.owner.id,
            role: Role::Member,
        },
    );
    bad(
        &mut t,
        "last admin demotes herself",
        "LastAdmin",
        s.chain(n, &[e]),
    );

    // Encoding.
    let mut events: Vec<Vec<u8>> = s.events[..5].iter().map(RosterEvent::to_bytes).collect();
    let good = s.events[5].to_bytes();
    for (comment, bytes) in [
        ("event truncated", good[..good.len() - 1].to_vec()),
        (
            "trailing byte after the signature",
            [good.clone(), vec![0]].concat(),
        ),
        ("unknown version", flip(&good, 0)),
        ("unknown event kind", {
            let mut b = good.clone();
            b[1 + 16 + 8 + 32 + 8 + 16] = 99;
            b
        }),
    ] {
        events.push(bytes);
        let mut fields = case_bytes(&events);
        fields["failsAt"] = json!(5);
        t.push(comment, Expect::Invalid("Malformed"), fields);
        events.pop();
    }
    let mut role = s.events[1].to_bytes();
    let role_at = role.len() - 64 - 1;
    role[role_at] = 7;
    let mut fields = case_bytes(&[s.events[0].to_bytes(), role]);
    fields["failsAt"] = json!(1);
    t.push("unknown role value", Expect::Invalid("Malformed"), fields);

    covers(rng, &s, &mut t);
    retention(&s, &mut t);
    log_keys(rng, &s, &mut t);
    teams(rng, &s, &mut t);
    recovery_policy(&s, &mut t);
    guests(rng, &s, &mut t);

    file(
        "LEDGERLINE-ROSTER-V1",
        "protocol-spec/roster.md",
        &[
            ("Valid", "The whole chain verifies; head is the last event's hash; every query answers as stated."),
            ("Malformed", "An event is not canonically encoded."),
            ("BadGenesis", "The chain does not start with exactly one genesis."),
            ("WrongFirm", "An event names another firm."),
            ("ChainGap", "A sequence number skips or repeats."),
            ("ChainFork", "prev is not the hash of the previous event."),
            ("TimeReversed", "A timestamp is earlier than its predecessor's."),
            ("BadSignature", "The signature does not verify under the signer's master key."),
            ("NonAdminSigner", "The signer may not make this change."),
            ("EventAfterRevocation", "The event involves a removed member or revoked device."),
            ("UnknownSubject", "The event refers to a member, device or grant that does not exist."),
            ("Duplicate", "The event adds what exists already."),
            ("BadDeviceCertificate", "The member's certificate of the device does not verify."),
            ("LastAdmin", "The event would leave the firm without an active admin."),
            ("BadCover", "An absence cover names one member twice, or its window ends before it starts or before the event."),
            ("BadRetention", "A retention policy names a file the roster never granted, or a period beyond its limit."),
        ],
        vec![t.group("RosterChainVerify", json!({}))],
    )
}

/// Absence covers (`protocol-spec/roster.md`, "Absence cover"): after event 10 Anna holds
/// f1 and f2 and Bartek is a plain member; Bartek covers Anna.
fn covers(rng: &mut ChaCha20Rng, s: &Scenario, t: &mut Tests) {
    // The next event after `chain`, signed by `who`.
    let after = |chain: &[RosterEvent], time: u64, who: &Person, kind: EventKind| {
        EventBody {
            firm: s.firm,
            seq: chain.len() as u64,
            prev: chain.last().map(RosterEvent::hash).unwrap_or([0; 32]),
            timestamp_ms: time,
            signer: who.id,
            kind,
        }
        .sign(&who.key)
    };
    let grow = |chain: &mut Vec<RosterEvent>, time: u64, who: &Person, kind: EventKind| {
        let e = after(chain, time, who, kind);
        chain.push(e);
    };
    let cover = |absent: MemberId, colleague: MemberId, from_ms: u64, until_ms: u64| {
        EventKind::CoverGranted {
            absent,
            colleague,
            from_ms,
            until_ms,
        }
    };
    let bartek_desk = DeviceId::random(rng);
    let mut base = s.chain(11, &[]);
    let cert = s.cert(rng, &s.bartek, bartek_desk, &s.bartek.key);
    grow(&mut base, 6_100, &s.owner, EventKind::DeviceAdded(cert));
    let q = |d: DeviceId, f: FileId, time: u64, allowed: bool| json!({ "device": h(&d.0), "file": h(&f.0), "timeMs": time, "allowed": allowed });

    let mut planned = base.clone();
    let at = planned.len() as u64;
    grow(
        &mut planned,
        6_200,
        &s.owner,
        cover(s.anna.id, s.bartek.id, 6_500, 9_000),
    );
    grow(
        &mut planned,
        9_500,
        &s.owner,
        EventKind::CoverEnded { cover: at },
    );
    let mut fields = case(&planned);
    fields["head"] = json!(h(&planned[planned.len() - 1].hash()));
    fields["queries"] = json!([
        q(bartek_desk, s.f1, 6_499, false),
        q(bartek_desk, s.f1, 6_500, true),
        q(bartek_desk, s.f2, 8_999, true),
        q(bartek_desk, s.f1, 9_000, false),
        q(bartek_desk, s.f2, 9_600, false),
        q(s.laptop, s.f1, 9_000, true),
    ]);
    t.push(
        "absence cover: Bartek works in Anna's files from its start until its expiry; its end is recorded after",
        Expect::Valid,
        fields,
    );

    let mut early = base.clone();
    let at = early.len() as u64;
    grow(
        &mut early,
        6_200,
        &s.owner,
        cover(s.anna.id, s.bartek.id, 0, 20_000),
    );
    grow(
        &mut early,
        7_000,
        &s.owner,
        EventKind::CoverEnded { cover: at },
    );
    let mut fields = case(&early);
    fields["head"] = json!(h(&early[early.len() - 1].hash()));
    fields["queries"] = json!([
        q(bartek_desk, s.f1, 6_199, false),
        q(bartek_desk, s.f1, 6_200, true),
        q(bartek_desk, s.f1, 6_999, true),
        q(bartek_desk, s.f1, 7_000, false),
    ]);
    t.push(
        "absence cover starting at once, ended early by an admin",
        Expect::Valid,
        fields,
    );

    let mut bad = |comment: &str,
                   class: &'static str,
                   mut chain: Vec<RosterEvent>,
                   time: u64,
                   who: &Person,
                   kind: EventKind| {
        grow(&mut chain, time, who, kind);
        let mut fields = case(&chain);
        fields["failsAt"] = json!(chain.len() - 1);
        t.push(comment, Expect::Invalid(class), fields);
    };
    bad(
        "absence cover for oneself",
        "BadCover",
        base.clone(),
        6_200,
        &s.owner,
        cover(s.anna.id, s.anna.id, 6_500, 9_000),
    );
    bad(
        "absence cover ending before it starts",
        "BadCover",
        base.clone(),
        6_200,
        &s.owner,
        cover(s.anna.id, s.bartek.id, 9_000, 9_000),
    );
    bad(
        "absence cover already over when granted",
        "BadCover",
        base.clone(),
        6_200,
        &s.owner,
        cover(s.anna.id, s.bartek.id, 1_000, 6_200),
    );
    bad(
        "absence cover granted by a non-admin",
        "NonAdminSigner",
        base.clone(),
        6_200,
        &s.bartek,
        cover(s.anna.id, s.bartek.id, 6_500, 9_000),
    );
    bad(
        "absence cover for an unknown colleague",
        "UnknownSubject",
        base.clone(),
        6_200,
        &s.owner,
        cover(s.anna.id, MemberId([0xee; 16]), 6_500, 9_000),
    );
    bad(
        "end of a cover that was never granted",
        "UnknownSubject",
        base.clone(),
        6_200,
        &s.owner,
        EventKind::CoverEnded { cover: 3 },
    );
    bad(
        "absence cover ended twice",
        "Duplicate",
        planned.clone(),
        9_600,
        &s.owner,
        EventKind::CoverEnded {
            cover: planned.len() as u64 - 2,
        },
    );
    bad(
        "absence cover ended by a non-admin",
        "NonAdminSigner",
        planned[..planned.len() - 1].to_vec(),
        9_500,
        &s.bartek,
        EventKind::CoverEnded {
            cover: planned.len() as u64 - 2,
        },
    );
    bad(
        "absence cover of a removed member",
        "EventAfterRevocation",
        s.events.clone(),
        8_000,
        &s.owner,
        cover(s.anna.id, s.bartek.id, 8_000, 9_000),
    );
}

/// The test of a chain that `kind`, appended by `who` at 6.3 s (or with the last event's
/// time, if later), makes fail with `class`.
fn refused(
    t: &mut Tests,
    s: &Scenario,
    comment: &str,
    class: &'static str,
    chain: &[RosterEvent],
    who: &Person,
    kind: EventKind,
) {
    let mut chain = chain.to_vec();
    let time = chain
        .last()
        .map_or(6_300, |e| e.body.timestamp_ms.max(6_300));
    chain.push(s.after(&chain, time, who, kind));
    let mut fields = case(&chain);
    fields["failsAt"] = json!(chain.len() - 1);
    t.push(comment, Expect::Invalid(class), fields);
}

/// The relay's audit-log key recorded by an admin (`protocol-spec/checkpoints.md`).
fn log_keys(rng: &mut ChaCha20Rng, s: &Scenario, t: &mut Tests) {
    let base = s.chain(11, &[]);
    let k1 = DeviceSigningKey::generate(rng).verifying_key();
    let k2 = DeviceSigningKey::generate(rng).verifying_key();
    let mut chain = base.clone();
    chain.push(s.after(&chain, 6_100, &s.owner, EventKind::LogKeySet { key: k1 }));
    chain.push(s.after(&chain, 6_200, &s.owner, EventKind::LogKeySet { key: k2 }));
    let mut fields = case(&chain);
    fields["head"] = json!(h(&chain[chain.len() - 1].hash()));
    fields["queries"] = json!([]);
    fields["logKey"] = json!(h(k2.as_bytes()));
    t.push(
        "audit-log key recorded, then replaced: the newest is the firm's",
        Expect::Valid,
        fields,
    );
    let mut bad =
        |comment: &str, class: &'static str, chain: &[RosterEvent], who: &Person, kind| {
            refused(t, s, comment, class, chain, who, kind)
        };
    bad(
        "audit-log key recorded by a non-admin",
        "NonAdminSigner",
        &base,
        &s.bartek,
        EventKind::LogKeySet { key: k1 },
    );
    bad(
        "the audit-log key in force recorded again",
        "Duplicate",
        &chain,
        &s.owner,
        EventKind::LogKeySet { key: k2 },
    );
}

/// The firm's recovery policy (`protocol-spec/recovery.md`).
fn recovery_policy(s: &Scenario, t: &mut Tests) {
    let base = s.chain(11, &[]);
    let mut chain = base.clone();
    chain.push(s.after(
        &chain,
        6_100,
        &s.owner,
        EventKind::RecoveryPolicySet {
            admin_assisted: true,
        },
    ));
    let mut fields = case(&chain);
    fields["head"] = json!(h(&chain[chain.len() - 1].hash()));
    fields["queries"] = json!([]);
    fields["adminAssistedRecovery"] = json!(true);
    t.push(
        "admin-assisted recovery turned on by an admin",
        Expect::Valid,
        fields,
    );
    let mut bad =
        |comment: &str, class: &'static str, chain: &[RosterEvent], who: &Person, kind| {
            refused(t, s, comment, class, chain, who, kind)
        };
    bad(
        "recovery policy set by a non-admin",
        "NonAdminSigner",
        &base,
        &s.bartek,
        EventKind::RecoveryPolicySet {
            admin_assisted: true,
        },
    );
    bad(
        "the recovery policy in force set again",
        "Duplicate",
        &chain,
        &s.owner,
        EventKind::RecoveryPolicySet {
            admin_assisted: true,
        },
    );
}

/// Guests (`protocol-spec/guests.md`): a customer bound to f1's conversation, with a
/// device of their own, who may not be granted anything else.
fn guests(rng: &mut ChaCha20Rng, s: &Scenario, t: &mut Tests) {
    let guest = Person {
        id: MemberId::random(rng),
        key: MasterSigningKey::generate(rng),
    };
    let tablet = DeviceId::random(rng);
    let added = |file: FileId| EventKind::GuestAdded {
        member: guest.id,
        master_key: guest.key.verifying_key(),
        file,
    };
    let base = s.chain(11, &[]);
    let mut chain = base.clone();
    chain.push(s.after(&chain, 6_100, &s.owner, added(s.f1)));
    let joined = chain.clone();
    let cert = s.cert(rng, &guest, tablet, &guest.key);
    chain.push(s.after(&chain, 6_200, &guest, EventKind::DeviceAdded(cert)));
    let mut fields = case(&chain);
    fields["head"] = json!(h(&chain[chain.len() - 1].hash()));
    fields["queries"] = json!([
        { "device": h(&tablet.0), "file": h(&s.f1.0), "timeMs": 6_300, "allowed": false },
    ]);
    t.push(
        "a guest of f1 adds their own device and may read no file's records",
        Expect::Valid,
        fields,
    );
    let mut bad =
        |comment: &str, class: &'static str, chain: &[RosterEvent], who: &Person, kind| {
            refused(t, s, comment, class, chain, who, kind)
        };
    bad(
        "a guest added by a non-admin",
        "NonAdminSigner",
        &base,
        &s.bartek,
        added(s.f1),
    );
    bad(
        "a guest of a file the roster never granted",
        "UnknownSubject",
        &base,
        &s.owner,
        added(FileId([0xee; 16])),
    );
    bad(
        "a guest added twice",
        "Duplicate",
        &joined,
        &s.owner,
        added(s.f1),
    );
    bad(
        "a file granted to a guest",
        "NonAdminSigner",
        &joined,
        &s.owner,
        EventKind::FileAccessGranted {
            file: s.f2,
            member: guest.id,
        },
    );
    bad(
        "a guest made a member",
        "NonAdminSigner",
        &joined,
        &s.owner,
        EventKind::RoleChanged {
            member: guest.id,
            role: Role::Member,
        },
    );
}

/// Teams (`protocol-spec/roster.md`, "Teams"): after event 10 Anna holds f1 and f2 and
/// Bartek is a plain member; Bartek reaches f1 and a new file f3 through a team.
fn teams(rng: &mut ChaCha20Rng, s: &Scenario, t: &mut Tests) {
    let team = TeamId::random(rng);
    let f3 = FileId::random(rng);
    let desk = DeviceId::random(rng);
    let mut salt = [0u8; 16];
    rand_core::RngCore::fill_bytes(rng, &mut salt);
    let name = team_name_commitment(&team, &salt, "Kadry i płace");
    let renamed = team_name_commitment(&team, &salt, "Płace");
    let mut base = s.chain(11, &[]);
    let cert = s.cert(rng, &s.bartek, desk, &s.bartek.key);
    let grow = |chain: &mut Vec<RosterEvent>, time: u64, kind: EventKind| {
        let e = s.after(chain, time, &s.owner, kind);
        chain.push(e);
    };
    grow(&mut base, 6_100, EventKind::DeviceAdded(cert));
    grow(&mut base, 6_200, EventKind::TeamCreated { team, name });
    let created = base.clone();
    let member = |member: MemberId| EventKind::TeamMemberAdded { team, member };
    let left = |member: MemberId| EventKind::TeamMemberRemoved { team, member };
    let granted = |file: FileId| EventKind::FileTeamGranted { file, team };
    let mut chain = base.clone();
    grow(&mut chain, 6_300, member(s.bartek.id));
    let joined = chain.clone();
    grow(&mut chain, 6_400, granted(f3));
    grow(
        &mut chain,
        6_450,
        EventKind::RetentionSet {
            file: f3,
            policy: RetentionPolicy {
                chat_months: 24,
                docs_years: 5,
                legal_hold: false,
            },
        },
    );
    grow(&mut chain, 6_500, granted(s.f1));
    grow(
        &mut chain,
        6_600,
        EventKind::TeamRenamed {
            team,
            name: renamed,
        },
    );
    grow(&mut chain, 7_000, left(s.bartek.id));
    grow(&mut chain, 7_100, member(s.bartek.id));
    grow(
        &mut chain,
        7_500,
        EventKind::FileTeamRemoved { file: f3, team },
    );
    let before_delete = chain.clone();
    grow(&mut chain, 8_000, EventKind::TeamDeleted { team });
    let q = |d: DeviceId, f: FileId, time: u64, allowed: bool| json!({ "device": h(&d.0), "file": h(&f.0), "timeMs": time, "allowed": allowed });
    let mut fields = case(&chain);
    fields["head"] = json!(h(&chain[chain.len() - 1].hash()));
    fields["queries"] = json!([
        q(desk, f3, 6_399, false),
        q(desk, f3, 6_400, true),
        q(desk, f3, 6_999, true),
        q(desk, f3, 7_000, false),
        q(desk, f3, 7_100, true),
        q(desk, f3, 7_499, true),
        q(desk, f3, 7_500, false),
        q(desk, s.f1, 6_499, false),
        q(desk, s.f1, 6_500, true),
        q(desk, s.f1, 7_999, true),
        q(desk, s.f1, 8_000, false),
        q(s.laptop, f3, 6_500, false),
        q(s.laptop, s.f1, 6_500, true),
    ]);
    t.push(
        "a team: created, a member added, files granted (a retention policy for a file held only by the team), renamed, the member removed and added again, a grant removed, the team deleted",
        Expect::Valid,
        fields,
    );
    let mut bad =
        |comment: &str, class: &'static str, chain: &[RosterEvent], who: &Person, kind| {
            refused(t, s, comment, class, chain, who, kind)
        };
    let other = TeamId([0xee; 16]);
    bad(
        "team created by a non-admin",
        "NonAdminSigner",
        &s.chain(11, &[]),
        &s.bartek,
        EventKind::TeamCreated { team, name },
    );
    bad(
        "team created twice",
        "Duplicate",
        &created,
        &s.owner,
        EventKind::TeamCreated { team, name },
    );
    bad(
        "team renamed to the name it has",
        "Duplicate",
        &created,
        &s.owner,
        EventKind::TeamRenamed { team, name },
    );
    bad(
        "member added to a team twice",
        "Duplicate",
        &joined,
        &s.owner,
        member(s.bartek.id),
    );
    bad(
        "member added to a team by a non-admin",
        "NonAdminSigner",
        &created,
        &s.bartek,
        member(s.bartek.id),
    );
    bad(
        "unknown member added to a team",
        "UnknownSubject",
        &created,
        &s.owner,
        member(MemberId([0xee; 16])),
    );
    bad(
        "removed from a team they are not in",
        "UnknownSubject",
        &created,
        &s.owner,
        left(s.anna.id),
    );
    bad(
        "file granted to an unknown team",
        "UnknownSubject",
        &created,
        &s.owner,
        EventKind::FileTeamGranted {
            file: f3,
            team: other,
        },
    );
    bad(
        "file granted to a team twice",
        "Duplicate",
        &before_delete,
        &s.owner,
        granted(s.f1),
    );
    bad(
        "a team's grant removed that is not open",
        "UnknownSubject",
        &before_delete,
        &s.owner,
        EventKind::FileTeamRemoved { file: f3, team },
    );
    bad(
        "member added to a deleted team",
        "EventAfterRevocation",
        &chain,
        &s.owner,
        member(s.anna.id),
    );
    bad(
        "a deleted team's id used again",
        "EventAfterRevocation",
        &chain,
        &s.owner,
        EventKind::TeamCreated { team, name },
    );
}

/// Retention policies (`protocol-spec/retention.md`): f1 is granted to Anna by event 10.
fn retention(s: &Scenario, t: &mut Tests) {
    let base = s.chain(11, &[]);
    let policy = |chat_months, docs_years, legal_hold| RetentionPolicy {
        chat_months,
        docs_years,
        legal_hold,
    };
    let set = |file, p| EventKind::RetentionSet { file, policy: p };
    let mut chain = base.clone();
    let first = chain.len() as u64;
    chain.push(s.after(&chain, 6_100, &s.owner, set(s.f1, policy(12, 5, false))));
    let held = chain.len() as u64;
    chain.push(s.after(&chain, 6_200, &s.owner, set(s.f1, policy(12, 5, true))));
    let mut fields = case(&chain);
    fields["head"] = json!(h(&chain[chain.len() - 1].hash()));
    fields["queries"] = json!([]);
    let p = |len: u64, seq: Option<u64>, chat: u16, docs: u16, hold: bool| json!({ "file": h(&s.f1.0), "withinLen": len, "policySeq": seq, "chatMonths": chat, "docsYears": docs, "legalHold": hold });
    fields["retention"] = json!([
        p(first, None, 0, 0, false),
        p(held, Some(first), 12, 5, false),
        p(held + 1, Some(held), 12, 5, true),
    ]);
    t.push(
        "retention policy set, then a legal hold added; each query asks the policy in force with the roster that many events long",
        Expect::Valid,
        fields,
    );
    let mut bad =
        |comment: &str, class: &'static str, chain: &[RosterEvent], who: &Person, kind| {
            refused(t, s, comment, class, chain, who, kind)
        };
    bad(
        "retention policy set by a non-admin",
        "NonAdminSigner",
        &base,
        &s.bartek,
        set(s.f1, policy(12, 5, false)),
    );
    bad(
        "retention policy for a file never granted",
        "BadRetention",
        &base,
        &s.owner,
        set(FileId([0xee; 16]), policy(12, 5, false)),
    );
    bad(
        "chat retention over 1200 months",
        "BadRetention",
        &base,
        &s.owner,
        set(s.f1, policy(1201, 5, false)),
    );
    bad(
        "document retention over 100 years",
        "BadRetention",
        &base,
        &s.owner,
        set(s.f1, policy(12, 101, false)),
    );
    bad(
        "the policy in force set again",
        "Duplicate",
        &chain,
        &s.owner,
        set(s.f1, policy(12, 5, true)),
    );
    let mut odd = chain.clone();
    odd.pop();
    let mut raw = s
        .after(&odd, 6_200, &s.owner, set(s.f1, policy(12, 5, true)))
        .to_bytes();
    let flag_at = raw.len() - 64 - 1;
    raw[flag_at] = 2;
    let mut events: Vec<Vec<u8>> = odd.iter().map(RosterEvent::to_bytes).collect();
    events.push(raw);
    let mut fields = case_bytes(&events);
    fields["failsAt"] = json!(events.len() - 1);
    t.push(
        "legal hold flag neither 0 nor 1",
        Expect::Invalid("Malformed"),
        fields,
    );
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |_, t| {
        let hexes = t["events"].as_array().ok_or("events missing")?;
        let mut roster: Option<Roster> = None;
        for (i, e) in hexes.iter().enumerate() {
            let raw = hex::decode(e.as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
            let applied = RosterEvent::from_bytes(&raw)
                .map_err(RosterError::from)
                .and_then(|ev| match roster.as_mut() {
                    None => Roster::from_genesis(&ev).map(|r| roster = Some(r)),
                    Some(r) => r.apply(&ev),
                });
            if let Err(err) = applied {
                let at = uint(t, "failsAt")?;
                if at != i as u64 {
                    return Err(format!("failed at event {i}, expected at {at}: {err}"));
                }
                return Ok(Outcome::Invalid(err.class().to_owned()));
            }
        }
        let roster = roster.ok_or("no events")?;
        if roster.head() != array::<32>(t, "head")? {
            return Err("head hash differs".into());
        }
        for q in t["queries"].as_array().ok_or("queries missing")? {
            let device = DeviceId(array(q, "device")?);
            let file = FileId(array(q, "file")?);
            let got = roster.was_allowed_to_read(&device, &file, uint(q, "timeMs")?);
            if Some(got) != q["allowed"].as_bool() {
                return Err(format!("query {q} answered {got}"));
            }
        }
        if let Some(want) = t["adminAssistedRecovery"].as_bool() {
            if roster.admin_assisted_recovery() != want {
                return Err(format!("admin-assisted recovery is not {want}"));
            }
        }
        if let Some(want) = t["logKey"].as_str() {
            let got = roster
                .log_key()
                .map(|k| h(k.as_bytes()))
                .unwrap_or_default();
            if got != want {
                return Err(format!("log key {got}, expected {want}"));
            }
        }
        for q in t["retention"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let file = FileId(array(q, "file")?);
            let got = roster.retention_within(&file, uint(q, "withinLen")?);
            let want = match q["policySeq"].as_u64() {
                None => None,
                Some(seq) => Some((
                    seq,
                    RetentionPolicy {
                        chat_months: u16::try_from(uint(q, "chatMonths")?)
                            .map_err(|e| e.to_string())?,
                        docs_years: u16::try_from(uint(q, "docsYears")?)
                            .map_err(|e| e.to_string())?,
                        legal_hold: q["legalHold"].as_bool().ok_or("legalHold missing")?,
                    },
                )),
            };
            if got != want {
                return Err(format!("retention query {q} answered {got:?}"));
            }
        }
        Ok(Outcome::Valid)
    })
}
