//! Columns as both SQL adapters store them: instants as microseconds, ids, users, channels and
//! outcomes as their API strings, JSON as text, and an attempt's result as the columns of a
//! delivery row. One place, so that the SQLite and PostgreSQL adapters cannot drift apart on
//! what a stored value means, and a value that does not read back is `Error::Corrupt` with
//! the same message in both.

use chime_core::event::{Channel, DeliveryOutcome};
use chime_core::UserId;
use jiff::Timestamp;

use crate::{AttemptResult, Error, Result, ScheduleChange};

pub(crate) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub(crate) fn instant(us: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(us).map_err(|e| Error::Corrupt(format!("instant {us}: {e}")))
}

/// A calendar feed's generation: 1 and up.
pub(crate) fn feed_generation(stored: i64) -> Result<u32> {
    u32::try_from(stored)
        .ok()
        .filter(|g| *g >= 1)
        .ok_or_else(|| Error::Corrupt(format!("calendar feed generation {stored}")))
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
    /// Added to `attempts`: 1 for an attempt made, 0 for a withdrawal (none was).
    pub attempted: i32,
}

impl From<AttemptResult> for AttemptColumns {
    fn from(result: AttemptResult) -> Self {
        let attempted = i32::from(!matches!(result, AttemptResult::Withdrawn { .. }));
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
            AttemptResult::Withdrawn { reason } => {
                (DeliveryOutcome::Skipped, Some(reason), None, None, false)
            }
        };
        AttemptColumns {
            outcome: outcome.as_str(),
            detail,
            provider_id,
            next_attempt_at,
            keep_message,
            attempted,
        }
    }
}

/// A schedule change as the `schedule` table's columns: what both adapters write.
pub(crate) enum ScheduleRow {
    /// Upserted when newer.
    Set(SetRow),
    /// A tombstone: keeps the version, drops the body and due instant.
    Delete { task_id: String, version: i64 },
}

/// A task's schedule row; `body` and `due_at` are NULL when nothing is left to fire.
pub(crate) struct SetRow {
    pub task_id: String,
    pub user_id: String,
    pub version: i64,
    pub body: Option<String>,
    pub due_at: Option<i64>,
    pub seq: i64,
}

impl From<&ScheduleChange> for ScheduleRow {
    fn from(change: &ScheduleChange) -> Self {
        match change {
            ScheduleChange::Set {
                task_id,
                user_id,
                version,
                body,
                next,
            } => {
                let due_at = next.map(|(at, _)| micros(at));
                ScheduleRow::Set(SetRow {
                    task_id: task_id.to_string(),
                    user_id: user_id.as_str().to_owned(),
                    version: *version as i64,
                    body: due_at.map(|_| body.to_string()),
                    due_at,
                    seq: next.map_or(0, |(_, seq)| i64::from(seq)),
                })
            }
            ScheduleChange::Delete { task_id, version } => ScheduleRow::Delete {
                task_id: task_id.to_string(),
                version: *version as i64,
            },
        }
    }
}

/// What every module of both SQL adapters names: each adapter's root imports it, its modules
/// `use super::*`.
/// When an occurrence fired from a row due at `due_at` stops being open: when the task's next
/// occurrence is due, or [`crate::ONE_TIME_OPEN_FOR`] after `due_at` when there is none.
pub(crate) fn expires_at(due_at: Timestamp, next: Option<(Timestamp, u32)>) -> i64 {
    micros(next.map_or(due_at + crate::ONE_TIME_OPEN_FOR, |(at, _)| at))
}

/// The columns [`occurrence_record`] reads, in order.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const OCCURRENCE_COLUMNS: &str = "task_id, due_at, user_id, fired_at, expires_at, \
     acked_at, acked_channel, seq, snoozed_until, wake_at, snoozed_from, nagged, nags_left, \
     escalated, escalate_at";

/// An occurrence row's values, as [`OCCURRENCE_COLUMNS`] lists them.
pub(crate) type OccurrenceColumns = (
    String,
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    bool,
    i64,
    i64,
    Option<i64>,
);

/// An occurrence row, as [`OCCURRENCE_COLUMNS`] lists its columns.
pub(crate) fn occurrence_record(
    (
        task_id,
        due_at,
        user_id,
        fired_at,
        expires,
        acked_at,
        channel,
        seq,
        snoozed_until,
        wake_at,
        snoozed_from,
        nagged,
        nags_left,
        escalated,
        escalate_at,
    ): OccurrenceColumns,
) -> Result<crate::OccurrenceRecord> {
    let acknowledged = match (acked_at, channel) {
        (Some(at), Some(channel)) => Some((instant(at)?, parse_channel(&channel)?)),
        _ => None,
    };
    Ok(crate::OccurrenceRecord {
        key: chime_core::event::OccurrenceKey {
            task_id: parse_id(&task_id)?,
            due_at: instant(due_at)?,
        },
        user_id: parse_user(&user_id)?,
        fired_at: instant(fired_at)?,
        expires_at: instant(expires)?,
        acknowledged,
        seq: u32::try_from(seq).map_err(|_| Error::Corrupt(format!("stored seq {seq}")))?,
        snoozed_until: snoozed_until.map(instant).transpose()?,
        returning: wake_at.is_some(),
        snoozed_from: snoozed_from.map(instant).transpose()?,
        repeated: nagged,
        nags_left: u32::try_from(nags_left).unwrap_or(0),
        escalated: u32::try_from(escalated).unwrap_or(0),
        escalate_at: escalate_at.map(instant).transpose()?,
    })
}

/// A due wake row's values: its occurrence (task id, due instant), user, seq and wake
/// instant, then its task's current version and body (`None` once the task is deleted).
pub(crate) type WakeColumns = (String, i64, String, i64, i64, Option<i64>, Option<String>);

/// What the return of a row whose wake fires `now` carries: `nag_every`, the repeats left
/// (one fewer when the wake is a repeat, i.e. no snooze was set), and its own wake.
/// Its escalation: a repeat takes over the chain of the row it repeats (`escalated`,
/// `escalate_at`); a snooze's return starts it again at `restart`.
pub(crate) struct Follow {
    pub nag_every: Option<i64>,
    pub nags_left: i64,
    pub wake_at: Option<i64>,
    pub escalated: i64,
    pub escalate_at: Option<i64>,
}

/// The nag and escalation state of the row a wake opens, from the woken row's.
pub(crate) struct Woke {
    pub snoozed_until: Option<i64>,
    pub nag_every: Option<i64>,
    pub nags_left: i64,
    pub escalated: i64,
    pub escalate_at: Option<i64>,
}

pub(crate) fn follow(woke: &Woke, restart: Option<Timestamp>, now: Timestamp) -> Follow {
    let repeat = woke.snoozed_until.is_none();
    let left = if repeat {
        woke.nags_left - 1
    } else {
        woke.nags_left
    }
    .max(0);
    let (escalated, escalate_at) = if repeat {
        (woke.escalated, woke.escalate_at)
    } else {
        (0, restart.map(micros))
    };
    Follow {
        nag_every: woke.nag_every,
        nags_left: left,
        wake_at: woke
            .nag_every
            .filter(|_| left > 0)
            .map(|every| micros(now).saturating_add(every)),
        escalated,
        escalate_at,
    }
}

/// A due escalation row's values: its occurrence (task id, due instant), user, seq, the
/// step's instant and number, then its task's current version and body (`None` once gone).
pub(crate) type EscalateColumns = (
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

/// The step a due escalation row fires, or `None` when its task is gone.
pub(crate) fn escalate_of(
    (task_id, due_at, user_id, seq, at, step, version, body): EscalateColumns,
) -> Result<Option<crate::Escalate>> {
    let (Some(version), Some(body)) = (version, body) else {
        return Ok(None);
    };
    Ok(Some(crate::Escalate {
        key: chime_core::event::OccurrenceKey {
            task_id: parse_id(&task_id)?,
            due_at: instant(due_at)?,
        },
        user_id: parse_user(&user_id)?,
        seq: u32::try_from(seq).map_err(|_| Error::Corrupt(format!("stored seq {seq}")))?,
        step: u32::try_from(step).map_err(|_| Error::Corrupt(format!("stored step {step}")))?,
        at: instant(at)?,
        version: version as u64,
        body: parse_json(&body)?,
    }))
}

/// The return a due wake row fires, or `None` when its task is gone; a repeat of a nagging
/// task when no snooze was set (`snoozed_until`).
pub(crate) fn wake_of(
    (task_id, due_at, user_id, seq, wake_at, version, body): WakeColumns,
    snoozed_until: Option<i64>,
) -> Result<Option<crate::Wake>> {
    let (Some(version), Some(body)) = (version, body) else {
        return Ok(None);
    };
    Ok(Some(crate::Wake {
        key: chime_core::event::OccurrenceKey {
            task_id: parse_id(&task_id)?,
            due_at: instant(wake_at)?,
        },
        snoozed_from: instant(due_at)?,
        user_id: parse_user(&user_id)?,
        seq: u32::try_from(seq).map_err(|_| Error::Corrupt(format!("stored seq {seq}")))?,
        version: version as u64,
        body: parse_json(&body)?,
        repeat: snoozed_until.is_none(),
    }))
}

pub(crate) mod prelude {
    // Each adapter uses its part of it.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) use super::OCCURRENCE_COLUMNS;
    #[allow(unused_imports)]
    pub(crate) use super::{
        escalate_of, expires_at, feed_generation, follow, instant, micros, occurrence_record,
        parse_channel, parse_id, parse_json, parse_outcome, parse_user, wake_of, AttemptColumns,
        EscalateColumns, OccurrenceColumns, ScheduleRow, WakeColumns, Woke,
    };
    pub(crate) use crate::{
        AttemptResult, ClaimedDelivery, DeliveryKey, DeliveryState, DeliveryStatus, DeliveryStore,
        DeliveryWrite, DestinationRecord, Error, FeedRecord, FireFn, FiredOccurrence, HistoryEntry,
        InboxItem, OutboxEvent, OutboxRow, OutboxStore, PendingSignIn, ProfileRecord,
        PushSubscriptionRecord, RecipientStore, Result, ScheduleChange, ScheduleStore,
        ScheduledTask, SessionRecord, SessionStore, TaskRecord, TaskStore, WakeFn, WebhookEndpoint,
    };
    pub(crate) use crate::{EscalateFn, Escalated, Handoff};
    pub(crate) use crate::{OccurrenceRecord, OccurrenceStore};
}
