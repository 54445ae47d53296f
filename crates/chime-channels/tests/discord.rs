//! The Discord adapter against a stand-in for `discord.com` on `127.0.0.1:0`
//! (`channels.discord.api_url` points there, and the allow list admits loopback): it checks
//! each request and answers as Discord documents for Execute Webhook: the message with
//! `wait=true`, `{"message", "retry_after", "global"}` for a rate limit, `{"code",
//! "message"}` for an error.

mod support;

use std::time::Duration;

use axum::http::Method;
use chime_channels::destination::discord::DiscordChannel;
use chime_channels::{local_due_time, ChannelAdapter, Recipient, Reminder, SendError, Sent};
use chime_core::event::Channel;
use chime_testenv::receiver::{Receiver, Reply};
use serde_json::json;
use support::{assert_hides, assert_refused_without_a_request, body, permanent, transient, DUE};

const ID: &str = "417429632418316298";
const TOKEN: &str = "JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o33MyqU344Qpgv7YTpadV_js";

fn url() -> String {
    format!("discord://{ID}/{TOKEN}")
}

fn channel(receiver: &Receiver, public_url: Option<&str>) -> DiscordChannel {
    DiscordChannel::new(support::settings(
        Channel::Discord,
        support::config(Some(receiver), &["127.0.0.1"]),
        public_url,
    ))
}

fn message(url: &str, name: &str, late: bool) -> Reminder {
    Reminder {
        task: support::task(name, "The ferns too"),
        late,
        ..support::reminder(Channel::Discord, url, DUE)
    }
}

/// What Discord answers with `wait=true`: the message it created (abridged).
fn created() -> Reply {
    Reply::status(200).json(
        json!({
            "id": "1311111111111111111",
            "type": 0,
            "channel_id": "1200000000000000000",
            "webhook_id": ID,
            "content": "Reminder: Water the plants",
        })
        .to_string(),
    )
}

async fn send_with_reply(reply: Reply) -> Result<Sent, SendError> {
    let receiver = Receiver::start(reply).await;
    channel(&receiver, None)
        .send(&message(&url(), "Water the plants", false))
        .await
}

#[tokio::test]
async fn posts_the_reminder_as_an_embed_and_answers_the_message_id() {
    let receiver = Receiver::start(created()).await;
    let msg = message(
        &format!("discord://Chime@{ID}/{TOKEN}"),
        "Water the plants",
        false,
    );

    let sent = channel(&receiver, None).send(&msg).await.expect("sent");

    assert_eq!(sent.provider_id.as_deref(), Some("1311111111111111111"));
    let req = receiver.nth(1).await;
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path(), format!("/api/webhooks/{ID}/{TOKEN}"));
    assert_eq!(req.uri.query(), Some("wait=true"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body = body(&req);
    assert_eq!(body["content"], "Reminder: Water the plants");
    assert_eq!(body["username"], "Chime");
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    let embeds = body["embeds"].as_array().expect("embeds");
    assert_eq!(embeds.len(), 1);
    let embed = &embeds[0];
    assert_eq!(embed["title"], "Water the plants");
    assert_eq!(embed["description"], "The ferns too");
    assert_eq!(embed["timestamp"], "2026-12-07T08:00:00Z");
    assert_eq!(
        embed["footer"]["text"],
        format!("Due {}", local_due_time(&msg))
    );
}

#[tokio::test]
async fn a_late_reminder_says_so_and_a_thread_is_a_query_parameter() {
    let receiver = Receiver::start(created()).await;
    let msg = message(&format!("{}?thread=1234", url()), "Water the plants", true);
    channel(&receiver, None).send(&msg).await.expect("sent");
    let req = receiver.nth(1).await;
    assert_eq!(req.uri.query(), Some("wait=true&thread_id=1234"));
    let body = body(&req);
    assert_eq!(body["content"], "Late reminder: Water the plants");
    let description = body["embeds"][0]["description"].as_str().expect("text");
    assert!(description.starts_with("**Late**"), "{description}");
    assert!(description.ends_with("The ferns too"), "{description}");
}

#[tokio::test]
async fn actions_are_links_to_chimes_confirmation_page_when_it_has_a_public_address() {
    let receiver = Receiver::start(created()).await;
    let msg = message(&url(), "Water the plants", false);
    channel(&receiver, Some("https://chime.example.com"))
        .send(&msg)
        .await
        .expect("sent");
    let body = body(&receiver.nth(1).await);
    assert_eq!(
        body["embeds"][0]["description"],
        "The ferns too\n\n[Done](https://chime.example.com/act/act-done-token) · \
         [Snooze 1 hour](https://chime.example.com/act/act-snooze-token)"
    );
}

#[tokio::test]
async fn task_text_cannot_ping_everyone() {
    let receiver = Receiver::start(created()).await;
    channel(&receiver, None)
        .send(&message(&url(), "@everyone look", false))
        .await
        .expect("sent");
    let body = body(&receiver.nth(1).await);
    assert_eq!(body["content"], r"Reminder: \@everyone look");
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
}

#[tokio::test]
async fn a_rate_limit_is_transient_with_discords_retry_after_in_seconds() {
    let result = send_with_reply(Reply::status(429).header("retry-after", "2").json(
        r#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#,
    ))
    .await;
    let (reason, retry_after) = transient(result);
    assert_eq!(retry_after, Some(Duration::from_millis(1500)));
    assert!(reason.contains("You are being rate limited."), "{reason}");
}

#[tokio::test]
async fn a_rate_limit_without_a_json_body_uses_the_retry_after_header() {
    let result = send_with_reply(Reply::status(429).header("retry-after", "7")).await;
    assert!(
        matches!(
            result,
            Err(SendError::Transient { retry_after: Some(d), .. }) if d == Duration::from_secs(7)
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn server_errors_are_transient() {
    for status in [500, 502] {
        let result = send_with_reply(Reply::status(status)).await;
        assert!(
            matches!(result, Err(SendError::Transient { .. })),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_webhook_is_permanent_and_says_it_was_deleted() {
    let result = send_with_reply(
        Reply::status(404).json(r#"{"message": "Unknown Webhook", "code": 10015}"#),
    )
    .await;
    let reason = permanent(result);
    assert!(reason.contains("Unknown Webhook (code 10015)"), "{reason}");
    assert!(reason.contains("deleted"), "{reason}");
}

#[tokio::test]
async fn a_wrong_token_and_a_refused_body_are_permanent() {
    for (status, body) in [
        (
            401,
            r#"{"message": "Invalid Webhook Token", "code": 50027}"#,
        ),
        (
            400,
            r#"{"message": "Invalid Form Body", "code": 50035, "errors": {}}"#,
        ),
    ] {
        let result = send_with_reply(Reply::status(status).json(body)).await;
        assert!(
            matches!(result, Err(SendError::Permanent { .. })),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_answer_that_echoes_the_token_does_not_put_it_in_the_reason() {
    let result = send_with_reply(
        Reply::status(401)
            .json(json!({"message": format!("bad token {TOKEN}"), "code": 50027}).to_string()),
    )
    .await;
    let reason = permanent(result);
    assert!(reason.contains("bad token"), "{reason}");
    assert_hides(&reason, &[&TOKEN[..12]]);
}

#[tokio::test]
async fn a_malformed_url_or_another_recipient_is_permanent_without_a_request() {
    let receiver = Receiver::start(created()).await;
    let malformed = message(&format!("discord://{ID}"), "x", false);
    let mut other = message(&url(), "x", false);
    other.recipient = Recipient::Sms {
        number: "+14075551212".into(),
    };

    assert_refused_without_a_request(&channel(&receiver, None), &[malformed, other], &receiver)
        .await;
}
