//! An FA(3) e-invoice read (`faktury/schemy/FA/schemat_FA(3)_v1-0E.xsd`): the parties,
//! dates, totals per VAT rate in exact decimals, payment due dates and the invoices a
//! correction corrects. The XML is untrusted input (it comes from whoever issued the
//! invoice, through KSeF): no DTD, no entity other than XML's five, bounded size and depth,
//! and every amount must have the schema's form (`TKwotowy`). What the reader cannot make
//! sense of is an error the caller turns into a warning; the original bytes are kept
//! either way.

use chrono::NaiveDate;
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The FA(3) namespace (`targetNamespace` of the schema).
pub const FA3_NAMESPACE: &str = "http://crd.gov.pl/wzor/2025/06/25/13775/";
/// The largest invoice read (KSeF accepts 1 MB without attachments, 3 MB with).
pub const MAX_INVOICE_BYTES: usize = 5 << 20;
/// The deepest element nesting read (the schema needs under 10).
const MAX_DEPTH: usize = 32;
/// Longest text kept from one element (names are at most 512 characters in the schema).
const MAX_TEXT: usize = 512;

/// A party of the invoice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// NIP (10 digits), when the party has one.
    pub nip: Option<String>,
    /// EU VAT number (`DE123…`) or another identifier, when it has no NIP.
    pub other_id: Option<String>,
    /// Name.
    pub name: String,
}

/// Net and VAT of one rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateTotal {
    /// The rate as the schema groups it: `23`, `8`, `5`, `4` (taxi), `oss`, `0`,
    /// `0-wdt`, `0-export`, `zw`, `np`, `np-art100`, `oo` (reverse charge), `margin`.
    pub rate: String,
    /// Net (`P_13_x`).
    pub net: Decimal,
    /// VAT (`P_14_x`; zero where the rate has none).
    pub vat: Decimal,
}

/// An FA(3) invoice as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The issuer's number (`P_2`).
    pub number: String,
    /// `VAT`, `KOR`, `ZAL`, `ROZ`, `UPR`, `KOR_ZAL`, `KOR_ROZ`.
    pub kind: String,
    /// Issued (`P_1`).
    pub issued: NaiveDate,
    /// Delivery or service date (`P_6`), when given.
    pub sold: Option<NaiveDate>,
    /// Currency (ISO 4217).
    pub currency: String,
    /// Seller (`Podmiot1`).
    pub seller: Party,
    /// Buyer (`Podmiot2`).
    pub buyer: Party,
    /// Totals per rate, in the schema's order; rates absent from the invoice are left out.
    pub rates: Vec<RateTotal>,
    /// Sum of the nets.
    pub net: Decimal,
    /// Sum of the VAT amounts.
    pub vat: Decimal,
    /// Amount due (`P_15`).
    pub gross: Decimal,
    /// Payment due dates (`Platnosc/TerminPlatnosci/Termin`), earliest first.
    pub due: Vec<NaiveDate>,
    /// Marked paid on the invoice (`Platnosc/Zaplacono`).
    pub paid: bool,
    /// KSeF numbers of the invoices this one corrects.
    pub corrects: Vec<String>,
    /// What does not add up (the invoice is still read).
    pub warnings: Vec<String>,
}

/// Why an invoice could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// Not well-formed XML, or XML we refuse (DTD, unknown entities, too deep, too large).
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// Well-formed, but not an FA(3) invoice.
    #[error("not an FA(3) invoice: {0}")]
    Schema(String),
}

/// The rate groups of FA(3): (net field, VAT field, label).
const RATES: &[(&str, Option<&str>, &str)] = &[
    ("P_13_1", Some("P_14_1"), "23"),
    ("P_13_2", Some("P_14_2"), "8"),
    ("P_13_3", Some("P_14_3"), "5"),
    ("P_13_4", Some("P_14_4"), "4"),
    ("P_13_5", Some("P_14_5"), "oss"),
    ("P_13_6_1", None, "0"),
    ("P_13_6_2", None, "0-wdt"),
    ("P_13_6_3", None, "0-export"),
    ("P_13_7", None, "zw"),
    ("P_13_8", None, "np"),
    ("P_13_9", None, "np-art100"),
    ("P_13_10", None, "oo"),
    ("P_13_11", None, "margin"),
];

/// Elements the schema requires that the reader does not otherwise need: an invoice without
/// one is read, with a warning that it is not valid FA(3).
const REQUIRED: &[&str] = &[
    "Naglowek/WariantFormularza",
    "Naglowek/DataWytworzeniaFa",
    "Podmiot1/Adres",
    "Podmiot2/JST",
    "Podmiot2/GV",
    "Fa/Adnotacje",
];

/// The fields read, by their path below `Faktura`.
#[derive(Default)]
struct Fields {
    /// Required elements of the schema that were present (by path).
    present: std::collections::BTreeSet<&'static str>,
    form: Option<String>,
    system_code: Option<String>,
    seller_nip: Option<String>,
    seller_name: Option<String>,
    buyer_nip: Option<String>,
    buyer_eu: (Option<String>, Option<String>),
    buyer_other: Option<String>,
    buyer_name: Option<String>,
    currency: Option<String>,
    p1: Option<String>,
    p2: Option<String>,
    p6: Option<String>,
    p15: Option<String>,
    kind: Option<String>,
    amounts: Vec<(String, String)>,
    due: Vec<String>,
    paid: bool,
    corrects: Vec<String>,
}

impl Fields {
    fn take(&mut self, path: &[String], text: String) {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        match p.as_slice() {
            ["Naglowek", "KodFormularza"] => self.form = Some(text),
            ["Podmiot1", "DaneIdentyfikacyjne", "NIP"] => self.seller_nip = Some(text),
            ["Podmiot1", "DaneIdentyfikacyjne", "Nazwa"] => self.seller_name = Some(text),
            ["Podmiot2", "DaneIdentyfikacyjne", "NIP"] => self.buyer_nip = Some(text),
            ["Podmiot2", "DaneIdentyfikacyjne", "KodUE"] => self.buyer_eu.0 = Some(text),
            ["Podmiot2", "DaneIdentyfikacyjne", "NrVatUE"] => self.buyer_eu.1 = Some(text),
            ["Podmiot2", "DaneIdentyfikacyjne", "NrID"] => self.buyer_other = Some(text),
            ["Podmiot2", "DaneIdentyfikacyjne", "Nazwa"] => self.buyer_name = Some(text),
            ["Fa", "KodWaluty"] => self.currency = Some(text),
            ["Fa", "P_1"] => self.p1 = Some(text),
            ["Fa", "P_2"] => self.p2 = Some(text),
            ["Fa", "P_6"] => self.p6 = Some(text),
            ["Fa", "P_15"] => self.p15 = Some(text),
            ["Fa", "RodzajFaktury"] => self.kind = Some(text),
            ["Fa", "DaneFaKorygowanej", "NrKSeFFaKorygowanej"] => self.corrects.push(text),
            ["Fa", "Platnosc", "TerminPlatnosci", "Termin"] => self.due.push(text),
            ["Fa", "Platnosc", "Zaplacono"] => self.paid = text == "1",
            ["Fa", field] if field.starts_with("P_13_") || field.starts_with("P_14_") => {
                self.amounts.push(((*field).to_owned(), text));
            }
            _ => {}
        }
    }
}

/// Reads an FA(3) invoice.
pub fn parse(xml: &[u8]) -> Result<Invoice, InvoiceError> {
    if xml.len() > MAX_INVOICE_BYTES {
        return Err(InvoiceError::Xml(format!(
            "{} bytes, more than the {MAX_INVOICE_BYTES} read",
            xml.len()
        )));
    }
    let text = std::str::from_utf8(xml)
        .map_err(|e| InvoiceError::Xml(format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut fields = Fields::default();
    let mut root_seen = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| InvoiceError::Xml(format!("at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::DocType(_) => {
                return Err(InvoiceError::Xml(
                    "a DOCTYPE (refused: entities and external references)".into(),
                ))
            }
            Event::Start(e) => {
                let local = e.local_name().as_ref().to_owned();
                if !root_seen {
                    root_seen = true;
                    check_root(&e, &local)?;
                } else {
                    if local == "KodFormularza" && path == ["Naglowek"] {
                        fields.system_code = attribute(&e, "kodSystemowy");
                    }
                    path.push(local);
                    let joined = path.join("/");
                    if let Some(r) = REQUIRED.iter().find(|r| **r == joined) {
                        fields.present.insert(r);
                    }
                }
                if path.len() > MAX_DEPTH {
                    return Err(InvoiceError::Xml(format!(
                        "nested more than {MAX_DEPTH} deep"
                    )));
                }
                current.clear();
            }
            Event::Empty(_) if !root_seen => {
                return Err(InvoiceError::Schema("the root element is empty".into()));
            }
            Event::Empty(_) => {}
            Event::Text(t) => push_text(&mut current, &t.xml10_content())?,
            Event::CData(t) => push_text(&mut current, &t.xml10_content())?,
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(InvoiceError::Xml(format!(
                                "unknown entity &{};",
                                other.chars().take(32).collect::<String>()
                            )))
                        }
                    },
                    Err(e) => return Err(InvoiceError::Xml(e.to_string())),
                };
                push_text(&mut current, &c.to_string())?;
            }
            Event::End(_) => {
                if path.is_empty() {
                    // The root closed: anything after it is refused by the reader's
                    // well-formedness check at Eof.
                    continue;
                }
                // The schema's types are `xsd:token`: whitespace runs collapse to one space.
                // Control characters (a terminal escape as `&#27;`) never reach a screen.
                let text = std::mem::take(&mut current)
                    .replace(|c: char| c.is_control(), " ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                if !text.is_empty() {
                    fields.take(&path, text);
                }
                path.pop();
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !root_seen {
        return Err(InvoiceError::Xml("no root element".into()));
    }
    build(fields)
}

fn push_text(current: &mut String, s: &str) -> Result<(), InvoiceError> {
    if current.len() + s.len() > MAX_TEXT * 4 {
        return Err(InvoiceError::Schema(format!(
            "an element's text is longer than {MAX_TEXT} characters"
        )));
    }
    current.push_str(s);
    Ok(())
}

fn attribute(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The root must be `Faktura` in the FA(3) namespace.
fn check_root(e: &quick_xml::events::BytesStart<'_>, local: &str) -> Result<(), InvoiceError> {
    if local != "Faktura" {
        return Err(InvoiceError::Schema(format!(
            "the root element is <{}>, not <Faktura>",
            local.chars().take(64).collect::<String>()
        )));
    }
    let name = e.name();
    let wanted = match name.prefix() {
        Some(p) => format!("xmlns:{}", p.as_ref()),
        None => "xmlns".to_owned(),
    };
    let ns = e
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == wanted)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        });
    match ns.as_deref() {
        Some(FA3_NAMESPACE) => Ok(()),
        Some(other) => Err(InvoiceError::Schema(format!(
            "namespace {}, not FA(3)'s",
            other.chars().take(100).collect::<String>()
        ))),
        None => Err(InvoiceError::Schema("no FA(3) namespace".into())),
    }
}

fn need(v: Option<String>, what: &str) -> Result<String, InvoiceError> {
    v.ok_or_else(|| InvoiceError::Schema(format!("{what} is missing")))
}

/// A `TKwotowy` amount: `-?([1-9]\d{0,15}|0)(\.\d{1,2})?`.
pub fn amount(s: &str) -> Result<Decimal, InvoiceError> {
    let bad = || {
        InvoiceError::Schema(format!(
            "{:?} is not an amount",
            s.chars().take(40).collect::<String>()
        ))
    };
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let whole_ok = whole == "0"
        || (!whole.is_empty()
            && whole.len() <= 16
            && !whole.starts_with('0')
            && whole.bytes().all(|b| b.is_ascii_digit()));
    let frac_ok =
        frac.is_none_or(|f| (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()));
    if !whole_ok || !frac_ok {
        return Err(bad());
    }
    Decimal::from_str(s).map_err(|_| bad())
}

/// A `TData` date (`YYYY-MM-DD`).
fn date(s: &str, what: &str) -> Result<NaiveDate, InvoiceError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| InvoiceError::Schema(format!("{what} {s:?} is not a date")))
}

fn build(f: Fields) -> Result<Invoice, InvoiceError> {
    if f.form.as_deref() != Some("FA") || f.system_code.as_deref() != Some("FA (3)") {
        return Err(InvoiceError::Schema(
            "the form code is not FA with system code \"FA (3)\"".into(),
        ));
    }
    let mut warnings = Vec::new();
    for r in REQUIRED {
        if !f.present.contains(r) {
            warnings.push(format!("not valid FA(3): {r} is missing"));
        }
    }
    let seller_nip = need(f.seller_nip, "the seller's NIP")?;
    if crate::work::ids::parse_nip(&seller_nip).is_err() {
        warnings.push(format!("the seller's NIP {seller_nip} fails its checksum"));
    }
    let buyer_nip = f.buyer_nip;
    if let Some(n) = &buyer_nip {
        if crate::work::ids::parse_nip(n).is_err() {
            warnings.push(format!("the buyer's NIP {n} fails its checksum"));
        }
    }
    let other_id = match f.buyer_eu {
        (Some(c), Some(n)) => Some(format!("{c}{n}")),
        _ => f.buyer_other,
    };
    let mut rates = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in &f.amounts {
        let known = RATES
            .iter()
            .any(|(n, v, _)| n == name || v.is_some_and(|v| v == name || format!("{v}W") == *name));
        if !known {
            return Err(InvoiceError::Schema(format!("unknown field {name}")));
        }
        if !seen.insert(name.clone()) {
            return Err(InvoiceError::Schema(format!("{name} appears twice")));
        }
    }
    let get = |name: &str| -> Result<Option<Decimal>, InvoiceError> {
        f.amounts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| amount(v))
            .transpose()
    };
    let (mut net, mut vat) = (Decimal::ZERO, Decimal::ZERO);
    for (net_field, vat_field, label) in RATES {
        let n = get(net_field)?;
        let v = match vat_field {
            Some(v) => get(v)?,
            None => None,
        };
        if n.is_none() && v.is_none() {
            continue;
        }
        let (n, v) = (n.unwrap_or_default(), v.unwrap_or_default());
        net += n;
        vat += v;
        rates.push(RateTotal {
            rate: (*label).to_owned(),
            net: n,
            vat: v,
        });
    }
    let gross = amount(&need(f.p15, "P_15 (the amount due)")?)?;
    let kind = need(f.kind, "RodzajFaktury")?;
    if !["VAT", "KOR", "ZAL", "ROZ", "UPR", "KOR_ZAL", "KOR_ROZ"].contains(&kind.as_str()) {
        return Err(InvoiceError::Schema(format!(
            "unknown invoice kind {:?}",
            kind.chars().take(20).collect::<String>()
        )));
    }
    // A settlement invoice (ROZ) states what is left to pay; the others their totals.
    if kind != "ROZ" && net + vat != gross && !rates.is_empty() {
        warnings.push(format!(
            "the totals do not add up: net {net} + VAT {vat} ≠ due {gross}"
        ));
    }
    let mut due = f
        .due
        .iter()
        .map(|d| date(d, "the payment due date"))
        .collect::<Result<Vec<_>, _>>()?;
    due.sort();
    due.dedup();
    let corrects: Vec<String> = f.corrects;
    for k in &corrects {
        if super::number::parse_ksef_number(k).is_err() {
            warnings.push(format!(
                "the corrected invoice's KSeF number {k} is not valid"
            ));
        }
    }
    let currency = need(f.currency, "KodWaluty")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(InvoiceError::Schema(format!(
            "currency {:?} is not an ISO 4217 code",
            currency.chars().take(10).collect::<String>()
        )));
    }
    Ok(Invoice {
        number: need(f.p2, "P_2 (the invoice number)")?,
        kind,
        issued: date(&need(f.p1, "P_1 (the issue date)")?, "the issue date")?,
        sold: f
            .p6
            .as_deref()
            .map(|d| date(d, "the sale date"))
            .transpose()?,
        currency,
        seller: Party {
            nip: Some(seller_nip),
            other_id: None,
            name: need(f.seller_name, "the seller's name")?,
        },
        buyer: Party {
            nip: buyer_nip,
            other_id,
            name: f.buyer_name.unwrap_or_default(),
        },
        rates,
        net,
        vat,
        gross,
        due,
        paid: f.paid,
        corrects,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn sample(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Faktura xmlns="{FA3_NAMESPACE}">
  <Naglowek><KodFormularza kodSystemowy="FA (3)" wersjaSchemy="1-0E">FA</KodFormularza>
    <WariantFormularza>3</WariantFormularza><DataWytworzeniaFa>2026-02-01T10:00:00Z</DataWytworzeniaFa></Naglowek>
  <Podmiot1><DaneIdentyfikacyjne><NIP>5265877635</NIP><Nazwa>Zakład Usług &quot;Łódź&quot; &amp; S-ka</Nazwa></DaneIdentyfikacyjne>
    <Adres><KodKraju>PL</KodKraju><AdresL1>ul. Piotrkowska 1, Łódź</AdresL1></Adres></Podmiot1>
  <Podmiot2><DaneIdentyfikacyjne><NIP>7352765225</NIP><Nazwa>Piekarnia Źdźbło</Nazwa></DaneIdentyfikacyjne><JST>2</JST><GV>2</GV></Podmiot2>
  <Fa><KodWaluty>PLN</KodWaluty><P_1>2026-02-01</P_1><P_2>FV/1/02/2026</P_2>{body}<Adnotacje><P_16>2</P_16></Adnotacje></Fa>
</Faktura>"#
        )
    }

    #[test]
    fn reads_parties_rates_and_due_dates() {
        let xml = sample(
            "<P_13_1>100.00</P_13_1><P_14_1>23.00</P_14_1><P_13_2>50</P_13_2><P_14_2>4.00</P_14_2>\
             <P_13_7>10.5</P_13_7><P_15>187.50</P_15><RodzajFaktury>VAT</RodzajFaktury>\
             <Platnosc><TerminPlatnosci><Termin>2026-02-15</Termin></TerminPlatnosci></Platnosc>",
        );
        let inv = parse(xml.as_bytes()).unwrap();
        assert_eq!(inv.seller.name, "Zakład Usług \"Łódź\" & S-ka");
        assert_eq!(inv.buyer.nip.as_deref(), Some("7352765225"));
        assert_eq!(inv.rates.len(), 3);
        assert_eq!(inv.rates[1].rate, "8");
        assert_eq!(inv.net, Decimal::from_str("160.50").unwrap());
        assert_eq!(inv.vat, Decimal::from_str("27.00").unwrap());
        assert_eq!(inv.gross, Decimal::from_str("187.50").unwrap());
        assert_eq!(inv.due, vec![NaiveDate::from_ymd_opt(2026, 2, 15).unwrap()]);
        assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    }

    /// Exact: an amount with a third decimal would not come back as whole grosze.
    fn grosze(d: Decimal) -> i64 {
        use rust_decimal::prelude::ToPrimitive;
        let g = d * Decimal::from(100);
        assert_eq!(g, g.trunc(), "{d} has more than two decimals");
        g.to_i64().unwrap()
    }

    proptest::proptest! {
        /// Every generated invoice (valid FA(3) by `xmllint`, `crates/testkit`) reads back
        /// with the totals, rates, parties and dates it was written with.
        #[test]
        fn generated_invoices_read_back_exactly(seed in proptest::prelude::any::<u64>(), correction in proptest::prelude::any::<bool>()) {
            use ledgerline_testkit::fa3::{random_party, Fa3, ksef_number};
            use rand_chacha::rand_core::SeedableRng;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let issued = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap();
            let (seller, buyer) = (random_party(&mut rng), random_party(&mut rng));
            let mut fa = Fa3::random(&mut rng, seller, buyer, issued);
            if correction {
                let k = ksef_number(fa.seller.nip.as_deref().unwrap(), issued, &mut rng);
                fa = Fa3::correction(&fa, &k, issued);
            }
            let inv = parse(fa.xml().as_bytes()).unwrap();
            proptest::prop_assert_eq!(grosze(inv.net), fa.net());
            proptest::prop_assert_eq!(grosze(inv.vat), fa.vat());
            proptest::prop_assert_eq!(grosze(inv.gross), fa.gross());
            proptest::prop_assert_eq!(inv.rates.len(), fa.rates.len());
            for (got, want) in inv.rates.iter().zip(&fa.rates) {
                proptest::prop_assert_eq!(got.rate.as_str(), want.label);
                proptest::prop_assert_eq!(grosze(got.net), want.net);
                proptest::prop_assert_eq!(grosze(got.vat), want.vat);
            }
            proptest::prop_assert_eq!(&inv.seller.nip, &fa.seller.nip);
            proptest::prop_assert_eq!(&inv.seller.name, &fa.seller.name);
            proptest::prop_assert_eq!(&inv.buyer.nip, &fa.buyer.nip);
            proptest::prop_assert_eq!(&inv.buyer.name, &fa.buyer.name);
            proptest::prop_assert_eq!(&inv.number, &fa.number);
            proptest::prop_assert_eq!(inv.due.first().copied(), fa.due);
            proptest::prop_assert_eq!(inv.paid, fa.paid);
            proptest::prop_assert_eq!(inv.corrects.first(), fa.corrects.as_ref().map(|c| &c.0));
            proptest::prop_assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
        }
    }

    #[test]
    fn a_missing_required_element_is_a_warning() {
        let xml = sample(
            "<P_13_1>100.00</P_13_1><P_14_1>23.00</P_14_1><P_15>123.00</P_15><RodzajFaktury>VAT</RodzajFaktury>",
        )
        .replace("<Adnotacje><P_16>2</P_16></Adnotacje>", "");
        let inv = parse(xml.as_bytes()).unwrap();
        assert_eq!(
            inv.warnings,
            vec!["not valid FA(3): Fa/Adnotacje is missing"]
        );
    }

    #[test]
    fn totals_that_do_not_add_up_are_a_warning() {
        let xml = sample(
            "<P_13_1>100.00</P_13_1><P_14_1>23.00</P_14_1><P_15>124.00</P_15><RodzajFaktury>VAT</RodzajFaktury>",
        );
        let inv = parse(xml.as_bytes()).unwrap();
        assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    }

    #[test]
    fn refuses_what_is_not_an_fa3_invoice() {
        for (xml, why) in [
            (sample("<P_13_1>1,00</P_13_1><P_15>1</P_15><RodzajFaktury>VAT</RodzajFaktury>"), "amount"),
            (sample("<P_13_1>1.001</P_13_1><P_15>1</P_15><RodzajFaktury>VAT</RodzajFaktury>"), "amount"),
            (sample("<P_13_1>01</P_13_1><P_15>1</P_15><RodzajFaktury>VAT</RodzajFaktury>"), "amount"),
            (sample("<P_15>1</P_15>"), "RodzajFaktury"),
            (sample("<P_13_99>1</P_13_99><P_15>1</P_15><RodzajFaktury>VAT</RodzajFaktury>"), "unknown"),
            (sample("<P_13_1>1</P_13_1><P_13_1>2</P_13_1><P_15>1</P_15><RodzajFaktury>VAT</RodzajFaktury>"), "twice"),
            (sample("<P_15>1</P_15><RodzajFaktury>VAT</RodzajFaktury>").replace(FA3_NAMESPACE, "urn:x"), "namespace"),
            (format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{}", sample("<P_15>&a;</P_15>")), "DOCTYPE"),
            (sample("<P_15>&a;</P_15><RodzajFaktury>VAT</RodzajFaktury>"), "entity"),
            (sample("<P_15>1</P_15><RodzajFaktury>VAT</RodzajFaktury>").replace("</Fa>", ""), "XML"),
            ("<Faktura".to_owned(), "XML"),
        ] {
            let err = parse(xml.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
