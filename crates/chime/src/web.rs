//! Wires the `web` role: how its BFF reaches the task API (in-process unless `[web] api_url`
//! says the `definition` role runs elsewhere) and how users sign in (the configured OIDC
//! issuer, else the local issuer by name). Its sessions live in the process's store, so every
//! `web` instance on a shared store serves every signed-in browser.

use std::sync::Arc;

use anyhow::Context as _;
use chime_http::bff::{self, Bff, InProcess, OverHttp, SignIn, TaskApi, WebRoutes};
use chime_http::{AppState, LocalIssuer};
use chime_roles::Clock;
use chime_store::SessionStore;

use crate::Config;

pub fn routes(
    config: &Config,
    state: &AppState,
    issuer: &Arc<LocalIssuer>,
    public_base: &str,
    sessions: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<WebRoutes> {
    let api: Arc<dyn TaskApi> = match &config.web.api_url {
        Some(url) => {
            let base = reqwest::Url::parse(&format!("{}/", url.trim_end_matches('/')))
                .context("web.api_url")?;
            tracing::info!(%base, "the web role calls the task API over HTTP");
            Arc::new(OverHttp::new(base))
        }
        // The API's own router, with the same state: the BFF's calls are function calls.
        None => Arc::new(InProcess(chime_http::router(state.clone()))),
    };
    let plain_http = config.tls.cert_file.is_none() && !config.behind_tls_gateway;
    if config.web.secure_cookies
        && plain_http
        && !public_base.contains("://127.0.0.1")
        && !public_base.contains("://localhost")
        && !public_base.contains("://[::1]")
    {
        tracing::warn!(%public_base, "browsers drop the web app's Secure session cookie over plain HTTP on a non-loopback address: serve HTTPS (or behind_tls_gateway), or set web.secure_cookies = false for a trial");
    }
    let sign_in = match &config.auth.issuer {
        Some(oidc_issuer) => SignIn::Oidc(Box::new(Bff::oidc_client(
            &config.web,
            oidc_issuer,
            public_base,
        ))),
        None => SignIn::Local(issuer.clone()),
    };
    let bff = Bff::new(
        &config.web,
        sign_in,
        state.auth.clone(),
        api,
        state.metrics.clone(),
        sessions,
        clock,
    );
    Ok(bff::routes(Arc::new(bff), &config.web.static_dir))
}
