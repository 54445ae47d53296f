//! A user's calendar feed: a secret URL serving their tasks as iCalendar (RFC 5545) for
//! calendars that subscribe (`webcal://`), made, rotated and revoked through the API.
//!
//! The URL's last segment is a capability (`ActionKeys::feed_token`: the user and the feed's
//! generation under the server's key), so the feed needs no session; it is never logged (the
//! request span redacts `/calendar/…`). Rotating makes every earlier URL stop working;
//! revoking makes the current one stop, and a feed made again never reuses a revoked URL.
//! The body carries an `ETag` (a hash of it) and answers `If-None-Match` with 304, so a
//! calendar polling every few minutes costs one read of the tasks and no transfer.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chime_core::ics::{calendar, FeedTask};
use chime_core::UserId;
use chime_roles::occurrence::tokens::ActionKeys;
use chime_store::FeedRecord;
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::{AppState, AuthUser};

/// Where the feed is served; the rest of the path is `{token}.ics`.
pub const PREFIX: &str = "/calendar/";

/// Most tasks a feed lists (the first by id).
const MAX_TASKS: usize = 5_000;

/// The caller's calendar feed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarFeed {
    /// The feed's secret URL (`https://…/calendar/….ics`): anyone who has it can read the
    /// caller's tasks. Rotate it if it leaks.
    url: String,
    /// The same with the `webcal://` scheme, which calendar apps open as a subscription.
    webcal_url: String,
    /// When this URL was made.
    #[schema(value_type = String)]
    created_at: Timestamp,
}

fn feed_out(state: &AppState, headers: &HeaderMap, record: &FeedRecord) -> CalendarFeed {
    let token = state
        .action_keys
        .feed_token(&record.user_id, record.generation);
    // The address the caller reached this server at: the feed is for the same person.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    let path = format!("{PREFIX}{token}.ics");
    CalendarFeed {
        url: format!("{scheme}://{host}{path}"),
        webcal_url: format!("webcal://{host}{path}"),
        created_at: record.created_at,
    }
}

/// The caller's calendar feed URL.
#[utoipa::path(get, path = "/api/v1/calendar-feed", tag = "calendar",
    responses(
        (status = 200, body = CalendarFeed),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No feed: make one with POST", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_feed(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
) -> ApiResult<Json<CalendarFeed>> {
    let record = state
        .recipients
        .feed(&user)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(feed_out(&state, &headers, &record)))
}

/// Makes the caller's calendar feed, or a new URL for it: every earlier URL stops working.
#[utoipa::path(post, path = "/api/v1/calendar-feed", tag = "calendar",
    responses(
        (status = 201, body = CalendarFeed),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_feed(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<CalendarFeed>)> {
    let record = state.recipients.rotate_feed(&user).await?;
    tracing::info!(generation = record.generation, "calendar feed made");
    Ok((
        StatusCode::CREATED,
        Json(feed_out(&state, &headers, &record)),
    ))
}

/// Revokes the caller's calendar feed: its URL stops working.
#[utoipa::path(delete, path = "/api/v1/calendar-feed", tag = "calendar",
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_feed(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<StatusCode> {
    if state.recipients.remove_feed(&user).await? {
        tracing::info!("calendar feed revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The feed itself, `text/calendar`: every task of the feed's user.
pub async fn serve(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    match feed_body(&state, &file).await {
        Ok(body) => {
            let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
            let etag = format!("\"{}\"", hex(&digest.as_ref()[..16]));
            let matches = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|sent| sent.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
            let common = [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, "private, max-age=300".to_owned()),
            ];
            if matches {
                (StatusCode::NOT_MODIFIED, common).into_response()
            } else {
                (
                    common,
                    [(
                        header::CONTENT_TYPE,
                        "text/calendar; charset=utf-8".to_owned(),
                    )],
                    body,
                )
                    .into_response()
            }
        }
        Err(e) => e.into_response(),
    }
}

async fn feed_body(state: &AppState, file: &str) -> ApiResult<String> {
    let token = file.strip_suffix(".ics").ok_or(ApiError::NotFound)?;
    let user: UserId = ActionKeys::feed_token_user(token).ok_or(ApiError::NotFound)?;
    let record = state
        .recipients
        .feed(&user)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !state
        .action_keys
        .verify_feed_token(token, record.generation)
    {
        return Err(ApiError::NotFound);
    }
    let mut views = Vec::new();
    let mut after = None;
    loop {
        let page = state.definition.list(&user, after, 500).await?;
        let full = page.len() == 500;
        after = page.last().map(|v| v.record.id);
        views.extend(page);
        if !full || views.len() >= MAX_TASKS {
            break;
        }
    }
    views.truncate(MAX_TASKS);
    let ids: Vec<String> = views.iter().map(|v| v.record.id.to_string()).collect();
    let tasks: Vec<FeedTask<'_>> = views
        .iter()
        .zip(&ids)
        .map(|(view, id)| FeedTask {
            id,
            spec: &view.spec,
            modified: view.record.modified_at,
        })
        .collect();
    Ok(calendar("Chime", &tasks))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
