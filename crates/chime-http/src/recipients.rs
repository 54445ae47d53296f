//! Per-user recipients of per-user channels: browsers' push subscriptions (and the VAPID
//! public key a browser needs to make one) and the user's webhook endpoint.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chime_store::{PushSubscriptionRecord, WebhookEndpoint};
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::{AppState, AuthUser, JsonBody};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// The VAPID public key (uncompressed P-256 point, base64url): the
    /// `applicationServerKey` for `pushManager.subscribe`.
    public_key: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscriptionItem {
    id: String,
    endpoint: String,
    #[schema(value_type = String)]
    created_at: Timestamp,
}

impl From<PushSubscriptionRecord> for PushSubscriptionItem {
    fn from(r: PushSubscriptionRecord) -> Self {
        Self {
            id: r.id,
            endpoint: r.endpoint,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PushSubscriptions {
    subscriptions: Vec<PushSubscriptionItem>,
}

/// A browser's `PushSubscription.toJSON()`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushSubscriptionBody {
    /// The push service URL: https, on a public address. (A server whose
    /// `channels.webhook.allow_private` is on, for development, also takes http and private
    /// addresses.)
    #[schema(pattern = "^https://[^/?#@]+", max_length = 2048)]
    endpoint: String,
    keys: PushKeysSchema,
}

/// The subscription's keys, base64url without padding (so the last character carries only
/// the key's last bits, the rest zero).
#[derive(ToSchema)]
#[schema(as = PushSubscriptionKeys)]
#[allow(dead_code)]
pub struct PushKeysSchema {
    /// The browser's P-256 public key (65 bytes, uncompressed).
    #[schema(pattern = "^[A-Za-z0-9_-]{86}[AEIMQUYcgkosw048]$")]
    p256dh: String,
    /// The 16-byte auth secret.
    #[schema(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    auth: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    url: String,
    /// The Standard Webhooks signing secret (`whsec_…`); verify `webhook-signature` with it.
    secret: String,
    #[schema(value_type = String)]
    created_at: Timestamp,
}

impl From<WebhookEndpoint> for Webhook {
    fn from(w: WebhookEndpoint) -> Self {
        Self {
            url: w.url,
            secret: w.secret,
            created_at: w.created_at,
        }
    }
}

/// A webhook endpoint to set.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WebhookBody {
    /// An http(s) URL on a public address.
    #[schema(pattern = "^[hH][tT][tT][pP][sS]?://[^/?#@]+", max_length = 2048)]
    url: String,
}

/// The VAPID public key browsers subscribe with.
#[utoipa::path(get, path = "/api/v1/push/public-key", tag = "push",
    responses(
        (status = 200, body = PublicKey),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Push is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn public_key(
    State(state): State<AppState>,
    AuthUser(_user): AuthUser,
) -> ApiResult<Json<PublicKey>> {
    let public_key = state
        .recipients
        .push_public_key()
        .ok_or(ApiError::NotFound)?;
    Ok(Json(PublicKey {
        public_key: public_key.to_owned(),
    }))
}

/// Register a browser's push subscription (re-registering an endpoint refreshes its keys).
#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "push",
    request_body = PushSubscriptionBody,
    responses(
        (status = 201, body = PushSubscriptionItem),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_push_subscription(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<PushSubscriptionItem>)> {
    let record = state.recipients.add_push_subscription(user, &body).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// The caller's push subscriptions.
#[utoipa::path(get, path = "/api/v1/push/subscriptions", tag = "push",
    responses(
        (status = 200, body = PushSubscriptions),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_push_subscriptions(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<PushSubscriptions>> {
    let subscriptions = state
        .recipients
        .push_subscriptions(&user)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(PushSubscriptions { subscriptions }))
}

/// Remove a push subscription.
#[utoipa::path(delete, path = "/api/v1/push/subscriptions/{id}", tag = "push",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_push_subscription(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .recipients
        .remove_push_subscription(&user, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's webhook endpoint.
#[utoipa::path(get, path = "/api/v1/webhook", tag = "webhook",
    responses(
        (status = 200, body = Webhook),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "None configured", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_webhook(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Webhook>> {
    let webhook = state.recipients.webhook(&user).await?;
    Ok(Json(webhook.into()))
}

/// Set the caller's webhook endpoint; every call issues a new signing secret.
#[utoipa::path(put, path = "/api/v1/webhook", tag = "webhook",
    request_body = WebhookBody,
    responses(
        (status = 200, body = Webhook),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an http(s) URL on a public address", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_webhook(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Webhook>> {
    let endpoint = state.recipients.set_webhook(user, &body).await?;
    Ok(Json(endpoint.into()))
}

/// Remove the caller's webhook endpoint.
#[utoipa::path(delete, path = "/api/v1/webhook", tag = "webhook",
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_webhook(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<StatusCode> {
    state.recipients.remove_webhook(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}
