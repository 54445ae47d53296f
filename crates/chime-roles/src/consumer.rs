//! The consume loop every event-driven role shares: poll a batch, decode it, hand it to the
//! role, commit only after the role's effects are durable (at-least-once; handlers are
//! idempotent).
//!
//! It also keeps the group's `chime_bus_consumer_lag` gauge: the adapter is asked for the
//! lag right after subscribing, after a poll when the last reading is more than
//! [`LAG_EVERY`] old (so a handler that keeps failing, and the restarts that follow, still
//! show a growing lag), and after a commit that caught up (a batch smaller than [`BATCH`]) or
//! whose reading is due. Under load that is one cheap query a second; when idle the gauge
//! reads what the last commit left.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chime_bus::{Bus, Subscription};
use chime_core::event::{Event, Topic};
use tokio::time::Instant;

use crate::{Context, Result};

/// Most records handled in one batch (one store transaction).
pub const BATCH: usize = 512;

/// How often, at most, the lag is read while batches keep coming.
pub const LAG_EVERY: Duration = Duration::from_secs(1);

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
    loop {
        let records = tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
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
        handle(events).await?;
        subscription.commit(&records).await?;
        if records.len() < BATCH || lag.due() {
            lag.read(&mut *subscription).await;
        }
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
