//! History: replayed firings ignored, the delivery state with the most attempts kept.

use super::*;

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
