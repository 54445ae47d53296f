//! The consumer-group side: joining a group, following its rebalances, polling, committing
//! and measuring lag. One file because these share one piece of state, the subscription's
//! view of its assignment (buffer, generation, committed offsets), which every operation
//! reads and a rebalance resets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::{blocking, client_config, distinct, failed, failed_because, millis, KafkaBus};
use crate::{Error, Record, Result, Subscription};

impl KafkaBus {
    /// Joins `group` on `topics`; `reset` is where a partition with no committed offset starts.
    pub(super) async fn join(
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
        let prefix = self.options.prefix.clone();
        let group = self.options.named(group);
        let group = group.as_str();
        let topics: Vec<String> = topics.iter().map(|t| self.options.named(t)).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let (changes_tx, changes) = watch::channel(0);
        let context = GroupContext {
            group: group.to_owned(),
            membership: Mutex::new(Membership::default()),
            changes: changes_tx,
        };
        let mut config = client_config(&self.options);
        if let Some(timeout) = self.options.session_timeout {
            let heartbeat = (timeout / 3).min(Duration::from_secs(1));
            config
                .set("session.timeout.ms", millis(timeout).to_string())
                .set("heartbeat.interval.ms", millis(heartbeat).to_string());
        }
        if let Some(interval) = self.options.max_poll_interval {
            config.set("max.poll.interval.ms", millis(interval).to_string());
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
            prefix,
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

/// What the group has currently given this member.
#[derive(Debug, Default)]
struct Membership {
    /// Partitions assigned now; `None` until the first assignment.
    assigned: Option<BTreeSet<(String, i32)>>,
    /// Partitions taken away since the subscription last looked (`follow_rebalances`).
    revoked: Vec<(String, i32)>,
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
        // Incremental (cooperative) rebalancing hands out and takes away only the partitions
        // that move; an eager one takes every partition away, then hands out the new set. So
        // both are: an assignment adds, a revocation removes.
        let listed = |partitions: &TopicPartitionList| -> Vec<(String, i32)> {
            partitions
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect()
        };
        match rebalance {
            Rebalance::Assign(partitions) => {
                let added = listed(partitions);
                tracing::debug!(group = %self.group, ?added, "partitions assigned");
                membership
                    .assigned
                    .get_or_insert_with(BTreeSet::new)
                    .extend(added);
            }
            Rebalance::Revoke(partitions) => {
                let removed = listed(partitions);
                tracing::debug!(group = %self.group, ?removed, "partitions revoked");
                if let Some(assigned) = membership.assigned.as_mut() {
                    for partition in &removed {
                        assigned.remove(partition);
                    }
                }
                membership.revoked.extend(removed);
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
    /// The group's name on the broker.
    group: String,
    /// [`KafkaOptions::prefix`](super::KafkaOptions::prefix): taken off the topic of every
    /// record returned, put back on to commit.
    prefix: String,
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
                .as_ref()
                .map(|a| a.iter().cloned().collect())
        })
    }

    /// Drops what belongs to partitions taken away since the last look: their buffered
    /// records (their next owner, or this member if they come back, reads them again from the
    /// committed offset) and what this member knew of their committed offsets. Partitions kept
    /// through an incremental rebalance keep their records: librdkafka goes on fetching them
    /// from where it was.
    fn follow_rebalances(&mut self) {
        let generation = *self.changes.borrow_and_update();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let revoked: HashSet<(String, i32)> = match &self.consumer {
            Some(consumer) => std::mem::take(
                &mut consumer
                    .context()
                    .membership
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .revoked,
            )
            .into_iter()
            .collect(),
            None => return,
        };
        if revoked.is_empty() {
            return;
        }
        let prefix = &self.prefix;
        self.buffer.retain(|r| {
            let partition = i32::try_from(r.partition).unwrap_or_default();
            !revoked.contains(&(format!("{prefix}{}", r.topic), partition))
        });
        self.committed
            .retain(|partition, _| !revoked.contains(partition));
    }

    /// Takes one result of `recv` into the buffer. A consumer error that librdkafka recovers
    /// from by itself (a broker restarting, a topic not yet known) is logged; a fatal one ends
    /// the subscription.
    fn accept(&mut self, received: Result<BorrowedMessage<'_>, KafkaError>) -> Result<()> {
        self.follow_rebalances();
        match received {
            Ok(message) => {
                self.buffer.push_back(record(&message, &self.prefix));
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

fn record(message: &BorrowedMessage<'_>, prefix: &str) -> Record {
    let topic = message.topic();
    Record {
        topic: topic.strip_prefix(prefix).unwrap_or(topic).to_owned(),
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
            let topic = format!("{}{}", self.prefix, r.topic);
            let entry = next.entry((topic, partition)).or_insert(0);
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
