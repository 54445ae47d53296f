//! The channel port: how one occurrence reaches a person through one external provider.
//!
//! A [`ChannelAdapter`] sends one [`Reminder`] to one [`Recipient`] and says how it went:
//! [`Sent`] (with the provider's message id when it gives one), or a [`SendError`] that tells
//! the notification role what to do next: retry later (transient: timeouts, 5xx, 429, honouring
//! the provider's `Retry-After`), stop (permanent: invalid address, other 4xx), or forget the
//! recipient (gone: a push subscription the push service no longer knows).
//!
//! Adapters never retry themselves and never touch the store: the notification role records
//! every attempt, schedules retries with backoff and dead-letters, so retries survive restarts.
//! Every message carries an idempotency key (the occurrence key plus channel and target),
//! which adapters pass to providers that accept one.
//!
//! Adapters: [`email`] (SMTP), [`sms`] (HTTP, Twilio's Messages API shape), [`push`] (Web Push
//! with VAPID and `aes128gcm`), [`webhook`] (Standard Webhooks signatures), and the
//! [`destination`] channels, each reaching a service through an owner's Apprise-style URL:
//! [`destination::ntfy`], [`destination::gotify`], [`destination::telegram`], Slack, Discord
//! and Matrix.

use std::time::Duration;

use async_trait::async_trait;
use chime_core::event::OccurrenceKey;
use chime_core::task::{EmailAddress, PhoneNumber};
use chime_core::{TaskSpec, UserId};
use serde::{Deserialize, Serialize};

pub mod destination;
pub mod email;
pub mod push;
pub mod sms;
pub mod webhook;

/// One occurrence of one task, to be delivered to one recipient.
#[derive(Debug, Clone)]
pub struct Reminder {
    /// Stable across retries and replays: `tsk_…@<due>/<channel>[/<target>]`. Providers that
    /// accept an idempotency key get this.
    pub idempotency_key: String,
    pub occurrence: OccurrenceKey,
    pub user_id: UserId,
    /// The task as of the occurrence: name, description, time zone (for the local due time).
    pub task: TaskSpec,
    /// Fired later than the lateness threshold (say so to the person).
    pub late: bool,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub recipient: Recipient,
    /// What the person can do from the message itself (email links, push buttons): each a
    /// label and a capability token for `/act/{token}`. Empty where the channel has none.
    pub actions: Vec<ReminderAction>,
}

/// One action a message offers: "Done", "Snooze 1 hour".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderAction {
    /// `done` or `snooze` (what a service worker names its notification action).
    pub kind: &'static str,
    /// For people.
    pub label: String,
    /// The signed token that performs it (never logged).
    pub token: String,
    /// The same capability in at most 64 bytes, for a chat service's button that calls back
    /// with a short payload (Telegram's `callback_data`); `None` where the message has none.
    pub callback: Option<String>,
}

/// Where a message goes; resolved by the notification role before the first attempt and kept
/// with the delivery, so a retry goes where the first attempt went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Recipient {
    Email {
        address: String,
    },
    /// E.164 (`+14075551212`).
    Sms {
        number: String,
    },
    Push {
        subscription: PushSubscription,
    },
    Webhook {
        url: String,
        /// The Standard Webhooks secret, `whsec_` + base64.
        secret: String,
    },
    /// One of the owner's destinations: an ntfy topic, a Gotify app, a Telegram chat, a Slack
    /// or Discord webhook, a Matrix room.
    Destination {
        /// Its id (`dst_…`: the delivery's target).
        id: String,
        /// Its Apprise-style URL, with the service's token (never logged: see
        /// [`destination::mask`]).
        url: String,
    },
}

impl Recipient {
    pub fn email(address: &EmailAddress) -> Self {
        Recipient::Email {
            address: address.as_str().to_owned(),
        }
    }

    pub fn sms(number: &PhoneNumber) -> Self {
        Recipient::Sms {
            number: number.as_str().to_owned(),
        }
    }
}

/// A browser's push subscription (the `PushSubscription` JSON a browser gives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscription {
    /// Chime's id for it (`target` of its deliveries).
    pub id: String,
    pub endpoint: String,
    /// The browser's P-256 public key, base64url (no padding), uncompressed point.
    pub p256dh: String,
    /// The 16-byte auth secret, base64url (no padding).
    pub auth: String,
}

/// A successful hand-over to the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id for the message (SMTP queue id, SMS sid, push `Location`), if any.
    pub provider_id: Option<String>,
}

/// Why an attempt failed, and therefore what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying (timeouts, connection errors, 5xx, 429). `retry_after` is the provider's
    /// own hint, which the retry schedule honours.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (invalid address or number, 4xx other than 429, bad config).
    #[error("{reason}")]
    Permanent { reason: String },
    /// The recipient no longer exists (push subscription expired: 404/410); forget it.
    #[error("{reason}")]
    Gone { reason: String },
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> Self {
        SendError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            reason: reason.into(),
        }
    }
}

/// One external channel's adapter (the channel itself is [`chime_core::event::Channel`]).
#[async_trait]
pub trait ChannelAdapter: Send + Sync + 'static {
    /// Which channel this adapter serves.
    fn kind(&self) -> chime_core::event::Channel;

    /// One attempt. Must return within the adapter's own timeout (every network call has
    /// one), so a hanging provider never holds a delivery worker for long.
    async fn send(&self, message: &Reminder) -> Result<Sent, SendError>;

    /// The longest one [`ChannelAdapter::send`] takes: the notification role leases a claimed
    /// delivery for a little longer, so a dead worker's delivery is attempted again soon after.
    fn timeout(&self) -> std::time::Duration;

    /// Takes back a message already sent to `recipient` (`key`: its idempotency key), where
    /// the channel can: web push sends a message with the same `Topic` that tells the service
    /// worker to close the notification it shows (and replaces the reminder at the push
    /// service if the device has not fetched it yet). Best effort; by default nothing (an
    /// email or an SMS cannot be taken back).
    async fn withdraw(&self, _recipient: &Recipient, _key: &str) -> Result<(), SendError> {
        Ok(())
    }
}

/// The due instant in the task's time zone, for people: `Monday 7 December 2026, 09:00 (Europe/Berlin)`.
pub fn local_due_time(message: &Reminder) -> String {
    let zoned = message
        .occurrence
        .due_at
        .to_zoned(message.task.schedule.zone.time_zone().clone());
    format!(
        "{} ({})",
        zoned.strftime("%A %-d %B %Y, %H:%M"),
        message.task.schedule.zone.name()
    )
}

/// A request error and its sources, `: `-separated, without the URL (which can hold a
/// capability or a secret): the reason every HTTP adapter records.
pub(crate) fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let next = cause.to_string();
        // hyper and reqwest often repeat the inner message in the outer one.
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// The provider's `Retry-After` (RFC 9110 §10.2.3), as delay-seconds or an HTTP-date; a date
/// in the past means now. Every HTTP adapter honours it through this one reading.
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Thu, 01 Jan 2026 00:01:30 GMT"), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after(&headers("Wed, 31 Dec 2025 23:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
