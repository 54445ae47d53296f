//! The consume loop every event-driven role shares: poll a batch, decode it, hand it to the
//! role, commit only after the role's effects are durable (at-least-once; handlers are
//! idempotent).

use std::future::Future;
use std::sync::Arc;

use chime_bus::Bus;
use chime_core::event::{Event, Topic};
use tokio_util::sync::CancellationToken;

use crate::Result;

/// Most records handled in one batch (one store transaction).
pub const BATCH: usize = 512;

/// Consumes `topics` as `group` until shutdown, calling `handle` with each decoded batch.
/// A record that does not decode is logged and skipped: one bad message must not stop a role.
pub async fn run<F, Fut>(
    bus: Arc<dyn Bus>,
    group: &str,
    topics: &[Topic],
    shutdown: CancellationToken,
    mut handle: F,
) -> Result<()>
where
    F: FnMut(Vec<Event>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let names: Vec<&str> = topics.iter().map(|t| t.name()).collect();
    let mut subscription = bus.subscribe(group, &names).await?;
    loop {
        let records = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            records = subscription.poll(BATCH) => records?,
        };
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
    }
}
