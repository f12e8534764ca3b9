//! Document blobs: on the local disk by default, or in an S3-compatible bucket
//! (`protocol-spec/scale-out.md`).
//!
//! Every upload writes its own **copy** under a fresh random 16-byte name, and the
//! document's row names the copy that won (`DocumentMeta::blob`). Two uploads of one
//! document id at once (a client's retry while its first attempt is still streaming, on one
//! instance or two) therefore never write over each other: the database admits one row, and
//! the loser deletes only its own copy. A copy is never replaced once in place.
//!
//! - On disk: `<blob dir>/<firm hex>/<document hex>/<copy hex>`, written to a temporary
//!   file, synced, then renamed into place, so a copy is either complete or absent.
//!   Documents stored before copies were named are the file `<firm hex>/<document hex>`.
//! - In a bucket (through `object_store`): a document is the objects
//!   `<firm hex>/<document hex>/<copy hex>/<n>`, n = 0, 1, …, read in order. A document
//!   uploaded in one request is one object, streamed to S3 as a multipart upload that is
//!   completed only once the body matched its signed hash (else aborted: nothing becomes
//!   visible). A document uploaded in parts keeps each part as its own object
//!   `<firm hex>/<document hex>/<n>` (no copy name: the upload session, one per id, owns
//!   them), written whole before the part is recorded; completing the upload writes nothing
//!   more. Any instance can take any part, and no part-size minimum of S3 applies.
//! - Deleting a document (erasure, retention) deletes everything under its name: every
//!   copy, including one left by an upload that lost its race and crashed before cleaning up.

use axum::body::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use ledgerline_protocol::ids::{DocumentId, FirmId};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The name of one stored copy of a document (see the module documentation).
pub type CopyName = [u8; 16];

/// A fresh copy name, from the OS's generator.
pub fn new_copy() -> CopyName {
    let mut name = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut name);
    name
}

/// Where a relay keeps document blobs.
#[derive(Debug)]
pub enum Blobs {
    /// The local directory (the default).
    Dir(BlobDir),
    /// An S3-compatible bucket.
    Bucket(Bucket),
}

impl Blobs {
    /// Opens what `config` names: the bucket if `s3_bucket` is set (checked reachable with
    /// the credentials given), else `data_dir/blobs`.
    pub async fn open(config: &crate::config::Config) -> Result<Self, String> {
        match &config.s3_bucket {
            Some(_) => Bucket::open(config).await.map(Self::Bucket),
            None => BlobDir::open(&config.blob_dir())
                .map(Self::Dir)
                .map_err(|e| format!("{}: {e}", config.blob_dir().display())),
        }
    }

    /// Deletes a document's blob and any partial upload of it, once its rows are gone
    /// (erasure, retention). A blob left behind is unreachable: it is logged, not fatal.
    pub async fn remove(&self, firm: FirmId, document: DocumentId) {
        match self {
            Self::Dir(d) => d.remove(firm, document).await,
            Self::Bucket(b) => b.remove(firm, document).await,
        }
    }

    /// Deletes one copy that no row names (its upload lost the race for the id, or its
    /// row could not be written), and nothing else of the document.
    pub async fn discard(&self, firm: FirmId, document: DocumentId, copy: CopyName) {
        match self {
            Self::Dir(d) => d.discard(firm, document, copy).await,
            Self::Bucket(b) => b.discard(firm, document, copy).await,
        }
    }

    /// Total bytes of stored blobs, for metrics (`None` in a bucket: listing it whole
    /// would cost a request per thousand objects; the database's sizes stand in).
    pub fn total_bytes(&self) -> Option<u64> {
        match self {
            Self::Dir(d) => Some(d.total_bytes()),
            Self::Bucket(_) => None,
        }
    }
}

/// Refuses an S3 endpoint that would carry ciphertext and signed requests in clear across a
/// network: `http://` is for loopback only.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return if endpoint.starts_with("https://") {
            Ok(())
        } else {
            Err("s3_endpoint must be an http:// or https:// URL".into())
        };
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err("s3_endpoint must use https:// unless the service runs on this machine".into())
    }
}

/// Why a blob could not be read from a bucket.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The service failed or refused.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// The objects do not add up to the recorded document.
    #[error("the stored objects of a document are incomplete")]
    Incomplete,
}

/// Document blobs in an S3-compatible bucket.
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bucket")
    }
}

/// Bytes per part of the S3 multipart upload behind a one-request document (S3's minimum
/// is 5 MiB).
const S3_PART: usize = 8 << 20;

/// S3 parts sent at once per upload.
const S3_PARTS_IN_FLIGHT: usize = 2;

impl Bucket {
    /// Connects to the configured bucket and checks that it answers to the credentials.
    pub async fn open(config: &crate::config::Config) -> Result<Self, String> {
        let name = config
            .s3_bucket
            .as_deref()
            .ok_or_else(|| "no s3_bucket".to_owned())?;
        // The AWS_* variables and instance metadata fill in what the config leaves unset.
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(name)
            .with_region(&config.s3_region);
        if let Some(endpoint) = &config.s3_endpoint {
            check_endpoint(endpoint)?;
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&config.s3_access_key_id, &config.s3_secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose());
        }
        let store = builder
            .build()
            .map_err(|e| format!("S3 bucket {name}: {e}"))?;
        let bucket = Self::over(Arc::new(store));
        // Reachable, the bucket exists and the credentials may list it.
        bucket
            .store
            .list_with_delimiter(Some(&ObjectPath::from("ledgerline")))
            .await
            .map_err(|e| format!("S3 bucket {name} is not usable: {e}"))?;
        Ok(bucket)
    }

    /// Blobs in any object store (tests use the in-memory one).
    pub fn over(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Everything of a document.
    fn prefix(firm: FirmId, document: DocumentId) -> ObjectPath {
        ObjectPath::from(format!("{}/{}", firm.to_hex(), document.to_hex()))
    }

    /// One copy's objects (`None`: a multipart upload's parts, or a document stored before
    /// copies were named).
    fn copy_prefix(firm: FirmId, document: DocumentId, copy: Option<CopyName>) -> ObjectPath {
        match copy {
            Some(c) => Self::prefix(firm, document).join(hex::encode(c)),
            None => Self::prefix(firm, document),
        }
    }

    fn object(firm: FirmId, document: DocumentId, copy: Option<CopyName>, n: u64) -> ObjectPath {
        Self::copy_prefix(firm, document, copy).join(n.to_string())
    }

    /// Stores object `n` of a document whole (a part of a multipart upload).
    pub async fn put_object(
        &self,
        firm: FirmId,
        document: DocumentId,
        n: u64,
        chunks: Vec<Bytes>,
    ) -> Result<(), object_store::Error> {
        let payload: object_store::PutPayload = chunks.into_iter().collect();
        self.store
            .put(&Self::object(firm, document, None, n), payload)
            .await
            .map(|_| ())
    }

    /// Starts streaming a one-request document into object 0 of copy `copy` (`None`:
    /// under the document's own name, for documents stored before copies were named).
    pub async fn writer(
        &self,
        firm: FirmId,
        document: DocumentId,
        copy: Option<CopyName>,
    ) -> Result<BucketWriter, object_store::Error> {
        let upload = self
            .store
            .put_multipart(&Self::object(firm, document, copy, 0))
            .await?;
        Ok(BucketWriter(
            object_store::WriteMultipart::new_with_chunk_size(upload, S3_PART),
        ))
    }

    /// A copy's objects in order, with their sizes; they must be numbered 0, 1, …
    /// without a gap. Other copies (deeper names) are not its objects.
    pub async fn objects(
        &self,
        firm: FirmId,
        document: DocumentId,
        copy: Option<CopyName>,
    ) -> Result<Vec<(ObjectPath, u64)>, BucketError> {
        let prefix = Self::copy_prefix(firm, document, copy);
        let listed: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&prefix)).try_collect().await?;
        let mut numbered = Vec::with_capacity(listed.len());
        for meta in listed {
            if meta.location.prefix_match(&prefix).map(Iterator::count) != Some(1) {
                continue;
            }
            let n = meta
                .location
                .filename()
                .and_then(|f| f.parse::<u64>().ok())
                .ok_or(BucketError::Incomplete)?;
            numbered.push((n, meta.location, meta.size));
        }
        numbered.sort_by_key(|(n, _, _)| *n);
        if numbered
            .iter()
            .enumerate()
            .any(|(i, (n, _, _))| *n != i as u64)
        {
            return Err(BucketError::Incomplete);
        }
        Ok(numbered.into_iter().map(|(_, p, s)| (p, s)).collect())
    }

    /// Streams bytes `range` of a document of `size` bytes.
    pub async fn read(
        &self,
        firm: FirmId,
        document: DocumentId,
        copy: Option<CopyName>,
        size: u64,
        range: std::ops::Range<u64>,
    ) -> Result<futures_util::stream::BoxStream<'static, Result<Bytes, BucketError>>, BucketError>
    {
        let objects = self.objects(firm, document, copy).await?;
        if objects.iter().map(|(_, s)| s).sum::<u64>() != size {
            return Err(BucketError::Incomplete);
        }
        // Each object's share of the range, relative to the object.
        let mut wanted = Vec::new();
        let mut at = 0u64;
        for (path, len) in objects {
            let (start, end) = (range.start.max(at), range.end.min(at + len));
            if start < end {
                wanted.push((path, (start - at)..(end - at)));
            }
            at += len;
        }
        let store = self.store.clone();
        let stream = futures_util::stream::iter(wanted)
            .then(move |(path, r)| {
                let store = store.clone();
                async move {
                    let got = store
                        .get_opts(
                            &path,
                            object_store::GetOptions {
                                range: Some(object_store::GetRange::Bounded(r)),
                                ..Default::default()
                            },
                        )
                        .await?;
                    Ok::<_, BucketError>(got.into_stream().map_err(BucketError::from))
                }
            })
            .try_flatten();
        Ok(stream.boxed())
    }

    /// Every object under a document's name: every copy, parts too (for checks).
    pub async fn all_objects(
        &self,
        firm: FirmId,
        document: DocumentId,
    ) -> Result<Vec<ObjectPath>, object_store::Error> {
        self.store
            .list(Some(&Self::prefix(firm, document)))
            .map_ok(|m| m.location)
            .try_collect()
            .await
    }

    /// Deletes every object of a document (every copy, a partial upload's parts too).
    pub async fn remove(&self, firm: FirmId, document: DocumentId) {
        self.delete_under(&Self::prefix(firm, document)).await;
    }

    /// Deletes the objects of one copy.
    pub async fn discard(&self, firm: FirmId, document: DocumentId, copy: CopyName) {
        self.delete_under(&Self::copy_prefix(firm, document, Some(copy)))
            .await;
    }

    async fn delete_under(&self, prefix: &ObjectPath) {
        let listed: Result<Vec<object_store::ObjectMeta>, _> =
            self.store.list(Some(prefix)).try_collect().await;
        let result = match listed {
            Ok(objects) => {
                let mut result = Ok(());
                for o in objects {
                    if let Err(e) = self.store.delete(&o.location).await {
                        result = Err(e);
                    }
                }
                result
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "deleted document's objects not all removed");
        }
    }
}

/// A one-request document on its way into the bucket: nothing is visible until
/// [`BucketWriter::finish`]; [`BucketWriter::abort`] discards it.
pub struct BucketWriter(object_store::WriteMultipart);

impl std::fmt::Debug for BucketWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BucketWriter")
    }
}

impl BucketWriter {
    /// Queues `chunk`, waiting while too many S3 parts are in flight.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), object_store::Error> {
        self.0.wait_for_capacity(S3_PARTS_IN_FLIGHT).await?;
        self.0.put(chunk);
        Ok(())
    }

    /// Completes the S3 upload: the object appears whole.
    pub async fn finish(self) -> Result<(), object_store::Error> {
        self.0.finish().await.map(|_| ())
    }

    /// Abandons the S3 upload (its parts are deleted by the service).
    pub async fn abort(self) {
        if let Err(e) = self.0.abort().await {
            tracing::warn!(error = %e, "an abandoned S3 upload was not aborted");
        }
    }
}

/// The local blob directory.
#[derive(Debug, Clone)]
pub struct BlobDir {
    root: PathBuf,
}

impl BlobDir {
    /// Uses (and creates) `root`.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        // Uploads interrupted by a crash leave temporary files; they were never acknowledged.
        for entry in std::fs::read_dir(root.join("tmp"))? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Path of a document's copy (`None`: a document stored before copies were named).
    pub fn path(&self, firm: FirmId, document: DocumentId, copy: Option<CopyName>) -> PathBuf {
        self.root.join(Self::relative(
            &firm.to_hex(),
            &document.to_hex(),
            copy.map(hex::encode).as_deref(),
        ))
    }

    /// The same path relative to the blob directory, from hex names (backups).
    pub fn relative(firm: &str, document: &str, copy: Option<&str>) -> PathBuf {
        let name = Path::new(firm).join(document);
        match copy {
            Some(c) => name.join(c),
            None => name,
        }
    }

    /// The file a multipart upload grows in; it survives restarts (uploads resume).
    pub fn upload_path(&self, firm: FirmId, document: DocumentId) -> PathBuf {
        self.root
            .join("uploads")
            .join(format!("{}-{}", firm.to_hex(), document.to_hex()))
    }

    /// A fresh temporary path for an upload in progress.
    pub fn temp_path(&self) -> PathBuf {
        self.root.join("tmp").join(hex::encode(new_copy()))
    }

    /// Moves a synced temporary file into place as copy `copy` of a document that has no
    /// row (the caller checked), and syncs the directories whose entries changed. The name
    /// is fresh, so nothing already in place is ever replaced.
    pub async fn commit(
        &self,
        temp: &Path,
        firm: FirmId,
        document: DocumentId,
        copy: CopyName,
    ) -> std::io::Result<()> {
        let firm_dir = self.root.join(firm.to_hex());
        let doc_dir = self.path(firm, document, None);
        // A file under the document's own name is a blob stored before copies were named;
        // with no row naming it (the caller found none, and no row names one any more) it
        // is left over from a crash, and in the way.
        if tokio::fs::symlink_metadata(&doc_dir)
            .await
            .is_ok_and(|m| m.is_file())
        {
            tokio::fs::remove_file(&doc_dir).await?;
        }
        // The root's entries change only with a firm's first document.
        let new_firm = !tokio::fs::try_exists(&firm_dir).await?;
        tokio::fs::create_dir_all(&doc_dir).await?;
        tokio::fs::rename(temp, self.path(firm, document, Some(copy))).await?;
        let changed = [&doc_dir, &firm_dir, &self.root];
        for dir in changed.iter().take(if new_firm { 3 } else { 2 }) {
            tokio::fs::File::open(dir).await?.sync_all().await?;
        }
        Ok(())
    }

    /// Deletes a document's blob (every copy) and any partial upload of it, once its rows
    /// are gone (erasure, retention). A blob left behind is unreachable: it is logged, not
    /// fatal.
    pub async fn remove(&self, firm: FirmId, document: DocumentId) {
        let name = self.path(firm, document, None);
        let removed = match tokio::fs::symlink_metadata(&name).await {
            Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(&name).await,
            Ok(_) => tokio::fs::remove_file(&name).await,
            Err(e) => Err(e),
        };
        let upload = tokio::fs::remove_file(self.upload_path(firm, document)).await;
        for result in [removed, upload] {
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "deleted document's blob not removed"),
            }
        }
    }

    /// Deletes one copy (its directory stays: another upload may be renaming into it).
    pub async fn discard(&self, firm: FirmId, document: DocumentId, copy: CopyName) {
        match tokio::fs::remove_file(self.path(firm, document, Some(copy))).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "an unneeded copy was not removed"),
        }
    }

    /// Total bytes of stored blobs (for metrics).
    pub fn total_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            std::fs::read_dir(p)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| match e.metadata() {
                            Ok(m) if m.is_dir() => walk(&e.path()),
                            Ok(m) => m.len(),
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.root)
    }
}

/// How many body bytes are handed to the writer thread at once.
const SINK_BATCH: usize = 256 * 1024;

/// Writes a request body to a file on the blocking pool while the caller goes on receiving
/// and hashing it: the body's buffers move to the writer thread (no copy), a few hundred
/// KiB at a time, at most a few batches ahead of the disk.
#[derive(Debug)]
pub struct FileSink {
    tx: Option<tokio::sync::mpsc::Sender<Vec<axum::body::Bytes>>>,
    batch: Vec<axum::body::Bytes>,
    batched: usize,
    worker: tokio::task::JoinHandle<std::io::Result<std::fs::File>>,
}

impl FileSink {
    /// Starts the writer: `open` runs on the writer thread and positions the file.
    pub fn start(open: impl FnOnce() -> std::io::Result<std::fs::File> + Send + 'static) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<axum::body::Bytes>>(4);
        let worker = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut f = open()?;
            while let Some(batch) = rx.blocking_recv() {
                for b in batch {
                    f.write_all(&b)?;
                }
            }
            Ok(f)
        });
        Self {
            tx: Some(tx),
            batch: Vec::new(),
            batched: 0,
            worker,
        }
    }

    /// Queues `chunk`. An error means the writer stopped; [`FileSink::finish`] says why.
    pub async fn write(&mut self, chunk: axum::body::Bytes) -> Result<(), ()> {
        self.batched += chunk.len();
        self.batch.push(chunk);
        if self.batched >= SINK_BATCH {
            self.hand_over().await?;
        }
        Ok(())
    }

    async fn hand_over(&mut self) -> Result<(), ()> {
        let batch = std::mem::take(&mut self.batch);
        self.batched = 0;
        match &self.tx {
            Some(tx) if !batch.is_empty() => tx.send(batch).await.map_err(|_| ()),
            _ => Ok(()),
        }
    }

    /// Writes what is queued and waits for the writer: when this returns, every byte is in
    /// the file (not yet synced) and nothing writes to it any more.
    pub async fn finish(mut self) -> std::io::Result<std::fs::File> {
        let handed = self.hand_over().await;
        self.tx = None;
        let written = self
            .worker
            .await
            .map_err(|e| std::io::Error::other(format!("blob writer: {e}")))?;
        match (written, handed) {
            (Ok(f), Ok(())) => Ok(f),
            (Ok(_), Err(())) => Err(std::io::Error::other("blob writer stopped")),
            (Err(e), _) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerline_testkit::s3::{ACCESS_KEY_ID, BUCKET, S3, SECRET_ACCESS_KEY};

    fn config(s3: &S3) -> crate::config::Config {
        crate::config::Config {
            s3_bucket: Some(BUCKET.into()),
            s3_endpoint: Some(s3.endpoint()),
            s3_access_key_id: Some(ACCESS_KEY_ID.into()),
            s3_secret_access_key: Some(SECRET_ACCESS_KEY.to_owned().into()),
            ..Default::default()
        }
    }

    async fn read_all(
        b: &Bucket,
        firm: FirmId,
        doc: DocumentId,
        copy: Option<CopyName>,
        size: u64,
        r: std::ops::Range<u64>,
    ) -> Vec<u8> {
        let mut s = b.read(firm, doc, copy, size, r).await.expect("read");
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        out
    }

    /// Against moto: a one-request document larger than one S3 part appears only once
    /// finished, an aborted one never; parts are objects read back in order, any range
    /// across them; a gap is refused; copies of one document stay apart (discarding one
    /// leaves the others); removal takes every object.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn documents_in_a_bucket_are_whole_ordered_and_ranged() {
        let s3 = tokio::task::spawn_blocking(S3::start).await.expect("moto");
        let bucket = Bucket::open(&config(&s3)).await.expect("open");
        let firm = FirmId([1; 16]);
        let (whole, parted, dropped) = (
            DocumentId([2; 16]),
            DocumentId([3; 16]),
            DocumentId([4; 16]),
        );
        let data: Vec<u8> = (0..(S3_PART * 2 + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();

        let (c1, c2) = (Some([9; 16]), Some([10; 16]));
        let mut w = bucket.writer(firm, whole, c1).await.expect("writer");
        for chunk in data.chunks(1 << 20) {
            w.write(Bytes::copy_from_slice(chunk)).await.expect("write");
        }
        assert!(
            bucket
                .objects(firm, whole, c1)
                .await
                .expect("list")
                .is_empty(),
            "nothing visible before it is finished"
        );
        w.finish().await.expect("finish");
        let size = data.len() as u64;
        assert_eq!(
            read_all(&bucket, firm, whole, c1, size, 0..size).await,
            data
        );
        // A second upload of the same id, finished after the first: its own copy.
        let mut w = bucket.writer(firm, whole, c2).await.expect("writer");
        w.write(Bytes::from_static(b"other")).await.expect("write");
        w.finish().await.expect("finish");
        assert_eq!(read_all(&bucket, firm, whole, c2, 5, 0..5).await, b"other");
        assert_eq!(
            read_all(&bucket, firm, whole, c1, size, 0..size).await,
            data
        );
        bucket.discard(firm, whole, [10; 16]).await;
        assert!(bucket
            .objects(firm, whole, c2)
            .await
            .expect("list")
            .is_empty());
        assert_eq!(
            read_all(&bucket, firm, whole, c1, size, 0..size).await,
            data
        );
        let mut w = bucket.writer(firm, dropped, c1).await.expect("writer");
        w.write(Bytes::from_static(b"never")).await.expect("write");
        w.abort().await;
        assert!(bucket
            .objects(firm, dropped, c1)
            .await
            .expect("list")
            .is_empty());

        let parts: Vec<&[u8]> = data.chunks(100_000).take(12).collect();
        for (n, p) in parts.iter().enumerate().rev() {
            bucket
                .put_object(firm, parted, n as u64, vec![Bytes::copy_from_slice(p)])
                .await
                .expect("part");
        }
        // A copy under the same document is not one of its parts.
        let mut w = bucket.writer(firm, parted, c1).await.expect("writer");
        w.write(Bytes::from_static(b"copy")).await.expect("write");
        w.finish().await.expect("finish");
        let joined: Vec<u8> = parts.concat();
        let len = joined.len() as u64;
        assert_eq!(
            bucket
                .objects(firm, parted, None)
                .await
                .expect("list")
                .len(),
            12,
            "10 and 11 sort after 9"
        );
        assert_eq!(
            read_all(&bucket, firm, parted, None, len, 0..len).await,
            joined
        );
        for r in [99_990..100_010, 0..1, len - 1..len, 250_000..1_150_000] {
            let want = joined
                .get(
                    usize::try_from(r.start).expect("usize")
                        ..usize::try_from(r.end).expect("usize"),
                )
                .expect("in range");
            assert_eq!(
                read_all(&bucket, firm, parted, None, len, r.clone()).await,
                want,
                "{r:?}"
            );
        }
        assert!(
            matches!(
                bucket.read(firm, parted, None, len + 1, 0..1).await,
                Err(BucketError::Incomplete)
            ),
            "a size that does not add up"
        );
        bucket.remove(firm, parted).await;
        bucket
            .put_object(firm, parted, 1, vec![Bytes::from_static(b"gap")])
            .await
            .expect("part");
        assert!(
            matches!(
                bucket.objects(firm, parted, None).await,
                Err(BucketError::Incomplete)
            ),
            "a gap"
        );
        bucket.remove(firm, parted).await;
        bucket.remove(firm, whole).await;
        for doc in [parted, whole] {
            assert!(bucket
                .all_objects(firm, doc)
                .await
                .expect("list")
                .is_empty());
        }
    }

    #[tokio::test]
    async fn a_missing_bucket_or_a_plaintext_remote_endpoint_is_refused() {
        let s3 = tokio::task::spawn_blocking(S3::start).await.expect("moto");
        let missing = crate::config::Config {
            s3_bucket: Some("no-such-bucket".into()),
            ..config(&s3)
        };
        let e = Bucket::open(&missing).await.expect_err("opened");
        assert!(
            e.contains("not usable") && !e.contains(SECRET_ACCESS_KEY),
            "{e}"
        );
        for ok in [
            "https://s3.example.com",
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://s3.example.com",
            "http://10.0.0.5:9000",
            "s3.example.com",
            "ftp://x",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    async fn temp_with(dir: &BlobDir, bytes: &[u8]) -> PathBuf {
        let temp = dir.temp_path();
        tokio::fs::write(&temp, bytes).await.expect("temp");
        temp
    }

    /// On disk: two copies of one document live side by side and never replace each
    /// other; discarding one leaves the other; a document stored under its own name before
    /// copies were named still reads, and when no row names it (a crash's leftover) a new
    /// copy takes its place; removal takes every copy and the partial upload.
    #[tokio::test]
    async fn copies_on_disk_stay_apart() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = BlobDir::open(root.path()).expect("open");
        let (firm, doc) = (FirmId([1; 16]), DocumentId([2; 16]));
        let (a, b) = ([3u8; 16], [4u8; 16]);
        let first = temp_with(&dir, b"first").await;
        dir.commit(&first, firm, doc, a).await.expect("commit a");
        let second = temp_with(&dir, b"second").await;
        dir.commit(&second, firm, doc, b).await.expect("commit b");
        let read = |copy| std::fs::read(dir.path(firm, doc, copy));
        assert_eq!(read(Some(a)).expect("a"), b"first");
        assert_eq!(read(Some(b)).expect("b"), b"second");
        dir.discard(firm, doc, b).await;
        assert!(read(Some(b)).is_err());
        assert_eq!(read(Some(a)).expect("a"), b"first");
        std::fs::write(dir.upload_path(firm, doc), b"part").expect("upload");
        dir.remove(firm, doc).await;
        assert!(!dir.path(firm, doc, None).exists());
        assert!(!dir.upload_path(firm, doc).exists());

        let old = DocumentId([5; 16]);
        std::fs::write(dir.path(firm, old, None), b"old").expect("old");
        assert_eq!(
            std::fs::read(dir.path(firm, old, None)).expect("old"),
            b"old"
        );
        dir.remove(firm, old).await;
        assert!(!dir.path(firm, old, None).exists());
        std::fs::write(dir.path(firm, old, None), b"leftover").expect("leftover");
        let new = temp_with(&dir, b"new").await;
        dir.commit(&new, firm, old, a)
            .await
            .expect("commit over a leftover");
        assert_eq!(
            std::fs::read(dir.path(firm, old, Some(a))).expect("new"),
            b"new"
        );
    }
}
