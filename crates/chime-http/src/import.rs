//! `POST /api/v1/tasks/import`: a calendar file (`.ics`) into tasks, with a dry run.

use axum::extract::State;
use axum::Json;
use chime_core::recurrence::TaskZone;
use chime_core::task::TaskFields;
use chime_core::FieldErrors;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::{AppState, AuthUser, JsonBody};

/// The largest body this route reads: a file of the most the parser reads
/// (`chime_core::ics::import::MAX_BYTES`), escaped as a JSON string.
pub const LIMIT: usize = chime_core::ics::import::MAX_BYTES * 3 / 2;

/// A calendar to import.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // The schema of the body `import` reads field by field.
pub struct ImportBody {
    /// The `.ics` file's text (RFC 5545), at most 2 MiB.
    #[schema(
        example = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1@example.com\r\nSUMMARY:Dentist\r\nDTSTART;TZID=Europe/Berlin:20271201T090000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )]
    calendar: String,
    /// The zone a floating time (no `TZID`, no `Z`) is read on: an IANA name. Default: the
    /// caller's settings, else UTC.
    #[schema(example = "Europe/Berlin")]
    time_zone: Option<String>,
    /// `true`: say what would be created and create nothing. Default `false`.
    dry_run: Option<bool>,
}

/// What an import created, or would create.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportAnswer {
    dry_run: bool,
    /// One per reminder of each event or to-do, in file order.
    tasks: Vec<ImportedTask>,
    /// What was not imported, and why.
    skipped: Vec<SkippedItem>,
}

/// One task of an import.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportedTask {
    /// The created task's id; `null` in a dry run.
    #[schema(value_type = Option<String>)]
    id: Option<chime_core::TaskId>,
    /// The event's or to-do's `UID`.
    uid: Option<String>,
    /// When it reminds relative to the event: `15 min before`, `at the start`, `09:00 on the
    /// day`.
    reminder: String,
    /// The task as it is (or would be) created.
    task: TaskFields,
    /// Its next due instants, RFC 3339 UTC (at most 3).
    #[schema(value_type = Vec<String>)]
    occurrences: Vec<Timestamp>,
}

/// An event, to-do or other component not imported.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedItem {
    uid: Option<String>,
    summary: Option<String>,
    reason: String,
}

/// Imports a calendar file: every event and to-do (RRULE, EXDATE, RDATE, moved and cancelled
/// occurrences, alarms, all-day, time zones by IANA name or by a VTIMEZONE matched to one)
/// becomes a task per reminder (its alarms, or its start; 09:00 for an all-day one). With
/// `dryRun` nothing is created: the answer lists what would be, and what is skipped and why.
/// A file that is no calendar is a 422 at `/calendar` and creates nothing; one bad event never
/// fails the rest.
#[utoipa::path(post, path = "/api/v1/tasks/import", tag = "tasks",
    request_body = ImportBody,
    responses(
        (status = 200, body = ImportAnswer),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<ImportAnswer>> {
    let field = |name: &str| body.get(name).filter(|v| !v.is_null()).cloned();
    let invalid = |pointer: &str, value: Option<Value>, detail: &str| {
        ApiError::Invalid(FieldErrors::one(pointer, value, detail))
    };
    if !body.is_object() {
        return Err(invalid(
            "",
            Some(body.clone()),
            "the body must be a JSON object",
        ));
    }
    let Some(Value::String(calendar)) = field("calendar") else {
        return Err(invalid(
            "/calendar",
            field("calendar"),
            "the `.ics` file's text, a string",
        ));
    };
    let dry_run = match field("dryRun") {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(other) => return Err(invalid("/dryRun", Some(other), "`dryRun` is true or false")),
    };
    let zone = match field("timeZone") {
        Some(Value::String(name)) => TaskZone::parse(&name)
            .map_err(|e| invalid("/timeZone", Some(Value::String(name)), &e.to_string()))?,
        Some(other) => return Err(invalid("/timeZone", Some(other), "an IANA time zone name")),
        None => state
            .recipients
            .profile(&user)
            .await?
            .time_zone
            .and_then(|z| TaskZone::parse(z.as_str()).ok())
            .unwrap_or_else(TaskZone::utc),
    };
    let outcome = state
        .definition
        .import(&user, &calendar, &zone, dry_run)
        .await?;
    if !dry_run && !outcome.tasks.is_empty() {
        tracing::info!(
            created = outcome.tasks.len(),
            skipped = outcome.skipped.len(),
            "calendar imported"
        );
    }
    Ok(Json(ImportAnswer {
        dry_run,
        tasks: outcome
            .tasks
            .into_iter()
            .map(|t| ImportedTask {
                id: t.created.as_ref().map(|v| v.record.id),
                uid: t.planned.uid,
                reminder: t.planned.reminder,
                task: t.spec.fields(),
                occurrences: t.upcoming,
            })
            .collect(),
        skipped: outcome
            .skipped
            .into_iter()
            .map(|s| SkippedItem {
                uid: s.uid,
                summary: s.summary,
                reason: s.reason,
            })
            .collect(),
    }))
}
