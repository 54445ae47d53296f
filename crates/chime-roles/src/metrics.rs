//! Prometheus metrics, one registry per server (no globals, so tests in one process don't
//! share counters). Names follow Prometheus conventions; counters get `_total` on exposition.
//!
//! Every family is registered up front, and the label sets whose first increment an alert
//! must see (deliveries by channel and outcome, missed occurrences by policy, errors by role,
//! provider errors by channel and kind) are created at zero: `increase()` over a series that
//! appears at 1 sees no increase, so a first dead letter would otherwise not alert.
//!
//! Label values are bounded sets (channels, outcomes, roles, HTTP route templates); never an
//! id, a raw path or anything personal.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use chime_core::event::Channel;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: &'static str,
    pub outcome: &'static str,
}

/// A delivery, by channel only.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: &'static str,
}

/// What retention deleted, by kind (`chime_store::PastKind::name`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// A missed occurrence, by the task's missed-occurrence policy: `fireOnceLate` (folded into
/// the occurrence that fired) or `skip` (recorded, nobody notified).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MissedLabels {
    pub policy: &'static str,
}

/// The role (or worker) a count belongs to.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub role: String,
}

/// A consumer group of the bus.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub group: String,
}

/// A failed provider call: `kind` is `transient` (retried), `permanent` or `gone`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderErrorLabels {
    pub channel: &'static str,
    pub kind: &'static str,
}

/// An HTTP request: `route` is the router's path template (`/api/v1/tasks/{id}`), never the
/// raw path, so ids do not become series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// A feature of the web app used once (`feature`, `variant` from the BFF's allowlist, e.g.
/// `task_created` / `repeating_week`): the design's Pendo dashboards, with no third party and
/// nothing about who used it.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureLabels {
    pub feature: &'static str,
    pub variant: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    pub method: String,
    pub route: String,
}

/// Lateness buckets, seconds: from a millisecond, through the design's 10 s SLO (a bucket
/// bound, so alerts can count what is past it), to an hour (retries, downtime).
const LATENESS_BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0,
];

/// HTTP latency buckets, seconds.
const HTTP_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The roles whose worker errors are counted, created at zero.
pub const ROLES: [&str; 5] = ["definition", "execution", "notification", "relay", "tick"];

/// The missed-occurrence policies that can miss an occurrence (`fireAll` fires each one).
pub const MISSED_POLICIES: [&str; 2] = ["fireOnceLate", "skip"];

/// The channels quiet hours hold back: the ones that buzz or ring (the in-app inbox shows each
/// reminder on time; a webhook is a machine's).
pub const QUIET_CHANNELS: [Channel; 9] = [
    Channel::Email,
    Channel::Sms,
    Channel::Push,
    Channel::Ntfy,
    Channel::Gotify,
    Channel::Telegram,
    Channel::Slack,
    Channel::Discord,
    Channel::Matrix,
];

/// The kinds of provider error.
pub const PROVIDER_ERROR_KINDS: [&str; 3] = ["transient", "permanent", "gone"];

/// Outcomes counted in `chime_deliveries_total` (`retried` is an attempt, not a final state).
pub const DELIVERY_OUTCOMES: [&str; 4] = ["sent", "retried", "deadLettered", "skipped"];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    pub registry: Registry,
    pub tasks_created: Counter,
    pub tasks_updated: Counter,
    pub tasks_deleted: Counter,
    pub executions: Counter,
    pub executions_late: Counter,
    pub executions_skipped: Counter,
    /// Occurrences a missed-occurrence policy did not fire on their own.
    pub executions_missed: Family<MissedLabels, Counter>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// External deliveries held until the end of their owner's quiet hours.
    pub deliveries_deferred: Family<ChannelLabels, Counter>,
    /// `execute_task` events a notification instance took over from the store because no
    /// instance had recorded them from the bus in time (a dead or cut-off consumer's share).
    pub handoffs_taken: Counter,
    /// Occurrences acknowledged, by the channel the acknowledgement came from.
    pub acknowledgements: Family<ChannelLabels, Counter>,
    /// From an occurrence's due instant to its acknowledgement.
    pub acknowledgement_delay: Histogram,
    /// Occurrences snoozed by their owner.
    pub snoozes: Counter,
    /// Snoozed occurrences that returned (fired again when their snooze ended).
    pub snooze_returns: Counter,
    /// Occurrences of nagging tasks sent again because nobody acknowledged them.
    pub nag_repeats: Counter,
    /// Escalation steps fired (occurrences sent on a held-back channel), by channel.
    pub escalations: Family<ChannelLabels, Counter>,
    /// Rows retention deleted, by kind.
    pub retention_deleted: Family<KindLabels, Counter>,
    /// Retention runs that went through every kind.
    pub retention_runs: Counter,
    pub execution_lateness: Histogram,
    pub delivery_lateness: Histogram,
    pub outbox_relayed: Counter,
    /// Outbox rows not yet relayed, as the relay last saw it.
    pub outbox_backlog: Gauge,
    /// Records published to a group's topics and not yet committed by it.
    pub bus_consumer_lag: Family<GroupLabels, Gauge>,
    pub store_errors: Family<RoleLabels, Counter>,
    pub bus_errors: Family<RoleLabels, Counter>,
    pub provider_errors: Family<ProviderErrorLabels, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<HttpRouteLabels>,
    pub web_features: Family<FeatureLabels, Counter>,
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
            executions_missed: Family::default(),
            deliveries: Family::default(),
            deliveries_deferred: Family::default(),
            handoffs_taken: Counter::default(),
            acknowledgements: Family::default(),
            acknowledgement_delay: Histogram::new(LATENESS_BUCKETS),
            snoozes: Counter::default(),
            snooze_returns: Counter::default(),
            nag_repeats: Counter::default(),
            escalations: Family::default(),
            retention_deleted: Family::default(),
            retention_runs: Counter::default(),
            execution_lateness: Histogram::new(LATENESS_BUCKETS),
            delivery_lateness: Histogram::new(LATENESS_BUCKETS),
            outbox_relayed: Counter::default(),
            outbox_backlog: Gauge::default(),
            bus_consumer_lag: Family::default(),
            store_errors: Family::default(),
            bus_errors: Family::default(),
            provider_errors: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS)),
            web_features: Family::default(),
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
            "chime_executions_missed",
            "Missed occurrences not fired on their own, by policy: folded into a late one \
             (fireOnceLate) or skipped past the task's limit (skip)",
            m.executions_missed.clone(),
        );
        registry.register(
            "chime_deliveries",
            "Deliveries by channel and outcome",
            m.deliveries.clone(),
        );
        registry.register(
            "chime_deliveries_deferred",
            "External deliveries held until their owner's quiet hours end, by channel",
            m.deliveries_deferred.clone(),
        );
        registry.register(
            "chime_handoffs_taken",
            "Fired occurrences whose deliveries a notification instance recorded from the \
             store because none had recorded them from the bus in time (a dead or cut-off \
             consumer's share, before the broker moved its partitions)",
            m.handoffs_taken.clone(),
        );
        registry.register(
            "chime_acknowledgements",
            "Occurrences acknowledged, by the channel the acknowledgement came from",
            m.acknowledgements.clone(),
        );
        registry.register(
            "chime_acknowledgement_delay_seconds",
            "From an occurrence's due instant to its acknowledgement",
            m.acknowledgement_delay.clone(),
        );
        registry.register(
            "chime_snoozes",
            "Occurrences snoozed by their owner",
            m.snoozes.clone(),
        );
        registry.register(
            "chime_snooze_returns",
            "Snoozed occurrences that fired again when their snooze ended",
            m.snooze_returns.clone(),
        );
        registry.register(
            "chime_nag_repeats",
            "Occurrences of nagging tasks sent again because nobody acknowledged them",
            m.nag_repeats.clone(),
        );
        registry.register(
            "chime_escalations",
            "Escalation steps fired: occurrences still not acknowledged sent on a held-back channel",
            m.escalations.clone(),
        );
        registry.register(
            "chime_retention_deleted",
            "Rows the retention policy deleted, by kind (finished tasks, history, read inbox...)",
            m.retention_deleted.clone(),
        );
        registry.register(
            "chime_retention_runs",
            "Retention runs that went through every kind of past",
            m.retention_runs.clone(),
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
        registry.register(
            "chime_outbox_backlog",
            "Outbox events not yet relayed to the bus",
            m.outbox_backlog.clone(),
        );
        registry.register(
            "chime_bus_consumer_lag",
            "Records published to a consumer group's topics and not yet committed by it",
            m.bus_consumer_lag.clone(),
        );
        registry.register(
            "chime_store_errors",
            "Store operations that failed a worker, by role",
            m.store_errors.clone(),
        );
        registry.register(
            "chime_bus_errors",
            "Bus operations that failed a worker, by role",
            m.bus_errors.clone(),
        );
        registry.register(
            "chime_provider_errors",
            "Failed provider calls, by channel and kind (transient, permanent, gone)",
            m.provider_errors.clone(),
        );
        registry.register(
            "chime_http_requests",
            "HTTP requests by method, route template and status",
            m.http_requests.clone(),
        );
        registry.register(
            "chime_http_request_duration_seconds",
            "HTTP request latency by method and route template, until the response head",
            m.http_duration.clone(),
        );
        registry.register(
            "chime_web_features_used",
            "Web app features used, by feature and variant (reported by the app; users may opt out)",
            m.web_features.clone(),
        );
        m.create_known_series();
        Metrics { registry, ..m }
    }

    /// Creates, at zero, the series alerts compute an `increase` over. (`get_or_create`
    /// returns a read guard; it is dropped at once.)
    fn create_known_series(&self) {
        for kind in chime_store::PastKind::ALL {
            drop(
                self.retention_deleted
                    .get_or_create(&KindLabels { kind: kind.name() }),
            );
        }
        for channel in Channel::ALL {
            for outcome in DELIVERY_OUTCOMES {
                drop(self.deliveries.get_or_create(&DeliveryLabels {
                    channel: channel.as_str(),
                    outcome,
                }));
            }
            drop(self.acknowledgements.get_or_create(&ChannelLabels {
                channel: channel.as_str(),
            }));
            if QUIET_CHANNELS.contains(&channel) {
                drop(self.deliveries_deferred.get_or_create(&ChannelLabels {
                    channel: channel.as_str(),
                }));
            }
            if channel != Channel::InApp {
                for kind in PROVIDER_ERROR_KINDS {
                    drop(self.provider_errors.get_or_create(&ProviderErrorLabels {
                        channel: channel.as_str(),
                        kind,
                    }));
                }
            }
        }
        for policy in MISSED_POLICIES {
            drop(
                self.executions_missed
                    .get_or_create(&MissedLabels { policy }),
            );
        }
        for role in ROLES {
            let labels = RoleLabels {
                role: role.to_owned(),
            };
            drop(self.store_errors.get_or_create(&labels));
            drop(self.bus_errors.get_or_create(&labels));
        }
    }

    /// Counts a worker's failure by its cause (store or bus). A stored task this release cannot
    /// read yet counts as the store's.
    pub fn worker_error(&self, role: &str, error: &crate::Error) {
        let labels = RoleLabels {
            role: role.to_owned(),
        };
        match error {
            crate::Error::Store(_) | crate::Error::Task(_) => {
                self.store_errors.get_or_create(&labels).inc()
            }
            crate::Error::Bus(_) => self.bus_errors.get_or_create(&labels).inc(),
        };
    }

    /// Passes `result` through, counting its error (if any) against `role`.
    pub fn count_error<T>(&self, role: &str, result: crate::Result<T>) -> crate::Result<T> {
        if let Err(error) = &result {
            self.worker_error(role, error);
        }
        result
    }

    /// Sets a consumer group's lag.
    pub fn set_consumer_lag(&self, group: &str, lag: u64) {
        self.bus_consumer_lag
            .get_or_create(&GroupLabels {
                group: group.to_owned(),
            })
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_before_its_first_use() {
        let text = Metrics::new().render();
        for name in [
            "chime_executions_missed",
            "chime_outbox_backlog",
            "chime_bus_consumer_lag",
            "chime_store_errors",
            "chime_provider_errors",
            "chime_http_requests",
            "chime_http_request_duration_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
        }
        assert!(
            text.contains(r#"chime_deliveries_total{channel="email",outcome="deadLettered"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"chime_executions_missed_total{policy="skip"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"chime_deliveries_deferred_total{channel="sms"} 0"#),
            "{text}"
        );
        // alerts.yml counts what is past the SLO with this exact bucket label.
        assert!(
            text.contains(r#"chime_execution_lateness_seconds_bucket{le="10.0"} 0"#),
            "{text}"
        );
    }
}
