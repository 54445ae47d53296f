//! Chime's HTTP surface (axum): the task API under `/api/v1`, the in-app inbox and its SSE
//! stream, health, Prometheus metrics and the OpenAPI document generated from this code.
//!
//! [`router`] builds the whole app from an [`AppState`] of role services over ports (trait
//! objects), so tests drive it with `oneshot` or a real listener alike; the binary decides the
//! adapters. A handler parses the request, calls one service method and maps the result.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use chime_roles::definition::Definition;
use chime_roles::notification::deliveries::TaskDeliveries;
use chime_roles::notification::inbox::Inbox;
use chime_roles::notification::recipients::Recipients;
use chime_roles::notification::InboxFeed;
use chime_roles::occurrence::Occurrences;
use chime_roles::Metrics;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

mod act;
mod admin;
pub mod auth;
pub mod bff;
mod calendar;
mod destinations;
pub mod error;
pub mod guard;
mod import;
pub mod json;
mod notes;
mod notifications;
mod observe;
mod occurrences;
mod profile;
mod recipients;
pub mod sms_inbound;
mod tasks;

pub use auth::{AdminUser, AuthUser, Authenticator, KeySource, LocalIssuer, OidcKeys};
pub use error::{ApiError, ApiResult, Problem};

/// Largest request body accepted by default (`[limits] body_bytes`); a task body is a few
/// hundred bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a request body may take to arrive by default (`[limits] body_read_seconds`).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the handlers need, shared: every request clones the state (once per extractor and
/// layer that takes it), so it is one `Arc`. Cloning the services themselves cost each request
/// a dozen contended reference counts and two allocations: about 8% of the create rate
/// (`chime bench create`).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The roles' services, and the HTTP surface's own parts. No store: every use case is a
/// service method.
pub struct Services {
    /// Tasks: CRUD, occurrences, previews.
    pub definition: Definition,
    /// A task's history with its deliveries, and retrying dead letters.
    pub deliveries: TaskDeliveries,
    /// Push subscriptions, the webhook endpoint, the VAPID public key, the user's profile.
    pub recipients: Recipients,
    /// The user's destinations (ntfy, Gotify, chats), and Telegram's button callbacks.
    pub destinations: chime_roles::notification::destinations::Destinations,
    /// The in-app inbox.
    pub inbox: Inbox,
    /// Fired occurrences: the open list, acknowledge, snooze.
    pub occurrences: Occurrences,
    /// Verifies the tokens of action links and push buttons (`/act/{token}`), and hashes the
    /// numbers SMS replies come from.
    pub action_keys: chime_roles::occurrence::tokens::ActionKeys,
    /// SMS replies (`/sms/inbound`), when `channels.sms.inbound_url` is set.
    pub sms_inbound: Option<sms_inbound::SmsInbound>,
    pub feed: InboxFeed,
    pub auth: Arc<Authenticator>,
    /// The local issuer, whose discovery document and JWKS are served under `/.well-known`
    /// (`None` when an external issuer is configured).
    pub local_issuer: Option<Arc<LocalIssuer>>,
    pub metrics: Arc<Metrics>,
    /// Set once every role of this process is running.
    pub ready: Arc<AtomicBool>,
    /// Ends long-lived responses (SSE) so a graceful shutdown completes.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Abuse limits and protective headers (see [`guard`]).
    pub guard: Arc<guard::Guard>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chime",
        description = include_str!("api.md"),
        license(name = "Apache-2.0")
    ),
    paths(
        tasks::create,
        tasks::list,
        tasks::get,
        tasks::replace,
        tasks::delete,
        tasks::occurrences,
        tasks::upcoming,
        tasks::preview,
        tasks::history,
        tasks::retry_delivery,
        occurrences::open,
        occurrences::snoozed,
        occurrences::get,
        occurrences::acknowledge,
        occurrences::snooze,
        occurrences::skip,
        occurrences::move_to,
        occurrences::restore,
        occurrences::add,
        tasks::quick,
        import::import,
        calendar::get_feed,
        calendar::rotate_feed,
        calendar::remove_feed,
        notifications::list,
        notifications::mark_read,
        notifications::stream,
        recipients::public_key,
        recipients::add_push_subscription,
        recipients::list_push_subscriptions,
        recipients::remove_push_subscription,
        recipients::get_webhook,
        recipients::put_webhook,
        recipients::remove_webhook,
        destinations::list,
        destinations::add,
        destinations::get,
        destinations::replace,
        destinations::remove,
        destinations::test,
        profile::get_profile,
        profile::put_profile,
        admin::get_task,
    ),
    components(schemas(
        chime_core::task::TaskIn,
        chime_core::profile::ProfileIn,
        chime_core::profile::ProfileFields,
        tasks::TaskOut,
        tasks::TaskPage,
        tasks::Occurrences,
        tasks::UpcomingPage,
        tasks::UpcomingItem,
        notes::Note,
        notes::NoteKind,
        tasks::HistoryPage,
        tasks::HistoryItem,
        tasks::DeliveryItem,
        tasks::RetryBody,
        tasks::Retried,
        recipients::PublicKey,
        recipients::PushSubscriptionItem,
        recipients::PushSubscriptions,
        recipients::PushSubscriptionBody,
        recipients::Webhook,
        recipients::WebhookBody,
        destinations::Destination,
        destinations::DestinationList,
        destinations::DestinationBody,
        destinations::DestinationChange,
        destinations::Tested,
        occurrences::OccurrenceItem,
        occurrences::OpenPage,
        occurrences::SnoozeBody,
        occurrences::MoveBody,
        occurrences::AddBody,
        tasks::QuickBody,
        import::ImportBody,
        import::ImportAnswer,
        import::ImportedTask,
        import::SkippedItem,
        tasks::QuickAnswer,
        calendar::CalendarFeed,
        occurrences::SnoozeFor,
        occurrences::SnoozeUntil,
        notifications::NotificationItem,
        notifications::NotificationPage,
        notifications::MarkRead,
        notifications::Marked,
        Problem,
        chime_core::FieldError,
        chime_core::event::Channel,
        chime_core::event::DeliveryOutcome,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, as served at `/openapi.json` and committed as `openapi.json`.
pub fn openapi_json() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi())
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    chime_core::task::refine_openapi(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn router(state: AppState) -> Router {
    router_with(state, None)
}

/// The task API, and the `web` role's BFF and static files when `web` is given: both behind
/// the same guard (limits, protective headers) and request metrics.
pub fn router_with(state: AppState, web: Option<bff::WebRoutes>) -> Router {
    let api = Router::new()
        .route("/tasks", post(tasks::create).get(tasks::list))
        .route("/tasks/preview", post(tasks::preview))
        .route("/tasks/quick", post(tasks::quick))
        .route(
            "/tasks/import",
            post(import::import)
                .layer::<_, std::convert::Infallible>(axum::extract::DefaultBodyLimit::max(
                    import::LIMIT,
                ))
                .layer::<_, std::convert::Infallible>(axum::Extension(guard::BodyLimit(
                    import::LIMIT,
                ))),
        )
        .route(
            "/tasks/{id}",
            get(tasks::get).put(tasks::replace).delete(tasks::delete),
        )
        .route(
            "/tasks/{id}/occurrences",
            get(tasks::occurrences).post(occurrences::add),
        )
        .route("/occurrences", get(tasks::upcoming))
        .route("/occurrences/open", get(occurrences::open))
        .route("/occurrences/snoozed", get(occurrences::snoozed))
        .route("/tasks/{id}/occurrences/{dueAt}", get(occurrences::get))
        .route(
            "/tasks/{id}/occurrences/{dueAt}/acknowledge",
            post(occurrences::acknowledge),
        )
        .route(
            "/tasks/{id}/occurrences/{dueAt}/snooze",
            post(occurrences::snooze),
        )
        .route(
            "/tasks/{id}/occurrences/{dueAt}/skip",
            post(occurrences::skip),
        )
        .route(
            "/tasks/{id}/occurrences/{dueAt}/move",
            post(occurrences::move_to),
        )
        .route(
            "/tasks/{id}/occurrences/{dueAt}/restore",
            post(occurrences::restore),
        )
        .route("/tasks/{id}/history", get(tasks::history))
        .route("/tasks/{id}/deliveries/retry", post(tasks::retry_delivery))
        .route("/push/public-key", get(recipients::public_key))
        .route(
            "/push/subscriptions",
            post(recipients::add_push_subscription).get(recipients::list_push_subscriptions),
        )
        .route(
            "/push/subscriptions/{id}",
            axum::routing::delete(recipients::remove_push_subscription),
        )
        .route(
            "/webhook",
            get(recipients::get_webhook)
                .put(recipients::put_webhook)
                .delete(recipients::remove_webhook),
        )
        .route(
            "/destinations",
            get(destinations::list).post(destinations::add),
        )
        .route(
            "/destinations/{id}",
            get(destinations::get)
                .put(destinations::replace)
                .delete(destinations::remove),
        )
        .route("/destinations/{id}/test", post(destinations::test))
        .route("/me", get(profile::get_profile).put(profile::put_profile))
        .route(
            "/calendar-feed",
            get(calendar::get_feed)
                .post(calendar::rotate_feed)
                .delete(calendar::remove_feed),
        )
        .route("/notifications", get(notifications::list))
        .route("/notifications/read", post(notifications::mark_read))
        .route("/notifications/stream", get(notifications::stream))
        .route("/admin/tasks/{id}", get(admin::get_task))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NotFound });
    let app = Router::new()
        .nest("/api/v1", api)
        .route("/act/{token}", get(act::confirm).post(act::act))
        .route(act::STYLE_PATH, get(act::style))
        .route("/calendar/{file}", get(calendar::serve))
        .route("/sms/inbound", post(sms_inbound::inbound))
        .route("/hooks/telegram/{id}", post(destinations::telegram_hook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(LocalIssuer::DISCOVERY_PATH, get(auth::local_discovery))
        .route(LocalIssuer::JWKS_PATH, get(auth::local_jwks))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi_json()) }),
        )
        // Every 4xx is problem+json, a wrong method too (axum still sets `Allow`).
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    let app = match web {
        Some(web) => app
            .nest_service("/bff", web.bff)
            .fallback_service(web.files),
        None => app,
    };
    guard::apply(app, &state)
        .layer(TraceLayer::new_for_http().make_span_with(guard::request_span))
        // Outermost, so requests the guard refuses are counted too.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            observe::track,
        ))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// A JSON body read as a `serde_json::Value`, so that every type error is reported by the
/// domain parser with its field's pointer; syntax errors, duplicate keys (see [`json`]),
/// oversized bodies and bodies that do not arrive within the body-read timeout become
/// problem+json here.
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = RawBody::from_request(req, state).await?.0;
        json::parse(&bytes)
            .map(JsonBody)
            .map_err(|refused| ApiError::Malformed {
                pointer: refused.pointer,
                detail: refused.detail,
            })
    }
}

/// A body as bytes, within the body limit and the body-read timeout in force (problem+json
/// when not).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = req
            .extensions()
            .get::<guard::BodyLimit>()
            .map_or(BODY_LIMIT, |l| l.0);
        let timeout = req
            .extensions()
            .get::<guard::BodyReadTimeout>()
            .map_or(BODY_READ_TIMEOUT, |t| t.0);
        let read = tokio::time::timeout(timeout, Bytes::from_request(req, state))
            .await
            .map_err(|_| ApiError::BodyTimeout { after: timeout })?;
        let bytes = read.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge { limit }
            } else {
                ApiError::Malformed {
                    pointer: String::new(),
                    detail: rejection.body_text(),
                }
            }
        })?;
        Ok(RawBody(bytes))
    }
}
