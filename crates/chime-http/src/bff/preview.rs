//! The task form's helpers: a start date typed as a wall-clock time in the chosen zone, and
//! the notes on a preview where the calendar moves or skips an occurrence, or where the user's
//! quiet hours hold its email, SMS and push back (said by crate::notes, which the occurrences
//! API shares).
//!
//! The app sends `startDate` as `2026-03-29T02:30` (what a `datetime-local` field gives) with
//! a `timeZone`; the BFF resolves it in that zone (a time inside a DST gap moves forward by the
//! gap, as RFC 5545 and the recurrence engine do) before the task API sees it, so the browser
//! never computes offsets. A value that is not such a local time is passed on untouched, and
//! the task API names `/startDate` if it is wrong.

use chime_core::profile::Profile;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::notes;

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

/// `{"occurrences": [{"at", "local", "note"?}]}`: each due instant, its wall-clock time in the
/// task's zone, and why it is not where the pattern alone would put it (crate::notes).
pub fn annotate(body: &Value, occurrences: &Value) -> Value {
    let zone = notes::zone_of(body);
    let instants: Vec<Timestamp> = occurrences
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    if notes::wanted_start(body, &zone).is_none() {
        return json!({"occurrences": instants.iter().map(|t| json!({"at": t.to_string()})).collect::<Vec<_>>()});
    }
    let items: Vec<Value> = instants
        .iter()
        .zip(notes::calendar_notes(body, &instants, None))
        .map(|(at, notes)| {
            let mut item = json!({
                "at": at.to_string(),
                "local": at.to_zoned(zone.clone()).strftime("%Y-%m-%dT%H:%M").to_string(),
            });
            if !notes.is_empty() {
                let texts: Vec<&str> = notes.iter().map(|n| n.text.as_str()).collect();
                item["note"] = Value::String(texts.join("; "));
                // As the occurrences API gives them, for the app to say in the user's language.
                item["notes"] = json!(notes);
            }
            item
        })
        .collect();
    json!({"occurrences": items})
}

/// Adds to `preview` (what [`annotate`] made) where the user's quiet hours hold the task's
/// email, SMS or push back: "email and SMS sent at 07:00 (quiet hours)", on the profile's zone.
pub fn note_quiet_hours(preview: &mut Value, body: &Value, profile: &Profile) {
    let Some(items) = preview["occurrences"].as_array_mut() else {
        return;
    };
    let instants: Vec<Option<Timestamp>> = items
        .iter()
        .map(|item| item["at"].as_str().and_then(|s| s.parse().ok()))
        .collect();
    let known: Vec<Timestamp> = instants.iter().flatten().copied().collect();
    let mut held = notes::quiet_hours_notes(body, profile, &known).into_iter();
    for (item, at) in items.iter_mut().zip(instants) {
        if at.is_none() {
            continue;
        }
        let Some(note) = held.next().flatten() else {
            continue;
        };
        item["note"] = match item["note"].as_str() {
            Some(earlier) => Value::String(format!("{earlier}; {}", note.text)),
            None => Value::String(note.text.clone()),
        };
        match item["notes"].as_array_mut() {
            Some(notes) => notes.push(json!(note)),
            None => item["notes"] = json!([note]),
        }
    }
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
        assert_eq!(
            out["occurrences"][1]["notes"],
            json!([{"kind": "dstGap", "date": "2026-03-29", "wall": "02:30", "firesAt": "03:30",
                    "text": note}])
        );
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
        assert_eq!(out["occurrences"][0]["notes"][0]["kind"], "quietHours");
        assert_eq!(
            out["occurrences"][0]["notes"][0]["sentAt"],
            "2026-12-08T06:00:00Z"
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
