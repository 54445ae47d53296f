//! Wall-clock jumps on a real server, through an injected clock whose offset the test moves:
//! forward an hour, occurrences that fell due in the skipped hour fire at once, late, by
//! their missed policy, once each; back a minute, nothing fires again and nothing is lost.
//! The behaviour is documented in `chime_roles::execution`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::helpers::{
    eventually, sample, sms_reply, subscribe_push, Receiver, Reply, StatusCode, TestApp,
};

/// The system clock plus an offset (milliseconds) the test sets, as an NTP step would.
#[derive(Default)]
pub(crate) struct ManualClock {
    offset_ms: AtomicI64,
}

impl ManualClock {
    pub(crate) fn jump(&self, by: SignedDuration) {
        let ms = i64::try_from(by.as_millis()).expect("jump in range");
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl chime_roles::Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::now() + SignedDuration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// `at`, to the second, in RFC 3339.
pub(crate) fn rfc3339(at: Timestamp) -> String {
    Timestamp::from_second(at.as_second())
        .expect("in range")
        .to_string()
}

pub(crate) async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    let body: Value = app
        .user("alice")
        .get(&format!("/api/v1/tasks/{id}/history"), StatusCode::OK)
        .await;
    body["history"].as_array().expect("history").clone()
}

pub(crate) async fn counter(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    sample(&text, name).unwrap_or_else(|| panic!("no {name} in {text}"))
}

pub(crate) async fn create_at(app: &TestApp, name: &str, at: Timestamp, extra: Value) -> String {
    let mut body = json!({"name": name, "startDate": rfc3339(at)});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    app.create("alice", &body).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn a_clock_jump_forward_fires_what_fell_due_once_late_and_a_jump_back_fires_nothing_again() {
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::builder().clock(clock.clone()).start().await;
    let now = chime_roles::Clock::now(&*clock);
    let minutes = |m: i64| now + SignedDuration::from_mins(m);

    let once = create_at(&app, "once", minutes(10), json!({})).await;
    let daily = create_at(
        &app,
        "daily",
        minutes(30),
        json!({"repeats": {"period": "day"}}),
    )
    .await;
    let skipper = create_at(
        &app,
        "skip when 10 min late",
        minutes(20),
        json!({"repeats": {"period": "day"}, "missed": {"policy": "skip", "limitSeconds": 600}}),
    )
    .await;
    let later = create_at(&app, "in two hours", minutes(120), json!({})).await;

    // Forward an hour: three occurrences are now 30 to 50 minutes overdue. The next tick (1 s)
    // wakes the timer, which was asleep until the first of them by the old reading.
    clock.jump(SignedDuration::from_hours(1));
    let mut fired = Vec::new();
    for id in [&once, &daily, &skipper] {
        let entries = eventually("the overdue occurrence to be recorded", || async {
            let h = history(&app, id).await;
            (!h.is_empty()).then_some(h)
        })
        .await;
        fired.push(entries);
    }
    for entries in &fired {
        assert_eq!(entries.len(), 1, "fired once: {entries:?}");
        assert_eq!(entries[0]["late"], true, "{entries:?}");
        assert_eq!(entries[0]["coalesced"], 0, "{entries:?}");
    }
    assert_eq!(fired[0][0]["skipped"], false);
    assert_eq!(fired[1][0]["skipped"], false);
    // 40 minutes late, past its 10-minute limit: recorded as skipped, nobody notified.
    assert_eq!(fired[2][0]["skipped"], true);
    assert!(history(&app, &later).await.is_empty());
    assert_eq!(counter(&app, "chime_executions_total").await, 2.0);

    // Back a minute: the rows already moved past what fired, so nothing is due again; the
    // timer just sleeps a minute longer. A sentinel due two seconds after the jump-back, on
    // the new reading, is the later event that proves the timer ran through the window.
    clock.jump(SignedDuration::from_mins(-1));
    let entries = sentinel_fired(&app, &clock).await;
    assert_eq!(entries[0]["late"], false, "{entries:?}");
    for id in [&once, &daily, &skipper] {
        assert_eq!(history(&app, id).await.len(), 1, "{id} fired again");
    }
    assert!(history(&app, &later).await.is_empty());
    assert_eq!(counter(&app, "chime_executions_total").await, 3.0);
    // Nothing was lost either: the daily task and the later one are still scheduled.
    for (id, due) in [(&daily, minutes(30 + 24 * 60)), (&later, minutes(120))] {
        let task: Value = app
            .user("alice")
            .get(&format!("/api/v1/tasks/{id}"), StatusCode::OK)
            .await;
        let next: Timestamp = task["nextExecutionDate"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no next execution: {task}"));
        assert_eq!(next.as_second(), due.as_second(), "{task}");
    }

    app.running.stop().await.expect("stop");
}

/// A task due two seconds from the clock's reading, and its first history entry once it has
/// fired: the later event that proves the timer ran through whatever came before.
pub(crate) async fn sentinel_fired(app: &TestApp, clock: &ManualClock) -> Vec<Value> {
    let sentinel = create_at(
        app,
        "sentinel",
        chime_roles::Clock::now(clock) + SignedDuration::from_secs(2),
        json!({}),
    )
    .await;
    eventually("the sentinel to fire", || async {
        let h = history(app, &sentinel).await;
        (!h.is_empty()).then_some(h)
    })
    .await
}

async fn inbox_of(app: &TestApp, id: &str) -> Vec<Value> {
    let page: Value = app
        .user("alice")
        .get("/api/v1/notifications", StatusCode::OK)
        .await;
    page["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|n| n["taskId"] == id)
        .cloned()
        .collect()
}

/// Nag until done, on a server whose clock the test moves: a task that nags every minute at
/// most twice is sent again a minute after it fired (a new occurrence, the first one
/// `repeated`), and acknowledging the repeat stops the repeats; another task's second repeat
/// shows the `times` bound. Counted in `chime_nag_repeats_total`.
#[tokio::test]
async fn a_nagging_reminder_repeats_every_minute_until_done_and_at_most_times() {
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::builder().clock(clock.clone()).start().await;
    let soon = chime_roles::Clock::now(&*clock) + SignedDuration::from_secs(2);
    let nag = json!({"nag": {"everyMinutes": 1, "times": 2}});
    let stopped = create_at(&app, "stopped by done", soon, nag.clone()).await;
    let bounded = create_at(&app, "bounded by times", soon, nag).await;
    for id in [&stopped, &bounded] {
        eventually("the first notification", || async {
            (inbox_of(&app, id).await.len() == 1).then_some(())
        })
        .await;
    }

    // A minute on: each is sent again.
    clock.jump(SignedDuration::from_secs(61));
    for id in [&stopped, &bounded] {
        eventually("the first repeat", || async {
            (inbox_of(&app, id).await.len() == 2).then_some(())
        })
        .await;
    }
    let alice = app.user("alice");
    let items = inbox_of(&app, &stopped).await;
    let (first, repeat) = (
        items[1]["dueAt"].as_str().expect("dueAt").to_owned(),
        items[0]["dueAt"].as_str().expect("dueAt").to_owned(),
    );
    let original: Value = alice
        .get(
            &format!("/api/v1/tasks/{stopped}/occurrences/{first}"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(original["state"], "repeated", "{original}");
    assert_eq!(original["snoozedUntil"], repeat.as_str());
    let done: Value = alice
        .post(
            &format!("/api/v1/tasks/{stopped}/occurrences/{repeat}/acknowledge"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(done["state"], "acknowledged");

    // Another minute: the bounded one repeats a second (and last) time; the done one does not.
    clock.jump(SignedDuration::from_secs(61));
    eventually("the second repeat", || async {
        (inbox_of(&app, &bounded).await.len() == 3).then_some(())
    })
    .await;
    // And another: nothing more for either.
    clock.jump(SignedDuration::from_secs(61));
    sentinel_fired(&app, &clock).await;
    assert_eq!(
        inbox_of(&app, &stopped).await.len(),
        2,
        "repeated after done"
    );
    assert_eq!(
        inbox_of(&app, &bounded).await.len(),
        3,
        "more than `times` repeats"
    );
    assert_eq!(counter(&app, "chime_nag_repeats_total").await, 3.0);
    assert_eq!(counter(&app, "chime_snooze_returns_total").await, 0.0);
}

/// `(channel, outcome)` of each delivery of the task's latest occurrence, sorted.
async fn deliveries(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let history = history(app, id).await;
    let mut found: Vec<(String, String)> = history
        .first()
        .and_then(|h| h["deliveries"].as_array())
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["channel"].as_str().unwrap_or_default().to_owned(),
                d["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn sent(channels: &[&str]) -> Vec<(String, String)> {
    channels
        .iter()
        .map(|c| ((*c).to_owned(), "sent".to_owned()))
        .collect()
}

/// Escalation on a server whose clock the test moves, through a real SMTP server (aiosmtpd), a
/// Twilio-shaped SMS provider and a push service: three tasks notify by push at once, by SMS
/// if not done a minute after, by email two minutes after. One acknowledged from its push
/// notification gets no SMS and no email; one acknowledged by replying DONE to its SMS gets
/// no email; the one nobody acknowledges gets all three, once each, and nothing more. The
/// two done have their shown push taken back.
#[tokio::test]
async fn an_escalation_chain_goes_push_then_sms_then_email_and_stops_at_done_from_any_channel() {
    let mail = tempfile::tempdir().expect("tempdir");
    let smtp = chime_testenv::smtp::SmtpServer::start(
        mail.path(),
        &["--port", &crate::helpers::free_port().to_string()],
    )
    .await;
    let sms = Receiver::answering(|_, n| {
        Reply::status(201)
            .json(json!({"sid": format!("SM{n:032}"), "status": "queued"}).to_string())
    })
    .await;
    let push =
        Receiver::answering(|_, n| Reply::status(201).header("location", format!("/m/{n}"))).await;
    let port = crate::helpers::free_port();
    let inbound = format!("http://127.0.0.1:{port}/sms/inbound");
    let (smtp_url, sms_base, inbound_url) = (smtp.url(), sms.base().to_owned(), inbound.clone());
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::builder()
        .clock(clock.clone())
        .config(move |c| {
            c.listen = format!("127.0.0.1:{port}").parse().expect("addr");
            c.channels.email = Some(chime_channels::email::EmailConfig::new(
                smtp_url,
                "Chime <reminders@example.com>",
            ));
            c.channels.sms = Some(chime_channels::sms::SmsConfig {
                account_sid: "ACtest".into(),
                auth_token: "secret-token".into(),
                from: "+14075550000".into(),
                base_url: sms_base,
                timeout_seconds: 5,
                inbound_url: Some(inbound_url),
            });
            c.channels.push = Some(
                serde_json::from_value(json!({"subject": "mailto:ops@example.com"}))
                    .expect("config"),
            );
            // Local targets (the plain-http push service here).
            c.channels.webhook = Some(chime_channels::webhook::WebhookConfig {
                allow_private: true,
                timeout_seconds: 30,
            });
        })
        .start()
        .await;
    let alice = app.user("alice");
    subscribe_push(&alice, &push.url("/push/phone")).await;
    let soon = chime_roles::Clock::now(&*clock) + SignedDuration::from_secs(2);
    let chain = |phone: &str| {
        json!({
            "notify": {"push": true, "sms": phone, "email": "alice@example.com"},
            "escalate": [
                {"afterMinutes": 1, "channel": "sms"},
                {"afterMinutes": 2, "channel": "email"}
            ]
        })
    };
    let ignored = create_at(&app, "ignored", soon, chain("+14075551212")).await;
    let on_push = create_at(&app, "done on push", soon, chain("+14075551213")).await;
    let on_sms = create_at(&app, "done by SMS", soon, chain("+14075551214")).await;

    // Fired: in-app and push at once; SMS and email are held back for the steps.
    for id in [&ignored, &on_push, &on_sms] {
        eventually("the first send", || async {
            (deliveries(&app, id).await == sent(&["inApp", "push"])).then_some(())
        })
        .await;
    }
    let due = rfc3339(soon);
    let occurrence = |id: &str| format!("/api/v1/tasks/{id}/occurrences/{due}");
    let state: Value = alice.get(&occurrence(&ignored), StatusCode::OK).await;
    assert!(state.get("escalated").is_none(), "{state}");
    let instant =
        |field: &str| -> Timestamp { state[field].as_str().expect(field).parse().expect(field) };
    assert_eq!(
        instant("nextEscalationAt"),
        instant("firedAt") + SignedDuration::from_secs(60),
        "the first step is a minute after it fired: {state}"
    );
    // Done from the push notification's action (the API the service worker calls).
    alice
        .post::<Value>(
            &format!("{}/acknowledge?via=push", occurrence(&on_push)),
            &json!({}),
            StatusCode::OK,
        )
        .await;

    // A minute on: the SMS step, for the two not done.
    clock.jump(SignedDuration::from_secs(61));
    for id in [&ignored, &on_sms] {
        eventually("the SMS step", || async {
            (deliveries(&app, id).await == sent(&["inApp", "push", "sms"])).then_some(())
        })
        .await;
    }
    // Done by replying to that SMS, as Twilio posts a reply.
    let (status, twiml) = sms_reply(&inbound, Some("secret-token"), "+14075551214", "DONE").await;
    assert_eq!(status, 200, "{twiml}");
    let done: Value = alice.get(&occurrence(&on_sms), StatusCode::OK).await;
    assert_eq!(
        (&done["state"], &done["acknowledgedOn"], &done["escalated"]),
        (&json!("acknowledged"), &json!("sms"), &json!(1)),
        "{done}"
    );
    assert!(done.get("nextEscalationAt").is_none(), "{done}");

    // Another minute: the email step, for the one nobody acknowledged only.
    clock.jump(SignedDuration::from_secs(61));
    eventually("the email step", || async {
        (deliveries(&app, &ignored).await == sent(&["email", "inApp", "push", "sms"])).then_some(())
    })
    .await;
    let messages = eventually("the email", || async {
        let saved = smtp.saved();
        (!saved.is_empty()).then_some(saved)
    })
    .await;
    assert!(String::from_utf8_lossy(&messages[0].raw).contains(&ignored));
    let state: Value = alice.get(&occurrence(&ignored), StatusCode::OK).await;
    assert_eq!(state["escalated"], 2, "{state}");
    assert!(state.get("nextEscalationAt").is_none(), "{state}");

    // Much later: nothing more for any of them.
    clock.jump(SignedDuration::from_secs(600));
    sentinel_fired(&app, &clock).await;
    assert_eq!(deliveries(&app, &on_push).await, sent(&["inApp", "push"]));
    assert_eq!(
        deliveries(&app, &on_sms).await,
        sent(&["inApp", "push", "sms"])
    );
    assert_eq!(smtp.saved().len(), 1, "one email in all");
    assert_eq!(
        sms.requests().len(),
        2,
        "one SMS each for the two not done in a minute"
    );
    // One reminder each, and for the two done, the message that takes it back (same topic).
    let pushes = eventually("the withdrawals", || async {
        let pushes = push.requests();
        (pushes.len() >= 5).then_some(pushes)
    })
    .await;
    assert_eq!(pushes.len(), 5, "one push each and two withdrawals");
    let topics: std::collections::HashSet<&str> =
        pushes.iter().filter_map(|r| r.header("topic")).collect();
    assert_eq!(topics.len(), 3, "a withdrawal carries its reminder's topic");
    let metrics = app.metrics().await;
    for (series, value) in [
        ("chime_escalations_total{channel=\"sms\"}", 2.0),
        ("chime_escalations_total{channel=\"email\"}", 1.0),
    ] {
        assert_eq!(sample(&metrics, series), Some(value), "{series}");
    }
}
