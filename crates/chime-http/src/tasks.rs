//! The task API: CRUD, occurrences (of a task, and across the caller's tasks), preview and
//! history, scoped to the caller. Long because each handler's OpenAPI description and response
//! types sit beside it, so the document cannot drift from the code.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chime_core::profile::Profile;
use chime_core::task::TaskFields;
use chime_core::{TaskId, UserId};
use chime_roles::definition::{TaskView, Upcoming};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::notes::{calendar_notes, quiet_hours_notes, Note};
use crate::{AppState, AuthUser, JsonBody};

// The task's own fields are `TaskFields`, the type that also writes the stored form: what is
// answered and what is documented are one type.
/// A stored task: every field of the body as understood, plus what Chime adds.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Task)]
pub struct TaskOut {
    #[schema(value_type = String, example = "tsk_0192f0c4a1b27c3e8d4f5a6b7c8d9e0f")]
    id: TaskId,
    /// The owner (the token's subject).
    #[schema(value_type = String)]
    user_id: UserId,
    /// 1 on creation, +1 on every replace.
    version: u64,
    #[serde(flatten)]
    fields: TaskFields,
    /// RFC 3339, UTC.
    #[schema(value_type = String)]
    created_at: Timestamp,
    #[schema(value_type = String)]
    modified_at: Timestamp,
    /// The next due instant at or after now (RFC 3339 UTC), `null` when none is left.
    #[schema(value_type = Option<String>)]
    next_execution_date: Option<Timestamp>,
    /// `repeats` as an RFC 5545 rule (read-only), expanded from `startDate` on `timeZone`'s
    /// wall clock to the same instants: `FREQ=WEEKLY;BYDAY=MO,TH;COUNT=10`. `null` for a
    /// one-time task.
    #[schema(example = "FREQ=WEEKLY;BYDAY=MO,TH")]
    rrule: Option<String>,
}

impl From<&TaskView> for TaskOut {
    fn from(view: &TaskView) -> Self {
        Self {
            id: view.record.id,
            user_id: view.record.user_id.clone(),
            version: view.record.version,
            fields: view.spec.fields(),
            created_at: view.record.created_at,
            modified_at: view.record.modified_at,
            next_execution_date: view.next_execution,
            rrule: view.spec.schedule.rrule().map(|rule| rule.to_string()),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskPage {
    tasks: Vec<TaskOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Occurrences {
    /// Due instants, RFC 3339 UTC, strictly increasing.
    #[schema(value_type = Vec<String>, example = json!(["2026-12-07T08:00:00Z"]))]
    occurrences: Vec<Timestamp>,
}

/// One occurrence among all of the caller's tasks, and its task.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpcomingItem {
    /// The due instant, RFC 3339 UTC.
    #[schema(value_type = String, example = "2026-12-07T08:00:00Z")]
    at: Timestamp,
    #[schema(value_type = String, example = "tsk_0192f0c4a1b27c3e8d4f5a6b7c8d9e0f")]
    task_id: TaskId,
    task_name: String,
    /// The task's `timeZone`.
    #[schema(example = "Europe/Berlin")]
    time_zone: String,
    /// Whether the task repeats.
    repeats: bool,
    /// Why it is not where the task's pattern alone would put it (a DST gap or fold, a month
    /// without the day), or when the caller's quiet hours send its email, SMS and push;
    /// absent when there is nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<Note>,
}

/// The occurrences with their notes: each task's listed instants noted together (a short
/// month's note goes on the occurrence after it), against its fields as the API answers them,
/// and the caller's quiet hours. Months skipped before `now` are not noted: the list starts
/// after them.
fn with_notes(upcoming: Vec<Upcoming>, profile: &Profile, now: Timestamp) -> Vec<UpcomingItem> {
    let mut tasks: HashMap<TaskId, Vec<usize>> = HashMap::new();
    for (i, u) in upcoming.iter().enumerate() {
        tasks.entry(u.task_id).or_default().push(i);
    }
    let mut notes: Vec<Vec<Note>> = vec![Vec::new(); upcoming.len()];
    for positions in tasks.values() {
        let Some(&first) = positions.first() else {
            continue;
        };
        let Ok(body) = serde_json::to_value(upcoming[first].spec.fields()) else {
            continue;
        };
        let instants: Vec<Timestamp> = positions.iter().map(|&i| upcoming[i].at).collect();
        let since = now.to_zoned(crate::notes::zone_of(&body)).date();
        let calendar = calendar_notes(&body, &instants, Some(since));
        let quiet = quiet_hours_notes(&body, profile, &instants);
        for ((&i, mut noted), held) in positions.iter().zip(calendar).zip(quiet) {
            noted.extend(held);
            notes[i] = noted;
        }
    }
    upcoming
        .into_iter()
        .zip(notes)
        .map(|(u, notes)| UpcomingItem {
            at: u.at,
            task_id: u.task_id,
            task_name: u.task_name,
            time_zone: u.time_zone,
            repeats: u.repeats,
            notes,
        })
        .collect()
}

#[derive(Serialize, ToSchema)]
pub struct UpcomingPage {
    /// Soonest first; instants that tie are in the order of the task list.
    occurrences: Vec<UpcomingItem>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryItem {
    channel: chime_core::event::Channel,
    /// Which recipient of the channel (a push subscription id); absent when it has one.
    #[serde(skip_serializing_if = "String::is_empty")]
    target: String,
    /// `pending` until it is sent, skipped or dead-lettered.
    outcome: chime_core::event::DeliveryOutcome,
    attempts: u32,
    /// When it was sent, skipped or dead-lettered (last attempted while pending).
    #[schema(value_type = String)]
    at: Timestamp,
    /// Why it was skipped or dead-lettered, or the last error of a pending one.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// The provider's message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_id: Option<String>,
}

impl From<chime_store::DeliveryStatus> for DeliveryItem {
    fn from(d: chime_store::DeliveryStatus) -> Self {
        Self {
            channel: d.channel,
            target: d.target,
            outcome: d.outcome,
            attempts: d.attempts,
            at: d.at,
            detail: d.detail,
            provider_id: d.provider_id,
        }
    }
}

/// Which dead-lettered delivery to try again.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct RetryBody {
    /// The occurrence's due instant, as in history.
    #[schema(format = DateTime)]
    due_at: String,
    /// One of `email`, `sms`, `push`, `webhook`: in-app deliveries are never dead-lettered.
    #[schema(value_type = String, pattern = "^(email|sms|push|webhook)$")]
    channel: chime_core::event::Channel,
    /// The push subscription id, for push.
    target: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Retried {
    /// Always `pending`: the delivery is queued for an attempt now.
    outcome: chime_core::event::DeliveryOutcome,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    #[schema(value_type = String)]
    due_at: Timestamp,
    seq: u32,
    #[schema(value_type = String)]
    fired_at: Timestamp,
    /// Fired later than the lateness threshold (10 s by default).
    late: bool,
    /// Recorded but not delivered (missed-occurrence policy `skip`).
    skipped: bool,
    /// Further missed occurrences this one stands for (policy `fireOnceLate`).
    coalesced: u32,
    deliveries: Vec<DeliveryItem>,
    /// Where the occurrence is in its life: `open`, `acknowledged`, `snoozed`, `repeated` or
    /// `expired` (absent for occurrences fired before Chime kept this).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(open|acknowledged|snoozed|repeated|expired)$")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    acknowledged_at: Option<Timestamp>,
    /// The channel the acknowledgement came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged_on: Option<chime_core::event::Channel>,
    /// Snoozed: it returns (or returned) as a new occurrence due then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    snoozed_until: Option<Timestamp>,
    /// A snoozed occurrence's return: the due instant of the occurrence it returns.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    snoozed_from: Option<Timestamp>,
}

impl HistoryItem {
    /// With the occurrence's state, as of `now`.
    fn with_state(mut self, record: &chime_store::OccurrenceRecord, now: Timestamp) -> Self {
        self.state = Some(crate::occurrences::state_name(record.state(now)));
        self.acknowledged_at = record.acknowledged.map(|(at, _)| at);
        self.acknowledged_on = record.acknowledged.map(|(_, channel)| channel);
        self.snoozed_until = record.snoozed_until;
        self.snoozed_from = record.snoozed_from;
        self
    }
}

impl From<chime_store::HistoryEntry> for HistoryItem {
    fn from(e: chime_store::HistoryEntry) -> Self {
        Self {
            due_at: e.due_at,
            seq: e.seq,
            fired_at: e.fired_at,
            late: e.late,
            skipped: e.skipped,
            coalesced: e.coalesced,
            deliveries: e.deliveries.into_iter().map(Into::into).collect(),
            state: None,
            acknowledged_at: None,
            acknowledged_on: None,
            snoozed_until: None,
            snoozed_from: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    history: Vec<HistoryItem>,
    /// Pass as `before` for older entries; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<String>,
}

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;
const DEFAULT_OCCURRENCES: usize = 10;
const MAX_OCCURRENCES: usize = 1000;

/// A positive integer query parameter within `1..=max`.
pub(crate) fn count_param(
    query: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
) -> ApiResult<usize> {
    let Some(raw) = query.get(name) else {
        return Ok(default);
    };
    match raw.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_param(
            &format!("?{name}"),
            Value::String(raw.clone()),
            format!("`{name}` is a whole number from 1 to {max}"),
        )),
    }
}

/// An id path segment; a malformed id names no task of the caller's, so it is a 404.
fn task_id(raw: &str) -> ApiResult<TaskId> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

fn instant_param(query: &HashMap<String, String>, name: &str) -> ApiResult<Option<Timestamp>> {
    query
        .get(name)
        .map(|raw| {
            raw.parse::<Timestamp>().map_err(|_| {
                ApiError::invalid_param(
                    &format!("?{name}"),
                    Value::String(raw.clone()),
                    format!("`{name}` is an RFC 3339 instant"),
                )
            })
        })
        .transpose()
}

/// Create a task from the design's POST body.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks",
    request_body = chime_core::task::TaskIn,
    responses(
        (status = 201, description = "Created", body = TaskOut),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller has the most tasks allowed (`[limits] tasks_per_user`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit (64 KiB by default)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the caller's write rate; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let home = home_zone(&state, &user, &body).await?;
    let view = state
        .definition
        .create_with_home(&user, body, home.as_ref())
        .await?;
    let location = format!("/api/v1/tasks/{}", view.record.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(TaskOut::from(&view)),
    )
        .into_response())
}

/// The caller's tasks, oldest first, cursor-paginated.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    params(
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^tsk_[0-9a-fA-F]{32}$", description = "`nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, body = TaskPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<TaskPage>> {
    let limit = count_param(&query, "limit", DEFAULT_PAGE, MAX_PAGE)?;
    let after = query
        .get("cursor")
        .map(|c| {
            c.parse::<TaskId>().map_err(|_| {
                ApiError::invalid_param(
                    "?cursor",
                    Value::String(c.clone()),
                    "not a cursor returned by this API",
                )
            })
        })
        .transpose()?;
    let views = state.definition.list(&user, after, limit).await?;
    let next_cursor = (views.len() == limit)
        .then(|| views.last().map(|v| v.record.id.to_string()))
        .flatten();
    Ok(Json(TaskPage {
        tasks: views.iter().map(TaskOut::from).collect(),
        next_cursor,
    }))
}

/// One of the caller's tasks.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = TaskOut),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskOut>> {
    let view = state.definition.get(&user, task_id(&id)?).await?;
    Ok(Json(TaskOut::from(&view)))
}

/// Replace a task; its schedule is recomputed from the new body.
#[utoipa::path(put, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path)),
    request_body = chime_core::task::TaskIn,
    responses(
        (status = 200, body = TaskOut),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<TaskOut>> {
    let home = home_zone(&state, &user, &body).await?;
    let view = state
        .definition
        .replace_with_home(&user, task_id(&id)?, body, home.as_ref())
        .await?;
    Ok(Json(TaskOut::from(&view)))
}

/// The zone of the user's settings, which a floating task (`"floating": true`) takes; read only
/// for one (every other create costs no profile read).
async fn home_zone(
    state: &AppState,
    user: &UserId,
    body: &Value,
) -> ApiResult<Option<chime_core::recurrence::TaskZone>> {
    if body.get("floating") != Some(&Value::Bool(true)) {
        return Ok(None);
    }
    let profile = state.recipients.profile(user).await?;
    Ok(profile
        .time_zone
        .and_then(|zone| chime_core::recurrence::TaskZone::parse(zone.as_str()).ok()))
}

/// Delete a task: it will not fire again.
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.definition.delete(&user, task_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The task's next due instants from now.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/occurrences", tag = "tasks",
    params(("id" = String, Path), ("count" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 10")),
    responses(
        (status = 200, body = Occurrences),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn occurrences(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Occurrences>> {
    let count = count_param(&query, "count", DEFAULT_OCCURRENCES, MAX_OCCURRENCES)?;
    let occurrences = state
        .definition
        .occurrences(&user, task_id(&id)?, count)
        .await?;
    Ok(Json(Occurrences { occurrences }))
}

/// The next due instants across all of the caller's tasks, soonest first, each with the notes
/// that say why it is where it is (a DST gap or fold, a month without the day) or when quiet
/// hours send it.
#[utoipa::path(get, path = "/api/v1/occurrences", tag = "tasks",
    params(
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 10"),
        ("perTask" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "At most this many of one task (1..=1000, default `limit`), so a frequent task does not fill the list"),
    ),
    responses(
        (status = 200, body = UpcomingPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upcoming(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<UpcomingPage>> {
    let limit = count_param(&query, "limit", DEFAULT_OCCURRENCES, MAX_OCCURRENCES)?;
    let per_task = count_param(&query, "perTask", limit, MAX_OCCURRENCES)?;
    let upcoming = state.definition.upcoming(&user, limit, per_task).await?;
    let profile = state.recipients.profile(&user).await?;
    Ok(Json(UpcomingPage {
        occurrences: with_notes(upcoming, &profile, state.definition.now()),
    }))
}

/// A line of English to read into a task.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // The schema of the body `quick` reads (it names each refused field).
pub struct QuickBody {
    /// The reminder's text, then when: `Call mom tomorrow at 9`, `Water the plants every other
    /// Friday at 9`, `Rent on the 1st of every month`, `Stretch in 20 minutes`. 1 to 500
    /// characters.
    #[schema(
        example = "Book club on the 2nd Tuesday of every month at 19:00",
        min_length = 1,
        max_length = 500
    )]
    text: String,
    /// The zone it is read in (an IANA name); default the caller's profile zone, else UTC.
    #[schema(example = "Europe/Berlin")]
    time_zone: Option<String>,
}

/// What a line was read as.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuickAnswer {
    /// A task body to `POST /api/v1/tasks` as it is.
    #[schema(value_type = Object)]
    task: Value,
    /// What was understood, for a person: `Every month on the second Tuesday at 19:00`.
    understood: String,
    /// Its next due instants, RFC 3339 UTC.
    #[schema(value_type = Vec<String>)]
    occurrences: Vec<Timestamp>,
}

/// Quick add: reads one line of English into a task body (nothing is stored), saying what it
/// understood and when it would be due. A line it cannot read exactly is refused at `/text`
/// rather than guessed. The grammar is in `chime_core::task::quick`.
#[utoipa::path(post, path = "/api/v1/tasks/quick", tag = "tasks",
    request_body = QuickBody,
    params(("count" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 10")),
    responses(
        (status = 200, body = QuickAnswer),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn quick(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<QuickAnswer>> {
    let count = count_param(&query, "count", DEFAULT_OCCURRENCES, MAX_OCCURRENCES)?;
    let field = |name: &str| body.get(name).filter(|v| !v.is_null()).cloned();
    let invalid = |pointer: &str, value: Option<Value>, detail: &str| {
        ApiError::Invalid(chime_core::FieldErrors::one(pointer, value, detail))
    };
    let text = match field("text") {
        Some(Value::String(text)) if (1..=500).contains(&text.chars().count()) => text,
        other => {
            return Err(invalid(
                "/text",
                other,
                "a line of 1 to 500 characters, such as `Call mom tomorrow at 9`",
            ))
        }
    };
    let zone = match field("timeZone") {
        Some(Value::String(name)) => chime_core::recurrence::TaskZone::parse(&name)
            .map_err(|e| invalid("/timeZone", Some(Value::String(name)), &e.to_string()))?,
        Some(other) => return Err(invalid("/timeZone", Some(other), "an IANA time zone name")),
        None => {
            let profile = state.recipients.profile(&user).await?;
            profile
                .time_zone
                .and_then(|z| chime_core::recurrence::TaskZone::parse(z.as_str()).ok())
                .unwrap_or_else(chime_core::recurrence::TaskZone::utc)
        }
    };
    let (quick, occurrences) = state.definition.quick_add(&text, &zone, count)?;
    Ok(Json(QuickAnswer {
        task: quick.body,
        understood: quick.understood,
        occurrences,
    }))
}

/// The next due instants of a body, without saving it.
#[utoipa::path(post, path = "/api/v1/tasks/preview", tag = "tasks",
    params(("count" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 10")),
    request_body = chime_core::task::TaskIn,
    responses(
        (status = 200, body = Occurrences),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn preview(
    State(state): State<AppState>,
    AuthUser(_user): AuthUser,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Occurrences>> {
    let count = count_param(&query, "count", DEFAULT_OCCURRENCES, MAX_OCCURRENCES)?;
    let occurrences = state.definition.preview(body, count)?;
    Ok(Json(Occurrences { occurrences }))
}

/// Each fired occurrence of the task, newest first, with its per-channel deliveries.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/history", tag = "tasks",
    params(
        ("id" = String, Path),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 50"),
        ("before" = Option<String>, Query, format = DateTime, description = "RFC 3339: only occurrences due before it"),
    ),
    responses(
        (status = 200, body = HistoryPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<HistoryPage>> {
    let limit = count_param(&query, "limit", DEFAULT_PAGE, MAX_PAGE)?;
    let before = instant_param(&query, "before")?;
    let id = task_id(&id)?;
    let entries = state.deliveries.history(&user, id, before, limit).await?;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.due_at.to_string()))
        .flatten();
    // The same page of the task's occurrence states, matched by due instant.
    let states: HashMap<Timestamp, chime_store::OccurrenceRecord> = state
        .occurrences
        .of_task(&user, id, before, limit)
        .await?
        .into_iter()
        .map(|r| (r.key.due_at, r))
        .collect();
    let now = state.occurrences.now();
    Ok(Json(HistoryPage {
        history: entries
            .into_iter()
            .map(|e| {
                let record = states.get(&e.due_at);
                let item = HistoryItem::from(e);
                match record {
                    Some(r) => item.with_state(r, now),
                    None => item,
                }
            })
            .collect(),
        next_before,
    }))
}

/// Try a dead-lettered delivery again, now, with a new retry window.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/deliveries/retry", tag = "tasks",
    params(("id" = String, Path)),
    request_body = RetryBody,
    responses(
        (status = 202, description = "Queued", body = Retried),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task for this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task has no such dead-lettered delivery", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Retried>)> {
    let id = task_id(&id)?;
    let mut errors = Vec::new();
    let due_at = match body
        .get("dueAt")
        .and_then(Value::as_str)
        .map(str::parse::<Timestamp>)
    {
        Some(Ok(t)) => Some(t),
        _ => {
            errors.push(chime_core::FieldError::new(
                "/dueAt",
                body.get("dueAt").cloned(),
                "the occurrence's due instant (RFC 3339), as history shows it",
            ));
            None
        }
    };
    let channel = match body
        .get("channel")
        .and_then(Value::as_str)
        .and_then(chime_core::event::Channel::parse)
    {
        Some(c) if c != chime_core::event::Channel::InApp => Some(c),
        _ => {
            errors.push(chime_core::FieldError::new(
                "/channel",
                body.get("channel").cloned(),
                "one of email, sms, push, webhook",
            ));
            None
        }
    };
    let target = match body.get("target") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(t)) => t.clone(),
        Some(other) => {
            errors.push(chime_core::FieldError::new(
                "/target",
                Some(other.clone()),
                "the push subscription id, as history shows it",
            ));
            String::new()
        }
    };
    let (Some(due_at), Some(channel)) = (due_at, channel) else {
        return Err(ApiError::Invalid(chime_core::FieldErrors(errors)));
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(chime_core::FieldErrors(errors)));
    }
    let key = chime_store::DeliveryKey {
        occurrence: chime_core::event::OccurrenceKey {
            task_id: id,
            due_at,
        },
        channel,
        target,
    };
    // 404 is for a task the caller does not have; a task that is there but has nothing
    // dead-lettered at that occurrence and channel is a 409, a conflict with its state.
    state.deliveries.retry(&user, &key).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Retried {
            outcome: chime_core::event::DeliveryOutcome::Pending,
        }),
    ))
}
