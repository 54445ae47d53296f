//! The caller's profile (`/api/v1/me`): the settings that follow them from browser to phone.

use axum::extract::State;
use axum::Json;
use chime_core::profile::ProfileFields;

use crate::error::{ApiResult, Problem};
use crate::{AppState, AuthUser, JsonBody};

/// The caller's profile: their defaults when they never saved one (no time zone, no email or
/// phone, no quiet hours, in-app only, telemetry on).
#[utoipa::path(get, path = "/api/v1/me", tag = "profile",
    responses(
        (status = 200, body = ProfileFields),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_profile(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<ProfileFields>> {
    let profile = state.recipients.profile(&user).await?;
    Ok(Json(profile.fields()))
}

/// Replace the caller's profile; absent fields take their defaults. Every refused field is
/// named, and a refused body changes nothing.
#[utoipa::path(put, path = "/api/v1/me", tag = "profile",
    request_body = chime_core::profile::ProfileIn,
    responses(
        (status = 200, body = ProfileFields),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_profile(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<ProfileFields>> {
    let profile = state.recipients.put_profile(&user, body).await?;
    Ok(Json(profile.fields()))
}
