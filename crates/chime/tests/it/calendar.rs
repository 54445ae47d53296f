//! The calendar feed from outside, as a calendar app reads it: a user makes a feed URL, the
//! feed is fetched without a session and expanded by an independent iCalendar library
//! (Python's `icalendar` and `recurring_ical_events`, tests/support/ics_oracle.py) over a
//! year, and every task's occurrences must equal the ones Chime lists: zones with unusual DST
//! (Lord Howe's 30-minute shift, Santiago's midnight change, Dublin, São Paulo), a fixed offset,
//! RFC 5545 rules, month ends, counts and end dates, a skipped, a moved and added occurrences,
//! and a one-time task with a second time added. Then: `ETag` and `If-None-Match`, rotation (the old URL stops working) and
//! revocation.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::helpers::{StatusCode, TestApp};

fn at_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).expect("in range")
}

#[tokio::test]
async fn a_calendar_reads_the_same_year_of_occurrences_from_the_feed_as_chime_lists() {
    let app = TestApp::builder().start().await;
    let alice = app.user("alice");
    let now = at_second(Timestamp::now());
    let day = |d: i64| (now + SignedDuration::from_hours(24 * d)).to_string();
    let bodies = [
        json!({"name": "Stand-up", "startDate": day(1), "timeZone": "Europe/Berlin",
               "repeats": {"period": "week", "on": "mo,we"}}),
        json!({"name": "Rent", "startDate": day(2), "timeZone": "America/New_York",
               "repeats": {"period": "month", "on": [31]}}),
        json!({"name": "Night watch", "startDate": "2026-12-10T02:15:00+11:00",
               "timeZone": "Australia/Lord_Howe", "repeats": {"rrule": "FREQ=DAILY"}}),
        json!({"name": "Midnight snack", "startDate": "2026-12-10T00:30:00-03:00",
               "timeZone": "America/Santiago", "repeats": {"rrule": "FREQ=DAILY"}}),
        json!({"name": "Book club", "startDate": day(3), "timeZone": "Europe/Dublin",
               "repeats": {"rrule": "FREQ=MONTHLY;BYDAY=2TU;COUNT=8"}}),
        json!({"name": "Payday", "startDate": day(1), "timeZone": "America/Sao_Paulo",
               "repeats": {"rrule": "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=18;BYMINUTE=0"}}),
        json!({"name": "Calls", "startDate": "2026-12-07T09:00:00+05:30",
               "repeats": {"rrule": "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9,18"}}),
        json!({"name": "Vitamins", "startDate": "2026-12-08T02:30:00+01:00",
               "timeZone": "Europe/Berlin", "repeats": {"period": "day", "ends": "2027-04-30"}}),
        json!({"name": "Dentist; 2nd floor, room 3", "startDate": day(9)}),
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        ids.push(
            app.create("alice", body).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    // One skipped and one moved occurrence of the daily task.
    let vitamins = &ids[7];
    let next: Value = alice
        .get(
            &format!("/api/v1/tasks/{vitamins}/occurrences?count=3"),
            StatusCode::OK,
        )
        .await;
    let (first, second) = (
        next["occurrences"][1].as_str().expect("due"),
        next["occurrences"][2].as_str().expect("due"),
    );
    let _: Value = alice
        .post(
            &format!("/api/v1/tasks/{vitamins}/occurrences/{first}/skip"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    let moved_to =
        (second.parse::<Timestamp>().expect("instant") + SignedDuration::from_hours(5)).to_string();
    let _: Value = alice
        .post(
            &format!("/api/v1/tasks/{vitamins}/occurrences/{second}/move"),
            &json!({"to": moved_to}),
            StatusCode::OK,
        )
        .await;
    // Added occurrences (RDATE): one beside the daily rule, one after the end of its rule,
    // and a second time for the one-time task.
    let beside =
        (first.parse::<Timestamp>().expect("instant") + SignedDuration::from_hours(7)).to_string();
    for (task, added) in [
        (vitamins, beside),
        (vitamins, "2027-05-03T10:00:00Z".to_owned()),
        (&ids[8], day(20)),
    ] {
        let answer: Value = alice
            .post(
                &format!("/api/v1/tasks/{task}/occurrences"),
                &json!({"at": added}),
                StatusCode::OK,
            )
            .await;
        assert!(
            answer["added"]
                .as_array()
                .expect("added")
                .iter()
                .any(|a| a.as_str().and_then(|a| a.parse::<Timestamp>().ok())
                    == added.parse().ok()),
            "{answer}"
        );
        // Sent again (a retry): answered as it is, no new version.
        let again: Value = alice
            .post(
                &format!("/api/v1/tasks/{task}/occurrences"),
                &json!({"at": added}),
                StatusCode::OK,
            )
            .await;
        assert_eq!(again["version"], answer["version"], "{again}");
    }

    let _: Value = alice
        .get_problem("/api/v1/calendar-feed", StatusCode::NOT_FOUND)
        .await
        .body;
    let feed: Value = alice
        .post("/api/v1/calendar-feed", &json!({}), StatusCode::CREATED)
        .await;
    let url = feed["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&format!("{}/calendar/", app.base)), "{url}");
    assert!(feed["webcalUrl"]
        .as_str()
        .expect("webcal")
        .starts_with("webcal://"));
    let again: Value = alice.get("/api/v1/calendar-feed", StatusCode::OK).await;
    assert_eq!(again["url"], feed["url"]);

    let response = app.http.get(&url).send().await.expect("feed");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    let body = response.text().await.expect("body");
    let file = app.dir.path().join("feed.ics");
    std::fs::write(&file, &body).expect("write the feed");

    // A year from now, by both.
    let until = now + SignedDuration::from_hours(24 * 365);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/ics_oracle.py");
    let output = std::process::Command::new("python3")
        .args([script, file.to_str().expect("path"), &now.to_string(), &until.to_string()])
        .output()
        .expect("run the iCalendar oracle (the test command installs icalendar and recurring_ical_events)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut lines = text.lines();
    let alarms: usize = lines
        .next()
        .and_then(|l| l.strip_prefix("ALARMS\t"))
        .expect("alarms")
        .parse()
        .expect("n");
    let mut theirs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let (uid, start) = line.split_once('\t').expect("uid and start");
        theirs
            .entry(uid.trim_end_matches("@chime").to_owned())
            .or_default()
            .push(start.to_owned());
    }
    let mut total = 0;
    for (id, body) in ids.iter().zip(&bodies) {
        let listed: Value = alice
            .get(
                &format!("/api/v1/tasks/{id}/occurrences?count=1000"),
                StatusCode::OK,
            )
            .await;
        let ours: Vec<String> = listed["occurrences"]
            .as_array()
            .expect("occurrences")
            .iter()
            .map(|o| o.as_str().expect("instant").to_owned())
            .filter(|o| o.parse::<Timestamp>().expect("instant") < until)
            .collect();
        assert!(ours.len() < 1000, "{id}: the listing was cut");
        let mut theirs = theirs.remove(id).unwrap_or_default();
        theirs.sort();
        assert_eq!(theirs, ours, "{} ({id})", body["name"]);
        total += ours.len();
    }
    assert!(theirs.is_empty(), "events of no task: {theirs:?}");
    assert_eq!(alarms, total, "every occurrence carries its alarm");
    assert!(
        total > 1000,
        "a year of these tasks is more than {total} occurrences"
    );

    // Unchanged: 304 without a body; a calendar polling costs nothing to send.
    let unchanged = app
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("feed");
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    // Rotated: the old URL stops working, the new one works; revoked: it stops too.
    let rotated: Value = alice
        .post("/api/v1/calendar-feed", &json!({}), StatusCode::CREATED)
        .await;
    let new_url = rotated["url"].as_str().expect("url").to_owned();
    assert_ne!(new_url, url);
    assert_eq!(
        app.http.get(&url).send().await.expect("old").status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.http.get(&new_url).send().await.expect("new").status(),
        StatusCode::OK
    );
    let _: () = alice
        .delete("/api/v1/calendar-feed", StatusCode::NO_CONTENT)
        .await;
    assert_eq!(
        app.http
            .get(&new_url)
            .send()
            .await
            .expect("revoked")
            .status(),
        StatusCode::NOT_FOUND
    );
    // Bob's own feed shows none of Alice's tasks.
    let bobs: Value = app
        .user("bob")
        .post("/api/v1/calendar-feed", &json!({}), StatusCode::CREATED)
        .await;
    let bob_body = app
        .http
        .get(bobs["url"].as_str().expect("url"))
        .send()
        .await
        .expect("feed")
        .text()
        .await
        .expect("body");
    assert!(!bob_body.contains("BEGIN:VEVENT"), "{bob_body}");

    app.running.stop().await.expect("stop");
}

/// The oracle's instances of `ics` between `from` and `until`: `UID` → starts (RFC 3339 UTC).
fn oracle(
    app: &TestApp,
    ics: &str,
    from: Timestamp,
    until: Timestamp,
) -> BTreeMap<String, Vec<String>> {
    let file = app.dir.path().join("import.ics");
    std::fs::write(&file, ics).expect("write the file");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/ics_oracle.py");
    let output = std::process::Command::new("python3")
        .args([
            script,
            file.to_str().expect("path"),
            &from.to_string(),
            &until.to_string(),
        ])
        .output()
        .expect("run the iCalendar oracle");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .skip(1)
    {
        let (uid, start) = line.split_once('\t').expect("uid and start");
        out.entry(uid.to_owned())
            .or_default()
            .push(start.to_owned());
    }
    out
}

/// Importing a calendar file over HTTP: a dry run lists each reminder with its next
/// occurrences and what is skipped and why, and creates nothing; the import then creates
/// exactly those tasks. A series with a custom VTIMEZONE (Santiago's rules under an Outlook
/// name), EXDATE, RDATE, a moved and a cancelled occurrence and a 10-minute alarm reminds, for
/// a year, exactly 10 minutes before each instance an independent library
/// (`recurring_ical_events`) expands from the same file. A file that is no calendar is a 422
/// at `/calendar`.
#[tokio::test]
async fn an_imported_calendar_reminds_before_every_instance_an_independent_reader_expands() {
    use jiff::civil::Weekday;
    let app = TestApp::builder().start().await;
    let alice = app.user("alice");
    let now = at_second(Timestamp::now());
    let santiago = jiff::tz::TimeZone::get("America/Santiago").expect("zone");
    // Next week's Tuesday and the Tuesdays after it, 08:30 in Santiago.
    let tuesday = now
        .to_zoned(santiago.clone())
        .date()
        .nth_weekday(1, Weekday::Tuesday)
        .expect("date")
        .checked_add(jiff::Span::new().weeks(1))
        .expect("date");
    let local = |weeks: i64, hour: i8, minute: i8| {
        tuesday
            .checked_add(jiff::Span::new().weeks(weeks))
            .expect("date")
            .at(hour, minute, 0, 0)
            .strftime("%Y%m%dT%H%M%S")
            .to_string()
    };
    let ics = format!(
        "BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r
BEGIN:VTIMEZONE\r
TZID:Pacific SA Standard Time\r
BEGIN:STANDARD\r
DTSTART:16010101T000000\r
TZOFFSETFROM:-0300\r
TZOFFSETTO:-0400\r
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=4\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:16010101T000000\r
TZOFFSETFROM:-0400\r
TZOFFSETTO:-0300\r
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=9\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:lessons@example.com\r
SUMMARY:Spanish lesson\r
DTSTART;TZID=Pacific SA Standard Time:{start}\r
DTEND;TZID=Pacific SA Standard Time:{end}\r
RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=40\r
EXDATE;TZID=Pacific SA Standard Time:{skipped}\r
RDATE;TZID=Pacific SA Standard Time:{added}\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
TRIGGER:-PT10M\r
END:VALARM\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:lessons@example.com\r
RECURRENCE-ID;TZID=Pacific SA Standard Time:{moved_from}\r
SUMMARY:Spanish lesson (afternoon)\r
DTSTART;TZID=Pacific SA Standard Time:{moved_to}\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:lessons@example.com\r
RECURRENCE-ID;TZID=Pacific SA Standard Time:{cancelled}\r
STATUS:CANCELLED\r
SUMMARY:Spanish lesson\r
DTSTART;TZID=Pacific SA Standard Time:{cancelled}\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:long-ago@example.com\r
SUMMARY:Long ago\r
DTSTART:20200101T090000Z\r
END:VEVENT\r
BEGIN:VJOURNAL\r
UID:diary@example.com\r
SUMMARY:Diary\r
END:VJOURNAL\r
END:VCALENDAR\r
",
        start = local(0, 8, 30),
        end = local(0, 9, 30),
        skipped = local(2, 8, 30),
        added = local(3, 18, 0),
        moved_from = local(5, 8, 30),
        moved_to = local(5, 16, 0),
        cancelled = local(7, 8, 30),
    );

    let dry: Value = alice
        .post(
            "/api/v1/tasks/import",
            &json!({"calendar": ics, "dryRun": true}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(dry["dryRun"], true);
    let tasks = dry["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 1, "{dry}");
    assert_eq!(tasks[0]["id"], Value::Null);
    assert_eq!(tasks[0]["reminder"], "10 min before");
    assert_eq!(tasks[0]["task"]["timeZone"], "America/Santiago", "{dry}");
    let reasons: Vec<&str> = dry["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| s["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("in the past")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("VJOURNAL")),
        "{reasons:?}"
    );
    let listed: Value = alice.get("/api/v1/tasks", StatusCode::OK).await;
    assert_eq!(listed["tasks"], json!([]), "a dry run creates nothing");

    let done: Value = alice
        .post(
            "/api/v1/tasks/import",
            &json!({"calendar": ics}),
            StatusCode::OK,
        )
        .await;
    let id = done["tasks"][0]["id"].as_str().expect("created").to_owned();
    assert_eq!(done["tasks"][0]["occurrences"], tasks[0]["occurrences"]);
    let listed: Value = alice.get("/api/v1/tasks", StatusCode::OK).await;
    assert_eq!(listed["tasks"].as_array().map(Vec::len), Some(1));

    // A year of reminders, 10 minutes before each instance the oracle expands.
    let until = now + SignedDuration::from_hours(24 * 366);
    let expected: Vec<String> = oracle(&app, &ics, now, until)
        .remove("lessons@example.com")
        .expect("the series")
        .iter()
        .map(|s| {
            (s.parse::<Timestamp>().expect("instant") - SignedDuration::from_mins(10)).to_string()
        })
        .collect();
    let ours: Value = alice
        .get(
            &format!("/api/v1/tasks/{id}/occurrences?count=100"),
            StatusCode::OK,
        )
        .await;
    let ours: Vec<String> = ours["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|o| o.as_str().expect("instant").to_owned())
        .collect();
    assert_eq!(ours, expected);
    assert_eq!(
        ours.len(),
        40 - 2 + 1,
        "40 by COUNT, one skipped, one cancelled, one added"
    );

    let refused = alice
        .post_problem(
            "/api/v1/tasks/import",
            &json!({"calendar": "hello"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(
        refused["errors"][0]["pointer"], "/calendar",
        "{:?}",
        refused.body
    );
    // The one route that reads more than 64 KiB reads 3 MiB, and no more.
    let big = json!({"calendar": "x".repeat(3 * 1024 * 1024 + 1), "dryRun": true});
    let too_large = alice
        .post_problem("/api/v1/tasks/import", &big, StatusCode::PAYLOAD_TOO_LARGE)
        .await;
    assert_eq!(too_large["status"], 413);
    let file_over_2_mib = json!({"calendar": "x".repeat(2 * 1024 * 1024 + 1), "dryRun": true});
    let refused = alice
        .post_problem(
            "/api/v1/tasks/import",
            &file_over_2_mib,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert!(
        refused["errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("at most")),
        "{:?}",
        refused.body
    );

    app.running.stop().await.expect("stop");
}
