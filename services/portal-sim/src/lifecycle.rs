//! Dossiers that live like real ones: submitted, accepted with a due date,
//! maybe asked for supplements, then resolved and returned (on time or late),
//! rejected, withdrawn or stopped; fees paid online or at the counter, some
//! payments failing or refunded; ratings after the result. Attributes change
//! over a dossier's life (digitized later, VNeID linked later, the fee known
//! only once accepted), timestamps mix UTC and +07:00 and fall near midnight.
//!
//! `Traffic::deliver` then turns the events into what portals actually send:
//! re-sent duplicates, shuffled order, and a share held back to arrive late.
//! Deterministic for a given seed.

use dvc_events::{
    ApplicantType, Channel, DossierEvent, FeedbackEvent, PaymentEvent, PaymentMethod, PaymentStatus, Place, Rating,
    ServiceLevel, Status,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use time::{Duration, OffsetDateTime, UtcOffset};

/// An authority (ministry `G..` or province `H..`) and its agencies.
struct Authority {
    code: &'static str,
    agencies: u8,
}

const AUTHORITIES: &[Authority] = &[
    Authority { code: "G01", agencies: 2 },
    Authority { code: "G12", agencies: 2 },
    Authority { code: "H01", agencies: 3 },
    Authority { code: "H29", agencies: 3 },
    Authority { code: "H40", agencies: 2 },
];

const PROCEDURES: &[(&str, ServiceLevel)] = &[
    ("1.000001", ServiceLevel::FullOnline),
    ("1.001234", ServiceLevel::FullOnline),
    ("1.004444", ServiceLevel::PartialOnline),
    ("2.001234", ServiceLevel::PartialOnline),
    ("3.000100", ServiceLevel::Offline),
];

/// Every event of a generated run, in the order they happened.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    pub dossiers: Vec<DossierEvent>,
    pub payments: Vec<PaymentEvent>,
    pub ratings: Vec<FeedbackEvent>,
}

/// How portals mistreat the stream.
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

fn offset(rng: &mut StdRng) -> UtcOffset {
    if rng.random_bool(0.5) { UtcOffset::UTC } else { UtcOffset::from_hms(7, 0, 0).unwrap_or(UtcOffset::UTC) }
}

/// `dossiers` dossiers submitted over `days` days from `start` (UTC midnight).
pub fn generate(seed: u64, dossiers: u32, start: OffsetDateTime, days: u32) -> Traffic {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Traffic::default();
    for n in 0..dossiers {
        dossier(&mut rng, seed, n, start, days, &mut out);
    }
    out
}

fn dossier(rng: &mut StdRng, seed: u64, n: u32, start: OffsetDateTime, days: u32, out: &mut Traffic) {
    let authority = &AUTHORITIES[rng.random_range(0..AUTHORITIES.len())];
    let (procedure_code, service_level) = PROCEDURES[rng.random_range(0..PROCEDURES.len())];
    let place = Place {
        procedure_code: procedure_code.to_owned(),
        agency_code: format!("000.00.{:02}.{}", rng.random_range(1..=authority.agencies), authority.code),
        authority_code: authority.code.to_owned(),
    };
    let ministry = authority.code.starts_with('G');
    let online_p = match (service_level, ministry) {
        (ServiceLevel::Offline, _) => 0.0,
        (_, true) => 0.7,
        (_, false) => 0.35,
    };
    let channel = if rng.random_bool(online_p) {
        Channel::Online
    } else if rng.random_bool(0.7) {
        Channel::InPerson
    } else {
        Channel::Postal
    };
    let dossier_id = format!("{}-S{seed}-{n:06}", place.agency_code);
    // Submitted at any minute of the range; a fifth within 30 minutes of a
    // Vietnam midnight (17:00 UTC), where the UTC and local days differ.
    let minute = if rng.random_bool(0.2) {
        i64::from(rng.random_range(0..days.max(1))) * 1440 + 17 * 60 + rng.random_range(-30..30)
    } else {
        rng.random_range(0..i64::from(days.max(1)) * 1440)
    };
    let mut t = start + Duration::minutes(minute);
    let mut step = 0u32;
    let mut event = |rng: &mut StdRng, status: Status, at: OffsetDateTime| DossierEvent {
        schema_version: 1,
        event_id: {
            step += 1;
            format!("{dossier_id}#{step}")
        },
        dossier_id: dossier_id.clone(),
        status,
        occurred_at: at.to_offset(offset(rng)),
        place: place.clone(),
        service_level,
        channel,
        received_at: None,
        due_at: None,
        applicant_type: None,
        applicant_id: None,
        vneid_verified: None,
        digitized: None,
        result_digitized: None,
        fee_vnd: None,
        source_system: Some(format!("motcua-{}", authority.code.to_lowercase())),
        extra: serde_json::Map::new(),
    };

    let mut submitted = event(rng, Status::Submitted, t);
    submitted.applicant_type =
        Some(if rng.random_bool(0.85) { ApplicantType::Citizen } else { ApplicantType::Business });
    submitted.applicant_id = Some(format!("{:012}", rng.random_range(1_000_000_000u64..99_999_999_999)));
    submitted.vneid_verified = Some(rng.random_bool(0.5));
    submitted.digitized = Some(rng.random_bool(0.6));
    out.dossiers.push(submitted);

    // A tenth are never accepted: they keep the first event's day.
    if rng.random_bool(0.1) {
        t += Duration::minutes(rng.random_range(30..3000));
        let closing = [Status::NotAccepted, Status::Withdrawn][rng.random_range(0..2)];
        out.dossiers.push(event(rng, closing, t));
        return;
    }
    t += Duration::minutes(rng.random_range(5..2000));
    let received = t;
    let due = received + Duration::days(rng.random_range(1..10));
    let fee = [0, 0, 50_000, 100_000, 250_000][rng.random_range(0..5)];
    let mut accepted = event(rng, Status::Accepted, t);
    accepted.received_at = Some(received.to_offset(offset(rng)));
    accepted.due_at = Some(due.to_offset(offset(rng)));
    accepted.fee_vnd = Some(fee);
    // Digitization and VNeID linkage often happen at acceptance.
    if rng.random_bool(0.4) {
        accepted.digitized = Some(true);
    }
    if rng.random_bool(0.2) {
        accepted.vneid_verified = Some(true);
    }
    out.dossiers.push(accepted);

    if rng.random_bool(0.2) {
        t += Duration::minutes(rng.random_range(60..3000));
        out.dossiers.push(event(rng, Status::SupplementRequested, t));
    }
    t += Duration::minutes(rng.random_range(10..600));
    out.dossiers.push(event(rng, Status::Processing, t));

    if fee > 0 {
        payments(rng, &dossier_id, &place, fee, t, out);
    }

    // Close: mostly resolved (on time or late), some stopped or withdrawn.
    let late = rng.random_bool(0.3);
    t = if late {
        due + Duration::minutes(rng.random_range(1..4000))
    } else {
        (t + Duration::minutes(1)).max(due - Duration::minutes(rng.random_range(0..3000)))
    };
    if t <= received {
        t = received + Duration::minutes(1);
    }
    let closing = match rng.random_range(0..10) {
        0 => Status::Stopped,
        1 => Status::Withdrawn,
        _ => Status::Resolved,
    };
    let mut close = event(rng, closing, t);
    if closing == Status::Resolved {
        close.result_digitized = Some(rng.random_bool(0.75));
    }
    out.dossiers.push(close);
    if closing == Status::Resolved {
        t += Duration::minutes(rng.random_range(10..2000));
        let mut returned = event(rng, Status::ResultReturned, t);
        // Sometimes the electronic result is attached only on return.
        if rng.random_bool(0.2) {
            returned.result_digitized = Some(true);
        }
        out.dossiers.push(returned);
        if rng.random_bool(0.4) {
            t += Duration::minutes(rng.random_range(10..5000));
            let rating =
                [Rating::Satisfied, Rating::Satisfied, Rating::Neutral, Rating::Unsatisfied][rng.random_range(0..4)];
            out.ratings.push(FeedbackEvent {
                schema_version: 1,
                event_id: format!("{dossier_id}#fb"),
                dossier_id: dossier_id.clone(),
                occurred_at: t.to_offset(offset(rng)),
                place: place.clone(),
                rating,
                extra: serde_json::Map::new(),
            });
        }
    }
}

fn payments(rng: &mut StdRng, dossier_id: &str, place: &Place, fee: u64, mut t: OffsetDateTime, out: &mut Traffic) {
    let method = match rng.random_range(0..10) {
        0..=4 => PaymentMethod::NationalPlatform,
        5..=7 => PaymentMethod::LocalGateway,
        _ => PaymentMethod::Offline,
    };
    let pay = |rng: &mut StdRng, id: &str, status: PaymentStatus, at: OffsetDateTime, suffix: &str| PaymentEvent {
        schema_version: 1,
        event_id: format!("{id}#{suffix}"),
        payment_id: id.to_owned(),
        dossier_id: dossier_id.to_owned(),
        status,
        occurred_at: at.to_offset(offset(rng)),
        amount_vnd: fee,
        method,
        place: place.clone(),
        extra: serde_json::Map::new(),
    };
    // A failed first attempt, then a new transaction.
    if rng.random_bool(0.15) {
        let failed = pay(rng, &format!("P-{dossier_id}-0"), PaymentStatus::Failed, t, "f");
        out.payments.push(failed);
        t += Duration::minutes(rng.random_range(1..120));
    }
    if rng.random_bool(0.1) {
        return; // never paid
    }
    let id = format!("P-{dossier_id}-1");
    let succeeded = pay(rng, &id, PaymentStatus::Succeeded, t, "s");
    out.payments.push(succeeded);
    if rng.random_bool(0.08) {
        t += Duration::minutes(rng.random_range(60..5000));
        let refunded = pay(rng, &id, PaymentStatus::Refunded, t, "r");
        out.payments.push(refunded);
    }
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
