//! `ledgerline-relay`: the blind relay.
//!
//! The server itself arrives with the "blind relay" issue; until then the binary only
//! describes itself, so that the README's run command is honest about what exists.

use clap::Parser;

/// Ledgerline's blind relay: stores only ciphertext, wrapped keys and signed audit entries;
/// routes and enforces the firm roster; never decrypts.
#[derive(Debug, Parser)]
#[command(name = "ledgerline-relay", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "ledgerline-relay {} (protocol v{}): the relay server is not built yet; see README.md.",
        env!("CARGO_PKG_VERSION"),
        ledgerline_protocol::PROTOCOL_VERSION
    );
}
