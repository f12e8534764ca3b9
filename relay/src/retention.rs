//! The retention sweeper (`protocol-spec/retention.md`).
//!
//! Each pass walks the files whose roster has a retention policy, deletes the conversation
//! messages and documents the policy lets go at the relay's clock, and logs each step as a
//! retention-sweep leaf (a tombstone naming the policy's roster event) in the same
//! transaction. A pass holds the firm's roster-append lock per file, so a policy change
//! (say, a legal hold) lands either before the step, which then obeys it, or after it.

use crate::state::AppState;
use crate::store::{Store, StoreError, SweepLeaf, SweepPlan, Swept};
use ledgerline_protocol::audit::{RetentionSweep, MAX_SWEPT_DOCUMENTS};
use ledgerline_protocol::ids::{FileId, FirmId};
use std::time::Duration;

/// What a pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepTotals {
    /// Files something was deleted from.
    pub files: u64,
    /// Messages deleted.
    pub messages: u64,
    /// Documents deleted.
    pub documents: u64,
}

/// One pass over every firm's files with a policy.
pub async fn sweep_once<S: Store>(state: &AppState<S>) -> Result<SweepTotals, StoreError> {
    let firms: Vec<FirmId> = state
        .firms
        .read()
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    let mut totals = SweepTotals::default();
    for firm in firms {
        let Some(fs) = state.firm(firm) else { continue };
        let files: Vec<FileId> = fs
            .roster
            .read()
            .map(|r| r.retention_policies().map(|(f, _, _)| f).collect())
            .unwrap_or_default();
        for file in files {
            let _appending = fs.append.lock().await;
            let erased = fs.erased.read().map(|e| e.contains(&file)).unwrap_or(true);
            let policy = fs.roster.read().ok().and_then(|r| r.retention(&file));
            let (Some((seq, policy)), false) = (policy, erased) else {
                continue;
            };
            let now = state.now_ms();
            let mut plan = SweepPlan {
                file,
                chat_before_ms: policy.chat_before_ms(now),
                docs_through_year: policy.docs_through_year(now),
                max_documents: MAX_SWEPT_DOCUMENTS,
            };
            let mut touched = false;
            while plan.chat_before_ms.is_some() || plan.docs_through_year.is_some() {
                let leaf: SweepLeaf = Box::new(move |s: &Swept| {
                    RetentionSweep {
                        firm,
                        swept_ms: now,
                        file,
                        policy_seq: seq,
                        chat_before_ms: s.chat_before_ms,
                        messages: s.messages,
                        through_seq: s.through_seq,
                        documents: s.documents.clone(),
                    }
                    .to_bytes()
                });
                let swept = state.store.sweep_file(firm, plan, leaf).await?;
                for d in &swept.documents {
                    state.blobs.remove(firm, d.document).await;
                }
                totals.messages += swept.messages;
                totals.documents += swept.documents.len() as u64;
                state.metrics.retention_messages.inc_by(swept.messages);
                state
                    .metrics
                    .retention_documents
                    .inc_by(swept.documents.len() as u64);
                touched |= swept.messages > 0 || !swept.documents.is_empty();
                // Messages go in one step; documents in batches until one is not full.
                plan.chat_before_ms = None;
                if swept.documents.len() < MAX_SWEPT_DOCUMENTS {
                    plan.docs_through_year = None;
                }
            }
            if touched {
                totals.files += 1;
                tracing::info!(%firm, "retention sweep deleted expired content of a file");
            }
        }
    }
    Ok(totals)
}

/// Sweeps at start and then every `retention_sweep_secs`, until the task is dropped.
pub async fn sweeper<S: Store>(state: AppState<S>) {
    let every = Duration::from_secs(state.config.retention_sweep_secs.max(1));
    loop {
        match sweep_once(&state).await {
            Ok(t) if t.files > 0 => tracing::info!(
                files = t.files,
                messages = t.messages,
                documents = t.documents,
                "retention sweep done"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; retried next time"),
        }
        tokio::time::sleep(every).await;
    }
}
