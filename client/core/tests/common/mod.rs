//! The real relay, in process, on an ephemeral loopback port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ledgerline_relay::config::Config;
use ledgerline_relay::state::AppState;
use ledgerline_relay::store::sqlite::SqliteStore;

/// Starts a relay over `dir`; returns its base URL and the sender that stops it.
pub async fn start_relay(dir: &std::path::Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    let store = SqliteStore::open(&config.database_path()).unwrap();
    let (listener, addr) = ledgerline_relay::server::bind(&config).await.unwrap();
    let state = AppState::load(config, store).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ledgerline_relay::server::serve(listener, state, async {
        let _ = rx.await;
    }));
    (format!("http://{addr}"), tx)
}

/// Milliseconds since the Unix epoch, a little in the past (roster events must not lie
/// in the relay's future).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 10_000
}
