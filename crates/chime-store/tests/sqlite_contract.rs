//! Runs the store contract suite on the SQLite adapter, each test on its own file in a fresh
//! temporary directory, and one SQLite-specific check of opening.

use std::sync::Arc;

use async_trait::async_trait;
use chime_store::contract::StoreFactory;
use chime_store::sqlite::{SqliteOptions, SqliteStore};
use chime_store::Store;

/// Opens a [`SqliteStore`] on one file that lives as long as the factory. Reopening after the
/// contract dropped the previous store is a restart; reopening while it is still open is a
/// second instance, which SQLite serialises on the file's write lock.
struct SqliteFactory {
    dir: tempfile::TempDir,
}

impl SqliteFactory {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[async_trait]
impl StoreFactory for SqliteFactory {
    async fn open(&self) -> Arc<dyn Store> {
        let store = SqliteStore::open(
            &self.dir.path().join("chime.sqlite"),
            &SqliteOptions::default(),
        )
        .expect("open the SQLite store");
        Arc::new(store)
    }
}

chime_store::store_contract_tests!(SqliteFactory::new());

/// Not part of the contract (opening is the adapter's own business): several processes
/// starting at once on a new data directory all open the file, rather than all but one
/// failing with "database is locked" while the first switches it to WAL and migrates it.
#[test]
fn stores_opened_at_the_same_moment_on_a_new_file_all_open() {
    const OPENERS: usize = 3;
    for _ in 0..20 {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("chime.sqlite");
        let start = std::sync::Barrier::new(OPENERS);
        std::thread::scope(|s| {
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        SqliteStore::open(&path, &SqliteOptions::default()).map(drop)
                    })
                })
                .collect();
            for opener in openers {
                opener
                    .join()
                    .expect("an opener thread")
                    .expect("open a new file while others open it too");
            }
        });
    }
}
