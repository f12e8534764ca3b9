//! Every parser that reads peer bytes returns an error, never panics, on arbitrary input
//! and on mutations of valid encodings. (The same entry points are fuzz targets in fuzz/.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ledgerline_protocol::audit::AuditLeaf;
use ledgerline_protocol::checkpoint::{open_checkpoint, Checkpoint};
use ledgerline_protocol::document::decrypt_document;
use ledgerline_protocol::ids::*;
use ledgerline_protocol::keys::{DeviceWrapSecret, DocumentKey, LogSigningKey, MemberKey};
use ledgerline_protocol::record::RecordEnvelope;
use ledgerline_protocol::request::SignedRequest;
use ledgerline_protocol::roster::RosterEvent;
use ledgerline_protocol::wrap::{
    unwrap_epoch_key, unwrap_member_key, unwrap_team_key, EpochKeyContext, Holder,
    MemberKeyContext, TeamKeyContext,
};
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;

fn all_decoders(bytes: &[u8]) {
    let _ = SignedRequest::from_bytes(bytes);
    let _ = RosterEvent::from_bytes(bytes);
    let _ = RecordEnvelope::from_bytes(bytes);
    let _ = ledgerline_protocol::prekeys::SignedPrekey::from_bytes(bytes);
    let _ = AuditLeaf::from_bytes(bytes);
    let _ = Checkpoint::parse_body(bytes);
    let key = LogSigningKey::from_bytes(&[1; 32]).verifying_key();
    let _ = open_checkpoint(bytes, "o", &key);
    let _ = decrypt_document(&DocumentKey::from_bytes([2; 32]), bytes);
    let secret = DeviceWrapSecret::from_bytes([3; 32]);
    let ctx = MemberKeyContext {
        firm: FirmId([0; 16]),
        member: MemberId([0; 16]),
        device: DeviceId([0; 16]),
        key_version: 0,
    };
    let _ = unwrap_member_key(bytes, &secret, &ctx);
    // Backup and recovery: a recovery key's text, a backup item, an escrow.
    let _ = ledgerline_protocol::recovery::RecoveryKey::parse(&String::from_utf8_lossy(bytes));
    let rk = ledgerline_protocol::recovery::RecoveryKey::from_bytes([5; 32]);
    let ictx = ledgerline_protocol::recovery::ItemContext {
        firm: FirmId([0; 16]),
        member: MemberId([0; 16]),
        kind: ledgerline_protocol::recovery::ItemKind::RoomKey,
        id: b"s",
    };
    let _ = ledgerline_protocol::recovery::open_item(bytes, &rk, &ictx);
    let _ = ledgerline_protocol::recovery::open_escrow(
        bytes,
        &secret,
        FirmId([0; 16]),
        MemberId([0; 16]),
        DeviceId([0; 16]),
    );
    let ectx = EpochKeyContext {
        firm: FirmId([0; 16]),
        file: FileId([0; 16]),
        epoch: 0,
        holder: Holder::Member(MemberId([0; 16])),
        holder_key_version: 0,
    };
    let _ = unwrap_epoch_key(bytes, &MemberKey::from_bytes([4; 32]), &ectx);
    let tctx = TeamKeyContext {
        firm: FirmId([0; 16]),
        team: TeamId([0; 16]),
        team_key_version: 1,
        member: MemberId([0; 16]),
        member_key_version: 1,
    };
    let _ = unwrap_team_key(bytes, &MemberKey::from_bytes([5; 32]), &tctx);
}

fn vector_samples() -> Vec<Vec<u8>> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors");
    let mut out = Vec::new();
    for file in [
        "signed-request.json",
        "roster.json",
        "record.json",
        "audit-leaf.json",
        "checkpoint.json",
        "member-key-wrap.json",
    ] {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        for g in v["testGroups"].as_array().unwrap() {
            for t in g["tests"].as_array().unwrap() {
                for field in ["request", "envelope", "leaf", "note", "wrapped"] {
                    if let Some(s) = t[field].as_str() {
                        out.push(hex::decode(s).unwrap());
                    }
                }
                if let Some(events) = t["events"].as_array() {
                    out.extend(
                        events
                            .iter()
                            .map(|e| hex::decode(e.as_str().unwrap()).unwrap()),
                    );
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        all_decoders(&bytes);
    }

    #[test]
    fn mutated_valid_encodings(pick in any::<usize>(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let samples = vector_samples();
        let mut b = samples[pick % samples.len()].clone();
        if !b.is_empty() {
            let i = at % b.len();
            b[i] = byte;
            b.truncate(b.len() - cut % (b.len() / 4 + 1));
        }
        all_decoders(&b);
    }
}

#[test]
fn a_document_stream_of_any_length_is_handled() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0);
    let key = DocumentKey::generate(&mut rng);
    for len in [0usize, 1, 35, 36, 37, 51, 52, 53, 65_588, 65_589, 65_604] {
        let _ = decrypt_document(&key, &vec![0u8; len]);
    }
}
