//! "What the API answered is what happens", checked from outside as a user's client would:
//! reminders deleted or moved a few milliseconds before they fall due, while other users
//! write and fire at the same instants, never fire once their `DELETE` or `PUT` has returned
//! success before the due instant. The change reaches the schedule through the outbox and the
//! bus, so without the claim's fence (see `ScheduleStore::fire_due`) some of them fire in
//! that gap.
//!
//! Run on the embedded default and on the PostgreSQL store (the distributed mode's claim);
//! the cluster test runs the same race with the roles apart on PostgreSQL and Kafka.
//! Sized by `CHIME_FENCE_REMINDERS` (default 160).

use std::collections::HashSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::helpers::{param, spawn_app_with, StatusCode, TestClient};

/// Between two racers' due instants.
const SPACING_MS: i64 = 12;
/// Racers change their reminder 0..spread ms before it is due, the spread six times what a
/// change takes on this server under the load (the third quartile of a few probes: a few ms
/// embedded in a debug build, tens on PostgreSQL), at least this: so that most changes
/// answer before their due instant and some commit just before it, while their event is
/// still on its way to the schedule.
const MIN_SPREAD_MS: i64 = 50;

/// One reminder changed just before it fell due.
pub struct Racer {
    pub id: String,
    pub due: Timestamp,
    /// When the change was sent.
    pub sent: Timestamp,
    /// When the change's success came back, if it succeeded.
    pub answered: Option<Timestamp>,
}

impl Racer {
    /// The change succeeded before the reminder was due: it must not fire.
    pub fn answered_before_due(&self) -> bool {
        self.answered.is_some_and(|at| at < self.due)
    }
}

/// The outcome of a race: who changed in time, and which of those still fired.
pub struct Outcome {
    pub racers: Vec<Racer>,
    pub fired: HashSet<(String, String)>,
}

impl Outcome {
    /// Asserts the guarantee, and that the race put it to the test.
    pub fn assert_none_fired_after_a_timely_success(&self, mode: &str) {
        let timely: Vec<&Racer> = self
            .racers
            .iter()
            .filter(|r| r.answered_before_due())
            .collect();
        let broken: Vec<String> = timely
            .iter()
            .filter(|r| self.fired.contains(&(r.id.clone(), r.due.to_string())))
            .map(|r| format!("{} due {}, answered {:?}", r.id, r.due, r.answered))
            .collect();
        let late_fired = self
            .racers
            .iter()
            .filter(|r| !r.answered_before_due())
            .filter(|r| self.fired.contains(&(r.id.clone(), r.due.to_string())))
            .count();
        let mut took: Vec<i64> = self
            .racers
            .iter()
            .filter_map(|r| {
                r.answered
                    .map(|a| r.sent.duration_until(a).as_millis() as i64)
            })
            .collect();
        took.sort_unstable();
        let median = took.get(took.len() / 2).copied().unwrap_or_default();
        eprintln!(
            "fence ({mode}): {} reminders changed (median {median} ms per change), {} answered \
             before due, {} of those fired; {late_fired} answered after due fired (allowed)",
            self.racers.len(),
            timely.len(),
            broken.len()
        );
        assert!(
            broken.is_empty(),
            "{mode}: fired although the change returned success before it was due:\n{}",
            broken.join("\n")
        );
        assert!(
            timely.len() * 4 >= self.racers.len(),
            "{mode}: only {} of {} changes came back before their due instant, too few for \
             the race to test anything (the machine is very slow?)",
            timely.len(),
            self.racers.len()
        );
    }
}

/// Creates a task; its id.
async fn create(client: &TestClient, body: Value) -> String {
    let task = client.create_task(&body).await;
    task["id"].as_str().expect("id").to_owned()
}

/// A one-time in-app reminder due at `due`.
fn reminder(name: &str, due: Timestamp) -> Value {
    json!({"name": name, "startDate": due.to_string(), "notify": {"inApp": true}})
}

/// Runs the race on the server (or gateway) `server`, whose local issuer's tokens `token`
/// makes: `n` reminders of one user, due `SPACING_MS` apart, each deleted
/// (even ones) or moved an hour later (odd ones) 0..spread ms before it is due, while
/// four other users create reminders (40 a second in all); then waits for a sentinel
/// reminder due after the window, and returns every occurrence the user was notified of.
pub async fn race(server: &TestClient, token: impl Fn(&str) -> String, n: usize) -> Outcome {
    let racer = server.bearer(token("racer"));
    let mut stream = racer.sse("/api/v1/notifications/stream").await;
    // Time to create them all before the first falls due, even on a busy debug build.
    let start = Timestamp::now() + SignedDuration::from_millis(4_000 + 20 * n as i64);
    let start = Timestamp::from_millisecond(start.as_millisecond()).expect("in range");
    let dues: Vec<Timestamp> = (0..n)
        .map(|i| start + SignedDuration::from_millis(SPACING_MS * i as i64))
        .collect();
    let window_end = dues.last().copied().unwrap_or(start);
    let mut ids = Vec::with_capacity(n);
    for chunk in dues.chunks(16) {
        let created = futures::future::join_all(
            chunk
                .iter()
                .map(|due| create(&racer, reminder("Race", *due))),
        )
        .await;
        ids.extend(created);
    }
    assert!(
        Timestamp::now() < start,
        "creating {n} reminders took past the first due instant"
    );
    let sentinel_due = window_end + SignedDuration::from_millis(1_000);
    let sentinel = create(&racer, reminder("Sentinel", sentinel_due)).await;

    // Other users write through the whole window.
    let stop = tokio_util::sync::CancellationToken::new();
    let load_writers: i64 = param("CHIME_FENCE_WRITERS", 4);
    let load: Vec<_> = (0..load_writers)
        .map(|k| {
            let (writer, stop) = (server.bearer(token(&format!("load-{k}"))), stop.clone());
            tokio::spawn(async move {
                // Paced (10 writes a second each): load beside the race, not a saturated
                // server that answers every change after its due instant.
                let mut pace = tokio::time::interval(Duration::from_millis(100));
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut i: i64 = 0;
                loop {
                    pace.tick().await;
                    // Due later: the load is on the write path the changes' events share (the
                    // store's writer, the outbox, the bus, the schedule's consumer), not on the
                    // timer, whose firing of the racers stays on time.
                    let due = Timestamp::now()
                        + SignedDuration::from_hours(1)
                        + SignedDuration::from_millis(k * 1_000 + i);
                    let due = Timestamp::from_millisecond(due.as_millisecond()).expect("in range");
                    tokio::select! {
                        () = stop.cancelled() => return i,
                        _ = create(&writer, reminder("Load", due)) => {}
                    }
                    i += 1;
                }
            })
        })
        .collect();

    // What a change takes here under the load, so that the changes straddle their due
    // instants.
    let probe = reminder("Probe", start + SignedDuration::from_hours(2));
    let probe_path = format!("/api/v1/tasks/{}", create(&racer, probe.clone()).await);
    let mut took = Vec::new();
    for _ in 0..8 {
        let sent = std::time::Instant::now();
        racer
            .put::<Value>(&probe_path, &probe, StatusCode::OK)
            .await;
        took.push(sent.elapsed().as_millis() as i64);
    }
    took.sort_unstable();
    let spread = (took[took.len() * 3 / 4] * 6).clamp(MIN_SPREAD_MS, 1_500);
    let changes: Vec<_> = ids
        .iter()
        .zip(&dues)
        .enumerate()
        .map(|(i, (id, due))| {
            let (racer, id, due) = (racer.clone(), id.clone(), *due);
            let path = format!("/api/v1/tasks/{id}");
            // Offsets spread evenly over 0..spread, shuffled (37 is prime to the usual sizes).
            let offset = (i as i64 * 37 % n as i64) * spread / n as i64;
            let at = due - SignedDuration::from_millis(offset);
            tokio::spawn(async move {
                // The race is against the real timer of the server: the change is sent at a
                // wall-clock instant just before the due one.
                let wait = Timestamp::now().duration_until(at);
                tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
                let request = if i % 2 == 0 {
                    racer.request(reqwest::Method::DELETE, &path)
                } else {
                    let moved = due + SignedDuration::from_hours(1);
                    racer
                        .request(reqwest::Method::PUT, &path)
                        .json(&reminder("Race, moved", moved))
                };
                let sent = Timestamp::now();
                let response = request.send().await.expect("change");
                let answered = Timestamp::now();
                Racer {
                    id,
                    due,
                    sent,
                    answered: response.status().is_success().then_some(answered),
                }
            })
        })
        .collect();
    let mut racers = Vec::with_capacity(n);
    for change in changes {
        racers.push(change.await.expect("a change"));
    }

    let mut fired = HashSet::new();
    let patience = Duration::from_secs(60);
    let waited = tokio::time::timeout(patience, async {
        loop {
            let event = stream.next_or_end().await.expect("the stream stays open");
            if event.event != "notification" {
                continue;
            }
            let item: Value = serde_json::from_str(&event.data).expect("json");
            let task = item["taskId"].as_str().expect("taskId").to_owned();
            if task == sentinel {
                return;
            }
            fired.insert((task, item["dueAt"].as_str().expect("dueAt").to_owned()));
        }
    })
    .await;
    stop.cancel();
    let mut writes = 0;
    for task in load {
        writes += task.await.expect("load");
    }
    assert!(
        waited.is_ok(),
        "the sentinel reminder was not notified within {patience:?}"
    );
    assert!(
        writes > 0 || load_writers == 0,
        "the other users wrote nothing"
    );
    Outcome { racers, fired }
}

/// The race on a server of its own, configured by `configure`, its writes not rate-limited.
async fn race_on_a_server(mode: &str, configure: impl FnOnce(&mut chime::Config)) {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let app = spawn_app_with(|config| {
        config.limits.writes_per_second = 100_000.0;
        config.limits.write_burst = 100_000;
        configure(config);
    })
    .await;
    let outcome = race(
        &app.anonymous(),
        |user| app.token(user),
        param("CHIME_FENCE_REMINDERS", 160),
    )
    .await;
    outcome.assert_none_fired_after_a_timely_success(mode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reminder_fires_after_its_delete_or_update_returned_before_it_was_due() {
    race_on_a_server("embedded default", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reminder_fires_after_its_delete_or_update_returned_before_it_was_due_on_postgresql() {
    let database = crate::migrate::Database::create().await;
    let url = database.url();
    race_on_a_server("PostgreSQL store", |config| config.store.url = Some(url)).await;
}
