//! Retention on this device (`protocol-spec/retention.md`). An admin sets a customer
//! file's policy as a signed roster event; the relay's sweeper deletes the expired
//! ciphertext and logs a tombstone; every device deletes the same content from its own
//! encrypted store at each sync, by the same rules and its own clock, so nothing expired
//! outlives the policy on a laptop either.

use super::{now_ms, ClientError, Profile, Result};
use ledgerline_protocol::ids::FileId;
use ledgerline_protocol::retention::{year_of, RetentionPolicy, DOCUMENT_YEARS};
use ledgerline_protocol::roster::{EventKind, Role};

/// What applying the policies deleted here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Expired {
    /// Decrypted messages deleted.
    pub messages: u64,
    /// Document manifests deleted.
    pub documents: u64,
}

impl Profile {
    /// A customer file's retention policy now, if one was set.
    pub fn retention(&self, file: FileId) -> Result<Option<RetentionPolicy>> {
        Ok(self.roster()?.retention(&file).map(|(_, p)| p))
    }

    /// Sets a customer file's retention policy (admins). Returns `false` when exactly this
    /// policy is in force already (nothing is appended: re-running is safe).
    pub async fn set_retention(&mut self, file: FileId, policy: RetentionPolicy) -> Result<bool> {
        let r = self.roster()?;
        if r.member(&self.id.member).map(|m| m.role) != Some(Role::Admin) {
            return Err(ClientError::NotAllowed(
                "only an admin sets a retention policy".into(),
            ));
        }
        if !policy.is_valid() {
            return Err(ClientError::Invalid(format!(
                "chat retention is at most {} months and document retention at most {} years",
                ledgerline_protocol::retention::MAX_CHAT_MONTHS,
                ledgerline_protocol::retention::MAX_DOCS_YEARS
            )));
        }
        if !r.files().contains(&file) || self.local.erased.contains(&file) {
            return Err(ClientError::NotFound("no such customer file".into()));
        }
        if r.retention(&file).map(|(_, p)| p) == Some(policy) {
            return Ok(false);
        }
        self.append(EventKind::RetentionSet { file, policy })
            .await?;
        self.apply_retention()?;
        Ok(true)
    }

    /// Deletes from the local store what the files' policies let go at this device's
    /// clock: conversation messages and document manifests (with their search entries).
    pub(super) fn apply_retention(&mut self) -> Result<Expired> {
        let now = now_ms();
        let policies: Vec<(FileId, RetentionPolicy)> = self
            .roster()?
            .retention_policies()
            .map(|(f, _, p)| (f, p))
            .collect();
        let mut expired = Expired::default();
        for (file, policy) in policies {
            let mut refs = Vec::new();
            if let Some(last) = policy.docs_through_year(now) {
                if let Some(docs) = self.local.documents.get_mut(&file) {
                    docs.retain(|id, m| {
                        let keep = m.year() > last;
                        if !keep {
                            refs.push(format!("{file}:{id}"));
                        }
                        keep
                    });
                }
            }
            expired.documents += refs.len() as u64;
            let before = policy.chat_before_ms(now);
            expired.messages += self.store.forget_expired(file.as_bytes(), before, &refs)?;
            // The file's customer conversation keeps no longer (`guests.md`).
            let conversation = self.customer_conversation(file).room_id();
            expired.messages += self.store.forget_expired(&conversation, before, &[])?;
        }
        if expired != Expired::default() {
            self.commit()?;
        }
        Ok(expired)
    }
}

/// The year a document concerns, as a user typed it: checked against the protocol's range.
pub fn parse_document_year(text: &str) -> Result<u16> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|y| DOCUMENT_YEARS.contains(y))
        .ok_or_else(|| {
            ClientError::Invalid(format!(
                "{text:?} is not a year from {} to {}",
                DOCUMENT_YEARS.start(),
                DOCUMENT_YEARS.end()
            ))
        })
}

/// The current year (UTC), the default a document concerns.
pub fn this_year() -> u16 {
    year_of(now_ms()).unwrap_or(*DOCUMENT_YEARS.start())
}
