//! `/api/v1/me`: a user's profile through the served API: the defaults before any save, a
//! whole replacement on PUT (absent fields back to their defaults), every refused field named
//! with a refused body changing nothing, and the settings the same from a second client.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, StatusCode};

#[tokio::test]
async fn a_profile_is_the_defaults_until_saved_then_exactly_what_was_saved() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let defaults = json!({
        "timeZone": null, "email": null, "phone": null, "quietHours": [],
        "channels": {"email": false, "sms": false, "push": false, "inApp": true, "webhook": false},
        "telemetry": true
    });
    assert_eq!(
        alice.get::<Value>("/api/v1/me", StatusCode::OK).await,
        defaults
    );

    let saved: Value = alice
        .put(
            "/api/v1/me",
            &json!({
                "timeZone": "America/New_York",
                "email": "alice@example.com",
                "phone": "(407) 555-1212",
                "quietHours": [{"days": ["mon", "tu", "Wednesday", "thu", "fri"], "from": "22:00", "to": "07:00"},
                               {"days": ["sat", "sun"], "from": "23:00", "to": "09:30"}],
                "channels": {"email": true, "push": true},
                "telemetry": false
            }),
            StatusCode::OK,
        )
        .await;
    let expected = json!({
        "timeZone": "America/New_York", "email": "alice@example.com", "phone": "+14075551212",
        "quietHours": [
            {"days": ["monday", "tuesday", "wednesday", "thursday", "friday"], "from": "22:00", "to": "07:00"},
            {"days": ["saturday", "sunday"], "from": "23:00", "to": "09:30"}
        ],
        "channels": {"email": true, "sms": false, "push": true, "inApp": true, "webhook": false},
        "telemetry": false
    });
    assert_eq!(saved, expected);
    // What another browser of the same user reads; another user still has the defaults.
    assert_eq!(
        app.user("alice")
            .get::<Value>("/api/v1/me", StatusCode::OK)
            .await,
        expected
    );
    assert_eq!(
        app.user("bob")
            .get::<Value>("/api/v1/me", StatusCode::OK)
            .await,
        defaults
    );

    // A refused body names every bad field and changes nothing.
    let problem = alice
        .put_problem(
            "/api/v1/me",
            &json!({
                "timeZone": "Europe/Atlantis",
                "email": "not an address",
                "quietHours": [{"days": ["someday"], "from": "22:00", "to": "07:00"}],
                "channels": {"sms": "yes"},
                "telemetry": 0
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["pointer"].as_str().expect("pointer"))
        .collect();
    assert_eq!(
        pointers,
        [
            "/timeZone",
            "/email",
            "/quietHours/0/days",
            "/channels/sms",
            "/telemetry"
        ]
    );
    assert_eq!(problem["errors"][0]["value"], "Europe/Atlantis");
    assert_eq!(
        alice.get::<Value>("/api/v1/me", StatusCode::OK).await,
        expected
    );

    // A PUT replaces the whole profile: what it leaves out is back to its default.
    let replaced: Value = alice
        .put(
            "/api/v1/me",
            &json!({"timeZone": "Europe/Berlin"}),
            StatusCode::OK,
        )
        .await;
    let mut berlin = defaults.clone();
    berlin["timeZone"] = json!("Europe/Berlin");
    assert_eq!(replaced, berlin);
}
