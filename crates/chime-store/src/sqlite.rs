//! The SQLite adapter: the embedded default, one file in the data directory.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a few reader
//! connections, all in WAL mode so reads never wait for writes. Every call runs on tokio's
//! blocking pool, never on the async workers. Instants are stored as microseconds since the
//! Unix epoch, so ordering and range scans are integer comparisons.
//!
//! Durability: `synchronous=NORMAL` (the default) survives a process crash, which is what a
//! killed `chime serve` is; `FULL` also survives power loss at the cost of an fsync per commit.
//!
//! Events: each write records the events it makes in its own transaction, in the `outbox`
//! table for the relay to publish, or, when the bus log shares this file, straight into the log
//! through an [`OutboxSink`] (the embedded default; see `chime_bus::log::LogBus::open_shared`).
//!
//! This file holds the connection, the schema and the write path; each port's implementation
//! is a module of its own (`tasks`, `schedule`, `deliveries`, `outbox`, `recipients`,
//! `sessions`), so a method added to a port touches one small file here and one in
//! `postgres/`. Column conversions shared with PostgreSQL are in `crate::rows`.

use std::cell::RefCell;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
use chime_core::{NotificationId, TaskId, UserId};
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::Notify;

mod deliveries;
mod occurrences;
mod outbox;
mod recipients;
mod reencrypt;
pub mod retention;
mod schedule;
mod sessions;
mod tasks;
mod writer;

use crate::rows::prelude::*;

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
    /// Where events go instead of the outbox table, once set (see [`OutboxSink`]).
    sink: Arc<OnceLock<Arc<dyn OutboxSink>>>,
}

/// A write of another component's tables, run in one of the store writer's transactions
/// ([`SqliteStore::write_shared`]).
pub type SharedWrite = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

/// Where a store sends the events its writes make, in the transaction that makes them, when
/// something in the same file takes them directly: the embedded bus log. The events then never
/// touch the `outbox` table, and no relay copies them: one row per event instead of three
/// writes (outbox insert, log append, outbox delete) in three transactions.
pub trait OutboxSink: Send + Sync + 'static {
    /// Appends `events` inside the writing transaction `tx`; returns the topics written to.
    fn append(&self, tx: &Connection, events: &[OutboxEvent]) -> rusqlite::Result<Vec<String>>;

    /// The transactions that appended to `topics` have committed.
    fn committed(&self, topics: &[String]);
}

/// The writer's transaction as a write sees it: SQLite's connection inside the group's
/// transaction, and where the write's events go.
pub struct Tx<'a> {
    conn: &'a Connection,
    sink: Option<&'a dyn OutboxSink>,
    /// Topics appended to through the sink in this group, to wake after its commit.
    topics: RefCell<Vec<String>>,
}

impl Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Tx<'_> {
    /// Records `events` beside the write: through the sink when there is one, else into the
    /// outbox for the relay.
    fn publish(&self, events: &[OutboxEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if let Some(sink) = self.sink {
            let topics = sink.append(self.conn, events).map_err(map_err)?;
            let mut woken = self.topics.borrow_mut();
            for topic in topics {
                if !woken.contains(&topic) {
                    woken.push(topic);
                }
            }
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO outbox (topic, key, payload) VALUES (?1, ?2, ?3)")
            .map_err(map_err)?;
        for e in events {
            stmt.execute(params![e.topic, e.key, e.payload])
                .map_err(map_err)?;
        }
        Ok(())
    }
}

/// The schema, one file per version (`PRAGMA user_version` counts the ones applied). A
/// migration, once released, is never edited: a change is a new file.
const MIGRATIONS: &[&str] = &[
    include_str!("sqlite/migrations/0001_initial.sql"),
    include_str!("sqlite/migrations/0002_delivery_targets.sql"),
    include_str!("sqlite/migrations/0003_sessions.sql"),
    include_str!("sqlite/migrations/0004_profiles.sql"),
    include_str!("sqlite/migrations/0005_occurrences.sql"),
    include_str!("sqlite/migrations/0006_calendar_feeds.sql"),
    include_str!("sqlite/migrations/0007_destinations.sql"),
    include_str!("sqlite/migrations/0008_task_counts.sql"),
];

/// The schema version (`PRAGMA user_version`) this build migrates a store file to; a file with
/// a newer one is refused. `chime restore` and `chime doctor` check backups against it.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

impl SqliteStore {
    /// Opens (creating and migrating when needed) the store at `path`.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<Self> {
        let mut writer = connect(path, options, Role::Writer)?;
        migrate(&mut writer)?;
        let sink = Arc::new(OnceLock::new());
        let writer = writer::Writer::spawn(writer, Arc::clone(&sink))?;
        let readers = (0..options.readers.max(1))
            .map(|_| connect(path, options, Role::Reader).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                readers,
                next_reader: AtomicUsize::new(0),
                outbox_signal: Arc::new(Notify::new()),
                sink,
            }),
        })
    }

    /// From now on, every write's events go to `sink` in the write's own transaction instead
    /// of the outbox table (what is already in the outbox is still there for the relay).
    /// Set once; a second sink is refused.
    pub fn send_events_to(&self, sink: Arc<dyn OutboxSink>) -> Result<()> {
        self.inner
            .sink
            .set(sink)
            .map_err(|_| Error::Storage("the store already sends its events elsewhere".into()))
    }

    /// Runs `job` on the store's writer, inside one of its group transactions, for another
    /// component's tables in the same file (the embedded bus log's offsets and retention).
    /// Returns once that transaction has committed.
    pub async fn write_shared(&self, job: SharedWrite) -> Result<()> {
        self.write(move |tx| job(tx).map_err(map_err)).await
    }

    /// Runs `f` in an IMMEDIATE transaction on the writer and commits it (with whatever
    /// other writes queued meanwhile: see [`writer`]).
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    /// Like [`write`](Self::write), then wakes the relay if `wrote_events` says the
    /// transaction's result put anything in the outbox.
    async fn write_with_events<T, F>(&self, wrote_events: fn(&T) -> bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let value = self.write(f).await?;
        // With a sink, the events went to it, and it wakes its readers itself.
        if wrote_events(&value) && self.inner.sink.get().is_none() {
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

/// Which connection `connect` opens: the writer gets the big page cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

fn connect(path: &Path, options: &SqliteOptions, role: Role) -> Result<Connection> {
    let conn = Connection::open(path).map_err(map_err)?;
    let synchronous = match options.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    enable_wal(&conn)?;
    // The writer's page cache is 64 MiB instead of 2: a burst's claims, inbox rows and log
    // records touch more pages than 2 MiB holds, and each miss is a read from the OS (readers
    // keep the default: the OS caches the file for them, and five big caches would cost a
    // quarter of the memory budget). Temporary data in memory: every write of a group runs in
    // a savepoint, whose journal of the pages it changes would otherwise spill to a file.
    let cache_kib = if role == Role::Writer { 65_536 } else { 2_000 };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA temp_store = MEMORY;"
    ))
    .map_err(map_err)?;
    // Every statement the writer runs stays prepared (there are about a hundred).
    conn.set_prepared_statement_cache_capacity(256);
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

fn insert_outbox(tx: &Tx<'_>, events: &[OutboxEvent]) -> Result<()> {
    tx.publish(events)
}
