//! The UI-shaped calls of the app's screens, each made of task API calls as the signed-in
//! user: the home screen (what is open, upcoming occurrences across tasks with their notes,
//! the unread count: the whole first screen in one request), task search, a
//! task page (task, next occurrences, history), create and replace (reading a `startDate`
//! without an offset in the task's `timeZone`), and a preview of a body being typed.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chime_core::profile::Profile;
use chime_core::task::ParseOptions;
use serde::Deserialize;
use serde_json::{json, Value};

use super::session::SignedIn;
use super::{preview, problem, Bff};

/// The tasks the home screen and search look at, and the occurrences the home screen shows.
const HOME_TASKS: usize = 1000;
const HOME_ITEMS: usize = 60;
/// The open occurrences the home screen lists (the Inbox pages through the rest).
const HOME_OPEN: usize = 50;
/// At most this many of one task, so a daily reminder does not fill the home screen.
const HOME_PER_TASK: usize = 10;

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

/// `GET /bff/home`: what is open (fired, not done; newest first), the next occurrences across
/// every task (soonest first), the task count and the unread count.
pub(super) async fn home(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let result: Result<Value, Response> = async {
        let who = bff.user(&method, &headers).await?;
        let upcoming = bff
            .json(
                &who,
                Method::GET,
                &format!("/occurrences?limit={HOME_ITEMS}&perTask={HOME_PER_TASK}"),
                None,
            )
            .await?;
        // The app tells "no reminders yet" from "nothing coming up" by the count.
        let tasks = all_tasks(&bff, &who).await?;
        let inbox = bff
            .json(&who, Method::GET, "/notifications?limit=1", None)
            .await?;
        let open = bff
            .json(
                &who,
                Method::GET,
                &format!("/occurrences/open?limit={HOME_OPEN}"),
                None,
            )
            .await?;
        Ok(json!({
            "open": open["occurrences"],
            "upcoming": upcoming["occurrences"],
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
pub(super) struct SearchQuery {
    q: Option<String>,
}

/// `GET /bff/tasks?q=`: the user's tasks whose name or description contains `q` (any case).
pub(super) async fn search_tasks(
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
pub(super) async fn task_page(
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
pub(super) async fn create_task(
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
pub(super) async fn replace_task(
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

/// `POST /bff/tasks/{id}/occurrences/{dueAt}/move`: moves one occurrence to `to`, a wall-clock
/// time (`2026-12-18T10:00`, what a `datetime-local` field gives) read in the task's own zone,
/// as the task form's start is; an instant with an offset passes through.
pub(super) async fn move_occurrence(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    Path((id, due)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if due.parse::<jiff::Timestamp>().is_err() {
        return problem(StatusCode::NOT_FOUND, "not-found", "no such occurrence");
    }
    let path = format!("/tasks/{id}/occurrences/{due}/move");
    at_local_time(&bff, &method, &headers, &id, "to", &body, &path).await
}

/// `POST /bff/tasks/{id}/occurrences`: adds one occurrence at `at`, a wall-clock time read in
/// the task's own zone as for a move.
pub(super) async fn add_occurrence(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/tasks/{id}/occurrences");
    at_local_time(&bff, &method, &headers, &id, "at", &body, &path).await
}

/// Posts `{field: instant}` to the task API's `path`, the instant being the body's `field` read
/// as a start would be: on task `id`'s zone, as typed.
async fn at_local_time(
    bff: &Bff,
    method: &Method,
    headers: &HeaderMap,
    id: &str,
    field: &str,
    body: &[u8],
    path: &str,
) -> Response {
    let result: Result<Response, Response> = async {
        let who = bff.user(method, headers).await?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(problem(StatusCode::NOT_FOUND, "not-found", "no such task"));
        }
        let body = read_json(body)?;
        let task = bff
            .json(&who, Method::GET, &format!("/tasks/{id}"), None)
            .await?;
        let mut local =
            json!({"startDate": body.get(field).cloned(), "timeZone": task["timeZone"]});
        preview::resolve_local_start(&mut local);
        let sent = json!({ field: local["startDate"] });
        bff.call(&who, Method::POST, path, Some(&sent)).await
    }
    .await;
    result.unwrap_or_else(|r| r)
}

/// `POST /bff/preview`: the next 10 occurrences of a body being typed, each with its local
/// time and a note where DST or a short month moves or skips one, or quiet hours hold its
/// email, SMS or push back.
pub(super) async fn preview_handler(
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
        let mut annotated = preview::annotate(&body, &answer["occurrences"]);
        // Where quiet hours hold a delivery back: the profile as the API answers it.
        let profile = bff.json(&who, Method::GET, "/me", None).await?;
        if let Ok(profile) = Profile::parse(profile, &ParseOptions::default()) {
            preview::note_quiet_hours(&mut annotated, &body, &profile);
        }
        Ok(annotated)
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}
