//! What the checks share: fixed instants, task bodies and events, and short calls on the ports.

use super::*;

/// 2030-01-01T00:00:00Z: the origin of every instant in the suite.
pub(super) const ORIGIN: i64 = 1_893_456_000;

/// The instant `secs` seconds after [`ORIGIN`].
pub(super) fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(ORIGIN + secs).expect("a valid instant")
}

pub(super) fn user(name: &str) -> UserId {
    UserId::parse(name).expect("a valid user id")
}

/// A realistic task body in its stored form, as the definition role stores it.
pub(super) fn body(name: &str) -> serde_json::Value {
    TaskSpec::parse(&json!({
        "name": name,
        "description": "Fill the green can — the one by the door.",
        "startDate": "2030-01-07 09:00:00.00+0100",
        "timeZone": "Europe/Berlin",
        "repeats": { "frequency": 1, "period": "week", "on": "monday, thursday", "ends": 10 },
        "notify": { "email": "alice@example.com", "inApp": true },
        "missed": { "policy": "skip", "limitSeconds": 3600 },
    }))
    .expect("a valid task body")
    .to_stored()
}

/// A new task at version 1.
pub(super) fn task(owner: &UserId, name: &str) -> TaskRecord {
    TaskRecord {
        id: TaskId::new(),
        user_id: owner.clone(),
        version: 1,
        body: body(name),
        created_at: at(0),
        modified_at: at(0),
    }
}

/// `task` at its next version, renamed, modified `secs` after the origin.
pub(super) fn edited(task: &TaskRecord, name: &str, secs: i64) -> TaskRecord {
    TaskRecord {
        version: task.version + 1,
        body: body(name),
        modified_at: at(secs),
        ..task.clone()
    }
}

pub(super) fn task_changed(task: &TaskRecord) -> TaskChanged {
    TaskChanged {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version: task.version,
        task: task.body.clone(),
        at: task.modified_at,
    }
}

pub(super) fn created_event(task: &TaskRecord) -> OutboxEvent {
    OutboxEvent::from(&Event::TaskCreated(task_changed(task)))
}

pub(super) fn updated_event(task: &TaskRecord) -> OutboxEvent {
    OutboxEvent::from(&Event::TaskUpdated(task_changed(task)))
}

pub(super) fn deleted_event(task: &TaskRecord, version: u64) -> OutboxEvent {
    OutboxEvent::from(&Event::TaskDeleted(TaskDeleted {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version,
        at: task.modified_at,
    }))
}

pub(super) async fn create(store: &dyn Store, task: &TaskRecord) {
    store
        .create_task(task, created_event(task))
        .await
        .expect("create_task");
}

/// Creates `n` tasks for `owner`, in id order.
pub(super) async fn create_many(store: &dyn Store, owner: &UserId, n: usize) -> Vec<TaskRecord> {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let task = task(owner, &format!("Task {i}"));
        create(store, &task).await;
        tasks.push(task);
    }
    tasks
}

pub(super) async fn update(store: &dyn Store, task: &TaskRecord) -> crate::Result<bool> {
    store.update_task(task, updated_event(task)).await
}

pub(super) async fn get(store: &dyn Store, owner: &UserId, id: TaskId) -> Option<TaskRecord> {
    store.get_task(owner, id).await.expect("get_task")
}

pub(super) async fn list(
    store: &dyn Store,
    owner: &UserId,
    after: Option<TaskId>,
    limit: usize,
) -> Vec<TaskRecord> {
    store
        .list_tasks(owner, after, limit)
        .await
        .expect("list_tasks")
}

/// Every event in the outbox (the suite never writes more than this).
pub(super) async fn outbox(store: &dyn Store) -> Vec<OutboxRow> {
    store.outbox_batch(10_000).await.expect("outbox_batch")
}

pub(super) async fn ack(store: &dyn Store, seqs: &[i64]) {
    store.outbox_ack(seqs).await.expect("outbox_ack");
}

pub(super) fn seqs(rows: &[OutboxRow]) -> Vec<i64> {
    rows.iter().map(|r| r.seq).collect()
}

/// Every event in the outbox, without seqs.
pub(super) async fn outbox_events(store: &dyn Store) -> Vec<OutboxEvent> {
    outbox(store).await.iter().map(as_event).collect()
}

pub(super) fn as_event(row: &OutboxRow) -> OutboxEvent {
    let topic = chime_core::event::Topic::from_name(&row.topic)
        .unwrap_or_else(|| panic!("an outbox row on an unknown topic `{}`", row.topic));
    OutboxEvent {
        topic: topic.name(),
        key: row.key.clone(),
        payload: row.payload.clone(),
        // Not a column of the outbox: what the event's own says.
        handoff: Event::from_bytes(&row.payload)
            .ok()
            .and_then(|e| OutboxEvent::from(&e).handoff),
    }
}

pub(super) fn assert_seqs_increase(rows: &[OutboxRow]) {
    for pair in rows.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "outbox seqs increase: {} then {}",
            pair[0].seq,
            pair[1].seq
        );
    }
}

/// Runs `write` with a waiter already registered on `signal`, then waits (under [`GUARD`])
/// for the signal: a relay that started waiting before a commit must wake after it.
pub(super) async fn signalled<T>(signal: &Notify, what: &str, write: impl Future<Output = T>) -> T {
    let notified = signal.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let value = write.await;
    tokio::time::timeout(GUARD, notified)
        .await
        .unwrap_or_else(|_| panic!("the outbox signal is notified after {what}"));
    value
}

pub(super) fn set(task: &TaskRecord, next: Option<(Timestamp, u32)>) -> ScheduleChange {
    ScheduleChange::Set {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version: task.version,
        body: task.body.clone(),
        next,
    }
}

pub(super) fn scheduled_task(task: &TaskRecord, due_at: Timestamp, seq: u32) -> ScheduledTask {
    ScheduledTask {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version: task.version,
        body: task.body.clone(),
        due_at,
        seq,
    }
}

/// Applies `changes` to the schedule as the execution role would after the definition role
/// wrote them: each `Set`'s task is first put in the task store at that version (see
/// [`ensure_tasks`]), since `fire_due` fires only rows whose task is still at their version.
pub(super) async fn apply(store: &dyn Store, changes: &[ScheduleChange]) {
    ensure_tasks(store, changes).await;
    apply_only(store, changes).await;
}

/// Applies `changes` to the schedule alone, for checks that keep the task store themselves
/// (a deleted task must stay deleted).
pub(super) async fn apply_only(store: &dyn Store, changes: &[ScheduleChange]) {
    store
        .apply_schedule_changes(changes)
        .await
        .expect("apply_schedule_changes");
}

/// Puts the task of every `Set` in `changes` in the task store at the change's version
/// (created, or updated from the version before), as the definition role had done before the
/// schedule heard of it, and acknowledges exactly the outbox events this wrote, so that checks
/// of the schedule see only their own events. A task already at or past the version is left.
pub async fn ensure_tasks(store: &dyn Store, changes: &[ScheduleChange]) {
    let before: std::collections::HashSet<i64> = seqs(&outbox(store).await).into_iter().collect();
    for change in changes {
        let ScheduleChange::Set {
            task_id,
            user_id,
            version,
            body,
            ..
        } = change
        else {
            continue;
        };
        let record = TaskRecord {
            id: *task_id,
            user_id: user_id.clone(),
            version: *version,
            body: body.clone(),
            created_at: at(0),
            modified_at: at(0),
        };
        match store.task_by_id(*task_id).await.expect("task_by_id") {
            None => create(store, &record).await,
            Some(stored) if stored.version + 1 == *version => {
                assert!(update(store, &record).await.expect("update_task"));
            }
            Some(_) => {}
        }
    }
    let written: Vec<i64> = seqs(&outbox(store).await)
        .into_iter()
        .filter(|seq| !before.contains(seq))
        .collect();
    ack(store, &written).await;
}

pub(super) async fn scheduled(store: &dyn Store, id: TaskId) -> Option<ScheduledTask> {
    store.scheduled(id).await.expect("scheduled")
}

pub(super) async fn next_due(store: &dyn Store) -> Option<Timestamp> {
    store.next_due().await.expect("next_due")
}

pub(super) async fn fire_due(store: &dyn Store, now: Timestamp, max: usize, fire: FireFn) -> usize {
    let fired = store.fire_due(now, max, fire).await.expect("fire_due");
    assert!(fired <= max, "fire_due({max}) fired {fired}");
    fired
}

/// The `execute_task` a fire of `row` publishes.
pub(super) fn execute_task(row: &ScheduledTask) -> OutboxEvent {
    OutboxEvent::from(&Event::ExecuteTask(ExecuteTask {
        occurrence: OccurrenceKey {
            task_id: row.task_id,
            due_at: row.due_at,
        },
        user_id: row.user_id.clone(),
        seq: row.seq,
        fired_at: row.due_at,
        late: false,
        coalesced: 0,
        skipped: false,
        task_version: row.version,
        task: row.body.clone(),
        traceparent: None,
        escalation: None,
    }))
}

pub(super) type Seen = Arc<Mutex<Vec<ScheduledTask>>>;

/// A [`FireFn`] that publishes each row's `execute_task`, moves it to `next(row)`, and
/// records the rows it was given in call order.
pub(super) fn recording_fire(
    next: impl Fn(&ScheduledTask) -> Option<(Timestamp, u32)> + Send + Sync + 'static,
) -> (FireFn, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let fire: FireFn = Arc::new(move |row: &ScheduledTask| {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(row.clone());
        Fire {
            events: vec![execute_task(row)],
            next: next(row),
            nag: None,
            escalate_at: None,
        }
    });
    (fire, seen)
}

/// The rows fired since the last call.
pub(super) fn taken(seen: &Seen) -> Vec<ScheduledTask> {
    std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Schedules many due rows, then races one `fire_due` loop per store (`max` small, so the
/// loops interleave) until neither finds anything; every row must fire exactly once.
pub(super) async fn race_fire_due(stores: [Arc<dyn Store>; 2]) {
    const ROWS: usize = 120;
    let alice = user("alice");
    let tasks: Vec<TaskRecord> = (0..ROWS)
        .map(|i| task(&alice, &format!("Task {i}")))
        .collect();
    let changes: Vec<ScheduleChange> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| set(t, Some((at(i as i64), 1))))
        .collect();
    apply(&*stores[0], &changes).await;

    let (fire, counts) = counting_fire(None);
    let total = race_workers(stores.to_vec(), at(ROWS as i64), 7, fire, GUARD).await;

    let counts = counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "rows fired more than once: {twice:?}");
    assert_eq!(counts.len(), ROWS, "every due row fired");
    assert_eq!(total, ROWS, "fire_due counts every row it fired, once");
    assert_eq!(next_due(&*stores[0]).await, None);
    assert_eq!(outbox(&*stores[1]).await.len(), ROWS);
}

/// How many times a fired row's task was asked about: a `FireFn` that counts them, publishes
/// the row's `execute_task` and moves the row to `next`.
pub(super) type FireCounts = Arc<Mutex<HashMap<TaskId, usize>>>;

pub(super) fn counting_fire(next: Option<(Timestamp, u32)>) -> (FireFn, FireCounts) {
    let counts = FireCounts::default();
    let fire: FireFn = {
        let counts = counts.clone();
        Arc::new(move |row: &ScheduledTask| {
            *counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(row.task_id)
                .or_default() += 1;
            Fire {
                events: vec![execute_task(row)],
                next: next.map(|(at, _)| (at, row.seq + 1)),
                nag: None,
                escalate_at: None,
            }
        })
    };
    (fire, counts)
}

/// One `fire_due` loop per entry of `workers` (a store may appear more than once), started
/// together, each claiming `max` rows due at `now` until it finds none; the rows they fired in
/// all. Each loop must end within `guard`.
pub(super) async fn race_workers(
    workers: Vec<Arc<dyn Store>>,
    now: Timestamp,
    max: usize,
    fire: FireFn,
    guard: Duration,
) -> usize {
    let start = Arc::new(tokio::sync::Barrier::new(workers.len()));
    let racers: Vec<_> = workers
        .into_iter()
        .map(|store| {
            let (fire, start) = (fire.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let mut total = 0;
                loop {
                    match store
                        .fire_due(now, max, fire.clone())
                        .await
                        .expect("fire_due")
                    {
                        0 => break total,
                        n => total += n,
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for racer in racers {
        total += tokio::time::timeout(guard, racer)
            .await
            .expect("a fire_due loop finishes")
            .expect("a fire_due loop");
    }
    total
}

pub(super) fn occurrence_of(task_id: TaskId, due: i64) -> OccurrenceKey {
    OccurrenceKey {
        task_id,
        due_at: at(due),
    }
}

/// An unread inbox item for `occurrence`, created `secs` after the origin.
pub(super) fn inbox_item(owner: &UserId, occurrence: OccurrenceKey, secs: i64) -> InboxItem {
    InboxItem {
        id: NotificationId::new(),
        user_id: owner.clone(),
        task_id: occurrence.task_id,
        task_name: "Water the plants".to_owned(),
        due_at: occurrence.due_at,
        created_at: at(secs),
        read: false,
        silent: false,
    }
}

/// A sent delivery on `channel`, with its `notification_sent`.
pub(super) fn delivery(
    occurrence: OccurrenceKey,
    owner: &UserId,
    channel: Channel,
    inbox: Option<InboxItem>,
) -> DeliveryWrite {
    let status = DeliveryStatus {
        channel,
        target: String::new(),
        outcome: DeliveryOutcome::Sent,
        attempts: 1,
        at: occurrence.due_at,
        detail: None,
        provider_id: None,
    };
    let event = OutboxEvent::from(&Event::NotificationSent(NotificationSent {
        occurrence,
        user_id: owner.clone(),
        channel,
        outcome: status.outcome,
        attempts: status.attempts,
        at: status.at,
        detail: None,
        notification_id: inbox.as_ref().map(|i| i.id),
        target: String::new(),
        provider_id: None,
    }));
    DeliveryWrite {
        occurrence,
        user_id: owner.clone(),
        status,
        inbox,
        message: None,
        event: Some(event),
    }
}

pub(super) async fn record(store: &dyn Store, writes: &[DeliveryWrite]) -> Vec<usize> {
    store
        .record_deliveries(writes)
        .await
        .expect("record_deliveries")
}

/// Records a new in-app delivery of `occurrence` and returns its inbox item.
pub(super) async fn in_app(
    store: &dyn Store,
    owner: &UserId,
    occurrence: OccurrenceKey,
) -> InboxItem {
    let item = inbox_item(
        owner,
        occurrence,
        occurrence.due_at.as_second() - ORIGIN + 1,
    );
    let write = delivery(occurrence, owner, Channel::InApp, Some(item.clone()));
    assert_eq!(record(store, &[write]).await, [0]);
    item
}

pub(super) async fn inbox(
    store: &dyn Store,
    owner: &UserId,
    before: Option<NotificationId>,
    limit: usize,
) -> Vec<InboxItem> {
    store.inbox(owner, before, limit).await.expect("inbox")
}

pub(super) async fn unread(store: &dyn Store, owner: &UserId) -> u64 {
    store.unread_count(owner).await.expect("unread_count")
}

/// Occurrence `seq` of a task, fired on time `fired` seconds after the origin.
pub(super) fn fired(
    occurrence: OccurrenceKey,
    owner: &UserId,
    seq: u32,
    fired: i64,
) -> FiredOccurrence {
    FiredOccurrence {
        occurrence,
        user_id: owner.clone(),
        seq,
        fired_at: at(fired),
        late: false,
        skipped: false,
        coalesced: 0,
    }
}

pub(super) fn delivery_state(
    occurrence: OccurrenceKey,
    channel: Channel,
    attempts: u32,
    secs: i64,
) -> DeliveryState {
    DeliveryState {
        occurrence,
        status: DeliveryStatus {
            channel,
            target: String::new(),
            outcome: DeliveryOutcome::Sent,
            attempts,
            at: at(secs),
            detail: None,
            provider_id: None,
        },
    }
}

/// The history entry of `fired` with `deliveries`, in the order [`history`] sorts them.
pub(super) fn entry(fired: &FiredOccurrence, mut deliveries: Vec<DeliveryStatus>) -> HistoryEntry {
    sort_deliveries(&mut deliveries);
    HistoryEntry {
        due_at: fired.occurrence.due_at,
        seq: fired.seq,
        fired_at: fired.fired_at,
        late: fired.late,
        skipped: fired.skipped,
        coalesced: fired.coalesced,
        deliveries,
    }
}

/// `user`'s history of `task_id`, with each entry's deliveries by channel and target (the
/// port does not promise an order among one occurrence's deliveries).
pub(super) async fn history(
    store: &dyn Store,
    owner: &UserId,
    task_id: TaskId,
    before: Option<Timestamp>,
    limit: usize,
) -> Vec<HistoryEntry> {
    let mut entries = store
        .history(owner, task_id, before, limit)
        .await
        .expect("history");
    for entry in &mut entries {
        sort_deliveries(&mut entry.deliveries);
    }
    entries
}

pub(super) fn sort_deliveries(deliveries: &mut [DeliveryStatus]) {
    deliveries.sort_by(|a, b| (a.channel, &a.target).cmp(&(b.channel, &b.target)));
}

/// What a worker needs to attempt a delivery: opaque to the store, so any JSON document,
/// here one with nesting and non-ASCII text that must come back intact.
pub(super) fn message(
    occurrence: OccurrenceKey,
    channel: Channel,
    target: &str,
) -> serde_json::Value {
    json!({
        "channel": channel.as_str(),
        "target": target,
        "idempotencyKey": occurrence.to_string(),
        "subject": "Water the plants",
        "body": { "lines": ["Fill the green can — the one by the door."], "late": false },
    })
}

/// A pending delivery on `channel` to `target`, its first attempt due `secs` after the
/// origin: no attempts yet, a message for the worker, no event.
pub(super) fn pending(
    occurrence: OccurrenceKey,
    owner: &UserId,
    channel: Channel,
    target: &str,
    secs: i64,
) -> DeliveryWrite {
    DeliveryWrite {
        occurrence,
        user_id: owner.clone(),
        status: DeliveryStatus {
            channel,
            target: target.to_owned(),
            outcome: DeliveryOutcome::Pending,
            attempts: 0,
            at: at(secs),
            detail: None,
            provider_id: None,
        },
        inbox: None,
        message: Some(message(occurrence, channel, target)),
        event: None,
    }
}

pub(super) fn key(write: &DeliveryWrite) -> DeliveryKey {
    DeliveryKey {
        occurrence: write.occurrence,
        channel: write.status.channel,
        target: write.status.target.clone(),
    }
}

/// What claiming `write` returns after `attempts` attempts, its retry window opened at
/// `first`.
pub(super) fn claimed(write: &DeliveryWrite, attempts: u32, first: Timestamp) -> ClaimedDelivery {
    ClaimedDelivery {
        key: key(write),
        user_id: write.user_id.clone(),
        attempts,
        first_attempt_at: first,
        message: write
            .message
            .clone()
            .expect("a pending write has a message"),
        // `claim` checks the lease and blanks it.
        lease_until: Timestamp::UNIX_EPOCH,
    }
}

/// The `notification_sent` of `write` reaching a final state.
pub(super) fn final_event(
    write: &DeliveryWrite,
    outcome: DeliveryOutcome,
    attempts: u32,
    at: Timestamp,
    detail: Option<&str>,
    provider_id: Option<&str>,
) -> OutboxEvent {
    OutboxEvent::from(&Event::NotificationSent(NotificationSent {
        occurrence: write.occurrence,
        user_id: write.user_id.clone(),
        channel: write.status.channel,
        outcome,
        attempts,
        at,
        detail: detail.map(str::to_owned),
        notification_id: None,
        target: write.status.target.clone(),
        provider_id: provider_id.map(str::to_owned),
    }))
}

pub(super) fn sent(provider_id: Option<&str>) -> AttemptResult {
    AttemptResult::Sent {
        provider_id: provider_id.map(str::to_owned),
    }
}

pub(super) fn retry(secs: i64, error: &str) -> AttemptResult {
    AttemptResult::Retry {
        next_attempt_at: at(secs),
        error: error.to_owned(),
    }
}

pub(super) fn dead_lettered(error: &str) -> AttemptResult {
    AttemptResult::DeadLettered {
        error: error.to_owned(),
    }
}

pub(super) async fn claim(
    store: &dyn Store,
    channel: Channel,
    now: Timestamp,
    lease_until: Timestamp,
    max: usize,
) -> Vec<ClaimedDelivery> {
    let claims = store
        .claim_deliveries(channel, now, lease_until, max)
        .await
        .expect("claim_deliveries");
    assert!(
        claims.len() <= max,
        "claim_deliveries({max}) claimed {}",
        claims.len()
    );
    // Every claim holds the lease asked for; expectations built by `claimed` then compare
    // everything else.
    for c in &claims {
        assert_eq!(c.lease_until, lease_until, "the claim's lease");
    }
    claims
        .into_iter()
        .map(|c| ClaimedDelivery {
            lease_until: Timestamp::UNIX_EPOCH,
            ..c
        })
        .collect()
}

pub(super) async fn next_delivery(store: &dyn Store, channel: Channel) -> Option<Timestamp> {
    store
        .next_delivery_at(channel)
        .await
        .expect("next_delivery_at")
}

pub(super) async fn attempt(
    store: &dyn Store,
    key: &DeliveryKey,
    lease: Timestamp,
    at: Timestamp,
    result: AttemptResult,
    event: Option<OutboxEvent>,
) {
    store
        .record_attempt(key, lease, at, result, event)
        .await
        .expect("record_attempt");
}

pub(super) async fn retry_dead_letter(
    store: &dyn Store,
    owner: &UserId,
    key: &DeliveryKey,
    now: Timestamp,
) -> bool {
    store
        .retry_dead_letter(owner, key, now)
        .await
        .expect("retry_dead_letter")
}

/// `user`'s pending deliveries of `task_id`, by occurrence, channel and target (the port
/// does not promise an order).
pub(super) async fn pending_of(
    store: &dyn Store,
    owner: &UserId,
    task_id: TaskId,
) -> Vec<(OccurrenceKey, DeliveryStatus)> {
    let mut pending = store
        .pending_deliveries(owner, task_id)
        .await
        .expect("pending_deliveries");
    pending.sort_by(|(a, s), (b, t)| {
        (a.due_at, s.channel, &s.target).cmp(&(b.due_at, t.channel, &t.target))
    });
    pending
}

/// `owner`'s push subscription `id` on `endpoint`, created `secs` after the origin.
pub(super) fn subscription(
    owner: &UserId,
    id: &str,
    endpoint: &str,
    secs: i64,
) -> PushSubscriptionRecord {
    PushSubscriptionRecord {
        id: id.to_owned(),
        user_id: owner.clone(),
        endpoint: endpoint.to_owned(),
        p256dh: format!("BPublicKeyOf{id}"),
        auth: format!("auth-of-{id}"),
        created_at: at(secs),
    }
}

pub(super) async fn put_subscription(
    store: &dyn Store,
    sub: &PushSubscriptionRecord,
) -> PushSubscriptionRecord {
    store
        .put_push_subscription(sub)
        .await
        .expect("put_push_subscription")
}

/// `owner`'s push subscriptions by id (the port does not promise an order).
pub(super) async fn subscriptions(
    store: &dyn Store,
    owner: &UserId,
) -> Vec<PushSubscriptionRecord> {
    let mut subs = store
        .push_subscriptions(owner)
        .await
        .expect("push_subscriptions");
    subs.sort_by(|a, b| a.id.cmp(&b.id));
    subs
}

pub(super) async fn remove_subscription(
    store: &dyn Store,
    owner: Option<&UserId>,
    id: &str,
) -> bool {
    store
        .remove_push_subscription(owner, id)
        .await
        .expect("remove_push_subscription")
}

pub(super) fn webhook_endpoint(owner: &UserId, url: &str, secs: i64) -> WebhookEndpoint {
    WebhookEndpoint {
        user_id: owner.clone(),
        url: url.to_owned(),
        secret: format!("whsec_{}", owner.as_str()),
        created_at: at(secs),
    }
}

pub(super) async fn put_webhook(store: &dyn Store, endpoint: &WebhookEndpoint) {
    store.put_webhook(endpoint).await.expect("put_webhook");
}

pub(super) async fn webhook(store: &dyn Store, owner: &UserId) -> Option<WebhookEndpoint> {
    store.webhook(owner).await.expect("webhook")
}

/// `owner`'s destination `id` called `name`, an ntfy topic URL made from the id.
pub(super) fn destination_record(
    owner: &UserId,
    id: &str,
    name: &str,
    secs: i64,
) -> DestinationRecord {
    DestinationRecord {
        id: id.to_owned(),
        user_id: owner.clone(),
        name: name.to_owned(),
        url: format!("ntfys://tk_secret_of_{id}@ntfy.example/{id}"),
        created_at: at(secs),
    }
}

pub(super) async fn put_destination(store: &dyn Store, destination: &DestinationRecord) {
    store
        .put_destination(destination)
        .await
        .expect("put_destination");
}

pub(super) async fn destinations(store: &dyn Store, owner: &UserId) -> Vec<DestinationRecord> {
    store.destinations(owner).await.expect("destinations")
}

pub(super) async fn destination(
    store: &dyn Store,
    owner: Option<&UserId>,
    id: &str,
) -> Option<DestinationRecord> {
    store.destination(owner, id).await.expect("destination")
}

pub(super) async fn remove_destination(store: &dyn Store, owner: &UserId, id: &str) -> bool {
    store
        .remove_destination(owner, id)
        .await
        .expect("remove_destination")
}

pub(super) fn session_record(id_hash: &str, owner: Option<&str>, expires: i64) -> SessionRecord {
    SessionRecord {
        id_hash: id_hash.to_owned(),
        csrf: format!("csrf-of-{id_hash}"),
        user: owner.map(user),
        access_token: None,
        access_expires_at: None,
        pending: None,
        expires_at: at(expires),
    }
}

pub(super) fn pending_sign_in(state: &str) -> PendingSignIn {
    PendingSignIn {
        state: state.to_owned(),
        nonce: format!("nonce-{state}"),
        verifier: format!("verifier-{state}"),
        return_to: "/tasks/tsk_1".to_owned(),
    }
}

pub(super) async fn live_session(
    store: &dyn Store,
    id_hash: &str,
    now: i64,
) -> Option<SessionRecord> {
    store.session(id_hash, at(now)).await.expect("session")
}
