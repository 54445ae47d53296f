//! Runs the store contract suite on the MongoDB adapter against SecantusDB, a
//! MongoDB-wire-protocol server (`chime_testenv::secantusdb`): one server for this test
//! binary, a database of its own per test (set up by `migrate` on first open), and the
//! checks particular to MongoDB: two clients claiming at once never claim a row twice, a
//! transaction aborted midway leaves nothing, a change stream resumed after a server restart
//! misses nothing, and the schema's versioning.
//!
//! SecantusDB shows compatibility with the wire protocol and the driver, not MongoDB's
//! performance: the sizes here are small (it scans every matching document).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chime_core::{TaskId, UserId};
use chime_store::contract::StoreFactory;
use chime_store::mongodb::{MongoStore, SCHEMA_VERSION};
use chime_store::{Error, OutboxStore, Store, TaskRecord, TaskStore};
use chime_testenv::secantusdb::SecantusDb;
use jiff::Timestamp;
use mongodb::bson::{doc, Document};
use serde_json::json;

/// The server every test of this binary shares (each in its own database); stopped when the
/// test process exits.
fn server() -> &'static SecantusDb {
    static SERVER: OnceLock<SecantusDb> = OnceLock::new();
    SERVER.get_or_init(|| SecantusDb::start(&scratch_dir("shared")))
}

/// A fresh directory under the system's temporary one (kept: the server may still write to
/// it as the process exits).
fn scratch_dir(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "chime-secantusdb-{}-{what}-{}",
        std::process::id(),
        unique()
    ))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One database per test, on the shared server (or on `server` when given).
struct MongoFactory {
    url: String,
    migrated: tokio::sync::OnceCell<()>,
}

impl MongoFactory {
    fn new() -> Self {
        Self::on(server())
    }

    fn on(server: &SecantusDb) -> Self {
        Self {
            url: server.url(&format!("chime_test_{}_{}", std::process::id(), unique())),
            migrated: tokio::sync::OnceCell::new(),
        }
    }

    /// A new client (a process of its own, as far as the store can tell) on the database.
    async fn mongo(&self) -> MongoStore {
        let store = MongoStore::connect(&self.url, 4)
            .await
            .unwrap_or_else(|e| panic!("connect to SecantusDB at {}: {e:?}", self.url));
        self.migrated
            .get_or_init(|| async { store.migrate().await.expect("migrate the test database") })
            .await;
        store
    }
}

#[async_trait]
impl StoreFactory for MongoFactory {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(self.mongo().await)
    }
}

chime_store::store_contract_tests!(MongoFactory::new());

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("a valid instant")
}

fn task(n: usize) -> TaskRecord {
    TaskRecord {
        id: TaskId::new(),
        user_id: UserId::parse("alice").expect("a user id"),
        version: 1,
        body: json!({ "name": format!("Task {n}") }),
        created_at: at(0),
        modified_at: at(0),
    }
}

fn event(task: &TaskRecord) -> chime_store::OutboxEvent {
    chime_store::OutboxEvent {
        topic: "task-events",
        key: task.id.to_string(),
        payload: task.body.to_string().into_bytes(),
        handoff: None,
    }
}

/// Two clients (two connection pools, as two processes have), two workers each, fire one
/// schedule at once, a few rows a claim so that their claims meet (they conflict, and one
/// runs again): every due row fires exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_claiming_concurrently_never_claim_a_row_twice() {
    let factory = MongoFactory::new();
    let stores: [Arc<dyn Store>; 2] = [factory.open().await, factory.open().await];
    chime_store::contract::workers_on_two_stores_fire_every_due_row_exactly_once(stores, 60, 5)
        .await;
}

/// Two clients' relays drain one outbox at once, claiming a few events at a time (taking
/// turns on the claim document) and acknowledging what they claimed: together they publish
/// every event, none to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_of_two_clients_share_the_outbox_and_no_event_goes_to_both() {
    let factory = MongoFactory::new();
    let stores: [Arc<dyn Store>; 2] = [factory.open().await, factory.open().await];
    chime_store::contract::relays_of_two_stores_share_the_outbox_and_no_event_goes_to_both(
        stores, 40, 5,
    )
    .await;
}

/// A relay waiting on one client's outbox signal wakes when another client writes an event
/// (through its change stream on `outbox`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_write_in_another_process_wakes_this_processs_relay() {
    let factory = MongoFactory::new();
    let stores: [Arc<dyn Store>; 2] = [factory.open().await, factory.open().await];
    chime_store::contract::an_outbox_write_in_another_process_wakes_this_processs_relay(stores)
        .await;
}

/// A dead letter retried through one client wakes the channel's delivery workers of another
/// (through its change stream on `wakeups`); other channels' stay asleep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_retried_in_another_process_wakes_this_processs_worker_for_its_channel() {
    let factory = MongoFactory::new();
    let stores: [Arc<dyn Store>; 2] = [factory.open().await, factory.open().await];
    chime_store::contract::a_dead_letter_retried_in_another_process_wakes_its_channels_workers(
        stores,
    )
    .await;
}

/// Key rotation walks every collection in key order after its cursor, writes back what the
/// rewrite changed, and drops a push subscription whose rewritten endpoint another has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reencrypt_batches_rewrite_every_row_once_and_drop_duplicate_endpoints() {
    let factory = MongoFactory::new();
    let store = factory.mongo().await;
    chime_store::contract::reencrypt_batches_rewrite_every_row_once_and_drop_duplicate_endpoints(
        Arc::new(store.clone()),
        &store,
    )
    .await;
}

/// A claim holds one task's later events back from other relays (so the task's events reach
/// the bus in order), is returned again to the relay that holds it, and once its lease has
/// run out (the relay died) another relay takes the events over: delayed, never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_holds_back_its_tasks_later_events_and_a_dead_relays_claims_run_out() {
    let factory = MongoFactory::new();
    let (a, b) = (factory.mongo().await, factory.mongo().await);
    let outbox = a.database().collection::<Document>("outbox");
    let lease = i64::try_from(chime_store::mongodb::OUTBOX_LEASE.as_micros()).expect("micros");
    chime_store::contract::a_claim_holds_back_its_tasks_later_events_and_a_dead_relays_claims_run_out(
        [Arc::new(a), Arc::new(b)],
        |seq| async move {
            outbox
                .update_one(doc! { "_id": seq }, doc! { "$inc": { "claimed_until": -lease } })
                .await
                .expect("age the claim");
        },
    )
    .await;
}

/// An update whose outbox write fails after the task's new version was written (the seq it
/// is handed is taken: the counter was set back) is aborted midway: the task keeps its old
/// version and body, and the outbox holds nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_aborted_midway_leaves_nothing() {
    let factory = MongoFactory::new();
    let store = factory.mongo().await;
    let t = task(1);
    store.create_task(&t, event(&t)).await.expect("create");
    let before = store.outbox_batch(10).await.expect("outbox_batch");
    assert_eq!(before.len(), 1);
    // The next seq handed out will be the one already taken.
    store
        .database()
        .collection::<Document>("counters")
        .update_one(doc! { "_id": "outbox" }, doc! { "$inc": { "seq": -1_i64 } })
        .await
        .expect("set the counter back");

    let mut edited = t.clone();
    edited.version = 2;
    edited.body = json!({ "name": "Edited" });
    let failed = store.update_task(&edited, event(&edited)).await;
    assert!(
        matches!(failed, Err(Error::Storage(_) | Error::Unavailable(_))),
        "the update fails: {failed:?}"
    );
    assert_eq!(
        store.get_task(&t.user_id, t.id).await.expect("get"),
        Some(t.clone()),
        "the task is as it was"
    );
    assert_eq!(store.outbox_batch(10).await.expect("outbox_batch"), before);

    // The counter moves on past the taken seq: the next write goes through.
    assert!(store
        .update_task(&edited, event(&edited))
        .await
        .expect("update"));
    assert_eq!(store.outbox_len().await.expect("outbox_len"), 2);
}

/// A change stream's resume token outlives the server: events written after a restart are
/// all delivered, in order, to a stream resumed from the token taken before it; and a relay
/// whose listener lost its stream to the restart is woken by a write made after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_stream_resumed_after_a_restart_misses_nothing() {
    use futures::StreamExt;

    let dir = scratch_dir("restart");
    let first = SecantusDb::start(&dir);
    let port = first.port();
    let factory = MongoFactory::on(&first);
    let writer = factory.mongo().await;
    let relay = factory.mongo().await;
    let signal = relay.outbox_signal();
    tokio::time::timeout(chime_store::contract::GUARD, signal.notified())
        .await
        .expect("the listener starts and wakes the relay once");

    let outbox = writer.database().collection::<Document>("outbox");
    let mut stream = outbox.watch().await.expect("watch the outbox");
    let t = task(0);
    writer.create_task(&t, event(&t)).await.expect("create");
    let seen = tokio::time::timeout(chime_store::contract::GUARD, stream.next())
        .await
        .expect("a change event")
        .expect("the stream is open")
        .expect("a change event");
    assert_eq!(
        seen.document_key.and_then(|k| k.get_i64("_id").ok()),
        Some(1)
    );
    let token = stream.resume_token().expect("a resume token");
    drop(stream);

    first.stop();
    let second = SecantusDb::start_on(&dir, port);
    let later: Vec<TaskRecord> = (1..4).map(task).collect();
    for t in &later {
        // The driver reconnects by itself; the first write may meet the old connection.
        let mut tries = 0;
        while let Err(e) = writer.create_task(t, event(t)).await {
            tries += 1;
            assert!(tries < 5, "create after the restart: {e:?}");
        }
    }
    let mut resumed = outbox
        .watch()
        .resume_after(token)
        .await
        .expect("resume the stream");
    let mut keys = Vec::new();
    while keys.len() < later.len() {
        let event = tokio::time::timeout(chime_store::contract::GUARD, resumed.next())
            .await
            .expect("a change event after the restart")
            .expect("the stream is open")
            .expect("a change event");
        let key = event
            .full_document
            .and_then(|d| d.get_str("key").ok().map(str::to_owned))
            .expect("an inserted event's key");
        keys.push(key);
    }
    assert_eq!(
        keys,
        later.iter().map(|t| t.id.to_string()).collect::<Vec<_>>(),
        "every event written after the restart, in order"
    );

    // The relay's own listener: woken (at the latest on its reconnection) once the events
    // are there, and the events are all claimable.
    tokio::time::timeout(chime_store::contract::GUARD * 3, signal.notified())
        .await
        .expect("the relay is woken after the restart");
    assert_eq!(relay.outbox_claim(10).await.expect("outbox_claim").len(), 4);
    drop(second);
}

/// `migrate` sets the schema up once whoever runs it (two at once, then again), records its
/// version, and a database set up by a newer build is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_whoever_runs_them_and_a_newer_schema_is_refused() {
    let factory = MongoFactory::new();
    let url = factory.url.clone();
    let (a, b) = (
        MongoStore::connect(&url, 2).await.expect("connect"),
        MongoStore::connect(&url, 2).await.expect("connect"),
    );
    assert_eq!(a.applied_schema_version().await.expect("version"), 0);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("migrate");
    rb.expect("migrate");
    a.migrate().await.expect("migrate again");
    assert_eq!(
        a.applied_schema_version().await.expect("version"),
        SCHEMA_VERSION
    );
    // The validators hold: a task without its fields is refused.
    let refused = a
        .database()
        .collection::<Document>("tasks")
        .insert_one(doc! { "_id": "tsk_broken" })
        .await;
    assert!(
        refused.is_err(),
        "the tasks validator refuses a bare document"
    );

    a.database()
        .collection::<Document>("chime_schema")
        .update_one(
            doc! { "_id": "schema" },
            doc! { "$set": { "version": SCHEMA_VERSION + 1 } },
        )
        .await
        .expect("pretend a newer build migrated");
    match b.migrate().await {
        Err(Error::Corrupt(message)) => assert!(message.contains("upgrade chime"), "{message}"),
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
}
