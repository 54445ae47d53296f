//! The contract every store adapter passes: one suite, run against each adapter (SQLite,
//! PostgreSQL and MongoDB), in the manner of garage's `test_suite(db)`.
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
//! - Push subscriptions, webhook endpoints, destinations and profiles are per user; a known
//!   push endpoint keeps its id; a destination's id is never another user's to read, replace
//!   or remove, though a lookup by id alone (a service's callback) finds it.
//! - Browser sessions read back as put while live (never once expired), a sign-in replaces
//!   one in a single step, a pending sign-in is taken by exactly one caller (also across
//!   store instances), and purging removes exactly the expired ones.
//! - History ignores replayed firings, keeps the delivery state with the most attempts per
//!   (channel, target) with its provider id, and shows delivery states whichever of the two
//!   events arrived first.
//! - `fire_due` opens each occurrence it fires in the same transaction (not one the fence
//!   stops); it is open until acknowledged or expired (its task's next occurrence, or a day),
//!   listed newest first per owner, and acknowledged once: a second acknowledgement answers
//!   the first's.
//! - Retention deletes, a window at a time, exactly what is older than its cutoff and settled:
//!   never a task still scheduled, nor an occurrence open, snoozed or escalating, a pending
//!   delivery or an unread inbox item.
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
//! These functions are test code: they panic on any failure. They are grouped by port, one
//! module each (`tasks`, `outbox`, `schedule`, `deliveries`, `pending`, `history`,
//! `recipients`, `sessions`, `durability`), with what they share in `support`; this file
//! holds the factory, the macro and the list the macro expands.

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
    DestinationRecord, Error, Fire, FireFn, FiredOccurrence, HistoryEntry, InboxItem,
    OccurrenceRecord, OutboxEvent, OutboxRow, PendingSignIn, ProfileRecord, PushSubscriptionRecord,
    ScheduleChange, ScheduledTask, SessionRecord, Store, TaskRecord, Wake, WakeFn, WebhookEndpoint,
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
            the_task_limit_holds_exactly_when_creates_race_from_two_instances,
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
            destinations_are_listed_per_user_oldest_first_then_by_id,
            a_destination_is_read_by_its_owner_or_by_its_id_alone,
            putting_a_destination_again_replaces_its_name_and_url_and_keeps_its_place,
            another_users_destination_id_can_be_neither_read_nor_replaced_nor_removed,
            removing_a_destination_returns_false_the_second_time,
            a_users_profile_is_put_replaced_and_read_per_user,
            a_calendar_feed_is_created_rotated_and_revoked_per_user,
            a_silent_inbox_item_is_read_back_silent,
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
            fire_due_opens_each_fired_occurrence_until_its_next_or_for_a_day,
            open_occurrences_paginate_newest_first_with_before,
            acknowledging_is_idempotent_per_owner_and_closes_the_occurrence,
            a_snoozed_occurrence_returns_once_when_its_snooze_ends,
            a_snooze_moves_is_cancelled_by_done_and_ends_with_its_task,
            a_reply_target_is_the_latest_sms_to_its_number,
            a_nagging_occurrence_repeats_until_done_at_most_times,
            escalation_steps_fire_once_each_and_none_after_done,
            two_stores_racing_escalate_due_fire_each_step_once_and_none_after_done,
            retention_deletes_only_the_settled_past_and_a_second_run_nothing,
            unscheduled_tasks_are_those_without_a_schedule_row_at_their_version,
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

mod deliveries;
mod durability;
mod history;
mod occurrences;
mod outbox;
mod pending;
mod recipients;
mod retention;
mod schedule;
mod sessions;
mod shared;
mod support;
mod tasks;

// The checks, at `crate::contract::<check>` where `store_contract_tests!` names them.
pub use deliveries::*;
pub use durability::*;
pub use history::*;
pub use occurrences::*;
pub use outbox::*;
pub use pending::*;
pub use recipients::*;
pub use retention::*;
pub use schedule::*;
pub use sessions::*;
use support::*;
pub use tasks::*;
// For tests beside the suite (the checks of a store several processes share).
pub use shared::*;
pub use support::ensure_tasks;
