//! Environments: the design's `internal_integration` and `production`, selected with
//! `--profile NAME` (or `CHIME_PROFILE`).
//!
//! A profile is a TOML file under `deploy/config/`, compiled into the binary (so `--profile`
//! works wherever the binary is copied, and the files in the repository are the ones that
//! run). It is one more layer of the configuration, between the built-in defaults and
//! `chime.toml`: defaults < profile < `chime.toml` < `CHIME_*` < flags. So a profile sets the
//! environment's policy and sensible values, and the deployment's own file and environment
//! add what is specific to it (addresses, secrets) and may still override anything. We do not
//! use figment's own profiles: they select a table *inside* one file, where we want a file per
//! environment that the deployment's `chime.toml` layers over.
//!
//! A profile names its [`Environment`]; `production` adds start-up requirements, each refused
//! with its own message (all of them at once): TLS on the listener or an explicit
//! `behind_tls_gateway = true`; external key material (configured `encryption.keys`, not the
//! data directory's key file); an OpenID Connect issuer (`[auth] issuer`).

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::Config;

/// The profiles compiled in, by name.
const PROFILES: [(&str, &str); 2] = [
    (
        "internal_integration",
        include_str!("../../../deploy/config/internal_integration.toml"),
    ),
    (
        "production",
        include_str!("../../../deploy/config/production.toml"),
    ),
];

/// The TOML of the profile called `name`.
pub fn source(name: &str) -> anyhow::Result<&'static str> {
    match PROFILES.iter().find(|(n, _)| *n == name.trim()) {
        Some((_, toml)) => Ok(toml),
        None => bail!(
            "unknown profile `{name}`: expected one of {}",
            PROFILES.map(|(n, _)| n).join(", ")
        ),
    }
}

/// Which environment a configuration is for; `production` is strict at start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    #[default]
    Development,
    InternalIntegration,
    Production,
}

impl Environment {
    pub fn name(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::InternalIntegration => "internal_integration",
            Environment::Production => "production",
        }
    }
}

/// What stops `config` from running in its environment: one sentence per problem, each
/// saying how to fix it. Empty outside production.
pub fn problems(config: &Config) -> Vec<String> {
    if config.environment != Environment::Production {
        return Vec::new();
    }
    let mut problems = Vec::new();
    if !config.tls.enabled() && !config.behind_tls_gateway {
        problems.push(
            "TLS: production serves HTTPS only: configure [tls] cert_file and key_file \
             (CHIME_TLS__CERT_FILE, CHIME_TLS__KEY_FILE), or set behind_tls_gateway = true \
             (CHIME_BEHIND_TLS_GATEWAY) when a gateway in front of Chime terminates TLS"
                .to_owned(),
        );
    }
    if config.encryption.keys.is_empty() {
        problems.push(
            "encryption keys: production needs external key material: configure [encryption] \
             keys = [\"id:<base64 of 32 bytes>\"] (CHIME_ENCRYPTION__KEYS) from your secret \
             store; the data directory's encryption.key is not used in production \
             (encryption.data_dir_key = false)"
                .to_owned(),
        );
    }
    if config.auth.issuer.is_none() {
        problems.push(
            "sign-in: production needs an OpenID Connect issuer: set [auth] issuer = \
             \"https://...\" (CHIME_AUTH__ISSUER); the local issuer of `chime token` is for \
             development"
                .to_owned(),
        );
    }
    problems
}

/// Refuses `config` when [`problems`] finds any, listing all of them.
pub fn check(config: &Config) -> anyhow::Result<()> {
    let problems = problems(config);
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "the {} environment refuses to start:\n  - {}",
        config.environment.name(),
        problems.join("\n  - ")
    )
}

#[cfg(test)]
// figment's Jail closures return its (large) error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn load(profile: &str) -> Result<Config, String> {
        Config::load(
            None,
            &Overrides {
                profile: Some(profile.to_owned()),
                ..Overrides::default()
            },
        )
        .map_err(|e| format!("{e:#}"))
    }

    fn key() -> String {
        chime_crypto::Keyring::generate_spec("k1").expect("spec")
    }

    /// A production deployment's own settings, less the ones named in `without`.
    fn production_env(jail: &mut figment::Jail, without: &str) {
        if without != "tls" {
            jail.set_env("CHIME_BEHIND_TLS_GATEWAY", "true");
        }
        if without != "keys" {
            jail.set_env("CHIME_ENCRYPTION__KEYS", key());
        }
        if without != "issuer" {
            jail.set_env("CHIME_AUTH__ISSUER", "https://idp.example.com/realms/x");
        }
    }

    #[test]
    fn every_profile_file_parses_and_names_its_environment() {
        figment::Jail::expect_with(|jail| {
            production_env(jail, "");
            let integration = load("internal_integration").map_err(figment::Error::from)?;
            assert_eq!(integration.environment, Environment::InternalIntegration);
            let production = load("production").map_err(figment::Error::from)?;
            assert_eq!(production.environment, Environment::Production);
            assert!(!production.encryption.data_dir_key);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_profile_is_refused_with_the_known_names() {
        figment::Jail::expect_with(|_| {
            let error = load("staging").expect_err("unknown");
            assert!(error.contains("staging"), "{error}");
            assert!(
                error.contains("internal_integration, production"),
                "{error}"
            );
            Ok(())
        });
    }

    #[test]
    fn production_refuses_to_start_without_tls_or_a_tls_gateway() {
        figment::Jail::expect_with(|jail| {
            production_env(jail, "tls");
            let error = load("production").expect_err("no tls");
            assert!(
                error.contains("TLS: production serves HTTPS only"),
                "{error}"
            );
            assert!(error.contains("behind_tls_gateway = true"), "{error}");
            assert!(!error.contains("encryption keys:"), "{error}");
            assert!(!error.contains("sign-in:"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn production_accepts_tls_on_the_listener_instead_of_a_gateway() {
        figment::Jail::expect_with(|jail| {
            production_env(jail, "tls");
            jail.set_env("CHIME_TLS__CERT_FILE", "/etc/chime/cert.pem");
            jail.set_env("CHIME_TLS__KEY_FILE", "/etc/chime/key.pem");
            let config = load("production").map_err(figment::Error::from)?;
            assert!(config.tls.enabled());
            Ok(())
        });
    }

    #[test]
    fn production_refuses_to_start_without_external_key_material() {
        figment::Jail::expect_with(|jail| {
            production_env(jail, "keys");
            let error = load("production").expect_err("no keys");
            assert!(
                error.contains("encryption keys: production needs external key material"),
                "{error}"
            );
            assert!(error.contains("CHIME_ENCRYPTION__KEYS"), "{error}");
            assert!(!error.contains("TLS:"), "{error}");
            // Turning the data directory's key back on does not satisfy production.
            jail.set_env("CHIME_ENCRYPTION__DATA_DIR_KEY", "true");
            let error = load("production").expect_err("data dir key");
            assert!(error.contains("encryption keys:"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn production_refuses_to_start_without_an_oidc_issuer() {
        figment::Jail::expect_with(|jail| {
            production_env(jail, "issuer");
            let error = load("production").expect_err("no issuer");
            assert!(
                error.contains("sign-in: production needs an OpenID Connect issuer"),
                "{error}"
            );
            assert!(error.contains("[auth] issuer"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn production_with_nothing_configured_names_all_three_reasons_at_once() {
        figment::Jail::expect_with(|_| {
            let error = load("production").expect_err("nothing configured");
            for reason in ["TLS:", "encryption keys:", "sign-in:"] {
                assert!(error.contains(reason), "{reason} missing from: {error}");
            }
            Ok(())
        });
    }

    #[test]
    fn a_complete_production_configuration_passes_and_the_file_layers_over_the_profile() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "chime.toml",
                &format!(
                    "behind_tls_gateway = true\nlisten = \"0.0.0.0:9000\"\n\n[encryption]\nkeys = [\"{}\"]\n\n[auth]\nissuer = \"https://idp.example.com/realms/x\"\n\n[backup]\nkeep = 3\n",
                    key()
                ),
            )?;
            let config = load("production").map_err(figment::Error::from)?;
            assert_eq!(config.environment, Environment::Production);
            assert_eq!(config.listen.port(), 9000, "the file overrides the profile");
            assert_eq!(config.backup.keep, 3);
            // From the profile, where the file is silent.
            assert_eq!(config.log_format, crate::config::LogFormat::Json);
            Ok(())
        });
    }
}
