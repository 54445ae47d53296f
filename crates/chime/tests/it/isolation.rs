//! Per-user isolation, as a matrix: user A creates one of everything (a task that has fired,
//! so an open occurrence, a notification and history, a push subscription, a webhook, a
//! destination, a profile), then user B calls EVERY
//! operation of the served OpenAPI document (so an endpoint added later is covered without
//! touching this test). Each operation on one of A's resources answers 404 (never 403, which
//! would confirm it exists); no answer to B carries any of A's data; and A's resources are
//! unchanged afterwards.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{eventually, in_ms, spawn_app_with, StatusCode, TestApp};

const A: &str = "alice";
const B: &str = "bob";

/// Everything of A's that B must never see, and the ids B will aim at.
struct Secrets {
    task_id: String,
    due_at: String,
    notification_id: String,
    subscription_id: String,
    destination_id: String,
    /// Strings that must not appear in any answer to B.
    needles: Vec<String>,
}

fn subscription_body(endpoint: &str) -> Value {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let browser = p256::SecretKey::random(&mut rand::thread_rng());
    json!({
        "endpoint": endpoint,
        "keys": {
            "p256dh": b64.encode(p256::EncodedPoint::from(browser.public_key()).as_bytes()),
            "auth": b64.encode([9u8; 16]),
        }
    })
}

async fn create_as_a(app: &TestApp) -> Secrets {
    let task_name = "alice-private-task-name";
    let description = "alice-private-description";
    let task = app
        .create(
            A,
            &json!({
                "name": task_name,
                "description": description,
                "startDate": in_ms(1500),
                "repeats": {"frequency": 1, "period": "day"},
                "notify": {"email": "alice.private@example.com", "inApp": true},
            }),
        )
        .await;
    let task_id = task["id"].as_str().expect("id").to_owned();
    let a = app.user(A);

    let (notification_id, due_at) = eventually("A's in-app notification", || async {
        let page: Value = a.get("/api/v1/notifications", StatusCode::OK).await;
        let item = page["notifications"].as_array()?.first()?.clone();
        Some((
            item["id"].as_str()?.to_owned(),
            item["dueAt"].as_str()?.to_owned(),
        ))
    })
    .await;
    eventually("A's history", || async {
        let history: Value = a
            .get(&format!("/api/v1/tasks/{task_id}/history"), StatusCode::OK)
            .await;
        (!history["history"].as_array()?.is_empty()).then_some(())
    })
    .await;

    let endpoint = "http://127.0.0.1:9/alice-private-endpoint";
    let subscription: Value = a
        .post(
            "/api/v1/push/subscriptions",
            &subscription_body(endpoint),
            StatusCode::CREATED,
        )
        .await;
    let subscription_id = subscription["id"].as_str().expect("id").to_owned();

    let hook = "http://127.0.0.1:9/alice-private-hook";
    let webhook: Value = a
        .put("/api/v1/webhook", &json!({"url": hook}), StatusCode::OK)
        .await;
    let hook_secret = webhook["secret"].as_str().expect("secret").to_owned();
    let destination: Value = a
        .post(
            "/api/v1/destinations",
            &json!({"name": "alice-private-destination",
                    "url": "ntfy://tk_alicePrivateToken@127.0.0.1:9/alice-private-topic"}),
            StatusCode::CREATED,
        )
        .await;
    let destination_id = destination["id"].as_str().expect("id").to_owned();
    a.put::<Value>(
        "/api/v1/me",
        &json!({"email": "alice.profile@example.com", "phone": "+14075550123",
                "timeZone": "Pacific/Chatham"}),
        StatusCode::OK,
    )
    .await;

    Secrets {
        needles: vec![
            task_id.clone(),
            task_name.to_owned(),
            description.to_owned(),
            "alice.private@example.com".to_owned(),
            notification_id.clone(),
            subscription_id.clone(),
            endpoint.to_owned(),
            hook.to_owned(),
            hook_secret,
            "alice.profile@example.com".to_owned(),
            "+14075550123".to_owned(),
            "Pacific/Chatham".to_owned(),
            "\"alice\"".to_owned(),
            destination_id.clone(),
            "alice-private-destination".to_owned(),
            "alice-private-topic".to_owned(),
            "alicePrivateToken".to_owned(),
        ],
        task_id,
        due_at,
        notification_id,
        subscription_id,
        destination_id,
    }
}

/// Which of A's resources a templated path addresses.
fn fill(path: &str, a: &Secrets) -> String {
    let id =
        if path.starts_with("/api/v1/tasks/{id}") || path.starts_with("/api/v1/admin/tasks/{id}") {
            &a.task_id
        } else if path.starts_with("/api/v1/push/subscriptions/{id}") {
            &a.subscription_id
        } else if path.starts_with("/api/v1/destinations/{id}") {
            &a.destination_id
        } else {
            panic!(
                "{path} takes a path parameter this matrix does not know: add which of A's \
             resources it addresses to `fill`"
            )
        };
    path.replace("{id}", id).replace("{dueAt}", &a.due_at)
}

/// A request body B would send: valid, so that only ownership can refuse it.
fn body_for(method: &str, path: &str, a: &Secrets) -> Option<Value> {
    let task = json!({"name": "bob's own", "startDate": in_ms(3_600_000)});
    match (method, path) {
        ("post", "/api/v1/tasks") | ("post", "/api/v1/tasks/preview") => Some(task),
        ("put", "/api/v1/tasks/{id}") => Some(task),
        ("post", "/api/v1/tasks/{id}/deliveries/retry") => {
            Some(json!({"dueAt": a.due_at, "channel": "email"}))
        }
        ("post", "/api/v1/notifications/read") => Some(json!({"ids": [a.notification_id]})),
        ("post", "/api/v1/push/subscriptions") => {
            Some(subscription_body("http://127.0.0.1:9/bob-own-endpoint"))
        }
        ("put", "/api/v1/webhook") => Some(json!({"url": "http://127.0.0.1:9/bob-own-hook"})),
        ("post", "/api/v1/destinations") => {
            Some(json!({"name": "bob's own", "url": "ntfy://127.0.0.1:9/bob-own-topic"}))
        }
        ("put", "/api/v1/destinations/{id}") => Some(json!({"name": "bob's now"})),
        ("put", "/api/v1/me") => Some(json!({"email": "bob@example.com", "timeZone": "UTC"})),
        ("post", "/api/v1/tasks/{id}/occurrences/{dueAt}/snooze") => Some(json!({"minutes": 10})),
        ("post", "/api/v1/tasks/{id}/occurrences/{dueAt}/move") => {
            Some(json!({"to": in_ms(7_200_000)}))
        }
        ("post", "/api/v1/tasks/{id}/occurrences") => Some(json!({"at": in_ms(7_200_000)})),
        ("post", "/api/v1/tasks/import") => Some(json!({
            "calendar": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:b@example.com\r\n\
                         SUMMARY:bob's own\r\nDTSTART:20991231T090000Z\r\nEND:VEVENT\r\n\
                         END:VCALENDAR\r\n",
            "dryRun": true
        })),
        (_, _) => None,
    }
}

#[tokio::test]
async fn another_user_gets_a_404_for_every_endpoint_on_a_users_resources_and_sees_none_of_them() {
    let app = spawn_app_with(|c| {
        c.channels.push = Some(
            serde_json::from_value(json!({"subject": "mailto:ops@example.com"})).expect("push"),
        );
        c.channels.webhook =
            Some(serde_json::from_value(json!({"allow_private": true})).expect("webhook"));
    })
    .await;
    let a = create_as_a(&app).await;
    let (as_a, as_b, anonymous) = (app.user(A), app.user(B), app.anonymous());
    let unread_before = as_a
        .get::<Value>("/api/v1/notifications", StatusCode::OK)
        .await["unread"]
        .clone();

    let doc: Value = anonymous.get("/openapi.json", StatusCode::OK).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut tried = 0;
    for (template, operations) in paths {
        for (method, _) in operations.as_object().expect("operations") {
            let owned_by_a = template.contains('{');
            let path = if owned_by_a {
                fill(template, &a)
            } else {
                template.clone()
            };
            let http_method: reqwest::Method = method.to_uppercase().parse().expect("method");

            // Without a token: 401, whatever the resource.
            let refused = anonymous
                .request(http_method.clone(), &path)
                .send()
                .await
                .expect("request");
            assert_eq!(refused.status(), 401, "{method} {path} without a token");

            let mut request = as_b.request(http_method, &path);
            if let Some(body) = body_for(method, template, &a) {
                request = request.json(&body);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let event_stream = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if owned_by_a {
                assert_eq!(
                    status, 404,
                    "{method} {path} as B: A's resource must be a 404"
                );
            } else {
                assert_ne!(status, 403, "{method} {path}: a 403 confirms existence");
                assert!(status < 500, "{method} {path} as B: {status}");
            }
            // An event stream never ends by itself; B's stream is B's own by construction.
            if !event_stream {
                let text = response.text().await.expect("body");
                for needle in &a.needles {
                    assert!(
                        !text.contains(needle.as_str()),
                        "{method} {path} as B leaks A's {needle}: {text}"
                    );
                }
            }
            tried += 1;
        }
    }
    assert!(
        tried >= 20,
        "only {tried} operations in the OpenAPI document"
    );

    // A's resources are as A left them.
    let task: Value = as_a
        .get(&format!("/api/v1/tasks/{}", a.task_id), StatusCode::OK)
        .await;
    assert_eq!(task["version"], 1);
    assert_eq!(task["name"], "alice-private-task-name");
    let inbox: Value = as_a.get("/api/v1/notifications", StatusCode::OK).await;
    assert_eq!(inbox["unread"], unread_before);
    assert_eq!(inbox["notifications"][0]["id"], a.notification_id);
    assert_eq!(inbox["notifications"][0]["read"], false);
    let subs: Value = as_a.get("/api/v1/push/subscriptions", StatusCode::OK).await;
    assert_eq!(subs["subscriptions"][0]["id"], a.subscription_id);
    let hook: Value = as_a.get("/api/v1/webhook", StatusCode::OK).await;
    assert_eq!(hook["url"], "http://127.0.0.1:9/alice-private-hook");
    let destination: Value = as_a
        .get(
            &format!("/api/v1/destinations/{}", a.destination_id),
            StatusCode::OK,
        )
        .await;
    assert_eq!(destination["name"], "alice-private-destination");
    let me: Value = as_a.get("/api/v1/me", StatusCode::OK).await;
    assert_eq!(me["email"], "alice.profile@example.com");
    assert_eq!(me["timeZone"], "Pacific/Chatham");
    let history: Value = as_a
        .get(
            &format!("/api/v1/tasks/{}/history", a.task_id),
            StatusCode::OK,
        )
        .await;
    assert_eq!(history["history"].as_array().expect("history").len(), 1);
    // B's acknowledge and snooze changed nothing: A's occurrence is still open.
    let occurrence: Value = as_a
        .get(
            &format!("/api/v1/tasks/{}/occurrences/{}", a.task_id, a.due_at),
            StatusCode::OK,
        )
        .await;
    assert_eq!(occurrence["state"], "open", "{occurrence}");
}
