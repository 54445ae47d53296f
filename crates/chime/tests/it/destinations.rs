//! Destinations through the whole server: an ntfy topic whose Done button acknowledges the
//! reminder, a Telegram bot whose button presses come back through its webhook (a wrong
//! secret changes nothing), destinations private to their owner, and an ntfy server down for
//! a minute with every reminder delivered once after it returns. The services are local
//! servers answering as each documents.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chime::Config;
use serde_json::{json, Value};

use crate::helpers::{
    eventually, eventually_until, free_port, in_ms, Receiver, Reply, StatusCode, TestApp, PATIENCE,
};

/// Destinations on loopback servers, fast retries, and the server's public address (where
/// buttons point) on a port chosen now.
fn local(config: &mut Config) {
    let port = free_port();
    config.listen = format!("127.0.0.1:{port}").parse().expect("addr");
    config.public_url = Some(format!("http://127.0.0.1:{port}"));
    config.delivery.retry_base_seconds = 0.2;
    config.delivery.retry_max_delay_seconds = 2.0;
    let allow = chime_channels::destination::DestinationConfig {
        allow: vec!["127.0.0.1".to_owned()],
        ..Default::default()
    };
    config.channels.ntfy = Some(allow.clone());
    config.channels.telegram = Some(chime_channels::destination::DestinationConfig {
        api_url: None,
        ..allow
    });
}

/// An ntfy server: `{"id": "m<n>", …}` for each publish.
async fn ntfy() -> Receiver {
    Receiver::answering(|_, n| {
        Reply::status(200).json(json!({"id": format!("m{n}"), "event": "message"}).to_string())
    })
    .await
}

async fn add(app: &TestApp, user: &str, name: &str, url: &str) -> Value {
    app.user(user)
        .post(
            "/api/v1/destinations",
            &json!({"name": name, "url": url}),
            StatusCode::CREATED,
        )
        .await
}

/// The task's history once `channel` has a final delivery state.
async fn final_delivery(app: &TestApp, user: &str, task_id: &str, channel: &str) -> Value {
    let client = app.user(user);
    eventually(&format!("a final {channel} delivery"), || async {
        let history: Value = client
            .get(&format!("/api/v1/tasks/{task_id}/history"), StatusCode::OK)
            .await;
        history["history"][0]["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["channel"] == channel && d["outcome"] != "pending")
            .cloned()
    })
    .await
}

#[tokio::test]
async fn an_ntfy_reminder_carries_a_done_button_that_acknowledges_it() {
    let app = TestApp::builder().config(local).start().await;
    let server = ntfy().await;
    let port = server.base().rsplit(':').next().expect("port").to_owned();
    let phone = add(
        &app,
        "alice",
        "Phone",
        &format!("ntfy://tk_secretToken42@127.0.0.1:{port}/chime-it?priority=high"),
    )
    .await;
    assert_eq!(phone["channel"], "ntfy");
    assert!(!phone["url"]
        .as_str()
        .expect("url")
        .contains("secretToken42"));
    let task = app
        .create(
            "alice",
            &json!({"name": "Take vitamins", "startDate": in_ms(1500),
                    "notify": {"inApp": false, "destinations": [phone["id"]]}}),
        )
        .await;
    assert_eq!(task["notify"]["destinations"], json!([phone["id"]]));
    let id = task["id"].as_str().expect("id");

    let publish = server.nth(1).await;
    assert_eq!(publish.method, "POST");
    assert_eq!(publish.path(), "/");
    assert_eq!(
        publish.header("authorization"),
        Some("Bearer tk_secretToken42")
    );
    let body: Value = serde_json::from_slice(&publish.body).expect("json");
    assert_eq!(body["topic"], "chime-it");
    assert_eq!(body["title"], "Take vitamins");
    let done = body["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["label"] == "Done")
        .expect("a Done button")
        .clone();
    assert_eq!(done["action"], "http");
    assert_eq!(done["method"], "POST");
    let url = done["url"].as_str().expect("url");
    assert!(url.starts_with(&format!("{}/act/", app.base)), "{url}");
    let delivery = final_delivery(&app, "alice", id, "ntfy").await;
    assert_eq!(delivery["outcome"], "sent");
    let open: Value = app
        .user("alice")
        .get("/api/v1/occurrences/open", StatusCode::OK)
        .await;
    assert_eq!(open["occurrences"][0]["taskId"], id, "open before: {open}");

    // The phone presses Done: ntfy sends the button's request as it is.
    let pressed = app
        .http
        .post(url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("press");
    assert_eq!(pressed.status(), StatusCode::OK);
    let open: Value = app
        .user("alice")
        .get("/api/v1/occurrences/open", StatusCode::OK)
        .await;
    assert_eq!(open["occurrences"], json!([]), "acknowledged: {open}");
}

#[tokio::test]
async fn destinations_are_their_owners_alone_and_answered_masked() {
    let app = TestApp::builder().config(local).start().await;
    let server = ntfy().await;
    let url = format!(
        "{}/alerts",
        server.base().replace("http://", "ntfy://user:hunter2@")
    );
    let mine = add(&app, "alice", "Phone", &url).await;
    let id = mine["id"].as_str().expect("id");
    assert!(!mine.to_string().contains("hunter2"), "{mine}");

    let bob = app.user("bob");
    for path in [
        format!("/api/v1/destinations/{id}"),
        format!("/api/v1/destinations/{id}/test"),
    ] {
        let problem = if path.ends_with("/test") {
            bob.post_problem(&path, &json!({}), StatusCode::NOT_FOUND)
                .await
        } else {
            bob.get_problem(&path, StatusCode::NOT_FOUND).await
        };
        assert_eq!(problem["status"], 404);
    }
    bob.put_problem(
        &format!("/api/v1/destinations/{id}"),
        &json!({"name": "mine now"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    bob.delete_problem(&format!("/api/v1/destinations/{id}"), StatusCode::NOT_FOUND)
        .await;
    let listed: Value = bob.get("/api/v1/destinations", StatusCode::OK).await;
    assert_eq!(listed["destinations"], json!([]));
    // Naming another user's destination in a task is refused, at its index.
    let problem = bob
        .post_problem(
            "/api/v1/tasks",
            &json!({"name": "r", "startDate": in_ms(60_000),
                    "notify": {"destinations": [id]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem["errors"][0]["pointer"], "/notify/destinations/0");

    // Alice's is untouched, and her test notification reaches the server.
    let still: Value = app
        .user("alice")
        .get(&format!("/api/v1/destinations/{id}"), StatusCode::OK)
        .await;
    assert_eq!(still["name"], "Phone");
    let tested: Value = app
        .user("alice")
        .post(
            &format!("/api/v1/destinations/{id}/test"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(tested, json!({"sent": true, "detail": null}));
    let hit = server.nth(1).await;
    assert_eq!(
        hit.header("authorization"),
        Some("Basic dXNlcjpodW50ZXIy"),
        "user:hunter2"
    );
    // A bad URL is refused at `/url`, echoed masked.
    let refused = app
        .user("alice")
        .post_problem(
            "/api/v1/destinations",
            &json!({"name": "x", "url": "tgram://123456:SECRETBOT"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(refused["errors"][0]["pointer"], "/url");
    assert!(!refused.to_string().contains("SECRETBOT"), "{refused}");
}

/// A Telegram Bot API: `setWebhook`, `sendMessage` (message 7) and `answerCallbackQuery`
/// answered as Telegram does.
async fn telegram() -> Receiver {
    Receiver::answering(|request, _| {
        let result = if request.path().ends_with("/sendMessage") {
            json!({"message_id": 7, "chat": {"id": -100123}, "date": 0})
        } else {
            json!(true)
        };
        Reply::status(200).json(json!({"ok": true, "result": result}).to_string())
    })
    .await
}

#[tokio::test]
async fn a_telegram_button_press_snoozes_the_reminder_and_a_forged_one_changes_nothing() {
    let api = telegram().await;
    let api_url = api.base().to_owned();
    let app = TestApp::builder()
        .config(local)
        .config(move |c| {
            if let Some(t) = c.channels.telegram.as_mut() {
                t.api_url = Some(api_url);
            }
        })
        .start()
        .await;
    let bot = "123456789:AAbotTokenSecret";
    let chat = add(&app, "alice", "Chat", &format!("tgram://{bot}/-100123")).await;
    let id = chat["id"].as_str().expect("id");
    // The bot's webhook points at this server, with a secret token.
    let hook = api.nth(1).await;
    assert_eq!(hook.path(), format!("/bot{bot}/setWebhook"));
    let hook: Value = serde_json::from_slice(&hook.body).expect("json");
    assert_eq!(
        hook["url"],
        format!("{}/hooks/telegram/{id}", app.base),
        "{hook}"
    );
    let secret = hook["secret_token"].as_str().expect("secret").to_owned();

    let task = app
        .create(
            "alice",
            &json!({"name": "Call mum", "startDate": in_ms(1500),
                    "notify": {"destinations": [id]}}),
        )
        .await;
    let sent = api.nth(2).await;
    assert_eq!(sent.path(), format!("/bot{bot}/sendMessage"));
    let sent: Value = serde_json::from_slice(&sent.body).expect("json");
    assert_eq!(sent["chat_id"].to_string().trim_matches('"'), "-100123");
    let buttons: Vec<Value> = sent["reply_markup"]["inline_keyboard"]
        .as_array()
        .expect("a keyboard")
        .iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .collect();
    let snooze = buttons
        .iter()
        .find(|b| b["text"].as_str().is_some_and(|t| t.starts_with("Snooze")))
        .expect("a Snooze button")["callback_data"]
        .as_str()
        .expect("callback data")
        .to_owned();
    assert!(snooze.len() <= 64);

    let press = |secret: &str| {
        app.http
            .post(format!("{}/hooks/telegram/{id}", app.base))
            .header("x-telegram-bot-api-secret-token", secret)
            .json(&json!({"update_id": 1, "callback_query": {
                "id": "cb1", "from": {"id": 42, "is_bot": false, "first_name": "A"},
                "chat_instance": "1", "data": snooze,
                "message": {"message_id": 7, "date": 0, "chat": {"id": -100123, "type": "group"}}}}))
            .send()
    };
    let forged = press("not-the-secret").await.expect("press");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let snoozed: Value = app
        .user("alice")
        .get("/api/v1/occurrences/snoozed", StatusCode::OK)
        .await;
    assert_eq!(
        snoozed["occurrences"],
        json!([]),
        "a forged press snoozed: {snoozed}"
    );

    let genuine = press(&secret).await.expect("press");
    assert_eq!(genuine.status(), StatusCode::OK);
    let answered = api.nth(3).await;
    assert_eq!(answered.path(), format!("/bot{bot}/answerCallbackQuery"));
    let answered: Value = serde_json::from_slice(&answered.body).expect("json");
    assert_eq!(answered["callback_query_id"], "cb1");
    assert!(
        answered["text"]
            .as_str()
            .expect("text")
            .starts_with("Snoozed"),
        "{answered}"
    );
    let snoozed: Value = app
        .user("alice")
        .get("/api/v1/occurrences/snoozed", StatusCode::OK)
        .await;
    assert_eq!(snoozed["occurrences"][0]["taskId"], task["id"], "{snoozed}");
}

#[tokio::test]
async fn every_ntfy_reminder_arrives_once_across_a_server_outage() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    const REMINDERS: usize = 200;
    let outage = Duration::from_secs(
        std::env::var("CHIME_TEST_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let port = free_port();
    let published = Arc::new(AtomicUsize::new(0));
    let up = |published: Arc<AtomicUsize>| {
        Receiver::answering_at(port, move |_, n| {
            published.fetch_add(1, Ordering::SeqCst);
            Reply::status(200).json(json!({"id": format!("m{n}")}).to_string())
        })
    };
    let server = up(published.clone()).await;
    let app = TestApp::builder()
        .config(local)
        .config(|c| {
            c.delivery.retry_max_delay_seconds = 5.0;
            c.limits.write_burst = 2_000;
        })
        .start()
        .await;
    let phone = add(
        &app,
        "alice",
        "Phone",
        &format!("ntfy://127.0.0.1:{port}/outage"),
    )
    .await;
    // Due over a second, far enough ahead that a loaded machine creates them all first.
    let first_due = 20_000;
    let due_from = tokio::time::Instant::now() + Duration::from_millis(first_due as u64);
    for i in 0..REMINDERS {
        app.create(
            "alice",
            &json!({"name": format!("r{i}"), "startDate": in_ms(first_due + 5 * i as i64),
                    "notify": {"inApp": false, "destinations": [phone["id"]]}}),
        )
        .await;
    }
    // The server goes down before they fall due and stays down for the outage.
    server.stop();
    let ntfy =
        |outcome: &str| format!(r#"chime_deliveries_total{{channel="ntfy",outcome="{outcome}"}}"#);
    let counted = |series: String| {
        let app = &app;
        async move {
            let n = crate::helpers::sample(&app.metrics().await, &series).unwrap_or_default();
            (n >= REMINDERS as f64).then_some(())
        }
    };
    eventually_until(
        "every ntfy delivery to fail once after they fell due",
        due_from + PATIENCE,
        || counted(ntfy("retried")),
    )
    .await;
    assert_eq!(published.load(Ordering::SeqCst), 0);
    // The outage of a real server: it must last real time.
    tokio::time::sleep(outage).await;
    let back = up(published.clone()).await;
    eventually_until(
        "every ntfy reminder to be sent within two minutes of the outage",
        tokio::time::Instant::now() + Duration::from_secs(120),
        || counted(ntfy("sent")),
    )
    .await;
    let mut titles: Vec<String> = back
        .requests()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("json");
            body["title"].as_str().expect("title").to_owned()
        })
        .collect();
    assert_eq!(titles.len(), REMINDERS, "published {} times", titles.len());
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), REMINDERS, "some reminder was published twice");
}
