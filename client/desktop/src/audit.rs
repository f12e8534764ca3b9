//! The access log in the window: the owner exports a bundle for an auditor; an auditor
//! verifies one offline and reads the report as a table (filtered in the window).

use crate::commands::{with, Answer, Desk, Failure};
use ledgerline_audit::{AccessEnd, NameMap, RevocationSummary, Row, Summary, Verifier};
use ledgerline_client_core::profile::{ExportSummary, Profile};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use tauri::State;

/// Rows a report in the window holds at most (the CLI's CSV has them all).
pub const MAX_ROWS: usize = 50_000;

/// Writes an audit bundle to `out`; `from`/`to` bound the entries written whole (dates
/// or times, as the CLI reads them); `auditor` seals the names to that member's devices.
#[tauri::command]
pub async fn audit_export(
    desk: State<'_, Desk>,
    out: String,
    from: Option<String>,
    to: Option<String>,
    auditor: Option<String>,
) -> Answer<ExportSummary> {
    let out = PathBuf::from(out.trim());
    if out.as_os_str().is_empty() || out.is_dir() {
        return Err(Failure::invalid(
            "bundle_name",
            "give the bundle a file name",
        ));
    }
    let time = |v: Option<String>| {
        v.filter(|s| !s.trim().is_empty())
            .map(|s| ledgerline_audit::parse_time(s.trim()))
            .transpose()
            .map_err(|e| Failure::invalid("time", e))
    };
    let (from_ms, to_ms) = (time(from)?, time(to)?);
    let auditor = auditor.filter(|a| !a.trim().is_empty());
    with(&desk, async move |p: &mut Profile| {
        p.export_audit(&out, from_ms, to_ms, auditor.as_deref())
            .await
    })
    .await
}

/// One row of the report, in names where the bundle carries them for this device.
#[derive(Debug, Serialize)]
pub struct ReportRow {
    /// The verified entry.
    #[serde(flatten)]
    pub row: Row,
    /// Who: the member's name, their id, or `relay` for the relay's own entries.
    pub who: String,
    /// The subjects in words.
    pub subjects_named: Vec<String>,
}

/// A verified bundle.
#[derive(Debug, Serialize)]
pub struct Report {
    /// What the verifier checked.
    pub summary: Summary,
    /// The entries, in log order (at most [`MAX_ROWS`]).
    pub rows: Vec<ReportRow>,
    /// Rows left out beyond [`MAX_ROWS`].
    pub more: usize,
    /// Whether names were opened with this device's key.
    pub named: bool,
    /// Every access end in the summary's order, with names where the bundle has them.
    pub ended: Vec<EndedNamed>,
}

/// An access end and its completed rotation, named for the window's sentence
/// (`audit-ended-{kind}` in the catalogs).
#[derive(Debug, Serialize)]
pub struct EndedNamed {
    /// `member_removed`, `device_revoked`, … ([`ledgerline_audit::AccessEnd`]).
    pub kind: AccessEnd,
    /// When, as the roster has it.
    pub at: String,
    /// The member whose access ended: their name, or their id.
    pub who: String,
    /// The revoked device's id, shortened as the members view shows it.
    pub device: String,
    /// The customer file: its name, or its id.
    pub file: String,
    /// The colleague whose cover ended: their name, or their id.
    pub colleague: String,
    /// Customer files that got a new epoch.
    pub files: usize,
    /// Member keys that got a new version.
    pub keys: usize,
}

impl EndedNamed {
    fn new(r: &RevocationSummary, names: Option<&NameMap>) -> Self {
        let member = |id: &str| name_or_id(names.map(|n| &n.members), id);
        Self {
            kind: r.kind,
            at: r.at.clone(),
            who: member(&r.member),
            device: r
                .device
                .as_deref()
                .map(|d| d.chars().take(8).collect())
                .unwrap_or_default(),
            file: r
                .file
                .as_deref()
                .map(|f| name_or_id(names.map(|n| &n.files), f))
                .unwrap_or_default(),
            colleague: r.colleague.as_deref().map(member).unwrap_or_default(),
            files: r.files,
            keys: r.member_keys,
        }
    }
}

/// Verifies the bundle at `path` offline. Names are shown when the bundle carries a name
/// map sealed to this device. A bundle that does not verify is an error naming the first
/// finding: no partial report is shown as if it were good.
#[tauri::command]
pub async fn audit_verify(desk: State<'_, Desk>, path: String) -> Answer<Report> {
    let path = PathBuf::from(path.trim());
    let open = move || {
        std::fs::File::open(&path)
            .map(std::io::BufReader::new)
            .map_err(|e| {
                Failure::invalid("unreadable", format!("cannot read {}: {e}", path.display()))
            })
    };
    let (header, sealed) =
        ledgerline_audit::read_names(open()?).map_err(|e| finding("malformed", e))?;
    let names: Option<NameMap> = desk
        .on(async move |slot: &mut Option<Profile>| match slot {
            Some(p) => p.open_names(&header, &sealed).map_err(Failure::from),
            None => Ok(None),
        })
        .await?;
    tokio::task::spawn_blocking(move || verify(open()?, names.as_ref()))
        .await
        .map_err(|e| Failure::app("stopped", e.to_string()))?
}

/// A bundle that does not verify: the kind `audit_finding`, its reason the finding's class
/// (`fork`, `bad_signature`, …: the CLI's `--json` words).
fn finding(class: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        code: "audit_finding",
        reason: Some(class.to_owned()),
        detail: format!("the bundle does not verify: {e}"),
    }
}

fn verify(bundle: impl BufRead, names: Option<&NameMap>) -> Answer<Report> {
    let mut v = Verifier::new(ledgerline_audit::Options::default());
    let mut rows = Vec::new();
    let mut more = 0;
    let mut keep = |batch: Vec<Row>| {
        for row in batch {
            if rows.len() < MAX_ROWS {
                rows.push(named(row, names));
            } else {
                more += 1;
            }
        }
    };
    let found = |e: ledgerline_audit::AuditError| finding(e.class(), e);
    for line in bundle.lines() {
        let line = line.map_err(|e| Failure::invalid("unreadable", e.to_string()))?;
        if !line.trim().is_empty() {
            keep(v.line(&line).map_err(found)?);
        }
    }
    let (summary, last) = v.finish().map_err(found)?;
    keep(last);
    let ended = summary
        .revocations
        .iter()
        .map(|r| EndedNamed::new(r, names))
        .collect();
    Ok(Report {
        ended,
        summary,
        rows,
        more,
        named: names.is_some(),
    })
}

fn named(row: Row, names: Option<&NameMap>) -> ReportRow {
    let who = match row.member {
        Some(m) => name_or_id(names.map(|n| &n.members), &m.to_hex()),
        None => "relay".to_owned(),
    };
    let subjects_named = row
        .subjects
        .iter()
        .map(|s| names.map_or_else(|| s.clone(), |n| n.subject(s)))
        .collect();
    ReportRow {
        row,
        who,
        subjects_named,
    }
}

/// The name `names` gives the hex id `id`, or the id when there is none.
fn name_or_id(names: Option<&BTreeMap<String, String>>, id: &str) -> String {
    names
        .and_then(|n| n.get(id).cloned())
        .unwrap_or_else(|| id.to_owned())
}
