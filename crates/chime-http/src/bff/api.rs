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

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderName, Request, Response, StatusCode};
use axum::Router;
use futures::TryStreamExt;
use tower::ServiceExt;

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
            return super::problem(StatusCode::BAD_GATEWAY, "bad-gateway", "bad task API URL");
        };
        let Ok(bytes) = axum::body::to_bytes(body, crate::BODY_LIMIT).await else {
            return super::problem(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "body too large");
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
                super::problem(
                    StatusCode::BAD_GATEWAY,
                    "bad-gateway",
                    "the task API did not answer; try again",
                )
            }
        }
    }
}
