//! Abuse limits and protective headers, applied to every route by [`apply`].
//!
//! - **Body size**: bodies over [`GuardConfig::body_limit_bytes`] are a 413 problem (the
//!   limit travels to [`crate::JsonBody`] as a request extension, so the problem names it).
//! - **Body read time**: a body must arrive whole within [`GuardConfig::body_read_timeout`]
//!   of the handler starting to read it, or the request is a 408 problem and the connection
//!   is closed. hyper's header-read timeout covers the request head only: without this a
//!   client that declares a body and sends a byte now and then holds its connection, and a
//!   request permit, for as long as it likes (slow-loris on the body).
//! - **Writes per user**: `POST`, `PUT`, `PATCH` and `DELETE` under `/api/v1` spend a token of
//!   the caller's bucket ([`RateLimiter`]); an empty bucket is a 429 with `Retry-After`.
//!   The bucket is keyed by the verified token's user, so the extractor's verification runs
//!   twice on writes: cheap next to the write itself, and it keeps the limiter independent of
//!   how authentication works. Calls without a valid token pass through to their 401.
//! - **Concurrent requests**: a global semaphore, tried, never waited on: when every permit
//!   is taken the request is answered 503 with `Retry-After` at once. Queueing (tower's
//!   `ConcurrencyLimit`) would turn overload into unbounded latency and memory held by
//!   waiting connections; shedding keeps the requests in flight fast and tells clients when
//!   to come back. A permit is held until the response head is ready, which for every route
//!   but the SSE stream is the whole request.
//! - **Event streams** (`/api/v1/notifications/stream`) last as long as the client stays, so
//!   they have their own cap: their permit lives in the response body and is returned when
//!   the stream ends. They never take a request permit.
//! - `/healthz`, `/readyz` and `/metrics` are outside the caps: an overloaded server must
//!   still be seen as alive and be observable. They are constant-time.
//! - **Headers** on every response, errors included: a restrictive Content-Security-Policy,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//!   `X-Frame-Options: DENY`, and `Strict-Transport-Security` when the listener is HTTPS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use chime_core::UserId;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
use crate::{AppState, AuthUser};

/// The SSE route, whose responses outlive their handler.
pub const STREAM_PATH: &str = "/api/v1/notifications/stream";

/// The Content-Security-Policy of every response. `default-src 'self'` also covers the web
/// app's `connect-src` (its calls to this API).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'";

/// One year, the usual minimum for HSTS preload lists. No `includeSubDomains`: Chime does not
/// know what else runs under its domain.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Buckets kept at most. Full buckets are dropped first (losslessly: a full bucket is what
/// a new one would be); past this many active writers, new writers wait.
const TRACKED_USERS: usize = 100_000;

/// The limits, as configured.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub body_limit_bytes: usize,
    /// How long a request body may take to arrive whole, from when the handler reads it.
    pub body_read_timeout: Duration,
    /// Requests in progress at once (event streams apart).
    pub max_concurrent_requests: usize,
    /// Open event streams at once.
    pub max_event_streams: usize,
    /// Steady write rate allowed per user.
    pub writes_per_second: f64,
    /// Writes a user may make at once after being idle.
    pub write_burst: u32,
    /// Send `Strict-Transport-Security` (the listener is HTTPS).
    pub hsts: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: crate::BODY_LIMIT,
            body_read_timeout: crate::BODY_READ_TIMEOUT,
            max_concurrent_requests: 512,
            max_event_streams: 1024,
            writes_per_second: 20.0,
            write_burst: 100,
            hsts: false,
        }
    }
}

/// The limits and their state, shared by every request.
pub struct Guard {
    config: GuardConfig,
    requests: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    writes: RateLimiter,
}

impl Guard {
    pub fn new(config: GuardConfig) -> Self {
        Self {
            requests: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            streams: Arc::new(Semaphore::new(config.max_event_streams)),
            writes: RateLimiter::new(config.writes_per_second, config.write_burst, TRACKED_USERS),
            config,
        }
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new(GuardConfig::default())
    }
}

/// The body limit in force, for [`crate::JsonBody`]'s problem.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The body-read timeout in force, for [`crate::JsonBody`].
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

/// Wraps `router` in every limit and header of `state.guard`.
pub fn apply(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let guard = state.guard.clone();
    let limit = guard.config.body_limit_bytes;
    let router = router
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(Extension(BodyLimit(limit)))
        .layer(Extension(BodyReadTimeout(guard.config.body_read_timeout)))
        .layer(middleware::from_fn_with_state(state.clone(), limit_writes))
        .layer(middleware::from_fn_with_state(
            guard.clone(),
            limit_concurrency,
        ));
    let router = if guard.config.hsts {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        ))
    } else {
        router
    };
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

/// The tracing span of a request: method and path only. The query string is left out (it
/// may carry a cursor today and a token tomorrow), and so are headers (`Authorization`).
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let path = request.uri().path();
    // An action link's token is a capability: never in a log.
    let path = if path.starts_with(crate::act::PREFIX) {
        "/act/[redacted]"
    } else if path.starts_with(crate::calendar::PREFIX) {
        "/calendar/[redacted]"
    } else {
        path
    };
    tracing::debug_span!("request", method = %request.method(), path = %path)
}

fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

async fn limit_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !is_write(request.method()) || !request.uri().path().starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    if let Ok(AuthUser(user)) = AuthUser::from_request_parts(&mut parts, &state).await {
        if let Err(retry_after) = state.guard.writes.check(&user, Instant::now()) {
            return ApiError::TooManyRequests { retry_after }.into_response();
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

async fn limit_concurrency(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let overloaded = || {
        ApiError::Overloaded {
            retry_after: Duration::from_secs(1),
        }
        .into_response()
    };
    if path == STREAM_PATH {
        let Ok(permit) = guard.streams.clone().try_acquire_owned() else {
            return overloaded();
        };
        let response = next.run(request).await;
        let (parts, body) = response.into_parts();
        // The permit goes back when the stream is dropped (client gone or shutdown).
        let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _held = &permit;
            chunk
        }));
        return Response::from_parts(parts, body);
    }
    let Ok(_permit) = guard.requests.clone().try_acquire_owned() else {
        return overloaded();
    };
    next.run(request).await
}

/// Token buckets per user, in memory: `rate` tokens a second up to `burst`; each write takes
/// one. Memory is bounded by `capacity` buckets.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    capacity: usize,
    state: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    map: HashMap<UserId, Bucket>,
    /// When a sweep last ran at capacity, so a full table is not swept on every request.
    last_sweep: Option<Instant>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(rate: f64, burst: u32, capacity: usize) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            capacity: capacity.max(1),
            state: Mutex::new(Buckets::default()),
        }
    }

    /// Takes a token of `user`'s bucket, or says how long until one is there.
    pub fn check(&self, user: &UserId, now: Instant) -> Result<(), Duration> {
        // A panic while holding the lock leaves only counters behind: keep going with them.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !state.map.contains_key(user) && state.map.len() >= self.capacity {
            self.sweep(&mut state, now);
            if state.map.len() >= self.capacity {
                return Err(self.wait_for(0.0));
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let bucket = state.map.entry(user.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let tokens = bucket.tokens;
            Err(self.wait_for(tokens))
        }
    }

    /// Buckets tracked now.
    pub fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .len()
    }

    /// Drops every bucket that has refilled: forgetting it changes nothing.
    fn sweep(&self, state: &mut Buckets, now: Instant) {
        if state
            .last_sweep
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        state.last_sweep = Some(now);
        let (rate, burst) = (self.rate, self.burst);
        state.map.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
    }

    fn wait_for(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - tokens) / self.rate).clamp(0.0, 86_400.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(2.0, 3, 10);
        let (alice, t0) = (user("alice"), Instant::now());
        for _ in 0..3 {
            limiter.check(&alice, t0).unwrap();
        }
        let wait = limiter.check(&alice, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another user has a bucket of their own.
        limiter.check(&user("bob"), t0).unwrap();
        limiter.check(&alice, t0 + wait).unwrap();
        limiter.check(&alice, t0 + wait).unwrap_err();
    }

    #[test]
    fn memory_stays_bounded_and_refilled_buckets_are_evicted_first() {
        let limiter = RateLimiter::new(10.0, 5, 2);
        let t0 = Instant::now();
        limiter.check(&user("a"), t0).unwrap();
        limiter.check(&user("b"), t0).unwrap();
        // Both buckets are in use: a third writer waits, and nothing grows.
        let wait = limiter.check(&user("c"), t0).unwrap_err();
        assert!(wait > Duration::ZERO);
        assert_eq!(limiter.tracked(), 2);
        // Once a and b have refilled, they are forgotten to make room.
        let later = t0 + Duration::from_secs(2);
        limiter.check(&user("c"), later).unwrap();
        assert_eq!(limiter.tracked(), 1);
    }
}
