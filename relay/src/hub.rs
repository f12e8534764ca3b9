//! Live WebSocket connections by device, and pushes to them: to this instance's sockets,
//! and through [`crate::peers`] to those held by the other instances of a relay that
//! shares its store.

use ledgerline_protocol::ids::{DeviceId, FirmId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Queue depth per connection; a client that falls this far behind is disconnected and
/// catches up by paginating.
const QUEUE: usize = 1024;

/// What a connection task is told to do.
#[derive(Debug, Clone)]
pub enum Push {
    /// Send this JSON text.
    Event(String),
    /// Close with this reason (revocation, shutdown, slow consumer).
    Close(&'static str),
}

type Connections = HashMap<(FirmId, DeviceId), Vec<(u64, mpsc::Sender<Push>)>>;

/// Registry of connections.
#[derive(Debug, Default)]
pub struct Hub {
    next_id: AtomicU64,
    conns: Mutex<Connections>,
    /// The other instances, when the store is shared (set once, before serving).
    peers: std::sync::OnceLock<crate::peers::Publisher>,
}

impl Hub {
    /// Registers a connection of `device`; returns its id and receiver.
    pub fn register(&self, firm: FirmId, device: DeviceId) -> (u64, mpsc::Receiver<Push>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Ok(mut m) = self.conns.lock() {
            m.entry((firm, device)).or_default().push((id, tx));
        }
        (id, rx)
    }

    /// Removes a connection.
    pub fn unregister(&self, firm: FirmId, device: DeviceId, id: u64) {
        if let Ok(mut m) = self.conns.lock() {
            if let Some(v) = m.get_mut(&(firm, device)) {
                v.retain(|(i, _)| *i != id);
                if v.is_empty() {
                    m.remove(&(firm, device));
                }
            }
        }
    }

    /// Connects the hub to the other instances (once; later calls are ignored).
    pub fn set_peers(&self, peers: crate::peers::Publisher) {
        let _ = self.peers.set(peers);
    }

    /// The other instances, if there are any.
    pub fn peers(&self) -> Option<&crate::peers::Publisher> {
        self.peers.get()
    }

    /// Whether this instance hears every change the other instances make (always, when it
    /// runs alone). While it does not, callers re-read their firm's roster per request.
    pub fn in_sync(&self) -> bool {
        self.peers
            .get()
            .is_none_or(crate::peers::Publisher::in_sync)
    }

    /// Pushes an event to every connection of `device`, here and on the other instances.
    pub fn push(&self, firm: FirmId, device: DeviceId, event: &str) {
        self.push_all(firm, &[device], event);
    }

    /// Pushes one event to every connection of each of `devices`, here and on the other
    /// instances.
    pub fn push_all(&self, firm: FirmId, devices: &[DeviceId], event: &str) {
        for d in devices {
            self.push_here(firm, *d, event);
        }
        if let Some(p) = self.peers.get() {
            p.push(firm, devices, event);
        }
    }

    /// Pushes an event to the connections of `device` on this instance only.
    pub fn push_here(&self, firm: FirmId, device: DeviceId, event: &str) {
        let Ok(mut m) = self.conns.lock() else { return };
        if let Some(v) = m.get_mut(&(firm, device)) {
            v.retain(|(_, tx)| match tx.try_send(Push::Event(event.to_owned())) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let _ = tx.try_send(Push::Close("too slow"));
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
    }

    /// Closes every connection of `device` (revocation), here and on the other instances.
    pub fn close_device(&self, firm: FirmId, device: DeviceId, reason: &'static str) {
        self.close_here(firm, device, reason);
        if let Some(p) = self.peers.get() {
            p.close(firm, device, reason);
        }
    }

    /// Closes the connections of `device` on this instance only.
    pub fn close_here(&self, firm: FirmId, device: DeviceId, reason: &'static str) {
        let Ok(mut m) = self.conns.lock() else { return };
        if let Some(v) = m.remove(&(firm, device)) {
            for (_, tx) in v {
                let _ = tx.try_send(Push::Close(reason));
            }
        }
    }

    /// Closes every connection on this instance (shutdown; a lost link to the others).
    pub fn close_all(&self, reason: &'static str) {
        let Ok(mut m) = self.conns.lock() else { return };
        for (_, v) in m.drain() {
            for (_, tx) in v {
                let _ = tx.try_send(Push::Close(reason));
            }
        }
    }

    /// Number of devices with at least one connection.
    pub fn connected_devices(&self) -> usize {
        self.conns.lock().map(|m| m.len()).unwrap_or(0)
    }
}
