//! Durability: everything written before a restart is there after it.

use super::*;

/// Tasks, schedule rows and tombstones, deliveries, inbox items and their read state,
/// history and unacknowledged events are all there after a restart.
pub async fn everything_written_before_a_restart_is_there_after(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let tasks = create_many(&*store, &alice, 3).await;
    let v2 = edited(&tasks[1], "Edited before the restart", 60);
    assert!(update(&*store, &v2).await.expect("update"));
    assert!(store
        .delete_task(&alice, tasks[2].id, 1, deleted_event(&tasks[2], 1))
        .await
        .expect("delete"));

    apply_only(
        &*store,
        &[
            set(&tasks[0], Some((at(100), 1))),
            set(&v2, Some((at(200), 4))),
            set(&tasks[2], Some((at(300), 1))),
            ScheduleChange::Delete {
                task_id: tasks[2].id,
                version: 2,
            },
        ],
    )
    .await;

    let occurrence = occurrence_of(tasks[0].id, 50);
    let item = in_app(&*store, &alice, occurrence).await;
    let other = in_app(&*store, &alice, occurrence_of(tasks[0].id, 60)).await;
    store
        .mark_read(&alice, &[item.id])
        .await
        .expect("mark_read");
    let fired = fired(occurrence, &alice, 1, 51);
    let state = delivery_state(occurrence, Channel::InApp, 1, 52);
    store
        .record_fired(std::slice::from_ref(&fired))
        .await
        .expect("record_fired");
    store
        .record_delivery_states(std::slice::from_ref(&state))
        .await
        .expect("record_delivery_states");

    let events = outbox(&*store).await;
    ack(&*store, &[events[0].seq]).await;
    drop(store);

    let store = f.open().await;
    assert_eq!(
        list(&*store, &alice, None, 100).await,
        [tasks[0].clone(), v2.clone()]
    );
    assert_eq!(
        scheduled(&*store, tasks[0].id).await,
        Some(scheduled_task(&tasks[0], at(100), 1))
    );
    assert_eq!(
        scheduled(&*store, v2.id).await,
        Some(scheduled_task(&v2, at(200), 4))
    );
    apply_only(&*store, &[set(&tasks[2], Some((at(300), 1)))]).await;
    assert_eq!(
        scheduled(&*store, tasks[2].id).await,
        None,
        "the tombstone held"
    );
    assert_eq!(next_due(&*store).await, Some(at(100)));

    let read = InboxItem {
        read: true,
        ..item.clone()
    };
    assert_eq!(inbox(&*store, &alice, None, 100).await, [other, read]);
    assert_eq!(unread(&*store, &alice).await, 1);
    let replay = delivery(
        occurrence,
        &alice,
        Channel::InApp,
        Some(inbox_item(&alice, occurrence, 70)),
    );
    assert!(record(&*store, &[replay]).await.is_empty());

    assert_eq!(
        history(&*store, &alice, tasks[0].id, None, 10).await,
        [entry(&fired, vec![state.status])]
    );
    assert_eq!(outbox(&*store).await, events[1..]);
}

/// Pending deliveries (with their messages, attempts, errors and leases) and recipients are
/// all there after a restart.
pub async fn pending_deliveries_leases_and_recipients_survive_a_restart(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let task_id = TaskId::new();
    let leased = pending(occurrence_of(task_id, 100), &alice, Channel::Email, "", 100);
    let retrying = pending(
        occurrence_of(task_id, 100),
        &alice,
        Channel::Push,
        "sub_phone",
        100,
    );
    record(&*store, &[leased.clone(), retrying.clone()]).await;
    assert_eq!(
        claim(&*store, Channel::Email, at(100), at(160), 10)
            .await
            .len(),
        1
    );
    claim(&*store, Channel::Push, at(100), at(160), 10).await;
    attempt(
        &*store,
        &key(&retrying),
        at(160),
        at(101),
        retry(300, "HTTP 503"),
        None,
    )
    .await;
    let phone = subscription(&alice, "sub_phone", "https://push.example/phone", 10);
    put_subscription(&*store, &phone).await;
    let hook = webhook_endpoint(&alice, "https://hooks.example/alice", 10);
    put_webhook(&*store, &hook).await;
    let chat = destination_record(&alice, "dst_chat", "Family chat", 10);
    put_destination(&*store, &chat).await;
    let before = pending_of(&*store, &alice, task_id).await;
    drop(store);

    let store = f.open().await;
    assert_eq!(pending_of(&*store, &alice, task_id).await, before);
    assert!(
        claim(&*store, Channel::Email, at(159), at(219), 10)
            .await
            .is_empty(),
        "the lease held"
    );
    assert_eq!(
        claim(&*store, Channel::Email, at(160), at(220), 10).await,
        [claimed(&leased, 0, at(100))]
    );
    assert_eq!(next_delivery(&*store, Channel::Push).await, Some(at(300)));
    assert_eq!(
        claim(&*store, Channel::Push, at(300), at(360), 10).await,
        [claimed(&retrying, 1, at(100))]
    );
    assert_eq!(subscriptions(&*store, &alice).await, [phone]);
    assert_eq!(webhook(&*store, &alice).await, Some(hook));
    assert_eq!(destinations(&*store, &alice).await, [chat]);
}
