//! What the notification role's request-facing services ([`super::inbox::Inbox`],
//! [`super::recipients::Recipients`], [`super::deliveries::TaskDeliveries`]) refuse, as one
//! enum the HTTP layer maps to its problems: each variant is a different answer to the
//! caller, never a cause to show.

use chime_core::FieldErrors;

use crate::definition::DefinitionError;

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// Refused fields of the request body, each named by its JSON pointer.
    #[error("invalid request")]
    Invalid(#[from] FieldErrors),
    /// No such recipient (push subscription, webhook) for this user.
    #[error("not found")]
    NotFound,
    /// The user already keeps the most destinations allowed.
    #[error("destination limit reached")]
    DestinationLimit { limit: usize },
    /// The task is there, but has no dead-lettered delivery at that occurrence and channel.
    #[error("no such dead-lettered delivery")]
    NotDeadLettered,
    /// What the definition role answered about the task (not the user's, or a store error).
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error(transparent)]
    Store(#[from] chime_store::Error),
}

pub type Result<T, E = NotificationError> = std::result::Result<T, E>;
