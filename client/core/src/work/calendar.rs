//! Polish working days and recurrence in the firm's time zone.
//!
//! Public holidays follow the Act of 18 January 1951 on public holidays as amended
//! (Christmas Eve is a holiday from 2025). Easter is computed with the Gregorian computus
//! (Meeus/Jones/Butcher). Recurrence is RFC 5545 RRULE through the `rrule` crate, expanded
//! in Europe/Warsaw so that "every month on the 25th at 9:00" stays at 9:00 across the
//! change to and from summer time.

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Weekday};
use chrono_tz::Tz;
use rrule::{RRule, Unvalidated};

/// Easter Sunday of `year` (Gregorian).
pub fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// Polish public holidays of `year`, with their Polish names, in date order.
pub fn holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let fixed: &[(u32, u32, &str)] = &[
        (1, 1, "Nowy Rok"),
        (1, 6, "Trzech Króli"),
        (5, 1, "Święto Pracy"),
        (5, 3, "Święto Konstytucji 3 Maja"),
        (8, 15, "Wniebowzięcie NMP"),
        (11, 1, "Wszystkich Świętych"),
        (11, 11, "Narodowe Święto Niepodległości"),
        (12, 25, "Boże Narodzenie (pierwszy dzień)"),
        (12, 26, "Boże Narodzenie (drugi dzień)"),
    ];
    let mut out: Vec<(NaiveDate, &'static str)> = fixed
        .iter()
        .filter_map(|(m, d, n)| NaiveDate::from_ymd_opt(year, *m, *d).map(|x| (x, *n)))
        .collect();
    if year >= 2025 {
        if let Some(d) = NaiveDate::from_ymd_opt(year, 12, 24) {
            out.push((d, "Wigilia Bożego Narodzenia"));
        }
    }
    if let Some(e) = easter(year) {
        for (offset, name) in [
            (0u64, "Wielkanoc"),
            (1, "Poniedziałek Wielkanocny"),
            (49, "Zielone Świątki"),
            (60, "Boże Ciało"),
        ] {
            if let Some(d) = e.checked_add_days(Days::new(offset)) {
                out.push((d, name));
            }
        }
    }
    out.sort();
    out
}

/// Whether `day` is a working day in Poland: Monday to Friday and not a public holiday.
pub fn is_working_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
        && !holidays(day.year()).iter().any(|(d, _)| *d == day)
}

/// `day` itself if it is a working day, else the next working day (a deadline that falls
/// on a weekend or holiday moves there, Ordynacja podatkowa art. 12 § 5).
pub fn next_working_day(day: NaiveDate) -> NaiveDate {
    let mut d = day;
    // At most a long weekend plus holidays: bounded well below 14 days.
    for _ in 0..14 {
        if is_working_day(d) {
            return d;
        }
        match d.succ_opt() {
            Some(n) => d = n,
            None => return d,
        }
    }
    d
}

/// For a rolling task due on `due` and not done: the working day it shows on `today`
/// (today when overdue, else its due day), and for how many working days it has rolled.
pub fn rolled(due: NaiveDate, today: NaiveDate) -> (NaiveDate, u32) {
    if today <= due {
        return (due, 0);
    }
    let mut days = 0u32;
    let mut d = due;
    while d < today {
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
        if is_working_day(d) {
            days += 1;
        }
    }
    (next_working_day(today), days)
}

/// Why a recurrence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurError {
    /// Not an RFC 5545 RRULE this engine accepts.
    #[error("recurrence rule: {0}")]
    Rule(String),
    /// The start does not exist in the zone (skipped by a clock change).
    #[error("the start time does not exist in {0}")]
    Start(String),
}

/// The start times of `rule` (RFC 5545 `RRULE` value, e.g. `FREQ=MONTHLY;BYMONTHDAY=25`)
/// first occurring at `start` (local time in `zone`), from `from` (inclusive) to `to`
/// (exclusive), at most `limit`.
pub fn occurrences(
    rule: &str,
    start: chrono::NaiveDateTime,
    zone: Tz,
    from: DateTime<Tz>,
    to: DateTime<Tz>,
    limit: u16,
) -> Result<Vec<DateTime<Tz>>, RecurError> {
    let rz = rrule::Tz::Tz(zone);
    let dt_start = rz
        .from_local_datetime(&start)
        .earliest()
        .ok_or_else(|| RecurError::Start(zone.name().to_owned()))?;
    let parsed: RRule<Unvalidated> = rule
        .trim()
        .trim_start_matches("RRULE:")
        .parse()
        .map_err(|e: rrule::RRuleError| RecurError::Rule(e.to_string()))?;
    let set = parsed
        .build(dt_start)
        .map_err(|e| RecurError::Rule(e.to_string()))?;
    let after = from.with_timezone(&rz) - chrono::Duration::milliseconds(1);
    let before = to.with_timezone(&rz);
    let found = set.after(after).before(before).all(limit);
    Ok(found
        .dates
        .into_iter()
        .map(|d| d.with_timezone(&zone))
        .filter(|d| *d >= from && *d < to)
        .collect())
}

/// The days a recurring deadline falls due: `(nominal day, due day)` for every occurrence
/// of `rule` first due on `start` whose due day lies from `from` to `to` (inclusive); the
/// due day is the nominal one moved to the next working day when `working_days` says so.
/// Expanded at local noon in Europe/Warsaw, far from any clock change. At most `limit`.
pub fn due_days(
    rule: &str,
    start: NaiveDate,
    working_days: bool,
    from: NaiveDate,
    to: NaiveDate,
    limit: u16,
) -> Result<Vec<(NaiveDate, NaiveDate)>, RecurError> {
    let zone = crate::when::DEFAULT_ZONE;
    let noon = chrono::NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default();
    let at = |d: NaiveDate| zone.from_local_datetime(&d.and_time(noon)).earliest();
    // A nominal day up to a week before `from` may move onto it.
    let lookback = if working_days { 7 } else { 0 };
    let from_nominal = from
        .checked_sub_days(Days::new(lookback))
        .unwrap_or(from)
        .max(start);
    let (Some(a), Some(b)) = (at(from_nominal), to.succ_opt().and_then(at)) else {
        return Ok(Vec::new());
    };
    Ok(occurrences(
        rule,
        start.and_time(noon),
        zone,
        a,
        b,
        limit.saturating_add(8),
    )?
    .into_iter()
    .map(|t| {
        let nominal = t.date_naive();
        let due = if working_days {
            next_working_day(nominal)
        } else {
            nominal
        };
        (nominal, due)
    })
    .filter(|(_, due)| *due >= from && *due <= to)
    .take(usize::from(limit))
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::when::DEFAULT_ZONE;
    use chrono::{NaiveTime, Timelike};
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn easter_2024_to_2035() {
        let known = [
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2028, 4, 16),
            (2029, 4, 1),
            (2030, 4, 21),
            (2031, 4, 13),
            (2032, 3, 28),
            (2033, 4, 17),
            (2034, 4, 9),
            (2035, 3, 25),
        ];
        for (y, m, d) in known {
            assert_eq!(easter(y), Some(day(y, m, d)), "{y}");
        }
    }

    #[test]
    fn holidays_and_working_days() {
        let h2026: Vec<NaiveDate> = holidays(2026).into_iter().map(|(d, _)| d).collect();
        assert_eq!(h2026.len(), 14);
        // Easter Monday, Pentecost, Corpus Christi 2026; Christmas Eve from 2025 only.
        for d in [
            day(2026, 4, 6),
            day(2026, 5, 24),
            day(2026, 6, 4),
            day(2026, 12, 24),
        ] {
            assert!(h2026.contains(&d), "{d}");
        }
        assert!(!holidays(2024).iter().any(|(d, _)| *d == day(2024, 12, 24)));
        assert!(!is_working_day(day(2026, 11, 11)));
        assert!(!is_working_day(day(2026, 11, 28)), "a Saturday");
        assert!(is_working_day(day(2026, 11, 27)));
        // 25 Dec 2026 is a Friday: 24, 25, 26 (Sat), 27 (Sun) → Monday 28th.
        assert_eq!(next_working_day(day(2026, 12, 24)), day(2026, 12, 28));
        // 1 Nov 2026 is a Sunday → Monday 2nd.
        assert_eq!(next_working_day(day(2026, 11, 1)), day(2026, 11, 2));
        // Easter 2027: Sunday 28 March, Monday 29 March a holiday → Tuesday 30th.
        assert_eq!(next_working_day(day(2027, 3, 28)), day(2027, 3, 30));
    }

    #[test]
    fn a_rolling_task_counts_working_days() {
        // Due Wednesday 23 Dec 2026; on Monday the 28th: 24, 25 (holidays), 26, 27
        // (weekend), 28 (working) → rolled one working day.
        assert_eq!(
            rolled(day(2026, 12, 23), day(2026, 12, 28)),
            (day(2026, 12, 28), 1)
        );
        assert_eq!(
            rolled(day(2026, 12, 1), day(2026, 12, 1)),
            (day(2026, 12, 1), 0)
        );
        assert_eq!(
            rolled(day(2026, 12, 4), day(2026, 12, 1)),
            (day(2026, 12, 4), 0)
        );
        // Friday → Saturday: shows on Monday, rolled zero working days yet.
        assert_eq!(
            rolled(day(2026, 11, 27), day(2026, 11, 28)),
            (day(2026, 11, 30), 0)
        );
        // Friday → next Wednesday: Mon, Tue, Wed.
        assert_eq!(
            rolled(day(2026, 11, 27), day(2026, 12, 2)),
            (day(2026, 12, 2), 3)
        );
    }

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Tz> {
        DEFAULT_ZONE
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .unwrap()
    }

    #[test]
    fn monthly_at_nine_stays_at_nine_across_summer_time() {
        let start = day(2026, 1, 25).and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap());
        let got = occurrences(
            "FREQ=MONTHLY;BYMONTHDAY=25",
            start,
            DEFAULT_ZONE,
            at(2026, 1, 1, 0),
            at(2027, 1, 1, 0),
            100,
        )
        .unwrap();
        assert_eq!(got.len(), 12);
        assert!(got.iter().all(|d| d.hour() == 9 && d.day() == 25));
        // 09:00 CET is 08:00 UTC; 09:00 CEST is 07:00 UTC.
        assert_eq!(got[0].naive_utc().hour(), 8);
        assert_eq!(got[5].naive_utc().hour(), 7);
    }

    #[test]
    fn month_ends_clamp_to_the_last_day() {
        // "The last day of the month": the 31st where there is one, else 30th, 29th, 28th.
        let start = day(2028, 1, 31).and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap());
        let got: Vec<u32> = occurrences(
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            start,
            DEFAULT_ZONE,
            at(2028, 1, 1, 0),
            at(2028, 5, 1, 0),
            10,
        )
        .unwrap()
        .iter()
        .map(|d| d.day())
        .collect();
        assert_eq!(got, vec![31, 29, 31, 30], "2028 is a leap year");
        // A plain BYMONTHDAY=31 skips short months, as RFC 5545 says.
        let got = occurrences(
            "FREQ=MONTHLY;BYMONTHDAY=31",
            start,
            DEFAULT_ZONE,
            at(2028, 1, 1, 0),
            at(2028, 5, 1, 0),
            10,
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert!(occurrences(
            "FREQ=SOMETIMES",
            start,
            DEFAULT_ZONE,
            at(2028, 1, 1, 0),
            at(2028, 2, 1, 0),
            10
        )
        .is_err());
    }

    proptest! {
        /// The next working day is a working day, never before the day, at most a week on.
        #[test]
        fn next_working_day_is_working(offset in 0u64..(365 * 12)) {
            let d = day(2024, 1, 1).checked_add_days(Days::new(offset)).unwrap();
            let n = next_working_day(d);
            prop_assert!(is_working_day(n));
            prop_assert!(n >= d);
            prop_assert!((n - d).num_days() <= 6);
            if is_working_day(d) { prop_assert_eq!(n, d); }
        }
    }
}
