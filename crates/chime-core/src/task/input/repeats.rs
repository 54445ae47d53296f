//! The lenient reading of `repeats`: frequency, period, the days it falls `on` (with the
//! weekday spellings and typing slips forgiven) and when it `ends`; or an RFC 5545 `rrule`,
//! which is read strictly (its grammar has one spelling) and alone.

use jiff::civil::Weekday;
use serde_json::Value;

use super::super::body::RepeatsIn;
use super::super::datetime::{parse_date, parse_date_time, MISSING_OFFSET};
use super::super::WEEKDAYS;
use super::{nested, present, Errors, MAX_COUNT, MAX_FREQUENCY};
use crate::recurrence::rrule::Rrule;
use crate::recurrence::{Ends, On, Period, Recurrence, Repeats};
use crate::sent::Sent;

pub(super) fn parse_repeats(sent: &mut Sent, errs: &mut Errors) -> Option<Option<Recurrence>> {
    let repeats = nested::<RepeatsIn>(
        sent,
        "/repeats",
        "`repeats` is an object with `period` and optionally `frequency`, `on` and `ends`, or \
         with an RFC 5545 `rrule`, or null for a one-time task",
        errs,
    )?;
    let Some(repeats) = repeats else {
        return Some(None);
    };
    if let Some(rrule) = present(repeats.rrule.get()) {
        return parse_rrule(rrule, &repeats, errs).map(|rule| Some(Recurrence::Rule(rule)));
    }
    let before = errs.0.len();
    let frequency = parse_frequency(repeats.frequency.get(), errs);
    let period = parse_period(repeats.period.get(), errs);
    // Which values `on` takes depends on the period; without one it cannot be judged.
    let on = period.and_then(|period| parse_on(period, repeats.on.get(), errs));
    let ends = parse_ends(repeats.ends.get(), errs);
    if errs.0.len() > before {
        return None;
    }
    Some(Some(Recurrence::Every(Repeats {
        frequency: frequency?,
        period: period?,
        on: on?,
        ends: ends?,
    })))
}

/// `repeats.rrule`: an RFC 5545 RECUR value (with or without `RRULE:`), alone in `repeats`.
fn parse_rrule(value: &Value, repeats: &RepeatsIn, errs: &mut Errors) -> Option<Rrule> {
    const P: &str = "/repeats/rrule";
    let mut alone = true;
    for (name, field) in [
        ("frequency", &repeats.frequency),
        ("period", &repeats.period),
        ("on", &repeats.on),
        ("ends", &repeats.ends),
    ] {
        if let Some(other) = present(field.get()) {
            alone = false;
            errs.push(
                &format!("/repeats/{name}"),
                Some(other),
                format!(
                    "`{name}` is not used with `rrule`: the rule says how the task repeats \
                     (give `COUNT` or `UNTIL` in the rule for an end)"
                ),
            );
        }
    }
    let Some(text) = value.as_str() else {
        errs.push(
            P,
            Some(value),
            "`rrule` is a string holding an RFC 5545 rule such as `FREQ=MONTHLY;BYDAY=2TU`",
        );
        return None;
    };
    match Rrule::parse(text) {
        Ok(rule) if alone => Some(rule),
        Ok(_) => None,
        Err(e) => {
            errs.push(P, Some(value), format!("not a rule Chime accepts: {e}"));
            None
        }
    }
}

/// A JSON integer, or a string holding one; `None` for anything else (fractions included).
pub(super) fn integer(value: &Value) -> Option<i64> {
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
