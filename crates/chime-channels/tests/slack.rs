//! The Slack adapter against a stand-in for `hooks.slack.com` on `127.0.0.1:0`
//! (`channels.slack.api_url` points there, and the allow list admits loopback): it checks each
//! request and answers as Slack documents for incoming webhooks, `200 ok` or an error as
//! plain text.

mod support;

use std::time::Duration;

use axum::http::Method;
use chime_channels::destination::slack::SlackChannel;
use chime_channels::{local_due_time, ChannelAdapter, Recipient, Reminder, SendError, Sent};
use chime_core::event::Channel;
use chime_testenv::receiver::{Receiver, Reply};
use serde_json::json;
use support::{assert_hides, assert_refused_without_a_request, body, permanent, transient, DUE};

const SECRET: &str = "xYz0123AbCdEfGhIjKlMnOpQ";

fn url() -> String {
    format!("slack://T0ABCDEF/B0GHIJKL/{SECRET}")
}

fn channel(receiver: &Receiver, public_url: Option<&str>) -> SlackChannel {
    SlackChannel::new(support::settings(
        Channel::Slack,
        support::config(Some(receiver), &["127.0.0.1"]),
        public_url,
    ))
}

fn message(url: &str, name: &str, late: bool) -> Reminder {
    Reminder {
        task: support::task(name, "The ferns too"),
        late,
        ..support::reminder(Channel::Slack, url, DUE)
    }
}

async fn send_with_reply(reply: Reply) -> Result<Sent, SendError> {
    let receiver = Receiver::start(reply).await;
    channel(&receiver, None)
        .send(&message(&url(), "Water the plants", false))
        .await
}

fn ok() -> Reply {
    Reply::status(200).body("ok")
}

#[tokio::test]
async fn posts_the_reminder_to_the_webhook_with_blocks_and_a_fallback_text() {
    let receiver = Receiver::start(ok()).await;
    let msg = message(
        &format!("slack://Chime%20Bot@T0ABCDEF/B0GHIJKL/{SECRET}"),
        "Water the plants",
        true,
    );

    let sent = channel(&receiver, None).send(&msg).await.expect("sent");

    assert_eq!(sent, Sent { provider_id: None });
    let req = receiver.nth(1).await;
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path(), format!("/services/T0ABCDEF/B0GHIJKL/{SECRET}"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body = body(&req);
    let due = local_due_time(&msg);
    assert_eq!(
        body["text"],
        format!("Late reminder: Water the plants, due {due}")
    );
    assert_eq!(body["username"], "Chime Bot");
    let blocks = body["blocks"].as_array().expect("blocks");
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0]["type"], "section");
    assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
    assert_eq!(
        blocks[0]["text"]["text"],
        format!("*Water the plants*\nThe ferns too\nDue {due}")
    );
    assert_eq!(blocks[1]["type"], "context");
    assert!(blocks[1]["elements"][0]["text"]
        .as_str()
        .expect("text")
        .starts_with("Late"));
}

#[tokio::test]
async fn a_reminder_on_time_has_no_late_note_and_no_username_without_a_bot_name() {
    let receiver = Receiver::start(ok()).await;
    channel(&receiver, None)
        .send(&message(&url(), "Water the plants", false))
        .await
        .expect("sent");
    let body = body(&receiver.nth(1).await);
    assert_eq!(body["blocks"].as_array().expect("blocks").len(), 1);
    assert!(body.get("username").is_none());
    assert!(body["text"]
        .as_str()
        .expect("text")
        .starts_with("Reminder: Water the plants"));
}

#[tokio::test]
async fn actions_are_link_buttons_to_chimes_confirmation_page_when_it_has_a_public_address() {
    let receiver = Receiver::start(ok()).await;
    let msg = message(&url(), "Water the plants", false);
    channel(&receiver, Some("https://chime.example.com/"))
        .send(&msg)
        .await
        .expect("sent");
    let body = body(&receiver.nth(1).await);
    let actions = &body["blocks"][1];
    assert_eq!(actions["type"], "actions");
    assert_eq!(
        actions["elements"],
        json!([
            {"type": "button", "action_id": "done",
             "text": {"type": "plain_text", "text": "Done"},
             "url": "https://chime.example.com/act/act-done-token"},
            {"type": "button", "action_id": "snooze",
             "text": {"type": "plain_text", "text": "Snooze 1 hour"},
             "url": "https://chime.example.com/act/act-snooze-token"},
        ])
    );
}

#[tokio::test]
async fn task_text_cannot_mention_the_channel_or_forge_a_link() {
    let receiver = Receiver::start(ok()).await;
    channel(&receiver, None)
        .send(&message(&url(), "<!channel> & <https://x.test|y>", false))
        .await
        .expect("sent");
    let body = body(&receiver.nth(1).await);
    let section = body["blocks"][0]["text"]["text"].as_str().expect("text");
    assert!(
        section.starts_with("*&lt;!channel&gt; &amp; &lt;https://x.test|y&gt;*"),
        "{section}"
    );
    assert!(!body["text"].as_str().expect("text").contains('<'));
}

#[tokio::test]
async fn a_rate_limited_post_is_transient_with_slacks_retry_after() {
    let result = send_with_reply(
        Reply::status(429)
            .header("retry-after", "30")
            .body("rate_limited"),
    )
    .await;
    let (reason, retry_after) = transient(result);
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
    assert!(reason.contains("429"), "{reason}");
}

#[tokio::test]
async fn server_errors_are_transient() {
    for status in [500, 503] {
        let result = send_with_reply(Reply::status(status).body("rollup_error")).await;
        assert!(
            matches!(result, Err(SendError::Transient { .. })),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn slacks_refusals_are_permanent_with_its_error_text() {
    for (status, text) in [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "no_service"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ] {
        let reason = permanent(send_with_reply(Reply::status(status).body(text)).await);
        assert!(reason.contains(text), "{status}: {reason}");
        assert!(reason.contains(&status.to_string()), "{reason}");
    }
}

#[tokio::test]
async fn a_failing_answer_that_echoes_the_secret_does_not_put_it_in_the_reason() {
    let result = send_with_reply(Reply::status(400).body(format!(
        "invalid_token for /services/T0ABCDEF/B0GHIJKL/{SECRET}"
    )))
    .await;
    let reason = permanent(result);
    assert!(reason.contains("invalid_token"), "{reason}");
    assert_hides(&reason, &[SECRET, &SECRET[..10]]);
}

#[tokio::test]
async fn a_malformed_url_or_another_recipient_is_permanent_without_a_request() {
    let receiver = Receiver::start(ok()).await;
    let malformed = message("slack://T0ABCDEF/B0GHIJKL", "x", false);
    let mut other = message(&url(), "x", false);
    other.recipient = Recipient::Email {
        address: "a@example.com".into(),
    };

    assert_refused_without_a_request(&channel(&receiver, None), &[malformed, other], &receiver)
        .await;
}

#[tokio::test]
async fn the_api_host_must_be_allowed_when_it_is_private() {
    let receiver = Receiver::start(ok()).await;
    let adapter = SlackChannel::new(support::settings(
        Channel::Slack,
        support::config(Some(&receiver), &[]),
        None,
    ));
    let result = adapter.send(&message(&url(), "x", false)).await;
    let reason = permanent(result);
    assert!(!reason.contains(SECRET), "{reason}");
    assert_eq!(receiver.count(), 0);
}
