//! This device's view of the firm's audit log (`protocol-spec/audit-log.md`, "Client
//! duties"): the log's origin and key, pinned on first contact; the latest checkpoint it
//! accepted; and an archive of every checkpoint it accepted (the local store's
//! `checkpoints` table). A checkpoint is accepted only when the pinned key signed it and
//! it extends the last one accepted (RFC 6962 consistency), so a relay that rolls the log
//! back, forks it or swaps its key is caught here and reported as an integrity error —
//! never ignored. A document's release share is used only after its own log entry is
//! proven to be in such a checkpoint.

use super::{now_ms, ClientError, Profile, Result};
use crate::transport::Release;
use ledgerline_protocol::audit::AuditLeaf;
use ledgerline_protocol::checkpoint::{open_checkpoint, Checkpoint};
use ledgerline_protocol::ids::{DocumentId, FileId};
use ledgerline_protocol::keys::{DeviceSigner, VerifyingKey};
use ledgerline_protocol::merkle::{empty_root, verify_consistency, verify_inclusion};
use serde::{Deserialize, Serialize};

/// The pinned log and the last checkpoint accepted.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(super) struct LogView {
    origin: String,
    /// Hex of the log's Ed25519 key.
    log_key: String,
    size: u64,
    /// Hex of the root at `size`.
    root: String,
}

fn integrity(what: impl Into<String>) -> ClientError {
    ClientError::Integrity(what.into())
}

impl Profile {
    /// Fetches the relay's current checkpoint and accepts it; pins the log on first
    /// contact. Returns the log's size.
    pub(super) async fn check_log(&mut self) -> Result<u64> {
        let head = self.relay.audit_head(&self.account).await?;
        let key = hex::encode(head.log_key);
        match &self.local.log {
            Some(view) if view.origin != head.origin || view.log_key != key => {
                return Err(integrity(format!(
                    "the relay presents the audit log as {} with key {key}, but this device \
                     pinned {} with key {}: a relay with a new log key could rewrite history",
                    head.origin, view.origin, view.log_key
                )))
            }
            Some(_) => {}
            None => {
                self.local.log = Some(LogView {
                    origin: head.origin,
                    log_key: key,
                    size: 0,
                    root: hex::encode(empty_root()),
                });
            }
        }
        Ok(self.accept_checkpoint(&head.checkpoint).await?.size())
    }

    /// Accepts a checkpoint note: signed by the pinned key, no smaller than the last one
    /// accepted and consistent with it. Archives it and makes it the last one.
    pub(super) async fn accept_checkpoint(&mut self, note: &str) -> Result<Checkpoint> {
        let view = self
            .local
            .log
            .clone()
            .ok_or_else(|| integrity("the audit log is not pinned yet"))?;
        let key = hex::decode(&view.log_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| integrity("the pinned log key is unreadable"))?;
        let cp = open_checkpoint(note.as_bytes(), &view.origin, &key)
            .map_err(|e| integrity(format!("audit checkpoint refused: {e}")))?;
        let last_root: [u8; 32] = hex::decode(&view.root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| integrity("the last checkpoint's root is unreadable"))?;
        if cp.size() < view.size {
            return Err(integrity(format!(
                "rollback: the relay shows the audit log with {} entries, this device saw {} \
                 before",
                cp.size(),
                view.size
            )));
        }
        if cp.size() == view.size {
            if *cp.root() != last_root {
                return Err(integrity(format!(
                    "fork: the relay shows two different audit logs of {} entries",
                    cp.size()
                )));
            }
            return Ok(cp);
        }
        let proof = self
            .relay
            .audit_consistency(&self.account, view.size, cp.size())
            .await?;
        verify_consistency(view.size, cp.size(), &last_root, cp.root(), &proof).map_err(|e| {
            integrity(format!(
                "fork: the audit log of {} entries does not extend the one of {} this device \
                 saw ({e})",
                cp.size(),
                view.size
            ))
        })?;
        self.store.put_checkpoint(cp.size(), note, now_ms())?;
        self.local.log = Some(LogView {
            size: cp.size(),
            root: hex::encode(cp.root()),
            ..view
        });
        Ok(cp)
    }

    /// Checks a document release before its share is used: the entry is this device's own
    /// signed request for this document, and a checkpoint consistent with everything this
    /// device saw includes it.
    pub(super) async fn check_release(
        &mut self,
        file: FileId,
        document: DocumentId,
        release: &Release,
    ) -> Result<()> {
        if self.local.log.is_none() {
            self.check_log().await?;
        }
        let leaf = AuditLeaf::from_bytes(&release.entry)
            .map_err(|e| integrity(format!("the audit entry of this download: {e}")))?;
        let head = &leaf.request.head;
        let own = head.firm == self.id.firm
            && leaf.firm == self.id.firm
            && head.device == self.id.device
            && head.method == "POST"
            && head.path == format!("/v1/files/{file}/documents/{document}/release")
            && leaf
                .request
                .verify_signature(&self.account.public_key())
                .is_ok();
        if !own {
            return Err(integrity(
                "the audit entry of this download is not this device's request for it",
            ));
        }
        let cp = self.accept_checkpoint(&release.checkpoint).await?;
        verify_inclusion(
            &leaf.leaf_hash(),
            release.audit_index,
            cp.size(),
            &release.inclusion,
            cp.root(),
        )
        .map_err(|e| {
            integrity(format!(
                "this download's entry is not in the audit log the relay signed ({e})"
            ))
        })?;
        // The checkpoint just accepted is the one the next sync must extend.
        self.commit()
    }

    /// The audit-log checkpoints this device accepted `(size, note)`, smallest first.
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
        Ok(self.store.checkpoints()?)
    }

    /// Size of the audit log at the last checkpoint this device accepted.
    pub fn log_size(&self) -> Option<u64> {
        self.local.log.as_ref().map(|v| v.size)
    }
}
