//! The embedded bus: a durable log in SQLite, with in-process wake-ups.
//!
//! Why it is built this way:
//! - **In the store's file.** The embedded default keeps the log in the same SQLite file as
//!   the store (its tables are prefixed `bus_`, its schema version is in `bus_meta`), so one
//!   online backup of that file is a consistent picture of both: no event can be in the
//!   store's outbox and the log at once, or in neither, and consumer offsets never run ahead
//!   of the effects they stand for. It works on a file of its own just as well.
//! - **Durable before it returns.** `publish` appends a whole batch in one transaction (WAL
//!   mode) and returns after the commit, so a message that `publish` acknowledged survives a
//!   process crash (with [`Synchronous::Full`], also a power loss).
//! - **Kafka-shaped.** One partition (0) per topic, offsets from 0 that grow by one per message
//!   and survive restarts, consumer groups with committed next offsets. Roles written against
//!   this adapter keep working on Kafka.
//! - **No polling loops.** After a commit, `publish` wakes the subscriptions of the topics it
//!   wrote to through one [`Notify`] per subscription. `notify_one` keeps a permit when nobody
//!   waits, so a publish that lands between a poll's query and its wait is not missed.
//! - **Never blocks the runtime.** SQLite is blocking, so every call runs in
//!   `spawn_blocking`. There is one writer connection (SQLite allows one writer at a time
//!   anyway) and one reader connection, so polls are not queued behind a large publish (WAL
//!   lets them read concurrently), each behind a `std` mutex.
//! - **One writer per file.** In the embedded default the log shares its file with the store,
//!   and [`LogBus::open_shared`] runs the log's writes on the store's writer (whose group
//!   commit makes many transactions one commit) instead of a second writer connection that
//!   would wait for the store's locks; the store appends its events to the log in the
//!   transactions that make them ([`LogBus::append_in`]), so nothing is copied by a relay.
//! - **One member per group.** The log lives in one process, so a group has at most one live
//!   subscription per [`LogBus`]; a second one gets [`Error::GroupBusy`] until the first is
//!   dropped. Scaling a role out needs the Kafka adapter. (Two `LogBus` values on one file are
//!   safe for the data, as SQLite serialises the writers, but neither sees the other's
//!   members, and wake-ups do not cross between them.)
//! - **Retention is cheap and conservative.** A group is registered on a topic when it first
//!   subscribes. At most once per [`LogBusOptions::retention_interval`], a commit deletes the
//!   records that *every* registered group of a topic has committed. Consequences to know:
//!   topics no group has ever subscribed to keep all their records (a future subscriber reads
//!   them from the beginning); a group that subscribes to a topic for the first time starts at
//!   the oldest record still kept; and a group that stops committing (for example a group name
//!   that is no longer used) holds back retention on its topics until its row in
//!   `bus_group_offsets` is removed.

mod sql;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::Notify;

use crate::{Bus, Error, Message, Record, Result, Subscription};

/// The log's schema version, kept in `bus_meta` (`key = 'schema_version'`); `chime restore`
/// and `chime doctor` check backups against it.
pub const SCHEMA_VERSION: i64 = sql::SCHEMA_VERSION;

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous=NORMAL`: a committed publish survives a crash of the process; a power loss
    /// may lose the last transactions (never corrupts the file).
    #[default]
    Normal,
    /// `synchronous=FULL`: a committed publish also survives a power loss, at the price of an
    /// fsync per transaction.
    Full,
}

/// Options of [`LogBus::open_with`]; [`LogBus::open`] uses the defaults.
#[derive(Debug, Clone)]
pub struct LogBusOptions {
    /// Durability of commits. Default: [`Synchronous::Normal`].
    pub synchronous: Synchronous,
    /// How long a statement waits for another writer on the same file before failing.
    /// Default: 5 s.
    pub busy_timeout: Duration,
    /// Minimum time between two retention passes (run by `commit`). Zero runs one after every
    /// commit, which tests use. Default: 1 s.
    pub retention_interval: Duration,
}

impl Default for LogBusOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::default(),
            busy_timeout: Duration::from_secs(5),
            retention_interval: Duration::from_secs(1),
        }
    }
}

/// The embedded, durable bus. Cheap to clone: clones share the connections, the group
/// memberships and the wake-ups.
#[derive(Clone)]
pub struct LogBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LogBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBus")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// A component that owns the writes of the SQLite file the log lives in (the embedded store,
/// whose single writer groups many transactions into one commit). The log's writes run there,
/// each `job` inside one of its transactions; `write` returns once that transaction has
/// committed, or with the error that kept it from committing (the job's own writes are then
/// gone too).
#[async_trait]
pub trait SharedWriter: Send + Sync + 'static {
    async fn write(&self, job: SharedJob) -> Result<()>;
}

/// A write of the log, run inside a [`SharedWriter`]'s transaction.
pub type SharedJob = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

/// Where the log's writes go.
enum Writer {
    /// A connection of its own: each write is a transaction of its own.
    Own(Arc<Mutex<Connection>>),
    /// Another component's writer on the same file (see [`LogBus::open_shared`]).
    Shared(Arc<dyn SharedWriter>),
}

struct Inner {
    path: PathBuf,
    retention_interval: Duration,
    writer: Writer,
    reader: Mutex<Connection>,
    /// Groups with a live subscription on this bus.
    members: Mutex<HashSet<String>>,
    /// Per topic, the wake-ups of the subscriptions reading it, by subscription id.
    wakers: Mutex<Wakers>,
    /// When retention last ran; `None` before the first run.
    last_retention: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Wakers {
    next_id: u64,
    by_topic: HashMap<String, HashMap<u64, Arc<Notify>>>,
}

impl LogBus {
    /// Opens (creating if needed) the log at `path`, e.g. `<data-dir>/bus.sqlite`, with the
    /// default [`LogBusOptions`].
    ///
    /// Async because opening reads and may create the file and schema, which blocks; that
    /// runs in `spawn_blocking`.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, LogBusOptions::default()).await
    }

    /// Opens (creating if needed) the log at `path` with `options`.
    pub async fn open_with(path: &Path, options: LogBusOptions) -> Result<Self> {
        Self::open_writing(path, options, None).await
    }

    /// Opens the log at `path` for a process in which another component already writes that
    /// file through one writer of its own (the embedded store): the log's writes (commits of
    /// offsets, retention, [`Bus::publish`]) run on `writer` instead of a second connection.
    ///
    /// Why: SQLite lets one connection write at a time. Two writers on one file wait for each
    /// other's locks (SQLite's busy handler sleeps milliseconds at a time), and each commit is
    /// its own WAL append and, with `FULL`, its own fsync. On one writer the log's writes join
    /// the store's group commits. With [`LogBus::append_in`], the store also appends its events
    /// to the log in the transaction that makes them, with no outbox to relay.
    pub async fn open_shared(
        path: &Path,
        options: LogBusOptions,
        writer: Arc<dyn SharedWriter>,
    ) -> Result<Self> {
        Self::open_writing(path, options, Some(writer)).await
    }

    async fn open_writing(
        path: &Path,
        options: LogBusOptions,
        shared: Option<Arc<dyn SharedWriter>>,
    ) -> Result<Self> {
        let path = path.to_path_buf();
        let inner = blocking(move || {
            // The writer first: it creates the file and the schema the reader relies on. A
            // shared log uses its own connection only for that.
            let own = sql::open(&path, options.synchronous, options.busy_timeout, true)?;
            let writer = match shared {
                Some(shared) => {
                    drop(own);
                    Writer::Shared(shared)
                }
                None => Writer::Own(Arc::new(Mutex::new(own))),
            };
            let reader = sql::open(&path, options.synchronous, options.busy_timeout, false)?;
            Ok(Inner {
                path,
                retention_interval: options.retention_interval,
                writer,
                reader: Mutex::new(reader),
                members: Mutex::default(),
                wakers: Mutex::default(),
                last_retention: Mutex::new(None),
            })
        })
        .await?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }
}

#[async_trait]
impl Bus for LogBus {
    #[tracing::instrument(skip_all, fields(messages = messages.len()))]
    async fn publish(&self, messages: Vec<Message>) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let topics = self
            .inner
            .write(move |tx| sql::append_in(tx, &messages))
            .await?;
        self.inner.wake(&topics);
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(group = group))]
    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        let mut unique = HashSet::new();
        let topics: Vec<String> = topics
            .iter()
            .filter(|topic| unique.insert(**topic))
            .map(|topic| (*topic).to_owned())
            .collect();

        // From here on, dropping `membership` (on error or with the subscription) releases the
        // group and its wake-ups.
        let membership = Membership::join(&self.inner, group, &topics)?;

        let (group_name, topic_names) = (group.to_owned(), topics.clone());
        let next = self
            .inner
            .write(move |tx| sql::join_in(tx, &group_name, &topic_names))
            .await?;

        Ok(Box::new(LogSubscription {
            positions: topics.into_iter().zip(next).collect(),
            membership,
        }))
    }
}

impl LogBus {
    /// Appends `messages` to the log inside the caller's write transaction on the log's file
    /// (the embedded store's, for a log opened with [`LogBus::open_shared`] on that store's
    /// writer). Once that transaction has committed, call [`LogWaker::wake`] with the topics
    /// returned, so subscriptions read them at once.
    pub fn append_in(tx: &Connection, messages: &[Message]) -> rusqlite::Result<Vec<String>> {
        sql::append_in(tx, messages)
    }

    /// A handle that wakes this log's subscriptions after an [`LogBus::append_in`] committed.
    /// It does not keep the log open (a store that holds it and a log writing through that
    /// store would otherwise keep each other alive).
    pub fn waker(&self) -> LogWaker {
        LogWaker(Arc::downgrade(&self.inner))
    }
}

/// Wakes the subscriptions of a [`LogBus`] reading some topics, if the log is still open.
#[derive(Clone)]
pub struct LogWaker(std::sync::Weak<Inner>);

impl LogWaker {
    pub fn wake(&self, topics: &[String]) {
        if let Some(inner) = self.0.upgrade() {
            inner.wake(topics);
        }
    }
}

impl Inner {
    /// Runs `f` in a write transaction of the log's file and returns its value once committed.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        match &self.writer {
            Writer::Own(conn) => {
                let conn = Arc::clone(conn);
                blocking(move || sql::in_tx(&mut lock(&conn), f).map_err(sql::storage)).await
            }
            Writer::Shared(shared) => {
                let slot = Arc::new(Mutex::new(None));
                let put = Arc::clone(&slot);
                shared
                    .write(Box::new(move |tx| {
                        *lock(&put) = Some(f(tx)?);
                        Ok(())
                    }))
                    .await?;
                let value = lock(&slot).take();
                value
                    .ok_or_else(|| Error::Storage("the shared writer did not run the write".into()))
            }
        }
    }

    fn wake(&self, topics: &[String]) {
        let wakers = lock(&self.wakers);
        for topic in topics {
            for notify in wakers
                .by_topic
                .get(topic)
                .into_iter()
                .flat_map(HashMap::values)
            {
                notify.notify_one();
            }
        }
    }

    /// Whether a retention pass is due now; if so, counts it as started.
    fn retention_due(&self) -> bool {
        let mut last = lock(&self.last_retention);
        let now = Instant::now();
        let due = last.is_none_or(|at| now.duration_since(at) >= self.retention_interval);
        if due {
            *last = Some(now);
        }
        due
    }
}

/// A group's live membership on one [`LogBus`]: the claim on the group name and the
/// registration of its wake-up. Released on drop.
struct Membership {
    inner: Arc<Inner>,
    group: String,
    id: u64,
    topics: Vec<String>,
    notify: Arc<Notify>,
}

impl Membership {
    fn join(inner: &Arc<Inner>, group: &str, topics: &[String]) -> Result<Self> {
        if !lock(&inner.members).insert(group.to_owned()) {
            return Err(Error::GroupBusy(group.to_owned()));
        }
        let notify = Arc::new(Notify::new());
        let mut wakers = lock(&inner.wakers);
        let id = wakers.next_id;
        wakers.next_id += 1;
        for topic in topics {
            wakers
                .by_topic
                .entry(topic.clone())
                .or_default()
                .insert(id, Arc::clone(&notify));
        }
        Ok(Self {
            inner: Arc::clone(inner),
            group: group.to_owned(),
            id,
            topics: topics.to_vec(),
            notify,
        })
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut wakers = lock(&self.inner.wakers);
        for topic in &self.topics {
            if let Some(subscribers) = wakers.by_topic.get_mut(topic) {
                subscribers.remove(&self.id);
                if subscribers.is_empty() {
                    wakers.by_topic.remove(topic);
                }
            }
        }
        drop(wakers);
        lock(&self.inner.members).remove(&self.group);
    }
}

/// A subscription of a group to some topics of a [`LogBus`].
struct LogSubscription {
    /// Per topic, the offset of the next record to return. Only advanced once records are
    /// handed out, which is what makes `poll` cancel-safe.
    positions: Vec<(String, u64)>,
    membership: Membership,
}

#[async_trait]
impl Subscription for LogSubscription {
    /// Returns immediately with nothing when `max` is 0.
    async fn poll(&mut self, max: usize) -> Result<Vec<Record>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        loop {
            // A publish after this query leaves a permit in `notify`, so the wait below
            // returns at once instead of missing it. Dropping this future anywhere leaves
            // `positions` untouched.
            let inner = Arc::clone(&self.membership.inner);
            let positions = self.positions.clone();
            let records = blocking(move || fetch(&lock(&inner.reader), &positions, max)).await?;
            if let Some(records) = records {
                self.advance(&records);
                return Ok(records);
            }
            self.membership.notify.notified().await;
        }
    }

    async fn commit(&mut self, records: &[Record]) -> Result<()> {
        let mut next: HashMap<String, u64> = HashMap::new();
        for record in records {
            let offset = next.entry(record.topic.clone()).or_default();
            *offset = (*offset).max(record.offset + 1);
        }
        if next.is_empty() {
            return Ok(());
        }
        let inner = &self.membership.inner;
        let group = self.membership.group.clone();
        inner
            .write(move |tx| sql::commit_in(tx, &group, &next))
            .await?;
        if inner.retention_due() {
            // The commit itself has succeeded; a failed retention pass only delays deletion
            // until the next one.
            match inner.write(sql::retain_in).await {
                Ok(deleted) => tracing::debug!(deleted, "bus retention pass"),
                Err(error) => tracing::warn!(%error, "bus retention pass failed"),
            }
        }
        Ok(())
    }

    /// Per topic, its next offset minus the group's committed one (or the oldest record
    /// still kept, when retention removed what lies between): a few indexed lookups.
    async fn lag(&mut self) -> Result<Option<u64>> {
        let inner = Arc::clone(&self.membership.inner);
        let group = self.membership.group.clone();
        let topics: Vec<String> = self.positions.iter().map(|(t, _)| t.clone()).collect();
        blocking(move || {
            sql::lag(&lock(&inner.reader), &group, &topics)
                .map(Some)
                .map_err(sql::storage)
        })
        .await
    }
}

impl LogSubscription {
    fn advance(&mut self, records: &[Record]) {
        for record in records {
            if let Some((_, next)) = self.positions.iter_mut().find(|(t, _)| *t == record.topic) {
                *next = (*next).max(record.offset + 1);
            }
        }
    }
}

/// Reads up to `max` records following `positions`, oldest publish first across topics;
/// `None` when there are none.
///
/// One indexed range query per topic (each `LIMIT max`), merged by the global `seq`: per
/// topic, the merged prefix is still a prefix in offset order, because `seq` and `offset`
/// are assigned together under the write lock.
fn fetch(
    conn: &Connection,
    positions: &[(String, u64)],
    max: usize,
) -> Result<Option<Vec<Record>>> {
    let mut rows = Vec::new();
    for (topic, from) in positions {
        for row in sql::fetch(conn, topic, *from, max).map_err(sql::storage)? {
            rows.push((row.seq, topic, row));
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    if positions.len() > 1 {
        rows.sort_unstable_by_key(|(seq, _, _)| *seq);
        rows.truncate(max);
    }
    Ok(Some(
        rows.into_iter()
            .map(|(_, topic, row)| Record {
                topic: topic.clone(),
                partition: 0,
                offset: row.offset,
                key: row.key,
                payload: row.payload,
            })
            .collect(),
    ))
}

/// Runs blocking SQLite work off the async runtime.
async fn blocking<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Err(Error::Closed),
        Err(e) => Err(Error::Storage(Box::new(e))),
    }
}

/// A panic while a lock was held cannot leave SQLite half-written (an open transaction rolls
/// back when dropped), and the maps behind the other locks are updated in single steps, so
/// the data behind a poisoned lock is still sound.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn open(dir: &tempfile::TempDir, retention_interval: Duration) -> LogBus {
        let options = LogBusOptions {
            retention_interval,
            ..LogBusOptions::default()
        };
        LogBus::open_with(&dir.path().join("bus.sqlite"), options)
            .await
            .unwrap()
    }

    fn message(topic: &str, payload: &str) -> Message {
        Message {
            topic: topic.into(),
            key: "k".into(),
            payload: payload.into(),
        }
    }

    fn payloads(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8(r.payload.clone()).unwrap())
            .collect()
    }

    fn stored(dir: &tempfile::TempDir) -> i64 {
        Connection::open(dir.path().join("bus.sqlite"))
            .unwrap()
            .query_row("SELECT count(*) FROM bus_records", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_second_live_member_of_a_group_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        let first = bus.subscribe("g", &["t"]).await.unwrap();
        let err = bus.subscribe("g", &["other"]).await.err().unwrap();
        assert!(
            matches!(err, Error::GroupBusy(ref g) if g == "g"),
            "{err:?}"
        );
        bus.subscribe("another group", &["t"]).await.unwrap();

        drop(first);
        bus.subscribe("g", &["t"]).await.unwrap();
    }

    #[tokio::test]
    async fn dropping_a_subscription_unregisters_its_wake_ups() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        let sub = bus.subscribe("g", &["a", "b"]).await.unwrap();
        assert_eq!(lock(&bus.inner.wakers).by_topic.len(), 2);
        drop(sub);
        assert!(lock(&bus.inner.wakers).by_topic.is_empty());
        assert!(lock(&bus.inner.members).is_empty());
    }

    #[tokio::test]
    async fn topics_are_interleaved_in_publish_order_and_a_truncated_poll_resumes_correctly() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        bus.publish(vec![message("a", "a0"), message("b", "b0")])
            .await
            .unwrap();
        bus.publish(vec![
            message("a", "a1"),
            message("b", "b1"),
            message("a", "a2"),
        ])
        .await
        .unwrap();
        let mut sub = bus.subscribe("g", &["a", "b"]).await.unwrap();
        assert_eq!(payloads(&sub.poll(3).await.unwrap()), ["a0", "b0", "a1"]);
        assert_eq!(payloads(&sub.poll(1).await.unwrap()), ["b1"]);
        assert_eq!(payloads(&sub.poll(10).await.unwrap()), ["a2"]);
    }

    #[tokio::test]
    async fn a_topic_named_twice_is_delivered_once() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        bus.publish(vec![message("t", "only once")]).await.unwrap();
        let mut sub = bus.subscribe("g", &["t", "t"]).await.unwrap();
        assert_eq!(payloads(&sub.poll(10).await.unwrap()), ["only once"]);
    }

    #[tokio::test]
    async fn poll_of_zero_returns_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        let mut sub = bus.subscribe("g", &["t"]).await.unwrap();
        assert!(sub.poll(0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn offsets_continue_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        bus.publish(vec![message("t", "0"), message("t", "1")])
            .await
            .unwrap();
        drop(bus);
        let bus = open(&dir, Duration::ZERO).await;
        bus.publish(vec![message("t", "2")]).await.unwrap();
        let mut sub = bus.subscribe("g", &["t"]).await.unwrap();
        let offsets: Vec<u64> = sub
            .poll(10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [0, 1, 2]);
    }

    #[tokio::test]
    async fn retention_deletes_what_every_group_has_committed() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        bus.publish((0..5).map(|i| message("t", &i.to_string())).collect())
            .await
            .unwrap();
        let mut sub = bus.subscribe("g", &["t"]).await.unwrap();
        let records = sub.poll(10).await.unwrap();
        sub.commit(&records[..3]).await.unwrap();
        assert_eq!(stored(&dir), 2);
    }

    #[tokio::test]
    async fn the_log_reports_a_groups_lag_even_one_that_joins_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        let mut first = bus.subscribe("first", &["t"]).await.unwrap();
        assert_eq!(first.lag().await.unwrap(), Some(0));
        bus.publish((0..5).map(|i| message("t", &i.to_string())).collect())
            .await
            .unwrap();
        assert_eq!(first.lag().await.unwrap(), Some(5));
        let records = first.poll(10).await.unwrap();
        first.commit(&records[..3]).await.unwrap();
        assert_eq!(stored(&dir), 2);
        // A newcomer starts at the oldest record kept, not at the deleted ones.
        let mut late = bus.subscribe("late", &["t"]).await.unwrap();
        assert_eq!(late.lag().await.unwrap(), Some(2));
    }

    #[tokio::test]
    async fn retention_runs_at_most_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::from_secs(3600)).await;
        bus.publish((0..5).map(|i| message("t", &i.to_string())).collect())
            .await
            .unwrap();
        let mut sub = bus.subscribe("g", &["t"]).await.unwrap();
        let records = sub.poll(10).await.unwrap();
        sub.commit(&records[..1]).await.unwrap();
        assert_eq!(stored(&dir), 4, "the first commit runs a pass");
        sub.commit(&records).await.unwrap();
        assert_eq!(stored(&dir), 4, "the next pass waits for the interval");
    }

    #[tokio::test]
    async fn options_set_the_pragmas_on_both_connections() {
        let dir = tempfile::tempdir().unwrap();
        let options = LogBusOptions {
            synchronous: Synchronous::Full,
            ..LogBusOptions::default()
        };
        let bus = LogBus::open_with(&dir.path().join("bus.sqlite"), options)
            .await
            .unwrap();
        let Writer::Own(writer) = &bus.inner.writer else {
            panic!("a log opened on its own has a writer of its own")
        };
        for conn in [&**writer, &bus.inner.reader] {
            let conn = lock(conn);
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            let sync: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            assert_eq!((mode.as_str(), sync), ("wal", 2));
        }
    }

    #[tokio::test]
    async fn the_reader_connection_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir, Duration::ZERO).await;
        let written = lock(&bus.inner.reader).execute("DELETE FROM bus_records", []);
        assert!(written.is_err());
    }
}
