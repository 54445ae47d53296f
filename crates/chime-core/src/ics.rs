//! A user's tasks as an iCalendar feed (RFC 5545), for calendars that subscribe to a URL
//! (Google Calendar, Apple Calendar, Thunderbird).
//!
//! Each task is one `VEVENT` (`UID` `{task id}@chime`) due at its start, with a `VALARM` at the
//! due instant (`TRIGGER:PT0S`):
//!
//! - `DTSTART;TZID={IANA zone}:{local time}` of the first occurrence (a calendar counts
//!   `DTSTART` as one; Chime's start need not be) on the task zone's wall clock (a calendar resolves
//!   the IANA name itself), `DTSTART:…Z` for `UTC`, and for a fixed offset (`+05:30`) a
//!   `VTIMEZONE` of that one offset (`TZID:Fixed+0530`), so the rule's hours stay local.
//! - `RRULE`: the task's rule ([`Schedule::rrule`]), with `UNTIL` turned into the UTC instant
//!   RFC 5545 requires beside a `DTSTART` with a time zone (a last local date becomes its last
//!   second on the zone's wall clock).
//! - `EXDATE` (UTC) for each skipped occurrence, `RDATE` (UTC) for each added one; a moved
//!   occurrence is a second `VEVENT` with the same `UID`, `RECURRENCE-ID` (UTC, the instant the
//!   rule gives it) and its new `DTSTART`.
//!
//! Text is escaped (`\\`, `\;`, `\,`, `\n`) and lines are folded at 75 octets, CRLF-terminated.
//! A round-trip test expands the feed with Python's `icalendar` and `recurring_ical_events`
//! and compares a year of occurrences with Chime's own.

pub mod import;
pub mod plan;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::recurrence::rrule::{End, Until};
use crate::recurrence::TaskZone;
use crate::task::TaskSpec;

/// One task of the feed.
pub struct FeedTask<'a> {
    /// The task id (`tsk_…`).
    pub id: &'a str,
    pub spec: &'a TaskSpec,
    /// When the task last changed (`DTSTAMP`, `LAST-MODIFIED`).
    pub modified: Timestamp,
}

/// The feed's `text/calendar` body.
pub fn calendar(name: &str, tasks: &[FeedTask<'_>]) -> String {
    let mut out = Lines::default();
    out.line("BEGIN:VCALENDAR");
    out.line("VERSION:2.0");
    out.line("PRODID:-//Chime//Chime reminders//EN");
    out.line("CALSCALE:GREGORIAN");
    out.line("METHOD:PUBLISH");
    out.line(&format!("X-WR-CALNAME:{}", escape(name)));
    let fixed: BTreeSet<String> = tasks
        .iter()
        .filter_map(|t| fixed_offset(&t.spec.schedule.zone))
        .collect();
    for offset in &fixed {
        out.line("BEGIN:VTIMEZONE");
        out.line(&format!("TZID:Fixed{offset}"));
        out.line("BEGIN:STANDARD");
        out.line("DTSTART:19700101T000000");
        out.line(&format!("TZOFFSETFROM:{offset}"));
        out.line(&format!("TZOFFSETTO:{offset}"));
        out.line("END:STANDARD");
        out.line("END:VTIMEZONE");
    }
    for task in tasks {
        event(&mut out, task);
    }
    out.line("END:VCALENDAR");
    out.0
}

fn event(out: &mut Lines, task: &FeedTask<'_>) {
    let spec = task.spec;
    let schedule = &spec.schedule;
    let zone = &schedule.zone;
    let common = |out: &mut Lines| {
        out.line(&format!("UID:{}@chime", task.id));
        out.line(&format!("DTSTAMP:{}", utc(task.modified)));
        out.line(&format!("LAST-MODIFIED:{}", utc(task.modified)));
        out.line(&format!("SUMMARY:{}", escape(spec.name.as_str())));
        if let Some(description) = &spec.description {
            out.line(&format!("DESCRIPTION:{}", escape(description)));
        }
    };
    // A calendar counts DTSTART as the first instance (RFC 5545 leaves a DTSTART that the rule
    // does not match undefined), where Chime's start need not be an occurrence (weekly on
    // Mondays from a Thursday): the feed starts at the rule's first occurrence.
    let plain = crate::recurrence::Schedule {
        exceptions: Default::default(),
        ..schedule.clone()
    };
    let first = plain.first().map_or(schedule.start, |o| o.at);
    out.line("BEGIN:VEVENT");
    common(out);
    out.line(&format!("DTSTART{}", at(zone, first)));
    if let Some(mut rule) = schedule.rrule() {
        if let Some(End::Until(until)) = rule.end {
            rule.end = Some(End::Until(Until::Utc(until_instant(until, zone))));
        }
        out.line(&format!("RRULE:{rule}"));
    }
    let exceptions = &schedule.exceptions;
    // A skipped instant that was added again fires (RFC 5545 would take the EXDATE over the
    // RDATE): the feed leaves both out, and the rule gives it.
    let skipped: Vec<String> = exceptions
        .skipped
        .difference(&exceptions.added)
        .map(|t| utc(*t))
        .collect();
    if !skipped.is_empty() {
        out.line(&format!("EXDATE:{}", skipped.join(",")));
    }
    let added: Vec<String> = exceptions
        .added
        .difference(&exceptions.skipped)
        .filter(|t| **t != first)
        .map(|t| utc(*t))
        .collect();
    if !added.is_empty() {
        out.line(&format!("RDATE:{}", added.join(",")));
    }
    alarm(out, spec.name.as_str());
    out.line("END:VEVENT");
    for (from, to) in &schedule.exceptions.moved {
        out.line("BEGIN:VEVENT");
        common(out);
        out.line(&format!("RECURRENCE-ID:{}", utc(*from)));
        out.line(&format!("DTSTART{}", at(zone, *to)));
        alarm(out, spec.name.as_str());
        out.line("END:VEVENT");
    }
}

fn alarm(out: &mut Lines, name: &str) {
    out.line("BEGIN:VALARM");
    out.line("ACTION:DISPLAY");
    out.line(&format!("DESCRIPTION:{}", escape(name)));
    out.line("TRIGGER:PT0S");
    out.line("END:VALARM");
}

/// `;TZID=Europe/Berlin:20261207T090000`, `:20261207T080000Z` or `;TZID=Fixed+0530:…`.
fn at(zone: &TaskZone, instant: Timestamp) -> String {
    let local = zone
        .time_zone()
        .to_datetime(instant)
        .strftime("%Y%m%dT%H%M%S");
    match fixed_offset(zone) {
        _ if zone.name() == "UTC" => format!(":{}", utc(instant)),
        Some(offset) => format!(";TZID=Fixed{offset}:{local}"),
        None => format!(";TZID={}:{local}", zone.name()),
    }
}

/// `+0530` for a fixed-offset zone (`+05:30`), `None` for an IANA one.
fn fixed_offset(zone: &TaskZone) -> Option<String> {
    let name = zone.name();
    name.starts_with(['+', '-']).then(|| name.replace(':', ""))
}

fn utc(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// `UNTIL` as the UTC instant it ends at on the zone's wall clock.
fn until_instant(until: Until, zone: &TaskZone) -> Timestamp {
    let tz = zone.time_zone();
    let local = match until {
        Until::Utc(t) => return t,
        Until::Local(dt) => dt,
        Until::Date(d) => d.to_datetime(jiff::civil::time(23, 59, 59, 0)),
    };
    tz.to_ambiguous_timestamp(local)
        .later()
        .unwrap_or(Timestamp::MAX)
}

/// RFC 5545 TEXT: backslash, semicolon, comma and line breaks escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Content lines, folded at 75 octets (never inside a character) and ended with CRLF.
#[derive(Default)]
struct Lines(String);

impl Lines {
    fn line(&mut self, line: &str) {
        let mut width = 0;
        for c in line.chars() {
            let len = c.len_utf8();
            if width + len > 75 {
                self.0.push_str("\r\n ");
                width = 1;
            }
            self.0.push(c);
            width += len;
        }
        let _ = write!(self.0, "\r\n");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(body: serde_json::Value) -> TaskSpec {
        TaskSpec::parse(&body).unwrap()
    }

    #[test]
    fn a_task_is_an_event_with_its_rule_zone_alarm_and_exceptions() {
        let mut task = spec(json!({
            "name": "Stand-up; daily, with \\ and",
            "description": "line one\nline two",
            "startDate": "2026-12-07T09:00:00+01:00",
            "timeZone": "Europe/Berlin",
            "repeats": {"period": "week", "on": "mo,we", "ends": "2027-06-30"},
        }));
        let skipped: Timestamp = "2026-12-09T08:00:00Z".parse().unwrap();
        let moved: Timestamp = "2026-12-14T08:00:00Z".parse().unwrap();
        task.schedule.exceptions.skipped.insert(skipped);
        task.schedule
            .exceptions
            .moved
            .insert(moved, "2026-12-14T10:00:00Z".parse().unwrap());
        let feed = calendar(
            "Chime",
            &[FeedTask {
                id: "tsk_1",
                spec: &task,
                modified: "2026-12-01T00:00:00Z".parse().unwrap(),
            }],
        );
        let lines: Vec<&str> = feed.split("\r\n").collect();
        for expected in [
            "UID:tsk_1@chime",
            "DTSTART;TZID=Europe/Berlin:20261207T090000",
            // The last local date's last second, Berlin winter time.
            "RRULE:FREQ=WEEKLY;UNTIL=20270630T215959Z;BYDAY=MO,WE",
            "EXDATE:20261209T080000Z",
            "RECURRENCE-ID:20261214T080000Z",
            "DTSTART;TZID=Europe/Berlin:20261214T110000",
            "TRIGGER:PT0S",
            "SUMMARY:Stand-up\\; daily\\, with \\\\ and",
            "DESCRIPTION:line one\\nline two",
        ] {
            assert!(lines.contains(&expected), "no {expected:?} in\n{feed}");
        }
        assert!(feed.ends_with("END:VCALENDAR\r\n"));
        assert!(lines.iter().all(|l| l.len() <= 75), "{feed}");
    }

    #[test]
    fn a_fixed_offset_gets_its_own_time_zone_and_long_lines_fold_between_characters() {
        let task = spec(json!({
            "name": "ü".repeat(60),
            "startDate": "2026-12-07T09:00:00+05:30",
        }));
        let feed = calendar(
            "Chime",
            &[FeedTask {
                id: "tsk_2",
                spec: &task,
                modified: "2026-12-01T00:00:00Z".parse().unwrap(),
            }],
        );
        assert!(feed.contains("TZID:Fixed+0530\r\n"), "{feed}");
        assert!(feed.contains("DTSTART;TZID=Fixed+0530:20261207T090000\r\n"));
        assert!(feed.split("\r\n").all(|l| l.len() <= 75));
        // Unfolded, the summary is whole again.
        let unfolded = feed.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("SUMMARY:{}\r\n", "ü".repeat(60))));
    }
}
