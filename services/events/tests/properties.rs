//! Property tests of the decoder: any bytes give an event or a reason (never a
//! panic), and every valid event survives encode → decode unchanged.

use dvc_events::{
    ApplicantType, CatalogEntry, Channel, ContractEnum, DossierEvent, Event, FeedbackEvent, PaymentEvent,
    PaymentMethod, PaymentStatus, PetitionClassification, PetitionEvent, Place, Rating, ServiceLevel, Status, Stream,
};
use proptest::prelude::*;
use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset};

fn timestamp() -> impl Strategy<Value = OffsetDateTime> {
    // 2000-01-02 .. 2099-12-30 UTC, whole seconds or milliseconds, offsets -12h..+14h by quarter hours:
    // the local time stays inside the years the decoder takes (2000-2099, as written), whatever the offset.
    (946_771_200i64..4_102_358_400, 0u32..1000, prop::bool::ANY, -48i32..=56).prop_map(|(secs, ms, frac, q)| {
        let t = OffsetDateTime::from_unix_timestamp(secs).unwrap()
            + time::Duration::milliseconds(if frac { i64::from(ms) } else { 0 });
        t.to_offset(UtcOffset::from_whole_seconds(q * 900).unwrap())
    })
}

fn id() -> impl Strategy<Value = String> {
    "[\\PC]{1,64}"
}

fn place() -> impl Strategy<Value = Place> {
    ("[0-9]\\.[0-9]{6}", id(), "[GH][0-9]{2}").prop_map(|(procedure_code, agency_code, authority_code)| Place {
        procedure_code,
        agency_code,
        authority_code,
    })
}

fn extra() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("x_[a-z]{1,8}", any::<i32>().prop_map(Value::from), 0..3)
        .prop_map(|m| m.into_iter().collect())
}

fn dossier() -> impl Strategy<Value = DossierEvent> {
    (
        (id(), id(), prop::sample::select(Status::ALL.to_vec()), timestamp(), place()),
        (
            prop::sample::select(vec![ServiceLevel::FullOnline, ServiceLevel::PartialOnline, ServiceLevel::Offline]),
            prop::sample::select(vec![Channel::InPerson, Channel::Online, Channel::Postal]),
            prop::option::of(timestamp()),
            prop::option::of(timestamp()),
            prop::option::of(prop::sample::select(vec![ApplicantType::Citizen, ApplicantType::Business])),
            prop::option::of("[0-9]{12}"),
        ),
        (
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(0u64..=dvc_events::MAX_SAFE_INTEGER),
            prop::option::of("[a-z0-9-]{0,16}"),
            extra(),
        ),
        prop::array::uniform3(prop::option::of(any::<bool>())),
    )
        .prop_map(
            |(
                (event_id, dossier_id, status, occurred_at, place),
                (service_level, channel, received_at, due_at, applicant_type, applicant_id),
                (vneid_verified, digitized, result_digitized, fee_vnd, source_system, extra),
                [reused_digitized_data, from_personal_store, population_db_used],
            )| DossierEvent {
                schema_version: 1,
                event_id,
                dossier_id,
                status,
                occurred_at,
                place,
                service_level,
                channel,
                received_at,
                due_at,
                applicant_type,
                applicant_id,
                vneid_verified,
                digitized,
                result_digitized,
                fee_vnd,
                source_system,
                reused_digitized_data,
                from_personal_store,
                population_db_used,
                extra,
            },
        )
}

/// Any variant of a contract enum.
fn variant<E: ContractEnum + std::fmt::Debug>() -> impl Strategy<Value = E> {
    prop::sample::select(E::VARIANTS.iter().map(|(_, v)| *v).collect::<Vec<E>>())
}

fn petition() -> impl Strategy<Value = PetitionEvent> {
    (
        (id(), id(), timestamp(), "[GH][0-9]{2}", id(), variant()),
        (
            prop::option::of(variant::<PetitionClassification>()),
            prop::option::of(id()),
            prop::option::of("[0-9]\\.[0-9]{6}"),
            prop::option::of(0u64..=dvc_events::MAX_SAFE_INTEGER),
            prop::option::of(0u64..1000),
            prop::option::of(id()),
            extra(),
        ),
    )
        .prop_map(
            |(
                (event_id, petition_id, occurred_at, authority_code, agency_code, status),
                (classification, dossier_id, procedure_code, likes, dislikes, repeat_of, extra),
            )| PetitionEvent {
                schema_version: 1,
                event_id,
                petition_id,
                occurred_at,
                authority_code,
                agency_code,
                status,
                classification,
                dossier_id,
                procedure_code,
                likes,
                dislikes,
                repeat_of,
                extra,
            },
        )
}

fn date() -> impl Strategy<Value = time::Date> {
    let day = |year: i32, month, day| time::Date::from_calendar_date(year, month, day).unwrap().to_julian_day();
    let first = day(*dvc_events::DATE_YEARS.start(), time::Month::January, 1);
    let last = day(*dvc_events::DATE_YEARS.end(), time::Month::December, 31);
    (first..=last).prop_map(|d| time::Date::from_julian_day(d).unwrap())
}

fn catalog() -> impl Strategy<Value = CatalogEntry> {
    (
        ("[GH][0-9]{2}", "[0-9]\\.[0-9]{6}", timestamp(), prop::option::of("\\PC{0,80}"), prop::option::of(variant())),
        prop::array::uniform5(prop::option::of(any::<bool>())),
        (
            // Whole days as catalogues state most of them, or any fraction
            // (serde_json's float_roundtrip reads every written one back).
            prop::option::of(prop_oneof![(0u32..=3650).prop_map(f64::from), 0.0..=dvc_events::MAX_PROCESSING_DAYS]),
            prop::option::of(prop::collection::vec(id(), 0..4)),
            prop::array::uniform3(prop::option::of(date())),
            extra(),
        ),
    )
        .prop_map(
            |(
                (authority_code, procedure_code, updated_at, name, online_level),
                [has_fee, written_result_required, citizen_applicants, components_complete, withdrawn],
                (max_processing_days, applying_agencies, [announced_on, legal_basis_effective_on, published_on], extra),
            )| CatalogEntry {
                schema_version: 1,
                authority_code,
                procedure_code,
                updated_at,
                name,
                online_level,
                has_fee,
                written_result_required,
                citizen_applicants,
                max_processing_days,
                applying_agencies,
                announced_on,
                legal_basis_effective_on,
                published_on,
                components_complete,
                withdrawn,
                extra,
            },
        )
}

fn payment() -> impl Strategy<Value = PaymentEvent> {
    (
        id(),
        id(),
        id(),
        prop::sample::select(vec![PaymentStatus::Succeeded, PaymentStatus::Failed, PaymentStatus::Refunded]),
        timestamp(),
        0u64..=dvc_events::MAX_SAFE_INTEGER,
        prop::sample::select(vec![
            PaymentMethod::NationalPlatform,
            PaymentMethod::LocalGateway,
            PaymentMethod::Offline,
        ]),
        place(),
        extra(),
    )
        .prop_map(|(event_id, payment_id, dossier_id, status, occurred_at, amount_vnd, method, place, extra)| {
            PaymentEvent {
                schema_version: 1,
                event_id,
                payment_id,
                dossier_id,
                status,
                occurred_at,
                amount_vnd,
                method,
                place,
                extra,
            }
        })
}

fn feedback() -> impl Strategy<Value = FeedbackEvent> {
    (
        id(),
        id(),
        timestamp(),
        place(),
        prop::sample::select(vec![Rating::Satisfied, Rating::Neutral, Rating::Unsatisfied]),
        extra(),
    )
        .prop_map(|(event_id, dossier_id, occurred_at, place, rating, extra)| FeedbackEvent {
            schema_version: 1,
            event_id,
            dossier_id,
            occurred_at,
            place,
            rating,
            extra,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_decode_or_explain(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for s in Stream::ALL {
            if let Err(e) = Event::decode(s, &bytes) {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn any_json_object_decodes_or_names_a_field(obj in prop::collection::btree_map(
        prop::sample::select(vec!["schema_version", "event_id", "dossier_id", "status", "occurred_at", "rating", "x"]),
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from), any::<i64>().prop_map(Value::from),
                    any::<f64>().prop_map(Value::from), "\\PC{0,70}".prop_map(Value::from)],
        0..8,
    )) {
        let bytes = serde_json::to_vec(&obj).unwrap();
        for s in Stream::ALL {
            let err = Event::decode(s, &bytes).expect_err("these objects always lack fields");
            prop_assert!(err.field_name().is_some(), "{}", err);
        }
    }

    #[test]
    fn dossier_events_round_trip(e in dossier()) {
        let bytes = serde_json::to_vec(&e).unwrap();
        prop_assert_eq!(DossierEvent::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn payment_events_round_trip(e in payment()) {
        let bytes = serde_json::to_vec(&e).unwrap();
        prop_assert_eq!(PaymentEvent::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn feedback_events_round_trip(e in feedback()) {
        let bytes = serde_json::to_vec(&e).unwrap();
        prop_assert_eq!(FeedbackEvent::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn petition_events_round_trip(e in petition()) {
        let bytes = serde_json::to_vec(&e).unwrap();
        prop_assert_eq!(PetitionEvent::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn catalog_entries_round_trip(e in catalog()) {
        let bytes = serde_json::to_vec(&e).unwrap();
        prop_assert_eq!(CatalogEntry::decode(&bytes).unwrap(), e);
    }
}
