//! The outbox relay: publishes what roles wrote to the outbox, oldest first, then removes
//! exactly what it published. A crash between publish and removal publishes again
//! (at-least-once); consumers are idempotent.
//!
//! It keeps the `chime_outbox_backlog` gauge: zero when a read finds the outbox empty, and
//! otherwise a count from the store at most once a [`BACKLOG_EVERY`] (and at once after a
//! restart), read before publishing so that a bus that keeps failing shows a growing backlog.

use std::sync::Arc;
use std::time::Duration;

use chime_bus::{Bus, Message};
use chime_store::OutboxStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{Context, Result};

const BATCH: usize = 1000;

/// How often, at most, the backlog is counted while there is something to relay.
pub const BACKLOG_EVERY: Duration = Duration::from_secs(1);

pub async fn run(store: Arc<dyn OutboxStore>, bus: Arc<dyn Bus>, ctx: Context) -> Result<()> {
    let result = relay(store, bus, &ctx).await;
    ctx.metrics.count_error("relay", result)
}

async fn relay(store: Arc<dyn OutboxStore>, bus: Arc<dyn Bus>, ctx: &Context) -> Result<()> {
    let signal = store.outbox_signal();
    let shutdown: CancellationToken = ctx.shutdown.clone();
    let mut counted_at: Option<Instant> = None;
    loop {
        let rows = store.outbox_batch(BATCH).await?;
        if rows.is_empty() {
            ctx.metrics.outbox_backlog.set(0);
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = signal.notified() => continue,
            }
        }
        if counted_at.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
            counted_at = Some(Instant::now());
            let backlog = store.outbox_len().await?;
            ctx.metrics
                .outbox_backlog
                .set(i64::try_from(backlog).unwrap_or(i64::MAX));
        }
        let count = rows.len() as u64;
        // Exactly these seqs, not "up to the last": see `OutboxStore::outbox_ack`.
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let messages = rows
            .into_iter()
            .map(|r| Message {
                topic: r.topic,
                key: r.key,
                payload: r.payload,
            })
            .collect();
        bus.publish(messages).await?;
        store.outbox_ack(&seqs).await?;
        ctx.metrics.outbox_relayed.inc_by(count);
    }
}
