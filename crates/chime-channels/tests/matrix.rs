//! The Matrix adapter, twice over:
//!
//! - against a stand-in homeserver on `127.0.0.1:0` that checks each request of the
//!   client-server API (login body, bearer token, alias lookup, transaction ids, join) and
//!   answers as the spec documents, failures included (`{"errcode", "error"}`,
//!   `retry_after_ms`);
//! - against a real Synapse (`chime_testenv::synapse`), reading the room back to check that a
//!   reminder sent twice, or sent again by a restarted adapter that logs in anew, is in the
//!   room once.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use chime_channels::destination::matrix::MatrixChannel;
use chime_channels::destination::{DestinationConfig, Settings};
use chime_channels::{local_due_time, ChannelAdapter, Recipient, Reminder, SendError, Sent};
use chime_core::event::Channel;
use chime_testenv::receiver::{Receiver, Reply, Request};
use chime_testenv::synapse::Synapse;
use serde_json::{json, Value};
use support::{
    assert_hides, assert_refused_without_a_request, body, permanent, retry, transient, DUE,
};

const PASSWORD: &str = "correct horse battery";
const TOKEN: &str = "syt_Ym90_AbCdEfGhIjKlMnOpQrSt_0a1b2c";
const ROOM: &str = "!room:example.org";
const SEND_PREFIX: &str = "/_matrix/client/v3/rooms/!room:example.org/send/m.room.message/";

fn settings(public_url: Option<&str>) -> Settings {
    let config = DestinationConfig {
        timeout_seconds: 30,
        ..support::config(None, &["127.0.0.1"])
    };
    support::settings(Channel::Matrix, config, public_url)
}

fn channel() -> MatrixChannel {
    MatrixChannel::new(settings(None))
}

fn message(url: &str, name: &str) -> Reminder {
    Reminder {
        task: support::task(name, "The ferns too"),
        ..support::reminder(Channel::Matrix, url, DUE)
    }
}

/// What a request to the stand-in asks for.
#[derive(Debug, PartialEq, Eq)]
enum Call {
    Login,
    /// The alias as it appears in the path (percent-encoded).
    Directory(String),
    Join(String),
    Send {
        txn: String,
    },
    Other,
}

fn call(req: &Request) -> Call {
    let path = req.path();
    let api = path.strip_prefix("/_matrix/client/v3/").unwrap_or_default();
    if req.method == Method::POST && api == "login" {
        Call::Login
    } else if let (true, Some(alias)) = (
        req.method == Method::GET,
        api.strip_prefix("directory/room/"),
    ) {
        Call::Directory(alias.to_owned())
    } else if let (true, Some(target)) = (req.method == Method::POST, api.strip_prefix("join/")) {
        Call::Join(target.to_owned())
    } else if let (true, Some(txn)) = (req.method == Method::PUT, path.strip_prefix(SEND_PREFIX)) {
        Call::Send {
            txn: txn.to_owned(),
        }
    } else {
        Call::Other
    }
}

fn bearer(req: &Request) -> &str {
    req.header("authorization").unwrap_or_default()
}

fn matrix_error(status: u16, errcode: &str, error: &str) -> Reply {
    Reply::status(status).json(json!({"errcode": errcode, "error": error}).to_string())
}

fn logged_in(n: usize) -> Reply {
    Reply::status(200).json(
        json!({
            "user_id": "@bot:example.org",
            "access_token": format!("tok{n}"),
            "device_id": "CHIMEABCDEF0123",
        })
        .to_string(),
    )
}

fn event(id: &str) -> Reply {
    Reply::status(200).json(json!({"event_id": id}).to_string())
}

fn resolved() -> Reply {
    Reply::status(200).json(json!({"room_id": ROOM, "servers": ["example.org"]}).to_string())
}

fn unexpected(req: &Request) -> Reply {
    matrix_error(
        404,
        "M_UNRECOGNIZED",
        &format!("unexpected {} {}", req.method, req.path()),
    )
}

/// A stand-in that logs in (`tok1`, `tok2`, … in order), knows `#reminders:example.org`,
/// lets the account join, and answers sends with `send`.
async fn homeserver(send: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Receiver {
    let logins = AtomicUsize::new(0);
    Receiver::answering(move |req, _| match call(req) {
        Call::Login => logged_in(logins.fetch_add(1, Ordering::SeqCst) + 1),
        Call::Directory(alias) if alias == "%23reminders:example.org" => resolved(),
        Call::Directory(_) => matrix_error(404, "M_NOT_FOUND", "Room alias not found"),
        Call::Join(_) => Reply::status(200).json(json!({"room_id": ROOM}).to_string()),
        Call::Send { .. } => send(req),
        Call::Other => unexpected(req),
    })
    .await
}

fn token_url(server: &Receiver, room: &str) -> String {
    format!("matrix://{TOKEN}@{}/{room}", authority(server))
}

fn password_url(server: &Receiver, room: &str) -> String {
    format!(
        "matrix://bot:{}@{}/{room}",
        PASSWORD.replace(' ', "%20"),
        authority(server)
    )
}

fn authority(server: &Receiver) -> &str {
    server.base().strip_prefix("http://").expect("http")
}

/// A reminder sent to [`ROOM`] with the access token in the URL.
async fn send_with_token(server: &Receiver) -> Result<Sent, SendError> {
    channel()
        .send(&message(&token_url(server, ROOM), "x"))
        .await
}

fn calls(server: &Receiver) -> Vec<Call> {
    server.requests().iter().map(call).collect()
}

#[tokio::test]
async fn a_token_url_puts_the_message_into_the_room_with_a_bearer_token() {
    let server = homeserver(|_| event("$event1")).await;
    let msg = message(&token_url(&server, ROOM), "Water the plants");

    let sent = channel().send(&msg).await.expect("sent");

    assert_eq!(sent.provider_id.as_deref(), Some("$event1"));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, Method::PUT);
    let Call::Send { txn } = call(req) else {
        panic!("not a send: {}", req.path());
    };
    assert!(txn.starts_with("chime") && txn.len() == 37, "{txn}");
    assert_eq!(bearer(req), format!("Bearer {TOKEN}"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    let due = local_due_time(&msg);
    assert_eq!(
        body(req),
        json!({
            "msgtype": "m.text",
            "body": format!("Reminder: Water the plants\nThe ferns too\nDue {due}"),
            "format": "org.matrix.custom.html",
            "formatted_body": format!(
                "<p><strong>Reminder: Water the plants</strong></p><p>The ferns too</p><p>Due {due}</p>"
            ),
            "m.mentions": {},
        })
    );
}

#[tokio::test]
async fn the_transaction_id_is_kept_across_attempts_and_differs_between_deliveries() {
    let server = homeserver(|_| event("$e")).await;
    let adapter = channel();
    let first = message(&token_url(&server, ROOM), "Water the plants");
    let other = message(&token_url(&server, ROOM), "Water the plants");

    adapter.send(&first).await.expect("sent");
    adapter.send(&retry(&first)).await.expect("sent");
    adapter.send(&other).await.expect("sent");

    let txns: Vec<String> = calls(&server)
        .into_iter()
        .map(|c| match c {
            Call::Send { txn } => txn,
            other => panic!("not a send: {other:?}"),
        })
        .collect();
    assert_eq!(txns.len(), 3);
    assert_eq!(txns[0], txns[1]);
    assert_ne!(txns[0], txns[2]);
}

#[tokio::test]
async fn an_alias_is_resolved_through_the_directory_before_each_send() {
    let server = homeserver(|_| event("$e")).await;
    let adapter = channel();
    for url in [
        format!(
            "matrix://{TOKEN}@{}/#reminders:example.org",
            authority(&server)
        ),
        format!(
            "matrix://{TOKEN}@{}/%23reminders:example.org",
            authority(&server)
        ),
    ] {
        adapter.send(&message(&url, "x")).await.expect("sent");
    }
    let requests = server.requests();
    assert_eq!(
        calls(&server)
            .into_iter()
            .map(|c| matches!(c, Call::Directory(_)))
            .collect::<Vec<_>>(),
        [true, false, true, false]
    );
    assert_eq!(
        requests[0].path(),
        "/_matrix/client/v3/directory/room/%23reminders:example.org"
    );
    assert_eq!(bearer(&requests[0]), format!("Bearer {TOKEN}"));
}

#[tokio::test]
async fn a_password_url_logs_in_once_with_a_stable_device_and_reuses_the_token() {
    let server = homeserver(|_| event("$e")).await;
    let adapter = channel();
    let msg = message(&password_url(&server, ROOM), "x");

    adapter.send(&msg).await.expect("sent");
    adapter
        .send(&message(&password_url(&server, ROOM), "y"))
        .await
        .expect("sent");

    let requests = server.requests();
    assert_eq!(
        calls(&server).iter().filter(|c| **c == Call::Login).count(),
        1
    );
    let login = body(&requests[0]);
    let device = login["device_id"].as_str().expect("device_id").to_owned();
    assert!(
        device.starts_with("CHIME") && device.len() == 15,
        "{device}"
    );
    assert_eq!(
        login,
        json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "bot"},
            "password": PASSWORD,
            "device_id": device,
            "initial_device_display_name": "Chime",
        })
    );
    assert!(requests[0].header("authorization").is_none());
    assert_eq!(bearer(&requests[1]), "Bearer tok1");
    assert_eq!(bearer(&requests[2]), "Bearer tok1");
}

#[tokio::test]
async fn a_token_the_server_forgot_is_dropped_and_the_adapter_logs_in_again_with_the_same_device() {
    let revoked = Arc::new(AtomicBool::new(false));
    let gone = revoked.clone();
    let server = homeserver(move |req| {
        if gone.load(Ordering::SeqCst) && bearer(req) == "Bearer tok1" {
            matrix_error(401, "M_UNKNOWN_TOKEN", "Access token has expired")
        } else {
            event("$e")
        }
    })
    .await;
    let adapter = channel();
    let msg = message(&password_url(&server, ROOM), "x");
    adapter.send(&msg).await.expect("sent");

    revoked.store(true, Ordering::SeqCst);
    adapter
        .send(&retry(&msg))
        .await
        .expect("sent after logging in again");

    let requests = server.requests();
    let seen = calls(&server);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[0], Call::Login);
    assert_eq!(seen[3], Call::Login);
    assert_eq!(
        body(&requests[0]),
        body(&requests[3]),
        "the same login, device included"
    );
    assert_eq!(seen[1], seen[2], "the same transaction");
    assert_eq!(seen[2], seen[4], "the same transaction");
    assert_eq!(bearer(&requests[4]), "Bearer tok2");
}

#[tokio::test]
async fn a_token_refused_right_after_a_login_is_permanent() {
    let server =
        homeserver(|_| matrix_error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")).await;
    let result = channel()
        .send(&message(&password_url(&server, ROOM), "x"))
        .await;
    let reason = permanent(result);
    assert!(reason.contains("M_UNKNOWN_TOKEN"), "{reason}");
    assert_eq!(calls(&server).len(), 2, "one login, one send");
}

#[tokio::test]
async fn an_access_token_from_the_url_that_is_refused_is_permanent_without_a_login() {
    let server =
        homeserver(|_| matrix_error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")).await;
    let result = send_with_token(&server).await;
    assert!(
        matches!(result, Err(SendError::Permanent { .. })),
        "{result:?}"
    );
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn a_rate_limit_is_transient_with_retry_after_ms() {
    let server = homeserver(|_| {
        Reply::status(429).json(
            json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 2500})
                .to_string(),
        )
    })
    .await;
    let result = send_with_token(&server).await;
    let (reason, retry_after) = transient(result);
    assert_eq!(retry_after, Some(Duration::from_millis(2500)));
    assert!(reason.contains("M_LIMIT_EXCEEDED"), "{reason}");
}

#[tokio::test]
async fn a_rate_limit_with_only_a_retry_after_header_uses_it() {
    let server = homeserver(|_| {
        matrix_error(429, "M_LIMIT_EXCEEDED", "Too Many Requests").header("retry-after", "4")
    })
    .await;
    let result = send_with_token(&server).await;
    assert!(
        matches!(
            result,
            Err(SendError::Transient { retry_after: Some(d), .. }) if d == Duration::from_secs(4)
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn server_errors_are_transient() {
    let server = homeserver(|_| Reply::status(502)).await;
    let result = send_with_token(&server).await;
    assert!(
        matches!(result, Err(SendError::Transient { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_refused_login_is_permanent_and_its_reason_names_no_password() {
    let server = Receiver::answering(|req, _| match call(req) {
        Call::Login => matrix_error(
            403,
            "M_FORBIDDEN",
            &format!("Invalid username or password ({PASSWORD})"),
        ),
        _ => unexpected(req),
    })
    .await;
    let result = channel()
        .send(&message(&password_url(&server, ROOM), "x"))
        .await;
    let reason = permanent(result);
    assert!(reason.contains("logging in as bot"), "{reason}");
    assert!(
        reason.contains("M_FORBIDDEN: Invalid username or password"),
        "{reason}"
    );
    assert_hides(&reason, &["horse"]);
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn an_unknown_alias_is_permanent() {
    let server = homeserver(|_| event("$e")).await;
    let url = format!(
        "matrix://{TOKEN}@{}/#nowhere:example.org",
        authority(&server)
    );
    let result = channel().send(&message(&url, "x")).await;
    let reason = permanent(result);
    assert!(reason.contains("#nowhere:example.org"), "{reason}");
    assert!(reason.contains("M_NOT_FOUND"), "{reason}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn a_forbidden_send_joins_the_room_once_and_sends_again_with_the_same_transaction() {
    let sends = AtomicUsize::new(0);
    let server = homeserver(move |_| {
        if sends.fetch_add(1, Ordering::SeqCst) == 0 {
            matrix_error(
                403,
                "M_FORBIDDEN",
                "User @bot:example.org not in room !room:example.org",
            )
        } else {
            event("$joined")
        }
    })
    .await;
    let url = format!(
        "matrix://{TOKEN}@{}/#reminders:example.org",
        authority(&server)
    );

    let sent = channel().send(&message(&url, "x")).await.expect("sent");

    assert_eq!(sent.provider_id.as_deref(), Some("$joined"));
    let seen = calls(&server);
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[2], Call::Join("%23reminders:example.org".into()));
    assert_eq!(seen[1], seen[3]);
    let requests = server.requests();
    assert_eq!(body(&requests[2]), json!({}));
    assert_eq!(bearer(&requests[2]), format!("Bearer {TOKEN}"));
}

#[tokio::test]
async fn a_refused_join_is_permanent_and_says_both_why() {
    let server = Receiver::answering(|req, _| match call(req) {
        Call::Send { .. } => matrix_error(403, "M_FORBIDDEN", "User not in room"),
        Call::Join(_) => matrix_error(403, "M_FORBIDDEN", "You are not invited to this room."),
        _ => unexpected(req),
    })
    .await;
    let result = send_with_token(&server).await;
    let reason = permanent(result);
    assert!(reason.contains("User not in room"), "{reason}");
    assert!(reason.contains("not invited"), "{reason}");
    assert_eq!(
        calls(&server)[1],
        Call::Join("!room:example.org".into()),
        "a room id joins by id"
    );
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_join_that_is_rate_limited_stays_transient() {
    let server = Receiver::answering(|req, _| match call(req) {
        Call::Send { .. } => matrix_error(403, "M_FORBIDDEN", "User not in room"),
        Call::Join(_) => Reply::status(429).json(
            json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 900})
                .to_string(),
        ),
        _ => unexpected(req),
    })
    .await;
    let result = send_with_token(&server).await;
    assert!(
        matches!(
            &result,
            Err(SendError::Transient { retry_after: Some(d), reason })
                if *d == Duration::from_millis(900) && reason.starts_with("joining the room")
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn user_text_is_escaped_in_the_html_and_actions_are_links() {
    let server = homeserver(|_| event("$e")).await;
    let mut msg = message(
        &format!("{}?msgtype=notice", token_url(&server, ROOM)),
        "<b>@room</b> & co",
    );
    msg.late = true;
    MatrixChannel::new(settings(Some("https://chime.example.com")))
        .send(&msg)
        .await
        .expect("sent");
    let content = body(&server.nth(1).await);
    assert_eq!(content["msgtype"], "m.notice");
    assert_eq!(content["m.mentions"], json!({}));
    let html = content["formatted_body"].as_str().expect("html");
    assert!(
        html.starts_with(
            "<p><strong>Late reminder: &lt;b&gt;@room&lt;/b&gt; &amp; co</strong></p><p><em>Late:"
        ),
        "{html}"
    );
    assert!(
        html.ends_with(
            "<p><a href=\"https://chime.example.com/act/act-done-token\">Done</a> · \
             <a href=\"https://chime.example.com/act/act-snooze-token\">Snooze 1 hour</a></p>"
        ),
        "{html}"
    );
    let text = content["body"].as_str().expect("body");
    assert!(
        text.starts_with("Late reminder: <b>@room</b> & co\n"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "\nDone: https://chime.example.com/act/act-done-token\
             \nSnooze 1 hour: https://chime.example.com/act/act-snooze-token"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_failing_answer_that_echoes_the_token_does_not_put_it_in_the_reason() {
    let server =
        homeserver(|_| matrix_error(400, "M_BAD_JSON", &format!("bad request from {TOKEN}"))).await;
    let result = send_with_token(&server).await;
    let reason = permanent(result);
    assert!(reason.contains("M_BAD_JSON"), "{reason}");
    assert_hides(&reason, &[&TOKEN[..12]]);
}

#[tokio::test]
async fn a_malformed_url_or_another_recipient_is_permanent_without_a_request() {
    let server = homeserver(|_| event("$e")).await;
    let no_room = message(&format!("matrix://{TOKEN}@{}/", authority(&server)), "x");
    let mut other = message(&token_url(&server, ROOM), "x");
    other.recipient = Recipient::Webhook {
        url: "https://example.com".into(),
        secret: "whsec_x".into(),
    };

    assert_refused_without_a_request(&channel(), &[no_room, other], &server).await;
}

// A real homeserver.

/// The room's `m.room.message` events from `sender`, newest first, read as the owner.
async fn messages_from(synapse: &Synapse, sender: &str) -> Vec<Value> {
    let mut url = url::Url::parse(&synapse.base_url).expect("base url");
    url.path_segments_mut().expect("base").extend([
        "_matrix",
        "client",
        "v3",
        "rooms",
        &synapse.room_id,
        "messages",
    ]);
    url.query_pairs_mut()
        .append_pair("dir", "b")
        .append_pair("limit", "100");
    let page: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(&synapse.owner_token)
        .send()
        .await
        .expect("the messages request")
        .error_for_status()
        .expect("the room's messages")
        .json()
        .await
        .expect("JSON");
    page["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter(|e| e["type"] == "m.room.message" && e["sender"] == sender)
        .cloned()
        .collect()
}

fn event_id(sent: Sent) -> String {
    sent.provider_id.expect("an event id")
}

#[tokio::test]
async fn a_real_homeserver_shows_a_reminder_sent_again_after_a_new_login_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let synapse = Synapse::start(dir.path()).await;
    // The bot is invited, not joined: the first send is refused, the adapter joins.
    let url = format!(
        "matrix://{}:{}@{}/#reminders:{}",
        synapse.bot_user,
        synapse.bot_password,
        synapse.authority(),
        synapse.server_name
    );
    let msg = message(&url, "Water the plants");

    let first = event_id(channel().send(&msg).await.expect("sent"));
    let again = event_id(channel().send(&retry(&msg)).await.expect("sent again"));
    let adapter = channel();
    let twice = event_id(adapter.send(&retry(&msg)).await.expect("sent"));
    let thrice = event_id(adapter.send(&retry(&msg)).await.expect("sent"));

    assert_eq!(
        first, again,
        "a new login on the same device finds the transaction"
    );
    assert_eq!(first, twice);
    assert_eq!(first, thrice);
    let seen = messages_from(&synapse, &synapse.bot_id).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["event_id"], first.as_str());
    assert_eq!(seen[0]["content"]["msgtype"], "m.text");
    assert_eq!(
        seen[0]["content"]["body"],
        format!(
            "Reminder: Water the plants\nThe ferns too\nDue {}",
            local_due_time(&msg)
        )
    );
    assert_eq!(seen[0]["content"]["format"], "org.matrix.custom.html");
}

#[tokio::test]
async fn a_real_homeserver_shows_a_reminder_sent_twice_with_an_access_token_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let synapse = Synapse::start(dir.path()).await;
    let url = format!(
        "matrix://{}@{}/{}",
        synapse.owner_token,
        synapse.authority(),
        synapse.room_id
    );
    let adapter = channel();
    let msg = message(&url, "Take out the bins");
    let other = message(&url, "Take out the bins");

    let first = event_id(adapter.send(&msg).await.expect("sent"));
    let again = event_id(adapter.send(&retry(&msg)).await.expect("sent again"));
    let next = event_id(adapter.send(&other).await.expect("another occurrence"));

    assert_eq!(first, again);
    assert_ne!(first, next);
    let seen = messages_from(&synapse, &synapse.owner_id).await;
    let ids: Vec<&str> = seen.iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(ids, [next.as_str(), first.as_str()], "newest first");
}
