//! Per-user recipients of per-user channels: browsers' push subscriptions (and the VAPID public
//! key a browser needs to make one), the user's webhook endpoint, and the user's profile (their
//! settings: time zone, default email and phone, quiet hours, default channels).
//!
//! Chime will POST to every URL stored here, so each is checked as the webhook channel checks
//! it before a delivery: http(s), a host that resolves, and only public addresses unless the
//! server allows private ones (`channels.webhook.allow_private`, for development). Because
//! that setting also decides which push endpoints are well formed, this service reads the
//! request's JSON body itself, as [`crate::definition::Definition`] does, and names each
//! refused field by its JSON pointer.

use std::sync::Arc;

use chime_core::profile::{Profile, StoredProfileError};
use chime_core::task::ParseOptions;
use chime_core::{FieldError, FieldErrors, UserId};
use chime_store::{
    FeedRecord, ProfileRecord, PushSubscriptionRecord, RecipientStore, WebhookEndpoint,
};
use serde_json::Value;

use super::error::{NotificationError, Result};
use crate::clock::now_micros;
use crate::Context;

/// The longest URL Chime stores for a recipient (a webhook, a push endpoint), as the API's
/// schema says: push services' endpoints are a few hundred characters.
pub const MAX_URL_LEN: usize = 2048;

#[derive(Clone)]
pub struct Recipients {
    store: Arc<dyn RecipientStore>,
    ctx: Context,
    /// The VAPID public key, when web push is configured.
    push_public_key: Option<String>,
    /// Whether endpoints may be on private addresses (and push endpoints plain http).
    allow_private: bool,
    /// How a profile's national phone number is read.
    options: ParseOptions,
}

impl Recipients {
    /// Without web push, and refusing private addresses.
    pub fn new(store: Arc<dyn RecipientStore>, ctx: Context) -> Self {
        Self {
            store,
            ctx,
            push_public_key: None,
            allow_private: false,
            options: ParseOptions::default(),
        }
    }

    /// Reads a profile's phone number as tasks' are read (the server's default region).
    pub fn with_parse_options(mut self, options: ParseOptions) -> Self {
        self.options = options;
        self
    }

    /// Creates the user's calendar feed, or rotates it (the earlier URL stops working).
    pub async fn rotate_feed(&self, user: &UserId) -> Result<FeedRecord> {
        let now = self.ctx.clock.now();
        Ok(self.store.rotate_feed(user, now).await?)
    }

    /// The user's calendar feed, if they have one.
    pub async fn feed(&self, user: &UserId) -> Result<Option<FeedRecord>> {
        Ok(self.store.feed(user).await?)
    }

    /// Revokes the user's calendar feed; `false` when there was none.
    pub async fn remove_feed(&self, user: &UserId) -> Result<bool> {
        Ok(self.store.remove_feed(user).await?)
    }

    /// The user's profile: the defaults when they never saved one.
    pub async fn profile(&self, user: &UserId) -> Result<Profile> {
        match self.store.profile(user).await? {
            None => Ok(Profile::default()),
            Some(record) => Profile::from_stored(&record.body).map_err(|e| match e {
                // Written by a newer release during a rolling upgrade, or damaged: an error,
                // never silently the defaults (a PUT from this release would lose settings).
                StoredProfileError::Newer(_) | StoredProfileError::Corrupt(_) => {
                    NotificationError::Store(chime_store::Error::Corrupt(format!(
                        "the profile of a user cannot be read: {e}"
                    )))
                }
            }),
        }
    }

    /// Replaces the user's profile with the one `body` describes (absent fields take their
    /// defaults); refused fields change nothing.
    pub async fn put_profile(&self, user: &UserId, body: Value) -> Result<Profile> {
        let profile = Profile::parse(body, &self.options)?;
        self.store
            .put_profile(&ProfileRecord {
                user_id: user.clone(),
                body: profile.to_stored(),
                updated_at: self.ctx.clock.now(),
            })
            .await?;
        Ok(profile)
    }

    /// Offers `key` to browsers (`None`: push is not configured).
    pub fn with_push_public_key(mut self, key: Option<String>) -> Self {
        self.push_public_key = key;
        self
    }

    /// Accepts endpoints on private addresses, and http push endpoints (development only).
    pub fn allowing_private_addresses(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// The VAPID public key browsers subscribe with, when push is configured.
    pub fn push_public_key(&self) -> Option<&str> {
        self.push_public_key.as_deref()
    }

    /// Registers a browser's `PushSubscription.toJSON()` for `user` (re-registering an
    /// endpoint refreshes its keys and keeps its id).
    pub async fn add_push_subscription(
        &self,
        user: UserId,
        body: &Value,
    ) -> Result<PushSubscriptionRecord> {
        let (endpoint, p256dh, auth) = parse_subscription(body, self.allow_private)?;
        // Chime will POST to this URL: the same address rules as webhooks (no SSRF).
        if let Err(why) = chime_channels::webhook::check_url_as(
            &endpoint,
            self.allow_private,
            "the push endpoint",
        )
        .await
        {
            return Err(refused("/endpoint", endpoint, why));
        }
        let record = PushSubscriptionRecord {
            id: format!("psb_{}", random_hex()),
            user_id: user,
            endpoint,
            p256dh,
            auth,
            created_at: now_micros(&*self.ctx.clock),
        };
        Ok(self.store.put_push_subscription(&record).await?)
    }

    pub async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscriptionRecord>> {
        Ok(self.store.push_subscriptions(user).await?)
    }

    /// Removes `user`'s subscription `id`; [`NotificationError::NotFound`] when they have none.
    pub async fn remove_push_subscription(&self, user: &UserId, id: &str) -> Result<()> {
        found(self.store.remove_push_subscription(Some(user), id).await?)
    }

    pub async fn webhook(&self, user: &UserId) -> Result<WebhookEndpoint> {
        self.store
            .webhook(user)
            .await?
            .ok_or(NotificationError::NotFound)
    }

    /// Sets `user`'s webhook endpoint from `{"url"}`, with a new signing secret.
    pub async fn set_webhook(&self, user: UserId, body: &Value) -> Result<WebhookEndpoint> {
        let url = match body.get("url") {
            Some(Value::String(url)) if !url.trim().is_empty() => url.trim().to_owned(),
            other => {
                return Err(FieldErrors::one(
                    "/url",
                    other.cloned(),
                    "`url` is the http(s) URL to POST reminders to",
                )
                .into())
            }
        };
        check_length("/url", &url)?;
        if let Err(why) = chime_channels::webhook::check_url(&url, self.allow_private).await {
            return Err(refused("/url", url, why));
        }
        let endpoint = WebhookEndpoint {
            user_id: user,
            url,
            secret: chime_channels::webhook::generate_secret(),
            created_at: now_micros(&*self.ctx.clock),
        };
        self.store.put_webhook(&endpoint).await?;
        Ok(endpoint)
    }

    /// Removes `user`'s webhook endpoint; [`NotificationError::NotFound`] when there is none.
    pub async fn remove_webhook(&self, user: &UserId) -> Result<()> {
        found(self.store.remove_webhook(user).await?)
    }
}

fn found(removed: bool) -> Result<()> {
    if removed {
        Ok(())
    } else {
        Err(NotificationError::NotFound)
    }
}

/// `url` at `pointer`, refused for `why`.
fn refused(pointer: &str, url: String, why: String) -> NotificationError {
    FieldErrors::one(pointer, Some(Value::String(url)), why).into()
}

/// The length rule of the schema's `maxLength`, as a field error.
fn check_length(pointer: &str, url: &str) -> Result<()> {
    let len = url.chars().count();
    if len > MAX_URL_LEN {
        return Err(refused(
            pointer,
            url.to_owned(),
            format!("a URL is at most {MAX_URL_LEN} characters, this one has {len}"),
        ));
    }
    Ok(())
}

/// `{endpoint, keys: {p256dh, auth}}`, checked: an https endpoint (http too when
/// `allow_http`, for a local push service in development) of at most [`MAX_URL_LEN`]
/// characters, a 65-byte uncompressed P-256 point, a 16-byte auth secret.
fn parse_subscription(body: &Value, allow_http: bool) -> Result<(String, String, String)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut errors = Vec::new();
    let endpoint = match body.get("endpoint") {
        Some(Value::String(e)) if e.chars().count() > MAX_URL_LEN => {
            errors.push(FieldError::new(
                "/endpoint",
                Some(Value::String(e.clone())),
                format!(
                    "a push endpoint is at most {MAX_URL_LEN} characters, this one has {}",
                    e.chars().count()
                ),
            ));
            None
        }
        Some(Value::String(e))
            if url::Url::parse(e)
                .map(|u| {
                    (u.scheme() == "https" || (allow_http && u.scheme() == "http"))
                        && u.host().is_some()
                })
                .unwrap_or(false) =>
        {
            Some(e.clone())
        }
        other => {
            errors.push(FieldError::new(
                "/endpoint",
                other.cloned(),
                "the push service's https URL",
            ));
            None
        }
    };
    let mut key = |name: &str, len: usize, what: &str| {
        let value = body.get("keys").and_then(|k| k.get(name));
        match value.and_then(Value::as_str) {
            Some(s)
                if b64
                    .decode(s.trim_end_matches('='))
                    .map(|b| b.len() == len)
                    .unwrap_or(false) =>
            {
                Some(s.trim_end_matches('=').to_owned())
            }
            _ => {
                errors.push(FieldError::new(
                    format!("/keys/{name}"),
                    value.cloned(),
                    what,
                ));
                None
            }
        }
    };
    let p256dh = key(
        "p256dh",
        65,
        "the browser's P-256 public key: 65 bytes, base64url",
    );
    let auth = key("auth", 16, "the 16-byte auth secret, base64url");
    match (endpoint, p256dh, auth) {
        (Some(e), Some(p), Some(a)) if errors.is_empty() => Ok((e, p, a)),
        _ => Err(FieldErrors(errors).into()),
    }
}

/// 128 random bits as 32 hex digits, for a subscription id.
fn random_hex() -> String {
    chime_core::NotificationId::new()
        .as_uuid()
        .simple()
        .to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{ctx_at, store};

    fn pointers(refused: NotificationError) -> Vec<String> {
        match refused {
            NotificationError::Invalid(FieldErrors(errors)) => {
                errors.into_iter().map(|e| e.pointer).collect()
            }
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_webhook_on_a_private_address_is_refused_unless_the_server_allows_it() {
        let (store, _dir) = store();
        let ctx = ctx_at("2030-01-01T00:00:00.123456789Z");
        let alice = UserId::parse("alice").expect("user");
        let body = json!({"url": " http://127.0.0.1:9/hook "});
        let strict = Recipients::new(store.clone(), ctx.clone());
        let refused = strict.set_webhook(alice.clone(), &body).await.unwrap_err();
        assert_eq!(pointers(refused), ["/url"]);
        assert!(matches!(
            strict.webhook(&alice).await,
            Err(NotificationError::NotFound)
        ));

        let lenient = strict.allowing_private_addresses(true);
        let set = lenient
            .set_webhook(alice.clone(), &body)
            .await
            .expect("set");
        assert_eq!(set.url, "http://127.0.0.1:9/hook");
        // The injected clock, to the microsecond the store keeps.
        assert_eq!(set.created_at.to_string(), "2030-01-01T00:00:00.123456Z");
        assert_eq!(lenient.webhook(&alice).await.expect("stored"), set);
        lenient.remove_webhook(&alice).await.expect("removed");
        assert!(matches!(
            lenient.remove_webhook(&alice).await,
            Err(NotificationError::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_push_subscription_names_each_refused_field() {
        let (store, _dir) = store();
        let recipients = Recipients::new(store, ctx_at("2030-01-01T00:00:00Z"));
        let refused = recipients
            .add_push_subscription(
                UserId::parse("alice").expect("user"),
                &json!({"endpoint": "http://push.example/1", "keys": {"p256dh": "x"}}),
            )
            .await
            .unwrap_err();
        assert_eq!(
            pointers(refused),
            ["/endpoint", "/keys/p256dh", "/keys/auth"]
        );
    }

    #[tokio::test]
    async fn a_webhook_url_longer_than_the_limit_is_refused_before_any_lookup() {
        let (store, _dir) = store();
        let recipients = Recipients::new(store, ctx_at("2030-01-01T00:00:00Z"));
        let url = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        let refused = recipients
            .set_webhook(
                UserId::parse("alice").expect("user"),
                &json!({ "url": url }),
            )
            .await
            .unwrap_err();
        assert_eq!(pointers(refused), ["/url"]);
    }
}
