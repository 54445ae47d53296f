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
//!   librdkafka rewinds a partition to its committed offset when a rebalance (eager protocol)
//!   hands it out again, so the buffer is cleared on every rebalance rather than returning
//!   records that are coming again anyway.
//! - **Never blocks the runtime.** Commits, committed-offset look-ups, watermark queries and
//!   closing a consumer block in librdkafka, so they run in `spawn_blocking`.
//! - **Topics are created, not auto-created.** [`KafkaBus::create_topics`] creates the
//!   design's topics (idempotent: "already exists" is success) and waits until the broker's
//!   metadata shows them with a leader for every partition; the binary calls it at start-up.
//!   [`KafkaOptions::create_topics_on_use`] does the same for every topic on first use, which
//!   tests with fresh topic names need.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::{Bus, Error, Message, Record, Result, Subscription};

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
    pub session_timeout: Option<Duration>,
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
            join_timeout: Duration::from_secs(60),
            settings: Vec::new(),
        }
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

    /// Creates `topics` with [`KafkaOptions::partitions`] partitions and
    /// [`KafkaOptions::replication_factor`], unless they exist, then waits until the broker's
    /// metadata shows every one of them with a leader for each partition. Safe to call on
    /// every start of every instance.
    pub async fn create_topics(&self, topics: &[&str]) -> Result<()> {
        let topics = distinct(topics);
        if topics.is_empty() {
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| {
                NewTopic::new(
                    t,
                    self.options.partitions,
                    TopicReplication::Fixed(self.options.replication_factor),
                )
            })
            .collect();
        let admin_options = AdminOptions::new()
            .request_timeout(Some(self.options.request_timeout))
            .operation_timeout(Some(self.options.request_timeout));
        let results = self
            .admin
            .create_topics(&new, &admin_options)
            .await
            .map_err(|e| failed("cannot create topics", e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(failed(
                        format!("cannot create topic `{topic}`"),
                        KafkaError::AdminOp(code),
                    ))
                }
            }
        }
        self.await_topics(&topics).await?;
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(topics.iter().map(|t| (*t).to_owned()));
        Ok(())
    }

    /// Waits until the metadata shows `topics` with a leader for every partition. A broker
    /// announces no such event, so this asks again, with a growing pause, until
    /// [`KafkaOptions::request_timeout`].
    async fn await_topics(&self, topics: &[&str]) -> Result<()> {
        let deadline = Instant::now() + self.options.request_timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let mut missing = Vec::new();
            for topic in topics {
                if !self.topic_is_ready(topic).await? {
                    missing.push(*topic);
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed_because(format!(
                    "topics {missing:?} were created but have no leader after {:?}",
                    self.options.request_timeout
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn topic_is_ready(&self, topic: &str) -> Result<bool> {
        let producer = self.producer.clone();
        let timeout = self.options.request_timeout;
        let topic = topic.to_owned();
        blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| failed(format!("cannot read the metadata of `{topic}`"), e))?;
            Ok(metadata.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions()
                        .iter()
                        .all(|p| p.error().is_none() && p.leader() >= 0)
            }))
        })
        .await
    }

    /// One metadata request: whether a broker answers, for readiness.
    pub async fn ping(&self) -> Result<()> {
        let producer = self.producer.clone();
        let timeout = self.options.request_timeout;
        blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| failed("no broker answers a metadata request", e))
        })
        .await
    }

    async fn ensure_topics(&self, topics: &[&str]) -> Result<()> {
        if !self.options.create_topics_on_use {
            return Ok(());
        }
        let missing: Vec<&str> = {
            let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
            topics
                .iter()
                .copied()
                .filter(|t| !ready.contains(*t))
                .collect()
        };
        self.create_topics(&missing).await
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
            let mut record = FutureRecord::to(&message.topic)
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

impl KafkaBus {
    /// Joins `group` on `topics`; `reset` is where a partition with no committed offset starts.
    async fn join(
        &self,
        group: &str,
        topics: &[&str],
        reset: &str,
    ) -> Result<Box<dyn Subscription>> {
        let topics = distinct(topics);
        if topics.is_empty() {
            return Err(failed_because(format!(
                "group `{group}` subscribed to no topic"
            )));
        }
        self.ensure_topics(&topics).await?;
        let (changes_tx, changes) = watch::channel(0);
        let context = GroupContext {
            group: group.to_owned(),
            membership: Mutex::new(Membership::default()),
            changes: changes_tx,
        };
        let mut config = client_config(&self.options);
        if let Some(timeout) = self.options.session_timeout {
            config.set("session.timeout.ms", millis(timeout).to_string());
        }
        let consumer: StreamConsumer<GroupContext> = config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", reset)
            .set("enable.partition.eof", "false")
            .set(
                "fetch.wait.max.ms",
                millis(self.options.fetch_wait).to_string(),
            )
            .create_with_context(context)
            .map_err(|e| failed(format!("cannot create a consumer for group `{group}`"), e))?;
        consumer
            .subscribe(&topics)
            .map_err(|e| failed(format!("group `{group}` cannot subscribe to {topics:?}"), e))?;
        let mut subscription = KafkaSubscription {
            consumer: Some(Arc::new(consumer)),
            group: group.to_owned(),
            buffer: VecDeque::new(),
            generation: 0,
            changes,
            committed: HashMap::new(),
            request_timeout: self.options.request_timeout,
        };
        tokio::time::timeout(self.options.join_timeout, subscription.await_assignment())
            .await
            .map_err(|_| {
                failed_because(format!(
                    "group `{group}` assigned this member no partitions within {:?}",
                    self.options.join_timeout
                ))
            })??;
        Ok(Box::new(subscription))
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

/// What the group has currently given this member.
#[derive(Debug, Default)]
struct Membership {
    /// Partitions assigned now; `None` until the first assignment.
    assigned: Option<Vec<(String, i32)>>,
    /// Rebalance events seen (assignments and revocations).
    generation: u64,
}

/// Follows the member's rebalances. librdkafka calls it from within `recv`, on the thread
/// that polls, so it only records what happened and signals it.
struct GroupContext {
    group: String,
    membership: Mutex<Membership>,
    changes: watch::Sender<u64>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut membership = self
            .membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match rebalance {
            Rebalance::Assign(partitions) => {
                let assigned: Vec<(String, i32)> = partitions
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                tracing::debug!(group = %self.group, ?assigned, "partitions assigned");
                membership.assigned = Some(assigned);
            }
            Rebalance::Revoke(_) => {
                tracing::debug!(group = %self.group, "partitions revoked");
                if membership.assigned.is_some() {
                    membership.assigned = Some(Vec::new());
                }
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance failed");
            }
        }
        membership.generation += 1;
        self.changes.send_replace(membership.generation);
    }
}

/// One member of a consumer group.
pub struct KafkaSubscription {
    /// `None` only while dropping.
    consumer: Option<Arc<StreamConsumer<GroupContext>>>,
    group: String,
    /// Records received and not yet returned by `poll`, all of the current assignment.
    buffer: VecDeque<Record>,
    /// The rebalance generation `buffer` and `committed` belong to.
    generation: u64,
    changes: watch::Receiver<u64>,
    /// The group's committed next offset per partition, as far as this member knows: read
    /// from the broker on first need after each rebalance, raised by each commit.
    committed: HashMap<(String, i32), i64>,
    request_timeout: Duration,
}

impl fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("group", &self.group)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl KafkaSubscription {
    fn consumer(&self) -> Result<Arc<StreamConsumer<GroupContext>>> {
        self.consumer.clone().ok_or(Error::Closed)
    }

    fn assigned(&self) -> Option<Vec<(String, i32)>> {
        self.consumer.as_ref().and_then(|c| {
            c.context()
                .membership
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .assigned
                .clone()
        })
    }

    /// Drops what belongs to an earlier assignment when a rebalance happened since.
    fn follow_rebalances(&mut self) {
        let generation = *self.changes.borrow_and_update();
        if generation != self.generation {
            self.generation = generation;
            self.buffer.clear();
            self.committed.clear();
        }
    }

    /// Takes one result of `recv` into the buffer. A consumer error that librdkafka recovers
    /// from by itself (a broker restarting, a topic not yet known) is logged; a fatal one ends
    /// the subscription.
    fn accept(&mut self, received: Result<BorrowedMessage<'_>, KafkaError>) -> Result<()> {
        self.follow_rebalances();
        match received {
            Ok(message) => {
                self.buffer.push_back(record(&message));
                Ok(())
            }
            Err(error @ KafkaError::MessageConsumptionFatal(_)) => Err(failed(
                format!("the consumer of group `{}` failed", self.group),
                error,
            )),
            Err(error) => {
                tracing::warn!(group = %self.group, %error, "consumer error; librdkafka retries");
                Ok(())
            }
        }
    }

    async fn await_assignment(&mut self) -> Result<()> {
        let consumer = self.consumer()?;
        while self.assigned().is_none() {
            tokio::select! {
                received = consumer.recv() => self.accept(received)?,
                _ = self.changes.changed() => {}
            }
        }
        self.follow_rebalances();
        Ok(())
    }

    /// The group's committed next offsets of `partitions`, from this member's knowledge or
    /// else from the group coordinator (`None`: nothing committed).
    async fn committed_offsets(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<i64>>> {
        let unknown: Vec<(String, i32)> = partitions
            .iter()
            .filter(|p| !self.committed.contains_key(*p))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let consumer = self.consumer()?;
            let timeout = self.request_timeout;
            let group = self.group.clone();
            let fetched = blocking(move || {
                let mut list = TopicPartitionList::new();
                for (topic, partition) in &unknown {
                    list.add_partition(topic, *partition);
                }
                let list = consumer.committed_offsets(list, timeout).map_err(|e| {
                    failed(format!("cannot read the offsets of group `{group}`"), e)
                })?;
                Ok(list
                    .elements()
                    .iter()
                    .map(|e| {
                        let offset = match e.offset() {
                            Offset::Offset(offset) => offset,
                            _ => -1,
                        };
                        ((e.topic().to_owned(), e.partition()), offset)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
            self.committed.extend(fetched);
        }
        Ok(partitions
            .iter()
            .map(|p| self.committed.get(p).copied().filter(|o| *o >= 0))
            .collect())
    }
}

fn record(message: &BorrowedMessage<'_>) -> Record {
    Record {
        topic: message.topic().to_owned(),
        partition: u32::try_from(message.partition()).unwrap_or_default(),
        offset: u64::try_from(message.offset()).unwrap_or_default(),
        // Keys are task ids, which this adapter writes as UTF-8; another producer's bytes are
        // kept readable rather than failing the whole poll.
        key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        payload: message.payload().unwrap_or_default().to_vec(),
    }
}

/// The commit errors that mean "this member no longer owns these partitions" (a rebalance
/// happened, or the member was evicted): the records will be delivered to their next owner,
/// which is at-least-once, so the role goes on instead of failing.
fn lost_ownership(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::ConsumerCommit(
            RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::AssignmentLost
                | RDKafkaErrorCode::State
        )
    )
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn poll(&mut self, max: usize) -> Result<Vec<Record>> {
        let max = max.max(1);
        let consumer = self.consumer()?;
        self.follow_rebalances();
        while self.buffer.is_empty() {
            tokio::select! {
                received = consumer.recv() => self.accept(received)?,
                // A rebalance served inside `recv` is seen here, so that the loop clears
                // the buffer before anything else.
                _ = self.changes.changed() => self.follow_rebalances(),
            }
            // Whatever else is ready, without waiting.
            while self.buffer.len() < max {
                match consumer.recv().now_or_never() {
                    Some(received) => self.accept(received)?,
                    None => break,
                }
            }
        }
        let take = max.min(self.buffer.len());
        Ok(self.buffer.drain(..take).collect())
    }

    async fn commit(&mut self, records: &[Record]) -> Result<()> {
        self.follow_rebalances();
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for r in records {
            let offset = i64::try_from(r.offset)
                .map_err(|_| failed_because(format!("offset {} out of range", r.offset)))?;
            let partition = i32::try_from(r.partition)
                .map_err(|_| failed_because(format!("partition {} out of range", r.partition)))?;
            let entry = next.entry((r.topic.clone(), partition)).or_insert(0);
            *entry = (*entry).max(offset + 1);
        }
        let partitions: Vec<(String, i32)> = next.keys().cloned().collect();
        let committed = self.committed_offsets(&partitions).await?;
        let forward: Vec<((String, i32), i64)> = next
            .into_iter()
            .zip(committed)
            .filter(|((_, offset), committed)| committed.is_none_or(|c| *offset > c))
            .map(|(entry, _)| entry)
            .collect();
        if forward.is_empty() {
            return Ok(());
        }
        let consumer = self.consumer()?;
        let group = self.group.clone();
        let to_commit = forward.clone();
        let outcome = blocking(move || {
            let mut list = TopicPartitionList::new();
            for ((topic, partition), offset) in &to_commit {
                list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                    .map_err(|e| failed("cannot build a commit", e))?;
            }
            match consumer.commit(&list, CommitMode::Sync) {
                Ok(()) => Ok(true),
                Err(error) if lost_ownership(&error) => {
                    tracing::warn!(%group, %error, "commit refused after a rebalance; the records will be delivered again");
                    Ok(false)
                }
                Err(error) => Err(failed(format!("group `{group}` cannot commit"), error)),
            }
        })
        .await?;
        if outcome {
            self.committed.extend(forward);
        } else {
            self.committed.clear();
        }
        Ok(())
    }

    /// Over the partitions assigned to this member: high watermark minus the group's committed
    /// offset (the low watermark where the group has committed nothing).
    async fn lag(&mut self) -> Result<Option<u64>> {
        self.follow_rebalances();
        let Some(assigned) = self.assigned() else {
            return Ok(None);
        };
        if assigned.is_empty() {
            return Ok(Some(0));
        }
        let committed = self.committed_offsets(&assigned).await?;
        let consumer = self.consumer()?;
        let timeout = self.request_timeout;
        // One request per partition, all at once: in turn, a dozen partitions on a slow
        // broker took seconds.
        let reads = assigned
            .into_iter()
            .zip(committed)
            .map(|((topic, partition), committed)| {
                let consumer = consumer.clone();
                blocking(move || {
                    let (low, high) = consumer
                        .fetch_watermarks(&topic, partition, timeout)
                        .map_err(|e| {
                            failed(
                                format!("cannot read the watermarks of {topic}/{partition}"),
                                e,
                            )
                        })?;
                    let from = committed.unwrap_or(low).max(low);
                    Ok(u64::try_from(high - from).unwrap_or(0))
                })
            });
        let lags = futures::future::try_join_all(reads).await?;
        Ok(Some(lags.into_iter().sum()))
    }
}

impl Drop for KafkaSubscription {
    /// Closing a consumer leaves the group (so its partitions go to the other members at
    /// once) and blocks until the broker answered, so it runs off the runtime when there is
    /// one.
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || drop(consumer));
                }
                Err(_) => drop(consumer),
            }
        }
    }
}
