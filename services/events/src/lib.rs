//! The DVC Pulse event contract (`docs/CONTRACT.md` §1-4, version 1, and
//! the contract 1.1 additions of §8).
//!
//! Everything that reads or writes portal events goes through this crate:
//! topic names, event types, and the decoder that turns any bytes into either
//! a valid event or a [`DecodeError`] naming the broken rule. Decoding never
//! panics and never echoes a personal ID.

mod enums;
mod error;
mod event;
mod fields;

pub use enums::{
    ApplicantType, Channel, PaymentMethod, PaymentStatus, PetitionClassification, PetitionStatus, Rating, ServiceLevel,
    Status,
};
pub use error::DecodeError;
pub use event::{CatalogEntry, DossierEvent, FeedbackEvent, MAX_PROCESSING_DAYS, PaymentEvent, PetitionEvent, Place};
pub use fields::{AuthorityKind, ContractEnum, DATE_YEARS, MAX_SAFE_INTEGER, YEARS};

/// The contract's topics (CONTRACT.md §1 and §8).
pub mod topics {
    pub const DOSSIER: &str = "dvc.dossier-events.v1";
    pub const PAYMENT: &str = "dvc.payment-events.v1";
    pub const FEEDBACK: &str = "dvc.feedback-events.v1";
    pub const PETITION: &str = "dvc.petition-events.v1";
    pub const CATALOG: &str = "dvc.procedure-catalog.v1";
    pub const DEAD_LETTER: &str = "dvc.dead-letter.v1";

    /// Headers of a dead-lettered message.
    pub mod headers {
        pub const ERROR: &str = "dvc-error";
        pub const SOURCE_TOPIC: &str = "dvc-source-topic";
        pub const SOURCE_PARTITION: &str = "dvc-source-partition";
        pub const SOURCE_OFFSET: &str = "dvc-source-offset";
    }
}

/// Which of the contract's message streams a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Dossier,
    Payment,
    Feedback,
    Petition,
    Catalog,
}

impl Stream {
    pub const ALL: [Stream; 5] =
        [Stream::Dossier, Stream::Payment, Stream::Feedback, Stream::Petition, Stream::Catalog];

    /// The contract topic of this stream.
    pub const fn topic(self) -> &'static str {
        match self {
            Stream::Dossier => topics::DOSSIER,
            Stream::Payment => topics::PAYMENT,
            Stream::Feedback => topics::FEEDBACK,
            Stream::Petition => topics::PETITION,
            Stream::Catalog => topics::CATALOG,
        }
    }

    /// The command-line flag naming this stream's topic, the same for every
    /// DVC Pulse service that reads or writes it (`--dossier-topic`, …).
    pub fn topic_flag(self) -> String {
        format!("--{}-topic", self.name())
    }

    pub const fn name(self) -> &'static str {
        match self {
            Stream::Dossier => "dossier",
            Stream::Payment => "payment",
            Stream::Feedback => "feedback",
            Stream::Petition => "petition",
            Stream::Catalog => "catalog",
        }
    }
}

/// A decoded message of any stream; it serializes as the message itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Event {
    Dossier(DossierEvent),
    Payment(PaymentEvent),
    Feedback(FeedbackEvent),
    Petition(PetitionEvent),
    Catalog(CatalogEntry),
}

impl Event {
    /// Decodes a message of `stream`: a valid event, or why it is not one.
    pub fn decode(stream: Stream, bytes: &[u8]) -> Result<Event, DecodeError> {
        match stream {
            Stream::Dossier => DossierEvent::decode(bytes).map(Event::Dossier),
            Stream::Payment => PaymentEvent::decode(bytes).map(Event::Payment),
            Stream::Feedback => FeedbackEvent::decode(bytes).map(Event::Feedback),
            Stream::Petition => PetitionEvent::decode(bytes).map(Event::Petition),
            Stream::Catalog => CatalogEntry::decode(bytes).map(Event::Catalog),
        }
    }

    /// What tells this message from the others of its stream: the event id;
    /// for a catalogue entry, which has none, its key and `updated_at`.
    pub fn identity(&self) -> String {
        match self {
            Event::Dossier(e) => e.event_id.clone(),
            Event::Payment(e) => e.event_id.clone(),
            Event::Feedback(e) => e.event_id.clone(),
            Event::Petition(e) => e.event_id.clone(),
            Event::Catalog(e) => format!("{}@{}", e.key(), e.updated_at.unix_timestamp()),
        }
    }
}
