//! Document streams and accountable document keys (`protocol-spec/documents.md`).
//!
//! A document is encrypted as a stream of 64 KiB chunks (the STREAM construction of
//! Hoang, Reyhanitabar, Rogaway and Vizár, as used by age): chunk `i` is sealed with
//! ChaCha20-Poly1305 under a per-stream payload key with nonce `0x000000 || u64be(i) ||
//! last-flag`. Reordering, duplication and truncation change a nonce and fail; the per-stream
//! key makes chunks of different documents (or uploads) useless in each other.
//!
//! The document key itself is *accountable*: HKDF over the file's epoch key and a random
//! release share held by the relay, which hands the share out only after logging the
//! device's signed request ([`document_key`]).

use crate::constants::{
    DOCUMENT_CHUNK_SIZE, DOCUMENT_MAGIC, INFO_DOCUMENT_KEY, INFO_DOCUMENT_PAYLOAD, TAG_SIZE,
};
use crate::crypto;
use crate::encoding::{DecodeError, Writer};
use crate::ids::{DocumentId, FileId, FirmId};
use crate::keys::{DocumentKey, EpochKey, ReleaseShare};
use crate::PROTOCOL_VERSION;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// Stream header: magic, then a 32-byte random salt.
pub const HEADER_LEN: usize = 4 + 32;
/// The epoch number a document shared in a customer conversation is uploaded under
/// (`protocol-spec/guests.md`): its key comes from a secret in the conversation, not from
/// an epoch key, and it is the only kind of document a guest may reach. A file's epochs
/// count up from 0 by one and never come near it; it is the largest value a signed 64-bit
/// database column holds, so every store keeps it as it is.
pub const CONVERSATION_EPOCH: u64 = (1 << 63) - 1;
/// Ciphertext size of every chunk but the last.
pub const SEALED_CHUNK_LEN: usize = DOCUMENT_CHUNK_SIZE + TAG_SIZE;

/// Where a document key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentContext {
    /// Firm.
    pub firm: FirmId,
    /// Customer file.
    pub file: FileId,
    /// Document.
    pub document: DocumentId,
    /// Epoch whose key the document is bound to.
    pub epoch: u64,
}

/// The parts root of a multipart upload: `SHA-256(CTX_DOCUMENT_PARTS || 0x00 ||
/// u64 part_size || u64 count || SHA-256(part 0) || … )`. It names the whole ciphertext:
/// the relay checks it before storing, the manifest pins it, the reader recomputes it.
pub fn parts_root(part_size: u64, part_hashes: &[[u8; 32]]) -> [u8; 32] {
    let head = Writer::new()
        .u64(part_size)
        .u64(part_hashes.len() as u64)
        .finish();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(part_hashes.len() + 3);
    parts.push(crate::constants::CTX_DOCUMENT_PARTS.as_bytes());
    parts.push(&[0]);
    parts.push(&head);
    parts.extend(part_hashes.iter().map(|h| &h[..]));
    crypto::sha256(&parts)
}

/// Ciphertext size of a document of `plaintext_len` bytes: header + one tag per chunk.
pub fn ciphertext_len(plaintext_len: u64) -> u64 {
    let chunks = plaintext_len.div_ceil(DOCUMENT_CHUNK_SIZE as u64).max(1);
    HEADER_LEN as u64 + plaintext_len + chunks * TAG_SIZE as u64
}

/// `HKDF-SHA256(salt = release_share, ikm = epoch_key, info = INFO_DOCUMENT_KEY || version ||
/// firm || file || document || epoch)`.
pub fn document_key(
    epoch_key: &EpochKey,
    share: &ReleaseShare,
    ctx: &DocumentContext,
) -> DocumentKey {
    let info_tail = Writer::new()
        .u8(PROTOCOL_VERSION)
        .fixed(&ctx.firm.0)
        .fixed(&ctx.file.0)
        .fixed(&ctx.document.0)
        .u64(ctx.epoch)
        .finish();
    let k = crypto::hkdf32(
        Some(share.expose()),
        epoch_key.expose(),
        &[INFO_DOCUMENT_KEY.as_bytes(), &info_tail],
    );
    DocumentKey::from_bytes(*k)
}

/// Why a stream could not be decrypted. Each variant is a distinct failure class.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamError {
    /// Header missing, wrong magic, or a length that no stream can have.
    #[error("malformed document stream: {0}")]
    Malformed(#[from] DecodeError),
    /// The stream ends before its final chunk.
    #[error("document stream truncated: final chunk missing")]
    Truncated,
    /// Chunks follow the final chunk.
    #[error("data after the final chunk")]
    TrailingData,
    /// A chunk failed authentication: tampered, reordered, duplicated or from another stream.
    #[error("chunk {index} failed authentication")]
    ChunkAuthFailed {
        /// Index of the chunk.
        index: u64,
    },
    /// The API was used out of order (caller bug, not peer input).
    #[error("stream API misuse: {0}")]
    Misuse(&'static str),
}

impl StreamError {
    /// The failure class as named in the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Malformed",
            Self::Truncated => "Truncated",
            Self::TrailingData => "TrailingData",
            Self::ChunkAuthFailed { .. } => "ChunkAuthFailed",
            Self::Misuse(_) => "Misuse",
        }
    }
}

fn payload_key(key: &DocumentKey, salt: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    crypto::hkdf32(
        Some(salt),
        key.expose(),
        &[INFO_DOCUMENT_PAYLOAD.as_bytes()],
    )
}

fn chunk_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Encrypts a document chunk by chunk, in constant memory.
#[derive(Debug)]
pub struct StreamEncryptor {
    key: Zeroizing<[u8; 32]>,
    next: u64,
    finished: bool,
}

impl StreamEncryptor {
    /// Starts a stream; returns the encryptor and the header to send first.
    pub fn new<R: RngCore + CryptoRng>(key: &DocumentKey, rng: &mut R) -> (Self, [u8; HEADER_LEN]) {
        let mut salt = [0u8; 32];
        rng.fill_bytes(&mut salt);
        Self::with_salt(key, salt)
    }

    /// Starts a stream with a salt chosen earlier: the same key, salt and plaintext give
    /// the same stream, which lets an interrupted upload resume by re-encrypting. The salt
    /// MUST come from a CSPRNG once per upload ([`StreamEncryptor::new`] does that).
    pub fn with_salt(key: &DocumentKey, salt: [u8; 32]) -> (Self, [u8; HEADER_LEN]) {
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&DOCUMENT_MAGIC);
        header[4..].copy_from_slice(&salt);
        (
            Self {
                key: payload_key(key, &salt),
                next: 0,
                finished: false,
            },
            header,
        )
    }

    /// Seals the next chunk. Every chunk but the last must be exactly
    /// [`DOCUMENT_CHUNK_SIZE`] bytes; the last may be shorter, and is empty only when the
    /// whole document is.
    pub fn seal_chunk(&mut self, plaintext: &[u8], last: bool) -> Result<Vec<u8>, StreamError> {
        let nonce = self.next_nonce(plaintext.len(), last)?;
        Ok(crypto::seal_chacha(&self.key, &nonce, &[], plaintext))
    }

    /// Seals the next chunk in place: `chunk` holds the plaintext and then the ciphertext;
    /// the returned tag goes right after it. The same bytes as
    /// [`StreamEncryptor::seal_chunk`], without allocating or copying.
    pub fn seal_chunk_in_place(
        &mut self,
        chunk: &mut [u8],
        last: bool,
    ) -> Result<[u8; TAG_SIZE], StreamError> {
        let nonce = self.next_nonce(chunk.len(), last)?;
        Ok(crypto::seal_chacha_in_place(&self.key, &nonce, &[], chunk))
    }

    /// Checks the next chunk's size and position and takes its nonce.
    fn next_nonce(&mut self, len: usize, last: bool) -> Result<[u8; 12], StreamError> {
        if self.finished {
            return Err(StreamError::Misuse("stream already finished"));
        }
        if len > DOCUMENT_CHUNK_SIZE || (!last && len != DOCUMENT_CHUNK_SIZE) {
            return Err(StreamError::Misuse("wrong chunk size"));
        }
        if last && len == 0 && self.next > 0 {
            return Err(StreamError::Misuse(
                "an empty final chunk is only allowed for an empty document",
            ));
        }
        if self.next == u64::MAX {
            return Err(StreamError::Misuse("too many chunks"));
        }
        let nonce = chunk_nonce(self.next, last);
        self.next += 1;
        self.finished = last;
        Ok(nonce)
    }
}

/// Decrypts a stream whose total ciphertext length (after the header) is known, as it is
/// for a blob fetched from the relay. The position of the final chunk follows from the
/// length, so truncation at a chunk boundary is detected.
#[derive(Debug)]
pub struct StreamDecryptor {
    key: Zeroizing<[u8; 32]>,
    next: u64,
    chunks: u64,
    last_len: usize,
}

impl StreamDecryptor {
    /// Reads the header; `body_len` is the number of ciphertext bytes after it.
    pub fn new(key: &DocumentKey, header: &[u8], body_len: u64) -> Result<Self, StreamError> {
        let header: &[u8; HEADER_LEN] = header
            .try_into()
            .map_err(|_| DecodeError::Truncated("document header"))?;
        let (magic, salt_bytes) = header.split_at(4);
        if magic != DOCUMENT_MAGIC {
            return Err(DecodeError::InvalidValue("document magic").into());
        }
        let mut salt = [0u8; 32];
        salt.copy_from_slice(salt_bytes);
        if body_len == 0 {
            return Err(StreamError::Truncated);
        }
        let sealed = SEALED_CHUNK_LEN as u64;
        let chunks = body_len.div_ceil(sealed);
        let last_len = body_len - (chunks - 1) * sealed;
        if last_len < TAG_SIZE as u64 {
            return Err(DecodeError::InvalidValue("document length").into());
        }
        Ok(Self {
            key: payload_key(key, &salt),
            next: 0,
            chunks,
            last_len: last_len as usize,
        })
    }

    /// Number of chunks the stream has.
    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// Size the next chunk's ciphertext must have, or `None` when all were read.
    pub fn next_chunk_len(&self) -> Option<usize> {
        if self.next >= self.chunks {
            None
        } else if self.next + 1 == self.chunks {
            Some(self.last_len)
        } else {
            Some(SEALED_CHUNK_LEN)
        }
    }

    /// Opens the next chunk.
    pub fn open_chunk(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StreamError> {
        let expected = self
            .next_chunk_len()
            .ok_or(StreamError::Misuse("stream already finished"))?;
        if sealed.len() != expected {
            return Err(StreamError::Misuse("wrong chunk length"));
        }
        let index = self.next;
        let last = index + 1 == self.chunks;
        match crypto::open_chacha(&self.key, &chunk_nonce(index, last), &[], sealed) {
            Some(pt) => {
                if last && pt.is_empty() && index > 0 {
                    return Err(StreamError::ChunkAuthFailed { index });
                }
                self.next += 1;
                Ok(Zeroizing::new(pt))
            }
            None => {
                // Tell truncation and trailing data apart from tampering: the same chunk
                // opening with the other flag proves which boundary was moved.
                if crypto::open_chacha(&self.key, &chunk_nonce(index, !last), &[], sealed).is_some()
                {
                    Err(if last {
                        StreamError::Truncated
                    } else {
                        StreamError::TrailingData
                    })
                } else {
                    Err(StreamError::ChunkAuthFailed { index })
                }
            }
        }
    }
}

/// Encrypts a whole in-memory document: header followed by all chunks.
pub fn encrypt_document<R: RngCore + CryptoRng>(
    key: &DocumentKey,
    plaintext: &[u8],
    rng: &mut R,
) -> Vec<u8> {
    let (mut enc, header) = StreamEncryptor::new(key, rng);
    let mut out = Vec::with_capacity(
        HEADER_LEN + plaintext.len() + (plaintext.len() / DOCUMENT_CHUNK_SIZE + 1) * TAG_SIZE,
    );
    out.extend_from_slice(&header);
    let mut chunks = plaintext.chunks(DOCUMENT_CHUNK_SIZE).peekable();
    if chunks.peek().is_none() {
        out.extend(enc.seal_chunk(&[], true).unwrap_or_default());
    }
    while let Some(c) = chunks.next() {
        out.extend(
            enc.seal_chunk(c, chunks.peek().is_none())
                .unwrap_or_default(),
        );
    }
    out
}

/// Decrypts a whole in-memory document produced by [`encrypt_document`].
pub fn decrypt_document(
    key: &DocumentKey,
    stream: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StreamError> {
    if stream.len() < HEADER_LEN {
        return Err(DecodeError::Truncated("document header").into());
    }
    let (header, mut body) = stream.split_at(HEADER_LEN);
    let mut dec = StreamDecryptor::new(key, header, body.len() as u64)?;
    let mut out = Zeroizing::new(Vec::with_capacity(body.len()));
    while let Some(n) = dec.next_chunk_len() {
        let (chunk, rest) = body.split_at(n);
        out.extend_from_slice(&dec.open_chunk(chunk)?);
        body = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod parts_tests {
    use super::*;

    #[test]
    fn the_parts_root_binds_size_count_and_order() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let root = parts_root(1024, &[a, b]);
        assert_eq!(root, parts_root(1024, &[a, b]));
        assert_ne!(root, parts_root(1024, &[b, a]));
        assert_ne!(root, parts_root(2048, &[a, b]));
        assert_ne!(root, parts_root(1024, &[a]));
        // Independent computation of the same bytes.
        let mut input = b"ledgerline/v1/document-parts\0".to_vec();
        input.extend_from_slice(&1024u64.to_be_bytes());
        input.extend_from_slice(&2u64.to_be_bytes());
        input.extend_from_slice(&a);
        input.extend_from_slice(&b);
        assert_eq!(root, crypto::sha256(&[&input]));
    }

    #[test]
    fn ciphertext_length_matches_the_encryptor() {
        for len in [0usize, 1, 65_535, 65_536, 65_537, 200_000] {
            let key = DocumentKey::from_bytes([4; 32]);
            let data = vec![7u8; len];
            let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
            let stream = encrypt_document(&key, &data, &mut rng);
            assert_eq!(stream.len() as u64, ciphertext_len(len as u64), "{len}");
        }
    }

    #[test]
    fn the_same_salt_gives_the_same_stream() {
        let key = DocumentKey::from_bytes([4; 32]);
        let (mut a, ha) = StreamEncryptor::with_salt(&key, [9; 32]);
        let (mut b, hb) = StreamEncryptor::with_salt(&key, [9; 32]);
        assert_eq!(ha, hb);
        assert_eq!(
            a.seal_chunk(b"abc", true).unwrap(),
            b.seal_chunk(b"abc", true).unwrap()
        );
    }

    #[test]
    fn sealing_in_place_gives_the_same_bytes_and_checks_the_same_rules() {
        let key = DocumentKey::from_bytes([4; 32]);
        let (mut a, _) = StreamEncryptor::with_salt(&key, [9; 32]);
        let (mut b, _) = StreamEncryptor::with_salt(&key, [9; 32]);
        let full = vec![0x33u8; DOCUMENT_CHUNK_SIZE];
        for (chunk, last) in [(&full[..], false), (&b"tail"[..], true)] {
            let sealed = a.seal_chunk(chunk, last).unwrap();
            let mut buf = chunk.to_vec();
            let tag = b.seal_chunk_in_place(&mut buf, last).unwrap();
            buf.extend_from_slice(&tag);
            assert_eq!(sealed, buf);
        }
        // Finished, and a short chunk that is not the last, are refused alike.
        assert!(b.seal_chunk_in_place(&mut [0u8; 3], true).is_err());
        let (mut c, _) = StreamEncryptor::with_salt(&key, [9; 32]);
        assert!(c.seal_chunk_in_place(&mut [0u8; 3], false).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn key(b: u8) -> DocumentKey {
        DocumentKey::from_bytes([b; 32])
    }

    fn doc(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn sizes_around_chunk_boundaries_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for len in [
            0,
            1,
            DOCUMENT_CHUNK_SIZE - 1,
            DOCUMENT_CHUNK_SIZE,
            DOCUMENT_CHUNK_SIZE + 1,
            3 * DOCUMENT_CHUNK_SIZE,
        ] {
            let ct = encrypt_document(&key(1), &doc(len), &mut rng);
            assert_eq!(
                &decrypt_document(&key(1), &ct).unwrap()[..],
                &doc(len)[..],
                "len {len}"
            );
        }
    }

    #[test]
    fn truncation_reordering_and_splicing_have_distinct_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let ct = encrypt_document(&key(1), &doc(2 * DOCUMENT_CHUNK_SIZE + 10), &mut rng);
        let c0 = HEADER_LEN..HEADER_LEN + SEALED_CHUNK_LEN;
        let c1 = c0.end..c0.end + SEALED_CHUNK_LEN;

        let truncated = &ct[..c1.end];
        assert_eq!(
            decrypt_document(&key(1), truncated),
            Err(StreamError::Truncated)
        );

        let mut swapped = ct.clone();
        swapped[c0.clone()].copy_from_slice(&ct[c1.clone()]);
        swapped[c1.clone()].copy_from_slice(&ct[c0.clone()]);
        assert_eq!(
            decrypt_document(&key(1), &swapped),
            Err(StreamError::ChunkAuthFailed { index: 0 })
        );

        let other = encrypt_document(&key(2), &doc(2 * DOCUMENT_CHUNK_SIZE + 10), &mut rng);
        let mut spliced = ct.clone();
        spliced[c1.clone()].copy_from_slice(&other[c1.clone()]);
        assert_eq!(
            decrypt_document(&key(1), &spliced),
            Err(StreamError::ChunkAuthFailed { index: 1 })
        );

        let short = encrypt_document(&key(1), &doc(DOCUMENT_CHUNK_SIZE), &mut rng);
        let mut extended = short.clone();
        extended.extend_from_slice(&[0u8; TAG_SIZE + 5]);
        assert_eq!(
            decrypt_document(&key(1), &extended),
            Err(StreamError::TrailingData)
        );
    }

    #[test]
    fn document_key_binds_share_and_context() {
        let ek = EpochKey::from_bytes([1; 32]);
        let ctx = DocumentContext {
            firm: FirmId([1; 16]),
            file: FileId([2; 16]),
            document: DocumentId([3; 16]),
            epoch: 1,
        };
        let k = document_key(&ek, &ReleaseShare::from_bytes([5; 32]), &ctx);
        assert_ne!(
            k,
            document_key(&ek, &ReleaseShare::from_bytes([6; 32]), &ctx)
        );
        assert_ne!(
            k,
            document_key(
                &ek,
                &ReleaseShare::from_bytes([5; 32]),
                &DocumentContext { epoch: 2, ..ctx }
            )
        );
        assert_ne!(
            k,
            document_key(
                &EpochKey::from_bytes([2; 32]),
                &ReleaseShare::from_bytes([5; 32]),
                &ctx
            )
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn round_trip_and_bit_flips(len in 0usize..(DOCUMENT_CHUNK_SIZE + 300), bit in any::<usize>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(len as u64);
            let pt = doc(len);
            let mut ct = encrypt_document(&key(3), &pt, &mut rng);
            prop_assert_eq!(&decrypt_document(&key(3), &ct).unwrap()[..], &pt[..]);
            let bit = bit % (ct.len() * 8);
            ct[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decrypt_document(&key(3), &ct).is_err());
        }
    }
}
