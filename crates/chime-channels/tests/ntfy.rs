//! The ntfy adapter against a local server on `127.0.0.1:0` that checks each request as ntfy
//! would read it (JSON publishing at `/`) and answers as ntfy does: the published message on
//! success, `{"code","http","error","link"}` on failure.
//!
//! The server is on loopback, so the channel's allow list names `127.0.0.1`, as an operator's
//! would for a self-hosted ntfy on the LAN; nothing relies on the global `allow_private`.

mod support;

use std::time::Duration;

use base64::Engine;
use chime_channels::destination::ntfy::NtfyChannel;
use chime_channels::destination::{adapter, DestinationUrl, Settings};
use chime_channels::{local_due_time, ChannelAdapter, Recipient, Reminder, SendError, Sent};
use chime_core::event::Channel;
use chime_testenv::receiver::{Receiver, Reply};
use serde_json::{json, Value};
use support::{
    assert_hides, assert_refused_as_loopback, body, permanent, retry, transient, PUBLIC_URL,
};

const TOKEN: &str = "tk_7eevizlsiwf9yi4uxsrs83r4352o0";

fn settings(server: &Receiver, allow: &[&str], public: bool) -> Settings {
    support::settings(
        Channel::Ntfy,
        support::config(Some(server), allow),
        public.then_some(PUBLIC_URL),
    )
}

fn channel(server: &Receiver) -> NtfyChannel {
    NtfyChannel::new(settings(server, &["127.0.0.1"], true))
}

fn reminder(url: &str, due: &str) -> Reminder {
    support::reminder(Channel::Ntfy, url, due)
}

/// ntfy's answer to a publish: the message as stored.
fn published(id: &str) -> Reply {
    Reply::status(200).json(
        json!({"id": id, "time": 1_765_094_400, "expires": 1_765_137_600, "event": "message",
               "topic": "reminders", "message": "…"})
        .to_string(),
    )
}

/// ntfy's error body.
fn ntfy_error(status: u16, code: u32, error: &str) -> Reply {
    Reply::status(status).json(
        json!({"code": code, "http": status, "error": error,
               "link": "https://ntfy.sh/docs/publish/#limitations"})
        .to_string(),
    )
}

fn server_url(server: &Receiver, userinfo: &str, rest: &str) -> String {
    server
        .base()
        .replace("http://", &format!("ntfy://{userinfo}"))
        + rest
}

#[tokio::test]
async fn publishes_json_at_the_server_root_with_a_bearer_token_and_action_buttons() {
    let server = Receiver::start(published("hwQ2YpKdmg")).await;
    let url = server_url(
        &server,
        &format!("{TOKEN}@"),
        "/reminders?priority=high&tags=alarm_clock,chime",
    );
    let message = reminder(&url, "2026-12-07T08:00:00Z");

    let sent = channel(&server).send(&message).await.expect("sent");

    assert_eq!(
        sent,
        Sent {
            provider_id: Some("hwQ2YpKdmg".to_owned())
        }
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.to_string(), "/");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = body(request);
    assert_eq!(body["topic"], "reminders");
    assert_eq!(body["title"], "Water the plants");
    assert_eq!(
        body["message"],
        format!("The ferns too\n\nDue {}", local_due_time(&message))
    );
    assert_eq!(body["priority"], 4);
    assert_eq!(body["tags"], json!(["alarm_clock", "chime"]));
    assert_eq!(
        body["click"],
        format!("{PUBLIC_URL}/tasks/{}", message.occurrence.task_id)
    );
    let accept = json!({"Accept": "application/json"});
    assert_eq!(
        body["actions"],
        json!([
            {"action": "http", "label": "Done", "url": format!("{PUBLIC_URL}/act/act-done-token"),
             "method": "POST", "headers": accept, "clear": true},
            {"action": "http", "label": "Snooze 1 hour",
             "url": format!("{PUBLIC_URL}/act/act-snooze-token"),
             "method": "POST", "headers": accept, "clear": true},
        ])
    );
    let sequence_id = body["sequence_id"].as_str().expect("a sequence id");
    assert!(
        (1..=64).contains(&sequence_id.len())
            && sequence_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{sequence_id} is not a sequence id ntfy accepts"
    );
}

#[tokio::test]
async fn a_user_and_password_go_in_a_basic_authorization_header() {
    let server = Receiver::start(published("m1")).await;
    let url = server_url(&server, "alice:p%40ss%3Aword@", "/reminders");

    channel(&server)
        .send(&reminder(&url, "2026-12-07T08:00:00Z"))
        .await
        .expect("sent");

    let request = server.nth(1).await;
    let expected = base64::engine::general_purpose::STANDARD.encode("alice:p@ss:word");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
}

#[tokio::test]
async fn a_bare_topic_goes_to_the_channels_server_and_without_a_public_address_has_no_buttons() {
    let server = Receiver::start(published("m1")).await;
    let ntfy = NtfyChannel::new(settings(&server, &["127.0.0.1"], false));
    let mut message = reminder("ntfy://reminders", "2026-12-07T08:00:00Z");
    message.late = true;

    ntfy.send(&message).await.expect("sent");

    let request = server.nth(1).await;
    assert_eq!(request.path(), "/");
    assert_eq!(request.header("authorization"), None);
    let body = body(&request);
    assert_eq!(body["topic"], "reminders");
    assert!(body["message"].as_str().expect("text").ends_with(" (late)"));
    for absent in ["actions", "click", "priority", "tags"] {
        assert!(body.get(absent).is_none(), "{absent}: {body}");
    }
}

#[tokio::test]
async fn every_attempt_of_a_delivery_carries_one_sequence_id_and_another_occurrence_another() {
    let server = Receiver::start(published("m1")).await;
    let url = server_url(&server, "", "/reminders");
    let first = reminder(&url, "2026-12-07T08:00:00Z");
    let retry = retry(&first);
    let next = reminder(&url, "2026-12-14T08:00:00Z");
    let ntfy = channel(&server);

    for message in [&first, &retry, &next] {
        ntfy.send(message).await.expect("sent");
    }

    let ids: Vec<Value> = server
        .requests()
        .iter()
        .map(|r| body(r)["sequence_id"].clone())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
}

#[tokio::test]
async fn a_429_is_transient_with_ntfys_error_text_and_the_retry_after_given() {
    let server = Receiver::start(
        ntfy_error(429, 42901, "limit reached: too many requests").header("retry-after", "30"),
    )
    .await;
    let url = server_url(&server, "", "/reminders");

    let result = channel(&server)
        .send(&reminder(&url, "2026-12-07T08:00:00Z"))
        .await;

    let (reason, retry_after) = transient(result);
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
    assert!(
        reason.contains("429") && reason.contains("limit reached: too many requests"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_401_is_permanent_and_says_the_server_refused_the_credentials() {
    let server = Receiver::start(ntfy_error(401, 40101, "unauthorized")).await;
    let url = server_url(&server, &format!("{TOKEN}@"), "/reminders");

    let result = channel(&server)
        .send(&reminder(&url, "2026-12-07T08:00:00Z"))
        .await;

    let reason = permanent(result);
    assert!(
        reason.starts_with("the ntfy server refused the credentials"),
        "{reason}"
    );
    assert!(reason.contains("401"), "{reason}");
}

#[tokio::test]
async fn a_5xx_is_transient() {
    let server = Receiver::start(ntfy_error(503, 50301, "service unavailable")).await;
    let url = server_url(&server, "", "/reminders");

    let result = channel(&server)
        .send(&reminder(&url, "2026-12-07T08:00:00Z"))
        .await;

    assert!(
        matches!(&result, Err(SendError::Transient { reason, .. }) if reason.contains("503")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_private_server_not_on_the_allow_list_is_refused_before_any_request() {
    let server = Receiver::start(published("m1")).await;
    let ntfy = NtfyChannel::new(settings(&server, &[], true));
    let url = server_url(&server, &format!("{TOKEN}@"), "/reminders");

    let result = ntfy.send(&reminder(&url, "2026-12-07T08:00:00Z")).await;

    assert_refused_as_loopback(result, Channel::Ntfy);
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn a_failing_answers_reason_holds_no_credential_even_when_the_server_echoes_it() {
    // Echoes the header, and the secret it carries as the destination's URL wrote it.
    let server = Receiver::answering(|request, _| {
        let header = request.header("authorization").unwrap_or_default();
        let plain = if header.starts_with("Basic ") {
            "hunter22"
        } else {
            TOKEN
        };
        ntfy_error(400, 40000, &format!("bad header {header:?} with {plain}"))
    })
    .await;

    for userinfo in [format!("{TOKEN}@"), "alice:hunter22@".to_owned()] {
        let url = server_url(&server, &userinfo, "/reminders");
        let result = channel(&server)
            .send(&reminder(&url, "2026-12-07T08:00:00Z"))
            .await;
        let reason = permanent(result);
        assert!(reason.contains("400 Bad Request: \"bad header"), "{reason}");
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:hunter22");
        assert_hides(&reason, &[TOKEN, "hunter22", &basic]);
    }
}

#[tokio::test]
async fn a_recipient_that_is_not_a_destination_is_refused_permanently() {
    let server = Receiver::start(published("m1")).await;
    let mut message = reminder("ntfy://reminders", "2026-12-07T08:00:00Z");
    message.recipient = Recipient::Email {
        address: "a@example.com".to_owned(),
    };

    let result = channel(&server).send(&message).await;

    assert!(
        matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("not a destination")),
        "{result:?}"
    );
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn check_accepts_a_server_on_the_allow_list_and_explains_a_refused_one() {
    let server = Receiver::start(published("m1")).await;
    let url = DestinationUrl::parse(&server_url(&server, &format!("{TOKEN}@"), "/reminders"))
        .expect("url");

    url.check(&settings(&server, &["127.0.0.1"], true))
        .await
        .expect("allowed");
    let refused = url
        .check(&settings(&server, &[], true))
        .await
        .expect_err("refused");
    assert!(refused.contains("a loopback address"), "{refused}");
    assert!(!refused.contains(TOKEN), "{refused}");
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn the_ntfy_channels_adapter_is_the_ntfy_adapter_with_the_channels_timeout() {
    let server = Receiver::start(published("m1")).await;
    let ntfy = adapter(settings(&server, &["127.0.0.1"], true));

    assert_eq!(ntfy.kind(), Channel::Ntfy);
    assert_eq!(ntfy.timeout(), Duration::from_secs(10));
    ntfy.send(&reminder("ntfy://reminders", "2026-12-07T08:00:00Z"))
        .await
        .expect("sent");
    assert_eq!(server.count(), 1);
}
