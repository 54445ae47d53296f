//! Why an occurrence is not where its pattern alone would put it, or when its delivery waits:
//! a wall-clock time a DST gap skips (it fires after the gap), one a DST fold repeats (it fires
//! once, at the first), a month without the day a monthly or yearly task asks for (that one is
//! skipped), and the user's quiet hours holding the email, SMS and push back. The task form's
//! preview (`/bff/preview`) says them in a line of English; `GET /api/v1/occurrences` gives
//! each as data too (`kind` and its parts), so an app can say it in the user's language.
//!
//! Read from the task's body in the API's shape (the form's, or a stored task's fields), so
//! the preview of a task being typed and the task once saved are noted by one piece of code.

use chime_core::profile::Profile;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// What kind of note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum NoteKind {
    /// `wall` does not exist on `date` (the clocks go forward): it fires at `firesAt`.
    DstGap,
    /// `wall` happens twice on `date` (the clocks go back): it fires once, at the first.
    DstRepeated,
    /// `month` has no day `day`: that month's occurrence is skipped (noted on the next one).
    ShortMonth,
    /// The user's quiet hours hold `channels` back until `sentAt`.
    QuietHours,
}

/// A note on one occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub kind: NoteKind,
    /// The note in English, as the task form's preview says it.
    #[schema(
        example = "02:30 does not exist on 29 March (the clocks go forward): it fires at 03:30"
    )]
    pub text: String,
    /// The local date the DST note is about, in the task's zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-03-29")]
    pub date: Option<String>,
    /// The wall-clock time the pattern asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "02:30")]
    pub wall: Option<String>,
    /// The wall-clock time it fires at instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "03:30")]
    pub fires_at: Option<String>,
    /// The month without the day.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2027-02")]
    pub month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 31)]
    pub day: Option<i8>,
    /// The channels held back: `email`, `sms`, `push`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// When quiet hours end and they go out, RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2026-12-08T06:00:00Z")]
    pub sent_at: Option<Timestamp>,
}

impl Note {
    fn new(kind: NoteKind, text: String) -> Self {
        Self {
            kind,
            text,
            date: None,
            wall: None,
            fires_at: None,
            month: None,
            day: None,
            channels: None,
            sent_at: None,
        }
    }
}

pub(crate) fn zone_of(body: &Value) -> TimeZone {
    body.get("timeZone")
        .and_then(Value::as_str)
        .and_then(|name| TimeZone::get(name).ok())
        .unwrap_or(TimeZone::UTC)
}

/// The wall-clock start the user asked for, after [`resolve_local_start`] ran on `body`.
pub(crate) fn wanted_start(body: &Value, zone: &TimeZone) -> Option<DateTime> {
    let raw = body.get("startDate")?.as_str()?;
    let instant: Timestamp = raw.parse().ok().or_else(|| {
        jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S%.f%z", raw)
            .ok()?
            .to_timestamp()
            .ok()
    })?;
    Some(instant.to_zoned(zone.clone()).datetime())
}

fn frequency(body: &Value) -> i32 {
    let f = &body["repeats"]["frequency"];
    f.as_i64()
        .or_else(|| f.as_str().and_then(|s| s.trim().parse().ok()))
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

/// Days of the month a monthly or yearly task asks for that some months lack (29 to 31).
fn fragile_days(body: &Value, start: DateTime) -> Vec<i8> {
    let period = body["repeats"]["period"].as_str().unwrap_or("");
    let on = &body["repeats"]["on"];
    let mut days: Vec<i8> = match (period, on) {
        ("month", Value::Array(items)) => items.iter().filter_map(day_number).collect(),
        ("month", Value::String(s)) if !s.trim().is_empty() => s
            .split([',', ' '])
            .filter_map(|p| p.trim().parse::<i8>().ok())
            .collect(),
        ("month", Value::Number(n)) => n
            .as_i64()
            .and_then(|n| i8::try_from(n).ok())
            .into_iter()
            .collect(),
        ("month" | "year", _) => vec![start.day()],
        _ => Vec::new(),
    };
    days.retain(|d| *d >= 29);
    days.sort_unstable();
    days.dedup();
    days
}

fn day_number(v: &Value) -> Option<i8> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .and_then(|n| i8::try_from(n).ok())
}

/// The wall-clock time each occurrence was meant at, before a DST gap moved it: the start's
/// time of day on the occurrence's date for the design's fields; for an RFC 5545 rule, the
/// local date-time of the rule's expansion that gave the instant (a rule's times of day
/// differ, so only the expansion knows which were moved).
fn intended_locals(
    body: &Value,
    wanted: DateTime,
    zone: &TimeZone,
    instants: &[Timestamp],
    locals: &[DateTime],
) -> Vec<DateTime> {
    let mut intended: Vec<DateTime> = locals
        .iter()
        .map(|local| {
            if local.time() == wanted.time() {
                *local
            } else {
                // Moved forward by a gap from the start's time of day, on that date or (a gap
                // across midnight) the day before.
                let on = |date: Date| date.to_datetime(wanted.time());
                let same_day = on(local.date());
                if same_day < *local {
                    same_day
                } else {
                    local.date().yesterday().map_or(same_day, on)
                }
            }
        })
        .collect();
    let rule = body["repeats"]["rrule"]
        .as_str()
        .and_then(|text| chime_core::recurrence::rrule::Rrule::parse(text).ok());
    if let (Some(rule), Some(first), Some(last)) = (rule, locals.first(), instants.last()) {
        intended.clone_from_slice(locals);
        let mut found = vec![false; instants.len()];
        let near = first
            .checked_sub(jiff::Span::new().days(2))
            .unwrap_or(wanted);
        for meant in rule.expand_near(wanted, zone, near).take(100_000) {
            let Ok(at) = zone.to_ambiguous_timestamp(meant).compatible() else {
                break;
            };
            if at > *last {
                break;
            }
            // The first local time that gives an instant is the one that fires (the schedule
            // drops the later ones).
            if let Some(i) = instants.iter().position(|t| *t == at) {
                if !found[i] {
                    found[i] = true;
                    intended[i] = meant;
                }
            }
        }
    }
    intended
}

/// The calendar's notes on each of `instants` (a task's due instants, in order), by index.
/// `since`: skipped months that ended before that day are not noted (a list from now has no
/// occurrence before them to have skipped).
pub fn calendar_notes(body: &Value, instants: &[Timestamp], since: Option<Date>) -> Vec<Vec<Note>> {
    let mut notes: Vec<Vec<Note>> = vec![Vec::new(); instants.len()];
    let zone = zone_of(body);
    let Some(wanted) = wanted_start(body, &zone) else {
        return notes;
    };
    let locals: Vec<DateTime> = instants
        .iter()
        .map(|t| t.to_zoned(zone.clone()).datetime())
        .collect();
    let intended = intended_locals(body, wanted, &zone, instants, &locals);
    for (i, (local, meant)) in locals.iter().zip(&intended).enumerate() {
        if local != meant {
            let mut note = Note::new(
                NoteKind::DstGap,
                format!(
                    "{} does not exist on {} (the clocks go forward): it fires at {}",
                    meant.time().strftime("%H:%M"),
                    meant.date().strftime("%-d %B"),
                    local.time().strftime("%H:%M"),
                ),
            );
            note.date = Some(meant.date().to_string());
            note.wall = Some(meant.time().strftime("%H:%M").to_string());
            note.fires_at = Some(local.time().strftime("%H:%M").to_string());
            notes[i].push(note);
        } else if zone.to_ambiguous_zoned(*local).is_ambiguous() {
            let mut note = Note::new(
                NoteKind::DstRepeated,
                format!(
                    "{} happens twice on {} (the clocks go back): it fires once, at the first",
                    local.time().strftime("%H:%M"),
                    local.date().strftime("%-d %B"),
                ),
            );
            note.date = Some(local.date().to_string());
            note.wall = Some(local.time().strftime("%H:%M").to_string());
            notes[i].push(note);
        }
    }
    let period = body["repeats"]["period"].as_str().unwrap_or("");
    let step = match period {
        "month" => frequency(body),
        "year" => 12 * frequency(body),
        _ => 0,
    };
    if let (true, Some(last)) = (step > 0, locals.last()) {
        let days = fragile_days(body, wanted);
        let mut month = wanted.date().first_of_month();
        while month <= last.date() && !days.is_empty() {
            for &day in &days {
                let end = month.last_of_month();
                if day > month.days_in_month() && since.is_none_or(|since| end >= since) {
                    if let Some(i) = locals.iter().position(|l| l.date() > end) {
                        let mut note = Note::new(
                            NoteKind::ShortMonth,
                            format!(
                                "{} has no day {day}: that occurrence is skipped",
                                month.strftime("%B %Y")
                            ),
                        );
                        note.month = Some(month.strftime("%Y-%m").to_string());
                        note.day = Some(day);
                        notes[i].push(note);
                    }
                }
            }
            match month.checked_add(jiff::Span::new().months(step)) {
                Ok(next) => month = next,
                Err(_) => break,
            }
        }
    }
    notes
}

/// Where the user's quiet hours hold the task's email, SMS or push back, for each of
/// `instants`: "email and SMS sent at 07:00 (quiet hours)", on the profile's zone. None for an
/// urgent task, one with none of those channels, or a user without quiet hours.
pub fn quiet_hours_notes(
    body: &Value,
    profile: &Profile,
    instants: &[Timestamp],
) -> Vec<Option<Note>> {
    let none = || vec![None; instants.len()];
    if profile.quiet_hours.is_empty() || body["urgent"] == Value::Bool(true) {
        return none();
    }
    let notify = &body["notify"];
    let text = |v: &Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    let channels: Vec<(&str, &str)> = [
        (text(&notify["email"]), "email", "email"),
        (
            text(&notify["sms"]) || notify["sms"].is_number(),
            "sms",
            "SMS",
        ),
        (notify["push"] == Value::Bool(true), "push", "push"),
    ]
    .into_iter()
    .filter_map(|(on, id, name)| on.then_some((id, name)))
    .collect();
    let names: Vec<&str> = channels.iter().map(|(_, name)| *name).collect();
    let Some((last, first)) = names.split_last() else {
        return none();
    };
    let held = if first.is_empty() {
        (*last).to_owned()
    } else {
        format!("{} and {last}", first.join(", "))
    };
    let tz = profile
        .time_zone
        .as_ref()
        .map_or(TimeZone::UTC, |z| z.time_zone());
    instants
        .iter()
        .map(|&at| {
            let end = profile.quiet_hours.until(at, &tz)?;
            let end_local = end.to_zoned(tz.clone());
            let when = if end_local.date() == at.to_zoned(tz.clone()).date() {
                end_local.strftime("%H:%M").to_string()
            } else {
                end_local.strftime("%a %H:%M").to_string()
            };
            let mut note = Note::new(
                NoteKind::QuietHours,
                format!("{held} sent at {when} (quiet hours)"),
            );
            note.channels = Some(channels.iter().map(|(id, _)| (*id).to_owned()).collect());
            note.sent_at = Some(end);
            Some(note)
        })
        .collect()
}
