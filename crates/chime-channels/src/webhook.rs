//! The webhook adapter: a signed JSON `POST` to the owner's endpoint, per Standard Webhooks.
//!
//! Each attempt sends the headers `webhook-id`, `webhook-timestamp` and `webhook-signature`
//! (see `signature.rs`), so receivers can use any Standard Webhooks library to check that the call
//! came from Chime, is fresh, and is not a repeat. The id is derived from the delivery's
//! idempotency key, so a retry carries the same id (receivers dedupe on it) while the
//! timestamp and signature are those of the attempt.
//!
//! The body (`Content-Type: application/json`, `User-Agent: chime/<version>`):
//!
//! ```json
//! {"type": "reminder.due", "timestamp": "<this attempt, RFC 3339>",
//!  "data": {"taskId": "tsk_…", "taskName": "…", "description": "…" or null,
//!           "dueAt": "<RFC 3339 UTC>", "dueLocal": "Monday 7 December 2026, 09:00 (Europe/Berlin)",
//!           "timeZone": "Europe/Berlin", "late": false, "occurrence": "<idempotency key>"}}
//! ```
//!
//! Endpoints are user-chosen, so every delivery first goes through the SSRF
//! checks: http(s) only, no userinfo, every resolved address public unless
//! `channels.webhook.allow_private`, and a connection pinned to the checked addresses with
//! redirects off. [`check_url`] offers the same check to the API when an endpoint is set.
//!
//! How answers map to outcomes (the notification role does the retrying):
//!
//! - 2xx: sent (no provider id: the receiver's body is not ours to interpret).
//! - 429, 408 and 5xx: transient, with the `Retry-After` delay (seconds or HTTP-date) if given.
//!   408 is listed because it asks the client to repeat the request.
//! - 410: permanent, "the endpoint says it is gone". Not [`SendError::Gone`]: the endpoint is
//!   the owner's configuration, which they should see failing and fix, not one Chime forgets.
//! - 3xx: permanent. Redirects are not followed (one could point inward), and retrying the
//!   same URL would get the same redirect; the reason names where it pointed (host only) so
//!   the owner can configure that URL instead, as the Standard Webhooks spec advises.
//! - Other 4xx: permanent, with the status and the start of the receiver's answer.
//! - Timeouts, refused connections, DNS failures: transient.
//! - A URL refused by the SSRF checks, or a malformed URL or secret: permanent.
//!
//! The whole attempt (lookup, connect, request, answer) is bounded by `timeout_seconds`. Logs
//! and reasons name the URL's host only: a path or query can hold a token, and the secret is
//! never logged.

mod address;
mod signature;

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::{ChannelAdapter, Recipient, Reminder, SendError, Sent};

pub use address::{check_url, check_url_as, is_public, Reach};
pub use signature::{
    generate_secret, message_id, sign, verify, SignatureError, SigningKey, MIN_KEY_BYTES,
    SECRET_PREFIX, TIMESTAMP_TOLERANCE_SECONDS,
};

pub(crate) use address::{resolve, Target, TargetError};

/// The Standard Webhooks event type of a reminder.
pub const EVENT_TYPE: &str = "reminder.due";

/// How much of a failing receiver's answer goes into the reason.
const SNIPPET_BYTES: usize = 200;

/// How long to wait for that snippet once the status is known.
const SNIPPET_WAIT: Duration = Duration::from_secs(1);

/// `channels.webhook` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Deliver to loopback, private and other non-public addresses too (development, or an
    /// installation whose receivers are all on its own network).
    pub allow_private: bool,
    /// Bound on one whole attempt, 1 to 300.
    pub timeout_seconds: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            timeout_seconds: 10,
        }
    }
}

/// A refused [`WebhookConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("channels.webhook.timeout_seconds must be between 1 and 300, not {0}")]
    Timeout(u64),
}

/// The webhook [`ChannelAdapter`].
#[derive(Debug, Clone)]
pub struct WebhookChannel {
    allow_private: bool,
    timeout: Duration,
    user_agent: String,
}

impl WebhookChannel {
    pub fn new(config: &WebhookConfig) -> Result<WebhookChannel, WebhookConfigError> {
        if !(1..=300).contains(&config.timeout_seconds) {
            return Err(WebhookConfigError::Timeout(config.timeout_seconds));
        }
        Ok(WebhookChannel {
            allow_private: config.allow_private,
            timeout: Duration::from_secs(config.timeout_seconds),
            user_agent: format!("chime/{}", env!("CARGO_PKG_VERSION")),
        })
    }

    async fn attempt(
        &self,
        message: &Reminder,
        url: &str,
        key: &SigningKey,
    ) -> Result<Sent, SendError> {
        let target = address::resolve(url, &Reach::webhook(self.allow_private), "the webhook URL")
            .await
            .map_err(|e| match e {
                TargetError::Unresolved(r) => SendError::transient(r),
                TargetError::Invalid(r) | TargetError::Refused(r) => SendError::permanent(r),
            })?;
        tracing::Span::current().record("host", target.host.as_str());

        let now = Timestamp::now();
        let body = payload(message, now);
        let id = message_id(&message.idempotency_key);
        let signature = key
            .sign(&id, now.as_second(), &body)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        let client = target.client(self.timeout, &self.user_agent).map_err(|e| {
            SendError::transient(format!(
                "could not set up the HTTP client: {}",
                crate::error_chain(e)
            ))
        })?;

        let response = client
            .post(target.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", now.as_second().to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| request_error(e, &target, self.timeout))?;
        outcome(response, &target).await
    }
}

#[async_trait]
impl ChannelAdapter for WebhookChannel {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn kind(&self) -> chime_core::event::Channel {
        chime_core::event::Channel::Webhook
    }

    #[tracing::instrument(
        name = "webhook_send",
        skip_all,
        fields(occurrence = %message.occurrence, attempt = message.attempt, host = tracing::field::Empty),
    )]
    async fn send(&self, message: &Reminder) -> Result<Sent, SendError> {
        let Recipient::Webhook { url, secret } = &message.recipient else {
            return Err(SendError::permanent(
                "the webhook channel was given a recipient that is not a webhook",
            ));
        };
        let key = SigningKey::parse(secret).map_err(|e| SendError::permanent(e.to_string()))?;
        let result =
            match tokio::time::timeout(self.timeout, self.attempt(message, url, &key)).await {
                Ok(result) => result,
                Err(_) => Err(SendError::transient(format!(
                    "no answer within {} s",
                    self.timeout.as_secs()
                ))),
            };
        match &result {
            Ok(_) => tracing::debug!("webhook delivered"),
            // The reason names the user's endpoint; it is kept on the delivery, not logged.
            Err(_) => tracing::info!("webhook not delivered"),
        }
        result
    }
}

/// The JSON body, serialized once: the bytes signed are the bytes sent.
fn payload(message: &Reminder, now: Timestamp) -> Vec<u8> {
    let task = &message.task;
    json!({
        "type": EVENT_TYPE,
        "timestamp": now.to_string(),
        "data": {
            "taskId": message.occurrence.task_id.to_string(),
            "taskName": task.name.as_str(),
            "description": task.description,
            "dueAt": message.occurrence.due_at.to_string(),
            "dueLocal": crate::local_due_time(message),
            "timeZone": task.schedule.zone.name(),
            "late": message.late,
            "occurrence": message.idempotency_key,
        },
    })
    .to_string()
    .into_bytes()
}

async fn outcome(response: reqwest::Response, target: &Target) -> Result<Sent, SendError> {
    let status = response.status();
    if status.is_success() {
        return Ok(Sent { provider_id: None });
    }
    let host = &target.host;
    let retry_after = crate::retry_after(response.headers(), Timestamp::now());
    if status.is_redirection() {
        let pointed = redirect_host(response.headers(), &target.url)
            .map(|h| format!(" to {h}"))
            .unwrap_or_default();
        return Err(SendError::permanent(format!(
            "{host} answered {status} with a redirect{pointed}: redirects are not followed, \
             since one could lead to an internal address; configure the URL it points to"
        )));
    }
    let snippet = snippet(response).await;
    match status {
        StatusCode::GONE => Err(SendError::permanent(format!(
            "the endpoint says it is gone ({host} answered {status}): update or remove the \
             webhook URL"
        ))),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => Err(SendError::Transient {
            reason: format!("{host} answered {status}{snippet}"),
            retry_after,
        }),
        s if s.is_server_error() => Err(SendError::Transient {
            reason: format!("{host} answered {status}{snippet}"),
            retry_after,
        }),
        _ => Err(SendError::permanent(format!(
            "{host} answered {status}{snippet}"
        ))),
    }
}

/// The host a redirect points to (relative locations resolve against the request URL).
fn redirect_host(headers: &HeaderMap, base: &url::Url) -> Option<String> {
    let location = headers.get(LOCATION)?.to_str().ok()?;
    let to = base.join(location).ok()?;
    to.host_str().map(str::to_owned)
}

/// `: "<the first bytes of the answer>"`, or nothing if it is empty or slow.
async fn snippet(mut response: reqwest::Response) -> String {
    let read = async {
        let mut bytes = Vec::new();
        while bytes.len() < SNIPPET_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
        bytes
    };
    let bytes = tokio::time::timeout(SNIPPET_WAIT, read)
        .await
        .unwrap_or_default();
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SNIPPET_BYTES)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text:?}")
    }
}

/// A failed request as a reason naming the host only (reqwest's own message holds the URL).
fn request_error(error: reqwest::Error, target: &Target, timeout: Duration) -> SendError {
    let host = &target.host;
    if error.is_timeout() {
        SendError::transient(format!(
            "no answer from {host} within {} s",
            timeout.as_secs()
        ))
    } else if error.is_builder() {
        SendError::permanent(format!(
            "could not build the request to {host}: {}",
            crate::error_chain(error)
        ))
    } else if error.is_connect() {
        SendError::transient(format!(
            "could not connect to {host}: {}",
            crate::error_chain(error)
        ))
    } else {
        SendError::transient(format!(
            "the request to {host} failed: {}",
            crate::error_chain(error)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_with_a_zero_timeout_is_refused() {
        let config = WebhookConfig {
            timeout_seconds: 0,
            ..WebhookConfig::default()
        };
        assert_eq!(
            WebhookChannel::new(&config).unwrap_err(),
            WebhookConfigError::Timeout(0)
        );
    }
}
