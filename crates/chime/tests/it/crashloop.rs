//! Crash loop: the real binary is SIGKILLed at random moments (seeded) while reminders fall
//! due, and restarted each time on the same data directory. At the end every occurrence has
//! exactly one in-app notification and exactly one webhook message id at a counting receiver.
//!
//! Webhook delivery is at-least-once with a stable `webhook-id` (Standard Webhooks): a kill
//! between the POST and recording it sent makes the restarted process send it again. So the
//! webhook assertion is "exactly one distinct `webhook-id` per occurrence" (what a receiver
//! deduplicating by id sees); the raw POST count is printed beside it, not asserted.
//!
//! All tasks are created before the killing starts, so every create is acknowledged and the
//! expected set is exactly the tasks created (cross-checked with `GET /api/v1/tasks`).
//!
//! Sized by environment variables; the defaults are the short run of the test command:
//! `CHIME_CRASHLOOP_REMINDERS` (2000), `CHIME_CRASHLOOP_KILLS` (20),
//! `CHIME_CRASHLOOP_WINDOW_SECONDS` (60: due instants spread over this window),
//! `CHIME_CRASHLOOP_LEAD_SECONDS` (5 + reminders/1000: time allowed for creating them),
//! `CHIME_CRASHLOOP_SEED` (kill moments and down times), `CHIME_CRASHLOOP_SETTLE_SECONDS` (150),
//! `CHIME_CRASHLOOP_BIN` (the `chime` to kill; default the one cargo built for the test).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::helpers::{
    free_port, param, webhook_hits, ChimeProcess, Occurrence, Receiver, Reply, Serve, TestClient,
};

/// Tasks per user: under the default cap of 10,000, raised anyway below.
const PER_USER: usize = 5_000;
/// Creates in flight at once.
const CREATE_CONCURRENCY: usize = 32;
/// How long after the last kill delivery may take: more than the notification role's
/// 120 s delivery lease, after which a delivery claimed by a killed process is claimed again.
const SETTLE_SECONDS: f64 = 150.0;

/// `chime serve` on `dir` at `port`, ready: quick retries, webhooks to loopback, no write
/// limits. `CHIME_CRASHLOOP_BIN` runs another build (a release one, for the full-size run).
async fn serve(dir: &Path, port: u16) -> ChimeProcess {
    let mut serve = Serve::new(dir);
    if let Some(binary) = std::env::var_os("CHIME_CRASHLOOP_BIN") {
        serve = serve.binary(binary);
    }
    serve
        .port(port)
        .env("CHIME_CHANNELS__WEBHOOK__ALLOW_PRIVATE", "true")
        .env("CHIME_DELIVERY__RETRY_BASE_SECONDS", "0.2")
        .env("CHIME_DELIVERY__RETRY_MAX_DELAY_SECONDS", "2")
        .env("CHIME_LIMITS__WRITES_PER_SECOND", "1000000")
        .env("CHIME_LIMITS__WRITE_BURST", "1000000")
        .env("CHIME_LIMITS__TASKS_PER_USER", "1000000")
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_occurrence_is_notified_once_and_has_one_webhook_id_across_random_sigkills() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let reminders: usize = param("CHIME_CRASHLOOP_REMINDERS", 2_000);
    let kills: usize = param("CHIME_CRASHLOOP_KILLS", 20);
    let window: f64 = param("CHIME_CRASHLOOP_WINDOW_SECONDS", 60.0);
    let lead: f64 = param(
        "CHIME_CRASHLOOP_LEAD_SECONDS",
        5.0 + reminders as f64 / 1000.0,
    );
    let seed: u64 = param("CHIME_CRASHLOOP_SEED", 9);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let dir = tempfile::tempdir().expect("tempdir");
    // One port for every restart: the tokens' issuer is the server's address.
    let port = free_port();
    let hook = Receiver::start(Reply::status(204)).await;
    let mut server = serve(dir.path(), port).await;

    let users: Vec<String> = (0..reminders.div_ceil(PER_USER).max(1))
        .map(|i| format!("crash{i}"))
        .collect();
    let clients: Vec<TestClient> = users.iter().map(|u| server.user(u)).collect();
    for client in &clients {
        client.set_webhook(&hook.url("/hook")).await;
    }

    // Due instants spread evenly over the window after the lead; every third task is daily,
    // whose first occurrence is in the window and whose second is a day later.
    let window_start = jiff::Timestamp::now() + jiff::SignedDuration::from_secs_f64(lead);
    let window_start_instant = Instant::now() + Duration::from_secs_f64(lead);
    let bodies: Vec<(usize, Value)> = (0..reminders)
        .map(|i| {
            let offset = window * i as f64 / reminders as f64;
            let due = window_start + jiff::SignedDuration::from_secs_f64(offset);
            let due = jiff::Timestamp::from_millisecond(due.as_millisecond()).expect("due");
            let repeats = if i % 3 == 0 {
                json!({"period": "day"})
            } else {
                Value::Null
            };
            let body = json!({
                "name": format!("crash loop {i}"),
                "startDate": due.to_string(),
                "repeats": repeats,
                "notify": {"inApp": true, "webhook": true},
            });
            (i % users.len(), body)
        })
        .collect();
    let created: Vec<Occurrence> = futures::stream::iter(bodies)
        .map(|(user, body)| {
            let client = clients[user].clone();
            async move {
                let task = client.create_task(&body).await;
                (
                    task["id"].as_str().expect("id").to_owned(),
                    task["startDate"].as_str().expect("startDate").to_owned(),
                )
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let created_in = started.elapsed();
    if Instant::now() > window_start_instant {
        eprintln!(
            "crashloop: creating took {created_in:?}, past the {lead} s lead; the first \
             reminders fell due before the killing started"
        );
    }

    // Kill moments: seeded, uniform over the window plus a few seconds after it.
    let span = window + 5.0;
    let mut moments: Vec<f64> = (0..kills).map(|_| rng.gen_range(0.0..span)).collect();
    moments.sort_by(f64::total_cmp);
    let mut killed = 0;
    for at in moments {
        let when = window_start_instant + Duration::from_secs_f64(at);
        // Kill moments and down times are real time: the process is real and so is its
        // timer, which the reminders' due instants are measured against.
        tokio::time::sleep_until(when.into()).await;
        server.kill().await;
        killed += 1;
        // A seeded down time, in real time like the kill moment.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        server = serve(dir.path(), port).await;
    }
    assert!(killed >= kills, "only {killed} kills of {kills}");

    // The expected set: what the API says exists, which must be what was acknowledged.
    let mut listed = HashSet::new();
    for client in &clients {
        for task in client.all_pages("/api/v1/tasks", "tasks").await {
            listed.insert(task["id"].as_str().expect("id").to_owned());
        }
    }
    let expected: HashSet<Occurrence> = created.iter().cloned().collect();
    assert_eq!(expected.len(), reminders);
    let acknowledged: HashSet<String> = created.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        listed, acknowledged,
        "GET /api/v1/tasks differs from the creates"
    );

    // Settle: poll until both channels are complete or the deadline passes.
    let settle: f64 = param("CHIME_CRASHLOOP_SETTLE_SECONDS", SETTLE_SECONDS);
    let deadline = Instant::now() + Duration::from_secs_f64(settle);
    let mut inbox: Vec<Occurrence>;
    loop {
        inbox = Vec::new();
        for client in &clients {
            for n in client
                .all_pages("/api/v1/notifications", "notifications")
                .await
            {
                inbox.push((
                    n["taskId"].as_str().expect("taskId").to_owned(),
                    n["dueAt"].as_str().expect("dueAt").to_owned(),
                ));
            }
        }
        let ids = webhook_hits(&hook)
            .into_iter()
            .map(|(id, ..)| id)
            .collect::<HashSet<_>>()
            .len();
        if (inbox.len() >= reminders && ids >= reminders) || Instant::now() > deadline {
            break;
        }
        // Backoff of a poll with a deadline: the inbox is read over HTTP, with no event.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.kill().await;

    let mut per_occurrence: HashMap<&Occurrence, usize> = HashMap::new();
    for o in &inbox {
        *per_occurrence.entry(o).or_default() += 1;
    }
    let notified_twice = per_occurrence.values().filter(|&&n| n > 1).count();
    let not_notified = expected
        .iter()
        .filter(|o| !per_occurrence.contains_key(o))
        .count();
    let unexpected_notifications = per_occurrence
        .keys()
        .filter(|o| !expected.contains(*o))
        .count();

    let hits = webhook_hits(&hook);
    let raw_posts = hits.len();
    let mut ids_per_occurrence: HashMap<&Occurrence, HashSet<&str>> = HashMap::new();
    let mut posts_per_id: HashMap<&str, usize> = HashMap::new();
    for (id, occurrence, _) in &hits {
        ids_per_occurrence
            .entry(occurrence)
            .or_default()
            .insert(id.as_str());
        *posts_per_id.entry(id.as_str()).or_default() += 1;
    }
    let distinct_ids = posts_per_id.len();
    let ids_posted_twice = posts_per_id.values().filter(|&&n| n > 1).count();
    let occurrences_with_two_ids = ids_per_occurrence.values().filter(|s| s.len() > 1).count();
    let not_delivered = expected
        .iter()
        .filter(|o| !ids_per_occurrence.contains_key(o))
        .count();
    let unexpected_deliveries = ids_per_occurrence
        .keys()
        .filter(|o| !expected.contains(*o))
        .count();

    eprintln!(
        "crashloop: seed {seed}, {reminders} reminders ({} users), {killed} SIGKILLs over a \
         {window} s window, created in {created_in:?}, total {:?}\n  in-app: {} notifications, \
         {not_notified} occurrences missing, {notified_twice} notified twice, \
         {unexpected_notifications} unexpected\n  webhook: {raw_posts} raw POSTs, {distinct_ids} \
         distinct webhook-ids, {ids_posted_twice} ids POSTed more than once, \
         {occurrences_with_two_ids} occurrences with two ids, {not_delivered} missing, \
         {unexpected_deliveries} unexpected",
        users.len(),
        started.elapsed(),
        inbox.len(),
    );
    assert_eq!(not_notified, 0, "in-app notifications lost");
    assert_eq!(notified_twice, 0, "in-app notifications duplicated");
    assert_eq!(
        unexpected_notifications, 0,
        "notifications for no occurrence"
    );
    assert_eq!(inbox.len(), reminders);
    assert_eq!(not_delivered, 0, "webhook deliveries lost");
    assert_eq!(
        occurrences_with_two_ids, 0,
        "an occurrence sent under two ids"
    );
    assert_eq!(unexpected_deliveries, 0, "webhooks for no occurrence");
    assert_eq!(distinct_ids, reminders);
}

/// Snoozes through a crash loop: reminders fire, each is snoozed to its own instant in a
/// window (every fifth is then marked done), and the real binary is SIGKILLed at seeded
/// moments while the snoozes end. Every snooze not cancelled returns exactly once (one inbox
/// item due at its snooze instant), and none that was marked done returns.
///
/// `CHIME_CRASHLOOP_SNOOZES` (300), `CHIME_CRASHLOOP_SNOOZE_KILLS` (10),
/// `CHIME_CRASHLOOP_SNOOZE_WINDOW_SECONDS` (30), `CHIME_CRASHLOOP_SEED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snooze_returns_once_and_none_after_done_across_random_sigkills() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let count: usize = param("CHIME_CRASHLOOP_SNOOZES", 300);
    let kills: usize = param("CHIME_CRASHLOOP_SNOOZE_KILLS", 10);
    let window: f64 = param("CHIME_CRASHLOOP_SNOOZE_WINDOW_SECONDS", 30.0);
    let seed: u64 = param("CHIME_CRASHLOOP_SEED", 9);
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut server = serve(dir.path(), port).await;
    let client = server.user("snoozer");

    // They all fire within a couple of seconds of being created.
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    let due = jiff::Timestamp::from_millisecond(due.as_millisecond()).expect("due");
    let ids: Vec<String> = futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            async move {
                let task = client
                    .create_task(&json!({
                        "name": format!("snooze loop {i}"),
                        "startDate": due.to_string(),
                        "notify": {"inApp": true},
                    }))
                    .await;
                task["id"].as_str().expect("id").to_owned()
            }
        })
        .buffered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let fired_by = Instant::now() + Duration::from_secs(60);
    loop {
        let open = client
            .all_pages("/api/v1/occurrences/open", "occurrences")
            .await;
        if open.len() == count {
            break;
        }
        assert!(
            Instant::now() < fired_by,
            "only {} of {count} fired",
            open.len()
        );
        // A poll with a deadline: firing is observed over HTTP, with no event to await.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Each snoozed to its own instant in the window; every fifth then marked done.
    let lead = 5.0;
    let window_start = jiff::Timestamp::now() + jiff::SignedDuration::from_secs_f64(lead);
    let window_start_instant = Instant::now() + Duration::from_secs_f64(lead);
    let plans: Vec<(String, String, bool)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let offset = window * i as f64 / count as f64;
            let until = window_start + jiff::SignedDuration::from_secs_f64(offset);
            let until = jiff::Timestamp::from_millisecond(until.as_millisecond()).expect("until");
            (id.clone(), until.to_string(), i % 5 == 0)
        })
        .collect();
    let due = due.to_string();
    futures::stream::iter(plans.clone())
        .map(|(id, until, done)| {
            let (client, due) = (client.clone(), due.clone());
            async move {
                let path = format!("/api/v1/tasks/{id}/occurrences/{due}");
                let snoozed: Value = client
                    .post(
                        &format!("{path}/snooze"),
                        &json!({"until": until}),
                        reqwest::StatusCode::OK,
                    )
                    .await;
                assert_eq!(snoozed["state"], "snoozed");
                if done {
                    let acked: Value = client
                        .post(
                            &format!("{path}/acknowledge"),
                            &json!({}),
                            reqwest::StatusCode::OK,
                        )
                        .await;
                    assert_eq!(acked["state"], "acknowledged");
                }
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    assert!(
        Instant::now() < window_start_instant,
        "snoozing took past the {lead} s lead"
    );

    let span = window + 3.0;
    let mut moments: Vec<f64> = (0..kills).map(|_| rng.gen_range(0.0..span)).collect();
    moments.sort_by(f64::total_cmp);
    for at in moments {
        tokio::time::sleep_until((window_start_instant + Duration::from_secs_f64(at)).into()).await;
        server.kill().await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        server = serve(dir.path(), port).await;
    }

    let returning: HashSet<Occurrence> = plans
        .iter()
        .filter(|(_, _, done)| !done)
        .map(|(id, until, _)| (id.clone(), until.clone()))
        .collect();
    let cancelled: HashSet<Occurrence> = plans
        .iter()
        .filter(|(_, _, done)| *done)
        .map(|(id, until, _)| (id.clone(), until.clone()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut items: Vec<Occurrence>;
    loop {
        items = client
            .all_pages("/api/v1/notifications", "notifications")
            .await
            .iter()
            .map(|n| {
                (
                    n["taskId"].as_str().expect("taskId").to_owned(),
                    n["dueAt"].as_str().expect("dueAt").to_owned(),
                )
            })
            .collect();
        if items.len() >= count + returning.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A moment more, for a return that would come twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let items: Vec<Occurrence> = client
        .all_pages("/api/v1/notifications", "notifications")
        .await
        .iter()
        .map(|n| {
            (
                n["taskId"].as_str().expect("taskId").to_owned(),
                n["dueAt"].as_str().expect("dueAt").to_owned(),
            )
        })
        .collect();
    server.kill().await;

    let mut per: HashMap<&Occurrence, usize> = HashMap::new();
    for o in &items {
        *per.entry(o).or_default() += 1;
    }
    let missing = returning.iter().filter(|o| !per.contains_key(o)).count();
    let twice = per.values().filter(|&&n| n > 1).count();
    let after_done = cancelled.iter().filter(|o| per.contains_key(o)).count();
    eprintln!(
        "snooze crash loop: seed {seed}, {count} snoozed ({} then done), {kills} SIGKILLs over \
         {window} s: {} inbox items, {missing} returns missing, {twice} twice, {after_done} \
         after done",
        cancelled.len(),
        items.len(),
    );
    assert_eq!(missing, 0, "snoozes that never returned");
    assert_eq!(twice, 0, "an occurrence notified twice");
    assert_eq!(after_done, 0, "a snooze returned after it was marked done");
    assert_eq!(items.len(), count + returning.len());
}

/// Nagging and escalating through a crash loop: reminders that nag once a minute (one
/// repeat) and escalate to a webhook a minute after they fire fire, every fourth is then
/// marked done, and the real binary is SIGKILLed at seeded moments around the minute when
/// the repeats and the steps fall due. Every reminder not done is repeated exactly once and
/// escalated exactly once (one distinct `webhook-id`: delivery is at-least-once with a stable
/// id); none that was done is repeated or escalated.
///
/// `CHIME_CRASHLOOP_NAGS` (200), `CHIME_CRASHLOOP_NAG_KILLS` (8), `CHIME_CRASHLOOP_SEED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_nag_and_escalation_fires_once_and_never_after_done_across_random_sigkills() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let count: usize = param("CHIME_CRASHLOOP_NAGS", 200);
    let kills: usize = param("CHIME_CRASHLOOP_NAG_KILLS", 8);
    let seed: u64 = param("CHIME_CRASHLOOP_SEED", 9);
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut server = serve(dir.path(), port).await;
    let client = server.user("nagged");
    let hook = Receiver::start(Reply::status(204)).await;
    client.set_webhook(&hook.url("/hook")).await;
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    let due = jiff::Timestamp::from_millisecond(due.as_millisecond()).expect("due");
    let ids: Vec<String> = futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            async move {
                let task = client
                    .create_task(&json!({
                        "name": format!("nag loop {i}"),
                        "startDate": due.to_string(),
                        "notify": {"inApp": true, "webhook": true},
                        "nag": {"everyMinutes": 1, "times": 1},
                        "escalate": [{"afterMinutes": 1, "channel": "webhook"}],
                    }))
                    .await;
                task["id"].as_str().expect("id").to_owned()
            }
        })
        .buffered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let fired_by = Instant::now() + Duration::from_secs(40);
    loop {
        let open = client
            .all_pages("/api/v1/occurrences/open", "occurrences")
            .await;
        if open.len() == count {
            break;
        }
        assert!(
            Instant::now() < fired_by,
            "only {} of {count} fired",
            open.len()
        );
        // A poll with a deadline: firing is observed over HTTP, with no event to await.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fired_at = Instant::now();
    let due = due.to_string();
    let done: HashSet<String> = ids.iter().step_by(4).cloned().collect();
    futures::stream::iter(done.iter().cloned())
        .map(|id| {
            let (client, due) = (client.clone(), due.clone());
            async move {
                let acked: Value = client
                    .post(
                        &format!("/api/v1/tasks/{id}/occurrences/{due}/acknowledge"),
                        &json!({}),
                        reqwest::StatusCode::OK,
                    )
                    .await;
                assert_eq!(acked["state"], "acknowledged");
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;

    // Kills from 50 to 70 s after they fired: the repeats fall due a minute after.
    let mut moments: Vec<f64> = (0..kills).map(|_| rng.gen_range(50.0..70.0)).collect();
    moments.sort_by(f64::total_cmp);
    for at in moments {
        tokio::time::sleep_until((fired_at + Duration::from_secs_f64(at)).into()).await;
        server.kill().await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        server = serve(dir.path(), port).await;
    }

    let expected = count + (count - done.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    let items = |client: TestClient| async move {
        client
            .all_pages("/api/v1/notifications", "notifications")
            .await
            .iter()
            .map(|n| n["taskId"].as_str().expect("taskId").to_owned())
            .collect::<Vec<String>>()
    };
    let escalated = || {
        let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
        for (id, (task, _), _) in webhook_hits(&hook) {
            ids.entry(task).or_default().insert(id);
        }
        ids
    };
    loop {
        if (items(client.clone()).await.len() >= expected
            && escalated().len() >= count - done.len())
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A moment more, for a repeat that would come twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = items(client.clone()).await;
    let escalated = escalated();
    server.kill().await;

    let mut per: HashMap<&str, usize> = HashMap::new();
    for id in &seen {
        *per.entry(id.as_str()).or_default() += 1;
    }
    let wrong: Vec<(&String, usize, usize)> = ids
        .iter()
        .map(|id| {
            let want = if done.contains(id) { 1 } else { 2 };
            (id, want, per.get(id.as_str()).copied().unwrap_or(0))
        })
        .filter(|(_, want, got)| want != got)
        .collect();
    let wrong_steps: Vec<(&String, usize, usize)> = ids
        .iter()
        .map(|id| {
            let want = usize::from(!done.contains(id));
            (id, want, escalated.get(id).map_or(0, HashSet::len))
        })
        .filter(|(_, want, got)| want != got)
        .collect();
    eprintln!(
        "nag crash loop: seed {seed}, {count} nagging and escalating ({} done before the \
         repeat), {kills} SIGKILLs: {} inbox items, {} reminders with the wrong count, {} \
         escalated, {} with the wrong number of steps",
        done.len(),
        seen.len(),
        wrong.len(),
        escalated.len(),
        wrong_steps.len(),
    );
    assert!(
        wrong_steps.is_empty(),
        "(task, expected steps, seen): {wrong_steps:?}"
    );
    assert!(wrong.is_empty(), "(task, expected, seen): {wrong:?}");
    assert_eq!(seen.len(), expected);
}
