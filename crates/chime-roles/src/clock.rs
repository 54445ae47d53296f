//! Time, injected: roles read the wall clock only through [`Clock`], so tests can control it.

use jiff::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock anchored at a chosen instant that advances with tokio's clock, so that
/// `tokio::time::pause` and `advance` move it exactly.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    anchor: Timestamp,
    started: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(anchor: Timestamp) -> Self {
        Self {
            anchor,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = tokio::time::Instant::now().duration_since(self.started);
        self.anchor
            .checked_add(
                jiff::SignedDuration::try_from(elapsed).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(self.anchor)
    }
}

/// `clock`'s now to the microsecond: the precision every store keeps, so that what a write
/// returns is exactly what a later read returns.
pub fn now_micros(clock: &dyn Clock) -> Timestamp {
    let now = clock.now();
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}
