//! RFC 6962 Merkle trees (`protocol-spec/audit-log.md`, "Merkle tree").
//!
//! Hashing as in RFC 6962 §2.1: `leaf = SHA-256(0x00 || data)`, `node = SHA-256(0x01 ||
//! left || right)`. Proofs are generated from an in-memory list of leaf hashes with the
//! recursive definitions of RFC 6962 §2.1.1 and §2.1.2, and verified with the iterative
//! algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 — two independent code paths, which the
//! tests cross-check against each other and against the `tlog_tiles` crate.

use crate::crypto;
use thiserror::Error;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Longest proof accepted from a peer (a tree of 2^64 leaves needs at most 64 hashes for
/// inclusion and 2·64 for consistency).
pub const MAX_PROOF_HASHES: usize = 128;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    crypto::sha256(&[&[0x00], data])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    crypto::sha256(&[&[0x01], left, right])
}

/// The root of an empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    crypto::sha256(&[])
}

/// Why a proof was refused. Each variant is a distinct failure class.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    /// Index or sizes out of range, or a proof of the wrong length.
    #[error("proof does not fit the tree sizes")]
    Malformed,
    /// The proof does not lead to the expected root.
    #[error("proof does not match the root")]
    RootMismatch,
}

impl ProofError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed => "ProofMalformed",
            Self::RootMismatch => "RootMismatch",
        }
    }
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH over `leaves` (leaf hashes), RFC 6962 §2.1.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// PATH(m, D[n]): the inclusion proof of leaf `index`, RFC 6962 §2.1.1.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split(d.len());
        let (left, right) = d.split_at(k);
        if m < k {
            path(m, left, out);
            out.push(root(right));
        } else {
            path(m - k, right, out);
            out.push(root(left));
        }
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Some(out)
}

/// PROOF(m, D[n]): the consistency proof from the first `old_size` leaves to all of them,
/// RFC 6962 §2.1.2. Empty when `old_size` is 0 or equals the tree size.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    if old_size > leaves.len() {
        return None;
    }
    fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
        let n = d.len();
        if m == n {
            if !complete {
                out.push(root(d));
            }
            return;
        }
        let k = split(n);
        let (left, right) = d.split_at(k);
        if m <= k {
            subproof(m, left, complete, out);
            out.push(root(right));
        } else {
            subproof(m - k, right, false, out);
            out.push(root(left));
        }
    }
    let mut out = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut out);
    }
    Some(out)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size || proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::Malformed);
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Malformed);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Malformed);
    }
    if &r == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies that the tree of `new_size` leaves with root `new_root` extends the tree of
/// `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size || proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::Malformed);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::Malformed);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old_size == 0 {
        // Every tree extends the empty tree; the proof is empty.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Malformed)
        };
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let mut it = path.iter();
    let first = it.next().ok_or(ProofError::Malformed)?;
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in it {
        if snode == 0 {
            return Err(ProofError::Malformed);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Malformed);
    }
    if &fr == old_root && &sr == new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn rfc6962_known_answers() {
        // Empty tree and single leaf, from RFC 6962 / the CT reference test data.
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn generated_proofs_verify_for_all_small_trees() {
        for n in 1..=33 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = inclusion_proof(&l, i).unwrap();
                assert_eq!(
                    verify_inclusion(&l[i], i as u64, n as u64, &p, &r),
                    Ok(()),
                    "n={n} i={i}"
                );
            }
            for m in 0..=n {
                let p = consistency_proof(&l, m).unwrap();
                let old = root(&l[..m]);
                assert_eq!(
                    verify_consistency(m as u64, n as u64, &old, &r, &p),
                    Ok(()),
                    "m={m} n={n}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn flipped_proof_bits_are_rejected(n in 2usize..40, i in any::<usize>(), m in any::<usize>(), bit in any::<usize>()) {
            let l = leaves(n);
            let r = root(&l);
            let i = i % n;
            let mut p = inclusion_proof(&l, i).unwrap();
            if !p.is_empty() {
                let b = bit % (p.len() * 256);
                p[b / 256][(b % 256) / 8] ^= 1 << (b % 8);
                prop_assert!(verify_inclusion(&l[i], i as u64, n as u64, &p, &r).is_err());
            }
            let m = 1 + m % (n - 1);
            let mut c = consistency_proof(&l, m).unwrap();
            let old = root(&l[..m]);
            if !c.is_empty() {
                let b = bit % (c.len() * 256);
                c[b / 256][(b % 256) / 8] ^= 1 << (b % 8);
                prop_assert!(verify_consistency(m as u64, n as u64, &old, &r, &c).is_err());
            }
        }
    }
}
