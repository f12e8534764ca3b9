//! Audit bundles (`protocol-spec/audit-bundle.md`): what a firm's owner exports for an
//! auditor, and the verifier the auditor runs offline.
//!
//! A bundle is JSON Lines: a header, the firm's whole roster chain, the checkpoints the
//! exporting device accepted, then the log in order — each entry either whole (inside the
//! exported time range) or as its leaf hash (outside it), so that every checkpoint's root
//! can be recomputed. The verifier streams it: memory stays bounded by the roster and the
//! checkpoints, never by the number of entries.

#![forbid(unsafe_code)]

mod bundle;
mod report;
mod verify;

pub use bundle::{names_ad, read_names, Header, Line, NameMap, SealedNames, FORMAT, NAMES_CONTEXT};
pub use report::{action, format_ms, parse_time};
pub use verify::{
    AccessEnd, AuditError, Options, RevocationSummary, Row, Summary, Verifier, Witness,
};
