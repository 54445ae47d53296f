//! Configuration, layered: built-in defaults < the `--profile` file (see [`crate::profile`])
//! < `chime.toml` (in the working directory, or the file `--config`/`CHIME_CONFIG` names) <
//! `CHIME_*` environment variables < command-line flags; validated before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use chime_channels::destination::DestinationConfig;
use chime_roles::Role;
use chime_store::sqlite::Synchronous;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded default keeps its files (SQLite store, bus log, issuer key).
    pub data_dir: PathBuf,
    /// The HTTP listener.
    pub listen: SocketAddr,
    /// Chime's address as people and services reach it (`https://chime.example.com`):
    /// where the Done and Snooze buttons of ntfy and Telegram messages go, and Telegram's
    /// callbacks. Unset: those messages carry no buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Roles this process runs (`definition,execution,notification,tick,web`; all by default),
    /// as a list or a comma-separated string (`CHIME_ROLES=execution,notification`).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub roles: Vec<String>,
    /// An occurrence fired more than this many seconds after its due instant is `late`.
    pub late_after_seconds: f64,
    /// SQLite durability: `full` (the default: a task answered 201 survives a power loss or a
    /// lost volume cache, not only a crash of the process) or `normal` (a crash of the process
    /// only; a little faster).
    pub sqlite_synchronous: Synchronous,
    /// `text` (human-readable) or `json` logs.
    pub log_format: LogFormat,
    /// Region (ISO 3166 alpha-2) of phone numbers given without a country code.
    pub default_phone_region: String,
    /// Delivery workers: concurrency and the retry schedule.
    pub delivery: DeliveryConfig,
    /// HTTPS on the listener (`[tls] cert_file`, `key_file`); plain HTTP when unset.
    #[serde(default)]
    pub tls: crate::tls::TlsConfig,
    /// Abuse limits (`[limits]`): body size, write rate, concurrency, tasks per user.
    #[serde(default)]
    pub limits: crate::limits::LimitsConfig,
    /// Sign-in (`[auth]`): the external OIDC issuer and audience, the user and admin claims;
    /// without an issuer, the local issuer of `chime token`.
    #[serde(default)]
    pub auth: chime_http::auth::AuthConfig,
    /// Traces over OTLP/HTTP (`[telemetry] otlp_endpoint`, `service_name`); off when no
    /// endpoint is set here or in `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// External channels' providers; a channel without a section is not configured, and
    /// deliveries on it are recorded as skipped. Secrets here are never logged.
    #[serde(skip_serializing, default)]
    pub channels: ChannelsConfig,
    /// Keys that encrypt personal data at rest (`[encryption] keys = ["id:<base64>", …]`,
    /// newest last); never serialised or logged.
    #[serde(skip_serializing, default)]
    pub encryption: crate::encryption::EncryptionConfig,
    /// Which environment this is (`development`, `internal_integration`, `production`; a
    /// `--profile` sets it); `production` refuses to start without TLS, configured encryption
    /// keys and an OIDC issuer.
    #[serde(default)]
    pub environment: crate::profile::Environment,
    /// Plain HTTP on the listener is intended: a gateway in front terminates TLS. Production
    /// needs either this or `[tls]`.
    #[serde(default)]
    pub behind_tls_gateway: bool,
    /// Scheduled online backups of the embedded default (`[backup]`).
    #[serde(default)]
    pub backup: crate::backup::BackupConfig,
    /// How long the past is kept (`[retention]`).
    pub retention: crate::retention::RetentionConfig,
    /// The web app and its BFF (`[web]`: static files, OIDC client, task API URL).
    #[serde(default)]
    pub web: chime_http::bff::WebConfig,
    /// The store (`[store] url = "postgres://…"` or `"mongodb://…"`); embedded SQLite in
    /// `data_dir` when unset.
    #[serde(default, skip_serializing)]
    pub store: crate::backends::StoreConfig,
    /// The bus (`[bus] kafka_bootstrap = "host:port,…"`); the embedded log when unset.
    #[serde(default)]
    pub bus: crate::backends::BusConfig,
    /// Where the local token issuer's key and the VAPID key of web push are read (and created
    /// on first use): `data_dir` when unset. Instances apart point it at one shared copy (a
    /// mounted Secret), so that every instance verifies the same tokens and signs push
    /// messages with the key browsers subscribed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts in flight at once, per channel.
    pub concurrency: usize,
    /// The first retry waits up to this long; each further one up to twice as long.
    pub retry_base_seconds: f64,
    /// No retry waits longer than this.
    pub retry_max_delay_seconds: f64,
    /// After this long since the first attempt, a failing delivery is dead-lettered.
    pub retry_window_seconds: f64,
    /// On a shared store (PostgreSQL): an occurrence fired this long ago whose deliveries no
    /// notification instance has recorded yet (its consumer died or was cut off, and the
    /// broker has not moved its partitions yet) is taken over from the store by any instance;
    /// an instance whose own consumer is behind waits that much longer.
    pub handoff_after_seconds: f64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            retry_base_seconds: 10.0,
            retry_max_delay_seconds: 3600.0,
            retry_window_seconds: 86_400.0,
            handoff_after_seconds: 3.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    pub email: Option<chime_channels::email::EmailConfig>,
    pub sms: Option<chime_channels::sms::SmsConfig>,
    pub push: Option<chime_channels::push::PushConfig>,
    /// On by default (it needs no provider); `[channels.webhook] enabled = false` is not a
    /// thing: leave per-user endpoints unset instead.
    pub webhook: Option<chime_channels::webhook::WebhookConfig>,
    /// The destination channels: each user brings their own server, bot or webhook, so each
    /// is on by default; a section sets its allow list for private servers, its API URL and
    /// its timeout.
    pub ntfy: Option<DestinationConfig>,
    pub gotify: Option<DestinationConfig>,
    pub telegram: Option<DestinationConfig>,
    pub slack: Option<DestinationConfig>,
    pub discord: Option<DestinationConfig>,
    pub matrix: Option<DestinationConfig>,
}

impl ChannelsConfig {
    /// Each destination channel with its configuration.
    pub fn destinations(&self) -> [(chime_core::event::Channel, &Option<DestinationConfig>); 6] {
        use chime_core::event::Channel;
        [
            (Channel::Ntfy, &self.ntfy),
            (Channel::Gotify, &self.gotify),
            (Channel::Telegram, &self.telegram),
            (Channel::Slack, &self.slack),
            (Channel::Discord, &self.discord),
            (Channel::Matrix, &self.matrix),
        ]
    }
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            email: None,
            sms: None,
            push: None,
            webhook: Some(chime_channels::webhook::WebhookConfig::default()),
            ntfy: Some(DestinationConfig::default()),
            gotify: Some(DestinationConfig::default()),
            telegram: Some(DestinationConfig::default()),
            slack: Some(DestinationConfig::default()),
            discord: Some(DestinationConfig::default()),
            matrix: Some(DestinationConfig::default()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./chime-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            roles: Role::ALL.iter().map(|r| r.name().to_owned()).collect(),
            late_after_seconds: 10.0,
            sqlite_synchronous: Synchronous::Full,
            log_format: LogFormat::Text,
            default_phone_region: "US".to_owned(),
            delivery: DeliveryConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
            auth: chime_http::auth::AuthConfig::default(),
            telemetry: crate::telemetry::TelemetryConfig::default(),
            channels: ChannelsConfig::default(),
            encryption: crate::encryption::EncryptionConfig::default(),
            environment: crate::profile::Environment::default(),
            behind_tls_gateway: false,
            backup: crate::backup::BackupConfig::default(),
            retention: crate::retention::RetentionConfig::default(),
            web: chime_http::bff::WebConfig::default(),
            store: crate::backends::StoreConfig::default(),
            bus: crate::backends::BusConfig::default(),
            keys_dir: None,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// `--profile`: the environment's file, a layer between the defaults and `chime.toml`.
    #[serde(skip)]
    pub profile: Option<String>,
}

impl Config {
    /// Loads every layer. `file` is the `--config` path, if given (it must then exist).
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let config = Self::load_unvalidated(file, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// Every layer, parsed but not [validated](Self::validate): `chime doctor` reports what
    /// validation finds instead of stopping at it.
    pub fn load_unvalidated(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(profile) = &overrides.profile {
            figment = figment.merge(Toml::string(crate::profile::source(profile)?));
        }
        figment = match file {
            Some(path) => {
                if !path.exists() {
                    bail!("config file {} does not exist", path.display());
                }
                figment.merge(Toml::file(path))
            }
            None => figment.merge(Toml::file("chime.toml")),
        };
        let config: Config = figment
            .merge(Env::prefixed("CHIME_").filter_map(env_key))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        // First, so that every reason production refuses is named at once.
        crate::profile::check(self)?;
        self.backup.validate()?;
        self.retention.validate()?;
        self.roles()?;
        self.tls.validate()?;
        self.web.validate().map_err(anyhow::Error::msg)?;
        self.limits.validate()?;
        self.auth.validate()?;
        self.telemetry.validate()?;
        self.encryption.validate()?;
        self.store.validate()?;
        self.bus.validate()?;
        for (name, value) in [
            (
                "delivery.retry_base_seconds",
                self.delivery.retry_base_seconds,
            ),
            (
                "delivery.retry_max_delay_seconds",
                self.delivery.retry_max_delay_seconds,
            ),
            (
                "delivery.retry_window_seconds",
                self.delivery.retry_window_seconds,
            ),
            (
                "delivery.handoff_after_seconds",
                self.delivery.handoff_after_seconds,
            ),
        ] {
            if !(value.is_finite() && value > 0.0 && value < 1e9) {
                bail!("{name} must be a positive number of seconds, not {value}");
            }
        }
        if self.delivery.concurrency == 0 {
            bail!("delivery.concurrency must be at least 1");
        }
        if !(self.late_after_seconds.is_finite() && self.late_after_seconds >= 0.0) {
            bail!(
                "late_after_seconds must be a number of seconds >= 0, not {}",
                self.late_after_seconds
            );
        }
        Ok(())
    }

    /// `public_url`, read: an http(s) URL with a host and no query.
    pub fn public_url(&self) -> anyhow::Result<Option<url::Url>> {
        let Some(text) = &self.public_url else {
            return Ok(None);
        };
        let url = url::Url::parse(text.trim())
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
            })
            .with_context(|| {
                format!("public_url must be an http(s) URL such as https://chime.example.com, not {text:?}")
            })?;
        Ok(Some(url))
    }

    /// Where the issuer and VAPID keys live: `keys_dir`, else `data_dir`.
    pub fn keys_dir(&self) -> &Path {
        self.keys_dir.as_deref().unwrap_or(&self.data_dir)
    }

    pub fn roles(&self) -> anyhow::Result<Vec<Role>> {
        if self.roles.is_empty() {
            bail!("roles: name at least one of definition, execution, notification, tick, web");
        }
        self.roles
            .iter()
            .map(|name| {
                Role::parse(name.trim()).with_context(|| {
                    format!(
                        "roles: unknown role `{name}`: expected definition, execution, \
                         notification, tick or web"
                    )
                })
            })
            .collect()
    }
}

fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Roles {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Roles::deserialize(d)? {
        Roles::List(list) => list,
        Roles::Text(text) => text
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    })
}

/// Which `CHIME_*` variables are configuration, and where they go: `CHIME_DATA_DIR` is
/// `data_dir`, `CHIME_DELIVERY__CONCURRENCY` is `delivery.concurrency`,
/// `CHIME_CHANNELS__SMS__AUTH_TOKEN` is `channels.sms.auth_token`, and the conventional
/// `CHIME_SMTP_URL` / `CHIME_SMTP_FROM` are `channels.email.smtp_url` / `from`. Others
/// (`CHIME_LOG`, `CHIME_CONFIG`) are not configuration keys.
fn env_key(key: &uncased::UncasedStr) -> Option<uncased::Uncased<'_>> {
    const TOP: &[&str] = &[
        "data_dir",
        "listen",
        "roles",
        "late_after_seconds",
        "sqlite_synchronous",
        "log_format",
        "default_phone_region",
        "delivery",
        "channels",
        "tls",
        "limits",
        "auth",
        "telemetry",
        "encryption",
        "environment",
        "behind_tls_gateway",
        "backup",
        "retention",
        "web",
        "store",
        "bus",
        "keys_dir",
    ];
    let key = key.as_str().to_ascii_lowercase();
    let mapped = match key.as_str() {
        "smtp_url" => "channels.email.smtp_url".to_owned(),
        "smtp_from" => "channels.email.from".to_owned(),
        other => other.replace("__", "."),
    };
    let top = mapped.split('.').next().unwrap_or_default();
    TOP.contains(&top).then(|| mapped.into())
}

#[cfg(test)]
// figment's Jail closures return its (large) error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn load() -> Result<Config, figment::Error> {
        Config::load(None, &Overrides::default())
            .map_err(|e| figment::Error::from(format!("{e:#}")))
    }

    #[test]
    fn the_conventional_smtp_variables_and_nested_keys_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHIME_SMTP_URL", "smtp://127.0.0.1:2525");
            jail.set_env("CHIME_SMTP_FROM", "Chime <reminders@example.com>");
            jail.set_env("CHIME_DELIVERY__CONCURRENCY", "4");
            jail.set_env("CHIME_ROLES", "execution, notification");
            // Not configuration keys: ignored, not refused.
            jail.set_env("CHIME_LOG", "debug");
            jail.set_env("CHIME_CONFIG", "elsewhere.toml");
            let config = load()?;
            let email = config.channels.email.expect("email is configured");
            assert_eq!(email.smtp_url, "smtp://127.0.0.1:2525");
            assert_eq!(email.from, "Chime <reminders@example.com>");
            assert_eq!(config.delivery.concurrency, 4);
            assert_eq!(config.roles, ["execution", "notification"]);
            Ok(())
        });
    }

    #[test]
    fn an_sms_sender_number_from_the_environment_stays_a_phone_number() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHIME_CHANNELS__SMS__ACCOUNT_SID", "AC1");
            jail.set_env("CHIME_CHANNELS__SMS__AUTH_TOKEN", "t");
            jail.set_env("CHIME_CHANNELS__SMS__FROM", "+14075550000");
            let config = load()?;
            assert_eq!(config.channels.sms.expect("sms").from, "+14075550000");
            Ok(())
        });
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "chime.toml",
                "listen = \"127.0.0.1:1111\"\ndata_dir = \"from-file\"\n\n[channels.sms]\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+14075550000\"\n",
            )?;
            jail.set_env("CHIME_LISTEN", "127.0.0.1:2222");
            let config = Config::load(
                None,
                &Overrides {
                    data_dir: Some("from-flag".into()),
                    ..Overrides::default()
                },
            )
            .map_err(|e| figment::Error::from(e.to_string()))?;
            assert_eq!(config.listen.port(), 2222);
            assert_eq!(config.data_dir, PathBuf::from("from-flag"));
            assert_eq!(config.channels.sms.expect("sms").account_sid, "AC1");
            Ok(())
        });
    }

    #[test]
    fn the_handoff_delay_defaults_to_3_s_and_a_bad_one_is_refused_by_name() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(load()?.delivery.handoff_after_seconds, 3.0);
            jail.set_env("CHIME_DELIVERY__HANDOFF_AFTER_SECONDS", "0.5");
            assert_eq!(load()?.delivery.handoff_after_seconds, 0.5);
            for bad in ["0", "-1", "inf"] {
                jail.set_env("CHIME_DELIVERY__HANDOFF_AFTER_SECONDS", bad);
                let error = load().expect_err("a bad handoff delay");
                // A value that is not a number is named as its variable spells it.
                assert!(
                    error
                        .to_string()
                        .to_lowercase()
                        .contains("delivery.handoff_after_seconds"),
                    "{bad}: {error}"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn an_unknown_role_or_key_is_refused_with_its_name() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHIME_ROLES", "execution,cron");
            let error = load().expect_err("unknown role");
            assert!(error.to_string().contains("cron"), "{error}");
            jail.set_env("CHIME_ROLES", "execution");
            jail.create_file("chime.toml", "lisen = \"127.0.0.1:1\"\n")?;
            let error = load().expect_err("unknown key");
            assert!(error.to_string().contains("lisen"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn backends_and_the_keys_directory_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let config = load()?;
            assert!(config.store.url.is_none() && config.bus.kafka_bootstrap.is_none());
            jail.set_env("CHIME_STORE__URL", "postgres://chime:s3cret@db:5432/chime");
            jail.set_env("CHIME_BUS__KAFKA_BOOTSTRAP", "k1:9092,k2:9092");
            jail.set_env("CHIME_KEYS_DIR", "/etc/chime/keys");
            let config = load()?;
            assert_eq!(
                config.store.url.as_deref(),
                Some("postgres://chime:s3cret@db:5432/chime")
            );
            assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
            assert_eq!(
                config.bus.kafka_bootstrap.as_deref(),
                Some("k1:9092,k2:9092")
            );
            assert_eq!(config.keys_dir(), Path::new("/etc/chime/keys"));
            jail.set_env(
                "CHIME_STORE__URL",
                "mongodb://chime:s3cret@m1:27017,m2:27017/chime?replicaSet=rs0",
            );
            let config = load()?;
            assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
            jail.set_env("CHIME_STORE__URL", "mysql://db/chime");
            let error = load().expect_err("neither postgres nor mongodb");
            assert!(error.to_string().contains("store.url"), "{error}");
            jail.set_env(
                "CHIME_STORE__URL",
                "mongodb+srv://cluster.example.com/chime",
            );
            let error = load().expect_err("no SRV lookups in this build");
            assert!(error.to_string().contains("mongodb+srv"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn the_auth_section_comes_from_the_file_and_the_environment_and_is_validated() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(load()?.auth, chime_http::auth::AuthConfig::default());
            jail.create_file(
                "chime.toml",
                "[auth]\nissuer = \"https://idp.example.com/realms/x\"\nuser_claim = \"email\"\n",
            )?;
            jail.set_env("CHIME_AUTH__AUDIENCE", "chime-api");
            jail.set_env("CHIME_AUTH__JWKS_REFRESH_SECONDS", "60");
            let auth = load()?.auth;
            assert_eq!(
                auth.issuer.as_deref(),
                Some("https://idp.example.com/realms/x")
            );
            assert_eq!(auth.audience, "chime-api");
            assert_eq!(auth.user_claim, "email");
            assert_eq!(auth.jwks_refresh_seconds, 60);
            // Keys over plain HTTP from anywhere but loopback could be swapped in transit.
            jail.set_env("CHIME_AUTH__ISSUER", "http://idp.example.com");
            let error = load().expect_err("plain http issuer");
            assert!(error.to_string().contains("auth.issuer"), "{error}");
            jail.set_env("CHIME_AUTH__ISSUER", "http://127.0.0.1:8081");
            jail.set_env("CHIME_AUTH__ADMIN_CLAIM", "roles");
            let error = load().expect_err("admin_claim without admin_value");
            assert!(error.to_string().contains("admin_value"), "{error}");
            jail.set_env("CHIME_AUTH__ADMIN_VALUE", "chime-admin");
            assert_eq!(load()?.auth.admin_value.as_deref(), Some("chime-admin"));
            Ok(())
        });
    }
}
