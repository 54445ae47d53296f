//! The Slack adapter against a stand-in for `hooks.slack.com` on `127.0.0.1:0`
//! (`channels.slack.api_url` points there, and the allow list admits loopback): it checks each
//! request and answers as Slack documents for incoming webhooks, `200 ok` or an error as
//! plain text.

use std::time::Duration;

use axum::http::Method;
use chime_channels::destination::slack::SlackChannel;
use chime_channels::destination::{DestinationConfig, Settings};
use chime_channels::{
    local_due_time, ChannelAdapter, Recipient, Reminder, ReminderAction, SendError, Sent,
};
use chime_core::event::{Channel, OccurrenceKey};
use chime_core::{TaskId, TaskSpec, UserId};
use chime_testenv::receiver::{Receiver, Reply};
use serde_json::{json, Value};

const SECRET: &str = "xYz0123AbCdEfGhIjKlMnOpQ";

fn url() -> String {
    format!("slack://T0ABCDEF/B0GHIJKL/{SECRET}")
}

fn channel(receiver: &Receiver, public_url: Option<&str>) -> SlackChannel {
    let config = DestinationConfig {
        api_url: Some(receiver.base().to_owned()),
        allow: vec!["127.0.0.1".into()],
        ..Default::default()
    };
    let public_url = public_url.map(|u| url::Url::parse(u).expect("public url"));
    SlackChannel::new(Settings::new(Channel::Slack, &config, false, public_url).expect("settings"))
}

fn message(url: &str, name: &str, late: bool) -> Reminder {
    let task = TaskSpec::parse(&json!({
        "name": name,
        "description": "The ferns too",
        "startDate": "2026-12-07T08:00:00Z",
        "timeZone": "Europe/Berlin",
    }))
    .expect("task");
    let occurrence = OccurrenceKey {
        task_id: TaskId::new(),
        due_at: "2026-12-07T08:00:00Z".parse().expect("timestamp"),
    };
    Reminder {
        idempotency_key: format!("{occurrence}/slack/dst_1"),
        occurrence,
        user_id: UserId::parse("alice").expect("user"),
        task,
        late,
        attempt: 1,
        recipient: Recipient::Destination {
            id: "dst_1".into(),
            url: url.to_owned(),
        },
        actions: Vec::new(),
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
    let body: Value = serde_json::from_slice(&req.body).expect("json");
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
    let body: Value = serde_json::from_slice(&receiver.nth(1).await.body).expect("json");
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
    let mut msg = message(&url(), "Water the plants", false);
    msg.actions = vec![
        ReminderAction {
            kind: "done",
            label: "Done".into(),
            token: "tok-done".into(),
            callback: None,
        },
        ReminderAction {
            kind: "snooze",
            label: "Snooze 1 hour".into(),
            token: "tok-snooze".into(),
            callback: None,
        },
    ];
    channel(&receiver, Some("https://chime.example.com/"))
        .send(&msg)
        .await
        .expect("sent");
    let body: Value = serde_json::from_slice(&receiver.nth(1).await.body).expect("json");
    let actions = &body["blocks"][1];
    assert_eq!(actions["type"], "actions");
    assert_eq!(
        actions["elements"],
        json!([
            {"type": "button", "action_id": "done",
             "text": {"type": "plain_text", "text": "Done"},
             "url": "https://chime.example.com/act/tok-done"},
            {"type": "button", "action_id": "snooze",
             "text": {"type": "plain_text", "text": "Snooze 1 hour"},
             "url": "https://chime.example.com/act/tok-snooze"},
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
    let body: Value = serde_json::from_slice(&receiver.nth(1).await.body).expect("json");
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
    match result {
        Err(SendError::Transient {
            reason,
            retry_after,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
            assert!(reason.contains("429"), "{reason}");
        }
        other => panic!("expected transient, got {other:?}"),
    }
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
        match send_with_reply(Reply::status(status).body(text)).await {
            Err(SendError::Permanent { reason }) => {
                assert!(reason.contains(text), "{status}: {reason}");
                assert!(reason.contains(&status.to_string()), "{reason}");
            }
            other => panic!("{status} {text}: expected permanent, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_failing_answer_that_echoes_the_secret_does_not_put_it_in_the_reason() {
    let result = send_with_reply(Reply::status(400).body(format!(
        "invalid_token for /services/T0ABCDEF/B0GHIJKL/{SECRET}"
    )))
    .await;
    let Err(SendError::Permanent { reason }) = result else {
        panic!("expected permanent, got {result:?}");
    };
    assert!(reason.contains("invalid_token"), "{reason}");
    assert!(!reason.contains(SECRET), "{reason}");
    assert!(!reason.contains(&SECRET[..10]), "{reason}");
}

#[tokio::test]
async fn a_malformed_url_or_another_recipient_is_permanent_without_a_request() {
    let receiver = Receiver::start(ok()).await;
    let adapter = channel(&receiver, None);
    let bad = adapter
        .send(&message("slack://T0ABCDEF/B0GHIJKL", "x", false))
        .await;
    assert!(matches!(bad, Err(SendError::Permanent { .. })), "{bad:?}");
    let mut other = message(&url(), "x", false);
    other.recipient = Recipient::Email {
        address: "a@example.com".into(),
    };
    let refused = adapter.send(&other).await;
    assert!(
        matches!(refused, Err(SendError::Permanent { .. })),
        "{refused:?}"
    );
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn the_api_host_must_be_allowed_when_it_is_private() {
    let receiver = Receiver::start(ok()).await;
    let config = DestinationConfig {
        api_url: Some(receiver.base().to_owned()),
        ..Default::default()
    };
    let adapter = SlackChannel::new(Settings::new(Channel::Slack, &config, false, None).unwrap());
    let result = adapter.send(&message(&url(), "x", false)).await;
    let Err(SendError::Permanent { reason }) = result else {
        panic!("expected permanent, got {result:?}");
    };
    assert!(!reason.contains(SECRET), "{reason}");
    assert_eq!(receiver.count(), 0);
}
