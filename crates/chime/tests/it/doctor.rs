//! `chime doctor` with the real binary: a healthy data directory passes every check (and says
//! what retention would delete: nothing yet); an SMTP
//! relay that cannot be reached fails the email check with a message that says what to fix,
//! and the exit status says so too.

use serde_json::json;

use crate::backup::chime;
use crate::helpers::{free_port, in_ms, spawn_app_with};

fn report(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn doctor_passes_on_a_healthy_data_directory_while_the_server_runs() {
    let app = spawn_app_with(|c| c.backup.interval_seconds = 0).await;
    app.create(
        "alice",
        &json!({"name": "check me", "startDate": in_ms(3_600_000)}),
    )
    .await;
    let dir = app.data_dir().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        chime(
            &["doctor", "--data-dir", dir.to_str().expect("utf8")],
            &dir,
            &[],
        )
    })
    .await
    .expect("doctor");
    let text = report(&out);
    assert!(out.status.success(), "{text}");
    for line in [
        "ok    config: valid",
        "ok    server: a chime serve holds",
        "ok    store: ",
        "integrity ok, schema version",
        "1 tasks",
        "ok    bus: log schema version 1; consumer lag:",
        "ok    encryption keys:",
        "ok    webhook: nothing to check",
        "ok    issuer: local issuer: the signing key loads",
        "ok    retention: every 3600 s, keeps finished tasks 365 days, history 365 days, \
         read inbox items 365 days; would delete now: nothing",
        "all checks passed",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert!(!text.contains("FAIL"), "{text}");
    app.running.stop().await.expect("stop");
}

#[tokio::test]
async fn doctor_fails_the_email_check_when_the_smtp_relay_cannot_be_reached() {
    let app = spawn_app_with(|c| c.backup.interval_seconds = 0).await;
    let dir = app.data_dir().to_path_buf();
    app.running.stop().await.expect("stop");
    // A port nothing listens on.
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let out = tokio::task::spawn_blocking(move || {
        chime(
            &["doctor", "--data-dir", dir.to_str().expect("utf8")],
            &dir,
            &[
                ("CHIME_SMTP_URL", url.as_str()),
                ("CHIME_SMTP_FROM", "Chime <reminders@example.com>"),
            ],
        )
    })
    .await
    .expect("doctor");
    let text = report(&out);
    assert!(!out.status.success(), "{text}");
    let email = text
        .lines()
        .find(|l| l.contains("email:"))
        .unwrap_or_else(|| panic!("no email line in:\n{text}"));
    assert!(
        email.starts_with("FAIL  email: cannot talk to the SMTP relay"),
        "{email}"
    );
    assert!(email.contains(&format!("127.0.0.1:{port}")), "{email}");
    assert!(email.contains("Check channels.email.smtp_url"), "{email}");
    // Everything else is still checked, and fine.
    assert!(text.contains("ok    store: "), "{text}");
    assert!(text.contains("1 check(s) failed"), "{text}");
}
