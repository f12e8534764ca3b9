//! `document-stream.json` (`protocol-spec/documents.md`).

use crate::{array, bytes, check_all, file, flip, h, uint, Counts, Expect, Outcome, Tests};
use ledgerline_protocol::constants::DOCUMENT_CHUNK_SIZE;
use ledgerline_protocol::document::{
    decrypt_document, document_key, encrypt_document, DocumentContext, StreamError, HEADER_LEN,
    SEALED_CHUNK_LEN,
};
use ledgerline_protocol::ids::{DocumentId, FileId, FirmId};
use ledgerline_protocol::keys::{DocumentKey, EpochKey, ReleaseShare};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

/// Deterministic plaintext: byte i is i mod 251.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Value {
    // Accountable document keys.
    let mut t = Tests::default();
    for i in 0..4u64 {
        let ek = EpochKey::generate(rng);
        let share = ReleaseShare::generate(rng);
        let ctx = DocumentContext {
            firm: FirmId::random(rng),
            file: FileId::random(rng),
            document: DocumentId::random(rng),
            epoch: i * 7,
        };
        let dk = document_key(&ek, &share, &ctx);
        t.push(
            &format!("document key derivation {}", i + 1),
            Expect::Valid,
            json!({
                "epochKey": h(ek.expose()),
                "releaseShare": h(share.expose()),
                "firm": h(&ctx.firm.0), "file": h(&ctx.file.0), "document": h(&ctx.document.0), "epoch": ctx.epoch,
                "documentKey": h(dk.expose()),
            }),
        );
    }
    let keys = t.group("AccountableDocumentKey", json!({}));

    let key = DocumentKey::generate(rng);
    let other = DocumentKey::generate(rng);
    let mut t = Tests::default();
    let case = |k: &DocumentKey, stream: &[u8], len: Option<usize>| json!({ "documentKey": h(k.expose()), "stream": h(stream), "plaintextLength": len.unwrap_or(0) });
    for (name, len) in [
        ("empty document", 0usize),
        ("one byte", 1),
        ("short document", 100),
        ("exactly one chunk", DOCUMENT_CHUNK_SIZE),
        ("one chunk and one byte", DOCUMENT_CHUNK_SIZE + 1),
    ] {
        let s = encrypt_document(&key, &pattern(len), rng);
        t.push(name, Expect::Valid, case(&key, &s, Some(len)));
    }
    let two = encrypt_document(&key, &pattern(DOCUMENT_CHUNK_SIZE + 100), rng);
    let c0 = HEADER_LEN..HEADER_LEN + SEALED_CHUNK_LEN;
    let c1 = c0.end..two.len();
    t.push(
        "wrong document key",
        Expect::Invalid("ChunkAuthFailed"),
        case(&other, &two, None),
    );
    t.push(
        "final chunk removed",
        Expect::Invalid("Truncated"),
        case(&key, &two[..c0.end], None),
    );
    t.push(
        "last 10 bytes of the final chunk removed",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &two[..two.len() - 10], None),
    );
    t.push(
        "final chunk shorter than a tag",
        Expect::Invalid("Malformed"),
        case(&key, &two[..c0.end + 15], None),
    );
    t.push(
        "body empty",
        Expect::Invalid("Truncated"),
        case(&key, &two[..HEADER_LEN], None),
    );
    t.push(
        "header cut short",
        Expect::Invalid("Malformed"),
        case(&key, &two[..HEADER_LEN - 1], None),
    );
    t.push(
        "wrong magic",
        Expect::Invalid("Malformed"),
        case(&key, &flip(&two, 0), None),
    );
    t.push(
        "salt bit flipped",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &flip(&two, 4), None),
    );
    t.push(
        "bit flipped in chunk 0",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &flip(&two, c0.start + 7), None),
    );
    t.push(
        "bit flipped in chunk 0's tag",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &flip(&two, c0.end - 1), None),
    );
    t.push(
        "bit flipped in the final chunk's tag",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &flip(&two, two.len() - 1), None),
    );
    let mut dup = two[..c0.end].to_vec();
    dup.extend_from_slice(&two[c0.clone()]);
    dup.extend_from_slice(&two[c1.clone()]);
    t.push(
        "chunk 0 duplicated",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &dup, None),
    );
    let one = encrypt_document(&key, &pattern(DOCUMENT_CHUNK_SIZE), rng);
    let mut trailing = one.clone();
    trailing.extend_from_slice(&two[c1.clone()]);
    t.push(
        "a chunk appended after the final chunk",
        Expect::Invalid("TrailingData"),
        case(&key, &trailing, None),
    );
    let same_key_other_upload = encrypt_document(&key, &pattern(DOCUMENT_CHUNK_SIZE + 100), rng);
    let mut spliced = two.clone();
    spliced[c1.clone()].copy_from_slice(&same_key_other_upload[c1.clone()]);
    t.push(
        "final chunk spliced from another upload under the same key",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &spliced, None),
    );
    let other_doc = encrypt_document(&other, &pattern(DOCUMENT_CHUNK_SIZE + 100), rng);
    let mut spliced = two.clone();
    spliced[c0.clone()].copy_from_slice(&other_doc[c0.clone()]);
    t.push(
        "chunk 0 spliced from another document",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &spliced, None),
    );
    let mut header_swap = two.clone();
    header_swap[..HEADER_LEN].copy_from_slice(&same_key_other_upload[..HEADER_LEN]);
    t.push(
        "header of another upload",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &header_swap, None),
    );
    let three = encrypt_document(&key, &pattern(2 * DOCUMENT_CHUNK_SIZE + 5), rng);
    let d1 = c0.end..c0.end + SEALED_CHUNK_LEN;
    let mut swapped = three.clone();
    swapped[c0.clone()].copy_from_slice(&three[d1.clone()]);
    swapped[d1.clone()].copy_from_slice(&three[c0.clone()]);
    t.push(
        "chunks 0 and 1 swapped",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &swapped, None),
    );
    let mut middle_gone = three[..c0.end].to_vec();
    middle_gone.extend_from_slice(&three[d1.end..]);
    t.push(
        "middle chunk removed",
        Expect::Invalid("ChunkAuthFailed"),
        case(&key, &middle_gone, None),
    );
    t.push(
        "final chunk of three removed",
        Expect::Invalid("Truncated"),
        case(&key, &three[..d1.end], None),
    );
    let streams = t.group(
        "DocumentStreamDecrypt",
        json!({ "chunkSize": DOCUMENT_CHUNK_SIZE, "plaintextPattern": "byte i = i mod 251" }),
    );

    file(
        "LEDGERLINE-DOCUMENT-STREAM-V1",
        "protocol-spec/documents.md",
        &[
            ("Valid", "AccountableDocumentKey: HKDF yields documentKey. DocumentStreamDecrypt: the stream decrypts to plaintextLength bytes of the pattern."),
            ("Malformed", "Header missing or wrong, or a final chunk shorter than a tag."),
            ("Truncated", "The stream ends before its final chunk."),
            ("TrailingData", "Chunks follow the final chunk."),
            ("ChunkAuthFailed", "A chunk fails authentication."),
        ],
        vec![keys, streams],
    )
}

pub(crate) fn check(v: &Value) -> Result<Counts, String> {
    check_all(v, |g, t| match g["type"].as_str() {
        Some("AccountableDocumentKey") => {
            let ctx = DocumentContext {
                firm: FirmId(array(t, "firm")?),
                file: FileId(array(t, "file")?),
                document: DocumentId(array(t, "document")?),
                epoch: uint(t, "epoch")?,
            };
            let dk = document_key(
                &EpochKey::from_bytes(array(t, "epochKey")?),
                &ReleaseShare::from_bytes(array(t, "releaseShare")?),
                &ctx,
            );
            if dk.expose()[..] != bytes(t, "documentKey")?[..] {
                return Err("document key differs".into());
            }
            Ok(Outcome::Valid)
        }
        Some("DocumentStreamDecrypt") => {
            let r = decrypt_document(
                &DocumentKey::from_bytes(array(t, "documentKey")?),
                &bytes(t, "stream")?,
            );
            if let Ok(pt) = &r {
                if pt[..] != pattern(uint(t, "plaintextLength")? as usize)[..] {
                    return Err("plaintext differs".into());
                }
            }
            Ok(Outcome::of(r, StreamError::class))
        }
        other => Err(format!("unknown group type {other:?}")),
    })
}
