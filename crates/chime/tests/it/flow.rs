//! The whole reminder flow through the real server: create over HTTP, fire, deliver in-app,
//! live over SSE, and recorded in history.

use serde_json::{json, Value};

use crate::helpers::{eventually, in_ms, sample, spawn_app, StatusCode};

#[tokio::test]
async fn a_task_due_in_a_second_reaches_the_inbox_over_sse_and_shows_in_history() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let mut stream = alice.sse("/api/v1/notifications/stream").await;

    let task = app
        .create(
            "alice",
            &json!({
                "name": "Call the dentist",
                "startDate": in_ms(1000),
                "notify": {"email": "alice@example.com"}
            }),
        )
        .await;
    let id = task["id"].as_str().expect("id").to_owned();

    let event = stream.next().await;
    assert_eq!(event.event, "notification");
    let item: Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(item["taskId"], id.as_str());
    assert_eq!(item["taskName"], "Call the dentist");
    assert_eq!(item["dueAt"], task["startDate"]);
    assert_eq!(item["read"], false);

    // History is built from events after delivery: wait for both channels' states.
    let history = eventually("history with both deliveries", || async {
        let history: Value = alice
            .get(&format!("/api/v1/tasks/{id}/history"), StatusCode::OK)
            .await;
        let deliveries = history["history"][0]["deliveries"].as_array()?;
        (deliveries.len() == 2).then_some(history)
    })
    .await;
    let entry = &history["history"][0];
    assert_eq!(entry["dueAt"], task["startDate"]);
    assert_eq!(entry["late"], false);
    assert_eq!(entry["seq"], 1);
    let deliveries = entry["deliveries"].as_array().expect("deliveries");
    let in_app = deliveries
        .iter()
        .find(|d| d["channel"] == "inApp")
        .expect("inApp");
    assert_eq!(in_app["outcome"], "sent");
    assert_eq!(in_app["attempts"], 1);
    // The server has no email provider: recorded as skipped, with the reason.
    let email = deliveries
        .iter()
        .find(|d| d["channel"] == "email")
        .expect("email");
    assert_eq!(email["outcome"], "skipped");
    assert!(email["detail"]
        .as_str()
        .expect("detail")
        .contains("not configured"));

    // The one-time task fired: it keeps its definition, with nothing left to fire.
    let after: Value = alice
        .get(&format!("/api/v1/tasks/{id}"), StatusCode::OK)
        .await;
    assert_eq!(after["nextExecutionDate"], Value::Null);

    // The inbox lists it; marking it read clears the unread count.
    let inbox: Value = alice.get("/api/v1/notifications", StatusCode::OK).await;
    assert_eq!(inbox["unread"], 1);
    let nid = inbox["notifications"][0]["id"].clone();
    assert_eq!(nid, item["id"]);
    let marked: Value = alice
        .post(
            "/api/v1/notifications/read",
            &json!({ "ids": [nid] }),
            StatusCode::OK,
        )
        .await;
    assert_eq!(marked["marked"], 1);
    let inbox: Value = alice.get("/api/v1/notifications", StatusCode::OK).await;
    assert_eq!(inbox["unread"], 0);
    assert_eq!(inbox["notifications"][0]["read"], true);

    let metrics = app.metrics().await;
    for series in [
        "chime_tasks_created_total",
        "chime_executions_total",
        r#"chime_deliveries_total{channel="inApp",outcome="sent"}"#,
        r#"chime_deliveries_total{channel="email",outcome="skipped"}"#,
        "chime_execution_lateness_seconds_count",
    ] {
        assert_eq!(sample(&metrics, series), Some(1.0), "{series} in {metrics}");
    }

    app.running.stop().await.expect("stop");
}

#[tokio::test]
async fn another_users_stream_does_not_see_the_notification() {
    let app = spawn_app().await;
    let mut bob = app.user("bob").sse("/api/v1/notifications/stream").await;
    app.create(
        "alice",
        &json!({"name": "alice's", "startDate": in_ms(1500)}),
    )
    .await;
    let bobs = app
        .create("bob", &json!({"name": "bob's", "startDate": in_ms(2500)}))
        .await;
    // Bob's first event is his own task's, though alice's fell due first.
    let event = bob.next().await;
    let item: Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(item["taskId"], bobs["id"]);
    app.running.stop().await.expect("stop");
}

#[tokio::test]
async fn a_deleted_task_does_not_fire_and_an_updated_one_fires_at_its_new_time() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let mut stream = alice.sse("/api/v1/notifications/stream").await;
    let deleted = app
        .create(
            "alice",
            &json!({"name": "deleted", "startDate": in_ms(3000)}),
        )
        .await;
    let moved = app
        .create(
            "alice",
            &json!({"name": "moved", "startDate": in_ms(600_000)}),
        )
        .await;
    alice
        .delete::<()>(
            &format!("/api/v1/tasks/{}", deleted["id"].as_str().expect("id")),
            StatusCode::NO_CONTENT,
        )
        .await;
    let updated: Value = alice
        .put(
            &format!("/api/v1/tasks/{}", moved["id"].as_str().expect("id")),
            &json!({"name": "moved", "startDate": in_ms(4000)}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(updated["version"], 2);
    // The deleted task would have fired first; the first notification is the moved one's.
    let event = stream.next().await;
    let item: Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(item["taskName"], "moved");
    assert_eq!(item["dueAt"], updated["startDate"]);
    app.running.stop().await.expect("stop");
}

#[tokio::test]
async fn the_benchmark_harness_measures_every_occurrence_of_every_scenario() {
    let reports = chime::bench::smoke(None).await.expect("bench smoke");
    assert_every_occurrence_measured(&reports, true);
}

/// What every run of the harness's smoke set shows, embedded or apart (where `retention`,
/// which runs in process, is left out).
pub(crate) fn assert_every_occurrence_measured(
    reports: &[chime::bench::Report],
    with_retention: bool,
) {
    let by_name = |prefix: &str| {
        reports
            .iter()
            .find(|r| r.scenario.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} row"))
    };
    // Every occurrence was delivered and measured, none before its due instant, and every
    // stage of it after the one before.
    // (The retention row's burst is N/10, at least 100; the scenario fails unless retention
    // deleted every one of the 200 fired tasks.)
    let mut rows = vec![("burst", 200), ("steady", 200), ("recurring", 200)];
    if with_retention {
        rows.push(("burst during retention", 100));
    }
    assert_eq!(
        reports
            .iter()
            .any(|r| r.scenario.starts_with("burst during retention")),
        with_retention
    );
    for (name, occurrences) in rows {
        let report = by_name(name);
        assert_eq!(report.reminders, occurrences, "{name}");
        assert_eq!(report.lateness.len(), occurrences, "{name}");
        assert!(report.lateness.iter().all(|l| !l.is_negative()), "{name}");
        assert!(report.drain.is_some_and(|d| !d.is_negative()), "{name}");
        assert!(report.instants.len() >= occurrences, "{name}");
        assert!(
            report
                .instants
                .iter()
                .all(|(due, fired, committed)| due <= fired && fired <= committed),
            "{name}"
        );
    }
    assert_eq!(by_name("steady").pending, 500);
    assert!(by_name("steady").disk_per_pending.is_some_and(|b| b > 0.0));
    let create = by_name("create");
    assert!(create.reminders > 0 && create.schedule_rate > 0.0);
    assert!(reports.iter().all(|r| r.peak_rss_bytes > 0));
}
