//! Test helpers: start a server ([`spawn`]), call it with the typed client ([`client`]), as a
//! browser's session ([`browser`]), read its event stream ([`sse`]), wait for conditions with
//! a deadline.

mod browser;
mod client;
mod spawn;
mod sse;

use std::future::Future;
use std::time::Duration;

pub use browser::Browser;
pub use chime_testenv::receiver::{Receiver, Reply};
pub use client::{problem_of, reply_of, sample, TestClient};
pub use reqwest::StatusCode;
pub use spawn::{spawn_app, spawn_app_with, token_with, ChimeProcess, Serve, TestApp};

/// How long a test waits for something that should happen in milliseconds, before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Held for their whole run by the tests that load the machine for long and measure time
/// against a deadline (thousands of reminders, SIGKILL loops, the cluster, races against the
/// timer), so that two of them never share the two cores: each one's deadlines are sized for
/// the machine, not for half of it. A tokio mutex: it works across the tests' runtimes and is
/// not poisoned by a failing test.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `check` until it returns `Some`, failing the test after [`PATIENCE`]. For state
/// that changes through background work with no event the test can subscribe to.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_until(what, tokio::time::Instant::now() + PATIENCE, check).await
}

/// [`eventually`], failing at `deadline`.
pub async fn eventually_until<T, F, Fut>(
    what: &str,
    deadline: tokio::time::Instant,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        // Backoff of a poll with a deadline: there is no event to await.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An RFC 3339 instant `ms` milliseconds from now.
pub fn in_ms(ms: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(ms);
    jiff::Timestamp::from_millisecond(at.as_millisecond())
        .expect("in range")
        .to_string()
}

/// A port that was free a moment ago, for a server process that must be told its port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One occurrence: task id and due instant as the API writes them.
pub type Occurrence = (String, String);

/// What each webhook POST `receiver` saw names: its `webhook-id`, its occurrence, and when it
/// arrived.
pub fn webhook_hits(receiver: &Receiver) -> Vec<(String, Occurrence, jiff::Timestamp)> {
    receiver
        .requests()
        .iter()
        .map(|request| {
            let id = request.header("webhook-id").unwrap_or_default().to_owned();
            let payload: serde_json::Value =
                serde_json::from_slice(&request.body).unwrap_or_default();
            let field = |name: &str| {
                payload["data"][name]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            let at = jiff::Timestamp::try_from(request.received_at).expect("an arrival time");
            (id, (field("taskId"), field("dueAt")), at)
        })
        .collect()
}

/// A test parameter from the environment (`CHIME_…`), or `default`; a bad value fails loudly.
pub fn param<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
        Err(_) => default,
    }
}

/// Subscribes `client`'s user to web push at `endpoint`, as a browser does: its own P-256
/// key and auth secret (the server's public key fetched first, as the web app does).
pub async fn subscribe_push(client: &TestClient, endpoint: &str) {
    use base64::Engine as _;
    client
        .get::<serde_json::Value>("/api/v1/push/public-key", StatusCode::OK)
        .await;
    let browser = p256::SecretKey::random(&mut rand::thread_rng());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let p256dh = b64.encode(p256::EncodedPoint::from(browser.public_key()).as_bytes());
    let auth = b64.encode([7u8; 16]);
    client
        .post::<serde_json::Value>(
            "/api/v1/push/subscriptions",
            &serde_json::json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}),
            StatusCode::CREATED,
        )
        .await;
}

/// A reply in Twilio's shape to `url`, signed with `auth_token` (or not, when `None`).
pub async fn sms_reply(
    url: &str,
    auth_token: Option<&str>,
    from: &str,
    body: &str,
) -> (u16, String) {
    let params: Vec<(String, String)> = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "ACtest"),
        ("From", from),
        ("To", "+14075550000"),
        ("Body", body),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let signature = match auth_token {
        Some(token) => chime_channels::sms::request_signature(token, url, &params),
        None => "bm90IHRoZSBwcm92aWRlcidz".to_owned(),
    };
    let response = reqwest::Client::new()
        .post(url)
        .header("x-twilio-signature", signature)
        .form(&params)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}
