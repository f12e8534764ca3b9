//! Times as people type and read them: in the firm's time zone (Europe/Warsaw by default),
//! correct across the change to and from summer time.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// The zone dates are read in unless the user says otherwise.
pub const DEFAULT_ZONE: Tz = chrono_tz::Europe::Warsaw;

/// What a bare date (`2026-12-14`) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateMeans {
    /// The start of that day (a start: "from 1 December").
    StartOfDay,
    /// The end of that day, i.e. the start of the next ("until 14 December" includes it).
    EndOfDay,
}

/// Milliseconds since the Unix epoch for `s`: RFC 3339 (`2026-12-01T08:00:00+01:00`),
/// a local time in `zone` (`2026-12-01 08:00` or `2026-12-01T08:00`), or a date
/// (`2026-12-01`, read as `means` says).
pub fn parse(s: &str, zone: Tz, means: DateMeans) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return to_ms(t.timestamp_millis(), s);
    }
    let local = if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = match means {
            DateMeans::StartOfDay => Some(d),
            DateMeans::EndOfDay => d.succ_opt(),
        };
        day.and_then(|d| d.and_hms_opt(0, 0, 0))
    } else {
        [
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    };
    let local = local.ok_or_else(|| {
        format!("{s:?} is not a time: use 2026-12-01, 2026-12-01 08:00 or RFC 3339")
    })?;
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => to_ms(t.timestamp_millis(), s),
        // The hour repeated when clocks go back: the first of the two.
        LocalResult::Ambiguous(first, _) => to_ms(first.timestamp_millis(), s),
        LocalResult::None => Err(format!(
            "{s:?} does not exist in {zone} (the clocks skip it): pick another time"
        )),
    }
}

fn to_ms(ms: i64, s: &str) -> Result<u64, String> {
    u64::try_from(ms).map_err(|_| format!("{s:?} is before 1970"))
}

/// `ms` as local time in `zone`: `2026-12-01 08:00 CET`.
pub fn format(ms: u64, zone: Tz) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| zone.timestamp_millis_opt(ms).single())
        .map(|t| t.format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_in_warsaw_across_summer_time() {
        let z = DEFAULT_ZONE;
        // Winter: UTC+1. 2026-12-01 00:00 CET = 2026-11-30 23:00 UTC.
        assert_eq!(
            parse("2026-12-01", z, DateMeans::StartOfDay),
            Ok(1_796_079_600_000)
        );
        // "Until 14 December" includes the 14th.
        assert_eq!(
            parse("2026-12-14", z, DateMeans::EndOfDay),
            Ok(1_797_289_200_000)
        );
        // Summer: UTC+2. 2026-07-01 08:00 CEST = 06:00 UTC.
        assert_eq!(
            parse("2026-07-01 08:00", z, DateMeans::StartOfDay),
            Ok(1_782_885_600_000)
        );
        assert_eq!(
            parse("2026-07-01T06:00:00Z", z, DateMeans::EndOfDay),
            Ok(1_782_885_600_000)
        );
        // 2026-03-29 02:30 does not exist in Warsaw; 2026-10-25 02:30 happens twice.
        assert!(parse("2026-03-29 02:30", z, DateMeans::StartOfDay)
            .unwrap_err()
            .contains("skip"));
        assert_eq!(
            parse("2026-10-25 02:30", z, DateMeans::StartOfDay),
            Ok(1_792_888_200_000)
        );
        assert!(parse("1.12.2026", z, DateMeans::StartOfDay).is_err());
        assert_eq!(format(1_796_079_600_000, z), "2026-12-01 00:00 CET");
        assert_eq!(format(1_782_885_600_000, z), "2026-07-01 08:00 CEST");
    }
}
