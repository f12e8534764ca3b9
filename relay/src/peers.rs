//! The other instances of a relay that shares its store (`protocol-spec/scale-out.md`,
//! "Several instances"): PostgreSQL `LISTEN`/`NOTIFY` on one channel.
//!
//! What one instance tells the others, after the change is committed:
//! - a push for devices whose sockets may be held elsewhere (pushes are hints: a client
//!   catches up from its cursors on every connection, so an event too large for a
//!   notification travels without its ciphertext);
//! - a revoked device, whose sockets everywhere are closed;
//! - a firm whose roster or erased files changed, which every instance re-reads from the
//!   store before it serves that firm again.
//!
//! While an instance is not listening (starting, or its notification connection was
//! lost) it cannot know what the others changed: it re-reads the caller's roster on every
//! request, and once it listens again it re-reads every firm and closes its sockets, so
//! their clients reconnect and catch up on what was pushed meanwhile.

use crate::state::AppState;
use crate::store::postgres::PgTls;
use crate::store::Store;
use ledgerline_protocol::ids::{DeviceId, FirmId};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The notification channel (versioned: instances of an incompatible release ignore it).
pub const CHANNEL: &str = "ledgerline_v1";

/// PostgreSQL refuses payloads of 8,000 bytes or more; we stay below with a margin.
const MAX_PAYLOAD: usize = 7_800;

/// Devices named in one notification at most (a large firm's push becomes several).
const DEVICES_PER_NOTE: usize = 64;

/// Notifications waiting to be sent; past this, pushes to other instances are dropped
/// (and counted): their clients still catch up at their next sync.
const OUTBOX: usize = 16_384;

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Signal {
    /// Push `event` to these devices' sockets.
    Push {
        /// Firm.
        firm: FirmId,
        /// Devices.
        devices: Vec<DeviceId>,
        /// The event's JSON text.
        event: String,
    },
    /// Close this device's sockets.
    Close {
        /// Firm.
        firm: FirmId,
        /// Device.
        device: DeviceId,
        /// `revoked` (the client stops) or anything else (it reconnects).
        reason: String,
    },
    /// The firm's roster or erased files changed: read them again.
    Firm {
        /// Firm.
        firm: FirmId,
    },
}

/// A signal and the instance that sent it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    from: String,
    signal: Signal,
}

/// A [`Note`] as sent, borrowing what it names.
#[derive(Serialize)]
struct NoteOut<'a> {
    from: &'a str,
    signal: &'a Signal,
}

/// This instance's side: signals out, and whether it currently hears the others.
#[derive(Debug)]
pub struct Publisher {
    id: String,
    out: mpsc::Sender<String>,
    listening: Arc<AtomicBool>,
    dropped: std::sync::atomic::AtomicU64,
}

impl Publisher {
    /// Whether this instance hears the others now.
    pub fn in_sync(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Pushes dropped because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Tells the others to push `event` to `devices`.
    pub fn push(&self, firm: FirmId, devices: &[DeviceId], event: &str) {
        for chunk in devices.chunks(DEVICES_PER_NOTE) {
            let mut payload = self.encode(&Signal::Push {
                firm,
                devices: chunk.to_vec(),
                event: event.to_owned(),
            });
            if payload.len() > MAX_PAYLOAD {
                payload = self.encode(&Signal::Push {
                    firm,
                    devices: chunk.to_vec(),
                    event: without_ciphertext(event),
                });
            }
            self.send_encoded(payload);
        }
    }

    /// Tells the others to close `device`'s sockets.
    pub fn close(&self, firm: FirmId, device: DeviceId, reason: &str) {
        self.send(&Signal::Close {
            firm,
            device,
            reason: reason.to_owned(),
        });
    }

    /// Tells the others that `firm`'s roster or erased files changed.
    pub fn firm_changed(&self, firm: FirmId) {
        self.send(&Signal::Firm { firm });
    }

    fn encode(&self, signal: &Signal) -> String {
        serde_json::to_string(&NoteOut {
            from: &self.id,
            signal,
        })
        .unwrap_or_default()
    }

    fn send(&self, signal: &Signal) {
        self.send_encoded(self.encode(signal));
    }

    fn send_encoded(&self, payload: String) {
        if payload.len() > MAX_PAYLOAD {
            // Only a push to a firm with absurdly long ids could; its clients catch up.
            tracing::warn!("a notification to the other instances was too large to send");
            return;
        }
        if self.out.try_send(payload).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("the notifications to the other instances are backed up; one dropped");
        }
    }
}

/// The event without its `ciphertext` (and marked so): what a push too large for a
/// notification carries to the other instances. The client fetches the rest.
fn without_ciphertext(event: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(event) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.remove("ciphertext");
            m.insert("partial".into(), serde_json::Value::Bool(true));
            serde_json::Value::Object(m).to_string()
        }
        _ => r#"{"type":"partial"}"#.to_owned(),
    }
}

/// Decodes a notification; `None` for our own, or one we do not understand.
fn decode(payload: &str, own: &str) -> Option<Signal> {
    match serde_json::from_str::<Note>(payload) {
        Ok(note) if note.from == own => None,
        Ok(note) => Some(note.signal),
        Err(_) => {
            tracing::warn!("ignored a notification this release does not understand");
            None
        }
    }
}

/// Connects `state` to the other instances on the database at `url`: sets the hub's
/// publisher and starts the tasks that send and listen. They run until aborted.
pub fn start<S: Store>(
    state: &AppState<S>,
    url: &str,
) -> Result<Vec<tokio::task::JoinHandle<()>>, crate::store::StoreError> {
    let (config, tls) =
        crate::store::postgres::connection_config(url, state.config.database_ca.as_deref())?;
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    let id = hex::encode(id);
    let (out, outbox) = mpsc::channel(OUTBOX);
    let listening = Arc::new(AtomicBool::new(false));
    state.hub.set_peers(Publisher {
        id: id.clone(),
        out,
        listening: listening.clone(),
        dropped: Default::default(),
    });
    Ok(vec![
        tokio::spawn(send_loop(config.clone(), tls.clone(), outbox)),
        tokio::spawn(listen_loop(state.clone(), config, tls, id, listening)),
        tokio::spawn(prune_loop(state.clone())),
    ])
}

/// Drops the shared nonces of requests no instance would accept any more, every minute.
async fn prune_loop<S: Store>(state: AppState<S>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        if let Err(e) = state.store.prune_nonces(state.now_ms()).await {
            tracing::warn!(error = %e, "pruning the shared nonces failed; retried in a minute");
        }
    }
}

/// Sends queued notifications, many per statement, on a connection of its own.
async fn send_loop(config: tokio_postgres::Config, tls: PgTls, mut outbox: mpsc::Receiver<String>) {
    let mut client: Option<tokio_postgres::Client> = None;
    while let Some(first) = outbox.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match outbox.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // One retry on a fresh connection; after that the batch is dropped (pushes are
        // hints, and the firm signals are repeated by the re-read on reconnection).
        for _ in 0..2 {
            if client
                .as_ref()
                .is_none_or(tokio_postgres::Client::is_closed)
            {
                client = match tls.connect(&config, None).await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach PostgreSQL to notify the other instances");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        None
                    }
                };
            }
            let Some(c) = &client else { continue };
            match c
                .execute(
                    "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                    &[&CHANNEL, &batch],
                )
                .await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %crate::store::postgres::pg_text(&e), "notifying the other instances failed");
                    client = None;
                }
            }
        }
    }
}

/// Listens for the other instances' signals and applies them; reconnects when the
/// connection is lost, re-reading every firm and closing this instance's sockets.
async fn listen_loop<S: Store>(
    state: AppState<S>,
    config: tokio_postgres::Config,
    tls: PgTls,
    id: String,
    listening: Arc<AtomicBool>,
) {
    let mut pause = Duration::from_millis(250);
    let mut first = true;
    loop {
        let (notes, mut inbox) = mpsc::channel::<String>(4096);
        match tls.connect(&config, Some(notes)).await {
            Ok(client) => {
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        // Listening from here on: whatever the others changed before is in
                        // the store. Read it, then let our clients catch up.
                        state.refresh_all_firms().await;
                        if !first {
                            state.hub.close_all("resync");
                        }
                        listening.store(true, Ordering::Release);
                        tracing::info!("listening to the other relay instances");
                        first = false;
                        pause = Duration::from_millis(250);
                        // Ends when the connection does (its driver drops the sender).
                        while let Some(payload) = inbox.recv().await {
                            if let Some(signal) = decode(&payload, &id) {
                                apply(&state, signal).await;
                            }
                        }
                        listening.store(false, Ordering::Release);
                        tracing::warn!(
                            "lost the notification connection to the other instances; reconnecting"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::store::postgres::pg_text(&e), "LISTEN failed")
                    }
                }
                drop(client);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach PostgreSQL to listen to the other instances")
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Applies one signal from another instance to this one.
async fn apply<S: Store>(state: &AppState<S>, signal: Signal) {
    match signal {
        Signal::Push {
            firm,
            devices,
            event,
        } => {
            for d in devices {
                state.hub.push_here(firm, d, &event);
            }
        }
        Signal::Close {
            firm,
            device,
            reason,
        } => {
            let reason = if reason == "revoked" {
                "revoked"
            } else {
                "closed"
            };
            state.hub.close_here(firm, device, reason);
        }
        Signal::Firm { firm } => {
            if let Err(e) = state.refresh_firm(firm).await {
                tracing::error!(firm = %firm, error = %e, "re-reading a firm changed by another instance failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher() -> (Publisher, mpsc::Receiver<String>) {
        let (out, rx) = mpsc::channel(8);
        (
            Publisher {
                id: "me".into(),
                out,
                listening: Arc::new(AtomicBool::new(true)),
                dropped: Default::default(),
            },
            rx,
        )
    }

    #[test]
    fn signals_round_trip_and_our_own_are_ignored() {
        let (p, mut rx) = publisher();
        let firm = FirmId([1; 16]);
        p.push(firm, &[DeviceId([2; 16])], r#"{"type":"roster","seq":3}"#);
        p.close(firm, DeviceId([3; 16]), "revoked");
        p.firm_changed(firm);
        let mut got = Vec::new();
        while let Ok(payload) = rx.try_recv() {
            assert!(decode(&payload, "me").is_none(), "our own is ignored");
            got.push(decode(&payload, "another").expect("decodes"));
        }
        assert_eq!(
            got,
            vec![
                Signal::Push {
                    firm,
                    devices: vec![DeviceId([2; 16])],
                    event: r#"{"type":"roster","seq":3}"#.into()
                },
                Signal::Close {
                    firm,
                    device: DeviceId([3; 16]),
                    reason: "revoked".into()
                },
                Signal::Firm { firm },
            ]
        );
        assert!(decode("not json", "me").is_none());
        assert!(decode(r#"{"from":"x","signal":{"kind":"unknown"}}"#, "me").is_none());
    }

    #[test]
    fn a_large_push_loses_its_ciphertext_and_many_devices_make_several_notes() {
        let (p, mut rx) = publisher();
        let firm = FirmId([1; 16]);
        let big = serde_json::json!({ "type": "room_message", "seq": 9, "ciphertext": "ab".repeat(10_000) })
            .to_string();
        let devices: Vec<DeviceId> = (0..100u8).map(|n| DeviceId([n; 16])).collect();
        p.push(firm, &devices, &big);
        let mut named = 0;
        while let Ok(payload) = rx.try_recv() {
            assert!(payload.len() <= MAX_PAYLOAD, "{}", payload.len());
            let Some(Signal::Push { devices, event, .. }) = decode(&payload, "another") else {
                panic!("not a push");
            };
            named += devices.len();
            let v: serde_json::Value = serde_json::from_str(&event).expect("json");
            assert_eq!(v["seq"], 9);
            assert_eq!(v["partial"], true);
            assert!(v.get("ciphertext").is_none());
        }
        assert_eq!(named, 100, "every device named once");
        // A full outbox drops and counts, it never blocks a handler.
        for _ in 0..20 {
            p.firm_changed(firm);
        }
        assert!(p.dropped() >= 12, "{}", p.dropped());
    }
}
