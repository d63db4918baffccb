//! An independent recount of CONTRACT.md §5, in memory, from the events as
//! sent: what the rates API must answer. Written from the contract's words,
//! not from the SQL.

use std::collections::{BTreeMap, HashMap, HashSet};

use dvc_events::{Channel, DossierEvent, PaymentMethod, PaymentStatus, Place, Rating, ServiceLevel, Status};
use dvc_portal_sim::lifecycle::Traffic;
use serde_json::Value;
use time::{Date, OffsetDateTime, UtcOffset};

pub const GROUPINGS: [&str; 5] = ["national", "authority_kind", "authority_code", "agency_code", "procedure_code"];

/// (numerator, denominator) per group, for one metric and grouping.
pub type Sums = BTreeMap<String, (u64, u64)>;

/// [`Sums`] by (metric, grouping).
pub type Recount = BTreeMap<(String, String), Sums>;

fn vietnam_day(t: OffsetDateTime) -> Date {
    t.to_offset(UtcOffset::from_hms(7, 0, 0).unwrap()).date()
}

fn group(place: &Place, grouping: &str) -> String {
    match grouping {
        "national" => "national".to_owned(),
        "authority_kind" => if place.authority_code.starts_with('G') { "ministry" } else { "province" }.to_owned(),
        "authority_code" => place.authority_code.clone(),
        "agency_code" => place.agency_code.clone(),
        "procedure_code" => place.procedure_code.clone(),
        other => panic!("unknown grouping {other}"),
    }
}

/// The latest value of an attribute by occurred_at, among events that carry it.
pub fn latest<T: Clone>(events: &[&DossierEvent], get: impl Fn(&DossierEvent) -> Option<T>) -> Option<T> {
    events.iter().filter_map(|e| get(e).map(|v| (e.occurred_at, v))).max_by_key(|(t, _)| *t).map(|(_, v)| v)
}

/// A dossier as the contract defines it.
struct Dossier {
    day: Date,
    place: Place,
    full_online: bool,
    online: bool,
    on_time: Option<bool>,
    digitized: bool,
    vneid: bool,
    resolved: bool,
    result_digitized: bool,
    fee: u64,
}

fn dossiers(traffic: &Traffic) -> HashMap<String, Dossier> {
    let mut seen = HashSet::new();
    let mut by_id: HashMap<&str, Vec<&DossierEvent>> = HashMap::new();
    for e in &traffic.dossiers {
        if seen.insert(&e.event_id) {
            by_id.entry(&e.dossier_id).or_default().push(e);
        }
    }
    by_id
        .into_iter()
        .map(|(id, events)| {
            let first = events.iter().min_by_key(|e| e.occurred_at).unwrap();
            let received = latest(&events, |e| e.received_at);
            let due = latest(&events, |e| e.due_at);
            let closed = events.iter().filter(|e| e.status.is_closing()).map(|e| e.occurred_at).min();
            let dossier = Dossier {
                day: vietnam_day(received.unwrap_or(first.occurred_at)),
                place: latest(&events, |e| Some(e.place.clone())).unwrap(),
                full_online: first.channel == Channel::Online && first.service_level == ServiceLevel::FullOnline,
                online: first.channel == Channel::Online,
                on_time: match (closed, due) {
                    (Some(c), Some(d)) => Some(c <= d),
                    _ => None,
                },
                digitized: latest(&events, |e| e.digitized) == Some(true),
                vneid: latest(&events, |e| e.vneid_verified) == Some(true),
                resolved: events.iter().any(|e| matches!(e.status, Status::Resolved | Status::ResultReturned)),
                result_digitized: latest(&events, |e| e.result_digitized) == Some(true),
                fee: latest(&events, |e| e.fee_vnd).unwrap_or(0),
            };
            (id.to_owned(), dossier)
        })
        .collect()
}

/// A payment as the contract defines it.
pub struct Payment {
    pub dossier_id: String,
    pub place: Place,
    pub succeeded: Option<OffsetDateTime>,
    pub amount: u64,
    pub refunded: bool,
    pub online: bool,
}

impl Payment {
    pub fn counts(&self) -> bool {
        self.succeeded.is_some() && !self.refunded && self.online
    }
}

pub fn payments(traffic: &Traffic) -> Vec<Payment> {
    let mut seen = HashSet::new();
    let mut by_id: BTreeMap<&str, Vec<&dvc_events::PaymentEvent>> = BTreeMap::new();
    for e in &traffic.payments {
        if seen.insert(&e.event_id) {
            by_id.entry(&e.payment_id).or_default().push(e);
        }
    }
    by_id
        .into_values()
        .map(|events| {
            let last = events.iter().max_by_key(|e| e.occurred_at).unwrap();
            let success = events.iter().filter(|e| e.status == PaymentStatus::Succeeded).min_by_key(|e| e.occurred_at);
            Payment {
                dossier_id: last.dossier_id.clone(),
                place: last.place.clone(),
                succeeded: success.map(|e| e.occurred_at),
                amount: success.map_or(0, |e| e.amount_vnd),
                refunded: events.iter().any(|e| e.status == PaymentStatus::Refunded),
                online: matches!(last.method, PaymentMethod::NationalPlatform | PaymentMethod::LocalGateway),
            }
        })
        .collect()
}

/// Every metric × grouping over the days `from..=to`.
pub fn recount(traffic: &Traffic, from: Date, to: Date) -> Recount {
    let dossiers = dossiers(traffic);
    let payments = payments(traffic);
    let paid_online: HashSet<&str> = payments.iter().filter(|p| p.counts()).map(|p| p.dossier_id.as_str()).collect();
    let mut ratings_seen = HashSet::new();
    let ratings: Vec<&dvc_events::FeedbackEvent> =
        traffic.ratings.iter().filter(|r| ratings_seen.insert(&r.event_id)).collect();
    let in_range = |d: Date| from <= d && d <= to;

    let mut out = BTreeMap::new();
    for grouping in GROUPINGS {
        let mut add = |metric: &str, place: &Place, num: u64, den: u64| {
            let sums: &mut Sums = out.entry((metric.to_owned(), grouping.to_owned())).or_default();
            let cell = sums.entry(group(place, grouping)).or_default();
            cell.0 += num;
            cell.1 += den;
        };
        for (id, d) in dossiers.iter().filter(|(_, d)| in_range(d.day)) {
            let p = &d.place;
            add("full_online_share", p, d.full_online.into(), 1);
            add("online_share", p, d.online.into(), 1);
            add("on_time_rate", p, (d.on_time == Some(true)).into(), d.on_time.is_some().into());
            add("digitization_rate", p, d.digitized.into(), 1);
            add("result_digitization_rate", p, (d.resolved && d.result_digitized).into(), d.resolved.into());
            add("vneid_rate", p, d.vneid.into(), 1);
            let with_fee = d.fee > 0;
            add("online_payment_rate", p, (with_fee && paid_online.contains(id.as_str())).into(), with_fee.into());
        }
        for pay in payments.iter().filter(|p| p.succeeded.is_some_and(|t| in_range(vietnam_day(t)))) {
            add("online_payment_value_vnd", &pay.place, if pay.counts() { pay.amount } else { 0 }, 0);
            add("online_payment_count", &pay.place, pay.counts().into(), 0);
        }
        for r in ratings.iter().filter(|r| in_range(vietnam_day(r.occurred_at))) {
            add("satisfaction_rate", &r.place, (r.rating == Rating::Satisfied).into(), 1);
        }
    }
    out
}

/// What the API must answer for one metric and grouping, from the recount.
fn expected_rows(kind: dvc_warehouse::MetricKind, sums: &Sums) -> Vec<Value> {
    sums.iter()
        .map(|(group, &(num, den))| match kind {
            dvc_warehouse::MetricKind::Rate => serde_json::json!({
                "group": group, "numerator": num, "denominator": den,
                "value": (den > 0).then(|| num as f64 / den as f64),
            }),
            dvc_warehouse::MetricKind::Total => {
                serde_json::json!({ "group": group, "numerator": null, "denominator": null, "value": num })
            }
        })
        .collect()
}

/// `url`'s answer, its rows equal to `want` (values within 1e-9).
async fn assert_rows(client: &reqwest::Client, url: &str, want: &[Value], label: &str) {
    let body: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    let got = body["rows"].as_array().unwrap_or_else(|| panic!("{url}: {body}"));
    assert_eq!(got.len(), want.len(), "{label} {url}\n got {got:?}\nwant {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (&g["day"], &g["group"], &g["numerator"], &g["denominator"]),
            (&w["day"], &w["group"], &w["numerator"], &w["denominator"]),
            "{label} {url}"
        );
        match (g["value"].as_f64(), w["value"].as_f64()) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9, "{label} {url}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{label} {url}"),
        }
    }
}

/// Which answer of the rates API a test compares with the recount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/rates`: the recount of the whole range.
    Rates,
    /// `/v1/series`: each day's recount (days and groups counting nothing
    /// left out).
    Series,
}

/// Asserts that the rates API at `base` answers `endpoint`, for every metric
/// and each of `groupings` over `from..=to`, exactly what the recount of
/// `sent` gives.
pub async fn assert_api_matches_recount(
    client: &reqwest::Client,
    base: &str,
    endpoint: Endpoint,
    sent: &Traffic,
    (from, to): (Date, Date),
    groupings: &[&str],
    label: &str,
) {
    let days: Vec<(Option<Date>, Recount)> = match endpoint {
        Endpoint::Rates => vec![(None, recount(sent, from, to))],
        Endpoint::Series => std::iter::successors(Some(from), |d| d.next_day())
            .take_while(|d| *d <= to)
            .map(|d| (Some(d), recount(sent, d, d)))
            .collect(),
    };
    let path = match endpoint {
        Endpoint::Rates => "rates",
        Endpoint::Series => "series",
    };
    for metric in dvc_warehouse::METRICS {
        for grouping in groupings {
            let url = format!("{base}/v1/{path}?metric={}&from={from}&to={to}&group_by={grouping}", metric.name);
            let key = (metric.name.to_owned(), (*grouping).to_owned());
            let mut want = Vec::new();
            for (day, expected) in &days {
                let mut sums = expected.get(&key).cloned().unwrap_or_default();
                // No rows at all: the national rate is still answered, with nothing counted.
                if sums.is_empty() && *grouping == "national" && endpoint == Endpoint::Rates {
                    sums.insert("national".to_owned(), (0, 0));
                }
                want.extend(expected_rows(metric.kind, &sums).into_iter().map(|mut row| {
                    if let Some(day) = day {
                        row["day"] = day.to_string().into();
                    }
                    row
                }));
            }
            assert_rows(client, &url, &want, label).await;
        }
    }
}
