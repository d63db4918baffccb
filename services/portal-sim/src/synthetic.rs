//! Independent valid contract events: every event has its own `event_id`,
//! so the expected count of any table is the number sent. Deterministic for a
//! given seed.

use dvc_events::{
    ApplicantType, Channel, DossierEvent, FeedbackEvent, PaymentEvent, PaymentMethod, PaymentStatus, Place, Rating,
    ServiceLevel, Status,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn place(rng: &mut StdRng) -> Place {
    let authority = if rng.random_bool(0.5) {
        format!("G{:02}", rng.random_range(1..20))
    } else {
        format!("H{:02}", rng.random_range(1..64))
    };
    Place {
        procedure_code: format!("{}.{:06}", rng.random_range(1..4), rng.random_range(0..3000)),
        agency_code: format!("000.00.{:02}.{authority}", rng.random_range(1..5)),
        authority_code: authority,
    }
}

fn at(rng: &mut StdRng) -> OffsetDateTime {
    // July 2024, in UTC or Vietnam time.
    let t = OffsetDateTime::from_unix_timestamp(1_719_792_000 + rng.random_range(0..31 * 86_400)).unwrap();
    if rng.random_bool(0.5) { t } else { t.to_offset(time::macros::offset!(+7)) }
}

/// The applicant ID of dossier number `i` (fake, valid-looking CCCD).
pub fn applicant_id(prefix: u64, i: u64) -> String {
    format!("{:03}{:09}", prefix % 1000, i % 1_000_000_000)
}

pub fn dossier(rng: &mut StdRng, run: &str, i: u64) -> DossierEvent {
    let occurred_at = at(rng);
    DossierEvent {
        schema_version: 1,
        event_id: format!("{run}-d{i}"),
        dossier_id: format!("{run}-{}", i / 3),
        status: Status::ALL[rng.random_range(0..10)],
        occurred_at,
        place: place(rng),
        service_level: [ServiceLevel::FullOnline, ServiceLevel::PartialOnline, ServiceLevel::Offline]
            [rng.random_range(0..3)],
        channel: [Channel::Online, Channel::InPerson, Channel::Postal][rng.random_range(0..3)],
        received_at: Some(occurred_at),
        due_at: Some(occurred_at + time::Duration::days(5)),
        applicant_type: Some(ApplicantType::Citizen),
        applicant_id: Some(applicant_id(79, i)),
        vneid_verified: Some(rng.random_bool(0.6)),
        digitized: Some(rng.random_bool(0.8)),
        result_digitized: None,
        fee_vnd: Some(rng.random_range(0..5) * 50_000),
        source_system: Some("e2e".into()),
        reused_digitized_data: Some(rng.random_bool(0.2)),
        from_personal_store: None,
        population_db_used: Some(rng.random_bool(0.4)),
        extra: serde_json::Map::new(),
    }
}

pub fn payment(rng: &mut StdRng, run: &str, i: u64) -> PaymentEvent {
    PaymentEvent {
        schema_version: 1,
        event_id: format!("{run}-p{i}"),
        payment_id: format!("{run}-pay{i}"),
        dossier_id: format!("{run}-{}", i / 3),
        status: [PaymentStatus::Succeeded, PaymentStatus::Failed, PaymentStatus::Refunded][rng.random_range(0..3)],
        occurred_at: at(rng),
        amount_vnd: rng.random_range(1..100) * 10_000,
        method: [PaymentMethod::NationalPlatform, PaymentMethod::LocalGateway, PaymentMethod::Offline]
            [rng.random_range(0..3)],
        place: place(rng),
        extra: serde_json::Map::new(),
    }
}

pub fn feedback(rng: &mut StdRng, run: &str, i: u64) -> FeedbackEvent {
    FeedbackEvent {
        schema_version: 1,
        event_id: format!("{run}-f{i}"),
        dossier_id: format!("{run}-{}", i / 3),
        occurred_at: at(rng),
        place: place(rng),
        rating: [Rating::Satisfied, Rating::Neutral, Rating::Unsatisfied][rng.random_range(0..3)],
        extra: serde_json::Map::new(),
    }
}

pub fn json<T: serde::Serialize>(event: &T) -> Vec<u8> {
    serde_json::to_vec(event).expect("events serialize")
}

/// One generated message: the stream it belongs to, its key and its value.
#[derive(Debug, Clone)]
pub struct Message {
    pub stream: dvc_events::Stream,
    pub key: String,
    pub value: Vec<u8>,
}

/// `n` events spread over the three streams as real traffic is (70% dossier,
/// 20% payment, 10% feedback), all distinct, keyed by dossier.
pub fn mixed(run: &str, n: u64, seed: u64) -> impl Iterator<Item = Message> + '_ {
    use dvc_events::Stream;
    let mut rng = rng(seed);
    (0..n).map(move |i| {
        let (stream, key, value) = match i % 10 {
            0..=6 => {
                let e = dossier(&mut rng, run, i);
                (Stream::Dossier, e.dossier_id.clone(), json(&e))
            }
            7 | 8 => {
                let e = payment(&mut rng, run, i);
                (Stream::Payment, e.dossier_id.clone(), json(&e))
            }
            _ => {
                let e = feedback(&mut rng, run, i);
                (Stream::Feedback, e.dossier_id.clone(), json(&e))
            }
        };
        Message { stream, key, value }
    })
}
