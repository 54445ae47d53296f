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
