//! `invite.json` (`protocol-spec/invites.md`).

use crate::{array, bytes, check_all, file, flip, h, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::invite::{Invite, InviteError};
use ledgerline_protocol::keys::MasterSigningKey;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

fn code_case(code: &str, inv: Option<&Invite>) -> Value {
    json!({
        "code": code,
        "secret": inv.map(|i| h(i.secret())).unwrap_or_default(),
        "fingerprint": inv.map(|i| h(&i.inviter())).unwrap_or_default(),
        "inviteId": inv.map(|i| h(&i.id())).unwrap_or_default(),
    })
}

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    let admin = MasterSigningKey::generate(rng);
    let inv = Invite::generate(&admin.verifying_key(), rng);
    let inv2 = Invite::generate(&admin.verifying_key(), rng);
    let code = inv.code();
    let mut t = Tests::default();
    t.push(
        "code as generated",
        Expect::Valid,
        code_case(&code, Some(&inv)),
    );
    t.push(
        "second invitation",
        Expect::Valid,
        code_case(&inv2.code(), Some(&inv2)),
    );
    t.push(
        "lowercase, spaces instead of dashes",
        Expect::Valid,
        code_case(&code.to_lowercase().replace('-', " "), Some(&inv)),
    );
    t.push(
        "look-alikes: O for 0, I or L for 1",
        Expect::Valid,
        code_case(&code.replace('0', "O").replace('1', "I"), Some(&inv)),
    );
    // A typo in the body: change the 10th code character to another symbol.
    let typo = {
        let mut c: Vec<char> = code.chars().collect();
        c[10] = if c[10] == 'Q' { 'R' } else { 'Q' };
        c.into_iter().collect::<String>()
    };
    t.push(
        "one character mistyped",
        Expect::Invalid("BadChecksum"),
        code_case(&typo, None),
    );
    let swapped = {
        let mut c: Vec<char> = code.chars().collect();
        let (i, j) = (4, 5);
        if c[i] == c[j] {
            c[i] = if c[i] == 'A' { 'B' } else { 'A' };
        }
        c.swap(i, j);
        c.into_iter().collect::<String>()
    };
    t.push(
        "two characters swapped",
        Expect::Invalid("BadChecksum"),
        code_case(&swapped, None),
    );
    t.push(
        "missing prefix",
        Expect::Invalid("Malformed"),
        code_case(&code[3..], None),
    );
    t.push(
        "last group missing",
        Expect::Invalid("Malformed"),
        code_case(&code[..code.len() - 3], None),
    );
    t.push(
        "extra group",
        Expect::Invalid("Malformed"),
        code_case(&format!("{code}-ABCDE"), None),
    );
    t.push(
        "character outside the alphabet (U)",
        Expect::Invalid("Malformed"),
        code_case(&code.replacen(&code[4..5], "U", 1), None),
    );
    t.push("empty", Expect::Invalid("Malformed"), code_case("", None));
    // Version 2 with a correct checksum: well-formed but unknown.
    let v2 = {
        let mut raw = vec![2u8];
        raw.extend_from_slice(inv.secret());
        raw.extend_from_slice(&inv.inviter());
        let sum =
            sha2::Sha256::digest([b"ledgerline/v1/invite-code".as_slice(), &[0], &raw].concat());
        raw.extend_from_slice(&sum[..2]);
        format!("LL-{}", base32::encode(base32::Alphabet::Crockford, &raw))
    };
    t.push(
        "version 2 with a valid checksum",
        Expect::Invalid("Malformed"),
        code_case(&v2, None),
    );
    let codes = t.group("InviteCodeParse", json!({}));

    let mut t = Tests::default();
    let request = br#"{"member":"5d41402abc4b2a76b9719d911017c592","name":"Anna Nowak"}"#;
    let sealed = inv.seal_request(request, rng);
    let jr = |i: &Invite, s: &[u8], req: Option<&[u8]>| json!({ "secret": h(i.secret()), "fingerprint": h(&i.inviter()), "sealed": h(s), "request": req.map(h).unwrap_or_default() });
    t.push(
        "join request for this invitation",
        Expect::Valid,
        jr(&inv, &sealed, Some(request)),
    );
    t.push(
        "opened with another invitation",
        Expect::Invalid("AuthFailed"),
        jr(&inv2, &sealed, None),
    );
    for (name, at) in [
        ("nonce", 1usize),
        ("ciphertext", 30),
        ("tag", sealed.len() - 1),
    ] {
        t.push(
            &format!("bit flipped in {name}"),
            Expect::Invalid("AuthFailed"),
            jr(&inv, &flip(&sealed, at), None),
        );
    }
    t.push(
        "unknown version",
        Expect::Invalid("Malformed"),
        jr(&inv, &flip(&sealed, 0), None),
    );
    t.push(
        "shorter than nonce and tag",
        Expect::Invalid("Malformed"),
        jr(&inv, &sealed[..40], None),
    );
    let requests = t.group("JoinRequestOpen", json!({}));

    file(
        "LEDGERLINE-INVITE-V1",
        "protocol-spec/invites.md",
        &[
            ("Valid", "The code parses to secret, fingerprint and invite id; the join request opens to request."),
            ("Malformed", "Not a code or sealed request of version 1."),
            ("BadChecksum", "The code's checksum does not match: a typo."),
            ("AuthFailed", "The join request does not open under this invitation."),
        ],
        vec![codes, requests],
    )
}

use sha2::Digest;

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |g, t| match g["type"].as_str() {
        Some("InviteCodeParse") => {
            let r = Invite::parse(t["code"].as_str().ok_or("code missing")?);
            if let Ok(inv) = &r {
                if inv.secret()[..] != bytes(t, "secret")?[..]
                    || inv.inviter()[..] != bytes(t, "fingerprint")?[..]
                    || inv.id()[..] != bytes(t, "inviteId")?[..]
                {
                    return Err("parsed fields differ".into());
                }
            }
            Ok(Outcome::of(r, InviteError::class))
        }
        Some("JoinRequestOpen") => {
            let inv = Invite::from_parts(array(t, "secret")?, array(t, "fingerprint")?);
            let r = inv.open_request(&bytes(t, "sealed")?);
            if let Ok(pt) = &r {
                if pt[..] != bytes(t, "request")?[..] {
                    return Err("request differs".into());
                }
            }
            Ok(Outcome::of(r, InviteError::class))
        }
        other => Err(format!("unknown group type {other:?}")),
    })
}
