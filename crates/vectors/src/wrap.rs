//! `member-key-wrap.json`, `team-key-wrap.json` and `epoch-key-wrap.json`
//! (`protocol-spec/key-hierarchy.md`).

use crate::{array, bytes, check_all, file, flip, h, uint, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, MemberId, TeamId};
use ledgerline_protocol::keys::{DeviceWrapSecret, EpochKey, MemberKey, TeamKey};
use ledgerline_protocol::wrap::{
    chain_epoch_key, unchain_epoch_key, unwrap_epoch_key, unwrap_member_key, unwrap_team_key,
    wrap_epoch_key, wrap_member_key, wrap_team_key, EpochChainContext, EpochKeyContext, Holder,
    MemberKeyContext, TeamKeyContext, UnwrapError,
};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

fn member_ctx_json(c: &MemberKeyContext) -> Value {
    json!({ "firm": h(&c.firm.0), "member": h(&c.member.0), "device": h(&c.device.0), "keyVersion": c.key_version })
}

fn member_ctx(v: &Value) -> Result<MemberKeyContext, String> {
    Ok(MemberKeyContext {
        firm: FirmId(array(v, "firm")?),
        member: MemberId(array(v, "member")?),
        device: DeviceId(array(v, "device")?),
        key_version: u32::try_from(uint(v, "keyVersion")?).map_err(|e| e.to_string())?,
    })
}

pub(crate) fn generate_member(rng: &mut ChaCha20Rng) -> Value {
    let device = DeviceWrapSecret::generate(rng);
    let other = DeviceWrapSecret::generate(rng);
    let ctx = MemberKeyContext {
        firm: FirmId::random(rng),
        member: MemberId::random(rng),
        device: DeviceId::random(rng),
        key_version: 3,
    };
    let mut t = Tests::default();
    let case = |secret: &DeviceWrapSecret,
                c: &MemberKeyContext,
                wrapped: &[u8],
                key: Option<&MemberKey>| {
        json!({
            "recipientSecret": h(&*secret.to_bytes()),
            "recipientPublic": h(secret.public_key().as_bytes()),
            "context": member_ctx_json(c),
            "wrapped": h(wrapped),
            "memberKey": key.map(|k| h(k.expose())).unwrap_or_default(),
        })
    };
    let mk = MemberKey::generate(rng);
    let w = wrap_member_key(&mk, &device.public_key(), &ctx, rng);
    t.push(
        "member key wrapped for a device",
        Expect::Valid,
        case(&device, &ctx, &w, Some(&mk)),
    );
    for v in [0u32, u32::MAX] {
        let c = MemberKeyContext {
            key_version: v,
            ..ctx
        };
        let k = MemberKey::generate(rng);
        let w2 = wrap_member_key(&k, &device.public_key(), &c, rng);
        t.push(
            &format!("key version {v}"),
            Expect::Valid,
            case(&device, &c, &w2, Some(&k)),
        );
    }

    t.push(
        "unwrapped with another device's secret",
        Expect::Invalid("AuthFailed"),
        case(&other, &ctx, &w, None),
    );
    let changes: [(&str, fn(&mut MemberKeyContext)); 4] = [
        ("firm", |c| c.firm.0[0] ^= 1),
        ("member", |c| c.member.0[5] ^= 1),
        ("device", |c| c.device.0[15] ^= 1),
        ("key version", |c| c.key_version += 1),
    ];
    for (name, change) in changes {
        let mut c = ctx;
        change(&mut c);
        t.push(
            &format!("associated data: {name} differs"),
            Expect::Invalid("AuthFailed"),
            case(&device, &c, &w, None),
        );
    }
    for (name, at) in [
        ("ephemeral key", 1usize),
        ("ephemeral key last byte", 32),
        ("ciphertext", 33),
        ("ciphertext end", 64),
        ("tag", 65),
        ("tag end", 80),
    ] {
        t.push(
            &format!("bit flipped in {name} (byte {at})"),
            Expect::Invalid("AuthFailed"),
            case(&device, &ctx, &flip(&w, at), None),
        );
    }
    t.push(
        "unknown version",
        Expect::Invalid("Malformed"),
        case(&device, &ctx, &flip(&w, 0), None),
    );
    t.push(
        "truncated",
        Expect::Invalid("Malformed"),
        case(&device, &ctx, &w[..w.len() - 1], None),
    );
    t.push(
        "trailing byte",
        Expect::Invalid("Malformed"),
        case(&device, &ctx, &[w.clone(), vec![0]].concat(), None),
    );
    t.push(
        "empty",
        Expect::Invalid("Malformed"),
        case(&device, &ctx, &[], None),
    );
    for (name, point) in [
        ("zero", [0u8; 32]),
        ("one", {
            let mut p = [0u8; 32];
            p[0] = 1;
            p
        }),
        (
            "order-8 point",
            hex32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        ),
        (
            "p - 1",
            hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        ),
    ] {
        let mut bad = w.clone();
        bad[1..33].copy_from_slice(&point);
        t.push(
            &format!("low-order ephemeral key: {name}"),
            Expect::Invalid("NonContributory"),
            case(&device, &ctx, &bad, None),
        );
    }

    file(
        "LEDGERLINE-MEMBER-KEY-WRAP-V1",
        "protocol-spec/key-hierarchy.md",
        &[
            (
                "Valid",
                "Unwrapping with recipientSecret and context yields memberKey.",
            ),
            ("Malformed", "Not 81 bytes of version 1."),
            (
                "NonContributory",
                "The X25519 result is all zeros (low-order ephemeral key).",
            ),
            (
                "AuthFailed",
                "ChaCha20-Poly1305 refuses: wrong key, context or bytes.",
            ),
        ],
        vec![t.group("MemberKeyUnwrap", json!({}))],
    )
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let _ = hex::decode_to_slice(s, &mut out);
    out
}

pub(crate) fn check_member(v: &Value) -> Result<Counts, String> {
    check_all(v, |_, t| {
        let secret = DeviceWrapSecret::from_bytes(array(t, "recipientSecret")?);
        let ctx = member_ctx(&t["context"])?;
        let r = unwrap_member_key(&bytes(t, "wrapped")?, &secret, &ctx);
        if let Ok(k) = &r {
            if k.expose()[..] != bytes(t, "memberKey")?[..] {
                return Err("unwrapped key differs".into());
            }
        }
        Ok(Outcome::of(r, UnwrapError::class))
    })
}

fn team_ctx_json(c: &TeamKeyContext) -> Value {
    json!({ "firm": h(&c.firm.0), "team": h(&c.team.0), "teamKeyVersion": c.team_key_version, "member": h(&c.member.0), "memberKeyVersion": c.member_key_version })
}

fn team_ctx(v: &Value) -> Result<TeamKeyContext, String> {
    let version = |k| u32::try_from(uint(v, k)?).map_err(|e| e.to_string());
    Ok(TeamKeyContext {
        firm: FirmId(array(v, "firm")?),
        team: TeamId(array(v, "team")?),
        team_key_version: version("teamKeyVersion")?,
        member: MemberId(array(v, "member")?),
        member_key_version: version("memberKeyVersion")?,
    })
}

pub(crate) fn generate_team(rng: &mut ChaCha20Rng) -> Value {
    let member_key = MemberKey::generate(rng);
    let other_key = MemberKey::generate(rng);
    let ctx = TeamKeyContext {
        firm: FirmId::random(rng),
        team: TeamId::random(rng),
        team_key_version: 2,
        member: MemberId::random(rng),
        member_key_version: 5,
    };
    let mut t = Tests::default();
    let case = |k: &MemberKey, c: &TeamKeyContext, w: &[u8], tk: Option<&TeamKey>| json!({ "memberKey": h(k.expose()), "context": team_ctx_json(c), "wrapped": h(w), "teamKey": tk.map(|k| h(k.expose())).unwrap_or_default() });
    let tk = TeamKey::generate(rng);
    let w = wrap_team_key(&tk, &member_key, &ctx, rng);
    t.push(
        "team key wrapped under a member key",
        Expect::Valid,
        case(&member_key, &ctx, &w, Some(&tk)),
    );
    t.push(
        "wrong member key",
        Expect::Invalid("AuthFailed"),
        case(&other_key, &ctx, &w, None),
    );
    let changes: [(&str, fn(&mut TeamKeyContext)); 5] = [
        ("firm", |c| c.firm.0[0] ^= 1),
        ("team", |c| c.team.0[0] ^= 1),
        ("team key version", |c| c.team_key_version += 1),
        ("member", |c| c.member.0[0] ^= 1),
        ("member key version", |c| c.member_key_version += 1),
    ];
    for (name, change) in changes {
        let mut c = ctx;
        change(&mut c);
        t.push(
            &format!("associated data: {name} differs"),
            Expect::Invalid("AuthFailed"),
            case(&member_key, &c, &w, None),
        );
    }
    // The same key wrapped as an epoch key (another KEK label) does not open as a team key.
    let as_epoch = wrap_epoch_key(
        &EpochKey::from_bytes(*tk.expose()),
        &member_key,
        &EpochKeyContext {
            firm: ctx.firm,
            file: FileId(ctx.team.0),
            epoch: 0,
            holder: Holder::Member(ctx.member),
            holder_key_version: ctx.member_key_version,
        },
        rng,
    );
    t.push(
        "an epoch-key wrap presented as a team-key wrap",
        Expect::Invalid("AuthFailed"),
        case(&member_key, &ctx, &as_epoch, None),
    );
    t.push(
        "bit flipped in the tag",
        Expect::Invalid("AuthFailed"),
        case(&member_key, &ctx, &flip(&w, 72), None),
    );
    t.push(
        "unknown version",
        Expect::Invalid("Malformed"),
        case(&member_key, &ctx, &flip(&w, 0), None),
    );
    t.push(
        "truncated",
        Expect::Invalid("Malformed"),
        case(&member_key, &ctx, &w[..72], None),
    );
    file(
        "LEDGERLINE-TEAM-KEY-WRAP-V1",
        "protocol-spec/key-hierarchy.md",
        &[
            ("Valid", "Unwrapping yields teamKey."),
            ("Malformed", "Not 73 bytes of version 1."),
            (
                "AuthFailed",
                "XChaCha20-Poly1305 refuses: wrong key, context, label or bytes.",
            ),
        ],
        vec![t.group("TeamKeyUnwrap", json!({}))],
    )
}

pub(crate) fn check_team(v: &Value) -> Result<Counts, String> {
    check_all(v, |_, t| {
        let r = unwrap_team_key(
            &bytes(t, "wrapped")?,
            &MemberKey::from_bytes(array(t, "memberKey")?),
            &team_ctx(&t["context"])?,
        );
        if let Ok(k) = &r {
            if k.expose()[..] != bytes(t, "teamKey")?[..] {
                return Err("unwrapped key differs".into());
            }
        }
        Ok(Outcome::of(r, UnwrapError::class))
    })
}

fn epoch_ctx_json(c: &EpochKeyContext) -> Value {
    let (kind, id) = match c.holder {
        Holder::Member(m) => ("member", m.0),
        Holder::Team(t) => ("team", t.0),
    };
    json!({ "firm": h(&c.firm.0), "file": h(&c.file.0), "epoch": c.epoch, "holderKind": kind, "holder": h(&id), "holderKeyVersion": c.holder_key_version })
}

fn epoch_ctx(v: &Value) -> Result<EpochKeyContext, String> {
    let id: [u8; 16] = array(v, "holder")?;
    let holder = match v["holderKind"].as_str() {
        Some("member") => Holder::Member(MemberId(id)),
        Some("team") => Holder::Team(TeamId(id)),
        _ => return Err("unknown holderKind".into()),
    };
    Ok(EpochKeyContext {
        firm: FirmId(array(v, "firm")?),
        file: FileId(array(v, "file")?),
        epoch: uint(v, "epoch")?,
        holder,
        holder_key_version: u32::try_from(uint(v, "holderKeyVersion")?)
            .map_err(|e| e.to_string())?,
    })
}

pub(crate) fn generate_epoch(rng: &mut ChaCha20Rng) -> Value {
    let holder_key = MemberKey::generate(rng);
    let other_key = MemberKey::generate(rng);
    let ctx = EpochKeyContext {
        firm: FirmId::random(rng),
        file: FileId::random(rng),
        epoch: 4,
        holder: Holder::Member(MemberId::random(rng)),
        holder_key_version: 2,
    };
    let mut t = Tests::default();
    let case = |k: &MemberKey, c: &EpochKeyContext, w: &[u8], ek: Option<&EpochKey>| json!({ "holderKey": h(k.expose()), "context": epoch_ctx_json(c), "wrapped": h(w), "epochKey": ek.map(|k| h(k.expose())).unwrap_or_default() });
    let ek = EpochKey::generate(rng);
    let w = wrap_epoch_key(&ek, &holder_key, &ctx, rng);
    t.push(
        "epoch key wrapped under a member key",
        Expect::Valid,
        case(&holder_key, &ctx, &w, Some(&ek)),
    );
    let c0 = EpochKeyContext {
        epoch: 0,
        holder_key_version: 0,
        ..ctx
    };
    let ek0 = EpochKey::generate(rng);
    t.push(
        "epoch 0, key version 0",
        Expect::Valid,
        case(
            &holder_key,
            &c0,
            &wrap_epoch_key(&ek0, &holder_key, &c0, rng),
            Some(&ek0),
        ),
    );
    t.push(
        "wrong member key",
        Expect::Invalid("AuthFailed"),
        case(&other_key, &ctx, &w, None),
    );
    let changes: [(&str, fn(&mut EpochKeyContext)); 5] = [
        ("firm", |c| c.firm.0[0] ^= 1),
        ("file", |c| c.file.0[0] ^= 1),
        ("epoch", |c| c.epoch += 1),
        ("holder", |c| c.holder = Holder::Member(MemberId([0; 16]))),
        ("holder key version", |c| c.holder_key_version += 1),
    ];
    for (name, change) in changes {
        let mut c = ctx;
        change(&mut c);
        t.push(
            &format!("associated data: {name} differs"),
            Expect::Invalid("AuthFailed"),
            case(&holder_key, &c, &w, None),
        );
    }
    for (name, at) in [
        ("nonce", 1usize),
        ("nonce end", 24),
        ("ciphertext", 25),
        ("tag", 60),
        ("tag end", 72),
    ] {
        t.push(
            &format!("bit flipped in {name} (byte {at})"),
            Expect::Invalid("AuthFailed"),
            case(&holder_key, &ctx, &flip(&w, at), None),
        );
    }
    t.push(
        "unknown version",
        Expect::Invalid("Malformed"),
        case(&holder_key, &ctx, &flip(&w, 0), None),
    );
    t.push(
        "truncated",
        Expect::Invalid("Malformed"),
        case(&holder_key, &ctx, &w[..72], None),
    );
    t.push(
        "trailing byte",
        Expect::Invalid("Malformed"),
        case(&holder_key, &ctx, &[w.clone(), vec![0]].concat(), None),
    );
    // Under a team key (holder kind 2); the kind is bound: the same 16 id bytes as a
    // member do not open it.
    let team_key = MemberKey::generate(rng);
    let team = TeamId::random(rng);
    let tctx = EpochKeyContext {
        holder: Holder::Team(team),
        holder_key_version: 3,
        ..ctx
    };
    let tw = wrap_epoch_key(&ek, &team_key, &tctx, rng);
    t.push(
        "epoch key wrapped under a team key",
        Expect::Valid,
        case(&team_key, &tctx, &tw, Some(&ek)),
    );
    t.push(
        "a team's wrap presented as a member's with the same id",
        Expect::Invalid("AuthFailed"),
        case(
            &team_key,
            &EpochKeyContext {
                holder: Holder::Member(MemberId(team.0)),
                ..tctx
            },
            &tw,
            None,
        ),
    );
    let wraps = t.group("EpochKeyUnwrap", json!({}));

    // The epoch chain: keys of epochs 0..=3; key n wraps key n-1.
    let mut t = Tests::default();
    let keys: Vec<EpochKey> = (0..4).map(|_| EpochKey::generate(rng)).collect();
    let chain_case = |newer: &EpochKey, epoch: u64, w: &[u8], older: Option<&EpochKey>| json!({ "firm": h(&ctx.firm.0), "file": h(&ctx.file.0), "epoch": epoch, "newerKey": h(newer.expose()), "wrapped": h(w), "olderKey": older.map(|k| h(k.expose())).unwrap_or_default() });
    let mut links = Vec::new();
    for e in 1..4u64 {
        let c = EpochChainContext {
            firm: ctx.firm,
            file: ctx.file,
            epoch: e,
        };
        let link =
            chain_epoch_key(&keys[e as usize], &keys[e as usize - 1], &c, rng).expect("epoch >= 1");
        t.push(
            &format!("key of epoch {e} unwraps key of epoch {}", e - 1),
            Expect::Valid,
            chain_case(&keys[e as usize], e, &link, Some(&keys[e as usize - 1])),
        );
        links.push(link);
    }
    t.push(
        "link used at another position in the chain",
        Expect::Invalid("AuthFailed"),
        chain_case(&keys[2], 2, &links[0], None),
    );
    t.push(
        "link opened with the older key",
        Expect::Invalid("AuthFailed"),
        chain_case(&keys[0], 1, &links[0], None),
    );
    t.push(
        "link opened with the member key derivation (wrong KEK label)",
        Expect::Invalid("AuthFailed"),
        chain_case(
            &EpochKey::from_bytes(*holder_key.expose()),
            1,
            &links[0],
            None,
        ),
    );
    t.push(
        "bit flipped in the link's ciphertext",
        Expect::Invalid("AuthFailed"),
        chain_case(&keys[1], 1, &flip(&links[0], 40), None),
    );
    t.push(
        "epoch 0 has no predecessor",
        Expect::Invalid("Malformed"),
        chain_case(&keys[1], 0, &links[0], None),
    );
    t.push(
        "truncated link",
        Expect::Invalid("Malformed"),
        chain_case(&keys[1], 1, &links[0][..10], None),
    );
    let chain = t.group("EpochChainUnwrap", json!({}));

    file(
        "LEDGERLINE-EPOCH-KEY-WRAP-V1",
        "protocol-spec/key-hierarchy.md",
        &[
            (
                "Valid",
                "Unwrapping yields epochKey (EpochKeyUnwrap) or olderKey (EpochChainUnwrap).",
            ),
            (
                "Malformed",
                "Not 73 bytes of version 1, or an impossible epoch.",
            ),
            (
                "AuthFailed",
                "XChaCha20-Poly1305 refuses: wrong key, context or bytes.",
            ),
        ],
        vec![wraps, chain],
    )
}

pub(crate) fn check_epoch(v: &Value) -> Result<Counts, String> {
    check_all(v, |g, t| {
        let (r, expected) = match g["type"].as_str() {
            Some("EpochKeyUnwrap") => (
                unwrap_epoch_key(
                    &bytes(t, "wrapped")?,
                    &MemberKey::from_bytes(array(t, "holderKey")?),
                    &epoch_ctx(&t["context"])?,
                ),
                "epochKey",
            ),
            Some("EpochChainUnwrap") => {
                let c = EpochChainContext {
                    firm: FirmId(array(t, "firm")?),
                    file: FileId(array(t, "file")?),
                    epoch: uint(t, "epoch")?,
                };
                (
                    unchain_epoch_key(
                        &bytes(t, "wrapped")?,
                        &EpochKey::from_bytes(array(t, "newerKey")?),
                        &c,
                    ),
                    "olderKey",
                )
            }
            other => return Err(format!("unknown group type {other:?}")),
        };
        if let Ok(k) = &r {
            if k.expose()[..] != bytes(t, expected)?[..] {
                return Err("unwrapped key differs".into());
            }
        }
        Ok(Outcome::of(r, UnwrapError::class))
    })
}
