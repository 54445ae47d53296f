//! Discord: a reminder posted through one of the owner's channel webhooks.
//!
//! The URL is Apprise's: `discord://webhook_id/webhook_token`, optionally with a bot name
//! (`discord://botname@webhook_id/webhook_token`, sent as `username`, which a webhook may set
//! per message) and `?thread=ID` (post into a thread of the webhook's channel). Discord's own
//! `https://discord.com/api/webhooks/ID/TOKEN` (or `discordapp.com`) is accepted too, as
//! Apprise does.
//!
//! One attempt is one `POST {api_url}/api/webhooks/{id}/{token}?wait=true` (`api_url`: by
//! default `https://discord.com`) with a JSON body: `content`, a short line that
//! notifications show; one embed with the task name as its title, the description, the due
//! instant as its `timestamp` (each reader's client shows it in their own zone) and the local
//! due time in the task's zone as its footer, and links for the reminder's actions when Chime
//! has a public address; and `allowed_mentions: {parse: []}`, so no text in a task can ping
//! `@everyone`, a role or a user. User text is escaped for Discord's markdown.
//!
//! How answers map to outcomes:
//!
//! - 200 (with `wait=true` Discord answers the message): sent, the message `id` as provider id.
//! - 429 (`{"message", "retry_after": seconds as a float, "global"}`, and `Retry-After`) and
//!   5xx: transient, with `retry_after` (else the header).
//! - 404 (`{"code": 10015, "message": "Unknown Webhook"}`): permanent, the webhook was deleted;
//!   401 (a wrong token) and other 4xx: permanent, with Discord's message.
//!
//! Discord has no idempotency key for webhooks: the `nonce` with `enforce_nonce` that dedupes
//! messages exists for bots' Create Message only, not for Execute Webhook. A retry after an
//! attempt whose answer was lost can post the reminder twice.

use std::time::Duration;

use async_trait::async_trait;
use chime_core::event::Channel;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use super::{Secrets, Service, Settings};
use crate::{local_due_time, Reminder, SendError, Sent};

/// Discord's limits on a message's `content`, an embed's title and its description.
const MAX_CONTENT_CHARS: usize = 2000;
const MAX_TITLE_CHARS: usize = 256;
const MAX_DESCRIPTION_CHARS: usize = 4096;

/// The embed's colour: green, or amber when the reminder is late.
const COLOUR: u32 = 0x1a7f37;
const LATE_COLOUR: u32 = 0xd4a72c;

/// A Discord webhook, read from its URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DiscordUrl {
    /// A snowflake (digits).
    id: String,
    token: String,
    botname: Option<String>,
    thread: Option<String>,
}

impl std::fmt::Debug for DiscordUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl DiscordUrl {
    /// `discord://[botname@]webhook_id/webhook_token[?thread=ID]`, or
    /// `https://discord.com/api/webhooks/ID/TOKEN`.
    pub fn parse(url: &Url) -> Result<DiscordUrl, String> {
        let (parts, botname) = match url.scheme() {
            "discord" => {
                let mut parts = vec![decode(url.host_str().unwrap_or_default())];
                parts.extend(segments(url));
                (parts, decode(url.username()))
            }
            "https" | "http"
                if matches!(url.host_str(), Some("discord.com" | "discordapp.com")) =>
            {
                let parts = segments(url);
                match parts.as_slice() {
                    [api, webhooks, rest @ ..] if api == "api" && webhooks == "webhooks" => {
                        (rest.to_vec(), String::new())
                    }
                    _ => {
                        return Err("a Discord URL on discord.com must be a webhook \
                                    (https://discord.com/api/webhooks/ID/TOKEN)"
                            .to_owned())
                    }
                }
            }
            _ => return Err("a Discord URL starts with discord://".to_owned()),
        };
        let [id, token] = parts.as_slice() else {
            return Err(
                "a Discord webhook URL has two parts: discord://webhook_id/webhook_token"
                    .to_owned(),
            );
        };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err("the Discord webhook id must be digits".to_owned());
        }
        if token.is_empty()
            || !token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(
                "the Discord webhook token must be letters, digits, '-' and '_'".to_owned(),
            );
        }
        let thread = url
            .query_pairs()
            .find(|(k, _)| k == "thread")
            .map(|(_, v)| v.into_owned());
        if let Some(thread) = &thread {
            if thread.is_empty() || !thread.chars().all(|c| c.is_ascii_digit()) {
                return Err("the Discord thread id must be digits".to_owned());
            }
        }
        Ok(DiscordUrl {
            id: id.clone(),
            token: token.clone(),
            botname: Some(botname).filter(|b| !b.is_empty()),
            thread,
        })
    }

    /// `discord://417429632418316298/JHZ7…`: the id stays (it names the webhook), the token
    /// is cut to a hint.
    pub fn masked(&self) -> String {
        let bot = match &self.botname {
            Some(name) => format!("{}@", encode(name)),
            None => String::new(),
        };
        let thread = match &self.thread {
            Some(thread) => format!("?thread={thread}"),
            None => String::new(),
        };
        format!("discord://{bot}{}/{}{thread}", self.id, hint(&self.token))
    }

    pub(crate) fn secrets(&self) -> Secrets {
        Secrets::new([self.token.as_str()])
    }

    /// Where requests go, without the token: `{api_url}/api/webhooks/{id}/`.
    pub fn endpoint(&self, settings: &Settings) -> Url {
        let mut url = settings.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "webhooks", &self.id, ""]);
        }
        url
    }

    fn post_url(&self, settings: &Settings) -> Url {
        let mut url = settings.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "webhooks", &self.id, &self.token]);
        }
        url.query_pairs_mut().append_pair("wait", "true");
        if let Some(thread) = &self.thread {
            url.query_pairs_mut().append_pair("thread_id", thread);
        }
        url
    }
}

/// The Discord [`ChannelAdapter`].
#[derive(Debug, Clone)]
pub struct DiscordChannel {
    settings: Settings,
}

impl DiscordChannel {
    pub fn new(settings: Settings) -> DiscordChannel {
        DiscordChannel { settings }
    }
}

#[async_trait]
impl Service for DiscordChannel {
    const CHANNEL: Channel = Channel::Discord;
    type Url = DiscordUrl;

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(url: &str) -> Result<DiscordUrl, String> {
        Url::parse(url)
            .map_err(|_| "the destination's URL is not a URL".to_owned())
            .and_then(|u| DiscordUrl::parse(&u))
    }

    async fn attempt(&self, message: &Reminder, url: &DiscordUrl) -> Result<Sent, SendError> {
        let secrets = url.secrets();
        let body = payload(message, url.botname.as_deref(), &self.settings);
        let answer = self
            .settings
            .call_json(
                Method::POST,
                &url.post_url(&self.settings),
                HeaderMap::new(),
                &body,
                &secrets,
            )
            .await?;
        let json = answer.json();
        if answer.status.is_success() {
            let id = json
                .as_ref()
                .and_then(|m| m.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            return Ok(Sent { provider_id: id });
        }
        let said = |key: &str| json.as_ref().and_then(|j| j.get(key));
        let retry_after = said("retry_after")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let detail = said("message").and_then(Value::as_str).map(|m| {
            match said("code").and_then(Value::as_u64) {
                Some(code) if code != 0 => format!("{m} (code {code})"),
                _ => m.to_owned(),
            }
        });
        let failure = answer.failure(retry_after, detail.as_deref(), &secrets);
        if answer.status == StatusCode::NOT_FOUND {
            if let SendError::Permanent { reason } = failure {
                return Err(SendError::permanent(format!(
                    "{reason}: the webhook was deleted; update or remove the destination"
                )));
            }
        }
        Err(failure)
    }
}

/// The JSON body.
fn payload(message: &Reminder, botname: Option<&str>, settings: &Settings) -> Value {
    let name = message.task.name.as_str();
    let due = local_due_time(message);
    let lead = if message.late {
        "Late reminder"
    } else {
        "Reminder"
    };
    let mut description = String::new();
    if message.late {
        description.push_str("**Late**: Chime could not send this reminder at its due time.\n\n");
    }
    if let Some(text) = &message.task.description {
        description.push_str(&escape(text));
    }
    let links: Vec<String> = message
        .actions
        .iter()
        .filter_map(|action| {
            let url = settings.action_url(&action.token)?;
            Some(format!("[{}]({url})", escape(&action.label)))
        })
        .collect();
    // Cut the user's text, never the links.
    let links = links.join(" · ");
    let room = MAX_DESCRIPTION_CHARS.saturating_sub(links.chars().count() + 2);
    let mut description = clip(&description, room);
    if !links.is_empty() {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&links);
    }
    let mut embed = json!({
        "title": clip(&escape(name), MAX_TITLE_CHARS),
        "timestamp": message.occurrence.due_at.to_string(),
        "footer": {"text": format!("Due {due}")},
        "color": if message.late { LATE_COLOUR } else { COLOUR },
    });
    if !description.is_empty() {
        embed["description"] = json!(description);
    }
    let mut body = json!({
        "content": clip(&format!("{lead}: {}", escape(name)), MAX_CONTENT_CHARS),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    });
    if let Some(botname) = botname {
        body["username"] = json!(botname);
    }
    body
}

/// User text as literal text in Discord's markdown: a backslash before every character that
/// could start formatting, a mention or a link.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '[' | ']' | '@' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` in at most `max` characters, ending with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// The start of a secret, enough to tell two apart: `abcd…`.
fn hint(secret: &str) -> String {
    let start: String = secret.chars().take(4).collect();
    format!("{start}…")
}

/// The path's segments, percent-decoded, without empty ones.
fn segments(url: &Url) -> Vec<String> {
    url.path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(decode).collect())
        .unwrap_or_default()
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o33MyqU344Qpgv7YTpadV_js";

    fn parse(url: &str) -> Result<DiscordUrl, String> {
        DiscordUrl::parse(&Url::parse(url).unwrap())
    }

    #[test]
    fn the_id_and_token_form_keeps_the_token_as_written() {
        let url = parse(&format!("discord://417429632418316298/{TOKEN}")).unwrap();
        assert_eq!(url.id, "417429632418316298");
        assert_eq!(url.token, TOKEN);
        assert_eq!(url.botname, None);
        assert_eq!(url.thread, None);
    }

    #[test]
    fn a_bot_name_and_a_thread_are_kept() {
        let url = parse(&format!(
            "discord://Chime%20Bot@417429632418316298/{TOKEN}/?thread=1234"
        ))
        .unwrap();
        assert_eq!(url.botname.as_deref(), Some("Chime Bot"));
        assert_eq!(url.thread.as_deref(), Some("1234"));
    }

    #[test]
    fn discords_own_webhook_url_is_accepted() {
        let short = parse(&format!("discord://417429632418316298/{TOKEN}")).unwrap();
        for host in ["discord.com", "discordapp.com"] {
            let url = parse(&format!(
                "https://{host}/api/webhooks/417429632418316298/{TOKEN}"
            ))
            .unwrap();
            assert_eq!(url, short);
        }
    }

    #[test]
    fn other_forms_are_refused_with_a_reason_that_does_not_repeat_the_token() {
        for (url, says) in [
            ("discord://417429632418316298".to_owned(), "two parts"),
            (
                format!("discord://417429632418316298/{TOKEN}/more"),
                "two parts",
            ),
            (format!("discord://webhook/{TOKEN}"), "id must be digits"),
            (
                format!("discord://417429632418316298/{TOKEN}%21"),
                "token must be",
            ),
            (format!("discord://1/{TOKEN}?thread=general"), "thread id"),
            (
                format!("https://discord.com/channels/1/{TOKEN}"),
                "must be a webhook",
            ),
            (
                format!("https://example.com/api/webhooks/1/{TOKEN}"),
                "discord://",
            ),
        ] {
            let reason = parse(&url).unwrap_err();
            assert!(reason.contains(says), "{url}: {reason}");
            assert!(!reason.contains(&TOKEN[..8]), "{url}: {reason}");
        }
    }

    #[test]
    fn masking_keeps_the_id_and_hints_at_the_token() {
        let url = parse(&format!(
            "discord://Chime@417429632418316298/{TOKEN}?thread=9"
        ))
        .unwrap();
        assert_eq!(
            url.masked(),
            "discord://Chime@417429632418316298/JHZ7…?thread=9"
        );
        assert_eq!(format!("{url:?}"), url.masked());
        assert_eq!(url.secrets().scrub(&format!("bad {TOKEN}")), "bad …");
    }

    #[test]
    fn the_endpoint_is_the_api_host_without_the_token() {
        let config = super::super::DestinationConfig::default();
        let settings = Settings::new(Channel::Discord, &config, false, None).unwrap();
        let url = parse(&format!("discord://417429632418316298/{TOKEN}?thread=9")).unwrap();
        assert_eq!(
            url.endpoint(&settings).as_str(),
            "https://discord.com/api/webhooks/417429632418316298/"
        );
        assert_eq!(
            url.post_url(&settings).as_str(),
            format!(
                "https://discord.com/api/webhooks/417429632418316298/{TOKEN}?wait=true&thread_id=9"
            )
        );
    }

    #[test]
    fn user_text_cannot_format_mention_or_link() {
        assert_eq!(
            escape("@everyone **hi** [x](y) <@1>"),
            r"\@everyone \*\*hi\*\* \[x\](y) \<\@1\>"
        );
    }
}
