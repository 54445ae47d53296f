//! The design's CRON service: one `schedule_tick` a second. Execution does not depend on it
//! for precision (it sleeps until the earliest due instant); the tick is the heartbeat and the
//! safety net that makes every execution instance look at its schedule at least once a second.

use std::sync::Arc;
use std::time::Duration;

use chime_bus::{Bus, Message};
use chime_core::event::{Event, ScheduleTick};

use crate::{Context, Result};

pub const PERIOD: Duration = Duration::from_secs(1);

pub async fn run(bus: Arc<dyn Bus>, ctx: Context) -> Result<()> {
    let result = tick(bus, &ctx).await;
    ctx.metrics.count_error("tick", result)
}

async fn tick(bus: Arc<dyn Bus>, ctx: &Context) -> Result<()> {
    let mut interval = tokio::time::interval(PERIOD);
    // After a stall, one tick is enough: missed ticks carry no information.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            _ = interval.tick() => {}
        }
        let event = Event::ScheduleTick(ScheduleTick {
            at: ctx.clock.now(),
        });
        // Ticks carry no state, so they skip the outbox and go straight to the bus.
        bus.publish(vec![Message {
            topic: event.topic().name().to_owned(),
            key: event.key(),
            payload: event.to_bytes(),
        }])
        .await?;
    }
}
