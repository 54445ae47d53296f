//! Deliveries and the inbox: once per occurrence, channel and target; private, paginated inboxes.

use super::*;

/// `record_deliveries` returns the indexes of the writes that were new: not those already
/// recorded, nor a second write of the same (occurrence, channel) in the same batch.
pub async fn record_deliveries_returns_the_indexes_of_new_deliveries_only(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);

    let first = [
        delivery(
            occurrence,
            &alice,
            Channel::InApp,
            Some(inbox_item(&alice, occurrence, 101)),
        ),
        delivery(occurrence, &alice, Channel::Email, None),
    ];
    assert_eq!(record(&*store, &first).await, [0, 1]);

    let second = [
        delivery(occurrence, &alice, Channel::Email, None),
        delivery(occurrence, &alice, Channel::Sms, None),
        delivery(occurrence, &alice, Channel::Sms, None),
        delivery(occurrence, &alice, Channel::Push, None),
    ];
    assert_eq!(record(&*store, &second).await, [1, 3]);
    assert!(record(&*store, &second).await.is_empty());

    let expected: Vec<OutboxEvent> = [&first[0], &first[1], &second[1], &second[3]]
        .iter()
        .filter_map(|w| w.event.clone())
        .collect();
    assert_eq!(outbox_events(&*store).await, expected);
}

/// Recording an in-app delivery again (a consumer redelivered `execute_task` and made a new
/// notification id) writes no second inbox item and publishes nothing.
pub async fn a_replayed_delivery_writes_no_second_inbox_item_or_event(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let original = delivery(
        occurrence,
        &alice,
        Channel::InApp,
        Some(inbox_item(&alice, occurrence, 101)),
    );
    assert_eq!(record(&*store, std::slice::from_ref(&original)).await, [0]);
    let events = outbox(&*store).await;

    let replay = delivery(
        occurrence,
        &alice,
        Channel::InApp,
        Some(inbox_item(&alice, occurrence, 150)),
    );
    assert!(record(&*store, &[replay]).await.is_empty());

    let items = inbox(&*store, &alice, None, 100).await;
    assert_eq!(items, original.inbox.into_iter().collect::<Vec<_>>());
    assert_eq!(unread(&*store, &alice).await, 1);
    assert_eq!(outbox(&*store).await, events);
}

/// Channels of one occurrence, and one channel of different occurrences, are separate
/// deliveries.
pub async fn each_channel_of_an_occurrence_is_recorded_independently(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let task_id = TaskId::new();
    let monday = occurrence_of(task_id, 100);
    let thursday = occurrence_of(task_id, 400);

    assert_eq!(
        record(
            &*store,
            &[delivery(
                monday,
                &alice,
                Channel::InApp,
                Some(inbox_item(&alice, monday, 101))
            )]
        )
        .await,
        [0]
    );
    assert_eq!(
        record(&*store, &[delivery(monday, &alice, Channel::Email, None)]).await,
        [0]
    );
    assert_eq!(
        record(
            &*store,
            &[delivery(
                thursday,
                &alice,
                Channel::InApp,
                Some(inbox_item(&alice, thursday, 401))
            )]
        )
        .await,
        [0]
    );
    assert_eq!(
        record(&*store, &[delivery(thursday, &alice, Channel::Email, None)]).await,
        [0]
    );
    assert_eq!(inbox(&*store, &alice, None, 100).await.len(), 2);
    assert_eq!(outbox(&*store).await.len(), 4);
}

/// A user's inbox holds only their items, newest first, `limit` at a time before the cursor
/// `before`.
pub async fn the_inbox_is_per_user_newest_first_and_paginates_with_before(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let task_id = TaskId::new();
    let mut alices = Vec::new();
    let mut bobs = Vec::new();
    for i in 0..5 {
        let due = 100 * (i + 1);
        let item = in_app(&*store, &alice, occurrence_of(task_id, due)).await;
        alices.push(item);
        if i < 2 {
            let item = in_app(&*store, &bob, occurrence_of(TaskId::new(), due)).await;
            bobs.push(item);
        }
    }
    alices.reverse();
    bobs.reverse();

    assert_eq!(inbox(&*store, &alice, None, 100).await, alices);
    assert_eq!(inbox(&*store, &bob, None, 100).await, bobs);

    assert_eq!(inbox(&*store, &alice, None, 2).await, alices[..2]);
    assert_eq!(
        inbox(&*store, &alice, Some(alices[1].id), 2).await,
        alices[2..4]
    );
    assert_eq!(
        inbox(&*store, &alice, Some(alices[3].id), 2).await,
        alices[4..]
    );
    assert!(inbox(&*store, &alice, Some(alices[4].id), 2)
        .await
        .is_empty());
    assert!(inbox(&*store, &alice, None, 0).await.is_empty());
}

/// `mark_read` marks only the caller's unread items among those given and returns how many
/// it changed; `unread_count` follows.
pub async fn mark_read_changes_only_the_owners_unread_items_and_counts_them(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let task_id = TaskId::new();
    let mut items = Vec::new();
    for due in [100, 200, 300] {
        items.push(in_app(&*store, &alice, occurrence_of(task_id, due)).await);
    }
    let bobs = in_app(&*store, &bob, occurrence_of(TaskId::new(), 100)).await;
    assert_eq!(unread(&*store, &alice).await, 3);
    assert_eq!(unread(&*store, &bob).await, 1);

    let marked = store
        .mark_read(
            &alice,
            &[items[0].id, items[1].id, bobs.id, NotificationId::new()],
        )
        .await
        .expect("mark_read");
    assert_eq!(marked, 2);
    assert_eq!(unread(&*store, &alice).await, 1);
    assert_eq!(unread(&*store, &bob).await, 1);

    let again = store
        .mark_read(&alice, &[items[0].id, items[0].id])
        .await
        .expect("mark_read");
    assert_eq!(again, 0, "items already read do not count");
    let by_bob = store
        .mark_read(&bob, &[items[2].id])
        .await
        .expect("mark_read");
    assert_eq!(by_bob, 0, "bob cannot mark alice's item");
    assert_eq!(store.mark_read(&alice, &[]).await.expect("mark_read"), 0);
    assert_eq!(unread(&*store, &alice).await, 1);

    let read: Vec<(NotificationId, bool)> = inbox(&*store, &alice, None, 100)
        .await
        .iter()
        .map(|i| (i.id, i.read))
        .collect();
    assert_eq!(
        read,
        [
            (items[2].id, false),
            (items[1].id, true),
            (items[0].id, true)
        ]
    );
    assert_eq!(inbox(&*store, &bob, None, 100).await, [bobs]);
    assert_eq!(unread(&*store, &user("carol")).await, 0);
}

/// An inbox item that arrived during its owner's quiet hours is read back silent; the others
/// are not.
pub async fn a_silent_inbox_item_is_read_back_silent(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let (loud, quiet) = (
        occurrence_of(TaskId::new(), 100),
        occurrence_of(TaskId::new(), 200),
    );
    let loud_item = inbox_item(&alice, loud, 101);
    let quiet_item = InboxItem {
        silent: true,
        ..inbox_item(&alice, quiet, 201)
    };
    let writes = [
        delivery(loud, &alice, Channel::InApp, Some(loud_item.clone())),
        delivery(quiet, &alice, Channel::InApp, Some(quiet_item.clone())),
    ];
    assert_eq!(record(&*store, &writes).await, [0, 1]);
    // Newest first.
    assert_eq!(
        inbox(&*store, &alice, None, 10).await,
        [quiet_item, loud_item]
    );
}
