//! Wires sign-in from `[auth]`: with an external issuer configured, tokens are verified
//! against its discovered, refreshed JWKS ([`OidcKeys`]) and the local issuer is off (it
//! neither verifies nor publishes anything, so it is no back door next to the organisation's
//! provider); without one, the local issuer of `chime token` verifies, and serves its
//! discovery document and JWKS.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chime_http::auth::AuthConfig;
use chime_http::{Authenticator, KeySource, LocalIssuer, OidcKeys};

pub struct Auth {
    pub authenticator: Arc<Authenticator>,
    /// The local issuer when it is the one in use.
    pub local_issuer: Option<Arc<LocalIssuer>>,
}

pub fn build(config: &AuthConfig, local: &Arc<LocalIssuer>) -> anyhow::Result<Auth> {
    let (keys, issuer, local_issuer): (Arc<dyn KeySource>, String, _) = match &config.issuer {
        Some(issuer) => {
            let keys = OidcKeys::new(issuer, Duration::from_secs(config.jwks_refresh_seconds))
                .context("auth.issuer")?;
            tracing::info!(%issuer, audience = %config.audience, "bearer tokens are verified against the issuer's JWKS");
            (Arc::new(keys), issuer.clone(), None)
        }
        None => (
            local.clone(),
            local.issuer().to_owned(),
            Some(local.clone()),
        ),
    };
    let authenticator = Authenticator::new(keys, &issuer, &config.audience)
        .with_user_claim(&config.user_claim)
        .with_admin_role(config.admin_role());
    Ok(Auth {
        authenticator: Arc::new(authenticator),
        local_issuer,
    })
}
