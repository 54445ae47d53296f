//! Telegram: a reminder sent by the owner's bot to one chat, through the Bot API
//! (`channels.telegram.api_url`, by default `https://api.telegram.org`).
//!
//! URLs, as Apprise writes them: `tgram://bottoken/chat_id`, with the token BotFather gives
//! (`123456789:AA…`, an optional `bot` before it) and the chat as its numeric id (negative for
//! groups and channels: `-1001234567890`) or a public channel's `@username`. One chat per
//! destination (Apprise allows several): a destination is one place, and its delivery history
//! should say whether that place got the reminder. Add a destination for each chat.
//!
//! The message (`sendMessage`, plain text, so a task's name needs no escaping): the task's
//! name, its description, the local due time with `(late)` when it is, and a link to the
//! task's page when Chime has a public address. Each reminder action with a short form
//! ([`ReminderAction::callback`](crate::ReminderAction)) becomes an inline keyboard button
//! whose `callback_data` is that short form; Telegram delivers the press to Chime's webhook
//! ([`set_webhook`]) as an update, which [`callback_query`] reads, and the HTTP layer
//! acknowledges it with [`answer_callback`].
//!
//! Idempotency: the Bot API has no idempotency key or deduplication for `sendMessage`, so a
//! retry after a lost answer can show the message twice.
//!
//! Answers (`{"ok":true,"result":{"message_id":N}}` is sent, with that id): 429 is transient
//! after Telegram's `parameters.retry_after`; 401 (a bad token), 400 (`chat not found`, a group
//! that became a supergroup) and 403 (`bot was blocked by the user`) are permanent; 5xx
//! transient. The bot token travels in the request's path; no reason ever holds it (reasons
//! name the host only and are scrubbed).

use std::time::Duration;

use async_trait::async_trait;
use chime_core::event::Channel;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use super::parts;
use super::{due_line, Answer, Secrets, Service, Settings};
use crate::{Reminder, SendError, Sent};

/// Telegram's limit on a message's text.
const MAX_TEXT_CHARS: usize = 4096;

/// The header Telegram sends with each webhook call, holding [`set_webhook`]'s secret.
pub const SECRET_TOKEN_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// A Telegram destination's URL, read. Its `Debug` is the masked form.
#[derive(Clone, PartialEq, Eq)]
pub struct TelegramUrl {
    token: String,
    chat: TelegramChat,
}

/// The chat a Telegram destination sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelegramChat {
    /// A user's, a group's (negative) or a channel's (`-100…`) numeric id.
    Id(i64),
    /// A public channel's `@username`, with its `@`.
    Username(String),
}

impl TelegramChat {
    fn to_json(&self) -> Value {
        match self {
            TelegramChat::Id(id) => (*id).into(),
            TelegramChat::Username(name) => name.as_str().into(),
        }
    }
}

impl std::fmt::Display for TelegramChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TelegramChat::Id(id) => write!(f, "{id}"),
            TelegramChat::Username(name) => f.write_str(name),
        }
    }
}

impl TelegramUrl {
    /// Reads a `tgram://` URL (see the module's documentation).
    pub fn parse(url: &str) -> Result<TelegramUrl, String> {
        let parts = parts::split(url)?;
        if parts.scheme != "tgram" {
            return Err("a Telegram URL starts with `tgram://`".into());
        }
        parts.params(&[], "the Telegram URL")?;
        let token = parts::decode(parts.authority)
            .ok_or("the Telegram URL has a broken `%` escape in its bot token")?;
        let token = match token.strip_prefix("bot") {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest.to_owned(),
            _ => token,
        };
        if token.is_empty() {
            return Err("the Telegram URL has no bot token: `tgram://bottoken/chat_id`".into());
        }
        if !is_bot_token(&token) {
            return Err(
                "the Telegram bot token is not of the form BotFather gives, digits, `:`, then \
                 letters, digits, `-` and `_`"
                    .into(),
            );
        }
        let chat = match parts.path.as_slice() {
            [] => {
                return Err(
                    "the Telegram URL has no chat: `tgram://bottoken/chat_id`, where the chat \
                     is a numeric id or a channel's @username"
                        .into(),
                )
            }
            [chat] => chat_of(chat)?,
            _ => {
                return Err(
                    "a Telegram destination sends to one chat: add one destination for each \
                     chat"
                        .into(),
                )
            }
        };
        Ok(TelegramUrl { token, chat })
    }

    pub fn chat(&self) -> &TelegramChat {
        &self.chat
    }

    /// The bot's own user id, the token's public part (before its `:`): which bot a webhook
    /// call is for.
    pub fn bot_id(&self) -> &str {
        self.token.split(':').next().unwrap_or_default()
    }

    /// The URL for people: `tgram://123456789…/-1001234567890`.
    pub fn masked(&self) -> String {
        format!("tgram://{}…/{}", self.bot_id(), self.chat)
    }

    /// The bot token.
    pub(crate) fn secrets(&self) -> Secrets {
        Secrets::new([self.token.clone()])
    }

    /// `{api_url}/bot{token}/{method}`.
    fn method_url(&self, settings: &Settings, method: &str) -> Result<Url, SendError> {
        Url::parse(&format!(
            "{}/bot{}/{method}",
            settings.api_url.as_str().trim_end_matches('/'),
            self.token
        ))
        .map_err(|_| SendError::permanent("the Telegram Bot API's URL is not valid"))
    }
}

impl std::fmt::Debug for TelegramUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

fn is_bot_token(token: &str) -> bool {
    let Some((id, secret)) = token.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && !secret.is_empty()
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn chat_of(chat: &str) -> Result<TelegramChat, String> {
    let digits = chat.strip_prefix('-').unwrap_or(chat);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return chat
            .parse::<i64>()
            .map(TelegramChat::Id)
            .map_err(|_| "the Telegram chat id is too long for a chat id".to_owned());
    }
    // Apprise writes a channel's username with or without its `@`.
    let name = chat.strip_prefix('@').unwrap_or(chat);
    if (5..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Ok(TelegramChat::Username(format!("@{name}")));
    }
    Err(
        "the Telegram chat is a numeric id (`-1001234567890`) or a channel's @username (5 to 32 \
         letters, digits and `_`)"
            .into(),
    )
}

/// The Telegram [`ChannelAdapter`].
#[derive(Debug, Clone)]
pub struct TelegramChannel {
    settings: Settings,
}

impl TelegramChannel {
    pub fn new(settings: Settings) -> Self {
        TelegramChannel { settings }
    }
}

#[async_trait]
impl Service for TelegramChannel {
    const CHANNEL: Channel = Channel::Telegram;
    type Url = TelegramUrl;

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(url: &str) -> Result<TelegramUrl, String> {
        TelegramUrl::parse(url)
    }

    async fn attempt(&self, message: &Reminder, url: &TelegramUrl) -> Result<Sent, SendError> {
        let mut body = json!({
            "chat_id": url.chat.to_json(),
            "text": text(message, &self.settings),
        });
        // A press comes back through the bot's webhook, which Chime sets only when it has a
        // public address: without one, a button would only spin.
        let pressable = self.settings.public_url.is_some();
        let buttons: Vec<Value> = message
            .actions
            .iter()
            .filter(|_| pressable)
            .filter_map(|action| {
                let data = action.callback.as_ref()?;
                Some(json!([{"text": action.label, "callback_data": data}]))
            })
            .collect();
        if !buttons.is_empty() {
            body["reply_markup"] = json!({ "inline_keyboard": buttons });
        }
        let result = call(&self.settings, url, "sendMessage", &body)
            .await
            .map(|result| Sent {
                provider_id: result
                    .get("message_id")
                    .and_then(Value::as_i64)
                    .map(|id| id.to_string()),
            });
        result
    }
}

/// Points the bot's updates at `hook_url` (Chime's webhook for Telegram): Telegram then calls
/// it with every button press (`allowed_updates: ["callback_query"]`), each call carrying
/// `secret_token` in the [`SECRET_TOKEN_HEADER`] header. `secret_token` is 1 to 256 letters,
/// digits, `_` and `-`.
pub async fn set_webhook(
    settings: &Settings,
    url: &TelegramUrl,
    hook_url: &str,
    secret_token: &str,
) -> Result<(), SendError> {
    if !(1..=256).contains(&secret_token.len())
        || !secret_token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(SendError::permanent(
            "a Telegram webhook's secret token is 1 to 256 letters, digits, `_` and `-`",
        ));
    }
    let body = json!({
        "url": hook_url,
        "secret_token": secret_token,
        "allowed_updates": ["callback_query"],
    });
    call(settings, url, "setWebhook", &body).await.map(|_| ())
}

/// Acknowledges a button press (which stops the button's spinner), showing `text` to the
/// person briefly (empty: nothing).
pub async fn answer_callback(
    settings: &Settings,
    url: &TelegramUrl,
    callback_query_id: &str,
    text: &str,
) -> Result<(), SendError> {
    let mut body = json!({ "callback_query_id": callback_query_id });
    if !text.is_empty() {
        body["text"] = text.into();
    }
    call(settings, url, "answerCallbackQuery", &body)
        .await
        .map(|_| ())
}

/// A button press, read from an incoming update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackQuery {
    /// What [`answer_callback`] acknowledges.
    pub id: String,
    /// The button's `callback_data`: a reminder action's short form.
    pub data: String,
    /// The chat of the message whose button was pressed; `None` when Telegram does not say
    /// (a message sent through inline mode).
    pub chat_id: Option<i64>,
}

/// The button press an update carries (`{"update_id":…,"callback_query":{"id","data",
/// "message":{"chat":{"id"}}}}`), or `None` for any other update or a press without data.
pub fn callback_query(update: &Value) -> Option<CallbackQuery> {
    let query = update.get("callback_query")?;
    let id = query.get("id")?.as_str()?.to_owned();
    let data = query.get("data")?.as_str()?.to_owned();
    let chat_id = query
        .get("message")
        .and_then(|m| m.get("chat"))
        .and_then(|c| c.get("id"))
        .and_then(Value::as_i64);
    Some(CallbackQuery { id, data, chat_id })
}

/// The message's text, within Telegram's limit.
fn text(message: &Reminder, settings: &Settings) -> String {
    let mut lines = vec![message.task.name.as_str().to_owned()];
    if let Some(description) = &message.task.description {
        lines.push(description.clone());
    }
    lines.push(due_line(message));
    let mut text = lines.join("\n\n");
    // The link last, so a long description is what a cut shortens.
    let link = settings
        .task_url(message)
        .map(|l| format!("\n\n{l}"))
        .unwrap_or_default();
    let room = MAX_TEXT_CHARS - link.chars().count();
    if text.chars().count() > room {
        text = text.chars().take(room - 1).collect();
        text.push('…');
    }
    text + &link
}

/// One Bot API call: its `result` when Telegram answers `ok`.
async fn call(
    settings: &Settings,
    url: &TelegramUrl,
    method: &str,
    body: &Value,
) -> Result<Value, SendError> {
    let secrets = url.secrets();
    let endpoint = url.method_url(settings, method)?;
    let answer = settings
        .call_json(Method::POST, &endpoint, HeaderMap::new(), body, &secrets)
        .await?;
    outcome(&answer, &secrets)
}

fn outcome(answer: &Answer, secrets: &Secrets) -> Result<Value, SendError> {
    let json = answer.json();
    let ok = json
        .as_ref()
        .and_then(|j| j.get("ok"))
        .and_then(Value::as_bool);
    if answer.status.is_success() && ok != Some(false) {
        return Ok(json
            .and_then(|mut j| j.get_mut("result").map(Value::take))
            .unwrap_or(Value::Null));
    }
    let detail = json
        .as_ref()
        .and_then(|j| j.get("description"))
        .and_then(Value::as_str);
    let parameters = json.as_ref().and_then(|j| j.get("parameters"));
    let retry_after = parameters
        .and_then(|p| p.get("retry_after"))
        .and_then(Value::as_u64)
        .map(Duration::from_secs);
    let code = json
        .as_ref()
        .and_then(|j| j.get("error_code"))
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(answer.status);
    let said = detail.map(|d| format!(": {d:?}")).unwrap_or_default();
    let permanent = |what: String| {
        Err(SendError::permanent(secrets.scrub(&format!(
            "{what} ({} answered {code}{said})",
            answer.host
        ))))
    };
    if let Some(chat) = parameters
        .and_then(|p| p.get("migrate_to_chat_id"))
        .and_then(Value::as_i64)
    {
        return permanent(format!(
            "the group became a supergroup whose chat id is {chat}: update the destination"
        ));
    }
    match code {
        StatusCode::UNAUTHORIZED => permanent("Telegram refused the bot token".into()),
        StatusCode::FORBIDDEN => {
            permanent("the bot may not write to the chat (blocked, or not a member)".into())
        }
        _ => Err(answer.failure(retry_after, detail, secrets)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::{mask, DestinationUrl};

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    fn parse(url: &str) -> TelegramUrl {
        TelegramUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn a_bot_token_and_a_numeric_or_named_chat_are_read() {
        let url = parse(&format!("tgram://{TOKEN}/-1001234567890"));
        assert_eq!(url.token, TOKEN);
        assert_eq!(url.chat(), &TelegramChat::Id(-1_001_234_567_890));
        assert_eq!(url.bot_id(), "123456789");
        let url = parse(&format!("tgram://bot{TOKEN}/12345/"));
        assert_eq!(url.token, TOKEN);
        assert_eq!(url.chat(), &TelegramChat::Id(12345));
        let url = parse(&format!("tgram://{TOKEN}/@chime_alerts"));
        assert_eq!(url.chat(), &TelegramChat::Username("@chime_alerts".into()));
        let url = parse(&format!("tgram://{TOKEN}/chime_alerts"));
        assert_eq!(url.chat(), &TelegramChat::Username("@chime_alerts".into()));
        let url = parse("tgram://123456789:AAH%2Dx/1");
        assert_eq!(url.token, "123456789:AAH-x");
    }

    #[test]
    fn refusals_say_what_is_wrong_and_never_repeat_the_token() {
        let secret = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
        let cases = [
            ("tgram:///12345".to_owned(), "no bot token"),
            (format!("tgram://{TOKEN}"), "no chat"),
            (format!("tgram://{TOKEN}/"), "no chat"),
            (format!("tgram://{TOKEN}/1/2"), "one chat"),
            (
                format!("tgram://{secret}/1"),
                "not of the form BotFather gives",
            ),
            (
                format!("tgram://123:{secret}!/1"),
                "not of the form BotFather gives",
            ),
            (format!("tgram://{TOKEN}/ab"), "numeric id"),
            (format!("tgram://{TOKEN}/-"), "numeric id"),
            (format!("tgram://{TOKEN}/99999999999999999999"), "too long"),
            (
                format!("tgram://{TOKEN}/1?silent=yes"),
                "takes no parameters",
            ),
        ];
        for (url, expected) in cases {
            let err = TelegramUrl::parse(&url).expect_err(&url);
            assert!(err.contains(expected), "{url}: {err}");
            assert!(!err.contains(secret), "{url}: {err}");
        }
    }

    #[test]
    fn masking_keeps_the_bot_id_and_the_chat() {
        assert_eq!(
            mask(&format!("tgram://{TOKEN}/-1001234")),
            "tgram://123456789…/-1001234"
        );
        assert_eq!(
            mask(&format!("tgram://{TOKEN}/@chime_alerts")),
            "tgram://123456789…/@chime_alerts"
        );
        let url = DestinationUrl::parse(&format!("tgram://{TOKEN}/1")).unwrap();
        assert_eq!(url.channel(), Channel::Telegram);
        assert!(!format!("{url:?}").contains("AAH"));
        assert_eq!(url.secrets().scrub(&format!("/bot{TOKEN}/x")), "/bot…/x");
    }

    #[test]
    fn an_unknown_scheme_is_refused_with_the_accepted_ones_and_without_the_url() {
        let err = DestinationUrl::parse("tgramm://123:secret/1").unwrap_err();
        assert!(err.contains("`tgram://`"), "{err}");
        assert!(err.contains("`ntfys://`"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = DestinationUrl::parse("123:secret").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            mask("123:secret"),
            "(a destination URL that cannot be read)"
        );
    }

    #[test]
    fn a_callback_query_update_is_read_and_other_updates_are_not() {
        let update = json!({
            "update_id": 10000,
            "callback_query": {
                "id": "4382bfdwdsb323b2d9",
                "from": {"id": 1111111, "is_bot": false, "first_name": "Alice"},
                "message": {"message_id": 42, "date": 1, "chat": {"id": -1001234, "type": "supergroup"}},
                "chat_instance": "-1",
                "data": "d.abc123",
            }
        });
        assert_eq!(
            callback_query(&update),
            Some(CallbackQuery {
                id: "4382bfdwdsb323b2d9".into(),
                data: "d.abc123".into(),
                chat_id: Some(-1001234),
            })
        );
        let inline = json!({"update_id": 1, "callback_query": {"id": "q", "data": "x", "inline_message_id": "i"}});
        assert_eq!(callback_query(&inline).unwrap().chat_id, None);
        let message = json!({"update_id": 1, "message": {"message_id": 1, "text": "hi"}});
        assert_eq!(callback_query(&message), None);
        let game = json!({"update_id": 1, "callback_query": {"id": "q", "game_short_name": "g"}});
        assert_eq!(callback_query(&game), None);
    }
}
