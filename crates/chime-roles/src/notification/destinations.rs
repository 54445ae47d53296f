//! A user's destinations: named URLs of the chat and push services they already use (ntfy,
//! Gotify, Telegram, Slack, Discord, Matrix), which their tasks name in `notify.destinations`.
//!
//! Each is checked before it is stored: a URL in one of the accepted forms
//! ([`chime_channels::destination`]), for a channel this server runs, whose server passes the
//! channel's address rules (public addresses, or the operator's allow list for servers on a
//! private network). The URL carries the service's token, so it is stored encrypted (above
//! the store port) and shown back masked: the API never answers a token it was given.
//!
//! A Telegram destination also gets the bot's webhook set, when the server has a public
//! address, so that the Done and Snooze buttons of its messages call back: Telegram signs
//! each callback with the `secret_token` given here ([`Destinations::telegram_secret`]),
//! which the HTTP layer checks before it reads anything.

use std::collections::HashMap;
use std::sync::Arc;

use chime_channels::destination::{telegram, DestinationUrl, Settings};
use chime_channels::{ChannelAdapter, Recipient, Reminder, SendError};
use chime_core::event::{Channel, OccurrenceKey};
use chime_core::task::DestinationId;
use chime_core::{FieldErrors, TaskId, TaskSpec, UserId};
use chime_store::{DestinationRecord, RecipientStore};
use serde_json::{json, Value};

use super::error::{NotificationError, Result};
use super::recipients::MAX_URL_LEN;
use crate::clock::now_micros;
use crate::occurrence::tokens::ActionKeys;
use crate::Context;

/// Most destinations one user keeps.
pub const MAX_PER_USER: usize = 20;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 80;

/// One destination as the API shows it: its URL masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationView {
    pub id: String,
    pub name: String,
    pub channel: Channel,
    /// The URL with its secrets replaced by `…`.
    pub url: String,
    pub created_at: jiff::Timestamp,
}

impl DestinationView {
    fn of(record: &DestinationRecord) -> DestinationView {
        let parsed = DestinationUrl::parse(&record.url);
        DestinationView {
            id: record.id.clone(),
            name: record.name.clone(),
            // A URL this release cannot read (written by a newer one) still lists, as the
            // channel its scheme names; its sends fail with the reason.
            channel: parsed
                .as_ref()
                .map_or(Channel::Ntfy, DestinationUrl::channel),
            url: chime_channels::destination::mask(&record.url),
            created_at: record.created_at,
        }
    }
}

/// What a test notification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub sent: bool,
    /// Why it was not sent (secrets scrubbed by the adapter).
    pub detail: Option<String>,
}

#[derive(Clone)]
pub struct Destinations {
    store: Arc<dyn RecipientStore>,
    ctx: Context,
    /// Each destination channel this server runs: where its requests may go, and its adapter
    /// (for a test notification).
    channels: HashMap<Channel, (Settings, Arc<dyn ChannelAdapter>)>,
    /// Chime's public address and the action key, when Telegram's buttons can call back.
    callbacks: Option<(url::Url, ActionKeys)>,
}

impl Destinations {
    pub fn new(store: Arc<dyn RecipientStore>, ctx: Context) -> Self {
        Self {
            store,
            ctx,
            channels: HashMap::new(),
            callbacks: None,
        }
    }

    /// Runs `channel` with `settings` and `adapter`.
    pub fn with_channel(mut self, settings: Settings, adapter: Arc<dyn ChannelAdapter>) -> Self {
        self.channels.insert(adapter.kind(), (settings, adapter));
        self
    }

    /// Lets chat buttons call back to `public_url` (`/hooks/telegram/{id}`), verified with
    /// `keys`.
    pub fn with_callbacks(mut self, public_url: url::Url, keys: ActionKeys) -> Self {
        self.callbacks = Some((public_url, keys));
        self
    }

    pub async fn list(&self, user: &UserId) -> Result<Vec<DestinationView>> {
        Ok(self
            .store
            .destinations(user)
            .await?
            .iter()
            .map(DestinationView::of)
            .collect())
    }

    pub async fn get(&self, user: &UserId, id: &str) -> Result<DestinationView> {
        Ok(DestinationView::of(&self.record(user, id).await?))
    }

    /// Adds a destination from `{"name", "url"}`.
    pub async fn add(&self, user: &UserId, body: &Value) -> Result<DestinationView> {
        let name = read_name(body)?;
        let url = read_url(body)?.ok_or_else(|| {
            NotificationError::from(FieldErrors::one("/url", body.get("url").cloned(), URL_WHAT))
        })?;
        let parsed = self.check_url(&url).await?;
        if self.store.destinations(user).await?.len() >= MAX_PER_USER {
            return Err(NotificationError::DestinationLimit {
                limit: MAX_PER_USER,
            });
        }
        let record = DestinationRecord {
            id: format!("{}{}", DestinationId::PREFIX, random_hex()),
            user_id: user.clone(),
            name,
            url,
            created_at: now_micros(&*self.ctx.clock),
        };
        self.hook(&record, &parsed).await?;
        self.store.put_destination(&record).await?;
        tracing::info!(destination = %record.id, channel = parsed.channel().as_str(), "destination added");
        Ok(DestinationView::of(&record))
    }

    /// Renames destination `id` and, when the body has a `url`, points it elsewhere.
    pub async fn replace(&self, user: &UserId, id: &str, body: &Value) -> Result<DestinationView> {
        let current = self.record(user, id).await?;
        let name = read_name(body)?;
        let record = match read_url(body)? {
            None => DestinationRecord { name, ..current },
            Some(url) => {
                let parsed = self.check_url(&url).await?;
                let record = DestinationRecord {
                    name,
                    url,
                    ..current
                };
                self.hook(&record, &parsed).await?;
                record
            }
        };
        self.store.put_destination(&record).await?;
        Ok(DestinationView::of(&record))
    }

    pub async fn remove(&self, user: &UserId, id: &str) -> Result<()> {
        if self.store.remove_destination(user, id).await? {
            Ok(())
        } else {
            Err(NotificationError::NotFound)
        }
    }

    /// Sends a test notification to destination `id` now, and says how it went.
    pub async fn test(&self, user: &UserId, id: &str) -> Result<TestOutcome> {
        let record = self.record(user, id).await?;
        let channel = match DestinationUrl::parse(&record.url) {
            Ok(parsed) => parsed.channel(),
            Err(reason) => {
                return Ok(TestOutcome {
                    sent: false,
                    detail: Some(reason),
                })
            }
        };
        let Some((_, adapter)) = self.channels.get(&channel) else {
            return Ok(TestOutcome {
                sent: false,
                detail: Some(not_run(channel)),
            });
        };
        let now = self.ctx.clock.now();
        let task = TaskSpec::parse(&json!({
            "name": "Chime test notification",
            "description": format!("This is how reminders to \u{201c}{}\u{201d} look.", record.name),
            "startDate": now.to_string(),
        }))
        .map_err(NotificationError::Invalid)?;
        let message = Reminder {
            idempotency_key: format!("test-{}", random_hex()),
            occurrence: OccurrenceKey {
                task_id: TaskId::new(),
                due_at: now,
            },
            user_id: user.clone(),
            task,
            late: false,
            attempt: 1,
            recipient: Recipient::Destination {
                id: record.id.clone(),
                url: record.url.clone(),
            },
            actions: Vec::new(),
        };
        Ok(match adapter.send(&message).await {
            Ok(_) => TestOutcome {
                sent: true,
                detail: None,
            },
            Err(
                SendError::Transient { reason, .. }
                | SendError::Permanent { reason }
                | SendError::Gone { reason },
            ) => TestOutcome {
                sent: false,
                detail: Some(reason),
            },
        })
    }

    /// The `secret_token` Telegram sends with each callback of destination `id`: a keyed hash
    /// of the id, so nothing extra is stored and a leaked one opens one destination only.
    pub fn telegram_secret(&self, id: &str) -> Option<String> {
        let (_, keys) = self.callbacks.as_ref()?;
        Some(keys.blind("telegram-webhook", id))
    }

    /// Destination `id`, whoever owns it (for a callback, which knows only the id).
    pub async fn any(&self, id: &str) -> Result<DestinationRecord> {
        self.store
            .destination(None, id)
            .await?
            .ok_or(NotificationError::NotFound)
    }

    /// The Telegram channel's settings, for answering a callback.
    pub fn settings(&self, channel: Channel) -> Option<&Settings> {
        self.channels.get(&channel).map(|(settings, _)| settings)
    }

    async fn record(&self, user: &UserId, id: &str) -> Result<DestinationRecord> {
        self.store
            .destination(Some(user), id)
            .await?
            .ok_or(NotificationError::NotFound)
    }

    /// `url` read, for a channel this server runs, reaching an address its rules allow.
    async fn check_url(&self, url: &str) -> Result<DestinationUrl> {
        let refuse = |why: String| -> NotificationError {
            FieldErrors::one(
                "/url",
                Some(Value::String(chime_channels::destination::mask(url))),
                why,
            )
            .into()
        };
        let parsed = DestinationUrl::parse(url).map_err(refuse)?;
        let Some((settings, _)) = self.channels.get(&parsed.channel()) else {
            return Err(refuse(not_run(parsed.channel())));
        };
        parsed.check(settings).await.map_err(refuse)?;
        Ok(parsed)
    }

    /// Points a Telegram bot's webhook at this server, so its buttons call back; what
    /// Telegram refuses (a bad bot token) is refused at `/url`.
    async fn hook(&self, record: &DestinationRecord, parsed: &DestinationUrl) -> Result<()> {
        let (DestinationUrl::Telegram(bot), Some((public_url, _))) = (parsed, &self.callbacks)
        else {
            return Ok(());
        };
        let Some((settings, _)) = self.channels.get(&Channel::Telegram) else {
            return Ok(());
        };
        let secret = self.telegram_secret(&record.id).unwrap_or_default();
        let hook_url = format!(
            "{}/hooks/telegram/{}",
            public_url.as_str().trim_end_matches('/'),
            record.id
        );
        telegram::set_webhook(settings, bot, &hook_url, &secret)
            .await
            .map_err(|e| {
                let why = match e {
                    SendError::Transient { reason, .. } => {
                        format!("Telegram could not be reached to set the bot's webhook ({reason}); try again")
                    }
                    SendError::Permanent { reason } | SendError::Gone { reason } => {
                        format!("Telegram refused to set the bot's webhook: {reason}")
                    }
                };
                FieldErrors::one(
                    "/url",
                    Some(Value::String(chime_channels::destination::mask(&record.url))),
                    why,
                )
                .into()
            })
    }
}

const URL_WHAT: &str = "`url` is the destination's URL: ntfy://, ntfys://, gotify://, gotifys://, \
     tgram://, slack://, discord://, matrix:// or matrixs://";

fn not_run(channel: Channel) -> String {
    format!(
        "the {} channel is not enabled on this server",
        channel.as_str()
    )
}

/// `name`: 1 to [`MAX_NAME_CHARS`] characters, trimmed, without control characters.
fn read_name(body: &Value) -> Result<String> {
    let value = body.get("name");
    match value.and_then(Value::as_str).map(str::trim) {
        Some(name)
            if !name.is_empty()
                && name.chars().count() <= MAX_NAME_CHARS
                && !name.chars().any(char::is_control) =>
        {
            Ok(name.to_owned())
        }
        _ => Err(FieldErrors::one(
            "/name",
            value.cloned(),
            format!("`name` is 1 to {MAX_NAME_CHARS} characters, for people: \"Phone\", \"Family chat\""),
        )
        .into()),
    }
}

/// `url` when present: a string of at most [`MAX_URL_LEN`] characters (its value is masked
/// in the refusal: it carries a token).
fn read_url(body: &Value) -> Result<Option<String>> {
    match body.get("url") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url))
            if !url.trim().is_empty() && url.trim().chars().count() <= MAX_URL_LEN =>
        {
            Ok(Some(url.trim().to_owned()))
        }
        Some(Value::String(url)) => Err(FieldErrors::one(
            "/url",
            Some(Value::String(chime_channels::destination::mask(url))),
            format!("{URL_WHAT}, at most {MAX_URL_LEN} characters"),
        )
        .into()),
        Some(other) => Err(FieldErrors::one("/url", Some(other.clone()), URL_WHAT).into()),
    }
}

/// 64 random bits as 16 hex digits.
fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use chime_channels::destination::DestinationConfig;
    use serde_json::json;

    use super::*;
    use crate::testing::{ctx_at, store};

    fn destinations() -> (Destinations, tempfile::TempDir) {
        let (store, dir) = store();
        let settings = Settings::new(Channel::Ntfy, &DestinationConfig::default(), false, None)
            .expect("settings");
        let adapter = chime_channels::destination::adapter(settings.clone());
        let service = Destinations::new(store, ctx_at("2030-01-01T00:00:00Z"))
            .with_channel(settings, adapter);
        (service, dir)
    }

    #[tokio::test]
    async fn a_user_keeps_at_most_twenty_destinations_and_another_user_is_not_counted() {
        let (service, _dir) = destinations();
        let (alice, bob) = (
            UserId::parse("alice").expect("user"),
            UserId::parse("bob").expect("user"),
        );
        // An address literal: checked without a lookup.
        let body = json!({"name": "Phone", "url": "ntfys://1.1.1.1/chime"});
        for _ in 0..MAX_PER_USER {
            service.add(&alice, &body).await.expect("added");
        }
        assert!(matches!(
            service.add(&alice, &body).await,
            Err(NotificationError::DestinationLimit {
                limit: MAX_PER_USER
            })
        ));
        assert_eq!(
            service.list(&alice).await.expect("list").len(),
            MAX_PER_USER
        );
        service.add(&bob, &body).await.expect("bob's first");
    }

    #[tokio::test]
    async fn a_refused_url_is_echoed_masked_and_nothing_is_stored() {
        let (service, _dir) = destinations();
        let alice = UserId::parse("alice").expect("user");
        let refused = service
            .add(
                &alice,
                &json!({"name": "Phone", "url": "ntfy://tk_SECRETtoken@127.0.0.1/alerts"}),
            )
            .await
            .expect_err("a loopback server is not on the allow list");
        let NotificationError::Invalid(FieldErrors(errors)) = refused else {
            panic!("not a validation error: {refused:?}");
        };
        assert_eq!(errors[0].pointer, "/url");
        let shown = serde_json::to_string(&errors).expect("json");
        assert!(!shown.contains("SECRETtoken"), "{shown}");
        assert!(shown.contains("loopback"), "{shown}");
        assert!(service.list(&alice).await.expect("list").is_empty());
    }
}
