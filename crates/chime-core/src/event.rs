//! The design's events, by the design's names, and the topics that carry them.
//!
//! Every event is keyed by task id, so one task's events stay in order on a keyed bus. Events
//! carry the task as the API's JSON shape, so a consumer parses it with the same code as the
//! API and needs no call back to the definition role.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::id::{NotificationId, TaskId, UserId};

/// The design's topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    TaskEvents,
    ScheduleTicks,
    ExecuteTask,
    NotificationSent,
}

impl Topic {
    pub const ALL: [Topic; 4] = [
        Topic::TaskEvents,
        Topic::ScheduleTicks,
        Topic::ExecuteTask,
        Topic::NotificationSent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topic::TaskEvents => "task-events",
            Topic::ScheduleTicks => "schedule-ticks",
            Topic::ExecuteTask => "execute-task",
            Topic::NotificationSent => "notification-sent",
        }
    }

    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One occurrence of one task: the identity that makes every delivery happen once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OccurrenceKey {
    pub task_id: TaskId,
    pub due_at: Timestamp,
}

impl fmt::Display for OccurrenceKey {
    /// `tsk_…@2024-08-12T11:24:53Z`: also the idempotency key given to providers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.task_id, self.due_at)
    }
}

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Channel {
    InApp,
    Email,
    Sms,
    Push,
    Webhook,
    /// The chat and push services self-hosters use: each a destination of the owner's
    /// (a named Apprise-style URL) that the task names.
    Ntfy,
    Gotify,
    Telegram,
    Slack,
    Discord,
    Matrix,
}

impl Channel {
    pub const ALL: [Channel; 11] = [
        Channel::InApp,
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::Webhook,
        Channel::Ntfy,
        Channel::Gotify,
        Channel::Telegram,
        Channel::Slack,
        Channel::Discord,
        Channel::Matrix,
    ];

    /// The channels of destinations: a task reaches them through `notify.destinations`.
    pub const DESTINATIONS: [Channel; 6] = [
        Channel::Ntfy,
        Channel::Gotify,
        Channel::Telegram,
        Channel::Slack,
        Channel::Discord,
        Channel::Matrix,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::InApp => "inApp",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Webhook => "webhook",
            Channel::Ntfy => "ntfy",
            Channel::Gotify => "gotify",
            Channel::Telegram => "telegram",
            Channel::Slack => "slack",
            Channel::Discord => "discord",
            Channel::Matrix => "matrix",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryOutcome {
    /// Not final yet: waiting for its first or next attempt. Shown in history, never carried
    /// by `notification_sent`, which reports final states only.
    Pending,
    /// Handed to the provider (or written to the inbox).
    Sent,
    /// Not attempted, for a recorded reason (channel not configured, occurrence skipped).
    Skipped,
    /// Failed for good after its retries.
    DeadLettered,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 4] = [
        DeliveryOutcome::Pending,
        DeliveryOutcome::Sent,
        DeliveryOutcome::Skipped,
        DeliveryOutcome::DeadLettered,
    ];

    /// The outcome whose [`as_str`](Self::as_str) is `s`.
    pub fn parse(s: &str) -> Option<DeliveryOutcome> {
        DeliveryOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Pending => "pending",
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::Skipped => "skipped",
            DeliveryOutcome::DeadLettered => "deadLettered",
        }
    }
}

/// `task_created` / `task_updated`: the task as it now is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskChanged {
    pub task_id: TaskId,
    pub user_id: UserId,
    /// Increases with every change, so a consumer ignores a replayed older version.
    pub version: u64,
    /// The task's fields in the API shape (`TaskSpec::to_json`).
    pub task: serde_json::Value,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDeleted {
    pub task_id: TaskId,
    pub user_id: UserId,
    pub version: u64,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleTick {
    pub at: Timestamp,
}

/// `execute_task`: an occurrence fell due and was claimed by exactly one execution instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteTask {
    pub occurrence: OccurrenceKey,
    pub user_id: UserId,
    /// 1-based position of this occurrence in the task's sequence.
    pub seq: u32,
    pub fired_at: Timestamp,
    /// Fired later than the configured lateness threshold after its due instant.
    pub late: bool,
    /// Further missed occurrences this one stands for (missed policy "fire once late").
    #[serde(default)]
    pub coalesced: u32,
    /// Recorded but not delivered: later than the task's missed-occurrence limit.
    #[serde(default)]
    pub skipped: bool,
    pub task_version: u64,
    /// The task's fields in the API shape, as of `task_version`.
    pub task: serde_json::Value,
    /// The W3C trace context (`traceparent`) of the claim that fired this occurrence, so that
    /// its deliveries join the claim's trace. It travels in the event, not in a bus header,
    /// because the event waits in the store's outbox before the relay publishes it; absent
    /// when tracing is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// An escalation step of an occurrence that fired earlier and is still not acknowledged:
    /// delivered on this channel only (absent: the occurrence firing, on every channel the
    /// task does not hold back for a step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Channel>,
}

impl ExecuteTask {
    /// This event's handoff id: what the store keeps it under until a notification instance
    /// has recorded its deliveries (`OutboxEvent::handoff`). One per occurrence firing and per
    /// escalation step's channel, the same unit a delivery is unique in.
    pub fn handoff(&self) -> String {
        match self.escalation {
            Some(step) => format!("{}/{}", self.occurrence, step.as_str()),
            None => self.occurrence.to_string(),
        }
    }
}

/// `notification_sent`: the final state of one delivery of one occurrence on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSent {
    pub occurrence: OccurrenceKey,
    pub user_id: UserId,
    pub channel: Channel,
    pub outcome: DeliveryOutcome,
    pub attempts: u32,
    pub at: Timestamp,
    /// Why it was skipped or dead-lettered; never personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<NotificationId>,
    /// Which recipient of the channel (a push subscription id); empty when the channel has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// The provider's id for the message, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

/// Every event, tagged by the design's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    TaskCreated(TaskChanged),
    TaskUpdated(TaskChanged),
    TaskDeleted(TaskDeleted),
    ScheduleTick(ScheduleTick),
    ExecuteTask(ExecuteTask),
    NotificationSent(NotificationSent),
}

impl Event {
    pub fn topic(&self) -> Topic {
        match self {
            Event::TaskCreated(_) | Event::TaskUpdated(_) | Event::TaskDeleted(_) => {
                Topic::TaskEvents
            }
            Event::ScheduleTick(_) => Topic::ScheduleTicks,
            Event::ExecuteTask(_) => Topic::ExecuteTask,
            Event::NotificationSent(_) => Topic::NotificationSent,
        }
    }

    /// The partitioning key: the task id (ticks have none and share one key).
    pub fn key(&self) -> String {
        match self {
            Event::TaskCreated(e) | Event::TaskUpdated(e) => e.task_id.to_string(),
            Event::TaskDeleted(e) => e.task_id.to_string(),
            Event::ScheduleTick(_) => "tick".to_owned(),
            Event::ExecuteTask(e) => e.occurrence.task_id.to_string(),
            Event::NotificationSent(e) => e.occurrence.task_id.to_string(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Event::TaskCreated(_) => "task_created",
            Event::TaskUpdated(_) => "task_updated",
            Event::TaskDeleted(_) => "task_deleted",
            Event::ScheduleTick(_) => "schedule_tick",
            Event::ExecuteTask(_) => "execute_task",
            Event::NotificationSent(_) => "notification_sent",
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing these plain structs cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Event, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod outcome_tests {
    use super::DeliveryOutcome;

    #[test]
    fn every_outcome_parses_back_from_its_stored_string_which_is_its_json_name() {
        for outcome in DeliveryOutcome::ALL {
            assert_eq!(DeliveryOutcome::parse(outcome.as_str()), Some(outcome));
            assert_eq!(
                serde_json::to_value(outcome).expect("serialize"),
                serde_json::Value::String(outcome.as_str().to_owned())
            );
        }
        assert_eq!(DeliveryOutcome::parse("Sent"), None);
    }
}
