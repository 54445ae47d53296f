//! The in-app inbox: list, mark read, and a live Server-Sent Events stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use chime_core::{NotificationId, TaskId};
use chime_store::InboxItem;
use futures::Stream;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::tasks::count_param;
use crate::{AppState, AuthUser, JsonBody};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationItem {
    #[schema(value_type = String, example = "ntf_0192f0c4a1b27c3e8d4f5a6b7c8d9e0f")]
    id: NotificationId,
    #[schema(value_type = String)]
    task_id: TaskId,
    task_name: String,
    /// The occurrence's due instant, RFC 3339 UTC.
    #[schema(value_type = String)]
    due_at: Timestamp,
    #[schema(value_type = String)]
    created_at: Timestamp,
    read: bool,
    /// Arrived during the owner's quiet hours: show it without a sound or a system
    /// notification.
    silent: bool,
}

impl From<InboxItem> for NotificationItem {
    fn from(i: InboxItem) -> Self {
        Self {
            id: i.id,
            task_id: i.task_id,
            task_name: i.task_name,
            due_at: i.due_at,
            created_at: i.created_at,
            read: i.read,
            silent: i.silent,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    notifications: Vec<NotificationItem>,
    /// Unread notifications in the whole inbox.
    unread: u64,
    /// Pass as `cursor` for older notifications; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct MarkRead {
    /// Notification ids to mark read (at most 1000).
    #[allow(dead_code)]
    #[schema(max_items = 1000)]
    ids: Vec<NotificationIdSchema>,
}

/// A notification id, as listed.
#[derive(Deserialize, ToSchema)]
#[schema(as = NotificationId, value_type = String, pattern = "^ntf_[0-9a-fA-F]{32}$")]
#[allow(dead_code)]
pub struct NotificationIdSchema(String);

#[derive(Serialize, ToSchema)]
pub struct Marked {
    /// How many were unread and are now read.
    marked: u64,
}

const MAX_MARK: usize = 1000;

/// The caller's in-app notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    params(
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^ntf_[0-9a-fA-F]{32}$", description = "`nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, body = NotificationPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<NotificationPage>> {
    let limit = count_param(&query, "limit", 50, 1000)?;
    let before = query
        .get("cursor")
        .map(|c| {
            c.parse::<NotificationId>().map_err(|_| {
                ApiError::invalid_param(
                    "?cursor",
                    Value::String(c.clone()),
                    "not a cursor returned by this API",
                )
            })
        })
        .transpose()?;
    let page = state.inbox.page(&user, before, limit).await?;
    let next_cursor = (page.items.len() == limit)
        .then(|| page.items.last().map(|i| i.id.to_string()))
        .flatten();
    Ok(Json(NotificationPage {
        notifications: page.items.into_iter().map(Into::into).collect(),
        unread: page.unread,
        next_cursor,
    }))
}

/// Mark notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications",
    request_body = MarkRead,
    responses(
        (status = 200, body = Marked),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Marked>> {
    let ids = parse_ids(&body)?;
    let marked = state.inbox.mark_read(&user, &ids).await?;
    Ok(Json(Marked { marked }))
}

fn parse_ids(body: &Value) -> ApiResult<Vec<NotificationId>> {
    let Some(Value::Array(raw)) = body.get("ids") else {
        return Err(ApiError::Invalid(chime_core::FieldErrors::one(
            "/ids",
            body.get("ids").cloned(),
            "`ids` is an array of notification ids",
        )));
    };
    if raw.len() > MAX_MARK {
        return Err(ApiError::invalid_param(
            "/ids",
            Value::from(raw.len()),
            format!("at most {MAX_MARK} ids at once"),
        ));
    }
    let mut errors = Vec::new();
    let mut ids = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        match v.as_str().and_then(|s| s.parse().ok()) {
            Some(id) => ids.push(id),
            None => errors.push(chime_core::FieldError::new(
                format!("/ids/{i}"),
                Some(v.clone()),
                "not a notification id (`ntf_…`)",
            )),
        }
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(ApiError::Invalid(chime_core::FieldErrors(errors)))
    }
}

/// New in-app notifications as they arrive: one `notification` event each (data: a
/// notification as in the list), comments as keep-alive.
#[utoipa::path(get, path = "/api/v1/notifications/stream", tag = "notifications",
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events =
        BroadcastStream::new(state.feed.subscribe(&user)).filter_map(move |item| match item {
            Ok(item) if item.user_id == user => {
                let id = item.id.to_string();
                let data = serde_json::to_string(&NotificationItem::from(item)).unwrap_or_default();
                Some(Ok(Event::default().event("notification").id(id).data(data)))
            }
            Ok(_) => None,
            // A slow client missed some; tell it to reload the inbox rather than drop silently.
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(Ok(Event::default()
                .event("lagged")
                .data(format!("{{\"missed\":{n}}}")))),
        });
    let events = futures::StreamExt::take_until(events, state.shutdown.clone().cancelled_owned());
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
