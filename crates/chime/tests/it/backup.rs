//! Backups and restore with the real binary: a backup taken with `chime backup` while
//! reminders are being created, restored with `chime restore` into a new data directory (or,
//! with a PostgreSQL store, a new database), fires every reminder that was scheduled when the
//! backup started, exactly once; the scheduler inside `chime serve` keeps the newest N (of
//! either kind); restore refuses what it must.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app_with, ChimeProcess, Serve, StatusCode};

/// `chime ARGS` to completion, with no `CHIME_*` configuration from the test's environment.
pub fn chime(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chime"));
    command.args(args).current_dir(cwd);
    for (key, _) in std::env::vars() {
        if key.starts_with("CHIME_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("run chime")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `chime serve` on `dir`, ready; writes are not rate-limited, and scheduled backups are off.
async fn serve(dir: &Path) -> ChimeProcess {
    serve_on(dir, None, None).await
}

/// [`serve`], with the store in the PostgreSQL database at `store_url` when given, and only
/// `roles` when given.
async fn serve_on(dir: &Path, store_url: Option<&str>, roles: Option<&str>) -> ChimeProcess {
    let mut serve = Serve::new(dir)
        .env("CHIME_LIMITS__WRITES_PER_SECOND", "1000000")
        .env("CHIME_LIMITS__WRITE_BURST", "1000000")
        .env("CHIME_BACKUP__INTERVAL_SECONDS", "0");
    if let Some(url) = store_url {
        serve = serve.env("CHIME_STORE__URL", url);
    }
    if let Some(roles) = roles {
        serve = serve.args(["--roles", roles]);
    }
    serve.start().await
}

/// A create that completed: the task's id and when its 201 arrived.
struct Created {
    id: String,
    at: Instant,
}

/// What a backup taken under load must bring back: every reminder created, and those whose
/// 201 arrived before the backup started (each must fire exactly once after a restore).
struct UnderLoad {
    created: Vec<Created>,
    expected: Vec<String>,
}

/// Eight clients create reminders (due in 10 s, a third daily) on `server` while `backup`
/// (a `chime backup` run) takes its copy, and a few more after it; checks that creates
/// completed while it ran.
async fn backup_under_load(
    server: &ChimeProcess,
    backup: impl FnOnce() -> Output + Send + 'static,
) -> UnderLoad {
    let alice = server.user("alice");
    // Due far enough ahead that none fires before the backup is taken; a third recur daily.
    let due = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 10).expect("due");
    let created: Arc<Mutex<Vec<Created>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut creators = Vec::new();
    for worker in 0..8 {
        let (alice, created, stop) = (alice.clone(), created.clone(), stop.clone());
        creators.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                let repeats = if i % 3 == 0 {
                    json!({"period": "day"})
                } else {
                    Value::Null
                };
                let task = alice
                    .create_task(&json!({
                        "name": format!("load {worker}.{i}"),
                        "startDate": due.to_string(),
                        "repeats": repeats,
                    }))
                    .await;
                let at = Instant::now();
                created.lock().expect("lock").push(Created {
                    id: task["id"].as_str().expect("id").to_owned(),
                    at,
                });
                i += 1;
            }
        }));
    }
    eventually("a first hundred reminders", || {
        let n = created.lock().expect("lock").len();
        async move { (n >= 100).then_some(()) }
    })
    .await;

    // The backup, while the creators keep going.
    let backup_started = Instant::now();
    let out = tokio::task::spawn_blocking(backup)
        .await
        .expect("backup task");
    let backup_ended = Instant::now();
    assert!(out.status.success(), "chime backup failed: {}", text(&out));
    assert!(text(&out).contains("backup written"), "{}", text(&out));
    // Writes kept flowing: creates completed while `chime backup` ran, and a few after it.
    let before_end = created.lock().expect("lock").len();
    eventually("creates after the backup", || {
        let n = created.lock().expect("lock").len();
        async move { (n >= before_end + 20).then_some(()) }
    })
    .await;
    stop.cancel();
    for creator in creators {
        creator.await.expect("creator");
    }
    let created = std::mem::take(&mut *created.lock().expect("lock"));
    let during = created
        .iter()
        .filter(|c| c.at > backup_started && c.at < backup_ended)
        .count();
    let expected: Vec<String> = created
        .iter()
        .filter(|c| c.at < backup_started)
        .map(|c| c.id.clone())
        .collect();
    eprintln!(
        "{} reminders created in all, {} before the backup started, {during} while `chime \
         backup` ran ({} ms)",
        created.len(),
        expected.len(),
        (backup_ended - backup_started).as_millis()
    );
    assert!(during > 0, "no create completed while the backup ran");
    assert!(expected.len() >= 100);
    UnderLoad { created, expected }
}

/// On the restored `server`: every reminder the backup held fires, each exactly once, and
/// nothing fires that was never created.
async fn each_fires_once(server: &ChimeProcess, load: &UnderLoad) {
    let alice = server.user("alice");
    let inbox = eventually("a notification for every reminder in the backup", || {
        let (alice, expected) = (&alice, &load.expected);
        async move {
            let inbox: Value = alice
                .get("/api/v1/notifications?limit=1000", StatusCode::OK)
                .await;
            let items = inbox["notifications"].as_array()?;
            expected
                .iter()
                .all(|id| items.iter().any(|n| n["taskId"] == *id))
                .then_some(inbox)
        }
    })
    .await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for item in inbox["notifications"].as_array().expect("list") {
        *counts
            .entry(item["taskId"].as_str().expect("taskId"))
            .or_default() += 1;
    }
    for id in &load.expected {
        assert_eq!(
            counts.get(id.as_str()),
            Some(&1),
            "task {id} fired {counts:?}"
        );
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "every notification is for a distinct occurrence: {counts:?}"
    );
    let known: Vec<&str> = load.created.iter().map(|c| c.id.as_str()).collect();
    assert!(counts.keys().all(|id| known.contains(id)));
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_into_a_new_directory_and_fires_every_scheduled_reminder_once(
) {
    let root = tempfile::tempdir().expect("tempdir");
    let (old_dir, new_dir) = (root.path().join("old"), root.path().join("new"));
    let backup = root.path().join("backups").join("under-load.sqlite");
    let server = serve(&old_dir).await;
    let load = {
        let (old_dir, backup) = (old_dir.clone(), backup.clone());
        backup_under_load(&server, move || {
            chime(
                &[
                    "backup",
                    "--to",
                    backup.to_str().expect("utf8"),
                    "--data-dir",
                    old_dir.to_str().expect("utf8"),
                    "--with-keys",
                ],
                &old_dir,
                &[],
            )
        })
        .await
    };
    drop(server);

    // Restore into a new directory (the key files come from the backup's .keys directory).
    let out = chime(
        &[
            "restore",
            "--from",
            backup.to_str().expect("utf8"),
            "--data-dir",
            new_dir.to_str().expect("utf8"),
        ],
        root.path(),
        &[],
    );
    assert!(out.status.success(), "chime restore failed: {}", text(&out));
    let report = text(&out);
    assert!(report.contains("integrity ok"), "{report}");
    assert!(report.contains("encryption.key"), "{report}");

    let server = serve(&new_dir).await;
    each_fires_once(&server, &load).await;
}

/// The same with a PostgreSQL store: `chime backup` runs `pg_dump` under load, `chime
/// restore` puts the dump into a new, empty database in one transaction (and refuses one that
/// already has Chime's tables, changing nothing), and a server on it fires every reminder the
/// dump held exactly once. The old server runs without the execution role, so at the dump
/// every task's event is still on its bus, never applied (events in flight, at the extreme):
/// the restored schedule has heard of none, and only the execution role's catch-up with the
/// tasks table makes them fire.
#[tokio::test]
async fn a_postgresql_dump_taken_under_load_restores_into_a_new_database_and_fires_every_reminder_once(
) {
    use crate::migrate::Database;
    let (old_db, new_db) = (Database::create().await, Database::create().await);
    let root = tempfile::tempdir().expect("tempdir");
    let (old_dir, new_dir) = (root.path().join("old"), root.path().join("new"));
    let dump = root.path().join("backups").join("under-load.pgdump");
    let server = serve_on(
        &old_dir,
        Some(&old_db.url()),
        Some("definition,notification,web"),
    )
    .await;
    let load = {
        let (old_dir, dump, url) = (old_dir.clone(), dump.clone(), old_db.url());
        backup_under_load(&server, move || {
            chime(
                &[
                    "backup",
                    "--to",
                    dump.to_str().expect("utf8"),
                    "--data-dir",
                    old_dir.to_str().expect("utf8"),
                    "--with-keys",
                ],
                &old_dir,
                &[("CHIME_STORE__URL", url.as_str())],
            )
        })
        .await
    };
    drop(server);

    let restore = |url: &str| {
        chime(
            &[
                "restore",
                "--from",
                dump.to_str().expect("utf8"),
                "--data-dir",
                new_dir.to_str().expect("utf8"),
                "--store-url",
                url,
            ],
            root.path(),
            &[],
        )
    };
    let out = restore(&new_db.url());
    assert!(out.status.success(), "chime restore failed: {}", text(&out));
    let report = text(&out);
    assert!(report.contains("in one transaction"), "{report}");
    assert!(report.contains("encryption.key"), "{report}");
    // Into a database that has Chime's tables: refused, and nothing changed.
    let out = restore(&old_db.url());
    assert!(
        !out.status.success(),
        "restored over a store: {}",
        text(&out)
    );
    assert!(text(&out).contains("--force"), "{}", text(&out));

    let server = serve_on(&new_dir, Some(&new_db.url()), None).await;
    each_fires_once(&server, &load).await;
}

/// The scheduled backups in `dir`, oldest first.
fn scheduled(dir: &Path) -> Vec<PathBuf> {
    chime::backup::list(dir)
        .expect("list")
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

/// Waits on `app` (backups every second, keeping 2) until the first scheduled backup has been
/// pruned and exactly two are left, with no partial file beside them; returns those two.
async fn scheduled_backups_rotate(app: &crate::helpers::TestApp) -> Vec<PathBuf> {
    app.create(
        "alice",
        &json!({"name": "kept", "startDate": crate::helpers::in_ms(3_600_000)}),
    )
    .await;
    let dir = app.data_dir().join("backups");
    let first = eventually("a first scheduled backup", || {
        let found = scheduled(&dir);
        async move { found.into_iter().next() }
    })
    .await;
    // Two more later, the first has been deleted and exactly two are left.
    let left = eventually("the oldest backup to be pruned", || {
        let found = scheduled(&dir);
        let first = first.clone();
        async move { (found.len() == 2 && !found.contains(&first)).then_some(found) }
    })
    .await;
    let no_partials = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().ends_with(".partial"));
    assert!(no_partials);
    left
}

#[tokio::test]
async fn the_scheduler_takes_a_backup_every_interval_and_keeps_the_newest_n() {
    let app = spawn_app_with(|c| {
        c.backup.interval_seconds = 1;
        c.backup.keep = 2;
    })
    .await;
    for path in scheduled_backups_rotate(&app).await {
        let verified = chime::backup::verify(&path).expect("a scheduled backup verifies");
        assert_eq!(verified.tasks, 1);
    }
    app.running.stop().await.expect("stop");
}

/// With a PostgreSQL store, the scheduler's backups are `pg_dump` archives, kept the same way.
#[tokio::test]
async fn the_scheduler_dumps_a_postgresql_store_every_interval_and_keeps_the_newest_n() {
    let db = crate::migrate::Database::create().await;
    let url = db.url();
    let app = spawn_app_with(|c| {
        c.store.url = Some(url);
        c.backup.interval_seconds = 1;
        c.backup.keep = 2;
    })
    .await;
    for path in scheduled_backups_rotate(&app).await {
        assert!(path.to_string_lossy().ends_with(".pgdump"), "{path:?}");
        assert!(chime::backup::pg::is_dump(&path));
        let tables = chime::backup::pg::verify(&path)
            .await
            .expect("a scheduled dump lists");
        assert!(tables >= 10, "{tables} tables in {path:?}");
    }
    app.running.stop().await.expect("stop");
}

#[tokio::test]
async fn restore_refuses_a_running_server_an_existing_store_and_a_damaged_file() {
    let app = spawn_app_with(|c| c.backup.interval_seconds = 0).await;
    app.create(
        "alice",
        &json!({"name": "one", "startDate": crate::helpers::in_ms(3_600_000)}),
    )
    .await;
    let data_dir = app.data_dir().to_path_buf();
    let other = tempfile::tempdir().expect("tempdir");
    let file = other.path().join("b.sqlite");
    chime::backup::take(&data_dir.join("chime.sqlite"), &file).expect("backup");
    assert!(
        chime::backup::take(&data_dir.join("chime.sqlite"), &file).is_err(),
        "a backup is never overwritten"
    );

    // The server holds the data directory.
    let error = format!(
        "{:#}",
        chime::backup::restore(&file, &data_dir, true).expect_err("server running")
    );
    assert!(error.contains("refusing to restore"), "{error}");
    app.running.stop().await.expect("stop");

    // A store is there: only with --force, and the old one is kept aside.
    let error = format!(
        "{:#}",
        chime::backup::restore(&file, &data_dir, false).expect_err("existing store")
    );
    assert!(error.contains("--force"), "{error}");
    let restored = chime::backup::restore(&file, &data_dir, true).expect("forced restore");
    let aside = restored.replaced.expect("moved aside");
    assert!(aside.exists());
    assert!(!data_dir.join("chime.sqlite-wal").exists());
    assert_eq!(restored.verified.tasks, 1);

    // A damaged file is refused before anything is touched.
    let damaged = other.path().join("damaged.sqlite");
    let mut bytes = std::fs::read(&file).expect("read");
    let len = bytes.len();
    for b in &mut bytes[len / 2..] {
        *b = 0x5a;
    }
    std::fs::write(&damaged, bytes).expect("write");
    let fresh = other.path().join("fresh");
    assert!(chime::backup::restore(&damaged, &fresh, false).is_err());
    assert!(!fresh.join("chime.sqlite").exists());
}

/// How long the real binary may take to refuse to start.
const EXIT_PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn serve_with_the_production_profile_and_nothing_configured_exits_naming_all_three_reasons() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let out = Serve::new(&data)
        .args(["--profile", "production"])
        .current_dir(root.path())
        .env_remove("CHIME_ENCRYPTION__KEYS")
        .env_remove("CHIME_AUTH__ISSUER")
        .env_remove("CHIME_TLS__CERT_FILE")
        .env_remove("CHIME_BEHIND_TLS_GATEWAY")
        .piped()
        .spawn()
        .exit(EXIT_PATIENCE)
        .await;
    let status = out.status;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "{stderr}");
    for reason in [
        "the production environment refuses to start",
        "TLS: production serves HTTPS only",
        "encryption keys: production needs external key material",
        "sign-in: production needs an OpenID Connect issuer",
    ] {
        assert!(stderr.contains(reason), "{reason:?} missing from: {stderr}");
    }
    assert!(!data.exists(), "nothing was created before refusing");
}
