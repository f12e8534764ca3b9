//! The profile's thread: runs the window's commands one at a time and, between them, keeps
//! the relay's push channel open, so that what colleagues send shows without a click.
//!
//! A push is only a hint: on each one (after a short pause that lets a burst arrive) the
//! thread runs a whole sync — never cut off by a command, which waits its turn — and tells
//! the window with a `synced` event. Every (re)connection starts with a sync, so nothing
//! pushed while the channel was down is missed.

use crate::commands::{Failure, Job};
use futures_util::StreamExt;
use ledgerline_client_core::profile::{ClientError, Profile, SyncReport};
use ledgerline_client_core::transport::{PushFrame, PushSocket, RelayError};
use serde::Serialize;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tauri::{AppHandle, Emitter};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Pushes this close together are served by one sync.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// Pauses between reconnection attempts grow to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait for the channel to open (commands wait meanwhile).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the window is told about the live channel.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Live {
    /// Connected: changes arrive by themselves.
    Online,
    /// Not connected; the next attempt is in `retry_in_ms`.
    Offline {
        /// Why, as every failure is told to the window: words from the catalogs, the
        /// English text only as detail.
        why: Failure,
        /// Milliseconds to the next attempt.
        retry_in_ms: u64,
    },
    /// The relay refuses this device for good (revoked): no more attempts.
    Revoked,
}

/// What the window and the thread share.
#[derive(Default)]
pub struct Shared {
    /// The window's handle, once it exists.
    pub app: OnceLock<AppHandle>,
    /// The channel's state as last told (a view mounted later asks for it).
    pub live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn tell(&self, app: &AppHandle, state: Live) {
        if let Ok(mut l) = self.live.lock() {
            *l = Some(state.clone());
        }
        let _ = app.emit("live", state);
    }
}

struct Channel {
    shared: Arc<Shared>,
    socket: Option<PushSocket>,
    retry_at: Instant,
    backoff: Duration,
    revoked: bool,
}

impl Channel {
    fn down(&mut self, app: &AppHandle, why: Failure) {
        self.socket = None;
        self.retry_at = Instant::now() + self.backoff;
        self.shared.tell(
            app,
            Live::Offline {
                why,
                retry_in_ms: u64::try_from(self.backoff.as_millis()).unwrap_or(u64::MAX),
            },
        );
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn revoked(&mut self, app: &AppHandle) {
        self.socket = None;
        self.revoked = true;
        self.shared.tell(app, Live::Revoked);
    }
}

async fn next_frame(socket: &mut Option<PushSocket>) -> Option<Result<PushFrame, String>> {
    match socket {
        Some(ws) => ws.next().await.map(|f| f.map_err(|e| e.to_string())),
        None => std::future::pending().await,
    }
}

async fn sync_and_tell(p: &mut Profile, app: &AppHandle, ch: &mut Channel) {
    match p.sync().await {
        Ok(report) => {
            let _ = app.emit("synced", &report);
        }
        Err(e @ ClientError::Relay(RelayError::Unreachable(_))) => ch.down(app, e.into()),
        Err(e) => {
            // Not worth a banner for a background sync; the next command shows it.
            let _ = app.emit(
                "synced",
                SyncReport {
                    warnings: vec![e.to_string()],
                    ..SyncReport::default()
                },
            );
        }
    }
}

/// The thread's loop: until every sender of `queue` is gone.
pub async fn run(mut queue: mpsc::UnboundedReceiver<Job>, shared: Arc<Shared>) {
    let mut profile: Option<Profile> = None;
    let app = &shared.app;
    let mut ch = Channel {
        shared: Arc::clone(&shared),
        socket: None,
        retry_at: Instant::now(),
        backoff: Duration::from_millis(500),
        revoked: false,
    };
    loop {
        // Live only once the window is up and this device is in the roster.
        let live = match (app.get(), profile.as_mut()) {
            (Some(app), Some(p)) if p.admitted() && !ch.revoked => Some((app.clone(), p)),
            _ => None,
        };
        if let Some((app, p)) = live {
            if ch.socket.is_none() && Instant::now() >= ch.retry_at {
                match tokio::time::timeout(CONNECT_TIMEOUT, p.push_channel()).await {
                    Ok(Ok(ws)) => {
                        ch.socket = Some(ws);
                        ch.backoff = Duration::from_millis(500);
                        ch.shared.tell(&app, Live::Online);
                        sync_and_tell(p, &app, &mut ch).await;
                    }
                    // The relay knows this device no more: retrying cannot help.
                    Ok(Err(ClientError::Relay(RelayError::Refused {
                        status: 401 | 403, ..
                    }))) => ch.revoked(&app),
                    Ok(Err(e)) => ch.down(&app, e.into()),
                    Err(_) => ch.down(
                        &app,
                        Failure::unreachable("timeout", "the relay did not answer in time"),
                    ),
                }
            }
        }
        let waiting = ch.socket.is_none() && !ch.revoked && profile.is_some();
        tokio::select! {
            job = queue.recv() => match job {
                Some(job) => job(&mut profile).await,
                None => return,
            },
            frame = next_frame(&mut ch.socket) => {
                let (Some(app), Some(p)) = (app.get(), profile.as_mut()) else { continue };
                match frame {
                    Some(Ok(PushFrame::Text(_))) => {
                        tokio::time::sleep(DEBOUNCE).await;
                        sync_and_tell(p, app, &mut ch).await;
                    }
                    Some(Ok(PushFrame::Close(reason))) => {
                        let why = reason.map(|r| r.reason.to_string()).unwrap_or_default();
                        if why == "revoked" {
                            ch.revoked(app);
                        } else {
                            ch.down(
                                app,
                                Failure::unreachable(
                                    "closed",
                                    format!("the relay closed the channel: {why}"),
                                ),
                            );
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => ch.down(app, Failure::unreachable("dropped", e)),
                    None => ch.down(
                        app,
                        Failure::unreachable("dropped", "the channel closed"),
                    ),
                }
            }
            () = tokio::time::sleep_until(ch.retry_at), if waiting => {}
        }
    }
}
