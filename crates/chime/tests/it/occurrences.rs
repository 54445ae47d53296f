//! A fired occurrence's life through the served API: open after it fires, snoozed (bad
//! snoozes refused, naming the field, changing nothing), returning once as a new occurrence
//! with its own inbox item, then acknowledged: the open list empties, its inbox item is read,
//! acknowledging again answers the first acknowledgement, and it can no longer be snoozed;
//! the task's history shows both occurrences' states.

use serde_json::{json, Value};

use crate::helpers::{eventually, in_ms, spawn_app, StatusCode, TestClient};

async fn open(client: &TestClient) -> Vec<Value> {
    let page: Value = client.get("/api/v1/occurrences/open", StatusCode::OK).await;
    page["occurrences"].as_array().expect("occurrences").clone()
}

async fn inbox(client: &TestClient) -> Vec<Value> {
    let page: Value = client.get("/api/v1/notifications", StatusCode::OK).await;
    page["notifications"]
        .as_array()
        .expect("notifications")
        .clone()
}

#[tokio::test]
async fn an_occurrence_is_open_snoozed_returns_once_and_is_acknowledged() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let task = app
        .create(
            "alice",
            &json!({"name": "Take the pills", "startDate": in_ms(800), "notify": {"inApp": true}}),
        )
        .await;
    let task_id = task["id"].as_str().expect("id").to_owned();

    let fired = eventually("the occurrence is open", || async {
        open(&alice).await.first().cloned()
    })
    .await;
    assert_eq!(fired["taskId"], task_id.as_str());
    assert_eq!(fired["taskName"], "Take the pills");
    assert_eq!(fired["state"], "open");
    assert_eq!(fired["seq"], 1);
    let due = fired["dueAt"].as_str().expect("dueAt").to_owned();
    assert_eq!(fired["key"], format!("{task_id}@{due}"));
    let path = format!("/api/v1/tasks/{task_id}/occurrences/{due}");
    assert_eq!(alice.get::<Value>(&path, StatusCode::OK).await, fired);
    assert!(
        open(&app.user("bob")).await.is_empty(),
        "bob sees alice's occurrence"
    );
    alice
        .get_problem(
            &format!("/api/v1/tasks/{task_id}/occurrences/2020-01-01T00:00:00Z"),
            StatusCode::NOT_FOUND,
        )
        .await;

    // Refused snoozes name the field and the value, and change nothing.
    let snooze = format!("{path}/snooze");
    for (body, pointer) in [
        (json!({"minutes": 0}), "/minutes"),
        (json!({"minutes": "ten"}), "/minutes"),
        (json!({"until": "tomorrow"}), "/until"),
        (json!({"until": "2020-01-01T00:00:00Z"}), "/until"),
        (json!({"until": "2999-01-01T00:00:00Z"}), "/until"),
        (json!({"minutes": 5, "until": in_ms(60_000)}), "/until"),
        (json!({}), "/minutes"),
        (json!({"minutes": 5, "hours": 1}), "/hours"),
    ] {
        let problem = alice
            .post_problem(&snooze, &body, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(
            problem["errors"][0]["pointer"], pointer,
            "{body}: {problem}"
        );
    }
    assert_eq!(alice.get::<Value>(&path, StatusCode::OK).await, fired);

    // Snoozed for a moment: it leaves the open list, then returns once as a new occurrence.
    let until = in_ms(1_500);
    let snoozed: Value = alice
        .post(&snooze, &json!({"until": until}), StatusCode::OK)
        .await;
    assert_eq!(snoozed["state"], "snoozed");
    assert_eq!(snoozed["snoozedUntil"], until.as_str());
    assert!(
        open(&alice).await.is_empty(),
        "a snoozed occurrence is open"
    );
    let back = eventually("the snoozed occurrence returns", || async {
        open(&alice).await.first().cloned()
    })
    .await;
    assert_eq!(back["dueAt"], until.as_str());
    assert_eq!(back["snoozedFrom"], due.as_str());
    assert_eq!(back["seq"], 1);
    let items = eventually("the return's inbox item", || async {
        let items = inbox(&alice).await;
        (items.len() == 2).then_some(items)
    })
    .await;
    assert_eq!(items[0]["dueAt"], until.as_str(), "{items:?}");
    let original: Value = alice.get(&path, StatusCode::OK).await;
    assert_eq!(original["state"], "snoozed");
    let listed: Value = alice
        .get("/api/v1/occurrences/snoozed", StatusCode::OK)
        .await;
    assert_eq!(
        listed["occurrences"],
        json!([]),
        "returned, so no longer listed"
    );
    // It has returned: the return is the one to snooze.
    let refused = alice
        .post_problem(&snooze, &json!({"minutes": 10}), StatusCode::CONFLICT)
        .await;
    assert!(
        refused["detail"].as_str().expect("detail").contains(&until),
        "{refused}"
    );

    // Done, from the web app.
    let back_path = format!("/api/v1/tasks/{task_id}/occurrences/{until}");
    let done: Value = alice
        .post(
            &format!("{back_path}/acknowledge"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(done["state"], "acknowledged");
    assert_eq!(done["acknowledgedOn"], "inApp");
    assert!(open(&alice).await.is_empty());
    let items = inbox(&alice).await;
    assert_eq!(
        items[0]["read"], true,
        "the return's item is read: {items:?}"
    );
    let again: Value = alice
        .post(
            &format!("{back_path}/acknowledge?via=webhook"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(again, done, "a second acknowledgement answers the first");
    let problem = alice
        .post_problem(
            &format!("{back_path}/acknowledge?via=carrier-pigeon"),
            &json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem["errors"][0]["pointer"], "?via");
    let refused = alice
        .post_problem(
            &format!("{back_path}/snooze"),
            &json!({"minutes": 10}),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(refused["status"], 409);

    // The task's history shows each occurrence's life: the original snoozed, its return done.
    let history: Value = eventually("the return in the history", || async {
        let history: Value = alice
            .get(&format!("/api/v1/tasks/{task_id}/history"), StatusCode::OK)
            .await;
        (history["history"].as_array()?.len() == 2).then_some(history)
    })
    .await;
    let entries = history["history"].as_array().expect("history");
    assert_eq!(entries[0]["dueAt"], until.as_str());
    assert_eq!(entries[0]["state"], "acknowledged");
    assert_eq!(entries[0]["acknowledgedOn"], "inApp");
    assert_eq!(entries[0]["snoozedFrom"], due.as_str());
    assert_eq!(entries[1]["dueAt"], due.as_str());
    assert_eq!(entries[1]["state"], "snoozed");
    assert_eq!(entries[1]["snoozedUntil"], until.as_str());

    let metrics = app.metrics().await;
    assert!(metrics.contains("chime_snoozes_total 1"), "snoozes counted");
    assert!(metrics.contains("chime_snooze_returns_total 1"));
    assert!(metrics.contains(r#"chime_acknowledgements_total{channel="inApp"} 1"#));
}
