//! The window's commands. Each opens nothing new: it locks the one open profile, calls
//! client/core and returns plain data (or the error's text, which never holds a key or
//! content the user did not type).

use ledgerline_client_core::chrono::NaiveDate;
use ledgerline_client_core::keystore;
use ledgerline_client_core::profile::{
    ClientError, Conversation, CustomerCard, CustomerView, ErrorKind, MessageView, Profile,
    SyncReport, TaskSpec, TaskView, TimelineItem, Unlock, STORE_FILE,
};
use ledgerline_client_core::protocol::ids::FileId;
use ledgerline_client_core::room::RoomEvent;
use ledgerline_client_core::transport::RelayError;
use serde::Serialize;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tauri::{AppHandle, State};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

/// One piece of work for the profile's thread.
pub(crate) type Job = Box<
    dyn for<'a> FnOnce(&'a mut Option<Profile>) -> Pin<Box<dyn Future<Output = ()> + 'a>> + Send,
>;

/// What the app holds: where the profile lives, and a thread that owns the profile. The
/// profile (an SQLite connection, Olm and Megolm state) lives on that one thread with its
/// own runtime; commands hand it work and await the answer, one at a time.
pub struct Desk {
    dir: PathBuf,
    relay: String,
    jobs: mpsc::UnboundedSender<Job>,
    /// The window's handle and the live channel's state, shared with the thread.
    shared: Arc<crate::live::Shared>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("dir", &self.dir)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl Desk {
    /// The app for the profile in `dir`, offering `relay` to found or join a firm.
    pub fn new(dir: PathBuf, relay: String) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(crate::live::Shared::default());
        let handle = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("profile".into())
            .spawn(move || runtime.block_on(crate::live::run(queue, handle)))?;
        Ok(Self {
            dir,
            relay,
            jobs,
            shared,
        })
    }

    /// Gives the thread the window's handle (once the app is set up): from then on it
    /// keeps the push channel open and reports what arrives.
    pub fn attach(&self, app: AppHandle) {
        let _ = self.shared.app.set(app);
        // Wake the thread so that it connects now rather than at the next command.
        let _ = self.jobs.send(Box::new(|_| Box::pin(async {})));
    }

    /// Runs `f` on the profile's thread and returns its answer.
    pub(crate) async fn on<T, F>(&self, f: F) -> Answer<T>
    where
        T: Send + 'static,
        F: AsyncFnOnce(&mut Option<Profile>) -> Answer<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |slot| run_job(f, tx, slot));
        let stopped = || Failure::app("stopped", "the profile's thread has stopped");
        self.jobs.send(job).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn run_job<'a, T, F>(
    f: F,
    tx: oneshot::Sender<Answer<T>>,
    slot: &'a mut Option<Profile>,
) -> Pin<Box<dyn Future<Output = ()> + 'a>>
where
    T: 'a,
    F: AsyncFnOnce(&mut Option<Profile>) -> Answer<T> + 'a,
{
    Box::pin(async move {
        let _ = tx.send(f(slot).await);
    })
}

pub(crate) type Answer<T> = Result<T, Failure>;

/// Why a command failed, as the window shows it. `code` (the kind, the CLI's `--json` word)
/// and `reason` (a finer stable word, e.g. the relay's own code) name the message in the
/// catalogs: the window says `error-CODE-REASON` when the catalog has it, else
/// `error-CODE`, in the user's language (Polish by default). `detail` is the English text,
/// shown folded under "details" for whoever helps the user. None of it holds a key or
/// content the user did not type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The kind.
    pub code: &'static str,
    /// The finer word, where there is one.
    pub reason: Option<String>,
    /// The English text.
    pub detail: String,
}

impl Failure {
    /// A request the window refuses before anything is done, for `reason`.
    pub(crate) fn invalid(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code: ErrorKind::Invalid.code(),
            reason: Some(reason.to_owned()),
            detail: detail.into(),
        }
    }

    /// The relay cannot be reached, for `reason` (the live channel's own words: it timed
    /// out, was closed by the relay, or dropped).
    pub(crate) fn unreachable(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code: ErrorKind::RelayUnreachable.code(),
            reason: Some(reason.to_owned()),
            detail: detail.into(),
        }
    }

    /// The app itself failed (its profile thread stopped, a dialog vanished).
    pub(crate) fn app(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code: APP,
            reason: Some(reason.to_owned()),
            detail: detail.into(),
        }
    }
}

/// The kind of a failure of the app itself, beside client/core's kinds.
pub(crate) const APP: &str = "app";

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self {
            code: e.kind().code(),
            reason: e.reason().map(str::to_owned),
            detail: e.to_string(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// A passphrase the environment gives (`LEDGERLINE_PASSPHRASE`), if any.
fn env_passphrase() -> Option<Zeroizing<String>> {
    std::env::var("LEDGERLINE_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Zeroizing::new)
}

/// How the store key is had: the OS keyring when the profile uses it (or, for a new
/// profile, when one is available); else the passphrase typed in the window, or
/// `LEDGERLINE_PASSPHRASE`.
fn unlock(dir: &std::path::Path, creating: bool, typed: Option<String>) -> Answer<Unlock> {
    if !creating && keystore::uses_keyring(dir) {
        return Ok(Unlock::Keyring);
    }
    if let Some(p) = typed.filter(|p| !p.is_empty()).map(Zeroizing::new) {
        if creating && p.chars().count() < 8 {
            return Err(Failure::invalid(
                "passphrase_short",
                "a passphrase needs at least 8 characters",
            ));
        }
        return Ok(Unlock::Passphrase(p));
    }
    if let Some(p) = env_passphrase() {
        return Ok(Unlock::Passphrase(p));
    }
    if creating && keystore::available() {
        return Ok(Unlock::NewKeyring);
    }
    Err(Failure::invalid(
        "passphrase_needed",
        "no OS keyring is available for the local store's key: choose a passphrase",
    ))
}

/// Who is signed in, as the window shows it.
#[derive(Debug, Serialize)]
pub struct Me {
    /// The firm's name (its id where this device does not know the name).
    pub firm: String,
    /// This member's name.
    pub me: String,
    /// This member's id.
    pub member: String,
    /// What an admin compares when approving.
    pub fingerprint: Option<String>,
    /// Whether the roster has this member yet.
    pub admitted: bool,
    /// Whether the local store's key is in the OS keyring (else a passphrase unlocks it).
    pub keyring: bool,
    /// Whether this member is an admin of the firm now.
    pub admin: bool,
    /// Whether this member is a guest (the window shows their one conversation only).
    pub guest: bool,
}

/// The app's state: the relay offered for onboarding and the open profile, if any.
#[derive(Debug, Serialize)]
pub struct AppView {
    /// The relay offered when founding or joining.
    pub relay: String,
    /// Who is signed in; `None` before onboarding or while locked.
    pub profile: Option<Me>,
    /// A profile exists but its passphrase is needed to open it.
    pub locked: bool,
    /// A new profile needs a passphrase (no OS keyring and none in the environment).
    pub needs_passphrase: bool,
}

fn me(p: &Profile) -> Me {
    Me {
        firm: p.firm_name().unwrap_or_else(|| p.firm().to_string()),
        me: p.my_name().to_owned(),
        member: p.member().to_string(),
        fingerprint: p.fingerprint(),
        admitted: p.admitted(),
        keyring: keystore::uses_keyring(p.dir()),
        admin: p
            .members()
            .is_ok_and(|ms| ms.iter().any(|m| m.me && m.active && m.role == "admin")),
        guest: p.is_guest(),
    }
}

/// The app's state; opens the profile on first call when one exists.
#[tauri::command]
pub async fn app_state(desk: State<'_, Desk>) -> Answer<AppView> {
    let (dir, relay) = (desk.dir.clone(), desk.relay.clone());
    desk.on(async move |slot: &mut Option<Profile>| {
        let exists = dir.join(STORE_FILE).exists();
        let has_key = keystore::uses_keyring(&dir) || env_passphrase().is_some();
        if slot.is_none() && exists && has_key {
            *slot = Some(Profile::open(&dir, unlock(&dir, false, None)?).map_err(Failure::from)?);
        }
        // Joined but not yet approved: has the admin approved since?
        if let Some(p) = slot.as_mut().filter(|p| !p.admitted()) {
            let _ = p.sync().await;
        }
        Ok(AppView {
            relay: slot.as_ref().map_or(relay, |p| p.relay_url().to_owned()),
            profile: slot.as_ref().map(me),
            locked: slot.is_none() && exists,
            needs_passphrase: !exists && env_passphrase().is_none() && !keystore::available(),
        })
    })
    .await
}

/// Opens the profile with the passphrase typed in the window.
#[tauri::command]
pub async fn unlock_profile(desk: State<'_, Desk>, passphrase: String) -> Answer<()> {
    let dir = desk.dir.clone();
    let passphrase = Zeroizing::new(passphrase);
    desk.on(async move |slot: &mut Option<Profile>| {
        if slot.is_none() {
            let key = Unlock::Passphrase(passphrase.clone());
            *slot = Some(Profile::open(&dir, key).map_err(Failure::from)?);
        }
        Ok(())
    })
    .await
}

/// Changes the local store's passphrase.
#[tauri::command]
pub async fn change_passphrase(desk: State<'_, Desk>, old: String, new: String) -> Answer<()> {
    let (old, new) = (Zeroizing::new(old), Zeroizing::new(new));
    with(&desk, async move |p: &mut Profile| {
        p.change_passphrase(&old, &new)
    })
    .await
}

/// Founds a firm: this device's member is its owner. Returns the member's recovery key,
/// to show once.
#[tauri::command]
pub async fn create_firm(
    desk: State<'_, Desk>,
    relay: String,
    firm: String,
    me: String,
    passphrase: Option<String>,
) -> Answer<String> {
    let (firm, me) = (firm.trim().to_owned(), me.trim().to_owned());
    if firm.is_empty() || me.is_empty() {
        return Err(Failure::invalid(
            "names_needed",
            "the office's name and yours are both needed",
        ));
    }
    let dir = desk.dir.clone();
    desk.on(async move |slot: &mut Option<Profile>| {
        let mut p = Profile::create_firm(&dir, unlock(&dir, true, passphrase)?, &relay, &firm, &me)
            .await
            .map_err(Failure::from)?;
        let recovery = p.take_recovery_key();
        p.sync().await.map_err(Failure::from)?;
        *slot = Some(p);
        Ok(recovery.map(|k| k.to_string()).unwrap_or_default())
    })
    .await
}

/// What joining shows: the fingerprint to read out, and the recovery key (once).
#[derive(serde::Serialize)]
pub struct Joined {
    fingerprint: String,
    recovery_key: String,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Joined {{ fingerprint: {}, recovery_key: [redacted] }}",
            self.fingerprint
        )
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.recovery_key);
    }
}

/// Joins with an invitation code; returns the fingerprint to read out to the admin.
#[tauri::command]
pub async fn join_firm(
    desk: State<'_, Desk>,
    relay: String,
    code: String,
    me: String,
    passphrase: Option<String>,
) -> Answer<Joined> {
    let dir = desk.dir.clone();
    desk.on(async move |slot: &mut Option<Profile>| {
        let (mut p, fingerprint) = Profile::join(
            &dir,
            unlock(&dir, true, passphrase)?,
            &relay,
            code.trim(),
            me.trim(),
        )
        .await
        .map_err(Failure::from)?;
        let recovery_key = p
            .take_recovery_key()
            .map(|k| k.to_string())
            .unwrap_or_default();
        *slot = Some(p);
        Ok(Joined {
            fingerprint,
            recovery_key,
        })
    })
    .await
}

/// Recovers the member whose recovery key this is on this (new) device: their other
/// devices are revoked and their whole history reads again.
#[tauri::command]
pub async fn recover_member(
    desk: State<'_, Desk>,
    relay: String,
    recovery_key: String,
    passphrase: Option<String>,
) -> Answer<ledgerline_client_core::profile::RecoveryReport> {
    let dir = desk.dir.clone();
    let key = Zeroizing::new(recovery_key);
    desk.on(async move |slot: &mut Option<Profile>| {
        let (p, report) = Profile::recover(
            &dir,
            unlock(&dir, true, passphrase)?,
            relay.trim(),
            &key,
            false,
        )
        .await
        .map_err(Failure::from)?;
        *slot = Some(p);
        Ok(report)
    })
    .await
}

/// Runs `f` with the open profile.
pub(crate) async fn with<T, F>(desk: &Desk, f: F) -> Answer<T>
where
    T: Send + 'static,
    F: AsyncFnOnce(&mut Profile) -> Result<T, ClientError> + Send + 'static,
{
    desk.on(async move |slot: &mut Option<Profile>| {
        let p = slot.as_mut().ok_or_else(|| {
            Failure::app(
                "no_profile",
                "no profile yet: found or join an office first",
            )
        })?;
        f(p).await.map_err(Failure::from)
    })
    .await
}

pub(crate) fn file_id(file: &str) -> Answer<FileId> {
    file.parse()
        .map_err(|_| Failure::invalid("file_id", "not a customer file id"))
}

/// The live channel's state as last told (`null` before the first attempt).
#[tauri::command]
pub fn live_state(desk: State<'_, Desk>) -> Option<crate::live::Live> {
    desk.shared.live.lock().ok().and_then(|l| l.clone())
}

/// Catches up with the relay.
#[tauri::command]
pub async fn sync(desk: State<'_, Desk>) -> Answer<SyncReport> {
    with(&desk, async |p: &mut Profile| p.sync().await).await
}

/// Customers and leads.
#[tauri::command]
pub async fn customers(desk: State<'_, Desk>) -> Answer<Vec<CustomerView>> {
    with(&desk, async |p: &mut Profile| p.customers()).await
}

/// Adds a customer (a new customer file with its card); returns its id.
#[tauri::command]
pub async fn customer_add(
    desk: State<'_, Desk>,
    name: String,
    nip: Option<String>,
) -> Answer<FileId> {
    let card = CustomerCard {
        nip: nip.filter(|n| !n.trim().is_empty()),
        ..CustomerCard::default()
    };
    with(&desk, async move |p: &mut Profile| {
        p.sync().await?;
        p.customer_add(name.trim(), &card).await
    })
    .await
}

/// Catches up before showing a customer's content; out of the relay's reach, shows what
/// this device has. Opening it from the local store is reported to the access log (at
/// once, or at the next sync).
pub(crate) async fn open_file(p: &mut Profile, file: FileId) -> Result<(), ClientError> {
    match p.sync().await {
        Ok(_) | Err(ClientError::Relay(RelayError::Unreachable(_))) => {}
        Err(e) => return Err(e),
    }
    p.record_opened(Conversation::File(file)).await
}

/// A customer's timeline (newest page).
#[tauri::command]
pub async fn timeline(desk: State<'_, Desk>, file: String) -> Answer<Vec<TimelineItem>> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        open_file(p, file).await?;
        p.timeline(file, None, 200)
    })
    .await
}

/// A customer's conversation.
#[tauri::command]
pub async fn chat_read(desk: State<'_, Desk>, file: String) -> Answer<Vec<MessageView>> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        open_file(p, file).await?;
        p.conversation(Conversation::File(file))
    })
    .await
}

/// Sends a message in a customer's conversation (a reply when `reply_to` names one);
/// returns its sequence number.
#[tauri::command]
pub async fn chat_send(
    desk: State<'_, Desk>,
    file: String,
    text: String,
    reply_to: Option<u64>,
) -> Answer<u64> {
    if text.trim().is_empty() {
        return Err(Failure::invalid(
            "empty_message",
            "an empty message is not sent",
        ));
    }
    chat_event(
        &desk,
        &file,
        RoomEvent::Text {
            body: text,
            reply_to,
        },
    )
    .await
}

/// Edits one of this member's messages.
#[tauri::command]
pub async fn chat_edit(
    desk: State<'_, Desk>,
    file: String,
    target: u64,
    text: String,
) -> Answer<u64> {
    if text.trim().is_empty() {
        return Err(Failure::invalid(
            "empty_edit",
            "an edit cannot empty a message: delete it instead",
        ));
    }
    chat_event(&desk, &file, RoomEvent::Edit { target, body: text }).await
}

/// Deletes one of this member's messages.
#[tauri::command]
pub async fn chat_delete(desk: State<'_, Desk>, file: String, target: u64) -> Answer<u64> {
    chat_event(&desk, &file, RoomEvent::Delete { target }).await
}

async fn chat_event(desk: &Desk, file: &str, event: RoomEvent) -> Answer<u64> {
    let file = file_id(file)?;
    with(desk, async move |p: &mut Profile| {
        p.send(Conversation::File(file), event).await
    })
    .await
}

/// Adds a note to a customer file (an encrypted record, in the timeline).
#[tauri::command]
pub async fn note_add(desk: State<'_, Desk>, file: String, text: String) -> Answer<String> {
    let file = file_id(&file)?;
    if text.trim().is_empty() {
        return Err(Failure::invalid("empty_note", "an empty note is not kept"));
    }
    with(&desk, async move |p: &mut Profile| {
        p.note_add(file, text.trim()).await.map(|id| id.to_string())
    })
    .await
}

/// A customer's tasks.
#[tauri::command]
pub async fn tasks(desk: State<'_, Desk>, file: String) -> Answer<Vec<TaskView>> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        p.tasks(Some(file), false)
    })
    .await
}

/// Adds a task to a customer file (due day as `YYYY-MM-DD`).
#[tauri::command]
pub async fn task_add(
    desk: State<'_, Desk>,
    file: String,
    title: String,
    due: Option<String>,
) -> Answer<String> {
    let file = file_id(&file)?;
    let due = due
        .filter(|d| !d.is_empty())
        .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| Failure::invalid("day", "a due day is YYYY-MM-DD"))?;
    let spec = TaskSpec {
        title,
        assignee: None,
        due,
        rrule: None,
        working_days: false,
        rolling: false,
        checklist: Vec::new(),
        template: None,
    };
    with(&desk, async move |p: &mut Profile| {
        p.task_add(file, &spec).await.map(|id| id.to_string())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The message ids a catalog defines.
    fn ids(catalog: &str) -> BTreeSet<String> {
        catalog
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(id, _)| id))
            .filter(|id| !id.starts_with([' ', '#', '*', '[', '.']))
            .map(str::to_owned)
            .collect()
    }

    /// Every `word` in `src` written as `{prefix}"word"` (whitespace allowed before the
    /// quote) and followed by `,` or `)`: the reasons this code names.
    fn words_after(src: &str, prefix: &str) -> Vec<String> {
        src.match_indices(prefix)
            .filter_map(|(at, _)| {
                let rest = src
                    .get(at + prefix.len()..)?
                    .trim_start()
                    .strip_prefix('"')?;
                let (word, after) = rest.split_once('"')?;
                let plain = word.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                (plain && after.starts_with([',', ')', '\n'])).then(|| word.to_owned())
            })
            .collect()
    }

    fn sources(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }

    fn id(code: &str, reason: Option<&str>) -> String {
        let word = |s: &str| s.replace('_', "-");
        match reason {
            Some(r) => format!("error-{}-{}", word(code), word(r)),
            None => format!("error-{}", word(code)),
        }
    }

    #[test]
    fn every_failure_the_window_names_has_words_in_both_languages() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut src = Vec::new();
        sources(&here.join("src"), &mut src);
        sources(&here.join("../core/src"), &mut src);
        let mut wanted: BTreeSet<String> = ErrorKind::ALL
            .iter()
            .map(|k| id(k.code(), None))
            .chain([id(APP, None), "error-audit-finding".into()])
            .collect();
        for s in &src {
            for r in words_after(s, "Failure::invalid(") {
                wanted.insert(id(ErrorKind::Invalid.code(), Some(&r)));
            }
            for r in words_after(s, "Failure::app(") {
                wanted.insert(id(APP, Some(&r)));
            }
            for r in words_after(s, "Failure::unreachable(") {
                wanted.insert(id(ErrorKind::RelayUnreachable.code(), Some(&r)));
            }
            // `ClientError::Declined { reason: "…", … }` and the core's `declined("…", …)`:
            // always of the kind Invalid.
            for r in words_after(s, "reason: ")
                .into_iter()
                .chain(words_after(s, "declined("))
            {
                wanted.insert(id(ErrorKind::Invalid.code(), Some(&r)));
            }
        }
        // The audit view's sentence for each access end (`audit-ended-{kind}`).
        for kind in ledgerline_audit::AccessEnd::ALL {
            let word = serde_json::to_value(kind).unwrap();
            wanted.insert(format!("audit-ended-{}", word.as_str().unwrap()));
        }
        // The scan found the window's own reasons and the core's declined ones.
        assert!(wanted.contains("error-invalid-empty-message"), "{wanted:?}");
        assert!(
            wanted.contains("error-invalid-message-too-long"),
            "{wanted:?}"
        );
        assert!(wanted.contains("error-app-stopped"), "{wanted:?}");
        assert!(
            wanted.contains("error-relay-unreachable-closed"),
            "{wanted:?}"
        );
        for lang in ["pl", "en"] {
            let catalog =
                std::fs::read_to_string(here.join(format!("../locales/{lang}.ftl"))).unwrap();
            let have = ids(&catalog);
            let missing: Vec<_> = wanted.iter().filter(|w| !have.contains(*w)).collect();
            assert!(missing.is_empty(), "{lang}.ftl lacks {missing:?}");
        }
    }

    #[test]
    fn a_refusal_carries_the_relays_word_and_the_english_text_only_as_detail() {
        let f = Failure::from(ClientError::Relay(RelayError::Refused {
            status: 401,
            code: "revoked_device".into(),
            message: "this device is revoked".into(),
        }));
        assert_eq!(
            (f.code, f.reason.as_deref()),
            ("relay_refused", Some("revoked_device"))
        );
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["code"], "relay_refused");
        assert_eq!(json["reason"], "revoked_device");
        assert!(json["detail"].as_str().unwrap().contains("revoked"));
        let f = Failure::invalid("empty_note", "an empty note is not kept");
        assert_eq!(
            (f.code, f.reason.as_deref()),
            ("invalid", Some("empty_note"))
        );
    }
}
