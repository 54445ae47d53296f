//! The email channel's configuration, and its validation at start-up.
//!
//! [`EmailConfig`] is what the operator writes; [`Settings`] is what the adapter runs with,
//! built once by [`Settings::parse`] so that a bad URL, sender or certificate stops Chime at
//! start-up with an error that names the field, instead of failing every delivery later.
//!
//! The SMTP URL follows lettre's conventions (`AsyncSmtpTransport::from_url`):
//!
//! | URL | transport |
//! | --- | --- |
//! | `smtp://host:port` | plain text, no TLS (local relays, tests) |
//! | `smtp://host:port?tls=required` | STARTTLS, refused if the server does not offer it |
//! | `smtp://host:port?tls=opportunistic` | STARTTLS when offered (open to downgrade) |
//! | `smtps://host:port` | TLS from the first byte (implicit TLS, port 465) |
//!
//! Credentials go in the user-info part, percent-encoded (`smtp://user:p%40ss@host:587`);
//! the URL is a secret, so `Debug` shows it with the user-info replaced by `***`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use serde::Deserialize;
use url::Url;

/// How the email channel reaches its SMTP relay.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://[user:pass@]host:port[?tls=required|opportunistic]` or
    /// `smtps://[user:pass@]host:port`. A secret: never logged.
    pub smtp_url: String,
    /// The sender mailbox, `Chime <reminders@example.com>` or a bare address.
    pub from: String,
    /// The web app's base URL; when set, every message links to `{base}/tasks/{task_id}`.
    #[serde(default)]
    pub app_base_url: Option<String>,
    /// Bound on one whole attempt (connect, TLS, AUTH, the SMTP transaction).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// An extra trusted root certificate (PEM), for a self-hosted relay with its own CA.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
}

fn default_timeout_seconds() -> u64 {
    30
}

impl EmailConfig {
    /// A config with the defaults for everything but the relay and the sender.
    pub fn new(smtp_url: impl Into<String>, from: impl Into<String>) -> Self {
        EmailConfig {
            smtp_url: smtp_url.into(),
            from: from.into(),
            app_base_url: None,
            timeout_seconds: default_timeout_seconds(),
            tls_ca_file: None,
        }
    }
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_url", &redacted_url(&self.smtp_url))
            .field("from", &self.from)
            .field("app_base_url", &self.app_base_url)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

/// The URL with its user-info (user name and password) replaced by `***`. The user name is
/// hidden too, because relays often use the account's email address as the user name.
pub(crate) fn redacted_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if !url.username().is_empty() || url.password().is_some() {
                // Both only fail for URLs that cannot have user-info, which these do.
                let _ = url.set_username("***");
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparseable URL, hidden>".to_owned(),
    }
}

/// Why the email channel refused its configuration. No variant holds the URL or its secrets.
#[derive(Debug, thiserror::Error)]
pub enum EmailConfigError {
    #[error("email smtp_url is not a valid URL")]
    SmtpUrlSyntax(#[source] url::ParseError),
    #[error(
        "email smtp_url is not usable: {reason}; expected \
         `smtp://[user:pass@]host:port[?tls=required|opportunistic]` or \
         `smtps://[user:pass@]host:port`"
    )]
    SmtpUrl { reason: String },
    #[error("email smtp_url could not be turned into an SMTP transport")]
    Transport(#[source] lettre::transport::smtp::Error),
    #[error("email from is not a mailbox such as `Chime <reminders@example.com>`")]
    From(#[source] lettre::address::AddressError),
    #[error("email app_base_url is not usable: {reason}")]
    AppBaseUrl { reason: String },
    #[error("email timeout_seconds must be at least 1")]
    ZeroTimeout,
    #[error("email tls_ca_file {path:?} could not be read")]
    TlsCaRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("email tls_ca_file {path:?} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    TlsCaEmpty { path: PathBuf },
    #[error("email tls_ca_file {path:?} is not a valid certificate")]
    TlsCaInvalid {
        path: PathBuf,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error(
        "email tls_ca_file is set but smtp_url uses no TLS; use `smtps://` or \
         `smtp://…?tls=required`"
    )]
    TlsCaWithoutTls,
}

/// How the connection is protected, as read from the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    None,
    Opportunistic,
    Required,
    Implicit,
}

/// A validated [`EmailConfig`].
pub(crate) struct Settings {
    /// Everything but the timeout is from the URL; kept to build a fresh pool (see `mod.rs`).
    pub(crate) builder: AsyncSmtpTransportBuilder,
    pub(crate) from: Mailbox,
    /// Without a trailing `/`.
    pub(crate) app_base_url: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) redacted_url: String,
}

impl Settings {
    pub(crate) fn parse(config: &EmailConfig) -> Result<Settings, EmailConfigError> {
        if config.timeout_seconds == 0 {
            return Err(EmailConfigError::ZeroTimeout);
        }
        let timeout = Duration::from_secs(config.timeout_seconds);

        let url = Url::parse(&config.smtp_url).map_err(EmailConfigError::SmtpUrlSyntax)?;
        let mode = tls_mode(&url)?;
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.to_owned(),
            _ => {
                return Err(EmailConfigError::SmtpUrl {
                    reason: "it names no host".into(),
                })
            }
        };
        if mode == TlsMode::None && url.password().is_some() {
            tracing::warn!(
                "email smtp_url sends credentials without TLS; use `smtps://` or \
                 `?tls=required` unless the relay is on this host"
            );
        }

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(EmailConfigError::Transport)?
            // lettre applies this to connecting only; `EmailChannel::send` bounds the rest.
            .timeout(Some(timeout));
        if let Some(path) = &config.tls_ca_file {
            let tls = tls_with_extra_root(mode, host, path)?;
            builder = builder.tls(tls);
        }

        let from: Mailbox = config.from.parse().map_err(EmailConfigError::From)?;
        let app_base_url = config
            .app_base_url
            .as_deref()
            .map(parse_app_base_url)
            .transpose()?;

        Ok(Settings {
            builder,
            from,
            app_base_url,
            timeout,
            redacted_url: redacted_url(&config.smtp_url),
        })
    }
}

fn tls_mode(url: &Url) -> Result<TlsMode, EmailConfigError> {
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    match (url.scheme(), tls.as_deref()) {
        ("smtp", None) => Ok(TlsMode::None),
        ("smtp", Some("opportunistic")) => Ok(TlsMode::Opportunistic),
        ("smtp", Some("required")) => Ok(TlsMode::Required),
        ("smtps", None) => Ok(TlsMode::Implicit),
        ("smtp", Some(other)) => Err(EmailConfigError::SmtpUrl {
            reason: format!("`tls={other}` is neither `required` nor `opportunistic`"),
        }),
        ("smtps", Some(_)) => Err(EmailConfigError::SmtpUrl {
            reason: "`smtps://` is always TLS and takes no `tls` parameter".into(),
        }),
        (scheme, _) => Err(EmailConfigError::SmtpUrl {
            reason: format!("the scheme is `{scheme}`, not `smtp` or `smtps`"),
        }),
    }
}

/// The same TLS mode lettre would pick from the URL, with `path`'s certificates trusted in
/// addition to the built-in roots.
fn tls_with_extra_root(
    mode: TlsMode,
    host: String,
    path: &std::path::Path,
) -> Result<Tls, EmailConfigError> {
    if mode == TlsMode::None {
        return Err(EmailConfigError::TlsCaWithoutTls);
    }
    let pem = std::fs::read(path).map_err(|source| EmailConfigError::TlsCaRead {
        path: path.to_owned(),
        source,
    })?;
    // lettre's rustls backend accepts a PEM file without any certificate and trusts nothing
    // extra; say so instead.
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(EmailConfigError::TlsCaEmpty {
            path: path.to_owned(),
        });
    }
    let invalid = |source| EmailConfigError::TlsCaInvalid {
        path: path.to_owned(),
        source,
    };
    let certificate = Certificate::from_pem(&pem).map_err(invalid)?;
    let parameters = TlsParameters::builder(host)
        .add_root_certificate(certificate)
        .build()
        .map_err(invalid)?;
    match mode {
        TlsMode::None => Err(EmailConfigError::TlsCaWithoutTls),
        TlsMode::Opportunistic => Ok(Tls::Opportunistic(parameters)),
        TlsMode::Required => Ok(Tls::Required(parameters)),
        TlsMode::Implicit => Ok(Tls::Wrapper(parameters)),
    }
}

fn parse_app_base_url(raw: &str) -> Result<String, EmailConfigError> {
    let url = Url::parse(raw).map_err(|e| EmailConfigError::AppBaseUrl {
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EmailConfigError::AppBaseUrl {
            reason: format!("the scheme is `{}`, not `http` or `https`", url.scheme()),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(EmailConfigError::AppBaseUrl {
            reason: "it must not have a query or fragment (`/tasks/{id}` is appended)".into(),
        });
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(config: &EmailConfig) -> Result<Settings, EmailConfigError> {
        Settings::parse(config)
    }

    #[test]
    fn debug_hides_the_user_and_password_of_the_smtp_url() {
        let config = EmailConfig::new(
            "smtps://alice%40example.com:hunter2@smtp.example.com:465",
            "Chime <reminders@example.com>",
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("alice"), "{debug}");
        assert!(
            debug.contains("smtps://***:***@smtp.example.com:465"),
            "{debug}"
        );
    }

    #[test]
    fn the_timeout_defaults_to_thirty_seconds_and_unknown_fields_are_refused() {
        let config: EmailConfig = serde_json::from_value(serde_json::json!({
            "smtp_url": "smtp://localhost:25",
            "from": "reminders@example.com",
        }))
        .expect("a minimal config");
        assert_eq!(config.timeout_seconds, 30);
        assert!(config.app_base_url.is_none() && config.tls_ca_file.is_none());

        let unknown = serde_json::from_value::<EmailConfig>(serde_json::json!({
            "smtp_url": "smtp://localhost:25",
            "from": "reminders@example.com",
            "smtp_password": "x",
        }));
        assert!(unknown.is_err());
    }

    #[test]
    fn url_errors_never_echo_the_password() {
        for url in [
            "smtp://user:hunter2@",
            "http://user:hunter2@example.com",
            "smtp://user:hunter2@example.com?tls=always",
            "smtps://user:hunter2@example.com?tls=required",
            "smtp://user:hunter2@example.com:99999",
        ] {
            let Err(err) = parse(&EmailConfig::new(url, "a@example.com")) else {
                panic!("{url} was accepted");
            };
            let mut text = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("smtp_url"), "{text}");
        }
    }

    #[test]
    fn each_tls_form_of_the_url_is_accepted() {
        for url in [
            "smtp://localhost:25",
            "smtp://u:p@localhost:587?tls=required",
            "smtp://localhost:587?tls=opportunistic",
            "smtps://u:p@smtp.example.com",
        ] {
            assert!(
                parse(&EmailConfig::new(url, "a@example.com")).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn a_from_that_is_not_a_mailbox_is_refused() {
        for from in ["", "chime", "Chime <reminders>", "a@b@c"] {
            let err = parse(&EmailConfig::new("smtp://localhost", from)).err();
            assert!(
                matches!(err, Some(EmailConfigError::From(_))),
                "{from}: {err:?}"
            );
        }
    }

    #[test]
    fn app_base_url_must_be_http_and_loses_its_trailing_slash() {
        let mut config = EmailConfig::new("smtp://localhost", "a@example.com");
        config.app_base_url = Some("https://chime.example.com/app/".into());
        let settings = parse(&config).expect("valid");
        assert_eq!(
            settings.app_base_url.as_deref(),
            Some("https://chime.example.com/app")
        );
        for bad in [
            "chime.example.com",
            "ftp://x.example.com",
            "https://x.example.com/?a=b",
        ] {
            config.app_base_url = Some(bad.into());
            assert!(
                matches!(parse(&config), Err(EmailConfigError::AppBaseUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let mut config = EmailConfig::new("smtp://localhost", "a@example.com");
        config.timeout_seconds = 0;
        assert!(matches!(parse(&config), Err(EmailConfigError::ZeroTimeout)));
    }

    #[test]
    fn a_ca_file_is_read_checked_and_needs_a_tls_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = EmailConfig::new("smtp://localhost", "a@example.com");
        config.tls_ca_file = Some(dir.path().join("missing.pem"));
        assert!(matches!(
            parse(&config),
            Err(EmailConfigError::TlsCaWithoutTls)
        ));

        config.smtp_url = "smtp://localhost?tls=required".into();

        config.tls_ca_file = Some(dir.path().join("missing.pem"));
        assert!(matches!(
            parse(&config),
            Err(EmailConfigError::TlsCaRead { .. })
        ));

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        config.tls_ca_file = Some(empty);
        assert!(matches!(
            parse(&config),
            Err(EmailConfigError::TlsCaEmpty { .. })
        ));

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        config.tls_ca_file = Some(broken);
        assert!(matches!(
            parse(&config),
            Err(EmailConfigError::TlsCaInvalid { .. })
        ));
    }
}
