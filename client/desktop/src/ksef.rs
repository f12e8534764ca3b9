//! The KSeF tab's commands (`protocol-spec/ksef.md`): a customer's KSeF token (checked by
//! logging in, kept encrypted in the file), fetching its invoices, and listing them.
//! Everything runs in the client core on this device; the token never leaves it in clear
//! except RSA-encrypted to KSeF itself.

use crate::commands::{file_id, with, Answer, Desk, Failure};
use ledgerline_client_core::chrono::NaiveDate;
use ledgerline_client_core::ksef::api::Environment;
use ledgerline_client_core::profile::{InvoiceView, KsefFileReport, KsefView, Profile};
use tauri::State;
use zeroize::Zeroizing;

/// The file's KSeF settings, if it has a token (never the token itself).
#[tauri::command]
pub async fn ksef_settings(desk: State<'_, Desk>, file: String) -> Answer<Option<KsefView>> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        Ok(p.ksef_list()?.into_iter().find(|v| v.file == file))
    })
    .await
}

/// Sets the file's KSeF token: checked by logging in first.
#[tauri::command]
pub async fn ksef_token_set(
    desk: State<'_, Desk>,
    file: String,
    token: String,
    nip: Option<String>,
    environment: String,
    since: Option<String>,
) -> Answer<KsefView> {
    let file = file_id(&file)?;
    let token = Zeroizing::new(token);
    let env = Environment::parse(&environment).ok_or_else(|| {
        Failure::invalid(
            "ksef_environment",
            format!("{environment:?} is not a KSeF environment"),
        )
    })?;
    let since = match since.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(
            d.parse::<NaiveDate>()
                .map_err(|_| Failure::invalid("day", format!("{d:?} is not a day (YYYY-MM-DD)")))?,
        ),
    };
    let nip = nip.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    with(&desk, async move |p: &mut Profile| {
        p.ksef_token_set(file, &token, nip.as_deref(), env, since)
            .await
    })
    .await
}

/// Fetches the file's new invoices from KSeF (after a sync, so the cursor and the known
/// invoices are as colleagues left them).
#[tauri::command]
pub async fn ksef_sync(desk: State<'_, Desk>, file: String) -> Answer<KsefFileReport> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        p.sync().await?;
        let mut r = p.ksef_sync(Some(file), &|_, _, _| {}).await?;
        Ok(r.files.pop().unwrap_or_default())
    })
    .await
}

/// The file's invoices.
#[tauri::command]
pub async fn ksef_invoices(desk: State<'_, Desk>, file: String) -> Answer<Vec<InvoiceView>> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| p.invoices(file)).await
}
