//! Offers to leads: the office's services, each a monthly fee or a one-off price, with a
//! VAT rate; totals net / VAT / gross in exact integer grosze (no floating point
//! anywhere).
//!
//! Rounding, as Polish invoices do it: each line's VAT is its net times the rate,
//! rounded half away from zero to the grosz; the totals' VAT is computed once per rate
//! from the sum of that rate's nets (the "from the sum of net values" method of the VAT
//! act, art. 106e(11)), so the summary may differ by a grosz from the sum of the lines'
//! VAT — as on an invoice. Monthly fees and one-off prices are totalled apart: they are
//! paid apart.

use serde::{Deserialize, Serialize};

/// How a service is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// A fee every month.
    Monthly,
    /// A price once.
    OneOff,
}

impl Billing {
    /// `monthly` or `one-off` (also `once`, `jednorazowo`, `miesięcznie`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_lowercase().as_str() {
            "monthly" | "miesięcznie" | "mies" => Some(Self::Monthly),
            "one-off" | "one_off" | "once" | "jednorazowo" | "jedn" => Some(Self::OneOff),
            _ => None,
        }
    }
}

/// A VAT rate an office's services carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VatRate {
    /// 23 %.
    #[serde(rename = "23")]
    Standard,
    /// 8 %.
    #[serde(rename = "8")]
    Reduced,
    /// Exempt (`zw.`).
    #[serde(rename = "zw")]
    Exempt,
}

impl VatRate {
    /// `23`, `8` or `zw` (also `23%`, `zw.`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().trim_end_matches('%').trim_end_matches('.') {
            "23" => Some(Self::Standard),
            "8" => Some(Self::Reduced),
            "zw" | "ZW" => Some(Self::Exempt),
            _ => None,
        }
    }

    /// Percent.
    pub fn percent(self) -> i64 {
        match self {
            Self::Standard => 23,
            Self::Reduced => 8,
            Self::Exempt => 0,
        }
    }

    /// As an invoice prints it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Standard => "23%",
            Self::Reduced => "8%",
            Self::Exempt => "zw.",
        }
    }
}

/// One service offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferLine {
    /// What the office does.
    pub service: String,
    /// Monthly or once.
    pub billing: Billing,
    /// Net price in grosze.
    pub net: i64,
    /// VAT rate.
    pub vat: VatRate,
}

/// Net, VAT and gross in grosze.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Amounts {
    /// Net.
    pub net: i64,
    /// VAT.
    pub vat: i64,
    /// Gross.
    pub gross: i64,
}

/// One rate's row of a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateRow {
    /// The rate.
    pub rate: VatRate,
    /// Its amounts (VAT from the sum of its nets).
    #[serde(flatten)]
    pub amounts: Amounts,
}

/// The summary of one kind of billing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Per rate, in rate order.
    pub rates: Vec<RateRow>,
    /// The sum of the rows.
    pub total: Amounts,
}

/// An offer's totals: monthly fees and one-off prices apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OfferTotals {
    /// Every month.
    pub monthly: Summary,
    /// Once.
    pub one_off: Summary,
}

/// `net × percent / 100`, rounded half away from zero to the grosz.
pub fn vat_of(net: i64, percent: i64) -> i64 {
    let x = i128::from(net) * i128::from(percent);
    let q = (x.abs() + 50) / 100;
    let v = if x < 0 { -q } else { q };
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// A line's own amounts (VAT rounded on the line).
pub fn line_amounts(l: &OfferLine) -> Amounts {
    let vat = vat_of(l.net, l.vat.percent());
    Amounts {
        net: l.net,
        vat,
        gross: l.net.saturating_add(vat),
    }
}

fn summary(lines: &[&OfferLine]) -> Summary {
    let mut rates: Vec<RateRow> = Vec::new();
    for rate in [VatRate::Standard, VatRate::Reduced, VatRate::Exempt] {
        let net = lines
            .iter()
            .filter(|l| l.vat == rate)
            .fold(0i64, |s, l| s.saturating_add(l.net));
        if !lines.iter().any(|l| l.vat == rate) {
            continue;
        }
        let vat = vat_of(net, rate.percent());
        rates.push(RateRow {
            rate,
            amounts: Amounts {
                net,
                vat,
                gross: net.saturating_add(vat),
            },
        });
    }
    let total = rates.iter().fold(Amounts::default(), |t, r| Amounts {
        net: t.net.saturating_add(r.amounts.net),
        vat: t.vat.saturating_add(r.amounts.vat),
        gross: t.gross.saturating_add(r.amounts.gross),
    });
    Summary { rates, total }
}

/// The totals of an offer's lines.
pub fn totals(lines: &[OfferLine]) -> OfferTotals {
    let of = |b: Billing| summary(&lines.iter().filter(|l| l.billing == b).collect::<Vec<_>>());
    OfferTotals {
        monthly: of(Billing::Monthly),
        one_off: of(Billing::OneOff),
    }
}

/// Parses `SERVICE|monthly|1200,00|23` (the CLI's form of a line).
pub fn parse_line(s: &str) -> Result<OfferLine, String> {
    let parts: Vec<&str> = s.split('|').map(str::trim).collect();
    let [service, billing, net, vat] = parts.as_slice() else {
        return Err(format!(
            "{s:?}: a service is NAME|monthly or one-off|NET PRICE|23, 8 or zw"
        ));
    };
    line_of(service, billing, net, vat)
}

/// A line from what someone typed: the service's name, `monthly` or `one-off`, the net
/// price in złoty (`1 200,00`) and `23`, `8` or `zw`.
pub fn line_of(service: &str, billing: &str, net: &str, vat: &str) -> Result<OfferLine, String> {
    let service = service.trim();
    if service.is_empty() || service.len() > 200 {
        return Err("a service name is 1 to 200 bytes".into());
    }
    Ok(OfferLine {
        service: service.to_owned(),
        billing: Billing::parse(billing)
            .ok_or_else(|| format!("{billing:?}: billing is monthly or one-off"))?,
        net: super::replies::parse_amount(net).map_err(|e| e.to_string())?,
        vat: VatRate::parse(vat).ok_or_else(|| format!("{vat:?}: VAT is 23, 8 or zw"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(billing: Billing, net: i64, vat: VatRate) -> OfferLine {
        OfferLine {
            service: "usługa".into(),
            billing,
            net,
            vat,
        }
    }

    #[test]
    fn line_and_rate_rounding_follow_the_invoice_rules() {
        // 0,05 zł × 23 % = 1,15 gr → 1 gr; 0,07 zł × 23 % = 1,61 gr → 2 gr; 0,5 exactly up.
        assert_eq!(vat_of(5, 23), 1);
        assert_eq!(vat_of(7, 23), 2);
        assert_eq!(vat_of(50, 1), 1); // 0,50 gr → 1 gr (half away from zero)
        assert_eq!(vat_of(-50, 1), -1);
        assert_eq!(vat_of(123_456, 0), 0);
        // Three lines of 0,07 zł at 23 %: each line's VAT rounds to 2 gr (6 gr in all),
        // the summary from the sum (0,21 zł × 23 % = 4,83 gr) to 5 gr — as on an invoice.
        let lines = vec![
            line(Billing::Monthly, 7, VatRate::Standard),
            line(Billing::Monthly, 7, VatRate::Standard),
            line(Billing::Monthly, 7, VatRate::Standard),
        ];
        let by_line: i64 = lines.iter().map(|l| line_amounts(l).vat).sum();
        assert_eq!(by_line, 6);
        let t = totals(&lines);
        assert_eq!(
            t.monthly.total,
            Amounts {
                net: 21,
                vat: 5,
                gross: 26
            }
        );
        assert_eq!(t.one_off, Summary::default());
    }

    #[test]
    fn monthly_and_one_off_are_totalled_apart_per_rate() {
        let t = totals(&[
            line(Billing::Monthly, 120_000, VatRate::Standard),
            line(Billing::Monthly, 30_000, VatRate::Exempt),
            line(Billing::OneOff, 50_000, VatRate::Reduced),
            line(Billing::Monthly, 19_999, VatRate::Standard),
        ]);
        assert_eq!(t.monthly.rates.len(), 2);
        assert_eq!(
            t.monthly.rates[0],
            RateRow {
                rate: VatRate::Standard,
                amounts: Amounts {
                    net: 139_999,
                    vat: 32_200, // 1 399,99 × 23 % = 321,9977 → 322,00
                    gross: 172_199
                }
            }
        );
        assert_eq!(t.monthly.total.net, 169_999);
        assert_eq!(t.monthly.total.gross, 202_199);
        assert_eq!(
            t.one_off.total,
            Amounts {
                net: 50_000,
                vat: 4_000,
                gross: 54_000
            }
        );
    }

    #[test]
    fn lines_parse_from_the_command_line() {
        let l = parse_line("Prowadzenie KPiR|monthly|1 200,00|23").unwrap();
        assert_eq!(
            l,
            line(Billing::Monthly, 120_000, VatRate::Standard).with("Prowadzenie KPiR")
        );
        assert_eq!(
            parse_line("Wdrożenie|jednorazowo|500|zw").unwrap().vat,
            VatRate::Exempt
        );
        for bad in [
            "x|monthly|1|5",
            "x|weekly|1|23",
            "x|monthly|1,234|23",
            "|monthly|1|23",
            "x|monthly|1",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    impl OfferLine {
        fn with(mut self, service: &str) -> Self {
            self.service = service.into();
            self
        }
    }

    /// The reference: the same sums in `rust_decimal`, rounded with its own midpoint rule.
    fn reference_vat(net: i64, percent: i64) -> i64 {
        use rust_decimal::prelude::*;
        let v = (Decimal::new(net, 2) * Decimal::new(percent, 2))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        (v * Decimal::new(100, 0)).to_i64().unwrap()
    }

    fn any_line() -> impl Strategy<Value = OfferLine> {
        (
            prop_oneof![Just(Billing::Monthly), Just(Billing::OneOff)],
            -10_000_000i64..1_000_000_000,
            prop_oneof![
                Just(VatRate::Standard),
                Just(VatRate::Reduced),
                Just(VatRate::Exempt)
            ],
        )
            .prop_map(|(billing, net, vat)| line(billing, net, vat))
    }

    proptest! {
        #[test]
        fn vat_matches_a_decimal_reference(net in -1_000_000_000_000i64..1_000_000_000_000, rate in prop_oneof![Just(23i64), Just(8), Just(0)]) {
            prop_assert_eq!(vat_of(net, rate), reference_vat(net, rate));
        }

        #[test]
        fn totals_match_a_decimal_reference(lines in proptest::collection::vec(any_line(), 0..20)) {
            let t = totals(&lines);
            for (summary, billing) in [(&t.monthly, Billing::Monthly), (&t.one_off, Billing::OneOff)] {
                let mut expected = Amounts::default();
                for rate in [VatRate::Standard, VatRate::Reduced, VatRate::Exempt] {
                    let net: i64 = lines.iter().filter(|l| l.billing == billing && l.vat == rate).map(|l| l.net).sum();
                    let vat = reference_vat(net, rate.percent());
                    expected.net += net;
                    expected.vat += vat;
                    expected.gross += net + vat;
                }
                prop_assert_eq!(summary.total, expected);
                for row in &summary.rates {
                    prop_assert_eq!(row.amounts.gross, row.amounts.net + row.amounts.vat);
                }
            }
        }
    }
}
