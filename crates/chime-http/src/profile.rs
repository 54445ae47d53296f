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
/// named, and a refused body changes nothing. A new `timeZone` moves every floating task
/// (`"floating": true`) to the same local times in it before this answers; each occurrence
/// still pending fires once (one whose local time already came in the old zone is skipped,
/// one whose new time has passed fires at once).
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
    // Floating tasks follow the zone ("09:00 wherever I am"). Run on every save: a task
    // already on the zone is left alone, so a save repeated after a failure part way
    // finishes the move.
    if let Some(zone) = &profile.time_zone {
        if let Ok(home) = chime_core::recurrence::TaskZone::parse(zone.as_str()) {
            let moved = state.definition.follow_home(&user, &home).await?;
            if moved > 0 {
                tracing::info!(moved, "floating tasks moved to the new time zone");
            }
        }
    }
    Ok(Json(profile.fields()))
}
