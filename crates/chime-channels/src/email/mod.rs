//! The email adapter: one reminder, one SMTP transaction, through a relay the operator runs or
//! rents.
//!
//! Choices, and why:
//!
//! - **SMTP through lettre's pooled async transport**, not a provider's HTTP API: every
//!   provider and every self-hosted relay speaks SMTP, so one adapter serves them all. The
//!   pool keeps a few authenticated connections open, so a burst of reminders at 09:00 does
//!   not pay a TCP + TLS + AUTH handshake each.
//! - **One timeout for the whole attempt.** lettre's own timeout bounds connecting only; a
//!   relay that accepts the connection and then goes quiet would otherwise hold a delivery
//!   worker for ever. Because a connection abandoned mid-transaction would go back into the
//!   pool in an unknown state, a timed-out attempt also throws the pool away (the next attempt
//!   opens a fresh one).
//! - **Built lazily.** lettre's pool spawns a cleanup task when it is built, which needs a
//!   Tokio runtime; [`EmailChannel::new`] validates everything but builds the pool on the first
//!   send, so it can run wherever configuration is read.
//! - **Errors by reply class** (RFC 5321 §4.2.1): a 5xx reply is [`SendError::Permanent`]
//!   (bad address, rejected content, refused credentials: retrying cannot help); a 4xx reply,
//!   a refused connection, a TLS or I/O failure and a timeout are [`SendError::Transient`]. The
//!   server's reply text is kept for the person reading the delivery log, with every token
//!   that looks like an address replaced by `[address]`: relays love to echo the recipient.
//! - **A message people are glad to get**: `Reminder: {task}` (`Late reminder:` when late), a
//!   `multipart/alternative` with a plain-text and an HTML part (see [`render`]), the due time
//!   on the task's own wall clock, and a link back to the app when `app_base_url` is set.
//! - **Headers for machines**: a `Message-ID` derived from the delivery's idempotency key, so a
//!   resend after a lost `250` is recognisably the same message; `X-Chime-Occurrence` with the
//!   key itself; `Auto-Submitted: auto-generated` (RFC 3834) and
//!   `X-Auto-Response-Suppress: All` so vacation responders stay quiet.
//! - **No addresses or secrets in logs**: spans carry the task id and due time, never the
//!   recipient or the idempotency key (whose target part may be the address); the SMTP URL is
//!   shown with its user-info hidden.

mod config;
mod render;

use std::error::Error as _;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use config::{EmailConfig, EmailConfigError};

use crate::{ChannelAdapter, Recipient, Reminder, SendError, Sent};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Sends reminders by SMTP. Cheap to share: hold it in an `Arc<dyn ChannelAdapter>`.
pub struct EmailChannel {
    builder: AsyncSmtpTransportBuilder,
    /// The current pool, built on first use and replaced after a timeout.
    transport: Mutex<Option<Arc<Transport>>>,
    from: Mailbox,
    app_base_url: Option<String>,
    timeout: Duration,
    redacted_url: String,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("smtp_url", &self.redacted_url)
            .field("from", &self.from.to_string())
            .field("app_base_url", &self.app_base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// Validates `config` (URL, sender, base URL, CA file) without connecting.
    pub fn new(config: &EmailConfig) -> Result<EmailChannel, EmailConfigError> {
        let settings = config::Settings::parse(config)?;
        Ok(EmailChannel {
            builder: settings.builder,
            transport: Mutex::new(None),
            from: settings.from,
            app_base_url: settings.app_base_url,
            timeout: settings.timeout,
            redacted_url: settings.redacted_url,
        })
    }

    /// Connects to the relay and says EHLO (and STARTTLS and AUTH as configured), then NOOP and
    /// QUIT, sending nothing: `chime doctor`'s check. Bounded by the configured timeout. The
    /// error names the relay (user-info hidden) and lettre's whole cause chain.
    pub async fn check_connection(&self) -> Result<(), String> {
        let transport = self.builder.clone().build::<Tokio1Executor>();
        match tokio::time::timeout(self.timeout, transport.test_connection()).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(format!(
                "{} accepted the connection but did not answer NOOP",
                self.redacted_url
            )),
            Ok(Err(e)) => Err(format!("{}: {}", self.redacted_url, error_chain(&e))),
            Err(_) => Err(format!(
                "{}: no answer within {:?}",
                self.redacted_url, self.timeout
            )),
        }
    }

    /// The current pool, built now if there is none. Must run inside a Tokio runtime.
    fn transport(&self) -> Arc<Transport> {
        let mut slot = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slot.get_or_insert_with(|| Arc::new(self.builder.clone().build())))
    }

    /// Drops `stale` as the current pool (if it still is), so its connections, one of which
    /// was abandoned mid-transaction, are never reused.
    fn discard(&self, stale: &Arc<Transport>) {
        let mut slot = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            *slot = None;
        }
    }

    fn compose(&self, message: &Reminder, to: Address) -> Result<lettre::Message, SendError> {
        let rendered = render::render(message, self.app_base_url.as_deref());
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to));
        let builder = if render::has_encoded_word(&rendered.subject) {
            builder.raw_header(render::encoded_subject(&rendered.subject))
        } else {
            builder.subject(rendered.subject)
        };
        builder
            .message_id(Some(render::message_id(&message.idempotency_key)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Chime-Occurrence"),
                message.idempotency_key.clone(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| SendError::permanent(format!("the email could not be built: {e}")))
    }
}

#[async_trait]
impl ChannelAdapter for EmailChannel {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn kind(&self) -> chime_core::event::Channel {
        chime_core::event::Channel::Email
    }

    #[tracing::instrument(
        name = "email.send",
        skip_all,
        fields(
            task_id = %message.occurrence.task_id,
            due_at = %message.occurrence.due_at,
            attempt = message.attempt,
        )
    )]
    async fn send(&self, message: &Reminder) -> Result<Sent, SendError> {
        let Recipient::Email { address } = &message.recipient else {
            return Err(SendError::permanent(
                "the email channel was given a recipient that is not an email address",
            ));
        };
        let to: Address = address
            .parse()
            .map_err(|_| SendError::permanent("the recipient is not a valid email address"))?;
        let email = self.compose(message, to)?;

        let transport = self.transport();
        let outcome = match tokio::time::timeout(self.timeout, transport.send(email)).await {
            Ok(Ok(response)) => Ok(Sent {
                provider_id: provider_id(&response),
            }),
            Ok(Err(err)) => Err(classify(&err)),
            Err(_elapsed) => {
                self.discard(&transport);
                Err(SendError::transient(format!(
                    "the SMTP server did not complete the transaction within {} s",
                    self.timeout.as_secs()
                )))
            }
        };
        match &outcome {
            Ok(_) => tracing::debug!("handed to the SMTP server"),
            // The reason may quote the recipient; it is kept on the delivery, not logged.
            Err(_) => tracing::info!("email attempt failed"),
        }
        outcome
    }
}

/// The reply to the end of DATA (`250 OK queued as 4Fq2…`), which names the relay's queue id.
fn provider_id(response: &Response) -> Option<String> {
    let text = response.message().collect::<Vec<_>>().join(" ");
    let text = text.trim();
    (!text.is_empty()).then(|| format!("{} {text}", response.code()))
}

fn classify(err: &lettre::transport::smtp::Error) -> SendError {
    let detail = redact_addresses(&error_chain(err));
    if err.is_permanent() {
        SendError::permanent(format!("the SMTP server refused the message: {detail}"))
    } else if err.is_transient() {
        SendError::transient(format!("the SMTP server deferred the message: {detail}"))
    } else {
        SendError::transient(format!("could not talk to the SMTP server: {detail}"))
    }
}

/// `err` and its sources, `: `-separated. lettre's `Display` already includes its immediate
/// source, so a source whose text is already there is skipped.
fn error_chain(err: &lettre::transport::smtp::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Replaces every token that contains `@` (an address, however the server quoted it) with
/// `[address]`, so a server reply can be stored and logged without naming anyone.
fn redact_addresses(text: &str) -> String {
    fn flush(token: &mut String, out: &mut String) {
        if token.contains('@') {
            out.push_str("[address]");
        } else {
            out.push_str(token);
        }
        token.clear();
    }
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | '[' | ']' | '"' | ',' | ';') {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_addresses_hides_every_address_however_it_is_quoted() {
        assert_eq!(
            redact_addresses("5.1.1 <bob@example.com>: Recipient address rejected"),
            "5.1.1 <[address]>: Recipient address rejected"
        );
        assert_eq!(
            redact_addresses("to=bob.smith+x@example.com, from=\"a@b.c\" ok"),
            "[address], from=\"[address]\" ok"
        );
        assert_eq!(redact_addresses("no address here"), "no address here");
    }

    #[test]
    fn a_channel_can_be_made_outside_a_runtime() {
        let channel = EmailChannel::new(&EmailConfig::new(
            "smtp://u:hunter2@localhost:2525",
            "a@example.com",
        ))
        .expect("valid config");
        let debug = format!("{channel:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(channel.kind(), chime_core::event::Channel::Email);
    }
}
