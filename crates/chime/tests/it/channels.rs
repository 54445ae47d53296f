//! External channels through the whole server: webhook signatures, SMS dead letters retried
//! through the API, email across an SMTP outage (a real SMTP server, aiosmtpd), a hanging
//! webhook receiver that must not delay anyone else, and hanging email and SMS providers
//! (a silent SMTP server, an SMS API that never answers) that must not delay any other
//! channel or user.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use chime::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::helpers::{eventually, in_ms, spawn_app_with, TestApp, PATIENCE};

/// Fast retries, so that outages in tests last seconds.
fn fast_retries(config: &mut Config) {
    config.delivery.retry_base_seconds = 0.2;
    config.delivery.retry_max_delay_seconds = 2.0;
    config.channels.webhook = Some(chime_channels::webhook::WebhookConfig {
        allow_private: true,
        timeout_seconds: 30,
    });
}

/// One POST a receiver saw.
#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1:0 that answers 204, or never answers when `hang`.
async fn receiver(hang: bool) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/hook",
            post(
                move |State(tx): State<mpsc::UnboundedSender<Received>>,
                      headers: HeaderMap,
                      body: axum::body::Bytes| async move {
                    let _ = tx.send(Received {
                        headers,
                        body: body.to_vec(),
                    });
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn set_webhook(app: &TestApp, user: &str, url: &str) -> String {
    let response = app
        .client
        .put(app.url("/api/v1/webhook"))
        .bearer_auth(app.token(user))
        .json(&json!({ "url": url }))
        .send()
        .await
        .expect("put webhook");
    assert_eq!(response.status(), 200);
    let webhook: Value = response.json().await.expect("json");
    webhook["secret"].as_str().expect("secret").to_owned()
}

/// The task's history once `channel` has a final delivery state.
async fn final_delivery(app: &TestApp, user: &str, task_id: &str, channel: &str) -> Value {
    eventually(&format!("a final {channel} delivery"), || async {
        let history: Value = app
            .get(user, &format!("/api/v1/tasks/{task_id}/history"))
            .await
            .json()
            .await
            .ok()?;
        let delivery = history["history"][0]["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["channel"] == channel && d["outcome"] != "pending")?
            .clone();
        Some(delivery)
    })
    .await
}

#[tokio::test]
async fn a_webhook_reminder_is_signed_with_the_users_secret_and_history_shows_it_sent() {
    let app = spawn_app_with(fast_retries).await;
    let (url, mut received) = receiver(false).await;
    let secret = set_webhook(&app, "alice", &url).await;
    let task = app
        .create(
            "alice",
            &json!({"name": "Pay rent", "startDate": in_ms(1500), "notify": {"webhook": true, "inApp": false}}),
        )
        .await;
    let id = task["id"].as_str().expect("id");

    let hit = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("the webhook was not called")
        .expect("receiver");
    let header = |name: &str| hit.headers[name].to_str().expect("header").to_owned();
    let timestamp: i64 = header("webhook-timestamp").parse().expect("timestamp");
    chime_channels::webhook::verify(
        &secret,
        &header("webhook-id"),
        timestamp,
        &hit.body,
        &header("webhook-signature"),
        jiff::Timestamp::now(),
    )
    .expect("the signature verifies with the user's secret");
    let payload: Value = serde_json::from_slice(&hit.body).expect("json");
    assert_eq!(payload["type"], "reminder.due");
    assert_eq!(payload["data"]["taskId"], id);
    assert_eq!(payload["data"]["taskName"], "Pay rent");
    assert_eq!(payload["data"]["dueAt"], task["startDate"]);

    let delivery = final_delivery(&app, "alice", id, "webhook").await;
    assert_eq!(delivery["outcome"], "sent");
    assert_eq!(delivery["attempts"], 1);
    app.running.stop().await.expect("stop");
}

#[tokio::test]
async fn a_webhook_endpoint_on_a_private_address_is_refused_unless_allowed() {
    let app = spawn_app_with(|_| {}).await;
    let response = app
        .client
        .put(app.url("/api/v1/webhook"))
        .bearer_auth(app.token("alice"))
        .json(&json!({"url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .expect("put webhook");
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["errors"][0]["pointer"], "/url");
    assert!(problem["errors"][0]["detail"]
        .as_str()
        .expect("detail")
        .contains("loopback"));
}

#[tokio::test]
async fn a_hanging_webhook_receiver_does_not_delay_another_users_delivery() {
    let app = spawn_app_with(fast_retries).await;
    let (slow_url, mut slow) = receiver(true).await;
    let (fast_url, mut fast) = receiver(false).await;
    set_webhook(&app, "slow", &slow_url).await;
    set_webhook(&app, "fast", &fast_url).await;
    let body = |ms| json!({"name": "r", "startDate": in_ms(ms), "notify": {"webhook": true}});
    app.create("slow", &body(1500)).await;
    let fast_task = app.create("fast", &body(2500)).await;

    // The slow receiver has the first request and holds it (its timeout is 30 s) ...
    tokio::time::timeout(Duration::from_secs(20), slow.recv())
        .await
        .expect("the slow receiver was not called")
        .expect("receiver");
    // ... while the fast one is delivered, and recorded sent, meanwhile.
    tokio::time::timeout(Duration::from_secs(20), fast.recv())
        .await
        .expect("the fast receiver waited behind the slow one")
        .expect("receiver");
    let delivery = final_delivery(
        &app,
        "fast",
        fast_task["id"].as_str().expect("id"),
        "webhook",
    )
    .await;
    assert_eq!(delivery["outcome"], "sent");
    app.running.shutdown.cancel();
}

/// A Twilio-shaped SMS provider that refuses the number until told otherwise.
#[derive(Clone, Default)]
struct SmsProvider {
    accept: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn sms_provider() -> (String, SmsProvider) {
    let provider = SmsProvider::default();
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/ACtest/Messages.json",
            post(|State(p): State<SmsProvider>, body: String| async move {
                let n = p.requests.fetch_add(1, Ordering::SeqCst) + 1;
                p.bodies.lock().expect("lock").push(body);
                if p.accept.load(Ordering::SeqCst) {
                    (
                        StatusCode::CREATED,
                        axum::Json(json!({"sid": format!("SM{n:032}"), "status": "queued"})),
                    )
                        .into_response()
                } else {
                    (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})),
                    )
                        .into_response()
                }
            }),
        )
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, provider)
}

#[tokio::test]
async fn a_dead_lettered_sms_shows_its_reason_and_is_sent_when_retried_through_the_api() {
    let (base, provider) = sms_provider().await;
    let app = spawn_app_with(|c| {
        fast_retries(c);
        c.channels.sms = Some(chime_channels::sms::SmsConfig {
            account_sid: "ACtest".into(),
            auth_token: "secret-token".into(),
            from: "+14075550000".into(),
            base_url: base,
            timeout_seconds: 5,
        });
    })
    .await;
    let task = app
        .create(
            "alice",
            &json!({"name": "Dentist", "startDate": in_ms(1500), "notify": {"sms": "4075551212"}}),
        )
        .await;
    assert_eq!(task["notify"]["sms"], "+14075551212");
    let id = task["id"].as_str().expect("id");

    // A 400 with Twilio's invalid-number code is permanent: dead-lettered at once.
    let dead = final_delivery(&app, "alice", id, "sms").await;
    assert_eq!(dead["outcome"], "deadLettered");
    assert_eq!(dead["attempts"], 1);
    assert!(dead["detail"].as_str().expect("detail").contains("21211"));
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1);
    assert!(provider.bodies.lock().expect("lock")[0].contains("To=%2B14075551212"));

    // The user fixes things on the provider's side and retries it.
    provider.accept.store(true, Ordering::SeqCst);
    let response = app
        .post(
            "alice",
            &format!("/api/v1/tasks/{id}/deliveries/retry"),
            &json!({"dueAt": task["startDate"], "channel": "sms"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let sent = eventually("the retried SMS to be sent", || async {
        let history: Value = app
            .get("alice", &format!("/api/v1/tasks/{id}/history"))
            .await
            .json()
            .await
            .ok()?;
        let d = history["history"][0]["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["channel"] == "sms" && d["outcome"] == "sent")?
            .clone();
        Some(d)
    })
    .await;
    assert_eq!(sent["attempts"], 2);
    assert_eq!(sent["providerId"], format!("SM{:032}", 2));
    // Retrying what is not dead-lettered is a conflict with the task's state, and nothing is
    // retried; another user's (or a missing) task is a 404.
    let again = app
        .post(
            "alice",
            &format!("/api/v1/tasks/{id}/deliveries/retry"),
            &json!({"dueAt": task["startDate"], "channel": "sms"}),
        )
        .await;
    assert_eq!(again.status(), 409);
    let problem: Value = again.json().await.expect("problem");
    assert_eq!(
        problem["type"],
        "https://chime.dev/problems/not-dead-lettered"
    );
    let stranger = app
        .post(
            "bob",
            &format!("/api/v1/tasks/{id}/deliveries/retry"),
            &json!({"dueAt": task["startDate"], "channel": "sms"}),
        )
        .await;
    assert_eq!(stranger.status(), 404);
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2);
    app.running.stop().await.expect("stop");
}

/// The aiosmtpd test server of the email adapter, on a fixed port so it can be restarted.
struct Smtp {
    _child: tokio::process::Child,
}

fn smtp_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chime-channels/tests/support/smtp_server.py")
}

async fn start_smtp(dir: &Path, port: u16) -> Smtp {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut child = tokio::process::Command::new(python)
        .arg(smtp_script())
        .arg(dir)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with aiosmtpd (pip install aiosmtpd)");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("the SMTP server did not start")
    .expect("read")
    .expect("the SMTP server exited (pip install aiosmtpd?)");
    assert!(line.starts_with("ready"), "{line}");
    Smtp { _child: child }
}

fn received_messages(dir: &Path) -> Vec<String> {
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let eml = path.with_extension("eml");
            messages.push(std::fs::read_to_string(eml).expect("eml"));
        }
    }
    messages
}

/// The occurrence key each received message carries.
fn occurrence_header(raw: &str) -> Option<String> {
    raw.lines()
        .find_map(|l| l.strip_prefix("X-Chime-Occurrence: "))
        .map(|v| v.trim().to_owned())
}

#[tokio::test]
async fn every_email_arrives_exactly_once_across_an_smtp_outage() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    const REMINDERS: usize = 1000;
    let outage = Duration::from_secs(
        std::env::var("CHIME_TEST_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let mail = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let smtp = start_smtp(mail.path(), port).await;
    let app = spawn_app_with(|c| {
        fast_retries(c);
        c.delivery.retry_max_delay_seconds = 5.0;
        // One user creates 1,000 reminders at once: above the default write burst.
        c.limits.write_burst = 2_000;
        c.channels.email = Some(chime_channels::email::EmailConfig::new(
            format!("smtp://127.0.0.1:{port}"),
            "Chime <reminders@example.com>",
        ));
    })
    .await;

    // 1,000 reminders due over one second, starting a few seconds from now.
    // Far enough that a loaded machine (tests run in parallel) finishes creating first.
    let first_due = 45_000;
    let due_from = tokio::time::Instant::now() + Duration::from_millis(first_due as u64);
    let bodies: Vec<Value> = (0..REMINDERS)
        .map(|i| {
            json!({"name": format!("r{i}"), "startDate": in_ms(first_due + i as i64),
                   "notify": {"email": format!("user{i}@example.com"), "inApp": false}})
        })
        .collect();
    let app_ref = &app;
    futures::future::join_all(bodies.chunks(100).map(|chunk| async move {
        for body in chunk {
            app_ref.create("alice", body).await;
        }
    }))
    .await;

    // The SMTP server goes away before they fall due, and stays away for the outage.
    drop(smtp);
    let metrics = |app: &TestApp| {
        let url = app.url("/metrics");
        let client = app.client.clone();
        async move { client.get(url).send().await.ok()?.text().await.ok() }
    };
    // They fall due from `due_from` on; each fails once the workers reach it.
    let deadline = due_from + PATIENCE;
    loop {
        let text = metrics(&app).await.unwrap_or_default();
        let retried = counter(
            &text,
            r#"chime_deliveries_total{channel="email",outcome="retried"}"#,
        );
        if retried >= REMINDERS as u64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {retried} of {REMINDERS} emails failed once by {PATIENCE:?} after they fell due"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(outage).await;
    let _smtp = start_smtp(mail.path(), port).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let text = metrics(&app).await.unwrap_or_default();
        let sent = counter(
            &text,
            r#"chime_deliveries_total{channel="email",outcome="sent"}"#,
        );
        if sent >= REMINDERS as u64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {sent} of {REMINDERS} emails sent two minutes after the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let messages = received_messages(mail.path());
    let mut keys: Vec<String> = messages
        .iter()
        .filter_map(|m| occurrence_header(m))
        .collect();
    assert_eq!(
        keys.len(),
        messages.len(),
        "every message carries its occurrence"
    );
    keys.sort();
    keys.dedup();
    assert_eq!(
        messages.len(),
        REMINDERS,
        "received {} messages",
        messages.len()
    );
    assert_eq!(keys.len(), REMINDERS, "some occurrence was emailed twice");
    app.running.stop().await.expect("stop");
}

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A push service on 127.0.0.1:0: accepts the first message (201), then says the
/// subscription is gone (410).
async fn push_service() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/push/browser-1",
            post(
                |State(hits): State<Arc<AtomicUsize>>, headers: HeaderMap| async move {
                    assert_eq!(headers["content-encoding"], "aes128gcm");
                    assert!(headers["authorization"]
                        .to_str()
                        .expect("authorization")
                        .starts_with("vapid t="));
                    if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                        (StatusCode::CREATED, [("location", "/m/1")]).into_response()
                    } else {
                        StatusCode::GONE.into_response()
                    }
                },
            ),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/push/browser-1",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

#[tokio::test]
async fn a_push_subscription_the_push_service_says_is_gone_is_removed() {
    use base64::Engine as _;
    let (endpoint, hits) = push_service().await;
    let app = spawn_app_with(|c| {
        fast_retries(c);
        c.channels.push = Some(
            serde_json::from_value(json!({"subject": "mailto:ops@example.com"})).expect("config"),
        );
    })
    .await;
    let key = app.get("alice", "/api/v1/push/public-key").await;
    assert_eq!(key.status(), 200);

    // A browser's subscription: its own P-256 key and auth secret.
    let browser = p256::SecretKey::random(&mut rand::thread_rng());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let p256dh = b64.encode(p256::EncodedPoint::from(browser.public_key()).as_bytes());
    let auth = b64.encode([7u8; 16]);
    let response = app
        .post(
            "alice",
            "/api/v1/push/subscriptions",
            &json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let bad = app
        .post(
            "alice",
            "/api/v1/push/subscriptions",
            &json!({"endpoint": endpoint, "keys": {"p256dh": "AAAA", "auth": auth}}),
        )
        .await;
    assert_eq!(bad.status(), 422);

    let body = |ms| json!({"name": "stretch", "startDate": in_ms(ms), "notify": {"push": true, "inApp": false}});
    let first = app.create("alice", &body(1500)).await;
    let delivered = final_delivery(&app, "alice", first["id"].as_str().expect("id"), "push").await;
    assert_eq!(delivered["outcome"], "sent");
    assert_eq!(delivered["providerId"], "/m/1");

    let second = app.create("alice", &body(1500)).await;
    let gone = final_delivery(&app, "alice", second["id"].as_str().expect("id"), "push").await;
    assert_eq!(gone["outcome"], "deadLettered");
    assert!(gone["detail"].as_str().expect("detail").contains("removed"));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let subs: Value = app
        .get("alice", "/api/v1/push/subscriptions")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(subs["subscriptions"], json!([]));
    app.running.stop().await.expect("stop");
}

/// An SMTP server that accepts connections and never says a word (not even its greeting),
/// holding each one open: the client waits until its own timeout.
async fn silent_smtp() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, accepted)
}

/// A Twilio-shaped SMS API that takes each request and never answers it.
async fn silent_sms_api() -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/ACtest/Messages.json",
            post(|State(n): State<Arc<AtomicUsize>>| async move {
                n.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }),
        )
        .with_state(requests.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, requests)
}

/// How late a delivery may be and still be on time here: far below the 30 s provider timeout
/// that a delivery queued behind a hanging provider would wait, and generous for a loaded
/// machine (deliveries take milliseconds).
const ON_TIME: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

#[tokio::test]
async fn hanging_email_and_sms_providers_delay_no_other_channel_and_no_other_user() {
    const USERS: [&str; 3] = ["ann", "bob", "cat"];
    // More reminders than attempts in flight per channel (16), so that the hanging channels'
    // every slot is held and more wait behind them.
    const PER_USER: usize = 8;
    let (smtp_port, smtp_connections) = silent_smtp().await;
    let (sms_base, sms_requests) = silent_sms_api().await;
    let app = spawn_app_with(|c| {
        fast_retries(c);
        c.channels.email = Some(chime_channels::email::EmailConfig::new(
            format!("smtp://127.0.0.1:{smtp_port}"),
            "Chime <reminders@example.com>",
        ));
        c.channels.sms = Some(chime_channels::sms::SmsConfig {
            account_sid: "ACtest".into(),
            auth_token: "secret-token".into(),
            from: "+14075550000".into(),
            base_url: sms_base,
            timeout_seconds: 30,
        });
    })
    .await;
    let (hook_url, mut hooks) = receiver(false).await;
    let mut inboxes = Vec::new();
    for user in USERS {
        set_webhook(&app, user, &hook_url).await;
        inboxes.push(
            crate::helpers::SseReader::open(
                &app.client,
                &app.url("/api/v1/notifications/stream"),
                &app.token(user),
            )
            .await,
        );
    }
    for i in 0..PER_USER {
        for user in USERS {
            app.create(
                user,
                &json!({"name": format!("{user} {i}"), "startDate": in_ms(2000 + 40 * i as i64),
                        "notify": {"email": format!("{user}@example.com"), "sms": "+14075551212",
                                   "inApp": true, "webhook": true}}),
            )
            .await;
        }
    }

    let lateness = |due: &Value| {
        let due: jiff::Timestamp = due.as_str().expect("dueAt").parse().expect("instant");
        due.duration_until(jiff::Timestamp::now())
    };
    // Every webhook (each user's) and every in-app notification, on time.
    for _ in 0..USERS.len() * PER_USER {
        let hit = tokio::time::timeout(Duration::from_secs(20), hooks.recv())
            .await
            .expect("a webhook was not delivered")
            .expect("receiver");
        let payload: Value = serde_json::from_slice(&hit.body).expect("json");
        let late = lateness(&payload["data"]["dueAt"]);
        assert!(late < ON_TIME, "a webhook was {late:?} late");
    }
    for inbox in &mut inboxes {
        for _ in 0..PER_USER {
            let event = inbox.next().await;
            assert_eq!(event.event, "notification");
            let item: Value = serde_json::from_str(&event.data).expect("json");
            let late = lateness(&item["dueAt"]);
            assert!(late < ON_TIME, "an in-app notification was {late:?} late");
        }
    }
    // Meanwhile the hanging providers did get the other channels' attempts, and sent nothing.
    assert!(
        smtp_connections.load(Ordering::SeqCst) >= 1,
        "no SMTP attempt"
    );
    assert!(sms_requests.load(Ordering::SeqCst) >= 1, "no SMS attempt");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for channel in ["email", "sms"] {
        let sent = counter(
            &metrics,
            &format!(r#"chime_deliveries_total{{channel="{channel}",outcome="sent"}}"#),
        );
        assert_eq!(
            sent, 0,
            "{channel} was sent through a provider that never answers"
        );
    }
    // Attempts are stuck in the hanging providers until their 30 s timeout: no graceful wait.
    app.running.shutdown.cancel();
}
