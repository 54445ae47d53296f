//! Wires the `web` role: how its BFF reaches the task API (in-process unless `[web] api_url`
//! says the `definition` role runs elsewhere) and how users sign in (the configured OIDC
//! issuer, else the local issuer by name).

use std::sync::Arc;

use anyhow::Context as _;
use chime_http::bff::{self, Bff, InProcess, OverHttp, SignIn, TaskApi, WebRoutes};
use chime_http::{AppState, LocalIssuer};

use crate::Config;

pub fn routes(
    config: &Config,
    state: &AppState,
    issuer: &Arc<LocalIssuer>,
    public_base: &str,
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
    );
    Ok(bff::routes(Arc::new(bff), &config.web.static_dir))
}
