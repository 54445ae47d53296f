//! Test helpers: spawn a server, call it, wait for conditions with a deadline.

use std::future::Future;
use std::time::Duration;

use chime::{Config, Running};
use chime_core::UserId;
use futures::StreamExt;
use serde_json::Value;
use tempfile::TempDir;

/// How long a test waits for something that should happen in milliseconds, before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Held for their whole run by the tests that load the machine for long and measure time
/// against a deadline (thousands of reminders, SIGKILL loops, the cluster, races against the
/// timer), so that two of them never share the two cores: each one's deadlines are sized for
/// the machine, not for half of it. A tokio mutex: it works across the tests' runtimes and is
/// not poisoned by a failing test.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct TestApp {
    pub running: Running,
    pub base: String,
    pub client: reqwest::Client,
    pub _dir: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    };
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind");
    let running = chime::start(&config, listener).await.expect("start");
    TestApp {
        base: format!("http://{}", running.addr),
        running,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl TestApp {
    pub fn token(&self, user: &str) -> String {
        self.running
            .issuer
            .sign(
                &UserId::parse(user).expect("user"),
                Duration::from_secs(600),
            )
            .expect("sign")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, user: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(self.token(user))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, user: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(self.token(user))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, user: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(self.token(user))
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, user: &str, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(self.token(user))
            .send()
            .await
            .expect("request")
    }

    /// Creates a task and returns its JSON; panics unless 201.
    pub async fn create(&self, user: &str, body: &Value) -> Value {
        let response = self.post(user, "/api/v1/tasks", body).await;
        let status = response.status();
        let json: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "create failed: {json}");
        json
    }
}

/// Creates a task at the API on `base` (a server, or a gateway in front of several) and
/// returns it; panics unless 201.
pub async fn post_task(client: &reqwest::Client, base: &str, token: &str, body: &Value) -> Value {
    let response = client
        .post(format!("{base}/api/v1/tasks"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("create");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 201, "create failed: {text}");
    serde_json::from_str(&text).expect("json")
}

/// Polls `check` until it returns `Some`, failing the test after [`PATIENCE`]. For state
/// that changes through background work with no event the test can subscribe to.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A Server-Sent Events reader.
pub struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

impl SseReader {
    pub async fn open(client: &reqwest::Client, url: &str, token: &str) -> SseReader {
        let response = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("sse request");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .expect("content type")
            .starts_with("text/event-stream"));
        SseReader {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped), failing after [`PATIENCE`].
    pub async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(PATIENCE, self.next_inner())
            .await
            .expect("timed out waiting for an SSE event")
    }

    /// The next event's name (comments and keep-alives skipped), or `None` once the stream
    /// ends; with no time limit, for a reader that runs beside the test.
    pub async fn next_until_closed(&mut self) -> Option<String> {
        self.next_or_end().await.map(|e| e.event)
    }

    async fn next_inner(&mut self) -> SseEvent {
        self.next_or_end().await.expect("the SSE stream ended")
    }

    pub async fn next_or_end(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.trim_start());
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue;
            }
            let chunk = match self.stream.next().await? {
                Ok(chunk) => chunk,
                Err(_) => return None,
            };
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
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

/// `chime token --user USER --data-dir DIR [--listen 127.0.0.1:PORT]` from the real binary: a
/// token of the local issuer, whose `iss` is the server's `http://{listen}`.
pub fn binary_token(dir: &std::path::Path, port: Option<u16>, user: &str) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_chime"));
    command
        .args(["token", "--user", user, "--data-dir"])
        .arg(dir);
    if let Some(port) = port {
        command.args(["--listen", &format!("127.0.0.1:{port}")]);
    }
    let out = command.output().expect("chime token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// Waits until the server at `base` answers `/readyz` (a process just started).
pub async fn await_ready(base: &str) {
    let client = reqwest::Client::new();
    eventually("the server to be ready", || {
        let (client, url) = (client.clone(), format!("{base}/readyz"));
        async move {
            let r = client.get(url).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
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

/// Every page of a cursor-paginated list under `key`.
pub async fn all_pages(client: &reqwest::Client, url: &str, token: &str, key: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = client
            .get(url)
            .bearer_auth(token)
            .query(&[("limit", "1000")]);
        if let Some(c) = &cursor {
            request = request.query(&[("cursor", c)]);
        }
        let response = request.send().await.expect("list");
        assert_eq!(response.status(), 200, "GET {url}");
        let page: Value = response.json().await.expect("json");
        items.extend(page[key].as_array().expect("list").iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}
