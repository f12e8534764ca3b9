//! `ledgerline-relay`: command-line entry point. Parsing and wiring only.

use clap::{Parser, Subcommand};
use ledgerline_relay::config::ServeArgs;
use ledgerline_relay::state::AppState;
use ledgerline_relay::store::sqlite::SqliteStore;
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
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
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
