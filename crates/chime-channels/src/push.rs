//! The Web Push adapter: a reminder as a notification on a person's browser or phone.
//!
//! A browser that subscribed (with Chime's VAPID public key as `applicationServerKey`) gives
//! an endpoint on its vendor's push service plus two keys; one attempt is one `POST` of an
//! encrypted payload to that endpoint (RFC 8030):
//!
//! - the payload is a small JSON object (`title`, `body`, `taskId`, `dueAt`, `tag`) the web
//!   app's service worker shows; `tag` is the idempotency key so the browser replaces rather
//!   than duplicates a notification that a retry delivered twice. It is kept under 3 KB
//!   (the description is cut first), well inside the 4096-octet limit of RFC 8291 §4;
//! - it is encrypted for the browser alone with `aes128gcm` ([`ece`], RFC 8291 + RFC 8188);
//! - the request is signed with VAPID ([`vapid`], RFC 8292): `Authorization: vapid t=…, k=…`;
//! - `TTL` (how long the push service keeps it for an offline device) comes from the config,
//!   `Urgency: high` because a reminder is worth waking a device for, and `Topic` is derived
//!   from the idempotency key, so a retry replaces a copy still queued at the push service.
//!
//! The push service's answer decides what happens next: any 2xx is [`Sent`] (with the
//! message's `Location`), 404 and 410 mean the subscription is gone for good
//! ([`SendError::Gone`]: the notification role deletes it), 408, 429 and 5xx are transient
//! (honouring `Retry-After`), every other status is permanent. Redirects are not followed: a
//! push service does not redirect, and following one would send a signed request elsewhere.
//!
//! The endpoint URL is a capability (whoever knows it can push to that browser, given the
//! keys), so it never appears in logs or error reasons: only its origin does, and reqwest's
//! errors are stripped of their URL.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{local_due_time, ChannelAdapter, Recipient, Reminder, SendError, Sent};

pub mod ece;
pub mod vapid;

pub use ece::{encrypt, encrypt_with, InvalidSubscription, PayloadTooLarge, SubscriptionKeys};
pub use vapid::VapidKeys;

/// The largest JSON payload we build, leaving headroom below [`ece::MAX_PLAINTEXT`].
pub const MAX_PAYLOAD: usize = 3 * 1024;

/// How much of a refusal's body goes into the reason.
const REASON_EXCERPT: usize = 200;

/// `[channels.push]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PushConfig {
    /// Who runs this Chime, for push service operators: a `mailto:` or `https:` URL
    /// (RFC 8292 §2.1 requires one of the two).
    pub subject: String,
    /// How long the push service keeps a message for a device that is offline.
    #[serde(default = "default_ttl_seconds")]
    pub ttl_seconds: u32,
    /// Limit for one request, connection to last byte of the answer.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn default_ttl_seconds() -> u32 {
    86_400
}

fn default_timeout_seconds() -> u64 {
    15
}

/// A [`PushConfig`] that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PushConfigError {
    #[error("channels.push.subject must be a mailto: or https: URL, got {0:?}")]
    Subject(String),
    #[error("channels.push.timeout_seconds must be at least 1")]
    Timeout,
    #[error("could not build the push HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The Web Push channel.
#[derive(Debug, Clone)]
pub struct PushChannel {
    client: reqwest::Client,
    keys: VapidKeys,
    subject: String,
    ttl_seconds: u32,
    timeout: Duration,
    allow_http: bool,
}

impl PushChannel {
    pub fn new(config: &PushConfig, keys: VapidKeys) -> Result<Self, PushConfigError> {
        let subject = config.subject.trim();
        let valid_subject = url::Url::parse(subject).is_ok_and(|u| match u.scheme() {
            "mailto" => u.path().contains('@'),
            "https" => u.host().is_some(),
            _ => false,
        });
        if !valid_subject {
            return Err(PushConfigError::Subject(config.subject.clone()));
        }
        if config.timeout_seconds == 0 {
            return Err(PushConfigError::Timeout);
        }
        let timeout = Duration::from_secs(config.timeout_seconds);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("chime/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(PushConfigError::Client)?;
        Ok(Self {
            client,
            keys,
            subject: subject.to_owned(),
            ttl_seconds: config.ttl_seconds,
            timeout,
            allow_http: false,
        })
    }

    /// Also accept `http:` endpoints. Real push services are all HTTPS; this is for tests and
    /// local push-service emulators only.
    pub fn allow_http_endpoints(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// The `applicationServerKey` the web app subscribes with.
    pub fn public_key_base64url(&self) -> &str {
        self.keys.public_key_base64url()
    }

    fn refusal(&self, status: StatusCode, origin: &str, excerpt: &str) -> String {
        let what = match status.as_u16() {
            400 => "the push service refused the request as malformed",
            401 | 403 => {
                "the push service refused Chime's VAPID credentials (a subscription made \
                 with another applicationServerKey?)"
            }
            413 => "the push service refused the payload as too large",
            _ => "the push service refused the message",
        };
        let mut reason = format!("{origin} answered {status}: {what}");
        if !excerpt.is_empty() {
            reason.push_str(": ");
            reason.push_str(excerpt);
        }
        reason
    }
}

#[async_trait]
impl ChannelAdapter for PushChannel {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn kind(&self) -> chime_core::event::Channel {
        chime_core::event::Channel::Push
    }

    #[tracing::instrument(
        skip_all,
        fields(key = %message.idempotency_key, origin = tracing::field::Empty)
    )]
    async fn send(&self, message: &Reminder) -> Result<Sent, SendError> {
        self.post(
            &message.recipient,
            &payload(message),
            &message.idempotency_key,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(key = %key, origin = tracing::field::Empty))]
    async fn withdraw(&self, recipient: &Recipient, key: &str) -> Result<(), SendError> {
        let close = serde_json::json!({ "close": key }).to_string();
        self.post(recipient, close.as_bytes(), key)
            .await
            .map(|_| ())
    }
}

impl PushChannel {
    /// Encrypts `payload` for the subscription and posts it, with the `Topic` of `key`.
    async fn post(
        &self,
        recipient: &Recipient,
        payload: &[u8],
        key: &str,
    ) -> Result<Sent, SendError> {
        let Recipient::Push { subscription } = recipient else {
            return Err(SendError::permanent(
                "the push channel got a non-push recipient",
            ));
        };
        let endpoint = url::Url::parse(&subscription.endpoint).map_err(|_| {
            SendError::permanent(format!(
                "push subscription {} has an endpoint that is not a URL",
                subscription.id
            ))
        })?;
        let scheme_ok = match endpoint.scheme() {
            "https" => true,
            "http" => self.allow_http,
            _ => false,
        };
        if !scheme_ok || endpoint.host().is_none() {
            return Err(SendError::permanent(format!(
                "push subscription {} has an endpoint that is not an https URL",
                subscription.id
            )));
        }
        let origin = endpoint.origin().ascii_serialization();
        tracing::Span::current().record("origin", origin.as_str());

        let keys = SubscriptionKeys::parse(subscription).map_err(|e| {
            SendError::permanent(format!("push subscription {}: {e}", subscription.id))
        })?;
        let body = encrypt(payload, &keys).map_err(|e| SendError::permanent(e.to_string()))?;

        let now = Timestamp::now();
        let mut authorization =
            HeaderValue::try_from(self.keys.authorization(&origin, &self.subject, now))
                .map_err(|_| SendError::permanent("the VAPID Authorization header is not valid"))?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("aes128gcm"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert("ttl", HeaderValue::from(self.ttl_seconds));
        headers.insert("urgency", HeaderValue::from_static("high"));
        if let Ok(topic) = HeaderValue::try_from(topic(key)) {
            headers.insert("topic", topic);
        }

        let response = self
            .client
            .post(endpoint)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| self.request_error(e, &origin))?;

        let status = response.status();
        tracing::debug!(status = status.as_u16(), "push service answered");
        if status.is_success() {
            let provider_id = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return Ok(Sent { provider_id });
        }
        let retry_after = crate::retry_after(response.headers(), now);
        let excerpt = body_excerpt(response).await;
        Err(classify(status, retry_after, || {
            self.refusal(status, &origin, &excerpt)
        }))
    }
}

impl PushChannel {
    fn request_error(&self, error: reqwest::Error, origin: &str) -> SendError {
        // The URL in reqwest's message is the capability; the origin is enough to debug.
        if error.is_builder() {
            return SendError::permanent(format!(
                "could not build the request to {origin}: {}",
                crate::error_chain(error)
            ));
        }
        if error.is_timeout() {
            return SendError::transient(format!(
                "{origin} did not answer within {} s",
                self.timeout.as_secs()
            ));
        }
        SendError::transient(format!(
            "could not reach {origin}: {}",
            crate::error_chain(error)
        ))
    }
}

/// What a non-2xx status means for the delivery.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    refusal: impl FnOnce() -> String,
) -> SendError {
    match status.as_u16() {
        // RFC 8030 §7.3: the subscription expired or the browser unsubscribed.
        404 | 410 => SendError::Gone {
            reason: format!(
                "the push service answered {status}: the subscription has expired or was \
                 unsubscribed"
            ),
        },
        408 | 429 | 500..=599 => SendError::Transient {
            reason: format!("the push service answered {status}"),
            retry_after,
        },
        _ => SendError::Permanent { reason: refusal() },
    }
}

/// The JSON the service worker receives.
fn payload(message: &Reminder) -> Vec<u8> {
    let title = if message.late {
        format!("Late reminder: {}", message.task.name.as_str())
    } else {
        format!("Reminder: {}", message.task.name.as_str())
    };
    let due = local_due_time(message);
    let description = message
        .task
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let mut budget = description.map_or(0, str::len);
    loop {
        let body = match description {
            Some(d) if budget > 0 => format!("{due}\n{}", truncate(d, budget)),
            _ => due.clone(),
        };
        // Notification actions for the service worker: each with the capability token it
        // posts to `/act/{token}` (it has no session of its own).
        let actions: Vec<serde_json::Value> = message
            .actions
            .iter()
            .map(|a| serde_json::json!({"action": a.kind, "title": a.label, "token": a.token}))
            .collect();
        let json = serde_json::json!({
            "title": title,
            "body": body,
            "taskId": message.occurrence.task_id.to_string(),
            "dueAt": message.occurrence.due_at.to_string(),
            "tag": message.idempotency_key,
            "actions": actions,
        });
        let bytes = json.to_string().into_bytes();
        // Without the description the payload is small: names are at most 200 characters.
        if bytes.len() <= MAX_PAYLOAD || budget == 0 {
            return bytes;
        }
        // JSON escaping can make the description longer than its bytes; cut at least by the
        // overflow and go round again.
        budget = budget.saturating_sub((bytes.len() - MAX_PAYLOAD).max(1));
    }
}

/// At most `max` bytes of `s`, cut at a character boundary, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let ellipsis = '…';
    let mut end = max.saturating_sub(ellipsis.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", s[..end].trim_end())
}

/// RFC 8030 §5.4: at most 32 characters of the base64url alphabet. 24 octets of SHA-256
/// encode to exactly 32, and do not reveal the task id to the push service.
fn topic(idempotency_key: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// The start of a refusal's body, for the reason: push services explain themselves there.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < REASON_EXCERPT * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(REASON_EXCERPT)
        .collect();
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_is_32_base64url_characters() {
        let t = topic("tsk_0190a0b1c2d3e4f5a6b7c8d9e0f1a2b3@2026-12-07T08:00:00Z/push/psub_1");
        assert_eq!(t.len(), 32);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn truncation_cuts_at_a_character_boundary_and_says_so() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééééé", 7);
        assert!(cut.len() <= 7, "{cut}");
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let refusal = || "refused".to_owned();
        assert!(matches!(
            classify(StatusCode::GONE, None, refusal),
            SendError::Gone { .. }
        ));
        assert!(matches!(
            classify(StatusCode::REQUEST_TIMEOUT, None, refusal),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, Some(Duration::from_secs(3)), refusal),
            SendError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert_eq!(
            classify(StatusCode::PAYLOAD_TOO_LARGE, None, refusal),
            SendError::permanent("refused")
        );
    }
}
