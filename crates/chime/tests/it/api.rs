//! The task API's contract: the design's body, every field echoed, per-user isolation,
//! problem+json errors that name the field, and nothing stored on error.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{in_ms, spawn_app, StatusCode, TestApp};

fn design_body(start: &str) -> Value {
    json!({
        "name": "Task Name",
        "description": "Memorable description",
        "startDate": start,
        "repeats": {
            "frequency": "1",
            "period": "week",
            "on": "mmonday, tuesday",
            "ends": "12"
        },
        "notify": {
            "email": "someone@example.com",
            "sms": "4075551212",
            "push": true
        }
    })
}

/// Mondays 09:00 in Berlin from 2030-03-25, a week before summer time starts.
fn weekly_in_berlin() -> Value {
    json!({
        "name": "Stand-up",
        "startDate": "2030-03-25T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
        "repeats": {"period": "week", "frequency": 1, "on": ["monday"]}
    })
}

async fn task_count(app: &TestApp, user: &str) -> usize {
    let page: Value = app.user(user).get("/api/v1/tasks", StatusCode::OK).await;
    page["tasks"].as_array().expect("tasks").len()
}

#[tokio::test]
async fn the_designs_post_body_creates_a_task_with_every_field() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let created = alice
        .expect::<Value>(
            alice
                .request(Method::POST, "/api/v1/tasks")
                .json(&design_body("2030-08-12 11:24:53.00+0000")),
            StatusCode::CREATED,
        )
        .await;
    let location = created.headers["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let task = created.body;
    assert_eq!(
        location,
        format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"))
    );
    assert!(task["id"].as_str().expect("id").starts_with("tsk_"));
    assert_eq!(task["userId"], "alice");
    assert_eq!(task["name"], "Task Name");
    assert_eq!(task["description"], "Memorable description");
    assert_eq!(task["startDate"], "2030-08-12T11:24:53Z");
    assert_eq!(task["timeZone"], "+00:00");
    assert_eq!(task["repeats"]["frequency"], 1);
    assert_eq!(task["repeats"]["period"], "week");
    assert_eq!(task["repeats"]["on"], json!(["monday", "tuesday"]));
    assert_eq!(task["repeats"]["ends"], 12);
    assert_eq!(task["notify"]["email"], "someone@example.com");
    assert_eq!(task["notify"]["push"], true);
    assert_eq!(task["notify"]["inApp"], true);
    assert_eq!(task["missed"]["policy"], "fireOnceLate");
    assert_eq!(task["createdAt"], task["modifiedAt"]);
    // 2030-08-12 is a Monday: the first occurrence is the start itself.
    assert_eq!(task["nextExecutionDate"], "2030-08-12T11:24:53Z");
    // The same rule in RFC 5545's words, for clients that speak it.
    assert_eq!(task["rrule"], "FREQ=WEEKLY;COUNT=12;BYDAY=MO,TU");

    let fetched: Value = alice.get(&location, StatusCode::OK).await;
    assert_eq!(fetched, task);

    let occurrences: Value = alice
        .get(&format!("{location}/occurrences?count=4"), StatusCode::OK)
        .await;
    assert_eq!(
        occurrences["occurrences"],
        json!([
            "2030-08-12T11:24:53Z",
            "2030-08-13T11:24:53Z",
            "2030-08-19T11:24:53Z",
            "2030-08-20T11:24:53Z"
        ])
    );
    let all: Value = alice
        .get(&format!("{location}/occurrences?count=100"), StatusCode::OK)
        .await;
    assert_eq!(all["occurrences"].as_array().expect("list").len(), 12);
}

#[tokio::test]
async fn preview_computes_occurrences_in_the_tasks_time_zone_without_saving() {
    let app = spawn_app().await;
    let body: Value = app
        .user("alice")
        .post(
            "/api/v1/tasks/preview?count=3",
            &weekly_in_berlin(),
            StatusCode::OK,
        )
        .await;
    // 09:00 in Berlin before and after the start of summer time (2030-03-31): 08:00Z, then
    // 07:00Z.
    assert_eq!(
        body["occurrences"],
        json!([
            "2030-03-25T08:00:00Z",
            "2030-04-01T07:00:00Z",
            "2030-04-08T07:00:00Z"
        ])
    );
    assert_eq!(task_count(&app, "alice").await, 0);
}

#[tokio::test]
async fn another_users_task_is_a_404_on_every_endpoint() {
    let app = spawn_app().await;
    let task = app
        .create(
            "alice",
            &json!({"name": "private", "startDate": in_ms(3_600_000)}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
    let bob = app.user("bob");
    bob.get_problem(&path, StatusCode::NOT_FOUND).await;
    bob.get_problem(&format!("{path}/occurrences"), StatusCode::NOT_FOUND)
        .await;
    bob.get_problem(&format!("{path}/history"), StatusCode::NOT_FOUND)
        .await;
    bob.put_problem(
        &path,
        &json!({"name": "mine", "startDate": in_ms(3_600_000)}),
        StatusCode::NOT_FOUND,
    )
    .await;
    bob.delete_problem(&path, StatusCode::NOT_FOUND).await;
    assert_eq!(task_count(&app, "bob").await, 0);
    // Still there, unchanged, for its owner.
    let fetched: Value = app.user("alice").get(&path, StatusCode::OK).await;
    assert_eq!(fetched, task);
}

#[tokio::test]
async fn tasks_are_listed_per_user_with_a_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let task = app
            .create(
                "alice",
                &json!({"name": format!("t{i}"), "startDate": in_ms(3_600_000)}),
            )
            .await;
        ids.push(task["id"].as_str().expect("id").to_owned());
    }
    app.create(
        "bob",
        &json!({"name": "bob's", "startDate": in_ms(3_600_000)}),
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tasks?limit=2&cursor={c}"),
            None => "/api/v1/tasks?limit=2".to_owned(),
        };
        let page: Value = app.user("alice").get(&path, StatusCode::OK).await;
        for t in page["tasks"].as_array().expect("tasks") {
            seen.push(t["id"].as_str().expect("id").to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn invalid_fields_are_a_422_naming_each_field_and_store_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "x", "startDate": in_ms(60_000), "repeats": {"period": "week", "on": "monday, blursday"}}),
            "/repeats/on",
            json!("monday, blursday"),
        ),
        (
            json!({"name": "x", "startDate": in_ms(60_000), "repeats": {"period": "fortnight"}}),
            "/repeats/period",
            json!("fortnight"),
        ),
        (
            json!({"name": "x", "startDate": in_ms(60_000), "repeats": {"period": "day", "frequency": 0}}),
            "/repeats/frequency",
            json!(0),
        ),
        (
            json!({"name": "x", "startDate": in_ms(60_000), "timeZone": "Mars/Olympus_Mons"}),
            "/timeZone",
            json!("Mars/Olympus_Mons"),
        ),
        (
            json!({"name": "x", "startDate": "next tuesday"}),
            "/startDate",
            json!("next tuesday"),
        ),
        (
            json!({"name": "x", "startDate": "2020-01-01T10:00:00Z"}),
            "/startDate",
            json!("2020-01-01T10:00:00Z"),
        ),
        (json!({"startDate": in_ms(60_000)}), "/name", Value::Null),
    ];
    let alice = app.user("alice");
    for (body, pointer, value) in cases {
        let p = alice
            .post_problem("/api/v1/tasks", &body, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        let errors = p["errors"].as_array().expect("errors");
        let error = errors
            .iter()
            .find(|e| e["pointer"] == pointer)
            .unwrap_or_else(|| panic!("no error at {pointer} for {body}: {p}"));
        if !value.is_null() {
            assert_eq!(error["value"], value, "{p}");
        }
        assert!(p["detail"].as_str().expect("detail").contains(pointer));
    }
    // A repeating task whose every occurrence is past names `ends`.
    let p = alice
        .post_problem(
            "/api/v1/tasks",
            &json!({"name": "x", "startDate": "2020-01-06T10:00:00Z",
                    "repeats": {"period": "day", "ends": 3}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(p["errors"][0]["pointer"], "/repeats/ends");
    assert_eq!(task_count(&app, "alice").await, 0);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_problems_too() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let malformed = alice
        .request(Method::POST, "/api/v1/tasks")
        .header("content-type", "application/json")
        .body("{\"name\": ");
    let p = alice.problem(malformed, StatusCode::BAD_REQUEST).await;
    assert!(p["detail"]
        .as_str()
        .expect("detail")
        .contains("not valid JSON"));

    let huge = json!({"name": "x".repeat(100_000), "startDate": in_ms(60_000)});
    alice
        .post_problem("/api/v1/tasks", &huge, StatusCode::PAYLOAD_TOO_LARGE)
        .await;

    let p = alice
        .get_problem("/api/v1/tasks?limit=0", StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(p["errors"][0]["pointer"], "?limit");
    assert_eq!(task_count(&app, "alice").await, 0);
}

#[tokio::test]
async fn every_api_call_needs_a_valid_bearer_token() {
    let app = spawn_app().await;
    let anonymous = app.anonymous();
    let no_token = anonymous
        .get_problem("/api/v1/tasks", StatusCode::UNAUTHORIZED)
        .await;
    assert_eq!(no_token.headers["www-authenticate"], "Bearer");
    anonymous
        .bearer("not.a.token")
        .get_problem("/api/v1/tasks", StatusCode::UNAUTHORIZED)
        .await;
    // A token from another data directory's issuer is not ours.
    let other = spawn_app().await;
    anonymous
        .bearer(other.token("alice"))
        .get_problem("/api/v1/tasks", StatusCode::UNAUTHORIZED)
        .await;
    // Operations endpoints need none.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let response = anonymous
            .request(Method::GET, path)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let app = spawn_app().await;
    let served = app
        .anonymous()
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, format!("{served}\n")).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(path).expect("openapi.json is committed");
    assert_eq!(
        committed.trim_end(),
        served.trim_end(),
        "openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p chime --test it openapi`"
    );
    let doc: Value = serde_json::from_str(&served).expect("json");
    for path in [
        "/api/v1/tasks",
        "/api/v1/tasks/{id}",
        "/api/v1/tasks/{id}/occurrences",
        "/api/v1/tasks/preview",
        "/api/v1/tasks/{id}/history",
        "/api/v1/notifications",
        "/api/v1/notifications/stream",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}

#[tokio::test]
async fn upcoming_occurrences_merge_every_task_of_the_caller_soonest_first() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let weekly = alice.create_task(&weekly_in_berlin()).await;
    let once = alice
        .create_task(&json!({"name": "Dentist", "startDate": "2030-03-27T12:00:00Z"}))
        .await;
    app.user("bob")
        .create_task(&json!({"name": "not alice's", "startDate": "2030-03-26T00:00:00Z"}))
        .await;

    let page: Value = alice
        .get("/api/v1/occurrences?limit=3", StatusCode::OK)
        .await;
    assert_eq!(
        page["occurrences"],
        json!([
            {"at": "2030-03-25T08:00:00Z", "taskId": weekly["id"], "taskName": "Stand-up",
             "timeZone": "Europe/Berlin", "repeats": true},
            {"at": "2030-03-27T12:00:00Z", "taskId": once["id"], "taskName": "Dentist",
             "timeZone": "+00:00", "repeats": false},
            {"at": "2030-04-01T07:00:00Z", "taskId": weekly["id"], "taskName": "Stand-up",
             "timeZone": "Europe/Berlin", "repeats": true},
        ])
    );

    let one_each: Value = alice
        .get("/api/v1/occurrences?limit=3&perTask=1", StatusCode::OK)
        .await;
    let at: Vec<&str> = one_each["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|o| o["at"].as_str().expect("at"))
        .collect();
    assert_eq!(at, ["2030-03-25T08:00:00Z", "2030-03-27T12:00:00Z"]);

    let refused = alice
        .get_problem(
            "/api/v1/occurrences?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(refused["errors"][0]["pointer"], "?limit");
    let nothing: Value = app
        .user("carol")
        .get("/api/v1/occurrences", StatusCode::OK)
        .await;
    assert_eq!(nothing["occurrences"], json!([]));
}

#[tokio::test]
async fn upcoming_occurrences_carry_notes_for_a_dst_gap_a_short_month_and_quiet_hours() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let _: Value = alice
        .put(
            "/api/v1/me",
            &json!({"timeZone": "Europe/Berlin",
                    "quietHours": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                    "from": "22:00", "to": "07:00"}]}),
            StatusCode::OK,
        )
        .await;
    // 02:30 every night in Berlin: on Sunday 31 March 2030 the clocks skip 02:00 to 03:00.
    alice
        .create_task(
            &json!({"name": "Night pills", "startDate": "2030-03-30T02:30:00+01:00",
                             "timeZone": "Europe/Berlin",
                             "repeats": {"frequency": 1, "period": "day"}}),
        )
        .await;
    // The 31st of every month: February 2030 has none.
    alice
        .create_task(&json!({"name": "Rent", "startDate": "2030-01-31T09:00:00Z",
                             "repeats": {"frequency": 1, "period": "month", "on": [31]},
                             "notify": {"email": "alice@example.com"}}))
        .await;
    // 23:30 in Berlin, inside quiet hours: the email waits until 07:00.
    alice
        .create_task(
            &json!({"name": "Late call", "startDate": "2030-04-02T23:30:00+02:00",
                             "timeZone": "Europe/Berlin",
                             "notify": {"email": "alice@example.com", "inApp": true}}),
        )
        .await;

    let page: Value = alice
        .get("/api/v1/occurrences?limit=5&perTask=2", StatusCode::OK)
        .await;
    let notes = |name: &str, at: &str| -> Value {
        page["occurrences"]
            .as_array()
            .expect("occurrences")
            .iter()
            .find(|o| o["taskName"] == name && o["at"] == at)
            .unwrap_or_else(|| panic!("{name} at {at} in {page}"))
            .get("notes")
            .cloned()
            .unwrap_or(Value::Null)
    };
    // Nothing to say: no field.
    assert_eq!(notes("Night pills", "2030-03-30T01:30:00Z"), Value::Null);
    assert_eq!(notes("Rent", "2030-01-31T09:00:00Z"), Value::Null);
    assert_eq!(
        notes("Night pills", "2030-03-31T01:30:00Z"),
        json!([{"kind": "dstGap", "date": "2030-03-31", "wall": "02:30", "firesAt": "03:30",
                "text": "02:30 does not exist on 31 March (the clocks go forward): it fires at 03:30"}])
    );
    assert_eq!(
        notes("Rent", "2030-03-31T09:00:00Z"),
        json!([{"kind": "shortMonth", "month": "2030-02", "day": 31,
                "text": "February 2030 has no day 31: that occurrence is skipped"}])
    );
    assert_eq!(
        notes("Late call", "2030-04-02T21:30:00Z"),
        json!([{"kind": "quietHours", "channels": ["email"], "sentAt": "2030-04-03T05:00:00Z",
                "text": "email sent at Wed 07:00 (quiet hours)"}])
    );
}
