//! Secrets and personal data never reach the log: the real binary, at `CHIME_LOG=debug` with
//! JSON logs, runs with distinctive secrets (SMS auth token, SMTP password, webhook secret,
//! bearer tokens) and personal data (email address, phone number, webhook URL) through
//! deliveries that fail (an SMS provider that echoes the number in its 400, an SMTP relay
//! that is down, a webhook receiver answering 500, an ntfy server quoting the token it
//! refuses) and validation errors whose bodies echo
//! the refused values back to their caller, and an action link (a capability) followed; then
//! its whole output is searched for them.

use chime_roles::occurrence::tokens::{Action, ActionKeys};
use serde_json::{json, Value};

use crate::helpers::{eventually, free_port, in_ms, Receiver, Reply, Serve, StatusCode};

const SMS_AUTH_TOKEN: &str = "smsAuthTok3n-QX7vR";
const SMTP_PASSWORD: &str = "smtpPassw0rd-ZK9wq";
const EMAIL: &str = "ada.lovelace.4417@example.org";
const PHONE_DIGITS: &str = "4075550199";
const WEBHOOK_PATH: &str = "/hook-private-8c1e";
const BAD_EMAIL: &str = "bad-address-9f2b@@nowhere";
const BAD_PHONE: &str = "call-me-5e7d-maybe";
const NTFY_TOKEN: &str = "tk_leakyNtfyToken7c2d";
const NTFY_PATH: &str = "/";

/// A Twilio-shaped provider that refuses every message, quoting the number as Twilio does,
/// and a webhook receiver that fails; both on one loopback server.
async fn failing_providers() -> Receiver {
    Receiver::answering(|request, _| {
        if request.path() == WEBHOOK_PATH {
            return Reply::status(500).body("receiver down");
        }
        if request.path() == NTFY_PATH {
            // An ntfy server that quotes the credentials it refuses.
            return Reply::status(401).json(
                json!({"code": 40101, "http": 401,
                       "error": format!("unauthorized: {}", request.header("authorization").unwrap_or_default())})
                .to_string(),
            );
        }
        let to = request
            .text()
            .split('&')
            .find_map(|field| field.strip_prefix("To="))
            .unwrap_or_default()
            .replace("%2B", "+");
        Reply::status(400).json(
            json!({
                "code": 21211,
                "message": format!("The 'To' number {to} is not a valid phone number."),
                "status": 400
            })
            .to_string(),
        )
    })
    .await
}

#[tokio::test]
async fn the_debug_log_of_a_run_with_failing_deliveries_holds_no_secret_or_personal_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let providers = failing_providers().await;
    let smtp_port = free_port();
    let (stdout, stderr) = (dir.path().join("stdout.log"), dir.path().join("stderr.log"));
    let mut server = Serve::new(&data)
        .env("CHIME_LOG", "debug")
        .env("CHIME_LOG_FORMAT", "json")
        .env("CHIME_CHANNELS__SMS__ACCOUNT_SID", "ACleak")
        .env("CHIME_CHANNELS__SMS__AUTH_TOKEN", SMS_AUTH_TOKEN)
        // (A messaging service: figment would read `+1407…` from the environment as a number.)
        .env("CHIME_CHANNELS__SMS__FROM", "MGleaktest")
        .env("CHIME_CHANNELS__SMS__BASE_URL", providers.base())
        .env(
            "CHIME_SMTP_URL",
            format!("smtp://chime:{SMTP_PASSWORD}@127.0.0.1:{smtp_port}"),
        )
        .env("CHIME_SMTP_FROM", "Chime <reminders@example.com>")
        .env("CHIME_CHANNELS__WEBHOOK__ALLOW_PRIVATE", "true")
        .env("CHIME_DELIVERY__RETRY_BASE_SECONDS", "0.1")
        .env("CHIME_DELIVERY__RETRY_MAX_DELAY_SECONDS", "0.2")
        .env("CHIME_DELIVERY__RETRY_WINDOW_SECONDS", "1")
        .output_to(&stdout, &stderr)
        .start()
        .await;
    let (alice, mallory) = (server.token("alice"), server.token("mallory"));
    let alice_client = server.user("alice");

    let webhook = alice_client.set_webhook(&providers.url(WEBHOOK_PATH)).await;
    let webhook_secret = webhook["secret"].as_str().expect("secret").to_owned();
    let port = providers.base().rsplit(':').next().expect("port");
    let destination: Value = alice_client
        .post(
            "/api/v1/destinations",
            &json!({"name": "Phone", "url": format!("ntfy://{NTFY_TOKEN}@127.0.0.1:{port}/alerts")}),
            StatusCode::CREATED,
        )
        .await;
    assert!(
        !destination.to_string().contains(NTFY_TOKEN),
        "the token is answered masked: {destination}"
    );

    let task = alice_client
        .create_task(&json!({
            "name": "Dentist",
            "startDate": in_ms(1500),
            "notify": {"email": EMAIL, "sms": "407 555 0199", "webhook": true,
                       "destinations": [destination["id"]]}
        }))
        .await;
    let id = task["id"].as_str().expect("id").to_owned();

    // Refused values are echoed to their own caller, and only to them.
    let refused = alice_client
        .post_problem(
            "/api/v1/tasks",
            &json!({"name": "x", "startDate": in_ms(60_000),
                "notify": {"email": BAD_EMAIL, "sms": BAD_PHONE}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await
        .to_string();
    assert!(
        refused.contains(BAD_EMAIL) && refused.contains(BAD_PHONE),
        "{refused}"
    );
    // Another user, a forged token, a token in the query string.
    server
        .user("mallory")
        .get_problem(
            &format!("/api/v1/tasks/{id}?access_token={mallory}"),
            StatusCode::NOT_FOUND,
        )
        .await;
    let forged = format!("{alice}x");
    alice_client
        .bearer(&forged)
        .get_problem("/api/v1/tasks", StatusCode::UNAUTHORIZED)
        .await;

    let deliveries = eventually("every delivery to be final", || {
        let (alice, path) = (&alice_client, format!("/api/v1/tasks/{id}/history"));
        async move {
            let history: Value = alice.get(&path, StatusCode::OK).await;
            let deliveries = history["history"][0]["deliveries"].as_array()?.clone();
            let final_ = |channel: &str| {
                deliveries
                    .iter()
                    .any(|d| d["channel"] == channel && d["outcome"] == "deadLettered")
            };
            (final_("sms") && final_("email") && final_("webhook") && final_("ntfy"))
                .then_some(deliveries)
        }
    })
    .await;
    // The reasons shown to the owner do not quote the number either.
    let reasons = serde_json::to_string(&deliveries).expect("json");
    assert!(!reasons.contains(PHONE_DIGITS), "{reasons}");
    assert!(!reasons.contains(NTFY_TOKEN), "{reasons}");
    assert!(
        reasons.contains("refused the credentials"),
        "ntfy's refusal is shown: {reasons}"
    );
    assert!(
        reasons.contains("21211"),
        "the provider's refusal is shown: {reasons}"
    );

    // An action link (a capability) followed, both ways, and a forged one.
    let keys = std::fs::read_to_string(data.join(ActionKeys::FILE)).expect("the action key");
    let keys = ActionKeys::decode(&keys).expect("a key");
    let history: Value = alice_client
        .get(&format!("/api/v1/tasks/{id}/history"), StatusCode::OK)
        .await;
    let due: jiff::Timestamp = history["history"][0]["dueAt"]
        .as_str()
        .expect("dueAt")
        .parse()
        .expect("instant");
    let action = keys.mint(
        &chime_core::UserId::parse("alice").expect("user"),
        &chime_core::event::OccurrenceKey {
            task_id: id.parse().expect("id"),
            due_at: due,
        },
        Action::Done,
        chime_core::event::Channel::Email,
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
    );
    let forged_action = format!("{action}x");
    let http = reqwest::Client::new();
    for (token, status) in [(&action, 200), (&forged_action, 400)] {
        let url = format!("{}/act/{token}", server.base);
        assert_eq!(http.get(&url).send().await.expect("GET").status(), status);
        assert_eq!(http.post(&url).send().await.expect("POST").status(), status);
    }

    server.kill().await;
    let log = std::fs::read_to_string(&stdout).expect("stdout")
        + &std::fs::read_to_string(&stderr).expect("stderr");
    // The capture is real: debug lines, the failures, the requests.
    assert!(
        log.contains("\"level\":\"DEBUG\""),
        "no debug lines:\n{log}"
    );
    assert!(log.contains("task created"), "{log}");
    assert!(log.contains("dead-lettered"), "{log}");
    let mut secrets = vec![
        SMS_AUTH_TOKEN,
        SMTP_PASSWORD,
        EMAIL,
        PHONE_DIGITS,
        WEBHOOK_PATH,
        NTFY_TOKEN,
        BAD_EMAIL,
        BAD_PHONE,
        &webhook_secret,
        &alice,
        &mallory,
        &forged,
        &action,
    ];
    // A token's signature alone is as good as the token.
    let signatures: Vec<String> = [&alice, &mallory, &action]
        .iter()
        .map(|t| t.rsplit('.').next().expect("signature").to_owned())
        .collect();
    secrets.extend(signatures.iter().map(String::as_str));
    let leaks: Vec<&str> = secrets.into_iter().filter(|s| log.contains(s)).collect();
    assert!(leaks.is_empty(), "the log holds {leaks:?}:\n{log}");
}
