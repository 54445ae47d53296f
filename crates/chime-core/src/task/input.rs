//! The lenient reading of a task body from the API (see the [`crate::task`] module doc for
//! what it accepts). It runs once, at the HTTP edge; what is stored or sent on the bus is the
//! strict form of [`super::stored`], never read by this module.

use jiff::civil::Weekday;
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use super::datetime::{parse_date, parse_date_time, EXPECTED_DATE_TIME, MISSING_OFFSET};
use super::{
    EmailAddress, MissedPolicy, Notify, ParseOptions, PhoneNumber, TaskName, TaskSpec, WEEKDAYS,
};
use crate::error::{FieldError, FieldErrors};
use crate::recurrence::{Ends, On, Period, Repeats, Schedule, TaskZone};

const MAX_DESCRIPTION_CHARS: usize = 4000;
const MAX_FREQUENCY: i64 = 1000;
const MAX_COUNT: i64 = 100_000;

/// The lenient reading of a body: see the module doc of [`crate::task`].
pub(super) fn parse(body: &Value, options: &ParseOptions) -> Result<TaskSpec, FieldErrors> {
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
