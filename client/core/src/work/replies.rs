//! Reply templates: the answers an office gives again and again ("we received your
//! documents", "the VAT payment of {kwota} is due on {termin}"), with placeholders filled
//! from the customer file and the values the sender gives.
//!
//! Placeholders, Polish or English: `{klient}` / `{customer}` (the customer's name),
//! `{termin}` / `{deadline}` (a date, written `31.03.2026`), `{kwota}` / `{amount}` (an
//! amount in złoty, written `1 234,50 zł`). `{{` and `}}` stand for braces. Anything else
//! in braces is refused when the template is saved, so a typo never reaches a customer.

use chrono::NaiveDate;

/// Longest template name, in bytes.
pub const NAME_MAX: usize = 100;
/// Longest template text, in bytes.
pub const BODY_MAX: usize = 4000;

/// Why a template or its values were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A placeholder nobody knows, or a brace without its pair.
    #[error("unknown placeholder {0:?}: use {{klient}}, {{termin}} or {{kwota}} (or {{{{ and }}}} for braces)")]
    Unknown(String),
    /// The template needs a value that was not given.
    #[error("this template needs {0}")]
    Missing(&'static str),
    /// An amount that is not złoty and grosze.
    #[error("not an amount in złoty: {0:?} (e.g. 1234,50)")]
    BadAmount(String),
    /// Empty or too long.
    #[error("{0}")]
    Invalid(String),
}

/// What fills the placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyValues {
    /// The customer's name.
    pub customer: Option<String>,
    /// The deadline.
    pub deadline: Option<NaiveDate>,
    /// The amount in grosze.
    pub amount_grosze: Option<i64>,
}

enum Part<'a> {
    Text(&'a str),
    Customer,
    Deadline,
    Amount,
}

fn parts(body: &str) -> Result<Vec<Part<'_>>, ReplyError> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let Some(at) = rest.find(['{', '}']) else {
            out.push(Part::Text(rest));
            break;
        };
        let (text, tail) = rest.split_at(at);
        if !text.is_empty() {
            out.push(Part::Text(text));
        }
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(Part::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push(Part::Text("}"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| ReplyError::Unknown(tail.chars().take(20).collect()))?;
            let (name, after) = after.split_at(end);
            out.push(match name {
                "klient" | "customer" => Part::Customer,
                "termin" | "deadline" => Part::Deadline,
                "kwota" | "amount" => Part::Amount,
                other => return Err(ReplyError::Unknown(format!("{{{other}}}"))),
            });
            rest = after.get(1..).unwrap_or("");
        } else {
            return Err(ReplyError::Unknown("}".into()));
        }
    }
    Ok(out)
}

/// Checks a template before it is kept: a name and a text of sensible length, and only
/// known placeholders.
pub fn check(name: &str, body: &str) -> Result<(), ReplyError> {
    if name.trim().is_empty() || name.len() > NAME_MAX {
        return Err(ReplyError::Invalid(format!(
            "a template name is 1 to {NAME_MAX} bytes"
        )));
    }
    if body.trim().is_empty() || body.len() > BODY_MAX {
        return Err(ReplyError::Invalid(format!(
            "a template text is 1 to {BODY_MAX} bytes"
        )));
    }
    parts(body).map(|_| ())
}

/// The template's text with its placeholders filled.
pub fn render(body: &str, v: &ReplyValues) -> Result<String, ReplyError> {
    let mut out = String::with_capacity(body.len() + 32);
    for p in parts(body)? {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Customer => out.push_str(
                v.customer
                    .as_deref()
                    .ok_or(ReplyError::Missing("a customer"))?,
            ),
            Part::Deadline => out.push_str(
                &v.deadline
                    .ok_or(ReplyError::Missing("a deadline (--deadline YYYY-MM-DD)"))?
                    .format("%d.%m.%Y")
                    .to_string(),
            ),
            Part::Amount => out.push_str(&format_amount(
                v.amount_grosze
                    .ok_or(ReplyError::Missing("an amount (--amount 1234,50)"))?,
            )),
        }
    }
    Ok(out)
}

/// Parses złoty with at most two decimals, `,` or `.` as the separator, spaces allowed
/// between thousands: `1234`, `1 234,5`, `1234.50`, `-12,00`.
pub fn parse_amount(s: &str) -> Result<i64, ReplyError> {
    let bad = || ReplyError::BadAmount(s.to_owned());
    let t: String = s
        .trim()
        .trim_end_matches("zł")
        .trim_end()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.as_str()),
    };
    let (whole, frac) = match t.split_once([',', '.']) {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    if whole.is_empty()
        || whole.len() > 13
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let zl: i64 = whole.parse().map_err(|_| bad())?;
    let gr: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
        _ => frac.parse().map_err(|_| bad())?,
    };
    let v = zl
        .checked_mul(100)
        .and_then(|z| z.checked_add(gr))
        .ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

/// `1 234,50 zł`, as Polish invoices write it.
pub fn format_amount(grosze: i64) -> String {
    let sign = if grosze < 0 { "-" } else { "" };
    let g = grosze.unsigned_abs();
    let zl = (g / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in zl.chars().enumerate() {
        if i > 0 && (zl.len() - i).is_multiple_of(3) {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{:02} zł", g % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> ReplyValues {
        ReplyValues {
            customer: Some("Kowalski sp. z o.o.".into()),
            deadline: NaiveDate::from_ymd_opt(2026, 3, 25),
            amount_grosze: Some(123_450),
        }
    }

    #[test]
    fn placeholders_fill_in_polish_or_english() {
        let t = "Szanowni Państwo ({klient}), VAT {kwota} płatny do {termin}. {{bez zmian}}";
        assert_eq!(
            render(t, &values()).unwrap(),
            "Szanowni Państwo (Kowalski sp. z o.o.), VAT 1 234,50 zł płatny do 25.03.2026. {bez zmian}"
        );
        assert_eq!(
            render("{customer}: {amount} by {deadline}", &values()).unwrap(),
            "Kowalski sp. z o.o.: 1 234,50 zł by 25.03.2026"
        );
        assert_eq!(
            render("bez wartości", &ReplyValues::default()).unwrap(),
            "bez wartości"
        );
    }

    #[test]
    fn unknown_placeholders_and_missing_values_are_refused() {
        assert_eq!(
            check("x", "Kwota {kwot}").unwrap_err(),
            ReplyError::Unknown("{kwot}".into())
        );
        assert!(matches!(
            check("x", "otwarty {klient").unwrap_err(),
            ReplyError::Unknown(_)
        ));
        assert!(matches!(
            check("x", "zamknięty }").unwrap_err(),
            ReplyError::Unknown(_)
        ));
        assert!(matches!(
            check("", "tekst").unwrap_err(),
            ReplyError::Invalid(_)
        ));
        assert!(matches!(
            check("x", &"a".repeat(BODY_MAX + 1)).unwrap_err(),
            ReplyError::Invalid(_)
        ));
        let v = ReplyValues {
            amount_grosze: None,
            ..values()
        };
        assert!(matches!(
            render("{kwota}", &v).unwrap_err(),
            ReplyError::Missing(_)
        ));
        // Multi-byte text around placeholders stays whole.
        assert_eq!(
            render("żółć {klient} źle", &values()).unwrap(),
            "żółć Kowalski sp. z o.o. źle"
        );
    }

    #[test]
    fn amounts_parse_and_print_as_polish_invoices_write_them() {
        for (s, g) in [
            ("1234", 123_400),
            ("1 234,5", 123_450),
            ("1234.50", 123_450),
            ("0,07", 7),
            ("-12,00", -1200),
            ("1 000 000,00 zł", 100_000_000),
        ] {
            assert_eq!(parse_amount(s).unwrap(), g, "{s}");
        }
        for s in ["", "12,345", "1,2,3", "abc", "12a", ",5", "99999999999999"] {
            assert!(parse_amount(s).is_err(), "{s}");
        }
        assert_eq!(format_amount(123_450), "1 234,50 zł");
        assert_eq!(format_amount(7), "0,07 zł");
        assert_eq!(format_amount(-100_000_000), "-1 000 000,00 zł");
        assert_eq!(format_amount(99_900), "999,00 zł");
    }
}
