//! A full disk under a running server: its data directory is on a small tmpfs the test
//! mounts and fills. Writes fail with a 503 problem+json and leave nothing half-written, the
//! server stays up, and when space returns scheduling resumes by itself with no due
//! occurrence lost or fired twice.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chime::Config;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// Recovery runs through supervised workers whose restart backoff reaches 10 s, and several
/// of them (relay, consumers, timer, history) lie between a write and what the test reads.
const RECOVERY: Duration = Duration::from_secs(60);

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    mount: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this process may not mount (not root, or no `CAP_SYS_ADMIN`).
    fn mount(size: &str) -> Option<SmallDisk> {
        let mount = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(mount.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(SmallDisk { mount })
    }

    fn path(&self) -> &Path {
        self.mount.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            // Lazy: after a failed assertion the server still holds its files open.
            .arg("-l")
            .arg(self.mount.path())
            .status();
    }
}

/// Writes zeros to `path` until the file system refuses (ENOSPC).
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    // Whatever fits of a last partial page.
    while file.write_all(&chunk[..512]).is_ok() {}
}

async fn spawn_app_in(data_dir: PathBuf) -> TestApp {
    let config = Config {
        data_dir,
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind");
    let running = chime::start(&config, listener).await.expect("start");
    TestApp {
        base: format!("http://{}", running.addr),
        running,
        client: reqwest::Client::new(),
        // Unused: the data directory lives on the test's tmpfs.
        _dir: tempfile::tempdir().expect("tempdir"),
    }
}

fn rfc3339(at: Timestamp) -> String {
    Timestamp::from_millisecond(at.as_millisecond())
        .expect("in range")
        .to_string()
}

async fn history_len(app: &TestApp, id: &str) -> Option<usize> {
    let body: Value = app
        .get("alice", &format!("/api/v1/tasks/{id}/history"))
        .await
        .json()
        .await
        .ok()?;
    Some(body["history"].as_array()?.len())
}

/// How many of `ids` the execution role has finished (fired their only occurrence), read
/// from the schedule in the store's file: the history lags behind while the disk is full.
fn finished(db: &Path, ids: &[String]) -> usize {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store read-only");
    let mut query = conn
        .prepare("SELECT count(*) FROM schedule WHERE task_id = ?1 AND due_at IS NULL")
        .expect("prepare");
    ids.iter()
        .filter(|id| {
            query
                .query_row([id.as_str()], |r| r.get::<_, i64>(0))
                .expect("schedule row")
                > 0
        })
        .count()
}

/// Polls `check` until it holds, failing after [`RECOVERY`].
async fn within_recovery<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + RECOVERY;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the store's file holds beside the running server, in one snapshot: (tasks, task
/// events whose task is not stored, stored tasks with no trace of their event). An event is
/// in the outbox, or in the bus log, or, once every consumer has read it and retention has
/// dropped it, applied to the execution role's schedule.
fn store_counts(db: &Path) -> (i64, i64, i64) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store read-only");
    conn.query_row(
        "WITH events AS (
             SELECT key FROM outbox WHERE topic = 'task-events'
             UNION SELECT key FROM bus_records WHERE topic = 'task-events')
         SELECT (SELECT count(*) FROM tasks),
                (SELECT count(*) FROM events WHERE key NOT IN (SELECT id FROM tasks)),
                (SELECT count(*) FROM tasks WHERE id NOT IN (SELECT key FROM events)
                                             AND id NOT IN (SELECT task_id FROM schedule))",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("count tasks and their events")
}

#[tokio::test]
async fn a_full_disk_answers_503_loses_nothing_and_scheduling_resumes_when_space_returns() {
    let Some(disk) = SmallDisk::mount("24m") else {
        eprintln!(
            "SKIPPED a_full_disk_answers_503...: cannot mount a tmpfs here (needs root); \
             no full disk to test against"
        );
        return;
    };
    let data_dir = disk.path().join("data");
    let app = spawn_app_in(data_dir.clone()).await;

    // Due one a second over the next 5 s: the later ones fall due while the disk is full.
    let start = Timestamp::now();
    let mut due_soon = Vec::new();
    for i in 1..=5 {
        let at = start + SignedDuration::from_secs(i);
        let task = app
            .create(
                "alice",
                &json!({"name": format!("due at +{i}s"), "startDate": rfc3339(at)}),
            )
            .await;
        due_soon.push((task["id"].as_str().expect("id").to_owned(), at));
    }
    let mut created = due_soon.len();

    fill(&disk.path().join("filler"));
    // SQLite may still have room in its files; create until a write needs space it can't get.
    let description = "x".repeat(4000);
    let refused = loop {
        let response = app
            .post(
                "alice",
                "/api/v1/tasks",
                &json!({
                    "name": "padding",
                    "description": description,
                    "startDate": rfc3339(start + SignedDuration::from_hours(24)),
                }),
            )
            .await;
        if response.status() != 201 {
            break response;
        }
        created += 1;
        assert!(created < 20_000, "the disk never filled");
    };
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json",
        "{:?}",
        refused.headers()
    );
    let problem: Value = refused.json().await.expect("problem json");
    assert_eq!(problem["status"], 503, "{problem}");
    // Nothing internal leaks to the client.
    assert!(
        !problem.to_string().to_lowercase().contains("sqlite"),
        "{problem}"
    );

    // Nothing half-written: every accepted task, and its event, and nothing else.
    let (tasks, orphan_events, tasks_without_event) = store_counts(&data_dir.join("chime.sqlite"));
    assert_eq!(tasks, created as i64, "tasks in the store");
    assert_eq!(orphan_events, 0, "task events with no task");
    assert_eq!(tasks_without_event, 0, "tasks with no event");
    // A few more refusals: each 503, none half-written, and reads still served.
    for _ in 0..3 {
        let response = app
            .post(
                "alice",
                "/api/v1/tasks",
                &json!({"name": "refused", "startDate": rfc3339(start + SignedDuration::from_hours(24))}),
            )
            .await;
        assert_eq!(response.status(), 503);
    }
    assert_eq!(store_counts(&data_dir.join("chime.sqlite")), (tasks, 0, 0));
    let listed = app.get("alice", "/api/v1/tasks").await;
    assert_eq!(
        listed.status(),
        200,
        "reads are served while the disk is full"
    );

    // Wait out the wall clock (nothing to await) until every one of them is due.
    let last_due = due_soon.last().expect("tasks").1;
    let wait = Timestamp::now().duration_until(last_due + SignedDuration::from_millis(500));
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    let ids: Vec<String> = due_soon.iter().map(|(id, _)| id.clone()).collect();
    let unfired_while_full = ids.len() - finished(&data_dir.join("chime.sqlite"), &ids);
    assert!(
        unfired_while_full > 0,
        "every task fired before the disk filled: the test proves nothing about recovery"
    );
    eprintln!(
        "{unfired_while_full} of {} due tasks could not fire while the disk was full",
        ids.len()
    );

    // Space returns. Nobody restarts anything.
    std::fs::remove_file(disk.path().join("filler")).expect("free space");
    let after = app
        .create(
            "alice",
            &json!({"name": "after", "startDate": rfc3339(Timestamp::now() + SignedDuration::from_secs(1))}),
        )
        .await;
    let after = after["id"].as_str().expect("id").to_owned();
    within_recovery("the task created after space returned to fire", || async {
        history_len(&app, &after).await == Some(1)
    })
    .await;
    assert_eq!(finished(&data_dir.join("chime.sqlite"), &ids), ids.len());
    for (id, _) in &due_soon {
        within_recovery("every occurrence due while the disk was full", || async {
            history_len(&app, id).await.is_some_and(|n| n >= 1)
        })
        .await;
    }
    for (id, _) in &due_soon {
        assert_eq!(history_len(&app, id).await, Some(1), "{id} fired once");
    }

    // Claims that failed on the full disk and were retried are not counted again.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let executions = format!("chime_executions_total {}", ids.len() + 1);
    assert!(
        metrics.lines().any(|l| l == executions),
        "want {executions}:\n{metrics}"
    );

    app.running.stop().await.expect("stop");
    drop(disk);
}
