//! Work features over decrypted data (`protocol-spec/work.md`): the rules an accounting
//! office lives by — Polish identifiers, working days and holidays, recurring deadlines —
//! and the merge of concurrent edits. Pure functions here; storage and sync live in
//! `profile::work`.

pub mod calendar;
pub mod ids;
pub mod merge;
pub mod offer_pdf;
pub mod offers;
pub mod replies;
pub mod templates;
