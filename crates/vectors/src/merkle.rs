//! `merkle-proof.json` (`protocol-spec/audit-log.md`, "Merkle tree").

use crate::{array, check_all, file, h, uint, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
    Hash, ProofError,
};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

/// Leaf i of the vector trees is SHA-256(0x00 || u64be(i)).
fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
        .collect()
}

fn hexes(p: &[Hash]) -> Vec<String> {
    p.iter().map(|x| h(x)).collect()
}

fn flip_hash(p: &[Hash], i: usize) -> Vec<Hash> {
    let mut p = p.to_vec();
    if let Some(x) = p.get_mut(i) {
        x[0] ^= 1;
    }
    p
}

pub(crate) fn generate(_rng: &mut ChaCha20Rng) -> Value {
    let all = leaves(16);
    let incl = |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash| json!({ "leafHash": h(leaf), "index": index, "treeSize": size, "proof": hexes(proof), "root": h(root) });
    let mut t = Tests::default();
    for (size, index) in [
        (1usize, 0usize),
        (2, 1),
        (7, 0),
        (7, 3),
        (7, 6),
        (8, 5),
        (13, 12),
        (16, 9),
    ] {
        let l = &all[..size];
        let p = inclusion_proof(l, index).expect("in range");
        t.push(
            &format!("leaf {index} of {size}"),
            Expect::Valid,
            incl(&l[index], index as u64, size as u64, &p, &root(l)),
        );
    }
    let l = &all[..7];
    let r7 = root(l);
    let p = inclusion_proof(l, 3).expect("in range");
    t.push(
        "proof hash 0 bit-flipped",
        Expect::Invalid("RootMismatch"),
        incl(&l[3], 3, 7, &flip_hash(&p, 0), &r7),
    );
    t.push(
        "proof hash 2 bit-flipped",
        Expect::Invalid("RootMismatch"),
        incl(&l[3], 3, 7, &flip_hash(&p, 2), &r7),
    );
    t.push(
        "another leaf",
        Expect::Invalid("RootMismatch"),
        incl(&l[4], 3, 7, &p, &r7),
    );
    t.push(
        "wrong index, same path length",
        Expect::Invalid("RootMismatch"),
        incl(&l[3], 2, 7, &p, &r7),
    );
    t.push(
        "wrong root",
        Expect::Invalid("RootMismatch"),
        incl(&l[3], 3, 7, &p, &root(&all[..8])),
    );
    t.push(
        "index equals tree size",
        Expect::Invalid("ProofMalformed"),
        incl(&l[3], 7, 7, &p, &r7),
    );
    t.push(
        "proof one hash short",
        Expect::Invalid("ProofMalformed"),
        incl(&l[3], 3, 7, &p[..p.len() - 1], &r7),
    );
    t.push(
        "proof one hash long",
        Expect::Invalid("ProofMalformed"),
        incl(&l[3], 3, 7, &[p.clone(), vec![[0; 32]]].concat(), &r7),
    );
    t.push(
        "tree size of another tree",
        Expect::Invalid("ProofMalformed"),
        incl(&l[3], 3, 16, &p, &r7),
    );
    t.push(
        "leaf hash given as the raw leaf",
        Expect::Invalid("RootMismatch"),
        incl(
            &(3u64.to_be_bytes().repeat(4).try_into().unwrap_or([0; 32])),
            3,
            7,
            &p,
            &r7,
        ),
    );
    t.push(
        "single-leaf tree with a non-empty proof",
        Expect::Invalid("ProofMalformed"),
        incl(&all[0], 0, 1, &[all[1]], &all[0]),
    );
    let inclusion = t.group(
        "InclusionProof",
        json!({ "leaves": "leaf i = SHA-256(0x00 || u64be(i))" }),
    );

    let cons = |m: u64, n: u64, old: &Hash, new: &Hash, proof: &[Hash]| json!({ "oldSize": m, "newSize": n, "oldRoot": h(old), "newRoot": h(new), "proof": hexes(proof) });
    let mut t = Tests::default();
    for (m, n) in [
        (1usize, 1usize),
        (1, 2),
        (3, 7),
        (4, 7),
        (6, 8),
        (7, 16),
        (8, 16),
        (0, 5),
    ] {
        let p = consistency_proof(&all[..n], m).expect("in range");
        t.push(
            &format!("{m} to {n}"),
            Expect::Valid,
            cons(m as u64, n as u64, &root(&all[..m]), &root(&all[..n]), &p),
        );
    }
    let (old, new) = (root(&all[..6]), root(&all[..13]));
    let p = consistency_proof(&all[..13], 6).expect("in range");
    t.push(
        "proof hash 0 bit-flipped",
        Expect::Invalid("RootMismatch"),
        cons(6, 13, &old, &new, &flip_hash(&p, 0)),
    );
    t.push(
        "last proof hash bit-flipped",
        Expect::Invalid("RootMismatch"),
        cons(6, 13, &old, &new, &flip_hash(&p, p.len() - 1)),
    );
    let forked: Vec<Hash> = all[..13]
        .iter()
        .enumerate()
        .map(|(i, x)| if i == 2 { [9; 32] } else { *x })
        .collect();
    t.push(
        "history rewritten: leaf 2 replaced",
        Expect::Invalid("RootMismatch"),
        cons(
            6,
            13,
            &old,
            &root(&forked),
            &consistency_proof(&forked, 6).expect("in range"),
        ),
    );
    t.push(
        "roots swapped",
        Expect::Invalid("RootMismatch"),
        cons(6, 13, &new, &old, &p),
    );
    t.push(
        "old size larger than new size",
        Expect::Invalid("ProofMalformed"),
        cons(13, 6, &new, &old, &p),
    );
    t.push(
        "proof one hash short",
        Expect::Invalid("ProofMalformed"),
        cons(6, 13, &old, &new, &p[..p.len() - 1]),
    );
    t.push(
        "proof one hash long",
        Expect::Invalid("ProofMalformed"),
        cons(6, 13, &old, &new, &[p.clone(), vec![[0; 32]]].concat()),
    );
    t.push(
        "equal sizes, different roots",
        Expect::Invalid("RootMismatch"),
        cons(6, 6, &old, &new, &[]),
    );
    t.push(
        "equal sizes with a non-empty proof",
        Expect::Invalid("ProofMalformed"),
        cons(6, 6, &old, &old, &p[..1]),
    );
    t.push(
        "empty proof for a real extension",
        Expect::Invalid("ProofMalformed"),
        cons(6, 13, &old, &new, &[]),
    );
    let consistency = t.group(
        "ConsistencyProof",
        json!({ "leaves": "leaf i = SHA-256(0x00 || u64be(i))" }),
    );

    file(
        "LEDGERLINE-MERKLE-PROOF-V1",
        "protocol-spec/audit-log.md",
        &[
            (
                "Valid",
                "The proof verifies (RFC 9162 §2.1.3.2 / §2.1.4.2).",
            ),
            (
                "ProofMalformed",
                "Sizes, index or proof length are impossible for the trees.",
            ),
            (
                "RootMismatch",
                "The proof is well-formed but leads to another root.",
            ),
        ],
        vec![inclusion, consistency],
    )
}

fn proof(t: &Value) -> Result<Vec<Hash>, String> {
    t["proof"]
        .as_array()
        .ok_or("proof missing")?
        .iter()
        .map(|x| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(x.as_str().expect("in range"), &mut out)
                .map_err(|e| e.to_string())?;
            Ok(out)
        })
        .collect()
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |g, t| {
        let r = match g["type"].as_str() {
            Some("InclusionProof") => verify_inclusion(
                &array(t, "leafHash")?,
                uint(t, "index")?,
                uint(t, "treeSize")?,
                &proof(t)?,
                &array(t, "root")?,
            ),
            Some("ConsistencyProof") => verify_consistency(
                uint(t, "oldSize")?,
                uint(t, "newSize")?,
                &array(t, "oldRoot")?,
                &array(t, "newRoot")?,
                &proof(t)?,
            ),
            other => return Err(format!("unknown group type {other:?}")),
        };
        Ok(Outcome::of(r, ProofError::class))
    })
}
