//! Polish company identifiers: NIP (tax id) and REGON (statistical id), with their
//! check digits. Input may carry spaces, dashes and (for NIP) a `PL` prefix.

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not the right number of digits after removing separators.
    #[error("{what} has {want} digits, this has {have}")]
    Length {
        /// `NIP` or `REGON`.
        what: &'static str,
        /// Digits expected.
        want: &'static str,
        /// Digits found.
        have: usize,
    },
    /// A character that is not a digit or a separator.
    #[error("{what} may contain only digits, spaces and dashes")]
    NotDigits {
        /// `NIP` or `REGON`.
        what: &'static str,
    },
    /// The check digit does not match: a typo.
    #[error("{what} check digit does not match (a typo?)")]
    Checksum {
        /// `NIP` or `REGON`.
        what: &'static str,
    },
}

fn digits(s: &str, what: &'static str) -> Result<Vec<u32>, IdError> {
    let mut out = Vec::with_capacity(14);
    for c in s.chars() {
        match c {
            '0'..='9' => out.push(c as u32 - '0' as u32),
            ' ' | '-' => {}
            _ => return Err(IdError::NotDigits { what }),
        }
    }
    Ok(out)
}

fn weighted(d: &[u32], weights: &[u32]) -> u32 {
    d.iter().zip(weights).map(|(a, b)| a * b).sum()
}

/// A valid NIP as its 10 digits: weights 6,5,7,2,3,4,5,6,7; the sum mod 11 is the last
/// digit (a sum of 10 mod 11 is never valid).
pub fn parse_nip(s: &str) -> Result<String, IdError> {
    let t = s.trim();
    let t = t
        .strip_prefix("PL")
        .or_else(|| t.strip_prefix("pl"))
        .unwrap_or(t);
    let d = digits(t, "NIP")?;
    let [body @ .., check] = d.as_slice() else {
        return Err(IdError::Length {
            what: "NIP",
            want: "10",
            have: 0,
        });
    };
    if d.len() != 10 {
        return Err(IdError::Length {
            what: "NIP",
            want: "10",
            have: d.len(),
        });
    }
    let sum = weighted(body, &[6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11;
    if sum == 10 || sum != *check {
        return Err(IdError::Checksum { what: "NIP" });
    }
    Ok(d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap_or('0'))
        .collect())
}

/// A valid REGON (9 or 14 digits) as its digits: the sum of the weighted digits mod 11 is
/// the last digit, 10 counting as 0.
pub fn parse_regon(s: &str) -> Result<String, IdError> {
    let d = digits(s.trim(), "REGON")?;
    let weights: &[u32] = match d.len() {
        9 => &[8, 9, 2, 3, 4, 5, 6, 7],
        14 => &[2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8],
        n => {
            return Err(IdError::Length {
                what: "REGON",
                want: "9 or 14",
                have: n,
            })
        }
    };
    let (body, check) = d.split_at(d.len() - 1);
    let sum = weighted(body, weights) % 11 % 10;
    if check.first() != Some(&sum) {
        return Err(IdError::Checksum { what: "REGON" });
    }
    Ok(d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap_or('0'))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nip_check_digit() {
        // The Ministry of Finance's own NIP, and common ways of writing it.
        assert_eq!(parse_nip("5260250995").as_deref(), Ok("5260250995"));
        assert_eq!(parse_nip("526-025-09-95").as_deref(), Ok("5260250995"));
        assert_eq!(parse_nip("PL 526 025 09 95").as_deref(), Ok("5260250995"));
        assert_eq!(
            parse_nip("5260250994"),
            Err(IdError::Checksum { what: "NIP" })
        );
        assert!(matches!(
            parse_nip("526025099"),
            Err(IdError::Length { have: 9, .. })
        ));
        assert_eq!(
            parse_nip("52602509x5"),
            Err(IdError::NotDigits { what: "NIP" })
        );
        assert!(parse_nip("").is_err());
    }

    #[test]
    fn regon_check_digit() {
        assert_eq!(parse_regon("000002217").as_deref(), Ok("000002217"));
        assert_eq!(
            parse_regon("000002218"),
            Err(IdError::Checksum { what: "REGON" })
        );
        assert_eq!(
            parse_regon("12345678901235").as_deref(),
            Ok("12345678901235")
        );
        assert_eq!(
            parse_regon("12345678901234"),
            Err(IdError::Checksum { what: "REGON" })
        );
        assert!(matches!(
            parse_regon("1234"),
            Err(IdError::Length { have: 4, .. })
        ));
    }

    proptest! {
        /// Any nine digits with the computed check digit are valid (unless the sum is 10),
        /// and changing one digit is always caught.
        #[test]
        fn nip_catches_every_single_digit_typo(body in proptest::collection::vec(0u32..10, 9), at in 0usize..10, delta in 1u32..10) {
            let mut body = body;
            if weighted(&body, &[6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11 == 10 {
                // No NIP has this body; the next one in the last digit does.
                body[8] = (body[8] + 1) % 10;
            }
            let sum = weighted(&body, &[6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11;
            prop_assert_ne!(sum, 10);
            let mut d = body.clone();
            d.push(sum);
            let s: String = d.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect();
            prop_assert_eq!(parse_nip(&s), Ok(s.clone()));
            let mut typo = d.clone();
            typo[at] = (typo[at] + delta) % 10;
            let t: String = typo.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect();
            prop_assert!(parse_nip(&t).is_err());
        }
    }
}
