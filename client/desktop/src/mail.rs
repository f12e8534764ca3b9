//! The mail view's commands (`protocol-spec/mail.md`): connect the office's mailbox, fetch
//! and sort, the inbox of unplaced mail with assignment (and a rule in the same step), and
//! a customer's mail. Everything runs in the client core on this device.

use crate::commands::{file_id, with, Answer, Desk, Failure};
use ledgerline_client_core::mail::imap::MailboxConfig;
use ledgerline_client_core::mail::sort::RuleOn;
use ledgerline_client_core::profile::{
    AssignReport, ClientError, InboxView, MailReport, MailView, MailboxView, Profile, RuleView,
};
use ledgerline_client_core::transport::RelayError;
use std::path::PathBuf;
use tauri::State;
use zeroize::Zeroizing;

/// The mailboxes this device reads.
#[tauri::command]
pub async fn mail_boxes(desk: State<'_, Desk>) -> Answer<Vec<MailboxView>> {
    with(&desk, async |p: &mut Profile| p.mailboxes()).await
}

/// Connects a mailbox: the login is checked first; the password goes to the OS keyring.
#[tauri::command]
pub async fn mail_connect(
    desk: State<'_, Desk>,
    host: String,
    port: u16,
    user: String,
    folder: String,
    password: String,
    ca_file: Option<String>,
) -> Answer<MailboxView> {
    let password = Zeroizing::new(password);
    let config = MailboxConfig {
        host: host.trim().to_owned(),
        port,
        user: user.trim().to_owned(),
        folder: if folder.trim().is_empty() {
            "INBOX".to_owned()
        } else {
            folder.trim().to_owned()
        },
        ca_file: ca_file
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .map(PathBuf::from),
    };
    with(&desk, async move |p: &mut Profile| {
        p.mail_connect(config, &password).await
    })
    .await
}

/// Stops reading a mailbox.
#[tauri::command]
pub async fn mail_disconnect(desk: State<'_, Desk>, mailbox: String) -> Answer<()> {
    with(&desk, async move |p: &mut Profile| {
        p.mail_disconnect(&mailbox)
    })
    .await
}

/// Reads new mail and sorts it (after a sync, so rules and cards are fresh; offline, the
/// fetch stops at the first message bound for a file and goes on next time).
#[tauri::command]
pub async fn mail_fetch(desk: State<'_, Desk>) -> Answer<MailReport> {
    with(&desk, async |p: &mut Profile| {
        match p.sync().await {
            Ok(_) | Err(ClientError::Relay(RelayError::Unreachable(_))) => {}
            Err(e) => return Err(e),
        }
        p.mail_fetch(&|_, _| {}).await
    })
    .await
}

/// Mail no rule placed.
#[tauri::command]
pub async fn mail_inbox(desk: State<'_, Desk>) -> Answer<Vec<InboxView>> {
    with(&desk, async |p: &mut Profile| p.mail_inbox()).await
}

/// Assigns an inbox message to a customer; `rule` (`from`, `domain`, `subject`) adds a
/// firm rule in the same step.
#[tauri::command]
pub async fn mail_assign(
    desk: State<'_, Desk>,
    id: String,
    file: String,
    rule: Option<String>,
) -> Answer<AssignReport> {
    let file = file_id(&file)?;
    let rule = match rule.as_deref() {
        None | Some("") => None,
        Some(r @ ("from" | "domain" | "subject")) => Some(
            r.parse::<RuleOn>()
                .map_err(|e| Failure::invalid("mail_rule", e))?,
        ),
        Some(other) => {
            return Err(Failure::invalid(
                "mail_rule",
                format!("{other:?} is not a rule for a message"),
            ))
        }
    };
    with(&desk, async move |p: &mut Profile| {
        p.mail_assign(&id, file, rule, None).await
    })
    .await
}

/// The firm's rules.
#[tauri::command]
pub async fn mail_rules(desk: State<'_, Desk>) -> Answer<Vec<RuleView>> {
    with(&desk, async |p: &mut Profile| p.mail_rules()).await
}

/// Removes a firm rule.
#[tauri::command]
pub async fn mail_rule_remove(desk: State<'_, Desk>, id: String) -> Answer<()> {
    with(&desk, async move |p: &mut Profile| {
        p.mail_rule_remove(&id).await
    })
    .await
}

/// A customer's mail, newest first.
#[tauri::command]
pub async fn mail_read(desk: State<'_, Desk>, file: String) -> Answer<Vec<MailView>> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| p.mails(file)).await
}
