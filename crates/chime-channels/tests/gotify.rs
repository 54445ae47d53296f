//! The Gotify adapter against a local server on `127.0.0.1:0` that checks each request as
//! Gotify would read it (`POST /message` with `X-Gotify-Key`) and answers as Gotify does: the
//! stored message on success, `{"error","errorCode","errorDescription"}` on failure.
//!
//! The server is on loopback, so the channel's allow list names `127.0.0.1`, as an operator's
//! would for a Gotify on the LAN; nothing relies on the global `allow_private`.

mod support;

use std::time::Duration;

use chime_channels::destination::gotify::GotifyChannel;
use chime_channels::destination::{adapter, Settings};
use chime_channels::{local_due_time, ChannelAdapter, Reminder, SendError, Sent};
use chime_core::event::Channel;
use chime_testenv::receiver::{Receiver, Reply};
use serde_json::json;
use support::{assert_refused_as_loopback, body, permanent, transient, DUE, PUBLIC_URL};

const TOKEN: &str = "AbCdEfGh.IjKl-M";

fn settings(allow: &[&str], public: bool) -> Settings {
    support::settings(
        Channel::Gotify,
        support::config(None, allow),
        public.then_some(PUBLIC_URL),
    )
}

fn channel() -> GotifyChannel {
    GotifyChannel::new(settings(&["127.0.0.1"], true))
}

/// `gotify://127.0.0.1:PORT{rest}`.
fn gotify_url(server: &Receiver, rest: &str) -> String {
    server.base().replace("http://", "gotify://") + rest
}

/// A reminder whose description is Markdown, as Gotify shows it.
fn reminder(url: &str) -> Reminder {
    Reminder {
        task: support::task("Water the plants", "The *ferns* too"),
        ..support::reminder(Channel::Gotify, url, DUE)
    }
}

/// Gotify's answer to a posted message: the message as stored.
fn stored(id: u64) -> Reply {
    Reply::status(200).json(
        json!({"id": id, "appid": 5, "message": "…", "title": "Water the plants", "priority": 8,
               "date": "2026-12-07T09:00:00.5045044+01:00"})
        .to_string(),
    )
}

/// Gotify's error body.
fn gotify_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::status(status).json(
        json!({"error": error, "errorCode": status, "errorDescription": description}).to_string(),
    )
}

async fn send_with(reply: Reply) -> Result<Sent, SendError> {
    let server = Receiver::start(reply).await;
    let result = channel()
        .send(&reminder(&gotify_url(&server, &format!("/{TOKEN}"))))
        .await;
    assert_eq!(server.count(), 1);
    result
}

#[tokio::test]
async fn posts_a_markdown_message_under_the_servers_path_with_the_token_in_a_header() {
    let server = Receiver::start(stored(25)).await;
    let url = gotify_url(&server, &format!("/gotify/{TOKEN}?priority=high"));
    let message = reminder(&url);

    let sent = channel().send(&message).await.expect("sent");

    assert_eq!(
        sent,
        Sent {
            provider_id: Some("25".to_owned())
        }
    );
    let request = server.nth(1).await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.to_string(), "/gotify/message");
    assert_eq!(request.header("x-gotify-key"), Some(TOKEN));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        body(&request),
        json!({
            "title": "Water the plants",
            "message": format!("The *ferns* too\n\nDue {}", local_due_time(&message)),
            "priority": 8,
            "extras": {
                "client::display": {"contentType": "text/markdown"},
                "client::notification": {"click": {
                    "url": format!("{PUBLIC_URL}/tasks/{}", message.occurrence.task_id),
                }},
            },
        })
    );
}

#[tokio::test]
async fn without_a_priority_or_a_public_address_the_apps_default_and_no_link_are_used() {
    let server = Receiver::start(stored(1)).await;
    let gotify = GotifyChannel::new(settings(&["127.0.0.1"], false));

    gotify
        .send(&reminder(&gotify_url(&server, &format!("/{TOKEN}/"))))
        .await
        .expect("sent");

    let request = server.nth(1).await;
    assert_eq!(request.path(), "/message");
    let body = body(&request);
    assert!(body.get("priority").is_none(), "{body}");
    assert_eq!(
        body["extras"],
        json!({"client::display": {"contentType": "text/markdown"}})
    );
}

#[tokio::test]
async fn a_401_is_permanent_and_says_the_server_refused_the_token() {
    let result = send_with(gotify_error(
        401,
        "Unauthorized",
        "you need to provide a valid access token or user credentials to access this api",
    ))
    .await;

    let reason = permanent(result);
    assert!(
        reason.starts_with("the Gotify server refused the application token"),
        "{reason}"
    );
    assert!(reason.contains("provide a valid access token"), "{reason}");
}

#[tokio::test]
async fn a_429_is_transient_with_the_retry_after_given() {
    let result =
        send_with(gotify_error(429, "Too Many Requests", "slow down").header("retry-after", "7"))
            .await;

    let (reason, retry_after) = transient(result);
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
    assert!(reason.contains("slow down"), "{reason}");
}

#[tokio::test]
async fn a_5xx_is_transient_and_other_4xx_permanent() {
    let result = send_with(gotify_error(
        500,
        "Internal Server Error",
        "database locked",
    ))
    .await;
    assert!(
        matches!(&result, Err(SendError::Transient { reason, .. }) if reason.contains("database locked")),
        "{result:?}"
    );
    let result = send_with(gotify_error(
        400,
        "Bad Request",
        "Field 'message' is required",
    ))
    .await;
    assert!(
        matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("400")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_private_server_not_on_the_allow_list_is_refused_before_any_request() {
    let server = Receiver::start(stored(1)).await;
    let gotify = GotifyChannel::new(settings(&[], true));

    let result = gotify
        .send(&reminder(&gotify_url(&server, &format!("/{TOKEN}"))))
        .await;

    assert_refused_as_loopback(result, Channel::Gotify);
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn a_failing_answers_reason_holds_no_token_even_when_the_server_echoes_it() {
    let server = Receiver::answering(|request, _| {
        let key = request.header("x-gotify-key").unwrap_or_default();
        gotify_error(403, "Forbidden", &format!("token {key} may not post"))
    })
    .await;

    let result = channel()
        .send(&reminder(&gotify_url(&server, &format!("/{TOKEN}"))))
        .await;

    let reason = permanent(result);
    assert!(reason.contains("token … may not post"), "{reason}");
    assert!(!reason.contains(TOKEN), "{reason}");
}

#[tokio::test]
async fn the_gotify_channels_adapter_is_the_gotify_adapter() {
    let gotify = adapter(settings(&[], false));

    assert_eq!(gotify.kind(), Channel::Gotify);
    assert_eq!(gotify.timeout(), Duration::from_secs(10));
}
