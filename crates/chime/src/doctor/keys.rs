//! The keys a deployment cannot lose: the encryption keys of personal data, and the keys
//! tokens are checked with (the OIDC provider's published ones, or the local issuer's signing
//! key). A backup holds none of them, so each failure says where to restore it from.

use std::time::Duration;

use super::{check, error_chain, Check, Status};
use crate::backup;
use crate::config::Config;

pub(super) fn keys_check(config: &Config) -> Check {
    let encryption = &config.encryption;
    if !encryption.keys.is_empty() {
        return match chime_crypto::Keyring::parse(&encryption.keys) {
            Ok(keys) => check(
                Status::Ok,
                "encryption keys",
                format!(
                    "{} configured (ids {}); {} encrypts",
                    keys.key_ids().len(),
                    keys.key_ids().join(", "),
                    keys.current_id()
                ),
            ),
            Err(e) => check(
                Status::Fail,
                "encryption keys",
                format!("encryption.keys: {e}: each is `id:<base64 of 32 bytes>`"),
            ),
        };
    }
    let path = config.data_dir.join(crate::encryption::KEY_FILE);
    if !encryption.data_dir_key {
        return check(
            Status::Fail,
            "encryption keys",
            "none configured and encryption.data_dir_key is off: configure encryption.keys",
        );
    }
    match std::fs::read_to_string(&path) {
        Ok(spec) => match chime_crypto::Keyring::parse(&[spec.trim()]) {
            Ok(_) => check(
                Status::Ok,
                "encryption keys",
                format!(
                    "the data directory's key file {} (fine for one machine; production \
                     configures encryption.keys)",
                    path.display()
                ),
            ),
            Err(e) => check(
                Status::Fail,
                "encryption keys",
                format!("{} is not a key: {e}", path.display()),
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => check(
            Status::Warn,
            "encryption keys",
            format!(
                "no key configured and no {} yet: `chime serve` creates one; a store restored \
                 from another data directory needs that directory's key file copied here first",
                path.display()
            ),
        ),
        Err(e) => check(
            Status::Fail,
            "encryption keys",
            format!("cannot read {}: {e}", path.display()),
        ),
    }
}

pub(super) async fn issuer_check(config: &Config) -> Check {
    match &config.auth.issuer {
        Some(issuer) => {
            let keys = match chime_http::OidcKeys::new(issuer, Duration::from_secs(60)) {
                Ok(keys) => keys,
                Err(e) => return check(Status::Fail, "issuer", format!("auth.issuer: {e}")),
            };
            match keys.check().await {
                Ok(n) => check(
                    Status::Ok,
                    "issuer",
                    format!(
                        "{issuer}: discovery document and JWKS fetched, {n} usable signing key(s)"
                    ),
                ),
                Err(e) => check(
                    Status::Fail,
                    "issuer",
                    format!(
                        "{issuer}: {}. Check auth.issuer (it must be the provider's exact `iss`, \
                         serving /.well-known/openid-configuration) and that it is reachable \
                         from here",
                        error_chain(&e)
                    ),
                ),
            }
        }
        None => {
            let file = config.keys_dir().join(backup::KEY_FILES[0]);
            if !file.is_file() {
                return check(
                    Status::Warn,
                    "issuer",
                    format!(
                        "local issuer: no key at {} yet: `chime serve` (or `chime token`) \
                         creates one; tokens signed with an earlier key stop working",
                        file.display()
                    ),
                );
            }
            match chime_http::LocalIssuer::load_or_create(
                config.keys_dir(),
                "http://doctor.invalid",
                &config.auth.audience,
            ) {
                Ok(issuer) => check(
                    Status::Ok,
                    "issuer",
                    format!(
                        "local issuer: the signing key loads (kid {}); production uses \
                         [auth] issuer instead",
                        issuer.kid()
                    ),
                ),
                Err(e) => check(
                    Status::Fail,
                    "issuer",
                    format!(
                        "local issuer: {e}: restore {} from a backup, or delete it to start a \
                         new key (every token must then be issued again)",
                        file.display()
                    ),
                ),
            }
        }
    }
}
