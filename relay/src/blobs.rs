//! Document blobs on the local disk: `<blob dir>/<firm hex>/<document hex>`, written to a
//! temporary file, synced, then renamed into place, so a blob is either complete or absent.

use ledgerline_protocol::ids::{DocumentId, FirmId};
use std::path::{Path, PathBuf};

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

    /// Final path of a document's blob.
    pub fn path(&self, firm: FirmId, document: DocumentId) -> PathBuf {
        self.root.join(firm.to_hex()).join(document.to_hex())
    }

    /// The file a multipart upload grows in; it survives restarts (uploads resume).
    pub fn upload_path(&self, firm: FirmId, document: DocumentId) -> PathBuf {
        self.root
            .join("uploads")
            .join(format!("{}-{}", firm.to_hex(), document.to_hex()))
    }

    /// A fresh temporary path for an upload in progress.
    pub fn temp_path(&self) -> PathBuf {
        let mut name = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut name);
        self.root.join("tmp").join(hex::encode(name))
    }

    /// Moves a synced temporary file into place and syncs the directory.
    pub async fn commit(
        &self,
        temp: &Path,
        firm: FirmId,
        document: DocumentId,
    ) -> std::io::Result<()> {
        let dest = self.path(firm, document);
        let dir = dest
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| self.root.clone());
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::rename(temp, &dest).await?;
        let dir_file = tokio::fs::File::open(&dir).await?;
        dir_file.sync_all().await
    }

    /// Deletes a document's blob and any partial upload of it, once its rows are gone
    /// (erasure, retention). A blob left behind is unreachable: it is logged, not fatal.
    pub async fn remove(&self, firm: FirmId, document: DocumentId) {
        for path in [self.path(firm, document), self.upload_path(firm, document)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "deleted document's blob not removed"),
            }
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
