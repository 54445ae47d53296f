//! Retention (`[retention]` of `chime serve`): the design's "policy to delete past tasks over a
//! certain threshold", run in the background by every instance with the definition role.
//!
//! A run walks each [`PastKind`] through the store a window of `batch` rows at a time (see
//! `chime_store::retention` for what each kind's rule lets go and what it never touches),
//! pausing `pause_ms` between windows, so it holds the writer only briefly (measured: without
//! the pause, a run deleting 500,000 rows delayed a 10,000 burst due meanwhile by a second;
//! see BENCHMARKS.md) and a crash half way loses nothing: the next run finds what this one
//! left. Several instances may run at once; each row is deleted once. Every run
//! logs one line with what it deleted and counts it in `chime_retention_deleted_total`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use chime_roles::metrics::KindLabels;
use chime_roles::Context;
use chime_store::{PastCursor, PastKind, RetentionStore};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The first run after start waits this long (not a whole interval: a server restarted more
/// often than that would never run one), so start-up is not slowed by it.
const FIRST_RUN_AFTER: Duration = Duration::from_secs(60);

/// `[retention]`: how long the past is kept, and how often it is cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Seconds between two runs; 0 turns retention off (nothing is ever deleted).
    pub interval_seconds: u64,
    /// Days a finished task (a fired one-time task, an ended repeat) is kept after it last
    /// changed or fired; 0 keeps them forever.
    pub finished_tasks_days: u32,
    /// Days history, occurrence states, final deliveries (dead letters too) and SMS reply
    /// targets are kept; 0 keeps them forever.
    pub history_days: u32,
    /// Days a read inbox item is kept; 0 keeps them forever. Unread ones are never deleted.
    pub read_inbox_days: u32,
    /// Rows looked at per transaction.
    pub batch: usize,
    /// Milliseconds between two transactions, so that scheduling never waits behind more than
    /// one small window (the embedded store has one writer).
    pub pause_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval_seconds: 3600,
            finished_tasks_days: 365,
            history_days: 365,
            read_inbox_days: 365,
            batch: 200,
            pause_ms: 2,
        }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=10_000).contains(&self.batch) {
            bail!(
                "retention.batch must be between 1 and 10000, not {}",
                self.batch
            );
        }
        for (key, days) in [
            ("finished_tasks_days", self.finished_tasks_days),
            ("history_days", self.history_days),
            ("read_inbox_days", self.read_inbox_days),
        ] {
            if days > 36_500 {
                bail!("retention.{key} must be at most 36500 (a century), not {days}");
            }
        }
        if self.pause_ms > 60_000 {
            bail!(
                "retention.pause_ms must be at most 60000, not {}",
                self.pause_ms
            );
        }
        if self.interval_seconds > 366 * 86_400 {
            bail!(
                "retention.interval_seconds must be at most a year, not {}",
                self.interval_seconds
            );
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.interval_seconds > 0
    }

    /// How long `kind` is kept; `None`: forever.
    pub fn keep(&self, kind: PastKind) -> Option<SignedDuration> {
        let days = match kind {
            PastKind::FinishedTasks => self.finished_tasks_days,
            PastKind::ReadInbox => self.read_inbox_days,
            PastKind::History
            | PastKind::HistoryDeliveries
            | PastKind::Occurrences
            | PastKind::Deliveries
            | PastKind::ReplyTargets => self.history_days,
        };
        (days > 0).then(|| SignedDuration::from_hours(24 * i64::from(days)))
    }

    /// The cutoff for `kind` at `now`: rows older than it may go.
    pub fn cutoff(&self, kind: PastKind, now: Timestamp) -> Option<Timestamp> {
        self.keep(kind)
            .map(|keep| now.checked_sub(keep).unwrap_or(Timestamp::MIN))
    }
}

/// What one run deleted, per kind, in [`PastKind::ALL`]'s order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub deleted: Vec<(PastKind, u64)>,
}

impl Report {
    pub fn total(&self) -> u64 {
        self.deleted.iter().map(|(_, n)| n).sum()
    }

    pub fn of(&self, kind: PastKind) -> u64 {
        self.deleted
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

/// One run at `now`: every kind the policy keeps for a while, walked to its table's end (or
/// until `ctx.shutdown`). Each window is counted in the metric as it commits.
pub async fn run_once(
    store: &dyn RetentionStore,
    config: &RetentionConfig,
    now: Timestamp,
    ctx: &Context,
) -> chime_store::Result<Report> {
    let mut report = Report::default();
    for kind in PastKind::ALL {
        let Some(cutoff) = config.cutoff(kind, now) else {
            continue;
        };
        let counter = ctx
            .metrics
            .retention_deleted
            .get_or_create(&KindLabels { kind: kind.name() })
            .clone();
        let mut deleted = 0;
        let mut after: Option<PastCursor> = None;
        loop {
            if ctx.shutdown.is_cancelled() {
                break;
            }
            let purged = store
                .purge_past(kind, cutoff, now, after.as_ref(), config.batch)
                .await?;
            deleted += purged.deleted;
            counter.inc_by(purged.deleted);
            match purged.next {
                Some(next) => after = Some(next),
                None => break,
            }
            // Between windows, whatever else waits for the store goes first.
            if config.pause_ms == 0 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(config.pause_ms)).await;
            }
        }
        report.deleted.push((kind, deleted));
    }
    Ok(report)
}

/// The background job: a run [`FIRST_RUN_AFTER`] start, then every `interval_seconds`, until
/// shutdown. A failed run is logged and tried again at the next interval.
pub async fn run(store: Arc<dyn RetentionStore>, config: RetentionConfig, ctx: Context) {
    let interval = Duration::from_secs(config.interval_seconds);
    tracing::info!(
        every_seconds = config.interval_seconds,
        finished_tasks_days = config.finished_tasks_days,
        history_days = config.history_days,
        read_inbox_days = config.read_inbox_days,
        "retention is on"
    );
    let mut next = tokio::time::Instant::now() + interval.min(FIRST_RUN_AFTER);
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        let started = tokio::time::Instant::now();
        let now = ctx.clock.now();
        match run_once(&*store, &config, now, &ctx).await {
            Ok(report) => {
                ctx.metrics.retention_runs.inc();
                let of = |kind| report.of(kind);
                tracing::info!(
                    finished_tasks = of(PastKind::FinishedTasks),
                    history = of(PastKind::History) + of(PastKind::HistoryDeliveries),
                    occurrences = of(PastKind::Occurrences),
                    deliveries = of(PastKind::Deliveries),
                    read_inbox = of(PastKind::ReadInbox),
                    reply_targets = of(PastKind::ReplyTargets),
                    took_ms = started.elapsed().as_millis() as u64,
                    "retention run"
                );
            }
            Err(error) => {
                tracing::error!(
                    error = %error,
                    "retention run failed; trying again at the next interval"
                );
            }
        }
        next = (started + interval).max(tokio::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_kept_zero_days_is_kept_forever_and_the_cutoff_is_days_before_now() {
        let config = RetentionConfig {
            read_inbox_days: 0,
            ..RetentionConfig::default()
        };
        let now: Timestamp = "2027-12-05T10:00:00Z".parse().expect("an instant");
        assert_eq!(config.cutoff(PastKind::ReadInbox, now), None);
        assert_eq!(
            config.cutoff(PastKind::Deliveries, now),
            Some("2026-12-05T10:00:00Z".parse().expect("an instant"))
        );
        assert!(RetentionConfig {
            batch: 0,
            ..config.clone()
        }
        .validate()
        .is_err());
        assert!(config.validate().is_ok());
    }
}
