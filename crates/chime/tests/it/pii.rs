//! Personal data at rest, through the whole server: distinctive addresses, numbers, push
//! subscriptions and webhook endpoints go in through the API and through every channel, and
//! none of them can be found in the bytes of the data directory (the SQLite files and their
//! WAL, the bus log) or of an online backup; the owner still reads them back. Then
//! `chime keys rotate` moves everything from the data directory's key to a configured one.
//!
//! The search is [`chime_crypto::scan::scan_files`], which takes files: the PostgreSQL and
//! Kafka adapters run the same check on a `pg_dump` and on a topic's log segments.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use chime::Config;
use chime_crypto::scan::scan_files;
use rand::Rng as _;
use serde_json::{json, Value};

use crate::helpers::{eventually, in_ms, spawn_app_with, Receiver, Reply, StatusCode, TestApp};

/// A receiver answering every POST with `status` and `body` (push service, webhook receiver
/// and SMS provider alike).
async fn sink(status: u16, body: Value) -> Receiver {
    Receiver::start(
        Reply::status(status)
            .header("location", "/m/1")
            .json(body.to_string()),
    )
    .await
}

/// Every file in `dir` (the database files, their `-wal` and `-shm`, and anything else).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read the data directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect()
}

/// An online backup of each SQLite file of `dir` (SQLite's backup API, as `.backup` does),
/// taken while the server writes, into `into`.
fn backups(dir: &Path, into: &Path) -> Vec<PathBuf> {
    files_in(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .map(|source| {
            let target = into.join(source.file_name().expect("a file name"));
            let from = rusqlite::Connection::open(&source).expect("open for backup");
            let mut to = rusqlite::Connection::open(&target).expect("open the backup");
            rusqlite::backup::Backup::new(&from, &mut to)
                .and_then(|b| b.run_to_completion(64, std::time::Duration::ZERO, None))
                .expect("online backup");
            target
        })
        .collect()
}

/// Fails with every hit of every needle in `files`.
fn assert_nowhere(files: &[PathBuf], needles: &[&str]) {
    let hits = scan_files(files, needles).expect("scan");
    assert!(
        hits.is_empty(),
        "plaintext personal data at rest: {:#?}",
        hits.iter()
            .map(|h| format!("{} in {} at {}", h.needle, h.file.display(), h.offset))
            .collect::<Vec<_>>()
    );
}

struct Canaries {
    email: String,
    phone: String,
    phone_national: String,
    push_endpoint: String,
    push_p256dh: String,
    push_auth: String,
    webhook_url: String,
    task_name: String,
}

impl Canaries {
    fn new(push_base: &str, webhook_base: &str) -> Self {
        let tag: u64 = rand::thread_rng().gen();
        let tag = format!("{tag:016x}");
        let line: u32 = rand::thread_rng().gen_range(100..200);
        let browser = p256::SecretKey::random(&mut rand::thread_rng());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Canaries {
            email: format!("plaintext-canary-{tag}@example.com"),
            phone: format!("+1407555{line:04}"),
            phone_national: format!("407555{line:04}"),
            push_endpoint: format!("{push_base}/push/plaintext-canary-{tag}-endpoint"),
            push_p256dh: b64.encode(p256::EncodedPoint::from(browser.public_key()).as_bytes()),
            push_auth: b64.encode(rand::thread_rng().gen::<[u8; 16]>()),
            webhook_url: format!("{webhook_base}/hook/plaintext-canary-{tag}-webhook"),
            task_name: format!("visible-task-name-{tag}"),
        }
    }

    /// What must never be found at rest (the URLs by their distinctive path, which is what
    /// identifies the person; the host is the test's own loopback server).
    fn secrets<'a>(&'a self, webhook_secret: &'a str) -> Vec<&'a str> {
        let path = |url: &'a str| {
            url.split_once("/push/")
                .or(url.split_once("/hook/"))
                .map_or(url, |(_, p)| p)
        };
        vec![
            &self.email,
            &self.phone,
            &self.phone_national,
            path(&self.push_endpoint),
            &self.push_p256dh,
            &self.push_auth,
            path(&self.webhook_url),
            webhook_secret,
            webhook_secret.trim_start_matches("whsec_"),
        ]
    }
}

/// Sets up every channel's recipients with canaries, fires tasks through them, and waits
/// until each delivery is recorded. Returns the webhook secret and the two task ids.
async fn exercise(app: &TestApp, c: &Canaries) -> (String, String, String) {
    let alice = app.user("alice");
    alice
        .post::<Value>(
            "/api/v1/push/subscriptions",
            &json!({"endpoint": c.push_endpoint, "keys": {"p256dh": c.push_p256dh, "auth": c.push_auth}}),
            StatusCode::CREATED,
        )
        .await;
    // The profile holds the same email address and phone number (as typed, national).
    alice
        .put::<Value>(
            "/api/v1/me",
            &json!({"email": c.email, "phone": c.phone_national, "timeZone": "Europe/Berlin"}),
            StatusCode::OK,
        )
        .await;
    let secret = alice.set_webhook(&c.webhook_url).await["secret"]
        .as_str()
        .expect("secret")
        .to_owned();

    // Fires now on every channel: email is not configured (skipped, but the task body with the
    // address still travels through the schedule, the outbox and the bus), SMS is refused
    // (dead-lettered: its message, with the number, stays), push and webhook are sent.
    let now = app
        .create(
            "alice",
            &json!({
                "name": c.task_name, "startDate": in_ms(1500),
                "notify": {"email": c.email, "sms": c.phone, "push": true, "webhook": true, "inApp": true}
            }),
        )
        .await;
    // Stays in the schedule, its body with it.
    let later = app
        .create(
            "alice",
            &json!({
                "name": "later", "startDate": "2099-01-01 09:00:00.00+0000",
                "repeats": {"frequency": 1, "period": "day"},
                "notify": {"email": c.email, "sms": c.phone}
            }),
        )
        .await;
    let now_id = now["id"].as_str().expect("id").to_owned();
    for channel in ["email", "sms", "push", "webhook", "inApp"] {
        eventually(&format!("a final {channel} delivery"), || async {
            let history: Value = alice
                .get(&format!("/api/v1/tasks/{now_id}/history"), StatusCode::OK)
                .await;
            history["history"][0]["deliveries"]
                .as_array()?
                .iter()
                .any(|d| d["channel"] == channel && d["outcome"] != "pending")
                .then_some(())
        })
        .await;
    }
    (secret, now_id, later["id"].as_str().expect("id").to_owned())
}

/// The owner reads everything back in clear: decryption works end to end.
async fn assert_owner_reads_plaintext(app: &TestApp, c: &Canaries, secret: &str, id: &str) {
    let alice = app.user("alice");
    let task: Value = alice
        .get(&format!("/api/v1/tasks/{id}"), StatusCode::OK)
        .await;
    assert_eq!(task["notify"]["email"], c.email.as_str());
    assert_eq!(task["notify"]["sms"], c.phone.as_str());
    let me: Value = alice.get("/api/v1/me", StatusCode::OK).await;
    assert_eq!(me["email"], c.email.as_str());
    assert_eq!(me["phone"], c.phone.as_str());
    let hook: Value = alice.get("/api/v1/webhook", StatusCode::OK).await;
    assert_eq!(hook["url"], c.webhook_url.as_str());
    assert_eq!(hook["secret"], secret);
    let subs: Value = alice
        .get("/api/v1/push/subscriptions", StatusCode::OK)
        .await;
    assert_eq!(
        subs["subscriptions"][0]["endpoint"],
        c.push_endpoint.as_str(),
        "{subs}"
    );
}

fn with_channels(sms_base: String) -> impl FnOnce(&mut Config) {
    move |config: &mut Config| {
        config.delivery.retry_base_seconds = 0.2;
        config.delivery.retry_max_delay_seconds = 2.0;
        config.channels.webhook = Some(chime_channels::webhook::WebhookConfig {
            allow_private: true,
            timeout_seconds: 30,
        });
        config.channels.push = Some(
            serde_json::from_value(json!({"subject": "mailto:ops@example.com"})).expect("config"),
        );
        config.channels.sms = Some(chime_channels::sms::SmsConfig {
            account_sid: "ACtest".into(),
            auth_token: "secret-token".into(),
            from: "+14075550000".into(),
            base_url: sms_base,
            timeout_seconds: 5,
            inbound_url: None,
        });
    }
}

#[tokio::test]
async fn no_personal_data_is_found_in_clear_in_the_data_directory_its_wal_or_a_backup() {
    let push = sink(201, json!({})).await;
    let webhook = sink(204, json!({})).await;
    let sms = sink(
        400,
        json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}),
    )
    .await;
    let app = spawn_app_with(with_channels(sms.base().to_owned())).await;
    let canaries = Canaries::new(push.base(), webhook.base());
    let (secret, _, later_id) = exercise(&app, &canaries).await;
    assert_owner_reads_plaintext(&app, &canaries, &secret, &later_id).await;
    let needles = canaries.secrets(&secret);

    let dir = app.data_dir().to_path_buf();
    let backup_dir = tempfile::tempdir().expect("tempdir");
    // While running: the WAL holds the latest pages; the backup is taken online.
    let mut files = files_in(&dir);
    files.extend(backups(&dir, backup_dir.path()));
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with("-wal")),
        "a WAL to scan: {files:?}"
    );
    assert_nowhere(&files, &needles);
    // The scan does see stored text: the task's name (not personal data) is there in clear,
    // and the fields are there, encrypted.
    assert!(!scan_files(&files, &[&canaries.task_name])
        .expect("scan")
        .is_empty());
    assert!(!scan_files(&files, &["enc:v1:local:"])
        .expect("scan")
        .is_empty());

    // After a clean stop (the WAL checkpointed into the main file).
    app.running.stop().await.expect("stop");
    assert_nowhere(&files_in(&dir), &needles);
}

/// `count` of fields still on key `id` in the store's tables (the bus log is not rewritten:
/// see `chime_crypto::rotate`).
fn fields_on_key(store: &Path, id: &str) -> i64 {
    let conn = rusqlite::Connection::open(store).expect("open the store");
    let marker = format!("%enc:v1:{id}:%");
    [
        "SELECT COUNT(*) FROM tasks WHERE body LIKE ?1",
        "SELECT COUNT(*) FROM schedule WHERE body LIKE ?1",
        "SELECT COUNT(*) FROM deliveries WHERE message LIKE ?1",
        "SELECT COUNT(*) FROM push_subscriptions WHERE endpoint LIKE ?1 OR p256dh LIKE ?1 OR auth LIKE ?1",
        "SELECT COUNT(*) FROM webhooks WHERE url LIKE ?1 OR secret LIKE ?1",
        "SELECT COUNT(*) FROM destinations WHERE name LIKE ?1 OR url LIKE ?1",
        "SELECT COUNT(*) FROM outbox WHERE CAST(payload AS TEXT) LIKE ?1",
    ]
    .iter()
    .map(|sql| {
        conn.query_row(sql, [&marker], |r| r.get::<_, i64>(0))
            .expect("count")
    })
    .sum()
}

#[tokio::test]
async fn keys_rotate_moves_the_data_directory_key_to_a_configured_one_and_a_second_run_does_nothing(
) {
    let push = sink(201, json!({})).await;
    let webhook = sink(204, json!({})).await;
    let sms = sink(400, json!({"code": 21211, "status": 400})).await;
    let app = spawn_app_with(with_channels(sms.base().to_owned())).await;
    let canaries = Canaries::new(push.base(), webhook.base());
    let (secret, _, later_id) = exercise(&app, &canaries).await;
    let dir = app.data_dir().to_path_buf();
    let store = dir.join("chime.sqlite");
    assert!(fields_on_key(&store, "local") > 0);

    // The operator moves to configured keys: the data directory's key first (to read what it
    // wrote), then a new one, which encrypts from now on. Rotate while the server runs.
    let local = std::fs::read_to_string(dir.join(chime::encryption::KEY_FILE)).expect("key file");
    let new = chime_crypto::Keyring::generate_spec("k2").expect("a new key");
    let mut config = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    config.encryption.keys = vec![local.trim().to_owned(), new];
    config.encryption.data_dir_key = false;
    let mut batches = 0;
    let summary = chime::encryption::rotate(&config, 2, |_| batches += 1)
        .await
        .expect("rotate");
    assert!(summary.rewritten() > 0);
    assert!(batches > summary.tables.len(), "ran in several batches");
    let dir = app.stop().await;
    assert_eq!(fields_on_key(&store, "local"), 0);
    assert!(fields_on_key(&store, "k2") > 0);

    let again = chime::encryption::rotate(&config, 500, |_| {})
        .await
        .expect("rotate again");
    assert_eq!(again.rewritten(), 0, "{again:?}");

    // The server restarted on the rotated directory with the new keys reads everything back.
    let app = TestApp::builder()
        .data_dir(dir)
        .config(move |c| c.encryption = config.encryption)
        .start()
        .await;
    assert_owner_reads_plaintext(&app, &canaries, &secret, &later_id).await;
    app.running.stop().await.expect("stop");
}
