//! A full disk under a running server: its data directory is on a small tmpfs the test
//! mounts and fills. Writes fail with a 503 problem+json and leave nothing half-written, the
//! server stays up, and when space returns scheduling resumes by itself with no due
//! occurrence lost or fired twice. A second test does the same with a store whose volume goes
//! read-only.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::helpers::{eventually_until, problem_of, sample, StatusCode, TestApp};

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

/// A server on `data_dir`, its SQLite store synced as `sqlite_synchronous` says.
async fn spawn_app_in(
    data_dir: PathBuf,
    sqlite_synchronous: chime_store::sqlite::Synchronous,
) -> TestApp {
    TestApp::builder()
        .data_dir(data_dir)
        .config(move |c| c.sqlite_synchronous = sqlite_synchronous)
        .start()
        .await
}

fn rfc3339(at: Timestamp) -> String {
    Timestamp::from_millisecond(at.as_millisecond())
        .expect("in range")
        .to_string()
}

async fn history_len(app: &TestApp, id: &str) -> Option<usize> {
    let body: Value = app
        .user("alice")
        .try_get(&format!("/api/v1/tasks/{id}/history"))
        .await?;
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
    eventually_until(what, deadline, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
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
    let app = spawn_app_in(data_dir.clone(), chime_store::sqlite::Synchronous::Normal).await;

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
    let alice = app.user("alice");
    let padding = json!({
        "name": "padding",
        "description": description,
        "startDate": rfc3339(start + SignedDuration::from_hours(24)),
    });
    let refused = loop {
        let response = alice
            .request(reqwest::Method::POST, "/api/v1/tasks")
            .json(&padding)
            .send()
            .await
            .expect("create");
        if response.status() != 201 {
            break response;
        }
        created += 1;
        assert!(created < 20_000, "the disk never filled");
    };
    let problem = problem_of(refused, StatusCode::SERVICE_UNAVAILABLE).await;
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
        alice
            .post_problem(
                "/api/v1/tasks",
                &json!({"name": "refused", "startDate": rfc3339(start + SignedDuration::from_hours(24))}),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await;
    }
    assert_eq!(store_counts(&data_dir.join("chime.sqlite")), (tasks, 0, 0));
    // Reads are served while the disk is full.
    alice.get::<Value>("/api/v1/tasks", StatusCode::OK).await;

    // Wait out the wall clock until every one of them is due. Real time: the server's own
    // timer must reach them while the disk is full. (An injected clock's jump wakes the timer
    // through the tick's bus record, which the full disk refuses too.)
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
    let metrics = app.metrics().await;
    assert_eq!(
        sample(&metrics, "chime_executions_total"),
        Some((ids.len() + 1) as f64),
        "{metrics}"
    );

    app.running.stop().await.expect("stop");
    drop(disk);
}

/// An ext4 file system (no journal, `errors=remount-ro`) in an image file, loop-mounted on a
/// fresh directory; unmounted on drop.
struct LoopDisk {
    image: tempfile::TempDir,
    mount: tempfile::TempDir,
}

impl LoopDisk {
    /// `Err(why)` when this process cannot make or mount one (not root, no loop devices).
    fn mount(size: &str) -> Result<LoopDisk, String> {
        let image = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mount = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file = image.path().join("store.img");
        run("truncate", &["-s", size, &file.to_string_lossy()])?;
        run(
            "mkfs.ext4",
            &["-q", "-F", "-O", "^has_journal", &file.to_string_lossy()],
        )?;
        let disk = LoopDisk { image, mount };
        disk.mount_again()?;
        Ok(disk)
    }

    fn mount_again(&self) -> Result<(), String> {
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                &self.image.path().join("store.img").to_string_lossy(),
                &self.path().to_string_lossy(),
            ],
        )
    }

    fn path(&self) -> &Path {
        self.mount.path()
    }

    /// What a volume does when its file system finds an error: the kernel makes it read-only
    /// under the files open on it, and every write fails with EROFS. (`mount -o remount,ro`
    /// cannot: Linux refuses it with EBUSY while a file is open for writing.)
    fn force_read_only(&self) {
        let source = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(self.path())
            .output()
            .expect("findmnt");
        let device = String::from_utf8_lossy(&source.stdout).trim().to_owned();
        let name = device.rsplit('/').next().expect("device name").to_owned();
        std::fs::write(
            format!("/sys/fs/ext4/{name}/trigger_fs_error"),
            "chime test: the store's volume goes read-only",
        )
        .expect("trigger an ext4 error");
        let probe = std::fs::write(self.path().join("probe"), b"x");
        assert!(
            probe
                .as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(30 /* EROFS */)),
            "the volume is still writable: {probe:?}"
        );
    }

    /// Unmounts (the server must have closed its files) and mounts the image again, writable.
    fn repair(&self) {
        run("umount", &[&self.path().to_string_lossy()]).expect("umount the read-only volume");
        self.mount_again().expect("mount the volume again");
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The read-only variant. On Linux a file system cannot be made read-only, nor writable again,
/// under files open for writing (EBUSY; and ext4's error state holds until unmounted), so here
/// the volume goes read-only the way real ones do (the kernel, after an error), and comes back
/// the only way it can: the server stops, the volume is remounted, the server starts again.
/// That scheduling resumes by itself without a restart is what the full-disk test shows.
#[tokio::test]
async fn a_read_only_store_answers_503_changes_nothing_and_every_due_occurrence_fires_once_after() {
    let disk = match LoopDisk::mount("64M") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!(
                "SKIPPED a_read_only_store_answers_503...: cannot loop-mount an ext4 image here \
                 (needs root and loop devices): {why}"
            );
            return;
        }
    };
    let data_dir = disk.path().join("data");
    // `sqlite_synchronous = full`: what the kernel had not yet written of the volume when it
    // went read-only is gone, like at a power loss, and `normal` (the default) does not sync
    // the log at each commit. With `normal`, tasks answered 201 a few seconds before were
    // missing after the remount.
    let durable = chime_store::sqlite::Synchronous::Full;
    let app = spawn_app_in(data_dir.clone(), durable).await;

    // Due one a second from 2 s on: they fall due while the store is read-only.
    let start = Timestamp::now();
    let mut due_soon = Vec::new();
    for i in 2..=5 {
        let task = app
            .create(
                "alice",
                &json!({"name": format!("due at +{i}s"),
                        "startDate": rfc3339(start + SignedDuration::from_secs(i))}),
            )
            .await;
        due_soon.push(task["id"].as_str().expect("id").to_owned());
    }
    let alice = app.user("alice");
    let listed_before: Value = alice.get("/api/v1/tasks", StatusCode::OK).await;

    disk.force_read_only();
    let later = rfc3339(start + SignedDuration::from_hours(24));
    let refused = [
        alice
            .post_problem(
                "/api/v1/tasks",
                &json!({"name": "refused", "startDate": later}),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await,
        alice
            .put_problem(
                &format!("/api/v1/tasks/{}", due_soon[0]),
                &json!({"name": "renamed", "startDate": later}),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await,
        alice
            .delete_problem(
                &format!("/api/v1/tasks/{}", due_soon[1]),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await,
    ];
    for problem in refused {
        assert!(
            !problem.to_string().to_lowercase().contains("sqlite"),
            "{problem}"
        );
    }
    // Reads are served from a read-only store, and show nothing of the refused writes.
    let listed: Value = alice.get("/api/v1/tasks", StatusCode::OK).await;
    assert_eq!(listed, listed_before);

    // Wait out the wall clock until every one of them is due. Real time: the server's own
    // timer must reach them while the store is read-only (see the full-disk test).
    let last_due = start + SignedDuration::from_secs(5);
    let wait = Timestamp::now().duration_until(last_due + SignedDuration::from_millis(500));
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    for id in &due_soon {
        assert_eq!(
            history_len(&app, id).await,
            Some(0),
            "{id} fired on a read-only store"
        );
    }

    // The volume is repaired: the server lets go of it, it is remounted, the server restarts.
    tokio::time::timeout(Duration::from_secs(60), app.running.stop())
        .await
        .expect("the server did not stop on a read-only store")
        .expect("stop");
    disk.repair();
    let app = spawn_app_in(data_dir.clone(), durable).await;
    for id in &due_soon {
        within_recovery("every occurrence due while read-only to fire", || async {
            history_len(&app, id).await.is_some_and(|n| n >= 1)
        })
        .await;
    }
    for id in &due_soon {
        assert_eq!(history_len(&app, id).await, Some(1), "{id} fired once");
    }
    // The same tasks, as created before (now fired: no next execution).
    let ids = |list: &Value| -> Vec<(Value, Value)> {
        list["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| (t["id"].clone(), t["name"].clone()))
            .collect()
    };
    let listed: Value = app.user("alice").get("/api/v1/tasks", StatusCode::OK).await;
    assert_eq!(ids(&listed), ids(&listed_before));
    let (tasks, orphan_events, tasks_without_event) = store_counts(&data_dir.join("chime.sqlite"));
    assert_eq!(tasks, due_soon.len() as i64, "tasks in the store");
    assert_eq!((orphan_events, tasks_without_event), (0, 0));
    app.create("alice", &json!({"name": "after", "startDate": later}))
        .await;
    app.running.stop().await.expect("stop");
    drop(disk);
}
