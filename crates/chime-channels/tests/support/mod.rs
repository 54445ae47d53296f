//! What the tests of the six destination adapters (ntfy, Gotify, Telegram, Slack, Discord,
//! Matrix) build alike: a channel's settings pointing at a local server, the reminder they
//! send, and the checks on a failed attempt (its kind, its reason, the secrets that reason must
//! not hold).
//!
//! Each test binary includes it with `mod support;` (a folder, so Cargo does not build it as a
//! test of its own); what varies per service stays in that service's test file.

// Every test binary compiles this module whole and uses only part of it.
#![allow(dead_code)]

use std::fmt::Debug;
use std::time::Duration;

use chime_channels::destination::{DestinationConfig, Settings};
use chime_channels::{ChannelAdapter, Recipient, Reminder, ReminderAction, SendError};
use chime_core::event::{Channel, OccurrenceKey};
use chime_core::{TaskId, TaskSpec, UserId};
use chime_testenv::receiver::{Receiver, Request};
use serde_json::{json, Value};

/// Chime's public address, where action links and task links point.
pub const PUBLIC_URL: &str = "https://chime.example.com";

/// When the reminder of [`reminder`] is due, unless a test needs another occurrence.
pub const DUE: &str = "2026-12-07T08:00:00Z";

/// A channel's configuration: its API at `api` (the URL's own host when `None`) and `allow`
/// on its allow list. The servers are on loopback, so a channel that should reach them names
/// `127.0.0.1`, as an operator would for a self-hosted server on the LAN; nothing relies on
/// the global `allow_private`.
pub fn config(api: Option<&Receiver>, allow: &[&str]) -> DestinationConfig {
    DestinationConfig {
        api_url: api.map(|server| server.base().to_owned()),
        allow: allow.iter().map(|a| (*a).to_owned()).collect(),
        ..DestinationConfig::default()
    }
}

/// `channel`'s settings from `config`, with Chime at `public_url` (no action or task links
/// when `None`).
pub fn settings(channel: Channel, config: DestinationConfig, public_url: Option<&str>) -> Settings {
    let public_url = public_url.map(|u| url::Url::parse(u).expect("public url"));
    Settings::new(channel, &config, false, public_url).expect("settings")
}

/// A task with Europe/Berlin as its zone.
pub fn task(name: &str, description: &str) -> TaskSpec {
    TaskSpec::parse(&json!({
        "name": name,
        "description": description,
        "startDate": "2026-12-07T08:00:00Z",
        "timeZone": "Europe/Berlin",
    }))
    .expect("task")
}

/// A first attempt at "Water the plants" (due at `due`, on time) for the destination `dst_1`
/// at `url` on `channel`, with two actions, each with a short form for services whose buttons
/// call back (Telegram): Done and Snooze 1 hour.
pub fn reminder(channel: Channel, url: &str, due: &str) -> Reminder {
    let occurrence = OccurrenceKey {
        task_id: TaskId::new(),
        due_at: due.parse().expect("timestamp"),
    };
    Reminder {
        idempotency_key: format!("{occurrence}/{}/dst_1", channel.as_str()),
        occurrence,
        user_id: UserId::parse("alice").expect("user"),
        task: task("Water the plants", "The ferns too"),
        late: false,
        attempt: 1,
        recipient: Recipient::Destination {
            id: "dst_1".to_owned(),
            url: url.to_owned(),
        },
        actions: vec![
            action("done", "Done", "act-done-token", Some("d.Zm9vYmFy")),
            action(
                "snooze",
                "Snooze 1 hour",
                "act-snooze-token",
                Some("s.YmF6cXV4"),
            ),
        ],
    }
}

/// One action of a reminder; `callback` is its short form, if it has one.
pub fn action(
    kind: &'static str,
    label: &str,
    token: &str,
    callback: Option<&str>,
) -> ReminderAction {
    ReminderAction {
        kind,
        label: label.to_owned(),
        token: token.to_owned(),
        callback: callback.map(str::to_owned),
    }
}

/// The same delivery, attempted again.
pub fn retry(message: &Reminder) -> Reminder {
    Reminder {
        attempt: message.attempt + 1,
        ..message.clone()
    }
}

/// A request's JSON body.
pub fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

/// The reason of a permanent failure; panics on any other result.
pub fn permanent<T: Debug>(result: Result<T, SendError>) -> String {
    match result {
        Err(SendError::Permanent { reason }) => reason,
        other => panic!("expected Permanent, got {other:?}"),
    }
}

/// The reason and the delay of a transient failure; panics on any other result.
pub fn transient<T: Debug>(result: Result<T, SendError>) -> (String, Option<Duration>) {
    match result {
        Err(SendError::Transient {
            reason,
            retry_after,
        }) => (reason, retry_after),
        other => panic!("expected Transient, got {other:?}"),
    }
}

/// Fails if `reason` holds any of `secrets`.
pub fn assert_hides(reason: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!reason.contains(secret), "{reason}");
    }
}

/// Checks that `result` is the refusal of a loopback server that is not on `channel`'s allow
/// list, and that the refusal names the setting that would admit it.
pub fn assert_refused_as_loopback<T: Debug>(result: Result<T, SendError>, channel: Channel) {
    let reason = permanent(result);
    assert!(
        reason.starts_with("refusing to deliver to 127.0.0.1, a loopback address"),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("`channels.{}.allow`", channel.as_str())),
        "{reason}"
    );
}

/// Checks that `adapter` refuses each of `messages` permanently and that `server` saw no
/// request for any of them.
pub async fn assert_refused_without_a_request(
    adapter: &dyn ChannelAdapter,
    messages: &[Reminder],
    server: &Receiver,
) {
    for message in messages {
        let result = adapter.send(message).await;
        assert!(
            matches!(result, Err(SendError::Permanent { .. })),
            "{result:?}"
        );
    }
    assert_eq!(server.count(), 0);
}
