//! Acknowledging withdraws what still waits: an SMS held by quiet hours is not sent once its
//! occurrence is acknowledged (it is recorded as skipped, with the reason), and is sent when
//! nobody acknowledged it. On a stopped clock and a real embedded store; the occurrence is
//! fired by the store's own `fire_due`, so its state row is the one production writes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chime_channels::{ChannelAdapter, Reminder, SendError, Sent};
use chime_core::event::{Channel, ExecuteTask, OccurrenceKey};
use chime_core::{TaskSpec, UserId};
use chime_store::{DeliveryStore, Fire, ProfileRecord, ScheduleChange, ScheduleStore};
use jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::occurrence::Occurrences;
use crate::testing::{ctx_at, definition, store};

/// Counts what it is asked to send.
#[derive(Default)]
struct Counting(AtomicU32);

#[async_trait::async_trait]
impl ChannelAdapter for Counting {
    fn kind(&self) -> Channel {
        Channel::Sms
    }

    async fn send(&self, _: &Reminder) -> std::result::Result<Sent, SendError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Sent { provider_id: None })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("instant")
}

/// Fires a task at 23:30 Berlin time, inside quiet hours 22:00-07:00, acknowledges it in app
/// when `acknowledge`, then lets the SMS worker attempt the held SMS at 07:00. Returns how
/// many messages the adapter was asked to send and the SMS's pending deliveries left.
async fn held_sms_at_seven(acknowledge: bool) -> (u32, usize, String) {
    let (store, _dir) = store();
    let due = "2026-12-07T22:30:00Z";
    let ctx = ctx_at(due);
    let alice = UserId::parse("alice").expect("user");
    let profile = Profile::parse(
        json!({"timeZone": "Europe/Berlin",
               "quietHours": [{"days": ["mo"], "from": "22:00", "to": "07:00"}]}),
        &Default::default(),
    )
    .expect("profile");
    store
        .put_profile(&ProfileRecord {
            user_id: alice.clone(),
            body: profile.to_stored(),
            updated_at: ctx.clock.now(),
        })
        .await
        .expect("put_profile");
    let view = definition(&store, &ctx_at("2026-12-07T12:00:00Z"))
        .create(
            &alice,
            json!({"name": "Take the pills", "startDate": due,
                   "notify": {"sms": "+14075551212", "inApp": true}}),
        )
        .await
        .expect("create");
    let record = view.record;
    store
        .apply_schedule_changes(&[ScheduleChange::Set {
            task_id: record.id,
            user_id: alice.clone(),
            version: record.version,
            body: record.body.clone(),
            next: Some((at(due), 1)),
        }])
        .await
        .expect("schedule");
    let no_events = Arc::new(|_: &chime_store::ScheduledTask| Fire {
        events: vec![],
        next: None,
        nag: None,
        escalate_at: None,
    });
    assert_eq!(
        store
            .fire_due(at(due), 10, no_events)
            .await
            .expect("fire_due"),
        1
    );
    let occurrence = OccurrenceKey {
        task_id: record.id,
        due_at: at(due),
    };

    let adapter = Arc::new(Counting::default());
    let notification = |ctx: Context| {
        Notification::new(
            NotificationStores::of(store.clone()),
            vec![adapter.clone() as Arc<dyn ChannelAdapter>],
            InboxFeed::new(8),
            DeliveryWake::new(),
            ctx,
            NotificationConfig::default(),
        )
    };
    let at_due = notification(ctx.clone());
    let task = TaskSpec::from_stored(&record.body).expect("stored task");
    let e = ExecuteTask {
        occurrence,
        user_id: alice.clone(),
        seq: 1,
        fired_at: at(due),
        late: false,
        coalesced: 0,
        skipped: false,
        task_version: record.version,
        task: task.to_stored(),
        traceparent: None,
        escalation: None,
    };
    let writes = at_due
        .deliveries_of(&e, &mut BatchRecipients::default())
        .await
        .expect("deliveries");
    at_due.record(writes, &[], false).await.expect("record");

    if acknowledge {
        let done = Occurrences::new(store.clone(), ctx_at("2026-12-07T22:31:00Z"))
            .acknowledge(&alice, &occurrence, Channel::InApp)
            .await
            .expect("acknowledge");
        assert!(done.is_some(), "alice's occurrence is acknowledged");
    }

    let seven = at("2026-12-08T06:00:00Z");
    let at_seven = notification(ctx_at("2026-12-08T06:00:00Z"));
    let claimed = store
        .claim_deliveries(
            Channel::Sms,
            seven,
            seven + jiff::SignedDuration::from_secs(60),
            10,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "the held SMS is claimable at 07:00");
    for delivery in claimed {
        at_seven
            .attempt(adapter.as_ref(), delivery)
            .await
            .expect("attempt");
    }
    let pending = store
        .pending_deliveries(&alice, record.id)
        .await
        .expect("pending");
    let metrics = at_seven.ctx.metrics.render();
    (adapter.0.load(Ordering::SeqCst), pending.len(), metrics)
}

#[tokio::test]
async fn a_held_sms_is_withdrawn_once_its_occurrence_is_acknowledged() {
    let (sent, pending, metrics) = held_sms_at_seven(true).await;
    assert_eq!(sent, 0, "an acknowledged occurrence's SMS was sent");
    assert_eq!(pending, 0, "the withdrawn SMS is final");
    assert!(
        metrics.contains(r#"chime_deliveries_total{channel="sms",outcome="skipped"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_held_sms_is_sent_when_nobody_acknowledged() {
    let (sent, pending, _) = held_sms_at_seven(false).await;
    assert_eq!(sent, 1);
    assert_eq!(pending, 0);
}
