//! Runs the store contract suite on the SQLite adapter, each test on its own file in a fresh
//! temporary directory, and SQLite-specific checks of opening, upgrading an older schema, and
//! what the port cannot read back.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
use chime_core::{TaskId, UserId};
use chime_store::contract::StoreFactory;
use chime_store::sqlite::{SqliteOptions, SqliteStore};
use chime_store::{
    AttemptResult, DeliveryKey, DeliveryState, DeliveryStatus, DeliveryStore, DeliveryWrite,
    HistoryEntry, Store, TaskStore,
};
use jiff::Timestamp;
use serde_json::json;

/// Opens a [`SqliteStore`] on one file that lives as long as the factory. Reopening after the
/// contract dropped the previous store is a restart; reopening while it is still open is a
/// second instance, which SQLite serialises on the file's write lock.
struct SqliteFactory {
    dir: tempfile::TempDir,
}

impl SqliteFactory {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[async_trait]
impl StoreFactory for SqliteFactory {
    async fn open(&self) -> Arc<dyn Store> {
        let store = SqliteStore::open(
            &self.dir.path().join("chime.sqlite"),
            &SqliteOptions::default(),
        )
        .expect("open the SQLite store");
        Arc::new(store)
    }
}

chime_store::store_contract_tests!(SqliteFactory::new());

/// Not part of the contract (opening is the adapter's own business): several processes
/// starting at once on a new data directory all open the file, rather than all but one
/// failing with "database is locked" while the first switches it to WAL and migrates it.
#[test]
fn stores_opened_at_the_same_moment_on_a_new_file_all_open() {
    const OPENERS: usize = 3;
    for _ in 0..20 {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("chime.sqlite");
        let start = std::sync::Barrier::new(OPENERS);
        std::thread::scope(|s| {
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        SqliteStore::open(&path, &SqliteOptions::default()).map(drop)
                    })
                })
                .collect();
            for opener in openers {
                opener
                    .join()
                    .expect("an opener thread")
                    .expect("open a new file while others open it too");
            }
        });
    }
}

/// The schema as migration 1 created it, copied rather than taken from the adapter, so that
/// this check keeps upgrading what version 1 really wrote whatever later migrations do.
const SCHEMA_V1: &str = r#"
CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tasks_by_user ON tasks (user_id, id);

-- The execution role's schedule. A row whose due_at is NULL is a tombstone: the task is
-- finished or deleted, and its version stops replays of older events from reviving it.
CREATE TABLE schedule (
    task_id  TEXT PRIMARY KEY,
    user_id  TEXT NOT NULL,
    version  INTEGER NOT NULL,
    body     TEXT,
    due_at   INTEGER,
    seq      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX schedule_by_due ON schedule (due_at) WHERE due_at IS NOT NULL;

-- The notification role's deliveries: one per (occurrence, channel), ever.
CREATE TABLE deliveries (
    task_id   TEXT NOT NULL,
    due_at    INTEGER NOT NULL,
    channel   TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    detail    TEXT,
    PRIMARY KEY (task_id, due_at, channel)
) WITHOUT ROWID;

CREATE TABLE inbox (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    task_name  TEXT NOT NULL,
    due_at     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX inbox_by_user ON inbox (user_id, id);
CREATE INDEX inbox_unread ON inbox (user_id) WHERE read = 0;

-- The definition role's history, built from execute_task and notification_sent.
CREATE TABLE history (
    task_id   TEXT NOT NULL,
    due_at    INTEGER NOT NULL,
    user_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    fired_at  INTEGER NOT NULL,
    late      INTEGER NOT NULL,
    skipped   INTEGER NOT NULL,
    coalesced INTEGER NOT NULL,
    PRIMARY KEY (task_id, due_at)
) WITHOUT ROWID;
CREATE TABLE history_deliveries (
    task_id   TEXT NOT NULL,
    due_at    INTEGER NOT NULL,
    channel   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    detail    TEXT,
    PRIMARY KEY (task_id, due_at, channel)
) WITHOUT ROWID;

CREATE TABLE outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT NOT NULL,
    key     TEXT NOT NULL,
    payload BLOB NOT NULL
);
"#;

/// 2030-01-01T00:00:00Z plus `secs`, as the contract suite counts.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_893_456_000 + secs).expect("a valid instant")
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &SqliteOptions::default()).expect("open the SQLite store")
}

fn schema_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .expect("read the schema version")
}

fn status(
    channel: Channel,
    outcome: DeliveryOutcome,
    attempts: u32,
    secs: i64,
    detail: Option<&str>,
) -> DeliveryStatus {
    DeliveryStatus {
        channel,
        target: String::new(),
        outcome,
        attempts,
        at: at(secs),
        detail: detail.map(str::to_owned),
        provider_id: None,
    }
}

/// A pending delivery of `occurrence` on `channel` to `target`, due at the occurrence.
fn pending(
    occurrence: OccurrenceKey,
    owner: &UserId,
    channel: Channel,
    target: &str,
) -> DeliveryWrite {
    DeliveryWrite {
        occurrence,
        user_id: owner.clone(),
        status: DeliveryStatus {
            target: target.to_owned(),
            at: occurrence.due_at,
            ..status(channel, DeliveryOutcome::Pending, 0, 0, None)
        },
        inbox: None,
        message: Some(json!({ "to": target })),
        event: None,
    }
}

/// Not part of the contract (the schema is the adapter's own business): a database written
/// by a build that knew only migration 1 opens, is migrated once, and its deliveries and
/// delivery history read through the new API as the channel's one target (`""`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_schema_version_1_opens_and_its_rows_read_through_the_new_api() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("chime.sqlite");
    let alice = UserId::parse("alice").expect("a valid user id");
    let task_id = TaskId::new();
    let occurrence = OccurrenceKey {
        task_id,
        due_at: at(100),
    };
    let micros = |secs: i64| at(secs).as_microsecond();
    {
        let v1 = rusqlite::Connection::open(&path).expect("create a version 1 database");
        v1.execute_batch(SCHEMA_V1).expect("the version 1 schema");
        v1.pragma_update(None, "user_version", 1)
            .expect("set the schema version");
        let (task, user) = (task_id.to_string(), alice.as_str().to_owned());
        v1.execute(
            "INSERT INTO history (task_id, due_at, user_id, seq, fired_at, late, skipped, coalesced)
             VALUES (?1, ?2, ?3, 1, ?4, 0, 0, 0)",
            rusqlite::params![task, micros(100), user, micros(101)],
        )
        .expect("a version 1 history row");
        for (channel, outcome, attempts, secs, detail) in [
            ("email", "sent", 2, 130, None),
            (
                "sms",
                "deadLettered",
                3,
                160,
                Some("the number does not exist"),
            ),
        ] {
            v1.execute(
                "INSERT INTO deliveries
                 (task_id, due_at, channel, user_id, outcome, attempts, at, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                rusqlite::params![
                    task,
                    micros(100),
                    channel,
                    user,
                    outcome,
                    attempts,
                    micros(secs),
                    detail
                ],
            )
            .expect("a version 1 delivery row");
            v1.execute(
                "INSERT INTO history_deliveries
                 (task_id, due_at, channel, outcome, attempts, at, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    task,
                    micros(100),
                    channel,
                    outcome,
                    attempts,
                    micros(secs),
                    detail
                ],
            )
            .expect("a version 1 history_deliveries row");
        }
    }

    let store = open(&path);
    assert_eq!(
        schema_version(&path),
        chime_store::sqlite::SCHEMA_VERSION as i64
    );
    let email = status(Channel::Email, DeliveryOutcome::Sent, 2, 130, None);
    let sms = status(
        Channel::Sms,
        DeliveryOutcome::DeadLettered,
        3,
        160,
        Some("the number does not exist"),
    );
    let entry = |deliveries| HistoryEntry {
        due_at: at(100),
        seq: 1,
        fired_at: at(101),
        late: false,
        skipped: false,
        coalesced: 0,
        deliveries,
    };
    assert_eq!(
        history(&store, &alice, task_id).await,
        [entry(vec![email.clone(), sms.clone()])]
    );

    // The old deliveries are still recorded: a replay of either is ignored.
    let replays = [
        pending(occurrence, &alice, Channel::Email, ""),
        pending(occurrence, &alice, Channel::Sms, ""),
    ];
    assert!(store
        .record_deliveries(&replays)
        .await
        .expect("record_deliveries")
        .is_empty());
    assert!(store
        .pending_deliveries(&alice, task_id)
        .await
        .expect("pending_deliveries")
        .is_empty());
    for channel in [Channel::Email, Channel::Sms] {
        assert!(store
            .claim_deliveries(channel, at(10_000), at(10_060), 10)
            .await
            .expect("claim_deliveries")
            .is_empty());
        assert_eq!(
            store
                .next_delivery_at(channel)
                .await
                .expect("next_delivery_at"),
            None
        );
    }
    // A version 1 dead letter kept no message, so there is nothing to attempt again.
    let sms_key = DeliveryKey {
        occurrence,
        channel: Channel::Sms,
        target: String::new(),
    };
    assert!(!store
        .retry_dead_letter(&alice, &sms_key, at(500))
        .await
        .expect("retry_dead_letter"));

    // A later state of an old history row replaces it rather than adding a second row.
    let email_later = status(Channel::Email, DeliveryOutcome::Sent, 3, 200, None);
    store
        .record_delivery_states(&[DeliveryState {
            occurrence,
            status: email_later.clone(),
        }])
        .await
        .expect("record_delivery_states");
    assert_eq!(
        history(&store, &alice, task_id).await,
        [entry(vec![email_later.clone(), sms.clone()])]
    );

    // New deliveries work beside the old ones; reopening does not migrate again.
    let push = pending(occurrence, &alice, Channel::Push, "sub_phone");
    assert_eq!(
        store
            .record_deliveries(std::slice::from_ref(&push))
            .await
            .expect("record_deliveries"),
        [0]
    );
    drop(store);
    let store = open(&path);
    assert_eq!(
        schema_version(&path),
        chime_store::sqlite::SCHEMA_VERSION as i64
    );
    assert_eq!(
        history(&store, &alice, task_id).await,
        [entry(vec![email_later, sms])]
    );
    assert_eq!(
        store
            .pending_deliveries(&alice, task_id)
            .await
            .expect("pending_deliveries"),
        [(occurrence, push.status)]
    );
}

/// `owner`'s history of `task_id`, each entry's deliveries in channel order.
async fn history(store: &SqliteStore, owner: &UserId, task_id: TaskId) -> Vec<HistoryEntry> {
    let mut entries = store
        .history(owner, task_id, None, 10)
        .await
        .expect("history");
    for entry in &mut entries {
        entry.deliveries.sort_by_key(|d| d.channel);
    }
    entries
}

/// Not part of the contract (the port never reads a final delivery back; its state reaches
/// history through `notification_sent`): a final attempt stores its outcome, one more
/// attempt, its detail and the provider's id, and ends the lease. A sent delivery drops its
/// message; a dead-lettered one keeps it for `retry_dead_letter`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_attempt_stores_its_outcome_attempts_and_provider_id() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("chime.sqlite");
    let store = open(&path);
    let alice = UserId::parse("alice").expect("a valid user id");
    let occurrence = OccurrenceKey {
        task_id: TaskId::new(),
        due_at: at(100),
    };
    let email = pending(occurrence, &alice, Channel::Email, "");
    let sms = pending(occurrence, &alice, Channel::Sms, "");
    store
        .record_deliveries(&[email.clone(), sms.clone()])
        .await
        .expect("record_deliveries");
    let key = |w: &DeliveryWrite| DeliveryKey {
        occurrence,
        channel: w.status.channel,
        target: w.status.target.clone(),
    };
    // One failed attempt each, then the final one.
    for channel in [Channel::Email, Channel::Sms] {
        let claimed = store
            .claim_deliveries(channel, at(100), at(160), 10)
            .await
            .expect("claim_deliveries");
        assert_eq!(claimed.len(), 1);
        let retry = AttemptResult::Retry {
            next_attempt_at: at(150),
            error: "HTTP 503".to_owned(),
        };
        store
            .record_attempt(
                &claimed[0].key,
                claimed[0].lease_until,
                at(101),
                retry,
                None,
            )
            .await
            .expect("record_attempt");
    }
    for channel in [Channel::Email, Channel::Sms] {
        assert_eq!(
            store
                .claim_deliveries(channel, at(150), at(210), 10)
                .await
                .expect("claim_deliveries")
                .len(),
            1
        );
    }
    store
        .record_attempt(
            &key(&email),
            at(210),
            at(151),
            AttemptResult::Sent {
                provider_id: Some("ses-0001".to_owned()),
            },
            None,
        )
        .await
        .expect("record_attempt");
    store
        .record_attempt(
            &key(&sms),
            at(210),
            at(152),
            AttemptResult::DeadLettered {
                error: "the number does not exist".to_owned(),
            },
            None,
        )
        .await
        .expect("record_attempt");

    type Row = (
        String,
        u32,
        i64,
        Option<String>,
        Option<String>,
        bool,
        Option<i64>,
    );
    let row = |channel: Channel| -> Row {
        rusqlite::Connection::open(&path)
            .and_then(|c| {
                c.query_row(
                    "SELECT outcome, attempts, at, detail, provider_id, message IS NOT NULL,
                            leased_until
                     FROM deliveries WHERE channel = ?1",
                    [channel.as_str()],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    },
                )
            })
            .expect("read a delivery row")
    };
    assert_eq!(
        row(Channel::Email),
        (
            "sent".to_owned(),
            2,
            at(151).as_microsecond(),
            None,
            Some("ses-0001".to_owned()),
            false,
            None
        )
    );
    assert_eq!(
        row(Channel::Sms),
        (
            "deadLettered".to_owned(),
            2,
            at(152).as_microsecond(),
            Some("the number does not exist".to_owned()),
            None,
            true,
            None
        )
    );
}
