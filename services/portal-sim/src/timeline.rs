//! The calibrated model in time: new dossiers arrive on a diurnal curve (a
//! non-homogeneous Poisson process), and each of their events is sent when it
//! happens, so a dossier submitted now is resolved days later. Faults are
//! injected per event: re-sent duplicates, neighbours swapped (out of order),
//! events held back for hours or days, and mangled copies (malformed; the
//! event itself is still sent, as the portal's retry would). Before any of
//! it, the procedure catalogue of every authority, once, as of the start.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use dvc_events::Stream;
use rand::prelude::*;
use rand::rngs::StdRng;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::lifecycle::{DossierSeed, Portal, Traffic, mix};
use crate::synthetic::{Message, json};

/// Relative load by hour of the day in Vietnam (UTC+7): office hours with a
/// lunch dip, evening online filing, quiet nights.
const DIURNAL: [f64; 24] = [
    0.10, 0.06, 0.05, 0.05, 0.06, 0.12, 0.35, 0.90, 2.10, 2.40, 2.30, 1.80, 0.80, 1.20, 2.10, 2.20, 2.00, 1.30, 0.80,
    0.70, 0.70, 0.55, 0.35, 0.20,
];

/// The load factor at `t` (1 on average over a day).
pub fn diurnal(t: OffsetDateTime) -> f64 {
    let mean = DIURNAL.iter().sum::<f64>() / 24.0;
    let hour = (usize::from(t.to_offset(time::UtcOffset::UTC).hour()) + 7) % 24;
    DIURNAL[hour] / mean
}

/// Rates of injected faults, each a share of events.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultRates {
    pub duplicate: f64,
    pub out_of_order: f64,
    pub late: f64,
    /// Late events are held back between one hour and this long.
    pub late_max: Duration,
    pub malformed: f64,
}

/// What a sent message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    Event,
    Duplicate,
    Malformed,
}

/// A message due to be sent at `at`.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub at: OffsetDateTime,
    pub kind: Sending,
    pub message: Message,
}

/// An open dossier: its seed, and the next of its messages to send.
struct Open {
    at: OffsetDateTime,
    dossier: DossierSeed,
    next: usize,
}

impl PartialEq for Open {
    fn eq(&self, other: &Open) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Open {}
impl PartialOrd for Open {
    fn partial_cmp(&self, other: &Open) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Open {
    fn cmp(&self, other: &Open) -> Ordering {
        (self.at, self.dossier.n).cmp(&(other.at, other.dossier.n))
    }
}

/// What the timeline has generated so far.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stats {
    pub dossiers: u64,
    pub dossier_events: u64,
    pub payment_events: u64,
    pub feedback_events: u64,
    pub petition_events: u64,
    pub catalog_entries: u64,
    pub duplicates: u64,
    pub malformed: u64,
}

/// Mean contract events per dossier of the model (measured on a sample).
pub fn events_per_dossier(seed: u64, authorities: usize) -> f64 {
    const SAMPLE: u32 = 5_000;
    let mut portal = Portal::new(seed, authorities);
    let mut traffic = Traffic::default();
    let t = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    for _ in 0..SAMPLE {
        portal.dossier(t, &mut traffic);
    }
    (traffic.dossiers.len() + traffic.payments.len() + traffic.ratings.len() + traffic.petitions.len()) as f64
        / f64::from(SAMPLE)
}

/// The portal's traffic in time. Only the seeds of open dossiers are kept;
/// their messages are generated again when the next one is due, so memory
/// grows with the open dossiers, not with their events.
pub struct Timeline {
    portal: Portal,
    seed: u64,
    rng: StdRng,
    /// New dossiers per second at a load factor of 1.
    arrivals: f64,
    diurnal: bool,
    faults: FaultRates,
    next_arrival: OffsetDateTime,
    open: BinaryHeap<Reverse<Open>>,
    /// The procedure catalogue, sent once, first (as of the start).
    catalogue: Vec<Outgoing>,
    stats: Stats,
}

impl Timeline {
    /// Dossiers arrive from `start` on, `events_per_second` contract events
    /// on average over a day (flat if `diurnal` is false).
    pub fn new(
        seed: u64,
        authorities: usize,
        events_per_second: f64,
        diurnal: bool,
        faults: FaultRates,
        start: OffsetDateTime,
    ) -> Timeline {
        let arrivals = events_per_second / events_per_dossier(seed, authorities);
        let portal = Portal::new(seed, authorities);
        let catalogue = portal
            .catalogue(start)
            .iter()
            .map(|e| Outgoing {
                at: start,
                kind: Sending::Event,
                message: Message { stream: Stream::Catalog, key: e.key(), value: json(e) },
            })
            .collect();
        let mut timeline = Timeline {
            portal,
            seed,
            rng: StdRng::seed_from_u64(seed ^ 0x71e1),
            arrivals,
            diurnal,
            faults,
            next_arrival: start,
            open: BinaryHeap::new(),
            catalogue,
            stats: Stats::default(),
        };
        timeline.next_arrival = timeline.arrival_after(start);
        timeline
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Dossiers with messages still to send.
    pub fn open_dossiers(&self) -> usize {
        self.open.len()
    }

    /// When the next message is due.
    pub fn next_due(&self) -> OffsetDateTime {
        self.open.peek().map_or(self.next_arrival, |Reverse(o)| o.at.min(self.next_arrival))
    }

    /// Appends to `out` every message due at or before `now`, in send order.
    pub fn advance(&mut self, now: OffsetDateTime, out: &mut Vec<Outgoing>) {
        if !self.catalogue.is_empty() {
            let catalogue = std::mem::take(&mut self.catalogue);
            self.count(&catalogue);
            out.extend(catalogue);
        }
        let first = out.len();
        while self.next_arrival <= now {
            let at = self.next_arrival;
            let dossier = self.portal.next_dossier(at);
            let messages = self.messages(&dossier);
            self.stats.dossiers += 1;
            self.count(&messages);
            self.open.push(Reverse(Open { at: messages[0].at, dossier, next: 0 }));
            self.next_arrival = self.arrival_after(at);
        }
        while self.open.peek().is_some_and(|Reverse(o)| o.at <= now) {
            let Reverse(mut open) = self.open.pop().expect("peeked");
            let messages = self.messages(&open.dossier);
            let due = messages[open.next..].iter().take_while(|m| m.at <= now).count();
            out.extend(messages[open.next..open.next + due].iter().cloned());
            open.next += due;
            if let Some(next) = messages.get(open.next) {
                open.at = next.at;
                self.open.push(Reverse(open));
            }
        }
        out[first..].sort_by_key(|o| o.at);
    }

    fn count(&mut self, messages: &[Outgoing]) {
        for m in messages {
            match m.kind {
                Sending::Duplicate => self.stats.duplicates += 1,
                Sending::Malformed => self.stats.malformed += 1,
                Sending::Event => match m.message.stream {
                    Stream::Dossier => self.stats.dossier_events += 1,
                    Stream::Payment => self.stats.payment_events += 1,
                    Stream::Feedback => self.stats.feedback_events += 1,
                    Stream::Petition => self.stats.petition_events += 1,
                    Stream::Catalog => self.stats.catalog_entries += 1,
                },
            }
        }
    }

    /// The next arrival after `t`, by thinning: candidates at the peak rate,
    /// each kept with the probability of the load factor at its time.
    fn arrival_after(&mut self, mut t: OffsetDateTime) -> OffsetDateTime {
        let peak = if self.diurnal { DIURNAL.iter().fold(0.0, |m: f64, w| m.max(*w)) } else { 1.0 };
        let mean = DIURNAL.iter().sum::<f64>() / 24.0;
        let top = self.arrivals * if self.diurnal { peak / mean } else { 1.0 };
        loop {
            let u: f64 = self.rng.random();
            t += Duration::seconds_f64(-(1.0 - u).ln() / top);
            if !self.diurnal || self.rng.random_bool((diurnal(t) * mean / peak).min(1.0)) {
                return t;
            }
        }
    }

    /// Every message of a dossier with its faults, in send order: the same
    /// each time for one dossier.
    fn messages(&self, dossier: &DossierSeed) -> Vec<Outgoing> {
        let mut traffic = Traffic::default();
        self.portal.life(dossier, &mut traffic);
        let mut events: Vec<(OffsetDateTime, Message)> = Vec::new();
        let message = |stream, key: &str, value| Message { stream, key: key.to_owned(), value };
        for e in &traffic.dossiers {
            events.push((e.occurred_at, message(Stream::Dossier, &e.dossier_id, json(e))));
        }
        for e in &traffic.payments {
            events.push((e.occurred_at, message(Stream::Payment, &e.dossier_id, json(e))));
        }
        for e in &traffic.ratings {
            events.push((e.occurred_at, message(Stream::Feedback, &e.dossier_id, json(e))));
        }
        for e in &traffic.petitions {
            events.push((e.occurred_at, message(Stream::Petition, &e.petition_id, json(e))));
        }
        events.sort_by_key(|(at, _)| *at);
        let mut rng = StdRng::seed_from_u64(mix(self.seed ^ 0xfa17, dossier.n));
        let f = self.faults;
        let mut send_at: Vec<OffsetDateTime> = events.iter().map(|(at, _)| *at).collect();
        for i in 0..send_at.len().saturating_sub(1) {
            if rng.random_bool(f.out_of_order) {
                send_at[i] = send_at[i + 1] + Duration::seconds(1);
            }
        }
        let mut out = Vec::with_capacity(events.len() + 2);
        for ((_, message), mut at) in events.into_iter().zip(send_at) {
            if rng.random_bool(f.late) {
                at += Duration::seconds_f64(rng.random_range(3600.0..f.late_max.as_seconds_f64().max(3601.0)));
            }
            if rng.random_bool(f.duplicate) {
                let again = at + Duration::seconds(rng.random_range(1..600));
                out.push(Outgoing { at: again, kind: Sending::Duplicate, message: message.clone() });
            }
            if rng.random_bool(f.malformed) {
                let value = mangle(&mut rng, &message.value);
                out.push(Outgoing { at, kind: Sending::Malformed, message: Message { value, ..message.clone() } });
            }
            out.push(Outgoing { at, kind: Sending::Event, message });
        }
        out.sort_by_key(|o| o.at);
        out
    }
}

/// A broken copy of a valid event, as faulty portals send them.
fn mangle(rng: &mut StdRng, value: &[u8]) -> Vec<u8> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(value).expect("generated events are JSON objects");
    match rng.random_range(0..5) {
        0 => return value[..value.len() / 2].to_vec(), // cut off in transit
        1 => return b"<html><body>502 Bad Gateway</body></html>".to_vec(),
        2 => {
            object.remove("occurred_at");
        }
        3 => {
            object.insert("occurred_at".into(), "2024-07-01 08:00:00".into()); // no offset
        }
        _ => {
            object.insert("schema_version".into(), 2.into());
        }
    }
    serde_json::to_vec(&object).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use dvc_events::Event;
    use time::macros::datetime;

    use super::*;

    const START: OffsetDateTime = datetime!(2024-07-01 00:00 UTC);

    fn faults() -> FaultRates {
        FaultRates { duplicate: 0.05, out_of_order: 0.05, late: 0.02, late_max: Duration::hours(48), malformed: 0.01 }
    }

    /// Everything due until `end`, advancing a minute at a time.
    fn run(timeline: &mut Timeline, end: OffsetDateTime) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut t = START;
        while t < end {
            t += Duration::minutes(1);
            let before = out.len();
            timeline.advance(t, &mut out);
            assert!(out[before..].iter().all(|o| o.at <= t), "nothing is sent before it is due");
        }
        out
    }

    #[test]
    fn the_load_curve_averages_one_and_peaks_in_office_hours() {
        let day: Vec<f64> = (0..24).map(|h| diurnal(START + Duration::hours(h))).collect();
        assert!((day.iter().sum::<f64>() / 24.0 - 1.0).abs() < 1e-9);
        // 09:00 in Vietnam is 02:00 UTC; 03:00 in Vietnam is 20:00 UTC.
        assert!(day[2] > 2.0 && day[20] < 0.1, "{day:?}");
    }

    #[test]
    fn arrivals_follow_the_rate_with_and_without_the_curve() {
        for diurnal in [true, false] {
            let rate = 3.0;
            let mut timeline = Timeline::new(1, 85, rate, diurnal, FaultRates::default(), START);
            // Two days, then everything of those dossiers.
            run(&mut timeline, START + Duration::days(2));
            let stats = timeline.stats();
            let per_dossier = events_per_dossier(1, 85);
            let expected = rate * 2.0 * 86_400.0 / per_dossier;
            let ratio = stats.dossiers as f64 / expected;
            assert!((ratio - 1.0).abs() < 0.03, "diurnal {diurnal}: {} dossiers, expected {expected}", stats.dossiers);
        }
    }

    #[test]
    fn every_generated_message_is_sent_once_in_order_and_faults_are_what_they_say() {
        let mut timeline = Timeline::new(7, 20, 3.0, true, faults(), START);
        let mut out = run(&mut timeline, START + Duration::days(1));
        // Stop arrivals: only the open dossiers' messages remain.
        let arrivals_end = START + Duration::days(1);
        let stats = timeline.stats();
        let mut rest = Vec::new();
        let mut t = arrivals_end;
        while timeline.open_dossiers() > 0 {
            t = timeline.open.peek().map(|Reverse(o)| o.at).expect("open");
            let arrivals = timeline.next_arrival;
            timeline.next_arrival = OffsetDateTime::UNIX_EPOCH + Duration::days(40_000);
            timeline.advance(t, &mut rest);
            timeline.next_arrival = arrivals;
        }
        assert!(t > arrivals_end + Duration::days(5), "lives last days");
        out.extend(rest);
        let events = stats.dossier_events
            + stats.payment_events
            + stats.feedback_events
            + stats.petition_events
            + stats.catalog_entries;
        assert_eq!(out.len() as u64, events + stats.duplicates + stats.malformed);
        assert!(out.windows(2).all(|w| w[0].at <= w[1].at), "sent in time order");

        let mut ids = std::collections::HashSet::new();
        let mut bodies = std::collections::HashSet::new();
        for o in &out {
            let decoded = Event::decode(o.message.stream, &o.message.value);
            match o.kind {
                Sending::Malformed => assert!(decoded.is_err(), "{}", String::from_utf8_lossy(&o.message.value)),
                Sending::Event => {
                    let id = decoded.expect("events are valid").identity();
                    assert!(ids.insert(id), "each event once");
                    bodies.insert(o.message.value.clone());
                }
                Sending::Duplicate => assert!(decoded.is_ok()),
            }
        }
        assert_eq!(ids.len() as u64, events);
        assert!(out.iter().filter(|o| o.kind == Sending::Duplicate).all(|o| bodies.contains(&o.message.value)));
        let share = |n: u64| n as f64 / events as f64;
        assert!((share(stats.duplicates) - 0.05).abs() < 0.01 && (share(stats.malformed) - 0.01).abs() < 0.005);
    }

    #[test]
    fn the_same_seed_sends_the_same_bytes() {
        let end = START + Duration::hours(30);
        let a = run(&mut Timeline::new(3, 85, 1.0, true, faults(), START), end);
        let b = run(&mut Timeline::new(3, 85, 1.0, true, faults(), START), end);
        assert!(!a.is_empty() && a.len() == b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.at == y.at && x.message.value == y.message.value));
        let c = run(&mut Timeline::new(4, 85, 1.0, true, faults(), START), end);
        // The catalogue comes first, the same whatever the seed; the traffic differs.
        let first_event = |out: &[Outgoing]| {
            out.iter().find(|o| o.message.stream != Stream::Catalog).map(|o| o.message.value.clone())
        };
        assert_eq!(a[0].message.value, c[0].message.value);
        assert_ne!(first_event(&a), first_event(&c));
    }
}
