//! `[telemetry]`: OpenTelemetry traces over OTLP/HTTP (protobuf), when an endpoint is set.
//!
//! One occurrence is one trace, from the execution role's claim to each delivery attempt,
//! across roles and processes: see `chime_roles::trace` for the spans and for why the trace
//! context rides inside the events (they wait in the store's outbox before the bus) rather
//! than in bus headers.
//!
//! With no endpoint (neither `telemetry.otlp_endpoint` nor the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) nothing is set up:
//! no exporter, no OpenTelemetry layer, and spans carry no trace context.
//!
//! Spans are batched and exported from a task on the tokio runtime; [`Telemetry::shutdown`]
//! exports what is still queued, so a server stopped gracefully loses no span. The layer
//! [`Telemetry::layer`] returns is added to the process's subscriber by `main`; the library
//! never installs a global subscriber itself.

use std::time::Duration;

use anyhow::{bail, Context as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};
use tracing_subscriber::Layer;

/// The standard variables that name an OTLP endpoint when the configuration does not.
const OTEL_ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// How long a shutdown waits for the last spans to be exported.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The base URL of an OTLP/HTTP receiver (a collector), e.g. `http://127.0.0.1:4318`;
    /// spans are posted to `{otlp_endpoint}/v1/traces`. Unset: the standard
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (the base URL) when either is set, else no tracing.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of every span.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "chime".to_owned(),
        }
    }
}

impl TelemetryConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(endpoint) = &self.otlp_endpoint {
            let url = reqwest::Url::parse(endpoint)
                .with_context(|| format!("telemetry.otlp_endpoint is not a URL: {endpoint:?}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("telemetry.otlp_endpoint must be an http:// or https:// URL, not {endpoint}");
            }
        }
        if self.service_name.trim().is_empty() {
            bail!("telemetry.service_name must not be empty");
        }
        Ok(())
    }

    /// Whether an endpoint is configured, here or in the standard variables.
    pub fn enabled(&self) -> bool {
        self.otlp_endpoint.is_some()
            || OTEL_ENDPOINT_VARIABLES
                .iter()
                .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
    }
}

/// A running span exporter. Dropping it without [`Telemetry::shutdown`] loses the spans
/// still queued.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Starts the exporter when an endpoint is configured; `None` when tracing is off. Call
    /// it inside the tokio runtime: the batch exporter runs as a task on it.
    pub fn init(config: &TelemetryConfig) -> anyhow::Result<Option<Telemetry>> {
        if !config.enabled() {
            return Ok(None);
        }
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
        if let Some(endpoint) = &config.otlp_endpoint {
            exporter =
                exporter.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
        }
        let exporter = exporter
            .build()
            .context("cannot build the OTLP span exporter")?;
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        Ok(Some(Telemetry { provider }))
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans for this exporter: the
    /// roles' spans at `info` and above. The HTTP client and OpenTelemetry's own events are
    /// left out, or each export would trace itself.
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let filter = tracing_subscriber::EnvFilter::new(
            "info,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
             opentelemetry_http=off,reqwest=off,hyper=off,hyper_util=off,h2=off,tower=off",
        );
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("chime"))
            .with_filter(filter)
    }

    /// Exports the spans still queued and stops the exporter, waiting at most
    /// [`FLUSH_TIMEOUT`].
    pub async fn shutdown(self) -> anyhow::Result<()> {
        // The SDK's shutdown blocks on the export task, which runs on this runtime.
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(FLUSH_TIMEOUT, flushed).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(anyhow::anyhow!("exporting the last spans failed: {error}")),
            Ok(Err(error)) => Err(anyhow::anyhow!(
                "exporting the last spans panicked: {error}"
            )),
            Err(_) => bail!(
                "exporting the last spans took more than {} s",
                FLUSH_TIMEOUT.as_secs()
            ),
        }
    }
}

#[cfg(test)]
// figment's Jail closures return its (large) error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use crate::config::{Config, Overrides};

    fn load() -> Result<Config, figment::Error> {
        Config::load(None, &Overrides::default())
            .map_err(|e| figment::Error::from(format!("{e:#}")))
    }

    #[test]
    fn tracing_is_off_unless_an_endpoint_is_configured_here_or_in_the_standard_variable() {
        figment::Jail::expect_with(|jail| {
            // Empty counts as unset (and makes the test independent of its environment).
            jail.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", "");
            jail.set_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "");
            let telemetry = load()?.telemetry;
            assert_eq!(telemetry.otlp_endpoint, None);
            assert_eq!(telemetry.service_name, "chime");
            assert!(!telemetry.enabled());
            jail.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
            assert!(load()?.telemetry.enabled());
            Ok(())
        });
    }

    #[test]
    fn the_endpoint_comes_from_the_environment_and_must_be_an_http_url() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHIME_TELEMETRY__OTLP_ENDPOINT", "http://collector:4318");
            jail.set_env("CHIME_TELEMETRY__SERVICE_NAME", "chime-eu");
            let telemetry = load()?.telemetry;
            assert_eq!(
                telemetry.otlp_endpoint.as_deref(),
                Some("http://collector:4318")
            );
            assert_eq!(telemetry.service_name, "chime-eu");
            assert!(telemetry.enabled());
            jail.set_env("CHIME_TELEMETRY__OTLP_ENDPOINT", "collector:4317");
            let error = load().expect_err("not an http URL");
            assert!(
                error.to_string().contains("telemetry.otlp_endpoint"),
                "{error}"
            );
            Ok(())
        });
    }
}
