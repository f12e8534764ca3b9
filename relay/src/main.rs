//! `ledgerline-relay`: command-line entry point. Parsing and wiring only.

use clap::{Parser, Subcommand};
use ledgerline_relay::config::ServeArgs;
use ledgerline_relay::server::Opened;
use ledgerline_relay::state::AppState;
use ledgerline_relay::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

/// Ledgerline's blind relay: stores only ciphertext, wrapped keys and signed audit entries;
/// routes and enforces the firm roster; never decrypts.
#[derive(Debug, Parser)]
#[command(name = "ledgerline-relay", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay (embedded SQLite, or PostgreSQL with --database-url; blobs under --data).
    Serve(Box<ServeArgs>),
    /// Back up the data directory into a new directory, while the relay serves
    /// (a consistent database snapshot, the blobs it names, the log key).
    Backup {
        #[command(flatten)]
        data: DataArgs,
        /// Where the backup goes (absent or empty; made owner-only).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Restore a backup as a new data directory (checked first; never over existing data).
    /// Start the relay on it afterwards.
    Restore {
        #[command(flatten)]
        data: DataArgs,
        /// The backup directory.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Move the relay's database from the embedded SQLite to an empty PostgreSQL database
    /// (stop the relay first). Blobs and the log key stay in the data directory. Checked
    /// by a count per table and each firm's audit-log root; then serve with
    /// --database-url.
    Migrate {
        #[command(flatten)]
        data: DataArgs,
        /// The PostgreSQL database to move into [default: the configuration's
        /// database_url]; never printed.
        #[arg(
            long,
            env = "LEDGERLINE_DATABASE_URL",
            value_name = "URL",
            hide_env_values = true
        )]
        to: Option<String>,
        /// The bucket the blobs move to (else they stay in the data directory).
        #[command(flatten)]
        s3: ledgerline_relay::config::S3Args,
    },
}

/// Which data directory `backup` reads or `restore` creates, and how to answer.
#[derive(Debug, clap::Args)]
struct DataArgs {
    /// TOML configuration file (its `data_dir`).
    #[arg(long, env = "LEDGERLINE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory [default: from the configuration, else ./ledgerline-data].
    #[arg(long = "data", env = "LEDGERLINE_DATA", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print the manifest (or the error) as JSON.
    #[arg(long)]
    json: bool,
}

impl DataArgs {
    /// The configuration the flags and file name.
    fn config(&self) -> Result<ledgerline_relay::config::Config, String> {
        self.config_with(Default::default())
    }

    /// The configuration the flags and file name, with these bucket settings.
    fn config_with(
        &self,
        s3: ledgerline_relay::config::S3Args,
    ) -> Result<ledgerline_relay::config::Config, String> {
        ServeArgs {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            s3,
            ..Default::default()
        }
        .resolve()
        .map_err(|e| e.to_string())
    }

    /// The data directory the flags and configuration name.
    fn resolve(&self) -> Result<PathBuf, String> {
        self.config().and_then(|c| match c.database_url {
            Some(_) if c.s3_bucket.is_some() => Err(
                "this relay keeps its database in PostgreSQL and its blobs in a bucket: back \
                 them up with pg_dump and the storage provider's versioning or replication, \
                 with the data directory's log-key.secret; `backup` and `restore` handle \
                 the embedded SQLite and blobs/ only"
                    .into(),
            ),
            None if c.s3_bucket.is_some() => Err(
                "this relay keeps its blobs in a bucket: `backup` and `restore` handle the \
                 data directory's blobs/ only; back the bucket up with the storage \
                 provider's versioning or replication"
                    .into(),
            ),
            // The data directory holds only blobs and the log secret then.
            Some(_) => Err(
                "this relay's database is PostgreSQL: back it up with pg_dump \
                 (or the provider's snapshots), with the data directory's blobs/ and \
                 log-key.secret; `backup` and `restore` handle the embedded SQLite only"
                    .into(),
            ),
            None => Ok(c.data_dir),
        })
    }
}

fn backup_command(command: Command) -> ExitCode {
    use ledgerline_relay::backup::{backup, restore, BackupError};
    let (result, json) = match command {
        Command::Backup { data, out } => (
            data.resolve()
                .map_err(BackupError::Usage)
                .and_then(|d| backup(&d, &out)),
            data.json,
        ),
        Command::Restore { data, from } => (
            data.resolve()
                .map_err(BackupError::Usage)
                .and_then(|d| restore(&from, &d)),
            data.json,
        ),
        Command::Serve(_) => return ExitCode::from(2),
        Command::Migrate { data, to, s3 } => return migrate_command(&data, to, s3),
    };
    match result {
        Ok(m) => {
            if json {
                println!("{}", serde_json::to_string(&m).unwrap_or_default());
            } else {
                println!(
                    "{} documents ({} bytes of blobs), {} uploads in progress, schema {}{}",
                    m.documents,
                    m.blob_bytes,
                    m.uploads,
                    m.schema_version,
                    if m.missing_blobs.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; {} documents deleted while the backup ran are not in it",
                            m.missing_blobs.len()
                        )
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let (code, exit) = match &e {
                BackupError::Usage(_) => ("usage", 2),
                BackupError::Damaged { .. } => ("damaged", 5),
                BackupError::Io { .. } => ("io", 1),
            };
            failed(json, code, exit, &e)
        }
    }
}

/// Says why a command failed (JSON on stderr with --json) and gives its exit code.
fn failed(json: bool, code: &str, exit: u8, e: &dyn std::fmt::Display) -> ExitCode {
    if json {
        eprintln!(
            "{}",
            serde_json::json!({ "error": { "code": code, "message": e.to_string() } })
        );
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::from(exit)
}

fn migrate_command(
    data: &DataArgs,
    to: Option<String>,
    s3: ledgerline_relay::config::S3Args,
) -> ExitCode {
    use ledgerline_relay::migrate::{migrate, MigrateError};
    let result = data
        .config_with(s3)
        .map_err(MigrateError::Usage)
        .and_then(|c| {
            let url = to
                .filter(|u| !u.is_empty())
                .or_else(|| c.database_url.as_ref().map(|u| u.expose().to_owned()))
                .ok_or_else(|| {
                    MigrateError::Usage(
                        "name the PostgreSQL database with --to or LEDGERLINE_DATABASE_URL".into(),
                    )
                })?;
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| MigrateError::Usage(format!("cannot start the async runtime: {e}")))?;
            runtime.block_on(async {
                let bucket = match &c.s3_bucket {
                    Some(_) => Some(
                        ledgerline_relay::blobs::Bucket::open(&c)
                            .await
                            .map_err(MigrateError::Usage)?,
                    ),
                    None => None,
                };
                let blob_dir = c.blob_dir();
                migrate(
                    &c.data_dir.join("relay.sqlite3"),
                    &url,
                    c.database_ca.as_deref(),
                    bucket.as_ref().map(|b| (blob_dir.as_path(), b)),
                )
                .await
            })
        });
    match result {
        Ok(report) => {
            if data.json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                let rows: u64 = report.tables.iter().map(|t| t.rows).sum();
                println!(
                    "moved {rows} rows of {} tables to PostgreSQL; counts checked",
                    report.tables.len()
                );
                for f in &report.firms {
                    println!(
                        "firm {}: audit log of {} entries, root {} in both",
                        f.firm, f.size, f.root
                    );
                }
                match report.blobs {
                    Some(b) => {
                        println!(
                            "moved {} documents and {} parts of uploads in progress ({} bytes) to the bucket; each checked there",
                            b.documents, b.upload_parts, b.bytes
                        );
                        println!(
                            "now serve with --database-url and the bucket (log-key.secret stays in the data directory)"
                        );
                    }
                    None => println!(
                        "now serve with --database-url (blobs and log-key.secret stay where they are)"
                    ),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let (code, exit) = match &e {
                MigrateError::Usage(_) => ("usage", 2),
                MigrateError::Mismatch(_) => ("mismatch", 5),
                MigrateError::Store(_) => ("storage", 1),
            };
            failed(data.json, code, exit, &e)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        other => return backup_command(other),
    };
    let config = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: ledgerline_relay::config::Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    match ledgerline_relay::server::open_store(&config).await? {
        Opened::Sqlite(store) => serve_on(config, store).await,
        Opened::Postgres(store) => serve_on(config, store).await,
    }
}

async fn serve_on<S: Store>(
    config: ledgerline_relay::config::Config,
    store: S,
) -> anyhow::Result<()> {
    let (listener, addr) = ledgerline_relay::server::bind(&config).await?;
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let backend = if config.database_url.is_some() {
        "postgresql"
    } else {
        "sqlite"
    };
    let state = AppState::load(config, store).await?;
    // Scripts and tests read this line to learn the address (e.g. with --listen 127.0.0.1:0).
    println!("ledgerline-relay listening on {scheme}://{addr}");
    tracing::info!(%addr, backend, "listening");
    ledgerline_relay::server::serve(listener, state, ledgerline_relay::server::shutdown_signal())
        .await
}
