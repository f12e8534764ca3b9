//! Mail intake on this device (`protocol-spec/mail.md`): mailboxes read over IMAP, each new
//! message parsed and sorted, then stored in its customer's file as an encrypted `mail`
//! record with its attachments as documents. What no rule places waits in this device's
//! inbox (inside the encrypted local store) until someone assigns it, which can add a rule
//! in the same step. The firm's rules are records of the office file, so every member's
//! device sorts alike. The relay sees ciphertext only; passwords stay in the OS keyring.

use super::work::{current, opt_text, text_list};
use super::{declined, now_ms, ClientError, Profile, Result};
use crate::keystore;
use crate::mail::imap::{MailboxConfig, Session};
use crate::mail::parse::{self, ParsedMail};
use crate::mail::sort::{self, Customer, Rule, RuleOn};
use crate::store::InboxRow;
use chrono::{Datelike, TimeZone};
use ledgerline_protocol::ids::{FileId, RecordId};
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A mailbox as lists show it (never its password).
#[derive(Debug, Clone, Serialize)]
pub struct MailboxView {
    /// `user@host/folder`.
    pub label: String,
    /// Where it is.
    pub config: MailboxConfig,
    /// Where its password is kept: `keyring` or `local store` (no OS keyring here).
    pub password_in: String,
    /// The folder's UIDVALIDITY when last read.
    pub uid_validity: Option<u32>,
    /// The highest UID read.
    pub last_uid: u32,
}

/// One message stored in a customer file by a fetch or an assignment.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedMail {
    /// The mail record.
    pub id: RecordId,
    /// The customer file.
    pub file: FileId,
    /// Its name.
    pub file_name: Option<String>,
    /// Category.
    pub category: String,
    /// Why this file.
    pub reason: String,
    /// Why, as a code (`rule`, `address`, `domain`, `nip`, `manual`).
    pub basis: String,
    /// Documents made of its attachments.
    pub attachments: usize,
    /// The record waits on this device for the relay (sent at the next sync).
    pub queued: bool,
}

/// A message that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct FailedMail {
    /// Mailbox.
    pub mailbox: String,
    /// Its UID there.
    pub uid: u32,
    /// Why.
    pub reason: String,
}

/// What a fetch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailReport {
    /// Mailboxes read.
    pub mailboxes: usize,
    /// New messages read.
    pub read: usize,
    /// Stored in customer files.
    pub imported: Vec<PlacedMail>,
    /// Put in the inbox (no rule placed them). Inbox messages a new card or rule now
    /// places are among `imported`.
    pub inbox: usize,
    /// Read before (same message: a second run, a UIDVALIDITY change, another folder).
    pub duplicates: usize,
    /// Could not be read (the rest went on).
    pub failed: Vec<FailedMail>,
    /// Mailboxes whose UIDVALIDITY changed: read again from the start, nothing imported
    /// twice.
    pub uid_validity_changed: Vec<String>,
    /// Mailboxes that could not be read at all, and why.
    pub unreachable: Vec<(String, String)>,
    /// Set when the fetch stopped early (the relay went away): what is not imported yet
    /// is read again next time.
    pub stopped: Option<String>,
}

/// A message waiting in the inbox.
#[derive(Debug, Clone, Serialize)]
pub struct InboxView {
    /// Short id (hex digest prefix) to assign it by.
    pub id: String,
    /// Sender.
    pub from: String,
    /// Sender's name.
    pub from_name: Option<String>,
    /// Subject.
    pub subject: String,
    /// Sent (ms).
    pub date_ms: Option<u64>,
    /// Category it would get.
    pub category: String,
    /// Why no customer file was found.
    pub reason: String,
    /// Why, as a code: `none` (nothing matched) or `ambiguous` (several customers did).
    pub basis: String,
    /// Attachment names.
    pub attachments: Vec<String>,
    /// Mailbox it came from.
    pub mailbox: String,
}

/// A mail record of a customer file.
#[derive(Debug, Clone, Serialize)]
pub struct MailView {
    /// Record id.
    pub id: RecordId,
    /// The customer file.
    pub file: FileId,
    /// Sender.
    pub from: String,
    /// Sender's name.
    pub from_name: Option<String>,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Sent (ms), else received.
    pub date_ms: u64,
    /// Category (changeable).
    pub category: String,
    /// Why it is in this file.
    pub reason: String,
    /// Body text.
    pub text: String,
    /// Documents made of its attachments: id and name.
    pub attachments: Vec<(String, String)>,
    /// What was cut or skipped.
    pub warnings: Vec<String>,
}

/// A firm rule as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    /// Record id (to remove it by).
    pub id: String,
    /// The rule.
    #[serde(flatten)]
    pub rule: Rule,
    /// The file's name.
    pub file_name: Option<String>,
}

/// What assigning an inbox message did.
#[derive(Debug, Clone, Serialize)]
pub struct AssignReport {
    /// The message, now in its file.
    pub placed: PlacedMail,
    /// The rule added in the same step.
    pub rule: Option<RuleView>,
    /// Other inbox messages that rule placed at once.
    pub also_placed: Vec<PlacedMail>,
}

/// Why an import stopped.
enum Stop {
    /// Read; nothing to import (it was seen before).
    Duplicate,
    Error(ClientError),
}

impl From<ClientError> for Stop {
    fn from(e: ClientError) -> Self {
        Stop::Error(e)
    }
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Self {
        Stop::Error(e.into())
    }
}

impl Profile {
    /// The keyring entry of a mailbox's password (per device and mailbox).
    fn mail_account(&self, label: &str) -> String {
        let h = Sha256::digest(label.as_bytes());
        let short: String = hex::encode(h).chars().take(16).collect();
        format!("mail-{}-{short}", self.id.device)
    }

    /// Checks the login, then keeps the mailbox (password in the OS keyring; in the
    /// encrypted local store when this system has none).
    pub async fn mail_connect(
        &mut self,
        config: MailboxConfig,
        password: &str,
    ) -> Result<MailboxView> {
        if config.host.trim().is_empty() || config.user.trim().is_empty() {
            return Err(declined(
                "mailbox_needed",
                "a mailbox needs a host and a user",
            ));
        }
        if config.folder.trim().is_empty() {
            return Err(ClientError::Invalid(
                "a mailbox needs a folder (INBOX)".into(),
            ));
        }
        Session::open(&config, password).await?.close().await;
        let label = config.label();
        let conf =
            serde_json::to_string(&config).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let secret = if keystore::available() {
            keystore::put_secret(&self.mail_account(&label), password)?;
            None
        } else {
            Some(password)
        };
        self.store.put_mailbox(&label, &conf, secret)?;
        self.mailboxes()?
            .into_iter()
            .find(|m| m.label == label)
            .ok_or_else(|| ClientError::NotFound("the mailbox was not kept".into()))
    }

    /// Stops reading a mailbox and forgets its password (what it imported stays).
    pub fn mail_disconnect(&mut self, label: &str) -> Result<()> {
        if !self.store.forget_mailbox(label)? {
            return Err(ClientError::NotFound(format!(
                "no mailbox {label:?} (see `mail list`)"
            )));
        }
        keystore::forget_secret(&self.mail_account(label)).or_else(|e| match e {
            keystore::KeystoreError::Unavailable(_) => Ok(()),
            other => Err(other),
        })?;
        Ok(())
    }

    /// The mailboxes this device reads.
    pub fn mailboxes(&self) -> Result<Vec<MailboxView>> {
        self.store
            .mailboxes()?
            .into_iter()
            .map(|r| {
                let config: MailboxConfig = serde_json::from_str(&r.config)
                    .map_err(|e| ClientError::Integrity(format!("stored mailbox: {e}")))?;
                Ok(MailboxView {
                    label: r.label,
                    config,
                    password_in: if r.secret.is_some() {
                        "local store".into()
                    } else {
                        "keyring".into()
                    },
                    uid_validity: r.uid_validity,
                    last_uid: r.last_uid,
                })
            })
            .collect()
    }

    /// Messages that could not be read (mailbox, UID, reason).
    pub fn mail_failures(&self) -> Result<Vec<FailedMail>> {
        Ok(self
            .store
            .mail_failed()?
            .into_iter()
            .map(|(mailbox, uid, reason)| FailedMail {
                mailbox,
                uid,
                reason,
            })
            .collect())
    }

    /// Reads every mailbox's new messages, sorts and stores them. `progress` hears
    /// (messages done, messages to read) per mailbox.
    pub async fn mail_fetch(
        &mut self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<MailReport> {
        let rows = self.store.mailboxes()?;
        if rows.is_empty() {
            return Err(ClientError::NotFound(
                "no mailbox is connected on this device (`ledgerline mail connect`)".into(),
            ));
        }
        let mut report = MailReport::default();
        let mut known = self.known_mail()?;
        // Rules and cards cannot change during a fetch: read once, not per message.
        let (rules, customers) = (self.mail_rules_now()?, self.mail_customers()?);
        let mut first_error = None;
        'mailboxes: for row in rows {
            let config: MailboxConfig = serde_json::from_str(&row.config)
                .map_err(|e| ClientError::Integrity(format!("stored mailbox: {e}")))?;
            let password = match &row.secret {
                Some(s) => Zeroizing::new(s.clone()),
                None => keystore::secret(&self.mail_account(&row.label))?,
            };
            let mut session = match Session::open(&config, &password).await {
                Ok(s) => s,
                Err(e) => {
                    report.unreachable.push((row.label.clone(), e.to_string()));
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            report.mailboxes += 1;
            let validity = session.uid_validity;
            let mut last = row.last_uid;
            if row.uid_validity != Some(validity) {
                if row.uid_validity.is_some() {
                    report.uid_validity_changed.push(row.label.clone());
                }
                last = 0;
                self.store.mailbox_read_to(&row.label, validity, 0)?;
            }
            let uids = match session.uids_after(last).await {
                Ok(u) => u,
                Err(e) => {
                    report.unreachable.push((row.label.clone(), e.to_string()));
                    continue;
                }
            };
            let total = uids.len() as u64;
            progress(0, total);
            for (n, (uid, _)) in uids.into_iter().enumerate() {
                let raw = match session.message(uid).await {
                    Ok(r) => r,
                    Err(e) => {
                        report.unreachable.push((row.label.clone(), e.to_string()));
                        break;
                    }
                };
                if let Some(raw) = raw {
                    report.read += 1;
                    match self
                        .take_in(&raw, &row.label, &mut known, &rules, &customers)
                        .await
                    {
                        Ok(Some(placed)) => report.imported.push(placed),
                        Ok(None) => report.inbox += 1,
                        Err(Stop::Duplicate) => report.duplicates += 1,
                        Err(Stop::Error(ClientError::Invalid(reason))) => {
                            self.store.put_mail_failed(
                                &row.label,
                                validity,
                                uid,
                                &reason,
                                now_ms(),
                            )?;
                            report.failed.push(FailedMail {
                                mailbox: row.label.clone(),
                                uid,
                                reason,
                            });
                        }
                        Err(Stop::Error(e)) => {
                            // Not read past: this message and the rest come again next time.
                            report.stopped = Some(e.to_string());
                            session.close().await;
                            break 'mailboxes;
                        }
                    }
                }
                self.store.mailbox_read_to(&row.label, validity, uid)?;
                progress(n as u64 + 1, total);
            }
            session.close().await;
        }
        if report.mailboxes == 0 {
            if let Some(e) = first_error {
                return Err(e.into());
            }
        }
        if report.stopped.is_none() {
            // A card or rule added since may now place what waits in the inbox.
            match self.resort_inbox().await {
                Ok(placed) => report.imported.extend(placed),
                Err(e) => report.stopped = Some(e.to_string()),
            }
        }
        Ok(report)
    }

    /// Digests of mail already in files this device sees (whoever imported it) or read
    /// here before.
    fn known_mail(&self) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for row in self.store.works("mail", None)? {
            if let Some(d) = opt_text(current(&row)?.get("digest")) {
                out.insert(d);
            }
        }
        Ok(out)
    }

    /// One message read: placed in a customer file (`Some`), or in the inbox (`None`).
    async fn take_in(
        &mut self,
        raw: &[u8],
        mailbox: &str,
        known: &mut BTreeSet<String>,
        rules: &[Rule],
        customers: &[Customer],
    ) -> std::result::Result<Option<PlacedMail>, Stop> {
        let digest = parse::digest(raw);
        let seen = self.store.mail_seen(&digest)?;
        let finished = seen
            .as_ref()
            .is_some_and(|(p, _)| !p.starts_with("importing:"));
        if finished || known.contains(&hex::encode(digest)) {
            return Err(Stop::Duplicate);
        }
        let mail = parse::parse(raw).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let placement = sort::place(&mail, rules, customers);
        let Some(file) = placement.file else {
            self.store.put_inbox(&InboxRow {
                digest,
                mailbox: mailbox.to_owned(),
                raw: raw.to_vec(),
                reason: placement.reason,
                at_ms: now_ms(),
            })?;
            self.store.put_mail_seen(&digest, "inbox", None, now_ms())?;
            return Ok(None);
        };
        let placed = self.store_mail(file, &mail, &placement, mailbox).await?;
        known.insert(hex::encode(digest));
        Ok(Some(placed))
    }

    /// Stores a parsed message in `file`: its attachments as documents, then its record.
    /// An interrupted import resumes where it stopped (the attachments uploaded so far are
    /// remembered), and the record id is derived from the message, so nothing doubles.
    async fn store_mail(
        &mut self,
        file: FileId,
        mail: &ParsedMail,
        placement: &sort::Placement,
        mailbox: &str,
    ) -> Result<PlacedMail> {
        let (category, reason) = (placement.category.as_str(), placement.reason.as_str());
        let importing = format!("importing:{file}");
        let mut docs: Vec<(String, String)> = match self.store.mail_seen(&mail.digest)? {
            Some((p, Some(d))) if p == importing => serde_json::from_str(&d).unwrap_or_default(),
            _ => Vec::new(),
        };
        // Remembered before and after each upload: an interrupted import resumes after them.
        let progress = |store: &crate::store::LocalStore, docs: &[(String, String)]| {
            store.put_mail_seen(
                &mail.digest,
                &importing,
                Some(&json!(docs).to_string()),
                now_ms(),
            )
        };
        progress(&self.store, &docs)?;
        let year = mail
            .date_ms
            .and_then(|ms| i64::try_from(ms).ok())
            .and_then(|ms| crate::when::DEFAULT_ZONE.timestamp_millis_opt(ms).single())
            .and_then(|t| u16::try_from(t.year()).ok())
            .unwrap_or_else(super::this_year);
        for a in mail.attachments.iter().skip(docs.len()) {
            let m = self
                .upload_bytes(file, &a.name, &a.bytes, year, Arc::new(|_, _, _| {}))
                .await?;
            docs.push((m.document.to_string(), a.name.clone()));
            progress(&self.store, &docs)?;
        }
        let record = self.mail_record_id(file, &mail.digest)?;
        let received = now_ms();
        let mut queued = false;
        if self.item(file, record)?.is_none() {
            let edits = vec![
                ("title".to_owned(), json!(mail.subject)),
                ("text".to_owned(), json!(mail.text)),
                ("from".to_owned(), json!(mail.from)),
                ("from_name".to_owned(), json!(mail.from_name)),
                ("to".to_owned(), json!(mail.to)),
                (
                    "date_ms".to_owned(),
                    json!(mail.date_ms.unwrap_or(received)),
                ),
                (
                    "created_ms".to_owned(),
                    json!(mail.date_ms.unwrap_or(received)),
                ),
                ("received_ms".to_owned(), json!(received)),
                ("message_id".to_owned(), json!(mail.message_id)),
                ("category".to_owned(), json!(category)),
                ("reason".to_owned(), json!(reason)),
                ("digest".to_owned(), json!(hex::encode(mail.digest))),
                ("attachments".to_owned(), json!(docs)),
                ("warnings".to_owned(), json!(mail.warnings)),
                ("mailbox".to_owned(), json!(mailbox)),
                ("author".to_owned(), json!(self.id.member.to_string())),
            ];
            match self.edit_item(file, record, "mail", edits).await {
                Ok(_) => {}
                Err(ClientError::Queued(_)) => queued = true,
                Err(e) => return Err(e),
            }
        }
        self.store
            .put_mail_seen(&mail.digest, &format!("file:{file}"), None, now_ms())?;
        Ok(PlacedMail {
            id: record,
            file,
            file_name: self.local.files.get(&file).and_then(|f| f.name.clone()),
            category: category.to_owned(),
            reason: reason.to_owned(),
            basis: placement.basis.clone(),
            attachments: docs.len(),
            queued,
        })
    }

    /// A mail record's id: keyed by a secret of this device, so the relay cannot test
    /// whether a message it has a copy of reached this firm.
    fn mail_record_id(&mut self, file: FileId, digest: &[u8; 32]) -> Result<RecordId> {
        let key = match self.store.state("mail_key")? {
            Some(k) => Zeroizing::new(k),
            None => {
                let mut k = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(k.as_mut());
                let k = Zeroizing::new(hex::encode(k.as_ref()));
                self.store.put_state("mail_key", &k)?;
                k
            }
        };
        let mut h = Sha256::new();
        h.update(b"ledgerline/v1/mail-record\0");
        h.update(key.as_bytes());
        h.update(file.as_bytes());
        h.update(digest);
        let out: [u8; 32] = h.finalize().into();
        let mut id = [0u8; 16];
        for (d, s) in id.iter_mut().zip(out) {
            *d = s;
        }
        Ok(RecordId(id))
    }

    /// Customers as the sorter sees them: card addresses, contacts' addresses, NIP.
    fn mail_customers(&self) -> Result<Vec<Customer>> {
        Ok(self
            .customers()?
            .into_iter()
            .map(|c| {
                let mut emails: Vec<String> = c.emails.iter().map(|e| e.to_lowercase()).collect();
                for contact in &c.contacts {
                    for word in contact.split([' ', ',', ';', '<', '>']) {
                        if word.contains('@') {
                            emails.push(word.trim().to_lowercase());
                        }
                    }
                }
                Customer {
                    file: c.file,
                    emails,
                    nip: c.nip,
                }
            })
            .collect())
    }

    // ------------------------------------------------------------------ rules

    /// The firm's rules in the order they apply (oldest first).
    pub fn mail_rules(&self) -> Result<Vec<RuleView>> {
        let Some(office) = self.office_file()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in self.store.works("mailrule", Some(office.as_bytes()))? {
            let f = current(&row)?;
            if f.get("removed") == &json!(true) {
                continue;
            }
            let on: Option<RuleOn> = opt_text(f.get("on")).and_then(|s| s.parse().ok());
            let Some(on) = on else { continue };
            let file: Option<FileId> = opt_text(f.get("file")).and_then(|s| s.parse().ok());
            let rule = Rule {
                on,
                pattern: opt_text(f.get("pattern")).unwrap_or_default(),
                file,
                category: opt_text(f.get("category")),
            };
            if rule.validate().is_err() {
                continue;
            }
            out.push((
                f.get("created_ms").as_u64().unwrap_or(0),
                RuleView {
                    id: RecordId(row.record).to_string(),
                    file_name: file
                        .and_then(|f| self.local.files.get(&f).and_then(|s| s.name.clone())),
                    rule,
                },
            ));
        }
        out.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    fn mail_rules_now(&self) -> Result<Vec<Rule>> {
        Ok(self.mail_rules()?.into_iter().map(|r| r.rule).collect())
    }

    /// Adds a firm rule (a record of the office file: every member's device applies it).
    pub async fn mail_rule_add(&mut self, rule: Rule) -> Result<RuleView> {
        rule.validate().map_err(ClientError::Invalid)?;
        if let Some(f) = rule.file {
            if !self.files()?.iter().any(|v| v.id == f) {
                return Err(ClientError::NotFound(
                    "this member has no such customer file".into(),
                ));
            }
        }
        let office = self.ensure_office().await?;
        let record = RecordId::random(&mut OsRng);
        let mut edits = vec![
            ("on".to_owned(), json!(rule.on)),
            ("pattern".to_owned(), json!(rule.pattern.trim())),
            ("author".to_owned(), json!(self.id.member.to_string())),
            ("created_ms".to_owned(), json!(now_ms())),
        ];
        if let Some(f) = rule.file {
            edits.push(("file".to_owned(), json!(f.to_string())));
        }
        if let Some(c) = &rule.category {
            edits.push(("category".to_owned(), json!(c)));
        }
        match self.edit_item(office, record, "mailrule", edits).await {
            Ok(_) | Err(ClientError::Queued(_)) => {}
            Err(e) => return Err(e),
        }
        self.mail_rules()?
            .into_iter()
            .find(|r| r.id == record.to_string())
            .ok_or_else(|| ClientError::NotFound("the rule was not kept".into()))
    }

    /// Removes a firm rule (by id or a unique prefix of it).
    pub async fn mail_rule_remove(&mut self, id_or_prefix: &str) -> Result<()> {
        let rules = self.mail_rules()?;
        let found: Vec<&RuleView> = rules
            .iter()
            .filter(|r| r.id.starts_with(&id_or_prefix.to_lowercase()))
            .collect();
        let [one] = found.as_slice() else {
            return Err(ClientError::NotFound(format!(
                "no single rule {id_or_prefix:?} (see `mail rules`)"
            )));
        };
        let record: RecordId = one
            .id
            .parse()
            .map_err(|_| ClientError::Integrity("rule id".into()))?;
        let office = self
            .office_file()?
            .ok_or_else(|| ClientError::NotFound("the firm has no office file".into()))?;
        self.edit_item(
            office,
            record,
            "mailrule",
            vec![("removed".to_owned(), json!(true))],
        )
        .await
        .map(|_| ())
    }

    // ------------------------------------------------------------------ inbox

    /// Mail no rule placed, oldest first.
    pub fn mail_inbox(&self) -> Result<Vec<InboxView>> {
        let rules = self.mail_rules_now()?;
        let mut out = Vec::new();
        for row in self.store.inbox()? {
            let Ok(m) = parse::parse(&row.raw) else {
                continue;
            };
            out.push(InboxView {
                id: hex::encode(&row.digest[..6]),
                category: sort::categorise(&m, &rules),
                from: m.from,
                from_name: m.from_name,
                subject: m.subject,
                date_ms: m.date_ms,
                basis: if row.reason == "no match" {
                    "none".into()
                } else {
                    "ambiguous".into()
                },
                reason: row.reason,
                attachments: m.attachments.into_iter().map(|a| a.name).collect(),
                mailbox: row.mailbox,
            });
        }
        Ok(out)
    }

    /// Assigns an inbox message to a customer file; with `rule`, also adds a firm rule
    /// (`from`: this sender; `domain`: the sender's domain; `subject`: this subject) and
    /// places every other inbox message it matches.
    pub async fn mail_assign(
        &mut self,
        id_prefix: &str,
        file: FileId,
        rule: Option<RuleOn>,
        category: Option<String>,
    ) -> Result<AssignReport> {
        if let Some(c) = &category {
            if !sort::CATEGORIES.contains(&c.as_str()) {
                return Err(ClientError::Invalid(format!(
                    "{c:?}: a category is one of {}",
                    sort::CATEGORIES.join(", ")
                )));
            }
        }
        let prefix = id_prefix.to_lowercase();
        let rows: Vec<InboxRow> = self
            .store
            .inbox()?
            .into_iter()
            .filter(|r| !prefix.is_empty() && hex::encode(r.digest).starts_with(&prefix))
            .collect();
        let [row] = rows.as_slice() else {
            return Err(ClientError::NotFound(format!(
                "no single inbox message {id_prefix:?} (see `mail inbox`)"
            )));
        };
        if !self.files()?.iter().any(|v| v.id == file) {
            return Err(ClientError::NotFound(
                "this member has no such customer file".into(),
            ));
        }
        let mail = parse::parse(&row.raw).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let rule_view = match rule {
            Some(on) => {
                let pattern = match on {
                    RuleOn::From => mail.from.clone(),
                    RuleOn::Domain => sort::domain_of(&mail.from),
                    RuleOn::Subject => mail.subject.clone(),
                    RuleOn::Attachment => {
                        return Err(ClientError::Invalid(
                            "a rule made from a message matches its sender, domain or subject"
                                .into(),
                        ))
                    }
                };
                Some(
                    self.mail_rule_add(Rule {
                        on,
                        pattern,
                        file: Some(file),
                        category: category.clone(),
                    })
                    .await?,
                )
            }
            None => None,
        };
        let category = match category {
            Some(c) => c,
            None => sort::categorise(&mail, &self.mail_rules_now()?),
        };
        let reason = match &rule_view {
            Some(r) => format!(
                "assigned by hand (rule {} {})",
                r.rule.on.word(),
                r.rule.pattern
            ),
            None => "assigned by hand".to_owned(),
        };
        let placed = self
            .store_mail(
                file,
                &mail,
                &sort::Placement {
                    file: Some(file),
                    reason,
                    basis: "manual".into(),
                    category,
                },
                &row.mailbox,
            )
            .await?;
        self.store.forget_inbox(&row.digest)?;
        let mut also_placed = Vec::new();
        if rule_view.is_some() {
            also_placed = self.resort_inbox().await?;
        }
        Ok(AssignReport {
            placed,
            rule: rule_view,
            also_placed,
        })
    }

    /// Sorts the inbox again with the rules as they stand; places what now matches.
    pub async fn resort_inbox(&mut self) -> Result<Vec<PlacedMail>> {
        let rules = self.mail_rules_now()?;
        let customers = self.mail_customers()?;
        let mut placed = Vec::new();
        for row in self.store.inbox()? {
            let Ok(m) = parse::parse(&row.raw) else {
                continue;
            };
            let p = sort::place(&m, &rules, &customers);
            if let Some(file) = p.file {
                placed.push(self.store_mail(file, &m, &p, &row.mailbox).await?);
                self.store.forget_inbox(&row.digest)?;
            }
        }
        Ok(placed)
    }

    // ------------------------------------------------------------------ reading

    /// A customer file's mail, newest first.
    pub fn mails(&self, file: FileId) -> Result<Vec<MailView>> {
        let mut out = Vec::new();
        for row in self.store.works("mail", Some(file.as_bytes()))? {
            out.push(mail_view(file, RecordId(row.record), &current(&row)?));
        }
        out.sort_by_key(|m| std::cmp::Reverse((m.date_ms, m.id)));
        Ok(out)
    }

    /// One mail record, by id or a unique prefix, in any file this device sees.
    pub fn mail(&self, id_or_prefix: &str) -> Result<MailView> {
        let p = id_or_prefix.to_lowercase();
        let mut found = Vec::new();
        for row in self.store.works("mail", None)? {
            let id = RecordId(row.record);
            if !p.is_empty() && id.to_string().starts_with(&p) {
                found.push(mail_view(FileId(row.file), id, &current(&row)?));
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(ClientError::NotFound(format!("no mail {id_or_prefix:?}"))),
            _ => Err(ClientError::Invalid(format!(
                "{id_or_prefix:?} names more than one mail: give more of its id"
            ))),
        }
    }

    /// Changes a mail's category.
    pub async fn mail_categorise(&mut self, id_or_prefix: &str, category: &str) -> Result<()> {
        if !sort::CATEGORIES.contains(&category) {
            return Err(ClientError::Invalid(format!(
                "{category:?}: a category is one of {}",
                sort::CATEGORIES.join(", ")
            )));
        }
        let m = self.mail(id_or_prefix)?;
        self.edit_item(
            m.file,
            m.id,
            "mail",
            vec![("category".to_owned(), json!(category))],
        )
        .await
        .map(|_| ())
    }
}

fn mail_view(file: FileId, id: RecordId, f: &crate::work::merge::Fields) -> MailView {
    let attachments = f
        .get("attachments")
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    Some((
                        p.first()?.as_str()?.to_owned(),
                        p.get(1)?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    MailView {
        id,
        file,
        from: opt_text(f.get("from")).unwrap_or_default(),
        from_name: opt_text(f.get("from_name")),
        to: text_list(f.get("to")),
        subject: opt_text(f.get("title")).unwrap_or_default(),
        date_ms: f.get("date_ms").as_u64().unwrap_or(0),
        category: opt_text(f.get("category")).unwrap_or_else(|| "other".into()),
        reason: opt_text(f.get("reason")).unwrap_or_default(),
        text: opt_text(f.get("text")).unwrap_or_default(),
        attachments,
        warnings: text_list(f.get("warnings")),
    }
}

/// A mail as the timeline words it: the line, and the subject alone.
pub(super) fn mail_line(f: &crate::work::merge::Fields) -> (String, String) {
    let subject = opt_text(f.get("title")).unwrap_or_default();
    let from = opt_text(f.get("from_name"))
        .or_else(|| opt_text(f.get("from")))
        .unwrap_or_default();
    let category = f.get("category").as_str().unwrap_or("other");
    (format!("✉ {from}: {subject} [{category}]"), subject)
}
