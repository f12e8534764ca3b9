//! Live sync: the relay's WebSocket pushes trigger a catch-up; every (re)connection starts
//! with one, so nothing a push announced while the socket was down is missed (pushes are
//! only a hint; the cursors are the truth).

use super::{ClientError, Profile, Result, SyncReport};
use crate::transport::RelayError;
use futures_util::StreamExt;
use std::future::Future;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Longest pause between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Pushes arriving this close together are served by one sync.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// What the watch loop reports.
#[derive(Debug)]
pub enum WatchEvent {
    /// Connected (or reconnected) to the push channel.
    Connected,
    /// A sync ran.
    Synced(SyncReport),
    /// The relay is unreachable or the connection dropped; retrying after the pause.
    Disconnected {
        /// Why.
        reason: String,
        /// Pause before the next attempt.
        retry_in: Duration,
    },
}

impl Profile {
    /// Syncs, then keeps syncing whenever the relay pushes something, until `stop`
    /// resolves. Reconnects with growing pauses; ends with an error only for what
    /// retrying cannot fix (this device revoked, a local store failure, bad data).
    pub async fn watch<F, S>(&mut self, mut on_event: F, stop: S) -> Result<()>
    where
        F: FnMut(WatchEvent),
        S: Future<Output = ()>,
    {
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(500);
        loop {
            let mut connected = false;
            let attempt = async {
                let mut ws = self.relay.push_socket(&self.account).await?;
                connected = true;
                on_event(WatchEvent::Connected);
                on_event(WatchEvent::Synced(self.sync().await?));
                loop {
                    let Some(frame) = ws.next().await else {
                        return Err(ClientError::Relay(RelayError::Unreachable(
                            "push channel closed".into(),
                        )));
                    };
                    match frame {
                        Ok(Message::Text(_)) => {
                            // Let a burst of pushes arrive, then sync once.
                            tokio::time::sleep(DEBOUNCE).await;
                            on_event(WatchEvent::Synced(self.sync().await?));
                        }
                        Ok(Message::Close(reason)) => {
                            let why = reason.map(|r| r.reason.to_string()).unwrap_or_default();
                            if why == "revoked" {
                                return Err(ClientError::NotAllowed(
                                    "this device was revoked".into(),
                                ));
                            }
                            return Err(ClientError::Relay(RelayError::Unreachable(format!(
                                "push channel closed: {why}"
                            ))));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            return Err(ClientError::Relay(RelayError::Unreachable(format!(
                                "push channel: {e}"
                            ))))
                        }
                    }
                }
            };
            let outcome: Result<()> = tokio::select! {
                () = &mut stop => return Ok(()),
                r = attempt => r,
            };
            if connected {
                backoff = Duration::from_millis(500);
            }
            match outcome {
                Ok(()) => {}
                Err(ClientError::Relay(RelayError::Unreachable(reason))) => {
                    on_event(WatchEvent::Disconnected {
                        reason,
                        retry_in: backoff,
                    });
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
