//! The typed test client: each call states the status it expects, asserts it (the response
//! body is in the failure message) and decodes the body in the same call, as svix's test
//! client does. Problems (`application/problem+json`) have calls of their own, which check
//! the content type too. Tests of raw HTTP behaviour (headers, framing, hostile input) build
//! their request with [`TestClient::request`] and read the response themselves.

use std::fmt;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::sse::SseReader;

/// A client of one server (or of a gateway in front of several), calling as one user.
#[derive(Clone)]
pub struct TestClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
}

/// A decoded body and the headers that came with it.
#[derive(Debug)]
pub struct Reply<T> {
    pub headers: HeaderMap,
    pub body: T,
}

/// An RFC 9457 problem: its body, and the headers that came with it (`Retry-After`, …).
#[derive(Debug)]
pub struct Problem {
    pub headers: HeaderMap,
    pub body: Value,
}

impl std::ops::Index<&str> for Problem {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        &self.body[key]
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.body.fmt(f)
    }
}

impl TestClient {
    /// A client of the server at `base` (`http://127.0.0.1:PORT`), with no token.
    pub fn new(base: impl Into<String>) -> TestClient {
        TestClient::with_http(reqwest::Client::new(), base)
    }

    /// [`TestClient::new`] through `http` (one that trusts a test certificate, say).
    pub fn with_http(http: reqwest::Client, base: impl Into<String>) -> TestClient {
        TestClient {
            http,
            base: base.into(),
            token: None,
            headers: Vec::new(),
        }
    }

    /// The same server, calling with `token`.
    pub fn bearer(&self, token: impl Into<String>) -> TestClient {
        TestClient {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The same, sending one more header with every request (a session cookie, say).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> TestClient {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, with the token if there is one: for tests that look at the raw
    /// response.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, status: StatusCode) -> T {
        self.expect(self.request(Method::GET, path), status)
            .await
            .body
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        status: StatusCode,
    ) -> T {
        self.expect(self.request(Method::POST, path).json(body), status)
            .await
            .body
    }

    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        status: StatusCode,
    ) -> T {
        self.expect(self.request(Method::PUT, path).json(body), status)
            .await
            .body
    }

    /// A `DELETE`; `T` is `()` for a 204.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str, status: StatusCode) -> T {
        self.expect(self.request(Method::DELETE, path), status)
            .await
            .body
    }

    pub async fn get_problem(&self, path: &str, status: StatusCode) -> Problem {
        self.problem(self.request(Method::GET, path), status).await
    }

    pub async fn post_problem(
        &self,
        path: &str,
        body: &impl Serialize,
        status: StatusCode,
    ) -> Problem {
        self.problem(self.request(Method::POST, path).json(body), status)
            .await
    }

    pub async fn put_problem(
        &self,
        path: &str,
        body: &impl Serialize,
        status: StatusCode,
    ) -> Problem {
        self.problem(self.request(Method::PUT, path).json(body), status)
            .await
    }

    pub async fn delete_problem(&self, path: &str, status: StatusCode) -> Problem {
        self.problem(self.request(Method::DELETE, path), status)
            .await
    }

    /// Sends `request`, asserts the status and decodes the body (an empty body as JSON
    /// `null`, so `()` for a 204); with the headers.
    pub async fn expect<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        status: StatusCode,
    ) -> Reply<T> {
        let (what, headers, text) = send(request, status).await;
        to_reply(&what, headers, &text)
    }

    /// Sends `request` and asserts that the answer is a problem with `status`.
    pub async fn problem(&self, request: RequestBuilder, status: StatusCode) -> Problem {
        let (what, headers, text) = send(request, status).await;
        to_problem(&what, headers, &text, status)
    }

    /// `GET path` decoded, or `None` if it fails or is not a success: for polling state that
    /// is still changing (see [`super::eventually`]).
    pub async fn try_get<T: DeserializeOwned>(&self, path: &str) -> Option<T> {
        let response = self.request(Method::GET, path).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// Creates a task; panics unless 201.
    pub async fn create_task(&self, body: &Value) -> Value {
        self.post("/api/v1/tasks", body, StatusCode::CREATED).await
    }

    /// Points the user's webhook at `url`; the webhook's JSON, its secret with it.
    pub async fn set_webhook(&self, url: &str) -> Value {
        self.put("/api/v1/webhook", &json!({ "url": url }), StatusCode::OK)
            .await
    }

    /// Every page of a cursor-paginated list under `key`.
    pub async fn all_pages(&self, path: &str, key: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut request = self.request(Method::GET, path).query(&[("limit", "1000")]);
            if let Some(c) = &cursor {
                request = request.query(&[("cursor", c)]);
            }
            let page: Value = self.expect(request, StatusCode::OK).await.body;
            items.extend(page[key].as_array().expect("a list").iter().cloned());
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let (_, _, text) = send(self.request(Method::GET, "/metrics"), StatusCode::OK).await;
        text
    }

    /// Opens the event stream at `path`.
    pub async fn sse(&self, path: &str) -> SseReader {
        SseReader::open(self.request(Method::GET, path)).await
    }
}

/// Asserts that `response`, already received, has `status`, and decodes it as
/// [`TestClient::expect`] does.
pub async fn reply_of<T: DeserializeOwned>(response: Response, status: StatusCode) -> Reply<T> {
    let what = response.url().path().to_owned();
    let (headers, text) = read(&what, response, status).await;
    to_reply(&what, headers, &text)
}

fn to_reply<T: DeserializeOwned>(what: &str, headers: HeaderMap, text: &str) -> Reply<T> {
    let json = if text.is_empty() { "null" } else { text };
    let body = serde_json::from_str(json).unwrap_or_else(|e| {
        panic!(
            "{what}: the body is not a {}: {e}: {text}",
            std::any::type_name::<T>()
        )
    });
    Reply { headers, body }
}

/// Asserts that `response`, already received, is a problem with `status`.
pub async fn problem_of(response: Response, status: StatusCode) -> Problem {
    let what = response.url().path().to_owned();
    let (headers, text) = read(&what, response, status).await;
    to_problem(&what, headers, &text, status)
}

fn to_problem(what: &str, headers: HeaderMap, text: &str, status: StatusCode) -> Problem {
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{what}: {text}"
    );
    let body: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
    Problem { headers, body }
}

/// Sends `request` and asserts its status: what was asked (for messages), the headers and the
/// body's text.
async fn send(request: RequestBuilder, status: StatusCode) -> (String, HeaderMap, String) {
    let (client, request) = request.build_split();
    let request = request.expect("a valid request");
    let what = format!("{} {}", request.method(), request.url().path());
    let response = client
        .execute(request)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (headers, text) = read(&what, response, status).await;
    (what, headers, text)
}

/// The headers and text of `response`, once its status is asserted.
async fn read(what: &str, response: Response, status: StatusCode) -> (HeaderMap, String) {
    let got = response.status();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
    assert_eq!(got, status, "{what} answered {got}: {text}");
    (headers, text)
}

/// The value of the sample `series` (name and labels exactly as exposed) in a `/metrics`
/// scrape, if present.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}
