//! Which adapters the store and bus ports get: the embedded default (SQLite store and the
//! durable log, both in one file in the data directory) or the distributed ones (PostgreSQL or
//! MongoDB, by the scheme of `[store] url`; a Kafka-protocol broker), chosen by configuration
//! alone (`[store] url`,
//! `[bus] kafka_bootstrap`), so that the same binary and the same roles run in both shapes.
//! Only this module names concrete adapters; the encryption decorators go on top in `start`.
//!
//! It also keeps readiness honest for the distributed backends: a cheap round trip to each
//! (`SELECT 1` or `ping`, a metadata request) every few seconds, so a load balancer stops sending to
//! an instance that has lost its database or broker.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
#[cfg(feature = "kafka")]
use chime_bus::kafka::{KafkaBus, KafkaOptions};
use chime_bus::log::{LogBus, LogBusOptions, LogWaker, SharedJob, SharedWriter};
use chime_bus::{Bus, Message};
#[cfg(feature = "kafka")]
use chime_core::event::Topic;
use chime_store::mongodb::MongoStore;
use chime_store::postgres::PgStore;
use chime_store::sqlite::{OutboxSink, SqliteOptions, SqliteStore};
use chime_store::{OutboxEvent, Store};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::Config;

/// How often readiness asks the distributed backends.
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// `[store]`: the PostgreSQL or MongoDB store, or (no `url`) the embedded SQLite one.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or
    /// `mongodb://[USER:PASSWORD@]HOST[:PORT][,HOST…]/DATABASE[?OPTIONS]` (`CHIME_STORE__URL`).
    /// A secret: it is never logged or serialised.
    pub url: Option<String>,
    /// Connections this instance keeps to the database at most.
    pub pool_size: u32,
    /// Apply missing migrations at start-up (safe from several instances at once). Off, a
    /// database `chime migrate` has not prepared stops start-up.
    pub migrate: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 16,
            migrate: true,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(redact))
            .field("pool_size", &self.pool_size)
            .field("migrate", &self.migrate)
            .finish()
    }
}

/// A database URL without its credentials.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}

impl StoreConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.url {
            if url.starts_with("mongodb+srv://") {
                bail!(
                    "store.url: `{}`: mongodb+srv:// needs DNS SRV lookups, which this build \
                     leaves out: list the hosts in a mongodb:// URL",
                    redact(url)
                );
            }
            if StoreKind::of(url).is_none() {
                bail!(
                    "store.url: `{}` is neither a postgres:// nor a mongodb:// URL (the \
                     distributed stores)",
                    redact(url)
                );
            }
        }
        if self.pool_size == 0 {
            bail!("store.pool_size must be at least 1");
        }
        Ok(())
    }
}

/// `[bus]`: a Kafka-protocol broker, or (no `kafka_bootstrap`) the embedded log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `host:port[,host:port…]` (`CHIME_BUS__KAFKA_BOOTSTRAP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_bootstrap: Option<String>,
    /// Partitions of each topic created at start-up: the most instances of one role that
    /// share its work.
    pub partitions: i32,
    /// Replication factor of each topic created at start-up; -1 is the broker's default.
    pub replication_factor: i32,
    /// How long the broker waits for a silent consumer before it hands the consumer's
    /// partitions to the others (`session.timeout.ms`): after an instance dies, its share of
    /// a role's events waits this long. Lower is faster failover, but an instance paused
    /// longer (a long GC-free stall, a CPU-starved pod) is taken for dead and rebalanced.
    pub session_timeout_seconds: f64,
    /// How long an instance may go without asking the broker for more events (its handler
    /// stuck on a store it cannot reach, say) before it gives its partitions up to the other
    /// instances of its role (`max.poll.interval.ms`); it joins again once it polls. At least
    /// `session_timeout_seconds`.
    pub max_poll_interval_seconds: f64,
    /// Put in front of every topic and consumer group name on the broker (letters, digits,
    /// `.`, `_`, `-`; empty by default): several deployments, or test runs, can share one
    /// Kafka cluster without reading each other's events.
    pub prefix: String,
    /// Further librdkafka properties (`security.protocol`, `sasl.*`, `ssl.*`).
    #[serde(skip_serializing)]
    pub kafka_settings: std::collections::BTreeMap<String, String>,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kafka_bootstrap: None,
            partitions: 12,
            replication_factor: -1,
            // Well within the 10 s delivery target, rather than librdkafka's 45 s: the
            // smallest Apache Kafka accepts by default (group.min.session.timeout.ms), so a
            // dead instance's share moves about 7 s after it died (the failover issue's
            // figures, BENCHMARKS.md). Heartbeats come from librdkafka's own thread every
            // second, so only a process that is gone (or frozen) misses six, and a needless
            // rebalance only delivers some events again.
            session_timeout_seconds: 6.0,
            // A batch takes milliseconds to a second; one stuck for 10 s is a partitioned
            // or frozen instance, whose share the others should take.
            max_poll_interval_seconds: 10.0,
            prefix: String::new(),
            kafka_settings: Default::default(),
        }
    }
}

impl BusConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self
            .kafka_bootstrap
            .as_deref()
            .is_some_and(|b| b.trim().is_empty())
        {
            bail!("bus.kafka_bootstrap is empty: name at least one host:port, or leave it unset");
        }
        #[cfg(not(feature = "kafka"))]
        if self.kafka_bootstrap.is_some() {
            bail!(NO_KAFKA);
        }
        if !(1.0..=3600.0).contains(&self.session_timeout_seconds) {
            bail!("bus.session_timeout_seconds must be between 1 and 3600");
        }
        if !(self.session_timeout_seconds..=86_400.0).contains(&self.max_poll_interval_seconds) {
            bail!(
                "bus.max_poll_interval_seconds must be between bus.session_timeout_seconds ({}) \
                 and 86400",
                self.session_timeout_seconds
            );
        }
        if let Some(bad) = self
            .prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            bail!(
                "bus.prefix `{}` has `{bad}`: Kafka names take letters, digits, `.`, `_` and `-`",
                self.prefix
            );
        }
        if self.prefix.len() > 200 {
            bail!("bus.prefix is longer than 200 characters (a Kafka topic name is at most 249)");
        }
        if self.partitions < 1 {
            bail!("bus.partitions must be at least 1");
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            bail!("bus.replication_factor must be -1 (the broker's default) or at least 1");
        }
        Ok(())
    }
}

/// Which distributed store a `[store] url` selects: by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Postgres,
    Mongo,
}

impl StoreKind {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(StoreKind::Postgres)
        } else if url.starts_with("mongodb://") {
            Some(StoreKind::Mongo)
        } else {
            None
        }
    }

    /// For messages.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Postgres => "PostgreSQL",
            StoreKind::Mongo => "MongoDB",
        }
    }
}

/// A distributed store, connected: one type for what start-up, `chime migrate`, `chime
/// doctor` and `chime keys rotate` do with either.
#[derive(Clone)]
pub enum SharedStore {
    Postgres(Arc<PgStore>),
    Mongo(Arc<MongoStore>),
}

impl SharedStore {
    /// Connects to the store `url` selects (validated by [`StoreConfig::validate`]), saying
    /// which store could not be reached.
    pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<Self> {
        let kind = StoreKind::of(url)
            .with_context(|| format!("{} is not a distributed store's URL", redact(url)))?;
        Self::open(kind, url, pool_size).await.with_context(|| {
            format!(
                "cannot connect to the {} store {}",
                kind.name(),
                redact(url)
            )
        })
    }

    /// [`SharedStore::connect`] without the context: for a caller that names the store.
    pub async fn open(kind: StoreKind, url: &str, pool_size: u32) -> chime_store::Result<Self> {
        Ok(match kind {
            StoreKind::Postgres => {
                SharedStore::Postgres(Arc::new(PgStore::connect(url, pool_size).await?))
            }
            StoreKind::Mongo => {
                SharedStore::Mongo(Arc::new(MongoStore::connect(url, pool_size).await?))
            }
        })
    }

    pub fn kind(&self) -> StoreKind {
        match self {
            SharedStore::Postgres(_) => StoreKind::Postgres,
            SharedStore::Mongo(_) => StoreKind::Mongo,
        }
    }

    /// Sets the schema up to this build's version (safe from several instances at once).
    pub async fn migrate(&self) -> chime_store::Result<()> {
        match self {
            SharedStore::Postgres(s) => s.migrate().await,
            SharedStore::Mongo(s) => s.migrate().await,
        }
    }

    /// The schema version of the database, and this build's.
    pub async fn schema_versions(&self) -> chime_store::Result<(i64, i64)> {
        Ok(match self {
            SharedStore::Postgres(s) => (
                s.applied_schema_version().await?,
                chime_store::postgres::SCHEMA_VERSION,
            ),
            SharedStore::Mongo(s) => (
                s.applied_schema_version().await?,
                chime_store::mongodb::SCHEMA_VERSION,
            ),
        })
    }

    pub async fn ping(&self) -> chime_store::Result<()> {
        match self {
            SharedStore::Postgres(s) => s.ping().await,
            SharedStore::Mongo(s) => s.ping().await,
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            SharedStore::Postgres(s) => s.clone(),
            SharedStore::Mongo(s) => s.clone(),
        }
    }

    /// The re-encryption capability (`chime keys rotate`).
    pub fn reencrypt(&self) -> &dyn chime_store::Reencrypt {
        match self {
            SharedStore::Postgres(s) => &**s,
            SharedStore::Mongo(s) => &**s,
        }
    }
}

/// The adapters, before the encryption decorators.
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    /// The bus is shared with other processes: live feeds must follow it (see
    /// `chime_roles::inbox_feed`), not only this process's roles.
    pub shared_bus: bool,
    pub probe: Probe,
}

/// Opens the configured adapters. The distributed ones are reached now, so an unreachable
/// database or broker stops start-up with its reason; Kafka topics are created (idempotent).
pub async fn open(config: &Config, dir: &Path) -> anyhow::Result<Backends> {
    let mut probe = Probe::default();
    let file = dir.join("chime.sqlite");
    let log_options = LogBusOptions {
        synchronous: match config.sqlite_synchronous {
            chime_store::sqlite::Synchronous::Normal => chime_bus::log::Synchronous::Normal,
            chime_store::sqlite::Synchronous::Full => chime_bus::log::Synchronous::Full,
        },
        ..LogBusOptions::default()
    };
    let (store, sqlite): (Arc<dyn Store>, Option<SqliteStore>) = match &config.store.url {
        Some(url) => {
            let store = SharedStore::connect(url, config.store.pool_size).await?;
            if config.store.migrate {
                store
                    .migrate()
                    .await
                    .with_context(|| format!("cannot migrate the {} store", store.kind().name()))?;
            }
            probe.store = Some(store.clone());
            (store.store(), None)
        }
        None => {
            let store = SqliteStore::open(
                &file,
                &SqliteOptions {
                    synchronous: config.sqlite_synchronous,
                    ..SqliteOptions::default()
                },
            )
            .context("cannot open the SQLite store")?;
            (Arc::new(store.clone()), Some(store))
        }
    };
    let (bus, shared_bus): (Arc<dyn Bus>, bool) = match (&config.bus.kafka_bootstrap, sqlite) {
        (Some(bootstrap), _) => (open_kafka(config, bootstrap, &mut probe).await?, true),
        // The embedded default: the log lives in the store's file (one backup is a consistent
        // copy of both), writes through the store's one writer, and takes the store's events
        // in the transactions that make them (see `LogBus::open_shared`).
        (None, Some(store)) => (
            Arc::new(share_log(&store, &file, log_options).await?),
            false,
        ),
        // A PostgreSQL store with the embedded log (tests, one process): the log alone in
        // that file.
        (None, None) => (
            Arc::new(
                LogBus::open_with(&file, log_options)
                    .await
                    .context("cannot open the bus log")?,
            ),
            false,
        ),
    };
    Ok(Backends {
        store,
        bus,
        shared_bus,
        probe,
    })
}

/// Opens the log in `store`'s file `file`, writing through the store's writer, and sends the
/// store's events to it.
async fn share_log(
    store: &SqliteStore,
    file: &Path,
    options: LogBusOptions,
) -> anyhow::Result<LogBus> {
    let bus = LogBus::open_shared(file, options, Arc::new(StoreWrites(store.clone())))
        .await
        .context("cannot open the bus log")?;
    store
        .send_events_to(Arc::new(LogSink(bus.waker())))
        .context("cannot send the store's events to the bus log")?;
    Ok(bus)
}

/// The log's writes, run by the embedded store's writer.
struct StoreWrites(SqliteStore);

#[async_trait::async_trait]
impl SharedWriter for StoreWrites {
    async fn write(&self, job: SharedJob) -> chime_bus::Result<()> {
        self.0
            .write_shared(job)
            .await
            .map_err(|e| chime_bus::Error::Storage(Box::new(e)))
    }
}

/// The store's events, appended to the log in the transaction that makes them.
struct LogSink(LogWaker);

impl OutboxSink for LogSink {
    fn append(
        &self,
        tx: &rusqlite::Connection,
        events: &[OutboxEvent],
    ) -> rusqlite::Result<Vec<String>> {
        let messages: Vec<Message> = events
            .iter()
            .map(|e| Message {
                topic: e.topic.to_owned(),
                key: e.key.clone(),
                payload: e.payload.clone(),
            })
            .collect();
        LogBus::append_in(tx, &messages)
    }

    fn committed(&self, topics: &[String]) {
        self.0.wake(topics);
    }
}

/// The Kafka-protocol bus, its topics created.
#[cfg(feature = "kafka")]
async fn open_kafka(
    config: &Config,
    bootstrap: &str,
    probe: &mut Probe,
) -> anyhow::Result<Arc<dyn Bus>> {
    let bus = KafkaBus::connect(KafkaOptions {
        bootstrap_servers: bootstrap.to_owned(),
        partitions: config.bus.partitions,
        replication_factor: config.bus.replication_factor,
        session_timeout: Some(Duration::from_secs_f64(config.bus.session_timeout_seconds)),
        max_poll_interval: Some(Duration::from_secs_f64(
            config.bus.max_poll_interval_seconds,
        )),
        prefix: config.bus.prefix.clone(),
        settings: config
            .bus
            .kafka_settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..KafkaOptions::default()
    })
    .context("cannot create the Kafka clients")?;
    let topics: Vec<&str> = Topic::ALL.iter().map(|t| t.name()).collect();
    bus.create_topics(&topics)
        .await
        .with_context(|| format!("cannot create the topics on the broker {bootstrap}"))?;
    let bus = Arc::new(bus);
    probe.bus = Some(bus.clone());
    Ok(bus)
}

/// Without the `kafka` feature there is no Kafka adapter; [`BusConfig::validate`] has
/// already refused the configuration, this says so again for a caller that skipped it.
#[cfg(not(feature = "kafka"))]
async fn open_kafka(
    _config: &Config,
    _bootstrap: &str,
    _probe: &mut Probe,
) -> anyhow::Result<Arc<dyn Bus>> {
    bail!(NO_KAFKA)
}

/// Why a build without the `kafka` feature refuses `bus.kafka_bootstrap`.
#[cfg(not(feature = "kafka"))]
pub const NO_KAFKA: &str = "bus.kafka_bootstrap is set, but this chime was built without the \
Kafka adapter: build it with `cargo build --release -p chime --features kafka` (needs cmake)";

/// The distributed adapters readiness asks; the embedded ones are in this process.
#[derive(Default, Clone)]
pub struct Probe {
    store: Option<SharedStore>,
    #[cfg(feature = "kafka")]
    bus: Option<Arc<KafkaBus>>,
}

impl Probe {
    pub fn is_empty(&self) -> bool {
        #[cfg(feature = "kafka")]
        let no_bus = self.bus.is_none();
        #[cfg(not(feature = "kafka"))]
        let no_bus = true;
        self.store.is_none() && no_bus
    }

    /// A round trip to the shared store, within [`PROBE_EVERY`], for the consumers (see
    /// [`chime_roles::StoreCheck`]); nothing to check on the embedded one.
    pub fn store_check(&self) -> chime_roles::StoreCheck {
        match self.store.clone() {
            Some(store) => chime_roles::StoreCheck::new(move || {
                let store = store.clone();
                Box::pin(async move {
                    matches!(
                        tokio::time::timeout(PROBE_EVERY, store.ping()).await,
                        Ok(Ok(()))
                    )
                })
            }),
            None => chime_roles::StoreCheck::default(),
        }
    }

    async fn check(&self) -> Result<(), String> {
        if let Some(store) = &self.store {
            store
                .ping()
                .await
                .map_err(|e| format!("{}: {e}", store.kind().name()))?;
        }
        #[cfg(feature = "kafka")]
        if let Some(bus) = &self.bus {
            bus.ping().await.map_err(|e| format!("Kafka: {e}"))?;
        }
        Ok(())
    }

    /// Sets `ready` from a round trip to each backend every [`PROBE_EVERY`] until shutdown.
    pub async fn run(self, ready: Arc<AtomicBool>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PROBE_EVERY) => {}
            }
            let ok = match tokio::time::timeout(PROBE_EVERY, self.check()).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "a backend does not answer: not ready");
                    false
                }
                Err(_) => {
                    tracing::warn!("a backend did not answer within {PROBE_EVERY:?}: not ready");
                    false
                }
            };
            if ready.swap(ok, Ordering::AcqRel) != ok && ok {
                tracing::info!("the backends answer again: ready");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded pair as `open` makes it; opening again is a restart of both.
    struct Embedded {
        dir: tempfile::TempDir,
    }

    impl Embedded {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().expect("temporary directory"),
            }
        }

        async fn open_pair(&self) -> (SqliteStore, LogBus) {
            let file = self.dir.path().join("chime.sqlite");
            let store = SqliteStore::open(&file, &SqliteOptions::default()).expect("open store");
            let options = LogBusOptions {
                // Retention on every commit, so the contract's retention check exercises it.
                retention_interval: Duration::ZERO,
                ..LogBusOptions::default()
            };
            let bus = share_log(&store, &file, options).await.expect("open log");
            (store, bus)
        }
    }

    #[async_trait::async_trait]
    impl chime_bus::contract::BusFactory for Embedded {
        async fn open(&self) -> Arc<dyn Bus> {
            Arc::new(self.open_pair().await.1)
        }
    }

    // The log writing through the store's writer keeps every promise of the bus port.
    chime_bus::bus_contract_tests!(Embedded::new());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stores_event_is_on_the_log_when_its_write_returns_and_never_in_the_outbox() {
        use chime_core::event::{Event, Topic};
        use chime_store::{OutboxStore as _, TaskStore as _};

        let embedded = Embedded::new();
        let (store, bus) = embedded.open_pair().await;
        let mut sub = bus
            .subscribe("g", &[Topic::TaskEvents.name()])
            .await
            .expect("subscribe");
        let now = jiff::Timestamp::now();
        let task = chime_store::TaskRecord {
            id: chime_core::TaskId::new(),
            user_id: chime_core::UserId::parse("alice").expect("user"),
            version: 1,
            body: serde_json::json!({"name": "x"}),
            created_at: now,
            modified_at: now,
        };
        let event = Event::TaskDeleted(chime_core::event::TaskDeleted {
            task_id: task.id,
            user_id: task.user_id.clone(),
            version: 1,
            at: now,
        });
        store
            .create_task(&task, (&event).into())
            .await
            .expect("create");
        let records = tokio::time::timeout(chime_bus::contract::GUARD, sub.poll(10))
            .await
            .expect("the event woke the subscription")
            .expect("poll");
        assert_eq!(records.len(), 1);
        assert_eq!(
            Event::from_bytes(&records[0].payload).expect("decode"),
            event
        );
        assert_eq!(store.outbox_len().await.expect("outbox"), 0);
    }

    #[test]
    fn a_database_url_is_shown_without_its_credentials() {
        assert_eq!(
            redact("postgres://chime:s3cret@db:5432/chime"),
            "postgres://***@db:5432/chime"
        );
        assert_eq!(redact("postgres://db/chime"), "postgres://db/chime");
        assert_eq!(
            redact("mongodb://chime:s3cret@m1:27017,m2:27017/chime?replicaSet=rs0"),
            "mongodb://***@m1:27017,m2:27017/chime?replicaSet=rs0"
        );
    }

    #[test]
    fn the_store_is_picked_by_the_scheme_of_its_url() {
        assert_eq!(
            StoreKind::of("postgres://db/chime"),
            Some(StoreKind::Postgres)
        );
        assert_eq!(
            StoreKind::of("postgresql://db/chime"),
            Some(StoreKind::Postgres)
        );
        assert_eq!(StoreKind::of("mongodb://m1/chime"), Some(StoreKind::Mongo));
        assert_eq!(StoreKind::of("mysql://db/chime"), None);
    }

    #[test]
    fn chime_backup_refuses_a_mongodb_store_and_names_mongodump() {
        let refused = crate::backup::refuse_mongodb("mongodb://chime:s3cret@m1/chime")
            .expect_err("a MongoDB store is the operator's to back up");
        let message = refused.to_string();
        assert!(message.contains("mongodump"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        crate::backup::refuse_mongodb("postgres://db/chime").expect("pg_dump backs it up");
    }
}
