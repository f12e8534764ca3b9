//! Reading a mailbox over IMAP (RFC 3501) with implicit TLS: `async-imap` on a
//! `tokio-rustls` stream verified against the system's roots plus the office's own CA.
//! Messages are read with `BODY.PEEK[]`, so the intake never marks anything as read, and
//! one at a time, so memory stays bounded by the largest message.

use super::parse::MAX_MESSAGE_BYTES;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How long one step (connect, a command, one message) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a mailbox is. The password is not here: it lives in the OS keyring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxConfig {
    /// IMAP server host name (checked against its certificate).
    pub host: String,
    /// Port of implicit TLS (993).
    pub port: u16,
    /// Login.
    pub user: String,
    /// Folder read (`INBOX`).
    pub folder: String,
    /// An extra CA (PEM) the server's certificate may chain to (an office's own).
    pub ca_file: Option<PathBuf>,
}

impl MailboxConfig {
    /// How the mailbox is named in lists and in the keyring: `user@host/folder`.
    pub fn label(&self) -> String {
        format!("{}@{}/{}", self.user, self.host, self.folder)
    }
}

/// What went wrong talking to the mail server (no message content is ever in here).
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// No connection, TLS refused, timeout.
    #[error("the mail server {0}")]
    Unreachable(String),
    /// Login refused.
    #[error("the mail server refused the login: {0}")]
    Login(String),
    /// The server answered something an IMAP server should not.
    #[error("the mail server answered badly: {0}")]
    Protocol(String),
}

/// A logged-in session with the folder selected.
pub struct Session {
    inner: async_imap::Session<TlsStream<TcpStream>>,
    /// The folder's UIDVALIDITY (RFC 3501 §2.3.1.1): when it changes, every UID is new.
    pub uid_validity: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("uid_validity", &self.uid_validity)
            .finish_non_exhaustive()
    }
}

async fn step<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ImapError::Protocol(format!("{what}: {e}"))),
        Err(_) => Err(ImapError::Unreachable(format!(
            "did not answer {what} within {} s",
            STEP_TIMEOUT.as_secs()
        ))),
    }
}

impl Session {
    /// Connects with TLS, logs in and selects the folder.
    pub async fn open(config: &MailboxConfig, password: &str) -> Result<Self, ImapError> {
        let tls = tokio_rustls::TlsConnector::from(
            crate::transport::client_tls(config.ca_file.as_deref(), "the mailbox's CA file")
                .map_err(ImapError::Unreachable)?,
        );
        let name = rustls::pki_types::ServerName::try_from(config.host.clone())
            .map_err(|_| ImapError::Unreachable(format!("{:?} is not a host name", config.host)))?;
        let tcp = tokio::time::timeout(
            STEP_TIMEOUT,
            TcpStream::connect((config.host.as_str(), config.port)),
        )
        .await
        .map_err(|_| {
            ImapError::Unreachable(format!("{}:{} did not answer", config.host, config.port))
        })?
        .map_err(|e| ImapError::Unreachable(format!("{}:{}: {e}", config.host, config.port)))?;
        let stream = tokio::time::timeout(STEP_TIMEOUT, tls.connect(name, tcp))
            .await
            .map_err(|_| ImapError::Unreachable("did not finish the TLS handshake".into()))?
            .map_err(|e| ImapError::Unreachable(format!("TLS: {e}")))?;
        let mut client = async_imap::Client::new(stream);
        let greeting = tokio::time::timeout(STEP_TIMEOUT, client.read_response())
            .await
            .map_err(|_| ImapError::Unreachable("sent no greeting".into()))?
            .map_err(|e| ImapError::Unreachable(format!("greeting: {e}")))?;
        if greeting.is_none() {
            return Err(ImapError::Unreachable("closed the connection".into()));
        }
        let mut inner =
            match tokio::time::timeout(STEP_TIMEOUT, client.login(&config.user, password)).await {
                Err(_) => return Err(ImapError::Unreachable("did not answer the login".into())),
                Ok(Err((e, _))) => return Err(ImapError::Login(login_reason(&e))),
                Ok(Ok(s)) => s,
            };
        let mailbox = step("SELECT", inner.select(&config.folder)).await?;
        let uid_validity = mailbox.uid_validity.ok_or_else(|| {
            ImapError::Protocol("the folder has no UIDVALIDITY (no UID support)".into())
        })?;
        Ok(Self {
            inner,
            uid_validity,
        })
    }

    /// UIDs above `after`, ascending, with their sizes.
    pub async fn uids_after(&mut self, after: u32) -> Result<Vec<(u32, u32)>, ImapError> {
        let first = after.saturating_add(1);
        let mut out = Vec::new();
        {
            let stream = step(
                "UID FETCH",
                self.inner
                    .uid_fetch(format!("{first}:*"), "(UID RFC822.SIZE)"),
            )
            .await?;
            let items: Vec<_> = tokio::time::timeout(STEP_TIMEOUT, stream.collect::<Vec<_>>())
                .await
                .map_err(|_| ImapError::Unreachable("did not list the new messages".into()))?;
            for f in items {
                let f = f.map_err(|e| ImapError::Protocol(format!("UID FETCH: {e}")))?;
                // `N:*` always names the last message, even below N (RFC 3501 §6.4.8).
                if let Some(uid) = f.uid.filter(|u| *u >= first) {
                    out.push((uid, f.size.unwrap_or(0)));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// One message's raw bytes; `None` when it is gone (expunged meanwhile).
    pub async fn message(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let stream = step(
            "UID FETCH",
            self.inner.uid_fetch(uid.to_string(), "(UID BODY.PEEK[])"),
        )
        .await?;
        let items: Vec<_> = tokio::time::timeout(STEP_TIMEOUT, stream.collect::<Vec<_>>())
            .await
            .map_err(|_| ImapError::Unreachable(format!("did not send message {uid}")))?;
        for f in items {
            let f = f.map_err(|e| ImapError::Protocol(format!("UID FETCH {uid}: {e}")))?;
            if f.uid == Some(uid) {
                if let Some(body) = f.body() {
                    // Parsing reports a message over the limit; no need to hold more of it.
                    let kept = body.get(..=MAX_MESSAGE_BYTES).unwrap_or(body);
                    return Ok(Some(kept.to_vec()));
                }
            }
        }
        Ok(None)
    }

    /// Logs out (best effort: the server may already have closed).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.logout()).await;
    }
}

/// A login error without echoing anything the user typed.
fn login_reason(e: &async_imap::error::Error) -> String {
    match e {
        async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m) => {
            m.chars().filter(|c| !c.is_control()).take(200).collect()
        }
        other => other.to_string(),
    }
}
