//! The delivery channels' providers: the SMTP relay (connect, EHLO, NOOP, QUIT), the SMS
//! gateway (one GET of its base URL), the VAPID key of web push. Nothing is sent.

use std::time::Duration;

use super::{check, error_chain, Check, Status};
use crate::config::Config;

pub(super) async fn provider_checks(config: &Config) -> Vec<Check> {
    let channels = &config.channels;
    let mut out = Vec::new();
    match &channels.email {
        None => out.push(check(
            Status::Ok,
            "email",
            "not configured (deliveries skipped)",
        )),
        Some(email) => out.push(match chime_channels::email::EmailChannel::new(email) {
            Err(e) => check(Status::Fail, "email", format!("channels.email: {e}")),
            Ok(channel) => match channel.check_connection().await {
                Ok(()) => check(
                    Status::Ok,
                    "email",
                    "the SMTP relay answers EHLO and NOOP (nothing sent)",
                ),
                Err(e) => check(
                    Status::Fail,
                    "email",
                    format!(
                        "cannot talk to the SMTP relay: {e}. Check channels.email.smtp_url \
                         (CHIME_SMTP_URL): host, port, `?tls=` or smtps://, credentials; and \
                         that the relay is up and reachable from here"
                    ),
                ),
            },
        }),
    }
    match &channels.sms {
        None => out.push(check(
            Status::Ok,
            "sms",
            "not configured (deliveries skipped)",
        )),
        Some(sms) => out.push(match chime_channels::sms::SmsChannel::new(sms) {
            Err(e) => check(Status::Fail, "sms", format!("channels.sms: {e}")),
            Ok(_) => sms_reachable(&sms.base_url, sms.timeout_seconds).await,
        }),
    }
    match &channels.push {
        None => out.push(check(
            Status::Ok,
            "push",
            "not configured (deliveries skipped)",
        )),
        Some(_) => {
            let file = config
                .keys_dir()
                .join(chime_channels::push::VapidKeys::FILE);
            out.push(if file.is_file() {
                match chime_channels::push::VapidKeys::load_or_create(config.keys_dir()) {
                    Ok(keys) => check(
                        Status::Ok,
                        "push",
                        format!(
                            "the VAPID key loads (public key {}…)",
                            keys.public_key_base64url().get(..12).unwrap_or_default()
                        ),
                    ),
                    Err(e) => check(
                        Status::Fail,
                        "push",
                        format!(
                            "{e}: restore the key file from a backup (browsers subscribed to \
                             this key)"
                        ),
                    ),
                }
            } else {
                check(
                    Status::Warn,
                    "push",
                    format!(
                        "no VAPID key at {} yet: `chime serve` creates one; browsers subscribed \
                         to an earlier key must subscribe again",
                        file.display()
                    ),
                )
            });
        }
    }
    out.push(match &channels.webhook {
        None => check(Status::Ok, "webhook", "not configured"),
        Some(w) => check(
            Status::Ok,
            "webhook",
            format!(
                "nothing to check: endpoints are per user (allow_private = {})",
                w.allow_private
            ),
        ),
    });
    out
}

/// One GET of the gateway's base URL: any HTTP answer means it is reachable. Sends nothing.
async fn sms_reachable(base_url: &str, timeout_seconds: u64) -> Check {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(timeout_seconds.clamp(1, 300)))
        .build()
    {
        Ok(client) => client,
        Err(e) => return check(Status::Fail, "sms", format!("cannot build a client: {e}")),
    };
    match client.get(base_url.trim()).send().await {
        Ok(response) => check(
            Status::Ok,
            "sms",
            format!(
                "the gateway {} is reachable (GET answered {}; nothing sent)",
                base_url.trim(),
                response.status()
            ),
        ),
        Err(e) => check(
            Status::Fail,
            "sms",
            format!(
                "cannot reach the gateway {}: {}. Check channels.sms.base_url and the network \
                 path to it",
                base_url.trim(),
                error_chain(&e)
            ),
        ),
    }
}
