//! The store port: everything Chime keeps, cut into one small trait per role so that each
//! role sees only what it owns (apalis-style capability traits), and one adapter type can
//! implement them all.
//!
//! - [`TaskStore`]: the definition role's tasks and the history it builds from events.
//! - [`ScheduleStore`]: the execution role's next due instant per task, claimed and advanced
//!   in the same transaction that writes `execute_task` to the outbox.
//! - [`DeliveryStore`]: the notification role's deliveries, unique per (occurrence, channel),
//!   and the in-app inbox.
//! - [`OutboxStore`]: the transactional outbox the relay drains to the bus.
//!
//! Every state change that publishes an event takes its [`OutboxEvent`]s as an argument and
//! writes them in the same transaction: no lost or phantom events when a process dies between
//! two writes. Instants are kept to the microsecond (callers truncate before writing, so what
//! they write is what they read back). Task bodies are kept as JSON documents (the API shape), so a document store
//! can implement the port as easily as SQL. Adapters: [`sqlite`] (embedded default).
//! [`contract`] is the suite every adapter passes.

use std::sync::Arc;

use async_trait::async_trait;
use chime_core::event::{Channel, DeliveryOutcome, Event, OccurrenceKey};
use chime_core::{NotificationId, TaskId, UserId};
use jiff::Timestamp;

pub mod contract;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The task changed since it was read (optimistic concurrency); read again and retry.
    #[error("the task was changed concurrently")]
    Conflict,
    /// The store cannot take writes now (disk full, read-only); retrying later may succeed.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the store failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// An event to publish, as it goes into the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub topic: &'static str,
    pub key: String,
    pub payload: Vec<u8>,
}

impl From<&Event> for OutboxEvent {
    fn from(event: &Event) -> Self {
        OutboxEvent {
            topic: event.topic().name(),
            key: event.key(),
            payload: event.to_bytes(),
        }
    }
}

/// An event read back from the outbox, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub seq: i64,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
}

/// A task as the definition role keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: TaskId,
    pub user_id: UserId,
    /// 1 on creation, +1 on every update.
    pub version: u64,
    /// The task's fields in the API shape (`TaskSpec::to_json`).
    pub body: serde_json::Value,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
}

/// One fired occurrence in a task's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub due_at: Timestamp,
    pub seq: u32,
    pub fired_at: Timestamp,
    pub late: bool,
    pub skipped: bool,
    pub coalesced: u32,
    pub deliveries: Vec<DeliveryStatus>,
}

/// A delivery's state as history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryStatus {
    pub channel: Channel,
    pub outcome: DeliveryOutcome,
    pub attempts: u32,
    pub at: Timestamp,
    pub detail: Option<String>,
}

#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    async fn create_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<()>;

    /// Replaces the task if its stored version is `task.version - 1` (else [`Error::Conflict`];
    /// `Ok(false)` when it does not exist for this user).
    async fn update_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<bool>;

    /// Deletes the task if it exists for `user` at `version` (`Ok(false)` when it does not
    /// exist; [`Error::Conflict`] when its version moved).
    async fn delete_task(
        &self,
        user: &UserId,
        id: TaskId,
        version: u64,
        event: OutboxEvent,
    ) -> Result<bool>;

    /// The task if it exists and belongs to `user`.
    async fn get_task(&self, user: &UserId, id: TaskId) -> Result<Option<TaskRecord>>;

    /// `user`'s tasks in id (creation) order, after `after`, at most `limit`.
    async fn list_tasks(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>>;

    /// Records fired occurrences (from `execute_task`); replays are ignored.
    async fn record_fired(&self, fired: &[FiredOccurrence]) -> Result<()>;

    /// Records delivery states (from `notification_sent`); the latest attempt count wins.
    async fn record_delivery_states(&self, states: &[DeliveryState]) -> Result<()>;

    /// `user`'s task's fired occurrences, newest first, due before `before`, at most `limit`.
    async fn history(
        &self,
        user: &UserId,
        id: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>>;
}

/// A fired occurrence, for history.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredOccurrence {
    pub occurrence: OccurrenceKey,
    pub user_id: UserId,
    pub seq: u32,
    pub fired_at: Timestamp,
    pub late: bool,
    pub skipped: bool,
    pub coalesced: u32,
}

/// A delivery's state, for history.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryState {
    pub occurrence: OccurrenceKey,
    pub status: DeliveryStatus,
}

/// A task as the execution role schedules it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledTask {
    pub task_id: TaskId,
    pub user_id: UserId,
    pub version: u64,
    pub body: serde_json::Value,
    /// The next occurrence to fire.
    pub due_at: Timestamp,
    pub seq: u32,
}

/// A task event as it changes the schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleChange {
    /// The task as of `version`, to fire next at `next` (`None`: nothing left to fire).
    Set {
        task_id: TaskId,
        user_id: UserId,
        version: u64,
        body: serde_json::Value,
        next: Option<(Timestamp, u32)>,
    },
    /// The task was deleted at `version`.
    Delete { task_id: TaskId, version: u64 },
}

/// What firing one due row does: events to publish and the row's next state.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    pub events: Vec<OutboxEvent>,
    /// The next occurrence to fire, or `None` to remove the task from the schedule.
    pub next: Option<(Timestamp, u32)>,
}

/// Decides how to fire a claimed row; pure, runs inside the claiming transaction.
pub type FireFn = Arc<dyn Fn(&ScheduledTask) -> Fire + Send + Sync>;

#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// Applies task events in order; each is ignored unless its version is newer than the
    /// stored one (replays are harmless). A removed task's version is remembered so a late
    /// replay of an older `task_updated` cannot bring it back.
    async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> Result<()>;

    /// The earliest due instant in the schedule.
    async fn next_due(&self) -> Result<Option<Timestamp>>;

    /// Claims up to `max` rows due at or before `now` (earliest first), applies `fire` to each
    /// and commits the outbox events and new row states in one transaction. Two instances
    /// never claim the same row. Returns how many rows were fired.
    async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> Result<usize>;

    /// The task's scheduled row, if any (for tests and diagnostics).
    async fn scheduled(&self, task_id: TaskId) -> Result<Option<ScheduledTask>>;
}

/// One delivery to record, with what it publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryWrite {
    pub occurrence: OccurrenceKey,
    pub user_id: UserId,
    pub status: DeliveryStatus,
    /// For the in-app channel: the inbox item this delivery writes.
    pub inbox: Option<InboxItem>,
    /// `notification_sent`.
    pub event: OutboxEvent,
}

/// An in-app notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub id: NotificationId,
    pub user_id: UserId,
    pub task_id: TaskId,
    pub task_name: String,
    pub due_at: Timestamp,
    pub created_at: Timestamp,
    pub read: bool,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Records deliveries in one transaction. A delivery whose (occurrence, channel) is
    /// already recorded is left alone: its inbox item and event are not written again.
    /// Returns the indexes (into `writes`) of those that were new.
    async fn record_deliveries(&self, writes: &[DeliveryWrite]) -> Result<Vec<usize>>;

    /// `user`'s inbox, newest first, older than `before` (an item id), at most `limit`.
    async fn inbox(
        &self,
        user: &UserId,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<Vec<InboxItem>>;

    /// Marks `user`'s items read; returns how many changed.
    async fn mark_read(&self, user: &UserId, ids: &[NotificationId]) -> Result<u64>;

    async fn unread_count(&self, user: &UserId) -> Result<u64>;
}

#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// The oldest events not yet relayed, in commit order, at most `max`.
    async fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxRow>>;

    /// Removes relayed events up to and including `seq`.
    ///
    /// This relies on `seq` order being commit order: no event with a lower `seq` may commit
    /// after a batch holding a higher one was read. SQLite has one writer, so it holds; an
    /// adapter whose sequences are assigned before commit (PostgreSQL) must serialise outbox
    /// writes or ack explicit ids instead.
    async fn outbox_ack(&self, seq: i64) -> Result<()>;

    /// Notified after every commit that wrote to the outbox, so the relay wakes at once.
    fn outbox_signal(&self) -> Arc<tokio::sync::Notify>;
}

/// Everything one adapter provides.
pub trait Store: TaskStore + ScheduleStore + DeliveryStore + OutboxStore {}
impl<T: TaskStore + ScheduleStore + DeliveryStore + OutboxStore> Store for T {}
