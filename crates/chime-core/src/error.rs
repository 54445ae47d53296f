//! Validation errors that name the offending field (as a JSON pointer into the request body)
//! and the value that was refused, so the HTTP layer can answer with RFC 9457 problem details.

use serde::Serialize;

/// One refused field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the field in the request body, e.g. `/repeats/on`.
    pub pointer: String,
    /// The value that was refused, as received (absent when the field was missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    // Any JSON value (a string, number, array…), not only an object.
    #[cfg_attr(feature = "openapi", schema(value_type = serde_json::Value))]
    pub value: Option<serde_json::Value>,
    /// What is wrong, for a person.
    pub detail: String,
}

impl FieldError {
    pub fn new(
        pointer: impl Into<String>,
        value: Option<serde_json::Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            pointer: pointer.into(),
            value,
            detail: detail.into(),
        }
    }
}

/// Every refused field of one body; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid field(s), first {}: {}", .0.len(), .0[0].pointer, .0[0].detail)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn one(
        pointer: impl Into<String>,
        value: Option<serde_json::Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self(vec![FieldError::new(pointer, value, detail)])
    }
}
