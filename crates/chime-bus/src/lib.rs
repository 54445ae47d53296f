//! The bus port: the design's topics (`task-events`, `schedule-ticks`, `execute-task`,
//! `notification-sent`), messages keyed by task id, consumer groups that resume from their
//! committed offsets.
//!
//! Semantics every adapter keeps (checked by [`contract`]):
//! - `publish` returns once the messages are durable; messages with the same topic and key are
//!   delivered in publish order.
//! - A group sees every message of its topics at least once. A new subscription of a group
//!   resumes after the group's committed position; records polled but not committed are
//!   delivered again after a restart. Handlers are therefore idempotent.
//! - `poll` waits for records (it is cancel-safe, so it can sit in a `select!` with shutdown).
//! - `lag` (optional) counts what a group has still to commit, for monitoring.
//!
//! Adapters: [`log`] (embedded: a durable log in SQLite with in-process wake-ups) and, behind
//! the `kafka` feature, `kafka` (any Kafka-protocol broker, for the distributed mode).

use async_trait::async_trait;

/// The suite every adapter passes: test code, compiled only for tests and for crates that
/// ask for it with the `contract` feature, never into the `chime` binary.
#[cfg(any(test, feature = "contract"))]
pub mod contract;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "log")]
pub mod log;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bus storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("consumer group `{0}` already has an active member on this bus")]
    GroupBusy(String),
    #[error("the bus is closed")]
    Closed,
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    /// Partitioning key: the task id. Order is kept per (topic, key).
    pub key: String,
    pub payload: Vec<u8>,
}

/// A message as consumed, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: String,
    pub payload: Vec<u8>,
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Appends `messages` durably, in order.
    async fn publish(&self, messages: Vec<Message>) -> Result<()>;

    /// Joins `group` on `topics`, positioned after the group's committed offsets (at the
    /// beginning of each topic when the group has committed nothing).
    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>>;

    /// Joins `group`, a group of this one subscriber (a unique name), on `topics`, positioned
    /// at their end: for a process that follows what happens from now on (a live feed) and
    /// never commits. What was published before it returns is not delivered.
    ///
    /// The default refuses: an adapter whose whole log is in one process (the embedded one)
    /// has in-process ways to follow it, and a new group there starts at the beginning.
    async fn subscribe_live(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        let _ = topics;
        Err(Error::Storage(
            format!("group `{group}`: this bus cannot start a subscription at the end").into(),
        ))
    }
}

#[async_trait]
pub trait Subscription: Send {
    /// Waits until at least one record is available, then returns up to `max` records that
    /// follow the ones returned before. Cancel-safe.
    async fn poll(&mut self, max: usize) -> Result<Vec<Record>>;

    /// Records that the group has handled `records` (and everything before them on their
    /// partitions): a later subscription of the group resumes after them.
    async fn commit(&mut self, records: &[Record]) -> Result<()>;

    /// How many records of this subscription's topics are published but not yet committed by
    /// its group (the `chime_bus_consumer_lag` gauge): for each topic (partition), its end
    /// offset minus the group's committed offset, summed. A Kafka adapter answers from the
    /// high watermarks of its assigned partitions. `None` when the adapter cannot tell; the
    /// default. Meant to be cheap enough to call about once a second.
    async fn lag(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
}
