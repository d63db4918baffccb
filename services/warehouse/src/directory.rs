//! The directory of authorities: the ministries and provinces an
//! `authority_code` names, with their names and the geography's history
//! (units that merged into others, units renamed), read from
//! `schemas/reference/authorities.csv` or a deployment's own file of that
//! format, checked, and loaded into ClickHouse's `authorities` by the migrate
//! step. The rates API reads it back to show names; the portal simulator
//! follows it to publish for the units in being on each day.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use anyhow::{Context, Result, anyhow, bail, ensure};
use clickhouse::{Client, Row};
use dvc_events::AuthorityKind;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::reference::{day_number, from_day_number, parse_date};

static CSV: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/reference/authorities.csv"));

static OFFICIAL: LazyLock<Result<Directory, String>> =
    LazyLock::new(|| Directory::parse(CSV).map_err(|e| format!("schemas/reference/authorities.csv: {e:#}")));

/// One unit under its code for a stretch of days: a row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub code: String,
    pub kind: AuthorityKind,
    pub name: String,
    /// First day; `None`: before any data.
    pub valid_from: Option<Date>,
    /// Last day; `None`: still in being.
    pub valid_to: Option<Date>,
    /// The code that took over the day after `valid_to` (a code's last row).
    pub successor: Option<String>,
}

impl Unit {
    pub fn in_being_on(&self, day: Date) -> bool {
        in_being(self.valid_from, self.valid_to, day)
    }
}

/// Whether a unit in being from `valid_from` to `valid_to` (both days
/// included; `None`: open) is in being on `day`.
pub fn in_being(valid_from: Option<Date>, valid_to: Option<Date>, day: Date) -> bool {
    valid_from.is_none_or(|from| from <= day) && valid_to.is_none_or(|to| day <= to)
}

/// The checked directory: every code's rows in order of their days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    units: Vec<Unit>,
}

/// A line of the file, as written.
#[derive(Deserialize)]
struct Line {
    code: String,
    kind: String,
    name: String,
    valid_from: String,
    valid_to: String,
    successor: String,
}

/// The longest name accepted.
const MAX_NAME_CHARS: usize = 200;

impl Line {
    fn unit(self) -> Result<Unit> {
        let kind = AuthorityKind::of(&self.code)
            .ok_or_else(|| anyhow!("code {:?} does not match ^[GH]\\d{{2}}$", self.code))?;
        ensure!(
            self.kind == kind.as_str(),
            "kind {:?}: code {} is a {} (G.. ministry, H.. province)",
            self.kind,
            self.code,
            kind.as_str()
        );
        let name = self.name;
        ensure!(!name.is_empty() && name.chars().count() <= MAX_NAME_CHARS, "name: 1 to {MAX_NAME_CHARS} characters");
        ensure!(!name.chars().any(char::is_control), "name: no control characters");
        let day = |text: &str| (!text.is_empty()).then(|| parse_date(text)).transpose();
        let successor = Some(self.successor).filter(|s| !s.is_empty());
        if let Some(s) = &successor {
            ensure!(AuthorityKind::of(s).is_some(), "successor {s:?} does not match ^[GH]\\d{{2}}$");
        }
        Ok(Unit {
            kind,
            name,
            valid_from: day(&self.valid_from).context("valid_from")?,
            valid_to: day(&self.valid_to).context("valid_to")?,
            successor,
            code: self.code,
        })
    }
}

impl Directory {
    /// The directory shipped in the repository.
    pub fn official() -> Result<&'static Directory> {
        OFFICIAL.as_ref().map_err(|e| anyhow!("{e}"))
    }

    /// A deployment's own directory file.
    pub fn read(path: &Path) -> Result<Directory> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Directory::parse(&text).with_context(|| path.display().to_string())
    }

    /// Reads a directory file (CSV with a header line, `#` comments; the
    /// format is described at the top of the shipped one) and checks it.
    pub fn parse(text: &str) -> Result<Directory> {
        let mut reader =
            csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = reader.headers().context("the header line")?.clone();
        let mut units = Vec::new();
        for record in reader.records() {
            let record = record?;
            let line = record.position().map_or(0, csv::Position::line);
            let unit = record
                .deserialize::<Line>(Some(&headers))
                .map_err(anyhow::Error::from)
                .and_then(Line::unit)
                .with_context(|| format!("line {line}"))?;
            units.push(unit);
        }
        Directory::new(units)
    }

    /// Checks the units: each code's rows follow each other day by day
    /// (a new row is a new name), share a kind, and only the last may end
    /// for good, naming the code in being that took over the next day.
    pub fn new(mut units: Vec<Unit>) -> Result<Directory> {
        ensure!(!units.is_empty(), "no units");
        units.sort_by(|a, b| (&a.code, a.valid_from).cmp(&(&b.code, b.valid_from)));
        let directory = Directory { units };
        for rows in directory.by_code().values() {
            let code = &rows[0].code;
            for (i, unit) in rows.iter().enumerate() {
                if let (Some(from), Some(to)) = (unit.valid_from, unit.valid_to) {
                    ensure!(from <= to, "{code}: valid_from {from} after valid_to {to}");
                }
                let Some(next) = rows.get(i + 1) else { break };
                ensure!(next.kind == unit.kind, "{code}: rows of both kinds");
                ensure!(unit.successor.is_none(), "{code}: a successor on a row that another row of the code follows");
                let follows = unit.valid_to.and_then(|to| to.next_day());
                ensure!(
                    follows.is_some() && next.valid_from == follows,
                    "{code}: the row from {} does not start the day after the one before it ends",
                    next.valid_from.map_or("the start".to_owned(), |d| d.to_string()),
                );
            }
            let last = rows.last().expect("a code has a row");
            match (last.valid_to, &last.successor) {
                (None, None) => {}
                (None, Some(_)) => bail!("{code}: a successor but no valid_to"),
                (Some(to), None) => bail!("{code}: ends {to} without a successor"),
                (Some(to), Some(successor)) => {
                    ensure!(successor != code, "{code}: its own successor");
                    let next = to.next_day().ok_or_else(|| anyhow!("{code}: ends on the last day there is"))?;
                    ensure!(
                        directory.unit_on(successor, next).is_some(),
                        "{code}: successor {successor} is not in being on {next}"
                    );
                }
            }
        }
        Ok(directory)
    }

    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Each code's rows, in order.
    fn by_code(&self) -> BTreeMap<&str, Vec<&Unit>> {
        let mut out: BTreeMap<&str, Vec<&Unit>> = BTreeMap::new();
        for unit in &self.units {
            out.entry(unit.code.as_str()).or_default().push(unit);
        }
        out
    }

    /// The unit `code` names on `day`, if one is in being.
    pub fn unit_on(&self, code: &str, day: Date) -> Option<&Unit> {
        self.units.iter().find(|u| u.code == code && u.in_being_on(day))
    }

    /// The name a range ending on `to` shows for `code`: the last name it
    /// took by then (a unit merged away keeps its last name; a unit renamed
    /// inside the range shows its new one). `None` for a code not listed.
    pub fn name(&self, code: &str, to: Date) -> Option<&str> {
        let rows: Vec<&Unit> = self.units.iter().filter(|u| u.code == code).collect();
        let begun = rows.iter().rev().find(|u| u.valid_from.is_none_or(|from| from <= to));
        begun.or(rows.first()).map(|u| u.name.as_str())
    }

    /// The unit that carries `code`'s dossiers on today: its own last row,
    /// or, when it ended, its successor's, followed to the end.
    pub fn current(&self, code: &str) -> Option<&Unit> {
        let mut last = self.units.iter().rfind(|u| u.code == code)?;
        for _ in 0..self.units.len() {
            match &last.successor {
                None => return Some(last),
                Some(next) => last = self.units.iter().rfind(|u| &u.code == next)?,
            }
        }
        None // a cycle, which new() rules out
    }

    /// The rows of `authorities` (migration 008).
    pub fn rows(&self) -> Result<Vec<DirectoryRow>> {
        let day = |d: Option<Date>| d.map(day_number).transpose();
        self.units
            .iter()
            .map(|u| {
                let current = self.current(&u.code).ok_or_else(|| anyhow!("{}: no current unit", u.code))?;
                Ok(DirectoryRow {
                    authority_code: u.code.clone(),
                    kind: u.kind.as_str().to_owned(),
                    name: u.name.clone(),
                    valid_from: day(u.valid_from)?,
                    valid_to: day(u.valid_to)?,
                    successor: u.successor.clone(),
                    current_code: current.code.clone(),
                    current_name: current.name.clone(),
                })
            })
            .collect()
    }

    /// The directory stored in `authorities`, checked again.
    pub fn from_rows(rows: Vec<DirectoryRow>) -> Result<Directory> {
        let units = rows
            .into_iter()
            .map(|r| {
                Ok(Unit {
                    kind: AuthorityKind::of(&r.authority_code)
                        .ok_or_else(|| anyhow!("authority_code {:?} is not a code", r.authority_code))?,
                    code: r.authority_code,
                    name: r.name,
                    valid_from: r.valid_from.map(from_day_number),
                    valid_to: r.valid_to.map(from_day_number),
                    successor: r.successor,
                })
            })
            .collect::<Result<_>>()?;
        Directory::new(units)
    }
}

/// A row of `authorities` (migration 008): one unit of the directory, with
/// the unit that carries its code today.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct DirectoryRow {
    pub authority_code: String,
    pub kind: String,
    pub name: String,
    /// Days since 1970-01-01, as ClickHouse stores a `Date`.
    pub valid_from: Option<u16>,
    pub valid_to: Option<u16>,
    pub successor: Option<String>,
    pub current_code: String,
    pub current_name: String,
}

/// Makes `authorities` hold `directory` (swapped in whole when it changed).
/// Returns whether it loaded.
pub(crate) async fn load(db: &Client, directory: &Directory) -> Result<bool> {
    let order = "authority_code, isNotNull(valid_from), valid_from";
    crate::reference::replace(db, "authorities", order, &directory.rows()?, "the directory of authorities").await
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn official() -> &'static Directory {
        Directory::official().unwrap()
    }

    fn names_on(day: Date, kind: AuthorityKind) -> Vec<&'static str> {
        official().units().iter().filter(|u| u.in_being_on(day) && u.kind == kind).map(|u| u.name.as_str()).collect()
    }

    #[test]
    fn the_shipped_directory_follows_the_2025_reorganisations() {
        use AuthorityKind::{Ministry, Province};
        // 18 ministries and 4 ministerial-level agencies, then 14 and 3
        // (Resolution 176/2025/QH15, from 1 March 2025).
        assert_eq!(names_on(date!(2025 - 02 - 28), Ministry).len(), 22);
        assert_eq!(names_on(date!(2025 - 03 - 01), Ministry).len(), 17);
        // 63 provinces, then 34 (Resolution 202/2025/QH15, from 1 July 2025).
        assert_eq!(names_on(date!(2025 - 06 - 30), Province).len(), 63);
        assert_eq!(names_on(date!(2025 - 07 - 01), Province).len(), 34);
        assert_eq!(names_on(date!(2026 - 12 - 04), Province).len(), 34);
        assert!(names_on(date!(2024 - 12 - 31), Province).contains(&"Thừa Thiên Huế"));
        assert!(names_on(date!(2025 - 01 - 01), Province).contains(&"Huế"));
    }

    #[test]
    fn every_ended_unit_leads_to_one_in_being_today_and_the_merged_provinces_add_up() {
        let d = official();
        let today = date!(2026 - 12 - 04);
        let mut merged: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for unit in d.units() {
            let current = d.current(&unit.code).unwrap();
            assert!(current.in_being_on(today), "{} leads to {}, not in being", unit.code, current.code);
            if unit.kind == AuthorityKind::Province && unit.valid_to.is_none_or(|to| to == date!(2025 - 06 - 30)) {
                merged.entry(current.name.as_str()).or_default().push(&unit.name);
            }
        }
        // Resolution 202/2025/QH15, art. 1: a few of the 34, with what they took in.
        assert_eq!(merged["Tuyên Quang"], ["Hà Giang", "Tuyên Quang"]);
        assert_eq!(merged["Phú Thọ"], ["Hòa Bình", "Phú Thọ", "Vĩnh Phúc"]);
        assert_eq!(merged["TP. Hồ Chí Minh"], ["Bình Dương", "Bà Rịa - Vũng Tàu", "TP. Hồ Chí Minh"]);
        assert_eq!(merged["Cần Thơ"], ["Cần Thơ", "Hậu Giang", "Sóc Trăng"]);
        assert_eq!(merged["Hà Nội"], ["Hà Nội"]);
        let sizes: Vec<usize> = merged.values().map(Vec::len).collect();
        assert_eq!(merged.len(), 34);
        assert_eq!(sizes.iter().sum::<usize>(), 63);
        assert_eq!(sizes.iter().filter(|&&n| n == 1).count(), 11, "11 provinces unchanged");
        assert_eq!(sizes.iter().filter(|&&n| n == 3).count(), 6, "6 formed of three");
        assert_eq!(d.current("G12").unwrap().name, "Bộ Nông nghiệp và Môi trường");
        assert_eq!(d.current("G14").unwrap().name, "Bộ Nội vụ");
    }

    #[test]
    fn a_range_shows_the_name_a_unit_had_by_its_last_day() {
        let d = official();
        assert_eq!(d.name("H31", date!(2024 - 12 - 31)), Some("Thừa Thiên Huế"));
        assert_eq!(d.name("H31", date!(2025 - 01 - 01)), Some("Huế"));
        assert_eq!(d.name("H02", date!(2026 - 01 - 01)), Some("Hà Giang"), "a merged unit keeps its last name");
        assert_eq!(d.name("G23", date!(2024 - 01 - 01)), Some("Bộ Nông nghiệp và Môi trường"));
        assert_eq!(d.name("H99", date!(2024 - 01 - 01)), None);
    }

    #[test]
    fn the_stored_rows_read_back_to_the_same_directory() {
        let d = official();
        assert_eq!(&Directory::from_rows(d.rows().unwrap()).unwrap(), d);
    }

    #[test]
    fn a_broken_file_is_refused_with_the_line_or_code_at_fault() {
        let head = "code,kind,name,valid_from,valid_to,successor\n";
        let err = |body: &str| format!("{:#}", Directory::parse(&format!("{head}{body}")).unwrap_err());
        assert!(err("X01,ministry,A,,,\n").contains("line 2: code \"X01\""));
        assert!(err("G01,province,A,,,\n").contains("line 2: kind \"province\": code G01 is a ministry"));
        assert!(err("G01,ministry,A,,2025-02-30,\n").contains("valid_to"));
        assert!(err("G01,ministry,A,,2025-02-28,\n").contains("G01: ends 2025-02-28 without a successor"));
        assert!(
            err("G01,ministry,A,,2025-02-28,G02\nG02,ministry,B,2025-03-02,,\n")
                .contains("G01: successor G02 is not in being on 2025-03-01")
        );
        assert!(
            err("G01,ministry,A,,2025-02-28,\nG01,ministry,B,2025-03-02,,\n")
                .contains("G01: the row from 2025-03-02 does not start the day after")
        );
        assert!(err("G01,ministry,A,,,G02\nG02,ministry,B,,,\n").contains("G01: a successor but no valid_to"));
        assert!(err("G01,ministry,,,,\n").contains("name"));
        assert!(err("").contains("no units"));
    }
}
