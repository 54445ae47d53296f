//! A task's destinations in the notification role, on a real embedded store: each destination
//! the task names becomes one pending delivery on its service's channel, targeted at its id
//! and carrying its URL for the attempt; one removed since is not delivered to; another
//! user's id is never resolved against this owner's destinations; quiet hours hold them.

use std::sync::Arc;

use chime_channels::{ChannelAdapter, Recipient};
use chime_core::event::{Channel, ExecuteTask, OccurrenceKey};
use chime_core::{TaskId, TaskSpec, UserId};
use chime_store::{DestinationRecord, ProfileRecord};
use serde_json::json;

use super::*;
use crate::testing::{ctx_at, store, Unreached};

fn destination(user: &UserId, id: &str, url: &str, now: Timestamp) -> DestinationRecord {
    DestinationRecord {
        id: id.to_owned(),
        user_id: user.clone(),
        name: id.to_owned(),
        url: url.to_owned(),
        created_at: now,
    }
}

async fn fire(now: &str, quiet_hours: serde_json::Value) -> Vec<DeliveryWrite> {
    let (store, _dir) = store();
    let ctx = ctx_at(now);
    let now = ctx.clock.now();
    let (alice, bob) = (
        UserId::parse("alice").expect("user"),
        UserId::parse("bob").expect("user"),
    );
    for record in [
        destination(&alice, "dst_a1", "ntfy://ntfy.example/alice", now),
        destination(&alice, "dst_a2", "tgram://123456:ABCdef/-100", now),
        destination(&bob, "dst_b1", "gotify://gotify.example/BobToken", now),
    ] {
        store.put_destination(&record).await.expect("put");
    }
    let profile = Profile::parse(
        json!({"timeZone": "Europe/Berlin", "quietHours": quiet_hours}),
        &Default::default(),
    )
    .expect("profile");
    store
        .put_profile(&ProfileRecord {
            user_id: alice.clone(),
            body: profile.to_stored(),
            updated_at: now,
        })
        .await
        .expect("put_profile");
    // dst_a3 was removed (never stored); dst_b1 is bob's.
    let task = TaskSpec::parse(&json!({
        "name": "Stand-up", "startDate": now.to_string(),
        "notify": {"inApp": false, "destinations": ["dst_a1", "dst_a2", "dst_a3", "dst_b1"]}
    }))
    .expect("task");
    let channels: Vec<Arc<dyn ChannelAdapter>> = Channel::DESTINATIONS
        .into_iter()
        .map(|c| Arc::new(Unreached(c)) as Arc<dyn ChannelAdapter>)
        .collect();
    let notification = Notification::new(
        NotificationStores::of(store.clone()),
        channels,
        InboxFeed::new(8),
        DeliveryWake::new(),
        ctx.clone(),
        NotificationConfig::default(),
    );
    let e = ExecuteTask {
        occurrence: OccurrenceKey {
            task_id: TaskId::new(),
            due_at: now,
        },
        user_id: alice,
        seq: 1,
        fired_at: now,
        late: false,
        coalesced: 0,
        skipped: false,
        task_version: 1,
        task: task.to_stored(),
        traceparent: None,
        escalation: None,
    };
    notification
        .deliveries_of(&e, &mut BatchRecipients::default())
        .await
        .expect("deliveries")
}

#[tokio::test]
async fn each_named_destination_of_the_owner_is_one_pending_delivery_on_its_channel() {
    let writes = fire("2026-12-07T10:00:00Z", json!([])).await;
    let made: Vec<(Channel, &str, DeliveryOutcome)> = writes
        .iter()
        .map(|w| (w.status.channel, w.status.target.as_str(), w.status.outcome))
        .collect();
    assert_eq!(
        made,
        [
            (Channel::Ntfy, "dst_a1", DeliveryOutcome::Pending),
            (Channel::Telegram, "dst_a2", DeliveryOutcome::Pending),
        ],
        "a removed destination and another user's are not delivered to"
    );
    let pending: Pending =
        serde_json::from_value(writes[0].message.clone().expect("message")).expect("pending");
    assert_eq!(
        pending.recipient,
        Recipient::Destination {
            id: "dst_a1".into(),
            url: "ntfy://ntfy.example/alice".into()
        }
    );
    assert!(writes.iter().all(|w| w.status.at == writes[0].status.at));
}

#[tokio::test]
async fn quiet_hours_hold_a_destination_like_a_phone() {
    let writes = fire(
        "2026-12-07T22:30:00Z",
        json!([{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "22:00", "to": "07:00"}]),
    )
    .await;
    let held_until: jiff::Timestamp = "2026-12-08T06:00:00Z".parse().expect("instant");
    assert_eq!(writes.len(), 2);
    assert!(
        writes.iter().all(|w| w.status.at == held_until),
        "{:?}",
        writes.iter().map(|w| w.status.at).collect::<Vec<_>>()
    );
}
