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
                seq: 1,
                snoozed_until: None,
                returning: false,
                snoozed_from: None,
                repeated: false,
                nags_left: 0,
                escalated: 0,
                escalate_at: None,
            },
            OccurrenceRecord {
                key: key(&recurring, at(100)),
                user_id: alice.clone(),
                fired_at: at(120),
                expires_at: at(1_000),
                acknowledged: None,
                seq: 1,
                snoozed_until: None,
                returning: false,
                snoozed_from: None,
                repeated: false,
                nags_left: 0,
                escalated: 0,
                escalate_at: None,
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
        Some(first.clone())
    );
    // The task's occurrences, newest first, for its history; another user's are not listed.
    let of_task = |user: UserId, before: Option<Timestamp>| {
        let store = store.clone();
        async move {
            store
                .task_occurrences(&user, once.id, before, 10)
                .await
                .expect("task_occurrences")
        }
    };
    assert_eq!(
        of_task(alice.clone(), None).await,
        std::slice::from_ref(&first)
    );
    assert!(of_task(alice.clone(), Some(at(100))).await.is_empty());
    assert_eq!(of_task(alice.clone(), Some(at(101))).await, [first]);
    assert!(of_task(bob.clone(), None).await.is_empty());
    assert_eq!(store.occurrence(&bob, &k).await.expect("occurrence"), None);
}

/// A [`WakeFn`] that publishes an `execute_task` for each return and records the returns it
/// was given, in call order.
fn recording_wake() -> (WakeFn, Arc<Mutex<Vec<Wake>>>) {
    let seen: Arc<Mutex<Vec<Wake>>> = Arc::default();
    let log = seen.clone();
    let wake: WakeFn = Arc::new(move |w: &Wake| {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(w.clone());
        Some(crate::Woken {
            events: vec![execute_task(&ScheduledTask {
                task_id: w.key.task_id,
                user_id: w.user_id.clone(),
                version: w.version,
                body: w.body.clone(),
                due_at: w.key.due_at,
                seq: w.seq,
            })],
            escalate_at: None,
        })
    });
    (wake, seen)
}

async fn wake_due(store: &dyn Store, now: Timestamp) -> (usize, Vec<Wake>) {
    let (wake, seen) = recording_wake();
    let woke = store.wake_due(now, 10, wake).await.expect("wake_due");
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    (woke, seen)
}

/// Fires a one-time task at 100 and returns its occurrence key, with the outbox emptied.
async fn fired_once(store: &dyn Store, owner: &UserId, name: &str) -> (TaskRecord, OccurrenceKey) {
    let once = task(owner, name);
    apply(store, &[set(&once, Some((at(100), 1)))]).await;
    let (fire, _) = recording_fire(|_| None);
    assert_eq!(fire_due(store, at(100), 10, fire).await, 1);
    ack(store, &seqs(&outbox(store).await)).await;
    let k = key(&once, at(100));
    (once, k)
}

async fn snooze(
    store: &dyn Store,
    owner: &UserId,
    k: &OccurrenceKey,
    until: i64,
) -> Option<OccurrenceRecord> {
    store
        .snooze_occurrence(owner, k, at(until))
        .await
        .expect("snooze_occurrence")
}

/// A snoozed occurrence leaves the open list and returns exactly once, when its snooze ends,
/// as a new open occurrence of its task (due then, same `seq`, `snoozed_from` the original),
/// publishing its events in the same transaction; `next_due` counts the pending return, and
/// a return claimed once is not claimed again, before or after a restart.
pub async fn a_snoozed_occurrence_returns_once_when_its_snooze_ends(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let (once, k) = fired_once(&*store, &alice, "Call mum").await;
    assert_eq!(next_due(&*store).await, None);

    assert_eq!(snooze(&*store, &bob, &k, 700).await, None, "bob's snooze");
    let snoozed = snooze(&*store, &alice, &k, 700).await.expect("alice's");
    assert_eq!(snoozed.snoozed_until, Some(at(700)));
    assert!(snoozed.returning);
    assert_eq!(snoozed.state(at(150)), crate::OccurrenceState::Snoozed);
    assert!(open(&*store, &alice, at(150)).await.is_empty());
    assert_eq!(next_due(&*store).await, Some(at(700)));
    // Listed as snoozed (to its owner only) until it returns.
    let snoozed_of = |who: UserId| {
        let store = store.clone();
        async move {
            store
                .snoozed_occurrences(&who, 10)
                .await
                .expect("snoozed_occurrences")
                .into_iter()
                .map(|o| o.key)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(snoozed_of(alice.clone()).await, [k]);
    assert!(snoozed_of(bob.clone()).await.is_empty());

    assert_eq!(wake_due(&*store, at(699)).await.0, 0, "returned early");
    assert!(outbox(&*store).await.is_empty());
    drop(store);
    let store = f.open().await;
    let (woke, seen) = wake_due(&*store, at(702)).await;
    assert_eq!(woke, 1);
    let back = key(&once, at(700));
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].key, back);
    assert_eq!(seen[0].snoozed_from, at(100));
    assert_eq!((seen[0].seq, seen[0].version), (1, once.version));
    assert_eq!(seen[0].body, once.body);
    let events = outbox_events(&*store).await;
    assert_eq!(events.len(), 1, "{events:?}");

    let returned = store
        .occurrence(&alice, &back)
        .await
        .expect("occurrence")
        .expect("the return is an occurrence");
    assert_eq!(returned.fired_at, at(702));
    assert_eq!(returned.snoozed_from, Some(at(100)));
    assert_eq!(returned.seq, 1);
    assert_eq!(returned.state(at(702)), crate::OccurrenceState::Open);
    assert_eq!(open(&*store, &alice, at(702)).await, [back]);
    assert!(store
        .snoozed_occurrences(&alice, 10)
        .await
        .expect("snoozed_occurrences")
        .is_empty());
    let original = store.occurrence(&alice, &k).await.expect("occurrence");
    let original = original.expect("the snoozed one stays");
    assert_eq!(original.snoozed_until, Some(at(700)));
    assert!(!original.returning);
    assert_eq!(next_due(&*store).await, None);

    assert_eq!(wake_due(&*store, at(800)).await.0, 0, "returned twice");
    drop(store);
    let store = f.open().await;
    assert_eq!(wake_due(&*store, at(900)).await.0, 0, "returned twice");
    // Returned: snoozing the original again changes nothing (the return is the one to snooze).
    let again = snooze(&*store, &alice, &k, 2_000).await.expect("alice's");
    assert_eq!(again.snoozed_until, Some(at(700)));
    assert!(!again.returning);
}

/// Snoozing again before the return moves it; acknowledging cancels it (done means it does
/// not come back) and an acknowledged occurrence cannot be snoozed; the snooze of a task
/// deleted meanwhile ends without returning.
pub async fn a_snooze_moves_is_cancelled_by_done_and_ends_with_its_task(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let (_, k) = fired_once(&*store, &alice, "Call mum").await;
    snooze(&*store, &alice, &k, 700).await.expect("snoozed");
    let moved = snooze(&*store, &alice, &k, 900).await.expect("snoozed");
    assert_eq!(moved.snoozed_until, Some(at(900)));
    assert_eq!(next_due(&*store).await, Some(at(900)));
    assert_eq!(
        wake_due(&*store, at(800)).await.0,
        0,
        "returned at the old instant"
    );

    let done = store
        .acknowledge_occurrence(&alice, &k, Channel::InApp, at(850))
        .await
        .expect("acknowledge")
        .expect("alice's");
    assert!(!done.returning);
    assert_eq!(done.state(at(850)), crate::OccurrenceState::Acknowledged);
    assert_eq!(next_due(&*store).await, None);
    assert_eq!(
        wake_due(&*store, at(1_000)).await.0,
        0,
        "returned after done"
    );
    let refused = snooze(&*store, &alice, &k, 2_000).await.expect("alice's");
    assert!(!refused.returning, "an acknowledged occurrence was snoozed");

    let (gone, g) = fired_once(&*store, &alice, "Gone").await;
    snooze(&*store, &alice, &g, 700).await.expect("snoozed");
    store
        .delete_task(&alice, gone.id, 1, deleted_event(&gone, 2))
        .await
        .expect("delete_task");
    ack(&*store, &seqs(&outbox(&*store).await)).await;
    assert_eq!(
        wake_due(&*store, at(700)).await.0,
        0,
        "a deleted task's snooze returned"
    );
    assert!(outbox(&*store).await.is_empty());
    assert_eq!(next_due(&*store).await, None);
    assert!(store
        .occurrence(&alice, &key(&gone, at(700)))
        .await
        .expect("occurrence")
        .is_none());
}

/// The latest SMS to a number names the occurrence a reply from it acts on: a later one
/// replaces it, an earlier one (a slow retry) does not; another number has its own; it
/// survives a restart.
pub async fn a_reply_target_is_the_latest_sms_to_its_number(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let first = occurrence_of(TaskId::new(), 100);
    let later = occurrence_of(TaskId::new(), 200);
    let put = |hash: &'static str, who: UserId, key: OccurrenceKey, sent: i64| {
        let store = store.clone();
        async move {
            store
                .put_reply_target(hash, &who, &key, at(sent))
                .await
                .expect("put_reply_target");
        }
    };
    let target = |hash: &'static str| {
        let store = store.clone();
        async move { store.reply_target(hash).await.expect("reply_target") }
    };
    assert_eq!(target("h1").await, None);
    put("h1", alice.clone(), first, 100).await;
    assert_eq!(target("h1").await, Some((alice.clone(), first)));
    put("h1", alice.clone(), later, 200).await;
    put("h1", alice.clone(), first, 150).await;
    assert_eq!(target("h1").await, Some((alice.clone(), later)));
    put("h2", bob.clone(), first, 300).await;
    assert_eq!(target("h2").await, Some((bob, first)));
    drop(store);
    let store = f.open().await;
    assert_eq!(
        store.reply_target("h1").await.expect("reply_target"),
        Some((alice, later))
    );
}

/// A nagging task's occurrence is sent again every so often while nobody acknowledges it: each
/// repeat is a new open occurrence (same seq) fired once by `wake_due`, the one before it is
/// `repeated`, at most `times` repeats; acknowledging stops the repeats, and a snooze keeps
/// the count for after its return.
pub async fn a_nagging_occurrence_repeats_until_done_at_most_times(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let nagging = task(&alice, "Pills");
    apply(&*store, &[set(&nagging, Some((at(100), 1)))]).await;
    let nag = chime_core::task::Nag {
        every_minutes: 1,
        times: 2,
    };
    let fire: FireFn = Arc::new(move |row: &ScheduledTask| Fire {
        events: vec![execute_task(row)],
        next: None,
        nag: Some(nag),
        escalate_at: None,
    });
    assert_eq!(fire_due(&*store, at(100), 10, fire).await, 1);
    ack(&*store, &seqs(&outbox(&*store).await)).await;
    let first = key(&nagging, at(100));
    let record = store
        .occurrence(&alice, &first)
        .await
        .expect("occurrence")
        .expect("fired");
    assert_eq!(record.state(at(100)), crate::OccurrenceState::Open);
    assert_eq!((record.nags_left, record.returning), (2, true));
    assert_eq!(next_due(&*store).await, Some(at(160)));

    assert_eq!(wake_due(&*store, at(159)).await.0, 0, "repeated early");
    let (woke, seen) = wake_due(&*store, at(160)).await;
    assert_eq!((woke, seen[0].key), (1, key(&nagging, at(160))));
    let repeated = store
        .occurrence(&alice, &first)
        .await
        .expect("occurrence")
        .expect("kept");
    assert_eq!(repeated.state(at(160)), crate::OccurrenceState::Repeated);
    assert_eq!(repeated.snoozed_until, Some(at(160)));
    let second = key(&nagging, at(160));
    let record = store
        .occurrence(&alice, &second)
        .await
        .expect("occurrence")
        .expect("repeat");
    assert_eq!(record.state(at(160)), crate::OccurrenceState::Open);
    assert_eq!((record.nags_left, record.seq), (1, 1));
    assert_eq!(open(&*store, &alice, at(160)).await, [second]);

    // The owner snoozes the repeat; its return keeps the one repeat left.
    snooze(&*store, &alice, &second, 200)
        .await
        .expect("snoozed");
    assert_eq!(wake_due(&*store, at(200)).await.0, 1);
    let third = key(&nagging, at(200));
    let record = store
        .occurrence(&alice, &third)
        .await
        .expect("occurrence")
        .expect("return");
    assert_eq!((record.nags_left, record.returning), (1, true));
    let snoozed = store
        .occurrence(&alice, &second)
        .await
        .expect("occurrence")
        .expect("kept");
    assert_eq!(snoozed.state(at(200)), crate::OccurrenceState::Snoozed);
    // Its one repeat, then no more.
    assert_eq!(wake_due(&*store, at(260)).await.0, 1);
    let fourth = key(&nagging, at(260));
    let record = store
        .occurrence(&alice, &fourth)
        .await
        .expect("occurrence")
        .expect("repeat");
    assert_eq!((record.nags_left, record.returning), (0, false));
    assert_eq!(
        wake_due(&*store, at(10_000)).await.0,
        0,
        "more than `times` repeats"
    );
    assert_eq!(next_due(&*store).await, None);

    // Done before a repeat: no repeat.
    let other = task(&alice, "Water");
    apply(&*store, &[set(&other, Some((at(300), 1)))]).await;
    let fire: FireFn = Arc::new(move |row: &ScheduledTask| Fire {
        events: vec![execute_task(row)],
        next: None,
        nag: Some(nag),
        escalate_at: None,
    });
    assert_eq!(fire_due(&*store, at(300), 10, fire).await, 1);
    store
        .acknowledge_occurrence(&alice, &key(&other, at(300)), Channel::Push, at(310))
        .await
        .expect("acknowledge")
        .expect("alice's");
    assert_eq!(
        wake_due(&*store, at(10_000)).await.0,
        0,
        "repeated after done"
    );
}

/// Fires `task` due at `due` with its first escalation step due at `first` (and a nag, if
/// given), the outbox emptied.
async fn fired_escalating(
    store: &dyn Store,
    task: &TaskRecord,
    due: i64,
    first: i64,
    nag: Option<chime_core::task::Nag>,
) -> OccurrenceKey {
    apply(store, &[set(task, Some((at(due), 1)))]).await;
    let fire: FireFn = Arc::new(move |row: &ScheduledTask| Fire {
        events: vec![execute_task(row)],
        next: None,
        nag,
        escalate_at: Some(at(first)),
    });
    assert_eq!(fire_due(store, at(due), 10, fire).await, 1);
    ack(store, &seqs(&outbox(store).await)).await;
    key(task, at(due))
}

/// Runs `escalate_due` at `now` with a step that publishes an `execute_task` and puts the next
/// step 60 s later while there is one (two steps: 0 and 1); the steps it was given.
async fn escalate_due(store: &dyn Store, now: Timestamp) -> Vec<crate::Escalate> {
    let seen: Arc<Mutex<Vec<crate::Escalate>>> = Arc::default();
    let log = seen.clone();
    let step: crate::EscalateFn = Arc::new(move |e: &crate::Escalate| {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e.clone());
        Some(crate::Escalated {
            events: vec![execute_task(&ScheduledTask {
                task_id: e.key.task_id,
                user_id: e.user_id.clone(),
                version: e.version,
                body: e.body.clone(),
                due_at: e.key.due_at,
                seq: e.seq,
            })],
            next_at: (e.step == 0).then(|| e.at + jiff::SignedDuration::from_secs(60)),
        })
    });
    let fired = store
        .escalate_due(now, 10, step)
        .await
        .expect("escalate_due");
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(fired, seen.len(), "counted what it fired");
    seen
}

/// An escalating occurrence's steps are durable work on its row: each fires once, in order,
/// at its instant, with an event in the outbox; none after the occurrence is acknowledged or
/// snoozed (a snooze's return starts the chain again, by what its wake decides); a repeat of
/// a nagging task takes the pending step over; a deleted task's chain ends.
pub async fn escalation_steps_fire_once_each_and_none_after_done(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let steps = |seen: &[crate::Escalate]| -> Vec<(OccurrenceKey, u32, Timestamp)> {
        seen.iter().map(|e| (e.key, e.step, e.at)).collect()
    };

    // Two steps, at 160 and 220, each once.
    let bins = task(&alice, "Bins");
    let k = fired_escalating(&*store, &bins, 100, 160, None).await;
    let record = store
        .occurrence(&alice, &k)
        .await
        .expect("occurrence")
        .expect("fired");
    assert_eq!((record.escalated, record.escalate_at), (0, Some(at(160))));
    assert_eq!(next_due(&*store).await, Some(at(160)));
    assert!(
        escalate_due(&*store, at(159)).await.is_empty(),
        "escalated early"
    );
    assert_eq!(
        steps(&escalate_due(&*store, at(160)).await),
        [(k, 0, at(160))]
    );
    assert_eq!(outbox(&*store).await.len(), 1, "the step's event");
    ack(&*store, &seqs(&outbox(&*store).await)).await;
    assert!(
        escalate_due(&*store, at(200)).await.is_empty(),
        "a step fired twice"
    );
    let record = store
        .occurrence(&alice, &k)
        .await
        .expect("occurrence")
        .expect("fired");
    assert_eq!((record.escalated, record.escalate_at), (1, Some(at(220))));
    assert_eq!(
        steps(&escalate_due(&*store, at(230)).await),
        [(k, 1, at(220))]
    );
    ack(&*store, &seqs(&outbox(&*store).await)).await;
    assert!(
        escalate_due(&*store, at(10_000)).await.is_empty(),
        "past the last step"
    );
    let record = store
        .occurrence(&alice, &k)
        .await
        .expect("occurrence")
        .expect("fired");
    assert_eq!((record.escalated, record.escalate_at), (2, None));
    assert_eq!(next_due(&*store).await, None);

    // Done first: no step, and nothing is pending.
    let rent = task(&alice, "Rent");
    let k = fired_escalating(&*store, &rent, 300, 360, None).await;
    store
        .acknowledge_occurrence(&alice, &k, Channel::Sms, at(310))
        .await
        .expect("acknowledge")
        .expect("alice's");
    assert!(
        escalate_due(&*store, at(10_000)).await.is_empty(),
        "escalated after done"
    );
    assert!(outbox(&*store).await.is_empty());
    assert_eq!(next_due(&*store).await, None);

    // Snoozed first: no step; the return's chain starts where its wake says.
    let call = task(&alice, "Call mum");
    let k = fired_escalating(&*store, &call, 400, 460, None).await;
    snooze(&*store, &alice, &k, 450).await.expect("snoozed");
    assert!(
        escalate_due(&*store, at(455)).await.is_empty(),
        "escalated while snoozed"
    );
    let wake: WakeFn = Arc::new(move |w: &Wake| {
        Some(crate::Woken {
            events: Vec::new(),
            escalate_at: Some(w.key.due_at + jiff::SignedDuration::from_secs(60)),
        })
    });
    assert_eq!(
        store.wake_due(at(450), 10, wake).await.expect("wake_due"),
        1
    );
    let back = key(&call, at(450));
    let record = store
        .occurrence(&alice, &back)
        .await
        .expect("occurrence")
        .expect("return");
    assert_eq!((record.escalated, record.escalate_at), (0, Some(at(510))));
    assert!(escalate_due(&*store, at(509)).await.is_empty());
    assert_eq!(
        steps(&escalate_due(&*store, at(510)).await),
        [(back, 0, at(510))]
    );
    ack(&*store, &seqs(&outbox(&*store).await)).await;
    store
        .acknowledge_occurrence(&alice, &back, Channel::Email, at(520))
        .await
        .expect("acknowledge")
        .expect("alice's");

    // A repeat takes over the pending step: it fires once, on the repeat.
    let pills = task(&alice, "Pills");
    let nag = chime_core::task::Nag {
        every_minutes: 1,
        times: 1,
    };
    let k = fired_escalating(&*store, &pills, 600, 700, Some(nag)).await;
    assert_eq!(wake_due(&*store, at(660)).await.0, 1, "the repeat");
    let repeat = key(&pills, at(660));
    let original = store
        .occurrence(&alice, &k)
        .await
        .expect("occurrence")
        .expect("kept");
    assert_eq!(original.escalate_at, None);
    let record = store
        .occurrence(&alice, &repeat)
        .await
        .expect("occurrence")
        .expect("repeat");
    assert_eq!(record.escalate_at, Some(at(700)));
    assert_eq!(
        steps(&escalate_due(&*store, at(700)).await),
        [(repeat, 0, at(700))]
    );
    ack(&*store, &seqs(&outbox(&*store).await)).await;
    // Done on the original closes the chain: its repeat's next step (760) does not fire.
    store
        .acknowledge_occurrence(&alice, &repeat, Channel::InApp, at(710))
        .await
        .expect("acknowledge")
        .expect("alice's");
    assert!(
        escalate_due(&*store, at(10_000)).await.is_empty(),
        "escalated after done"
    );

    // Deleted: the chain ends without a step.
    let gone = task(&alice, "Gone");
    fired_escalating(&*store, &gone, 800, 860, None).await;
    store
        .delete_task(&alice, gone.id, 1, deleted_event(&gone, 2))
        .await
        .expect("delete_task");
    ack(&*store, &seqs(&outbox(&*store).await)).await;
    assert!(
        escalate_due(&*store, at(10_000)).await.is_empty(),
        "a deleted task escalated"
    );
    assert!(outbox(&*store).await.is_empty());
    assert_eq!(next_due(&*store).await, None);
}

/// Two store instances on the same storage (two `chime` processes) racing `escalate_due` while
/// the owner acknowledges every third occurrence: each step of an occurrence not acknowledged
/// fires exactly once between them, and no step is claimed after its acknowledgement
/// committed.
pub async fn two_stores_racing_escalate_due_fire_each_step_once_and_none_after_done(
    f: &dyn StoreFactory,
) {
    const ROWS: usize = 60;
    let stores = [f.open().await, f.open().await];
    let alice = user("alice");
    let mut keys = Vec::new();
    for i in 0..ROWS {
        let t = task(&alice, &format!("Task {i}"));
        keys.push(fired_escalating(&*stores[0], &t, 100, 160, None).await);
    }
    // Committed acknowledgements, each with when it committed (by a counter the steps read).
    let acked: Arc<Mutex<HashMap<OccurrenceKey, u64>>> = Arc::default();
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let fired: Arc<Mutex<Vec<(OccurrenceKey, u32, u64)>>> = Arc::default();
    let step: crate::EscalateFn = {
        let (fired, clock) = (fired.clone(), clock.clone());
        Arc::new(move |e: &crate::Escalate| {
            let tick = clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            fired
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((e.key, e.step, tick));
            Some(crate::Escalated {
                events: Vec::new(),
                next_at: (e.step == 0).then(|| e.at + jiff::SignedDuration::from_secs(1)),
            })
        })
    };
    let start = Arc::new(tokio::sync::Barrier::new(3));
    let mut racers: Vec<tokio::task::JoinHandle<()>> = stores
        .iter()
        .map(|store| {
            let (store, step, start) = (store.clone(), step.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                while store
                    .escalate_due(at(1_000), 3, step.clone())
                    .await
                    .expect("escalate_due")
                    > 0
                {}
            })
        })
        .collect();
    racers.push({
        let (store, alice, start) = (stores[1].clone(), alice.clone(), start.clone());
        let (acked, clock) = (acked.clone(), clock.clone());
        let done: Vec<OccurrenceKey> = keys.iter().step_by(3).copied().collect();
        tokio::spawn(async move {
            start.wait().await;
            for k in done {
                store
                    .acknowledge_occurrence(&alice, &k, Channel::InApp, at(150))
                    .await
                    .expect("acknowledge")
                    .expect("alice's");
                let tick = clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                acked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(k, tick);
            }
        })
    });
    for racer in racers {
        tokio::time::timeout(std::time::Duration::from_secs(60), racer)
            .await
            .expect("a racer finishes")
            .expect("a racer");
    }
    // Whatever the acknowledgements left, the loops may have stopped before the last steps
    // were due to them: one more pass finishes the chains.
    while stores[0]
        .escalate_due(at(1_000), 100, step.clone())
        .await
        .expect("escalate_due")
        > 0
    {}
    let fired = fired.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let acked = acked.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut per: HashMap<(OccurrenceKey, u32), usize> = HashMap::new();
    for (k, s, tick) in &fired {
        *per.entry((*k, *s)).or_default() += 1;
        if let Some(done) = acked.get(k) {
            assert!(
                tick < done,
                "step {s} of {k} fired after its acknowledgement committed"
            );
        }
    }
    assert!(per.values().all(|n| *n == 1), "a step fired twice: {per:?}");
    for k in &keys {
        if !acked.contains_key(k) {
            assert!(
                per.contains_key(&(*k, 0)) && per.contains_key(&(*k, 1)),
                "{k} not escalated"
            );
        }
    }
    assert_eq!(next_due(&*stores[0]).await, None);
}
