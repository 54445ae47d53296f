//! The notification role's delivery workers: one per configured channel claims due pending
//! deliveries under a lease, attempts them concurrently (bounded per channel, every call under
//! a timeout) and records each attempt's result: sent, retried with backoff, or
//! dead-lettered. See the role's module doc for the guarantees.

use std::sync::Arc;
use std::time::Duration;

use chime_channels::{ChannelAdapter, Reminder, ReminderAction, SendError, Sent};
use chime_core::event::{Channel, DeliveryOutcome, Event, NotificationSent};
use chime_core::task::StoredTaskError;
use chime_core::TaskSpec;
use chime_store::{AttemptResult, ClaimedDelivery, DeliveryKey, OutboxEvent};
use jiff::SignedDuration;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::{lease_for, notified, Notification, Pending, LEASE_MARGIN};
use crate::metrics::lateness_seconds;
use crate::occurrence::tokens::{Action, TOKEN_LIFETIME};
use crate::Result;

impl Notification {
    /// How long a delivery claimed for `adapter` is reserved.
    pub(super) fn lease(&self, adapter: &dyn ChannelAdapter) -> Duration {
        lease_for(adapter.timeout(), self.config.lease)
    }

    /// The delivery worker of one channel: attempts due deliveries, at most
    /// `concurrency` at once, until shutdown.
    pub async fn run_worker(&self, channel: Channel) -> Result<()> {
        let result = self.deliver(channel).await;
        self.ctx.metrics.count_error("notification", result)
    }

    async fn deliver(&self, channel: Channel) -> Result<()> {
        let Some(adapter) = self.channels.get(&channel).cloned() else {
            return Ok(());
        };
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let shutdown = self.ctx.shutdown.clone();
        // Retries requested in another process (a shared store says so).
        let elsewhere = self.deliveries.delivery_signal(channel);
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return Ok(()),
                },
            };
            let mut held = vec![first];
            while let Ok(p) = permits.clone().try_acquire_owned() {
                held.push(p);
            }
            let now = self.ctx.clock.now();
            let lease_until = now
                + SignedDuration::try_from(self.lease(adapter.as_ref()))
                    .unwrap_or(SignedDuration::from_secs(120));
            let claimed = self
                .deliveries
                .claim_deliveries(channel, now, lease_until, held.len())
                .await?;
            if claimed.is_empty() {
                drop(held);
                let sleep = match self.deliveries.next_delivery_at(channel).await? {
                    Some(at) => Duration::try_from(now.duration_until(at)).unwrap_or_default(),
                    None => self.config.idle,
                }
                .min(self.config.idle);
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = self.wake.notified(channel) => {}
                    () = notified(elsewhere.as_deref()) => {}
                    () = tokio::time::sleep(sleep) => {}
                }
                continue;
            }
            for delivery in claimed {
                let Some(permit) = held.pop() else { break };
                let (this, adapter) = (self.clone(), adapter.clone());
                let occurrence = delivery.key.occurrence;
                let span = tracing::info_span!(
                    parent: None,
                    "attempt",
                    task_id = %occurrence.task_id,
                    %occurrence,
                    channel = channel.as_str(),
                    attempt = delivery.attempts + 1,
                );
                crate::trace::set_parent(
                    &span,
                    delivery.message.get("traceparent").and_then(|v| v.as_str()),
                );
                let attempt = async move {
                    if let Err(error) = this.attempt(adapter.as_ref(), delivery).await {
                        // The lease expires and the delivery is attempted again.
                        this.ctx.metrics.worker_error("notification", &error);
                        tracing::error!(task_id = %occurrence.task_id, %occurrence, channel = channel.as_str(), %error, "recording a delivery attempt failed");
                    }
                    drop(permit);
                };
                tokio::spawn(attempt.instrument(span));
            }
        }
    }

    /// One attempt of one claimed delivery, and its recorded result (in the caller's
    /// `attempt` span).
    pub(super) async fn attempt(
        &self,
        adapter: &dyn ChannelAdapter,
        delivery: ClaimedDelivery,
    ) -> Result<()> {
        if let Some(reason) = self.withdrawn(&delivery).await? {
            return self.withdraw(&delivery, reason).await;
        }
        let attempts = delivery.attempts + 1;
        let key = &delivery.key;
        let outcome = match serde_json::from_value::<Pending>(delivery.message.clone())
            .map_err(|e| StoredTaskError::Corrupt(e.to_string()))
            .and_then(|p| TaskSpec::from_stored(&p.task).map(|t| (p, t)))
        {
            // Left for a worker of the newer release that wrote it.
            Err(error @ StoredTaskError::Newer { .. }) => {
                Err(SendError::transient(error.to_string()))
            }
            Err(error) => Err(SendError::permanent(format!(
                "the delivery record is corrupt: {error}"
            ))),
            Ok((pending, task)) => {
                let sms_number = match &pending.recipient {
                    chime_channels::Recipient::Sms { number } => Some(number.clone()),
                    _ => None,
                };
                let message = Reminder {
                    idempotency_key: idempotency_key(key),
                    occurrence: key.occurrence,
                    user_id: delivery.user_id.clone(),
                    task,
                    late: pending.late,
                    attempt: attempts,
                    recipient: pending.recipient,
                    actions: self.actions(key, &delivery.user_id),
                };
                // Adapters time their own calls out; this bounds one that does not.
                let limit = self
                    .lease(adapter)
                    .saturating_sub(LEASE_MARGIN / 2)
                    .max(Duration::from_secs(1));
                let sent = match tokio::time::timeout(limit, adapter.send(&message)).await {
                    Ok(result) => result,
                    Err(_) => Err(SendError::transient(format!(
                        "no answer within {} s",
                        limit.as_secs()
                    ))),
                };
                match &sent {
                    Err(error) => self.count_provider_error(key.channel, error),
                    // A reply from that number acts on this occurrence (the latest SMS wins).
                    // Best effort: the message is out, and failing here would send it again.
                    Ok(_) => {
                        if let (Some(number), Some(keys)) = (sms_number, &self.action_keys) {
                            let remembered = self
                                .occurrences
                                .put_reply_target(
                                    &keys.sms_number(&number),
                                    &delivery.user_id,
                                    &key.occurrence,
                                    self.ctx.clock.now(),
                                )
                                .await;
                            if let Err(error) = remembered {
                                tracing::warn!(%error, "a reply to this SMS will not find it");
                            }
                        }
                    }
                }
                sent
            }
        };
        let now = self.ctx.clock.now();
        // Failure reasons are kept on the delivery (history), not logged: a provider's answer
        // may quote the recipient's address, number or endpoint.
        let (result, final_state) = match outcome {
            Ok(Sent { provider_id }) => {
                self.ctx
                    .metrics
                    .delivery_lateness
                    .observe(lateness_seconds(key.occurrence.due_at, now));
                tracing::info!(attempts, "delivered");
                (
                    AttemptResult::Sent {
                        provider_id: provider_id.clone(),
                    },
                    Some((DeliveryOutcome::Sent, None, provider_id)),
                )
            }
            Err(SendError::Transient {
                reason,
                retry_after,
            }) => {
                let delay = self
                    .config
                    .retry
                    .delay(attempts, retry_after, &mut rand::thread_rng());
                let next = now + SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
                let deadline = delivery.first_attempt_at
                    + SignedDuration::try_from(self.config.retry.window)
                        .unwrap_or(SignedDuration::MAX);
                if next > deadline {
                    let error = format!("gave up after {attempts} attempts: {reason}");
                    tracing::warn!(attempts, "dead-lettered after its retry window");
                    (
                        AttemptResult::DeadLettered {
                            error: error.clone(),
                        },
                        Some((DeliveryOutcome::DeadLettered, Some(error), None)),
                    )
                } else {
                    tracing::info!(
                        attempts,
                        retry_in_ms = delay.as_millis() as u64,
                        "attempt failed; will retry"
                    );
                    self.count(key.channel, "retried");
                    (
                        AttemptResult::Retry {
                            next_attempt_at: next,
                            error: reason,
                        },
                        None,
                    )
                }
            }
            Err(SendError::Permanent { reason }) => {
                tracing::warn!(attempts, "dead-lettered: permanent failure");
                (
                    AttemptResult::DeadLettered {
                        error: reason.clone(),
                    },
                    Some((DeliveryOutcome::DeadLettered, Some(reason), None)),
                )
            }
            Err(SendError::Gone { reason }) => {
                if key.channel == Channel::Push {
                    self.recipients
                        .remove_push_subscription(None, &key.target)
                        .await?;
                }
                tracing::warn!(attempts, "dead-lettered: the recipient is gone");
                let error = format!("{reason}; the subscription was removed");
                (
                    AttemptResult::DeadLettered {
                        error: error.clone(),
                    },
                    Some((DeliveryOutcome::DeadLettered, Some(error), None)),
                )
            }
        };
        let event = final_state.as_ref().map(|(outcome, detail, provider_id)| {
            OutboxEvent::from(&Event::NotificationSent(NotificationSent {
                occurrence: key.occurrence,
                user_id: delivery.user_id.clone(),
                channel: key.channel,
                outcome: *outcome,
                attempts,
                at: now,
                detail: detail.clone(),
                notification_id: None,
                target: key.target.clone(),
                provider_id: provider_id.clone(),
            }))
        });
        self.deliveries
            .record_attempt(key, delivery.lease_until, now, result, event)
            .await?;
        if let Some((outcome, _, _)) = final_state {
            self.count(key.channel, outcome.as_str());
        }
        Ok(())
    }
}

impl Notification {
    /// The actions a message on `key`'s channel offers, each with its signed token: email
    /// links (Done, Snooze 1 hour) and push buttons (Done, Snooze 10 minutes).
    fn actions(&self, key: &DeliveryKey, user: &chime_core::UserId) -> Vec<ReminderAction> {
        let Some(keys) = &self.action_keys else {
            return Vec::new();
        };
        let snooze = match key.channel {
            Channel::Email => 60,
            // Buttons on a phone's notification or a chat message.
            Channel::Push | Channel::Ntfy | Channel::Telegram => 10,
            _ => return Vec::new(),
        };
        let expires = self.ctx.clock.now() + TOKEN_LIFETIME;
        [
            ("done", Action::Done),
            ("snooze", Action::Snooze { minutes: snooze }),
        ]
        .into_iter()
        .map(|(kind, action)| ReminderAction {
            kind,
            label: action.label(),
            token: keys.mint(user, &key.occurrence, action, key.channel, expires),
            callback: (key.channel == Channel::Telegram)
                .then(|| keys.mint_short(user, &key.occurrence, action, key.channel, expires)),
        })
        .collect()
    }

    /// Why this delivery is not to be attempted at all: its occurrence was acknowledged. Only
    /// a delivery that waited (a retry, or one held by quiet hours) is looked at; a first
    /// attempt follows the firing by milliseconds, so an acknowledgement can hardly precede
    /// it, and the hot path stays one claim and one record.
    async fn withdrawn(&self, delivery: &ClaimedDelivery) -> Result<Option<String>> {
        let waited = delivery.attempts > 0
            || delivery
                .message
                .get("held")
                .and_then(serde_json::Value::as_bool)
                == Some(true);
        if !waited {
            return Ok(None);
        }
        let occurrence = self
            .occurrences
            .occurrence(&delivery.user_id, &delivery.key.occurrence)
            .await?;
        Ok(occurrence
            .and_then(|o| o.acknowledged)
            .map(|(_, channel)| format!("acknowledged on {}", channel.as_str())))
    }

    /// Records `delivery` as skipped (withdrawn, no attempt made), with its event for the
    /// task's history.
    async fn withdraw(&self, delivery: &ClaimedDelivery, reason: String) -> Result<()> {
        let key = &delivery.key;
        let now = self.ctx.clock.now();
        tracing::info!("withdrawn: its occurrence was acknowledged");
        let event = OutboxEvent::from(&Event::NotificationSent(NotificationSent {
            occurrence: key.occurrence,
            user_id: delivery.user_id.clone(),
            channel: key.channel,
            outcome: DeliveryOutcome::Skipped,
            attempts: delivery.attempts,
            at: now,
            detail: Some(reason.clone()),
            notification_id: None,
            target: key.target.clone(),
            provider_id: None,
        }));
        self.deliveries
            .record_attempt(
                key,
                delivery.lease_until,
                now,
                AttemptResult::Withdrawn { reason },
                Some(event),
            )
            .await?;
        self.count(key.channel, DeliveryOutcome::Skipped.as_str());
        Ok(())
    }
}

/// `tsk_…@<due>/<channel>[/<target>]`: the same for every attempt of one delivery.
pub fn idempotency_key(key: &DeliveryKey) -> String {
    if key.target.is_empty() {
        format!("{}/{}", key.occurrence, key.channel.as_str())
    } else {
        format!("{}/{}/{}", key.occurrence, key.channel.as_str(), key.target)
    }
}
