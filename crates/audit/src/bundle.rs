//! The bundle's lines.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Context of a name map's associated data: `NAMES_CONTEXT || 0x00 || header line`, so a
/// sealed map opens only with the bundle it was written for.
pub const NAMES_CONTEXT: &str = "ledgerline/v1/audit-names";

/// Associated data of the name map of the bundle whose header line is `header_line`.
pub fn names_ad(header_line: &str) -> Vec<u8> {
    let mut ad = NAMES_CONTEXT.as_bytes().to_vec();
    ad.push(0);
    ad.extend_from_slice(header_line.as_bytes());
    ad
}

/// The names behind a bundle's opaque ids (hex id → name), for the auditor's report. It
/// travels sealed to the auditor's device (`SealedNames`): the relay never sees names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameMap {
    /// Members.
    pub members: BTreeMap<String, String>,
    /// Customer files.
    pub files: BTreeMap<String, String>,
    /// Documents.
    pub documents: BTreeMap<String, String>,
    /// Internal rooms and direct chats.
    pub rooms: BTreeMap<String, String>,
}

impl NameMap {
    /// `kind:id` in words, e.g. `file Kowalski sp. z o.o.` (the id when unnamed).
    pub fn subject(&self, subject: &str) -> String {
        let Some((kind, id)) = subject.split_once(':') else {
            return subject.to_owned();
        };
        let map = match kind {
            "member" => &self.members,
            "file" => &self.files,
            "document" => &self.documents,
            "room" => &self.rooms,
            _ => return subject.to_owned(),
        };
        match map.get(id) {
            Some(name) => format!("{kind} {name}"),
            None => subject.to_owned(),
        }
    }
}

/// A name map sealed to one device of the auditor (`seal_to_device`, hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedNames {
    /// The auditor's device (hex id).
    pub device: String,
    /// The sealed JSON of a [`NameMap`] (hex).
    pub sealed: String,
}

/// The header's `bundle` value for this version of the format.
pub const FORMAT: &str = "ledgerline-audit/1";

/// First line: what the bundle covers and which log it claims to come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`FORMAT`].
    pub bundle: String,
    /// The firm (hex id).
    pub firm: String,
    /// The log's origin (checkpoint key name).
    pub origin: String,
    /// The log's Ed25519 key (hex), as the exporting device pinned it.
    pub log_key: String,
    /// Entries in the log this bundle covers (the last checkpoint's size).
    pub size: u64,
    /// Entries received at or after this time (ms) are whole; `None`: from the start.
    pub from_ms: Option<u64>,
    /// Entries received before this time (ms) are whole; `None`: to the end.
    pub to_ms: Option<u64>,
    /// When the bundle was written (ms, exporting device's clock).
    pub exported_ms: u64,
}

/// One line of a bundle (externally tagged: `{"roster": "…"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Line {
    /// The first line.
    Header(Header),
    /// Optional, right after the header: the name map sealed to an auditor's device.
    Names(SealedNames),
    /// A roster event (hex), in chain order, all of them.
    Roster(String),
    /// A signed checkpoint note (text), ascending by size; the last has the header's size.
    Checkpoint(String),
    /// The next log entry, whole (hex of the leaf).
    Entry(String),
    /// The next log entries as leaf hashes (hex), outside the exported range.
    Hashes(Vec<String>),
}

impl Line {
    /// The line as written (no newline).
    pub fn to_json(&self) -> String {
        // A tree of strings and numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The header line and the name maps sealed right after it, read from the top of a
/// bundle (nothing is verified here: the name map opens only with an auditor's device
/// key, and the verifier checks the rest).
pub fn read_names(bundle: impl std::io::BufRead) -> Result<(String, Vec<SealedNames>), String> {
    let mut lines = bundle.lines();
    let header = match lines.next() {
        Some(Ok(h)) if !h.trim().is_empty() => h,
        Some(Err(e)) => return Err(e.to_string()),
        _ => return Err("the bundle is empty".into()),
    };
    let mut sealed = Vec::new();
    for line in lines {
        match serde_json::from_str::<Line>(&line.map_err(|e| e.to_string())?) {
            Ok(Line::Names(n)) => sealed.push(n),
            _ => break,
        }
    }
    Ok((header, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_from_the_top_of_a_bundle_only() {
        let names = |d: &str| {
            Line::Names(SealedNames {
                device: d.into(),
                sealed: "00".into(),
            })
            .to_json()
        };
        let bundle = [
            "{\"header\":1}".to_owned(),
            names("aa"),
            names("bb"),
            Line::Roster("00".into()).to_json(),
            names("cc"),
        ]
        .join("\n");
        let (header, sealed) = read_names(bundle.as_bytes()).unwrap_or_default();
        assert_eq!(header, "{\"header\":1}");
        let devices: Vec<&str> = sealed.iter().map(|s| s.device.as_str()).collect();
        assert_eq!(
            devices,
            ["aa", "bb"],
            "a name map after the roster is not one"
        );
        assert!(read_names(&b""[..]).is_err());
        assert!(read_names(&b"\n"[..]).is_err());
    }
}
