//! The `web` role: the backend for the React app (BFF) under `/bff`, and the app's static
//! files. [`config`] holds `[web]` and the [`Bff`] every handler shares; this file routes.
//!
//! - **Sessions** ([`session`]): an opaque id in an `HttpOnly`, `SameSite=Lax`, `Secure`
//!   cookie; tokens stay on the server, in the store every `web` instance shares. Every
//!   state-changing call carries the session's CSRF token in `X-CSRF-Token` (the app reads it
//!   from `GET /bff/session`); a cross-site form or script can neither read it nor, thanks to
//!   `SameSite`, ride the cookie.
//! - **Sign-in** (`sign_in`): with `[auth] issuer` set, authorization code + PKCE against it
//!   ([`oidc`]); on the embedded default, `POST /bff/auth/local` signs in by name through the
//!   same session, and the local issuer signs a short-lived token for each call.
//! - **The task API** ([`api`]): in-process (the API's router called as a function) or over
//!   HTTP (`[web] api_url`) when the roles run apart. Its problem+json answers reach the app
//!   unchanged, so a refused field is named by the same JSON pointer.
//! - **UI-shaped calls** (`screens`): the home screen (upcoming occurrences across tasks,
//!   unread count), a task page (task, next occurrences, history), task search, and a preview
//!   that notes where DST or a short month moves or skips an occurrence. Everything else the
//!   app needs goes through `/bff/api/...` (`proxy`), the task API behind the session.
//! - **Feature telemetry** (`telemetry`): `POST /bff/telemetry` counts allowlisted feature
//!   names in `chime_web_features_used_total`; nothing about the user is kept.

// Helpers return `Err(Response)`: the answer that ends the request (a 401, a 403, the task
// API's own problem). It is built once, on a path that then returns; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;

pub mod api;
pub mod config;
pub mod oidc;
pub mod preview;
mod proxy;
mod screens;
pub mod session;
mod sign_in;
mod telemetry;

pub use api::{InProcess, OverHttp, TaskApi};
pub use config::{Bff, SignIn, WebConfig};
use proxy::proxy;
use screens::{
    add_occurrence, create_task, home, move_occurrence, preview_handler, replace_task,
    search_tasks, task_page,
};
use sign_in::{callback, login, logout, session_info, sign_in_local};
use telemetry::telemetry;

/// The `/bff` routes and the static files, as the task API's router takes them.
pub struct WebRoutes {
    pub bff: Router,
    pub files: Router,
}

pub fn routes(bff: Arc<Bff>, static_dir: &std::path::Path) -> WebRoutes {
    let router = Router::new()
        .route("/session", get(session_info))
        .route("/auth/local", post(sign_in_local))
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
        .route("/home", get(home))
        .route("/tasks", get(search_tasks).post(create_task))
        .route("/tasks/{id}", get(task_page).put(replace_task))
        .route("/tasks/{id}/occurrences", post(add_occurrence))
        .route(
            "/tasks/{id}/occurrences/{dueAt}/move",
            post(move_occurrence),
        )
        .route("/preview", post(preview_handler))
        .route("/telemetry", post(telemetry))
        .route("/api/{*path}", any(proxy))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "not-found", "no such BFF call") })
        .layer(axum::middleware::from_fn(no_store))
        .with_state(bff);
    WebRoutes {
        bff: router,
        files: files(static_dir),
    }
}

/// BFF answers are per user: never cached by the browser or anything between.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The built app: hashed assets cached for good, `index.html` for every other path so that
/// the app's own routes (`/tasks/tsk_…`) load it, revalidated each time. The build writes a
/// Brotli and a gzip copy beside each asset (web/scripts/precompress.mjs), sent to a browser
/// that accepts them: the app's script is a third of its size on the wire, with no
/// compression work per request.
fn files(dir: &std::path::Path) -> Router {
    if !dir.join("index.html").exists() {
        tracing::warn!(dir = %dir.display(), "the web app is not built here: run `npm ci && npm run build` in web/ (or set web.static_dir)");
    }
    let serve = tower_http::services::ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(tower_http::services::ServeFile::new(dir.join("index.html")));
    Router::new()
        .fallback_service(serve)
        .layer(axum::middleware::from_fn(cache_files))
}

async fn cache_files(request: Request, next: Next) -> Response {
    let immutable = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let value = if immutable && response.status().is_success() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    // One URL, an encoding per browser: caches keep them apart.
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// An RFC 9457 problem, as the task API writes them.
pub(crate) fn problem(status: StatusCode, kind: &str, detail: &str) -> Response {
    let body = crate::Problem {
        kind: format!("https://chime.dev/problems/{kind}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
        errors: Vec::new(),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use tower::ServiceExt;

    /// `GET path` of the built app in `dir`, accepting `encoding`.
    async fn get(dir: &std::path::Path, path: &str, encoding: &str) -> axum::response::Response {
        let request = Request::get(path)
            .header(header::ACCEPT_ENCODING, encoding)
            .body(Body::empty())
            .expect("request");
        super::files(dir).oneshot(request).await.expect("response")
    }

    #[tokio::test]
    async fn an_asset_goes_out_precompressed_to_a_browser_that_accepts_it_and_as_it_is_otherwise() {
        let dir = tempfile::tempdir().expect("dir");
        let assets = dir.path().join("assets");
        std::fs::create_dir(&assets).expect("assets");
        std::fs::write(dir.path().join("index.html"), "<!doctype html>").expect("index");
        std::fs::write(assets.join("app.js"), "plain").expect("js");
        std::fs::write(assets.join("app.js.br"), "brotli").expect("br");
        std::fs::write(assets.join("app.js.gz"), "gzip").expect("gz");

        let br = get(dir.path(), "/assets/app.js", "gzip, br").await;
        assert_eq!(br.status(), StatusCode::OK);
        assert_eq!(br.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(br.headers()[header::VARY], "accept-encoding");
        assert_eq!(
            br.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let gz = get(dir.path(), "/assets/app.js", "gzip").await;
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let plain = get(dir.path(), "/assets/app.js", "identity").await;
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let body = axum::body::to_bytes(plain.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"plain");
        // An app route is index.html, revalidated each time.
        let route = get(dir.path(), "/tasks/tsk_1", "br").await;
        assert_eq!(route.status(), StatusCode::OK);
        assert_eq!(route.headers()[header::CACHE_CONTROL], "no-cache");
    }
}
