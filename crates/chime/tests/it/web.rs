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

use crate::helpers::spawn_app_with;
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

async fn npm(web: &Path, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut command = tokio::process::Command::new("npm");
    command
        .args(args)
        .current_dir(web)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::time::timeout(E2E_PATIENCE, command.output())
        .await
        .unwrap_or_else(|_| panic!("`npm {}` did not finish in time", args.join(" ")))
        .expect("run npm (Node.js 20 or later is needed)")
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
        spawn_app_with(move |c| c.web.static_dir = dist).await
    };
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
            ("CHROMIUM", chromium),
        ],
    )
    .await;
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert_success("the end-to-end suite (web/e2e/run.mjs)", &output);
}
