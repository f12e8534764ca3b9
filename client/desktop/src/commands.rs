//! The window's commands. Each opens nothing new: it locks the one open profile, calls
//! client/core and returns plain data (or the error's text, which never holds a key or
//! content the user did not type).

use ledgerline_client_core::chrono::NaiveDate;
use ledgerline_client_core::keystore;
use ledgerline_client_core::profile::{
    ClientError, Conversation, CustomerCard, CustomerView, MessageView, Profile, SyncReport,
    TaskSpec, TaskView, TimelineItem, Unlock, STORE_FILE,
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
        self.jobs
            .send(job)
            .map_err(|_| "the profile's thread has stopped".to_owned())?;
        rx.await
            .map_err(|_| "the profile's thread has stopped".to_owned())?
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

pub(crate) type Answer<T> = Result<T, String>;

pub(crate) fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
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
            return Err("a passphrase needs at least 8 characters".into());
        }
        return Ok(Unlock::Passphrase(p));
    }
    if let Some(p) = env_passphrase() {
        return Ok(Unlock::Passphrase(p));
    }
    if creating && keystore::available() {
        return Ok(Unlock::NewKeyring);
    }
    Err("no OS keyring is available for the local store's key: choose a passphrase".into())
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
            *slot = Some(Profile::open(&dir, unlock(&dir, false, None)?).map_err(text)?);
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
            *slot = Some(Profile::open(&dir, key).map_err(text)?);
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
        return Err("the office's name and yours are both needed".into());
    }
    let dir = desk.dir.clone();
    desk.on(async move |slot: &mut Option<Profile>| {
        let mut p = Profile::create_firm(&dir, unlock(&dir, true, passphrase)?, &relay, &firm, &me)
            .await
            .map_err(text)?;
        let recovery = p.take_recovery_key();
        p.sync().await.map_err(text)?;
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
        .map_err(text)?;
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
        .map_err(text)?;
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
        let p = slot
            .as_mut()
            .ok_or_else(|| "no profile yet: found or join an office first".to_owned())?;
        f(p).await.map_err(text)
    })
    .await
}

pub(crate) fn file_id(file: &str) -> Answer<FileId> {
    file.parse()
        .map_err(|_| "not a customer file id".to_owned())
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
        return Err("an empty message is not sent".into());
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
        return Err("an edit cannot empty a message: delete it instead".into());
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
        return Err("an empty note is not kept".into());
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
        .map_err(|_| "a due day is YYYY-MM-DD".to_owned())?;
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
