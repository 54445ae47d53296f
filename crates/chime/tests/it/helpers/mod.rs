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
