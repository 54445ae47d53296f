//! Quiet hours in the notification role, on a stopped clock and a real embedded store: an
//! occurrence that fires inside its owner's quiet hours shows in the inbox at once, while its
//! SMS and push wait, claimable only from the end of the quiet period; a webhook does not
//! wait, and without quiet hours nothing does.

use std::sync::Arc;

use chime_channels::ChannelAdapter;
use chime_core::event::{Channel, ExecuteTask, OccurrenceKey};
use chime_core::{TaskId, TaskSpec, UserId};
use chime_store::{ProfileRecord, WebhookEndpoint};
use jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::testing::{ctx_at, store, Unreached};

fn at(s: &str) -> Timestamp {
    s.parse().expect("instant")
}

async fn fire(now: &str, quiet_hours: serde_json::Value) -> Vec<DeliveryWrite> {
    fire_task(now, quiet_hours, false).await
}

async fn fire_task(now: &str, quiet_hours: serde_json::Value, urgent: bool) -> Vec<DeliveryWrite> {
    let (store, _dir) = store();
    let ctx = ctx_at(now);
    let alice = UserId::parse("alice").expect("user");
    let profile = Profile::parse(
        json!({"timeZone": "Europe/Berlin", "quietHours": quiet_hours}),
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
    store
        .put_webhook(&WebhookEndpoint {
            user_id: alice.clone(),
            url: "https://hooks.example/alice".into(),
            secret: "whsec_x".into(),
            created_at: ctx.clock.now(),
        })
        .await
        .expect("put_webhook");
    let task = TaskSpec::parse(&json!({
        "name": "Take the pills", "startDate": now,
        "notify": {"sms": "+14075551212", "inApp": true, "webhook": true},
        "urgent": urgent
    }))
    .expect("task");
    let channels: Vec<Arc<dyn ChannelAdapter>> = vec![
        Arc::new(Unreached(Channel::Sms)),
        Arc::new(Unreached(Channel::Webhook)),
    ];
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
            due_at: ctx.clock.now(),
        },
        user_id: alice,
        seq: 1,
        fired_at: ctx.clock.now(),
        late: false,
        coalesced: 0,
        skipped: false,
        task_version: 1,
        task: task.to_stored(),
        traceparent: None,
        escalation: None,
    };
    let writes = notification
        .deliveries_of(&e, &mut BatchRecipients::default())
        .await
        .expect("deliveries");
    // The store claims the deferred one only from the end of quiet hours.
    notification
        .record(writes.clone(), &[], false)
        .await
        .expect("record");
    let claim = |now: Timestamp| {
        let store = store.clone();
        async move {
            store
                .claim_deliveries(
                    Channel::Sms,
                    now,
                    now + jiff::SignedDuration::from_secs(60),
                    10,
                )
                .await
                .expect("claim")
                .len()
        }
    };
    let sms_at = writes
        .iter()
        .find(|w| w.status.channel == Channel::Sms)
        .expect("sms")
        .status
        .at;
    if sms_at > ctx.clock.now() {
        assert_eq!(
            claim(ctx.clock.now()).await,
            0,
            "claimed during quiet hours"
        );
        assert_eq!(claim(sms_at - jiff::SignedDuration::from_secs(1)).await, 0);
    }
    assert_eq!(claim(sms_at).await, 1, "not claimable when quiet hours end");
    let deferred = ctx
        .metrics
        .deliveries_deferred
        .get_or_create(&ChannelLabels { channel: "sms" })
        .get();
    assert_eq!(deferred, u64::from(sms_at > ctx.clock.now()));
    writes
}

/// Whether the occurrence's inbox item is silent.
fn silent(writes: &[DeliveryWrite]) -> Option<bool> {
    writes
        .iter()
        .find_map(|w| w.inbox.as_ref())
        .map(|i| i.silent)
}

fn by_channel(writes: &[DeliveryWrite], channel: Channel) -> &DeliveryStatus {
    &writes
        .iter()
        .find(|w| w.status.channel == channel)
        .unwrap_or_else(|| panic!("no {channel:?} delivery"))
        .status
}

#[tokio::test]
async fn inside_quiet_hours_the_inbox_is_on_time_and_sms_waits_until_they_end() {
    // 23:30 in Berlin (CET, UTC+1); quiet 22:00-07:00 every night.
    let now = "2026-12-07T22:30:00Z";
    let writes = fire(
        now,
        json!([{"days": ["mo", "tu", "we", "th", "fr", "sa", "su"], "from": "22:00", "to": "07:00"}]),
    )
    .await;
    let in_app = by_channel(&writes, Channel::InApp);
    assert_eq!(in_app.outcome, DeliveryOutcome::Sent);
    assert_eq!(in_app.at, at(now));
    assert_eq!(
        silent(&writes),
        Some(true),
        "the inbox item arrives without a sound"
    );
    let sms = by_channel(&writes, Channel::Sms);
    assert_eq!(sms.outcome, DeliveryOutcome::Pending);
    assert_eq!(sms.at, at("2026-12-08T06:00:00Z"), "07:00 in Berlin");
    // A webhook is a machine's: it does not wait.
    assert_eq!(by_channel(&writes, Channel::Webhook).at, at(now));
}

#[tokio::test]
async fn quiet_hours_that_end_after_a_dst_change_end_on_the_new_wall_clock() {
    // Saturday 2026-03-28 23:30 CET; Berlin springs forward that night: 07:00 is CEST (UTC+2).
    let writes = fire(
        "2026-03-28T22:30:00Z",
        json!([{"days": ["sa"], "from": "22:00", "to": "07:00"}]),
    )
    .await;
    assert_eq!(
        by_channel(&writes, Channel::Sms).at,
        at("2026-03-29T05:00:00Z")
    );
}

#[tokio::test]
async fn outside_quiet_hours_or_without_them_nothing_waits() {
    let now = "2026-12-07T12:00:00Z";
    let writes = fire(
        now,
        json!([{"days": ["mo"], "from": "22:00", "to": "07:00"}]),
    )
    .await;
    assert_eq!(by_channel(&writes, Channel::Sms).at, at(now));
    assert_eq!(silent(&writes), Some(false));
    let writes = fire(now, json!([])).await;
    assert_eq!(by_channel(&writes, Channel::Sms).at, at(now));
    assert_eq!(silent(&writes), Some(false));
}

#[tokio::test]
async fn an_urgent_task_is_not_held_by_quiet_hours() {
    let now = "2026-12-07T22:30:00Z";
    let writes = fire_task(
        now,
        json!([{"days": ["mo"], "from": "22:00", "to": "07:00"}]),
        true,
    )
    .await;
    assert_eq!(by_channel(&writes, Channel::Sms).at, at(now));
    assert_eq!(silent(&writes), Some(false));
}
