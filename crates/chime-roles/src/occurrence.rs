//! An occurrence's life after it fires (issue 16): acknowledge, snooze, and taking back what
//! was sent once it is done.
//!
//! `acknowledge(user, key, channel)` is the one entry point every way of acknowledging calls
//! (the API and the inbox, email links, push buttons, SMS replies). The store acknowledges in
//! one statement on the occurrence row that `fire_due` wrote when it fired, which also clears
//! its pending repeat and escalation step, so a second acknowledgement answers the first's
//! and no step is claimed after it. What was already sent is then withdrawn where a channel
//! can ([`Withdrawal`]: a shown push closed), after the commit and best effort.

use std::sync::Arc;

use chime_channels::{ChannelAdapter, Recipient};
use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
use chime_core::UserId;
use chime_store::{DeliveryKey, OccurrenceRecord, OccurrenceStore, RecipientStore, TaskStore};
use jiff::{SignedDuration, Timestamp};

pub mod tokens;

use crate::clock::now_micros;
use crate::metrics::ChannelLabels;
use crate::Context;

/// The occurrence use cases, over the store's occurrence port.
#[derive(Clone)]
pub struct Occurrences {
    store: Arc<dyn OccurrenceStore>,
    ctx: Context,
    withdrawal: Option<Withdrawal>,
}

impl Occurrences {
    pub fn new(store: Arc<dyn OccurrenceStore>, ctx: Context) -> Self {
        Self {
            store,
            ctx,
            withdrawal: None,
        }
    }

    /// Once acknowledged, what was sent and can be taken back is (a shown push closed).
    pub fn with_withdrawal(mut self, withdrawal: Withdrawal) -> Self {
        self.withdrawal = Some(withdrawal);
        self
    }

    /// Now, on the role's clock (what states are read against).
    pub fn now(&self) -> Timestamp {
        self.ctx.clock.now()
    }

    /// Acknowledges the user's occurrence on `channel`, now. Idempotent: an occurrence
    /// already acknowledged answers its first acknowledgement (and counts nothing). `None`:
    /// no such occurrence, or another user's (the API answers 404 for both). Done is done for
    /// the whole snooze chain: an occurrence that was snoozed and has returned has its return
    /// (and that one's, and so on) acknowledged with it, so an old link cannot leave the
    /// reminder open.
    pub async fn acknowledge(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        channel: Channel,
    ) -> chime_store::Result<Option<OccurrenceRecord>> {
        let now = now_micros(&*self.ctx.clock);
        let record = self
            .store
            .acknowledge_occurrence(user, key, channel, now)
            .await?;
        if let Some(r) = &record {
            // This call's acknowledgement is the one recorded (not an earlier one's).
            if r.acknowledged == Some((now, channel)) {
                let m = &self.ctx.metrics;
                m.acknowledgements
                    .get_or_create(&ChannelLabels {
                        channel: channel.as_str(),
                    })
                    .inc();
                m.acknowledgement_delay
                    .observe(crate::metrics::lateness_seconds(key.due_at, now));
            }
            let mut from = r.clone();
            let mut acked = vec![r.key];
            // A chain is as long as its owner snoozed it; the bound only guards the loop.
            for _ in 0..MAX_CHAIN {
                let (Some(until), false) = (from.snoozed_until, from.returning) else {
                    break;
                };
                let back = OccurrenceKey {
                    task_id: key.task_id,
                    due_at: until,
                };
                match self
                    .store
                    .acknowledge_occurrence(user, &back, channel, now)
                    .await?
                {
                    Some(next) => {
                        acked.push(next.key);
                        from = next;
                    }
                    None => break,
                }
            }
            if let (Some(withdrawal), true) =
                (&self.withdrawal, r.acknowledged == Some((now, channel)))
            {
                // In the background: the answer does not wait for push services.
                let (withdrawal, user) = (withdrawal.clone(), user.clone());
                tokio::spawn(async move { withdrawal.withdraw(&user, &acked).await });
            }
        }
        Ok(record)
    }

    /// Snoozes the user's occurrence until `until`: it returns then, once, as a new
    /// occurrence of its task (fired by the execution role's timer). Snoozing again before it
    /// returns moves the return.
    pub async fn snooze(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        until: Timestamp,
    ) -> Result<OccurrenceRecord, SnoozeError> {
        // To the microsecond, the precision every store keeps: what is answered is what a
        // later read returns (and how this call tells its own snooze from an earlier one).
        let until = Timestamp::from_microsecond(until.as_microsecond()).unwrap_or(until);
        let now = self.ctx.clock.now();
        if until <= now {
            return Err(SnoozeError::NotAhead { until, now });
        }
        if now.duration_until(until) > MAX_SNOOZE {
            return Err(SnoozeError::TooFar { until });
        }
        let record = self
            .store
            .snooze_occurrence(user, key, until)
            .await?
            .ok_or(SnoozeError::NotFound)?;
        if record.acknowledged.is_some() {
            return Err(SnoozeError::Acknowledged);
        }
        if record.snoozed_until != Some(until) || !record.returning {
            let back = OccurrenceKey {
                task_id: key.task_id,
                due_at: record.snoozed_until.unwrap_or(key.due_at),
            };
            return Err(SnoozeError::Returned { back });
        }
        self.ctx.metrics.snoozes.inc();
        Ok(record)
    }

    /// The user's occurrence, in whatever state (`None`: no such occurrence, or another
    /// user's).
    pub async fn get(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
    ) -> chime_store::Result<Option<OccurrenceRecord>> {
        self.store.occurrence(user, key).await
    }

    /// The user's snoozed occurrences still to return, soonest first.
    pub async fn snoozed(
        &self,
        user: &UserId,
        limit: usize,
    ) -> chime_store::Result<Vec<OccurrenceRecord>> {
        self.store.snoozed_occurrences(user, limit).await
    }

    /// The occurrences of the user's task, newest due first, due before `before`.
    pub async fn of_task(
        &self,
        user: &UserId,
        task: chime_core::TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> chime_store::Result<Vec<OccurrenceRecord>> {
        self.store.task_occurrences(user, task, before, limit).await
    }

    /// The user and occurrence the latest SMS to the number with keyed hash `number_hash`
    /// was about (what a reply from that number acts on).
    pub async fn reply_target(
        &self,
        number_hash: &str,
    ) -> chime_store::Result<Option<(UserId, OccurrenceKey)>> {
        self.store.reply_target(number_hash).await
    }

    /// The user's open occurrences, newest first, before `before`, at most `limit`.
    pub async fn open(
        &self,
        user: &UserId,
        before: Option<&OccurrenceKey>,
        limit: usize,
    ) -> chime_store::Result<Vec<OccurrenceRecord>> {
        let now = self.ctx.clock.now();
        self.store.open_occurrences(user, now, before, limit).await
    }
}

/// Takes back what was sent for acknowledged occurrences where a channel can: each push
/// notification still shown is closed (a message with its `Topic`, see
/// [`ChannelAdapter::withdraw`]). Best effort, after the acknowledgement committed: a failure
/// is logged and leaves the notification shown, where its Done button does nothing more.
#[derive(Clone)]
pub struct Withdrawal {
    history: Arc<dyn TaskStore>,
    recipients: Arc<dyn RecipientStore>,
    push: Arc<dyn ChannelAdapter>,
}

impl Withdrawal {
    /// Over the push channel's adapter; `None` when this server has no push channel.
    pub fn of<S: TaskStore + RecipientStore>(
        store: Arc<S>,
        adapters: &[Arc<dyn ChannelAdapter>],
    ) -> Option<Self> {
        let push = adapters.iter().find(|a| a.kind() == Channel::Push)?.clone();
        Some(Self {
            history: store.clone(),
            recipients: store,
            push,
        })
    }

    /// Closes the push notifications of `keys` (occurrences of one task) on every
    /// subscription their push went to.
    pub async fn withdraw(&self, user: &UserId, keys: &[OccurrenceKey]) {
        for key in keys {
            if let Err(error) = self.withdraw_one(user, key).await {
                tracing::warn!(occurrence = %key, %error, "a shown push could not be withdrawn");
            }
        }
    }

    async fn withdraw_one(&self, user: &UserId, key: &OccurrenceKey) -> chime_store::Result<()> {
        // The occurrence's deliveries: its history entry (the newest due at or before it).
        let after = key.due_at + SignedDuration::from_micros(1);
        let entries = self
            .history
            .history(user, key.task_id, Some(after), 1)
            .await?;
        let targets: Vec<String> = entries
            .iter()
            .filter(|e| e.due_at == key.due_at)
            .flat_map(|e| &e.deliveries)
            .filter(|d| {
                d.channel == Channel::Push
                    && matches!(d.outcome, DeliveryOutcome::Sent | DeliveryOutcome::Pending)
            })
            .map(|d| d.target.clone())
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let subscriptions = self.recipients.push_subscriptions(user).await?;
        for s in subscriptions
            .into_iter()
            .filter(|s| targets.contains(&s.id))
        {
            let delivery = DeliveryKey {
                occurrence: *key,
                channel: Channel::Push,
                target: s.id.clone(),
            };
            let recipient = Recipient::Push {
                subscription: chime_channels::PushSubscription {
                    id: s.id,
                    endpoint: s.endpoint,
                    p256dh: s.p256dh,
                    auth: s.auth,
                },
            };
            match self
                .push
                .withdraw(&recipient, &crate::notification::idempotency_key(&delivery))
                .await
            {
                Ok(()) => tracing::debug!(occurrence = %key, "shown push withdrawn"),
                Err(error) => {
                    tracing::warn!(occurrence = %key, error = %error, "a shown push could not be withdrawn");
                }
            }
        }
        Ok(())
    }
}

/// The most returns of one snooze chain that one acknowledgement closes.
const MAX_CHAIN: usize = 1000;

/// The furthest a snooze may reach: a year and a day.
pub const MAX_SNOOZE: SignedDuration = SignedDuration::from_hours(366 * 24);

/// Why a snooze was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnoozeError {
    #[error("no such occurrence")]
    NotFound,
    #[error("a snooze must end after now ({now}); {until} does not")]
    NotAhead { until: Timestamp, now: Timestamp },
    #[error("a snooze may last at most 366 days; {until} is further")]
    TooFar { until: Timestamp },
    #[error("the occurrence is already acknowledged")]
    Acknowledged,
    /// It was snoozed and has returned: its return (`back`) is the one to snooze.
    #[error("the occurrence was snoozed and has returned as {back}; snooze that one")]
    Returned { back: OccurrenceKey },
    #[error(transparent)]
    Store(#[from] chime_store::Error),
}

#[cfg(test)]
mod tests {
    use chime_store::{Fire, ScheduleChange, ScheduleStore};

    use super::*;
    use crate::testing::{ctx_at, definition, store};

    /// Fires one task through the real SQLite store, then acknowledges it twice: the first
    /// acknowledgement is recorded and counted once, the second answers the first's, another
    /// user's finds nothing, and the occurrence leaves the open list.
    #[tokio::test]
    async fn acknowledge_is_recorded_once_counted_once_and_private() {
        let (store, _dir) = store();
        let ctx = ctx_at("2026-01-01T09:00:30Z");
        let alice = UserId::parse("alice").unwrap();
        let view = definition(&store, &ctx_at("2026-01-01T08:00:00Z"))
            .create(
                &alice,
                serde_json::json!({
                    "name": "Call mum",
                    "startDate": "2026-01-01T09:00:00Z",
                    "notify": { "inApp": true },
                }),
            )
            .await
            .expect("create");
        let record = view.record;
        let due: jiff::Timestamp = "2026-01-01T09:00:00Z".parse().unwrap();
        store
            .apply_schedule_changes(&[ScheduleChange::Set {
                task_id: record.id,
                user_id: alice.clone(),
                version: record.version,
                body: record.body.clone(),
                next: Some((due, 1)),
            }])
            .await
            .unwrap();
        let fired = store
            .fire_due(
                ctx.clock.now(),
                10,
                Arc::new(|_| Fire {
                    events: vec![],
                    next: None,
                    nag: None,
                    escalate_at: None,
                }),
            )
            .await
            .unwrap();
        assert_eq!(fired, 1);

        let occurrences = Occurrences::new(store.clone(), ctx.clone());
        let key = OccurrenceKey {
            task_id: record.id,
            due_at: due,
        };
        assert_eq!(occurrences.open(&alice, None, 10).await.unwrap().len(), 1);
        let bob = UserId::parse("bob").unwrap();
        assert_eq!(
            occurrences
                .acknowledge(&bob, &key, Channel::InApp)
                .await
                .unwrap(),
            None
        );

        let first = occurrences
            .acknowledge(&alice, &key, Channel::Sms)
            .await
            .unwrap()
            .expect("alice's occurrence");
        assert_eq!(first.acknowledged, Some((ctx.clock.now(), Channel::Sms)));
        let again = occurrences
            .acknowledge(&alice, &key, Channel::InApp)
            .await
            .unwrap();
        assert_eq!(again, Some(first));
        assert!(occurrences.open(&alice, None, 10).await.unwrap().is_empty());

        let text = ctx.metrics.render();
        assert!(
            text.contains(r#"chime_acknowledgements_total{channel="sms"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"chime_acknowledgements_total{channel="inApp"} 0"#),
            "{text}"
        );
        assert!(
            text.contains("chime_acknowledgement_delay_seconds_count 1"),
            "{text}"
        );
    }

    /// Snoozed for 10 minutes, an occurrence returns through the execution role's timer as an
    /// `execute_task` of a new occurrence due when the snooze ends (the task as it is now,
    /// the same `seq`), once; snoozes that end now or in the past, too far ahead, of an
    /// acknowledged or returned occurrence, or of another user's, are refused.
    #[tokio::test]
    async fn a_snooze_returns_once_through_the_timer_and_bad_ones_are_refused() {
        use chime_core::event::Event;
        use chime_store::OutboxStore;

        use crate::execution::{Execution, ExecutionConfig};

        let (store, _dir) = store();
        let alice = UserId::parse("alice").unwrap();
        let view = definition(&store, &ctx_at("2026-01-01T08:00:00Z"))
            .create(
                &alice,
                serde_json::json!({
                    "name": "Call mum",
                    "startDate": "2026-01-01T09:00:00Z",
                    "notify": { "inApp": true },
                }),
            )
            .await
            .expect("create");
        let record = view.record;
        let due: jiff::Timestamp = "2026-01-01T09:00:00Z".parse().unwrap();
        store
            .apply_schedule_changes(&[ScheduleChange::Set {
                task_id: record.id,
                user_id: alice.clone(),
                version: record.version,
                body: record.body.clone(),
                next: Some((due, 1)),
            }])
            .await
            .unwrap();
        let at_due = Execution::new(
            store.clone(),
            ctx_at("2026-01-01T09:00:00Z"),
            ExecutionConfig::default(),
        );
        assert_eq!(at_due.fire_due().await.unwrap(), 1);
        let key = OccurrenceKey {
            task_id: record.id,
            due_at: due,
        };

        // A clock finer than the store's microseconds: the snooze is kept (and answered) to
        // the microsecond.
        let ctx = ctx_at("2026-01-01T09:01:00.123456789Z");
        let occurrences = Occurrences::new(store.clone(), ctx.clone());
        let now = ctx.clock.now();
        assert!(matches!(
            occurrences.snooze(&alice, &key, now).await,
            Err(SnoozeError::NotAhead { .. })
        ));
        assert!(matches!(
            occurrences
                .snooze(
                    &alice,
                    &key,
                    now + MAX_SNOOZE + SignedDuration::from_secs(1)
                )
                .await,
            Err(SnoozeError::TooFar { .. })
        ));
        let bob = UserId::parse("bob").unwrap();
        let until = now + SignedDuration::from_mins(10);
        assert!(matches!(
            occurrences.snooze(&bob, &key, until).await,
            Err(SnoozeError::NotFound)
        ));
        let snoozed = occurrences.snooze(&alice, &key, until).await.unwrap();
        let until: jiff::Timestamp = "2026-01-01T09:11:00.123456Z".parse().unwrap();
        assert_eq!(snoozed.snoozed_until, Some(until));

        let events_before = store.outbox_batch(100).await.unwrap().len();
        let early = Execution::new(
            store.clone(),
            ctx_at("2026-01-01T09:11:00.123455Z"),
            ExecutionConfig::default(),
        );
        assert_eq!(early.wake_due().await.unwrap(), 0);
        let on_time_ctx = ctx_at("2026-01-01T09:11:00.123456Z");
        let on_time = Execution::new(
            store.clone(),
            on_time_ctx.clone(),
            ExecutionConfig::default(),
        );
        assert_eq!(on_time.wake_due().await.unwrap(), 1);
        assert_eq!(on_time.wake_due().await.unwrap(), 0, "returned twice");
        let rows = store.outbox_batch(100).await.unwrap();
        assert_eq!(rows.len(), events_before + 1);
        let last = rows.last().unwrap();
        let Event::ExecuteTask(e) = serde_json::from_slice::<Event>(&last.payload).unwrap() else {
            panic!("not an execute_task");
        };
        let back = OccurrenceKey {
            task_id: record.id,
            due_at: until,
        };
        assert_eq!((e.occurrence, e.seq, e.late), (back, 1, false));
        assert!(on_time_ctx
            .metrics
            .render()
            .contains("chime_snooze_returns_total 1"));

        // The original has returned: snooze its return instead.
        assert!(matches!(
            occurrences.snooze(&alice, &key, until + SignedDuration::from_mins(5)).await,
            Err(SnoozeError::Returned { back: b }) if b == back
        ));
        // Done on the original (an old link): its return is done with it, counted once.
        let done = occurrences
            .acknowledge(&alice, &key, Channel::Push)
            .await
            .unwrap()
            .unwrap();
        assert!(done.acknowledged.is_some());
        let back_now = occurrences.get(&alice, &back).await.unwrap().unwrap();
        assert_eq!(back_now.acknowledged, done.acknowledged);
        assert!(occurrences.open(&alice, None, 10).await.unwrap().is_empty());
        assert!(ctx
            .metrics
            .render()
            .contains(r#"chime_acknowledgements_total{channel="push"} 1"#));
        assert!(matches!(
            occurrences
                .snooze(&alice, &back, until + SignedDuration::from_mins(5))
                .await,
            Err(SnoozeError::Acknowledged)
        ));
        assert!(ctx.metrics.render().contains("chime_snoozes_total 1"));
    }
}
