//! `recovery.json` (`protocol-spec/recovery.md`).

use crate::{array, bytes, check_all, file, flip, h, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::ids::{FirmId, MemberId};
use ledgerline_protocol::keys::{verifying_key_from_bytes, MasterSigningKey, WrapPublicKey};
use ledgerline_protocol::recovery::{
    open_item, seal_item, sign_backup_key, verify_backup_key, ItemContext, ItemKind, RecoveryKey,
    RecoveryKeyError,
};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use serde_json::{json, Value};
use sha2::Digest;

fn key_case(text: &str, key: Option<&RecoveryKey>) -> Value {
    json!({
        "text": text,
        "recoveryKey": key.map(|k| h(k.as_bytes())).unwrap_or_default(),
        "backupKey": key.map(|k| h(k.backup_key().as_bytes())).unwrap_or_default(),
        "recoveryId": key.map(|k| h(&k.id())).unwrap_or_default(),
    })
}

fn kind_name(k: ItemKind) -> &'static str {
    match k {
        ItemKind::Identity => "identity",
        ItemKind::MemberKey => "memberKey",
        ItemKind::RoomKey => "roomKey",
    }
}

fn kind_of(name: &str) -> Result<ItemKind, String> {
    match name {
        "identity" => Ok(ItemKind::Identity),
        "memberKey" => Ok(ItemKind::MemberKey),
        "roomKey" => Ok(ItemKind::RoomKey),
        other => Err(format!("unknown kind {other}")),
    }
}

fn item_case(key: &RecoveryKey, c: &ItemContext<'_>, sealed: &[u8], plain: Option<&[u8]>) -> Value {
    json!({
        "recoveryKey": h(key.as_bytes()),
        "context": {
            "firm": h(&c.firm.0),
            "member": h(&c.member.0),
            "kind": kind_name(c.kind),
            "id": h(c.id),
        },
        "sealed": h(sealed),
        "plaintext": plain.map(h).unwrap_or_default(),
    })
}

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let key = RecoveryKey::generate(rng);
    let other = RecoveryKey::generate(rng);
    let text = key.to_text();
    let mut t = Tests::default();
    t.push(
        "text as generated",
        Expect::Valid,
        key_case(&text, Some(&key)),
    );
    t.push(
        "second key",
        Expect::Valid,
        key_case(&other.to_text(), Some(&other)),
    );
    t.push(
        "without spaces",
        Expect::Valid,
        key_case(&text.replace(' ', ""), Some(&key)),
    );
    t.push(
        "dashes and a line break instead of spaces",
        Expect::Valid,
        key_case(
            &text.replacen(' ', "-", 3).replacen(' ', "\n", 1),
            Some(&key),
        ),
    );
    let typo = {
        let mut c: Vec<char> = text.chars().collect();
        c[5] = if c[5] == 'z' { 'y' } else { 'z' };
        c.into_iter().collect::<String>()
    };
    t.push(
        "one character mistyped",
        Expect::Invalid("BadChecksum"),
        key_case(&typo, None),
    );
    t.push(
        "last group missing",
        Expect::Invalid("Malformed"),
        key_case(&text[..text.rfind(' ').unwrap_or(0)], None),
    );
    t.push(
        "character outside the alphabet (0)",
        Expect::Invalid("Malformed"),
        key_case(&text.replacen(&text[2..3], "0", 1), None),
    );
    t.push("empty", Expect::Invalid("Malformed"), key_case("", None));
    // Version 2 with a correct checksum: well-formed but unknown.
    let v2 = {
        let mut raw = vec![2u8];
        raw.extend_from_slice(key.as_bytes());
        let sum =
            sha2::Sha256::digest([b"ledgerline/v1/recovery-key".as_slice(), &[0], &raw].concat());
        raw.extend_from_slice(&sum[..3]);
        bs58::encode(raw).into_string()
    };
    t.push(
        "version 2 with a valid checksum",
        Expect::Invalid("Malformed"),
        key_case(&v2, None),
    );
    let keys = t.group("RecoveryKeyParse", json!({}));

    let mut t = Tests::default();
    let firm = FirmId::random(rng);
    let member = MemberId::random(rng);
    let sid = b"wS1+Zq3k9rNf6PpJp8mGkT0cYw3l3nQF2u6bM4X0bYk";
    let mut mk = [0u8; 32];
    rng.fill_bytes(&mut mk);
    let cases: [(ItemKind, &[u8], Vec<u8>); 3] = [
        (
            ItemKind::Identity,
            b"",
            br#"{"master":"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60","name":"Celina W\u00f3jcik"}"#.to_vec(),
        ),
        (ItemKind::MemberKey, &[0, 0, 0, 2], mk.to_vec()),
        (
            ItemKind::RoomKey,
            sid,
            br#"{"room":"2650e04fbaad626651a60ae13f5b82e9","session_id":"wS1+Zq3k9rNf6PpJp8mGkT0cYw3l3nQF2u6bM4X0bYk","session_key":"AQ...","owner":"5d41402abc4b2a76b9719d911017c592"}"#.to_vec(),
        ),
    ];
    let mut sealed_room = Vec::new();
    for (kind, id, plain) in &cases {
        let c = ItemContext {
            firm,
            member,
            kind: *kind,
            id,
        };
        let sealed = seal_item(plain, &key.backup_key(), &c, rng);
        t.push(
            &format!("{} item", kind_name(*kind)),
            Expect::Valid,
            item_case(&key, &c, &sealed, Some(plain)),
        );
        if *kind == ItemKind::RoomKey {
            sealed_room = sealed;
        }
    }
    let c = ItemContext {
        firm,
        member,
        kind: ItemKind::RoomKey,
        id: sid,
    };
    t.push(
        "another recovery key",
        Expect::Invalid("AuthFailed"),
        item_case(&other, &c, &sealed_room, None),
    );
    t.push(
        "presented as a member key",
        Expect::Invalid("AuthFailed"),
        item_case(
            &key,
            &ItemContext {
                kind: ItemKind::MemberKey,
                ..c.clone()
            },
            &sealed_room,
            None,
        ),
    );
    t.push(
        "under another session's id",
        Expect::Invalid("AuthFailed"),
        item_case(
            &key,
            &ItemContext {
                id: b"other-session",
                ..c.clone()
            },
            &sealed_room,
            None,
        ),
    );
    t.push(
        "another member's backup",
        Expect::Invalid("AuthFailed"),
        item_case(
            &key,
            &ItemContext {
                member: MemberId::random(rng),
                ..c.clone()
            },
            &sealed_room,
            None,
        ),
    );
    t.push(
        "ciphertext bit flipped",
        Expect::Invalid("AuthFailed"),
        item_case(&key, &c, &flip(&sealed_room, 40), None),
    );
    t.push(
        "truncated below the tag",
        Expect::Invalid("Malformed"),
        item_case(&key, &c, &sealed_room[..40], None),
    );
    let mut v2 = sealed_room.clone();
    v2[0] = 2;
    t.push(
        "version 2",
        Expect::Invalid("Malformed"),
        item_case(&key, &c, &v2, None),
    );
    let mut low = sealed_room.clone();
    low[1..33].copy_from_slice(&[0; 32]);
    t.push(
        "low-order ephemeral key: zero",
        Expect::Invalid("NonContributory"),
        item_case(&key, &c, &low, None),
    );
    let items = t.group("BackupItemOpen", json!({}));

    let mut t = Tests::default();
    let master = MasterSigningKey::generate(rng);
    let sig = sign_backup_key(&master, firm, member, &key.backup_key(), &key.id());
    let sig_case = |m: MemberId, b: &RecoveryKey, s: &[u8]| {
        json!({
            "masterKey": h(master.verifying_key().as_bytes()),
            "firm": h(&firm.0),
            "member": h(&m.0),
            "backupKey": h(b.backup_key().as_bytes()),
            "recoveryId": h(&b.id()),
            "signature": h(s),
        })
    };
    t.push("as signed", Expect::Valid, sig_case(member, &key, &sig));
    t.push(
        "another member",
        Expect::Invalid("BadSignature"),
        sig_case(MemberId::random(rng), &key, &sig),
    );
    t.push(
        "another backup key",
        Expect::Invalid("BadSignature"),
        sig_case(member, &other, &sig),
    );
    t.push(
        "signature bit flipped",
        Expect::Invalid("BadSignature"),
        sig_case(member, &key, &flip(&sig, 10)),
    );
    let sigs = t.group("BackupKeySignature", json!({}));

    file(
        "LEDGERLINE-RECOVERY-V1",
        "protocol-spec/recovery.md",
        &[
            (
                "Valid",
                "The text parses to recoveryKey, from which backupKey and recoveryId derive; the item opens to plaintext; the signature verifies.",
            ),
            ("Malformed", "Not a recovery key or sealed item of version 1."),
            ("BadChecksum", "The recovery key's checksum does not match: a typo."),
            ("AuthFailed", "The item does not open under this key and context."),
            (
                "NonContributory",
                "The X25519 result is all zeros (low-order ephemeral key).",
            ),
            ("BadSignature", "The master key did not sign this backup key, member and id."),
        ],
        vec![keys, items, sigs],
    )
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |g, t| match g["type"].as_str() {
        Some("RecoveryKeyParse") => {
            let r = RecoveryKey::parse(t["text"].as_str().ok_or("text missing")?);
            if let Ok(k) = &r {
                if k.as_bytes()[..] != bytes(t, "recoveryKey")?[..]
                    || k.backup_key().as_bytes()[..] != bytes(t, "backupKey")?[..]
                    || k.id()[..] != bytes(t, "recoveryId")?[..]
                {
                    return Err("derived values differ".into());
                }
            }
            Ok(Outcome::of(r, RecoveryKeyError::class))
        }
        Some("BackupItemOpen") => {
            let key = RecoveryKey::from_bytes(array(t, "recoveryKey")?);
            let c = &t["context"];
            let id = bytes(c, "id")?;
            let ctx = ItemContext {
                firm: FirmId(array(c, "firm")?),
                member: MemberId(array(c, "member")?),
                kind: kind_of(c["kind"].as_str().ok_or("kind missing")?)?,
                id: &id,
            };
            let r = open_item(&bytes(t, "sealed")?, &key, &ctx);
            if let Ok(pt) = &r {
                if pt[..] != bytes(t, "plaintext")?[..] {
                    return Err("plaintext differs".into());
                }
            }
            Ok(Outcome::of(r, |e| e.class()))
        }
        Some("BackupKeySignature") => {
            let master = verifying_key_from_bytes(&array(t, "masterKey")?)
                .map_err(|_| "masterKey is not a point")?;
            let ok = verify_backup_key(
                &master,
                FirmId(array(t, "firm")?),
                MemberId(array(t, "member")?),
                &WrapPublicKey::from(array::<32>(t, "backupKey")?),
                &array(t, "recoveryId")?,
                &array(t, "signature")?,
            );
            Ok(if ok {
                Outcome::Valid
            } else {
                Outcome::Invalid("BadSignature".into())
            })
        }
        other => Err(format!("unknown group type {other:?}")),
    })
}
