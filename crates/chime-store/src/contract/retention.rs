//! Retention (issue 23): a policy deletes what is past its cutoff and settled, window by
//! window, and never anything still scheduled, pending, open, snoozed or unread.

use super::*;
use crate::{PastCursor, PastKind};

const DAY: i64 = 86_400;

/// Every kind walked through the whole store, `max` rows a window, as the retention job does.
async fn purge_all(
    store: &dyn Store,
    cutoff: Timestamp,
    now: Timestamp,
    max: usize,
) -> HashMap<PastKind, u64> {
    let mut deleted = HashMap::new();
    for kind in PastKind::ALL {
        let mut after: Option<PastCursor> = None;
        let mut windows = 0;
        loop {
            let purged = store
                .purge_past(kind, cutoff, now, after.as_ref(), max)
                .await
                .expect("purge_past");
            *deleted.entry(kind).or_insert(0) += purged.deleted;
            windows += 1;
            assert!(windows < 1_000, "the walk through {kind:?} ends");
            match purged.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    deleted
}

async fn counts(store: &dyn Store, cutoff: Timestamp, now: Timestamp) -> HashMap<PastKind, u64> {
    let mut counts = HashMap::new();
    for kind in PastKind::ALL {
        let n = store
            .count_past(kind, cutoff, now)
            .await
            .expect("count_past");
        counts.insert(kind, n);
    }
    counts
}

/// A year-old past (on an injected clock: every instant is an argument) beside what must stay:
/// retention deletes exactly the finished task, the settled history, occurrences, final
/// deliveries, read inbox items and reply targets older than the cutoff; `count_past` says so
/// beforehand; walking one row a window finds the same; a second run deletes nothing.
pub async fn retention_deletes_only_the_settled_past_and_a_second_run_nothing(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let done = task(&alice, "Renew the passport");
    let snoozed = task(&alice, "Book the dentist");
    let repeating = task(&alice, "Water the plants");
    let pending_task = task(&alice, "Pay the rent");
    let recent = task(&alice, "Call mum");
    apply(
        &*store,
        &[
            set(&done, Some((at(100), 1))),
            set(&snoozed, Some((at(100), 1))),
            set(&repeating, Some((at(100), 1))),
            set(&pending_task, Some((at(100), 1))),
            set(&recent, Some((at(390 * DAY), 1))),
        ],
    )
    .await;
    let repeating_id = repeating.id;
    let next = move |row: &ScheduledTask| {
        (row.task_id == repeating_id).then(|| {
            let next = if row.due_at < at(DAY) {
                at(2 * DAY)
            } else {
                at(1_000 * DAY)
            };
            (next, row.seq + 1)
        })
    };
    let (fire, _) = recording_fire(next);
    assert_eq!(fire_due(&*store, at(100), 10, fire.clone()).await, 4);
    let key = |task: &TaskRecord, due: i64| occurrence_of(task.id, due);

    store
        .acknowledge_occurrence(&alice, &key(&done, 100), Channel::Email, at(200))
        .await
        .expect("acknowledge_occurrence")
        .expect("an occurrence");
    let snoozing = store
        .snooze_occurrence(&alice, &key(&snoozed, 100), at(500 * DAY))
        .await
        .expect("snooze_occurrence")
        .expect("an occurrence");
    assert_eq!(snoozing.snoozed_until, Some(at(500 * DAY)));
    let read = in_app(&*store, &alice, key(&done, 100)).await;
    store
        .mark_read(&alice, &[read.id])
        .await
        .expect("mark_read");
    let unread = in_app(&*store, &alice, key(&snoozed, 100)).await;
    record(
        &*store,
        &[
            delivery(key(&done, 100), &alice, Channel::Email, None),
            pending(
                key(&pending_task, 100),
                &alice,
                Channel::Email,
                "a@example.com",
                100,
            ),
        ],
    )
    .await;
    store
        .put_reply_target("old-number", &alice, &key(&done, 100), at(150))
        .await
        .expect("put_reply_target");
    store
        .put_reply_target(
            "new-number",
            &alice,
            &key(&recent, 390 * DAY),
            at(395 * DAY),
        )
        .await
        .expect("put_reply_target");

    assert_eq!(fire_due(&*store, at(390 * DAY), 10, fire).await, 2);
    let history_of = [
        fired(key(&done, 100), &alice, 1, 100),
        fired(key(&snoozed, 100), &alice, 1, 100),
        fired(key(&repeating, 100), &alice, 1, 100),
        fired(key(&pending_task, 100), &alice, 1, 100),
        fired(key(&repeating, 2 * DAY), &alice, 2, 390 * DAY),
        fired(key(&recent, 390 * DAY), &alice, 1, 390 * DAY),
    ];
    store.record_fired(&history_of).await.expect("record_fired");
    store
        .record_delivery_states(&[
            delivery_state(key(&done, 100), Channel::Email, 1, 101),
            delivery_state(key(&snoozed, 100), Channel::Email, 1, 101),
        ])
        .await
        .expect("record_delivery_states");

    let now = at(400 * DAY);
    let cutoff = at(35 * DAY);
    let expected: HashMap<PastKind, u64> = [
        (PastKind::FinishedTasks, 1),
        (PastKind::History, 2),
        (PastKind::HistoryDeliveries, 0),
        (PastKind::Occurrences, 2),
        (PastKind::Deliveries, 2),
        (PastKind::ReadInbox, 1),
        (PastKind::ReplyTargets, 1),
    ]
    .into();
    assert_eq!(counts(&*store, cutoff, now).await, expected);

    // One row a window: every walk resumes from its cursor.
    let mut deleted = purge_all(&*store, cutoff, now, 1).await;
    // The delivery state of a history entry deleted in the same run goes in it too.
    assert_eq!(deleted.remove(&PastKind::HistoryDeliveries), Some(1));
    let mut expected = expected;
    expected.remove(&PastKind::HistoryDeliveries);
    assert_eq!(deleted, expected);
    assert!(counts(&*store, cutoff, now).await.values().all(|&n| n == 0));
    assert!(purge_all(&*store, cutoff, now, 100)
        .await
        .values()
        .all(|&n| n == 0));

    // What stays: everything unfinished, open, snoozed, pending, unread or recent.
    assert_eq!(get(&*store, &alice, done.id).await, None);
    for task in [&snoozed, &repeating, &pending_task, &recent] {
        assert!(
            get(&*store, &alice, task.id).await.is_some(),
            "{} stays",
            task.id
        );
    }
    let history_left = |task: &TaskRecord| {
        let store = store.clone();
        let (alice, id) = (alice.clone(), task.id);
        async move {
            store
                .history(&alice, id, None, 10)
                .await
                .expect("history")
                .into_iter()
                .map(|e| e.due_at)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(history_left(&done).await, []);
    assert_eq!(history_left(&repeating).await, [at(2 * DAY)]);
    assert_eq!(history_left(&snoozed).await, [at(100)]);
    assert_eq!(history_left(&pending_task).await, [at(100)]);
    assert_eq!(history_left(&recent).await, [at(390 * DAY)]);
    let occurrence = |task: &TaskRecord, due: i64| {
        let store = store.clone();
        let (alice, key) = (alice.clone(), key(task, due));
        async move {
            store
                .occurrence(&alice, &key)
                .await
                .expect("occurrence")
                .is_some()
        }
    };
    assert!(!occurrence(&done, 100).await);
    assert!(!occurrence(&repeating, 100).await);
    assert!(
        occurrence(&snoozed, 100).await,
        "a snoozed occurrence stays"
    );
    assert!(
        occurrence(&pending_task, 100).await,
        "a pending delivery's occurrence stays"
    );
    assert!(
        occurrence(&repeating, 2 * DAY).await,
        "an open occurrence stays"
    );
    assert_eq!(
        inbox(&*store, &alice, None, 10)
            .await
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>(),
        [unread.id]
    );
    let pending_left = store
        .pending_deliveries(&alice, pending_task.id)
        .await
        .expect("pending_deliveries");
    assert_eq!(pending_left.len(), 1, "a pending delivery stays");
    assert_eq!(
        store
            .reply_target("old-number")
            .await
            .expect("reply_target"),
        None
    );
    assert!(store
        .reply_target("new-number")
        .await
        .expect("reply_target")
        .is_some());
    // The finished task's schedule row stays the tombstone it was: a replay cannot revive it.
    assert_eq!(scheduled(&*store, done.id).await, None);
}
