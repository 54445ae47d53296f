//! The store and bus contract suites, run on the decorators over the embedded adapters: the
//! encryption layer keeps every promise of the ports it wraps.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chime_bus::contract::BusFactory;
use chime_bus::log::{LogBus, LogBusOptions};
use chime_bus::Bus;
use chime_crypto::{EncryptedBus, EncryptedStore, Keyring};
use chime_store::contract::StoreFactory;
use chime_store::sqlite::{SqliteOptions, SqliteStore};
use chime_store::Store;

/// Two keys, so that the newest one encrypts while an older one is still configured.
fn keys() -> Arc<Keyring> {
    Arc::new(
        Keyring::new(vec![("k1".to_owned(), [1; 32]), ("k2".to_owned(), [2; 32])])
            .expect("a valid keyring"),
    )
}

mod store {
    use super::*;

    /// An [`EncryptedStore`] over a [`SqliteStore`] on one file that lives as long as the
    /// factory (reopening is a restart, or a second instance while the first is open).
    struct EncryptedSqliteFactory {
        dir: tempfile::TempDir,
    }

    impl EncryptedSqliteFactory {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().expect("temporary directory"),
            }
        }
    }

    #[async_trait]
    impl StoreFactory for EncryptedSqliteFactory {
        async fn open(&self) -> Arc<dyn Store> {
            let inner = SqliteStore::open(
                &self.dir.path().join("chime.sqlite"),
                &SqliteOptions::default(),
            )
            .expect("open the SQLite store");
            Arc::new(EncryptedStore::new(Arc::new(inner), keys()))
        }
    }

    chime_store::store_contract_tests!(EncryptedSqliteFactory::new());
}

mod bus {
    use super::*;

    /// An [`EncryptedBus`] over a [`LogBus`] on one file that lives as long as the factory.
    struct EncryptedLogFactory {
        dir: tempfile::TempDir,
    }

    impl EncryptedLogFactory {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().expect("temporary directory"),
            }
        }
    }

    #[async_trait]
    impl BusFactory for EncryptedLogFactory {
        async fn open(&self) -> Arc<dyn Bus> {
            let options = LogBusOptions {
                retention_interval: Duration::ZERO,
                ..LogBusOptions::default()
            };
            let bus = LogBus::open_with(&self.dir.path().join("bus.sqlite"), options)
                .await
                .expect("open the log bus");
            Arc::new(EncryptedBus::new(Arc::new(bus), keys()))
        }
    }

    chime_bus::bus_contract_tests!(EncryptedLogFactory::new());
}
