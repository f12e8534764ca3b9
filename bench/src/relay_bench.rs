//! `relay-bench`: "send a Megolm message to a 10-device room and push it to all", against
//! the real relay (in process, over loopback HTTP and WebSocket, SQLite with
//! `synchronous = FULL`). `--rooms N` connects N firms of `--devices` devices, each with
//! one room, every device on its own WebSocket, messages spread over the rooms. Prints a
//! table; the raw ceiling — SQLite inserts of the same row size, one fsync'd transaction
//! each, measured in the same run — gives the ratio. It ends with a backfill: one device
//! reads the room's history in pages of 100 and 500, as JSON and in the binary page form
//! (sequentially, and with four pages in flight), against the relay's own query on its
//! database and against what one signature check and one committed log entry per page
//! leave possible.
//!
//!     cargo run --release -p ledgerline-bench --bin relay-bench -- --messages 3000
//!     cargo run --release -p ledgerline-bench --bin relay-bench -- --messages 10000 --rooms 100
//!     cargo run --release -p ledgerline-bench --bin relay-bench -- --messages 3000 --postgres
//!
//! `--postgres` runs the relay on PostgreSQL instead (a throwaway cluster of Debian's
//! `postgresql` on loopback, as the tests start it), and the raw ceilings are PostgreSQL's:
//! inserts committed one per transaction and 100 per transaction, and the relay's backfill
//! query straight on the database. `--instances 2` (with `--postgres`) serves from two
//! relay instances on that database: senders and listening devices alternate between
//! them, so most pushes cross from one instance to the other through `NOTIFY`.
//!
//!     cargo run --release -p ledgerline-bench --bin relay-bench -- --messages 3000 --postgres --instances 2
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../relay/tests/common/fixture.rs"]
mod fixture;
mod rss;
mod stats;

use clap::Parser;
use fixture::*;
use futures_util::StreamExt;
use ledgerline_protocol::ids::FirmId;
use ledgerline_relay::config::Config;
use ledgerline_relay::state::AppState;
use ledgerline_relay::store::postgres::PgStore;
use ledgerline_relay::store::sqlite::SqliteStore;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::json;
use stats::pct;
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
    /// Devices in each room.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Rooms, each in its own firm of `--devices` devices (all connected at once).
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Ciphertext size in bytes (a Megolm message of ~200 B plaintext is ~290 B).
    #[arg(long, default_value_t = 290)]
    size: usize,
    /// Run the relay on a throwaway PostgreSQL on loopback (ceilings measured on it too).
    #[arg(long)]
    postgres: bool,
    /// Relay instances serving (more than one needs --postgres).
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

/// Raw ceiling on PostgreSQL: `per_txn` inserts per committed transaction, same row size.
async fn pg_ceiling(url: &str, rows: usize, size: usize, per_txn: usize) -> f64 {
    let (mut c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(
        "DROP TABLE IF EXISTS bench_ceiling; CREATE TABLE bench_ceiling (room BYTEA, seq BIGINT, body BYTEA, PRIMARY KEY (room, seq))",
    )
    .await
    .unwrap();
    let st = c
        .prepare("INSERT INTO bench_ceiling VALUES ($1, $2, $3)")
        .await
        .unwrap();
    let (room, body) = (vec![1u8; 16], vec![7u8; size]);
    let start = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(per_txn) {
        let tx = c.transaction().await.unwrap();
        for i in chunk {
            tx.execute(&st, &[&room, &(*i as i64), &body])
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

/// The relay's backfill query straight on PostgreSQL, caches warm; messages per second.
async fn pg_backfill(url: &str, firm: &[u8], room: &[u8], page: usize) -> f64 {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let st = c
        .prepare("SELECT seq, sender, ciphertext, created_ms FROM room_messages WHERE firm = $1 AND room = $2 AND seq >= $3 ORDER BY seq LIMIT $4")
        .await
        .unwrap();
    let mut timing = Timing::default();
    while timing.more() {
        let start = Instant::now();
        let (mut from, mut got) = (1i64, 0usize);
        loop {
            let rows = c
                .query(&st, &[&firm, &room, &from, &(page as i64)])
                .await
                .unwrap();
            let Some(last) = rows.last() else { break };
            got += rows.len();
            from = last.get::<_, i64>(0) + 1;
            for r in &rows {
                let _: (Vec<u8>, Vec<u8>, i64) = (r.get(1), r.get(2), r.get(3));
            }
        }
        timing.pass(got, start);
    }
    timing.rate()
}

/// Passes over a room's history: the first warms the caches and is not counted; then passes
/// until [`Timing::SPAN`] has been timed, so that a fast reading is not one short sample.
#[derive(Debug, Default)]
struct Timing {
    passes: usize,
    messages: usize,
    timed: Duration,
}

impl Timing {
    const SPAN: Duration = Duration::from_secs(1);

    fn more(&self) -> bool {
        self.passes < 2 || self.timed < Self::SPAN
    }

    fn pass(&mut self, messages: usize, start: Instant) {
        if self.passes > 0 {
            self.messages += messages;
            self.timed += start.elapsed();
        }
        self.passes += 1;
    }

    fn rate(&self) -> f64 {
        self.messages as f64 / self.timed.as_secs_f64()
    }

    /// Messages per pass.
    fn per_pass(&self) -> usize {
        self.messages / self.passes.saturating_sub(1).max(1)
    }
}

struct Outcome {
    label: String,
    sent: usize,
    elapsed: Duration,
    ack: Vec<Duration>,
    delivered: Vec<Duration>,
    /// Process CPU seconds (relay and generator) per wall second.
    cpu: f64,
}

/// User + system CPU seconds of this process so far (Linux `/proc`; 0 elsewhere).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let utime: f64 = rest.get(11)?.parse().ok()?;
            let stime: f64 = rest.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// A room and the devices in it.
struct Group {
    devices: Vec<Device>,
    room: String,
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

/// How a device reads a room's history in the backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// JSON pages (hex ciphertexts), one request after the other.
    Json,
    /// Binary pages through the client core's own `messages_page`, one after the other.
    Binary,
    /// Binary pages with this many requests in flight (the pages' ranges follow from the
    /// room's `next`: numbers have no gaps).
    Ahead(usize),
}

/// Backfill: one device reads a room's whole history in pages of `page` over signed HTTP
/// (a device catching up). Timed over passes after a warm-up one ([`Timing`]). Returns
/// (messages, msg/s).
async fn backfill(
    http: &reqwest::Client,
    device: &Device,
    room: &str,
    page: usize,
    reading: Reading,
) -> (usize, f64) {
    let relay = ledgerline_client_core::transport::RelayClient::new(
        ledgerline_client_core::transport::HttpTransport::new(&device.base).unwrap(),
        device.firm,
        device.id,
    );
    let room_id: [u8; 16] = hex::decode(room).unwrap().try_into().unwrap();
    let limit = page as u32;
    let mut timing = Timing::default();
    while timing.more() {
        let start = Instant::now();
        let mut got = 0usize;
        match reading {
            Reading::Json => {
                let mut from = 1u64;
                loop {
                    let v = device
                        .ok(
                            http,
                            "GET",
                            &format!("/v1/rooms/{room}/messages?from={from}&limit={page}"),
                            None,
                        )
                        .await;
                    let msgs = v["messages"].as_array().unwrap();
                    let Some(last) = msgs.last() else { break };
                    got += msgs.len();
                    from = last["seq"].as_u64().unwrap() + 1;
                }
            }
            Reading::Binary => {
                let mut from = 1u64;
                loop {
                    let (msgs, _) = relay
                        .messages_page(&device.key, room_id, from, limit)
                        .await
                        .unwrap();
                    let Some(last) = msgs.last() else { break };
                    got += msgs.len();
                    from = last.seq + 1;
                }
            }
            Reading::Ahead(depth) => {
                let (first, next) = relay
                    .messages_page(&device.key, room_id, 1, limit)
                    .await
                    .unwrap();
                got += first.len();
                let froms: Vec<u64> = (1 + page as u64..next.unwrap()).step_by(page).collect();
                let mut pages = futures_util::stream::iter(froms.into_iter().map(|from| {
                    let relay = &relay;
                    async move {
                        relay
                            .messages_page(&device.key, room_id, from, limit)
                            .await
                            .unwrap()
                    }
                }))
                .buffered(depth);
                while let Some((msgs, _)) = pages.next().await {
                    got += msgs.len();
                }
            }
        }
        timing.pass(got, start);
    }
    (timing.per_pass(), timing.rate())
}

/// What authenticating one request costs on this machine, in the same run: (sign, strict
/// verify) in seconds per request, for a page request's path.
fn request_costs(device: &Device, room: &str) -> (f64, f64) {
    use ledgerline_protocol::request::RequestHead;
    let n = 2000;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let path = format!("/v1/rooms/{room}/messages?from=1&limit=100");
    let start = Instant::now();
    let signed: Vec<_> = (0..n)
        .map(|i| {
            RequestHead::new(device.firm, device.id, "GET", &path, 1 + i, b"", &mut rng)
                .unwrap()
                .sign(&device.key)
        })
        .collect();
    let sign = start.elapsed().as_secs_f64() / n as f64;
    let key = device.key.verifying_key();
    let start = Instant::now();
    for r in &signed {
        r.verify_signature(&key).unwrap();
    }
    (sign, start.elapsed().as_secs_f64() / n as f64)
}

/// The raw ceiling of a backfill: the relay's own query for the same pages, straight on
/// its SQLite file, caches warm; msg/s.
async fn sqlite_backfill(db: &std::path::Path, firm: FirmId, room: &str, page: usize) -> f64 {
    let room_bytes = hex::decode(room).unwrap();
    let db = db.to_owned();
    tokio::task::spawn_blocking(move || {
        let c = rusqlite::Connection::open_with_flags(
            &db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut st = c
            .prepare_cached("SELECT seq, sender, ciphertext, created_ms FROM room_messages WHERE firm = ?1 AND room = ?2 AND seq >= ?3 ORDER BY seq LIMIT ?4")
            .unwrap();
        let mut timing = Timing::default();
        while timing.more() {
            let start = Instant::now();
            let (mut from, mut got) = (1i64, 0usize);
            loop {
                let rows: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = st
                    .query_map(
                        rusqlite::params![&firm.0[..], &room_bytes[..], from, page as i64],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let Some(last) = rows.last() else { break };
                got += rows.len();
                from = last.0 + 1;
            }
            timing.pass(got, start);
        }
        timing.rate()
    })
    .await
    .unwrap()
}

async fn scenario(
    label: &str,
    args: &Args,
    groups: &[Group],
    addrs: &[std::net::SocketAddr],
    pace: Option<u32>,
    concurrency: usize,
) -> Outcome {
    let http = client();
    let n = args.messages;
    // Every device listens; the push of message i is recognised by its ciphertext prefix.
    // Message i goes to room i mod rooms.
    let delivered: Arc<Mutex<HashMap<usize, (usize, Instant)>>> =
        Arc::new(Mutex::new(HashMap::new()));
    let mut readers = Vec::new();
    let mut listening = 0usize;
    for (g, group) in groups.iter().enumerate() {
        let mine = (0..n).filter(|i| i % groups.len() == g).count();
        for d in &group.devices {
            // Listeners alternate between the instances.
            let mut ws = websocket(d, addrs[listening % addrs.len()]).await;
            listening += 1;
            let delivered = delivered.clone();
            let total = group.devices.len();
            readers.push(tokio::spawn(async move {
                let mut seen = 0;
                while seen < mine {
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
                    let idx = usize::from_str_radix(&v["ciphertext"].as_str().unwrap()[..16], 16)
                        .unwrap();
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
    }
    let sizes: Arc<Vec<usize>> = Arc::new(groups.iter().map(|g| g.devices.len()).collect());
    let routes: Arc<Vec<(Vec<Device>, String)>> = Arc::new(
        groups
            .iter()
            .map(|g| (g.devices.clone(), g.room.clone()))
            .collect(),
    );
    let cpu0 = cpu_seconds();
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; n]));
    let acks: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut senders = Vec::new();
    for w in 0..concurrency {
        // Senders alternate between the instances (the other half from the listeners').
        let base = format!("http://{}", addrs[(w + 1) % addrs.len()]);
        let (http, routes, sent_at, acks, next) = (
            http.clone(),
            routes.clone(),
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
                let (devices, room) = &routes[i % routes.len()];
                let sender = &devices[w % devices.len()];
                let mut ct = vec![0u8; size];
                rng.fill_bytes(&mut ct);
                ct[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let body = serde_json::to_vec(&json!({ "ciphertext": hex::encode(&ct) })).unwrap();
                let s = sender.sign("POST", &format!("/v1/rooms/{room}/messages"), &body);
                let t0 = Instant::now();
                sent_at.lock().unwrap()[i] = Some(t0);
                let (status, v) = send(&http, &base, &s).await;
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
    let cpu = (cpu_seconds() - cpu0) / elapsed.as_secs_f64();
    let sent_at = sent_at.lock().unwrap();
    let mut lat = Vec::new();
    for (i, (count, t)) in delivered.lock().unwrap().iter() {
        if *count == sizes[*i % sizes.len()] {
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
        cpu,
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
    let db_path = config.database_path();
    let pg = if args.postgres {
        let at = dir.path().join("pg");
        Some(
            tokio::task::spawn_blocking(move || ledgerline_testkit::postgres::Postgres::start(&at))
                .await?,
        )
    } else {
        None
    };
    let pg_url = pg.as_ref().map(|p| p.url());
    anyhow::ensure!(
        args.instances >= 1 && (args.instances == 1 || pg_url.is_some()),
        "--instances above 1 needs --postgres"
    );
    // On PostgreSQL the relay knows its database URL: it then listens to other instances.
    let config = Config {
        database_url: pg_url.clone().map(Into::into),
        ..config
    };
    let (listener, addr) = ledgerline_relay::server::bind(&config).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stop_rx.await;
    };
    let mut others = Vec::new();
    let mut addrs = vec![addr];
    let server = match &pg_url {
        None => {
            let state = AppState::load(config, SqliteStore::open(&db_path)?).await?;
            tokio::spawn(ledgerline_relay::server::serve(listener, state, stopped))
        }
        Some(url) => {
            let store = PgStore::connect(url, 16).await?;
            let state = AppState::load(config.clone(), store).await?;
            let server = tokio::spawn(ledgerline_relay::server::serve(listener, state, stopped));
            // The others share the database and the data directory (log key, blobs).
            for _ in 1..args.instances {
                let other = ledgerline_relay::server::Running::start(config.clone()).await?;
                addrs.push(other.addr);
                others.push(other);
            }
            server
        }
    };
    let base = format!("http://{addr}");
    let http = client();
    // One firm per room, as offices are: `devices` members with a device each.
    let mut firms = Vec::new();
    for f in 0..args.rooms.max(1) {
        let mut firm = Firm::create(&http, &base, 1 + f as u64).await;
        let mut devices = vec![firm.owner_device.clone()];
        let mut members = vec![firm.owner.id];
        for _ in 1..args.devices {
            let (p, d) = firm
                .add_member(&http, ledgerline_protocol::roster::Role::Member)
                .await;
            members.push(p.id);
            devices.push(d);
        }
        firms.push((firm, devices, members));
    }
    let rooms = |firms: &mut Vec<(Firm, Vec<Device>, Vec<_>)>| {
        let http = http.clone();
        let mut out = Vec::new();
        for (firm, devices, members) in firms.iter_mut() {
            let room = hex::encode(firm.random16());
            out.push((
                firm.owner_device.clone(),
                json!({ "room": room, "members": members }),
                Group {
                    devices: devices.clone(),
                    room,
                },
            ));
        }
        async move {
            let mut groups = Vec::new();
            for (owner, body, group) in out {
                owner.ok(&http, "POST", "/v1/rooms", Some(body)).await;
                groups.push(group);
            }
            groups
        }
    };
    let connected = args.rooms.max(1) * args.devices;

    let mut outcomes = Vec::new();
    rss::reset_peak_rss();
    let groups = rooms(&mut firms).await;
    let history = (groups[0].devices[1].clone(), groups[0].room.clone());
    outcomes.push(
        scenario(
            &format!("saturated, {} senders", args.concurrency),
            &args,
            &groups,
            &addrs,
            None,
            args.concurrency,
        )
        .await,
    );
    let groups = rooms(&mut firms).await;
    outcomes.push(
        scenario(
            &format!("paced at {} msg/s", args.rate),
            &args,
            &groups,
            &addrs,
            Some(args.rate),
            8,
        )
        .await,
    );
    let peak = rss::peak_rss_mib();
    let (n, size) = (args.messages.min(3000), args.size);
    let (ceiling, batched) = match &pg_url {
        None => (
            tokio::task::spawn_blocking(move || sqlite_ceiling(n, size, 1)).await?,
            tokio::task::spawn_blocking(move || sqlite_ceiling(n * 10, size, 100)).await?,
        ),
        Some(url) => (
            pg_ceiling(url, n, size, 1).await,
            pg_ceiling(url, n * 10, size, 100).await,
        ),
    };
    let engine = if pg_url.is_some() {
        format!(
            "PostgreSQL (Debian's, default settings: fsync and synchronous_commit on), {} relay instance{}",
            args.instances,
            if args.instances == 1 { "" } else { "s" }
        )
    } else {
        "SQLite WAL synchronous=FULL".to_owned()
    };

    println!("relay-bench: {} connected devices in {} rooms of {} (one firm each), {} B Megolm-sized ciphertext, {engine}, loopback, load generator in process", connected, args.rooms.max(1), args.devices, args.size);
    println!();
    println!("| scenario | messages | accepted msg/s | deliveries/s | ack p50 | ack p99 | send→last recipient p50 | p99 | p999 | CPU (cores, relay + generator) | ratio to ceiling |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for mut o in outcomes {
        let rate = o.sent as f64 / o.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {:.2} | {} |",
            o.label,
            o.sent,
            rate,
            rate * args.devices as f64,
            ms(pct(&mut o.ack, 0.50)),
            ms(pct(&mut o.ack, 0.99)),
            ms(pct(&mut o.delivered, 0.50)),
            ms(pct(&mut o.delivered, 0.99)),
            ms(pct(&mut o.delivered, 0.999)),
            o.cpu,
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
    let store = if pg_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("| raw ceiling: {store} insert, 1 committed txn each, same row size | {n} | {ceiling:.0} | | | | | | | | 1.00 |");
    println!("| raw ceiling: {store} insert, 100 per committed txn (group commit bound) | {} | {batched:.0} | | | | | | | | |", n * 10);
    println!();
    println!(
        "peak RSS of the process (relay, generator and {connected} WebSockets): {peak:.1} MiB"
    );
    println!();
    let (sign, verify) = request_costs(&history.0, &history.1);
    println!("| backfill | page | messages | msg/s | ratio to raw |");
    println!("|---|---:|---:|---:|---:|");
    for page in [100, 500] {
        let raw = match &pg_url {
            Some(url) => pg_backfill(url, &history.0.firm.0, &hex::decode(&history.1)?, page).await,
            None => sqlite_backfill(&db_path, history.0.firm, &history.1, page).await,
        };
        for (label, reading) in [
            ("JSON pages, sequential", Reading::Json),
            ("binary pages (client core), sequential", Reading::Binary),
            ("binary pages (client core), 4 in flight", Reading::Ahead(4)),
            (
                "binary pages (client core), 16 in flight",
                Reading::Ahead(16),
            ),
        ] {
            let (read, rate) = backfill(&http, &history.0, &history.1, page, reading).await;
            println!(
                "| signed HTTP `GET …/messages`, {label} | {page} | {read} | {rate:.0} | {:.2} |",
                rate / raw
            );
        }
        println!(
            "| raw ceiling: the relay's query straight on {store} | {page} | | {raw:.0} | 1.00 |"
        );
        // What an authenticated, logged read cannot beat on one core: per page, the query
        // and one strict Ed25519 verification (every request is signed); one page at a time
        // also waits for one committed transaction (the access-log leaf is durable before
        // the page leaves), which pages in flight share through group commit.
        let query = page as f64 / raw;
        let with_verify = page as f64 / (query + verify);
        let with_commit = page as f64 / (query + verify + 1.0 / ceiling);
        println!(
            "| bound, pages in flight (commits shared): query + one Ed25519 verification ({:.0} µs) per page | {page} | | {with_verify:.0} | {:.2} |",
            verify * 1e6,
            with_verify / raw
        );
        println!(
            "| bound, one page at a time: query + verification + one committed transaction ({:.0} µs) | {page} | | {with_commit:.0} | {:.2} |",
            1e6 / ceiling,
            with_commit / raw
        );
    }
    println!();
    println!(
        "signing a request: {:.1} µs; verifying it (strict): {:.1} µs",
        sign * 1e6,
        verify * 1e6
    );
    let _ = stop_tx.send(());
    server.await??;
    for other in others {
        other.stop().await?;
    }
    Ok(())
}
