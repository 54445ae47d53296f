//! The distributed bus: any Kafka-protocol broker (Apache Kafka, Redpanda, tansu), through
//! librdkafka (`rdkafka`).
//!
//! Why it is built this way:
//! - **The design's topics, keyed by task id.** A message's key is its task id and the
//!   partitioner is librdkafka's `murmur2` (the Java client's), so one task's events land on one
//!   partition, in order, whichever client produced them; an empty key is hashed like any other
//!   (librdkafka's default partitioner would scatter it).
//! - **Durable before `publish` returns.** The producer is idempotent (`enable.idempotence`,
//!   which implies `acks=all` and at most five requests in flight), so retries neither reorder
//!   nor duplicate a partition's messages, and `publish` awaits the broker's acknowledgement
//!   of every message of the batch. No Kafka transactions: the store's outbox gives atomicity,
//!   and handlers are idempotent.
//! - **At-least-once.** Offsets are committed only by [`Subscription::commit`] (auto-commit
//!   off), synchronously, as offset + 1 of the last record handled on each partition, and never
//!   below what the group already committed. A member that crashes before committing leaves its
//!   records to be delivered again.
//! - **One consumer group per role**, named by the caller. `subscribe` returns once the group
//!   has handed this member its partitions (possibly none, when a group has more members than
//!   partitions), so a role that subscribed is a member and `lag` covers its partitions.
//! - **Cancel-safe `poll`.** rdkafka's `recv` is cancel-safe; each record it returns goes into
//!   the subscription's buffer before the next await, so a dropped poll loses nothing.
//! - **Rebalances, eager or incremental.** librdkafka's default assignors rebalance eagerly
//!   (every member gives every partition up, then takes its new share); incremental
//!   rebalancing (`partition.assignment.strategy = cooperative-sticky` in the settings) moves
//!   only the partitions that change hands. The subscription follows both: a partition taken
//!   away loses its buffered records (its next owner reads them again from the committed
//!   offset), and one handed out starts from the committed offset. Eager is the default: in
//!   the cluster test's kill runs on tansu, incremental was not faster (BENCHMARKS.md,
//!   "Failover and partitions").
//! - **Never blocks the runtime.** Commits, committed-offset look-ups, watermark queries and
//!   closing a consumer block in librdkafka, so they run in `spawn_blocking`.
//! - **Topics are created, not auto-created.** [`KafkaBus::create_topics`] creates the
//!   design's topics (idempotent: "already exists" is success) and waits until the broker's
//!   metadata shows them with a leader for every partition; the binary calls it at start-up.
//!   [`KafkaOptions::create_topics_on_use`] does the same for every topic on first use, which
//!   tests with fresh topic names need.
//!
//! The producer, the options and what every client shares are here; topic administration is
//! in `admin`, the consumer groups (joining, polling, commits, lag) in `consumer`.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::{Bus, Error, Message, Result, Subscription};

mod admin;
mod consumer;

pub use consumer::KafkaSubscription;

/// Where the broker is and how topics are made. [`Default`] suits a local single broker.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `bootstrap.servers`: `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// `client.id` of every client, as the broker's logs and quotas see it.
    pub client_id: String,
    /// Partitions of a topic this adapter creates: the most members a group can keep busy.
    pub partitions: i32,
    /// Replication factor of a topic this adapter creates; `-1` is the broker's default
    /// (`default.replication.factor`, Kafka 2.4 and later).
    pub replication_factor: i32,
    /// Create each topic on its first use by this bus (see the module's documentation).
    pub create_topics_on_use: bool,
    /// Longest wait for one broker request (admin calls, commits, watermarks, metadata).
    pub request_timeout: Duration,
    /// How long librdkafka keeps retrying a message before `publish` fails.
    pub message_timeout: Duration,
    /// `fetch.wait.max.ms`: how long the broker may hold a fetch that found nothing. Kafka
    /// answers a held fetch as soon as a record arrives, so there this only bounds idle
    /// requests; a broker that does not (tansu 0.6.0) delivers a record up to this late.
    /// Default: 100 ms (librdkafka's is 500 ms), about ten small requests a second per idle
    /// consumer and broker.
    pub fetch_wait: Duration,
    /// `session.timeout.ms` of consumers: how long the group waits for a member that went
    /// silent before moving its partitions to the others; `None` keeps librdkafka's (45 s).
    /// With it, members heartbeat every third of it, at most every second
    /// (`heartbeat.interval.ms`), so that a survivor hears of a rebalance soon after the
    /// coordinator gave up on a dead member.
    pub session_timeout: Option<Duration>,
    /// `max.poll.interval.ms`: a member that has not asked for records for this long (its
    /// handler stuck on a store it cannot reach, say) leaves the group, so that the others
    /// take its partitions over, and joins again when it next polls; the records it was
    /// handling are delivered again to their new owner. `None` keeps librdkafka's (5 min).
    /// At least [`KafkaOptions::session_timeout`].
    pub max_poll_interval: Option<Duration>,
    /// Put in front of every topic and consumer group name on the broker (`""`: the design's
    /// names as they are), so that several deployments, or test runs, share one cluster
    /// without reading each other's events. Callers name topics and groups without it.
    pub prefix: String,
    /// Longest wait in `subscribe` for the group to assign this member its partitions. A
    /// group whose previous member died waits for it up to the broker's session timeout.
    pub join_timeout: Duration,
    /// Further librdkafka properties for every client (`security.protocol`, `sasl.*`,
    /// `ssl.*`, ...). They cannot override the settings this adapter's guarantees rest on.
    pub settings: Vec<(String, String)>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".to_owned(),
            client_id: "chime".to_owned(),
            partitions: 6,
            replication_factor: -1,
            create_topics_on_use: false,
            request_timeout: Duration::from_secs(10),
            message_timeout: Duration::from_secs(30),
            fetch_wait: Duration::from_millis(100),
            session_timeout: None,
            max_poll_interval: None,
            prefix: String::new(),
            join_timeout: Duration::from_secs(60),
            settings: Vec::new(),
        }
    }
}

impl KafkaOptions {
    /// A topic's or group's name on the broker: [`KafkaOptions::prefix`] in front.
    fn named(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// A failed Kafka operation, kept as the `source()` of [`Error::Storage`].
#[derive(Debug)]
struct KafkaFailure {
    what: String,
    source: Option<KafkaError>,
}

impl fmt::Display for KafkaFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kafka: {}", self.what)
    }
}

impl std::error::Error for KafkaFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn failed(what: impl Into<String>, source: KafkaError) -> Error {
    Error::Storage(Box::new(KafkaFailure {
        what: what.into(),
        source: Some(source),
    }))
}

fn failed_because(what: impl Into<String>) -> Error {
    Error::Storage(Box::new(KafkaFailure {
        what: what.into(),
        source: None,
    }))
}

/// Runs blocking librdkafka work off the runtime's worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Storage(Box::new(e)))?
}

/// The Kafka adapter of the bus port: one idempotent producer shared by every publish, one
/// consumer per subscription.
pub struct KafkaBus {
    options: KafkaOptions,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// Topics this bus has created or seen ready (only with `create_topics_on_use`).
    ready: Mutex<HashSet<String>>,
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBus")
            .field("bootstrap_servers", &self.options.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Creates the clients. librdkafka connects lazily, so this does not wait for the broker;
    /// the first publish, subscribe or [`KafkaBus::create_topics`] does.
    pub fn connect(options: KafkaOptions) -> Result<Self> {
        let producer: FutureProducer = client_config(&options)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2")
            .set(
                "message.timeout.ms",
                millis(options.message_timeout).to_string(),
            )
            .create()
            .map_err(|e| failed("cannot create the producer", e))?;
        let admin = client_config(&options)
            .create()
            .map_err(|e| failed("cannot create the admin client", e))?;
        Ok(Self {
            options,
            producer,
            admin,
            ready: Mutex::new(HashSet::new()),
        })
    }
}

/// Awaits one delivery report.
async fn delivered(delivery: DeliveryFuture) -> Result<()> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, message))) => Err(failed(
            format!(
                "the broker did not acknowledge a message to `{}`",
                message.topic()
            ),
            error,
        )),
        Err(_cancelled) => Err(Error::Closed),
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, messages: Vec<Message>) -> Result<()> {
        let topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
        self.ensure_topics(&topics).await?;
        // Every message is handed to librdkafka first (it batches per partition), then every
        // acknowledgement is awaited. When its queue is full, the oldest acknowledgement is
        // awaited to make room, which keeps the batch in order.
        let mut pending = VecDeque::with_capacity(messages.len());
        for message in &messages {
            let topic = self.options.named(&message.topic);
            let mut record = FutureRecord::to(&topic)
                .key(message.key.as_bytes())
                .payload(message.payload.as_slice());
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        match pending.pop_front() {
                            Some(delivery) => delivered(delivery).await?,
                            // Full with other publishes' messages: give them a moment.
                            None => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                    Err((error, _)) => {
                        return Err(failed(
                            format!("cannot queue a message to `{}`", message.topic),
                            error,
                        ))
                    }
                }
            }
        }
        for delivery in pending {
            delivered(delivery).await?;
        }
        Ok(())
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        self.join(group, topics, "earliest").await
    }

    /// A group with no committed offset starts at the end (`auto.offset.reset=latest`); its
    /// caller never commits, so it always does.
    async fn subscribe_live(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        self.join(group, topics, "latest").await
    }
}

fn client_config(options: &KafkaOptions) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in &options.settings {
        config.set(key, value);
    }
    config
        .set("bootstrap.servers", &options.bootstrap_servers)
        .set("client.id", &options.client_id);
    config
}

fn millis(duration: Duration) -> u128 {
    duration.as_millis().max(1)
}

fn distinct<'a>(topics: &[&'a str]) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    topics.iter().copied().filter(|t| seen.insert(*t)).collect()
}
