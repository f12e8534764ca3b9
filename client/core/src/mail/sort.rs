//! Where a message goes and what it is: the firm's rules first, then the customers' own
//! contacts (sender address, then sender domain), then a NIP in the subject or an
//! attachment's name; a category from the firm's rules, then the built-in ones
//! (`protocol-spec/mail.md`, "Sorting"). Pure functions over decrypted data.

use super::parse::ParsedMail;
use crate::work::ids::parse_nip;
use ledgerline_protocol::ids::FileId;
use serde::{Deserialize, Serialize};

/// Categories of mail an office sorts by.
pub const CATEGORIES: [&str; 5] = [
    "invoice",
    "bank_statement",
    "tax_office",
    "payroll",
    "other",
];

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOn {
    /// The sender's address, exactly (case-insensitive).
    From,
    /// The sender's domain or a subdomain of it.
    Domain,
    /// A phrase in the subject (case- and diacritics-insensitive).
    Subject,
    /// A phrase in an attachment's name (`.xml`, `jpk`, ...).
    Attachment,
}

impl RuleOn {
    /// The word a rule is written with (`from`, `domain`, `subject`, `attachment`).
    pub fn word(self) -> &'static str {
        match self {
            Self::From => "from",
            Self::Domain => "domain",
            Self::Subject => "subject",
            Self::Attachment => "attachment",
        }
    }
}

impl std::str::FromStr for RuleOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "from" => Ok(Self::From),
            "domain" => Ok(Self::Domain),
            "subject" => Ok(Self::Subject),
            "attachment" => Ok(Self::Attachment),
            _ => Err(format!(
                "{s:?}: a rule looks at from, domain, subject or attachment"
            )),
        }
    }
}

/// A firm's sorting rule (kept as a record of the office file, so every member's device
/// sorts alike).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// What it looks at.
    pub on: RuleOn,
    /// What it looks for.
    pub pattern: String,
    /// The customer file matching mail goes to.
    pub file: Option<FileId>,
    /// The category it gets.
    pub category: Option<String>,
}

impl Rule {
    /// Checks a rule before it is stored.
    pub fn validate(&self) -> Result<(), String> {
        let p = self.pattern.trim();
        if p.is_empty() {
            return Err("a rule needs something to look for".into());
        }
        if matches!(self.on, RuleOn::From) && !p.contains('@') {
            return Err(format!("{p:?} is not an e-mail address"));
        }
        if matches!(self.on, RuleOn::Domain) && (p.contains('@') || !p.contains('.')) {
            return Err(format!("{p:?} is not a domain (like firma.pl)"));
        }
        if self.file.is_none() && self.category.is_none() {
            return Err(
                "a rule sends mail to a customer file, gives it a category, or both".into(),
            );
        }
        if let Some(c) = &self.category {
            if !CATEGORIES.contains(&c.as_str()) {
                return Err(format!(
                    "{c:?}: a category is one of {}",
                    CATEGORIES.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn matches(&self, m: &ParsedMail) -> bool {
        let p = fold(self.pattern.trim());
        match self.on {
            RuleOn::From => m.from == p,
            RuleOn::Domain => {
                let d = domain_of(&m.from);
                d == p || d.ends_with(&format!(".{p}"))
            }
            RuleOn::Subject => fold(&m.subject).contains(&p),
            RuleOn::Attachment => m.attachments.iter().any(|a| fold(&a.name).contains(&p)),
        }
    }
}

/// What the sorter knows of a customer: from its card.
#[derive(Debug, Clone)]
pub struct Customer {
    /// The customer's file.
    pub file: FileId,
    /// E-mail addresses on the card (its contacts' too).
    pub emails: Vec<String>,
    /// The customer's NIP (10 digits).
    pub nip: Option<String>,
}

/// Where a message goes, and why (shown to the user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The customer file; `None` → the inbox.
    pub file: Option<FileId>,
    /// Why there, in words (`rule 2: domain firma.pl`, `sender's address`, `no match`,
    /// `2 customers match the sender's domain firma.pl`).
    pub reason: String,
    /// Why there, as a code a window words in its language: `rule`, `address`, `domain`,
    /// `nip`; for the inbox `none` or `ambiguous`.
    pub basis: String,
    /// One of [`CATEGORIES`].
    pub category: String,
}

/// Webmail domains shared by many people: a sender's domain here says nothing about
/// whose mail it is, so it never matches a customer by domain.
const PUBLIC_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "wp.pl",
    "o2.pl",
    "onet.pl",
    "op.pl",
    "onet.eu",
    "interia.pl",
    "interia.eu",
    "poczta.fm",
    "tlen.pl",
    "gazeta.pl",
    "vp.pl",
    "go2.pl",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "icloud.com",
    "me.com",
    "protonmail.com",
    "proton.me",
    "aol.com",
    "gmx.com",
    "gmx.de",
    "poczta.onet.pl",
];

/// Sorts one message.
pub fn place(m: &ParsedMail, rules: &[Rule], customers: &[Customer]) -> Placement {
    let category = categorise(m, rules);
    let active: Vec<&Customer> = customers.iter().collect();
    let is_customer = |f: &FileId| active.iter().any(|c| c.file == *f);
    for (n, r) in rules.iter().enumerate() {
        if let Some(f) = r.file {
            if is_customer(&f) && r.matches(m) {
                return Placement {
                    file: Some(f),
                    reason: format!("rule {}: {} {}", n + 1, r.on.word(), r.pattern),
                    basis: "rule".into(),
                    category,
                };
            }
        }
    }
    let by = |found: Vec<FileId>, basis: &str, why: String| -> Option<Placement> {
        let mut found = found;
        found.sort();
        found.dedup();
        match found.len() {
            0 => None,
            1 => Some(Placement {
                file: found.first().copied(),
                reason: why,
                basis: basis.into(),
                category: String::new(),
            }),
            n => Some(Placement {
                file: None,
                reason: format!("{n} customers match the {why}"),
                basis: "ambiguous".into(),
                category: String::new(),
            }),
        }
    };
    let from = &m.from;
    let domain = domain_of(from);
    let candidates = [
        by(
            active
                .iter()
                .filter(|c| {
                    !from.is_empty() && c.emails.iter().any(|e| e.eq_ignore_ascii_case(from))
                })
                .map(|c| c.file)
                .collect(),
            "address",
            "sender's address".into(),
        ),
        by(
            if domain.is_empty() || PUBLIC_DOMAINS.contains(&domain.as_str()) {
                Vec::new()
            } else {
                active
                    .iter()
                    .filter(|c| c.emails.iter().any(|e| domain_of(e) == domain))
                    .map(|c| c.file)
                    .collect()
            },
            "domain",
            format!("sender's domain {domain}"),
        ),
        {
            let nips = nips_in(m);
            by(
                active
                    .iter()
                    .filter(|c| c.nip.as_ref().is_some_and(|n| nips.contains(n)))
                    .map(|c| c.file)
                    .collect(),
                "nip",
                "NIP in the subject or an attachment's name".into(),
            )
        },
    ];
    let placement = candidates
        .into_iter()
        .flatten()
        .next()
        .unwrap_or(Placement {
            file: None,
            reason: "no match".into(),
            basis: "none".into(),
            category: String::new(),
        });
    Placement {
        category,
        ..placement
    }
}

/// The category: the first firm rule with one that matches, else the built-in rules.
pub fn categorise(m: &ParsedMail, rules: &[Rule]) -> String {
    if let Some(c) = rules
        .iter()
        .find(|r| r.category.is_some() && r.matches(m))
        .and_then(|r| r.category.clone())
    {
        return c;
    }
    let subject = fold(&m.subject);
    let domain = domain_of(&m.from);
    let names: Vec<String> = m.attachments.iter().map(|a| fold(&a.name)).collect();
    let in_subject = |words: &[&str]| words.iter().any(|w| subject.contains(w));
    let in_names = |words: &[&str]| names.iter().any(|n| words.iter().any(|w| n.contains(w)));
    let from_any = |domains: &[&str]| {
        domains
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
    };
    if from_any(&["mf.gov.pl", "kas.gov.pl", "podatki.gov.pl"])
        || in_subject(&["skarbow", "e-urzad", "e-deklaracj"])
    {
        "tax_office".into()
    } else if in_subject(&["wyciag", "bank statement", "zestawienie operacji"])
        || in_names(&[".sta", ".mt940", "wyciag"])
    {
        "bank_statement".into()
    } else if from_any(&["zus.pl"])
        || in_subject(&[
            "lista plac",
            "wynagrodz",
            "pit-11",
            "zus",
            "pasek placowy",
            "payroll",
        ])
        || in_names(&["lista plac", "pit-11"])
    {
        "payroll".into()
    } else if in_subject(&["faktur", "invoice", "fv ", "fv/", "rachunek"])
        || in_names(&["faktur", "invoice", "fv_", "fv-", "fv ", "jpk"])
    {
        "invoice".into()
    } else {
        "other".into()
    }
}

/// The domain of an address, lowercase (empty without one).
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('>').to_lowercase())
        .unwrap_or_default()
}

/// Lowercase without Polish diacritics, so `WYCIĄG` finds `wyciag`.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| match c {
            'ą' => 'a',
            'ć' => 'c',
            'ę' => 'e',
            'ł' => 'l',
            'ń' => 'n',
            'ó' => 'o',
            'ś' => 's',
            'ź' | 'ż' => 'z',
            other => other,
        })
        .collect()
}

/// Every valid NIP (checksum verified) written in the subject or an attachment's name:
/// ten digits, possibly grouped by dashes or spaces (`526-025-02-74`), possibly after `PL`.
pub fn nips_in(m: &ParsedMail) -> Vec<String> {
    let mut out = Vec::new();
    let texts =
        std::iter::once(m.subject.as_str()).chain(m.attachments.iter().map(|a| a.name.as_str()));
    for t in texts {
        // Runs of digit groups joined by single dashes or spaces: `12 526-025-02-74` is
        // the groups [12, 526, 025, 02, 74]; any consecutive groups making ten digits are
        // a candidate.
        let mut runs: Vec<Vec<String>> = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        let mut group = String::new();
        let mut after_separator = false;
        for c in t.chars().chain(std::iter::once('\n')) {
            if c.is_ascii_digit() {
                group.push(c);
                after_separator = false;
            } else if (c == '-' || c == ' ') && !group.is_empty() && !after_separator {
                groups.push(std::mem::take(&mut group));
                after_separator = true;
            } else {
                if !group.is_empty() {
                    groups.push(std::mem::take(&mut group));
                }
                if !groups.is_empty() {
                    runs.push(std::mem::take(&mut groups));
                }
                after_separator = false;
            }
        }
        for run in runs {
            for start in 0..run.len() {
                let mut digits = String::new();
                for g in run.iter().skip(start) {
                    digits.push_str(g);
                    if digits.len() >= 10 {
                        break;
                    }
                }
                if digits.len() == 10 {
                    if let Ok(n) = parse_nip(&digits) {
                        if !out.contains(&n) {
                            out.push(n);
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse::{Attachment, ParsedMail};
    use super::*;

    fn mail(from: &str, subject: &str, attachments: &[&str]) -> ParsedMail {
        ParsedMail {
            digest: [0; 32],
            from: from.into(),
            from_name: None,
            to: vec![],
            subject: subject.into(),
            date_ms: None,
            message_id: None,
            text: String::new(),
            attachments: attachments
                .iter()
                .map(|n| Attachment {
                    name: (*n).into(),
                    mime: "application/pdf".into(),
                    bytes: vec![],
                })
                .collect(),
            warnings: vec![],
        }
    }

    fn customers() -> Vec<Customer> {
        vec![
            Customer {
                file: FileId([1; 16]),
                emails: vec!["ksiegowosc@kowalski.pl".into()],
                nip: Some("5260250274".into()),
            },
            Customer {
                file: FileId([2; 16]),
                emails: vec!["jan.nowak@gmail.com".into(), "biuro@nowak-bud.pl".into()],
                nip: Some("7740001454".into()),
            },
            Customer {
                file: FileId([3; 16]),
                emails: vec!["anna@gmail.com".into()],
                nip: None,
            },
        ]
    }

    #[test]
    fn sender_address_then_domain_then_nip() {
        let c = customers();
        let p = place(&mail("jan.nowak@gmail.com", "Dokumenty", &[]), &[], &c);
        assert_eq!(p.file, Some(FileId([2; 16])));
        assert_eq!(p.reason, "sender's address");
        // Same domain, other person: the domain matches.
        let p = place(&mail("szef@nowak-bud.pl", "x", &[]), &[], &c);
        assert_eq!(p.file, Some(FileId([2; 16])));
        // A webmail domain never matches by domain.
        let p = place(&mail("obcy@gmail.com", "x", &[]), &[], &c);
        assert_eq!(p.file, None);
        assert_eq!(p.reason, "no match");
        // NIP in the subject (grouped, with PL), or in an attachment's name.
        let p = place(
            &mail("x@y.pl", "Faktura 12 dla PL526-025-02-74", &[]),
            &[],
            &c,
        );
        assert_eq!(p.file, Some(FileId([1; 16])));
        let p = place(
            &mail("x@y.pl", "FV 3/2026 NIP 526 025 02 74.", &[]),
            &[],
            &c,
        );
        assert_eq!(p.file, Some(FileId([1; 16])));
        let p = place(
            &mail("x@y.pl", "Dokumenty", &["JPK_VAT_7740001454_2026-10.xml"]),
            &[],
            &c,
        );
        assert_eq!(p.file, Some(FileId([2; 16])));
        // A 10-digit number with a wrong checksum is no NIP.
        let p = place(&mail("x@y.pl", "Zamówienie 5260250275", &[]), &[], &c);
        assert_eq!(p.file, None);
    }

    #[test]
    fn rules_come_first_and_ambiguity_goes_to_the_inbox() {
        let mut c = customers();
        c.push(Customer {
            file: FileId([4; 16]),
            emails: vec!["kadry@nowak-bud.pl".into()],
            nip: None,
        });
        let p = place(&mail("szef@nowak-bud.pl", "x", &[]), &[], &c);
        assert_eq!(p.file, None);
        assert_eq!(
            p.reason,
            "2 customers match the sender's domain nowak-bud.pl"
        );
        let rules = vec![Rule {
            on: RuleOn::Domain,
            pattern: "nowak-bud.pl".into(),
            file: Some(FileId([4; 16])),
            category: Some("payroll".into()),
        }];
        let p = place(&mail("szef@dzial.nowak-bud.pl", "x", &[]), &rules, &c);
        assert_eq!(p.file, Some(FileId([4; 16])));
        assert_eq!(p.reason, "rule 1: domain nowak-bud.pl");
        assert_eq!(p.category, "payroll");
        // A rule for a file this device cannot see is skipped.
        let rules = vec![Rule {
            on: RuleOn::Subject,
            pattern: "x".into(),
            file: Some(FileId([9; 16])),
            category: None,
        }];
        assert_eq!(place(&mail("q@r.pl", "x", &[]), &rules, &c).file, None);
    }

    #[test]
    fn built_in_categories() {
        let cat =
            |from: &str, subject: &str, att: &[&str]| categorise(&mail(from, subject, att), &[]);
        assert_eq!(
            cat("powiadomienia@mf.gov.pl", "Informacja", &[]),
            "tax_office"
        );
        assert_eq!(
            cat("a@b.pl", "Pismo z Urzędu Skarbowego", &[]),
            "tax_office"
        );
        assert_eq!(
            cat("bank@pko.pl", "WYCIĄG za październik", &[]),
            "bank_statement"
        );
        assert_eq!(
            cat("bank@pko.pl", "Dokumenty", &["konto.mt940"]),
            "bank_statement"
        );
        assert_eq!(cat("kadry@x.pl", "Lista płac 10/2026", &[]), "payroll");
        assert_eq!(cat("a@b.pl", "Faktura VAT 12/2026", &[]), "invoice");
        assert_eq!(
            cat("a@b.pl", "Dokumenty", &["FV_2026_10_01.pdf"]),
            "invoice"
        );
        assert_eq!(cat("a@b.pl", "Pytanie", &[]), "other");
        // A firm rule wins over the built-in ones.
        let rules = vec![Rule {
            on: RuleOn::Subject,
            pattern: "faktura".into(),
            file: None,
            category: Some("other".into()),
        }];
        assert_eq!(categorise(&mail("a@b.pl", "Faktura", &[]), &rules), "other");
    }

    #[test]
    fn rules_are_checked() {
        let r = |on, p: &str, f: Option<FileId>, c: Option<&str>| {
            Rule {
                on,
                pattern: p.into(),
                file: f,
                category: c.map(Into::into),
            }
            .validate()
        };
        assert!(r(RuleOn::From, "kowalski.pl", Some(FileId([1; 16])), None).is_err());
        assert!(r(RuleOn::Domain, "a@kowalski.pl", Some(FileId([1; 16])), None).is_err());
        assert!(r(RuleOn::Subject, " ", Some(FileId([1; 16])), None).is_err());
        assert!(r(RuleOn::Subject, "x", None, None).is_err());
        assert!(r(RuleOn::Subject, "x", None, Some("spam")).is_err());
        assert!(r(RuleOn::Subject, "x", None, Some("payroll")).is_ok());
    }
}
