//! The notification role: delivers each `execute_task` occurrence on each channel its task
//! asks for, exactly once per (occurrence, channel, recipient), and publishes
//! `notification_sent` for each delivery's final state.
//!
//! Three kinds of workers:
//! - the **consumer** turns each `execute_task` into delivery records, all in one transaction:
//!   the in-app one final at once (inbox item, delivery, event together, so a replayed
//!   `execute_task` finds it recorded and writes nothing again); one pending record per
//!   external recipient (one per push subscription), holding what the attempt needs; a
//!   skipped record, with the reason, for a channel the server or the user has not set up;
//! - on a store shared by several processes (PostgreSQL), the **handoff taker** records the
//!   same way the `execute_task` events no instance has recorded a few seconds after they fired
//!   (a dead or cut-off consumer's partitions, until the broker moves them), claimed from the
//!   store, where each waits from its firing until its deliveries are recorded
//!   ([`Notification::run_handoffs`]);
//! - one **delivery worker per configured channel** (module `worker`) claims due pending records under a lease
//!   and attempts them concurrently (bounded per channel, every call under a timeout), so a
//!   slow or dead provider delays only its own channel. Transient failures are retried with
//!   exponential backoff and full jitter, honouring the provider's `Retry-After`, within a
//!   retry window (about a day by default); permanent failures and exhausted windows are
//!   dead-lettered, visible in history and retryable through the API.
//!
//! A worker that dies mid-attempt leaves its lease to expire and the delivery is attempted
//! again: delivery to providers is at-least-once, and every attempt carries the same
//! idempotency key so providers that honour one deduplicate.
//!
//! What the API asks of this role is in its request-facing services, each in its own module
//! beside this file: [`inbox::Inbox`], [`recipients::Recipients`] and
//! [`deliveries::TaskDeliveries`].
//!
//! This file, though long, is the consumer's one decision: which deliveries an occurrence makes
//! (channels, recipients, quiet hours, urgency) and how they are recorded; the workers that
//! attempt them are in `worker`.

pub mod deliveries;
pub mod destinations;
mod error;
mod feed;
pub mod inbox;
pub mod recipients;
mod worker;

pub use error::NotificationError;
pub use feed::InboxFeed;
pub use worker::idempotency_key;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chime_bus::Bus;
use chime_channels::{ChannelAdapter, Recipient, SendError};
use chime_core::event::{Channel, DeliveryOutcome, Event, ExecuteTask, NotificationSent, Topic};
use chime_core::profile::{Profile, QuietHours};
use chime_core::task::StoredTaskError;
use chime_core::{NotificationId, TaskSpec, UserId};
use chime_store::{
    DeliveryStatus, DeliveryStore, DeliveryWrite, InboxItem, OccurrenceStore, OutboxEvent,
    OutboxStore, RecipientStore,
};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::metrics::{
    lateness_seconds, ChannelLabels, DeliveryLabels, ProviderErrorLabels, QUIET_CHANNELS,
};
use crate::occurrence::tokens::ActionKeys;
use crate::{consumer, Context, Result};

/// When failed attempts are tried again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The cap of the first retry's delay; each further retry doubles it.
    pub base: Duration,
    /// No delay is longer than this.
    pub max_delay: Duration,
    /// Retries stop (dead letter) once the next attempt would fall later than this after the
    /// first attempt.
    pub window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            max_delay: Duration::from_secs(3600),
            window: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, after `attempts` failed ones: exponential
    /// backoff with full jitter (uniform in `0..=min(max_delay, base * 2^(attempts-1))`), but
    /// never sooner than the provider's `retry_after`.
    pub fn delay(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let cap = self
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let jittered = Duration::from_secs_f64(rng.gen_range(0.0..=cap.as_secs_f64()));
        jittered.max(retry_after.unwrap_or_default())
    }
}

/// How much longer than its adapter's timeout a claimed delivery is leased: time to record
/// the attempt's result, with room to spare.
pub const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// How long a handoff taken over from the store is reserved for the instance that took it:
/// far longer than recording one batch takes, and short enough that one taken by an instance
/// that died meanwhile is taken over again soon after.
pub const HANDOFF_LEASE: Duration = Duration::from_secs(10);

/// How often a notification instance looks for handoffs to take over (at once again after a
/// full batch).
pub const HANDOFF_EVERY: Duration = Duration::from_secs(1);

/// How recent this instance's latest batch from the bus must be for its delay to count (see
/// [`BusDelay`]).
const BUS_DELAY_FRESH: Duration = Duration::from_secs(5);

/// How this instance's consumer keeps up with the bus: the age of the oldest event of its
/// latest batch, whether that batch was full, and when it came. The handoff taker takes over
/// only with room to spare and only what the bus is not about to bring:
/// - while the latest batch was full, not at all: the consumer has a backlog, so the store is
///   busy, and a takeover would be work on top (the distributed burst measured 40% slower);
/// - otherwise what is older than [`NotificationConfig::handoff_after`] plus that age: under
///   a backlog every consumer is behind alike and will reach its events, while a dead
///   consumer's are older than what the live ones are consuming.
///
/// A batch older than [`BUS_DELAY_FRESH`] counts as none: a consumer that gets no batches (cut
/// off from the broker, or between rebalances) says nothing about the bus's pace.
#[derive(Clone, Default)]
struct BusDelay(Arc<std::sync::Mutex<Option<(tokio::time::Instant, Duration, bool)>>>);

impl BusDelay {
    fn observe(&self, delay: Duration, full: bool) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((tokio::time::Instant::now(), delay, full));
    }

    /// How much longer than `handoff_after` the taker waits; `None`: it takes nothing now.
    fn current(&self) -> Option<Duration> {
        match *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some((at, _, true)) if at.elapsed() <= BUS_DELAY_FRESH => None,
            Some((at, delay, false)) if at.elapsed() <= BUS_DELAY_FRESH => Some(delay),
            _ => Some(Duration::ZERO),
        }
    }
}

/// A channel's lease: its adapter's timeout plus [`LEASE_MARGIN`], at most `most`.
fn lease_for(timeout: Duration, most: Duration) -> Duration {
    timeout.saturating_add(LEASE_MARGIN).min(most)
}

#[derive(Debug, Clone, Copy)]
pub struct NotificationConfig {
    pub retry: RetryPolicy,
    /// Attempts in flight at once, per channel.
    pub concurrency: usize,
    /// The longest a claimed delivery is reserved for its attempt. Each channel's lease is
    /// its adapter's timeout plus [`LEASE_MARGIN`], up to this: longer than any attempt, so
    /// only a dead worker's deliveries are attempted again, and no longer than needed, since
    /// that is how late a dead worker's deliveries go out.
    pub lease: Duration,
    /// The longest a delivery worker sleeps without looking at its queue (a safety net: a
    /// retry requested in this process wakes it at once, and one requested in another process
    /// too where the store signals it).
    pub idle: Duration,
    /// On a store that keeps handoffs: an `execute_task` fired this long ago whose deliveries
    /// no instance has recorded is taken over from the store ([`Notification::run_handoffs`]).
    /// Longer than the bus normally takes (so a healthy consumer's work is rarely done twice),
    /// and short enough that a dead consumer's share still goes out well inside the SLO.
    pub handoff_after: Duration,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            concurrency: 16,
            // Longer than every adapter's own timeout (email 30 s, the others 10-15 s), and short
            // enough that a delivery claimed by a process that died is attempted again within
            // a minute.
            lease: Duration::from_secs(45),
            idle: Duration::from_secs(5),
            handoff_after: Duration::from_secs(3),
        }
    }
}

/// A channel's recipients of one user, each with its target (empty when the channel has one
/// recipient), or why there are none (the user has not set the channel up).
type Recipients = std::result::Result<Vec<(String, Recipient)>, String>;

/// Waits for `signal`; forever without one.
async fn notified(signal: Option<&Notify>) {
    match signal {
        Some(signal) => signal.notified().await,
        None => std::future::pending().await,
    }
}

/// `user`'s entry of `known`, looked up the first time only.
async fn once_per_user<Fut>(
    known: &mut HashMap<UserId, Recipients>,
    user: &UserId,
    look_up: impl FnOnce() -> Fut,
) -> Result<Recipients>
where
    Fut: std::future::Future<Output = Result<Recipients>>,
{
    if let Some(recipients) = known.get(user) {
        return Ok(recipients.clone());
    }
    let recipients = look_up().await?;
    known.insert(user.clone(), recipients.clone());
    Ok(recipients)
}

/// One batch's recipients, looked up once per user and channel: a batch often holds many
/// occurrences of one user, and each lookup is a store round trip.
#[derive(Default)]
struct BatchRecipients {
    push: HashMap<UserId, Recipients>,
    webhook: HashMap<UserId, Recipients>,
    /// Each user's destinations by id, with the channel each is on.
    destinations: HashMap<UserId, HashMap<String, (Channel, Recipient)>>,
    /// Each user's quiet hours on their zone; `None` when they have none.
    quiet: HashMap<UserId, Option<(QuietHours, TimeZone)>>,
}

/// What a pending delivery keeps for its attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    late: bool,
    /// The task's stored form ([`TaskSpec::to_stored`]), as of the occurrence.
    task: serde_json::Value,
    recipient: Recipient,
    /// Held by the owner's quiet hours, or an escalation step (its owner may be acting on
    /// the first send right now): by its first attempt the occurrence may have been
    /// acknowledged, so the worker looks first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    held: bool,
    /// The `deliver` span's trace context: every attempt, retries included, joins its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

/// Wakes a channel's delivery worker when work arrives for it.
#[derive(Clone, Default)]
pub struct DeliveryWake(Arc<HashMap<Channel, Notify>>);

impl DeliveryWake {
    pub fn new() -> Self {
        Self(Arc::new(
            Channel::ALL
                .into_iter()
                .map(|c| (c, Notify::new()))
                .collect(),
        ))
    }

    pub fn wake(&self, channel: Channel) {
        if let Some(n) = self.0.get(&channel) {
            n.notify_one();
        }
    }

    async fn notified(&self, channel: Channel) {
        match self.0.get(&channel) {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    }
}

#[derive(Clone)]
pub struct Notification {
    deliveries: Arc<dyn DeliveryStore>,
    recipients: Arc<dyn RecipientStore>,
    occurrences: Arc<dyn OccurrenceStore>,
    outbox: Arc<dyn OutboxStore>,
    /// Signs the action links and buttons of emails and pushes (none without it).
    action_keys: Option<ActionKeys>,
    channels: Arc<HashMap<Channel, Arc<dyn ChannelAdapter>>>,
    feed: InboxFeed,
    wake: DeliveryWake,
    ctx: Context,
    config: NotificationConfig,
    bus_delay: BusDelay,
}

/// The store ports the notification role works on (one store serves them all).
#[derive(Clone)]
pub struct NotificationStores {
    pub deliveries: Arc<dyn DeliveryStore>,
    pub recipients: Arc<dyn RecipientStore>,
    pub occurrences: Arc<dyn OccurrenceStore>,
    /// Where handoffs are taken over from.
    pub outbox: Arc<dyn OutboxStore>,
}

impl NotificationStores {
    /// Every port from one store.
    pub fn of<S: DeliveryStore + RecipientStore + OccurrenceStore + OutboxStore>(
        store: Arc<S>,
    ) -> Self {
        Self {
            deliveries: store.clone(),
            recipients: store.clone(),
            occurrences: store.clone(),
            outbox: store,
        }
    }
}

impl Notification {
    pub fn new(
        NotificationStores {
            deliveries,
            recipients,
            occurrences,
            outbox,
        }: NotificationStores,
        channels: Vec<Arc<dyn ChannelAdapter>>,
        feed: InboxFeed,
        wake: DeliveryWake,
        ctx: Context,
        config: NotificationConfig,
    ) -> Self {
        Self {
            deliveries,
            recipients,
            occurrences,
            outbox,
            action_keys: None,
            channels: Arc::new(channels.into_iter().map(|c| (c.kind(), c)).collect()),
            feed,
            wake,
            ctx,
            config,
            bus_delay: BusDelay::default(),
        }
    }

    /// Emails get Done and Snooze links, pushes Done and Snooze buttons, signed with `keys`.
    pub fn with_action_keys(mut self, keys: ActionKeys) -> Self {
        self.action_keys = Some(keys);
        self
    }

    /// The external channels this server has a provider for.
    pub fn configured_channels(&self) -> Vec<Channel> {
        let mut channels: Vec<Channel> = self.channels.keys().copied().collect();
        channels.sort();
        channels
    }

    /// The consumer of `execute-task`.
    pub async fn run_consumer(&self, bus: Arc<dyn Bus>) -> Result<()> {
        consumer::run(
            bus,
            "notification",
            &[Topic::ExecuteTask],
            &self.ctx,
            |events| {
                let events = events.into_iter().filter_map(|event| match event {
                    Event::ExecuteTask(e) => Some(e),
                    _ => None,
                });
                self.record_events(events.collect(), Vec::new(), false)
            },
        )
        .await
    }

    /// Takes over, until shutdown, the `execute_task` events no instance has recorded
    /// [`NotificationConfig::handoff_after`] (plus this instance's own [`BusDelay`]) after
    /// they fired, from a store that keeps
    /// handoffs (PostgreSQL): the share of a consumer that died or was cut off, which the
    /// broker gives another member only after the consumer's session times out and the group
    /// rebalances (10 s and more). Any instance may take any handoff; deliveries are unique per
    /// (occurrence, channel, target), so an event recorded both from here and from the bus
    /// makes its deliveries once. Returns at once on a store that keeps none.
    pub async fn run_handoffs(&self) -> Result<()> {
        if !self.outbox.keeps_handoffs() {
            return Ok(());
        }
        loop {
            let handoffs = match self.bus_delay.current() {
                Some(delay) => {
                    let after = self.config.handoff_after + delay;
                    self.outbox
                        .claim_handoffs(after, HANDOFF_LEASE, consumer::BATCH)
                        .await?
                }
                None => Vec::new(),
            };
            let full = handoffs.len() == consumer::BATCH;
            if !handoffs.is_empty() {
                self.ctx
                    .metrics
                    .handoffs_taken
                    .inc_by(handoffs.len() as u64);
                tracing::debug!(
                    handoffs = handoffs.len(),
                    "taking over fired occurrences not recorded from the bus in time"
                );
                let mut events = Vec::new();
                // One that does not decode is done with (its bus copy is skipped too).
                let mut unreadable = Vec::new();
                for handoff in handoffs {
                    match Event::from_bytes(&handoff.payload) {
                        Ok(Event::ExecuteTask(e)) => events.push(e),
                        Ok(other) => {
                            tracing::error!(handoff = %handoff.id, event = other.name(), "a handoff is not an execute_task");
                            unreadable.push(handoff.id);
                        }
                        Err(error) => {
                            tracing::error!(handoff = %handoff.id, %error, "a handoff does not decode");
                            unreadable.push(handoff.id);
                        }
                    }
                }
                self.record_events(events, unreadable, true).await?;
            }
            if !full {
                tokio::select! {
                    () = self.ctx.shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(HANDOFF_EVERY) => {}
                }
            } else if self.ctx.shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Records the deliveries of `events` in one transaction, with their handoffs (and
    /// `handled`, more handoff ids) done with: `taken` over from the store, or from the bus.
    /// From the bus, an event a takeover has recorded already is skipped (its handoff only
    /// removed): its deliveries are there, and making them again would cost the recipients'
    /// look-ups and the writes for nothing.
    async fn record_events(
        &self,
        mut events: Vec<ExecuteTask>,
        mut handled: Vec<String>,
        taken: bool,
    ) -> Result<()> {
        let mut writes = Vec::new();
        // One `deliver` span per occurrence, a child of its claim; each stays open until the
        // batch's records are committed.
        let mut spans = Vec::new();
        let mut recipients = BatchRecipients::default();
        let keeps_handoffs = self.outbox.keeps_handoffs();
        if keeps_handoffs && !taken && !events.is_empty() {
            let full = events.len() >= consumer::BATCH;
            // Only an event at least `handoff_after` old can have been taken over (less a
            // second for the clocks of the instances and the database): a batch of younger
            // ones, the steady state, costs no look-up. One taken over all the same (clocks
            // further apart) is recorded again, finding its deliveries there.
            let now = self.ctx.clock.now();
            let could_be_taken = |e: &ExecuteTask| {
                Duration::try_from(e.fired_at.duration_until(now)).unwrap_or_default()
                    + Duration::from_secs(1)
                    >= self.config.handoff_after
            };
            let ids: Vec<String> = events
                .iter()
                .filter(|e| could_be_taken(e))
                .map(ExecuteTask::handoff)
                .collect();
            let recorded: std::collections::HashSet<String> = if ids.is_empty() {
                std::collections::HashSet::new()
            } else {
                self.deliveries
                    .recorded_handoffs(&ids)
                    .await?
                    .into_iter()
                    .collect()
            };
            if !recorded.is_empty() {
                events.retain(|e| !recorded.contains(&e.handoff()));
                handled.extend(recorded);
            }
            // The pace of the bus, from the events it brought first (not those taken over:
            // their age is the dead consumer's).
            if let Some(oldest) = events.iter().map(|e| e.fired_at).min() {
                let age = oldest.duration_until(self.ctx.clock.now());
                self.bus_delay
                    .observe(Duration::try_from(age).unwrap_or_default(), full);
            }
        }
        for e in events {
            let span = tracing::info_span!(
                parent: None,
                "deliver",
                task_id = %e.occurrence.task_id,
                occurrence = %e.occurrence,
            );
            crate::trace::set_parent(&span, e.traceparent.as_deref());
            writes.extend(
                self.deliveries_of(&e, &mut recipients)
                    .instrument(span.clone())
                    .await?,
            );
            if keeps_handoffs {
                handled.push(e.handoff());
            }
            spans.push(span);
        }
        let recorded = self.record(writes, &handled, taken).await;
        drop(spans);
        recorded
    }

    /// The deliveries one occurrence makes: one per channel, one per recipient of it.
    async fn deliveries_of(
        &self,
        e: &ExecuteTask,
        recipients: &mut BatchRecipients,
    ) -> Result<Vec<DeliveryWrite>> {
        if e.skipped {
            return Ok(Vec::new());
        }
        let task = match TaskSpec::from_stored(&e.task) {
            Ok(task) => task,
            // Not committed: redelivered until an instance that reads it consumes it.
            Err(error @ StoredTaskError::Newer { .. }) => return Err(error.into()),
            Err(error) => {
                tracing::error!(task_id = %e.occurrence.task_id, occurrence = %e.occurrence, %error, "execute_task body is corrupt");
                return Ok(Vec::new());
            }
        };
        let now = self.ctx.clock.now();
        // An urgent task is not held: its owner asked for it at once, whatever the hour.
        let quiet_until = if task.urgent {
            None
        } else {
            match recipients.quiet.get(&e.user_id) {
                Some(quiet) => quiet.clone(),
                None => {
                    let quiet = self.quiet_hours(&e.user_id).await?;
                    recipients.quiet.insert(e.user_id.clone(), quiet.clone());
                    quiet
                }
            }
            .and_then(|(quiet, tz)| quiet.until(now, &tz))
        };
        let d = Deliveries { e, now };
        let mut writes = Vec::new();
        // The firing goes out on every channel but those held back for escalation steps; a
        // step, on its channel only.
        let sends = |channel: Channel| match e.escalation {
            Some(step) => channel == step,
            None => !task.escalates_to(channel),
        };
        if task.notify.in_app && sends(Channel::InApp) {
            // Shown at once; inside quiet hours without a sound.
            writes.push(d.in_app(&task, quiet_until.is_some()));
        }
        let mut external: Vec<(Channel, Recipients)> = Vec::new();
        if let Some(email) = task.notify.email.as_ref().filter(|_| sends(Channel::Email)) {
            external.push((
                Channel::Email,
                Ok(vec![(String::new(), Recipient::email(email))]),
            ));
        }
        if let Some(sms) = task.notify.sms.as_ref().filter(|_| sends(Channel::Sms)) {
            external.push((Channel::Sms, Ok(vec![(String::new(), Recipient::sms(sms))])));
        }
        if task.notify.push && sends(Channel::Push) {
            let push = once_per_user(&mut recipients.push, &e.user_id, || {
                self.push_recipients(&e.user_id)
            });
            external.push((Channel::Push, push.await?));
        }
        if task.notify.webhook && sends(Channel::Webhook) {
            let webhook = once_per_user(&mut recipients.webhook, &e.user_id, || {
                self.webhook_recipient(&e.user_id)
            });
            external.push((Channel::Webhook, webhook.await?));
        }
        if !task.notify.destinations.is_empty() {
            if !recipients.destinations.contains_key(&e.user_id) {
                let found = self.destinations_of(&e.user_id).await?;
                recipients.destinations.insert(e.user_id.clone(), found);
            }
            let known = &recipients.destinations[&e.user_id];
            for id in &task.notify.destinations {
                match known.get(id.as_str()) {
                    Some((channel, recipient)) if sends(*channel) => external.push((
                        *channel,
                        Ok(vec![(id.as_str().to_owned(), recipient.clone())]),
                    )),
                    Some(_) => {}
                    // Removed since the task named it: nothing to deliver to, and no channel
                    // to record a skip under.
                    None => {
                        tracing::debug!(destination = %id, "a task names a removed destination")
                    }
                }
            }
        }
        for (channel, recipients) in external {
            if !self.channels.contains_key(&channel) {
                let reason = format!(
                    "channel {} is not configured on this server",
                    channel.as_str()
                );
                writes.push(d.skipped(channel, reason));
                continue;
            }
            match recipients {
                Err(reason) => writes.push(d.skipped(channel, reason)),
                Ok(recipients) => {
                    // Inside the owner's quiet hours, what buzzes waits for their end.
                    let deferred = quiet_until.filter(|_| QUIET_CHANNELS.contains(&channel));
                    for (target, recipient) in recipients {
                        if deferred.is_some() {
                            self.ctx
                                .metrics
                                .deliveries_deferred
                                .get_or_create(&ChannelLabels {
                                    channel: channel.as_str(),
                                })
                                .inc();
                        }
                        writes.push(d.pending(channel, target, recipient, deferred));
                    }
                }
            }
        }
        Ok(writes)
    }

    /// The user's quiet hours and the zone they are read on (UTC when the profile has none).
    /// A profile this release cannot read defers nothing: a reminder late is worse than one
    /// during quiet hours.
    async fn quiet_hours(&self, user: &UserId) -> Result<Option<(QuietHours, TimeZone)>> {
        let Some(record) = self.recipients.profile(user).await? else {
            return Ok(None);
        };
        match Profile::from_stored(&record.body) {
            Ok(profile) if profile.quiet_hours.is_empty() => Ok(None),
            Ok(profile) => {
                let tz = profile
                    .time_zone
                    .map_or(TimeZone::UTC, |zone| zone.time_zone());
                Ok(Some((profile.quiet_hours, tz)))
            }
            Err(error) => {
                tracing::warn!(%error, "a profile cannot be read; quiet hours not applied");
                Ok(None)
            }
        }
    }

    async fn push_recipients(&self, user: &UserId) -> Result<Recipients> {
        let subs = self.recipients.push_subscriptions(user).await?;
        if subs.is_empty() {
            return Ok(Err(
                "no push subscription is registered for this user".to_owned()
            ));
        }
        Ok(Ok(subs
            .into_iter()
            .map(|s| {
                let recipient = Recipient::Push {
                    subscription: chime_channels::PushSubscription {
                        id: s.id.clone(),
                        endpoint: s.endpoint,
                        p256dh: s.p256dh,
                        auth: s.auth,
                    },
                };
                (s.id, recipient)
            })
            .collect()))
    }

    async fn webhook_recipient(&self, user: &UserId) -> Result<Recipients> {
        Ok(match self.recipients.webhook(user).await? {
            None => Err("no webhook endpoint is configured for this user".to_owned()),
            Some(w) => Ok(vec![(
                String::new(),
                Recipient::Webhook {
                    url: w.url,
                    secret: w.secret,
                },
            )]),
        })
    }

    /// `user`'s destinations, by id, each with the channel its URL names (a URL this release
    /// cannot read goes to no channel: its tasks' deliveries to it are not made).
    async fn destinations_of(
        &self,
        user: &UserId,
    ) -> Result<HashMap<String, (Channel, Recipient)>> {
        Ok(self
            .recipients
            .destinations(user)
            .await?
            .into_iter()
            .filter_map(|d| {
                let channel = chime_channels::destination::DestinationUrl::parse(&d.url)
                    .ok()?
                    .channel();
                let recipient = Recipient::Destination {
                    id: d.id.clone(),
                    url: d.url,
                };
                Some((d.id, (channel, recipient)))
            })
            .collect())
    }

    async fn record(
        &self,
        writes: Vec<DeliveryWrite>,
        handled: &[String],
        taken: bool,
    ) -> Result<()> {
        if writes.is_empty() && handled.is_empty() {
            return Ok(());
        }
        let new = self
            .deliveries
            .record_handled(&writes, handled, taken)
            .await?;
        for i in new {
            let w = &writes[i];
            let outcome = w.status.outcome;
            if outcome == DeliveryOutcome::Pending {
                self.wake.wake(w.status.channel);
                continue;
            }
            self.count(w.status.channel, outcome.as_str());
            if outcome == DeliveryOutcome::Sent {
                self.ctx
                    .metrics
                    .delivery_lateness
                    .observe(lateness_seconds(w.occurrence.due_at, w.status.at));
            }
            if let Some(item) = &w.inbox {
                // No live subscriber is not an error: the inbox has it.
                self.feed.send(item);
            }
        }
        Ok(())
    }

    fn count(&self, channel: Channel, outcome: &'static str) {
        self.ctx
            .metrics
            .deliveries
            .get_or_create(&DeliveryLabels {
                channel: channel.as_str(),
                outcome,
            })
            .inc();
    }

    fn count_provider_error(&self, channel: Channel, error: &SendError) {
        let kind = match error {
            SendError::Transient { .. } => "transient",
            SendError::Permanent { .. } => "permanent",
            SendError::Gone { .. } => "gone",
        };
        self.ctx
            .metrics
            .provider_errors
            .get_or_create(&ProviderErrorLabels {
                channel: channel.as_str(),
                kind,
            })
            .inc();
    }
}

/// Builds the delivery records of one occurrence.
struct Deliveries<'a> {
    e: &'a ExecuteTask,
    now: Timestamp,
}

impl Deliveries<'_> {
    fn status(
        &self,
        channel: Channel,
        target: String,
        outcome: DeliveryOutcome,
        detail: Option<String>,
    ) -> DeliveryStatus {
        DeliveryStatus {
            channel,
            target,
            outcome,
            attempts: u32::from(outcome == DeliveryOutcome::Sent),
            at: self.now,
            detail,
            provider_id: None,
        }
    }

    fn event(
        &self,
        status: &DeliveryStatus,
        notification_id: Option<NotificationId>,
    ) -> OutboxEvent {
        OutboxEvent::from(&Event::NotificationSent(NotificationSent {
            occurrence: self.e.occurrence,
            user_id: self.e.user_id.clone(),
            channel: status.channel,
            outcome: status.outcome,
            attempts: status.attempts,
            at: status.at,
            detail: status.detail.clone(),
            notification_id,
            target: status.target.clone(),
            provider_id: None,
        }))
    }

    fn in_app(&self, task: &TaskSpec, silent: bool) -> DeliveryWrite {
        let item = InboxItem {
            id: NotificationId::new(),
            user_id: self.e.user_id.clone(),
            task_id: self.e.occurrence.task_id,
            task_name: task.name.as_str().to_owned(),
            due_at: self.e.occurrence.due_at,
            created_at: self.now,
            read: false,
            silent,
        };
        let status = self.status(Channel::InApp, String::new(), DeliveryOutcome::Sent, None);
        DeliveryWrite {
            occurrence: self.e.occurrence,
            user_id: self.e.user_id.clone(),
            event: Some(self.event(&status, Some(item.id))),
            status,
            inbox: Some(item),
            message: None,
        }
    }

    fn skipped(&self, channel: Channel, reason: String) -> DeliveryWrite {
        let status = self.status(
            channel,
            String::new(),
            DeliveryOutcome::Skipped,
            Some(reason),
        );
        DeliveryWrite {
            occurrence: self.e.occurrence,
            user_id: self.e.user_id.clone(),
            event: Some(self.event(&status, None)),
            status,
            inbox: None,
            message: None,
        }
    }

    /// A delivery for a worker to attempt: now, or at `deferred` (the end of quiet hours),
    /// which is also where its retry window starts.
    fn pending(
        &self,
        channel: Channel,
        target: String,
        recipient: Recipient,
        deferred: Option<Timestamp>,
    ) -> DeliveryWrite {
        let pending = Pending {
            late: self.e.late,
            task: self.e.task.clone(),
            recipient,
            held: deferred.is_some() || self.e.escalation.is_some(),
            // Built inside the occurrence's `deliver` span.
            traceparent: crate::trace::current_traceparent(),
        };
        DeliveryWrite {
            occurrence: self.e.occurrence,
            user_id: self.e.user_id.clone(),
            status: DeliveryStatus {
                at: deferred.unwrap_or(self.now),
                ..self.status(channel, target, DeliveryOutcome::Pending, None)
            },
            inbox: None,
            message: serde_json::to_value(&pending).ok(),
            event: None,
        }
    }
}

#[cfg(test)]
mod destination_tests;

#[cfg(test)]
mod quiet_tests;

#[cfg(test)]
mod withdraw_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_taker_waits_the_consumers_delay_and_takes_nothing_behind_a_full_batch() {
        let delay = BusDelay::default();
        assert_eq!(delay.current(), Some(Duration::ZERO), "no batch yet");
        delay.observe(Duration::from_secs(12), false);
        assert_eq!(delay.current(), Some(Duration::from_secs(12)));
        tokio::time::advance(BUS_DELAY_FRESH).await;
        assert_eq!(
            delay.current(),
            Some(Duration::from_secs(12)),
            "still fresh"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            delay.current(),
            Some(Duration::ZERO),
            "no batch for longer than it stays fresh: no pace to wait for"
        );
        delay.observe(Duration::from_millis(300), true);
        assert_eq!(delay.current(), None, "a backlog: no room for takeovers");
        tokio::time::advance(BUS_DELAY_FRESH + Duration::from_millis(1)).await;
        assert_eq!(delay.current(), Some(Duration::ZERO));
    }

    #[test]
    fn a_channels_lease_is_its_timeout_and_a_margin_within_the_configured_most() {
        let most = NotificationConfig::default().lease;
        // Webhook (10 s) and email (30 s) defaults.
        assert_eq!(
            lease_for(Duration::from_secs(10), most),
            Duration::from_secs(20)
        );
        assert_eq!(
            lease_for(Duration::from_secs(30), most),
            Duration::from_secs(40)
        );
        // A slower adapter than the configured most gets the most.
        assert_eq!(lease_for(Duration::from_secs(600), most), most);
        assert_eq!(lease_for(Duration::MAX, most), most);
    }
}
