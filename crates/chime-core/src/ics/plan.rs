//! What an imported calendar becomes: each item read by [`super::import`] turned into the
//! task bodies of its reminders, for the API to check and create like any other body.
//!
//! One task per reminder. An item's reminders are its alarms (at most [`MAX_REMINDERS`], the
//! earliest first); without one, an event or to-do reminds at its start, and an all-day one at
//! 09:00 on its day. Each reminder's task:
//!
//! - `name` is the item's summary, `description` its description (both cut to what a task
//!   holds, at a character boundary).
//! - **When.** A relative alarm (`-PT15M`, or related to the end) shifts the item's wall-clock
//!   start by its offset on the item's zone (`timeZone` is that zone), so a weekly 09:00
//!   meeting with a 15-minute alarm is a weekly 08:45 reminder, DST or not. An absolute alarm
//!   is a one-time reminder at its instant (RFC 5545 gives it once, not per occurrence).
//! - **Repeats.** The item's `RRULE` as `repeats.rrule`; a series without `COUNT` that began
//!   more than a day ago starts at its first occurrence from then on (the same occurrences to
//!   come, without walking decades of past ones at every lookup). A shift that crosses midnight cannot
//!   follow a rule that picks days (BYDAY, BYMONTHDAY, ...), nor any shift a rule that picks
//!   hours or minutes: that reminder is skipped with the reason, the others kept.
//! - **Exceptions.** `EXDATE`s become `skipped`, `RDATE`s `added` (for an item without a rule,
//!   its start and its `RDATE`s are one time each), a moved occurrence (`RECURRENCE-ID` with a
//!   new start) `moved` when it stays between its neighbours, else skipped where the rule has
//!   it and added where it went; a cancelled one is skipped. Each shifted like the start, and
//!   only those from a day before `now` on (the past cannot fire).
//!
//! Whether a body is a valid task with something still to come is the API's to say (the
//! importer runs each through the task parser), so a rule Chime refuses is skipped with the
//! parser's reason.

use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::import::{Alarm, Import, Item, Skipped};
use crate::recurrence::{Recurrence, TaskZone};
use crate::task::{
    ParseOptions, TaskName, TaskSpec, MAX_ADDED, MAX_DESCRIPTION_CHARS, MAX_MOVED, MAX_SKIPPED,
};

/// Most reminders taken from one item's alarms.
pub const MAX_REMINDERS: usize = 3;

/// The local time an all-day item without an alarm reminds at.
const ALL_DAY_HOUR: i64 = 9;

/// One task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub uid: Option<String>,
    /// When it reminds, in words: `at the start`, `15 min before`, `09:00 on the day`.
    pub reminder: String,
    /// The task's body, as `POST /api/v1/tasks` takes it.
    pub body: Value,
}

/// What a file becomes: the tasks, and what is not imported with why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub tasks: Vec<Planned>,
    pub skipped: Vec<Skipped>,
}

/// When one reminder is due relative to its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reminder {
    /// This long after the item's wall-clock start (negative: before).
    Shift(SignedDuration),
    At(Timestamp),
}

/// Plans the tasks of every item of `import` (see the module doc); `now` drops exceptions
/// from more than a day ago.
pub fn plan(import: Import, now: Timestamp) -> Plan {
    let mut out = Plan {
        tasks: Vec::new(),
        skipped: import.skipped,
    };
    for item in &import.items {
        let skip = |reason: String| Skipped {
            uid: item.uid.clone(),
            summary: Some(item.summary.clone()),
            reason,
        };
        for reminder in reminders(item) {
            match body(item, reminder, now) {
                Ok(body) => out.tasks.push(Planned {
                    uid: item.uid.clone(),
                    reminder: describe(item, reminder),
                    body,
                }),
                Err(reason) => out.skipped.push(skip(reason)),
            }
        }
    }
    out
}

/// The item's reminders, earliest first, each once.
fn reminders(item: &Item) -> Vec<Reminder> {
    let span = item.end.as_ref().map_or(SignedDuration::ZERO, |end| {
        item.start.at.duration_until(end.at)
    });
    let mut out: Vec<Reminder> = item
        .alarms
        .iter()
        .map(|alarm| match *alarm {
            Alarm::Relative { offset, to_end } if to_end => Reminder::Shift(span + offset),
            Alarm::Relative { offset, .. } => Reminder::Shift(offset),
            Alarm::Absolute(at) => Reminder::At(at),
        })
        .collect();
    if out.is_empty() {
        out.push(Reminder::Shift(if item.start.all_day {
            SignedDuration::from_hours(ALL_DAY_HOUR)
        } else {
            SignedDuration::ZERO
        }));
    }
    let key = |r: &Reminder| match *r {
        Reminder::Shift(d) => item.start.at.saturating_add(d).unwrap_or(item.start.at),
        Reminder::At(t) => t,
    };
    out.sort_by_key(key);
    out.dedup();
    out.truncate(MAX_REMINDERS);
    out
}

/// `15 min before`, `at the start`, `09:00 on the day`, `once, at 2026-12-24T08:00:00Z`.
fn describe(item: &Item, reminder: Reminder) -> String {
    let d = match reminder {
        Reminder::At(t) => return format!("once, at {t}"),
        Reminder::Shift(d) => d,
    };
    if item.start.all_day {
        let at = item.start.local.checked_add(d).unwrap_or(item.start.local);
        let days = (at.date() - item.start.local.date()).get_days();
        let day = match days {
            0 => "on the day".to_owned(),
            -1 => "the day before".to_owned(),
            n if n < 0 => format!("{} days before", -n),
            n => format!("{n} days after"),
        };
        return format!("{} {day}", at.time().strftime("%H:%M"));
    }
    if d.is_zero() {
        return "at the start".to_owned();
    }
    let words = duration_words(d.unsigned_abs().as_secs());
    if d.is_negative() {
        format!("{words} before")
    } else {
        format!("{words} after the start")
    }
}

/// `15 min`, `2 h`, `1 day`, `1 day 2 h 30 min`.
fn duration_words(secs: u64) -> String {
    let (days, hours, mins) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days} {}", if days == 1 { "day" } else { "days" }));
    }
    if hours > 0 {
        parts.push(format!("{hours} h"));
    }
    if mins > 0 || parts.is_empty() {
        parts.push(format!("{mins} min"));
    }
    parts.join(" ")
}

/// The body of one reminder's task, or why it cannot be one.
fn body(item: &Item, reminder: Reminder, now: Timestamp) -> Result<Value, String> {
    let zone = &item.start.zone;
    let mut body = json!({
        "name": cut(&item.summary.replace(char::is_control, " "), TaskName::MAX_CHARS),
        "description": item.description.as_deref().map(|d| {
            let d = d.replace(|c: char| c.is_control() && !matches!(c, '\t' | '\n'), " ");
            cut(&d, MAX_DESCRIPTION_CHARS)
        }),
        "timeZone": zone.name(),
    });
    let shift = match reminder {
        Reminder::At(at) => {
            body["startDate"] = json!(at.to_string());
            return Ok(body);
        }
        Reminder::Shift(d) => d,
    };
    let shift_instant = |t: Timestamp| shifted(zone, zone.time_zone().to_datetime(t), shift);
    let start = shifted(zone, item.start.local, shift).ok_or("its reminder is out of range")?;
    body["startDate"] = json!(start.to_string());
    let recent = now
        .checked_sub(SignedDuration::from_hours(24))
        .unwrap_or(now);
    let keep = |t: &Timestamp| *t >= recent;
    let mut skipped: Vec<Timestamp> = item
        .exdates
        .iter()
        .filter_map(|t| shift_instant(*t))
        .collect();
    let mut added: Vec<Timestamp> = item
        .rdates
        .iter()
        .filter_map(|t| shift_instant(*t))
        .collect();
    let mut moves: Vec<(Timestamp, Timestamp)> = Vec::new();
    if let Some(rule) = &item.rrule {
        let crosses_midnight =
            start.to_zoned(zone.time_zone().clone()).date() != item.start.local.date();
        let picks_days = !(rule.by_day.is_empty()
            && rule.by_month_day.is_empty()
            && rule.by_year_day.is_empty()
            && rule.by_week_no.is_empty()
            && rule.by_month.is_empty()
            && rule.by_set_pos.is_empty());
        let picks_times = !(rule.by_hour.is_empty() && rule.by_minute.is_empty());
        if (crosses_midnight && picks_days) || (picks_times && !shift.is_zero()) {
            return Err(format!(
                "a reminder {} a repeating event on set days or times cannot follow its rule \
                 ({rule}); add it by hand",
                describe(item, reminder)
            ));
        }
        body["repeats"] = json!({"rrule": rule.to_string()});
        if let Some(later) = recent_start(rule, zone, item.start.local, shift, start, recent) {
            body["startDate"] = json!(later.to_string());
        }
        for o in &item.overrides {
            let Some(from) = shift_instant(o.recurrence_id) else {
                continue;
            };
            match o.start.and_then(shift_instant) {
                None => skipped.push(from),
                Some(to) => moves.push((from, to)),
            }
        }
    } else {
        // Its start and every RDATE are one time each; overrides of a one-time item cannot
        // name another occurrence.
        added.retain(|t| *t != start);
    }
    skipped.retain(keep);
    added.retain(keep);
    moves.retain(|(from, to)| keep(from) || keep(to));
    if skipped.len() > MAX_SKIPPED || added.len() > MAX_ADDED || moves.len() > MAX_MOVED {
        return Err(format!(
            "more exceptions than a task holds (at most {MAX_SKIPPED} skipped, {MAX_ADDED} \
             added and {MAX_MOVED} moved occurrences still to come)"
        ));
    }
    let instants =
        |ts: &[Timestamp]| -> Value { ts.iter().map(|t| json!(t.to_string())).collect() };
    body["skipped"] = instants(&skipped);
    body["added"] = instants(&added);
    // A move that does not stay between its neighbours is the same change as a skip where
    // the rule has it and an added time where it went.
    let spec = TaskSpec::parse_with(body.clone(), &ParseOptions::default());
    for (from, to) in moves {
        let fits = spec.as_ref().is_ok_and(|spec| {
            matches!(spec.schedule.repeats, Some(Recurrence::Rule(_)))
                && spec.schedule.check_move(from, to).is_ok()
        });
        if fits {
            push(
                &mut body,
                "moved",
                json!({"from": from.to_string(), "to": to.to_string()}),
            );
        } else {
            push(&mut body, "skipped", json!(from.to_string()));
            push(&mut body, "added", json!(to.to_string()));
        }
    }
    Ok(body)
}

/// For a rule without `COUNT` whose reminders began long before `recent`: its first
/// occurrence from `recent` on, as the task's start. The occurrences to come are the same
/// (the expansion keeps the rule's periods and what it takes from its start), and finding the
/// next one then costs as little as for a task made today, where a series begun in 1990 would
/// otherwise be walked from 1990 at every lookup. Only an occurrence whose local time exists as
/// written (not moved by a DST gap) is taken, so the wall clock the rule follows is unchanged.
fn recent_start(
    rule: &crate::recurrence::rrule::Rrule,
    zone: &TaskZone,
    local: DateTime,
    shift: SignedDuration,
    start: Timestamp,
    recent: Timestamp,
) -> Option<Timestamp> {
    if start >= recent || matches!(rule.end, Some(crate::recurrence::rrule::End::Count(_))) {
        return None;
    }
    let tz = zone.time_zone();
    let local = local.checked_add(shift).ok()?;
    rule.expand_near(local, tz, tz.to_datetime(recent))
        .take(10_000)
        .filter_map(|l| Some((l, tz.to_ambiguous_timestamp(l).compatible().ok()?)))
        .find(|(l, at)| *at >= recent && tz.to_datetime(*at) == *l)
        .map(|(_, at)| at)
}

fn push(body: &mut Value, field: &str, value: Value) {
    match body.get_mut(field).and_then(Value::as_array_mut) {
        Some(list) => list.push(value),
        None => body[field] = json!([value]),
    }
}

/// The instant of `local` + `shift` on `zone`'s wall clock (a gap passed forward, a fold at its
/// first instant).
fn shifted(zone: &TaskZone, local: DateTime, shift: SignedDuration) -> Option<Timestamp> {
    let at = local.checked_add(shift).ok()?;
    zone.time_zone()
        .to_ambiguous_timestamp(at)
        .compatible()
        .ok()
}

/// `text` cut to at most `max` characters, trimmed.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect::<String>().trim().to_owned()
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
