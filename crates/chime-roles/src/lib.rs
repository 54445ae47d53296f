//! The design's services as roles, each a set of workers over the store and bus ports:
//!
//! - [`definition`]: task CRUD (ids, versions, history from events); publishes `task_*`.
//! - [`execution`]: keeps each task's next due instant; claims and fires due occurrences.
//! - [`notification`]: delivers each occurrence once per channel; publishes `notification_sent`.
//! - [`tick`]: the design's CRON service, one `schedule_tick` a second (heartbeat, safety net).
//! - [`relay`]: drains the transactional outbox to the bus.
//! - `web`: the web app's BFF and static files; it has no workers here (it is HTTP only,
//!   in `chime-http`), but it is a role so that `--roles` can run it apart.
//! - [`inbox_feed`]: the live inbox feed of an API process apart from `notification`.
//!
//! Roles know ports, never adapters: the binary wires them. Every worker is a loop that ends
//! when its shutdown token is cancelled and returns an error to the [`supervisor`], which
//! restarts it with backoff; consumers commit only after their effects are durable, so a
//! restart redelivers and idempotent handlers make that harmless.

use std::sync::Arc;

pub mod clock;
pub mod consumer;
pub mod definition;
pub mod execution;
pub mod inbox_feed;
pub mod metrics;
pub mod notification;
pub mod occurrence;
pub mod relay;
pub mod supervisor;
#[cfg(test)]
mod testing;
pub mod tick;
pub mod trace;

pub use clock::{Clock, SystemClock};
pub use metrics::Metrics;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] chime_store::Error),
    #[error(transparent)]
    Bus(#[from] chime_bus::Error),
    /// A task written by a newer release (a rolling upgrade): left for an instance that reads it.
    #[error(transparent)]
    Task(#[from] chime_core::task::StoredTaskError),
}

/// The role names `--roles` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Definition,
    Execution,
    Notification,
    Tick,
    Web,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Definition,
        Role::Execution,
        Role::Notification,
        Role::Tick,
        Role::Web,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Definition => "definition",
            Role::Execution => "execution",
            Role::Notification => "notification",
            Role::Tick => "tick",
            Role::Web => "web",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// What every role shares.
#[derive(Clone)]
pub struct Context {
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Whether the store answers: a consumer joins its group only once it does.
    pub store_check: StoreCheck,
}

/// A round trip to the store, or nothing to check (the embedded store, in the same process).
///
/// A consumer asks it before it joins its group: a process cut off from its store (a network
/// partition) that joined would take partitions whose events it cannot handle, and hold them
/// until the group gave up on it (`max.poll.interval.ms` on Kafka), then join again and take
/// them again: the events of those partitions would wait for the partition to heal.
#[derive(Clone, Default)]
pub struct StoreCheck(
    Option<Arc<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>>,
);

impl StoreCheck {
    /// `answers` returns whether a round trip to the store succeeded.
    pub fn new(
        answers: impl Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync + 'static,
    ) -> Self {
        Self(Some(Arc::new(answers)))
    }

    /// Whether the store answers (always, with nothing to check).
    pub async fn answers(&self) -> bool {
        match &self.0 {
            Some(answers) => answers().await,
            None => true,
        }
    }
}
