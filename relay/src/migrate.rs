//! `ledgerline-relay migrate`: moves a relay's database from the embedded SQLite to
//! PostgreSQL (`protocol-spec/scale-out.md`, "Moving to PostgreSQL").
//!
//! - The SQLite database is brought to the newest schema, then read inside one transaction
//!   that holds its write lock: nothing changes while it is copied.
//! - The PostgreSQL database gets its schema from the relay's migrations and must hold no
//!   firm yet. Every row goes over in **one** PostgreSQL transaction: the move is whole or
//!   absent.
//! - Table and column names come from the SQLite schema and are checked against the
//!   PostgreSQL schema before any SQL names them. Every value is a bound parameter.
//! - Afterwards the two are compared: rows per table, and per firm the audit log's size
//!   and RFC 6962 root as each store computes them from its own tree hashes.
//! - With a bucket configured (`s3_bucket`), the blobs move too, before the database: every
//!   document's blob becomes its object, the recorded parts of an upload in progress become
//!   theirs, and each is checked by listing (count and sizes) against the database. A move
//!   stopped half-way is started over: objects are overwritten with the same bytes.
//!   Without a bucket the blobs stay in the data directory, which the relay on PostgreSQL
//!   keeps using; `log-key.secret` stays there in any case.

use crate::store::postgres::PgStore;
use crate::store::sql::{Db, Engine, Row, Val};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use rusqlite::types::ValueRef;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Rows copied from one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCount {
    /// Table.
    pub table: String,
    /// Rows in SQLite, and (checked equal) in PostgreSQL.
    pub rows: u64,
}

/// One firm's audit log after the move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirmLog {
    /// Firm id (hex).
    pub firm: String,
    /// Entries.
    pub size: u64,
    /// RFC 6962 root (hex), the same in both stores.
    pub root: String,
}

/// What a migration moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Per table.
    pub tables: Vec<TableCount>,
    /// Per firm.
    pub firms: Vec<FirmLog>,
    /// Blobs moved into the bucket (none without one).
    pub blobs: Option<BlobCount>,
}

/// Blobs moved into a bucket, each checked there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlobCount {
    /// Documents.
    pub documents: u64,
    /// Recorded parts of uploads in progress.
    pub upload_parts: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Why a migration did not happen (nothing was written to PostgreSQL) or did not check out.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Wrong use: no SQLite database, a PostgreSQL database that holds firms already.
    #[error("{0}")]
    Usage(String),
    /// Copied, but the two databases differ (the PostgreSQL transaction was committed:
    /// start over on an empty database after finding the cause).
    #[error("the databases differ after the move: {0}")]
    Mismatch(String),
    /// A storage error.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Tables whose key PostgreSQL generates (identity columns): copied with their values,
/// then the sequence moves past them.
const IDENTITY: [(&str, &str); 2] = [("to_device", "id"), ("backup_items", "seq")];

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("SQLite: {e}"))
}

/// Moves the SQLite database at `sqlite` into the PostgreSQL database at `url`, and the
/// blobs of `blob_dir` into `bucket` if there is one.
pub async fn migrate(
    sqlite: &Path,
    url: &str,
    ca: Option<&Path>,
    bucket: Option<(&Path, &crate::blobs::Bucket)>,
) -> Result<Report, MigrateError> {
    if !sqlite.is_file() {
        return Err(MigrateError::Usage(format!(
            "no relay database at {}",
            sqlite.display()
        )));
    }
    // Newest schema first (the relay's own migrations), then closed again.
    let source = SqliteStore::open(sqlite)?;
    let pg = PgStore::connect_with(url, 2, ca).await?;
    if !pg.firms().await?.is_empty() {
        return Err(MigrateError::Usage(
            "the PostgreSQL database holds firms already: migrate into an empty database".into(),
        ));
    }
    let blobs = match bucket {
        Some((dir, bucket)) => Some(move_blobs(sqlite, dir, bucket).await?),
        None => None,
    };
    let path: PathBuf = sqlite.to_owned();
    let tables = pg
        .engine_handle()
        .write([0xfe; 16], move |pg| copy_all(&path, pg))
        .await?;
    // Compare what each store now says.
    let mut firms = Vec::new();
    for table in &tables {
        let there = pg
            .engine_handle()
            .read({
                let sql = format!("SELECT COUNT(*) FROM {}", table.table);
                move |c| c.int(&sql, &[])
            })
            .await?
            .unwrap_or(0);
        if u64::try_from(there).ok() != Some(table.rows) {
            return Err(MigrateError::Mismatch(format!(
                "{}: {} rows in SQLite, {there} in PostgreSQL",
                table.table, table.rows
            )));
        }
    }
    let sqlite_firms = source.firms().await?;
    if sqlite_firms != pg.firms().await? {
        return Err(MigrateError::Mismatch("the firms differ".into()));
    }
    for firm in sqlite_firms {
        let size = source.audit_size(firm).await?;
        if pg.audit_size(firm).await? != size {
            return Err(MigrateError::Mismatch(format!(
                "firm {}: audit log sizes differ",
                firm.to_hex()
            )));
        }
        let root = if size == 0 {
            [0; 32]
        } else {
            let root = source.audit_root(firm, size).await?;
            if pg.audit_root(firm, size).await? != root {
                return Err(MigrateError::Mismatch(format!(
                    "firm {}: audit log roots differ",
                    firm.to_hex()
                )));
            }
            root
        };
        firms.push(FirmLog {
            firm: firm.to_hex(),
            size,
            root: hex::encode(root),
        });
    }
    Ok(Report {
        tables,
        firms,
        blobs,
    })
}

/// A blob to move: object `n` of a document, from `offset` of the file, `len` bytes.
struct BlobMove {
    firm: ledgerline_protocol::ids::FirmId,
    document: ledgerline_protocol::ids::DocumentId,
    /// The copy a whole document's object goes to (`crate::blobs`); parts have none.
    copy: Option<crate::blobs::CopyName>,
    file: PathBuf,
    n: u64,
    offset: u64,
    len: u64,
    /// A part of an upload in progress (else a whole document).
    part: bool,
}

/// What must move: every document's blob (object 0) and every recorded part of every
/// upload in progress (object n).
fn blobs_to_move(sqlite: &Path, dir: &Path) -> Result<Vec<BlobMove>, StoreError> {
    use ledgerline_protocol::ids::{DocumentId, FirmId};
    let src =
        rusqlite::Connection::open_with_flags(sqlite, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sqlite_error)?;
    let id16 = |b: Vec<u8>| {
        <[u8; 16]>::try_from(b.as_slice())
            .map_err(|_| StoreError::Backend("an id is not 16 bytes".into()))
    };
    let mut moves = Vec::new();
    type DocumentRow = (Vec<u8>, Vec<u8>, i64, Option<Vec<u8>>);
    let documents: Vec<DocumentRow> = src
        .prepare("SELECT firm, document, size, blob FROM documents ORDER BY firm, document")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(sqlite_error)?;
    for (firm, document, size, copy) in documents {
        let (firm, document) = (FirmId(id16(firm)?), DocumentId(id16(document)?));
        let copy = copy.map(id16).transpose()?;
        moves.push(BlobMove {
            firm,
            document,
            copy,
            file: dir.join(crate::blobs::BlobDir::relative(
                &firm.to_hex(),
                &document.to_hex(),
                copy.map(hex::encode).as_deref(),
            )),
            n: 0,
            offset: 0,
            len: u64::try_from(size).unwrap_or(0),
            part: false,
        });
    }
    // firm, document, size, part size, parts recorded
    type UploadRow = (Vec<u8>, Vec<u8>, i64, i64, i64);
    let uploads: Vec<UploadRow> = src
        .prepare(
            "SELECT u.firm, u.document, u.size, u.part_size, \
             (SELECT COUNT(*) FROM upload_parts p WHERE p.firm = u.firm AND p.document = u.document) \
             FROM uploads u ORDER BY u.firm, u.document",
        )
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect()
        })
        .map_err(sqlite_error)?;
    for (firm, document, size, part_size, parts) in uploads {
        let (firm, document) = (FirmId(id16(firm)?), DocumentId(id16(document)?));
        let (size, part_size) = (
            u64::try_from(size).unwrap_or(0),
            u64::try_from(part_size).unwrap_or(1),
        );
        for n in 0..u64::try_from(parts).unwrap_or(0) {
            let offset = n.saturating_mul(part_size).min(size);
            let end = (n + 1).saturating_mul(part_size).min(size);
            moves.push(BlobMove {
                firm,
                document,
                copy: None,
                file: dir
                    .join("uploads")
                    .join(format!("{}-{}", firm.to_hex(), document.to_hex())),
                n,
                offset,
                len: end - offset,
                part: true,
            });
        }
    }
    Ok(moves)
}

/// Copies the blobs into the bucket and checks each there.
async fn move_blobs(
    sqlite: &Path,
    dir: &Path,
    bucket: &crate::blobs::Bucket,
) -> Result<BlobCount, MigrateError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let moves = blobs_to_move(sqlite, dir)?;
    let mut count = BlobCount::default();
    let io = |what: &str, e: &dyn std::fmt::Display| {
        MigrateError::Store(StoreError::Backend(format!("{what}: {e}")))
    };
    for m in &moves {
        let missing = || {
            MigrateError::Mismatch(format!(
                "document {} of firm {}: its blob is not the recorded size in {}",
                m.document.to_hex(),
                m.firm.to_hex(),
                dir.display()
            ))
        };
        let mut f = tokio::fs::File::open(&m.file)
            .await
            .map_err(|_| missing())?;
        let on_disk = f.metadata().await.map_err(|e| io("blob", &e))?.len();
        let fits = if m.part {
            on_disk >= m.offset + m.len
        } else {
            on_disk == m.len
        };
        if !fits {
            return Err(missing());
        }
        f.seek(std::io::SeekFrom::Start(m.offset))
            .await
            .map_err(|e| io("blob", &e))?;
        let mut f = f.take(m.len);
        let mut chunks = Vec::new();
        let mut writer = if !m.part {
            Some(
                bucket
                    .writer(m.firm, m.document, m.copy)
                    .await
                    .map_err(|e| io("bucket", &e))?,
            )
        } else {
            None
        };
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let got = f.read(&mut buf).await.map_err(|e| io("blob", &e))?;
            if got == 0 {
                break;
            }
            buf.truncate(got);
            match &mut writer {
                Some(w) => w.write(buf.into()).await.map_err(|e| io("bucket", &e))?,
                None => chunks.push(buf.into()),
            }
        }
        match writer {
            Some(w) => w.finish().await.map_err(|e| io("bucket", &e))?,
            None => bucket
                .put_object(m.firm, m.document, m.n, chunks)
                .await
                .map_err(|e| io("bucket", &e))?,
        }
        count.bytes += m.len;
        if m.part {
            count.upload_parts += 1;
        } else {
            count.documents += 1;
        }
    }
    // Checked where they now are: each document's objects, numbered without a gap, add up
    // to what the database records.
    let mut expected: std::collections::BTreeMap<_, (u64, u64)> = Default::default();
    for m in &moves {
        let e = expected.entry((m.firm, m.document, m.copy)).or_default();
        e.0 += 1;
        e.1 += m.len;
    }
    for ((firm, document, copy), (objects, bytes)) in expected {
        let there = bucket
            .objects(firm, document, copy)
            .await
            .map_err(|e| MigrateError::Mismatch(format!("document {}: {e}", document.to_hex())))?;
        if there.len() as u64 != objects || there.iter().map(|(_, s)| s).sum::<u64>() != bytes {
            return Err(MigrateError::Mismatch(format!(
                "document {} of firm {}: the bucket holds other objects than were copied",
                document.to_hex(),
                firm.to_hex()
            )));
        }
    }
    Ok(count)
}

/// Copies every table of the SQLite database into `pg` (the caller's transaction).
fn copy_all(path: &Path, pg: &impl Db) -> Result<Vec<TableCount>, StoreError> {
    let src = rusqlite::Connection::open(path).map_err(sqlite_error)?;
    src.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sqlite_error)?;
    // The write lock for the whole copy: a relay still serving cannot change a thing.
    src.execute_batch("BEGIN IMMEDIATE").map_err(sqlite_error)?;
    let tables: Vec<String> = src
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(sqlite_error)?;
    let mut counts = Vec::new();
    for table in tables {
        let columns: Vec<String> = src
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .and_then(|mut st| st.query_map([&table], |r| r.get(0))?.collect())
            .map_err(sqlite_error)?;
        // information_schema's names are text; they travel as UTF-8 bytes.
        let known = pg.rows(
            "SELECT convert_to(column_name::text, 'UTF8') FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = convert_from(?1, 'UTF8')",
            &[Val::Blob(table.as_bytes())],
            |r| r.blob(0),
        )?;
        if !plain_name(&table) || known.is_empty() {
            return Err(StoreError::Backend(format!(
                "table {table:?} has no place in PostgreSQL"
            )));
        }
        for c in &columns {
            if !plain_name(c) || !known.iter().any(|k| k == c.as_bytes()) {
                return Err(StoreError::Backend(format!(
                    "column {table}.{c} has no place in PostgreSQL"
                )));
            }
        }
        let list = columns.join(", ");
        let marks = (1..=columns.len())
            .map(|n| format!("?{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let overriding = if IDENTITY.iter().any(|(t, _)| *t == table) {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        if table == "seq_floor" {
            // PostgreSQL's schema starts it at 1; SQLite's value wins.
            pg.exec("DELETE FROM seq_floor", &[])?;
        }
        let insert = format!("INSERT INTO {table} ({list}){overriding} VALUES ({marks})");
        let mut st = src
            .prepare(&format!("SELECT {list} FROM {table}"))
            .map_err(sqlite_error)?;
        let mut rows = st.query([]).map_err(sqlite_error)?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(match row.get_ref(i).map_err(sqlite_error)? {
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Blob(b) => Val::Blob(b),
                    ValueRef::Null => Val::Null,
                    ValueRef::Text(_) | ValueRef::Real(_) => {
                        return Err(StoreError::Backend(format!(
                            "{table}.{}: a value of a type the relay never stores",
                            columns.get(i).map(String::as_str).unwrap_or("?")
                        )))
                    }
                });
            }
            pg.exec(&insert, &values)?;
            n += 1;
        }
        counts.push(TableCount { table, rows: n });
    }
    for (table, column) in IDENTITY {
        pg.int(
            &format!("SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}), false)"),
            &[],
        )?;
    }
    src.execute_batch("ROLLBACK").map_err(sqlite_error)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BackupItem, BackupKey, DocumentMeta, Room, RotationDue};
    use ledgerline_protocol::ids::{DeviceId, DocumentId, FileId, FirmId, MemberId, RecordId};
    use ledgerline_testkit::postgres::Postgres;

    const F: FirmId = FirmId([1; 16]);
    const D: DeviceId = DeviceId([2; 16]);
    const M: MemberId = MemberId([3; 16]);
    const ROOM: [u8; 16] = [4; 16];
    const FILE: FileId = FileId([5; 16]);

    /// A relay database with something in most tables.
    async fn filled(s: &SqliteStore) {
        s.create_firm(F, vec![b"genesis".to_vec()], 1)
            .await
            .unwrap();
        s.append_roster_event(
            F,
            1,
            b"event".to_vec(),
            RotationDue::default(),
            b"e1".to_vec(),
        )
        .await
        .unwrap();
        s.create_room(
            F,
            Room {
                id: ROOM,
                file: Some(FILE),
                created_by: M,
                members: vec![M],
            },
            b"e2".to_vec(),
        )
        .await
        .unwrap();
        for n in 0..30u8 {
            s.append_message(F, ROOM, D, vec![n; 40], 10, vec![b'm', n])
                .await
                .unwrap();
        }
        s.put_record(
            F,
            FILE,
            RecordId([6; 16]),
            1,
            0,
            D,
            b"sealed".to_vec(),
            11,
            b"e3".to_vec(),
        )
        .await
        .unwrap();
        s.send_to_device(F, D, vec![(DeviceId([7; 16]), b"olm".to_vec()); 3], 12)
            .await
            .unwrap();
        s.put_document(
            F,
            DocumentMeta {
                document: DocumentId([8; 16]),
                file: FILE,
                epoch: 0,
                size: 99,
                sha256: [9; 32],
                release_share: [10; 32],
                uploaded_by: D,
                year: 2026,
                blob: None,
            },
            13,
            b"e4".to_vec(),
        )
        .await
        .unwrap();
        let key = BackupKey {
            recovery_id: [11; 16],
            key: [12; 32],
            signature: [13; 64],
        };
        s.put_backup_key(F, M, key, b"e5".to_vec()).await.unwrap();
        s.put_backup_items(
            F,
            M,
            [12; 32],
            vec![BackupItem {
                kind: 1,
                item: b"i".to_vec(),
                sealed: b"s".to_vec(),
            }],
        )
        .await
        .unwrap();
        s.save_nonces(vec![(D, [14; 16], u64::MAX / 2)], 1)
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_relay_database_moves_whole_and_goes_on_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.sqlite3");
        let source = SqliteStore::open(&path).unwrap();
        filled(&source).await;
        let pg = tokio::task::spawn_blocking({
            let at = dir.path().join("pg");
            move || Postgres::start(&at)
        })
        .await
        .unwrap();
        let report = migrate(&path, &pg.url(), None, None).await.unwrap();
        let rows = |t: &str| {
            report
                .tables
                .iter()
                .find(|c| c.table == t)
                .map(|c| c.rows)
                .unwrap_or(0)
        };
        assert_eq!(rows("room_messages"), 30);
        assert_eq!(rows("to_device"), 3);
        assert_eq!(rows("backup_items"), 1);
        assert_eq!(report.firms.len(), 1);
        let size = source.audit_size(F).await.unwrap();
        assert_eq!(report.firms[0].size, size);

        let target = PgStore::connect(&pg.url(), 2).await.unwrap();
        assert_eq!(
            target.messages(F, ROOM, 1, 100).await.unwrap(),
            source.messages(F, ROOM, 1, 100).await.unwrap()
        );
        assert_eq!(
            target.records_since(F, FILE, 0, 10).await.unwrap(),
            source.records_since(F, FILE, 0, 10).await.unwrap()
        );
        let pending = source
            .pending_to_device(F, DeviceId([7; 16]), 0, 10)
            .await
            .unwrap();
        assert_eq!(
            target
                .pending_to_device(F, DeviceId([7; 16]), 0, 10)
                .await
                .unwrap(),
            pending
        );
        assert_eq!(
            target.backup_items(F, M, 0, 10).await.unwrap(),
            source.backup_items(F, M, 0, 10).await.unwrap()
        );
        assert_eq!(target.load_nonces(2).await.unwrap().len(), 1);
        assert_eq!(
            target.audit_root(F, size).await.unwrap(),
            source.audit_root(F, size).await.unwrap()
        );
        // It goes on: numbers continue after the moved ones, nothing is handed out twice.
        let ids = target
            .send_to_device(F, D, vec![(DeviceId([7; 16]), b"next".to_vec())], 20)
            .await
            .unwrap();
        assert!(
            ids[0] > pending.last().unwrap().id,
            "{ids:?} after {pending:?}"
        );
        assert_eq!(
            target
                .append_message(F, ROOM, D, b"next".to_vec(), 21, b"e6".to_vec())
                .await
                .unwrap(),
            31
        );
        assert_eq!(target.audit_size(F).await.unwrap(), size + 1);
        // Never into a database that holds firms.
        assert!(matches!(
            migrate(&path, &pg.url(), None, None).await,
            Err(MigrateError::Usage(m)) if m.contains("empty")
        ));
        assert!(matches!(
            migrate(&dir.path().join("absent.sqlite3"), &pg.url(), None, None).await,
            Err(MigrateError::Usage(_))
        ));
    }
}
