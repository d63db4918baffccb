//! The index's points, thresholds and bands, read from
//! `schemas/reference/index766-rules.csv` and `index766-bands.csv`: one rule
//! set per version, the date from which it applies, so a past period is
//! scored by the rules in force on its first day.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Deserialize;
use time::Date;

use dvc_warehouse::reference::parse_date;

static RULES_CSV: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/reference/index766-rules.csv"));
static BANDS_CSV: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/reference/index766-bands.csv"));

static OFFICIAL: LazyLock<Result<Rules, String>> = LazyLock::new(|| {
    Rules::parse(RULES_CSV, BANDS_CSV).map_err(|e| format!("schemas/reference/index766-*.csv: {e:#}"))
});

/// The portal's six groups, in the order the portal shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
pub enum Group {
    /// Công khai, minh bạch: publicity and transparency (18 points).
    #[serde(rename = "CKMB")]
    Ckmb,
    /// Tiến độ giải quyết: processing progress (20).
    #[serde(rename = "TDGQ")]
    Tdgq,
    /// Dịch vụ công trực tuyến: online public services (12).
    #[serde(rename = "CLGQ")]
    Clgq,
    /// Thanh toán trực tuyến: online payment (10).
    #[serde(rename = "TTTT")]
    Tttt,
    /// Số hóa hồ sơ: dossier digitization (22).
    #[serde(rename = "MDSH")]
    Mdsh,
    /// Mức độ hài lòng: satisfaction (18).
    #[serde(rename = "MDHL")]
    Mdhl,
}

impl Group {
    pub const ALL: [Group; 6] = [Group::Ckmb, Group::Tdgq, Group::Clgq, Group::Tttt, Group::Mdsh, Group::Mdhl];

    /// The portal's code.
    pub fn code(self) -> &'static str {
        match self {
            Group::Ckmb => "CKMB",
            Group::Tdgq => "TDGQ",
            Group::Clgq => "CLGQ",
            Group::Tttt => "TTTT",
            Group::Mdsh => "MDSH",
            Group::Mdhl => "MDHL",
        }
    }

    /// The Vietnamese name and its English subtitle.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Group::Ckmb => ("Công khai, minh bạch", "publicity and transparency"),
            Group::Tdgq => ("Tiến độ giải quyết", "processing progress"),
            Group::Clgq => ("Dịch vụ công trực tuyến", "online public services"),
            Group::Tttt => ("Thanh toán trực tuyến", "online payment"),
            Group::Mdsh => ("Số hóa hồ sơ", "dossier digitization"),
            Group::Mdhl => ("Mức độ hài lòng", "satisfaction"),
        }
    }
}

/// What an indicator whose denominator is 0 scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoData {
    /// Nothing (the ratio is shown as null).
    Zero,
    /// Its maximum: no petitions to judge, no reference data.
    Full,
}

/// One indicator's rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub code: String,
    pub group: Group,
    /// The points, in hundredths (6 points = 600).
    pub max_centi: u32,
    /// The ratio that earns full points; `None`: linear.
    pub threshold: Option<f64>,
    pub no_data: NoData,
    pub name: String,
    pub name_en: String,
}

/// A band: totals of at least `min_centi` hundredths.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub min_centi: u32,
    pub name: String,
    pub name_en: String,
}

/// The rules of one version, indicators in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    pub version: Date,
    pub rules: Vec<Rule>,
    /// Highest first.
    pub bands: Vec<Band>,
}

impl RuleSet {
    pub fn rule(&self, code: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.code == code)
    }

    /// The band a total (hundredths) reaches, if any.
    pub fn band(&self, total_centi: u32) -> Option<&Band> {
        self.bands.iter().find(|b| total_centi >= b.min_centi)
    }
}

/// Every version, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    versions: Vec<RuleSet>,
}

#[derive(Deserialize)]
struct RuleLine {
    version: String,
    code: String,
    group: Group,
    max: f64,
    threshold: Option<f64>,
    no_data: NoData,
    name: String,
    name_en: String,
}

#[derive(Deserialize)]
struct BandLine {
    version: String,
    min: f64,
    name: String,
    name_en: String,
}

/// Points as hundredths, refusing what is not a whole number of them.
fn centi(points: f64, what: &str) -> Result<u32> {
    let centi = (points * 100.0).round();
    ensure!(
        points >= 0.0 && (points * 100.0 - centi).abs() < 1e-6 && centi <= f64::from(u32::MAX),
        "{what} {points}: points are ≥ 0 with at most two decimals"
    );
    Ok(centi as u32)
}

fn lines<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<(usize, T)>> {
    let mut reader = csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().context("the header line")?.clone();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record?;
        let line = record.position().map_or(0, csv::Position::line) as usize;
        out.push((line, record.deserialize(Some(&headers)).with_context(|| format!("line {line}"))?));
    }
    Ok(out)
}

impl Rules {
    /// The rules shipped in the repository.
    pub fn official() -> Result<&'static Rules> {
        OFFICIAL.as_ref().map_err(|e| anyhow!("{e}"))
    }

    /// Reads the two files and checks every version: the indicators of the
    /// first version in each, groups of at most their share, 100 points in
    /// all, thresholds in (0, 1], bands of known versions.
    pub fn parse(rules: &str, bands: &str) -> Result<Rules> {
        let mut versions: BTreeMap<Date, RuleSet> = BTreeMap::new();
        for (line, l) in lines::<RuleLine>(rules).context("rules")? {
            let at = || format!("rules line {line}");
            let version = parse_date(&l.version).with_context(at)?;
            if let Some(t) = l.threshold {
                ensure!(t > 0.0 && t <= 1.0, "{}: threshold {t} is not in (0, 1]", at());
            }
            let rule = Rule {
                max_centi: centi(l.max, "max").with_context(at)?,
                code: l.code,
                group: l.group,
                threshold: l.threshold,
                no_data: l.no_data,
                name: l.name,
                name_en: l.name_en,
            };
            let set =
                versions.entry(version).or_insert_with(|| RuleSet { version, rules: Vec::new(), bands: Vec::new() });
            ensure!(set.rule(&rule.code).is_none(), "{}: {} twice in version {version}", at(), rule.code);
            set.rules.push(rule);
        }
        ensure!(!versions.is_empty(), "no rules");
        for (line, b) in lines::<BandLine>(bands).context("bands")? {
            let version = parse_date(&b.version).with_context(|| format!("bands line {line}"))?;
            let Some(set) = versions.get_mut(&version) else {
                bail!("bands line {line}: version {version} has no rules");
            };
            set.bands.push(Band {
                min_centi: centi(b.min, "min").with_context(|| format!("bands line {line}"))?,
                name: b.name,
                name_en: b.name_en,
            });
        }
        let first: Vec<String> =
            versions.values().next().map(|s| s.rules.iter().map(|r| r.code.clone()).collect()).unwrap_or_default();
        for set in versions.values_mut() {
            let codes: Vec<&String> = set.rules.iter().map(|r| &r.code).collect();
            ensure!(
                codes.len() == first.len() && first.iter().all(|c| codes.contains(&c)),
                "version {}: every version lists the same indicators ({})",
                set.version,
                first.join(", ")
            );
            let total: u32 = set.rules.iter().map(|r| r.max_centi).sum();
            ensure!(
                total == 10_000,
                "version {}: the indicators add up to {} points, not 100",
                set.version,
                f64::from(total) / 100.0
            );
            set.bands.sort_by_key(|b| std::cmp::Reverse(b.min_centi));
        }
        Ok(Rules { versions: versions.into_values().collect() })
    }

    /// The rules in force on `day`: the newest version starting on or
    /// before it (the oldest for a day before every version).
    pub fn in_force(&self, day: Date) -> &RuleSet {
        self.versions.iter().rev().find(|s| s.version <= day).unwrap_or(&self.versions[0])
    }

    pub fn versions(&self) -> &[RuleSet] {
        &self.versions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_shipped_rules_give_each_group_its_points() {
        let rules = Rules::official().unwrap();
        let set = rules.in_force(date!(2026 - 08 - 01));
        let points = |g: Group| set.rules.iter().filter(|r| r.group == g).map(|r| r.max_centi).sum::<u32>();
        let expected = [1_800, 2_000, 1_200, 1_000, 2_200, 1_800];
        for (g, want) in Group::ALL.into_iter().zip(expected) {
            assert_eq!(points(g), want, "{}", g.code());
        }
        assert_eq!(set.rules.len(), 23);
        assert_eq!(set.band(9_000).map(|b| b.name.as_str()), Some("Xuất sắc"));
        assert_eq!(set.band(8_999).map(|b| b.name.as_str()), Some("Tốt"));
        assert_eq!(set.band(7_999), None);
    }

    const HEADER: &str = "version,code,group,max,threshold,no_data,name,name_en\n";

    fn version(day: &str, first_max: &str) -> String {
        format!(
            "{day},a,TDGQ,{first_max},,zero,A,a\n{day},b,MDSH,{},0.5,full,B,b\n",
            100 - first_max.parse::<u32>().unwrap()
        )
    }

    #[test]
    fn a_period_is_scored_by_the_version_in_force_on_its_first_day() {
        let text = format!("{HEADER}{}{}", version("2022-08-01", "60"), version("2025-01-01", "40"));
        let rules = Rules::parse(&text, "version,min,name,name_en\n2025-01-01,90,X,x\n").unwrap();
        assert_eq!(rules.in_force(date!(2024 - 12 - 31)).rule("a").unwrap().max_centi, 6_000);
        assert_eq!(rules.in_force(date!(2025 - 01 - 01)).rule("a").unwrap().max_centi, 4_000);
        assert_eq!(rules.in_force(date!(2020 - 01 - 01)).version, date!(2022 - 08 - 01));
        assert!(rules.in_force(date!(2024 - 01 - 01)).bands.is_empty());
        assert_eq!(rules.in_force(date!(2026 - 01 - 01)).bands.len(), 1);
    }

    #[test]
    fn broken_rules_are_refused_with_the_reason() {
        let cases = [
            (format!("{HEADER}2022-08-01,a,TDGQ,60,,zero,A,a\n"), "add up to 60 points"),
            (format!("{HEADER}{}2025-01-01,a,TDGQ,100,,zero,A,a\n", version("2022-08-01", "60")), "same indicators"),
            (format!("{HEADER}2022-08-01,a,TDGQ,60,1.5,zero,A,a\n2022-08-01,b,MDSH,40,,zero,B,b\n"), "not in (0, 1]"),
            (format!("{HEADER}2022-08-01,a,XXXX,60,,zero,A,a\n"), "line 2"),
            (format!("{HEADER}2022-08-01,a,TDGQ,60.001,,zero,A,a\n"), "two decimals"),
            (format!("{HEADER}{}2022-08-01,a,TDGQ,1,,zero,A,a\n", version("2022-08-01", "60")), "a twice"),
        ];
        for (text, reason) in cases {
            let error = format!("{:#}", Rules::parse(&text, "version,min,name,name_en\n").unwrap_err());
            assert!(error.contains(reason), "{error} lacks {reason:?}");
        }
        let error = Rules::parse(
            &format!("{HEADER}{}", version("2022-08-01", "60")),
            "version,min,name,name_en\n2023-01-01,90,X,x\n",
        );
        assert!(format!("{:#}", error.unwrap_err()).contains("version 2023-01-01 has no rules"));
    }
}
