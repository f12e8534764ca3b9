//! What the client-side benches share: a relay in this process on loopback, with rate
//! limits out of the way, and the passphrase their profiles use.

use ledgerline_client_core::profile::{Profile, Unlock};
use ledgerline_relay::config::Config;
use ledgerline_relay::server::Running;
use std::path::Path;

/// Starts a relay with its data under `dir/relay`; returns it and its URL.
pub async fn relay(dir: &Path) -> (Running, String) {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("loopback address"),
        data_dir: dir.join("relay"),
        rate_per_second: 1_000_000,
        rate_burst: 1_000_000,
        ..Config::default()
    };
    let relay = Running::start(config).await.expect("the relay starts");
    let url = format!("http://{}", relay.addr);
    (relay, url)
}

/// The profiles' store passphrase.
pub fn unlock() -> Unlock {
    Unlock::Passphrase(zeroize::Zeroizing::new("bench".to_owned()))
}

/// Founds a firm on `url` with its owner's profile under `dir/owner`.
pub async fn owner(dir: &Path, url: &str) -> Profile {
    Profile::create_firm(&dir.join("owner"), unlock(), url, "B", "Ewa")
        .await
        .expect("the firm is founded")
}
