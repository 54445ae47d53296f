//! The SQLite adapter: the embedded default, one file in the data directory.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a few reader
//! connections, all in WAL mode so reads never wait for writes. Every call runs on tokio's
//! blocking pool, never on the async workers. Instants are stored as microseconds since the
//! Unix epoch, so ordering and range scans are integer comparisons.
//!
//! Durability: `synchronous=NORMAL` (the default) survives a process crash, which is what a
//! killed `chime serve` is; `FULL` also survives power loss at the cost of an fsync per commit.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
use chime_core::{NotificationId, TaskId, UserId};
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::Notify;

mod reencrypt;
mod writer;

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

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Durable against a process crash (WAL default).
    #[default]
    Normal,
    /// Also durable against power loss.
    Full,
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Reader connections beside the one writer.
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            readers: 4,
        }
    }
}

/// The store on one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: writer::Writer,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    outbox_signal: Arc<Notify>,
}

const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    r#"
-- Deliveries gain a target (one push delivery per subscription), a pending state with retry
-- bookkeeping and a lease, and the provider's message id.
CREATE TABLE deliveries_v2 (
    task_id          TEXT NOT NULL,
    due_at           INTEGER NOT NULL,
    channel          TEXT NOT NULL,
    target           TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    detail           TEXT,
    provider_id      TEXT,
    message          TEXT,
    first_attempt_at INTEGER,
    next_attempt_at  INTEGER,
    leased_until     INTEGER,
    PRIMARY KEY (task_id, due_at, channel, target)
) WITHOUT ROWID;
INSERT INTO deliveries_v2 (task_id, due_at, channel, target, user_id, outcome, attempts, at, detail)
    SELECT task_id, due_at, channel, '', user_id, outcome, attempts, at, detail FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v2 RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (channel, next_attempt_at) WHERE outcome = 'pending';
CREATE INDEX deliveries_pending_by_task ON deliveries (user_id, task_id) WHERE outcome = 'pending';

CREATE TABLE history_deliveries_v2 (
    task_id     TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    detail      TEXT,
    provider_id TEXT,
    PRIMARY KEY (task_id, due_at, channel, target)
) WITHOUT ROWID;
INSERT INTO history_deliveries_v2 (task_id, due_at, channel, target, outcome, attempts, at, detail)
    SELECT task_id, due_at, channel, '', outcome, attempts, at, detail FROM history_deliveries;
DROP TABLE history_deliveries;
ALTER TABLE history_deliveries_v2 RENAME TO history_deliveries;

CREATE TABLE push_subscriptions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    endpoint   TEXT NOT NULL UNIQUE,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

CREATE TABLE webhooks (
    user_id    TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- The web role's browser sessions, by a hash of their id (the cookie's value is not kept).
CREATE TABLE sessions (
    id_hash           TEXT PRIMARY KEY,
    csrf              TEXT NOT NULL,
    user_id           TEXT,
    access_token      TEXT,
    access_expires_at INTEGER,
    pending_state     TEXT,
    pending_nonce     TEXT,
    pending_verifier  TEXT,
    pending_return_to TEXT,
    expires_at        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
"#,
];

/// The schema version (`PRAGMA user_version`) this build migrates a store file to; a file with
/// a newer one is refused. `chime restore` and `chime doctor` check backups against it.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

impl SqliteStore {
    /// Opens (creating and migrating when needed) the store at `path`.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<Self> {
        let mut writer = connect(path, options)?;
        migrate(&mut writer)?;
        let writer = writer::Writer::spawn(writer)?;
        let readers = (0..options.readers.max(1))
            .map(|_| connect(path, options).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                readers,
                next_reader: AtomicUsize::new(0),
                outbox_signal: Arc::new(Notify::new()),
            }),
        })
    }

    /// Runs `f` in an IMMEDIATE transaction on the writer and commits it (with whatever
    /// other writes queued meanwhile: see [`writer`]).
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    /// Like [`write`](Self::write), then wakes the relay if `wrote_events` says the
    /// transaction's result put anything in the outbox.
    async fn write_with_events<T, F>(&self, wrote_events: fn(&T) -> bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let value = self.write(f).await?;
        if wrote_events(&value) {
            self.inner.outbox_signal.notify_one();
        }
        Ok(value)
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            f(&conn)
        })
        .await
        .map_err(|e| Error::Storage(Box::new(e)))?
    }
}

fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection> {
    let conn = Connection::open(path).map_err(map_err)?;
    let synchronous = match options.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    enable_wal(&conn)?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON;"
    ))
    .map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Checkpoint every 32 MiB of WAL instead of 4: a burst rewrites the same pages many times,
    // and each checkpoint copies a page once however often it changed.
    conn.pragma_update(None, "wal_autocheckpoint", 8192)
        .map_err(map_err)?;
    Ok(conn)
}

/// How long a connection waits for another's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Switches the file to WAL (a no-op once it is). SQLite does not apply the busy timeout to
/// this switch: a second process opening a new file at the same moment gets "database is
/// locked" at once, so retry for as long as the busy timeout would have waited.
fn enable_wal(conn: &Connection) -> Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(map_err(e)),
        }
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    // One IMMEDIATE transaction, the version read inside it: two processes opening a new file
    // at once migrate one after the other instead of both creating the tables.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    let current: usize = tx
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(map_err)?
        .try_into()
        .map_err(|_| Error::Corrupt("negative schema version".into()))?;
    if current > MIGRATIONS.len() {
        return Err(Error::Corrupt(format!(
            "the database has schema version {current}, newer than this build knows ({}): \
             upgrade chime",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql).map_err(map_err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(map_err)?;
    }
    tx.commit().map_err(map_err)
}

fn map_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DiskFull | ReadOnly | SystemIoFailure | CannotOpen | DatabaseBusy) => {
            Error::Unavailable(Box::new(e))
        }
        _ => Error::Storage(Box::new(e)),
    }
}

fn insert_outbox(tx: &Transaction<'_>, events: &[OutboxEvent]) -> Result<()> {
    let mut stmt = tx
        .prepare_cached("INSERT INTO outbox (topic, key, payload) VALUES (?1, ?2, ?3)")
        .map_err(map_err)?;
    for e in events {
        stmt.execute(params![e.topic, e.key, e.payload])
            .map_err(map_err)?;
    }
    Ok(())
}

/// The columns of `tasks` in the order [`task_from_row`] reads them.
const TASK_COLUMNS: &str = "id, user_id, version, body, created_at, modified_at";

type TaskRow = (String, String, i64, String, i64, i64);

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn task_from_row((id, user, version, body, created, modified): TaskRow) -> Result<TaskRecord> {
    Ok(TaskRecord {
        id: parse_id(&id)?,
        user_id: parse_user(&user)?,
        version: version as u64,
        body: parse_json(&body)?,
        created_at: instant(created)?,
        modified_at: instant(modified)?,
    })
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<()> {
        let task = task.clone();
        self.write_with_events(
            |_| true,
            move |tx| {
                tx.prepare_cached(
                    "INSERT INTO tasks (id, user_id, version, body, created_at, modified_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        task.id.to_string(),
                        task.user_id.as_str(),
                        task.version as i64,
                        task.body.to_string(),
                        micros(task.created_at),
                        micros(task.modified_at),
                    ])
                })
                .map_err(map_err)?;
                insert_outbox(tx, &[event])
            },
        )
        .await
    }

    async fn update_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<bool> {
        let task = task.clone();
        self.write_with_events(
            |updated| *updated,
            move |tx| {
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM tasks WHERE id = ?1 AND user_id = ?2",
                        params![task.id.to_string(), task.user_id.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                match stored {
                    None => return Ok(false),
                    Some(v) if v as u64 + 1 != task.version => return Err(Error::Conflict),
                    Some(_) => {}
                }
                tx.execute(
                    "UPDATE tasks SET version = ?2, body = ?3, modified_at = ?4 WHERE id = ?1",
                    params![
                        task.id.to_string(),
                        task.version as i64,
                        task.body.to_string(),
                        micros(task.modified_at),
                    ],
                )
                .map_err(map_err)?;
                insert_outbox(tx, &[event])?;
                Ok(true)
            },
        )
        .await
    }

    async fn delete_task(
        &self,
        user: &UserId,
        id: TaskId,
        version: u64,
        event: OutboxEvent,
    ) -> Result<bool> {
        let user = user.clone();
        self.write_with_events(
            |deleted| *deleted,
            move |tx| {
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM tasks WHERE id = ?1 AND user_id = ?2",
                        params![id.to_string(), user.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                match stored {
                    None => return Ok(false),
                    Some(v) if v as u64 != version => return Err(Error::Conflict),
                    Some(_) => {}
                }
                tx.execute("DELETE FROM tasks WHERE id = ?1", params![id.to_string()])
                    .map_err(map_err)?;
                insert_outbox(tx, &[event])?;
                Ok(true)
            },
        )
        .await
    }

    async fn get_task(&self, user: &UserId, id: TaskId) -> Result<Option<TaskRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1 AND user_id = ?2"
                ))
                .and_then(|mut s| {
                    s.query_row(params![id.to_string(), user.as_str()], task_row)
                        .optional()
                })
                .map_err(map_err)?;
            row.map(task_from_row).transpose()
        })
        .await
    }

    async fn task_by_id(&self, id: TaskId) -> Result<Option<TaskRecord>> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))
                .and_then(|mut s| s.query_row(params![id.to_string()], task_row).optional())
                .map_err(map_err)?;
            row.map(task_from_row).transpose()
        })
        .await
    }

    async fn list_tasks(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        let user = user.clone();
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = ?1 AND id > ?2
                     ORDER BY id LIMIT ?3"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![user.as_str(), after, limit as i64], task_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            rows.into_iter().map(task_from_row).collect()
        })
        .await
    }

    async fn count_tasks(&self, user: &UserId) -> Result<u64> {
        let user = user.clone();
        self.read(move |conn| {
            // Answered from the `tasks_by_user` index alone.
            let count: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM tasks WHERE user_id = ?1")
                .and_then(|mut stmt| stmt.query_row(params![user.as_str()], |row| row.get(0)))
                .map_err(map_err)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }

    async fn record_fired(&self, fired: &[FiredOccurrence]) -> Result<()> {
        let fired = fired.to_vec();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO history
                     (task_id, due_at, user_id, seq, fired_at, late, skipped, coalesced)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(map_err)?;
            for f in &fired {
                stmt.execute(params![
                    f.occurrence.task_id.to_string(),
                    micros(f.occurrence.due_at),
                    f.user_id.as_str(),
                    f.seq,
                    micros(f.fired_at),
                    f.late,
                    f.skipped,
                    f.coalesced,
                ])
                .map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn record_delivery_states(&self, states: &[DeliveryState]) -> Result<()> {
        let states = states.to_vec();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO history_deliveries
                     (task_id, due_at, channel, target, outcome, attempts, at, detail, provider_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (task_id, due_at, channel, target) DO UPDATE SET
                       outcome = excluded.outcome, attempts = excluded.attempts,
                       at = excluded.at, detail = excluded.detail,
                       provider_id = excluded.provider_id
                     WHERE excluded.attempts >= history_deliveries.attempts",
                )
                .map_err(map_err)?;
            for s in &states {
                stmt.execute(params![
                    s.occurrence.task_id.to_string(),
                    micros(s.occurrence.due_at),
                    s.status.channel.as_str(),
                    s.status.target,
                    s.status.outcome.as_str(),
                    s.status.attempts,
                    micros(s.status.at),
                    s.status.detail,
                    s.status.provider_id,
                ])
                .map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn history(
        &self,
        user: &UserId,
        id: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let user = user.clone();
        let before = before.map(micros).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let id = id.to_string();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT due_at, seq, fired_at, late, skipped, coalesced FROM history
                     WHERE task_id = ?1 AND user_id = ?2 AND due_at < ?3
                     ORDER BY due_at DESC LIMIT ?4",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![id, user.as_str(), before, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, bool>(4)?,
                        r.get::<_, u32>(5)?,
                    ))
                })
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            let mut deliveries = conn
                .prepare_cached(
                    "SELECT channel, target, outcome, attempts, at, detail, provider_id
                     FROM history_deliveries
                     WHERE task_id = ?1 AND due_at = ?2 ORDER BY channel, target",
                )
                .map_err(map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for (due, seq, fired, late, skipped, coalesced) in rows {
                let statuses = deliveries
                    .query_map(params![id, due], status_row)
                    .map_err(map_err)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_err)?
                    .into_iter()
                    .map(status_from_row)
                    .collect::<Result<Vec<_>>>()?;
                out.push(HistoryEntry {
                    due_at: instant(due)?,
                    seq,
                    fired_at: instant(fired)?,
                    late,
                    skipped,
                    coalesced,
                    deliveries: statuses,
                });
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> Result<()> {
        let changes = changes.to_vec();
        self.write(move |tx| {
            let mut set = tx
                .prepare_cached(
                    "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (task_id) DO UPDATE SET
                       user_id = excluded.user_id, version = excluded.version,
                       body = excluded.body, due_at = excluded.due_at, seq = excluded.seq
                     WHERE excluded.version > schedule.version",
                )
                .map_err(map_err)?;
            for change in &changes {
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
                        let body = due.map(|_| body.to_string());
                        set.execute(params![
                            task_id.to_string(),
                            user_id.as_str(),
                            *version as i64,
                            body,
                            due,
                            seq
                        ])
                        .map_err(map_err)?;
                    }
                    ScheduleChange::Delete { task_id, version } => {
                        // A tombstone: keeps the version, drops the body and due instant.
                        tx.execute(
                            "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                             VALUES (?1, '', ?2, NULL, NULL, 0)
                             ON CONFLICT (task_id) DO UPDATE SET
                               version = excluded.version, body = NULL, due_at = NULL
                             WHERE excluded.version > schedule.version",
                            params![task_id.to_string(), *version as i64],
                        )
                        .map_err(map_err)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        self.read(|conn| {
            let due: Option<i64> = conn
                .query_row(
                    "SELECT MIN(due_at) FROM schedule WHERE due_at IS NOT NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            due.map(instant).transpose()
        })
        .await
    }

    async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> Result<usize> {
        self.write_with_events(
            |fired| *fired > 0,
            move |tx| {
                // The fence: each row comes with its task's current version (NULL once the
                // task is deleted), read in this transaction, so a change that committed before
                // the claim is seen even if its event has not reached the schedule yet.
                let due = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT s.task_id, s.user_id, s.version, s.body, s.due_at, s.seq,
                                    t.version
                             FROM schedule s LEFT JOIN tasks t ON t.id = s.task_id
                             WHERE s.due_at IS NOT NULL AND s.due_at <= ?1
                             ORDER BY s.due_at LIMIT ?2",
                        )
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map(params![micros(now), max as i64], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, u32>(5)?,
                                r.get::<_, Option<i64>>(6)?,
                            ))
                        })
                        .map_err(map_err)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(map_err)?;
                    rows
                };
                let mut advance = tx
                    .prepare_cached("UPDATE schedule SET due_at = ?2, seq = ?3 WHERE task_id = ?1")
                    .map_err(map_err)?;
                let mut finish = tx
                    .prepare_cached(
                        "UPDATE schedule SET due_at = NULL, body = NULL WHERE task_id = ?1",
                    )
                    .map_err(map_err)?;
                let mut fired = 0;
                for (task_id, user_id, version, body, due_at, seq, current) in due {
                    if current != Some(version) {
                        // Stale: the task was deleted or changed after this row was written.
                        // The row becomes a tombstone at its version; the change's own event
                        // brings the task's current state (if any) when it arrives.
                        finish.execute(params![task_id]).map_err(map_err)?;
                        continue;
                    }
                    fired += 1;
                    let row = ScheduledTask {
                        task_id: parse_id(&task_id)?,
                        user_id: parse_user(&user_id)?,
                        version: version as u64,
                        body: parse_json(&body)?,
                        due_at: instant(due_at)?,
                        seq,
                    };
                    let decision = fire(&row);
                    insert_outbox(tx, &decision.events)?;
                    match decision.next {
                        Some((at, seq)) => advance.execute(params![task_id, micros(at), seq]),
                        None => finish.execute(params![task_id]),
                    }
                    .map_err(map_err)?;
                }
                Ok(fired)
            },
        )
        .await
    }

    async fn scheduled(&self, task_id: TaskId) -> Result<Option<ScheduledTask>> {
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT user_id, version, body, due_at, seq FROM schedule
                     WHERE task_id = ?1 AND due_at IS NOT NULL",
                    params![task_id.to_string()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, u32>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            row.map(|(user, version, body, due, seq)| {
                Ok(ScheduledTask {
                    task_id,
                    user_id: parse_user(&user)?,
                    version: version as u64,
                    body: parse_json(&body)?,
                    due_at: instant(due)?,
                    seq,
                })
            })
            .transpose()
        })
        .await
    }
}

/// `channel, target, outcome, attempts, at, detail, provider_id`.
type StatusRow = (
    String,
    String,
    String,
    u32,
    i64,
    Option<String>,
    Option<String>,
);

fn status_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatusRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn status_from_row(
    (channel, target, outcome, attempts, at, detail, provider_id): StatusRow,
) -> Result<DeliveryStatus> {
    Ok(DeliveryStatus {
        channel: parse_channel(&channel)?,
        target,
        outcome: parse_outcome(&outcome)?,
        attempts,
        at: instant(at)?,
        detail,
        provider_id,
    })
}

type InboxRow = (String, String, String, String, i64, i64, bool);

fn inbox_from_row((id, user, task, name, due, created, read): InboxRow) -> Result<InboxItem> {
    Ok(InboxItem {
        id: parse_id(&id)?,
        user_id: parse_user(&user)?,
        task_id: parse_id(&task)?,
        task_name: name,
        due_at: instant(due)?,
        created_at: instant(created)?,
        read,
    })
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn record_deliveries(&self, writes: &[DeliveryWrite]) -> Result<Vec<usize>> {
        let writes = writes.to_vec();
        self.write_with_events(
            |new: &Vec<usize>| !new.is_empty(),
            move |tx| {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO deliveries
                     (task_id, due_at, channel, target, user_id, outcome, attempts, at, detail,
                      provider_id, message, first_attempt_at, next_attempt_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                    )
                    .map_err(map_err)?;
                let mut inbox = tx
                .prepare_cached(
                    "INSERT INTO inbox (id, user_id, task_id, task_name, due_at, created_at, read)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(map_err)?;
                let mut new = Vec::new();
                for (i, w) in writes.iter().enumerate() {
                    let pending = w.status.outcome == DeliveryOutcome::Pending;
                    let inserted = insert
                        .execute(params![
                            w.occurrence.task_id.to_string(),
                            micros(w.occurrence.due_at),
                            w.status.channel.as_str(),
                            w.status.target,
                            w.user_id.as_str(),
                            w.status.outcome.as_str(),
                            w.status.attempts,
                            micros(w.status.at),
                            w.status.detail,
                            w.status.provider_id,
                            w.message.as_ref().map(ToString::to_string),
                            pending.then(|| micros(w.status.at)),
                        ])
                        .map_err(map_err)?;
                    if inserted == 0 {
                        continue;
                    }
                    if let Some(item) = &w.inbox {
                        inbox
                            .execute(params![
                                item.id.to_string(),
                                item.user_id.as_str(),
                                item.task_id.to_string(),
                                item.task_name,
                                micros(item.due_at),
                                micros(item.created_at),
                                item.read,
                            ])
                            .map_err(map_err)?;
                    }
                    if let Some(event) = &w.event {
                        insert_outbox(tx, std::slice::from_ref(event))?;
                    }
                    new.push(i);
                }
                Ok(new)
            },
        )
        .await
    }

    async fn inbox(
        &self,
        user: &UserId,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<Vec<InboxItem>> {
        let user = user.clone();
        // Ids are time-ordered; "ntf_g" sorts after every "ntf_<hex>".
        let before = before.map_or_else(|| "ntf_g".to_owned(), |b| b.to_string());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, user_id, task_id, task_name, due_at, created_at, read FROM inbox
                     WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![user.as_str(), before, limit as i64], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<InboxRow>>>()
                .map_err(map_err)?;
            rows.into_iter().map(inbox_from_row).collect()
        })
        .await
    }

    async fn mark_read(&self, user: &UserId, ids: &[NotificationId]) -> Result<u64> {
        let user = user.clone();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE inbox SET read = 1 WHERE id = ?1 AND user_id = ?2 AND read = 0",
                )
                .map_err(map_err)?;
            let mut changed = 0;
            for id in &ids {
                changed += stmt.execute(params![id, user.as_str()]).map_err(map_err)? as u64;
            }
            Ok(changed)
        })
        .await
    }

    async fn unread_count(&self, user: &UserId) -> Result<u64> {
        let user = user.clone();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM inbox WHERE user_id = ?1 AND read = 0",
                params![user.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        channel: Channel,
        now: Timestamp,
        lease_until: Timestamp,
        max: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.write(move |tx| {
            let rows = tx
                .prepare_cached(
                    "SELECT task_id, due_at, target, user_id, attempts, first_attempt_at, message
                     FROM deliveries
                     WHERE outcome = 'pending' AND channel = ?1 AND next_attempt_at <= ?2
                       AND (leased_until IS NULL OR leased_until <= ?2)
                     ORDER BY next_attempt_at LIMIT ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![channel.as_str(), micros(now), max as i64], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, u32>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, Option<String>>(6)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_err)?;
            let mut lease = tx
                .prepare_cached(
                    "UPDATE deliveries SET leased_until = ?5
                     WHERE task_id = ?1 AND due_at = ?2 AND channel = ?3 AND target = ?4",
                )
                .map_err(map_err)?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (task_id, due_at, target, user, attempts, first, message) in rows {
                lease
                    .execute(params![
                        task_id,
                        due_at,
                        channel.as_str(),
                        target,
                        micros(lease_until)
                    ])
                    .map_err(map_err)?;
                claimed.push(ClaimedDelivery {
                    key: DeliveryKey {
                        occurrence: OccurrenceKey {
                            task_id: parse_id(&task_id)?,
                            due_at: instant(due_at)?,
                        },
                        channel,
                        target,
                    },
                    user_id: parse_user(&user)?,
                    attempts,
                    first_attempt_at: instant(first.unwrap_or(due_at))?,
                    message: parse_json(message.as_deref().unwrap_or("null"))?,
                    lease_until,
                });
            }
            Ok(claimed)
        })
        .await
    }

    async fn next_delivery_at(&self, channel: Channel) -> Result<Option<Timestamp>> {
        self.read(move |conn| {
            let at: Option<i64> = conn
                .query_row(
                    "SELECT MIN(MAX(next_attempt_at, COALESCE(leased_until, 0))) FROM deliveries
                     WHERE outcome = 'pending' AND channel = ?1",
                    params![channel.as_str()],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            at.map(instant).transpose()
        })
        .await
    }

    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        lease_until: Timestamp,
        at: Timestamp,
        result: AttemptResult,
        event: Option<OutboxEvent>,
    ) -> Result<()> {
        let key = key.clone();
        let has_event = event.is_some();
        let signal = self.inner.outbox_signal.clone();
        self.write(move |tx| {
            let columns = AttemptColumns::from(result);
            let changed = tx
                .prepare_cached(
                    "UPDATE deliveries SET
                       outcome = ?5, attempts = attempts + 1, at = ?6, detail = ?7,
                       provider_id = ?8, next_attempt_at = ?9, leased_until = NULL,
                       message = CASE WHEN ?10 THEN message ELSE NULL END
                     WHERE task_id = ?1 AND due_at = ?2 AND channel = ?3 AND target = ?4
                       AND outcome = 'pending' AND leased_until = ?11",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        key.occurrence.task_id.to_string(),
                        micros(key.occurrence.due_at),
                        key.channel.as_str(),
                        key.target,
                        columns.outcome,
                        micros(at),
                        columns.detail,
                        columns.provider_id,
                        columns.next_attempt_at,
                        columns.keep_message,
                        micros(lease_until),
                    ])
                })
                .map_err(map_err)?;
            // A delivery no longer pending, or claimed again by another worker after this
            // claim's lease ran out, keeps its state and publishes nothing more.
            if changed == 1 {
                if let Some(event) = &event {
                    insert_outbox(tx, std::slice::from_ref(event))?;
                }
            }
            Ok(())
        })
        .await?;
        if has_event {
            signal.notify_one();
        }
        Ok(())
    }

    async fn retry_dead_letter(
        &self,
        user: &UserId,
        key: &DeliveryKey,
        now: Timestamp,
    ) -> Result<bool> {
        let (user, key) = (user.clone(), key.clone());
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE deliveries SET outcome = 'pending', next_attempt_at = ?6,
                       first_attempt_at = ?6, leased_until = NULL
                     WHERE task_id = ?1 AND due_at = ?2 AND channel = ?3 AND target = ?4
                       AND user_id = ?5 AND outcome = 'deadLettered' AND message IS NOT NULL",
                    params![
                        key.occurrence.task_id.to_string(),
                        micros(key.occurrence.due_at),
                        key.channel.as_str(),
                        key.target,
                        user.as_str(),
                        micros(now),
                    ],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn pending_deliveries(
        &self,
        user: &UserId,
        task: TaskId,
    ) -> Result<Vec<(OccurrenceKey, DeliveryStatus)>> {
        let user = user.clone();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT due_at, channel, target, outcome, attempts, at, detail, provider_id
                     FROM deliveries
                     WHERE user_id = ?1 AND task_id = ?2 AND outcome = 'pending'
                     ORDER BY due_at, channel, target",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![user.as_str(), task.to_string()], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            (
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get(6)?,
                                r.get(7)?,
                            ),
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<(i64, StatusRow)>>>()
                })
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(due, status)| {
                    Ok((
                        OccurrenceKey {
                            task_id: task,
                            due_at: instant(due)?,
                        },
                        status_from_row(status)?,
                    ))
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxRow>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT seq, topic, key, payload FROM outbox ORDER BY seq LIMIT ?1")
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![max as i64], |r| {
                    Ok(OutboxRow {
                        seq: r.get(0)?,
                        topic: r.get(1)?,
                        key: r.get(2)?,
                        payload: r.get(3)?,
                    })
                })
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            Ok(rows)
        })
        .await
    }

    async fn outbox_ack(&self, seqs: &[i64]) -> Result<()> {
        let seqs = seqs.to_vec();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached("DELETE FROM outbox WHERE seq = ?1")
                .map_err(map_err)?;
            for seq in seqs {
                stmt.execute(params![seq]).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn outbox_len(&self) -> Result<u64> {
        self.read(|conn| {
            conn.prepare_cached("SELECT count(*) FROM outbox")
                .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0)))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(map_err)
        })
        .await
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.inner.outbox_signal.clone()
    }
}

#[async_trait]
impl RecipientStore for SqliteStore {
    async fn put_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
    ) -> Result<PushSubscriptionRecord> {
        let sub = sub.clone();
        self.write(move |tx| {
            // A known endpoint keeps its id; its keys and owner are refreshed (a browser that
            // re-subscribes after sign-in as another user moves to that user).
            tx.execute(
                "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (endpoint) DO UPDATE SET
                   user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth",
                params![
                    sub.id,
                    sub.user_id.as_str(),
                    sub.endpoint,
                    sub.p256dh,
                    sub.auth,
                    micros(sub.created_at)
                ],
            )
            .map_err(map_err)?;
            let (id, created): (String, i64) = tx
                .query_row(
                    "SELECT id, created_at FROM push_subscriptions WHERE endpoint = ?1",
                    params![sub.endpoint],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(map_err)?;
            Ok(PushSubscriptionRecord {
                id,
                created_at: instant(created)?,
                ..sub
            })
        })
        .await
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscriptionRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, endpoint, p256dh, auth, created_at FROM push_subscriptions
                     WHERE user_id = ?1 ORDER BY created_at, id",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![user.as_str()], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(id, endpoint, p256dh, auth, created)| {
                    Ok(PushSubscriptionRecord {
                        id,
                        user_id: user.clone(),
                        endpoint,
                        p256dh,
                        auth,
                        created_at: instant(created)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn remove_push_subscription(&self, user: Option<&UserId>, id: &str) -> Result<bool> {
        let user = user.cloned();
        let id = id.to_owned();
        self.write(move |tx| {
            let changed = match &user {
                Some(user) => tx.execute(
                    "DELETE FROM push_subscriptions WHERE id = ?1 AND user_id = ?2",
                    params![id, user.as_str()],
                ),
                None => tx.execute("DELETE FROM push_subscriptions WHERE id = ?1", params![id]),
            }
            .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let e = endpoint.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO webhooks (user_id, url, secret, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET
                   url = excluded.url, secret = excluded.secret, created_at = excluded.created_at",
                params![e.user_id.as_str(), e.url, e.secret, micros(e.created_at)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn webhook(&self, user: &UserId) -> Result<Option<WebhookEndpoint>> {
        let user = user.clone();
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT url, secret, created_at FROM webhooks WHERE user_id = ?1",
                    params![user.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            row.map(|(url, secret, created)| {
                Ok(WebhookEndpoint {
                    user_id: user.clone(),
                    url,
                    secret,
                    created_at: instant(created)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn remove_webhook(&self, user: &UserId) -> Result<bool> {
        let user = user.clone();
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "DELETE FROM webhooks WHERE user_id = ?1",
                    params![user.as_str()],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }
}

const SESSION_COLUMNS: &str = "id_hash, csrf, user_id, access_token, access_expires_at, \
     pending_state, pending_nonce, pending_verifier, pending_return_to, expires_at";

type SessionRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    PendingRow,
    i64,
);

type PendingRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?),
        r.get(9)?,
    ))
}

fn pending_from_row((state, nonce, verifier, return_to): PendingRow) -> Option<PendingSignIn> {
    Some(PendingSignIn {
        state: state?,
        nonce: nonce?,
        verifier: verifier?,
        return_to: return_to?,
    })
}

fn session_from_row(
    (id_hash, csrf, user, token, token_expires, pending, expires): SessionRow,
) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash,
        csrf,
        user: user.as_deref().map(parse_user).transpose()?,
        access_token: token,
        access_expires_at: token_expires.map(instant).transpose()?,
        pending: pending_from_row(pending),
        expires_at: instant(expires)?,
    })
}

fn insert_session(tx: &Transaction<'_>, s: &SessionRecord) -> Result<()> {
    let pending = s.pending.as_ref();
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO sessions ({SESSION_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            s.id_hash,
            s.csrf,
            s.user.as_ref().map(UserId::as_str),
            s.access_token,
            s.access_expires_at.map(micros),
            pending.map(|p| &p.state),
            pending.map(|p| &p.nonce),
            pending.map(|p| &p.verifier),
            pending.map(|p| &p.return_to),
            micros(s.expires_at),
        ],
    )
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<()> {
        let session = session.clone();
        self.write(move |tx| insert_session(tx, &session)).await
    }

    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>> {
        let id_hash = id_hash.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = ?1 AND expires_at > ?2"
                ),
                params![id_hash, micros(now)],
                session_row,
            )
            .optional()
            .map_err(map_err)?
            .map(session_from_row)
            .transpose()
        })
        .await
    }

    async fn set_pending(
        &self,
        id_hash: &str,
        pending: &PendingSignIn,
        now: Timestamp,
    ) -> Result<bool> {
        let (id_hash, p) = (id_hash.to_owned(), pending.clone());
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE sessions SET pending_state = ?3, pending_nonce = ?4,
                       pending_verifier = ?5, pending_return_to = ?6
                     WHERE id_hash = ?1 AND expires_at > ?2",
                    params![
                        id_hash,
                        micros(now),
                        p.state,
                        p.nonce,
                        p.verifier,
                        p.return_to
                    ],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn take_pending(&self, id_hash: &str, now: Timestamp) -> Result<Option<PendingSignIn>> {
        let id_hash = id_hash.to_owned();
        // Read and clear in one write transaction: the one writer runs them in turn, so a
        // second caller finds it cleared.
        self.write(move |tx| {
            let pending = tx
                .query_row(
                    "SELECT pending_state, pending_nonce, pending_verifier, pending_return_to
                     FROM sessions
                     WHERE id_hash = ?1 AND expires_at > ?2 AND pending_state IS NOT NULL",
                    params![id_hash, micros(now)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(map_err)?
                .and_then(pending_from_row);
            if pending.is_some() {
                tx.execute(
                    "UPDATE sessions SET pending_state = NULL, pending_nonce = NULL,
                       pending_verifier = NULL, pending_return_to = NULL
                     WHERE id_hash = ?1",
                    params![id_hash],
                )
                .map_err(map_err)?;
            }
            Ok(pending)
        })
        .await
    }

    async fn replace_session(&self, old: Option<&str>, new: &SessionRecord) -> Result<()> {
        let (old, new) = (old.map(str::to_owned), new.clone());
        self.write(move |tx| {
            if let Some(old) = &old {
                tx.execute("DELETE FROM sessions WHERE id_hash = ?1", params![old])
                    .map_err(map_err)?;
            }
            insert_session(tx, &new)
        })
        .await
    }

    async fn remove_session(&self, id_hash: &str) -> Result<bool> {
        let id_hash = id_hash.to_owned();
        self.write(move |tx| {
            let changed = tx
                .execute("DELETE FROM sessions WHERE id_hash = ?1", params![id_hash])
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        self.write(move |tx| {
            let removed = tx
                .execute(
                    "DELETE FROM sessions WHERE expires_at <= ?1",
                    params![micros(now)],
                )
                .map_err(map_err)?;
            Ok(removed as u64)
        })
        .await
    }

    async fn count_sessions(&self, now: Timestamp) -> Result<u64> {
        self.read(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sessions WHERE expires_at > ?1",
                    params![micros(now)],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}
