//! The `web` role: the backend for the React app (BFF) under `/bff`, and the app's static
//! files.
//!
//! - **Sessions** ([`session`]): an opaque id in an `HttpOnly`, `SameSite=Lax`, `Secure`
//!   cookie; tokens stay on the server, in the store every `web` instance shares. Every
//!   state-changing call carries the session's CSRF token in `X-CSRF-Token` (the app reads it
//!   from `GET /bff/session`); a cross-site form or script can neither read it nor, thanks to
//!   `SameSite`, ride the cookie.
//! - **Sign-in**: with `[auth] issuer` set, authorization code + PKCE against it ([`oidc`]);
//!   on the embedded default, `POST /bff/auth/local` signs in by name through the same
//!   session, and the local issuer signs a short-lived token for each call.
//! - **The task API** ([`api`]): in-process (the API's router called as a function) or over
//!   HTTP (`[web] api_url`) when the roles run apart. Its problem+json answers reach the app
//!   unchanged, so a refused field is named by the same JSON pointer.
//! - **UI-shaped calls**: the home screen (upcoming occurrences across tasks, unread count),
//!   a task page (task, next occurrences, history), task search, and a preview that notes
//!   where DST or a short month moves or skips an occurrence. Everything else the app needs
//!   goes through `/bff/api/...`, the task API behind the session.
//! - **Feature telemetry**: `POST /bff/telemetry` counts allowlisted feature names in
//!   `chime_web_features_used_total`; nothing about the user is kept.

// Helpers return `Err(Response)`: the answer that ends the request (a 401, a 403, the task
// API's own problem). It is built once, on a path that then returns; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use chime_core::UserId;
use chime_roles::{Clock, Metrics};
use chime_store::SessionStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Authenticator, LocalIssuer};

pub mod api;
pub mod oidc;
pub mod preview;
pub mod session;

pub use api::{InProcess, OverHttp, TaskApi};
use session::{Pending, Secret, Session, Sessions, SignedIn, COOKIE};

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
/// the app's own routes (`/tasks/tsk_…`) load it, revalidated each time.
fn files(dir: &std::path::Path) -> Router {
    if !dir.join("index.html").exists() {
        tracing::warn!(dir = %dir.display(), "the web app is not built here: run `npm ci && npm run build` in web/ (or set web.static_dir)");
    }
    let serve = tower_http::services::ServeDir::new(dir)
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
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
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

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl Bff {
    fn set_cookie(&self, id: &str, max_age: Option<Duration>) -> HeaderValue {
        let mut cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure_cookies {
            cookie.push_str("; Secure");
        }
        match max_age {
            Some(age) => cookie.push_str(&format!("; Max-Age={}", age.as_secs())),
            None => cookie.push_str("; Max-Age=0"),
        }
        HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static(""))
    }

    /// The live session of this request's cookie, if any.
    async fn session(&self, headers: &HeaderMap) -> Result<Option<(String, Session)>, Response> {
        let Some(id) = cookie_value(headers) else {
            return Ok(None);
        };
        let session = self.sessions.get(&id).await.map_err(sessions_failed)?;
        Ok(session.map(|s| (id, s)))
    }

    /// This request's session, or a new anonymous one (`true` when new: the response must
    /// set its cookie, see [`Bff::cookie_if_new`]).
    async fn session_or_new(
        &self,
        headers: &HeaderMap,
    ) -> Result<(String, Session, bool), Response> {
        match self.session(headers).await? {
            Some((id, session)) => Ok((id, session, false)),
            None => {
                let (id, session) = self.sessions.create().await.map_err(sessions_failed)?;
                Ok((id, session, true))
            }
        }
    }

    /// `response` with the cookie of a session [`Bff::session_or_new`] just created.
    fn cookie_if_new(&self, mut response: Response, id: &str, new: bool) -> Response {
        if new {
            response.headers_mut().insert(
                header::SET_COOKIE,
                self.set_cookie(id, Some(session::ANONYMOUS_TTL)),
            );
        }
        response
    }

    /// The signed-in user of this request; for state-changing methods, only with the session's
    /// CSRF token.
    async fn user(&self, method: &Method, headers: &HeaderMap) -> Result<SignedIn, Response> {
        let Some((_, session)) = self.session(headers).await? else {
            return Err(signed_out());
        };
        check_csrf(method, headers, &session)?;
        let who = session.signed_in.ok_or_else(signed_out)?;
        if let Some((_, expires)) = &who.access_token {
            if *expires <= self.sessions.now() {
                return Err(signed_out());
            }
        }
        Ok(who)
    }

    /// The bearer token the task API gets for this user.
    fn bearer(&self, who: &SignedIn) -> Result<String, Response> {
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

    async fn call(
        &self,
        who: &SignedIn,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Response, Response> {
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
    async fn json(
        &self,
        who: &SignedIn,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value, Response> {
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

/// The answer when sessions cannot be read or written: the cause is logged, never sent.
fn sessions_failed(error: session::Error) -> Response {
    match error {
        session::Error::Full => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many sessions; try again later",
        ),
        session::Error::Store(error) => {
            tracing::error!(%error, source = ?std::error::Error::source(&error), "the session store failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "sessions are unavailable now; try again later",
            )
        }
    }
}

fn signed_out() -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        "signed-out",
        "sign in to continue",
    )
}

fn check_csrf(method: &Method, headers: &HeaderMap, session: &Session) -> Result<(), Response> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session::same(sent, &session.csrf) {
        Ok(())
    } else {
        Err(problem(
            StatusCode::FORBIDDEN,
            "csrf",
            "this request lacks the session's CSRF token; reload the page",
        ))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionInfo {
    signed_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    csrf_token: String,
    /// `local` or `oidc`: which sign-in the app offers.
    sign_in: &'static str,
    telemetry: bool,
}

/// `GET /bff/session`: who is signed in, and the CSRF token; starts a session if none.
async fn session_info(State(bff): State<Arc<Bff>>, headers: HeaderMap) -> Response {
    let (id, session, fresh) = match bff.session_or_new(&headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let info = SessionInfo {
        signed_in: session.signed_in.is_some(),
        user: session
            .signed_in
            .as_ref()
            .map(|s| s.user.as_str().to_owned()),
        csrf_token: session.csrf,
        sign_in: match bff.sign_in {
            SignIn::Local(_) => "local",
            SignIn::Oidc(_) => "oidc",
        },
        telemetry: bff.telemetry,
    };
    bff.cookie_if_new(Json(info).into_response(), &id, fresh)
}

#[derive(Deserialize)]
struct LocalSignIn {
    user: Option<String>,
}

/// `POST /bff/auth/local {"user"}`: the embedded default's sign-in by name.
async fn sign_in_local(
    State(bff): State<Arc<Bff>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !matches!(bff.sign_in, SignIn::Local(_)) {
        return problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "sign in with the organisation's provider",
        );
    }
    let (old, session) = match bff.session(&headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return signed_out(),
        Err(response) => return response,
    };
    if let Err(refused) = check_csrf(&Method::POST, &headers, &session) {
        return refused;
    }
    let raw = serde_json::from_slice::<LocalSignIn>(&body)
        .ok()
        .and_then(|b| b.user)
        .unwrap_or_default();
    let user = match UserId::parse(raw.trim()) {
        Ok(user) => user,
        Err(_) => {
            let body = crate::Problem {
                kind: "https://chime.dev/problems/validation".to_owned(),
                title: "The request has invalid fields".to_owned(),
                status: 422,
                detail: "/user: a user name is 1 to 255 characters, without control characters"
                    .to_owned(),
                errors: vec![chime_core::FieldError::new(
                    "/user",
                    Some(Value::String(raw)),
                    "a user name is 1 to 255 characters, without control characters",
                )],
            };
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                [(header::CONTENT_TYPE, "application/problem+json")],
                serde_json::to_string(&body).unwrap_or_default(),
            )
                .into_response();
        }
    };
    let signed_in = bff
        .sessions
        .sign_in(
            Some(&old),
            SignedIn {
                user,
                access_token: None,
            },
        )
        .await;
    let (id, session) = match signed_in {
        Ok(signed_in) => signed_in,
        Err(error) => return sessions_failed(error),
    };
    let mut response = Json(json!({"signedIn": true, "csrfToken": session.csrf})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        bff.set_cookie(&id, Some(bff.sessions_ttl())),
    );
    response
}

impl Bff {
    fn sessions_ttl(&self) -> Duration {
        self.sessions.ttl()
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
}

/// Only a path of this app: never an open redirect.
fn safe_return(to: Option<String>) -> String {
    match to {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/".to_owned(),
    }
}

/// `GET /bff/auth/login`: off to the provider, with PKCE.
async fn login(
    State(bff): State<Arc<Bff>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let SignIn::Oidc(client) = &bff.sign_in else {
        return Redirect::to("/").into_response();
    };
    let (id, _, fresh) = match bff.session_or_new(&headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let authorization = match client.authorize().await {
        Ok(a) => a,
        Err(error) => {
            tracing::warn!(%error, "cannot start an OIDC sign-in");
            return problem(
                StatusCode::BAD_GATEWAY,
                "sign-in-unavailable",
                "the sign-in provider cannot be reached; try again later",
            );
        }
    };
    let pending = Pending {
        state: authorization.state,
        nonce: authorization.nonce,
        verifier: authorization.verifier,
        return_to: safe_return(query.return_to),
    };
    match bff.sessions.set_pending(&id, pending).await {
        Ok(true) => {}
        // Gone meanwhile (signed out elsewhere, or expired): the callback would fail anyway.
        Ok(false) => return Redirect::to("/?signInError=session").into_response(),
        Err(error) => return sessions_failed(error),
    }
    bff.cookie_if_new(Redirect::to(&authorization.url).into_response(), &id, fresh)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /bff/auth/callback`: the provider sends the browser back with a code.
async fn callback(
    State(bff): State<Arc<Bff>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let SignIn::Oidc(client) = &bff.sign_in else {
        return Redirect::to("/").into_response();
    };
    let failed = |why: &str| Redirect::to(&format!("/?signInError={why}")).into_response();
    let (old, _) = match bff.session(&headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return failed("session"),
        Err(response) => return response,
    };
    let pending = match bff.sessions.take_pending(&old).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return failed("state"),
        Err(error) => return sessions_failed(error),
    };
    if query.error.is_some() {
        return failed("refused");
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return failed("state");
    };
    if !session::same(&state, &pending.state) {
        return failed("state");
    }
    let tokens = match client
        .exchange(&code, &pending.verifier, &pending.nonce)
        .await
    {
        Ok(tokens) => tokens,
        Err(error) => {
            tracing::warn!(%error, "OIDC sign-in failed");
            return failed("token");
        }
    };
    let principal = match bff.auth.verify(&tokens.access_token.0).await {
        Ok(p) => p,
        Err(error) => {
            tracing::warn!(%error, "the provider's access token is not one the task API accepts");
            return failed("token");
        }
    };
    let lifetime = Duration::from_secs(tokens.expires_in.unwrap_or(300));
    let token_expires = bff
        .sessions
        .now()
        .checked_add(lifetime)
        .unwrap_or(jiff::Timestamp::MAX);
    let signed_in = bff
        .sessions
        .sign_in(
            Some(&old),
            SignedIn {
                user: principal.user,
                access_token: Some((tokens.access_token, token_expires)),
            },
        )
        .await;
    let (id, _) = match signed_in {
        Ok(signed_in) => signed_in,
        Err(error) => return sessions_failed(error),
    };
    let mut response = Redirect::to(&pending.return_to).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        bff.set_cookie(&id, Some(lifetime.min(bff.sessions_ttl()))),
    );
    response
}

/// `POST /bff/auth/logout`.
async fn logout(State(bff): State<Arc<Bff>>, headers: HeaderMap) -> Response {
    let existing = match bff.session(&headers).await {
        Ok(existing) => existing,
        Err(response) => return response,
    };
    if let Some((id, session)) = existing {
        if let Err(refused) = check_csrf(&Method::POST, &headers, &session) {
            return refused;
        }
        if let Err(error) = bff.sessions.remove(&id).await {
            return sessions_failed(error);
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, bff.set_cookie("", None));
    response
}

/// Occurrences per task the home screen asks for, and the tasks it looks at.
const HOME_PER_TASK: usize = 10;
const HOME_TASKS: usize = 1000;
const HOME_ITEMS: usize = 60;

/// Every task of the user (up to `HOME_TASKS`).
async fn all_tasks(bff: &Bff, who: &SignedIn) -> Result<Vec<Value>, Response> {
    let mut tasks = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/tasks?limit=1000&cursor={c}"),
            None => "/tasks?limit=1000".to_owned(),
        };
        let page = bff.json(who, Method::GET, &path, None).await?;
        if let Some(items) = page["tasks"].as_array() {
            tasks.extend(items.iter().cloned());
        }
        cursor = page["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() || tasks.len() >= HOME_TASKS {
            return Ok(tasks);
        }
    }
}

/// `GET /bff/home`: the next occurrences across every task, soonest first, and the unread count.
async fn home(State(bff): State<Arc<Bff>>, method: Method, headers: HeaderMap) -> Response {
    let result: Result<Value, Response> = async {
        let who = bff.user(&method, &headers).await?;
        let tasks = all_tasks(&bff, &who).await?;
        let mut upcoming = Vec::new();
        for task in tasks.iter().filter(|t| !t["nextExecutionDate"].is_null()) {
            let Some(id) = task["id"].as_str() else {
                continue;
            };
            let path = format!("/tasks/{id}/occurrences?count={HOME_PER_TASK}");
            let Ok(occurrences) = bff.json(&who, Method::GET, &path, None).await else {
                continue; // deleted meanwhile
            };
            for at in occurrences["occurrences"].as_array().into_iter().flatten() {
                upcoming.push(json!({
                    "at": at,
                    "taskId": id,
                    "taskName": task["name"],
                    "timeZone": task["timeZone"],
                    "repeats": !task["repeats"].is_null(),
                }));
            }
        }
        upcoming.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
        upcoming.truncate(HOME_ITEMS);
        let inbox = bff
            .json(&who, Method::GET, "/notifications?limit=1", None)
            .await?;
        Ok(json!({
            "upcoming": upcoming,
            "unread": inbox["unread"],
            "taskCount": tasks.len(),
        }))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

/// `GET /bff/tasks?q=`: the user's tasks whose name or description contains `q` (any case).
async fn search_tasks(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Response {
    let who = match bff.user(&method, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let tasks = match all_tasks(&bff, &who).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let needle = query.q.unwrap_or_default().trim().to_lowercase();
    let matching: Vec<Value> = tasks
        .into_iter()
        .filter(|t| {
            needle.is_empty()
                || ["name", "description"].iter().any(|field| {
                    t[*field]
                        .as_str()
                        .is_some_and(|s| s.to_lowercase().contains(&needle))
                })
        })
        .collect();
    Json(json!({"tasks": matching})).into_response()
}

/// `GET /bff/tasks/{id}`: a task, its next occurrences and its history.
async fn task_page(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result: Result<Value, Response> = async {
        let who = bff.user(&method, &headers).await?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(problem(StatusCode::NOT_FOUND, "not-found", "no such task"));
        }
        let task = bff
            .json(&who, Method::GET, &format!("/tasks/{id}"), None)
            .await?;
        let occurrences = bff
            .json(
                &who,
                Method::GET,
                &format!("/tasks/{id}/occurrences?count=10"),
                None,
            )
            .await?;
        let history = bff
            .json(
                &who,
                Method::GET,
                &format!("/tasks/{id}/history?limit=50"),
                None,
            )
            .await?;
        Ok(json!({
            "task": task,
            "occurrences": occurrences["occurrences"],
            "history": history["history"],
        }))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

fn read_json(bytes: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            &format!("the body is not valid JSON: {e}"),
        )
    })
}

/// `POST /bff/tasks`: create; a `startDate` without an offset is read in `timeZone`.
async fn create_task(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result: Result<Response, Response> = async {
        let who = bff.user(&method, &headers).await?;
        let mut body = read_json(&body)?;
        preview::resolve_local_start(&mut body);
        bff.call(&who, Method::POST, "/tasks", Some(&body)).await
    }
    .await;
    result.unwrap_or_else(|r| r)
}

/// `PUT /bff/tasks/{id}`: replace, reading the start as `create_task` does.
async fn replace_task(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let result: Result<Response, Response> = async {
        let who = bff.user(&method, &headers).await?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(problem(StatusCode::NOT_FOUND, "not-found", "no such task"));
        }
        let mut body = read_json(&body)?;
        preview::resolve_local_start(&mut body);
        bff.call(&who, Method::PUT, &format!("/tasks/{id}"), Some(&body))
            .await
    }
    .await;
    result.unwrap_or_else(|r| r)
}

/// `POST /bff/preview`: the next 10 occurrences of a body being typed, each with its local
/// time and a note where DST or a short month moves or skips one.
async fn preview_handler(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result: Result<Value, Response> = async {
        let who = bff.user(&method, &headers).await?;
        let mut body = read_json(&body)?;
        preview::resolve_local_start(&mut body);
        let answer = bff
            .json(&who, Method::POST, "/tasks/preview?count=10", Some(&body))
            .await?;
        Ok(preview::annotate(&body, &answer["occurrences"]))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// The features the app may report, each with its allowed variants: bounded label values,
/// nothing typed by a user.
const FEATURES: &[(&str, &[&str])] = &[
    (
        "task_created",
        &[
            "once",
            "repeating_day",
            "repeating_week",
            "repeating_month",
            "repeating_year",
        ],
    ),
    ("task_updated", &["once", "repeating"]),
    ("task_deleted", &["any"]),
    (
        "channel_chosen",
        &["email", "sms", "push", "inApp", "webhook"],
    ),
    ("missed_policy", &["fireOnceLate", "fireAll", "skip"]),
    ("preview_opened", &["any"]),
    ("time_zone_changed", &["any"]),
    ("search_used", &["any"]),
    ("inbox_marked_read", &["one", "all"]),
    ("dead_letter_retried", &["any"]),
    ("push_enabled", &["on", "off"]),
    ("webhook_set", &["any"]),
    ("browser_notifications", &["granted", "denied"]),
];

#[derive(Deserialize)]
struct FeatureUse {
    feature: String,
    #[serde(default)]
    variant: Option<String>,
}

/// `POST /bff/telemetry {"feature", "variant"}`: one count, no user.
async fn telemetry(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = bff.user(&method, &headers).await {
        return r;
    }
    if !bff.telemetry {
        return StatusCode::NO_CONTENT.into_response();
    }
    let Ok(used) = serde_json::from_slice::<FeatureUse>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            "expected {\"feature\", \"variant\"}",
        );
    };
    let variant = used.variant.as_deref().unwrap_or("any");
    let known = FEATURES
        .iter()
        .find(|(f, _)| *f == used.feature)
        .and_then(|(f, variants)| variants.iter().find(|v| **v == variant).map(|v| (*f, *v)));
    let Some((feature, variant)) = known else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "not a feature this server counts",
        );
    };
    bff.metrics
        .web_features
        .get_or_create(&chime_roles::metrics::FeatureLabels { feature, variant })
        .inc();
    StatusCode::NO_CONTENT.into_response()
}

/// `/bff/api/{path}`: the task API as the signed-in user (admin calls excepted).
async fn proxy(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_path_is_only_ever_a_path_of_this_app() {
        assert_eq!(safe_return(Some("/tasks/tsk_1".into())), "/tasks/tsk_1");
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "tasks",
        ] {
            assert_eq!(safe_return(Some(hostile.into())), "/", "{hostile}");
        }
        assert_eq!(safe_return(None), "/");
    }

    #[tokio::test]
    async fn a_failing_session_store_answers_503_problem_json_without_the_cause() {
        let cause = std::io::Error::other("disk on fire at /var/lib/chime");
        let response = sessions_failed(session::Error::Store(chime_store::Error::Unavailable(
            Box::new(cause),
        )));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("disk on fire"), "{body}");
        assert!(body.contains("/problems/unavailable"), "{body}");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("_session=x; chime_session=abc; other=1"),
        );
        assert_eq!(cookie_value(&headers).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&HeaderMap::new()), None);
    }

    #[test]
    fn every_telemetry_label_value_is_a_short_identifier() {
        for (feature, variants) in FEATURES {
            for value in std::iter::once(feature).chain(variants.iter()) {
                assert!(
                    value.len() < 32
                        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{value}"
                );
            }
        }
    }
}
