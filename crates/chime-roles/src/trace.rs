//! Trace context across roles: one occurrence is one trace. The execution role's `claim` span
//! is its root; the notification role's `deliver` span (the occurrence's delivery records,
//! the in-app one included) is its child, and every `attempt` on an external channel,
//! retries included, is a child of that.
//!
//! The context travels as a W3C `traceparent` string inside what the roles hand each other
//! (the `execute_task` event, the pending delivery record), not in bus headers: an
//! `execute_task` waits in the store's outbox before the relay publishes it, and a delivery
//! waits in the store between attempts, so a header-only context would be lost on the way.
//!
//! Spans only get a trace context when the subscriber has an OpenTelemetry layer (an OTLP
//! endpoint is configured). Without one, [`traceparent`] is `None` and [`set_parent`] does
//! nothing, so tracing off costs the plain `tracing` spans and nothing more.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: &str = "traceparent";

/// The `traceparent` of `span`, when it belongs to a trace.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The `traceparent` of the current span, when it belongs to a trace.
pub fn current_traceparent() -> Option<String> {
    traceparent(&tracing::Span::current())
}

/// Makes `span` a child of the remote span `traceparent` names. Call it before the span is
/// first entered; a missing or malformed `traceparent` leaves the span where it was.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer or once the span has started: then there
        // is no trace to join.
        let _ = span.set_parent(cx);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Keeps every finished span.
    #[derive(Debug, Clone, Default)]
    struct Spans(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Spans {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    #[test]
    fn without_an_opentelemetry_layer_spans_carry_no_trace_context() {
        let span = tracing::info_span!("claim");
        assert_eq!(traceparent(&span), None);
        set_parent(
            &span,
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        assert_eq!(traceparent(&span), None);
    }

    #[test]
    fn a_span_given_a_traceparent_joins_that_trace_as_a_child() {
        let exporter = Spans::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let claim = tracing::info_span!(parent: None, "claim");
            let carried = {
                let _entered = claim.enter();
                current_traceparent().expect("a traced span has a traceparent")
            };
            let deliver = tracing::info_span!(parent: None, "deliver");
            set_parent(&deliver, Some(&carried));
            let joined = traceparent(&deliver).expect("traceparent");
            // Same trace id, a span id of its own.
            assert_eq!(joined[..35], carried[..35]);
            assert_ne!(joined, carried);
            set_parent(&tracing::info_span!("x"), Some("not a traceparent"));
            drop((claim, deliver));
        });
        let spans = exporter.0.lock().unwrap().clone();
        let claim = spans.iter().find(|s| s.name == "claim").expect("claim");
        let deliver = spans.iter().find(|s| s.name == "deliver").expect("deliver");
        assert_eq!(
            deliver.span_context.trace_id(),
            claim.span_context.trace_id()
        );
        assert_eq!(deliver.parent_span_id, claim.span_context.span_id());
    }
}
