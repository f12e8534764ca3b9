//! An e-mail message as the intake reads it: MIME parsed by `mail-parser` (charsets,
//! quoted-printable, base64, RFC 2047 words, HTML bodies turned into plain text), then
//! reduced to what a customer file keeps. Every byte here came from whoever sent the
//! mail: sizes are bounded and names are cleaned before they become document names.

use mail_parser::{MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

/// The largest message the intake reads (larger ones are reported, not imported).
pub const MAX_MESSAGE_BYTES: usize = 50 * 1024 * 1024;
/// The body text a record keeps, in characters (the rest is cut, and said so).
pub const MAX_TEXT_CHARS: usize = 100_000;
/// Attachments kept per message (the rest are named in a warning).
pub const MAX_ATTACHMENTS: usize = 50;
/// A header value kept (subject, names, ids), in characters.
pub const MAX_HEADER_CHARS: usize = 1000;
/// Recipients kept.
pub const MAX_RECIPIENTS: usize = 100;
/// Domain separation of a message's digest (`protocol-spec/mail.md`).
const DIGEST_CONTEXT: &[u8] = b"ledgerline/v1/mail-digest\0";

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailParseError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("the message is {0} bytes, more than the {MAX_MESSAGE_BYTES} the intake reads")]
    TooLarge(usize),
    /// No header block an e-mail message has (no From, Date or Subject).
    #[error("not an e-mail message: no From, Date or Subject header")]
    NoHeaders,
}

/// One attachment.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// A cleaned file name (never a path; never empty).
    pub name: String,
    /// MIME type as declared (`application/pdf`), lowercase.
    pub mime: String,
    /// Decoded content.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Contents never reach a log line.
        f.debug_struct("Attachment")
            .field("mime", &self.mime)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// A message reduced to what the intake keeps.
#[derive(Clone)]
pub struct ParsedMail {
    /// SHA-256 of the raw message (with [`DIGEST_CONTEXT`]): the identity that keeps a
    /// message from being imported twice, whatever its UID.
    pub digest: [u8; 32],
    /// Sender's address, lowercase (empty when the header has none).
    pub from: String,
    /// Sender's display name.
    pub from_name: Option<String>,
    /// Recipients' addresses.
    pub to: Vec<String>,
    /// Subject, decoded (empty when absent).
    pub subject: String,
    /// `Date:` in milliseconds since the Unix epoch, when it parses.
    pub date_ms: Option<u64>,
    /// `Message-ID:` (shown, never trusted as identity).
    pub message_id: Option<String>,
    /// Body as plain text (an HTML-only body converted to text), bounded.
    pub text: String,
    /// Attachments, bounded in number.
    pub attachments: Vec<Attachment>,
    /// What was cut or skipped (shown with the message).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for ParsedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Mail contents are customer data: never in a log line.
        f.debug_struct("ParsedMail")
            .field("digest", &hex::encode(&self.digest[..8]))
            .field("attachments", &self.attachments.len())
            .finish_non_exhaustive()
    }
}

/// The digest of a raw message.
pub fn digest(raw: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DIGEST_CONTEXT);
    h.update(raw);
    h.finalize().into()
}

/// Parses a raw RFC 5322 message.
pub fn parse(raw: &[u8]) -> Result<ParsedMail, MailParseError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(MailParseError::TooLarge(raw.len()));
    }
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(MailParseError::NoHeaders)?;
    if msg.from().is_none() && msg.date().is_none() && msg.subject().is_none() {
        return Err(MailParseError::NoHeaders);
    }
    let mut warnings = Vec::new();
    let sender = msg.from().and_then(|a| a.first());
    let from = sender
        .and_then(|a| a.address())
        .map(|a| clean_line(a).to_lowercase())
        .unwrap_or_default();
    if from.is_empty() {
        warnings.push("no sender address".to_owned());
    }
    let from_name = sender
        .and_then(|a| a.name())
        .map(clean_line)
        .filter(|n| !n.is_empty());
    let to = msg
        .to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .take(MAX_RECIPIENTS)
                .map(|x| clean_line(x).to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let subject = msg.subject().map(clean_line).unwrap_or_default();
    let date_ms = msg
        .date()
        .map(|d| d.to_timestamp())
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| s.saturating_mul(1000));
    let message_id = msg.message_id().map(clean_line);
    let mut text = msg.body_text(0).map(|t| clean_text(&t)).unwrap_or_default();
    if text.chars().count() > MAX_TEXT_CHARS {
        text = text.chars().take(MAX_TEXT_CHARS).collect();
        warnings.push(format!("the text was cut at {MAX_TEXT_CHARS} characters"));
    }
    let mut attachments = Vec::new();
    for (n, part) in msg.attachments().enumerate() {
        let mime = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".to_owned())
            .to_lowercase();
        let name = clean_name(part.attachment_name(), n + 1, &mime);
        if attachments.len() == MAX_ATTACHMENTS {
            warnings.push(format!(
                "attachment {name} skipped: more than {MAX_ATTACHMENTS}"
            ));
            continue;
        }
        // An attached message (message/rfc822) is kept whole, as the .eml it is.
        let bytes = part.contents().to_vec();
        attachments.push(Attachment { name, mime, bytes });
    }
    Ok(ParsedMail {
        digest: digest(raw),
        from,
        from_name,
        to,
        subject,
        date_ms,
        message_id,
        text,
        attachments,
        warnings,
    })
}

/// One line of header text: control characters (CR, LF, NUL, escapes) out, trimmed,
/// at most [`MAX_HEADER_CHARS`] (a hostile header must not make a record too large to
/// store, which would stop the intake at that message).
fn clean_line(s: &str) -> String {
    one_line(s, MAX_HEADER_CHARS)
}

/// Text from a peer as one line: control characters out, trimmed, at most `max` chars.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Body text: line breaks and tabs kept, every other control character (a terminal escape
/// in a hostile mail) dropped.
fn clean_text(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A document name from an attachment's declared name: no directories, no control
/// characters, no leading dots, bounded; `załącznik-N` with an extension from the type
/// when nothing usable is left.
fn clean_name(declared: Option<&str>, n: usize, mime: &str) -> String {
    let base = declared
        .map(|d| d.rsplit(['/', '\\']).next().unwrap_or(""))
        .unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .chars()
        .take(200)
        .collect();
    if !cleaned.is_empty() {
        return cleaned;
    }
    let ext = match mime {
        "application/pdf" => "pdf",
        "application/xml" | "text/xml" => "xml",
        "message/rfc822" => "eml",
        "text/plain" => "txt",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        _ => "bin",
    };
    format!("załącznik-{n}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polish_charsets_and_encoded_words_decode() {
        // ISO-8859-2 body in quoted-printable, RFC 2047 B-encoded UTF-8 subject.
        let raw = b"From: =?ISO-8859-2?Q?Jan_Ko=B3odziej?= <Jan@Firma.PL>\r\n\
To: biuro@example.pl\r\n\
Subject: =?UTF-8?B?RmFrdHVyYSB6YSBwYcW6ZHppZXJuaWs=?=\r\n\
Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n\
Content-Type: text/plain; charset=ISO-8859-2\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Za=BF=F3=B3=E6 g=EA=B6l=B1 ja=BC=F1\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.from, "jan@firma.pl");
        assert_eq!(m.from_name.as_deref(), Some("Jan Kołodziej"));
        assert_eq!(m.subject, "Faktura za październik");
        assert_eq!(m.text, "Zażółć gęślą jaźń");
        assert_eq!(m.date_ms, Some(1_793_610_000_000));
    }

    #[test]
    fn windows_1250_html_only_bodies_become_text() {
        let raw = b"From: biuro@firma.pl\r\nSubject: test\r\n\
Content-Type: text/html; charset=windows-1250\r\n\r\n\
<html><body><p>Wyci\xb9g <b>bankowy</b></p><script>alert(1)</script></body></html>\r\n";
        let m = parse(raw).unwrap();
        assert!(m.text.contains("Wyciąg"), "{}", m.text);
        assert!(m.text.contains("bankowy"));
        assert!(!m.text.contains('<'), "{}", m.text);
    }

    #[test]
    fn attachments_keep_cleaned_names_and_exact_bytes() {
        let raw = b"From: a@b.pl\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
Content-Type: text/plain\r\n\r\nhello\r\n--XX\r\n\
Content-Type: application/pdf; name=\"=?UTF-8?Q?..=2F..=2Fetc=2Ffaktura_=C5=BC.pdf?=\"\r\n\
Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n\
--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment\r\n\r\nabc\r\n--XX--\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.text, "hello");
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[0].name, "faktura ż.pdf");
        assert_eq!(m.attachments[0].bytes, b"%PDF-1.4\n");
        assert_eq!(m.attachments[1].name, "załącznik-2.bin");
    }

    #[test]
    fn garbage_is_refused_with_a_reason_and_digests_separate_messages() {
        assert_eq!(
            parse(b"\x00\x01\x02 this is not mail").unwrap_err(),
            MailParseError::NoHeaders
        );
        assert_eq!(parse(b"").unwrap_err(), MailParseError::NoHeaders);
        let big = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(parse(&big), Err(MailParseError::TooLarge(_))));
        assert_ne!(digest(b"From: a\r\n"), digest(b"From: b\r\n"));
        assert_eq!(digest(b"x"), digest(b"x"));
    }

    #[test]
    fn control_characters_never_survive() {
        let raw = b"From: a@b.pl\r\nSubject: =?UTF-8?Q?a=1B[31mred?=\r\n\r\nline\x1b[2J one\r\nline two\r\n";
        let m = parse(raw).unwrap();
        assert!(!m.subject.contains('\x1b'));
        assert!(!m.text.contains('\x1b'));
        assert_eq!(m.text, "line[2J one\nline two");
    }
}
