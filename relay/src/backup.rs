//! Backup and restore of a relay's data directory (`protocol-spec/operations.md`,
//! "Backup and restore"), consistent while the relay serves.
//!
//! A backup is a directory: `relay.sqlite3` (SQLite's online backup API, copied in one
//! step, so one read transaction: a consistent snapshot while writers go on in the WAL),
//! the blobs that snapshot names (`blobs/<firm>/<document>`, immutable once in place, and
//! the files of uploads in progress, which the relay re-checks part by part before
//! resuming), `log-key.secret`, and `MANIFEST.json` with the database's SHA-256. Nothing
//! in it is readable content: the relay never held any. It does hold the log-key secret
//! (whoever has it can sign checkpoints as this relay), so the directory is owner-only.
//!
//! Restore checks the manifest, the database's hash and integrity, and every document
//! blob's size against the snapshot before anything is written, builds the data directory
//! beside its final place and renames it there: a restore is whole or absent. It never
//! writes over an existing data directory.

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The backup directory format this relay writes and reads.
pub const FORMAT: u32 = 1;

const DATABASE: &str = "relay.sqlite3";
const BLOBS: &str = "blobs";
const SECRET: &str = "log-key.secret";
const MANIFEST: &str = "MANIFEST.json";

/// What a backup holds (`MANIFEST.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The relay version that wrote it.
    pub relay_version: String,
    /// The database's schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// When the snapshot was taken (Unix ms).
    pub created_ms: u64,
    /// Documents in the snapshot whose blobs are in the backup.
    pub documents: u64,
    /// Uploads in progress whose files are in the backup.
    pub uploads: u64,
    /// Bytes of blobs copied.
    pub blob_bytes: u64,
    /// Documents the snapshot names whose blobs were deleted (erasure, retention) before
    /// they were copied: restored, they are gone, as they were meant to be.
    pub missing_blobs: Vec<String>,
    /// Hex SHA-256 of `relay.sqlite3` as written.
    pub database_sha256: String,
}

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Wrong use: a missing source, an occupied destination.
    #[error("{0}")]
    Usage(String),
    /// The backup is not whole or not ours.
    #[error("the backup at {path} cannot be restored: {why}")]
    Damaged {
        /// The backup directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The disk or SQLite failed.
    #[error("{what}: {why}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        why: String,
    },
}

/// A disk or SQLite failure while doing `what`.
fn io<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> BackupError {
    let what = what.into();
    move |e| BackupError::Io {
        what,
        why: e.to_string(),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A directory that is absent or empty (and can be made, owner-only).
fn fresh_dir(dir: &Path, what: &str) -> Result<(), BackupError> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(BackupError::Usage(format!(
                "{} is not empty: {what} goes into a new or empty directory",
                dir.display()
            )));
        }
    } else if dir.exists() {
        return Err(BackupError::Usage(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    private_dir(dir)
}

fn private_dir(dir: &Path) -> Result<(), BackupError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(io(format!("cannot create {}", dir.display())))
}

/// Copies a file and syncs the copy.
fn copy_synced(from: &Path, to: &Path) -> std::io::Result<u64> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let n = std::fs::copy(from, to)?;
    std::fs::File::open(to)?.sync_all()?;
    Ok(n)
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync {}", dir.display())))
}

fn file_sha256(path: &Path) -> Result<String, BackupError> {
    let mut f = std::fs::File::open(path).map_err(io(format!("cannot read {}", path.display())))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(io(format!("cannot read {}", path.display())))?;
    Ok(hex::encode(h.finalize()))
}

/// A blob a row names: firm and document (hex), size, and for a document its path under
/// the blob directory (its copy, `crate::blobs`).
struct BlobRow {
    firm: String,
    doc: String,
    size: u64,
    path: PathBuf,
}

/// The blob of every row of `table` (`documents` or `uploads`; an upload has no copy).
fn blobs_in(db: &Connection, table: &str) -> rusqlite::Result<Vec<BlobRow>> {
    let copy = if table == "documents" { "blob" } else { "NULL" };
    let mut st = db.prepare(&format!("SELECT firm, document, size, {copy} FROM {table}"))?;
    let rows = st.query_map([], |r| {
        let (firm, doc) = (
            hex::encode(r.get::<_, Vec<u8>>(0)?),
            hex::encode(r.get::<_, Vec<u8>>(1)?),
        );
        let copy = r.get::<_, Option<Vec<u8>>>(3)?.map(hex::encode);
        let path = crate::blobs::BlobDir::relative(&firm, &doc, copy.as_deref());
        Ok(BlobRow {
            size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            firm,
            doc,
            path,
        })
    })?;
    rows.collect()
}

fn integrity(db: &Connection) -> Result<(), String> {
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(format!("integrity check: {verdict}"))
    }
}

/// Backs up the relay data directory `data` into `out` (absent or empty), while the
/// relay may be serving.
pub fn backup(data: &Path, out: &Path) -> Result<Manifest, BackupError> {
    let source = data.join(DATABASE);
    if !source.is_file() {
        return Err(BackupError::Usage(format!(
            "no relay database at {}",
            source.display()
        )));
    }
    fresh_dir(out, "a backup")?;
    let target = out.join(DATABASE);
    let src = Connection::open_with_flags(
        &source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(io(format!("cannot open {}", source.display())))?;
    src.busy_timeout(Duration::from_secs(10))
        .map_err(io("cannot set a busy timeout"))?;
    {
        let mut dst =
            Connection::open(&target).map_err(io(format!("cannot create {}", target.display())))?;
        let b = Backup::new(&src, &mut dst).map_err(io("cannot start the database backup"))?;
        // Every page in one step: one read transaction, one consistent snapshot.
        let mut tries = 0;
        loop {
            match b.step(-1).map_err(io("database backup"))? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                StepResult::More | StepResult::Busy | StepResult::Locked => {
                    return Err(BackupError::Io {
                        what: "database backup".into(),
                        why: "the database stayed busy".into(),
                    })
                }
                _ => {
                    return Err(BackupError::Io {
                        what: "database backup".into(),
                        why: "unexpected step result".into(),
                    })
                }
            }
        }
    }
    let created_ms = now_ms();
    let dst = Connection::open(&target).map_err(io("cannot reopen the backup"))?;
    integrity(&dst).map_err(|why| BackupError::Io {
        what: "the database copy".into(),
        why,
    })?;
    let schema_version: i64 = dst
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(io("cannot read the schema version"))?;
    let documents = blobs_in(&dst, "documents").map_err(io("cannot read documents"))?;
    let uploads = blobs_in(&dst, "uploads").map_err(io("cannot read uploads"))?;
    drop(dst);
    std::fs::File::open(&target)
        .and_then(|f| f.sync_all())
        .map_err(io("cannot sync the database copy"))?;
    let blobs = data.join(BLOBS);
    let mut m = Manifest {
        format: FORMAT,
        relay_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version,
        created_ms,
        documents: 0,
        uploads: 0,
        blob_bytes: 0,
        missing_blobs: Vec::new(),
        database_sha256: file_sha256(&target)?,
    };
    for BlobRow { doc, path, .. } in &documents {
        let from = blobs.join(path);
        match copy_synced(&from, &out.join(BLOBS).join(path)) {
            Ok(n) => {
                m.documents += 1;
                m.blob_bytes += n;
            }
            // Deleted since the snapshot (blobs go after their rows).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                m.missing_blobs.push(doc.clone());
            }
            Err(e) => return Err(io(format!("cannot copy {}", from.display()))(e)),
        }
    }
    for BlobRow { firm, doc, .. } in &uploads {
        let name = format!("{firm}-{doc}");
        let from = blobs.join("uploads").join(&name);
        match copy_synced(&from, &out.join(BLOBS).join("uploads").join(&name)) {
            Ok(n) => {
                m.uploads += 1;
                m.blob_bytes += n;
            }
            // Completed or abandoned meanwhile: the relay re-checks uploads' parts.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("cannot copy {}", from.display()))(e)),
        }
    }
    let secret = data.join(SECRET);
    if secret.is_file() {
        copy_synced(&secret, &out.join(SECRET)).map_err(io("cannot copy the log key"))?;
        #[cfg(unix)]
        std::fs::set_permissions(
            out.join(SECRET),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(io("cannot restrict the log key's copy"))?;
    }
    let manifest = serde_json::to_vec_pretty(&m).map_err(|e| BackupError::Io {
        what: "manifest".into(),
        why: e.to_string(),
    })?;
    std::fs::write(out.join(MANIFEST), manifest).map_err(io("cannot write the manifest"))?;
    std::fs::File::open(out.join(MANIFEST))
        .and_then(|f| f.sync_all())
        .map_err(io("cannot sync the manifest"))?;
    sync_dir(out)?;
    Ok(m)
}

/// Checks the backup at `from` and restores it as the data directory `data` (absent or
/// empty). Nothing is written when the backup is damaged.
pub fn restore(from: &Path, data: &Path) -> Result<Manifest, BackupError> {
    let damaged = |why: String| BackupError::Damaged {
        path: from.to_owned(),
        why,
    };
    let raw = std::fs::read(from.join(MANIFEST))
        .map_err(|e| damaged(format!("no readable {MANIFEST}: {e}")))?;
    let m: Manifest =
        serde_json::from_slice(&raw).map_err(|e| damaged(format!("{MANIFEST}: {e}")))?;
    if m.format != FORMAT {
        return Err(damaged(format!(
            "format {} (this relay reads format {FORMAT})",
            m.format
        )));
    }
    let db = from.join(DATABASE);
    if file_sha256(&db).map_err(|e| damaged(e.to_string()))? != m.database_sha256 {
        return Err(damaged(
            "the database does not match the manifest's hash".into(),
        ));
    }
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| damaged(e.to_string()))?;
    integrity(&conn).map_err(damaged)?;
    let sizes = blobs_in(&conn, "documents").map_err(|e| damaged(e.to_string()))?;
    drop(conn);
    for BlobRow {
        doc, size, path, ..
    } in &sizes
    {
        if m.missing_blobs.contains(doc) {
            continue;
        }
        let path = from.join(BLOBS).join(path);
        let len = std::fs::metadata(&path)
            .map_err(|e| damaged(format!("document {doc}: {e}")))?
            .len();
        if len != *size {
            return Err(damaged(format!(
                "document {doc} is {len} bytes, the database says {size}"
            )));
        }
    }
    if std::fs::read_dir(data).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupError::Usage(format!(
            "{} holds data: restore into a new or empty directory (move the old one aside)",
            data.display()
        )));
    }
    // Built beside, renamed into place: whole or absent.
    let mut staging = data.as_os_str().to_owned();
    staging.push(".restoring");
    let staging = PathBuf::from(staging);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(format!(
            "cannot clear {} (left by an interrupted restore)",
            staging.display()
        )))?;
    }
    private_dir(&staging)?;
    copy_tree(from, &staging)?;
    std::fs::remove_file(staging.join(MANIFEST)).map_err(io("cannot drop the manifest copy"))?;
    never_reuse_numbers(&staging.join(DATABASE))?;
    sync_dir(&staging)?;
    if data.exists() {
        std::fs::remove_dir(data).map_err(io(format!("cannot replace {}", data.display())))?;
    }
    std::fs::rename(&staging, data).map_err(io(format!(
        "cannot move the restored data to {}",
        data.display()
    )))?;
    if let Some(parent) = data.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(m)
}

/// How far a restore moves every sequence a client keeps a cursor on.
pub const RESTORE_SEQ_GAP: i64 = 1 << 32;

/// A restored relay is behind what it acknowledged before. It must never hand out a room
/// sequence number or a to-device id again that a device may already hold (a device's
/// cursor past the restored end would skip every new message): each room's next number and
/// each AUTOINCREMENT counter move ahead by [`RESTORE_SEQ_GAP`]. Clients read a jump that
/// large as "the relay lost what it acknowledged" (`protocol-spec/operations.md`).
fn never_reuse_numbers(db: &Path) -> Result<(), BackupError> {
    // A backup of an older relay is brought to this relay's schema first (it has the
    // sequence floor then).
    drop(
        crate::store::sqlite::SqliteStore::open(db).map_err(|e| BackupError::Io {
            what: "cannot bring the restored database to this relay's schema".into(),
            why: e.to_string(),
        })?,
    );
    let conn = Connection::open(db).map_err(io(format!("cannot open {}", db.display())))?;
    conn.execute_batch(&format!(
        "BEGIN;
         UPDATE rooms SET next_seq = next_seq + {RESTORE_SEQ_GAP};
         UPDATE seq_floor SET next_seq = next_seq + {RESTORE_SEQ_GAP};
         UPDATE sqlite_sequence SET seq = seq + {RESTORE_SEQ_GAP};
         INSERT INTO sqlite_sequence (name, seq)
             SELECT t, {RESTORE_SEQ_GAP} FROM (SELECT 'to_device' AS t UNION ALL SELECT 'backup_items')
             WHERE t NOT IN (SELECT name FROM sqlite_sequence);
         COMMIT;"
    ))
    .map_err(io("cannot move the restored sequences ahead"))?;
    drop(conn);
    let file = std::fs::File::open(db).map_err(io("cannot reopen the restored database"))?;
    file.sync_all()
        .map_err(io("cannot sync the restored database"))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), BackupError> {
    for entry in std::fs::read_dir(from).map_err(io(format!("cannot read {}", from.display())))? {
        let entry = entry.map_err(io(format!("cannot read {}", from.display())))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry
            .file_type()
            .map_err(io(format!("cannot read {}", src.display())))?;
        if kind.is_dir() {
            private_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            copy_synced(&src, &dst).map_err(io(format!("cannot copy {}", src.display())))?;
        }
    }
    sync_dir(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_occupied_destination_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap_or_default();
        std::fs::write(out.join("x"), b"x").unwrap_or_default();
        assert!(matches!(
            backup(dir.path(), &out),
            Err(BackupError::Usage(_))
        ));
        assert!(matches!(
            restore(&out, &dir.path().join("data")),
            Err(BackupError::Damaged { .. })
        ));
    }
}
