//! ClickHouse rows of the raw event tables (schemas/clickhouse/001_raw_events.sql).
//!
//! A row is built from one decoded event plus its Kafka coordinates; the
//! applicant ID is replaced by its keyed hash here, so the raw value is gone
//! before a row exists. Field order and types follow the table columns.

use std::sync::Arc;

use clickhouse::Row;
use dvc_events::{DecodeError, DossierEvent, FeedbackEvent, PaymentEvent, Stream};
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

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
    }
}

/// Seconds since the epoch, as ClickHouse `DateTime` stores them. The
/// decoder only accepts years 2000-2099, which always fit.
fn seconds(t: OffsetDateTime) -> u32 {
    u32::try_from(t.unix_timestamp()).unwrap_or(u32::MAX)
}

/// Unknown fields as a JSON object text, or '' when there are none.
fn extra_json(extra: Map<String, Value>) -> String {
    if extra.is_empty() { String::new() } else { Value::Object(extra).to_string() }
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct DossierRow {
    pub kafka_topic: Arc<str>,
    pub kafka_partition: u32,
    pub kafka_offset: u64,
    pub ingested_at: u32,
    pub event_id: String,
    pub dossier_id: String,
    pub status: u8,
    pub occurred_at: u32,
    pub procedure_code: String,
    pub agency_code: String,
    pub authority_code: String,
    pub service_level: u8,
    pub channel: u8,
    pub received_at: Option<u32>,
    pub due_at: Option<u32>,
    pub applicant_type: Option<u8>,
    pub applicant_hash: Option<[u8; 32]>,
    pub vneid_verified: Option<bool>,
    pub digitized: Option<bool>,
    pub result_digitized: Option<bool>,
    pub fee_vnd: Option<u64>,
    pub source_system: Option<String>,
    pub extra: String,
}

impl RawRow for DossierRow {
    const TABLE: &'static str = "dossier_events";

    fn from_record(bytes: &[u8], at: &Coordinates, hasher: &ApplicantHasher) -> Result<Self, DecodeError> {
        let mut e = DossierEvent::decode(bytes)?;
        let extra = extra_json(std::mem::take(&mut e.extra));
        Ok(DossierRow {
            kafka_topic: at.topic.clone(),
            kafka_partition: at.partition,
            kafka_offset: at.offset,
            ingested_at: 0,
            extra,
            event_id: e.event_id,
            dossier_id: e.dossier_id,
            status: e.status.code(),
            occurred_at: seconds(e.occurred_at),
            procedure_code: e.place.procedure_code,
            agency_code: e.place.agency_code,
            authority_code: e.place.authority_code,
            service_level: e.service_level.code(),
            channel: e.channel.code(),
            received_at: e.received_at.map(seconds),
            due_at: e.due_at.map(seconds),
            applicant_type: e.applicant_type.map(|t| t.code()),
            applicant_hash: e.applicant_id.as_deref().map(|id| hasher.hash(id)),
            vneid_verified: e.vneid_verified,
            digitized: e.digitized,
            result_digitized: e.result_digitized,
            fee_vnd: e.fee_vnd,
            source_system: e.source_system,
        })
    }

    fn set_ingested_at(&mut self, at: u32) {
        self.ingested_at = at;
    }
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct PaymentRow {
    pub kafka_topic: Arc<str>,
    pub kafka_partition: u32,
    pub kafka_offset: u64,
    pub ingested_at: u32,
    pub event_id: String,
    pub payment_id: String,
    pub dossier_id: String,
    pub status: u8,
    pub occurred_at: u32,
    pub amount_vnd: u64,
    pub method: u8,
    pub procedure_code: String,
    pub agency_code: String,
    pub authority_code: String,
    pub extra: String,
}

impl RawRow for PaymentRow {
    const TABLE: &'static str = "payment_events";

    fn from_record(bytes: &[u8], at: &Coordinates, _: &ApplicantHasher) -> Result<Self, DecodeError> {
        let mut e = PaymentEvent::decode(bytes)?;
        let extra = extra_json(std::mem::take(&mut e.extra));
        Ok(PaymentRow {
            kafka_topic: at.topic.clone(),
            kafka_partition: at.partition,
            kafka_offset: at.offset,
            ingested_at: 0,
            extra,
            event_id: e.event_id,
            payment_id: e.payment_id,
            dossier_id: e.dossier_id,
            status: e.status.code(),
            occurred_at: seconds(e.occurred_at),
            amount_vnd: e.amount_vnd,
            method: e.method.code(),
            procedure_code: e.place.procedure_code,
            agency_code: e.place.agency_code,
            authority_code: e.place.authority_code,
        })
    }

    fn set_ingested_at(&mut self, at: u32) {
        self.ingested_at = at;
    }
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct FeedbackRow {
    pub kafka_topic: Arc<str>,
    pub kafka_partition: u32,
    pub kafka_offset: u64,
    pub ingested_at: u32,
    pub event_id: String,
    pub dossier_id: String,
    pub occurred_at: u32,
    pub procedure_code: String,
    pub agency_code: String,
    pub authority_code: String,
    pub rating: u8,
    pub extra: String,
}

impl RawRow for FeedbackRow {
    const TABLE: &'static str = "feedback_events";

    fn from_record(bytes: &[u8], at: &Coordinates, _: &ApplicantHasher) -> Result<Self, DecodeError> {
        let mut e = FeedbackEvent::decode(bytes)?;
        let extra = extra_json(std::mem::take(&mut e.extra));
        Ok(FeedbackRow {
            kafka_topic: at.topic.clone(),
            kafka_partition: at.partition,
            kafka_offset: at.offset,
            ingested_at: 0,
            extra,
            event_id: e.event_id,
            dossier_id: e.dossier_id,
            occurred_at: seconds(e.occurred_at),
            procedure_code: e.place.procedure_code,
            agency_code: e.place.agency_code,
            authority_code: e.place.authority_code,
            rating: e.rating.code(),
        })
    }

    fn set_ingested_at(&mut self, at: u32) {
        self.ingested_at = at;
    }
}
