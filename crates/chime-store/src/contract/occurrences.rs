//! Occurrence state (issue 16): opened by the claim that fires it, open until acknowledged or
//! expired, acknowledged once per owner.

use super::*;

fn key(task: &TaskRecord, due: Timestamp) -> OccurrenceKey {
    OccurrenceKey {
        task_id: task.id,
        due_at: due,
    }
}

async fn open(store: &dyn Store, owner: &UserId, now: Timestamp) -> Vec<OccurrenceKey> {
    store
        .open_occurrences(owner, now, None, 100)
        .await
        .expect("open_occurrences")
        .into_iter()
        .map(|o| o.key)
        .collect()
}

/// `fire_due` opens each occurrence it fires, in its own transaction: a recurring one until
/// its next occurrence is due, a one-time one for `ONE_TIME_OPEN_FOR`. A row not fired (its
/// task deleted: the fence) opens nothing, and the list is the owner's only, newest first.
pub async fn fire_due_opens_each_fired_occurrence_until_its_next_or_for_a_day(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
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
    let (fire, _) =
        recording_fire(move |row| (row.task_id == recurring_id).then(|| (at(1_000), row.seq + 1)));
    assert_eq!(fire_due(&*store, at(120), 10, fire).await, 2);

    let all = store
        .open_occurrences(&alice, at(120), None, 10)
        .await
        .expect("open_occurrences");
    assert_eq!(
        all,
        [
            OccurrenceRecord {
                key: key(&once, at(110)),
                user_id: alice.clone(),
                fired_at: at(120),
                expires_at: at(110) + crate::ONE_TIME_OPEN_FOR,
                acknowledged: None,
            },
            OccurrenceRecord {
                key: key(&recurring, at(100)),
                user_id: alice.clone(),
                fired_at: at(120),
                expires_at: at(1_000),
                acknowledged: None,
            },
        ]
    );
    assert!(open(&*store, &bob, at(120)).await.is_empty());
    // Expired: the recurring one once its next occurrence is due, the one-time one after a day.
    assert_eq!(
        open(&*store, &alice, at(1_000)).await,
        [key(&once, at(110))]
    );
    assert!(open(&*store, &alice, at(110 + 86_400)).await.is_empty());
    // An expired occurrence is still there to read (and acknowledge).
    assert!(store
        .occurrence(&alice, &key(&once, at(110)))
        .await
        .expect("occurrence")
        .is_some());

    // The fence: a row whose task was deleted is not fired and opens nothing.
    let gone = task(&alice, "Gone");
    apply(&*store, &[set(&gone, Some((at(200), 1)))]).await;
    store
        .delete_task(&alice, gone.id, 1, deleted_event(&gone, 2))
        .await
        .expect("delete_task");
    let (fire, _) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(300), 10, fire).await, 0);
    assert_eq!(
        store
            .occurrence(&alice, &key(&gone, at(200)))
            .await
            .expect("occurrence"),
        None
    );
}

/// The open list pages newest first with `before` (due instant, then task id).
pub async fn open_occurrences_paginate_newest_first_with_before(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let tasks: Vec<_> = (0..5).map(|i| task(&alice, &format!("Task {i}"))).collect();
    let changes: Vec<_> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| set(t, Some((at(100 + 10 * i as i64), 1))))
        .collect();
    apply(&*store, &changes).await;
    let (fire, _) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(200), 10, fire).await, 5);

    let expected: Vec<_> = tasks
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| key(t, at(100 + 10 * i as i64)))
        .collect();
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .open_occurrences(&alice, at(200), before.as_ref(), 2)
            .await
            .expect("open_occurrences");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        before = page.last().map(|o| o.key);
        pages.extend(page.into_iter().map(|o| o.key));
    }
    assert_eq!(pages, expected);
}

/// Acknowledging closes the occurrence; a second acknowledgement (any channel) answers the
/// first's; another user's acknowledgement finds nothing and changes nothing; the
/// occurrence's inbox items are marked read with it; it survives a restart.
pub async fn acknowledging_is_idempotent_per_owner_and_closes_the_occurrence(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let once = task(&alice, "Call mum");
    apply(&*store, &[set(&once, Some((at(100), 1)))]).await;
    let (fire, _) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(100), 10, fire).await, 1);
    let k = key(&once, at(100));
    // Its in-app item, and another occurrence's, unread.
    let item = in_app(&*store, &alice, k).await;
    let other = in_app(&*store, &alice, key(&once, at(90))).await;

    let missing = key(&once, at(101));
    assert_eq!(
        store
            .acknowledge_occurrence(&alice, &missing, Channel::InApp, at(150))
            .await
            .expect("acknowledge"),
        None
    );
    assert_eq!(
        store
            .acknowledge_occurrence(&bob, &k, Channel::InApp, at(150))
            .await
            .expect("acknowledge"),
        None
    );
    assert_eq!(open(&*store, &alice, at(150)).await, [k]);

    let first = store
        .acknowledge_occurrence(&alice, &k, Channel::Sms, at(160))
        .await
        .expect("acknowledge")
        .expect("alice's occurrence");
    assert_eq!(first.acknowledged, Some((at(160), Channel::Sms)));
    let again = store
        .acknowledge_occurrence(&alice, &k, Channel::InApp, at(170))
        .await
        .expect("acknowledge");
    assert_eq!(again, Some(first.clone()));
    assert!(open(&*store, &alice, at(170)).await.is_empty());
    // Done is seen: the acknowledged occurrence's inbox item is read, the other's is not.
    let read: Vec<(NotificationId, bool)> = inbox(&*store, &alice, None, 10)
        .await
        .into_iter()
        .map(|i| (i.id, i.read))
        .collect();
    assert_eq!(read.len(), 2);
    assert!(read.contains(&(item.id, true)), "{read:?}");
    assert!(read.contains(&(other.id, false)), "{read:?}");
    assert_eq!(store.unread_count(&alice).await.expect("unread"), 1);

    drop(store);
    let store = f.open().await;
    assert_eq!(
        store.occurrence(&alice, &k).await.expect("occurrence"),
        Some(first)
    );
    assert_eq!(store.occurrence(&bob, &k).await.expect("occurrence"), None);
}
