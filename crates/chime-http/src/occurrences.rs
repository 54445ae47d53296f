//! Fired occurrences and what their owner does with them: the open list, one occurrence's
//! state, acknowledge (done) and snooze.
//!
//! An occurrence is named by its task and due instant, the key every channel carries
//! (`tsk_…@2026-01-01T09:00:00Z`): `/api/v1/tasks/{id}/occurrences/{dueAt}`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use chime_core::event::{Channel, OccurrenceKey};
use chime_core::{FieldError, FieldErrors, TaskId, UserId};
use chime_roles::definition::DefinitionError;
use chime_roles::occurrence::{SnoozeError, MAX_SNOOZE};
use chime_store::{OccurrenceRecord, OccurrenceState};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::tasks::count_param;
use crate::{AppState, AuthUser, JsonBody};

/// A fired occurrence and where it is in its life.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OccurrenceItem {
    /// `taskId@dueAt`: what webhooks, push payloads and provider idempotency keys carry.
    #[schema(example = "tsk_0192f0c4a1b27c3e8d4f5a6b7c8d9e0f@2026-01-01T09:00:00Z")]
    key: String,
    #[schema(value_type = String)]
    task_id: TaskId,
    /// The task's name now (`null` when the task has been deleted).
    task_name: Option<String>,
    /// RFC 3339 UTC.
    #[schema(value_type = String)]
    due_at: Timestamp,
    /// Position in the task's sequence (a snoozed occurrence's return keeps its original's).
    seq: u32,
    #[schema(inline)]
    state: OccurrenceStateSchema,
    #[schema(value_type = String)]
    fired_at: Timestamp,
    /// Open until then unless acknowledged or snoozed; expired after.
    #[schema(value_type = String)]
    expires_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    acknowledged_at: Option<Timestamp>,
    /// The channel the acknowledgement came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged_on: Option<Channel>,
    /// Snoozed: it returns (or returned) as a new occurrence due then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    snoozed_until: Option<Timestamp>,
    /// For a snoozed occurrence's return: the due instant of the occurrence it returns.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    snoozed_from: Option<Timestamp>,
    /// Escalation steps reached so far (of its task's `escalate`; a repeat counts its
    /// original's). Absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    escalated: u32,
    /// When the next escalation step goes out unless it is acknowledged or snoozed first.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    next_escalation_at: Option<Timestamp>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `open` (fired, waiting), `acknowledged` (done), `snoozed` (returns at `snoozedUntil`),
/// `repeated` (not done, so its nagging task sent it again at `snoozedUntil`) or `expired`
/// (none of these within its window).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
enum OccurrenceStateSchema {
    Open,
    Acknowledged,
    Snoozed,
    Repeated,
    Expired,
}

impl OccurrenceItem {
    fn new(r: OccurrenceRecord, task_name: Option<String>, now: Timestamp) -> Self {
        Self {
            key: r.key.to_string(),
            task_id: r.key.task_id,
            task_name,
            due_at: r.key.due_at,
            seq: r.seq,
            state: match r.state(now) {
                OccurrenceState::Open => OccurrenceStateSchema::Open,
                OccurrenceState::Acknowledged => OccurrenceStateSchema::Acknowledged,
                OccurrenceState::Snoozed => OccurrenceStateSchema::Snoozed,
                OccurrenceState::Repeated => OccurrenceStateSchema::Repeated,
                OccurrenceState::Expired => OccurrenceStateSchema::Expired,
            },
            fired_at: r.fired_at,
            expires_at: r.expires_at,
            acknowledged_at: r.acknowledged.map(|(at, _)| at),
            acknowledged_on: r.acknowledged.map(|(_, channel)| channel),
            snoozed_until: r.snoozed_until,
            snoozed_from: r.snoozed_from,
            escalated: r.escalated,
            next_escalation_at: r.escalate_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenPage {
    /// Open occurrences, newest due first.
    occurrences: Vec<OccurrenceItem>,
    /// Pass as `cursor` for older ones; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Give exactly one: `minutes` from now, or `until` an instant.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum SnoozeBody {
    For(SnoozeFor),
    Until(SnoozeUntil),
}

// Documentation only: `snooze_until` reads the body, naming each refused field.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct SnoozeFor {
    /// Snooze for this many minutes from now (at most 366 days).
    #[schema(minimum = 1, maximum = 527040)]
    minutes: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct SnoozeUntil {
    /// Snooze until this RFC 3339 instant (after now, within 366 days).
    #[schema(format = DateTime)]
    until: String,
}

/// The caller's open occurrences (fired, neither acknowledged, snoozed nor expired) across
/// their tasks, newest due first.
#[utoipa::path(get, path = "/api/v1/occurrences/open", tag = "occurrences",
    params(
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^tsk_[0-9a-fA-F]{32}\\.-?[0-9]{1,18}$", description = "`nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, body = OpenPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn open(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<OpenPage>> {
    let limit = count_param(&query, "limit", 50, 1000)?;
    let before = query
        .get("cursor")
        .map(|c| {
            parse_cursor(c).ok_or_else(|| {
                ApiError::invalid_param(
                    "?cursor",
                    Value::String(c.clone()),
                    "not a cursor returned by this API",
                )
            })
        })
        .transpose()?;
    let records = state
        .occurrences
        .open(&user, before.as_ref(), limit)
        .await?;
    let next_cursor = (records.len() == limit)
        .then(|| records.last().map(|r| cursor(&r.key)))
        .flatten();
    Ok(Json(OpenPage {
        occurrences: named(&state, &user, records).await?,
        next_cursor,
    }))
}

/// The caller's snoozed occurrences still to return, soonest return first.
#[utoipa::path(get, path = "/api/v1/occurrences/snoozed", tag = "occurrences",
    params(
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1..=1000, default 50"),
    ),
    responses(
        (status = 200, body = OpenPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn snoozed(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<OpenPage>> {
    let limit = count_param(&query, "limit", 50, 1000)?;
    let records = state.occurrences.snoozed(&user, limit).await?;
    Ok(Json(OpenPage {
        occurrences: named(&state, &user, records).await?,
        next_cursor: None,
    }))
}

/// The records as items with their task's name, one lookup per task; a deleted task's
/// occurrences are left out (they are not waiting for anyone any more).
async fn named(
    state: &AppState,
    user: &UserId,
    records: Vec<OccurrenceRecord>,
) -> ApiResult<Vec<OccurrenceItem>> {
    let now = state.occurrences.now();
    let mut names: HashMap<TaskId, Option<String>> = HashMap::new();
    let mut items = Vec::with_capacity(records.len());
    for r in records {
        let name = match names.get(&r.key.task_id) {
            Some(name) => name.clone(),
            None => {
                let name = task_name(state, user, r.key.task_id).await?;
                names.insert(r.key.task_id, name.clone());
                name
            }
        };
        if name.is_some() {
            items.push(OccurrenceItem::new(r, name, now));
        }
    }
    Ok(items)
}

/// One of the caller's fired occurrences, in whatever state.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/occurrences/{dueAt}", tag = "occurrences",
    params(("id" = String, Path), ("dueAt" = String, Path, format = DateTime, description = "The occurrence's due instant, RFC 3339")),
    responses(
        (status = 200, body = OccurrenceItem),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, due)): Path<(String, String)>,
) -> ApiResult<Json<OccurrenceItem>> {
    let key = path_key(&id, &due)?;
    let record = state
        .occurrences
        .get(&user, &key)
        .await?
        .ok_or(ApiError::NotFound)?;
    item(&state, &user, record).await
}

/// Marks the occurrence done: it leaves the open list, its inbox items are read, deliveries
/// still waiting (quiet hours, retries) are withdrawn and a pending snooze is cancelled.
/// Idempotent: acknowledging again answers the first acknowledgement.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/occurrences/{dueAt}/acknowledge", tag = "occurrences",
    params(
        ("id" = String, Path),
        ("dueAt" = String, Path, format = DateTime, description = "The occurrence's due instant, RFC 3339"),
        ("via" = Option<String>, Query, pattern = "^(inApp|webhook|push)$", description = "Where the acknowledgement came from: `inApp` (default), `webhook` (a system acting on a webhook) or `push` (a notification action)"),
    ),
    responses(
        (status = 200, body = OccurrenceItem),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn acknowledge(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, due)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<OccurrenceItem>> {
    let key = path_key(&id, &due)?;
    let via = match query.get("via").map(String::as_str) {
        None | Some("inApp") => Channel::InApp,
        Some("webhook") => Channel::Webhook,
        Some("push") => Channel::Push,
        Some(other) => {
            return Err(ApiError::invalid_param(
                "?via",
                Value::String(other.to_owned()),
                "`via` is one of inApp, webhook, push",
            ))
        }
    };
    let record = state
        .occurrences
        .acknowledge(&user, &key, via)
        .await?
        .ok_or(ApiError::NotFound)?;
    item(&state, &user, record).await
}

/// Puts the occurrence off: it returns once, as a new occurrence of its task due when the
/// snooze ends (with the task's channels as they are then). Snoozing again before it
/// returns moves the return.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/occurrences/{dueAt}/snooze", tag = "occurrences",
    params(("id" = String, Path), ("dueAt" = String, Path, format = DateTime, description = "The occurrence's due instant, RFC 3339")),
    request_body = SnoozeBody,
    responses(
        (status = 200, body = OccurrenceItem),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn snooze(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, due)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<OccurrenceItem>> {
    let key = path_key(&id, &due)?;
    let until = snooze_until(&body, state.occurrences.now())?;
    let record = state
        .occurrences
        .snooze(&user, &key, until)
        .await
        .map_err(|e| match e {
            SnoozeError::NotFound => ApiError::NotFound,
            SnoozeError::NotAhead { .. } | SnoozeError::TooFar { .. } => {
                ApiError::Invalid(FieldErrors::one(
                    "/until",
                    Some(Value::String(until.to_string())),
                    e.to_string(),
                ))
            }
            SnoozeError::Acknowledged | SnoozeError::Returned { .. } => ApiError::Refused {
                kind: "not-snoozable",
                title: "This occurrence cannot be snoozed",
                detail: e.to_string(),
            },
            SnoozeError::Store(e) => e.into(),
        })?;
    item(&state, &user, record).await
}

/// The instant a snooze body asks for: exactly one of `minutes` and `until`.
fn snooze_until(body: &Value, now: Timestamp) -> ApiResult<Timestamp> {
    let Some(fields) = body.as_object() else {
        return Err(ApiError::Invalid(FieldErrors::one(
            "",
            Some(body.clone()),
            "the body is an object with `minutes` or `until`",
        )));
    };
    let mut errors = Vec::new();
    for name in fields.keys() {
        if name != "minutes" && name != "until" {
            errors.push(FieldError::new(
                format!("/{name}"),
                fields.get(name).cloned(),
                "unknown field: give `minutes` or `until`",
            ));
        }
    }
    let max_minutes = MAX_SNOOZE.as_mins();
    let until = match (fields.get("minutes"), fields.get("until")) {
        // A JSON number with an integral value (`10.0` too, as JSON Schema's `integer` is).
        (Some(m), None) => match m.as_i64().or_else(|| {
            m.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }) {
            Some(n) if (1..=max_minutes).contains(&n) => Some(now + SignedDuration::from_mins(n)),
            _ => {
                errors.push(FieldError::new(
                    "/minutes",
                    Some(m.clone()),
                    format!("`minutes` is a whole number from 1 to {max_minutes}"),
                ));
                None
            }
        },
        (None, Some(u)) => match u.as_str().and_then(|s| s.parse::<Timestamp>().ok()) {
            Some(at) => Some(at),
            None => {
                errors.push(FieldError::new(
                    "/until",
                    Some(u.clone()),
                    "`until` is an RFC 3339 instant with an offset, e.g. 2026-01-01T09:00:00Z",
                ));
                None
            }
        },
        (Some(_), Some(u)) => {
            errors.push(FieldError::new(
                "/until",
                Some(u.clone()),
                "give `minutes` or `until`, not both",
            ));
            None
        }
        (None, None) => {
            errors.push(FieldError::new(
                "/minutes",
                None,
                "give `minutes` (from now) or `until` (an instant)",
            ));
            None
        }
    };
    match until {
        Some(until) if errors.is_empty() => Ok(until),
        _ => Err(ApiError::Invalid(FieldErrors(errors))),
    }
}

async fn item(
    state: &AppState,
    user: &UserId,
    record: OccurrenceRecord,
) -> ApiResult<Json<OccurrenceItem>> {
    let name = task_name(state, user, record.key.task_id).await?;
    Ok(Json(OccurrenceItem::new(
        record,
        name,
        state.occurrences.now(),
    )))
}

async fn task_name(state: &AppState, user: &UserId, id: TaskId) -> ApiResult<Option<String>> {
    match state.definition.get(user, id).await {
        Ok(view) => Ok(Some(view.spec.name.as_str().to_owned())),
        Err(DefinitionError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A state as the API spells it.
pub(crate) fn state_name(state: OccurrenceState) -> &'static str {
    match state {
        OccurrenceState::Open => "open",
        OccurrenceState::Acknowledged => "acknowledged",
        OccurrenceState::Snoozed => "snoozed",
        OccurrenceState::Repeated => "repeated",
        OccurrenceState::Expired => "expired",
    }
}

/// An occurrence's path segments; anything that names no occurrence is a 404.
fn path_key(id: &str, due: &str) -> ApiResult<OccurrenceKey> {
    Ok(OccurrenceKey {
        task_id: id.parse().map_err(|_| ApiError::NotFound)?,
        due_at: due.parse().map_err(|_| ApiError::NotFound)?,
    })
}

/// A page's cursor: the last occurrence's task id and due instant in microseconds.
fn cursor(key: &OccurrenceKey) -> String {
    format!("{}.{}", key.task_id, key.due_at.as_microsecond())
}

/// A cursor back into a key. Any instant the pattern allows is accepted, clamped to the
/// range of instants (nothing is due outside it, so the page is the same).
fn parse_cursor(raw: &str) -> Option<OccurrenceKey> {
    let (id, micros) = raw.split_once('.')?;
    let micros: i64 = micros.parse().ok()?;
    let due_at = Timestamp::from_microsecond(micros).unwrap_or(if micros < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    Some(OccurrenceKey {
        task_id: id.parse().ok()?,
        due_at,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_cursor_reads_back_as_its_key_and_any_pattern_valid_one_is_accepted() {
        let key = OccurrenceKey {
            task_id: TaskId::new(),
            due_at: "2026-12-05T09:00:00.123456Z".parse().expect("instant"),
        };
        assert_eq!(parse_cursor(&cursor(&key)), Some(key));
        let id = key.task_id;
        for (micros, at) in [
            ("999999999999999999", Timestamp::MAX),
            ("-999999999999999999", Timestamp::MIN),
            ("0", Timestamp::UNIX_EPOCH),
        ] {
            let parsed = parse_cursor(&format!("{id}.{micros}")).expect("accepted");
            assert_eq!(parsed.due_at, at);
        }
        assert_eq!(parse_cursor(&format!("{id}@2026-12-05T09:00:00Z")), None);
        assert_eq!(parse_cursor("tsk_x.1"), None);
    }

    #[test]
    fn a_snooze_body_is_minutes_or_until_and_each_refusal_names_its_field() {
        let now: Timestamp = "2026-12-05T09:00:00Z".parse().expect("instant");
        let ok = |body: Value| snooze_until(&body, now).expect("accepted");
        assert_eq!(
            ok(json!({"minutes": 10})),
            now + SignedDuration::from_mins(10)
        );
        assert_eq!(
            ok(json!({"minutes": 10.0})),
            now + SignedDuration::from_mins(10)
        );
        assert_eq!(
            ok(json!({"until": "2026-12-06T08:00:00+01:00"})),
            "2026-12-06T07:00:00Z"
                .parse::<Timestamp>()
                .expect("instant")
        );
        for (body, pointer) in [
            (json!({"minutes": 0}), "/minutes"),
            (json!({"minutes": 10.5}), "/minutes"),
            (json!({"minutes": 527_041}), "/minutes"),
            (json!({"until": "2026-12-06 08:00"}), "/until"),
            (
                json!({"minutes": 1, "until": "2026-12-06T08:00:00Z"}),
                "/until",
            ),
            (json!({"for": 1}), "/for"),
            (json!([]), ""),
        ] {
            let Err(ApiError::Invalid(errors)) = snooze_until(&body, now) else {
                panic!("{body} accepted");
            };
            assert_eq!(errors.0[0].pointer, pointer, "{body}");
        }
    }
}

/// An occurrence to add.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // The schema of the body `add` reads (it names `/at` when refused).
pub struct AddBody {
    /// RFC 3339 with an offset: after now, and not already an occurrence of the task.
    #[schema(format = DateTime, example = "2026-12-19T08:00:00Z")]
    at: String,
}

/// Where a moved occurrence fires instead.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // The schema of the body `move_to` reads (it names `/to` when refused).
pub struct MoveBody {
    /// RFC 3339 with an offset: after now, and between the occurrence's neighbours.
    #[schema(format = DateTime, example = "2026-12-18T08:00:00Z")]
    to: String,
}

/// One skip, move or restore: the task as it is after it (its `skipped` and `moved`).
async fn change(
    state: &AppState,
    user: &UserId,
    id: &str,
    due: &str,
    change: chime_roles::definition::OccurrenceChange,
) -> ApiResult<Json<crate::tasks::TaskOut>> {
    let key = path_key(id, due)?;
    let view = state
        .definition
        .change_occurrence(user, key.task_id, key.due_at, change)
        .await?;
    // The new version fences the old schedule row: from here on it cannot fire. If it fired
    // before the change committed, say so rather than claim it was skipped or moved.
    use chime_roles::definition::OccurrenceChange;
    if !matches!(change, OccurrenceChange::Restore | OccurrenceChange::Add) {
        if let Some(fired) = state.occurrences.get(user, &key).await? {
            return Err(ApiError::Refused {
                kind: "already-fired",
                title: "This occurrence has already fired",
                detail: format!(
                    "the occurrence due at {} fired at {} before the change arrived",
                    key.due_at, fired.fired_at
                ),
            });
        }
    }
    Ok(Json(crate::tasks::TaskOut::from(&view)))
}

/// Skips one occurrence still to come (RFC 5545 EXDATE): it will not fire. The task gets a
/// new version with the occurrence in `skipped`; a moved occurrence is skipped where the rule
/// put it.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/occurrences/{dueAt}/skip", tag = "occurrences",
    params(("id" = String, Path), ("dueAt" = String, Path, format = DateTime, description = "The occurrence's due instant, RFC 3339")),
    responses(
        (status = 200, body = crate::tasks::TaskOut),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn skip(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, due)): Path<(String, String)>,
) -> ApiResult<Json<crate::tasks::TaskOut>> {
    use chime_roles::definition::OccurrenceChange;
    change(&state, &user, &id, &due, OccurrenceChange::Skip).await
}

/// Moves one occurrence still to come to another instant (RFC 5545 RECURRENCE-ID): it fires
/// once, there, keeping its number. It stays between its neighbours, so occurrences keep their
/// order; moving it to where the rule put it undoes the move.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/occurrences/{dueAt}/move", tag = "occurrences",
    params(("id" = String, Path), ("dueAt" = String, Path, format = DateTime, description = "The occurrence's due instant, RFC 3339")),
    request_body = MoveBody,
    responses(
        (status = 200, body = crate::tasks::TaskOut),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn move_to(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, due)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<crate::tasks::TaskOut>> {
    use chime_roles::definition::OccurrenceChange;
    let to = instant_field(&body, "to")?;
    change(&state, &user, &id, &due, OccurrenceChange::Move(to)).await
}

/// The body's field `name`, an RFC 3339 instant with an offset, kept to the microsecond (as
/// every instant Chime stores).
fn instant_field(body: &Value, name: &str) -> ApiResult<Timestamp> {
    let sent = body.get(name).cloned();
    sent.as_ref()
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
        .and_then(|t| Timestamp::from_microsecond(t.as_microsecond()).ok())
        .ok_or_else(|| {
            ApiError::Invalid(FieldErrors::one(
                format!("/{name}"),
                sent.clone(),
                "expected an instant, RFC 3339 with an offset: `2026-12-18T08:00:00Z`",
            ))
        })
}

/// Undoes the skip or the move of one occurrence still to come, named by where it was due (a
/// skipped one) or is due now (a moved one).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/occurrences/{dueAt}/restore", tag = "occurrences",
    params(("id" = String, Path), ("dueAt" = String, Path, format = DateTime, description = "The occurrence's due instant, RFC 3339")),
    responses(
        (status = 200, body = crate::tasks::TaskOut),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn restore(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, due)): Path<(String, String)>,
) -> ApiResult<Json<crate::tasks::TaskOut>> {
    use chime_roles::definition::OccurrenceChange;
    change(&state, &user, &id, &due, OccurrenceChange::Restore).await
}

/// Adds one occurrence (RFC 5545 RDATE): the task also fires once at `at`, numbered 0 (outside
/// the rule's count), even after the rule has ended; a one-time task gets a second time. Skip
/// or move it like any other occurrence (skipping one that was added removes it). Adding an
/// instant already added answers the task as it is, so a retry is safe.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/occurrences", tag = "occurrences",
    params(("id" = String, Path)),
    request_body = AddBody,
    responses(
        (status = 200, body = crate::tasks::TaskOut),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<crate::tasks::TaskOut>> {
    use chime_roles::definition::OccurrenceChange;
    let at = instant_field(&body, "at")?;
    change(&state, &user, &id, &at.to_string(), OccurrenceChange::Add).await
}
