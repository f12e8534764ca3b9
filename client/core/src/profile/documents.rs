//! Documents: streamed encryption and multipart upload with progress, an encrypted
//! manifest record, and download with the accountable key and the parts-root check
//! (`protocol-spec/documents.md`). Memory stays at a few parts for any size: one thread
//! encrypts and hashes parts while the next part goes out.
//!
//! Crash safety: the upload (document id, release share, salt, source path) is recorded in
//! the encrypted store before the first byte leaves. A resumed upload asks the relay which
//! parts it holds, re-encrypts with the same salt (the same stream for the same file),
//! checks that the parts it skips hash as the relay's do (else the file changed), and sends
//! the rest; `sync` does this for any upload a crash interrupted. A download writes to
//! `OUT.partial` and renames only after the final chunk and the parts root verified.

use super::{declined, now_ms, ClientError, Profile, Result, SyncReport};
use crate::room::RoomEvent;
use crate::transport::RelayError;
use futures_util::StreamExt;
use ledgerline_protocol::constants::{DOCUMENT_CHUNK_SIZE, DOCUMENT_PARTS_IN_FLIGHT, TAG_SIZE};
use ledgerline_protocol::document::{
    ciphertext_len, document_key, parts_root, DocumentContext, StreamDecryptor, StreamEncryptor,
    CONVERSATION_EPOCH, HEADER_LEN,
};
use ledgerline_protocol::ids::{DocumentId, FileId, RecordId};
use ledgerline_protocol::keys::{DocumentKey, EpochKey, ReleaseShare};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// What a progress callback is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Encrypting (reported when encryption runs ahead of sending; uploads report
    /// [`Phase::Upload`] as parts leave).
    Encrypt,
    /// Sending the ciphertext.
    Upload,
    /// Receiving and decrypting.
    Download,
}

/// Progress callback: phase, bytes done, bytes in total.
pub type Progress = Arc<dyn Fn(Phase, u64, u64) + Send + Sync>;

/// A document as its manifest record describes it (encrypted on the relay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentManifest {
    /// Always `document`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Document id (the blob's name on the relay).
    pub document: DocumentId,
    /// File name as uploaded.
    pub name: String,
    /// Plaintext size.
    pub size: u64,
    /// Ciphertext size (the blob).
    pub ciphertext_size: u64,
    /// Part size of the upload.
    pub part_size: u64,
    /// Hex parts root of the ciphertext: names the blob exactly.
    pub root: String,
    /// Epoch whose key the document key is bound to.
    pub epoch: u64,
    /// When it was uploaded (uploader's clock).
    pub uploaded_ms: u64,
    /// The year the document concerns (retention counts from its end); absent in
    /// manifests written before retention: the upload's year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<u16>,
}

impl DocumentManifest {
    /// The year the document concerns.
    pub fn year(&self) -> u16 {
        self.year.unwrap_or_else(|| {
            ledgerline_protocol::retention::year_of(self.uploaded_ms).unwrap_or_default()
        })
    }
}

/// What a new upload's document key comes from.
enum Under {
    /// The file's current epoch key.
    Epoch,
    /// A conversation document's fresh secret (`protocol-spec/guests.md`).
    Conversation(Zeroizing<[u8; 32]>),
}

/// Part size of uploads (4 MiB: a few parts in flight stay far below the memory budget).
pub const PART_SIZE: u64 = 4 << 20;

/// An upload begun but not yet confirmed.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct PendingUpload {
    file: FileId,
    record: RecordId,
    share: String,
    salt: String,
    source: PathBuf,
    /// A document the client made itself (an offer's PDF), hex, in place of `source`:
    /// kept in the encrypted store like the rest, so no plaintext copy lands on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inline: Option<String>,
    manifest: DocumentManifest,
    /// A document shared in a customer conversation: its secret (hex), in place of an
    /// epoch key (`protocol-spec/guests.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl PendingUpload {
    /// The customer file it goes to.
    pub(super) fn file(&self) -> FileId {
        self.file
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        self.share.zeroize();
        self.salt.zeroize();
        if let Some(inline) = self.inline.as_mut() {
            inline.zeroize();
        }
        if let Some(secret) = self.secret.as_mut() {
            secret.zeroize();
        }
    }
}

fn doc_key(
    p: &Profile,
    ek: &EpochKey,
    share: &[u8; 32],
    file: FileId,
    m: &DocumentManifest,
) -> DocumentKey {
    document_key(
        ek,
        &ReleaseShare::from_bytes(*share),
        &DocumentContext {
            firm: p.id.firm,
            file,
            document: m.document,
            epoch: m.epoch,
        },
    )
}

impl Profile {
    /// Encrypts `path` and uploads it to `file`; returns the manifest. The plaintext is
    /// read once, chunk by chunk; `progress` hears about the bytes sent.
    /// `year` is the year the document concerns (retention counts from its end; the
    /// current year when `None`).
    pub async fn upload_document(
        &mut self,
        file: FileId,
        path: &Path,
        year: Option<u16>,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        let year = match year {
            Some(y) => super::parse_document_year(&y.to_string())?,
            None => super::this_year(),
        };
        self.check_upload(file).await?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(super::not_utf8_name)?
            .to_owned();
        let source = std::fs::canonicalize(path).map_err(|e| super::unreadable(path, e))?;
        let size = std::fs::metadata(&source)
            .map_err(|e| super::unreadable(path, e))?
            .len();
        let under = Under::Epoch;
        self.start_upload(file, name, size, year, source, None, under, progress)
            .await
    }

    /// Encrypts a document the client made (`bytes`, named `name`) and uploads it to
    /// `file`, as [`Profile::upload_document`] does a file on disk.
    pub async fn upload_bytes(
        &mut self,
        file: FileId,
        name: &str,
        bytes: &[u8],
        year: u16,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        let year = super::parse_document_year(&year.to_string())?;
        self.check_upload(file).await?;
        let size = bytes.len() as u64;
        self.start_upload(
            file,
            name.to_owned(),
            size,
            year,
            PathBuf::new(),
            Some(hex::encode(bytes)),
            Under::Epoch,
            progress,
        )
        .await
    }

    /// The uploader may write to the file, and holds its newest epoch key.
    async fn check_upload(&mut self, file: FileId) -> Result<()> {
        if !self
            .roster()?
            .file_members(&file, now_ms())
            .contains(&self.id.member)
        {
            return Err(ClientError::NotAllowed(
                "this member has no access to the file".into(),
            ));
        }
        // The newest epoch: a document under a retired key would be refused at the end.
        self.sync_file_keys(file, &mut SyncReport::default())
            .await?;
        Ok(())
    }

    /// Records a pending upload (its secrets in the encrypted store first) and runs it.
    #[allow(clippy::too_many_arguments)]
    async fn start_upload(
        &mut self,
        file: FileId,
        name: String,
        size: u64,
        year: u16,
        source: PathBuf,
        inline: Option<String>,
        under: Under,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        let (epoch, secret) = match under {
            Under::Epoch => {
                let (epoch, _) = self
                    .current_epoch(file)
                    .ok_or_else(|| ClientError::NotAllowed("no key for this file yet".into()))?;
                (epoch, None)
            }
            Under::Conversation(secret) => (CONVERSATION_EPOCH, Some(hex::encode(secret.as_ref()))),
        };
        let document = DocumentId::random(&mut OsRng);
        let mut share = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(share.as_mut());
        let mut salt = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(salt.as_mut());
        let manifest = DocumentManifest {
            kind: "document".into(),
            document,
            name,
            size,
            ciphertext_size: ciphertext_len(size),
            part_size: PART_SIZE,
            root: String::new(),
            epoch,
            uploaded_ms: now_ms(),
            year: Some(year),
        };
        self.local.uploads.push(PendingUpload {
            file,
            record: RecordId::random(&mut OsRng),
            share: hex::encode(share.as_ref()),
            salt: hex::encode(salt.as_ref()),
            source,
            inline,
            manifest,
            secret,
        });
        self.commit()?;
        self.finish_upload(document, progress)
            .await
            .map_err(super::wait_if_busy)
    }

    /// Begins the upload of a document shared in `file`'s customer conversation: a fresh
    /// 32-byte secret takes the epoch key's place.
    pub(super) async fn start_shared_upload(
        &mut self,
        file: FileId,
        name: String,
        size: u64,
        source: PathBuf,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(secret.as_mut());
        let year = super::this_year();
        let under = Under::Conversation(secret);
        self.start_upload(file, name, size, year, source, None, under, progress)
            .await
    }

    /// Sends what the relay does not hold yet, completes, writes the manifest, forgets
    /// the share. Idempotent.
    async fn finish_upload(
        &mut self,
        document: DocumentId,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        let Some(mut up) = self
            .local
            .uploads
            .iter()
            .find(|u| u.manifest.document == document)
            .cloned()
        else {
            return Err(ClientError::NotFound("no such upload".into()));
        };
        let mut share = Zeroizing::new([0u8; 32]);
        let mut salt = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(&up.share, share.as_mut())
            .and_then(|()| hex::decode_to_slice(&up.salt, salt.as_mut()))
            .map_err(|_| ClientError::Integrity("stored upload secrets".into()))?;
        let ek = match &up.secret {
            Some(hex_secret) => {
                let mut secret = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(hex_secret, secret.as_mut())
                    .map_err(|_| ClientError::Integrity("stored upload secrets".into()))?;
                EpochKey::from_bytes(*secret)
            }
            None => self
                .epoch_key(up.file, up.manifest.epoch)
                .ok_or_else(|| ClientError::NotAllowed("no key for the upload's epoch".into()))?,
        };
        let key = doc_key(self, &ek, &share, up.file, &up.manifest);
        let m = up.manifest.clone();
        let begun = self
            .relay
            .begin_upload(
                &self.account,
                up.file,
                document,
                m.epoch,
                &share,
                m.ciphertext_size,
                m.part_size,
                m.year(),
            )
            .await;
        let held = match begun {
            Ok(held) => Some(held),
            // Completed before a crash: only the manifest may be missing.
            Err(RelayError::Refused { code, .. })
                if code == "document_exists" && !m.root.is_empty() =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(held) = held {
            let root = self.send_parts(&up, key, *salt, held, progress).await?;
            up.manifest.root = hex::encode(root);
            if let Some(p) = self
                .local
                .uploads
                .iter_mut()
                .find(|u| u.manifest.document == document)
            {
                p.manifest.root = up.manifest.root.clone();
            }
            self.commit()?;
            match self
                .relay
                .complete_upload(&self.account, up.file, document, root)
                .await
            {
                Ok(()) => {}
                Err(RelayError::Refused { code, .. }) if code == "document_exists" => {}
                Err(RelayError::Refused { code, .. })
                    if code == "stale_epoch" || code == "rotation_pending" =>
                {
                    // Encrypted under a key a revocation retired: it must not be stored.
                    self.local
                        .uploads
                        .retain(|u| u.manifest.document != document);
                    self.commit()?;
                    // No name: an error may end up in a script's log.
                    return Err(declined(
                        "rekeyed_during_upload",
                        "the customer file was re-keyed during the upload (someone's access was revoked): upload it again",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(secret) = up.secret.clone() {
            // A conversation's document is announced in the conversation, where its
            // readers are; no record of the file names it.
            let m = &up.manifest;
            let event = RoomEvent::SharedDocument {
                document,
                name: m.name.clone(),
                size: m.size,
                ciphertext_size: m.ciphertext_size,
                part_size: m.part_size,
                root: m.root.clone(),
                year: m.year(),
                key: crate::room::SecretHex(secret),
            };
            let to = self.customer_conversation(up.file);
            match self.send(to, event).await {
                Ok(_) | Err(ClientError::Queued(_)) => {}
                Err(e) => return Err(e),
            }
            self.local
                .uploads
                .retain(|u| u.manifest.document != document);
            self.commit()?;
            return Ok(up.manifest.clone());
        }
        let body = Zeroizing::new(serde_json::to_vec(&up.manifest).unwrap_or_default());
        match self.put_sealed_record(up.file, up.record, 1, &body).await {
            Ok(()) => {}
            Err(ClientError::Relay(RelayError::Refused { code, .. }))
                if code == "version_conflict" => {}
            Err(e) => return Err(e),
        }
        self.remember_document(up.file, &up.manifest)?;
        self.local
            .uploads
            .retain(|u| u.manifest.document != document);
        self.commit()?;
        Ok(up.manifest.clone())
    }

    /// A pipeline: one thread reads and seals the source into parts, a second hashes each
    /// part, and up to [`DOCUMENT_PARTS_IN_FLIGHT`] parts travel to the relay at once;
    /// parts the relay already holds are checked, not sent. Returns the parts root.
    async fn send_parts(
        &self,
        up: &PendingUpload,
        key: DocumentKey,
        salt: [u8; 32],
        held: Vec<[u8; 32]>,
        progress: Progress,
    ) -> Result<[u8; 32]> {
        // Two stages on two threads, a part apart: encryption, then the part's SHA-256.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(Vec<u8>, [u8; 32])>>(1);
        let (sealed_tx, sealed_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(0);
        let source = match &up.inline {
            Some(h) => {
                Source::Bytes(Zeroizing::new(hex::decode(h).map_err(|_| {
                    ClientError::Integrity("stored upload contents".into())
                })?))
            }
            None => Source::Path(up.source.clone()),
        };
        let (size, part_size) = (up.manifest.size, up.manifest.part_size);
        let failed = tx.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let result = encrypt_parts(&key, salt, &source, size, part_size, &sealed_tx);
            drop(sealed_tx);
            if let Err(e) = result {
                let _ = failed.blocking_send(Err(e));
            }
        });
        let hasher = tokio::task::spawn_blocking(move || {
            for part in sealed_rx {
                let sha: [u8; 32] = Sha256::digest(&part).into();
                if tx.blocking_send(Ok((part, sha))).is_err() {
                    break;
                }
            }
        });
        let total = up.manifest.ciphertext_size;
        let mut hashes = Vec::new();
        let mut sent = 0u64;
        // Up to DOCUMENT_PARTS_IN_FLIGHT parts on their way (the relay writes them side by side and
        // records them in order); progress counts acknowledged parts, in order.
        let mut pending = futures_util::stream::FuturesOrdered::new();
        let mut source_done = false;
        let (relay, account) = (&self.relay, &self.account);
        loop {
            tokio::select! {
                item = rx.recv(), if !source_done && (pending.len() as u64) < DOCUMENT_PARTS_IN_FLIGHT => {
                    let Some(item) = item else {
                        source_done = true;
                        continue;
                    };
                    let (part, sha) = item?;
                    let n = hashes.len();
                    let len = part.len() as u64;
                    hashes.push(sha);
                    let held_already = match held.get(n) {
                        Some(h) if *h == sha => true,
                        Some(_) => {
                            return Err(ClientError::Invalid(
                                "the document changed since its upload was interrupted; upload it again"
                                    .into(),
                            ))
                        }
                        None => false,
                    };
                    pending.push_back(async move {
                        if !held_already {
                            relay
                                .put_part(account, up.file, up.manifest.document, n as u64, part, sha)
                                .await?;
                        }
                        Ok::<u64, ClientError>(len)
                    });
                }
                Some(done) = pending.next(), if !pending.is_empty() => {
                    sent += done?;
                    super::crash_after_upload_bytes(sent);
                    progress(Phase::Upload, sent, total);
                }
                else => break,
            }
        }
        for stage in [worker, hasher] {
            stage
                .await
                .map_err(|e| ClientError::Invalid(format!("encryption worker: {e}")))?;
        }
        if sent != total {
            return Err(ClientError::Invalid(
                "the document changed while reading".into(),
            ));
        }
        Ok(parts_root(part_size, &hashes))
    }

    pub(super) fn remember_document(&mut self, file: FileId, m: &DocumentManifest) -> Result<()> {
        let docs = self.local.documents.entry(file).or_default();
        if docs.insert(m.document, m.clone()).is_none() {
            self.store
                .index("document", &format!("{file}:{}", m.document), &m.name)?;
        }
        Ok(())
    }

    /// Finishes uploads a crash interrupted; returns how many. An upload whose source
    /// file is gone is dropped (nothing was published yet).
    pub(super) async fn resume_uploads(&mut self, report: &mut SyncReport) -> Result<usize> {
        let pending: Vec<(DocumentId, bool)> = self
            .local
            .uploads
            .iter()
            .map(|u| {
                (
                    u.manifest.document,
                    u.inline.is_some() || u.source.exists() || !u.manifest.root.is_empty(),
                )
            })
            .collect();
        let mut done = 0;
        for (d, resumable) in pending {
            if resumable {
                match self.finish_upload(d, Arc::new(|_, _, _| {})).await {
                    Ok(_) => done += 1,
                    // The source changed or vanished: this upload cannot be finished as
                    // begun; drop it (nothing was published) and say so.
                    Err(ClientError::Invalid(why)) => {
                        report
                            .warnings
                            .push(format!("interrupted upload of document {d} dropped: {why}"));
                        self.local.uploads.retain(|u| u.manifest.document != d);
                        self.commit()?;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                self.local.uploads.retain(|u| u.manifest.document != d);
                self.commit()?;
            }
        }
        Ok(done)
    }

    /// Documents of a file this profile knows: from synced manifests, and those shared in
    /// the customer conversation (what the customer's guests sent lands here too).
    pub fn documents(&self, file: FileId) -> Result<Vec<DocumentManifest>> {
        let mut docs: Vec<DocumentManifest> = self
            .local
            .documents
            .get(&file)
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default();
        for shared in self.shared_documents(file)? {
            if !docs.iter().any(|d| d.document == shared.document) {
                docs.push(shared);
            }
        }
        Ok(docs)
    }

    /// Resolves a document of `file` by id or name.
    pub fn resolve_document(&self, file: FileId, name_or_id: &str) -> Result<DocumentId> {
        let docs = self.documents(file)?;
        if let Ok(id) = name_or_id.parse::<DocumentId>() {
            if docs.iter().any(|d| d.document == id) {
                return Ok(id);
            }
        }
        let hits: Vec<DocumentId> = docs
            .iter()
            .filter(|d| d.name == name_or_id)
            .map(|d| d.document)
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(ClientError::NotFound(format!(
                "no document {name_or_id:?} in this file (try `ledgerline sync`)"
            ))),
            _ => Err(ClientError::Invalid(format!(
                "several documents are named {name_or_id:?}: use the id"
            ))),
        }
    }

    /// Downloads, checks and decrypts a document into `out`. The relay logs the request
    /// before it releases the share that the key needs.
    pub async fn download_document(
        &mut self,
        file: FileId,
        document: DocumentId,
        out: &Path,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        let Some(m) = self
            .local
            .documents
            .get(&file)
            .and_then(|d| d.get(&document))
            .cloned()
        else {
            // Shared in the customer conversation: its key comes from there.
            return self
                .download_shared(file, &document.to_string(), out, progress)
                .await;
        };
        let ek = self
            .epoch_key(file, m.epoch)
            .ok_or_else(|| ClientError::NotAllowed("no key for the document's epoch".into()))?;
        self.download_with_key(file, m, ek, out, progress).await
    }

    /// Releases (logged, with proof), downloads, checks against `m` and decrypts a
    /// document whose key material is `ek` (an epoch key, or a conversation document's
    /// secret).
    pub(super) async fn download_with_key(
        &mut self,
        file: FileId,
        m: DocumentManifest,
        ek: EpochKey,
        out: &Path,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        let document = m.document;
        let release = self
            .relay
            .release_document(&self.account, file, document)
            .await?;
        self.check_release(file, document, &release).await?;
        if release.epoch != m.epoch {
            return Err(ClientError::Integrity(format!(
                "the relay says epoch {}, the signed manifest says {}",
                release.epoch, m.epoch
            )));
        }
        let key = doc_key(self, &ek, &release.share, file, &m);
        let mut stream = self
            .relay
            .download_document(&self.account, file, document)
            .await?;
        if stream.size.is_some_and(|s| s != m.ciphertext_size) {
            return Err(ClientError::Integrity(
                "the relay's blob has another size than the manifest".into(),
            ));
        }
        let body_len = m
            .ciphertext_size
            .checked_sub(HEADER_LEN as u64)
            .ok_or_else(|| ClientError::Integrity("manifest size".into()))?;
        let partial = out.with_extension(match out.extension() {
            Some(e) => format!("{}.partial", e.to_string_lossy()),
            None => "partial".to_owned(),
        });
        let mut w = std::io::BufWriter::with_capacity(
            256 * 1024,
            std::fs::File::create(&partial).map_err(|e| super::unwritable(&partial, e))?,
        );
        let result = async {
            let mut buf: Vec<u8> = Vec::with_capacity(2 * (DOCUMENT_CHUNK_SIZE + 16));
            // The parts root over the blob as it arrives: one hasher per part.
            let part_size = m.part_size.max(1);
            let mut part_sha = Sha256::new();
            let mut in_part = 0u64;
            let mut part_hashes: Vec<[u8; 32]> = Vec::new();
            let mut dec: Option<StreamDecryptor> = None;
            let mut received = 0u64;
            let mut done = 0u64;
            loop {
                let piece = stream.next().await?;
                let end = piece.is_none();
                if let Some(p) = piece {
                    received += p.len() as u64;
                    if received > m.ciphertext_size {
                        return Err(ClientError::Integrity("the blob is too long".into()));
                    }
                    let mut rest: &[u8] = &p;
                    while !rest.is_empty() {
                        let room = usize::try_from(part_size - in_part).unwrap_or(usize::MAX);
                        let (now, later) = rest.split_at(room.min(rest.len()));
                        part_sha.update(now);
                        in_part += now.len() as u64;
                        if in_part == part_size {
                            part_hashes.push(std::mem::take(&mut part_sha).finalize().into());
                            in_part = 0;
                        }
                        rest = later;
                    }
                    buf.extend_from_slice(&p);
                }
                if dec.is_none() && buf.len() >= HEADER_LEN {
                    let header: Vec<u8> = buf.drain(..HEADER_LEN).collect();
                    dec = Some(
                        StreamDecryptor::new(&key, &header, body_len)
                            .map_err(|e| ClientError::Integrity(format!("document: {e}")))?,
                    );
                }
                if let Some(d) = dec.as_mut() {
                    while let Some(need) = d.next_chunk_len() {
                        if buf.len() < need {
                            break;
                        }
                        let plain = d
                            .open_chunk(buf.get(..need).unwrap_or_default())
                            .map_err(|e| ClientError::Integrity(format!("document: {e}")))?;
                        buf.drain(..need);
                        w.write_all(&plain)
                            .map_err(|e| super::unwritable(&partial, e))?;
                        done += plain.len() as u64;
                        progress(Phase::Download, done, m.size);
                    }
                }
                if end {
                    break;
                }
            }
            let finished = dec.as_ref().is_some_and(|d| d.next_chunk_len().is_none());
            if !finished || !buf.is_empty() || received != m.ciphertext_size {
                return Err(ClientError::Integrity(
                    "the blob ended early or has trailing bytes".into(),
                ));
            }
            if in_part > 0 {
                part_hashes.push(part_sha.finalize().into());
            }
            if hex::encode(parts_root(part_size, &part_hashes)) != m.root {
                return Err(ClientError::Integrity(
                    "the document differs from the signed manifest (parts root)".into(),
                ));
            }
            w.flush().map_err(|e| super::unwritable(&partial, e))?;
            w.get_ref()
                .sync_all()
                .map_err(|e| super::unwritable(&partial, e))?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                std::fs::rename(&partial, out).map_err(|e| super::unwritable(out, e))?;
                Ok(m)
            }
            Err(e) => {
                drop(w);
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }
}

/// Where an upload's plaintext comes from.
enum Source {
    /// A file on disk, read once, chunk by chunk.
    Path(PathBuf),
    /// A document the client made, held in memory (small: an offer's PDF).
    Bytes(Zeroizing<Vec<u8>>),
}

/// Encrypts `size` bytes of `source` with `salt` and hands out parts of `part_size`
/// ciphertext bytes (the last part shorter). Each chunk is read straight into the part and
/// sealed where it lies.
fn encrypt_parts(
    key: &DocumentKey,
    salt: [u8; 32],
    source: &Source,
    size: u64,
    part_size: u64,
    tx: &std::sync::mpsc::SyncSender<Vec<u8>>,
) -> Result<()> {
    let part_size = usize::try_from(part_size).unwrap_or(usize::MAX);
    let capacity = part_size + DOCUMENT_CHUNK_SIZE + TAG_SIZE;
    let mut input: Box<dyn Read> = match source {
        Source::Path(path) => {
            Box::new(std::fs::File::open(path).map_err(|e| super::unreadable(path, e))?)
        }
        Source::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes.as_slice())),
    };
    let (mut enc, header) = StreamEncryptor::with_salt(key, salt);
    let mut part = Vec::with_capacity(capacity);
    part.extend_from_slice(&header);
    let chunks = size.div_ceil(DOCUMENT_CHUNK_SIZE as u64).max(1);
    let mut done = 0u64;
    let ship = |bytes: Vec<u8>| -> Result<()> {
        tx.send(bytes)
            .map_err(|_| ClientError::Invalid("upload stopped".into()))
    };
    for i in 0..chunks {
        let len = usize::try_from((size - done).min(DOCUMENT_CHUNK_SIZE as u64))
            .unwrap_or(DOCUMENT_CHUNK_SIZE);
        let start = part.len();
        part.resize(start + len, 0);
        let chunk = part.get_mut(start..).unwrap_or_default();
        let sealed = input
            .read_exact(chunk)
            .map_err(|e| ClientError::Invalid(format!("the document changed while reading: {e}")))
            .and_then(|()| {
                enc.seal_chunk_in_place(chunk, i + 1 == chunks)
                    .map_err(|e| ClientError::Invalid(format!("document: {e}")))
            });
        let tag = match sealed {
            Ok(tag) => tag,
            Err(e) => {
                // Never leave plaintext behind in a freed buffer.
                chunk.zeroize();
                return Err(e);
            }
        };
        part.extend_from_slice(&tag);
        done += len as u64;
        if part.len() >= part_size {
            // The next part starts with what overflowed; keep its buffer at full size so it
            // never grows by reallocation.
            let mut next = Vec::with_capacity(capacity);
            next.extend_from_slice(part.get(part_size..).unwrap_or_default());
            part.truncate(part_size);
            ship(std::mem::replace(&mut part, next))?;
        }
    }
    let mut probe = [0u8; 1];
    if input.read(&mut probe).unwrap_or(0) != 0 {
        return Err(ClientError::Invalid(
            "the document grew while reading".into(),
        ));
    }
    if !part.is_empty() {
        ship(part)?;
    }
    Ok(())
}
