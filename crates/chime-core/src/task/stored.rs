//! The stored form of a task: what task records, schedule rows, events and pending deliveries
//! carry. Strict and versioned, unlike the API's lenient input ([`super::input`]), which runs
//! once, at the HTTP edge:
//!
//! - Only [`TaskSpec::to_stored`] writes it, from a task that is already valid, so reading it
//!   checks shape and types, not the input rules: a later release that tightens what the API
//!   accepts still reads every task an earlier one stored.
//! - Fields it does not know are refused (`deny_unknown_fields`): a reader never silently drops
//!   what a newer writer meant.
//! - `v` names the shape. Version 1 is the API's canonical shape ([`TaskSpec::to_json`]) plus
//!   `"v": 1`. Without `v` (version 0) is what releases before it stored: the same shape, without
//!   `notify.webhook` in the first release. Version 2 adds `urgent` and `nag`; it is written
//!   only for a task that uses one of them, every other task is still written as version 1, the lowest version that
//!   describes it, so that releases that read only version 1 keep reading them. Version 3 adds
//!   `repeats.rrule`, `skipped` and `moved`, written only for a task that uses one of them.
//!   Version 4 adds `added` and `floating`, likewise. Version 5 adds `notify.destinations`,
//!   likewise. A version above
//!   [`STORED_VERSION`] is refused as
//!   [`StoredTaskError::Newer`], which callers treat as "not mine to read yet" (a rolling
//!   upgrade has a newer instance that reads it), never as corrupt.
//!
//! The API's output ([`TaskSpec::to_json`]) is this same shape without `v`: one mapping serves
//! both, so what the API shows and what is stored cannot drift apart.

use jiff::civil::{Date, Weekday};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    DestinationId, EmailAddress, MissedPolicy, Notify, PhoneNumber, TaskName, TaskSpec, WEEKDAYS,
};
use crate::recurrence::rrule::Rrule;
use crate::recurrence::{Ends, Exceptions, On, Period, Recurrence, Repeats, Schedule, TaskZone};

/// The newest stored shape this release writes and reads.
pub const STORED_VERSION: u32 = 5;

/// Why a stored task could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredTaskError {
    /// Written by a newer release: leave it for an instance that reads it.
    #[error(
        "the stored task has shape version {found}, newer than this release reads (up to \
         {STORED_VERSION}): a newer release wrote it"
    )]
    Newer { found: u64 },
    /// Not a shape any release wrote.
    #[error("the stored task is not in a shape this release reads: {0}")]
    Corrupt(String),
}

impl TaskSpec {
    /// The stored form (see the module doc), in the lowest version that describes the task:
    /// 1, 2 for an urgent, nagging or escalating task, 3 for one that repeats by an RFC 5545
    /// rule or skips or moves an occurrence, 4 for one that adds one or floats, 5 for one that
    /// notifies destinations (so that a release that knows none of these holds it, as newer, rather than
    /// reading it as corrupt).
    pub fn to_stored(&self) -> Value {
        self.shape(self.stored_version()).into_value()
    }

    /// The lowest stored version that describes this task.
    pub fn stored_version(&self) -> u32 {
        let exceptions = &self.schedule.exceptions;
        if !self.notify.destinations.is_empty() {
            5
        } else if self.floating || !exceptions.added.is_empty() {
            4
        } else if matches!(self.schedule.repeats, Some(Recurrence::Rule(_)))
            || !exceptions.is_empty()
        {
            3
        } else if self.urgent || self.nag.is_some() || !self.escalate.is_empty() {
            2
        } else {
            1
        }
    }

    /// Reads a task written by [`TaskSpec::to_stored`] of this release or an earlier one.
    pub fn from_stored(value: &Value) -> Result<TaskSpec, StoredTaskError> {
        match value.get("v") {
            None => {}
            Some(v) => match v.as_u64() {
                Some(found) if found > u64::from(STORED_VERSION) => {
                    return Err(StoredTaskError::Newer { found })
                }
                Some(_) => {}
                None => return Err(StoredTaskError::Corrupt(format!("`v` is {v}"))),
            },
        }
        if let Some(unknown) = value
            .as_object()
            .and_then(|fields| fields.keys().find(|k| !FIELDS.contains(&k.as_str())))
        {
            return Err(StoredTaskError::Corrupt(format!(
                "unknown field `{unknown}`"
            )));
        }
        TaskFields::deserialize(value)
            .map_err(|e| StoredTaskError::Corrupt(e.to_string()))?
            .into_spec()
            .map_err(StoredTaskError::Corrupt)
    }

    /// The API's camelCase JSON shape of this task's fields (without id, owner or dates): the
    /// stored form without its version.
    pub fn to_json(&self) -> Value {
        self.shape(0).into_value()
    }

    /// The task's fields as the API answers them (the type that writes them also documents
    /// them in the OpenAPI document).
    pub fn fields(&self) -> TaskFields {
        self.shape(0)
    }

    fn shape(&self, v: u32) -> TaskFields {
        let schedule = &self.schedule;
        TaskFields {
            v,
            name: self.name.as_str().to_owned(),
            description: self.description.clone(),
            start_date: schedule.start.to_string(),
            time_zone: schedule.zone.name().to_owned(),
            repeats: schedule.repeats.as_ref().map(|r| match r {
                Recurrence::Rule(rule) => RepeatsShape::Rule(RuleShape {
                    rrule: rule.to_string(),
                }),
                Recurrence::Every(r) => RepeatsShape::Every(EveryShape {
                    frequency: r.frequency,
                    period: r.period.into(),
                    on: match &r.on {
                        On::Start => None,
                        On::Weekdays(days) => Some(OnShape::Weekdays(
                            days.iter().map(|d| weekday_name(*d).to_owned()).collect(),
                        )),
                        On::MonthDays(days) => Some(OnShape::MonthDays(days.clone())),
                    },
                    ends: match r.ends {
                        Ends::Never => None,
                        ref ends => Some(EndsShape::from(ends)),
                    },
                }),
            }),
            notify: NotifyShape {
                email: self.notify.email.as_ref().map(|e| e.as_str().to_owned()),
                sms: self.notify.sms.as_ref().map(|p| p.as_str().to_owned()),
                push: self.notify.push,
                in_app: self.notify.in_app,
                webhook: Some(self.notify.webhook),
                destinations: self
                    .notify
                    .destinations
                    .iter()
                    .map(|d| d.as_str().to_owned())
                    .collect(),
            },
            missed: match self.missed {
                MissedPolicy::FireOnceLate => MissedShape::FireOnceLate,
                MissedPolicy::FireAll => MissedShape::FireAll,
                MissedPolicy::Skip { limit } => MissedShape::Skip {
                    limit_seconds: limit.as_secs(),
                },
            },
            urgent: self.urgent,
            nag: self.nag.map(|n| NagShape {
                every_minutes: n.every_minutes,
                times: n.times,
            }),
            escalate: self
                .escalate
                .iter()
                .map(|e| EscalationShape {
                    after_minutes: e.after_minutes,
                    channel: e.channel,
                })
                .collect(),
            skipped: schedule
                .exceptions
                .skipped
                .iter()
                .map(Timestamp::to_string)
                .collect(),
            moved: schedule
                .exceptions
                .moved
                .iter()
                .map(|(from, to)| MovedShape {
                    from: from.to_string(),
                    to: to.to_string(),
                })
                .collect(),
            added: schedule
                .exceptions
                .added
                .iter()
                .map(Timestamp::to_string)
                .collect(),
            floating: self.floating,
        }
    }
}

/// The weekday's name in the API (`monday`).
fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(d, _)| *d == day)
        .map_or("monday", |(_, name)| name)
}

// The canonical form: stored with `v` (0, absent, or 1), answered by the API without it. Doc
// comments (`///`) here are the OpenAPI document's descriptions, written for API users. Unknown
// fields are refused by `from_stored` ([`FIELDS`]), not by serde: `deny_unknown_fields` would
// document `additionalProperties: false`, which the API's task (these fields and its id) breaks.
/// A task's fields as Chime understood them: the canonical form of the body.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskFields {
    #[serde(default, skip_serializing_if = "is_zero")]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    v: u32,
    /// 1 to 200 characters.
    #[cfg_attr(feature = "openapi", schema(example = "Task Name"))]
    name: String,
    /// `null` for none.
    description: Option<String>,
    /// The first occurrence, RFC 3339 in UTC.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01T09:00:00Z"))]
    start_date: String,
    /// An IANA name, or the fixed offset `startDate` was written with (`+02:00`).
    #[cfg_attr(feature = "openapi", schema(example = "Europe/Berlin"))]
    time_zone: String,
    /// `null` for a one-time task.
    repeats: Option<RepeatsShape>,
    notify: NotifyShape,
    missed: MissedShape,
    /// Delivered at once even inside the owner's quiet hours (absent: false).
    #[serde(default, skip_serializing_if = "is_false")]
    urgent: bool,
    /// Sent again until acknowledged (absent: once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nag: Option<NagShape>,
    /// Channels held back from the first send, used in order if the occurrence is still not
    /// acknowledged that many minutes after it fired (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    escalate: Vec<EscalationShape>,
    /// Occurrences that do not fire, by the instant the rule gives them (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<String>,
    /// Occurrences that fire at another instant, by the instant the rule gives them (absent:
    /// none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    moved: Vec<MovedShape>,
    /// Occurrences in addition to the rule's, each due once (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    added: Vec<String>,
    /// The zone follows the owner's settings (absent: false).
    #[serde(default, skip_serializing_if = "is_false")]
    floating: bool,
}

/// One occurrence moved: from the instant the rule gives it to the one it fires at.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskMoved))]
#[serde(deny_unknown_fields)]
pub struct MovedShape {
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-17T08:00:00Z"))]
    from: String,
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-18T08:00:00Z"))]
    to: String,
}

/// One escalation step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskEscalation))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EscalationShape {
    /// Minutes after the occurrence fired.
    after_minutes: u32,
    channel: crate::event::Channel,
}

/// Repeat a reminder until it is acknowledged.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskNag))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NagShape {
    /// Minutes between repeats.
    every_minutes: u32,
    /// Repeats at most.
    times: u32,
}

/// Every field of [`TaskFields`] as stored.
const FIELDS: [&str; 15] = [
    "v",
    "name",
    "description",
    "startDate",
    "timeZone",
    "repeats",
    "notify",
    "missed",
    "urgent",
    "nag",
    "escalate",
    "skipped",
    "moved",
    "added",
    "floating",
];

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How a task repeats: in the design's fields, or as an RFC 5545 rule.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskRepeats))]
#[serde(untagged)]
pub enum RepeatsShape {
    Every(EveryShape),
    Rule(RuleShape),
}

/// A task that repeats by an RFC 5545 rule.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskRepeatsRule))]
#[serde(deny_unknown_fields)]
pub struct RuleShape {
    /// The rule in canonical form: parts in a fixed order, defaults (`INTERVAL=1`, `WKST=MO`)
    /// left out.
    #[cfg_attr(feature = "openapi", schema(example = "FREQ=MONTHLY;BYDAY=2TU"))]
    rrule: String,
}

/// A task that repeats in the design's fields.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskRepeatsEvery))]
#[serde(deny_unknown_fields)]
pub struct EveryShape {
    /// Every N periods, 1 to 1000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    frequency: u32,
    period: PeriodShape,
    /// `null`: the start's weekday (week) or day of the month (month).
    on: Option<OnShape>,
    /// `null`: never.
    ends: Option<EndsShape>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskPeriod))]
#[serde(rename_all = "lowercase")]
pub enum PeriodShape {
    Day,
    Week,
    Month,
    Year,
}

impl From<Period> for PeriodShape {
    fn from(p: Period) -> Self {
        match p {
            Period::Day => PeriodShape::Day,
            Period::Week => PeriodShape::Week,
            Period::Month => PeriodShape::Month,
            Period::Year => PeriodShape::Year,
        }
    }
}

impl From<PeriodShape> for Period {
    fn from(p: PeriodShape) -> Self {
        match p {
            PeriodShape::Day => Period::Day,
            PeriodShape::Week => Period::Week,
            PeriodShape::Month => Period::Month,
            PeriodShape::Year => Period::Year,
        }
    }
}

/// Days of the month (1 to 31, or -1 to -31 from the end), sorted; or weekdays (`monday`),
/// Monday first.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskOn))]
#[serde(untagged)]
pub enum OnShape {
    MonthDays(Vec<i8>),
    Weekdays(Vec<String>),
}

/// After a number of occurrences, or on a last local date (`2025-01-31`) or instant.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskEnds))]
#[serde(untagged)]
pub enum EndsShape {
    Count(u32),
    // A local date (`2025-01-31`) or an instant (RFC 3339).
    Text(String),
}

impl From<&Ends> for EndsShape {
    fn from(ends: &Ends) -> Self {
        match ends {
            Ends::AfterCount(n) => EndsShape::Count(*n),
            Ends::OnDate(date) => EndsShape::Text(date.to_string()),
            Ends::AtInstant(at) => EndsShape::Text(at.to_string()),
            // Written as `null`; never reaches here.
            Ends::Never => EndsShape::Count(0),
        }
    }
}

/// The channels each occurrence is delivered on.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskNotify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyShape {
    email: Option<String>,
    /// E.164.
    sms: Option<String>,
    push: bool,
    in_app: bool,
    /// Delivered to the owner's webhook endpoint.
    // Absent in what the first release stored (it had no webhooks): off.
    #[serde(default)]
    webhook: Option<bool>,
    /// The owner's destinations it notifies, by id (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    destinations: Vec<String>,
}

/// What happens to occurrences missed during downtime.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskMissed))]
#[serde(tag = "policy", rename_all = "camelCase", deny_unknown_fields)]
pub enum MissedShape {
    FireOnceLate,
    FireAll,
    Skip {
        // utoipa does not read `rename_all_fields`.
        #[serde(rename = "limitSeconds")]
        limit_seconds: i64,
    },
}

impl TaskFields {
    fn into_value(self) -> Value {
        // A struct of strings, numbers and options always serializes.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The task, checking what the types cannot: the invariants every release kept (so a
    /// hand-edited or damaged row is refused), not the API's input rules.
    fn into_spec(self) -> Result<TaskSpec, String> {
        let name = (!self.name.trim().is_empty())
            .then_some(TaskName(self.name))
            .ok_or("`name` is empty")?;
        let start: Timestamp = self
            .start_date
            .parse()
            .map_err(|e| format!("`startDate` {:?}: {e}", self.start_date))?;
        let zone = TaskZone::parse(&self.time_zone).map_err(|e| format!("`timeZone`: {e}"))?;
        let repeats = self
            .repeats
            .map(RepeatsShape::into_recurrence)
            .transpose()?;
        let notify = self.notify.into_notify()?;
        let escalate: Vec<super::Escalation> = self
            .escalate
            .iter()
            .map(|e| super::Escalation {
                after_minutes: e.after_minutes,
                channel: e.channel,
            })
            .collect();
        super::Escalation::check(&escalate, &notify)
            .map_err(|(i, field, why)| format!("`escalate[{i}].{field}`: {why}"))?;
        let missed = match self.missed {
            MissedShape::FireOnceLate => MissedPolicy::FireOnceLate,
            MissedShape::FireAll => MissedPolicy::FireAll,
            MissedShape::Skip { limit_seconds } if limit_seconds > 0 => MissedPolicy::Skip {
                limit: SignedDuration::from_secs(limit_seconds),
            },
            MissedShape::Skip { limit_seconds } => {
                return Err(format!("`missed.limitSeconds` is {limit_seconds}"))
            }
        };
        Ok(TaskSpec {
            name,
            description: self.description,
            schedule: Schedule {
                start,
                zone,
                repeats,
                exceptions: Exceptions {
                    skipped: self
                        .skipped
                        .iter()
                        .map(|t| t.parse().map_err(|e| format!("`skipped` {t:?}: {e}")))
                        .collect::<Result<_, String>>()?,
                    moved: self
                        .moved
                        .iter()
                        .map(|m| {
                            let read = |t: &String| {
                                t.parse::<Timestamp>()
                                    .map_err(|e| format!("`moved` {t:?}: {e}"))
                            };
                            Ok((read(&m.from)?, read(&m.to)?))
                        })
                        .collect::<Result<_, String>>()?,
                    added: self
                        .added
                        .iter()
                        .map(|t| t.parse().map_err(|e| format!("`added` {t:?}: {e}")))
                        .collect::<Result<_, String>>()?,
                },
            },
            notify,
            missed,
            urgent: self.urgent,
            nag: match self.nag {
                None => None,
                Some(n) if n.every_minutes > 0 && n.times > 0 => Some(super::Nag {
                    every_minutes: n.every_minutes,
                    times: n.times,
                }),
                Some(n) => return Err(format!("`nag` is {n:?}")),
            },
            escalate,
            floating: self.floating,
        })
    }
}

impl RepeatsShape {
    fn into_recurrence(self) -> Result<Recurrence, String> {
        match self {
            RepeatsShape::Every(every) => every.into_repeats().map(Recurrence::Every),
            RepeatsShape::Rule(rule) => Rrule::parse(&rule.rrule)
                .map(Recurrence::Rule)
                .map_err(|e| format!("`repeats.rrule`: {e}")),
        }
    }
}

impl EveryShape {
    fn into_repeats(self) -> Result<Repeats, String> {
        if self.frequency == 0 {
            return Err("`repeats.frequency` is 0".into());
        }
        let period = Period::from(self.period);
        let on = match (period, self.on) {
            (_, None) => On::Start,
            (Period::Week, Some(OnShape::Weekdays(names))) if !names.is_empty() => On::Weekdays(
                names
                    .iter()
                    .map(|name| {
                        WEEKDAYS
                            .iter()
                            .find(|(_, n)| n == name)
                            .map(|(d, _)| *d)
                            .ok_or_else(|| format!("`repeats.on` holds {name:?}"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Period::Month, Some(OnShape::MonthDays(days)))
                if !days.is_empty() && days.iter().all(|d| (1..=31).contains(&d.abs())) =>
            {
                On::MonthDays(days)
            }
            (period, Some(_)) => {
                return Err(format!(
                    "`repeats.on` does not hold days of a {}",
                    period.as_str()
                ))
            }
        };
        let ends = match self.ends {
            None => Ends::Never,
            Some(EndsShape::Count(0)) => return Err("`repeats.ends` is 0".into()),
            Some(EndsShape::Count(n)) => Ends::AfterCount(n),
            Some(EndsShape::Text(text)) => match text.parse::<Date>() {
                Ok(date) if text.len() == 10 => Ends::OnDate(date),
                _ => Ends::AtInstant(
                    text.parse()
                        .map_err(|e| format!("`repeats.ends` {text:?}: {e}"))?,
                ),
            },
        };
        Ok(Repeats {
            frequency: self.frequency,
            period,
            on,
            ends,
        })
    }
}

impl NotifyShape {
    fn into_notify(self) -> Result<Notify, String> {
        let email = match self.email {
            Some(e) if e.contains('@') => Some(EmailAddress(e)),
            Some(e) => return Err(format!("`notify.email` {:?} has no `@`", e.len())),
            None => None,
        };
        let sms = self
            .sms
            .map(|s| PhoneNumber::from_stored(s).ok_or("`notify.sms` is not in E.164"))
            .transpose()?;
        Ok(Notify {
            email,
            sms,
            push: self.push,
            in_app: self.in_app,
            webhook: self.webhook.unwrap_or(false),
            destinations: self
                .destinations
                .iter()
                .map(|d| {
                    DestinationId::parse(d)
                        .ok_or_else(|| format!("`notify.destinations` holds {:?}", d.len()))
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod tests {
    use serde_json::json;

    use super::*;

    /// What each release stored, exactly (from its `to_json`): the first release (no webhook),
    /// then every release until the stored form got its version, then version 1.
    fn fixtures() -> Vec<(&'static str, Value)> {
        vec![
            (
                "v0, first release: no notify.webhook",
                json!({
                    "name": "Stand-up",
                    "description": null,
                    "startDate": "2026-01-05T09:00:00Z",
                    "timeZone": "Europe/Berlin",
                    "repeats": {"frequency": 1, "period": "week", "on": ["monday", "friday"], "ends": null},
                    "notify": {"email": "ada@example.com", "sms": "+14075551212", "push": false, "inApp": true},
                    "missed": {"policy": "fireOnceLate"}
                }),
            ),
            (
                "v0, with notify.webhook",
                json!({
                    "name": "Rent",
                    "description": "Pay it",
                    "startDate": "2026-01-01T08:30:00.5Z",
                    "timeZone": "+02:00",
                    "repeats": {"frequency": 2, "period": "month", "on": [-1, 1], "ends": "2027-01-31"},
                    "notify": {"email": null, "sms": null, "push": true, "inApp": false, "webhook": true},
                    "missed": {"policy": "skip", "limitSeconds": 3600}
                }),
            ),
            (
                "v1",
                json!({
                    "v": 1,
                    "name": "Birthday",
                    "description": null,
                    "startDate": "2026-03-01T00:00:00Z",
                    "timeZone": "UTC",
                    "repeats": {"frequency": 1, "period": "year", "on": null, "ends": 10},
                    "notify": {"email": null, "sms": null, "push": false, "inApp": true, "webhook": false},
                    "missed": {"policy": "fireAll"}
                }),
            ),
            (
                "v2, urgent",
                json!({
                    "v": 2,
                    "name": "Pills",
                    "description": null,
                    "startDate": "2026-03-01T07:00:00Z",
                    "timeZone": "Europe/Berlin",
                    "repeats": {"frequency": 1, "period": "day", "on": null, "ends": null},
                    "notify": {"email": null, "sms": "+14075551212", "push": true, "inApp": true, "webhook": false},
                    "missed": {"policy": "fireOnceLate"},
                    "urgent": true
                }),
            ),
            (
                "v2, nagging",
                json!({
                    "v": 2,
                    "name": "Pills",
                    "description": null,
                    "startDate": "2026-03-01T07:00:00Z",
                    "timeZone": "Europe/Berlin",
                    "repeats": null,
                    "notify": {"email": null, "sms": null, "push": true, "inApp": true, "webhook": false},
                    "missed": {"policy": "fireOnceLate"},
                    "nag": {"everyMinutes": 10, "times": 3}
                }),
            ),
            (
                "v2, escalating",
                json!({
                    "v": 2,
                    "name": "Take the bins out",
                    "description": null,
                    "startDate": "2026-03-01T18:00:00Z",
                    "timeZone": "Europe/London",
                    "repeats": {"frequency": 1, "period": "week", "on": ["sunday"], "ends": null},
                    "notify": {"email": "me@example.com", "sms": "+14075551212", "push": true, "inApp": true, "webhook": false},
                    "missed": {"policy": "fireOnceLate"},
                    "escalate": [
                        {"afterMinutes": 1, "channel": "sms"},
                        {"afterMinutes": 2, "channel": "email"}
                    ]
                }),
            ),
            (
                "v3, by a rule, nagging",
                json!({
                    "v": 3,
                    "name": "Book club",
                    "description": null,
                    "startDate": "2026-03-10T17:30:00Z",
                    "timeZone": "Europe/Berlin",
                    "repeats": {"rrule": "FREQ=MONTHLY;BYDAY=2TU"},
                    "notify": {"email": null, "sms": null, "push": true, "inApp": true, "webhook": false},
                    "missed": {"policy": "fireOnceLate"},
                    "nag": {"everyMinutes": 10, "times": 3}
                }),
            ),
            (
                "v1, one-time, ends at an instant elsewhere",
                json!({
                    "v": 1,
                    "name": "Dentist",
                    "description": "Line one\nline two",
                    "startDate": "2026-02-10T14:15:00Z",
                    "timeZone": "America/New_York",
                    "repeats": null,
                    "notify": {"email": null, "sms": null, "push": false, "inApp": true, "webhook": false},
                    "missed": {"policy": "fireOnceLate"}
                }),
            ),
            (
                "v4, floating, with an added occurrence",
                json!({
                    "v": 4,
                    "name": "Vitamins",
                    "description": null,
                    "startDate": "2026-03-10T08:00:00Z",
                    "timeZone": "Europe/Berlin",
                    "repeats": {"frequency": 1, "period": "day"},
                    "notify": {"email": null, "sms": null, "push": false, "inApp": true, "webhook": false},
                    "missed": {"policy": "fireOnceLate"},
                    "added": ["2026-03-12T20:00:00Z"],
                    "floating": true
                }),
            ),
            (
                "v5, notifying two destinations",
                json!({
                    "v": 5,
                    "name": "Stand-up",
                    "description": null,
                    "startDate": "2026-03-10T09:30:00Z",
                    "timeZone": "Europe/Berlin",
                    "repeats": {"frequency": 1, "period": "week", "on": ["monday"], "ends": null},
                    "notify": {"email": null, "sms": null, "push": false, "inApp": true, "webhook": false,
                               "destinations": ["dst_0a1b2c3d", "dst_ff"]},
                    "missed": {"policy": "fireOnceLate"}
                }),
            ),
        ]
    }

    #[test]
    fn every_shape_a_release_stored_is_read_as_the_task_the_api_parses_from_it() {
        for (what, stored) in fixtures() {
            let read = TaskSpec::from_stored(&stored).unwrap_or_else(|e| panic!("{what}: {e}"));
            // The lenient parser reads every stored shape too; both agree on every field.
            let parsed = TaskSpec::parse(&stored).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(read, parsed, "{what}");
        }
    }

    #[test]
    fn the_stored_form_round_trips_and_carries_its_version() {
        for (what, stored) in fixtures() {
            let spec = TaskSpec::from_stored(&stored).unwrap();
            let written = spec.to_stored();
            assert_eq!(
                written["v"],
                json!(if !spec.notify.destinations.is_empty() {
                    5
                } else if spec.floating || !spec.schedule.exceptions.added.is_empty() {
                    4
                } else if matches!(spec.schedule.repeats, Some(Recurrence::Rule(_))) {
                    3
                } else if spec.urgent || spec.nag.is_some() || !spec.escalate.is_empty() {
                    2
                } else {
                    1
                }),
                "{what}"
            );
            assert_eq!(TaskSpec::from_stored(&written).unwrap(), spec, "{what}");
        }
    }

    #[test]
    fn the_api_shape_is_the_stored_form_without_its_version() {
        for (what, stored) in fixtures() {
            let spec = TaskSpec::from_stored(&stored).unwrap();
            let mut written = spec.to_stored();
            written.as_object_mut().unwrap().remove("v");
            assert_eq!(spec.to_json(), written, "{what}");
            assert!(spec.to_json().get("v").is_none());
        }
    }

    #[test]
    fn a_newer_version_is_refused_as_newer_not_as_corrupt() {
        let mut stored = fixtures()[2].1.clone();
        stored["v"] = json!(STORED_VERSION + 1);
        stored["colour"] = json!("red");
        assert_eq!(
            TaskSpec::from_stored(&stored),
            Err(StoredTaskError::Newer {
                found: u64::from(STORED_VERSION + 1)
            })
        );
    }

    #[test]
    fn unknown_fields_missing_fields_and_wrong_types_are_corrupt() {
        let base = fixtures()[2].1.clone();
        let mut cases = Vec::new();
        let mut extra = base.clone();
        extra["colour"] = json!("red");
        cases.push(("an unknown field", extra));
        let mut extra_nested = base.clone();
        extra_nested["notify"]["fax"] = json!(true);
        cases.push(("an unknown nested field", extra_nested));
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove("startDate");
        cases.push(("no startDate", missing));
        let mut lenient = base.clone();
        lenient["repeats"]["frequency"] = json!("2");
        cases.push(("a frequency as a string (the API's leniency)", lenient));
        let mut spelled = base.clone();
        spelled["repeats"]["period"] = json!("Yearly");
        cases.push(("a period spelled as the API allows", spelled));
        let mut weekdays_on_month = base.clone();
        weekdays_on_month["repeats"] =
            json!({"frequency": 1, "period": "month", "on": ["monday"], "ends": null});
        cases.push(("weekdays for a month", weekdays_on_month));
        let mut bad_phone = base.clone();
        bad_phone["notify"]["sms"] = json!("4075551212");
        cases.push(("a national phone number", bad_phone));
        let mut bad_v = base;
        bad_v["v"] = json!("1");
        cases.push(("a version as a string", bad_v));
        for (what, stored) in cases {
            assert!(
                matches!(
                    TaskSpec::from_stored(&stored),
                    Err(StoredTaskError::Corrupt(_))
                ),
                "{what}: {:?}",
                TaskSpec::from_stored(&stored)
            );
        }
    }

    #[test]
    fn a_task_the_api_accepts_is_stored_and_read_back_equal() {
        let bodies = [
            json!({"name": "a", "startDate": "2026-01-01 09:00:00.00+0000"}),
            json!({"name": " b ", "startDate": "2026-01-01T09:00:00+02:00", "repeats": {"frequency": "3", "period": "Weekly", "on": "mo, fri", "ends": "2026-06-30"}, "notify": {"email": " x@example.com ", "sms": 4075551212_u64, "webhook": true}}),
            json!({"name": "c", "startDate": "2026-01-31T23:59:59.123456789Z", "timeZone": "Asia/Kolkata", "repeats": {"period": "months", "on": [31, "last", 15], "ends": 12}, "missed": {"policy": "SKIP", "limitSeconds": 60}}),
            json!({"name": "d", "startDate": "2026-01-31T10:00:00-05:00", "repeats": {"period": "day", "ends": "2026-02-28T10:00:00-05:00"}, "notify": {"inApp": false, "push": true}, "missed": {"policy": "fireAll"}}),
        ];
        for body in bodies {
            let spec = TaskSpec::parse(&body).unwrap();
            assert_eq!(
                TaskSpec::from_stored(&spec.to_stored()).unwrap(),
                spec,
                "{body}"
            );
        }
    }
}
