//! The outbox relay: publishes what roles wrote to the outbox, in commit order, then removes
//! it. A crash between publish and removal publishes again (at-least-once); consumers are
//! idempotent.

use std::sync::Arc;

use chime_bus::{Bus, Message};
use chime_store::OutboxStore;
use tokio_util::sync::CancellationToken;

use crate::{Context, Result};

const BATCH: usize = 1000;

pub async fn run(store: Arc<dyn OutboxStore>, bus: Arc<dyn Bus>, ctx: Context) -> Result<()> {
    let signal = store.outbox_signal();
    let shutdown: CancellationToken = ctx.shutdown.clone();
    loop {
        let rows = store.outbox_batch(BATCH).await?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = signal.notified() => continue,
            }
        };
        let count = rows.len() as u64;
        let messages = rows
            .into_iter()
            .map(|r| Message {
                topic: r.topic,
                key: r.key,
                payload: r.payload,
            })
            .collect();
        bus.publish(messages).await?;
        store.outbox_ack(last).await?;
        ctx.metrics.outbox_relayed.inc_by(count);
    }
}
