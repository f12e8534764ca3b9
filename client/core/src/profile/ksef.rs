//! KSeF intake on this device (`protocol-spec/ksef.md`): each customer file holds its KSeF
//! token and environment in an encrypted `ksef` record; a sync logs in to KSeF as that
//! customer, lists the invoices stored since its cursor (never past the high-water mark)
//! and keeps each one as a document (the FA(3) XML, byte for byte) plus an `invoice` record
//! of what it says. Purchase invoices due soon become tasks. The relay sees ciphertext only:
//! no token, no invoice, no NIP.

use super::work::{current, opt_text, today, TaskSpec};
use super::{declined, now_ms, ClientError, Profile, Result};
use crate::ksef::api::{Environment, InvoiceMeta, KsefClient, KsefError, Session, Subject};
use crate::ksef::invoice::{self, Invoice};
use crate::ksef::number::parse_ksef_number;
use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use ledgerline_protocol::ids::{FileId, RecordId};
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Purchase invoices due within this many days (today included) become tasks.
pub const DUE_SOON_DAYS: i64 = 7;
/// The longest range one metadata query may span (KSeF allows three months).
const WINDOW_DAYS: i64 = 90;
/// The most pages one query may have: KSeF truncates a list at 10,000 records, 40 pages of
/// 250; a server that pages on past this is not believed.
const MAX_PAGES: u32 = 100;

/// A customer file's KSeF settings as lists show them (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct KsefView {
    /// The customer file.
    pub file: FileId,
    /// Its name.
    pub file_name: Option<String>,
    /// The context NIP.
    pub nip: String,
    /// `test`, `demo` or `prod`.
    pub environment: String,
    /// Invoices stored permanently from this day on are fetched.
    pub since: String,
    /// Fetched up to here: sales (`Subject1`) and purchases (`Subject2`).
    pub cursor_sales: Option<String>,
    /// See `cursor_sales`.
    pub cursor_purchases: Option<String>,
    /// Invoices in the file.
    pub invoices: usize,
}

/// One invoice of a customer file.
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceView {
    /// Record id.
    pub id: RecordId,
    /// The customer file.
    pub file: FileId,
    /// KSeF number.
    pub ksef_number: String,
    /// `sales` or `purchase` (from the customer's side).
    pub direction: String,
    /// What the XML says (absent when it could not be read).
    pub invoice: Option<Invoice>,
    /// The document holding the original XML.
    pub document: String,
    /// When KSeF stored it (RFC 3339).
    pub stored: String,
    /// What is wrong with it (unreadable, tampered, totals).
    pub warnings: Vec<String>,
    /// The payment task made for it.
    pub task: Option<String>,
}

/// What a sync did for one customer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KsefFileReport {
    /// The customer file.
    pub file: Option<FileId>,
    /// Its name.
    pub file_name: Option<String>,
    /// Context NIP.
    pub nip: String,
    /// New sales invoices.
    pub sales: usize,
    /// New purchase invoices.
    pub purchases: usize,
    /// Listed again and already in the file (skipped).
    pub known: usize,
    /// Invoices kept with a warning: (KSeF number, warning).
    pub warnings: Vec<(String, String)>,
    /// Payment tasks made.
    pub tasks: usize,
    /// `429`s waited out.
    pub waited: u32,
    /// Why this customer stopped early (the rest is fetched next time).
    pub stopped: Option<String>,
    /// Whether it stopped because KSeF refused the login (exit code 10 when alone).
    #[serde(skip)]
    pub refused: bool,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KsefReport {
    /// Per customer.
    pub files: Vec<KsefFileReport>,
}

/// The settings read from a file's `ksef` record.
struct Settings {
    record: RecordId,
    token: Zeroizing<String>,
    nip: String,
    env: Environment,
    since: NaiveDate,
    id_key: Zeroizing<Vec<u8>>,
    cursors: [Option<DateTime<Utc>>; 2],
}

const SUBJECTS: [(Subject, &str, usize); 2] = [
    (Subject::Subject1, "cursor_sales", 0),
    (Subject::Subject2, "cursor_purchases", 1),
];

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl From<KsefError> for ClientError {
    fn from(e: KsefError) -> Self {
        ClientError::Ksef(e)
    }
}

impl Profile {
    /// Sets a customer file's KSeF token (checked by logging in first), context NIP
    /// (the card's when `None`), environment and the first day to fetch from.
    pub async fn ksef_token_set(
        &mut self,
        file: FileId,
        token: &str,
        nip: Option<&str>,
        env: Environment,
        since: Option<NaiveDate>,
    ) -> Result<KsefView> {
        let token = token.trim();
        if token.is_empty() || token.len() > 1000 || token.chars().any(char::is_control) {
            return Err(declined("ksef_token", "that is not a KSeF token"));
        }
        let nip = match nip {
            Some(n) => {
                crate::work::ids::parse_nip(n).map_err(|e| declined("nip", e.to_string()))?
            }
            None => self
                .customers()?
                .into_iter()
                .find(|c| c.file == file)
                .and_then(|c| c.nip)
                .ok_or_else(|| {
                    declined(
                        "nip_needed",
                        "the customer's card has no NIP: give one with --nip",
                    )
                })?,
        };
        // A token that does not log in is not kept.
        let mut client = KsefClient::new(env)?;
        let session = client.login(&nip, token).await?;
        let old = self.ksef_settings(file)?;
        let record = old
            .as_ref()
            .map_or_else(|| RecordId::random(&mut OsRng), |s| s.record);
        let id_key = match &old {
            Some(s) => hex::encode(s.id_key.as_slice()),
            None => {
                let mut k = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(k.as_mut());
                hex::encode(k.as_ref())
            }
        };
        // A new context starts again from `since`; the same one keeps its cursors.
        let same = old.as_ref().is_some_and(|s| s.nip == nip && s.env == env);
        let since = since
            .or_else(|| old.as_ref().map(|s| s.since))
            .unwrap_or_else(|| default_since(today()));
        let mut edits = vec![
            ("token".to_owned(), json!(token)),
            ("nip".to_owned(), json!(nip)),
            ("environment".to_owned(), json!(env.as_str())),
            ("since".to_owned(), json!(since.to_string())),
            ("id_key".to_owned(), json!(id_key)),
            ("set_ms".to_owned(), json!(now_ms())),
            ("author".to_owned(), json!(self.id.member.to_string())),
        ];
        if !same {
            for (_, field, _) in SUBJECTS {
                edits.push((field.to_owned(), Value::Null));
            }
            self.store
                .forget_state_prefix(&format!("ksef-cursor:{file}:"))?;
        }
        match self.edit_item(file, record, "ksef", edits).await {
            Ok(_) | Err(ClientError::Queued(_)) => {}
            Err(e) => return Err(e),
        }
        self.keep_session(file, &session)?;
        self.ksef_view(file)?
            .ok_or_else(|| ClientError::Integrity("the KSeF settings were not kept".into()))
    }

    /// Removes a customer file's KSeF token (its invoices stay).
    pub async fn ksef_token_remove(&mut self, file: FileId) -> Result<()> {
        let Some(s) = self.ksef_settings(file)? else {
            return Err(ClientError::NotFound(
                "this customer file has no KSeF token".into(),
            ));
        };
        let edits = vec![
            ("token".to_owned(), Value::Null),
            ("removed".to_owned(), json!(true)),
            ("set_ms".to_owned(), json!(now_ms())),
        ];
        match self.edit_item(file, s.record, "ksef", edits).await {
            Ok(_) | Err(ClientError::Queued(_)) => {}
            Err(e) => return Err(e),
        }
        self.store.forget_state(&session_key(file))?;
        Ok(())
    }

    /// The files with a KSeF token, as lists show them.
    pub fn ksef_list(&self) -> Result<Vec<KsefView>> {
        let mut files: BTreeSet<FileId> = BTreeSet::new();
        for row in self.store.works("ksef", None)? {
            files.insert(FileId(row.file));
        }
        let mut out = Vec::new();
        for f in files {
            if let Some(v) = self.ksef_view(f)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn ksef_view(&self, file: FileId) -> Result<Option<KsefView>> {
        let Some(s) = self.ksef_settings(file)? else {
            return Ok(None);
        };
        let cursor = |i: usize| -> Result<Option<String>> {
            Ok(self.ksef_cursor(file, &s, i)?.map(rfc3339))
        };
        Ok(Some(KsefView {
            file,
            file_name: self.local.files.get(&file).and_then(|f| f.name.clone()),
            nip: s.nip.clone(),
            environment: s.env.as_str().into(),
            since: s.since.to_string(),
            cursor_sales: cursor(0)?,
            cursor_purchases: cursor(1)?,
            invoices: self.store.works("invoice", Some(file.as_bytes()))?.len(),
        }))
    }

    /// The file's current KSeF settings (the newest `ksef` record not removed).
    fn ksef_settings(&self, file: FileId) -> Result<Option<Settings>> {
        let mut best: Option<(u64, Settings)> = None;
        for row in self.store.works("ksef", Some(file.as_bytes()))? {
            let f = current(&row)?;
            if f.get("removed") == &json!(true) {
                continue;
            }
            let (Some(token), Some(nip), Some(env), Some(since), Some(key)) = (
                opt_text(f.get("token")),
                opt_text(f.get("nip")),
                opt_text(f.get("environment")).and_then(|e| Environment::parse(&e)),
                opt_text(f.get("since")).and_then(|d| d.parse::<NaiveDate>().ok()),
                opt_text(f.get("id_key")).and_then(|k| hex::decode(k).ok()),
            ) else {
                return Err(ClientError::Integrity(
                    "a KSeF settings record lacks a field".into(),
                ));
            };
            let set = f.get("set_ms").as_u64().unwrap_or(0);
            if best.as_ref().is_some_and(|(b, _)| *b >= set) {
                continue;
            }
            best = Some((
                set,
                Settings {
                    record: RecordId(row.record),
                    token: Zeroizing::new(token),
                    nip,
                    env,
                    since,
                    id_key: Zeroizing::new(key),
                    cursors: [
                        time_of(f.get("cursor_sales")),
                        time_of(f.get("cursor_purchases")),
                    ],
                },
            ));
        }
        Ok(best.map(|(_, s)| s))
    }

    /// Where to continue: the furthest of the file's shared cursor and this device's.
    fn ksef_cursor(&self, file: FileId, s: &Settings, i: usize) -> Result<Option<DateTime<Utc>>> {
        let local = self
            .store
            .state(&format!("ksef-cursor:{file}:{i}"))?
            .and_then(|t| time_of(&json!(t)));
        Ok(s.cursors.get(i).copied().flatten().max(local))
    }

    fn keep_session(&self, file: FileId, s: &Session) -> Result<()> {
        let text = Zeroizing::new(
            json!({
                "access": s.access_token(),
                "access_until": rfc3339(s.access_until),
                "refresh": s.refresh_token(),
                "refresh_until": rfc3339(s.refresh_until),
            })
            .to_string(),
        );
        self.store.put_state(&session_key(file), &text)?;
        Ok(())
    }

    fn kept_session(&self, file: FileId) -> Result<Option<Session>> {
        let Some(text) = self.store.state(&session_key(file))?.map(Zeroizing::new) else {
            return Ok(None);
        };
        #[derive(serde::Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
        struct Kept {
            access: String,
            #[zeroize(skip)]
            access_until: DateTime<Utc>,
            refresh: String,
            #[zeroize(skip)]
            refresh_until: DateTime<Utc>,
        }
        // Unreadable (an older layout): log in again.
        Ok(serde_json::from_str::<Kept>(&text)
            .ok()
            .map(|k| Session::from_parts(&k.access, k.access_until, &k.refresh, k.refresh_until)))
    }

    /// Fetches new invoices of `file` (every file with a token when `None`).
    pub async fn ksef_sync(
        &mut self,
        file: Option<FileId>,
        progress: &(dyn Fn(&str, u64, u64) + Send + Sync),
    ) -> Result<KsefReport> {
        let files: Vec<FileId> = match file {
            Some(f) => {
                if self.ksef_settings(f)?.is_none() {
                    return Err(ClientError::NotFound(
                        "this customer file has no KSeF token (`ledgerline ksef token set FILE`)"
                            .into(),
                    ));
                }
                vec![f]
            }
            None => self.ksef_list()?.into_iter().map(|v| v.file).collect(),
        };
        if files.is_empty() {
            return Err(ClientError::NotFound(
                "no customer file has a KSeF token (`ledgerline ksef token set FILE`)".into(),
            ));
        }
        let mut report = KsefReport::default();
        for f in files {
            let name = self
                .local
                .files
                .get(&f)
                .and_then(|x| x.name.clone())
                .unwrap_or_else(|| f.to_string());
            let r = self
                .ksef_sync_file(f, &|done, total| progress(&name, done, total))
                .await?;
            report.files.push(r);
        }
        Ok(report)
    }

    async fn ksef_sync_file(
        &mut self,
        file: FileId,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<KsefFileReport> {
        let Some(s) = self.ksef_settings(file)? else {
            return Err(ClientError::NotFound("no KSeF token".into()));
        };
        let mut report = KsefFileReport {
            file: Some(file),
            file_name: self.local.files.get(&file).and_then(|f| f.name.clone()),
            nip: s.nip.clone(),
            ..KsefFileReport::default()
        };
        let mut client = KsefClient::new(s.env)?;
        let mut session = self.kept_session(file)?;
        let mut known: BTreeSet<String> = BTreeSet::new();
        for row in self.store.works("invoice", Some(file.as_bytes()))? {
            if let Some(n) = opt_text(current(&row)?.get("ksef_number")) {
                known.insert(n);
            }
        }
        let (mut done, mut listed) = (0u64, 0u64);
        let outcome: std::result::Result<(), ClientError> = async {
            for (subject, field, i) in SUBJECTS {
                let start = self
                    .ksef_cursor(file, &s, i)?
                    .unwrap_or_else(|| midnight(s.since));
                let mut from = start;
                let mut cursor = start;
                loop {
                    let now = Utc::now();
                    let to = (now - from > chrono::Duration::days(WINDOW_DAYS))
                        .then(|| from + chrono::Duration::days(WINDOW_DAYS));
                    let mut page_no = 0;
                    let hwm = loop {
                        let page = match self
                            .ksef_call(&mut client, &mut session, file, &s, |c, sess| {
                                Box::pin(c.query(sess, subject, from, to, page_no))
                            })
                            .await
                        {
                            Ok(p) => p,
                            // `from` is past the high-water mark: nothing new yet.
                            Err(ClientError::Ksef(KsefError::Rejected(r)))
                                if r.starts_with("21183") =>
                            {
                                break None;
                            }
                            Err(e) => return Err(e),
                        };
                        listed += page.invoices.len() as u64;
                        progress(done, listed);
                        // Dates from KSeF are not trusted to run ahead: the cursor never
                        // passes the page's mark or now, so a wrong date cannot make later
                        // syncs skip invoices.
                        let cap = page
                            .permanent_storage_hwm_date
                            .map_or(Utc::now(), |m| m.min(Utc::now()));
                        for meta in &page.invoices {
                            if known.contains(&meta.ksef_number) {
                                report.known += 1;
                            } else {
                                self.ksef_import(
                                    &mut client,
                                    &mut session,
                                    file,
                                    &s,
                                    subject,
                                    meta,
                                    &mut report,
                                )
                                .await?;
                                known.insert(meta.ksef_number.clone());
                            }
                            done += 1;
                            progress(done, listed);
                            // Sorted by storage time, never past the mark: all before
                            // this one are in.
                            let at = meta.permanent_storage_date.min(cap);
                            if at > cursor {
                                cursor = at;
                                self.store
                                    .put_state(&format!("ksef-cursor:{file}:{i}"), &rfc3339(at))?;
                            }
                        }
                        if !page.has_more {
                            break page.permanent_storage_hwm_date;
                        }
                        if page.is_truncated {
                            // The 10,000-record limit: start again from the last one, which
                            // must move on (else the same list would come back forever).
                            match page.invoices.last() {
                                Some(last) if last.permanent_storage_date.min(cap) > from => {
                                    from = last.permanent_storage_date.min(cap);
                                }
                                _ => {
                                    return Err(KsefError::Protocol(
                                        "a truncated list that does not move on".into(),
                                    )
                                    .into())
                                }
                            }
                            page_no = 0;
                        } else if page_no >= MAX_PAGES {
                            return Err(KsefError::Protocol(format!(
                                "more than {MAX_PAGES} pages for one query"
                            ))
                            .into());
                        } else {
                            page_no += 1;
                        }
                    };
                    let Some(mark) = hwm.or(to) else {
                        break;
                    };
                    let mark = mark.min(Utc::now());
                    let next = to.map_or(mark, |t| mark.min(t));
                    if next > from {
                        from = next;
                        self.store
                            .put_state(&format!("ksef-cursor:{file}:{i}"), &rfc3339(from))?;
                    }
                    if to.is_none() || next < to.unwrap_or(next) {
                        break;
                    }
                }
                // Colleagues' devices continue from here too.
                if Some(from) > s.cursors.get(i).copied().flatten() {
                    match self
                        .edit_item(
                            file,
                            s.record,
                            "ksef",
                            vec![(field.to_owned(), json!(rfc3339(from)))],
                        )
                        .await
                    {
                        Ok(_) | Err(ClientError::Queued(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(())
        }
        .await;
        report.waited = client.waited;
        match outcome {
            Ok(()) => {}
            Err(ClientError::Ksef(e @ KsefError::Refused { .. })) => {
                report.refused = true;
                report.stopped = Some(format!(
                    "{e}: set a valid token with `ledgerline ksef token set`"
                ));
            }
            Err(ClientError::Ksef(e)) => report.stopped = Some(e.to_string()),
            Err(e) => return Err(e),
        }
        Ok(report)
    }

    /// Runs a KSeF call with a fresh access token: refreshed when it expires, a new login
    /// when the refresh token is no longer accepted.
    async fn ksef_call<'c, T>(
        &mut self,
        client: &'c mut KsefClient,
        session: &mut Option<Session>,
        file: FileId,
        s: &Settings,
        call: impl for<'a> Fn(
            &'a mut KsefClient,
            &'a Session,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = std::result::Result<T, KsefError>> + Send + 'a>,
        >,
    ) -> Result<T> {
        for attempt in 0..3 {
            let sess = match session.take() {
                Some(x) if x.refresh_until > Utc::now() => {
                    let mut x = x;
                    if x.access_until <= Utc::now() + chrono::Duration::seconds(30) {
                        match client.refresh(&mut x).await {
                            Ok(()) => {}
                            Err(KsefError::Unauthorized) => {
                                x = client.login(&s.nip, &s.token).await?
                            }
                            Err(e) => return Err(e.into()),
                        }
                        self.keep_session(file, &x)?;
                    }
                    x
                }
                _ => {
                    let x = client.login(&s.nip, &s.token).await?;
                    self.keep_session(file, &x)?;
                    x
                }
            };
            match call(client, &sess).await {
                Err(KsefError::Unauthorized) if attempt < 2 => {
                    // Expired early or revoked: refresh (or log in) and try again.
                    let mut x = sess;
                    x.access_until = Utc::now() - chrono::Duration::seconds(1);
                    if attempt == 1 {
                        x.refresh_until = x.access_until;
                    }
                    *session = Some(x);
                }
                other => {
                    *session = Some(sess);
                    return other.map_err(Into::into);
                }
            }
        }
        Err(KsefError::Unauthorized.into())
    }

    /// Keeps one invoice: the XML as a document, then its record (and a task).
    #[allow(clippy::too_many_arguments)]
    async fn ksef_import(
        &mut self,
        client: &mut KsefClient,
        session: &mut Option<Session>,
        file: FileId,
        s: &Settings,
        subject: Subject,
        meta: &InvoiceMeta,
        report: &mut KsefFileReport,
    ) -> Result<()> {
        let number = meta.ksef_number.clone();
        let mut warnings = Vec::new();
        if let Err(e) = parse_ksef_number(&number) {
            warnings.push(format!("the KSeF number is not valid: {e}"));
        }
        let record = invoice_record_id(&s.id_key, file, &number);
        let xml = self
            .ksef_call(client, session, file, s, |c, sess| {
                let n = number.clone();
                Box::pin(async move { c.download(sess, &n).await })
            })
            .await?;
        // KSeF's hash of the invoice, from the listing: the bytes must match it.
        let want = base64::engine::general_purpose::STANDARD
            .decode(meta.invoice_hash.trim())
            .unwrap_or_default();
        let got = Sha256::digest(&xml);
        if want.as_slice() != got.as_slice() {
            warnings.push(
                "the downloaded XML does not match KSeF's hash of this invoice (altered or damaged on the way); kept as downloaded"
                    .into(),
            );
        }
        let parsed = match invoice::parse(&xml) {
            Ok(inv) => {
                warnings.extend(inv.warnings.iter().cloned());
                Some(inv)
            }
            Err(e) => {
                warnings.push(format!("unreadable: {e}; the original XML is kept"));
                None
            }
        };
        let issued = parsed
            .as_ref()
            .map(|i| i.issued)
            .unwrap_or_else(|| meta.permanent_storage_date.date_naive());
        let year = u16::try_from(issued.year()).unwrap_or_else(|_| super::this_year());
        // An interrupted import resumes without a second upload.
        let doc_state = format!("ksef-doc:{file}:{record}");
        let document = match self.store.state(&doc_state)? {
            Some(d) => d,
            None => {
                let m = self
                    .upload_bytes(
                        file,
                        &format!("{number}.xml"),
                        &xml,
                        year,
                        Arc::new(|_, _, _| {}),
                    )
                    .await?;
                let d = m.document.to_string();
                self.store.put_state(&doc_state, &d)?;
                d
            }
        };
        let direction = match subject {
            Subject::Subject1 => "sales",
            Subject::Subject2 => "purchase",
        };
        // A purchase not marked paid, due within the week: a task to pay it.
        let task_state = format!("ksef-task:{file}:{record}");
        let mut task = self.store.state(&task_state)?;
        if let (Some(inv), Subject::Subject2, None) = (&parsed, subject, &task) {
            let soon = today() + chrono::Duration::days(DUE_SOON_DAYS);
            if let Some(due) = inv.due.iter().find(|d| **d >= today() && **d <= soon) {
                if !inv.paid {
                    let spec = TaskSpec {
                        title: format!(
                            "Zapłać fakturę {} ({}): {} {}",
                            inv.number, inv.seller.name, inv.gross, inv.currency
                        ),
                        assignee: None,
                        due: Some(*due),
                        rrule: None,
                        working_days: false,
                        rolling: false,
                        checklist: Vec::new(),
                        template: None,
                    };
                    let id = self.task_add(file, &spec).await?;
                    self.store.put_state(&task_state, &id.to_string())?;
                    task = Some(id.to_string());
                    report.tasks += 1;
                }
            }
        }
        let title = match &parsed {
            Some(inv) => format!(
                "{} {} — {} {}",
                if subject == Subject::Subject1 {
                    "Sprzedaż"
                } else {
                    "Zakup"
                },
                inv.number,
                inv.gross,
                inv.currency
            ),
            None => format!("Faktura KSeF {number} (nieczytelna)"),
        };
        let created_ms = crate::when::DEFAULT_ZONE
            .from_local_datetime(&issued.and_hms_opt(12, 0, 0).unwrap_or_default())
            .single()
            .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
            .unwrap_or_else(now_ms);
        let edits = vec![
            ("title".to_owned(), json!(title)),
            ("ksef_number".to_owned(), json!(number)),
            ("direction".to_owned(), json!(direction)),
            ("invoice".to_owned(), json!(parsed)),
            ("document".to_owned(), json!(document)),
            (
                "stored".to_owned(),
                json!(rfc3339(meta.permanent_storage_date)),
            ),
            ("warnings".to_owned(), json!(warnings)),
            ("task".to_owned(), json!(task)),
            ("created_ms".to_owned(), json!(created_ms)),
            ("received_ms".to_owned(), json!(now_ms())),
            ("author".to_owned(), json!(self.id.member.to_string())),
        ];
        match self.edit_item(file, record, "invoice", edits).await {
            Ok(_) | Err(ClientError::Queued(_)) => {}
            Err(e) => return Err(e),
        }
        for w in warnings {
            report.warnings.push((number.clone(), w));
        }
        match subject {
            Subject::Subject1 => report.sales += 1,
            Subject::Subject2 => report.purchases += 1,
        }
        Ok(())
    }

    /// The invoices of a customer file, oldest issue first.
    pub fn invoices(&self, file: FileId) -> Result<Vec<InvoiceView>> {
        let mut out = Vec::new();
        for row in self.store.works("invoice", Some(file.as_bytes()))? {
            out.push(invoice_view(file, RecordId(row.record), &current(&row)?));
        }
        out.sort_by(|a, b| {
            let day = |v: &InvoiceView| v.invoice.as_ref().map(|i| i.issued);
            (day(a), &a.stored).cmp(&(day(b), &b.stored))
        });
        Ok(out)
    }
}

fn invoice_view(file: FileId, id: RecordId, f: &crate::work::merge::Fields) -> InvoiceView {
    InvoiceView {
        id,
        file,
        ksef_number: opt_text(f.get("ksef_number")).unwrap_or_default(),
        direction: opt_text(f.get("direction")).unwrap_or_default(),
        invoice: serde_json::from_value(f.get("invoice").clone()).ok(),
        document: opt_text(f.get("document")).unwrap_or_default(),
        stored: opt_text(f.get("stored")).unwrap_or_default(),
        warnings: serde_json::from_value(f.get("warnings").clone()).unwrap_or_default(),
        task: opt_text(f.get("task")),
    }
}

/// A timeline line for an invoice record: (text, title).
pub(super) fn invoice_line(f: &crate::work::merge::Fields) -> (String, String) {
    let title = opt_text(f.get("title")).unwrap_or_default();
    let warnings: Vec<String> =
        serde_json::from_value(f.get("warnings").clone()).unwrap_or_default();
    let text = if warnings.is_empty() {
        title.clone()
    } else {
        format!("{title} ⚠ {}", warnings.join("; "))
    };
    (text, title)
}

/// Where this device keeps a file's KSeF session (access and refresh tokens) in its
/// encrypted store.
fn session_key(file: FileId) -> String {
    format!("ksef-session:{file}")
}

/// The first day of last month: what a new token fetches by default.
fn default_since(today: NaiveDate) -> NaiveDate {
    let (y, m) = if today.month() == 1 {
        (today.year() - 1, 12)
    } else {
        (today.year(), today.month() - 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(today)
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    crate::when::DEFAULT_ZONE
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

/// An invoice record's id: keyed by the file's KSeF key (shared by its members, so every
/// device computes the same id and none imports an invoice twice), so the relay cannot
/// test whether a given KSeF number reached this firm.
fn invoice_record_id(key: &[u8], file: FileId, number: &str) -> RecordId {
    let mut h = Sha256::new();
    h.update(b"ledgerline/v1/ksef-invoice-record\0");
    h.update(key);
    h.update(file.as_bytes());
    h.update(number.as_bytes());
    let out: [u8; 32] = h.finalize().into();
    let mut id = [0u8; 16];
    for (d, s) in id.iter_mut().zip(out) {
        *d = s;
    }
    RecordId(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_new_token_fetches_from_the_first_of_last_month() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(default_since(d(2026, 3, 15)), d(2026, 2, 1));
        assert_eq!(default_since(d(2026, 1, 5)), d(2025, 12, 1));
    }

    #[test]
    fn invoice_ids_are_keyed() {
        let f = FileId([7; 16]);
        let n = "5265877635-20250826-0100001AF629-AF";
        assert_eq!(
            invoice_record_id(&[1; 32], f, n),
            invoice_record_id(&[1; 32], f, n)
        );
        assert_ne!(
            invoice_record_id(&[1; 32], f, n),
            invoice_record_id(&[2; 32], f, n)
        );
    }
}
