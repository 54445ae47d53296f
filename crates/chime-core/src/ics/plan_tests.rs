use jiff::Timestamp;
use serde_json::{json, Value};

use super::{plan, Plan};
use crate::ics::import::parse;
use crate::recurrence::TaskZone;
use crate::task::{ParseOptions, TaskSpec};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("instant")
}

/// `events` wrapped in a calendar, planned at `now`.
fn planned(events: &str, now: &str) -> Plan {
    let text = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n{}END:VCALENDAR\r\n",
        events.replace('\n', "\r\n")
    );
    let import = parse(&text, &TaskZone::parse("Europe/Berlin").expect("zone")).expect("parsed");
    plan(import, ts(now))
}

/// The body as the task parser reads it: every planned body must be a valid task.
fn spec(body: &Value) -> TaskSpec {
    TaskSpec::parse_with(body.clone(), &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{body} refused: {e:?}"))
}

#[test]
fn a_weekly_meeting_with_an_alarm_is_a_weekly_reminder_shifted_with_its_exceptions() {
    let plan = planned(
        "BEGIN:VEVENT
UID:standup@example.com
SUMMARY:Stand-up
DTSTART;TZID=Europe/Berlin:20261207T090000
DTEND;TZID=Europe/Berlin:20261207T091500
RRULE:FREQ=WEEKLY;BYDAY=MO,WE
EXDATE;TZID=Europe/Berlin:20261209T090000
RDATE;TZID=Europe/Berlin:20261212T090000
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT15M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:standup@example.com
RECURRENCE-ID;TZID=Europe/Berlin:20261214T090000
SUMMARY:Stand-up (late)
DTSTART;TZID=Europe/Berlin:20261214T110000
END:VEVENT
BEGIN:VEVENT
UID:standup@example.com
RECURRENCE-ID;TZID=Europe/Berlin:20261216T090000
STATUS:CANCELLED
SUMMARY:Stand-up
DTSTART;TZID=Europe/Berlin:20261216T090000
END:VEVENT
BEGIN:VEVENT
UID:standup@example.com
RECURRENCE-ID;TZID=Europe/Berlin:20261221T090000
SUMMARY:Stand-up (Thursday)
DTSTART;TZID=Europe/Berlin:20261224T090000
END:VEVENT
",
        "2026-12-06T12:00:00Z",
    );
    assert_eq!(plan.skipped, [], "{plan:?}");
    assert_eq!(plan.tasks.len(), 1);
    let task = &plan.tasks[0];
    assert_eq!(task.reminder, "15 min before");
    assert_eq!(task.uid.as_deref(), Some("standup@example.com"));
    let body = &task.body;
    assert_eq!(body["name"], "Stand-up");
    assert_eq!(body["timeZone"], "Europe/Berlin");
    // 08:45 Berlin (UTC+1), and every exception 15 minutes earlier too.
    assert_eq!(body["startDate"], "2026-12-07T07:45:00Z");
    assert_eq!(body["repeats"], json!({"rrule": "FREQ=WEEKLY;BYDAY=MO,WE"}));
    assert_eq!(
        body["skipped"],
        json!([
            "2026-12-09T07:45:00Z",
            "2026-12-16T07:45:00Z",
            // Moved past its next neighbour (Wednesday the 23rd): skipped and added instead.
            "2026-12-21T07:45:00Z"
        ])
    );
    assert_eq!(
        body["added"],
        json!(["2026-12-12T07:45:00Z", "2026-12-24T07:45:00Z"])
    );
    assert_eq!(
        body["moved"],
        json!([{"from": "2026-12-14T07:45:00Z", "to": "2026-12-14T09:45:00Z"}])
    );
    let s = spec(body);
    assert_eq!(
        s.schedule.upcoming(ts("2026-12-06T12:00:00Z"), 8),
        [
            ts("2026-12-07T07:45:00Z"),
            ts("2026-12-12T07:45:00Z"),
            ts("2026-12-14T09:45:00Z"),
            ts("2026-12-23T07:45:00Z"),
            ts("2026-12-24T07:45:00Z"),
            ts("2026-12-28T07:45:00Z"),
            ts("2026-12-30T07:45:00Z"),
            ts("2027-01-04T07:45:00Z"),
        ]
    );
}

#[test]
fn an_all_day_birthday_reminds_at_nine_or_at_its_alarm_and_a_rule_on_set_days_cannot_shift_a_day() {
    let plan = planned(
        "BEGIN:VEVENT
UID:anna@example.com
SUMMARY:Anna's birthday
DTSTART;VALUE=DATE:20270314
RRULE:FREQ=YEARLY
END:VEVENT
BEGIN:VEVENT
UID:ben@example.com
SUMMARY:Ben's birthday
DTSTART;VALUE=DATE:20270402
RRULE:FREQ=YEARLY
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT15H
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:rent@example.com
SUMMARY:Rent
DTSTART;VALUE=DATE:20270101
RRULE:FREQ=MONTHLY;BYMONTHDAY=1
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-P1D
END:VALARM
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:PT8H
END:VALARM
END:VEVENT
",
        "2026-12-06T12:00:00Z",
    );
    let by_name: Vec<(&str, &str, &str)> = plan
        .tasks
        .iter()
        .map(|t| {
            (
                t.body["name"].as_str().expect("name"),
                t.reminder.as_str(),
                t.body["startDate"].as_str().expect("start"),
            )
        })
        .collect();
    assert_eq!(
        by_name,
        [
            (
                "Anna's birthday",
                "09:00 on the day",
                "2027-03-14T08:00:00Z"
            ),
            (
                "Ben's birthday",
                "09:00 the day before",
                "2027-04-01T07:00:00Z"
            ),
            ("Rent", "08:00 on the day", "2027-01-01T07:00:00Z"),
        ]
    );
    for t in &plan.tasks {
        spec(&t.body);
    }
    assert_eq!(plan.skipped.len(), 1, "{plan:?}");
    assert_eq!(plan.skipped[0].summary.as_deref(), Some("Rent"));
    assert!(
        plan.skipped[0].reason.contains("00:00 the day before")
            && plan.skipped[0].reason.contains("FREQ=MONTHLY;BYMONTHDAY=1"),
        "{}",
        plan.skipped[0].reason
    );
}

#[test]
fn absolute_alarms_are_one_time_reminders_and_one_time_items_keep_their_rdates() {
    let plan = planned(
        "BEGIN:VTODO
UID:tax@example.com
SUMMARY:File taxes
DUE:20270531T220000Z
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER;VALUE=DATE-TIME:20270520T080000Z
END:VALARM
END:VTODO
BEGIN:VEVENT
UID:course@example.com
SUMMARY:First aid course\\, part 1
DESCRIPTION:Bring\\nlunch
DTSTART:20270110T090000Z
RDATE:20270117T090000Z,20270124T090000Z
END:VEVENT
",
        "2026-12-06T12:00:00Z",
    );
    assert_eq!(plan.skipped, [], "{plan:?}");
    let tax = &plan.tasks[0];
    assert_eq!(tax.reminder, "once, at 2027-05-20T08:00:00Z");
    assert_eq!(tax.body["startDate"], "2027-05-20T08:00:00Z");
    assert!(tax.body.get("repeats").is_none_or(Value::is_null));
    let course = &plan.tasks[1];
    assert_eq!(course.body["name"], "First aid course, part 1");
    assert_eq!(course.body["description"], "Bring\nlunch");
    let s = spec(&course.body);
    assert_eq!(
        s.schedule.upcoming(ts("2026-12-06T12:00:00Z"), 5),
        [
            ts("2027-01-10T09:00:00Z"),
            ts("2027-01-17T09:00:00Z"),
            ts("2027-01-24T09:00:00Z")
        ]
    );
}

#[test]
fn exceptions_long_past_are_dropped_and_names_are_cut_to_what_a_task_holds() {
    let long = "x".repeat(300);
    let plan = planned(
        &format!(
            "BEGIN:VEVENT
UID:old@example.com
SUMMARY:{long}
DTSTART;TZID=America/New_York:20200106T080000
RRULE:FREQ=DAILY
EXDATE;TZID=America/New_York:20200107T080000,20261210T080000
END:VEVENT
"
        ),
        "2026-12-06T12:00:00Z",
    );
    let body = &plan.tasks[0].body;
    assert_eq!(body["name"].as_str().map(|n| n.chars().count()), Some(200));
    assert_eq!(body["skipped"], json!(["2026-12-10T13:00:00Z"]));
    // Begun in 2020 without a count: it starts at its first occurrence from a day ago, so no
    // lookup walks six years of it; the occurrences to come are the same.
    assert_eq!(body["startDate"], "2026-12-05T13:00:00Z");
    assert_eq!(
        spec(body).schedule.upcoming(ts("2026-12-06T12:00:00Z"), 4),
        [
            ts("2026-12-06T13:00:00Z"),
            ts("2026-12-07T13:00:00Z"),
            ts("2026-12-08T13:00:00Z"),
            ts("2026-12-09T13:00:00Z")
        ]
    );
}

#[test]
fn a_series_begun_long_ago_starts_nearer_now_with_the_same_occurrences_to_come() {
    let now = "2026-12-06T12:00:00Z";
    for (zone, dtstart, rule) in [
        (
            "Europe/Berlin",
            "20190102T093000",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=WE,FR",
        ),
        (
            "America/Santiago",
            "20180131T000000",
            "FREQ=MONTHLY;BYDAY=-1FR",
        ),
        (
            "Australia/Lord_Howe",
            "20150301T020000",
            "FREQ=YEARLY;BYMONTH=3,10;BYDAY=1SU",
        ),
        ("Europe/Dublin", "20200315T010000", "FREQ=HOURLY;INTERVAL=7"),
        (
            "America/New_York",
            "20210101T013000",
            "FREQ=MINUTELY;INTERVAL=45",
        ),
        (
            "Pacific/Apia",
            "20111225T100000",
            "FREQ=DAILY;UNTIL=20280101T000000Z",
        ),
        ("Europe/Berlin", "20190331T023000", "FREQ=YEARLY"),
    ] {
        let plan = planned(
            &format!(
                "BEGIN:VEVENT\nUID:x\nSUMMARY:x\nDTSTART;TZID={zone}:{dtstart}\nRRULE:{rule}\nEND:VEVENT\n"
            ),
            now,
        );
        let body = &plan.tasks[0].body;
        let forwarded = spec(body);
        let mut from_start = body.clone();
        from_start["startDate"] = json!(plan_start(zone, dtstart).to_string());
        let from_start = spec(&from_start);
        assert!(
            forwarded.schedule.start > from_start.schedule.start,
            "{rule}"
        );
        assert_eq!(
            forwarded.schedule.upcoming(ts(now), 60),
            from_start.schedule.upcoming(ts(now), 60),
            "{zone} {dtstart} {rule}"
        );
    }
}

/// `dtstart` (`YYYYMMDDTHHMMSS`) on `zone`'s wall clock.
fn plan_start(zone: &str, dtstart: &str) -> Timestamp {
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", dtstart)
        .expect("local")
        .to_zoned(jiff::tz::TimeZone::get(zone).expect("zone"))
        .expect("zoned")
        .timestamp()
}
