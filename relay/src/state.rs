//! Shared state of a running relay.

use crate::blobs::Blobs;
use crate::config::Config;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::store::Store;
use ledgerline_protocol::ids::FirmId;
use ledgerline_protocol::request::RequestVerifier;
use ledgerline_protocol::roster::{Roster, RosterEvent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// One firm's verified roster and the lock that serialises appends to it.
#[derive(Debug)]
pub struct FirmState {
    /// The folded roster, always equal to what the store holds.
    pub roster: RwLock<Roster>,
    /// Held while an append is verified and persisted.
    pub append: tokio::sync::Mutex<()>,
    /// Customer files erased for good (every request about them is `410 erased`).
    pub erased: RwLock<std::collections::HashSet<ledgerline_protocol::ids::FileId>>,
}

/// Everything the handlers share. Cheap to clone.
#[derive(Debug)]
pub struct AppState<S> {
    inner: Arc<Shared<S>>,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> std::ops::Deref for AppState<S> {
    type Target = Shared<S>;
    fn deref(&self) -> &Shared<S> {
        &self.inner
    }
}

/// One multipart upload in progress, shared by its requests.
pub type UploadLock = Arc<Upload>;

/// The relay's in-memory side of a multipart upload.
#[derive(Debug, Default)]
pub struct Upload {
    /// Held to read or change what is recorded (parts are recorded in order under it).
    pub slot: tokio::sync::Mutex<UploadSlot>,
    /// Part numbers being written now, so one part is never written twice at once.
    writing: Mutex<std::collections::BTreeSet<u64>>,
    /// Woken whenever a part is recorded, for the next one waiting for its turn.
    pub recorded: tokio::sync::Notify,
}

impl Upload {
    /// Claims part `n` for writing; `None` while another request writes it.
    pub fn claim(self: &Arc<Self>, n: u64) -> Option<PartClaim> {
        let fresh = self
            .writing
            .lock()
            .map(|mut w| w.insert(n))
            .unwrap_or(false);
        fresh.then(|| PartClaim {
            upload: self.clone(),
            n,
        })
    }
}

/// A part being written; released when dropped, whatever the outcome.
#[derive(Debug)]
pub struct PartClaim {
    upload: Arc<Upload>,
    n: u64,
}

impl Drop for PartClaim {
    fn drop(&mut self) {
        if let Ok(mut w) = self.upload.writing.lock() {
            w.remove(&self.n);
        }
    }
}

/// What the relay keeps in memory about a multipart upload between its requests.
#[derive(Debug, Default)]
pub struct UploadSlot {
    /// Write-back of the parts received so far, started in the background after a part so
    /// that the sync at completion finds little left to write (at most one at a time).
    pub writeback: Option<tokio::task::JoinHandle<()>>,
}

impl UploadSlot {
    /// Starts writing the file's dirty pages to disk unless a write-back still runs.
    pub fn start_writeback(&mut self, file: std::fs::File) {
        if self.writeback.as_ref().is_none_or(|h| h.is_finished()) {
            self.writeback = Some(tokio::task::spawn_blocking(move || {
                // Only an early start: completion syncs the file and reports failures.
                let _ = file.sync_data();
            }));
        }
    }

    /// Waits for a write-back in progress.
    pub async fn settle(&mut self) {
        if let Some(h) = self.writeback.take() {
            let _ = h.await;
        }
    }
}

/// The shared parts.
#[derive(Debug)]
pub struct Shared<S> {
    /// Settings.
    pub config: Config,
    /// Metadata and ciphertext storage.
    pub store: S,
    /// Document blobs.
    pub blobs: Blobs,
    /// Verified rosters by firm.
    pub firms: RwLock<HashMap<FirmId, Arc<FirmState>>>,
    /// Signed-request checks and the replay window.
    pub verifier: Mutex<RequestVerifier>,
    /// Live WebSockets.
    pub hub: Hub,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Per-device rate limits.
    pub limiter: RateLimiter,
    /// The secret every firm's log key derives from (`log-key.secret` in the data
    /// directory).
    pub log_secret: zeroize::Zeroizing<[u8; 32]>,
    /// One lock per multipart upload in progress: its parts append in order.
    pub upload_locks: Mutex<HashMap<(FirmId, ledgerline_protocol::ids::DocumentId), UploadLock>>,
}

/// Reads the log secret, creating it (random, owner-only) on the first start. It must be
/// backed up with the database: a new secret gives every firm a new log key, which clients
/// that pinned the old one refuse.
fn load_log_secret(path: &std::path::Path) -> Result<zeroize::Zeroizing<[u8; 32]>, StartError> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    match std::fs::File::open(path) {
        Ok(mut f) => {
            let mut rest = Vec::new();
            f.read_exact(secret.as_mut())
                .and_then(|()| f.read_to_end(&mut rest))
                .map_err(|e| StartError::LogSecret(format!("{}: {e}", path.display())))?;
            if !rest.is_empty() {
                return Err(StartError::LogSecret(format!(
                    "{}: must hold exactly 32 bytes",
                    path.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Written whole to a temporary file, synced, then renamed: a crash leaves either
            // no secret or a complete one.
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, secret.as_mut());
            let temp = path.with_extension("tmp");
            let _ = std::fs::remove_file(&temp);
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
                .and_then(|mut f| {
                    f.write_all(secret.as_ref())?;
                    f.sync_all()
                })
                .and_then(|()| std::fs::rename(&temp, path))
                .and_then(|()| match path.parent() {
                    Some(dir) => std::fs::File::open(dir)?.sync_all(),
                    None => Ok(()),
                });
            written.map_err(|e| StartError::LogSecret(format!("{}: {e}", path.display())))?;
        }
        Err(e) => return Err(StartError::LogSecret(format!("{}: {e}", path.display()))),
    }
    Ok(secret)
}

/// Milliseconds since the Unix epoch by the system clock. Handlers use
/// [`Shared::now_ms`], which adds the configured `clock_offset_ms`.
pub fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A stored roster does not verify: the database was altered or corrupted.
    #[error("stored roster of firm {firm} does not verify: {reason}")]
    CorruptRoster {
        /// Firm.
        firm: FirmId,
        /// Why.
        reason: String,
    },
    /// The blob directory or bucket is unusable.
    #[error("blobs: {0}")]
    Blobs(String),
    /// The log secret cannot be read or created.
    #[error("log secret {0}")]
    LogSecret(String),
}

impl<S> Shared<S> {
    /// The relay's clock: milliseconds since the Unix epoch plus `clock_offset_ms` (0 in
    /// production; tests of time-bound behaviour move it, one relay at a time).
    pub fn now_ms(&self) -> u64 {
        system_now_ms().saturating_add_signed(self.config.clock_offset_ms)
    }
}

impl<S: Store> AppState<S> {
    /// Loads and verifies every firm's roster and the persisted replay window.
    pub async fn load(config: Config, store: S) -> Result<Self, StartError> {
        if config.clock_offset_ms != 0 {
            tracing::warn!(
                offset_ms = config.clock_offset_ms,
                "clock_offset_ms is set: the relay's clock is moved (for tests only)"
            );
        }
        let blobs = Blobs::open(&config).await.map_err(StartError::Blobs)?;
        let mut firms = HashMap::new();
        for firm in store.firms().await? {
            let events = store.roster_events(firm, 0).await?;
            let parsed: Result<Vec<RosterEvent>, _> =
                events.iter().map(|e| RosterEvent::from_bytes(e)).collect();
            let roster = parsed
                .map_err(|e| e.to_string())
                .and_then(|evs| Roster::verify_chain(&evs).map_err(|e| e.to_string()))
                .map_err(|reason| StartError::CorruptRoster { firm, reason })?;
            let erased = store.erased_files(firm).await?.into_iter().collect();
            firms.insert(
                firm,
                Arc::new(FirmState {
                    roster: RwLock::new(roster),
                    append: tokio::sync::Mutex::new(()),
                    erased: RwLock::new(erased),
                }),
            );
        }
        let mut verifier = RequestVerifier::new(config.max_skew_ms);
        let now = system_now_ms().saturating_add_signed(config.clock_offset_ms);
        for (device, nonce, expires) in store.load_nonces(now).await? {
            verifier.restore(device, nonce, expires, now);
        }
        let limiter = RateLimiter::new(config.rate_per_second, config.rate_burst);
        let log_secret = load_log_secret(&config.log_secret_path())?;
        Ok(Self {
            inner: Arc::new(Shared {
                config,
                store,
                blobs,
                firms: RwLock::new(firms),
                verifier: Mutex::new(verifier),
                hub: Hub::default(),
                metrics: Metrics::default(),
                limiter,
                log_secret,
                upload_locks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A firm's state, if the firm exists.
    pub fn firm(&self, firm: FirmId) -> Option<Arc<FirmState>> {
        self.firms.read().ok().and_then(|m| m.get(&firm).cloned())
    }

    /// Before serving a request of `firm` on a store other instances share: re-reads the
    /// firm's roster unless this instance hears every change (a firm created elsewhere
    /// is read on first sight). Alone on its store, the relay's memory is the truth.
    pub async fn fresh_firm(&self, firm: FirmId) -> Result<(), ApiError> {
        if !self.store.shared() || (self.hub.in_sync() && self.firm(firm).is_some()) {
            return Ok(());
        }
        self.refresh_firm(firm)
            .await
            .map_err(|e| ApiError::internal("roster refresh", e))
    }

    /// Reads what another instance may have changed of `firm` (roster events past the
    /// ones held, erased files) from the store; a firm not held yet is loaded whole. Every
    /// event is verified as at startup.
    pub async fn refresh_firm(&self, firm: FirmId) -> Result<(), StartError> {
        let corrupt = |reason: String| StartError::CorruptRoster { firm, reason };
        let Some(fs) = self.firm(firm) else {
            let events = self.store.roster_events(firm, 0).await?;
            if events.is_empty() {
                return Ok(());
            }
            let parsed = events
                .iter()
                .map(|e| RosterEvent::from_bytes(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| corrupt(e.to_string()))?;
            let roster = Roster::verify_chain(&parsed).map_err(|e| corrupt(e.to_string()))?;
            let erased = self.store.erased_files(firm).await?.into_iter().collect();
            if let Ok(mut m) = self.firms.write() {
                m.entry(firm).or_insert_with(|| {
                    Arc::new(FirmState {
                        roster: RwLock::new(roster),
                        append: tokio::sync::Mutex::new(()),
                        erased: RwLock::new(erased),
                    })
                });
            }
            return Ok(());
        };
        // Under the append lock: no local append interleaves with the events read here.
        let _append = fs.append.lock().await;
        let mut roster = fs
            .roster
            .read()
            .map_err(|_| corrupt("roster lock poisoned".into()))?
            .clone();
        let events = self.store.roster_events(firm, roster.len()).await?;
        if !events.is_empty() {
            for bytes in &events {
                let event = RosterEvent::from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
                roster.apply(&event).map_err(|e| corrupt(e.to_string()))?;
            }
            if let Ok(mut held) = fs.roster.write() {
                *held = roster;
            }
        }
        let erased = self.store.erased_files(firm).await?.into_iter().collect();
        if let Ok(mut held) = fs.erased.write() {
            *held = erased;
        }
        Ok(())
    }

    /// [`AppState::refresh_firm`] for every firm in the store (a firm that fails is
    /// logged and keeps what was held).
    pub async fn refresh_all_firms(&self) {
        let firms = match self.store.firms().await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "listing firms to re-read failed");
                return;
            }
        };
        for firm in firms {
            if let Err(e) = self.refresh_firm(firm).await {
                tracing::error!(firm = %firm, error = %e, "re-reading a firm failed");
            }
        }
    }

    /// The lock of one multipart upload.
    pub fn upload_lock(
        &self,
        firm: FirmId,
        document: ledgerline_protocol::ids::DocumentId,
    ) -> UploadLock {
        self.upload_locks
            .lock()
            .map(|mut m| m.entry((firm, document)).or_default().clone())
            .unwrap_or_default()
    }

    /// Persists the replay window (at shutdown), so that a restart does not reopen it.
    pub async fn save_nonces(&self) -> Result<(), ApiError> {
        let entries = self
            .verifier
            .lock()
            .map(|v| v.window().entries())
            .unwrap_or_default();
        self.store
            .save_nonces(entries, self.now_ms())
            .await
            .map_err(|e| ApiError::internal("save nonces", e))
    }
}
