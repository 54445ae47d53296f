//! Destinations: the chat and push services self-hosters already use (ntfy, Gotify,
//! Telegram, Slack, Discord, Matrix), each reached through one of the owner's destinations, a
//! named URL in the syntax the self-hosting world uses for them (Apprise's):
//!
//! | channel | URL |
//! |---|---|
//! | ntfy | `ntfy://topic` (on `channels.ntfy.api_url`), `ntfy://[user:password@ \| tk_token@]host[:port]/topic`, `ntfys://…` (https); `?priority=`, `?tags=` |
//! | Gotify | `gotify://host[:port][/path]/apptoken`, `gotifys://…`; `?priority=` |
//! | Telegram | `tgram://bottoken/chat_id` (a numeric id or a channel's `@username`) |
//! | Slack | `slack://T…/B…/secret` (an incoming webhook's three parts) |
//! | Discord | `discord://webhook_id/webhook_token` |
//! | Matrix | `matrix://user:password@host[:port]/!room:server` or `…/#alias:server`, `matrixs://…`; `matrixs://token@host/…` with an access token |
//!
//! A destination is one place: where Apprise accepts several topics or chats in one URL, a
//! destination takes one, so its delivery history says whether that place got the reminder.
//!
//! Every module beside this one speaks one service's documented HTTP API. What they share is
//! here: reading a URL into its service's form ([`DestinationUrl`]), masking its secrets for
//! people and logs ([`mask`]), and one request path ([`Settings::call`]) that checks where a
//! request goes (the webhook channel's SSRF rules, with a per-channel allow list for servers
//! on private networks), pins the connection to the checked addresses, bounds the attempt by
//! the channel's timeout, and reads the answer with a bounded body.
//!
//! Adapters never log a URL, a token or an answer's body; every reason they return goes
//! through [`Secrets::scrub`] first, so a service that echoes a token does not leak it into a
//! delivery's history.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chime_core::event::Channel;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::webhook::{resolve, Reach, TargetError};
use crate::{ChannelAdapter, Recipient, Reminder, SendError, Sent};

pub mod discord;
pub mod gotify;
pub mod matrix;
pub mod ntfy;
mod parts;
pub mod slack;
pub mod telegram;

/// The schemes [`DestinationUrl::parse`] reads, for the reason that refuses another.
const SCHEMES: &[&str] = &[
    "ntfy", "ntfys", "gotify", "gotifys", "tgram", "slack", "discord", "matrix", "matrixs",
];

/// A destination's URL, read into its service's form: every part checked, so an adapter
/// only has to speak the service's API. Its `Debug` shows the [masked](Self::masked) form.
#[derive(Clone, PartialEq, Eq)]
pub enum DestinationUrl {
    Ntfy(ntfy::NtfyUrl),
    Gotify(gotify::GotifyUrl),
    Telegram(telegram::TelegramUrl),
    Slack(slack::SlackUrl),
    Discord(discord::DiscordUrl),
    Matrix(matrix::MatrixUrl),
}

impl DestinationUrl {
    /// Reads `url` (see the table above). A refusal says what is wrong for people and never
    /// repeats any part of the URL, which holds the service's token.
    pub fn parse(url: &str) -> Result<DestinationUrl, String> {
        match parts::scheme(url)?.as_str() {
            "ntfy" | "ntfys" => ntfy::NtfyUrl::parse(url).map(DestinationUrl::Ntfy),
            "gotify" | "gotifys" => gotify::GotifyUrl::parse(url).map(DestinationUrl::Gotify),
            "tgram" => telegram::TelegramUrl::parse(url).map(DestinationUrl::Telegram),
            "slack" => slack::SlackUrl::parse(&read(url)?).map(DestinationUrl::Slack),
            "discord" => discord::DiscordUrl::parse(&read(url)?).map(DestinationUrl::Discord),
            "matrix" | "matrixs" => {
                matrix::MatrixUrl::parse(&read(url)?).map(DestinationUrl::Matrix)
            }
            // A webhook URL as Slack or Discord gives it, as Apprise takes it too.
            "https" => {
                let parsed = read(url)?;
                match parsed.host_str().map(str::to_ascii_lowercase).as_deref() {
                    Some("hooks.slack.com") => {
                        slack::SlackUrl::parse(&parsed).map(DestinationUrl::Slack)
                    }
                    Some("discord.com" | "discordapp.com") => {
                        discord::DiscordUrl::parse(&parsed).map(DestinationUrl::Discord)
                    }
                    _ => Err(unknown_scheme()),
                }
            }
            _ => Err(unknown_scheme()),
        }
    }

    /// The channel that delivers to it.
    pub fn channel(&self) -> Channel {
        match self {
            DestinationUrl::Ntfy(_) => Channel::Ntfy,
            DestinationUrl::Gotify(_) => Channel::Gotify,
            DestinationUrl::Telegram(_) => Channel::Telegram,
            DestinationUrl::Slack(_) => Channel::Slack,
            DestinationUrl::Discord(_) => Channel::Discord,
            DestinationUrl::Matrix(_) => Channel::Matrix,
        }
    }

    /// The URL for people, every secret replaced by `…` after at most a short prefix:
    /// `ntfys://tk_…@ntfy.example.com/alerts`, `tgram://123456789…/-1001234`.
    pub fn masked(&self) -> String {
        match self {
            DestinationUrl::Ntfy(url) => url.masked(),
            DestinationUrl::Gotify(url) => url.masked(),
            DestinationUrl::Telegram(url) => url.masked(),
            DestinationUrl::Slack(url) => url.masked(),
            DestinationUrl::Discord(url) => url.masked(),
            DestinationUrl::Matrix(url) => url.masked(),
        }
    }

    /// Its tokens and passwords, to scrub from any text that could hold them.
    pub fn secrets(&self) -> Secrets {
        match self {
            DestinationUrl::Ntfy(url) => url.secrets(),
            DestinationUrl::Gotify(url) => url.secrets(),
            DestinationUrl::Telegram(url) => url.secrets(),
            DestinationUrl::Slack(url) => url.secrets(),
            DestinationUrl::Discord(url) => url.secrets(),
            DestinationUrl::Matrix(url) => url.secrets(),
        }
    }

    /// Whether `settings`' channel may send to it: the server its requests go to passes the
    /// channel's SSRF rules (public, or on the channel's allow list) and resolves now. For the
    /// API when a destination is saved; `Err` says why not, for people.
    pub async fn check(&self, settings: &Settings) -> Result<(), String> {
        let (server, noun) = match self {
            DestinationUrl::Ntfy(url) => (url.server(settings)?, "the ntfy server"),
            DestinationUrl::Gotify(url) => (url.server()?, "the Gotify server"),
            DestinationUrl::Telegram(_) => (settings.api_url.clone(), "the Telegram Bot API"),
            DestinationUrl::Slack(url) => (url.endpoint(settings), "Slack's webhook API"),
            DestinationUrl::Discord(url) => (url.endpoint(settings), "Discord's webhook API"),
            DestinationUrl::Matrix(url) => (url.endpoint(settings), "the Matrix homeserver"),
        };
        resolve(server.as_str(), &settings.reach, noun)
            .await
            .map(|_| ())
            .map_err(|e| self.secrets().scrub(&e.into_reason()))
    }
}

impl std::fmt::Debug for DestinationUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

/// `url` read as a URL, for the services whose modules take one; the refusal says what is
/// wrong without repeating it.
fn read(url: &str) -> Result<Url, String> {
    Url::parse(url.trim()).map_err(|e| format!("the destination URL cannot be read: {e}"))
}

/// The refusal of a URL no service reads.
fn unknown_scheme() -> String {
    format!(
        "a destination URL starts with one of {}",
        SCHEMES
            .iter()
            .map(|s| format!("`{s}://`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `url` for people and logs ([`DestinationUrl::masked`]), or a fixed text when it cannot be
/// read (which then says nothing of what it holds).
pub fn mask(url: &str) -> String {
    DestinationUrl::parse(url)
        .map(|d| d.masked())
        .unwrap_or_else(|_| "(a destination URL that cannot be read)".to_owned())
}

/// The adapter of `settings`' channel.
pub fn adapter(settings: Settings) -> Arc<dyn ChannelAdapter> {
    match settings.channel {
        Channel::Ntfy => Arc::new(ntfy::NtfyChannel::new(settings)),
        Channel::Gotify => Arc::new(gotify::GotifyChannel::new(settings)),
        Channel::Telegram => Arc::new(telegram::TelegramChannel::new(settings)),
        Channel::Slack => Arc::new(slack::SlackChannel::new(settings)),
        Channel::Discord => Arc::new(discord::DiscordChannel::new(settings)),
        Channel::Matrix => Arc::new(matrix::MatrixChannel::new(settings)),
        _ => Arc::new(NoAdapter(settings)),
    }
}

/// What [`adapter`] gives a channel without one of its own here: every attempt fails,
/// permanently, saying so.
struct NoAdapter(Settings);

#[async_trait]
impl ChannelAdapter for NoAdapter {
    fn kind(&self) -> Channel {
        self.0.channel
    }

    fn timeout(&self) -> Duration {
        self.0.timeout
    }

    async fn send(&self, _message: &Reminder) -> Result<Sent, SendError> {
        Err(SendError::permanent(format!(
            "the {} channel has no destination adapter",
            self.0.channel.as_str()
        )))
    }
}

/// One destination service: how its URLs are read and how one attempt goes. Every service
/// is a [`ChannelAdapter`] through it and shares the rest: the recipient's URL, one bound on
/// the whole attempt (the channel's timeout, however many requests it takes), and a log
/// line per attempt that names neither the URL nor the reason (the reason names the owner's
/// server; it is kept on the delivery).
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// The channel it delivers on.
    const CHANNEL: Channel;
    /// Its URL, read.
    type Url: Send + Sync;

    fn settings(&self) -> &Settings;

    /// Reads a destination URL of this service (the reason never repeats a secret).
    fn read(url: &str) -> Result<Self::Url, String>;

    /// One attempt to deliver `message` to `url`.
    async fn attempt(&self, message: &Reminder, url: &Self::Url) -> Result<Sent, SendError>;
}

#[async_trait]
impl<S: Service> ChannelAdapter for S {
    fn kind(&self) -> Channel {
        S::CHANNEL
    }

    fn timeout(&self) -> Duration {
        self.settings().timeout
    }

    #[tracing::instrument(
        name = "destination_send",
        skip_all,
        fields(channel = S::CHANNEL.as_str(), occurrence = %message.occurrence, attempt = message.attempt),
    )]
    async fn send(&self, message: &Reminder) -> Result<Sent, SendError> {
        let url = recipient_url(message, S::CHANNEL)?;
        let url = S::read(url).map_err(SendError::permanent)?;
        let timeout = self.settings().timeout;
        let result = match tokio::time::timeout(timeout, self.attempt(message, &url)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::transient(format!(
                "no answer within {} s",
                timeout.as_secs()
            ))),
        };
        match &result {
            Ok(_) => tracing::debug!("destination message sent"),
            Err(_) => tracing::info!("destination message not sent"),
        }
        result
    }
}

/// The destination URL `message` goes to, when its recipient is a destination.
pub(crate) fn recipient_url(message: &Reminder, channel: Channel) -> Result<&str, SendError> {
    match &message.recipient {
        Recipient::Destination { url, .. } => Ok(url),
        _ => Err(SendError::permanent(format!(
            "the {} channel was given a recipient that is not a destination",
            channel.as_str()
        ))),
    }
}

/// The task's description, if any, a blank line, and [`due_line`]: the body of a message
/// whose title is the task's name.
pub(crate) fn description_and_due(message: &Reminder) -> String {
    match &message.task.description {
        Some(description) => format!("{description}\n\n{}", due_line(message)),
        None => due_line(message),
    }
}

/// `Due Monday 7 December 2026, 09:00 (Europe/Berlin)`, and ` (late)` when it is.
pub(crate) fn due_line(message: &Reminder) -> String {
    let late = if message.late { " (late)" } else { "" };
    format!("Due {}{late}", crate::local_due_time(message))
}

/// The most of an answer's body an adapter reads (services answer in a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How much of a failing answer goes into a reason.
const SNIPPET_CHARS: usize = 200;

/// `channels.<ntfy|gotify|telegram|slack|discord|matrix>` in the configuration. Every
/// destination channel is on by default: it needs nothing from the operator, since each
/// user brings their own server, bot or webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationConfig {
    /// Private networks and hosts this channel may reach (`["192.168.0.0/16", "ntfy.lan"]`):
    /// a self-hosted ntfy, Gotify or Matrix server on the LAN. Empty by default: public
    /// addresses only.
    pub allow: Vec<String>,
    /// The service's API for a service with one public host (Telegram
    /// `https://api.telegram.org`, Slack `https://hooks.slack.com`, Discord
    /// `https://discord.com`), or ntfy's server for `ntfy://topic` URLs without a host
    /// (`https://ntfy.sh`): a local Bot API server, a proxy, a test.
    pub api_url: Option<String>,
    /// Bound on one whole attempt, 1 to 300 seconds.
    pub timeout_seconds: u64,
}

impl Default for DestinationConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            api_url: None,
            timeout_seconds: 10,
        }
    }
}

/// What one destination channel's adapter runs with, read from its [`DestinationConfig`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) channel: Channel,
    pub(crate) reach: Reach,
    /// The service's API base (no trailing slash), for services with one public host.
    pub(crate) api_url: Url,
    pub(crate) timeout: Duration,
    pub(crate) user_agent: String,
    /// Chime's public address (`https://chime.example.com`), where buttons that act
    /// (`/act/{token}`) and a chat service's callbacks go; `None`: messages carry no buttons.
    pub(crate) public_url: Option<Url>,
}

impl Settings {
    /// `channel`'s settings; `allow_private` is the server-wide development switch
    /// (`channels.webhook.allow_private`), which lets every channel reach every address.
    pub fn new(
        channel: Channel,
        config: &DestinationConfig,
        allow_private: bool,
        public_url: Option<Url>,
    ) -> Result<Settings, String> {
        let name = channel.as_str();
        if !(1..=300).contains(&config.timeout_seconds) {
            return Err(format!(
                "channels.{name}.timeout_seconds must be between 1 and 300, not {}",
                config.timeout_seconds
            ));
        }
        let reach = Reach::allowing(&config.allow, &format!("channels.{name}.allow"))?
            .with_private(allow_private);
        let api_url = match &config.api_url {
            Some(url) => url.as_str(),
            None => default_api_url(channel)
                .ok_or_else(|| format!("channels.{name} is not a destination channel"))?,
        };
        let api_url = Url::parse(api_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| format!("channels.{name}.api_url is not an http(s) URL: {api_url:?}"))?;
        Ok(Settings {
            channel,
            reach,
            api_url,
            timeout: Duration::from_secs(config.timeout_seconds),
            user_agent: format!("chime/{}", env!("CARGO_PKG_VERSION")),
            public_url,
        })
    }

    /// The URL of `/act/{token}` on Chime's public address, when it has one.
    pub(crate) fn action_url(&self, token: &str) -> Option<String> {
        let base = self.public_url.as_ref()?;
        Some(format!(
            "{}/act/{token}",
            base.as_str().trim_end_matches('/')
        ))
    }

    /// The task's page in the web app (`{public_url}/tasks/{id}`), when Chime has a public
    /// address.
    pub(crate) fn task_url(&self, message: &Reminder) -> Option<String> {
        let base = self.public_url.as_ref()?;
        Some(format!(
            "{}/tasks/{}",
            base.as_str().trim_end_matches('/'),
            message.occurrence.task_id
        ))
    }

    /// One request: checks where `url` goes (refused or malformed: permanent; a host that
    /// does not resolve now: transient), connects only to the checked addresses, follows no
    /// redirect, and reads at most 64 KiB of the answer, all within the channel's timeout.
    /// Connection failures and timeouts are transient. `secrets` are scrubbed from every
    /// reason.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        secrets: &Secrets,
    ) -> Result<Answer, SendError> {
        let attempt = self.attempt(method, url, headers, body);
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result.map_err(|e| secrets.scrub_error(e)),
            Err(_) => Err(SendError::transient(format!(
                "no answer from {} within {} s",
                url.host_str().unwrap_or("the server"),
                self.timeout.as_secs()
            ))),
        }
    }

    /// [`Settings::call`] with `body` as JSON (`Content-Type: application/json`), the shape
    /// every destination service takes.
    pub(crate) async fn call_json(
        &self,
        method: Method,
        url: &Url,
        mut headers: HeaderMap,
        body: &serde_json::Value,
        secrets: &Secrets,
    ) -> Result<Answer, SendError> {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        self.call(
            method,
            url,
            headers,
            Some(body.to_string().into_bytes()),
            secrets,
        )
        .await
    }

    async fn attempt(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, SendError> {
        let noun = format!("the {} server's URL", self.channel.as_str());
        let target = resolve(url.as_str(), &self.reach, &noun)
            .await
            .map_err(|e| match e {
                TargetError::Unresolved(r) => SendError::transient(r),
                TargetError::Invalid(r) | TargetError::Refused(r) => SendError::permanent(r),
            })?;
        let host = target.host.clone();
        let client = target.client(self.timeout, &self.user_agent).map_err(|e| {
            SendError::transient(format!(
                "could not set up the HTTP client: {}",
                crate::error_chain(e)
            ))
        })?;
        let mut request = client.request(method, target.url.clone()).headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        let mut response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                SendError::transient(format!(
                    "no answer from {host} within {} s",
                    self.timeout.as_secs()
                ))
            } else if e.is_builder() {
                SendError::permanent(format!(
                    "could not build the request to {host}: {}",
                    crate::error_chain(e)
                ))
            } else {
                SendError::transient(format!(
                    "the request to {host} failed: {}",
                    crate::error_chain(e)
                ))
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while body.len() < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                // A 2xx whose body broke off is still delivered; the adapter decides.
                Err(_) => break,
            }
        }
        body.truncate(MAX_ANSWER_BYTES);
        Ok(Answer {
            status,
            headers,
            body,
            host,
        })
    }
}

/// The API base of a service with one public host.
fn default_api_url(channel: Channel) -> Option<&'static str> {
    Some(match channel {
        Channel::Ntfy => "https://ntfy.sh",
        Channel::Telegram => "https://api.telegram.org",
        Channel::Slack => "https://hooks.slack.com",
        Channel::Discord => "https://discord.com",
        // Gotify and Matrix servers are always the URL's own host.
        Channel::Gotify | Channel::Matrix => "https://localhost",
        _ => return None,
    })
}

/// A service's answer, read.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    /// The host as written in the URL (what reasons name).
    pub(crate) host: String,
}

impl Answer {
    /// The body as JSON, if it is.
    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `: "<the start of the body>"`, or nothing when it is empty.
    pub(crate) fn snippet(&self) -> String {
        let text: String = String::from_utf8_lossy(&self.body)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(SNIPPET_CHARS)
            .collect();
        let text = text.trim();
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text:?}")
        }
    }

    /// The usual reading of a failure: 429, 408 and 5xx transient (with `retry_after`, or the
    /// `Retry-After` header when the service gives none in its body), the rest permanent;
    /// the reason names the host, the status and the start of the answer (`detail`, when
    /// the adapter read the service's own error text, replaces the raw body).
    pub(crate) fn failure(
        &self,
        retry_after: Option<Duration>,
        detail: Option<&str>,
        secrets: &Secrets,
    ) -> SendError {
        let status = self.status;
        let said = match detail {
            Some(detail) => format!(": {detail:?}"),
            None => self.snippet(),
        };
        let reason = secrets.scrub(&format!("{} answered {status}{said}", self.host));
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            SendError::Transient {
                reason,
                retry_after: retry_after
                    .or_else(|| crate::retry_after(&self.headers, jiff::Timestamp::now())),
            }
        } else if status.is_redirection() {
            SendError::permanent(format!(
                "{reason}: redirects are not followed, since one could lead to an internal \
                 address; use the URL it points to"
            ))
        } else {
            SendError::permanent(reason)
        }
    }
}

/// The secrets of one destination (tokens, passwords), removed from every reason. Its
/// `Debug` shows how many it holds, never them.
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({})", self.0.len())
    }
}

impl Secrets {
    pub(crate) fn new<I, S>(secrets: I) -> Secrets
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Secrets(
            secrets
                .into_iter()
                .map(Into::into)
                .filter(|s| s.len() >= 3)
                .collect(),
        )
    }

    /// `text` with each secret (also percent-encoded) replaced by `…`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.0 {
            let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            for form in [secret.as_str(), encoded.as_str()] {
                if text.contains(form) {
                    text = text.replace(form, "…");
                }
            }
        }
        text
    }

    pub(crate) fn scrub_error(&self, error: SendError) -> SendError {
        match error {
            SendError::Transient {
                reason,
                retry_after,
            } => SendError::Transient {
                reason: self.scrub(&reason),
                retry_after,
            },
            SendError::Permanent { reason } => SendError::Permanent {
                reason: self.scrub(&reason),
            },
            SendError::Gone { reason } => SendError::Gone {
                reason: self.scrub(&reason),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_plain_and_percent_encoded() {
        let secrets = Secrets::new(["123:ABC/def", "x"]);
        assert_eq!(
            secrets.scrub("bot 123:ABC/def and 123%3AABC%2Fdef, x stays"),
            "bot … and …, x stays"
        );
    }

    #[test]
    fn settings_check_the_timeout_the_allow_list_and_the_api_url() {
        let ok = DestinationConfig::default();
        assert!(Settings::new(Channel::Telegram, &ok, false, None).is_ok());
        let zero = DestinationConfig {
            timeout_seconds: 0,
            ..DestinationConfig::default()
        };
        assert!(Settings::new(Channel::Ntfy, &zero, false, None)
            .unwrap_err()
            .contains("channels.ntfy.timeout_seconds"));
        let bad_allow = DestinationConfig {
            allow: vec!["10.0.0.0/99".to_owned()],
            ..DestinationConfig::default()
        };
        assert!(Settings::new(Channel::Gotify, &bad_allow, false, None)
            .unwrap_err()
            .contains("channels.gotify.allow"));
        let bad_api = DestinationConfig {
            api_url: Some("ftp://x".to_owned()),
            ..DestinationConfig::default()
        };
        assert!(Settings::new(Channel::Slack, &bad_api, false, None)
            .unwrap_err()
            .contains("channels.slack.api_url"));
        assert!(Settings::new(Channel::Email, &ok, false, None).is_err());
    }

    #[test]
    fn action_urls_join_the_public_address() {
        let url = Url::parse("https://chime.example.com/").unwrap();
        let settings = Settings::new(
            Channel::Ntfy,
            &DestinationConfig::default(),
            false,
            Some(url),
        )
        .unwrap();
        assert_eq!(
            settings.action_url("tok").as_deref(),
            Some("https://chime.example.com/act/tok")
        );
    }
}
