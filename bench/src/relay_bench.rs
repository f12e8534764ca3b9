//! `relay-bench`: "send a Megolm message to a 10-device room and push it to all", against
//! the real relay (in process, over loopback HTTP and WebSocket, SQLite with
//! `synchronous = FULL`). Prints a table; the raw ceiling — SQLite inserts of the same row
//! size, one fsync'd transaction each, measured in the same run — gives the ratio.
//!
//!     cargo run --release -p ledgerline-bench --bin relay-bench -- --messages 3000
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../relay/tests/common/fixture.rs"]
mod fixture;

use clap::Parser;
use fixture::*;
use futures_util::StreamExt;
use ledgerline_relay::config::Config;
use ledgerline_relay::state::AppState;
use ledgerline_relay::store::sqlite::SqliteStore;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Relay throughput and push latency for a 10-device room.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Messages per scenario.
    #[arg(long, default_value_t = 3000)]
    messages: usize,
    /// Concurrent senders in the saturated scenario.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Paced rate of the light-load scenario (messages per second).
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Devices in the room.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Ciphertext size in bytes (a Megolm message of ~200 B plaintext is ~290 B).
    #[arg(long, default_value_t = 290)]
    size: usize,
}

struct Outcome {
    label: String,
    sent: usize,
    elapsed: Duration,
    ack: Vec<Duration>,
    delivered: Vec<Duration>,
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Raw ceiling: SQLite WAL, synchronous=FULL, `per_txn` inserts per transaction, same row size.
fn sqlite_ceiling(rows: usize, size: usize, per_txn: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let c = rusqlite::Connection::open(dir.path().join("ceiling.sqlite3")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(
        "CREATE TABLE m (room BLOB, seq INTEGER, body BLOB, PRIMARY KEY (room, seq)) WITHOUT ROWID",
    )
    .unwrap();
    let body = vec![7u8; size];
    let start = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(per_txn) {
        let tx = c.unchecked_transaction().unwrap();
        for i in chunk {
            tx.execute(
                "INSERT INTO m VALUES (?1, ?2, ?3)",
                rusqlite::params![&[1u8; 16][..], *i as i64, &body],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

async fn scenario(
    label: &str,
    args: &Args,
    devices: &[Device],
    room: &str,
    addr: std::net::SocketAddr,
    pace: Option<u32>,
    concurrency: usize,
) -> Outcome {
    let http = client();
    let n = args.messages;
    // Every device listens; the push of message i is recognised by its ciphertext prefix.
    let delivered: Arc<Mutex<HashMap<usize, (usize, Instant)>>> =
        Arc::new(Mutex::new(HashMap::new()));
    let mut readers = Vec::new();
    for d in devices {
        let mut ws = websocket(d, addr).await;
        let delivered = delivered.clone();
        let total = devices.len();
        readers.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < n {
                let Ok(Some(Ok(msg))) =
                    tokio::time::timeout(Duration::from_secs(30), ws.next()).await
                else {
                    break;
                };
                let tokio_tungstenite::tungstenite::Message::Text(t) = msg else {
                    continue;
                };
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["type"] != "room_message" {
                    continue;
                }
                let idx =
                    usize::from_str_radix(&v["ciphertext"].as_str().unwrap()[..16], 16).unwrap();
                let mut m = delivered.lock().unwrap();
                let e = m.entry(idx).or_insert((0, Instant::now()));
                e.0 += 1;
                if e.0 == total {
                    e.1 = Instant::now();
                }
                seen += 1;
            }
        }));
    }
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; n]));
    let acks: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut senders = Vec::new();
    for w in 0..concurrency {
        let (http, sender, room, sent_at, acks, next) = (
            http.clone(),
            devices[w % devices.len()].clone(),
            room.to_owned(),
            sent_at.clone(),
            acks.clone(),
            next.clone(),
        );
        let size = args.size;
        senders.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(w as u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Some(rate) = pace {
                    let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
                    tokio::time::sleep_until(due.into()).await;
                }
                let mut ct = vec![0u8; size];
                rng.fill_bytes(&mut ct);
                ct[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let body = serde_json::to_vec(&json!({ "ciphertext": hex::encode(&ct) })).unwrap();
                let s = sender.sign("POST", &format!("/v1/rooms/{room}/messages"), &body);
                let t0 = Instant::now();
                sent_at.lock().unwrap()[i] = Some(t0);
                let (status, v) = sender.send(&http, &s).await;
                assert_eq!(status, 200, "{v}");
                acks.lock().unwrap().push(t0.elapsed());
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    for r in readers {
        r.await.unwrap();
    }
    let elapsed = start.elapsed();
    let sent_at = sent_at.lock().unwrap();
    let mut lat = Vec::new();
    for (i, (count, t)) in delivered.lock().unwrap().iter() {
        if *count == devices.len() {
            if let Some(t0) = sent_at[*i] {
                lat.push(t.saturating_duration_since(t0));
            }
        }
    }
    let ack = acks.lock().unwrap().clone();
    Outcome {
        label: label.into(),
        sent: n,
        elapsed,
        ack,
        delivered: lat,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_owned(),
        rate_per_second: 1_000_000,
        rate_burst: 1_000_000,
        log: "warn".into(),
        ..Config::default()
    };
    let store = SqliteStore::open(&config.database_path())?;
    let (listener, addr) = ledgerline_relay::server::bind(&config).await?;
    let state = AppState::load(config, store).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ledgerline_relay::server::serve(listener, state, async {
        let _ = stop_rx.await;
    }));
    let base = format!("http://{addr}");
    let http = client();
    let mut firm = Firm::create(&http, &base, 1).await;
    let mut devices = vec![firm.owner_device.clone()];
    let mut members = vec![firm.owner.id];
    for _ in 1..args.devices {
        let (p, d) = firm
            .add_member(&http, ledgerline_protocol::roster::Role::Member)
            .await;
        members.push(p.id);
        devices.push(d);
    }
    let room = hex::encode(firm.random16());
    firm.owner_device
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": members })),
        )
        .await;

    let mut outcomes = Vec::new();
    outcomes.push(
        scenario(
            &format!("saturated, {} senders", args.concurrency),
            &args,
            &devices,
            &room,
            addr,
            None,
            args.concurrency,
        )
        .await,
    );
    let room2 = hex::encode(firm.random16());
    firm.owner_device
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room2, "members": members })),
        )
        .await;
    outcomes.push(
        scenario(
            &format!("paced at {} msg/s", args.rate),
            &args,
            &devices,
            &room2,
            addr,
            Some(args.rate),
            8,
        )
        .await,
    );
    let ceiling = tokio::task::spawn_blocking({
        let (n, size) = (args.messages.min(3000), args.size);
        move || sqlite_ceiling(n, size, 1)
    })
    .await?;
    let batched = tokio::task::spawn_blocking({
        let (n, size) = (args.messages.min(3000) * 10, args.size);
        move || sqlite_ceiling(n, size, 100)
    })
    .await?;

    println!("relay-bench: {}-device room, {} B Megolm-sized ciphertext, SQLite WAL synchronous=FULL, loopback, load generator in process", args.devices, args.size);
    println!();
    println!("| scenario | messages | accepted msg/s | deliveries/s | ack p50 | ack p99 | send→last recipient p50 | p99 | ratio to ceiling |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for mut o in outcomes {
        let rate = o.sent as f64 / o.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} |",
            o.label,
            o.sent,
            rate,
            rate * args.devices as f64,
            ms(pct(&mut o.ack, 0.50)),
            ms(pct(&mut o.ack, 0.99)),
            ms(pct(&mut o.delivered, 0.50)),
            ms(pct(&mut o.delivered, 0.99)),
            if o.label.starts_with("paced") {
                "n/a (paced)".to_owned()
            } else {
                format!("{:.2}", rate / ceiling)
            }
        );
        assert_eq!(
            o.delivered.len(),
            o.sent,
            "every message must reach every device"
        );
    }
    println!("| raw ceiling: SQLite insert, 1 fsync'd txn each, same row size | {} | {:.0} | | | | | | 1.00 |", args.messages.min(3000), ceiling);
    println!("| raw ceiling: SQLite insert, 100 per fsync'd txn (group commit bound) | {} | {:.0} | | | | | | |", args.messages.min(3000) * 10, batched);
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}
