//! The relay's storage rules, written once over a small SQL interface ([`Db`]) that both
//! engines implement: the embedded SQLite default ([`super::sqlite`]) and PostgreSQL for
//! scale-out ([`super::postgres`]). An engine supplies connections and transactions
//! ([`Engine`]); [`SqlStore`] holds everything the [`Store`] trait promises, so the two
//! backends cannot drift apart, and both run the same conformance suite.
//!
//! The SQL is the common subset of the two dialects: `?N` placeholders (PostgreSQL's `$N`
//! are written from them), `INSERT … ON CONFLICT`, `RETURNING`, `CAST(… AS BIGINT)` where
//! PostgreSQL would widen a sum. Every value is bound as a parameter; no SQL is built from
//! input (the few `format!`s name fixed tables).
//!
//! Transactions: every write runs in one transaction that the engine commits before the
//! write is acknowledged. The engine serializes writes that touch the same firm (SQLite:
//! one writer thread; PostgreSQL: a transaction-scoped advisory lock per firm taken first),
//! so the read-then-write rules below (versions, epochs, the audit log's next index) see
//! every earlier committed write of their firm, whichever relay instance made it.

use super::*;
use ledgerline_protocol::roster::conversation_room;
use tlog_tiles::tlog;

/// A bound parameter. Integers are `i64` (both engines' widest); blobs are borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    /// An integer.
    Int(i64),
    /// Bytes.
    Blob(&'a [u8]),
    /// SQL NULL.
    Null,
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<u32> for Val<'_> {
    fn from(v: u32) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<u16> for Val<'_> {
    fn from(v: u16) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<u8> for Val<'_> {
    fn from(v: u8) -> Self {
        Val::Int(i64::from(v))
    }
}
impl<'a> From<&'a [u8]> for Val<'a> {
    fn from(v: &'a [u8]) -> Self {
        Val::Blob(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Val<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Val::Blob(v)
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Val<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Val::Blob(v)
    }
}
impl<'a> From<Option<&'a [u8]>> for Val<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        v.map_or(Val::Null, Val::Blob)
    }
}

/// Parameters of a statement: `p![a, b]` is `&[Val::from(a), Val::from(b)]`.
macro_rules! p {
    ($($v:expr),* $(,)?) => { &[$($crate::store::sql::Val::from($v)),*][..] };
}

/// One result row; columns by position.
pub trait Row {
    /// An integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A blob column.
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;

    /// A non-NULL integer.
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Backend(format!("column {i} is NULL")))
    }
    /// A non-NULL blob.
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.opt_blob(i)?
            .ok_or_else(|| StoreError::Backend(format!("column {i} is NULL")))
    }
    /// A counter (never negative).
    fn u64(&self, i: usize) -> Result<u64, StoreError> {
        Ok(u(self.int(i)?))
    }
    /// A narrower integer column.
    fn narrow<T: TryFrom<i64>>(&self, i: usize) -> Result<T, StoreError>
    where
        Self: Sized,
    {
        T::try_from(self.int(i)?)
            .map_err(|_| StoreError::Backend(format!("column {i} is out of range")))
    }
    /// A 16-byte id.
    fn id16(&self, i: usize) -> Result<[u8; 16], StoreError> {
        fixed(self.blob(i)?, i)
    }
    /// A 32-byte hash or key.
    fn id32(&self, i: usize) -> Result<[u8; 32], StoreError> {
        fixed(self.blob(i)?, i)
    }
}

fn fixed<const N: usize>(b: Vec<u8>, i: usize) -> Result<[u8; N], StoreError> {
    b.try_into()
        .map_err(|_| StoreError::Backend(format!("column {i} is not {N} bytes")))
}

/// A connection or transaction of an engine.
pub trait Db {
    /// The row type handed to callbacks.
    type Row<'r>: Row;

    /// Runs a statement; returns the rows it changed. A uniqueness violation is
    /// [`StoreError::Exists`]; a full disk is [`StoreError::Full`].
    fn exec(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, StoreError>;

    /// Runs a query, calling `f` for each row in order.
    fn each(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: impl FnMut(&Self::Row<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Every row of a query, each decoded by `f`.
    fn rows<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&Self::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.each(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of a query, if any.
    fn opt<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&Self::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut out = None;
        self.each(sql, params, |r| {
            if out.is_none() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The single integer a query returns (an aggregate).
    fn int(&self, sql: &str, params: &[Val<'_>]) -> Result<Option<i64>, StoreError> {
        Ok(self.opt(sql, params, |r| r.opt_int(0))?.flatten())
    }
}

/// Connections, transactions and the write order of one database engine.
pub trait Engine: Send + Sync + 'static {
    /// What the rules run against.
    type Conn: Db;

    /// Whether several relay instances may use one database ([`Store::shared`]).
    const SHARED: bool;

    /// Runs `f` in a write transaction, serialized with every other write that names the
    /// same `scope` (a firm or an invite id), and commits before answering. An error from
    /// `f` rolls back everything it wrote.
    fn write<T, F>(
        self: std::sync::Arc<Self>,
        scope: [u8; 16],
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&Self::Conn) -> Result<T, StoreError> + Send + 'static;

    /// Runs `f` on a connection for reading.
    fn read<T, F>(
        self: std::sync::Arc<Self>,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&Self::Conn) -> Result<T, StoreError> + Send + 'static;
}

/// Writes that belong to no firm (the replay-nonce cache) share this scope.
const GLOBAL_SCOPE: [u8; 16] = [0xff; 16];

/// The [`Store`] over an [`Engine`].
pub struct SqlStore<E> {
    engine: std::sync::Arc<E>,
}

impl<E> Clone for SqlStore<E> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
        }
    }
}

impl<E: Engine> SqlStore<E> {
    /// A store over `engine`.
    pub fn new(engine: E) -> Self {
        Self {
            engine: std::sync::Arc::new(engine),
        }
    }

    /// The engine underneath (for work beside the rules: moving a database).
    pub fn engine_handle(&self) -> std::sync::Arc<E> {
        self.engine.clone()
    }

    async fn write<T, F>(&self, scope: [u8; 16], f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&E::Conn) -> Result<T, StoreError> + Send + 'static,
    {
        self.engine.clone().write(scope, f).await
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
        F: FnOnce(&E::Conn) -> Result<T, StoreError> + Send + 'static,
    {
        self.write(firm.0, move |tx| {
            let out = f(tx)?;
            append_leaf(tx, firm, &audit)?;
            Ok(out)
        })
        .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&E::Conn) -> Result<T, StoreError> + Send + 'static,
    {
        self.engine.clone().read(f).await
    }
}

impl<E> std::fmt::Debug for SqlStore<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlStore")
    }
}

/// Stored integers are `i64`; our counters never reach 2^63.
pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// One firm's stored tree hashes, read for `tlog_tiles` (RFC 6962 roots and proofs).
struct TreeHashes<'c, D> {
    c: &'c D,
    firm: FirmId,
}

/// Most tree hashes asked for in one statement.
const HASHES_PER_QUERY: usize = 64;

/// `?from, ?from+1, …` for `n` parameters (numbers only: nothing of the input).
fn marks(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|k| format!("?{k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl<D: Db> tlog::HashReader for TreeHashes<'_, D> {
    /// All the hashes one step of `tlog_tiles` needs, in one query per 64 (a round trip
    /// each on PostgreSQL, instead of one per hash).
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        let mut found = std::collections::HashMap::with_capacity(indexes.len());
        for chunk in indexes.chunks(HASHES_PER_QUERY) {
            let sql = format!(
                "SELECT idx, hash FROM audit_hashes WHERE firm = ?1 AND idx IN ({})",
                marks(2, chunk.len())
            );
            let mut params = vec![Val::Blob(&self.firm.0)];
            params.extend(chunk.iter().map(|&idx| Val::Int(i(idx))));
            self.c
                .each(&sql, &params, |r| {
                    found.insert(r.u64(0)?, r.id32(1)?);
                    Ok(())
                })
                .map_err(|e| tlog::Error::InvalidInput(format!("tree hashes: {e}")))?;
        }
        indexes
            .iter()
            .map(|idx| {
                found
                    .get(idx)
                    .copied()
                    .map(tlog::Hash)
                    .ok_or_else(|| tlog::Error::InvalidInput(format!("tree hash {idx} missing")))
            })
            .collect()
    }
}

/// Number of leaves in a firm's log.
pub(crate) fn log_size(c: &impl Db, firm: FirmId) -> Result<u64, StoreError> {
    Ok(u(c
        .int(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_leaves WHERE firm = ?1",
            p![&firm.0],
        )?
        .unwrap_or(0)))
}

/// `NotFound` unless the log has at least `size` leaves.
fn within_log(c: &impl Db, firm: FirmId, size: u64) -> Result<(), StoreError> {
    if size > log_size(c, firm)? {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Appends `leaf` with its tree hashes, in the caller's transaction; returns its index.
pub(crate) fn append_leaf(tx: &impl Db, firm: FirmId, leaf: &[u8]) -> Result<u64, StoreError> {
    let n = log_size(tx, firm)?;
    let hashes = tlog::stored_hashes(n, leaf, &TreeHashes { c: tx, firm })
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let base = tlog::stored_hash_index(0, n);
    // One statement for the leaf's hashes (a leaf completes at most 64 subtrees).
    let rows = (0..hashes.len())
        .map(|k| format!("(?1, {})", marks(2 + 2 * k, 2)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut params = vec![Val::Blob(&firm.0)];
    for (k, h) in (base..).zip(&hashes) {
        params.extend([Val::Int(i(k)), Val::Blob(&h.0)]);
    }
    if !hashes.is_empty() {
        tx.exec(
            &format!("INSERT INTO audit_hashes (firm, idx, hash) VALUES {rows}"),
            &params,
        )?;
    }
    tx.exec(
        "INSERT INTO audit_leaves (firm, idx, leaf) VALUES (?1, ?2, ?3)",
        p![&firm.0, i(n), leaf],
    )?;
    Ok(n)
}

/// Refuses a write under `epoch` if the file has a newer epoch, or if a revocation
/// exposed the file's keys and its new epoch does not exist yet.
fn check_epoch(tx: &impl Db, firm: FirmId, file: FileId, epoch: u64) -> Result<(), StoreError> {
    let newest = tx
        .int(
            "SELECT MAX(epoch) FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2",
            p![&firm.0, &file.0],
        )?
        .map(u);
    if newest.is_some_and(|n| epoch < n) {
        return Err(StoreError::StaleEpoch {
            newest: newest.unwrap_or(0),
            rotating: false,
        });
    }
    let due = tx.int(
        "SELECT min_epoch FROM rotation_due WHERE firm = ?1 AND file = ?2",
        p![&firm.0, &file.0],
    )?;
    if due.is_some_and(|d| epoch < u(d)) {
        return Err(StoreError::StaleEpoch {
            newest: newest.unwrap_or(0),
            rotating: true,
        });
    }
    Ok(())
}

fn insert_document(
    tx: &impl Db,
    firm: FirmId,
    m: &DocumentMeta,
    now_ms: u64,
) -> Result<(), StoreError> {
    check_epoch(tx, firm, m.file, m.epoch)?;
    tx.exec(
        "INSERT INTO documents (firm, document, file, epoch, size, sha256, release_share, uploaded_by, created_ms, year, blob) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        p![&firm.0, &m.document.0, &m.file.0, i(m.epoch), i(m.size), &m.sha256, &m.release_share, &m.uploaded_by.0, i(now_ms), m.year, m.blob.as_ref().map(|b| &b[..])],
    )?;
    Ok(())
}

/// The member's current backup key, if any.
fn backup_key_of(
    c: &impl Db,
    firm: FirmId,
    member: MemberId,
) -> Result<Option<Vec<u8>>, StoreError> {
    c.opt(
        "SELECT backup_key FROM backup_keys WHERE firm = ?1 AND member = ?2",
        p![&firm.0, &member.0],
        |r| r.blob(0),
    )
}

fn backup_key_row(r: &impl Row, at: usize) -> Result<BackupKey, StoreError> {
    Ok(BackupKey {
        recovery_id: r.id16(at)?,
        key: r.id32(at + 1)?,
        signature: fixed(r.blob(at + 2)?, at + 2)?,
    })
}

/// A holder as stored: kind (1 member, 2 team) and id.
fn holder_parts(h: &Holder) -> (u8, [u8; 16]) {
    match h {
        Holder::Member(m) => (1, m.0),
        Holder::Team(t) => (2, t.0),
    }
}

/// The newest version of a team's key, if any.
fn newest_team_key(c: &impl Db, firm: FirmId, team: TeamId) -> Result<Option<u32>, StoreError> {
    c.int(
        "SELECT MAX(version) FROM team_key_wraps WHERE firm = ?1 AND team = ?2",
        p![&firm.0, &team.0],
    )?
    .map(|v| u32::try_from(v).map_err(|_| StoreError::Backend("team key version".into())))
    .transpose()
}

/// Refuses a team's epoch-key wrap unless it is under the team's newest key and no roster
/// event has made that key's rotation due.
fn check_team_key(
    tx: &impl Db,
    firm: FirmId,
    holder: &Holder,
    version: u32,
) -> Result<(), StoreError> {
    let Holder::Team(team) = *holder else {
        return Ok(());
    };
    let due = tx.int(
        "SELECT min_version FROM team_rotation_due WHERE firm = ?1 AND team = ?2",
        p![&firm.0, &team.0],
    )?;
    if newest_team_key(tx, firm, team)? != Some(version) || due.is_some() {
        return Err(StoreError::StaleTeamKey { team });
    }
    Ok(())
}

impl<E: Engine> Store for SqlStore<E> {
    async fn create_firm(
        &self,
        firm: FirmId,
        events: Vec<Vec<u8>>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(firm.0, move |tx| {
            tx.exec(
                "INSERT INTO firms (firm, created_ms) VALUES (?1, ?2)",
                p![&firm.0, i(now_ms)],
            )?;
            for (seq, e) in events.iter().enumerate() {
                tx.exec(
                    "INSERT INTO roster_events (firm, seq, event) VALUES (?1, ?2, ?3)",
                    p![&firm.0, i(seq as u64), e],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn firms(&self) -> Result<Vec<FirmId>, StoreError> {
        self.read(|c| {
            c.rows("SELECT firm FROM firms ORDER BY firm", p![], |r| {
                r.id16(0).map(FirmId)
            })
        })
        .await
    }

    async fn roster_events(&self, firm: FirmId, from_seq: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(move |c| {
            c.rows(
                "SELECT event FROM roster_events WHERE firm = ?1 AND seq >= ?2 ORDER BY seq",
                p![&firm.0, i(from_seq)],
                |r| r.blob(0),
            )
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
            tx.exec(
                "INSERT INTO roster_events (firm, seq, event) VALUES (?1, ?2, ?3)",
                p![&firm.0, i(seq), &event],
            )?;
            for file in due.files {
                tx.exec(
                    "INSERT INTO rotation_due (firm, file, min_epoch) VALUES (?1, ?2, COALESCE((SELECT MAX(epoch) FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2), 0) + 1) \
                     ON CONFLICT (firm, file) DO UPDATE SET min_epoch = excluded.min_epoch",
                    p![&firm.0, &file.0],
                )?;
            }
            for team in due.teams {
                tx.exec(
                    "INSERT INTO team_rotation_due (firm, team, min_version) VALUES (?1, ?2, COALESCE((SELECT MAX(version) FROM team_key_wraps WHERE firm = ?1 AND team = ?2), 0) + 1) \
                     ON CONFLICT (firm, team) DO UPDATE SET min_version = excluded.min_version",
                    p![&firm.0, &team.0],
                )?;
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
        self.write(firm.0, move |tx| {
            for (kind, key_id, encoded) in keys {
                if kind == 2 {
                    tx.exec(
                        "DELETE FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 2",
                        p![&firm.0, &device.0],
                    )?;
                }
                tx.exec(
                    "INSERT INTO prekeys (firm, device, kind, key_id, encoded) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (firm, device, kind, key_id) DO UPDATE SET encoded = excluded.encoded",
                    p![&firm.0, &device.0, kind, key_id, &encoded],
                )?;
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
        self.write(firm.0, move |tx| {
            let otk = tx.opt(
                "SELECT key_id, encoded FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 1 ORDER BY key_id LIMIT 1",
                p![&firm.0, &device.0],
                |r| Ok((r.int(0)?, r.blob(1)?)),
            )?;
            if let Some((key_id, encoded)) = otk {
                tx.exec(
                    "DELETE FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 1 AND key_id = ?3",
                    p![&firm.0, &device.0, key_id],
                )?;
                return Ok(Some(encoded));
            }
            tx.opt(
                "SELECT encoded FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 2",
                p![&firm.0, &device.0],
                |r| r.blob(0),
            )
        })
        .await
    }

    async fn count_one_time_keys(&self, firm: FirmId, device: DeviceId) -> Result<u64, StoreError> {
        self.read(move |c| {
            Ok(u(c
                .int(
                    "SELECT COUNT(*) FROM prekeys WHERE firm = ?1 AND device = ?2 AND kind = 1",
                    p![&firm.0, &device.0],
                )?
                .unwrap_or(0)))
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
        self.write(firm.0, move |tx| {
            let mut ids = Vec::with_capacity(messages.len());
            for (recipient, ct) in messages {
                let id = tx
                    .int(
                        "INSERT INTO to_device (firm, recipient, sender, ciphertext, created_ms) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                        p![&firm.0, &recipient.0, &sender.0, &ct, i(now_ms)],
                    )?
                    .ok_or_else(|| StoreError::Backend("no id for a to-device message".into()))?;
                ids.push(u(id));
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
            c.rows(
                "SELECT id, sender, ciphertext, created_ms FROM to_device WHERE firm = ?1 AND recipient = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
                p![&firm.0, &recipient.0, i(after), limit],
                |r| {
                    Ok(ToDevice {
                        id: r.u64(0)?,
                        sender: DeviceId(r.id16(1)?),
                        ciphertext: r.blob(2)?,
                        created_ms: r.u64(3)?,
                    })
                },
            )
        })
        .await
    }

    async fn ack_to_device(
        &self,
        firm: FirmId,
        recipient: DeviceId,
        up_to: u64,
    ) -> Result<u64, StoreError> {
        self.write(firm.0, move |tx| {
            tx.exec(
                "DELETE FROM to_device WHERE firm = ?1 AND recipient = ?2 AND id <= ?3",
                p![&firm.0, &recipient.0, i(up_to)],
            )
        })
        .await
    }

    async fn forget_device(&self, firm: FirmId, device: DeviceId) -> Result<(), StoreError> {
        self.write(firm.0, move |tx| {
            tx.exec(
                "DELETE FROM to_device WHERE firm = ?1 AND recipient = ?2",
                p![&firm.0, &device.0],
            )?;
            tx.exec(
                "DELETE FROM prekeys WHERE firm = ?1 AND device = ?2",
                p![&firm.0, &device.0],
            )?;
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
            tx.exec(
                "INSERT INTO rooms (firm, room, file, created_by, next_seq) \
                 VALUES (?1, ?2, ?3, ?4, (SELECT next_seq FROM seq_floor WHERE id = 1))",
                p![
                    &firm.0,
                    &room.id,
                    room.file.as_ref().map(|f| &f.0[..]),
                    &room.created_by.0
                ],
            )?;
            for m in &room.members {
                tx.exec(
                    "INSERT INTO room_members (firm, room, member) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    p![&firm.0, &room.id, &m.0],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn room(&self, firm: FirmId, room: RoomId) -> Result<Option<Room>, StoreError> {
        self.read(move |c| read_room(c, firm, room)).await
    }

    async fn set_room_members(
        &self,
        firm: FirmId,
        room: RoomId,
        members: Vec<MemberId>,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_logged(firm, audit, move |tx| {
            if tx
                .int(
                    "SELECT 1 FROM rooms WHERE firm = ?1 AND room = ?2",
                    p![&firm.0, &room],
                )?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            tx.exec(
                "DELETE FROM room_members WHERE firm = ?1 AND room = ?2",
                p![&firm.0, &room],
            )?;
            for m in &members {
                tx.exec(
                    "INSERT INTO room_members (firm, room, member) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    p![&firm.0, &room, &m.0],
                )?;
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
            let seq = tx
                .int(
                    "UPDATE rooms SET next_seq = next_seq + 1 WHERE firm = ?1 AND room = ?2 RETURNING next_seq - 1",
                    p![&firm.0, &room],
                )?
                .ok_or(StoreError::NotFound)?;
            tx.exec(
                "INSERT INTO room_messages (firm, room, seq, sender, ciphertext, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                p![&firm.0, &room, seq, &sender.0, &ciphertext, i(now_ms)],
            )?;
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
        self.read(move |c| room_messages(c, firm, room, from, limit))
            .await
    }

    async fn message_page(
        &self,
        firm: FirmId,
        room: RoomId,
        from: u64,
        limit: u32,
    ) -> Result<Option<(Room, Vec<Message>, u64)>, StoreError> {
        self.read(move |c| {
            let Some(head) = read_room(c, firm, room)? else {
                return Ok(None);
            };
            let page = room_messages(c, firm, room, from, limit)?;
            Ok(Some((head, page, next_seq(c, firm, room)?)))
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
            let current = tx
                .int(
                    "SELECT version FROM records WHERE firm = ?1 AND file = ?2 AND record = ?3",
                    p![&firm.0, &file.0, &record.0],
                )?
                .map(u)
                .unwrap_or(0);
            if version != current + 1 {
                return Err(StoreError::VersionConflict { current });
            }
            let cursor = tx
                .int(
                    "UPDATE firms SET next_cursor = next_cursor + 1 WHERE firm = ?1 RETURNING next_cursor - 1",
                    p![&firm.0],
                )?
                .ok_or(StoreError::NotFound)?;
            tx.exec(
                "INSERT INTO records (firm, file, record, version, cursor, author, envelope, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (firm, file, record) DO UPDATE SET version = excluded.version, cursor = excluded.cursor, author = excluded.author, envelope = excluded.envelope, updated_ms = excluded.updated_ms",
                p![&firm.0, &file.0, &record.0, i(version), cursor, &author.0, &envelope, i(now_ms)],
            )?;
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
            c.rows(
                "SELECT record, version, cursor, envelope FROM records WHERE firm = ?1 AND file = ?2 AND cursor > ?3 ORDER BY cursor LIMIT ?4",
                p![&firm.0, &file.0, i(cursor), limit],
                |r| {
                    Ok(StoredRecord {
                        record: RecordId(r.id16(0)?),
                        version: r.u64(1)?,
                        cursor: r.u64(2)?,
                        envelope: r.blob(3)?,
                    })
                },
            )
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
            tx.exec(
                "INSERT INTO member_key_wraps (firm, member, key_version, device, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (firm, member, key_version, device) DO UPDATE SET wrapped = excluded.wrapped, cursor = excluded.cursor",
                p![&firm.0, &w.member.0, w.key_version, &w.device.0, &w.wrapped, i(log_size(tx, firm)?)],
            )?;
            Ok(())
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
            c.rows(
                "SELECT member, key_version, wrapped, cursor FROM member_key_wraps WHERE firm = ?1 AND device = ?2 AND cursor >= ?3 ORDER BY cursor, member, key_version",
                p![&firm.0, &device.0, i(since)],
                |r| {
                    Ok((
                        r.u64(3)?,
                        MemberKeyWrap {
                            member: MemberId(r.id16(0)?),
                            key_version: r.narrow(1)?,
                            device,
                            wrapped: r.blob(2)?,
                        },
                    ))
                },
            )
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
            for w in wraps {
                tx.exec(
                    "INSERT INTO team_key_wraps (firm, team, version, member, member_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    p![&firm.0, &team.0, version, &w.member.0, w.member_key_version, &w.wrapped, cursor],
                )?;
            }
            tx.exec(
                "DELETE FROM team_rotation_due WHERE firm = ?1 AND team = ?2 AND min_version <= ?3",
                p![&firm.0, &team.0, version],
            )?;
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
            tx.exec(
                "INSERT INTO team_key_wraps (firm, team, version, member, member_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (firm, team, version, member) DO UPDATE SET member_key_version = excluded.member_key_version, wrapped = excluded.wrapped, cursor = excluded.cursor",
                p![&firm.0, &w.team.0, w.version, &w.member.0, w.member_key_version, &w.wrapped, i(log_size(tx, firm)?)],
            )?;
            Ok(())
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
            c.rows(
                "SELECT team, version, member_key_version, wrapped, cursor FROM team_key_wraps WHERE firm = ?1 AND member = ?2 AND cursor >= ?3 ORDER BY cursor, team, version",
                p![&firm.0, &member.0, i(since)],
                |r| {
                    Ok((
                        r.u64(4)?,
                        TeamKeyWrap {
                            team: TeamId(r.id16(0)?),
                            version: r.narrow(1)?,
                            member,
                            member_key_version: r.narrow(2)?,
                            wrapped: r.blob(3)?,
                        },
                    ))
                },
            )
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
            tx.exec(
                "INSERT INTO epoch_key_wraps (firm, file, epoch, holder_kind, holder, holder_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (firm, file, epoch, holder_kind, holder) DO UPDATE SET holder_key_version = excluded.holder_key_version, wrapped = excluded.wrapped, cursor = excluded.cursor",
                p![&firm.0, &file.0, i(w.epoch), kind, &id, w.holder_key_version, &w.wrapped, i(log_size(tx, firm)?)],
            )?;
            Ok(())
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
            c.rows(
                "SELECT epoch, holder_key_version, wrapped, cursor FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2 AND holder_kind = ?3 AND holder = ?4 AND cursor >= ?5 ORDER BY cursor, epoch",
                p![&firm.0, &file.0, kind, &id, i(since)],
                |r| {
                    Ok((
                        r.u64(3)?,
                        EpochKeyWrap {
                            epoch: r.u64(0)?,
                            holder,
                            holder_key_version: r.narrow(1)?,
                            wrapped: r.blob(2)?,
                        },
                    ))
                },
            )
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
            tx.exec(
                "INSERT INTO epoch_links (firm, file, epoch, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5)",
                p![&firm.0, &file.0, i(epoch), &link, cursor],
            )?;
            let current = tx
                .int(
                    "SELECT MAX(epoch) FROM epoch_key_wraps WHERE firm = ?1 AND file = ?2",
                    p![&firm.0, &file.0],
                )?
                .map(u);
            if current.map(|c| c.saturating_add(1)) != Some(epoch) {
                return Err(StoreError::VersionConflict {
                    current: current.unwrap_or(0),
                });
            }
            for w in &wraps {
                check_team_key(tx, firm, &w.holder, w.holder_key_version)?;
            }
            for w in wraps {
                let (kind, id) = holder_parts(&w.holder);
                tx.exec(
                    "INSERT INTO epoch_key_wraps (firm, file, epoch, holder_kind, holder, holder_key_version, wrapped, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    p![&firm.0, &file.0, i(epoch), kind, &id, w.holder_key_version, &w.wrapped, cursor],
                )?;
            }
            tx.exec(
                "DELETE FROM rotation_due WHERE firm = ?1 AND file = ?2 AND min_epoch <= ?3",
                p![&firm.0, &file.0, i(epoch)],
            )?;
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
            tx.exec(
                "INSERT INTO erased_files (firm, file, erased_ms) VALUES (?1, ?2, ?3)",
                p![&firm.0, &file.0, i(now_ms)],
            )?;
            let mut docs: Vec<DocumentId> = Vec::new();
            for sql in [
                "SELECT document FROM documents WHERE firm = ?1 AND file = ?2",
                "SELECT document FROM uploads WHERE firm = ?1 AND file = ?2",
            ] {
                docs.extend(tx.rows(sql, p![&firm.0, &file.0], |r| r.id16(0).map(DocumentId))?);
            }
            for d in &docs {
                tx.exec(
                    "DELETE FROM upload_parts WHERE firm = ?1 AND document = ?2",
                    p![&firm.0, &d.0],
                )?;
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
                tx.exec(sql, p![&firm.0, &file.0])?;
            }
            // The customer conversation goes with the file.
            tx.exec(
                "DELETE FROM room_messages WHERE firm = ?1 AND room = ?2",
                p![&firm.0, &conversation_room(&firm, &file)],
            )?;
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
        self.write(firm.0, move |tx| {
            let (f, file) = (&firm.0, &plan.file.0);
            let mut swept = Swept::default();
            if tx
                .int(
                    "SELECT 1 FROM erased_files WHERE firm = ?1 AND file = ?2",
                    p![f, file],
                )?
                .is_some()
            {
                return Ok(swept);
            }
            if let Some(before) = plan.chat_before_ms {
                // The file's staff room and its customer conversation (`guests.md`).
                let conversation = conversation_room(&firm, &plan.file);
                for room in [file, &conversation] {
                    let (n, through) = tx
                        .opt(
                            "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM room_messages WHERE firm = ?1 AND room = ?2 AND created_ms < ?3",
                            p![f, room, i(before)],
                            |r| Ok((r.u64(0)?, r.u64(1)?)),
                        )?
                        .unwrap_or((0, 0));
                    if n > 0 {
                        tx.exec(
                            "DELETE FROM room_messages WHERE firm = ?1 AND room = ?2 AND created_ms < ?3",
                            p![f, room, i(before)],
                        )?;
                        swept.messages += n;
                        swept.through_seq = swept.through_seq.max(through);
                        swept.chat_before_ms = before;
                    }
                }
            }
            if let Some(last) = plan.docs_through_year {
                let limit = i64::try_from(plan.max_documents).unwrap_or(i64::MAX);
                swept.documents = tx.rows(
                    "SELECT document, year FROM documents WHERE firm = ?1 AND file = ?2 AND year <= ?3 ORDER BY document LIMIT ?4",
                    p![f, file, last, limit],
                    |r| {
                        Ok(SweptDocument {
                            document: DocumentId(r.id16(0)?),
                            year: r.narrow(1)?,
                        })
                    },
                )?;
                for d in &swept.documents {
                    tx.exec(
                        "DELETE FROM documents WHERE firm = ?1 AND document = ?2",
                        p![f, &d.document.0],
                    )?;
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
            c.rows(
                "SELECT file FROM erased_files WHERE firm = ?1 ORDER BY file",
                p![&firm.0],
                |r| r.id16(0).map(FileId),
            )
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
            c.rows(
                "SELECT cursor, epoch, wrapped FROM epoch_links WHERE firm = ?1 AND file = ?2 AND cursor >= ?3 ORDER BY cursor, epoch",
                p![&firm.0, &file.0, i(since)],
                |r| Ok((r.u64(0)?, r.u64(1)?, r.blob(2)?)),
            )
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
        self.write(firm.0, move |tx| {
            tx.exec(
                "INSERT INTO uploads (firm, document, file, epoch, release_share, size, part_size, uploaded_by, created_ms, year) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                p![&firm.0, &u.document.0, &u.file.0, i(u.epoch), &u.release_share, i(u.size), i(u.part_size), &u.uploaded_by.0, i(now_ms), u.year],
            )?;
            Ok(())
        })
        .await
    }

    async fn upload(
        &self,
        firm: FirmId,
        document: DocumentId,
    ) -> Result<Option<(UploadSession, Vec<[u8; 32]>)>, StoreError> {
        self.read(move |c| {
            let session = c.opt(
                "SELECT file, epoch, release_share, size, part_size, uploaded_by, year FROM uploads WHERE firm = ?1 AND document = ?2",
                p![&firm.0, &document.0],
                |r| {
                    Ok(UploadSession {
                        document,
                        file: FileId(r.id16(0)?),
                        epoch: r.u64(1)?,
                        release_share: r.id32(2)?,
                        size: r.u64(3)?,
                        part_size: r.u64(4)?,
                        uploaded_by: DeviceId(r.id16(5)?),
                        year: r.narrow(6)?,
                    })
                },
            )?;
            let Some(session) = session else {
                return Ok(None);
            };
            let parts = c.rows(
                "SELECT sha256 FROM upload_parts WHERE firm = ?1 AND document = ?2 ORDER BY n",
                p![&firm.0, &document.0],
                |r| r.id32(0),
            )?;
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
        self.write(firm.0, move |tx| {
            let count = u(tx
                .int(
                    "SELECT COUNT(*) FROM upload_parts WHERE firm = ?1 AND document = ?2",
                    p![&firm.0, &document.0],
                )?
                .unwrap_or(0));
            if count != n {
                return Err(StoreError::VersionConflict { current: count });
            }
            tx.exec(
                "INSERT INTO upload_parts (firm, document, n, sha256) VALUES (?1, ?2, ?3, ?4)",
                p![&firm.0, &document.0, i(n), &sha256],
            )?;
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
        self.write(firm.0, move |tx| {
            tx.exec(
                "DELETE FROM upload_parts WHERE firm = ?1 AND document = ?2 AND n >= ?3",
                p![&firm.0, &document.0, i(keep)],
            )?;
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
            for sql in [
                "DELETE FROM upload_parts WHERE firm = ?1 AND document = ?2",
                "DELETE FROM uploads WHERE firm = ?1 AND document = ?2",
            ] {
                tx.exec(sql, p![&firm.0, &m.document.0])?;
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
            c.opt(
                "SELECT file, epoch, size, sha256, release_share, uploaded_by, year, blob FROM documents WHERE firm = ?1 AND document = ?2",
                p![&firm.0, &document.0],
                |r| {
                    Ok(DocumentMeta {
                        document,
                        file: FileId(r.id16(0)?),
                        epoch: r.u64(1)?,
                        size: r.u64(2)?,
                        sha256: r.id32(3)?,
                        release_share: r.id32(4)?,
                        uploaded_by: DeviceId(r.id16(5)?),
                        year: r.narrow(6)?,
                        blob: r.opt_blob(7)?.map(|b| fixed(b, 7)).transpose()?,
                    })
                },
            )
        })
        .await
    }

    async fn append_audit_leaf(&self, firm: FirmId, leaf: Vec<u8>) -> Result<u64, StoreError> {
        self.write(firm.0, move |tx| append_leaf(tx, firm, &leaf))
            .await
    }

    async fn audit_leaves(
        &self,
        firm: FirmId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(move |c| {
            c.rows(
                "SELECT leaf FROM audit_leaves WHERE firm = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
                p![&firm.0, i(from), limit],
                |r| r.blob(0),
            )
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
                .map_err(|e| StoreError::Backend(e.to_string()))
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
                .map_err(|e| StoreError::Backend(e.to_string()))
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
                .map_err(|e| StoreError::Backend(e.to_string()))
        })
        .await
    }

    async fn put_cosigned_checkpoint(
        &self,
        firm: FirmId,
        size: u64,
        note: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write(firm.0, move |tx| {
            tx.exec(
                "INSERT INTO audit_cosigned (firm, size, note) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (firm, size) DO UPDATE SET note = excluded.note",
                p![&firm.0, i(size), &note],
            )?;
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
            c.rows(
                "SELECT size, note FROM audit_cosigned WHERE firm = ?1 AND size >= ?2 ORDER BY size LIMIT ?3",
                p![&firm.0, i(from_size), limit],
                |r| Ok((r.u64(0)?, r.blob(1)?)),
            )
        })
        .await
    }

    async fn cosigned_checkpoint(
        &self,
        firm: FirmId,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.read(move |c| {
            c.opt(
                "SELECT size, note FROM audit_cosigned WHERE firm = ?1 ORDER BY size DESC LIMIT 1",
                p![&firm.0],
                |r| Ok((r.u64(0)?, r.blob(1)?)),
            )
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
        self.write(invite, move |tx| {
            tx.exec(
                "INSERT INTO invites (invite, firm, created_by, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                p![&invite, &firm.0, &created_by.0, i(expires_ms)],
            )?;
            Ok(())
        })
        .await
    }

    async fn invite(
        &self,
        invite: [u8; 16],
    ) -> Result<Option<(FirmId, MemberId, u64)>, StoreError> {
        self.read(move |c| {
            c.opt(
                "SELECT firm, created_by, expires_ms FROM invites WHERE invite = ?1",
                p![&invite],
                |r| Ok((FirmId(r.id16(0)?), MemberId(r.id16(1)?), r.u64(2)?)),
            )
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
        self.write(invite, move |tx| {
            let n = u(tx
                .int(
                    "SELECT COUNT(*) FROM join_requests WHERE invite = ?1",
                    p![&invite],
                )?
                .unwrap_or(0));
            if n >= max {
                return Err(StoreError::Exists);
            }
            let id = n + 1;
            tx.exec(
                "INSERT INTO join_requests (invite, id, sealed, created_ms) VALUES (?1, ?2, ?3, ?4)",
                p![&invite, i(id), &sealed, i(now_ms)],
            )?;
            Ok(id)
        })
        .await
    }

    async fn join_requests(
        &self,
        invite: [u8; 16],
    ) -> Result<Vec<(u64, Vec<u8>, u64)>, StoreError> {
        self.read(move |c| {
            c.rows(
                "SELECT id, sealed, created_ms FROM join_requests WHERE invite = ?1 ORDER BY id",
                p![&invite],
                |r| Ok((r.u64(0)?, r.blob(1)?, r.u64(2)?)),
            )
        })
        .await
    }

    async fn delete_invite(&self, invite: [u8; 16]) -> Result<(), StoreError> {
        self.write(invite, move |tx| {
            tx.exec("DELETE FROM join_requests WHERE invite = ?1", p![&invite])?;
            tx.exec("DELETE FROM invites WHERE invite = ?1", p![&invite])?;
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
                for sql in [
                    "DELETE FROM backup_items WHERE firm = ?1 AND member = ?2",
                    "DELETE FROM backup_escrow WHERE firm = ?1 AND member = ?2",
                ] {
                    tx.exec(sql, p![&firm.0, &member.0])?;
                }
            }
            tx.exec(
                "INSERT INTO backup_keys (firm, member, recovery_id, backup_key, signature) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (firm, member) DO UPDATE SET recovery_id = excluded.recovery_id, backup_key = excluded.backup_key, signature = excluded.signature",
                p![&firm.0, &member.0, &key.recovery_id, &key.key, &key.signature],
            )?;
            Ok(())
        })
        .await
    }

    async fn backup_key(
        &self,
        firm: FirmId,
        member: MemberId,
    ) -> Result<Option<BackupKey>, StoreError> {
        self.read(move |c| {
            c.opt(
                "SELECT recovery_id, backup_key, signature FROM backup_keys WHERE firm = ?1 AND member = ?2",
                p![&firm.0, &member.0],
                |r| backup_key_row(r, 0),
            )
        })
        .await
    }

    async fn backup_by_recovery_id(
        &self,
        recovery_id: [u8; 16],
    ) -> Result<Option<(FirmId, MemberId, BackupKey)>, StoreError> {
        self.read(move |c| {
            c.opt(
                "SELECT firm, member, recovery_id, backup_key, signature FROM backup_keys WHERE recovery_id = ?1",
                p![&recovery_id],
                |r| Ok((FirmId(r.id16(0)?), MemberId(r.id16(1)?), backup_key_row(r, 2)?)),
            )
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
        self.write(firm.0, move |tx| {
            let current = backup_key_of(tx, firm, member)?;
            if current.as_deref() != Some(&sealed_to[..]) {
                return Err(StoreError::NotFound);
            }
            for it in items {
                tx.exec(
                    "INSERT INTO backup_items (firm, member, kind, item, sealed) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    p![&firm.0, &member.0, it.kind, &it.item, &it.sealed],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn room_next_seq(&self, firm: FirmId, room: RoomId) -> Result<u64, StoreError> {
        self.read(move |c| next_seq(c, firm, room)).await
    }

    async fn backup_item(
        &self,
        firm: FirmId,
        member: MemberId,
        kind: u8,
        item: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |c| {
            c.opt(
                "SELECT sealed FROM backup_items WHERE firm = ?1 AND member = ?2 AND kind = ?3 AND item = ?4",
                p![&firm.0, &member.0, kind, &item],
                |r| r.blob(0),
            )
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
        self.write(firm.0, move |tx| {
            let current = backup_key_of(tx, firm, member)?;
            if current.as_deref() != Some(&sealed_to[..]) {
                return Err(StoreError::NotFound);
            }
            for (device, sealed) in entries {
                tx.exec(
                    "INSERT INTO backup_escrow (firm, member, device, backup_key, sealed) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (firm, member, device) DO UPDATE SET backup_key = excluded.backup_key, sealed = excluded.sealed",
                    p![&firm.0, &member.0, &device.0, &sealed_to, &sealed],
                )?;
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
            c.opt(
                "SELECT e.sealed FROM backup_escrow e JOIN backup_keys k ON k.firm = e.firm AND k.member = e.member AND k.backup_key = e.backup_key \
                 WHERE e.firm = ?1 AND e.member = ?2 AND e.device = ?3",
                p![&firm.0, &member.0, &device.0],
                |r| r.blob(0),
            )
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
            c.rows(
                "SELECT seq, kind, item, sealed FROM backup_items WHERE firm = ?1 AND member = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                p![&firm.0, &member.0, i(after), limit],
                |r| {
                    Ok((
                        r.u64(0)?,
                        BackupItem {
                            kind: r.narrow(1)?,
                            item: r.blob(2)?,
                            sealed: r.blob(3)?,
                        },
                    ))
                },
            )
        })
        .await
    }

    async fn save_nonces(
        &self,
        nonces: Vec<(DeviceId, [u8; 16], u64)>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(GLOBAL_SCOPE, move |tx| {
            tx.exec("DELETE FROM nonces WHERE expires_ms < ?1", p![i(now_ms)])?;
            for (d, n, e) in nonces {
                tx.exec(
                    "INSERT INTO nonces (device, nonce, expires_ms) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (device, nonce) DO UPDATE SET expires_ms = excluded.expires_ms",
                    p![&d.0, &n, i(e)],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn claim_nonce(
        &self,
        device: DeviceId,
        nonce: [u8; 16],
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        // The primary key decides between instances; no lock beyond the device's own.
        let added = self
            .write(device.0, move |tx| {
                tx.exec(
                    "INSERT INTO nonces (device, nonce, expires_ms) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (device, nonce) DO NOTHING",
                    p![&device.0, &nonce, i(expires_ms)],
                )
            })
            .await?;
        Ok(added == 1)
    }

    async fn prune_nonces(&self, now_ms: u64) -> Result<(), StoreError> {
        self.write(GLOBAL_SCOPE, move |tx| {
            tx.exec("DELETE FROM nonces WHERE expires_ms < ?1", p![i(now_ms)])
                .map(|_| ())
        })
        .await
    }

    async fn load_nonces(&self, now_ms: u64) -> Result<Vec<(DeviceId, [u8; 16], u64)>, StoreError> {
        self.read(move |c| {
            c.rows(
                "SELECT device, nonce, expires_ms FROM nonces WHERE expires_ms >= ?1",
                p![i(now_ms)],
                |r| Ok((DeviceId(r.id16(0)?), r.id16(1)?, r.u64(2)?)),
            )
        })
        .await
    }

    async fn usage(&self) -> Result<Usage, StoreError> {
        self.read(|c| {
            let q = |sql: &str| Ok::<_, StoreError>(u(c.int(sql, p![])?.unwrap_or(0)));
            let stored_bytes = q(
                "SELECT CAST(COALESCE(SUM(LENGTH(ciphertext)), 0) AS BIGINT) FROM room_messages",
            )? + q(
                "SELECT CAST(COALESCE(SUM(LENGTH(envelope)), 0) AS BIGINT) FROM records",
            )? + q(
                "SELECT CAST(COALESCE(SUM(LENGTH(ciphertext)), 0) AS BIGINT) FROM to_device",
            )? + q(
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM documents",
            )?;
            Ok(Usage {
                stored_bytes,
                audit_leaves: q("SELECT COUNT(*) FROM audit_leaves")?,
            })
        })
        .await
    }

    fn shared(&self) -> bool {
        E::SHARED
    }
}

/// Messages of a room with `seq >= from`, at most `limit`, in order.
fn room_messages(
    c: &impl Db,
    firm: FirmId,
    room: RoomId,
    from: u64,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    c.rows(
        "SELECT seq, sender, ciphertext, created_ms FROM room_messages WHERE firm = ?1 AND room = ?2 AND seq >= ?3 ORDER BY seq LIMIT ?4",
        p![&firm.0, &room, i(from), limit],
        |r| {
            Ok(Message {
                seq: r.u64(0)?,
                sender: DeviceId(r.id16(1)?),
                ciphertext: r.blob(2)?,
                created_ms: r.u64(3)?,
            })
        },
    )
}

/// The number a room's next message will get (`NotFound` for no room).
fn next_seq(c: &impl Db, firm: FirmId, room: RoomId) -> Result<u64, StoreError> {
    c.int(
        "SELECT next_seq FROM rooms WHERE firm = ?1 AND room = ?2",
        p![&firm.0, &room],
    )?
    .map(u)
    .ok_or(StoreError::NotFound)
}

/// A room and its members (`None` for no room).
fn read_room(c: &impl Db, firm: FirmId, room: RoomId) -> Result<Option<Room>, StoreError> {
    let head = c.opt(
        "SELECT file, created_by FROM rooms WHERE firm = ?1 AND room = ?2",
        p![&firm.0, &room],
        |r| {
            let file = r.opt_blob(0)?.map(|b| fixed(b, 0)).transpose()?;
            Ok((file.map(FileId), MemberId(r.id16(1)?)))
        },
    )?;
    let Some((file, created_by)) = head else {
        return Ok(None);
    };
    let members = c.rows(
        "SELECT member FROM room_members WHERE firm = ?1 AND room = ?2 ORDER BY member",
        p![&firm.0, &room],
        |r| r.id16(0).map(MemberId),
    )?;
    Ok(Some(Room {
        id: room,
        file,
        created_by,
        members,
    }))
}
