//! schemathesis (PyPI, pinned in `.ci/run`) against the served `/openapi.json`: every
//! operation, authenticated with a token of the local issuer, with generated valid and invalid
//! input. It fails on any 5xx, on any status, content type, header or body the document does
//! not declare for that operation (the response-conformance checks), on an invalid request the
//! server accepts or a valid one it refuses, and, through Chime's own check in
//! `tests/support/schemathesis_hooks.py`, on any 4xx that is not problem+json or, for 400, 413
//! and 422, does not name the refused field.
//!
//! Bounded so that it takes a minute or two: `CHIME_SCHEMATHESIS_EXAMPLES` examples per
//! operation (default 25) with a fixed seed, so a run is reproducible. A longer search:
//! `CHIME_SCHEMATHESIS_EXAMPLES=500 CHIME_SCHEMATHESIS_SEED=$RANDOM cargo test -p chime --test
//! it schemathesis -- --nocapture`.
//!
//! The hooks also fill fields whose rules JSON Schema cannot state (a start in the future, a
//! time zone that exists…) with values that keep them; see the hooks file for why that leaves
//! the checks intact.

use std::path::Path;

use base64::Engine as _;
use std::process::Stdio;

use crate::helpers::spawn_app_with;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_the_api_document_does_not_declare() {
    // Thousands of requests as fast as the server answers: a load on two cores that would
    // make the timing-bound tests beside it (cluster, fence) miss their deadlines.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let app = spawn_app_with(|c| {
        // It tests the API's contract, not the abuse limits: thousands of writes by one user.
        c.limits.writes_per_second = 1e6;
        c.limits.write_burst = u32::MAX;
    })
    .await;
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/schemathesis_hooks.py");
    // Reports and hypothesis's example database go here, not into the source tree.
    let work = tempfile::tempdir().expect("tempdir");
    let token = app.token("schemathesis");
    // A real browser key for the hook that fills push subscriptions (a P-256 point).
    let browser = p256::SecretKey::random(&mut rand::thread_rng());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let p256dh = b64.encode(p256::EncodedPoint::from(browser.public_key()).as_bytes());
    let mut command = tokio::process::Command::new(env_or("SCHEMATHESIS", "schemathesis"));
    command
        .current_dir(work.path())
        .env(
            "SCHEMATHESIS_HOOKS",
            hooks.with_extension("").file_name().expect("name"),
        )
        .env("PYTHONPATH", hooks.parent().expect("support dir"))
        .arg("--config-file")
        .arg(hooks.with_file_name("schemathesis.toml"))
        .env("NO_COLOR", "1")
        .env("CHIME_ST_P256DH", p256dh)
        .env("CHIME_ST_AUTH", b64.encode([7u8; 16]))
        .arg("run")
        .arg(app.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        // Both halves of the contract: schema-valid input is accepted (positive), and input
        // that breaks the schema (a URL over `maxLength`, a pattern broken, a wrong type) is
        // refused with a 4xx problem naming the field (negative, `negative_data_rejection`
        // and the hooks' check), in every phase, the coverage phase's boundary cases included.
        .args(["--mode", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args([
            "--max-examples",
            &env_or("CHIME_SCHEMATHESIS_EXAMPLES", "25"),
        ])
        .args(["--seed", &env_or("CHIME_SCHEMATHESIS_SEED", "9")])
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = command
        .output()
        .await
        .expect("schemathesis (pip install 'schemathesis==4.32.5', see .ci/run)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    app.running.stop().await.expect("stop");
}
