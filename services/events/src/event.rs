//! The three event types of CONTRACT.md §2-4 and their decoders.
//!
//! `decode` takes any bytes and returns either a valid event or the first
//! broken rule, in contract field order; it never panics. Unknown fields are
//! kept in `extra`. `Serialize` writes the same wire format back (for the
//! portal simulator and tests).

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::DecodeError;
use crate::enums::{ApplicantType, Channel, PaymentMethod, PaymentStatus, Rating, ServiceLevel, Status};
use crate::fields::{Fields, MAX_SAFE_INTEGER};

/// Where an event happened: the grouping keys every event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub procedure_code: String,
    pub agency_code: String,
    pub authority_code: String,
}

impl Place {
    fn decode(f: &mut Fields<'_>) -> Result<Place, DecodeError> {
        Ok(Place {
            procedure_code: f.procedure_code()?,
            agency_code: f.id("agency_code")?,
            authority_code: f.authority_code()?,
        })
    }
}

/// One step of a dossier (`dvc.dossier-events.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DossierEvent {
    pub schema_version: u8,
    pub event_id: String,
    pub dossier_id: String,
    pub status: Status,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(flatten)]
    pub place: Place,
    pub service_level: ServiceLevel,
    pub channel: Channel,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub received_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub due_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applicant_type: Option<ApplicantType>,
    /// Personal data (CCCD or tax code): hash it before storing or logging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applicant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vneid_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digitized: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_digitized: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_vnd: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    /// Fields this contract version does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DossierEvent {
    pub fn decode(bytes: &[u8]) -> Result<DossierEvent, DecodeError> {
        let mut f = Fields::parse(bytes)?;
        Ok(DossierEvent {
            schema_version: f.schema_version()?,
            event_id: f.id("event_id")?,
            dossier_id: f.id("dossier_id")?,
            status: status(&mut f)?,
            occurred_at: f.timestamp("occurred_at")?,
            place: Place::decode(&mut f)?,
            service_level: f.enumeration("service_level")?,
            channel: f.enumeration("channel")?,
            received_at: f.opt_timestamp("received_at")?,
            due_at: f.opt_timestamp("due_at")?,
            applicant_type: f.opt_enumeration("applicant_type")?,
            applicant_id: f.opt_personal_id("applicant_id")?,
            vneid_verified: f.opt_bool("vneid_verified")?,
            digitized: f.opt_bool("digitized")?,
            result_digitized: f.opt_bool("result_digitized")?,
            fee_vnd: f.opt_bounded("fee_vnd", 0, MAX_SAFE_INTEGER, AMOUNT)?,
            source_system: f.opt_string("source_system")?,
            extra: f.into_extra(),
        })
    }
}

const AMOUNT: &str = "an integer from 0 to 9007199254740991";

fn status(f: &mut Fields<'_>) -> Result<Status, DecodeError> {
    let code = f.bounded("status", 1, 10, "a status code (1-10)")?;
    // In 1..=10, so always a status.
    Status::from_code(code as u8).ok_or_else(|| DecodeError::field("status", "is not a status code (1-10)"))
}

/// One payment transaction step (`dvc.payment-events.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentEvent {
    pub schema_version: u8,
    pub event_id: String,
    pub payment_id: String,
    pub dossier_id: String,
    pub status: PaymentStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub amount_vnd: u64,
    pub method: PaymentMethod,
    #[serde(flatten)]
    pub place: Place,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PaymentEvent {
    pub fn decode(bytes: &[u8]) -> Result<PaymentEvent, DecodeError> {
        let mut f = Fields::parse(bytes)?;
        Ok(PaymentEvent {
            schema_version: f.schema_version()?,
            event_id: f.id("event_id")?,
            payment_id: f.id("payment_id")?,
            dossier_id: f.id("dossier_id")?,
            status: f.enumeration("status")?,
            occurred_at: f.timestamp("occurred_at")?,
            amount_vnd: f.bounded("amount_vnd", 0, MAX_SAFE_INTEGER, AMOUNT)?,
            method: f.enumeration("method")?,
            place: Place::decode(&mut f)?,
            extra: f.into_extra(),
        })
    }
}

/// One satisfaction rating (`dvc.feedback-events.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackEvent {
    pub schema_version: u8,
    pub event_id: String,
    pub dossier_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(flatten)]
    pub place: Place,
    pub rating: Rating,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl FeedbackEvent {
    pub fn decode(bytes: &[u8]) -> Result<FeedbackEvent, DecodeError> {
        let mut f = Fields::parse(bytes)?;
        Ok(FeedbackEvent {
            schema_version: f.schema_version()?,
            event_id: f.id("event_id")?,
            dossier_id: f.id("dossier_id")?,
            occurred_at: f.timestamp("occurred_at")?,
            place: Place::decode(&mut f)?,
            rating: f.enumeration("rating")?,
            extra: f.into_extra(),
        })
    }
}
