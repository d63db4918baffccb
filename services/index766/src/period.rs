//! The index's periods: a month (`YYYY-MM`), a quarter (`YYYY-Qn`) or a
//! year (`YYYY`), in Vietnam's calendar (UTC+7 all year). A period is
//! scored from its own counts, never from its months'.

use std::fmt;

use time::{Date, Month, OffsetDateTime, UtcOffset};

/// Vietnam's offset from UTC, the same all year.
pub const VIETNAM: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+07:00 is a valid offset"),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
}

impl PeriodKind {
    /// The kind's name in `index766_rollup.period_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::Year => "year",
        }
    }

    fn months(self) -> u8 {
        match self {
            PeriodKind::Month => 1,
            PeriodKind::Quarter => 3,
            PeriodKind::Year => 12,
        }
    }
}

/// A period: its kind and its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub kind: PeriodKind,
    pub start: Date,
}

impl Period {
    /// Reads `YYYY-MM`, `YYYY-Qn` or `YYYY` (years 2000–2099); the error
    /// says what is wrong.
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad = || format!("{text:?} is not a period (YYYY-MM, YYYY-Qn or YYYY)");
        let year_of = |y: &str| -> Result<i32, String> {
            if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let year: i32 = y.parse().map_err(|_| bad())?;
            if !(2000..=2099).contains(&year) {
                return Err(format!("{text:?}: the year is outside 2000-2099"));
            }
            Ok(year)
        };
        let number = |s: &str, range: std::ops::RangeInclusive<u8>| -> Result<u8, String> {
            let n: u8 =
                if s.bytes().all(|b| b.is_ascii_digit()) { s.parse().map_err(|_| bad())? } else { return Err(bad()) };
            if range.contains(&n) { Ok(n) } else { Err(bad()) }
        };
        let start = |year: i32, month: u8| -> Result<Date, String> {
            let month = Month::try_from(month).map_err(|_| bad())?;
            Date::from_calendar_date(year, month, 1).map_err(|_| bad())
        };
        match text.split_once('-') {
            None => Ok(Period { kind: PeriodKind::Year, start: start(year_of(text)?, 1)? }),
            Some((y, q)) if q.starts_with('Q') => {
                let n = number(&q[1..], 1..=4)?;
                Ok(Period { kind: PeriodKind::Quarter, start: start(year_of(y)?, (n - 1) * 3 + 1)? })
            }
            Some((y, m)) if m.len() == 2 => {
                Ok(Period { kind: PeriodKind::Month, start: start(year_of(y)?, number(m, 1..=12)?)? })
            }
            Some(_) => Err(bad()),
        }
    }

    /// The first day after the period.
    pub fn end(&self) -> Date {
        let months = u32::from(self.start.month() as u8) - 1 + u32::from(self.kind.months());
        let year = self.start.year() + (months / 12) as i32;
        let month = Month::try_from((months % 12) as u8 + 1).expect("a month number in 1..=12");
        Date::from_calendar_date(year, month, 1).expect("the first of a month exists")
    }

    /// The last day of the period.
    pub fn last_day(&self) -> Date {
        self.end().previous_day().expect("the end is after the start")
    }

    /// The period's first instant, as a Unix time.
    pub fn start_instant(&self) -> i64 {
        midnight(self.start)
    }

    /// The instant the period ends (its end's midnight), as a Unix time.
    pub fn end_instant(&self) -> i64 {
        midnight(self.end())
    }

    /// Not over yet at `now`: its figures are provisional.
    pub fn provisional(&self, now: OffsetDateTime) -> bool {
        now.unix_timestamp() < self.end_instant()
    }

    /// The period of `kind` that holds `day`.
    pub fn holding(kind: PeriodKind, day: Date) -> Period {
        let month0 = (day.month() as u8 - 1) / kind.months() * kind.months();
        let month = Month::try_from(month0 + 1).expect("a month number in 1..=12");
        Period { kind, start: Date::from_calendar_date(day.year(), month, 1).expect("the first of a month exists") }
    }

    /// The period before this one.
    pub fn previous(&self) -> Period {
        Period::holding(self.kind, self.start.previous_day().expect("a period has a day before it"))
    }
}

/// Vietnam's midnight at the start of `day`, as a Unix time.
pub fn midnight(day: Date) -> i64 {
    day.midnight().assume_offset(VIETNAM).unix_timestamp()
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let year = self.start.year();
        match self.kind {
            PeriodKind::Month => write!(f, "{year}-{:02}", self.start.month() as u8),
            PeriodKind::Quarter => write!(f, "{year}-Q{}", (self.start.month() as u8 - 1) / 3 + 1),
            PeriodKind::Year => write!(f, "{year}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    #[test]
    fn the_three_forms_read_and_print_back() {
        let cases = [
            ("2026-08", PeriodKind::Month, date!(2026 - 08 - 01), date!(2026 - 09 - 01)),
            ("2026-12", PeriodKind::Month, date!(2026 - 12 - 01), date!(2027 - 01 - 01)),
            ("2026-Q3", PeriodKind::Quarter, date!(2026 - 07 - 01), date!(2026 - 10 - 01)),
            ("2026-Q4", PeriodKind::Quarter, date!(2026 - 10 - 01), date!(2027 - 01 - 01)),
            ("2026", PeriodKind::Year, date!(2026 - 01 - 01), date!(2027 - 01 - 01)),
        ];
        for (text, kind, start, end) in cases {
            let p = Period::parse(text).unwrap();
            assert_eq!((p.kind, p.start, p.end()), (kind, start, end), "{text}");
            assert_eq!(p.to_string(), text);
        }
        assert_eq!(Period::parse("2026-08").unwrap().last_day(), date!(2026 - 08 - 31));
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "26",
            "2026-8",
            "2026-13",
            "2026-00",
            "2026-Q5",
            "2026-Q0",
            "2026-q1",
            "2026-08-01",
            "1999",
            "2100",
            "２０２６",
            "2026-Q",
            "+026",
        ] {
            assert!(Period::parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn a_period_runs_from_vietnam_midnight_to_vietnam_midnight() {
        let p = Period::parse("2026-08").unwrap();
        assert_eq!(p.start_instant(), datetime!(2026-07-31 17:00 UTC).unix_timestamp());
        assert_eq!(p.end_instant(), datetime!(2026-08-31 17:00 UTC).unix_timestamp());
        assert!(p.provisional(datetime!(2026-08-31 16:59:59 UTC)));
        assert!(!p.provisional(datetime!(2026-08-31 17:00 UTC)));
    }

    proptest! {
        #[test]
        fn every_day_lies_in_the_period_holding_it(days in 0i64..36_000, k in 0usize..3) {
            let kind = [PeriodKind::Month, PeriodKind::Quarter, PeriodKind::Year][k];
            let day = date!(2000 - 01 - 01) + time::Duration::days(days);
            let p = Period::holding(kind, day);
            prop_assert!(p.start <= day && day < p.end());
            prop_assert_eq!(Period::parse(&p.to_string()).unwrap(), p);
            prop_assert_eq!(p.previous().end(), p.start);
        }
    }
}
