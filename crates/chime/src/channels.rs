//! Builds the configured channel adapters (only the binary knows concrete adapters).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chime_channels::destination::Settings;
use chime_channels::email::EmailChannel;
use chime_channels::push::{PushChannel, VapidKeys};
use chime_channels::sms::SmsChannel;
use chime_channels::webhook::WebhookChannel;
use chime_channels::ChannelAdapter;
use chime_roles::notification::{NotificationConfig, RetryPolicy};

use crate::config::{ChannelsConfig, DeliveryConfig};

pub struct Channels {
    pub adapters: Vec<Arc<dyn ChannelAdapter>>,
    /// The destination channels' settings, each with its adapter (among `adapters` too).
    pub destinations: Vec<(Settings, Arc<dyn ChannelAdapter>)>,
    /// The VAPID public key browsers subscribe with, when push is configured.
    pub push_public_key: Option<String>,
}

/// Every configured adapter, validated; a bad provider setting stops start-up with its reason.
pub fn build(
    config: &ChannelsConfig,
    data_dir: &Path,
    public_url: Option<&url::Url>,
) -> anyhow::Result<Channels> {
    let mut adapters: Vec<Arc<dyn ChannelAdapter>> = Vec::new();
    let mut push_public_key = None;
    if let Some(email) = &config.email {
        adapters.push(Arc::new(
            EmailChannel::new(email).context("channels.email")?,
        ));
    }
    if let Some(sms) = &config.sms {
        adapters.push(Arc::new(SmsChannel::new(sms).context("channels.sms")?));
    }
    // One switch for local targets: a deployment that lets webhooks reach private addresses
    // (development, tests) also accepts plain-http push endpoints (a local push emulator).
    let local_targets = config.webhook.as_ref().is_some_and(|w| w.allow_private);
    if let Some(push) = &config.push {
        let keys = VapidKeys::load_or_create(data_dir)
            .context("cannot load or create the VAPID key in the data directory")?;
        let mut channel = PushChannel::new(push, keys).context("channels.push")?;
        if local_targets {
            channel = channel.allow_http_endpoints();
        }
        push_public_key = Some(channel.public_key_base64url().to_owned());
        adapters.push(Arc::new(channel));
    }
    if let Some(webhook) = &config.webhook {
        adapters.push(Arc::new(
            WebhookChannel::new(webhook).context("channels.webhook")?,
        ));
    }
    let mut destinations = Vec::new();
    for (channel, section) in config.destinations() {
        let Some(section) = section else { continue };
        let settings = Settings::new(channel, section, local_targets, public_url.cloned())
            .map_err(|reason| anyhow::anyhow!(reason))?;
        let adapter = chime_channels::destination::adapter(settings.clone());
        adapters.push(adapter.clone());
        destinations.push((settings, adapter));
    }
    Ok(Channels {
        adapters,
        destinations,
        push_public_key,
    })
}

pub fn notification_config(delivery: &DeliveryConfig) -> NotificationConfig {
    NotificationConfig {
        retry: RetryPolicy {
            base: Duration::from_secs_f64(delivery.retry_base_seconds),
            max_delay: Duration::from_secs_f64(delivery.retry_max_delay_seconds),
            window: Duration::from_secs_f64(delivery.retry_window_seconds),
        },
        concurrency: delivery.concurrency,
        handoff_after: Duration::from_secs_f64(delivery.handoff_after_seconds),
        ..NotificationConfig::default()
    }
}
