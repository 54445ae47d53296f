//! Pending deliveries: claims on a channel under a lease, attempts, retries and dead letters.

use super::*;

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
