//! A task that repeats by an RFC 5545 rule (`repeats.rrule`), on a real server whose clock the
//! test moves: the API answers the rule in canonical form, lists its occurrences, and the
//! schedule fires each once, numbered, and stops where `COUNT` ends it. The rule's semantics
//! are tested in `chime-core` (RFC 5545's examples, python-dateutil in unusual zones); this is
//! the fire path, which continues after each occurrence without expanding from the start.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::clock::{create_at, history, rfc3339, sentinel_fired, ManualClock};
use crate::helpers::{eventually, StatusCode, TestApp};

#[tokio::test]
async fn a_task_by_rule_fires_each_occurrence_once_and_stops_at_its_count() {
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::builder().clock(clock.clone()).start().await;
    let now = chime_roles::Clock::now(&*clock);
    let minutes = |m: i64| now + SignedDuration::from_mins(m);

    let id = create_at(
        &app,
        "stretch",
        minutes(10),
        json!({"timeZone": "Europe/Berlin", "repeats": {"rrule": "rrule:count=3;freq=minutely;interval=30"}}),
    )
    .await;
    let alice = app.user("alice");
    let task: Value = alice
        .get(&format!("/api/v1/tasks/{id}"), StatusCode::OK)
        .await;
    assert_eq!(
        task["repeats"],
        json!({"rrule": "FREQ=MINUTELY;INTERVAL=30;COUNT=3"})
    );
    assert_eq!(task["rrule"], "FREQ=MINUTELY;INTERVAL=30;COUNT=3");
    let due: Vec<String> = [10, 40, 70].map(|m| rfc3339(minutes(m))).to_vec();
    let listed: Value = alice
        .get(
            &format!("/api/v1/tasks/{id}/occurrences?count=10"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["occurrences"], json!(due));

    for (fired, jump) in [(1, 10), (2, 30), (3, 30)] {
        clock.jump(SignedDuration::from_mins(jump));
        let entries = eventually("the occurrence to be recorded", || async {
            let h = history(&app, &id).await;
            (h.len() >= fired).then_some(h)
        })
        .await;
        assert_eq!(entries.len(), fired, "fired once each: {entries:?}");
    }
    let entries = history(&app, &id).await;
    let mut dues: Vec<String> = entries
        .iter()
        .map(|e| {
            let at: Timestamp = e["dueAt"]
                .as_str()
                .expect("dueAt")
                .parse()
                .expect("instant");
            rfc3339(at)
        })
        .collect();
    dues.sort();
    assert_eq!(dues, due, "{entries:?}");

    // COUNT=3: nothing after the third, even with the clock past a fourth.
    clock.jump(SignedDuration::from_mins(30));
    sentinel_fired(&app, &clock).await;
    assert_eq!(history(&app, &id).await.len(), 3);
    let task: Value = alice
        .get(&format!("/api/v1/tasks/{id}"), StatusCode::OK)
        .await;
    assert_eq!(task["nextExecutionDate"], Value::Null, "{task}");

    app.running.stop().await.expect("stop");
}

#[tokio::test]
async fn a_rule_is_refused_as_problem_json_naming_the_rule_and_nothing_is_created() {
    let app = TestApp::builder().start().await;
    let alice = app.user("alice");
    let refused = alice
        .post_problem(
            "/api/v1/tasks",
            &json!({
                "name": "every minute",
                "startDate": "2030-01-01T09:00:00Z",
                "repeats": {"rrule": "FREQ=HOURLY;BYMINUTE=0,1,2"},
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(
        refused.headers["content-type"], "application/problem+json",
        "{refused:?}"
    );
    let refused = refused.body;
    let errors = refused["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{refused}");
    assert_eq!(errors[0]["pointer"], "/repeats/rrule");
    assert_eq!(errors[0]["value"], "FREQ=HOURLY;BYMINUTE=0,1,2");
    let page: Value = alice.get("/api/v1/tasks", StatusCode::OK).await;
    assert_eq!(page["tasks"], json!([]), "{page}");
    app.running.stop().await.expect("stop");
}

/// Skip one occurrence, move another, on a real server whose clock the test moves: the
/// skipped one never fires, the moved one fires once at its new instant and not at its old,
/// a move past a neighbour and a change to the past are refused, and each change is a new
/// version of the task that answers with its `skipped` and `moved`.
#[tokio::test]
async fn a_skipped_occurrence_never_fires_and_a_moved_one_fires_once_where_it_was_moved() {
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::builder().clock(clock.clone()).start().await;
    let now = chime_roles::Clock::now(&*clock);
    let at = |minutes: i64| {
        Timestamp::from_second((now + SignedDuration::from_mins(minutes)).as_second())
            .expect("in range")
    };
    let day = 24 * 60;
    let (first, second, third) = (at(10), at(10 + day), at(10 + 2 * day));
    let id = create_at(&app, "daily", first, json!({"repeats": {"period": "day"}})).await;
    let alice = app.user("alice");
    let occurrence =
        |due: Timestamp, action: &str| format!("/api/v1/tasks/{id}/occurrences/{due}/{action}");

    let task: Value = alice
        .post(&occurrence(first, "skip"), &json!({}), StatusCode::OK)
        .await;
    assert_eq!(task["skipped"], json!([first.to_string()]), "{task}");
    assert_eq!(task["nextExecutionDate"], second.to_string(), "{task}");
    let moved_to = second + SignedDuration::from_hours(3);
    let task: Value = alice
        .post(
            &occurrence(second, "move"),
            &json!({"to": moved_to.to_string()}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        task["moved"],
        json!([{"from": second.to_string(), "to": moved_to.to_string()}]),
        "{task}"
    );
    let listed: Value = alice
        .get(
            &format!("/api/v1/tasks/{id}/occurrences?count=2"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        listed["occurrences"],
        json!([moved_to.to_string(), third.to_string()])
    );

    // Past its neighbour, or into the past: refused, naming the field; nothing changes.
    let refused = alice
        .post_problem(
            &occurrence(third, "move"),
            &json!({"to": (third + SignedDuration::from_hours(25)).to_string()}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(refused["errors"][0]["pointer"], "/to", "{:?}", refused.body);
    let refused = alice
        .post_problem(
            &occurrence(at(-5), "skip"),
            &json!({}),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(refused["status"], 409);
    let task: Value = alice
        .get(&format!("/api/v1/tasks/{id}"), StatusCode::OK)
        .await;
    assert_eq!(task["version"], 3, "two changes, each a version: {task}");

    // Past the skipped one and the moved one's old instant: nothing fired, and moving it back
    // (to an instant that has passed, where it would never fire) is refused.
    clock.jump(SignedDuration::from_mins(11 + day + 60));
    let refused = alice
        .post_problem(
            &occurrence(moved_to, "restore"),
            &json!({}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("never fire")),
        "{:?}",
        refused.body
    );
    sentinel_fired(&app, &clock).await;
    assert!(history(&app, &id).await.is_empty());
    // Past its new instant: it fires once, there.
    clock.jump(SignedDuration::from_hours(3));
    let entries = eventually("the moved occurrence to fire", || async {
        let h = history(&app, &id).await;
        (!h.is_empty()).then_some(h)
    })
    .await;
    sentinel_fired(&app, &clock).await;
    let entries_after = history(&app, &id).await;
    assert_eq!(entries_after.len(), 1, "{entries_after:?}");
    let due: Timestamp = entries[0]["dueAt"]
        .as_str()
        .expect("dueAt")
        .parse()
        .expect("instant");
    assert_eq!(due, moved_to);
    assert_eq!(entries[0]["seq"], 2, "it keeps its number: {entries:?}");

    // Restored: the rule's instant again.
    let task: Value = alice
        .post(&occurrence(third, "skip"), &json!({}), StatusCode::OK)
        .await;
    assert_eq!(task["nextExecutionDate"], at(10 + 3 * day).to_string());
    let task: Value = alice
        .post(&occurrence(third, "restore"), &json!({}), StatusCode::OK)
        .await;
    assert_eq!(task["nextExecutionDate"], third.to_string(), "{task}");

    app.running.stop().await.expect("stop");
}

/// Quick add over HTTP: a line of English is read on the zone given or the profile's, answered
/// with the body, what was understood and the next occurrences, and the body is one the task
/// API creates as it is; a line it cannot read is a 422 naming `/text`.
#[tokio::test]
async fn quick_add_reads_a_line_into_a_body_the_task_api_creates_or_says_why_not() {
    let app = TestApp::builder().start().await;
    let alice = app.user("alice");
    let read: Value = alice
        .post(
            "/api/v1/tasks/quick?count=3",
            &json!({"text": "Book club on the 2nd Tuesday of every month at 19:00",
                    "timeZone": "Europe/Berlin"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        read["understood"],
        "Every month on the second Tuesday at 19:00"
    );
    assert_eq!(read["task"]["name"], "Book club");
    assert_eq!(read["task"]["repeats"]["rrule"], "FREQ=MONTHLY;BYDAY=2TU");
    let occurrences = read["occurrences"].as_array().expect("occurrences");
    assert_eq!(occurrences.len(), 3);
    for at in occurrences {
        let local = at
            .as_str()
            .expect("instant")
            .parse::<Timestamp>()
            .expect("instant")
            .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").expect("zone"));
        assert_eq!(local.weekday(), jiff::civil::Weekday::Tuesday, "{local}");
        assert!(
            (8..=14).contains(&local.day()) && local.hour() == 19,
            "{local}"
        );
    }
    let created = app.create("alice", &read["task"]).await;
    assert_eq!(created["rrule"], "FREQ=MONTHLY;BYDAY=2TU");

    // Without a zone: the profile's.
    let _: Value = alice
        .put(
            "/api/v1/me",
            &json!({"timeZone": "America/New_York"}),
            StatusCode::OK,
        )
        .await;
    let read: Value = alice
        .post(
            "/api/v1/tasks/quick",
            &json!({"text": "Call mom tomorrow at 9"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(read["task"]["timeZone"], "America/New_York");

    let refused = alice
        .post_problem(
            "/api/v1/tasks/quick",
            &json!({"text": "Meeting at 25:00"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(
        refused["errors"][0]["pointer"], "/text",
        "{:?}",
        refused.body
    );
    assert!(
        refused["errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("25:00")),
        "{:?}",
        refused.body
    );
    app.running.stop().await.expect("stop");
}

/// "09:00 wherever I am": a floating task takes the zone of its owner's settings and, when
/// they change it, moves to the same local time there, each pending occurrence firing once.
/// Flying west at 10:00 Berlin, today's 09:00 in New York (later by the clock) had its turn in
/// Berlin: it is skipped. Flying east from New York at midnight, today's 09:00 in Tokyo has
/// already passed while New York's had not: it fires at once, late, and New York's never does.
#[tokio::test]
async fn a_floating_task_follows_its_owners_zone_and_each_occurrence_fires_once() {
    use jiff::civil::time;
    use jiff::tz::TimeZone;
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::builder().clock(clock.clone()).start().await;
    let alice = app.user("alice");
    let set_zone = |zone: &str| {
        let alice = app.user("alice");
        let body = json!({ "timeZone": zone });
        async move {
            let _: Value = alice.put("/api/v1/me", &body, StatusCode::OK).await;
        }
    };
    let jump_to = |t: Timestamp| {
        let now = chime_roles::Clock::now(&*clock);
        clock.jump(now.duration_until(t));
    };
    let local = |date: jiff::civil::Date, zone: &str| {
        date.to_datetime(time(9, 0, 0, 0))
            .to_zoned(TimeZone::get(zone).expect("zone"))
            .expect("local time")
            .timestamp()
    };

    // Without a zone in the settings there is nothing to follow.
    let body = |start: Timestamp| {
        json!({"name": "Vitamins", "startDate": rfc3339(start), "floating": true,
               "repeats": {"period": "day"}})
    };
    let now = chime_roles::Clock::now(&*clock);
    let berlin = TimeZone::get("Europe/Berlin").expect("zone");
    let d = now.to_zoned(berlin).date().tomorrow().expect("date");
    let refused = alice
        .post_problem(
            "/api/v1/tasks",
            &body(local(d, "Europe/Berlin")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(
        refused["errors"][0]["pointer"], "/floating",
        "{:?}",
        refused.body
    );

    set_zone("Europe/Berlin").await;
    let task = app.create("alice", &body(local(d, "Europe/Berlin"))).await;
    assert_eq!(
        (task["timeZone"].as_str(), task["floating"].as_bool()),
        (Some("Europe/Berlin"), Some(true)),
        "{task}"
    );
    let id = task["id"].as_str().expect("id").to_owned();
    let next = |id: String| {
        let alice = app.user("alice");
        async move {
            let listed: Value = alice
                .get(
                    &format!("/api/v1/tasks/{id}/occurrences?count=2"),
                    StatusCode::OK,
                )
                .await;
            listed["occurrences"].clone()
        }
    };

    // 10:00 in Berlin on day D: its 09:00 fired there.
    jump_to(local(d, "Europe/Berlin") + SignedDuration::from_hours(1));
    eventually("D's 09:00 in Berlin to fire", || async {
        (history(&app, &id).await.len() == 1).then_some(())
    })
    .await;
    set_zone("America/New_York").await;
    let task: Value = alice
        .get(&format!("/api/v1/tasks/{id}"), StatusCode::OK)
        .await;
    assert_eq!(task["timeZone"], "America/New_York", "{task}");
    assert_eq!(
        task["skipped"],
        json!([local(d, "America/New_York").to_string()]),
        "{task}"
    );
    let d1 = d.tomorrow().expect("date");
    let d2 = d1.tomorrow().expect("date");
    assert_eq!(
        next(id.clone()).await,
        json!([
            local(d1, "America/New_York").to_string(),
            local(d2, "America/New_York").to_string()
        ])
    );
    // Saving the same zone again moves nothing.
    set_zone("America/New_York").await;
    let again: Value = alice
        .get(&format!("/api/v1/tasks/{id}"), StatusCode::OK)
        .await;
    assert_eq!(again["version"], task["version"], "{again}");
    // Past D's 09:00 in New York: it does not fire again.
    jump_to(local(d, "America/New_York") + SignedDuration::from_mins(1));
    sentinel_fired(&app, &clock).await;
    assert_eq!(history(&app, &id).await.len(), 1);

    // Midnight in New York on D+1, already 14:00 in Tokyo.
    let midnight = d1
        .to_datetime(time(0, 0, 0, 0))
        .to_zoned(TimeZone::get("America/New_York").expect("zone"))
        .expect("local")
        .timestamp();
    jump_to(midnight);
    set_zone("Asia/Tokyo").await;
    let entries = eventually("D+1's 09:00, passed in Tokyo, to fire at once", || async {
        let h = history(&app, &id).await;
        (h.len() == 2).then_some(h)
    })
    .await;
    let late: Timestamp = entries
        .iter()
        .filter_map(|e| e["dueAt"].as_str()?.parse().ok())
        .max()
        .expect("due");
    assert!(
        late >= midnight && late < midnight + SignedDuration::from_mins(1),
        "{entries:?}"
    );
    assert_eq!(
        next(id.clone()).await[0],
        local(d2, "Asia/Tokyo").to_string()
    );
    // Past D+1's 09:00 in New York: nothing more.
    jump_to(local(d1, "America/New_York") + SignedDuration::from_mins(1));
    sentinel_fired(&app, &clock).await;
    assert_eq!(history(&app, &id).await.len(), 2);

    app.running.stop().await.expect("stop");
}
