//! The web app's own test suites, run by `cargo test` so that the README's one test command
//! covers them: the Vitest unit tests, and the end-to-end tests (`web/e2e/run.mjs`) in
//! headless Chromium against two real servers started here on port 0: one on the embedded
//! default (local sign-in), one signing in through the real OIDC provider of `oidc.rs`
//! (authorization code + PKCE). Both serve the app freshly built from `web/`.
//!
//! They need `npm ci` in `web/` and Debian's `chromium`; `.ci/run` provides both, and a
//! missing one fails here with the command that fixes it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, in_ms, reply_of, spawn_app_with, Browser, StatusCode, TestApp};
use crate::oidc::Provider;

/// The whole browser run; it takes about 30 s on a quiet machine.
const E2E_PATIENCE: Duration = Duration::from_secs(600);

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

fn require_node_modules(web: &Path) {
    assert!(
        web.join("node_modules/.bin/vitest").exists(),
        "the web app's dependencies are not installed: run `npm ci` in {} (.ci/run does)",
        web.display()
    );
}

/// Runs `npm ARGS` in `web`. A spawn that fails for want of a resource (EAGAIN, ENOMEM: the
/// cluster test beside it runs a dozen processes on two cores) is tried twice more; any other
/// failure, or the third, fails the test with the error, so CI's log says which it was.
async fn npm(web: &Path, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut command = tokio::process::Command::new("npm");
        command
            .args(args)
            .current_dir(web)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let output = tokio::time::timeout(E2E_PATIENCE, command.output())
            .await
            .unwrap_or_else(|_| panic!("`npm {}` did not finish in time", args.join(" ")));
        match output {
            Ok(output) => return output,
            Err(e) if attempt < 3 && is_transient(&e) => {
                eprintln!("`npm {}` did not start ({e}); trying again", args.join(" "));
                // Backoff before a retry: the machine is short of processes or memory now.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => panic!(
                "could not run `npm {}` (Node.js 20 or later is needed; PATH={}): {e}",
                args.join(" "),
                std::env::var("PATH").unwrap_or_default()
            ),
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::OutOfMemory
            | std::io::ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(11 | 12))
}

fn assert_success(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_web_apps_unit_tests_pass_in_vitest() {
    // Not beside the cluster or load tests: on two cores, jsdom's renders then take seconds.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let web = web_dir();
    require_node_modules(&web);
    let output = npm(&web, &["test", "--", "--reporter=dot"], &[]).await;
    assert_success("the Vitest suite (`npm test` in web/)", &output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_passes_its_end_to_end_tests_in_headless_chromium() {
    let web = web_dir();
    require_node_modules(&web);
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `apt-get install -y chromium` (.ci/run does), or set CHROMIUM"
    );
    // The servers serve what this checkout builds, never a stale bundle.
    let build = npm(&web, &["run", "build"], &[]).await;
    assert_success("building the web app (`npm run build` in web/)", &build);
    let dist = web.join("dist");

    let local = {
        let dist = dist.clone();
        spawn_app_with(move |c| {
            c.web.static_dir = dist;
            // So that a failing webhook is dead-lettered within the run (and may go to loopback).
            c.delivery.retry_base_seconds = 0.2;
            c.delivery.retry_window_seconds = 1.0;
            c.channels.webhook = Some(chime_channels::webhook::WebhookConfig {
                allow_private: true,
                ..Default::default()
            });
        })
        .await
    };
    // An ntfy server for the destination the suite adds and tests.
    let ntfy = crate::helpers::Receiver::answering(|_, n| {
        crate::helpers::Reply::status(200)
            .json(serde_json::json!({"id": format!("m{n}")}).to_string())
    })
    .await;
    let ntfy_port = ntfy.base().rsplit(':').next().expect("port").to_owned();
    let provider = Provider::start().await;
    let oidc = {
        let (dist, issuer) = (dist.clone(), provider.issuer.clone());
        spawn_app_with(move |c| {
            c.auth.issuer = Some(issuer);
            c.web.static_dir = dist;
            c.web.client_id = "chime-web".to_owned();
            c.web.client_secret = Some("secret".to_owned());
            // The provider gives access tokens the task API's audience for this resource.
            c.web.resource = Some("urn:chime:rs256".to_owned());
        })
        .await
    };
    let output = npm(
        &web,
        &["run", "e2e"],
        &[
            ("CHIME_URL", local.base.clone()),
            ("CHIME_OIDC_URL", oidc.base.clone()),
            ("CHIME_E2E_NTFY_PORT", ntfy_port),
            ("CHROMIUM", chromium),
        ],
    )
    .await;
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert_success("the end-to-end suite (web/e2e/run.mjs)", &output);
    assert!(
        ntfy.count() >= 1,
        "the suite's test notification never reached the ntfy server"
    );
}

/// The browser's session is signed in as `user` with the CSRF token it holds, and a
/// state-changing call with that token creates a task.
async fn still_signed_in(browser: &Browser, user: &str, task: &str, start: &str) {
    let client = browser.client();
    let session: Value = client.get("/bff/session", StatusCode::OK).await;
    assert_eq!(session["signedIn"], true, "{session}");
    assert_eq!(session["user"], user);
    assert_eq!(session["csrfToken"], browser.csrf.as_str());
    client
        .post::<Value>(
            "/bff/tasks",
            &json!({"name": task, "startDate": start}),
            StatusCode::CREATED,
        )
        .await;
}

#[tokio::test]
async fn local_sign_in_gives_a_new_httponly_secure_samesite_session_and_a_new_csrf_token() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = Browser::open(&app.base).await;
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(browser.cookie.contains(attribute), "{}", browser.cookie);
    }
    let anonymous = browser.cookie_header();
    let response = browser.sign_in("alice").await;
    let body: Value = reply_of(response, StatusCode::OK).await.body;
    // No session fixation: signing in replaces the id; the old one is dead.
    assert_ne!(browser.cookie_header(), anonymous);
    assert_ne!(body["csrfToken"], browser.csrf.as_str());
    browser.csrf = body["csrfToken"].as_str().expect("csrf").to_owned();
    let session: Value = browser.client().get("/bff/session", StatusCode::OK).await;
    assert_eq!(session["signedIn"], true);
    assert_eq!(session["user"], "alice");
}

#[tokio::test]
async fn a_state_changing_bff_call_without_the_sessions_csrf_token_is_refused() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = Browser::open(&app.base).await;
    browser.sign_in("alice").await;
    browser.csrf = "guessed".to_owned();
    browser
        .client()
        .post_problem(
            "/bff/tasks",
            &json!({"name": "x", "startDate": "2030-01-01T09:00:00Z"}),
            StatusCode::FORBIDDEN,
        )
        .await;
    // Nothing was created.
    let list: Value = app.user("alice").get("/api/v1/tasks", StatusCode::OK).await;
    assert_eq!(list["tasks"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn the_bff_passes_the_task_apis_validation_problem_through_naming_the_field() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = Browser::open(&app.base).await;
    browser.signed_in_as("alice").await;
    let client = browser.client();
    let problem = client
        .post_problem(
            "/bff/tasks",
            &json!({
                "name": "Stand-up",
                "startDate": "2030-01-07T09:00",
                "timeZone": "Europe/Berlin",
                "repeats": {"frequency": "0", "period": "week"}
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem["errors"][0]["pointer"], "/repeats/frequency");
    // And a local start in the chosen zone is resolved by the BFF.
    let task: Value = client
        .post(
            "/bff/tasks",
            &json!({"name": "Stand-up", "startDate": "2030-01-07T09:00", "timeZone": "Europe/Berlin"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(task["startDate"], "2030-01-07T08:00:00Z");
}

#[tokio::test]
async fn feature_telemetry_counts_known_features_only_and_nothing_about_the_user() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = Browser::open(&app.base).await;
    browser.signed_in_as("alice").await;
    let client = browser.client();
    client
        .post::<()>(
            "/bff/telemetry",
            &json!({"feature": "task_created", "variant": "repeating_month"}),
            StatusCode::NO_CONTENT,
        )
        .await;
    let unknown = client
        .request(reqwest::Method::POST, "/bff/telemetry")
        .json(&json!({"feature": "task_created", "variant": "alice@example.com"}))
        .send()
        .await
        .expect("POST /bff/telemetry");
    assert_eq!(unknown.status(), 422);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            "chime_web_features_used_total{feature=\"task_created\",variant=\"repeating_month\"} 1"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains("alice"));
}

/// `GET /bff/home`, a success.
async fn home(browser: &Browser) -> Value {
    browser.client().get("/bff/home", StatusCode::OK).await
}

#[tokio::test]
async fn the_home_screen_shows_what_is_next_across_every_task_soonest_first() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = Browser::open(&app.base).await;
    browser.signed_in_as("alice").await;
    let empty = home(&browser).await;
    assert_eq!(
        empty,
        serde_json::json!({"open": [], "upcoming": [], "unread": 0, "taskCount": 0})
    );

    for body in [
        serde_json::json!({"name": "Daily", "startDate": "2030-01-01T09:00:00Z",
                           "repeats": {"period": "day", "frequency": 1}}),
        serde_json::json!({"name": "Once", "startDate": "2030-01-01T12:00:00+01:00",
                           "timeZone": "Europe/Paris"}),
    ] {
        let _: Value = browser
            .client()
            .post("/bff/tasks", &body, StatusCode::CREATED)
            .await;
    }
    let home = home(&browser).await;
    assert_eq!(home["taskCount"], 2);
    assert_eq!(home["unread"], 0);
    let upcoming = home["upcoming"].as_array().expect("upcoming");
    // The soonest across both tasks, at most 10 of one task: 10 of the daily one and the
    // one-time one.
    assert_eq!(upcoming.len(), 11);
    let first: Vec<(&str, &str, &str, bool)> = upcoming[..3]
        .iter()
        .map(|u| {
            (
                u["at"].as_str().expect("at"),
                u["taskName"].as_str().expect("name"),
                u["timeZone"].as_str().expect("zone"),
                u["repeats"].as_bool().expect("repeats"),
            )
        })
        .collect();
    assert_eq!(
        first,
        [
            ("2030-01-01T09:00:00Z", "Daily", "+00:00", true),
            ("2030-01-01T11:00:00Z", "Once", "Europe/Paris", false),
            ("2030-01-02T09:00:00Z", "Daily", "+00:00", true),
        ]
    );
    assert!(upcoming[0]["taskId"]
        .as_str()
        .expect("id")
        .starts_with("tsk_"));
}

#[tokio::test]
async fn the_home_screen_carries_what_is_open_so_the_first_screen_needs_one_request() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = Browser::open(&app.base).await;
    browser.signed_in_as("alice").await;
    let task: Value = browser
        .client()
        .post(
            "/bff/tasks",
            &json!({"name": "Stretch", "startDate": in_ms(300), "notify": {"inApp": true}}),
            StatusCode::CREATED,
        )
        .await;
    let open = eventually("the fired occurrence open on the home screen", || async {
        let home = home(&browser).await;
        let open = home["open"].as_array().cloned().unwrap_or_default();
        (!open.is_empty()).then_some(open)
    })
    .await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["taskId"], task["id"]);
    assert_eq!(open[0]["taskName"], "Stretch");
    assert_eq!(open[0]["state"], "open");
    // Done from the home screen: no longer open there.
    let due = open[0]["dueAt"]
        .as_str()
        .expect("dueAt")
        .replace(':', "%3A");
    let id = task["id"].as_str().expect("id");
    let _: Value = browser
        .client()
        .post(
            &format!("/bff/api/tasks/{id}/occurrences/{due}/acknowledge"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(home(&browser).await["open"], json!([]));
}

#[tokio::test]
async fn the_task_api_over_http_answers_as_the_api_itself_for_roles_run_apart() {
    use chime_http::bff::{OverHttp, TaskApi};
    let app = spawn_app_with(|_| {}).await;
    let api = OverHttp::new(reqwest::Url::parse(&format!("{}/", app.base)).expect("url"));
    let request = |body: serde_json::Value| {
        axum::http::Request::builder()
            .method("POST")
            .uri("/api/v1/tasks")
            .header("authorization", format!("Bearer {}", app.token("alice")))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .expect("request")
    };
    let created = api
        .send(request(
            serde_json::json!({"name": "Over HTTP", "startDate": "2030-01-01T09:00:00Z"}),
        ))
        .await;
    assert_eq!(created.status(), 201);
    assert!(created.headers().contains_key("location"));
    let refused = api
        .send(request(serde_json::json!({"startDate": "soon"})))
        .await;
    assert_eq!(refused.status(), 422);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let bytes = axum::body::to_bytes(refused.into_body(), 1 << 20)
        .await
        .expect("body");
    let problem: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert!(problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .any(|e| e["pointer"] == "/name"));
}

/// Sessions live in the store, not in the process: a browser signed in before a restart on the
/// same data directory is still signed in after it, with the same cookie and CSRF token, and
/// the session id itself is nowhere in the data directory (the store keeps a hash of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_session_survives_a_restart_of_the_server_on_the_same_data_directory() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = Browser::open(&app.base).await;
    browser.signed_in_as("alice").await;
    browser
        .client()
        .post::<Value>(
            "/bff/tasks",
            &json!({"name": "Before the restart", "startDate": "2030-01-01T09:00:00Z"}),
            StatusCode::CREATED,
        )
        .await;

    let dir = app.stop().await;
    let id = browser
        .cookie_header()
        .trim_start_matches("chime_session=")
        .to_owned();
    assert!(!id.is_empty());
    for entry in std::fs::read_dir(dir.path()).expect("the data directory") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read a data file");
            assert!(
                !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
                "the session id is stored in {}",
                path.display()
            );
        }
    }

    let app = TestApp::builder().data_dir(dir).start().await;
    browser.base = app.base.clone();

    still_signed_in(
        &browser,
        "alice",
        "After the restart",
        "2030-01-02T09:00:00Z",
    )
    .await;
    let found: Value = browser
        .client()
        .get("/bff/tasks?q=restart", StatusCode::OK)
        .await;
    assert_eq!(found["tasks"].as_array().map(Vec::len), Some(2), "{found}");
    app.running.stop().await.expect("stop");
}

/// Two servers on one PostgreSQL store (as `web` instances behind the gateway are) share their
/// sessions: a browser signed in on one is signed in on the other with the same CSRF token,
/// and signing out on either signs it out on both. No sticky sessions needed.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_store_share_their_web_sessions() {
    let db = crate::migrate::Database::create().await;
    // One configured key for both, as a deployment's Secret gives every instance.
    let shared = |url: String| {
        move |c: &mut chime::Config| {
            c.store.url = Some(url);
            c.encryption.keys = vec!["k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".to_owned()];
            c.encryption.data_dir_key = false;
        }
    };
    let one = spawn_app_with(shared(db.url())).await;
    let two = spawn_app_with(shared(db.url())).await;

    let mut browser = Browser::open(&one.base).await;
    browser.signed_in_as("alice").await;

    browser.base = two.base.clone();
    still_signed_in(
        &browser,
        "alice",
        "On the other instance",
        "2030-01-01T09:00:00Z",
    )
    .await;

    browser
        .client()
        .post::<()>("/bff/auth/logout", &json!({}), StatusCode::NO_CONTENT)
        .await;
    browser.base = one.base.clone();
    let session: Value = browser.client().get("/bff/session", StatusCode::OK).await;
    assert_eq!(session["signedIn"], false, "{session}");

    one.running.stop().await.expect("stop");
    two.running.stop().await.expect("stop");
}
