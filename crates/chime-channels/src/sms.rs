//! The SMS adapter: a reminder as a text message, through an HTTP provider shaped like
//! Twilio's Messages API (Twilio itself by default).
//!
//! One attempt is one `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json` with
//! HTTP Basic auth (`account_sid:auth_token`) and a form body:
//!
//! - `To`: the recipient, E.164 (`+14075551212`). Numbers are normalised to E.164 when the
//!   task is created (see `chime_core::task::PhoneNumber`), so the adapter only checks the form;
//!   `From`: the configured sender number, or `MessagingServiceSid` when the sender is a
//!   messaging service (`MG…`), which then picks the number itself;
//! - `Body`: `Reminder: {task name} - {local due time}` (an ASCII dash: an em dash is outside the GSM 7-bit alphabet and would double the segments), `Late reminder: …` when the occurrence
//!   fired late. A text message is for a glance, so the description is left out, and the whole
//!   is kept within [`MAX_BODY_CHARS`], cutting the task name with an ellipsis if it must. The
//!   dash (like any character outside the GSM 7-bit alphabet, as in many names) makes the
//!   message UCS-2, 67 characters a segment when it takes more than one: a typical reminder is
//!   two segments, the longest five.
//!
//! The delivery's idempotency key goes in the `I-Twilio-Idempotency-Token` header. Twilio does
//! not document request idempotency for the Messages API, so a retry after a timeout that
//! Twilio had in fact accepted can send the text twice; providers of the same shape that
//! honour the header will not.
//!
//! How answers map to outcomes (the notification role does the retrying):
//!
//! - 2xx: sent, with the message `sid` of the JSON answer as the provider id. A 2xx is sent
//!   even when its answer cannot be read: the provider has the message, and a retry would
//!   text the person twice.
//! - 429, 408 and 5xx: transient, with the `Retry-After` delay (seconds or HTTP-date) if given.
//! - 401 and 403: permanent, "check account sid and auth token": retrying with the same
//!   credentials cannot help, and the failure must reach the operator.
//! - 3xx: permanent. Redirects are not followed: Twilio does not redirect, and following one
//!   would send the credentials elsewhere.
//! - Other 4xx (400 with Twilio's `{"code": 21211, "message": …}` for an invalid `To`, say):
//!   permanent, with the provider's code and message.
//! - Timeouts, refused connections, DNS failures: transient.
//!
//! The whole attempt (connection to last byte of the answer) is bounded by `timeout_seconds`.
//! Phone numbers are personal data and the auth token a secret: neither is logged nor put in a
//! reason. Providers quote the number in their error messages ("The 'To' number +1407… is
//! not a valid phone number"), so every run of seven or more digits in their answers is
//! masked down to its last two digits before it goes into a reason.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use crate::{local_due_time, ChannelAdapter, Recipient, Reminder, SendError, Sent};

/// Twilio's API.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// The longest `Body` sent, in characters. Twilio accepts 1600, but a reminder is a glance;
/// this allows a 200-character task name with the longest due time.
pub const MAX_BODY_CHARS: usize = 320;

/// Appended when replies are read (and it fits): how to answer.
pub const REPLY_HINT: &str = " Reply DONE, or SNOOZE 30.";

/// The header carrying the delivery's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";

/// The most of an answer that is read: Twilio's are well under 2 KB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How much of an unrecognised refusal goes into the reason.
const EXCERPT_CHARS: usize = 200;

/// `[channels.sms]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SmsConfig {
    /// The account (Twilio: `AC…`); also in the request path.
    pub account_sid: String,
    /// The account's secret. Never printed: `Debug` shows `<redacted>`.
    pub auth_token: String,
    /// The sender: an E.164 number the account owns (`+14075551212`), or a messaging service
    /// sid (`MG…`), sent as `MessagingServiceSid`. Also read from a number, because an
    /// environment variable `CHIME_CHANNELS__SMS__FROM=+14075551212` arrives as one.
    #[serde(deserialize_with = "string_or_number")]
    pub from: String,
    /// Where the API is: `https://`, or `http://` to a loopback address (a local fake).
    /// A path is kept, for providers that serve the same API under a prefix.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Limit for one attempt, connection to last byte of the answer; 1 to 300.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// The public URL the provider posts replies to (Twilio: the number's "A message comes
    /// in" webhook), e.g. `https://chime.example.com/sms/inbound`, exactly as configured there:
    /// its request signature covers it. Replies are read only when it is set.
    #[serde(default)]
    pub inbound_url: Option<String>,
}

/// A string, or a number written back as `+<digits>` (E.164 read by a config layer as an integer).
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(u64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Number(n) => format!("+{n}"),
    })
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

fn default_timeout_seconds() -> u64 {
    15
}

impl fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .field("base_url", &self.base_url)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("inbound_url", &self.inbound_url)
            .finish()
    }
}

/// A [`SmsConfig`] that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SmsConfigError {
    #[error(
        "channels.sms.account_sid must be letters, digits, `-` or `_` (Twilio's start with `AC`)"
    )]
    AccountSid,
    #[error("channels.sms.auth_token must not be empty")]
    AuthToken,
    #[error(
        "channels.sms.from must be an E.164 number such as `+14075551212` or a messaging \
         service sid starting with `MG`"
    )]
    From,
    #[error("channels.sms.base_url {0}")]
    BaseUrl(String),
    #[error("channels.sms.timeout_seconds must be between 1 and 300, not {0}")]
    Timeout(u64),
    #[error("channels.sms.inbound_url must be an absolute http(s) URL")]
    InboundUrl,
    #[error("could not set up the HTTP client for the SMS channel")]
    Client(#[source] reqwest::Error),
}

/// Who the message is from, as the form field that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sender {
    Number(String),
    MessagingService(String),
}

impl Sender {
    fn parse(from: &str) -> Result<Sender, SmsConfigError> {
        let from = from.trim();
        if let Some(rest) = from.strip_prefix("MG") {
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Ok(Sender::MessagingService(from.to_owned()));
            }
        } else if is_e164(from) {
            return Ok(Sender::Number(from.to_owned()));
        }
        Err(SmsConfigError::From)
    }

    fn field(&self) -> (&'static str, &str) {
        match self {
            Sender::Number(number) => ("From", number),
            Sender::MessagingService(sid) => ("MessagingServiceSid", sid),
        }
    }
}

/// The SMS [`ChannelAdapter`].
#[derive(Clone)]
pub struct SmsChannel {
    client: reqwest::Client,
    /// `…/Accounts/{account_sid}/Messages.json`.
    url: Url,
    account_sid: String,
    auth_token: String,
    sender: Sender,
    timeout: Duration,
    /// Replies are read (`inbound_url` is set): the message says how to answer.
    replies: bool,
}

impl fmt::Debug for SmsChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsChannel")
            .field("url", &self.url.as_str())
            .field("auth_token", &"<redacted>")
            .field("sender", &self.sender)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmsChannel {
    /// Checks `config` and builds the HTTP client (redirects off, the timeout on every
    /// request).
    pub fn new(config: &SmsConfig) -> Result<SmsChannel, SmsConfigError> {
        let account_sid = config.account_sid.trim();
        if account_sid.is_empty()
            || !account_sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SmsConfigError::AccountSid);
        }
        if config.auth_token.is_empty() {
            return Err(SmsConfigError::AuthToken);
        }
        let sender = Sender::parse(&config.from)?;
        if !(1..=300).contains(&config.timeout_seconds) {
            return Err(SmsConfigError::Timeout(config.timeout_seconds));
        }
        let url = messages_url(&config.base_url, account_sid)?;
        if let Some(inbound) = &config.inbound_url {
            let ok = Url::parse(inbound)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(SmsConfigError::InboundUrl);
            }
        }
        let timeout = Duration::from_secs(config.timeout_seconds);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(format!("chime/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SmsConfigError::Client)?;
        Ok(SmsChannel {
            client,
            url,
            account_sid: account_sid.to_owned(),
            auth_token: config.auth_token.clone(),
            sender,
            timeout,
            replies: config.inbound_url.is_some(),
        })
    }
}

/// The `X-Twilio-Signature` of a request the provider posts to `url` with the form `params`:
/// base64 of HMAC-SHA1, keyed with the account's auth token, over the URL followed by each
/// parameter's name and value, sorted by name.
pub fn request_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is the provider's signature of this request (constant time).
pub fn verify_request_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let expected = request_signature(auth_token, url, params);
    let (a, b) = (expected.as_bytes(), signature.trim().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`, after checking `base_url`.
fn messages_url(base_url: &str, account_sid: &str) -> Result<Url, SmsConfigError> {
    let base = Url::parse(base_url.trim())
        .map_err(|e| SmsConfigError::BaseUrl(format!("is not a URL: {e}")))?;
    let loopback = match base.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    // The credentials go in every request, so they travel encrypted unless they never leave
    // the machine.
    match base.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(SmsConfigError::BaseUrl(
                "must be https:// (or http:// to a loopback address, for a local fake)".into(),
            ))
        }
    }
    if base.host().is_none()
        || !base.username().is_empty()
        || base.password().is_some()
        || base.query().is_some()
        || base.fragment().is_some()
    {
        return Err(SmsConfigError::BaseUrl(
            "must be a scheme, a host and optionally a port and path, without credentials, \
             query or fragment"
                .into(),
        ));
    }
    let url = format!(
        "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
        base.as_str().trim_end_matches('/')
    );
    Url::parse(&url).map_err(|e| SmsConfigError::BaseUrl(format!("gives no valid URL: {e}")))
}

#[async_trait]
impl ChannelAdapter for SmsChannel {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn kind(&self) -> chime_core::event::Channel {
        chime_core::event::Channel::Sms
    }

    #[tracing::instrument(
        name = "sms_send",
        skip_all,
        fields(occurrence = %message.occurrence, attempt = message.attempt),
    )]
    async fn send(&self, message: &Reminder) -> Result<Sent, SendError> {
        let Recipient::Sms { number } = &message.recipient else {
            return Err(SendError::permanent(
                "the SMS channel was given a recipient that is not a phone number",
            ));
        };
        if !is_e164(number) {
            return Err(SendError::permanent(
                "the recipient's phone number is not in E.164 form (`+`, then 7 to 15 digits)",
            ));
        }
        let mut body = text(message);
        if self.replies && body.chars().count() + REPLY_HINT.len() <= MAX_BODY_CHARS {
            body.push_str(REPLY_HINT);
        }
        let form = [
            ("To", number.as_str()),
            self.sender.field(),
            ("Body", &body),
        ];
        let result = match self
            .client
            .post(self.url.clone())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header(IDEMPOTENCY_HEADER, &message.idempotency_key)
            .form(&form)
            .send()
            .await
        {
            Ok(response) => outcome(response).await,
            Err(e) => Err(request_error(e, self.timeout)),
        };
        match &result {
            Ok(sent) => tracing::debug!(sid = ?sent.provider_id, "SMS handed to the provider"),
            // The reason may quote the number; it is kept on the delivery, not logged.
            Err(_) => tracing::info!("SMS not sent"),
        }
        result
    }
}

/// The text of the message (see the module doc).
fn text(message: &Reminder) -> String {
    let prefix = if message.late {
        "Late reminder"
    } else {
        "Reminder"
    };
    fit(prefix, message.task.name.as_str(), &local_due_time(message))
}

/// `{prefix}: {name} - {due}` within [`MAX_BODY_CHARS`], cutting the name (then, should that
/// not do, the whole) with an ellipsis.
fn fit(prefix: &str, name: &str, due: &str) -> String {
    let fixed = prefix.chars().count() + ": ".len() + " - ".chars().count() + due.chars().count();
    let room = MAX_BODY_CHARS.saturating_sub(fixed);
    let text = if name.chars().count() <= room {
        format!("{prefix}: {name} - {due}")
    } else {
        let cut: String = name.chars().take(room.saturating_sub(1)).collect();
        format!("{prefix}: {}… - {due}", cut.trim_end())
    };
    if text.chars().count() <= MAX_BODY_CHARS {
        text
    } else {
        let mut cut: String = text.chars().take(MAX_BODY_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// `+`, then 7 to 15 digits, the first not `0`: the form, not whether the number exists.
fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// Twilio's answer to a created message (only what Chime uses).
#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
}

/// Twilio's error answer: `{"code": 21211, "message": "…", "more_info": "…", "status": 400}`.
#[derive(Deserialize)]
struct ProviderError {
    code: Option<serde_json::Value>,
    message: Option<String>,
    more_info: Option<String>,
}

async fn outcome(response: reqwest::Response) -> Result<Sent, SendError> {
    let status = response.status();
    let retry_after = crate::retry_after(response.headers(), Timestamp::now());
    let answer = read_answer(response).await;
    if status.is_success() {
        let sid = serde_json::from_slice::<Created>(&answer)
            .ok()
            .and_then(|created| created.sid)
            .filter(|sid| !sid.is_empty());
        if sid.is_none() {
            tracing::warn!(%status, "the SMS provider accepted the message but gave no sid");
        }
        return Ok(Sent { provider_id: sid });
    }
    let detail = detail(&answer);
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => Err(SendError::Transient {
            reason: format!("the SMS provider answered {status}{detail}"),
            retry_after,
        }),
        s if s.is_server_error() => Err(SendError::Transient {
            reason: format!("the SMS provider answered {status}{detail}"),
            retry_after,
        }),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(SendError::permanent(format!(
            "the SMS provider refused the credentials ({status}{detail}): check account sid and \
             auth token"
        ))),
        s if s.is_redirection() => Err(SendError::permanent(format!(
            "the SMS provider answered {status} with a redirect, which is not followed (it \
             would carry the credentials elsewhere): check channels.sms.base_url"
        ))),
        _ => Err(SendError::permanent(format!(
            "the SMS provider refused the message ({status}{detail})"
        ))),
    }
}

/// Up to [`MAX_ANSWER_BYTES`] of the answer; what arrived before an error or the timeout.
async fn read_answer(mut response: reqwest::Response) -> Vec<u8> {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_ANSWER_BYTES);
    bytes
}

/// `: code 21211, "message" (more info)` from a Twilio error answer, else `: "<excerpt>"`, or
/// nothing; phone numbers masked either way.
fn detail(answer: &[u8]) -> String {
    let printable = |s: &str| -> String {
        let s: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(EXCERPT_CHARS)
            .collect();
        mask_phone_numbers(s.trim())
    };
    if let Ok(error) = serde_json::from_slice::<ProviderError>(answer) {
        let code = match error.code {
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::String(s)) => Some(printable(&s)),
            _ => None,
        };
        let mut parts = Vec::new();
        if let Some(code) = code {
            parts.push(format!("code {code}"));
        }
        if let Some(message) = error.message.as_deref().map(printable) {
            parts.push(format!("{message:?}"));
        }
        if !parts.is_empty() {
            let more = error
                .more_info
                .as_deref()
                .map(|m| format!(" (see {})", printable(m)))
                .unwrap_or_default();
            return format!(": {}{more}", parts.join(", "));
        }
    }
    let text = printable(&String::from_utf8_lossy(answer));
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text:?}")
    }
}

/// `s` with every run of seven or more digits (a `+` and the separators `-`, `.`, `(`, `)`
/// and spaces between digits included) replaced by `*`s and its last two digits, so a phone
/// number quoted by the provider does not reach logs. Shorter runs (error codes, status
/// codes, times) stay as they are; a longer one that is no phone number (a date) is masked
/// too, which costs little in an error reason.
fn mask_phone_numbers(s: &str) -> String {
    const MIN_DIGITS: usize = 7;
    const KEPT: usize = 2;
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_run = chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts_run {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The run ends at its last digit: separators count only between digits.
        let mut end = i + 1;
        let mut last_digit = if chars[i].is_ascii_digit() { i + 1 } else { i };
        while end < chars.len()
            && (chars[end].is_ascii_digit() || matches!(chars[end], ' ' | '-' | '.' | '(' | ')'))
        {
            if chars[end].is_ascii_digit() {
                last_digit = end + 1;
            }
            end += 1;
        }
        let run = &chars[i..last_digit];
        let digits: Vec<char> = run.iter().copied().filter(char::is_ascii_digit).collect();
        if digits.len() >= MIN_DIGITS {
            if run[0] == '+' {
                out.push('+');
            }
            out.extend(std::iter::repeat_n('*', digits.len() - KEPT));
            out.extend(&digits[digits.len() - KEPT..]);
        } else {
            out.extend(run);
        }
        i = last_digit.max(i + 1);
    }
    out
}

/// A failed request as a reason, without the URL (reqwest's own message holds it).
fn request_error(error: reqwest::Error, timeout: Duration) -> SendError {
    if error.is_timeout() {
        SendError::transient(format!(
            "no answer from the SMS provider within {} s",
            timeout.as_secs()
        ))
    } else if error.is_builder() {
        SendError::permanent(format!(
            "could not build the request to the SMS provider: {}",
            crate::error_chain(error)
        ))
    } else if error.is_connect() {
        SendError::transient(format!(
            "could not connect to the SMS provider: {}",
            crate::error_chain(error)
        ))
    } else {
        SendError::transient(format!(
            "the request to the SMS provider failed: {}",
            crate::error_chain(error)
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod tests {
    use super::*;

    /// Twilio's published example: auth token `12345`, this URL and these parameters sign to
    /// `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`. Any change to the URL, a name or a value breaks it.
    #[test]
    fn the_request_signature_matches_twilios_published_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+12349013030"),
            ("Caller", "+12349013030"),
            ("CallSid", "CA1234567890ABCDE"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let expected = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert_eq!(request_signature("12345", url, &params), expected);
        assert!(verify_request_signature("12345", url, &params, expected));
        assert!(!verify_request_signature("12346", url, &params, expected));
        assert!(!verify_request_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            expected
        ));
        let mut changed = params.clone();
        changed[0].1 = "1235".to_owned();
        assert!(!verify_request_signature("12345", url, &changed, expected));
        assert!(!verify_request_signature("12345", url, &params, ""));
    }

    #[test]
    fn a_long_task_name_is_cut_with_an_ellipsis_to_fit_320_characters() {
        let due = "Wednesday 30 September 2026, 09:00 (America/Argentina/ComodRivadavia)";
        let name = "n".repeat(400);
        let text = fit("Late reminder", &name, due);
        assert_eq!(text.chars().count(), MAX_BODY_CHARS);
        assert!(text.starts_with("Late reminder: nnn"), "{text}");
        assert!(text.ends_with(&format!("n… - {due}")), "{text}");

        let short = fit("Reminder", "Call mum", due);
        assert_eq!(short, format!("Reminder: Call mum - {due}"));

        let huge_due = "d".repeat(400);
        let text = fit("Reminder", "Call mum", &huge_due);
        assert_eq!(text.chars().count(), MAX_BODY_CHARS);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn phone_numbers_in_provider_messages_are_masked_to_their_last_two_digits() {
        assert_eq!(
            mask_phone_numbers("The 'To' number +14075551212 is not a valid phone number."),
            "The 'To' number +*********12 is not a valid phone number."
        );
        assert_eq!(
            mask_phone_numbers("Invalid 'To' Phone Number: +1 (407) 555-1212."),
            "Invalid 'To' Phone Number: +*********12."
        );
        assert_eq!(mask_phone_numbers("to 4075551212"), "to ********12");
        // Codes, statuses and times stay readable; longer runs are masked even when they are
        // not phone numbers, erring on the side of privacy.
        assert_eq!(
            mask_phone_numbers("code 21211, status 400, at 09:00"),
            "code 21211, status 400, at 09:00"
        );
        assert_eq!(mask_phone_numbers("on 2026-12-07"), "on ******07");
        assert_eq!(mask_phone_numbers("+ 1 + 2"), "+ 1 + 2");
        assert_eq!(mask_phone_numbers(""), "");
    }

    #[test]
    fn e164_is_a_plus_and_7_to_15_digits_not_starting_with_0() {
        for good in ["+14075551212", "+2901234", "+123456789012345"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "4075551212",
            "+0407555121",
            "+1234567890123456",
            "+123456",
            "+1 407 555 1212",
            "",
            "+",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn a_twilio_error_answer_gives_its_code_and_message() {
        let answer = br#"{"code": 21211, "message": "The 'To' number +14075551212 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        assert_eq!(
            detail(answer),
            ": code 21211, \"The 'To' number +*********12 is not a valid phone number.\" (see \
             https://www.twilio.com/docs/errors/21211)"
        );
        assert_eq!(detail(b"  "), "");
        assert_eq!(detail(b"<html>busy</html>"), ": \"<html>busy</html>\"");
    }
}
