//! Checks of a store that several processes share (PostgreSQL, MongoDB), sized by the caller:
//! not in [`store_contract_tests!`], since the embedded store has one process by design (its
//! relay is alone, so two of its stores on one file would both publish every event). Each
//! adapter's test file runs them at a size its server manages within the suite's time.

use super::*;

/// Two stores (two processes' clients) with two workers each fire `rows` due rows at once,
/// `max` rows a claim, so that their claims meet: every row fires exactly once, publishes its
/// event, and moves to its next occurrence.
pub async fn workers_on_two_stores_fire_every_due_row_exactly_once(
    stores: [Arc<dyn Store>; 2],
    rows: usize,
    max: usize,
) {
    let alice = user("alice");
    let tasks: Vec<TaskRecord> = (0..rows)
        .map(|i| task(&alice, &format!("Task {i}")))
        .collect();
    let changes: Vec<ScheduleChange> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| set(t, Some((at(i as i64 % 100), 1))))
        .collect();
    // Rows fire only while their task is in the store at their version (the fence).
    ensure_tasks(&*stores[0], &changes).await;
    apply(&*stores[0], &changes).await;

    let (fire, fired) = counting_fire(Some((at(10_000), 0)));
    let workers = vec![
        stores[0].clone(),
        stores[1].clone(),
        stores[0].clone(),
        stores[1].clone(),
    ];
    let total = race_workers(workers, at(100), max, fire, GUARD * 6).await;

    let fired = fired.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(fired.len(), rows, "every due row fired");
    assert!(fired.values().all(|n| *n == 1), "no row fired twice");
    assert_eq!(total, rows);
    assert_eq!(
        stores[1].outbox_len().await.expect("outbox_len"),
        rows as u64
    );
    assert_eq!(
        stores[1].next_due().await.expect("next_due"),
        Some(at(10_000))
    );
    let one = stores[1]
        .scheduled(tasks[0].id)
        .await
        .expect("scheduled")
        .expect("still scheduled");
    assert_eq!((one.due_at, one.seq), (at(10_000), 2));
}

/// Two stores' relays drain one outbox of `events` at once, claiming `batch` at a time and
/// acknowledging what they claimed: together they publish every event, and none to both.
pub async fn relays_of_two_stores_share_the_outbox_and_no_event_goes_to_both(
    stores: [Arc<dyn Store>; 2],
    events: usize,
    batch: usize,
) {
    let alice = user("alice");
    for n in 0..events {
        create(&*stores[n % 2], &task(&alice, &format!("Task {n}"))).await;
    }
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let relays: Vec<_> = stores
        .iter()
        .map(|store| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let mut relayed = Vec::new();
                loop {
                    let claimed = store.outbox_claim(batch).await.expect("outbox_claim");
                    if claimed.is_empty() {
                        break relayed;
                    }
                    let seqs: Vec<i64> = claimed.iter().map(|r| r.seq).collect();
                    store.outbox_ack(&seqs).await.expect("outbox_ack");
                    relayed.extend(seqs);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for relay in relays {
        all.extend(
            tokio::time::timeout(GUARD * 6, relay)
                .await
                .expect("a relay finishes")
                .expect("a relay"),
        );
    }
    let claimed = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(claimed, all.len(), "an event was claimed by both relays");
    assert_eq!(all.len(), events, "every event was relayed");
    assert_eq!(stores[0].outbox_len().await.expect("outbox_len"), 0);
}

/// A relay waiting on one store's outbox signal wakes when another store (another process)
/// writes an event, not only on its own process's writes; its listener wakes it once when it
/// starts (for anything written before).
pub async fn an_outbox_write_in_another_process_wakes_this_processs_relay(
    [writer, relay]: [Arc<dyn Store>; 2],
) {
    let signal = relay.outbox_signal();
    tokio::time::timeout(GUARD, signal.notified())
        .await
        .expect("the listener starts and wakes the relay once");
    let woken = signal.notified();
    create(&*writer, &task(&user("alice"), "Water the plants")).await;
    tokio::time::timeout(GUARD, woken)
        .await
        .expect("the other process's write wakes the relay");
    assert_eq!(relay.outbox_claim(10).await.expect("outbox_claim").len(), 1);
}

/// A dead letter retried through one store (the API's retry, in another process) wakes the
/// channel's delivery workers of this one at once, not at their next idle look; other
/// channels' stay asleep.
pub async fn a_dead_letter_retried_in_another_process_wakes_its_channels_workers(
    [api, worker]: [Arc<dyn Store>; 2],
) {
    let webhook = worker
        .delivery_signal(Channel::Webhook)
        .expect("a shared store signals");
    let email = worker
        .delivery_signal(Channel::Email)
        .expect("a shared store signals");
    // The listener wakes every channel once it listens (for anything written before).
    for signal in [&webhook, &email] {
        tokio::time::timeout(GUARD, signal.notified())
            .await
            .expect("the listener starts and wakes the workers once");
    }

    let alice = user("alice");
    let key = DeliveryKey {
        occurrence: OccurrenceKey {
            task_id: TaskId::new(),
            due_at: at(100),
        },
        channel: Channel::Webhook,
        target: String::new(),
    };
    api.record_deliveries(&[DeliveryWrite {
        occurrence: key.occurrence,
        user_id: alice.clone(),
        status: DeliveryStatus {
            channel: Channel::Webhook,
            target: String::new(),
            outcome: DeliveryOutcome::DeadLettered,
            attempts: 8,
            at: at(200),
            detail: Some("HTTP 500".to_owned()),
            provider_id: None,
        },
        inbox: None,
        message: Some(json!({"recipient": "kept for a retry"})),
        event: None,
    }])
    .await
    .expect("a dead-lettered delivery");

    let woken = webhook.notified();
    assert!(api
        .retry_dead_letter(&alice, &key, at(300))
        .await
        .expect("retry"));
    tokio::time::timeout(GUARD, woken)
        .await
        .expect("the retry in the other process wakes this one's webhook worker");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), email.notified())
            .await
            .is_err(),
        "the email worker has nothing new"
    );
}

/// Key rotation's walk (`Reencrypt`, which `reencrypt` is of the same storage as `store`):
/// batches after a cursor visit every row once (5 tasks, 2 a batch: 3 batches), write back what
/// the rewrite changed (read back through the store, the values are the rewritten ones),
/// reach the outbox's payloads and a destination's fields, and a push subscription whose
/// rewritten endpoint equals another's is removed (the later one wins).
pub async fn reencrypt_batches_rewrite_every_row_once_and_drop_duplicate_endpoints(
    store: Arc<dyn Store>,
    reencrypt: &dyn crate::Reencrypt,
) {
    use crate::{PiiColumn, PiiTable, RewriteFn};

    let alice = user("alice");
    let tasks = create_many(&*store, &alice, 5).await;
    for (id, endpoint) in [("sub_a", "old:https://push/1"), ("sub_b", "https://push/1")] {
        store
            .put_push_subscription(&PushSubscriptionRecord {
                id: id.into(),
                user_id: alice.clone(),
                endpoint: endpoint.into(),
                p256dh: "key".into(),
                auth: "auth".into(),
                created_at: at(0),
            })
            .await
            .expect("put");
    }
    // "old:" marks a value on the old key; rewriting it strips the mark, and marks a JSON
    // value that has none (so that two passes over tasks give back what was written).
    let rewrite: RewriteFn = Arc::new(|_: PiiColumn, value: &[u8]| {
        Ok(value.strip_prefix(b"old:").map(<[u8]>::to_vec).or_else(|| {
            (value.first() == Some(&b'{')).then(|| [b"old:".as_slice(), value].concat())
        }))
    });
    let pass = |table: PiiTable, batch: usize| {
        let rewrite = rewrite.clone();
        async move {
            let mut cursor = None;
            let (mut scanned, mut rewritten, mut batches) = (0, 0, 0);
            loop {
                let done = reencrypt
                    .reencrypt_batch(table, cursor, batch, rewrite.clone())
                    .await
                    .expect("reencrypt_batch");
                scanned += done.scanned;
                rewritten += done.rewritten;
                batches += 1;
                match done.cursor {
                    Some(next) => cursor = Some(next),
                    None => break (scanned, rewritten, batches),
                }
            }
        }
    };

    assert_eq!(pass(PiiTable::Tasks, 2).await, (5, 5, 3));
    assert_eq!(
        pass(PiiTable::Tasks, 2).await,
        (5, 5, 3),
        "the marks come off"
    );
    for t in &tasks {
        assert_eq!(
            store
                .get_task(&alice, t.id)
                .await
                .expect("get_task")
                .as_ref(),
            Some(t),
            "written back as rewritten, twice"
        );
    }

    let outbox = reencrypt
        .reencrypt_batch(PiiTable::Outbox, None, 100, rewrite.clone())
        .await
        .expect("reencrypt the outbox");
    assert_eq!((outbox.scanned, outbox.rewritten), (5, 5));
    let payloads = store.outbox_batch(100).await.expect("outbox");
    assert!(payloads.iter().all(|r| r.payload.starts_with(b"old:{")));

    let destination = DestinationRecord {
        id: "dst_family".into(),
        user_id: alice.clone(),
        name: "old:Family chat".into(),
        url: "old:ntfy://ntfy.example/family".into(),
        created_at: at(0),
    };
    store.put_destination(&destination).await.expect("put");
    let destinations = reencrypt
        .reencrypt_batch(PiiTable::Destinations, None, 100, rewrite.clone())
        .await
        .expect("reencrypt destinations");
    assert_eq!((destinations.scanned, destinations.rewritten), (1, 1));
    let rewritten = store
        .destination(None, &destination.id)
        .await
        .expect("destination")
        .expect("still there");
    assert_eq!(
        (rewritten.name.as_str(), rewritten.url.as_str()),
        ("Family chat", "ntfy://ntfy.example/family")
    );

    let push = reencrypt
        .reencrypt_batch(PiiTable::PushSubscriptions, None, 100, rewrite)
        .await
        .expect("reencrypt push subscriptions");
    assert_eq!((push.scanned, push.rewritten, push.removed), (2, 0, 1));
    let left = store
        .push_subscriptions(&alice)
        .await
        .expect("subscriptions");
    assert_eq!(
        left.iter()
            .map(|s| (s.id.as_str(), s.endpoint.as_str()))
            .collect::<Vec<_>>(),
        [("sub_b", "https://push/1")]
    );
}

/// A relay's claim (store `a`) holds its task's later events back from another relay (`b`),
/// so one task's events reach the bus in order; it is returned again to the relay that holds
/// it; and once its lease has run out (`age` makes the claim of the given seq as old as its
/// lease, as if relay `a` had died), `b` takes every event over: delayed, never lost.
pub async fn a_claim_holds_back_its_tasks_later_events_and_a_dead_relays_claims_run_out<F, A>(
    [a, b]: [Arc<dyn Store>; 2],
    age: A,
) where
    A: FnOnce(i64) -> F,
    F: std::future::Future<Output = ()>,
{
    let alice = user("alice");
    let first = task(&alice, "Water the plants");
    create(&*a, &first).await;
    let mut edited = first.clone();
    edited.version = 2;
    assert!(update(&*a, &edited).await.expect("update_task"));
    create(&*a, &task(&alice, "Call mum")).await;
    let seqs = seqs(&outbox(&*a).await);
    assert_eq!(seqs.len(), 3);
    let claimed = |rows: Vec<OutboxRow>| rows.iter().map(|r| r.seq).collect::<Vec<_>>();

    let held = a.outbox_claim(1).await.expect("outbox_claim");
    assert_eq!(claimed(held.clone()), [seqs[0]]);
    assert_eq!(
        a.outbox_claim(1).await.expect("outbox_claim"),
        held,
        "a relay gets its own claim again"
    );
    assert_eq!(
        claimed(b.outbox_claim(10).await.expect("outbox_claim")),
        [seqs[2]],
        "the claimed event and its task's later event are held back; the other task's is not"
    );

    age(seqs[0]).await;
    assert_eq!(
        claimed(b.outbox_claim(10).await.expect("outbox_claim")),
        seqs,
        "every event, in seq order, once the dead relay's lease ran out"
    );
    assert!(
        a.outbox_claim(10).await.expect("outbox_claim").is_empty(),
        "the events are now the other relay's"
    );
}
