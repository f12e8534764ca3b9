//! Deadline templates: an accounting office's regular duties as data. Each is a
//! recurrence of its nominal day (RFC 5545 RRULE) and moves to the next working day when
//! that day is a weekend or a public holiday. The built-in set is a starting point the
//! firm edits; applying a template to a customer creates its recurring task.

use super::calendar::{due_days, RecurError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One regular duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineTemplate {
    /// Stable id used on the command line (`vat-monthly`).
    pub id: String,
    /// Title in Polish (the task's title).
    pub title_pl: String,
    /// Title in English.
    pub title_en: String,
    /// RFC 5545 RRULE of the nominal day (e.g. `FREQ=MONTHLY;BYMONTHDAY=25`).
    pub rrule: String,
    /// What the deadline is, with its legal basis, for the person doing it.
    pub note: String,
    /// `builtin`, or `firm` for a template the firm added or changed.
    #[serde(default = "builtin_source")]
    pub source: String,
}

fn builtin_source() -> String {
    "builtin".into()
}

/// The built-in templates (a firm may add its own or edit these).
pub fn builtin() -> Vec<DeadlineTemplate> {
    let t = |id: &str, pl: &str, en: &str, rrule: &str, note: &str| DeadlineTemplate {
        id: id.into(),
        title_pl: pl.into(),
        title_en: en.into(),
        rrule: rrule.into(),
        note: note.into(),
        source: builtin_source(),
    };
    vec![
        t(
            "vat-monthly",
            "JPK_V7M i VAT za poprzedni miesiąc",
            "JPK_V7M and VAT for the previous month",
            "FREQ=MONTHLY;BYMONTHDAY=25",
            "Ustawa o VAT art. 99 ust. 1 i art. 103 ust. 1: do 25. dnia miesiąca następnego.",
        ),
        t(
            "vat-quarterly",
            "JPK_V7K za poprzedni miesiąc (VAT kwartalnie)",
            "JPK_V7K for the previous month (VAT quarterly)",
            "FREQ=MONTHLY;BYMONTHDAY=25",
            "Ewidencja co miesiąc, deklaracja i wpłata VAT po kwartale, do 25. dnia.",
        ),
        t(
            "zus",
            "Składki ZUS",
            "Social insurance contributions (ZUS)",
            "FREQ=MONTHLY;BYMONTHDAY=20",
            "Do 20. dnia miesiąca następnego (osoby prawne i jednostki budżetowe: 15. — zmień dzień).",
        ),
        t(
            "pit-4r",
            "PIT-4R: zaliczka na podatek od wynagrodzeń",
            "PIT-4R: payroll tax advance",
            "FREQ=MONTHLY;BYMONTHDAY=20",
            "Ustawa o PIT art. 38: wpłata do 20. dnia miesiąca następnego.",
        ),
        t(
            "pit-advance",
            "Zaliczka PIT z działalności",
            "Business income tax advance (PIT)",
            "FREQ=MONTHLY;BYMONTHDAY=20",
            "Ustawa o PIT art. 44 ust. 6: do 20. dnia miesiąca następnego.",
        ),
        t(
            "cit-advance",
            "Zaliczka CIT",
            "Corporate income tax advance (CIT)",
            "FREQ=MONTHLY;BYMONTHDAY=20",
            "Ustawa o CIT art. 25 ust. 1: do 20. dnia miesiąca następnego.",
        ),
    ]
}

/// One deadline of a template: the nominal day and the day it is due (moved to the next
/// working day when needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadline {
    /// The day the rule names.
    pub nominal: NaiveDate,
    /// The day it is due.
    pub due: NaiveDate,
}

impl DeadlineTemplate {
    /// Its deadlines due from `from` to `to` (inclusive), in Europe/Warsaw.
    pub fn deadlines(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<Deadline>, RecurError> {
        Ok(due_days(&self.rrule, from, true, from, to, 1000)?
            .into_iter()
            .map(|(nominal, due)| Deadline { nominal, due })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn vat_monthly_moves_off_weekends_and_holidays() {
        let vat = builtin()
            .into_iter()
            .find(|t| t.id == "vat-monthly")
            .unwrap();
        let got = vat.deadlines(day(2026, 1, 1), day(2026, 12, 31)).unwrap();
        assert_eq!(got.len(), 12);
        assert!(got
            .iter()
            .all(|d| d.nominal.format("%d").to_string() == "25"));
        let due = |m: u32| got[m as usize - 1].due;
        // 25 Jan 2026 is a Sunday → Monday 26th; 25 Apr a Saturday → Monday 27th;
        // 25 Oct a Sunday → 26th; 25 Dec Christmas (Friday) → Monday 28th.
        assert_eq!(due(1), day(2026, 1, 26));
        assert_eq!(due(4), day(2026, 4, 27));
        assert_eq!(due(10), day(2026, 10, 26));
        assert_eq!(due(12), day(2026, 12, 28));
        // A working 25th stays: 25 Feb 2026 is a Wednesday.
        assert_eq!(due(2), day(2026, 2, 25));
    }

    #[test]
    fn zus_on_the_20th() {
        let zus = builtin().into_iter().find(|t| t.id == "zus").unwrap();
        let got = zus.deadlines(day(2026, 6, 1), day(2026, 9, 30)).unwrap();
        // 20 June 2026 Saturday → 22nd; 20 Sept Sunday → 21st.
        assert_eq!(
            got.iter().map(|d| d.due).collect::<Vec<_>>(),
            vec![
                day(2026, 6, 22),
                day(2026, 7, 20),
                day(2026, 8, 20),
                day(2026, 9, 21)
            ]
        );
    }

    #[test]
    fn every_builtin_template_expands() {
        for t in builtin() {
            let got = t.deadlines(day(2027, 1, 1), day(2027, 12, 31)).unwrap();
            assert_eq!(got.len(), 12, "{}", t.id);
            assert!(got
                .iter()
                .all(|d| d.due >= d.nominal && super::super::calendar::is_working_day(d.due)));
        }
    }
}
