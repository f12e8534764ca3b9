//! The embedded SQLite backend (WAL, `synchronous = FULL`): a few reader connections used
//! on Tokio's blocking threads, and one writer thread that commits in groups.
//!
//! Group commit: writes queue for the writer thread, which runs every queued job in one
//! transaction — each inside its own savepoint, so one failing job rolls back alone — and
//! commits (one fsync) before answering any of them. A write is acknowledged only after
//! the commit that holds it, so durability is per write while the fsync cost is shared.

use super::*;
use ledgerline_protocol::roster::conversation_room;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tlog_tiles::tlog;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_invites.sql"),
    include_str!("../../migrations/0003_uploads.sql"),
    include_str!("../../migrations/0004_audit_tree.sql"),
    include_str!("../../migrations/0005_key_cursors.sql"),
    include_str!("../../migrations/0006_rotation_due.sql"),
    include_str!("../../migrations/0007_erased_files.sql"),
    include_str!("../../migrations/0008_retention.sql"),
    include_str!("../../migrations/0009_teams.sql"),
    include_str!("../../migrations/0010_backup.sql"),
    include_str!("../../migrations/0011_seq_floor.sql"),
];
const READERS: usize = 4;

/// Refuses a write under `epoch` if the file has a newer epoch, or if a revocation
/// exposed the file's keys and its new epoch does not exist yet.
fn check_epoch(
    tx: &rusqlite::Transaction<'_>,
    firm: FirmId,
    file: FileId,
    epoch: u64,
) -> Result<(), StoreError> {
    let newest: Option<i64> = tx
        .query_row(
            "SELECT MAX(epoch) FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2",
            params![&firm.0[..], &file.0[..]],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let newest = newest.map(u);
    if newest.is_some_and(|n| epoch < n) {
        return Err(StoreError::StaleEpoch {
            newest: newest.unwrap_or(0),
            rotating: false,
        });
    }
    let due: Option<i64> = tx
        .query_row(
            "SELECT min_epoch FROM rotation_due WHERE firm = ?1 AND file = ?2",
            params![&firm.0[..], &file.0[..]],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    if due.is_some_and(|d| epoch < u(d)) {
        return Err(StoreError::StaleEpoch {
            newest: newest.unwrap_or(0),
            rotating: true,
        });
    }
    Ok(())
}

fn insert_document(
    tx: &rusqlite::Transaction<'_>,
    firm: FirmId,
    m: &DocumentMeta,
    now_ms: u64,
) -> Result<(), StoreError> {
    check_epoch(tx, firm, m.file, m.epoch)?;
    insert_or_exists(tx.execute(
        "INSERT INTO documents (firm, document, file, epoch, size, sha256, release_share, uploaded_by, created_ms, year) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![&firm.0[..], &m.document.0[..], &m.file.0[..], i(m.epoch), i(m.size), &m.sha256[..], &m.release_share[..], &m.uploaded_by.0[..], i(now_ms), m.year],
    ))
}

/// SQLite storage.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` once closing.
    jobs: Mutex<Option<std::sync::mpsc::Sender<Box<dyn WriteJob>>>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    /// Closing is synchronous: the writer finishes what is queued and closes its
    /// connection before the store is gone, so a stopped relay leaves a quiet database
    /// (no WAL checkpoint still running behind a backup or a restart).
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Most jobs in one group commit.
const MAX_GROUP: usize = 512;

/// A queued write: runs inside the group's transaction, then learns whether the group
/// committed.
trait WriteJob: Send {
    fn run(&mut self, tx: &rusqlite::Transaction<'_>) -> bool;
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Job<T, F> {
    work: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: Option<tokio::sync::oneshot::Sender<Result<T, StoreError>>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, tx: &rusqlite::Transaction<'_>) -> bool {
        let out = self
            .work
            .take()
            .map(|f| f(tx))
            .unwrap_or_else(|| Err(StoreError::Backend("job ran twice".into())));
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(mut self: Box<Self>, committed: Result<(), StoreError>) {
        let result = match (committed, self.out.take()) {
            (Ok(()), Some(out)) => out,
            (Ok(()), None) => Err(StoreError::Backend("job did not run".into())),
            // The job's own error explains more than the failed commit that followed it.
            (Err(_), Some(Err(e))) => Err(e),
            (Err(StoreError::Full), _) => Err(StoreError::Full),
            (Err(e), _) => Err(StoreError::Backend(format!("commit failed: {e}"))),
        };
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

/// The writer thread: takes a group of jobs, runs them in one transaction, commits once.
fn writer_loop(mut conn: Connection, jobs: std::sync::mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let committed = run_group(&mut conn, &mut group);
        for job in group {
            job.finish(committed.clone());
        }
    }
}

fn run_group(conn: &mut Connection, group: &mut [Box<dyn WriteJob>]) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    for job in group.iter_mut() {
        tx.execute_batch("SAVEPOINT job").map_err(backend)?;
        let ok = job.run(&tx);
        if !ok {
            tx.execute_batch("ROLLBACK TO job").map_err(backend)?;
        }
        tx.execute_batch("RELEASE job").map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

/// Index of the migration that adds the audit log's tree hashes (0004).
const AUDIT_TREE_MIGRATION: usize = 3;

/// One firm's stored tree hashes, read for `tlog_tiles` (RFC 6962 roots and proofs).
struct TreeHashes<'c> {
    c: &'c Connection,
    firm: FirmId,
}

impl tlog::HashReader for TreeHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        let mut st = self
            .c
            .prepare_cached("SELECT hash FROM audit_hashes WHERE firm = ?1 AND idx = ?2")
            .map_err(|e| tlog::Error::InvalidInput(e.to_string()))?;
        indexes
            .iter()
            .map(|&idx| {
                let h: Vec<u8> = st
                    .query_row(params![&self.firm.0[..], i(idx)], |r| r.get(0))
                    .map_err(|e| tlog::Error::InvalidInput(format!("tree hash {idx}: {e}")))?;
                <[u8; 32]>::try_from(h.as_slice())
                    .map(tlog::Hash)
                    .map_err(|_| tlog::Error::MalformedHash)
            })
            .collect()
    }
}

/// Number of leaves in a firm's log.
fn log_size(c: &Connection, firm: FirmId) -> Result<u64, StoreError> {
    c.query_row(
        "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_leaves WHERE firm = ?1",
        params![&firm.0[..]],
        |r| r.get(0),
    )
    .map(u)
    .map_err(backend)
}

/// `NotFound` unless the log has at least `size` leaves.
fn within_log(c: &Connection, firm: FirmId, size: u64) -> Result<(), StoreError> {
    if size > log_size(c, firm)? {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Appends `leaf` with its tree hashes, in the caller's transaction; returns its index.
fn append_leaf(tx: &Connection, firm: FirmId, leaf: &[u8]) -> Result<u64, StoreError> {
    let n = log_size(tx, firm)?;
    let hashes = tlog::stored_hashes(n, leaf, &TreeHashes { c: tx, firm }).map_err(backend)?;
    let base = tlog::stored_hash_index(0, n);
    let mut st = tx
        .prepare_cached("INSERT INTO audit_hashes (firm, idx, hash) VALUES (?1, ?2, ?3)")
        .map_err(backend)?;
    for (k, h) in (base..).zip(&hashes) {
        st.execute(params![&firm.0[..], i(k), &h.0[..]])
            .map_err(backend)?;
    }
    tx.prepare_cached("INSERT INTO audit_leaves (firm, idx, leaf) VALUES (?1, ?2, ?3)")
        .map_err(backend)?
        .execute(params![&firm.0[..], i(n), leaf])
        .map_err(backend)?;
    Ok(n)
}

/// Migration 0004: the tree hashes of the leaves logged before it, in order.
fn hash_existing_audit_leaves(tx: &Connection) -> Result<(), StoreError> {
    let leaves: Vec<(Vec<u8>, Vec<u8>)> = {
        let mut st = tx
            .prepare("SELECT firm, leaf FROM audit_leaves ORDER BY firm, idx")
            .map_err(backend)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    tx.execute("DELETE FROM audit_leaves", [])
        .map_err(backend)?;
    for (firm, leaf) in leaves {
        let firm = FirmId(<[u8; 16]>::try_from(firm.as_slice()).map_err(backend)?);
        append_leaf(tx, firm, &leaf)?;
    }
    Ok(())
}

fn backend(e: impl std::fmt::Display + 'static) -> StoreError {
    if super::is_storage_full(&e) {
        return StoreError::Full;
    }
    StoreError::Backend(e.to_string())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let c = Connection::open(path).map_err(backend)?;
    c.pragma_update(None, "journal_mode", "WAL")
        .map_err(backend)?;
    // FULL: a write acknowledged to a client survives power loss, not only a crash.
    c.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    c.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend)?;
    c.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    Ok(c)
}

fn id16(b: Vec<u8>) -> Result<[u8; 16], rusqlite::Error> {
    b.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Blob)
    })
}

fn id32(b: Vec<u8>) -> Result<[u8; 32], rusqlite::Error> {
    b.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "hash".into(), rusqlite::types::Type::Blob)
    })
}

/// SQLite stores integers as i64; our counters never reach 2^63.
fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = open_connection(path)?;
        let applied: i64 = writer
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(backend)?;
        let applied = usize::try_from(applied).map_err(backend)?;
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "database schema version {applied} is newer than this relay ({}); upgrade the relay",
                MIGRATIONS.len()
            )));
        }
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = writer.transaction().map_err(backend)?;
            tx.execute_batch(sql).map_err(backend)?;
            if n == AUDIT_TREE_MIGRATION {
                hash_existing_audit_leaves(&tx)?;
            }
            tx.pragma_update(None, "user_version", n as i64 + 1)
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
        }
        let readers = (0..READERS)
            .map(|_| open_connection(path).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        let (jobs, queue) = std::sync::mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("ledgerline-sqlite-writer".into())
            .spawn(move || writer_loop(writer, queue))
            .map_err(backend)?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs: Mutex::new(Some(jobs)),
                readers,
                next_reader: AtomicUsize::new(0),
                writer: Some(writer),
            }),
        })
    }

    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job {
            work: Some(f),
            out: None,
            reply: Some(reply),
        });
        self.inner
            .jobs
            .lock()
            .map_err(|_| StoreError::Backend("writer queue lock poisoned".into()))?
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closing".into()))?
            .send(job)
            .map_err(|_| StoreError::Backend("the writer thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the writer thread dropped a write".into()))?
    }

    /// A write that appends `audit` to the firm's log in the same transaction, after `f`
    /// succeeded (a failed change logs nothing).
    async fn write_logged<T, F>(
        &self,
        firm: FirmId,
        audit: AuditEntry,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.write(move |tx| {
            let out = f(tx)?;
            append_leaf(tx, firm, &audit)?;
            Ok(out)
        })
        .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let n = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len().max(1);
            let conn = inner
                .readers
                .get(n)
                .ok_or_else(|| StoreError::Backend("no reader".into()))?
                .lock()
                .map_err(|_| StoreError::Backend("reader lock poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(backend)?
    }
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// A holder as stored: kind (1 member, 2 team) and id.
/// The member's current backup key, if any.
fn backup_key_of(
    c: &Connection,
    firm: FirmId,
    member: MemberId,
) -> Result<Option<Vec<u8>>, StoreError> {
    c.query_row(
        "SELECT backup_key FROM backup_keys WHERE firm = ?1 AND member = ?2",
        params![&firm.0[..], &member.0[..]],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)
}

fn backup_key_row(r: &rusqlite::Row<'_>, at: usize) -> Result<BackupKey, rusqlite::Error> {
    let sig: Vec<u8> = r.get(at + 2)?;
    let signature: [u8; 64] = sig.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            at + 2,
            rusqlite::types::Type::Blob,
            "signature length".into(),
        )
    })?;
    Ok(BackupKey {
        recovery_id: id16(r.get(at)?)?,
        key: id32(r.get(at + 1)?)?,
        signature,
    })
}

fn holder_parts(h: &Holder) -> (u8, [u8; 16]) {
    match h {
        Holder::Member(m) => (1, m.0),
        Holder::Team(t) => (2, t.0),
    }
}

/// The newest version of a team's key, if any.
fn newest_team_key(c: &Connection, firm: FirmId, team: TeamId) -> Result<Option<u32>, StoreError> {
    c.query_row(
        "SELECT MAX(version) FROM team_key_wraps WHERE firm = ?1 AND team = ?2",
        params![&firm.0[..], &team.0[..]],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Refuses a team's epoch-key wrap unless it is under the team's newest key and no roster
/// event has made that key's rotation due.
fn check_team_key(
    tx: &rusqlite::Transaction<'_>,
    firm: FirmId,
    holder: &Holder,
    version: u32,
) -> Result<(), StoreError> {
    let Holder::Team(team) = *holder else {
        return Ok(());
    };
    let due: Option<i64> = tx
        .query_row(
            "SELECT min_version FROM team_rotation_due WHERE firm = ?1 AND team = ?2",
            params![&firm.0[..], &team.0[..]],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    if newest_team_key(tx, firm, team)? != Some(version) || due.is_some() {
        return Err(StoreError::StaleTeamKey { team });
    }
    Ok(())
}

fn insert_or_exists(r: rusqlite::Result<usize>) -> Result<(), StoreError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_constraint(&e) => Err(StoreError::Exists),
        Err(e) => Err(backend(e)),
    }
}

impl Store for SqliteStore {
    async fn create_firm(
        &self,
        firm: FirmId,
        events: Vec<Vec<u8>>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            insert_or_exists(tx.execute(
                "INSERT INTO firms (firm, created_ms) VALUES (?1, ?2)",
                params![&firm.0[..], i(now_ms)],
            ))?;
            for (seq, e) in events.iter().enumerate() {
                tx.execute(
                    "INSERT INTO roster_events (firm, seq, event) VALUES (?1, ?2, ?3)",
                    params![&firm.0[..], seq as i64, e],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn firms(&self) -> Result<Vec<FirmId>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare("SELECT firm FROM firms ORDER BY firm")
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| id16(r.get(0)?).map(FirmId))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn roster_events(&self, firm: FirmId, from_seq: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT event FROM roster_events WHERE firm = ?1 AND seq >= ?2 ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], i(from_seq)], |r| r.get(0))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn append_roster_event(
        &self,
        firm: FirmId,
        seq: u64,
        event: Vec<u8>,
        due: RotationDue,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            insert_or_exists(tx.execute(
                "INSERT INTO roster_events (firm, seq, event) VALUES (?1, ?2, ?3)",
                params![&firm.0[..], i(seq), event],
            ))?;
            let mut st = tx
                .prepare_cached("INSERT OR REPLACE INTO rotation_due (firm, file, min_epoch) VALUES (?1, ?2, COALESCE((SELECT MAX(epoch) FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2), 0) + 1)")
                .map_err(backend)?;
            for file in due.files {
                st.execute(params![&firm.0[..], &file.0[..]]).map_err(backend)?;
            }
            let mut st = tx
                .prepare_cached("INSERT OR REPLACE INTO team_rotation_due (firm, team, min_version) VALUES (?1, ?2, COALESCE((SELECT MAX(version) FROM team_key_wraps WHERE firm = ?1 AND team = ?2), 0) + 1)")
                .map_err(backend)?;
            for team in due.teams {
                st.execute(params![&firm.0[..], &team.0[..]]).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn put_prekeys(
        &self,
        firm: FirmId,
        device: DeviceId,
        keys: Vec<(u8, u32, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            for (kind, key_id, encoded) in keys {
                if kind == 2 {
                    tx.execute("DELETE FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 2", params![&firm.0[..], &device.0[..]])
                        .map_err(backend)?;
                }
                tx.execute(
                    "INSERT OR REPLACE INTO prekeys (firm, device, kind, key_id, encoded) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![&firm.0[..], &device.0[..], kind, key_id, encoded],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn claim_prekey(
        &self,
        firm: FirmId,
        device: DeviceId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.write(move |tx| {
            let otk: Option<(u32, Vec<u8>)> = tx
                .query_row(
                    "SELECT key_id, encoded FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 1 ORDER BY key_id LIMIT 1",
                    params![&firm.0[..], &device.0[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            if let Some((key_id, encoded)) = otk {
                tx.execute("DELETE FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 1 AND key_id = ?3", params![&firm.0[..], &device.0[..], key_id])
                    .map_err(backend)?;
                return Ok(Some(encoded));
            }
            tx.query_row("SELECT encoded FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 2", params![&firm.0[..], &device.0[..]], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn count_one_time_keys(&self, firm: FirmId, device: DeviceId) -> Result<u64, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 1",
                params![&firm.0[..], &device.0[..]],
                |r| r.get(0),
            )
            .map(u)
            .map_err(backend)
        })
        .await
    }

    async fn send_to_device(
        &self,
        firm: FirmId,
        sender: DeviceId,
        messages: Vec<(DeviceId, Vec<u8>)>,
        now_ms: u64,
    ) -> Result<Vec<u64>, StoreError> {
        self.write(move |tx| {
            let mut ids = Vec::with_capacity(messages.len());
            let mut st = tx
                .prepare_cached("INSERT INTO to_device (firm, recipient, sender, ciphertext, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(backend)?;
            for (recipient, ct) in messages {
                st.execute(params![&firm.0[..], &recipient.0[..], &sender.0[..], ct, i(now_ms)]).map_err(backend)?;
                ids.push(u(tx.last_insert_rowid()));
            }
            Ok(ids)
        })
        .await
    }

    async fn pending_to_device(
        &self,
        firm: FirmId,
        recipient: DeviceId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<ToDevice>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT id, sender, ciphertext, created_ms FROM to_device WHERE firm = ?1 AND recipient = ?2 AND id > ?3 ORDER BY id LIMIT ?4")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], &recipient.0[..], i(after), limit], |r| {
                    Ok(ToDevice { id: u(r.get(0)?), sender: DeviceId(id16(r.get(1)?)?), ciphertext: r.get(2)?, created_ms: u(r.get(3)?) })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn ack_to_device(
        &self,
        firm: FirmId,
        recipient: DeviceId,
        up_to: u64,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM to_device WHERE firm = ?1 AND recipient = ?2 AND id <= ?3",
                params![&firm.0[..], &recipient.0[..], i(up_to)],
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn forget_device(&self, firm: FirmId, device: DeviceId) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM to_device WHERE firm = ?1 AND recipient = ?2",
                params![&firm.0[..], &device.0[..]],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM prekeys WHERE firm = ?1 AND device = ?2",
                params![&firm.0[..], &device.0[..]],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn create_room(
        &self,
        firm: FirmId,
        room: Room,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            insert_or_exists(tx.execute(
                "INSERT INTO rooms (firm, room, file, created_by, next_seq) \
                 VALUES (?1, ?2, ?3, ?4, (SELECT next_seq FROM seq_floor WHERE id = 1))",
                params![
                    &firm.0[..],
                    &room.id[..],
                    room.file.map(|f| f.0.to_vec()),
                    &room.created_by.0[..]
                ],
            ))?;
            for m in &room.members {
                tx.execute(
                    "INSERT OR IGNORE INTO room_members (firm, room, member) VALUES (?1, ?2, ?3)",
                    params![&firm.0[..], &room.id[..], &m.0[..]],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn room(&self, firm: FirmId, room: RoomId) -> Result<Option<Room>, StoreError> {
        self.read(move |c| {
            let head: Option<(Option<Vec<u8>>, Vec<u8>)> = c
                .query_row(
                    "SELECT file, created_by FROM rooms WHERE firm = ?1 AND room = ?2",
                    params![&firm.0[..], &room[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            let Some((file, created_by)) = head else {
                return Ok(None);
            };
            let mut st = c
                .prepare_cached(
                    "SELECT member FROM room_members WHERE firm = ?1 AND room = ?2 ORDER BY member",
                )
                .map_err(backend)?;
            let members = st
                .query_map(params![&firm.0[..], &room[..]], |r| {
                    id16(r.get(0)?).map(MemberId)
                })
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            Ok(Some(Room {
                id: room,
                file: file.map(id16).transpose().map_err(backend)?.map(FileId),
                created_by: MemberId(id16(created_by).map_err(backend)?),
                members,
            }))
        })
        .await
    }

    async fn set_room_members(
        &self,
        firm: FirmId,
        room: RoomId,
        members: Vec<MemberId>,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM rooms WHERE firm = ?1 AND room = ?2",
                    params![&firm.0[..], &room[..]],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "DELETE FROM room_members WHERE firm = ?1 AND room = ?2",
                params![&firm.0[..], &room[..]],
            )
            .map_err(backend)?;
            for m in &members {
                tx.execute(
                    "INSERT OR IGNORE INTO room_members (firm, room, member) VALUES (?1, ?2, ?3)",
                    params![&firm.0[..], &room[..], &m.0[..]],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn append_message(
        &self,
        firm: FirmId,
        room: RoomId,
        sender: DeviceId,
        ciphertext: Vec<u8>,
        now_ms: u64,
        audit: AuditEntry,
    ) -> Result<u64, StoreError> {
        self.write_logged(firm, audit, move |tx| {
            let seq: i64 = tx
                .query_row("UPDATE rooms SET next_seq = next_seq + 1 WHERE firm = ?1 AND room = ?2 RETURNING next_seq - 1", params![&firm.0[..], &room[..]], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .ok_or(StoreError::NotFound)?;
            tx.prepare_cached("INSERT INTO room_messages (firm, room, seq, sender, ciphertext, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .and_then(|mut st| st.execute(params![&firm.0[..], &room[..], seq, &sender.0[..], ciphertext, i(now_ms)]))
                .map_err(backend)?;
            Ok(u(seq))
        })
        .await
    }

    async fn messages(
        &self,
        firm: FirmId,
        room: RoomId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT seq, sender, ciphertext, created_ms FROM room_messages WHERE firm = ?1 AND room = ?2 AND seq >= ?3 ORDER BY seq LIMIT ?4")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], &room[..], i(from), limit], |r| {
                    Ok(Message { seq: u(r.get(0)?), sender: DeviceId(id16(r.get(1)?)?), ciphertext: r.get(2)?, created_ms: u(r.get(3)?) })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn put_record(
        &self,
        firm: FirmId,
        file: FileId,
        record: RecordId,
        version: u64,
        epoch: u64,
        author: DeviceId,
        envelope: Vec<u8>,
        now_ms: u64,
        audit: AuditEntry,
    ) -> Result<u64, StoreError> {
        self.write_logged(firm, audit, move |tx| {
            check_epoch(tx, firm, file, epoch)?;
            let current: u64 = tx
                .query_row("SELECT version FROM records WHERE firm = ?1 AND file = ?2 AND record = ?3", params![&firm.0[..], &file.0[..], &record.0[..]], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .map(u)
                .unwrap_or(0);
            if version != current + 1 {
                return Err(StoreError::VersionConflict { current });
            }
            let cursor: i64 = tx
                .query_row("UPDATE firms SET next_cursor = next_cursor + 1 WHERE firm = ?1 RETURNING next_cursor - 1", params![&firm.0[..]], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .ok_or(StoreError::NotFound)?;
            tx.execute(
                "INSERT OR REPLACE INTO records (firm, file, record, version, cursor, author, envelope, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![&firm.0[..], &file.0[..], &record.0[..], i(version), cursor, &author.0[..], envelope, i(now_ms)],
            )
            .map_err(backend)?;
            Ok(u(cursor))
        })
        .await
    }

    async fn records_since(
        &self,
        firm: FirmId,
        file: FileId,
        cursor: u64,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT record, version, cursor, envelope FROM records WHERE firm = ?1 AND file = ?2 AND cursor > ?3 ORDER BY cursor LIMIT ?4")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], &file.0[..], i(cursor), limit], |r| {
                    Ok(StoredRecord { record: RecordId(id16(r.get(0)?)?), version: u(r.get(1)?), cursor: u(r.get(2)?), envelope: r.get(3)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn put_member_key_wrap(
        &self,
        firm: FirmId,
        w: MemberKeyWrap,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO member_key_wraps (firm, member, key_version, device, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![&firm.0[..], &w.member.0[..], w.key_version, &w.device.0[..], w.wrapped, i(log_size(tx, firm)?)],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    async fn member_key_wraps_for(
        &self,
        firm: FirmId,
        device: DeviceId,
        since: u64,
    ) -> Result<Vec<(u64, MemberKeyWrap)>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT member, key_version, wrapped, cursor FROM member_key_wraps WHERE firm = ?1 AND device = ?2 AND cursor >= ?3 ORDER BY cursor, member, key_version")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], &device.0[..], i(since)], |r| {
                    Ok((u(r.get(3)?), MemberKeyWrap { member: MemberId(id16(r.get(0)?)?), key_version: r.get(1)?, device, wrapped: r.get(2)? }))
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn put_team_key_version(
        &self,
        firm: FirmId,
        team: TeamId,
        version: u32,
        wraps: Vec<TeamKeyWrap>,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            let newest = newest_team_key(tx, firm, team)?.unwrap_or(0);
            if newest.checked_add(1) != Some(version) {
                return Err(StoreError::VersionConflict {
                    current: u64::from(newest),
                });
            }
            let cursor = i(log_size(tx, firm)?);
            let mut st = tx
                .prepare_cached("INSERT INTO team_key_wraps (firm, team, version, member, member_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .map_err(backend)?;
            for w in wraps {
                insert_or_exists(st.execute(params![&firm.0[..], &team.0[..], version, &w.member.0[..], w.member_key_version, w.wrapped, cursor]))?;
            }
            tx.execute(
                "DELETE FROM team_rotation_due WHERE firm = ?1 AND team = ?2 AND min_version <= ?3",
                params![&firm.0[..], &team.0[..], version],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn put_team_key_wrap(
        &self,
        firm: FirmId,
        w: TeamKeyWrap,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            let newest = newest_team_key(tx, firm, w.team)?;
            if newest != Some(w.version) {
                return Err(StoreError::VersionConflict {
                    current: u64::from(newest.unwrap_or(0)),
                });
            }
            tx.execute(
                "INSERT OR REPLACE INTO team_key_wraps (firm, team, version, member, member_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![&firm.0[..], &w.team.0[..], w.version, &w.member.0[..], w.member_key_version, w.wrapped, i(log_size(tx, firm)?)],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    async fn team_key_wraps_for(
        &self,
        firm: FirmId,
        member: MemberId,
        since: u64,
    ) -> Result<Vec<(u64, TeamKeyWrap)>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT team, version, member_key_version, wrapped, cursor FROM team_key_wraps WHERE firm = ?1 AND member = ?2 AND cursor >= ?3 ORDER BY cursor, team, version")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], &member.0[..], i(since)], |r| {
                    Ok((u(r.get(4)?), TeamKeyWrap { team: TeamId(id16(r.get(0)?)?), version: r.get(1)?, member, member_key_version: r.get(2)?, wrapped: r.get(3)? }))
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn put_epoch_key_wrap(
        &self,
        firm: FirmId,
        file: FileId,
        w: EpochKeyWrap,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            check_team_key(tx, firm, &w.holder, w.holder_key_version)?;
            let (kind, id) = holder_parts(&w.holder);
            tx.execute(
                "INSERT OR REPLACE INTO epoch_key_wraps (firm, file, epoch, holder_kind, holder, holder_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![&firm.0[..], &file.0[..], i(w.epoch), kind, &id[..], w.holder_key_version, w.wrapped, i(log_size(tx, firm)?)],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    async fn epoch_key_wraps(
        &self,
        firm: FirmId,
        file: FileId,
        holder: Holder,
        since: u64,
    ) -> Result<Vec<(u64, EpochKeyWrap)>, StoreError> {
        self.read(move |c| {
            let (kind, id) = holder_parts(&holder);
            let mut st = c
                .prepare_cached("SELECT epoch, holder_key_version, wrapped, cursor FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2 AND holder_kind = ?3 AND holder = ?4 AND cursor >= ?5 ORDER BY cursor, epoch")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], &file.0[..], kind, &id[..], i(since)], |r| {
                    Ok((u(r.get(3)?), EpochKeyWrap { epoch: u(r.get(0)?), holder, holder_key_version: r.get(1)?, wrapped: r.get(2)? }))
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn start_epoch(
        &self,
        firm: FirmId,
        file: FileId,
        epoch: u64,
        link: Vec<u8>,
        wraps: Vec<EpochKeyWrap>,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            let cursor = i(log_size(tx, firm)?);
            insert_or_exists(tx.execute(
                "INSERT INTO epoch_links (firm, file, epoch, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&firm.0[..], &file.0[..], i(epoch), link, cursor],
            ))?;
            let current: Option<i64> = tx
                .query_row(
                    "SELECT MAX(epoch) FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2",
                    params![&firm.0[..], &file.0[..]],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let current = current.map(u);
            if current.map(|c| c.saturating_add(1)) != Some(epoch) {
                return Err(StoreError::VersionConflict {
                    current: current.unwrap_or(0),
                });
            }
            for w in &wraps {
                check_team_key(tx, firm, &w.holder, w.holder_key_version)?;
            }
            let mut st = tx
                .prepare_cached("INSERT INTO epoch_key_wraps (firm, file, epoch, holder_kind, holder, holder_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .map_err(backend)?;
            for w in wraps {
                let (kind, id) = holder_parts(&w.holder);
                insert_or_exists(st.execute(params![&firm.0[..], &file.0[..], i(epoch), kind, &id[..], w.holder_key_version, w.wrapped, cursor]))?;
            }
            tx.execute(
                "DELETE FROM rotation_due WHERE firm = ?1 AND file = ?2 AND min_epoch <= ?3",
                params![&firm.0[..], &file.0[..], i(epoch)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn erase_file(
        &self,
        firm: FirmId,
        file: FileId,
        now_ms: u64,
        audit: AuditEntry,
    ) -> Result<Vec<DocumentId>, StoreError> {
        self.write_logged(firm, audit, move |tx| {
            insert_or_exists(tx.execute(
                "INSERT INTO erased_files (firm, file, erased_ms) VALUES (?1, ?2, ?3)",
                params![&firm.0[..], &file.0[..], i(now_ms)],
            ))?;
            let mut docs: Vec<DocumentId> = Vec::new();
            for table in ["documents", "uploads"] {
                let mut st = tx
                    .prepare(&format!(
                        "SELECT document FROM {table} WHERE firm = ?1 AND file = ?2"
                    ))
                    .map_err(backend)?;
                let rows = st
                    .query_map(params![&firm.0[..], &file.0[..]], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .map_err(backend)?;
                for row in rows {
                    let bytes = row.map_err(backend)?;
                    if let Ok(id) = <[u8; 16]>::try_from(bytes.as_slice()) {
                        docs.push(DocumentId(id));
                    }
                }
            }
            for d in &docs {
                tx.execute(
                    "DELETE FROM upload_parts WHERE firm = ?1 AND document = ?2",
                    params![&firm.0[..], &d.0[..]],
                )
                .map_err(backend)?;
            }
            for sql in [
                "DELETE FROM records WHERE firm = ?1 AND file = ?2",
                "DELETE FROM documents WHERE firm = ?1 AND file = ?2",
                "DELETE FROM uploads WHERE firm = ?1 AND file = ?2",
                "DELETE FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2",
                "DELETE FROM epoch_links WHERE firm = ?1 AND file = ?2",
                "DELETE FROM rotation_due WHERE firm = ?1 AND file = ?2",
                "DELETE FROM room_messages WHERE firm = ?1 AND room = ?2",
            ] {
                tx.execute(sql, params![&firm.0[..], &file.0[..]])
                    .map_err(backend)?;
            }
            // The customer conversation goes with the file.
            tx.execute(
                "DELETE FROM room_messages WHERE firm = ?1 AND room = ?2",
                params![&firm.0[..], &conversation_room(&firm, &file)[..]],
            )
            .map_err(backend)?;
            Ok(docs)
        })
        .await
    }

    async fn sweep_file(
        &self,
        firm: FirmId,
        plan: SweepPlan,
        leaf: SweepLeaf,
    ) -> Result<Swept, StoreError> {
        self.write(move |tx| {
            let (f, file) = (&firm.0[..], &plan.file.0[..]);
            let erased = tx
                .prepare_cached("SELECT 1 FROM erased_files WHERE firm = ?1 AND file = ?2")
                .map_err(backend)?
                .exists(params![f, file])
                .map_err(backend)?;
            let mut swept = Swept::default();
            if erased {
                return Ok(swept);
            }
            if let Some(before) = plan.chat_before_ms {
                // The file's staff room and its customer conversation (`guests.md`).
                let conversation = conversation_room(&firm, &plan.file);
                for room in [file, &conversation[..]] {
                    let (n, through): (i64, i64) = tx
                        .query_row(
                            "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM room_messages WHERE firm = ?1 AND room = ?2 AND created_ms < ?3",
                            params![f, room, i(before)],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .map_err(backend)?;
                    if n > 0 {
                        tx.execute(
                            "DELETE FROM room_messages WHERE firm = ?1 AND room = ?2 AND created_ms < ?3",
                            params![f, room, i(before)],
                        )
                        .map_err(backend)?;
                        swept.messages += u(n);
                        swept.through_seq = swept.through_seq.max(u(through));
                        swept.chat_before_ms = before;
                    }
                }
            }
            if let Some(last) = plan.docs_through_year {
                let limit = i64::try_from(plan.max_documents).unwrap_or(i64::MAX);
                let mut st = tx
                    .prepare_cached(
                        "SELECT document, year FROM documents WHERE firm = ?1 AND file = ?2 AND year <= ?3 ORDER BY document LIMIT ?4",
                    )
                    .map_err(backend)?;
                let rows = st
                    .query_map(params![f, file, last, limit], |r| {
                        Ok((id16(r.get(0)?)?, r.get::<_, u16>(1)?))
                    })
                    .map_err(backend)?;
                for row in rows {
                    let (id, year) = row.map_err(backend)?;
                    swept.documents.push(SweptDocument {
                        document: DocumentId(id),
                        year,
                    });
                }
                for d in &swept.documents {
                    tx.execute(
                        "DELETE FROM documents WHERE firm = ?1 AND document = ?2",
                        params![f, &d.document.0[..]],
                    )
                    .map_err(backend)?;
                }
            }
            if swept.messages > 0 || !swept.documents.is_empty() {
                append_leaf(tx, firm, &leaf(&swept))?;
            }
            Ok(swept)
        })
        .await
    }

    async fn erased_files(&self, firm: FirmId) -> Result<Vec<FileId>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT file FROM erased_files WHERE firm = ?1")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..]], |r| r.get::<_, Vec<u8>>(0))
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let bytes = row.map_err(backend)?;
                if let Ok(id) = <[u8; 16]>::try_from(bytes.as_slice()) {
                    out.push(FileId(id));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn epoch_links(
        &self,
        firm: FirmId,
        file: FileId,
        since: u64,
    ) -> Result<Vec<(u64, u64, Vec<u8>)>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT cursor, epoch, wrapped FROM epoch_links WHERE firm = ?1 AND file = ?2 AND cursor >= ?3 ORDER BY cursor, epoch").map_err(backend)?;
            let rows = st.query_map(params![&firm.0[..], &file.0[..], i(since)], |r| Ok((u(r.get(0)?), u(r.get(1)?), r.get(2)?))).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn put_document(
        &self,
        firm: FirmId,
        m: DocumentMeta,
        now_ms: u64,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| insert_document(tx, firm, &m, now_ms))
            .await
    }

    async fn begin_upload(
        &self,
        firm: FirmId,
        u: UploadSession,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            insert_or_exists(tx.execute(
                "INSERT INTO uploads (firm, document, file, epoch, release_share, size, part_size, uploaded_by, created_ms, year) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![&firm.0[..], &u.document.0[..], &u.file.0[..], i(u.epoch), &u.release_share[..], i(u.size), i(u.part_size), &u.uploaded_by.0[..], i(now_ms), u.year],
            ))
        })
        .await
    }

    async fn upload(
        &self,
        firm: FirmId,
        document: DocumentId,
    ) -> Result<Option<(UploadSession, Vec<[u8; 32]>)>, StoreError> {
        self.read(move |c| {
            let session = c
                .query_row(
                    "SELECT file, epoch, release_share, size, part_size, uploaded_by, year FROM uploads WHERE firm = ?1 AND document = ?2",
                    params![&firm.0[..], &document.0[..]],
                    |r| {
                        Ok(UploadSession {
                            document,
                            file: FileId(id16(r.get(0)?)?),
                            epoch: u(r.get(1)?),
                            release_share: id32(r.get(2)?)?,
                            size: u(r.get(3)?),
                            part_size: u(r.get(4)?),
                            uploaded_by: DeviceId(id16(r.get(5)?)?),
                            year: r.get(6)?,
                        })
                    },
                )
                .optional()
                .map_err(backend)?;
            let Some(session) = session else {
                return Ok(None);
            };
            let mut st = c
                .prepare("SELECT sha256 FROM upload_parts WHERE firm = ?1 AND document = ?2 ORDER BY n")
                .map_err(backend)?;
            let parts = st
                .query_map(params![&firm.0[..], &document.0[..]], |r| id32(r.get(0)?))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(Some((session, parts)))
        })
        .await
    }

    async fn add_upload_part(
        &self,
        firm: FirmId,
        document: DocumentId,
        n: u64,
        sha256: [u8; 32],
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            let count: i64 = tx
                .query_row(
                    "SELECT count(*) FROM upload_parts WHERE firm = ?1 AND document = ?2",
                    params![&firm.0[..], &document.0[..]],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if u(count) != n {
                return Err(StoreError::VersionConflict { current: u(count) });
            }
            tx.execute(
                "INSERT INTO upload_parts (firm, document, n, sha256) VALUES (?1, ?2, ?3, ?4)",
                params![&firm.0[..], &document.0[..], i(n), &sha256[..]],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn truncate_upload(
        &self,
        firm: FirmId,
        document: DocumentId,
        keep: u64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM upload_parts WHERE firm = ?1 AND document = ?2 AND n >= ?3",
                params![&firm.0[..], &document.0[..], i(keep)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn finish_upload(
        &self,
        firm: FirmId,
        m: DocumentMeta,
        now_ms: u64,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            insert_document(tx, firm, &m, now_ms)?;
            for table in ["upload_parts", "uploads"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE firm = ?1 AND document = ?2"),
                    params![&firm.0[..], &m.document.0[..]],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn document(
        &self,
        firm: FirmId,
        document: DocumentId,
    ) -> Result<Option<DocumentMeta>, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT file, epoch, size, sha256, release_share, uploaded_by, year FROM documents WHERE firm = ?1 AND document = ?2",
                params![&firm.0[..], &document.0[..]],
                |r| {
                    Ok(DocumentMeta {
                        document,
                        file: FileId(id16(r.get(0)?)?),
                        epoch: u(r.get(1)?),
                        size: u(r.get(2)?),
                        sha256: id32(r.get(3)?)?,
                        release_share: id32(r.get(4)?)?,
                        uploaded_by: DeviceId(id16(r.get(5)?)?),
                        year: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn append_audit_leaf(&self, firm: FirmId, leaf: Vec<u8>) -> Result<u64, StoreError> {
        self.write(move |tx| append_leaf(tx, firm, &leaf)).await
    }

    async fn audit_leaves(
        &self,
        firm: FirmId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT leaf FROM audit_leaves WHERE firm = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3").map_err(backend)?;
            let rows = st.query_map(params![&firm.0[..], i(from), limit], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn audit_size(&self, firm: FirmId) -> Result<u64, StoreError> {
        self.read(move |c| log_size(c, firm)).await
    }

    async fn audit_root(&self, firm: FirmId, size: u64) -> Result<[u8; 32], StoreError> {
        self.read(move |c| {
            within_log(c, firm, size)?;
            tlog::tree_hash(size, &TreeHashes { c, firm })
                .map(|h| h.0)
                .map_err(backend)
        })
        .await
    }

    async fn audit_inclusion(
        &self,
        firm: FirmId,
        index: u64,
        size: u64,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        self.read(move |c| {
            within_log(c, firm, size)?;
            if index >= size {
                return Err(StoreError::NotFound);
            }
            tlog::prove_record(size, index, &TreeHashes { c, firm })
                .map(|p| p.into_iter().map(|h| h.0).collect())
                .map_err(backend)
        })
        .await
    }

    async fn audit_consistency(
        &self,
        firm: FirmId,
        old: u64,
        new: u64,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        self.read(move |c| {
            within_log(c, firm, new)?;
            if old > new {
                return Err(StoreError::NotFound);
            }
            // RFC 9162: from the empty tree, and to the same size, the proof is empty.
            if old == 0 || old == new {
                return Ok(Vec::new());
            }
            tlog::prove_tree(new, old, &TreeHashes { c, firm })
                .map(|p| p.into_iter().map(|h| h.0).collect())
                .map_err(backend)
        })
        .await
    }

    async fn put_cosigned_checkpoint(
        &self,
        firm: FirmId,
        size: u64,
        note: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO audit_cosigned (firm, size, note) VALUES (?1, ?2, ?3)",
                params![&firm.0[..], i(size), note],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn cosigned_checkpoints(
        &self,
        firm: FirmId,
        from_size: u64,
        limit: u32,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT size, note FROM audit_cosigned WHERE firm = ?1 AND size >= ?2 ORDER BY size LIMIT ?3")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], i(from_size), limit], |r| Ok((u(r.get(0)?), r.get(1)?)))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn cosigned_checkpoint(
        &self,
        firm: FirmId,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT size, note FROM audit_cosigned WHERE firm = ?1 ORDER BY size DESC LIMIT 1",
                params![&firm.0[..]],
                |r| Ok((u(r.get(0)?), r.get(1)?)),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn create_invite(
        &self,
        firm: FirmId,
        invite: [u8; 16],
        created_by: MemberId,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            insert_or_exists(tx.execute(
                "INSERT INTO invites (invite, firm, created_by, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![&invite[..], &firm.0[..], &created_by.0[..], i(expires_ms)],
            ))
        })
        .await
    }

    async fn invite(
        &self,
        invite: [u8; 16],
    ) -> Result<Option<(FirmId, MemberId, u64)>, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT firm, created_by, expires_ms FROM invites WHERE invite = ?1",
                params![&invite[..]],
                |r| {
                    Ok((
                        FirmId(id16(r.get(0)?)?),
                        MemberId(id16(r.get(1)?)?),
                        u(r.get(2)?),
                    ))
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn add_join_request(
        &self,
        invite: [u8; 16],
        sealed: Vec<u8>,
        now_ms: u64,
        max: u64,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM join_requests WHERE invite = ?1", params![&invite[..]], |r| r.get(0)).map_err(backend)?;
            if u(n) >= max {
                return Err(StoreError::Exists);
            }
            let id = u(n) + 1;
            tx.execute("INSERT INTO join_requests (invite, id, sealed, created_ms) VALUES (?1, ?2, ?3, ?4)", params![&invite[..], i(id), sealed, i(now_ms)])
                .map_err(backend)?;
            Ok(id)
        })
        .await
    }

    async fn join_requests(
        &self,
        invite: [u8; 16],
    ) -> Result<Vec<(u64, Vec<u8>, u64)>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT id, sealed, created_ms FROM join_requests WHERE invite = ?1 ORDER BY id").map_err(backend)?;
            let rows = st.query_map(params![&invite[..]], |r| Ok((u(r.get(0)?), r.get(1)?, u(r.get(2)?)))).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_invite(&self, invite: [u8; 16]) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM join_requests WHERE invite = ?1",
                params![&invite[..]],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM invites WHERE invite = ?1",
                params![&invite[..]],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn put_backup_key(
        &self,
        firm: FirmId,
        member: MemberId,
        key: BackupKey,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            let same = backup_key_of(tx, firm, member)?;
            if same.as_deref() != Some(&key.key[..]) {
                for table in ["backup_items", "backup_escrow"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE firm = ?1 AND member = ?2"),
                        params![&firm.0[..], &member.0[..]],
                    )
                    .map_err(backend)?;
                }
            }
            insert_or_exists(tx.execute(
                "INSERT INTO backup_keys (firm, member, recovery_id, backup_key, signature) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (firm, member) DO UPDATE SET recovery_id = excluded.recovery_id, backup_key = excluded.backup_key, signature = excluded.signature",
                params![&firm.0[..], &member.0[..], &key.recovery_id[..], &key.key[..], &key.signature[..]],
            ))
        })
        .await
    }

    async fn backup_key(
        &self,
        firm: FirmId,
        member: MemberId,
    ) -> Result<Option<BackupKey>, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT recovery_id, backup_key, signature FROM backup_keys WHERE firm = ?1 AND member = ?2",
                params![&firm.0[..], &member.0[..]],
                |r| backup_key_row(r, 0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn backup_by_recovery_id(
        &self,
        recovery_id: [u8; 16],
    ) -> Result<Option<(FirmId, MemberId, BackupKey)>, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT firm, member, recovery_id, backup_key, signature FROM backup_keys WHERE recovery_id = ?1",
                params![&recovery_id[..]],
                |r| {
                    Ok((
                        FirmId(id16(r.get(0)?)?),
                        MemberId(id16(r.get(1)?)?),
                        backup_key_row(r, 2)?,
                    ))
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_backup_items(
        &self,
        firm: FirmId,
        member: MemberId,
        sealed_to: [u8; 32],
        items: Vec<BackupItem>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            let current = backup_key_of(tx, firm, member)?;
            if current.as_deref() != Some(&sealed_to[..]) {
                return Err(StoreError::NotFound);
            }
            let mut st = tx
                .prepare_cached("INSERT INTO backup_items (firm, member, kind, item, sealed) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING")
                .map_err(backend)?;
            for it in items {
                st.execute(params![&firm.0[..], &member.0[..], it.kind, it.item, it.sealed])
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn room_next_seq(&self, firm: FirmId, room: RoomId) -> Result<u64, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT next_seq FROM rooms WHERE firm = ?1 AND room = ?2",
                params![&firm.0[..], &room[..]],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(backend)?
            .map(u)
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn backup_item(
        &self,
        firm: FirmId,
        member: MemberId,
        kind: u8,
        item: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT sealed FROM backup_items WHERE firm = ?1 AND member = ?2 AND kind = ?3 AND item = ?4",
                params![&firm.0[..], &member.0[..], kind, item],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_escrow(
        &self,
        firm: FirmId,
        member: MemberId,
        sealed_to: [u8; 32],
        entries: Vec<(DeviceId, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            let current = backup_key_of(tx, firm, member)?;
            if current.as_deref() != Some(&sealed_to[..]) {
                return Err(StoreError::NotFound);
            }
            let mut st = tx
                .prepare_cached("INSERT OR REPLACE INTO backup_escrow (firm, member, device, backup_key, sealed) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(backend)?;
            for (device, sealed) in entries {
                st.execute(params![&firm.0[..], &member.0[..], &device.0[..], &sealed_to[..], sealed])
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn escrow(
        &self,
        firm: FirmId,
        member: MemberId,
        device: DeviceId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT e.sealed FROM backup_escrow e JOIN backup_keys k ON k.firm = e.firm AND k.member = e.member AND k.backup_key = e.backup_key
                 WHERE e.firm = ?1 AND e.member = ?2 AND e.device = ?3",
                params![&firm.0[..], &member.0[..], &device.0[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn backup_items(
        &self,
        firm: FirmId,
        member: MemberId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, BackupItem)>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT seq, kind, item, sealed FROM backup_items WHERE firm = ?1 AND member = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4")
                .map_err(backend)?;
            let rows = st
                .query_map(params![&firm.0[..], &member.0[..], i(after), limit], |r| {
                    Ok((u(r.get(0)?), BackupItem { kind: r.get(1)?, item: r.get(2)?, sealed: r.get(3)? }))
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn save_nonces(
        &self,
        nonces: Vec<(DeviceId, [u8; 16], u64)>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM nonces WHERE expires_ms < ?1",
                params![i(now_ms)],
            )
            .map_err(backend)?;
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO nonces (device, nonce, expires_ms) VALUES (?1, ?2, ?3)",
                )
                .map_err(backend)?;
            for (d, n, e) in nonces {
                st.execute(params![&d.0[..], &n[..], i(e)])
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn load_nonces(&self, now_ms: u64) -> Result<Vec<(DeviceId, [u8; 16], u64)>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare("SELECT device, nonce, expires_ms FROM nonces WHERE expires_ms >= ?1")
                .map_err(backend)?;
            let rows = st
                .query_map(params![i(now_ms)], |r| {
                    Ok((DeviceId(id16(r.get(0)?)?), id16(r.get(1)?)?, u(r.get(2)?)))
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn usage(&self) -> Result<Usage, StoreError> {
        self.read(|c| {
            let q = |sql: &str| {
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map(u)
                    .map_err(backend)
            };
            let stored_bytes = q("SELECT COALESCE(SUM(LENGTH(ciphertext)), 0) FROM room_messages")?
                + q("SELECT COALESCE(SUM(LENGTH(envelope)), 0) FROM records")?
                + q("SELECT COALESCE(SUM(LENGTH(ciphertext)), 0) FROM to_device")?
                + q("SELECT COALESCE(SUM(size), 0) FROM documents")?;
            Ok(Usage {
                stored_bytes,
                audit_leaves: q("SELECT COUNT(*) FROM audit_leaves")?,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn make() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        (
            SqliteStore::open(&dir.path().join("t.sqlite3")).expect("open"),
            dir,
        )
    }

    crate::store_conformance_tests!(make());

    #[tokio::test]
    async fn leaves_logged_before_the_tree_migration_get_their_hashes() {
        use ledgerline_protocol::merkle;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.sqlite3");
        {
            // A database as relays before migration 0004 left it, with leaves of two firms.
            let mut c = open_connection(&path).expect("open");
            let tx = c.transaction().expect("tx");
            for sql in MIGRATIONS.iter().take(AUDIT_TREE_MIGRATION) {
                tx.execute_batch(sql).expect("migrate");
            }
            for n in 0..5i64 {
                for firm in [[1u8; 16], [2u8; 16]] {
                    tx.execute(
                        "INSERT INTO audit_leaves (firm, idx, leaf) VALUES (?1, ?2, ?3)",
                        params![&firm[..], n, format!("{n}").into_bytes()],
                    )
                    .expect("leaf");
                }
            }
            tx.pragma_update(None, "user_version", AUDIT_TREE_MIGRATION as i64)
                .expect("version");
            tx.commit().expect("commit");
        }
        let s = SqliteStore::open(&path).expect("migrated");
        let hashes: Vec<_> = (0..5)
            .map(|n| merkle::leaf_hash(format!("{n}").as_bytes()))
            .collect();
        for firm in [FirmId([1; 16]), FirmId([2; 16])] {
            assert_eq!(s.audit_size(firm).await.expect("size"), 5);
            assert_eq!(
                s.audit_root(firm, 5).await.expect("root"),
                merkle::root(&hashes)
            );
            assert_eq!(
                s.append_audit_leaf(firm, b"5".to_vec())
                    .await
                    .expect("next"),
                5
            );
        }
    }

    #[tokio::test]
    async fn epoch_key_wraps_stored_before_teams_stay_members_wraps() {
        const TEAMS_MIGRATION: usize = 8;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.sqlite3");
        let (firm, file, member) = (FirmId([1; 16]), FileId([2; 16]), MemberId([3; 16]));
        {
            let mut c = open_connection(&path).expect("open");
            let tx = c.transaction().expect("tx");
            for sql in MIGRATIONS.iter().take(TEAMS_MIGRATION) {
                tx.execute_batch(sql).expect("migrate");
            }
            for epoch in 0..3i64 {
                tx.execute(
                    "INSERT INTO epoch_key_wraps (firm, file, epoch, member, holder_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
                    params![&firm.0[..], &file.0[..], epoch, &member.0[..], vec![epoch as u8; 73], epoch + 10],
                )
                .expect("wrap");
            }
            tx.pragma_update(None, "user_version", TEAMS_MIGRATION as i64)
                .expect("version");
            tx.commit().expect("commit");
        }
        let s = SqliteStore::open(&path).expect("migrated");
        let wraps = s
            .epoch_key_wraps(firm, file, Holder::Member(member), 11)
            .await
            .expect("wraps");
        assert_eq!(
            wraps,
            vec![
                (
                    11,
                    EpochKeyWrap {
                        epoch: 1,
                        holder: Holder::Member(member),
                        holder_key_version: 1,
                        wrapped: vec![1; 73],
                    }
                ),
                (
                    12,
                    EpochKeyWrap {
                        epoch: 2,
                        holder: Holder::Member(member),
                        holder_key_version: 1,
                        wrapped: vec![2; 73],
                    }
                ),
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_isolates_failing_jobs_and_keeps_order() {
        let (s, _dir) = make().await;
        s.create_firm(FirmId([1; 16]), vec![b"g".to_vec()], 1)
            .await
            .unwrap();
        s.create_room(
            FirmId([1; 16]),
            Room {
                id: [2; 16],
                file: None,
                created_by: MemberId([3; 16]),
                members: vec![],
            },
            b"entry".to_vec(),
        )
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for i in 0..300u64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                if i % 3 == 0 {
                    // Version 2 of a new record: always a conflict, inside someone's group.
                    let r = s
                        .put_record(
                            FirmId([1; 16]),
                            FileId([4; 16]),
                            RecordId([i as u8; 16]),
                            2,
                            0,
                            DeviceId([5; 16]),
                            vec![1],
                            1,
                            b"entry".to_vec(),
                        )
                        .await;
                    assert!(
                        matches!(r, Err(StoreError::VersionConflict { current: 0 })),
                        "{r:?}"
                    );
                    None
                } else {
                    Some(
                        s.append_message(
                            FirmId([1; 16]),
                            [2; 16],
                            DeviceId([5; 16]),
                            i.to_be_bytes().to_vec(),
                            1,
                            b"entry".to_vec(),
                        )
                        .await
                        .unwrap(),
                    )
                }
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.extend(t.await.unwrap());
        }
        seqs.sort();
        assert_eq!(
            seqs,
            (1..=200).collect::<Vec<u64>>(),
            "every acknowledged message got its own position"
        );
        let stored = s.messages(FirmId([1; 16]), [2; 16], 1, 500).await.unwrap();
        assert_eq!(stored.len(), 200);
        assert!(
            s.records_since(FirmId([1; 16]), FileId([4; 16]), 0, 10)
                .await
                .unwrap()
                .is_empty(),
            "failed jobs left nothing"
        );
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sqlite3");
        {
            let s = SqliteStore::open(&path).expect("open");
            s.create_firm(FirmId([1; 16]), vec![b"g".to_vec()], 1)
                .await
                .expect("firm");
        }
        let s = SqliteStore::open(&path).expect("reopen");
        assert_eq!(s.firms().await.expect("firms"), vec![FirmId([1; 16])]);
        drop(s);
        let c = Connection::open(&path).expect("raw");
        c.pragma_update(None, "user_version", 99).expect("bump");
        drop(c);
        assert!(
            matches!(SqliteStore::open(&path), Err(StoreError::Backend(m)) if m.contains("newer"))
        );
    }
}
