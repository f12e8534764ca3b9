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
