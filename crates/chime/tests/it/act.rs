//! Acting on a reminder from the message itself, through a real SMTP server (aiosmtpd): the
//! email's Done and Snooze links are taken out of the received message and followed as a mail
//! client would. Fetching a link (as a mail scanner does) changes nothing; the page's button
//! acts; acting twice is harmless; a forged or altered token is refused; and the token never
//! reaches the server's log.

use std::time::Duration;

use mail_parser::MessageParser;
use serde_json::{json, Value};

use crate::helpers::{eventually, free_port, in_ms, spawn_app_with, StatusCode};
use chime_testenv::smtp::SmtpServer;

/// The "label: url" lines of the text part of the message about `task`.
fn links_in(raw: &[u8]) -> Vec<(String, String)> {
    let message = MessageParser::default().parse(raw).expect("a MIME message");
    let text = message.body_text(0).expect("a text part").into_owned();
    text.lines()
        .filter_map(|l| l.split_once(": http"))
        .map(|(label, rest)| (label.trim().to_owned(), format!("http{}", rest.trim())))
        .filter(|(_, url)| url.contains("/act/"))
        .collect()
}

#[tokio::test]
async fn the_links_of_an_email_acknowledge_and_snooze_only_when_their_button_is_pressed() {
    let mail = tempfile::tempdir().expect("tempdir");
    let smtp = SmtpServer::start(mail.path(), &["--port", &free_port().to_string()]).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let smtp_url = smtp.url();
    let app = spawn_app_with(|c| {
        c.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut email =
            chime_channels::email::EmailConfig::new(smtp_url, "Chime <reminders@example.com>");
        email.app_base_url = Some(base.clone());
        c.channels.email = Some(email);
    })
    .await;
    let alice = app.user("alice");
    // Times on the pages are shown in the user's zone.
    alice
        .put::<Value>(
            "/api/v1/me",
            &json!({"timeZone": "Europe/Berlin"}),
            StatusCode::OK,
        )
        .await;
    let mut ids = Vec::new();
    for name in ["Take the pills", "Call mum"] {
        let task = app
            .create(
                "alice",
                &json!({"name": name, "startDate": in_ms(800),
                        "notify": {"email": "alice@example.com", "inApp": true}}),
            )
            .await;
        ids.push(task["id"].as_str().expect("id").to_owned());
    }
    let messages = eventually("both emails", || async {
        let saved = smtp.saved();
        (saved.len() == 2).then_some(saved)
    })
    .await;
    let links_of = |task: &str| {
        messages
            .iter()
            .find(|m| String::from_utf8_lossy(&m.raw).contains(task))
            .map(|m| links_in(&m.raw))
            .expect("a message about the task")
    };
    let (pills, mum) = (links_of(&ids[0]), links_of(&ids[1]));
    let labels: Vec<&str> = pills.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["Done", "Snooze 1 hour"], "{pills:?}");
    let http = reqwest::Client::new();
    let state = |id: String| {
        let alice = &alice;
        async move {
            let open: Value = alice.get("/api/v1/occurrences/open", StatusCode::OK).await;
            open["occurrences"]
                .as_array()
                .expect("occurrences")
                .iter()
                .any(|o| o["taskId"] == id.as_str())
        }
    };

    // A scanner fetches the link: a page that asks, and nothing changes.
    let done_url = &pills[0].1;
    let page = http.get(done_url).send().await.expect("GET");
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["cache-control"],
        "no-store",
        "a personal page is not cached"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("Take the pills"), "{html}");
    assert!(html.contains("<form method=\"post\">"), "{html}");
    assert!(state(ids[0].clone()).await, "a GET acknowledged it");

    // The page's button posts back to the same address.
    let done = http.post(done_url).send().await.expect("POST");
    assert_eq!(done.status(), 200);
    assert!(done.text().await.expect("html").contains("Done"));
    assert!(!state(ids[0].clone()).await, "still open after Done");
    let path = |i: usize, key: &str| format!("/api/v1/tasks/{}/occurrences/{}", ids[i], key);
    let first: Value = {
        let open: Value = alice
            .get(&format!("/api/v1/tasks/{}/history", ids[0]), StatusCode::OK)
            .await;
        let due_at = open["history"][0]["dueAt"]
            .as_str()
            .expect("dueAt")
            .to_owned();
        alice.get(&path(0, &due_at), StatusCode::OK).await
    };
    assert_eq!(first["state"], "acknowledged");
    assert_eq!(first["acknowledgedOn"], "email");
    // Twice is harmless: the first acknowledgement stands.
    let again = http.post(done_url).send().await.expect("POST");
    assert_eq!(again.status(), 200);
    let acked: jiff::Timestamp = first["acknowledgedAt"]
        .as_str()
        .expect("acknowledgedAt")
        .parse()
        .expect("instant");
    let local = acked
        .in_tz("Europe/Berlin")
        .expect("zone")
        .strftime("%Y-%m-%d %H:%M")
        .to_string();
    let html = again.text().await.expect("html");
    assert!(
        html.contains(&format!("Done: marked at {local}, Europe/Berlin.")),
        "{html}"
    );
    let second: Value = alice
        .get(
            &path(0, first["dueAt"].as_str().expect("dueAt")),
            StatusCode::OK,
        )
        .await;
    assert_eq!(second, first);
    // Snooze after done changes nothing either.
    let snooze_after = http.post(&pills[1].1).send().await.expect("POST");
    assert_eq!(snooze_after.status(), 200);
    let third: Value = alice
        .get(
            &path(0, first["dueAt"].as_str().expect("dueAt")),
            StatusCode::OK,
        )
        .await;
    assert_eq!(third, first);

    // The other email's snooze link: an hour, once (pressing it again does not move it).
    let snoozed = http
        .post(&mum[1].1)
        .header("accept", "application/json")
        .send()
        .await
        .expect("POST");
    assert_eq!(snoozed.status(), 200);
    let snoozed: Value = snoozed.json().await.expect("json");
    assert_eq!(snoozed["state"], "snoozed");
    let until = snoozed["snoozedUntil"].as_str().expect("until").to_owned();
    let until_at: jiff::Timestamp = until.parse().expect("instant");
    let from_now = jiff::Timestamp::now().duration_until(until_at);
    assert!(
        from_now > jiff::SignedDuration::from_mins(59)
            && from_now <= jiff::SignedDuration::from_mins(60),
        "{until}"
    );
    assert!(!state(ids[1].clone()).await, "a snoozed occurrence is open");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let pressed_again: Value = http
        .post(&mum[1].1)
        .header("accept", "application/json")
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(pressed_again["snoozedUntil"], until.as_str());

    // Forged and altered tokens are refused, and change nothing.
    let token = mum[0].1.rsplit_once("/act/").expect("token").1.to_owned();
    let mut altered = token.clone().into_bytes();
    let i = altered.len() / 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");
    for bad in [altered.as_str(), "x.y", "not-a-token"] {
        let refused = http
            .post(format!("{base}/act/{bad}"))
            .send()
            .await
            .expect("POST");
        assert_eq!(refused.status(), 400, "{bad}");
    }
    let mum_state: Value = alice
        .get(&format!("/api/v1/tasks/{}/history", ids[1]), StatusCode::OK)
        .await;
    let mum_due = mum_state["history"][0]["dueAt"].as_str().expect("dueAt");
    let mum_now: Value = alice.get(&path(1, mum_due), StatusCode::OK).await;
    assert_eq!(mum_now["state"], "snoozed");
    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"chime_acknowledgements_total{channel="email"} 1"#));
    assert!(
        metrics.contains("chime_snoozes_total 1"),
        "the snooze took once"
    );
    drop(smtp);
}
