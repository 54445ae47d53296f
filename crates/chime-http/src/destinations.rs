//! `/api/v1/destinations`: the caller's destinations (ntfy, Gotify, Telegram, Slack, Discord,
//! Matrix), and `/hooks/telegram/{id}`, where a Telegram bot's button presses arrive.
//!
//! A destination's URL carries the service's token: it is answered masked, never as given,
//! and a refused one is echoed masked too.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chime_channels::destination::{telegram, DestinationUrl};
use chime_core::event::Channel;
use chime_core::UserId;
use chime_roles::notification::destinations::{DestinationView, TestOutcome};
use chime_roles::occurrence::tokens::Action;
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiResult, Problem};
use crate::{AppState, AuthUser, JsonBody};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[schema(example = "dst_8f3a2c91d0e4b5a6")]
    id: String,
    #[schema(example = "Phone")]
    name: String,
    /// The service: `ntfy`, `gotify`, `telegram`, `slack`, `discord` or `matrix`.
    channel: Channel,
    /// The URL with its secrets replaced by `…`.
    #[schema(example = "ntfys://tk_a…@ntfy.example.com/reminders")]
    url: String,
    #[schema(value_type = String)]
    created_at: Timestamp,
}

impl From<DestinationView> for Destination {
    fn from(d: DestinationView) -> Self {
        Self {
            id: d.id,
            name: d.name,
            channel: d.channel,
            url: d.url,
            created_at: d.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DestinationList {
    destinations: Vec<Destination>,
}

/// A destination to add.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DestinationBody {
    /// For people: 1 to 80 characters.
    #[schema(min_length = 1, max_length = 80, example = "Phone")]
    name: String,
    /// In Apprise's syntax: `ntfy://`/`ntfys://[user:password@|tk_token@]host/topic`,
    /// `gotify://`/`gotifys://host[/path]/apptoken`, `tgram://bottoken/chatid`,
    /// `slack://T…/B…/secret`, `discord://webhookid/webhooktoken`,
    /// `matrix://`/`matrixs://user:password@host/#room:server` (or `token@host/!roomid:server`).
    #[schema(
        min_length = 1,
        max_length = 2048,
        example = "ntfys://tk_abc123@ntfy.example.com/reminders"
    )]
    url: String,
}

/// A destination's new name and, when given, its new URL.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DestinationChange {
    /// For people: 1 to 80 characters.
    #[schema(min_length = 1, max_length = 80, example = "Phone")]
    name: String,
    /// As when adding; absent or null keeps the stored URL.
    #[schema(
        min_length = 1,
        max_length = 2048,
        example = "ntfys://tk_abc123@ntfy.example.com/reminders"
    )]
    url: Option<String>,
}

/// What a test notification did.
#[derive(Serialize, ToSchema)]
pub struct Tested {
    sent: bool,
    /// Why it was not sent.
    detail: Option<String>,
}

impl From<TestOutcome> for Tested {
    fn from(t: TestOutcome) -> Self {
        Self {
            sent: t.sent,
            detail: t.detail,
        }
    }
}

/// The caller's destinations, oldest first.
#[utoipa::path(get, path = "/api/v1/destinations", tag = "destinations",
    responses(
        (status = 200, body = DestinationList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<DestinationList>> {
    let destinations = state.destinations.list(&user).await?;
    Ok(Json(DestinationList {
        destinations: destinations.into_iter().map(Into::into).collect(),
    }))
}

/// Add a destination (its URL is checked: form, channel enabled, address allowed; a Telegram
/// bot gets its webhook set so its buttons work).
#[utoipa::path(post, path = "/api/v1/destinations", tag = "destinations",
    request_body = DestinationBody,
    responses(
        (status = 201, body = Destination),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller already has 20 destinations", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Destination>)> {
    let added = state.destinations.add(&user, &body).await?;
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// One of the caller's destinations.
#[utoipa::path(get, path = "/api/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = Destination),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Destination>> {
    Ok(Json(state.destinations.get(&user, &id).await?.into()))
}

/// Rename a destination, or point it at another URL.
#[utoipa::path(put, path = "/api/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path)),
    request_body = DestinationChange,
    responses(
        (status = 200, body = Destination),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Destination>> {
    Ok(Json(
        state.destinations.replace(&user, &id, &body).await?.into(),
    ))
}

/// Remove a destination (tasks that name it stop sending to it).
#[utoipa::path(delete, path = "/api/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.destinations.remove(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test notification to a destination now.
#[utoipa::path(post, path = "/api/v1/destinations/{id}/test", tag = "destinations",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = Tested),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn test(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Tested>> {
    Ok(Json(state.destinations.test(&user, &id).await?.into()))
}

/// A Telegram update for destination `id`'s bot. Only a request carrying the secret token
/// Chime gave the bot's `setWebhook` is read (401 otherwise, changing nothing). A button
/// press acknowledges or snoozes the occurrence its short token names, for the destination's
/// owner only, and answers the press with what happened (the chat shows it briefly). Every
/// genuine update is answered 200, so Telegram does not send it again.
pub async fn telegram_hook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let given = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let expected = state.destinations.telegram_secret(&id);
    let genuine = expected.is_some_and(|expected| {
        // Constant time: the secret is a capability.
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if !genuine {
        return (
            StatusCode::UNAUTHORIZED,
            "the request does not carry this bot's secret token",
        )
            .into_response();
    }
    let Ok(update) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::OK.into_response();
    };
    let Some(press) = telegram::callback_query(&update) else {
        return StatusCode::OK.into_response();
    };
    let Ok(record) = state.destinations.any(&id).await else {
        return StatusCode::OK.into_response();
    };
    let text = match press_answer(&state, &record.user_id, &press.data).await {
        Ok(text) => text,
        Err(e) => return e.into_response(),
    };
    if let (Ok(DestinationUrl::Telegram(bot)), Some(settings)) = (
        DestinationUrl::parse(&record.url),
        state.destinations.settings(Channel::Telegram),
    ) {
        if let Err(error) = telegram::answer_callback(settings, &bot, &press.id, &text).await {
            tracing::info!(%error, "a Telegram button press could not be answered");
        }
    }
    StatusCode::OK.into_response()
}

/// Performs the action of a button's short token, for `owner`, and says what happened.
async fn press_answer(
    state: &AppState,
    owner: &UserId,
    data: &str,
) -> Result<String, crate::ApiError> {
    let token = match state.action_keys.verify_short(
        data,
        owner,
        Channel::Telegram,
        state.occurrences.now(),
    ) {
        Ok(token) => token,
        Err(e) => return Ok(format!("This button no longer works: {e}.")),
    };
    let snooze = match token.action {
        Action::Done => None,
        Action::Snooze { minutes } => Some(i64::from(minutes)),
    };
    crate::sms_inbound::answer(state, owner, &token.occurrence, snooze, Channel::Telegram).await
}
