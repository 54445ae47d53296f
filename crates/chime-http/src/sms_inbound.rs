//! `POST /sms/inbound`: replies to reminder SMS, in the shape Twilio posts them (a form with
//! `From`, `To`, `Body`, … and an `X-Twilio-Signature` header), answered with TwiML.
//!
//! A request whose signature is not the provider's (HMAC-SHA1 with the account's auth token
//! over `channels.sms.inbound_url` and the sorted form) is a 401 and changes nothing. A
//! genuine reply acts on the occurrence of the latest SMS Chime sent to the sender's number:
//! `DONE` (or `D`, `OK`, `YES`) acknowledges it, `SNOOZE 30` (or `S 30`, or just `30`)
//! snoozes it that many minutes (`SNOOZE` alone: 10). Anything else gets a short help text.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chime_core::event::{Channel, OccurrenceKey};
use chime_core::html::escape;
use chime_core::UserId;
use chime_roles::occurrence::SnoozeError;
use jiff::SignedDuration;

use crate::AppState;

/// What replies need: the provider's secret and the URL it signs.
#[derive(Clone)]
pub struct SmsInbound {
    pub auth_token: String,
    /// `channels.sms.inbound_url`, exactly as configured at the provider.
    pub url: String,
}

impl std::fmt::Debug for SmsInbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsInbound")
            .field("auth_token", &"<redacted>")
            .field("url", &self.url)
            .finish()
    }
}

/// Snooze minutes when a reply says `SNOOZE` without a number.
const DEFAULT_SNOOZE_MINUTES: i64 = 10;
/// The most a reply may snooze: a day.
const MAX_REPLY_SNOOZE_MINUTES: i64 = 24 * 60;

const HELP: &str = "Reply DONE when it is done, or SNOOZE and minutes (SNOOZE 30).";

/// What a reply asks for.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Done,
    Snooze(i64),
    Unknown,
}

fn parse_reply(body: &str) -> Reply {
    let words: Vec<String> = body
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| matches!(c, '.' | ',' | '!' | '?' | ';' | ':'))
                .to_uppercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let minutes = |w: &str| {
        w.parse::<i64>()
            .ok()
            .filter(|m| (1..=MAX_REPLY_SNOOZE_MINUTES).contains(m))
    };
    match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["DONE" | "D" | "OK" | "YES" | "Y"] => Reply::Done,
        ["SNOOZE" | "S"] => Reply::Snooze(DEFAULT_SNOOZE_MINUTES),
        ["SNOOZE" | "S", n] | [n] => minutes(n).map_or(Reply::Unknown, Reply::Snooze),
        ["SNOOZE" | "S", n, "MIN" | "MINS" | "MINUTES" | "M"] => {
            minutes(n).map_or(Reply::Unknown, Reply::Snooze)
        }
        _ => Reply::Unknown,
    }
}

pub async fn inbound(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(config) = &state.sms_inbound else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !chime_channels::sms::verify_request_signature(
        &config.auth_token,
        &config.url,
        &params,
        signature,
    ) {
        return (
            StatusCode::UNAUTHORIZED,
            "the request signature is not the SMS provider's",
        )
            .into_response();
    }
    let field = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (from, text) = (field("From"), field("Body"));
    let target = state
        .occurrences
        .reply_target(&state.action_keys.sms_number(&from))
        .await;
    let (user, key) = match target {
        Ok(Some(target)) => target,
        Ok(None) => return twiml("There is no recent reminder to this number to answer."),
        Err(e) => return crate::ApiError::from(e).into_response(),
    };
    match parse_reply(&text) {
        Reply::Done => answer(&state, &user, &key, None, Channel::Sms).await,
        Reply::Snooze(minutes) => answer(&state, &user, &key, Some(minutes), Channel::Sms).await,
        Reply::Unknown => Ok(HELP.to_owned()),
    }
    .map_or_else(IntoResponse::into_response, |text| twiml(&text))
}

/// Acknowledges `user`'s occurrence `key` (`snooze` `None`), or snoozes it that many minutes,
/// from a message on `channel` (an SMS reply, a chat button), and says what happened in a
/// short sentence for that chat.
pub(crate) async fn answer(
    state: &AppState,
    user: &UserId,
    key: &OccurrenceKey,
    snooze: Option<i64>,
    channel: Channel,
) -> Result<String, crate::ApiError> {
    let name = match state.definition.get(user, key.task_id).await {
        Ok(view) => view.spec.name.as_str().to_owned(),
        Err(_) => return Ok("That reminder no longer exists.".to_owned()),
    };
    let Some(minutes) = snooze else {
        return match state.occurrences.acknowledge(user, key, channel).await {
            Ok(Some(_)) => Ok(format!("Done: {name}.")),
            Ok(None) => Ok("That reminder no longer exists.".to_owned()),
            Err(e) => Err(e.into()),
        };
    };
    let until = state.occurrences.now() + SignedDuration::from_mins(minutes);
    match state.occurrences.snooze(user, key, until).await {
        Ok(_) => Ok(format!("Snoozed {minutes} min: {name}.")),
        Err(SnoozeError::Acknowledged) => Ok(format!("{name} is already done.")),
        Err(SnoozeError::Returned { .. }) => Ok(format!("{name} was snoozed already and is back.")),
        Err(SnoozeError::NotFound) => Ok("That reminder no longer exists.".to_owned()),
        Err(SnoozeError::Store(e)) => Err(e.into()),
        Err(e @ (SnoozeError::NotAhead { .. } | SnoozeError::TooFar { .. })) => {
            Err(crate::ApiError::Internal(Box::new(e)))
        }
    }
}

/// A TwiML answer that texts `message` back.
fn twiml(message: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            escape(message)
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_read_as_people_write_it() {
        for done in ["DONE", "done", " Done. ", "d", "ok", "Yes!"] {
            assert_eq!(parse_reply(done), Reply::Done, "{done}");
        }
        assert_eq!(parse_reply("snooze"), Reply::Snooze(10));
        assert_eq!(parse_reply("SNOOZE 30"), Reply::Snooze(30));
        assert_eq!(parse_reply("s 5"), Reply::Snooze(5));
        assert_eq!(parse_reply("45"), Reply::Snooze(45));
        assert_eq!(parse_reply("Snooze 15 min"), Reply::Snooze(15));
        assert_eq!(parse_reply("snooze 1440"), Reply::Snooze(1440));
        for unknown in [
            "",
            "snooze 0",
            "snooze 1441",
            "snooze -5",
            "maybe later",
            "done soon",
        ] {
            assert_eq!(parse_reply(unknown), Reply::Unknown, "{unknown}");
        }
    }
}
