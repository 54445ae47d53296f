//! Crash safety with the real binary: SIGKILL after tasks are created and before they are
//! due, restart on the same data directory, and every occurrence is delivered exactly once,
//! late where it fell due while the process was down.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{await_ready, binary_token, eventually, free_port};

struct Process {
    child: Child,
    base: String,
}

async fn start(dir: &Path, port: u16) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_chime"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        // Fired more than 0.5 s after its due instant counts as late.
        .env("CHIME_LATE_AFTER_SECONDS", "0.5")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chime");
    let base = format!("http://127.0.0.1:{port}");
    await_ready(&base).await;
    Process { child, base }
}

#[tokio::test]
async fn every_occurrence_is_delivered_exactly_once_after_a_kill_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let client = reqwest::Client::new();
    let mut server = start(dir.path(), port).await;
    let token = binary_token(dir.path(), Some(port), "alice");

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
        let response = client
            .post(format!("{}/api/v1/tasks", server.base))
            .bearer_auth(&token)
            .json(&json!({"name": format!("task {i}"), "startDate": due.to_string(), "repeats": repeats}))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201);
        let task: Value = response.json().await.expect("json");
        ids.push(task["id"].as_str().expect("id").to_owned());
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reap");

    // Stay down until they are all due and past the 0.5 s lateness threshold.
    let until = due + jiff::SignedDuration::from_millis(1500);
    let wait = jiff::Timestamp::now().duration_until(until);
    if let Ok(wait) = Duration::try_from(wait) {
        tokio::time::sleep(wait).await;
    }

    let mut server = start(dir.path(), port).await;
    let inbox = eventually("one notification per task", || {
        let (client, url, token) = (
            client.clone(),
            format!("{}/api/v1/notifications", server.base),
            token.clone(),
        );
        let expected = ids.len();
        async move {
            let inbox: Value = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
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
            let (client, url, token) = (
                client.clone(),
                format!("{}/api/v1/tasks/{id}/history", server.base),
                token.clone(),
            );
            async move {
                let h: Value = client
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
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
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reap");
    let mut server = start(dir.path(), port).await;
    let inbox: Value = client
        .get(format!("{}/api/v1/notifications", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("inbox")
        .json()
        .await
        .expect("json");
    assert_eq!(
        inbox["notifications"].as_array().expect("list").len(),
        ids.len()
    );
    server.child.kill().expect("kill");
    server.child.wait().expect("reap");
}
