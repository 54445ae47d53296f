//! The task form's helpers: a start date typed as a wall-clock time in the chosen zone, and
//! the notes on a preview where the calendar moves or skips an occurrence, or where the user's
//! quiet hours hold its email, SMS and push back.
//!
//! The app sends `startDate` as `2026-03-29T02:30` (what a `datetime-local` field gives) with
//! a `timeZone`; the BFF resolves it in that zone (a time inside a DST gap moves forward by the
//! gap, as RFC 5545 and the recurrence engine do) before the task API sees it, so the browser
//! never computes offsets. A value that is not such a local time is passed on untouched, and
//! the task API names `/startDate` if it is wrong.

use chime_core::profile::Profile;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Value};

/// Rewrites a local `startDate` to an instant with its offset. Returns the wall-clock time
/// the user asked for.
pub fn resolve_local_start(body: &mut Value) -> Option<DateTime> {
    let zone = TimeZone::get(body.get("timeZone")?.as_str()?).ok()?;
    let raw = body.get("startDate")?.as_str()?;
    if raw.parse::<Timestamp>().is_ok() {
        return None;
    }
    let local: DateTime = raw.trim().parse().ok()?;
    let zoned = zone.to_ambiguous_zoned(local).compatible().ok()?;
    body["startDate"] = Value::String(zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string());
    Some(local)
}

fn zone_of(body: &Value) -> TimeZone {
    body.get("timeZone")
        .and_then(Value::as_str)
        .and_then(|name| TimeZone::get(name).ok())
        .unwrap_or(TimeZone::UTC)
}

/// The wall-clock start the user asked for, after [`resolve_local_start`] ran on `body`.
fn wanted_start(body: &Value, zone: &TimeZone) -> Option<DateTime> {
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

/// `{"occurrences": [{"at", "local", "note"?}]}`: each due instant, its wall-clock time in the
/// task's zone, and why it is not where the pattern alone would put it.
pub fn annotate(body: &Value, occurrences: &Value) -> Value {
    let zone = zone_of(body);
    let instants: Vec<Timestamp> = occurrences
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    let Some(wanted) = wanted_start(body, &zone) else {
        return json!({"occurrences": instants.iter().map(|t| json!({"at": t.to_string()})).collect::<Vec<_>>()});
    };
    let mut notes: Vec<Vec<String>> = vec![Vec::new(); instants.len()];
    let locals: Vec<DateTime> = instants
        .iter()
        .map(|t| t.to_zoned(zone.clone()).datetime())
        .collect();
    let intended = intended_locals(body, wanted, &zone, &instants, &locals);
    for (i, (local, meant)) in locals.iter().zip(&intended).enumerate() {
        if local != meant {
            notes[i].push(format!(
                "{} does not exist on {} (the clocks go forward): it fires at {}",
                meant.time().strftime("%H:%M"),
                meant.date().strftime("%-d %B"),
                local.time().strftime("%H:%M"),
            ));
        } else if zone.to_ambiguous_zoned(*local).is_ambiguous() {
            notes[i].push(format!(
                "{} happens twice on {} (the clocks go back): it fires once, at the first",
                local.time().strftime("%H:%M"),
                local.date().strftime("%-d %B"),
            ));
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
                if day > month.days_in_month() {
                    let end = month.last_of_month();
                    if let Some(i) = locals.iter().position(|l| l.date() > end) {
                        notes[i].push(skipped(month, day));
                    }
                }
            }
            match month.checked_add(jiff::Span::new().months(step)) {
                Ok(next) => month = next,
                Err(_) => break,
            }
        }
    }
    let items: Vec<Value> = instants
        .iter()
        .zip(&locals)
        .zip(notes)
        .map(|((at, local), notes)| {
            let mut item = json!({
                "at": at.to_string(),
                "local": local.strftime("%Y-%m-%dT%H:%M").to_string(),
            });
            if !notes.is_empty() {
                item["note"] = Value::String(notes.join("; "));
            }
            item
        })
        .collect();
    json!({"occurrences": items})
}

/// Adds to `preview` (what [`annotate`] made) where the user's quiet hours hold the task's
/// email, SMS or push back: "email and SMS sent at 07:00 (quiet hours)", on the profile's zone.
pub fn note_quiet_hours(preview: &mut Value, body: &Value, profile: &Profile) {
    if profile.quiet_hours.is_empty() || body["urgent"] == Value::Bool(true) {
        return;
    }
    let notify = &body["notify"];
    let text = |v: &Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    let channels: Vec<&str> = [
        (text(&notify["email"]), "email"),
        (text(&notify["sms"]) || notify["sms"].is_number(), "SMS"),
        (notify["push"] == Value::Bool(true), "push"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let Some((last, first)) = channels.split_last() else {
        return;
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
    let Some(items) = preview["occurrences"].as_array_mut() else {
        return;
    };
    for item in items {
        let Some(at) = item["at"]
            .as_str()
            .and_then(|s| s.parse::<Timestamp>().ok())
        else {
            continue;
        };
        let Some(end) = profile.quiet_hours.until(at, &tz) else {
            continue;
        };
        let end_local = end.to_zoned(tz.clone());
        let when = if end_local.date() == at.to_zoned(tz.clone()).date() {
            end_local.strftime("%H:%M").to_string()
        } else {
            end_local.strftime("%a %H:%M").to_string()
        };
        let note = format!("{held} sent at {when} (quiet hours)");
        item["note"] = match item["note"].as_str() {
            Some(earlier) => Value::String(format!("{earlier}; {note}")),
            None => Value::String(note),
        };
    }
}

fn skipped(month: Date, day: i8) -> String {
    format!(
        "{} has no day {day}: that occurrence is skipped",
        month.strftime("%B %Y")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(body: &mut Value, instants: &[&str]) -> Value {
        resolve_local_start(body);
        annotate(body, &json!(instants))
    }

    #[test]
    fn a_local_start_is_resolved_in_its_time_zone() {
        let mut body = json!({"startDate": "2026-07-01T09:00", "timeZone": "Europe/Berlin"});
        resolve_local_start(&mut body);
        assert_eq!(body["startDate"], "2026-07-01T09:00:00+02:00");
    }

    #[test]
    fn a_start_with_an_offset_is_left_alone() {
        let mut body = json!({"startDate": "2026-07-01T09:00:00Z", "timeZone": "Europe/Berlin"});
        assert!(resolve_local_start(&mut body).is_none());
        assert_eq!(body["startDate"], "2026-07-01T09:00:00Z");
    }

    #[test]
    fn an_occurrence_in_a_dst_gap_is_noted_as_moved() {
        let mut body = json!({
            "startDate": "2026-03-28T02:30", "timeZone": "Europe/Berlin",
            "repeats": {"frequency": 1, "period": "day"}
        });
        // 28 March 02:30 CET, then 29 March: 02:30 does not exist, it fires at 03:30 CEST.
        let out = preview(&mut body, &["2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z"]);
        assert!(out["occurrences"][0].get("note").is_none());
        let note = out["occurrences"][1]["note"].as_str().expect("a note");
        assert!(note.contains("02:30 does not exist on 29 March"), "{note}");
        assert_eq!(out["occurrences"][1]["local"], "2026-03-29T03:30");
    }

    #[test]
    fn a_rules_times_of_day_are_not_moves_but_its_time_in_a_gap_is() {
        // 00:00 start, then 02:30 and 09:00 each day: on 29 March only 02:30 moves.
        let mut body = json!({
            "startDate": "2026-03-28T00:00", "timeZone": "Europe/Berlin",
            "repeats": {"rrule": "FREQ=DAILY;BYHOUR=2,9;BYMINUTE=30"}
        });
        let out = preview(
            &mut body,
            &[
                "2026-03-28T01:30:00Z",
                "2026-03-28T08:30:00Z",
                "2026-03-29T01:30:00Z",
                "2026-03-29T07:30:00Z",
            ],
        );
        let notes: Vec<Option<&str>> = (0..4)
            .map(|i| out["occurrences"][i]["note"].as_str())
            .collect();
        assert_eq!(notes[0], None, "{out}");
        assert_eq!(notes[1], None, "{out}");
        assert!(
            notes[2].is_some_and(|n| n.contains("02:30 does not exist on 29 March")),
            "{out}"
        );
        assert_eq!(notes[3], None, "{out}");
    }

    #[test]
    fn quiet_hours_are_noted_where_they_hold_a_delivery_back() {
        // Monday nights 22:00 to Tuesday 07:00, Berlin.
        let profile = Profile::parse(
            json!({"timeZone": "Europe/Berlin",
                   "quietHours": [{"days": ["mo"], "from": "22:00", "to": "07:00"}]}),
            &Default::default(),
        )
        .expect("profile");
        let notify = json!({"email": "a@example.com", "sms": "+14075551212", "push": false});
        let mut nightly = json!({
            "startDate": "2026-12-07T23:30", "timeZone": "Europe/Berlin",
            "repeats": {"frequency": 1, "period": "day"}, "notify": notify
        });
        // Monday 23:30 waits until Tuesday 07:00; Tuesday 23:30 is not quiet.
        let mut out = preview(
            &mut nightly,
            &["2026-12-07T22:30:00Z", "2026-12-08T22:30:00Z"],
        );
        note_quiet_hours(&mut out, &nightly, &profile);
        assert_eq!(
            out["occurrences"][0]["note"],
            "email and SMS sent at Tue 07:00 (quiet hours)"
        );
        assert!(out["occurrences"][1].get("note").is_none(), "{out}");

        // Tuesday 06:30 is still Monday night's: 07:00 the same day.
        let mut early = json!({"startDate": "2026-12-08T06:30", "timeZone": "Europe/Berlin",
                               "notify": notify});
        let mut out = preview(&mut early, &["2026-12-08T05:30:00Z"]);
        note_quiet_hours(&mut out, &early, &profile);
        assert_eq!(
            out["occurrences"][0]["note"],
            "email and SMS sent at 07:00 (quiet hours)"
        );

        // Urgent: nothing is held.
        early["urgent"] = json!(true);
        let mut out = preview(&mut early, &["2026-12-08T05:30:00Z"]);
        note_quiet_hours(&mut out, &early, &profile);
        assert!(out["occurrences"][0].get("note").is_none());

        // In-app only: nothing is held, nothing to say.
        early["notify"] = json!({"inApp": true});
        let mut out = preview(&mut early, &["2026-12-08T05:30:00Z"]);
        note_quiet_hours(&mut out, &early, &profile);
        assert!(out["occurrences"][0].get("note").is_none());
    }

    #[test]
    fn a_month_without_the_day_is_noted_as_skipped() {
        let mut body = json!({
            "startDate": "2027-01-31T09:00", "timeZone": "UTC",
            "repeats": {"frequency": 1, "period": "month", "on": "31"}
        });
        let out = preview(
            &mut body,
            &[
                "2027-01-31T09:00:00Z",
                "2027-03-31T09:00:00Z",
                "2027-05-31T09:00:00Z",
            ],
        );
        let second = out["occurrences"][1]["note"].as_str().expect("a note");
        assert!(second.contains("February 2027 has no day 31"), "{second}");
        let third = out["occurrences"][2]["note"].as_str().expect("a note");
        assert!(third.contains("April 2027 has no day 31"), "{third}");
    }
}
