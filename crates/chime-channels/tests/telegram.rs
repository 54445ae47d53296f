//! The Telegram adapter and Bot API calls against a local Bot API on `127.0.0.1:0`
//! (`channels.telegram.api_url`) that checks each request as Telegram would read it
//! (`POST /bot<token>/<method>` with a JSON body) and answers as Telegram does:
//! `{"ok":true,"result":…}`, or `{"ok":false,"error_code","description","parameters"}`.
//!
//! The server is on loopback, so the channel's allow list names `127.0.0.1`, as an operator's
//! would for a local Bot API server; nothing relies on the global `allow_private`.

mod support;

use std::time::Duration;

use chime_channels::destination::telegram::{
    answer_callback, set_webhook, TelegramChannel, TelegramUrl,
};
use chime_channels::destination::{adapter, Settings};
use chime_channels::{local_due_time, ChannelAdapter, Reminder, SendError, Sent};
use chime_core::event::Channel;
use chime_testenv::receiver::{Receiver, Reply};
use serde_json::{json, Value};
use support::{
    action, assert_hides, assert_refused_as_loopback, body, permanent, transient, DUE, PUBLIC_URL,
};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
/// The token's secret half, which no reason may hold.
const TOKEN_SECRET: &str = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

fn settings(server: &Receiver, allow: &[&str], public: bool) -> Settings {
    support::settings(
        Channel::Telegram,
        support::config(Some(server), allow),
        public.then_some(PUBLIC_URL),
    )
}

fn channel(server: &Receiver) -> TelegramChannel {
    TelegramChannel::new(settings(server, &["127.0.0.1"], true))
}

/// A late reminder to `chat` whose actions are Done, Snooze 1 day (no short form: no button)
/// and Snooze 1 hour.
fn reminder(chat: &str) -> Reminder {
    let mut message = support::reminder(Channel::Telegram, &format!("tgram://{TOKEN}/{chat}"), DUE);
    message.late = true;
    message
        .actions
        .insert(1, action("snooze", "Snooze 1 day", "act-snooze-day", None));
    message
}

fn sent_message(id: i64) -> Reply {
    Reply::status(200).json(
        json!({"ok": true, "result": {"message_id": id, "date": 1_765_094_400,
               "chat": {"id": -1_001_234_567_890_i64, "type": "supergroup"}, "text": "…"}})
        .to_string(),
    )
}

fn telegram_error(status: u16, description: &str, parameters: Option<Value>) -> Reply {
    let mut body = json!({"ok": false, "error_code": status, "description": description});
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    Reply::status(status).json(body.to_string())
}

fn bot_url() -> TelegramUrl {
    TelegramUrl::parse(&format!("tgram://{TOKEN}/-1001234567890")).expect("url")
}

async fn send_with(reply: Reply) -> Result<Sent, SendError> {
    let server = Receiver::start(reply).await;
    let result = channel(&server).send(&reminder("-1001234567890")).await;
    assert_eq!(server.count(), 1);
    result
}

fn assert_permanent_without_token<T: std::fmt::Debug>(
    result: Result<T, SendError>,
    expected: &str,
) {
    let reason = permanent(result);
    assert!(reason.contains(expected), "{reason}");
    assert_hides(&reason, &[TOKEN_SECRET]);
}

#[tokio::test]
async fn sends_the_reminder_with_a_button_for_each_action_that_has_a_short_form() {
    let server = Receiver::start(sent_message(42)).await;
    let message = reminder("-1001234567890");

    let sent = channel(&server).send(&message).await.expect("sent");

    assert_eq!(
        sent,
        Sent {
            provider_id: Some("42".to_owned())
        }
    );
    let request = server.nth(1).await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.to_string(), format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        body(&request),
        json!({
            "chat_id": -1_001_234_567_890_i64,
            "text": format!(
                "Water the plants\n\nThe ferns too\n\nDue {} (late)\n\n{PUBLIC_URL}/tasks/{}",
                local_due_time(&message),
                message.occurrence.task_id
            ),
            "reply_markup": {"inline_keyboard": [
                [{"text": "Done", "callback_data": "d.Zm9vYmFy"}],
                [{"text": "Snooze 1 hour", "callback_data": "s.YmF6cXV4"}],
            ]},
        })
    );
}

#[tokio::test]
async fn a_channel_username_is_sent_as_a_string_and_no_actions_means_no_keyboard() {
    let server = Receiver::start(sent_message(7)).await;
    let mut message = reminder("@chime_alerts");
    message.actions.clear();

    channel(&server).send(&message).await.expect("sent");

    let body = body(&server.nth(1).await);
    assert_eq!(body["chat_id"], "@chime_alerts");
    assert!(body.get("reply_markup").is_none(), "{body}");
}

#[tokio::test]
async fn without_a_public_address_a_message_carries_no_buttons_that_could_not_call_back() {
    let server = Receiver::start(sent_message(7)).await;
    let telegram = TelegramChannel::new(settings(&server, &["127.0.0.1"], false));

    telegram
        .send(&reminder("-1001234567890"))
        .await
        .expect("sent");

    let body = body(&server.nth(1).await);
    assert!(body.get("reply_markup").is_none(), "{body}");
}

#[tokio::test]
async fn a_429_is_transient_after_telegrams_retry_after() {
    let result = send_with(telegram_error(
        429,
        "Too Many Requests: retry after 17",
        Some(json!({"retry_after": 17})),
    ))
    .await;

    let (reason, retry_after) = transient(result);
    assert_eq!(retry_after, Some(Duration::from_secs(17)));
    assert!(reason.contains("Too Many Requests"), "{reason}");
    assert_hides(&reason, &[TOKEN_SECRET]);
}

#[tokio::test]
async fn a_401_is_permanent_and_says_telegram_refused_the_bot_token() {
    let result = send_with(telegram_error(401, "Unauthorized", None)).await;

    assert_permanent_without_token(result, "Telegram refused the bot token");
}

#[tokio::test]
async fn a_chat_not_found_or_a_blocked_bot_is_permanent() {
    let result = send_with(telegram_error(400, "Bad Request: chat not found", None)).await;
    assert_permanent_without_token(result, "chat not found");

    let result = send_with(telegram_error(
        403,
        "Forbidden: bot was blocked by the user",
        None,
    ))
    .await;
    assert_permanent_without_token(result, "bot was blocked by the user");
}

#[tokio::test]
async fn a_group_that_became_a_supergroup_is_permanent_and_names_its_new_chat_id() {
    let result = send_with(telegram_error(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        Some(json!({"migrate_to_chat_id": -1_009_876_543_210_i64})),
    ))
    .await;

    assert_permanent_without_token(result, "supergroup whose chat id is -1009876543210");
}

#[tokio::test]
async fn a_5xx_is_transient() {
    let result = send_with(telegram_error(502, "Bad Gateway", None)).await;

    assert!(
        matches!(&result, Err(SendError::Transient { reason, .. }) if reason.contains("502")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_private_api_url_not_on_the_allow_list_is_refused_before_any_request() {
    let server = Receiver::start(sent_message(1)).await;
    let telegram = TelegramChannel::new(settings(&server, &[], true));

    let result = telegram.send(&reminder("-1001234567890")).await;

    assert_refused_as_loopback(result, Channel::Telegram);
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn a_failing_answers_reason_holds_no_token_even_when_the_api_echoes_the_path() {
    let result = send_with_echo().await;

    assert_permanent_without_token(result, "Not Found: /bot…/sendMessage");
}

async fn send_with_echo() -> Result<Sent, SendError> {
    let server = Receiver::answering(|request, _| {
        telegram_error(404, &format!("Not Found: {}", request.path()), None)
    })
    .await;
    channel(&server).send(&reminder("-1001234567890")).await
}

#[tokio::test]
async fn set_webhook_asks_for_button_presses_only_with_the_secret_token() {
    let server =
        Receiver::start(Reply::status(200).json(
            json!({"ok": true, "result": true, "description": "Webhook was set"}).to_string(),
        ))
        .await;

    set_webhook(
        &settings(&server, &["127.0.0.1"], true),
        &bot_url(),
        "https://chime.example.com/hooks/telegram/123456789",
        "s3cr3t_-Token",
    )
    .await
    .expect("set");

    let request = server.nth(1).await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.to_string(), format!("/bot{TOKEN}/setWebhook"));
    assert_eq!(
        body(&request),
        json!({
            "url": "https://chime.example.com/hooks/telegram/123456789",
            "secret_token": "s3cr3t_-Token",
            "allowed_updates": ["callback_query"],
        })
    );
}

#[tokio::test]
async fn set_webhook_refuses_a_secret_token_telegram_would_refuse_before_any_request() {
    let server = Receiver::start(Reply::status(200)).await;

    let result = set_webhook(
        &settings(&server, &["127.0.0.1"], true),
        &bot_url(),
        "https://chime.example.com/hooks/telegram",
        "not allowed!",
    )
    .await;

    assert!(
        matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("secret token")),
        "{result:?}"
    );
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn answer_callback_acknowledges_the_press_with_its_text() {
    let server =
        Receiver::start(Reply::status(200).json(json!({"ok": true, "result": true}).to_string()))
            .await;

    answer_callback(
        &settings(&server, &["127.0.0.1"], true),
        &bot_url(),
        "4382bfdwdsb323b2d9",
        "Done",
    )
    .await
    .expect("answered");

    let request = server.nth(1).await;
    assert_eq!(
        request.uri.to_string(),
        format!("/bot{TOKEN}/answerCallbackQuery")
    );
    assert_eq!(
        body(&request),
        json!({"callback_query_id": "4382bfdwdsb323b2d9", "text": "Done"})
    );
}

#[tokio::test]
async fn a_refused_bot_api_call_is_a_permanent_error_without_the_token() {
    let server = Receiver::start(telegram_error(
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
        None,
    ))
    .await;

    let result = answer_callback(
        &settings(&server, &["127.0.0.1"], true),
        &bot_url(),
        "old",
        "",
    )
    .await;

    assert_permanent_without_token(result, "query is too old");
    let request = server.nth(1).await;
    assert_eq!(body(&request), json!({"callback_query_id": "old"}));
}

#[tokio::test]
async fn the_telegram_channels_adapter_is_the_telegram_adapter() {
    let server = Receiver::start(sent_message(3)).await;
    let telegram = adapter(settings(&server, &["127.0.0.1"], false));

    assert_eq!(telegram.kind(), Channel::Telegram);
    assert_eq!(telegram.timeout(), Duration::from_secs(10));
    telegram.send(&reminder("12345")).await.expect("sent");
    assert_eq!(body(&server.nth(1).await)["chat_id"], 12345);
}
