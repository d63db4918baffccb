//! ClickHouse rows of the raw tables (schemas/clickhouse/001_raw_events.sql,
//! 006_contract_1_1.sql).
//!
//! A row is built from one decoded message plus its Kafka coordinates; the
//! applicant ID is replaced by its keyed hash here, so the raw value is gone
//! before a row exists. Field names and types follow the table columns (an
//! insert names its columns, so their order is free).

use std::sync::Arc;

use clickhouse::Row;
use dvc_events::{CatalogEntry, DecodeError, DossierEvent, FeedbackEvent, PaymentEvent, PetitionEvent, Stream};
use serde::Serialize;
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::privacy::ApplicantHasher;

/// Where a record came from in Kafka.
#[derive(Debug, Clone)]
pub struct Coordinates {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
}

/// A row type of one raw table, built from the bytes of one Kafka record.
pub trait RawRow: Sized + clickhouse::RowOwned + clickhouse::RowWrite + Send + Sync + 'static {
    /// The ClickHouse table.
    const TABLE: &'static str;

    /// Decodes and converts one record; the error says why it is dead-lettered.
    fn from_record(bytes: &[u8], at: &Coordinates, hasher: &ApplicantHasher) -> Result<Self, DecodeError>;

    /// Stamps the row with its insert's time: one value per insert, so each
    /// insert falls into one table partition.
    fn set_ingested_at(&mut self, at: u32);
}

/// The raw table of a stream.
pub fn table_of(stream: Stream) -> &'static str {
    match stream {
        Stream::Dossier => DossierRow::TABLE,
        Stream::Payment => PaymentRow::TABLE,
        Stream::Feedback => FeedbackRow::TABLE,
        Stream::Petition => PetitionRow::TABLE,
        Stream::Catalog => CatalogRow::TABLE,
    }
}

/// Seconds since the epoch, as ClickHouse `DateTime` stores them. The
/// decoder only accepts years 2000-2099, which always fit.
fn seconds(t: OffsetDateTime) -> u32 {
    u32::try_from(t.unix_timestamp()).unwrap_or(u32::MAX)
}

/// Days since the epoch, as ClickHouse `Date` stores them. The decoder only
/// accepts years 1970-2099, which always fit.
fn days(d: Date) -> u16 {
    u16::try_from(d.to_julian_day() - time::macros::date!(1970 - 01 - 01).to_julian_day()).unwrap_or(0)
}

/// Unknown fields as a JSON object text, or '' when there are none.
fn extra_json(extra: Map<String, Value>) -> String {
    if extra.is_empty() { String::new() } else { Value::Object(extra).to_string() }
}

/// A raw table's row type and its [`RawRow`] impl: the Kafka coordinates
/// and insert time every raw table starts with, then the message's columns,
/// each with the expression that fills it from the decoded message `$e`,
/// then its unknown fields (`extra`).
macro_rules! raw_row {
    (
        $name:ident in $table:literal from $message:ident,
        |$e:ident, $hasher:pat_param| { $($field:ident: $ty:ty = $value:expr),* $(,)? }
    ) => {
        #[derive(Debug, Clone, Row, Serialize)]
        pub struct $name {
            pub kafka_topic: Arc<str>,
            pub kafka_partition: u32,
            pub kafka_offset: u64,
            pub ingested_at: u32,
            $(pub $field: $ty,)*
            pub extra: String,
        }

        impl RawRow for $name {
            const TABLE: &'static str = $table;

            fn from_record(bytes: &[u8], at: &Coordinates, $hasher: &ApplicantHasher) -> Result<Self, DecodeError> {
                let mut $e = $message::decode(bytes)?;
                let extra = extra_json(std::mem::take(&mut $e.extra));
                Ok($name {
                    kafka_topic: at.topic.clone(),
                    kafka_partition: at.partition,
                    kafka_offset: at.offset,
                    ingested_at: 0,
                    $($field: $value,)*
                    extra,
                })
            }

            fn set_ingested_at(&mut self, at: u32) {
                self.ingested_at = at;
            }
        }
    };
}

raw_row!(DossierRow in "dossier_events" from DossierEvent, |e, hasher| {
    event_id: String = e.event_id,
    dossier_id: String = e.dossier_id,
    status: u8 = e.status.code(),
    occurred_at: u32 = seconds(e.occurred_at),
    procedure_code: String = e.place.procedure_code,
    agency_code: String = e.place.agency_code,
    authority_code: String = e.place.authority_code,
    service_level: u8 = e.service_level.code(),
    channel: u8 = e.channel.code(),
    received_at: Option<u32> = e.received_at.map(seconds),
    due_at: Option<u32> = e.due_at.map(seconds),
    applicant_type: Option<u8> = e.applicant_type.map(|t| t.code()),
    applicant_hash: Option<[u8; 32]> = e.applicant_id.as_deref().map(|id| hasher.hash(id)),
    vneid_verified: Option<bool> = e.vneid_verified,
    digitized: Option<bool> = e.digitized,
    result_digitized: Option<bool> = e.result_digitized,
    fee_vnd: Option<u64> = e.fee_vnd,
    source_system: Option<String> = e.source_system,
    reused_digitized_data: Option<bool> = e.reused_digitized_data,
    from_personal_store: Option<bool> = e.from_personal_store,
    population_db_used: Option<bool> = e.population_db_used,
});

raw_row!(PaymentRow in "payment_events" from PaymentEvent, |e, _| {
    event_id: String = e.event_id,
    payment_id: String = e.payment_id,
    dossier_id: String = e.dossier_id,
    status: u8 = e.status.code(),
    occurred_at: u32 = seconds(e.occurred_at),
    amount_vnd: u64 = e.amount_vnd,
    method: u8 = e.method.code(),
    procedure_code: String = e.place.procedure_code,
    agency_code: String = e.place.agency_code,
    authority_code: String = e.place.authority_code,
});

raw_row!(FeedbackRow in "feedback_events" from FeedbackEvent, |e, _| {
    event_id: String = e.event_id,
    dossier_id: String = e.dossier_id,
    occurred_at: u32 = seconds(e.occurred_at),
    procedure_code: String = e.place.procedure_code,
    agency_code: String = e.place.agency_code,
    authority_code: String = e.place.authority_code,
    rating: u8 = e.rating.code(),
});

raw_row!(PetitionRow in "petition_events" from PetitionEvent, |e, _| {
    event_id: String = e.event_id,
    petition_id: String = e.petition_id,
    occurred_at: u32 = seconds(e.occurred_at),
    authority_code: String = e.authority_code,
    agency_code: String = e.agency_code,
    status: u8 = e.status.code(),
    classification: Option<u8> = e.classification.map(|c| c.code()),
    dossier_id: Option<String> = e.dossier_id,
    procedure_code: Option<String> = e.procedure_code,
    likes: Option<u64> = e.likes,
    dislikes: Option<u64> = e.dislikes,
    repeat_of: Option<String> = e.repeat_of,
});

raw_row!(CatalogRow in "catalog_entries" from CatalogEntry, |e, _| {
    authority_code: String = e.authority_code,
    procedure_code: String = e.procedure_code,
    updated_at: u32 = seconds(e.updated_at),
    name: Option<String> = e.name,
    online_level: Option<u8> = e.online_level.map(|l| l.code()),
    has_fee: Option<bool> = e.has_fee,
    written_result_required: Option<bool> = e.written_result_required,
    citizen_applicants: Option<bool> = e.citizen_applicants,
    max_processing_days: Option<f64> = e.max_processing_days,
    // Absent and empty alike: no agency listed.
    applying_agencies: Vec<String> = e.applying_agencies.unwrap_or_default(),
    announced_on: Option<u16> = e.announced_on.map(days),
    legal_basis_effective_on: Option<u16> = e.legal_basis_effective_on.map(days),
    published_on: Option<u16> = e.published_on.map(days),
    components_complete: Option<bool> = e.components_complete,
    withdrawn: Option<bool> = e.withdrawn,
});

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Coordinates {
        Coordinates { topic: Arc::from("t"), partition: 3, offset: 42 }
    }

    #[test]
    fn a_catalogue_entry_becomes_a_row_with_its_coordinates_days_and_extra() {
        let bytes = br#"{"schema_version": 1, "authority_code": "H29", "procedure_code": "1.001234",
            "updated_at": "2024-06-20T10:00:00+07:00", "announced_on": "2024-07-01", "has_fee": true, "x_note": 1}"#;
        let hasher = ApplicantHasher::new(b"0123456789abcdef").unwrap();
        let row = CatalogRow::from_record(bytes, &at(), &hasher).unwrap();
        assert_eq!((&*row.kafka_topic, row.kafka_partition, row.kafka_offset), ("t", 3, 42));
        assert_eq!(row.updated_at, 1_718_852_400, "2024-06-20T03:00:00Z");
        assert_eq!(row.announced_on, Some(19_905));
        assert_eq!((row.has_fee, row.withdrawn), (Some(true), None));
        assert!(row.applying_agencies.is_empty(), "left out: none listed");
        assert_eq!(row.extra, r#"{"x_note":1}"#);
        let err = CatalogRow::from_record(br#"{"schema_version": 1}"#, &at(), &hasher).unwrap_err();
        assert_eq!(err.to_string(), "authority_code: required field is missing");
    }

    #[test]
    fn dates_are_days_since_the_epoch() {
        let day = |y, m, d| days(Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap());
        assert_eq!(day(1970, 1, 1), 0);
        assert_eq!(day(1970, 1, 2), 1);
        // 2024-07-01 is 19,905 days after 1970-01-01 (date -d 2024-07-01 +%s / 86400).
        assert_eq!(day(2024, 7, 1), 19_905);
        assert_eq!(day(2099, 12, 31), 47_481);
    }
}
