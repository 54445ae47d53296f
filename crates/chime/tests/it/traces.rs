//! OpenTelemetry traces: the real binary, with an OTLP endpoint configured, exports one trace
//! per occurrence from the execution role's claim to the notification role's deliveries (the
//! in-app record and the webhook attempt), to a local OTLP/HTTP receiver that decodes the
//! protobuf the exporter posts. The exporter's periodic export is pushed out of reach, so
//! the spans arrive only through the flush of a graceful (SIGTERM) shutdown.
//!
//! (`traces`, not `tracing`: a module of that name would shadow the `tracing` crate.)

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message as _;
use serde_json::{json, Value};

use crate::helpers::{eventually, in_ms, Receiver, Reply, Serve, StatusCode};

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

/// An OTLP/HTTP receiver on 127.0.0.1:0: `POST /v1/traces` with a protobuf body, accepted
/// whole (an empty `ExportTraceServiceResponse`) when it decodes.
async fn otlp_receiver() -> Receiver {
    Receiver::answering(|request, _| {
        if request.header("content-type") != Some("application/x-protobuf") {
            Reply::status(415)
        } else if ExportTraceServiceRequest::decode(request.body.clone()).is_err() {
            Reply::status(400)
        } else {
            Reply::status(200)
        }
    })
    .await
}

/// Every span the receiver was sent, decoded.
fn spans(receiver: &Receiver) -> Vec<Span> {
    let mut spans = Vec::new();
    for request in receiver.requests() {
        let Ok(export) = ExportTraceServiceRequest::decode(request.body) else {
            continue;
        };
        for resource in export.resource_spans {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| strings(&r.attributes).remove("service.name"));
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                    attributes: strings(&span.attributes),
                });
            }
        }
    }
    spans
}

#[tokio::test]
async fn one_trace_follows_an_occurrence_from_its_claim_to_each_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let otlp = otlp_receiver().await;
    let hook = Receiver::start(Reply::status(204)).await;
    let mut server = Serve::new(&data)
        .env("CHIME_TELEMETRY__OTLP_ENDPOINT", otlp.base())
        .env("CHIME_CHANNELS__WEBHOOK__ALLOW_PRIVATE", "true")
        // Only the shutdown's flush exports: a periodic export would hide a missing flush.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("CHIME_LOG", "warn")
        .start()
        .await;
    let alice = server.user("alice");

    alice.set_webhook(&hook.url("/hook")).await;
    let task = alice
        .create_task(&json!({
            "name": "Water the plants",
            "startDate": in_ms(1000),
            "notify": {"inApp": true, "webhook": true}
        }))
        .await;
    let task_id = task["id"].as_str().expect("id").to_owned();

    hook.nth(1).await;
    // Both deliveries recorded: every span of the occurrence has ended.
    eventually("both deliveries to be recorded as sent", || {
        let (alice, path) = (&alice, format!("/api/v1/tasks/{task_id}/history"));
        async move {
            let history: Value = alice.get(&path, StatusCode::OK).await;
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

    let exit = server.terminate().await;
    assert!(exit.success(), "{exit}");

    // The exporter's last request was answered before the process exited.
    let received = spans(&otlp);
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
