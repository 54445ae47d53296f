//! Crash safety with the real binary: SIGKILL after tasks are created and before they are
//! due, restart on the same data directory, and every occurrence is delivered exactly once,
//! late where it fell due while the process was down.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, free_port, ChimeProcess, Serve, StatusCode};

/// `chime serve` on `dir` at `port`, ready; fired more than 0.5 s after its due instant
/// counts as late.
async fn start(dir: &Path, port: u16) -> ChimeProcess {
    Serve::new(dir)
        .port(port)
        .env("CHIME_LATE_AFTER_SECONDS", "0.5")
        .start()
        .await
}

#[tokio::test]
async fn every_occurrence_is_delivered_exactly_once_after_a_kill_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One port for every restart: the token's issuer is the server's address.
    let port = free_port();
    let mut server = start(dir.path(), port).await;
    let alice = server.user("alice");

    // Due 1.5 s from now: created, then the process is killed before they fall due.
    let due = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 2).expect("due");
    let mut ids = Vec::new();
    for (i, repeats) in [
        Value::Null,
        Value::Null,
        json!({"period": "day"}),
        json!({"period": "week", "ends": 2}),
    ]
    .into_iter()
    .enumerate()
    {
        let task = alice
            .create_task(&json!({"name": format!("task {i}"), "startDate": due.to_string(), "repeats": repeats}))
            .await;
        ids.push(task["id"].as_str().expect("id").to_owned());
    }
    server.kill().await;

    // Stay down until they are all due and past the 0.5 s lateness threshold: the process is
    // real, and so is the time it must be down for.
    let until = due + jiff::SignedDuration::from_millis(1500);
    let wait = jiff::Timestamp::now().duration_until(until);
    if let Ok(wait) = Duration::try_from(wait) {
        tokio::time::sleep(wait).await;
    }

    let mut server = start(dir.path(), port).await;
    let inbox = eventually("one notification per task", || {
        let (alice, expected) = (&alice, ids.len());
        async move {
            let inbox: Value = alice.get("/api/v1/notifications", StatusCode::OK).await;
            let n = inbox["notifications"].as_array()?.len();
            (n >= expected).then_some(inbox)
        }
    })
    .await;
    let items = inbox["notifications"].as_array().expect("list");
    for id in &ids {
        let count = items.iter().filter(|n| n["taskId"] == id.as_str()).count();
        assert_eq!(count, 1, "task {id} notified {count} times: {inbox}");
        assert!(items.iter().all(|n| n["dueAt"] == due.to_string()));
    }
    for id in &ids {
        let history = eventually("history of the late occurrence", || {
            let (alice, path) = (&alice, format!("/api/v1/tasks/{id}/history"));
            async move {
                let h: Value = alice.get(&path, StatusCode::OK).await;
                (h["history"][0]["deliveries"].as_array()?.len() == 1).then_some(h)
            }
        })
        .await;
        let entries = history["history"].as_array().expect("history");
        assert_eq!(entries.len(), 1, "{history}");
        assert_eq!(entries[0]["late"], true, "{history}");
        assert_eq!(entries[0]["deliveries"][0]["outcome"], "sent");
    }

    // A second kill and restart replays nothing: still exactly one each.
    server.kill().await;
    let mut server = start(dir.path(), port).await;
    let inbox: Value = alice.get("/api/v1/notifications", StatusCode::OK).await;
    assert_eq!(
        inbox["notifications"].as_array().expect("list").len(),
        ids.len()
    );
    server.kill().await;
}
