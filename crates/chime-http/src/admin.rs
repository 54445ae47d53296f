//! Support access: a caller with the configured admin role (`[auth] admin_claim` and
//! `admin_value`) may read any user's task. Nothing else: no list, no change.
//!
//! Every such read, found or not, is an audit event (`tracing` target `audit`) naming the
//! admin, the task and its owner. To anyone without the role the endpoint does not exist: a
//! 404, as for another user's task, never a 403.

use axum::extract::{Path, State};
use axum::Json;
use chime_core::TaskId;

use crate::error::{ApiError, ApiResult, Problem};
use crate::tasks::TaskOut;
use crate::{AdminUser, AppState};

/// Any user's task, for support (admins only; audited).
#[utoipa::path(get, path = "/api/v1/admin/tasks/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = TaskOut),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or the caller is not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_task(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskOut>> {
    let Ok(task_id) = id.parse::<TaskId>() else {
        tracing::info!(target: "audit", admin = %admin, task_id = %id, found = false, "admin read of a task");
        return Err(ApiError::NotFound);
    };
    let result = state.definition.get_any(task_id).await;
    match &result {
        Ok(view) => tracing::info!(
            target: "audit",
            admin = %admin,
            task_id = %task_id,
            owner = %view.record.user_id,
            found = true,
            "admin read of a task"
        ),
        Err(_) => tracing::info!(
            target: "audit",
            admin = %admin,
            task_id = %task_id,
            found = false,
            "admin read of a task"
        ),
    }
    Ok(Json(TaskOut::from(&result?)))
}
