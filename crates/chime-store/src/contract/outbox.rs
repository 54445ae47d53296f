//! The outbox: events written with their change, in commit order, acknowledged exactly.

use super::*;

/// Create, update, fire_due, record_deliveries and delete each put their events in the
/// outbox; a batch returns them in commit order, with increasing seqs, topic, key and
/// payload byte for byte.
pub async fn every_write_puts_its_events_in_the_outbox_in_commit_order_intact(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let mut expected = Vec::new();

    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;
    expected.push(created_event(&v1));

    let v2 = edited(&v1, "Water the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update"));
    expected.push(updated_event(&v2));

    let other = task(&alice, "Call mum");
    apply(
        &*store,
        &[set(&v2, Some((at(100), 1))), set(&other, Some((at(90), 1)))],
    )
    .await;
    let (fire, seen) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(100), 10, fire).await, 2);
    expected.extend(taken(&seen).iter().map(execute_task));

    let occurrence = OccurrenceKey {
        task_id: v2.id,
        due_at: at(100),
    };
    let writes = [
        delivery(
            occurrence,
            &alice,
            Channel::InApp,
            Some(inbox_item(&alice, occurrence, 101)),
        ),
        delivery(occurrence, &alice, Channel::Email, None),
    ];
    assert_eq!(record(&*store, &writes).await, [0, 1]);
    expected.extend(writes.iter().filter_map(|w| w.event.clone()));

    let event = deleted_event(&v2, 2);
    assert!(store
        .delete_task(&alice, v2.id, 2, event.clone())
        .await
        .expect("delete"));
    expected.push(event);

    let rows = outbox(&*store).await;
    assert_eq!(rows.iter().map(as_event).collect::<Vec<_>>(), expected);
    assert_seqs_increase(&rows);
    let topics: Vec<&str> = rows.iter().map(|r| r.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "task-events",
            "task-events",
            "execute-task",
            "execute-task",
            "notification-sent",
            "notification-sent",
            "task-events"
        ]
    );
    for row in &rows {
        let event = Event::from_bytes(&row.payload).expect("the payload is the event's JSON");
        assert_eq!(event.key(), row.key);
    }
}

/// Schedule changes, history records and marking items read publish nothing, and neither
/// does a `fire_due` with nothing due.
pub async fn writes_that_publish_nothing_leave_the_outbox_alone(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let task = task(&alice, "Water the plants");
    apply(&*store, &[set(&task, Some((at(100), 1)))]).await;
    let (fire, _) = recording_fire(|_| None);
    assert_eq!(fire_due(&*store, at(99), 10, fire).await, 0);
    let occurrence = OccurrenceKey {
        task_id: task.id,
        due_at: at(50),
    };
    store
        .record_fired(&[fired(occurrence, &alice, 1, 51)])
        .await
        .expect("record_fired");
    store
        .record_delivery_states(&[delivery_state(occurrence, Channel::Email, 1, 52)])
        .await
        .expect("record_delivery_states");
    assert_eq!(
        store
            .mark_read(&alice, &[NotificationId::new()])
            .await
            .expect("mark_read"),
        0
    );
    assert!(outbox(&*store).await.is_empty());
}

/// `outbox_batch(max)` returns the `max` oldest events, and keeps returning them until they
/// are acknowledged.
pub async fn outbox_batch_returns_at_most_max_of_the_oldest_events(f: &dyn StoreFactory) {
    let store = f.open().await;
    let tasks = create_many(&*store, &user("alice"), 5).await;
    let events: Vec<OutboxEvent> = tasks.iter().map(created_event).collect();

    let two = store.outbox_batch(2).await.expect("outbox_batch");
    assert_eq!(two.iter().map(as_event).collect::<Vec<_>>(), events[..2]);
    let again = store.outbox_batch(2).await.expect("outbox_batch");
    assert_eq!(again, two, "reading a batch does not consume it");
    let all = store.outbox_batch(100).await.expect("outbox_batch");
    assert_eq!(all.iter().map(as_event).collect::<Vec<_>>(), events);
    assert_eq!(all[..2], two);
}

/// `outbox_ack(seqs)` removes exactly those events: not an unacknowledged one with a lower seq
/// (on PostgreSQL, an event that committed after a batch with higher seqs was read and
/// relayed: an ack "up to" the batch's last seq would delete it unpublished). Acking the same
/// or an unknown seq again changes nothing.
pub async fn outbox_ack_removes_exactly_the_acknowledged_events_and_never_an_unread_lower_one(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    create_many(&*store, &user("alice"), 5).await;
    let rows = outbox(&*store).await;
    assert_eq!(rows.len(), 5);

    // A relay that read rows 1 and 3 only (0, 2 and 4 were not visible yet) acks those.
    ack(&*store, &[rows[1].seq, rows[3].seq]).await;
    let left = [rows[0].clone(), rows[2].clone(), rows[4].clone()];
    assert_eq!(
        outbox(&*store).await,
        left,
        "events with lower seqs than an acknowledged one stay until they are acknowledged"
    );
    ack(&*store, &[rows[1].seq, rows[3].seq]).await;
    ack(&*store, &[]).await;
    let unknown = rows[4].seq + 1_000;
    ack(&*store, &[unknown]).await;
    assert_eq!(
        outbox(&*store).await,
        left,
        "a repeated ack changes nothing"
    );

    let later = create_many(&*store, &user("bob"), 1).await;
    let now = outbox(&*store).await;
    assert_eq!(now[..3], left);
    assert_eq!(now.get(3).map(as_event), Some(created_event(&later[0])));
    assert_seqs_increase(&now);

    ack(&*store, &seqs(&now)).await;
    assert!(outbox(&*store).await.is_empty());
}

/// `outbox_len` is the number of events a relay has still to publish: writes add to it, acks
/// take away what they acknowledge, reading a batch changes nothing.
pub async fn outbox_len_counts_the_events_not_yet_acknowledged(f: &dyn StoreFactory) {
    let store = f.open().await;
    assert_eq!(store.outbox_len().await.expect("outbox_len"), 0);
    create_many(&*store, &user("alice"), 4).await;
    assert_eq!(store.outbox_len().await.expect("outbox_len"), 4);
    let rows = store.outbox_batch(3).await.expect("outbox_batch");
    assert_eq!(store.outbox_len().await.expect("outbox_len"), 4);
    ack(&*store, &seqs(&rows)).await;
    assert_eq!(store.outbox_len().await.expect("outbox_len"), 1);
    ack(&*store, &seqs(&outbox(&*store).await)).await;
    assert_eq!(store.outbox_len().await.expect("outbox_len"), 0);
}

/// Once every event is acknowledged, new events still get higher seqs than any before, also
/// after a restart, so a seq names one event for good.
pub async fn outbox_sequence_numbers_are_never_reused_even_after_a_restart(f: &dyn StoreFactory) {
    let store = f.open().await;
    create_many(&*store, &user("alice"), 3).await;
    let first = outbox(&*store).await;
    let highest = first.last().expect("three events").seq;
    ack(&*store, &seqs(&first)).await;

    create_many(&*store, &user("alice"), 1).await;
    let second = outbox(&*store).await;
    assert_eq!(second.len(), 1);
    assert!(second[0].seq > highest, "{} after {highest}", second[0].seq);
    ack(&*store, &[second[0].seq]).await;
    drop(store);

    let store = f.open().await;
    assert!(outbox(&*store).await.is_empty(), "acked events stay gone");
    create_many(&*store, &user("alice"), 1).await;
    let third = outbox(&*store).await;
    assert_eq!(third.len(), 1);
    assert!(
        third[0].seq > second[0].seq,
        "{} after {}",
        third[0].seq,
        second[0].seq
    );
}

/// A relay waiting on `outbox_signal` wakes after each write that published: create, update,
/// delete, fire_due, record_deliveries and record_attempt.
pub async fn the_outbox_signal_wakes_a_waiting_relay_after_every_write_with_events(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let signal = store.outbox_signal();
    let alice = user("alice");

    let v1 = task(&alice, "Water the plants");
    signalled(
        &signal,
        "create_task",
        store.create_task(&v1, created_event(&v1)),
    )
    .await
    .expect("create");
    let v2 = edited(&v1, "Water the herbs", 60);
    assert!(signalled(&signal, "update_task", update(&*store, &v2))
        .await
        .expect("update"));

    apply(&*store, &[set(&v2, Some((at(100), 1)))]).await;
    let (fire, _) = recording_fire(|_| None);
    let fired = signalled(&signal, "fire_due", store.fire_due(at(100), 10, fire))
        .await
        .expect("fire_due");
    assert_eq!(fired, 1);

    let occurrence = OccurrenceKey {
        task_id: v2.id,
        due_at: at(100),
    };
    let write = delivery(occurrence, &alice, Channel::Email, None);
    let new = signalled(
        &signal,
        "record_deliveries",
        store.record_deliveries(&[write]),
    )
    .await
    .expect("record_deliveries");
    assert_eq!(new, [0]);

    let push = pending(occurrence, &alice, Channel::Push, "sub_phone", 100);
    record(&*store, std::slice::from_ref(&push)).await;
    assert_eq!(
        claim(&*store, Channel::Push, at(100), at(160), 10)
            .await
            .len(),
        1
    );
    let event = final_event(&push, DeliveryOutcome::Sent, 1, at(101), None, None);
    signalled(
        &signal,
        "record_attempt",
        store.record_attempt(&key(&push), at(160), at(101), sent(None), Some(event)),
    )
    .await
    .expect("record_attempt");

    assert!(signalled(
        &signal,
        "delete_task",
        store.delete_task(&alice, v2.id, 2, deleted_event(&v2, 2)),
    )
    .await
    .expect("delete"));
    assert_eq!(outbox(&*store).await.len(), 6);
}
