//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), shared with the test that
//! replays inputs through them in every CI run (`tests/fuzz_replay.rs`): the regression
//! inputs under `fuzz/regressions/<target>/`, every byte string of the test vectors, and
//! deterministic mutations of them. A body panics only when a decoder breaks a promise
//! (a panic on untrusted input, or a decoding that is not canonical).

use ledgerline_protocol::checkpoint::{open_checkpoint, Checkpoint};
use ledgerline_protocol::document::decrypt_document;
use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, MemberId, TeamId};
use ledgerline_protocol::keys::{
    DeviceWrapSecret, DocumentKey, EpochKey, LogSigningKey, MemberKey,
};
use ledgerline_protocol::recovery::{open_escrow, open_item, ItemContext, ItemKind, RecoveryKey};
use ledgerline_protocol::wrap::{
    open_sealed, unchain_epoch_key, unwrap_epoch_key, unwrap_member_key, unwrap_team_key,
    EpochChainContext, EpochKeyContext, Holder, MemberKeyContext, TeamKeyContext,
};
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha20Rng;

/// A fuzz target: its name (the file under `fuzz/fuzz_targets/`) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    ("audit_bundle", audit_bundle),
    ("audit_leaf", audit_leaf),
    ("checkpoint_note", checkpoint_note),
    ("document_stream", document_stream),
    ("history_page", history_page),
    ("merkle_proofs", merkle_proofs),
    ("record_envelope", record_envelope),
    ("recovery", recovery),
    ("roster_event", roster_event),
    ("sealed_to_device", sealed_to_device),
    ("signed_request", signed_request),
    ("wrapped_keys", wrapped_keys),
];

/// An audit bundle is whatever the auditor was handed: the verifier answers every input
/// with a verdict, never a panic.
pub fn audit_bundle(data: &[u8]) {
    let mut v = ledgerline_audit::Verifier::new(ledgerline_audit::Options::default());
    for line in data.split(|b| *b == b'\n') {
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        if v.line(text).is_err() {
            return;
        }
    }
    let _ = v.finish();
}

/// Audit leaves decode canonically.
pub fn audit_leaf(data: &[u8]) {
    if let Ok(l) = ledgerline_protocol::audit::AuditLeaf::from_bytes(data) {
        assert_eq!(l.to_bytes(), data, "decoding must be canonical");
    }
}

/// Checkpoint notes (C2SP signed notes) from a relay.
pub fn checkpoint_note(data: &[u8]) {
    let _ = Checkpoint::parse_body(data);
    let key = LogSigningKey::from_bytes(&[7; 32]).verifying_key();
    let _ = open_checkpoint(data, "relay.example/log", &key);
}

/// A document's encrypted stream, as downloaded.
pub fn document_stream(data: &[u8]) {
    let _ = decrypt_document(&DocumentKey::from_bytes([7; 32]), data);
}

/// A room history page in binary form, as a relay answers it.
pub fn history_page(data: &[u8]) {
    if let Ok(p) = ledgerline_protocol::history::HistoryPage::from_bytes(data) {
        assert_eq!(p.to_bytes(), data, "decoding must be canonical");
        assert!(
            p.messages.windows(2).all(|w| match w {
                [a, b] => a.seq < b.seq,
                _ => true,
            }),
            "sequence numbers must ascend"
        );
    }
}

/// Inclusion and consistency proofs as a relay answers them: sizes, index, roots and the
/// proof's hashes all taken from the input (the hashes as 32-byte pieces, as the client
/// decodes them from hex).
pub fn merkle_proofs(data: &[u8]) {
    use ledgerline_protocol::merkle::{verify_consistency, verify_inclusion, Hash};
    let word = |i: usize| -> u64 {
        let mut b = [0u8; 8];
        for (j, x) in b.iter_mut().enumerate() {
            *x = data.get(i * 8 + j).copied().unwrap_or(0);
        }
        // Small sizes are where the edge cases are; keep most of them small.
        let v = u64::from_le_bytes(b);
        if v & 1 == 0 {
            v % 64
        } else {
            v
        }
    };
    let hash = |i: usize| -> Hash {
        let mut h = [0u8; 32];
        for (j, x) in h.iter_mut().enumerate() {
            *x = data.get(24 + i * 32 + j).copied().unwrap_or(0);
        }
        h
    };
    let (a, b, c) = (word(0), word(1), word(2));
    let proof: Vec<Hash> = data
        .get(88..)
        .unwrap_or_default()
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect();
    let _ = verify_inclusion(&hash(0), a, b, &proof, &hash(1));
    let _ = verify_consistency(a, c, &hash(0), &hash(1), &proof);
    let _ = verify_consistency(b, c, &hash(1), &hash(0), &proof);
}

/// Record envelopes decode canonically.
pub fn record_envelope(data: &[u8]) {
    if let Ok(e) = ledgerline_protocol::record::RecordEnvelope::from_bytes(data) {
        assert_eq!(e.to_bytes(), data, "decoding must be canonical");
    }
}

/// What a relay (or a typist) hands a recovering device: a recovery key's text, a sealed
/// backup item, an escrowed key.
pub fn recovery(data: &[u8]) {
    let _ = RecoveryKey::parse(&String::from_utf8_lossy(data));
    let key = RecoveryKey::from_bytes([7; 32]);
    let ctx = ItemContext {
        firm: FirmId([1; 16]),
        member: MemberId([2; 16]),
        kind: ItemKind::RoomKey,
        id: b"session",
    };
    let _ = open_item(data, &key, &ctx);
    let secret = DeviceWrapSecret::from_bytes([9; 32]);
    let _ = open_escrow(
        data,
        &secret,
        FirmId([1; 16]),
        MemberId([2; 16]),
        DeviceId([3; 16]),
    );
}

/// Roster events decode canonically; a genesis candidate is checked.
pub fn roster_event(data: &[u8]) {
    if let Ok(e) = ledgerline_protocol::roster::RosterEvent::from_bytes(data) {
        assert_eq!(e.to_bytes(), data, "decoding must be canonical");
        let _ = ledgerline_protocol::roster::Roster::from_genesis(&e);
    }
}

/// Payloads sealed to a device (to-device envelopes, release shares).
pub fn sealed_to_device(data: &[u8]) {
    let secret = DeviceWrapSecret::from_bytes([7; 32]);
    let _ = open_sealed(data, &secret, b"fuzz");
}

/// Signed requests decode canonically.
pub fn signed_request(data: &[u8]) {
    if let Ok(r) = ledgerline_protocol::request::SignedRequest::from_bytes(data) {
        assert_eq!(r.to_bytes(), data, "decoding must be canonical");
    }
}

/// Wrapped member, epoch and team keys, and epoch chain links.
pub fn wrapped_keys(data: &[u8]) {
    let ctx = MemberKeyContext {
        firm: FirmId([0; 16]),
        member: MemberId([0; 16]),
        device: DeviceId([0; 16]),
        key_version: 0,
    };
    let _ = unwrap_member_key(data, &DeviceWrapSecret::from_bytes([1; 32]), &ctx);
    let e = EpochKeyContext {
        firm: FirmId([0; 16]),
        file: FileId([0; 16]),
        epoch: 1,
        holder: Holder::Member(MemberId([0; 16])),
        holder_key_version: 0,
    };
    let _ = unwrap_epoch_key(data, &MemberKey::from_bytes([2; 32]), &e);
    let t = TeamKeyContext {
        firm: FirmId([0; 16]),
        team: TeamId([0; 16]),
        team_key_version: 1,
        member: MemberId([0; 16]),
        member_key_version: 1,
    };
    let _ = unwrap_team_key(data, &MemberKey::from_bytes([4; 32]), &t);
    let c = EpochChainContext {
        firm: FirmId([0; 16]),
        file: FileId([0; 16]),
        epoch: 1,
    };
    let _ = unchain_epoch_key(data, &EpochKey::from_bytes([3; 32]), &c);
}

/// Replays a fuzz body whose code lives in another crate: every seed, two generations of
/// its mutations, and each file of `regressions` (a target's `fuzz/regressions/<target>/`).
/// Returns how many inputs ran.
pub fn replay(
    seeds: Vec<Vec<u8>>,
    rng: &mut ChaCha20Rng,
    regressions: &std::path::Path,
    body: impl Fn(&[u8]),
) -> usize {
    let mut inputs = Vec::new();
    for s in seeds {
        for m in mutations(&s, rng) {
            inputs.extend(mutations(&m, rng));
            inputs.push(m);
        }
        inputs.push(s);
    }
    if let Ok(entries) = std::fs::read_dir(regressions) {
        for e in entries.flatten() {
            if e.path().is_file() {
                if let Ok(bytes) = std::fs::read(e.path()) {
                    inputs.push(bytes);
                }
            }
        }
    }
    for i in &inputs {
        body(i);
    }
    inputs.len()
}

/// A few deterministic mutations of `input` (none for large inputs: their prefixes and
/// flips are covered by the smaller ones and would only cost time).
pub fn mutations(input: &[u8], rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let n = input.len();
    if n == 0 || n > 16 * 1024 {
        return out;
    }
    for cut in [1, n / 2, n - 1] {
        out.push(input[..cut].to_vec());
    }
    let pick = |rng: &mut ChaCha20Rng| (rng.next_u32() as usize) % n;
    for _ in 0..3 {
        let mut m = input.to_vec();
        let i = pick(rng);
        m[i] ^= 1 << (rng.next_u32() % 8);
        out.push(m);
    }
    let mut longer = input.to_vec();
    longer.insert(pick(rng), (rng.next_u32() & 0xff) as u8);
    out.push(longer);
    let mut shorter = input.to_vec();
    shorter.remove(pick(rng));
    out.push(shorter);
    // A length or count field set to its largest value: the classic over-read.
    let mut huge = input.to_vec();
    let i = pick(rng);
    huge[i] = 0xff;
    out.push(huge);
    out
}
