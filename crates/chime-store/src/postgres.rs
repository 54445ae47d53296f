//! The PostgreSQL adapter: the distributed store, shared by every instance of every role.
//!
//! Same tables and semantics as the SQLite adapter (instants as BIGINT microseconds, JSON as
//! text), on a sqlx pool. What PostgreSQL changes:
//! - Several processes write at once. Due schedule rows and pending deliveries are claimed
//!   with `FOR UPDATE SKIP LOCKED`, so two execution (or notification) instances never take
//!   the same row, and neither waits for the other; `fire_due` advances the rows and writes
//!   their events in the claiming transaction.
//! - Rows whose version decides a write (`update_task`, `delete_task`) are locked first, so
//!   two writers of one task take turns and its events get seqs in commit order. Across
//!   different rows, outbox seqs are *not* in commit order (a sequence value is taken before
//!   commit); the relay acknowledges exactly the seqs it published, never "up to" one.
//! - Every instance's relay drains the one outbox. A relay claims its batch for a lease
//!   ([`OUTBOX_LEASE`]) under a transaction-scoped advisory lock, so claims never overlap,
//!   an event waits while an older event of its key is claimed elsewhere (one task's events
//!   reach the bus in order), and a dead relay's claims run out rather than being lost.
//! - Every transaction that writes to the outbox also sends `NOTIFY chime_outbox` (delivered at
//!   commit), and each store listens once its relay asks for the outbox signal, so a relay
//!   wakes on any instance's write, not only its own process's. A retried dead letter sends
//!   `NOTIFY chime_deliveries` with its channel, which wakes that channel's delivery workers
//!   in every process.
//! - Migrations are embedded, versioned, and run by [`PgStore::migrate`] (sqlx's migrator,
//!   under its advisory lock, so instances starting together migrate once), never implicitly.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
use chime_core::{NotificationId, TaskId, UserId};
use jiff::Timestamp;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions as _, Connection as _, Postgres, Row};
use tokio::sync::{oneshot, Notify};

mod reencrypt;

use crate::rows::{
    instant, micros, parse_channel, parse_id, parse_json, parse_outcome, parse_user, AttemptColumns,
};
use crate::{
    AttemptResult, ClaimedDelivery, DeliveryKey, DeliveryState, DeliveryStatus, DeliveryStore,
    DeliveryWrite, Error, FireFn, FiredOccurrence, HistoryEntry, InboxItem, OutboxEvent, OutboxRow,
    OutboxStore, PendingSignIn, PushSubscriptionRecord, RecipientStore, Result, ScheduleChange,
    ScheduleStore, ScheduledTask, SessionRecord, SessionStore, TaskRecord, TaskStore,
    WebhookEndpoint,
};

/// The embedded migrations, in order: `(version, description, sql)`. Append only: sqlx keeps a
/// checksum of each applied one and refuses a database whose applied migrations changed.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("postgres/migrations/0001_initial.sql"),
    ),
    (
        2,
        "outbox claims",
        include_str!("postgres/migrations/0002_outbox_claims.sql"),
    ),
    (
        3,
        "sessions",
        include_str!("postgres/migrations/0003_sessions.sql"),
    ),
];

/// The schema version this build migrates a database to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The embedded migrations as a sqlx migration source (sqlx's `migrate!` needs its proc
/// macros, which nothing else here uses).
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<
        Box<
            dyn Future<Output = std::result::Result<Vec<Migration>, sqlx::error::BoxDynError>>
                + Send,
        >,
    > {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// How long a caller waits for a pooled connection before the store reports itself
/// unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a relay's claim on an outbox batch lasts: the most a relay that died delays the
/// events it claimed. Publishing a batch takes milliseconds; a relay slower than this has its
/// events published again by another (harmless: consumers are idempotent).
pub const OUTBOX_LEASE: Duration = Duration::from_secs(5);

/// The channel every outbox write notifies at commit.
const OUTBOX_CHANNEL: &str = "chime_outbox";

/// The channel a retried dead letter notifies, with the delivery channel's name as payload.
const DELIVERY_CHANNEL: &str = "chime_deliveries";

/// The transaction-scoped advisory lock claims take turns under ("chime" in ASCII, distinct
/// from sqlx's migration lock).
const OUTBOX_CLAIM_LOCK: i64 = 0x63_68_69_6d_65;

/// How long the outbox listener waits before connecting again after a failure.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// The store on one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    outbox_signal: Arc<Notify>,
    /// Who this instance's outbox claims belong to (unique per store, so per process).
    claimer: Arc<str>,
    /// Per delivery channel: woken when another process made one of its deliveries due.
    delivery_signals: Arc<HashMap<Channel, Arc<Notify>>>,
    /// Set once the listener runs; dropping the last clone of the store stops it.
    listening: Arc<OnceLock<oneshot::Sender<()>>>,
}

impl PgStore {
    /// Connects a pool of at most `pool_size` connections to `url`
    /// (`postgres://user@host:port/database`). Does not migrate: see [`PgStore::migrate`].
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        // One plain connection first: a pool that cannot connect only says it timed out, and
        // the reason (refused, authentication, no such database) is what an operator needs.
        options
            .connect()
            .await
            .map_err(map_err)?
            .close()
            .await
            .map_err(map_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(Self::from_pool(pool))
    }

    /// The store on an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            outbox_signal: Arc::new(Notify::new()),
            claimer: uuid::Uuid::now_v7().to_string().into(),
            delivery_signals: Arc::new(
                Channel::ALL
                    .into_iter()
                    .map(|c| (c, Arc::new(Notify::new())))
                    .collect(),
            ),
            listening: Arc::new(OnceLock::new()),
        }
    }

    /// Applies the migrations this build has and the database lacks. Several instances may
    /// call it at once (sqlx takes an advisory lock). A database migrated by a newer build,
    /// or whose applied migrations differ from this build's, is refused.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = Migrator::new(Embedded)
            .await
            .map_err(|e| Error::Storage(Box::new(e)))?;
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => map_err(e),
            sqlx::migrate::MigrateError::VersionMissing(v) => Error::Corrupt(format!(
                "the database has migration {v}, which this build does not know: upgrade chime"
            )),
            e => Error::Storage(Box::new(e)),
        })
    }

    /// The newest migration applied to the database (0 before the first), without changing
    /// anything: what `chime doctor` compares with [`SCHEMA_VERSION`].
    pub async fn applied_schema_version(&self) -> Result<i64> {
        let applied = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT max(version) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await;
        match applied {
            Ok(version) => Ok(version.unwrap_or(0)),
            // No table of migrations yet (undefined_table).
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(0),
            Err(e) => Err(map_err(e)),
        }
    }

    /// One round trip (`SELECT 1`): whether the database answers, for readiness.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// The pool, for the adapter's own tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts the listener for other processes' writes, once (it needs a Tokio runtime).
    fn listen(&self) {
        self.listening.get_or_init(|| {
            let (stop, stopped) = oneshot::channel();
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(listen_for_others(
                        self.pool.clone(),
                        Signals {
                            outbox: Arc::downgrade(&self.outbox_signal),
                            deliveries: Arc::downgrade(&self.delivery_signals),
                        },
                        stopped,
                    ));
                }
                Err(_) => tracing::warn!(
                    "the store's signals were asked for outside a Tokio runtime: other \
                     processes' writes will not wake this one"
                ),
            }
            stop
        });
    }

    fn signal_if(&self, wrote_events: bool) {
        if wrote_events {
            self.outbox_signal.notify_one();
        }
    }
}

pub(crate) fn map_err(e: sqlx::Error) -> Error {
    let retryable = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Connection exceptions, insufficient resources (disk full), operator
            // intervention (shutdown), read-only transactions, serialization failures and
            // deadlocks: the database may take the same write later.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "25006"
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    };
    if retryable {
        Error::Unavailable(Box::new(e))
    } else {
        Error::Storage(Box::new(e))
    }
}

/// Free text from outside (a provider's error or message id) as PostgreSQL can store it: its
/// text types refuse NUL, which would make the write fail on every retry; SQLite keeps it.
fn text(s: Option<&str>) -> Option<String> {
    s.map(|s| s.replace('\0', "\u{FFFD}"))
}

fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn count(n: i64, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Corrupt(format!("stored {what} {n}")))
}

/// Column `i` of `row`, a decoding failure reported as corrupt data.
fn col<'r, T>(row: &'r PgRow, i: usize) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(i).map_err(map_err)
}

type Tx = sqlx::Transaction<'static, Postgres>;

/// Appends `events` to the outbox, in order, and notifies `chime_outbox` (at commit), in one
/// statement. (A data-modifying `WITH` runs whether or not the query reads it.)
async fn insert_outbox(tx: &mut Tx, events: &[OutboxEvent]) -> Result<()> {
    match events {
        [] => Ok(()),
        [e] => {
            sqlx::query(
                "WITH inserted AS (
                   INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)
                 )
                 SELECT pg_notify('chime_outbox', '')",
            )
            .bind(e.topic)
            .bind(&e.key)
            .bind(&e.payload)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            Ok(())
        }
        _ => {
            let topics: Vec<&str> = events.iter().map(|e| e.topic).collect();
            let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
            let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
            sqlx::query(
                "WITH inserted AS (
                   INSERT INTO outbox (topic, key, payload)
                   SELECT topic, key, payload
                   FROM UNNEST($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY
                     AS e (topic, key, payload, n)
                   ORDER BY n
                 )
                 SELECT pg_notify('chime_outbox', '')",
            )
            .bind(topics)
            .bind(keys)
            .bind(payloads)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            Ok(())
        }
    }
}

const TASK_COLUMNS: &str = "id, user_id, version, body, created_at, modified_at";

fn task_from_row(row: &PgRow) -> Result<TaskRecord> {
    Ok(TaskRecord {
        id: parse_id(&col::<String>(row, 0)?)?,
        user_id: parse_user(&col::<String>(row, 1)?)?,
        version: col::<i64>(row, 2)? as u64,
        body: parse_json(&col::<String>(row, 3)?)?,
        created_at: instant(col(row, 4)?)?,
        modified_at: instant(col(row, 5)?)?,
    })
}

/// The stored version of `user`'s task `id`, locked until the transaction ends.
async fn lock_task_version(tx: &mut Tx, user: &UserId, id: TaskId) -> Result<Option<u64>> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT version FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE")
            .bind(id.to_string())
            .bind(user.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_err)?;
    Ok(version.map(|v| v as u64))
}

#[async_trait]
impl TaskStore for PgStore {
    async fn create_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "INSERT INTO tasks (id, user_id, version, body, created_at, modified_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(task.id.to_string())
        .bind(task.user_id.as_str())
        .bind(task.version as i64)
        .bind(task.body.to_string())
        .bind(micros(task.created_at))
        .bind(micros(task.modified_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_outbox(&mut tx, &[event]).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(true);
        Ok(())
    }

    async fn update_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        match lock_task_version(&mut tx, &task.user_id, task.id).await? {
            None => return Ok(false),
            Some(v) if v + 1 != task.version => return Err(Error::Conflict),
            Some(_) => {}
        }
        sqlx::query("UPDATE tasks SET version = $2, body = $3, modified_at = $4 WHERE id = $1")
            .bind(task.id.to_string())
            .bind(task.version as i64)
            .bind(task.body.to_string())
            .bind(micros(task.modified_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_outbox(&mut tx, &[event]).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(true);
        Ok(true)
    }

    async fn delete_task(
        &self,
        user: &UserId,
        id: TaskId,
        version: u64,
        event: OutboxEvent,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        match lock_task_version(&mut tx, user, id).await? {
            None => return Ok(false),
            Some(v) if v != version => return Err(Error::Conflict),
            Some(_) => {}
        }
        sqlx::query("DELETE FROM tasks WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_outbox(&mut tx, &[event]).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(true);
        Ok(true)
    }

    async fn get_task(&self, user: &UserId, id: TaskId) -> Result<Option<TaskRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2"
        ))
        .bind(id.to_string())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn task_by_id(&self, id: TaskId) -> Result<Option<TaskRecord>> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn list_tasks(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = $1 AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(user.as_str())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(task_from_row).collect()
    }

    async fn count_tasks(&self, user: &UserId) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn record_fired(&self, fired: &[FiredOccurrence]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for f in fired {
            sqlx::query(
                "INSERT INTO history
                 (task_id, due_at, user_id, seq, fired_at, late, skipped, coalesced)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (task_id, due_at) DO NOTHING",
            )
            .bind(f.occurrence.task_id.to_string())
            .bind(micros(f.occurrence.due_at))
            .bind(f.user_id.as_str())
            .bind(i64::from(f.seq))
            .bind(micros(f.fired_at))
            .bind(f.late)
            .bind(f.skipped)
            .bind(i64::from(f.coalesced))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn record_delivery_states(&self, states: &[DeliveryState]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for s in states {
            sqlx::query(
                "INSERT INTO history_deliveries
                 (task_id, due_at, channel, target, outcome, attempts, at, detail, provider_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (task_id, due_at, channel, target) DO UPDATE SET
                   outcome = excluded.outcome, attempts = excluded.attempts,
                   at = excluded.at, detail = excluded.detail,
                   provider_id = excluded.provider_id
                 WHERE excluded.attempts >= history_deliveries.attempts",
            )
            .bind(s.occurrence.task_id.to_string())
            .bind(micros(s.occurrence.due_at))
            .bind(s.status.channel.as_str())
            .bind(&s.status.target)
            .bind(s.status.outcome.as_str())
            .bind(i64::from(s.status.attempts))
            .bind(micros(s.status.at))
            .bind(text(s.status.detail.as_deref()))
            .bind(text(s.status.provider_id.as_deref()))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn history(
        &self,
        user: &UserId,
        id: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let id = id.to_string();
        // One snapshot for both reads, so deliveries match the firings they belong to.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = sqlx::query(
            "SELECT due_at, seq, fired_at, late, skipped, coalesced FROM history
             WHERE task_id = $1 AND user_id = $2 AND due_at < $3
             ORDER BY due_at DESC LIMIT $4",
        )
        .bind(&id)
        .bind(user.as_str())
        .bind(before.map(micros).unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let dues: Vec<i64> = rows
            .iter()
            .map(|r| col::<i64>(r, 0))
            .collect::<Result<_>>()?;
        let statuses = sqlx::query(
            "SELECT due_at, channel, target, outcome, attempts, at, detail, provider_id
             FROM history_deliveries
             WHERE task_id = $1 AND due_at = ANY($2) ORDER BY due_at, channel, target",
        )
        .bind(&id)
        .bind(&dues)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut by_due: std::collections::HashMap<i64, Vec<DeliveryStatus>> = Default::default();
        for s in &statuses {
            by_due
                .entry(col(s, 0)?)
                .or_default()
                .push(status_from_row(s, 1)?);
        }
        rows.iter()
            .map(|r| {
                let due: i64 = col(r, 0)?;
                Ok(HistoryEntry {
                    due_at: instant(due)?,
                    seq: count(col(r, 1)?, "seq")?,
                    fired_at: instant(col(r, 2)?)?,
                    late: col(r, 3)?,
                    skipped: col(r, 4)?,
                    coalesced: count(col(r, 5)?, "coalesced")?,
                    deliveries: by_due.remove(&due).unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// `channel, target, outcome, attempts, at, detail, provider_id` from column `from` on.
fn status_from_row(row: &PgRow, from: usize) -> Result<DeliveryStatus> {
    Ok(DeliveryStatus {
        channel: parse_channel(&col::<String>(row, from)?)?,
        target: col(row, from + 1)?,
        outcome: parse_outcome(&col::<String>(row, from + 2)?)?,
        attempts: count(col(row, from + 3)?, "attempts")?,
        at: instant(col(row, from + 4)?)?,
        detail: col(row, from + 5)?,
        provider_id: col(row, from + 6)?,
    })
}

fn scheduled_from_row(row: &PgRow) -> Result<ScheduledTask> {
    Ok(ScheduledTask {
        task_id: parse_id(&col::<String>(row, 0)?)?,
        user_id: parse_user(&col::<String>(row, 1)?)?,
        version: col::<i64>(row, 2)? as u64,
        body: parse_json(&col::<String>(row, 3)?)?,
        due_at: instant(col(row, 4)?)?,
        seq: count(col(row, 5)?, "seq")?,
    })
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for change in changes {
            match change {
                ScheduleChange::Set {
                    task_id,
                    user_id,
                    version,
                    body,
                    next,
                } => {
                    let (due, seq) = match next {
                        Some((at, seq)) => (Some(micros(*at)), *seq),
                        None => (None, 0),
                    };
                    sqlx::query(
                        "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (task_id) DO UPDATE SET
                           user_id = excluded.user_id, version = excluded.version,
                           body = excluded.body, due_at = excluded.due_at, seq = excluded.seq
                         WHERE excluded.version > schedule.version",
                    )
                    .bind(task_id.to_string())
                    .bind(user_id.as_str())
                    .bind(*version as i64)
                    .bind(due.map(|_| body.to_string()))
                    .bind(due)
                    .bind(i64::from(seq))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                ScheduleChange::Delete { task_id, version } => {
                    // A tombstone: keeps the version, drops the body and due instant.
                    sqlx::query(
                        "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                         VALUES ($1, '', $2, NULL, NULL, 0)
                         ON CONFLICT (task_id) DO UPDATE SET
                           version = excluded.version, body = NULL, due_at = NULL
                         WHERE excluded.version > schedule.version",
                    )
                    .bind(task_id.to_string())
                    .bind(*version as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
        }
        tx.commit().await.map_err(map_err)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let due: Option<i64> =
            sqlx::query_scalar("SELECT MIN(due_at) FROM schedule WHERE due_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        due.map(instant).transpose()
    }

    async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> Result<usize> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // SKIP LOCKED: rows another instance is firing right now are not ours to fire, and
        // waiting for them would only serialise the instances. A row it advanced and
        // committed meanwhile is re-checked against `due_at <= now` before it is locked.
        //
        // The fence: each row comes with its task's current version (NULL once the task is
        // deleted) as of this statement's snapshot, taken after `now`: a change that
        // committed before the due instant is seen even if its event has not reached the
        // schedule yet. Only the schedule row is locked, never the task (`OF s`).
        let due = sqlx::query(
            "SELECT s.task_id, s.user_id, s.version, s.body, s.due_at, s.seq, t.version
             FROM schedule s LEFT JOIN tasks t ON t.id = s.task_id
             WHERE s.due_at IS NOT NULL AND s.due_at <= $1
             ORDER BY s.due_at LIMIT $2
             FOR UPDATE OF s SKIP LOCKED",
        )
        .bind(micros(now))
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::with_capacity(due.len());
        let mut ids = Vec::with_capacity(due.len());
        let mut next_due = Vec::with_capacity(due.len());
        let mut next_seq = Vec::with_capacity(due.len());
        let mut fired = 0;
        for row in &due {
            let task = scheduled_from_row(row)?;
            if col::<Option<i64>>(row, 6)? != Some(task.version as i64) {
                // Stale: the task was deleted or changed after this row was written. The row
                // becomes a tombstone at its version; the change's own event brings the
                // task's current state (if any) when it arrives.
                ids.push(task.task_id.to_string());
                next_due.push(None);
                next_seq.push(None);
                continue;
            }
            fired += 1;
            // A panicking FireFn (a bug in recurrence code) fails this call and commits
            // nothing, as on SQLite, instead of unwinding through the caller's worker.
            let decision = catch_unwind(AssertUnwindSafe(|| fire(&task))).map_err(|_| {
                Error::Storage(format!("firing task {} panicked", task.task_id).into())
            })?;
            events.extend(decision.events);
            ids.push(task.task_id.to_string());
            next_due.push(decision.next.map(|(at, _)| micros(at)));
            next_seq.push(decision.next.map(|(_, seq)| i64::from(seq)));
        }
        insert_outbox(&mut tx, &events).await?;
        // A finished row becomes a tombstone (no due instant, no body), keeping its version.
        sqlx::query(
            "UPDATE schedule AS s SET
               due_at = n.due_at,
               seq = COALESCE(n.seq, s.seq),
               body = CASE WHEN n.due_at IS NULL THEN NULL ELSE s.body END
             FROM UNNEST($1::text[], $2::int8[], $3::int8[]) AS n (task_id, due_at, seq)
             WHERE s.task_id = n.task_id",
        )
        .bind(&ids)
        .bind(&next_due)
        .bind(&next_seq)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(!events.is_empty());
        Ok(fired)
    }

    async fn scheduled(&self, task_id: TaskId) -> Result<Option<ScheduledTask>> {
        let row = sqlx::query(
            "SELECT task_id, user_id, version, body, due_at, seq FROM schedule
             WHERE task_id = $1 AND due_at IS NOT NULL",
        )
        .bind(task_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(scheduled_from_row).transpose()
    }
}

fn inbox_from_row(row: &PgRow) -> Result<InboxItem> {
    Ok(InboxItem {
        id: parse_id(&col::<String>(row, 0)?)?,
        user_id: parse_user(&col::<String>(row, 1)?)?,
        task_id: parse_id(&col::<String>(row, 2)?)?,
        task_name: col(row, 3)?,
        due_at: instant(col(row, 4)?)?,
        created_at: instant(col(row, 5)?)?,
        read: col(row, 6)?,
    })
}

#[async_trait]
impl DeliveryStore for PgStore {
    async fn record_deliveries(&self, writes: &[DeliveryWrite]) -> Result<Vec<usize>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole batch (a round trip per delivery was most of a
        // notification batch's time), in key order, so two instances writing overlapping
        // batches (a replay after a rebalance) take the rows' locks in the same order and
        // never deadlock. A concurrent writer of the same key makes this wait for its commit,
        // then do nothing: one delivery per key, whichever instance got there first.
        let mut order: Vec<usize> = (0..writes.len()).collect();
        let key = |w: &DeliveryWrite| {
            (
                w.occurrence.task_id.to_string(),
                micros(w.occurrence.due_at),
                w.status.channel.as_str(),
                w.status.target.clone(),
            )
        };
        order.sort_by_cached_key(|&i| key(&writes[i]));
        let column = |f: &dyn Fn(&DeliveryWrite) -> Option<String>| -> Vec<Option<String>> {
            order.iter().map(|&i| f(&writes[i])).collect()
        };
        let number = |f: &dyn Fn(&DeliveryWrite) -> Option<i64>| -> Vec<Option<i64>> {
            order.iter().map(|&i| f(&writes[i])).collect()
        };
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let inserted = sqlx::query(
            "INSERT INTO deliveries
             (task_id, due_at, channel, target, user_id, outcome, attempts, at, detail,
              provider_id, message, first_attempt_at, next_attempt_at)
             SELECT task_id, due_at, channel, target, user_id, outcome, attempts, at, detail,
                    provider_id, message, first_attempt_at, first_attempt_at
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::text[],
                         $11::text[], $12::bigint[]) WITH ORDINALITY
               AS w (task_id, due_at, channel, target, user_id, outcome, attempts, at, detail,
                     provider_id, message, first_attempt_at, n)
             ORDER BY n
             ON CONFLICT (task_id, due_at, channel, target) DO NOTHING
             RETURNING task_id, due_at, channel, target",
        )
        .bind(column(&|w| Some(w.occurrence.task_id.to_string())))
        .bind(number(&|w| Some(micros(w.occurrence.due_at))))
        .bind(column(&|w| Some(w.status.channel.as_str().to_owned())))
        .bind(column(&|w| Some(w.status.target.clone())))
        .bind(column(&|w| Some(w.user_id.as_str().to_owned())))
        .bind(column(&|w| Some(w.status.outcome.as_str().to_owned())))
        .bind(number(&|w| Some(i64::from(w.status.attempts))))
        .bind(number(&|w| Some(micros(w.status.at))))
        .bind(column(&|w| text(w.status.detail.as_deref())))
        .bind(column(&|w| text(w.status.provider_id.as_deref())))
        .bind(column(&|w| w.message.as_ref().map(ToString::to_string)))
        .bind(number(&|w| {
            (w.status.outcome == DeliveryOutcome::Pending).then(|| micros(w.status.at))
        }))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let inserted: std::collections::HashSet<(String, i64, String, String)> = inserted
            .iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?, col(r, 2)?, col(r, 3)?)))
            .collect::<Result<_>>()?;
        // The first write of each inserted key (a batch may repeat one: a replayed event).
        let mut new = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, w) in writes.iter().enumerate() {
            let (task, due, channel, target) = key(w);
            let k = (task, due, channel.to_owned(), target);
            if inserted.contains(&k) && seen.insert(k) {
                new.push(i);
            }
        }
        let inbox: Vec<&InboxItem> = new
            .iter()
            .filter_map(|&i| writes[i].inbox.as_ref())
            .collect();
        if !inbox.is_empty() {
            sqlx::query(
                "INSERT INTO inbox (id, user_id, task_id, task_name, due_at, created_at, read)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                                      $5::bigint[], $6::bigint[], $7::boolean[])",
            )
            .bind(inbox.iter().map(|i| i.id.to_string()).collect::<Vec<_>>())
            .bind(inbox.iter().map(|i| i.user_id.as_str()).collect::<Vec<_>>())
            .bind(
                inbox
                    .iter()
                    .map(|i| i.task_id.to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                inbox
                    .iter()
                    .map(|i| i.task_name.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(inbox.iter().map(|i| micros(i.due_at)).collect::<Vec<_>>())
            .bind(
                inbox
                    .iter()
                    .map(|i| micros(i.created_at))
                    .collect::<Vec<_>>(),
            )
            .bind(inbox.iter().map(|i| i.read).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let events: Vec<OutboxEvent> = new
            .iter()
            .filter_map(|&i| writes[i].event.clone())
            .collect();
        insert_outbox(&mut tx, &events).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(!events.is_empty());
        Ok(new)
    }

    async fn inbox(
        &self,
        user: &UserId,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<Vec<InboxItem>> {
        // Ids are time-ordered; "ntf_g" sorts after every "ntf_<hex>" (byte order: COLLATE "C").
        let before = before.map_or_else(|| "ntf_g".to_owned(), |b| b.to_string());
        let rows = sqlx::query(
            "SELECT id, user_id, task_id, task_name, due_at, created_at, read FROM inbox
             WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user.as_str())
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(inbox_from_row).collect()
    }

    async fn mark_read(&self, user: &UserId, ids: &[NotificationId]) -> Result<u64> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let changed = sqlx::query(
            "UPDATE inbox SET read = TRUE WHERE user_id = $1 AND NOT read AND id = ANY($2)",
        )
        .bind(user.as_str())
        .bind(&ids)
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(changed)
    }

    async fn unread_count(&self, user: &UserId) -> Result<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE user_id = $1 AND NOT read")
                .bind(user.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn claim_deliveries(
        &self,
        channel: Channel,
        now: Timestamp,
        lease_until: Timestamp,
        max: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        // One statement: pick the due rows no other claim holds (SKIP LOCKED), lease them.
        let rows = sqlx::query(
            "UPDATE deliveries AS d SET leased_until = $3
             FROM (
               SELECT task_id, due_at, channel, target FROM deliveries
               WHERE outcome = 'pending' AND channel = $1 AND next_attempt_at <= $2
                 AND (leased_until IS NULL OR leased_until <= $2)
               ORDER BY next_attempt_at LIMIT $4
               FOR UPDATE SKIP LOCKED
             ) AS c
             WHERE d.task_id = c.task_id AND d.due_at = c.due_at
               AND d.channel = c.channel AND d.target = c.target
             RETURNING d.task_id, d.due_at, d.target, d.user_id, d.attempts,
               d.first_attempt_at, d.message, d.next_attempt_at",
        )
        .bind(channel.as_str())
        .bind(micros(now))
        .bind(micros(lease_until))
        .bind(max as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let due_at: i64 = col(row, 1)?;
            let next: i64 = col(row, 7)?;
            let message: Option<String> = col(row, 6)?;
            claimed.push((
                next,
                ClaimedDelivery {
                    key: DeliveryKey {
                        occurrence: OccurrenceKey {
                            task_id: parse_id(&col::<String>(row, 0)?)?,
                            due_at: instant(due_at)?,
                        },
                        channel,
                        target: col(row, 2)?,
                    },
                    user_id: parse_user(&col::<String>(row, 3)?)?,
                    attempts: count(col(row, 4)?, "attempts")?,
                    first_attempt_at: instant(col::<Option<i64>>(row, 5)?.unwrap_or(due_at))?,
                    message: parse_json(message.as_deref().unwrap_or("null"))?,
                    lease_until,
                },
            ));
        }
        // RETURNING keeps no order: earliest next attempt first, as claimed.
        claimed.sort_by(|(a, x), (b, y)| {
            a.cmp(b)
                .then_with(|| x.key.occurrence.task_id.cmp(&y.key.occurrence.task_id))
                .then_with(|| x.key.occurrence.due_at.cmp(&y.key.occurrence.due_at))
                .then_with(|| x.key.target.cmp(&y.key.target))
        });
        Ok(claimed.into_iter().map(|(_, c)| c).collect())
    }

    async fn next_delivery_at(&self, channel: Channel) -> Result<Option<Timestamp>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(GREATEST(next_attempt_at, COALESCE(leased_until, 0))) FROM deliveries
             WHERE outcome = 'pending' AND channel = $1",
        )
        .bind(channel.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        at.map(instant).transpose()
    }

    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        lease_until: Timestamp,
        at: Timestamp,
        result: AttemptResult,
        event: Option<OutboxEvent>,
    ) -> Result<()> {
        let columns = AttemptColumns::from(result);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let changed = sqlx::query(
            "UPDATE deliveries SET
               outcome = $5, attempts = attempts + 1, at = $6, detail = $7,
               provider_id = $8, next_attempt_at = $9, leased_until = NULL,
               message = CASE WHEN $10 THEN message ELSE NULL END
             WHERE task_id = $1 AND due_at = $2 AND channel = $3 AND target = $4
               AND outcome = 'pending' AND leased_until = $11",
        )
        .bind(key.occurrence.task_id.to_string())
        .bind(micros(key.occurrence.due_at))
        .bind(key.channel.as_str())
        .bind(&key.target)
        .bind(columns.outcome)
        .bind(micros(at))
        .bind(text(columns.detail.as_deref()))
        .bind(text(columns.provider_id.as_deref()))
        .bind(columns.next_attempt_at)
        .bind(columns.keep_message)
        .bind(micros(lease_until))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        // A delivery no longer pending, or claimed again by another worker after this
        // claim's lease ran out, keeps its state and publishes nothing more.
        let publish = changed == 1 && event.is_some();
        if publish {
            insert_outbox(&mut tx, event.as_slice()).await?;
        }
        tx.commit().await.map_err(map_err)?;
        self.signal_if(publish);
        Ok(())
    }

    async fn retry_dead_letter(
        &self,
        user: &UserId,
        key: &DeliveryKey,
        now: Timestamp,
    ) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE deliveries SET outcome = 'pending', next_attempt_at = $6,
               first_attempt_at = $6, leased_until = NULL
             WHERE task_id = $1 AND due_at = $2 AND channel = $3 AND target = $4
               AND user_id = $5 AND outcome = 'deadLettered' AND message IS NOT NULL",
        )
        .bind(key.occurrence.task_id.to_string())
        .bind(micros(key.occurrence.due_at))
        .bind(key.channel.as_str())
        .bind(&key.target)
        .bind(user.as_str())
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        if changed == 1 {
            // Due now: wake the channel's workers in every process, not only this one's.
            sqlx::query("SELECT pg_notify('chime_deliveries', $1)")
                .bind(key.channel.as_str())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        }
        Ok(changed == 1)
    }

    fn delivery_signal(&self, channel: Channel) -> Option<Arc<Notify>> {
        self.listen();
        self.delivery_signals.get(&channel).cloned()
    }

    async fn pending_deliveries(
        &self,
        user: &UserId,
        task: TaskId,
    ) -> Result<Vec<(OccurrenceKey, DeliveryStatus)>> {
        let rows = sqlx::query(
            "SELECT due_at, channel, target, outcome, attempts, at, detail, provider_id
             FROM deliveries
             WHERE user_id = $1 AND task_id = $2 AND outcome = 'pending'
             ORDER BY due_at, channel, target",
        )
        .bind(user.as_str())
        .bind(task.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    OccurrenceKey {
                        task_id: task,
                        due_at: instant(col(r, 0)?)?,
                    },
                    status_from_row(r, 1)?,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query("SELECT seq, topic, key, payload FROM outbox ORDER BY seq LIMIT $1")
            .bind(max as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    seq: col(r, 0)?,
                    topic: col(r, 1)?,
                    key: col(r, 2)?,
                    payload: col(r, 3)?,
                })
            })
            .collect()
    }

    async fn outbox_claim(&self, max: usize) -> Result<Vec<OutboxRow>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(OUTBOX_CLAIM_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // Claimable: unclaimed, claimed by this instance, or a lease that ran out; and no
        // older event of the same key under another instance's live lease. The clock is the
        // database's, read after the lock.
        let rows = sqlx::query(
            "WITH now AS MATERIALIZED (
               SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us
             ),
             claimable AS (
               SELECT o.seq FROM outbox o, now
               WHERE (o.claimed_by IS NULL OR o.claimed_by = $1 OR o.claimed_until < now.us)
                 AND NOT EXISTS (
                   SELECT 1 FROM outbox e
                   WHERE e.key = o.key AND e.seq < o.seq
                     AND e.claimed_by <> $1 AND e.claimed_until >= now.us
                 )
               ORDER BY o.seq
               LIMIT $2
               FOR UPDATE OF o SKIP LOCKED
             )
             UPDATE outbox SET claimed_by = $1, claimed_until = now.us + $3
             FROM claimable, now
             WHERE outbox.seq = claimable.seq
             RETURNING outbox.seq, outbox.topic, outbox.key, outbox.payload",
        )
        .bind(&*self.claimer)
        .bind(max as i64)
        .bind(micros_of(OUTBOX_LEASE))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut rows = rows
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    seq: col(r, 0)?,
                    topic: col(r, 1)?,
                    key: col(r, 2)?,
                    payload: col(r, 3)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING has no order.
        rows.sort_unstable_by_key(|r| r.seq);
        Ok(rows)
    }

    async fn outbox_ack(&self, seqs: &[i64]) -> Result<()> {
        sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)")
            .bind(seqs)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn outbox_len(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.listen();
        self.outbox_signal.clone()
    }
}

#[async_trait]
impl RecipientStore for PgStore {
    async fn put_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
    ) -> Result<PushSubscriptionRecord> {
        // A known endpoint keeps its id; its keys and owner are refreshed (a browser that
        // re-subscribes after sign-in as another user moves to that user).
        let row = sqlx::query(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (endpoint) DO UPDATE SET
               user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth
             RETURNING id, created_at",
        )
        .bind(&sub.id)
        .bind(sub.user_id.as_str())
        .bind(&sub.endpoint)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(micros(sub.created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(PushSubscriptionRecord {
            id: col(&row, 0)?,
            created_at: instant(col(&row, 1)?)?,
            ..sub.clone()
        })
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscriptionRecord>> {
        let rows = sqlx::query(
            "SELECT id, endpoint, p256dh, auth, created_at FROM push_subscriptions
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(PushSubscriptionRecord {
                    id: col(r, 0)?,
                    user_id: user.clone(),
                    endpoint: col(r, 1)?,
                    p256dh: col(r, 2)?,
                    auth: col(r, 3)?,
                    created_at: instant(col(r, 4)?)?,
                })
            })
            .collect()
    }

    async fn remove_push_subscription(&self, user: Option<&UserId>, id: &str) -> Result<bool> {
        let changed = match user {
            Some(user) => {
                sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user.as_str())
                    .execute(&self.pool)
                    .await
            }
            None => {
                sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
            }
        }
        .map_err(map_err)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhooks (user_id, url, secret, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET
               url = excluded.url, secret = excluded.secret, created_at = excluded.created_at",
        )
        .bind(endpoint.user_id.as_str())
        .bind(&endpoint.url)
        .bind(&endpoint.secret)
        .bind(micros(endpoint.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn webhook(&self, user: &UserId) -> Result<Option<WebhookEndpoint>> {
        let row = sqlx::query("SELECT url, secret, created_at FROM webhooks WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| {
            Ok(WebhookEndpoint {
                user_id: user.clone(),
                url: col(&r, 0)?,
                secret: col(&r, 1)?,
                created_at: instant(col(&r, 2)?)?,
            })
        })
        .transpose()
    }

    async fn remove_webhook(&self, user: &UserId) -> Result<bool> {
        let changed = sqlx::query("DELETE FROM webhooks WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(changed == 1)
    }
}

const SESSION_COLUMNS: &str = "id_hash, csrf, user_id, access_token, access_expires_at, \
     pending_state, pending_nonce, pending_verifier, pending_return_to, expires_at";

/// The pending sign-in in columns `first..first + 4`, when there is one.
fn pending_from_row(row: &PgRow, first: usize) -> Result<Option<PendingSignIn>> {
    let state: Option<String> = col(row, first)?;
    let nonce: Option<String> = col(row, first + 1)?;
    let verifier: Option<String> = col(row, first + 2)?;
    let return_to: Option<String> = col(row, first + 3)?;
    Ok((|| {
        Some(PendingSignIn {
            state: state?,
            nonce: nonce?,
            verifier: verifier?,
            return_to: return_to?,
        })
    })())
}

fn session_from_row(row: &PgRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: col(row, 0)?,
        csrf: col(row, 1)?,
        user: col::<Option<String>>(row, 2)?
            .as_deref()
            .map(parse_user)
            .transpose()?,
        access_token: col(row, 3)?,
        access_expires_at: col::<Option<i64>>(row, 4)?.map(instant).transpose()?,
        pending: pending_from_row(row, 5)?,
        expires_at: instant(col(row, 9)?)?,
    })
}

async fn insert_session<'e, E>(executor: E, s: &SessionRecord) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let pending = s.pending.as_ref();
    sqlx::query(&format!(
        "INSERT INTO sessions ({SESSION_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id_hash) DO UPDATE SET
           csrf = excluded.csrf, user_id = excluded.user_id,
           access_token = excluded.access_token,
           access_expires_at = excluded.access_expires_at,
           pending_state = excluded.pending_state, pending_nonce = excluded.pending_nonce,
           pending_verifier = excluded.pending_verifier,
           pending_return_to = excluded.pending_return_to,
           expires_at = excluded.expires_at"
    ))
    .bind(&s.id_hash)
    .bind(&s.csrf)
    .bind(s.user.as_ref().map(UserId::as_str))
    .bind(text(s.access_token.as_deref()))
    .bind(s.access_expires_at.map(micros))
    .bind(text(pending.map(|p| p.state.as_str())))
    .bind(text(pending.map(|p| p.nonce.as_str())))
    .bind(text(pending.map(|p| p.verifier.as_str())))
    .bind(text(pending.map(|p| p.return_to.as_str())))
    .bind(micros(s.expires_at))
    .execute(executor)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl SessionStore for PgStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<()> {
        insert_session(&self.pool, session).await
    }

    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1 AND expires_at > $2"
        ))
        .bind(id_hash)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn set_pending(
        &self,
        id_hash: &str,
        pending: &PendingSignIn,
        now: Timestamp,
    ) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE sessions SET pending_state = $3, pending_nonce = $4, pending_verifier = $5,
               pending_return_to = $6
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(micros(now))
        .bind(text(Some(&pending.state)))
        .bind(text(Some(&pending.nonce)))
        .bind(text(Some(&pending.verifier)))
        .bind(text(Some(&pending.return_to)))
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn take_pending(&self, id_hash: &str, now: Timestamp) -> Result<Option<PendingSignIn>> {
        // The row is locked by the subquery; a concurrent caller waits for it, then sees the
        // pending columns cleared and matches nothing, so only one gets the old values.
        let row = sqlx::query(
            "UPDATE sessions s SET pending_state = NULL, pending_nonce = NULL,
               pending_verifier = NULL, pending_return_to = NULL
             FROM (
               SELECT id_hash, pending_state, pending_nonce, pending_verifier, pending_return_to
               FROM sessions
               WHERE id_hash = $1 AND expires_at > $2 AND pending_state IS NOT NULL
               FOR UPDATE
             ) old
             WHERE s.id_hash = old.id_hash
             RETURNING old.pending_state, old.pending_nonce, old.pending_verifier,
               old.pending_return_to",
        )
        .bind(id_hash)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        match row {
            Some(row) => pending_from_row(&row, 0),
            None => Ok(None),
        }
    }

    async fn replace_session(&self, old: Option<&str>, new: &SessionRecord) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(old) = old {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        insert_session(&mut *tx, new).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn remove_session(&self, id_hash: &str) -> Result<bool> {
        let changed = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected())
    }

    async fn count_sessions(&self, now: Timestamp) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at > $1")
            .bind(micros(now))
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(n.max(0) as u64)
    }
}

/// What the listener wakes; weak, so that it stops with the store.
struct Signals {
    outbox: Weak<Notify>,
    deliveries: Weak<HashMap<Channel, Arc<Notify>>>,
}

impl Signals {
    /// Wakes what `notification` is about (everything for `None`: whatever was committed
    /// while not listening). False once the store is gone.
    fn wake(&self, notification: Option<&sqlx::postgres::PgNotification>) -> bool {
        let (Some(outbox), Some(deliveries)) = (self.outbox.upgrade(), self.deliveries.upgrade())
        else {
            return false;
        };
        match notification {
            Some(n) if n.channel() == OUTBOX_CHANNEL => outbox.notify_one(),
            Some(n) => {
                if let Some(signal) = Channel::parse(n.payload()).and_then(|c| deliveries.get(&c)) {
                    signal.notify_one();
                }
            }
            None => {
                outbox.notify_one();
                deliveries.values().for_each(|d| d.notify_one());
            }
        }
        true
    }
}

/// Listens on `chime_outbox` and `chime_deliveries` and wakes the relay or the channel's
/// delivery workers on every notification, and all of them once after each (re)connection
/// (whatever was committed while it was not listening), until the store is dropped or its
/// pool closed.
async fn listen_for_others(pool: PgPool, signals: Signals, mut stop: oneshot::Receiver<()>) {
    let mut missed = true;
    loop {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener
                .listen_all([OUTBOX_CHANNEL, DELIVERY_CHANNEL])
                .await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let listener = tokio::select! {
            _ = &mut stop => return,
            listener = listening => listener,
        };
        let mut listener = match listener {
            Ok(listener) => listener,
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "cannot listen for other processes' writes; retrying");
                tokio::select! {
                    _ = &mut stop => return,
                    () = tokio::time::sleep(LISTEN_RETRY) => continue,
                }
            }
        };
        loop {
            if missed {
                if !signals.wake(None) {
                    return;
                }
                missed = false;
            }
            let received = tokio::select! {
                _ = &mut stop => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    if !signals.wake(Some(&notification)) {
                        return;
                    }
                }
                // The connection was lost; `try_recv` reconnects next time, and whatever
                // was notified meanwhile is lost: wake everything once.
                Ok(None) => missed = true,
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "lost the listener for other processes' writes; reconnecting");
                    missed = true;
                    break;
                }
            }
        }
    }
}
