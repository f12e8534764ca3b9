//! The KSeF number (`../shared/ksef/faktury/numer-ksef.md`): the identifier the national
//! e-invoice system gives an invoice, `NNNNNNNNNN-YYYYMMDD-TTTTTTTTTTTT-CC` (seller's NIP,
//! day of acceptance, twelve upper-case hex digits, CRC-8 of the first 32 characters).
//! Numbers come from the KSeF API and from invoices' XML: both are checked here before
//! one is stored or shown as verified.

use chrono::NaiveDate;
use serde::Serialize;

/// CRC-8 with polynomial 0x07 and initial value 0x00, unreflected, no final XOR (the
/// parameters the KSeF documentation gives; `CRC-8/SMBUS` in the catalogue).
const CRC: crc::Crc<u8> = crc::Crc::<u8>::new(&crc::CRC_8_SMBUS);

/// A checked KSeF number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KsefNumber {
    /// The whole number as written (35 characters).
    pub number: String,
    /// The seller's NIP (ten digits).
    pub seller_nip: String,
    /// The day KSeF accepted the invoice.
    pub accepted: NaiveDate,
}

/// Why a string is not a KSeF number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KsefNumberError {
    /// Not 35 characters.
    #[error("a KSeF number has 35 characters, not {0}")]
    Length(usize),
    /// A part is not what the format says.
    #[error("not a KSeF number: {0}")]
    Format(&'static str),
    /// The day does not exist.
    #[error("not a KSeF number: {0} is not a day")]
    Day(String),
    /// The check digits do not match.
    #[error(
        "the KSeF number's checksum is {found}, its digits give {expected}: mistyped or altered"
    )]
    Checksum {
        /// From the digits.
        expected: String,
        /// As written.
        found: String,
    },
}

/// The two check characters of the first 32 characters of a number.
pub fn checksum(data: &str) -> String {
    format!("{:02X}", CRC.checksum(data.as_bytes()))
}

/// Checks a KSeF number: layout, day, and checksum.
pub fn parse_ksef_number(s: &str) -> Result<KsefNumber, KsefNumberError> {
    let s = s.trim();
    let n = s.chars().count();
    if n != 35 {
        return Err(KsefNumberError::Length(n));
    }
    let parts: Vec<&str> = s.split('-').collect();
    let [nip, day, technical, check] = parts.as_slice() else {
        return Err(KsefNumberError::Format("four parts joined by dashes"));
    };
    if nip.len() != 10 || !nip.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KsefNumberError::Format("the seller's NIP is ten digits"));
    }
    if day.len() != 8 || !day.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KsefNumberError::Format("the day is YYYYMMDD"));
    }
    let upper_hex = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    };
    if technical.len() != 12 || !upper_hex(technical) {
        return Err(KsefNumberError::Format(
            "the technical part is twelve upper-case hex digits",
        ));
    }
    if check.len() != 2 || !upper_hex(check) {
        return Err(KsefNumberError::Format(
            "the checksum is two upper-case hex digits",
        ));
    }
    let accepted = NaiveDate::parse_from_str(day, "%Y%m%d")
        .map_err(|_| KsefNumberError::Day((*day).to_owned()))?;
    let data = format!("{nip}-{day}-{technical}");
    let expected = checksum(&data);
    if expected != *check {
        return Err(KsefNumberError::Checksum {
            expected,
            found: (*check).to_owned(),
        });
    }
    Ok(KsefNumber {
        number: s.to_owned(),
        seller_nip: (*nip).to_owned(),
        accepted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_documented_example_checks() {
        // `../shared/ksef/faktury/numer-ksef.md`.
        let k = parse_ksef_number("5265877635-20250826-0100001AF629-AF").unwrap();
        assert_eq!(k.seller_nip, "5265877635");
        assert_eq!(k.accepted, NaiveDate::from_ymd_opt(2025, 8, 26).unwrap());
        assert_eq!(checksum("5265877635-20250826-0100001AF629"), "AF");
    }

    #[test]
    fn every_kind_of_damage_is_refused_with_its_reason() {
        let bad = |s: &str| parse_ksef_number(s).unwrap_err();
        assert_eq!(
            bad("5265877635-20250826-0100001AF629-A"),
            KsefNumberError::Length(34)
        );
        assert!(matches!(
            bad("5265877635-20250826-0100001AF629-AE"),
            KsefNumberError::Checksum { .. }
        ));
        assert!(matches!(
            bad("5265877635-20250826-0100001af629-AF"),
            KsefNumberError::Format(_)
        ));
        assert!(matches!(
            bad("5265877635-20250832-0100001AF629-AF"),
            KsefNumberError::Day(_)
        ));
        assert!(matches!(
            bad("526587763X-20250826-0100001AF629-AF"),
            KsefNumberError::Format(_)
        ));
        assert!(matches!(
            bad("5265877635_20250826_0100001AF629_AF"),
            KsefNumberError::Format(_)
        ));
        // One digit changed anywhere: the checksum says so.
        assert!(matches!(
            bad("5265877636-20250826-0100001AF629-AF"),
            KsefNumberError::Checksum { .. }
        ));
    }

    proptest! {
        /// Any well-formed number with its own checksum checks; any single changed
        /// character in its data part is caught (CRC-8 catches every single-byte error).
        #[test]
        fn checksums_round_trip_and_catch_single_changes(
            nip in "[0-9]{10}",
            y in 2022u32..2100, m in 1u32..=12, d in 1u32..=28,
            tech in "[0-9A-F]{12}",
            at in 0usize..32,
            to in "[0-9]",
        ) {
            let data = format!("{nip}-{y:04}{m:02}{d:02}-{tech}");
            let number = format!("{data}-{}", checksum(&data));
            prop_assert!(parse_ksef_number(&number).is_ok());
            let mut changed: Vec<char> = data.chars().collect();
            let c = to.chars().next().unwrap();
            if changed[at] != c && changed[at] != '-' {
                changed[at] = c;
                let altered: String = changed.into_iter().collect();
                let n2 = format!("{altered}-{}", checksum(&data));
                prop_assert!(parse_ksef_number(&n2).is_err());
            }
        }
    }
}
