//! The contract every store adapter passes: one suite, run against each adapter (SQLite and
//! PostgreSQL), in the manner of garage's `test_suite(db)`.
//!
//! Each check is a public async function taking a [`StoreFactory`]; [`store_contract_tests!`]
//! expands to one `#[tokio::test]` per check, so an adapter's test file is a few lines:
//!
//! ```ignore
//! chime_store::store_contract_tests!(MyFactory::new());
//! ```
//!
//! What the suite guarantees of an adapter that passes it:
//! - Tasks are private to their owner, listed in id order with cursor pagination, and changed
//!   only under optimistic concurrency: a stale version is [`Error::Conflict`] and changes
//!   nothing; a missing task (or another user's) is `Ok(false)`.
//! - Every write that publishes puts its events in the outbox in the same transaction, in
//!   commit order, byte for byte; a failed write publishes nothing; acknowledging removes
//!   exactly the acknowledged events (never an unread one with a lower sequence number, which
//!   on PostgreSQL may commit late), and sequence numbers are never reused; the outbox signal
//!   wakes a waiting relay after each such write.
//! - The schedule applies task events idempotently by version, remembers deletions and
//!   finished tasks so that replays cannot revive them, and `fire_due` claims due rows
//!   earliest first, at most `max`, atomically with their events, never the same row twice
//!   (also from two concurrent callers or two store instances on the same storage), and
//!   never a row whose task was deleted or changed after the row was written (the fence).
//! - Deliveries happen once per (occurrence, channel, target): a replay writes no second inbox
//!   item or event, and does not revive a delivery whatever its state. Inboxes are private,
//!   newest first, paginated by item id.
//! - A pending delivery publishes nothing until it is final. It is claimed on its channel once
//!   its next attempt is due, earliest first, at most `max`, under a lease that keeps every
//!   other claim (also from another store instance) away until it ends. An attempt counts,
//!   and either schedules the next one with its error, or makes the delivery final and
//!   publishes its event in the same transaction; an attempt on a delivery no longer pending
//!   changes and publishes nothing. Only its owner can put a dead letter back to pending.
//! - Push subscriptions and webhook endpoints are per user; a known push endpoint keeps its id.
//! - Browser sessions read back as put while live (never once expired), a sign-in replaces
//!   one in a single step, a pending sign-in is taken by exactly one caller (also across
//!   store instances), and purging removes exactly the expired ones.
//! - History ignores replayed firings, keeps the delivery state with the most attempts per
//!   (channel, target) with its provider id, and shows delivery states whichever of the two
//!   events arrived first.
//! - Everything above survives a restart.
//!
//! Rules the checks follow, so they hold on every adapter:
//! - Every check opens a new factory (see [`store_contract_tests!`]) and expects its first
//!   [`StoreFactory::open`] to give an empty store, as zero-to-production's `spawn_app` gives
//!   every test its own database: the outbox and the schedule are global, so a store shared
//!   between checks could not be asserted exactly.
//! - A restart is: drop the store, then [`StoreFactory::open`] again.
//! - Instants are whole seconds, so every adapter stores them exactly (SQLite keeps
//!   microseconds).
//! - Nothing sleeps to wait for something. Waits (the outbox signal, concurrent callers) are
//!   for an event, under a generous [`GUARD`] that only turns a hang into a failure.
//!
//! These functions are test code: they panic on any failure.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chime_core::event::{
    Channel, DeliveryOutcome, Event, ExecuteTask, NotificationSent, OccurrenceKey, TaskChanged,
    TaskDeleted,
};
use chime_core::{NotificationId, TaskId, TaskSpec, UserId};
use jiff::Timestamp;
use serde_json::json;
use tokio::sync::Notify;

use crate::{
    AttemptResult, ClaimedDelivery, DeliveryKey, DeliveryState, DeliveryStatus, DeliveryWrite,
    Error, Fire, FireFn, FiredOccurrence, HistoryEntry, InboxItem, OutboxEvent, OutboxRow,
    PendingSignIn, PushSubscriptionRecord, ScheduleChange, ScheduledTask, SessionRecord, Store,
    TaskRecord, WebhookEndpoint,
};

/// Opens the adapter under test.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// Opens the store. The first open of a factory gives an empty store; opening again (after
    /// the previous store was dropped, or while it is still open) gives the same durable
    /// storage: that is how the suite simulates a restart and a second instance.
    async fn open(&self) -> Arc<dyn Store>;
}

/// Longest wait for something that should happen; reaching it fails the test.
pub const GUARD: Duration = Duration::from_secs(10);

/// Expands to one `#[tokio::test]` per contract check, each opening its own factory from
/// `$factory` (an expression evaluated once per test). The calling crate needs `tokio` with
/// the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:expr) => {
        $crate::store_contract_tests!(@each $factory;
            a_new_store_is_empty,
            a_created_task_is_returned_by_get_as_written,
            a_task_is_invisible_to_another_user,
            task_by_id_finds_any_users_task_for_the_admin_read,
            list_tasks_returns_only_the_users_tasks_in_id_order_and_paginates,
            an_update_at_the_next_version_replaces_the_task_and_bumps_its_version,
            an_update_at_a_stale_version_is_a_conflict_and_changes_nothing,
            an_update_of_a_missing_or_another_users_task_returns_false_and_writes_nothing,
            a_delete_at_the_current_version_removes_the_task,
            a_delete_at_a_wrong_version_is_a_conflict_and_keeps_the_task,
            a_delete_of_a_missing_or_another_users_task_returns_false,
            every_write_puts_its_events_in_the_outbox_in_commit_order_intact,
            writes_that_publish_nothing_leave_the_outbox_alone,
            outbox_batch_returns_at_most_max_of_the_oldest_events,
            outbox_ack_removes_exactly_the_acknowledged_events_and_never_an_unread_lower_one,
            outbox_len_counts_the_events_not_yet_acknowledged,
            outbox_sequence_numbers_are_never_reused_even_after_a_restart,
            the_outbox_signal_wakes_a_waiting_relay_after_every_write_with_events,
            a_set_change_is_returned_by_scheduled,
            a_change_at_an_older_or_equal_version_is_ignored,
            a_delete_leaves_a_tombstone_that_a_replayed_older_set_cannot_revive,
            a_set_without_a_next_occurrence_removes_the_task_from_next_due,
            next_due_is_the_earliest_due_instant,
            fire_due_fires_only_rows_due_at_or_before_now_earliest_first_and_at_most_max,
            fire_due_advances_or_finishes_each_row_and_publishes_its_events,
            a_finished_row_is_not_fired_again_nor_revived_by_a_replay,
            a_row_whose_task_was_deleted_is_not_fired_before_the_delete_reaches_the_schedule,
            a_row_whose_task_changed_is_not_fired_until_the_change_reaches_the_schedule,
            fire_due_state_survives_a_restart,
            a_fire_due_that_fails_part_way_changes_nothing,
            concurrent_fire_due_calls_never_fire_the_same_row_twice,
            two_stores_on_the_same_storage_never_fire_the_same_row_twice,
            record_deliveries_returns_the_indexes_of_new_deliveries_only,
            a_replayed_delivery_writes_no_second_inbox_item_or_event,
            each_channel_of_an_occurrence_is_recorded_independently,
            the_inbox_is_per_user_newest_first_and_paginates_with_before,
            mark_read_changes_only_the_owners_unread_items_and_counts_them,
            a_pending_delivery_publishes_nothing_and_is_claimed_on_its_channel_once_due,
            a_claimed_delivery_is_leased_until_its_lease_ends_then_claimed_again,
            claim_deliveries_returns_at_most_max_earliest_next_attempt_first,
            next_delivery_at_is_the_earliest_next_attempt_or_lease_end_of_the_channel,
            a_sent_attempt_is_final_published_and_no_longer_pending,
            a_retry_attempt_stays_pending_until_its_next_attempt_with_its_error,
            a_dead_lettered_attempt_is_final_and_published,
            an_attempt_on_a_delivery_no_longer_pending_changes_nothing_and_publishes_nothing,
            an_attempt_under_a_lease_that_ran_out_does_not_disturb_the_new_claim,
            retry_dead_letter_by_the_owner_makes_the_delivery_due_again_now,
            retry_dead_letter_of_another_users_or_a_sent_delivery_returns_false,
            each_target_of_a_channel_is_a_separate_delivery_recorded_once,
            pending_deliveries_are_per_user_and_per_task,
            two_stores_claiming_at_once_never_claim_the_same_delivery_twice,
            record_fired_ignores_replays,
            record_delivery_states_keeps_the_state_with_the_most_attempts,
            history_is_per_user_and_task_newest_first_with_before_and_limit,
            delivery_states_recorded_before_their_firing_show_once_it_is_recorded,
            history_keeps_each_targets_delivery_state_with_its_provider_id,
            push_subscriptions_are_per_user_and_a_known_endpoint_keeps_its_id,
            removing_a_push_subscription_honours_its_owner_when_given,
            a_users_webhook_is_put_replaced_and_removed_per_user,
            everything_written_before_a_restart_is_there_after,
            pending_deliveries_leases_and_recipients_survive_a_restart,
            concurrent_writes_commit_independently_when_some_fail,
            a_session_is_read_back_as_put_and_put_again_replaces_it,
            an_expired_session_is_absent,
            replace_session_removes_the_old_id_and_puts_the_new_one,
            a_pending_sign_in_is_set_on_a_live_session_and_taken_once,
            a_pending_sign_in_taken_concurrently_is_given_to_exactly_one_caller,
            purge_sessions_removes_only_the_expired_ones,
            sessions_survive_a_restart,
        );
    };
    (@each $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let factory = $factory;
                $crate::contract::$check(&factory).await;
            }
        )+
    };
}

// ----------------------------------------------------------------------------------------
// Tasks
// ----------------------------------------------------------------------------------------

/// Many writes at once, some of which fail (an update at a stale version), each keep their own
/// outcome: an adapter that commits concurrent writes together (SQLite's group commit) must
/// neither lose the good ones nor keep anything of the failed ones.
pub async fn concurrent_writes_commit_independently_when_some_fail(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let existing = task(&alice, "Existing");
    create(&*store, &existing).await;
    if let Some(last) = outbox(&*store).await.last() {
        ack(&*store, &[last.seq]).await;
    }

    let mut writes = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        let new = task(&alice, &format!("Task {i}"));
        let mut stale = existing.clone();
        stale.version = 5;
        writes.push(tokio::spawn(async move {
            let created = store.create_task(&new, created_event(&new)).await;
            let conflicted = store.update_task(&stale, updated_event(&stale)).await;
            (new, created, conflicted)
        }));
    }
    let mut created = Vec::new();
    for write in writes {
        let (task, result, conflicted) = write.await.expect("write task");
        result.expect("a good write succeeds whatever its neighbours do");
        assert!(
            matches!(conflicted, Err(crate::Error::Conflict)),
            "{conflicted:?}"
        );
        created.push(task);
    }
    for task in &created {
        assert_eq!(get(&*store, &alice, task.id).await.as_ref(), Some(task));
    }
    assert_eq!(get(&*store, &alice, existing.id).await, Some(existing));
    let events = outbox_events(&*store).await;
    assert_eq!(
        events.len(),
        created.len(),
        "one event per create, none for a conflict"
    );
}

/// A new store has no tasks, schedule, inbox, history, pending deliveries, recipients or
/// outbox.
pub async fn a_new_store_is_empty(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    assert!(list(&*store, &alice, None, 100).await.is_empty());
    assert_eq!(store.next_due().await.expect("next_due"), None);
    assert!(outbox(&*store).await.is_empty());
    assert!(inbox(&*store, &alice, None, 100).await.is_empty());
    assert_eq!(unread(&*store, &alice).await, 0);
    assert!(history(&*store, &alice, TaskId::new(), None, 100)
        .await
        .is_empty());
    for channel in Channel::ALL {
        assert_eq!(next_delivery(&*store, channel).await, None);
        assert!(claim(&*store, channel, at(0), at(60), 10).await.is_empty());
    }
    assert!(pending_of(&*store, &alice, TaskId::new()).await.is_empty());
    assert!(subscriptions(&*store, &alice).await.is_empty());
    assert_eq!(webhook(&*store, &alice).await, None);
    assert_eq!(store.count_sessions(at(0)).await.expect("count"), 0);
}

/// `get_task` returns the task exactly as created: id, owner, version, body and instants.
pub async fn a_created_task_is_returned_by_get_as_written(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let task = task(&alice, "Water the plants");
    create(&*store, &task).await;

    assert_eq!(get(&*store, &alice, task.id).await, Some(task.clone()));
    assert_eq!(get(&*store, &alice, TaskId::new()).await, None);
}

/// Another user cannot see a task, by id or in a list.
pub async fn a_task_is_invisible_to_another_user(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let task = task(&alice, "Water the plants");
    create(&*store, &task).await;

    assert_eq!(get(&*store, &bob, task.id).await, None);
    assert!(list(&*store, &bob, None, 100).await.is_empty());
}

/// `task_by_id` (the audited admin read) finds a task whoever owns it, and nothing else.
pub async fn task_by_id_finds_any_users_task_for_the_admin_read(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let task = task(&alice, "Water the plants");
    create(&*store, &task).await;

    assert_eq!(
        store.task_by_id(task.id).await.expect("task_by_id"),
        Some(task.clone())
    );
    assert_eq!(
        store.task_by_id(TaskId::new()).await.expect("task_by_id"),
        None
    );
}

/// `list_tasks` returns the user's tasks only, in id order whatever the order they were
/// created in, `limit` at a time after the cursor `after`, also when the cursor's task has
/// since been deleted; `count_tasks` counts the user's tasks only.
pub async fn list_tasks_returns_only_the_users_tasks_in_id_order_and_paginates(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    // Ids are made in order, then created out of order, so insertion order is not id order.
    let alices: Vec<TaskRecord> = (0..5)
        .map(|i| task(&alice, &format!("Alice's task {i}")))
        .collect();
    let bobs: Vec<TaskRecord> = (0..3)
        .map(|i| task(&bob, &format!("Bob's task {i}")))
        .collect();
    for i in [2, 0, 4, 1, 3] {
        create(&*store, &alices[i]).await;
        if let Some(b) = bobs.get(i) {
            create(&*store, b).await;
        }
    }

    assert_eq!(list(&*store, &alice, None, 100).await, alices);
    assert_eq!(list(&*store, &bob, None, 100).await, bobs);
    assert_eq!(store.count_tasks(&alice).await.expect("count"), 5);
    assert_eq!(store.count_tasks(&bob).await.expect("count"), 3);
    assert_eq!(store.count_tasks(&user("carol")).await.expect("count"), 0);

    assert_eq!(list(&*store, &alice, None, 2).await, alices[0..2]);
    assert_eq!(
        list(&*store, &alice, Some(alices[1].id), 2).await,
        alices[2..4]
    );
    assert_eq!(
        list(&*store, &alice, Some(alices[3].id), 2).await,
        alices[4..]
    );
    assert!(list(&*store, &alice, Some(alices[4].id), 2)
        .await
        .is_empty());
    assert!(list(&*store, &alice, None, 0).await.is_empty());

    let deleted = &alices[2];
    assert!(store
        .delete_task(&alice, deleted.id, 1, deleted_event(deleted, 1))
        .await
        .expect("delete"));
    assert_eq!(
        list(&*store, &alice, Some(deleted.id), 10).await,
        alices[3..]
    );
    assert_eq!(store.count_tasks(&alice).await.expect("count"), 4);
}

/// An update at the stored version + 1 replaces body and modification instant, keeps the
/// creation instant, and returns true; a further update works the same.
pub async fn an_update_at_the_next_version_replaces_the_task_and_bumps_its_version(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;

    let v2 = edited(&v1, "Water the plants and the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update to v2"));
    assert_eq!(get(&*store, &alice, v1.id).await, Some(v2.clone()));

    let v3 = edited(&v2, "Water the herbs", 120);
    assert!(update(&*store, &v3).await.expect("update to v3"));
    let stored = get(&*store, &alice, v1.id).await.expect("the task exists");
    assert_eq!(stored, v3);
    assert_eq!(stored.version, 3);
    assert_eq!(stored.created_at, v1.created_at);
}

/// An update whose version is not the stored one + 1 (repeated, behind or ahead) is
/// [`Error::Conflict`], and leaves the task and the outbox as they were.
pub async fn an_update_at_a_stale_version_is_a_conflict_and_changes_nothing(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;
    let v2 = edited(&v1, "Water the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update to v2"));
    let before = outbox(&*store).await;

    for version in [1, 2, 4] {
        let stale = TaskRecord {
            version,
            ..edited(&v1, "A lost update", 90)
        };
        match update(&*store, &stale).await {
            Err(Error::Conflict) => {}
            other => panic!("an update at version {version} over version 2: {other:?}"),
        }
    }

    assert_eq!(get(&*store, &alice, v1.id).await, Some(v2));
    assert_eq!(
        outbox(&*store).await,
        before,
        "a conflict publishes nothing"
    );
}

/// Updating a task that does not exist, or that belongs to someone else, returns false and
/// changes and publishes nothing.
pub async fn an_update_of_a_missing_or_another_users_task_returns_false_and_writes_nothing(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let plants = task(&alice, "Water the plants");
    create(&*store, &plants).await;
    let before = outbox(&*store).await;

    let missing = edited(&task(&alice, "Never created"), "Still not", 60);
    assert!(!update(&*store, &missing)
        .await
        .expect("update a missing task"));
    let hijack = TaskRecord {
        user_id: bob.clone(),
        ..edited(&plants, "Bob was here", 60)
    };
    assert!(!update(&*store, &hijack)
        .await
        .expect("update another user's task"));

    assert_eq!(get(&*store, &alice, plants.id).await, Some(plants));
    assert_eq!(get(&*store, &alice, missing.id).await, None);
    assert_eq!(outbox(&*store).await, before);
}

/// A delete at the stored version removes the task, publishes `task_deleted`, and returns
/// true; deleting it again returns false.
pub async fn a_delete_at_the_current_version_removes_the_task(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;
    let v2 = edited(&v1, "Water the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update"));

    let event = deleted_event(&v2, 2);
    assert!(store
        .delete_task(&alice, v1.id, 2, event.clone())
        .await
        .expect("delete"));
    assert_eq!(get(&*store, &alice, v1.id).await, None);
    assert!(list(&*store, &alice, None, 100).await.is_empty());
    let rows = outbox(&*store).await;
    assert_eq!(rows.last().map(as_event), Some(event.clone()));

    assert!(!store
        .delete_task(&alice, v1.id, 2, event)
        .await
        .expect("delete again"));
    assert_eq!(outbox(&*store).await, rows);
}

/// A delete at any other version is [`Error::Conflict`] and leaves the task and the outbox
/// alone.
pub async fn a_delete_at_a_wrong_version_is_a_conflict_and_keeps_the_task(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;
    let v2 = edited(&v1, "Water the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update"));
    let before = outbox(&*store).await;

    for version in [1, 3] {
        match store
            .delete_task(&alice, v1.id, version, deleted_event(&v2, version))
            .await
        {
            Err(Error::Conflict) => {}
            other => panic!("a delete at version {version} of version 2: {other:?}"),
        }
    }
    assert_eq!(get(&*store, &alice, v1.id).await, Some(v2));
    assert_eq!(
        outbox(&*store).await,
        before,
        "a conflict publishes nothing"
    );
}

/// Deleting a task that does not exist, or that belongs to someone else, returns false and
/// changes and publishes nothing.
pub async fn a_delete_of_a_missing_or_another_users_task_returns_false(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let task = task(&alice, "Water the plants");
    create(&*store, &task).await;
    let before = outbox(&*store).await;

    assert!(!store
        .delete_task(&bob, task.id, 1, deleted_event(&task, 1))
        .await
        .expect("delete another user's task"));
    let missing = TaskId::new();
    assert!(!store
        .delete_task(&alice, missing, 1, deleted_event(&task, 1))
        .await
        .expect("delete a missing task"));

    assert_eq!(get(&*store, &alice, task.id).await, Some(task));
    assert_eq!(outbox(&*store).await, before);
}

// ----------------------------------------------------------------------------------------
// Outbox
// ----------------------------------------------------------------------------------------

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

// ----------------------------------------------------------------------------------------
// Schedule
// ----------------------------------------------------------------------------------------

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

// ----------------------------------------------------------------------------------------
// Deliveries and the inbox
// ----------------------------------------------------------------------------------------

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

// ----------------------------------------------------------------------------------------
// Pending deliveries: claims, attempts and dead letters
// ----------------------------------------------------------------------------------------

/// A delivery recorded pending (no event, a message for the worker) publishes nothing and
/// writes no inbox item. It is claimable on its own channel once its first attempt is due
/// (`status.at`), not before, with no attempts yet, its message intact, its retry window
/// opened at `status.at`, and its key (occurrence, channel, target).
pub async fn a_pending_delivery_publishes_nothing_and_is_claimed_on_its_channel_once_due(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    // Due a little after the occurrence, so its retry window is not mistaken for `due_at`.
    let write = pending(occurrence, &alice, Channel::Push, "sub_phone", 105);
    assert_eq!(record(&*store, std::slice::from_ref(&write)).await, [0]);

    assert!(
        outbox(&*store).await.is_empty(),
        "pending publishes nothing"
    );
    assert!(inbox(&*store, &alice, None, 100).await.is_empty());
    assert_eq!(unread(&*store, &alice).await, 0);
    assert_eq!(
        pending_of(&*store, &alice, occurrence.task_id).await,
        [(occurrence, write.status.clone())]
    );

    assert!(claim(&*store, Channel::Push, at(104), at(164), 10)
        .await
        .is_empty());
    for other in Channel::ALL.into_iter().filter(|c| *c != Channel::Push) {
        assert!(
            claim(&*store, other, at(1_000), at(1_060), 10)
                .await
                .is_empty(),
            "a push delivery is not claimed for {other:?}"
        );
    }
    let claims = claim(&*store, Channel::Push, at(105), at(165), 10).await;
    assert_eq!(claims, [claimed(&write, 0, at(105))]);
    assert_eq!(
        claims[0].key,
        DeliveryKey {
            occurrence,
            channel: Channel::Push,
            target: "sub_phone".to_owned(),
        }
    );
    assert!(
        outbox(&*store).await.is_empty(),
        "claiming publishes nothing"
    );
}

/// A claim leases the delivery until `lease_until`: claims before then return nothing; once
/// the lease has ended (its worker died mid-attempt) it is claimed again, still with no
/// attempts counted.
pub async fn a_claimed_delivery_is_leased_until_its_lease_ends_then_claimed_again(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let write = pending(
        occurrence_of(TaskId::new(), 100),
        &alice,
        Channel::Email,
        "",
        100,
    );
    record(&*store, std::slice::from_ref(&write)).await;

    let first = claim(&*store, Channel::Email, at(100), at(160), 10).await;
    assert_eq!(first, [claimed(&write, 0, at(100))]);
    for now in [100, 130, 159] {
        assert!(
            claim(&*store, Channel::Email, at(now), at(now + 60), 10)
                .await
                .is_empty(),
            "claimed again at {now} while leased until 160"
        );
    }
    let again = claim(&*store, Channel::Email, at(160), at(220), 10).await;
    assert_eq!(again, first, "claimable again once the lease has ended");
    assert!(claim(&*store, Channel::Email, at(200), at(260), 10)
        .await
        .is_empty());
    assert!(outbox(&*store).await.is_empty());
}

/// `claim_deliveries` returns at most `max` deliveries, earliest next attempt first, and
/// leaves those not yet due alone.
pub async fn claim_deliveries_returns_at_most_max_earliest_next_attempt_first(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let task_id = TaskId::new();
    let writes: Vec<DeliveryWrite> = [30, 10, 20, 40]
        .into_iter()
        .map(|secs| pending(occurrence_of(task_id, secs), &alice, Channel::Sms, "", secs))
        .collect();
    assert_eq!(record(&*store, &writes).await, [0, 1, 2, 3]);

    assert_eq!(
        claim(&*store, Channel::Sms, at(35), at(95), 2).await,
        [
            claimed(&writes[1], 0, at(10)),
            claimed(&writes[2], 0, at(20))
        ]
    );
    assert_eq!(
        claim(&*store, Channel::Sms, at(35), at(95), 2).await,
        [claimed(&writes[0], 0, at(30))]
    );
    assert!(claim(&*store, Channel::Sms, at(35), at(95), 2)
        .await
        .is_empty());
    assert!(claim(&*store, Channel::Sms, at(40), at(100), 0)
        .await
        .is_empty());
    assert_eq!(
        claim(&*store, Channel::Sms, at(40), at(100), 2).await,
        [claimed(&writes[3], 0, at(40))]
    );
}

/// `next_delivery_at` is the earliest instant a pending delivery of the channel may be
/// attempted: its next attempt, or while it is leased the lease's end; `None` when the
/// channel has nothing pending.
pub async fn next_delivery_at_is_the_earliest_next_attempt_or_lease_end_of_the_channel(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let task_id = TaskId::new();
    assert_eq!(next_delivery(&*store, Channel::Email).await, None);

    let late = pending(occurrence_of(task_id, 300), &alice, Channel::Email, "", 300);
    let early = pending(occurrence_of(task_id, 200), &alice, Channel::Email, "", 200);
    let sms = pending(occurrence_of(task_id, 100), &alice, Channel::Sms, "", 100);
    record(&*store, &[late.clone(), early.clone(), sms]).await;
    // A final delivery is never attempted, however early.
    record(
        &*store,
        &[delivery(
            occurrence_of(task_id, 50),
            &alice,
            Channel::Email,
            None,
        )],
    )
    .await;
    assert_eq!(next_delivery(&*store, Channel::Email).await, Some(at(200)));
    assert_eq!(next_delivery(&*store, Channel::Sms).await, Some(at(100)));
    assert_eq!(next_delivery(&*store, Channel::Push).await, None);

    assert_eq!(
        claim(&*store, Channel::Email, at(200), at(260), 10).await,
        [claimed(&early, 0, at(200))]
    );
    assert_eq!(next_delivery(&*store, Channel::Email).await, Some(at(260)));

    attempt(&*store, &key(&early), at(260), at(201), sent(None), None).await;
    assert_eq!(next_delivery(&*store, Channel::Email).await, Some(at(300)));
    assert_eq!(
        claim(&*store, Channel::Email, at(300), at(360), 10).await,
        [claimed(&late, 0, at(300))]
    );
    attempt(
        &*store,
        &key(&late),
        at(360),
        at(301),
        retry(500, "timed out"),
        None,
    )
    .await;
    assert_eq!(next_delivery(&*store, Channel::Email).await, Some(at(500)));
    assert_eq!(
        claim(&*store, Channel::Email, at(500), at(560), 10)
            .await
            .len(),
        1
    );
    attempt(&*store, &key(&late), at(560), at(501), sent(None), None).await;
    assert_eq!(next_delivery(&*store, Channel::Email).await, None);
    assert_eq!(next_delivery(&*store, Channel::Sms).await, Some(at(100)));
}

/// A `Sent` attempt is final: it publishes its event, the delivery is claimed no more and is
/// no longer pending; a replayed `execute_task` does not make it pending again.
pub async fn a_sent_attempt_is_final_published_and_no_longer_pending(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let write = pending(occurrence, &alice, Channel::Email, "", 100);
    record(&*store, std::slice::from_ref(&write)).await;
    assert_eq!(
        claim(&*store, Channel::Email, at(100), at(160), 10)
            .await
            .len(),
        1
    );

    let event = final_event(
        &write,
        DeliveryOutcome::Sent,
        1,
        at(102),
        None,
        Some("ses-0001"),
    );
    attempt(
        &*store,
        &key(&write),
        at(160),
        at(102),
        sent(Some("ses-0001")),
        Some(event.clone()),
    )
    .await;

    assert_eq!(outbox_events(&*store).await, [event]);
    assert!(claim(&*store, Channel::Email, at(10_000), at(10_060), 10)
        .await
        .is_empty());
    assert!(pending_of(&*store, &alice, occurrence.task_id)
        .await
        .is_empty());
    assert_eq!(next_delivery(&*store, Channel::Email).await, None);
    assert!(record(&*store, std::slice::from_ref(&write))
        .await
        .is_empty());
    assert!(claim(&*store, Channel::Email, at(10_000), at(10_060), 10)
        .await
        .is_empty());
}

/// A `Retry` attempt keeps the delivery pending with one more attempt and the error as its
/// detail, publishes nothing, and makes it claimable at `next_attempt_at` and not before,
/// with its message and its retry window's start unchanged.
pub async fn a_retry_attempt_stays_pending_until_its_next_attempt_with_its_error(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let write = pending(occurrence, &alice, Channel::Webhook, "", 100);
    record(&*store, std::slice::from_ref(&write)).await;
    claim(&*store, Channel::Webhook, at(100), at(160), 10).await;

    attempt(
        &*store,
        &key(&write),
        at(160),
        at(101),
        retry(200, "HTTP 503 from the endpoint"),
        None,
    )
    .await;
    let retrying = DeliveryStatus {
        attempts: 1,
        at: at(101),
        detail: Some("HTTP 503 from the endpoint".to_owned()),
        ..write.status.clone()
    };
    assert_eq!(
        pending_of(&*store, &alice, occurrence.task_id).await,
        [(occurrence, retrying)]
    );
    assert!(
        outbox(&*store).await.is_empty(),
        "a retry publishes nothing"
    );
    assert_eq!(
        next_delivery(&*store, Channel::Webhook).await,
        Some(at(200))
    );
    // Past the first lease's end, but not yet due again.
    assert!(claim(&*store, Channel::Webhook, at(199), at(259), 10)
        .await
        .is_empty());
    assert_eq!(
        claim(&*store, Channel::Webhook, at(200), at(260), 10).await,
        [claimed(&write, 1, at(100))]
    );

    attempt(
        &*store,
        &key(&write),
        at(260),
        at(201),
        retry(400, "connection refused"),
        None,
    )
    .await;
    let (_, status) = pending_of(&*store, &alice, occurrence.task_id)
        .await
        .pop()
        .expect("still pending");
    assert_eq!(
        (status.attempts, status.detail.as_deref()),
        (2, Some("connection refused"))
    );
    assert_eq!(
        claim(&*store, Channel::Webhook, at(400), at(460), 10).await,
        [claimed(&write, 2, at(100))]
    );
}

/// A `DeadLettered` attempt is final: it publishes its event, the delivery is claimed no
/// more and is no longer pending.
pub async fn a_dead_lettered_attempt_is_final_and_published(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let write = pending(occurrence, &alice, Channel::Sms, "", 100);
    record(&*store, std::slice::from_ref(&write)).await;
    claim(&*store, Channel::Sms, at(100), at(160), 10).await;

    let event = final_event(
        &write,
        DeliveryOutcome::DeadLettered,
        1,
        at(101),
        Some("the number does not exist"),
        None,
    );
    attempt(
        &*store,
        &key(&write),
        at(160),
        at(101),
        dead_lettered("the number does not exist"),
        Some(event.clone()),
    )
    .await;

    assert_eq!(outbox_events(&*store).await, [event]);
    assert!(claim(&*store, Channel::Sms, at(10_000), at(10_060), 10)
        .await
        .is_empty());
    assert!(pending_of(&*store, &alice, occurrence.task_id)
        .await
        .is_empty());
    assert_eq!(next_delivery(&*store, Channel::Sms).await, None);
}

/// A worker whose lease ran out, and whose delivery another worker claimed meanwhile, records
/// nothing: its late result neither clears the new claim's lease nor changes the delivery.
pub async fn an_attempt_under_a_lease_that_ran_out_does_not_disturb_the_new_claim(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let write = pending(occurrence, &alice, Channel::Email, "", 100);
    record(&*store, std::slice::from_ref(&write)).await;
    assert_eq!(
        claim(&*store, Channel::Email, at(100), at(160), 10)
            .await
            .len(),
        1
    );
    assert_eq!(
        claim(&*store, Channel::Email, at(160), at(220), 10)
            .await
            .len(),
        1
    );
    // The first worker comes back late with a retry.
    attempt(
        &*store,
        &key(&write),
        at(160),
        at(170),
        retry(171, "timed out"),
        None,
    )
    .await;
    // The second claim still holds it: nobody else may claim it before its lease ends.
    assert!(claim(&*store, Channel::Email, at(200), at(260), 10)
        .await
        .is_empty());
    assert_eq!(next_delivery(&*store, Channel::Email).await, Some(at(220)));
    let event = final_event(&write, DeliveryOutcome::Sent, 2, at(180), None, Some("b"));
    attempt(
        &*store,
        &key(&write),
        at(220),
        at(180),
        sent(Some("b")),
        Some(event.clone()),
    )
    .await;
    assert_eq!(
        outbox(&*store)
            .await
            .iter()
            .map(as_event)
            .collect::<Vec<_>>(),
        [event]
    );
}

/// An attempt recorded for a delivery that is no longer pending (a worker whose lease ran
/// out reporting after another worker finished it), or that does not exist, changes nothing
/// and publishes nothing.
pub async fn an_attempt_on_a_delivery_no_longer_pending_changes_nothing_and_publishes_nothing(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let write = pending(occurrence, &alice, Channel::Email, "", 100);
    record(&*store, std::slice::from_ref(&write)).await;
    claim(&*store, Channel::Email, at(100), at(160), 10).await;
    let event = final_event(&write, DeliveryOutcome::Sent, 1, at(170), None, Some("b"));
    // The first worker's lease ran out; a second claimed it and sent it.
    assert_eq!(
        claim(&*store, Channel::Email, at(160), at(220), 10)
            .await
            .len(),
        1
    );
    attempt(
        &*store,
        &key(&write),
        at(220),
        at(170),
        sent(Some("b")),
        Some(event.clone()),
    )
    .await;
    let events = outbox(&*store).await;
    assert_eq!(events.iter().map(as_event).collect::<Vec<_>>(), [event]);

    let late_sent = final_event(&write, DeliveryOutcome::Sent, 2, at(180), None, Some("a"));
    attempt(
        &*store,
        &key(&write),
        at(160),
        at(180),
        sent(Some("a")),
        Some(late_sent),
    )
    .await;
    attempt(
        &*store,
        &key(&write),
        at(160),
        at(181),
        retry(300, "timed out"),
        None,
    )
    .await;
    let late_dead = final_event(
        &write,
        DeliveryOutcome::DeadLettered,
        2,
        at(182),
        Some("gave up"),
        None,
    );
    attempt(
        &*store,
        &key(&write),
        at(160),
        at(182),
        dead_lettered("gave up"),
        Some(late_dead),
    )
    .await;

    assert_eq!(
        outbox(&*store).await,
        events,
        "late attempts publish nothing"
    );
    assert!(pending_of(&*store, &alice, occurrence.task_id)
        .await
        .is_empty());
    assert!(claim(&*store, Channel::Email, at(10_000), at(10_060), 10)
        .await
        .is_empty());
    assert!(
        !retry_dead_letter(&*store, &alice, &key(&write), at(400)).await,
        "a late dead-letter report does not overwrite the sent state"
    );

    let missing = DeliveryKey {
        target: "nobody".to_owned(),
        ..key(&write)
    };
    let ghost = final_event(&write, DeliveryOutcome::Sent, 1, at(190), None, None);
    attempt(&*store, &missing, at(220), at(190), sent(None), Some(ghost)).await;
    assert_eq!(
        outbox(&*store).await,
        events,
        "an unknown delivery publishes nothing"
    );
    assert!(claim(&*store, Channel::Email, at(10_000), at(10_060), 10)
        .await
        .is_empty());
}

/// The owner's `retry_dead_letter` puts a dead-lettered delivery back to pending, due at
/// `now` with a new retry window, its message and attempts so far kept; it publishes
/// nothing, and a second retry of the now pending delivery returns false.
pub async fn retry_dead_letter_by_the_owner_makes_the_delivery_due_again_now(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let write = pending(occurrence, &alice, Channel::Push, "sub_laptop", 100);
    record(&*store, std::slice::from_ref(&write)).await;
    claim(&*store, Channel::Push, at(100), at(160), 10).await;
    attempt(
        &*store,
        &key(&write),
        at(160),
        at(101),
        retry(150, "HTTP 500"),
        None,
    )
    .await;
    claim(&*store, Channel::Push, at(150), at(210), 10).await;
    let event = final_event(
        &write,
        DeliveryOutcome::DeadLettered,
        2,
        at(151),
        Some("HTTP 500"),
        None,
    );
    attempt(
        &*store,
        &key(&write),
        at(210),
        at(151),
        dead_lettered("HTTP 500"),
        Some(event.clone()),
    )
    .await;
    assert_eq!(next_delivery(&*store, Channel::Push).await, None);

    assert!(retry_dead_letter(&*store, &alice, &key(&write), at(500)).await);
    assert_eq!(next_delivery(&*store, Channel::Push).await, Some(at(500)));
    let (occ, status) = pending_of(&*store, &alice, occurrence.task_id)
        .await
        .pop()
        .expect("pending again");
    assert_eq!(
        (occ, status.outcome, status.channel, status.target.as_str()),
        (
            occurrence,
            DeliveryOutcome::Pending,
            Channel::Push,
            "sub_laptop"
        )
    );
    assert!(claim(&*store, Channel::Push, at(499), at(559), 10)
        .await
        .is_empty());
    assert_eq!(
        claim(&*store, Channel::Push, at(500), at(560), 10).await,
        [claimed(&write, 2, at(500))]
    );
    assert!(
        !retry_dead_letter(&*store, &alice, &key(&write), at(600)).await,
        "a pending delivery is not dead-lettered"
    );
    assert_eq!(
        outbox_events(&*store).await,
        [event],
        "a retry publishes nothing"
    );
}

/// `retry_dead_letter` returns false and changes nothing for another user's dead letter, a
/// sent delivery, a pending one, or one that does not exist.
pub async fn retry_dead_letter_of_another_users_or_a_sent_delivery_returns_false(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let occurrence = occurrence_of(TaskId::new(), 100);
    let dead = pending(occurrence, &alice, Channel::Email, "", 100);
    let done = pending(occurrence, &alice, Channel::Sms, "", 100);
    let waiting = pending(occurrence, &alice, Channel::Webhook, "", 100);
    record(&*store, &[dead.clone(), done.clone(), waiting.clone()]).await;
    claim(&*store, Channel::Email, at(100), at(160), 10).await;
    claim(&*store, Channel::Sms, at(100), at(160), 10).await;
    attempt(
        &*store,
        &key(&dead),
        at(160),
        at(101),
        dead_lettered("bounced"),
        None,
    )
    .await;
    attempt(&*store, &key(&done), at(160), at(101), sent(None), None).await;

    assert!(!retry_dead_letter(&*store, &bob, &key(&dead), at(200)).await);
    assert!(!retry_dead_letter(&*store, &alice, &key(&done), at(200)).await);
    assert!(!retry_dead_letter(&*store, &alice, &key(&waiting), at(200)).await);
    let missing = DeliveryKey {
        channel: Channel::Push,
        ..key(&dead)
    };
    assert!(!retry_dead_letter(&*store, &alice, &missing, at(200)).await);

    for channel in [Channel::Email, Channel::Sms] {
        assert!(claim(&*store, channel, at(10_000), at(10_060), 10)
            .await
            .is_empty());
        assert_eq!(next_delivery(&*store, channel).await, None);
    }
    assert_eq!(
        pending_of(&*store, &alice, occurrence.task_id).await,
        [(occurrence, waiting.status.clone())]
    );
    // Still dead-lettered: its owner can retry it.
    assert!(retry_dead_letter(&*store, &alice, &key(&dead), at(200)).await);
    assert!(outbox(&*store).await.is_empty());
}

/// Deliveries to different targets of one (occurrence, channel) (one push delivery per
/// subscription) are separate: each is recorded once, claimed and attempted on its own.
pub async fn each_target_of_a_channel_is_a_separate_delivery_recorded_once(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let to = |target| pending(occurrence, &alice, Channel::Push, target, 100);
    let (phone, laptop, tablet) = (to("sub_phone"), to("sub_laptop"), to("sub_tablet"));

    assert_eq!(
        record(&*store, &[phone.clone(), laptop.clone()]).await,
        [0, 1]
    );
    assert_eq!(
        record(
            &*store,
            &[
                laptop.clone(),
                tablet.clone(),
                tablet.clone(),
                phone.clone()
            ]
        )
        .await,
        [1],
        "a known (occurrence, channel, target) is ignored, also twice in one batch"
    );

    let mut claims = claim(&*store, Channel::Push, at(100), at(160), 10).await;
    claims.sort_by(|a, b| a.key.target.cmp(&b.key.target));
    assert_eq!(
        claims,
        [
            claimed(&laptop, 0, at(100)),
            claimed(&phone, 0, at(100)),
            claimed(&tablet, 0, at(100))
        ]
    );

    attempt(
        &*store,
        &key(&phone),
        at(160),
        at(101),
        sent(Some("fcm-1")),
        None,
    )
    .await;
    attempt(
        &*store,
        &key(&laptop),
        at(160),
        at(101),
        retry(300, "HTTP 429"),
        None,
    )
    .await;
    assert_eq!(
        claim(&*store, Channel::Push, at(160), at(220), 10).await,
        [claimed(&tablet, 0, at(100))],
        "one target's attempts leave the others alone"
    );
    let targets: Vec<(String, u32)> = pending_of(&*store, &alice, occurrence.task_id)
        .await
        .into_iter()
        .map(|(_, s)| (s.target, s.attempts))
        .collect();
    assert_eq!(
        targets,
        [("sub_laptop".to_owned(), 1), ("sub_tablet".to_owned(), 0)]
    );

    // A replayed `execute_task` revives no target, whatever its state: sent, waiting for its
    // next attempt (at 300), or leased (until 220).
    assert!(
        record(&*store, &[phone.clone(), laptop.clone(), tablet.clone()])
            .await
            .is_empty()
    );
    assert!(claim(&*store, Channel::Push, at(219), at(279), 10)
        .await
        .is_empty());
    assert_eq!(
        claim(&*store, Channel::Push, at(300), at(360), 10)
            .await
            .len(),
        2,
        "the retried and the leased target, and not the sent one"
    );
}

/// `pending_deliveries(user, task)` lists the not-yet-final deliveries of that user's task
/// only: not another task's, not another user's, not final ones.
pub async fn pending_deliveries_are_per_user_and_per_task(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let (plants, mum) = (TaskId::new(), TaskId::new());
    let monday = occurrence_of(plants, 100);
    let thursday = occurrence_of(plants, 400);
    let writes = [
        pending(thursday, &alice, Channel::Email, "", 400),
        pending(monday, &alice, Channel::Push, "sub_phone", 100),
        pending(monday, &alice, Channel::Email, "", 100),
        pending(occurrence_of(mum, 100), &alice, Channel::Email, "", 100),
        pending(
            occurrence_of(TaskId::new(), 100),
            &bob,
            Channel::Email,
            "",
            100,
        ),
        delivery(monday, &alice, Channel::Sms, None),
    ];
    assert_eq!(record(&*store, &writes).await.len(), writes.len());

    assert_eq!(
        pending_of(&*store, &alice, plants).await,
        [
            (monday, writes[2].status.clone()),
            (monday, writes[1].status.clone()),
            (thursday, writes[0].status.clone()),
        ]
    );
    assert_eq!(
        pending_of(&*store, &alice, mum).await,
        [(writes[3].occurrence, writes[3].status.clone())]
    );
    assert!(pending_of(&*store, &bob, plants).await.is_empty());
    assert!(pending_of(&*store, &alice, writes[4].occurrence.task_id)
        .await
        .is_empty());
    assert!(pending_of(&*store, &alice, TaskId::new()).await.is_empty());
}

/// Two store instances (two processes) claiming the same channel at once never claim the
/// same delivery twice under a lease, and between them claim every due delivery.
pub async fn two_stores_claiming_at_once_never_claim_the_same_delivery_twice(f: &dyn StoreFactory) {
    const DELIVERIES: usize = 60;
    let stores = [f.open().await, f.open().await];
    let alice = user("alice");
    let task_id = TaskId::new();
    let writes: Vec<DeliveryWrite> = (0..DELIVERIES as i64)
        .map(|i| pending(occurrence_of(task_id, i), &alice, Channel::Email, "", i))
        .collect();
    assert_eq!(record(&*stores[0], &writes).await.len(), DELIVERIES);

    let now = at(DELIVERIES as i64);
    let start = Arc::new(tokio::sync::Barrier::new(stores.len()));
    let racers: Vec<_> = stores
        .iter()
        .map(|store| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let mut keys = Vec::new();
                loop {
                    let claims = store
                        .claim_deliveries(Channel::Email, now, at(10_000), 4)
                        .await
                        .expect("claim_deliveries");
                    if claims.is_empty() {
                        break keys;
                    }
                    keys.extend(claims.into_iter().map(|c| c.key));
                }
            })
        })
        .collect();
    let mut counts: HashMap<DeliveryKey, usize> = HashMap::new();
    for racer in racers {
        let keys = tokio::time::timeout(GUARD, racer)
            .await
            .expect("a claim loop finishes")
            .expect("a claim loop");
        for key in keys {
            *counts.entry(key).or_default() += 1;
        }
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "deliveries claimed twice: {twice:?}");
    assert_eq!(counts.len(), DELIVERIES, "every due delivery was claimed");
}

// ----------------------------------------------------------------------------------------
// History
// ----------------------------------------------------------------------------------------

/// Recording a fired occurrence again (a redelivered `execute_task`) keeps the first record.
pub async fn record_fired_ignores_replays(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let original = fired(occurrence, &alice, 1, 101);
    store
        .record_fired(std::slice::from_ref(&original))
        .await
        .expect("record_fired");

    let replay = FiredOccurrence {
        fired_at: at(500),
        late: true,
        coalesced: 3,
        ..original.clone()
    };
    store
        .record_fired(&[replay.clone(), replay])
        .await
        .expect("record_fired again");

    assert_eq!(
        history(&*store, &alice, occurrence.task_id, None, 100).await,
        [entry(&original, vec![])]
    );
}

/// Delivery states are upserted per (occurrence, channel); a state with fewer attempts than
/// the stored one (an older event) does not overwrite it.
pub async fn record_delivery_states_keeps_the_state_with_the_most_attempts(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let fired = fired(occurrence, &alice, 1, 101);
    store
        .record_fired(std::slice::from_ref(&fired))
        .await
        .expect("record_fired");

    let dead = DeliveryState {
        occurrence,
        status: DeliveryStatus {
            channel: Channel::Email,
            outcome: DeliveryOutcome::DeadLettered,
            attempts: 3,
            at: at(160),
            detail: Some("the provider refused the address".to_owned()),
            target: String::new(),
            provider_id: None,
        },
    };
    let in_app = delivery_state(occurrence, Channel::InApp, 1, 102);
    store
        .record_delivery_states(&[dead.clone(), in_app.clone()])
        .await
        .expect("record_delivery_states");
    let older = delivery_state(occurrence, Channel::Email, 1, 120);
    store
        .record_delivery_states(&[older])
        .await
        .expect("record an older state");
    assert_eq!(
        history(&*store, &alice, occurrence.task_id, None, 10).await,
        [entry(&fired, vec![dead.status, in_app.status.clone()])]
    );

    let later = delivery_state(occurrence, Channel::Email, 4, 200);
    store
        .record_delivery_states(std::slice::from_ref(&later))
        .await
        .expect("record a later state");
    assert_eq!(
        history(&*store, &alice, occurrence.task_id, None, 10).await,
        [entry(&fired, vec![later.status, in_app.status])]
    );
}

/// `history` lists one task's fired occurrences for its owner only, newest first, due
/// strictly before `before`, at most `limit`, each with its delivery states.
pub async fn history_is_per_user_and_task_newest_first_with_before_and_limit(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let task_id = TaskId::new();
    let other_task = TaskId::new();
    let firings: Vec<FiredOccurrence> = [100, 200, 300, 400]
        .into_iter()
        .enumerate()
        .map(|(i, due)| fired(occurrence_of(task_id, due), &alice, i as u32 + 1, due + 1))
        .collect();
    let mut shuffled = firings.clone();
    shuffled.swap(0, 2);
    shuffled.push(fired(occurrence_of(other_task, 250), &alice, 1, 251));
    store.record_fired(&shuffled).await.expect("record_fired");
    let states = [
        delivery_state(firings[2].occurrence, Channel::Email, 1, 302),
        delivery_state(firings[2].occurrence, Channel::InApp, 1, 301),
        delivery_state(firings[3].occurrence, Channel::Push, 2, 405),
    ];
    store
        .record_delivery_states(&states)
        .await
        .expect("record_delivery_states");

    let expected = vec![
        entry(&firings[3], vec![states[2].status.clone()]),
        entry(
            &firings[2],
            vec![states[0].status.clone(), states[1].status.clone()],
        ),
        entry(&firings[1], vec![]),
        entry(&firings[0], vec![]),
    ];
    assert_eq!(history(&*store, &alice, task_id, None, 100).await, expected);
    assert_eq!(
        history(&*store, &alice, task_id, None, 2).await,
        expected[..2]
    );
    assert_eq!(
        history(&*store, &alice, task_id, Some(at(300)), 2).await,
        expected[2..]
    );
    assert_eq!(
        history(&*store, &alice, task_id, Some(at(301)), 1).await,
        expected[1..2]
    );
    assert!(history(&*store, &alice, task_id, Some(at(100)), 10)
        .await
        .is_empty());
    assert!(history(&*store, &alice, task_id, None, 0).await.is_empty());
    assert!(history(&*store, &bob, task_id, None, 100).await.is_empty());
    assert_eq!(
        history(&*store, &alice, other_task, None, 100).await.len(),
        1
    );
}

/// `notification_sent` and `execute_task` travel on different topics, so a delivery state
/// can arrive before its firing: it is kept and shows once the firing is recorded.
pub async fn delivery_states_recorded_before_their_firing_show_once_it_is_recorded(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let state = delivery_state(occurrence, Channel::Email, 1, 105);
    store
        .record_delivery_states(std::slice::from_ref(&state))
        .await
        .expect("record_delivery_states");
    assert!(history(&*store, &alice, occurrence.task_id, None, 10)
        .await
        .is_empty());

    let fired = fired(occurrence, &alice, 1, 101);
    store
        .record_fired(std::slice::from_ref(&fired))
        .await
        .expect("record_fired");
    assert_eq!(
        history(&*store, &alice, occurrence.task_id, None, 10).await,
        [entry(&fired, vec![state.status])]
    );
}

/// History keeps a delivery state's target and provider id, and the states of two targets of
/// one channel are two separate rows, each keeping its own latest state.
pub async fn history_keeps_each_targets_delivery_state_with_its_provider_id(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let occurrence = occurrence_of(TaskId::new(), 100);
    let fired = fired(occurrence, &alice, 1, 101);
    store
        .record_fired(std::slice::from_ref(&fired))
        .await
        .expect("record_fired");

    let to =
        |target: &str, outcome, attempts, secs, detail: Option<&str>, provider: Option<&str>| {
            DeliveryState {
                occurrence,
                status: DeliveryStatus {
                    channel: Channel::Push,
                    target: target.to_owned(),
                    outcome,
                    attempts,
                    at: at(secs),
                    detail: detail.map(str::to_owned),
                    provider_id: provider.map(str::to_owned),
                },
            }
        };
    let phone = to(
        "sub_phone",
        DeliveryOutcome::Sent,
        1,
        102,
        None,
        Some("fcm-1"),
    );
    let laptop = to(
        "sub_laptop",
        DeliveryOutcome::DeadLettered,
        3,
        160,
        Some("HTTP 410: the subscription is gone"),
        None,
    );
    let email = DeliveryState {
        status: DeliveryStatus {
            provider_id: Some("ses-0001".to_owned()),
            ..delivery_state(occurrence, Channel::Email, 2, 130).status
        },
        ..delivery_state(occurrence, Channel::Email, 2, 130)
    };
    store
        .record_delivery_states(&[phone.clone(), laptop.clone(), email.clone()])
        .await
        .expect("record_delivery_states");
    assert_eq!(
        history(&*store, &alice, occurrence.task_id, None, 10).await,
        [entry(
            &fired,
            vec![
                phone.status.clone(),
                laptop.status.clone(),
                email.status.clone()
            ]
        )]
    );

    // A later state of one target replaces that target's row only.
    let phone_again = to(
        "sub_phone",
        DeliveryOutcome::Sent,
        2,
        170,
        None,
        Some("fcm-2"),
    );
    store
        .record_delivery_states(std::slice::from_ref(&phone_again))
        .await
        .expect("record a later state");
    assert_eq!(
        history(&*store, &alice, occurrence.task_id, None, 10).await,
        [entry(
            &fired,
            vec![phone_again.status, laptop.status, email.status]
        )]
    );
}

// ----------------------------------------------------------------------------------------
// Recipients
// ----------------------------------------------------------------------------------------

/// Push subscriptions are listed per user. Putting a known endpoint again (the browser
/// renewed its keys) keeps the stored id and creation instant, refreshes the keys, and
/// returns the stored record; the endpoint moves to whoever put it last.
pub async fn push_subscriptions_are_per_user_and_a_known_endpoint_keeps_its_id(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    assert!(subscriptions(&*store, &alice).await.is_empty());

    let phone = subscription(&alice, "sub_alice_phone", "https://push.example/phone", 10);
    let laptop = subscription(
        &alice,
        "sub_alice_laptop",
        "https://push.example/laptop",
        20,
    );
    let bobs = subscription(&bob, "sub_bob_phone", "https://push.example/bob", 30);
    for sub in [&phone, &laptop, &bobs] {
        assert_eq!(&put_subscription(&*store, sub).await, sub);
    }
    assert_eq!(
        subscriptions(&*store, &alice).await,
        [laptop.clone(), phone.clone()]
    );
    assert_eq!(
        subscriptions(&*store, &bob).await,
        std::slice::from_ref(&bobs)
    );

    let renewed = PushSubscriptionRecord {
        id: "sub_alice_phone_2".to_owned(),
        p256dh: "BNewKeyOfThePhone".to_owned(),
        auth: "new-auth-secret".to_owned(),
        created_at: at(500),
        ..phone.clone()
    };
    let stored = PushSubscriptionRecord {
        id: phone.id.clone(),
        created_at: phone.created_at,
        ..renewed.clone()
    };
    assert_eq!(put_subscription(&*store, &renewed).await, stored);
    assert_eq!(
        subscriptions(&*store, &alice).await,
        [laptop.clone(), stored.clone()]
    );

    // Bob signs in on alice's laptop: the browser's one subscription is now his.
    let moved = PushSubscriptionRecord {
        user_id: bob.clone(),
        id: "sub_bob_laptop".to_owned(),
        created_at: at(600),
        ..laptop.clone()
    };
    let moved_stored = PushSubscriptionRecord {
        id: laptop.id.clone(),
        created_at: laptop.created_at,
        ..moved.clone()
    };
    assert_eq!(put_subscription(&*store, &moved).await, moved_stored);
    assert_eq!(subscriptions(&*store, &alice).await, [stored]);
    assert_eq!(subscriptions(&*store, &bob).await, [moved_stored, bobs]);
    assert!(outbox(&*store).await.is_empty());
}

/// Removing a push subscription for a user removes only that user's (false for another's or
/// a missing one); removing it for no user (the push service said it is gone) removes it
/// whoever owns it.
pub async fn removing_a_push_subscription_honours_its_owner_when_given(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let alices = subscription(&alice, "sub_alice_phone", "https://push.example/alice", 10);
    let bobs = subscription(&bob, "sub_bob_phone", "https://push.example/bob", 20);
    put_subscription(&*store, &alices).await;
    put_subscription(&*store, &bobs).await;

    assert!(!remove_subscription(&*store, Some(&bob), &alices.id).await);
    assert_eq!(
        subscriptions(&*store, &alice).await,
        std::slice::from_ref(&alices)
    );
    assert!(remove_subscription(&*store, Some(&alice), &alices.id).await);
    assert!(subscriptions(&*store, &alice).await.is_empty());
    assert!(!remove_subscription(&*store, Some(&alice), &alices.id).await);

    assert!(remove_subscription(&*store, None, &bobs.id).await);
    assert!(subscriptions(&*store, &bob).await.is_empty());
    assert!(!remove_subscription(&*store, None, &bobs.id).await);
    assert!(!remove_subscription(&*store, None, "sub_never_stored").await);
}

/// Each user has at most one webhook endpoint: put, read back as written, replaced by a new
/// put, removed (false when there was none), never visible to another user.
pub async fn a_users_webhook_is_put_replaced_and_removed_per_user(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    assert_eq!(webhook(&*store, &alice).await, None);

    let first = webhook_endpoint(&alice, "https://hooks.example/alice", 10);
    put_webhook(&*store, &first).await;
    assert_eq!(webhook(&*store, &alice).await, Some(first.clone()));
    assert_eq!(webhook(&*store, &bob).await, None);

    let replaced = WebhookEndpoint {
        url: "https://hooks.example/alice/v2".to_owned(),
        secret: "whsec_rotated".to_owned(),
        created_at: at(50),
        ..first
    };
    put_webhook(&*store, &replaced).await;
    assert_eq!(webhook(&*store, &alice).await, Some(replaced.clone()));
    let bobs = webhook_endpoint(&bob, "https://hooks.example/bob", 20);
    put_webhook(&*store, &bobs).await;

    assert!(store.remove_webhook(&alice).await.expect("remove_webhook"));
    assert_eq!(webhook(&*store, &alice).await, None);
    assert!(!store.remove_webhook(&alice).await.expect("remove_webhook"));
    assert_eq!(webhook(&*store, &bob).await, Some(bobs));
    assert!(outbox(&*store).await.is_empty());
}

// ----------------------------------------------------------------------------------------
// Sessions
// ----------------------------------------------------------------------------------------

/// A session is read back exactly as put, anonymous or signed in with its token and a pending
/// sign-in; putting it again replaces it; another id finds nothing.
pub async fn a_session_is_read_back_as_put_and_put_again_replaces_it(f: &dyn StoreFactory) {
    let store = f.open().await;
    let anonymous = session_record("anon", None, 100);
    store.put_session(&anonymous).await.expect("put");
    assert_eq!(live_session(&*store, "anon", 0).await, Some(anonymous));

    let mut signed_in = session_record("alice-session", Some("alice"), 200);
    signed_in.access_token = Some("eyJ.access.token".to_owned());
    signed_in.access_expires_at = Some(at(150));
    signed_in.pending = Some(pending_sign_in("state-1"));
    store.put_session(&signed_in).await.expect("put");
    assert_eq!(
        live_session(&*store, "alice-session", 0).await,
        Some(signed_in.clone())
    );

    let replaced = SessionRecord {
        csrf: "csrf-2".to_owned(),
        pending: None,
        ..signed_in
    };
    store.put_session(&replaced).await.expect("put again");
    assert_eq!(
        live_session(&*store, "alice-session", 0).await,
        Some(replaced)
    );
    assert_eq!(live_session(&*store, "nobody", 0).await, None);
    assert_eq!(store.count_sessions(at(0)).await.expect("count"), 2);
}

/// A session is live until its `expires_at`, exclusive: at and after it, it is absent, its
/// pending sign-in cannot be set nor taken, and it is not counted.
pub async fn an_expired_session_is_absent(f: &dyn StoreFactory) {
    let store = f.open().await;
    let mut session = session_record("s", Some("alice"), 100);
    session.pending = Some(pending_sign_in("state"));
    store.put_session(&session).await.expect("put");
    assert!(live_session(&*store, "s", 99).await.is_some());
    assert_eq!(live_session(&*store, "s", 100).await, None);
    assert_eq!(live_session(&*store, "s", 500).await, None);
    assert_eq!(store.count_sessions(at(100)).await.expect("count"), 0);
    assert!(!store
        .set_pending("s", &pending_sign_in("later"), at(100))
        .await
        .expect("set_pending"));
    assert_eq!(store.take_pending("s", at(100)).await.expect("take"), None);
    // Still there for a caller whose clock is behind (nothing was changed).
    assert_eq!(live_session(&*store, "s", 0).await, Some(session));
}

/// Signing in replaces the session: the old id is gone, the new one is there, in one step;
/// without an old id it only inserts.
pub async fn replace_session_removes_the_old_id_and_puts_the_new_one(f: &dyn StoreFactory) {
    let store = f.open().await;
    let anonymous = session_record("old", None, 100);
    store.put_session(&anonymous).await.expect("put");
    let other = session_record("someone-else", None, 100);
    store.put_session(&other).await.expect("put");

    let signed_in = session_record("new", Some("alice"), 500);
    store
        .replace_session(Some("old"), &signed_in)
        .await
        .expect("replace");
    assert_eq!(live_session(&*store, "old", 0).await, None);
    assert_eq!(live_session(&*store, "new", 0).await, Some(signed_in));
    assert_eq!(live_session(&*store, "someone-else", 0).await, Some(other));

    let fresh = session_record("fresh", Some("bob"), 500);
    store.replace_session(None, &fresh).await.expect("insert");
    assert_eq!(live_session(&*store, "fresh", 0).await, Some(fresh));
    // An old id that is already gone is no error.
    let again = session_record("again", Some("bob"), 500);
    store
        .replace_session(Some("old"), &again)
        .await
        .expect("replace a missing old id");
    assert_eq!(store.count_sessions(at(0)).await.expect("count"), 4);

    assert!(store.remove_session("fresh").await.expect("remove"));
    assert!(!store.remove_session("fresh").await.expect("remove again"));
    assert_eq!(live_session(&*store, "fresh", 0).await, None);
}

/// A pending sign-in is set on a live session only (nothing else of it changes) and taken
/// once: a second take, and a take of another session, find nothing.
pub async fn a_pending_sign_in_is_set_on_a_live_session_and_taken_once(f: &dyn StoreFactory) {
    let store = f.open().await;
    let session = session_record("s", None, 100);
    store.put_session(&session).await.expect("put");
    assert!(!store
        .set_pending("missing", &pending_sign_in("x"), at(0))
        .await
        .expect("set_pending"));
    assert_eq!(store.take_pending("s", at(0)).await.expect("take"), None);

    let pending = pending_sign_in("state-1");
    assert!(store
        .set_pending("s", &pending, at(0))
        .await
        .expect("set_pending"));
    assert_eq!(
        live_session(&*store, "s", 0).await,
        Some(SessionRecord {
            pending: Some(pending.clone()),
            ..session.clone()
        })
    );
    assert_eq!(
        store.take_pending("s", at(0)).await.expect("take"),
        Some(pending)
    );
    assert_eq!(store.take_pending("s", at(0)).await.expect("take"), None);
    assert_eq!(live_session(&*store, "s", 0).await, Some(session));
}

/// Two callers taking one pending sign-in at once, also from two store instances on the same
/// storage (two web instances racing on one callback): exactly one of them gets it.
pub async fn a_pending_sign_in_taken_concurrently_is_given_to_exactly_one_caller(
    f: &dyn StoreFactory,
) {
    let (one, two) = (f.open().await, f.open().await);
    for round in 0..20 {
        let id = format!("s{round}");
        let mut session = session_record(&id, None, 100);
        session.pending = Some(pending_sign_in(&format!("state-{round}")));
        one.put_session(&session).await.expect("put");
        let (a, b, c) = tokio::join!(
            one.take_pending(&id, at(0)),
            two.take_pending(&id, at(0)),
            two.take_pending(&id, at(0)),
        );
        let taken: Vec<_> = [a, b, c]
            .into_iter()
            .filter_map(|r| r.expect("take"))
            .collect();
        assert_eq!(taken, vec![pending_sign_in(&format!("state-{round}"))]);
    }
}

/// Purging removes exactly the sessions expired at `now`.
pub async fn purge_sessions_removes_only_the_expired_ones(f: &dyn StoreFactory) {
    let store = f.open().await;
    for (id, expires) in [("a", 10), ("b", 20), ("c", 30), ("d", 40)] {
        store
            .put_session(&session_record(id, None, expires))
            .await
            .expect("put");
    }
    assert_eq!(store.purge_sessions(at(20)).await.expect("purge"), 2);
    assert_eq!(store.purge_sessions(at(20)).await.expect("purge again"), 0);
    // Read with a clock far behind, so expiry does not hide what purge left.
    assert_eq!(live_session(&*store, "a", -1000).await, None);
    assert_eq!(live_session(&*store, "b", -1000).await, None);
    assert!(live_session(&*store, "c", 0).await.is_some());
    assert!(live_session(&*store, "d", 0).await.is_some());
    assert_eq!(store.count_sessions(at(0)).await.expect("count"), 2);
}

/// Sessions, with their tokens and pending sign-ins, survive a restart.
pub async fn sessions_survive_a_restart(f: &dyn StoreFactory) {
    let mut signed_in = session_record("alice-session", Some("alice"), 500);
    signed_in.access_token = Some("eyJ.access.token".to_owned());
    signed_in.access_expires_at = Some(at(400));
    let mut pending = session_record("pending", None, 100);
    pending.pending = Some(pending_sign_in("state"));
    {
        let store = f.open().await;
        store.put_session(&signed_in).await.expect("put");
        store.put_session(&pending).await.expect("put");
    }
    let store = f.open().await;
    assert_eq!(
        live_session(&*store, "alice-session", 0).await,
        Some(signed_in)
    );
    assert_eq!(live_session(&*store, "pending", 0).await, Some(pending));
}

// ----------------------------------------------------------------------------------------
// Durability
// ----------------------------------------------------------------------------------------

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
}

// ----------------------------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------------------------

/// 2030-01-01T00:00:00Z: the origin of every instant in the suite.
const ORIGIN: i64 = 1_893_456_000;

/// The instant `secs` seconds after [`ORIGIN`].
fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(ORIGIN + secs).expect("a valid instant")
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("a valid user id")
}

/// A realistic task body in the API shape, as the definition role stores it.
fn body(name: &str) -> serde_json::Value {
    TaskSpec::parse(&json!({
        "name": name,
        "description": "Fill the green can — the one by the door.",
        "startDate": "2030-01-07 09:00:00.00+0100",
        "timeZone": "Europe/Berlin",
        "repeats": { "frequency": 1, "period": "week", "on": "monday, thursday", "ends": 10 },
        "notify": { "email": "alice@example.com", "inApp": true },
        "missed": { "policy": "skip", "limitSeconds": 3600 },
    }))
    .expect("a valid task body")
    .to_json()
}

/// A new task at version 1.
fn task(owner: &UserId, name: &str) -> TaskRecord {
    TaskRecord {
        id: TaskId::new(),
        user_id: owner.clone(),
        version: 1,
        body: body(name),
        created_at: at(0),
        modified_at: at(0),
    }
}

/// `task` at its next version, renamed, modified `secs` after the origin.
fn edited(task: &TaskRecord, name: &str, secs: i64) -> TaskRecord {
    TaskRecord {
        version: task.version + 1,
        body: body(name),
        modified_at: at(secs),
        ..task.clone()
    }
}

fn task_changed(task: &TaskRecord) -> TaskChanged {
    TaskChanged {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version: task.version,
        task: task.body.clone(),
        at: task.modified_at,
    }
}

fn created_event(task: &TaskRecord) -> OutboxEvent {
    OutboxEvent::from(&Event::TaskCreated(task_changed(task)))
}

fn updated_event(task: &TaskRecord) -> OutboxEvent {
    OutboxEvent::from(&Event::TaskUpdated(task_changed(task)))
}

fn deleted_event(task: &TaskRecord, version: u64) -> OutboxEvent {
    OutboxEvent::from(&Event::TaskDeleted(TaskDeleted {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version,
        at: task.modified_at,
    }))
}

async fn create(store: &dyn Store, task: &TaskRecord) {
    store
        .create_task(task, created_event(task))
        .await
        .expect("create_task");
}

/// Creates `n` tasks for `owner`, in id order.
async fn create_many(store: &dyn Store, owner: &UserId, n: usize) -> Vec<TaskRecord> {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let task = task(owner, &format!("Task {i}"));
        create(store, &task).await;
        tasks.push(task);
    }
    tasks
}

async fn update(store: &dyn Store, task: &TaskRecord) -> crate::Result<bool> {
    store.update_task(task, updated_event(task)).await
}

async fn get(store: &dyn Store, owner: &UserId, id: TaskId) -> Option<TaskRecord> {
    store.get_task(owner, id).await.expect("get_task")
}

async fn list(
    store: &dyn Store,
    owner: &UserId,
    after: Option<TaskId>,
    limit: usize,
) -> Vec<TaskRecord> {
    store
        .list_tasks(owner, after, limit)
        .await
        .expect("list_tasks")
}

/// Every event in the outbox (the suite never writes more than this).
async fn outbox(store: &dyn Store) -> Vec<OutboxRow> {
    store.outbox_batch(10_000).await.expect("outbox_batch")
}

async fn ack(store: &dyn Store, seqs: &[i64]) {
    store.outbox_ack(seqs).await.expect("outbox_ack");
}

fn seqs(rows: &[OutboxRow]) -> Vec<i64> {
    rows.iter().map(|r| r.seq).collect()
}

/// Every event in the outbox, without seqs.
async fn outbox_events(store: &dyn Store) -> Vec<OutboxEvent> {
    outbox(store).await.iter().map(as_event).collect()
}

fn as_event(row: &OutboxRow) -> OutboxEvent {
    let topic = chime_core::event::Topic::from_name(&row.topic)
        .unwrap_or_else(|| panic!("an outbox row on an unknown topic `{}`", row.topic));
    OutboxEvent {
        topic: topic.name(),
        key: row.key.clone(),
        payload: row.payload.clone(),
    }
}

fn assert_seqs_increase(rows: &[OutboxRow]) {
    for pair in rows.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "outbox seqs increase: {} then {}",
            pair[0].seq,
            pair[1].seq
        );
    }
}

/// Runs `write` with a waiter already registered on `signal`, then waits (under [`GUARD`])
/// for the signal: a relay that started waiting before a commit must wake after it.
async fn signalled<T>(signal: &Notify, what: &str, write: impl Future<Output = T>) -> T {
    let notified = signal.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let value = write.await;
    tokio::time::timeout(GUARD, notified)
        .await
        .unwrap_or_else(|_| panic!("the outbox signal is notified after {what}"));
    value
}

fn set(task: &TaskRecord, next: Option<(Timestamp, u32)>) -> ScheduleChange {
    ScheduleChange::Set {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version: task.version,
        body: task.body.clone(),
        next,
    }
}

fn scheduled_task(task: &TaskRecord, due_at: Timestamp, seq: u32) -> ScheduledTask {
    ScheduledTask {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version: task.version,
        body: task.body.clone(),
        due_at,
        seq,
    }
}

/// Applies `changes` to the schedule as the execution role would after the definition role
/// wrote them: each `Set`'s task is first put in the task store at that version (see
/// [`ensure_tasks`]), since `fire_due` fires only rows whose task is still at their version.
async fn apply(store: &dyn Store, changes: &[ScheduleChange]) {
    ensure_tasks(store, changes).await;
    apply_only(store, changes).await;
}

/// Applies `changes` to the schedule alone, for checks that keep the task store themselves
/// (a deleted task must stay deleted).
async fn apply_only(store: &dyn Store, changes: &[ScheduleChange]) {
    store
        .apply_schedule_changes(changes)
        .await
        .expect("apply_schedule_changes");
}

/// Puts the task of every `Set` in `changes` in the task store at the change's version
/// (created, or updated from the version before), as the definition role had done before the
/// schedule heard of it, and acknowledges exactly the outbox events this wrote, so that checks
/// of the schedule see only their own events. A task already at or past the version is left.
pub async fn ensure_tasks(store: &dyn Store, changes: &[ScheduleChange]) {
    let before: std::collections::HashSet<i64> = seqs(&outbox(store).await).into_iter().collect();
    for change in changes {
        let ScheduleChange::Set {
            task_id,
            user_id,
            version,
            body,
            ..
        } = change
        else {
            continue;
        };
        let record = TaskRecord {
            id: *task_id,
            user_id: user_id.clone(),
            version: *version,
            body: body.clone(),
            created_at: at(0),
            modified_at: at(0),
        };
        match store.task_by_id(*task_id).await.expect("task_by_id") {
            None => create(store, &record).await,
            Some(stored) if stored.version + 1 == *version => {
                assert!(update(store, &record).await.expect("update_task"));
            }
            Some(_) => {}
        }
    }
    let written: Vec<i64> = seqs(&outbox(store).await)
        .into_iter()
        .filter(|seq| !before.contains(seq))
        .collect();
    ack(store, &written).await;
}

async fn scheduled(store: &dyn Store, id: TaskId) -> Option<ScheduledTask> {
    store.scheduled(id).await.expect("scheduled")
}

async fn next_due(store: &dyn Store) -> Option<Timestamp> {
    store.next_due().await.expect("next_due")
}

async fn fire_due(store: &dyn Store, now: Timestamp, max: usize, fire: FireFn) -> usize {
    let fired = store.fire_due(now, max, fire).await.expect("fire_due");
    assert!(fired <= max, "fire_due({max}) fired {fired}");
    fired
}

/// The `execute_task` a fire of `row` publishes.
fn execute_task(row: &ScheduledTask) -> OutboxEvent {
    OutboxEvent::from(&Event::ExecuteTask(ExecuteTask {
        occurrence: OccurrenceKey {
            task_id: row.task_id,
            due_at: row.due_at,
        },
        user_id: row.user_id.clone(),
        seq: row.seq,
        fired_at: row.due_at,
        late: false,
        coalesced: 0,
        skipped: false,
        task_version: row.version,
        task: row.body.clone(),
        traceparent: None,
    }))
}

type Seen = Arc<Mutex<Vec<ScheduledTask>>>;

/// A [`FireFn`] that publishes each row's `execute_task`, moves it to `next(row)`, and
/// records the rows it was given in call order.
fn recording_fire(
    next: impl Fn(&ScheduledTask) -> Option<(Timestamp, u32)> + Send + Sync + 'static,
) -> (FireFn, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let fire: FireFn = Arc::new(move |row: &ScheduledTask| {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(row.clone());
        Fire {
            events: vec![execute_task(row)],
            next: next(row),
        }
    });
    (fire, seen)
}

/// The rows fired since the last call.
fn taken(seen: &Seen) -> Vec<ScheduledTask> {
    std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Schedules many due rows, then races one `fire_due` loop per store (`max` small, so the
/// loops interleave) until neither finds anything; every row must fire exactly once.
async fn race_fire_due(stores: [Arc<dyn Store>; 2]) {
    const ROWS: usize = 120;
    let alice = user("alice");
    let tasks: Vec<TaskRecord> = (0..ROWS)
        .map(|i| task(&alice, &format!("Task {i}")))
        .collect();
    let changes: Vec<ScheduleChange> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| set(t, Some((at(i as i64), 1))))
        .collect();
    apply(&*stores[0], &changes).await;

    let counts: Arc<Mutex<HashMap<TaskId, usize>>> = Arc::default();
    let fire: FireFn = {
        let counts = counts.clone();
        Arc::new(move |row: &ScheduledTask| {
            *counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(row.task_id)
                .or_default() += 1;
            Fire {
                events: vec![execute_task(row)],
                next: None,
            }
        })
    };
    let now = at(ROWS as i64);
    let start = Arc::new(tokio::sync::Barrier::new(stores.len()));
    let racers: Vec<_> = stores
        .iter()
        .map(|store| {
            let (store, fire, start) = (store.clone(), fire.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let mut total = 0;
                loop {
                    match store
                        .fire_due(now, 7, fire.clone())
                        .await
                        .expect("fire_due")
                    {
                        0 => break total,
                        n => total += n,
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for racer in racers {
        total += tokio::time::timeout(GUARD, racer)
            .await
            .expect("a fire_due loop finishes")
            .expect("a fire_due loop");
    }

    let counts = counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "rows fired more than once: {twice:?}");
    assert_eq!(counts.len(), ROWS, "every due row fired");
    assert_eq!(total, ROWS, "fire_due counts every row it fired, once");
    assert_eq!(next_due(&*stores[0]).await, None);
    assert_eq!(outbox(&*stores[1]).await.len(), ROWS);
}

fn occurrence_of(task_id: TaskId, due: i64) -> OccurrenceKey {
    OccurrenceKey {
        task_id,
        due_at: at(due),
    }
}

/// An unread inbox item for `occurrence`, created `secs` after the origin.
fn inbox_item(owner: &UserId, occurrence: OccurrenceKey, secs: i64) -> InboxItem {
    InboxItem {
        id: NotificationId::new(),
        user_id: owner.clone(),
        task_id: occurrence.task_id,
        task_name: "Water the plants".to_owned(),
        due_at: occurrence.due_at,
        created_at: at(secs),
        read: false,
    }
}

/// A sent delivery on `channel`, with its `notification_sent`.
fn delivery(
    occurrence: OccurrenceKey,
    owner: &UserId,
    channel: Channel,
    inbox: Option<InboxItem>,
) -> DeliveryWrite {
    let status = DeliveryStatus {
        channel,
        target: String::new(),
        outcome: DeliveryOutcome::Sent,
        attempts: 1,
        at: occurrence.due_at,
        detail: None,
        provider_id: None,
    };
    let event = OutboxEvent::from(&Event::NotificationSent(NotificationSent {
        occurrence,
        user_id: owner.clone(),
        channel,
        outcome: status.outcome,
        attempts: status.attempts,
        at: status.at,
        detail: None,
        notification_id: inbox.as_ref().map(|i| i.id),
        target: String::new(),
        provider_id: None,
    }));
    DeliveryWrite {
        occurrence,
        user_id: owner.clone(),
        status,
        inbox,
        message: None,
        event: Some(event),
    }
}

async fn record(store: &dyn Store, writes: &[DeliveryWrite]) -> Vec<usize> {
    store
        .record_deliveries(writes)
        .await
        .expect("record_deliveries")
}

/// Records a new in-app delivery of `occurrence` and returns its inbox item.
async fn in_app(store: &dyn Store, owner: &UserId, occurrence: OccurrenceKey) -> InboxItem {
    let item = inbox_item(
        owner,
        occurrence,
        occurrence.due_at.as_second() - ORIGIN + 1,
    );
    let write = delivery(occurrence, owner, Channel::InApp, Some(item.clone()));
    assert_eq!(record(store, &[write]).await, [0]);
    item
}

async fn inbox(
    store: &dyn Store,
    owner: &UserId,
    before: Option<NotificationId>,
    limit: usize,
) -> Vec<InboxItem> {
    store.inbox(owner, before, limit).await.expect("inbox")
}

async fn unread(store: &dyn Store, owner: &UserId) -> u64 {
    store.unread_count(owner).await.expect("unread_count")
}

/// Occurrence `seq` of a task, fired on time `fired` seconds after the origin.
fn fired(occurrence: OccurrenceKey, owner: &UserId, seq: u32, fired: i64) -> FiredOccurrence {
    FiredOccurrence {
        occurrence,
        user_id: owner.clone(),
        seq,
        fired_at: at(fired),
        late: false,
        skipped: false,
        coalesced: 0,
    }
}

fn delivery_state(
    occurrence: OccurrenceKey,
    channel: Channel,
    attempts: u32,
    secs: i64,
) -> DeliveryState {
    DeliveryState {
        occurrence,
        status: DeliveryStatus {
            channel,
            target: String::new(),
            outcome: DeliveryOutcome::Sent,
            attempts,
            at: at(secs),
            detail: None,
            provider_id: None,
        },
    }
}

/// The history entry of `fired` with `deliveries`, in the order [`history`] sorts them.
fn entry(fired: &FiredOccurrence, mut deliveries: Vec<DeliveryStatus>) -> HistoryEntry {
    sort_deliveries(&mut deliveries);
    HistoryEntry {
        due_at: fired.occurrence.due_at,
        seq: fired.seq,
        fired_at: fired.fired_at,
        late: fired.late,
        skipped: fired.skipped,
        coalesced: fired.coalesced,
        deliveries,
    }
}

/// `user`'s history of `task_id`, with each entry's deliveries by channel and target (the
/// port does not promise an order among one occurrence's deliveries).
async fn history(
    store: &dyn Store,
    owner: &UserId,
    task_id: TaskId,
    before: Option<Timestamp>,
    limit: usize,
) -> Vec<HistoryEntry> {
    let mut entries = store
        .history(owner, task_id, before, limit)
        .await
        .expect("history");
    for entry in &mut entries {
        sort_deliveries(&mut entry.deliveries);
    }
    entries
}

fn sort_deliveries(deliveries: &mut [DeliveryStatus]) {
    deliveries.sort_by(|a, b| (a.channel, &a.target).cmp(&(b.channel, &b.target)));
}

/// What a worker needs to attempt a delivery: opaque to the store, so any JSON document,
/// here one with nesting and non-ASCII text that must come back intact.
fn message(occurrence: OccurrenceKey, channel: Channel, target: &str) -> serde_json::Value {
    json!({
        "channel": channel.as_str(),
        "target": target,
        "idempotencyKey": occurrence.to_string(),
        "subject": "Water the plants",
        "body": { "lines": ["Fill the green can — the one by the door."], "late": false },
    })
}

/// A pending delivery on `channel` to `target`, its first attempt due `secs` after the
/// origin: no attempts yet, a message for the worker, no event.
fn pending(
    occurrence: OccurrenceKey,
    owner: &UserId,
    channel: Channel,
    target: &str,
    secs: i64,
) -> DeliveryWrite {
    DeliveryWrite {
        occurrence,
        user_id: owner.clone(),
        status: DeliveryStatus {
            channel,
            target: target.to_owned(),
            outcome: DeliveryOutcome::Pending,
            attempts: 0,
            at: at(secs),
            detail: None,
            provider_id: None,
        },
        inbox: None,
        message: Some(message(occurrence, channel, target)),
        event: None,
    }
}

fn key(write: &DeliveryWrite) -> DeliveryKey {
    DeliveryKey {
        occurrence: write.occurrence,
        channel: write.status.channel,
        target: write.status.target.clone(),
    }
}

/// What claiming `write` returns after `attempts` attempts, its retry window opened at
/// `first`.
fn claimed(write: &DeliveryWrite, attempts: u32, first: Timestamp) -> ClaimedDelivery {
    ClaimedDelivery {
        key: key(write),
        user_id: write.user_id.clone(),
        attempts,
        first_attempt_at: first,
        message: write
            .message
            .clone()
            .expect("a pending write has a message"),
        // `claim` checks the lease and blanks it.
        lease_until: Timestamp::UNIX_EPOCH,
    }
}

/// The `notification_sent` of `write` reaching a final state.
fn final_event(
    write: &DeliveryWrite,
    outcome: DeliveryOutcome,
    attempts: u32,
    at: Timestamp,
    detail: Option<&str>,
    provider_id: Option<&str>,
) -> OutboxEvent {
    OutboxEvent::from(&Event::NotificationSent(NotificationSent {
        occurrence: write.occurrence,
        user_id: write.user_id.clone(),
        channel: write.status.channel,
        outcome,
        attempts,
        at,
        detail: detail.map(str::to_owned),
        notification_id: None,
        target: write.status.target.clone(),
        provider_id: provider_id.map(str::to_owned),
    }))
}

fn sent(provider_id: Option<&str>) -> AttemptResult {
    AttemptResult::Sent {
        provider_id: provider_id.map(str::to_owned),
    }
}

fn retry(secs: i64, error: &str) -> AttemptResult {
    AttemptResult::Retry {
        next_attempt_at: at(secs),
        error: error.to_owned(),
    }
}

fn dead_lettered(error: &str) -> AttemptResult {
    AttemptResult::DeadLettered {
        error: error.to_owned(),
    }
}

async fn claim(
    store: &dyn Store,
    channel: Channel,
    now: Timestamp,
    lease_until: Timestamp,
    max: usize,
) -> Vec<ClaimedDelivery> {
    let claims = store
        .claim_deliveries(channel, now, lease_until, max)
        .await
        .expect("claim_deliveries");
    assert!(
        claims.len() <= max,
        "claim_deliveries({max}) claimed {}",
        claims.len()
    );
    // Every claim holds the lease asked for; expectations built by `claimed` then compare
    // everything else.
    for c in &claims {
        assert_eq!(c.lease_until, lease_until, "the claim's lease");
    }
    claims
        .into_iter()
        .map(|c| ClaimedDelivery {
            lease_until: Timestamp::UNIX_EPOCH,
            ..c
        })
        .collect()
}

async fn next_delivery(store: &dyn Store, channel: Channel) -> Option<Timestamp> {
    store
        .next_delivery_at(channel)
        .await
        .expect("next_delivery_at")
}

async fn attempt(
    store: &dyn Store,
    key: &DeliveryKey,
    lease: Timestamp,
    at: Timestamp,
    result: AttemptResult,
    event: Option<OutboxEvent>,
) {
    store
        .record_attempt(key, lease, at, result, event)
        .await
        .expect("record_attempt");
}

async fn retry_dead_letter(
    store: &dyn Store,
    owner: &UserId,
    key: &DeliveryKey,
    now: Timestamp,
) -> bool {
    store
        .retry_dead_letter(owner, key, now)
        .await
        .expect("retry_dead_letter")
}

/// `user`'s pending deliveries of `task_id`, by occurrence, channel and target (the port
/// does not promise an order).
async fn pending_of(
    store: &dyn Store,
    owner: &UserId,
    task_id: TaskId,
) -> Vec<(OccurrenceKey, DeliveryStatus)> {
    let mut pending = store
        .pending_deliveries(owner, task_id)
        .await
        .expect("pending_deliveries");
    pending.sort_by(|(a, s), (b, t)| {
        (a.due_at, s.channel, &s.target).cmp(&(b.due_at, t.channel, &t.target))
    });
    pending
}

/// `owner`'s push subscription `id` on `endpoint`, created `secs` after the origin.
fn subscription(owner: &UserId, id: &str, endpoint: &str, secs: i64) -> PushSubscriptionRecord {
    PushSubscriptionRecord {
        id: id.to_owned(),
        user_id: owner.clone(),
        endpoint: endpoint.to_owned(),
        p256dh: format!("BPublicKeyOf{id}"),
        auth: format!("auth-of-{id}"),
        created_at: at(secs),
    }
}

async fn put_subscription(
    store: &dyn Store,
    sub: &PushSubscriptionRecord,
) -> PushSubscriptionRecord {
    store
        .put_push_subscription(sub)
        .await
        .expect("put_push_subscription")
}

/// `owner`'s push subscriptions by id (the port does not promise an order).
async fn subscriptions(store: &dyn Store, owner: &UserId) -> Vec<PushSubscriptionRecord> {
    let mut subs = store
        .push_subscriptions(owner)
        .await
        .expect("push_subscriptions");
    subs.sort_by(|a, b| a.id.cmp(&b.id));
    subs
}

async fn remove_subscription(store: &dyn Store, owner: Option<&UserId>, id: &str) -> bool {
    store
        .remove_push_subscription(owner, id)
        .await
        .expect("remove_push_subscription")
}

fn webhook_endpoint(owner: &UserId, url: &str, secs: i64) -> WebhookEndpoint {
    WebhookEndpoint {
        user_id: owner.clone(),
        url: url.to_owned(),
        secret: format!("whsec_{}", owner.as_str()),
        created_at: at(secs),
    }
}

async fn put_webhook(store: &dyn Store, endpoint: &WebhookEndpoint) {
    store.put_webhook(endpoint).await.expect("put_webhook");
}

async fn webhook(store: &dyn Store, owner: &UserId) -> Option<WebhookEndpoint> {
    store.webhook(owner).await.expect("webhook")
}

fn session_record(id_hash: &str, owner: Option<&str>, expires: i64) -> SessionRecord {
    SessionRecord {
        id_hash: id_hash.to_owned(),
        csrf: format!("csrf-of-{id_hash}"),
        user: owner.map(user),
        access_token: None,
        access_expires_at: None,
        pending: None,
        expires_at: at(expires),
    }
}

fn pending_sign_in(state: &str) -> PendingSignIn {
    PendingSignIn {
        state: state.to_owned(),
        nonce: format!("nonce-{state}"),
        verifier: format!("verifier-{state}"),
        return_to: "/tasks/tsk_1".to_owned(),
    }
}

async fn live_session(store: &dyn Store, id_hash: &str, now: i64) -> Option<SessionRecord> {
    store.session(id_hash, at(now)).await.expect("session")
}
