//! How the BFF reaches the task API: a [`TaskApi`] takes an HTTP request for `/api/v1/...`
//! with the user's bearer token and returns the API's response unchanged (status, problem+json,
//! streaming body).
//!
//! Two implementations, one contract: [`InProcess`] hands the request to the task API's own
//! router as a function call (roles in one process: no socket, no serialisation beyond the
//! JSON bodies, and the same authentication, limits and errors as any other client), and
//! [`OverHttp`] sends it to `web.api_url` (roles apart, behind the gateway). Going through the
//! router rather than calling `Definition` directly keeps one code path for validation and
//! errors, so the UI sees exactly what the public API says.
//!
//! [`Bff`]'s own calls (the screens') go through the same [`TaskApi`], as the session's user.

use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderName, Method, Request, Response, StatusCode};
use axum::Router;
use futures::TryStreamExt;
use serde_json::Value;
use tower::ServiceExt;

use super::session::SignedIn;
use super::sign_in::signed_out;
use super::{problem, Bff, SignIn};

/// Sends one task API request.
#[async_trait]
pub trait TaskApi: Send + Sync + 'static {
    async fn send(&self, request: Request<Body>) -> Response<Body>;
}

/// The task API's router in this process.
pub struct InProcess(pub Router);

#[async_trait]
impl TaskApi for InProcess {
    async fn send(&self, request: Request<Body>) -> Response<Body> {
        match self.0.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// The task API at a base URL (`http://definition:8080`).
pub struct OverHttp {
    base: url::Url,
    client: reqwest::Client,
}

impl OverHttp {
    pub fn new(base: url::Url) -> Self {
        Self {
            base,
            client: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }
}

/// Request headers worth forwarding: the credential, the body's type, SSE resumption.
const FORWARDED: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("last-event-id"),
];

/// Response headers worth returning to the browser.
const RETURNED: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::RETRY_AFTER,
    header::CACHE_CONTROL,
];

#[async_trait]
impl TaskApi for OverHttp {
    async fn send(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .trim_start_matches('/');
        let Ok(url) = self.base.join(path) else {
            return problem(StatusCode::BAD_GATEWAY, "bad-gateway", "bad task API URL");
        };
        let Ok(bytes) = axum::body::to_bytes(body, crate::BODY_LIMIT).await else {
            return problem(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "body too large");
        };
        let mut outgoing = self.client.request(parts.method, url).body(bytes);
        for name in FORWARDED {
            if let Some(value) = parts.headers.get(&name) {
                outgoing = outgoing.header(name, value);
            }
        }
        match outgoing.send().await {
            Ok(upstream) => {
                let mut response = Response::builder().status(upstream.status());
                for name in RETURNED {
                    if let Some(value) = upstream.headers().get(&name) {
                        response = response.header(name, value);
                    }
                }
                let stream = upstream.bytes_stream().map_err(std::io::Error::other);
                response
                    .body(Body::from_stream(stream))
                    .unwrap_or_else(|_| Response::new(Body::empty()))
            }
            Err(error) => {
                tracing::warn!(%error, "the task API did not answer");
                problem(
                    StatusCode::BAD_GATEWAY,
                    "bad-gateway",
                    "the task API did not answer; try again",
                )
            }
        }
    }
}

impl Bff {
    /// The bearer token the task API gets for this user.
    pub(super) fn bearer(&self, who: &SignedIn) -> Result<String, Response<Body>> {
        match (&who.access_token, &self.sign_in) {
            (Some((token, _)), _) => Ok(token.0.clone()),
            (None, SignIn::Local(issuer)) => issuer
                .sign(&who.user, Duration::from_secs(300))
                .map_err(|e| {
                    tracing::error!(error = %e, "the local issuer cannot sign");
                    problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "cannot sign in",
                    )
                }),
            (None, SignIn::Oidc(_)) => Err(signed_out()),
        }
    }

    pub(super) async fn call(
        &self,
        who: &SignedIn,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Response<Body>, Response<Body>> {
        let bearer = self.bearer(who)?;
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(format!("/api/v1{path_and_query}"))
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(value).unwrap_or_default())
            }
            None => Body::empty(),
        };
        let request = request.body(body).map_err(|_| {
            problem(
                StatusCode::BAD_REQUEST,
                "malformed",
                "not a valid request path",
            )
        })?;
        Ok(self.api.send(request).await)
    }

    /// A JSON answer of the task API; anything but a success is returned as it came.
    pub(super) async fn json(
        &self,
        who: &SignedIn,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value, Response<Body>> {
        let response = self.call(who, method, path_and_query, body).await?;
        if !response.status().is_success() {
            return Err(response);
        }
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .map_err(|_| problem(StatusCode::BAD_GATEWAY, "bad-gateway", "truncated answer"))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| problem(StatusCode::BAD_GATEWAY, "bad-gateway", "not JSON"))
    }
}
