//! `synapse-bench`: the workload of `relay-bench` — an encrypted message into a 10-member
//! room, delivered to every member's sync — against a Matrix homeserver (Synapse on
//! SQLite, installed and started by `bench/synapse/setup.sh`) through the Matrix
//! client-server API: each member long-polls `/sync`; senders `PUT` `m.room.encrypted`
//! events whose content is a Megolm message of the same size as `relay-bench`'s.
//!
//!     bash bench/synapse/setup.sh
//!     cargo run --release -p ledgerline-bench --bin synapse-bench -- --messages 1000
//!
//! Prints the same table as `relay-bench` (accepted msg/s, deliveries/s, ack and
//! send→last-recipient latency); `bench/synapse/compare.sh` runs both and the ratio.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod stats;

use base64::Engine;
use clap::Parser;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};
use stats::pct;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Synapse throughput and sync latency for a 10-member room.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The homeserver.
    #[arg(long, default_value = "http://127.0.0.1:8008")]
    url: String,
    /// Messages per scenario.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Concurrent senders in the saturated scenario.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Paced rate of the light-load scenario (messages per second; 0 skips it).
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Members of the room.
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Ciphertext size in bytes (a Megolm message of ~200 B plaintext is ~290 B).
    #[arg(long, default_value_t = 290)]
    size: usize,
}

/// A registered user with an access token.
#[derive(Clone)]
struct User {
    device: String,
    token: String,
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut rb = http.request(method, url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let res = rb.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Registers `name` (open registration, the dummy stage).
async fn register(http: &reqwest::Client, base: &str, name: &str) -> User {
    let url = format!("{base}/_matrix/client/v3/register");
    let mut body = json!({ "username": name, "password": "haslo-testowe-1234" });
    let (status, v) = call(http, reqwest::Method::POST, &url, None, Some(&body)).await;
    let v = if status == 401 {
        body["auth"] = json!({ "type": "m.login.dummy", "session": v["session"] });
        let (status, v) = call(http, reqwest::Method::POST, &url, None, Some(&body)).await;
        assert_eq!(status, 200, "register {name}: {v}");
        v
    } else {
        assert_eq!(status, 200, "register {name}: {v}");
        v
    };
    User {
        device: v["device_id"].as_str().unwrap().to_owned(),
        token: v["access_token"].as_str().unwrap().to_owned(),
    }
}

struct Outcome {
    label: String,
    sent: usize,
    elapsed: Duration,
    ack: Vec<Duration>,
    delivered: Vec<Duration>,
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The event filter of every member's sync: the room's timeline, nothing else.
fn filter() -> String {
    json!({
        "presence": { "types": [] },
        "account_data": { "types": [] },
        "room": {
            "state": { "types": [] },
            "ephemeral": { "types": [] },
            "account_data": { "types": [] },
            "timeline": { "limit": 500, "types": ["m.room.encrypted"] }
        }
    })
    .to_string()
}

/// The `/sync` URL with its query (`since` absent on the first call).
fn sync_url(base: &str, filter: &str, timeout_ms: u32, since: Option<&str>) -> String {
    let timeout = timeout_ms.to_string();
    let mut query = vec![("filter", filter), ("timeout", timeout.as_str())];
    query.extend(since.map(|s| ("since", s)));
    reqwest::Url::parse_with_params(&format!("{base}/_matrix/client/v3/sync"), &query)
        .unwrap()
        .to_string()
}

/// An initial sync: the token to continue from.
async fn first_batch(http: &reqwest::Client, base: &str, u: &User, filter: &str) -> String {
    let url = sync_url(base, filter, 0, None);
    let (status, v) = call(http, reqwest::Method::GET, &url, Some(&u.token), None).await;
    assert_eq!(status, 200, "sync: {v}");
    v["next_batch"].as_str().unwrap().to_owned()
}

#[allow(clippy::too_many_arguments)]
async fn scenario(
    label: &str,
    args: &Args,
    users: &[User],
    room: &str,
    pace: Option<u32>,
    concurrency: usize,
    run: usize,
) -> Outcome {
    let http = reqwest::Client::new();
    let base = args.url.clone();
    let n = args.messages;
    let filter = filter();
    let delivered: Arc<Mutex<HashMap<usize, (usize, Instant)>>> =
        Arc::new(Mutex::new(HashMap::new()));
    let done = Arc::new(AtomicBool::new(false));
    // Every member syncs in a loop; message i is recognised by the first 8 bytes of its
    // ciphertext (and `run`, so an earlier scenario's events are not counted again).
    let mut readers = Vec::new();
    for u in users {
        let since = first_batch(&http, &base, u, &filter).await;
        let (http, base, filter, delivered, done, u) = (
            http.clone(),
            base.clone(),
            filter.clone(),
            delivered.clone(),
            done.clone(),
            u.clone(),
        );
        let total = users.len();
        let room = room.to_owned();
        readers.push(tokio::spawn(async move {
            let mut since = since;
            let mut seen = 0;
            while seen < n && !done.load(Ordering::Relaxed) {
                let url = sync_url(&base, &filter, 5000, Some(&since));
                let (status, v) =
                    call(&http, reqwest::Method::GET, &url, Some(&u.token), None).await;
                assert_eq!(status, 200, "sync: {v}");
                since = v["next_batch"].as_str().unwrap().to_owned();
                let Some(events) = v["rooms"]["join"][&room]["timeline"]["events"].as_array()
                else {
                    continue;
                };
                let now = Instant::now();
                for e in events {
                    let Some(ct) = e["content"]["ciphertext"].as_str() else {
                        continue;
                    };
                    let Ok(bytes) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(ct)
                    else {
                        continue;
                    };
                    if bytes.len() < 16
                        || u64::from_be_bytes(bytes[8..16].try_into().unwrap()) != run as u64
                    {
                        continue;
                    }
                    let idx = u64::from_be_bytes(bytes[..8].try_into().unwrap()) as usize;
                    let mut m = delivered.lock().unwrap();
                    let entry = m.entry(idx).or_insert((0, now));
                    entry.0 += 1;
                    if entry.0 == total {
                        entry.1 = now;
                    }
                    seen += 1;
                }
            }
        }));
    }
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; n]));
    let acks: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut senders = Vec::new();
    for w in 0..concurrency {
        let (http, base, sent_at, acks, next) = (
            http.clone(),
            base.clone(),
            sent_at.clone(),
            acks.clone(),
            next.clone(),
        );
        let sender = users[w % users.len()].clone();
        let room = room.to_owned();
        let size = args.size;
        senders.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(w as u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
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
                ct[8..16].copy_from_slice(&(run as u64).to_be_bytes());
                let content = json!({
                    "algorithm": "m.megolm.v1.aes-sha2",
                    "ciphertext": base64::engine::general_purpose::STANDARD_NO_PAD.encode(&ct),
                    "device_id": sender.device,
                    "sender_key": base64::engine::general_purpose::STANDARD_NO_PAD.encode([7u8; 32]),
                    "session_id": base64::engine::general_purpose::STANDARD_NO_PAD.encode([9u8; 32]),
                });
                let url = format!("{base}/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/r{run}-m{i}");
                let t0 = Instant::now();
                sent_at.lock().unwrap()[i] = Some(t0);
                let (status, v) = call(&http, reqwest::Method::PUT, &url, Some(&sender.token), Some(&content)).await;
                assert_eq!(status, 200, "send: {v}");
                acks.lock().unwrap().push(t0.elapsed());
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    // Every member has every message, or a minute passed since the last send.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let complete = delivered
            .lock()
            .unwrap()
            .values()
            .filter(|(c, _)| *c == users.len())
            .count();
        if complete == n || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.abort();
    }
    let sent_at = sent_at.lock().unwrap();
    let mut lat = Vec::new();
    for (i, (count, t)) in delivered.lock().unwrap().iter() {
        if *count == users.len() {
            if let Some(t0) = sent_at.get(*i).copied().flatten() {
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
    let http = reqwest::Client::new();
    let base = args.url.trim_end_matches('/').to_owned();
    let (status, v) = call(
        &http,
        reqwest::Method::GET,
        &format!("{base}/_matrix/client/versions"),
        None,
        None,
    )
    .await;
    anyhow::ensure!(
        status == 200,
        "no homeserver at {base} ({status} {v}); run bench/synapse/setup.sh"
    );
    // Fresh users each run (the database may hold earlier ones).
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let mut users = Vec::new();
    for m in 0..args.members {
        users.push(register(&http, &base, &format!("bench{tag}m{m}")).await);
    }
    let (status, v) = call(
        &http,
        reqwest::Method::POST,
        &format!("{base}/_matrix/client/v3/createRoom"),
        Some(&users[0].token),
        Some(&json!({ "preset": "public_chat", "name": "bench" })),
    )
    .await;
    anyhow::ensure!(status == 200, "createRoom: {v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    for u in &users[1..] {
        let (status, v) = call(
            &http,
            reqwest::Method::POST,
            &format!("{base}/_matrix/client/v3/join/{room}"),
            Some(&u.token),
            Some(&json!({})),
        )
        .await;
        anyhow::ensure!(status == 200, "join: {v}");
    }
    let mut outcomes = vec![
        scenario(
            &format!("saturated, {} concurrent senders", args.concurrency),
            &args,
            &users,
            &room,
            None,
            args.concurrency,
            1,
        )
        .await,
    ];
    if args.rate > 0 {
        outcomes.push(
            scenario(
                &format!("paced at {} msg/s", args.rate),
                &args,
                &users,
                &room,
                Some(args.rate),
                args.concurrency,
                2,
            )
            .await,
        );
    }
    println!("Synapse at {base}: an m.room.encrypted event ({} B ciphertext) into a {}-member room, every member on /sync", args.size, args.members);
    println!();
    println!("| scenario | accepted msg/s | deliveries/s | ack p50 / p99 | send→last member p50 / p99 | delivered to all |");
    println!("|---|---:|---:|---:|---:|---:|");
    for mut o in outcomes {
        let secs = o.elapsed.as_secs_f64();
        let rate = o.sent as f64 / secs;
        println!(
            "| {} | {:.0} | {:.0} | {} / {} ms | {} / {} ms | {} of {} |",
            o.label,
            rate,
            o.delivered.len() as f64 * args.members as f64 / secs,
            ms(pct(&mut o.ack, 0.5)),
            ms(pct(&mut o.ack, 0.99)),
            ms(pct(&mut o.delivered, 0.5)),
            ms(pct(&mut o.delivered, 0.99)),
            o.delivered.len(),
            o.sent
        );
    }
    Ok(())
}
