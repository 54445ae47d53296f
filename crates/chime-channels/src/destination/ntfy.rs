//! ntfy: a reminder published to one topic of an ntfy server (ntfy.sh or a self-hosted one),
//! with ntfy's JSON publishing (`POST /` with the topic in the body).
//!
//! URLs, as Apprise writes them:
//!
//! - `ntfy://topic`: the topic on the channel's server (`channels.ntfy.api_url`, by default
//!   `https://ntfy.sh`).
//! - `ntfy://host[:port]/topic` (http), `ntfys://host[:port]/topic` (https).
//! - `ntfys://user:password@host/topic`: HTTP Basic authentication (user name and password
//!   percent-decoded).
//! - `ntfys://tk_…@host/topic`: an access token, sent as `Authorization: Bearer`.
//! - `?priority=` `1` to `5`, or `min`, `low`, `default`, `high`, `max` (`urgent`); `?tags=a,b`.
//!
//! One topic per destination (Apprise allows several): a destination is one place, and its
//! delivery history should say whether that place got the reminder. Topics are what ntfy
//! accepts, `[-_A-Za-z0-9]{1,64}`.
//!
//! A topic without credentials is, as ntfy's documentation puts it, essentially a password:
//! anyone who knows it can read and publish. So the masked form of such a URL shows only its
//! first characters, and reasons scrub it like a token; a topic behind credentials is shown.
//!
//! The message: the task's name as title; its description and the local due time as body;
//! a click-through to the task's page and one `http` action button per reminder action
//! (`POST` to `/act/{token}`, the notification cleared once it succeeds) when Chime has a
//! public address.
//!
//! Idempotency: ntfy does not deduplicate publishes, but ntfy 2.16 and later treat messages
//! with the same `sequence_id` as one notification that each publish updates. Every attempt
//! of a delivery carries the same `sequence_id` (`msg_` + a hash of the idempotency key, within
//! ntfy's `[-_A-Za-z0-9]{1,64}`), so a retry after a lost answer replaces the first
//! notification on the subscriber's device instead of showing a second one. Older servers
//! ignore the field.
//!
//! Answers: 200 is sent, with ntfy's message `id`; 401 and 403 are permanent (the server
//! refused the credentials); 429, 408 and 5xx transient; other statuses permanent. ntfy's
//! JSON error (`{"code":42901,"http":429,"error":"limit reached: too many requests"}`)
//! gives the reason its text.

use async_trait::async_trait;
use base64::Engine;
use chime_core::event::Channel;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use super::parts::{self, Authority};
use super::{description_and_due, Answer, Secrets, Service, Settings};
use crate::{Reminder, SendError, Sent};

/// ntfy's limit on a message body: a longer one becomes an attachment, or is refused.
const MAX_MESSAGE_BYTES: usize = 4096;

/// ntfy shows at most three action buttons.
const MAX_ACTIONS: usize = 3;

const SERVICE: &str = "the ntfy URL";

/// An ntfy destination's URL, read. Its `Debug` is the masked form.
#[derive(Clone, PartialEq, Eq)]
pub struct NtfyUrl {
    /// `ntfys://`.
    secure: bool,
    /// `None`: the channel's own server.
    server: Option<Authority>,
    auth: Auth,
    topic: String,
    priority: Option<u8>,
    tags: Vec<String>,
}

/// No `Debug` outside tests: it would print the password or token.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
enum Auth {
    None,
    Basic { user: String, password: String },
    Token(String),
}

impl NtfyUrl {
    /// Reads an `ntfy://` or `ntfys://` URL (see the module's documentation).
    pub fn parse(url: &str) -> Result<NtfyUrl, String> {
        let parts = parts::split(url)?;
        let secure = match parts.scheme.as_str() {
            "ntfy" => false,
            "ntfys" => true,
            _ => return Err("an ntfy URL starts with `ntfy://` or `ntfys://`".into()),
        };
        let (server, topic) = match parts.path.as_slice() {
            [] => {
                let topic = parts::decode(parts.authority).filter(|t| is_topic(t));
                match topic {
                    Some(topic) => (None, topic),
                    None if Authority::parse(parts.authority, SERVICE).is_ok() => {
                        return Err(
                            "the ntfy URL names a server but no topic: `ntfys://host/topic`".into(),
                        )
                    }
                    None => return Err(topic_rule()),
                }
            }
            [topic] => {
                if !is_topic(topic) {
                    return Err(topic_rule());
                }
                let server = Authority::parse(parts.authority, SERVICE)?;
                (Some(server), topic.clone())
            }
            _ => {
                return Err(
                    "an ntfy destination has one topic: add one destination for each topic".into(),
                )
            }
        };
        let auth = match &server {
            Some(server) => auth(server)?,
            None => Auth::None,
        };
        let params = parts.params(&["priority", "tags"], SERVICE)?;
        let priority = params.get("priority").map(priority).transpose()?;
        let tags = params
            .get("tags")
            .map(|tags| {
                tags.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(NtfyUrl {
            secure,
            server: server.map(|s| Authority {
                user: None,
                password: None,
                ..s
            }),
            auth,
            topic,
            priority,
            tags,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The URL for people: `ntfys://tk_…@ntfy.example.com/alerts`,
    /// `ntfys://alice:…@ntfy.example.com/alerts`, `ntfy://remi…` (a topic without credentials
    /// is itself the secret).
    pub fn masked(&self) -> String {
        let scheme = if self.secure { "ntfys" } else { "ntfy" };
        let (auth, topic) = match &self.auth {
            Auth::None => (String::new(), parts::shown(&self.topic, 4)),
            Auth::Basic { user, .. } => (format!("{user}:…@"), self.topic.clone()),
            Auth::Token(_) => ("tk_…@".to_owned(), self.topic.clone()),
        };
        let place = match &self.server {
            Some(server) => format!("{auth}{}/{topic}", server.host_port()),
            None => topic,
        };
        let tags = (!self.tags.is_empty()).then(|| self.tags.join(","));
        let query = parts::query_string(&[
            ("priority", self.priority.map(|p| p.to_string())),
            ("tags", tags),
        ]);
        format!("{scheme}://{place}{query}")
    }

    /// The token, or the password and the Basic credentials it makes (a server may echo the
    /// header), or the topic when nothing else guards it.
    pub(crate) fn secrets(&self) -> Secrets {
        match &self.auth {
            Auth::None => Secrets::new([self.topic.clone()]),
            Auth::Basic { user, password } => {
                Secrets::new([password.clone(), basic_credentials(user, password)])
            }
            Auth::Token(token) => Secrets::new([token.clone()]),
        }
    }

    /// The server it publishes to.
    pub(crate) fn server(&self, settings: &Settings) -> Result<Url, String> {
        match &self.server {
            None => Ok(settings.api_url.clone()),
            Some(server) => {
                let scheme = if self.secure { "https" } else { "http" };
                Url::parse(&format!("{scheme}://{}", server.host_port()))
                    .map_err(|_| "the ntfy server's URL is not valid".to_owned())
            }
        }
    }

    fn authorization(&self) -> Option<String> {
        match &self.auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                Some(format!("Basic {}", basic_credentials(user, password)))
            }
            Auth::Token(token) => Some(format!("Bearer {token}")),
        }
    }
}

impl std::fmt::Debug for NtfyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

/// `user:password` in base64, as the `Basic` scheme sends it.
fn basic_credentials(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

fn auth(server: &Authority) -> Result<Auth, String> {
    match (server.user.as_deref(), server.password.as_deref()) {
        (None, _) => Ok(Auth::None),
        (Some(token), None) if token.starts_with("tk_") => Ok(Auth::Token(token.to_owned())),
        // `:tk_…@`, as some other tools write a token.
        (Some(""), Some(token)) if token.starts_with("tk_") => Ok(Auth::Token(token.to_owned())),
        (Some(""), _) => Err("the ntfy URL has a password but no user name".into()),
        (Some(_), None) => Err(
            "the ntfy URL has a user name without a password: write `user:password@`, or an \
             access token `tk_…@`"
                .into(),
        ),
        (Some(user), Some(password)) => Ok(Auth::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        }),
    }
}

fn is_topic(topic: &str) -> bool {
    (1..=64).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn topic_rule() -> String {
    "an ntfy topic is 1 to 64 letters, digits, `-` or `_`".into()
}

fn priority(value: &str) -> Result<u8, String> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "1" | "min" => 1,
        "2" | "low" => 2,
        "3" | "default" => 3,
        "4" | "high" => 4,
        "5" | "max" | "urgent" => 5,
        _ => {
            return Err(
                "the ntfy URL's priority is 1 to 5, or min, low, default, high or max".into(),
            )
        }
    })
}

/// The ntfy [`ChannelAdapter`].
#[derive(Debug, Clone)]
pub struct NtfyChannel {
    settings: Settings,
}

impl NtfyChannel {
    pub fn new(settings: Settings) -> Self {
        NtfyChannel { settings }
    }

    async fn publish(&self, message: &Reminder, url: &NtfyUrl) -> Result<Sent, SendError> {
        let secrets = url.secrets();
        let server = url.server(&self.settings).map_err(SendError::permanent)?;
        let endpoint = Url::parse(&format!("{}/", server.as_str().trim_end_matches('/')))
            .map_err(|_| SendError::permanent("the ntfy server's URL is not valid"))?;
        let mut headers = HeaderMap::new();
        if let Some(authorization) = url.authorization() {
            let mut value = HeaderValue::from_str(&authorization).map_err(|_| {
                SendError::permanent("the ntfy URL's credentials cannot be sent in a header")
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let body = payload(message, url, &self.settings);
        let answer = self
            .settings
            .call_json(Method::POST, &endpoint, headers, &body, &secrets)
            .await?;
        outcome(&answer, &secrets)
    }
}

#[async_trait]
impl Service for NtfyChannel {
    const CHANNEL: Channel = Channel::Ntfy;
    type Url = NtfyUrl;

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(url: &str) -> Result<NtfyUrl, String> {
        NtfyUrl::parse(url)
    }

    async fn attempt(&self, message: &Reminder, url: &NtfyUrl) -> Result<Sent, SendError> {
        self.publish(message, url).await
    }
}

/// ntfy's JSON publishing body.
fn payload(message: &Reminder, url: &NtfyUrl, settings: &Settings) -> Value {
    let text = description_and_due(message);
    let mut body = json!({
        "topic": url.topic,
        "title": message.task.name.as_str(),
        "message": cut(&text, MAX_MESSAGE_BYTES),
        "sequence_id": crate::webhook::message_id(&message.idempotency_key),
    });
    if let Some(priority) = url.priority {
        body["priority"] = priority.into();
    }
    if !url.tags.is_empty() {
        body["tags"] = url.tags.clone().into();
    }
    if let Some(link) = settings.task_url(message) {
        body["click"] = link.into();
    }
    let actions: Vec<Value> = message
        .actions
        .iter()
        .filter_map(|action| {
            let target = settings.action_url(&action.token)?;
            Some(json!({
                "action": "http",
                "label": action.label,
                "url": target,
                "method": "POST",
                "headers": {"Accept": "application/json"},
                "clear": true,
            }))
        })
        .take(MAX_ACTIONS)
        .collect();
    if !actions.is_empty() {
        body["actions"] = actions.into();
    }
    body
}

/// `text` within `max` bytes, cut at a character with `…`.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn outcome(answer: &Answer, secrets: &Secrets) -> Result<Sent, SendError> {
    let json = answer.json();
    if answer.status.is_success() {
        let id = json
            .as_ref()
            .and_then(|j| j.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Ok(Sent { provider_id: id });
    }
    let detail = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(Value::as_str);
    match answer.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let said = detail.map(|d| format!(": {d:?}")).unwrap_or_default();
            Err(SendError::permanent(secrets.scrub(&format!(
                "the ntfy server refused the credentials ({} answered {}{said})",
                answer.host, answer.status
            ))))
        }
        _ => Err(answer.failure(None, detail, secrets)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::{mask, DestinationUrl};

    fn parse(url: &str) -> NtfyUrl {
        NtfyUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn a_bare_topic_goes_to_the_channels_server() {
        let url = parse("ntfy://Reminders_42");
        assert_eq!(url.topic(), "Reminders_42");
        assert_eq!(url.server, None);
        assert_eq!(url.auth, Auth::None);
        assert!(!url.secure);
    }

    #[test]
    fn a_host_port_and_topic_are_read_with_the_scheme_choosing_https() {
        let url = parse("ntfys://ntfy.example.com:8443/alerts");
        assert!(url.secure);
        let server = url.server.as_ref().unwrap();
        assert_eq!(server.host_port(), "ntfy.example.com:8443");
        assert_eq!(url.topic(), "alerts");
        let url = parse("ntfy://192.168.1.5/alerts/");
        assert_eq!(url.server.as_ref().unwrap().host_port(), "192.168.1.5");
    }

    #[test]
    fn credentials_are_basic_or_a_token_and_percent_decoded() {
        let url = parse("ntfys://alice:p%40ss%3Aword@ntfy.example.com/alerts");
        assert_eq!(
            url.auth,
            Auth::Basic {
                user: "alice".into(),
                password: "p@ss:word".into()
            }
        );
        assert_eq!(
            url.authorization().unwrap(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("alice:p@ss:word")
            )
        );
        let url = parse("ntfys://tk_abcdefghijklmnopqrstuvwxyz123@ntfy.example.com/alerts");
        assert_eq!(
            url.auth,
            Auth::Token("tk_abcdefghijklmnopqrstuvwxyz123".into())
        );
        assert_eq!(
            url.authorization().unwrap(),
            "Bearer tk_abcdefghijklmnopqrstuvwxyz123"
        );
        let url = parse("ntfys://:tk_abc@ntfy.example.com/alerts");
        assert_eq!(url.auth, Auth::Token("tk_abc".into()));
    }

    #[test]
    fn priority_takes_numbers_and_names_and_tags_a_list() {
        for (given, expected) in [
            ("1", 1),
            ("min", 1),
            ("low", 2),
            ("3", 3),
            ("default", 3),
            ("HIGH", 4),
            ("max", 5),
            ("urgent", 5),
            ("5", 5),
        ] {
            let url = parse(&format!("ntfy://alerts?priority={given}"));
            assert_eq!(url.priority, Some(expected), "{given}");
        }
        let url = parse("ntfys://h.example/alerts?tags=warning,%20alarm_clock,,&priority=4");
        assert_eq!(url.tags, ["warning", "alarm_clock"]);
        assert_eq!(url.priority, Some(4));
    }

    #[test]
    fn refusals_say_what_is_wrong_and_never_repeat_the_url() {
        let cases = [
            ("ntfys://ntfy.example.com", "names a server but no topic"),
            ("ntfys://ntfy.example.com/", "names a server but no topic"),
            ("ntfys://h.example/a/b", "one topic"),
            ("ntfys://h.example/bad.topic", "1 to 64 letters"),
            ("ntfys://h.example/tøpic", "1 to 64 letters"),
            (
                "ntfys://h.example/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "1 to 64 letters",
            ),
            ("ntfys://h.example:0/alerts", "port must be a number"),
            ("ntfys://h.example:tk_secret/alerts", "port must be a number"),
            ("ntfys://h.example/alerts?priority=9", "priority is 1 to 5"),
            ("ntfys://h.example/alerts?click=x", "takes only the parameters"),
            ("ntfys://secretuser@h.example/alerts", "without a password"),
            ("ntfys://:secretpw@h.example/alerts", "no user name"),
            ("ntfys://h.example/al%zzerts", "broken `%` escape"),
        ];
        for (url, expected) in cases {
            let err = NtfyUrl::parse(url).expect_err(url);
            assert!(err.contains(expected), "{url}: {err}");
            for secret in ["secret", "bad.topic", "tøpic", "xxxxxxxx", "zz"] {
                assert!(!err.contains(secret), "{url}: {err}");
            }
        }
    }

    #[test]
    fn masking_keeps_the_server_user_and_guarded_topic_and_hides_the_secrets() {
        assert_eq!(
            mask("ntfys://tk_abcdefghijklmnopqrstuvwxyz123@ntfy.example.com/alerts"),
            "ntfys://tk_…@ntfy.example.com/alerts"
        );
        assert_eq!(
            mask("ntfys://alice:hunter22@ntfy.example.com:8443/alerts?priority=high&tags=a,b"),
            "ntfys://alice:…@ntfy.example.com:8443/alerts?priority=4&tags=a,b"
        );
        assert_eq!(mask("ntfy://reminders-7f3k2"), "ntfy://remi…");
        assert_eq!(
            mask("ntfy://ntfy.lan/reminders-7f3k2"),
            "ntfy://ntfy.lan/remi…"
        );
        let url = DestinationUrl::parse("ntfys://alice:hunter22@ntfy.example.com/alerts").unwrap();
        assert_eq!(url.channel(), Channel::Ntfy);
        assert!(!format!("{url:?}").contains("hunter22"));
        assert_eq!(url.secrets().scrub("x hunter22 y"), "x … y");
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_within_ntfys_limit() {
        let text = "é".repeat(3000);
        let cut = cut(&text, MAX_MESSAGE_BYTES);
        assert!(cut.len() <= MAX_MESSAGE_BYTES);
        assert!(cut.ends_with('…'));
    }
}
