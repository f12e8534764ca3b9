//! A peer's test suite: our RFC 6962 proofs, C2SP checkpoints and signed notes against
//! independent implementations (`tlog_tiles`, `signed_note`) and published test data
//! (golang.org/x/mod/sumdb/note, transparency-dev/formats).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use base64::prelude::{Engine, BASE64_STANDARD};
use ledgerline_protocol::checkpoint::{
    cosign, open_checkpoint, sign_note, Checkpoint, CosignatureKey, Ed25519NoteKey,
};
use ledgerline_protocol::keys::{LogSigningKey, WitnessSigningKey};
use ledgerline_protocol::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion, Hash,
};
use rand_chacha::rand_core::SeedableRng;
use signed_note::{Note, StandardVerifier, Verifier, VerifierList};
use std::cell::RefCell;
use tlog_tiles::{
    check_record, check_tree, prove_record, prove_tree, stored_hash_index, stored_hashes,
    tree_hash, HashReader,
};

/// An in-memory store of `tlog_tiles`'s stored hashes.
struct Store(RefCell<Vec<tlog_tiles::Hash>>);

impl HashReader for Store {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        let v = self.0.borrow();
        Ok(indexes.iter().map(|&i| v[i as usize]).collect())
    }
}

fn data(i: u64) -> Vec<u8> {
    format!("ledgerline leaf {i}").into_bytes()
}

/// Builds a tlog_tiles store of `n` records and our list of leaf hashes for the same data.
fn both(n: u64) -> (Store, Vec<Hash>) {
    let store = Store(RefCell::new(Vec::new()));
    for i in 0..n {
        let hs = stored_hashes(i, &data(i), &store).unwrap();
        assert_eq!(store.0.borrow().len() as u64, stored_hash_index(0, i));
        store.0.borrow_mut().extend(hs);
    }
    let leaves = (0..n).map(|i| leaf_hash(&data(i))).collect();
    (store, leaves)
}

fn ours(v: &[tlog_tiles::Hash]) -> Vec<Hash> {
    v.iter().map(|h| h.0).collect()
}

fn theirs(v: &[Hash]) -> Vec<tlog_tiles::Hash> {
    v.iter().map(|h| tlog_tiles::Hash(*h)).collect()
}

#[test]
fn merkle_roots_and_proofs_match_tlog_tiles_both_ways() {
    let max = 70u64;
    let (store, leaves) = both(max);
    for n in 1..=max {
        let l = &leaves[..n as usize];
        let their_root = tree_hash(n, &store).unwrap();
        assert_eq!(root(l), their_root.0, "root of {n}");
        for i in 0..n {
            // Their proof verifies with our verifier, and ours with theirs.
            let p = prove_record(n, i, &store).unwrap();
            assert_eq!(
                ours(&p),
                inclusion_proof(l, i as usize).unwrap(),
                "inclusion {i} of {n}"
            );
            verify_inclusion(&l[i as usize], i, n, &ours(&p), &their_root.0).unwrap();
            let mine = inclusion_proof(l, i as usize).unwrap();
            check_record(
                &theirs(&mine),
                n,
                their_root,
                i,
                tlog_tiles::Hash(l[i as usize]),
            )
            .unwrap();
        }
        for m in 1..=n {
            let old = tree_hash(m, &store).unwrap();
            let p = prove_tree(n, m, &store).unwrap();
            assert_eq!(
                ours(&p),
                consistency_proof(l, m as usize).unwrap(),
                "consistency {m}->{n}"
            );
            verify_consistency(m, n, &old.0, &their_root.0, &ours(&p)).unwrap();
            let mine = consistency_proof(l, m as usize).unwrap();
            check_tree(&theirs(&mine), n, their_root, m, old).unwrap();
        }
    }
}

#[test]
fn our_checkpoints_parse_and_verify_with_tlog_tiles_and_signed_note() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let log = LogSigningKey::generate(&mut rng);
    let (_, leaves) = both(9);
    let origin = "relay.example/ledgerline/firm/00112233445566778899aabbccddeeff";
    let cp = Checkpoint::new(origin, 9, root(&leaves)).unwrap();
    let note = cp.sign(&log);

    // tlog_tiles reads the body…
    let parsed = Note::from_bytes(&note).unwrap();
    let theirs = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
    assert_eq!(
        (theirs.origin(), theirs.size(), theirs.hash().0),
        (origin, 9, root(&leaves))
    );
    assert_eq!(theirs.to_bytes(), cp.body().into_bytes());

    // …and signed_note's own verifier, built from our vkey string, accepts the signature.
    let vkey = Ed25519NoteKey::new(origin, log.verifying_key()).vkey();
    let standard = StandardVerifier::new(&vkey).unwrap();
    let (verified, _) = parsed
        .verify(&VerifierList::new(vec![Box::new(standard)]))
        .unwrap();
    assert_eq!(verified.len(), 1);

    // A checkpoint written by tlog_tiles and signed by signed_note opens with our code.
    let body = tlog_tiles::Checkpoint::new(origin, 9, tlog_tiles::Hash(root(&leaves)), "")
        .unwrap()
        .to_bytes();
    let skey = format!(
        "PRIVATE+KEY+{origin}+{:08x}+{}",
        Ed25519NoteKey::new(origin, log.verifying_key()).key_id(),
        BASE64_STANDARD.encode([&[1u8][..], &log.to_bytes()[..]].concat())
    );
    let signer = signed_note::StandardSigner::new(&skey).unwrap();
    let mut theirs = Note::new(&body, &[]).unwrap();
    theirs.add_sigs(&[&signer]).unwrap();
    assert_eq!(
        open_checkpoint(&theirs.to_bytes(), origin, &log.verifying_key()).unwrap(),
        cp
    );
}

/// golang.org/x/mod/sumdb/note: Ed25519 is deterministic, so our signer must reproduce the
/// published note byte for byte, and our key id and verifier key must match.
#[test]
fn go_sumdb_note_known_answer() {
    let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    let want = format!("{text}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n");

    let raw = BASE64_STANDARD
        .decode(skey.splitn(5, '+').nth(4).unwrap())
        .unwrap();
    assert_eq!(raw[0], 1);
    let key = LogSigningKey::from_bytes(&raw[1..].try_into().unwrap());
    assert_eq!(
        sign_note(text, "PeterNeumann", &key).unwrap(),
        want.as_bytes()
    );
    let ours = Ed25519NoteKey::new("PeterNeumann", key.verifying_key());
    assert_eq!(ours.vkey(), vkey);
    assert_eq!(ours.key_id(), 0xc74f20a3);
}

/// transparency-dev/formats publishes a type 0x04 (cosignature/v1) verifier key; our key id
/// derivation must reproduce its id.
#[test]
fn cosignature_key_id_matches_published_key() {
    let vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
    let mut parts = vkey.splitn(3, '+');
    let (name, id, b64) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let raw = BASE64_STANDARD.decode(b64).unwrap();
    assert_eq!(raw[0], 0x04);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw[1..].try_into().unwrap()).unwrap();
    assert_eq!(
        format!("{:08x}", CosignatureKey::new(name, key).key_id()),
        id
    );
}

/// A cosignature line has the tlog-cosignature/v1 layout: key id, 8-byte big-endian
/// timestamp, 64-byte signature over `cosignature/v1\ntime T\n` + body.
#[test]
fn cosignature_layout_is_tlog_cosignature_v1() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let log = LogSigningKey::generate(&mut rng);
    let witness = WitnessSigningKey::generate(&mut rng);
    let cp = Checkpoint::new("relay.example/log", 3, [1; 32]).unwrap();
    let note = cosign(&cp.sign(&log), "owner.example/w", &witness, 1_700_000_000).unwrap();
    let text = String::from_utf8(note).unwrap();
    let line = text.lines().last().unwrap();
    let raw = BASE64_STANDARD
        .decode(line.rsplit(' ').next().unwrap())
        .unwrap();
    assert_eq!(raw.len(), 4 + 8 + 64);
    assert_eq!(
        u64::from_be_bytes(raw[4..12].try_into().unwrap()),
        1_700_000_000
    );
    let msg = format!("cosignature/v1\ntime 1700000000\n{}", cp.body());
    let sig = ed25519_dalek::Signature::from_bytes(&raw[12..].try_into().unwrap());
    witness
        .verifying_key()
        .verify_strict(msg.as_bytes(), &sig)
        .unwrap();
}
