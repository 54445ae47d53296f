//! What became of a task's deliveries, as its owner sees them, and trying a dead-lettered one
//! again.
//!
//! History is the definition role's record of each fired occurrence and each delivery's final
//! state, built from events; a delivery still being attempted has no final state yet, so it is
//! shown from this role's own pending rows. A retried dead letter is due at once, by the
//! injected clock, and wakes this process's worker for its channel (workers elsewhere learn of
//! it from the store's [`DeliveryStore::delivery_signal`], or at their next idle check).

use std::sync::Arc;

use chime_core::{TaskId, UserId};
use chime_store::{DeliveryKey, DeliveryStore, HistoryEntry};
use jiff::Timestamp;

use super::error::{NotificationError, Result};
use super::DeliveryWake;
use crate::definition::Definition;
use crate::Context;

#[derive(Clone)]
pub struct TaskDeliveries {
    definition: Definition,
    store: Arc<dyn DeliveryStore>,
    wake: DeliveryWake,
    ctx: Context,
}

impl TaskDeliveries {
    pub fn new(
        definition: Definition,
        store: Arc<dyn DeliveryStore>,
        wake: DeliveryWake,
        ctx: Context,
    ) -> Self {
        Self {
            definition,
            store,
            wake,
            ctx,
        }
    }

    /// `user`'s task's fired occurrences due before `before`, newest first, at most `limit`,
    /// each with its deliveries: final ones as recorded, and those still being attempted as
    /// pending.
    pub async fn history(
        &self,
        user: &UserId,
        task: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let mut entries = self.definition.history(user, task, before, limit).await?;
        let mut pending = self.store.pending_deliveries(user, task).await?;
        for entry in &mut entries {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut pending)
                .into_iter()
                .partition(|(o, _)| o.due_at == entry.due_at);
            pending = rest;
            for (_, status) in mine {
                // A final state recorded already wins over a stale pending row.
                if !entry
                    .deliveries
                    .iter()
                    .any(|d| d.channel == status.channel && d.target == status.target)
                {
                    entry.deliveries.push(status);
                }
            }
        }
        Ok(entries)
    }

    /// Puts `user`'s dead-lettered delivery `key` back to pending, due now, with a new retry
    /// window, and wakes its channel's worker.
    ///
    /// [`NotificationError::Definition`] (not found) when the task is not `user`'s;
    /// [`NotificationError::NotDeadLettered`] when it is, but nothing is dead-lettered at
    /// that occurrence, channel and target.
    pub async fn retry(&self, user: &UserId, key: &DeliveryKey) -> Result<()> {
        let now = self.ctx.clock.now();
        if !self.store.retry_dead_letter(user, key, now).await? {
            self.definition.get(user, key.occurrence.task_id).await?;
            return Err(NotificationError::NotDeadLettered);
        }
        self.wake.wake(key.channel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
    use chime_store::{
        AttemptResult, DeliveryState, DeliveryStatus, DeliveryWrite, FiredOccurrence, TaskStore,
    };
    use serde_json::json;

    use super::*;
    use crate::definition::DefinitionError;
    use crate::testing::{ctx_at, definition, store};

    const NOW: &str = "2030-01-01T00:00:00Z";

    fn status(channel: Channel, outcome: DeliveryOutcome, at: Timestamp) -> DeliveryStatus {
        DeliveryStatus {
            channel,
            target: String::new(),
            outcome,
            attempts: 1,
            at,
            detail: None,
            provider_id: None,
        }
    }

    /// Alice's task, and deliveries of its occurrence `due` (pending, one per channel).
    async fn task_with_pending(
        store: &Arc<chime_store::sqlite::SqliteStore>,
        definition: &Definition,
        due: Timestamp,
        channels: &[Channel],
    ) -> TaskId {
        let alice = UserId::parse("alice").expect("user");
        let task = definition
            .create(
                &alice,
                json!({"name": "Water the plants", "startDate": due.to_string()}),
            )
            .await
            .expect("create")
            .record
            .id;
        let occurrence = OccurrenceKey {
            task_id: task,
            due_at: due,
        };
        let writes: Vec<DeliveryWrite> = channels
            .iter()
            .map(|&channel| DeliveryWrite {
                occurrence,
                user_id: alice.clone(),
                status: status(channel, DeliveryOutcome::Pending, due),
                inbox: None,
                message: Some(json!({})),
                event: None,
            })
            .collect();
        store.record_deliveries(&writes).await.expect("record");
        task
    }

    #[tokio::test]
    async fn a_retried_dead_letter_is_due_at_the_injected_clocks_now_and_wakes_its_channel() {
        let (store, _dir) = store();
        let ctx = ctx_at(NOW);
        let definition = definition(&store, &ctx);
        let due: Timestamp = "2030-01-01T09:00:00Z".parse().expect("instant");
        let task = task_with_pending(&store, &definition, due, &[Channel::Email]).await;
        let claimed = store
            .claim_deliveries(
                Channel::Email,
                due,
                due + jiff::SignedDuration::from_secs(60),
                1,
            )
            .await
            .expect("claim");
        let lease = claimed[0].lease_until;
        let key = claimed[0].key.clone();
        let error = "refused".to_owned();
        store
            .record_attempt(
                &key,
                lease,
                due,
                AttemptResult::DeadLettered { error },
                None,
            )
            .await
            .expect("dead-letter");
        assert_eq!(key.occurrence.task_id, task);

        // Later than the last attempt, and far from the wall clock.
        let later = ctx_at("2030-01-02T00:00:00Z");
        let wake = DeliveryWake::new();
        let deliveries = TaskDeliveries::new(definition, store.clone(), wake.clone(), later);
        let alice = UserId::parse("alice").expect("user");
        deliveries.retry(&alice, &key).await.expect("retry");

        assert_eq!(
            store.next_delivery_at(Channel::Email).await.expect("next"),
            Some("2030-01-02T00:00:00Z".parse().expect("instant"))
        );
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            wake.notified(Channel::Email),
        )
        .await
        .expect("the email worker was woken");
    }

    #[tokio::test]
    async fn retrying_what_is_not_dead_lettered_is_refused_for_the_owner_and_not_found_for_others()
    {
        let (store, _dir) = store();
        let ctx = ctx_at(NOW);
        let definition = definition(&store, &ctx);
        let due: Timestamp = "2030-01-01T09:00:00Z".parse().expect("instant");
        let task = task_with_pending(&store, &definition, due, &[Channel::Email]).await;
        let deliveries =
            TaskDeliveries::new(definition, store.clone(), DeliveryWake::new(), ctx.clone());
        let key = DeliveryKey {
            occurrence: OccurrenceKey {
                task_id: task,
                due_at: due,
            },
            channel: Channel::Email,
            target: String::new(),
        };
        let alice = UserId::parse("alice").expect("user");
        let bob = UserId::parse("bob").expect("user");
        assert!(matches!(
            deliveries.retry(&alice, &key).await,
            Err(NotificationError::NotDeadLettered)
        ));
        assert!(matches!(
            deliveries.retry(&bob, &key).await,
            Err(NotificationError::Definition(DefinitionError::NotFound))
        ));
    }

    #[tokio::test]
    async fn history_shows_deliveries_still_being_attempted_as_pending_unless_one_is_final() {
        let (store, _dir) = store();
        let ctx = ctx_at(NOW);
        let definition = definition(&store, &ctx);
        let due: Timestamp = "2030-01-01T09:00:00Z".parse().expect("instant");
        let channels = [Channel::Email, Channel::Sms];
        let task = task_with_pending(&store, &definition, due, &channels).await;
        let alice = UserId::parse("alice").expect("user");
        let occurrence = OccurrenceKey {
            task_id: task,
            due_at: due,
        };
        store
            .record_fired(&[FiredOccurrence {
                occurrence,
                user_id: alice.clone(),
                seq: 0,
                fired_at: due,
                late: false,
                skipped: false,
                coalesced: 0,
            }])
            .await
            .expect("fired");
        // Email's final state is recorded while its pending row is still there.
        let sent = status(Channel::Email, DeliveryOutcome::Sent, due);
        store
            .record_delivery_states(&[DeliveryState {
                occurrence,
                status: sent.clone(),
            }])
            .await
            .expect("state");

        let deliveries = TaskDeliveries::new(definition, store.clone(), DeliveryWake::new(), ctx);
        let history = deliveries
            .history(&alice, task, None, 10)
            .await
            .expect("history");
        assert_eq!(history.len(), 1);
        let outcomes: Vec<(Channel, DeliveryOutcome)> = history[0]
            .deliveries
            .iter()
            .map(|d| (d.channel, d.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Channel::Email, DeliveryOutcome::Sent),
                (Channel::Sms, DeliveryOutcome::Pending),
            ]
        );
    }
}
