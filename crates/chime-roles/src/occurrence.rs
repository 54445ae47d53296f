//! An occurrence's life after it fires (issue 16): the acknowledge use case.
//!
//! `acknowledge(user, key, channel)` is the one entry point every way of acknowledging calls
//! (the API today; email links, SMS replies and push actions later). The store acknowledges
//! in one statement on the occurrence row that `fire_due` wrote when it fired, so a second
//! acknowledgement answers the first's and pending steps can serialise on the same row.

use std::sync::Arc;

use chime_core::event::{Channel, OccurrenceKey};
use chime_core::UserId;
use chime_store::{OccurrenceRecord, OccurrenceStore};

use crate::clock::now_micros;
use crate::metrics::ChannelLabels;
use crate::Context;

/// The occurrence use cases, over the store's occurrence port.
#[derive(Clone)]
pub struct Occurrences {
    store: Arc<dyn OccurrenceStore>,
    ctx: Context,
}

impl Occurrences {
    pub fn new(store: Arc<dyn OccurrenceStore>, ctx: Context) -> Self {
        Self { store, ctx }
    }

    /// Acknowledges the user's occurrence on `channel`, now. Idempotent: an occurrence
    /// already acknowledged answers its first acknowledgement (and counts nothing). `None`:
    /// no such occurrence, or another user's (the API answers 404 for both).
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
        }
        Ok(record)
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
}
