//! A loopback HTTP receiver for tests: a webhook endpoint, an SMS provider, a push service, an
//! OTLP collector. It listens on `127.0.0.1:0`, records every request (method, URI, headers,
//! body, arrival time) and answers each with the [`Reply`] the test chose, fixed or computed
//! from the request and its number. A test awaits the request it expects
//! ([`Receiver::nth`]) under a deadline, instead of sleeping and then looking.
//!
//! The server runs on a task of the test's runtime and stops with it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request as AxumRequest, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use tokio::sync::watch;

/// How long [`Receiver::nth`] waits for a request before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The largest request body the receiver reads.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived, by the system clock.
    pub received_at: SystemTime,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// A header's value; `None` when absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the receiver answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status, headers and a body.
    Answer {
        status: StatusCode,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// Take the request and never answer it (a hanging endpoint).
    Never,
}

impl Reply {
    /// `status` with no body.
    pub fn status(status: u16) -> Reply {
        Reply::Answer {
            status: StatusCode::from_u16(status).expect("a valid HTTP status"),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Never answer.
    pub fn never() -> Reply {
        Reply::Never
    }

    /// The same, with one more header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        if let Reply::Answer { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.into()));
        }
        self
    }

    /// The same, with `body` (already serialized JSON) as an `application/json` body.
    pub fn json(self, body: impl Into<String>) -> Reply {
        self.header("content-type", "application/json")
            .body(body.into())
    }

    /// The same, with `body` as it is.
    pub fn body(mut self, bytes: impl Into<Bytes>) -> Reply {
        if let Reply::Answer { body, .. } = &mut self {
            *body = bytes.into();
        }
        self
    }

    async fn into_response(self) -> Response {
        let Reply::Answer {
            status,
            headers,
            body,
        } = self
        else {
            return std::future::pending().await;
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        for (name, value) in headers {
            response.headers_mut().insert(
                HeaderName::try_from(name).expect("a header name"),
                HeaderValue::try_from(value).expect("a header value"),
            );
        }
        response
    }
}

type Answer = dyn Fn(&Request, usize) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Request>>,
    count: watch::Sender<usize>,
    answer: Box<Answer>,
    /// Stops the server (see [`Receiver::stop`]).
    server: Mutex<Option<tokio::task::AbortHandle>>,
}

/// A running receiver; clones share it.
#[derive(Clone)]
pub struct Receiver {
    base: String,
    shared: Arc<Shared>,
}

impl Receiver {
    /// A receiver answering every request with `reply`.
    pub async fn start(reply: Reply) -> Receiver {
        Receiver::answering(move |_, _| reply.clone()).await
    }

    /// A receiver answering each request with what `answer` returns for it and its number
    /// (the first request is 1).
    pub async fn answering(
        answer: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        Receiver::answering_at(0, answer).await
    }

    /// [`Receiver::answering`] on `127.0.0.1:port` (0: any free port), so that a test can
    /// bring a stopped server back where its clients look for it.
    pub async fn answering_at(
        port: u16,
        answer: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        let shared = Arc::new(Shared {
            requests: Mutex::default(),
            count: watch::Sender::new(0),
            answer: Box::new(answer),
            server: Mutex::default(),
        });
        let app = Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("bind the receiver to 127.0.0.1:{port}: {e}"));
        let addr = listener.local_addr().expect("the receiver's address");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        *shared.server.lock().expect("lock") = Some(server.abort_handle());
        Receiver {
            base: format!("http://{addr}"),
            shared,
        }
    }

    /// Stops listening and drops open connections: clients get "connection refused", as
    /// from a server that went down.
    pub fn stop(&self) {
        if let Some(server) = self.shared.server.lock().expect("lock").take() {
            server.abort();
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (which starts with `/`) on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// How many requests have arrived.
    pub fn count(&self) -> usize {
        *self.shared.count.borrow()
    }

    /// The `n`th request (the first is 1), once it has arrived; fails the test after
    /// [`PATIENCE`].
    pub async fn nth(&self, n: usize) -> Request {
        self.nth_within(n, PATIENCE).await
    }

    /// [`Receiver::nth`] with a deadline of its own.
    pub async fn nth_within(&self, n: usize, patience: Duration) -> Request {
        assert!(n >= 1, "requests are counted from 1");
        let mut count = self.shared.count.subscribe();
        let arrived = tokio::time::timeout(patience, count.wait_for(|&c| c >= n)).await;
        assert!(
            arrived.is_ok(),
            "{}: request {n} did not arrive within {patience:?} ({} arrived)",
            self.base,
            self.count()
        );
        self.shared.requests.lock().expect("lock")[n - 1].clone()
    }
}

async fn record(State(shared): State<Arc<Shared>>, request: AxumRequest) -> Response {
    let received_at = SystemTime::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let request = Request {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        received_at,
    };
    let n = {
        let mut requests = shared.requests.lock().expect("lock");
        requests.push(request.clone());
        // Under the lock: counts are published in the order the requests were recorded.
        shared.count.send_replace(requests.len());
        requests.len()
    };
    (shared.answer)(&request, n).into_response().await
}
