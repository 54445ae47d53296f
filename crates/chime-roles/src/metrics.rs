//! Prometheus metrics, one registry per server (no globals, so tests in one process don't
//! share counters). Names follow Prometheus conventions; counters get `_total` on exposition.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: &'static str,
    pub outcome: &'static str,
}

/// Lateness buckets, seconds: from a millisecond to past the design's 10 s SLO.
const LATENESS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    pub registry: Registry,
    pub tasks_created: Counter,
    pub tasks_updated: Counter,
    pub tasks_deleted: Counter,
    pub executions: Counter,
    pub executions_late: Counter,
    pub executions_skipped: Counter,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub execution_lateness: Histogram,
    pub delivery_lateness: Histogram,
    pub outbox_relayed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            tasks_created: Counter::default(),
            tasks_updated: Counter::default(),
            tasks_deleted: Counter::default(),
            executions: Counter::default(),
            executions_late: Counter::default(),
            executions_skipped: Counter::default(),
            deliveries: Family::default(),
            execution_lateness: Histogram::new(LATENESS_BUCKETS),
            delivery_lateness: Histogram::new(LATENESS_BUCKETS),
            outbox_relayed: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "chime_tasks_created",
            "Tasks created",
            m.tasks_created.clone(),
        );
        registry.register(
            "chime_tasks_updated",
            "Tasks updated",
            m.tasks_updated.clone(),
        );
        registry.register(
            "chime_tasks_deleted",
            "Tasks deleted",
            m.tasks_deleted.clone(),
        );
        registry.register(
            "chime_executions",
            "Occurrences fired (execute_task emitted)",
            m.executions.clone(),
        );
        registry.register(
            "chime_executions_late",
            "Occurrences fired later than the lateness threshold",
            m.executions_late.clone(),
        );
        registry.register(
            "chime_executions_skipped",
            "Missed occurrences recorded as skipped by their task's policy",
            m.executions_skipped.clone(),
        );
        registry.register(
            "chime_deliveries",
            "Deliveries by channel and outcome",
            m.deliveries.clone(),
        );
        registry.register(
            "chime_execution_lateness_seconds",
            "From an occurrence's due instant to its execute_task",
            m.execution_lateness.clone(),
        );
        registry.register(
            "chime_delivery_lateness_seconds",
            "From an occurrence's due instant to its delivery being recorded",
            m.delivery_lateness.clone(),
        );
        registry.register(
            "chime_outbox_relayed",
            "Events relayed from the outbox to the bus",
            m.outbox_relayed.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Seconds from `due` to `at`, never negative.
pub fn lateness_seconds(due: jiff::Timestamp, at: jiff::Timestamp) -> f64 {
    at.duration_since(due).as_secs_f64().max(0.0)
}
