//! The live inbox feed of a process that serves the task API without running the
//! notification role (the distributed shape: `definition` and `notification` in different
//! processes).
//!
//! Co-located, the notification role sends each new in-app item on the process's
//! [`InboxFeed`] as it commits it. Apart, nothing in this process writes inbox items, so
//! this worker follows `notification-sent` from its end, as a group of its own (every
//! instance must see every event, not a share of them), and for each in-app item sent reads
//! the item from the store (the event carries ids, not the task's name) and sends it on the
//! local feed. Live streams are best effort by design: a client that connects, reconnects or
//! lags reloads the inbox, which the store holds whole, so starting at the end and never
//! committing loses nothing that matters.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chime_bus::Bus;
use chime_core::event::{Channel, DeliveryOutcome, Event, Topic};
use chime_core::{NotificationId, UserId};
use chime_store::{DeliveryStore, InboxItem};

use crate::notification::InboxFeed;
use crate::{Context, Result};

/// Most records read per poll.
const BATCH: usize = 512;
/// Inbox items read per page while looking for the ones just sent (they are the newest, or
/// nearly: a busy user's inbox may have grown since).
const PAGE: usize = 100;
/// Pages read at most: an item further back than this is no longer news.
const PAGES: usize = 10;
/// Items remembered as streamed: the bus is at-least-once (a relay that dies before its
/// acknowledgement, or several relays draining one shared outbox, publish an event again),
/// and a stream must not show one notification twice.
const REMEMBERED: usize = 4096;

/// Follows `notification-sent` as `group` (unique to this process) until shutdown.
pub async fn run(
    bus: Arc<dyn Bus>,
    store: Arc<dyn DeliveryStore>,
    feed: InboxFeed,
    group: String,
    ctx: Context,
) -> Result<()> {
    let result = follow(bus, store, feed, &group, &ctx).await;
    ctx.metrics.count_error("inbox-feed", result)
}

async fn follow(
    bus: Arc<dyn Bus>,
    store: Arc<dyn DeliveryStore>,
    feed: InboxFeed,
    group: &str,
    ctx: &Context,
) -> Result<()> {
    let mut subscription = bus
        .subscribe_live(group, &[Topic::NotificationSent.name()])
        .await?;
    let mut streamed = HashSet::new();
    let mut order = VecDeque::new();
    loop {
        let records = tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            records = subscription.poll(BATCH) => records?,
        };
        // No one listening: nothing to look up.
        if !feed.has_subscribers() {
            continue;
        }
        // The in-app items this batch names, per user, not streamed before.
        let mut wanted: HashMap<UserId, BTreeSet<NotificationId>> = HashMap::new();
        for record in records {
            let Ok(Event::NotificationSent(sent)) = Event::from_bytes(&record.payload) else {
                continue;
            };
            let (Channel::InApp, DeliveryOutcome::Sent, Some(id)) =
                (sent.channel, sent.outcome, sent.notification_id)
            else {
                continue;
            };
            if !feed.wants(&sent.user_id) || !streamed.insert(id) {
                continue;
            }
            order.push_back(id);
            if order.len() > REMEMBERED {
                if let Some(oldest) = order.pop_front() {
                    streamed.remove(&oldest);
                }
            }
            wanted.entry(sent.user_id).or_default().insert(id);
        }
        for (user, ids) in wanted {
            for item in find(&*store, &user, ids).await? {
                feed.send(&item);
            }
        }
    }
}

/// `ids` of `user`'s inbox, oldest first, read newest first (items are ordered by id) and
/// stopping once past the oldest wanted.
async fn find(
    store: &dyn DeliveryStore,
    user: &UserId,
    mut ids: BTreeSet<NotificationId>,
) -> Result<Vec<InboxItem>> {
    let mut found = Vec::new();
    let mut before = None;
    for _ in 0..PAGES {
        let Some(&oldest) = ids.first() else { break };
        let page = store.inbox(user, before, PAGE).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        let past = last.id < oldest;
        found.extend(page.into_iter().filter(|item| ids.remove(&item.id)));
        if past || ids.is_empty() {
            break;
        }
    }
    if !ids.is_empty() {
        tracing::debug!(
            missing = ids.len(),
            "in-app items sent are no longer among the newest; not streamed"
        );
    }
    found.reverse();
    Ok(found)
}
