//! The PostgreSQL engine under [`SqlStore`], for providers that run several relay
//! instances against one database (`protocol-spec/scale-out.md`).
//!
//! - Driver and pool: `tokio-postgres` with `deadpool-postgres`; statements are prepared
//!   once per connection and every value is a bound parameter.
//! - The shared rules ([`super::sql`]) are synchronous: a write takes a pooled connection,
//!   runs on Tokio's blocking threads and drives the async driver from there.
//! - Order: a write opens a transaction and first takes `pg_advisory_xact_lock` on its
//!   scope (the firm, or an invite). Writes of one firm therefore run one after another
//!   across all instances, and each sees every earlier commit of its firm (READ COMMITTED
//!   takes a fresh snapshot per statement). That is what keeps a firm's audit log one
//!   sequence without gaps or duplicate indexes, rooms' message numbers dense and record
//!   versions checked. Writes of different firms run in parallel.
//! - Transport: TLS by rustls whenever the server is not on this machine (or the URL
//!   asks for it), verified against the system's roots and `database_ca`.
//! - Durability: a write is acknowledged after its `COMMIT` returned (PostgreSQL flushes
//!   its WAL at commit, and groups concurrent commits itself).
//! - Schema: numbered migrations in `relay/migrations/postgres/`, applied at start under
//!   an advisory lock so that instances starting together migrate once.

use super::sql::{self, Db, Engine, SqlStore, Val};
use super::*;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::sync::Arc;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// Schema migrations, applied in order; `ledgerline_schema` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_document_blob.sql"),
];

/// The advisory lock key that serializes migrations ("ledgerli" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c65_6467_6572_6c69;

/// PostgreSQL storage: the shared rules over a pooled PostgreSQL database.
pub type PgStore = SqlStore<PgEngine>;

/// The PostgreSQL engine: a connection pool.
pub struct PgEngine {
    pool: Pool,
}

impl std::fmt::Debug for PgEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgEngine")
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/db`
    /// or libpq's `key=value` form), keeping at most `max_connections`, and applies
    /// pending migrations. The URL is never echoed in an error (it may hold a password).
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        Self::connect_with(url, max_connections, None).await
    }

    /// [`PgStore::connect`], trusting `ca` (PEM) beside the system's roots for TLS.
    pub async fn connect_with(
        url: &str,
        max_connections: usize,
        ca: Option<&std::path::Path>,
    ) -> Result<Self, StoreError> {
        let (config, tls) = connection_config(url, ca)?;
        let recycling = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            PgTls::Plain => Manager::from_config(config, tokio_postgres::NoTls, recycling),
            PgTls::Rustls(tls) => Manager::from_config(config, tls, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .build()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL pool: {e}")))?;
        migrate(&pool).await?;
        Ok(SqlStore::new(PgEngine { pool }))
    }
}

/// How connections to PostgreSQL are protected.
#[derive(Clone)]
pub enum PgTls {
    /// No TLS: a server on this machine (loopback, Unix socket), or `sslmode=disable`.
    Plain,
    /// TLS by rustls, the server's certificate checked against the system's roots and the
    /// configured CA.
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain => "PgTls::Plain",
            Self::Rustls(_) => "PgTls::Rustls",
        })
    }
}

impl PgTls {
    /// Opens one connection outside the pool and drives it on a task of its own; the
    /// server's notifications go to `notes` (for `LISTEN`). Errors never echo the URL.
    pub async fn connect(
        &self,
        config: &tokio_postgres::Config,
        notes: Option<tokio::sync::mpsc::Sender<String>>,
    ) -> Result<tokio_postgres::Client, String> {
        match self {
            Self::Plain => drive(config, tokio_postgres::NoTls, notes).await,
            Self::Rustls(tls) => drive(config, tls.clone(), notes).await,
        }
    }
}

async fn drive<T>(
    config: &tokio_postgres::Config,
    tls: T,
    notes: Option<tokio::sync::mpsc::Sender<String>>,
) -> Result<tokio_postgres::Client, String>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await.map_err(|e| pg_text(&e))?;
    tokio::spawn(async move {
        use tokio_postgres::AsyncMessage;
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some(notes) = &notes {
                        if notes.send(n.payload().to_owned()).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %pg_text(&e), "a PostgreSQL connection failed");
                    break;
                }
                None => break,
            }
        }
    });
    Ok(client)
}

/// The settings of one connection to the database at `url`, with a connect timeout, and
/// how it is protected:
/// - `sslmode=disable`: no TLS (the operator's statement that the link is private);
/// - a server on this machine (loopback, Unix socket) without `sslmode=require` and
///   without a CA file: no TLS, as libpq's `prefer` would end up with a self-signed
///   certificate;
/// - anything else: TLS required, the server's certificate verified against the system's
///   roots and `ca` (never `prefer`'s silent fallback to plaintext across a network).
///
/// Errors never echo the URL.
pub fn connection_config(
    url: &str,
    ca: Option<&std::path::Path>,
) -> Result<(tokio_postgres::Config, PgTls), StoreError> {
    use tokio_postgres::config::SslMode;
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        StoreError::Backend(format!("the PostgreSQL URL is not valid: {}", pg_text(&e)))
    })?;
    if config.get_connect_timeout().is_none() {
        // An unreachable server is an error within seconds, not a hang.
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let mode = config.get_ssl_mode();
    let tls = if mode == SslMode::Disable
        || (on_this_machine(&config) && mode != SslMode::Require && ca.is_none())
    {
        PgTls::Plain
    } else {
        config.ssl_mode(SslMode::Require);
        let client =
            ledgerline_tls::client_config(ca, "database_ca").map_err(StoreError::Backend)?;
        PgTls::Rustls(tokio_postgres_rustls::MakeRustlsConnect::new(
            (*client).clone(),
        ))
    };
    Ok((config, tls))
}

/// Whether every host the configuration names is this machine.
fn on_this_machine(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    let local = |h: &Host| match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    };
    config.get_hostaddrs().iter().all(|ip| ip.is_loopback()) && config.get_hosts().iter().all(local)
}

/// Applies pending migrations in one transaction, one instance at a time.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS ledgerline_schema (version BIGINT NOT NULL)")
        .await
        .map_err(pg_error)?;
    let applied: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM ledgerline_schema",
            &[],
        )
        .await
        .map_err(pg_error)?
        .try_get(0)
        .map_err(pg_error)?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "database schema version {applied} is newer than this relay ({}); upgrade the relay",
            MIGRATIONS.len()
        )));
    }
    for (n, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.batch_execute(migration).await.map_err(pg_error)?;
        let version = i64::try_from(n + 1).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO ledgerline_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)
}

/// An error's words without values: PostgreSQL's DETAIL may quote a row's ids or bytes.
pub(crate) fn pg_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => {
            // The causes too ("error performing TLS handshake" alone does not say why);
            // they are the driver's and the TLS library's words, never the URL.
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            text
        }
    }
}

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Exists,
        Some(c) if *c == SqlState::DISK_FULL => StoreError::Full,
        _ => StoreError::Backend(format!("PostgreSQL: {}", pg_text(&e))),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        e => StoreError::Backend(format!("PostgreSQL pool: {e}")),
    }
}

/// `?N` placeholders (the shared dialect) as PostgreSQL's `$N`.
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

/// The advisory lock key of a write scope (the ids are random or hashes: any 8 bytes do).
fn lock_key(scope: &[u8; 16]) -> i64 {
    let mut k = [0u8; 8];
    for (n, b) in scope.iter().enumerate() {
        if let Some(slot) = k.get_mut(n % 8) {
            *slot ^= b;
        }
    }
    i64::from_be_bytes(k)
}

/// A pooled connection used from a blocking thread.
pub struct PgConn {
    client: Object,
    rt: tokio::runtime::Handle,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgConn")
    }
}

impl PgConn {
    fn simple(&self, sql: &str) -> Result<(), StoreError> {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .map_err(pg_error)
    }
}

fn refs<'a>(params: &'a [Val<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Db for PgConn {
    type Row<'r> = tokio_postgres::Row;

    fn exec(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, StoreError> {
        let sql = dollars(sql);
        self.rt
            .block_on(async {
                let st = self.client.prepare_cached(&sql).await?;
                self.client.execute(&st, &refs(params)).await
            })
            .map_err(pg_error)
    }

    fn each(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&tokio_postgres::Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = dollars(sql);
        let rows = self
            .rt
            .block_on(async {
                let st = self.client.prepare_cached(&sql).await?;
                self.client.query(&st, &refs(params)).await
            })
            .map_err(pg_error)?;
        for r in &rows {
            f(r)?;
        }
        Ok(())
    }
}

impl sql::Row for tokio_postgres::Row {
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        let ty = self
            .columns()
            .get(i)
            .map(|c| c.type_().clone())
            .ok_or_else(|| StoreError::Backend(format!("no column {i}")))?;
        let wrong = |e: tokio_postgres::Error| StoreError::Backend(format!("column {i}: {e}"));
        if ty == Type::INT4 {
            Ok(self
                .try_get::<_, Option<i32>>(i)
                .map_err(wrong)?
                .map(i64::from))
        } else if ty == Type::INT2 {
            Ok(self
                .try_get::<_, Option<i16>>(i)
                .map_err(wrong)?
                .map(i64::from))
        } else {
            self.try_get(i).map_err(wrong)
        }
    }

    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.try_get(i)
            .map_err(|e| StoreError::Backend(format!("column {i}: {e}")))
    }
}

impl ToSql for Val<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Val::Int(v) if *ty == Type::INT8 => v.to_sql(ty, out),
            Val::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Val::Int(v) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            Val::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            Val::Null => Ok(IsNull::Yes),
            _ => Err(format!("a value of the wrong kind for a {ty} parameter").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Engine for PgEngine {
    type Conn = PgConn;

    const SHARED: bool = true;

    async fn write<T, F>(self: Arc<Self>, scope: [u8; 16], f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&PgConn) -> Result<T, StoreError> + Send + 'static,
    {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let conn = PgConn { client, rt };
            conn.simple("BEGIN")?;
            let out = conn
                .exec(
                    "SELECT pg_advisory_xact_lock(?1)",
                    &[Val::Int(lock_key(&scope))],
                )
                .and_then(|_| f(&conn));
            let ended = match out {
                Ok(_) => conn.simple("COMMIT"),
                Err(_) => conn.simple("ROLLBACK"),
            };
            if ended.is_err() {
                // A connection whose transaction state is unknown never goes back to the pool.
                drop(Object::take(conn.client));
            }
            let value = out?;
            ended?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a PostgreSQL write stopped: {e}")))?
    }

    async fn read<T, F>(self: Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&PgConn) -> Result<T, StoreError> + Send + 'static,
    {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || f(&PgConn { client, rt }))
            .await
            .map_err(|e| StoreError::Backend(format!("a PostgreSQL read stopped: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerline_testkit::postgres::Postgres;

    /// A fresh cluster per test (nextest runs each test in its own process).
    pub(crate) async fn make() -> (PgStore, (Postgres, tempfile::TempDir)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = tokio::task::spawn_blocking({
            let path = dir.path().to_owned();
            move || Postgres::start(&path)
        })
        .await
        .expect("postgres");
        let store = PgStore::connect(&pg.url(), 8).await.expect("connect");
        (store, (pg, dir))
    }

    crate::store_conformance_tests!(make());

    /// Two stores on one database stand for two relay instances: concurrent writes of one
    /// firm from both keep its audit log one sequence (no gap, no index twice, every
    /// entry once, the tree hashes those of the leaves in order) and its room numbers
    /// dense.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_keep_one_gap_free_log() {
        use ledgerline_protocol::merkle;
        let (a, guard) = make().await;
        let b = PgStore::connect(&guard.0.url(), 8).await.expect("second");
        let firm = FirmId([7; 16]);
        a.create_firm(firm, vec![b"genesis".to_vec()], 1)
            .await
            .expect("firm");
        let room = Room {
            id: [8; 16],
            file: None,
            created_by: MemberId([9; 16]),
            members: vec![],
        };
        a.create_room(firm, room, b"room".to_vec())
            .await
            .expect("room");
        let mut tasks = Vec::new();
        for n in 0..200u32 {
            let s = if n % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let entry = format!("entry {n}").into_bytes();
                if n % 4 < 2 {
                    let seq = s
                        .append_message(firm, [8; 16], DeviceId([1; 16]), vec![1], 1, entry)
                        .await
                        .expect("message");
                    (Some(seq), None)
                } else {
                    let idx = s.append_audit_leaf(firm, entry).await.expect("leaf");
                    (None, Some(idx))
                }
            }));
        }
        let (mut seqs, mut indexes) = (Vec::new(), Vec::new());
        for t in tasks {
            let (seq, idx) = t.await.expect("task");
            seqs.extend(seq);
            indexes.extend(idx);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=100).collect::<Vec<u64>>(), "dense room numbers");
        let size = b.audit_size(firm).await.expect("size");
        assert_eq!(size, 201, "the room's entry and 200 more");
        let leaves = a.audit_leaves(firm, 0, 500).await.expect("leaves");
        assert_eq!(leaves.len(), 201);
        let mut entries: Vec<_> = leaves.iter().skip(1).cloned().collect();
        entries.sort();
        entries.dedup();
        assert_eq!(entries.len(), 200, "every entry exactly once");
        for idx in indexes {
            assert!(idx < size);
        }
        let hashes: Vec<_> = leaves.iter().map(|l| merkle::leaf_hash(l)).collect();
        assert_eq!(
            a.audit_root(firm, size).await.expect("root"),
            merkle::root(&hashes),
            "tree hashes from both instances agree with the leaves"
        );
        assert_eq!(
            b.audit_root(firm, size).await.expect("root"),
            merkle::root(&hashes)
        );
    }

    #[tokio::test]
    async fn reconnecting_keeps_data_and_refuses_a_newer_schema() {
        let (a, guard) = make().await;
        a.create_firm(FirmId([1; 16]), vec![b"g".to_vec()], 1)
            .await
            .expect("firm");
        drop(a);
        let url = guard.0.url();
        let b = PgStore::connect(&url, 2).await.expect("again");
        assert_eq!(b.firms().await.expect("firms"), vec![FirmId([1; 16])]);
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("raw");
        tokio::spawn(connection);
        client
            .execute("INSERT INTO ledgerline_schema (version) VALUES (99)", &[])
            .await
            .expect("bump");
        let refused = PgStore::connect(&url, 2).await;
        assert!(
            matches!(&refused, Err(StoreError::Backend(m)) if m.contains("newer")),
            "{refused:?}"
        );
    }

    #[test]
    fn tls_is_required_off_this_machine_unless_the_url_says_disable() {
        use tokio_postgres::config::SslMode;
        let tls = |url: &str| connection_config(url, None).expect(url);
        for remote in [
            "postgres://relay:s3cret@db.example.com/ledgerline",
            "postgres://relay@10.0.0.5/ledgerline?sslmode=prefer",
            "postgres://relay@127.0.0.1/ledgerline?sslmode=require",
        ] {
            let (config, t) = tls(remote);
            assert!(matches!(t, PgTls::Rustls(_)), "{remote}");
            assert_eq!(config.get_ssl_mode(), SslMode::Require, "{remote}");
        }
        for plain in [
            "postgres://relay@10.0.0.5/ledgerline?sslmode=disable",
            "postgres://relay@127.0.0.1/db",
            "postgres://relay@localhost:5433/db",
            "postgres://relay@[::1]/db",
            "host=/run/postgresql user=relay dbname=db",
        ] {
            assert!(matches!(tls(plain).1, PgTls::Plain), "{plain}");
        }
        let missing = connection_config(
            "postgres://relay:s3cret@db.example.com/x",
            Some(std::path::Path::new("/nonexistent/ca.pem")),
        );
        let Err(StoreError::Backend(m)) = missing else {
            panic!("a missing CA file was accepted");
        };
        assert!(m.contains("database_ca") && !m.contains("s3cret"), "{m}");
    }

    /// A server with TLS (a throwaway CA): reached and used over TLS with the CA, refused
    /// without it (its certificate is not among the system's roots).
    #[tokio::test]
    async fn a_tls_server_is_reached_with_its_ca_and_refused_without() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = tokio::task::spawn_blocking({
            let path = dir.path().to_owned();
            move || Postgres::start_tls(&path)
        })
        .await
        .expect("postgres");
        let ca = pg.ca.clone().expect("ca");
        let url = format!("{}?sslmode=require", pg.url());
        let refused = PgStore::connect(&url, 1).await;
        let Err(StoreError::Backend(m)) = refused else {
            panic!("a certificate of an unknown CA was accepted");
        };
        assert!(m.to_lowercase().contains("certificate"), "{m}");
        let store = PgStore::connect_with(&url, 2, Some(&ca))
            .await
            .expect("connect over TLS");
        store
            .create_firm(FirmId([3; 16]), vec![b"g".to_vec()], 1)
            .await
            .expect("firm");
        let (config, tls) = connection_config(&url, Some(&ca)).expect("config");
        let client = tls.connect(&config, None).await.expect("connect");
        let row = client
            .query_one(
                "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_ssl");
        assert!(row.get::<_, bool>(0), "the connection is encrypted");
        let version: String = row.get(1);
        assert!(version.starts_with("TLSv1."), "{version}");
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_without_echoing_it() {
        let refused = PgStore::connect("postgres://user:s3cret@[not-a-host/db", 1).await;
        let Err(StoreError::Backend(m)) = refused else {
            panic!("accepted");
        };
        assert!(!m.contains("s3cret"), "{m}");
    }
}
