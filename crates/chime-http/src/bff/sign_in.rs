//! Sign-in and sessions at the BFF: who is signed in (`GET /bff/session`), signing in by name
//! on the embedded default or through the configured OIDC provider (authorization code +
//! PKCE), signing out, and what every other call checks: the session cookie and, on
//! state-changing methods, the session's CSRF token.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chime_core::UserId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::session::{self, Pending, Session, SignedIn, COOKIE};
use super::{problem, Bff, SignIn};

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
    pub(super) async fn user(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<SignedIn, Response> {
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

pub(super) fn signed_out() -> Response {
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
pub(super) async fn session_info(State(bff): State<Arc<Bff>>, headers: HeaderMap) -> Response {
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
pub(super) async fn sign_in_local(
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
pub(super) struct LoginQuery {
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
pub(super) async fn login(
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
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /bff/auth/callback`: the provider sends the browser back with a code.
pub(super) async fn callback(
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
pub(super) async fn logout(State(bff): State<Arc<Bff>>, headers: HeaderMap) -> Response {
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
}
