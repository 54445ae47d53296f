//! Columns as both SQL adapters store them: instants as microseconds, ids, users, channels and
//! outcomes as their API strings, JSON as text, and an attempt's result as the columns of a
//! delivery row. One place, so that the SQLite and PostgreSQL adapters cannot drift apart on
//! what a stored value means, and a value that does not read back is `Error::Corrupt` with
//! the same message in both.

use chime_core::event::{Channel, DeliveryOutcome};
use chime_core::UserId;
use jiff::Timestamp;

use crate::{AttemptResult, Error, Result};

pub(crate) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub(crate) fn instant(us: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(us).map_err(|e| Error::Corrupt(format!("instant {us}: {e}")))
}

pub(crate) fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("stored id `{s}` is not valid")))
}

pub(crate) fn parse_user(s: &str) -> Result<UserId> {
    UserId::parse(s).map_err(|_| Error::Corrupt("stored user id is not valid".into()))
}

pub(crate) fn parse_json(s: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("stored JSON: {e}")))
}

pub(crate) fn parse_outcome(s: &str) -> Result<DeliveryOutcome> {
    DeliveryOutcome::parse(s).ok_or_else(|| Error::Corrupt(format!("stored outcome `{s}`")))
}

pub(crate) fn parse_channel(s: &str) -> Result<Channel> {
    Channel::parse(s).ok_or_else(|| Error::Corrupt(format!("stored channel `{s}`")))
}

/// What `record_attempt` writes into a delivery row for one attempt's result.
pub(crate) struct AttemptColumns {
    pub outcome: &'static str,
    pub detail: Option<String>,
    pub provider_id: Option<String>,
    pub next_attempt_at: Option<i64>,
    /// A retry or a dead letter keeps the rendered message (to send again, or to retry by
    /// hand); a sent delivery drops it.
    pub keep_message: bool,
}

impl From<AttemptResult> for AttemptColumns {
    fn from(result: AttemptResult) -> Self {
        let (outcome, detail, provider_id, next_attempt_at, keep_message) = match result {
            AttemptResult::Sent { provider_id } => {
                (DeliveryOutcome::Sent, None, provider_id, None, false)
            }
            AttemptResult::Retry {
                next_attempt_at,
                error,
            } => (
                DeliveryOutcome::Pending,
                Some(error),
                None,
                Some(micros(next_attempt_at)),
                true,
            ),
            AttemptResult::DeadLettered { error } => {
                (DeliveryOutcome::DeadLettered, Some(error), None, None, true)
            }
        };
        AttemptColumns {
            outcome: outcome.as_str(),
            detail,
            provider_id,
            next_attempt_at,
            keep_message,
        }
    }
}
