//! Operations: graceful shutdown under load loses no acknowledged write; TLS; health and
//! metrics; the command line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use ledgerline_protocol::roster::Role;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut relay = Relay::start(
        &data,
        &["--rate-per-second", "100000", "--rate-burst", "100000"],
    );
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 21).await;
    let owner = a.owner_device.clone();
    let room = hex::encode(a.random16());
    owner
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": [a.owner.id] })),
        )
        .await;

    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let (owner, room, acked, http) = (owner.clone(), room.clone(), acked.clone(), http.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000u32 {
                let ct = format!("{w:04x}{i:08x}");
                let body = serde_json::to_vec(&json!({ "ciphertext": ct })).unwrap();
                let s = owner.sign("POST", &format!("/v1/rooms/{room}/messages"), &body);
                let mut rb = http.post(format!("{}{}", owner.base, s.path));
                for (k, v) in &s.headers {
                    rb = rb.header(*k, v);
                }
                match rb.body(body).send().await {
                    Ok(res) if res.status().as_u16() == 200 => {
                        let v: Value = res.json().await.unwrap();
                        acked.lock().unwrap().push((v["seq"].as_u64().unwrap(), ct));
                    }
                    // Refused or cut off during shutdown: not acknowledged, so not promised.
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let code = tokio::task::spawn_blocking(move || {
        let c = relay.stop();
        (c, relay)
    })
    .await
    .unwrap();
    let (code, old) = code;
    assert_eq!(
        code,
        Some(0),
        "graceful stop must exit 0; log:\n{}",
        old.log()
    );
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "too little load to mean anything: {}",
        acked.len()
    );

    let relay = Relay::start(&data, &[]);
    let mut owner = owner;
    owner.base = relay.base.clone();
    let stored = owner.all_messages(&http, &room).await;
    for (seq, ct) in &acked {
        assert_eq!(stored.get(seq), Some(ct), "acknowledged message {seq} lost");
    }
    println!(
        "acknowledged {} messages during the run; all present after restart",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&dir.path().join("data"), &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 22).await;
    let (_p, dev) = a.add_member(&http, Role::Member).await;
    let mut ws = websocket(&dev, relay.addr).await;
    // The relay says hello once the socket is registered: only then does it count.
    assert_eq!(next_event(&mut ws).await.unwrap()["type"], "hello");
    let v: Value = http
        .get(format!("{}/healthz", relay.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "ok");
    let text = http
        .get(format!("{}/metrics", relay.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "ledgerline_http_requests_total{route=\"/v1/roster\",method=\"POST\",status=\"200\"}",
        "ledgerline_http_request_duration_seconds_bucket{le=",
        "ledgerline_connected_devices 1",
        "ledgerline_stored_bytes",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    // The roster change above is an audit-log entry.
    let leaves: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ledgerline_audit_log_leaves "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no leaf count:\n{text}"));
    assert!(leaves >= 1, "{leaves}");
    // Route templates only: no concrete ids in labels.
    assert!(!text.contains(&a.id.to_hex()));
}

#[test]
fn tls_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let relay = Relay::start(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    assert!(relay.base.starts_with("https://"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("\"status\":\"ok\""));
        // Plain HTTP on the TLS port gets nowhere.
        let plain = reqwest::Client::new()
            .get(format!("http://{}/healthz", relay.addr))
            .send()
            .await;
        assert!(plain.is_err() || !plain.unwrap().status().is_success());
    });
}

#[test]
fn command_line_documents_every_option_and_refuses_bad_config() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-relay"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config",
        "--listen",
        "--data",
        "--tls-cert",
        "--tls-key",
        "--max-body-bytes",
        "--max-document-bytes",
        "--max-skew-ms",
        "--header-timeout-ms",
        "--body-timeout-ms",
        "--rate-per-second",
        "--rate-burst",
        "--open-registration",
        "--max-page",
        "--log",
        "--database-url",
        "--database-pool",
        "LEDGERLINE_LISTEN",
        "LEDGERLINE_DATABASE_URL",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    // The database URL's value is never shown, even when the environment sets it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-relay"))
        .args(["serve", "--help"])
        .env(
            "LEDGERLINE_DATABASE_URL",
            "postgres://relay:s3cret@localhost/db",
        )
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("relay.toml");
    std::fs::write(&bad, "listen = 5\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-relay"))
        .args(["serve", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid config file"));
    // Environment overrides the file.
    std::fs::write(&bad, "listen = \"127.0.0.1:1\"\n").unwrap();
    let relay_dir = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-relay"))
        .args([
            "serve",
            "--config",
            bad.to_str().unwrap(),
            "--data",
            relay_dir.to_str().unwrap(),
        ])
        .env("LEDGERLINE_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        line.contains("listening on http://127.0.0.1:") && !line.ends_with(":1\n"),
        "{line}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `ledgerline-relay backup` and `restore` as an operator runs them: JSON manifests, exit
/// codes scripts can trust (2 wrong use, 5 damaged backup), the data directory from the
/// configuration file, and a relay that starts on the restored directory with its firms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let relay = Relay::start(&data, &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 22).await;
    let before = a
        .owner_device
        .ok(&http, "GET", "/v1/roster?since=0", None)
        .await;
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-relay"))
            .args(args)
            .env_remove("LEDGERLINE_DATA")
            .env_remove("LEDGERLINE_CONFIG")
            .output()
            .unwrap()
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let out = dir.path().join("backup");
    let backup_args = [
        os("backup"),
        os("--data"),
        data.clone().into(),
        os("--out"),
        out.clone().into(),
        os("--json"),
    ];
    let args: Vec<&std::ffi::OsStr> = backup_args.iter().map(|s| s.as_os_str()).collect();
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["format"], 1);
    assert_eq!(m["database_sha256"].as_str().unwrap().len(), 64);
    // Again into the same place: wrong use, said in JSON on stderr.
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    let e: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(e["error"]["code"], "usage");
    // Never over the live data directory.
    let o = run(&[
        os("restore").as_os_str(),
        os("--from").as_os_str(),
        out.as_os_str(),
        os("--data").as_os_str(),
        data.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds data"));
    // A manifest that does not match the database: damaged, exit 5, nothing written.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(bad.join("blobs")).unwrap();
    for name in ["relay.sqlite3", "MANIFEST.json"] {
        std::fs::copy(out.join(name), bad.join(name)).unwrap();
    }
    let mut mf: Value =
        serde_json::from_slice(&std::fs::read(bad.join("MANIFEST.json")).unwrap()).unwrap();
    mf["database_sha256"] = json!("00".repeat(32));
    std::fs::write(bad.join("MANIFEST.json"), mf.to_string()).unwrap();
    let never = dir.path().join("never");
    let o = run(&[
        os("restore").as_os_str(),
        os("--from").as_os_str(),
        bad.as_os_str(),
        os("--data").as_os_str(),
        never.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(5));
    assert!(!never.exists());
    // The configuration names where the restored data goes.
    drop(relay);
    let restored = dir.path().join("restored");
    let toml = dir.path().join("relay.toml");
    std::fs::write(
        &toml,
        format!("data_dir = {:?}\n", restored.to_str().unwrap()),
    )
    .unwrap();
    let o = run(&[
        os("restore").as_os_str(),
        os("--config").as_os_str(),
        toml.as_os_str(),
        os("--from").as_os_str(),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let relay = Relay::start(&restored, &[]);
    let mut owner = a.owner_device.clone();
    owner.base = relay.base.clone();
    let after = owner.ok(&http, "GET", "/v1/roster?since=0", None).await;
    assert_eq!(after, before, "the firm's roster came back whole");
    // A room created on the restored relay (again, perhaps: one the backup lacked) numbers
    // its messages past the restore gap, never where a device's cursor may already stand.
    let room = hex::encode(a.random16());
    owner
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": [a.owner.id] })),
        )
        .await;
    let v = owner
        .ok(
            &http,
            "POST",
            &format!("/v1/rooms/{room}/messages"),
            Some(json!({ "ciphertext": "ff01" })),
        )
        .await;
    assert_eq!(
        v["seq"].as_u64(),
        Some(ledgerline_relay::backup::RESTORE_SEQ_GAP as u64 + 1),
        "{v}"
    );
    drop(relay);
}

/// `ledgerline-relay migrate` as an operator runs it: a relay's SQLite database moves into
/// an empty PostgreSQL database (a real server on loopback), with a JSON report; a second
/// run, a missing URL and `backup` on PostgreSQL are wrong use (exit 2); the relay binary
/// then serves the same firm from PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_the_command_line_then_serve_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let relay = Relay::start(&data, &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 23).await;
    let room = hex::encode(a.random16());
    a.owner_device
        .ok(
            &http,
            "POST",
            "/v1/rooms",
            Some(json!({ "room": room, "members": [a.owner.id] })),
        )
        .await;
    let before = a
        .owner_device
        .ok(&http, "GET", "/v1/roster?since=0", None)
        .await;
    drop(relay);
    let pg = tokio::task::spawn_blocking({
        let at = dir.path().join("pg");
        move || ledgerline_testkit::postgres::Postgres::start(&at)
    })
    .await
    .unwrap();
    let run = |args: &[&str], url: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-relay"));
        c.args(args)
            .env_remove("LEDGERLINE_DATA")
            .env_remove("LEDGERLINE_CONFIG")
            .env_remove("LEDGERLINE_DATABASE_URL");
        if let Some(url) = url {
            c.env("LEDGERLINE_DATABASE_URL", url);
        }
        c.output().unwrap()
    };
    let data_s = data.to_str().unwrap();
    let url = pg.url();
    let o = run(&["migrate", "--data", data_s], None);
    assert_eq!(o.status.code(), Some(2), "no URL is wrong use");
    let o = run(&["migrate", "--data", data_s, "--json"], Some(&url));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let firms = report["firms"].as_array().unwrap();
    assert_eq!(firms.len(), 1);
    assert_eq!(firms[0]["firm"], a.id.to_hex());
    assert!(firms[0]["size"].as_u64().unwrap() > 0);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&url));
    let o = run(&["migrate", "--data", data_s, "--to", &url, "--json"], None);
    assert_eq!(o.status.code(), Some(2), "never into a database with firms");
    let e: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(e["error"]["code"], "usage");
    let toml = dir.path().join("relay.toml");
    std::fs::write(
        &toml,
        format!("data_dir = {data_s:?}\ndatabase_url = {url:?}\n"),
    )
    .unwrap();
    let o = run(
        &[
            "backup",
            "--config",
            toml.to_str().unwrap(),
            "--out",
            "/nonexistent/b",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pg_dump"));
    // The relay binary on PostgreSQL serves the moved firm.
    let relay = Relay::start(&data, &["--database-url", &url]);
    let mut owner = a.owner_device.clone();
    owner.base = relay.base.clone();
    let after = owner.ok(&http, "GET", "/v1/roster?since=0", None).await;
    assert_eq!(after, before, "the firm's roster, served from PostgreSQL");
    let log = std::fs::read_to_string(&relay.stderr_log).unwrap();
    assert!(log.contains("postgresql") && !log.contains(&url), "{log}");
}

/// `migrate` with a bucket: the blobs go first (a missing one stops everything, exit 5,
/// and the database stays empty for the next try), then the database; the relay on
/// PostgreSQL and S3 serves the documents with the data directory's blobs gone, and
/// finishes the upload that was in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_the_blobs_into_a_bucket() {
    use ledgerline_protocol::document::parts_root;
    use ledgerline_protocol::ids::FileId;
    use ledgerline_testkit::s3::{ACCESS_KEY_ID, BUCKET, S3, SECRET_ACCESS_KEY};
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let relay = Relay::start(&data, &[]);
    let http = client();
    let mut a = Firm::create(&http, &relay.base, 24).await;
    let file = FileId(a.random16());
    a.grant(&http, file, a.owner.id).await;
    let owner = a.owner_device.clone();
    let share = [4u8; 32];
    let share_hash = hex::encode(sha2::Sha256::digest(share));
    let mut docs = Vec::new();
    for n in 0..2u32 {
        let doc = hex::encode(a.random16());
        let blob: Vec<u8> = (0..100_000 + n).map(|i| (i % 247) as u8).collect();
        let path = format!("/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}");
        let mut s = owner.sign("PUT", &path, &blob);
        s.headers
            .push(("ledgerline-release-share", hex::encode(share)));
        let (status, v) = owner.send(&http, &s).await;
        assert_eq!(status, 201, "{v}");
        docs.push((doc, blob));
    }
    // An upload in progress: one of two parts recorded.
    let part_size = 65_536usize;
    let parted: Vec<u8> = (0..100_000u32).map(|i| (i % 239) as u8).collect();
    let upload = hex::encode(a.random16());
    let begin = serde_json::to_vec(&json!({
        "epoch": 0, "share_sha256": share_hash, "size": parted.len(), "part_size": part_size
    }))
    .unwrap();
    let mut s = owner.sign(
        "POST",
        &format!("/v1/files/{file}/uploads/{upload}"),
        &begin,
    );
    s.body = begin;
    s.headers
        .push(("ledgerline-release-share", hex::encode(share)));
    assert_eq!(owner.send(&http, &s).await.0, 200);
    let put_part = |owner: &Device, n: usize| {
        let part = parted.chunks(part_size).nth(n).unwrap().to_vec();
        let mut s = owner.sign(
            "PUT",
            &format!("/v1/files/{file}/uploads/{upload}/parts/{n}"),
            &part,
        );
        s.body = part;
        let (http, owner) = (http.clone(), owner.clone());
        async move { owner.send(&http, &s).await }
    };
    assert_eq!(put_part(&owner, 0).await.0, 200);
    drop(relay);

    let at = dir.path().join("pg");
    let (pg, s3) = tokio::join!(
        tokio::task::spawn_blocking(move || ledgerline_testkit::postgres::Postgres::start(&at)),
        tokio::task::spawn_blocking(S3::start)
    );
    let (pg, s3) = (pg.unwrap(), s3.unwrap());
    let (url, endpoint) = (pg.url(), s3.endpoint());
    let data_s = data.to_str().unwrap().to_owned();
    let migrate = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-relay"))
            .args([
                "migrate",
                "--data",
                &data_s,
                "--to",
                &url,
                "--s3-bucket",
                BUCKET,
                "--s3-endpoint",
                &endpoint,
                "--s3-access-key-id",
                ACCESS_KEY_ID,
                "--json",
            ])
            .env_remove("LEDGERLINE_DATABASE_URL")
            .env("LEDGERLINE_S3_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains(SECRET_ACCESS_KEY) && !all.contains(&url),
            "{all}"
        );
        out
    };
    // A blob missing from the data directory: nothing moves.
    let first_blob = data.join("blobs").join(a.id.to_hex()).join(&docs[0].0);
    let hidden = dir.path().join("hidden");
    std::fs::rename(&first_blob, &hidden).unwrap();
    let o = migrate();
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let e: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(e["error"]["code"], "mismatch");
    std::fs::rename(&hidden, &first_blob).unwrap();
    let o = migrate();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["blobs"]["documents"], 2);
    assert_eq!(report["blobs"]["upload_parts"], 1);
    assert_eq!(
        report["blobs"]["bytes"].as_u64(),
        Some(200_001 + part_size as u64)
    );

    // Served from PostgreSQL and the bucket, the data directory's blobs gone.
    std::fs::remove_dir_all(data.join("blobs")).unwrap();
    let relay = Relay::start(
        &data,
        &[
            "--database-url",
            &url,
            "--s3-bucket",
            BUCKET,
            "--s3-endpoint",
            &endpoint,
            "--s3-access-key-id",
            ACCESS_KEY_ID,
            "--s3-secret-access-key",
            SECRET_ACCESS_KEY,
        ],
    );
    let owner = Device {
        base: relay.base.clone(),
        ..owner
    };
    let get = |doc: String| {
        let s = owner.sign("GET", &format!("/v1/files/{file}/documents/{doc}"), b"");
        let mut rb = http.get(format!("{}{}", owner.base, s.path));
        for (k, v) in &s.headers {
            rb = rb.header(*k, v);
        }
        async move { rb.send().await.unwrap().bytes().await.unwrap().to_vec() }
    };
    for (doc, blob) in &docs {
        assert!(
            get(doc.clone()).await == *blob,
            "document {doc} from the bucket"
        );
    }
    assert_eq!(put_part(&owner, 1).await.0, 200, "the upload goes on");
    let hashes: Vec<[u8; 32]> = parted
        .chunks(part_size)
        .map(|p| sha2::Sha256::digest(p).into())
        .collect();
    owner
        .ok(
            &http,
            "POST",
            &format!("/v1/files/{file}/uploads/{upload}/complete"),
            Some(json!({ "root": hex::encode(parts_root(part_size as u64, &hashes)) })),
        )
        .await;
    assert!(
        get(upload).await == parted,
        "the finished upload from the bucket"
    );
}
