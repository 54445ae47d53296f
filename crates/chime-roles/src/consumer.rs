//! The consume loop every event-driven role shares: poll a batch, decode it, hand it to the
//! role, commit only after the role's effects are durable (at-least-once; handlers are
//! idempotent).
//!
//! It also keeps the group's `chime_bus_consumer_lag` gauge: the adapter is asked for the
//! lag right after subscribing, then at most once every [`LAG_EVERY`] ([`LAG_EVERY_BUSY`]
//! while batches come full): after a poll whose
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

/// How often a consumer asks again whether its store answers, before it joins its group.
const STORE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How often, at most, the lag is read (the alert on it looks at minutes).
pub const LAG_EVERY: Duration = Duration::from_secs(5);

/// How often, at most, the lag is read while batches come full: each reading holds the next
/// batch back (1-2 s on tansu while a group rebalances), when the consumer is furthest behind.
pub const LAG_EVERY_BUSY: Duration = Duration::from_secs(30);

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
    // Not into the group before the store answers (see `StoreCheck`).
    let mut said = false;
    while !ctx.store_check.answers().await {
        if !said {
            tracing::warn!(
                group,
                "the store does not answer: not joining the group until it does"
            );
            said = true;
        }
        tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(STORE_CHECK_EVERY) => {}
        }
    }
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
        let busy = records.len() >= BATCH;
        if lag.due(busy) {
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
        if lag.due(busy) {
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
    /// Whether a reading is due; `busy` (the batch was full: more is waiting) stretches the
    /// interval to [`LAG_EVERY_BUSY`], since the reading holds the next batch back.
    fn due(&self, busy: bool) -> bool {
        let every = if busy { LAG_EVERY_BUSY } else { LAG_EVERY };
        self.read_at.is_none_or(|at| at.elapsed() >= every)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chime_bus::log::LogBus;
    use chime_bus::Message;

    use super::*;
    use crate::StoreCheck;

    /// The embedded log, counting the groups joined.
    struct Counting {
        log: LogBus,
        joined: AtomicUsize,
    }

    #[async_trait]
    impl Bus for Counting {
        async fn publish(&self, messages: Vec<Message>) -> chime_bus::Result<()> {
            self.log.publish(messages).await
        }

        async fn subscribe(
            &self,
            group: &str,
            topics: &[&str],
        ) -> chime_bus::Result<Box<dyn Subscription>> {
            self.joined.fetch_add(1, Ordering::SeqCst);
            self.log.subscribe(group, topics).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_consumer_joins_its_group_only_once_the_store_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bus = Arc::new(Counting {
            log: LogBus::open(&dir.path().join("log.sqlite"))
                .await
                .expect("log"),
            joined: AtomicUsize::new(0),
        });
        let answers = Arc::new(AtomicBool::new(false));
        let mut ctx = crate::testing::ctx_at("2026-01-01T00:00:00Z");
        ctx.store_check = StoreCheck::new({
            let answers = answers.clone();
            move || {
                let answers = answers.clone();
                Box::pin(async move { answers.load(Ordering::SeqCst) })
            }
        });
        let consumer = tokio::spawn({
            let (bus, ctx) = (bus.clone(), ctx.clone());
            async move { run(bus, "g", &[Topic::TaskEvents], &ctx, |_| async { Ok(()) }).await }
        });
        // A minute of a store that does not answer: asked every second, never joined.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(bus.joined.load(Ordering::SeqCst), 0);

        answers.store(true, Ordering::SeqCst);
        for _ in 0..100 {
            if bus.joined.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(STORE_CHECK_EVERY).await;
        }
        assert_eq!(
            bus.joined.load(Ordering::SeqCst),
            1,
            "joined once it answered"
        );
        ctx.shutdown.cancel();
        consumer.await.expect("consumer").expect("stops cleanly");
    }
}
