//! Spec and code change together: every named constant appears verbatim in
//! `protocol-spec/constants.md`, and every construction has its spec file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ledgerline_protocol::constants::*;
use std::path::PathBuf;

fn spec(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../protocol-spec")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_constant_is_in_the_spec() {
    let text = spec("constants.md");
    let named = [
        ("CTX_REQUEST", CTX_REQUEST),
        ("CTX_ROSTER_EVENT", CTX_ROSTER_EVENT),
        ("CTX_ROSTER_HASH", CTX_ROSTER_HASH),
        ("CTX_DEVICE_CERT", CTX_DEVICE_CERT),
        ("CTX_ONE_TIME_KEY", CTX_ONE_TIME_KEY),
        ("CTX_RECORD", CTX_RECORD),
        ("CTX_INVITE_CODE", CTX_INVITE_CODE),
        ("CTX_INVITE_ID", CTX_INVITE_ID),
        ("CTX_BACKUP_KEY", CTX_BACKUP_KEY),
        ("CTX_RECOVERY_KEY", CTX_RECOVERY_KEY),
        ("CTX_CONVERSATION_ROOM", CTX_CONVERSATION_ROOM),
        ("INFO_BACKUP_SECRET", INFO_BACKUP_SECRET),
        ("INFO_RECOVERY_ID", INFO_RECOVERY_ID),
        ("INFO_BACKUP_ITEM", INFO_BACKUP_ITEM),
        ("INFO_RECOVERY_ESCROW", INFO_RECOVERY_ESCROW),
        ("INFO_INVITE_KEY", INFO_INVITE_KEY),
        ("INFO_MEMBER_KEY_WRAP", INFO_MEMBER_KEY_WRAP),
        ("INFO_KEK_EPOCH_KEY", INFO_KEK_EPOCH_KEY),
        ("INFO_KEK_EPOCH_CHAIN", INFO_KEK_EPOCH_CHAIN),
        ("INFO_RECORD_KEY", INFO_RECORD_KEY),
        ("INFO_DOCUMENT_KEY", INFO_DOCUMENT_KEY),
        ("INFO_DOCUMENT_PAYLOAD", INFO_DOCUMENT_PAYLOAD),
        ("headers::FIRM", headers::FIRM),
        ("headers::DEVICE", headers::DEVICE),
        ("headers::TIMESTAMP", headers::TIMESTAMP),
        ("headers::NONCE", headers::NONCE),
        ("headers::CONTENT_SHA256", headers::CONTENT_SHA256),
        ("headers::SIGNATURE", headers::SIGNATURE),
    ];
    for (name, value) in named {
        let row = format!("| `{name}` | `{value}` |");
        assert!(text.contains(&row), "constants.md lacks the row {row}");
    }
    assert!(text.contains(&format!(
        "| `DOCUMENT_CHUNK_SIZE` | `{DOCUMENT_CHUNK_SIZE}` |"
    )));
    assert!(text.contains(&format!("| `TAG_SIZE` | `{TAG_SIZE}` |")));
    assert!(text.contains(&format!(
        "| `CONVERSATION_EPOCH` | `{}` (",
        ledgerline_protocol::document::CONVERSATION_EPOCH
    )));
    assert!(text.contains(&format!(
        "| `DEFAULT_MAX_SKEW_MS` | `{}` |",
        ledgerline_protocol::request::DEFAULT_MAX_SKEW_MS
    )));
    assert!(text.contains(&format!(
        "| `PROTOCOL_VERSION` | `{}` |",
        ledgerline_protocol::PROTOCOL_VERSION
    )));
    assert_eq!(&DOCUMENT_MAGIC, b"LLD1");
    assert!(text.contains("`LLD1`"));
}

#[test]
fn every_construction_and_vector_file_is_specified() {
    let index = spec("README.md");
    for file in [
        "threat-model.md",
        "encoding.md",
        "constants.md",
        "invites.md",
        "keys.md",
        "signed-request.md",
        "roster.md",
        "key-hierarchy.md",
        "prekeys.md",
        "records.md",
        "documents.md",
        "audit-log.md",
        "checkpoints.md",
        "relay-api.md",
        "recovery.md",
        "guests.md",
        "test-vectors.md",
    ] {
        assert!(
            index.contains(&format!("]({file})")),
            "README.md does not index {file}"
        );
        assert!(!spec(file).is_empty());
    }
}
