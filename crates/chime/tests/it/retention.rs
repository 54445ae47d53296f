//! Retention through a real server (issue 23): once the policy's days have passed on an
//! injected clock, the background job deletes a fired, acknowledged one-time task with its
//! history and read inbox item, keeps a repeating task and an unread item, and counts what it
//! deleted in `/metrics`. (What each rule lets go, row by row, is the store contract's
//! `retention_deletes_only_the_settled_past_and_a_second_run_nothing`.)

use std::sync::Arc;

use chime::retention::RetentionConfig;
use jiff::SignedDuration;
use serde_json::{json, Value};

use crate::clock::{counter, create_at, history, ManualClock};
use crate::helpers::{eventually, StatusCode, TestApp};

#[tokio::test]
async fn the_retention_job_deletes_a_finished_acknowledged_task_and_keeps_a_repeating_one() {
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::builder()
        .clock(clock.clone())
        .config(|c| {
            c.retention = RetentionConfig {
                interval_seconds: 1,
                finished_tasks_days: 1,
                history_days: 1,
                read_inbox_days: 1,
                batch: 2,
                pause_ms: 0,
            }
        })
        .start()
        .await;
    let alice = app.user("alice");
    let now = chime_roles::Clock::now(&*clock);
    let soon = now + SignedDuration::from_secs(2);
    let once = create_at(&app, "Renew the passport", soon, json!({})).await;
    let daily = create_at(
        &app,
        "Water the plants",
        soon,
        json!({"repeats": {"period": "day"}}),
    )
    .await;
    for id in [&once, &daily] {
        eventually("the occurrence to fire", || async {
            (!history(&app, id).await.is_empty()).then_some(())
        })
        .await;
    }
    let due = history(&app, &once).await[0]["dueAt"]
        .as_str()
        .expect("dueAt")
        .to_owned();
    let done: Value = alice
        .post(
            &format!("/api/v1/tasks/{once}/occurrences/{due}/acknowledge"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(done["state"], "acknowledged");
    // Runs before the days have passed delete nothing.
    eventually("a retention run", || async {
        (counter(&app, "chime_retention_runs_total").await >= 1.0).then_some(())
    })
    .await;
    alice
        .get::<Value>(&format!("/api/v1/tasks/{once}"), StatusCode::OK)
        .await;

    clock.jump(SignedDuration::from_hours(49));
    eventually("the finished task to be deleted", || async {
        let gone = alice
            .request(reqwest::Method::GET, &format!("/api/v1/tasks/{once}"))
            .send()
            .await
            .expect("GET the task")
            .status()
            == StatusCode::NOT_FOUND;
        gone.then_some(())
    })
    .await;
    // A run walks the kinds in turn (tasks first, the inbox near the end): wait for it to
    // reach the inbox before reading what it counted.
    eventually("the run to reach the read inbox items", || async {
        (counter(&app, "chime_retention_deleted_total{kind=\"read_inbox\"}").await >= 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        counter(
            &app,
            "chime_retention_deleted_total{kind=\"finished_tasks\"}"
        )
        .await,
        1.0
    );
    assert!(counter(&app, "chime_retention_deleted_total{kind=\"history\"}").await >= 1.0);
    assert_eq!(
        counter(&app, "chime_retention_deleted_total{kind=\"read_inbox\"}").await,
        1.0,
        "the acknowledged occurrence's inbox item was read"
    );
    // The repeating task stays, with its unread inbox items.
    alice
        .get::<Value>(&format!("/api/v1/tasks/{daily}"), StatusCode::OK)
        .await;
    let inbox: Value = alice.get("/api/v1/notifications", StatusCode::OK).await;
    let items = inbox["notifications"].as_array().expect("notifications");
    assert!(
        !items.is_empty() && items.iter().all(|i| i["taskId"] == daily.as_str()),
        "{inbox}"
    );
}
