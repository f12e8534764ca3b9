//! The encrypted local store: SQLite through SQLCipher (every page encrypted with a
//! 256-bit key), holding pickled keys and sessions, decrypted data and an FTS5 full-text
//! index. The key comes from a passphrase through Argon2id (a random salt stored beside the
//! database) or, where one is available, from the OS keyring.

use crate::room::{SessionRow, TimelineChanges};
use argon2::{Algorithm, Argon2, Params, Version};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use zeroize::Zeroizing;

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_checkpoints.sql"),
    include_str!("../migrations/0003_roster.sql"),
    include_str!("../migrations/0004_work_items.sql"),
    include_str!("../migrations/0005_sent.sql"),
    include_str!("../migrations/0006_mail.sql"),
    include_str!("../migrations/0007_megolm_rows.sql"),
];

/// Argon2id cost: 64 MiB, 3 passes, 1 lane (OWASP's second recommended profile).
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not open the database (wrong passphrase) or the file is not a store.
    #[error("the local store cannot be opened with this key (wrong passphrase, or not a Ledgerline store)")]
    WrongKey,
    /// The database was written by a newer version.
    #[error("the local store was written by a newer Ledgerline (schema {0}); upgrade")]
    TooNew(usize),
    /// SQLite failed.
    #[error("local store: {0}")]
    Sqlite(String),
    /// Key derivation failed.
    #[error("key derivation: {0}")]
    Kdf(String),
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e.to_string())
}

/// The 32-byte SQLCipher key.
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

impl StoreKey {
    /// A key from raw bytes (e.g. from the OS keyring).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Argon2id of `passphrase` with `salt` (16 random bytes kept beside the database).
    pub fn from_passphrase(passphrase: &str, salt: &[u8; 16]) -> Result<Self, StoreError> {
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, Some(32))
            .map_err(|e| StoreError::Kdf(e.to_string()))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(|e| StoreError::Kdf(e.to_string()))?;
        Ok(Self(out))
    }

    /// The pickle key for vodozemac state: derived, so the SQLCipher key itself is never
    /// handed to another library.
    /// The key's bytes (for wrapping it under a passphrase).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn pickle_key(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        let _ = hkdf::Hkdf::<sha2::Sha256>::new(None, self.0.as_ref())
            .expand(crate::PICKLE_INFO.as_bytes(), out.as_mut());
        out
    }
}

/// A work item as the local store keeps it (`migrations/0004_work_items.sql`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkRow {
    /// Customer file.
    pub file: [u8; 16],
    /// Record id.
    pub record: [u8; 16],
    /// `customer`, `note`, `task`, `event`.
    pub kind: String,
    /// The relay's version of `body` (0: never on the relay).
    pub version: u64,
    /// The item at `version` (JSON), if the relay has it.
    pub body: Option<String>,
    /// The body a pending edit started from.
    pub base: Option<String>,
    /// A local edit the relay has not accepted yet.
    pub pending: Option<String>,
    /// Last change here (ms).
    pub updated_ms: u64,
}

/// A message as the timeline stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Room.
    pub room: [u8; 16],
    /// Sequence number.
    pub seq: u64,
    /// Sender device.
    pub sender: [u8; 16],
    /// The decrypted event, JSON.
    pub event: String,
    /// Relay time.
    pub created_ms: u64,
}

/// The local store of one profile.
pub struct LocalStore {
    conn: Connection,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalStore")
    }
}

impl LocalStore {
    /// Opens (creating if needed) the store at `path` with `key`, and migrates it.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(sql)?;
        // Raw key syntax: x'<64 hex>' — no KDF inside SQLCipher, the key is already strong.
        let pragma = Zeroizing::new(format!("x'{}'", hex::encode(key.0.as_ref())));
        conn.pragma_update(None, "key", &*pragma).map_err(sql)?;
        // SQLCipher would print its own lines on a wrong key; our error says it once.
        let _ = conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()));
        // The first read fails when the key is wrong.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|_| StoreError::WrongKey)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        let mut store = Self { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let applied: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        let applied = usize::try_from(applied).map_err(|e| StoreError::Sqlite(e.to_string()))?;
        if applied > MIGRATIONS.len() {
            return Err(StoreError::TooNew(applied));
        }
        for (n, m) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = self.conn.transaction().map_err(sql)?;
            tx.execute_batch(m).map_err(sql)?;
            tx.pragma_update(None, "user_version", n as i64 + 1)
                .map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(())
    }

    /// Stores a named piece of state (e.g. the encrypted device pickle).
    pub fn put_state(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO state (name, value) VALUES (?1, ?2)",
                params![name, value],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// Forgets a named piece of state.
    pub fn forget_state(&self, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM state WHERE name = ?1", params![name])
            .map(|_| ())
            .map_err(sql)
    }

    /// Forgets every piece of state whose name starts with `prefix`.
    pub fn forget_state_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM state WHERE substr(name, 1, length(?1)) = ?1",
                params![prefix],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// Reads a named piece of state.
    pub fn state(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM state WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)
    }

    /// Archives an accepted audit-log checkpoint: the first note of a size is kept, unless
    /// `replace` (the witness's cosigned version of a checkpoint archived before).
    pub fn put_checkpoint(
        &self,
        size: u64,
        note: &str,
        seen_ms: u64,
        replace: bool,
    ) -> Result<(), StoreError> {
        let statement = if replace {
            "INSERT OR REPLACE INTO checkpoints (size, note, seen_ms) VALUES (?1, ?2, ?3)"
        } else {
            "INSERT OR IGNORE INTO checkpoints (size, note, seen_ms) VALUES (?1, ?2, ?3)"
        };
        self.conn
            .execute(statement, params![size as i64, note, seen_ms as i64])
            .map(|_| ())
            .map_err(sql)
    }

    /// The archived checkpoints `(size, note)`, smallest first.
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT size, note FROM checkpoints ORDER BY size")
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Journals a message this device sent, at the position the relay gave it.
    pub fn put_sent(
        &mut self,
        room: &[u8; 16],
        seq: u64,
        ciphertext: &[u8],
    ) -> Result<(), StoreError> {
        let seq = i64::try_from(seq).map_err(|_| StoreError::Sqlite("seq out of range".into()))?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO sent (room, seq, ciphertext) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| st.execute(params![&room[..], seq, ciphertext]))
            .map(|_| ())
            .map_err(sql)
    }

    /// This device's sent messages in `room` at positions `from..to`, in order.
    pub fn sent_between(
        &self,
        room: &[u8; 16],
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let (from, to) = (
            i64::try_from(from).unwrap_or(i64::MAX),
            i64::try_from(to).unwrap_or(i64::MAX),
        );
        let mut st = self
            .conn
            .prepare_cached("SELECT seq, ciphertext FROM sent WHERE room = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq")
            .map_err(sql)?;
        let rows = st
            .query_map(params![&room[..], from, to], |r| {
                Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Forgets a journaled message (posted again at a new position, or expired).
    pub fn forget_sent(&mut self, room: &[u8; 16], seq: u64) -> Result<(), StoreError> {
        let seq = i64::try_from(seq).map_err(|_| StoreError::Sqlite("seq out of range".into()))?;
        self.conn
            .prepare_cached("DELETE FROM sent WHERE room = ?1 AND seq = ?2")
            .and_then(|mut st| st.execute(params![&room[..], seq]))
            .map(|_| ())
            .map_err(sql)
    }

    /// Stores a decrypted message and indexes its text; a message already stored at the
    /// same position is left as it is (sync may deliver it twice). Returns whether it was new.
    pub fn put_message(
        &mut self,
        m: &StoredMessage,
        text: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(self.put_messages(&[(m.clone(), text.map(str::to_owned))])? == 1)
    }

    /// Stores a page of messages in one transaction (one fsync); returns how many were new.
    pub fn put_messages(
        &mut self,
        page: &[(StoredMessage, Option<String>)],
    ) -> Result<usize, StoreError> {
        self.commit(&[], page)
    }

    /// Writes named state and a page of messages in one transaction, so a crash leaves
    /// either all of it or none (e.g. a sync cursor never runs ahead of the messages it
    /// covers). A message with an empty `event` is a placeholder whose key has not arrived;
    /// a later write with the decrypted event fills it in (keeping its relay time), any
    /// other write to an existing position is ignored. Returns how many messages were new
    /// or filled in.
    pub fn commit(
        &mut self,
        states: &[(String, String)],
        page: &[(StoredMessage, Option<String>)],
    ) -> Result<usize, StoreError> {
        self.commit_with_roster(states, page, &[])
    }

    /// [`LocalStore::commit`], also appending roster events `(seq, bytes)` in the same
    /// transaction (an event already stored at its position is left as it is).
    pub fn commit_with_roster(
        &mut self,
        states: &[(String, String)],
        page: &[(StoredMessage, Option<String>)],
        roster: &[(u64, Vec<u8>)],
    ) -> Result<usize, StoreError> {
        self.commit_all(states, page, roster, &TimelineChanges::default())
    }

    /// [`LocalStore::commit_with_roster`], also inserting the Megolm sessions and replay
    /// records a timeline added (a row already there is left as it is: they never change).
    pub fn commit_all(
        &mut self,
        states: &[(String, String)],
        page: &[(StoredMessage, Option<String>)],
        roster: &[(u64, Vec<u8>)],
        timeline: &TimelineChanges<'_>,
    ) -> Result<usize, StoreError> {
        let tx = self.conn.transaction().map_err(sql)?;
        let mut new = 0;
        {
            if !timeline.sessions.is_empty() {
                let mut put = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO megolm_sessions (session_id, pickle) VALUES (?1, ?2)",
                    )
                    .map_err(sql)?;
                for row in &timeline.sessions {
                    put.execute(params![row.session_id, row.pickle])
                        .map_err(sql)?;
                }
            }
            if !timeline.seen.is_empty() {
                let mut put = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO megolm_seen (session_id, idx, seq) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(sql)?;
                for (sid, index, seq) in timeline.seen {
                    let seq = i64::try_from(*seq)
                        .map_err(|_| StoreError::Sqlite("message number out of range".into()))?;
                    put.execute(params![sid, index, seq]).map_err(sql)?;
                }
            }
            let mut put_event = tx
                .prepare_cached("INSERT OR IGNORE INTO roster (seq, event) VALUES (?1, ?2)")
                .map_err(sql)?;
            for (seq, event) in roster {
                let seq = i64::try_from(*seq)
                    .map_err(|_| StoreError::Sqlite("roster position out of range".into()))?;
                put_event.execute(params![seq, event]).map_err(sql)?;
            }
            // Cached statements: a page of messages is one prepare, not two per message.
            let mut put_state = tx
                .prepare_cached("INSERT OR REPLACE INTO state (name, value) VALUES (?1, ?2)")
                .map_err(sql)?;
            for (name, value) in states {
                put_state.execute(params![name, value]).map_err(sql)?;
            }
            let mut put_message = tx
                .prepare_cached(
                    "INSERT INTO messages (room, seq, sender, event, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (room, seq) DO UPDATE SET event = excluded.event
                     WHERE messages.event = '' AND excluded.event <> '' AND messages.sender = excluded.sender",
                )
                .map_err(sql)?;
            let mut index = tx
                .prepare_cached("INSERT INTO search (kind, ref, body) VALUES ('message', ?1, ?2)")
                .map_err(sql)?;
            for (m, text) in page {
                let n = put_message
                    .execute(params![
                        &m.room[..],
                        m.seq as i64,
                        &m.sender[..],
                        m.event,
                        m.created_ms as i64
                    ])
                    .map_err(sql)?;
                if n == 1 {
                    new += 1;
                    if let Some(t) = text {
                        index
                            .execute(params![format!("{}:{}", hex::encode(m.room), m.seq), t])
                            .map_err(sql)?;
                    }
                }
            }
        }
        tx.commit().map_err(sql)?;
        Ok(new)
    }

    /// Every saved Megolm session.
    pub fn megolm_sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT session_id, pickle FROM megolm_sessions")
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| {
                Ok(SessionRow {
                    session_id: r.get(0)?,
                    pickle: r.get(1)?,
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Every saved replay record, as (session id, index, seq).
    pub fn megolm_seen(&self) -> Result<Vec<(String, u32, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT session_id, idx, seq FROM megolm_seen")
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| {
                let seq = u64::try_from(r.get::<_, i64>(2)?).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        2,
                        rusqlite::types::Type::Integer,
                        Box::new(e),
                    )
                })?;
                Ok((r.get(0)?, r.get(1)?, seq))
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Writes a work item (whole row).
    pub fn put_work(&self, w: &WorkRow) -> Result<(), StoreError> {
        let version = i64::try_from(w.version)
            .map_err(|_| StoreError::Sqlite("record version out of range".into()))?;
        let updated = i64::try_from(w.updated_ms).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO work_items (file, record, kind, version, body, base, pending, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    &w.file[..],
                    &w.record[..],
                    w.kind,
                    version,
                    w.body,
                    w.base,
                    w.pending,
                    updated
                ])
            })
            .map(|_| ())
            .map_err(sql)
    }

    /// One work item.
    pub fn work(&self, file: &[u8; 16], record: &[u8; 16]) -> Result<Option<WorkRow>, StoreError> {
        Ok(self
            .work_where("file = ?1 AND record = ?2", params![&file[..], &record[..]])?
            .into_iter()
            .next())
    }

    /// Work items of one kind (every file when `file` is `None`).
    pub fn works(&self, kind: &str, file: Option<&[u8; 16]>) -> Result<Vec<WorkRow>, StoreError> {
        match file {
            Some(f) => self.work_where("kind = ?1 AND file = ?2", params![kind, &f[..]]),
            None => self.work_where("kind = ?1", params![kind]),
        }
    }

    /// Deletes everything decrypted of a customer file: its work items, its conversation
    /// and their search entries (the file was erased).
    pub fn forget_file(&mut self, file: &[u8; 16]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut refs: Vec<String> = vec![hex::encode(file)];
            let mut st = tx
                .prepare("SELECT record FROM work_items WHERE file = ?1")
                .map_err(sql)?;
            let rows = st
                .query_map(params![&file[..]], |r| r.get::<_, Vec<u8>>(0))
                .map_err(sql)?;
            for r in rows {
                refs.push(hex::encode(r.map_err(sql)?));
            }
            let mut del = tx
                .prepare("DELETE FROM search WHERE ref = ?1")
                .map_err(sql)?;
            for r in &refs {
                del.execute(params![r]).map_err(sql)?;
            }
            tx.execute(
                "DELETE FROM search WHERE ref LIKE ?1",
                params![format!("{}:%", hex::encode(file))],
            )
            .map_err(sql)?;
            tx.execute("DELETE FROM work_items WHERE file = ?1", params![&file[..]])
                .map_err(sql)?;
            tx.execute("DELETE FROM messages WHERE room = ?1", params![&file[..]])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Retention: deletes a conversation's messages received before `before_ms` (if any)
    /// and the search entries of those messages and of `refs`; returns the messages gone.
    pub fn forget_expired(
        &mut self,
        room: &[u8; 16],
        before_ms: Option<u64>,
        refs: &[String],
    ) -> Result<u64, StoreError> {
        let tx = self.conn.transaction().map_err(sql)?;
        let mut gone = 0u64;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM search WHERE ref = ?1")
                .map_err(sql)?;
            for r in refs {
                del.execute(params![r]).map_err(sql)?;
            }
            if let Some(before) = before_ms {
                let before = i64::try_from(before).unwrap_or(i64::MAX);
                let seqs: Vec<i64> = {
                    let mut st = tx
                        .prepare("SELECT seq FROM messages WHERE room = ?1 AND created_ms < ?2")
                        .map_err(sql)?;
                    let rows = st
                        .query_map(params![&room[..], before], |r| r.get(0))
                        .map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                for seq in &seqs {
                    del.execute(params![format!("{}:{seq}", hex::encode(room))])
                        .map_err(sql)?;
                }
                tx.execute(
                    "DELETE FROM messages WHERE room = ?1 AND created_ms < ?2",
                    params![&room[..], before],
                )
                .map_err(sql)?;
                gone = seqs.len() as u64;
            }
        }
        tx.commit().map_err(sql)?;
        Ok(gone)
    }

    /// After a relay restore: every work item of `file` becomes a local edit of its newest
    /// state here, with no known relay version (version 0, no body, no base), so that the
    /// next sync learns the relay's version anew and sends whatever the relay lost.
    /// Returns how many items.
    pub fn reopen_works(&self, file: &[u8; 16]) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE work_items SET pending = COALESCE(pending, body), body = NULL, \
                 base = NULL, version = 0 WHERE file = ?1",
                params![&file[..]],
            )
            .map_err(sql)
    }

    /// Work items with a local edit the relay has not accepted yet.
    pub fn works_pending(&self) -> Result<Vec<WorkRow>, StoreError> {
        self.work_where("pending IS NOT NULL", params![])
    }

    fn work_where(
        &self,
        cond: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<WorkRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT file, record, kind, version, body, base, pending, updated_ms FROM work_items WHERE {cond} ORDER BY file, record"
            ))
            .map_err(sql)?;
        let id = |b: Vec<u8>| {
            let mut out = [0u8; 16];
            if b.len() == 16 {
                out.copy_from_slice(&b);
            }
            out
        };
        let rows = st
            .query_map(args, |r| {
                Ok(WorkRow {
                    file: id(r.get(0)?),
                    record: id(r.get(1)?),
                    kind: r.get(2)?,
                    version: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                    body: r.get(4)?,
                    base: r.get(5)?,
                    pending: r.get(6)?,
                    updated_ms: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// The stored roster events, in order.
    pub fn roster_events(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT event FROM roster ORDER BY seq")
            .map_err(sql)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Indexes a piece of text that is not a message (a file or document name, a note).
    pub fn index(&self, kind: &str, reference: &str, body: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO search (kind, ref, body) VALUES (?1, ?2, ?3)",
                params![kind, reference, body],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// Messages of a room in order.
    pub fn messages(&self, room: &[u8; 16]) -> Result<Vec<StoredMessage>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT seq, sender, event, created_ms FROM messages WHERE room = ?1 ORDER BY seq",
            )
            .map_err(sql)?;
        let rows = st
            .query_map(params![&room[..]], |r| {
                let sender: Vec<u8> = r.get(1)?;
                let mut s = [0u8; 16];
                if sender.len() == 16 {
                    s.copy_from_slice(&sender);
                }
                Ok(StoredMessage {
                    room: *room,
                    seq: r.get::<_, i64>(0)? as u64,
                    sender: s,
                    event: r.get(2)?,
                    created_ms: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Full-text search over the index, best matches first.
    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>, StoreError> {
        // Each word becomes a quoted prefix term, so user input is never FTS syntax.
        let terms: Vec<String> = query
            .split_whitespace()
            .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
            .collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn
            .prepare(
                "SELECT kind, ref, body FROM search WHERE search MATCH ?1 ORDER BY rank LIMIT ?2",
            )
            .map_err(sql)?;
        let rows = st
            .query_map(params![terms.join(" "), limit], |r| {
                Ok(SearchHit {
                    kind: r.get(0)?,
                    reference: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }
}

/// A mailbox this device reads (`migrations/0006_mail.sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRow {
    /// `user@host/folder`.
    pub label: String,
    /// The connection settings (JSON).
    pub config: String,
    /// The password, only when the OS has no keyring.
    pub secret: Option<String>,
    /// The folder's UIDVALIDITY when last read.
    pub uid_validity: Option<u32>,
    /// The highest UID read under it.
    pub last_uid: u32,
}

/// A message of the mail inbox (no rule placed it).
#[derive(Clone, PartialEq, Eq)]
pub struct InboxRow {
    /// Its digest.
    pub digest: [u8; 32],
    /// The mailbox it came from.
    pub mailbox: String,
    /// The raw message.
    pub raw: Vec<u8>,
    /// Why no customer file was found.
    pub reason: String,
    /// When it was read.
    pub at_ms: u64,
}

impl std::fmt::Debug for InboxRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A customer's mail never reaches a log line.
        f.debug_struct("InboxRow")
            .field("digest", &hex::encode(&self.digest[..8]))
            .field("len", &self.raw.len())
            .finish_non_exhaustive()
    }
}

/// Mail intake state (`migrations/0006_mail.sql`).
impl LocalStore {
    /// Adds or replaces a mailbox; a replaced one keeps where its reading stands.
    pub fn put_mailbox(
        &self,
        label: &str,
        config: &str,
        secret: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO mailboxes (label, config, secret) VALUES (?1, ?2, ?3)
                 ON CONFLICT (label) DO UPDATE SET config = ?2, secret = ?3",
                params![label, config, secret],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// The mailboxes, by label.
    pub fn mailboxes(&self) -> Result<Vec<MailboxRow>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT label, config, secret, uid_validity, last_uid FROM mailboxes ORDER BY label")
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| {
                Ok(MailboxRow {
                    label: r.get(0)?,
                    config: r.get(1)?,
                    secret: r.get(2)?,
                    uid_validity: r.get(3)?,
                    last_uid: r.get(4)?,
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Removes a mailbox (what it imported stays).
    pub fn forget_mailbox(&self, label: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM mailboxes WHERE label = ?1", params![label])
            .map(|n| n > 0)
            .map_err(sql)
    }

    /// Records where reading a mailbox stands.
    pub fn mailbox_read_to(
        &self,
        label: &str,
        uid_validity: u32,
        last_uid: u32,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE mailboxes SET uid_validity = ?2, last_uid = ?3 WHERE label = ?1",
                params![label, uid_validity, last_uid],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// Where a message went, if it was read before; and the attachments uploaded so far
    /// when its import is unfinished.
    pub fn mail_seen(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.conn
            .query_row(
                "SELECT placed, docs FROM mail_seen WHERE digest = ?1",
                params![&digest[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql)
    }

    /// Records where a message went (`docs`: attachments uploaded so far, while
    /// `placed` is `importing:…`).
    pub fn put_mail_seen(
        &self,
        digest: &[u8; 32],
        placed: &str,
        docs: Option<&str>,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO mail_seen (digest, placed, docs, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![&digest[..], placed, docs, at_ms as i64],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// Puts a message in the mail inbox.
    pub fn put_inbox(&self, row: &InboxRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO mail_inbox (digest, mailbox, raw, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&row.digest[..], row.mailbox, row.raw, row.reason, row.at_ms as i64],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// The mail inbox, oldest first.
    pub fn inbox(&self) -> Result<Vec<InboxRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT digest, mailbox, raw, reason, at_ms FROM mail_inbox ORDER BY at_ms, digest",
            )
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| {
                let d: Vec<u8> = r.get(0)?;
                let mut digest = [0u8; 32];
                if d.len() == 32 {
                    digest.copy_from_slice(&d);
                }
                Ok(InboxRow {
                    digest,
                    mailbox: r.get(1)?,
                    raw: r.get(2)?,
                    reason: r.get(3)?,
                    at_ms: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Takes a message out of the inbox.
    pub fn forget_inbox(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM mail_inbox WHERE digest = ?1",
                params![&digest[..]],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// Records a message that could not be read.
    pub fn put_mail_failed(
        &self,
        mailbox: &str,
        uid_validity: u32,
        uid: u32,
        reason: &str,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO mail_failed (mailbox, uid_validity, uid, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![mailbox, uid_validity, uid, reason, at_ms as i64],
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// Messages that could not be read: mailbox, UID, reason, newest first.
    pub fn mail_failed(&self) -> Result<Vec<(String, u32, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT mailbox, uid, reason FROM mail_failed ORDER BY at_ms DESC, uid DESC")
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }
}

/// One full-text search match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// What matched: `message`, `file`, `document`, `note`.
    pub kind: String,
    /// Where: `room:seq` for a message, the id otherwise.
    pub reference: String,
    /// The indexed text.
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, text: &str) -> StoredMessage {
        StoredMessage {
            room: [1; 16],
            seq,
            sender: [2; 16],
            event: format!("{{\"type\":\"text\",\"body\":\"{text}\"}}"),
            created_ms: seq,
        }
    }

    #[test]
    fn store_is_unreadable_without_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let key = StoreKey::from_bytes([7; 32]);
        {
            let mut s = LocalStore::open(&path, &key).unwrap();
            s.put_message(
                &msg(1, "Faktura korygująca dla Kowalskiego"),
                Some("Faktura korygująca dla Kowalskiego"),
            )
            .unwrap();
            s.put_state("device", "pickled-secret-state").unwrap();
        }
        assert!(matches!(
            LocalStore::open(&path, &StoreKey::from_bytes([8; 32])),
            Err(StoreError::WrongKey)
        ));
        // Neither the text nor the SQLite header is in the file.
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            for needle in [
                &b"Kowalskiego"[..],
                b"pickled-secret-state",
                b"SQLite format 3",
            ] {
                assert!(!bytes.windows(needle.len()).any(|w| w == needle));
            }
        }
        // Plain SQLite cannot read it either.
        let plain = Connection::open(&path).unwrap();
        assert!(plain
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r
                .get::<_, i64>(0))
            .is_err());
        let s = LocalStore::open(&path, &key).unwrap();
        assert_eq!(
            s.state("device").unwrap().as_deref(),
            Some("pickled-secret-state")
        );
    }

    #[test]
    fn messages_are_idempotent_and_searchable_in_polish() {
        let dir = tempfile::tempdir().unwrap();
        let mut s =
            LocalStore::open(&dir.path().join("s.db"), &StoreKey::from_bytes([1; 32])).unwrap();
        assert!(s
            .put_message(
                &msg(1, "Deklaracja VAT-7 za marzec"),
                Some("Deklaracja VAT-7 za marzec")
            )
            .unwrap());
        assert!(!s
            .put_message(
                &msg(1, "Deklaracja VAT-7 za marzec"),
                Some("Deklaracja VAT-7 za marzec")
            )
            .unwrap());
        s.put_message(&msg(2, "Zażółć gęślą jaźń"), Some("Zażółć gęślą jaźń"))
            .unwrap();
        assert_eq!(s.messages(&[1; 16]).unwrap().len(), 2);
        assert_eq!(
            s.search("deklar", 10).unwrap(),
            vec![SearchHit {
                kind: "message".to_owned(),
                reference: format!("{}:1", hex::encode([1u8; 16])),
                body: "Deklaracja VAT-7 za marzec".to_owned(),
            }]
        );
        // Diacritics folded: "gesla" finds "gęślą".
        assert_eq!(s.search("gesla", 10).unwrap().len(), 1);
        // Input that would be FTS syntax is treated as text.
        assert!(s.search("\" OR * NEAR(", 10).is_ok());
    }

    #[test]
    fn a_placeholder_is_filled_in_once_and_state_commits_with_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mut s =
            LocalStore::open(&dir.path().join("s.db"), &StoreKey::from_bytes([1; 32])).unwrap();
        let mut waiting = msg(3, "");
        waiting.event = String::new();
        let cursor = [("cursor".to_owned(), "4".to_owned())];
        assert_eq!(s.commit(&cursor, &[(waiting, None)]).unwrap(), 1);
        assert_eq!(s.state("cursor").unwrap().as_deref(), Some("4"));
        assert_eq!(s.messages(&[1; 16]).unwrap()[0].event, "");
        // The key arrives: the placeholder is filled in, keeping its relay time.
        let late = msg(3, "Spóźniony klucz");
        assert_eq!(
            s.commit(&[], &[(late.clone(), Some("Spóźniony klucz".into()))])
                .unwrap(),
            1
        );
        let stored = &s.messages(&[1; 16]).unwrap()[0];
        assert_eq!(
            (stored.event.as_str(), stored.created_ms),
            (late.event.as_str(), 3)
        );
        assert_eq!(s.search("spozniony", 5).unwrap().len(), 1);
        // Nothing overwrites a decrypted message, and a placeholder from another sender
        // does not take its place.
        let mut other = msg(3, "podmiana");
        other.event = "{\"type\":\"text\",\"body\":\"podmiana\"}".into();
        assert_eq!(
            s.commit(&[], &[(other, Some("podmiana".into()))]).unwrap(),
            0
        );
        assert!(s.search("podmiana", 5).unwrap().is_empty());
    }

    #[test]
    fn the_roster_is_appended_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let mut s = LocalStore::open(&path, &StoreKey::from_bytes([1; 32])).unwrap();
            s.commit_with_roster(&[], &[], &[(0, b"genesis".to_vec()), (1, b"one".to_vec())])
                .unwrap();
            // Events already stored stay as they are; new ones are appended.
            s.commit_with_roster(&[], &[], &[(1, b"other".to_vec()), (2, b"two".to_vec())])
                .unwrap();
        }
        let s = LocalStore::open(&path, &StoreKey::from_bytes([1; 32])).unwrap();
        assert_eq!(
            s.roster_events().unwrap(),
            vec![b"genesis".to_vec(), b"one".to_vec(), b"two".to_vec()]
        );
    }

    #[test]
    fn passphrase_keys_are_deterministic_per_salt() {
        let a = StoreKey::from_passphrase("hasło do biura", &[1; 16]).unwrap();
        let b = StoreKey::from_passphrase("hasło do biura", &[1; 16]).unwrap();
        let c = StoreKey::from_passphrase("hasło do biura", &[2; 16]).unwrap();
        assert_eq!(a.0.as_ref(), b.0.as_ref());
        assert_ne!(a.0.as_ref(), c.0.as_ref());
        assert_eq!(format!("{a:?}"), "StoreKey([redacted])");
    }
}
