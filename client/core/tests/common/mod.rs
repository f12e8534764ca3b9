//! The real relay, in process, on an ephemeral loopback port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ledgerline_relay::config::Config;
use ledgerline_relay::server::Running;

/// Starts a relay over `dir`; returns its base URL and the running relay (kept alive by
/// the caller until the test ends).
pub async fn start_relay(dir: &std::path::Path) -> (String, Running) {
    let running = Running::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        ..Config::default()
    })
    .await
    .unwrap();
    (format!("http://{}", running.addr), running)
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
