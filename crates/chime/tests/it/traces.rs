//! OpenTelemetry traces: the real binary, with an OTLP endpoint configured, exports one trace
//! per occurrence from the execution role's claim to the notification role's deliveries (the
//! in-app record and the webhook attempt), to a local OTLP/HTTP receiver that decodes the
//! protobuf the exporter posts. The exporter's periodic export is pushed out of reach, so
//! the spans arrive only through the flush of a graceful (SIGTERM) shutdown.
//!
//! (`traces`, not `tracing`: a module of that name would shadow the `tracing` crate.)

use std::collections::HashMap;
use std::process::Stdio;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::helpers::{await_ready, binary_token, eventually, free_port, in_ms, PATIENCE};

/// One exported span, as the receiver decoded it.
#[derive(Debug, Clone)]
struct Span {
    service: Option<String>,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: HashMap<String, String>,
}

fn strings(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some((kv.key.clone(), s.clone())),
            any_value::Value::IntValue(i) => Some((kv.key.clone(), i.to_string())),
            _ => None,
        })
        .collect()
}

/// An OTLP/HTTP receiver on 127.0.0.1:0: `POST /v1/traces` with a protobuf body; each span
/// it receives goes to the channel.
async fn otlp_receiver() -> (String, mpsc::UnboundedReceiver<Span>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(
                |State(tx): State<mpsc::UnboundedSender<Span>>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    if headers
                        .get("content-type")
                        .is_none_or(|t| t != "application/x-protobuf")
                    {
                        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
                    }
                    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                        return (StatusCode::BAD_REQUEST, Vec::new());
                    };
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .as_ref()
                            .and_then(|r| strings(&r.attributes).remove("service.name"));
                        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                            let _ = tx.send(Span {
                                service: service.clone(),
                                name: span.name,
                                trace_id: span.trace_id,
                                span_id: span.span_id,
                                parent_span_id: span.parent_span_id,
                                attributes: strings(&span.attributes),
                            });
                        }
                    }
                    // An empty `ExportTraceServiceResponse`: everything was accepted.
                    (StatusCode::OK, Vec::new())
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, rx)
}

/// A webhook receiver on 127.0.0.1:0 that answers 204 and reports each call.
async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(tx): State<mpsc::UnboundedSender<()>>| async move {
                let _ = tx.send(());
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn one_trace_follows_an_occurrence_from_its_claim_to_each_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (otlp, mut spans) = otlp_receiver().await;
    let (hook, mut hooked) = webhook_receiver().await;
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chime"))
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("CHIME_TELEMETRY__OTLP_ENDPOINT", &otlp)
        .env("CHIME_CHANNELS__WEBHOOK__ALLOW_PRIVATE", "true")
        // Only the shutdown's flush exports: a periodic export would hide a missing flush.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("CHIME_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chime");
    let base = format!("http://127.0.0.1:{port}");
    await_ready(&base).await;
    let client = reqwest::Client::new();
    let alice = binary_token(&data, None, "alice");

    let response = client
        .put(format!("{base}/api/v1/webhook"))
        .bearer_auth(&alice)
        .json(&json!({ "url": hook }))
        .send()
        .await
        .expect("put webhook");
    assert_eq!(response.status(), 200);
    let response = client
        .post(format!("{base}/api/v1/tasks"))
        .bearer_auth(&alice)
        .json(&json!({
            "name": "Water the plants",
            "startDate": in_ms(1000),
            "notify": {"inApp": true, "webhook": true}
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 201);
    let task: Value = response.json().await.expect("json");
    let task_id = task["id"].as_str().expect("id").to_owned();

    tokio::time::timeout(PATIENCE, hooked.recv())
        .await
        .expect("the webhook was not called")
        .expect("receiver");
    // Both deliveries recorded: every span of the occurrence has ended.
    eventually("both deliveries to be recorded as sent", || {
        let (client, url, alice) = (
            client.clone(),
            format!("{base}/api/v1/tasks/{task_id}/history"),
            alice.clone(),
        );
        async move {
            let history: Value = client
                .get(url)
                .bearer_auth(alice)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let deliveries = history["history"][0]["deliveries"].as_array()?.clone();
            let sent = |channel: &str| {
                deliveries
                    .iter()
                    .any(|d| d["channel"] == channel && d["outcome"] == "sent")
            };
            (sent("inApp") && sent("webhook")).then_some(())
        }
    })
    .await;

    let pid = child.id().expect("pid").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill -TERM");
    assert!(status.success());
    let exit = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("the server did not stop on SIGTERM")
        .expect("wait");
    assert!(exit.success(), "{exit}");

    // The exporter's last request was answered before the process exited.
    let mut received = Vec::new();
    while let Ok(span) = spans.try_recv() {
        received.push(span);
    }
    assert!(!received.is_empty(), "no span was exported");
    assert!(
        received
            .iter()
            .all(|s| s.service.as_deref() == Some("chime")),
        "{received:#?}"
    );

    let claim = received
        .iter()
        .find(|s| s.name == "claim" && s.attributes.get("task_id") == Some(&task_id))
        .unwrap_or_else(|| panic!("no claim span for {task_id}: {received:#?}"));
    assert!(claim.parent_span_id.is_empty(), "the claim is the root");
    let trace: Vec<&Span> = received
        .iter()
        .filter(|s| s.trace_id == claim.trace_id)
        .collect();
    let by_id: HashMap<&[u8], &Span> = trace.iter().map(|s| (&s.span_id[..], *s)).collect();
    // Every span of the trace leads back to the claim through its parents.
    for span in &trace {
        let mut at = *span;
        let mut hops = 0;
        while !at.parent_span_id.is_empty() {
            at = by_id
                .get(&at.parent_span_id[..])
                .unwrap_or_else(|| panic!("{}'s parent was not exported: {trace:#?}", span.name));
            hops += 1;
            assert!(hops < 16, "a parent cycle: {trace:#?}");
        }
        assert_eq!(at.span_id, claim.span_id, "{trace:#?}");
    }
    let deliver = trace
        .iter()
        .find(|s| s.name == "deliver")
        .unwrap_or_else(|| panic!("no deliver span in the claim's trace: {trace:#?}"));
    assert_eq!(deliver.parent_span_id, claim.span_id);
    assert_eq!(deliver.attributes.get("task_id"), Some(&task_id));
    let attempt = trace
        .iter()
        .find(|s| {
            s.name == "attempt"
                && s.attributes.get("channel").map(String::as_str) == Some("webhook")
        })
        .unwrap_or_else(|| panic!("no webhook attempt in the claim's trace: {trace:#?}"));
    assert_eq!(attempt.parent_span_id, deliver.span_id);
    assert_eq!(
        attempt.attributes.get("attempt").map(String::as_str),
        Some("1")
    );
}
