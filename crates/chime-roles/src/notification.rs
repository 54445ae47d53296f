//! The notification role: delivers each `execute_task` occurrence on each channel its task
//! asks for, exactly once per (occurrence, channel), and publishes `notification_sent`.
//!
//! The in-app channel is part of Chime: its inbox item, its delivery row and its event are
//! written in one transaction, so a replayed `execute_task` finds the delivery recorded and
//! writes nothing again. Other channels go through a [`Notifier`] (the channel port); a channel
//! a task asks for but this server has no notifier for is recorded as skipped, with the reason,
//! never silently dropped. New inbox items are also announced on the in-process [`InboxFeed`]
//! for live (SSE) clients.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chime_bus::Bus;
use chime_core::event::{
    Channel, DeliveryOutcome, Event, ExecuteTask, NotificationSent, OccurrenceKey, Topic,
};
use chime_core::{NotificationId, TaskSpec, UserId};
use chime_store::{DeliveryStatus, DeliveryStore, DeliveryWrite, InboxItem, OutboxEvent};
use jiff::Timestamp;
use tokio::sync::broadcast;

use crate::metrics::{lateness_seconds, DeliveryLabels};
use crate::{consumer, Context, Result};

/// One occurrence to deliver on one external channel.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub occurrence: OccurrenceKey,
    pub user_id: UserId,
    pub task: TaskSpec,
    pub late: bool,
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// The channel port: one adapter per external channel (email, SMS, push).
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    async fn send(&self, outgoing: &Outgoing) -> std::result::Result<(), SendError>;
}

/// New in-app notifications, as they are committed, for live subscribers in this process.
pub type InboxFeed = broadcast::Sender<InboxItem>;

#[derive(Clone)]
pub struct Notification {
    store: Arc<dyn DeliveryStore>,
    notifiers: Arc<HashMap<Channel, Arc<dyn Notifier>>>,
    feed: InboxFeed,
    ctx: Context,
}

impl Notification {
    pub fn new(
        store: Arc<dyn DeliveryStore>,
        notifiers: HashMap<Channel, Arc<dyn Notifier>>,
        feed: InboxFeed,
        ctx: Context,
    ) -> Self {
        Self {
            store,
            notifiers: Arc::new(notifiers),
            feed,
            ctx,
        }
    }

    pub async fn run(&self, bus: Arc<dyn Bus>) -> Result<()> {
        consumer::run(
            bus,
            "notification",
            &[Topic::ExecuteTask],
            self.ctx.shutdown.clone(),
            |events| async move {
                let mut writes = Vec::new();
                for event in events {
                    if let Event::ExecuteTask(e) = event {
                        writes.extend(self.deliveries(&e).await);
                    }
                }
                self.record(writes).await
            },
        )
        .await
    }

    /// The deliveries one occurrence makes, one per channel it asks for.
    async fn deliveries(&self, e: &ExecuteTask) -> Vec<DeliveryWrite> {
        if e.skipped {
            return Vec::new();
        }
        let task = match TaskSpec::parse(&e.task) {
            Ok(task) => task,
            Err(error) => {
                tracing::error!(occurrence = %e.occurrence, %error, "execute_task body does not parse");
                return Vec::new();
            }
        };
        let mut channels = Vec::new();
        if task.notify.in_app {
            channels.push(Channel::InApp);
        }
        if task.notify.email.is_some() {
            channels.push(Channel::Email);
        }
        if task.notify.sms.is_some() {
            channels.push(Channel::Sms);
        }
        if task.notify.push {
            channels.push(Channel::Push);
        }
        let outgoing = Outgoing {
            occurrence: e.occurrence,
            user_id: e.user_id.clone(),
            task,
            late: e.late,
        };
        let mut writes = Vec::with_capacity(channels.len());
        for channel in channels {
            let now = self.ctx.clock.now();
            let (outcome, detail, inbox) = match channel {
                Channel::InApp => {
                    let item = InboxItem {
                        id: NotificationId::new(),
                        user_id: e.user_id.clone(),
                        task_id: e.occurrence.task_id,
                        task_name: outgoing.task.name.as_str().to_owned(),
                        due_at: e.occurrence.due_at,
                        created_at: now,
                        read: false,
                    };
                    (DeliveryOutcome::Sent, None, Some(item))
                }
                external => match self.notifiers.get(&external) {
                    None => (
                        DeliveryOutcome::Skipped,
                        Some(format!(
                            "channel {} is not configured on this server",
                            external.as_str()
                        )),
                        None,
                    ),
                    Some(notifier) => match notifier.send(&outgoing).await {
                        Ok(()) => (DeliveryOutcome::Sent, None, None),
                        Err(error) => (DeliveryOutcome::DeadLettered, Some(error.0), None),
                    },
                },
            };
            writes.push(delivery(e, channel, outcome, detail, inbox, now));
        }
        writes
    }

    async fn record(&self, writes: Vec<DeliveryWrite>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let new = self.store.record_deliveries(&writes).await?;
        let metrics = &self.ctx.metrics;
        for i in new {
            let w = &writes[i];
            metrics
                .deliveries
                .get_or_create(&DeliveryLabels {
                    channel: w.status.channel.as_str(),
                    outcome: w.status.outcome.as_str(),
                })
                .inc();
            if w.status.outcome == DeliveryOutcome::Sent {
                metrics
                    .delivery_lateness
                    .observe(lateness_seconds(w.occurrence.due_at, w.status.at));
            }
            if let Some(item) = &w.inbox {
                // No live subscriber is not an error: the inbox has it.
                let _ = self.feed.send(item.clone());
            }
            tracing::debug!(occurrence = %w.occurrence, channel = w.status.channel.as_str(), outcome = w.status.outcome.as_str(), "delivered");
        }
        Ok(())
    }
}

fn delivery(
    e: &ExecuteTask,
    channel: Channel,
    outcome: DeliveryOutcome,
    detail: Option<String>,
    inbox: Option<InboxItem>,
    at: Timestamp,
) -> DeliveryWrite {
    let event = Event::NotificationSent(NotificationSent {
        occurrence: e.occurrence,
        user_id: e.user_id.clone(),
        channel,
        outcome,
        attempts: u32::from(outcome != DeliveryOutcome::Skipped),
        at,
        detail: detail.clone(),
        notification_id: inbox.as_ref().map(|i| i.id),
    });
    DeliveryWrite {
        occurrence: e.occurrence,
        user_id: e.user_id.clone(),
        status: DeliveryStatus {
            channel,
            outcome,
            attempts: u32::from(outcome != DeliveryOutcome::Skipped),
            at,
            detail,
        },
        inbox,
        event: OutboxEvent::from(&event),
    }
}
