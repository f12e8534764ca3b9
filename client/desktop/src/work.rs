//! The work views' commands: the task board, the calendar, leads, global search and the
//! relay setting.

use crate::commands::{file_id, with, Answer, Desk, Failure};
use ledgerline_client_core::chrono::NaiveDate;
use ledgerline_client_core::profile::{
    AgendaItem, CustomerCard, OfferView, Profile, ReplyTemplate, TaskView,
};
use ledgerline_client_core::protocol::ids::{DocumentId, FileId, RecordId};
use ledgerline_client_core::work::offer_pdf::Lang;
use ledgerline_client_core::work::offers::line_of;
use serde::{Deserialize, Serialize};
use tauri::State;

fn day(d: &str) -> Answer<NaiveDate> {
    NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map_err(|_| Failure::invalid("day", "a day is YYYY-MM-DD"))
}

/// Every task this member can see (open and done), for the board.
#[tauri::command]
pub async fn board(desk: State<'_, Desk>) -> Answer<Vec<TaskView>> {
    with(&desk, async |p: &mut Profile| {
        p.sync().await?;
        p.tasks(None, false)
    })
    .await
}

/// Marks a task done (a recurring one moves to its next occurrence).
#[tauri::command]
pub async fn task_done(desk: State<'_, Desk>, task: String) -> Answer<()> {
    with(&desk, async move |p: &mut Profile| {
        let (file, id) = p.resolve_task(&task)?;
        p.task_done(file, id).await
    })
    .await
}

/// Deadlines and events from `from` to `to` (inclusive days, Warsaw time).
#[tauri::command]
pub async fn agenda(desk: State<'_, Desk>, from: String, to: String) -> Answer<Vec<AgendaItem>> {
    let (from, to) = (day(&from)?, day(&to)?);
    if to < from || (to - from).num_days() > 62 {
        return Err(Failure::invalid(
            "calendar_span",
            "the calendar shows at most two months at once",
        ));
    }
    with(&desk, async move |p: &mut Profile| p.agenda(from, to)).await
}

/// Adds a lead (a prospective customer, stage `new`); returns its file.
#[tauri::command]
pub async fn lead_add(desk: State<'_, Desk>, name: String, nip: Option<String>) -> Answer<FileId> {
    let card = CustomerCard {
        nip: nip.filter(|n| !n.trim().is_empty()),
        ..CustomerCard::default()
    };
    with(&desk, async move |p: &mut Profile| {
        p.sync().await?;
        p.lead_add(name.trim(), &card).await
    })
    .await
}

/// Moves a lead to `stage` (`new`, `contacted`, `offer`, `won`, `lost`).
#[tauri::command]
pub async fn lead_stage(desk: State<'_, Desk>, file: String, stage: String) -> Answer<()> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        p.lead_stage(file, &stage).await
    })
    .await
}

/// Makes a lead a customer.
#[tauri::command]
pub async fn lead_convert(desk: State<'_, Desk>, file: String) -> Answer<()> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| {
        p.lead_convert(file).await
    })
    .await
}

/// The offers of a lead's or customer's file, newest first.
#[tauri::command]
pub async fn offers(desk: State<'_, Desk>, file: String) -> Answer<Vec<OfferView>> {
    let file = file_id(&file)?;
    with(&desk, async move |p: &mut Profile| p.offers(file)).await
}

/// A service as the offer form sends it: text as typed.
#[derive(Debug, Deserialize)]
pub struct LineInput {
    service: String,
    billing: String,
    net: String,
    vat: String,
}

/// Makes an offer (a draft) valid through `valid_until` (`YYYY-MM-DD`).
#[tauri::command]
pub async fn offer_add(
    desk: State<'_, Desk>,
    file: String,
    lines: Vec<LineInput>,
    valid_until: String,
) -> Answer<RecordId> {
    let file = file_id(&file)?;
    let until = day(&valid_until)?;
    let lines = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            line_of(&l.service, &l.billing, &l.net, &l.vat)
                .map_err(|e| Failure::invalid("offer_line", format!("{}: {e}", i + 1)))
        })
        .collect::<Answer<Vec<_>>>()?;
    with(&desk, async move |p: &mut Profile| {
        p.sync().await?;
        p.offer_add(file, lines, until).await
    })
    .await
}

/// Moves an offer on: `sent` (its PDF, in `lang`, is stored in the file), `accepted`
/// or `rejected`.
#[tauri::command]
pub async fn offer_status(
    desk: State<'_, Desk>,
    offer: String,
    to: String,
    lang: Option<String>,
) -> Answer<Option<DocumentId>> {
    let lang = match lang.as_deref() {
        Some(l) => Lang::parse(l)
            .ok_or_else(|| Failure::invalid("language", format!("{l:?} is not a language")))?,
        None => Lang::Pl,
    };
    with(&desk, async move |p: &mut Profile| {
        p.sync().await?;
        let (file, id) = p.resolve_offer(&offer)?;
        if to == "sent" {
            return p.offer_send(file, id, lang).await.map(Some);
        }
        p.offer_status(file, id, &to).await.map(|()| None)
    })
    .await
}

/// A search hit, with the customer file it belongs to when there is one.
#[derive(Debug, Serialize)]
pub struct Hit {
    /// `message`, `file`, `document`, `note`.
    pub kind: String,
    /// The matching text.
    pub body: String,
    /// The customer file to open.
    pub file: Option<FileId>,
    /// Its name.
    pub file_name: Option<String>,
}

/// Searches everything this device holds (locally: the relay never sees a query).
#[tauri::command]
pub async fn search(desk: State<'_, Desk>, query: String) -> Answer<Vec<Hit>> {
    if query.trim().chars().count() < 2 {
        return Ok(Vec::new());
    }
    with(&desk, async move |p: &mut Profile| {
        let customers = p.customers()?;
        Ok(p.search(query.trim(), 50)?
            .into_iter()
            .map(|h| {
                // A hit names its file first: `file`, `file:document`, `room:seq`.
                let first = h.reference.split(':').next().unwrap_or_default();
                let customer = first
                    .parse::<FileId>()
                    .ok()
                    .and_then(|f| customers.iter().find(|c| c.file == f));
                Hit {
                    kind: h.kind,
                    body: h.body,
                    file: customer.map(|c| c.file),
                    file_name: customer.map(|c| c.name.clone()),
                }
            })
            .collect())
    })
    .await
}

/// Points this profile at another address of its relay; kept only once a sync there
/// succeeds (the same firm's roster and log must verify).
#[tauri::command]
pub async fn set_relay(desk: State<'_, Desk>, relay: String) -> Answer<()> {
    let relay = relay.trim().to_owned();
    with(&desk, async move |p: &mut Profile| {
        p.set_relay(&relay).await
    })
    .await
}

/// The reply templates this member can use: the firm's and their own.
#[tauri::command]
pub async fn reply_templates(desk: State<'_, Desk>) -> Answer<Vec<ReplyTemplate>> {
    with(&desk, async |p: &mut Profile| p.reply_templates()).await
}

/// Adds or changes a reply template: the firm's (admins) or this member's own.
#[tauri::command]
pub async fn reply_set(
    desk: State<'_, Desk>,
    name: String,
    body: String,
    personal: bool,
) -> Answer<()> {
    with(&desk, async move |p: &mut Profile| {
        p.reply_template_set(&name, &body, personal).await
    })
    .await
}

/// Deletes a reply template.
#[tauri::command]
pub async fn reply_delete(desk: State<'_, Desk>, name: String, personal: bool) -> Answer<()> {
    with(&desk, async move |p: &mut Profile| {
        p.reply_template_delete(&name, personal).await
    })
    .await
}

/// A reply template filled for a customer file (the deadline as `YYYY-MM-DD`, the amount
/// as złoty, both only where the template needs them); nothing is sent.
#[tauri::command]
pub async fn reply_render(
    desk: State<'_, Desk>,
    name: String,
    file: String,
    deadline: Option<String>,
    amount: Option<String>,
) -> Answer<String> {
    let file = file_id(&file)?;
    let deadline = match deadline.filter(|d| !d.is_empty()) {
        Some(d) => Some(day(&d)?),
        None => None,
    };
    let amount = amount.filter(|a| !a.trim().is_empty());
    with(&desk, async move |p: &mut Profile| {
        p.render_reply(&name, Some(file), deadline, amount.as_deref())
    })
    .await
}
