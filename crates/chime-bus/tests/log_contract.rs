//! Runs the bus contract suite on the embedded log, each test on its own file in a fresh
//! temporary directory.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chime_bus::contract::BusFactory;
use chime_bus::log::{LogBus, LogBusOptions};
use chime_bus::Bus;

/// Opens a [`LogBus`] on one file that lives as long as the factory. Reopening after the
/// contract dropped the previous bus is a restart; a bus still alive at that point would be
/// harmless too, as SQLite serialises writers to one file.
struct LogFactory {
    dir: tempfile::TempDir,
}

impl LogFactory {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[async_trait]
impl BusFactory for LogFactory {
    async fn open(&self) -> Arc<dyn Bus> {
        let options = LogBusOptions {
            // Retention on every commit, so the retention check really exercises it.
            retention_interval: Duration::ZERO,
            ..LogBusOptions::default()
        };
        let bus = LogBus::open_with(&self.dir.path().join("bus.sqlite"), options)
            .await
            .expect("open the log bus");
        Arc::new(bus)
    }
}

chime_bus::bus_contract_tests!(LogFactory::new());
