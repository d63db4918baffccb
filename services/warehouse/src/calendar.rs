//! Vietnam's working-day calendar for state agencies, which work Monday to
//! Friday: the days off of `schemas/reference/vn-days-off.csv` (public
//! holidays, compensating days, swapped days and the Saturdays worked for
//! them), checked against the Labour Code, with the arithmetic the Decision
//! 766 index needs ("N working days after", "working days between"), and
//! loaded into ClickHouse's `working_calendar` by the migrate step so that SQL
//! does the same arithmetic by joining on `day` and subtracting `ordinal`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anyhow::{Context, Result, anyhow, bail, ensure};
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use time::macros::date;
use time::{Date, Month, Weekday};

use crate::reference::{day_number, parse_date};

static CSV: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/reference/vn-days-off.csv"));

/// The first day of the calendar; `ordinal` counts working days from here.
pub const FIRST_DAY: Date = date!(2022 - 01 - 01);

/// What a day is for a state agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    Workday,
    Weekend,
    /// A public holiday (Labour Code 2019 art. 112), on a weekday or not.
    Holiday,
    /// Nghỉ bù: a holiday fell on a weekend (art. 111(3)).
    Compensating,
    /// Hoán đổi: a working day given off for a longer break ...
    SwappedOff,
    /// ... and the weekend day worked in its place.
    MakeupWorkday,
}

impl DayKind {
    const LISTED: [DayKind; 4] = [DayKind::Holiday, DayKind::Compensating, DayKind::SwappedOff, DayKind::MakeupWorkday];

    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Workday => "workday",
            DayKind::Weekend => "weekend",
            DayKind::Holiday => "holiday",
            DayKind::Compensating => "compensating",
            DayKind::SwappedOff => "swapped_off",
            DayKind::MakeupWorkday => "makeup_workday",
        }
    }

    pub fn is_working(self) -> bool {
        matches!(self, DayKind::Workday | DayKind::MakeupWorkday)
    }
}

/// The public holidays of art. 112.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holiday {
    NewYear,
    Tet,
    HungKings,
    Victory,
    Labour,
    NationalDay,
}

impl Holiday {
    const ALL: [Holiday; 6] =
        [Holiday::NewYear, Holiday::Tet, Holiday::HungKings, Holiday::Victory, Holiday::Labour, Holiday::NationalDay];

    pub fn code(self) -> &'static str {
        match self {
            Holiday::NewYear => "new_year",
            Holiday::Tet => "tet",
            Holiday::HungKings => "hung_kings",
            Holiday::Victory => "victory",
            Holiday::Labour => "labour",
            Holiday::NationalDay => "national_day",
        }
    }

    /// The name leaders read.
    pub fn name(self) -> &'static str {
        match self {
            Holiday::NewYear => "Tết Dương lịch",
            Holiday::Tet => "Tết Nguyên đán",
            Holiday::HungKings => "Giỗ Tổ Hùng Vương",
            Holiday::Victory => "Ngày Chiến thắng 30/4",
            Holiday::Labour => "Ngày Quốc tế Lao động 1/5",
            Holiday::NationalDay => "Quốc khánh 2/9",
        }
    }

    /// The fixed date art. 112 gives it, if any.
    fn fixed(self, year: i32) -> Option<Date> {
        let (month, day) = match self {
            Holiday::NewYear => (Month::January, 1),
            Holiday::Victory => (Month::April, 30),
            Holiday::Labour => (Month::May, 1),
            Holiday::NationalDay => (Month::September, 2),
            Holiday::Tet | Holiday::HungKings => return None,
        };
        Date::from_calendar_date(year, month, day).ok()
    }

    /// How many days off art. 112 gives it.
    fn days(self) -> usize {
        match self {
            Holiday::Tet => 5,
            Holiday::NationalDay => 2,
            _ => 1,
        }
    }
}

/// One day of the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarDay {
    pub date: Date,
    pub kind: DayKind,
    /// The holiday a listed day belongs to (a swap: the break it lengthens).
    pub holiday: Option<Holiday>,
    /// Working days from [`FIRST_DAY`] through this day.
    pub ordinal: u32,
}

/// Every day from [`FIRST_DAY`] through the last listed year.
#[derive(Debug)]
pub struct Calendar {
    days: Vec<CalendarDay>,
    final_through: Date,
}

/// A listed line of the file.
struct Listed {
    line: usize,
    kind: DayKind,
    holiday: Holiday,
}

static OFFICIAL: LazyLock<Result<Calendar, String>> =
    LazyLock::new(|| Calendar::parse(CSV).map_err(|e| format!("schemas/reference/vn-days-off.csv: {e:#}")));

impl Calendar {
    /// The calendar shipped in the repository.
    pub fn official() -> Result<&'static Calendar> {
        OFFICIAL.as_ref().map_err(|e| anyhow!("{e}"))
    }

    /// Reads a days-off file (the format is described at its top) and checks
    /// it: each line on its own, then every year up to `final-through`
    /// against the Labour Code.
    pub fn parse(text: &str) -> Result<Calendar> {
        let mut final_through = None;
        let mut listed = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            if let Some(value) = line.strip_prefix("final-through:") {
                final_through = Some(parse_date(value.trim()).with_context(|| format!("line {n}"))?);
                continue;
            }
            let (day, entry) = parse_line(line, n).with_context(|| format!("line {n}"))?;
            if let Some((&last, _)) = listed.last_key_value() {
                ensure!(day > last, "line {n}: {day} is not after {last}; keep the lines in date order, once each");
            }
            listed.insert(day, entry);
        }
        let final_through = final_through.context("no `final-through: YYYY-MM-DD` line")?;
        ensure!(
            final_through.month() == Month::December && final_through.day() == 31,
            "final-through {final_through}: a year is final as a whole; give its 31 December"
        );
        let last_year = listed.last_key_value().map_or(FIRST_DAY.year(), |(d, _)| d.year()).max(final_through.year());
        for year in FIRST_DAY.year()..=final_through.year() {
            check_year(year, &listed).with_context(|| format!("{year}"))?;
        }
        let last = Date::from_calendar_date(last_year, Month::December, 31)?;
        let mut days = Vec::new();
        let mut ordinal = 0;
        let mut date = FIRST_DAY;
        loop {
            let (kind, holiday) = match listed.get(&date) {
                Some(e) => (e.kind, Some(e.holiday)),
                None if is_weekend(date) => (DayKind::Weekend, None),
                None => (DayKind::Workday, None),
            };
            ordinal += u32::from(kind.is_working());
            days.push(CalendarDay { date, kind, holiday, ordinal });
            if date == last {
                break;
            }
            date = date.next_day().context("date overflow")?;
        }
        Ok(Calendar { days, final_through })
    }

    /// Every day, in order.
    pub fn days(&self) -> &[CalendarDay] {
        &self.days
    }

    /// The last day whose status comes from the Government's notices; later
    /// days carry only what the Labour Code fixes by date.
    pub fn final_through(&self) -> Date {
        self.final_through
    }

    pub fn day(&self, date: Date) -> Option<&CalendarDay> {
        let i = usize::try_from((date - FIRST_DAY).whole_days()).ok()?;
        self.days.get(i)
    }

    /// Working days after `from`, up to and including `to` (negative when
    /// `to` is earlier): a deadline of N working days from `from` is met on
    /// `to` when this is at most N.
    pub fn working_days_between(&self, from: Date, to: Date) -> Option<i64> {
        Some(i64::from(self.day(to)?.ordinal) - i64::from(self.day(from)?.ordinal))
    }

    /// The `n`th working day after `from` (`from` itself for 0).
    pub fn add_working_days(&self, from: Date, n: u32) -> Option<Date> {
        if n == 0 {
            return self.day(from).map(|d| d.date);
        }
        let target = self.day(from)?.ordinal.checked_add(n)?;
        let i = self.days.partition_point(|d| d.ordinal < target);
        self.days.get(i).map(|d| d.date)
    }
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn parse_line(line: &str, n: usize) -> Result<(Date, Listed)> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [day, kind, holiday] = fields[..] else {
        bail!("expected date,kind,holiday, found {} field(s)", fields.len());
    };
    let day = parse_date(day)?;
    ensure!(day >= FIRST_DAY, "{day} is before the calendar's first day {FIRST_DAY}");
    let kind = DayKind::LISTED
        .into_iter()
        .find(|k| k.as_str() == kind)
        .with_context(|| format!("kind {kind:?}: expected holiday, compensating, swapped_off or makeup_workday"))?;
    let holiday = Holiday::ALL
        .into_iter()
        .find(|h| h.code() == holiday)
        .with_context(|| format!("holiday {holiday:?}: expected one of {:?}", Holiday::ALL.map(Holiday::code)))?;
    match kind {
        DayKind::MakeupWorkday => {
            ensure!(is_weekend(day), "{day} is a {}: only a weekend day is made up", day.weekday())
        }
        DayKind::Compensating | DayKind::SwappedOff => {
            ensure!(!is_weekend(day), "{day} is a {}: a {} day is a weekday", day.weekday(), kind.as_str())
        }
        _ => {}
    }
    Ok((day, Listed { line: n, kind, holiday }))
}

/// A final year against art. 111-112: each holiday has its days (on its fixed
/// date, Tết consecutive, National Day 2/9 and a day next to it), each
/// holiday on a weekend its compensating day, and the year swaps as many
/// working days off as it makes up.
fn check_year(year: i32, listed: &BTreeMap<Date, Listed>) -> Result<()> {
    let entries: Vec<(Date, &Listed)> = listed.iter().filter(|(d, _)| d.year() == year).map(|(d, e)| (*d, e)).collect();
    let of = |kind: DayKind, holiday: Holiday| -> Vec<Date> {
        entries.iter().filter(|(_, e)| e.kind == kind && e.holiday == holiday).map(|(d, _)| *d).collect()
    };
    for holiday in Holiday::ALL {
        let days = of(DayKind::Holiday, holiday);
        ensure!(
            days.len() == holiday.days(),
            "{}: {} holiday line(s), the Labour Code gives {}",
            holiday.code(),
            days.len(),
            holiday.days()
        );
        if let Some(fixed) = holiday.fixed(year) {
            ensure!(days.contains(&fixed), "{}: {fixed} is not listed as its holiday", holiday.code());
        }
        ensure!(
            days.windows(2).all(|w| w[1] == w[0].next_day().unwrap_or(w[0])),
            "{}: its holidays {days:?} are not consecutive days",
            holiday.code()
        );
        let on_weekends = days.iter().filter(|d| is_weekend(**d)).count();
        let compensating = of(DayKind::Compensating, holiday);
        ensure!(
            compensating.len() == on_weekends,
            "{}: {on_weekends} holiday(s) on a weekend but {} compensating day(s)",
            holiday.code(),
            compensating.len()
        );
        if let Some(first) = compensating.first() {
            ensure!(days.iter().all(|d| d < first), "{}: compensating day {first} before the holiday", holiday.code());
        }
    }
    let count = |kind: DayKind| entries.iter().filter(|(_, e)| e.kind == kind).count();
    let (off, made_up) = (count(DayKind::SwappedOff), count(DayKind::MakeupWorkday));
    if off != made_up {
        let line = entries.iter().find(|(_, e)| matches!(e.kind, DayKind::SwappedOff | DayKind::MakeupWorkday));
        bail!("{off} swapped day(s) off but {made_up} made up (line {})", line.map_or(0, |(_, e)| e.line));
    }
    Ok(())
}

/// A row of `working_calendar` (migration 007).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
struct CalendarRow {
    /// Days since 1970-01-01, as ClickHouse stores a `Date`.
    day: u16,
    working: u8,
    ordinal: u32,
    kind: String,
    holiday: String,
    name: String,
    provisional: u8,
}

impl Calendar {
    fn rows(&self) -> Result<Vec<CalendarRow>> {
        self.days
            .iter()
            .map(|d| {
                Ok(CalendarRow {
                    day: day_number(d.date)?,
                    working: u8::from(d.kind.is_working()),
                    ordinal: d.ordinal,
                    kind: d.kind.as_str().to_owned(),
                    holiday: d.holiday.map_or("", Holiday::code).to_owned(),
                    name: d.holiday.map_or("", Holiday::name).to_owned(),
                    provisional: u8::from(d.date > self.final_through),
                })
            })
            .collect()
    }
}

/// Makes `working_calendar` hold the shipped calendar (swapped in whole
/// when it changed). Returns whether it loaded.
pub(crate) async fn load(db: &Client) -> Result<bool> {
    let rows = Calendar::official()?.rows()?;
    crate::reference::replace(db, "working_calendar", "day", &rows, "the working-day calendar").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn official() -> &'static Calendar {
        Calendar::official().unwrap()
    }

    fn off(date: Date) -> bool {
        !official().day(date).unwrap().kind.is_working()
    }

    #[test]
    fn the_shipped_calendar_reads_and_covers_2022_through_2027() {
        let c = official();
        assert_eq!(c.days().first().unwrap().date, FIRST_DAY);
        assert_eq!(c.days().last().unwrap().date, date!(2027 - 12 - 31));
        assert_eq!(c.final_through(), date!(2026 - 12 - 31));
        assert_eq!(c.days().len(), 2191, "six years, 2024 a leap year");
    }

    /// The breaks of the Government's notices, first day to last, as
    /// published (with the weekends inside them).
    #[test]
    fn official_breaks_are_days_off_and_the_days_around_them_are_not() {
        let breaks = [
            (date!(2022 - 01 - 29), date!(2022 - 02 - 06)), // Tết Nhâm Dần, 9 days
            (date!(2022 - 04 - 30), date!(2022 - 05 - 03)),
            (date!(2023 - 01 - 20), date!(2023 - 01 - 26)), // Tết Quý Mão, 7 days
            (date!(2023 - 04 - 29), date!(2023 - 05 - 03)),
            (date!(2023 - 09 - 01), date!(2023 - 09 - 04)),
            (date!(2023 - 12 - 30), date!(2024 - 01 - 01)),
            (date!(2024 - 02 - 08), date!(2024 - 02 - 14)), // Tết Giáp Thìn, 7 days
            (date!(2024 - 04 - 27), date!(2024 - 05 - 01)),
            (date!(2024 - 08 - 31), date!(2024 - 09 - 03)),
            (date!(2025 - 01 - 25), date!(2025 - 02 - 02)), // Tết Ất Tỵ, 9 days
            (date!(2025 - 04 - 05), date!(2025 - 04 - 07)),
            (date!(2025 - 04 - 30), date!(2025 - 05 - 04)),
            (date!(2025 - 08 - 30), date!(2025 - 09 - 02)),
            (date!(2026 - 01 - 01), date!(2026 - 01 - 04)),
            (date!(2026 - 02 - 14), date!(2026 - 02 - 22)), // Tết Bính Ngọ, 9 days
            (date!(2026 - 04 - 25), date!(2026 - 04 - 27)),
            (date!(2026 - 04 - 30), date!(2026 - 05 - 03)),
            (date!(2026 - 08 - 29), date!(2026 - 09 - 02)),
        ];
        for (first, last) in breaks {
            let mut d = first;
            while d <= last {
                assert!(off(d), "{d} is in the break {first}..{last}");
                d = d.next_day().unwrap();
            }
            let before = first.previous_day().unwrap();
            let after = last.next_day().unwrap();
            assert!(!off(before), "{before}, the day before {first}, is worked");
            assert!(!off(after), "{after}, the day after {last}, is worked");
        }
    }

    #[test]
    fn the_days_off_of_each_year_add_up_to_the_announced_totals() {
        // 2025 announced 22 days off in all and 2026 25, weekends inside the
        // breaks included.
        let weekdays_off = |year| {
            official()
                .days()
                .iter()
                .filter(|d| d.date.year() == year && !is_weekend(d.date) && !d.kind.is_working())
                .count()
        };
        assert_eq!(weekdays_off(2025), 22 - 4 - 2 - 2 - 2, "less the weekend days inside the breaks");
        assert_eq!(weekdays_off(2026), 25 - 2 - 4 - 2 - 2 - 2, "less the weekend days inside the breaks");
        for saturday in [date!(2024 - 05 - 04), date!(2025 - 04 - 26), date!(2026 - 01 - 10), date!(2026 - 08 - 22)] {
            assert!(!off(saturday), "{saturday} was worked in exchange for a day off");
        }
    }

    #[test]
    fn arithmetic_steps_over_tet_swaps_and_compensating_days() {
        let c = official();
        // Friday 13/2/2026, the last day worked before Tết Bính Ngọ: the next
        // working day is Monday 23/2, nine days later.
        assert_eq!(c.add_working_days(date!(2026 - 02 - 13), 1), Some(date!(2026 - 02 - 23)));
        assert_eq!(c.working_days_between(date!(2026 - 02 - 13), date!(2026 - 02 - 23)), Some(1));
        assert_eq!(c.working_days_between(date!(2026 - 02 - 23), date!(2026 - 02 - 13)), Some(-1));
        // National Day 2023: Friday 1/9 and Saturday 2/9, Monday 4/9 in
        // compensation; from Thursday 31/8 the next working day is Tuesday 5/9.
        assert_eq!(c.add_working_days(date!(2023 - 08 - 31), 1), Some(date!(2023 - 09 - 05)));
        // Saturday 22/8/2026 is worked for Monday 31/8.
        assert_eq!(c.add_working_days(date!(2026 - 08 - 21), 1), Some(date!(2026 - 08 - 22)));
        assert_eq!(c.add_working_days(date!(2026 - 08 - 28), 1), Some(date!(2026 - 09 - 03)));
        // Five working days from a day off count from the next working day.
        assert_eq!(c.add_working_days(date!(2026 - 02 - 15), 5), Some(date!(2026 - 02 - 27)));
        assert_eq!(c.add_working_days(date!(2026 - 02 - 15), 0), Some(date!(2026 - 02 - 15)));
        // Outside the calendar there is no answer rather than a guess.
        assert_eq!(c.add_working_days(date!(2027 - 12 - 30), 5), None);
        assert_eq!(c.working_days_between(date!(2021 - 12 - 31), date!(2022 - 01 - 04)), None);
    }

    #[test]
    fn add_and_between_agree_everywhere() {
        let c = official();
        for d in c.days().iter().step_by(7) {
            for n in [1, 5, 10, 20] {
                if let Some(end) = c.add_working_days(d.date, n) {
                    assert_eq!(c.working_days_between(d.date, end), Some(i64::from(n)), "{} + {n}", d.date);
                    assert!(c.day(end).unwrap().kind.is_working());
                }
            }
        }
    }

    fn file(lines: &str) -> String {
        format!("final-through: 2022-12-31\n{lines}")
    }

    const GOOD_2022: &str = "2022-01-01,holiday,new_year\n2022-01-03,compensating,new_year\n\
        2022-01-31,holiday,tet\n2022-02-01,holiday,tet\n2022-02-02,holiday,tet\n2022-02-03,holiday,tet\n2022-02-04,holiday,tet\n\
        2022-04-10,holiday,hung_kings\n2022-04-11,compensating,hung_kings\n2022-04-30,holiday,victory\n2022-05-01,holiday,labour\n\
        2022-05-02,compensating,victory\n2022-05-03,compensating,labour\n2022-09-01,holiday,national_day\n2022-09-02,holiday,national_day\n";

    #[test]
    fn a_year_breaking_the_labour_code_is_refused_with_the_reason() {
        assert!(Calendar::parse(&file(GOOD_2022)).is_ok());
        let refused = |text: String| format!("{:#}", Calendar::parse(&text).unwrap_err());
        let without = |line: &str| file(&GOOD_2022.replace(&format!("{line}\n"), ""));
        assert!(
            refused(without("2022-01-03,compensating,new_year"))
                .contains("new_year: 1 holiday(s) on a weekend but 0 compensating")
        );
        assert!(refused(without("2022-02-02,holiday,tet")).contains("tet: 4 holiday line(s), the Labour Code gives 5"));
        assert!(refused(without("2022-09-02,holiday,national_day")).contains("national_day: 1 holiday line(s)"));
        let moved = GOOD_2022.replace("2022-04-30,holiday,victory", "2022-04-29,holiday,victory");
        assert!(refused(file(&moved)).contains("victory: 2022-04-30 is not listed"));
        let swapped = format!("{GOOD_2022}2022-12-30,swapped_off,new_year\n");
        assert!(refused(file(&swapped)).contains("1 swapped day(s) off but 0 made up"));
        let gap = GOOD_2022.replace("2022-02-04,holiday,tet", "2022-02-07,holiday,tet");
        assert!(refused(file(&gap)).contains("tet: its holidays"), "not consecutive");
    }

    #[test]
    fn a_bad_line_is_refused_naming_it() {
        let refused = |lines: &str| format!("{:#}", Calendar::parse(&file(lines)).unwrap_err());
        assert!(refused("2022-01-08,makeup_workday,new_year\n2022-01-07,holiday,tet\n").contains("line 3"));
        assert_eq!(
            refused("2022-01-03,makeup_workday,new_year\n"),
            "line 2: 2022-01-03 is a Monday: only a weekend day is made up"
        );
        assert_eq!(
            refused("2022-01-08,compensating,tet\n"),
            "line 2: 2022-01-08 is a Saturday: a compensating day is a weekday"
        );
        assert!(refused("2022-01-03,day_off,tet\n").starts_with("line 2: kind \"day_off\""));
        assert!(refused("2022-01-03,holiday,christmas\n").starts_with("line 2: holiday \"christmas\""));
        assert!(refused("2022-13-03,holiday,tet\n").starts_with("line 2: \"2022-13-03\" is not a YYYY-MM-DD date"));
        assert!(refused("2022-01-03,holiday\n").contains("found 2 field(s)"));
        assert!(refused("2021-12-31,holiday,new_year\n").contains("before the calendar's first day"));
        let no_header = Calendar::parse(GOOD_2022).unwrap_err().to_string();
        assert!(no_header.contains("final-through"), "{no_header}");
    }

    #[test]
    fn rows_number_working_days_from_the_first_day() {
        let rows = official().rows().unwrap();
        assert_eq!(rows[0].day, 18_993, "2022-01-01 (date -d 2022-01-01 +%s / 86400)");
        // Saturday 1/1 holiday, Sunday 2/1, Monday 3/1 compensating: the first
        // working day is Tuesday 4/1/2022.
        assert_eq!(rows[..4].iter().map(|r| r.ordinal).collect::<Vec<_>>(), [0, 0, 0, 1]);
        assert_eq!(rows[0].name, "Tết Dương lịch");
        assert_eq!(rows[2].kind, "compensating");
        let provisional = rows.iter().filter(|r| r.provisional == 1).count();
        assert_eq!(provisional, 365, "2027");
    }
}
