//! End to end: a real relay (over real loopback HTTP, restarted on the same data) and three
//! people, each a `ledgerline` profile driven as a separate process, exactly as a firm
//! would script it. Covers onboarding with fingerprints, customer files, grants and
//! removal (new epoch), chat with a late room key, search, the outbox across a relay
//! outage, a client killed mid-sync, and relays that send garbage or drop connections.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ledgerline_relay::config::Config;
use ledgerline_relay::server::Running;
use ledgerline_testkit::ksef::KsefServer;
use ledgerline_testkit::{attachment_part, word, Dovecot, MAIL_PASSWORD, MAIL_USER};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASS: &str = "hasło testowe";
const FILE: &str = "Kowalski sp. z o.o.";

/// The relay, in this process, on a fixed loopback address so it can come back.
struct Relay {
    addr: SocketAddr,
    dir: PathBuf,
    /// What it was started with (a restart keeps its store and settings).
    config: Config,
    running: Option<Running>,
}

impl Relay {
    async fn start(dir: &Path, addr: SocketAddr) -> Self {
        Self::start_with(dir, addr, None).await
    }

    async fn start_with(dir: &Path, addr: SocketAddr, tls: Option<(PathBuf, PathBuf)>) -> Self {
        let config = Config {
            listen: addr,
            data_dir: dir.to_owned(),
            tls_cert: tls.as_ref().map(|t| t.0.clone()),
            tls_key: tls.map(|t| t.1),
            ..Config::default()
        };
        Self::start_config(config).await
    }

    /// A relay whose clock runs `offset_ms` ahead (time-bound behaviour: retention).
    async fn start_later(dir: &Path, addr: SocketAddr, offset_ms: i64) -> Self {
        Self::start_config(Config {
            listen: addr,
            data_dir: dir.to_owned(),
            clock_offset_ms: offset_ms,
            ..Config::default()
        })
        .await
    }

    async fn start_config(mut config: Config) -> Self {
        let dir = config.data_dir.clone();
        let running = Running::start(config.clone()).await.unwrap();
        config.listen = running.addr;
        Self {
            addr: running.addr,
            dir,
            config,
            running: Some(running),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        *self = Self::start_config(self.config.clone()).await;
    }
}

/// One finished `ledgerline` run.
#[derive(Debug)]
struct Run {
    code: i32,
    json: Value,
    stderr: String,
}

thread_local! {
    /// How far ahead this test's client processes run their clocks (simulated time).
    static CLIENT_CLOCK_AHEAD_MS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn command(profile: &Path, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerline"));
    c.arg("--profile")
        .arg(profile)
        .arg("--json")
        .args(args)
        .env("LEDGERLINE_PASSPHRASE", PASS)
        .env_remove("LEDGERLINE_RELAY")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let ahead = CLIENT_CLOCK_AHEAD_MS.with(std::cell::Cell::get);
    if ahead != 0 {
        c.env("LEDGERLINE_CLOCK_OFFSET_MS", ahead.to_string());
    }
    c
}

async fn run_with(mut c: tokio::process::Command) -> Run {
    let out = tokio::time::timeout(Duration::from_secs(60), c.output())
        .await
        .expect("ledgerline hung")
        .unwrap();
    run_of(out)
}

fn run_of(out: std::process::Output) -> Run {
    let stdout = String::from_utf8(out.stdout).unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

async fn ll(profile: &Path, args: &[&str]) -> Run {
    run_with(command(profile, args)).await
}

/// Runs with `input` on standard input.
async fn ll_stdin(profile: &Path, args: &[&str], input: Vec<u8>) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut c = command(profile, args);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The command may refuse before reading it all: a broken pipe is its answer, not ours.
    let _ = stdin.write_all(&input).await;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("ledgerline hung")
        .unwrap();
    run_of(out)
}

/// Runs and insists on success.
async fn ok(profile: &Path, args: &[&str]) -> Value {
    let r = ll(profile, args).await;
    assert_eq!(r.code, 0, "ledgerline {args:?} failed: {}", r.stderr);
    r.json
}

fn bodies(read: &Value) -> Vec<String> {
    read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            if m["waiting_for_key"].as_bool().unwrap() {
                "(waiting)".to_owned()
            } else if m["deleted"].as_bool().unwrap() {
                "(deleted)".to_owned()
            } else {
                m["body"].as_str().unwrap().to_owned()
            }
        })
        .collect()
}

struct Firm {
    owner: PathBuf,
    anna: PathBuf,
    bartek: PathBuf,
}

/// Founds a firm and brings in Anna and Bartek through invitations and fingerprints.
async fn found(dir: &Path, relay: &str) -> Firm {
    let f = Firm {
        owner: dir.join("owner"),
        anna: dir.join("anna"),
        bartek: dir.join("bartek"),
    };
    let o = ok(
        &f.owner,
        &[
            "firm",
            "create",
            "--relay",
            relay,
            "--firm",
            "Biuro Rachunkowe Nowak",
            "--me",
            "Ewa Nowak",
        ],
    )
    .await;
    assert_eq!(o["fingerprint"].as_str().unwrap().len(), 24);
    for (who, profile) in [("Anna Kowalczyk", &f.anna), ("Bartek Zieliński", &f.bartek)] {
        let code = ok(&f.owner, &["invite", "create", "--name", who]).await["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let joined = ok(
            profile,
            &["join", "--relay", relay, "--code", &code, "--me", who],
        )
        .await;
        let fp = joined["fingerprint"].as_str().unwrap().to_owned();
        // Not approved yet: a clear refusal, nothing else.
        let early = ll(profile, &["sync"]).await;
        assert_eq!(early.code, 7, "{}", early.stderr);
        assert!(early.stderr.contains("not approved"), "{}", early.stderr);
        // A wrong fingerprint is refused and changes nothing.
        let wrong = ll(
            &f.owner,
            &["approve", who, "--fingerprint", "0000 0000 0000 0000 0000"],
        )
        .await;
        assert_eq!(wrong.code, 5, "{}", wrong.stderr);
        assert!(wrong.stderr.contains("fingerprint_mismatch"));
        ok(&f.owner, &["approve", who, "--fingerprint", &fp]).await;
        ok(profile, &["sync"]).await;
    }
    f
}

/// Invites `who` with `role`, joins from `profile`, approves with the read-out fingerprint
/// and syncs: a new member, as an admin and the joiner do it.
async fn admit(owner: &Path, profile: &Path, relay: &str, who: &str, role: &str) {
    let code = ok(owner, &["invite", "create", "--name", who, "--role", role]).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let fp = ok(
        profile,
        &["join", "--relay", relay, "--code", &code, "--me", who],
    )
    .await["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(owner, &["approve", who, "--fingerprint", &fp]).await;
    ok(profile, &["sync"]).await;
}

fn read_names(read: &Value) -> BTreeSet<String> {
    read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .collect()
}

fn names(v: &Value, list: &str, field: &str) -> BTreeSet<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[field].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firm_works_end_to_end_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    firm_end_to_end(dir.path(), relay).await;
}

/// The same scenario on a relay whose store is PostgreSQL and whose blobs are in an
/// S3-compatible bucket (real servers on loopback: Debian's PostgreSQL, moto): then no row
/// of any table and no object of the bucket holds a name or a text either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firm_works_end_to_end_on_postgresql_and_s3() {
    use ledgerline_testkit::s3::{ACCESS_KEY_ID, BUCKET, S3, SECRET_ACCESS_KEY};
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("pg");
    let (pg, s3) = tokio::join!(
        tokio::task::spawn_blocking(move || ledgerline_testkit::postgres::Postgres::start(&at)),
        tokio::task::spawn_blocking(S3::start)
    );
    let (pg, s3) = (pg.unwrap(), s3.unwrap());
    let relay = Relay::start_config(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("relay"),
        database_url: Some(pg.url().into()),
        s3_bucket: Some(BUCKET.into()),
        s3_endpoint: Some(s3.endpoint()),
        s3_access_key_id: Some(ACCESS_KEY_ID.into()),
        s3_secret_access_key: Some(SECRET_ACCESS_KEY.to_owned().into()),
        ..Config::default()
    })
    .await;
    assert!(
        !dir.path().join("relay/relay.sqlite3").exists(),
        "no SQLite beside PostgreSQL"
    );
    firm_end_to_end(dir.path(), relay).await;
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    let (mut rows_seen, mut messages) = (0, 0);
    for t in &tables {
        let table: String = t.get(0);
        // Every column as its bytes: bytea raw, everything else as its text.
        let rows = client
            .query(&format!("SELECT * FROM {table}"), &[])
            .await
            .unwrap();
        for row in &rows {
            rows_seen += 1;
            for (i, col) in row.columns().iter().enumerate() {
                let bytes: Vec<u8> = if *col.type_() == tokio_postgres::types::Type::BYTEA {
                    row.get::<_, Option<Vec<u8>>>(i).unwrap_or_default()
                } else {
                    continue;
                };
                for needle in RELAY_MUST_NOT_HOLD {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{table}.{} holds {needle:?}",
                        col.name()
                    );
                }
            }
        }
        if table == "room_messages" {
            messages = rows.len();
        }
    }
    assert!(messages >= 5, "the messages are in PostgreSQL ({messages})");
    assert!(rows_seen > 100, "{rows_seen} rows scanned");
    // Every document in the bucket: the keys listed through S3's own API, the bytes read
    // as the relay reads them.
    let listing = reqwest::get(format!("{}/{BUCKET}?list-type=2", s3.endpoint()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !listing.contains("<IsTruncated>true"),
        "one page holds them"
    );
    // `<firm>/<document>/<n>` (parts) or `<firm>/<document>/<copy>/<n>` (relay/src/blobs.rs).
    let documents: BTreeSet<(String, String, Option<String>)> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .filter_map(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            let copy = (parts.len() == 4).then(|| parts[2].to_owned());
            Some((parts.first()?.to_string(), parts.get(1)?.to_string(), copy))
        })
        .collect();
    assert!(!documents.is_empty(), "the documents are in the bucket");
    let bucket = ledgerline_relay::blobs::Bucket::open(&Config {
        s3_bucket: Some(BUCKET.into()),
        s3_endpoint: Some(s3.endpoint()),
        s3_access_key_id: Some(ACCESS_KEY_ID.into()),
        s3_secret_access_key: Some(SECRET_ACCESS_KEY.to_owned().into()),
        ..Config::default()
    })
    .await
    .unwrap();
    for (firm, doc, copy) in &documents {
        use futures_util::StreamExt;
        let id = |h: &str| <[u8; 16]>::try_from(hex::decode(h).unwrap()).unwrap();
        let (firm, doc, copy) = (
            ledgerline_protocol::ids::FirmId(id(firm)),
            ledgerline_protocol::ids::DocumentId(id(doc)),
            copy.as_deref().map(id),
        );
        let size: u64 = bucket
            .objects(firm, doc, copy)
            .await
            .unwrap()
            .iter()
            .map(|(_, s)| s)
            .sum();
        let mut stream = bucket.read(firm, doc, copy, size, 0..size).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        assert!(bytes.len() > 100_000, "{doc}: {} bytes", bytes.len());
        for needle in RELAY_MUST_NOT_HOLD {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "document {doc} in the bucket holds {needle:?}"
            );
        }
    }
    assert!(
        all_files(&dir.path().join("relay"))
            .iter()
            .all(|f| !f.starts_with(dir.path().join("relay/blobs")) || f.is_dir()),
        "no blob on the relay's disk"
    );
}

/// What the relay's storage never holds in the scenario below: names and texts.
const RELAY_MUST_NOT_HOLD: [&str; 7] = [
    FILE,
    "Anna Kowalczyk",
    "Bartek Zieli",
    "Biuro Rachunkowe Nowak",
    "deklarację VAT-7",
    "Wysłane w czasie awarii",
    "Po odejściu Anny",
];

/// A firm founded, administered and used through the CLI against `relay`, with the relay
/// stopped and restarted on the way; its files are scanned for plaintext.
async fn firm_end_to_end(dir: &Path, mut relay: Relay) {
    let url = relay.url();
    let f = found(dir, &url).await;

    // The roster as everyone sees it.
    let members = ok(&f.anna, &["member", "list"]).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 3);
    let roles = names(&ok(&f.owner, &["member", "list"]).await, "members", "role");
    assert_eq!(roles, BTreeSet::from(["admin".into(), "member".into()]));
    assert_eq!(
        names(&ok(&f.owner, &["member", "list"]).await, "members", "name"),
        BTreeSet::from([
            "Ewa Nowak".into(),
            "Anna Kowalczyk".into(),
            "Bartek Zieliński".into()
        ])
    );
    let devices = ok(&f.bartek, &["device", "list"]).await;
    assert_eq!(devices["devices"].as_array().unwrap().len(), 3);
    // Only admins administer.
    let r = ll(&f.anna, &["file", "create", "Nie moje"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    let r = ll(&f.anna, &["invite", "create", "--name", "X"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);

    // A customer file; Anna is granted, Bartek is not.
    let file = ok(&f.owner, &["file", "create", FILE]).await["file"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&f.owner, &["chat", "send", FILE, "Notatka założycielska"]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    // A document, its name and text the firm's own: the relay's storage (disk or bucket)
    // holds neither.
    let src = dir.join("Bartek Zieliński — deklarację VAT-7.txt");
    let text = "Biuro Rachunkowe Nowak: deklarację VAT-7 dla Kowalski sp. z o.o. ".repeat(2_000);
    std::fs::write(&src, &text).unwrap();
    let up = ok(&f.owner, &["doc", "upload", FILE, src.to_str().unwrap()]).await;
    let got = dir.join("anna-vat7.txt");
    let down = ok(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "Bartek Zieliński — deklarację VAT-7.txt",
            "--out",
            got.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(down["root"], up["root"]);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), text);
    ok(
        &f.owner,
        &["chat", "send", FILE, "Pani Anno, proszę o deklarację VAT-7"],
    )
    .await;
    let files = ok(&f.anna, &["file", "list"]).await;
    assert_eq!(
        names(&files, "files", "name"),
        BTreeSet::from([FILE.into()])
    );
    // Anna reads the whole file conversation, including what was said before her grant
    // (the granting admin forwards the room's sessions to her devices).
    let read = ok(&f.anna, &["chat", "read", FILE]).await;
    assert_eq!(
        bodies(&read),
        vec![
            "Notatka założycielska",
            "Pani Anno, proszę o deklarację VAT-7"
        ]
    );
    // The same file by id.
    assert_eq!(ok(&f.anna, &["chat", "read", &file]).await["file"], file);
    ok(&f.anna, &["chat", "send", FILE, "Zrobione, wysyłam jutro"]).await;
    let seq = ok(&f.anna, &["chat", "send", FILE, "Literówka"]).await["seq"]
        .as_u64()
        .unwrap();
    ok(
        &f.anna,
        &["chat", "edit", FILE, &seq.to_string(), "Poprawione"],
    )
    .await;
    let r = ll(&f.bartek, &["chat", "read", FILE]).await;
    assert_eq!(r.code, 6, "Bartek has no access: {}", r.stderr);
    let owner_view = bodies(&ok(&f.owner, &["chat", "read", FILE]).await);
    assert_eq!(
        owner_view,
        vec![
            "Notatka założycielska",
            "Pani Anno, proszę o deklarację VAT-7",
            "Zrobione, wysyłam jutro",
            "Poprawione"
        ]
    );
    // Search is local and folds Polish diacritics.
    let hits = ok(&f.anna, &["search", "deklaracje"]).await;
    assert!(hits["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["text"].as_str().unwrap().contains("deklarację VAT-7")));
    assert!(ok(&f.bartek, &["search", "deklaracje"]).await["results"]
        .as_array()
        .unwrap()
        .is_empty());

    // Names travel in the admin's signed-in directory: everyone knows everyone's name.
    assert_eq!(
        names(&ok(&f.anna, &["member", "list"]).await, "members", "name"),
        BTreeSet::from([
            "Ewa Nowak".into(),
            "Anna Kowalczyk".into(),
            "Bartek Zieliński".into()
        ])
    );

    // Anna links a second device: code, fingerprint comparison, master key over Olm.
    let anna2 = dir.join("anna-laptop");
    let code = ok(&f.anna, &["device", "link"]).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = ok(
        &anna2,
        &[
            "device",
            "join",
            "--relay",
            &url,
            "--code",
            &code,
            "--me",
            "Anna Kowalczyk",
        ],
    )
    .await;
    let fp2 = joined["fingerprint"].as_str().unwrap().to_owned();
    let r = ll(&anna2, &["sync"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("not linked"), "{}", r.stderr);
    let r = ll(
        &f.anna,
        &[
            "device",
            "approve",
            "--fingerprint",
            "1111 1111 1111 1111 1111",
        ],
    )
    .await;
    assert_eq!(
        r.code, 6,
        "a wrong fingerprint matches nothing: {}",
        r.stderr
    );
    ok(&f.anna, &["device", "approve", "--fingerprint", &fp2]).await;
    ok(&anna2, &["sync"]).await; // in the roster; publishes prekeys
    ok(&f.anna, &["sync"]).await; // hands over the master key and names
    ok(&anna2, &["sync"]).await;
    let who = ok(&anna2, &["whoami"]).await;
    let anna_who = ok(&f.anna, &["whoami"]).await;
    assert_eq!(who["member"], anna_who["member"]);
    assert_eq!(who["fingerprint"], anna_who["fingerprint"]);
    assert_ne!(who["device"], anna_who["device"]);
    assert_eq!(
        ok(&f.owner, &["device", "list"]).await["devices"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    ok(&f.owner, &["chat", "send", FILE, "Dla obu urządzeń Anny"]).await;
    let on_laptop = bodies(&ok(&anna2, &["chat", "read", FILE]).await);
    assert_eq!(on_laptop.last().unwrap(), "Dla obu urządzeń Anny");
    // The history from before the laptop was linked reads there too: her first device
    // passed on every session it held.
    assert!(
        on_laptop.contains(&"Pani Anno, proszę o deklarację VAT-7".to_owned())
            && on_laptop.contains(&"Zrobione, wysyłam jutro".to_owned()),
        "{on_laptop:?}"
    );
    ok(&anna2, &["chat", "send", FILE, "Z laptopa"]).await;
    assert_eq!(
        bodies(&ok(&f.anna, &["chat", "read", FILE]).await)
            .last()
            .unwrap(),
        "Z laptopa"
    );
    let r = read_names(&ok(&anna2, &["chat", "read", FILE]).await);
    assert!(r.contains("Ewa Nowak"), "{r:?}");

    // A late room key: Bartek is granted while his device has no prekeys left on the
    // relay... simulated by a new device that never synced: Cezary joins but stays idle.
    let cezary = dir.join("cezary");
    let code = ok(&f.owner, &["invite", "create", "--name", "Cezary"]).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let fp = ok(
        &cezary,
        &["join", "--relay", &url, "--code", &code, "--me", "Cezary"],
    )
    .await["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&f.owner, &["approve", "Cezary", "--fingerprint", &fp]).await;
    ok(&f.owner, &["file", "grant", FILE, "Cezary"]).await;
    ok(&f.owner, &["chat", "send", FILE, "Witamy Cezarego"]).await;
    // Cezary's first sync: the message is there, its key is not (he had no prekeys).
    let first = ok(&cezary, &["chat", "read", FILE]).await;
    assert_eq!(bodies(&first).last().unwrap(), "(waiting)");
    // The owner's next sync delivers the key; Cezary's next read decrypts the message.
    ok(&f.owner, &["sync"]).await;
    let later = ok(&cezary, &["chat", "read", FILE]).await;
    assert_eq!(bodies(&later).last().unwrap(), "Witamy Cezarego");
    assert!(
        !bodies(&later).contains(&"(waiting)".to_owned()),
        "the history reached Cezary too: {:?}",
        bodies(&later)
    );

    // Anna is removed from the file: a new epoch; she reads nothing new and cannot post.
    let removed = ok(&f.owner, &["file", "remove", FILE, "Anna Kowalczyk"]).await;
    assert_eq!(removed["epoch"], 1);
    ok(&f.owner, &["chat", "send", FILE, "Po odejściu Anny: tajne"]).await;
    let r = ll(&f.anna, &["chat", "send", FILE, "Czy mam jeszcze dostęp?"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    let anna_sync = ok(&f.anna, &["sync"]).await;
    assert_eq!(anna_sync["messages"], 0);
    assert!(ok(&f.anna, &["search", "tajne"]).await["results"]
        .as_array()
        .unwrap()
        .is_empty());
    let files = ok(&f.owner, &["file", "list"]).await;
    assert_eq!(files["files"][0]["epoch"], 1);
    // Cezary keeps the whole history through the epoch chain and reads the new message.
    let c = ok(&cezary, &["chat", "read", FILE]).await;
    assert_eq!(bodies(&c).last().unwrap(), "Po odejściu Anny: tajne");
    let cf = ok(&cezary, &["file", "list"]).await;
    assert_eq!(cf["files"][0]["epoch"], 1);
    assert_eq!(cf["files"][0]["name"], FILE);

    // The relay goes down: the message waits in the outbox (exit 75), then goes out once.
    relay.stop().await;
    let r = ll(&f.owner, &["chat", "send", FILE, "Wysłane w czasie awarii"]).await;
    assert_eq!(r.code, 75, "{}", r.stderr);
    let r = ll(&f.owner, &["sync"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("relay_unreachable"), "{}", r.stderr);
    relay.restart().await;
    let s = ok(&f.owner, &["sync"]).await;
    assert_eq!(s["sent"], 1);
    assert_eq!(ok(&f.owner, &["sync"]).await["sent"], 0);
    let c = bodies(&ok(&cezary, &["chat", "read", FILE]).await);
    assert_eq!(
        c.iter()
            .filter(|b| b.as_str() == "Wysłane w czasie awarii")
            .count(),
        1
    );

    // The relay's files (database, WAL, blobs) hold none of the names or texts.
    relay.stop().await;
    for p in all_files(&dir.join("relay")) {
        // SQLite may remove its -wal/-shm files as it closes.
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        for needle in RELAY_MUST_NOT_HOLD {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds {needle:?}",
                p.display()
            );
        }
    }
    relay.restart().await;

    // The store on disk is unreadable without the passphrase.
    let mut c = command(&f.owner, &["whoami"]);
    c.env("LEDGERLINE_PASSPHRASE", "złe hasło");
    let r = run_with(c).await;
    assert_eq!(r.code, 8, "{}", r.stderr);
    let db = std::fs::read(f.owner.join("ledgerline.db")).unwrap();
    for needle in [FILE.as_bytes(), b"Notatka", b"SQLite format 3"] {
        assert!(!db.windows(needle.len()).any(|w| w == needle));
    }
    relay.stop().await;
}

/// Serves every connection with `answer` (or closes it at once when empty).
async fn bad_relay(answer: &'static [u8]) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                if !answer.is_empty() {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(answer).await;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_clients_and_bad_relays_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Bartek Zieliński"]).await;
    ok(&f.owner, &["chat", "send", FILE, "pierwsza"]).await;
    ok(&f.bartek, &["sync"]).await;

    // Many messages, then Bartek's sync is killed at several points and resumed.
    const N: usize = 1_100; // more than two sync pages (500)
    {
        use ledgerline_client_core::profile::{Conversation, Profile, Unlock};
        use ledgerline_client_core::room::RoomEvent;
        let mut p = Profile::open(
            &f.owner,
            Unlock::Passphrase(zeroize::Zeroizing::new(PASS.into())),
        )
        .unwrap();
        let file = p.resolve_file(FILE).unwrap();
        for i in 0..N {
            p.send(
                Conversation::File(file),
                RoomEvent::Text {
                    body: format!("wiadomość {i}"),
                    reply_to: None,
                },
            )
            .await
            .unwrap();
        }
    }
    // Deterministic crashes between two local commits (the failpoint aborts the process),
    // then kills at arbitrary moments. After each, what is stored is a prefix that grows.
    let stored = || {
        use ledgerline_client_core::profile::{Profile, Unlock};
        let p = Profile::open(
            &f.bartek,
            Unlock::Passphrase(zeroize::Zeroizing::new(PASS.into())),
        )
        .unwrap();
        let file = p.resolve_file(FILE).unwrap();
        let seqs: Vec<u64> = p
            .conversation(ledgerline_client_core::profile::Conversation::File(file))
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        seqs.len()
    };
    let mut seen = vec![stored()];
    for after in [3u64, 1, 1] {
        let mut c = command(&f.bartek, &["sync"]);
        c.env("LEDGERLINE_CRASH_AFTER_COMMITS", after.to_string());
        let r = run_with(c).await;
        assert_ne!(r.code, 0, "the failpoint must stop the process");
        seen.push(stored());
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        seen.iter().any(|n| *n > 1 && *n < N + 1),
        "no crash landed mid-sync: {seen:?}"
    );
    for delay_ms in [100u64, 250, 400] {
        let mut child = command(&f.bartek, &["sync"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let read = ok(&f.bartek, &["chat", "read", FILE]).await;
    let msgs = read["messages"].as_array().unwrap();
    let seqs: Vec<u64> = msgs.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=(N as u64 + 1)).collect::<Vec<_>>(),
        "gap or duplicate"
    );
    let b = bodies(&read);
    assert_eq!(b[0], "pierwsza");
    for i in 0..N {
        assert_eq!(b[i + 1], format!("wiadomość {i}"));
    }

    // A relay that answers garbage: a clear error (exit 5), nothing changes locally.
    let garbage = bad_relay(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n<html>").await;
    let mut c = command(&f.bartek, &["sync"]);
    c.env("LEDGERLINE_RELAY", &garbage);
    let r = run_with(c).await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("relay_garbage"), "{}", r.stderr);
    let mut c = command(&f.bartek, &["chat", "send", FILE, "przez zły serwer"]);
    c.env("LEDGERLINE_RELAY", &garbage);
    assert_eq!(run_with(c).await.code, 5);

    // A relay that drops every connection: unreachable (exit 3); a message whose key
    // everyone already has is queued (exit 75) and sent once when the real relay is back.
    let dropper = bad_relay(b"").await;
    let mut c = command(&f.bartek, &["sync"]);
    c.env("LEDGERLINE_RELAY", &dropper);
    assert_eq!(run_with(c).await.code, 3);
    ok(&f.bartek, &["chat", "send", FILE, "klucz już rozdany"]).await;
    let mut c = command(&f.bartek, &["chat", "send", FILE, "w kolejce"]);
    c.env("LEDGERLINE_RELAY", &dropper);
    let r = run_with(c).await;
    assert_eq!(r.code, 75, "{}", r.stderr);
    // Killed while the outbox is being flushed, then run again: exactly one copy.
    let mut child = command(&f.bartek, &["sync"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    ok(&f.bartek, &["sync"]).await;
    let owner = bodies(&ok(&f.owner, &["chat", "read", FILE]).await);
    assert_eq!(owner.iter().filter(|b| *b == "w kolejce").count(), 1);
    assert_eq!(owner.iter().filter(|b| *b == "przez zły serwer").count(), 0);
    assert_eq!(owner.last().unwrap(), "w kolejce");
    relay.stop().await;
}

/// Fails if any file under the relay's data directory holds one of `needles`.
fn assert_relay_never_saw(relay: &Path, needles: &[&str]) {
    for p in all_files(relay) {
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds {needle:?}",
                p.display()
            );
        }
    }
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A loopback proxy to `relay` that cuts a connection once it has passed `after` bytes of
/// answer to a request whose first line holds `needle` (the connection drops mid-answer,
/// as on a network that fails).
async fn cutting_proxy(relay: SocketAddr, needle: &'static [u8], after: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut upstream) = tokio::net::TcpStream::connect(relay).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut ur, mut uw) = upstream.split();
                let armed = std::sync::atomic::AtomicBool::new(false);
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = cr.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        let chunk = &buf[..n];
                        let line_end = chunk.iter().position(|b| *b == b'\r').unwrap_or(n);
                        if chunk[..line_end].windows(needle.len()).any(|w| w == needle) {
                            armed.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        if uw.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut passed = 0usize;
                    loop {
                        let n = ur.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        if armed.load(std::sync::atomic::Ordering::SeqCst) {
                            passed += n;
                            if passed > after {
                                break;
                            }
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                // Whichever side ends first ends the connection: a cut answer is a reset.
                tokio::select! {
                    () = up => {}
                    () = down => {}
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_stream_survive_crashes_and_refuse_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;

    // A document of a few chunks plus a ragged end, pseudo-random content.
    let src = dir.path().join("Deklaracja VAT-7 03-2026.pdf");
    let mut data = Vec::with_capacity(3 * 65_536 + 1234);
    let mut x: u32 = 7;
    for _ in 0..(3 * 65_536 + 1234) {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        data.push((x >> 16) as u8);
    }
    std::fs::write(&src, &data).unwrap();
    let up = ok(&f.owner, &["doc", "upload", FILE, src.to_str().unwrap()]).await;
    assert_eq!(up["size"], data.len() as u64);
    // Anna finds it by name, downloads it; the bytes are the same.
    let out = dir.path().join("anna.pdf");
    let got = ok(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "Deklaracja VAT-7 03-2026.pdf",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(got["root"], up["root"]);
    assert_eq!(std::fs::read(&out).unwrap(), data);
    // The connection cut in the middle of the download: a clear error, and neither the
    // file nor a partial one is left; the next try gets it whole.
    let cut = cutting_proxy(relay.addr, b"/documents/", 64 * 1024).await;
    let out2 = dir.path().join("anna-przerwane.pdf");
    let mut c = command(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "Deklaracja VAT-7 03-2026.pdf",
            "--out",
            out2.to_str().unwrap(),
        ],
    );
    c.env("LEDGERLINE_RELAY", &cut);
    let r = run_with(c).await;
    // Exit 3, like any relay that cannot be reached: the answer ended early.
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("relay_unreachable"), "{}", r.stderr);
    assert!(!out2.exists(), "no file from a cut download");
    assert!(
        !dir.path().join("anna-przerwane.pdf.partial").exists(),
        "no partial file left"
    );
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "Deklaracja VAT-7 03-2026.pdf",
            "--out",
            out2.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(std::fs::read(&out2).unwrap(), data);
    assert!(ok(&f.anna, &["search", "deklaracja"]).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["kind"] == "document"));
    // Bartek has no access: refused, nothing written.
    let r = ll(
        &f.bartek,
        &["doc", "download", FILE, "x", "--out", "/nonexistent/x"],
    )
    .await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    // The relay never saw the name or the content.
    for p in all_files(&dir.path().join("relay")) {
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        for needle in [&b"Deklaracja VAT-7"[..], &data[1000..1064]] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext",
                p.display()
            );
        }
    }

    // Crash right after the upload is recorded, before any byte is sent: `sync` finishes.
    let big = dir.path().join("wyciąg bankowy.csv");
    std::fs::write(&big, vec![b'7'; 24 << 20]).unwrap();
    let mut c = command(&f.owner, &["doc", "upload", FILE, big.to_str().unwrap()]);
    c.env("LEDGERLINE_CRASH_AFTER_COMMITS", "1");
    assert_ne!(run_with(c).await.code, 0);
    assert_eq!(ok(&f.owner, &["sync"]).await["uploads_finished"], 1);
    assert_eq!(ok(&f.owner, &["sync"]).await["uploads_finished"], 0);
    // Aborted in the middle of the parts (the relay sees the connection drop): `sync`
    // resumes after the parts the relay holds and finishes it once.
    let mut c = command(&f.owner, &["doc", "upload", FILE, big.to_str().unwrap()]);
    c.env(
        "LEDGERLINE_CRASH_AFTER_UPLOAD_BYTES",
        (10u64 << 20).to_string(),
    );
    assert_ne!(run_with(c).await.code, 0);
    assert_eq!(ok(&f.owner, &["sync"]).await["uploads_finished"], 1);
    // A file changed between the crash and the resume is refused, not mixed.
    let mut c = command(&f.owner, &["doc", "upload", FILE, big.to_str().unwrap()]);
    c.env(
        "LEDGERLINE_CRASH_AFTER_UPLOAD_BYTES",
        (10u64 << 20).to_string(),
    );
    assert_ne!(run_with(c).await.code, 0);
    std::fs::write(&big, vec![b'8'; 24 << 20]).unwrap();
    let s = ok(&f.owner, &["sync"]).await;
    assert_eq!(s["uploads_finished"], 0);
    assert!(s["warnings"].to_string().contains("changed"), "{s}");
    std::fs::write(&big, vec![b'7'; 24 << 20]).unwrap();
    assert_eq!(ok(&f.owner, &["sync"]).await["uploads_finished"], 0);
    // Killed at arbitrary moments; each killed run is at most one document.
    let big2 = dir.path().join("księga główna.csv");
    std::fs::write(&big2, vec![b'9'; 40 << 20]).unwrap();
    for delay_ms in [300u64, 900] {
        let mut child = command(&f.owner, &["doc", "upload", FILE, big2.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    ok(&f.owner, &["sync"]).await;
    let docs = ok(&f.anna, &["doc", "list", FILE]).await;
    let names: Vec<String> = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "wyciąg bankowy.csv").count(),
        2,
        "one per upload run that was recorded: {names:?}"
    );
    assert!(
        names.iter().filter(|n| *n == "księga główna.csv").count() <= 2,
        "each killed run is at most one upload: {names:?}"
    );
    for d in docs["documents"].as_array().unwrap() {
        if d["name"] != "wyciąg bankowy.csv" {
            continue;
        }
        let out = dir.path().join("wyciag.csv");
        ok(
            &f.anna,
            &[
                "doc",
                "download",
                FILE,
                d["document"].as_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .await;
        assert_eq!(std::fs::read(&out).unwrap(), vec![b'7'; 24 << 20]);
    }

    // The relay flips one byte of the first document: the download fails, nothing is kept.
    let blob = all_files(&dir.path().join("relay").join("blobs"))
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() == up_ct_size(&data))
        .expect("the first document's blob");
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[70_000] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let out = dir.path().join("tampered.pdf");
    let r = ll(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "Deklaracja VAT-7 03-2026.pdf",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(!out.exists());
    assert!(!dir.path().join("tampered.pdf.partial").exists());
    relay.stop().await;
}

/// Ciphertext size of a document of `data.len()` bytes: header + one tag per chunk.
/// The relay's disk fills up (another program takes the space): what the clients send
/// meanwhile waits on their side, says why (exit 75, `storage_full`, "disk is full"), and
/// nothing of it is half-stored; once the room is back one sync sends it, and the other
/// member gets every message and the document exactly once, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_disk_fills_up_keeps_what_clients_send_waiting_and_loses_nothing() {
    use ledgerline_testkit::disk::Tmpfs;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let Some(disk) = Tmpfs::mount(&data, 64 << 20) else {
        return;
    };
    let relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    ok(&f.owner, &["chat", "send", FILE, "Przed awarią dysku"]).await;
    ok(&f.anna, &["sync"]).await;

    let filler = disk.fill();
    // A document: its parts find no room; the upload waits.
    let src = dir.path().join("Bilans 2026.pdf");
    let bytes: Vec<u8> = (0..(2u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&src, &bytes).unwrap();
    let r = ll(&f.owner, &["doc", "upload", FILE, src.to_str().unwrap()]).await;
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr.contains("storage_full") && r.stderr.contains("disk is full"),
        "{}",
        r.stderr
    );
    // Messages: the database may still have room for a few (its log reuses its space);
    // the first it has none for waits in the outbox, with the relay's reason.
    let mut sent = Vec::new();
    loop {
        let text = format!("W czasie awarii dysku {}", sent.len());
        let r = ll(&f.owner, &["chat", "send", FILE, &text]).await;
        sent.push(text);
        if r.code == 75 {
            assert!(r.stderr.contains("storage_full"), "{}", r.stderr);
            break;
        }
        assert_eq!(r.code, 0, "stored or queued: {}", r.stderr);
        assert!(sent.len() < 50, "the relay's disk never filled");
    }
    // Still full: a sync cannot send them yet, and says why.
    let r = ll(&f.owner, &["sync"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("disk is full"), "{}", r.stderr);

    // The operator makes room: one sync finishes the upload and sends the message.
    std::fs::remove_file(filler).unwrap();
    let s = ok(&f.owner, &["sync"]).await;
    assert_eq!(s["sent"], 1, "the queued message: {s}");
    assert_eq!(
        ok(&f.owner, &["sync"]).await["sent"],
        0,
        "nothing left waiting"
    );
    let c = bodies(&ok(&f.anna, &["chat", "read", FILE]).await);
    for text in sent
        .iter()
        .map(String::as_str)
        .chain(["Przed awarią dysku"])
    {
        assert_eq!(
            c.iter().filter(|b| b.as_str() == text).count(),
            1,
            "{text}: {c:?}"
        );
    }
    let listed = ok(&f.anna, &["doc", "list", FILE]).await;
    assert_eq!(
        listed["documents"].as_array().unwrap().len(),
        1,
        "one document: {listed}"
    );
    let out = dir.path().join("bilans-anna.pdf");
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "Bilans 2026.pdf",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert!(std::fs::read(&out).unwrap() == bytes, "whole");
    drop(relay);
}

fn up_ct_size(data: &[u8]) -> u64 {
    let chunks = data.len().div_ceil(65_536).max(1);
    (36 + data.len() + 16 * chunks) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_relays_are_verified_against_the_offices_ca() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (dir.path().join("relay.pem"), dir.path().join("relay.key"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let mut relay = Relay::start_with(
        &dir.path().join("relay"),
        "127.0.0.1:0".parse().unwrap(),
        Some((cert_pem.clone(), key_pem)),
    )
    .await;
    let url = format!("https://localhost:{}", relay.addr.port());
    let create = |profile: PathBuf, ca: Option<PathBuf>| {
        let mut c = command(
            &profile,
            &[
                "firm", "create", "--relay", &url, "--firm", "TLS", "--me", "Ewa",
            ],
        );
        match ca {
            Some(p) => c.env("LEDGERLINE_CA_FILE", p),
            None => c.env_remove("LEDGERLINE_CA_FILE"),
        };
        c
    };
    // A certificate nobody vouched for: refused before any request is sent.
    let r = run_with(create(dir.path().join("a"), None)).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("a").join("ledgerline.db").exists());
    // With the office's CA it works, over TLS only.
    let r = run_with(create(dir.path().join("b"), Some(cert_pem.clone()))).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut c = command(&dir.path().join("b"), &["sync"]);
    c.env("LEDGERLINE_CA_FILE", &cert_pem);
    assert_eq!(run_with(c).await.code, 0);
    relay.stop().await;
}

/// Reads JSON lines from a watching `ledgerline sync --watch --json` until one matches.
async fn wait_for<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap()
            .unwrap_or_else(|| panic!("watch ended before {what}"));
        let v: Value = serde_json::from_str(&line).unwrap();
        if pred(&v) {
            return v;
        }
    }
}

fn last_body(profile: &Path) -> String {
    use ledgerline_client_core::profile::{Profile, Unlock};
    let p = Profile::open(
        profile,
        Unlock::Passphrase(zeroize::Zeroizing::new(PASS.into())),
    )
    .unwrap();
    let file = p.resolve_file(FILE).unwrap();
    p.conversation(ledgerline_client_core::profile::Conversation::File(file))
        .unwrap()
        .last()
        .and_then(|m| m.body.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sync_follows_pushes_and_survives_relay_restarts() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    ok(&f.owner, &["chat", "send", FILE, "przed"]).await;

    let mut child = command(&f.anna, &["sync", "--watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    wait_for(&mut lines, "connected", |v| v["event"] == "connected").await;
    wait_for(&mut lines, "first sync", |v| v["event"] == "synced").await;
    assert_eq!(last_body(&f.anna), "przed");

    // A message arrives by push, without Anna running anything.
    ok(&f.owner, &["chat", "send", FILE, "na żywo 1"]).await;
    wait_for(&mut lines, "a pushed message", |v| {
        v["event"] == "synced" && v["report"]["messages"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(last_body(&f.anna), "na żywo 1");

    // The relay restarts: the watcher notices, reconnects, catches up, follows again.
    relay.stop().await;
    wait_for(&mut lines, "disconnected", |v| v["event"] == "disconnected").await;
    relay.restart().await;
    wait_for(&mut lines, "reconnected", |v| v["event"] == "connected").await;
    ok(&f.owner, &["chat", "send", FILE, "na żywo 2"]).await;
    wait_for(&mut lines, "a pushed message after the restart", |v| {
        v["event"] == "synced" && v["report"]["messages"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(last_body(&f.anna), "na żywo 2");
    let _ = child.start_kill();
    let _ = child.wait().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_key_lives_in_the_os_keyring_when_there_is_one() {
    use ledgerline_client_core::keystore;
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let profile = dir.path().join("owner");
    let no_pass = |args: &[&str]| {
        let mut c = command(&profile, args);
        c.env_remove("LEDGERLINE_PASSPHRASE");
        c
    };
    let create = [
        "firm", "create", "--relay", &url, "--firm", "K", "--me", "Ewa",
    ];
    if !keystore::available() {
        // CI provides a Secret Service (scripts/test starts one); elsewhere, without a
        // keyring, a new profile needs a passphrase and says so.
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run with a Secret Service (gnome-keyring in a D-Bus session)"
        );
        let r = run_with(no_pass(&create)).await;
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("LEDGERLINE_PASSPHRASE"), "{}", r.stderr);
        relay.stop().await;
        return;
    }
    let r = run_with(no_pass(&create)).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(profile.join(keystore::MARKER_FILE).exists());
    assert!(
        !profile.join(keystore::WRAPPED_KEY_FILE).exists() && !profile.join("store.salt").exists(),
        "no passphrase was used"
    );
    // It opens with the keyring alone; a passphrase in the environment is not needed.
    let r = run_with(no_pass(&["whoami"])).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Without the keyring entry the store stays shut.
    keystore::forget(&profile).unwrap();
    let r = run_with(no_pass(&["whoami"])).await;
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains("keyring"), "{}", r.stderr);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_rooms_direct_chats_and_read_markers() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;

    // A team room: name and members travel encrypted; Bartek is not in it.
    let room = ok(
        &f.owner,
        &["room", "create", "Zespół VAT", "--member", "Anna Kowalczyk"],
    )
    .await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&f.owner, &["chat", "send", "Zespół VAT", "Spotkanie o 10"]).await;
    let read = ok(&f.anna, &["chat", "read", "Zespół VAT"]).await;
    assert_eq!(read["room"], room);
    assert_eq!(bodies(&read), vec!["Spotkanie o 10"]);

    // A text longer than a command line may hold comes on standard input, whole; one
    // longer than a room message may carry is refused before anything is queued.
    let minutes: String = (1..=4000)
        .map(|i| format!("{i}. Protokół: zaliczka CIT-8 ✓\n"))
        .collect();
    assert!(minutes.len() > 128 * 1024);
    let r = ll_stdin(
        &f.owner,
        &["chat", "send", "Zespół VAT", "-"],
        minutes.clone().into_bytes(),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let too_long = "ż".repeat(600_000);
    let r = ll_stdin(
        &f.owner,
        &["chat", "send", "Zespół VAT", "-"],
        too_long.into_bytes(),
    )
    .await;
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(
        (r.code, e["error"]["code"].as_str()),
        (1, Some("invalid")),
        "{}",
        r.stderr
    );
    assert_eq!(e["error"]["reason"], "message_too_long", "{}", r.stderr);
    assert!(r.stderr.contains("too long"), "{}", r.stderr);
    let r = ll_stdin(
        &f.owner,
        &["chat", "send", "Zespół VAT", "-"],
        b"\xff\xfe".to_vec(),
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let synced = ok(&f.owner, &["sync"]).await;
    assert!(
        synced["warnings"].as_array().is_none_or(Vec::is_empty),
        "{synced}"
    );
    let read = ok(&f.anna, &["chat", "read", "Zespół VAT"]).await;
    assert_eq!(
        bodies(&read),
        vec![
            "Spotkanie o 10".to_owned(),
            minutes.trim_end_matches('\n').to_owned()
        ]
    );
    let rooms = ok(&f.anna, &["room", "list"]).await;
    assert_eq!(rooms["rooms"][0]["name"], "Zespół VAT");
    assert_eq!(rooms["rooms"][0]["members"].as_array().unwrap().len(), 2);
    assert!(ok(&f.bartek, &["room", "list"]).await["rooms"]
        .as_array()
        .unwrap()
        .is_empty());
    let r = ll(&f.bartek, &["chat", "read", &room]).await;
    assert_eq!(r.code, 6, "{}", r.stderr);

    // A direct chat, created on first use, found by the other side by name.
    ok(
        &f.anna,
        &["chat", "send", "@Bartek Zieliński", "Cześć Bartku"],
    )
    .await;
    let dm = ok(&f.bartek, &["chat", "read", "@Anna Kowalczyk"]).await;
    assert_eq!(bodies(&dm), vec!["Cześć Bartku"]);
    ok(
        &f.bartek,
        &["chat", "send", "@Anna Kowalczyk", "Cześć Anno"],
    )
    .await;
    // The same chat both ways (not a second one).
    assert_eq!(
        bodies(&ok(&f.anna, &["chat", "read", "@Bartek Zieliński"]).await),
        vec!["Cześć Bartku", "Cześć Anno"]
    );
    assert_eq!(
        ok(&f.anna, &["room", "list"]).await["rooms"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The owner sees neither the chat nor its texts.
    assert!(ok(&f.owner, &["search", "Bartku"]).await["results"]
        .as_array()
        .unwrap()
        .is_empty());

    // Read markers: Anna sees that Bartek has read her message.
    let bartek_id = ok(&f.bartek, &["whoami"]).await["member"].clone();
    let before = ok(&f.anna, &["chat", "read", "@Bartek Zieliński"]).await;
    assert!(before["messages"][0]["read_by"]
        .as_array()
        .unwrap()
        .is_empty());
    ok(&f.bartek, &["chat", "mark-read", "@Anna Kowalczyk"]).await;
    let after = ok(&f.anna, &["chat", "read", "@Bartek Zieliński"]).await;
    assert_eq!(
        after["messages"][0]["read_by"],
        serde_json::json!([bartek_id])
    );
    assert_eq!(bodies(&after).len(), 2, "read markers are not messages");
    relay.stop().await;
}

/// Copies a stopped relay's data directory.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `ledgerline sync` and expects the integrity exit code with `needle` in the error.
async fn refused_as(profile: &Path, needle: &str) {
    let r = ll(profile, &["sync"]).await;
    assert_eq!(
        r.code, 5,
        "expected an integrity failure ({needle}): {} {}",
        r.stderr, r.json
    );
    assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_checked_at_every_sync_and_before_every_download() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let addr = relay.addr;
    let f = found(dir.path(), &relay.url()).await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    let src = dir.path().join("Wyciąg bankowy 03-2026.pdf");
    std::fs::write(&src, vec![0x25u8; 100_000]).unwrap();
    ok(&f.owner, &["doc", "upload", FILE, src.to_str().unwrap()]).await;
    let download = |who: &Path, n: u32| {
        let out = dir.path().join(format!("out-{n}.pdf"));
        let who = who.to_owned();
        async move {
            ok(
                &who,
                &[
                    "doc",
                    "download",
                    FILE,
                    "Wyciąg bankowy 03-2026.pdf",
                    "--out",
                    out.to_str().unwrap(),
                ],
            )
            .await
        }
    };
    // Each download's own entry is proven in a checkpoint before the share is used.
    download(&f.anna, 1).await;
    let first = ok(&f.anna, &["sync"]).await["log_size"].as_u64().unwrap();
    assert!(first >= 1);
    // Syncs that bring nothing new leave no entries (key fetches are incremental), so the
    // log grows with what people do, not with how often their devices poll.
    let idle = ok(&f.anna, &["sync"]).await["log_size"].as_u64().unwrap();
    let again = ok(&f.anna, &["sync"]).await["log_size"].as_u64().unwrap();
    assert_eq!(idle, again, "an idle sync added audit entries");
    let first = again;

    // A copy of the relay as it is now; then the log grows.
    relay.stop().await;
    let old = dir.path().join("relay-old");
    copy_dir(&data, &old);
    relay = Relay::start(&data, addr).await;
    download(&f.anna, 2).await;
    download(&f.owner, 3).await;
    let grown = ok(&f.anna, &["sync"]).await["log_size"].as_u64().unwrap();
    assert!(grown > first, "{grown} > {first}");

    // Rollback: the relay comes back from the older copy. Every device that saw the
    // longer log refuses it, and says so.
    relay.stop().await;
    let current = dir.path().join("relay-current");
    std::fs::rename(&data, &current).unwrap();
    copy_dir(&old, &data);
    relay = Relay::start(&data, addr).await;
    refused_as(&f.anna, "rollback").await;
    refused_as(&f.owner, "rollback").await;
    let r = ll(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "Wyciąg bankowy 03-2026.pdf",
            "--out",
            dir.path().join("out-x.pdf").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        r.code, 5,
        "a download against a rolled-back log: {}",
        r.stderr
    );

    // The real relay returns: nothing was lost or changed on the devices.
    relay.stop().await;
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::rename(&current, &data).unwrap();
    relay = Relay::start(&data, addr).await;
    ok(&f.anna, &["sync"]).await;

    // A new member is approved but has not synced yet: they have met no log key.
    let code = ok(&f.owner, &["invite", "create", "--name", "Celina Nowa"]).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let celina = dir.path().join("celina");
    let fp = ok(
        &celina,
        &[
            "join",
            "--relay",
            &relay.url(),
            "--code",
            &code,
            "--me",
            "Celina Nowa",
        ],
    )
    .await["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&f.owner, &["approve", "Celina Nowa", "--fingerprint", &fp]).await;

    // A relay with another log key (say, a new secret after a careless restore).
    relay.stop().await;
    let secret = data.join("log-key.secret");
    let kept = std::fs::read(&secret).unwrap();
    std::fs::write(&secret, [7u8; 32]).unwrap();
    relay = Relay::start(&data, addr).await;
    refused_as(&f.anna, "pinned").await;
    // The newcomer would trust whatever key it met first; the roster's record says which
    // key is the firm's.
    refused_as(&celina, "recorded").await;
    relay.stop().await;
    std::fs::write(&secret, kept).unwrap();
    relay = Relay::start(&data, addr).await;
    ok(&f.anna, &["sync"]).await;

    // A fork: the relay's stored tree is rewritten (as when entries are edited or
    // removed): the same size with another root.
    relay.stop().await;
    {
        let db = rusqlite::Connection::open(data.join("relay.sqlite3")).unwrap();
        let changed = db
            .execute("UPDATE audit_hashes SET hash = randomblob(32)", [])
            .unwrap();
        assert!(changed > 0);
    }
    relay = Relay::start(&data, addr).await;
    refused_as(&f.anna, "fork").await;
    relay.stop().await;
}

/// `audit verify` on a bundle: the run, its JSON rows and the final summary line.
async fn verify_bundle(profile: &Path, bundle: &Path) -> (Run, Vec<Value>) {
    let r = run_with({
        let mut c = command(profile, &["audit", "verify", bundle.to_str().unwrap()]);
        c.env_remove("LEDGERLINE_PASSPHRASE");
        c
    })
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(["--json", "audit", "verify", bundle.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let rows = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (r, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_verifies_who_did_what_offline_and_catches_an_edited_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let addr = relay.addr;
    let f = found(dir.path(), &relay.url()).await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    ok(
        &f.owner,
        &["chat", "send", FILE, "Proszę o wyciąg za marzec"],
    )
    .await;
    ok(&f.anna, &["sync"]).await;
    ok(&f.anna, &["chat", "send", FILE, "Już wysyłam"]).await;
    let src = dir.path().join("Wyciąg 03-2026.pdf");
    std::fs::write(&src, vec![0x31u8; 70_000]).unwrap();
    ok(&f.owner, &["doc", "upload", FILE, src.to_str().unwrap()]).await;
    ok(&f.anna, &["sync"]).await;
    let out = dir.path().join("anna.pdf");
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "Wyciąg 03-2026.pdf",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    // Reading the conversation is on the record, also offline (reported at the next sync)
    // and also after losing access (what was cached can still be read).
    ok(&f.anna, &["chat", "read", FILE]).await;
    relay.stop().await;
    let offline = ll(&f.anna, &["chat", "read", FILE]).await;
    assert_eq!(offline.code, 0, "{}", offline.stderr);
    assert!(bodies(&offline.json).contains(&"Już wysyłam".to_owned()));
    assert!(offline.stderr.contains("unreachable"), "{}", offline.stderr);
    relay = Relay::start(&data, addr).await;
    ok(&f.owner, &["file", "remove", FILE, "Anna Kowalczyk"]).await;
    ok(&f.anna, &["chat", "read", FILE]).await;
    let who = ok(&f.anna, &["whoami"]).await;
    let anna = who["member"].as_str().unwrap().to_owned();
    // Every device pinned the same log key: what the owner reads out to an auditor.
    let pinned = who["log_key"].as_str().unwrap().to_owned();
    assert_eq!(pinned.len(), 64);
    assert_eq!(ok(&f.owner, &["whoami"]).await["log_key"], pinned.as_str());

    // The owner exports; the auditor verifies offline (no profile, no relay).
    let bundle = dir.path().join("audyt.jsonl");
    let e = ok(
        &f.owner,
        &["audit", "export", "--out", bundle.to_str().unwrap()],
    )
    .await;
    assert!(e["size"].as_u64().unwrap() >= 10, "{e}");
    assert_eq!(e["entries"], e["size"]);
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(&bundle)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["header"]["log_key"], pinned.as_str());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&bundle).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "bundle mode {mode:o}");
    relay.stop().await;
    let (r, rows) = verify_bundle(&dir.path().join("nobody"), &bundle).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let downloaded = rows.iter().any(|v| {
        v["row"]["member"] == anna.as_str() && v["row"]["action"] == "downloaded a document"
    });
    assert!(downloaded, "no download by Anna in {rows:?}");
    assert!(rows
        .iter()
        .any(|v| v["row"]["member"] == anna.as_str() && v["row"]["action"] == "opened a document"));
    assert!(rows
        .iter()
        .any(|v| v["row"]["action"] == "started a new key epoch"));
    let openings = rows
        .iter()
        .filter(|v| {
            v["row"]["member"] == anna.as_str()
                && v["row"]["action"] == "opened a conversation on the device"
        })
        .count();
    assert_eq!(openings, 3, "{rows:?}");
    assert_eq!(rows.last().unwrap()["ok"], true);
    // The owner's first sync recorded the log key in the roster: the bundle is signed with
    // the key the firm itself vouches for, not just the one each device met first.
    assert_eq!(
        rows.last().unwrap()["summary"]["log_key_in_roster"],
        true,
        "{:?}",
        rows.last()
    );
    assert!(rows.iter().any(|v| v["row"]["action"]
        .as_str()
        .is_some_and(|a| a == format!("recorded the relay's audit-log key {pinned}"))));
    // The owner's device witnessed the log as it synced: the auditor can insist on it.
    let witnessed = run_with({
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerline"));
        c.args([
            "audit",
            "verify",
            bundle.to_str().unwrap(),
            "--require-witness",
            "owner",
            "--strict",
        ]);
        c
    })
    .await;
    assert_eq!(witnessed.code, 0, "{}", witnessed.stderr);

    // The auditor gets names, sealed to their device: the report reads as people and
    // customers, while the relay only ever held ids.
    relay = Relay::start(&data, addr).await;
    let celina = dir.path().join("celina");
    admit(&f.owner, &celina, &relay.url(), "Celina Audytor", "auditor").await;
    let named = dir.path().join("named.jsonl");
    let e = ok(
        &f.owner,
        &[
            "audit",
            "export",
            "--out",
            named.to_str().unwrap(),
            "--for-auditor",
            "Celina Audytor",
        ],
    )
    .await;
    assert_eq!(e["names_sealed_for"], 1);
    relay.stop().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args([
            "--profile",
            celina.to_str().unwrap(),
            "audit",
            "verify",
            named.to_str().unwrap(),
            "--names",
        ])
        .env("LEDGERLINE_PASSPHRASE", PASS)
        .output()
        .await
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = table
        .lines()
        .find(|l| l.contains("Anna Kowalczyk") && l.contains("downloaded a document"))
        .unwrap_or_else(|| panic!("no named download in:\n{table}"));
    assert!(
        line.contains(FILE) && line.contains("Wyciąg 03-2026.pdf"),
        "{line}"
    );
    // The auditor's own device can export too (auditors read the log) and verify it.
    relay = Relay::start(&data, addr).await;
    let own = dir.path().join("celina-own.jsonl");
    ok(
        &celina,
        &["audit", "export", "--out", own.to_str().unwrap()],
    )
    .await;
    relay.stop().await;
    assert_eq!(verify_bundle(&celina, &own).await.0.code, 0);
    // Anyone else's profile cannot open the names.
    let not_mine = ll(
        &f.anna,
        &["audit", "verify", named.to_str().unwrap(), "--names"],
    )
    .await;
    assert_eq!(not_mine.code, 6, "{}", not_mine.stderr);
    relay = Relay::start(&data, addr).await;

    // A time range: nothing whole before the export's start, still a verified log.
    let later = dir.path().join("pusty.jsonl");
    let e = ok(
        &f.owner,
        &[
            "audit",
            "export",
            "--out",
            later.to_str().unwrap(),
            "--from",
            "2999-01-01",
        ],
    )
    .await;
    assert_eq!(e["entries"], 0);
    assert_eq!(verify_bundle(&f.owner, &later).await.0.code, 0);
    // A member who is neither admin nor auditor cannot export.
    let refused = ll(&f.bartek, &["audit", "export", "--out", "/tmp/never.jsonl"]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);

    // Someone edits the relay's log in SQLite: the next bundle does not verify, and the
    // verifier says where.
    relay.stop().await;
    {
        let db = rusqlite::Connection::open(data.join("relay.sqlite3")).unwrap();
        // Byte 26 is the low byte of the relay's receipt time in entry 5.
        let n = db
            .execute(
                "UPDATE audit_leaves SET leaf = CAST(substr(leaf, 1, 25) || X'FF' || substr(leaf, 27) AS BLOB) WHERE idx = 5",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    relay = Relay::start(&data, addr).await;
    let edited = dir.path().join("edited.jsonl");
    ok(
        &f.owner,
        &["audit", "export", "--out", edited.to_str().unwrap()],
    )
    .await;
    let (r, _) = verify_bundle(&f.owner, &edited).await;
    assert_eq!(r.code, 5, "an edited log verified: {}", r.stderr);
    // The edit moved entry 5's receipt time: caught as the order it breaks or, if it
    // kept the order, as the root it changed.
    assert!(
        r.stderr.contains("entry 5")
            || r.stderr.contains("entry 6")
            || r.stderr.contains("does not match"),
        "{}",
        r.stderr
    );
    relay.stop().await;
}

/// Rows of a relay table, from its SQLite file (read-only, while it serves).
fn relay_rows(data: &Path, sql: &str) -> Vec<Vec<String>> {
    let db = rusqlite::Connection::open(data.join("relay.sqlite3")).unwrap();
    let mut st = db.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Blob(b) => hex::encode(b),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                _ => String::new(),
            })
            .collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The auditor exports a bundle and verifies it offline: the run, its rows, and the
/// summary line when it verified.
async fn audit_now(auditor: &Path, dir: &Path, name: &str) -> (Run, Vec<Value>, Option<Value>) {
    let bundle = dir.join(name);
    ok(
        auditor,
        &["audit", "export", "--out", bundle.to_str().unwrap()],
    )
    .await;
    let (run, rows) = verify_bundle(&dir.join("nobody"), &bundle).await;
    let summary = rows.iter().find(|r| r["ok"] == true).cloned();
    (run, rows, summary)
}

fn file_id(v: &Value, name: &str) -> String {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no file {name} in {v}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_cuts_a_member_off_at_once_and_rotates_everything_they_held() {
    const TEAM: &str = "Zespół płac";
    const F2: &str = "Nowak SA";
    const F3: &str = "Zielony Ogród";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    let auditor = dir.path().join("audytor");
    admit(&f.owner, &auditor, &url, "Jan Audytor", "auditor").await;
    // Anna's second device: the laptop that will be lost.
    let laptop = dir.path().join("anna-laptop");
    let code = ok(&f.anna, &["device", "link"]).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let fp = ok(
        &laptop,
        &[
            "device",
            "join",
            "--relay",
            &url,
            "--code",
            &code,
            "--me",
            "Anna Kowalczyk",
        ],
    )
    .await["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&f.anna, &["device", "approve", "--fingerprint", &fp]).await;
    ok(&laptop, &["sync"]).await;
    ok(&f.anna, &["sync"]).await;
    ok(&laptop, &["sync"]).await;

    for (file, who) in [
        (FILE, &["Anna Kowalczyk", "Bartek Zieliński"][..]),
        (F2, &["Bartek Zieliński"][..]),
        (F3, &["Anna Kowalczyk"][..]),
    ] {
        ok(&f.owner, &["file", "create", file]).await;
        for m in who {
            ok(&f.owner, &["file", "grant", file, m]).await;
        }
    }
    ok(&f.owner, &["chat", "send", FILE, "przed odejściem"]).await;
    ok(&f.bartek, &["chat", "send", FILE, "moja notatka"]).await;
    // Anna's own session reaches Bartek too; the auditor checks she replaced it — also
    // for a message she queued offline before the revocation and sends after it.
    ok(&f.anna, &["chat", "send", FILE, "dzień dobry"]).await;
    // An internal room with Bartek in it: after his revocation, nobody may keep writing
    // under a session he could read (the room's members are in the log, signed).
    ok(
        &f.owner,
        &[
            "room",
            "create",
            TEAM,
            "--member",
            "Anna Kowalczyk",
            "--member",
            "Bartek Zieliński",
        ],
    )
    .await;
    ok(&f.owner, &["chat", "send", TEAM, "plan płac"]).await;
    ok(&f.anna, &["chat", "send", TEAM, "zgoda"]).await;
    ok(&f.bartek, &["chat", "send", TEAM, "ja też"]).await;
    relay.stop().await;
    let queued = ll(&f.anna, &["chat", "send", FILE, "w kolejce"]).await;
    assert_eq!(queued.code, 75, "{}", queued.stderr);
    relay.restart().await;
    let doc1 = dir.path().join("Faktura 01.pdf");
    std::fs::write(&doc1, vec![0x41u8; 50_000]).unwrap();
    ok(&f.owner, &["doc", "upload", FILE, doc1.to_str().unwrap()]).await;
    let got = dir.path().join("bartek.pdf");
    ok(
        &f.bartek,
        &[
            "doc",
            "download",
            FILE,
            "Faktura 01.pdf",
            "--out",
            got.to_str().unwrap(),
        ],
    )
    .await;
    let owner_files = ok(&f.owner, &["file", "list"]).await;
    let ids: Vec<String> = [FILE, F2, F3]
        .iter()
        .map(|n| file_id(&owner_files, n))
        .collect();
    let bartek_id = ok(&f.bartek, &["whoami"]).await["member"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bartek follows pushes live.
    use tokio::io::AsyncBufReadExt;
    let mut watch = command(&f.bartek, &["sync", "--watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    wait_for(&mut lines, "connected", |v| v["event"] == "connected").await;
    let roster_before: usize = relay_rows(&data, "SELECT COUNT(*) FROM roster_events")[0][0]
        .parse()
        .unwrap();

    // The owner revokes Bartek; the client dies right after the roster event.
    let r = run_with({
        let mut c = command(&f.owner, &["member", "revoke", "Bartek Zieliński"]);
        c.env("LEDGERLINE_CRASH_AFTER_REVOCATION", "1");
        c
    })
    .await;
    assert_ne!(r.code, 0, "the failpoint must abort: {}", r.stderr);
    // From that moment the relay refuses him: the open socket is closed…
    let out = tokio::time::timeout(Duration::from_secs(20), watch.wait_with_output())
        .await
        .expect("the revoked device's watch must end")
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("revoked"), "{err}");
    // …and every request refused.
    let r = ll(&f.bartek, &["sync"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    // Scripts (and the desktop app) read the kind and the relay's own code, not the text.
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(e["error"]["code"], "relay_refused", "{}", r.stderr);
    assert_eq!(e["error"]["reason"], "revoked_device", "{}", r.stderr);

    // An auditor sees the revocation without its rotation.
    let (v, _, _) = audit_now(&auditor, dir.path(), "audyt-1.jsonl").await;
    assert_ne!(v.code, 0);
    assert!(v.stderr.contains("incomplete_rotation"), "{}", v.stderr);
    assert!(v.stderr.contains("no new epoch"), "{}", v.stderr);

    // The owner's next sync resumes the job; it dies again after the relay took the new
    // epochs but before they were committed locally.
    let r = run_with({
        let mut c = command(&f.owner, &["sync"]);
        c.env("LEDGERLINE_CRASH_AFTER_EPOCHS", "1");
        c
    })
    .await;
    assert_ne!(r.code, 0, "the failpoint must abort: {}", r.stderr);
    let links = |data: &Path| {
        relay_rows(
            data,
            "SELECT hex(file), epoch FROM epoch_links ORDER BY file, epoch",
        )
    };
    let landed = links(&data);
    // Resumed: recognised as done, nothing started twice, nothing skipped.
    let s = ok(&f.owner, &["sync"]).await;
    assert_eq!(s["rotated_files"], 2, "{s}");
    // Anna comes back online: her queued message leaves under a new session.
    let s = ok(&f.anna, &["sync"]).await;
    assert_eq!(s["sent"], 1, "{s}");
    assert_eq!(links(&data), landed);
    let mut rotated: Vec<String> = landed.iter().map(|r| r[0].to_lowercase()).collect();
    rotated.sort();
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(rotated, want, "FILE and F2, epoch 1 each: {landed:?}");
    assert!(landed.iter().all(|r| r[1] == "1"));
    let bartek_epochs = relay_rows(
        &data,
        &format!("SELECT MAX(epoch) FROM epoch_key_wraps WHERE holder_kind = 1 AND hex(holder) = upper('{bartek_id}')"),
    );
    assert_eq!(
        bartek_epochs[0][0], "0",
        "no new epoch is wrapped for Bartek"
    );

    // Now complete, and the report says so.
    let (v, rows, summary) = audit_now(&auditor, dir.path(), "audyt-2.jsonl").await;
    assert_eq!(v.code, 0, "{}", v.stderr);
    let summary = summary.unwrap();
    let revocations = &summary["summary"]["revocations"];
    assert!(
        revocations
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["what"] == format!("revoked member {bartek_id}") && r["files"] == 2),
        "{revocations}"
    );
    assert!(rows
        .iter()
        .any(|r| r["row"]["action"] == format!("revoked member {bartek_id}")));
    // Messages state their session, so room rotation is judged too.
    assert!(rows.iter().any(|r| r["row"]["request"]
        .as_str()
        .unwrap_or("")
        .contains("/messages?session=")));

    // Work goes on: the others read old and new history.
    ok(&f.owner, &["chat", "send", TEAM, "po odejściu Bartka"]).await;
    ok(&f.anna, &["chat", "send", TEAM, "dobrze"]).await;
    let team = bodies(&ok(&f.anna, &["chat", "read", TEAM]).await);
    assert!(team.contains(&"po odejściu Bartka".to_owned()), "{team:?}");
    let (v, _, _) = audit_now(&auditor, dir.path(), "audyt-team.jsonl").await;
    assert_eq!(
        v.code, 0,
        "the internal room moved to new sessions: {}",
        v.stderr
    );
    // The room's creation is logged with its signed body (leaf type 3): what the check reads.
    let with_body = relay_rows(
        &data,
        "SELECT COUNT(*) FROM audit_leaves WHERE substr(leaf, 2, 1) = x'03'",
    );
    assert_eq!(with_body[0][0], "1", "one internal room created");
    ok(&f.owner, &["chat", "send", FILE, "po odejściu: tajne dane"]).await;
    ok(&f.anna, &["chat", "send", FILE, "nowy plan"]).await;
    let doc2 = dir.path().join("Faktura 02.pdf");
    std::fs::write(&doc2, vec![0x42u8; 40_000]).unwrap();
    // Anna has not synced since the rotation: her upload still goes under the new epoch
    // (the relay refuses writes under a retired one).
    ok(&f.anna, &["doc", "upload", FILE, doc2.to_str().unwrap()]).await;
    let read = ok(&f.anna, &["chat", "read", FILE]).await;
    let b = bodies(&read);
    for text in [
        "przed odejściem",
        "moja notatka",
        "dzień dobry",
        "w kolejce",
        "po odejściu: tajne dane",
        "nowy plan",
    ] {
        assert!(b.contains(&text.to_owned()), "{text:?} not in {b:?}");
    }
    for name in ["Faktura 01.pdf", "Faktura 02.pdf"] {
        let out = dir.path().join(format!("anna-{name}"));
        ok(
            &f.anna,
            &[
                "doc",
                "download",
                FILE,
                name,
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .await;
    }
    // A colleague who joins later reads the file's history through the epoch chain.
    let celina = dir.path().join("celina");
    admit(&f.owner, &celina, &url, "Celina Wiśniewska", "member").await;
    ok(&f.owner, &["file", "grant", FILE, "Celina Wiśniewska"]).await;
    let read = ok(&celina, &["chat", "read", FILE]).await;
    assert!(
        bodies(&read).contains(&"przed odejściem".to_owned()),
        "{read}"
    );
    let out = dir.path().join("celina.pdf");
    ok(
        &celina,
        &[
            "doc",
            "download",
            FILE,
            "Faktura 01.pdf",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&doc1).unwrap());

    // Anna's laptop is stolen: her member key gets a new version, her files new epochs.
    let lost = ok(&laptop, &["whoami"]).await["device"]
        .as_str()
        .unwrap()
        .to_owned();
    let anna_id = ok(&f.anna, &["whoami"]).await["member"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = ok(&f.owner, &["device", "revoke", &lost[..12]]).await;
    assert_eq!(
        (r["member_keys"].as_u64(), r["files"].as_u64()),
        (Some(1), Some(2)),
        "{r}"
    );
    // The owner's own sessions in the file's room and in the team room had reached the
    // laptop: replaced, and the new keys went to the remaining devices only (the file:
    // Anna's phone and Celina; the team room: Anna's phone).
    assert_eq!(r["room_sessions"], 2, "{r}");
    assert_eq!(r["olm_shares"], 3, "{r}");
    let r = ll(&laptop, &["sync"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    ok(&f.owner, &["chat", "send", FILE, "po utracie laptopa"]).await;
    let read = ok(&f.anna, &["chat", "read", FILE]).await;
    assert!(bodies(&read).contains(&"po utracie laptopa".to_owned()));
    let versions = relay_rows(
        &data,
        &format!(
            "SELECT hex(device) FROM member_key_wraps WHERE hex(member) = upper('{anna_id}') AND key_version = 2"
        ),
    );
    assert!(!versions.is_empty());
    assert!(
        versions.iter().all(|r| r[0].to_lowercase() != lost),
        "the lost laptop got the new key"
    );
    let newest = relay_rows(
        &data,
        &format!(
            "SELECT holder_key_version FROM epoch_key_wraps WHERE holder_kind = 1 AND hex(holder) = upper('{anna_id}') AND hex(file) = upper('{}') ORDER BY epoch DESC LIMIT 1",
            ids[2]
        ),
    );
    assert_eq!(
        newest[0][0], "2",
        "F3's new epoch is wrapped under Anna's new key"
    );
    let (v, _, summary) = audit_now(&auditor, dir.path(), "audyt-3.jsonl").await;
    assert_eq!(v.code, 0, "{}", v.stderr);
    let summary = summary.unwrap();
    let revocations = summary["summary"]["revocations"].as_array().unwrap();
    assert_eq!(revocations.len(), 2, "{summary}");
    assert_eq!(
        (&revocations[1]["files"], &revocations[1]["member_keys"]),
        (&Value::from(2), &Value::from(1)),
        "{summary}"
    );

    // Bartek kept every key he had, and gets a full copy of the relay's database served
    // by a relay that still lists him (its roster cut back to before his revocation).
    relay.stop().await;
    let copy = dir.path().join("relay-copy");
    copy_dir(&data, &copy);
    {
        let db = rusqlite::Connection::open(copy.join("relay.sqlite3")).unwrap();
        db.execute(
            "DELETE FROM roster_events WHERE seq >= ?1",
            [roster_before as i64],
        )
        .unwrap();
    }
    let mut evil = Relay::start(&copy, "127.0.0.1:0".parse().unwrap()).await;
    let evil_url = evil.url();
    let with_evil = |args: &[&str]| {
        let mut c = command(&f.bartek, args);
        c.arg("--use-relay").arg(&evil_url);
        c
    };
    let r = run_with(with_evil(&["chat", "read", FILE])).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b = bodies(&r.json);
    assert!(b.contains(&"przed odejściem".to_owned()), "{b:?}");
    for secret in ["po odejściu: tajne dane", "nowy plan", "po utracie laptopa"] {
        assert!(
            !r.json.to_string().contains(secret),
            "{secret:?} decrypted: {b:?}"
        );
    }
    let r = run_with(with_evil(&["doc", "list", FILE])).await;
    assert!(!r.json.to_string().contains("Faktura 02"), "{}", r.json);
    let r = run_with(with_evil(&["search", "tajne"])).await;
    assert!(!r.json.to_string().contains("tajne"), "{}", r.json);
    let files = run_with(with_evil(&["file", "list"])).await.json;
    for name in [FILE, F2] {
        let epoch = files["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["epoch"]
            .clone();
        assert_eq!(
            epoch, 0,
            "Bartek holds no key newer than his revocation: {files}"
        );
    }
    evil.stop().await;
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn sleep_until(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms.saturating_sub(epoch_ms()) + 100)).await;
}

fn file_names(v: &Value) -> BTreeSet<String> {
    names(v, "files", "name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absence_cover_opens_a_members_files_for_its_window_and_expires_by_itself() {
    const F2: &str = "Nowak SA";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    let auditor = dir.path().join("audytor");
    admit(&f.owner, &auditor, &url, "Jan Audytor", "auditor").await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    ok(&f.owner, &["file", "create", F2]).await;
    for m in ["Anna Kowalczyk", "Bartek Zieliński"] {
        ok(&f.owner, &["file", "grant", F2, m]).await;
    }
    ok(
        &f.anna,
        &["chat", "send", FILE, "faktura za listopad jest w teczce"],
    )
    .await;
    ok(&f.owner, &["sync"]).await;
    let bartek_id = ok(&f.bartek, &["whoami"]).await["member"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = ok(&f.bartek, &["file", "list"]).await;
    assert_eq!(file_names(&before), BTreeSet::from([F2.to_owned()]));

    // Refused: a window that ends before it starts, a date that is no date.
    let r = ll(
        &f.owner,
        &[
            "cover",
            "grant",
            "Anna Kowalczyk",
            "--colleague",
            "Bartek Zieliński",
            "--from",
            "2026-12-10",
            "--until",
            "2026-12-01",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = ll(
        &f.owner,
        &[
            "cover",
            "grant",
            "Anna Kowalczyk",
            "--colleague",
            "Bartek Zieliński",
            "--until",
            "jutro",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not a time"), "{}", r.stderr);
    // Only an admin grants a cover.
    let r = ll(
        &f.anna,
        &[
            "cover",
            "grant",
            "Anna Kowalczyk",
            "--colleague",
            "Bartek Zieliński",
            "--until",
            "2099-01-01",
        ],
    )
    .await;
    assert_ne!(r.code, 0, "{}", r.stderr);

    // Anna is away from A to B: Bartek covers her files.
    let from_ms = epoch_ms() + 8_000;
    let until_ms = from_ms + 10_000;
    let (from, until) = (
        ledgerline_audit::format_ms(from_ms),
        ledgerline_audit::format_ms(until_ms),
    );
    let g = ok(
        &f.owner,
        &[
            "cover",
            "grant",
            "Anna Kowalczyk",
            "--colleague",
            "Bartek Zieliński",
            "--from",
            &from,
            "--until",
            &until,
        ],
    )
    .await;
    let cover_id = g["cover"]["id"].as_u64().unwrap();
    assert_eq!(g["cover"]["files"], 2, "{g}");
    assert_eq!(g["cover"]["wrapped"], 2, "{g}");
    assert!(
        epoch_ms() < from_ms,
        "the machine is too slow for this test's window"
    );
    // Not started yet: not his files.
    ok(&f.bartek, &["sync"]).await;
    let planned = ok(&f.bartek, &["file", "list"]).await;
    assert_eq!(file_names(&planned), BTreeSet::from([F2.to_owned()]));
    let list = ok(&f.owner, &["cover", "list"]).await;
    assert_eq!(list["covers"][0]["state"], "planned", "{list}");
    assert!(
        epoch_ms() < from_ms,
        "the machine is too slow for this test's window"
    );

    // From A he works in Anna's file: its history (forwarded keys) and new messages.
    sleep_until(from_ms).await;
    ok(&f.bartek, &["sync"]).await;
    let during = ok(&f.bartek, &["file", "list"]).await;
    assert_eq!(
        file_names(&during),
        BTreeSet::from([FILE.to_owned(), F2.to_owned()])
    );
    let read = ok(&f.bartek, &["chat", "read", FILE]).await;
    assert!(
        bodies(&read).contains(&"faktura za listopad jest w teczce".to_owned()),
        "{read}"
    );
    ok(
        &f.bartek,
        &["chat", "send", FILE, "zastępuję Annę do piątku"],
    )
    .await;
    let read = ok(&f.anna, &["chat", "read", FILE]).await;
    assert!(
        bodies(&read).contains(&"zastępuję Annę do piątku".to_owned()),
        "{read}"
    );
    let list = ok(&f.owner, &["cover", "list"]).await;
    assert_eq!(list["covers"][0]["state"], "active", "{list}");

    // At B it expires by itself: nobody acts, the relay refuses him.
    sleep_until(until_ms).await;
    let s = ok(&f.bartek, &["sync"]).await;
    assert_eq!(s["rotated_files"], 0, "{s}");
    let after = ok(&f.bartek, &["file", "list"]).await;
    assert_eq!(file_names(&after), BTreeSet::from([F2.to_owned()]));
    let r = ll(&f.bartek, &["chat", "send", FILE, "po terminie"]).await;
    assert_ne!(r.code, 0, "{}", r.stderr);
    // The auditor sees the expiry without its rotation yet.
    let (v, _, _) = audit_now(&auditor, dir.path(), "audyt-1.jsonl").await;
    assert_ne!(v.code, 0, "{}", v.stderr);
    assert!(v.stderr.contains("incomplete_rotation"), "{}", v.stderr);

    // The owner's next sync records the end and rotates what Bartek held through it: the
    // customer file he has no grant for, not F2.
    let s = ok(&f.owner, &["sync"]).await;
    assert_eq!(s["rotated_files"], 1, "{s}");
    let list = ok(&f.owner, &["cover", "list"]).await;
    assert_eq!(list["covers"][0]["state"], "ended", "{list}");
    let ids = ok(&f.owner, &["file", "list"]).await;
    let (file1, file2) = (file_id(&ids, FILE), file_id(&ids, F2));
    let epochs = relay_rows(
        &data,
        "SELECT lower(hex(file)), MAX(epoch) FROM epoch_links GROUP BY file",
    );
    assert_eq!(
        epochs,
        vec![vec![file1.clone(), "1".to_owned()]],
        "{epochs:?}"
    );
    let bartek_wraps = relay_rows(
        &data,
        &format!(
            "SELECT lower(hex(file)), epoch FROM epoch_key_wraps WHERE holder_kind = 1 AND lower(hex(holder)) = '{bartek_id}' ORDER BY file, epoch"
        ),
    );
    let mut want = vec![
        vec![file1.clone(), "0".to_owned()],
        vec![file2, "0".to_owned()],
    ];
    want.sort();
    assert_eq!(bartek_wraps, want, "no new epoch key is wrapped for Bartek");
    // Work goes on without him; the auditor finds the rotation complete, grant and end
    // on the record.
    ok(&f.anna, &["chat", "send", FILE, "wróciłam"]).await;
    ok(&f.bartek, &["sync"]).await;
    let read = ok(&f.bartek, &["chat", "read", FILE]).await;
    assert!(!bodies(&read).contains(&"wróciłam".to_owned()), "{read}");
    let (v, rows, summary) = audit_now(&auditor, dir.path(), "audyt-2.jsonl").await;
    assert_eq!(v.code, 0, "{}", v.stderr);
    let summary = summary.unwrap();
    let revocations = &summary["summary"]["revocations"];
    assert!(
        revocations
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["what"].as_str().unwrap().starts_with(&format!(
                "absence cover {cover_id} expired: member {bartek_id}"
            )) && r["files"] == 1),
        "{revocations}"
    );
    let actions: Vec<String> = rows
        .iter()
        .filter_map(|r| r["row"]["action"].as_str().map(str::to_owned))
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.contains(&format!("member {bartek_id} covers member"))),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a == &format!("ended the absence cover of roster event {cover_id}")),
        "{actions:?}"
    );

    // A cover ended early by hand: refused at once, rotated at once.
    let g = ok(
        &f.owner,
        &[
            "cover",
            "grant",
            "Anna Kowalczyk",
            "--colleague",
            "Bartek Zieliński",
            "--until",
            "2099-12-31",
        ],
    )
    .await;
    let early = g["cover"]["id"].as_u64().unwrap().to_string();
    ok(&f.bartek, &["sync"]).await;
    let during = ok(&f.bartek, &["file", "list"]).await;
    assert!(file_names(&during).contains(FILE), "{during}");
    let end = ok(&f.owner, &["cover", "end", &early]).await;
    assert_eq!(end["files"], 1, "{end}");
    ok(&f.bartek, &["sync"]).await;
    let after = ok(&f.bartek, &["file", "list"]).await;
    assert_eq!(file_names(&after), BTreeSet::from([F2.to_owned()]));
    let (v, _, _) = audit_now(&auditor, dir.path(), "audyt-3.jsonl").await;
    assert_eq!(v.code, 0, "{}", v.stderr);
}

fn customer_of<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no customer {name} in {list}"))
}

fn task_of<'a>(list: &'a Value, title: &str) -> &'a Value {
    list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == title)
        .unwrap_or_else(|| panic!("no task {title} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_tasks_deadlines_and_concurrent_edits_through_the_relay() {
    use ledgerline_client_core::chrono::{Days, NaiveDate};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    const K: &str = "Kowalski sp. z o.o.";

    // CRM: a bad NIP is refused before anything is created; a good one is kept normalised.
    let bad = ll(&f.owner, &["customer", "add", K, "--nip", "526-025-09-94"]).await;
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("check digit"), "{}", bad.stderr);
    ok(
        &f.owner,
        &[
            "customer",
            "add",
            K,
            "--nip",
            "PL 526-025-09-95",
            "--email",
            "biuro@kowalski.pl",
            "--contact",
            "Jan Kowalski <jan@kowalski.pl>",
            "--address",
            "ul. Polna 1, 00-001 Warszawa",
        ],
    )
    .await;
    for m in ["Anna Kowalczyk", "Bartek Zieliński"] {
        ok(&f.owner, &["file", "grant", K, m]).await;
    }
    let list = ok(&f.anna, &["customer", "list"]).await;
    let k = customer_of(&list, K);
    assert_eq!(k["nip"], "5260250995");
    assert_eq!(k["kind"], "customer");
    assert_eq!(k["emails"][0], "biuro@kowalski.pl");

    // A lead becomes a customer in the same file, its history kept.
    ok(&f.owner, &["lead", "add", "Nowa Firma SA"]).await;
    ok(
        &f.owner,
        &[
            "customer",
            "note",
            "Nowa Firma SA",
            "pierwsza rozmowa: 40 faktur miesięcznie",
        ],
    )
    .await;
    ok(&f.owner, &["lead", "stage", "Nowa Firma SA", "offer"]).await;
    let l = ok(&f.owner, &["customer", "list"]).await;
    assert_eq!(customer_of(&l, "Nowa Firma SA")["stage"], "offer");
    ok(&f.owner, &["lead", "convert", "Nowa Firma SA"]).await;
    let l = ok(&f.owner, &["customer", "list"]).await;
    assert_eq!(customer_of(&l, "Nowa Firma SA")["kind"], "customer");
    let t = ok(&f.owner, &["customer", "timeline", "Nowa Firma SA"]).await;
    assert!(t.to_string().contains("pierwsza rozmowa"), "{t}");

    // A rolling task assigned to Anna, ten days overdue.
    let today = ledgerline_client_core::profile::today();
    let due = today.checked_sub_days(Days::new(10)).unwrap();
    ok(
        &f.owner,
        &[
            "task",
            "add",
            "Zebrać faktury za październik",
            "--customer",
            K,
            "--assign",
            "Anna Kowalczyk",
            "--due",
            &due.to_string(),
            "--rolling",
            "--check",
            "faktury sprzedaży",
            "--check",
            "faktury zakupu",
        ],
    )
    .await;
    let mine = ok(&f.anna, &["task", "list", "--mine"]).await;
    let t = task_of(&mine, "Zebrać faktury za październik");
    let (shows_on, rolled_days) = ledgerline_client_core::work::calendar::rolled(due, today);
    assert_eq!(t["rolled_days"], rolled_days, "{t}");
    assert_eq!(t["shows_on"], shows_on.to_string(), "{t}");
    assert!(rolled_days >= 6, "ten days hold at least six working days");
    let id = t["id"].as_str().unwrap().to_owned();
    ok(&f.anna, &["task", "check", &id[..8], "1"]).await;
    let invoices = dir.path().join("Faktury 10-2026.pdf");
    std::fs::write(&invoices, vec![0x44u8; 20_000]).unwrap();
    ok(&f.anna, &["doc", "upload", K, invoices.to_str().unwrap()]).await;
    ok(
        &f.anna,
        &["task", "attach", &id[..8], "Faktury 10-2026.pdf"],
    )
    .await;
    let missing = ll(&f.anna, &["task", "attach", &id[..8], "nie ma takiego.pdf"]).await;
    assert_eq!(missing.code, 6, "{}", missing.stderr);
    ok(&f.anna, &["task", "done", &id[..8]]).await;
    let all = ok(&f.owner, &["task", "list", "--customer", K]).await;
    let t = task_of(&all, "Zebrać faktury za październik");
    assert_eq!(t["status"], "done");
    assert_eq!(t["checklist"][0][1], true);
    assert_eq!(t["attachments"][0][1], "Faktury 10-2026.pdf", "{t}");
    assert_eq!(t["checklist"][1][1], false);
    // Not on Bartek's own list.
    let bart = ok(&f.bartek, &["task", "list", "--mine"]).await;
    assert!(bart["tasks"].as_array().unwrap().is_empty(), "{bart}");

    // Delegation: the owner hands a task to Bartek, who returns it with a comment.
    let d = ok(&f.owner, &["task", "add", "Złożyć PIT-4R", "--customer", K]).await;
    let d = d["task"].as_str().unwrap().to_owned();
    ok(&f.owner, &["task", "delegate", &d, "Bartek Zieliński"]).await;
    let refused = ll(&f.anna, &["task", "accept", &d]).await;
    assert_eq!(refused.code, 7, "{}", refused.stderr);
    ok(
        &f.bartek,
        &["task", "return", &d, "--comment", "brak upoważnienia UPL-1"],
    )
    .await;
    let all = ok(&f.owner, &["task", "list", "--customer", K]).await;
    let t = task_of(&all, "Złożyć PIT-4R");
    let owner_id = ok(&f.owner, &["whoami"]).await["member"].clone();
    assert_eq!(t["assignee"], owner_id);
    assert_eq!(t["delegation"], "returned");
    assert_eq!(t["comment"], "brak upoważnienia UPL-1");
    let what: Vec<String> = t["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[2].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(what[0], "created");
    assert!(what[1].starts_with("delegated to "), "{what:?}");
    assert_eq!(what[2], "returned");

    // Internal work without a customer goes to the office file, which the owner's first
    // such task creates for all staff; a later member of staff gets it at the owner's sync.
    let r = ll(&f.anna, &["task", "add", "Zamówić tonery"]).await;
    assert_eq!(r.code, 6, "no office file yet: {}", r.stderr);
    ok(
        &f.owner,
        &[
            "task",
            "add",
            "Przegląd procedur RODO",
            "--due",
            &today.to_string(),
        ],
    )
    .await;
    ok(&f.anna, &["task", "add", "Zamówić tonery"]).await;
    let celina = dir.path().join("celina");
    admit(&f.owner, &celina, &url, "Celina Wiśniewska", "member").await;
    ok(&f.owner, &["sync"]).await;
    let theirs = ok(&celina, &["task", "list"]).await;
    for title in ["Przegląd procedur RODO", "Zamówić tonery"] {
        assert_eq!(
            task_of(&theirs, title)["file_name"],
            "Biuro (sprawy wewnętrzne)",
            "{theirs}"
        );
    }
    assert!(
        !ok(&celina, &["customer", "list"])
            .await
            .to_string()
            .contains("Biuro"),
        "the office file is no customer"
    );

    // Deadline template: JPK_V7M on the 25th, moved off weekends and holidays.
    let templates = ok(&f.anna, &["template", "list"]).await;
    assert!(templates.to_string().contains("vat-monthly"));
    ok(
        &f.owner,
        &["template", "apply", "vat-monthly", "--customer", K],
    )
    .await;
    let year = today.format("%Y").to_string().parse::<i32>().unwrap() + 1;
    let agenda = ok(
        &f.bartek,
        &[
            "cal",
            "agenda",
            "--from",
            &format!("{year}-01-01"),
            "--to",
            &format!("{year}-12-31"),
        ],
    )
    .await;
    let vat: Vec<String> = agenda["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["title"] == "JPK_V7M i VAT za poprzedni miesiąc")
        .map(|i| i["date"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (1..=12)
        .map(|m| {
            ledgerline_client_core::work::calendar::next_working_day(
                NaiveDate::from_ymd_opt(year, m, 25).unwrap(),
            )
            .to_string()
        })
        .collect();
    assert_eq!(vat, want);
    // Templates are the firm's data: ZUS for a company is due on the 15th.
    let zus_title = "Składki ZUS (osoba prawna, 15.)";
    let bad = ll(
        &f.owner,
        &[
            "template",
            "set",
            "x",
            "--title",
            "X",
            "--rrule",
            "FREQ=SOMETIMES",
        ],
    )
    .await;
    assert_ne!(bad.code, 0, "{}", bad.stderr);
    let not_admin = ll(
        &f.anna,
        &[
            "template",
            "set",
            "zus",
            "--title",
            "Z",
            "--rrule",
            "FREQ=MONTHLY;BYMONTHDAY=15",
        ],
    )
    .await;
    assert_eq!(not_admin.code, 7, "{}", not_admin.stderr);
    ok(
        &f.owner,
        &[
            "template",
            "set",
            "zus",
            "--title",
            zus_title,
            "--rrule",
            "FREQ=MONTHLY;BYMONTHDAY=15",
        ],
    )
    .await;
    let templates = ok(&f.anna, &["template", "list"]).await;
    let find = |id: &str| {
        templates["templates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("zus")["rrule"], "FREQ=MONTHLY;BYMONTHDAY=15");
    assert_eq!(find("zus")["source"], "firm");
    assert_eq!(find("vat-monthly")["source"], "builtin");
    ok(&f.anna, &["sync"]).await;
    ok(&f.owner, &["template", "apply", "zus", "--customer", K]).await;
    let agenda = ok(
        &f.bartek,
        &[
            "cal",
            "agenda",
            "--from",
            &format!("{year}-01-01"),
            "--to",
            &format!("{year}-12-31"),
        ],
    )
    .await;
    let zus: Vec<String> = agenda["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["title"] == zus_title)
        .map(|i| i["date"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (1..=12)
        .map(|m| {
            ledgerline_client_core::work::calendar::next_working_day(
                NaiveDate::from_ymd_opt(year, m, 15).unwrap(),
            )
            .to_string()
        })
        .collect();
    assert_eq!(zus, want);

    // Calendar: a weekly meeting across the change to summer time, one occurrence
    // cancelled; month and week views in Europe/Warsaw; an iCalendar export.
    use ledgerline_client_core::chrono::Datelike;
    let mondays: Vec<NaiveDate> = (1..=31)
        .filter_map(|d| NaiveDate::from_ymd_opt(year, 3, d))
        .filter(|d| d.weekday() == ledgerline_client_core::chrono::Weekday::Mon)
        .collect();
    let e = ok(
        &f.owner,
        &[
            "cal",
            "add",
            "Spotkanie z klientem",
            "--customer",
            K,
            "--start",
            &format!("{} 09:00", mondays[0]),
            "--rrule",
            "FREQ=WEEKLY;BYDAY=MO;COUNT=8",
        ],
    )
    .await;
    let event = e["event"].as_str().unwrap().to_owned();
    ok(
        &f.owner,
        &["cal", "except", &event[..8], &mondays[2].to_string()],
    )
    .await;
    let bad = ll(
        &f.owner,
        &["cal", "except", &event[..8], &format!("{year}-03-03")],
    )
    .await;
    assert_eq!(bad.code, 6, "no occurrence that day: {}", bad.stderr);
    let month = ok(&f.anna, &["cal", "month", "--month", &format!("{year}-03")]).await;
    let meetings: Vec<(String, String)> = month["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "event")
        .map(|i| {
            (
                i["date"].as_str().unwrap().to_owned(),
                i["time"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = mondays
        .iter()
        .filter(|d| **d != mondays[2])
        .map(|d| (d.to_string(), "09:00".to_owned()))
        .collect();
    assert_eq!(
        meetings, want,
        "09:00 local before and after the clocks change"
    );
    assert!(month["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["title"] == "JPK_V7M i VAT za poprzedni miesiąc"));
    let week = ok(
        &f.anna,
        &[
            "cal",
            "week",
            "--day",
            &mondays[mondays.len() - 1].to_string(),
        ],
    )
    .await;
    assert_eq!(
        week["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "event")
            .count(),
        1,
        "{week}"
    );
    let ics = dir.path().join("kalendarz.ics");
    ok(&f.anna, &["cal", "export", "--out", ics.to_str().unwrap()]).await;
    let text = std::fs::read_to_string(&ics).unwrap();
    for needle in [
        "BEGIN:VCALENDAR",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Warsaw",
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=8",
        "SUMMARY:Spotkanie z klientem",
        &format!(
            "DTSTART;TZID=Europe/Warsaw:{}T090000",
            mondays[0].format("%Y%m%d")
        ),
        &format!(
            "EXDATE;TZID=Europe/Warsaw:{}T090000",
            mondays[2].format("%Y%m%d")
        ),
        "SUMMARY:JPK_V7M i VAT za poprzedni miesiąc",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ics).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the calendar is private");
    }
    let timeline = ok(&f.anna, &["customer", "timeline", K]).await;
    let kinds: BTreeSet<String> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_owned())
        .collect();
    for k in ["task", "event"] {
        assert!(kinds.contains(k), "{k} not in the timeline: {timeline}");
    }
    // Paged backwards: the newest two, then the two before them, in time order.
    let all = timeline["items"].as_array().unwrap().clone();
    assert!(all.len() >= 4, "{timeline}");
    let page = ok(&f.anna, &["customer", "timeline", K, "--limit", "2"]).await;
    assert_eq!(page["items"].as_array().unwrap()[..], all[all.len() - 2..]);
    let before = page["items"][0]["cursor"].as_str().unwrap().to_owned();
    let older = ok(
        &f.anna,
        &[
            "customer", "timeline", K, "--limit", "2", "--before", &before,
        ],
    )
    .await;
    let older = older["items"].as_array().unwrap();
    assert_eq!(older.len(), 2);
    assert!(older
        .iter()
        .all(|i| i["at_ms"].as_u64().unwrap() <= page["items"][0]["at_ms"].as_u64().unwrap()));
    assert!(older[0]["at_ms"].as_u64() <= older[1]["at_ms"].as_u64());
    assert_eq!(
        older[1],
        all[all.len() - 3],
        "no item skipped or repeated at the page edge"
    );
    assert_eq!(older[0], all[all.len() - 4]);

    // Two devices edit the same card offline: nothing is lost, the conflict is visible.
    relay.stop().await;
    let a = ll(
        &f.anna,
        &["customer", "set", K, "email", "anna@kowalski.pl"],
    )
    .await;
    assert_eq!(a.code, 75, "{}", a.stderr);
    let b = ll(
        &f.bartek,
        &["customer", "set", K, "email", "ksiegowosc@kowalski.pl"],
    )
    .await;
    assert_eq!(b.code, 75, "{}", b.stderr);
    let c = ll(
        &f.bartek,
        &["customer", "set", K, "phone", "+48 22 100 20 30"],
    )
    .await;
    assert_eq!(c.code, 75, "{}", c.stderr);
    relay.restart().await;
    let s = ok(&f.anna, &["sync"]).await;
    assert_eq!(s["work_sent"], 1, "{s}");
    let s = ok(&f.bartek, &["sync"]).await;
    assert_eq!(s["work_sent"], 1, "{s}");
    ok(&f.anna, &["sync"]).await;
    let (la, lb) = (
        ok(&f.anna, &["customer", "list"]).await,
        ok(&f.bartek, &["customer", "list"]).await,
    );
    let (ka, kb) = (customer_of(&la, K), customer_of(&lb, K));
    assert_eq!(ka, kb, "both devices converge");
    // Bartek's edit is the later one: it wins; Anna's is kept as a conflict; his phone,
    // edited by nobody else, simply lands.
    assert_eq!(ka["emails"], serde_json::json!(["ksiegowosc@kowalski.pl"]));
    assert_eq!(ka["phones"], serde_json::json!(["+48 22 100 20 30"]));
    assert_eq!(ka["nip"], "5260250995");
    let conflicts = ka["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{ka}");
    assert_eq!(conflicts[0]["field"], "emails");
    assert_eq!(conflicts[0]["v"], serde_json::json!(["anna@kowalski.pl"]));
    // Someone looks at it and dismisses it; it stays dismissed on every device.
    let d = ok(&f.anna, &["customer", "resolve", K]).await;
    assert_eq!(d["dismissed"], 1, "{d}");
    ok(&f.bartek, &["sync"]).await;
    for who in [&f.anna, &f.bartek] {
        let l = ok(who, &["customer", "list"]).await;
        assert!(customer_of(&l, K)["conflicts"]
            .as_array()
            .unwrap()
            .is_empty());
        assert_eq!(
            customer_of(&l, K)["emails"],
            serde_json::json!(["ksiegowosc@kowalski.pl"])
        );
    }

    // The relay saw ciphertext only.
    let dump = relay_rows(&data, "SELECT hex(envelope) FROM records");
    let all_hex: String = dump
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("")
        .to_lowercase();
    assert!(all_hex.len() > 1000, "the records are there");
    for secret in ["5260250995", "kowalski", "PIT-4R", "JPK_V7M"] {
        assert!(
            !all_hex.contains(&hex::encode(secret)),
            "{secret} reached the relay in clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_customer_file_deletes_it_everywhere_and_logs_it() {
    const K: &str = "Kowalski sp. z o.o.";
    const KEEP: &str = "Nowak SA";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    let auditor = dir.path().join("audytor");
    admit(&f.owner, &auditor, &url, "Jan Audytor", "auditor").await;
    for name in [K, KEEP] {
        ok(&f.owner, &["customer", "add", name, "--nip", "5260250995"]).await;
        ok(&f.owner, &["file", "grant", name, "Anna Kowalczyk"]).await;
    }
    ok(&f.anna, &["chat", "send", K, "zaległa deklaracja"]).await;
    ok(&f.owner, &["customer", "note", K, "notatka do usunięcia"]).await;
    ok(&f.owner, &["task", "add", "Korekta VAT", "--customer", K]).await;
    ok(&f.owner, &["chat", "send", KEEP, "to zostaje"]).await;
    let doc = dir.path().join("Faktura.pdf");
    std::fs::write(&doc, vec![0x43u8; 30_000]).unwrap();
    ok(&f.owner, &["doc", "upload", K, doc.to_str().unwrap()]).await;
    ok(&f.anna, &["sync"]).await;
    assert!(!ok(&f.anna, &["search", "zaległa"]).await["results"]
        .as_array()
        .unwrap()
        .is_empty());
    let ids = ok(&f.owner, &["file", "list"]).await;
    let k = file_id(&ids, K);
    let blobs_before = all_files(&data.join("blobs")).len();
    assert!(blobs_before >= 1);

    // Only an admin, and only on purpose.
    let r = ll(&f.anna, &["file", "erase", K, "--yes"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    let r = ll(&f.owner, &["file", "erase", K]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    ok(&f.owner, &["file", "erase", K, "--yes"]).await;

    // The relay kept nothing of it but the fact.
    let kx = k.to_uppercase();
    for table in ["records", "documents", "epoch_key_wraps", "epoch_links"] {
        let n = relay_rows(
            &data,
            &format!("SELECT COUNT(*) FROM {table} WHERE hex(file) = '{kx}'"),
        );
        assert_eq!(n[0][0], "0", "{table}");
    }
    let n = relay_rows(
        &data,
        &format!("SELECT COUNT(*) FROM room_messages WHERE hex(room) = '{kx}'"),
    );
    assert_eq!(n[0][0], "0");
    let n = relay_rows(
        &data,
        &format!("SELECT COUNT(*) FROM erased_files WHERE hex(file) = '{kx}'"),
    );
    assert_eq!(n[0][0], "1");
    assert_eq!(
        all_files(&data.join("blobs")).len(),
        blobs_before - 1,
        "its blob is gone"
    );

    // Every device forgets it at its next sync; the other file is untouched.
    ok(&f.anna, &["sync"]).await;
    let files = ok(&f.anna, &["file", "list"]).await;
    assert_eq!(
        names(&files, "files", "name"),
        BTreeSet::from([KEEP.to_owned()])
    );
    let r = ll(&f.anna, &["chat", "read", K]).await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(ok(&f.anna, &["search", "zaległa"]).await["results"]
        .as_array()
        .unwrap()
        .is_empty());
    let customers = ok(&f.anna, &["customer", "list"]).await;
    assert_eq!(
        names(&customers, "customers", "name"),
        BTreeSet::from([KEEP.to_owned()])
    );
    let read = ok(&f.anna, &["chat", "read", KEEP]).await;
    assert!(bodies(&read).contains(&"to zostaje".to_owned()));
    // This device forgot it: it is not even a name any more (the relay's 410 for every
    // later request is checked in relay/tests/api.rs).
    let again = ll(&f.owner, &["file", "erase", &k, "--yes"]).await;
    assert_eq!(again.code, 6, "{}", again.stderr);

    // The log shows the erasure, by whom, as an opaque entry; the bundle verifies.
    let (v, rows, _) = audit_now(&auditor, dir.path(), "audyt.jsonl").await;
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(
        rows.iter()
            .any(|r| r["row"]["action"] == "erased a customer file"),
        "{rows:?}"
    );
}

/// Retention with a controllable clock: an admin sets a file's policy (a signed roster
/// event); a legal hold keeps everything (and blocks erasure); once lifted, a relay whose
/// clock runs 40 days later deletes the month-old messages and the document whose five years
/// are over, logs the deletion, every device deletes its own copy at its next sync, and the
/// auditor's offline check accepts the deletion as the policy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_old_messages_and_documents_under_a_moved_clock() {
    const K: &str = "Kowalski sp. z o.o.";
    const LATER_MS: i64 = 40 * 24 * 3600 * 1000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    let auditor = dir.path().join("audytor");
    admit(&f.owner, &auditor, &url, "Jan Audytor", "auditor").await;
    ok(&f.owner, &["customer", "add", K, "--nip", "5260250995"]).await;
    ok(&f.owner, &["file", "grant", K, "Anna Kowalczyk"]).await;
    ok(&f.anna, &["chat", "send", K, "stara wiadomość o fakturze"]).await;
    let old = dir.path().join("Faktura-2019.pdf");
    let recent = dir.path().join("Umowa-2025.pdf");
    std::fs::write(&old, vec![0x19u8; 20_000]).unwrap();
    std::fs::write(&recent, vec![0x25u8; 20_000]).unwrap();
    let up = ok(
        &f.owner,
        &["doc", "upload", K, old.to_str().unwrap(), "--year", "2019"],
    )
    .await;
    assert_eq!(up["year"], 2019);
    ok(
        &f.owner,
        &[
            "doc",
            "upload",
            K,
            recent.to_str().unwrap(),
            "--year",
            "2025",
        ],
    )
    .await;
    let bad = ll(
        &f.owner,
        &["doc", "upload", K, recent.to_str().unwrap(), "--year", "25"],
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    ok(&f.anna, &["sync"]).await;
    let k = file_id(&ok(&f.owner, &["file", "list"]).await, K).to_uppercase();
    let count = |sql: String| relay_rows(&data, &sql)[0][0].clone();
    let docs_sql = format!("SELECT COUNT(*) FROM documents WHERE hex(file) = '{k}'");
    let msgs_sql = format!("SELECT COUNT(*) FROM room_messages WHERE hex(room) = '{k}'");
    assert_eq!(count(docs_sql.clone()), "2");

    // Only an admin sets a policy; then a legal hold keeps everything, erasure included.
    let r = ll(&f.anna, &["retention", "set", K, "--chat-months", "1"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    let set = ok(
        &f.owner,
        &[
            "retention",
            "set",
            K,
            "--chat-months",
            "1",
            "--docs-years",
            "5",
            "--legal-hold",
        ],
    )
    .await;
    assert_eq!(set["policy"]["legal_hold"], true);
    let again = ok(&f.owner, &["retention", "set", K, "--legal-hold"]).await;
    assert_eq!(
        again["changed"], false,
        "the same policy is not appended twice"
    );
    let r = ll(&f.owner, &["file", "erase", K, "--yes"]).await;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("legal hold"), "{}", r.stderr);
    relay.stop().await;
    let mut relay = Relay::start_later(&data, relay.addr, LATER_MS).await;
    let later = |profile: &Path, args: &[&str]| {
        let mut c = command(profile, args);
        c.env("LEDGERLINE_CLOCK_OFFSET_MS", LATER_MS.to_string());
        run_with(c)
    };
    // Forty days on, under the hold: the sweep deletes nothing.
    let r = later(&f.anna, &["sync"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(count(docs_sql.clone()), "2");
    assert_eq!(count(msgs_sql.clone()), "1");
    let read = later(&f.anna, &["chat", "read", K]).await;
    assert!(bodies(&read.json).contains(&"stara wiadomość o fakturze".to_owned()));

    // The hold is lifted; the next sweep (at the relay's start) deletes what expired.
    let blobs_before = all_files(&data.join("blobs")).len();
    let r = later(&f.owner, &["retention", "set", K, "--no-legal-hold"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    relay.stop().await;
    let swept_relay = Relay::start_later(&data, relay.addr, LATER_MS).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while count(docs_sql.clone()) != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep did not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(msgs_sql.clone()), "0");
    let year = relay_rows(
        &data,
        &format!("SELECT year FROM documents WHERE hex(file) = '{k}'"),
    );
    assert_eq!(year[0][0], "2025", "the recent document stays");
    assert_eq!(all_files(&data.join("blobs")).len(), blobs_before - 1);
    let metrics = reqwest::get(format!("{}/metrics", swept_relay.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "ledgerline_retention_deleted_documents_total 1",
        "ledgerline_retention_deleted_messages_total 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }

    // New messages are kept; every device deletes its own copy of what expired.
    let r = later(&f.anna, &["chat", "send", K, "nowa wiadomość"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for profile in [&f.anna, &f.owner] {
        let r = later(profile, &["sync"]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let read = later(profile, &["chat", "read", K]).await;
        assert_eq!(bodies(&read.json), vec!["nowa wiadomość".to_owned()]);
        let found = later(profile, &["search", "fakturze"]).await;
        assert!(
            found.json["results"].as_array().unwrap().is_empty(),
            "{}",
            found.json
        );
        let docs = later(profile, &["doc", "list", K]).await;
        assert_eq!(
            names(&docs.json, "documents", "name"),
            BTreeSet::from(["Umowa-2025.pdf".to_owned()])
        );
    }
    let shown = later(&f.owner, &["retention", "show", K]).await;
    assert_eq!(shown.json["files"][0]["policy"]["docs_years"], 5);

    // The auditor sees the deletion as the relay's, under the policy, and it verifies.
    let bundle = dir.path().join("audyt.jsonl");
    let r = later(
        &auditor,
        &["audit", "export", "--out", bundle.to_str().unwrap()],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (v, rows) = verify_bundle(&dir.path().join("nobody"), &bundle).await;
    assert_eq!(v.code, 0, "{}", v.stderr);
    let swept: Vec<&Value> = rows
        .iter()
        .filter(|r| r["row"]["request"] == "retention sweep")
        .collect();
    assert_eq!(swept.len(), 1, "{rows:?}");
    let action = swept[0]["row"]["action"].as_str().unwrap();
    assert!(
        action.starts_with("relay deleted 1 messages received before")
            && action.contains("and 1 documents"),
        "{action}"
    );
    let summary = rows.iter().find(|r| r["ok"] == true).unwrap();
    assert_eq!(summary["summary"]["retention"]["documents"], 1, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_passphrase_changes_without_rewriting_the_store() {
    const NEW: &str = "zupelnie-nowe-haslo";
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let profile = dir.path().join("owner");
    ok(
        &profile,
        &[
            "firm", "create", "--relay", &url, "--firm", "K", "--me", "Ewa",
        ],
    )
    .await;
    let store = std::fs::read(profile.join(ledgerline_client_core::profile::STORE_FILE)).unwrap();
    let with = |current: &str, new: Option<&str>, args: &[&str]| {
        let mut c = command(&profile, args);
        c.env("LEDGERLINE_PASSPHRASE", current);
        match new {
            Some(n) => c.env("LEDGERLINE_NEW_PASSPHRASE", n),
            None => c.env_remove("LEDGERLINE_NEW_PASSPHRASE"),
        };
        c
    };
    // The wrong current passphrase changes nothing.
    let r = run_with(with("zgadywane", Some(NEW), &["passphrase"])).await;
    assert_eq!(r.code, 8, "{}", r.stderr);
    // No new one given and no terminal to ask on: a usage error.
    let r = run_with(with(PASS, None, &["passphrase"])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("LEDGERLINE_NEW_PASSPHRASE"),
        "{}",
        r.stderr
    );
    let r = run_with(with(PASS, Some(NEW), &["passphrase"])).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The store itself was not rewritten; the old passphrase opens nothing, the new one all.
    assert!(
        std::fs::read(profile.join(ledgerline_client_core::profile::STORE_FILE)).unwrap() == store
    );
    let r = run_with(with(PASS, None, &["whoami"])).await;
    assert_eq!(r.code, 8, "{}", r.stderr);
    let r = run_with(with(NEW, None, &["whoami"])).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    relay.stop().await;
}

/// Runs `ledgerline ARGS` on a pseudo-terminal (util-linux `script`), answers each prompt
/// with its line once the prompt is on the screen, and returns the exit code and everything
/// the terminal showed.
async fn on_terminal(profile: &Path, args: &[&str], answers: &[(&str, &str)]) -> (i32, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = vec![
        quote(env!("CARGO_BIN_EXE_ledgerline")),
        "--profile".into(),
        quote(&profile.display().to_string()),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let mut child = tokio::process::Command::new("script")
        .args(["-qfec", &line.join(" "), "/dev/null"])
        .env_remove("LEDGERLINE_PASSPHRASE")
        .env_remove("LEDGERLINE_RELAY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut screen = Vec::new();
    let mut buf = [0u8; 4096];
    for (prompt, answer) in answers {
        while !String::from_utf8_lossy(&screen).contains(prompt) {
            let n = tokio::time::timeout(Duration::from_secs(30), stdout.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no prompt {prompt:?}; the screen: {}",
                        String::from_utf8_lossy(&screen)
                    )
                })
                .unwrap();
            assert!(
                n > 0,
                "ended before {prompt:?}: {}",
                String::from_utf8_lossy(&screen)
            );
            screen.extend_from_slice(&buf[..n]);
        }
        // Answer only this prompt: the next one must appear after it. A person types
        // after the prompt shows; a test could be faster than the switch to no echo that
        // follows the prompt, so it waits for the terminal to stop echoing first.
        screen.clear();
        wait_for_no_echo(child.id().unwrap()).await;
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(60), stdout.read_to_end(&mut screen))
        .await
        .expect("ledgerline hung")
        .unwrap();
    let status = child.wait().await.unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&screen).into_owned(),
    )
}

/// Waits until the pseudo-terminal that `script` (pid `script`) gives its child has echo
/// off, as a passphrase prompt sets it (read with `stty`; at most 10 s).
async fn wait_for_no_echo(script: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let children = std::fs::read_to_string(format!("/proc/{script}/task/{script}/children"))
            .unwrap_or_default();
        for pid in children.split_whitespace() {
            let Ok(tty) = std::fs::read_link(format!("/proc/{pid}/fd/0")) else {
                continue;
            };
            let out = std::process::Command::new("stty")
                .arg("-F")
                .arg(&tty)
                .arg("-a")
                .output()
                .unwrap();
            let settings = String::from_utf8_lossy(&out.stdout);
            if settings.split_whitespace().any(|w| w == "-echo") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the terminal kept echoing: no passphrase prompt switched it off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_typed_on_a_terminal_is_not_echoed_and_is_asked_twice() {
    const TYPED: &str = "tajne-haslo-4711";
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let create = [
        "--no-keyring",
        "firm",
        "create",
        "--relay",
        &url,
        "--firm",
        "K",
        "--me",
        "Ewa",
    ];
    // Two different answers: refused, and no profile is left half made.
    let typo = dir.path().join("typo");
    let (code, screen) = on_terminal(
        &typo,
        &create,
        &[("store: ", TYPED), ("again: ", "tajne-haslo-4712")],
    )
    .await;
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("differ"), "{screen}");
    assert!(!typo
        .join(ledgerline_client_core::profile::STORE_FILE)
        .exists());
    // The same answer twice: the firm is founded, and the terminal never showed it.
    let owner = dir.path().join("owner");
    let (code, screen) =
        on_terminal(&owner, &create, &[("store: ", TYPED), ("again: ", TYPED)]).await;
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains(TYPED),
        "the passphrase was echoed: {screen}"
    );
    // Opening asks once, again without echo.
    let (code, screen) = on_terminal(&owner, &["whoami"], &[("Passphrase: ", TYPED)]).await;
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("fingerprint:"), "{screen}");
    assert!(
        !screen.contains(TYPED),
        "the passphrase was echoed: {screen}"
    );
    let mut c = command(&owner, &["whoami"]);
    c.env("LEDGERLINE_PASSPHRASE", TYPED);
    assert_eq!(run_with(c).await.code, 0);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_reads_its_files_and_someone_who_leaves_it_reads_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    let cezary = dir.path().join("cezary");
    admit(&f.owner, &cezary, &url, "Cezary Wójcik", "member").await;
    const TEAM: &str = "Kadry i płace";
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(
        &f.owner,
        &["chat", "send", FILE, "Lista płac za marzec w załączniku."],
    )
    .await;
    let created = ok(&f.owner, &["team", "create", TEAM]).await;
    let team = created["team"].as_str().unwrap().to_owned();
    // A member may not manage teams.
    let r = ll(&f.anna, &["team", "create", "Zespół Anny"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    for who in ["Anna Kowalczyk", "Bartek Zieliński"] {
        ok(&f.owner, &["team", "add", TEAM, who]).await;
    }
    ok(&f.owner, &["file", "grant", FILE, "--team", TEAM]).await;
    // Both read the file's history through the team, and know the team by its name.
    for p in [&f.anna, &f.bartek] {
        ok(p, &["sync"]).await;
        assert_eq!(
            bodies(&ok(p, &["chat", "read", FILE]).await),
            vec!["Lista płac za marzec w załączniku."]
        );
        let list = ok(p, &["team", "list"]).await;
        assert_eq!(list["teams"][0]["id"], team.as_str());
        assert_eq!(list["teams"][0]["name"], TEAM, "{list}");
        assert_eq!(
            list["teams"][0]["member_names"].as_array().unwrap().len(),
            2
        );
    }
    ok(
        &f.bartek,
        &["chat", "send", FILE, "Potwierdzam, sprawdzę do piątku."],
    )
    .await;
    // Bartek leaves the team: the team key gets a new version, the file a new epoch.
    let report = ok(&f.owner, &["team", "remove", TEAM, "Bartek Zieliński"]).await;
    assert_eq!(report["team_keys"], 1, "{report}");
    assert_eq!(report["files"], 1, "{report}");
    ok(
        &f.owner,
        &["chat", "send", FILE, "Nowe stawki od kwietnia."],
    )
    .await;
    let note = ok(
        &f.owner,
        &["customer", "note", FILE, "Umowa zlecenie do aneksu."],
    )
    .await;
    assert!(note.is_object());
    ok(&f.anna, &["sync"]).await;
    let anna = bodies(&ok(&f.anna, &["chat", "read", FILE]).await);
    assert!(
        anna.contains(&"Nowe stawki od kwietnia.".to_owned()),
        "{anna:?}"
    );
    assert!(anna.contains(&"Potwierdzam, sprawdzę do piątku.".to_owned()));
    // Access through a team is ended in the team, not by a file removal that would do
    // nothing.
    let r = ll(&f.owner, &["file", "remove", FILE, "Anna Kowalczyk"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("through a team"), "{}", r.stderr);
    // Bartek: refused by the relay, and nothing new reaches his device.
    let r = ll(&f.bartek, &["sync"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ll(&f.bartek, &["chat", "read", FILE]).await;
    let his = if r.code == 0 { bodies(&r.json) } else { vec![] };
    assert!(
        !his.contains(&"Nowe stawki od kwietnia.".to_owned()),
        "{his:?}"
    );
    let r = ll(&f.bartek, &["chat", "send", FILE, "Jeszcze jedno"]).await;
    assert_ne!(r.code, 0, "no longer a member of the file");
    let list = ok(&f.bartek, &["team", "list"]).await;
    assert!(
        !list["teams"][0]["member_names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "Bartek Zieliński"),
        "{list}"
    );
    // Someone added later reads the whole history, from before the team had the file.
    ok(&f.owner, &["team", "add", TEAM, "Cezary Wójcik"]).await;
    ok(&cezary, &["sync"]).await;
    let his = bodies(&ok(&cezary, &["chat", "read", FILE]).await);
    for text in [
        "Lista płac za marzec w załączniku.",
        "Potwierdzam, sprawdzę do piątku.",
        "Nowe stawki od kwietnia.",
    ] {
        assert!(his.contains(&text.to_owned()), "{text}: {his:?}");
    }
    let timeline = ok(&cezary, &["customer", "timeline", FILE]).await;
    assert!(
        timeline.to_string().contains("Umowa zlecenie do aneksu."),
        "{timeline}"
    );
    // The team's file goes away from the team: its members lose it, a new epoch starts.
    let report = ok(&f.owner, &["file", "remove", FILE, "--team", TEAM]).await;
    assert_eq!(report["files"], 1, "{report}");
    ok(&f.owner, &["chat", "send", FILE, "Tylko dla właścicielki."]).await;
    ok(&cezary, &["sync"]).await;
    let r = ll(&cezary, &["chat", "read", FILE]).await;
    let his = if r.code == 0 { bodies(&r.json) } else { vec![] };
    assert!(
        !his.contains(&"Tylko dla właścicielki.".to_owned()),
        "{his:?}"
    );
    // The relay never saw the team's name.
    assert_relay_never_saw(&dir.path().join("relay"), &[TEAM]);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_templates_are_the_firms_or_ones_own_and_fill_in_for_the_customer() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    const TEXT: &str = "Dzień dobry, {klient}: otrzymaliśmy dokumenty. VAT {kwota} do {termin}.";
    ok(&f.owner, &["reply", "set", "Potwierdzenie", TEXT]).await;
    // A typo in a placeholder never reaches a customer: refused when saved.
    let r = ll(&f.owner, &["reply", "set", "Zła", "Kwota {kwot}"]).await;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("{kwot}"), "{}", r.stderr);
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    ok(&f.anna, &["sync"]).await;
    // A member keeps their own; the firm's are for admins to set.
    ok(
        &f.anna,
        &["reply", "set", "Podpis", "Pozdrawiam, Anna", "--personal"],
    )
    .await;
    let r = ll(&f.anna, &["reply", "set", "Potwierdzenie", "inaczej"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    let listed = |v: &Value| -> Vec<(String, bool)> {
        v["templates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_owned(),
                    t["personal"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        listed(&ok(&f.anna, &["reply", "list"]).await),
        vec![
            ("Podpis".to_owned(), true),
            ("Potwierdzenie".to_owned(), false)
        ]
    );
    ok(&f.bartek, &["sync"]).await;
    assert_eq!(
        listed(&ok(&f.bartek, &["reply", "list"]).await),
        vec![("Potwierdzenie".to_owned(), false)],
        "someone else's own templates are not shown"
    );
    // Filled for the customer and sent.
    let r = ll(
        &f.anna,
        &[
            "chat",
            "send",
            FILE,
            "--template",
            "Potwierdzenie",
            "--deadline",
            "2026-03-25",
        ],
    )
    .await;
    assert_ne!(r.code, 0, "the amount is missing");
    assert!(r.stderr.contains("amount"), "{}", r.stderr);
    ok(
        &f.anna,
        &[
            "chat",
            "send",
            FILE,
            "--template",
            "Potwierdzenie",
            "--amount",
            "1234,5",
            "--deadline",
            "2026-03-25",
        ],
    )
    .await;
    ok(&f.owner, &["sync"]).await;
    assert_eq!(
        bodies(&ok(&f.owner, &["chat", "read", FILE]).await),
        vec![format!(
            "Dzień dobry, {FILE}: otrzymaliśmy dokumenty. VAT 1 234,50 zł do 25.03.2026."
        )]
    );
    let shown = ok(&f.anna, &["reply", "show", "Podpis"]).await;
    assert_eq!(shown["text"], "Pozdrawiam, Anna");
    ok(&f.anna, &["reply", "delete", "Podpis", "--personal"]).await;
    assert_eq!(
        listed(&ok(&f.anna, &["reply", "list"]).await),
        vec![("Potwierdzenie".to_owned(), false)]
    );
    // The relay holds the templates only encrypted.
    assert_relay_never_saw(&dir.path().join("relay"), &["otrzymaliśmy dokumenty"]);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_to_a_lead_is_totalled_exactly_sent_and_accepted_into_a_customer() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    const LEAD: &str = "Hurtownia Łącka sp.j.";
    ok(&f.owner, &["lead", "add", LEAD]).await;
    ok(&f.owner, &["file", "grant", LEAD, "Anna Kowalczyk"]).await;
    // Refused before anything is kept: a rate that does not exist, a validity in the past.
    let r = ll(
        &f.owner,
        &["offer", "add", LEAD, "--service", "Księgi|monthly|100|7"],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = ll(
        &f.owner,
        &[
            "offer",
            "add",
            LEAD,
            "--service",
            "Księgi|monthly|100|23",
            "--valid-until",
            "2020-01-01",
        ],
    )
    .await;
    assert_ne!(r.code, 0);
    let made = ok(
        &f.owner,
        &[
            "offer",
            "add",
            LEAD,
            "--service",
            "Pełna księgowość (do 40 dokumentów)|monthly|1 399,99|23",
            "--service",
            "Kadry i płace, 3 osoby|monthly|300|zw",
            "--service",
            "Wdrożenie i przejęcie dokumentacji|one-off|500|8",
            "--valid-until",
            "2099-12-31",
        ],
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["status"], "draft");
    // 1 399,99 × 23 % = 321,9977 → 322,00; zw. adds nothing; 500 × 8 % = 40.
    let monthly = &made["totals"]["monthly"]["total"];
    assert_eq!(
        (
            monthly["net"].as_i64(),
            monthly["vat"].as_i64(),
            monthly["gross"].as_i64()
        ),
        (Some(169_999), Some(32_200), Some(202_199)),
        "{made}"
    );
    let once = &made["totals"]["one_off"]["total"];
    assert_eq!(
        (
            once["net"].as_i64(),
            once["vat"].as_i64(),
            once["gross"].as_i64()
        ),
        (Some(50_000), Some(4_000), Some(54_000))
    );
    // Anna, with access, sees the same offer and totals.
    ok(&f.anna, &["sync"]).await;
    let seen = ok(&f.anna, &["offer", "list", LEAD]).await;
    assert_eq!(seen["offers"][0]["id"], id.as_str());
    assert_eq!(seen["offers"][0]["totals"], made["totals"]);
    // A draft is not accepted; sent, the lead moves to stage `offer`; accepted, it is a
    // customer with the offer in its file.
    let r = ll(&f.owner, &["offer", "accept", &id[..8]]).await;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("draft"), "{}", r.stderr);
    // A draft's PDF can be reviewed before it goes.
    let draft_pdf = dir.path().join("draft.pdf");
    ok(
        &f.owner,
        &[
            "offer",
            "pdf",
            &id[..8],
            draft_pdf.to_str().unwrap(),
            "--lang",
            "en",
        ],
    )
    .await;
    let draft = pdf_extract::extract_text(&draft_pdf).unwrap();
    assert!(draft.contains("Monthly fees"), "{draft}");
    let r = ll(&f.owner, &["offer", "send", &id[..8], "--lang", "xx"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Killed once the PDF's part reached the relay: the next `offer send` finishes that
    // upload (its sync) and uses it; the file holds one PDF of the offer, not two.
    let mut c = command(&f.owner, &["offer", "send", &id[..8]]);
    c.env("LEDGERLINE_CRASH_AFTER_UPLOAD_BYTES", "1");
    assert_ne!(run_with(c).await.code, 0);
    let sent = ok(&f.owner, &["offer", "send", &id[..8]]).await;
    let docs = ok(&f.owner, &["doc", "list", LEAD]).await;
    assert_eq!(
        docs.to_string().matches("Oferta ").count(),
        1,
        "one PDF of the offer: {docs}"
    );
    assert_eq!(sent["name"], format!("Oferta {}.pdf", &id[..8]));
    let l = ok(&f.owner, &["customer", "list"]).await;
    assert_eq!(customer_of(&l, LEAD)["stage"], "offer");
    ok(&f.anna, &["sync"]).await;
    // The PDF sent is in the lead's file, encrypted: Anna downloads and reads it.
    let pdf = dir.path().join("sent.pdf");
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            LEAD,
            sent["document"].as_str().unwrap(),
            "--out",
            pdf.to_str().unwrap(),
        ],
    )
    .await;
    let text = pdf_extract::extract_text(&pdf).unwrap();
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        LEAD,
        "Pełna księgowość (do 40 dokumentów)",
        "Wdrożenie i przejęcie dokumentacji",
        "Opłaty miesięczne",
        "1 699,99",
        "2 021,99",
        "540,00",
    ] {
        assert!(flat.contains(needle), "{needle:?} not in {flat:?}");
    }
    let listed = ok(&f.anna, &["offer", "list", LEAD]).await;
    assert_eq!(listed["offers"][0]["pdf"], sent["document"]);
    ok(&f.anna, &["offer", "accept", &id]).await;
    ok(&f.owner, &["sync"]).await;
    let l = ok(&f.owner, &["customer", "list"]).await;
    assert_eq!(customer_of(&l, LEAD)["kind"], "customer");
    assert_eq!(customer_of(&l, LEAD)["stage"], "won");
    let listed = ok(&f.owner, &["offer", "list", LEAD]).await;
    assert_eq!(listed["offers"][0]["status"], "accepted");
    let t = ok(&f.owner, &["customer", "timeline", LEAD]).await;
    assert!(
        t.to_string()
            .contains("1 699,99 zł netto miesięcznie, 500,00 zł netto jednorazowo"),
        "{t}"
    );
    // Final: an accepted offer is not rejected later.
    let r = ll(&f.owner, &["offer", "reject", &id]).await;
    assert_ne!(r.code, 0);
    // The relay never saw a service.
    assert_relay_never_saw(
        &dir.path().join("relay"),
        &[
            "Pełna księgowość",
            "Wdrożenie i przejęcie",
            "Oferta ",
            "Opłaty",
        ],
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_backed_up_while_serving_restores_whole_and_never_over_data() {
    use ledgerline_relay::backup::{backup, restore, BackupError};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    ok(&f.owner, &["file", "grant", FILE, "Bartek Zieliński"]).await;
    ok(&f.owner, &["chat", "send", FILE, "Przed kopią zapasową"]).await;
    // Bartek's device reads up to here, then stays off until after the restore.
    ok(&f.bartek, &["sync"]).await;
    let src = dir.path().join("bilans 2025.csv");
    let content: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &content).unwrap();
    let up = ok(&f.owner, &["doc", "upload", FILE, src.to_str().unwrap()]).await;
    let document = up["document"].as_str().unwrap().to_owned();
    let vat = ok(
        &f.owner,
        &[
            "task",
            "add",
            "Deklaracja VAT-7 za październik",
            "--customer",
            FILE,
        ],
    )
    .await;
    let vat = vat["task"].as_str().unwrap().to_owned();

    // The backup runs while the relay serves and a client writes at the same moment.
    let mut during = command(&f.owner, &["chat", "send", FILE, "W trakcie kopii"])
        .spawn()
        .unwrap();
    let out = dir.path().join("kopia");
    let (d, o) = (data.clone(), out.clone());
    let m = tokio::task::spawn_blocking(move || backup(&d, &o))
        .await
        .unwrap()
        .unwrap();
    assert!(during.wait().await.unwrap().success());
    assert_eq!((m.documents, m.missing_blobs.len()), (1, 0), "{m:?}");
    assert!(m.blob_bytes > 5 << 20);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the backup holds the log key: owner-only");
    }
    // A second backup into the same directory is refused, the first left as it was.
    let (d, o) = (data.clone(), out.clone());
    let again = tokio::task::spawn_blocking(move || backup(&d, &o))
        .await
        .unwrap();
    assert!(matches!(again, Err(BackupError::Usage(_))), "{again:?}");
    // An hour passes (simulated: the relay and every client run their clocks an hour
    // ahead from here on) before the writes the restore will lose.
    const HOUR_MS: i64 = 3_600_000;
    let addr = relay.addr;
    relay.stop().await;
    let mut relay = Relay::start_later(&data, addr, HOUR_MS).await;
    CLIENT_CLOCK_AHEAD_MS.with(|c| c.set(HOUR_MS));
    ok(&f.owner, &["chat", "send", FILE, "Po kopii zapasowej"]).await;
    // Anna's first words in the file, after the backup: her session's key share is lost
    // with the relay's data, too.
    ok(&f.anna, &["chat", "send", FILE, "Anna po kopii"]).await;
    // A roster change after the backup, too; a new note, a task done (a second version
    // of an item the backup holds at its first) and a document.
    ok(&f.owner, &["retention", "set", FILE, "--chat-months", "24"]).await;
    ok(&f.owner, &["customer", "note", FILE, "Notatka po kopii"]).await;
    ok(&f.owner, &["task", "done", &vat]).await;
    let late = dir.path().join("faktura po kopii.pdf");
    std::fs::write(&late, vec![0x25u8; 40_000]).unwrap();
    ok(&f.owner, &["doc", "upload", FILE, late.to_str().unwrap()]).await;
    ok(&f.owner, &["file", "create", "Nowy klient po kopii"]).await;
    ok(
        &f.owner,
        &["file", "grant", "Nowy klient po kopii", "Anna Kowalczyk"],
    )
    .await;
    // Bartek (still offline) gets that file through a team made after the backup.
    ok(&f.owner, &["team", "create", "Zespół po kopii"]).await;
    ok(
        &f.owner,
        &["team", "add", "Zespół po kopii", "Bartek Zieliński"],
    )
    .await;
    ok(
        &f.owner,
        &[
            "file",
            "grant",
            "Nowy klient po kopii",
            "--team",
            "Zespół po kopii",
        ],
    )
    .await;
    ok(
        &f.owner,
        &[
            "chat",
            "send",
            "Nowy klient po kopii",
            "Witamy nowego klienta",
        ],
    )
    .await;
    ok(
        &f.owner,
        &[
            "customer",
            "note",
            "Nowy klient po kopii",
            "Umowa podpisana",
        ],
    )
    .await;
    // A download after the backup: an access-log entry, and a checkpoint the owner's
    // device accepts, that the restored relay will not have.
    let seen = dir.path().join("bilans po kopii.csv");
    ok(
        &f.owner,
        &[
            "doc",
            "download",
            FILE,
            &document,
            "--out",
            seen.to_str().unwrap(),
        ],
    )
    .await;
    let addr = relay.addr;
    relay.stop().await;

    // Never over existing data; a damaged backup is refused before anything is written.
    assert!(matches!(restore(&out, &data), Err(BackupError::Usage(_))));
    let bad = dir.path().join("kopia-uszkodzona");
    std::fs::create_dir_all(&bad).unwrap();
    for p in all_files(&out) {
        let to = bad.join(p.strip_prefix(&out).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&p, &to).unwrap();
    }
    let blob = all_files(&bad.join("blobs"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let len = std::fs::metadata(&blob).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&blob)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let nowhere = dir.path().join("nie-powinno-powstac");
    let r = restore(&bad, &nowhere);
    assert!(
        matches!(&r, Err(BackupError::Damaged { why, .. }) if why.contains("bytes")),
        "{r:?}"
    );
    assert!(!nowhere.exists());

    // Restored into a new directory, the relay serves what the backup held: Anna reads
    // the conversation from before it and downloads the document, byte for byte.
    let restored = dir.path().join("relay-odtworzony");
    let m2 = restore(&out, &restored).unwrap();
    assert_eq!(m2, m);
    let mut relay = Relay::start_later(&restored, addr, HOUR_MS).await;
    // Anna's device saw a longer access log than the restored one: told, never silent;
    // she accepts the restored relay, and her message goes again with its key.
    let told = ll(&f.anna, &["chat", "read", FILE]).await;
    assert_eq!(told.code, 5, "{}", told.stderr);
    let hers = ok(&f.anna, &["sync", "--after-restore"]).await;
    assert_eq!(hers["sync"]["resent"], 1, "{hers}");
    assert_eq!(hers["roster_events"], 0, "{hers}");
    let read = ok(&f.anna, &["chat", "read", FILE]).await;
    let said = bodies(&read);
    assert!(
        said.contains(&"Przed kopią zapasową".to_owned()),
        "{said:?}"
    );
    assert_eq!(
        said.iter().filter(|b| *b == "Anna po kopii").count(),
        1,
        "{said:?}"
    );
    let tasks = ok(&f.anna, &["task", "list", "--customer", FILE]).await;
    let t = task_of(&tasks, "Deklaracja VAT-7 za październik");
    assert_ne!(t["status"], "done", "{t}");
    // Anna works on that task on the restored relay before the owner's device comes back.
    ok(&f.anna, &["task", "attach", &vat, "bilans 2025.csv"]).await;
    let back = dir.path().join("bilans z kopii.csv");
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            &document,
            "--out",
            back.to_str().unwrap(),
        ],
    )
    .await;
    assert!(std::fs::read(&back).unwrap() == content);
    // The owner's device saw a longer access log than the restored relay now extends:
    // it says so at its next sync (an integrity failure, exit 5), never silently.
    let told = ll(&f.owner, &["sync"]).await;
    assert_eq!(told.code, 5, "{}", told.stderr);
    assert!(told.stderr.contains("older backup"), "{}", told.stderr);
    assert!(told.stderr.contains("--after-restore"), "{}", told.stderr);
    // The owner accepts the restored relay: the report says what it lost, and the owner's
    // device sends again what it wrote after the backup — the message and the roster event.
    let backed_up = |data: &Path| relay_rows(data, "SELECT count(*) FROM backup_items");
    let items_before = backed_up(&restored);
    let after = ok(&f.owner, &["sync", "--after-restore"]).await;
    // The owner's key backup goes again whole: the room keys made after the backup (the
    // new file's conversation) are in it again.
    let items_after = backed_up(&restored);
    assert!(
        items_after[0][0].parse::<u64>().unwrap() > items_before[0][0].parse::<u64>().unwrap(),
        "{items_before:?} {items_after:?}"
    );
    // (The restored log has grown since, with Anna's reads: a fork of what the owner saw.)
    let kept = after["log_kept"].as_u64().unwrap();
    assert!(
        kept > 0 && kept < after["log_was"].as_u64().unwrap(),
        "{after}"
    );
    // The retention policy, the new file, Anna's access to it, the team, Bartek in it,
    // the team's access to the file.
    assert_eq!(after["roster_events"], 6, "{after}");
    assert!(after["team_keys_resent"].as_u64().unwrap() >= 2, "{after}");
    assert!(after["sync"]["resent"].as_u64().unwrap() >= 1, "{after}");
    // The work items it wrote after the backup go again: the two new notes and the task's
    // second version; the document uploaded after it is named as lost, not kept listed.
    assert!(after["items_checked"].as_u64().unwrap() >= 3, "{after}");
    assert_eq!(after["sync"]["work_sent"], 3, "{after}");
    assert_eq!(after["file_names_resent"], 1, "{after}");
    let lost = after["documents_lost"].as_array().unwrap();
    assert_eq!(lost.len(), 1, "{after}");
    assert_eq!(lost[0]["name"], "faktura po kopii.pdf", "{after}");
    let listed = ok(&f.owner, &["doc", "list", FILE]).await.to_string();
    assert!(!listed.contains("faktura po kopii"), "{listed}");
    assert!(listed.contains("bilans 2025"), "{listed}");
    // The task carries both: the owner's `done` the relay had lost and Anna's attachment.
    // The customer file created after the backup is whole again for Anna: its room and
    // keys, its conversation, its note.
    assert!(after["file_keys_resent"].as_u64().unwrap() >= 3, "{after}");
    // Each member's key, for the member's device and the owner's (escrow): 1 + 2 + 2.
    assert_eq!(after["member_key_wraps"], 5, "{after}");
    let new = bodies(&ok(&f.anna, &["chat", "read", "Nowy klient po kopii"]).await);
    assert_eq!(new, ["Witamy nowego klienta"], "{new:?}");
    let timeline = ok(&f.anna, &["customer", "timeline", "Nowy klient po kopii"]).await;
    assert!(
        timeline.to_string().contains("Umowa podpisana"),
        "{timeline}"
    );
    let tasks = ok(&f.anna, &["task", "list", "--customer", FILE]).await;
    let t = task_of(&tasks, "Deklaracja VAT-7 za październik");
    assert_eq!(t["status"], "done", "{t}");
    assert_eq!(t["attachments"][0][1], "bilans 2025.csv", "{t}");
    let timeline = ok(&f.anna, &["customer", "timeline", FILE]).await;
    assert!(
        timeline.to_string().contains("Notatka po kopii"),
        "{timeline}"
    );
    // Anna reads it now; the owner sees it once; the relay has the retention policy again.
    let said = bodies(&ok(&f.anna, &["chat", "read", FILE]).await);
    assert!(
        said.contains(&"Po kopii zapasowej".to_owned())
            && said.contains(&"Przed kopią zapasową".to_owned()),
        "{said:?}"
    );
    let mine = bodies(&ok(&f.owner, &["chat", "read", FILE]).await);
    for said in ["Po kopii zapasowej", "Anna po kopii"] {
        assert_eq!(
            mine.iter().filter(|b| *b == said).count(),
            1,
            "{said}: {mine:?}"
        );
    }
    // Bartek, off since before the backup, reads the file he got through the team after
    // it: team key, the file's key for the team and the room key all given back.
    let new = bodies(&ok(&f.bartek, &["chat", "read", "Nowy klient po kopii"]).await);
    assert_eq!(new, ["Witamy nowego klienta"], "{new:?}");
    // He reads everything anyone still had — Anna's message too, whose first key share
    // the relay lost: her device shared it again.
    let his = bodies(&ok(&f.bartek, &["chat", "read", FILE]).await);
    for said in [
        "Przed kopią zapasową",
        "W trakcie kopii",
        "Po kopii zapasowej",
        "Anna po kopii",
    ] {
        assert_eq!(
            his.iter().filter(|b| *b == said).count(),
            1,
            "{said}: {his:?}"
        );
    }
    let shown = ok(&f.anna, &["retention", "show", FILE]).await;
    assert_eq!(shown["files"][0]["policy"]["chat_months"], 24, "{shown}");
    // New messages flow both ways in the relay's new numbering.
    ok(&f.anna, &["chat", "send", FILE, "Po odtworzeniu"]).await;
    assert_eq!(
        bodies(&ok(&f.owner, &["chat", "read", FILE]).await)
            .last()
            .unwrap(),
        "Po odtworzeniu"
    );
    // A second `--after-restore` finds nothing more to send.
    let again = ok(&f.owner, &["sync", "--after-restore"]).await;
    assert_eq!(again["roster_events"], 0, "{again}");
    assert_eq!(again["sync"]["resent"], 0, "{again}");
    assert_eq!(again["sync"]["work_sent"], 0, "{again}");
    assert_eq!(again["documents_lost"], serde_json::json!([]), "{again}");
    // Anna's second pass finds nothing more to send either.
    let hers = ok(&f.anna, &["sync", "--after-restore"]).await;
    assert_eq!(hers["sync"]["work_sent"], 0, "{hers}");
    assert_eq!(hers["sync"]["resent"], 0, "{hers}");
    assert_eq!(hers["roster_events"], 0, "{hers}");

    // A second restore, from a backup taken in a quiet moment: Bartek's device, in step
    // with it, writes a note and a message, and never sees the access log grow past the
    // backup — no rollback to report. Its next plain sync reads the restore from the
    // rooms' numbering and gives both back on its own.
    ok(&f.bartek, &["sync"]).await;
    let out2 = dir.path().join("kopia-2");
    let (d, o) = (restored.clone(), out2.clone());
    tokio::task::spawn_blocking(move || backup(&d, &o))
        .await
        .unwrap()
        .unwrap();
    ok(&f.bartek, &["customer", "note", FILE, "Notatka Bartka"]).await;
    ok(
        &f.bartek,
        &["chat", "send", FILE, "Bartek po drugiej kopii"],
    )
    .await;
    relay.stop().await;
    let restored2 = dir.path().join("relay-odtworzony-2");
    restore(&out2, &restored2).unwrap();
    let mut relay = Relay::start_later(&restored2, addr, HOUR_MS).await;
    let his = ok(&f.bartek, &["sync"]).await;
    let given = &his["restored"];
    assert!(given.is_object(), "{his}");
    assert_eq!(his["resent"], 1, "{his}");
    assert_eq!(his["work_sent"], 1, "{his}");
    assert_eq!(given["documents_lost"], serde_json::json!([]), "{his}");
    let timeline = ok(&f.anna, &["customer", "timeline", FILE]).await;
    assert!(
        timeline.to_string().contains("Notatka Bartka"),
        "{timeline}"
    );
    let said = bodies(&ok(&f.anna, &["chat", "read", FILE]).await);
    assert!(
        said.contains(&"Bartek po drugiej kopii".to_owned()),
        "{said:?}"
    );
    // Once given back, a sync is an ordinary one again.
    let again = ok(&f.bartek, &["sync"]).await;
    assert!(again.get("restored").is_none(), "{again}");
    relay.stop().await;
    // The backup is as blind as the relay.
    assert_relay_never_saw(&out, &["Przed kopią", "W trakcie kopii", "bilans 2025"]);
}

/// A typo of a recovery key: one character replaced by another of the base58 alphabet.
fn typo_of(key: &str) -> String {
    let mut c: Vec<char> = key.chars().collect();
    c[6] = if c[6] == 'x' { 'y' } else { 'x' };
    c.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_loses_their_only_device_reads_everything_again_with_the_recovery_key() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    // Celina joins: the join shows her recovery key, once.
    let celina = dir.path().join("celina");
    let code = ok(&f.owner, &["invite", "create", "--name", "Celina Wójcik"]).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = ok(
        &celina,
        &[
            "join",
            "--relay",
            &url,
            "--code",
            &code,
            "--me",
            "Celina Wójcik",
        ],
    )
    .await;
    let key = joined["recovery_key"].as_str().unwrap().to_owned();
    assert!((12..=13).contains(&key.split(' ').count()), "{key}");
    let fp = joined["fingerprint"].as_str().unwrap().to_owned();
    ok(
        &f.owner,
        &["approve", "Celina Wójcik", "--fingerprint", &fp],
    )
    .await;
    ok(&celina, &["sync"]).await;

    // Her history: chat both ways, a direct chat, a note, documents both ways.
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Celina Wójcik"]).await;
    ok(
        &f.owner,
        &[
            "chat",
            "send",
            FILE,
            "Dzień dobry, Celino: bilans do piątku.",
        ],
    )
    .await;
    ok(&celina, &["sync"]).await;
    ok(
        &celina,
        &["chat", "send", FILE, "Przyjęłam, bilans będzie w czwartek."],
    )
    .await;
    ok(
        &celina,
        &[
            "chat",
            "send",
            "@Ewa Nowak",
            "Prywatnie: biorę urlop w maju.",
        ],
    )
    .await;
    ok(
        &celina,
        &[
            "customer",
            "note",
            FILE,
            "Klient prosi o korektę VAT-7 za marzec.",
        ],
    )
    .await;
    let src = dir.path().join("wyciąg marzec.csv");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(&src, &content).unwrap();
    let up = ok(&celina, &["doc", "upload", FILE, src.to_str().unwrap()]).await;
    let document = up["document"].as_str().unwrap().to_owned();
    ok(&f.owner, &["sync"]).await;
    ok(
        &f.owner,
        &["chat", "send", FILE, "Dziękuję, sprawdzę wyciąg."],
    )
    .await;
    ok(&celina, &["sync"]).await;
    let status = ok(&celina, &["backup", "status"]).await;
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["registered"], true, "{status}");
    assert_eq!(status["pending_room_keys"], 0, "{status}");
    let before = bodies(&ok(&celina, &["chat", "read", FILE]).await);
    assert_eq!(before.len(), 3, "{before:?}");

    // The laptop is stolen: a copy of its profile stays with the thief; Celina has nothing.
    let stolen = dir.path().join("stolen");
    copy_dir(&celina, &stolen);
    std::fs::remove_dir_all(&celina).unwrap();

    // A mistyped key, and a well-formed key of no one's backup: clear errors, nothing made.
    let fresh = dir.path().join("celina-nowy");
    let r = ll(
        &fresh,
        &[
            "device",
            "recover",
            "--relay",
            &url,
            "--recovery-key",
            &typo_of(&key),
        ],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("typo"), "{}", r.stderr);
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(e["error"]["reason"], "recovery_key", "{}", r.stderr);
    // A key that was real but reaches no backup any more: its member made a new one.
    let spare = dir.path().join("spare");
    let create = [
        "firm",
        "create",
        "--relay",
        &url,
        "--firm",
        "Inne biuro",
        "--me",
        "Ktoś",
    ];
    let unknown = ok(&spare, &create).await["recovery_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let renewed = ok(&spare, &["backup", "new-key"]).await["recovery_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(renewed, unknown);
    std::fs::remove_dir_all(&spare).unwrap();
    let devices_before = ok(&f.owner, &["device", "list"]).await;
    let r = ll(
        &fresh,
        &[
            "device",
            "recover",
            "--relay",
            &url,
            "--recovery-key",
            &unknown,
        ],
    )
    .await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("no key backup"), "{}", r.stderr);
    assert!(
        !fresh.exists(),
        "a refused recovery leaves no profile behind"
    );
    assert_eq!(ok(&f.owner, &["device", "list"]).await, devices_before);

    // The right key on a fresh profile.
    let rec = ok(
        &fresh,
        &["device", "recover", "--relay", &url, "--recovery-key", &key],
    )
    .await;
    assert_eq!(rec["name"], "Celina Wójcik", "{rec}");
    assert_eq!(rec["revoked_devices"].as_array().unwrap().len(), 1, "{rec}");
    assert!(rec["room_keys"].as_u64().unwrap() >= 3, "{rec}");
    assert!(rec["member_keys"].as_u64().unwrap() >= 1, "{rec}");
    assert_eq!(
        bodies(&ok(&fresh, &["chat", "read", FILE]).await),
        [
            "Dzień dobry, Celino: bilans do piątku.",
            "Przyjęłam, bilans będzie w czwartek.",
            "Dziękuję, sprawdzę wyciąg."
        ]
    );
    let timeline = ok(&fresh, &["customer", "timeline", FILE])
        .await
        .to_string();
    assert!(timeline.contains("korektę VAT-7"), "{timeline}");
    let out = dir.path().join("pobrany.csv");
    ok(
        &fresh,
        &[
            "doc",
            "download",
            FILE,
            &document,
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(std::fs::read(&out).unwrap(), content);

    // The stolen copy is refused by the relay at once.
    let r = ll(&stolen, &["sync"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("revoked"), "{}", r.stderr);
    // The owner's device rotates what the lost device could open; then Celina writes in
    // her file again and the others read her. Before that, her file takes no writes: the
    // relay waits for the new epoch.
    let r = ll(&fresh, &["customer", "note", FILE, "Za wcześnie."]).await;
    assert_ne!(r.code, 0, "{}", r.stderr);
    let s = ok(&f.owner, &["sync"]).await;
    assert_eq!(s["rotated_files"], 1, "{s}");
    ok(&fresh, &["sync"]).await;
    ok(&fresh, &["customer", "note", FILE, "Korekta wysłana."]).await;
    ok(&fresh, &["chat", "send", FILE, "Wracam z nowego laptopa."]).await;
    ok(&f.owner, &["sync"]).await;
    assert_eq!(
        bodies(&ok(&f.owner, &["chat", "read", FILE]).await)
            .last()
            .unwrap(),
        "Wracam z nowego laptopa."
    );
    let timeline = ok(&f.owner, &["customer", "timeline", FILE])
        .await
        .to_string();
    assert!(timeline.contains("Korekta wysłana."), "{timeline}");
    // The owner's device told the new one every name; the direct chat reads too.
    let names = read_names(&ok(&fresh, &["chat", "read", FILE]).await);
    assert!(names.contains("Ewa Nowak"), "{names:?}");
    assert_eq!(
        bodies(&ok(&fresh, &["chat", "read", "@Ewa Nowak"]).await),
        ["Prywatnie: biorę urlop w maju."]
    );
    // The relay never saw the key, the backup's contents or the conversation.
    assert_relay_never_saw(
        &dir.path().join("relay"),
        &[&key, "urlop w maju", "korektę VAT-7", "Celina Wójcik"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reprovisions_a_member_who_lost_device_and_key_and_the_log_shows_who() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    // Not before the policy: an admin cannot reach anyone's key.
    let r = ll(&f.owner, &["member", "reprovision", "Anna Kowalczyk"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("policy"), "{}", r.stderr);
    let r = ll(&f.anna, &["firm", "recovery-policy", "on"]).await;
    assert_eq!(r.code, 7, "only admins set the policy: {}", r.stderr);
    ok(&f.owner, &["firm", "recovery-policy", "on"]).await;
    // Anna joined before the policy: nothing escrowed until she makes a new key.
    let r = ll(&f.owner, &["member", "reprovision", "Anna Kowalczyk"]).await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("backup new-key"), "{}", r.stderr);

    // Dorota joins under the policy: her recovery key goes to the admin's device sealed.
    let dorota = dir.path().join("dorota");
    admit(&f.owner, &dorota, &url, "Dorota Lis", "member").await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Dorota Lis"]).await;
    ok(
        &f.owner,
        &["chat", "send", FILE, "Dorota, proszę o listę płac."],
    )
    .await;
    ok(&dorota, &["sync"]).await;
    ok(
        &dorota,
        &["chat", "send", FILE, "Lista płac jest w dokumentach."],
    )
    .await;
    ok(
        &dorota,
        &["customer", "note", FILE, "Płace za październik zamknięte."],
    )
    .await;
    let src = dir.path().join("lista płac.csv");
    std::fs::write(&src, "Jan;5000,00\nMaria;6200,00\n").unwrap();
    let document = ok(&dorota, &["doc", "upload", FILE, src.to_str().unwrap()]).await["document"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&dorota, &["sync"]).await;
    let dorota_id = ok(&dorota, &["whoami"]).await["member"]
        .as_str()
        .unwrap()
        .to_owned();

    // Her laptop is gone, and so is the paper with her recovery key.
    std::fs::remove_dir_all(&dorota).unwrap();
    let code = ok(&f.owner, &["member", "reprovision", "Dorota Lis"]).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let fresh = dir.path().join("dorota-nowy");
    let fp = ok(
        &fresh,
        &[
            "device",
            "join",
            "--relay",
            &url,
            "--code",
            &code,
            "--me",
            "Dorota Lis",
        ],
    )
    .await["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = ll(
        &f.owner,
        &[
            "member",
            "reprovision",
            "Dorota Lis",
            "--fingerprint",
            "1111 1111 1111 1111 1111",
        ],
    )
    .await;
    assert_eq!(
        r.code, 6,
        "a wrong fingerprint matches nothing: {}",
        r.stderr
    );
    let done = ok(
        &f.owner,
        &["member", "reprovision", "Dorota Lis", "--fingerprint", &fp],
    )
    .await;
    assert_eq!(
        done["revoked_devices"].as_array().unwrap().len(),
        1,
        "{done}"
    );
    assert!(done["files"].as_u64().unwrap() >= 1, "{done}");
    let device = done["device"].as_str().unwrap().to_owned();
    ok(&fresh, &["sync"]).await; // in the roster: prekeys out
    ok(&f.owner, &["sync"]).await; // the recovery key and names go over Olm
    ok(&fresh, &["sync"]).await; // restores the backup, then reads
    let who = ok(&fresh, &["whoami"]).await;
    assert_eq!(who["member"], dorota_id.as_str(), "{who}");
    assert_eq!(
        bodies(&ok(&fresh, &["chat", "read", FILE]).await),
        [
            "Dorota, proszę o listę płac.",
            "Lista płac jest w dokumentach."
        ]
    );
    let timeline = ok(&fresh, &["customer", "timeline", FILE])
        .await
        .to_string();
    assert!(timeline.contains("Płace za październik"), "{timeline}");
    let out = dir.path().join("pobrana lista.csv");
    ok(
        &fresh,
        &[
            "doc",
            "download",
            FILE,
            &document,
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "Jan;5000,00\nMaria;6200,00\n"
    );
    // She holds her master key again: she can link a device of her own.
    ok(&fresh, &["device", "link"]).await;
    // She works on: a new note in her file (re-keyed by the owner) reaches the owner.
    ok(&fresh, &["customer", "note", FILE, "Nowy laptop działa."]).await;
    ok(&f.owner, &["sync"]).await;
    let timeline = ok(&f.owner, &["customer", "timeline", FILE])
        .await
        .to_string();
    assert!(timeline.contains("Nowy laptop działa."), "{timeline}");

    // The access log says who did it: the owner added Dorota's new device.
    let owner_id = ok(&f.owner, &["whoami"]).await["member"]
        .as_str()
        .unwrap()
        .to_owned();
    let (run, rows, summary) = audit_now(&f.owner, dir.path(), "reprovision.jsonl").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(summary.is_some());
    let added = format!("added device {device} of member {dorota_id}");
    assert!(
        rows.iter()
            .any(|v| v["row"]["member"] == owner_id.as_str() && v["row"]["action"] == added),
        "{rows:?}"
    );
    assert!(rows
        .iter()
        .any(|v| v["row"]["action"] == "turned admin-assisted recovery on"));
    assert_relay_never_saw(
        &dir.path().join("relay"),
        &["Płace za październik", "Jan;5000", "Dorota Lis"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_talks_and_shares_in_their_conversation_and_reaches_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    let file = ok(&f.owner, &["file", "create", FILE]).await["file"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    let other = ok(&f.owner, &["file", "create", "Inny Klient S.A."]).await["file"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &f.owner,
        &["file", "grant", "Inny Klient S.A.", "Bartek Zieliński"],
    )
    .await;
    // Internal work in the file: a note and a staff-room message.
    ok(
        &f.anna,
        &["customer", "note", FILE, "Notatka wewnętrzna: zaległy VAT"],
    )
    .await;
    ok(
        &f.anna,
        &["chat", "send", FILE, "Wewnętrznie: klient płaci późno"],
    )
    .await;
    ok(
        &f.bartek,
        &["chat", "send", "Inny Klient S.A.", "Sprawa innego klienta"],
    )
    .await;

    // The owner invites the customer's person; the code carries the office's fingerprint.
    let bad = ll(
        &f.owner,
        &[
            "guest",
            "invite",
            FILE,
            "--name",
            "Jan Kowalski",
            "--hours",
            "0",
        ],
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let code = ok(
        &f.owner,
        &["guest", "invite", FILE, "--name", "Jan Kowalski"],
    )
    .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let guest = dir.path().join("guest");
    let fp = ok(
        &guest,
        &[
            "join",
            "--relay",
            &url,
            "--code",
            &code,
            "--me",
            "Jan Kowalski",
        ],
    )
    .await["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&f.owner, &["approve", "Jan Kowalski", "--fingerprint", &fp]).await;
    ok(&guest, &["sync"]).await;
    let guests = ok(&f.owner, &["guest", "list"]).await;
    assert_eq!(guests["guests"][0]["name"], "Jan Kowalski");
    assert_eq!(guests["guests"][0]["file"], file.as_str());

    // Anna writes to the customer, and an internal remark beside it.
    ok(
        &f.anna,
        &[
            "conversation",
            "send",
            "--file",
            FILE,
            "Dzień dobry, prosimy o fakturę za marzec",
        ],
    )
    .await;
    ok(
        &f.anna,
        &[
            "conversation",
            "send",
            "--file",
            FILE,
            "--internal",
            "Uwaga: klient zalega z płatnością",
        ],
    )
    .await;
    let read = ok(&guest, &["conversation", "read"]).await;
    assert_eq!(
        bodies(&read),
        vec!["Dzień dobry, prosimy o fakturę za marzec"]
    );
    assert_eq!(
        read_names(&read),
        BTreeSet::from(["Anna Kowalczyk".to_owned()])
    );
    // The guest answers and uploads an invoice into the conversation.
    ok(
        &guest,
        &["conversation", "send", "Przesyłam fakturę FV/03/2026"],
    )
    .await;
    let invoice: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let path = dir.path().join("FV-03-2026 Kowalski.pdf");
    std::fs::write(&path, &invoice).unwrap();
    let shared = ok(&guest, &["conversation", "share", path.to_str().unwrap()]).await;
    assert_eq!(shared["size"], 300_000);

    // Anna sees the customer's side and her internal remark, marked; downloads the invoice.
    let read = ok(&f.anna, &["conversation", "read", "--file", FILE]).await;
    let seen: Vec<(String, bool)> = read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["body"].as_str().unwrap_or("").to_owned(),
                m["internal"].as_bool().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("Dzień dobry, prosimy o fakturę za marzec", false),
        ("Uwaga: klient zalega z płatnością", true),
        ("Wewnętrznie: klient płaci późno", true),
        ("Przesyłam fakturę FV/03/2026", false),
        ("FV-03-2026 Kowalski.pdf", false),
    ] {
        assert!(
            seen.contains(&(expected.0.to_owned(), expected.1)),
            "{expected:?} in {seen:?}"
        );
    }
    let docs = ok(&f.anna, &["conversation", "docs", "--file", FILE]).await;
    assert_eq!(docs["documents"][0]["name"], "FV-03-2026 Kowalski.pdf");
    let out = dir.path().join("from-guest.pdf");
    ok(
        &f.anna,
        &[
            "conversation",
            "download",
            "FV-03-2026 Kowalski.pdf",
            "--file",
            FILE,
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(std::fs::read(&out).unwrap(), invoice);
    // What the customer sent is among the file's documents too (its inbox), and opens
    // from there.
    let listed = ok(&f.anna, &["doc", "list", FILE]).await;
    assert!(
        listed.to_string().contains("FV-03-2026 Kowalski.pdf"),
        "{listed}"
    );
    let again = dir.path().join("from-guest-again.pdf");
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "FV-03-2026 Kowalski.pdf",
            "--out",
            again.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(std::fs::read(&again).unwrap(), invoice);
    // The customer's messages are in the file's timeline.
    let timeline = ok(&f.anna, &["customer", "timeline", FILE]).await;
    assert!(timeline
        .to_string()
        .contains("Przesyłam fakturę FV/03/2026"));

    // A document Anna shares reaches the guest.
    let pit = dir.path().join("PIT-11 2025.pdf");
    std::fs::write(&pit, b"PIT-11 za rok 2025 dla Jana Kowalskiego").unwrap();
    ok(
        &f.anna,
        &[
            "conversation",
            "share",
            "--file",
            FILE,
            pit.to_str().unwrap(),
        ],
    )
    .await;
    let got = dir.path().join("got.pdf");
    ok(
        &guest,
        &[
            "conversation",
            "download",
            "PIT-11 2025.pdf",
            "--out",
            got.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        std::fs::read(&got).unwrap(),
        b"PIT-11 za rok 2025 dla Jana Kowalskiego"
    );

    // The guest knows by name the people of their conversation, and nobody else.
    let known = names(&ok(&guest, &["member", "list"]).await, "members", "name");
    assert!(known.contains("Anna Kowalczyk"), "{known:?}");
    assert!(!known.contains("Bartek Zieliński"), "{known:?}");

    // A colleague granted the file later reads the conversation from its start, and the
    // guest learns who joined it.
    ok(&f.owner, &["file", "grant", FILE, "Bartek Zieliński"]).await;
    let known = names(&ok(&guest, &["member", "list"]).await, "members", "name");
    assert!(known.contains("Bartek Zieliński"), "{known:?}");
    let late = ok(&f.bartek, &["conversation", "read", "--file", FILE]).await;
    assert!(
        bodies(&late).contains(&"Przesyłam fakturę FV/03/2026".to_owned()),
        "{late}"
    );

    // Nothing else: no internal message, note or other customer on the guest's device,
    // no names beyond their conversation, and the relay refuses the rest.
    for needle in [
        "zalega",
        "płaci późno",
        "Notatka",
        "innego klienta",
        "Inny Klient",
    ] {
        let hits = ok(&guest, &["search", needle]).await;
        assert!(
            hits["results"].as_array().unwrap().is_empty(),
            "{needle}: {hits}"
        );
    }
    for args in [
        vec!["chat", "read", &file],
        vec!["chat", "read", &other],
        vec!["doc", "list", &file],
        vec!["customer", "timeline", &file],
    ] {
        let r = ll(&guest, &args).await;
        assert_ne!(r.code, 0, "{args:?}: {}", r.json);
    }
    let r = ll(&guest, &["conversation", "read", "--file", &other]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = ll(&guest, &["conversation", "send", "--internal", "x"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = ll(&guest, &["guest", "invite", &file, "--name", "Ktoś"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);

    // Revoked: the guest is cut off at once; the conversation goes on without them.
    ok(&f.owner, &["guest", "revoke", "Jan Kowalski"]).await;
    let r = ll(&guest, &["sync"]).await;
    assert_ne!(r.code, 0);
    ok(
        &f.anna,
        &[
            "conversation",
            "send",
            "--file",
            FILE,
            "Po odwołaniu dostępu",
        ],
    )
    .await;
    assert!(
        bodies(&ok(&f.anna, &["conversation", "read", "--file", FILE]).await)
            .contains(&"Po odwołaniu dostępu".to_owned())
    );
    // The access log says who did what, and proves the conversation moved to new
    // sessions once the guest was out.
    let bundle = dir.path().join("guest-audit.jsonl");
    ok(
        &f.owner,
        &["audit", "export", "--out", bundle.to_str().unwrap()],
    )
    .await;
    let (verified, rows) = verify_bundle(&f.owner, &bundle).await;
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(
        rows.iter().any(|r| r.to_string().contains("added guest")),
        "the report names the guest's admission"
    );

    // The relay never held a word, a name or a byte of it in the clear.
    let addr = relay.addr;
    relay.stop().await;
    assert_relay_never_saw(
        &data,
        &[
            "prosimy o fakturę",
            "Przesyłam fakturę",
            "FV-03-2026 Kowalski.pdf",
            "PIT-11 za rok 2025",
            "Jan Kowalski",
            "zalega z płatnością",
        ],
    );
    let needle = &invoice[1000..1064];
    for p in all_files(&data) {
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{}",
            p.display()
        );
    }

    // An unused guest invitation expires: an hour and a half later its code admits nobody.
    let mut relay = Relay::start(&data, addr).await;
    let late = ok(
        &f.owner,
        &[
            "guest",
            "invite",
            FILE,
            "--name",
            "Spóźniony",
            "--hours",
            "1",
        ],
    )
    .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    relay.stop().await;
    let ahead = 90 * 60 * 1000;
    let relay = Relay::start_later(&data, addr, ahead).await;
    CLIENT_CLOCK_AHEAD_MS.with(|c| c.set(ahead));
    let r = ll(
        &dir.path().join("late"),
        &[
            "join",
            "--relay",
            &relay.url(),
            "--code",
            &late,
            "--me",
            "Spóźniony",
        ],
    )
    .await;
    CLIENT_CLOCK_AHEAD_MS.with(|c| c.set(0));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("no open invitation"), "{}", r.stderr);
}

/// A realistic invoice PDF stand-in: a PDF header and every byte value (binary-exact).
fn pdf_bytes(tag: &str) -> Vec<u8> {
    let mut b = format!("%PDF-1.4\n% {tag}\n").into_bytes();
    b.extend((0..=255u8).cycle().take(3000));
    b.extend_from_slice(b"\n%%EOF\n");
    b
}

const JPK_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<JPK xmlns=\"http://crd.gov.pl/wzor/2021/12/27/11148/\"><Naglowek><KodFormularza>JPK_VAT</KodFormularza></Naglowek><Podmiot1><NIP>7740001454</NIP><PelnaNazwa>Nowak Budownictwo Spółka z o.o.</PelnaNazwa></Podmiot1></JPK>\n";

/// The test corpus: Polish names and subjects in the encodings Polish mail uses.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    // 1. The customer's own address; UTF-8 subject as an encoded word, ISO-8859-2 body
    //    in quoted-printable, a PDF and an FA(3) XML attached.
    let invoice = format!(
        "From: {} <ksiegowosc@kowalski.pl>\r\nTo: {MAIL_USER}\r\nSubject: {}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\nMessage-ID: <fv-2026-10-15@kowalski.pl>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"GRANICA\"\r\n\r\n\
--GRANICA\r\nContent-Type: text/plain; charset=ISO-8859-2\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nW za=B3=B1czeniu przesy=B3am faktur=EA za pa=BCdziernik. Pozdrawiam, Gra=BFyna\r\n{}{}--GRANICA--\r\n",
        word("Grażyna Kowalska"),
        word("Faktura VAT FV/2026/10/15 za październik"),
        attachment_part("FV_2026_10_15.pdf", "application/pdf", &pdf_bytes("faktura kowalski")),
        attachment_part("FV_2026_10_15.xml", "application/xml", b"<Faktura><Fa><P_15>1230.00</P_15></Fa></Faktura>\n"),
    );
    // 2. Another person at the second customer's domain; Windows-1250 subject and body.
    let mut payroll = b"From: Kadry Nowak <kadry@nowak-bud.pl>\r\nTo: biuro@example.pl\r\nSubject: =?windows-1250?Q?Lista_p=B3ac_za_pa=9Fdziernik?=\r\nDate: Tue, 3 Nov 2026 09:15:00 +0100\r\nContent-Type: text/plain; charset=windows-1250\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
    payroll.extend_from_slice(
        b"Prosz\xea o przygotowanie listy p\xb3ac. \x8cwiadczenia bez zmian.\r\n",
    );
    // 3. A bank (unknown sender), HTML-only body, the customer's NIP in a JPK's name.
    let bank = format!(
        "From: PKO BP <powiadomienia@pkobp.pl>\r\nTo: {MAIL_USER}\r\nSubject: {}\r\nDate: Wed, 4 Nov 2026 07:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"GRANICA\"\r\n\r\n\
--GRANICA\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body><p>Szanowni Pa=C5=84stwo,</p><p>w za=C5=82=C4=85czeniu <b>wyci=C4=85g</b>.</p><script>x()</script></body></html>\r\n{}--GRANICA--\r\n",
        word("Wyciąg z rachunku 10/2026"),
        attachment_part("JPK_WB_7740001454_2026-10.xml", "application/xml", JPK_XML.as_bytes()),
    );
    // 4. The tax office, the first customer's NIP written with dashes in the subject.
    let tax = format!(
        "From: e-Urząd Skarbowy <powiadomienia@mf.gov.pl>\r\nTo: {MAIL_USER}\r\nSubject: {}\r\nDate: Thu, 5 Nov 2026 12:00:00 +0100\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        word("Wezwanie do złożenia wyjaśnień — NIP 526-025-02-74"),
        {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode("Prosimy o wyjaśnienia w terminie 7 dni.")
        }
    );
    // 5. A stranger on a webmail domain: nothing places it.
    let stranger = format!(
        "From: Zbigniew Wiśniewski <z.wisniewski@gmail.com>\r\nTo: {MAIL_USER}\r\nSubject: {}\r\nDate: Fri, 6 Nov 2026 18:30:00 +0100\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nDzień dobry, czy prowadzą Państwo księgowość spółek?\r\n",
        word("Pytanie o ofertę księgową"),
    );
    // 6. Not an e-mail at all.
    let garbage = b"\x00\x01\x02\x03 to nie jest list \xff\xfe".to_vec();
    vec![
        ("invoice", invoice.into_bytes()),
        ("payroll", payroll),
        ("bank", bank.into_bytes()),
        ("tax", tax.into_bytes()),
        ("stranger", stranger.into_bytes()),
        ("garbage", garbage),
    ]
}

fn placed<'a>(report: &'a Value, subject_file: &str) -> Vec<&'a Value> {
    report["imported"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["file_name"] == subject_file)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_fetched_sorted_and_stored_encrypted_in_customer_files() {
    const K: &str = "Kowalski sp. z o.o.";
    const N: &str = "Nowak Budownictwo";
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    ok(
        &f.owner,
        &[
            "customer",
            "add",
            K,
            "--nip",
            "526-025-02-74",
            "--email",
            "ksiegowosc@kowalski.pl",
        ],
    )
    .await;
    ok(
        &f.owner,
        &[
            "customer",
            "add",
            N,
            "--nip",
            "7740001454",
            "--email",
            "biuro@nowak-bud.pl",
        ],
    )
    .await;
    ok(&f.owner, &["file", "grant", K, "Anna Kowalczyk"]).await;

    let mut imap = Dovecot::start(&dir.path().join("imap"));
    let corpus = corpus();
    for (_, raw) in &corpus {
        imap.deliver(raw);
    }
    let port = imap.port.to_string();
    let ca = imap.ca.to_str().unwrap().to_owned();
    let connect = |password: &str, ca: Option<&str>| {
        let mut args = vec![
            "mail",
            "connect",
            "--host",
            "localhost",
            "--port",
            &port,
            "--user",
            MAIL_USER,
        ];
        if let Some(ca) = ca {
            args.extend(["--ca-file", ca]);
        }
        let mut c = command(&f.owner, &args);
        c.env("LEDGERLINE_MAIL_PASSWORD", password);
        run_with(c)
    };
    // The server's certificate is checked: without the office's CA, no connection.
    let r = connect(MAIL_PASSWORD, None).await;
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(
        r.stderr.contains("mail_server") && r.stderr.contains("TLS"),
        "{}",
        r.stderr
    );
    // A wrong password: a clear refusal, nothing kept, the password never echoed.
    let r = connect("złe hasło", Some(&ca)).await;
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(r.stderr.contains("refused the login"), "{}", r.stderr);
    assert!(!r.stderr.contains("złe hasło"));
    assert_eq!(
        ok(&f.owner, &["mail", "list"]).await["mailboxes"],
        json!([])
    );
    let r = connect(MAIL_PASSWORD, Some(&ca)).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let label = r.json["label"].as_str().unwrap().to_owned();
    assert_eq!(label, format!("{MAIL_USER}@localhost/INBOX"));
    assert!(["keyring", "local store"].contains(&r.json["password_in"].as_str().unwrap()));

    // First fetch: five messages read and sorted, the garbage reported, the rest imported.
    let rep = ok(&f.owner, &["mail", "fetch"]).await;
    assert_eq!(rep["read"], 6, "{rep}");
    assert_eq!(rep["inbox"], 1, "{rep}");
    assert_eq!(rep["duplicates"], 0);
    let failed = rep["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{rep}");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not an e-mail message"),
        "{rep}"
    );
    let k_mail = placed(&rep, K);
    let n_mail = placed(&rep, N);
    assert_eq!(k_mail.len(), 2, "{rep}");
    assert_eq!(n_mail.len(), 2, "{rep}");
    let reasons: BTreeSet<(String, String)> = rep["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["reason"].as_str().unwrap().to_owned(),
                m["category"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("sender's address", "invoice"),
        ("sender's domain nowak-bud.pl", "payroll"),
        (
            "NIP in the subject or an attachment's name",
            "bank_statement",
        ),
        ("NIP in the subject or an attachment's name", "tax_office"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(reasons, expected);
    // Read again: nothing new.
    let again = ok(&f.owner, &["mail", "fetch"]).await;
    assert_eq!(
        (
            again["read"].as_u64(),
            again["imported"].as_array().unwrap().len()
        ),
        (Some(0), 0)
    );

    // Anna, granted the first customer, reads its mail on her own device: decoded, with the
    // attachment byte for byte; the timeline and search have it.
    let read = ok(&f.anna, &["mail", "read", K]).await;
    let mails = read["mail"].as_array().unwrap();
    assert_eq!(mails.len(), 2, "{read}");
    let inv = mails.iter().find(|m| m["category"] == "invoice").unwrap();
    assert_eq!(inv["subject"], "Faktura VAT FV/2026/10/15 za październik");
    assert_eq!(inv["from_name"], "Grażyna Kowalska");
    assert_eq!(
        inv["text"],
        "W załączeniu przesyłam fakturę za październik. Pozdrawiam, Grażyna"
    );
    let atts = inv["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2);
    let pdf = atts.iter().find(|a| a[1] == "FV_2026_10_15.pdf").unwrap();
    let out = dir.path().join("faktura.pdf");
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            K,
            pdf[0].as_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(std::fs::read(&out).unwrap(), pdf_bytes("faktura kowalski"));
    let tax = mails
        .iter()
        .find(|m| m["category"] == "tax_office")
        .unwrap();
    assert_eq!(tax["text"], "Prosimy o wyjaśnienia w terminie 7 dni.");
    let shown = ok(
        &f.anna,
        &["mail", "show", &inv["id"].as_str().unwrap()[..10]],
    )
    .await;
    assert_eq!(shown["digest"], Value::Null, "the digest is not shown");
    assert_eq!(shown["subject"], inv["subject"]);
    let timeline = ok(&f.anna, &["customer", "timeline", K]).await;
    assert!(
        timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "mail" && i["title"] == inv["subject"]),
        "{timeline}"
    );
    let hits = ok(&f.anna, &["search", "przesyłam"]).await;
    assert_eq!(hits["results"].as_array().unwrap().len(), 1, "{hits}");
    // The bank's HTML became text; the script is gone.
    let nowak = ok(&f.owner, &["mail", "read", N]).await;
    let bank = nowak["mail"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["category"] == "bank_statement")
        .unwrap();
    assert!(bank["text"].as_str().unwrap().contains("wyciąg"), "{bank}");
    assert!(!bank["text"].as_str().unwrap().contains("<"), "{bank}");
    let pay = nowak["mail"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["category"] == "payroll")
        .unwrap();
    assert_eq!(pay["subject"], "Lista płac za październik");
    assert_eq!(
        pay["text"],
        "Proszę o przygotowanie listy płac. Świadczenia bez zmian."
    );
    // Bartek has neither file: none of it reaches him.
    let r = ll(&f.bartek, &["mail", "read", K]).await;
    assert_ne!(r.code, 0);
    assert!(ok(&f.bartek, &["search", "przesyłam"]).await["results"]
        .as_array()
        .unwrap()
        .is_empty());

    // The inbox: the stranger's question. A second message from them arrives; assigning the
    // first with a rule places the second too.
    let inbox = ok(&f.owner, &["mail", "inbox"]).await;
    let items = inbox["inbox"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{inbox}");
    assert_eq!(items[0]["subject"], "Pytanie o ofertę księgową");
    assert_eq!(items[0]["reason"], "no match");
    let first = items[0]["id"].as_str().unwrap().to_owned();
    imap.deliver(
        format!(
            "From: z.wisniewski@gmail.com\r\nTo: {MAIL_USER}\r\nSubject: {}\r\nDate: Mon, 9 Nov 2026 08:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"GRANICA\"\r\n\r\n--GRANICA\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nPrzesyłam dokumenty.\r\n{}--GRANICA--\r\n",
            word("Dokumenty za listopad"),
            attachment_part("umowa.pdf", "application/pdf", &pdf_bytes("umowa")),
        )
        .as_bytes(),
    );
    let rep = ok(&f.owner, &["mail", "fetch"]).await;
    assert_eq!(
        (rep["read"].as_u64(), rep["inbox"].as_u64()),
        (Some(1), Some(1)),
        "{rep}"
    );
    let r = ll(
        &f.owner,
        &["mail", "assign", &first, K, "--rule", "attachment"],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let assigned = ok(&f.owner, &["mail", "assign", &first, K, "--rule", "from"]).await;
    assert_eq!(assigned["placed"]["file_name"], K);
    assert_eq!(assigned["rule"]["on"], "from");
    assert_eq!(assigned["rule"]["pattern"], "z.wisniewski@gmail.com");
    assert_eq!(
        assigned["also_placed"].as_array().unwrap().len(),
        1,
        "{assigned}"
    );
    assert_eq!(assigned["also_placed"][0]["attachments"], 1);
    assert_eq!(ok(&f.owner, &["mail", "inbox"]).await["inbox"], json!([]));
    // The rule is the firm's: Anna's device sorts by it too.
    let rules = ok(&f.anna, &["mail", "rules"]).await;
    assert_eq!(rules["rules"].as_array().unwrap().len(), 1, "{rules}");
    assert_eq!(
        ok(&f.anna, &["mail", "read", K]).await["mail"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // The server renumbers the folder (new UIDVALIDITY): everything is read again and
    // nothing is imported twice.
    imap.renumber();
    let rep = ok(&f.owner, &["mail", "fetch"]).await;
    assert_eq!(rep["uid_validity_changed"], json!([label]), "{rep}");
    assert_eq!(rep["read"], 7, "{rep}");
    assert_eq!(rep["duplicates"], 6, "{rep}");
    assert_eq!(rep["imported"], json!([]), "{rep}");
    assert_eq!(rep["inbox"], 0, "{rep}");
    assert_eq!(
        ok(&f.owner, &["mail", "read", K]).await["mail"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let status = ok(&f.owner, &["mail", "status"]).await;
    assert!(!status["failed"].as_array().unwrap().is_empty(), "{status}");

    // Mail from a customer not on file yet waits in the inbox; once their card exists,
    // the next fetch places it.
    imap.deliver(
        format!(
            "From: Marta Lis <marta@lis-transport.pl>\r\nTo: {MAIL_USER}\r\nSubject: {}\r\nDate: Tue, 10 Nov 2026 07:00:00 +0100\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nW załączeniu umowa.\r\n",
            word("Umowa o prowadzenie księgowości"),
        )
        .as_bytes(),
    );
    let rep = ok(&f.owner, &["mail", "fetch"]).await;
    assert_eq!(
        (rep["read"].as_u64(), rep["inbox"].as_u64()),
        (Some(1), Some(1)),
        "{rep}"
    );
    ok(
        &f.owner,
        &[
            "customer",
            "add",
            "Lis Transport",
            "--email",
            "marta@lis-transport.pl",
        ],
    )
    .await;
    let rep = ok(&f.owner, &["mail", "fetch"]).await;
    assert_eq!(rep["read"], 0, "{rep}");
    assert_eq!(placed(&rep, "Lis Transport").len(), 1, "{rep}");
    assert_eq!(ok(&f.owner, &["mail", "inbox"]).await["inbox"], json!([]));

    // The relay goes away mid-fetch: the fetch stops with a clear error and reads the
    // message again next time; nothing is lost or doubled.
    imap.deliver(
        format!(
            "From: ksiegowosc@kowalski.pl\r\nTo: {MAIL_USER}\r\nSubject: {}\r\nDate: Tue, 10 Nov 2026 08:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"GRANICA\"\r\n\r\n--GRANICA\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nKorekta w załączniku.\r\n{}--GRANICA--\r\n",
            word("Faktura korygująca KOR/2026/11/01"),
            attachment_part("KOR_2026_11_01.pdf", "application/pdf", &pdf_bytes("korekta")),
        )
        .as_bytes(),
    );
    relay.stop().await;
    let r = ll(&f.owner, &["mail", "fetch"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("mail fetch` goes on from here"),
        "{}",
        r.stderr
    );
    assert_eq!(r.json["read"], 1, "the report is printed too");
    relay.restart().await;
    let rep = ok(&f.owner, &["mail", "fetch"]).await;
    assert_eq!(rep["read"], 1, "{rep}");
    assert_eq!(placed(&rep, K).len(), 1, "{rep}");
    assert_eq!(ok(&f.owner, &["mail", "fetch"]).await["read"], 0);
    let k = ok(&f.anna, &["mail", "read", K]).await;
    assert_eq!(k["mail"].as_array().unwrap().len(), 5, "{k}");
    let docs = ok(&f.anna, &["doc", "list", K]).await;
    let kor = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] == "KOR_2026_11_01.pdf")
        .count();
    assert_eq!(kor, 1, "{docs}");

    // The relay never saw a word of it, nor the password.
    drop(imap);
    assert_relay_never_saw(
        &relay.dir,
        &[
            "Faktura VAT",
            "październik",
            "ksiegowosc@kowalski.pl",
            "kowalski.pl",
            "nowak-bud.pl",
            "z.wisniewski",
            "FV_2026_10_15",
            "JPK_WB",
            "Nowak Budownictwo Sp",
            "faktura kowalski",
            "Prosimy o wyja",
            "wyciąg",
            "biuro@example.pl",
            MAIL_PASSWORD,
            "imap.pem",
        ],
    );
}

/// `ledgerline` with the KSeF test server as its KSeF (address and CA).
fn ksef_command(profile: &Path, args: &[&str], server: &KsefServer) -> tokio::process::Command {
    let mut c = command(profile, args);
    c.env("LEDGERLINE_KSEF_URL", &server.url)
        .env("LEDGERLINE_KSEF_CA_FILE", &server.ca);
    c
}

/// The invoices `ksef invoices` lists, by KSeF number.
async fn invoices_of(profile: &Path, file: &str) -> std::collections::BTreeMap<String, Value> {
    ok(profile, &["ksef", "invoices", file]).await["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["ksef_number"].as_str().unwrap().to_owned(), i.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ksef_invoices_are_fetched_incrementally_and_kept_encrypted() {
    use chrono::Utc;
    use ledgerline_client_core::chrono;
    use ledgerline_testkit::fa3::{money, random_party, Fa3, Party};
    use rand_chacha::rand_core::SeedableRng;
    const K: &str = "Kowalski sp. z o.o.";
    const NIP: &str = "5260250274";
    const TOKEN: &str = "20260101-EC-2F9A7C1B00-8D3E5A7F21-4B|nip-5260250274|6c1f0e9d2b";
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()).await;
    let url = relay.url();
    let f = found(dir.path(), &url).await;
    ok(&f.owner, &["customer", "add", K, "--nip", NIP]).await;
    ok(&f.owner, &["file", "grant", K, "Anna Kowalczyk"]).await;

    let server = KsefServer::start(&dir.path().join("ksef"));
    server.add_token(NIP, TOKEN);
    // KSeF's high-water mark trails now: what it may still be storing is not listed yet.
    // (The mark never moves back, so the lag is set before anything is read.)
    server.set_hwm_lag(Duration::from_secs(2));
    let ks = |profile: &Path, args: &[&str]| run_with(ksef_command(profile, args, &server));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let customer = Party {
        nip: Some(NIP.into()),
        eu: None,
        name: K.into(),
    };
    let today = Utc::now().date_naive();
    let mut models: std::collections::BTreeMap<String, Fa3> = Default::default();
    let publish = |fa: Fa3, models: &mut std::collections::BTreeMap<String, Fa3>| {
        let n = server.publish(&fa);
        models.insert(n.clone(), fa);
        n
    };
    // Sales (the customer issues), a correction of one, purchases (it receives).
    let mut first_sale = None;
    for _ in 0..4 {
        let buyer = random_party(&mut rng);
        let fa = Fa3::random(&mut rng, customer.clone(), buyer, today);
        let n = publish(fa.clone(), &mut models);
        first_sale.get_or_insert((n, fa));
    }
    let (sale_n, sale) = first_sale.unwrap();
    publish(Fa3::correction(&sale, &sale_n, today), &mut models);
    for i in 0..4 {
        let seller = random_party(&mut rng);
        let mut fa = Fa3::random(&mut rng, seller, customer.clone(), today);
        if i == 0 {
            fa.due = Some(today + chrono::Duration::days(3));
            fa.paid = false;
        }
        publish(fa, &mut models);
    }
    let supplier = random_party(&mut rng);
    let malformed = server.publish_bytes(
        supplier.nip.as_deref().unwrap(),
        NIP,
        b"<Faktura><P_15>12,00</Faktura>",
    );
    let tampered_fa = Fa3::random(&mut rng, supplier.clone(), customer.clone(), today);
    let tampered = publish(tampered_fa.clone(), &mut models);
    server.tamper(&tampered, "<P_15>", "<P_15>1");
    // Few enough per page and per query that the sync pages through the list, meets
    // KSeF's truncation and goes on after it.
    server.set_page_cap(2);
    server.set_truncate_at(5);

    // A wrong token: a clear refusal, nothing kept, the token never echoed.
    let mut c = ksef_command(
        &f.owner,
        &["ksef", "token", "set", K, "--env", "test"],
        &server,
    );
    c.env("LEDGERLINE_KSEF_TOKEN", "20260101-EC-ZLY-TOKEN");
    let r = run_with(c).await;
    assert_eq!(r.code, 10, "{}", r.stderr);
    assert!(r.stderr.contains("refused the login"), "{}", r.stderr);
    assert!(!r.stderr.contains("ZLY-TOKEN"), "{}", r.stderr);
    assert_eq!(ok(&f.owner, &["ksef", "status"]).await["files"], json!([]));
    // Without trusting the server's CA there is no connection at all.
    let mut c = command(&f.owner, &["ksef", "token", "set", K, "--env", "test"]);
    c.env("LEDGERLINE_KSEF_URL", &server.url)
        .env("LEDGERLINE_KSEF_TOKEN", TOKEN);
    let r = run_with(c).await;
    assert_eq!(r.code, 10, "{}", r.stderr);
    assert!(r.stderr.contains("could not be reached"), "{}", r.stderr);

    let mut c = ksef_command(
        &f.owner,
        &["ksef", "token", "set", K, "--env", "test"],
        &server,
    );
    c.env("LEDGERLINE_KSEF_TOKEN", TOKEN);
    let r = run_with(c).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["nip"], NIP);
    assert!(!r.json.to_string().contains(TOKEN));

    // The full fetch, once the mark has passed what was published.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = &r.json["files"][0];
    assert_eq!(rep["sales"], 5, "{rep}");
    assert_eq!(rep["purchases"], 6, "{rep}");
    assert_eq!(rep["tasks"], 1, "{rep}");
    // Pages of two and a truncation at five: seven queries, not the three of one page each.
    assert!(server.stats().queries >= 6, "{:?}", server.stats());
    let warned: BTreeSet<String> = rep["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        warned,
        BTreeSet::from([malformed.clone(), tampered.clone()]),
        "{rep}"
    );
    let list = invoices_of(&f.owner, K).await;
    assert_eq!(list.len(), 11);
    for (n, fa) in &models {
        let v = &list[n];
        assert_eq!(
            v["direction"],
            if fa.seller.nip.as_deref() == Some(NIP) {
                "sales"
            } else {
                "purchase"
            }
        );
        if *n == tampered {
            continue;
        }
        // Exact decimals, as the XML has them.
        assert_eq!(
            v["invoice"]["gross"],
            money(fa.gross()).trim_start_matches('+'),
            "{v}"
        );
        assert_eq!(v["invoice"]["net"], money(fa.net()), "{v}");
        assert_eq!(v["invoice"]["vat"], money(fa.vat()), "{v}");
        assert_eq!(v["invoice"]["seller"]["name"], fa.seller.name.as_str());
        assert!(v["warnings"].as_array().unwrap().is_empty(), "{v}");
    }
    let m = &list[&malformed];
    assert!(m["invoice"].is_null());
    assert!(
        m["warnings"][0].as_str().unwrap().contains("unreadable"),
        "{m}"
    );
    let t = &list[&tampered];
    assert!(
        t["warnings"]
            .to_string()
            .contains("does not match KSeF's hash"),
        "{t}"
    );
    // The original XML is a document of the file, byte for byte.
    let out = dir.path().join("faktura.xml");
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            K,
            list[&sale_n]["document"].as_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    let published = server.published();
    let original = &published.iter().find(|p| p.0 == sale_n).unwrap().2;
    assert_eq!(&std::fs::read(&out).unwrap(), original);
    // A task to pay the purchase due in three days; the timeline shows the invoices.
    let tasks = ok(&f.owner, &["task", "list", "--customer", K]).await;
    assert_eq!(
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["title"].as_str().unwrap().starts_with("Zapłać fakturę"))
            .count(),
        1,
        "{tasks}"
    );
    let timeline = ok(&f.anna, &["customer", "timeline", K]).await;
    assert_eq!(
        timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "invoice")
            .count(),
        11
    );

    // Incremental: nothing new, nothing twice.
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        (
            r.json["files"][0]["sales"].as_u64(),
            r.json["files"][0]["purchases"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // Every customer with a token in one run (`--all`), a summary each.
    const N: &str = "Nowak Budownictwo";
    const NIP_N: &str = "7740001454";
    const TOKEN_N: &str = "20260101-EC-77A0B1C2D3-E4F5061728-9A|nip-7740001454|a1b2c3";
    ok(&f.owner, &["customer", "add", N, "--nip", NIP_N]).await;
    server.add_token(NIP_N, TOKEN_N);
    let mut c = ksef_command(
        &f.owner,
        &["ksef", "token", "set", N, "--env", "test", "--token-stdin"],
        &server,
    );
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{TOKEN_N}\n").as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let supplier_n = random_party(&mut rng);
    let n_party = Party {
        nip: Some(NIP_N.into()),
        eu: None,
        name: N.into(),
    };
    let n_invoice = server.publish(&Fa3::random(&mut rng, supplier_n, n_party, today));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = ks(&f.owner, &["ksef", "sync", "--all"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = r.json["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{}", r.json);
    let of = |name: &str| {
        files
            .iter()
            .find(|f| f["file_name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (of(N)["sales"].as_u64(), of(N)["purchases"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        (of(K)["sales"].as_u64(), of(K)["purchases"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(invoices_of(&f.owner, N).await.contains_key(&n_invoice));
    let status = ok(&f.owner, &["ksef", "status"]).await;
    assert_eq!(status["files"].as_array().unwrap().len(), 2, "{status}");

    // The high-water mark: what KSeF may still be storing is not read past. An invoice
    // that materialises late, behind one already stored, is not missed.
    let b = publish(
        Fa3::random(&mut rng, supplier.clone(), customer.clone(), today),
        &mut models,
    );
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.json["files"][0]["purchases"], 0, "{}", r.json);
    let late = Fa3::random(&mut rng, supplier.clone(), customer.clone(), today);
    let late_n = server.publish_at(&late, Utc::now() - chrono::Duration::milliseconds(900));
    models.insert(late_n.clone(), late);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Anna's device continues where the office's cursor stands.
    let r = ks(&f.anna, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["files"][0]["purchases"], 2, "{}", r.json);
    server.set_hwm_lag(Duration::ZERO);
    let list = invoices_of(&f.owner, K).await;
    assert!(list.contains_key(&b) && list.contains_key(&late_n));
    assert_eq!(list.len(), 13);

    // Rate limits: a 429 is waited out (Retry-After) and the sync completes.
    server.set_limit("invoiceDownload", 1, 1000, 1000);
    for _ in 0..3 {
        publish(
            Fa3::random(&mut rng, supplier.clone(), customer.clone(), today),
            &mut models,
        );
    }
    let before = server.stats();
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["files"][0]["purchases"], 3, "{}", r.json);
    assert_eq!(server.stats().downloads - before.downloads, 3);
    assert!(server.stats().too_many > before.too_many);
    assert!(
        r.json["files"][0]["waited"].as_u64().unwrap() >= 1,
        "{}",
        r.json
    );

    // Killed mid-sync, then again: every invoice once.
    for _ in 0..4 {
        let buyer = random_party(&mut rng);
        publish(
            Fa3::random(&mut rng, customer.clone(), buyer, today),
            &mut models,
        );
    }
    let mut child = ksef_command(&f.owner, &["ksef", "sync", K], &server)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    server.set_limit("invoiceDownload", 80, 160, 640);
    ok(&f.anna, &["sync"]).await;
    let list = invoices_of(&f.anna, K).await;
    assert_eq!(
        list.len(),
        models.len() + 1,
        "every invoice once (the malformed one has no model)"
    );
    let records = ok(&f.anna, &["customer", "timeline", K]).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "invoice")
        .count();
    assert_eq!(records, list.len(), "no invoice record twice");

    // Expired tokens: refreshed, or a new login when the refresh token is gone too.
    let before = server.stats();
    server.expire_access_tokens();
    publish(
        Fa3::random(&mut rng, supplier.clone(), customer.clone(), today),
        &mut models,
    );
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(server.stats().refreshes, before.refreshes + 1);
    server.expire_access_tokens();
    server.expire_refresh_tokens();
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(server.stats().logins, before.logins + 1);
    // A revoked KSeF token: a clear error that says what to do.
    server.revoke_token(TOKEN);
    server.expire_access_tokens();
    server.expire_refresh_tokens();
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 10, "{}", r.stderr);
    assert!(
        r.stderr.contains("refused the login") && r.stderr.contains("ksef token set"),
        "{}",
        r.stderr
    );

    // A KSeF that lists dates a day ahead cannot push the cursor past now: an invoice
    // published after that sync is still fetched by the next.
    server.add_token(NIP, TOKEN);
    server.set_date_skew(Duration::from_secs(24 * 3600));
    publish(
        Fa3::random(&mut rng, supplier.clone(), customer.clone(), today),
        &mut models,
    );
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["files"][0]["purchases"], 1, "{}", r.json);
    let status = ok(&f.owner, &["ksef", "status"]).await;
    let cursor = status["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["file_name"] == K)
        .unwrap()["cursor_purchases"]
        .as_str()
        .unwrap()
        .to_owned();
    let cursor = chrono::DateTime::parse_from_rfc3339(&cursor).unwrap();
    assert!(cursor <= Utc::now(), "{cursor}");
    server.set_date_skew(Duration::ZERO);
    let after = publish(
        Fa3::random(&mut rng, supplier.clone(), customer.clone(), today),
        &mut models,
    );
    let r = ks(&f.owner, &["ksef", "sync", K]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(invoices_of(&f.owner, K).await.contains_key(&after));

    // The relay never saw the token, a party, a number or an amount.
    let mut needles: Vec<String> = vec![
        TOKEN.into(),
        TOKEN_N.into(),
        n_invoice.clone(),
        "Faktura".into(),
        "P_15".into(),
        "FA (3)".into(),
    ];
    for (n, fa) in &models {
        needles.push(n.clone());
        needles.push(fa.number.clone());
        needles.push(fa.seller.name.clone());
        needles.push(money(fa.gross()));
    }
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    assert_relay_never_saw(&relay.dir, &needles);
}

/// A firm on the embedded SQLite moves to PostgreSQL (what `ledgerline-relay migrate`
/// runs) and carries on where it stopped: every message and the document are there, the
/// devices accept the moved audit log (each sync checks that it extends the checkpoint
/// they pinned), and new messages flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firm_moves_from_sqlite_to_postgresql_and_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut relay = Relay::start(&data, "127.0.0.1:0".parse().unwrap()).await;
    let f = found(dir.path(), &relay.url()).await;
    ok(&f.owner, &["file", "create", FILE]).await;
    ok(&f.owner, &["file", "grant", FILE, "Anna Kowalczyk"]).await;
    for n in 0..5 {
        ok(
            &f.owner,
            &["chat", "send", FILE, &format!("Przed przeniesieniem {n}")],
        )
        .await;
    }
    let src = dir.path().join("umowa.pdf");
    std::fs::write(&src, b"%PDF-1.4 umowa zlecenia ".repeat(5000)).unwrap();
    ok(&f.owner, &["doc", "upload", FILE, src.to_str().unwrap()]).await;
    ok(&f.anna, &["sync"]).await;
    relay.stop().await;

    let pg = tokio::task::spawn_blocking({
        let at = dir.path().join("pg");
        move || ledgerline_testkit::postgres::Postgres::start(&at)
    })
    .await
    .unwrap();
    let report =
        ledgerline_relay::migrate::migrate(&data.join("relay.sqlite3"), &pg.url(), None, None)
            .await
            .unwrap();
    assert!(report
        .tables
        .iter()
        .any(|t| t.table == "room_messages" && t.rows >= 5));
    assert_eq!(report.firms.len(), 1);
    let mut relay = Relay::start_config(Config {
        listen: relay.addr,
        data_dir: data.clone(),
        database_url: Some(pg.url().into()),
        ..Config::default()
    })
    .await;
    for p in [&f.owner, &f.anna, &f.bartek] {
        ok(p, &["sync"]).await;
    }
    let read = bodies(&ok(&f.anna, &["chat", "read", FILE]).await);
    for n in 0..5 {
        let text = format!("Przed przeniesieniem {n}");
        assert_eq!(read.iter().filter(|b| **b == text).count(), 1, "{read:?}");
    }
    let out = dir.path().join("anna-umowa.pdf");
    ok(
        &f.anna,
        &[
            "doc",
            "download",
            FILE,
            "umowa.pdf",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
    ok(&f.owner, &["chat", "send", FILE, "Po przeniesieniu"]).await;
    let read = bodies(&ok(&f.anna, &["chat", "read", FILE]).await);
    assert_eq!(read.last().map(String::as_str), Some("Po przeniesieniu"));
    relay.stop().await;
}
