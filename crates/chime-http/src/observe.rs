//! Request metrics: `chime_http_requests_total{method,route,status}` and
//! `chime_http_request_duration_seconds{method,route}`, recorded by one middleware.
//!
//! `route` is the router's path template (`/api/v1/tasks/{id}`), taken from axum's
//! [`MatchedPath`], so ids never become label values; a request no route matches is
//! `unmatched`. Methods outside the standard set are `OTHER`, for the same reason. The
//! duration runs until the response head is ready (for the SSE stream, until it opens).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use chime_roles::metrics::{HttpLabels, HttpRouteLabels};
use chime_roles::Metrics;

/// The `route` of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method()).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .http_duration
        .get_or_create(&HttpRouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
