//! Operations: the alert rules and the dashboard under `deploy/` against the real server.
//!
//! - `promtool check rules` and `promtool test rules` pass on `deploy/prometheus/` (Debian's
//!   `prometheus` package; `.ci/run` installs it). Without promtool the test fails and says
//!   how to install it, so CI cannot skip the check silently.
//! - Every metric the dashboard and the alerts query is one `/metrics` really exposes. The
//!   names are the `chime_*` identifiers in the dashboard's `expr` fields and in the rules'
//!   `expr:` values; the exposed names are derived from the scrape's `# TYPE` lines the way
//!   Prometheus stores them (a counter `x` is `x_total`; a histogram `x` is `x_bucket`,
//!   `x_sum` and `x_count`; a gauge is its name), so a family with no sample yet still counts,
//!   and a query of a name Prometheus would never store (a histogram's bare name) fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{
    eventually, in_ms, sample, spawn_app, spawn_app_with, Receiver, Reply, StatusCode,
};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn promtool() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("promtool"))
        .find(|path| path.is_file());
    match found {
        Some(path) => path,
        None => panic!(
            "promtool is not installed, so the alert rules cannot be checked. Install Debian's \
             `prometheus` package (DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends prometheus), as .ci/run does"
        ),
    }
}

fn run_promtool(args: &[&str]) {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    run_promtool(&["check", "rules", "alerts.yml"]);
    run_promtool(&["test", "rules", "alerts.test.yml"]);
}

/// The `chime_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("chime_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let end = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
        if !before.is_some_and(is_ident) {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// Every `expr` string anywhere in the dashboard.
fn dashboard_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(expr) if key == "expr" => out.push(expr.clone()),
                    _ => dashboard_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// The `expr:` values of a rule file: inline, or a block scalar (`|`, `>`) made of the lines
/// indented deeper than the key.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        i += 1;
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if !value.starts_with('|') && !value.starts_with('>') {
            exprs.push(value.to_owned());
            continue;
        }
        let mut block = String::new();
        while i < lines.len() {
            let next = lines[i];
            let next_indent = next.len() - next.trim_start().len();
            if !next.trim().is_empty() && next_indent <= indent {
                break;
            }
            block.push_str(next.trim());
            block.push('\n');
            i += 1;
        }
        exprs.push(block);
    }
    exprs
}

/// The series names a scrape gives Prometheus, from its `# TYPE` lines.
fn exposed_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let Some(declared) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut words = declared.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn names_are_read_from_exprs_and_type_lines_as_prometheus_stores_them() {
    assert_eq!(
        metric_names(r#"sum(rate(chime_a_total{x="chime_b"}[5m])) / foo_chime_c + chime_d"#),
        ["chime_a_total", "chime_b", "chime_d"]
            .map(String::from)
            .into()
    );
    let yaml = "      - alert: A\n        expr: chime_x > 1\n        for: 1m\n      - alert: B\n        expr: |\n          sum(chime_y)\n            / chime_z\n        labels: {}\n";
    assert_eq!(
        rule_exprs(yaml),
        ["chime_x > 1", "sum(chime_y)\n/ chime_z\n"]
    );
    let scrape = "# TYPE c counter\n# TYPE h histogram\n# TYPE g gauge\n";
    assert_eq!(
        exposed_names(scrape),
        ["c_total", "h_bucket", "h_sum", "h_count", "g"]
            .map(String::from)
            .into()
    );
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exposed_by_metrics() {
    let app = spawn_app().await;

    // A little of everything: a task that fires and is delivered in-app, one updated and
    // deleted, a 404 on a route with an id, and a path no route matches.
    let due = app
        .create(
            "alice",
            &json!({"name": "Water the plants", "startDate": in_ms(1500)}),
        )
        .await;
    let other = app
        .create(
            "alice",
            &json!({"name": "Later", "startDate": in_ms(3_600_000)}),
        )
        .await;
    let other_id = other["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/tasks/{other_id}");
    let alice = app.user("alice");
    alice
        .put::<Value>(
            &path,
            &json!({"name": "Later still", "startDate": in_ms(7_200_000)}),
            StatusCode::OK,
        )
        .await;
    alice.delete::<()>(&path, StatusCode::NO_CONTENT).await;
    alice.get_problem(&path, StatusCode::NOT_FOUND).await;
    let unmatched = alice
        .request(reqwest::Method::GET, "/no/such/page")
        .send()
        .await
        .expect("request");
    assert_eq!(unmatched.status(), 404);

    let scrape = eventually("the in-app delivery in /metrics", || async {
        let scrape = app.metrics().await;
        let sent = sample(
            &scrape,
            r#"chime_deliveries_total{channel="inApp",outcome="sent"}"#,
        )?;
        (sent >= 1.0).then_some(scrape)
    })
    .await;

    // What the exercise must have counted.
    for (series, value) in [
        ("chime_tasks_created_total", 2.0),
        ("chime_tasks_updated_total", 1.0),
        ("chime_tasks_deleted_total", 1.0),
        ("chime_executions_total", 1.0),
        ("chime_execution_lateness_seconds_count", 1.0),
        (
            r#"chime_http_requests_total{method="POST",route="/api/v1/tasks",status="201"}"#,
            2.0,
        ),
        (
            r#"chime_http_requests_total{method="GET",route="/api/v1/tasks/{id}",status="404"}"#,
            1.0,
        ),
        (
            r#"chime_http_requests_total{method="GET",route="unmatched",status="404"}"#,
            1.0,
        ),
        // Created at zero, so an alert's increase() sees the first one.
        (
            r#"chime_deliveries_total{channel="email",outcome="deadLettered"}"#,
            0.0,
        ),
        (r#"chime_executions_missed_total{policy="skip"}"#, 0.0),
        (r#"chime_store_errors_total{role="execution"}"#, 0.0),
        (
            r#"chime_provider_errors_total{channel="webhook",kind="transient"}"#,
            0.0,
        ),
    ] {
        assert_eq!(
            sample(&scrape, series),
            Some(value),
            "{series} in\n{scrape}"
        );
    }
    for series in [
        r#"chime_bus_consumer_lag{group="definition"}"#,
        r#"chime_bus_consumer_lag{group="execution"}"#,
        r#"chime_bus_consumer_lag{group="notification"}"#,
        "chime_outbox_backlog",
        // ChimeOccurrencesFiredLate selects this exact bucket.
        r#"chime_execution_lateness_seconds_bucket{le="10.0"}"#,
        r#"chime_http_request_duration_seconds_count{method="GET",route="/api/v1/tasks/{id}"}"#,
    ] {
        assert!(sample(&scrape, series).is_some(), "{series} in\n{scrape}");
    }
    // Route labels are templates: no id, no raw path.
    for raw in [
        other_id.as_str(),
        due["id"].as_str().expect("id"),
        "/no/such/page",
    ] {
        assert!(!scrape.contains(raw), "{raw} leaked into /metrics");
    }

    // Every name queried is exposed.
    let exposed = exposed_names(&scrape);
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("grafana/chime.json")).expect("read the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    assert!(
        exprs.len() >= 10,
        "the dashboard has its queries: {exprs:?}"
    );
    let rules = std::fs::read_to_string(deploy().join("prometheus/alerts.yml"))
        .expect("read the alert rules");
    let rule_exprs = rule_exprs(&rules);
    assert!(
        rule_exprs.len() >= 10,
        "the rules have their exprs: {rule_exprs:?}"
    );

    let mut missing = Vec::new();
    let mut queried = BTreeSet::new();
    for (source, exprs) in [("grafana/chime.json", &exprs), ("alerts.yml", &rule_exprs)] {
        for expr in exprs.iter() {
            for name in metric_names(expr) {
                if !exposed.contains(&name) {
                    missing.push(format!("{source}: {name} (in `{}`)", expr.trim()));
                }
                queried.insert(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "queried but not exposed by /metrics:\n{}\nexposed: {exposed:?}",
        missing.join("\n")
    );
    // The design's views and the issue's list are all there.
    for name in [
        "chime_tasks_created_total",
        "chime_tasks_updated_total",
        "chime_tasks_deleted_total",
        "chime_executions_total",
        "chime_executions_late_total",
        "chime_executions_missed_total",
        "chime_execution_lateness_seconds_bucket",
        "chime_delivery_lateness_seconds_bucket",
        "chime_deliveries_total",
        "chime_bus_consumer_lag",
        "chime_outbox_backlog",
        "chime_store_errors_total",
        "chime_provider_errors_total",
        "chime_http_requests_total",
        "chime_http_request_duration_seconds_bucket",
    ] {
        assert!(queried.contains(name), "nothing queries {name}");
    }
}

/// The inputs of `ChimeProviderErrorRate` and `ChimeDeadLetters` move on a real failure: a
/// provider that fails transiently, then permanently.
#[tokio::test]
async fn a_failing_provider_is_counted_as_provider_errors_a_retry_and_a_dead_letter() {
    let app = spawn_app_with(|config| {
        config.delivery.retry_base_seconds = 0.2;
        config.delivery.retry_max_delay_seconds = 1.0;
        config.channels.webhook = Some(chime_channels::webhook::WebhookConfig {
            allow_private: true,
            timeout_seconds: 10,
        });
    })
    .await;
    // A webhook receiver that answers 503 to the first call and 400 to every later one.
    let failing = Receiver::answering(|_, n| Reply::status(if n == 1 { 503 } else { 400 })).await;
    app.user("alice").set_webhook(&failing.url("/hook")).await;
    app.create(
        "alice",
        &json!({"name": "r", "startDate": in_ms(1500), "notify": {"webhook": true, "inApp": false}}),
    )
    .await;

    let scrape = eventually("the dead letter in /metrics", || async {
        let scrape = app.metrics().await;
        let dead = sample(
            &scrape,
            r#"chime_deliveries_total{channel="webhook",outcome="deadLettered"}"#,
        )?;
        (dead >= 1.0).then_some(scrape)
    })
    .await;
    for (series, value) in [
        (
            r#"chime_provider_errors_total{channel="webhook",kind="transient"}"#,
            1.0,
        ),
        (
            r#"chime_provider_errors_total{channel="webhook",kind="permanent"}"#,
            1.0,
        ),
        (
            r#"chime_deliveries_total{channel="webhook",outcome="retried"}"#,
            1.0,
        ),
        (
            r#"chime_deliveries_total{channel="webhook",outcome="deadLettered"}"#,
            1.0,
        ),
        (
            r#"chime_deliveries_total{channel="webhook",outcome="sent"}"#,
            0.0,
        ),
    ] {
        assert_eq!(
            sample(&scrape, series),
            Some(value),
            "{series} in\n{scrape}"
        );
    }
}
