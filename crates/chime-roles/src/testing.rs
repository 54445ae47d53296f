//! What the request-facing services' unit tests share: a fresh embedded store and a context
//! whose clock stands still at a chosen instant.

use std::sync::Arc;

use chime_core::task::ParseOptions;
use chime_store::sqlite::{SqliteOptions, SqliteStore};
use jiff::Timestamp;

use crate::definition::Definition;
use crate::{Clock, Context, Metrics};

/// A clock stopped at one instant.
pub struct StoppedClock(pub Timestamp);

impl Clock for StoppedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// An adapter no worker reaches in the test: it only makes its channel configured, so the
/// notification role records pending deliveries on it.
pub struct Unreached(pub chime_core::event::Channel);

#[async_trait::async_trait]
impl chime_channels::ChannelAdapter for Unreached {
    fn kind(&self) -> chime_core::event::Channel {
        self.0
    }

    async fn send(
        &self,
        _: &chime_channels::Reminder,
    ) -> Result<chime_channels::Sent, chime_channels::SendError> {
        unreachable!("no delivery worker runs in this test")
    }

    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}

/// A store in a temporary directory, removed when the returned directory is dropped.
pub fn store() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("chime.sqlite"), &SqliteOptions::default())
        .expect("open the store");
    (Arc::new(store), dir)
}

/// A context whose clock reads `now`.
pub fn ctx_at(now: &str) -> Context {
    Context {
        clock: Arc::new(StoppedClock(now.parse().expect("instant"))),
        metrics: Arc::new(Metrics::new()),
        shutdown: tokio_util::sync::CancellationToken::new(),
        store_check: Default::default(),
    }
}

pub fn definition(store: &Arc<SqliteStore>, ctx: &Context) -> Definition {
    Definition::new(store.clone(), ctx.clone(), ParseOptions::default())
}
