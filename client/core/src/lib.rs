//! Ledgerline client core: the engine behind the CLI and the desktop app.
//!
//! Holds the keys, decrypts, keeps the encrypted local store and syncs with the relay,
//! building on `ledgerline-protocol` for every byte on the wire:
//!
//! | module | role |
//! |---|---|
//! | [`device`] | the device's vodozemac `Account` (signs requests and records), its wrap key, signed prekeys, encrypted pickles |
//! | [`onboarding`] | founding a firm, sealed join requests, fingerprint-checked approval |
//! | [`olm`] | pairwise Olm sessions between devices and the to-device wire format |
//! | [`store`] | the encrypted local store (SQLCipher, Argon2id passphrase key, FTS5 search) |
//! | [`keystore`] | the store key in the OS keyring, with the passphrase as the fallback |
//! | [`transport`] | the relay API over a `Transport` (HTTP by default), signed as the device, with clear errors |
//! | [`room`] | Megolm room sessions: rotation policy, room-key shares, a timeline that keeps messages whose key has not arrived |
//! | [`ksef`] | KSeF intake: the KSeF number and its check (growing with the KSeF issue) |
//! | [`mail`] | mail intake: IMAP over TLS, MIME parsing, sorting rules |
//! | [`profile`] | one device's profile: every action (found, invite, join, approve, files and epochs, chat, sync, search) with crash-safe commits |
//!
//! The CLI (`ledgerline`) and the desktop app are thin layers over [`profile::Profile`].
#![forbid(unsafe_code)]

pub mod device;
pub mod keystore;
pub mod ksef;
pub mod mail;
pub mod olm;
pub mod onboarding;
mod pickle;
pub mod profile;
pub mod room;
pub mod store;
pub mod transport;
pub mod when;
pub mod work;

pub use chrono;
pub use ledgerline_protocol as protocol;

/// HKDF info of the key that encrypts pickled state in the local store
/// (`protocol-spec/constants.md`, "Client-local").
pub const PICKLE_INFO: &str = "ledgerline/v1/client-pickle";
