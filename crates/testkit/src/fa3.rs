//! FA(3) invoices for tests, written from the schema (`test-vectors/ksef/FA3/`): Polish
//! names with diacritics, several VAT rates, foreign buyers, payment terms and corrections.
//! Each comes with what a reader must find in it (`Expected`), computed from the model,
//! not read back from the XML.

#![allow(clippy::indexing_slicing)]

use chrono::NaiveDate;
use rand::{Rng, RngCore};

/// The FA(3) namespace.
pub const NAMESPACE: &str = "http://crd.gov.pl/wzor/2025/06/25/13775/";

/// A party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// NIP (always for the seller; `None` for a foreign buyer).
    pub nip: Option<String>,
    /// EU VAT prefix and number for a foreign buyer.
    pub eu: Option<(String, String)>,
    /// Name.
    pub name: String,
}

/// One rate's amounts in grosze (hundredths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// Net field (`P_13_1`, …).
    pub net_field: &'static str,
    /// VAT field, where the rate has one.
    pub vat_field: Option<&'static str>,
    /// The label a reader gives it (`23`, `zw`, …).
    pub label: &'static str,
    /// Net, grosze.
    pub net: i64,
    /// VAT, grosze.
    pub vat: i64,
}

/// An invoice model.
#[derive(Debug, Clone)]
pub struct Fa3 {
    /// Seller.
    pub seller: Party,
    /// Buyer.
    pub buyer: Party,
    /// Issuer's number.
    pub number: String,
    /// `VAT` or `KOR`.
    pub kind: String,
    /// Issued.
    pub issued: NaiveDate,
    /// Rates present, in the schema's order.
    pub rates: Vec<Rate>,
    /// Payment due.
    pub due: Option<NaiveDate>,
    /// Marked paid.
    pub paid: bool,
    /// For a correction: (KSeF number, issuer's number, issued) of the corrected invoice.
    pub corrects: Option<(String, String, NaiveDate)>,
}

/// The rate groups: (net field, VAT field, label, rate in percent).
const RATES: &[(&str, Option<&str>, &str, i64)] = &[
    ("P_13_1", Some("P_14_1"), "23", 23),
    ("P_13_2", Some("P_14_2"), "8", 8),
    ("P_13_3", Some("P_14_3"), "5", 5),
    ("P_13_6_1", None, "0", 0),
    ("P_13_7", None, "zw", 0),
    ("P_13_10", None, "oo", 0),
];

const NAMES: &[&str] = &[
    "Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o.",
    "Zakład Ślusarski Łukasz Wąsowicz",
    "Piekarnia Źdźbło s.c.",
    "Biuro Rachunkowe Małgorzata Gęś",
    "Hurtownia Elektryczna Świetlik & Syn",
    "Gospodarstwo Ogrodnicze Jędrzejów",
    "Kancelaria Doradztwa Podatkowego Ćwik",
    "Usługi Transportowe Ożóg <Trans>",
];

/// A NIP with a valid checksum, from random digits.
pub fn random_nip(rng: &mut impl RngCore) -> String {
    const W: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];
    loop {
        let mut digits: Vec<u32> = (0..9).map(|_| rng.gen_range(0..10)).collect();
        if digits.first() == Some(&0) {
            digits[0] = 1;
        }
        let sum: u32 = digits.iter().zip(W).map(|(d, w)| d * w).sum();
        let check = sum % 11;
        if check == 10 {
            continue;
        }
        digits.push(check);
        return digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
    }
}

/// A party with a random name.
pub fn random_party(rng: &mut impl RngCore) -> Party {
    Party {
        nip: Some(random_nip(rng)),
        eu: None,
        name: NAMES[rng.gen_range(0..NAMES.len())].to_owned(),
    }
}

/// A KSeF number for an invoice of `seller` accepted on `day`, with its CRC-8.
pub fn ksef_number(seller: &str, day: NaiveDate, rng: &mut impl RngCore) -> String {
    let data = format!(
        "{seller}-{}-{:012X}",
        day.format("%Y%m%d"),
        rng.next_u64() & 0xFFFF_FFFF_FFFF
    );
    let crc = crc::Crc::<u8>::new(&crc::CRC_8_SMBUS).checksum(data.as_bytes());
    format!("{data}-{crc:02X}")
}

impl Fa3 {
    /// A random invoice from `seller` to `buyer` issued on `issued`.
    pub fn random(rng: &mut impl RngCore, seller: Party, buyer: Party, issued: NaiveDate) -> Self {
        let mut rates = Vec::new();
        for (net_field, vat_field, label, percent) in RATES {
            if (rates.is_empty() && *label == "23") || rng.gen_bool(0.3) {
                let net: i64 = rng.gen_range(1..5_000_000);
                let vat = if vat_field.is_some() {
                    // Rounded half up to the grosz, as invoices are.
                    (net * percent + 50) / 100
                } else {
                    0
                };
                rates.push(Rate {
                    net_field,
                    vat_field: *vat_field,
                    label,
                    net,
                    vat,
                });
            }
        }
        let due = rng
            .gen_bool(0.8)
            .then(|| issued + chrono::Duration::days(rng.gen_range(0..30)));
        Fa3 {
            seller,
            buyer,
            number: format!("FV/{}/{}", rng.gen_range(1..10_000), issued.format("%m/%Y")),
            kind: "VAT".into(),
            issued,
            rates,
            due,
            paid: rng.gen_bool(0.2),
            corrects: None,
        }
    }

    /// A correction of `original` (KSeF number `ksef`): every amount lowered by a tenth.
    pub fn correction(original: &Fa3, ksef: &str, issued: NaiveDate) -> Self {
        let mut c = original.clone();
        c.kind = "KOR".into();
        c.number = format!("KOR/{}", original.number);
        c.issued = issued;
        for r in &mut c.rates {
            r.net = -(r.net / 10);
            r.vat = -(r.vat / 10);
        }
        c.due = None;
        c.paid = false;
        c.corrects = Some((ksef.to_owned(), original.number.clone(), original.issued));
        c
    }

    /// Sum of nets, grosze.
    pub fn net(&self) -> i64 {
        self.rates.iter().map(|r| r.net).sum()
    }

    /// Sum of VAT, grosze.
    pub fn vat(&self) -> i64 {
        self.rates.iter().map(|r| r.vat).sum()
    }

    /// Amount due (`P_15`), grosze.
    pub fn gross(&self) -> i64 {
        self.net() + self.vat()
    }

    /// The invoice as FA(3) XML.
    pub fn xml(&self) -> String {
        let mut x = String::new();
        x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str(&format!("<Faktura xmlns=\"{NAMESPACE}\">\n"));
        x.push_str(
            "  <Naglowek>\n    <KodFormularza kodSystemowy=\"FA (3)\" wersjaSchemy=\"1-0E\">FA</KodFormularza>\n    <WariantFormularza>3</WariantFormularza>\n",
        );
        x.push_str(&format!(
            "    <DataWytworzeniaFa>{}T09:30:00Z</DataWytworzeniaFa>\n    <SystemInfo>Ledgerline test</SystemInfo>\n  </Naglowek>\n",
            self.issued.format("%Y-%m-%d")
        ));
        x.push_str(&format!(
            "  <Podmiot1>\n    <DaneIdentyfikacyjne>\n      <NIP>{}</NIP>\n      <Nazwa>{}</Nazwa>\n    </DaneIdentyfikacyjne>\n    <Adres>\n      <KodKraju>PL</KodKraju>\n      <AdresL1>ul. Świętokrzyska 12</AdresL1>\n      <AdresL2>00-916 Warszawa</AdresL2>\n    </Adres>\n  </Podmiot1>\n",
            self.seller.nip.as_deref().unwrap_or("0000000000"),
            escape(&self.seller.name)
        ));
        x.push_str("  <Podmiot2>\n    <DaneIdentyfikacyjne>\n");
        match (&self.buyer.nip, &self.buyer.eu) {
            (Some(nip), _) => x.push_str(&format!("      <NIP>{nip}</NIP>\n")),
            (None, Some((code, number))) => x.push_str(&format!(
                "      <KodUE>{code}</KodUE>\n      <NrVatUE>{number}</NrVatUE>\n"
            )),
            (None, None) => x.push_str("      <BrakID>1</BrakID>\n"),
        }
        x.push_str(&format!(
            "      <Nazwa>{}</Nazwa>\n    </DaneIdentyfikacyjne>\n    <JST>2</JST>\n    <GV>2</GV>\n  </Podmiot2>\n",
            escape(&self.buyer.name)
        ));
        x.push_str(&format!(
            "  <Fa>\n    <KodWaluty>PLN</KodWaluty>\n    <P_1>{}</P_1>\n    <P_2>{}</P_2>\n",
            self.issued.format("%Y-%m-%d"),
            escape(&self.number)
        ));
        for r in &self.rates {
            x.push_str(&format!("    <{0}>{1}</{0}>\n", r.net_field, money(r.net)));
            if let Some(v) = r.vat_field {
                x.push_str(&format!("    <{v}>{}</{v}>\n", money(r.vat)));
            }
        }
        x.push_str(&format!("    <P_15>{}</P_15>\n", money(self.gross())));
        x.push_str(
            "    <Adnotacje>\n      <P_16>2</P_16>\n      <P_17>2</P_17>\n      <P_18>2</P_18>\n      <P_18A>2</P_18A>\n      <Zwolnienie>\n        <P_19N>1</P_19N>\n      </Zwolnienie>\n      <NoweSrodkiTransportu>\n        <P_22N>1</P_22N>\n      </NoweSrodkiTransportu>\n      <P_23>2</P_23>\n      <PMarzy>\n        <P_PMarzyN>1</P_PMarzyN>\n      </PMarzy>\n    </Adnotacje>\n",
        );
        x.push_str(&format!(
            "    <RodzajFaktury>{}</RodzajFaktury>\n",
            self.kind
        ));
        if let Some((ksef, number, issued)) = &self.corrects {
            x.push_str(&format!(
                "    <PrzyczynaKorekty>Rabat posprzedażowy</PrzyczynaKorekty>\n    <TypKorekty>1</TypKorekty>\n    <DaneFaKorygowanej>\n      <DataWystFaKorygowanej>{}</DataWystFaKorygowanej>\n      <NrFaKorygowanej>{}</NrFaKorygowanej>\n      <NrKSeF>1</NrKSeF>\n      <NrKSeFFaKorygowanej>{ksef}</NrKSeFFaKorygowanej>\n    </DaneFaKorygowanej>\n",
                issued.format("%Y-%m-%d"),
                escape(number)
            ));
        }
        if self.paid || self.due.is_some() {
            x.push_str("    <Platnosc>\n");
            if self.paid {
                x.push_str(&format!(
                    "      <Zaplacono>1</Zaplacono>\n      <DataZaplaty>{}</DataZaplaty>\n",
                    self.issued.format("%Y-%m-%d")
                ));
            }
            if let Some(d) = self.due {
                x.push_str(&format!(
                    "      <TerminPlatnosci>\n        <Termin>{}</Termin>\n      </TerminPlatnosci>\n",
                    d.format("%Y-%m-%d")
                ));
            }
            x.push_str("      <FormaPlatnosci>6</FormaPlatnosci>\n    </Platnosc>\n");
        }
        x.push_str("  </Fa>\n</Faktura>\n");
        x
    }
}

/// Grosze as a `TKwotowy` amount.
pub fn money(grosze: i64) -> String {
    let sign = if grosze < 0 { "-" } else { "" };
    let a = grosze.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
