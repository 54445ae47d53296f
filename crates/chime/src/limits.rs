//! `[limits]`: what one client or user may ask of the server. Each limit, when hit, is
//! answered with a problem+json body: 413 (body), 429 with `Retry-After` (write rate), 503
//! with `Retry-After` (concurrency), 409 (tasks per user). See `chime_http::guard`.

use anyhow::bail;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body, in bytes.
    pub body_bytes: usize,
    /// Seconds a request body may take to arrive whole (over: 408, connection closed).
    pub body_read_seconds: f64,
    /// Requests in progress at once; more are answered 503 at once, not queued.
    pub concurrent_requests: usize,
    /// Open notification streams (SSE) at once; they do not count as requests.
    pub event_streams: usize,
    /// Writes (POST, PUT, PATCH, DELETE under `/api/v1`) per second per user, sustained.
    pub writes_per_second: f64,
    /// Writes a user may make in a burst.
    pub write_burst: u32,
    /// Tasks one user may have.
    pub tasks_per_user: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: chime_http::BODY_LIMIT,
            body_read_seconds: chime_http::BODY_READ_TIMEOUT.as_secs_f64(),
            concurrent_requests: 512,
            event_streams: 1024,
            writes_per_second: 20.0,
            write_burst: 100,
            tasks_per_user: 10_000,
        }
    }
}

impl LimitsConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("limits.body_bytes", self.body_bytes),
            ("limits.concurrent_requests", self.concurrent_requests),
            ("limits.event_streams", self.event_streams),
            ("limits.tasks_per_user", self.tasks_per_user),
            ("limits.write_burst", self.write_burst as usize),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        // tokio's semaphores hold at most `usize::MAX >> 3` permits.
        if self.concurrent_requests > 1 << 24 || self.event_streams > 1 << 24 {
            bail!("limits.concurrent_requests and limits.event_streams must be at most 16777216");
        }
        if !(self.body_read_seconds.is_finite()
            && self.body_read_seconds > 0.0
            && self.body_read_seconds <= 86_400.0)
        {
            bail!(
                "limits.body_read_seconds must be more than 0 and at most 86400, not {}",
                self.body_read_seconds
            );
        }
        if !(self.writes_per_second.is_finite() && self.writes_per_second > 0.0) {
            bail!(
                "limits.writes_per_second must be a positive number, not {}",
                self.writes_per_second
            );
        }
        Ok(())
    }

    /// The HTTP guard's settings; `hsts` when the listener is HTTPS.
    pub fn guard(&self, hsts: bool) -> chime_http::guard::GuardConfig {
        chime_http::guard::GuardConfig {
            body_limit_bytes: self.body_bytes,
            // Validated: finite, positive and at most a day.
            body_read_timeout: std::time::Duration::from_secs_f64(self.body_read_seconds),
            max_concurrent_requests: self.concurrent_requests,
            max_event_streams: self.event_streams,
            writes_per_second: self.writes_per_second,
            write_burst: self.write_burst,
            hsts,
        }
    }
}
