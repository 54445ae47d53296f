//! Runs the store contract suite on the PostgreSQL adapter, each test in a database of its own
//! (created on first open, dropped when the test ends, also when it fails), and
//! PostgreSQL-specific checks: several instances racing on one database, the outbox under
//! out-of-order commits, migrations, re-encryption, and an ignored throughput measurement.
//!
//! The server: `CHIME_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`,
//! trust auth), whose user may create databases. Without one, every test fails and says so.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chime_core::{TaskId, UserId};
use chime_store::contract::StoreFactory;
use chime_store::postgres::PgStore;
use chime_store::{
    Error, Fire, FireFn, OutboxStore, ScheduleChange, ScheduledTask, Store, TaskRecord, TaskStore,
};
use jiff::Timestamp;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions as _;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_options() -> PgConnectOptions {
    let url = std::env::var("CHIME_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("CHIME_TEST_POSTGRES_URL is not a PostgreSQL URL: {e}"))
}

/// Where the server is, without its password, for messages.
fn server(options: &PgConnectOptions) -> String {
    format!(
        "{}:{} as {}",
        options.get_host(),
        options.get_port(),
        options.get_username()
    )
}

async fn admin() -> sqlx::PgConnection {
    let options = admin_options();
    options.connect().await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {}: {e}. The store contract suite runs against a \
             real PostgreSQL: start one that this user may create databases on (see README), \
             or point CHIME_TEST_POSTGRES_URL at one.",
            server(&options)
        )
    })
}

/// One database per test: created on the first open, dropped (with any connection still
/// open to it) when the factory is dropped, which also happens when the test panics.
struct PgFactory {
    name: String,
    created: tokio::sync::OnceCell<()>,
    pool_size: u32,
}

impl PgFactory {
    fn new() -> Self {
        Self::with_pool_size(4)
    }

    fn with_pool_size(pool_size: u32) -> Self {
        let unique = uuid_like();
        Self {
            name: format!("chime_test_{unique}"),
            created: tokio::sync::OnceCell::new(),
            pool_size,
        }
    }

    async fn pg(&self) -> PgStore {
        self.created
            .get_or_init(|| async {
                let mut admin = admin().await;
                sqlx::query(&format!("CREATE DATABASE \"{}\"", self.name))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("create the test database {}: {e}", self.name));
            })
            .await;
        let pool = PgPoolOptions::new()
            .max_connections(self.pool_size)
            .connect_with(admin_options().database(&self.name))
            .await
            .unwrap_or_else(|e| panic!("connect to the test database {}: {e}", self.name));
        let store = PgStore::from_pool(pool);
        store.migrate().await.expect("migrate the test database");
        store
    }
}

/// A name no other test (nor another run on the same server) uses.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Drop for PgFactory {
    fn drop(&mut self) {
        if self.created.get().is_none() {
            return;
        }
        let name = self.name.clone();
        // Drop runs inside the test's runtime (or while it unwinds); the drop needs its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async {
                let mut admin = admin_options().connect().await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map(drop)
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

#[async_trait]
impl StoreFactory for PgFactory {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(self.pg().await)
    }
}

chime_store::store_contract_tests!(PgFactory::new());

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

fn set(task: &TaskRecord, due: Timestamp) -> ScheduleChange {
    ScheduleChange::Set {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version: task.version,
        body: task.body.clone(),
        next: Some((due, 1)),
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

/// The loss the port's ack-by-seqs prevents, played out on PostgreSQL: a transaction takes an
/// outbox seq, another commits a higher one, a relay reads that one, the first commits, then
/// the relay acknowledges what it read. The first's event must still be relayed. (Acknowledging "up to" the relayed seq
/// would have deleted it: its seq is lower.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_commits_after_a_higher_seq_was_relayed_is_still_relayed() {
    let factory = PgFactory::new();
    let store = factory.pg().await;

    let mut slow = store.pool().begin().await.expect("begin");
    let slow_seq: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (topic, key, payload) VALUES ('task-events', 'slow', 'slow')
         RETURNING seq",
    )
    .fetch_one(&mut *slow)
    .await
    .expect("an outbox row in an open transaction");

    let fast = task(1);
    store
        .create_task(&fast, event(&fast))
        .await
        .expect("create");
    let batch = store.outbox_batch(100).await.expect("outbox_batch");
    assert_eq!(batch.len(), 1, "only the committed event is visible");
    assert!(
        batch[0].seq > slow_seq,
        "the relayed event has the higher seq"
    );
    // The slow transaction commits while the relay publishes; then the relay acknowledges.
    slow.commit().await.expect("commit the slow transaction");
    let relayed: Vec<i64> = batch.iter().map(|r| r.seq).collect();
    store.outbox_ack(&relayed).await.expect("outbox_ack");

    let later = store.outbox_batch(100).await.expect("outbox_batch");
    assert_eq!(
        later
            .iter()
            .map(|r| (r.seq, r.key.as_str()))
            .collect::<Vec<_>>(),
        [(slow_seq, "slow")],
        "the late event is still there to relay"
    );
}

/// Two processes' relays (two pools) drain one outbox of 600 events at once, claiming 50 at a
/// time and acknowledging what they claimed: together they publish every event, and no event
/// is handed to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_of_two_processes_share_the_outbox_and_no_event_goes_to_both() {
    let factory = PgFactory::new();
    let stores: [Arc<dyn Store>; 2] = [Arc::new(factory.pg().await), Arc::new(factory.pg().await)];
    chime_store::contract::relays_of_two_stores_share_the_outbox_and_no_event_goes_to_both(
        stores, 600, 50,
    )
    .await;
}

/// A claim holds one task's later events back from other relays (so the task's events reach
/// the bus in order), is returned again to the relay that holds it, and once its lease has
/// run out (the relay died) another relay takes the events over: delayed, never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_holds_back_its_tasks_later_events_and_a_dead_relays_claims_run_out() {
    let factory = PgFactory::new();
    let (a, b) = (factory.pg().await, factory.pg().await);
    let pool = a.pool().clone();
    chime_store::contract::a_claim_holds_back_its_tasks_later_events_and_a_dead_relays_claims_run_out(
        [Arc::new(a), Arc::new(b)],
        |seq| async move {
            // The lease is in the database's clock: about OUTBOX_LEASE is left of it.
            let lease: i64 = sqlx::query_scalar(
                "SELECT claimed_until - (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
                 FROM outbox WHERE seq = $1",
            )
            .bind(seq)
            .fetch_one(&pool)
            .await
            .expect("the claim's lease");
            let expected =
                i64::try_from(chime_store::postgres::OUTBOX_LEASE.as_micros()).expect("micros");
            assert!(
                (expected - 1_000_000..=expected).contains(&lease),
                "the lease has {lease} µs left"
            );
            sqlx::query("UPDATE outbox SET claimed_until = claimed_until - $1 WHERE seq = $2")
                .bind(expected)
                .bind(seq)
                .execute(&pool)
                .await
                .expect("age the claim");
        },
    )
    .await;
}

/// A relay waiting on one process's outbox signal wakes when another process writes an event
/// (`NOTIFY` at commit), not only on its own process's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_write_in_another_process_wakes_this_processs_relay() {
    let factory = PgFactory::new();
    let stores: [Arc<dyn Store>; 2] = [Arc::new(factory.pg().await), Arc::new(factory.pg().await)];
    chime_store::contract::an_outbox_write_in_another_process_wakes_this_processs_relay(stores)
        .await;
}

/// A dead letter retried through one process (the API's retry) wakes the channel's delivery
/// workers of another process at once (`NOTIFY chime_deliveries`), not at their next idle
/// look; other channels' stay asleep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_retried_in_another_process_wakes_this_processs_worker_for_its_channel() {
    let factory = PgFactory::new();
    let stores: [Arc<dyn Store>; 2] = [Arc::new(factory.pg().await), Arc::new(factory.pg().await)];
    chime_store::contract::a_dead_letter_retried_in_another_process_wakes_its_channels_workers(
        stores,
    )
    .await;
}

/// Two `chime` processes (two pools), each with two execution workers, fire 2,000 due
/// recurring rows in batches: every row fires exactly once, is advanced once, and publishes
/// exactly one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_on_two_pools_fire_every_due_row_exactly_once() {
    let factory = PgFactory::new();
    let stores: [Arc<dyn Store>; 2] = [Arc::new(factory.pg().await), Arc::new(factory.pg().await)];
    chime_store::contract::workers_on_two_stores_fire_every_due_row_exactly_once(stores, 2_000, 50)
        .await;
}

/// `migrate` is idempotent, also when instances run it at once; a database that a newer build
/// migrated is refused rather than used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_whoever_runs_them_and_a_newer_schema_is_refused() {
    let factory = PgFactory::new();
    let store = factory.pg().await;
    let (a, b) = (store.clone(), store.clone());
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("migrate");
    rb.expect("migrate at the same time");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .expect("count migrations");
    assert_eq!(applied, chime_store::postgres::SCHEMA_VERSION);

    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(store.pool())
    .await
    .expect("pretend a newer build migrated");
    match store.migrate().await {
        Err(Error::Corrupt(message)) => assert!(message.contains("9999"), "{message}"),
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
}

/// Re-encryption walks every row once in key order across batches, rewrites what the rewrite
/// changes (text and bytes alike), and drops a push subscription whose rewritten endpoint
/// another row already has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reencrypt_batches_rewrite_every_row_once_and_drop_duplicate_endpoints() {
    let factory = PgFactory::new();
    let store = factory.pg().await;
    chime_store::contract::reencrypt_batches_rewrite_every_row_once_and_drop_duplicate_endpoints(
        Arc::new(store.clone()),
        &store,
    )
    .await;
}

/// PostgreSQL's text types refuse NUL: an attempt whose error text holds one (a provider's
/// answer) is still recorded, the NUL shown as U+FFFD, rather than failing on every retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_text_with_a_nul_is_recorded_with_a_replacement_character() {
    use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
    use chime_store::{AttemptResult, DeliveryKey, DeliveryStatus, DeliveryStore, DeliveryWrite};
    let factory = PgFactory::new();
    let store = factory.pg().await;
    let alice = UserId::parse("alice").expect("a user id");
    let occurrence = OccurrenceKey {
        task_id: TaskId::new(),
        due_at: at(10),
    };
    let write = DeliveryWrite {
        occurrence,
        user_id: alice.clone(),
        status: DeliveryStatus {
            channel: Channel::Webhook,
            target: String::new(),
            outcome: DeliveryOutcome::Pending,
            attempts: 0,
            at: at(10),
            detail: None,
            provider_id: None,
        },
        inbox: None,
        message: Some(json!({ "to": "somewhere" })),
        event: None,
    };
    assert_eq!(
        store.record_deliveries(&[write]).await.expect("record"),
        [0]
    );
    let claimed = store
        .claim_deliveries(Channel::Webhook, at(10), at(70), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let key = DeliveryKey {
        occurrence,
        channel: Channel::Webhook,
        target: String::new(),
    };
    let retry = AttemptResult::Retry {
        next_attempt_at: at(20),
        error: "HTTP 500: \0oops".into(),
    };
    store
        .record_attempt(&key, at(70), at(11), retry, None)
        .await
        .expect("an error text with a NUL is recorded");
    let pending = store
        .pending_deliveries(&alice, occurrence.task_id)
        .await
        .expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1.attempts, 1);
    assert_eq!(
        pending[0].1.detail.as_deref(),
        Some("HTTP 500: \u{FFFD}oops")
    );
}

/// Not a check: measures `fire_due` on 10,000 due rows in batches of 500 and prints rows per
/// second: PostgreSQL with one worker, then with four workers on two pools, and SQLite with
/// one worker for comparison (its writes are serialised anyway). Run with
/// `cargo test -p chime-store --release --test postgres_contract -- --ignored --nocapture
/// fire_due_throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn fire_due_throughput() {
    for workers in [1usize, 4] {
        let factory = PgFactory::new();
        let stores: Vec<Arc<dyn Store>> =
            vec![Arc::new(factory.pg().await), Arc::new(factory.pg().await)];
        measure_fire_due(
            &format!("PostgreSQL, {workers} worker(s) on 2 pools"),
            &stores,
            workers,
        )
        .await;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = chime_store::sqlite::SqliteStore::open(
        &dir.path().join("chime.sqlite"),
        &chime_store::sqlite::SqliteOptions::default(),
    )
    .expect("open SQLite");
    measure_fire_due("SQLite, 1 worker", &[Arc::new(sqlite)], 1).await;
}

async fn measure_fire_due(what: &str, stores: &[Arc<dyn Store>], workers: usize) {
    const ROWS: usize = 10_000;
    const BATCH: usize = 500;
    let tasks: Vec<TaskRecord> = (0..ROWS).map(task).collect();
    for chunk in tasks.chunks(1_000) {
        let changes: Vec<ScheduleChange> = chunk.iter().map(|t| set(t, at(1))).collect();
        chime_store::contract::ensure_tasks(&*stores[0], &changes).await;
        stores[0]
            .apply_schedule_changes(&changes)
            .await
            .expect("apply");
    }
    // Roughly what the execution role does per row: serialise an event holding the body.
    let fire: FireFn = Arc::new(|row: &ScheduledTask| Fire {
        events: vec![chime_store::OutboxEvent {
            topic: "execute-task",
            key: row.task_id.to_string(),
            payload: serde_json::to_vec(&json!({
                "taskId": row.task_id.to_string(),
                "task": row.body,
            }))
            .unwrap_or_default(),
            handoff: None,
        }],
        next: Some((at(86_400), row.seq + 1)),
        nag: None,
        escalate_at: None,
    });
    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let (store, fire) = (stores[i % stores.len()].clone(), fire.clone());
            tokio::spawn(async move {
                let mut n = 0;
                loop {
                    match store.fire_due(at(2), BATCH, fire.clone()).await {
                        Ok(0) => break n,
                        Ok(k) => n += k,
                        Err(e) => panic!("fire_due: {e:?}"),
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.expect("a worker");
    }
    let elapsed = started.elapsed();
    assert_eq!(total, ROWS);
    assert_eq!(
        stores[0].outbox_len().await.expect("outbox_len"),
        ROWS as u64
    );
    println!(
        "fire_due, {ROWS} rows in batches of {BATCH}, {what}: {:.0} ms, {:.0} rows/s",
        elapsed.as_secs_f64() * 1e3,
        ROWS as f64 / elapsed.as_secs_f64()
    );
}

/// Handoffs (issue 24): an `execute_task` a claim writes is also kept under its handoff id,
/// other events are not; it is claimable only once `after` has passed and not while another
/// claim's lease lives. Recording its deliveries (here none: an occurrence with nothing to
/// deliver) from the bus removes it; from a takeover marks it, so that the bus's copy is
/// skipped, and one whose copy never comes is swept after an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execute_task_is_kept_as_a_handoff_until_its_deliveries_are_recorded() {
    use chime_core::event::{Channel, Event, ExecuteTask, OccurrenceKey};
    use chime_store::{DeliveryStore, ScheduleStore};
    use std::time::Duration;

    let factory = PgFactory::new();
    let (a, b) = (factory.pg().await, factory.pg().await);
    let t = task(1);
    a.create_task(&t, event(&t)).await.expect("create");
    a.apply_schedule_changes(&[set(&t, at(10))])
        .await
        .expect("apply");
    fn execute(escalation: Option<Channel>, row: &ScheduledTask) -> ExecuteTask {
        ExecuteTask {
            occurrence: OccurrenceKey {
                task_id: row.task_id,
                due_at: row.due_at,
            },
            user_id: row.user_id.clone(),
            seq: row.seq,
            fired_at: row.due_at,
            late: false,
            coalesced: 0,
            skipped: false,
            task_version: row.version,
            task: row.body.clone(),
            traceparent: None,
            escalation,
        }
    }
    // The firing and (as if) an escalation step of it: two handoffs of one occurrence.
    let fire: FireFn = Arc::new(|row: &ScheduledTask| Fire {
        events: [None, Some(Channel::Sms)]
            .into_iter()
            .map(|step| chime_store::OutboxEvent::from(&Event::ExecuteTask(execute(step, row))))
            .collect(),
        next: None,
        nag: None,
        escalate_at: None,
    });
    assert_eq!(a.fire_due(at(10), 10, fire).await.expect("fire"), 1);
    let occurrence = format!("{}@{}", t.id, at(10));
    let mut ids = vec![occurrence.clone(), format!("{occurrence}/sms")];
    ids.sort();

    let long = Duration::from_secs(3600);
    assert!(
        a.claim_handoffs(long, long, 10)
            .await
            .expect("claim")
            .is_empty(),
        "not claimable before `after` has passed"
    );
    let mut claimed = a
        .claim_handoffs(Duration::ZERO, long, 10)
        .await
        .expect("claim");
    claimed.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        claimed.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        ids,
        "the execute_tasks only, under their handoff ids"
    );
    match Event::from_bytes(&claimed[0].payload).expect("the event") {
        Event::ExecuteTask(e) => assert_eq!(e.handoff(), ids[0]),
        other => panic!("a handoff of {other:?}"),
    }
    assert!(
        b.claim_handoffs(Duration::ZERO, long, 10)
            .await
            .expect("claim")
            .is_empty(),
        "another instance does not claim what a live lease holds"
    );
    // The lease runs out (the claimer died): another instance claims them.
    sqlx::query("UPDATE handoffs SET claimed_until = claimed_until - $1")
        .bind(i64::try_from(long.as_micros()).expect("micros") + 1_000_000)
        .execute(a.pool())
        .await
        .expect("age the lease");
    assert_eq!(
        b.claim_handoffs(Duration::ZERO, long, 10)
            .await
            .expect("claim")
            .len(),
        2
    );
    // One is recorded from the bus by the first instance: gone.
    a.record_handled(&[], &ids[..1], false)
        .await
        .expect("record");
    // The other by the claimer: kept, marked and emptied, and no longer claimable; the bus's
    // copy, when it comes, finds it recorded and removes it.
    b.record_handled(&[], &ids[1..], true)
        .await
        .expect("record");
    let kept: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, length(payload)::bigint FROM handoffs WHERE recorded_at IS NOT NULL",
    )
    .fetch_all(a.pool())
    .await
    .expect("kept");
    assert_eq!(kept, [(ids[1].clone(), 0)]);
    sqlx::query("UPDATE handoffs SET claimed_until = NULL")
        .execute(a.pool())
        .await
        .expect("release");
    assert!(
        a.claim_handoffs(Duration::ZERO, long, 10)
            .await
            .expect("claim")
            .is_empty(),
        "a recorded handoff is not claimed again"
    );
    assert_eq!(
        a.recorded_handoffs(&ids).await.expect("recorded"),
        ids[1..].to_vec(),
        "what a takeover recorded"
    );
    a.record_handled(&[], &ids[1..], false)
        .await
        .expect("record");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM handoffs")
        .fetch_one(a.pool())
        .await
        .expect("count");
    assert_eq!(left, 0, "the bus's copy removed it");

    // One recorded by a takeover whose bus copy never comes is swept an hour later.
    let fire: FireFn = Arc::new(|row: &ScheduledTask| Fire {
        events: vec![chime_store::OutboxEvent::from(&Event::ExecuteTask(
            execute(None, row),
        ))],
        next: None,
        nag: None,
        escalate_at: None,
    });
    let u = task(2);
    a.create_task(&u, event(&u)).await.expect("create");
    a.apply_schedule_changes(&[set(&u, at(20))])
        .await
        .expect("apply");
    assert_eq!(a.fire_due(at(20), 10, fire).await.expect("fire"), 1);
    let taken = a
        .claim_handoffs(Duration::ZERO, long, 10)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    a.record_handled(&[], &[taken[0].id.clone()], true)
        .await
        .expect("record");
    let count = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM handoffs")
            .fetch_one(a.pool())
            .await
            .expect("count");
        n
    };
    a.claim_handoffs(Duration::ZERO, long, 10)
        .await
        .expect("claim");
    assert_eq!(count().await, 1, "kept within the hour");
    sqlx::query("UPDATE handoffs SET recorded_at = recorded_at - $1")
        .bind(
            i64::try_from(chime_store::postgres::HANDOFF_RECORDED_KEPT.as_micros())
                .expect("micros")
                + 1_000_000,
        )
        .execute(a.pool())
        .await
        .expect("age it");
    a.claim_handoffs(Duration::ZERO, long, 10)
        .await
        .expect("claim");
    assert_eq!(count().await, 0, "swept after the hour");
}
