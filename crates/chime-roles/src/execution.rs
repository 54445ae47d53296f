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
use chime_core::event::{Event, ExecuteTask, OccurrenceKey, Topic};
use chime_core::task::StoredTaskError;
use chime_core::{MissedPolicy, Occurrence, TaskSpec};
use chime_store::{Fire, FireFn, OutboxEvent, ScheduleChange, ScheduleStore, ScheduledTask};
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

    /// The timer: fire what is due, sleep until the next due instant or a wake-up.
    pub async fn run_timer(&self) -> Result<()> {
        let result = self.timer_loop().await;
        self.ctx.metrics.count_error("execution", result)
    }

    async fn timer_loop(&self) -> Result<()> {
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
        // Counted only once the claim has committed: a claim that fails (a full disk) and is
        // retried must not count its occurrences again.
        let decided: Arc<std::sync::Mutex<Vec<(Fired, Timestamp)>>> = Arc::default();
        let record = decided.clone();
        // A row this release cannot read yet; reported once the others have committed, so
        // the supervisor backs off instead of this loop claiming it again at once.
        let held: Arc<std::sync::Mutex<Option<StoredTaskError>>> = Arc::default();
        let newer = held.clone();
        let fire: FireFn = Arc::new(move |row: &ScheduledTask| {
            // Each occurrence is a trace of its own, rooted here: `decide` carries this span's
            // context in the `execute_task` (see `crate::trace`).
            let claim = tracing::info_span!(
                parent: None,
                "claim",
                task_id = %row.task_id,
                occurrence = %OccurrenceKey { task_id: row.task_id, due_at: row.due_at },
            );
            let _claim = claim.enter();
            let (fire, fired) = match decide(row, now, late_after) {
                Ok(decided) => decided,
                Err(error) => {
                    tracing::error!(task_id = %row.task_id, %error, "a due task was written by a newer release; it stays due for an instance that reads it");
                    *newer
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
                    // Unchanged: still due at the same occurrence, nothing published.
                    let unchanged = Fire {
                        events: Vec::new(),
                        next: Some((row.due_at, row.seq)),
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
        let held = held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match held {
            Some(error) => Err(error.into()),
            None => Ok(count),
        }
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
    });
    let fire = Fire {
        events: vec![OutboxEvent::from(&event)],
        next: next.map(|o| (o.at, o.seq)),
    };
    let fired = Fired {
        occurrence,
        late,
        skipped,
        coalesced,
    };
    Ok((fire, Some(fired)))
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
mod tests {
    use chime_core::task::STORED_VERSION;
    use chime_core::{TaskId, UserId};
    use serde_json::json;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A daily 09:00 UTC task with `missed`, due at `due` (occurrence `seq`).
    fn row(missed: serde_json::Value, due: &str, seq: u32) -> ScheduledTask {
        let body = json!({
            "name": "daily",
            "startDate": "2030-01-01T09:00:00Z",
            "repeats": {"period": "day"},
            "missed": missed,
        });
        ScheduledTask {
            task_id: TaskId::new(),
            user_id: UserId::parse("alice").unwrap(),
            version: 1,
            body: TaskSpec::parse(&body).unwrap().to_stored(),
            due_at: ts(due),
            seq,
        }
    }

    fn fired(fire: &Fire) -> ExecuteTask {
        match Event::from_bytes(&fire.events[0].payload).unwrap() {
            Event::ExecuteTask(e) => e,
            other => panic!("not execute_task: {other:?}"),
        }
    }

    const LATE: SignedDuration = SignedDuration::from_secs(10);

    #[test]
    fn an_occurrence_fired_on_time_advances_to_the_next_one() {
        let row = row(json!(null), "2030-01-01T09:00:00Z", 1);
        let (fire, summary) = decide(&row, ts("2030-01-01T09:00:00.003Z"), LATE).unwrap();
        let e = fired(&fire);
        assert_eq!(e.occurrence.due_at, row.due_at);
        assert_eq!(e.seq, 1);
        assert!(!e.late);
        assert_eq!(e.coalesced, 0);
        assert_eq!(fire.next, Some((ts("2030-01-02T09:00:00Z"), 2)));
        assert_eq!(
            summary,
            Some(Fired {
                occurrence: e.occurrence,
                late: false,
                skipped: false,
                coalesced: 0,
            })
        );
    }

    #[test]
    fn fire_once_late_fires_the_first_missed_occurrence_and_folds_in_the_rest() {
        let row = row(json!({"policy": "fireOnceLate"}), "2030-01-01T09:00:00Z", 1);
        // Down for three days: the 1st, 2nd, 3rd and 4th are due at 10:00 on the 4th.
        let (fire, summary) = decide(&row, ts("2030-01-04T10:00:00Z"), LATE).unwrap();
        let e = fired(&fire);
        assert_eq!(summary.map(|s| s.coalesced), Some(3));
        assert!(e.late);
        assert!(!e.skipped);
        assert_eq!(e.occurrence.due_at, ts("2030-01-01T09:00:00Z"));
        assert_eq!(e.coalesced, 3);
        assert_eq!(fire.next, Some((ts("2030-01-05T09:00:00Z"), 5)));
    }

    #[test]
    fn fire_all_fires_each_missed_occurrence_in_turn() {
        let row = row(json!({"policy": "fireAll"}), "2030-01-01T09:00:00Z", 1);
        let (fire, _) = decide(&row, ts("2030-01-04T10:00:00Z"), LATE).unwrap();
        let e = fired(&fire);
        assert!(e.late);
        assert_eq!(e.coalesced, 0);
        // The next one is already due: the timer fires it in its next pass.
        assert_eq!(fire.next, Some((ts("2030-01-02T09:00:00Z"), 2)));
    }

    #[test]
    fn skip_records_an_occurrence_later_than_the_limit_as_skipped() {
        let row = row(
            json!({"policy": "skip", "limitSeconds": 3600}),
            "2030-01-01T09:00:00Z",
            1,
        );
        let (fire, summary) = decide(&row, ts("2030-01-01T11:00:00Z"), LATE).unwrap();
        let e = fired(&fire);
        assert!(e.skipped);
        assert_eq!(
            summary,
            Some(Fired {
                occurrence: e.occurrence,
                late: true,
                skipped: true,
                coalesced: 0,
            })
        );
        assert_eq!(fire.next, Some((ts("2030-01-02T09:00:00Z"), 2)));
        // Within the limit it fires, flagged late.
        let (fire, _) = decide(&row, ts("2030-01-01T09:30:00Z"), LATE).unwrap();
        let e = fired(&fire);
        assert!(!e.skipped);
        assert!(e.late);
    }

    #[test]
    fn the_last_occurrence_of_a_task_finishes_its_row() {
        let body = json!({"name": "once", "startDate": "2030-01-01T09:00:00Z"});
        let row = ScheduledTask {
            task_id: TaskId::new(),
            user_id: UserId::parse("alice").unwrap(),
            version: 1,
            body: TaskSpec::parse(&body).unwrap().to_stored(),
            due_at: ts("2030-01-01T09:00:00Z"),
            seq: 1,
        };
        let (fire, _) = decide(&row, ts("2030-01-01T09:00:01Z"), LATE).unwrap();
        assert_eq!(fire.events.len(), 1);
        assert_eq!(fire.next, None);
    }

    #[test]
    fn a_task_event_schedules_from_the_instant_it_was_saved_not_when_consumed() {
        let body = TaskSpec::parse(&json!({"name": "t", "startDate": "2030-01-01T09:00:00Z"}))
            .unwrap()
            .to_stored();
        let event = Event::TaskCreated(chime_core::event::TaskChanged {
            task_id: TaskId::new(),
            user_id: UserId::parse("alice").unwrap(),
            version: 1,
            task: body,
            at: ts("2030-01-01T08:00:00Z"),
        });
        match schedule_change(&event).unwrap() {
            Some(ScheduleChange::Set { next, .. }) => {
                assert_eq!(next, Some((ts("2030-01-01T09:00:00Z"), 1)));
            }
            other => panic!("{other:?}"),
        }
    }

    fn task_event(task: serde_json::Value) -> Event {
        Event::TaskUpdated(chime_core::event::TaskChanged {
            task_id: TaskId::new(),
            user_id: UserId::parse("alice").unwrap(),
            version: 2,
            task,
            at: ts("2030-01-01T08:00:00Z"),
        })
    }

    #[test]
    fn a_task_event_from_a_newer_release_is_an_error_so_its_batch_is_redelivered() {
        let mut body = row(json!(null), "2030-01-01T09:00:00Z", 1).body;
        body["v"] = json!(STORED_VERSION + 1);
        assert!(matches!(
            schedule_change(&task_event(body)),
            Err(crate::Error::Task(StoredTaskError::Newer { .. }))
        ));
    }

    #[test]
    fn a_corrupt_task_event_unschedules_the_task() {
        let mut body = row(json!(null), "2030-01-01T09:00:00Z", 1).body;
        body["repeats"]["period"] = json!("fortnight");
        match schedule_change(&task_event(body)).unwrap() {
            Some(ScheduleChange::Set { next, .. }) => assert_eq!(next, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_due_row_from_a_newer_release_is_not_decided_and_a_corrupt_one_is_unscheduled() {
        let mut newer = row(json!(null), "2030-01-01T09:00:00Z", 1);
        newer.body["v"] = json!(STORED_VERSION + 1);
        assert!(decide(&newer, ts("2030-01-01T09:00:00Z"), LATE).is_err());

        let mut corrupt = row(json!(null), "2030-01-01T09:00:00Z", 1);
        corrupt.body["startDate"] = json!("yesterday");
        let (fire, fired) = decide(&corrupt, ts("2030-01-01T09:00:00Z"), LATE).unwrap();
        assert!(fire.events.is_empty());
        assert_eq!(fire.next, None);
        assert_eq!(fired, None);
    }
}

/// The timer's wake-up, with time under the test's control (`tokio::time::pause`): the
/// schedule is an in-memory double of the store port so that no blocking I/O lets tokio's
/// paused clock jump on its own. The SQLite adapter's claim is covered by the store contract.
#[cfg(test)]
mod timer_tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use chime_core::task::STORED_VERSION;
    use chime_core::{TaskId, UserId};
    use chime_store::Result as StoreResult;
    use serde_json::json;

    use super::*;
    use crate::clock::TokioClock;
    use crate::Metrics;

    #[derive(Default)]
    struct MemorySchedule {
        rows: Mutex<HashMap<TaskId, ScheduledTask>>,
        fired: Mutex<Vec<ExecuteTask>>,
    }

    #[async_trait]
    impl ScheduleStore for MemorySchedule {
        async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> StoreResult<()> {
            let mut rows = self.rows.lock().unwrap();
            for change in changes {
                if let ScheduleChange::Set {
                    task_id,
                    user_id,
                    version,
                    body,
                    next: Some((due_at, seq)),
                } = change
                {
                    rows.insert(
                        *task_id,
                        ScheduledTask {
                            task_id: *task_id,
                            user_id: user_id.clone(),
                            version: *version,
                            body: body.clone(),
                            due_at: *due_at,
                            seq: *seq,
                        },
                    );
                }
            }
            Ok(())
        }

        async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
            Ok(self.rows.lock().unwrap().values().map(|r| r.due_at).min())
        }

        async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> StoreResult<usize> {
            let mut rows = self.rows.lock().unwrap();
            let due: Vec<TaskId> = rows
                .values()
                .filter(|r| r.due_at <= now)
                .take(max)
                .map(|r| r.task_id)
                .collect();
            for id in &due {
                let decision = fire(&rows[id]);
                for event in &decision.events {
                    if let Ok(Event::ExecuteTask(e)) = Event::from_bytes(&event.payload) {
                        self.fired.lock().unwrap().push(e);
                    }
                }
                match decision.next {
                    Some((at, seq)) => {
                        let row = rows.get_mut(id).unwrap();
                        row.due_at = at;
                        row.seq = seq;
                    }
                    None => {
                        rows.remove(id);
                    }
                }
            }
            Ok(due.len())
        }

        async fn scheduled(&self, task_id: TaskId) -> StoreResult<Option<ScheduledTask>> {
            Ok(self.rows.lock().unwrap().get(&task_id).cloned())
        }
    }

    /// An execution role on an empty in-memory schedule, its clock at `start` (paused time).
    fn execution_at(start: &str) -> (Execution, Arc<MemorySchedule>, Context) {
        let ctx = Context {
            clock: Arc::new(TokioClock::starting_at(start.parse().unwrap())),
            metrics: Arc::new(Metrics::new()),
            shutdown: tokio_util::sync::CancellationToken::new(),
        };
        let store = Arc::new(MemorySchedule::default());
        let execution = Execution::new(store.clone(), ctx.clone(), ExecutionConfig::default());
        (execution, store, ctx)
    }

    /// Schedules a one-time task due at `due`.
    async fn schedule_one_time(store: &MemorySchedule, due: &str) {
        let body = TaskSpec::parse(&json!({"name": "t", "startDate": due}))
            .unwrap()
            .to_stored();
        store
            .apply_schedule_changes(&[ScheduleChange::Set {
                task_id: TaskId::new(),
                user_id: UserId::parse("alice").unwrap(),
                version: 1,
                body,
                next: Some((due.parse().unwrap(), 1)),
            }])
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_fires_at_the_due_instant_not_at_the_next_tick() {
        let (execution, store, ctx) = execution_at("2030-01-01T08:59:50Z");
        schedule_one_time(&store, "2030-01-01T09:00:00.250Z").await;
        let timer = tokio::spawn({
            let execution = execution.clone();
            async move { execution.run_timer().await }
        });

        // 1 ms before the due instant nothing has fired.
        tokio::time::sleep(Duration::from_millis(10_249)).await;
        assert!(store.fired.lock().unwrap().is_empty());
        // At the due instant it fires, with no lateness at all.
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        let fired = store.fired.lock().unwrap().clone();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].fired_at, fired[0].occurrence.due_at);
        assert!(!fired[0].late);

        ctx.shutdown.cancel();
        timer.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_task_from_a_newer_release_stays_due_and_the_others_still_fire() {
        let (execution, store, _ctx) = execution_at("2030-01-01T09:00:00Z");
        schedule_one_time(&store, "2030-01-01T09:00:00Z").await;
        let mut body = TaskSpec::parse(&json!({"name": "t", "startDate": "2030-01-01T08:59:00Z"}))
            .unwrap()
            .to_stored();
        body["v"] = json!(STORED_VERSION + 1);
        let newer = TaskId::new();
        store
            .apply_schedule_changes(&[ScheduleChange::Set {
                task_id: newer,
                user_id: UserId::parse("alice").unwrap(),
                version: 1,
                body,
                next: Some(("2030-01-01T08:59:00Z".parse().unwrap(), 1)),
            }])
            .await
            .unwrap();

        assert!(matches!(
            execution.fire_due().await,
            Err(crate::Error::Task(StoredTaskError::Newer { .. }))
        ));
        let fired = store.fired.lock().unwrap().clone();
        assert_eq!(fired.len(), 1, "the readable task fired");
        assert_ne!(fired[0].occurrence.task_id, newer);
        let held = store.scheduled(newer).await.unwrap().unwrap();
        assert_eq!(held.due_at, "2030-01-01T08:59:00Z".parse().unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_wakes_the_timer_for_an_earlier_due_instant() {
        let (execution, store, ctx) = execution_at("2030-01-01T08:00:00Z");
        let timer = tokio::spawn({
            let execution = execution.clone();
            async move { execution.run_timer().await }
        });
        // The timer is asleep on an empty schedule (an hour). A task due in 5 s arrives.
        tokio::task::yield_now().await;
        schedule_one_time(&store, "2030-01-01T08:00:05Z").await;
        execution.wake.notify_one();
        tokio::time::sleep(Duration::from_secs(5)).await;
        tokio::task::yield_now().await;
        let fired = store.fired.lock().unwrap().clone();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].fired_at, fired[0].occurrence.due_at);

        ctx.shutdown.cancel();
        timer.await.unwrap().unwrap();
    }
}
