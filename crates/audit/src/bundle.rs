//! The bundle's lines.

use serde::{Deserialize, Serialize};

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
