//! The Decision 766 index end to end (docs/INDEX766.md): generated portal
//! traffic of July-September 2026 (several seeds), with the cases the
//! generator never makes added by hand (two supplement requests, one never
//! answered, a dossier without a due time, carry-over from June, catalogue
//! decisions dated in the periods, a withdrawn procedure), delivered
//! shuffled and duplicated through Kafka and ingest. Every indicator's
//! counts and score, every group, total, rank and band of `/v1/index766`
//! equal a recount written here from the index's words, for two months, a
//! quarter and the year, for the authorities and for each one's agencies;
//! the procedure drill-down too. Then late events change a closed month and
//! the answers follow.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use common::recount::{latest, payments};
use common::{TestEnv, keyed, producer, publish, start_api};
use dvc_events::{
    AuthorityKind, CatalogEntry, Channel, DossierEvent, PetitionEvent, PetitionStatus, Rating, ServiceLevel, Status,
    Stream,
};
use dvc_index766::Rules;
use dvc_index766::rules::NoData;
use dvc_portal_sim::lifecycle::{self, Faults, Portal, Traffic};
use dvc_portal_sim::petition::{self, About};
use dvc_warehouse::{Calendar, Directory};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use time::macros::{date, datetime, offset};
use time::{Date, Duration as Span, OffsetDateTime};
use tokio_util::sync::CancellationToken;

const START: OffsetDateTime = datetime!(2026-07-20 00:00 UTC);

fn vn_day(t: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(t).unwrap().to_offset(offset!(+7)).date()
}

/// A period: its name, first and last day, and its instants [s, e).
#[derive(Clone, Copy)]
struct Period {
    name: &'static str,
    first: Date,
    last: Date,
}

impl Period {
    fn s(&self) -> i64 {
        self.first.midnight().assume_offset(offset!(+7)).unix_timestamp()
    }

    fn e(&self) -> i64 {
        self.last.next_day().unwrap().midnight().assume_offset(offset!(+7)).unix_timestamp()
    }

    fn holds(&self, t: i64) -> bool {
        self.s() <= t && t < self.e()
    }
}

const PERIODS: [Period; 4] = [
    Period { name: "2026-07", first: date!(2026 - 07 - 01), last: date!(2026 - 07 - 31) },
    Period { name: "2026-08", first: date!(2026 - 08 - 01), last: date!(2026 - 08 - 31) },
    Period { name: "2026-Q3", first: date!(2026 - 07 - 01), last: date!(2026 - 09 - 30) },
    Period { name: "2026", first: date!(2026 - 01 - 01), last: date!(2026 - 12 - 31) },
];

/// A dossier as §3 reads it (accepted ones only), times as Unix seconds.
struct Dossier {
    id: String,
    authority: String,
    agency: String,
    procedure: String,
    online: bool,
    received: i64,
    due: Option<i64>,
    end: Option<i64>,
    supplements: usize,
    supplement_at: i64,
    resumed: Option<i64>,
    result_digitized: bool,
    digitized: bool,
    reused: bool,
    personal_store: bool,
    population: bool,
    fee: u64,
    paid_online: bool,
    unsatisfied: bool,
    petitioned: bool,
}

impl Dossier {
    fn handled_in(&self, p: &Period) -> bool {
        self.received < p.e() && self.end.is_none_or(|t| t >= p.s())
    }

    /// On time in `p` (judged at its end within it, else at the period's
    /// end or now, whichever is first).
    fn on_time(&self, p: &Period, now: i64) -> bool {
        let judged = match self.end {
            Some(t) if t < p.e() => t,
            _ => p.e().min(now),
        };
        let waited = if self.supplements == 1 && self.supplement_at < judged {
            self.resumed.unwrap_or(judged).min(judged) - self.supplement_at
        } else {
            0
        };
        self.supplements <= 1 && self.due.is_none_or(|due| judged <= due + waited)
    }
}

/// The current catalogue entry of each (authority, procedure): the newest.
fn catalogue(entries: &[CatalogEntry]) -> BTreeMap<(String, String), CatalogEntry> {
    let mut out: BTreeMap<(String, String), CatalogEntry> = BTreeMap::new();
    for e in entries {
        let key = (e.authority_code.clone(), e.procedure_code.clone());
        if out.get(&key).is_none_or(|old| old.updated_at <= e.updated_at) {
            out.insert(key, e.clone());
        }
    }
    out
}

fn dossiers(
    traffic: &Traffic,
    catalogue: &BTreeMap<(String, String), CatalogEntry>,
    calendar: &Calendar,
) -> Vec<Dossier> {
    let paid: HashSet<String> = payments(traffic).into_iter().filter(|p| p.counts()).map(|p| p.dossier_id).collect();
    let unsatisfied: HashSet<&str> =
        traffic.ratings.iter().filter(|r| r.rating == Rating::Unsatisfied).map(|r| r.dossier_id.as_str()).collect();
    let petitioned: HashSet<String> = petitions(traffic).into_iter().filter_map(|p| p.dossier_id).collect();
    let mut seen = HashSet::new();
    let mut by_id: BTreeMap<&str, Vec<&DossierEvent>> = BTreeMap::new();
    for e in &traffic.dossiers {
        if seen.insert(&e.event_id) {
            by_id.entry(&e.dossier_id).or_default().push(e);
        }
    }
    let mut out = Vec::new();
    for (id, events) in by_id {
        let Some(received) = latest(&events, |e| e.received_at) else { continue };
        let place = latest(&events, |e| Some(e.place.clone())).unwrap();
        let first = events.iter().min_by_key(|e| e.occurred_at).unwrap();
        let steps: BTreeSet<(i64, Status)> =
            events.iter().map(|e| (e.occurred_at.unix_timestamp(), e.status)).collect();
        let first_of = |statuses: &[Status]| steps.iter().filter(|(_, s)| statuses.contains(s)).map(|(t, _)| *t).min();
        let supplement_times: BTreeSet<i64> =
            steps.iter().filter(|(_, s)| *s == Status::SupplementRequested).map(|(t, _)| *t).collect();
        let supplement_at = supplement_times.first().copied().unwrap_or(0);
        let resumed = (!supplement_times.is_empty())
            .then(|| {
                steps
                    .iter()
                    .filter(|(t, s)| *s != Status::SupplementRequested && *t > supplement_at)
                    .map(|(t, _)| *t)
                    .min()
            })
            .flatten();
        let end = first_of(&[Status::Resolved])
            .or(first_of(&[Status::ResultReturned]))
            .or(first_of(&[Status::Stopped, Status::NotAccepted, Status::Withdrawn]))
            .or((supplement_times.len() == 1 && resumed.is_none()).then_some(supplement_at));
        let entry = catalogue.get(&(place.authority_code.clone(), place.procedure_code.clone()));
        let due = latest(&events, |e| e.due_at).map(|t| t.unix_timestamp()).or_else(|| {
            let days = entry?.max_processing_days.filter(|d| *d > 0.0)?.ceil() as u32;
            let day = calendar.add_working_days(vn_day(received.unix_timestamp()), days)?;
            Some(day.next_day()?.midnight().assume_offset(offset!(+7)).unix_timestamp())
        });
        let flag = |get: fn(&DossierEvent) -> Option<bool>| latest(&events, get) == Some(true);
        let (vneid, population_db, personal_store) =
            (flag(|e| e.vneid_verified), flag(|e| e.population_db_used), flag(|e| e.from_personal_store));
        out.push(Dossier {
            id: id.to_owned(),
            authority: place.authority_code,
            agency: place.agency_code,
            procedure: place.procedure_code,
            online: first.channel == Channel::Online,
            received: received.unix_timestamp(),
            due,
            end,
            supplements: supplement_times.len(),
            supplement_at,
            resumed,
            result_digitized: flag(|e| e.result_digitized),
            digitized: flag(|e| e.digitized),
            reused: flag(|e| e.reused_digitized_data),
            personal_store,
            population: vneid || population_db || personal_store,
            fee: latest(&events, |e| e.fee_vnd).unwrap_or(0),
            paid_online: paid.contains(id),
            unsatisfied: unsatisfied.contains(id),
            petitioned: petitioned.contains(id),
        });
    }
    out
}

/// A petition folded from its steps.
struct Petition {
    id: String,
    authority: String,
    agency: String,
    dossier_id: Option<String>,
    classified: bool,
    likes: u64,
    dislikes: u64,
    repeat_of: Option<String>,
    sent: i64,
    first: HashMap<PetitionStatus, i64>,
}

fn petitions(traffic: &Traffic) -> Vec<Petition> {
    let mut seen = HashSet::new();
    let mut by_id: BTreeMap<&str, Vec<&PetitionEvent>> = BTreeMap::new();
    for e in &traffic.petitions {
        if seen.insert(&e.event_id) {
            by_id.entry(&e.petition_id).or_default().push(e);
        }
    }
    by_id
        .into_iter()
        .map(|(id, mut events)| {
            events.sort_by_key(|e| (e.occurred_at, e.status as u8));
            let last_known = |get: fn(&PetitionEvent) -> Option<String>| events.iter().rev().find_map(|e| get(e));
            let mut first = HashMap::new();
            for e in &events {
                first.entry(e.status).or_insert(e.occurred_at.unix_timestamp());
            }
            let last = events.last().unwrap();
            Petition {
                id: id.to_owned(),
                authority: last.authority_code.clone(),
                agency: last.agency_code.clone(),
                dossier_id: last_known(|e| e.dossier_id.clone()),
                classified: events.iter().any(|e| e.classification.is_some()),
                likes: events.iter().rev().find_map(|e| e.likes).unwrap_or(0),
                dislikes: events.iter().rev().find_map(|e| e.dislikes).unwrap_or(0),
                repeat_of: last_known(|e| e.repeat_of.clone()),
                sent: first.get(&PetitionStatus::Submitted).copied().unwrap_or(events[0].occurred_at.unix_timestamp()),
                first,
            }
        })
        .collect()
}

impl Petition {
    /// Within the limits of §4 (2 working days to reject, 5 to ask for a
    /// supplement, 15 to answer, 2 more to publish), judged at `judged`.
    fn on_time(&self, judged: i64, calendar: &Calendar) -> bool {
        let at = |s: PetitionStatus| self.first.get(&s).copied().filter(|t| *t < judged);
        let gap = |from: i64, to: i64| calendar.working_days_between(vn_day(from), vn_day(to));
        let ok = |from: i64, to: i64, limit: i64| gap(from, to).is_some_and(|n| n <= limit);
        let start = at(PetitionStatus::Forwarded).unwrap_or(self.sent);
        let until = judged - 1;
        if let Some(rejected) = at(PetitionStatus::Rejected) {
            return ok(start, rejected, 2);
        }
        if at(PetitionStatus::SupplementRequested).is_some_and(|t| !ok(start, t, 5)) {
            return false;
        }
        match at(PetitionStatus::Answered) {
            None => ok(start, until, 15),
            Some(answered) => {
                ok(start, answered, 15) && ok(answered, at(PetitionStatus::Published).unwrap_or(until), 2)
            }
        }
    }
}

/// (numerator, denominator, factor) of each indicator.
type Counts = BTreeMap<&'static str, (u64, u64, f64)>;

struct World {
    dossiers: Vec<Dossier>,
    petitions: Vec<Petition>,
    catalogue: BTreeMap<(String, String), CatalogEntry>,
    /// (authority, agency, procedure, succeeded at) of counted online payments.
    paid: Vec<(String, String, String, i64)>,
    calendar: &'static Calendar,
    now: i64,
}

impl World {
    fn new(traffic: &Traffic, entries: &[CatalogEntry]) -> World {
        let calendar = Calendar::official().unwrap();
        let catalogue = catalogue(entries);
        World {
            dossiers: dossiers(traffic, &catalogue, calendar),
            petitions: petitions(traffic),
            paid: payments(traffic)
                .into_iter()
                .filter(|p| p.counts())
                .map(|p| {
                    let t = p.succeeded.unwrap().unix_timestamp();
                    (p.place.authority_code, p.place.agency_code, p.place.procedure_code, t)
                })
                .collect(),
            catalogue,
            calendar,
            now: OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    /// The authorities a period's ranking lists: those in being in it (up
    /// to today) and any its data names.
    fn authorities(&self, p: &Period) -> BTreeSet<String> {
        let last = p.last.min(vn_day(self.now));
        let mut out: BTreeSet<String> = Directory::official()
            .unwrap()
            .units()
            .iter()
            .filter(|u| u.valid_from.is_none_or(|f| f <= last) && u.valid_to.is_none_or(|t| t >= p.first))
            .map(|u| u.code.clone())
            .collect();
        out.extend(self.dossiers.iter().filter(|d| d.handled_in(p)).map(|d| d.authority.clone()));
        out.extend(self.paid.iter().filter(|x| p.holds(x.3)).map(|x| x.0.clone()));
        out.extend(self.petitions.iter().filter(|x| p.holds(x.sent)).map(|x| x.authority.clone()));
        out.extend(self.catalogue.keys().map(|(a, _)| a.clone()));
        out
    }

    fn agencies(&self, p: &Period, authority: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        out.extend(
            self.dossiers.iter().filter(|d| d.authority == authority && d.handled_in(p)).map(|d| d.agency.clone()),
        );
        out.extend(self.paid.iter().filter(|x| x.0 == authority && p.holds(x.3)).map(|x| x.1.clone()));
        out.extend(
            self.petitions.iter().filter(|x| x.authority == authority && p.holds(x.sent)).map(|x| x.agency.clone()),
        );
        for ((a, _), e) in &self.catalogue {
            if a == authority && e.withdrawn != Some(true) {
                out.extend(e.applying_agencies.iter().flatten().cloned());
            }
        }
        out
    }

    /// Every indicator of the unit (`agency` None: the whole authority).
    fn counts(&self, p: &Period, authority: &str, agency: Option<&str>) -> Counts {
        let mine = |a: &str, g: &str| a == authority && agency.is_none_or(|x| x == g);
        let ours: Vec<&Dossier> = self.dossiers.iter().filter(|d| mine(&d.authority, &d.agency)).collect();
        let h: Vec<&&Dossier> = ours.iter().filter(|d| d.handled_in(p)).collect();
        let r: Vec<&&Dossier> = ours.iter().filter(|d| p.holds(d.received)).collect();
        let count_h = |f: &dyn Fn(&Dossier) -> bool| h.iter().filter(|d| f(d)).count() as u64;
        let count_r = |f: &dyn Fn(&Dossier) -> bool| r.iter().filter(|d| f(d)).count() as u64;
        let (hn, rn) = (h.len() as u64, r.len() as u64);
        let mut c = Counts::new();
        c.insert("1.4", (rn, rn, 1.0));
        c.insert("2.1", (count_h(&|d| d.on_time(p, self.now)), hn, 1.0));
        let ended: Vec<&&&Dossier> = h.iter().filter(|d| d.end.is_some_and(|t| p.holds(t))).collect();
        let seconds = ended.iter().map(|d| (d.end.unwrap() - d.received).max(0) as u64).sum();
        c.insert("2.2", (seconds, ended.len() as u64, 1.0));
        c.insert("3.3", (count_r(&|d| d.online), rn, if rn > 0 { 1.0 } else { 0.0 }));
        c.insert("3.6", (count_r(&|d| d.fee > 0 && d.paid_online), count_r(&|d| d.fee > 0), 1.0));
        let written = |d: &Dossier| {
            self.catalogue
                .get(&(d.authority.clone(), d.procedure.clone()))
                .is_some_and(|e| e.written_result_required == Some(true))
        };
        c.insert("4.1", (count_h(&|d| d.result_digitized), hn, 1.0));
        c.insert("4.2", (count_h(&|d| d.digitized && (d.result_digitized || !written(d))), hn, 1.0));
        c.insert("4.3", (count_h(&|d| d.reused), hn, 1.0));
        c.insert("4.4", (count_h(&|d| d.personal_store), hn, 1.0));
        c.insert("4.5b", (count_h(&|d| d.population), hn, 1.0));
        c.insert("4.6", (0, 0, 1.0));
        // Not an indicator: the dossiers still open at the period's end.
        c.insert("open", (h.iter().filter(|d| d.end.is_none_or(|t| t >= p.e())).count() as u64, 0, 1.0));
        c.insert("5.4", (count_h(&|d| d.on_time(p, self.now) && !d.unsatisfied && !d.petitioned), hn, 1.0));

        // The catalogue: the unit's procedures, not withdrawn.
        let offered: Vec<&CatalogEntry> = self
            .catalogue
            .values()
            .filter(|e| e.withdrawn != Some(true) && e.authority_code == authority)
            .filter(|e| agency.is_none_or(|g| e.applying_agencies.iter().flatten().any(|x| x == g)))
            .collect();
        let online =
            |e: &CatalogEntry| matches!(e.online_level, Some(ServiceLevel::FullOnline | ServiceLevel::PartialOnline));
        c.insert("3.1", (offered.iter().filter(|e| online(e)).count() as u64, offered.len() as u64, 1.0));
        let services: BTreeSet<(String, String)> = offered
            .iter()
            .filter(|e| online(e))
            .flat_map(|e| e.applying_agencies.iter().flatten().map(|g| (g.clone(), e.procedure_code.clone())))
            .filter(|(g, _)| agency.is_none_or(|x| x == g))
            .collect();
        let used: BTreeSet<(String, String)> =
            r.iter().filter(|d| d.online).map(|d| (d.agency.clone(), d.procedure.clone())).collect();
        c.insert("3.2", (services.intersection(&used).count() as u64, services.len() as u64, 1.0));
        let share = |entries: Vec<&&CatalogEntry>, done: &BTreeSet<String>| {
            (entries.iter().filter(|e| done.contains(&e.procedure_code)).count() as u64, entries.len() as u64, 1.0)
        };
        let fee: Vec<&&CatalogEntry> = offered.iter().filter(|e| e.has_fee == Some(true)).collect();
        let paid: BTreeSet<String> =
            self.paid.iter().filter(|x| mine(&x.0, &x.1) && p.holds(x.3)).map(|x| x.2.clone()).collect();
        c.insert("3.4", share(fee.clone(), &paid));
        c.insert("3.5", share(fee, &r.iter().filter(|d| d.fee > 0).map(|d| d.procedure.clone()).collect()));
        let citizen: Vec<&&CatalogEntry> = offered.iter().filter(|e| e.citizen_applicants == Some(true)).collect();
        c.insert("4.5a", share(citizen, &h.iter().filter(|d| d.population).map(|d| d.procedure.clone()).collect()));

        // 1.1-1.3: the authority's.
        let (ahead, within) = match AuthorityKind::of(authority) {
            Some(AuthorityKind::Ministry) => (20, 10),
            _ => (5, 5),
        };
        let all: Vec<&CatalogEntry> =
            self.catalogue.values().filter(|e| e.authority_code == authority && e.withdrawn != Some(true)).collect();
        let decided: Vec<&&CatalogEntry> =
            all.iter().filter(|e| e.announced_on.is_some_and(|d| p.first <= d && d <= p.last)).collect();
        let gap = |a: Option<Date>, b: Option<Date>| self.calendar.working_days_between(a?, b?);
        let early =
            decided.iter().filter(|e| gap(e.announced_on, e.legal_basis_effective_on).is_some_and(|n| n >= ahead));
        let prompt = decided.iter().filter(|e| gap(e.announced_on, e.published_on).is_some_and(|n| n <= within));
        c.insert("1.1", (early.count() as u64, decided.len() as u64, 1.0));
        c.insert("1.2", (prompt.count() as u64, decided.len() as u64, 1.0));
        let listed: Vec<&&CatalogEntry> = all.iter().filter(|e| e.published_on.is_some()).collect();
        c.insert(
            "1.3",
            (listed.iter().filter(|e| e.components_complete == Some(true)).count() as u64, listed.len() as u64, 1.0),
        );

        // Petitions received in the period.
        let judged = p.e().min(self.now);
        let repeated: HashSet<&str> = self.petitions.iter().filter_map(|x| x.repeat_of.as_deref()).collect();
        let ps: Vec<&Petition> =
            self.petitions.iter().filter(|x| mine(&x.authority, &x.agency) && p.holds(x.sent)).collect();
        let on_time = |x: &Petition| x.on_time(judged, self.calendar);
        c.insert("5.1", (ps.iter().filter(|x| x.classified).count() as u64, ps.len() as u64, 1.0));
        c.insert("5.2", (ps.iter().filter(|x| on_time(x)).count() as u64, ps.len() as u64, 1.0));
        let firsts: Vec<&&Petition> = ps.iter().filter(|x| x.repeat_of.is_none()).collect();
        let pleased =
            firsts.iter().filter(|x| on_time(x) && x.dislikes <= x.likes && !repeated.contains(x.id.as_str())).count();
        c.insert("5.3", (pleased as u64, firsts.len() as u64, 1.0));
        c
    }
}

/// Points in hundredths for (numerator, denominator, factor), from §2.
fn points(code: &str, (n, d, factor): (u64, u64, f64), period_start: Date) -> u32 {
    let rules = Rules::official().unwrap().in_force(period_start);
    let rule = rules.rule(code).unwrap();
    if d == 0 {
        return if rule.no_data == NoData::Full { rule.max_centi } else { 0 };
    }
    let ratio = (n as f64 / d as f64 * factor).min(1.0);
    let earned = rule.threshold.map_or(ratio, |t| (ratio / t).min(1.0));
    (f64::from(rule.max_centi) * earned + 1e-9).round() as u32
}

fn centi(v: &Value) -> u32 {
    (v.as_f64().unwrap() * 100.0).round() as u32
}

/// Checks one answer's rows against the recount; returns the units seen.
fn check_rows(answer: &Value, p: &Period, expected: &BTreeMap<String, Counts>, label: &str) {
    let rows = answer["rows"].as_array().unwrap();
    let units: BTreeSet<String> = rows.iter().map(|r| r["unit"].as_str().unwrap().to_owned()).collect();
    assert_eq!(units, expected.keys().cloned().collect(), "{label}: the units listed");
    let totals: BTreeMap<&str, u32> = expected
        .iter()
        .map(|(unit, counts)| {
            (
                unit.as_str(),
                counts.iter().filter(|(code, _)| **code != "open").map(|(code, c)| points(code, *c, p.first)).sum(),
            )
        })
        .collect();
    let kind = |u: &str| AuthorityKind::of(u).map(AuthorityKind::as_str);
    for row in rows {
        let unit = row["unit"].as_str().unwrap();
        let counts = &expected[unit];
        let at = format!("{label} {unit}");
        let mut groups: BTreeMap<String, u32> = BTreeMap::new();
        for ind in row["indicators"].as_array().unwrap() {
            let code = ind["code"].as_str().unwrap();
            let want = counts[code];
            assert_eq!(
                (ind["numerator"].as_u64().unwrap(), ind["denominator"].as_u64().unwrap()),
                (want.0, want.1),
                "{at} indicator {code}"
            );
            assert_eq!(centi(&ind["score"]), points(code, want, p.first), "{at} score of {code}");
            *groups.entry(ind["group"].as_str().unwrap().to_owned()).or_default() += centi(&ind["score"]);
        }
        assert_eq!(row["indicators"].as_array().unwrap().len(), counts.len() - 1, "{at}: every indicator");
        for g in row["groups"].as_array().unwrap() {
            assert_eq!(centi(&g["score"]), groups[g["group"].as_str().unwrap()], "{at} group {}", g["group"]);
        }
        assert_eq!(centi(&row["total"]), totals[unit], "{at} total");
        assert_eq!(row["open_dossiers"].as_u64(), Some(counts["open"].0), "{at} dossiers open at the period's end");
        let rank = 1 + totals.iter().filter(|(u, t)| kind(u) == kind(unit) && **t > totals[unit]).count();
        assert_eq!(row["rank"].as_u64().unwrap() as usize, rank, "{at} rank");
        let band = match totals[unit] {
            9_000.. => Some("Xuất sắc"),
            8_000.. => Some("Tốt"),
            _ => None,
        };
        assert_eq!(row["band"].as_str(), band, "{at} band");
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

/// Every period and level of the index against the recount.
async fn check_all(client: &reqwest::Client, base: &str, world: &World, periods: &[Period], label: &str) {
    for p in periods {
        let answer = get(client, &format!("{base}/v1/index766?period={}&level=authority", p.name)).await;
        assert_eq!(answer["provisional"], Value::Bool(p.e() > world.now), "{label} {}", p.name);
        let projected = answer["rows"].as_array().unwrap().iter().all(|r| r["projection"]["total"].is_number());
        assert_eq!(projected, p.e() > world.now, "{label} {}: a projection for a provisional period only", p.name);
        let expected: BTreeMap<String, Counts> =
            world.authorities(p).into_iter().map(|a| (a.clone(), world.counts(p, &a, None))).collect();
        check_rows(&answer, p, &expected, &format!("{label} {} authorities", p.name));
        for authority in expected.keys().filter(|a| world.dossiers.iter().any(|d| &d.authority == *a)) {
            let url = format!("{base}/v1/index766?period={}&level=agency&authority_code={authority}", p.name);
            let answer = get(client, &url).await;
            let expected: BTreeMap<String, Counts> = world
                .agencies(p, authority)
                .into_iter()
                .map(|g| (g.clone(), world.counts(p, authority, Some(&g))))
                .collect();
            check_rows(&answer, p, &expected, &format!("{label} {} agencies of {authority}", p.name));
        }
    }
}

/// The catalogue the simulator publishes, with decisions dated in the
/// periods (on time and late, both limits) and one procedure withdrawn.
fn catalogue_with_decisions(seed: u64) -> Vec<CatalogEntry> {
    let mut entries = Portal::new(seed, 5).catalogue(START);
    let dates = [
        // announced, legal basis effective, published on the national database
        (date!(2026 - 07 - 01), date!(2026 - 08 - 31), date!(2026 - 07 - 03)),
        (date!(2026 - 07 - 15), date!(2026 - 07 - 20), date!(2026 - 07 - 31)),
        (date!(2026 - 08 - 03), date!(2026 - 09 - 01), date!(2026 - 08 - 05)),
        (date!(2026 - 08 - 25), date!(2026 - 08 - 26), date!(2026 - 09 - 30)),
    ];
    for (i, e) in entries.iter_mut().enumerate() {
        if i % 7 < dates.len() {
            let (announced, effective, published) = dates[i % 7];
            e.announced_on = Some(announced);
            e.legal_basis_effective_on = Some(effective);
            e.published_on = Some(published);
        }
        if i % 11 == 5 {
            e.components_complete = Some(false);
        }
    }
    entries[3].withdrawn = Some(true);
    entries
}

/// The cases the generator never makes, at the first authority's first agency.
fn edge_dossiers(traffic: &Traffic, seed: u64) -> Vec<DossierEvent> {
    let model = traffic.dossiers.iter().find(|e| e.status == Status::Accepted).unwrap().clone();
    let step = |id: &str,
                n: u32,
                status: Status,
                at: OffsetDateTime,
                received: Option<OffsetDateTime>,
                due: Option<OffsetDateTime>| {
        DossierEvent {
            event_id: format!("{id}#{n}"),
            dossier_id: id.to_owned(),
            status,
            occurred_at: at,
            received_at: received,
            due_at: due,
            ..model.clone()
        }
    };
    let id = |name: &str| format!("edge-{seed}-{name}");
    let (r, due) = (datetime!(2026-08-03 03:00 UTC), Some(datetime!(2026-08-20 03:00 UTC)));
    let mut out = Vec::new();
    // Two supplement requests: late, whatever its dates.
    let two = id("two-supplements");
    out.push(step(&two, 1, Status::Accepted, r, Some(r), due));
    out.push(step(&two, 2, Status::SupplementRequested, r + Span::days(1), None, None));
    out.push(step(&two, 3, Status::Processing, r + Span::days(2), None, None));
    out.push(step(&two, 4, Status::SupplementRequested, r + Span::days(3), None, None));
    out.push(step(&two, 5, Status::Resolved, r + Span::days(4), None, None));
    // One request never answered: processing ends with it.
    let unanswered = id("unanswered");
    out.push(step(&unanswered, 1, Status::Accepted, r, Some(r), due));
    out.push(step(&unanswered, 2, Status::SupplementRequested, r + Span::days(2), None, None));
    // No due time: the catalogue's maximum in working days.
    let no_due = id("no-due");
    out.push(step(&no_due, 1, Status::Accepted, r, Some(r), None));
    out.push(step(&no_due, 2, Status::Resolved, r + Span::days(12), None, None));
    // Received in June, still open: carried into every period since.
    let carried = id("carried");
    let june = datetime!(2026-06-25 03:00 UTC);
    out.push(step(&carried, 1, Status::Accepted, june, Some(june), Some(datetime!(2026-07-05 03:00 UTC))));
    // Received and closed in June: in no period asked.
    let june_closed = id("june-closed");
    out.push(step(&june_closed, 1, Status::Accepted, june - Span::days(10), Some(june - Span::days(10)), due));
    out.push(step(&june_closed, 2, Status::Resolved, june - Span::days(2), None, None));
    out
}

/// Petitions about every sixth accepted dossier (the calibrated rate gives
/// almost none in a few hundred dossiers), one in four repeated, some
/// about the agency only.
fn more_petitions(traffic: &Traffic, seed: u64) -> Vec<PetitionEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let calendar = Calendar::official().unwrap();
    let accepted = traffic.dossiers.iter().filter(|e| e.status == Status::Accepted);
    let mut out = Vec::new();
    for (i, e) in accepted.enumerate().filter(|(i, _)| i % 6 == 0) {
        let about = About {
            authority_code: e.place.authority_code.clone(),
            agency_code: e.place.agency_code.clone(),
            dossier_id: (i % 4 != 0).then(|| e.dossier_id.clone()),
            procedure_code: Some(e.place.procedure_code.clone()),
            offset: offset!(+7),
        };
        let id = format!("pakn-{seed}-{i}");
        let sent = e.occurred_at + Span::hours(rng.random_range(1..400));
        let Some(events) = petition::life(&mut rng, calendar, id.clone(), about.clone(), sent, None) else { continue };
        let last = events.last().unwrap().occurred_at;
        out.extend(events);
        if i % 4 == 0 {
            let again = last + Span::hours(rng.random_range(1..200));
            out.extend(
                petition::life(&mut rng, calendar, format!("{id}-2"), about, again, Some(id)).into_iter().flatten(),
            );
        }
    }
    out
}

fn json<T: serde::Serialize>(events: &[T]) -> Vec<common::Keyed> {
    events.iter().map(|e| keyed(serde_json::to_vec(e).unwrap())).collect()
}

async fn send(env: &TestEnv, stream: Stream, table: &str, messages: Vec<common::Keyed>) {
    let before = env.count(&format!("SELECT count() FROM {table}")).await;
    publish(&producer(), env.topic(stream), &messages).await;
    let expected = before + messages.len() as u64;
    env.wait_for_count(&format!("SELECT count() FROM {table}"), expected, Duration::from_secs(90)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_indicator_score_and_rank_equals_an_independent_recount() {
    for seed in [31u64, 32] {
        let env = TestEnv::new(&format!("index766_{seed}")).await;
        let stop = CancellationToken::new();
        let _stop_on_panic = stop.clone().drop_guard();
        let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));

        let mut traffic = lifecycle::generate(seed, 400, START, 45);
        let edges = edge_dossiers(&traffic, seed);
        let petitions = more_petitions(&traffic, seed);
        traffic.dossiers.extend(edges);
        traffic.petitions.extend(petitions);
        let entries = catalogue_with_decisions(seed);
        let sent = traffic.deliver(seed, Faults { duplicate_rate: 0.1, late_rate: 0.05, shuffle: true });
        assert!(!sent.petitions.is_empty() && sent.petitions.iter().any(|p| p.repeat_of.is_some()));
        send(&env, Stream::Catalog, "catalog_entries", json(&entries)).await;
        send(&env, Stream::Dossier, "dossier_events", json(&sent.dossiers)).await;
        send(&env, Stream::Payment, "payment_events", json(&sent.payments)).await;
        send(&env, Stream::Feedback, "feedback_events", json(&sent.ratings)).await;
        send(&env, Stream::Petition, "petition_events", json(&sent.petitions)).await;
        common::roll_up(&env).await;

        let (base, api) = start_api(&env, stop.clone()).await;
        let client = reqwest::Client::new();
        let world = World::new(&sent, &entries);
        // The populations the checks rely on are there.
        let august = &PERIODS[1];
        assert!(world.dossiers.iter().any(|d| d.handled_in(august) && d.received < august.s()), "carry-over");
        assert!(world.dossiers.iter().any(|d| d.supplements == 2));
        let no_due = world.dossiers.iter().find(|d| d.id.ends_with("no-due")).unwrap();
        assert!(no_due.due.is_some(), "the catalogue's maximum gives the dossier without one a due time");
        check_all(&client, &base, &world, &PERIODS, &format!("seed {seed}")).await;

        // The drill-down: each procedure's dossier indicators.
        let authority = &world.dossiers[0].authority;
        let answer = get(&client, &format!("{base}/v1/index766/procedures?period=2026-08&unit={authority}")).await;
        let rows = answer["rows"].as_array().unwrap();
        let procedures: BTreeSet<&str> = world
            .dossiers
            .iter()
            .filter(|d| &d.authority == authority && d.handled_in(august))
            .map(|d| d.procedure.as_str())
            .collect();
        assert_eq!(rows.len(), procedures.len(), "every procedure with dossiers");
        for row in rows {
            let procedure = row["procedure_code"].as_str().unwrap();
            let h: Vec<&Dossier> = world
                .dossiers
                .iter()
                .filter(|d| &d.authority == authority && d.procedure == procedure && d.handled_in(august))
                .collect();
            let on_time = h.iter().filter(|d| d.on_time(august, world.now)).count() as u64;
            let ind = row["indicators"].as_array().unwrap().iter().find(|i| i["code"] == "2.1").unwrap();
            assert_eq!((ind["numerator"].as_u64(), ind["denominator"].as_u64()), (Some(on_time), Some(h.len() as u64)));
            assert_eq!(row["not_on_time"].as_u64(), Some(h.len() as u64 - on_time), "{procedure}");
        }

        // Late events change closed months: the carried dossier ends on
        // 10 July, and a July dossier moves to another agency.
        let carried = format!("edge-{seed}-carried");
        let mut late = sent.dossiers.iter().find(|e| e.dossier_id == carried).unwrap().clone();
        late.event_id = format!("{carried}#late");
        late.status = Status::Resolved;
        late.occurred_at = datetime!(2026-07-10 03:00 UTC);
        late.received_at = None;
        late.due_at = None;
        let mover = world.dossiers.iter().find(|d| PERIODS[0].holds(d.received) && d.end.is_some()).unwrap();
        let mut moved =
            sent.dossiers.iter().filter(|e| e.dossier_id == mover.id).max_by_key(|e| e.occurred_at).unwrap().clone();
        moved.event_id = format!("{}#moved", mover.id);
        moved.occurred_at += Span::seconds(1);
        moved.place.agency_code = format!("{}-moved", moved.place.agency_code);
        // A July dossier counted satisfied is rated `unsatisfied` late.
        let world = World::new(&sent, &entries);
        let pleased = world
            .dossiers
            .iter()
            .find(|d| {
                PERIODS[0].holds(d.received) && d.end.is_some() && !d.unsatisfied && !d.petitioned && d.id != mover.id
            })
            .unwrap();
        let mut rating = sent.ratings[0].clone();
        rating.event_id = format!("{}#unsatisfied", pleased.id);
        rating.dossier_id = pleased.id.clone();
        rating.rating = Rating::Unsatisfied;
        let mut resent = sent.clone();
        resent.dossiers.extend([late.clone(), moved.clone()]);
        resent.ratings.push(rating.clone());
        send(&env, Stream::Dossier, "dossier_events", json(&[late, moved])).await;
        send(&env, Stream::Feedback, "feedback_events", json(&[rating])).await;
        common::roll_up(&env).await;
        let world = World::new(&resent, &entries);
        assert!(world.dossiers.iter().any(|d| d.id == carried && d.end.is_some()));
        assert!(world.dossiers.iter().any(|d| d.id == pleased.id && d.unsatisfied));
        check_all(&client, &base, &world, &PERIODS[..2], &format!("seed {seed}, after the late events")).await;

        // The catalogue changes the maximum days of the procedure of the
        // dossier without a due time: its due time, and so 2.1, move.
        let no_due = world.dossiers.iter().find(|d| d.id.ends_with("no-due")).unwrap();
        let mut entry = entries
            .iter()
            .filter(|e| e.authority_code == no_due.authority && e.procedure_code == no_due.procedure)
            .max_by_key(|e| e.updated_at)
            .unwrap()
            .clone();
        let period = PERIODS[..2].iter().find(|p| no_due.handled_in(p)).unwrap();
        let on_time = no_due.on_time(period, world.now);
        entry.max_processing_days = Some(if on_time { 1.0 } else { 60.0 });
        entry.updated_at += Span::days(1);
        let mut changed = entries.clone();
        changed.push(entry.clone());
        send(&env, Stream::Catalog, "catalog_entries", json(&[entry])).await;
        // The first batch after the change touches the dossiers without a
        // due time; the next ones count them again.
        common::roll_up(&env).await;
        common::roll_up(&env).await;
        let after = World::new(&resent, &changed);
        let moved_due = after.dossiers.iter().find(|d| d.id == no_due.id).unwrap();
        assert_ne!(moved_due.on_time(period, after.now), on_time, "the catalogue moved the due time across the end");
        check_all(&client, &base, &after, &PERIODS[..2], &format!("seed {seed}, after the catalogue change")).await;

        stop.cancel();
        ingest.await.unwrap().expect("ingest stops cleanly");
        api.await.unwrap().expect("API stops cleanly");
    }
}
