//! `ledgerline-desktop`: the Ledgerline window. Thin: arguments, then the app.
#![forbid(unsafe_code)]
// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser;

fn main() -> std::process::ExitCode {
    ledgerline_desktop::run(ledgerline_desktop::Args::parse())
}
