//! The consume loop every event-driven role shares: poll a batch, decode it, hand it to the
//! role, commit only after the role's effects are durable (at-least-once; handlers are
//! idempotent).
//!
//! It also keeps the group's `chime_bus_consumer_lag` gauge: the adapter is asked for the
//! lag right after subscribing, then at most once every [`LAG_EVERY`]: after a poll whose
//! reading is due (so a handler that keeps failing, and the restarts that follow, still show a
//! growing lag), after a commit whose reading is due, and, when batches were consumed since
//! the last reading and none follows, once the interval has passed (so an idle group's gauge
//! ends at what the last commit left). A reading is a broker round trip per partition on
//! Kafka (seconds on a slow broker), so it is never taken per batch: reading after every
//! small batch held each one back by that long.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chime_bus::{Bus, Subscription};
use chime_core::event::{Event, Topic};
use tokio::time::Instant;

use crate::{Context, Result};

/// Most records handled in one batch (one store transaction).
pub const BATCH: usize = 512;

/// How often, at most, the lag is read (the alert on it looks at minutes).
pub const LAG_EVERY: Duration = Duration::from_secs(5);

/// Consumes `topics` as `group` until shutdown, calling `handle` with each decoded batch.
/// A record that does not decode is logged and skipped: one bad message must not stop a role.
/// The role's failures are counted under `group` (a group is named after its role).
pub async fn run<F, Fut>(
    bus: Arc<dyn Bus>,
    group: &str,
    topics: &[Topic],
    ctx: &Context,
    handle: F,
) -> Result<()>
where
    F: FnMut(Vec<Event>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let result = consume(bus, group, topics, ctx, handle).await;
    ctx.metrics.count_error(group, result)
}

async fn consume<F, Fut>(
    bus: Arc<dyn Bus>,
    group: &str,
    topics: &[Topic],
    ctx: &Context,
    mut handle: F,
) -> Result<()>
where
    F: FnMut(Vec<Event>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let names: Vec<&str> = topics.iter().map(|t| t.name()).collect();
    let mut subscription = bus.subscribe(group, &names).await?;
    let mut lag = Lag {
        group,
        ctx,
        read_at: None,
    };
    lag.read(&mut *subscription).await;
    // Batches were committed since the last reading.
    let mut owed = false;
    loop {
        let reading = lag.next_at().filter(|_| owed);
        let records = tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            // Idle with a reading owed: take it (`poll` is cancel-safe).
            () = sleep_until(reading) => {
                lag.read(&mut *subscription).await;
                owed = false;
                continue;
            }
            records = subscription.poll(BATCH) => records?,
        };
        if lag.due() {
            lag.read(&mut *subscription).await;
        }
        let events = records
            .iter()
            .filter_map(|r| match Event::from_bytes(&r.payload) {
                Ok(e) => Some(e),
                Err(error) => {
                    tracing::error!(group, topic = %r.topic, offset = r.offset, %error, "skipping an undecodable record");
                    None
                }
            })
            .collect();
        let started = Instant::now();
        handle(events).await?;
        let handled = started.elapsed();
        subscription.commit(&records).await?;
        let committed = started.elapsed() - handled;
        owed = true;
        if lag.due() {
            lag.read(&mut *subscription).await;
            owed = false;
        }
        tracing::debug!(
            group,
            records = records.len(),
            handle_ms = handled.as_millis() as u64,
            commit_ms = committed.as_millis() as u64,
            lag_ms = (started.elapsed() - handled - committed).as_millis() as u64,
            "batch consumed"
        );
    }
}

/// The lag gauge of one group and when it was last read.
struct Lag<'a> {
    group: &'a str,
    ctx: &'a Context,
    read_at: Option<Instant>,
}

impl Lag<'_> {
    fn due(&self) -> bool {
        self.read_at.is_none_or(|at| at.elapsed() >= LAG_EVERY)
    }

    /// When the next reading may be taken.
    fn next_at(&self) -> Option<Instant> {
        self.read_at.map(|at| at + LAG_EVERY)
    }

    /// Reads the lag from the adapter. A failed reading only leaves the gauge as it was: the
    /// poll and commit around it report a failing bus.
    async fn read(&mut self, subscription: &mut dyn Subscription) {
        self.read_at = Some(Instant::now());
        match subscription.lag().await {
            Ok(Some(lag)) => self.ctx.metrics.set_consumer_lag(self.group, lag),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(group = self.group, %error, "cannot read the consumer lag")
            }
        }
    }
}

/// Sleeps until `at`; never returns without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
