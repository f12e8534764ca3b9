//! The real app, driven through WebDriver: `tauri-driver` with WebKitWebDriver under Xvfb
//! (`../shared/notes/tauri-on-this-machine.md`), against a real relay on loopback. The
//! window founds a firm, adds a customer, writes in its chat, adds a task, switches to
//! English; then the encrypted store the app wrote is opened and checked, and the relay's
//! files are searched for the plaintext. Screenshots of each view land in
//! `target/tmp/desktop-screens/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine;
use ledgerline_client_core::profile::{Conversation, Profile, Unlock};
use ledgerline_relay::config::Config;
use ledgerline_relay::server::Running;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASS: &str = "okno-testowe-haslo";
const WAIT: Duration = Duration::from_secs(30);

/// A child process killed with the test.
struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tauri_driver() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tauri-driver"));
    let cargo_bin =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tauri-driver"));
    on_path
        .chain(cargo_bin)
        .find(|p| p.exists())
        .expect("tauri-driver is not installed: `cargo install tauri-driver --version 2.1.0 --locked` (.ci/run does)")
}

/// An X display: the session's, or a private Xvfb.
fn display() -> (String, Option<Kill>) {
    if let Ok(d) = std::env::var("DISPLAY") {
        if !d.is_empty() {
            return (d, None);
        }
    }
    // Xvfb picks a free display itself and writes its number once it accepts clients.
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb is not installed (Debian package xvfb; .ci/run installs it)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let n: u32 = line.trim().parse().expect("Xvfb did not say its display");
    (format!(":{n}"), Some(Kill(child)))
}

struct Driver {
    http: reqwest::Client,
    base: String,
}

impl Driver {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"]["error"].is_string() {
            panic!("webdriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    async fn find(&self, css: &str) -> Option<String> {
        let url = format!("{}/element", self.base);
        let v: Value = self
            .http
            .post(url)
            .json(&json!({ "using": "css selector", "value": css }))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["value"]
            .as_object()?
            .iter()
            .find(|(k, _)| k.starts_with("element"))
            .and_then(|(_, id)| id.as_str().map(str::to_owned))
    }

    /// Waits until `css` exists and its text satisfies `ok`; returns the element.
    async fn wait(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(id) = self.find(css).await {
                let text = self.call("GET", &format!("/element/{id}/text"), None).await;
                if ok(text.as_str().unwrap_or_default()) {
                    return id;
                }
            }
            if start.elapsed() > WAIT {
                let shot = self.shot("timeout").await;
                panic!(
                    "{css} never appeared as expected (screenshot {})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let id = self.wait(css, |_| true).await;
        self.call("POST", &format!("/element/{id}/click"), None)
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.wait(css, |_| true).await;
        self.call("POST", &format!("/element/{id}/clear"), None)
            .await;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn value(&self, css: &str) -> String {
        let id = self.wait(css, |_| true).await;
        self.call("GET", &format!("/element/{id}/property/value"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn shot(&self, name: &str) -> PathBuf {
        // A screenshot right after a change can show the previous frame.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let png = self.call("GET", "/screenshot", None).await;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("desktop-screens");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn contains_bytes(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(contains_bytes(&path, needle));
        } else if std::fs::read(&path)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            hits.push(path);
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_founds_a_firm_and_works_with_a_customer_in_polish_and_english() {
    const CUSTOMER: &str = "Kowalski sp. z o.o.";
    const MESSAGE: &str = "Dzień dobry, proszę o fakturę za listopad";
    const TASK: &str = "JPK_V7M za listopad";
    let dir = tempfile::tempdir().unwrap();
    let relay = Running::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("relay"),
        ..Config::default()
    })
    .await
    .unwrap();
    let relay_url = format!("http://{}", relay.addr);
    let profile = dir.path().join("ewa");

    let (display, _xvfb) = display();
    let port = free_port();
    let _driver = Kill(
        Command::new(tauri_driver())
            .args(["--port", &port.to_string()])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
            .env("DISPLAY", &display)
            .env("LEDGERLINE_PASSPHRASE", PASS)
            // The window's own storage (its language) starts empty, as on a new machine.
            .env("XDG_DATA_HOME", dir.path().join("xdg-data"))
            .env("XDG_CONFIG_HOME", dir.path().join("xdg-config"))
            .env("XDG_CACHE_HOME", dir.path().join("xdg-cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while http.get(format!("{base}/status")).send().await.is_err() {
        assert!(start.elapsed() < WAIT, "tauri-driver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caps = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "wry",
        "tauri:options": {
            "application": env!("CARGO_BIN_EXE_ledgerline-desktop"),
            "args": ["--profile", profile.to_str().unwrap(), "--relay", relay_url],
        }
    }}});
    let session: Value = http
        .post(format!("{base}/session"))
        .json(&caps)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_owned();
    let w = Driver {
        http: http.clone(),
        base: format!("{base}/session/{id}"),
    };

    // Onboarding, in Polish by default, with the relay filled in.
    w.wait("[data-test=mode-create]", |t| t.contains("Załóż biuro"))
        .await;
    assert_eq!(w.value("[data-test=relay]").await, relay_url);
    w.type_into("[data-test=firm]", "Biuro Rachunkowe Nowak")
        .await;
    w.type_into("[data-test=me]", "Ewa Nowak").await;
    w.shot("1-onboarding").await;
    w.click("[data-test=onboarding-submit]").await;
    w.wait("[data-test=signed-in]", |t| {
        t.contains("Ewa Nowak") && t.contains("Biuro Rachunkowe Nowak")
    })
    .await;
    w.wait(".content", |t| t.contains("Wybierz klienta")).await;

    // A customer, with a checked NIP.
    w.type_into("[data-test=customer-name]", CUSTOMER).await;
    w.type_into("[data-test=customer-nip]", "5260250995").await;
    w.click("[data-test=customer-add]").await;
    w.wait("[data-test=customer-title]", |t| t == CUSTOMER)
        .await;
    w.wait("[data-test=customer-list]", |t| t.contains(CUSTOMER))
        .await;
    w.shot("2-customer").await;

    // Its chat.
    w.click("[data-test=tab-chat]").await;
    w.type_into("[data-test=chat-input]", MESSAGE).await;
    w.click("[data-test=chat-send]").await;
    w.wait("[data-test=messages]", |t| t.contains(MESSAGE))
        .await;
    w.shot("3-chat").await;

    // A task.
    w.click("[data-test=tab-tasks]").await;
    w.type_into("[data-test=task-title]", TASK).await;
    w.click("[data-test=task-add]").await;
    w.wait("[data-test=tasks]", |t| {
        t.contains(TASK) && t.contains("otwarte")
    })
    .await;
    w.shot("4-tasks").await;

    // Everything about the customer in one place.
    w.click("[data-test=tab-timeline]").await;
    w.wait("[data-test=timeline]", |t| {
        t.contains(MESSAGE) && t.contains(TASK) && t.contains("otwarte") && !t.contains("[open]")
    })
    .await;
    w.shot("5-timeline").await;

    // English on request.
    // (A script sets the select: WebKitWebDriver's click on an option fires no change.)
    w.call(
        "POST",
        "/execute/sync",
        Some(json!({
            "script": "const s = document.querySelector('[data-test=language]'); s.value = 'en'; s.dispatchEvent(new Event('change', { bubbles: true }));",
            "args": []
        })),
    )
    .await;
    w.wait("[data-test=tab-timeline]", |t| t.contains("Timeline"))
        .await;
    w.wait("[data-test=sync]", |t| t.contains("Sync")).await;
    w.click("[data-test=sync]").await;
    w.wait("[data-test=status]", |t| t.starts_with("Synced"))
        .await;
    w.shot("6-english").await;
    let _ = w.call("DELETE", "", None).await;

    // The app wrote a real encrypted store: it opens with the key and holds the work.
    let start = Instant::now();
    let p = loop {
        match Profile::open(&profile, Unlock::Passphrase(PASS.to_owned().into())) {
            Ok(p) => break p,
            Err(e) if start.elapsed() > WAIT => panic!("profile: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let customers = p.customers().unwrap();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0].name, CUSTOMER);
    assert_eq!(customers[0].nip.as_deref(), Some("5260250995"));
    let chat = p
        .conversation(Conversation::File(customers[0].file))
        .unwrap();
    assert_eq!(chat[0].body.as_deref(), Some(MESSAGE));
    // The relay kept ciphertext only.
    for needle in [CUSTOMER, MESSAGE, TASK] {
        let hits = contains_bytes(&dir.path().join("relay"), needle.as_bytes());
        assert!(hits.is_empty(), "{needle:?} in the relay's files: {hits:?}");
    }
    // Nor does the local store hold it in the clear.
    let hits = contains_bytes(&profile, MESSAGE.as_bytes());
    assert!(
        hits.is_empty(),
        "the local store is not encrypted: {hits:?}"
    );
    relay.stop().await.unwrap();
}
