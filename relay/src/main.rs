//! `ledgerline-relay`: command-line entry point. Parsing and wiring only.

use clap::{Parser, Subcommand};
use ledgerline_relay::config::ServeArgs;
use ledgerline_relay::state::AppState;
use ledgerline_relay::store::sqlite::SqliteStore;
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
    /// Run the relay (embedded SQLite and a blob directory under --data).
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
    /// The data directory the flags and configuration name.
    fn resolve(&self) -> Result<PathBuf, String> {
        ServeArgs {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            ..Default::default()
        }
        .resolve()
        .map(|c| c.data_dir)
        .map_err(|e| e.to_string())
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
    let store = SqliteStore::open(&config.database_path())
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", config.database_path().display()))?;
    let (listener, addr) = ledgerline_relay::server::bind(&config).await?;
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let state = AppState::load(config, store).await?;
    // Scripts and tests read this line to learn the address (e.g. with --listen 127.0.0.1:0).
    println!("ledgerline-relay listening on {scheme}://{addr}");
    tracing::info!(%addr, "listening");
    ledgerline_relay::server::serve(listener, state, ledgerline_relay::server::shutdown_signal())
        .await
}
