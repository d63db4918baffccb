//! Every indicator's counts for one unit and period (docs/INDEX766.md §3,
//! §4), from what ClickHouse holds for the period: the dossier counts of
//! `index766_counts` (groups 2-5, by agency and procedure), the online
//! payments of `index766_payments`, the current catalogue and the petitions
//! received in the period. The sets of procedures (3.2, 3.4, 3.5, 4.5a) are
//! taken over the unit's pooled rows, so a procedure that two agencies of a
//! province offer counts once for the province.

use std::collections::{BTreeMap, BTreeSet};

use clickhouse::Row;
use dvc_events::AuthorityKind;
use dvc_warehouse::Calendar;
use dvc_warehouse::reference::from_day_number;
use serde::Deserialize;
use time::{Date, OffsetDateTime};

use crate::period::{Period, VIETNAM};
use crate::score::Count;

/// The dossier counts of one (authority, agency, procedure) in a period:
/// a row of `index766_counts`.
#[derive(Debug, Clone, Default, PartialEq, Row, Deserialize)]
pub struct DossierCounts {
    pub authority_code: String,
    pub agency_code: String,
    pub procedure_code: String,
    pub handled: u64,
    pub received: u64,
    pub received_online: u64,
    pub received_with_fee: u64,
    pub received_paid_online: u64,
    pub on_time: u64,
    pub ended: u64,
    pub processing_seconds: u64,
    pub result_digitized: u64,
    pub digitized_complete: u64,
    pub reused_digitized_data: u64,
    pub from_personal_store: u64,
    pub population_data: u64,
    pub satisfied: u64,
    /// Not ended by the period's end (now, for the current period).
    pub open: u64,
    pub open_on_time: u64,
    pub open_satisfied: u64,
}

impl DossierCounts {
    fn add(&mut self, o: &DossierCounts) {
        self.handled += o.handled;
        self.received += o.received;
        self.received_online += o.received_online;
        self.received_with_fee += o.received_with_fee;
        self.received_paid_online += o.received_paid_online;
        self.on_time += o.on_time;
        self.ended += o.ended;
        self.processing_seconds += o.processing_seconds;
        self.result_digitized += o.result_digitized;
        self.digitized_complete += o.digitized_complete;
        self.reused_digitized_data += o.reused_digitized_data;
        self.from_personal_store += o.from_personal_store;
        self.population_data += o.population_data;
        self.satisfied += o.satisfied;
        self.open += o.open;
        self.open_on_time += o.open_on_time;
        self.open_satisfied += o.open_satisfied;
    }

    /// The summed counts of `rows`.
    pub fn sum<'a>(rows: impl IntoIterator<Item = &'a DossierCounts>) -> DossierCounts {
        let mut total = DossierCounts::default();
        for row in rows {
            total.add(row);
        }
        total
    }

    /// The indicators whose population is dossiers, in their codes.
    pub fn indicators(&self) -> Vec<(&'static str, Count)> {
        let h = self.handled;
        // 1.4: received ÷ max(received, the count the unit reported); no unit
        // reports its counts to DVC Pulse, so the ratio is 1 with dossiers.
        let synced = Count::new(self.received, self.received);
        let online = Count { factor: synced.ratio().unwrap_or(0.0), ..Count::new(self.received_online, self.received) };
        vec![
            ("1.4", synced),
            ("2.1", Count::new(self.on_time, h)),
            ("2.2", Count::new(self.processing_seconds, self.ended)),
            ("3.3", online),
            ("3.6", Count::new(self.received_paid_online, self.received_with_fee)),
            ("4.1", Count::new(self.result_digitized, h)),
            ("4.2", Count::new(self.digitized_complete, h)),
            ("4.3", Count::new(self.reused_digitized_data, h)),
            ("4.4", Count::new(self.from_personal_store, h)),
            ("4.5b", Count::new(self.population_data, h)),
            ("5.4", Count::new(self.satisfied, h)),
        ]
    }
}

/// The projection of a provisional period (its method in
/// schemas/clickhouse/README.md): the dossiers still open are closed at the
/// rate the unit's closed dossiers of the period were on time (and, for 5.4,
/// satisfied); the indicators they move, with their projected counts.
pub fn projected(counts: &DossierCounts) -> Vec<(&'static str, Count)> {
    let closed = counts.handled - counts.open;
    let at_closed_rate = |all: u64, open_part: u64| {
        let closed_part = all - open_part;
        if closed == 0 {
            return all;
        }
        closed_part + (counts.open as f64 * closed_part as f64 / closed as f64).round() as u64
    };
    vec![
        ("2.1", Count::new(at_closed_rate(counts.on_time, counts.open_on_time), counts.handled)),
        ("5.4", Count::new(at_closed_rate(counts.satisfied, counts.open_satisfied), counts.handled)),
    ]
}

/// Succeeded online payments of one (authority, agency, procedure) in a
/// period: a row of `index766_payments`.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct PaymentCount {
    pub authority_code: String,
    pub agency_code: String,
    pub procedure_code: String,
    pub paid_online: u64,
}

/// A current catalogue entry, dates as ClickHouse day numbers (0: unknown).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct CatalogRow {
    pub authority_code: String,
    pub procedure_code: String,
    pub name: String,
    /// 1 full_online, 2 partial_online, 3 offline, 0 unknown.
    pub online_level: u8,
    pub has_fee: u8,
    pub citizen_applicants: u8,
    pub applying_agencies: Vec<String>,
    pub announced_on: u16,
    pub legal_basis_effective_on: u16,
    pub published_on: u16,
    pub components_complete: u8,
    pub withdrawn: u8,
}

impl CatalogRow {
    fn online(&self) -> bool {
        matches!(self.online_level, 1 | 2)
    }

    fn day(n: u16) -> Option<Date> {
        (n > 0).then(|| from_day_number(n))
    }
}

/// A petition received in the period, times as Unix seconds (0: never).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct PetitionRow {
    pub petition_id: String,
    pub authority_code: String,
    pub agency_code: String,
    pub classified: u8,
    pub likes: u64,
    pub dislikes: u64,
    /// It repeats an earlier petition.
    pub is_repeat: u8,
    /// A later petition repeats it.
    pub repeated: u8,
    pub submitted_at: u32,
    pub forwarded_at: u32,
    pub supplement_requested_at: u32,
    pub rejected_at: u32,
    pub answered_at: u32,
    pub published_at: u32,
}

/// The petition limits of §4, in working days.
pub const REJECT_WITHIN: i64 = 2;
pub const FIRST_SUPPLEMENT_WITHIN: i64 = 5;
pub const ANSWER_WITHIN: i64 = 15;
pub const PUBLISH_WITHIN: i64 = 2;

impl PetitionRow {
    /// Handled, or still in process, within every limit, judged at the Unix
    /// time `judged` (steps after it are not yet known). A date outside the
    /// calendar misses its limit.
    pub fn on_time(&self, judged: i64, calendar: &Calendar) -> bool {
        let day = |t: u32| OffsetDateTime::from_unix_timestamp(i64::from(t)).ok().map(|t| t.to_offset(VIETNAM).date());
        let seen = |t: u32| t > 0 && i64::from(t) < judged;
        let judged_day = OffsetDateTime::from_unix_timestamp(judged - 1).ok().map(|t| t.to_offset(VIETNAM).date());
        let within = |from: Option<Date>, to: Option<Date>, limit: i64| match (from, to) {
            (Some(from), Some(to)) => calendar.working_days_between(from, to).is_some_and(|n| n <= limit),
            _ => false,
        };
        let start = day(if seen(self.forwarded_at) { self.forwarded_at } else { self.submitted_at });
        if seen(self.rejected_at) {
            return within(start, day(self.rejected_at), REJECT_WITHIN);
        }
        if seen(self.supplement_requested_at)
            && !within(start, day(self.supplement_requested_at), FIRST_SUPPLEMENT_WITHIN)
        {
            return false;
        }
        if !seen(self.answered_at) {
            return within(start, judged_day, ANSWER_WITHIN);
        }
        let published = if seen(self.published_at) { day(self.published_at) } else { judged_day };
        within(start, day(self.answered_at), ANSWER_WITHIN) && within(day(self.answered_at), published, PUBLISH_WITHIN)
    }
}

/// What ClickHouse holds for one period, as the index reads it.
#[derive(Debug, Clone, Default)]
pub struct PeriodData {
    pub counts: Vec<DossierCounts>,
    pub payments: Vec<PaymentCount>,
    pub catalogue: Vec<CatalogRow>,
    pub petitions: Vec<PetitionRow>,
}

/// A unit the index scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnitRef<'a> {
    /// A ministry or province: its agencies' counts pooled.
    Authority(&'a str),
    /// An agency of an authority.
    Agency { authority: &'a str, agency: &'a str },
}

impl UnitRef<'_> {
    pub fn authority(&self) -> &str {
        match self {
            UnitRef::Authority(a) | UnitRef::Agency { authority: a, .. } => a,
        }
    }

    fn holds(&self, authority: &str, agency: &str) -> bool {
        match self {
            UnitRef::Authority(a) => *a == authority,
            UnitRef::Agency { authority: a, agency: g } => *a == authority && *g == agency,
        }
    }

    fn offers(&self, entry: &CatalogRow) -> bool {
        entry.withdrawn == 0
            && match self {
                UnitRef::Authority(a) => *a == entry.authority_code,
                UnitRef::Agency { authority, agency } => {
                    *authority == entry.authority_code && entry.applying_agencies.iter().any(|g| g == agency)
                }
            }
    }
}

/// Working days a ministry's and a province's catalogue work may take:
/// (announce before the legal basis takes effect, publish after the decision).
fn catalogue_limits(authority: &str) -> (i64, i64) {
    match AuthorityKind::of(authority) {
        Some(AuthorityKind::Ministry) => (20, 10),
        _ => (5, 5),
    }
}

impl PeriodData {
    /// The agencies of `authority` that the period's data or the catalogue
    /// name.
    pub fn agencies(&self, authority: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        out.extend(self.counts.iter().filter(|r| r.authority_code == authority).map(|r| r.agency_code.clone()));
        out.extend(self.payments.iter().filter(|r| r.authority_code == authority).map(|r| r.agency_code.clone()));
        out.extend(self.petitions.iter().filter(|r| r.authority_code == authority).map(|r| r.agency_code.clone()));
        for entry in self.catalogue.iter().filter(|e| e.authority_code == authority && e.withdrawn == 0) {
            out.extend(entry.applying_agencies.iter().cloned());
        }
        out.retain(|a| !a.is_empty());
        out
    }

    /// The authorities the period's data or the catalogue name.
    pub fn authorities(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        out.extend(self.counts.iter().map(|r| r.authority_code.clone()));
        out.extend(self.payments.iter().map(|r| r.authority_code.clone()));
        out.extend(self.petitions.iter().map(|r| r.authority_code.clone()));
        out.extend(self.catalogue.iter().map(|r| r.authority_code.clone()));
        out
    }

    /// Every indicator's counts of `unit` in `period`, judged at the Unix
    /// time `now` for a period not over yet.
    pub fn counts(
        &self,
        unit: UnitRef<'_>,
        period: &Period,
        now: i64,
        calendar: &Calendar,
    ) -> BTreeMap<&'static str, Count> {
        let rows = self.dossier_rows(unit);
        let mut out: BTreeMap<&'static str, Count> =
            DossierCounts::sum(rows.iter().copied()).indicators().into_iter().collect();
        out.extend(self.catalogue_counts(unit.authority(), period, calendar));

        let offered: Vec<&CatalogRow> = self.catalogue.iter().filter(|e| unit.offers(e)).collect();
        let procedures_with = |has: fn(&DossierCounts) -> bool| -> BTreeSet<&str> {
            rows.iter().filter(|r| has(r)).map(|r| r.procedure_code.as_str()).collect()
        };
        let ratio = |entries: Vec<&&CatalogRow>, done: &BTreeSet<&str>| {
            let n = entries.iter().filter(|e| done.contains(e.procedure_code.as_str())).count();
            Count::new(n as u64, entries.len() as u64)
        };
        let online = offered.iter().filter(|e| e.online()).count();
        out.insert("3.1", Count::new(online as u64, offered.len() as u64));

        let used: BTreeSet<(&str, &str)> = rows
            .iter()
            .filter(|r| r.received_online > 0)
            .map(|r| (r.agency_code.as_str(), r.procedure_code.as_str()))
            .collect();
        let services: Vec<(&str, &str)> = offered
            .iter()
            .filter(|e| e.online())
            .flat_map(|e| {
                e.applying_agencies
                    .iter()
                    .filter(|g| unit.holds(&e.authority_code, g))
                    .map(|g| (g.as_str(), e.procedure_code.as_str()))
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let with_dossiers = services.iter().filter(|s| used.contains(s)).count();
        out.insert("3.2", Count::new(with_dossiers as u64, services.len() as u64));

        let fee: Vec<&&CatalogRow> = offered.iter().filter(|e| e.has_fee == 1).collect();
        let paid: BTreeSet<&str> = self
            .payments
            .iter()
            .filter(|p| p.paid_online > 0 && unit.holds(&p.authority_code, &p.agency_code))
            .map(|p| p.procedure_code.as_str())
            .collect();
        out.insert("3.4", ratio(fee.clone(), &paid));
        out.insert("3.5", ratio(fee, &procedures_with(|r| r.received_with_fee > 0)));
        let citizen: Vec<&&CatalogRow> = offered.iter().filter(|e| e.citizen_applicants == 1).collect();
        out.insert("4.5a", ratio(citizen, &procedures_with(|r| r.population_data > 0)));
        // 4.6: no reference data on communes; the portal counts 100% (§4).
        out.insert("4.6", Count::new(0, 0));

        let judged = now.min(period.end_instant());
        let petitions: Vec<&PetitionRow> =
            self.petitions.iter().filter(|p| unit.holds(&p.authority_code, &p.agency_code)).collect();
        let received = petitions.len() as u64;
        let on_time: Vec<bool> = petitions.iter().map(|p| p.on_time(judged, calendar)).collect();
        let classified = petitions.iter().filter(|p| p.classified == 1).count();
        let first: Vec<(&&PetitionRow, bool)> =
            petitions.iter().zip(on_time.iter().copied()).filter(|(p, _)| p.is_repeat == 0).collect();
        let satisfied = first.iter().filter(|(p, ok)| *ok && p.dislikes <= p.likes && p.repeated == 0).count();
        out.insert("5.1", Count::new(classified as u64, received));
        out.insert("5.2", Count::new(on_time.iter().filter(|ok| **ok).count() as u64, received));
        out.insert("5.3", Count::new(satisfied as u64, first.len() as u64));
        out
    }

    /// The unit's rows of dossier counts.
    pub fn dossier_rows(&self, unit: UnitRef<'_>) -> Vec<&DossierCounts> {
        self.counts.iter().filter(|r| unit.holds(&r.authority_code, &r.agency_code)).collect()
    }

    /// 1.1-1.3, an authority's (its agencies take its values).
    fn catalogue_counts(&self, authority: &str, period: &Period, calendar: &Calendar) -> [(&'static str, Count); 3] {
        let (announce_ahead, publish_within) = catalogue_limits(authority);
        let entries: Vec<&CatalogRow> =
            self.catalogue.iter().filter(|e| e.authority_code == authority && e.withdrawn == 0).collect();
        let decided: Vec<&&CatalogRow> = entries
            .iter()
            .filter(|e| CatalogRow::day(e.announced_on).is_some_and(|d| period.start <= d && d <= period.last_day()))
            .collect();
        let gap = |from: u16, to: u16| match (CatalogRow::day(from), CatalogRow::day(to)) {
            (Some(from), Some(to)) => calendar.working_days_between(from, to),
            _ => None,
        };
        let announced = decided
            .iter()
            .filter(|e| gap(e.announced_on, e.legal_basis_effective_on).is_some_and(|n| n >= announce_ahead));
        let published =
            decided.iter().filter(|e| gap(e.announced_on, e.published_on).is_some_and(|n| n <= publish_within));
        let listed: Vec<&&CatalogRow> = entries.iter().filter(|e| e.published_on > 0).collect();
        let complete = listed.iter().filter(|e| e.components_complete == 1).count();
        [
            ("1.1", Count::new(announced.count() as u64, decided.len() as u64)),
            ("1.2", Count::new(published.count() as u64, decided.len() as u64)),
            ("1.3", Count::new(complete as u64, listed.len() as u64)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_dossiers_are_projected_at_the_closed_ones_rates() {
        let counts = DossierCounts {
            handled: 10,
            open: 4,
            on_time: 7,
            open_on_time: 3,
            satisfied: 5,
            open_satisfied: 3,
            ..Default::default()
        };
        // Closed: 6, of them 4 on time and 2 satisfied; the 4 open follow:
        // 4 x 4/6 = 2.67 -> 3 on time, 4 x 2/6 = 1.33 -> 1 satisfied.
        assert_eq!(projected(&counts), vec![("2.1", Count::new(7, 10)), ("5.4", Count::new(3, 10))]);
        let all_open = DossierCounts { handled: 3, open: 3, on_time: 2, open_on_time: 2, ..Default::default() };
        assert_eq!(projected(&all_open)[0].1, Count::new(2, 3), "nothing closed yet: as they stand");
    }
}
