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
