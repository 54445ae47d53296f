//! Feature telemetry: `POST /bff/telemetry` counts allowlisted feature names (and variants) in
//! `chime_web_features_used_total`. Nothing about the user is kept, and only values from
//! [`FEATURES`] become labels, so the series stay bounded whatever a client sends.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{problem, Bff};

/// The features the app may report, each with its allowed variants: bounded label values,
/// nothing typed by a user.
const FEATURES: &[(&str, &[&str])] = &[
    (
        "task_created",
        &[
            "once",
            "repeating_day",
            "repeating_week",
            "repeating_month",
            "repeating_year",
            "repeating_rule",
        ],
    ),
    ("task_updated", &["once", "repeating"]),
    ("task_deleted", &["any"]),
    (
        "channel_chosen",
        &["email", "sms", "push", "inApp", "webhook"],
    ),
    ("missed_policy", &["fireOnceLate", "fireAll", "skip"]),
    ("preview_opened", &["any"]),
    ("time_zone_changed", &["any"]),
    ("search_used", &["any"]),
    ("quick_add", &["any"]),
    ("inbox_marked_read", &["one", "all"]),
    ("dead_letter_retried", &["any"]),
    ("occurrence_skipped", &["any"]),
    ("occurrence_restored", &["any"]),
    ("occurrence_moved", &["any"]),
    ("occurrence_added", &["any"]),
    ("ics_import", &["dryRun", "created"]),
    ("calendar_feed", &["made", "rotated", "revoked"]),
    ("push_enabled", &["on", "off"]),
    ("webhook_set", &["any"]),
    ("browser_notifications", &["granted", "denied"]),
];

#[derive(Deserialize)]
struct FeatureUse {
    feature: String,
    #[serde(default)]
    variant: Option<String>,
}

/// `POST /bff/telemetry {"feature", "variant"}`: one count, no user.
pub(super) async fn telemetry(
    State(bff): State<Arc<Bff>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = bff.user(&method, &headers).await {
        return r;
    }
    if !bff.telemetry {
        return StatusCode::NO_CONTENT.into_response();
    }
    let Ok(used) = serde_json::from_slice::<FeatureUse>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            "expected {\"feature\", \"variant\"}",
        );
    };
    let variant = used.variant.as_deref().unwrap_or("any");
    let known = FEATURES
        .iter()
        .find(|(f, _)| *f == used.feature)
        .and_then(|(f, variants)| variants.iter().find(|v| **v == variant).map(|v| (*f, *v)));
    let Some((feature, variant)) = known else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "not a feature this server counts",
        );
    };
    bff.metrics
        .web_features
        .get_or_create(&chime_roles::metrics::FeatureLabels { feature, variant })
        .inc();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_telemetry_label_value_is_a_short_identifier() {
        for (feature, variants) in FEATURES {
            for value in std::iter::once(feature).chain(variants.iter()) {
                assert!(
                    value.len() < 32
                        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{value}"
                );
            }
        }
    }
}
