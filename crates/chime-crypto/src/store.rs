//! [`EncryptedStore`]: the store port, decorated. Personal data is encrypted on every write
//! and decrypted on every read, so the adapter underneath (SQLite or PostgreSQL) only
//! ever holds ciphertext, and the roles above only ever see plaintext.
//!
//! Two places need more than "encrypt in, decrypt out":
//! - **`fire_due`** runs the role's [`FireFn`] inside the adapter's transaction, on the row as
//!   stored. The decorator wraps it: the row's body is decrypted before the role's function
//!   sees it, and the events it returns are encrypted before the adapter writes them to the
//!   outbox. A row that fails to decrypt (a key missing from the config) is left exactly as it
//!   was, publishes nothing, and `fire_due` reports the error after the others committed.
//! - **Push endpoints are unique** (a browser's endpoint keeps its id, and moves to whoever
//!   put it last). The endpoint is encrypted deterministically ([`Keyring::encrypt_deterministic`]),
//!   so the adapter's unique index still matches equal endpoints. After a new key is added and
//!   before `chime keys rotate` has run, a stored endpoint is still on the old key; a put of the
//!   same endpoint by the same user then reuses the stored ciphertext, so the subscription keeps
//!   its id (a put by another user in that window adds a second row, which the rotation
//!   resolves in favour of the later put).
//! - **Browser sessions** keep their access token and PKCE verifier sealed. They are not part
//!   of a key rotation (they live hours at most), so a session sealed with a key since removed
//!   from the config reads as absent, with a warning: its user signs in again, instead of
//!   every request of that browser failing until the session expires.
//!
//! One file, though long: the decorator implements every port of the store, each method a few
//! lines of sealing or opening around the inner call, so what is encrypted is read in one place.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chime_core::event::{Channel, OccurrenceKey};
use chime_core::{NotificationId, TaskId, UserId};
use chime_store::{
    AttemptResult, ClaimedDelivery, DeliveryKey, DeliveryState, DeliveryStatus, DeliveryStore,
    DeliveryWrite, DestinationRecord, Escalate, EscalateFn, Escalated, FeedRecord, Fire, FireFn,
    FiredOccurrence, Handoff, HistoryEntry, InboxItem, OccurrenceRecord, OccurrenceStore,
    OutboxEvent, OutboxRow, OutboxStore, PastCursor, PastKind, PendingSignIn, ProfileRecord,
    Purged, PushSubscriptionRecord, RecipientStore, RetentionStore, ScheduleChange, ScheduleStore,
    ScheduledTask, SessionRecord, SessionStore, Store, TaskRecord, TaskStore, Wake, WakeFn,
    WebhookEndpoint, Woken,
};
use jiff::Timestamp;

use crate::fields::{
    DESTINATION_NAME, DESTINATION_URL, EVENT_PAYLOAD, MESSAGE, PROFILE_BODY, PUSH_AUTH,
    PUSH_ENDPOINT, PUSH_P256DH, SCHEDULE, SESSION_ACCESS_TOKEN, SESSION_VERIFIER, TASK,
    WEBHOOK_SECRET, WEBHOOK_URL,
};
use crate::Keyring;

type Result<T> = chime_store::Result<T>;

fn store_error(e: crate::Error) -> chime_store::Error {
    chime_store::Error::Storage(Box::new(e))
}

/// A [`Store`] that encrypts personal data before it reaches `inner`.
#[derive(Clone)]
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    keys: Arc<Keyring>,
}

impl std::fmt::Debug for EncryptedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl EncryptedStore {
    pub fn new(inner: Arc<dyn Store>, keys: Arc<Keyring>) -> Self {
        Self { inner, keys }
    }

    fn seal_event(&self, mut event: OutboxEvent) -> Result<OutboxEvent> {
        event.payload = EVENT_PAYLOAD
            .encrypt_bytes(&self.keys, std::mem::take(&mut event.payload))
            .map_err(store_error)?;
        Ok(event)
    }

    /// `writes` with their messages and events sealed.
    fn seal_writes(&self, writes: &[DeliveryWrite]) -> Result<Vec<DeliveryWrite>> {
        let mut writes = writes.to_vec();
        for write in &mut writes {
            if let Some(message) = &mut write.message {
                MESSAGE
                    .encrypt_value(&self.keys, message)
                    .map_err(store_error)?;
            }
            if let Some(event) = write.event.take() {
                write.event = Some(self.seal_event(event)?);
            }
        }
        Ok(writes)
    }

    fn seal_task(&self, task: &TaskRecord) -> Result<TaskRecord> {
        let mut task = task.clone();
        TASK.encrypt_value(&self.keys, &mut task.body)
            .map_err(store_error)?;
        Ok(task)
    }

    fn open_task(&self, mut task: TaskRecord) -> Result<TaskRecord> {
        TASK.decrypt_value(&self.keys, &mut task.body)
            .map_err(store_error)?;
        Ok(task)
    }

    fn open_rows(&self, mut rows: Vec<OutboxRow>) -> Result<Vec<OutboxRow>> {
        for row in &mut rows {
            row.payload = EVENT_PAYLOAD
                .decrypt_bytes(&self.keys, std::mem::take(&mut row.payload))
                .map_err(store_error)?;
        }
        Ok(rows)
    }

    fn open_scheduled(&self, mut row: ScheduledTask) -> Result<ScheduledTask> {
        SCHEDULE
            .decrypt_value(&self.keys, &mut row.body)
            .map_err(store_error)?;
        Ok(row)
    }

    fn seal(&self, value: &str, context: &str) -> Result<String> {
        self.keys.encrypt(value, context).map_err(store_error)
    }

    fn open(&self, value: &str, context: &str) -> Result<String> {
        self.keys.decrypt(value, context).map_err(store_error)
    }

    fn seal_pending(&self, pending: &PendingSignIn) -> Result<PendingSignIn> {
        Ok(PendingSignIn {
            verifier: self.seal(&pending.verifier, SESSION_VERIFIER)?,
            ..pending.clone()
        })
    }

    fn seal_session(&self, session: &SessionRecord) -> Result<SessionRecord> {
        Ok(SessionRecord {
            access_token: session
                .access_token
                .as_deref()
                .map(|t| self.seal(t, SESSION_ACCESS_TOKEN))
                .transpose()?,
            pending: session
                .pending
                .as_ref()
                .map(|p| self.seal_pending(p))
                .transpose()?,
            ..session.clone()
        })
    }

    /// The pending sign-in opened; `None` (with a warning) when no configured key opens it.
    fn open_pending(&self, mut pending: PendingSignIn) -> Option<PendingSignIn> {
        match self.keys.decrypt(&pending.verifier, SESSION_VERIFIER) {
            Ok(verifier) => {
                pending.verifier = verifier;
                Some(pending)
            }
            Err(error) => {
                tracing::warn!(%error, "a pending sign-in does not decrypt; it is dropped");
                None
            }
        }
    }

    /// The session opened; `None` (with a warning) when no configured key opens its secrets.
    fn open_session(&self, mut session: SessionRecord) -> Option<SessionRecord> {
        if let Some(token) = &session.access_token {
            match self.keys.decrypt(token, SESSION_ACCESS_TOKEN) {
                Ok(token) => session.access_token = Some(token),
                Err(error) => {
                    tracing::warn!(%error, "a session's access token does not decrypt; the session reads as signed out");
                    return None;
                }
            }
        }
        if let Some(pending) = session.pending.take() {
            session.pending = Some(self.open_pending(pending)?);
        }
        Some(session)
    }

    fn open_destination(&self, mut destination: DestinationRecord) -> Result<DestinationRecord> {
        destination.name = self.open(&destination.name, DESTINATION_NAME)?;
        destination.url = self.open(&destination.url, DESTINATION_URL)?;
        Ok(destination)
    }

    fn open_subscription(&self, mut sub: PushSubscriptionRecord) -> Result<PushSubscriptionRecord> {
        sub.endpoint = self.open(&sub.endpoint, PUSH_ENDPOINT)?;
        sub.p256dh = self.open(&sub.p256dh, PUSH_P256DH)?;
        sub.auth = self.open(&sub.auth, PUSH_AUTH)?;
        Ok(sub)
    }
}

#[async_trait]
impl TaskStore for EncryptedStore {
    async fn create_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<()> {
        let task = self.seal_task(task)?;
        self.inner.create_task(&task, self.seal_event(event)?).await
    }

    async fn create_task_within(
        &self,
        task: &TaskRecord,
        event: OutboxEvent,
        limit: u64,
    ) -> Result<bool> {
        let task = self.seal_task(task)?;
        self.inner
            .create_task_within(&task, self.seal_event(event)?, limit)
            .await
    }

    async fn update_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<bool> {
        let task = self.seal_task(task)?;
        self.inner.update_task(&task, self.seal_event(event)?).await
    }

    async fn delete_task(
        &self,
        user: &UserId,
        id: TaskId,
        version: u64,
        event: OutboxEvent,
    ) -> Result<bool> {
        let event = self.seal_event(event)?;
        self.inner.delete_task(user, id, version, event).await
    }

    async fn get_task(&self, user: &UserId, id: TaskId) -> Result<Option<TaskRecord>> {
        self.inner
            .get_task(user, id)
            .await?
            .map(|t| self.open_task(t))
            .transpose()
    }

    async fn task_by_id(&self, id: TaskId) -> Result<Option<TaskRecord>> {
        self.inner
            .task_by_id(id)
            .await?
            .map(|t| self.open_task(t))
            .transpose()
    }

    async fn count_tasks(&self, user: &UserId) -> Result<u64> {
        self.inner.count_tasks(user).await
    }

    async fn list_tasks(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        self.inner
            .list_tasks(user, after, limit)
            .await?
            .into_iter()
            .map(|t| self.open_task(t))
            .collect()
    }

    async fn record_fired(&self, fired: &[FiredOccurrence]) -> Result<()> {
        self.inner.record_fired(fired).await
    }

    async fn record_delivery_states(&self, states: &[DeliveryState]) -> Result<()> {
        self.inner.record_delivery_states(states).await
    }

    async fn history(
        &self,
        user: &UserId,
        id: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        self.inner.history(user, id, before, limit).await
    }
}

/// A claimed row that carries its task's own body (sealed as a task, not a schedule body):
/// a snooze's return or an escalation step.
trait TaskRow: Clone {
    fn body_mut(&mut self) -> &mut serde_json::Value;
}

impl TaskRow for Wake {
    fn body_mut(&mut self) -> &mut serde_json::Value {
        &mut self.body
    }
}

impl TaskRow for Escalate {
    fn body_mut(&mut self) -> &mut serde_json::Value {
        &mut self.body
    }
}

/// What a claim decides for such a row: the events it publishes among the rest.
trait Publishes {
    fn events_mut(&mut self) -> &mut Vec<OutboxEvent>;
}

impl Publishes for Woken {
    fn events_mut(&mut self) -> &mut Vec<OutboxEvent> {
        &mut self.events
    }
}

impl Publishes for Escalated {
    fn events_mut(&mut self) -> &mut Vec<OutboxEvent> {
        &mut self.events
    }
}

/// `decide` on `row` with its task body opened, and the events it decides sealed.
fn opened<R: TaskRow, D: Publishes>(
    keys: &Keyring,
    row: &R,
    decide: impl FnOnce(&R) -> Option<D>,
) -> std::result::Result<Option<D>, crate::Error> {
    let mut plain = row.clone();
    TASK.decrypt_value(keys, plain.body_mut())?;
    let Some(mut decided) = decide(&plain) else {
        return Ok(None);
    };
    seal_events(keys, decided.events_mut())?;
    Ok(Some(decided))
}

/// A row a claim left due because it cannot be decrypted: reported once the claim has
/// committed the others.
#[derive(Clone, Default)]
struct Failure(Arc<Mutex<Option<crate::Error>>>);

impl Failure {
    fn keep(&self, error: crate::Error) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// `count`, or the error of a row left due.
    fn or(self, count: usize) -> Result<usize> {
        match self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(error) => Err(store_error(error)),
            None => Ok(count),
        }
    }
}

/// Seals the payloads of events a claim publishes (they carry the task body).
fn seal_events(
    keys: &Keyring,
    events: &mut [OutboxEvent],
) -> std::result::Result<(), crate::Error> {
    for event in events {
        event.payload = EVENT_PAYLOAD.encrypt_bytes(keys, std::mem::take(&mut event.payload))?;
    }
    Ok(())
}

#[async_trait]
impl ScheduleStore for EncryptedStore {
    async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> Result<()> {
        let mut changes = changes.to_vec();
        for change in &mut changes {
            if let ScheduleChange::Set { body, .. } = change {
                SCHEDULE
                    .encrypt_value(&self.keys, body)
                    .map_err(store_error)?;
            }
        }
        self.inner.apply_schedule_changes(&changes).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        self.inner.next_due().await
    }

    async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> Result<usize> {
        let (keys, failure) = (self.keys.clone(), Failure::default());
        let failed = failure.clone();
        let wrapped: FireFn = Arc::new(move |row: &ScheduledTask| {
            let mut plain = row.clone();
            let decision = SCHEDULE
                .decrypt_value(&keys, &mut plain.body)
                .and_then(|()| {
                    let mut decision = fire(&plain);
                    seal_events(&keys, &mut decision.events)?;
                    Ok(decision)
                });
            match decision {
                Ok(decision) => decision,
                Err(error) => {
                    tracing::error!(task_id = %row.task_id, %error, "a due task cannot be decrypted; it stays due");
                    failed.keep(error);
                    // Unchanged: still due at the same occurrence, nothing published.
                    Fire {
                        events: Vec::new(),
                        next: Some((row.due_at, row.seq)),
                        nag: None,
                        escalate_at: None,
                    }
                }
            }
        });
        let fired = self.inner.fire_due(now, max, wrapped).await?;
        failure.or(fired)
    }

    async fn wake_due(&self, now: Timestamp, max: usize, wake: WakeFn) -> Result<usize> {
        let (keys, failure) = (self.keys.clone(), Failure::default());
        let failed = failure.clone();
        let wrapped: WakeFn = Arc::new(move |w: &Wake| {
            opened(&keys, w, |plain| wake(plain)).unwrap_or_else(|error| {
                tracing::error!(task_id = %w.key.task_id, %error, "a snoozed task cannot be decrypted; its return stays due");
                failed.keep(error);
                None
            })
        });
        let woke = self.inner.wake_due(now, max, wrapped).await?;
        failure.or(woke)
    }

    async fn escalate_due(&self, now: Timestamp, max: usize, step: EscalateFn) -> Result<usize> {
        let (keys, failure) = (self.keys.clone(), Failure::default());
        let failed = failure.clone();
        let wrapped: EscalateFn = Arc::new(move |e: &Escalate| {
            opened(&keys, e, |plain| step(plain)).unwrap_or_else(|error| {
                tracing::error!(task_id = %e.key.task_id, %error, "an escalating task cannot be decrypted; its step stays due");
                failed.keep(error);
                None
            })
        });
        let fired = self.inner.escalate_due(now, max, wrapped).await?;
        failure.or(fired)
    }

    async fn scheduled(&self, task_id: TaskId) -> Result<Option<ScheduledTask>> {
        self.inner
            .scheduled(task_id)
            .await?
            .map(|r| self.open_scheduled(r))
            .transpose()
    }

    async fn unscheduled_tasks(
        &self,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        self.inner
            .unscheduled_tasks(after, limit)
            .await?
            .into_iter()
            .map(|t| self.open_task(t))
            .collect()
    }
}

#[async_trait]
impl DeliveryStore for EncryptedStore {
    async fn record_deliveries(&self, writes: &[DeliveryWrite]) -> Result<Vec<usize>> {
        self.inner
            .record_deliveries(&self.seal_writes(writes)?)
            .await
    }

    async fn record_handled(
        &self,
        writes: &[DeliveryWrite],
        handled: &[String],
        taken: bool,
    ) -> Result<Vec<usize>> {
        self.inner
            .record_handled(&self.seal_writes(writes)?, handled, taken)
            .await
    }

    async fn recorded_handoffs(&self, ids: &[String]) -> Result<Vec<String>> {
        self.inner.recorded_handoffs(ids).await
    }

    async fn inbox(
        &self,
        user: &UserId,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<Vec<InboxItem>> {
        self.inner.inbox(user, before, limit).await
    }

    async fn mark_read(&self, user: &UserId, ids: &[NotificationId]) -> Result<u64> {
        self.inner.mark_read(user, ids).await
    }

    async fn unread_count(&self, user: &UserId) -> Result<u64> {
        self.inner.unread_count(user).await
    }

    async fn claim_deliveries(
        &self,
        channel: Channel,
        now: Timestamp,
        lease_until: Timestamp,
        max: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut claimed = self
            .inner
            .claim_deliveries(channel, now, lease_until, max)
            .await?;
        for delivery in &mut claimed {
            MESSAGE
                .decrypt_value(&self.keys, &mut delivery.message)
                .map_err(store_error)?;
        }
        Ok(claimed)
    }

    async fn next_delivery_at(&self, channel: Channel) -> Result<Option<Timestamp>> {
        self.inner.next_delivery_at(channel).await
    }

    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        lease_until: Timestamp,
        at: Timestamp,
        result: AttemptResult,
        event: Option<OutboxEvent>,
    ) -> Result<()> {
        let event = event.map(|e| self.seal_event(e)).transpose()?;
        self.inner
            .record_attempt(key, lease_until, at, result, event)
            .await
    }

    fn delivery_signal(&self, channel: Channel) -> Option<Arc<tokio::sync::Notify>> {
        self.inner.delivery_signal(channel)
    }

    async fn retry_dead_letter(
        &self,
        user: &UserId,
        key: &DeliveryKey,
        now: Timestamp,
    ) -> Result<bool> {
        self.inner.retry_dead_letter(user, key, now).await
    }

    async fn pending_deliveries(
        &self,
        user: &UserId,
        task: TaskId,
    ) -> Result<Vec<(OccurrenceKey, DeliveryStatus)>> {
        self.inner.pending_deliveries(user, task).await
    }
}

#[async_trait]
impl OutboxStore for EncryptedStore {
    async fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxRow>> {
        let rows = self.inner.outbox_batch(max).await?;
        self.open_rows(rows)
    }

    async fn outbox_claim(&self, max: usize) -> Result<Vec<OutboxRow>> {
        let rows = self.inner.outbox_claim(max).await?;
        self.open_rows(rows)
    }

    async fn outbox_ack(&self, seqs: &[i64]) -> Result<()> {
        self.inner.outbox_ack(seqs).await
    }

    fn keeps_handoffs(&self) -> bool {
        self.inner.keeps_handoffs()
    }

    async fn claim_handoffs(
        &self,
        after: std::time::Duration,
        lease: std::time::Duration,
        max: usize,
    ) -> Result<Vec<Handoff>> {
        let mut handoffs = self.inner.claim_handoffs(after, lease, max).await?;
        for handoff in &mut handoffs {
            handoff.payload = EVENT_PAYLOAD
                .decrypt_bytes(&self.keys, std::mem::take(&mut handoff.payload))
                .map_err(store_error)?;
        }
        Ok(handoffs)
    }

    async fn outbox_len(&self) -> Result<u64> {
        self.inner.outbox_len().await
    }

    fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.outbox_signal()
    }
}

#[async_trait]
impl RecipientStore for EncryptedStore {
    async fn put_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
    ) -> Result<PushSubscriptionRecord> {
        // The user's own subscription to this endpoint, stored under an older key (or as
        // plaintext from before encryption): reuse its stored value, so the store matches it.
        let mut endpoint = None;
        for stored in self.inner.push_subscriptions(&sub.user_id).await? {
            if !self.keys.is_current(&stored.endpoint)
                && self.open(&stored.endpoint, PUSH_ENDPOINT)? == sub.endpoint
            {
                endpoint = Some(stored.endpoint);
                break;
            }
        }
        let endpoint = match endpoint {
            Some(stored) => stored,
            None => self
                .keys
                .encrypt_deterministic(&sub.endpoint, PUSH_ENDPOINT)
                .map_err(store_error)?,
        };
        let sealed = PushSubscriptionRecord {
            endpoint,
            p256dh: self.seal(&sub.p256dh, PUSH_P256DH)?,
            auth: self.seal(&sub.auth, PUSH_AUTH)?,
            ..sub.clone()
        };
        let stored = self.inner.put_push_subscription(&sealed).await?;
        self.open_subscription(stored)
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscriptionRecord>> {
        self.inner
            .push_subscriptions(user)
            .await?
            .into_iter()
            .map(|s| self.open_subscription(s))
            .collect()
    }

    async fn remove_push_subscription(&self, user: Option<&UserId>, id: &str) -> Result<bool> {
        self.inner.remove_push_subscription(user, id).await
    }

    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let sealed = WebhookEndpoint {
            url: self.seal(&endpoint.url, WEBHOOK_URL)?,
            secret: self.seal(&endpoint.secret, WEBHOOK_SECRET)?,
            ..endpoint.clone()
        };
        self.inner.put_webhook(&sealed).await
    }

    async fn webhook(&self, user: &UserId) -> Result<Option<WebhookEndpoint>> {
        self.inner
            .webhook(user)
            .await?
            .map(|mut w| {
                w.url = self.open(&w.url, WEBHOOK_URL)?;
                w.secret = self.open(&w.secret, WEBHOOK_SECRET)?;
                Ok(w)
            })
            .transpose()
    }

    async fn remove_webhook(&self, user: &UserId) -> Result<bool> {
        self.inner.remove_webhook(user).await
    }

    async fn put_destination(&self, destination: &DestinationRecord) -> Result<()> {
        let sealed = DestinationRecord {
            name: self.seal(&destination.name, DESTINATION_NAME)?,
            url: self.seal(&destination.url, DESTINATION_URL)?,
            ..destination.clone()
        };
        self.inner.put_destination(&sealed).await
    }

    async fn destinations(&self, user: &UserId) -> Result<Vec<DestinationRecord>> {
        self.inner
            .destinations(user)
            .await?
            .into_iter()
            .map(|d| self.open_destination(d))
            .collect()
    }

    async fn destination(
        &self,
        user: Option<&UserId>,
        id: &str,
    ) -> Result<Option<DestinationRecord>> {
        self.inner
            .destination(user, id)
            .await?
            .map(|d| self.open_destination(d))
            .transpose()
    }

    async fn remove_destination(&self, user: &UserId, id: &str) -> Result<bool> {
        self.inner.remove_destination(user, id).await
    }

    async fn put_profile(&self, profile: &ProfileRecord) -> Result<()> {
        let sealed = ProfileRecord {
            body: self.seal(&profile.body, PROFILE_BODY)?,
            ..profile.clone()
        };
        self.inner.put_profile(&sealed).await
    }

    async fn profile(&self, user: &UserId) -> Result<Option<ProfileRecord>> {
        self.inner
            .profile(user)
            .await?
            .map(|mut p| {
                p.body = self.open(&p.body, PROFILE_BODY)?;
                Ok(p)
            })
            .transpose()
    }

    // A feed holds no secret and nothing personal: its URL is derived, never stored.
    async fn rotate_feed(&self, user: &UserId, now: Timestamp) -> Result<FeedRecord> {
        self.inner.rotate_feed(user, now).await
    }

    async fn feed(&self, user: &UserId) -> Result<Option<FeedRecord>> {
        self.inner.feed(user).await
    }

    async fn remove_feed(&self, user: &UserId) -> Result<bool> {
        self.inner.remove_feed(user).await
    }
}

/// Occurrence state holds no personal data (ids, instants, a channel name): passed through.
#[async_trait]
impl OccurrenceStore for EncryptedStore {
    async fn open_occurrences(
        &self,
        user: &UserId,
        now: Timestamp,
        before: Option<&OccurrenceKey>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        self.inner.open_occurrences(user, now, before, limit).await
    }

    async fn snoozed_occurrences(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        self.inner.snoozed_occurrences(user, limit).await
    }

    async fn task_occurrences(
        &self,
        user: &UserId,
        task: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        self.inner.task_occurrences(user, task, before, limit).await
    }

    async fn occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
    ) -> Result<Option<OccurrenceRecord>> {
        self.inner.occurrence(user, key).await
    }

    async fn acknowledge_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        channel: Channel,
        at: Timestamp,
    ) -> Result<Option<OccurrenceRecord>> {
        self.inner
            .acknowledge_occurrence(user, key, channel, at)
            .await
    }

    async fn snooze_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        until: Timestamp,
    ) -> Result<Option<OccurrenceRecord>> {
        self.inner.snooze_occurrence(user, key, until).await
    }

    /// The number is already a keyed hash: nothing personal is stored in the clear.
    async fn put_reply_target(
        &self,
        number_hash: &str,
        user: &UserId,
        key: &OccurrenceKey,
        sent_at: Timestamp,
    ) -> Result<()> {
        self.inner
            .put_reply_target(number_hash, user, key, sent_at)
            .await
    }

    async fn reply_target(&self, number_hash: &str) -> Result<Option<(UserId, OccurrenceKey)>> {
        self.inner.reply_target(number_hash).await
    }
}

#[async_trait]
impl SessionStore for EncryptedStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<()> {
        let sealed = self.seal_session(session)?;
        self.inner.put_session(&sealed).await
    }

    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>> {
        Ok(self
            .inner
            .session(id_hash, now)
            .await?
            .and_then(|s| self.open_session(s)))
    }

    async fn set_pending(
        &self,
        id_hash: &str,
        pending: &PendingSignIn,
        now: Timestamp,
    ) -> Result<bool> {
        let sealed = self.seal_pending(pending)?;
        self.inner.set_pending(id_hash, &sealed, now).await
    }

    async fn take_pending(&self, id_hash: &str, now: Timestamp) -> Result<Option<PendingSignIn>> {
        Ok(self
            .inner
            .take_pending(id_hash, now)
            .await?
            .and_then(|p| self.open_pending(p)))
    }

    async fn replace_session(&self, old: Option<&str>, new: &SessionRecord) -> Result<()> {
        let sealed = self.seal_session(new)?;
        self.inner.replace_session(old, &sealed).await
    }

    async fn remove_session(&self, id_hash: &str) -> Result<bool> {
        self.inner.remove_session(id_hash).await
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        self.inner.purge_sessions(now).await
    }

    async fn count_sessions(&self, now: Timestamp) -> Result<u64> {
        self.inner.count_sessions(now).await
    }
}

/// Retention deletes rows without reading what is sealed in them.
#[async_trait]
impl RetentionStore for EncryptedStore {
    async fn purge_past(
        &self,
        kind: PastKind,
        cutoff: Timestamp,
        now: Timestamp,
        after: Option<&PastCursor>,
        max: usize,
    ) -> Result<Purged> {
        self.inner.purge_past(kind, cutoff, now, after, max).await
    }

    async fn count_past(&self, kind: PastKind, cutoff: Timestamp, now: Timestamp) -> Result<u64> {
        self.inner.count_past(kind, cutoff, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[(&str, u8)]) -> Arc<Keyring> {
        Arc::new(
            Keyring::new(
                list.iter()
                    .map(|(id, b)| ((*id).to_owned(), [*b; 32]))
                    .collect(),
            )
            .expect("a valid keyring"),
        )
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_893_456_000 + secs).expect("a valid instant")
    }

    fn signed_in_with_pending() -> SessionRecord {
        SessionRecord {
            id_hash: "hash".to_owned(),
            csrf: "csrf".to_owned(),
            user: Some(UserId::parse("alice").expect("user")),
            access_token: Some("raw-access-token-canary".to_owned()),
            access_expires_at: Some(at(300)),
            pending: Some(PendingSignIn {
                state: "state".to_owned(),
                nonce: "nonce".to_owned(),
                verifier: "raw-pkce-verifier-canary".to_owned(),
                return_to: "/".to_owned(),
            }),
            expires_at: at(600),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_destinations_name_and_url_are_sealed_in_the_inner_store_and_open_on_read() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let inner = Arc::new(
            chime_store::sqlite::SqliteStore::open(
                &dir.path().join("chime.sqlite"),
                &chime_store::sqlite::SqliteOptions::default(),
            )
            .expect("open the SQLite store"),
        );
        let store = EncryptedStore::new(inner.clone(), keys(&[("k1", 1)]));
        let alice = UserId::parse("alice").expect("user");
        let destination = DestinationRecord {
            id: "dst_family".to_owned(),
            user_id: alice.clone(),
            name: "Mum's phone canary".to_owned(),
            url: "gotify://gotify.example/app-token-canary".to_owned(),
            created_at: at(1),
        };
        store.put_destination(&destination).await.expect("put");

        let raw = inner
            .destination(None, "dst_family")
            .await
            .expect("destination")
            .expect("stored");
        for sealed in [&raw.name, &raw.url] {
            assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
            assert!(!sealed.contains("canary"), "{sealed}");
        }
        assert_eq!(
            store.destinations(&alice).await.expect("destinations"),
            std::slice::from_ref(&destination)
        );
        assert_eq!(
            store
                .destination(None, "dst_family")
                .await
                .expect("destination"),
            Some(destination.clone())
        );
        // The name and the URL are sealed under their own contexts: swapped, neither opens.
        let swapped = DestinationRecord {
            name: raw.url.clone(),
            url: raw.name.clone(),
            ..raw
        };
        inner.put_destination(&swapped).await.expect("put swapped");
        assert!(store.destination(None, "dst_family").await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sessions_access_token_and_verifier_are_sealed_in_the_inner_store_and_open_on_read() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let inner = Arc::new(
            chime_store::sqlite::SqliteStore::open(
                &dir.path().join("chime.sqlite"),
                &chime_store::sqlite::SqliteOptions::default(),
            )
            .expect("open the SQLite store"),
        );
        let store = EncryptedStore::new(inner.clone(), keys(&[("k1", 1)]));
        let session = signed_in_with_pending();
        store.put_session(&session).await.expect("put");

        let raw = inner
            .session("hash", at(0))
            .await
            .expect("session")
            .expect("stored");
        let token = raw.access_token.clone().expect("a token");
        let verifier = raw.pending.clone().expect("pending").verifier;
        assert!(!token.contains("raw-access-token-canary"), "{token}");
        assert!(!verifier.contains("raw-pkce-verifier-canary"), "{verifier}");
        assert!(token.starts_with("enc:"), "{token}");

        assert_eq!(
            store.session("hash", at(0)).await.expect("session"),
            Some(session.clone())
        );
        assert_eq!(
            store.take_pending("hash", at(0)).await.expect("take"),
            session.pending.clone()
        );

        // A new pending sign-in and a sign-in are sealed too.
        let pending = session.pending.clone().expect("pending");
        assert!(store
            .set_pending("hash", &pending, at(0))
            .await
            .expect("set_pending"));
        let raw = inner.session("hash", at(0)).await.expect("session");
        let verifier = raw.and_then(|r| r.pending).expect("pending").verifier;
        assert!(!verifier.contains("raw-pkce-verifier-canary"), "{verifier}");
        let renewed = SessionRecord {
            id_hash: "new-hash".to_owned(),
            pending: None,
            ..session.clone()
        };
        store
            .replace_session(Some("hash"), &renewed)
            .await
            .expect("replace");
        let raw = inner.session("new-hash", at(0)).await.expect("session");
        let token = raw.and_then(|r| r.access_token).expect("token");
        assert!(!token.contains("raw-access-token-canary"), "{token}");

        // Sealed with a key no longer configured: absent (sign in again), not an error.
        let rekeyed = EncryptedStore::new(inner, keys(&[("k2", 2)]));
        assert_eq!(
            rekeyed.session("new-hash", at(0)).await.expect("session"),
            None
        );
    }
}
