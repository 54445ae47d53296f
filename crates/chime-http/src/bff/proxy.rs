//! `/bff/api/{path}`: the rest of the task API for the app, as the signed-in user, with the
//! session's bearer token. Admin calls are refused here, and the API's own paths (`Location`)
//! are not passed back: they mean nothing to the app.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;

use super::{problem, Bff};

/// `/bff/api/{path}`: the task API as the signed-in user (admin calls excepted).
pub(super) async fn proxy(
    State(bff): State<Arc<Bff>>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    let result: Result<Response, Response> = async {
        let who = bff.user(request.method(), request.headers()).await?;
        // The path arrives percent-decoded: `%2e%2e` and `%61dmin` are caught here too.
        let path = path.trim_start_matches('/');
        if path.starts_with("admin") || path.contains("..") || path.contains('?') {
            return Err(problem(StatusCode::NOT_FOUND, "not-found", "no such call"));
        }
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let bearer = bff.bearer(&who)?;
        let (parts, body) = request.into_parts();
        let mut forwarded = axum::http::Request::builder()
            .method(parts.method)
            .uri(format!("/api/v1/{path}{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        for name in [header::CONTENT_TYPE, header::ACCEPT] {
            if let Some(value) = parts.headers.get(&name) {
                forwarded = forwarded.header(name, value);
            }
        }
        if let Some(value) = parts.headers.get("last-event-id") {
            forwarded = forwarded.header("last-event-id", value);
        }
        let forwarded = forwarded.body(body).map_err(|_| {
            problem(
                StatusCode::BAD_REQUEST,
                "malformed",
                "not a valid request path",
            )
        })?;
        let mut response = bff.api.send(forwarded).await;
        // The API's own paths mean nothing to the app.
        response.headers_mut().remove(header::LOCATION);
        Ok(response)
    }
    .await;
    result.unwrap_or_else(|r| r)
}
