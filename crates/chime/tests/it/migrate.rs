//! `chime migrate` on the real PostgreSQL the store tests use (`CHIME_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`), in a database of its own that is
//! dropped when the test ends, also when it fails; and on MongoDB (a SecantusDB server of the
//! test's own).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Executor as _};

use crate::backup::chime;

fn admin() -> PgConnectOptions {
    let url = std::env::var("CHIME_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    PgConnectOptions::from_str(&url).expect("CHIME_TEST_POSTGRES_URL is a PostgreSQL URL")
}

/// A new empty database, dropped (with its connections) on drop.
pub(crate) struct Database {
    name: String,
}

impl Database {
    pub(crate) async fn create() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("chime_test_migrate_{}_{nanos}", std::process::id());
        let options = admin();
        let mut conn = options.connect().await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {}:{}: {e} (see README: the tests need one)",
                options.get_host(),
                options.get_port()
            )
        });
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create the test database");
        Self { name }
    }

    /// Its URL (the test server trusts local connections: no password to hide).
    pub(crate) fn url(&self) -> String {
        let options = admin();
        format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            self.name
        )
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                if let Ok(mut conn) = admin().connect().await {
                    let _ = conn
                        .execute(
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn migrate_creates_the_postgres_schema_and_running_it_again_changes_nothing() {
    let db = Database::create().await;
    let dir = tempfile::tempdir().expect("a directory");
    for run in ["first", "second"] {
        let out = chime(&["migrate", "--store-url", &db.url()], dir.path(), &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{run} run: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.trim(),
            format!(
                "the store is at schema version {}",
                chime_store::postgres::SCHEMA_VERSION
            )
        );
    }
    let store = chime_store::postgres::PgStore::connect(&db.url(), 1)
        .await
        .expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .expect("the migrations table");
    assert_eq!(applied, chime_store::postgres::SCHEMA_VERSION);
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .expect("the store's tables exist");
    assert_eq!(outbox, 0);
}

#[test]
fn migrate_refuses_a_url_that_is_neither_postgres_nor_mongodb() {
    let dir = tempfile::tempdir().expect("a directory");
    let out = chime(
        &["migrate", "--store-url", "sqlite:///tmp/chime.sqlite"],
        dir.path(),
        &[],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be a postgres:// or mongodb:// URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The commands that look at the store follow `[store] url`: `chime doctor` checks the
/// PostgreSQL store's schema (and the broker) instead of a SQLite file and counts what
/// retention would delete there, `chime backup` dumps it with `pg_dump`, and `chime keys
/// rotate` re-encrypts the PostgreSQL rows.
#[tokio::test]
async fn doctor_backup_and_key_rotation_follow_the_postgres_store() {
    let db = Database::create().await;
    let dir = tempfile::tempdir().expect("a directory");
    let url = db.url();
    let closed = format!("127.0.0.1:{}", crate::helpers::free_port());
    let key = format!("k1:{}", "A".repeat(43) + "=");
    let env = [
        ("CHIME_STORE__URL", url.as_str()),
        ("CHIME_STORE__MIGRATE", "false"),
        ("CHIME_BUS__KAFKA_BOOTSTRAP", closed.as_str()),
        ("CHIME_ENCRYPTION__KEYS", key.as_str()),
    ];
    let data_dir = dir.path().to_str().expect("utf8");
    // As the doctor shows it: without its credentials.
    let shown = url.replacen("://postgres@", "://***@", 1);
    let doctor = || {
        let out = chime(&["doctor", "--data-dir", data_dir], dir.path(), &env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };

    let (passed, text) = doctor();
    assert!(!passed, "{text}");
    let version = chime_store::postgres::SCHEMA_VERSION;
    for line in [
        format!("FAIL  store: PostgreSQL at {shown} has schema version 0 of {version}: run `chime migrate` (store.migrate is off)"),
        format!("FAIL  bus: Kafka broker at {closed}: "),
    ] {
        assert!(text.contains(&line), "{line:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("no store at"),
        "no SQLite file is looked for:\n{text}"
    );

    let migrated = chime(&["migrate", "--store-url", &url], dir.path(), &[]);
    assert!(migrated.status.success());
    let (_, text) = doctor();
    let line = format!("ok    store: PostgreSQL at {shown}, schema version {version}");
    assert!(text.contains(&line), "{line:?} missing from:\n{text}");
    // Retention counts what it would delete in the PostgreSQL store too.
    assert!(
        text.contains("ok    retention: every 3600 s")
            && text.contains("would delete now: nothing"),
        "{text}"
    );

    // `chime backup` dumps the PostgreSQL store (pg_dump), not a SQLite file.
    let dump = dir.path().join("store.pgdump");
    let backup = chime(
        &[
            "backup",
            "--to",
            dump.to_str().expect("utf8"),
            "--data-dir",
            data_dir,
        ],
        dir.path(),
        &env,
    );
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(chime::backup::pg::is_dump(&dump));

    let rotated = chime(
        &["keys", "rotate", "--data-dir", data_dir],
        dir.path(),
        &env,
    );
    let stdout = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        stdout.contains("0 rows moved to the newest key"),
        "{stdout}"
    );
}

/// The same commands on a MongoDB store (SecantusDB, a MongoDB-wire-protocol server): `chime
/// doctor` reports its schema version before and after `chime migrate` (collections,
/// validators, indexes) and counts what retention would delete there, `chime backup` refuses
/// it and names `mongodump`, and `chime keys rotate` re-encrypts its documents.
#[test]
fn doctor_migrate_backup_and_key_rotation_follow_the_mongodb_store() {
    let dir = tempfile::tempdir().expect("a directory");
    let server = chime_testenv::secantusdb::SecantusDb::start(&dir.path().join("secantusdb"));
    let url = server.url("chime");
    let closed = format!("127.0.0.1:{}", crate::helpers::free_port());
    let key = format!("k1:{}", "A".repeat(43) + "=");
    let env = [
        ("CHIME_STORE__URL", url.as_str()),
        ("CHIME_STORE__MIGRATE", "false"),
        ("CHIME_BUS__KAFKA_BOOTSTRAP", closed.as_str()),
        ("CHIME_ENCRYPTION__KEYS", key.as_str()),
    ];
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().expect("utf8");
    let doctor = || {
        let out = chime(&["doctor", "--data-dir", data_dir], dir.path(), &env);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let version = chime_store::mongodb::SCHEMA_VERSION;

    let text = doctor();
    let line = format!(
        "FAIL  store: MongoDB at {url} has schema version 0 of {version}: run `chime migrate` \
         (store.migrate is off)"
    );
    assert!(text.contains(&line), "{line:?} missing from:\n{text}");

    let migrated = chime(&["migrate", "--store-url", &url], dir.path(), &[]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(
        String::from_utf8_lossy(&migrated.stdout)
            .contains(&format!("the store is at schema version {version}")),
        "{}",
        String::from_utf8_lossy(&migrated.stdout)
    );
    let text = doctor();
    let line = format!("ok    store: MongoDB at {url}, schema version {version}");
    assert!(text.contains(&line), "{line:?} missing from:\n{text}");
    assert!(
        text.contains("ok    retention: every 3600 s")
            && text.contains("would delete now: nothing"),
        "{text}"
    );

    let to = dir.path().join("store.backup");
    let backup = chime(
        &[
            "backup",
            "--to",
            to.to_str().expect("utf8"),
            "--data-dir",
            data_dir,
        ],
        dir.path(),
        &env,
    );
    let stderr = String::from_utf8_lossy(&backup.stderr);
    assert!(
        !backup.status.success(),
        "a MongoDB store is not backed up by chime"
    );
    assert!(stderr.contains("mongodump"), "{stderr}");
    assert!(!to.exists(), "nothing was written");

    let rotated = chime(
        &["keys", "rotate", "--data-dir", data_dir],
        dir.path(),
        &env,
    );
    let stdout = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        stdout.contains("0 rows moved to the newest key"),
        "{stdout}"
    );
}

/// A `store.url` asking for TLS (`sslmode=require`) gets an encrypted connection to the
/// PostgreSQL server (the machine's server has TLS on, as Debian configures it).
#[tokio::test]
async fn a_store_url_with_sslmode_require_connects_over_tls() {
    let db = Database::create().await;
    let url = format!("{}?sslmode=require", db.url());
    let store = chime_store::postgres::PgStore::connect(&url, 1)
        .await
        .expect("connect with sslmode=require");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .expect("pg_stat_ssl");
    assert!(encrypted, "the connection is not encrypted");
}
