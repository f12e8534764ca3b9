//! Work items of customer files (`protocol-spec/work.md`): the customer card (CRM), notes
//! and tasks, stored as encrypted records of the file and merged three-way when two
//! devices edited the same item. Every rule runs here, on decrypted data; the relay keeps
//! versioned ciphertext only.

use super::{declined, now_ms, ClientError, Conversation, Profile, Result, SyncReport};
use crate::store::WorkRow;
use crate::transport::RelayError;
use crate::when::DEFAULT_ZONE;
use crate::work::calendar::{due_days, occurrences, rolled};
use crate::work::ids::{parse_nip, parse_regon};
use crate::work::merge::{Conflict, Fields, Hlc};
use crate::work::offer_pdf::{self, Lang, OfferDocument};
use crate::work::offers::{line_amounts, totals, Amounts, OfferLine, OfferTotals};
use crate::work::replies::{self, ReplyValues};
use crate::work::templates::{builtin, DeadlineTemplate};
use chrono::{NaiveDate, NaiveTime, TimeZone};
use ledgerline_protocol::ids::{DocumentId, FileId, MemberId, RecordId};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// The record holding a file's customer (or lead) card.
pub const CUSTOMER_CARD: RecordId = RecordId([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/// The office file's name (internal work).
const OFFICE_NAME: &str = "Biuro (sprawy wewnętrzne)";

/// Attempts at landing an edit when other devices keep landing theirs first.
const MERGE_ROUNDS: usize = 4;

/// The plaintext of a work item record.
#[derive(Serialize, Deserialize)]
struct ItemBody {
    /// Always `work`.
    #[serde(rename = "type")]
    ty: String,
    /// `customer`, `note`, `task`.
    kind: String,
    #[serde(flatten)]
    fields: Fields,
}

/// A reply template as this member sees it: the firm's, and their own.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReplyTemplate {
    /// Name (what the sender picks it by).
    pub name: String,
    /// Text with placeholders (`work::replies`).
    pub body: String,
    /// This member's own (shown to them only); otherwise the firm's, for everyone.
    pub personal: bool,
}

/// An offer as this profile shows it (`protocol-spec/work.md`, "Offer").
#[derive(Debug, Clone, Serialize)]
pub struct OfferView {
    /// Record id.
    pub id: RecordId,
    /// The lead's (or customer's) file.
    pub file: FileId,
    /// Services offered.
    pub lines: Vec<OfferLine>,
    /// Valid through this day.
    pub valid_until: Option<NaiveDate>,
    /// `draft`, `sent`, `accepted` or `rejected`.
    pub status: String,
    /// Sent, and its validity has passed.
    pub expired: bool,
    /// Each line's own net, VAT (rounded on the line) and gross, in line order.
    pub line_amounts: Vec<Amounts>,
    /// Totals in grosze, monthly and one-off apart.
    pub totals: OfferTotals,
    /// Who made it.
    pub author: Option<MemberId>,
    /// When.
    pub created_ms: u64,
    /// The PDF stored in the file when it was sent.
    pub pdf: Option<DocumentId>,
}

/// What a new customer's card holds.
#[derive(Debug, Clone, Default)]
pub struct CustomerCard {
    /// NIP, checked.
    pub nip: Option<String>,
    /// REGON, checked.
    pub regon: Option<String>,
    /// Addresses as written.
    pub addresses: Vec<String>,
    /// Contact people: `Name <e-mail>` or `Name, phone`, as written.
    pub contacts: Vec<String>,
    /// E-mail addresses.
    pub emails: Vec<String>,
    /// Phone numbers.
    pub phones: Vec<String>,
}

/// A customer or lead as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerView {
    /// The customer file.
    pub file: FileId,
    /// Company name.
    pub name: String,
    /// `customer` or `lead`.
    pub kind: String,
    /// Lead stage (`new`, `contacted`, `offer`, `won`, `lost`).
    pub stage: Option<String>,
    /// NIP.
    pub nip: Option<String>,
    /// REGON.
    pub regon: Option<String>,
    /// E-mail addresses.
    pub emails: Vec<String>,
    /// Phones.
    pub phones: Vec<String>,
    /// Contact people.
    pub contacts: Vec<String>,
    /// Addresses.
    pub addresses: Vec<String>,
    /// Concurrent edits that lost and are waiting to be looked at.
    pub conflicts: Vec<Conflict>,
}

/// What a new task is.
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    /// Title.
    pub title: String,
    /// Assigned member (the author when `None`).
    pub assignee: Option<MemberId>,
    /// Due day.
    pub due: Option<NaiveDate>,
    /// RFC 5545 RRULE (recurring); its first occurrence is on or after `due` (today when
    /// no due day is given).
    pub rrule: Option<String>,
    /// Move each due day to the next working day (deadline templates).
    pub working_days: bool,
    /// Not done → carries over to the next working day.
    pub rolling: bool,
    /// Checklist items.
    pub checklist: Vec<String>,
    /// The deadline template it came from.
    pub template: Option<String>,
}

/// A task as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskView {
    /// Task id (hex record id).
    pub id: String,
    /// The customer file.
    pub file: FileId,
    /// Its name.
    pub file_name: Option<String>,
    /// Title.
    pub title: String,
    /// `open` or `done`.
    pub status: String,
    /// Assigned member.
    pub assignee: Option<MemberId>,
    /// Who delegated it, if it was delegated.
    pub delegated_by: Option<MemberId>,
    /// `pending` (waiting for the assignee), `accepted`, `returned`.
    pub delegation: Option<String>,
    /// The comment of the last return or status change.
    pub comment: Option<String>,
    /// The due day (for a recurring task: of its next open occurrence).
    pub due: Option<NaiveDate>,
    /// Recurrence (RRULE).
    pub rrule: Option<String>,
    /// Carries over until done.
    pub rolling: bool,
    /// Working days it has rolled (0 when not overdue).
    pub rolled_days: u32,
    /// The day it shows on today (a rolling task: today when overdue).
    pub shows_on: Option<NaiveDate>,
    /// Checklist: text and whether it is ticked.
    pub checklist: Vec<(String, bool)>,
    /// Documents of the file attached to the task: id and name.
    pub attachments: Vec<(String, String)>,
    /// Template it came from.
    pub template: Option<String>,
    /// Status changes: time (ms), member, what, comment.
    pub history: Vec<(u64, Option<MemberId>, String, Option<String>)>,
    /// Concurrent edits that lost.
    pub conflicts: Vec<Conflict>,
}

/// One line of a customer's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineItem {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `message`, `conversation`, `note`, `task`, `event`, `offer`, `mail`, `document`.
    pub kind: String,
    /// Who (member), when known.
    pub member: Option<MemberId>,
    /// The text shown.
    pub text: String,
    /// The item's own text without decorations (a task's or event's title, a note's text,
    /// a message, a document's name), for a view that words the rest itself.
    pub title: String,
    /// A task's status (`open`, `done`); a mail's category.
    pub status: Option<String>,
    /// Id of the item (message seq, record id, document id).
    pub reference: String,
    /// Where it stands in the timeline (`ms/kind/reference`): pass the first item's as
    /// `before` for the page before it.
    pub cursor: String,
}

/// What a new calendar event is.
#[derive(Debug, Clone)]
pub struct EventSpec {
    /// Title.
    pub title: String,
    /// Start, local time in Europe/Warsaw.
    pub start: chrono::NaiveDateTime,
    /// End (one hour after the start when `None`).
    pub end: Option<chrono::NaiveDateTime>,
    /// RFC 5545 RRULE.
    pub rrule: Option<String>,
    /// Where.
    pub location: Option<String>,
}

/// One agenda entry.
#[derive(Debug, Clone, Serialize)]
pub struct AgendaItem {
    /// Day (ISO date) in the user's time zone.
    pub date: NaiveDate,
    /// Start time (`HH:MM`, local) of an event; `None` for a task deadline.
    pub time: Option<String>,
    /// Title.
    pub title: String,
    /// `task` or `event`.
    pub kind: String,
    /// Task or event id.
    pub id: String,
    /// The customer file's name.
    pub file_name: Option<String>,
    /// Working days rolled (rolling tasks shown today).
    pub rolled_days: u32,
}

pub(super) fn text_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A member of a JSON object (`Null` when absent or not an object).
fn at<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}

pub(super) fn opt_text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn day_of(v: &Value) -> Option<NaiveDate> {
    v.as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

fn member_of(v: &Value) -> Option<MemberId> {
    v.as_str().and_then(|s| s.parse().ok())
}

impl Profile {
    // ------------------------------------------------------------------ storage

    /// The next clock reading of this device (never behind anything it has seen).
    fn tick(&mut self, seen: &Fields) -> Hlc {
        let last = std::cmp::max(self.local.work_clock.clone(), seen.newest());
        let next = Hlc::tick(&last, now_ms(), &self.id.device.to_string());
        self.local.work_clock = next.clone();
        next
    }

    /// The current state of an item here: the pending edit, else the relay's version.
    pub(super) fn item(&self, file: FileId, record: RecordId) -> Result<Option<(WorkRow, Fields)>> {
        let Some(row) = self.store.work(file.as_bytes(), record.as_bytes())? else {
            return Ok(None);
        };
        let fields = current(&row)?;
        Ok(Some((row, fields)))
    }

    /// Applies `edits` to an item (created if new) as one edit, keeps it locally, then
    /// sends it. Offline, it stays pending and leaves at the next sync. Returns whether the
    /// relay has it now.
    pub(super) async fn edit_item(
        &mut self,
        file: FileId,
        record: RecordId,
        kind: &str,
        edits: Vec<(String, Value)>,
    ) -> Result<bool> {
        let (mut row, mut fields) = match self.item(file, record)? {
            Some(x) => x,
            None => (
                WorkRow {
                    file: *file.as_bytes(),
                    record: *record.as_bytes(),
                    kind: kind.to_owned(),
                    ..WorkRow::default()
                },
                Fields::default(),
            ),
        };
        if row.kind != kind {
            return Err(ClientError::Invalid(format!(
                "this item is a {}, not a {kind}",
                row.kind
            )));
        }
        let at = self.tick(&fields);
        for (name, v) in edits {
            fields.set(&name, v, at.clone());
        }
        if row.pending.is_none() {
            row.base = row.body.clone();
        }
        row.pending = Some(item_json(kind, &fields));
        row.updated_ms = now_ms();
        self.store.put_work(&row)?;
        self.commit()?;
        if self.push_item(file, record).await? {
            Ok(true)
        } else {
            Err(ClientError::Queued(
                "saved on this device; `ledgerline sync` sends it when the relay is reachable"
                    .into(),
            ))
        }
    }

    /// Sends an item's pending edit as the next version; when another device's version
    /// landed first, merges three-way against it and tries again.
    async fn push_item(&mut self, file: FileId, record: RecordId) -> Result<bool> {
        for _ in 0..MERGE_ROUNDS {
            let Some(mut row) = self.store.work(file.as_bytes(), record.as_bytes())? else {
                return Ok(false);
            };
            let Some(pending) = row.pending.clone() else {
                return Ok(true);
            };
            let version = row.version + 1;
            let body = Zeroizing::new(pending.clone().into_bytes());
            match self.put_sealed_record(file, record, version, &body).await {
                Ok(()) => {
                    row.version = version;
                    row.body = Some(pending);
                    row.pending = None;
                    row.base = None;
                    self.store.put_work(&row)?;
                    return Ok(true);
                }
                Err(ClientError::Relay(RelayError::Refused { code, .. }))
                    if code == "version_conflict" =>
                {
                    // Learn the newer version, then merge against it.
                    self.sync_records(file, &mut SyncReport::default()).await?;
                    self.merge_pending(file, record)?;
                }
                Err(ClientError::Relay(RelayError::Unreachable(_))) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Integrity(
            "the item keeps changing on other devices; it stays pending and is retried at the next sync".into(),
        ))
    }

    /// After a newer version arrived: the pending edit becomes the three-way merge of
    /// (base, pending, newest).
    fn merge_pending(&mut self, file: FileId, record: RecordId) -> Result<()> {
        let Some(mut row) = self.store.work(file.as_bytes(), record.as_bytes())? else {
            return Ok(());
        };
        if row.pending.is_none() || row.base == row.body {
            return Ok(());
        }
        let (pending, body) = (parse(&row.pending)?, parse(&row.body)?);
        if row.base.is_none() {
            // No common ancestor known (after a relay restore, `reopen_works`): the later
            // edit of each field wins; nothing is sent when the relay has it all.
            let merged = Fields::merge_unrelated(&pending, &body);
            row.pending = (merged != body).then(|| item_json(&row.kind, &merged));
            row.base = row.pending.as_ref().and(row.body.clone());
            self.store.put_work(&row)?;
            return Ok(());
        }
        if pending == body {
            // Our own edit, landed before an interruption.
            row.pending = None;
            row.base = None;
            self.store.put_work(&row)?;
            return Ok(());
        }
        let merged = Fields::merge(&parse(&row.base)?, &pending, &body);
        row.pending = Some(item_json(&row.kind, &merged));
        row.base = row.body.clone();
        self.store.put_work(&row)?;
        Ok(())
    }

    /// A work record from the relay (already opened and checked): kept as the newest body
    /// of its item; a pending local edit is merged against it when it is sent.
    pub(super) fn receive_item(
        &mut self,
        file: FileId,
        record: RecordId,
        version: u64,
        plain: &[u8],
    ) -> Result<()> {
        let body: ItemBody = serde_json::from_slice(plain)
            .map_err(|e| ClientError::Integrity(format!("work item record: {e}")))?;
        let mut row = self
            .store
            .work(file.as_bytes(), record.as_bytes())?
            .unwrap_or_else(|| WorkRow {
                file: *file.as_bytes(),
                record: *record.as_bytes(),
                kind: body.kind.clone(),
                ..WorkRow::default()
            });
        if version <= row.version {
            return Ok(());
        }
        if row.kind != body.kind {
            return Err(ClientError::Integrity(
                "a work item changed its kind".into(),
            ));
        }
        if row.version == 0 && row.pending.is_none() {
            let text = [
                body.fields.get("title"),
                body.fields.get("text"),
                body.fields.get("name"),
            ]
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" ");
            if !text.is_empty() {
                self.store.index(&body.kind, &record.to_string(), &text)?;
            }
        }
        // Our clock moves past everything seen.
        let newest = body.fields.newest();
        if newest > self.local.work_clock {
            self.local.work_clock = Hlc {
                dev: self.id.device.to_string(),
                ..newest
            };
        }
        row.version = version;
        row.body = Some(item_json(&body.kind, &body.fields));
        row.updated_ms = now_ms();
        self.store.put_work(&row)?;
        Ok(())
    }

    /// Sends every pending edit (at each sync).
    pub(super) async fn flush_work(&mut self) -> Result<usize> {
        let mut sent = 0;
        for row in self.store.works_pending()? {
            let (file, record) = (FileId(row.file), RecordId(row.record));
            self.merge_pending(file, record)?;
            // A merge may find that the relay holds the edit already: nothing to send.
            let waiting = self
                .store
                .work(file.as_bytes(), record.as_bytes())?
                .is_some_and(|r| r.pending.is_some());
            if waiting && self.push_item(file, record).await? {
                sent += 1;
            }
        }
        Ok(sent)
    }

    // ------------------------------------------------------------------ CRM

    /// Creates a customer file with its card (admin).
    pub async fn customer_add(&mut self, name: &str, card: &CustomerCard) -> Result<FileId> {
        self.new_card(name, "customer", None, card).await
    }

    /// Creates a lead (a customer file whose card says `lead`, stage `new`; admin).
    pub async fn lead_add(&mut self, name: &str, card: &CustomerCard) -> Result<FileId> {
        self.new_card(name, "lead", Some("new"), card).await
    }

    async fn new_card(
        &mut self,
        name: &str,
        kind: &str,
        stage: Option<&str>,
        card: &CustomerCard,
    ) -> Result<FileId> {
        let nip = card
            .nip
            .as_deref()
            .map(parse_nip)
            .transpose()
            .map_err(|e| declined("nip", e.to_string()))?;
        let regon = card
            .regon
            .as_deref()
            .map(parse_regon)
            .transpose()
            .map_err(|e| declined("regon", e.to_string()))?;
        for e in &card.emails {
            if !e.contains('@') || e.contains(char::is_whitespace) {
                return Err(declined("email", format!("{e:?} is not an e-mail address")));
            }
        }
        let file = self.create_file(name).await?;
        let mut edits = vec![
            ("name".to_owned(), json!(name)),
            ("kind".to_owned(), json!(kind)),
        ];
        for (k, v) in [("nip", nip), ("regon", regon)] {
            if let Some(v) = v {
                edits.push((k.to_owned(), json!(v)));
            }
        }
        if let Some(s) = stage {
            edits.push(("stage".to_owned(), json!(s)));
        }
        for (k, v) in [
            ("emails", &card.emails),
            ("phones", &card.phones),
            ("contacts", &card.contacts),
            ("addresses", &card.addresses),
        ] {
            if !v.is_empty() {
                edits.push((k.to_owned(), json!(v)));
            }
        }
        self.edit_item(file, CUSTOMER_CARD, "customer", edits)
            .await?;
        Ok(file)
    }

    /// Converts a lead to a customer: same file, same history, its card now says
    /// `customer` (stage `won`).
    pub async fn lead_convert(&mut self, file: FileId) -> Result<()> {
        let (_, card) = self
            .item(file, CUSTOMER_CARD)?
            .ok_or_else(|| ClientError::NotFound("this file has no customer card".into()))?;
        if card.get("kind") != &json!("lead") {
            return Err(ClientError::Invalid("this is not a lead".into()));
        }
        self.edit_item(
            file,
            CUSTOMER_CARD,
            "customer",
            vec![
                ("kind".into(), json!("customer")),
                ("stage".into(), json!("won")),
                ("converted_ms".into(), json!(now_ms())),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Moves a lead to another stage.
    pub async fn lead_stage(&mut self, file: FileId, stage: &str) -> Result<()> {
        if !["new", "contacted", "offer", "won", "lost"].contains(&stage) {
            return Err(ClientError::Invalid(
                "a stage is one of new, contacted, offer, won, lost".into(),
            ));
        }
        self.edit_item(
            file,
            CUSTOMER_CARD,
            "customer",
            vec![("stage".into(), json!(stage))],
        )
        .await
        .map(|_| ())
    }

    /// The firm's office file (internal work: tasks and events without a customer), if
    /// this member can see it.
    pub fn office_file(&self) -> Result<Option<FileId>> {
        if let Some(f) = self.local.office {
            if !self.local.erased.contains(&f)
                && self
                    .roster()?
                    .files_of(&self.id.member, now_ms())
                    .contains(&f)
            {
                return Ok(Some(f));
            }
        }
        for f in self.files()? {
            if let Some((_, card)) = self.item(f.id, CUSTOMER_CARD)? {
                if card.get("kind") == &json!("office") {
                    return Ok(Some(f.id));
                }
            }
        }
        Ok(None)
    }

    /// The office file; an admin creates it the first time (granted to every member of
    /// staff), anyone else is told to ask one.
    pub async fn ensure_office(&mut self) -> Result<FileId> {
        if let Some(f) = self.office_file()? {
            return Ok(f);
        }
        if self.require_admin().is_err() {
            return Err(ClientError::NotFound(
                "the firm has no office file for work without a customer yet: an admin creates it with their first such task (or give --customer)".into(),
            ));
        }
        let file = self.create_file(OFFICE_NAME).await?;
        self.local.office = Some(file);
        self.edit_item(
            file,
            CUSTOMER_CARD,
            "customer",
            vec![
                ("name".into(), json!(OFFICE_NAME)),
                ("kind".into(), json!("office")),
            ],
        )
        .await?;
        self.grant_office_to_staff().await?;
        Ok(file)
    }

    /// An admin's sync: every active member of staff (not auditors) whose member key this
    /// admin holds gets the office file, if the firm has one — once: someone an admin took
    /// out of it stays out. Returns how many were added.
    pub(super) async fn grant_office_to_staff(&mut self) -> Result<usize> {
        if self.require_admin().is_err() {
            return Ok(0);
        }
        let Some(office) = self.office_file()? else {
            return Ok(0);
        };
        self.local.office = Some(office);
        let missing: Vec<MemberId> = {
            let r = self.roster()?;
            let holders = r.ever_granted(&office);
            r.members()
                .filter(|(id, m)| {
                    m.active.until.is_none()
                        && m.role != ledgerline_protocol::roster::Role::Auditor
                        && !holders.contains(id)
                })
                .map(|(id, _)| *id)
                .collect()
        };
        let mut added = 0;
        for m in missing {
            if self.member_key(m).is_none() {
                // Their key has not reached this admin yet: the next sync does it.
                continue;
            }
            self.grant(office, m).await?;
            added += 1;
        }
        Ok(added)
    }

    /// Customers and leads this member can see (run `sync` first), by name.
    pub fn customers(&self) -> Result<Vec<CustomerView>> {
        let mut out = Vec::new();
        for f in self.files()? {
            let Some((_, card)) = self.item(f.id, CUSTOMER_CARD)? else {
                continue;
            };
            if card.get("kind") == &json!("office") {
                continue;
            }
            out.push(CustomerView {
                file: f.id,
                name: opt_text(card.get("name"))
                    .or(f.name.clone())
                    .unwrap_or_default(),
                kind: opt_text(card.get("kind")).unwrap_or_else(|| "customer".into()),
                stage: opt_text(card.get("stage")),
                nip: opt_text(card.get("nip")),
                regon: opt_text(card.get("regon")),
                emails: text_list(card.get("emails")),
                phones: text_list(card.get("phones")),
                contacts: text_list(card.get("contacts")),
                addresses: text_list(card.get("addresses")),
                conflicts: card.open_conflicts(),
            });
        }
        out.sort_by_key(|c| c.name.to_lowercase());
        Ok(out)
    }

    /// Changes one field of a customer card (an edit two devices may make at once).
    pub async fn customer_set(&mut self, file: FileId, field: &str, value: &str) -> Result<()> {
        let v = match field {
            "name" | "address" => json!(value),
            "nip" => json!(parse_nip(value).map_err(|e| declined("nip", e.to_string()))?),
            "regon" => json!(parse_regon(value).map_err(|e| declined("regon", e.to_string()))?),
            "email" | "phone" => json!([value]),
            _ => {
                return Err(ClientError::Invalid(
                    "a card field is one of name, nip, regon, email, phone, address".into(),
                ))
            }
        };
        let name = match field {
            "email" => "emails",
            "phone" => "phones",
            "address" => "addresses",
            other => other,
        };
        let v = if name == "addresses" {
            json!([value])
        } else {
            v
        };
        self.edit_item(file, CUSTOMER_CARD, "customer", vec![(name.to_owned(), v)])
            .await
            .map(|_| ())
    }

    /// Dismisses the conflicts of an item (after someone looked at them): the customer
    /// card of `file`, or the task `task`. Returns how many were dismissed.
    pub async fn dismiss_conflicts(&mut self, file: FileId, record: RecordId) -> Result<usize> {
        let Some((row, f)) = self.item(file, record)? else {
            return Err(ClientError::NotFound(
                "no such item here (run `ledgerline sync`)".into(),
            ));
        };
        let open = f.open_conflicts();
        if open.is_empty() {
            return Ok(0);
        }
        let edits = open
            .iter()
            .map(|c| (Fields::dismissal(c), json!(true)))
            .collect();
        self.edit_item(file, record, &row.kind, edits).await?;
        Ok(open.len())
    }

    /// Adds a note to a customer file.
    pub async fn note_add(&mut self, file: FileId, text: &str) -> Result<RecordId> {
        let record = RecordId::random(&mut OsRng);
        self.edit_item(
            file,
            record,
            "note",
            vec![
                ("text".into(), json!(text)),
                ("author".into(), json!(self.id.member.to_string())),
                ("created_ms".into(), json!(now_ms())),
            ],
        )
        .await?;
        Ok(record)
    }

    // ------------------------------------------------------------------ tasks

    /// Adds a task to a customer file.
    pub async fn task_add(&mut self, file: FileId, spec: &TaskSpec) -> Result<RecordId> {
        if spec.title.trim().is_empty() {
            return Err(declined("title_needed", "a task needs a title"));
        }
        let today = today();
        if let Some(rule) = &spec.rrule {
            // Refuse a rule that does not expand before anything is stored.
            let start = spec.due.unwrap_or(today);
            expand(rule, start, spec.working_days, start, start, 1)?;
        }
        if let Some(m) = spec.assignee {
            if !self.roster()?.file_members(&file, now_ms()).contains(&m) {
                return Err(ClientError::NotAllowed(
                    "the assignee has no access to this customer file".into(),
                ));
            }
        }
        let record = RecordId::random(&mut OsRng);
        let me = self.id.member.to_string();
        let assignee = spec.assignee.map_or(me.clone(), |m| m.to_string());
        let mut edits = vec![
            ("title".to_owned(), json!(spec.title)),
            ("status".to_owned(), json!("open")),
            ("author".to_owned(), json!(me)),
            ("assignee".to_owned(), json!(assignee)),
            ("created_ms".to_owned(), json!(now_ms())),
            ("rolling".to_owned(), json!(spec.rolling)),
            ("working_days".to_owned(), json!(spec.working_days)),
        ];
        if let Some(d) = spec.due.or(spec.rrule.as_ref().map(|_| today)) {
            edits.push(("due".into(), json!(d.to_string())));
        }
        if let Some(r) = &spec.rrule {
            edits.push(("rrule".into(), json!(r)));
        }
        if let Some(t) = &spec.template {
            edits.push(("template".into(), json!(t)));
        }
        if !spec.checklist.is_empty() {
            let items: Vec<Value> = spec
                .checklist
                .iter()
                .map(|t| json!({ "text": t, "done": false }))
                .collect();
            edits.push(("checklist".into(), Value::Array(items)));
        }
        edits.push(history("created", &me, None));
        self.edit_item(file, record, "task", edits).await?;
        Ok(record)
    }

    /// Resolves a task by its id or a unique prefix of it (at least 6 hex digits).
    pub fn resolve_task(&self, id_or_prefix: &str) -> Result<(FileId, RecordId)> {
        self.resolve_item("task", id_or_prefix)
    }

    /// Resolves a work item of `kind` by id or unique prefix (6+ hex digits).
    fn resolve_item(&self, kind: &str, id_or_prefix: &str) -> Result<(FileId, RecordId)> {
        let want = id_or_prefix.to_ascii_lowercase();
        if want.len() < 6 {
            return Err(ClientError::Invalid(format!(
                "give the {kind} id, or at least its first 6 hex digits"
            )));
        }
        let hits: Vec<WorkRow> = self
            .store
            .works(kind, None)?
            .into_iter()
            .filter(|r| hex::encode(r.record).starts_with(&want))
            .collect();
        match hits.as_slice() {
            [one] => Ok((FileId(one.file), RecordId(one.record))),
            [] => Err(ClientError::NotFound(format!(
                "no {kind} {id_or_prefix:?} (see `ledgerline {}`)",
                match kind {
                    "task" => "task list",
                    "offer" => "offer list LEAD",
                    _ => "cal agenda",
                }
            ))),
            _ => Err(ClientError::Invalid(format!(
                "several items start with {id_or_prefix:?}: give more digits"
            ))),
        }
    }

    /// Marks a task done; for a recurring task, its current occurrence (the next one
    /// stays open).
    pub async fn task_done(&mut self, file: FileId, task: RecordId) -> Result<()> {
        let (_, f) = self.task(file, task)?;
        let me = self.id.member.to_string();
        let mut edits = Vec::new();
        match (
            opt_text(f.get("rrule")),
            self.task_view(file, task, &f)?.due,
        ) {
            (Some(_), Some(due)) => {
                edits.push(("done_through".to_owned(), json!(due.to_string())));
                edits.push(history(&format!("done {due}"), &me, None));
            }
            _ => {
                edits.push(("status".to_owned(), json!("done")));
                edits.push(history("done", &me, None));
            }
        }
        self.edit_item(file, task, "task", edits).await.map(|_| ())
    }

    /// Delegates a task to `to` (who must have access to its file); it waits for them
    /// to accept or return it.
    pub async fn task_delegate(
        &mut self,
        file: FileId,
        task: RecordId,
        to: MemberId,
    ) -> Result<()> {
        self.task(file, task)?;
        if !self.roster()?.file_members(&file, now_ms()).contains(&to) {
            return Err(ClientError::NotAllowed(
                "they have no access to this customer file".into(),
            ));
        }
        let me = self.id.member.to_string();
        self.edit_item(
            file,
            task,
            "task",
            vec![
                ("assignee".into(), json!(to.to_string())),
                ("delegated_by".into(), json!(me)),
                ("delegation".into(), json!("pending")),
                history(&format!("delegated to {to}"), &me, None),
            ],
        )
        .await
        .map(|_| ())
    }

    /// The assignee accepts a delegated task, or returns it (to whoever delegated it)
    /// with a comment.
    pub async fn task_answer(
        &mut self,
        file: FileId,
        task: RecordId,
        accept: bool,
        comment: Option<&str>,
    ) -> Result<()> {
        let (_, f) = self.task(file, task)?;
        let me = self.id.member.to_string();
        if f.get("assignee") != &json!(me) || f.get("delegation") != &json!("pending") {
            return Err(ClientError::NotAllowed(
                "only the member a task was delegated to answers it, once".into(),
            ));
        }
        let mut edits = vec![(
            "delegation".to_owned(),
            json!(if accept { "accepted" } else { "returned" }),
        )];
        if !accept {
            let back = f.get("delegated_by").clone();
            edits.push(("assignee".into(), back));
        }
        if let Some(c) = comment {
            edits.push(("comment".into(), json!(c)));
        }
        edits.push(history(
            if accept { "accepted" } else { "returned" },
            &me,
            comment,
        ));
        self.edit_item(file, task, "task", edits).await.map(|_| ())
    }

    /// Ticks (or unticks) checklist item `index` of a task.
    pub async fn task_check(
        &mut self,
        file: FileId,
        task: RecordId,
        index: usize,
        done: bool,
    ) -> Result<()> {
        let (_, f) = self.task(file, task)?;
        let mut list = f.get("checklist").as_array().cloned().unwrap_or_default();
        let item = list
            .get_mut(index)
            .ok_or_else(|| ClientError::NotFound(format!("no checklist item {}", index + 1)))?;
        match item.as_object_mut() {
            Some(o) => {
                o.insert("done".into(), json!(done));
            }
            None => {
                return Err(ClientError::Integrity(
                    "a checklist item is not an object".into(),
                ))
            }
        }
        self.edit_item(
            file,
            task,
            "task",
            vec![("checklist".into(), Value::Array(list))],
        )
        .await
        .map(|_| ())
    }

    /// Attaches a document of the task's file (by name or id) to the task; one field per
    /// attachment, so two devices attaching at once never collide.
    pub async fn task_attach(
        &mut self,
        file: FileId,
        task: RecordId,
        document: &str,
    ) -> Result<()> {
        self.task(file, task)?;
        let id = self.resolve_document(file, document)?;
        let name = self
            .documents(file)?
            .into_iter()
            .find(|d| d.document == id)
            .map(|d| d.name)
            .unwrap_or_default();
        let me = self.id.member.to_string();
        self.edit_item(
            file,
            task,
            "task",
            vec![
                (format!("a:{id}"), json!(name)),
                history(&format!("attached {name}"), &me, None),
            ],
        )
        .await
        .map(|_| ())
    }

    fn task(&self, file: FileId, task: RecordId) -> Result<(WorkRow, Fields)> {
        match self.item(file, task)? {
            Some((row, f)) if row.kind == "task" => Ok((row, f)),
            _ => Err(ClientError::NotFound(
                "no such task here (run `ledgerline sync`)".into(),
            )),
        }
    }

    fn task_view(&self, file: FileId, id: RecordId, f: &Fields) -> Result<TaskView> {
        let today = today();
        let rrule = opt_text(f.get("rrule"));
        let working_days = f.get("working_days").as_bool().unwrap_or(false);
        let mut due = day_of(f.get("due"));
        if let (Some(rule), Some(start)) = (&rrule, due) {
            // The next occurrence after the last one done.
            let after = day_of(f.get("done_through"))
                .and_then(|d| d.succ_opt())
                .unwrap_or(start);
            let horizon = after
                .checked_add_days(chrono::Days::new(800))
                .unwrap_or(after);
            due = expand(rule, start, working_days, after, horizon, 1)?
                .into_iter()
                .next();
        }
        let status = opt_text(f.get("status")).unwrap_or_else(|| "open".into());
        let rolling = f.get("rolling").as_bool().unwrap_or(false);
        let (shows_on, rolled_days) = match due {
            Some(d) if rolling && status == "open" => {
                let (on, n) = rolled(d, today);
                (Some(on), n)
            }
            other => (other, 0),
        };
        let mut history: Vec<(u64, Option<MemberId>, String, Option<String>)> = f
            .fields
            .iter()
            .filter(|(k, _)| k.starts_with("h:"))
            .map(|(_, h)| {
                (
                    h.at.ms,
                    member_of(at(&h.v, "by")),
                    opt_text(at(&h.v, "what")).unwrap_or_default(),
                    opt_text(at(&h.v, "comment")),
                )
            })
            .collect();
        history.sort_by_key(|h| h.0);
        Ok(TaskView {
            id: id.to_string(),
            file,
            file_name: self.local.files.get(&file).and_then(|s| s.name.clone()),
            title: opt_text(f.get("title")).unwrap_or_default(),
            status,
            assignee: member_of(f.get("assignee")),
            delegated_by: member_of(f.get("delegated_by")),
            delegation: opt_text(f.get("delegation")),
            comment: opt_text(f.get("comment")),
            due,
            rrule,
            rolling,
            rolled_days,
            shows_on,
            checklist: f
                .get("checklist")
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|i| {
                            (
                                opt_text(at(i, "text")).unwrap_or_default(),
                                at(i, "done").as_bool().unwrap_or(false),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            template: opt_text(f.get("template")),
            attachments: f
                .fields
                .iter()
                .filter(|(k, v)| k.starts_with("a:") && !v.v.is_null())
                .map(|(k, v)| {
                    (
                        k.trim_start_matches("a:").to_owned(),
                        opt_text(&v.v).unwrap_or_default(),
                    )
                })
                .collect(),
            history,
            conflicts: f.open_conflicts(),
        })
    }

    /// Tasks this member can see: in `file`, or every file; `mine` keeps those assigned to
    /// this member or to a member they cover for (absence cover). By shown day, then title.
    pub fn tasks(&self, file: Option<FileId>, mine: bool) -> Result<Vec<TaskView>> {
        let visible = self.roster()?.files_of(&self.id.member, now_ms());
        let mut me = vec![self.id.member];
        me.extend(self.covering_for(self.id.member, now_ms())?);
        let mut out = Vec::new();
        for row in self
            .store
            .works("task", file.as_ref().map(|f| f.as_bytes()))?
        {
            let f = FileId(row.file);
            if !visible.contains(&f) {
                continue;
            }
            let fields = current(&row)?;
            let view = self.task_view(f, RecordId(row.record), &fields)?;
            if mine && !view.assignee.is_some_and(|a| me.contains(&a)) {
                continue;
            }
            out.push(view);
        }
        out.sort_by(|a, b| (a.shows_on, &a.title).cmp(&(b.shows_on, &b.title)));
        Ok(out)
    }

    /// The firm's deadline templates.
    pub fn templates(&self) -> Result<Vec<DeadlineTemplate>> {
        let mut all = builtin();
        for (_, f) in self.firm_templates()? {
            let t = DeadlineTemplate {
                id: opt_text(f.get("id")).unwrap_or_default(),
                title_pl: opt_text(f.get("title_pl")).unwrap_or_default(),
                title_en: opt_text(f.get("title_en")).unwrap_or_default(),
                rrule: opt_text(f.get("rrule")).unwrap_or_default(),
                note: opt_text(f.get("note")).unwrap_or_default(),
                source: "firm".into(),
            };
            match all.iter_mut().find(|b| b.id == t.id) {
                Some(b) => *b = t,
                None => all.push(t),
            }
        }
        Ok(all)
    }

    /// The firm's own templates (records of the office file), by record.
    fn firm_templates(&self) -> Result<Vec<(RecordId, Fields)>> {
        let Some(office) = self.office_file()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in self.store.works("template", Some(office.as_bytes()))? {
            out.push((RecordId(row.record), current(&row)?));
        }
        Ok(out)
    }

    /// Adds a firm template, or changes one (a built-in one too: the firm's version wins),
    /// kept in the office file (admins).
    pub async fn template_set(&mut self, t: &DeadlineTemplate) -> Result<()> {
        self.require_admin()?;
        if t.id.is_empty()
            || !t
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(declined(
                "template_id",
                "a template id is lowercase letters, digits and dashes (e.g. zus-15)",
            ));
        }
        if t.title_pl.trim().is_empty() {
            return Err(declined("title_needed", "a template needs a title"));
        }
        // The rule must give deadlines: a year of them is checked before anything is kept.
        let start = today();
        let year = start
            .checked_add_days(chrono::Days::new(366))
            .unwrap_or(start);
        if t.deadlines(start, year)
            .map_err(|e| ClientError::Invalid(e.to_string()))?
            .is_empty()
        {
            return Err(declined(
                "rule_no_deadline",
                "this rule gives no deadline in the next year",
            ));
        }
        let office = self.ensure_office().await?;
        let record = self
            .firm_templates()?
            .into_iter()
            .find(|(_, f)| f.get("id") == &json!(t.id))
            .map(|(r, _)| r)
            .unwrap_or_else(|| RecordId::random(&mut OsRng));
        self.edit_item(
            office,
            record,
            "template",
            vec![
                ("id".into(), json!(t.id)),
                ("title_pl".into(), json!(t.title_pl)),
                ("title_en".into(), json!(t.title_en)),
                ("rrule".into(), json!(t.rrule)),
                ("note".into(), json!(t.note)),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Makes an offer (status `draft`) in a lead's or customer's file.
    pub async fn offer_add(
        &mut self,
        file: FileId,
        lines: Vec<OfferLine>,
        valid_until: NaiveDate,
    ) -> Result<RecordId> {
        if lines.is_empty() || lines.len() > 100 {
            return Err(ClientError::Invalid(
                "an offer has 1 to 100 services".into(),
            ));
        }
        if valid_until < today() {
            return Err(declined(
                "offer_past",
                "an offer's validity cannot end in the past",
            ));
        }
        if self.item(file, CUSTOMER_CARD)?.is_none() {
            return Err(ClientError::NotFound(
                "offers are made to a lead or a customer (this file has no card)".into(),
            ));
        }
        let record = RecordId::random(&mut OsRng);
        self.edit_item(
            file,
            record,
            "offer",
            vec![
                ("lines".into(), json!(lines)),
                ("valid_until".into(), json!(valid_until.to_string())),
                ("status".into(), json!("draft")),
                ("author".into(), json!(self.id.member.to_string())),
                ("created_ms".into(), json!(now_ms())),
            ],
        )
        .await?;
        Ok(record)
    }

    /// The offers of a file, newest first.
    pub fn offers(&self, file: FileId) -> Result<Vec<OfferView>> {
        let today = today();
        let mut out = Vec::new();
        for row in self.store.works("offer", Some(file.as_bytes()))? {
            let f = current(&row)?;
            let lines: Vec<OfferLine> =
                serde_json::from_value(f.get("lines").clone()).unwrap_or_default();
            let valid_until = day_of(f.get("valid_until"));
            let status = opt_text(f.get("status")).unwrap_or_else(|| "draft".into());
            out.push(OfferView {
                id: RecordId(row.record),
                file,
                totals: totals(&lines),
                line_amounts: lines.iter().map(line_amounts).collect(),
                lines,
                expired: status == "sent" && valid_until.is_some_and(|d| d < today),
                valid_until,
                status,
                author: member_of(f.get("author")),
                created_ms: f.get("created_ms").as_u64().unwrap_or(0),
                pdf: opt_text(f.get("pdf")).and_then(|d| d.parse().ok()),
            });
        }
        out.sort_by_key(|o| std::cmp::Reverse(o.created_ms));
        Ok(out)
    }

    /// Resolves an offer by id or unique prefix (6+ hex digits).
    pub fn resolve_offer(&self, id_or_prefix: &str) -> Result<(FileId, RecordId)> {
        self.resolve_item("offer", id_or_prefix)
    }

    /// An offer rendered to PDF in `lang`: the name it is stored under and its bytes
    /// (`protocol-spec/work.md`, "Offer document").
    pub fn offer_pdf(
        &self,
        file: FileId,
        offer: RecordId,
        lang: Lang,
    ) -> Result<(String, Zeroizing<Vec<u8>>)> {
        self.render_offer(&self.offer(file, offer)?, lang)
    }

    /// One offer of a file.
    pub fn offer(&self, file: FileId, offer: RecordId) -> Result<OfferView> {
        self.offers(file)?
            .into_iter()
            .find(|o| o.id == offer)
            .ok_or_else(|| ClientError::NotFound("no such offer in this file".into()))
    }

    fn render_offer(&self, view: &OfferView, lang: Lang) -> Result<(String, Zeroizing<Vec<u8>>)> {
        let file = view.file;
        let (_, card) = self
            .item(file, CUSTOMER_CARD)?
            .ok_or_else(|| ClientError::NotFound("this file has no card".into()))?;
        let customer = opt_text(card.get("name")).unwrap_or_default();
        let nip = opt_text(card.get("nip"));
        let firm = self.firm_name().unwrap_or_default();
        let number = offer_number(view.id);
        let issued = i64::try_from(view.created_ms)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.with_timezone(&DEFAULT_ZONE).date_naive())
            .unwrap_or_else(today);
        let bytes = offer_pdf::render(&OfferDocument {
            lang,
            firm: &firm,
            customer: &customer,
            nip: nip.as_deref(),
            number: &number,
            issued,
            valid_until: view.valid_until.unwrap_or(issued),
            lines: &view.lines,
        })
        .map_err(ClientError::Invalid)?;
        Ok((offer_pdf::file_name(lang, &number), Zeroizing::new(bytes)))
    }

    /// Sends an offer: renders it to PDF in `lang`, stores the PDF encrypted in the file
    /// (once: a retry after a failure reuses it) and marks the offer `sent`. Returns the
    /// stored document.
    pub async fn offer_send(
        &mut self,
        file: FileId,
        offer: RecordId,
        lang: Lang,
    ) -> Result<DocumentId> {
        let view = self.offer(file, offer)?;
        if view.status != "draft" {
            return Err(ClientError::Invalid(format!(
                "an offer that is {} cannot become sent",
                view.status
            )));
        }
        // Stored already: by the offer's own record, or — when a crash came between the
        // upload (which `sync` finished) and that record — by its name: rendering is
        // deterministic, so the same offer and language gave the same document.
        let name = offer_pdf::file_name(lang, &offer_number(offer));
        let docs = self.documents(file)?;
        let stored = view
            .pdf
            .filter(|d| docs.iter().any(|m| m.document == *d))
            .or_else(|| docs.iter().find(|m| m.name == name).map(|m| m.document));
        let pdf = match stored {
            Some(d) => d,
            None => {
                let (name, bytes) = self.render_offer(&view, lang)?;
                let year = super::this_year();
                self.upload_bytes(file, &name, &bytes, year, std::sync::Arc::new(|_, _, _| {}))
                    .await?
                    .document
            }
        };
        if view.pdf != Some(pdf) {
            self.edit_item(file, offer, "offer", vec![("pdf".into(), json!(pdf))])
                .await?;
        }
        self.offer_status(file, offer, "sent").await?;
        Ok(pdf)
    }

    /// Moves an offer on: `draft` → `sent` (a lead in stage new or contacted moves to
    /// `offer`) → `accepted` (a lead becomes a customer, the offer staying in its file) or
    /// `rejected`; a draft may be rejected too. An expired offer is not accepted.
    /// [`Profile::offer_send`] sends an offer with its PDF.
    pub async fn offer_status(&mut self, file: FileId, offer: RecordId, to: &str) -> Result<()> {
        let view = self.offer(file, offer)?;
        let allowed = matches!(
            (view.status.as_str(), to),
            ("draft", "sent") | ("draft", "rejected") | ("sent", "accepted") | ("sent", "rejected")
        );
        if !allowed {
            return Err(ClientError::Invalid(format!(
                "an offer that is {} cannot become {to}",
                view.status
            )));
        }
        if to == "accepted" && view.expired {
            return Err(declined(
                "offer_expired",
                "this offer's validity has passed: make a new one",
            ));
        }
        self.edit_item(
            file,
            offer,
            "offer",
            vec![
                ("status".into(), json!(to)),
                (format!("{to}_ms"), json!(now_ms())),
            ],
        )
        .await?;
        let card = self.item(file, CUSTOMER_CARD)?.map(|(_, c)| c);
        let lead = card
            .as_ref()
            .is_some_and(|c| c.get("kind") == &json!("lead"));
        let stage = card.as_ref().and_then(|c| opt_text(c.get("stage")));
        if lead && to == "sent" && matches!(stage.as_deref(), Some("new" | "contacted")) {
            self.lead_stage(file, "offer").await?;
        }
        if lead && to == "accepted" {
            self.lead_convert(file).await?;
        }
        Ok(())
    }

    /// The reply templates this member sees: the firm's and their own (their own first
    /// where both have a name), by name.
    pub fn reply_templates(&self) -> Result<Vec<ReplyTemplate>> {
        let mut out: Vec<ReplyTemplate> = Vec::new();
        for (_, f) in self.reply_rows()? {
            if f.get("deleted") == &json!(true) {
                continue;
            }
            let owner = member_of(f.get("owner"));
            if owner.is_some_and(|o| o != self.id.member) {
                continue;
            }
            let t = ReplyTemplate {
                name: opt_text(f.get("name")).unwrap_or_default(),
                body: opt_text(f.get("body")).unwrap_or_default(),
                personal: owner.is_some(),
            };
            match out.iter_mut().find(|o| o.name == t.name) {
                Some(o) if t.personal => *o = t,
                Some(_) => {}
                None => out.push(t),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn reply_rows(&self) -> Result<Vec<(RecordId, Fields)>> {
        let Some(office) = self.office_file()? else {
            return Ok(Vec::new());
        };
        self.store
            .works("reply", Some(office.as_bytes()))?
            .iter()
            .map(|row| Ok((RecordId(row.record), current(row)?)))
            .collect()
    }

    /// The record of the firm's (`personal` false) or this member's template `name`.
    fn reply_record(&self, name: &str, personal: bool) -> Result<Option<RecordId>> {
        let owner = personal.then(|| json!(self.id.member.to_string()));
        Ok(self
            .reply_rows()?
            .into_iter()
            .find(|(_, f)| {
                f.get("name") == &json!(name)
                    && owner
                        .as_ref()
                        .map_or(f.get("owner").is_null(), |o| f.get("owner") == o)
            })
            .map(|(r, _)| r))
    }

    /// Adds or changes a reply template, kept encrypted in the office file: the firm's
    /// (admins) or this member's own. A personal template is shown only to its owner; like
    /// everything in the office file it is readable by the firm's staff devices, so it is
    /// for wording, not secrets.
    pub async fn reply_template_set(
        &mut self,
        name: &str,
        body: &str,
        personal: bool,
    ) -> Result<()> {
        if !personal {
            self.require_admin()?;
        }
        let name = name.trim();
        replies::check(name, body).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let office = if personal {
            self.office_file()?.ok_or_else(|| {
                ClientError::NotAllowed(
                    "the firm has no office file yet: an admin makes it with the first firm template or office task".into(),
                )
            })?
        } else {
            self.ensure_office().await?
        };
        let record = self
            .reply_record(name, personal)?
            .unwrap_or_else(|| RecordId::random(&mut OsRng));
        let owner = if personal {
            json!(self.id.member.to_string())
        } else {
            Value::Null
        };
        self.edit_item(
            office,
            record,
            "reply",
            vec![
                ("name".into(), json!(name)),
                ("body".into(), json!(body)),
                ("owner".into(), owner),
                ("deleted".into(), json!(false)),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Deletes the firm's (admins) or this member's template `name`.
    pub async fn reply_template_delete(&mut self, name: &str, personal: bool) -> Result<()> {
        if !personal {
            self.require_admin()?;
        }
        let record = self.reply_record(name.trim(), personal)?.ok_or_else(|| {
            ClientError::NotFound(format!(
                "no {} template {name:?}",
                if personal { "personal" } else { "firm" }
            ))
        })?;
        let office = self
            .office_file()?
            .ok_or_else(|| ClientError::NotFound("no office file".into()))?;
        self.edit_item(
            office,
            record,
            "reply",
            vec![("deleted".into(), json!(true))],
        )
        .await
        .map(|_| ())
    }

    /// The text of template `name` for a customer file: `{klient}` is the file's name;
    /// the deadline and amount are the sender's.
    pub fn render_reply(
        &self,
        name: &str,
        file: Option<FileId>,
        deadline: Option<NaiveDate>,
        amount: Option<&str>,
    ) -> Result<String> {
        let t = self
            .reply_templates()?
            .into_iter()
            .find(|t| t.name == name.trim())
            .ok_or_else(|| {
                ClientError::NotFound(format!(
                    "no reply template {name:?} (see `ledgerline reply list`)"
                ))
            })?;
        let values = ReplyValues {
            customer: file.and_then(|f| self.local.files.get(&f).and_then(|s| s.name.clone())),
            deadline,
            amount_grosze: amount
                .map(replies::parse_amount)
                .transpose()
                .map_err(|e| ClientError::Invalid(e.to_string()))?,
        };
        replies::render(&t.body, &values).map_err(|e| ClientError::Invalid(e.to_string()))
    }

    /// Applies a deadline template to a customer file: its recurring task, due on the
    /// template's days moved to working days.
    pub async fn template_apply(&mut self, template: &str, file: FileId) -> Result<RecordId> {
        let t = self
            .templates()?
            .into_iter()
            .find(|t| t.id == template)
            .ok_or_else(|| {
                ClientError::NotFound(format!(
                    "no template {template:?} (see `ledgerline template list`)"
                ))
            })?;
        self.task_add(
            file,
            &TaskSpec {
                title: t.title_pl.clone(),
                rrule: Some(t.rrule.clone()),
                working_days: true,
                template: Some(t.id.clone()),
                ..TaskSpec::default()
            },
        )
        .await
    }

    // ------------------------------------------------------------------ calendar

    /// Task deadlines from `from` to `to` (inclusive), in Europe/Warsaw: every occurrence
    /// of recurring tasks not yet done, one-off tasks not done, rolling tasks on the day
    /// they show.
    pub fn agenda(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<AgendaItem>> {
        let mut out = Vec::new();
        for t in self.tasks(None, false)? {
            let push = |out: &mut Vec<AgendaItem>, date: NaiveDate, rolled_days: u32| {
                out.push(AgendaItem {
                    date,
                    time: None,
                    title: t.title.clone(),
                    kind: "task".into(),
                    id: t.id.clone(),
                    file_name: t.file_name.clone(),
                    rolled_days,
                })
            };
            if t.status != "open" {
                continue;
            }
            match (&t.rrule, t.due) {
                (Some(rule), Some(next)) => {
                    let (_, fields) =
                        self.task(t.file, t.id.parse().unwrap_or(RecordId([0; 16])))?;
                    let start = day_of(fields.get("due")).unwrap_or(next);
                    let working = fields.get("working_days").as_bool().unwrap_or(false);
                    for d in expand(rule, start, working, next.max(from), to, 500)? {
                        push(&mut out, d, 0);
                    }
                }
                _ => {
                    if let Some(d) = t.shows_on.filter(|d| *d >= from && *d <= to) {
                        push(&mut out, d, t.rolled_days);
                    }
                }
            }
        }
        for (file, id, f) in self.events()? {
            for start in event_occurrences(&f, from, to, 500)? {
                out.push(AgendaItem {
                    date: start.date(),
                    time: Some(start.format("%H:%M").to_string()),
                    title: opt_text(f.get("title")).unwrap_or_default(),
                    kind: "event".into(),
                    id: id.to_string(),
                    file_name: self.local.files.get(&file).and_then(|s| s.name.clone()),
                    rolled_days: 0,
                });
            }
        }
        out.sort_by(|a, b| (a.date, &a.time, &a.title).cmp(&(b.date, &b.time, &b.title)));
        Ok(out)
    }

    /// Adds a calendar event to a customer file.
    pub async fn event_add(&mut self, file: FileId, spec: &EventSpec) -> Result<RecordId> {
        if spec.title.trim().is_empty() {
            return Err(declined("title_needed", "an event needs a title"));
        }
        let end = spec.end.unwrap_or(spec.start + chrono::Duration::hours(1));
        if end <= spec.start {
            return Err(declined("event_order", "an event ends after it starts"));
        }
        if DEFAULT_ZONE
            .from_local_datetime(&spec.start)
            .earliest()
            .is_none()
        {
            return Err(ClientError::Invalid(
                "the start does not exist in Europe/Warsaw (the clocks skip it)".into(),
            ));
        }
        let record = RecordId::random(&mut OsRng);
        let mut edits = vec![
            ("title".to_owned(), json!(spec.title)),
            ("start".to_owned(), json!(local_text(spec.start))),
            ("end".to_owned(), json!(local_text(end))),
            ("author".to_owned(), json!(self.id.member.to_string())),
            ("created_ms".to_owned(), json!(now_ms())),
        ];
        if let Some(r) = &spec.rrule {
            occurrences(
                r,
                spec.start,
                DEFAULT_ZONE,
                at_noon(spec.start.date()),
                at_noon(spec.start.date()),
                1,
            )
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
            edits.push(("rrule".into(), json!(r)));
        }
        if let Some(l) = &spec.location {
            edits.push(("location".into(), json!(l)));
        }
        self.edit_item(file, record, "event", edits).await?;
        Ok(record)
    }

    /// Cancels one occurrence of a recurring event (the one on `day`).
    pub async fn event_except(
        &mut self,
        file: FileId,
        event: RecordId,
        day: NaiveDate,
    ) -> Result<()> {
        let Some((row, f)) = self.item(file, event)? else {
            return Err(ClientError::NotFound("no such event here".into()));
        };
        if row.kind != "event" {
            return Err(ClientError::NotFound("no such event here".into()));
        }
        if !event_occurrences(&f, day, day, 1)?
            .iter()
            .any(|d| d.date() == day)
        {
            return Err(ClientError::NotFound(format!(
                "the event has no occurrence on {day}"
            )));
        }
        // One field per exception: two devices cancelling two days never collide.
        self.edit_item(
            file,
            event,
            "event",
            vec![(format!("x:{day}"), json!(true))],
        )
        .await
        .map(|_| ())
    }

    /// Resolves an event by id or unique prefix (6+ hex digits).
    pub fn resolve_event(&self, id_or_prefix: &str) -> Result<(FileId, RecordId)> {
        self.resolve_item("event", id_or_prefix)
    }

    /// Events of the files this member can see now.
    fn events(&self) -> Result<Vec<(FileId, RecordId, Fields)>> {
        let visible = self.roster()?.files_of(&self.id.member, now_ms());
        let mut out = Vec::new();
        for row in self.store.works("event", None)? {
            let file = FileId(row.file);
            if !visible.contains(&file) {
                continue;
            }
            out.push((file, RecordId(row.record), current(&row)?));
        }
        Ok(out)
    }

    /// The calendar as iCalendar (RFC 5545): events with their recurrence and
    /// exceptions in Europe/Warsaw (with its VTIMEZONE), and the task deadlines of the
    /// next 400 days as all-day events.
    pub fn ics(&self) -> Result<String> {
        use icalendar::{Calendar, CalendarDateTime, Component, Event, EventLike};
        let tzid = DEFAULT_ZONE.name().to_owned();
        let mut cal = Calendar::new();
        cal.name("Ledgerline");
        let stamp = chrono::Utc::now();
        let local = |t: chrono::NaiveDateTime| CalendarDateTime::WithTimezone {
            date_time: t,
            tzid: tzid.clone(),
        };
        for (file, id, f) in self.events()? {
            let (Some(start), Some(end)) = (local_of(f.get("start")), local_of(f.get("end")))
            else {
                continue;
            };
            let mut e = Event::new();
            e.uid(&format!("{id}@ledgerline"))
                .timestamp(stamp)
                .summary(&opt_text(f.get("title")).unwrap_or_default())
                .starts(local(start))
                .ends(local(end));
            if let Some(l) = opt_text(f.get("location")) {
                e.location(&l);
            }
            if let Some(name) = self.local.files.get(&file).and_then(|s| s.name.clone()) {
                e.description(&name);
            }
            if let Some(r) = opt_text(f.get("rrule")) {
                e.add_property("RRULE", r);
            }
            for day in exceptions(&f) {
                let at = day.and_time(start.time());
                e.append_multi_property(
                    icalendar::Property::new("EXDATE", at.format("%Y%m%dT%H%M%S").to_string())
                        .add_parameter("TZID", &tzid)
                        .done(),
                );
            }
            cal.push(e.done());
        }
        let today = today();
        let horizon = today
            .checked_add_days(chrono::Days::new(400))
            .unwrap_or(today);
        for item in self
            .agenda(today, horizon)?
            .into_iter()
            .filter(|i| i.kind == "task")
        {
            let mut e = Event::new();
            e.uid(&format!("{}-{}@ledgerline", item.id, item.date))
                .timestamp(stamp)
                .summary(&item.title)
                .all_day(item.date);
            if let Some(name) = &item.file_name {
                e.description(name);
            }
            cal.push(e.done());
        }
        let text = cal.done().to_string();
        // RFC 5545 § 3.2.19: every TZID used needs its VTIMEZONE.
        Ok(match text.find("BEGIN:VEVENT") {
            Some(at) => format!("{}{}{}", &text[..at], VTIMEZONE_WARSAW, &text[at..]),
            None => text,
        })
    }

    /// A customer's timeline: messages, notes, tasks and documents in time order, newest
    /// last; `before` (a cursor, `MS/KIND/REF` or `MS`) and `limit` page backwards.
    pub fn timeline(
        &self,
        file: FileId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>> {
        let mut items = Vec::new();
        // The staff room ("message") and the conversation with the customer's guests
        // ("conversation"), each message once.
        let rooms = [
            ("message", Conversation::File(file)),
            ("conversation", self.customer_conversation(file)),
        ];
        let mut messages = Vec::new();
        for (kind, conv) in rooms {
            messages.extend(self.conversation(conv)?.into_iter().map(|m| (kind, m)));
        }
        for (kind, m) in messages {
            if m.deleted || m.waiting_for_key {
                continue;
            }
            items.push(TimelineItem {
                at_ms: m.created_ms,
                kind: kind.into(),
                member: m.member,
                text: m.body.clone().unwrap_or_default(),
                title: m.body.clone().unwrap_or_default(),
                status: None,
                reference: m.seq.to_string(),
                cursor: String::new(),
            });
        }
        for kind in ["note", "task", "event"] {
            for row in self.store.works(kind, Some(file.as_bytes()))? {
                let f = current(&row)?;
                let text = if kind == "note" {
                    opt_text(f.get("text")).unwrap_or_default()
                } else if kind == "event" {
                    format!(
                        "{} ({})",
                        opt_text(f.get("title")).unwrap_or_default(),
                        opt_text(f.get("start"))
                            .unwrap_or_default()
                            .replace('T', " ")
                    )
                } else {
                    format!(
                        "{} [{}]",
                        opt_text(f.get("title")).unwrap_or_default(),
                        opt_text(f.get("status")).unwrap_or_default()
                    )
                };
                let (title, status) = if kind == "note" {
                    (opt_text(f.get("text")).unwrap_or_default(), None)
                } else {
                    (
                        opt_text(f.get("title")).unwrap_or_default(),
                        (kind == "task").then(|| opt_text(f.get("status")).unwrap_or_default()),
                    )
                };
                items.push(TimelineItem {
                    at_ms: f.get("created_ms").as_u64().unwrap_or(0),
                    kind: kind.into(),
                    member: member_of(f.get("author")),
                    text,
                    title,
                    status,
                    reference: RecordId(row.record).to_string(),
                    cursor: String::new(),
                });
            }
        }
        for row in self.store.works("mail", Some(file.as_bytes()))? {
            let f = current(&row)?;
            let (text, title) = super::mail::mail_line(&f);
            items.push(TimelineItem {
                at_ms: f.get("date_ms").as_u64().unwrap_or(0),
                kind: "mail".into(),
                member: member_of(f.get("author")),
                text,
                title,
                status: opt_text(f.get("category")),
                reference: RecordId(row.record).to_string(),
                cursor: String::new(),
            });
        }
        for row in self.store.works("invoice", Some(file.as_bytes()))? {
            let f = current(&row)?;
            let (text, title) = super::ksef::invoice_line(&f);
            items.push(TimelineItem {
                at_ms: f.get("created_ms").as_u64().unwrap_or(0),
                kind: "invoice".into(),
                member: member_of(f.get("author")),
                text,
                title,
                status: opt_text(f.get("direction")),
                reference: RecordId(row.record).to_string(),
                cursor: String::new(),
            });
        }
        for o in self.offers(file)? {
            let title = offer_title(&o.totals);
            items.push(TimelineItem {
                at_ms: o.created_ms,
                kind: "offer".into(),
                member: o.author,
                text: format!("{title} [{}]", o.status),
                title,
                status: Some(o.status),
                reference: o.id.to_string(),
                cursor: String::new(),
            });
        }
        for d in self.documents(file)? {
            items.push(TimelineItem {
                at_ms: d.uploaded_ms,
                kind: "document".into(),
                member: None,
                text: d.name.clone(),
                title: d.name.clone(),
                status: None,
                reference: d.document.to_string(),
                cursor: String::new(),
            });
        }
        items.sort_by(|a, b| {
            (a.at_ms, &a.kind, &a.reference).cmp(&(b.at_ms, &b.kind, &b.reference))
        });
        for i in &mut items {
            i.cursor = format!("{}/{}/{}", i.at_ms, i.kind, i.reference);
        }
        if let Some(b) = before {
            let (ms, rest) = b.split_once('/').unwrap_or((b, ""));
            let ms: u64 = ms.parse().map_err(|_| {
                ClientError::Invalid("a timeline cursor is MS or MS/KIND/REF".into())
            })?;
            let (kind, reference) = rest.split_once('/').unwrap_or((rest, ""));
            items.retain(|i| {
                (i.at_ms, i.kind.as_str(), i.reference.as_str()) < (ms, kind, reference)
            });
        }
        let skip = items.len().saturating_sub(limit);
        Ok(items.split_off(skip))
    }
}

/// Europe/Warsaw for iCalendar readers: CET, and CEST from the last Sunday of March to the
/// last Sunday of October (EU rules since 1996).
const VTIMEZONE_WARSAW: &str = "BEGIN:VTIMEZONE\r\nTZID:Europe/Warsaw\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

fn local_text(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn local_of(v: &Value) -> Option<chrono::NaiveDateTime> {
    v.as_str()
        .and_then(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").ok())
}

fn at_noon(d: NaiveDate) -> chrono::DateTime<chrono_tz::Tz> {
    let noon = NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default();
    DEFAULT_ZONE
        .from_local_datetime(&d.and_time(noon))
        .earliest()
        .unwrap_or_else(|| chrono::Utc::now().with_timezone(&DEFAULT_ZONE))
}

/// Days whose occurrence of an event is cancelled (`x:<day>` fields).
fn exceptions(f: &Fields) -> Vec<NaiveDate> {
    f.fields
        .iter()
        .filter(|(k, v)| k.starts_with("x:") && v.v == json!(true))
        .filter_map(|(k, _)| NaiveDate::parse_from_str(k.trim_start_matches("x:"), "%Y-%m-%d").ok())
        .collect()
}

/// Local start times of an event's occurrences on days `from` to `to` (inclusive),
/// exceptions left out.
fn event_occurrences(
    f: &Fields,
    from: NaiveDate,
    to: NaiveDate,
    limit: u16,
) -> Result<Vec<chrono::NaiveDateTime>> {
    let Some(start) = local_of(f.get("start")) else {
        return Ok(Vec::new());
    };
    let skip = exceptions(f);
    let starts: Vec<chrono::NaiveDateTime> = match opt_text(f.get("rrule")) {
        None => vec![start],
        Some(rule) => {
            let midnight = |d: NaiveDate| {
                DEFAULT_ZONE
                    .from_local_datetime(&d.and_time(NaiveTime::MIN))
                    .earliest()
            };
            let (Some(a), Some(b)) = (midnight(from), to.succ_opt().and_then(midnight)) else {
                return Ok(Vec::new());
            };
            occurrences(&rule, start, DEFAULT_ZONE, a, b, limit)
                .map_err(|e| ClientError::Invalid(e.to_string()))?
                .into_iter()
                .map(|t| t.naive_local())
                .collect()
        }
    };
    Ok(starts
        .into_iter()
        .filter(|t| t.date() >= from && t.date() <= to && !skip.contains(&t.date()))
        .collect())
}

/// A stored item text (`None`: empty) as its fields.
fn parse(text: &Option<String>) -> Result<Fields> {
    match text {
        Some(t) => serde_json::from_str::<ItemBody>(t)
            .map(|b| b.fields)
            .map_err(|e| ClientError::Integrity(format!("stored work item: {e}"))),
        None => Ok(Fields::default()),
    }
}

/// An offer in a line, as the timeline shows it (in Polish, as the offer itself is).
fn offer_title(t: &OfferTotals) -> String {
    use crate::work::replies::format_amount;
    let mut parts = Vec::new();
    if !t.monthly.rates.is_empty() {
        parts.push(format!(
            "{} netto miesięcznie",
            format_amount(t.monthly.total.net)
        ));
    }
    if !t.one_off.rates.is_empty() {
        parts.push(format!(
            "{} netto jednorazowo",
            format_amount(t.one_off.total.net)
        ));
    }
    parts.join(", ")
}

/// An item as it stands here: the pending edit, else the relay's version.
pub(super) fn current(row: &WorkRow) -> Result<Fields> {
    parse(if row.pending.is_some() {
        &row.pending
    } else {
        &row.body
    })
}

fn item_json(kind: &str, fields: &Fields) -> String {
    serde_json::to_string(&ItemBody {
        ty: "work".into(),
        kind: kind.to_owned(),
        fields: fields.clone(),
    })
    .unwrap_or_default()
}

/// A status-history entry as its own field (`h:<ms>:<random>`): entries two devices add
/// at once are two fields and never collide.
fn history(what: &str, by: &str, comment: Option<&str>) -> (String, Value) {
    let mut tag = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut tag);
    (
        format!("h:{}:{}", now_ms(), hex::encode(tag)),
        json!({ "what": what, "by": by, "comment": comment }),
    )
}

/// An offer's number as people quote it: the first eight hex digits of its id (which
/// `offer send|accept|reject` accept as a prefix).
pub fn offer_number(offer: RecordId) -> String {
    offer.to_string().chars().take(8).collect()
}

/// Today in Europe/Warsaw.
pub fn today() -> NaiveDate {
    chrono::Utc::now().with_timezone(&DEFAULT_ZONE).date_naive()
}

/// Due days of a recurring rule first due on `start`, from `from` to `to` (inclusive),
/// moved to working days when `working_days` says so; at most `limit`.
fn expand(
    rule: &str,
    start: NaiveDate,
    working_days: bool,
    from: NaiveDate,
    to: NaiveDate,
    limit: u16,
) -> Result<Vec<NaiveDate>> {
    Ok(due_days(rule, start, working_days, from, to, limit)
        .map_err(|e| ClientError::Invalid(e.to_string()))?
        .into_iter()
        .map(|(_, due)| due)
        .collect())
}
