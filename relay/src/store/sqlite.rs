//! The embedded SQLite engine (WAL, `synchronous = FULL`) under [`SqlStore`]: a few reader
//! connections used on Tokio's blocking threads, and one writer thread that commits in
//! groups.
//!
//! Group commit: writes queue for the writer thread, which runs every queued job in one
//! transaction — each inside its own savepoint, so one failing job rolls back alone — and
//! commits (one fsync) before answering any of them. A write is acknowledged only after
//! the commit that holds it, so durability is per write while the fsync cost is shared.
//! One writer also serializes every write, which is the order [`super::sql`] relies on.

use super::sql::{self, Db, Engine, SqlStore, Val};
use super::*;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    include_str!("../../migrations/0012_document_blob.sql"),
];
const READERS: usize = 4;

/// SQLite storage: the shared rules over the embedded engine.
pub type SqliteStore = SqlStore<SqliteEngine>;

/// The SQLite engine: one writer thread, a few readers.
pub struct SqliteEngine {
    /// `None` once closing.
    jobs: Mutex<Option<std::sync::mpsc::Sender<Box<dyn WriteJob>>>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SqliteEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteEngine")
    }
}

impl Drop for SqliteEngine {
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
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
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

/// Index of the migration that adds the audit log's tree hashes (0004).
const AUDIT_TREE_MIGRATION: usize = 3;

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
        sql::append_leaf(tx, firm, &leaf)?;
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
    // Every statement of the shared rules stays prepared on a connection.
    c.set_prepared_statement_cache_capacity(256);
    Ok(c)
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
        Ok(SqlStore::new(SqliteEngine {
            jobs: Mutex::new(Some(jobs)),
            readers,
            next_reader: AtomicUsize::new(0),
            writer: Some(writer),
        }))
    }
}

impl Engine for SqliteEngine {
    /// One relay process owns the file.
    const SHARED: bool = false;

    type Conn = Connection;

    /// SQLite has one writer: the scope is implied.
    async fn write<T, F>(self: Arc<Self>, _scope: [u8; 16], f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job {
            work: Some(f),
            out: None,
            reply: Some(reply),
        });
        self.jobs
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

    async fn read<T, F>(self: Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let n = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len().max(1);
            let conn = self
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

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Val::Int(v) => ToSqlOutput::Owned(Value::Integer(v)),
            Val::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Val::Null => ToSqlOutput::Owned(Value::Null),
        })
    }
}

impl sql::Row for rusqlite::Row<'_> {
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(backend)
    }

    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(i).map_err(backend)
    }
}

/// A statement's error: a constraint violation means the row exists already.
fn statement_error(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Exists
        }
        e => backend(e),
    }
}

impl Db for Connection {
    type Row<'r> = rusqlite::Row<'r>;

    fn exec(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, StoreError> {
        let mut st = self.prepare_cached(sql).map_err(backend)?;
        st.execute(rusqlite::params_from_iter(params))
            .map(|n| n as u64)
            .map_err(statement_error)
    }

    fn each(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut st = self.prepare_cached(sql).map_err(backend)?;
        let mut rows = st
            .query(rusqlite::params_from_iter(params))
            .map_err(statement_error)?;
        while let Some(r) = rows.next().map_err(statement_error)? {
            f(r)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

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
