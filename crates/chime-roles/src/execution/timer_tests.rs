//! The timer's wake-up, with time under the test's control (`tokio::time::pause`): the
//! schedule is an in-memory double of the store port so that no blocking I/O lets tokio's
//! paused clock jump on its own. The SQLite adapter's claim is covered by the store contract.

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

    /// No occurrence state here: nothing is ever snoozed.
    async fn wake_due(
        &self,
        _now: Timestamp,
        _max: usize,
        _wake: chime_store::WakeFn,
    ) -> StoreResult<usize> {
        Ok(0)
    }

    async fn escalate_due(
        &self,
        _now: Timestamp,
        _max: usize,
        _step: chime_store::EscalateFn,
    ) -> StoreResult<usize> {
        Ok(0)
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

    /// No task store here: the schedule is all there is.
    async fn unscheduled_tasks(
        &self,
        _after: Option<TaskId>,
        _limit: usize,
    ) -> StoreResult<Vec<chime_store::TaskRecord>> {
        Ok(Vec::new())
    }
}

/// An execution role on an empty in-memory schedule, its clock at `start` (paused time).
fn execution_at(start: &str) -> (Execution, Arc<MemorySchedule>, Context) {
    let ctx = Context {
        clock: Arc::new(TokioClock::starting_at(start.parse().unwrap())),
        metrics: Arc::new(Metrics::new()),
        shutdown: tokio_util::sync::CancellationToken::new(),
        store_check: Default::default(),
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
