//! Documents: list, upload (a dropped or chosen file) and download, with progress sent to
//! the window as `doc-progress` events. Encryption streams in client/core: memory stays
//! constant whatever the size.

use crate::commands::{file_id, open_file, with, Answer, Desk, Failure};
use ledgerline_client_core::profile::{ClientError, DocumentManifest, Phase, Profile, Progress};
use ledgerline_client_core::protocol::ids::FileId;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tauri::{AppHandle, Emitter, Manager, State};

/// One step of a transfer, for a progress bar.
#[derive(Debug, Clone, Serialize)]
pub struct TransferProgress {
    /// The window's name for the transfer.
    pub token: String,
    /// `encrypt`, `upload` or `download`.
    pub phase: &'static str,
    /// Bytes done.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// Progress that reaches the window at most once per percent (and always at the end).
pub(crate) fn progress(app: AppHandle, token: String) -> Progress {
    let last = AtomicU64::new(u64::MAX);
    Arc::new(move |phase, done, total| {
        let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
        let key = percent
            | match phase {
                Phase::Encrypt => 1 << 32,
                Phase::Upload => 2 << 32,
                Phase::Download => 3 << 32,
            };
        if last.swap(key, Ordering::Relaxed) == key && done != total {
            return;
        }
        let _ = app.emit(
            "doc-progress",
            TransferProgress {
                token: token.clone(),
                phase: match phase {
                    Phase::Encrypt => "encrypt",
                    Phase::Upload => "upload",
                    Phase::Download => "download",
                },
                done,
                total,
            },
        );
    })
}

/// A customer's documents, newest first.
#[tauri::command]
pub async fn documents(desk: State<'_, Desk>, file: String) -> Answer<Vec<DocumentManifest>> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        open_file(p, file).await?;
        let mut docs = p.documents(file)?;
        docs.sort_by_key(|d| std::cmp::Reverse(d.uploaded_ms));
        Ok(docs)
    })
    .await
}

/// Encrypts and uploads the file at `path` into a customer file; `year` is the year the
/// document concerns (retention counts from it; default this year).
#[tauri::command]
pub async fn doc_upload(
    app: AppHandle,
    desk: State<'_, Desk>,
    file: String,
    path: String,
    year: Option<u16>,
    token: String,
) -> Answer<DocumentManifest> {
    let (file, path, progress) = upload_args(app, &file, path, token)?;
    with(&desk, async move |p: &mut Profile| {
        p.upload_document(file, &path, year, progress).await
    })
    .await
}

/// What an upload starts from: the customer file, a path that is a file, the progress.
fn upload_args(
    app: AppHandle,
    file: &str,
    path: String,
    token: String,
) -> Answer<(FileId, PathBuf, Progress)> {
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(Failure::invalid(
            "not_a_file",
            "only a file can be uploaded (not a folder)",
        ));
    }
    Ok((file_id(file)?, path, progress(app, token)))
}

/// The manifest of `document` (an id or a name) in `file`.
fn manifest(p: &Profile, file: FileId, document: &str) -> Result<DocumentManifest, ClientError> {
    let id = p.resolve_document(file, document)?;
    p.documents(file)?
        .into_iter()
        .find(|d| d.document == id)
        .ok_or_else(|| ClientError::NotFound("unknown document".into()))
}

/// Uploads the file at `path` into a customer file and attaches it to the customer's
/// conversation (a document dropped on the chat).
#[tauri::command]
pub async fn chat_attach(
    app: AppHandle,
    desk: State<'_, Desk>,
    file: String,
    path: String,
    token: String,
) -> Answer<u64> {
    use ledgerline_client_core::profile::Conversation;
    use ledgerline_client_core::room::RoomEvent;
    let (file, path, progress) = upload_args(app, &file, path, token)?;
    with(&desk, async move |p: &mut Profile| {
        let m = p.upload_document(file, &path, None, progress).await?;
        p.send(
            Conversation::File(file),
            RoomEvent::Attachment {
                document: m.document,
                name: m.name,
            },
        )
        .await
    })
    .await
}

/// Downloads, verifies and decrypts a document into the user's Downloads folder (a new
/// name if one is taken); returns where it landed.
#[tauri::command]
pub async fn doc_download(
    app: AppHandle,
    desk: State<'_, Desk>,
    file: String,
    document: String,
    token: String,
) -> Answer<String> {
    let file = file_id(&file)?;
    let dir = downloads(&app)?;
    let progress = progress(app, token);
    with(&desk, async move |p: &mut Profile| {
        let m = manifest(p, file, &document)?;
        let out = landing(&dir, &m.name)?;
        p.download_document(file, m.document, &out, progress)
            .await?;
        Ok(out.display().to_string())
    })
    .await
}

/// Largest image shown in the window (bigger ones are downloaded instead).
pub const MAX_PREVIEW: u64 = 16 << 20;

/// The image types the window shows, by file name.
fn image_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

/// An image document, decrypted for the window as a `data:` URL (nothing is left on
/// disk: the plaintext passes through a private file in the profile that is removed at
/// once). The download is logged by the relay like any other.
#[tauri::command]
pub async fn doc_preview(desk: State<'_, Desk>, file: String, document: String) -> Answer<String> {
    use base64::Engine;
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        let m = manifest(p, file, &document)?;
        let mime = image_type(&m.name).ok_or_else(|| ClientError::Declined {
            reason: "preview_not_image",
            message: "only images (PNG, JPEG, GIF, WebP) are shown here".into(),
        })?;
        if m.size > MAX_PREVIEW {
            return Err(ClientError::Declined {
                reason: "preview_too_big",
                message: "too big to show here: download it instead".into(),
            });
        }
        let scratch = tempfile::NamedTempFile::new_in(p.dir())
            .map_err(|e| ClientError::Invalid(format!("no room for a preview: {e}")))?;
        p.download_document(file, m.document, scratch.path(), Arc::new(|_, _, _| {}))
            .await?;
        let bytes = std::fs::read(scratch.path())
            .map_err(|e| ClientError::Invalid(format!("preview: {e}")))?;
        drop(scratch);
        Ok(format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    })
    .await
}

/// Files the user picks in the system's dialog (none when cancelled); their contents are
/// read only by [`doc_upload`], never by the window.
#[tauri::command]
pub async fn choose_files(app: AppHandle) -> Answer<Vec<String>> {
    use tauri_plugin_dialog::DialogExt;
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().pick_files(move |picked| {
        let _ = tx.send(picked);
    });
    let picked = rx.await.map_err(dialog_closed)?;
    Ok(picked
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.into_path().ok())
        .map(|p| p.display().to_string())
        .collect())
}

/// Where to save something, from the system's dialog (`None` when cancelled).
#[tauri::command]
pub async fn choose_save(app: AppHandle, name: String) -> Answer<Option<String>> {
    use tauri_plugin_dialog::DialogExt;
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_file_name(name)
        .save_file(move |picked| {
            let _ = tx.send(picked);
        });
    let picked = rx.await.map_err(dialog_closed)?;
    Ok(picked
        .and_then(|f| f.into_path().ok())
        .map(|p| p.display().to_string()))
}

/// The user's Downloads folder (their home where there is none).
pub(crate) fn downloads(app: &AppHandle) -> Answer<PathBuf> {
    app.path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .map_err(|e| Failure::app("no_downloads", format!("no Downloads folder: {e}")))
}

fn dialog_closed(_: tokio::sync::oneshot::error::RecvError) -> Failure {
    Failure::app("dialog", "the dialog closed unexpectedly")
}

/// Where a download named `name` lands in `dir` (created if missing): a free name.
pub(crate) fn landing(dir: &Path, name: &str) -> Result<PathBuf, ClientError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ClientError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    Ok(free_name(dir, name))
}

/// `dir/name`, or `dir/name (2).ext`… if taken. A name from a manifest is the uploader's:
/// only its last component is used, so it cannot point outside `dir`.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let base = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.is_empty())
        .unwrap_or_else(|| "dokument".to_owned());
    let candidate = dir.join(&base);
    if !candidate.exists() {
        return candidate;
    }
    let (stem, ext) = match base.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (base.clone(), String::new()),
    };
    (2..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(candidate)
}

#[cfg(test)]
mod tests {
    use super::{free_name, image_type};

    #[test]
    fn only_images_are_previewed() {
        assert_eq!(image_type("skan.JPG"), Some("image/jpeg"));
        assert_eq!(image_type("logo.png"), Some("image/png"));
        assert_eq!(image_type("faktura.pdf"), None);
        assert_eq!(image_type("strona.html"), None);
        assert_eq!(image_type("png"), None);
    }

    #[test]
    fn a_downloaded_name_stays_in_the_folder_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        assert_eq!(free_name(d, "faktura.pdf"), d.join("faktura.pdf"));
        assert_eq!(free_name(d, "../../etc/passwd"), d.join("passwd"));
        assert_eq!(free_name(d, "/abs/x.txt"), d.join("x.txt"));
        assert_eq!(free_name(d, ".."), d.join("dokument"));
        assert_eq!(free_name(d, ".bashrc"), d.join("dokument"));
        std::fs::write(d.join("faktura.pdf"), b"x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(free_name(d, "faktura.pdf"), d.join("faktura (2).pdf"));
        std::fs::write(d.join("faktura (2).pdf"), b"x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(free_name(d, "faktura.pdf"), d.join("faktura (3).pdf"));
    }
}
