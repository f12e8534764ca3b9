//! Ledgerline's test vectors: a deterministic generator and an independent checker.
//!
//! Every file in `test-vectors/` follows the Wycheproof layout (`algorithm`,
//! `numberOfTests`, `testGroups[].tests[]` with `tcId`, `comment`, `result`, `flags`; bytes
//! in lowercase hex) and is described in `protocol-spec/test-vectors.md`. An invalid case
//! carries exactly one flag: the failure class the implementation must report, so that a
//! parsing bug cannot pass as an authentication failure.
//!
//! The generator states the expected outcome of each case; the checker then recomputes it
//! through the public API of `ledgerline-protocol`, and generation fails if the two differ.

// A generator whose own invariants fail must stop loudly rather than write vectors.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

mod audit;
mod checkpoint;
mod document;
mod history;
mod invite;
mod merkle;
mod prekey;
mod record;
mod recovery;
mod request;
mod roster;
mod wrap;

pub mod fuzzing;

/// One vector file: its name, and its generator and checker.
#[derive(Debug, Clone, Copy)]
pub struct Construction {
    /// File name under `test-vectors/`.
    pub file: &'static str,
    /// Builds the file's JSON from a seeded RNG.
    pub generate: fn(&mut ChaCha20Rng) -> Value,
    /// Verifies every case of a file.
    pub check: fn(&Value) -> Result<Counts, String>,
}

/// All constructions, in the order of the spec index.
pub const CONSTRUCTIONS: &[Construction] = &[
    Construction {
        file: "signed-request.json",
        generate: request::generate,
        check: request::check,
    },
    Construction {
        file: "roster.json",
        generate: roster::generate,
        check: roster::check,
    },
    Construction {
        file: "invite.json",
        generate: invite::generate,
        check: invite::check,
    },
    Construction {
        file: "member-key-wrap.json",
        generate: wrap::generate_member,
        check: wrap::check_member,
    },
    Construction {
        file: "team-key-wrap.json",
        generate: wrap::generate_team,
        check: wrap::check_team,
    },
    Construction {
        file: "epoch-key-wrap.json",
        generate: wrap::generate_epoch,
        check: wrap::check_epoch,
    },
    Construction {
        file: "prekey.json",
        generate: prekey::generate,
        check: prekey::check,
    },
    Construction {
        file: "record.json",
        generate: record::generate,
        check: record::check,
    },
    Construction {
        file: "document-stream.json",
        generate: document::generate,
        check: document::check,
    },
    Construction {
        file: "audit-leaf.json",
        generate: audit::generate,
        check: audit::check,
    },
    Construction {
        file: "merkle-proof.json",
        generate: merkle::generate,
        check: merkle::check,
    },
    Construction {
        file: "checkpoint.json",
        generate: checkpoint::generate,
        check: checkpoint::check,
    },
    Construction {
        file: "history-page.json",
        generate: history::generate,
        check: history::check,
    },
    Construction {
        file: "recovery.json",
        generate: recovery::generate,
        check: recovery::check,
    },
];

/// Valid and invalid cases seen by a checker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Cases with `result = valid`.
    pub valid: usize,
    /// Cases with `result = invalid`.
    pub invalid: usize,
}

/// A deterministic RNG per file: seeded with SHA-256 of the file name.
pub fn rng_for(file: &str) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(
        Sha256::digest(format!("ledgerline test vectors v1 {file}").as_bytes()).into(),
    )
}

/// Generates one file's canonical text (pretty JSON, trailing newline) and checks it.
pub fn render(c: &Construction) -> Result<String, String> {
    let value = (c.generate)(&mut rng_for(c.file));
    (c.check)(&value).map_err(|e| format!("{}: generated vectors do not check: {e}", c.file))?;
    let mut text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// Expected outcome of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    Valid,
    Invalid(&'static str),
}

/// Collects the tests of one group.
#[derive(Debug, Default)]
pub(crate) struct Tests {
    tests: Vec<Value>,
}

impl Tests {
    pub(crate) fn push(&mut self, comment: &str, expect: Expect, fields: Value) {
        let mut t = Map::new();
        t.insert("tcId".into(), json!(0));
        t.insert("comment".into(), json!(comment));
        let (result, flags) = match expect {
            Expect::Valid => ("valid", vec!["Valid"]),
            Expect::Invalid(class) => ("invalid", vec![class]),
        };
        t.insert("result".into(), json!(result));
        t.insert("flags".into(), json!(flags));
        if let Value::Object(f) = fields {
            t.extend(f);
        }
        self.tests.push(Value::Object(t));
    }

    pub(crate) fn group(self, kind: &str, mut extra: Value) -> Value {
        let mut g = Map::new();
        g.insert("type".into(), json!(kind));
        if let Value::Object(f) = extra.take() {
            g.extend(f);
        }
        g.insert("tests".into(), Value::Array(self.tests));
        Value::Object(g)
    }
}

/// Assembles a file and numbers its tests 1..n.
pub(crate) fn file(
    algorithm: &str,
    spec: &str,
    notes: &[(&str, &str)],
    mut groups: Vec<Value>,
) -> Value {
    let mut n = 0u64;
    for g in &mut groups {
        if let Some(Value::Array(tests)) = g.get_mut("tests") {
            for t in tests {
                n += 1;
                t["tcId"] = json!(n);
            }
        }
    }
    let notes: Map<String, Value> = notes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({
        "algorithm": algorithm,
        "generatorVersion": "1",
        "specification": spec,
        "numberOfTests": n,
        "header": ["Generated by `cargo run --bin gen-vectors`; do not edit by hand."],
        "notes": notes,
        "testGroups": groups,
    })
}

/// Lowercase hex.
pub(crate) fn h(b: &[u8]) -> String {
    hex::encode(b)
}

/// Flips one bit (bit 0 of byte `at`).
pub(crate) fn flip(b: &[u8], at: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    if let Some(x) = v.get_mut(at) {
        *x ^= 1;
    }
    v
}

/// Runs `one` on every test of every group, comparing the outcome with the expectation.
pub(crate) fn check_all(
    file: &Value,
    mut one: impl FnMut(&Value, &Value) -> Result<Outcome, String>,
) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let declared = file["numberOfTests"]
        .as_u64()
        .ok_or("numberOfTests missing")?;
    let groups = file["testGroups"].as_array().ok_or("testGroups missing")?;
    let mut seen = 0u64;
    for g in groups {
        for t in g["tests"].as_array().ok_or("tests missing")? {
            seen += 1;
            let id = t["tcId"].as_u64().unwrap_or(0);
            let flags = t["flags"]
                .as_array()
                .ok_or(format!("tcId {id}: flags missing"))?;
            let flag = flags
                .first()
                .and_then(Value::as_str)
                .ok_or(format!("tcId {id}: flag missing"))?;
            let got = one(g, t).map_err(|e| format!("tcId {id}: {e}"))?;
            match (t["result"].as_str(), got) {
                (Some("valid"), Outcome::Valid) => counts.valid += 1,
                (Some("invalid"), Outcome::Invalid(class)) if class == flag => counts.invalid += 1,
                (r, got) => {
                    return Err(format!(
                        "tcId {id} ({}): expected {r:?}/{flag}, got {got:?}",
                        t["comment"]
                    ))
                }
            }
        }
    }
    if seen != declared {
        return Err(format!("numberOfTests says {declared}, file has {seen}"));
    }
    Ok(counts)
}

/// What a checker observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Valid,
    Invalid(String),
}

impl Outcome {
    pub(crate) fn of<T, E>(r: Result<T, E>, class: impl Fn(&E) -> &'static str) -> Self {
        match r {
            Ok(_) => Self::Valid,
            Err(e) => Self::Invalid(class(&e).to_owned()),
        }
    }
}

/// Reads a hex field.
pub(crate) fn bytes(v: &Value, field: &str) -> Result<Vec<u8>, String> {
    let s = v[field].as_str().ok_or(format!("{field} missing"))?;
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{field} is not lowercase hex"));
    }
    hex::decode(s).map_err(|e| format!("{field}: {e}"))
}

/// Reads a fixed-size hex field.
pub(crate) fn array<const N: usize>(v: &Value, field: &str) -> Result<[u8; N], String> {
    bytes(v, field)?
        .try_into()
        .map_err(|_| format!("{field} is not {N} bytes"))
}

/// Reads an unsigned integer field.
pub(crate) fn uint(v: &Value, field: &str) -> Result<u64, String> {
    v[field].as_u64().ok_or(format!("{field} missing"))
}
