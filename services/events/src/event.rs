//! The event types of CONTRACT.md §2-4 and §8 and their decoders.
//!
//! `decode` takes any bytes and returns either a valid event or the first
//! broken rule, in contract field order; it never panics. Unknown fields are
//! kept in `extra`. `Serialize` writes the same wire format back (for the
//! portal simulator and tests).

use serde::Serialize;
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::DecodeError;
use crate::enums::{
    ApplicantType, Channel, PaymentMethod, PaymentStatus, PetitionClassification, PetitionStatus, Rating, ServiceLevel,
    Status,
};
use crate::fields::{Fields, MAX_SAFE_INTEGER};

time::serde::format_description!(calendar_date, Date, "[year]-[month]-[day]");

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
    /// A component reuses data digitized earlier (contract 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused_digitized_data: Option<bool>,
    /// A component came from, or the result went to, the applicant's
    /// document store on the national portal (contract 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_personal_store: Option<bool>,
    /// The national population database was used (contract 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population_db_used: Option<bool>,
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
            reused_digitized_data: f.opt_bool("reused_digitized_data")?,
            from_personal_store: f.opt_bool("from_personal_store")?,
            population_db_used: f.opt_bool("population_db_used")?,
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

/// One step of a petition (phản ánh, kiến nghị; `dvc.petition-events.v1`,
/// CONTRACT.md §8).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PetitionEvent {
    pub schema_version: u8,
    pub event_id: String,
    pub petition_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub authority_code: String,
    pub agency_code: String,
    pub status: PetitionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<PetitionClassification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dossier_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedure_code: Option<String>,
    /// The latest known count of likes (and dislikes, below).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dislikes: Option<u64>,
    /// An earlier petition this one repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

const COUNT: &str = "a count from 0 to 9007199254740991";

impl PetitionEvent {
    pub fn decode(bytes: &[u8]) -> Result<PetitionEvent, DecodeError> {
        let mut f = Fields::parse(bytes)?;
        Ok(PetitionEvent {
            schema_version: f.schema_version()?,
            event_id: f.id("event_id")?,
            petition_id: f.id("petition_id")?,
            occurred_at: f.timestamp("occurred_at")?,
            authority_code: f.authority_code()?,
            agency_code: f.id("agency_code")?,
            status: f.enumeration("status")?,
            classification: f.opt_enumeration("classification")?,
            dossier_id: f.opt_id("dossier_id")?,
            procedure_code: f.opt_procedure_code()?,
            likes: f.opt_bounded("likes", 0, MAX_SAFE_INTEGER, COUNT)?,
            dislikes: f.opt_bounded("dislikes", 0, MAX_SAFE_INTEGER, COUNT)?,
            repeat_of: f.opt_id("repeat_of")?,
            extra: f.into_extra(),
        })
    }
}

/// The longest processing time a catalogue entry may state (ten years):
/// anything longer is a unit error (hours or minutes sent as days).
pub const MAX_PROCESSING_DAYS: f64 = 3_650.0;

/// The current catalogue entry of one procedure at one authority
/// (`dvc.procedure-catalog.v1`, CONTRACT.md §8); a newer `updated_at`
/// replaces it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogEntry {
    pub schema_version: u8,
    pub authority_code: String,
    pub procedure_code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_level: Option<ServiceLevel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_fee: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_result_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citizen_applicants: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_processing_days: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applying_agencies: Option<Vec<String>>,
    /// Date of the publication decision.
    #[serde(with = "calendar_date::option", skip_serializing_if = "Option::is_none")]
    pub announced_on: Option<Date>,
    #[serde(with = "calendar_date::option", skip_serializing_if = "Option::is_none")]
    pub legal_basis_effective_on: Option<Date>,
    /// Published on the national procedure database.
    #[serde(with = "calendar_date::option", skip_serializing_if = "Option::is_none")]
    pub published_on: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components_complete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CatalogEntry {
    pub fn decode(bytes: &[u8]) -> Result<CatalogEntry, DecodeError> {
        let mut f = Fields::parse(bytes)?;
        Ok(CatalogEntry {
            schema_version: f.schema_version()?,
            authority_code: f.authority_code()?,
            procedure_code: f.procedure_code()?,
            updated_at: f.timestamp("updated_at")?,
            name: f.opt_string("name")?,
            online_level: f.opt_enumeration("online_level")?,
            has_fee: f.opt_bool("has_fee")?,
            written_result_required: f.opt_bool("written_result_required")?,
            citizen_applicants: f.opt_bool("citizen_applicants")?,
            max_processing_days: f.opt_number(
                "max_processing_days",
                MAX_PROCESSING_DAYS,
                "a number of days from 0 to 3650",
            )?,
            applying_agencies: f.opt_ids("applying_agencies")?,
            announced_on: f.opt_date("announced_on")?,
            legal_basis_effective_on: f.opt_date("legal_basis_effective_on")?,
            published_on: f.opt_date("published_on")?,
            components_complete: f.opt_bool("components_complete")?,
            withdrawn: f.opt_bool("withdrawn")?,
            extra: f.into_extra(),
        })
    }

    /// The message key on the catalogue topic: `authority_code/procedure_code`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.authority_code, self.procedure_code)
    }
}
