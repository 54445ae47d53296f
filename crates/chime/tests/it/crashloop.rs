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
//! `CHIME_CRASHLOOP_SEED` (kill moments and down times), `CHIME_CRASHLOOP_SETTLE_SECONDS` (150).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::helpers::{all_pages, binary_token, eventually, free_port, param, post_task};

/// Tasks per user: under the default cap of 10,000, raised anyway below.
const PER_USER: usize = 5_000;
/// Creates in flight at once.
const CREATE_CONCURRENCY: usize = 32;
/// How long after the last kill delivery may take: more than the notification role's
/// 120 s delivery lease, after which a delivery claimed by a killed process is claimed again.
const SETTLE_SECONDS: f64 = 150.0;

/// One occurrence: task id and due instant as the API writes it.
type Occurrence = (String, String);

/// Every POST the receiver saw: `webhook-id` and the occurrence its payload names.
#[derive(Clone, Default)]
struct Hits(Arc<Mutex<Vec<(String, Occurrence)>>>);

async fn counting_receiver(hits: Hits) -> String {
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(hits): State<Hits>, headers: HeaderMap, body: axum::body::Bytes| async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let payload: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let occurrence = (
                        payload["data"]["taskId"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        payload["data"]["dueAt"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    hits.0.lock().expect("lock").push((id, occurrence));
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A server process, killed (and reaped) on drop: a failing assertion must not leave it
/// running (and loading the machine) for the rest of the test run.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, port: u16) -> Server {
    Command::new(env!("CARGO_BIN_EXE_chime"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("CHIME_CHANNELS__WEBHOOK__ALLOW_PRIVATE", "true")
        .env("CHIME_DELIVERY__RETRY_BASE_SECONDS", "0.2")
        .env("CHIME_DELIVERY__RETRY_MAX_DELAY_SECONDS", "2")
        .env("CHIME_LIMITS__WRITES_PER_SECOND", "1000000")
        .env("CHIME_LIMITS__WRITE_BURST", "1000000")
        .env("CHIME_LIMITS__TASKS_PER_USER", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Server)
        .expect("spawn chime")
}

async fn ready(client: &reqwest::Client, base: &str) {
    eventually("the server to be ready", || {
        let (client, url) = (client.clone(), format!("{base}/readyz"));
        async move {
            let r = client.get(url).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
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
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let hits = Hits::default();
    let hook = counting_receiver(hits.clone()).await;
    let mut child = spawn(dir.path(), port);
    ready(&client, &base).await;

    let users: Vec<String> = (0..reminders.div_ceil(PER_USER).max(1))
        .map(|i| format!("crash{i}"))
        .collect();
    let tokens: Vec<String> = users
        .iter()
        .map(|u| binary_token(dir.path(), Some(port), u))
        .collect();
    for token in &tokens {
        let r = client
            .put(format!("{base}/api/v1/webhook"))
            .bearer_auth(token)
            .json(&json!({ "url": hook }))
            .send()
            .await
            .expect("put webhook");
        assert_eq!(r.status(), 200);
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
            let (client, base, token) = (client.clone(), base.clone(), tokens[user].clone());
            async move {
                let task = post_task(&client, &base, &token, &body).await;
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
        tokio::time::sleep_until(when.into()).await;
        child.0.kill().expect("SIGKILL");
        child.0.wait().expect("reap");
        killed += 1;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        child = spawn(dir.path(), port);
        ready(&client, &base).await;
    }
    assert!(killed >= kills, "only {killed} kills of {kills}");

    // The expected set: what the API says exists, which must be what was acknowledged.
    let mut listed = HashSet::new();
    for token in &tokens {
        for task in all_pages(&client, &format!("{base}/api/v1/tasks"), token, "tasks").await {
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
        for token in &tokens {
            let url = format!("{base}/api/v1/notifications");
            for n in all_pages(&client, &url, token, "notifications").await {
                inbox.push((
                    n["taskId"].as_str().expect("taskId").to_owned(),
                    n["dueAt"].as_str().expect("dueAt").to_owned(),
                ));
            }
        }
        let ids = hits
            .0
            .lock()
            .expect("lock")
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<HashSet<_>>()
            .len();
        if (inbox.len() >= reminders && ids >= reminders) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    child.0.kill().expect("kill");
    child.0.wait().expect("reap");

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

    let hits = hits.0.lock().expect("lock").clone();
    let raw_posts = hits.len();
    let mut ids_per_occurrence: HashMap<&Occurrence, HashSet<&str>> = HashMap::new();
    let mut posts_per_id: HashMap<&str, usize> = HashMap::new();
    for (id, occurrence) in &hits {
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
