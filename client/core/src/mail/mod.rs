//! Mail intake (`protocol-spec/mail.md`): a mailbox read over IMAP on the client, each
//! message parsed, sorted to a customer file and stored there encrypted like any record;
//! its attachments become documents. The relay sees ciphertext only; the mailbox password
//! stays in the OS keyring. Pure parts here; storage and sync live in `profile::mail`.

pub mod imap;
pub mod parse;
pub mod sort;
