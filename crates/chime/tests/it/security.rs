//! Transport security and abuse limits through the real server: HTTPS with HSTS and clear
//! start-up errors for bad certificates, protective headers on every response, and each
//! limit answered with its status and a problem+json body (413, 429 with Retry-After, 503
//! with Retry-After, 409 for the task cap); recurrence rules that cannot make it spin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chime::tls::TlsConfig;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    problem_of, spawn_app, spawn_app_with, StatusCode, TestApp, TestClient, PATIENCE,
};

fn task(name: &str) -> Value {
    json!({"name": name, "startDate": "2031-01-01T09:00:00Z"})
}

// --- HTTPS ----------------------------------------------------------------------------------

/// A self-signed certificate for localhost, as PEM files in `dir`, and the certificate's PEM.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, String) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    (cert, key, generated.cert.pem())
}

async fn start_error(tls: TlsConfig) -> String {
    match TestApp::builder().config(|c| c.tls = tls).try_start().await {
        Ok(_) => panic!("started with a bad certificate"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn with_a_certificate_configured_the_api_is_served_over_https_with_hsts() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert_file, key_file, pem) = self_signed(certs.path());
    let app = spawn_app_with(|c| {
        c.tls = TlsConfig {
            cert_file: Some(cert_file),
            key_file: Some(key_file),
        }
    })
    .await;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("cert"))
        .resolve("localhost", app.running.addr)
        .build()
        .expect("client");
    let anonymous = TestClient::with_http(
        http,
        format!("https://localhost:{}", app.running.addr.port()),
    );

    let response = anonymous
        .request(Method::GET, "/healthz")
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_eq!(response.text().await.expect("body"), "ok");

    // Errors too, and the API itself, with a token.
    let refused = anonymous
        .get_problem("/api/v1/tasks", StatusCode::UNAUTHORIZED)
        .await;
    assert_eq!(
        refused.headers["strict-transport-security"],
        "max-age=31536000"
    );
    anonymous
        .bearer(app.token("alice"))
        .create_task(&task("over TLS"))
        .await;

    // Plain HTTP on the TLS port gets no answer.
    let plain = app.http.get(app.url("/healthz")).send().await;
    assert!(plain.is_err() || !plain.expect("response").status().is_success());
    app.running
        .stop()
        .await
        .expect("graceful shutdown over TLS");
}

#[tokio::test]
async fn a_garbage_missing_or_mismatched_certificate_stops_start_up_naming_the_file() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert_file, key_file, _) = self_signed(certs.path());
    let garbage = certs.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").expect("write");

    let error = start_error(TlsConfig {
        cert_file: Some(garbage.clone()),
        key_file: Some(key_file.clone()),
    })
    .await;
    assert!(error.contains("tls.cert_file"), "{error}");
    assert!(error.contains(&garbage.display().to_string()), "{error}");
    assert!(error.contains("no certificate"), "{error}");

    let error = start_error(TlsConfig {
        cert_file: Some(cert_file.clone()),
        key_file: Some(garbage.clone()),
    })
    .await;
    assert!(error.contains("tls.key_file"), "{error}");
    assert!(error.contains("no private key"), "{error}");

    let truncated = certs.path().join("truncated.pem");
    let pem = std::fs::read_to_string(&cert_file).expect("read");
    std::fs::write(&truncated, &pem[..pem.len() / 2]).expect("write");
    let error = start_error(TlsConfig {
        cert_file: Some(truncated.clone()),
        key_file: Some(key_file.clone()),
    })
    .await;
    assert!(error.contains(&truncated.display().to_string()), "{error}");
    assert!(error.contains("not valid PEM"), "{error}");

    let missing = certs.path().join("missing.pem");
    let error = start_error(TlsConfig {
        cert_file: Some(missing.clone()),
        key_file: Some(key_file.clone()),
    })
    .await;
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(error.contains("cannot read it"), "{error}");

    let other = tempfile::tempdir().expect("tempdir");
    let (_, other_key, _) = self_signed(other.path());
    let error = start_error(TlsConfig {
        cert_file: Some(cert_file.clone()),
        key_file: Some(other_key),
    })
    .await;
    assert!(
        error.contains("is not the key of the certificate"),
        "{error}"
    );

    let error = start_error(TlsConfig {
        cert_file: Some(cert_file),
        key_file: None,
    })
    .await;
    assert!(error.contains("tls.key_file is not"), "{error}");
}

// --- Headers --------------------------------------------------------------------------------

fn assert_protective_headers(response: &reqwest::Response) {
    let headers = response.headers();
    let what = format!("{} {}", response.status(), response.url().path());
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'",
        "{what}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    // Plain HTTP: HSTS would be ignored, and wrong behind a gateway that owns it.
    assert!(headers.get("strict-transport-security").is_none(), "{what}");
}

#[tokio::test]
async fn every_response_carries_the_protective_headers_errors_included() {
    let app = spawn_app().await;
    let (alice, anonymous) = (app.user("alice"), app.anonymous());
    let requests = [
        alice
            .request(Method::POST, "/api/v1/tasks")
            .json(&task("headers")),
        anonymous.request(Method::GET, "/healthz"),
        anonymous.request(Method::GET, "/metrics"),
        anonymous.request(Method::GET, "/openapi.json"),
        anonymous.request(Method::GET, "/api/v1/tasks"),
        alice.request(Method::GET, "/api/v1/tasks"),
        alice.request(Method::GET, "/api/v1/tasks/tsk_nope"),
        alice.request(Method::GET, "/api/v1/no-such-route"),
        alice
            .request(Method::POST, "/api/v1/tasks")
            .json(&json!({"name": ""})),
        anonymous.request(Method::GET, "/nowhere"),
    ];
    for (i, request) in requests.into_iter().enumerate() {
        let response = request.send().await.expect("request");
        if i == 0 {
            assert_eq!(response.status(), 201);
        }
        assert_protective_headers(&response);
    }
}

// --- Limits ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_body_over_the_configured_limit_is_a_413_problem_naming_the_limit() {
    let app = spawn_app_with(|c| c.limits.body_bytes = 1024).await;
    let alice = app.user("alice");
    let big = json!({"name": "x".repeat(2000), "startDate": "2031-01-01T09:00:00Z"});
    let body = alice
        .post_problem("/api/v1/tasks", &big, StatusCode::PAYLOAD_TOO_LARGE)
        .await;
    assert_eq!(body["type"], "https://chime.dev/problems/too-large");
    assert!(
        body["detail"].as_str().expect("detail").contains("1024"),
        "{body}"
    );
    assert_eq!(body.headers["x-content-type-options"], "nosniff");
    // A chunked body without a length is cut off at the limit just the same.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..4).map(|_| Ok(Bytes::from(vec![b' '; 512]))).collect();
    let chunked = alice
        .request(Method::POST, "/api/v1/tasks")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
    alice.problem(chunked, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Under the limit is fine.
    alice.create_task(&task("small")).await;
}

#[tokio::test]
async fn a_burst_of_writes_over_the_users_rate_is_a_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.limits.writes_per_second = 0.5;
        c.limits.write_burst = 3;
    })
    .await;
    let alice = app.user("alice");
    let preview = json!({"name": "daily", "startDate": "2031-01-01T09:00:00Z",
        "repeats": {"period": "day"}});
    for _ in 0..3 {
        alice
            .post::<Value>("/api/v1/tasks/preview", &preview, StatusCode::OK)
            .await;
    }
    let body = alice
        .post_problem(
            "/api/v1/tasks/preview",
            &preview,
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
    assert_eq!(body["type"], "https://chime.dev/problems/rate-limited");
    let retry_after: u64 = body.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert_eq!(retry_after, 2, "one token at 0.5/s is 2 s away");
    // Every write method counts, reads do not, and other users have their own bucket.
    alice
        .delete_problem("/api/v1/webhook", StatusCode::TOO_MANY_REQUESTS)
        .await;
    alice.get::<Value>("/api/v1/tasks", StatusCode::OK).await;
    app.user("bob")
        .post::<Value>("/api/v1/tasks/preview", &preview, StatusCode::OK)
        .await;
    // Calls without a valid token are not counted against anyone: they are a 401.
    app.anonymous()
        .post_problem("/api/v1/tasks/preview", &preview, StatusCode::UNAUTHORIZED)
        .await;
}

#[tokio::test]
async fn past_the_concurrency_cap_requests_are_shed_with_a_503_and_retry_after() {
    let app = spawn_app_with(|c| {
        c.limits.concurrent_requests = 1;
        c.limits.event_streams = 1;
    })
    .await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    // An open event stream takes no request slot.
    let _stream = alice.sse("/api/v1/notifications/stream").await;
    alice.get::<Value>("/api/v1/tasks", StatusCode::OK).await;
    // But the streams have their own cap.
    let body = bob
        .get_problem(
            "/api/v1/notifications/stream",
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    assert_eq!(body["type"], "https://chime.dev/problems/overloaded");
    assert_eq!(body.headers["retry-after"], "1");

    // A create whose body is still arriving holds the only request slot. A probe of bob's
    // may hold the slot at the moment it arrives, and then it is the one shed: start another.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (shed, tx, held) = 'attempt: loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the slow request to hold the slot"
        );
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
        tx.unbounded_send(Ok(Bytes::from_static(b"{\"name\": \"slow\", ")))
            .expect("send");
        let held = {
            let request = alice
                .request(Method::POST, "/api/v1/tasks")
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(rx));
            tokio::spawn(async move { request.send().await })
        };
        while !held.is_finished() && tokio::time::Instant::now() < deadline {
            let response = bob
                .request(Method::GET, "/api/v1/tasks")
                .send()
                .await
                .expect("request");
            if response.status() == 503 {
                break 'attempt (response, tx, held);
            }
            // Backoff of a poll with a deadline: nothing says when the slot is taken.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    let shed = problem_of(shed, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(shed.headers["retry-after"], "1");
    // Health, readiness and metrics stay answerable.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = app
            .anonymous()
            .request(Method::GET, path)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{path}");
    }

    tx.unbounded_send(Ok(Bytes::from_static(
        b"\"startDate\": \"2031-01-01T09:00:00Z\"}",
    )))
    .expect("send");
    drop(tx);
    let created = held.await.expect("join").expect("slow request");
    assert_eq!(created.status(), 201);
    bob.get::<Value>("/api/v1/tasks", StatusCode::OK).await;
}

#[tokio::test]
async fn a_user_at_the_task_limit_gets_a_409_problem_naming_it_until_one_is_deleted() {
    let app = spawn_app_with(|c| c.limits.tasks_per_user = 2).await;
    let alice = app.user("alice");
    let first = alice.create_task(&task("one")).await;
    alice.create_task(&task("two")).await;
    let body = alice
        .post_problem("/api/v1/tasks", &task("three"), StatusCode::CONFLICT)
        .await;
    assert_eq!(body["type"], "https://chime.dev/problems/task-limit");
    assert!(
        body["detail"].as_str().expect("detail").contains('2'),
        "{body}"
    );
    // Still two; another user is not affected.
    let page: Value = alice.get("/api/v1/tasks", StatusCode::OK).await;
    assert_eq!(page["tasks"].as_array().expect("tasks").len(), 2);
    app.create("bob", &task("bob's")).await;
    // Replacing a task is not creating one.
    let id = first["id"].as_str().expect("id");
    let path = format!("/api/v1/tasks/{id}");
    alice
        .put::<Value>(&path, &task("one, again"), StatusCode::OK)
        .await;
    alice.delete::<()>(&path, StatusCode::NO_CONTENT).await;
    alice.create_task(&task("three")).await;
}

// --- Recurrence -----------------------------------------------------------------------------

async fn preview(app: &TestApp, body: &Value) -> Vec<String> {
    let json: Value = app
        .user("alice")
        .post("/api/v1/tasks/preview?count=1000", body, StatusCode::OK)
        .await;
    json["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|o| o.as_str().expect("instant").to_owned())
        .collect()
}

fn strictly_increasing(instants: &[String]) {
    let parsed: Vec<jiff::Timestamp> = instants
        .iter()
        .map(|s| s.parse().expect("RFC 3339"))
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn pathological_recurrence_rules_answer_with_bounded_work_and_the_right_shape() {
    let app = spawn_app().await;

    // The 31st every 12 months from February: never. Bounded by the 400-year calendar cycle.
    let never = json!({"name": "never", "startDate": "2031-02-10T09:00:00Z",
        "repeats": {"period": "month", "frequency": 12, "on": [31]}});
    assert!(preview(&app, &never).await.is_empty());
    let alice = app.user("alice");
    let body = alice
        .post_problem("/api/v1/tasks", &never, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(body["errors"][0]["pointer"], "/startDate");

    // The 31st of every month, 1000 of them: only months that have one, about 140 years.
    let thirty_firsts = json!({"name": "31st", "startDate": "2031-01-31T09:00:00Z",
        "repeats": {"period": "month", "on": "31"}});
    let occurrences = preview(&app, &thirty_firsts).await;
    assert_eq!(occurrences.len(), 1000);
    assert!(
        occurrences.iter().all(|o| o[8..10] == *"31"),
        "{occurrences:?}"
    );
    strictly_increasing(&occurrences);

    // February 29 every year: leap years only, 1000 of them run past year 6000.
    let leap = json!({"name": "leap", "startDate": "2032-02-29T09:00:00Z",
        "repeats": {"period": "year", "ends": 100000}});
    let occurrences = preview(&app, &leap).await;
    assert_eq!(occurrences.len(), 1000);
    assert!(occurrences.iter().all(|o| o[4..10] == *"-02-29"));
    assert!(!occurrences.iter().any(|o| o.starts_with("2100-")));
    strictly_increasing(&occurrences);

    // The same by RFC 5545 rules: February 29 on a Monday comes every 28 years or so, so its
    // 1000 previews end with the calendar (year 9999) after a few hundred; a rule that never
    // matches is refused at the rule after the same bounded search.
    let leap_mondays = json!({"name": "leap Mondays", "startDate": "2032-02-29T09:00:00Z",
        "repeats": {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"}});
    let occurrences = preview(&app, &leap_mondays).await;
    assert!(
        (200..1000).contains(&occurrences.len()),
        "{}",
        occurrences.len()
    );
    assert!(occurrences.iter().all(|o| o[4..10] == *"-02-29"));
    strictly_increasing(&occurrences);
    let never_by_rule = json!({"name": "never", "startDate": "2031-02-10T09:00:00Z",
        "repeats": {"rrule": "FREQ=YEARLY;BYMONTH=1;BYYEARDAY=100"}});
    assert!(preview(&app, &never_by_rule).await.is_empty());
    let body = alice
        .post_problem(
            "/api/v1/tasks",
            &never_by_rule,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(body["errors"][0]["pointer"], "/repeats/rrule");

    // Daily until the end of the calendar: a stored task's occurrences stop at the cap.
    let daily = app
        .create(
            "alice",
            &json!({"name": "daily", "startDate": "2031-01-01T09:00:00Z",
                "repeats": {"period": "day", "ends": "9999-12-31"}}),
        )
        .await;
    let json: Value = alice
        .get(
            &format!(
                "/api/v1/tasks/{}/occurrences?count=1000",
                daily["id"].as_str().expect("id")
            ),
            StatusCode::OK,
        )
        .await;
    let occurrences: Vec<String> = json["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|o| o.as_str().expect("instant").to_owned())
        .collect();
    assert_eq!(occurrences.len(), 1000);
    strictly_increasing(&occurrences);

    // More than the cap is refused, not computed.
    let body = alice
        .post_problem(
            "/api/v1/tasks/preview?count=1001",
            &thirty_firsts,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(body["errors"][0]["pointer"], "?count");
}
