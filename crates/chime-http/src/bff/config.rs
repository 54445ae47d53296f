//! The `web` role's configuration (`[web]`) and the [`Bff`] every handler shares: how users
//! sign in, how the task API is reached, where sessions live.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chime_roles::{Clock, Metrics};
use chime_store::SessionStore;
use serde::{Deserialize, Serialize};

use super::session::{Secret, Sessions};
use super::{oidc, TaskApi};
use crate::{Authenticator, LocalIssuer};

/// `[web]`: the web app and its BFF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The built app (`npm run build` in `web/`).
    pub static_dir: PathBuf,
    /// The task API's base URL when the `definition` role runs elsewhere; unset: in-process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// This app's OIDC client id at `[auth] issuer`.
    pub client_id: String,
    /// Its secret (`CHIME_WEB__CLIENT_SECRET`); never serialised or logged.
    #[serde(skip_serializing)]
    pub client_secret: Option<String>,
    pub scopes: String,
    /// RFC 8707 resource to ask the access token for, when the provider needs one to give it
    /// the task API's audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Mark the session cookie `Secure`. Browsers accept it on `https://` and on
    /// `http://localhost`/`127.0.0.1`; turn it off only to try the app over plain HTTP on
    /// another host.
    pub secure_cookies: bool,
    /// A signed-in session lasts this long (or until the access token expires).
    pub session_minutes: u64,
    /// Count feature use reported by the app (each user can also opt out in Settings).
    pub telemetry: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            static_dir: PathBuf::from("web/dist"),
            api_url: None,
            client_id: "chime-web".to_owned(),
            client_secret: None,
            scopes: "openid".to_owned(),
            resource: None,
            secure_cookies: true,
            session_minutes: 8 * 60,
            telemetry: true,
        }
    }
}

impl WebConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.api_url {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err("web.api_url: not an absolute http(s) URL".to_owned());
            }
        }
        if self.session_minutes == 0 {
            return Err("web.session_minutes: must be at least 1".to_owned());
        }
        if self.client_id.is_empty() {
            return Err("web.client_id: must not be empty".to_owned());
        }
        Ok(())
    }
}

/// How users sign in.
pub enum SignIn {
    /// The embedded default: by name, through the local issuer.
    Local(Arc<LocalIssuer>),
    /// Authorization code + PKCE against the configured issuer.
    Oidc(Box<oidc::OidcClient>),
}

pub struct Bff {
    pub sign_in: SignIn,
    /// Verifies OIDC access tokens as the task API will.
    pub auth: Arc<Authenticator>,
    pub api: Arc<dyn TaskApi>,
    pub sessions: Sessions,
    pub metrics: Arc<Metrics>,
    pub secure_cookies: bool,
    pub telemetry: bool,
}

impl Bff {
    /// The BFF, keeping its sessions in `sessions` (the process's store, so that every
    /// instance on it shares them) and expiring them by `clock`.
    pub fn new(
        config: &WebConfig,
        sign_in: SignIn,
        auth: Arc<Authenticator>,
        api: Arc<dyn TaskApi>,
        metrics: Arc<Metrics>,
        sessions: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            sign_in,
            auth,
            api,
            sessions: Sessions::new(
                sessions,
                clock,
                Duration::from_secs(config.session_minutes.saturating_mul(60)),
            ),
            metrics,
            secure_cookies: config.secure_cookies,
            telemetry: config.telemetry,
        }
    }

    /// The OIDC client for `issuer`, redirecting to `{public_base}/bff/auth/callback`.
    pub fn oidc_client(config: &WebConfig, issuer: &str, public_base: &str) -> oidc::OidcClient {
        oidc::OidcClient::new(
            issuer,
            &config.client_id,
            config.client_secret.clone().map(Secret),
            &config.scopes,
            config.resource.clone(),
            format!("{}/bff/auth/callback", public_base.trim_end_matches('/')),
        )
    }
}
