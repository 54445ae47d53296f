//! Slack: a reminder posted through one of the owner's incoming webhooks.
//!
//! The URL is Apprise's: `slack://TokenA/TokenB/TokenC`, the three parts of the webhook's
//! `https://hooks.slack.com/services/T…/B…/…` (that URL itself is accepted too, as Apprise
//! does), optionally with a bot name, `slack://botname@TokenA/TokenB/TokenC`, sent as
//! `username` (Slack honours it for legacy webhooks; app webhooks post under the app's name).
//! Apprise's other Slack forms are refused with a reason: bot tokens (`slack://xoxb-…`) and
//! channels after the tokens (an incoming webhook posts to the channel chosen when it was
//! created), workflow webhooks, and Slack's GovSlack host (`channels.slack.api_url` names one
//! API host for every destination).
//!
//! One attempt is one `POST {api_url}/services/{A}/{B}/{C}` (`api_url`: by default
//! `https://hooks.slack.com`) with a JSON body: `text`, the fallback for notifications, and
//! `blocks`, a Block Kit section with the task name in bold, its description and the local
//! due time, a context block saying the reminder is late when it is, and link buttons for the
//! reminder's actions when Chime has a public address (each opens Chime's confirmation page).
//! User text is escaped for `mrkdwn` (`&`, `<`, `>`), so a task cannot mention `@channel` or
//! forge a link.
//!
//! Slack answers `200 ok`, and a failure as plain text (`invalid_payload`, `invalid_token`,
//! `action_prohibited`, `no_service`, `channel_not_found`, `channel_is_archived`, …): 429 and
//! 5xx are transient (429 with its `Retry-After`), every other status permanent with Slack's
//! text in the reason. Incoming webhooks have no idempotency key, so a retry after an attempt
//! whose answer was lost (a timeout after Slack had posted) posts the reminder twice.

use async_trait::async_trait;
use chime_core::event::Channel;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

use super::{Secrets, Service, Settings};
use crate::{local_due_time, Reminder, SendError, Sent};

/// Block Kit's limit on a section's text.
const MAX_SECTION_CHARS: usize = 3000;

/// The host of Slack's own webhook URLs, accepted as they are.
const HOOKS_HOST: &str = "hooks.slack.com";

/// A Slack incoming webhook, read from its URL.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackUrl {
    /// `T…`: the workspace.
    team: String,
    /// `B…`: the webhook.
    hook: String,
    /// The webhook's secret part.
    secret: String,
    botname: Option<String>,
}

impl std::fmt::Debug for SlackUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl SlackUrl {
    /// `slack://[botname@]TokenA/TokenB/TokenC` or `https://hooks.slack.com/services/A/B/C`.
    pub fn parse(url: &Url) -> Result<SlackUrl, String> {
        let (mut parts, botname) = match url.scheme() {
            "slack" => {
                let mut parts = vec![decode(url.host_str().unwrap_or_default())];
                parts.extend(segments(url));
                (parts, decode(url.username()))
            }
            "https" | "http" if url.host_str() == Some(HOOKS_HOST) => {
                let mut parts = segments(url);
                if parts.first().map(String::as_str) != Some("services") {
                    return Err(
                        "a Slack URL on hooks.slack.com must be an incoming webhook \
                         (https://hooks.slack.com/services/T…/B…/…)"
                            .to_owned(),
                    );
                }
                parts.remove(0);
                (parts, String::new())
            }
            "https" | "http" if url.host_str() == Some("hooks.slack-gov.com") => {
                return Err("GovSlack webhooks need channels.slack.api_url set to \
                            https://hooks.slack-gov.com; use the slack://TokenA/TokenB/TokenC \
                            form then"
                    .to_owned())
            }
            _ => return Err("a Slack URL starts with slack://".to_owned()),
        };
        // `slack://A/B/C/#general`: Apprise's channel, which a URL parser reads as a fragment.
        if let Some(channel) = url.fragment().filter(|f| !f.is_empty()) {
            parts.push(format!("#{channel}"));
        }
        if parts.first().is_some_and(|p| p.starts_with("xox")) {
            return Err(
                "Slack bot tokens (xoxb-…, xoxp-…) are not supported: create an \
                 incoming webhook and use slack://TokenA/TokenB/TokenC"
                    .to_owned(),
            );
        }
        match parts.as_slice() {
            [team, hook, secret] => {
                for (part, name) in [(team, "TokenA"), (hook, "TokenB"), (secret, "TokenC")] {
                    if part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
                        return Err(format!(
                            "the Slack webhook's {name} must be letters and digits"
                        ));
                    }
                }
                Ok(SlackUrl {
                    team: team.clone(),
                    hook: hook.clone(),
                    secret: secret.clone(),
                    botname: Some(botname).filter(|b| !b.is_empty()),
                })
            }
            [_, _, _, ..] => Err(
                "an incoming webhook posts to the channel chosen when it was created: \
                 remove the channels after slack://TokenA/TokenB/TokenC"
                    .to_owned(),
            ),
            _ => {
                Err("a Slack webhook URL has three parts: slack://TokenA/TokenB/TokenC".to_owned())
            }
        }
    }

    /// `slack://T0123/B0456/abcd…`: the workspace and webhook ids stay (they name the
    /// webhook; posting needs the third part), the secret is cut to a hint.
    pub fn masked(&self) -> String {
        let bot = match &self.botname {
            Some(name) => format!("{}@", encode(name)),
            None => String::new(),
        };
        format!(
            "slack://{bot}{}/{}/{}",
            self.team,
            self.hook,
            hint(&self.secret)
        )
    }

    pub(crate) fn secrets(&self) -> Secrets {
        Secrets::new([self.secret.as_str()])
    }

    /// Where requests go, without the secret: `{api_url}/services/{A}/{B}/`.
    pub fn endpoint(&self, settings: &Settings) -> Url {
        let mut url = settings.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["services", &self.team, &self.hook, ""]);
        }
        url
    }

    fn post_url(&self, settings: &Settings) -> Url {
        let mut url = settings.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["services", &self.team, &self.hook, &self.secret]);
        }
        url
    }
}

/// The Slack [`ChannelAdapter`].
#[derive(Debug, Clone)]
pub struct SlackChannel {
    settings: Settings,
}

impl SlackChannel {
    pub fn new(settings: Settings) -> SlackChannel {
        SlackChannel { settings }
    }
}

#[async_trait]
impl Service for SlackChannel {
    const CHANNEL: Channel = Channel::Slack;
    type Url = SlackUrl;

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(url: &str) -> Result<SlackUrl, String> {
        Url::parse(url)
            .map_err(|_| "the destination's URL is not a URL".to_owned())
            .and_then(|u| SlackUrl::parse(&u))
    }

    async fn attempt(&self, message: &Reminder, url: &SlackUrl) -> Result<Sent, SendError> {
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
        if answer.status.is_success() {
            return Ok(Sent { provider_id: None });
        }
        let text = String::from_utf8_lossy(&answer.body).trim().to_owned();
        let detail = Some(text).filter(|t| !t.is_empty() && t.len() <= 200);
        Err(answer.failure(None, detail.as_deref(), &secrets))
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
    let mut section = format!("*{}*\n", escape(name));
    if let Some(description) = &message.task.description {
        section.push_str(&escape(description));
        section.push('\n');
    }
    section.push_str(&format!("Due {}", escape(&due)));
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": clip(&section, MAX_SECTION_CHARS)},
    })];
    if message.late {
        blocks.push(json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": "Late: Chime could not send this reminder at its due time.",
            }],
        }));
    }
    let buttons: Vec<Value> = message
        .actions
        .iter()
        .filter_map(|action| {
            let url = settings.action_url(&action.token)?;
            Some(json!({
                "type": "button",
                "action_id": action.kind,
                "text": {"type": "plain_text", "text": clip(&action.label, 75)},
                "url": url,
            }))
        })
        .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    let mut body = json!({
        "text": escape(&format!("{lead}: {name}, due {due}")),
        "blocks": blocks,
    });
    if let Some(botname) = botname {
        body["username"] = json!(botname);
    }
    body
}

/// User text for `mrkdwn`: Slack's three control characters as entities.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` in at most `max` characters, ending with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max - 1).collect();
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

    fn parse(url: &str) -> Result<SlackUrl, String> {
        SlackUrl::parse(&Url::parse(url).unwrap())
    }

    #[test]
    fn the_three_token_form_keeps_each_part_as_written() {
        let url = parse("slack://T0ABCDEF/B0GHIJKL/xYz0123AbC").unwrap();
        assert_eq!(url.team, "T0ABCDEF");
        assert_eq!(url.hook, "B0GHIJKL");
        assert_eq!(url.secret, "xYz0123AbC");
        assert_eq!(url.botname, None);
        let trailing = parse("slack://T0ABCDEF/B0GHIJKL/xYz0123AbC/").unwrap();
        assert_eq!(trailing, url);
    }

    #[test]
    fn a_bot_name_before_the_tokens_is_kept() {
        let url = parse("slack://Chime%20Bot@T0ABCDEF/B0GHIJKL/xYz0123AbC").unwrap();
        assert_eq!(url.botname.as_deref(), Some("Chime Bot"));
        assert_eq!(url.secret, "xYz0123AbC");
    }

    #[test]
    fn slacks_own_webhook_url_is_accepted() {
        let url = parse("https://hooks.slack.com/services/T0ABCDEF/B0GHIJKL/xYz0123AbC").unwrap();
        assert_eq!(url, parse("slack://T0ABCDEF/B0GHIJKL/xYz0123AbC").unwrap());
    }

    #[test]
    fn other_forms_are_refused_with_a_reason_that_does_not_repeat_the_secret() {
        for (url, says) in [
            ("slack://T0ABCDEF/B0GHIJKL", "three parts"),
            (
                "slack://T0ABCDEF/B0GHIJKL/xYz0123AbC/general",
                "channel chosen",
            ),
            (
                "slack://T0ABCDEF/B0GHIJKL/xYz0123AbC/#general",
                "channel chosen",
            ),
            ("slack://xoxb-1234-5678-xYz0123AbC/general", "bot tokens"),
            (
                "slack://T0ABCDEF/B0GHIJKL/xYz0123-AbC",
                "letters and digits",
            ),
            (
                "https://hooks.slack.com/workflows/T0/F0/xYz0123AbC",
                "incoming webhook",
            ),
            (
                "https://hooks.slack-gov.com/services/T0/B0/xYz0123AbC",
                "GovSlack",
            ),
            ("https://example.com/services/T0/B0/xYz0123AbC", "slack://"),
            ("discord://1/xYz0123AbC", "slack://"),
        ] {
            let reason = parse(url).unwrap_err();
            assert!(reason.contains(says), "{url}: {reason}");
            assert!(!reason.contains("xYz0123"), "{url}: {reason}");
        }
    }

    #[test]
    fn masking_keeps_the_ids_and_hints_at_the_secret() {
        let url = parse("slack://Chime%20Bot@T0ABCDEF/B0GHIJKL/xYz0123AbC").unwrap();
        assert_eq!(url.masked(), "slack://Chime+Bot@T0ABCDEF/B0GHIJKL/xYz0…");
        assert_eq!(format!("{url:?}"), url.masked());
        assert_eq!(url.secrets().scrub("posted to xYz0123AbC"), "posted to …");
    }

    #[test]
    fn the_endpoint_is_the_api_host_without_the_secret() {
        let config = super::super::DestinationConfig::default();
        let settings = Settings::new(Channel::Slack, &config, false, None).unwrap();
        let url = parse("slack://T0ABCDEF/B0GHIJKL/xYz0123AbC").unwrap();
        assert_eq!(
            url.endpoint(&settings).as_str(),
            "https://hooks.slack.com/services/T0ABCDEF/B0GHIJKL/"
        );
        assert_eq!(
            url.post_url(&settings).as_str(),
            "https://hooks.slack.com/services/T0ABCDEF/B0GHIJKL/xYz0123AbC"
        );
    }

    #[test]
    fn user_text_is_escaped_and_long_text_clipped() {
        assert_eq!(
            escape("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
