//! The DVC Pulse event contract (`docs/CONTRACT.md` §1-4, version 1).
//!
//! Everything that reads or writes portal events goes through this crate:
//! topic names, event types, and the decoder that turns any bytes into either
//! a valid event or a [`DecodeError`] naming the broken rule. Decoding never
//! panics and never echoes a personal ID.

mod enums;
mod error;
mod event;
mod fields;

pub use enums::{ApplicantType, Channel, PaymentMethod, PaymentStatus, Rating, ServiceLevel, Status};
pub use error::DecodeError;
pub use event::{DossierEvent, FeedbackEvent, PaymentEvent, Place};
pub use fields::{ContractEnum, MAX_SAFE_INTEGER, YEARS};

/// The contract's topics (CONTRACT.md §1).
pub mod topics {
    pub const DOSSIER: &str = "dvc.dossier-events.v1";
    pub const PAYMENT: &str = "dvc.payment-events.v1";
    pub const FEEDBACK: &str = "dvc.feedback-events.v1";
    pub const DEAD_LETTER: &str = "dvc.dead-letter.v1";

    /// Headers of a dead-lettered message.
    pub mod headers {
        pub const ERROR: &str = "dvc-error";
        pub const SOURCE_TOPIC: &str = "dvc-source-topic";
        pub const SOURCE_PARTITION: &str = "dvc-source-partition";
        pub const SOURCE_OFFSET: &str = "dvc-source-offset";
    }
}

/// Which of the three event streams a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Dossier,
    Payment,
    Feedback,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::Dossier, Stream::Payment, Stream::Feedback];

    /// The contract topic of this stream.
    pub const fn topic(self) -> &'static str {
        match self {
            Stream::Dossier => topics::DOSSIER,
            Stream::Payment => topics::PAYMENT,
            Stream::Feedback => topics::FEEDBACK,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Stream::Dossier => "dossier",
            Stream::Payment => "payment",
            Stream::Feedback => "feedback",
        }
    }
}

/// A decoded event of any stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Dossier(DossierEvent),
    Payment(PaymentEvent),
    Feedback(FeedbackEvent),
}

impl Event {
    /// Decodes a message of `stream`: a valid event, or why it is not one.
    pub fn decode(stream: Stream, bytes: &[u8]) -> Result<Event, DecodeError> {
        match stream {
            Stream::Dossier => DossierEvent::decode(bytes).map(Event::Dossier),
            Stream::Payment => PaymentEvent::decode(bytes).map(Event::Payment),
            Stream::Feedback => FeedbackEvent::decode(bytes).map(Event::Feedback),
        }
    }
}
