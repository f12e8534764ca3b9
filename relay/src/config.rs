//! Relay configuration: defaults, then a TOML file, then `LEDGERLINE_*` environment
//! variables and command-line flags (the last two through clap, flags winning).

use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Every setting of the relay, after merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory holding `relay.sqlite3` and `blobs/`.
    pub data_dir: PathBuf,
    /// PEM certificate chain; TLS is on when both this and `tls_key` are set.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Largest request body of a JSON route, in bytes.
    pub max_body_bytes: usize,
    /// Largest document (ciphertext) upload, in bytes.
    pub max_document_bytes: u64,
    /// Accepted clock difference of signed requests, in milliseconds.
    pub max_skew_ms: u64,
    /// Time allowed to read request headers, in milliseconds.
    pub header_timeout_ms: u64,
    /// Time allowed to read a request body, in milliseconds.
    pub body_timeout_ms: u64,
    /// Sustained requests per second allowed per device.
    pub rate_per_second: u32,
    /// Burst of requests allowed per device.
    pub rate_burst: u32,
    /// Whether anyone may create a firm (genesis) on this relay.
    pub open_registration: bool,
    /// Longest page returned by list endpoints.
    pub max_page: u32,
    /// `tracing` filter, e.g. `info` or `ledgerline_relay=debug`.
    pub log: String,
    /// The relay's public name (host name, no scheme); firm logs are named
    /// `<log_name>/ledgerline/firm/<firm id>`. Clients pin it: do not change it once firms
    /// exist.
    pub log_name: String,
    /// Seconds between retention sweeps (`protocol-spec/retention.md`); the first runs at
    /// start.
    pub retention_sweep_secs: u64,
    /// Added to the system clock, in milliseconds. For tests that move time (retention
    /// expiry); leave 0 in production: the relay warns at start when it is not.
    pub clock_offset_ms: i64,
    /// PostgreSQL instead of the embedded SQLite (`protocol-spec/scale-out.md`); blobs and
    /// the log secret stay under `data_dir`.
    pub database_url: Option<Secret>,
    /// Most PostgreSQL connections this relay keeps.
    pub database_pool: u32,
    /// PEM certificates of the CA that signed the PostgreSQL server's certificate, trusted
    /// beside the system's roots.
    pub database_ca: Option<PathBuf>,
    /// Document blobs in this S3-compatible bucket instead of `data_dir/blobs`
    /// (`protocol-spec/scale-out.md`).
    pub s3_bucket: Option<String>,
    /// The S3 service's URL; unset: AWS itself. Plain `http://` only on loopback.
    pub s3_endpoint: Option<String>,
    /// The bucket's region.
    pub s3_region: String,
    /// Access key id; unset: the usual AWS sources (`AWS_*` variables, instance metadata).
    pub s3_access_key_id: Option<String>,
    /// Secret access key; never printed.
    pub s3_secret_access_key: Option<Secret>,
}

/// A secret setting: a PostgreSQL connection string (it may hold a password) or the S3
/// secret key. It is never printed (`Debug` shows only that it is set) and its bytes are
/// zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The string, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8448)),
            data_dir: PathBuf::from("ledgerline-data"),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: 4 << 20,
            max_document_bytes: 512 << 20,
            max_skew_ms: ledgerline_protocol::request::DEFAULT_MAX_SKEW_MS,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            rate_per_second: 200,
            rate_burst: 400,
            open_registration: true,
            max_page: 500,
            log: "info".into(),
            log_name: "ledgerline.localhost".into(),
            retention_sweep_secs: 3600,
            clock_offset_ms: 0,
            database_url: None,
            database_pool: 16,
            database_ca: None,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
        }
    }
}

/// The TOML file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    max_document_bytes: Option<u64>,
    max_skew_ms: Option<u64>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    rate_per_second: Option<u32>,
    rate_burst: Option<u32>,
    open_registration: Option<bool>,
    max_page: Option<u32>,
    log: Option<String>,
    log_name: Option<String>,
    retention_sweep_secs: Option<u64>,
    clock_offset_ms: Option<i64>,
    database_url: Option<String>,
    database_pool: Option<u32>,
    database_ca: Option<PathBuf>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
}

/// Flags of `ledgerline-relay serve`; each also reads a `LEDGERLINE_*` variable.
#[derive(Debug, Default, Clone, Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys as the long flags, with underscores).
    #[arg(long, env = "LEDGERLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8448].
    #[arg(long, env = "LEDGERLINE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory: SQLite database and blob store [default: ./ledgerline-data].
    #[arg(long = "data", env = "LEDGERLINE_DATA", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PEM certificate chain; enables TLS together with --tls-key.
    #[arg(long, env = "LEDGERLINE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, env = "LEDGERLINE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Largest JSON request body in bytes [default: 4194304].
    #[arg(long, env = "LEDGERLINE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest document upload in bytes [default: 536870912].
    #[arg(long, env = "LEDGERLINE_MAX_DOCUMENT_BYTES", value_name = "BYTES")]
    pub max_document_bytes: Option<u64>,
    /// Accepted clock skew of signed requests in ms [default: 300000].
    #[arg(long, env = "LEDGERLINE_MAX_SKEW_MS", value_name = "MS")]
    pub max_skew_ms: Option<u64>,
    /// Time to read request headers in ms [default: 10000].
    #[arg(long, env = "LEDGERLINE_HEADER_TIMEOUT_MS", value_name = "MS")]
    pub header_timeout_ms: Option<u64>,
    /// Time to read a request body in ms [default: 30000].
    #[arg(long, env = "LEDGERLINE_BODY_TIMEOUT_MS", value_name = "MS")]
    pub body_timeout_ms: Option<u64>,
    /// Requests per second per device [default: 200].
    #[arg(long, env = "LEDGERLINE_RATE_PER_SECOND", value_name = "N")]
    pub rate_per_second: Option<u32>,
    /// Request burst per device [default: 400].
    #[arg(long, env = "LEDGERLINE_RATE_BURST", value_name = "N")]
    pub rate_burst: Option<u32>,
    /// Whether anyone may create a firm on this relay [default: true].
    #[arg(long, env = "LEDGERLINE_OPEN_REGISTRATION", value_name = "BOOL")]
    pub open_registration: Option<bool>,
    /// Longest page of list endpoints [default: 500].
    #[arg(long, env = "LEDGERLINE_MAX_PAGE", value_name = "N")]
    pub max_page: Option<u32>,
    /// Log filter (tracing EnvFilter syntax) [default: info].
    #[arg(long, env = "LEDGERLINE_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Public name of this relay, naming the firms' audit logs; keep it once firms exist
    /// [default: ledgerline.localhost].
    #[arg(long, env = "LEDGERLINE_LOG_NAME", value_name = "NAME")]
    pub log_name: Option<String>,
    /// Seconds between retention sweeps; the first runs at start [default: 3600].
    #[arg(long, env = "LEDGERLINE_RETENTION_SWEEP_SECS", value_name = "SECS")]
    pub retention_sweep_secs: Option<u64>,
    /// Milliseconds added to the system clock, for tests that move time; never in
    /// production [default: 0].
    #[arg(
        long,
        env = "LEDGERLINE_CLOCK_OFFSET_MS",
        value_name = "MS",
        allow_hyphen_values = true
    )]
    pub clock_offset_ms: Option<i64>,
    /// PostgreSQL connection string (`postgres://user:password@host/db`) instead of the
    /// embedded SQLite; never printed [default: SQLite in the data directory].
    #[arg(
        long,
        env = "LEDGERLINE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Most PostgreSQL connections kept [default: 16].
    #[arg(long, env = "LEDGERLINE_DATABASE_POOL", value_name = "N")]
    pub database_pool: Option<u32>,
    /// PEM file of the CA that signed the PostgreSQL server's certificate (beside the
    /// system's roots; TLS is required for a server that is not on this machine).
    #[arg(long, env = "LEDGERLINE_DATABASE_CA", value_name = "FILE")]
    pub database_ca: Option<PathBuf>,
    /// Where document blobs go.
    #[command(flatten)]
    pub s3: S3Args,
}

/// The S3-compatible bucket for document blobs (`serve`, `migrate`).
#[derive(Debug, Default, Clone, Args)]
pub struct S3Args {
    /// Keep document blobs in this S3-compatible bucket [default: the data directory's
    /// blobs/].
    #[arg(long, env = "LEDGERLINE_S3_BUCKET", value_name = "NAME")]
    pub s3_bucket: Option<String>,
    /// The S3 service's URL (plain http only on loopback) [default: AWS].
    #[arg(long, env = "LEDGERLINE_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The bucket's region [default: us-east-1].
    #[arg(long, env = "LEDGERLINE_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id [default: the AWS_* variables or instance metadata].
    #[arg(long, env = "LEDGERLINE_S3_ACCESS_KEY_ID", value_name = "ID")]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key; never printed (prefer the environment variable).
    #[arg(
        long,
        env = "LEDGERLINE_S3_SECRET_ACCESS_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this relay.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Values that contradict each other.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServeArgs {
    /// Defaults, overridden by the file, overridden by environment and flags.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let c = Config {
            listen: self.listen.or(file.listen).unwrap_or(d.listen),
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or(d.data_dir),
            tls_cert: self.tls_cert.clone().or(file.tls_cert),
            tls_key: self.tls_key.clone().or(file.tls_key),
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(d.max_body_bytes),
            max_document_bytes: self
                .max_document_bytes
                .or(file.max_document_bytes)
                .unwrap_or(d.max_document_bytes),
            max_skew_ms: self
                .max_skew_ms
                .or(file.max_skew_ms)
                .unwrap_or(d.max_skew_ms),
            header_timeout_ms: self
                .header_timeout_ms
                .or(file.header_timeout_ms)
                .unwrap_or(d.header_timeout_ms),
            body_timeout_ms: self
                .body_timeout_ms
                .or(file.body_timeout_ms)
                .unwrap_or(d.body_timeout_ms),
            rate_per_second: self
                .rate_per_second
                .or(file.rate_per_second)
                .unwrap_or(d.rate_per_second),
            rate_burst: self.rate_burst.or(file.rate_burst).unwrap_or(d.rate_burst),
            open_registration: self
                .open_registration
                .or(file.open_registration)
                .unwrap_or(d.open_registration),
            max_page: self.max_page.or(file.max_page).unwrap_or(d.max_page),
            log: self.log.clone().or(file.log).unwrap_or(d.log),
            log_name: self
                .log_name
                .clone()
                .or(file.log_name)
                .unwrap_or(d.log_name),
            retention_sweep_secs: self
                .retention_sweep_secs
                .or(file.retention_sweep_secs)
                .unwrap_or(d.retention_sweep_secs),
            clock_offset_ms: self
                .clock_offset_ms
                .or(file.clock_offset_ms)
                .unwrap_or(d.clock_offset_ms),
            database_url: self
                .database_url
                .clone()
                .or(file.database_url)
                .filter(|u| !u.is_empty())
                .map(Secret),
            database_pool: self
                .database_pool
                .or(file.database_pool)
                .unwrap_or(d.database_pool),
            database_ca: self.database_ca.clone().or(file.database_ca),
            s3_bucket: self
                .s3
                .s3_bucket
                .clone()
                .or(file.s3_bucket)
                .filter(|b| !b.is_empty()),
            s3_endpoint: self
                .s3
                .s3_endpoint
                .clone()
                .or(file.s3_endpoint)
                .filter(|e| !e.is_empty()),
            s3_region: self
                .s3
                .s3_region
                .clone()
                .or(file.s3_region)
                .unwrap_or(d.s3_region),
            s3_access_key_id: self.s3.s3_access_key_id.clone().or(file.s3_access_key_id),
            s3_secret_access_key: self
                .s3
                .s3_secret_access_key
                .clone()
                .or(file.s3_secret_access_key)
                .map(Secret),
        };
        c.validate()?;
        Ok(c)
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

impl Config {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key must be set together".into(),
            ));
        }
        if self.max_body_bytes < 1024
            || self.max_page == 0
            || self.rate_per_second == 0
            || self.rate_burst == 0
        {
            return Err(ConfigError::Invalid(
                "max_body_bytes >= 1024, max_page, rate_per_second and rate_burst > 0 required"
                    .into(),
            ));
        }
        let most = ledgerline_protocol::history::PAGE_MESSAGES_MAX;
        if self.max_page as usize > most {
            // A longer page is not a history page any client may accept.
            return Err(ConfigError::Invalid(format!(
                "max_page is at most {most} (messages per history page)"
            )));
        }
        if self.header_timeout_ms == 0 || self.body_timeout_ms == 0 {
            return Err(ConfigError::Invalid("timeouts must be positive".into()));
        }
        if self.retention_sweep_secs == 0 {
            return Err(ConfigError::Invalid(
                "retention_sweep_secs must be positive".into(),
            ));
        }
        if let Some(url) = &self.database_url {
            // The driver's own parser; its message names the problem, never the string.
            if let Err(e) = url.expose().parse::<tokio_postgres::Config>() {
                return Err(ConfigError::Invalid(format!(
                    "database_url is not a PostgreSQL connection string: {e}"
                )));
            }
        }
        if self.database_ca.is_some() && self.database_url.is_none() {
            return Err(ConfigError::Invalid(
                "database_ca needs database_url".into(),
            ));
        }
        if self.s3_bucket.is_none()
            && (self.s3_endpoint.is_some()
                || self.s3_access_key_id.is_some()
                || self.s3_secret_access_key.is_some())
        {
            return Err(ConfigError::Invalid(
                "s3_endpoint and the S3 keys need s3_bucket".into(),
            ));
        }
        if self.s3_access_key_id.is_some() != self.s3_secret_access_key.is_some() {
            return Err(ConfigError::Invalid(
                "s3_access_key_id and s3_secret_access_key must be set together".into(),
            ));
        }
        if let Some(endpoint) = &self.s3_endpoint {
            crate::blobs::check_endpoint(endpoint).map_err(ConfigError::Invalid)?;
        }
        if self.database_pool == 0 {
            return Err(ConfigError::Invalid(
                "database_pool must be positive".into(),
            ));
        }
        let origin = self.log_origin(ledgerline_protocol::ids::FirmId([0; 16]));
        if ledgerline_protocol::checkpoint::Checkpoint::new(&origin, 0, [0; 32]).is_err() {
            return Err(ConfigError::Invalid(
                "log_name must be a host name: no spaces, '+' or control characters, at most 200 bytes"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The origin (name) of a firm's audit log.
    pub fn log_origin(&self, firm: ledgerline_protocol::ids::FirmId) -> String {
        format!("{}/ledgerline/firm/{}", self.log_name, firm.to_hex())
    }

    /// File holding the secret the firms' log keys derive from.
    pub fn log_secret_path(&self) -> PathBuf {
        self.data_dir.join("log-key.secret")
    }

    /// Path of the SQLite database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("relay.sqlite3")
    }

    /// Directory of document blobs.
    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_longer_than_clients_accept_is_refused() {
        let most = ledgerline_protocol::history::PAGE_MESSAGES_MAX as u32;
        let with = |max_page| Config {
            max_page,
            ..Config::default()
        };
        assert!(with(most).validate().is_ok());
        let e = with(most + 1).validate().unwrap_err();
        assert!(e.to_string().contains("max_page"), "{e}");
    }

    #[test]
    fn secrets_are_never_printed() {
        let url = Secret::from("postgres://relay:hunter2@db.biuro/ledgerline".to_owned());
        assert_eq!(format!("{url:?}"), "Secret(<hidden>)");
        assert_eq!(url.expose(), "postgres://relay:hunter2@db.biuro/ledgerline");
        let c = Config {
            database_url: Some(url),
            s3_secret_access_key: Some(Secret::from("wJalrXUtnFEMI-s3-secret".to_owned())),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3-secret"),
            "{shown}"
        );
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nmax_page = 7\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            max_page: Some(9),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.max_page, 9);
        assert_eq!(c.max_skew_ms, 300_000);

        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nunknown_key = 1\n").unwrap();
        assert!(matches!(args.resolve(), Err(ConfigError::Parse { .. })));
        let half_tls = ServeArgs {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(matches!(half_tls.resolve(), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn a_database_url_is_read_checked_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://relay:s3cret@db.example/ledgerline\"\ndatabase_pool = 4\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(
            c.database_url.as_ref().map(Secret::expose),
            Some("postgres://relay:s3cret@db.example/ledgerline")
        );
        assert_eq!(c.database_pool, 4);
        assert!(!format!("{c:?}").contains("s3cret"));
        let bad = ServeArgs {
            database_url: Some("postgres://relay:s3cret@[db/x".into()),
            ..Default::default()
        };
        let e = bad.resolve().unwrap_err().to_string();
        assert!(e.contains("database_url") && !e.contains("s3cret"), "{e}");
        assert_eq!(ServeArgs::default().resolve().unwrap().database_url, None);
    }
}
