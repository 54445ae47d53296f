//! `/act/{token}`: what a link in an email and a button on a push notification reach, with a
//! signed action token instead of a session (see `chime_roles::occurrence::tokens`).
//!
//! Mail scanners fetch links, so `GET` only shows a small page saying what the link does, with
//! a button; the `POST` that button submits acts. Acting twice is harmless: done stays done
//! (the first acknowledgement answers), and a snooze that already took is not moved again.
//! A service worker `POST`s with `Accept: application/json` and gets the occurrence's state.
//! The token is a capability: it is never logged (the request span redacts the path).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chime_core::html::escape;
use chime_roles::definition::DefinitionError;
use chime_roles::occurrence::tokens::{Action, ActionToken, TokenError};
use chime_roles::occurrence::SnoozeError;
use chime_store::OccurrenceRecord;
use jiff::SignedDuration;

use crate::error::ApiError;
use crate::AppState;

/// The path prefix whose rest is a token.
pub const PREFIX: &str = "/act/";

/// The pages' stylesheet (the CSP allows no inline style): readable on a phone, where most
/// of these links are opened, with a button big enough to tap.
pub const STYLE_PATH: &str = "/act.css";

const STYLE: &str = "\
body{margin:0;padding:0 1rem;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2328;\
background:#f6f8fa;line-height:1.5}\
main{max-width:28rem;margin:10vh auto;padding:1.5rem;background:#fff;border:1px solid #d1d9e0;\
border-radius:12px}\
.brand{margin:0 0 .25rem;color:#59636e;font-size:.9rem}\
h1{margin:0 0 1rem;font-size:1.5rem;overflow-wrap:anywhere}\
button{font:inherit;font-weight:600;min-height:48px;padding:.5rem 1.5rem;border-radius:8px;\
border:1px solid #1e40af;background:#1e40af;color:#fff;cursor:pointer}\
button:focus-visible,a:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}\
a{color:#1e40af}\
";

/// The stylesheet of the action pages.
pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLE,
    )
        .into_response()
}

/// The confirmation page.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let found = match verify(&state, &token) {
        Ok(token) => lookup(&state, &token).await.map(|found| (token, found)),
        Err(e) => Err(e),
    };
    let (token, (record, name, zone)) = match found {
        Ok(found) => found,
        Err(refusal) => return refusal.page(),
    };
    if let Some(settled) = settled_note(&record, token.action, &zone) {
        return page(StatusCode::OK, &name, &settled, None);
    }
    let question = match token.action {
        Action::Done => "Mark this reminder done?".to_owned(),
        Action::Snooze { .. } => format!("{} from now?", token.action.label()),
    };
    page(
        StatusCode::OK,
        &name,
        &question,
        Some(&token.action.label()),
    )
}

/// The action itself.
pub async fn act(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let found = match verify(&state, &token) {
        Ok(token) => lookup(&state, &token).await.map(|found| (token, found)),
        Err(e) => Err(e),
    };
    let (token, (record, name, zone)) = match found {
        Ok(found) => found,
        Err(refusal) if json => return refusal.json(),
        Err(refusal) => return refusal.page(),
    };
    let now = state.occurrences.now();
    let record = if settled_note(&record, token.action, &zone).is_some() {
        record
    } else {
        let done = match token.action {
            Action::Done => state
                .occurrences
                .acknowledge(&token.user, &token.occurrence, token.via)
                .await
                .map_err(ApiError::from)
                .and_then(|r| r.ok_or(ApiError::NotFound)),
            Action::Snooze { minutes } => {
                let until = now + SignedDuration::from_mins(i64::from(minutes));
                match state
                    .occurrences
                    .snooze(&token.user, &token.occurrence, until)
                    .await
                {
                    Ok(r) => Ok(r),
                    // Settled meanwhile (done, or returned): show it as it is.
                    Err(SnoozeError::Acknowledged | SnoozeError::Returned { .. }) => state
                        .occurrences
                        .get(&token.user, &token.occurrence)
                        .await
                        .map_err(ApiError::from)
                        .and_then(|r| r.ok_or(ApiError::NotFound)),
                    Err(SnoozeError::NotFound) => Err(ApiError::NotFound),
                    Err(SnoozeError::Store(e)) => Err(e.into()),
                    Err(e @ (SnoozeError::NotAhead { .. } | SnoozeError::TooFar { .. })) => {
                        Err(ApiError::Internal(Box::new(e)))
                    }
                }
            }
        };
        match done {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        }
    };
    if json {
        let body = serde_json::json!({
            "key": record.key.to_string(),
            "state": crate::occurrences::state_name(record.state(now)),
            "snoozedUntil": record.snoozed_until.map(|t| t.to_string()),
        });
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    let note = settled_note(&record, token.action, &zone)
        .unwrap_or_else(|| "Nothing changed: this reminder is no longer open.".to_owned());
    page(StatusCode::OK, &name, &note, None)
}

/// Why an action link does nothing.
enum Refusal {
    Token(TokenError),
    /// The occurrence or its task is gone.
    Gone,
    Failed(ApiError),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Token(TokenError::Invalid) => StatusCode::BAD_REQUEST,
            Refusal::Token(TokenError::Expired) => StatusCode::GONE,
            Refusal::Gone => StatusCode::NOT_FOUND,
            Refusal::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> String {
        match self {
            Refusal::Token(TokenError::Invalid) => {
                "This link is not one Chime made. Open Chime to see your reminders.".to_owned()
            }
            Refusal::Token(TokenError::Expired) => {
                "This link has expired. Open Chime to see your reminders.".to_owned()
            }
            Refusal::Gone => "This reminder no longer exists.".to_owned(),
            Refusal::Failed(_) => "Chime could not do this just now; try again.".to_owned(),
        }
    }

    fn page(self) -> Response {
        if let Refusal::Failed(e) = self {
            return e.into_response();
        }
        page(
            self.status(),
            "This link does not work",
            &self.detail(),
            None,
        )
    }

    fn json(self) -> Response {
        if let Refusal::Failed(e) = self {
            return e.into_response();
        }
        let status = self.status();
        let detail = self.detail();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::json!({"type": "about:blank", "title": detail, "status": status.as_u16(), "detail": detail})
                .to_string(),
        )
            .into_response()
    }
}

fn verify(state: &AppState, token: &str) -> Result<ActionToken, Refusal> {
    state
        .action_keys
        .verify(token, state.occurrences.now())
        .map_err(Refusal::Token)
}

/// The occurrence, its task's name and the zone its times are shown in (the user's profile
/// zone, else the task's), as the token's user's.
async fn lookup(
    state: &AppState,
    token: &ActionToken,
) -> Result<(OccurrenceRecord, String, Zone), Refusal> {
    let record = state
        .occurrences
        .get(&token.user, &token.occurrence)
        .await
        .map_err(|e| Refusal::Failed(e.into()))?
        .ok_or(Refusal::Gone)?;
    match state
        .definition
        .get(&token.user, token.occurrence.task_id)
        .await
    {
        Ok(view) => {
            let profile = state
                .recipients
                .profile(&token.user)
                .await
                .map_err(|e| Refusal::Failed(e.into()))?;
            let zone = match profile.time_zone {
                Some(zone) => (zone.time_zone(), zone.as_str().to_owned()),
                None => {
                    let task = &view.spec.schedule.zone;
                    (task.time_zone().clone(), task.name().to_owned())
                }
            };
            Ok((record, view.spec.name.as_str().to_owned(), zone))
        }
        Err(DefinitionError::NotFound) => Err(Refusal::Gone),
        Err(e) => Err(Refusal::Failed(e.into())),
    }
}

/// What to say when the action has nothing left to do: done already, or (for a snooze)
/// snoozed already.
fn settled_note(record: &OccurrenceRecord, action: Action, zone: &Zone) -> Option<String> {
    if let Some((at, _)) = record.acknowledged {
        return Some(format!("Done: marked at {}.", short(at, zone)));
    }
    match (action, record.snoozed_until) {
        (Action::Snooze { .. }, Some(until)) => {
            Some(format!("Snoozed: it comes back at {}.", short(until, zone)))
        }
        _ => None,
    }
}

/// A time zone and its name, as people read it.
type Zone = (jiff::tz::TimeZone, String);

/// `2026-12-05 09:30, Europe/Berlin`.
fn short(at: jiff::Timestamp, (tz, name): &Zone) -> String {
    format!(
        "{}, {name}",
        at.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M")
    )
}

/// A small page that works under the server's CSP (no script, no inline style): the task's
/// name, a sentence, and a button that posts back to the same address when there is an action.
fn page(status: StatusCode, name: &str, text: &str, button: Option<&str>) -> Response {
    let form = button.map_or(String::new(), |label| {
        format!(
            "<form method=\"post\"><button type=\"submit\">{}</button></form>\n",
            escape(label)
        )
    });
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"robots\" content=\"noindex\"><title>{name} · Chime</title>\
         <link rel=\"stylesheet\" href=\"{STYLE_PATH}\"></head>\n\
         <body><main><p class=\"brand\">Chime reminder</p><h1>{name}</h1>\n<p>{text}</p>\n\
         {form}<p><a href=\"/inbox\">Open Chime</a></p></main></body></html>\n",
        name = escape(name),
        text = escape(text),
    );
    let mut response = (status, Html(html)).into_response();
    // The page is about one person's reminder: keep it out of shared caches.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
