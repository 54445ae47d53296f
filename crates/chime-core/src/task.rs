//! A task as the definition role stores it, parsed from the design's POST body.
//!
//! [`TaskSpec::parse`] turns the body into a [`TaskSpec`] whose every field is valid, or into
//! [`FieldErrors`] listing every refused field (not only the first) by JSON pointer, with the
//! value as received. It accepts the design's body and a few extensions; fields it does not
//! know are ignored, so older servers accept newer clients' bodies.
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
//!   default `false`; `inApp`: a boolean, default `true`. An empty `email` or `sms` is absent.
//! - `missed`: what to do with occurrences missed while Chime was down. `policy`:
//!   `fireOnceLate` (the default, also when `policy` is absent), `fireAll` or `skip`;
//!   `limitSeconds` (1 to 31536000) is required with `skip` and refused otherwise.
//!
//! [`TaskSpec::to_json`] writes the API's canonical shape of the same fields, which parses back
//! to an equal `TaskSpec`.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use crate::error::{FieldError, FieldErrors};
use crate::recurrence::{Ends, On, Period, Repeats, Schedule, TaskZone};

/// A task, every field valid. Serializes to the API's camelCase shape; that output parses
/// back to an equal `TaskSpec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub name: TaskName,
    pub description: Option<String>,
    pub schedule: Schedule,
    pub notify: Notify,
    pub missed: MissedPolicy,
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

/// A phone number in E.164: `+`, the country calling code and the national number, at most 15
/// digits (`+14075551212`). Only [`PhoneNumber::parse_with`] makes one, so it is always a
/// number valid in its country's numbering plan, in the one form SMS providers take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Longer input is refused before the numbering plan is consulted: a number written with
    /// every separator allowed and an international prefix still fits.
    const MAX_INPUT_CHARS: usize = 40;

    /// [`PhoneNumber::parse_with`] with the default options (region US).
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        Self::parse_with(s, &ParseOptions::default())
    }

    /// Reads `s`: digits, spaces, dashes, dots and parentheses (ignored), an optional leading
    /// `+`. With the `+`, the digits are the country code and national number, and the region is
    /// not used. Without it, a number that starts with the region's international prefix
    /// (`011` in the US, `00` in most of the world) is read as international; any other as a
    /// national number of the region (`4075551212` in the US is `+14075551212`, `020 7946 0958`
    /// in GB is `+442079460958`). The number must be valid in its country's numbering plan.
    pub fn parse_with(s: &str, options: &ParseOptions) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if s.chars().count() > Self::MAX_INPUT_CHARS {
            return Err(InvalidValue(format!(
                "a phone number is at most {} characters long, this one has {}",
                Self::MAX_INPUT_CHARS,
                s.chars().count()
            )));
        }
        let (plus, rest) = match s.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(InvalidValue(format!(
                        "`{s}` is not a phone number: expected digits with an optional leading \
                         `+` (spaces, dashes, dots and parentheses are ignored), such as \
                         `+14075551212`"
                    )))
                }
            }
        }
        if digits.is_empty() {
            return Err(InvalidValue(format!(
                "`{s}` is not a phone number: it has no digits (expected one such as \
                 `+14075551212`)"
            )));
        }

        let region = options.region();
        // The port of libphonenumber strips the *default region's* national prefix from an
        // international number (with region US, `+49 151 23456789` loses the `1` after `49`).
        // So it is only given a region for national numbers; international ones (a `+`, or the
        // region's international prefix, which libphonenumber would otherwise apply itself)
        // are handed over as `+` and digits, read by their own country's plan.
        let international = if plus {
            Some(digits.as_str())
        } else {
            region.and_then(|id| strip_idd(id, &digits))
        };
        let parsed = match (international, region) {
            (Some(number), _) => phonenumber::parse(None, format!("+{number}")),
            (None, Some(region)) => phonenumber::parse(Some(region), &digits),
            (None, None) => {
                return Err(InvalidValue(format!(
                    "`{s}` has no country code, and the configured default region `{}` is not a \
                     region code; write the number with `+` and its country code, such as \
                     `+14075551212`",
                    options.default_region
                )))
            }
        };
        let valid = parsed
            .ok()
            .filter(|n| phonenumber::is_valid(n) && n.extension().is_none());
        let Some(parsed) = valid else {
            return Err(InvalidValue(match (international, region) {
                (None, Some(region)) => format!(
                    "`{s}` is not a valid phone number in the default region {} (a number \
                     without `+` and a country code is read as a national number of that \
                     region); write it with its country code, such as `+14075551212`",
                    region.as_ref()
                ),
                _ => format!(
                    "`{s}` is not a valid phone number: it matches no country's numbering plan \
                     (an international number is `+`, the country code, then the national \
                     number, such as `+14075551212`)"
                ),
            }));
        };
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        // E.164 allows 15 digits; the library's own output is trusted only as far as that.
        if e164.len() > 16 || !e164.starts_with('+') {
            return Err(InvalidValue(format!(
                "`{s}` is not a valid phone number: it has more than the 15 digits E.164 allows"
            )));
        }
        Ok(Self(e164))
    }

    /// E.164, such as `+14075551212`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `digits` without the region's international (IDD) prefix, when it starts with one followed
/// by a country code (which never starts with `0`), as libphonenumber itself decides.
fn strip_idd(region: phonenumber::country::Id, digits: &str) -> Option<&str> {
    let idd = phonenumber::metadata::DATABASE
        .by_id(region.as_ref())?
        .international_prefix()?;
    let found = idd.find(digits).filter(|m| m.start() == 0)?;
    let rest = &digits[found.end()..];
    (!rest.is_empty() && !rest.starts_with('0')).then_some(rest)
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

const MAX_DESCRIPTION_CHARS: usize = 4000;
const MAX_FREQUENCY: i64 = 1000;
const MAX_COUNT: i64 = 100_000;
const WEEKDAYS: [(Weekday, &str); 7] = [
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
        Self::parse_with(body, &ParseOptions::default())
    }

    /// Parses the design's POST body (see the module doc), reading what it leaves to context
    /// with `options`. Collects every refused field. The canonical shape ([`TaskSpec::to_json`])
    /// parses back to an equal task whatever the options.
    pub fn parse_with(body: &Value, options: &ParseOptions) -> Result<TaskSpec, FieldErrors> {
        let Some(obj) = body.as_object() else {
            return Err(FieldErrors::one(
                "",
                Some(body.clone()),
                "the body must be a JSON object",
            ));
        };
        let mut errs = Errors::default();
        let name = parse_name(obj.get("name"), &mut errs);
        let description = parse_description(obj.get("description"), &mut errs);
        let start = parse_start(obj.get("startDate"), &mut errs);
        let zone = parse_zone(obj.get("timeZone"), &mut errs);
        let repeats = parse_repeats(obj.get("repeats"), &mut errs);
        let notify = parse_notify(obj.get("notify"), options, &mut errs);
        let missed = parse_missed(obj.get("missed"), &mut errs);

        if !errs.0.is_empty() {
            return Err(FieldErrors(errs.0));
        }
        match (name, description, start, zone, repeats, notify, missed) {
            (
                Some(name),
                Some(description),
                Some((start, offset)),
                Some(zone),
                Some(repeats),
                Some(notify),
                Some(missed),
            ) => Ok(TaskSpec {
                name,
                description,
                schedule: Schedule {
                    start,
                    zone: zone.unwrap_or_else(|| TaskZone::fixed(offset)),
                    repeats,
                },
                notify,
                missed,
            }),
            // Every parser that returns `None` has recorded why.
            _ => Err(FieldErrors::one(
                "",
                Some(body.clone()),
                "the body could not be parsed",
            )),
        }
    }

    /// Refuses a task none of whose occurrences is at or after `now`, naming the field that
    /// makes it so (`/repeats/ends` when an end cuts it, else `/startDate`).
    pub fn require_future(&self, now: Timestamp) -> Result<(), FieldErrors> {
        let schedule = &self.schedule;
        if schedule.first_at_or_after(now).is_some() {
            return Ok(());
        }
        if let Some(repeats) = &schedule.repeats {
            if repeats.ends != Ends::Never {
                let endless = Schedule {
                    repeats: Some(Repeats {
                        ends: Ends::Never,
                        ..repeats.clone()
                    }),
                    ..schedule.clone()
                };
                if endless.first_at_or_after(now).is_some() {
                    return Err(FieldErrors::one(
                        "/repeats/ends",
                        Some(ends_json(&repeats.ends)),
                        format!(
                            "no occurrence of this task is at or after now ({now}): the task \
                             ends before then, so every occurrence is in the past"
                        ),
                    ));
                }
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

    /// The API's camelCase JSON shape of this task's fields (without id, owner or dates).
    pub fn to_json(&self) -> Value {
        let schedule = &self.schedule;
        let repeats = match &schedule.repeats {
            None => Value::Null,
            Some(r) => json!({
                "frequency": r.frequency,
                "period": r.period.as_str(),
                "on": match &r.on {
                    On::Start => Value::Null,
                    On::Weekdays(days) => days.iter().map(|d| weekday_name(*d)).collect(),
                    On::MonthDays(days) => days.iter().copied().collect(),
                },
                "ends": match r.ends {
                    Ends::Never => Value::Null,
                    ref ends => ends_json(ends),
                },
            }),
        };
        let missed = match self.missed {
            MissedPolicy::FireOnceLate => json!({ "policy": "fireOnceLate" }),
            MissedPolicy::FireAll => json!({ "policy": "fireAll" }),
            MissedPolicy::Skip { limit } => {
                json!({ "policy": "skip", "limitSeconds": limit.as_secs() })
            }
        };
        json!({
            "name": self.name.as_str(),
            "description": self.description,
            "startDate": schedule.start.to_string(),
            "timeZone": schedule.zone.name(),
            "repeats": repeats,
            "notify": {
                "email": self.notify.email.as_ref().map(EmailAddress::as_str),
                "sms": self.notify.sms.as_ref().map(PhoneNumber::as_str),
                "push": self.notify.push,
                "inApp": self.notify.in_app,
                "webhook": self.notify.webhook,
            },
            "missed": missed,
        })
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(d, _)| *d == day)
        .map_or("monday", |(_, name)| name)
}

fn ends_json(ends: &Ends) -> Value {
    match ends {
        Ends::Never => Value::Null,
        Ends::AfterCount(n) => json!(n),
        Ends::OnDate(date) => json!(date.to_string()),
        Ends::AtInstant(at) => json!(at.to_string()),
    }
}

/// The refused fields found so far.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, pointer: &str, value: Option<&Value>, detail: impl Into<String>) {
        self.0
            .push(FieldError::new(pointer, value.cloned(), detail));
    }
}

/// `None` for absent and `null`, which every optional field treats alike.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn parse_name(value: Option<&Value>, errs: &mut Errors) -> Option<TaskName> {
    const P: &str = "/name";
    match present(value) {
        None => errs.push(
            P,
            value,
            "a task name is required: a string of 1 to 200 characters",
        ),
        Some(Value::String(s)) => match TaskName::parse(s) {
            Ok(name) => return Some(name),
            Err(e) => errs.push(P, value, e.0),
        },
        Some(_) => errs.push(
            P,
            value,
            "a task name must be a string of 1 to 200 characters",
        ),
    }
    None
}

fn parse_description(value: Option<&Value>, errs: &mut Errors) -> Option<Option<String>> {
    const P: &str = "/description";
    match present(value) {
        None => Some(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            let len = s.chars().count();
            if let Some(bad) = description_control(s) {
                errs.push(
                    P,
                    value,
                    format!(
                        "a description must not contain control characters other than line \
                         breaks (LF or CRLF) and tabs; it contains U+{:04X}",
                        u32::from(bad)
                    ),
                );
                None
            } else if len > MAX_DESCRIPTION_CHARS {
                errs.push(
                    P,
                    value,
                    format!(
                        "a description is at most {MAX_DESCRIPTION_CHARS} characters, this one \
                         has {len}"
                    ),
                );
                None
            } else {
                Some((!s.is_empty()).then(|| s.to_owned()))
            }
        }
        Some(_) => {
            errs.push(P, value, "a description must be a string or null");
            None
        }
    }
}

/// The first character a description may not hold: a control character other than a tab,
/// a line feed, or a carriage return that starts a CRLF. (A NUL or a lone CR would reach an
/// email's 7-bit text part raw, which RFC 2045 forbids.)
fn description_control(s: &str) -> Option<char> {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' | '\n' => {}
            '\r' if chars.peek() == Some(&'\n') => {}
            c if c.is_control() => return Some(c),
            _ => {}
        }
    }
    None
}

fn parse_start(value: Option<&Value>, errs: &mut Errors) -> Option<(Timestamp, Offset)> {
    const P: &str = "/startDate";
    match present(value) {
        None => errs.push(
            P,
            value,
            format!("a start date is required: {EXPECTED_DATE_TIME}"),
        ),
        Some(Value::String(s)) => match parse_date_time(s) {
            Ok(parsed) => return Some(parsed),
            Err(detail) => errs.push(P, value, detail),
        },
        Some(_) => errs.push(
            P,
            value,
            format!("a start date is a string: {EXPECTED_DATE_TIME}"),
        ),
    }
    None
}

/// `Some(None)`: no zone given, use the start's offset.
fn parse_zone(value: Option<&Value>, errs: &mut Errors) -> Option<Option<TaskZone>> {
    const P: &str = "/timeZone";
    match present(value) {
        None => Some(None),
        Some(Value::String(s)) => match TaskZone::parse(s.trim()) {
            Ok(zone) => Some(Some(zone)),
            Err(e) => {
                errs.push(P, value, e.to_string());
                None
            }
        },
        Some(_) => {
            errs.push(
                P,
                value,
                "a time zone is a string: an IANA name such as `Europe/Berlin` or an offset \
                 such as `+02:00`",
            );
            None
        }
    }
}

fn parse_repeats(value: Option<&Value>, errs: &mut Errors) -> Option<Option<Repeats>> {
    let obj = match present(value) {
        None => return Some(None),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            errs.push(
                "/repeats",
                value,
                "`repeats` is an object with `period` and optionally `frequency`, `on` and \
                 `ends`, or null for a one-time task",
            );
            return None;
        }
    };
    let before = errs.0.len();
    let frequency = parse_frequency(obj.get("frequency"), errs);
    let period = parse_period(obj.get("period"), errs);
    // Which values `on` takes depends on the period; without one it cannot be judged.
    let on = period.and_then(|period| parse_on(period, obj.get("on"), errs));
    let ends = parse_ends(obj.get("ends"), errs);
    if errs.0.len() > before {
        return None;
    }
    Some(Some(Repeats {
        frequency: frequency?,
        period: period?,
        on: on?,
        ends: ends?,
    }))
}

/// A JSON integer, or a string holding one; `None` for anything else (fractions included).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse().ok()
        }
        _ => None,
    }
}

fn parse_frequency(value: Option<&Value>, errs: &mut Errors) -> Option<u32> {
    let Some(v) = present(value) else {
        return Some(1);
    };
    // As the schema says (`^[0-9]+$`): digits only, no sign, no blanks around them.
    let strict = match v {
        Value::String(s) => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
        _ => true,
    };
    match integer(v).filter(|n| strict && (1..=MAX_FREQUENCY).contains(n)) {
        Some(n) => u32::try_from(n).ok(),
        None => {
            errs.push(
                "/repeats/frequency",
                value,
                format!(
                    "expected a whole number of periods from 1 to {MAX_FREQUENCY} (a number or \
                     a numeric string)"
                ),
            );
            None
        }
    }
}

fn parse_period(value: Option<&Value>, errs: &mut Errors) -> Option<Period> {
    const EXPECTED: &str = "expected `day`, `week`, `month` or `year`";
    let period = present(value).and_then(Value::as_str).and_then(|s| {
        match s.trim().to_lowercase().as_str() {
            "day" | "days" | "daily" => Some(Period::Day),
            "week" | "weeks" | "weekly" => Some(Period::Week),
            "month" | "months" | "monthly" => Some(Period::Month),
            "year" | "years" | "yearly" => Some(Period::Year),
            _ => None,
        }
    });
    if period.is_none() {
        let detail = match present(value) {
            None => format!("a period is required: {EXPECTED}"),
            Some(_) => format!("unknown period: {EXPECTED}"),
        };
        errs.push("/repeats/period", value, detail);
    }
    period
}

fn parse_on(period: Period, value: Option<&Value>, errs: &mut Errors) -> Option<On> {
    const P: &str = "/repeats/on";
    let Some(v) = present(value) else {
        return Some(On::Start);
    };
    // Each token, with the pointer and value to name if it is refused.
    let tokens: Vec<(String, Value)> = match v {
        Value::String(s) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| (P.to_owned(), Value::String(t.to_owned())))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("{P}/{i}"), item.clone()))
            .collect(),
        Value::Number(_) => vec![(P.to_owned(), v.clone())],
        _ => {
            errs.push(
                P,
                value,
                "`on` is a comma-separated string or an array of weekdays or days of the month",
            );
            return None;
        }
    };
    if tokens.is_empty() {
        return Some(On::Start);
    }
    // A refused token of a string is reported with the whole string, as received.
    let refused = |token: &Value| {
        if v.is_string() {
            v.clone()
        } else {
            token.clone()
        }
    };
    match period {
        Period::Day | Period::Year => {
            errs.push(
                P,
                value,
                match period {
                    Period::Day => {
                        "`on` is not used with period day: the task is due every `frequency` \
                         days at the time of `startDate`"
                    }
                    _ => {
                        "`on` is not used with period year: the task is due on the month and \
                         day of `startDate`"
                    }
                },
            );
            None
        }
        Period::Week => {
            let mut days = Vec::new();
            let mut ok = true;
            for (pointer, token) in &tokens {
                match token.as_str().and_then(|t| parse_weekday(t.trim())) {
                    Some(day) => days.push(day),
                    None => {
                        ok = false;
                        let shown = token
                            .as_str()
                            .map_or_else(|| token.to_string(), str::to_owned);
                        errs.push(
                            pointer,
                            Some(&refused(token)),
                            format!(
                                "unknown weekday `{shown}`: expected monday..sunday, mon..sun or \
                                 mo..su"
                            ),
                        );
                    }
                }
            }
            days.sort_by_key(|d| d.to_monday_zero_offset());
            days.dedup();
            (ok && !days.is_empty()).then_some(On::Weekdays(days))
        }
        Period::Month => {
            let mut days = Vec::new();
            let mut ok = true;
            for (pointer, token) in &tokens {
                match parse_month_day(token) {
                    Some(day) => days.push(day),
                    None => {
                        ok = false;
                        let shown = token
                            .as_str()
                            .map_or_else(|| token.to_string(), str::to_owned);
                        errs.push(
                            pointer,
                            Some(&refused(token)),
                            format!(
                                "unknown day of the month `{shown}`: expected 1..31, -1..-31 \
                                 counted from the end (-1 is the last day) or `last`"
                            ),
                        );
                    }
                }
            }
            days.sort_unstable();
            days.dedup();
            (ok && !days.is_empty()).then_some(On::MonthDays(days))
        }
    }
}

fn parse_weekday(token: &str) -> Option<Weekday> {
    let token = token.to_lowercase();
    if let Some((day, _)) = WEEKDAYS
        .iter()
        .find(|(_, name)| *name == token || name[..3] == token || name[..2] == token)
    {
        return Some(*day);
    }
    if token.chars().count() < 5 {
        return None;
    }
    let mut near = WEEKDAYS
        .iter()
        .filter(|(_, name)| within_one_edit(&token, name));
    match (near.next(), near.next()) {
        (Some((day, _)), None) => Some(*day),
        _ => None,
    }
}

/// Damerau-Levenshtein distance at most 1: equal, or one insertion, deletion, substitution or
/// transposition of adjacent characters apart.
fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match ra.len() as isize - rb.len() as isize {
        0 if ra.is_empty() => true,
        0 => {
            ra[1..] == rb[1..]
                || (ra.len() >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
        }
        1 => ra[1..] == *rb,
        -1 => *ra == rb[1..],
        _ => false,
    }
}

fn parse_month_day(token: &Value) -> Option<i8> {
    if let Some(s) = token.as_str() {
        if s.trim().eq_ignore_ascii_case("last") {
            return Some(-1);
        }
    }
    integer(token)
        .filter(|d| (1..=31).contains(d) || (-31..=-1).contains(d))
        .and_then(|d| i8::try_from(d).ok())
}

fn parse_ends(value: Option<&Value>, errs: &mut Errors) -> Option<Ends> {
    const P: &str = "/repeats/ends";
    const EXPECTED: &str = "expected a number of occurrences from 1 to 100000, a last date such \
                            as `2025-01-31`, or a last date and time with an offset such as \
                            `2025-01-31T10:00:00Z`";
    let ends = match present(value) {
        None => Ok(Ends::Never),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Ends::Never),
        Some(v @ Value::Number(_)) => count(v).ok_or_else(|| EXPECTED.to_owned()),
        Some(v @ Value::String(s)) => {
            let s = s.trim();
            if let Some(n) = count(v) {
                Ok(n)
            } else if s
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
                && s.len() < 10
            {
                Err(EXPECTED.to_owned())
            } else if let Some(date) = parse_date(s) {
                Ok(Ends::OnDate(date))
            } else {
                match parse_date_time(s) {
                    Ok((at, _)) => Ok(Ends::AtInstant(at)),
                    Err(detail) if detail.starts_with(MISSING_OFFSET) => Err(detail),
                    Err(_) => Err(EXPECTED.to_owned()),
                }
            }
        }
        Some(_) => Err(EXPECTED.to_owned()),
    };
    match ends {
        Ok(ends) => Some(ends),
        Err(detail) => {
            errs.push(P, value, detail);
            None
        }
    }
}

fn count(value: &Value) -> Option<Ends> {
    integer(value)
        .filter(|n| (1..=MAX_COUNT).contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .map(Ends::AfterCount)
}

fn parse_notify(
    value: Option<&Value>,
    options: &ParseOptions,
    errs: &mut Errors,
) -> Option<Notify> {
    let obj = match present(value) {
        None => return Some(Notify::default()),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            errs.push(
                "/notify",
                value,
                "`notify` is an object with optional `email`, `sms`, `push`, `inApp` and `webhook`",
            );
            return None;
        }
    };
    let before = errs.0.len();
    let email_value = obj.get("email");
    let email = match present(email_value) {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => match EmailAddress::parse(s) {
            Ok(email) => Some(email),
            Err(e) => {
                errs.push("/notify/email", email_value, e.0);
                None
            }
        },
        Some(_) => {
            errs.push(
                "/notify/email",
                email_value,
                "an email address is a string such as `someone@example.com`",
            );
            None
        }
    };

    let sms_value = obj.get("sms");
    let sms_text = match present(sms_value) {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(Ok(s.clone())),
        Some(Value::Number(n)) => Some(n.as_u64().map(|n| n.to_string()).ok_or(())),
        Some(_) => Some(Err(())),
    };
    let sms = match sms_text {
        None => None,
        Some(Ok(s)) => match PhoneNumber::parse_with(&s, options) {
            Ok(phone) => Some(phone),
            Err(e) => {
                errs.push("/notify/sms", sms_value, e.0);
                None
            }
        },
        Some(Err(())) => {
            errs.push(
                "/notify/sms",
                sms_value,
                "a phone number is a string or a whole number such as `4075551212`",
            );
            None
        }
    };

    let mut flag = |key: &str, pointer: &str, default: bool| -> bool {
        match present(obj.get(key)) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errs.push(pointer, obj.get(key), format!("`{key}` is true or false"));
                default
            }
        }
    };
    let push = flag("push", "/notify/push", false);
    let in_app = flag("inApp", "/notify/inApp", true);
    let webhook = flag("webhook", "/notify/webhook", false);

    (errs.0.len() == before).then_some(Notify {
        email,
        sms,
        push,
        in_app,
        webhook,
    })
}

fn parse_missed(value: Option<&Value>, errs: &mut Errors) -> Option<MissedPolicy> {
    let obj: &Map<String, Value> = match present(value) {
        None => return Some(MissedPolicy::default()),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            errs.push(
                "/missed",
                value,
                "`missed` is an object with `policy` and, for `skip`, `limitSeconds`",
            );
            return None;
        }
    };
    let policy_value = obj.get("policy");
    let limit_value = obj.get("limitSeconds");
    let policy = match present(policy_value) {
        None => Some("fireoncelate".to_owned()),
        Some(Value::String(s)) => Some(s.trim().to_lowercase()),
        Some(_) => None,
    };
    let before = errs.0.len();
    let policy = match policy.as_deref() {
        Some("fireoncelate") => Some(MissedPolicy::FireOnceLate),
        Some("fireall") => Some(MissedPolicy::FireAll),
        Some("skip") => {
            let limit = present(limit_value)
                .and_then(integer)
                .filter(|n| (1..=MissedPolicy::MAX_LIMIT_SECONDS).contains(n));
            match limit {
                Some(secs) => Some(MissedPolicy::Skip {
                    limit: SignedDuration::from_secs(secs),
                }),
                None => {
                    errs.push(
                        "/missed/limitSeconds",
                        limit_value,
                        format!(
                            "the policy `skip` needs `limitSeconds`: a whole number of seconds \
                             from 1 to {}",
                            MissedPolicy::MAX_LIMIT_SECONDS
                        ),
                    );
                    None
                }
            }
        }
        _ => {
            errs.push(
                "/missed/policy",
                policy_value,
                "unknown policy: expected `fireOnceLate`, `fireAll` or `skip`",
            );
            None
        }
    };
    if let Some(MissedPolicy::FireOnceLate | MissedPolicy::FireAll) = policy {
        if present(limit_value).is_some() {
            errs.push(
                "/missed/limitSeconds",
                limit_value,
                "`limitSeconds` is used only with the policy `skip`",
            );
        }
    }
    if errs.0.len() > before {
        return None;
    }
    policy
}

const EXPECTED_DATE_TIME: &str = "expected a date and time with an offset, such as \
                                  `2024-08-12 11:24:53.00+0000` or `2024-08-12T13:24:53+02:00`";
const MISSING_OFFSET: &str = "the offset is missing";

/// Reads fixed-width ASCII fields left to right.
struct Reader<'s> {
    bytes: &'s [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.at += usize::from(hit);
        hit
    }

    fn digits(&mut self, n: usize) -> Option<i32> {
        let field = self.bytes.get(self.at..self.at + n)?;
        if !field.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += n;
        Some(
            field
                .iter()
                .fold(0, |acc, b| acc * 10 + i32::from(b - b'0')),
        )
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// `YYYY-MM-DD`, a real date.
    fn date(&mut self) -> Option<Date> {
        let y = self.digits(4)?;
        let m = (self.eat(b'-')).then(|| self.digits(2)).flatten()?;
        let d = (self.eat(b'-')).then(|| self.digits(2)).flatten()?;
        Date::new(
            i16::try_from(y).ok()?,
            i8::try_from(m).ok()?,
            i8::try_from(d).ok()?,
        )
        .ok()
    }
}

/// A date alone: `YYYY-MM-DD`.
fn parse_date(s: &str) -> Option<Date> {
    let mut r = Reader {
        bytes: s.as_bytes(),
        at: 0,
    };
    r.date().filter(|_| r.done())
}

/// A date and time with an offset (see the module doc), as the instant and the offset.
fn parse_date_time(s: &str) -> Result<(Timestamp, Offset), String> {
    let s = s.trim();
    let mut r = Reader {
        bytes: s.as_bytes(),
        at: 0,
    };
    let bad = || EXPECTED_DATE_TIME.to_owned();
    let date = r.date().ok_or_else(bad)?;
    if !(r.eat(b'T') || r.eat(b't') || r.eat(b' ')) {
        return Err(bad());
    }
    let hour = r.digits(2).ok_or_else(bad)?;
    let minute = r.eat(b':').then(|| r.digits(2)).flatten().ok_or_else(bad)?;
    let (mut second, mut nanos) = (0, 0);
    if r.eat(b':') {
        second = r.digits(2).ok_or_else(bad)?;
        if r.eat(b'.') {
            let mut n = 0;
            while let Some(d) = r.peek().filter(u8::is_ascii_digit) {
                n += 1;
                if n > 9 {
                    return Err(bad());
                }
                nanos = nanos * 10 + i32::from(d - b'0');
                r.at += 1;
            }
            if n == 0 {
                return Err(bad());
            }
            nanos *= 10i32.pow(9 - n);
            // Instants are kept to the microsecond, as every store keeps them.
            nanos -= nanos % 1000;
        }
    }
    let time = Time::new(
        i8::try_from(hour).map_err(|_| bad())?,
        i8::try_from(minute).map_err(|_| bad())?,
        i8::try_from(second).map_err(|_| bad())?,
        nanos,
    )
    .map_err(|_| bad())?;
    while r.eat(b' ') {}
    let offset_seconds = match r.peek() {
        None => {
            return Err(format!(
                "{MISSING_OFFSET}: `{s}` names no instant; add an offset such as `+0000`, \
                 `+02:00` or `Z`"
            ))
        }
        Some(b'Z' | b'z') => {
            r.at += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            r.at += 1;
            let h = r.digits(2).ok_or_else(bad)?;
            let colon = r.eat(b':');
            let m = match r.digits(2) {
                Some(m) => m,
                None if !colon => 0,
                None => return Err(bad()),
            };
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let secs = h * 3600 + m * 60;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        Some(_) => return Err(bad()),
    };
    if !r.done() {
        return Err(bad());
    }
    let offset = Offset::from_seconds(offset_seconds).map_err(|_| bad())?;
    let at = offset
        .to_timestamp(DateTime::from_parts(date, time))
        .map_err(|_| {
            format!(
                "`{s}` is out of range: instants from {} to {} are supported",
                Timestamp::MIN,
                Timestamp::MAX
            )
        })?;
    Ok((at, offset))
}

// Only describes the body for the OpenAPI document; `TaskSpec::parse` does the parsing. The
// doc comments below become the schema's descriptions, so they are written for API users.
/// A task to create or replace. Fields not listed are ignored. Every refused field is reported
/// with a JSON pointer to it.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBody)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct TaskBodySchema {
    /// 1 to 200 characters after trimming; no control characters.
    #[schema(example = "Task Name", min_length = 1)]
    name: String,
    /// At most 4000 characters; null or blank for none. No control characters but tabs and
    /// line breaks (LF or CRLF).
    #[schema(example = "Memorable description", max_length = 4000)]
    description: Option<String>,
    /// A date and time with an offset: `2024-08-12 11:24:53.00+0000` (space or `T`; seconds,
    /// fraction optional; offset `+0000`, `+00:00`, `+00` or `Z`) or RFC 3339.
    #[schema(example = "2024-08-12 11:24:53.00+0000")]
    start_date: String,
    /// The wall clock the rule follows: an IANA name or `±HH:MM`. Default: the offset of
    /// `startDate`.
    #[schema(example = "Europe/Berlin")]
    time_zone: Option<String>,
    /// Absent or null for a one-time task.
    repeats: Option<RepeatsBodySchema>,
    /// Delivery channels; default in-app only.
    notify: Option<NotifyBodySchema>,
    /// What to do with occurrences missed during downtime; default `fireOnceLate`.
    missed: Option<MissedBodySchema>,
}

#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyRepeats)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct RepeatsBodySchema {
    /// Every N periods: a whole number 1 to 1000, as a number or numeric string (`2`, `"2"`).
    /// Default 1.
    frequency: Option<FrequencySchema>,
    /// `day`, `week`, `month` or `year` (any case; plurals and `daily`, `weekly`, … accepted).
    #[schema(example = "week")]
    period: PeriodSchema,
    /// For `week`: weekdays (`monday`, `mon`, `mo`; one typing slip in a name of 5 or more
    /// letters is forgiven). For `month`: days 1..31, -1..-31 from the end, or `last`. A
    /// comma-separated string or an array. Default: the start's weekday or day. Not used with
    /// `day` or `year`. Examples: `"monday, tuesday"`, `["mon", "fri"]`, `[15, "last"]`.
    on: Option<OnSchema>,
    /// Empty or null: never. A number 1..100000 (or numeric string): after that many
    /// occurrences. `YYYY-MM-DD`: last local date, inclusive. A date and time with offset:
    /// last instant, inclusive. Examples: `12`, `"2025-01-31"`, `"2025-01-31T10:00:00Z"`.
    ends: Option<EndsSchema>,
}

/// A whole number of periods, as a number or a numeric string.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyFrequency)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum FrequencySchema {
    Number(FrequencyNumberSchema),
    Text(NumericTextSchema),
}

/// A whole number within bounds, for the schema only (utoipa takes no bounds on a newtype).
#[cfg(feature = "openapi")]
macro_rules! bounded_integer_schema {
    ($name:ident, $as:literal, $min:literal, $max:literal) => {
        #[allow(dead_code)]
        pub struct $name(u32);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .minimum(Some($min))
                    .maximum(Some($max))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($as)
            }
        }
    };
}

#[cfg(feature = "openapi")]
bounded_integer_schema!(FrequencyNumberSchema, "TaskBodyFrequencyNumber", 1, 1000);

#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyNumericText, pattern = "^[0-9]+$")]
#[allow(dead_code)]
pub struct NumericTextSchema(String);

#[cfg(feature = "openapi")]
bounded_integer_schema!(EndsCountSchema, "TaskBodyEndsCount", 1, 100000);

/// Weekdays or days of the month: a comma-separated string, one day number, or an array.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyOn)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum OnSchema {
    Text(String),
    Day(i32),
    List(Vec<OnItemSchema>),
}

/// A weekday name or a day of the month (1..31, -1..-31, `last`).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyOnItem)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum OnItemSchema {
    Text(String),
    Day(i32),
}

/// A number of occurrences, or a last date or instant (a string).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyEnds)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EndsSchema {
    Count(EndsCountSchema),
    Text(String),
}

/// A phone number: a string, or a whole number.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodySms)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum SmsSchema {
    Text(String),
    Number(u64),
}

/// The spellings of a period the parser accepts (in any case: the schema lists lower case).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyPeriod)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PeriodSchema {
    Day,
    Days,
    Daily,
    Week,
    Weeks,
    Weekly,
    Month,
    Months,
    Monthly,
    Year,
    Years,
    Yearly,
}

#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyNotify)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct NotifyBodySchema {
    /// An email address; empty for none.
    #[schema(example = "someone@example.com")]
    email: Option<String>,
    /// A phone number (string or number), stored in E.164. With a leading `+` and country
    /// code, or national (read in the server's default region, US unless configured);
    /// spaces, dashes, dots and parentheses ignored. Examples: `"+1 (407) 555-1212"`,
    /// `4075551212`, `"+44 20 7946 0958"`.
    sms: Option<SmsSchema>,
    /// Default false.
    #[schema(example = true)]
    push: Option<bool>,
    /// The owner's in-app inbox. Default true.
    #[schema(example = true)]
    in_app: Option<bool>,
    /// POST to the owner's configured webhook endpoint. Default false.
    #[schema(example = false)]
    webhook: Option<bool>,
}

#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyMissed)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct MissedBodySchema {
    /// `fireOnceLate` (default), `fireAll` or `skip` (any case).
    #[schema(
        example = "skip",
        pattern = "^([fF][iI][rR][eE][oO][nN][cC][eE][lL][aA][tT][eE]|[fF][iI][rR][eE][aA][lL][lL]|[sS][kK][iI][pP])$"
    )]
    policy: Option<String>,
    /// Required with `skip`, refused otherwise: 1 to 31536000.
    #[schema(example = 3600, minimum = 1, maximum = 31536000)]
    limit_seconds: Option<i64>,
}

#[cfg(all(test, feature = "openapi"))]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod openapi_tests {
    use super::*;

    #[test]
    fn the_body_schema_is_named_task_body_and_documents_every_field() {
        use utoipa::{PartialSchema, ToSchema};
        assert_eq!(TaskBodySchema::name(), "TaskBody");
        let schema = serde_json::to_value(TaskBodySchema::schema()).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        for field in [
            "name",
            "description",
            "startDate",
            "timeZone",
            "repeats",
            "notify",
            "missed",
        ] {
            assert!(properties.contains_key(field), "{field} missing: {schema}");
        }
        assert_eq!(schema["required"], json!(["name", "startDate"]));
        let mut nested = Vec::new();
        TaskBodySchema::schemas(&mut nested);
        let names: Vec<String> = nested.into_iter().map(|(name, _)| name).collect();
        for name in ["TaskBodyRepeats", "TaskBodyNotify", "TaskBodyMissed"] {
            assert!(names.iter().any(|n| n == name), "{names:?}");
        }
    }
}
