//! The webhook adapter against a real HTTP receiver on `127.0.0.1:0`.
//!
//! The receiver (`chime_testenv::receiver`) records what it got and answers as each test tells
//! it. Signatures are checked with the `standardwebhooks` crate, an implementation independent
//! of ours. Since the receiver is on loopback, deliveries that should arrive use
//! `allow_private: true`; the SSRF tests use `false` and check that nothing arrived.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::Method;
use chime_channels::webhook::{
    check_url, generate_secret, is_public, sign, verify, SignatureError, WebhookChannel,
    WebhookConfig,
};
use chime_channels::{local_due_time, ChannelAdapter, Recipient, Reminder, SendError, Sent};
use chime_core::event::OccurrenceKey;
use chime_core::{TaskId, TaskSpec, UserId};
use chime_testenv::receiver::{Receiver, Reply, Request};
use serde_json::{json, Value};

fn ok() -> Reply {
    Reply::status(204)
}

fn channel(allow_private: bool) -> WebhookChannel {
    WebhookChannel::new(&WebhookConfig {
        allow_private,
        ..WebhookConfig::default()
    })
    .expect("channel")
}

fn occurrence(due: &str) -> OccurrenceKey {
    OccurrenceKey {
        task_id: TaskId::new(),
        due_at: due.parse().expect("timestamp"),
    }
}

fn message(url: &str, secret: &str, occurrence: OccurrenceKey) -> Reminder {
    let task = TaskSpec::parse(&json!({
        "name": "Water the plants",
        "description": "The ferns too",
        "startDate": "2026-12-07T08:00:00Z",
        "timeZone": "Europe/Berlin",
    }))
    .expect("task");
    Reminder {
        idempotency_key: format!("{occurrence}/webhook"),
        occurrence,
        user_id: UserId::parse("alice").expect("user"),
        task,
        late: true,
        attempt: 1,
        recipient: Recipient::Webhook {
            url: url.to_owned(),
            secret: secret.to_owned(),
        },
        actions: Vec::new(),
    }
}

fn header<'a>(seen: &'a Request, name: &str) -> &'a str {
    seen.header(name)
        .unwrap_or_else(|| panic!("no {name} header, or not ASCII"))
}

async fn send_with_reply(reply: Reply) -> (Result<Sent, SendError>, Receiver) {
    let receiver = Receiver::start(reply).await;
    let msg = message(
        &receiver.url("/hook"),
        &generate_secret(),
        occurrence("2026-12-07T08:00:00Z"),
    );
    (channel(true).send(&msg).await, receiver)
}

#[tokio::test]
async fn delivers_a_signed_reminder_that_an_independent_verifier_accepts() {
    let receiver = Receiver::start(ok()).await;
    let secret = generate_secret();
    let msg = message(
        &receiver.url("/hooks/chime?source=test"),
        &secret,
        occurrence("2026-12-07T08:00:00Z"),
    );

    let sent = channel(true).send(&msg).await.expect("sent");

    assert_eq!(sent, Sent { provider_id: None });
    let seen = receiver.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path(), "/hooks/chime");
    assert_eq!(header(req, "content-type"), "application/json");
    assert_eq!(
        header(req, "user-agent"),
        format!("chime/{}", env!("CARGO_PKG_VERSION"))
    );

    standardwebhooks::Webhook::new(&secret)
        .expect("secret")
        .verify(&req.body, &req.headers)
        .expect("the reference implementation accepts the signature");
    // Our own verifier agrees.
    let timestamp: i64 = header(req, "webhook-timestamp")
        .parse()
        .expect("unix seconds");
    verify(
        &secret,
        header(req, "webhook-id"),
        timestamp,
        &req.body,
        header(req, "webhook-signature"),
        jiff::Timestamp::now(),
    )
    .expect("verify");

    let body: Value = serde_json::from_slice(&req.body).expect("json");
    assert_eq!(body["type"], "reminder.due");
    let sent_at: jiff::Timestamp = body["timestamp"]
        .as_str()
        .expect("str")
        .parse()
        .expect("rfc 3339");
    assert!((sent_at.as_second() - timestamp).abs() <= 1);
    let data = &body["data"];
    assert_eq!(data["taskId"], msg.occurrence.task_id.to_string());
    assert_eq!(data["taskName"], "Water the plants");
    assert_eq!(data["description"], "The ferns too");
    assert_eq!(data["dueAt"], "2026-12-07T08:00:00Z");
    assert_eq!(data["dueLocal"], local_due_time(&msg));
    assert_eq!(
        data["dueLocal"],
        "Monday 7 December 2026, 09:00 (Europe/Berlin)"
    );
    assert_eq!(data["timeZone"], "Europe/Berlin");
    assert_eq!(data["late"], true);
    assert_eq!(data["occurrence"], msg.idempotency_key);
}

#[tokio::test]
async fn the_webhook_id_is_kept_across_attempts_and_differs_between_occurrences() {
    let receiver = Receiver::start(ok()).await;
    let url = receiver.url("/hook");
    let secret = generate_secret();
    let first = message(&url, &secret, occurrence("2026-12-07T08:00:00Z"));
    let retry = Reminder {
        attempt: 2,
        ..first.clone()
    };
    let next = message(&url, &secret, occurrence("2026-12-14T08:00:00Z"));
    let webhook = channel(true);

    for msg in [&first, &retry, &next] {
        webhook.send(msg).await.expect("sent");
    }

    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|s| header(s, "webhook-id").to_owned())
        .collect();
    assert!(ids[0].starts_with("msg_"));
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
}

#[tokio::test]
async fn a_loopback_url_is_refused_as_permanent_when_private_addresses_are_not_allowed() {
    let receiver = Receiver::start(ok()).await;
    let msg = message(
        &receiver.url("/hook"),
        &generate_secret(),
        occurrence("2026-12-07T08:00:00Z"),
    );

    let err = channel(false).send(&msg).await.expect_err("refused");

    let SendError::Permanent { reason } = err else {
        panic!("expected Permanent, got {err:?}");
    };
    assert_eq!(
        reason,
        "refusing to deliver to 127.0.0.1, a loopback address: webhooks go to public addresses \
         only unless `channels.webhook.allow_private = true`"
    );
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn a_host_name_that_resolves_to_loopback_is_refused_too() {
    let receiver = Receiver::start(ok()).await;
    let url = format!("{}/hook", receiver.base().replace("127.0.0.1", "localhost"));
    let msg = message(&url, &generate_secret(), occurrence("2026-12-07T08:00:00Z"));

    let err = channel(false).send(&msg).await.expect_err("refused");

    let SendError::Permanent { reason } = err else {
        panic!("expected Permanent, got {err:?}");
    };
    assert!(
        reason.starts_with("refusing to deliver to localhost, which resolves to "),
        "{reason}"
    );
    assert!(reason.contains("a loopback address"), "{reason}");
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn a_host_name_is_delivered_to_through_the_pinned_addresses_when_allowed() {
    let receiver = Receiver::start(ok()).await;
    let url = format!("{}/hook", receiver.base().replace("127.0.0.1", "localhost"));
    let msg = message(&url, &generate_secret(), occurrence("2026-12-07T08:00:00Z"));

    channel(true).send(&msg).await.expect("sent");

    assert_eq!(receiver.count(), 1);
}

#[test]
fn is_public_refuses_special_addresses_and_accepts_public_ones() {
    let cases = [
        ("127.0.0.1", false),
        ("10.1.2.3", false),
        ("172.20.0.1", false),
        ("192.168.1.1", false),
        ("169.254.169.254", false),
        ("100.64.0.1", false),
        ("0.0.0.0", false),
        ("::1", false),
        ("fe80::1", false),
        ("fc00::1", false),
        ("::ffff:127.0.0.1", false),
        ("224.0.0.1", false),
        ("8.8.8.8", true),
        ("1.1.1.1", true),
        ("2606:4700:4700::1111", true),
    ];
    for (ip, public) in cases {
        let addr: IpAddr = ip.parse().expect("ip");
        assert_eq!(is_public(addr), public, "{ip}");
    }
}

#[tokio::test]
async fn urls_with_another_scheme_or_with_userinfo_are_refused_as_permanent() {
    let receiver = Receiver::start(ok()).await;
    let with_user = receiver.base().replace("http://", "http://user:pass@");
    let cases = [
        ("ftp://8.8.8.8/hook".to_owned(), "must use http or https"),
        ("file:///etc/passwd".to_owned(), "must use http or https"),
        (format!("{with_user}/hook"), "must not contain a user name"),
        ("not a url".to_owned(), "not a valid URL"),
    ];
    for (url, expected) in cases {
        let msg = message(&url, &generate_secret(), occurrence("2026-12-07T08:00:00Z"));
        let err = channel(true).send(&msg).await.expect_err("refused");
        assert!(
            matches!(&err, SendError::Permanent { reason } if reason.contains(expected)),
            "{url}: {err:?}"
        );
        let checked = check_url(&url, true).await.expect_err("refused");
        assert!(checked.contains(expected), "{url}: {checked}");
    }
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn check_url_accepts_a_public_address_and_explains_a_private_one() {
    check_url("https://8.8.8.8/hook", false)
        .await
        .expect("public");
    let refused = check_url("http://169.254.169.254/latest/meta-data", false)
        .await
        .expect_err("link-local");
    assert!(
        refused.starts_with("refusing to deliver to 169.254.169.254, a link-local address"),
        "{refused}"
    );
    let refused = check_url("http://[::ffff:10.0.0.1]:8080/", false)
        .await
        .expect_err("mapped private");
    assert!(refused.contains("a private address"), "{refused}");
    check_url("http://127.0.0.1:9/", true)
        .await
        .expect("allowed when private addresses are");
}

#[tokio::test]
async fn a_503_with_retry_after_is_transient_with_that_delay() {
    let (result, receiver) = send_with_reply(Reply::status(503).header("retry-after", "120")).await;

    match result {
        Err(SendError::Transient {
            reason,
            retry_after,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(120)));
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("expected Transient, got {other:?}"),
    }
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn a_429_is_transient() {
    let (result, _) = send_with_reply(Reply::status(429)).await;

    assert!(
        matches!(
            result,
            Err(SendError::Transient {
                retry_after: None,
                ..
            })
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_410_is_permanent_and_says_the_endpoint_is_gone() {
    let (result, _) = send_with_reply(Reply::status(410)).await;

    match result {
        Err(SendError::Permanent { reason }) => {
            assert!(reason.contains("the endpoint says it is gone"), "{reason}")
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn a_400_is_permanent_and_names_the_status() {
    let (result, _) = send_with_reply(Reply::status(400)).await;

    match result {
        Err(SendError::Permanent { reason }) => {
            assert!(reason.contains("400 Bad Request"), "{reason}")
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_transient_after_the_configured_timeout() {
    let receiver = Receiver::start(Reply::never()).await;
    let webhook = WebhookChannel::new(&WebhookConfig {
        allow_private: true,
        timeout_seconds: 1,
    })
    .expect("channel");
    let msg = message(
        &receiver.url("/hook"),
        &generate_secret(),
        occurrence("2026-12-07T08:00:00Z"),
    );

    let started = std::time::Instant::now();
    let result = webhook.send(&msg).await;

    assert!(
        matches!(&result, Err(SendError::Transient { reason, .. }) if reason.contains("within 1 s")),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(receiver.count(), 1);
}

/// Redirects count as permanent: retrying the same URL gets the same redirect, and following
/// it could lead inward. The reason names the host it pointed to.
#[tokio::test]
async fn a_redirect_is_not_followed_and_is_permanent() {
    let elsewhere = Receiver::start(ok()).await;
    let (result, receiver) =
        send_with_reply(Reply::status(302).header("location", elsewhere.url("/internal"))).await;

    match result {
        Err(SendError::Permanent { reason }) => {
            assert!(reason.contains("302 Found"), "{reason}");
            assert!(reason.contains("redirects are not followed"), "{reason}");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert_eq!(receiver.count(), 1);
    assert_eq!(elsewhere.count(), 0);
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_its_reason_names_the_host_only() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let msg = message(
        &format!("http://{addr}/hook?token=s3cr3t"),
        &generate_secret(),
        occurrence("2026-12-07T08:00:00Z"),
    );

    let result = channel(true).send(&msg).await;

    match result {
        Err(SendError::Transient { reason, .. }) => {
            assert!(
                reason.contains("could not connect to 127.0.0.1"),
                "{reason}"
            );
            assert!(!reason.contains("s3cr3t"), "{reason}");
        }
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invalid_secret_is_permanent_and_is_not_repeated_in_the_reason() {
    let receiver = Receiver::start(ok()).await;
    let msg = message(
        &receiver.url("/hook"),
        "whsec_dG9vLXNob3J0",
        occurrence("2026-12-07T08:00:00Z"),
    );

    let result = channel(true).send(&msg).await;

    match result {
        Err(SendError::Permanent { reason }) => {
            assert!(reason.contains("secret is not valid"), "{reason}");
            assert!(!reason.contains("dG9vLXNob3J0"), "{reason}");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert_eq!(receiver.count(), 0);
}

#[test]
fn generated_secrets_are_standard_and_sign_like_the_reference_implementation() {
    let secret = generate_secret();
    let a = secret.strip_prefix("whsec_").expect("prefix");
    assert_eq!(a.len(), 44, "32 bytes in base64");
    assert_ne!(secret, generate_secret());

    let body = br#"{"type":"reminder.due"}"#;
    let ours = sign(&secret, "msg_abc", 1_700_000_000, body).expect("sign");
    let theirs = standardwebhooks::Webhook::new(&secret)
        .expect("secret")
        .sign("msg_abc", 1_700_000_000, body)
        .expect("sign");
    assert_eq!(ours, theirs);

    let now = jiff::Timestamp::from_second(1_700_000_010).expect("ts");
    verify(&secret, "msg_abc", 1_700_000_000, body, &ours, now).expect("verifies");
    assert_eq!(
        verify(&secret, "msg_abc", 1_700_000_000, b"{}", &ours, now),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn the_config_has_safe_defaults_and_refuses_unknown_fields() {
    let config: WebhookConfig = serde_json::from_value(json!({})).expect("defaults");
    assert_eq!(
        config,
        WebhookConfig {
            allow_private: false,
            timeout_seconds: 10
        }
    );
    assert!(serde_json::from_value::<WebhookConfig>(json!({"allowPrivate": true})).is_err());
    assert!(WebhookChannel::new(&WebhookConfig {
        timeout_seconds: 0,
        ..WebhookConfig::default()
    })
    .is_err());
    assert_eq!(channel(false).kind(), chime_core::event::Channel::Webhook);
}
