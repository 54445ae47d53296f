//! The API refuses what its OpenAPI document says it refuses, each with a problem naming the
//! field and the value: a few boundary cases a generator rarely reaches (schemathesis covers
//! the rest, see `schemathesis.rs`).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{problem_of, spawn_app, StatusCode, TestApp};

/// Sends `body` as it is (it may not be valid JSON for serde's taste) and checks that it is
/// refused with a problem naming `pointer`.
async fn refused(app: &TestApp, method: Method, path: &str, body: &str, pointer: &str) -> Value {
    let response = app
        .user("alice")
        .request(method.clone(), path)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = response.status();
    assert!(
        status.is_client_error(),
        "{method} {path} answered {status}"
    );
    let problem = problem_of(response, status).await.body;
    let errors = problem["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["pointer"] == pointer),
        "{method} {path}: no error at {pointer}: {problem}"
    );
    problem
}

/// A push subscription refused for its endpoint.
async fn refused_subscription(app: &TestApp, body: &Value) -> Value {
    let body = body.to_string();
    refused(
        app,
        Method::POST,
        "/api/v1/push/subscriptions",
        &body,
        "/endpoint",
    )
    .await
}

#[tokio::test]
async fn a_webhook_url_or_push_endpoint_over_2048_characters_is_refused_and_not_stored() {
    let app = spawn_app().await;
    let long = format!("https://1.1.1.1/{}", "a".repeat(2048));
    refused(
        &app,
        Method::PUT,
        "/api/v1/webhook",
        &json!({"url": long}).to_string(),
        "/url",
    )
    .await;
    app.user("alice")
        .get_problem("/api/v1/webhook", StatusCode::NOT_FOUND)
        .await;
    let body = json!({"endpoint": long, "keys": {"p256dh": "x", "auth": "y"}});
    let problem = refused_subscription(&app, &body).await;
    assert!(problem.to_string().contains("2048"), "{problem}");
}

#[tokio::test]
async fn a_push_endpoint_must_be_https_and_its_errors_speak_of_the_push_endpoint() {
    let app = spawn_app().await;
    let body = json!({"endpoint": "http://1.1.1.1/push", "keys": {"p256dh": "x", "auth": "y"}});
    refused_subscription(&app, &body).await;
    // A well-formed subscription to a private address: refused as the push endpoint's.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let browser = p256::SecretKey::random(&mut rand::thread_rng());
    let body = json!({
        "endpoint": "https://10.0.0.1/push",
        "keys": {
            "p256dh": b64.encode(p256::EncodedPoint::from(browser.public_key()).as_bytes()),
            "auth": b64.encode([1u8; 16]),
        }
    });
    let problem = refused_subscription(&app, &body).await;
    assert!(!problem.to_string().contains("webhook URL"), "{problem}");
}

#[tokio::test]
async fn a_body_with_a_key_twice_is_refused_naming_the_key_even_when_the_last_is_good() {
    let app = spawn_app().await;
    let body = r#"{"name": "Dentist", "startDate": "not a date",
                   "startDate": "2031-01-01T09:00:00Z"}"#;
    let problem = refused(&app, Method::POST, "/api/v1/tasks", body, "/startDate").await;
    assert!(problem.to_string().contains("more than once"), "{problem}");
    let tasks: Value = app.user("alice").get("/api/v1/tasks", StatusCode::OK).await;
    assert_eq!(tasks["tasks"], json!([]), "nothing was created");
}
