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
//!
//! Wall-clock jumps (an NTP step, a VM resumed) are read through [`crate::Clock`] like any
//! other instant; the rows hold absolute due instants and the timer re-reads the clock on
//! every wake-up (a change, or the 1 s `schedule_tick` at the latest):
//! - **forward**: every occurrence that became due in the skipped span fires at once, flagged
//!   `late`, by its task's missed policy (`fireOnceLate` folds a task's several missed
//!   occurrences into one, `skip` records those past its limit as skipped); each row is
//!   claimed and advanced in one transaction, so none fires twice and none is lost;
//! - **back**: rows have already moved past what fired, so nothing fires again; the timer
//!   simply waits the extra span. An occurrence fires when the clock reads its instant, even
//!   if the clock read later than that once before.
//!
//! Tested on a real server with an injected clock in `crates/chime/tests/it/clock.rs`.

use std::sync::Arc;

use chime_bus::Bus;
use chime_core::event::{Channel, Event, ExecuteTask, OccurrenceKey, TaskChanged, Topic};
use chime_core::task::StoredTaskError;
use chime_core::{MissedPolicy, Occurrence, TaskSpec};
use chime_store::{
    Escalate, EscalateFn, Escalated, Fire, FireFn, OutboxEvent, ScheduleChange, ScheduleStore,
    ScheduledTask, Wake, WakeFn, Woken,
};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;

use crate::metrics::{lateness_seconds, MissedLabels};
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
            &self.ctx,
            |events| async move {
                let changes: Vec<ScheduleChange> = events
                    .iter()
                    .filter_map(|e| schedule_change(e).transpose())
                    .collect::<Result<_, _>>()?;
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

    /// The timer: fire what is due, sleep until the next due instant or a wake-up. Beside it,
    /// once per start, the catch-up with tasks the schedule missed: a scan of every task, so it
    /// does not hold back the first firing after a restart; it wakes the timer when it applied
    /// anything.
    pub async fn run_timer(&self) -> Result<()> {
        let catching_up = self.clone();
        let catch_up = tokio::spawn(async move {
            match catching_up.catch_up().await {
                Ok(0) => {}
                Ok(_) => catching_up.wake.notify_one(),
                Err(error) => {
                    tracing::warn!(%error, "cannot catch up with the tasks now; at the next start")
                }
            }
        });
        let result = self.timer_loop().await;
        catch_up.abort();
        self.ctx.metrics.count_error("execution", result)
    }

    /// Applies to the schedule every task it has not caught up with (see
    /// [`chime_store::ScheduleStore::unscheduled_tasks`]) as its event would have: after a
    /// restore from a backup taken while events were on their way, those events never come.
    /// A task whose event is merely in flight is applied twice, harmlessly (by version). A
    /// task this release cannot read is left to an instance that can. Returns how many it
    /// applied.
    pub async fn catch_up(&self) -> Result<usize> {
        const PAGE: usize = 500;
        let mut after = None;
        let mut applied = 0;
        loop {
            let tasks = self.store.unscheduled_tasks(after, PAGE).await?;
            let mut changes = Vec::with_capacity(tasks.len());
            for task in &tasks {
                let event = Event::TaskUpdated(TaskChanged {
                    task_id: task.id,
                    user_id: task.user_id.clone(),
                    version: task.version,
                    task: task.body.clone(),
                    at: task.modified_at,
                });
                match schedule_change(&event) {
                    Ok(change) => changes.extend(change),
                    Err(error) => {
                        tracing::warn!(task_id = %task.id, %error, "cannot catch up with this task here")
                    }
                }
            }
            if !changes.is_empty() {
                self.store.apply_schedule_changes(&changes).await?;
                applied += changes.len();
            }
            match tasks.last() {
                Some(last) if tasks.len() == PAGE => after = Some(last.id),
                _ => break,
            }
        }
        if applied > 0 {
            tracing::info!(
                tasks = applied,
                "the schedule caught up with tasks whose events had not reached it"
            );
        }
        Ok(applied)
    }

    async fn timer_loop(&self) -> Result<()> {
        let shutdown = self.ctx.shutdown.clone();
        loop {
            let fired = self.fire_due().await?;
            let returned = self.wake_due().await?;
            let escalated = self.escalate_due().await?;
            if [fired, returned, escalated].contains(&self.config.batch) {
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

    /// Fires one batch of snoozed occurrences whose snooze has ended, each as a new
    /// occurrence of its task as it is now; returns how many.
    pub async fn wake_due(&self) -> Result<usize> {
        let now = self.ctx.clock.now();
        let late_after = self.config.late_after;
        let held = Held::default();
        let newer = held.clone();
        // Counted once committed, as `fire_due` does.
        let repeats: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let counted = repeats.clone();
        let wake: WakeFn = Arc::new(move |w: &Wake| {
            let claim = claim_span(&w.key);
            let _claim = claim.enter();
            match returned(w, now, late_after) {
                Ok(woken) => {
                    if w.repeat {
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    tracing::debug!(task_id = %w.key.task_id, occurrence = %w.key, "snoozed occurrence returned");
                    Some(woken)
                }
                Err(error) => {
                    newer.keep(error);
                    None
                }
            }
        });
        let count = self.store.wake_due(now, self.config.batch, wake).await?;
        let repeats = repeats.load(std::sync::atomic::Ordering::Relaxed);
        self.ctx.metrics.nag_repeats.inc_by(repeats);
        self.ctx
            .metrics
            .snooze_returns
            .inc_by((count as u64).saturating_sub(repeats));
        held.or(count)
    }

    /// Fires one batch of due escalation steps (occurrences still not acknowledged), each on
    /// its step's channel; returns how many.
    pub async fn escalate_due(&self) -> Result<usize> {
        let now = self.ctx.clock.now();
        let held = Held::default();
        let newer = held.clone();
        // Counted once committed, by channel.
        let fired: Arc<std::sync::Mutex<Vec<Channel>>> = Arc::default();
        let record = fired.clone();
        let step: EscalateFn = Arc::new(move |e: &Escalate| {
            let claim = claim_span(&e.key);
            let _claim = claim.enter();
            match escalation(e, now) {
                Ok((escalated, channel)) => {
                    if let Some(channel) = channel {
                        tracing::debug!(task_id = %e.key.task_id, occurrence = %e.key, channel = channel.as_str(), "escalated");
                        record
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(channel);
                    }
                    Some(escalated)
                }
                Err(error) => {
                    newer.keep(error);
                    None
                }
            }
        });
        let result = self.store.escalate_due(now, self.config.batch, step).await;
        let fired = std::mem::take(
            &mut *fired
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let count = result?;
        for channel in fired {
            self.ctx
                .metrics
                .escalations
                .get_or_create(&crate::metrics::ChannelLabels {
                    channel: channel.as_str(),
                })
                .inc();
        }
        held.or(count)
    }

    /// Fires one batch of due rows; returns how many.
    pub async fn fire_due(&self) -> Result<usize> {
        let now = self.ctx.clock.now();
        let late_after = self.config.late_after;
        // Counted only once the claim has committed: a claim that fails (a full disk) and is
        // retried must not count its occurrences again.
        let decided: Arc<std::sync::Mutex<Vec<(Fired, Timestamp)>>> = Arc::default();
        let record = decided.clone();
        let held = Held::default();
        let newer = held.clone();
        let fire: FireFn = Arc::new(move |row: &ScheduledTask| {
            let claim = claim_span(&OccurrenceKey {
                task_id: row.task_id,
                due_at: row.due_at,
            });
            let _claim = claim.enter();
            let (fire, fired) = match decide(row, now, late_after) {
                Ok(decided) => decided,
                Err(error) => {
                    tracing::error!(task_id = %row.task_id, %error, "a due task was written by a newer release; it stays due for an instance that reads it");
                    newer.keep(error);
                    // Unchanged: still due at the same occurrence, nothing published.
                    let unchanged = Fire {
                        events: Vec::new(),
                        next: Some((row.due_at, row.seq)),
                        nag: None,
                        escalate_at: None,
                    };
                    return unchanged;
                }
            };
            if let Some(fired) = fired {
                if fired.skipped {
                    tracing::info!(task_id = %row.task_id, occurrence = %fired.occurrence, "missed occurrence skipped by its task's policy");
                } else {
                    tracing::debug!(task_id = %row.task_id, occurrence = %fired.occurrence, late = fired.late, coalesced = fired.coalesced, "occurrence fired");
                }
                record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((fired, row.due_at));
            }
            fire
        });
        let count = self.store.fire_due(now, self.config.batch, fire).await?;
        let decided = std::mem::take(
            &mut *decided
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let metrics = &self.ctx.metrics;
        for (fired, due_at) in decided {
            if fired.coalesced > 0 {
                metrics
                    .executions_missed
                    .get_or_create(&MissedLabels {
                        policy: "fireOnceLate",
                    })
                    .inc_by(u64::from(fired.coalesced));
            }
            if fired.skipped {
                metrics.executions_skipped.inc();
                metrics
                    .executions_missed
                    .get_or_create(&MissedLabels { policy: "skip" })
                    .inc();
            } else {
                metrics.executions.inc();
                if fired.late {
                    metrics.executions_late.inc();
                }
                metrics
                    .execution_lateness
                    .observe(lateness_seconds(due_at, now));
            }
        }
        held.or(count)
    }
}

/// How a `task_*` event changes the schedule. The first occurrence is taken at or after the
/// instant the task was saved, not when the event is consumed, so an occurrence that fell due
/// while this role was down still fires (late) instead of being skipped.
///
/// A task written by a newer release (a rolling upgrade) is an error: the batch is not
/// committed, and is redelivered until an instance that reads it consumes it. A task that is
/// not in any shape a release wrote is unscheduled, loudly.
fn schedule_change(event: &Event) -> Result<Option<ScheduleChange>> {
    let change = match event {
        Event::TaskCreated(e) | Event::TaskUpdated(e) => {
            let next = match TaskSpec::from_stored(&e.task) {
                Ok(spec) => spec.schedule.first_at_or_after(e.at).map(|o| (o.at, o.seq)),
                Err(error @ StoredTaskError::Newer { .. }) => return Err(error.into()),
                Err(error) => {
                    tracing::error!(task_id = %e.task_id, %error, "task event body is corrupt; unscheduling");
                    None
                }
            };
            ScheduleChange::Set {
                task_id: e.task_id,
                user_id: e.user_id.clone(),
                version: e.version,
                body: e.task.clone(),
                next,
            }
        }
        Event::TaskDeleted(e) => ScheduleChange::Delete {
            task_id: e.task_id,
            version: e.version,
        },
        _ => return Ok(None),
    };
    Ok(Some(change))
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
///
/// A row whose task is corrupt is unscheduled. The error is for a task written by a newer
/// release only: the caller leaves that row due, untouched.
pub fn decide(
    row: &ScheduledTask,
    now: Timestamp,
    late_after: SignedDuration,
) -> Result<(Fire, Option<Fired>), StoredTaskError> {
    let spec = match TaskSpec::from_stored(&row.body) {
        Ok(spec) => spec,
        Err(error @ StoredTaskError::Newer { .. }) => return Err(error),
        Err(error) => {
            tracing::error!(task_id = %row.task_id, occurrence = %OccurrenceKey { task_id: row.task_id, due_at: row.due_at }, %error, "scheduled task is corrupt; unscheduling");
            let fire = Fire {
                events: Vec::new(),
                next: None,
                nag: None,
                escalate_at: None,
            };
            return Ok((fire, None));
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
    let occurrence = OccurrenceKey {
        task_id: row.task_id,
        due_at: row.due_at,
    };
    let event = Event::ExecuteTask(ExecuteTask {
        occurrence,
        user_id: row.user_id.clone(),
        seq: row.seq,
        fired_at: now,
        late,
        coalesced,
        skipped,
        task_version: row.version,
        task: row.body.clone(),
        // The caller's `claim` span, when traced.
        traceparent: crate::trace::current_traceparent(),
        escalation: None,
    });
    let fire = Fire {
        events: vec![OutboxEvent::from(&event)],
        next: next.map(|o| (o.at, o.seq)),
        // A skipped occurrence was not sent: nothing to repeat.
        nag: spec.nag.filter(|_| !skipped),
        escalate_at: spec.escalation_at(now, 0).filter(|_| !skipped),
    };
    let fired = Fired {
        occurrence,
        late,
        skipped,
        coalesced,
    };
    Ok((fire, Some(fired)))
}

/// The `execute_task` of a snoozed occurrence's return: the task as it is now, due when the
/// snooze ended. `Err` only for a body of a newer release (left due for it); a corrupt one
/// returns with nothing to publish, as `decide` unschedules one.
fn returned(
    w: &Wake,
    now: Timestamp,
    late_after: SignedDuration,
) -> Result<Woken, StoredTaskError> {
    let spec = match TaskSpec::from_stored(&w.body) {
        Ok(spec) => spec,
        Err(error @ StoredTaskError::Newer { .. }) => return Err(error),
        Err(error) => {
            tracing::error!(task_id = %w.key.task_id, occurrence = %w.key, %error, "snoozed task is corrupt; it does not return");
            return Ok(Woken::default());
        }
    };
    let event = Event::ExecuteTask(ExecuteTask {
        occurrence: w.key,
        user_id: w.user_id.clone(),
        seq: w.seq,
        fired_at: now,
        late: w.key.due_at.duration_until(now) > late_after,
        coalesced: 0,
        skipped: false,
        task_version: w.version,
        task: w.body.clone(),
        traceparent: crate::trace::current_traceparent(),
        escalation: None,
    });
    Ok(Woken {
        events: vec![OutboxEvent::from(&event)],
        // A snooze's return starts the escalation again; a repeat carries its original's on.
        escalate_at: spec.escalation_at(now, 0).filter(|_| !w.repeat),
    })
}

/// What escalation step `e` does at `now`: the `execute_task` on its channel (by the task as
/// it is now) and when the next step is due, and the channel it went out on. A task that no
/// longer has that step (edited since) ends the chain; `Err` only for a body of a newer
/// release (left due for it), as in `returned`.
fn escalation(
    e: &Escalate,
    now: Timestamp,
) -> Result<(Escalated, Option<Channel>), StoredTaskError> {
    let spec = match TaskSpec::from_stored(&e.body) {
        Ok(spec) => spec,
        Err(error @ StoredTaskError::Newer { .. }) => return Err(error),
        Err(error) => {
            tracing::error!(task_id = %e.key.task_id, occurrence = %e.key, %error, "escalating task is corrupt; the escalation ends");
            return Ok((Escalated::default(), None));
        }
    };
    let index = e.step as usize;
    let Some(step) = spec.escalate.get(index) else {
        return Ok((Escalated::default(), None));
    };
    // The chain's origin: where this step was due, less its delay (a repeat took the chain
    // over from the occurrence it repeats, so its own firing is not the origin).
    let origin = e.at.checked_sub(step.after()).unwrap_or(e.at);
    let event = Event::ExecuteTask(ExecuteTask {
        occurrence: e.key,
        user_id: e.user_id.clone(),
        seq: e.seq,
        fired_at: now,
        late: false,
        coalesced: 0,
        skipped: false,
        task_version: e.version,
        task: e.body.clone(),
        traceparent: crate::trace::current_traceparent(),
        escalation: Some(step.channel),
    });
    let escalated = Escalated {
        events: vec![OutboxEvent::from(&event)],
        next_at: spec.escalation_at(origin, index + 1),
    };
    Ok((escalated, Some(step.channel)))
}

/// The claim span: each occurrence (and each return or step of it) is a trace of its own,
/// rooted here; its `execute_task` carries the span's context (see `crate::trace`).
fn claim_span(key: &OccurrenceKey) -> tracing::Span {
    tracing::info_span!(parent: None, "claim", task_id = %key.task_id, occurrence = %key)
}

/// A row a claim left due because a newer release wrote its task: reported once the claim
/// has committed the others, so the supervisor backs off instead of the timer claiming it
/// again at once.
#[derive(Clone, Default)]
struct Held(Arc<std::sync::Mutex<Option<StoredTaskError>>>);

impl Held {
    fn keep(&self, error: StoredTaskError) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
    }

    /// `count`, or the error of a row left due.
    fn or(self, count: usize) -> Result<usize> {
        let held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match held {
            Some(error) => Err(error.into()),
            None => Ok(count),
        }
    }
}

/// What [`decide`] did with a row's occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    pub occurrence: OccurrenceKey,
    pub late: bool,
    pub skipped: bool,
    /// Further missed occurrences folded into this one (`fireOnceLate`).
    pub coalesced: u32,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod timer_tests;
