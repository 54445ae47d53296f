//! The execution role: keeps each task's next due instant and fires it.
//!
//! Two workers share a wake-up:
//! - the consumer applies `task_*` events to the schedule (versioned, so replays are harmless)
//!   and wakes the timer on every change and every `schedule_tick`;
//! - the timer claims due rows and, in the same transaction, writes their `execute_task`
//!   events to the outbox and advances or finishes each row (no double fire), then sleeps
//!   until the earliest due instant, a wake-up or shutdown, whichever comes first. Lateness is
//!   therefore the time a claim takes, not a tick period.
//!
//! Missed occurrences (found due long after their instant, e.g. after downtime) follow the
//! task's policy; see [`decide`].

use std::sync::Arc;

use chime_bus::Bus;
use chime_core::event::{Event, ExecuteTask, OccurrenceKey, Topic};
use chime_core::{MissedPolicy, Occurrence, TaskSpec};
use chime_store::{Fire, FireFn, OutboxEvent, ScheduleChange, ScheduleStore, ScheduledTask};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;

use crate::metrics::lateness_seconds;
use crate::{consumer, Context, Result};

#[derive(Debug, Clone, Copy)]
pub struct ExecutionConfig {
    /// An occurrence fired later than this after its due instant is flagged `late`.
    pub late_after: SignedDuration,
    /// Most rows claimed in one transaction.
    pub batch: usize,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            // The design's SLO: every occurrence within 10 s of its due instant.
            late_after: SignedDuration::from_secs(10),
            batch: 512,
        }
    }
}

#[derive(Clone)]
pub struct Execution {
    store: Arc<dyn ScheduleStore>,
    ctx: Context,
    config: ExecutionConfig,
    wake: Arc<Notify>,
}

impl Execution {
    pub fn new(store: Arc<dyn ScheduleStore>, ctx: Context, config: ExecutionConfig) -> Self {
        Self {
            store,
            ctx,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The consumer of `task-events` and `schedule-ticks`.
    pub async fn run_consumer(&self, bus: Arc<dyn Bus>) -> Result<()> {
        consumer::run(
            bus,
            "execution",
            &[Topic::TaskEvents, Topic::ScheduleTicks],
            self.ctx.shutdown.clone(),
            |events| async move {
                let changes: Vec<ScheduleChange> =
                    events.iter().filter_map(schedule_change).collect();
                if !changes.is_empty() {
                    self.store.apply_schedule_changes(&changes).await?;
                }
                // A change may bring the earliest due instant forward; a tick is a heartbeat.
                self.wake.notify_one();
                Ok(())
            },
        )
        .await
    }

    /// The timer: fire what is due, sleep until the next due instant or a wake-up.
    pub async fn run_timer(&self) -> Result<()> {
        let shutdown = self.ctx.shutdown.clone();
        loop {
            let fired = self.fire_due().await?;
            if fired == self.config.batch {
                continue;
            }
            let sleep = match self.store.next_due().await? {
                Some(due) => {
                    let wait = self.ctx.clock.now().duration_until(due);
                    tokio::time::Duration::try_from(wait).unwrap_or_default()
                }
                None => tokio::time::Duration::from_secs(3600),
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Fires one batch of due rows; returns how many.
    pub async fn fire_due(&self) -> Result<usize> {
        let now = self.ctx.clock.now();
        let late_after = self.config.late_after;
        let metrics = self.ctx.metrics.clone();
        let fire: FireFn = Arc::new(move |row: &ScheduledTask| {
            let (fire, fired) = decide(row, now, late_after);
            if let Some(fired) = fired {
                if fired.skipped {
                    metrics.executions_skipped.inc();
                } else {
                    metrics.executions.inc();
                    if fired.late {
                        metrics.executions_late.inc();
                    }
                    metrics
                        .execution_lateness
                        .observe(lateness_seconds(row.due_at, now));
                }
            }
            fire
        });
        Ok(self.store.fire_due(now, self.config.batch, fire).await?)
    }
}

/// How a `task_*` event changes the schedule. The first occurrence is taken at or after the
/// instant the task was saved, not when the event is consumed, so an occurrence that fell due
/// while this role was down still fires (late) instead of being skipped.
fn schedule_change(event: &Event) -> Option<ScheduleChange> {
    match event {
        Event::TaskCreated(e) | Event::TaskUpdated(e) => {
            let next = match TaskSpec::parse(&e.task) {
                Ok(spec) => spec.schedule.first_at_or_after(e.at).map(|o| (o.at, o.seq)),
                Err(error) => {
                    tracing::error!(task_id = %e.task_id, %error, "task event body does not parse; unscheduling");
                    None
                }
            };
            Some(ScheduleChange::Set {
                task_id: e.task_id,
                user_id: e.user_id.clone(),
                version: e.version,
                body: e.task.clone(),
                next,
            })
        }
        Event::TaskDeleted(e) => Some(ScheduleChange::Delete {
            task_id: e.task_id,
            version: e.version,
        }),
        _ => None,
    }
}

/// What firing `row` at `now` does, by the task's missed-occurrence policy:
///
/// - every policy fires the row's occurrence, flagged `late` when `now` is more than
///   `late_after` past it;
/// - `fireOnceLate` (default): later occurrences that are also already due are folded into
///   this one (counted in `coalesced`); the row moves to the first occurrence after `now`;
/// - `fireAll`: the row moves to the next occurrence, which fires at once if already due;
/// - `skip`: an occurrence more than `limit` late is recorded as skipped (history shows it,
///   nobody is notified); the row moves to the next occurrence.
pub fn decide(
    row: &ScheduledTask,
    now: Timestamp,
    late_after: SignedDuration,
) -> (Fire, Option<Fired>) {
    let spec = match TaskSpec::parse(&row.body) {
        Ok(spec) => spec,
        Err(error) => {
            tracing::error!(task_id = %row.task_id, %error, "scheduled task does not parse; unscheduling");
            let fire = Fire {
                events: Vec::new(),
                next: None,
            };
            return (fire, None);
        }
    };
    let schedule = &spec.schedule;
    let current = Occurrence {
        at: row.due_at,
        seq: row.seq,
    };
    let lateness = row.due_at.duration_until(now);
    let mut next = schedule.after(&current);
    let mut coalesced = 0;
    let mut skipped = false;
    match spec.missed {
        MissedPolicy::FireOnceLate => {
            while let Some(o) = next.filter(|o| o.at <= now) {
                coalesced += 1;
                next = schedule.after(&o);
            }
        }
        MissedPolicy::FireAll => {}
        MissedPolicy::Skip { limit } => skipped = lateness > limit,
    }
    let late = lateness > late_after;
    let event = Event::ExecuteTask(ExecuteTask {
        occurrence: OccurrenceKey {
            task_id: row.task_id,
            due_at: row.due_at,
        },
        user_id: row.user_id.clone(),
        seq: row.seq,
        fired_at: now,
        late,
        coalesced,
        skipped,
        task_version: row.version,
        task: row.body.clone(),
    });
    let fire = Fire {
        events: vec![OutboxEvent::from(&event)],
        next: next.map(|o| (o.at, o.seq)),
    };
    (fire, Some(Fired { late, skipped }))
}

/// What [`decide`] did with a row's occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    pub late: bool,
    pub skipped: bool,
}
