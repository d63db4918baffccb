//! Why a message was rejected. The text is what goes into the dead-letter
//! header `dvc-error`, so it names the field and never echoes personal data.

use std::borrow::Cow;

/// A message that is not a valid contract event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not one JSON object.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// One field breaks a rule of the contract.
    #[error("{field}: {reason}")]
    Field { field: Cow<'static, str>, reason: String },
}

impl DecodeError {
    pub(crate) fn field(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        DecodeError::Field { field: field.into(), reason: reason.into() }
    }

    /// The offending field, if the error is about one.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            DecodeError::Json(_) => None,
            DecodeError::Field { field, .. } => Some(field),
        }
    }
}
