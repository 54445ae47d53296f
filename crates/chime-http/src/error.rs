//! One error type for every HTTP entry, answered as RFC 9457 `application/problem+json`.
//! Client errors name the field (a JSON pointer) and the refused value; server errors are
//! logged with their cause chain and answered without it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chime_core::{FieldError, FieldErrors};
use chime_roles::definition::DefinitionError;
use chime_roles::notification::NotificationError;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem details object (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI identifying the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation problems: every refused field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    Invalid(FieldErrors),
    #[error("malformed request: {detail}")]
    Malformed { pointer: String, detail: String },
    #[error("body too large")]
    TooLarge { limit: usize },
    /// The body did not arrive whole within the body-read timeout (a slow or stalled client).
    #[error("body read timed out")]
    BodyTimeout { after: std::time::Duration },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("not found")]
    NotFound,
    /// The path exists, the method does not (axum adds `Allow`).
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict")]
    Conflict,
    /// The task exists, but has no dead-lettered delivery there to retry.
    #[error("not dead-lettered")]
    NotDeadLettered,
    /// The request is well formed but the resource's state refuses it (409), said in words.
    #[error("refused: {detail}")]
    Refused {
        kind: &'static str,
        title: &'static str,
        detail: String,
    },
    /// The caller already has the most tasks allowed.
    #[error("task limit reached")]
    TaskLimit { limit: usize },
    /// The caller's write rate is over its limit.
    #[error("too many requests")]
    TooManyRequests { retry_after: std::time::Duration },
    /// Every request slot is taken; nothing was done.
    #[error("overloaded")]
    Overloaded { retry_after: std::time::Duration },
    #[error("unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

const TYPE_BASE: &str = "https://chime.dev/problems/";

impl ApiError {
    pub fn invalid_param(
        pointer: &str,
        value: serde_json::Value,
        detail: impl Into<String>,
    ) -> Self {
        ApiError::Invalid(FieldErrors::one(pointer, Some(value), detail))
    }

    fn problem(&self) -> (StatusCode, Problem) {
        let (status, kind, title, detail, errors) = match self {
            ApiError::Invalid(FieldErrors(errors)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "The request has invalid fields",
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.pointer, e.detail))
                    .collect::<Vec<_>>()
                    .join("; "),
                errors.clone(),
            ),
            ApiError::Malformed { pointer, detail } => (
                StatusCode::BAD_REQUEST,
                "malformed",
                "The request could not be read",
                detail.clone(),
                vec![FieldError::new(pointer.clone(), None, detail.clone())],
            ),
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "The request body is too large",
                format!("the body is over the limit of {limit} bytes"),
                vec![FieldError::new("", None, format!("at most {limit} bytes"))],
            ),
            ApiError::BodyTimeout { after } => (
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "The request body arrived too slowly",
                format!(
                    "the body did not arrive within {} s; send it at once",
                    after.as_secs_f64()
                ),
                vec![FieldError::new(
                    "",
                    None,
                    format!("must arrive within {} s", after.as_secs_f64()),
                )],
            ),
            ApiError::Unauthorized(why) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid bearer token is required",
                why.clone(),
                Vec::new(),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "no such resource for this user".to_owned(),
                Vec::new(),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this resource does not support this method; see `Allow`".to_owned(),
                Vec::new(),
            ),
            ApiError::Conflict => (
                StatusCode::CONFLICT,
                "conflict",
                "Concurrent change",
                "the resource kept changing while this request ran; try again".to_owned(),
                Vec::new(),
            ),
            ApiError::NotDeadLettered => (
                StatusCode::CONFLICT,
                "not-dead-lettered",
                "Nothing to retry",
                "this task has no dead-lettered delivery at `dueAt` on `channel` (and `target`): \
                 it was sent, is still being tried, or never existed"
                    .to_owned(),
                Vec::new(),
            ),
            ApiError::Refused {
                kind,
                title,
                detail,
            } => (
                StatusCode::CONFLICT,
                *kind,
                *title,
                detail.clone(),
                Vec::new(),
            ),
            ApiError::TaskLimit { limit } => (
                StatusCode::CONFLICT,
                "task-limit",
                "Too many tasks",
                format!("you have {limit} tasks, the most allowed; delete one to create another"),
                Vec::new(),
            ),
            ApiError::TooManyRequests { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!(
                    "too many changes in a short time; try again in {} s",
                    retry_after_seconds(*retry_after)
                ),
                Vec::new(),
            ),
            ApiError::Overloaded { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Server busy",
                format!(
                    "the server is at its limit of concurrent requests; nothing was done; try \
                     again in {} s",
                    retry_after_seconds(*retry_after)
                ),
                Vec::new(),
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
                "the store cannot take this request now; try again later (a write whose \
                 connection broke as it committed may have been saved: read before writing again)"
                    .to_owned(),
                Vec::new(),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "an internal error occurred; it has been logged".to_owned(),
                Vec::new(),
            ),
        };
        let problem = Problem {
            kind: format!("{TYPE_BASE}{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        (status, problem)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) | ApiError::Unavailable(cause) = &self {
            tracing::error!(error = %cause, source = ?cause.source(), "request failed");
        }
        let (status, problem) = self.problem();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after } | ApiError::Overloaded { retry_after } => {
                Some(retry_after_seconds(*retry_after))
            }
            _ => None,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<DefinitionError> for ApiError {
    fn from(e: DefinitionError) -> Self {
        match e {
            DefinitionError::Invalid(errors) => ApiError::Invalid(errors),
            DefinitionError::NotFound => ApiError::NotFound,
            DefinitionError::Conflict => ApiError::Conflict,
            DefinitionError::TaskLimit { limit } => ApiError::TaskLimit { limit },
            DefinitionError::NotUpcoming(detail) => ApiError::Refused {
                kind: "not-upcoming",
                title: "This occurrence is not one still to come",
                detail,
            },
            DefinitionError::Store(e) => e.into(),
        }
    }
}

impl From<NotificationError> for ApiError {
    fn from(e: NotificationError) -> Self {
        match e {
            NotificationError::Invalid(errors) => ApiError::Invalid(errors),
            NotificationError::NotFound => ApiError::NotFound,
            NotificationError::NotDeadLettered => ApiError::NotDeadLettered,
            NotificationError::DestinationLimit { limit } => ApiError::Refused {
                kind: "destination-limit",
                title: "Too many destinations",
                detail: format!(
                    "you have {limit} destinations, the most allowed; remove one to add another"
                ),
            },
            NotificationError::Definition(e) => e.into(),
            NotificationError::Store(e) => e.into(),
        }
    }
}

impl From<chime_store::Error> for ApiError {
    fn from(e: chime_store::Error) -> Self {
        match e {
            chime_store::Error::Conflict => ApiError::Conflict,
            chime_store::Error::Unavailable(_) => ApiError::Unavailable(Box::new(e)),
            e => ApiError::Internal(Box::new(e)),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `Retry-After` is whole seconds: rounded up, and at least 1 so that clients do wait.
fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}
