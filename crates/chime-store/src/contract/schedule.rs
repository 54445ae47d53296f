//! The schedule: idempotent changes by version, tombstones, claims of what is due, the fence.

use super::*;

/// A `Set` with a next occurrence is what `scheduled` returns; a newer `Set` replaces it.
pub async fn a_set_change_is_returned_by_scheduled(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    apply(&*store, &[set(&v1, Some((at(100), 1)))]).await;
    assert_eq!(
        scheduled(&*store, v1.id).await,
        Some(scheduled_task(&v1, at(100), 1))
    );

    let v2 = edited(&v1, "Water the herbs", 60);
    apply(&*store, &[set(&v2, Some((at(200), 3)))]).await;
    assert_eq!(
        scheduled(&*store, v1.id).await,
        Some(scheduled_task(&v2, at(200), 3))
    );
    assert_eq!(scheduled(&*store, TaskId::new()).await, None);
}

/// A change at a version not newer than the stored one is ignored: a replayed `Set` or
/// `Delete`, in a later call or later in the same batch.
pub async fn a_change_at_an_older_or_equal_version_is_ignored(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    let v2 = edited(&v1, "Water the herbs", 60);
    let v3 = edited(&v2, "Water the cactus", 120);

    apply(
        &*store,
        &[
            set(&v1, Some((at(100), 1))),
            set(&v3, Some((at(300), 1))),
            set(&v2, Some((at(200), 1))),
        ],
    )
    .await;
    let expected = Some(scheduled_task(&v3, at(300), 1));
    assert_eq!(scheduled(&*store, v1.id).await, expected);

    let same_version = TaskRecord {
        body: body("Something else"),
        ..v3.clone()
    };
    apply(
        &*store,
        &[
            set(&v1, Some((at(100), 1))),
            set(&same_version, Some((at(50), 9))),
            ScheduleChange::Delete {
                task_id: v1.id,
                version: 2,
            },
        ],
    )
    .await;
    assert_eq!(scheduled(&*store, v1.id).await, expected);
    assert_eq!(next_due(&*store).await, Some(at(300)));
}

/// A `Delete` removes the row but remembers its version, so a replay of an older or equal
/// `Set` does not bring the task back, also when the `Delete` came first.
pub async fn a_delete_leaves_a_tombstone_that_a_replayed_older_set_cannot_revive(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    let v2 = edited(&v1, "Water the herbs", 60);
    apply(&*store, &[set(&v1, Some((at(100), 1)))]).await;
    apply(
        &*store,
        &[ScheduleChange::Delete {
            task_id: v1.id,
            version: 3,
        }],
    )
    .await;
    assert_eq!(scheduled(&*store, v1.id).await, None);
    assert_eq!(next_due(&*store).await, None);

    apply(
        &*store,
        &[set(&v1, Some((at(100), 1))), set(&v2, Some((at(200), 1)))],
    )
    .await;
    let v3 = TaskRecord {
        version: 3,
        ..v2.clone()
    };
    apply(&*store, &[set(&v3, Some((at(300), 1)))]).await;
    assert_eq!(scheduled(&*store, v1.id).await, None);
    assert_eq!(next_due(&*store).await, None);

    // Deleted before the schedule ever saw the task (its events arrived out of order).
    let early = task(&alice, "Call mum");
    apply(
        &*store,
        &[ScheduleChange::Delete {
            task_id: early.id,
            version: 2,
        }],
    )
    .await;
    apply(&*store, &[set(&early, Some((at(100), 1)))]).await;
    assert_eq!(scheduled(&*store, early.id).await, None);
    assert_eq!(next_due(&*store).await, None);
}

/// A `Set` with no next occurrence (a task with nothing left to fire) removes the row from
/// `scheduled` and `next_due` and, like a delete, is not undone by a replay.
pub async fn a_set_without_a_next_occurrence_removes_the_task_from_next_due(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    let other = task(&alice, "Call mum");
    apply(
        &*store,
        &[
            set(&v1, Some((at(100), 1))),
            set(&other, Some((at(500), 1))),
        ],
    )
    .await;
    assert_eq!(next_due(&*store).await, Some(at(100)));

    let v2 = edited(&v1, "Water the plants, once", 60);
    apply(&*store, &[set(&v2, None)]).await;
    assert_eq!(scheduled(&*store, v1.id).await, None);
    assert_eq!(next_due(&*store).await, Some(at(500)));

    apply(&*store, &[set(&v1, Some((at(100), 1)))]).await;
    assert_eq!(scheduled(&*store, v1.id).await, None);
    assert_eq!(next_due(&*store).await, Some(at(500)));

    // A task whose first event already has nothing to fire is never scheduled.
    let done = task(&alice, "Already over");
    apply(&*store, &[set(&done, None)]).await;
    assert_eq!(scheduled(&*store, done.id).await, None);
    assert_eq!(next_due(&*store).await, Some(at(500)));
}

/// `next_due` is the minimum due instant over scheduled rows, and follows changes to them.
pub async fn next_due_is_the_earliest_due_instant(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let tasks: Vec<TaskRecord> = (0..3).map(|i| task(&alice, &format!("Task {i}"))).collect();
    apply(
        &*store,
        &[
            set(&tasks[0], Some((at(300), 1))),
            set(&tasks[1], Some((at(100), 1))),
            set(&tasks[2], Some((at(200), 1))),
        ],
    )
    .await;
    assert_eq!(next_due(&*store).await, Some(at(100)));

    apply(
        &*store,
        &[ScheduleChange::Delete {
            task_id: tasks[1].id,
            version: 2,
        }],
    )
    .await;
    assert_eq!(next_due(&*store).await, Some(at(200)));

    let moved = edited(&tasks[0], "Task 0, earlier", 60);
    apply(&*store, &[set(&moved, Some((at(150), 1)))]).await;
    assert_eq!(next_due(&*store).await, Some(at(150)));
}

/// `fire_due(now, max)` fires rows due at or before `now` (inclusive), earliest first, at
/// most `max` per call, returns how many, and leaves rows due later alone.
pub async fn fire_due_fires_only_rows_due_at_or_before_now_earliest_first_and_at_most_max(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let tasks: Vec<TaskRecord> = (0..5).map(|i| task(&alice, &format!("Task {i}"))).collect();
    let dues = [30, 10, 20, 40, 50];
    let changes: Vec<ScheduleChange> = tasks
        .iter()
        .zip(dues)
        .map(|(t, due)| set(t, Some((at(due), 1))))
        .collect();
    apply(&*store, &changes).await;

    let (fire, seen) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(40), 3, fire.clone()).await, 3);
    assert_eq!(
        taken(&seen),
        [
            scheduled_task(&tasks[1], at(10), 1),
            scheduled_task(&tasks[2], at(20), 1),
            scheduled_task(&tasks[0], at(30), 1),
        ]
    );

    assert_eq!(fire_due(&*store, at(40), 3, fire.clone()).await, 1);
    assert_eq!(taken(&seen), [scheduled_task(&tasks[3], at(40), 1)]);

    assert_eq!(fire_due(&*store, at(49), 3, fire.clone()).await, 0);
    assert!(taken(&seen).is_empty());
    assert_eq!(next_due(&*store).await, Some(at(50)));
    assert_eq!(
        scheduled(&*store, tasks[4].id).await,
        Some(scheduled_task(&tasks[4], at(50), 1))
    );
}

/// Each fired row moves to the `next` its [`Fire`] says (or leaves the schedule when `None`),
/// and the fires' events are in the outbox.
pub async fn fire_due_advances_or_finishes_each_row_and_publishes_its_events(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let recurring = task(&alice, "Water the plants");
    let once = task(&alice, "Call mum");
    apply(
        &*store,
        &[
            set(&recurring, Some((at(100), 1))),
            set(&once, Some((at(110), 1))),
        ],
    )
    .await;

    let recurring_id = recurring.id;
    let (fire, seen) =
        recording_fire(move |row| (row.task_id == recurring_id).then(|| (at(1_000), row.seq + 1)));
    assert_eq!(fire_due(&*store, at(120), 10, fire.clone()).await, 2);
    let fired = taken(&seen);
    assert_eq!(
        fired,
        [
            scheduled_task(&recurring, at(100), 1),
            scheduled_task(&once, at(110), 1)
        ]
    );

    assert_eq!(
        scheduled(&*store, recurring.id).await,
        Some(scheduled_task(&recurring, at(1_000), 2))
    );
    assert_eq!(scheduled(&*store, once.id).await, None);
    assert_eq!(next_due(&*store).await, Some(at(1_000)));
    assert_eq!(
        outbox_events(&*store).await,
        fired.iter().map(execute_task).collect::<Vec<_>>()
    );

    assert_eq!(fire_due(&*store, at(999), 10, fire.clone()).await, 0);
    assert_eq!(fire_due(&*store, at(1_000), 10, fire).await, 1);
    assert_eq!(taken(&seen), [scheduled_task(&recurring, at(1_000), 2)]);
}

/// A row finished by `fire_due` is never fired again, and a replayed `Set` at its version
/// (the bus redelivering `task_created`) does not reschedule it.
pub async fn a_finished_row_is_not_fired_again_nor_revived_by_a_replay(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let once = task(&alice, "Call mum");
    apply(&*store, &[set(&once, Some((at(100), 1)))]).await;
    let (fire, seen) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(100), 10, fire.clone()).await, 1);
    assert_eq!(taken(&seen).len(), 1);

    assert_eq!(fire_due(&*store, at(10_000), 10, fire.clone()).await, 0);
    apply(&*store, &[set(&once, Some((at(100), 1)))]).await;
    assert_eq!(scheduled(&*store, once.id).await, None);
    assert_eq!(next_due(&*store).await, None);
    assert_eq!(fire_due(&*store, at(10_000), 10, fire).await, 0);
    assert!(taken(&seen).is_empty());

    // A newer version (an edit that gives the task a future occurrence) does schedule it.
    let v2 = edited(&once, "Call mum again", 60);
    apply(&*store, &[set(&v2, Some((at(500), 1)))]).await;
    assert_eq!(
        scheduled(&*store, once.id).await,
        Some(scheduled_task(&v2, at(500), 1))
    );
}

/// The fence: once a task's delete has committed, `fire_due` does not fire its row, even
/// though the `task_deleted` event has not reached the schedule yet (the relay and the bus
/// are between the two). The row is dropped from the schedule, and neither the delete's
/// event nor a replay of the task's creation brings it back.
pub async fn a_row_whose_task_was_deleted_is_not_fired_before_the_delete_reaches_the_schedule(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let once = task(&alice, "Call mum");
    let kept = task(&alice, "Water the plants");
    apply(
        &*store,
        &[
            set(&once, Some((at(100), 1))),
            set(&kept, Some((at(100), 1))),
        ],
    )
    .await;
    assert!(store
        .delete_task(&alice, once.id, 1, deleted_event(&once, 2))
        .await
        .expect("delete"));
    ack(&*store, &seqs(&outbox(&*store).await)).await;

    let (fire, seen) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(100), 10, fire.clone()).await, 1);
    assert_eq!(taken(&seen), [scheduled_task(&kept, at(100), 1)]);
    assert_eq!(
        outbox_events(&*store).await,
        [execute_task(&scheduled_task(&kept, at(100), 1))],
        "only the task that still exists fired"
    );
    assert_eq!(scheduled(&*store, once.id).await, None);
    assert_eq!(next_due(&*store).await, None);

    apply_only(
        &*store,
        &[
            ScheduleChange::Delete {
                task_id: once.id,
                version: 2,
            },
            set(&once, Some((at(100), 1))),
        ],
    )
    .await;
    assert_eq!(scheduled(&*store, once.id).await, None);
    assert_eq!(fire_due(&*store, at(10_000), 10, fire).await, 0);
    assert!(taken(&seen).is_empty());
}

/// The fence: once a task's update has committed, `fire_due` does not fire the row of its
/// previous version, even though `task_updated` has not reached the schedule yet. When the
/// change arrives the task is scheduled as it now is, and fires as such.
pub async fn a_row_whose_task_changed_is_not_fired_until_the_change_reaches_the_schedule(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Call mum");
    apply(&*store, &[set(&v1, Some((at(100), 1)))]).await;
    let v2 = edited(&v1, "Call dad", 90);
    assert!(update(&*store, &v2).await.expect("update"));
    ack(&*store, &seqs(&outbox(&*store).await)).await;

    let (fire, seen) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(100), 10, fire.clone()).await, 0);
    assert!(taken(&seen).is_empty(), "the previous version did not fire");
    assert!(outbox(&*store).await.is_empty());
    assert_eq!(scheduled(&*store, v1.id).await, None);

    apply(&*store, &[set(&v2, Some((at(100), 1)))]).await;
    assert_eq!(fire_due(&*store, at(101), 10, fire).await, 1);
    assert_eq!(taken(&seen), [scheduled_task(&v2, at(100), 1)]);
}

/// What `fire_due` advanced and finished is still so after a restart; a replay after the
/// restart does not revive a finished row.
pub async fn fire_due_state_survives_a_restart(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let recurring = task(&alice, "Water the plants");
    let once = task(&alice, "Call mum");
    apply(
        &*store,
        &[
            set(&recurring, Some((at(100), 1))),
            set(&once, Some((at(110), 1))),
        ],
    )
    .await;
    let recurring_id = recurring.id;
    let (fire, seen) =
        recording_fire(move |row| (row.task_id == recurring_id).then(|| (at(1_000), row.seq + 1)));
    assert_eq!(fire_due(&*store, at(120), 10, fire.clone()).await, 2);
    taken(&seen);
    let events = outbox(&*store).await;
    drop(store);

    let store = f.open().await;
    assert_eq!(
        scheduled(&*store, recurring.id).await,
        Some(scheduled_task(&recurring, at(1_000), 2))
    );
    assert_eq!(scheduled(&*store, once.id).await, None);
    assert_eq!(next_due(&*store).await, Some(at(1_000)));
    assert_eq!(outbox(&*store).await, events);

    apply(&*store, &[set(&once, Some((at(110), 1)))]).await;
    assert_eq!(scheduled(&*store, once.id).await, None);
    assert_eq!(fire_due(&*store, at(999), 10, fire.clone()).await, 0);
    assert_eq!(fire_due(&*store, at(1_000), 10, fire).await, 1);
    assert_eq!(taken(&seen), [scheduled_task(&recurring, at(1_000), 2)]);
}

/// A `fire_due` whose [`FireFn`] panics on its second row (a bug in recurrence code) commits
/// nothing: the first row is neither advanced nor published. The store keeps working.
pub async fn a_fire_due_that_fails_part_way_changes_nothing(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let first = task(&alice, "Water the plants");
    let second = task(&alice, "Call mum");
    apply(
        &*store,
        &[
            set(&first, Some((at(100), 1))),
            set(&second, Some((at(110), 1))),
        ],
    )
    .await;

    let second_id = second.id;
    let failing: FireFn = Arc::new(move |row: &ScheduledTask| {
        assert!(
            row.task_id != second_id,
            "this FireFn panics on purpose (contract check: a fire that fails part way)"
        );
        Fire {
            events: vec![execute_task(row)],
            next: Some((at(1_000), row.seq + 1)),
            nag: None,
            escalate_at: None,
        }
    });
    // Run in its own task: an adapter may report the panic as an error or let it unwind.
    let attempt = {
        let store = store.clone();
        tokio::spawn(async move { store.fire_due(at(200), 10, failing).await })
    };
    match tokio::time::timeout(GUARD, attempt).await {
        Ok(Ok(Ok(n))) => panic!("fire_due fired {n} rows although its FireFn panicked"),
        Ok(Ok(Err(_)) | Err(_)) => {}
        Err(_) => panic!("fire_due with a panicking FireFn did not finish"),
    }

    assert!(outbox(&*store).await.is_empty(), "nothing was published");
    assert_eq!(
        scheduled(&*store, first.id).await,
        Some(scheduled_task(&first, at(100), 1))
    );
    assert_eq!(
        scheduled(&*store, second.id).await,
        Some(scheduled_task(&second, at(110), 1))
    );

    let (fire, seen) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(200), 10, fire).await, 2);
    assert_eq!(taken(&seen).len(), 2);
    assert_eq!(outbox(&*store).await.len(), 2);
}

/// Two `fire_due` loops racing on one store fire every due row exactly once between them.
pub async fn concurrent_fire_due_calls_never_fire_the_same_row_twice(f: &dyn StoreFactory) {
    let store = f.open().await;
    race_fire_due([store.clone(), store]).await;
}

/// Two store instances on the same storage (two `chime` processes) racing `fire_due` fire
/// every due row exactly once between them.
pub async fn two_stores_on_the_same_storage_never_fire_the_same_row_twice(f: &dyn StoreFactory) {
    let first = f.open().await;
    let second = f.open().await;
    race_fire_due([first, second]).await;
}

/// `unscheduled_tasks` lists, in id order and by page, the tasks the schedule has not caught up
/// with: no row yet, or a row older than the task. A row at the task's version (a finished one
/// too) is caught up, and a deleted task is never listed.
pub async fn unscheduled_tasks_are_those_without_a_schedule_row_at_their_version(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let tasks = create_many(&*store, &alice, 3).await;
    let listed = |after: Option<TaskId>, limit: usize| {
        let store = store.clone();
        async move {
            store
                .unscheduled_tasks(after, limit)
                .await
                .expect("unscheduled_tasks")
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    let ids = |of: &[&TaskRecord]| of.iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        listed(None, 10).await,
        ids(&[&tasks[0], &tasks[1], &tasks[2]])
    );
    apply_only(&*store, &[set(&tasks[0], Some((at(100), 1)))]).await;
    assert_eq!(listed(None, 10).await, ids(&[&tasks[1], &tasks[2]]));
    assert_eq!(listed(None, 1).await, ids(&[&tasks[1]]));
    assert_eq!(listed(Some(tasks[1].id), 10).await, ids(&[&tasks[2]]));

    // Edited: the row is older than the task again, until the edit's change is applied.
    let renamed = edited(&tasks[0], "Renamed", 10);
    assert!(update(&*store, &renamed).await.expect("update_task"));
    assert_eq!(
        listed(None, 10).await,
        ids(&[&renamed, &tasks[1], &tasks[2]])
    );
    apply_only(&*store, &[set(&renamed, Some((at(100), 1)))]).await;
    // A finished row at the task's version is caught up too.
    apply_only(&*store, &[set(&tasks[1], None)]).await;
    assert_eq!(listed(None, 10).await, ids(&[&tasks[2]]));
    assert!(store
        .delete_task(&alice, tasks[2].id, 1, deleted_event(&tasks[2], 2))
        .await
        .expect("delete_task"));
    assert_eq!(listed(None, 10).await, []);
}
