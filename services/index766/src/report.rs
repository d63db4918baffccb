//! The answers of `/v1/index766` and `/v1/index766/procedures`
//! (CONTRACT.md §8) from one period's data: every unit scored, ranked
//! within its level (ministries and provinces apart), and for each
//! indicator what it loses and how many dossiers (procedures, petitions)
//! would win the rest back.

use std::collections::{BTreeMap, BTreeSet};

use dvc_events::AuthorityKind;
use dvc_warehouse::{Calendar, Directory};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::indicators::{DossierCounts, PeriodData, UnitRef, projected};
use crate::period::{Period, VIETNAM};
use crate::rules::RuleSet;
use crate::score::{Count, Scorecard, Scored, as_points, points, ranks, scorecard};

/// Which units a ranking lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level<'a> {
    /// Every ministry and province.
    Authority,
    /// The agencies of one authority.
    Agency(&'a str),
}

/// What the answers are made with besides the period's data.
pub struct Context<'a> {
    pub period: Period,
    pub now: OffsetDateTime,
    pub rules: &'a RuleSet,
    pub calendar: &'a Calendar,
    pub directory: Option<&'a Directory>,
}

impl Context<'_> {
    fn now(&self) -> i64 {
        self.now.unix_timestamp()
    }

    fn frame(&self) -> serde_json::Map<String, Value> {
        let mut frame = serde_json::Map::new();
        frame.insert("period".into(), json!(self.period.to_string()));
        frame.insert("from".into(), json!(self.period.start.to_string()));
        frame.insert("to".into(), json!(self.period.last_day().to_string()));
        frame.insert("provisional".into(), json!(self.period.provisional(self.now)));
        frame.insert("rules".into(), json!(self.rules.version.to_string()));
        frame
    }

    /// A row's fields besides its scores: `fields`, the dossiers still open
    /// at the period's end, and for a provisional period the projection.
    fn extra(&self, data: &PeriodData, unit: UnitRef<'_>, card: &Scorecard, mut fields: Value) -> Value {
        let sums = DossierCounts::sum(data.dossier_rows(unit));
        fields["open_dossiers"] = json!(sums.open);
        if self.period.provisional(self.now) {
            fields["projection"] = projection(&sums, card, self.rules);
        }
        fields
    }

    /// The authorities to rank: those in being on some day of the period
    /// (up to today), by the directory, and any other the data names.
    fn authorities(&self, data: &PeriodData) -> BTreeSet<String> {
        let mut codes = data.authorities();
        if let Some(directory) = self.directory {
            let first = self.period.start;
            let last = self.period.last_day().min(self.now.to_offset(VIETNAM).date());
            codes.extend(
                directory
                    .units()
                    .iter()
                    .filter(|u| u.valid_from.is_none_or(|f| f <= last) && u.valid_to.is_none_or(|t| t >= first))
                    .map(|u| u.code.clone()),
            );
        }
        codes.retain(|c| AuthorityKind::of(c).is_some());
        codes
    }
}

/// The dossiers (procedures, petitions) that would have to move into the
/// numerator for the indicator to earn its maximum; 0 when it does.
pub fn to_full(rule_threshold: Option<f64>, count: &Count, lost_centi: u32) -> u64 {
    if lost_centi == 0 || count.denominator == 0 || count.factor <= 0.0 {
        return 0;
    }
    let target = rule_threshold.unwrap_or(1.0) * count.denominator as f64 / count.factor;
    let needed = (target - 1e-9).ceil().min(count.denominator as f64) as u64;
    needed.saturating_sub(count.numerator)
}

fn indicator(rules: &RuleSet, scored: &Scored) -> Value {
    let count = &scored.count;
    let lost = scored.max_centi - scored.points_centi;
    let rule = rules.rule(&scored.code);
    let threshold = rule.and_then(|r| r.threshold);
    let mut out = json!({
        "code": scored.code,
        "name": rule.map(|r| r.name.as_str()),
        "name_en": rule.map(|r| r.name_en.as_str()),
        "group": scored.group.code(),
        "numerator": count.numerator,
        "denominator": count.denominator,
        "ratio": count.ratio(),
        "score": as_points(scored.points_centi),
        "max": as_points(scored.max_centi),
        "losing": as_points(lost),
        "to_full": to_full(threshold, count, lost),
    });
    if scored.code == "2.2" {
        // Shown, no points: the mean processing time of the dossiers that
        // ended in the period, in days (numerator: seconds in all).
        out["ratio"] = Value::Null;
        out["average_days"] = json!(
            (count.denominator > 0)
                .then(|| (count.numerator as f64 / count.denominator as f64 / 864.0).round() / 100.0)
        );
    }
    out
}

fn groups(card: &Scorecard, rules: &RuleSet) -> Vec<Value> {
    card.groups
        .iter()
        .map(|(group, centi)| {
            let (name, name_en) = group.names();
            let max: u32 = rules.rules.iter().filter(|r| r.group == *group).map(|r| r.max_centi).sum();
            json!({ "group": group.code(), "name": name, "name_en": name_en, "score": as_points(*centi), "max": as_points(max) })
        })
        .collect()
}

fn card_json(card: &Scorecard, rules: &RuleSet) -> (Vec<Value>, Vec<Value>) {
    (groups(card, rules), card.indicators.iter().map(|s| indicator(rules, s)).collect())
}

/// What a provisional period's unit is projected to score at the period's
/// end ([`projected`]'s method), with the indicators that move.
fn projection(sums: &DossierCounts, card: &Scorecard, rules: &RuleSet) -> Value {
    let mut total = card.total_centi;
    let indicators: Vec<Value> = projected(sums)
        .iter()
        .filter_map(|(code, count)| {
            let rule = rules.rule(code)?;
            let now = card.indicators.iter().find(|i| i.code == *code)?.points_centi;
            let then = points(rule, count);
            total = total - now + then;
            Some(json!({ "code": code, "numerator": count.numerator, "denominator": count.denominator, "score": as_points(then) }))
        })
        .collect();
    json!({
        "total": as_points(total),
        "indicators": indicators,
        "method": "open dossiers close on time (and satisfied) at the rate of the unit's dossiers of the period already closed; every other indicator keeps its value",
    })
}

/// One ranked row.
fn row(unit: &str, extra: Value, card: &Scorecard, rank: u32, rules: &RuleSet) -> Value {
    let band = rules.band(card.total_centi);
    let (groups, indicators) = card_json(card, rules);
    let mut out = json!({
        "unit": unit,
        "total": as_points(card.total_centi),
        "rank": rank,
        "band": band.map(|b| b.name.clone()),
        "band_en": band.map(|b| b.name_en.clone()),
        "groups": groups,
        "indicators": indicators,
    });
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    out
}

/// `/v1/index766`: every unit of `level`, scored and ranked (ministries and
/// provinces apart), ordered by kind then rank then code.
pub fn ranking(data: &PeriodData, level: Level<'_>, context: &Context<'_>) -> Value {
    let last = context.period.last_day();
    let name = |code: &str| context.directory.and_then(|d| d.name(code, last)).map(str::to_owned);
    let mut frame = context.frame();
    frame.insert(
        "level".into(),
        json!(match level {
            Level::Authority => "authority",
            Level::Agency(_) => "agency",
        }),
    );
    let units: Vec<(String, Value, Scorecard)> = match level {
        Level::Authority => context
            .authorities(data)
            .into_iter()
            .map(|code| {
                let kind = AuthorityKind::of(&code).map(AuthorityKind::as_str);
                let unit = UnitRef::Authority(&code);
                let counts = data.counts(unit, &context.period, context.now(), context.calendar);
                let card = scorecard(context.rules, |c| counts.get(c).copied());
                let extra = context.extra(data, unit, &card, json!({ "kind": kind, "name": name(&code) }));
                (code, extra, card)
            })
            .collect(),
        Level::Agency(authority) => {
            frame.insert("authority_code".into(), json!(authority));
            frame.insert("authority_name".into(), json!(name(authority)));
            data.agencies(authority)
                .into_iter()
                .map(|agency| {
                    let unit = UnitRef::Agency { authority, agency: &agency };
                    let counts = data.counts(unit, &context.period, context.now(), context.calendar);
                    let card = scorecard(context.rules, |c| counts.get(c).copied());
                    let extra = context.extra(data, unit, &card, json!({ "authority_code": authority }));
                    (agency.clone(), extra, card)
                })
                .collect()
        }
    };
    // Ranks within each kind (agencies: one kind).
    let mut by_kind: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, extra, _)) in units.iter().enumerate() {
        by_kind.entry(extra["kind"].as_str().unwrap_or("").to_owned()).or_default().push(i);
    }
    let mut ranked: Vec<(String, u32, Value)> = Vec::new();
    for (kind, members) in by_kind {
        let totals: Vec<u32> = members.iter().map(|&i| units[i].2.total_centi).collect();
        for (&i, rank) in members.iter().zip(ranks(&totals)) {
            let (code, extra, card) = &units[i];
            ranked.push((kind.clone(), rank, row(code, extra.clone(), card, rank, context.rules)));
        }
    }
    ranked.sort_by(|a, b| (&a.0, a.1, a.2["unit"].as_str()).cmp(&(&b.0, b.1, b.2["unit"].as_str())));
    frame.insert("rows".into(), Value::Array(ranked.into_iter().map(|(_, _, r)| r).collect()));
    Value::Object(frame)
}

/// The unit a `/v1/index766/procedures` request names: an authority code,
/// or an agency code the period's data or catalogue places under one.
pub fn unit_of<'a>(data: &'a PeriodData, code: &'a str) -> Option<UnitRef<'a>> {
    if AuthorityKind::of(code).is_some() {
        return Some(UnitRef::Authority(code));
    }
    let authority = data
        .counts
        .iter()
        .find(|r| r.agency_code == code)
        .map(|r| r.authority_code.as_str())
        .or_else(|| data.petitions.iter().find(|p| p.agency_code == code).map(|p| p.authority_code.as_str()))
        .or_else(|| {
            data.catalogue
                .iter()
                .find(|e| e.applying_agencies.iter().any(|g| g == code))
                .map(|e| e.authority_code.as_str())
        })?;
    Some(UnitRef::Agency { authority, agency: code })
}

/// `/v1/index766/procedures`: the unit's dossier indicators procedure by
/// procedure (each scored by its rule as if the procedure were the unit),
/// the procedures with the most dossiers not on time first. `None` when
/// nothing places the unit.
pub fn procedures(data: &PeriodData, code: &str, context: &Context<'_>) -> Option<Value> {
    let unit = unit_of(data, code)?;
    let mut by_procedure: BTreeMap<&str, Vec<&DossierCounts>> = BTreeMap::new();
    for r in data.dossier_rows(unit) {
        by_procedure.entry(r.procedure_code.as_str()).or_default().push(r);
    }
    let dossier_rules: Vec<&str> = DossierCounts::default().indicators().into_iter().map(|(c, _)| c).collect();
    let rules = RuleSet {
        rules: context.rules.rules.iter().filter(|r| dossier_rules.contains(&r.code.as_str())).cloned().collect(),
        ..context.rules.clone()
    };
    let mut rows: Vec<(u64, Value)> = by_procedure
        .into_iter()
        .map(|(procedure, rows)| {
            let sums = DossierCounts::sum(rows);
            let counts: BTreeMap<&str, Count> = sums.indicators().into_iter().collect();
            let card = scorecard(&rules, |c| counts.get(c).copied());
            let (_, indicators) = card_json(&card, &rules);
            let late = sums.handled - sums.on_time;
            let name = data
                .catalogue
                .iter()
                .find(|e| e.procedure_code == procedure && e.authority_code == unit.authority())
                .map(|e| e.name.clone());
            let value = json!({
                "procedure_code": procedure,
                "name": name,
                "handled": sums.handled,
                "received": sums.received,
                "not_on_time": late,
                "score": as_points(card.total_centi),
                "max": as_points(rules.rules.iter().map(|r| r.max_centi).sum()),
                "indicators": indicators,
            });
            (late, value)
        })
        .collect();
    rows.sort_by(|a, b| {
        b.0.cmp(&a.0).then_with(|| a.1["procedure_code"].as_str().cmp(&b.1["procedure_code"].as_str()))
    });
    let mut frame = context.frame();
    frame.insert("unit".into(), json!(code));
    if let UnitRef::Agency { authority, .. } = unit {
        frame.insert("authority_code".into(), json!(authority));
    }
    frame.insert("rows".into(), Value::Array(rows.into_iter().map(|(_, v)| v).collect()));
    Some(Value::Object(frame))
}
