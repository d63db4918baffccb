//! Dossiers that live like real ones, calibrated to the seed figures
//! ([`crate::catalog`]): submitted, accepted with a due date from the
//! procedure's legal time, maybe asked for supplements, asked to pay, then
//! resolved and returned (mostly on time), not accepted, withdrawn or stopped;
//! fees paid through the national platform, a local gateway or at the counter,
//! some attempts failing, some refunded; ratings after the result. Attributes
//! change over a dossier's life (digitized or linked to VNeID at acceptance,
//! the fee known once accepted, the electronic result attached only on
//! return); each authority's system writes its own UTC offset. A small share
//! of dossiers gets a petition (`crate::petition`), some about the dossier,
//! some about its agency only, a few followed by a repeat.
//!
//! Which dossiers are full-online is decided per authority with a
//! low-discrepancy sequence rather than a coin, so every authority, every kind
//! and the country land on their targets even over a few thousand dossiers.
//! Everything else is drawn from a seeded generator: deterministic per seed.
//!
//! `Traffic::deliver` turns generated events into what portals actually send
//! (re-sent duplicates, shuffled order, a late share); `crate::timeline`
//! schedules them in time for the simulator.

use dvc_events::{
    ApplicantType, CatalogEntry, Channel, DossierEvent, FeedbackEvent, PaymentEvent, PaymentMethod, PaymentStatus,
    PetitionEvent, Place, Rating, ServiceLevel, Status,
};
use dvc_warehouse::Calendar;
use rand::distr::weighted::WeightedIndex;
use rand::prelude::*;
use rand::rngs::StdRng;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

use crate::catalog::{self, Authority, PROCEDURES, Procedure, golden};
use crate::petition::{self, About, VIETNAM};

/// Events of generated dossiers, each stream in the order it was generated.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    pub dossiers: Vec<DossierEvent>,
    pub payments: Vec<PaymentEvent>,
    pub ratings: Vec<FeedbackEvent>,
    pub petitions: Vec<PetitionEvent>,
}

/// How portals mistreat the stream (for `Traffic::deliver`).
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Share of events sent twice.
    pub duplicate_rate: f64,
    /// Share of events held back and sent after all others.
    pub late_rate: f64,
    /// Shuffle the order of everything else.
    pub shuffle: bool,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults { duplicate_rate: 0.1, late_rate: 0.05, shuffle: true }
    }
}

/// The simulated country: its authorities and procedures, and the state of
/// the full-online sequence of each authority.
pub struct Portal {
    seed: u64,
    rng: StdRng,
    next: u64,
    authorities: Vec<Authority>,
    /// From each reorganisation on: who files with whom.
    periods: Vec<Picking>,
    pick_fee: WeightedIndex<u32>,
    /// Per authority: dossiers so far, and the sequence's random phase.
    sequence: Vec<(u64, u64)>,
    /// The random phase of the sequence that picks petitioned dossiers.
    petition_phase: u64,
    calendar: &'static Calendar,
}

/// One [`catalog::Period`], ready to draw from.
struct Picking {
    from: Option<Date>,
    pick: WeightedIndex<f64>,
    factors: Vec<f64>,
}

/// The draws that make one dossier: with its portal, enough to generate its
/// whole life again (the simulator keeps these, not the events, for dossiers
/// still open).
#[derive(Debug, Clone, Copy)]
pub struct DossierSeed {
    pub n: u64,
    pub submitted: OffsetDateTime,
    authority: u16,
    full_online: bool,
}

/// Salts the seed of petitions, so they draw apart from their dossiers.
const PETITION_SALT: u64 = 0x9e71_7104;

/// A 64-bit mix of two values (SplitMix64's finaliser).
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Portal {
    /// A country of `authorities` authorities of 2024 (2 to 85) and the
    /// units that took them over later, seeded.
    pub fn new(seed: u64, authorities: usize) -> Portal {
        let mut rng = StdRng::seed_from_u64(seed);
        let (authorities, periods) = catalog::country(authorities);
        let periods = periods
            .into_iter()
            .map(|p| Picking {
                from: p.from,
                pick: WeightedIndex::new(p.weights).expect("every period has authorities in being"),
                factors: p.factors,
            })
            .collect();
        let pick_fee = WeightedIndex::new(catalog::FEES.iter().map(|(_, w)| *w)).expect("positive weights");
        let sequence = authorities.iter().map(|_| (0, rng.random_range(0..1_000_000))).collect();
        let calendar = Calendar::official().expect("the shipped calendar reads (its unit tests check it)");
        let petition_phase = mix(seed, PETITION_SALT) % 1_000_000;
        Portal { seed, rng, next: 0, authorities, periods, pick_fee, sequence, petition_phase, calendar }
    }

    /// Whether dossier `n` gets a petition: [`catalog::PETITIONS_PER_DOSSIER`]
    /// of any run of dossiers, give or take one, repeats included.
    fn petitioned(&self, n: u64) -> bool {
        golden(n + self.petition_phase) < catalog::PETITIONS_PER_DOSSIER / (1.0 + catalog::PETITION_REPEATED)
    }

    /// Dossier `dossier`'s petition, if it gets one, appended to `out`: sent
    /// within 20 days of the dossier, about it or about its agency only; and
    /// maybe a repeat of it, sent days after its last step.
    fn petition(&self, dossier: &DossierSeed, about: About, out: &mut Traffic) {
        if !self.petitioned(dossier.n) {
            return;
        }
        let mut rng = StdRng::seed_from_u64(mix(self.seed ^ PETITION_SALT, dossier.n));
        let about = if rng.random_bool(catalog::PETITION_WITHOUT_DOSSIER) {
            About { dossier_id: None, procedure_code: about.procedure_code.filter(|_| rng.random_bool(0.5)), ..about }
        } else {
            about
        };
        let id = format!("PAKN-{:04x}{:07}", self.seed % 0x1_0000, dossier.n);
        let sent = dossier.submitted + minutes(&mut rng, 60..20 * 1440);
        let Some(events) = petition::life(&mut rng, self.calendar, id.clone(), about.clone(), sent, None) else {
            return;
        };
        let last = events.last().map_or(sent, |e| e.occurred_at);
        out.petitions.extend(events);
        if rng.random_bool(catalog::PETITION_REPEATED) {
            let again = last + minutes(&mut rng, 60..10 * 1440);
            let repeat = petition::life(&mut rng, self.calendar, format!("{id}-2"), about, again, Some(id));
            out.petitions.extend(repeat.into_iter().flatten());
        }
    }

    /// The authorities of this country in being on `day`.
    pub fn authorities_on(&self, day: Date) -> Vec<Authority> {
        self.authorities.iter().filter(|a| a.in_being_on(day)).cloned().collect()
    }

    /// The procedure catalogue of every authority in being on `at`'s date
    /// in Vietnam, updated at `at`: what the simulator publishes first.
    pub fn catalogue(&self, at: OffsetDateTime) -> Vec<CatalogEntry> {
        catalog::catalogue(&self.authorities_on(at.to_offset(VIETNAM).date()), at)
    }

    /// Draws the next dossier, submitted at `submitted`: its authority, and
    /// whether it is filed online for a full-online service.
    pub fn next_dossier(&mut self, submitted: OffsetDateTime) -> DossierSeed {
        let n = self.next;
        self.next += 1;
        let day = submitted.to_offset(VIETNAM).date();
        let period = self.periods.iter().rfind(|p| p.from.is_none_or(|from| from <= day)).expect("the first is open");
        let a = period.pick.sample(&mut self.rng);
        let (count, phase) = &mut self.sequence[a];
        let u = golden(*count + *phase);
        *count += 1;
        let target =
            if self.authorities[a].ministry { catalog::FULL_ONLINE_MINISTRIES } else { catalog::FULL_ONLINE_PROVINCES };
        DossierSeed { n, submitted, authority: a as u16, full_online: u < target * period.factors[a] }
    }

    /// Every event of the dossier's life (some in the future of its
    /// submission), appended to `out`; the same each time for one seed.
    pub fn life(&self, dossier: &DossierSeed, out: &mut Traffic) {
        let mut rng = StdRng::seed_from_u64(mix(self.seed, dossier.n));
        let fee =
            if rng.random_bool(catalog::FEE_BEARING) { catalog::FEES[self.pick_fee.sample(&mut rng)].0 } else { 0 };
        let authority = &self.authorities[usize::from(dossier.authority)];
        let run = (self.seed % 0x1_0000) as u16;
        let life = Life::new(&mut rng, authority, dossier.full_online, run, dossier.n, dossier.submitted, fee);
        let about = life.about();
        life.run(&mut rng, out);
        self.petition(dossier, about, out);
    }

    /// A new dossier submitted at `submitted`, with its whole life.
    pub fn dossier(&mut self, submitted: OffsetDateTime, out: &mut Traffic) {
        let dossier = self.next_dossier(submitted);
        self.life(&dossier, out);
    }
}

/// The fixed facts of one dossier, and a builder for its events.
struct Life {
    place: Place,
    procedure: Procedure,
    channel: Channel,
    dossier_id: String,
    source_system: String,
    offset: UtcOffset,
    submitted: OffsetDateTime,
    fee: u64,
    step: u32,
}

fn counter_channel(rng: &mut StdRng) -> Channel {
    if rng.random_bool(0.85) { Channel::InPerson } else { Channel::Postal }
}

/// Minutes, uniformly in `range`.
fn minutes(rng: &mut StdRng, range: std::ops::Range<i64>) -> Duration {
    Duration::minutes(rng.random_range(range))
}

/// A fake, valid-looking CCCD: province of birth (001-096), century and sex
/// digit, birth year, and six digits.
fn citizen_id(rng: &mut StdRng) -> String {
    format!(
        "{:03}{}{:02}{:06}",
        rng.random_range(1..=96),
        rng.random_range(0..4),
        rng.random_range(0..100),
        rng.random_range(0..1_000_000)
    )
}

impl Life {
    fn new(
        rng: &mut StdRng,
        authority: &Authority,
        full_online: bool,
        run: u16,
        n: u64,
        submitted: OffsetDateTime,
        fee: u64,
    ) -> Life {
        // Not full-online: a full-online service filed at the counter, a
        // partly online service (filed online half the time), or an offline one.
        let (level, channel) = if full_online {
            (ServiceLevel::FullOnline, Channel::Online)
        } else {
            match rng.random_range(0..20) {
                0..=5 => (ServiceLevel::FullOnline, counter_channel(rng)),
                6..=14 => (
                    ServiceLevel::PartialOnline,
                    if rng.random_bool(0.5) { Channel::Online } else { counter_channel(rng) },
                ),
                _ => (ServiceLevel::Offline, counter_channel(rng)),
            }
        };
        let procedure =
            *PROCEDURES.iter().filter(|p| p.level == level).choose(rng).expect("every level has procedures");
        let agency_code = catalog::agency_code(authority, rng.random_range(1..=authority.agencies));
        let offset = UtcOffset::from_hms(authority.offset_hours, 0, 0).unwrap_or(UtcOffset::UTC);
        let day = submitted.to_offset(offset).date();
        let dossier_id = format!(
            "{agency_code}-{:02}{:02}{:02}-{run:04x}{n:07}",
            day.year() % 100,
            u8::from(day.month()),
            day.day()
        );
        let source_system = if channel == Channel::Online && rng.random_bool(0.6) {
            "dvcqg".to_owned()
        } else {
            format!("motcua-{}", authority.code.to_lowercase())
        };
        Life {
            place: Place {
                procedure_code: procedure.code.to_owned(),
                agency_code,
                authority_code: authority.code.clone(),
            },
            procedure,
            channel,
            dossier_id,
            source_system,
            offset,
            submitted,
            fee,
            step: 0,
        }
    }

    /// Who a petition about this dossier is about.
    fn about(&self) -> About {
        About {
            authority_code: self.place.authority_code.clone(),
            agency_code: self.place.agency_code.clone(),
            dossier_id: Some(self.dossier_id.clone()),
            procedure_code: Some(self.place.procedure_code.clone()),
            offset: self.offset,
        }
    }

    fn event(&mut self, status: Status, at: OffsetDateTime) -> DossierEvent {
        self.step += 1;
        DossierEvent {
            schema_version: 1,
            event_id: format!("{}#{}", self.dossier_id, self.step),
            dossier_id: self.dossier_id.clone(),
            status,
            occurred_at: at.to_offset(self.offset),
            place: self.place.clone(),
            service_level: self.procedure.level,
            channel: self.channel,
            received_at: None,
            due_at: None,
            applicant_type: None,
            applicant_id: None,
            vneid_verified: None,
            digitized: None,
            result_digitized: None,
            fee_vnd: None,
            source_system: Some(self.source_system.clone()),
            reused_digitized_data: None,
            from_personal_store: None,
            population_db_used: None,
            extra: serde_json::Map::new(),
        }
    }

    fn run(mut self, rng: &mut StdRng, out: &mut Traffic) {
        // Final values, and whether they are known at submission already.
        let digitized = rng.random_bool(catalog::DIGITIZED);
        let digitized_early = !digitized || rng.random_bool(0.9);
        let vneid = rng.random_bool(catalog::VNEID_LINKED);
        let vneid_early = !vneid || rng.random_bool(0.9);

        let mut t = self.submitted;
        let mut submitted = self.event(Status::Submitted, t);
        let business = rng.random_bool(0.15);
        submitted.applicant_type = Some(if business { ApplicantType::Business } else { ApplicantType::Citizen });
        submitted.applicant_id = Some(if business {
            format!("{:010}", rng.random_range(100_000_000..4_000_000_000u64))
        } else {
            citizen_id(rng)
        });
        submitted.vneid_verified = Some(vneid && vneid_early);
        submitted.digitized = Some(digitized && digitized_early);
        submitted.reused_digitized_data = Some(rng.random_bool(catalog::REUSED_DIGITIZED_DATA));
        submitted.from_personal_store = Some(rng.random_bool(catalog::FROM_PERSONAL_STORE));
        submitted.population_db_used = Some(rng.random_bool(catalog::POPULATION_DB_USED));
        if !rng.random_bool(catalog::ACCEPTED) {
            // Never accepted: the dossier keeps its first event's day.
            submitted.vneid_verified = Some(vneid);
            submitted.digitized = Some(digitized);
            out.dossiers.push(submitted);
            t += minutes(rng, 30..2880);
            let status = if rng.random_bool(0.7) { Status::NotAccepted } else { Status::Withdrawn };
            out.dossiers.push(self.event(status, t));
            return;
        }
        out.dossiers.push(submitted);

        t += minutes(rng, 5..1440);
        let received = t;
        let due = received + Duration::days(i64::from(self.procedure.days));
        let mut accepted = self.event(Status::Accepted, t);
        accepted.received_at = Some(received.to_offset(self.offset));
        accepted.due_at = Some(due.to_offset(self.offset));
        accepted.fee_vnd = Some(self.fee);
        if !digitized_early {
            accepted.digitized = Some(true);
        }
        if !vneid_early {
            accepted.vneid_verified = Some(true);
        }
        out.dossiers.push(accepted);

        if rng.random_bool(0.15) {
            t += minutes(rng, 60..2880);
            out.dossiers.push(self.event(Status::SupplementRequested, t));
        }
        t += minutes(rng, 10..480);
        out.dossiers.push(self.event(Status::Processing, t));

        let mut paid = true;
        if self.fee > 0 {
            t += minutes(rng, 10..240);
            out.dossiers.push(self.event(Status::PaymentRequested, t));
            t += minutes(rng, 5..1440);
            paid = self.payments(rng, t, out);
        }

        // Close: most are resolved, on time as often as the assumption says.
        let on_time = rng.random_bool(catalog::ON_TIME);
        let earliest = t + Duration::minutes(30);
        t = if on_time && earliest < due {
            earliest + Duration::seconds(rng.random_range(0..(due - earliest).whole_seconds().max(1)))
        } else {
            earliest.max(due) + minutes(rng, 60..4320)
        };
        let closing = if !paid {
            Status::Stopped
        } else {
            match rng.random_range(0..100) {
                0..=2 => Status::Stopped,
                3..=5 => Status::Withdrawn,
                _ => Status::Resolved,
            }
        };
        let mut close = self.event(closing, t);
        if closing != Status::Resolved {
            out.dossiers.push(close);
            return;
        }
        let result_digitized = rng.random_bool(catalog::RESULT_DIGITIZED);
        // Most electronic results are attached on resolution, some on return.
        let attached_on_return = result_digitized && rng.random_bool(0.2);
        if !attached_on_return {
            close.result_digitized = Some(result_digitized);
        }
        out.dossiers.push(close);
        t += minutes(rng, 10..1440);
        let mut returned = self.event(Status::ResultReturned, t);
        if attached_on_return {
            returned.result_digitized = Some(true);
        }
        out.dossiers.push(returned);

        if rng.random_bool(catalog::RATED) {
            t += minutes(rng, 5..4320);
            let roll: f64 = rng.random();
            let rating = if roll < catalog::SATISFIED {
                Rating::Satisfied
            } else if roll < catalog::SATISFIED + catalog::NEUTRAL {
                Rating::Neutral
            } else {
                Rating::Unsatisfied
            };
            out.ratings.push(FeedbackEvent {
                schema_version: 1,
                event_id: format!("{}#fb", self.dossier_id),
                dossier_id: self.dossier_id.clone(),
                occurred_at: t.to_offset(self.offset),
                place: self.place.clone(),
                rating,
                extra: serde_json::Map::new(),
            });
        }
    }

    /// The dossier's payment attempts from `t`; whether the fee got paid.
    fn payments(&self, rng: &mut StdRng, mut t: OffsetDateTime, out: &mut Traffic) -> bool {
        let method = if rng.random_bool(catalog::ONLINE_METHOD) {
            if rng.random_bool(0.6) { PaymentMethod::NationalPlatform } else { PaymentMethod::LocalGateway }
        } else {
            PaymentMethod::Offline
        };
        // The national platform stamps UTC; the others, their authority's time.
        let offset = if method == PaymentMethod::NationalPlatform { UtcOffset::UTC } else { self.offset };
        let pay = |attempt: u8, status: PaymentStatus, at: OffsetDateTime, suffix: &str| PaymentEvent {
            schema_version: 1,
            event_id: format!("P-{}-{attempt}#{suffix}", self.dossier_id),
            payment_id: format!("P-{}-{attempt}", self.dossier_id),
            dossier_id: self.dossier_id.clone(),
            status,
            occurred_at: at.to_offset(offset),
            amount_vnd: self.fee,
            method,
            place: self.place.clone(),
            extra: serde_json::Map::new(),
        };
        // A failed attempt first (card declined, timeout), then a new one.
        if method != PaymentMethod::Offline && rng.random_bool(0.12) {
            out.payments.push(pay(0, PaymentStatus::Failed, t, "f"));
            t += minutes(rng, 1..120);
        }
        if !rng.random_bool(catalog::PAID) {
            return false;
        }
        out.payments.push(pay(1, PaymentStatus::Succeeded, t, "s"));
        if rng.random_bool(catalog::REFUNDED) {
            t += minutes(rng, 60..7200);
            out.payments.push(pay(1, PaymentStatus::Refunded, t, "r"));
        }
        true
    }
}

/// `dossiers` dossiers of a five-authority country submitted over `days` days
/// from `start` (UTC midnight); a fifth within 30 minutes of a Vietnam
/// midnight (17:00 UTC), where the UTC and local days differ.
pub fn generate(seed: u64, dossiers: u32, start: OffsetDateTime, days: u32) -> Traffic {
    let mut portal = Portal::new(seed, 5);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xda7e);
    let mut out = Traffic::default();
    let days = i64::from(days.max(1));
    for _ in 0..dossiers {
        let minute = if rng.random_bool(0.2) {
            rng.random_range(0..days) * 1440 + 17 * 60 + rng.random_range(-30..30)
        } else {
            rng.random_range(0..days * 1440)
        };
        portal.dossier(start + Duration::minutes(minute), &mut out);
    }
    out
}

impl Traffic {
    /// The messages portals send for this traffic: each event once, plus
    /// duplicates, in shuffled order, with the late share at the end.
    pub fn deliver(&self, seed: u64, faults: Faults) -> Traffic {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        Traffic {
            dossiers: mistreat(&mut rng, &self.dossiers, faults),
            payments: mistreat(&mut rng, &self.payments, faults),
            ratings: mistreat(&mut rng, &self.ratings, faults),
            petitions: mistreat(&mut rng, &self.petitions, faults),
        }
    }
}

fn mistreat<T: Clone>(rng: &mut StdRng, events: &[T], faults: Faults) -> Vec<T> {
    let mut on_time = Vec::with_capacity(events.len());
    let mut late = Vec::new();
    for e in events {
        let copies = if rng.random_bool(faults.duplicate_rate) { 2 } else { 1 };
        for _ in 0..copies {
            if rng.random_bool(faults.late_rate) { late.push(e.clone()) } else { on_time.push(e.clone()) }
        }
    }
    if faults.shuffle {
        on_time.shuffle(rng);
    }
    on_time.extend(late);
    on_time
}
