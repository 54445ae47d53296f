//! Hostile requests against the real server, written on raw TCP where a well-behaved client
//! would refuse to send them: bodies over the limit (with and without `Content-Length`),
//! JSON nested past any sane depth, very long strings, invalid UTF-8, header floods,
//! slow-loris connections and many connections at once.
//!
//! After each, the server must still answer `/healthz` and an authenticated GET, the user's
//! tasks must be exactly what they were (bad input changes nothing), and the process's
//! resident memory must not have grown by more than [`MEMORY_BOUND`]: a bound, not a timing.
//!
//! Slow clients: a request head must arrive within `chime::tls::HEADER_READ_TIMEOUT`, and a
//! body within `[limits] body_read_seconds` (a 408 problem, then the connection is closed).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, spawn_app_with, StatusCode, TestApp, PATIENCE};

/// Growth of the test process's resident memory a hostile request may cause. Other tests run
/// in the same process at the same time (each of these holds `HEAVY`, so not the ones that
/// load the server: another test beside the slow-loris one once grew it by 312 MB), so this is
/// generous; an unbounded buffer of a
/// flood or a 10 MB body read whole many times over would still go past it.
const MEMORY_BOUND: u64 = 200 * 1024 * 1024;

/// `VmRSS` of this process (the in-process server's), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS");
    kb * 1024
}

/// A user with two tasks, and what the API lists for them.
async fn seeded() -> (TestApp, Value, u64) {
    let app = spawn_app().await;
    for name in ["water the plants", "call mum"] {
        app.create(
            "alice",
            &json!({"name": name, "startDate": "2031-01-01T09:00:00Z"}),
        )
        .await;
    }
    let tasks = list(&app).await;
    (app, tasks, resident_bytes())
}

async fn list(app: &TestApp) -> Value {
    app.user("alice").get("/api/v1/tasks", StatusCode::OK).await
}

/// The server is up, answers an authenticated GET, the tasks are unchanged and memory did not
/// run away.
async fn still_well(app: &TestApp, tasks: &Value, rss_before: u64) {
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(&list(app).await, tasks, "bad input changed the task list");
    let grown = resident_bytes().saturating_sub(rss_before);
    assert!(
        grown < MEMORY_BOUND,
        "resident memory grew by {} MB",
        grown / (1024 * 1024)
    );
}

/// Sends `head` then `body` on a fresh connection and returns whatever the server answered
/// before closing (or until the head and a complete small body arrived). Writing may fail
/// once the server has answered and closed: that is allowed, the answer is what counts.
async fn raw(app: &TestApp, head: String, body: Vec<u8>) -> String {
    let stream = TcpStream::connect(app.running.addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let send = tokio::spawn(async move {
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await;
        let _ = writer.flush().await;
        // Keep the write half open until the read side is done (dropping it would
        // half-close): this task is aborted then.
        std::future::pending::<()>().await;
    });
    let answer = tokio::time::timeout(PATIENCE, read_response(&mut reader))
        .await
        .expect("the server never answered");
    send.abort();
    answer
}

/// Reads until the connection closes, fails, or a whole response (by `Content-Length`) is in.
async fn read_response(reader: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {answer:.200}"))
}

/// The problem+json body of a raw answer, checking the status and content type.
fn problem_of(answer: &str, status: u16) -> Value {
    assert_eq!(status_of(answer), status, "{answer:.400}");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: Value = serde_json::from_str(body).expect("a JSON problem");
    assert_eq!(problem["status"], status);
    problem
}

fn post_head(app: &TestApp, framing: &str) -> String {
    format!(
        "POST /api/v1/tasks HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nConnection: close\r\n{framing}\r\n",
        app.token("alice")
    )
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem_whether_declared_or_chunked() {
    // Memory is measured for the whole test process: not beside the tests that load it.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (app, tasks, rss) = seeded().await;
    let big = {
        let mut b = br#"{"name": ""#.to_vec();
        b.resize(5 * 1024 * 1024, b'a');
        b
    };

    // Declared up front.
    let head = post_head(&app, &format!("Content-Length: {}\r\n", big.len()));
    problem_of(&raw(&app, head, big.clone()).await, 413);

    // Declared far larger than is ever sent: refused once the limit's worth has arrived, so
    // the declared size is neither waited for nor allocated. (Fewer bytes than the limit
    // would wait for the body-read timeout: see the slow body test.)
    let head = post_head(&app, "Content-Length: 9999999999\r\n");
    problem_of(&raw(&app, head, big[..100 * 1024].to_vec()).await, 413);

    // Chunked, no length known in advance: cut off at the limit while streaming.
    let mut chunked = Vec::new();
    for piece in big.chunks(16 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = post_head(&app, "Transfer-Encoding: chunked\r\n");
    problem_of(&raw(&app, head, chunked).await, 413);

    still_well(&app, &tasks, rss).await;
}

#[tokio::test]
async fn json_nested_past_serde_jsons_recursion_limit_is_a_400_problem_not_a_stack_overflow() {
    // Memory is measured for the whole test process: not beside the tests that load it.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (app, tasks, rss) = seeded().await;
    // 60,000 levels fit under the 64 KiB limit; serde_json gives up at 128.
    for body in [
        "[".repeat(60_000),
        "{\"a\":".repeat(12_000),
        format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)),
        format!(
            "{{\"name\": \"x\", \"startDate\": \"2031-01-01T09:00:00Z\", \"repeats\": {}1{}}}",
            "[".repeat(200),
            "]".repeat(200)
        ),
    ] {
        let head = post_head(&app, &format!("Content-Length: {}\r\n", body.len()));
        let problem = problem_of(&raw(&app, head, body.into_bytes()).await, 400);
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.contains("recursion limit"), "{detail}");
    }
    // Just under the limit is fine as JSON, and refused by the parser as a task field.
    let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let body = format!(
        "{{\"name\": \"x\", \"startDate\": \"2031-01-01T09:00:00Z\", \"repeats\": {nested}}}"
    );
    let head = post_head(&app, &format!("Content-Length: {}\r\n", body.len()));
    let problem = problem_of(&raw(&app, head, body.into_bytes()).await, 422);
    assert_eq!(problem["errors"][0]["pointer"], "/repeats", "{problem}");
    still_well(&app, &tasks, rss).await;
}

#[tokio::test]
async fn huge_numbers_and_a_60_kb_name_are_422_problems_naming_the_field() {
    // Memory is measured for the whole test process: not beside the tests that load it.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (app, tasks, rss) = seeded().await;
    let name = "n".repeat(60 * 1024);
    let problem = app
        .user("alice")
        .post_problem(
            "/api/v1/tasks",
            &json!({"name": name, "startDate": "2031-01-01T09:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem["errors"][0]["pointer"], "/name", "{problem:.300}");

    for (pointer, body) in [
        (
            "/repeats/frequency",
            r#"{"name":"x","startDate":"2031-01-01T09:00:00Z","repeats":{"period":"day","frequency":1e308}}"#,
        ),
        (
            "/repeats/frequency",
            r#"{"name":"x","startDate":"2031-01-01T09:00:00Z","repeats":{"period":"day","frequency":184467440737095516150}}"#,
        ),
        (
            "/repeats/ends",
            r#"{"name":"x","startDate":"2031-01-01T09:00:00Z","repeats":{"period":"day","ends":-99999999999999999999}}"#,
        ),
        (
            "/startDate",
            r#"{"name":"x","startDate":99999999999999999999999999}"#,
        ),
    ] {
        let head = post_head(&app, &format!("Content-Length: {}\r\n", body.len()));
        let answer = raw(&app, head, body.as_bytes().to_vec()).await;
        let problem = problem_of(&answer, 422);
        let pointers: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["pointer"].as_str())
            .collect();
        assert!(pointers.contains(&pointer), "{body}: {problem}");
    }
    still_well(&app, &tasks, rss).await;
}

#[tokio::test]
async fn invalid_utf8_in_the_body_is_a_400_problem() {
    // Memory is measured for the whole test process: not beside the tests that load it.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (app, tasks, rss) = seeded().await;
    for body in [
        b"{\"name\": \"\xff\xfe\", \"startDate\": \"2031-01-01T09:00:00Z\"}".to_vec(),
        b"\xc3\x28".to_vec(),
        b"{\"name\": \"\xed\xa0\x80\"}".to_vec(), // an encoded surrogate
        b"\x00\x00\x00\x00".to_vec(),
    ] {
        let head = post_head(&app, &format!("Content-Length: {}\r\n", body.len()));
        problem_of(&raw(&app, head, body).await, 400);
    }
    still_well(&app, &tasks, rss).await;
}

#[tokio::test]
async fn a_header_flood_is_refused_and_the_server_answers_the_next_request() {
    // Memory is measured for the whole test process: not beside the tests that load it.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (app, tasks, rss) = seeded().await;
    // 10,000 headers: far over hyper's 100.
    let mut head = String::from("GET /api/v1/tasks HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..10_000 {
        head.push_str(&format!("X-Flood-{i}: {i}\r\n"));
    }
    head.push_str("\r\n");
    let answer = raw(&app, head, Vec::new()).await;
    assert_eq!(status_of(&answer), 431, "{answer:.300}");

    // One header of 1 MiB: over hyper's read buffer.
    let head = format!(
        "GET /api/v1/tasks HTTP/1.1\r\nHost: localhost\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(1024 * 1024)
    );
    let answer = raw(&app, head, Vec::new()).await;
    assert_eq!(status_of(&answer), 431, "{answer:.300}");

    // A request line of 1 MiB.
    let head = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "p".repeat(1024 * 1024)
    );
    let answer = raw(&app, head, Vec::new()).await;
    assert!(
        matches!(status_of(&answer), 400 | 414 | 431),
        "{answer:.300}"
    );
    still_well(&app, &tasks, rss).await;
}

#[tokio::test]
async fn slow_loris_connections_do_not_keep_other_clients_waiting_and_are_closed() {
    // Memory is measured for the whole test process: not beside the tests that load it.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (app, tasks, rss) = seeded().await;
    // Connections that send part of a request, then a byte now and then, and never finish.
    let mut loris = Vec::new();
    for i in 0..200 {
        let mut stream = TcpStream::connect(app.running.addr).await.expect("connect");
        stream
            .write_all(
                format!("POST /api/v1/tasks HTTP/1.1\r\nHost: localhost\r\nX-{i}: ").as_bytes(),
            )
            .await
            .expect("write");
        loris.push(stream);
    }
    for round in 0..3 {
        for stream in &mut loris {
            // The server may already have closed some: that is fine.
            let _ = stream.write_all(b"a").await;
        }
        let health = tokio::time::timeout(
            Duration::from_secs(5),
            app.http.get(app.url("/healthz")).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("healthz waited behind slow clients (round {round})"))
        .expect("healthz");
        assert_eq!(health.status(), 200);
        assert_eq!(&list(&app).await, &tasks);
        // Deliberate pacing: the slow clients dribble a byte per round.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still dribbling, they are closed once the head has taken longer than the header-read
    // timeout: the server does not hold them for as long as the client likes.
    let closed = loris.into_iter().map(|mut stream| async move {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a 408 answer, if any, then the close
            }
        }
    });
    tokio::time::timeout(
        chime::tls::HEADER_READ_TIMEOUT + Duration::from_secs(10),
        futures::future::join_all(closed),
    )
    .await
    .expect("half-open connections were never closed");
    still_well(&app, &tasks, rss).await;
}

#[tokio::test]
async fn many_concurrent_connections_are_answered_or_shed_never_failed() {
    // Memory is measured for the whole test process: not beside the tests that load it.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (app, tasks, rss) = seeded().await;
    let mut handles = Vec::new();
    for i in 0..400 {
        let (addr, token) = (app.running.addr, app.token("alice"));
        handles.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let path = if i % 2 == 0 {
                "/healthz"
            } else {
                "/api/v1/tasks"
            };
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
                 Connection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.expect("write");
            let answer = tokio::time::timeout(PATIENCE, read_response(&mut stream))
                .await
                .expect("answer");
            status_of(&answer)
        }));
    }
    for handle in handles {
        let status = handle.await.expect("task");
        // 503 is the concurrency guard shedding load, which is a clear answer too.
        assert!(matches!(status, 200 | 503), "status {status}");
    }
    still_well(&app, &tasks, rss).await;
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_with_a_408_problem_and_the_connection_closed() {
    // Memory is measured for the whole test process: not beside the tests that load it.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let app = spawn_app_with(|c| c.limits.body_read_seconds = 1.0).await;
    let tasks = list(&app).await;
    let rss = resident_bytes();
    // A byte every 300 ms: never idle for as long as the timeout, so only a deadline on the
    // whole body (not a per-read idle timeout) stops it. 200 bytes would take a minute.
    let body = format!(
        r#"{{"name": "{}", "startDate": "2031-01-01T09:00:00Z"}}"#,
        "s".repeat(150)
    );
    let stream = TcpStream::connect(app.running.addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = post_head(&app, &format!("Content-Length: {}\r\n", body.len()))
        .replace("Connection: close\r\n", "");
    let started = tokio::time::Instant::now();
    let dribble = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await.expect("head");
        for byte in body.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return; // closed by the server
            }
            // Deliberate pacing: what is tested is a client this slow.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!("the whole body was accepted a byte at a time");
    });
    // The answer, and then the close: awaited, not slept for.
    let answer = tokio::time::timeout(PATIENCE, read_response(&mut reader))
        .await
        .expect("no answer to a slow body");
    let problem = problem_of(&answer, 408);
    assert_eq!(problem["errors"][0]["pointer"], "", "{problem}");
    assert!(
        problem["detail"].as_str().expect("detail").contains("1 s"),
        "{problem}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    let mut rest = [0u8; 1024];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match reader.read(&mut rest).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the connection stayed open after the 408");
    dribble.abort();
    still_well(&app, &tasks, rss).await;
}
