//! The SMS adapter against a local stand-in for Twilio: the exact request it makes, and how
//! each kind of answer (created, rate limited, refused, failing, silent, absent) becomes an
//! outcome. Each test starts its own provider on `127.0.0.1:0`, which records every request
//! it sees and answers as that test says.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use chime_channels::sms::{SmsChannel, SmsConfig, SmsConfigError, DEFAULT_BASE_URL};
use chime_channels::{ChannelAdapter, Recipient, Reminder, SendError, Sent};
use chime_core::event::OccurrenceKey;
use chime_core::{TaskId, TaskSpec, UserId};
use chime_testenv::receiver::{Receiver, Reply, Request};
use serde_json::{json, Value};

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "s3cret-auth-token";
const FROM: &str = "+15005550006";
const TO: &str = "+14075551212";

/// One request as the provider saw it, its form decoded.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    form: Vec<(String, String)>,
}

impl Seen {
    fn of(request: &Request) -> Seen {
        Seen {
            method: request.method.clone(),
            path: request.uri.to_string(),
            headers: request.headers.clone(),
            form: url::form_urlencoded::parse(&request.body)
                .into_owned()
                .collect(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A reply of `status` with a JSON body, as Twilio answers.
fn answer(status: StatusCode, body: Value) -> Reply {
    Reply::status(status.as_u16()).json(body.to_string())
}

/// Starts a provider answering every request with `reply`; returns it and its base URL.
async fn spawn_provider(reply: Reply) -> (Receiver, String) {
    let provider = Receiver::start(reply).await;
    let base_url = provider.base().to_owned();
    (provider, base_url)
}

fn config(base_url: &str) -> SmsConfig {
    serde_json::from_value(json!({
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from": FROM,
        "base_url": base_url,
        "timeout_seconds": 2,
    }))
    .unwrap()
}

fn channel(base_url: &str) -> SmsChannel {
    SmsChannel::new(&config(base_url)).unwrap()
}

/// An on-time occurrence of "Call mum", Monday 7 December 2026 at 09:00 in Berlin, by SMS.
fn message() -> Reminder {
    let task = TaskSpec::parse(&json!({
        "name": "Call mum",
        "startDate": "2026-12-07T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
        "notify": {"sms": "(407) 555-1212"},
    }))
    .unwrap();
    let occurrence = OccurrenceKey {
        task_id: TaskId::new(),
        due_at: task.schedule.start,
    };
    let recipient = Recipient::sms(task.notify.sms.as_ref().unwrap());
    Reminder {
        idempotency_key: format!("{occurrence}/sms"),
        occurrence,
        user_id: UserId::parse("alice").unwrap(),
        task,
        late: false,
        attempt: 1,
        recipient,
        actions: Vec::new(),
    }
}

fn created() -> Reply {
    answer(
        StatusCode::CREATED,
        json!({
            "sid": "SM0123456789abcdef0123456789abcdef",
            "account_sid": ACCOUNT_SID,
            "to": TO,
            "from": FROM,
            "body": "…",
            "status": "queued",
            "num_segments": "1",
            "error_code": null,
            "error_message": null,
        }),
    )
}

/// The one request the provider saw.
fn only(provider: &Receiver) -> Seen {
    let seen = provider.requests();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    Seen::of(&seen[0])
}

fn assert_no_secrets(error: &SendError) {
    let text = format!("{error} {error:?}");
    assert!(!text.contains("4075551212"), "{text}");
    assert!(!text.contains(AUTH_TOKEN), "{text}");
}

#[tokio::test]
async fn a_reminder_is_posted_as_twilio_expects_and_its_sid_is_the_provider_id() {
    let (provider, base_url) = spawn_provider(created()).await;
    let message = message();

    let sent = channel(&base_url).send(&message).await.unwrap();

    assert_eq!(
        sent,
        Sent {
            provider_id: Some("SM0123456789abcdef0123456789abcdef".into())
        }
    );
    let seen = only(&provider);
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Basic {credentials}").as_str())
    );
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.header("i-twilio-idempotency-token"),
        Some(message.idempotency_key.as_str())
    );
    let form: Vec<(&str, &str)> = seen
        .form
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        form,
        [
            ("To", TO),
            ("From", FROM),
            (
                "Body",
                "Reminder: Call mum - Monday 7 December 2026, 09:00 (Europe/Berlin)"
            ),
        ]
    );
}

#[tokio::test]
async fn a_late_reminder_says_so() {
    let (provider, base_url) = spawn_provider(created()).await;
    let message = Reminder {
        late: true,
        attempt: 3,
        ..message()
    };

    channel(&base_url).send(&message).await.unwrap();

    let seen = only(&provider);
    let body = seen.form.iter().find(|(k, _)| k == "Body").unwrap();
    assert_eq!(
        body.1,
        "Late reminder: Call mum - Monday 7 December 2026, 09:00 (Europe/Berlin)"
    );
}

#[tokio::test]
async fn when_replies_are_read_the_message_says_how_to_answer() {
    let (provider, base_url) = spawn_provider(created()).await;
    let replying = SmsConfig {
        inbound_url: Some("https://chime.example.com/sms/inbound".into()),
        ..config(&base_url)
    };

    SmsChannel::new(&replying)
        .unwrap()
        .send(&message())
        .await
        .unwrap();

    let seen = only(&provider);
    let body = seen.form.iter().find(|(k, _)| k == "Body").unwrap();
    assert_eq!(
        body.1,
        "Reminder: Call mum - Monday 7 December 2026, 09:00 (Europe/Berlin) Reply DONE, or \
         SNOOZE 30."
    );
    // A URL that is not one is refused at start, not at the first reply.
    assert!(SmsChannel::new(&SmsConfig {
        inbound_url: Some("sms/inbound".into()),
        ..config(&base_url)
    })
    .is_err());
}

#[tokio::test]
async fn a_messaging_service_is_sent_as_messaging_service_sid_instead_of_from() {
    let (provider, base_url) = spawn_provider(created()).await;
    let config = SmsConfig {
        from: "MG0123456789abcdef0123456789abcdef".into(),
        ..config(&base_url)
    };

    SmsChannel::new(&config)
        .unwrap()
        .send(&message())
        .await
        .unwrap();

    let keys: Vec<(String, String)> = only(&provider)
        .form
        .into_iter()
        .filter(|(k, _)| k != "Body")
        .collect();
    assert_eq!(
        keys,
        [
            ("To".to_owned(), TO.to_owned()),
            (
                "MessagingServiceSid".to_owned(),
                "MG0123456789abcdef0123456789abcdef".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_success_without_a_sid_is_still_sent_so_it_is_not_texted_twice() {
    let (_provider, base_url) =
        spawn_provider(answer(StatusCode::OK, json!({"status": "queued"}))).await;

    let sent = channel(&base_url).send(&message()).await.unwrap();

    assert_eq!(sent, Sent { provider_id: None });
}

#[tokio::test]
async fn a_429_is_transient_and_honours_retry_after_in_seconds() {
    let answer = answer(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
    )
    .header("retry-after", "7");
    let (provider, base_url) = spawn_provider(answer).await;

    let error = channel(&base_url).send(&message()).await.unwrap_err();

    let SendError::Transient {
        reason,
        retry_after,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(7)));
    assert!(reason.contains("429"), "{reason}");
    assert!(reason.contains("20429"), "{reason}");
    assert_no_secrets(&error);
    only(&provider);
}

#[tokio::test]
async fn a_429_honours_retry_after_as_an_http_date() {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&at)
        .unwrap();
    let answer = answer(StatusCode::TOO_MANY_REQUESTS, json!({})).header("retry-after", date);
    let (_provider, base_url) = spawn_provider(answer).await;

    let error = channel(&base_url).send(&message()).await.unwrap_err();

    let SendError::Transient {
        retry_after: Some(retry_after),
        ..
    } = error
    else {
        panic!("{error:?}");
    };
    // The date has whole seconds; the request takes some time.
    assert!(
        (Duration::from_secs(100)..=Duration::from_secs(120)).contains(&retry_after),
        "{retry_after:?}"
    );
}

#[tokio::test]
async fn a_400_with_twilio_error_21211_is_permanent_with_the_code_and_the_number_masked() {
    let answer = answer(
        StatusCode::BAD_REQUEST,
        json!({
            "code": 21211,
            "message": "The 'To' number +14075551212 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        }),
    );
    let (_provider, base_url) = spawn_provider(answer).await;

    let error = channel(&base_url).send(&message()).await.unwrap_err();

    let SendError::Permanent { reason } = &error else {
        panic!("{error:?}");
    };
    assert!(reason.contains("400"), "{reason}");
    assert!(reason.contains("21211"), "{reason}");
    assert!(reason.contains("is not a valid phone number"), "{reason}");
    assert!(reason.contains("+*********12"), "{reason}");
    assert_no_secrets(&error);
}

#[tokio::test]
async fn a_503_is_transient() {
    let answer = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"code": 20503, "message": "Service Unavailable", "status": 503}),
    );
    let (_provider, base_url) = spawn_provider(answer).await;

    let error = channel(&base_url).send(&message()).await.unwrap_err();

    let SendError::Transient {
        reason,
        retry_after,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*retry_after, None);
    assert!(reason.contains("503"), "{reason}");
}

#[tokio::test]
async fn a_5xx_with_retry_after_passes_the_delay_on() {
    let answer = answer(StatusCode::INTERNAL_SERVER_ERROR, json!({})).header("retry-after", "30");
    let (_provider, base_url) = spawn_provider(answer).await;

    let error = channel(&base_url).send(&message()).await.unwrap_err();

    assert!(
        matches!(error, SendError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(30)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_401_is_permanent_and_points_at_the_credentials() {
    let answer = answer(
        StatusCode::UNAUTHORIZED,
        json!({"code": 20003, "message": "Authenticate", "status": 401}),
    );
    let (_provider, base_url) = spawn_provider(answer).await;

    let error = channel(&base_url).send(&message()).await.unwrap_err();

    let SendError::Permanent { reason } = &error else {
        panic!("{error:?}");
    };
    assert!(reason.contains("401"), "{reason}");
    assert!(
        reason.contains("check account sid and auth token"),
        "{reason}"
    );
    assert_no_secrets(&error);
}

#[tokio::test]
async fn other_4xx_answers_are_permanent() {
    for status in [
        StatusCode::NOT_FOUND,
        StatusCode::FORBIDDEN,
        StatusCode::UNPROCESSABLE_ENTITY,
    ] {
        let (_provider, base_url) = spawn_provider(answer(status, json!({}))).await;

        let error = channel(&base_url).send(&message()).await.unwrap_err();

        assert!(
            matches!(&error, SendError::Permanent { reason } if reason.contains(status.as_str())),
            "{status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let answer = answer(StatusCode::FOUND, json!({})).header("location", "http://127.0.0.1:1/");
    let (provider, base_url) = spawn_provider(answer).await;

    let error = channel(&base_url).send(&message()).await.unwrap_err();

    assert!(matches!(error, SendError::Permanent { .. }), "{error:?}");
    only(&provider);
}

#[tokio::test]
async fn a_provider_that_never_answers_is_transient_within_the_timeout() {
    let (provider, base_url) = spawn_provider(Reply::never()).await;
    let config = SmsConfig {
        timeout_seconds: 1,
        ..config(&base_url)
    };
    let started = Instant::now();

    let error = SmsChannel::new(&config)
        .unwrap()
        .send(&message())
        .await
        .unwrap_err();

    let elapsed = started.elapsed();
    assert!(
        matches!(&error, SendError::Transient { reason, retry_after: None } if reason.contains("1 s")),
        "{error:?}"
    );
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&elapsed),
        "{elapsed:?}"
    );
    only(&provider);
}

#[tokio::test]
async fn a_provider_that_is_not_listening_is_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let error = channel(&base_url).send(&message()).await.unwrap_err();

    assert!(matches!(error, SendError::Transient { .. }), "{error:?}");
}

#[tokio::test]
async fn a_recipient_that_is_not_a_phone_number_is_permanent_and_nothing_is_sent() {
    let (provider, base_url) = spawn_provider(created()).await;
    let channel = channel(&base_url);
    for recipient in [
        Recipient::Email {
            address: "alice@example.com".into(),
        },
        Recipient::Sms {
            number: "4075551212".into(),
        },
    ] {
        let message = Reminder {
            recipient,
            ..message()
        };

        let error = channel.send(&message).await.unwrap_err();

        assert!(matches!(error, SendError::Permanent { .. }), "{error:?}");
        assert_no_secrets(&error);
    }
    assert_eq!(provider.count(), 0);
}

#[test]
fn the_channel_serves_sms() {
    assert_eq!(
        channel("https://api.twilio.com").kind(),
        chime_core::event::Channel::Sms
    );
}

#[test]
fn the_config_defaults_to_twilio_with_a_15_second_timeout_and_refuses_unknown_fields() {
    let config: SmsConfig = serde_json::from_value(json!({
        "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM,
    }))
    .unwrap();
    assert_eq!(config.base_url, DEFAULT_BASE_URL);
    assert_eq!(config.base_url, "https://api.twilio.com");
    assert_eq!(config.timeout_seconds, 15);
    SmsChannel::new(&config).unwrap();

    let unknown = serde_json::from_value::<SmsConfig>(json!({
        "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM, "token": "x",
    }));
    assert!(unknown.is_err());
}

#[test]
fn the_auth_token_never_prints() {
    let config = config("https://api.twilio.com");
    let printed = format!("{config:?} {:?}", SmsChannel::new(&config).unwrap());
    assert!(!printed.contains(AUTH_TOKEN), "{printed}");
    assert!(printed.contains("<redacted>"), "{printed}");
}

#[test]
fn an_unusable_config_is_refused_at_start_up() {
    let base = || config("https://api.twilio.com");
    let refused = |config: SmsConfig| SmsChannel::new(&config).unwrap_err();
    assert!(matches!(
        refused(SmsConfig {
            account_sid: "AC/../x".into(),
            ..base()
        }),
        SmsConfigError::AccountSid
    ));
    assert!(matches!(
        refused(SmsConfig {
            auth_token: String::new(),
            ..base()
        }),
        SmsConfigError::AuthToken
    ));
    for from in ["4075551212", "Chime", "MG", "MG-1", ""] {
        assert!(
            matches!(
                refused(SmsConfig {
                    from: from.into(),
                    ..base()
                }),
                SmsConfigError::From
            ),
            "{from}"
        );
    }
    for timeout_seconds in [0, 301] {
        assert!(matches!(
            refused(SmsConfig {
                timeout_seconds,
                ..base()
            }),
            SmsConfigError::Timeout(t) if t == timeout_seconds
        ));
    }
    for base_url in [
        "http://api.twilio.com",
        "ftp://api.twilio.com",
        "api.twilio.com",
        "https://user:pass@api.twilio.com",
        "https://api.twilio.com/?x=1",
    ] {
        assert!(
            matches!(
                refused(SmsConfig {
                    base_url: base_url.into(),
                    ..base()
                }),
                SmsConfigError::BaseUrl(_)
            ),
            "{base_url}"
        );
    }
    for base_url in [
        "http://localhost:8080",
        "http://[::1]:1",
        "https://example.signalwire.com/api/laml/",
    ] {
        SmsChannel::new(&SmsConfig {
            base_url: base_url.into(),
            ..base()
        })
        .unwrap();
    }
}
