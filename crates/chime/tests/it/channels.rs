//! External channels through the whole server: webhook signatures, SMS dead letters retried
//! through the API, email across an SMTP outage (a real SMTP server, aiosmtpd), a hanging
//! webhook receiver that must not delay anyone else, and hanging email and SMS providers
//! (a silent SMTP server, an SMS API that never answers) that must not delay any other
//! channel or user.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chime::Config;
use chime_testenv::smtp::{saved_in, SmtpServer};
use serde_json::{json, Value};

use crate::helpers::{
    eventually, eventually_until, free_port, in_ms, sample, sms_reply, spawn_app_with,
    subscribe_push, Receiver, Reply, StatusCode, TestApp, PATIENCE,
};

/// Fast retries, so that outages in tests last seconds.
fn fast_retries(config: &mut Config) {
    config.delivery.retry_base_seconds = 0.2;
    config.delivery.retry_max_delay_seconds = 2.0;
    config.channels.webhook = Some(chime_channels::webhook::WebhookConfig {
        allow_private: true,
        timeout_seconds: 30,
    });
}

/// A webhook receiver that answers 204, or never answers when `hang`.
async fn receiver(hang: bool) -> Receiver {
    Receiver::start(if hang {
        Reply::never()
    } else {
        Reply::status(204)
    })
    .await
}

async fn set_webhook(app: &TestApp, user: &str, receiver: &Receiver) -> String {
    let webhook = app.user(user).set_webhook(&receiver.url("/hook")).await;
    webhook["secret"].as_str().expect("secret").to_owned()
}

/// The task's history once `channel` has a final delivery state.
async fn final_delivery(app: &TestApp, user: &str, task_id: &str, channel: &str) -> Value {
    let client = app.user(user);
    eventually(&format!("a final {channel} delivery"), || async {
        let history: Value = client
            .get(&format!("/api/v1/tasks/{task_id}/history"), StatusCode::OK)
            .await;
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
    let received = receiver(false).await;
    let secret = set_webhook(&app, "alice", &received).await;
    let task = app
        .create(
            "alice",
            &json!({"name": "Pay rent", "startDate": in_ms(1500), "notify": {"webhook": true, "inApp": false}}),
        )
        .await;
    let id = task["id"].as_str().expect("id");

    let hit = received.nth(1).await;
    let header = |name: &str| hit.header(name).expect("header").to_owned();
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
    let problem = app
        .user("alice")
        .put_problem(
            "/api/v1/webhook",
            &json!({"url": "http://127.0.0.1:9/hook"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem["errors"][0]["pointer"], "/url");
    assert!(problem["errors"][0]["detail"]
        .as_str()
        .expect("detail")
        .contains("loopback"));
}

#[tokio::test]
async fn a_hanging_webhook_receiver_does_not_delay_another_users_delivery() {
    let app = spawn_app_with(fast_retries).await;
    let slow = receiver(true).await;
    let fast = receiver(false).await;
    set_webhook(&app, "slow", &slow).await;
    set_webhook(&app, "fast", &fast).await;
    let body = |ms| json!({"name": "r", "startDate": in_ms(ms), "notify": {"webhook": true}});
    app.create("slow", &body(1500)).await;
    let fast_task = app.create("fast", &body(2500)).await;

    // The slow receiver has the first request and holds it (its timeout is 30 s) ...
    slow.nth(1).await;
    // ... while the fast one is delivered, and recorded sent, meanwhile.
    fast.nth(1).await;
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

/// The path of a Twilio-shaped SMS API for the account `ACtest`.
const SMS_PATH: &str = "/2010-04-01/Accounts/ACtest/Messages.json";

/// A Twilio-shaped SMS provider that refuses the number until `accept` is set.
async fn sms_provider(accept: Arc<AtomicBool>) -> Receiver {
    Receiver::answering(move |_, n| {
        if accept.load(Ordering::SeqCst) {
            Reply::status(201).json(json!({"sid": format!("SM{n:032}"), "status": "queued"}).to_string())
        } else {
            Reply::status(400).json(
                json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})
                    .to_string(),
            )
        }
    })
    .await
}

/// An SMS channel through the provider at `base`.
fn sms_config(base: &str, timeout_seconds: u64) -> chime_channels::sms::SmsConfig {
    chime_channels::sms::SmsConfig {
        account_sid: "ACtest".into(),
        auth_token: "secret-token".into(),
        from: "+14075550000".into(),
        base_url: base.to_owned(),
        timeout_seconds,
        inbound_url: None,
    }
}

#[tokio::test]
async fn a_dead_lettered_sms_shows_its_reason_and_is_sent_when_retried_through_the_api() {
    let accept = Arc::new(AtomicBool::new(false));
    let provider = sms_provider(accept.clone()).await;
    let config = sms_config(provider.base(), 5);
    let app = spawn_app_with(|c| {
        fast_retries(c);
        c.channels.sms = Some(config);
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
    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path(), SMS_PATH);
    assert!(requests[0].text().contains("To=%2B14075551212"));

    // The user fixes things on the provider's side and retries it.
    accept.store(true, Ordering::SeqCst);
    let alice = app.user("alice");
    let retry = format!("/api/v1/tasks/{id}/deliveries/retry");
    let again = json!({"dueAt": task["startDate"], "channel": "sms"});
    alice
        .post::<Value>(&retry, &again, StatusCode::ACCEPTED)
        .await;
    let sent = eventually("the retried SMS to be sent", || async {
        let history: Value = alice
            .get(&format!("/api/v1/tasks/{id}/history"), StatusCode::OK)
            .await;
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
    let problem = alice
        .post_problem(&retry, &again, StatusCode::CONFLICT)
        .await;
    assert_eq!(
        problem["type"],
        "https://chime.dev/problems/not-dead-lettered"
    );
    app.user("bob")
        .post_problem(&retry, &again, StatusCode::NOT_FOUND)
        .await;
    assert_eq!(provider.count(), 2);
    app.running.stop().await.expect("stop");
}

/// The aiosmtpd test server, saving into `dir`, on a fixed port so it can be restarted.
async fn start_smtp(dir: &Path, port: u16) -> SmtpServer {
    SmtpServer::start(dir, &["--port", &port.to_string()]).await
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
    let port = free_port();
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
    let email =
        |outcome: &str| format!(r#"chime_deliveries_total{{channel="email",outcome="{outcome}"}}"#);
    let counted = |series: String| {
        let app = &app;
        async move {
            let n = sample(&app.metrics().await, &series).unwrap_or_default();
            (n >= REMINDERS as f64).then_some(())
        }
    };
    // They fall due from `due_from` on; each fails once the workers reach it.
    eventually_until(
        "every email to fail once after they fell due",
        due_from + PATIENCE,
        || counted(email("retried")),
    )
    .await;
    // The outage of a real external process: it must last real time.
    tokio::time::sleep(outage).await;
    let _smtp = start_smtp(mail.path(), port).await;

    eventually_until(
        "every email to be sent within two minutes of the outage",
        tokio::time::Instant::now() + Duration::from_secs(120),
        || counted(email("sent")),
    )
    .await;
    let messages: Vec<String> = saved_in(mail.path())
        .iter()
        .map(|saved| String::from_utf8_lossy(&saved.raw).into_owned())
        .collect();
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

/// A server with quick retries, local targets (a plain-http push service) and web push.
async fn push_app() -> TestApp {
    spawn_app_with(|c| {
        fast_retries(c);
        c.channels.push = Some(
            serde_json::from_value(json!({"subject": "mailto:ops@example.com"})).expect("config"),
        );
    })
    .await
}

/// Done elsewhere, a shown push is taken back: acknowledging an occurrence (here in the
/// inbox) sends its subscription a second message with the same `Topic` header, which the
/// browser reads (decrypted here as a browser does, independently of the server's code) as
/// `{"close": tag}` naming the reminder's tag, so its service worker closes it. Another
/// task's push is left alone.
#[tokio::test]
async fn acknowledging_a_reminder_withdraws_its_shown_push_with_the_same_topic() {
    let push =
        Receiver::answering(|_, n| Reply::status(201).header("location", format!("/m/{n}"))).await;
    let app = push_app().await;
    let alice = app.user("alice");
    let browser = subscribe_push(&alice, &push.url("/push/phone")).await;
    let body = |name: &str| json!({"name": name, "startDate": in_ms(1200), "notify": {"push": true, "inApp": true}});
    let done = app.create("alice", &body("Take the pills")).await;
    let other = app.create("alice", &body("Call mum")).await;
    for task in [&done, &other] {
        let delivered =
            final_delivery(&app, "alice", task["id"].as_str().expect("id"), "push").await;
        assert_eq!(delivered["outcome"], "sent");
    }
    let reminders = push.requests();
    assert_eq!(reminders.len(), 2);
    let read = |body: &[u8]| -> Value {
        serde_json::from_slice(&crate::helpers::decrypt_push(&browser, body)).expect("JSON")
    };
    let shown = reminders
        .iter()
        .map(|r| {
            (
                read(&r.body),
                r.header("topic").expect("a topic").to_owned(),
            )
        })
        .find(|(payload, _)| payload["taskId"] == done["id"])
        .expect("the reminder's push");
    assert_eq!(shown.0["title"], "Reminder: Take the pills");
    let tag = shown.0["tag"].as_str().expect("tag").to_owned();

    let id = done["id"].as_str().expect("id");
    let due = done["startDate"].as_str().expect("startDate");
    let done_path = format!("/api/v1/tasks/{id}/occurrences/{due}/acknowledge");
    let empty = json!({});
    let acknowledge = || alice.post::<Value>(&done_path, &empty, StatusCode::OK);
    acknowledge().await;
    let withdrawal = eventually("the withdrawal", || async {
        push.requests().get(2).cloned()
    })
    .await;
    assert_eq!(withdrawal.path(), "/push/phone");
    assert_eq!(
        withdrawal.header("topic"),
        Some(shown.1.as_str()),
        "the reminder's topic"
    );
    assert_eq!(read(&withdrawal.body), json!({"close": tag}));
    // Done again: nothing more to take back.
    acknowledge().await;
    let sentinel = app.create("alice", &body("Sentinel")).await;
    final_delivery(&app, "alice", sentinel["id"].as_str().expect("id"), "push").await;
    assert_eq!(push.requests().len(), 4, "the sentinel only");
    app.running.stop().await.expect("stop");
}

/// A push service on 127.0.0.1:0: accepts the first message (201), then says the
/// subscription is gone (410).
async fn push_service() -> Receiver {
    Receiver::answering(|_, n| match n {
        1 => Reply::status(201).header("location", "/m/1"),
        _ => Reply::status(410),
    })
    .await
}

#[tokio::test]
async fn a_push_subscription_the_push_service_says_is_gone_is_removed() {
    use base64::Engine as _;
    let push = push_service().await;
    let endpoint = push.url("/push/browser-1");
    let app = push_app().await;
    let alice = app.user("alice");
    subscribe_push(&alice, &endpoint).await;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let auth = b64.encode(crate::helpers::PUSH_AUTH);
    alice
        .post_problem(
            "/api/v1/push/subscriptions",
            &json!({"endpoint": endpoint, "keys": {"p256dh": "AAAA", "auth": auth}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;

    let body = |ms| json!({"name": "stretch", "startDate": in_ms(ms), "notify": {"push": true, "inApp": false}});
    let first = app.create("alice", &body(1500)).await;
    let delivered = final_delivery(&app, "alice", first["id"].as_str().expect("id"), "push").await;
    assert_eq!(delivered["outcome"], "sent");
    assert_eq!(delivered["providerId"], "/m/1");

    let second = app.create("alice", &body(1500)).await;
    let gone = final_delivery(&app, "alice", second["id"].as_str().expect("id"), "push").await;
    assert_eq!(gone["outcome"], "deadLettered");
    assert!(gone["detail"].as_str().expect("detail").contains("removed"));
    let requests = push.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.path(), "/push/browser-1");
        assert_eq!(request.header("content-encoding"), Some("aes128gcm"));
        assert!(request
            .header("authorization")
            .is_some_and(|a| a.starts_with("vapid t=")));
    }
    let subs: Value = alice
        .get("/api/v1/push/subscriptions", StatusCode::OK)
        .await;
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
    // A Twilio-shaped SMS API that takes each request and never answers it.
    let sms = Receiver::start(Reply::never()).await;
    let sms_config = sms_config(sms.base(), 30);
    let app = spawn_app_with(move |c| {
        fast_retries(c);
        c.channels.email = Some(chime_channels::email::EmailConfig::new(
            format!("smtp://127.0.0.1:{smtp_port}"),
            "Chime <reminders@example.com>",
        ));
        c.channels.sms = Some(sms_config);
    })
    .await;
    let hooks = receiver(false).await;
    let mut inboxes = Vec::new();
    for user in USERS {
        set_webhook(&app, user, &hooks).await;
        inboxes.push(app.user(user).sse("/api/v1/notifications/stream").await);
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

    let late_at = |due: &Value, at: jiff::Timestamp| {
        let due: jiff::Timestamp = due.as_str().expect("dueAt").parse().expect("instant");
        due.duration_until(at)
    };
    // Every webhook (each user's) and every in-app notification, on time.
    for n in 1..=USERS.len() * PER_USER {
        let hit = hooks.nth(n).await;
        let payload: Value = serde_json::from_slice(&hit.body).expect("json");
        let arrived = jiff::Timestamp::try_from(hit.received_at).expect("arrival");
        let late = late_at(&payload["data"]["dueAt"], arrived);
        assert!(late < ON_TIME, "a webhook was {late:?} late");
    }
    for inbox in &mut inboxes {
        for _ in 0..PER_USER {
            let event = inbox.next().await;
            assert_eq!(event.event, "notification");
            let item: Value = serde_json::from_str(&event.data).expect("json");
            let late = late_at(&item["dueAt"], jiff::Timestamp::now());
            assert!(late < ON_TIME, "an in-app notification was {late:?} late");
        }
    }
    // Meanwhile the hanging providers did get the other channels' attempts, and sent nothing.
    assert!(
        smtp_connections.load(Ordering::SeqCst) >= 1,
        "no SMTP attempt"
    );
    assert!(sms.count() >= 1, "no SMS attempt");
    let metrics = app.metrics().await;
    for channel in ["email", "sms"] {
        let sent = sample(
            &metrics,
            &format!(r#"chime_deliveries_total{{channel="{channel}",outcome="sent"}}"#),
        )
        .unwrap_or_default();
        assert_eq!(
            sent, 0.0,
            "{channel} was sent through a provider that never answers"
        );
    }
    // Attempts are stuck in the hanging providers until their 30 s timeout: no graceful wait.
    app.running.shutdown.cancel();
}

/// Replies to a reminder SMS, as Twilio posts them: a forged signature is a 401 that changes
/// nothing; `SNOOZE 30` snoozes the occurrence of the latest SMS to the sender's number, then
/// `DONE` acknowledges it (counted under SMS); a number Chime never texted gets a polite no.
#[tokio::test]
async fn an_sms_reply_snoozes_or_acknowledges_the_latest_reminder_and_a_forged_one_nothing() {
    let provider = sms_provider(Arc::new(AtomicBool::new(true))).await;
    let port = free_port();
    let inbound = format!("http://127.0.0.1:{port}/sms/inbound");
    let mut config = sms_config(provider.base(), 5);
    config.inbound_url = Some(inbound.clone());
    let app = spawn_app_with(|c| {
        c.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        c.channels.sms = Some(config);
    })
    .await;
    let alice = app.user("alice");
    let task = app
        .create(
            "alice",
            &json!({"name": "Dentist", "startDate": in_ms(800), "notify": {"sms": "4075551212"}}),
        )
        .await;
    let id = task["id"].as_str().expect("id").to_owned();
    let due = task["startDate"].as_str().expect("startDate").to_owned();
    let path = format!("/api/v1/tasks/{id}/occurrences/{due}");
    eventually("the SMS to be sent", || async {
        let history: Value = alice
            .get(&format!("/api/v1/tasks/{id}/history"), StatusCode::OK)
            .await;
        history["history"][0]["deliveries"]
            .as_array()?
            .iter()
            .any(|d| d["channel"] == "sms" && d["outcome"] == "sent")
            .then_some(())
    })
    .await;
    let before: Value = alice.get(&path, StatusCode::OK).await;
    assert_eq!(before["state"], "open");

    let (status, _) = sms_reply(&inbound, None, "+14075551212", "DONE").await;
    assert_eq!(status, 401, "a forged reply");
    let (status, _) = sms_reply(&inbound, Some("another-token"), "+14075551212", "DONE").await;
    assert_eq!(status, 401, "a reply signed with another account's token");
    assert_eq!(alice.get::<Value>(&path, StatusCode::OK).await, before);

    let (status, twiml) =
        sms_reply(&inbound, Some("secret-token"), "+14075551212", "snooze 30").await;
    assert_eq!(status, 200);
    assert!(
        twiml.contains("<Message>Snoozed 30 min: Dentist.</Message>"),
        "{twiml}"
    );
    let snoozed: Value = alice.get(&path, StatusCode::OK).await;
    assert_eq!(snoozed["state"], "snoozed");
    let until: jiff::Timestamp = snoozed["snoozedUntil"]
        .as_str()
        .expect("until")
        .parse()
        .expect("instant");
    let ahead = jiff::Timestamp::now().duration_until(until);
    assert!(
        ahead > jiff::SignedDuration::from_mins(29) && ahead <= jiff::SignedDuration::from_mins(30)
    );

    let (_, twiml) = sms_reply(&inbound, Some("secret-token"), "+14075551212", "what?").await;
    assert!(twiml.contains("Reply DONE"), "{twiml}");
    let (_, twiml) = sms_reply(&inbound, Some("secret-token"), "+14075551212", "Done.").await;
    assert!(
        twiml.contains("<Message>Done: Dentist.</Message>"),
        "{twiml}"
    );
    let done: Value = alice.get(&path, StatusCode::OK).await;
    assert_eq!(done["state"], "acknowledged");
    assert_eq!(done["acknowledgedOn"], "sms");
    assert!(done.get("snoozedUntil").is_some(), "{done}");

    let (status, twiml) = sms_reply(&inbound, Some("secret-token"), "+14075559999", "DONE").await;
    assert_eq!(status, 200);
    assert!(twiml.contains("no recent reminder"), "{twiml}");
    assert!(app
        .metrics()
        .await
        .contains(r#"chime_acknowledgements_total{channel="sms"} 1"#));
}
