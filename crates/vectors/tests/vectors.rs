//! The committed vectors are exactly what the generator produces, and every case checks.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use ledgerline_vectors::{render, CONSTRUCTIONS};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

fn load(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn committed_files_match_the_generator_byte_for_byte() {
    for c in CONSTRUCTIONS {
        let fresh = render(c).unwrap();
        let committed = std::fs::read_to_string(dir().join(c.file)).unwrap();
        assert!(
            fresh == committed,
            "{} differs from the generator: run `cargo run --bin gen-vectors`",
            c.file
        );
    }
}

#[test]
fn every_committed_case_checks_and_the_suite_is_large_enough() {
    let mut total = 0;
    for c in CONSTRUCTIONS {
        let counts = (c.check)(&load(c.file)).unwrap_or_else(|e| panic!("{}: {e}", c.file));
        println!(
            "{:24} valid {:3}  invalid {:3}",
            c.file, counts.valid, counts.invalid
        );
        assert!(
            counts.valid > 0 && counts.invalid > 0,
            "{} needs valid and invalid cases",
            c.file
        );
        total += counts.valid + counts.invalid;
    }
    assert!(total >= 150, "only {total} cases");
}

#[test]
fn every_file_has_the_wycheproof_layout() {
    for c in CONSTRUCTIONS {
        let v = load(c.file);
        assert!(v["algorithm"].is_string(), "{}", c.file);
        let mut ids = Vec::new();
        for g in v["testGroups"].as_array().unwrap() {
            assert!(g["type"].is_string());
            for t in g["tests"].as_array().unwrap() {
                ids.push(t["tcId"].as_u64().unwrap());
                assert!(t["comment"].as_str().is_some_and(|s| !s.is_empty()));
                let flags = t["flags"].as_array().unwrap();
                assert_eq!(flags.len(), 1, "{}: exactly one flag per case", c.file);
                assert!(
                    v["notes"][flags[0].as_str().unwrap()].is_string(),
                    "{}: flag {} undocumented",
                    c.file,
                    flags[0]
                );
                assert!(matches!(t["result"].as_str(), Some("valid" | "invalid")));
            }
        }
        let spec_file = v["specification"].as_str().unwrap();
        let spec = std::fs::read_to_string(dir().join("..").join(spec_file))
            .unwrap_or_else(|e| panic!("{}: {spec_file}: {e}", c.file));
        assert!(
            spec.contains(&format!("test-vectors/{}", c.file)),
            "{spec_file} does not describe {}",
            c.file
        );
        let expected: Vec<u64> = (1..=ids.len() as u64).collect();
        assert_eq!(ids, expected, "{}: tcIds must run 1..n", c.file);
        assert_eq!(v["numberOfTests"].as_u64(), Some(ids.len() as u64));
    }
}

/// A checker that cannot fail proves nothing: altering an expectation must be caught.
#[test]
fn checkers_catch_a_wrong_expectation() {
    for c in CONSTRUCTIONS {
        let original = load(c.file);
        let groups = original["testGroups"].as_array().unwrap();
        let n_groups = groups.len();
        for gi in 0..n_groups {
            let tests = original["testGroups"][gi]["tests"].as_array().unwrap();
            // Turn the first valid case invalid, and give the first invalid case another class.
            if let Some(ti) = tests.iter().position(|t| t["result"] == "valid") {
                let mut v = original.clone();
                v["testGroups"][gi]["tests"][ti]["result"] = "invalid".into();
                assert!(
                    (c.check)(&v).is_err(),
                    "{}: flipped result went unnoticed",
                    c.file
                );
            }
            if let Some(ti) = tests.iter().position(|t| t["result"] == "invalid") {
                let mut v = original.clone();
                v["testGroups"][gi]["tests"][ti]["flags"] = serde_json::json!(["SomethingElse"]);
                assert!(
                    (c.check)(&v).is_err(),
                    "{}: wrong failure class went unnoticed",
                    c.file
                );
            }
        }
    }
}
