//! Gotify: a reminder posted as a message of one Gotify application, on the owner's server.
//!
//! URLs, as Apprise writes them: `gotify://host[:port][/path]/apptoken` (http),
//! `gotifys://…` (https), where `/path` is where a reverse proxy serves Gotify; `?priority=`
//! `0` to `10`, or `low` (0), `moderate` (3), `normal` (5), `high` (8), `emergency` (10).
//! Without one, Gotify uses the application's default priority.
//!
//! The request is Gotify's `POST {server}{path}/message` with the application token in the
//! `X-Gotify-Key` header (never in the query, where proxies log it). The body: the task's name
//! as title, its description and the local due time as a Markdown message
//! (`client::display`), and a click-through to the task's page (`client::notification`)
//! when Chime has a public address. Gotify has no action buttons.
//!
//! Idempotency: Gotify has no idempotency key or deduplication, so a retry after a lost
//! answer can show the message twice; every attempt is otherwise the same message.
//!
//! Answers: 200 is sent, with Gotify's message `id`; 401 and 403 are permanent (the server
//! refused the token); 429, 408 and 5xx transient; other statuses permanent. Gotify's JSON
//! error (`{"error":"Unauthorized","errorCode":401,"errorDescription":"…"}`) gives the
//! reason its text.

use async_trait::async_trait;
use chime_core::event::Channel;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use super::parts::{self, Authority};
use super::{description_and_due, Answer, Secrets, Service, Settings};
use crate::{Reminder, SendError, Sent};

const SERVICE: &str = "the Gotify URL";

/// The header that carries the application token.
pub const TOKEN_HEADER: &str = "X-Gotify-Key";

/// A Gotify destination's URL, read. Its `Debug` is the masked form.
#[derive(Clone, PartialEq, Eq)]
pub struct GotifyUrl {
    /// `gotifys://`.
    secure: bool,
    server: Authority,
    /// Where Gotify is served on the host: empty, or `/` + segments.
    path: String,
    token: String,
    priority: Option<u8>,
}

impl GotifyUrl {
    /// Reads a `gotify://` or `gotifys://` URL (see the module's documentation).
    pub fn parse(url: &str) -> Result<GotifyUrl, String> {
        let parts = parts::split(url)?;
        let secure = match parts.scheme.as_str() {
            "gotify" => false,
            "gotifys" => true,
            _ => return Err("a Gotify URL starts with `gotify://` or `gotifys://`".into()),
        };
        let server = Authority::parse(parts.authority, SERVICE)?;
        if server.user.is_some() {
            return Err(
                "a Gotify URL has no user name or password: the application token is its last \
                 path segment"
                    .into(),
            );
        }
        let Some((token, path)) = parts.path.split_last() else {
            return Err(
                "the Gotify URL has no application token: `gotifys://host/apptoken`".into(),
            );
        };
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(
                "the Gotify application token has characters Gotify tokens never have \
                 (letters, digits, `.`, `-` and `_`)"
                    .into(),
            );
        }
        let path: String = path
            .iter()
            .map(|segment| {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect();
                format!("/{encoded}")
            })
            .collect();
        let params = parts.params(&["priority"], SERVICE)?;
        let priority = params.get("priority").map(priority).transpose()?;
        Ok(GotifyUrl {
            secure,
            server,
            path,
            token: token.clone(),
            priority,
        })
    }

    /// The URL for people: `gotifys://gotify.example.com/AbC…`.
    pub fn masked(&self) -> String {
        let scheme = if self.secure { "gotifys" } else { "gotify" };
        let query = parts::query_string(&[("priority", self.priority.map(|p| p.to_string()))]);
        format!(
            "{scheme}://{}{}/{}{query}",
            self.server.host_port(),
            self.path,
            parts::shown(&self.token, 3)
        )
    }

    /// The application token.
    pub(crate) fn secrets(&self) -> Secrets {
        Secrets::new([self.token.clone()])
    }

    /// Gotify's base URL (`https://host:port/path`).
    pub(crate) fn server(&self) -> Result<Url, String> {
        let scheme = if self.secure { "https" } else { "http" };
        Url::parse(&format!(
            "{scheme}://{}{}",
            self.server.host_port(),
            self.path
        ))
        .map_err(|_| "the Gotify server's URL is not valid".to_owned())
    }
}

impl std::fmt::Debug for GotifyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

fn priority(value: &str) -> Result<u8, String> {
    let named = match value.to_ascii_lowercase().as_str() {
        "low" => Some(0),
        "moderate" => Some(3),
        "normal" => Some(5),
        "high" => Some(8),
        "emergency" => Some(10),
        _ => None,
    };
    named
        .or_else(|| value.parse::<u8>().ok().filter(|p| *p <= 10))
        .ok_or_else(|| {
            "the Gotify URL's priority is 0 to 10, or low, moderate, normal, high or emergency"
                .into()
        })
}

/// The Gotify [`ChannelAdapter`].
#[derive(Debug, Clone)]
pub struct GotifyChannel {
    settings: Settings,
}

impl GotifyChannel {
    pub fn new(settings: Settings) -> Self {
        GotifyChannel { settings }
    }

    async fn post(&self, message: &Reminder, url: &GotifyUrl) -> Result<Sent, SendError> {
        let secrets = url.secrets();
        let server = url.server().map_err(SendError::permanent)?;
        let endpoint = Url::parse(&format!(
            "{}/message",
            server.as_str().trim_end_matches('/')
        ))
        .map_err(|_| SendError::permanent("the Gotify server's URL is not valid"))?;
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(&url.token)
            .map_err(|_| SendError::permanent("the Gotify token cannot be sent in a header"))?;
        key.set_sensitive(true);
        headers.insert(TOKEN_HEADER, key);
        let body = payload(message, url, &self.settings);
        let answer = self
            .settings
            .call_json(Method::POST, &endpoint, headers, &body, &secrets)
            .await?;
        outcome(&answer, &secrets)
    }
}

#[async_trait]
impl Service for GotifyChannel {
    const CHANNEL: Channel = Channel::Gotify;
    type Url = GotifyUrl;

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(url: &str) -> Result<GotifyUrl, String> {
        GotifyUrl::parse(url)
    }

    async fn attempt(&self, message: &Reminder, url: &GotifyUrl) -> Result<Sent, SendError> {
        self.post(message, url).await
    }
}

/// Gotify's message body.
fn payload(message: &Reminder, url: &GotifyUrl, settings: &Settings) -> Value {
    let text = description_and_due(message);
    let mut extras = json!({
        "client::display": {"contentType": "text/markdown"},
    });
    if let Some(link) = settings.task_url(message) {
        extras["client::notification"] = json!({"click": {"url": link}});
    }
    let mut body = json!({
        "title": message.task.name.as_str(),
        "message": text,
        "extras": extras,
    });
    if let Some(priority) = url.priority {
        body["priority"] = priority.into();
    }
    body
}

fn outcome(answer: &Answer, secrets: &Secrets) -> Result<Sent, SendError> {
    let json = answer.json();
    if answer.status.is_success() {
        let id = json
            .as_ref()
            .and_then(|j| j.get("id"))
            .and_then(|id| match id {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                _ => None,
            });
        return Ok(Sent { provider_id: id });
    }
    let detail = json.as_ref().and_then(|j| {
        let text = |key: &str| j.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        text("errorDescription").or_else(|| text("error"))
    });
    match answer.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let said = detail.map(|d| format!(": {d:?}")).unwrap_or_default();
            Err(SendError::permanent(secrets.scrub(&format!(
                "the Gotify server refused the application token ({} answered {}{said})",
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

    fn parse(url: &str) -> GotifyUrl {
        GotifyUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn host_port_path_and_token_are_read() {
        let url = parse("gotify://gotify.example.com/AbCdEf.123-_x");
        assert!(!url.secure);
        assert_eq!(url.token, "AbCdEf.123-_x");
        assert_eq!(url.path, "");
        assert_eq!(url.server().unwrap().as_str(), "http://gotify.example.com/");

        let url = parse("gotifys://example.com:8443/push/gotify/AbCdEf/?priority=8");
        assert!(url.secure);
        assert_eq!(url.path, "/push/gotify");
        assert_eq!(url.priority, Some(8));
        assert_eq!(
            url.server().unwrap().as_str(),
            "https://example.com:8443/push/gotify"
        );
    }

    #[test]
    fn priority_takes_zero_to_ten_and_apprises_names() {
        for (given, expected) in [
            ("0", 0),
            ("10", 10),
            ("low", 0),
            ("moderate", 3),
            ("Normal", 5),
            ("high", 8),
            ("emergency", 10),
        ] {
            let url = parse(&format!("gotify://h.example/AbC?priority={given}"));
            assert_eq!(url.priority, Some(expected), "{given}");
        }
    }

    #[test]
    fn refusals_say_what_is_wrong_and_never_repeat_the_token() {
        let cases = [
            ("gotifys://h.example", "no application token"),
            ("gotifys://h.example/", "no application token"),
            (
                "gotifys://h.example:70000/AsecretT",
                "port must be a number",
            ),
            (
                "gotifys://h.example/Asecret%24T",
                "characters Gotify tokens never have",
            ),
            (
                "gotifys://h.example/AsecretT?priority=11",
                "priority is 0 to 10",
            ),
            (
                "gotifys://h.example/AsecretT?token=x",
                "takes only the parameters",
            ),
            (
                "gotifys://u:p@h.example/AsecretT",
                "no user name or password",
            ),
            ("gotifys:///AsecretT", "no server name"),
        ];
        for (url, expected) in cases {
            let err = GotifyUrl::parse(url).expect_err(url);
            assert!(err.contains(expected), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
        }
    }

    #[test]
    fn masking_keeps_the_server_and_a_short_token_prefix() {
        assert_eq!(
            mask("gotifys://gotify.example.com/AbCdEfGhIjKlMnO"),
            "gotifys://gotify.example.com/AbC…"
        );
        assert_eq!(
            mask("gotify://10.0.0.2:8080/gotify/AbCdEfGhIjKlMnO?priority=high"),
            "gotify://10.0.0.2:8080/gotify/AbC…?priority=8"
        );
        let url = DestinationUrl::parse("gotifys://g.example/AbCdEfGhIjKlMnO").unwrap();
        assert_eq!(url.channel(), Channel::Gotify);
        assert!(!format!("{url:?}").contains("AbCdEfGhIjKlMnO"));
    }
}
