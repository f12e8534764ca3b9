//! Every CI run replays inputs through every fuzz target's body
//! (`ledgerline_vectors::fuzzing`): the regression inputs kept under
//! `fuzz/regressions/<target>/` (inputs a fuzzer once broke a decoder with), every string of
//! the test vectors (hex decoded, and as text), and deterministic mutations of them
//! (truncations, flipped bytes, inserted and removed bytes). A panic — on untrusted input,
//! or from a decoding that is not canonical — fails the test. The long runs are
//! `cargo +nightly fuzz run TARGET` (SECURITY.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ledgerline_vectors::fuzzing::{mutations, TARGETS};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every string in the test vectors: its bytes, and (when it is hex) what it encodes.
fn vector_inputs() -> BTreeSet<Vec<u8>> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<Vec<u8>>) {
        match v {
            serde_json::Value::String(s) => {
                if let Ok(bytes) = hex::decode(s) {
                    out.insert(bytes);
                }
                out.insert(s.as_bytes().to_vec());
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    let dir = root().join("test-vectors");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            walk(&v, &mut out);
        }
    }
    out
}

#[test]
fn every_fuzz_target_survives_the_regressions_the_vectors_and_their_mutations() {
    let seeds = vector_inputs();
    assert!(
        seeds.len() > 500,
        "the test vectors are where they should be"
    );
    let mut rng = ChaCha20Rng::seed_from_u64(0x1ed6e71e);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for s in &seeds {
        inputs.extend(mutations(s, &mut rng));
        inputs.push(s.clone());
    }
    inputs.push(Vec::new());
    let mut replayed = 0usize;
    for (name, body) in TARGETS {
        let dir = root().join("fuzz/regressions").join(name);
        let mut own: Vec<Vec<u8>> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries {
                let p = e.unwrap().path();
                if p.is_file() && p.extension().is_none_or(|x| x != "md") {
                    own.push(std::fs::read(&p).unwrap());
                }
            }
        }
        for input in own.iter().chain(inputs.iter()) {
            body(input);
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len() * inputs.len());
}

/// Targets whose body lives in another crate, replayed by that crate's tests
/// (`relay_bodies`: `relay/tests/rejections.rs`; `mail_message` and `ksef_invoice`: the
/// client core's `mail::tests` and `ksef::tests`).
const ELSEWHERE: &[&str] = &["relay_bodies", "mail_message", "ksef_invoice"];

#[test]
fn every_fuzz_target_is_listed_and_has_its_binary() {
    let listed: BTreeSet<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("fuzz/fuzz_targets"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let on_disk: BTreeSet<&str> = on_disk
        .iter()
        .map(String::as_str)
        .filter(|n| !ELSEWHERE.contains(n))
        .collect();
    assert_eq!(
        listed, on_disk,
        "fuzz/fuzz_targets and fuzzing::TARGETS differ"
    );
    for name in &listed {
        let body =
            std::fs::read_to_string(root().join(format!("fuzz/fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            body.contains(&format!("fuzzing::{name}(data)")),
            "{name}.rs does not run fuzzing::{name}"
        );
    }
}
