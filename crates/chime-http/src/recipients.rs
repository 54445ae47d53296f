//! Per-user recipients of per-user channels: browsers' push subscriptions (and the VAPID
//! public key a browser needs to make one) and the user's webhook endpoint.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chime_core::{FieldError, FieldErrors};
use chime_store::{PushSubscriptionRecord, WebhookEndpoint};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::{AppState, AuthUser, JsonBody};

/// The longest URL Chime stores for a recipient (a webhook, a push endpoint), as the schema
/// says: push services' endpoints are a few hundred characters.
const MAX_URL_LEN: usize = 2048;

/// The length rule of the schema's `maxLength`, as a field error.
fn check_length(pointer: &str, url: &str) -> Result<(), ApiError> {
    let len = url.chars().count();
    if len > MAX_URL_LEN {
        return Err(ApiError::Invalid(FieldErrors::one(
            pointer,
            Some(Value::String(url.to_owned())),
            format!("a URL is at most {MAX_URL_LEN} characters, this one has {len}"),
        )));
    }
    Ok(())
}

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
    let public_key = state.push_public_key.clone().ok_or(ApiError::NotFound)?;
    Ok(Json(PublicKey { public_key }))
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
    let (endpoint, p256dh, auth) = parse_subscription(&body, state.webhook_allow_private)?;
    // Chime will POST to this URL: the same address rules as webhooks (no SSRF).
    if let Err(why) = chime_channels::webhook::check_url_as(
        &endpoint,
        state.webhook_allow_private,
        "the push endpoint",
    )
    .await
    {
        return Err(ApiError::invalid_param(
            "/endpoint",
            Value::String(endpoint),
            why,
        ));
    }
    let record = state
        .recipients
        .put_push_subscription(&PushSubscriptionRecord {
            id: format!("psb_{}", uuid_simple()),
            user_id: user,
            endpoint,
            p256dh,
            auth,
            created_at: now(),
        })
        .await?;
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
    if state
        .recipients
        .remove_push_subscription(Some(&user), &id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
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
    let webhook = state
        .recipients
        .webhook(&user)
        .await?
        .ok_or(ApiError::NotFound)?;
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
    let url = match body.get("url") {
        Some(Value::String(url)) if !url.trim().is_empty() => url.trim().to_owned(),
        other => {
            return Err(ApiError::Invalid(FieldErrors::one(
                "/url",
                other.cloned(),
                "`url` is the http(s) URL to POST reminders to",
            )))
        }
    };
    check_length("/url", &url)?;
    if let Err(why) = chime_channels::webhook::check_url(&url, state.webhook_allow_private).await {
        return Err(ApiError::invalid_param("/url", Value::String(url), why));
    }
    let endpoint = WebhookEndpoint {
        user_id: user,
        url,
        secret: chime_channels::webhook::generate_secret(),
        created_at: now(),
    };
    state.recipients.put_webhook(&endpoint).await?;
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
    if state.recipients.remove_webhook(&user).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// `{endpoint, keys: {p256dh, auth}}`, checked: an https endpoint (http too when
/// `allow_http`, for a local push service in development) of at most [`MAX_URL_LEN`]
/// characters, a 65-byte uncompressed P-256 point, a 16-byte auth secret.
fn parse_subscription(body: &Value, allow_http: bool) -> ApiResult<(String, String, String)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut errors = Vec::new();
    let endpoint = match body.get("endpoint") {
        Some(Value::String(e)) if e.chars().count() > MAX_URL_LEN => {
            errors.push(FieldError::new(
                "/endpoint",
                Some(Value::String(e.clone())),
                format!(
                    "a push endpoint is at most {MAX_URL_LEN} characters, this one has {}",
                    e.chars().count()
                ),
            ));
            None
        }
        Some(Value::String(e))
            if url::Url::parse(e)
                .map(|u| {
                    (u.scheme() == "https" || (allow_http && u.scheme() == "http"))
                        && u.host().is_some()
                })
                .unwrap_or(false) =>
        {
            Some(e.clone())
        }
        other => {
            errors.push(FieldError::new(
                "/endpoint",
                other.cloned(),
                "the push service's https URL",
            ));
            None
        }
    };
    let mut key = |name: &str, len: usize, what: &str| {
        let value = body.get("keys").and_then(|k| k.get(name));
        match value.and_then(Value::as_str) {
            Some(s)
                if b64
                    .decode(s.trim_end_matches('='))
                    .map(|b| b.len() == len)
                    .unwrap_or(false) =>
            {
                Some(s.trim_end_matches('=').to_owned())
            }
            _ => {
                errors.push(FieldError::new(
                    format!("/keys/{name}"),
                    value.cloned(),
                    what,
                ));
                None
            }
        }
    };
    let p256dh = key(
        "p256dh",
        65,
        "the browser's P-256 public key: 65 bytes, base64url",
    );
    let auth = key("auth", 16, "the 16-byte auth secret, base64url");
    match (endpoint, p256dh, auth) {
        (Some(e), Some(p), Some(a)) if errors.is_empty() => Ok((e, p, a)),
        _ => Err(ApiError::Invalid(FieldErrors(errors))),
    }
}

fn now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

fn uuid_simple() -> String {
    chime_core::NotificationId::new()
        .as_uuid()
        .simple()
        .to_string()
}
