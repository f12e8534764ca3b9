//! The customer conversation (`protocol-spec/guests.md`): a guest's whole window, and the
//! staff's "Klient" tab of a customer. A guest's commands name no file: theirs is the one
//! the roster binds them to.

use crate::commands::{file_id, with, Answer, Desk, Failure};
use crate::documents::{downloads, landing, progress};
use ledgerline_client_core::profile::{ClientError, CustomerMessage, DocumentManifest, Profile};
use ledgerline_client_core::protocol::ids::FileId;
use ledgerline_client_core::room::RoomEvent;
use ledgerline_client_core::transport::RelayError;
use std::path::PathBuf;
use tauri::{AppHandle, State};

/// The file of a conversation command: a guest's own (whatever the window says), or the
/// one named (staff).
fn conversation_file(p: &Profile, file: Option<&str>) -> Result<FileId, ClientError> {
    match (p.guest_file(), file) {
        (Some(own), _) => Ok(own),
        (None, Some(f)) => f
            .parse()
            .map_err(|_| ClientError::Invalid("not a customer file id".into())),
        (None, None) => Err(ClientError::Invalid("which customer file?".into())),
    }
}

/// Syncs (offline, the local copy is shown) and reports the opening to the access log.
async fn open_conversation(p: &mut Profile, file: FileId) -> Result<(), ClientError> {
    match p.sync().await {
        Ok(_) | Err(ClientError::Relay(RelayError::Unreachable(_))) => {}
        Err(e) => return Err(e),
    }
    p.record_opened(p.customer_conversation(file)).await
}

/// The conversation with the customer: a guest's own messages and the office's; for
/// staff, also the file's internal messages, marked.
#[tauri::command]
pub async fn conversation_read(
    desk: State<'_, Desk>,
    file: Option<String>,
) -> Answer<Vec<CustomerMessage>> {
    with(&desk, async move |p: &mut Profile| {
        let file = conversation_file(p, file.as_deref())?;
        open_conversation(p, file).await?;
        p.customer_view(file)
    })
    .await
}

/// Sends a message to the customer's conversation, or with `internal` (staff) to the
/// file's staff room; returns its sequence number.
#[tauri::command]
pub async fn conversation_send(
    desk: State<'_, Desk>,
    file: Option<String>,
    text: String,
    internal: bool,
) -> Answer<u64> {
    with(&desk, async move |p: &mut Profile| {
        let file = conversation_file(p, file.as_deref())?;
        if internal && p.is_guest() {
            return Err(ClientError::NotAllowed(
                "a guest's messages always go to the conversation".into(),
            ));
        }
        let to = if internal {
            ledgerline_client_core::profile::Conversation::File(file)
        } else {
            p.customer_conversation(file)
        };
        p.send(
            to,
            RoomEvent::Text {
                body: text,
                reply_to: None,
            },
        )
        .await
    })
    .await
}

/// Encrypts and shares the file at `path` in the conversation.
#[tauri::command]
pub async fn conversation_share(
    app: AppHandle,
    desk: State<'_, Desk>,
    file: Option<String>,
    path: String,
    token: String,
) -> Answer<DocumentManifest> {
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(Failure::invalid(
            "not_a_file",
            "only a file can be shared (not a folder)",
        ));
    }
    let progress = progress(app, token);
    with(&desk, async move |p: &mut Profile| {
        let file = conversation_file(p, file.as_deref())?;
        p.share_document(file, &path, progress).await
    })
    .await
}

/// Downloads a document shared in the conversation into the Downloads folder (a new name
/// if one is taken); returns where it landed.
#[tauri::command]
pub async fn conversation_download(
    app: AppHandle,
    desk: State<'_, Desk>,
    file: Option<String>,
    document: String,
    token: String,
) -> Answer<String> {
    let dir = downloads(&app)?;
    let progress = progress(app, token);
    with(&desk, async move |p: &mut Profile| {
        let file = conversation_file(p, file.as_deref())?;
        let m = p
            .shared_documents(file)?
            .into_iter()
            .find(|m| m.document.to_string() == document)
            .ok_or_else(|| ClientError::NotFound("no such shared document".into()))?;
        let out = landing(&dir, &m.name)?;
        p.download_shared(file, &m.document.to_string(), &out, progress)
            .await?;
        Ok(out.display().to_string())
    })
    .await
}

/// Invites a customer's person as a guest of `file` (admin); returns the one-time code.
#[tauri::command]
pub async fn guest_invite(
    desk: State<'_, Desk>,
    file: String,
    name: String,
    hours: u64,
) -> Answer<String> {
    let file = file_id(&file)?;
    if !(1..=720).contains(&hours) {
        return Err(Failure::invalid(
            "guest_hours",
            "a guest invitation is valid 1 to 720 hours",
        ));
    }
    with(&desk, async move |p: &mut Profile| {
        p.sync().await?;
        p.invite_guest(file, &name, hours * 3600 * 1000).await
    })
    .await
}
