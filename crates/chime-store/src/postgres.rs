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
//! - Each `execute_task` is also kept as a handoff (migration 0009) until a notification
//!   instance records its deliveries ([`crate::DeliveryStore::record_handled`]); one nobody has
//!   recorded a few seconds after it fired is claimed by any instance under a lease
//!   ([`crate::OutboxStore::claim_handoffs`]), so a dead consumer's partitions do not hold
//!   their occurrences back until the broker moves them.
//! - Every transaction that writes to the outbox also sends `NOTIFY chime_outbox` (delivered at
//!   commit), and each store listens once its relay asks for the outbox signal, so a relay
//!   wakes on any instance's write, not only its own process's. A retried dead letter sends
//!   `NOTIFY chime_deliveries` with its channel, which wakes that channel's delivery workers
//!   in every process.
//! - Migrations are embedded, versioned, and run by [`PgStore::migrate`] (sqlx's migrator,
//!   under its advisory lock, so instances starting together migrate once), never implicitly.
//!
//! This file holds the pool, the migrations and the cross-process signals; each port's
//! implementation is a module of its own (`tasks`, `schedule`, `deliveries`, `outbox`,
//! `recipients`, `sessions`), as in `sqlite/`. Column conversions shared with SQLite are in
//! `crate::rows`.

use std::borrow::Cow;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
use chime_core::{NotificationId, TaskId, UserId};
use jiff::Timestamp;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions as _, Connection as _, Postgres, Row};
use tokio::sync::{oneshot, Notify};

mod deliveries;
mod occurrences;
mod outbox;
mod recipients;
mod reencrypt;
mod retention;
mod schedule;
mod sessions;
mod tasks;

use crate::rows::prelude::*;
use crate::wakeups::{Signals, Wakers, Wakeup};

/// How long a handoff recorded by a takeover is kept for its bus copy to be skipped (see
/// migration 0009): longer than a consumer takes to reach it after a rebalance; one that comes
/// later is recorded again, finding its deliveries there (no second delivery).
pub const HANDOFF_RECORDED_KEPT: Duration = Duration::from_secs(3600);

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
    (
        4,
        "profiles",
        include_str!("postgres/migrations/0004_profiles.sql"),
    ),
    (
        5,
        "occurrences",
        include_str!("postgres/migrations/0005_occurrences.sql"),
    ),
    (
        6,
        "calendar feeds",
        include_str!("postgres/migrations/0006_calendar_feeds.sql"),
    ),
    (
        7,
        "destinations",
        include_str!("postgres/migrations/0007_destinations.sql"),
    ),
    (
        8,
        "task counts",
        include_str!("postgres/migrations/0008_task_counts.sql"),
    ),
    (
        9,
        "handoffs",
        include_str!("postgres/migrations/0009_handoffs.sql"),
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

/// What every connection sets on the server first, so that a process cut off from the
/// database (a network partition, a frozen pod) holds nothing that others wait for:
/// - `idle_in_transaction_session_timeout`: a transaction whose client went silent between
///   statements is ended after 5 s, releasing the schedule rows and deliveries it had claimed
///   `FOR UPDATE`, which other instances then claim (its client's commit fails, so nothing is
///   done twice). Chime's transactions never wait on anything outside the database.
/// - `tcp_keepalives_*` and `tcp_user_timeout`: the server notices a silent client's TCP
///   connection within about 10 s, idle or while sending it a result, instead of the
///   operating system's default of two hours.
///
/// The failover issue's partition drill (`scripts/partition-drill`) is what checks these.
const SESSION_SETTINGS: &str = "SELECT \
     set_config('idle_in_transaction_session_timeout', '5s', false), \
     set_config('tcp_keepalives_idle', '5', false), \
     set_config('tcp_keepalives_interval', '1', false), \
     set_config('tcp_keepalives_count', '5', false), \
     set_config('tcp_user_timeout', '10000', false)";

/// Runs [`SESSION_SETTINGS`] on a new connection (the pool's `after_connect`).
fn apply_session_settings(
    connection: &mut sqlx::PgConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, std::result::Result<(), sqlx::Error>> {
    Box::pin(async move {
        sqlx::Executor::execute(connection, SESSION_SETTINGS)
            .await
            .map(|_| ())
    })
}

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
    /// Who this instance's outbox claims belong to (unique per store, so per process).
    claimer: Arc<str>,
    /// The relay's and the delivery workers' signals, and the listener that wakes them.
    wakers: Wakers,
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
            .after_connect(apply_session_settings)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(Self::from_pool(pool))
    }

    /// The store on an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            claimer: uuid::Uuid::now_v7().to_string().into(),
            wakers: Wakers::new(),
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

    /// What starts the listener for other processes' writes (see [`Wakers`]).
    fn listener(&self) -> impl FnOnce(Signals, oneshot::Receiver<()>) -> ListenFuture {
        let pool = self.pool.clone();
        move |signals, stop| Box::pin(listen_for_others(pool, signals, stop))
    }

    fn signal_if(&self, wrote_events: bool) {
        self.wakers.wrote_events(wrote_events);
    }
}

type ListenFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) fn map_err(e: sqlx::Error) -> Error {
    let retryable = match &e {
        // A protocol error is a connection that broke or answered nonsense (a proxy that
        // accepted with no server behind it says `unexpected response from SSLRequest`).
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
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

/// Appends `events` to the outbox, in order, keeps those with a handoff id as handoffs too
/// (see migration 0009), and notifies `chime_outbox` (at commit), in one statement. (A
/// data-modifying `WITH` runs whether or not the query reads it.)
async fn insert_outbox(tx: &mut Tx, events: &[OutboxEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = events.iter().map(|e| e.topic).collect();
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    let handoffs: Vec<Option<&str>> = events.iter().map(|e| e.handoff.as_deref()).collect();
    sqlx::query(
        "WITH inserted AS (
           INSERT INTO outbox (topic, key, payload)
           SELECT topic, key, payload
           FROM UNNEST($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY
             AS e (topic, key, payload, n)
           ORDER BY n
         ),
         handed AS (
           INSERT INTO handoffs (id, payload, at)
           SELECT id, payload, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
           FROM UNNEST($4::text[], $3::bytea[]) AS h (id, payload)
           WHERE id IS NOT NULL
           ON CONFLICT (id) DO NOTHING
         )
         SELECT pg_notify('chime_outbox', '')",
    )
    .bind(topics)
    .bind(keys)
    .bind(payloads)
    .bind(handoffs)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// What a notification is about.
fn wakeup(notification: &sqlx::postgres::PgNotification) -> Wakeup<'_> {
    if notification.channel() == OUTBOX_CHANNEL {
        Wakeup::Outbox
    } else {
        Wakeup::Channel(notification.payload())
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
                if !signals.wake(Wakeup::Everything) {
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
                    if !signals.wake(wakeup(&notification)) {
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
