//! The email adapter against a real SMTP server: `chime_testenv::smtp` (aiosmtpd,
//! `pip install aiosmtpd`), one per test on its own port, which saves every message it accepts
//! so the test can read back exactly what a relay would have received.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chime_channels::email::{EmailChannel, EmailConfig};
use chime_channels::{
    local_due_time, ChannelAdapter, Recipient, Reminder, ReminderAction, SendError,
};
use chime_core::event::OccurrenceKey;
use chime_core::{TaskId, TaskSpec, UserId};
use mail_parser::{MessageParser, PartType};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpListener;

const RECIPIENT: &str = "bob@example.com";
const FROM: &str = "Chime <reminders@chime.test>";
const APP: &str = "https://chime.example.com";

// --- the server -------------------------------------------------------------------------

/// A running `smtp_server.py` (`chime_testenv::smtp`) saving into a directory of its own.
struct SmtpServer {
    port: u16,
    server: chime_testenv::smtp::SmtpServer,
    _dir: TempDir,
}

/// One message the server accepted.
struct Received {
    /// `mail_from`, `rcpt_tos`, `auth_login`, `tls`, `peer`.
    envelope: Value,
    raw: Vec<u8>,
}

impl SmtpServer {
    /// Starts the script with `args`; returns once it is ready.
    async fn start(args: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = chime_testenv::smtp::SmtpServer::start(dir.path(), args).await;
        SmtpServer {
            port: server.port,
            server,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    /// Everything accepted so far, in arrival order. The server writes each file before it
    /// answers `250`, so after a successful send the message is here.
    fn received(&self) -> Vec<Received> {
        self.server
            .saved()
            .into_iter()
            .map(|saved| Received {
                envelope: serde_json::from_str(&saved.envelope).expect("envelope json"),
                raw: saved.raw,
            })
            .collect()
    }

    fn only_message(&self) -> Received {
        let mut all = self.received();
        assert_eq!(all.len(), 1, "expected exactly one message");
        all.remove(0)
    }
}

// --- messages ---------------------------------------------------------------------------

/// A one-time task in Europe/Berlin due Monday 7 December 2026 at 09:00 local (08:00 UTC).
fn message_for(name: &str, description: Option<&str>) -> Reminder {
    let task = TaskSpec::parse(&json!({
        "name": name,
        "description": description,
        "startDate": "2026-12-07T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
        "notify": { "email": RECIPIENT },
    }))
    .expect("a valid task");
    let occurrence = OccurrenceKey {
        task_id: TaskId::new(),
        due_at: "2026-12-07T08:00:00Z".parse().expect("timestamp"),
    };
    Reminder {
        idempotency_key: format!("{occurrence}/email"),
        occurrence,
        user_id: UserId::parse("alice").expect("user id"),
        task,
        late: false,
        attempt: 1,
        recipient: Recipient::Email {
            address: RECIPIENT.to_owned(),
        },
        actions: Vec::new(),
    }
}

fn message() -> Reminder {
    message_for("Water the plants", Some("The ficus too.\nAnd the basil."))
}

fn config(url: String) -> EmailConfig {
    EmailConfig {
        app_base_url: Some(format!("{APP}/")),
        timeout_seconds: 10,
        ..EmailConfig::new(url, FROM)
    }
}

fn channel(config: &EmailConfig) -> EmailChannel {
    EmailChannel::new(config).expect("a valid email config")
}

/// The plain-text and HTML parts of a `multipart/alternative` message.
fn parts(raw: &[u8]) -> (String, String) {
    let parsed = MessageParser::default().parse(raw).expect("a MIME message");
    let content_type = parsed.header_raw("Content-Type").unwrap_or_default();
    assert!(
        content_type
            .trim_start()
            .starts_with("multipart/alternative"),
        "{content_type}"
    );
    let mut text = Vec::new();
    let mut html = Vec::new();
    for part in &parsed.parts {
        match &part.body {
            PartType::Text(t) => text.push(t.to_string()),
            PartType::Html(h) => html.push(h.to_string()),
            PartType::Multipart(_) => {}
            other => panic!("unexpected part {other:?}"),
        }
    }
    assert_eq!(
        (text.len(), html.len()),
        (1, 1),
        "one text and one HTML part"
    );
    (text.remove(0), html.remove(0))
}

fn assert_transient(result: Result<chime_channels::Sent, SendError>) -> String {
    match result {
        Err(SendError::Transient { reason, .. }) => reason,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

fn assert_permanent(result: Result<chime_channels::Sent, SendError>) -> String {
    match result {
        Err(SendError::Permanent { reason }) => reason,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

// --- delivery ---------------------------------------------------------------------------

#[tokio::test]
async fn a_reminder_reaches_the_server_with_envelope_and_headers() {
    let server = SmtpServer::start(&[]).await;
    let message = message();

    let sent = channel(&config(server.url()))
        .send(&message)
        .await
        .expect("sent");

    assert_eq!(
        sent.provider_id.as_deref(),
        Some("250 OK queued as chime-test-1")
    );
    let received = server.only_message();
    assert_eq!(received.envelope["mail_from"], "reminders@chime.test");
    assert_eq!(received.envelope["rcpt_tos"], json!([RECIPIENT]));

    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("a MIME message");
    let from = parsed.from().and_then(|f| f.first()).expect("From");
    assert_eq!(
        (from.name(), from.address()),
        (Some("Chime"), Some("reminders@chime.test"))
    );
    let to = parsed.to().and_then(|t| t.first()).expect("To");
    assert_eq!(to.address(), Some(RECIPIENT));
    assert_eq!(parsed.subject(), Some("Reminder: Water the plants"));
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    assert_eq!(
        parsed.header_raw("X-Chime-Occurrence").map(str::trim),
        Some(message.idempotency_key.as_str())
    );
    let id = parsed.message_id().expect("Message-ID");
    assert!(
        id.ends_with("@chime") && id.len() == 32 + "@chime".len(),
        "{id}"
    );
}

#[tokio::test]
async fn both_parts_give_name_description_local_due_time_and_link() {
    let server = SmtpServer::start(&[]).await;
    let message = message();

    channel(&config(server.url()))
        .send(&message)
        .await
        .expect("sent");

    let (text, html) = parts(&server.only_message().raw);
    let due = local_due_time(&message);
    assert_eq!(due, "Monday 7 December 2026, 09:00 (Europe/Berlin)");
    let link = format!("{APP}/tasks/{}", message.occurrence.task_id);
    for (kind, body) in [("text", &text), ("html", &html)] {
        assert!(body.contains("Water the plants"), "{kind}: {body}");
        assert!(body.contains("The ficus too."), "{kind}: {body}");
        assert!(body.contains("And the basil."), "{kind}: {body}");
        assert!(body.contains(&due), "{kind}: {body}");
        assert!(!body.contains("08:00"), "{kind} shows the UTC hour: {body}");
        assert!(body.contains(&link), "{kind}: {body}");
        assert!(!body.contains("late"), "{kind}: {body}");
    }
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
}

#[tokio::test]
async fn user_text_is_html_escaped_in_the_html_part_and_verbatim_in_the_text_part() {
    let server = SmtpServer::start(&[]).await;
    let message = message_for("<b>&", Some("<script>alert(\"x\")</script> & 'so'"));

    channel(&config(server.url()))
        .send(&message)
        .await
        .expect("sent");

    let received = server.only_message();
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("a MIME message");
    assert_eq!(parsed.subject(), Some("Reminder: <b>&"));
    let (text, html) = parts(&received.raw);
    assert!(text.contains("<b>&"), "{text}");
    assert!(
        text.contains("<script>alert(\"x\")</script> & 'so'"),
        "{text}"
    );
    assert!(html.contains("&lt;b&gt;&amp;"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;so&#39;"),
        "{html}"
    );
    assert!(
        !html.contains("<b>&") && !html.contains("<script>"),
        "{html}"
    );
}

#[tokio::test]
async fn a_name_that_is_itself_an_encoded_word_shows_as_typed_not_decoded() {
    let server = SmtpServer::start(&[]).await;
    let name = "=?utf-8?q?Bcc=3A_x=40evil.example?= and a long tail ü to fold over lines";
    let message = message_for(name, None);

    channel(&config(server.url()))
        .send(&message)
        .await
        .expect("sent");

    let received = server.only_message();
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("a MIME message");
    assert_eq!(parsed.subject(), Some(format!("Reminder: {name}").as_str()));
    let raw = String::from_utf8_lossy(&received.raw);
    assert!(
        !raw.contains("Bcc=3A"),
        "the name went into a header raw:\n{raw}"
    );
    let subject_lines = raw
        .split("\r\n")
        .skip_while(|l| !l.starts_with("Subject:"))
        .take_while(|l| l.starts_with("Subject:") || l.starts_with(' '))
        .collect::<Vec<_>>();
    assert!(subject_lines.len() > 1, "{subject_lines:?}");
    assert!(
        subject_lines.iter().all(|l| l.len() <= 78),
        "{subject_lines:?}"
    );
}

#[tokio::test]
async fn a_late_reminder_says_so_in_the_subject_and_both_parts() {
    let server = SmtpServer::start(&[]).await;
    let mut message = message();
    message.late = true;

    channel(&config(server.url()))
        .send(&message)
        .await
        .expect("sent");

    let received = server.only_message();
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("a MIME message");
    assert_eq!(parsed.subject(), Some("Late reminder: Water the plants"));
    let (text, html) = parts(&received.raw);
    for body in [&text, &html] {
        assert!(body.contains("This reminder is late"), "{body}");
    }
}

#[tokio::test]
async fn both_parts_carry_each_action_link_in_order() {
    let server = SmtpServer::start(&[]).await;
    let message = Reminder {
        actions: vec![
            ReminderAction {
                kind: "done",
                label: "Done".into(),
                token: "tok.done".into(),
                callback: None,
            },
            ReminderAction {
                kind: "snooze",
                label: "Snooze 1 hour".into(),
                token: "tok.snooze".into(),
                callback: None,
            },
        ],
        ..message()
    };

    channel(&config(server.url()))
        .send(&message)
        .await
        .expect("sent");

    let (text, html) = parts(&server.only_message().raw);
    let text = text.replace("\r\n", "\n");
    assert!(
        text.contains(&format!(
            "Done: {APP}/act/tok.done\nSnooze 1 hour: {APP}/act/tok.snooze\n"
        )),
        "{text}"
    );
    let done = html
        .find(&format!("href=\"{APP}/act/tok.done\""))
        .expect("the Done link");
    let snooze = html
        .find(&format!("href=\"{APP}/act/tok.snooze\""))
        .expect("the Snooze link");
    assert!(done < snooze, "{html}");
    assert!(html.contains(">Snooze 1 hour</a>"), "{html}");
}

#[tokio::test]
async fn without_an_app_base_url_there_is_no_link_and_no_description_is_fine() {
    let server = SmtpServer::start(&[]).await;
    // Actions need the app's address too.
    let message = Reminder {
        actions: vec![ReminderAction {
            kind: "done",
            label: "Done".into(),
            token: "tok.done".into(),
            callback: None,
        }],
        ..message_for("Call mum", None)
    };

    channel(&EmailConfig::new(server.url(), FROM))
        .send(&message)
        .await
        .expect("sent");

    let (text, html) = parts(&server.only_message().raw);
    for body in [&text, &html] {
        assert!(body.contains("Call mum"), "{body}");
        assert!(!body.contains("/tasks/"), "{body}");
        assert!(!body.contains("Open the task"), "{body}");
        assert!(!body.contains("/act/"), "{body}");
    }
    assert!(!html.contains("href"), "{html}");
}

#[tokio::test]
async fn a_resend_has_the_same_message_id_and_another_occurrence_a_different_one() {
    let server = SmtpServer::start(&[]).await;
    let channel = channel(&config(server.url()));
    let first = message();
    let mut retry = first.clone();
    retry.attempt = 2;
    let other = message();

    for m in [&first, &retry, &other] {
        channel.send(m).await.expect("sent");
    }

    let ids: Vec<String> = server
        .received()
        .iter()
        .map(|r| {
            MessageParser::default()
                .parse(&r.raw)
                .and_then(|p| p.message_id().map(str::to_owned))
                .expect("Message-ID")
        })
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
}

#[tokio::test]
async fn credentials_in_the_url_authenticate_with_the_server() {
    let server = SmtpServer::start(&["--auth", "chime:p@ss word"]).await;
    let url = format!("smtp://chime:p%40ss%20word@127.0.0.1:{}", server.port);

    channel(&config(url)).send(&message()).await.expect("sent");

    assert_eq!(server.only_message().envelope["auth_login"], "chime");
}

#[tokio::test]
async fn wrong_credentials_are_permanent_and_the_reason_hides_them() {
    let server = SmtpServer::start(&["--auth", "chime:right"]).await;
    let url = format!("smtp://chime:hunter2@127.0.0.1:{}", server.port);

    let reason = assert_permanent(channel(&config(url)).send(&message()).await);

    assert!(reason.contains("535"), "{reason}");
    assert!(!reason.contains("hunter2"), "{reason}");
    assert!(server.received().is_empty());
}

// --- failures ---------------------------------------------------------------------------

#[tokio::test]
async fn a_550_reply_is_permanent_with_the_servers_text_but_not_the_address() {
    let server = SmtpServer::start(&[
        "--rcpt-reply",
        "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
    ])
    .await;

    let reason = assert_permanent(channel(&config(server.url())).send(&message()).await);

    assert!(reason.contains("550"), "{reason}");
    assert!(reason.contains("User unknown"), "{reason}");
    assert!(!reason.contains(RECIPIENT), "{reason}");
    assert!(!reason.contains("bob"), "{reason}");
}

#[tokio::test]
async fn a_451_reply_is_transient() {
    let server =
        SmtpServer::start(&["--data-reply", "451 4.3.0 Try again later, queue is full"]).await;

    let reason = assert_transient(channel(&config(server.url())).send(&message()).await);

    assert!(reason.contains("451"), "{reason}");
    assert!(reason.contains("queue is full"), "{reason}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // A port that was free a moment ago and has nobody listening now.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();

    let reason = assert_transient(
        channel(&config(format!("smtp://127.0.0.1:{port}")))
            .send(&message())
            .await,
    );

    assert!(reason.to_lowercase().contains("refused"), "{reason}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_transient_within_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accept and hold every connection without writing a byte (no SMTP greeting).
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = EmailConfig {
        timeout_seconds: 1,
        ..config(format!("smtp://127.0.0.1:{port}"))
    };

    let started = Instant::now();
    let reason = assert_transient(channel(&config).send(&message()).await);
    let took = started.elapsed();

    assert!(reason.contains("within 1 s"), "{reason}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    silent.abort();
}

#[tokio::test]
async fn a_recipient_of_another_kind_is_permanent() {
    let mut message = message();
    message.recipient = Recipient::Sms {
        number: "+14075551212".into(),
    };

    // Never connects: the port does not matter.
    let reason = assert_permanent(
        channel(&config("smtp://127.0.0.1:9".into()))
            .send(&message)
            .await,
    );

    assert!(reason.contains("not an email address"), "{reason}");
}

// --- TLS --------------------------------------------------------------------------------

/// A self-signed certificate for 127.0.0.1 and localhost, as `cert.pem` and `key.pem`.
fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    (cert, key)
}

async fn tls_server(certs: &Path, extra: &[&str]) -> SmtpServer {
    let cert = certs.join("cert.pem");
    let key = certs.join("key.pem");
    let mut args = vec![
        "--tls-cert",
        cert.to_str().expect("utf-8 path"),
        "--tls-key",
        key.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    SmtpServer::start(&args).await
}

#[tokio::test]
async fn starttls_with_a_ca_file_trusting_the_servers_certificate_delivers() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, _) = self_signed_certificate(certs.path());
    let server = tls_server(certs.path(), &["--auth", "chime:secret"]).await;
    let config = EmailConfig {
        tls_ca_file: Some(cert),
        ..config(format!(
            "smtp://chime:secret@127.0.0.1:{}?tls=required",
            server.port
        ))
    };

    channel(&config).send(&message()).await.expect("sent");

    let received = server.only_message();
    assert_eq!(received.envelope["tls"], true);
    assert_eq!(received.envelope["auth_login"], "chime");
}

#[tokio::test]
async fn starttls_with_an_untrusted_certificate_is_transient_and_sends_nothing() {
    let certs = tempfile::tempdir().expect("temp dir");
    self_signed_certificate(certs.path());
    let server = tls_server(certs.path(), &[]).await;

    let reason = assert_transient(
        channel(&config(format!(
            "smtp://127.0.0.1:{}?tls=required",
            server.port
        )))
        .send(&message())
        .await,
    );

    assert!(reason.contains("certificate"), "{reason}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn smtps_implicit_tls_with_a_ca_file_delivers() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, _) = self_signed_certificate(certs.path());
    let server = tls_server(certs.path(), &["--implicit-tls"]).await;
    let config = EmailConfig {
        tls_ca_file: Some(cert),
        ..config(format!("smtps://127.0.0.1:{}", server.port))
    };

    channel(&config).send(&message()).await.expect("sent");

    assert_eq!(server.only_message().envelope["tls"], true);
}
