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
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"))
    }

    /// A WebDriver call; its error (`{"error", "message"}`) as the `Err`.
    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"]["error"].is_string() {
            return Err(v["value"].clone());
        }
        Ok(v["value"].clone())
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
                // The view may re-render between finding the element and reading it (a
                // push brought news): a stale element is looked up again.
                match self
                    .try_call("GET", &format!("/element/{id}/text"), None)
                    .await
                {
                    Ok(text) if ok(text.as_str().unwrap_or_default()) => return id,
                    Ok(_) => {}
                    Err(e) if e["error"] == "stale element reference" => {}
                    Err(e) => panic!("webdriver text of {css}: {e}"),
                }
            }
            if start.elapsed() > WAIT {
                let shot = self.shot("timeout").await;
                let error = self
                    .script(
                        "const e = document.querySelector('[data-test=error]'); return e ? e.textContent : null;",
                        json!([]),
                    )
                    .await;
                panic!(
                    "{css} never appeared as expected (screenshot {}; error banner: {error})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` exists and its `textContent` (rendered or not: a calendar cell
    /// clips long titles) satisfies `ok`.
    async fn wait_dom(&self, css: &str, ok: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            let text = self
                .script(
                    "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                    json!([css]),
                )
                .await;
            if text.as_str().is_some_and(&ok) {
                return;
            }
            if start.elapsed() > WAIT {
                let shot = self.shot("timeout").await;
                panic!(
                    "{css} never held what was expected: {text} (screenshot {})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.on_element(css, async |id| {
            // In the middle of the view first: a click at the very edge can miss.
            self.script(
                "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({ block: 'center' });",
                json!([css]),
            )
            .await;
            self.try_call("POST", &format!("/element/{id}/click"), None)
                .await
                .map(|_| ())
        })
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, async |id| {
            self.try_call("POST", &format!("/element/{id}/clear"), None)
                .await?;
            self.try_call(
                "POST",
                &format!("/element/{id}/value"),
                Some(json!({ "text": text })),
            )
            .await
            .map(|_| ())
        })
        .await;
    }

    /// Finds `css` and acts on it; an element the view replaced meanwhile (stale) is
    /// looked up again, a few times.
    async fn on_element(&self, css: &str, act: impl AsyncFn(&str) -> Result<(), Value>) {
        for _ in 0..5 {
            let id = self.wait(css, |_| true).await;
            match act(&id).await {
                Ok(()) => return,
                Err(e) if e["error"] == "stale element reference" => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("webdriver on {css}: {e}"),
            }
        }
        panic!("{css} kept being replaced while the test acted on it");
    }

    /// Runs `script` in the window (with `args`) and returns its value.
    async fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Sets a field's value as typing would (for dates and selects, which WebKitWebDriver
    /// cannot type into or pick from).
    async fn set(&self, css: &str, value: &str) {
        self.wait(css, |_| true).await;
        self.script(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1];
             e.dispatchEvent(new Event('input', { bubbles: true }));
             e.dispatchEvent(new Event('change', { bubbles: true }));",
            json!([css, value]),
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

/// Opens the app in a new WebDriver session (tauri-driver at `base`).
async fn session(base: &str, profile: &Path, relay_url: &str) -> Driver {
    let http = reqwest::Client::new();
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
    Driver {
        http: http.clone(),
        base: format!("{base}/session/{id}"),
    }
}

/// A relay on loopback and the app under WebDriver, each in its own temporary world.
struct App {
    dir: tempfile::TempDir,
    relay: Running,
    relay_url: String,
    profile: PathBuf,
    w: Driver,
    _driver: Kill,
    _xvfb: Option<Kill>,
}

impl App {
    async fn start() -> Self {
        Self::start_with(true, &[]).await
    }

    /// `passphrase_env`: the app finds its store passphrase in the environment (as a
    /// script would give it); otherwise the window asks (and there is no OS keyring).
    /// `env`: more of the app's environment (e.g. a KSeF test server's address).
    async fn start_with(passphrase_env: bool, env: &[(&str, &Path)]) -> Self {
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

        let (display, xvfb) = display();
        let port = free_port();
        let mut command = Command::new(tauri_driver());
        for (k, v) in env {
            command.env(k, v);
        }
        if passphrase_env {
            command.env("LEDGERLINE_PASSPHRASE", PASS);
        } else {
            // No keyring either: the window must ask for a passphrase.
            command
                .env_remove("LEDGERLINE_PASSPHRASE")
                .env_remove("DBUS_SESSION_BUS_ADDRESS");
        }
        let driver = Kill(
            command
                .args(["--port", &port.to_string()])
                .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
                // Its own WebKitWebDriver port: tests run side by side.
                .args(["--native-port", &free_port().to_string()])
                .env("DISPLAY", &display)
                // The window's own storage (its language) starts empty, as on a new machine;
                // downloads land in the test's folder.
                .env("XDG_DATA_HOME", dir.path().join("xdg-data"))
                .env("XDG_CONFIG_HOME", dir.path().join("xdg-config"))
                .env("XDG_CACHE_HOME", dir.path().join("xdg-cache"))
                .env("XDG_DOWNLOAD_DIR", dir.path().join("downloads"))
                .env("HOME", dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let base = format!("http://127.0.0.1:{port}");
        let w = session(&base, &profile, &relay_url).await;
        Self {
            dir,
            relay,
            relay_url,
            profile,
            w,
            _driver: driver,
            _xvfb: xvfb,
        }
    }

    /// Closes the window and opens the app again on the same profile.
    async fn relaunch(&mut self) {
        let _ = self.w.call("DELETE", "", None).await;
        let base = self.w.base.split("/session/").next().unwrap().to_owned();
        self.w = session(&base, &self.profile, &self.relay_url).await;
    }
    /// Founds the firm in the window, as its owner Ewa.
    async fn found(&self) {
        let w = &self.w;
        w.wait("[data-test=mode-create]", |t| t.contains("Załóż biuro"))
            .await;
        assert_eq!(w.value("[data-test=relay]").await, self.relay_url);
        w.type_into("[data-test=firm]", "Biuro Rachunkowe Nowak")
            .await;
        w.type_into("[data-test=me]", "Ewa Nowak").await;
        w.shot("1-onboarding").await;
        w.click("[data-test=onboarding-submit]").await;
        // The recovery key, once: 12 or 13 groups of four base58 characters.
        w.wait("[data-test=recovery-key]", |t| {
            (12..=13).contains(&t.split(' ').count())
                && t.chars().all(|c| c == ' ' || c.is_ascii_alphanumeric())
        })
        .await;
        w.shot("1b-recovery-key").await;
        w.click("[data-test=recovery-saved]").await;
        w.wait("[data-test=signed-in]", |t| {
            t.contains("Ewa Nowak") && t.contains("Biuro Rachunkowe Nowak")
        })
        .await;
        w.wait(".content", |t| t.contains("Wybierz klienta")).await;
    }

    /// Adds a customer in the window and opens it.
    async fn add_customer(&self, name: &str, nip: &str) {
        let w = &self.w;
        w.type_into("[data-test=customer-name]", name).await;
        w.type_into("[data-test=customer-nip]", nip).await;
        w.click("[data-test=customer-add]").await;
        w.wait("[data-test=customer-title]", |t| t == name).await;
        w.wait("[data-test=customer-list]", |t| t.contains(name))
            .await;
    }

    /// Closes the window and waits until its profile can be opened here.
    async fn close(&self) -> Profile {
        self.close_with(PASS).await
    }

    /// The same, for a profile whose passphrase is `pass`.
    async fn close_with(&self, pass: &str) -> Profile {
        close_window(&self.w, &self.profile, pass).await
    }
}

/// Ends the WebDriver session (the app exits and lets go of its store) and opens the
/// profile at `profile` with `pass`.
async fn close_window(w: &Driver, profile: &Path, pass: &str) -> Profile {
    let _ = w.call("DELETE", "", None).await;
    let start = Instant::now();
    loop {
        match Profile::open(profile, Unlock::Passphrase(pass.to_owned().into())) {
            Ok(p) => return p,
            Err(e) if start.elapsed() > WAIT => panic!("profile: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_founds_a_firm_and_works_with_a_customer_in_polish_and_english() {
    const CUSTOMER: &str = "Kowalski sp. z o.o.";
    const MESSAGE: &str = "Dzień dobry, proszę o fakturę za listopad";
    const TASK: &str = "JPK_V7M za listopad";
    const NEW_PASS: &str = "nowe-haslo-biura-2027";
    let app = App::start().await;
    let w = &app.w;
    app.found().await;

    // A customer, with a checked NIP: a typo in its check digit is refused in words that
    // say so, and no customer is created.
    w.type_into("[data-test=customer-name]", CUSTOMER).await;
    w.type_into("[data-test=customer-nip]", "5260250994").await;
    w.click("[data-test=customer-add]").await;
    w.wait("[data-test=error-text]", |t| {
        t.starts_with("To nie jest poprawny NIP")
    })
    .await;
    assert!(w.find("[data-test=customer-title]").await.is_none());
    w.script(
        "document.querySelector('[data-test=error] button').click();",
        json!([]),
    )
    .await;
    app.add_customer(CUSTOMER, "5260250995").await;
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

    // The settings: a new passphrase for the local store (the old one must be given)…
    w.click("[data-test=nav-settings]").await;
    w.type_into("[data-test=pass-old]", "nie to haslo").await;
    w.type_into("[data-test=pass-new]", NEW_PASS).await;
    w.type_into("[data-test=pass-new2]", NEW_PASS).await;
    w.click("[data-test=passphrase-save]").await;
    // The failure is said in the window's language; the English detail stays folded.
    w.wait("[data-test=error-text]", |t| t == "Błędne hasło.")
        .await;
    let folded = w
        .script(
            "const d = document.querySelector('[data-test=error-detail]'); return d && !d.open && d.textContent;",
            json!([]),
        )
        .await;
    assert!(
        folded
            .as_str()
            .is_some_and(|d| d.contains("wrong passphrase")),
        "the English detail is not kept folded: {folded}"
    );
    w.type_into("[data-test=pass-old]", PASS).await;
    w.type_into("[data-test=pass-new]", NEW_PASS).await;
    w.type_into("[data-test=pass-new2]", NEW_PASS).await;
    w.click("[data-test=passphrase-save]").await;
    w.wait("[data-test=passphrase-changed]", |t| !t.is_empty())
        .await;
    w.shot("6a-settings").await;

    // A reply template for the office (a typo in a placeholder is refused), put into the
    // chat filled for the customer, and sent.
    w.type_into("[data-test=reply-name]", "Błędny").await;
    w.type_into("[data-test=reply-body]", "Kwota {kwot}").await;
    w.click("[data-test=reply-save]").await;
    // General words ("not valid") leave the detail open: it names the typo.
    w.wait("[data-test=error]", |t| {
        t.contains("nieprawidłowe") && t.contains("{kwot}")
    })
    .await;
    w.type_into("[data-test=reply-name]", "Potwierdzenie VAT")
        .await;
    w.type_into(
        "[data-test=reply-body]",
        "Dzień dobry, {klient}: VAT {kwota} do {termin}.",
    )
    .await;
    w.click("[data-test=reply-save]").await;
    w.wait("[data-test=reply-templates]", |t| {
        t.contains("Potwierdzenie VAT") && t.contains("biura")
    })
    .await;
    w.shot("6b-reply-templates").await;
    w.click("[data-test=nav-customers]").await;
    // The refused template's failure stayed with the settings it happened in.
    w.wait_dom("body", |t| !t.contains("{kwot}")).await;
    w.click("[data-test=tab-chat]").await;
    w.set("[data-test=template-pick]", "Potwierdzenie VAT")
        .await;
    w.set("[data-test=template-deadline]", "2026-03-25").await;
    w.set("[data-test=template-amount]", "1234,5").await;
    w.click("[data-test=template-insert]").await;
    const FILLED: &str = "Dzień dobry, Kowalski sp. z o.o.: VAT 1 234,50 zł do 25.03.2026.";
    let start = Instant::now();
    while w
        .script(
            "return document.querySelector('[data-test=chat-input]').value",
            json!([]),
        )
        .await
        != json!(FILLED)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the template was not put into the composer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.shot("6c-template-in-chat").await;
    w.click("[data-test=chat-send]").await;
    w.wait("[data-test=messages]", |t| t.contains(FILLED)).await;
    w.click("[data-test=nav-settings]").await;
    // …and English on request.
    w.set("[data-test=language]", "en").await;
    w.wait("[data-test=nav-customers]", |t| t.contains("Customers"))
        .await;
    w.click("[data-test=nav-customers]").await;
    w.wait("[data-test=tab-timeline]", |t| t.contains("Timeline"))
        .await;
    w.wait("[data-test=sync]", |t| t.contains("Sync")).await;
    w.click("[data-test=sync]").await;
    w.wait_dom("[data-test=status]", |t| t.starts_with("Synced"))
        .await;
    w.shot("6-english").await;

    // The relay goes away while the window is open: the live badge says so by itself, and
    // why in the user's words (the English detail only after them), and keeps retrying.
    w.wait_dom("[data-test=live]", |t| t.contains("live")).await;
    app.relay.stop().await.unwrap();
    w.wait_dom("[data-test=live]", |t| t.contains("offline, retrying in"))
        .await;
    let why = w
        .script(
            "return document.querySelector('[data-test=live]').title;",
            json!([]),
        )
        .await;
    let why = why.as_str().unwrap_or_default();
    assert!(
        why.starts_with("The server closed the connection (for example while restarting)")
            || why.starts_with("The server cannot be reached."),
        "{why:?}"
    );
    assert!(!why.starts_with("the relay"), "{why:?}");
    w.shot("6-offline").await;

    // The app wrote a real encrypted store: it opens with the (new) key and holds the work;
    // the old passphrase opens nothing.
    let p = close_window(w, &app.profile, NEW_PASS).await;
    assert!(matches!(
        Profile::open(&app.profile, Unlock::Passphrase(PASS.to_owned().into())),
        Err(ledgerline_client_core::profile::ClientError::Store(_))
    ));
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
        let hits = contains_bytes(&app.dir.path().join("relay"), needle.as_bytes());
        assert!(hits.is_empty(), "{needle:?} in the relay's files: {hits:?}");
    }
    // Nor does the local store hold it in the clear.
    let hits = contains_bytes(&app.profile, MESSAGE.as_bytes());
    assert!(
        hits.is_empty(),
        "the local store is not encrypted: {hits:?}"
    );
}

/// Today in Warsaw plus `days`, `YYYY-MM-DD`.
fn warsaw_day(days: i64) -> String {
    use ledgerline_client_core::chrono::{Duration as Days, Utc};
    let now = Utc::now().with_timezone(&ledgerline_client_core::when::DEFAULT_ZONE);
    (now + Days::days(days)).format("%Y-%m-%d").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_invites_works_with_a_colleague_shares_a_document_plans_and_revokes() {
    const CUSTOMER: &str = "Piekarnia Zawadzki s.c.";
    const JAN: &str = "Jan Kowalczyk";
    const FROM_JAN: &str = "Wyciąg z banku za listopad już jest";
    const FROM_EWA: &str = "Dziękuję, księguję dziś";
    const TASK: &str = "Deklaracja PIT-4R dla piekarni";
    const DOC: &str = "wyciag-listopad.pdf";
    let app = App::start().await;
    let w = &app.w;
    app.found().await;
    app.add_customer(CUSTOMER, "5260250995").await;

    // The owner invites Jan; Jan joins (a second profile on this machine, driven through
    // client/core as the CLI drives it) and reads out his fingerprint.
    w.click("[data-test=nav-office]").await;
    w.type_into("[data-test=invite-name]", JAN).await;
    w.click("[data-test=invite]").await;
    let code_el = w.wait("[data-test=invite-code]", |t| !t.is_empty()).await;
    let code = w
        .call("GET", &format!("/element/{code_el}/text"), None)
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let jan_dir = app.dir.path().join("jan");
    let (mut jan, fingerprint) = Profile::join(
        &jan_dir,
        Unlock::Passphrase("haslo-jana".to_owned().into()),
        &app.relay_url,
        &code,
        JAN,
    )
    .await
    .unwrap();
    // The owner compares it and approves.
    w.type_into("[data-test=approve-name]", JAN).await;
    w.type_into("[data-test=approve-fingerprint]", &fingerprint)
        .await;
    w.click("[data-test=approve]").await;
    w.wait("[data-test=members]", |t| t.contains(JAN)).await;
    // …and gives him the customer.
    let jan_id = jan.member().to_string();
    w.set("[data-test=grant-member]", &jan_id).await;
    w.click("[data-test=grant]").await;
    w.wait("[data-test=file-access]", |t| t.contains(JAN)).await;
    w.shot("7-office").await;

    // A team: a second customer given to it reaches Jan through it, and no longer once
    // he is taken out (the team's key and the customer's are replaced).
    const TEAM: &str = "Płace";
    const SHOP: &str = "Zakład Szewski Róża";
    w.click("[data-test=nav-customers]").await;
    app.add_customer(SHOP, "1234563218").await;
    w.click("[data-test=nav-office]").await;
    w.type_into("[data-test=team-name]", TEAM).await;
    w.click("[data-test=team-create]").await;
    let row = format!("[data-team='{TEAM}']");
    w.set(&format!("{row} [data-test=team-member]"), &jan_id)
        .await;
    w.click(&format!("{row} [data-test=team-add]")).await;
    w.wait(&format!("{row} [data-test=team-members]"), |t| {
        t.contains(JAN)
    })
    .await;
    w.script(
        "const s = document.querySelector(arguments[0]);
         s.value = [...s.options].find((o) => o.textContent === arguments[1]).value;
         s.dispatchEvent(new Event('change', { bubbles: true }));",
        json!([format!("{row} [data-test=team-file]"), SHOP]),
    )
    .await;
    w.click(&format!("{row} [data-test=team-grant]")).await;
    w.wait(&format!("{row} [data-test=team-files]"), |t| {
        t.contains(SHOP)
    })
    .await;
    // The access table tells access through the team from a grant: the team is named,
    // Jan is listed without the × that ends a grant.
    w.wait_dom("[data-test=file-access]", |t| {
        t.contains(&format!("zespół {TEAM}"))
    })
    .await;
    let via = w
        .script(
            "const row = [...document.querySelectorAll('[data-test=file-access] tr')].find((r) => r.textContent.includes(arguments[0]));
             return [...row.querySelectorAll('[data-test=access-via]')].map((c) => c.textContent.trim());",
            json!([SHOP]),
        )
        .await;
    assert_eq!(
        via,
        json!([JAN]),
        "Jan reaches {SHOP} through the team only"
    );
    w.shot("7b-teams").await;
    jan.sync().await.unwrap();
    let shop = jan.resolve_file(SHOP).expect("Jan has the team's customer");
    // The team's name comes over Olm from the owner's device, which reaches Jan's once he
    // has published prekeys (his first sync, just now): the window sends it at the relay's
    // `device_ready` push, by itself.
    let start = Instant::now();
    while jan.teams().unwrap()[0].name.as_deref() != Some(TEAM) {
        assert!(
            start.elapsed() < WAIT,
            "the team's name never reached Jan, or did not match the roster"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        jan.sync().await.unwrap();
    }
    w.click(&format!("{row} [data-test=team-remove]")).await;
    w.wait(&format!("{row} [data-test=team-members]"), |t| {
        !t.contains(JAN)
    })
    .await;
    jan.sync().await.unwrap();
    assert!(
        !jan.files().unwrap().iter().any(|f| f.id == shop),
        "out of the team, the customer is gone from Jan's list"
    );
    assert!(
        jan.send(
            Conversation::File(shop),
            ledgerline_client_core::room::RoomEvent::Text {
                body: "nie powinno dojść".into(),
                reply_to: None,
            },
        )
        .await
        .is_err(),
        "and he can no longer write in it"
    );

    // Jan writes in the customer's chat; the owner reads it in the window and answers.
    jan.sync().await.unwrap();
    let file = jan.resolve_file(CUSTOMER).unwrap();
    jan.send(
        Conversation::File(file),
        ledgerline_client_core::room::RoomEvent::Text {
            body: FROM_JAN.into(),
            reply_to: None,
        },
    )
    .await
    .unwrap();
    w.click("[data-test=nav-customers]").await;
    w.click("[data-test=customer-list] button").await;
    w.click("[data-test=tab-chat]").await;
    w.wait("[data-test=messages]", |t| {
        t.contains(FROM_JAN) && t.contains(JAN)
    })
    .await;
    w.script(
        "document.querySelector('[data-test=messages] li [data-test=reply]').click();",
        json!([]),
    )
    .await;
    w.wait("[data-test=composer-mode]", |t| t.contains(FROM_JAN))
        .await;
    w.type_into("[data-test=chat-input]", FROM_EWA).await;
    w.click("[data-test=chat-send]").await;
    w.wait("[data-test=messages]", |t| t.contains(FROM_EWA))
        .await;
    w.shot("8-chat-two-people").await;
    jan.sync().await.unwrap();
    let chat = jan.conversation(Conversation::File(file)).unwrap();
    let answer = chat
        .iter()
        .find(|m| m.body.as_deref() == Some(FROM_EWA))
        .expect("Jan reads the owner's answer");
    assert_eq!(answer.reply_to, Some(chat[0].seq), "it answers his message");
    assert_eq!(answer.name.as_deref(), Some("Ewa Nowak"));
    // What Jan sends now shows in the open chat by itself: the relay pushes, the app syncs.
    w.wait_dom("[data-test=live]", |t| t.contains("na żywo"))
        .await;
    const LIVE: &str = "Jeszcze faktura korygująca, wysyłam zaraz";
    jan.send(
        Conversation::File(file),
        ledgerline_client_core::room::RoomEvent::Text {
            body: LIVE.into(),
            reply_to: None,
        },
    )
    .await
    .unwrap();
    w.wait("[data-test=messages]", |t| t.contains(LIVE)).await;
    // The owner corrects her answer, and takes back a slip.
    w.script(
        "[...document.querySelectorAll('[data-test=messages] li')].find((l) => l.textContent.includes(arguments[0])).querySelector('[data-test=edit]').click();",
        json!([FROM_EWA]),
    )
    .await;
    w.wait("[data-test=composer-mode]", |t| t.contains(FROM_EWA))
        .await;
    const EDITED: &str = "Dziękuję, zaksięgowane";
    w.type_into("[data-test=chat-input]", EDITED).await;
    w.click("[data-test=chat-send]").await;
    w.wait("[data-test=messages]", |t| {
        t.contains(EDITED) && !t.contains(FROM_EWA) && t.contains("(edytowana)")
    })
    .await;
    const SLIP: &str = "Pomyłka, nie ten klient";
    w.type_into("[data-test=chat-input]", SLIP).await;
    w.click("[data-test=chat-send]").await;
    w.wait("[data-test=messages]", |t| t.contains(SLIP)).await;
    w.script(
        "[...document.querySelectorAll('[data-test=messages] li')].find((l) => l.textContent.includes(arguments[0])).querySelector('[data-test=delete]').click();",
        json!([SLIP]),
    )
    .await;
    w.wait("[data-test=messages]", |t| {
        !t.contains(SLIP) && t.contains("(usunięta)")
    })
    .await;
    jan.sync().await.unwrap();
    let seen = jan.conversation(Conversation::File(file)).unwrap();
    assert!(seen
        .iter()
        .any(|m| m.body.as_deref() == Some(EDITED) && m.edited));
    assert!(seen.iter().any(|m| m.deleted && m.body.is_none()));
    // A file dropped on the chat is encrypted into the customer's documents and attached.
    let protocol = app.dir.path().join("protokol-zdawczy.txt");
    std::fs::write(
        &protocol,
        "Protokół zdawczo-odbiorczy dokumentów za listopad",
    )
    .unwrap();
    w.script(
        "window.__TAURI__.event.emit('tauri://drag-drop', { paths: [arguments[0]], position: { x: 200, y: 200 } });",
        json!([protocol.to_str().unwrap()]),
    )
    .await;
    w.wait("[data-test=messages] [data-test=attachment]", |t| {
        t.contains("protokol-zdawczy.txt")
    })
    .await;
    jan.sync().await.unwrap();
    let attached = jan
        .conversation(Conversation::File(file))
        .unwrap()
        .into_iter()
        .find_map(|m| m.attachment)
        .expect("Jan sees the attachment");
    let out = app.dir.path().join("jan-protokol.txt");
    jan.download_document(file, attached, &out, std::sync::Arc::new(|_, _, _| {}))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "Protokół zdawczo-odbiorczy dokumentów za listopad"
    );
    // A note in the customer's timeline.
    const NOTE: &str = "Klient woli kontakt po 15:00";
    w.click("[data-test=tab-timeline]").await;
    w.type_into("[data-test=note-input]", NOTE).await;
    w.click("[data-test=note-add]").await;
    w.wait("[data-test=timeline]", |t| {
        t.contains(NOTE) && t.to_lowercase().contains("notatka")
    })
    .await;
    w.click("[data-test=tab-chat]").await;

    // A document dropped on the window: encrypted and uploaded with a progress bar.
    let doc_path = app.dir.path().join(DOC);
    let content: Vec<u8> = (0..12u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&doc_path, &content).unwrap();
    w.click("[data-test=tab-documents]").await;
    w.wait("[data-test=dropzone]", |t| t.contains("Przeciągnij"))
        .await;
    w.set("[data-test=doc-year]", "2025").await;
    // What the bar is fed: every progress event the window receives.
    w.script(
        "window.__seen = []; window.__TAURI__.event.listen('doc-progress', (e) => window.__seen.push(e.payload));",
        json!([]),
    )
    .await;
    // The drop itself: the event Tauri sends the window when files are dropped on it
    // (WebDriver cannot drag from the desktop).
    w.script(
        "window.__TAURI__.event.emit('tauri://drag-drop', { paths: [arguments[0]], position: { x: 200, y: 200 } });",
        json!([doc_path.to_str().unwrap()]),
    )
    .await;
    w.wait("[data-test^=result-up-]", |t| t.contains("Wysłano"))
        .await;
    w.wait("[data-test=documents]", |t| {
        t.contains("Rozmiar") && t.contains(DOC) && t.contains("2025")
    })
    .await;
    let bar = w.wait("[data-test^=progress-up-]", |_| true).await;
    let percent = w
        .call(
            "GET",
            &format!("/element/{bar}/attribute/data-percent"),
            None,
        )
        .await;
    assert_eq!(percent, json!("100"));
    let seen = w.script("return window.__seen;", json!([])).await;
    let seen = seen.as_array().unwrap();
    let uploads: Vec<u64> = seen
        .iter()
        .filter(|p| p["phase"] == "upload")
        .map(|p| p["done"].as_u64().unwrap())
        .collect();
    assert!(uploads.len() >= 3, "a bar that moves: {seen:?}");
    assert!(uploads.windows(2).all(|w| w[0] <= w[1]), "{uploads:?}");
    assert!(
        seen.iter()
            .all(|p| p["total"].as_u64() == seen[0]["total"].as_u64()),
        "{seen:?}"
    );
    w.shot("9-documents").await;
    // Jan downloads the same bytes.
    jan.sync().await.unwrap();
    let doc = jan.resolve_document(file, DOC).unwrap();
    let out = app.dir.path().join("jan-copy.pdf");
    jan.download_document(file, doc, &out, std::sync::Arc::new(|_, _, _| {}))
        .await
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == content);
    // Jan scans a receipt; it shows in the open list by itself and previews in the window.
    let scan = app.dir.path().join("paragon.png");
    // A 2×1 PNG (red, blue).
    std::fs::write(
        &scan,
        base64::engine::general_purpose::STANDARD
            .decode("iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAADUlEQVR4nGP4zwAE/wEHAAH/4iOeWQAAAABJRU5ErkJggg==")
            .unwrap(),
    )
    .unwrap();
    jan.upload_document(file, &scan, None, std::sync::Arc::new(|_, _, _| {}))
        .await
        .unwrap();
    w.wait("[data-test=documents]", |t| t.contains("paragon.png"))
        .await;
    w.click("[data-test=preview]").await;
    w.wait("[data-test=preview-dialog]", |t| t.contains("paragon.png"))
        .await;
    let start = Instant::now();
    loop {
        let width = w
            .script(
                "const i = document.querySelector('[data-test=preview-image]'); return i && i.complete ? i.naturalWidth : 0;",
                json!([]),
            )
            .await;
        if width == json!(2) {
            break;
        }
        assert!(start.elapsed() < WAIT, "the preview never decoded: {width}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.shot("9b-preview").await;
    w.click("[data-test=preview-close]").await;

    // And the owner downloads it back into her Downloads, with a bar.
    w.script(
        "[...document.querySelectorAll('[data-test=documents] tr')].find((r) => r.textContent.includes(arguments[0])).querySelector('[data-test=download]').click();",
        json!([DOC]),
    )
    .await;
    w.wait("[data-test=transfers]", |t| {
        t.contains(DOC) && t.contains("Zapisano")
    })
    .await;
    // (HOME is the test's folder and has no Downloads folder configured: the copy lands
    // there, next to the original, under a new name.)
    let copy = app.dir.path().join("wyciag-listopad (2).pdf");
    assert!(std::fs::read(&copy).unwrap() == content, "the owner's copy");

    // A task with a deadline shows in the calendar and on the board.
    let due = warsaw_day(3);
    w.click("[data-test=tab-tasks]").await;
    w.type_into("[data-test=task-title]", TASK).await;
    w.set("[data-test=task-due]", &due).await;
    w.click("[data-test=task-add]").await;
    w.wait("[data-test=tasks]", |t| {
        t.contains(TASK) && t.contains(&due)
    })
    .await;
    w.click("[data-test=nav-calendar]").await;
    // The month of the deadline (three days on may be next month).
    if !due.starts_with(&warsaw_day(0)[..7]) {
        w.click("[data-test=calendar-next]").await;
    }
    w.wait_dom(&format!("[data-day=\"{due}\"]"), |t| t.contains(TASK))
        .await;
    w.shot("10-calendar-month").await;
    w.click("[data-test=calendar-week]").await;
    if due >= warsaw_day(0) {
        // The week view starts at this week; the deadline is in it or the next.
        let shown = w.find(&format!("[data-day=\"{due}\"]")).await.is_some();
        if !shown {
            w.click("[data-test=calendar-next]").await;
        }
    }
    w.wait_dom(&format!("[data-day=\"{due}\"]"), |t| t.contains(TASK))
        .await;
    w.shot("11-calendar-week").await;
    // Jan's monthly payroll task (recurring, rolling), assigned to the owner.
    const PAYROLL: &str = "Lista płac i ZUS DRA";
    jan.sync().await.unwrap();
    let owner_id = jan
        .members()
        .unwrap()
        .into_iter()
        .find(|m| m.name.as_deref() == Some("Ewa Nowak"))
        .unwrap()
        .id;
    jan.task_add(
        file,
        &ledgerline_client_core::profile::TaskSpec {
            title: PAYROLL.into(),
            assignee: Some(owner_id),
            due: None,
            rrule: Some("FREQ=MONTHLY;BYMONTHDAY=10".into()),
            working_days: true,
            rolling: true,
            checklist: Vec::new(),
            template: None,
        },
    )
    .await
    .unwrap();
    w.click("[data-test=nav-board]").await;
    w.wait("[data-test=column-open]", |t| {
        t.contains(TASK) && t.contains(CUSTOMER) && t.contains(PAYROLL)
    })
    .await;
    w.wait_dom("[data-test=column-open]", |t| {
        t.contains("cykliczne") && t.contains("przechodzące")
    })
    .await;
    w.shot("12-board").await;
    w.script(
        "[...document.querySelectorAll('[data-test=column-open] .task-card')].find((c) => c.textContent.includes(arguments[0])).querySelector('[data-test=task-done]').click();",
        json!([TASK]),
    )
    .await;
    w.wait("[data-test=column-done]", |t| t.contains(TASK))
        .await;
    w.wait("[data-test=column-open]", |t| !t.contains(TASK))
        .await;

    // Global search finds the chat, locally.
    w.type_into("[data-test=global-search]", "wyciąg").await;
    w.wait("[data-test=search-results]", |t| t.contains(CUSTOMER))
        .await;
    w.set("[data-test=global-search]", "").await;

    // A lead, then a customer.
    const LEAD: &str = "Kwiaciarnia Róża";
    w.click("[data-test=nav-leads]").await;
    w.type_into("[data-test=lead-name]", LEAD).await;
    w.click("[data-test=lead-add]").await;
    w.wait("[data-test=leads]", |t| t.contains(LEAD)).await;
    w.wait("[data-test=customer-list]", |t| {
        t.contains(&format!("{LEAD} potencjalny klient"))
    })
    .await;
    w.set("[data-test=lead-stage]", "offer").await;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stage = w
            .script(
                "return document.querySelector('[data-test=lead-stage]').value;",
                json!([]),
            )
            .await;
        if stage == json!("offer") && w.find("[data-test=error]").await.is_none() {
            break;
        }
        assert!(start.elapsed() < WAIT, "the stage did not stick: {stage}");
    }
    w.shot("13-leads").await;
    w.click("[data-test=lead-convert]").await;
    w.wait("[data-test=leads]", |t| !t.contains(LEAD)).await;
    w.wait("[data-test=customer-list]", |t| {
        t.contains(LEAD) && !t.contains("potencjalny")
    })
    .await;

    // An offer to a second lead: made, sent (its PDF lands in the lead's documents),
    // accepted (the lead becomes a customer).
    const LEAD2: &str = "Piekarnia Żytnia";
    w.type_into("[data-test=lead-name]", LEAD2).await;
    w.click("[data-test=lead-add]").await;
    w.wait("[data-test=customer-list]", |t| t.contains(LEAD2))
        .await;
    w.script(
        "[...document.querySelectorAll('[data-test=customer-list] button')].find((b) => b.textContent.includes(arguments[0])).click();",
        json!([LEAD2]),
    )
    .await;
    w.wait("[data-test=customer-title]", |t| t == LEAD2).await;
    w.click("[data-test=tab-offers]").await;
    w.type_into("[data-test=offer-service]", "Pełna księgowość")
        .await;
    w.type_into("[data-test=offer-net]", "1 000,00").await;
    w.click("[data-test=offer-add]").await;
    // 1 000,00 net at 23 %: 230,00 VAT, 1 230,00 gross, computed by client/core
    // (WebDriver reads the no-break spaces as spaces).
    w.wait("[data-test=offer]", |t| {
        t.contains("1 230,00 zł") && t.contains("szkic")
    })
    .await;
    w.click("[data-test=offer-send]").await;
    w.wait("[data-test=offer-pdf]", |_| true).await;
    w.wait("[data-test=offer]", |t| t.contains("wysłana")).await;
    w.shot("14-offer").await;
    w.click("[data-test=tab-documents]").await;
    w.wait("[data-test=documents]", |t| {
        t.contains("Oferta ") && t.contains(".pdf")
    })
    .await;
    w.click("[data-test=tab-offers]").await;
    w.click("[data-test=offer-accept]").await;
    w.wait("[data-test=offer]", |t| t.contains("przyjęta"))
        .await;
    w.wait("[data-test=customer-list]", |t| {
        t.contains(LEAD2) && !t.contains("potencjalny")
    })
    .await;

    // Absence cover: Ewa covers for Jan this week.
    w.click("[data-test=nav-office]").await;
    w.wait("[data-test=members]", |t| t.contains(JAN)).await;
    w.set("[data-test=cover-absent]", &jan_id).await;
    let ewa_id = w
        .script(
            "return [...document.querySelectorAll('[data-test=cover-colleague] option')].find((o) => o.textContent.includes('Ewa')).value;",
            json!([]),
        )
        .await;
    w.set("[data-test=cover-colleague]", ewa_id.as_str().unwrap())
        .await;
    w.set("[data-test=cover-until]", &warsaw_day(6)).await;
    w.click("[data-test=cover-grant]").await;
    w.wait("[data-test=covers]", |t| {
        t.contains("Nieobecny: Jan Kowalczyk; zastępuje: Ewa Nowak") && t.contains("trwa")
    })
    .await;
    w.click("[data-test=cover-end]").await;
    w.wait("[data-test=covers]", |t| t.contains("zakończone"))
        .await;

    // Jan's second laptop is stolen: the owner revokes that device only.
    let code = jan.link_device().await.unwrap();
    let (mut laptop, device_fp) = Profile::join_device(
        &app.dir.path().join("jan-laptop"),
        Unlock::Passphrase("haslo-laptopa".to_owned().into()),
        &app.relay_url,
        &code,
        JAN,
    )
    .await
    .unwrap();
    let laptop_id = jan.approve_device(&device_fp).await.unwrap();
    laptop.sync().await.unwrap();
    w.click("[data-test=nav-customers]").await;
    w.click("[data-test=nav-office]").await;
    let short = laptop_id.to_string()[..8].to_owned();
    w.wait("[data-test=members]", |t| t.contains(&short)).await;
    w.script(
        "[...document.querySelectorAll('[data-test=members] .chip')].find((c) => c.textContent.includes(arguments[0])).querySelector('[data-test=revoke-device]').click();",
        json!([short]),
    )
    .await;
    w.wait("[data-test=revoke-device-dialog]", |t| t.contains(&short))
        .await;
    w.click("[data-test=revoke-device-confirm]").await;
    w.wait("[data-test=revoke-device-done]", |t| t.contains("Gotowe"))
        .await;
    w.shot("13b-revoke-device").await;
    w.click("[data-test=revoke-device-close]").await;
    assert!(
        laptop.sync().await.is_err(),
        "the stolen laptop still syncs"
    );
    jan.sync().await.unwrap();

    // Revoking Jan: the plan first, then the rotation's progress.
    w.script(
        "document.querySelector(`[data-member=\"${arguments[0]}\"] [data-test=revoke]`).click();",
        json!([JAN]),
    )
    .await;
    w.wait("[data-test=revoke-plan]", |t| {
        t.contains("1 urządzenie") && t.contains(CUSTOMER)
    })
    .await;
    w.shot("14-revoke-plan").await;
    w.click("[data-test=revoke-confirm]").await;
    w.wait("[data-test=revoke-done]", |t| t.contains("Gotowe"))
        .await;
    let bar = w.wait("[data-test=revoke-files]", |_| true).await;
    assert_eq!(
        w.call(
            "GET",
            &format!("/element/{bar}/attribute/data-percent"),
            None
        )
        .await,
        json!("100")
    );
    w.shot("15-revoke-done").await;
    w.click("[data-test=revoke-close]").await;
    w.wait("[data-test=members]", |t| t.contains("odwołany"))
        .await;
    // The relay refuses Jan's device from now on.
    let refused = jan.sync().await;
    assert!(refused.is_err(), "a revoked device still syncs");

    // The settings: a relay address that does not answer is refused, and the profile keeps
    // the one it had; the right one is kept.
    w.click("[data-test=nav-settings]").await;
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    w.type_into("[data-test=settings-relay]", &nowhere).await;
    w.click("[data-test=settings-relay-save]").await;
    w.wait("[data-test=error-text]", |t| {
        t.starts_with("Nie można połączyć się z serwerem")
    })
    .await;
    w.script(
        "document.querySelector('[data-test=error] button').click();",
        json!([]),
    )
    .await;
    w.type_into("[data-test=settings-relay]", &app.relay_url)
        .await;
    w.click("[data-test=settings-relay-save]").await;
    w.wait("[data-test=settings-saved]", |t| !t.is_empty())
        .await;

    // The owner exports the access log; the auditor view verifies it and filters it.
    let bundle = app.dir.path().join("audyt.jsonl");
    w.click("[data-test=nav-audit]").await;
    w.type_into("[data-test=audit-out]", bundle.to_str().unwrap())
        .await;
    w.click("[data-test=audit-export]").await;
    w.wait("[data-test=audit-exported]", |t| t.contains("Zapisano"))
        .await;
    w.type_into("[data-test=audit-bundle]", bundle.to_str().unwrap())
        .await;
    w.click("[data-test=audit-verify]").await;
    w.wait("[data-test=audit-verified]", |t| t.contains("prawdziwa"))
        .await;
    // Each completed rotation in the user's words: Jan's removal and the stolen laptop's
    // revocation (the bundle has no names: ids), not the verifier's English.
    let ended = w
        .script(
            "return [...document.querySelectorAll('[data-test=audit-ended]')].map((e) => e.textContent);",
            json!([]),
        )
        .await;
    let ended: Vec<String> = serde_json::from_value(ended).unwrap();
    assert!(
        ended.iter().any(|e| e.contains("usunięcie z kancelarii"))
            && ended
                .iter()
                .any(|e| e.contains("unieważnienie urządzenia") && e.contains(&short))
            && !ended.iter().any(|e| e.contains("revoked")),
        "{ended:?}"
    );
    let all = w.wait("[data-test=audit-count]", |t| !t.is_empty()).await;
    let all = w.call("GET", &format!("/element/{all}/text"), None).await;
    w.set("[data-test=filter-what]", "document").await;
    w.wait("[data-test=audit-count]", |t| t != all.as_str().unwrap())
        .await;
    w.wait("[data-test=audit-report]", |t| {
        t.contains("wysłał(a) dokument") && !t.contains("uploaded a document")
    })
    .await;
    w.shot("16-audit").await;
    // A tampered bundle is refused with the finding, and no report is shown.
    let text = std::fs::read_to_string(&bundle).unwrap();
    let tampered = app.dir.path().join("audyt-zmieniony.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let last = lines.len() - 1;
    lines.swap(last, last - 1);
    std::fs::write(&tampered, lines.join("\n")).unwrap();
    w.type_into("[data-test=audit-bundle]", tampered.to_str().unwrap())
        .await;
    w.click("[data-test=audit-verify]").await;
    w.wait("[data-test=error-text]", |t| t.contains("ziennik"))
        .await;
    assert!(w.find("[data-test=audit-verified]").await.is_none());

    let p = app.close().await;
    assert!(p
        .members()
        .unwrap()
        .iter()
        .any(|m| m.name.as_deref() == Some(JAN) && !m.active));
    assert_eq!(p.relay_url(), app.relay_url);
    for needle in [CUSTOMER, FROM_JAN, FROM_EWA, TASK, DOC] {
        let hits = contains_bytes(&app.dir.path().join("relay"), needle.as_bytes());
        assert!(hits.is_empty(), "{needle:?} in the relay's files: {hits:?}");
    }
    app.relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_colleague_joins_in_the_window_after_the_owner_compares_the_fingerprint() {
    const CUSTOMER: &str = "Hurtownia Bławat sp. j.";
    const HELLO: &str = "Witaj w zespole, to nasz klient od lat";
    const JANS: &str = "haslo-jana-do-laptopa";
    let mut app = App::start_with(false, &[]).await;
    let w = &app.w;
    // The owner works from her own profile (as the CLI does).
    let mut owner = Profile::create_firm(
        &app.dir.path().join("owner"),
        Unlock::Passphrase("haslo-wlascicielki".to_owned().into()),
        &app.relay_url,
        "Biuro Rachunkowe Nowak",
        "Ewa Nowak",
    )
    .await
    .unwrap();
    owner.sync().await.unwrap();
    let file = owner
        .customer_add(CUSTOMER, &Default::default())
        .await
        .unwrap();
    let code = owner
        .invite(
            "Jan Kowalczyk",
            ledgerline_client_core::protocol::roster::Role::Member,
        )
        .await
        .unwrap();

    // Jan joins in the window with the code and reads out what it shows.
    w.click("[data-test=mode-join]").await;
    w.type_into("[data-test=code]", &code).await;
    w.type_into("[data-test=me]", "Jan Kowalczyk").await;
    // No keyring here: the window asks for a passphrase, twice.
    w.type_into("[data-test=pass]", JANS).await;
    w.type_into("[data-test=pass2]", JANS).await;
    w.click("[data-test=onboarding-submit]").await;
    let fp = w.wait("[data-test=fingerprint]", |t| !t.is_empty()).await;
    let fingerprint = w
        .call("GET", &format!("/element/{fp}/text"), None)
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let rk = w
        .wait("[data-test=recovery-key]", |t| {
            (12..=13).contains(&t.split(' ').count())
        })
        .await;
    let recovery_key = w
        .call("GET", &format!("/element/{rk}/text"), None)
        .await
        .as_str()
        .unwrap()
        .to_owned();
    w.shot("17-join-fingerprint").await;
    // Until approved, the window waits (and says so).
    w.click("[data-test=after-join-sync]").await;
    w.wait("[data-test=waiting]", |t| {
        t.contains("Czekamy na zatwierdzenie")
    })
    .await;
    // A wrong fingerprint is refused; the right one admits him.
    assert!(owner
        .approve("Jan Kowalczyk", "0000 0000 0000 0000 0000")
        .await
        .is_err());
    let jan = owner.approve("Jan Kowalczyk", &fingerprint).await.unwrap();
    owner.grant(file, jan).await.unwrap();
    owner
        .send(
            Conversation::File(file),
            ledgerline_client_core::room::RoomEvent::Text {
                body: HELLO.into(),
                reply_to: None,
            },
        )
        .await
        .unwrap();

    // In the window, by itself: the office, the customer, the owner's message. (The
    // window's first keys reach the owner's profile as a push: it sends what waited.)
    w.wait("[data-test=customer-list]", |t| t.contains(CUSTOMER))
        .await;
    owner.sync().await.unwrap();
    w.wait("[data-test=signed-in]", |t| {
        t.contains("Jan Kowalczyk") && t.contains("Biuro Rachunkowe Nowak")
    })
    .await;
    w.wait("[data-test=customer-list]", |t| t.contains(CUSTOMER))
        .await;
    w.click("[data-test=customer-list] button").await;
    w.click("[data-test=tab-chat]").await;
    w.wait("[data-test=messages]", |t| {
        t.contains(HELLO) && t.contains("Ewa Nowak")
    })
    .await;
    // Not an admin: the office view shows no admin actions.
    w.click("[data-test=nav-office]").await;
    w.wait("[data-test=members]", |t| t.contains("Ewa Nowak"))
        .await;
    assert!(w.find("[data-test=invite]").await.is_none());
    assert!(w.find("[data-test=revoke]").await.is_none());
    w.shot("18-joined").await;

    // Next morning: the app starts locked and opens with Jan's passphrase only.
    app.relaunch().await;
    let w = &app.w;
    w.wait("[data-test=unlock]", |t| {
        t.contains("hasło") || t.contains("Hasło")
    })
    .await;
    w.type_into("[data-test=unlock-pass]", "zle-haslo-jana")
        .await;
    w.click("[data-test=unlock-submit]").await;
    w.wait("[data-test=error-text]", |t| t == "Błędne hasło.")
        .await;
    w.type_into("[data-test=unlock-pass]", JANS).await;
    w.click("[data-test=unlock-submit]").await;
    w.wait("[data-test=signed-in]", |t| t.contains("Jan Kowalczyk"))
        .await;
    w.wait("[data-test=customer-list]", |t| t.contains(CUSTOMER))
        .await;
    drop(app.close_with(JANS).await);

    // The laptop dies: nothing of Jan's profile is left. On the new one, the window
    // recovers him with the recovery key it showed when he joined.
    std::fs::remove_dir_all(&app.profile).unwrap();
    app.relaunch().await;
    let w = &app.w;
    w.wait("[data-test=mode-recover]", |t| t.contains("Odzyskaj"))
        .await;
    w.click("[data-test=mode-recover]").await;
    w.type_into("[data-test=recovery]", &recovery_key).await;
    w.type_into("[data-test=pass]", "nowe-haslo-jana").await;
    w.type_into("[data-test=pass2]", "nowe-haslo-jana").await;
    w.shot("19-recover").await;
    w.click("[data-test=onboarding-submit]").await;
    w.wait("[data-test=customer-list]", |t| t.contains(CUSTOMER))
        .await;
    w.click("[data-test=customer-list] button").await;
    w.click("[data-test=tab-chat]").await;
    w.wait("[data-test=messages]", |t| t.contains(HELLO)).await;
    // The owner's device hears of the new device: names for it, new keys for Jan's files.
    owner.sync().await.unwrap();
    w.wait("[data-test=signed-in]", |t| t.contains("Jan Kowalczyk"))
        .await;
    w.shot("20-recovered").await;
    let devices = owner.devices().unwrap();
    let jans: Vec<_> = devices.iter().filter(|d| d.member == jan).collect();
    assert_eq!(jans.len(), 2, "{devices:?}");
    assert_eq!(jans.iter().filter(|d| d.active).count(), 1, "{devices:?}");
    drop(app.close_with("nowe-haslo-jana").await);
    app.relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_joins_in_the_window_and_sees_only_their_conversation() {
    const CUSTOMER: &str = "Piekarnia Złoty Kłos s.c.";
    const HELLO: &str = "Dzień dobry, prosimy o wyciąg bankowy za maj";
    const INTERNAL: &str = "Wewnętrznie: klient zalega z ZUS";
    const REPLY: &str = "Przesyłam wyciąg, pozdrawiam";
    const MARTAS: &str = "haslo-marty-do-tabletu";
    let mut app = App::start_with(false, &[]).await;
    let w = &app.w;
    let mut owner = Profile::create_firm(
        &app.dir.path().join("owner"),
        Unlock::Passphrase("haslo-wlascicielki".to_owned().into()),
        &app.relay_url,
        "Biuro Rachunkowe Nowak",
        "Ewa Nowak",
    )
    .await
    .unwrap();
    owner.sync().await.unwrap();
    let file = owner
        .customer_add(CUSTOMER, &Default::default())
        .await
        .unwrap();
    let other = owner
        .customer_add("Inny Klient S.A.", &Default::default())
        .await
        .unwrap();
    owner
        .send(
            Conversation::File(other),
            ledgerline_client_core::room::RoomEvent::Text {
                body: "Sprawa innego klienta".into(),
                reply_to: None,
            },
        )
        .await
        .unwrap();
    let code = owner
        .invite_guest(file, "Marta Kłos", 24 * 3600 * 1000)
        .await
        .unwrap();

    // Marta joins in the window with the code, as any joiner does.
    w.click("[data-test=mode-join]").await;
    w.type_into("[data-test=code]", &code).await;
    w.type_into("[data-test=me]", "Marta Kłos").await;
    w.type_into("[data-test=pass]", MARTAS).await;
    w.type_into("[data-test=pass2]", MARTAS).await;
    w.click("[data-test=onboarding-submit]").await;
    let fp = w.wait("[data-test=fingerprint]", |t| !t.is_empty()).await;
    let fingerprint = w
        .call("GET", &format!("/element/{fp}/text"), None)
        .await
        .as_str()
        .unwrap()
        .to_owned();
    w.click("[data-test=after-join-sync]").await;
    w.wait("[data-test=waiting]", |t| {
        t.contains("Czekamy na zatwierdzenie")
    })
    .await;
    let marta = owner.approve("Marta Kłos", &fingerprint).await.unwrap();
    assert!(owner.is_guest_member(&marta));

    // By itself, the window becomes the guest's: one conversation, nothing of the office.
    w.wait("[data-test=guest-main]", |t| t.contains("Rozmowa z biurem"))
        .await;
    for css in [
        "[data-test=nav-customers]",
        "[data-test=customer-list]",
        "[data-test=nav-office]",
        "[data-test=conversation-internal]",
    ] {
        assert!(w.find(css).await.is_none(), "{css} is shown to a guest");
    }
    owner
        .send(
            owner.customer_conversation(file),
            ledgerline_client_core::room::RoomEvent::Text {
                body: HELLO.into(),
                reply_to: None,
            },
        )
        .await
        .unwrap();
    owner
        .send(
            Conversation::File(file),
            ledgerline_client_core::room::RoomEvent::Text {
                body: INTERNAL.into(),
                reply_to: None,
            },
        )
        .await
        .unwrap();
    // The window's first keys reach the owner's profile with a push; it sends what waited.
    owner.sync().await.unwrap();
    w.wait("[data-test=conversation-messages]", |t| {
        t.contains(HELLO) && t.contains("Ewa Nowak")
    })
    .await;

    // Marta answers and drops a bank statement on the conversation.
    w.type_into("[data-test=conversation-input]", REPLY).await;
    w.click("[data-test=conversation-send]").await;
    w.wait("[data-test=conversation-messages]", |t| t.contains(REPLY))
        .await;
    let statement = app.dir.path().join("wyciag-05-2026.csv");
    std::fs::write(&statement, "data;kwota\n2026-05-31;-1234,56\n").unwrap();
    w.script(
        "window.__TAURI__.event.emit('tauri://drag-drop', { paths: [arguments[0]], position: { x: 200, y: 200 } });",
        json!([statement.to_str().unwrap()]),
    )
    .await;
    w.wait(
        "[data-test=conversation-messages] [data-test=shared-document]",
        |t| t.contains("wyciag-05-2026.csv"),
    )
    .await;
    w.shot("19-guest-conversation").await;
    // Nothing internal ever reached the window.
    let shown = w
        .script("return document.body.textContent;", json!([]))
        .await;
    let shown = shown.as_str().unwrap();
    for secret in [INTERNAL, "Sprawa innego klienta", "Inny Klient", CUSTOMER] {
        assert!(!shown.contains(secret), "{secret} is shown to a guest");
    }

    // The office reads her answer and downloads the statement; shares a document back.
    owner.sync().await.unwrap();
    let seen = owner.customer_view(file).unwrap();
    assert!(seen
        .iter()
        .any(|m| !m.internal && m.message.body.as_deref() == Some(REPLY)));
    let out = app.dir.path().join("ewa-wyciag.csv");
    owner
        .download_shared(
            file,
            "wyciag-05-2026.csv",
            &out,
            std::sync::Arc::new(|_, _, _| {}),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "data;kwota\n2026-05-31;-1234,56\n"
    );
    let pit = app.dir.path().join("PIT-36 2025.txt");
    std::fs::write(&pit, "PIT-36 za 2025: do zapłaty 4 321 zł").unwrap();
    owner
        .share_document(file, &pit, std::sync::Arc::new(|_, _, _| {}))
        .await
        .unwrap();
    w.click("[data-test=sync]").await;
    w.wait("[data-test=conversation-messages]", |t| {
        t.contains("PIT-36 2025.txt")
    })
    .await;
    // The last shared document's download button: into the guest's Downloads.
    w.script(
        "const b = [...document.querySelectorAll('[data-test=shared-download]')]; b[b.length - 1].click();",
        json!([]),
    )
    .await;
    w.wait("[data-test=conversation-transfers]", |t| {
        t.contains("Zapisano")
    })
    .await;
    // (Downloads is HOME here, which holds the original: a new name.)
    let downloaded = app.dir.path().join("PIT-36 2025 (2).txt");
    assert_eq!(
        std::fs::read_to_string(&downloaded).unwrap(),
        "PIT-36 za 2025: do zapłaty 4 321 zł"
    );

    // Revoked, the window gets nothing more.
    owner.revoke_member(marta, &mut |_| {}).await.unwrap();
    w.click("[data-test=sync]").await;
    w.wait("[data-test=error-text]", |t| {
        t == "To urządzenie zostało odwołane: nie ma już dostępu do biura."
    })
    .await;
    app.relaunch().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_invites_a_guest_and_writes_to_them_or_internally_in_the_customer_tab() {
    const CUSTOMER: &str = "Kwiaciarnia Róża sp. z o.o.";
    const GUEST: &str = "Zofia Róża";
    const TO_GUEST: &str = "Prosimy o podpisanie pełnomocnictwa UPL-1";
    const INTERNAL: &str = "Notatka dla biura: pełnomocnictwo wygasa w czerwcu";
    const FROM_GUEST: &str = "Podpisane, w załączniku skan";
    let app = App::start().await;
    let w = &app.w;
    app.found().await;
    app.add_customer(CUSTOMER, "5260250995").await;

    // The owner invites the customer's person from the customer's "Klient" tab.
    w.click("[data-test=tab-conversation]").await;
    w.type_into("[data-test=guest-name]", GUEST).await;
    w.click("[data-test=guest-invite]").await;
    let code_el = w
        .wait("[data-test=guest-code]", |t| t.starts_with("LL-"))
        .await;
    let code = w
        .call("GET", &format!("/element/{code_el}/text"), None)
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let (mut zofia, fingerprint) = Profile::join(
        &app.dir.path().join("zofia"),
        Unlock::Passphrase("haslo-zofii".to_owned().into()),
        &app.relay_url,
        &code,
        GUEST,
    )
    .await
    .unwrap();
    w.click("[data-test=nav-office]").await;
    w.type_into("[data-test=approve-name]", GUEST).await;
    w.type_into("[data-test=approve-fingerprint]", &fingerprint)
        .await;
    w.click("[data-test=approve]").await;
    w.wait("[data-test=members]", |t| t.contains(GUEST)).await;
    zofia.sync().await.unwrap();
    let file = zofia.guest_file().expect("a guest of the customer's file");

    // To the guest, and internally: the tab shows both, the internal one marked.
    w.click("[data-test=nav-customers]").await;
    w.click("[data-test=customer-list] button").await;
    w.click("[data-test=tab-conversation]").await;
    w.type_into("[data-test=conversation-input]", TO_GUEST)
        .await;
    w.click("[data-test=conversation-send]").await;
    w.wait("[data-test=conversation-messages]", |t| {
        t.contains(TO_GUEST)
    })
    .await;
    w.click("[data-test=conversation-internal]").await;
    w.type_into("[data-test=conversation-input]", INTERNAL)
        .await;
    w.click("[data-test=conversation-send]").await;
    w.wait("[data-test=conversation-messages]", |t| {
        t.contains(INTERNAL) && t.to_lowercase().contains("wewnętrzna")
    })
    .await;
    w.shot("20-customer-tab").await;

    // The guest reads the first only, and answers; the window shows the answer.
    zofia.sync().await.unwrap();
    let seen: Vec<String> = zofia
        .customer_view(file)
        .unwrap()
        .into_iter()
        .filter_map(|m| m.message.body)
        .collect();
    assert_eq!(seen, vec![TO_GUEST.to_owned()]);
    zofia
        .send(
            zofia.customer_conversation(file),
            ledgerline_client_core::room::RoomEvent::Text {
                body: FROM_GUEST.into(),
                reply_to: None,
            },
        )
        .await
        .unwrap();
    w.click("[data-test=sync]").await;
    w.wait("[data-test=conversation-messages]", |t| {
        t.contains(FROM_GUEST) && t.contains(GUEST)
    })
    .await;
    // In the timeline too.
    w.click("[data-test=tab-timeline]").await;
    w.wait("[data-test=timeline]", |t| {
        t.contains(FROM_GUEST) && t.to_lowercase().contains("rozmowa z klientem")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_mailbox_is_connected_fetched_and_sorted_in_the_window() {
    use ledgerline_testkit::{word, Dovecot, MAIL_PASSWORD, MAIL_USER};
    const CUSTOMER: &str = "Kowalski sp. z o.o.";
    const INVOICE: &str = "Faktura FV/11/2026 — NIP 526-025-02-74";
    const QUESTION: &str = "Pytanie o prowadzenie księgowości";
    let app = App::start().await;
    let w = &app.w;
    app.found().await;
    app.add_customer(CUSTOMER, "5260250274").await;
    let mut imap = Dovecot::start(&app.dir.path().join("imap"));
    for (from, subject, body) in [
        (
            "Grażyna Kowalska <ksiegowosc@kowalski.pl>",
            INVOICE,
            "W załączeniu faktura za listopad.",
        ),
        (
            "Jan Nowy <jan.nowy@gmail.com>",
            QUESTION,
            "Dzień dobry, czy mają Państwo wolne terminy?",
        ),
    ] {
        imap.deliver(
            format!(
                "From: {from}\r\nTo: {MAIL_USER}\r\nSubject: {}\r\nDate: Mon, 16 Nov 2026 09:00:00 +0100\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{body}\r\n",
                word(subject)
            )
            .as_bytes(),
        );
    }

    // The mailbox is connected in the Mail section; the login is checked there and then.
    w.click("[data-test=nav-mail]").await;
    w.type_into("[data-test=mail-host]", "localhost").await;
    w.set("[data-test=mail-port]", &imap.port.to_string()).await;
    w.type_into("[data-test=mail-user]", MAIL_USER).await;
    w.type_into("[data-test=mail-password]", MAIL_PASSWORD)
        .await;
    w.type_into("[data-test=mail-ca-file]", imap.ca.to_str().unwrap())
        .await;
    w.click("[data-test=mail-connect]").await;
    w.wait("[data-test=mail-boxes]", |t| t.contains(MAIL_USER))
        .await;

    // Fetched: the invoice goes to the customer by the NIP in its subject, the question to
    // the inbox.
    w.click("[data-test=mail-fetch]").await;
    w.wait("[data-test=mail-summary]", |t| {
        t.contains("do teczek klientów: 1") && t.contains("do skrzynki odbiorczej: 1")
    })
    .await;
    w.wait("[data-test=mail-inbox]", |t| t.contains(QUESTION))
        .await;
    w.wait("[data-test=mail-summary]", |t| t.contains("NIP w temacie"))
        .await;
    w.shot("21-mail").await;

    // Assigned to the customer with a rule for the sender, in one step.
    let file = w
        .script(
            "return [...document.querySelectorAll('[data-test=mail-assign-file] option')]
               .find((o) => o.textContent === arguments[0]).value;",
            json!([CUSTOMER]),
        )
        .await;
    w.set("[data-test=mail-assign-file]", file.as_str().unwrap())
        .await;
    w.set("[data-test=mail-assign-rule]", "from").await;
    w.click("[data-test=mail-assign]").await;
    w.wait("[data-test=mail-inbox-empty]", |_| true).await;
    w.wait("[data-test=mail-rules]", |t| {
        t.contains("jan.nowy@gmail.com") && t.contains(CUSTOMER)
    })
    .await;

    // Both are in the customer's E-mails tab and its timeline.
    w.click("[data-test=nav-customers]").await;
    w.click("[data-test=customer-list] button").await;
    w.click("[data-test=tab-mail]").await;
    w.wait("[data-test=customer-mail]", |t| {
        t.contains(INVOICE) && t.contains(QUESTION) && t.to_lowercase().contains("faktura")
    })
    .await;
    w.click("[data-test=tab-timeline]").await;
    w.wait("[data-test=timeline]", |t| {
        t.contains(INVOICE) && t.to_lowercase().contains("e-mail")
    })
    .await;
    drop(imap);
    let _ = app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_ksef_invoices_are_fetched_and_listed_in_the_window() {
    use ledgerline_client_core::chrono;
    use ledgerline_testkit::fa3::{random_party, Fa3, Party};
    use ledgerline_testkit::ksef::KsefServer;
    use rand_chacha::rand_core::SeedableRng;
    const CUSTOMER: &str = "Kowalski sp. z o.o.";
    const NIP: &str = "5260250274";
    const TOKEN: &str = "20261201-EC-0A1B2C3D4E-5F6A7B8C9D-01|nip-5260250274|token";
    let dir = tempfile::tempdir().unwrap();
    let server = KsefServer::start(&dir.path().join("ksef"));
    server.add_token(NIP, TOKEN);
    let url = PathBuf::from(&server.url);
    let app = App::start_with(
        true,
        &[
            ("LEDGERLINE_KSEF_URL", url.as_path()),
            ("LEDGERLINE_KSEF_CA_FILE", server.ca.as_path()),
        ],
    )
    .await;
    let w = &app.w;
    app.found().await;
    app.add_customer(CUSTOMER, NIP).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let customer = Party {
        nip: Some(NIP.into()),
        eu: None,
        name: CUSTOMER.into(),
    };
    let today = chrono::Utc::now().date_naive();
    let buyer = random_party(&mut rng);
    let sale = Fa3::random(&mut rng, customer.clone(), buyer, today);
    let seller = random_party(&mut rng);
    let mut purchase = Fa3::random(&mut rng, seller, customer, today);
    purchase.due = Some(today + chrono::Duration::days(2));
    purchase.paid = false;
    server.publish(&sale);
    server.publish(&purchase);

    // The token is set in the customer's KSeF tab: checked with KSeF there and then.
    w.click("[data-test=tab-ksef]").await;
    w.wait("[data-test=ksef-none]", |_| true).await;
    w.type_into("[data-test=ksef-token]", TOKEN).await;
    w.set("[data-test=ksef-environment]", "test").await;
    w.click("[data-test=ksef-token-save]").await;
    w.wait("[data-test=ksef-settings]", |t| {
        t.contains(NIP) && t.contains("testowe")
    })
    .await;

    // Fetched: one sale, one purchase due in two days (a payment task), both listed.
    w.click("[data-test=ksef-sync]").await;
    w.wait("[data-test=ksef-summary]", |t| {
        t.contains("sprzedaży: 1") && t.contains("zakupu: 1") && t.contains("płatności: 1")
    })
    .await;
    // Amounts as Polish invoices write them, exactly: `107 816,30 zł`.
    let polish = |grosze: i64| {
        let whole = (grosze / 100).to_string();
        let mut grouped = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push('\u{a0}');
            }
            grouped.push(c);
        }
        format!("{grouped},{:02}\u{a0}zł", grosze % 100)
    };
    let gross = polish(sale.gross());
    w.wait("[data-test=ksef-invoices]", |t| {
        t.contains(&sale.number)
            && t.contains(&purchase.number)
            && t.contains(&purchase.seller.name)
            && t.replace(' ', "\u{a0}").contains(&gross)
    })
    .await;
    w.shot("22-ksef").await;
    w.click("[data-test=tab-timeline]").await;
    w.wait("[data-test=timeline]", |t| {
        t.to_lowercase().contains("faktura ksef")
    })
    .await;
    w.click("[data-test=tab-tasks]").await;
    w.wait("[data-test=tasks]", |t| t.contains("Zapłać fakturę"))
        .await;

    // Neither the token nor an invoice reached the relay.
    for needle in [TOKEN, sale.number.as_str(), purchase.seller.name.as_str()] {
        assert!(
            contains_bytes(&app.dir.path().join("relay"), needle.as_bytes()).is_empty(),
            "{needle}"
        );
    }
    let _ = app.close().await;
}
