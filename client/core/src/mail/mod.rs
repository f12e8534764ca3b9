//! Mail intake (`protocol-spec/mail.md`): a mailbox read over IMAP on the client, each
//! message parsed, sorted to a customer file and stored there encrypted like any record;
//! its attachments become documents. The relay sees ciphertext only; the mailbox password
//! stays in the OS keyring. Pure parts here; storage and sync live in `profile::mail`.

pub mod imap;
pub mod parse;
pub mod sort;

/// The body of the `mail_message` fuzz target (`fuzz/fuzz_targets/mail_message.rs`),
/// replayed over a corpus by this crate's tests: any bytes a sender can put in a mailbox
/// are parsed and sorted without a panic, and what comes out keeps the promises of
/// `protocol-spec/mail.md` (no control characters, clean bounded names).
pub fn fuzz_message(data: &[u8]) {
    let Ok(m) = parse::parse(data) else {
        return;
    };
    let clean = |s: &str| !s.chars().any(|c| c.is_control());
    assert!(
        clean(&m.subject) && clean(&m.from),
        "control characters in a header"
    );
    assert!(
        m.text
            .chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\t'),
        "control characters in the text"
    );
    assert!(m.text.chars().count() <= parse::MAX_TEXT_CHARS);
    assert!(m.subject.chars().count() <= parse::MAX_HEADER_CHARS);
    assert!(m.to.len() <= parse::MAX_RECIPIENTS);
    assert!(m.attachments.len() <= parse::MAX_ATTACHMENTS);
    for a in &m.attachments {
        assert!(
            !a.name.is_empty() && a.name.chars().count() <= 200,
            "attachment name size"
        );
        assert!(
            clean(&a.name) && !a.name.contains(['/', '\\']) && !a.name.starts_with('.'),
            "attachment name {:?} is not clean",
            a.name
        );
    }
    let file = ledgerline_protocol::ids::FileId([7; 16]);
    let rules = [sort::Rule {
        on: sort::RuleOn::Subject,
        pattern: "faktura".into(),
        file: Some(file),
        category: Some("invoice".into()),
    }];
    let customers = [sort::Customer {
        file,
        emails: vec!["biuro@kowalski.pl".into()],
        nip: Some("5260250274".into()),
    }];
    let p = sort::place(&m, &rules, &customers);
    assert!(sort::CATEGORIES.contains(&p.category.as_str()));
    for n in sort::nips_in(&m) {
        assert_eq!(n.len(), 10);
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;

    /// Messages of every shape the intake meets, to mutate.
    fn seeds() -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = vec![
            b"From: a@b.pl\r\nSubject: =?UTF-8?B?xbvDs8WCdw==?=\r\n\r\nbody\r\n".to_vec(),
            b"From: =?ISO-8859-2?Q?Jan_Ko=B3odziej?= <jan@firma.pl>\r\nSubject: Faktura 526-025-02-74\r\nContent-Type: text/plain; charset=ISO-8859-2\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nZa=BF=F3=B3=E6\r\n".to_vec(),
            b"From: x@y.pl\r\nSubject: s\r\nContent-Type: text/html; charset=windows-1250\r\n\r\n<p>Wyci\xb9g<script>x</script></p>\r\n".to_vec(),
            b"From: a@b.pl\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/pdf; name=\"=?UTF-8?Q?..=2F..=2Fa=1B.pdf?=\"\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d.pl\r\nSubject: inner\r\n\r\ninner body\r\n--XX--\r\n".to_vec(),
        ];
        out.push(Vec::new());
        out
    }

    #[test]
    fn the_fuzz_body_survives_its_seeds_their_mutations_and_the_regressions() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x6d61696c);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/mail_message");
        let n = ledgerline_vectors::fuzzing::replay(seeds(), &mut rng, &dir, super::fuzz_message);
        assert!(n > 300, "{n}");
    }
}
