//! The store port: everything Chime keeps, cut into one small trait per role so that each
//! role sees only what it owns (apalis-style capability traits), and one adapter type can
//! implement them all.
//!
//! - [`TaskStore`]: the definition role's tasks and the history it builds from events.
//! - [`ScheduleStore`]: the execution role's next due instant per task, claimed and advanced
//!   in the same transaction that writes `execute_task` to the outbox.
//! - [`DeliveryStore`]: the notification role's deliveries, unique per (occurrence, channel, target),
//!   and the in-app inbox.
//! - [`OutboxStore`]: the transactional outbox the relay drains to the bus.
//! - [`SessionStore`]: the web role's browser sessions, shared by every `web` instance on the
//!   store (and kept across restarts).
//!
//! Every state change that publishes an event takes its [`OutboxEvent`]s as an argument and
//! writes them in the same transaction: no lost or phantom events when a process dies between
//! two writes. Instants are kept to the microsecond (callers truncate before writing, so what
//! they write is what they read back). Task bodies are kept as JSON documents (the API shape), so a document store
//! can implement the port as easily as SQL. Adapters: `sqlite` (embedded default), `postgres`
//! and `mongodb` (distributed; features `postgres` and `mongodb`).
//! [`retention`] is what a retention policy deletes of the past, a window at a time.
//! [`reencrypt`] is the small capability key rotation needs (personal data is encrypted
//! above the port, by a decorator, so adapters never see keys).
//! `contract` is the suite every adapter passes: test code, compiled only for this crate's
//! tests and for crates that ask for it with the `contract` feature (a decorator's tests), never
//! into the `chime` binary.
//!
//! One file, though long: it is the store's whole interface (every port with the records it
//! speaks), which adapters, decorators and callers read together; the implementations are cut
//! by capability in each adapter's folder.

use std::sync::Arc;

use async_trait::async_trait;
use chime_core::event::{Channel, DeliveryOutcome, Event, OccurrenceKey};
use chime_core::{NotificationId, TaskId, UserId};
use jiff::Timestamp;

#[cfg(any(test, feature = "contract"))]
pub mod contract;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod reencrypt;
pub mod retention;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mongodb"))]
mod rows;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(any(feature = "postgres", feature = "mongodb"))]
mod wakeups;

pub use reencrypt::{PiiColumn, PiiTable, Reencrypt, ReencryptBatch, RewriteFn};
pub use retention::{PastCursor, PastKind, Purged, RetentionStore};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The task changed since it was read (optimistic concurrency): read again and retry. Also
    /// a put of a destination under the id of another user's.
    #[error("the record was changed concurrently or belongs to another user")]
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
    /// Set on `execute_task` ([`chime_core::event::ExecuteTask::handoff`]): a store shared by
    /// several processes also keeps the event under this id until a notification instance has
    /// recorded its deliveries ([`DeliveryStore::record_handled`]), so that any instance can
    /// take it over when the bus has not brought it within a few seconds (its consumer died or
    /// was cut off, and the broker has not moved its partitions yet); see
    /// [`OutboxStore::claim_handoffs`].
    pub handoff: Option<String>,
}

impl From<&Event> for OutboxEvent {
    fn from(event: &Event) -> Self {
        OutboxEvent {
            topic: event.topic().name(),
            key: event.key(),
            payload: event.to_bytes(),
            handoff: match event {
                Event::ExecuteTask(e) => Some(e.handoff()),
                _ => None,
            },
        }
    }
}

/// An `execute_task` event taken over from the store ([`OutboxStore::claim_handoffs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// Its handoff id ([`OutboxEvent::handoff`]).
    pub id: String,
    /// The event, as in the outbox.
    pub payload: Vec<u8>,
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
    /// Which recipient of the channel (a push subscription id); empty when it has one.
    pub target: String,
    pub outcome: DeliveryOutcome,
    pub attempts: u32,
    /// When it reached this state (sent, dead-lettered, skipped, or last attempted).
    pub at: Timestamp,
    /// Why it was skipped or dead-lettered, or the last error of a pending one.
    pub detail: Option<String>,
    /// The provider's id for the message.
    pub provider_id: Option<String>,
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

    /// The task whoever owns it. Only for the admin support read, which the HTTP layer
    /// audits; every user-facing path goes through [`TaskStore::get_task`].
    async fn task_by_id(&self, id: TaskId) -> Result<Option<TaskRecord>>;

    /// `user`'s tasks in id (creation) order, after `after`, at most `limit`.
    async fn list_tasks(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>>;

    /// Creates `task` as [`TaskStore::create_task`] does, unless its owner already has
    /// `limit` tasks; returns whether it was created. Adapters answer exactly under concurrent
    /// creates of one user, in O(1): the count is kept in the transactions that add and remove
    /// tasks, and read in the create's own. (The default counts first, then creates: neither
    /// exact under concurrency nor O(1); adapters override it.)
    async fn create_task_within(
        &self,
        task: &TaskRecord,
        event: OutboxEvent,
        limit: u64,
    ) -> Result<bool> {
        if self.count_tasks(&task.user_id).await? >= limit {
            return Ok(false);
        }
        self.create_task(task, event).await.map(|()| true)
    }

    /// How many tasks `user` has. The default pages through [`TaskStore::list_tasks`];
    /// adapters (and decorators) should answer it directly, from an index.
    async fn count_tasks(&self, user: &UserId) -> Result<u64> {
        const PAGE: usize = 1000;
        let mut count = 0u64;
        let mut after = None;
        loop {
            let page = self.list_tasks(user, after, PAGE).await?;
            count += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.id),
                _ => return Ok(count),
            }
        }
    }

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
    /// The task nags: the fired occurrence is sent again every so often until acknowledged
    /// (durable work on its occurrence row, fired by [`ScheduleStore::wake_due`]).
    pub nag: Option<chime_core::task::Nag>,
    /// The task escalates: its first step is due then, unless the occurrence is acknowledged
    /// first (durable work on its occurrence row, fired by [`ScheduleStore::escalate_due`]).
    pub escalate_at: Option<Timestamp>,
}

/// Decides how to fire a claimed row; pure, runs inside the claiming transaction.
pub type FireFn = Arc<dyn Fn(&ScheduledTask) -> Fire + Send + Sync>;

/// A snoozed occurrence whose snooze has ended: it returns as a new occurrence of its task,
/// due at the end of the snooze (`key`), fired with the task as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Wake {
    /// The returning occurrence: the task, due when the snooze ends.
    pub key: OccurrenceKey,
    /// The snoozed occurrence's due instant.
    pub snoozed_from: Timestamp,
    pub user_id: UserId,
    /// The snoozed occurrence's position in its task's sequence, which the return keeps.
    pub seq: u32,
    /// The task's current version and stored body.
    pub version: u64,
    pub body: serde_json::Value,
    /// A repeat of a nagging task (nobody acknowledged it in time), not a snooze's return.
    pub repeat: bool,
}

/// What a returning occurrence does: the events it publishes and, for a snooze's return of
/// an escalating task, when its escalation starts again (a repeat carries on the chain of the
/// occurrence it repeats instead).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Woken {
    pub events: Vec<OutboxEvent>,
    pub escalate_at: Option<Timestamp>,
}

/// What a returning occurrence does, or `None` to leave it due (a body this release cannot
/// read yet); pure, runs inside the claiming transaction.
pub type WakeFn = Arc<dyn Fn(&Wake) -> Option<Woken> + Send + Sync>;

/// An occurrence still not acknowledged when its next escalation step fell due.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalate {
    pub key: OccurrenceKey,
    pub user_id: UserId,
    pub seq: u32,
    /// The step (0-based) and the instant it was due.
    pub step: u32,
    pub at: Timestamp,
    /// The task's current version and stored body.
    pub version: u64,
    pub body: serde_json::Value,
}

/// What a due escalation step does: the events it publishes and when the next step is due
/// (`None`: it was the last).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Escalated {
    pub events: Vec<OutboxEvent>,
    pub next_at: Option<Timestamp>,
}

/// What a due escalation step does, or `None` to leave it due (a body this release cannot
/// read yet); pure, runs inside the claiming transaction.
pub type EscalateFn = Arc<dyn Fn(&Escalate) -> Option<Escalated> + Send + Sync>;

#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// Applies task events in order; each is ignored unless its version is newer than the
    /// stored one (replays are harmless). A removed task's version is remembered so a late
    /// replay of an older `task_updated` cannot bring it back.
    async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> Result<()>;

    /// The earliest due instant in the schedule, of a snoozed occurrence's return or of an
    /// escalation step.
    async fn next_due(&self) -> Result<Option<Timestamp>>;

    /// Claims up to `max` rows due at or before `now` (earliest first), applies `fire` to each
    /// and commits the outbox events and new row states in one transaction. Two instances
    /// never claim the same row. Returns how many rows were fired.
    ///
    /// The fence ("what the API answered is what happens"): in the same transaction, a claimed
    /// row is fired only if its task is still in the [`TaskStore`] at the row's version. A row
    /// whose task was deleted or updated since (its event not applied to the schedule yet) is
    /// not fired: it becomes a tombstone at its version, and the change's own event brings
    /// the task's current state. So once a delete or an update has committed, no occurrence
    /// of the task's previous state is claimed; one claimed before it committed still goes out.
    /// This needs the tasks and the schedule in one database, as every adapter keeps them.
    async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> Result<usize>;

    /// Claims up to `max` snoozed occurrences whose snooze ended at or before `now` (earliest
    /// first) and, in one transaction, opens each one's return (a new occurrence due when
    /// the snooze ended), publishes `wake`'s events and marks the snooze returned, so it
    /// returns exactly once. A snooze whose task is gone ends without returning ("deleted
    /// means it will not fire"); an acknowledged occurrence has no snooze left to return.
    /// [`ScheduleStore::next_due`] counts pending returns. Returns how many returned.
    async fn wake_due(&self, now: Timestamp, max: usize, wake: WakeFn) -> Result<usize>;

    /// Claims up to `max` unacknowledged occurrences whose next escalation step is due at or
    /// before `now` (earliest first) and, in one transaction, publishes `step`'s events and
    /// moves the row to its next step, so each step fires exactly once. Acknowledging or
    /// snoozing an occurrence clears its pending step in the statement that records it, so no
    /// step is claimed after either committed; a step whose task is gone ends the chain.
    /// [`ScheduleStore::next_due`] counts pending steps. Returns how many steps were reached
    /// (each counted in the row's `escalated`, whatever it published).
    async fn escalate_due(&self, now: Timestamp, max: usize, step: EscalateFn) -> Result<usize>;

    /// The task's scheduled row, if any (for tests and diagnostics).
    async fn scheduled(&self, task_id: TaskId) -> Result<Option<ScheduledTask>>;

    /// Tasks the schedule has not caught up with: no row, or a row at an older version than
    /// the task. Normally only those whose event is on its way; after a restore of the store
    /// from a backup (or a bus that lost events) also those whose event will never come, which
    /// the execution role then applies itself. In id order after `after`, at most `limit`.
    async fn unscheduled_tasks(
        &self,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>>;
}

/// The query of [`ScheduleStore::unscheduled_tasks`] on both adapters (`$1` the id after
/// which, `$2` the limit).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const UNSCHEDULED_TASKS: &str =
    "SELECT t.id, t.user_id, t.version, t.body, t.created_at, t.modified_at
     FROM tasks t LEFT JOIN schedule s ON s.task_id = t.id
     WHERE t.id > $1 AND (s.task_id IS NULL OR s.version < t.version)
     ORDER BY t.id LIMIT $2";

/// One delivery to record, with what it publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryWrite {
    pub occurrence: OccurrenceKey,
    pub user_id: UserId,
    pub status: DeliveryStatus,
    /// For the in-app channel: the inbox item this delivery writes.
    pub inbox: Option<InboxItem>,
    /// For a pending delivery: what a worker needs to attempt it (opaque to the store).
    pub message: Option<serde_json::Value>,
    /// `notification_sent`, for a delivery recorded in its final state.
    pub event: Option<OutboxEvent>,
}

/// Identifies one delivery: one occurrence, one channel, one recipient of that channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub occurrence: OccurrenceKey,
    pub channel: Channel,
    pub target: String,
}

/// A pending delivery claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub key: DeliveryKey,
    pub user_id: UserId,
    /// Attempts made so far (0 before the first).
    pub attempts: u32,
    /// When its first attempt was made or due (the retry window counts from here).
    pub first_attempt_at: Timestamp,
    pub message: serde_json::Value,
    /// The lease this claim holds; [`DeliveryStore::record_attempt`] takes it back, so a
    /// worker whose lease ran out (and whose delivery another worker claimed) records nothing.
    pub lease_until: Timestamp,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Sent {
        provider_id: Option<String>,
    },
    /// Try again at `next_attempt_at`.
    Retry {
        next_attempt_at: Timestamp,
        error: String,
    },
    /// No more attempts.
    DeadLettered {
        error: String,
    },
    /// Not attempted, and never will be: its occurrence was acknowledged meanwhile (a retry
    /// or a delivery held by quiet hours). Recorded as skipped, with the reason.
    Withdrawn {
        reason: String,
    },
}

/// A browser's push subscription, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscriptionRecord {
    pub id: String,
    pub user_id: UserId,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub created_at: Timestamp,
}

/// A user's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub user_id: UserId,
    pub url: String,
    pub secret: String,
    pub created_at: Timestamp,
}

/// One of a user's destinations: a named URL of a chat or push service (ntfy, Gotify,
/// Telegram, Slack, Discord, Matrix), in the Apprise syntax. The URL carries the service's
/// token, so it is encrypted above the port like a webhook's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRecord {
    /// `dst_…`, unique across users.
    pub id: String,
    pub user_id: UserId,
    /// For people: "Phone (ntfy)", "Family chat".
    pub name: String,
    pub url: String,
    pub created_at: Timestamp,
}

/// A user's calendar feed: the generation of its secret URL that works now (the URL is
/// derived from it; rotating makes every earlier URL stop working).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRecord {
    pub user_id: UserId,
    pub generation: u32,
    pub created_at: Timestamp,
}

/// A user's profile as stored: its stored JSON form (`chime_core::profile::Profile::to_stored`),
/// encrypted whole above the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRecord {
    pub user_id: UserId,
    pub body: String,
    pub updated_at: Timestamp,
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
    /// Arrived during the owner's quiet hours: shown, without a sound or a system
    /// notification.
    pub silent: bool,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Records deliveries in one transaction. A delivery whose (occurrence, channel) is
    /// already recorded is left alone: its inbox item and event are not written again.
    /// Returns the indexes (into `writes`) of those that were new.
    async fn record_deliveries(&self, writes: &[DeliveryWrite]) -> Result<Vec<usize>>;

    /// [`DeliveryStore::record_deliveries`], and in the same transaction the handoffs of the
    /// events they were made from (`handled`, handoff ids) are done with, even when `writes`
    /// is empty (an occurrence with nothing to deliver): removed when the events came from the
    /// bus (`taken` false), marked recorded when they were taken over from the store (`taken`,
    /// so that the bus's copy, when it comes, is skipped: [`DeliveryStore::recorded_handoffs`]).
    /// The default, for a store that keeps no handoffs, records the deliveries only.
    async fn record_handled(
        &self,
        writes: &[DeliveryWrite],
        handled: &[String],
        taken: bool,
    ) -> Result<Vec<usize>> {
        let _ = (handled, taken);
        self.record_deliveries(writes).await
    }

    /// Of the handoffs `ids`, those whose deliveries were recorded by a takeover: their events
    /// need no recording when they come from the bus. The default (no handoffs kept): none.
    async fn recorded_handoffs(&self, ids: &[String]) -> Result<Vec<String>> {
        let _ = ids;
        Ok(Vec::new())
    }

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

    /// Claims up to `max` pending deliveries of `channel` whose next attempt is due at `now`,
    /// leasing them until `lease_until` so no other worker attempts them meanwhile (a worker
    /// that dies mid-attempt leaves the lease to expire, and the delivery is attempted again).
    async fn claim_deliveries(
        &self,
        channel: Channel,
        now: Timestamp,
        lease_until: Timestamp,
        max: usize,
    ) -> Result<Vec<ClaimedDelivery>>;

    /// The earliest instant a pending delivery of `channel` may be attempted (its next attempt,
    /// or its lease's end).
    async fn next_delivery_at(&self, channel: Channel) -> Result<Option<Timestamp>>;

    /// Records an attempt's result and its event (for final states) in one transaction, if the
    /// delivery is still pending under the lease `lease_until` of the claim that attempted it;
    /// otherwise (the lease ran out and another claim holds it) changes nothing.
    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        lease_until: Timestamp,
        at: Timestamp,
        result: AttemptResult,
        event: Option<OutboxEvent>,
    ) -> Result<()>;

    /// Notified when a delivery of `channel` became due through another process (a dead
    /// letter retried through the API there), so this process's worker for the channel looks
    /// at once instead of at its next idle check. `None`, the default, where every writer is
    /// in this process and its own wake-ups suffice.
    fn delivery_signal(&self, channel: Channel) -> Option<Arc<tokio::sync::Notify>> {
        let _ = channel;
        None
    }

    /// Puts a dead-lettered delivery of `user`'s back to pending, due at `now`, with a new
    /// retry window. `Ok(false)` when there is no such dead-lettered delivery.
    async fn retry_dead_letter(
        &self,
        user: &UserId,
        key: &DeliveryKey,
        now: Timestamp,
    ) -> Result<bool>;

    /// Deliveries of `user`'s task that are not final yet, by occurrence (for history).
    async fn pending_deliveries(
        &self,
        user: &UserId,
        task: TaskId,
    ) -> Result<Vec<(OccurrenceKey, DeliveryStatus)>>;
}

/// Where the notification role finds a user's recipients for per-user channels.
#[async_trait]
pub trait RecipientStore: Send + Sync + 'static {
    /// Adds (or, for a known endpoint, refreshes) a push subscription of `sub.user_id`.
    /// Returns the stored record (an existing endpoint keeps its id).
    async fn put_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
    ) -> Result<PushSubscriptionRecord>;

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscriptionRecord>>;

    /// Removes a subscription (of `user` when given); `Ok(false)` when there was none.
    async fn remove_push_subscription(&self, user: Option<&UserId>, id: &str) -> Result<bool>;

    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()>;

    async fn webhook(&self, user: &UserId) -> Result<Option<WebhookEndpoint>>;

    async fn remove_webhook(&self, user: &UserId) -> Result<bool>;

    /// Stores a destination of `destination.user_id`, or replaces the name and URL of the one
    /// with its id, which keeps its `created_at` (so an edit does not move it in the list).
    /// [`Error::Conflict`], changing nothing, when that id is another user's.
    async fn put_destination(&self, destination: &DestinationRecord) -> Result<()>;

    /// The user's destinations, oldest first (then by id).
    async fn destinations(&self, user: &UserId) -> Result<Vec<DestinationRecord>>;

    /// Destination `id` (of `user` when given: a chat service's callback knows only the id).
    async fn destination(
        &self,
        user: Option<&UserId>,
        id: &str,
    ) -> Result<Option<DestinationRecord>>;

    /// Removes `user`'s destination `id`; `Ok(false)` when there was none.
    async fn remove_destination(&self, user: &UserId, id: &str) -> Result<bool>;

    /// Stores `profile`, replacing the user's previous one.
    async fn put_profile(&self, profile: &ProfileRecord) -> Result<()>;

    /// The user's profile; `None` when they never saved one.
    async fn profile(&self, user: &UserId) -> Result<Option<ProfileRecord>>;

    /// Creates the user's calendar feed (generation 1) or rotates it (the next generation),
    /// created at `now`.
    async fn rotate_feed(&self, user: &UserId, now: Timestamp) -> Result<FeedRecord>;

    /// The user's calendar feed; `None` when they have none (never made, or revoked).
    async fn feed(&self, user: &UserId) -> Result<Option<FeedRecord>>;

    /// Revokes the user's calendar feed; `Ok(false)` when there was none.
    async fn remove_feed(&self, user: &UserId) -> Result<bool>;
}

#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// The oldest events not yet relayed, by seq, at most `max`.
    ///
    /// Seq order is commit order for the events of one task on one topic (an adapter takes
    /// the task's lock before it writes them), but not across tasks when several processes
    /// write: PostgreSQL takes a sequence value before commit, so an event with a lower seq
    /// may become visible after a batch holding a higher one was read. It is then returned
    /// by a later batch.
    async fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxRow>>;

    /// What a relay publishes next: like [`OutboxStore::outbox_batch`], but when several
    /// processes' relays drain one outbox, each event goes to one of them at a time.
    ///
    /// The events are claimed for this store instance for a lease (the relay acknowledges
    /// them well within it); another instance's claim skips them until the lease runs out,
    /// so a relay that died mid-batch delays its events by at most the lease and never loses
    /// them. An event is not claimed while an older event with the same key is claimed by
    /// another instance, so one task's events reach the bus in order whichever relay
    /// publishes them. Claiming again from the same instance returns its own claimed events
    /// too (a relay that failed to publish retries them at once).
    ///
    /// The default, for a store one process owns (one relay), is `outbox_batch`.
    async fn outbox_claim(&self, max: usize) -> Result<Vec<OutboxRow>> {
        self.outbox_batch(max).await
    }

    /// Removes exactly the relayed events with these seqs (unknown ones are ignored).
    ///
    /// Not "everything up to a seq": an event that committed late with a lower seq than the
    /// last relayed one (see [`OutboxStore::outbox_batch`]) was never read, and acknowledging
    /// by range would delete it unpublished. Hiding rows newer than the oldest open
    /// transaction (PostgreSQL's snapshot `xmin`) would also keep ranges safe, but any long
    /// transaction in the cluster would then stall the relay, and a document store has no
    /// such horizon; ids work on every store.
    async fn outbox_ack(&self, seqs: &[i64]) -> Result<()>;

    /// How many events are waiting to be relayed (the `chime_outbox_backlog` gauge). The
    /// relay asks at most about once a second, so a count over the outbox is cheap enough.
    async fn outbox_len(&self) -> Result<u64>;

    /// Notified after every commit that wrote to the outbox, so the relay wakes at once. An
    /// adapter shared by several processes also notifies on the others' commits.
    fn outbox_signal(&self) -> Arc<tokio::sync::Notify>;

    /// Whether this store keeps handoffs ([`OutboxEvent::handoff`]). The default, for a store
    /// one process owns, does not: there the bus is in-process and no other instance could
    /// take an event over.
    fn keeps_handoffs(&self) -> bool {
        false
    }

    /// Claims up to `max` handoffs written at least `after` ago (the database's clock), not
    /// recorded yet and not under another claim's live lease, oldest first, and leases them for
    /// `lease`. A claimed handoff stays claimable until its deliveries are recorded
    /// ([`DeliveryStore::record_handled`], by whichever instance gets there first), so a
    /// claimer that dies leaves it to be claimed again when the lease runs out. The default (a
    /// store that keeps none) claims nothing.
    async fn claim_handoffs(
        &self,
        after: std::time::Duration,
        lease: std::time::Duration,
        max: usize,
    ) -> Result<Vec<Handoff>> {
        let _ = (after, lease, max);
        Ok(Vec::new())
    }
}

/// A browser session of the web role (its BFF), as the store keeps it.
///
/// Keyed by a hash of the session id, never the id itself: whoever reads the store cannot
/// present a session's cookie. The access token and the PKCE verifier are secrets; the store
/// keeps what it is given (the encrypting decorator seals them above the port).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The SHA-256 of the session id (the caller's encoding).
    pub id_hash: String,
    /// The CSRF token every state-changing call of this session must carry.
    pub csrf: String,
    /// Who signed in; `None` for an anonymous session.
    pub user: Option<UserId>,
    /// The OIDC access token the BFF forwards for this user (none with the local issuer).
    pub access_token: Option<String>,
    pub access_expires_at: Option<Timestamp>,
    /// An OIDC sign-in under way.
    pub pending: Option<PendingSignIn>,
    /// When the session stops being returned.
    pub expires_at: Timestamp,
}

/// An OIDC sign-in under way: what its callback must check and where it returns.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub state: String,
    pub nonce: String,
    /// The PKCE code verifier (a secret).
    pub verifier: String,
    pub return_to: String,
}

// By hand: secrets never reach a log through `{:?}`.
impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id_hash", &self.id_hash)
            .field("user", &self.user)
            .field("access_token", &self.access_token.as_ref().map(|_| ".."))
            .field("access_expires_at", &self.access_expires_at)
            .field("pending", &self.pending)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// Browser sessions, shared by every instance on the store. A session is live while its
/// `expires_at` is after the caller's `now`; an expired one is never returned nor changed,
/// and lingers only until [`SessionStore::purge_sessions`].
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts the session, or replaces the one with its `id_hash`.
    async fn put_session(&self, session: &SessionRecord) -> Result<()>;

    /// The live session `id_hash`; `None` when there is none or it expired at `now`.
    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>>;

    /// Sets the pending sign-in of the live session `id_hash` (replacing any); `Ok(false)`
    /// when there is no such live session. Nothing else of the session changes.
    async fn set_pending(
        &self,
        id_hash: &str,
        pending: &PendingSignIn,
        now: Timestamp,
    ) -> Result<bool>;

    /// Clears and returns the pending sign-in of the live session `id_hash`, atomically: of
    /// any number of concurrent callers (on any instance), at most one gets it.
    async fn take_pending(&self, id_hash: &str, now: Timestamp) -> Result<Option<PendingSignIn>>;

    /// Removes the session `old` (when given, whether or not it exists) and puts `new`, in
    /// one transaction: a sign-in never leaves both, or neither.
    async fn replace_session(&self, old: Option<&str>, new: &SessionRecord) -> Result<()>;

    /// Removes the session; `Ok(false)` when there was none.
    async fn remove_session(&self, id_hash: &str) -> Result<bool>;

    /// Removes every session expired at `now`; returns how many.
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64>;

    /// How many sessions are live at `now`.
    async fn count_sessions(&self, now: Timestamp) -> Result<u64>;
}

/// How long a one-time occurrence stays open without an acknowledgement. A recurring one stays
/// open until its next occurrence fires (the schedule row's next due instant).
pub const ONE_TIME_OPEN_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// A fired occurrence's state (issue 16), written by `fire_due` in the claim that fires it.
#[derive(Debug, Clone, PartialEq)]
pub struct OccurrenceRecord {
    pub key: OccurrenceKey,
    pub user_id: UserId,
    pub fired_at: Timestamp,
    /// Open until then; expired after, unless acknowledged.
    pub expires_at: Timestamp,
    /// `(when, on which channel)` once acknowledged.
    pub acknowledged: Option<(Timestamp, Channel)>,
    /// Its position in its task's sequence (a snoozed occurrence's return keeps its
    /// original's; 0 for occurrences fired before this was recorded).
    pub seq: u32,
    /// Snoozed until then: it returns as a new occurrence due at that instant.
    pub snoozed_until: Option<Timestamp>,
    /// Whether that return is still to come (it has not fired yet).
    pub returning: bool,
    /// For a return: the due instant of the snoozed occurrence it returns.
    pub snoozed_from: Option<Timestamp>,
    /// Superseded by a repeat of its nagging task (at `snoozed_until`), not snoozed by its owner.
    pub repeated: bool,
    /// Repeats of its nagging task still to come if it is not acknowledged.
    pub nags_left: u32,
    /// Escalation steps of its chain reached so far (a repeat carries its original's count).
    pub escalated: u32,
    /// When its next escalation step is due, if one is pending.
    pub escalate_at: Option<Timestamp>,
}

impl OccurrenceRecord {
    /// Its state at `now`, as the API shows it.
    pub fn state(&self, now: Timestamp) -> OccurrenceState {
        if self.acknowledged.is_some() {
            OccurrenceState::Acknowledged
        } else if self.snoozed_until.is_some() && self.repeated {
            OccurrenceState::Repeated
        } else if self.snoozed_until.is_some() {
            OccurrenceState::Snoozed
        } else if self.expires_at <= now {
            OccurrenceState::Expired
        } else {
            OccurrenceState::Open
        }
    }
}

/// Where a fired occurrence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OccurrenceState {
    /// Fired, waiting for its owner.
    Open,
    /// Done.
    Acknowledged,
    /// Put off: it returns (or has returned) as a new occurrence at `snoozedUntil`.
    Snoozed,
    /// Not acknowledged, so its nagging task sent it again at `snoozedUntil` (a new
    /// occurrence, open in its place).
    Repeated,
    /// Neither done nor snoozed within its window.
    Expired,
}

#[async_trait]
pub trait OccurrenceStore: Send + Sync + 'static {
    /// The user's occurrences open at `now` (not acknowledged, not expired), newest due first,
    /// strictly before `before` (a due instant and task id, for pagination), at most `limit`.
    async fn open_occurrences(
        &self,
        user: &UserId,
        now: Timestamp,
        before: Option<&OccurrenceKey>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>>;

    /// The user's snoozed occurrences still to return, soonest return first, at most `limit`.
    async fn snoozed_occurrences(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>>;

    /// The occurrences of the user's task, in whatever state, newest due first, due strictly
    /// before `before`, at most `limit` (what the task's history shows beside each entry).
    async fn task_occurrences(
        &self,
        user: &UserId,
        task: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>>;

    /// The user's occurrence, in whatever state (`None`: no such occurrence, or another
    /// user's).
    async fn occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
    ) -> Result<Option<OccurrenceRecord>>;

    /// Acknowledges the user's occurrence at `at` on `channel`, in one statement on its row,
    /// and marks the occurrence's inbox items read in the same transaction (done is seen).
    /// Idempotent: an occurrence already acknowledged keeps (and returns) its first
    /// acknowledgement. `None`: no such occurrence, or another user's.
    async fn acknowledge_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        channel: Channel,
        at: Timestamp,
    ) -> Result<Option<OccurrenceRecord>>;

    /// Snoozes the user's occurrence until `until`: it returns then as a new occurrence
    /// (see [`ScheduleStore::wake_due`]). Only an occurrence neither acknowledged nor already
    /// returned from a snooze changes; snoozing again before the return moves it. Returns
    /// the occurrence as it now is (the caller tells from it whether the snooze took);
    /// `None`: no such occurrence, or another user's. Acknowledging cancels a pending return.
    async fn snooze_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        until: Timestamp,
    ) -> Result<Option<OccurrenceRecord>>;

    /// Remembers that an SMS about the user's occurrence went at `sent_at` to the number whose
    /// keyed hash is `number_hash`; a later SMS to the number replaces it, an earlier one
    /// (a slow retry) does not.
    async fn put_reply_target(
        &self,
        number_hash: &str,
        user: &UserId,
        key: &OccurrenceKey,
        sent_at: Timestamp,
    ) -> Result<()>;

    /// The user and occurrence the latest SMS to that number was about.
    async fn reply_target(&self, number_hash: &str) -> Result<Option<(UserId, OccurrenceKey)>>;
}

/// Everything one adapter provides.
pub trait Store:
    TaskStore
    + ScheduleStore
    + DeliveryStore
    + OutboxStore
    + RecipientStore
    + SessionStore
    + OccurrenceStore
    + RetentionStore
{
}
impl<
        T: TaskStore
            + ScheduleStore
            + DeliveryStore
            + OutboxStore
            + RecipientStore
            + SessionStore
            + OccurrenceStore
            + RetentionStore,
    > Store for T
{
}
