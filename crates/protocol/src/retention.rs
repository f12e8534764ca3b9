//! Retention policies (`protocol-spec/retention.md`): what a customer file keeps, and what
//! the relay's sweeper may delete at a given time.
//!
//! A policy is set by an admin as a signed roster event, so the relay enforces it and an
//! auditor checks every deletion against it offline. Time arithmetic is UTC calendar
//! arithmetic (chrono), the same on every machine.

use chrono::{DateTime, Datelike, Months, Utc};

/// Longest chat retention, in months (100 years).
pub const MAX_CHAT_MONTHS: u16 = 1200;
/// Longest document retention, in years after the year a document concerns.
pub const MAX_DOCS_YEARS: u16 = 100;
/// Years a document may say it concerns.
pub const DOCUMENT_YEARS: std::ops::RangeInclusive<u16> = 1900..=2999;

/// A customer file's retention policy. Zero means "kept until the file is erased".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RetentionPolicy {
    /// Chat messages are deleted this many calendar months after the relay received them.
    pub chat_months: u16,
    /// Documents are deleted this many years after the end of the year they concern.
    pub docs_years: u16,
    /// While set, nothing of the file is deleted, by the sweeper or by erasure.
    pub legal_hold: bool,
}

impl RetentionPolicy {
    /// Whether both periods are within their limits.
    pub fn is_valid(&self) -> bool {
        self.chat_months <= MAX_CHAT_MONTHS && self.docs_years <= MAX_DOCS_YEARS
    }

    /// Messages received before the returned instant (ms) may be deleted at `now_ms`;
    /// `None` when no message may be.
    pub fn chat_before_ms(&self, now_ms: u64) -> Option<u64> {
        if self.legal_hold || self.chat_months == 0 {
            return None;
        }
        months_before(now_ms, self.chat_months)
    }

    /// Documents concerning this year or earlier may be deleted at `now_ms`; `None` when no
    /// document may be.
    pub fn docs_through_year(&self, now_ms: u64) -> Option<u16> {
        if self.legal_hold || self.docs_years == 0 {
            return None;
        }
        let last = i32::from(year_of(now_ms)?) - 1 - i32::from(self.docs_years);
        u16::try_from(last)
            .ok()
            .filter(|y| DOCUMENT_YEARS.contains(y))
    }

    /// Whether a document concerning `year` may be deleted at `now_ms`.
    pub fn may_delete_document(&self, year: u16, now_ms: u64) -> bool {
        self.docs_through_year(now_ms)
            .is_some_and(|last| year <= last)
    }
}

/// The same UTC wall-clock instant `months` calendar months before `now_ms` (the day is
/// clamped to the shorter month: 31 March − 1 month = 28/29 February).
pub fn months_before(now_ms: u64, months: u16) -> Option<u64> {
    let now = DateTime::<Utc>::from_timestamp_millis(i64::try_from(now_ms).ok()?)?;
    let then = now.checked_sub_months(Months::new(u32::from(months)))?;
    u64::try_from(then.timestamp_millis()).ok()
}

/// The UTC calendar year of an instant.
pub fn year_of(ms: u64) -> Option<u16> {
    let t = DateTime::<Utc>::from_timestamp_millis(i64::try_from(ms).ok()?)?;
    u16::try_from(t.year()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(s: &str) -> u64 {
        u64::try_from(DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()).unwrap()
    }

    #[test]
    fn month_arithmetic_clamps_to_the_shorter_month() {
        assert_eq!(
            months_before(ms("2026-03-31T10:00:00Z"), 1),
            Some(ms("2026-02-28T10:00:00Z"))
        );
        assert_eq!(
            months_before(ms("2024-03-31T10:00:00Z"), 1),
            Some(ms("2024-02-29T10:00:00Z"))
        );
        assert_eq!(
            months_before(ms("2026-01-15T00:00:00Z"), 13),
            Some(ms("2024-12-15T00:00:00Z"))
        );
    }

    #[test]
    fn documents_are_kept_through_the_last_year_of_their_period() {
        let p = RetentionPolicy {
            chat_months: 0,
            docs_years: 5,
            legal_hold: false,
        };
        // A 2020 document is kept through 2025 and may go from 1 January 2026.
        assert!(!p.may_delete_document(2020, ms("2025-12-31T23:59:59Z")));
        assert!(p.may_delete_document(2020, ms("2026-01-01T00:00:00Z")));
        assert!(!p.may_delete_document(2021, ms("2026-06-01T00:00:00Z")));
        assert_eq!(p.chat_before_ms(ms("2026-06-01T00:00:00Z")), None);
    }

    #[test]
    fn a_legal_hold_or_zero_keeps_everything() {
        let now = ms("2030-01-01T00:00:00Z");
        let held = RetentionPolicy {
            chat_months: 1,
            docs_years: 1,
            legal_hold: true,
        };
        assert_eq!(held.chat_before_ms(now), None);
        assert_eq!(held.docs_through_year(now), None);
        assert_eq!(RetentionPolicy::default().chat_before_ms(now), None);
        assert_eq!(RetentionPolicy::default().docs_through_year(now), None);
    }

    #[test]
    fn limits() {
        let mut p = RetentionPolicy {
            chat_months: MAX_CHAT_MONTHS,
            docs_years: MAX_DOCS_YEARS,
            legal_hold: false,
        };
        assert!(p.is_valid());
        p.chat_months += 1;
        assert!(!p.is_valid());
    }

    proptest! {
        #[test]
        fn the_cutoff_is_never_after_now_and_grows_with_now(
            now in 0u64..8_000_000_000_000, step in 0u64..100_000_000_000, m in 1u16..=MAX_CHAT_MONTHS
        ) {
            let p = RetentionPolicy { chat_months: m, docs_years: 0, legal_hold: false };
            if let (Some(a), Some(b)) = (p.chat_before_ms(now), p.chat_before_ms(now + step)) {
                prop_assert!(a <= now);
                prop_assert!(a <= b);
                // At least 28 days per month back.
                prop_assert!(now - a >= u64::from(m) * 28 * 86_400_000);
            }
        }
    }
}
