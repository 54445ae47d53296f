//! A task: its fields as types that cannot hold a bad value, read once from the API's body.
//!
//! A task has two JSON forms, kept apart on purpose:
//! - **Input** ([`TaskSpec::parse`], module `input`): the design's POST body, read leniently,
//!   once, at the HTTP edge. Serde reads it into [`TaskIn`] (module `body`), the type the
//!   OpenAPI document's `TaskBody` schema is derived from, so what is documented and what is
//!   read cannot drift apart. It turns the body into a [`TaskSpec`] whose every field is valid,
//!   or into [`FieldErrors`] listing every refused field (not only the first) by JSON pointer,
//!   with the value as received. It accepts the design's body and a few extensions; fields it
//!   does not know are ignored, so older servers accept newer clients' bodies.
//! - **Stored** ([`TaskSpec::to_stored`], [`TaskSpec::from_stored`], module `stored`): what
//!   task records, schedule rows, events and pending deliveries carry. Strict and versioned, so
//!   that tightening the input rules never makes a stored task unreadable. The API's output
//!   ([`TaskSpec::to_json`]) is the stored form without its version.
//!
//! What the input accepts:
//!
//! - `name` (required): a string, trimmed, 1 to 200 characters, no control characters.
//! - `description`: a string of at most 4000 characters, trimmed; `null`, absent or blank is
//!   none.
//! - `startDate` (required): a date and time with an offset. The design's form
//!   `2024-08-12 11:24:53.00+0000` (a space or `T` between date and time; seconds and up to
//!   nine fractional digits optional, kept to the microsecond; offset `+0000`, `+00:00`, `+00` or `Z`) and RFC 3339
//!   (`2024-08-12T13:24:53+02:00`). A time without an offset is refused: the instant would be
//!   a guess.
//! - `timeZone`: an IANA name (`Europe/Berlin`) or an offset `±HH:MM`; the wall clock the
//!   rule follows (see [`crate::recurrence`]). Absent or `null`: the fixed offset `startDate`
//!   was written with.
//! - `repeats`: absent or `null` for a one-time task, else an object:
//!   - `frequency`: a whole number 1 to 1000, as a number or a numeric string; absent is 1.
//!   - `period` (required): `day`, `week`, `month` or `year`, in any case; the plurals
//!     (`weeks`) and adverbs (`weekly`) are accepted too.
//!   - `on`: a comma- or space-separated string (`"monday, tuesday"`) or an array. For `week`,
//!     weekdays by full name, three letters (`mon`) or two (`mo`, as in RFC 5545), in any
//!     case. As a leniency for typing slips (the design's own example says `mmonday`), a token
//!     of at least five letters that is one edit (an insertion, deletion, substitution or swap
//!     of neighbours) away from exactly one full weekday name is read as that weekday. For
//!     `month`, days 1 to 31, -1 to -31 counted from the end, or `last` (-1), as numbers or
//!     numeric strings. Duplicates are dropped and the days sorted (weekdays Monday first).
//!     Absent, `null`, `""` or `[]`: the start's weekday or day of month. `day` and `year`
//!     take no `on`.
//!   - `ends`: absent, `null` or `""`: never; a whole number 1 to 100000 (or a numeric string):
//!     after that many occurrences; a date `2025-01-31`: on that local date, inclusive; a date
//!     and time (as `startDate`): at that instant, inclusive.
//! - `notify`: which channels deliver each occurrence. `email`: an address (one `@`, a domain
//!   with a dot, no spaces); `sms`: a phone number as a string or number (digits; spaces,
//!   dashes, dots and parentheses ignored; an optional leading `+`), valid in its country's
//!   numbering plan (libphonenumber's metadata) and kept in E.164 (`+14075551212`). With `+` it
//!   carries its country code; without, it is read as a national number of the default
//!   region ([`ParseOptions`], US unless configured: `4075551212` is `+14075551212`), or as
//!   international after that region's international prefix (`011` in the US); `webhook`: a
//!   boolean, default `false` (the owner's configured endpoint); `push`: a boolean,
//!   default `false`; `inApp`: a boolean, default `true`; `destinations`: absent, `null` or an
//!   array of at most 10 distinct destination ids of the owner's (`dst_…`: ntfy, Gotify,
//!   Telegram, Slack, Discord or Matrix), default none. An empty `email` or `sms` is absent.
//! - `missed`: what to do with occurrences missed while Chime was down. `policy`:
//!   `fireOnceLate` (the default, also when `policy` is absent), `fireAll` or `skip`;
//!   `limitSeconds` (1 to 31536000) is required with `skip` and refused otherwise.
//! - `urgent`: a boolean, default `false`; an urgent task's email, SMS and push go out at once
//!   even inside the owner's quiet hours.
//! - `nag`: `{"everyMinutes": 1..=1440, "times": 1..=20}` or absent/null: while an occurrence
//!   is not acknowledged, it is sent again every `everyMinutes`, at most `times` more times.
//! - `escalate`: absent, `null` or an array of at most 4 steps `{"afterMinutes": 1..=1440,
//!   "channel": "email" | "sms" | "push" | "webhook"}` (channel in any case), each later than
//!   the one before, each channel once and one the task notifies on. Those channels are held
//!   back when an occurrence fires; each step sends it on its channel if it is still not
//!   acknowledged that many minutes after it fired.
//!
//! [`TaskSpec::to_json`] writes the API's canonical shape of the same fields, which parses back
//! to an equal `TaskSpec`.

use jiff::civil::Weekday;
use jiff::Timestamp;
use serde_json::Value;

use crate::error::FieldErrors;
use crate::recurrence::rrule::Rrule;
use crate::recurrence::{Ends, ExceptionError, Recurrence, Repeats, Schedule};

mod body;
mod datetime;
mod input;
mod phone;
pub mod quick;
mod stored;

#[cfg(feature = "openapi")]
pub use body::refine_openapi;
pub use body::{EscalationIn, MissedIn, NotifyIn, RepeatsIn, TaskIn};
pub use input::{MAX_ADDED, MAX_DESCRIPTION_CHARS, MAX_DESTINATIONS, MAX_MOVED, MAX_SKIPPED};
pub use phone::PhoneNumber;
use stored::EndsShape;
pub use stored::{StoredTaskError, TaskFields, STORED_VERSION};

/// A task, every field valid. Serializes to the API's camelCase shape; that output parses
/// back to an equal `TaskSpec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub name: TaskName,
    pub description: Option<String>,
    pub schedule: Schedule,
    pub notify: Notify,
    pub missed: MissedPolicy,
    /// Delivered at once even inside the owner's quiet hours.
    pub urgent: bool,
    /// Sent again until acknowledged.
    pub nag: Option<Nag>,
    /// Channels held back from the first send and used only if the occurrence is still not
    /// acknowledged some minutes after it fired, in order of `after_minutes`.
    pub escalate: Vec<Escalation>,
    /// The schedule's zone follows the owner's settings ("09:00 wherever I am"): when they
    /// change zone, the task is saved again on the new zone at the same local times.
    pub floating: bool,
}

impl TaskSpec {
    /// Whether `channel` waits for an escalation step instead of going out when an
    /// occurrence fires.
    pub fn escalates_to(&self, channel: crate::event::Channel) -> bool {
        self.escalate.iter().any(|s| s.channel == channel)
    }

    /// When escalation step `step` (0-based) of an occurrence that fired at `fired` is due,
    /// or `None` when the task has no such step.
    pub fn escalation_at(&self, fired: jiff::Timestamp, step: usize) -> Option<jiff::Timestamp> {
        let s = self.escalate.get(step)?;
        Some(fired.saturating_add(s.after()).unwrap_or(fired))
    }
}

/// One escalation step: if an occurrence is still not acknowledged `after_minutes` after it
/// fired, it is sent on `channel` (which the first send left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    /// 1 to [`Escalation::MAX_AFTER_MINUTES`], each step later than the one before.
    pub after_minutes: u32,
    /// Email, SMS, push or webhook, one the task notifies on; each at most once.
    pub channel: crate::event::Channel,
}

impl Escalation {
    pub const MAX_AFTER_MINUTES: u32 = 1440;
    /// One step per external channel.
    pub const MAX_STEPS: usize = 4;

    /// The time from firing to this step.
    pub fn after(self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_mins(i64::from(self.after_minutes))
    }

    /// Why `steps` cannot be a task's escalation with `notify`, if they cannot: the rules
    /// both the API's parser and the stored form's reader keep. `Err((index, field, why))`.
    pub fn check(
        steps: &[Escalation],
        notify: &Notify,
    ) -> Result<(), (usize, &'static str, String)> {
        use crate::event::Channel;
        if steps.len() > Self::MAX_STEPS {
            return Err((
                Self::MAX_STEPS,
                "",
                format!("at most {} steps", Self::MAX_STEPS),
            ));
        }
        for (i, step) in steps.iter().enumerate() {
            if !(1..=Self::MAX_AFTER_MINUTES).contains(&step.after_minutes) {
                return Err((
                    i,
                    "afterMinutes",
                    format!(
                        "`afterMinutes` is a whole number from 1 to {}",
                        Self::MAX_AFTER_MINUTES
                    ),
                ));
            }
            if i > 0 && step.after_minutes <= steps[i - 1].after_minutes {
                return Err((
                    i,
                    "afterMinutes",
                    "each step's `afterMinutes` is later than the one before".to_owned(),
                ));
            }
            let notified = match step.channel {
                Channel::Email => notify.email.is_some(),
                Channel::Sms => notify.sms.is_some(),
                Channel::Push => notify.push,
                Channel::Webhook => notify.webhook,
                // A destination's service is known to the owner's settings, not to the task.
                Channel::Ntfy
                | Channel::Gotify
                | Channel::Telegram
                | Channel::Slack
                | Channel::Discord
                | Channel::Matrix => false,
                Channel::InApp => {
                    return Err((i, "channel", "the in-app inbox is never held back: `channel` is `email`, `sms`, `push` or `webhook`".to_owned()))
                }
            };
            if !notified {
                return Err((
                    i,
                    "channel",
                    format!(
                        "the task does not notify by {}: set it in `notify` to escalate to it",
                        step.channel.as_str()
                    ),
                ));
            }
            if steps[..i].iter().any(|s| s.channel == step.channel) {
                return Err((i, "channel", "each channel is one step at most".to_owned()));
            }
        }
        Ok(())
    }
}

/// Repeat an occurrence's notification until its owner acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nag {
    /// Minutes between repeats, 1 to [`Nag::MAX_EVERY_MINUTES`].
    pub every_minutes: u32,
    /// Repeats at most, 1 to [`Nag::MAX_TIMES`].
    pub times: u32,
}

impl Nag {
    pub const MAX_EVERY_MINUTES: u32 = 1440;
    pub const MAX_TIMES: u32 = 20;

    /// The time between repeats.
    pub fn every(self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_mins(i64::from(self.every_minutes))
    }
}

/// A value refused by one of this module's `parse` constructors, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// 1 to 200 characters after trimming; no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskName(String);

impl TaskName {
    pub const MAX_CHARS: usize = 200;

    /// Trims `s` and checks it.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let len = s.chars().count();
        if len == 0 {
            return Err(InvalidValue("a task name must not be empty".into()));
        }
        if len > Self::MAX_CHARS {
            return Err(InvalidValue(format!(
                "a task name is at most {} characters, this one has {len}",
                Self::MAX_CHARS
            )));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidValue(
                "a task name must not contain control characters (such as line breaks)".into(),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which channels an occurrence is delivered on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub email: Option<EmailAddress>,
    pub sms: Option<PhoneNumber>,
    pub push: bool,
    /// The owner's in-app inbox; on unless the body says `"inApp": false`.
    pub in_app: bool,
    /// The owner's webhook endpoint (configured per user); off unless `"webhook": true`.
    pub webhook: bool,
    /// The owner's destinations (ntfy, Gotify, chats) this task notifies, by id, each once.
    pub destinations: Vec<DestinationId>,
}

/// A destination's id: `dst_` and 1 to 64 lowercase hex digits (Chime makes them; what
/// each names lives with the owner's settings, not in the task).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestinationId(String);

impl DestinationId {
    pub const PREFIX: &'static str = "dst_";

    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix(Self::PREFIX)?;
        ((1..=64).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DestinationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for Notify {
    /// In-app only.
    fn default() -> Self {
        Self {
            email: None,
            sms: None,
            push: false,
            in_app: true,
            webhook: false,
            destinations: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX_LEN: usize = 254;

    /// Trims `s` and checks that it looks like an address: exactly one `@`, something before
    /// it, a domain with a dot after it, no whitespace. Deliverability is the provider's
    /// business.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let refuse = || {
            Err(InvalidValue(
                "expected an email address such as `someone@example.com` (one `@`, a domain with a \
                 dot, no spaces, at most 254 characters)"
                    .into(),
            ))
        };
        if s.len() > Self::MAX_LEN || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse();
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return refuse();
        };
        if local.is_empty()
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return refuse();
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What [`TaskSpec::parse_with`] needs from the deployment to read a body: today, the region
/// a phone number without a country code belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// ISO 3166 alpha-2 (`US`, `GB`): whose numbering plan reads a phone number written
    /// without `+` and a country code. [`ParseOptions::new`] checks it; a value set by hand
    /// that is not a region leaves such numbers refused (numbers with `+` still parse).
    pub default_region: String,
}

impl ParseOptions {
    /// The region when none is configured: the design's example number, `4075551212`, is
    /// American.
    pub const DEFAULT_REGION: &'static str = "US";

    /// Options with `region` as the default region: an ISO 3166 alpha-2 code that has a
    /// numbering plan, in any case (`gb` is `GB`).
    pub fn new(region: &str) -> Result<Self, InvalidValue> {
        let default_region = region.trim().to_ascii_uppercase();
        let options = Self { default_region };
        if options.region().is_none() {
            return Err(InvalidValue(format!(
                "`{region}` is not a region with a telephone numbering plan: expected an ISO \
                 3166 alpha-2 code such as `US` or `GB`"
            )));
        }
        Ok(options)
    }

    fn region(&self) -> Option<phonenumber::country::Id> {
        let id: phonenumber::country::Id = self.default_region.parse().ok()?;
        phonenumber::metadata::DATABASE
            .by_id(id.as_ref())
            .map(|_| id)
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            default_region: Self::DEFAULT_REGION.to_owned(),
        }
    }
}

/// What happens to occurrences that fell due while Chime could not fire them (downtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedPolicy {
    /// Fire the earliest missed occurrence once, flagged late; the others it stands for are
    /// counted in `coalesced`, and the schedule moves on to the next future occurrence.
    #[default]
    FireOnceLate,
    /// Fire every missed occurrence, each flagged late.
    FireAll,
    /// Fire an occurrence only if it is at most `limit` late; otherwise record it as skipped.
    Skip { limit: jiff::SignedDuration },
}

impl MissedPolicy {
    /// Longest `limitSeconds` accepted: a year.
    pub const MAX_LIMIT_SECONDS: i64 = 31_536_000;
}

pub(crate) const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "monday"),
    (Weekday::Tuesday, "tuesday"),
    (Weekday::Wednesday, "wednesday"),
    (Weekday::Thursday, "thursday"),
    (Weekday::Friday, "friday"),
    (Weekday::Saturday, "saturday"),
    (Weekday::Sunday, "sunday"),
];

impl TaskSpec {
    /// Parses the design's POST body (see the module doc) with the default
    /// [`ParseOptions`] (phone numbers without a country code are American). Collects every
    /// refused field.
    pub fn parse(body: &Value) -> Result<TaskSpec, FieldErrors> {
        Self::parse_with(body.clone(), &ParseOptions::default())
    }

    /// Parses the design's POST body (see the module doc), reading what it leaves to context
    /// with `options`. Collects every refused field. The canonical shape ([`TaskSpec::to_json`])
    /// parses back to an equal task whatever the options. Takes the body by value: its fields
    /// move into [`TaskIn`] rather than being copied.
    pub fn parse_with(body: Value, options: &ParseOptions) -> Result<TaskSpec, FieldErrors> {
        input::parse(body, options)
    }

    /// Refuses a move (`moved`) that would not stay between the occurrence's neighbours,
    /// naming the entry.
    pub fn check_moves(&self) -> Result<(), FieldErrors> {
        let schedule = &self.schedule;
        for (i, (from, to)) in schedule.exceptions.moved.iter().enumerate() {
            let mut others = schedule.clone();
            others.exceptions.moved.remove(from);
            // One that names no occurrence (left by a change of the rule) has no effect.
            if let Err(e @ ExceptionError::PastANeighbour { .. }) = others.check_move(*from, *to) {
                return Err(FieldErrors::one(
                    format!("/moved/{i}"),
                    Some(serde_json::json!({"from": from.to_string(), "to": to.to_string()})),
                    e.to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a task none of whose occurrences is at or after `now`, naming the field that
    /// makes it so (`/repeats/rrule` for a rule that matches no date at all; `/repeats/ends` or
    /// `/repeats/rrule` when an end cuts it; else `/startDate`).
    pub fn require_future(&self, now: Timestamp) -> Result<(), FieldErrors> {
        let schedule = &self.schedule;
        if schedule.first_at_or_after(now).is_some() {
            return Ok(());
        }
        if let Some(Recurrence::Rule(rule)) = &schedule.repeats {
            let endless = Schedule {
                repeats: Some(Recurrence::Rule(Rrule {
                    end: None,
                    ..rule.clone()
                })),
                ..schedule.clone()
            };
            if endless.first().is_none() {
                return Err(FieldErrors::one(
                    "/repeats/rrule",
                    Some(Value::String(rule.to_string())),
                    "the rule matches no date at or after `startDate` (a 400-year search)",
                ));
            }
        }
        // The field that ends it, its value, and the same schedule without the end.
        let ended = match &schedule.repeats {
            Some(Recurrence::Every(repeats)) if repeats.ends != Ends::Never => Some((
                "/repeats/ends",
                ends_json(&repeats.ends),
                Recurrence::Every(Repeats {
                    ends: Ends::Never,
                    ..repeats.clone()
                }),
            )),
            Some(Recurrence::Rule(rule)) if rule.end.is_some() => Some((
                "/repeats/rrule",
                Value::String(rule.to_string()),
                Recurrence::Rule(Rrule {
                    end: None,
                    ..rule.clone()
                }),
            )),
            _ => None,
        };
        if let Some((pointer, value, endless)) = ended {
            let endless = Schedule {
                repeats: Some(endless),
                ..schedule.clone()
            };
            if endless.first_at_or_after(now).is_some() {
                return Err(FieldErrors::one(
                    pointer,
                    Some(value),
                    format!(
                        "no occurrence of this task is at or after now ({now}): the task ends \
                         before then, so every occurrence is in the past"
                    ),
                ));
            }
        }
        Err(FieldErrors::one(
            "/startDate",
            Some(Value::String(schedule.start.to_string())),
            format!(
                "no occurrence of this task is at or after now ({now}): every occurrence is in \
                 the past"
            ),
        ))
    }
}

/// `repeats.ends` as the API writes it.
fn ends_json(ends: &Ends) -> Value {
    match ends {
        Ends::Never => Value::Null,
        ends => serde_json::to_value(EndsShape::from(ends)).unwrap_or(Value::Null),
    }
}
