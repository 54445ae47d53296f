//! Wall-clock jumps on a real server, through an injected clock whose offset the test moves:
//! forward an hour, occurrences that fell due in the skipped hour fire at once, late, by
//! their missed policy, once each; back a minute, nothing fires again and nothing is lost.
//! The behaviour is documented in `chime_roles::execution`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::helpers::{eventually, sample, StatusCode, TestApp};

/// The system clock plus an offset (milliseconds) the test sets, as an NTP step would.
#[derive(Default)]
struct ManualClock {
    offset_ms: AtomicI64,
}

impl ManualClock {
    fn jump(&self, by: SignedDuration) {
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
fn rfc3339(at: Timestamp) -> String {
    Timestamp::from_second(at.as_second())
        .expect("in range")
        .to_string()
}

async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    let body: Value = app
        .user("alice")
        .get(&format!("/api/v1/tasks/{id}/history"), StatusCode::OK)
        .await;
    body["history"].as_array().expect("history").clone()
}

async fn counter(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    sample(&text, name).unwrap_or_else(|| panic!("no {name} in {text}"))
}

async fn create_at(app: &TestApp, name: &str, at: Timestamp, extra: Value) -> String {
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
async fn sentinel_fired(app: &TestApp, clock: &ManualClock) -> Vec<Value> {
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
