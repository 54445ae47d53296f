//! Runs workers and restarts a failed one with exponential backoff, until shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Result;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// At most this long between two tries: a worker waiting out an outage of its store or broker
/// resumes within this of its end (the failover drill measured a 10 s cap adding up to 10 s
/// to the first firing after a longer outage, the whole of the design's SLO).
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Spawns `worker` under supervision: when it fails it is logged and started again after a
/// growing delay; it ends when `shutdown` is cancelled.
pub fn spawn<F, Fut>(
    name: &'static str,
    shutdown: CancellationToken,
    mut worker: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = tokio::time::Instant::now();
            match worker().await {
                Ok(()) if shutdown.is_cancelled() => return,
                Ok(()) => tracing::warn!(worker = name, "worker returned; restarting"),
                Err(error) => {
                    tracing::error!(worker = name, error = %error, source = ?std::error::Error::source(&error), "worker failed; restarting")
                }
            }
            if started.elapsed() > MAX_BACKOFF {
                backoff = FIRST_BACKOFF;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}
