//! The bus: the embedded log's tables in the store's file (schema, consumer lag, outbox), or
//! the Kafka-protocol broker (one metadata request), which a build without the `kafka`
//! feature cannot reach.

#[cfg(feature = "kafka")]
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _};

#[cfg(feature = "kafka")]
use super::causes;
use super::{check, Check, Status};

/// The Kafka-protocol broker, in a build without the adapter: it cannot be reached.
#[cfg(not(feature = "kafka"))]
pub(super) async fn kafka_check(_bus: &crate::backends::BusConfig, _bootstrap: &str) -> Check {
    check(Status::Fail, "bus", crate::backends::NO_KAFKA.to_owned())
}

/// The Kafka-protocol broker: one metadata request.
#[cfg(feature = "kafka")]
pub(super) async fn kafka_check(bus: &crate::backends::BusConfig, bootstrap: &str) -> Check {
    let options = chime_bus::kafka::KafkaOptions {
        bootstrap_servers: bootstrap.to_owned(),
        settings: bus
            .kafka_settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..chime_bus::kafka::KafkaOptions::default()
    };
    let pinged = match chime_bus::kafka::KafkaBus::connect(options) {
        Ok(kafka) => tokio::time::timeout(Duration::from_secs(15), kafka.ping())
            .await
            .map_err(|_| "no answer within 15 s".to_owned())
            .and_then(|r| r.map_err(|e| causes(&e))),
        Err(e) => Err(causes(&e)),
    };
    match pinged {
        Ok(()) => check(
            Status::Ok,
            "bus",
            format!("Kafka broker at {bootstrap} answers"),
        ),
        Err(e) => check(
            Status::Fail,
            "bus",
            format!("Kafka broker at {bootstrap}: {e}: check bus.kafka_bootstrap and the broker"),
        ),
    }
}

pub(super) fn bus_check(conn: &Connection) -> Check {
    let inner = || -> anyhow::Result<Check> {
        let has_meta: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bus_meta')",
            [],
            |r| r.get(0),
        )?;
        if !has_meta {
            return Ok(check(
                Status::Warn,
                "bus",
                "the log's tables are not in the store's file yet: `chime serve` creates them",
            ));
        }
        let version: i64 = conn
            .query_row(
                "SELECT value FROM bus_meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if version != chime_bus::log::SCHEMA_VERSION {
            return Ok(check(
                Status::Fail,
                "bus",
                format!(
                    "the log's schema version is {version}, this build knows {}: run the chime \
                     that wrote it",
                    chime_bus::log::SCHEMA_VERSION
                ),
            ));
        }
        let lag: Vec<(String, i64)> = conn
            .prepare(
                "SELECT g.group_name, SUM(MAX(t.next_offset - g.next_offset, 0))
                   FROM bus_group_offsets g JOIN bus_topics t ON t.topic = g.topic
                  GROUP BY g.group_name ORDER BY g.group_name",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let outbox: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        let lag = if lag.is_empty() {
            "no consumer group yet".to_owned()
        } else {
            lag.iter()
                .map(|(group, n)| format!("{group} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(check(
            Status::Ok,
            "bus",
            format!(
                "log schema version {version}; consumer lag: {lag}; outbox: {outbox} events not \
                 yet relayed"
            ),
        ))
    };
    inner().unwrap_or_else(|e| check(Status::Fail, "bus", format!("cannot read it: {e:#}")))
}
