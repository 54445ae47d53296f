//! The outbox relay: publishes what roles wrote to the outbox, oldest first, then removes
//! exactly what it published. A crash between publish and removal publishes again
//! (at-least-once); consumers are idempotent. Where several processes share the outbox, each
//! relay claims its batch ([`OutboxStore::outbox_claim`]), so they share the work rather than
//! each publishing everything, and it also looks every [`RECHECK`] when idle: another
//! relay's claims may have run out (it died), and a missed wake-up costs at most that.
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

/// How often an idle relay looks at the outbox without being woken.
pub const RECHECK: Duration = Duration::from_secs(1);

pub async fn run(store: Arc<dyn OutboxStore>, bus: Arc<dyn Bus>, ctx: Context) -> Result<()> {
    let result = relay(store, bus, &ctx).await;
    ctx.metrics.count_error("relay", result)
}

async fn relay(store: Arc<dyn OutboxStore>, bus: Arc<dyn Bus>, ctx: &Context) -> Result<()> {
    let signal = store.outbox_signal();
    let shutdown: CancellationToken = ctx.shutdown.clone();
    let mut counted_at: Option<Instant> = None;
    loop {
        let rows = store.outbox_claim(BATCH).await?;
        if rows.is_empty() {
            // Nothing this relay may publish (other relays may hold claims: theirs count it).
            ctx.metrics.outbox_backlog.set(0);
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = signal.notified() => continue,
                () = tokio::time::sleep(RECHECK) => continue,
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
