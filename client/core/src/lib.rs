//! Ledgerline client core: the engine behind the CLI and the desktop app.
//!
//! Holds the keys, decrypts, keeps the encrypted local store and syncs with the relay. It
//! builds on `ledgerline-protocol` for every byte on the wire. Its features arrive with the
//! "client core and CLI" issue.

pub use ledgerline_protocol as protocol;
