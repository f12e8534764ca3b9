//! Documents: streaming encryption to a spool file, upload with progress, an encrypted
//! manifest record, and download with the accountable key and hash checks
//! (`protocol-spec/documents.md`). Memory stays at a few chunks for any size.
//!
//! Crash safety: the upload is recorded (with its release share, inside the encrypted
//! store) only once the spool file is complete and synced; every later step is
//! idempotent, and `sync` finishes any upload a crash interrupted. A download writes to
//! `OUT.partial` and renames only after the final chunk and both hashes verified.

use super::{now_ms, ClientError, Profile, Result};
use crate::transport::RelayError;
use ledgerline_protocol::constants::DOCUMENT_CHUNK_SIZE;
use ledgerline_protocol::document::{
    document_key, DocumentContext, StreamDecryptor, StreamEncryptor, HEADER_LEN,
};
use ledgerline_protocol::ids::{DocumentId, FileId, RecordId};
use ledgerline_protocol::keys::{DocumentKey, EpochKey, ReleaseShare};
use ledgerline_protocol::record::{seal_record, RecordHeader};
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
    /// Encrypting into the spool file.
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
    /// Hex SHA-256 of the plaintext.
    pub sha256: String,
    /// Ciphertext size (the blob).
    pub ciphertext_size: u64,
    /// Hex SHA-256 of the ciphertext.
    pub ciphertext_sha256: String,
    /// Epoch whose key the document key is bound to.
    pub epoch: u64,
    /// When it was uploaded (uploader's clock).
    pub uploaded_ms: u64,
}

/// An upload that is encrypted and spooled but not yet confirmed.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct PendingUpload {
    file: FileId,
    record: RecordId,
    share: String,
    manifest: DocumentManifest,
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        self.share.zeroize();
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> ClientError {
    ClientError::Invalid(format!("{what} {}: {e}", path.display()))
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
    fn spool_dir(&self) -> PathBuf {
        self.dir.join("spool")
    }

    fn spool_path(&self, doc: DocumentId) -> PathBuf {
        self.spool_dir().join(format!("{doc}.ct"))
    }

    /// Encrypts `path` and uploads it to `file`; returns the manifest. The plaintext is
    /// read once, chunk by chunk; `progress` hears about encryption and upload.
    pub async fn upload_document(
        &mut self,
        file: FileId,
        path: &Path,
        progress: Progress,
    ) -> Result<DocumentManifest> {
        if !self.roster()?.file_members(&file).contains(&self.id.member) {
            return Err(ClientError::NotAllowed(
                "this member has no access to the file".into(),
            ));
        }
        let (epoch, ek) = self
            .current_epoch(file)
            .ok_or_else(|| ClientError::NotAllowed("no key for this file yet".into()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ClientError::Invalid("the document needs a UTF-8 file name".into()))?
            .to_owned();
        let mut input = std::fs::File::open(path).map_err(|e| io("cannot read", path, e))?;
        let size = input
            .metadata()
            .map_err(|e| io("cannot read", path, e))?
            .len();
        let document = DocumentId::random(&mut OsRng);
        let mut share = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(share.as_mut());
        let mut manifest = DocumentManifest {
            kind: "document".into(),
            document,
            name,
            size,
            sha256: String::new(),
            ciphertext_size: 0,
            ciphertext_sha256: String::new(),
            epoch,
            uploaded_ms: now_ms(),
        };
        let key = doc_key(self, &ek, &share, file, &manifest);
        std::fs::create_dir_all(self.spool_dir())
            .map_err(|e| io("cannot create", &self.spool_dir(), e))?;
        let spool = self.spool_path(document);
        let (plain_sha, ct_sha, ct_size) =
            encrypt_to_spool(&key, &mut input, size, &spool, &progress)?;
        manifest.sha256 = hex::encode(plain_sha);
        manifest.ciphertext_sha256 = hex::encode(ct_sha);
        manifest.ciphertext_size = ct_size;
        self.local.uploads.push(PendingUpload {
            file,
            record: RecordId::random(&mut OsRng),
            share: hex::encode(share.as_ref()),
            manifest: manifest.clone(),
        });
        self.commit()?;
        self.finish_upload(document, progress).await?;
        Ok(manifest)
    }

    /// Sends a spooled upload, writes its manifest, forgets the share. Idempotent.
    async fn finish_upload(&mut self, document: DocumentId, progress: Progress) -> Result<()> {
        let Some(up) = self
            .local
            .uploads
            .iter()
            .find(|u| u.manifest.document == document)
            .cloned()
        else {
            return Ok(());
        };
        let spool = self.spool_path(document);
        let mut share = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(&up.share, share.as_mut())
            .map_err(|_| ClientError::Integrity("stored release share".into()))?;
        let mut ct_sha = [0u8; 32];
        hex::decode_to_slice(&up.manifest.ciphertext_sha256, &mut ct_sha)
            .map_err(|_| ClientError::Integrity("stored upload hash".into()))?;
        let total = up.manifest.ciphertext_size;
        let cb = progress.clone();
        let sent = self
            .relay
            .upload_document(
                &self.account,
                up.file,
                document,
                up.manifest.epoch,
                &share,
                &spool,
                ct_sha,
                Arc::new(move |done| {
                    super::crash_after_upload_bytes(done);
                    cb(Phase::Upload, done, total)
                }),
            )
            .await;
        match sent {
            Ok(()) => {}
            // An earlier attempt got through before the crash: the id is ours alone.
            Err(RelayError::Refused { code, .. }) if code == "document_exists" => {}
            Err(e) => return Err(e.into()),
        }
        let (epoch, ek) = self
            .current_epoch(up.file)
            .ok_or_else(|| ClientError::NotAllowed("no key for this file".into()))?;
        let header = RecordHeader {
            firm: self.id.firm,
            file: up.file,
            record: up.record,
            epoch,
            version: 1,
            author: self.id.device,
        };
        let body = Zeroizing::new(serde_json::to_vec(&up.manifest).unwrap_or_default());
        let env = seal_record(&header, &ek, &self.account, &body, &mut OsRng)
            .map_err(|e| ClientError::Invalid(format!("document manifest: {e}")))?;
        match self
            .relay
            .put_record(&self.account, up.file, up.record, &env.to_bytes())
            .await
        {
            Ok(_) => {}
            Err(RelayError::Refused { code, .. }) if code == "version_conflict" => {}
            Err(e) => return Err(e.into()),
        }
        self.remember_document(up.file, &up.manifest)?;
        self.local
            .uploads
            .retain(|u| u.manifest.document != document);
        self.commit()?;
        let _ = std::fs::remove_file(&spool);
        Ok(())
    }

    pub(super) fn remember_document(&mut self, file: FileId, m: &DocumentManifest) -> Result<()> {
        let docs = self.local.documents.entry(file).or_default();
        if docs.insert(m.document, m.clone()).is_none() {
            self.store
                .index("document", &format!("{file}:{}", m.document), &m.name)?;
        }
        Ok(())
    }

    /// Finishes uploads a crash interrupted; removes spool files nothing refers to.
    pub(super) async fn resume_uploads(&mut self) -> Result<usize> {
        let pending: Vec<DocumentId> = self
            .local
            .uploads
            .iter()
            .map(|u| u.manifest.document)
            .collect();
        let mut done = 0;
        for d in &pending {
            if self.spool_path(*d).exists() {
                self.finish_upload(*d, Arc::new(|_, _, _| {})).await?;
                done += 1;
            } else {
                self.local.uploads.retain(|u| u.manifest.document != *d);
                self.commit()?;
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.spool_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let known = pending.iter().any(|d| name == format!("{d}.ct"));
                if !known {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(done)
    }

    /// Documents of a file this profile knows (from synced manifests).
    pub fn documents(&self, file: FileId) -> Vec<DocumentManifest> {
        self.local
            .documents
            .get(&file)
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Resolves a document of `file` by id or name.
    pub fn resolve_document(&self, file: FileId, name_or_id: &str) -> Result<DocumentId> {
        let docs = self.documents(file);
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
        let m = self
            .local
            .documents
            .get(&file)
            .and_then(|d| d.get(&document))
            .cloned()
            .ok_or_else(|| ClientError::NotFound("unknown document".into()))?;
        let release = self
            .relay
            .release_document(&self.account, file, document)
            .await?;
        if release.epoch != m.epoch {
            return Err(ClientError::Integrity(format!(
                "the relay says epoch {}, the signed manifest says {}",
                release.epoch, m.epoch
            )));
        }
        let ek = self
            .epoch_key(file, m.epoch)
            .ok_or_else(|| ClientError::NotAllowed("no key for the document's epoch".into()))?;
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
            std::fs::File::create(&partial).map_err(|e| io("cannot write", &partial, e))?,
        );
        let result = async {
            let mut buf: Vec<u8> = Vec::with_capacity(2 * (DOCUMENT_CHUNK_SIZE + 16));
            let mut ct_sha = Sha256::new();
            let mut plain_sha = Sha256::new();
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
                    ct_sha.update(&p);
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
                        plain_sha.update(&*plain);
                        w.write_all(&plain)
                            .map_err(|e| io("cannot write", &partial, e))?;
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
            if hex::encode(ct_sha.finalize()) != m.ciphertext_sha256
                || hex::encode(plain_sha.finalize()) != m.sha256
            {
                return Err(ClientError::Integrity(
                    "the document's hash differs from the signed manifest".into(),
                ));
            }
            w.flush().map_err(|e| io("cannot write", &partial, e))?;
            w.get_ref()
                .sync_all()
                .map_err(|e| io("cannot write", &partial, e))?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                std::fs::rename(&partial, out).map_err(|e| io("cannot write", out, e))?;
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

/// Encrypts `size` bytes of `input` into `spool`; returns the plaintext and ciphertext
/// SHA-256 and the ciphertext size. The spool is synced before this returns.
fn encrypt_to_spool(
    key: &DocumentKey,
    input: &mut std::fs::File,
    size: u64,
    spool: &Path,
    progress: &Progress,
) -> Result<([u8; 32], [u8; 32], u64)> {
    let (mut enc, header) = StreamEncryptor::new(key, &mut OsRng);
    let f = std::fs::File::create(spool).map_err(|e| io("cannot write", spool, e))?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, f);
    let mut ct_sha = Sha256::new();
    let mut plain_sha = Sha256::new();
    out.write_all(&header)
        .map_err(|e| io("cannot write", spool, e))?;
    ct_sha.update(header);
    let mut ct_size = header.len() as u64;
    let chunks = size.div_ceil(DOCUMENT_CHUNK_SIZE as u64).max(1);
    let mut buf = Zeroizing::new(vec![0u8; DOCUMENT_CHUNK_SIZE]);
    let mut done = 0u64;
    for i in 0..chunks {
        let len = usize::try_from((size - done).min(DOCUMENT_CHUNK_SIZE as u64))
            .unwrap_or(DOCUMENT_CHUNK_SIZE);
        let chunk = buf.get_mut(..len).unwrap_or_default();
        input.read_exact(chunk).map_err(|e| {
            ClientError::Invalid(format!("the document changed while reading: {e}"))
        })?;
        plain_sha.update(&*chunk);
        let sealed = enc
            .seal_chunk(chunk, i + 1 == chunks)
            .map_err(|e| ClientError::Invalid(format!("document: {e}")))?;
        ct_sha.update(&sealed);
        out.write_all(&sealed)
            .map_err(|e| io("cannot write", spool, e))?;
        ct_size += sealed.len() as u64;
        done += len as u64;
        progress(Phase::Encrypt, done, size);
    }
    let mut probe = [0u8; 1];
    if input.read(&mut probe).unwrap_or(0) != 0 {
        return Err(ClientError::Invalid(
            "the document grew while reading".into(),
        ));
    }
    out.flush().map_err(|e| io("cannot write", spool, e))?;
    out.get_ref()
        .sync_all()
        .map_err(|e| io("cannot write", spool, e))?;
    Ok((
        plain_sha.finalize().into(),
        ct_sha.finalize().into(),
        ct_size,
    ))
}
