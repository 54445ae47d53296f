//! The contract every bus adapter passes: one suite, run against each adapter (the embedded
//! log and Kafka), in the manner of garage's `test_suite(db)`.
//!
//! Each check is a public async function taking a [`BusFactory`]; [`bus_contract_tests!`]
//! expands to one `#[tokio::test]` per check, so an adapter's test file is a few lines:
//!
//! ```ignore
//! chime_bus::bus_contract_tests!(MyFactory::new());
//! ```
//!
//! Rules the checks follow, so they hold on every adapter:
//! - Topic and group names are unique per test and per run (a shared broker keeps state
//!   between runs).
//! - Order is only asserted per (topic, key) and offsets only per (topic, partition), which is
//!   all a keyed, partitioned broker promises.
//! - Nothing sleeps to wait for something. Every wait is for an event, under a generous
//!   [`GUARD`] timeout that only turns a hang into a failure. The one exception is asserting
//!   that a poll stays pending on an empty topic, which can only be observed over some time
//!   ([`PENDING`]); a slow machine makes that check weaker, never flaky.
//! - A restart is: drop every subscription and the bus, then [`BusFactory::open`] again.
//!
//! These functions are test code: they panic on any failure.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::{Bus, Message, Record, Subscription};

/// Opens the adapter under test.
#[async_trait]
pub trait BusFactory: Send + Sync {
    /// Opens the bus. Opening again (after the previous bus was dropped) must give the same
    /// durable storage: that is how the suite simulates a restart.
    async fn open(&self) -> Arc<dyn Bus>;
}

/// Longest wait for something that should happen; reaching it fails the test.
pub const GUARD: Duration = Duration::from_secs(10);

/// How long a poll on an empty topic is watched to check that it stays pending.
pub const PENDING: Duration = Duration::from_millis(100);

/// Expands to one `#[tokio::test]` per contract check, each opening its own factory from
/// `$factory` (an expression evaluated once per test). The calling crate needs `tokio` with
/// the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! bus_contract_tests {
    ($factory:expr) => {
        $crate::bus_contract_tests!(@each $factory;
            published_messages_are_consumed_in_publish_order_per_topic_and_key,
            a_subscription_receives_only_its_own_topics,
            two_groups_each_receive_every_message,
            a_group_resumes_after_its_committed_offset_after_a_restart,
            records_polled_but_not_committed_are_delivered_again_after_a_restart,
            poll_waits_for_a_publish_and_wakes_without_sleeping,
            a_cancelled_poll_loses_no_records,
            poll_returns_at_most_max_records,
            a_batch_of_ten_thousand_messages_round_trips_intact,
            commit_never_moves_a_group_backwards,
            retention_never_deletes_records_a_group_has_not_committed,
            lag_counts_the_records_a_group_has_not_committed_yet,
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

/// Messages published in several batches, on two topics and three keys, come back in publish
/// order per (topic, key), with increasing offsets per (topic, partition).
pub async fn published_messages_are_consumed_in_publish_order_per_topic_and_key(
    f: &dyn BusFactory,
) {
    let names = Names::new("order");
    let (a, b) = (names.topic("a"), names.topic("b"));
    let bus = f.open().await;
    let mut published = Vec::new();
    for batch in 0..5 {
        let messages: Vec<Message> = (0..12)
            .map(|i| {
                let topic = if i % 2 == 0 { &a } else { &b };
                message(topic, &format!("task-{}", i % 3), format!("{batch}-{i}"))
            })
            .collect();
        published.extend(messages.iter().cloned());
        publish(&*bus, messages).await;
    }

    let mut sub = subscribe(&*bus, &names.group("g"), &[&a, &b]).await;
    let records = poll_exactly(&mut *sub, published.len(), 7).await;

    assert_eq!(
        by_topic_and_key(records.iter().map(|r| (&r.topic, &r.key, &r.payload))),
        by_topic_and_key(published.iter().map(|m| (&m.topic, &m.key, &m.payload))),
        "per (topic, key), records come back exactly once and in publish order"
    );
    assert_offsets_increase(&records);
}

/// Messages of topics a subscription did not ask for never reach it.
pub async fn a_subscription_receives_only_its_own_topics(f: &dyn BusFactory) {
    let names = Names::new("only");
    let (mine, other) = (names.topic("mine"), names.topic("other"));
    let bus = f.open().await;
    let mut sub = subscribe(&*bus, &names.group("g"), &[&mine]).await;
    publish(&*bus, vec![message(&other, "k", "not for me")]).await;
    publish(
        &*bus,
        vec![message(&mine, "k", "first"), message(&other, "k", "no")],
    )
    .await;
    publish(&*bus, vec![message(&mine, "k", "last")]).await;

    let records = poll_exactly(&mut *sub, 2, 10).await;
    assert!(records.iter().all(|r| r.topic == mine), "{records:?}");
    assert_eq!(payloads(&records), ["first", "last"]);
}

/// Two groups on the same topic are independent: each receives every message.
pub async fn two_groups_each_receive_every_message(f: &dyn BusFactory) {
    let names = Names::new("groups");
    let topic = names.topic("t");
    let bus = f.open().await;
    let messages: Vec<Message> = (0..20)
        .map(|i| message(&topic, &format!("task-{}", i % 4), format!("m{i}")))
        .collect();
    publish(&*bus, messages.clone()).await;

    let mut first = subscribe(&*bus, &names.group("first"), &[&topic]).await;
    let mut second = subscribe(&*bus, &names.group("second"), &[&topic]).await;
    let from_first = poll_exactly(&mut *first, messages.len(), 6).await;
    commit(&mut *first, &from_first).await;
    let from_second = poll_exactly(&mut *second, messages.len(), 20).await;

    let expected = by_topic_and_key(messages.iter().map(|m| (&m.topic, &m.key, &m.payload)));
    for records in [&from_first, &from_second] {
        assert_eq!(
            by_topic_and_key(records.iter().map(|r| (&r.topic, &r.key, &r.payload))),
            expected
        );
    }
}

/// After a restart, a group continues right after what it committed.
pub async fn a_group_resumes_after_its_committed_offset_after_a_restart(f: &dyn BusFactory) {
    let names = Names::new("resume");
    let (topic, group) = (names.topic("t"), names.group("g"));
    let bus = f.open().await;
    publish(&*bus, numbered(&topic, 0..6)).await;
    let mut sub = subscribe(&*bus, &group, &[&topic]).await;
    let records = poll_exactly(&mut *sub, 6, 6).await;
    commit(&mut *sub, &records[..4]).await;
    drop(sub);
    drop(bus);

    let bus = f.open().await;
    publish(&*bus, numbered(&topic, 6..8)).await;
    let mut sub = subscribe(&*bus, &group, &[&topic]).await;
    let records = poll_exactly(&mut *sub, 4, 10).await;
    assert_eq!(payloads(&records), ["4", "5", "6", "7"]);
}

/// Polling is not handling: what a group polled but did not commit comes back after a
/// restart, so a crash between the two loses nothing.
pub async fn records_polled_but_not_committed_are_delivered_again_after_a_restart(
    f: &dyn BusFactory,
) {
    let names = Names::new("redeliver");
    let (topic, group) = (names.topic("t"), names.group("g"));
    let bus = f.open().await;
    publish(&*bus, numbered(&topic, 0..5)).await;
    let mut sub = subscribe(&*bus, &group, &[&topic]).await;
    let records = poll_exactly(&mut *sub, 5, 5).await;
    commit(&mut *sub, &records[..2]).await;
    drop(sub);
    drop(bus);

    let bus = f.open().await;
    let mut sub = subscribe(&*bus, &group, &[&topic]).await;
    let again = poll_exactly(&mut *sub, 3, 10).await;
    assert_eq!(payloads(&again), ["2", "3", "4"]);
    assert_eq!(
        again.iter().map(|r| r.offset).collect::<Vec<_>>(),
        records[2..].iter().map(|r| r.offset).collect::<Vec<_>>(),
        "redelivered records keep their offsets"
    );
}

/// A poll on a topic with nothing to read stays pending, and a publish wakes it.
pub async fn poll_waits_for_a_publish_and_wakes_without_sleeping(f: &dyn BusFactory) {
    let names = Names::new("wake");
    let topic = names.topic("t");
    let bus = f.open().await;
    let mut sub = subscribe(&*bus, &names.group("g"), &[&topic]).await;
    let mut poller = tokio::spawn(async move {
        let records = sub.poll(10).await.expect("poll");
        (sub, records)
    });
    assert!(
        tokio::time::timeout(PENDING, &mut poller).await.is_err(),
        "poll returned although nothing was published"
    );

    publish(&*bus, vec![message(&topic, "k", "wake up")]).await;
    let (_sub, records) = tokio::time::timeout(GUARD, poller)
        .await
        .expect("a publish wakes a waiting poll")
        .expect("poll task");
    assert_eq!(payloads(&records), ["wake up"]);
}

/// Dropping a poll future (as `select!` does when shutdown wins) loses no records: whatever
/// it had not returned is returned by the next poll.
pub async fn a_cancelled_poll_loses_no_records(f: &dyn BusFactory) {
    let names = Names::new("cancel");
    let topic = names.topic("t");
    let bus = f.open().await;
    let mut sub = subscribe(&*bus, &names.group("g"), &[&topic]).await;

    // Cancelled while waiting on an empty topic.
    let waited = tokio::time::timeout(PENDING, sub.poll(10)).await;
    assert!(
        waited.is_err(),
        "poll returned although nothing was published"
    );

    publish(&*bus, numbered(&topic, 0..3)).await;
    // Cancelled right after its first step, while records are available.
    let mut received = Vec::new();
    tokio::select! {
        biased;
        polled = sub.poll(10) => received.extend(polled.expect("poll")),
        () = std::future::ready(()) => {}
    }
    while received.len() < 3 {
        received.extend(poll_once(&mut *sub, 10).await);
    }
    assert_eq!(payloads(&received), ["0", "1", "2"]);
}

/// `poll(max)` never returns more than `max` records, and later polls return the rest.
pub async fn poll_returns_at_most_max_records(f: &dyn BusFactory) {
    let names = Names::new("max");
    let topic = names.topic("t");
    let bus = f.open().await;
    publish(&*bus, numbered(&topic, 0..10)).await;
    let mut sub = subscribe(&*bus, &names.group("g"), &[&topic]).await;

    let records = poll_exactly(&mut *sub, 10, 3).await;
    assert_eq!(
        payloads(&records),
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
    publish(&*bus, numbered(&topic, 10..12)).await;
    let one = poll_once(&mut *sub, 1).await;
    assert_eq!(payloads(&one), ["10"]);
}

/// A batch of 10 000 messages in one publish comes back byte for byte: empty and binary
/// payloads, empty and non-ASCII keys, and per-key order.
pub async fn a_batch_of_ten_thousand_messages_round_trips_intact(f: &dyn BusFactory) {
    const COUNT: usize = 10_000;
    let names = Names::new("batch");
    let topic = names.topic("t");
    let bus = f.open().await;
    let keys = ["", "task-1", "tâche-é-🔔", "task-3", "task-4"];
    let messages: Vec<Message> = (0..COUNT)
        .map(|i| {
            let len = i % 300;
            let payload: Vec<u8> = (0..len).map(|j| ((i * 31 + j * 7) % 256) as u8).collect();
            Message {
                topic: topic.clone(),
                key: keys[i % keys.len()].to_owned(),
                payload,
            }
        })
        .collect();
    publish(&*bus, messages.clone()).await;

    let mut sub = subscribe(&*bus, &names.group("g"), &[&topic]).await;
    let records = poll_exactly(&mut *sub, COUNT, 1_000).await;
    assert!(records.iter().all(|r| r.topic == topic));
    assert_eq!(
        by_topic_and_key(records.iter().map(|r| (&r.topic, &r.key, &r.payload))),
        by_topic_and_key(messages.iter().map(|m| (&m.topic, &m.key, &m.payload))),
        "every message comes back once, intact, in order per key"
    );
    assert_offsets_increase(&records);
}

/// Committing records older than an earlier commit does not move the group back.
pub async fn commit_never_moves_a_group_backwards(f: &dyn BusFactory) {
    let names = Names::new("backwards");
    let (topic, group) = (names.topic("t"), names.group("g"));
    let bus = f.open().await;
    // A group that joins and never commits keeps every record, so that an adapter's retention
    // cannot hide a group that moved back (the records it would re-read must still exist).
    drop(subscribe(&*bus, &names.group("holder"), &[&topic]).await);
    publish(&*bus, numbered(&topic, 0..10)).await;
    let mut sub = subscribe(&*bus, &group, &[&topic]).await;
    let records = poll_exactly(&mut *sub, 10, 10).await;
    commit(&mut *sub, &records[..8]).await;
    commit(&mut *sub, &records[..3]).await;
    commit(&mut *sub, &[]).await;
    drop(sub);
    drop(bus);

    let bus = f.open().await;
    let mut sub = subscribe(&*bus, &group, &[&topic]).await;
    let rest = poll_exactly(&mut *sub, 2, 10).await;
    assert_eq!(payloads(&rest), ["8", "9"]);
}

/// However the adapter cleans up, it never deletes a record that some group has not
/// committed: not for a group that committed part of a topic, nor for one that subscribed and
/// never committed, even when another group has committed everything.
pub async fn retention_never_deletes_records_a_group_has_not_committed(f: &dyn BusFactory) {
    let names = Names::new("retention");
    let topic = names.topic("t");
    let (done, partway, idle) = (
        names.group("done"),
        names.group("partway"),
        names.group("idle"),
    );
    let bus = f.open().await;
    let idle_sub = subscribe(&*bus, &idle, &[&topic]).await;
    drop(idle_sub);
    publish(&*bus, numbered(&topic, 0..10)).await;

    let mut sub = subscribe(&*bus, &partway, &[&topic]).await;
    let records = poll_exactly(&mut *sub, 10, 10).await;
    commit(&mut *sub, &records[..4]).await;
    drop(sub);
    // Commit everything for one group, several times, so an adapter that cleans up on commit
    // (or every few commits) has had its chance.
    let mut sub = subscribe(&*bus, &done, &[&topic]).await;
    let records = poll_exactly(&mut *sub, 10, 10).await;
    for end in 1..=records.len() {
        commit(&mut *sub, &records[..end]).await;
    }
    drop(sub);
    drop(bus);

    let bus = f.open().await;
    publish(&*bus, numbered(&topic, 10..11)).await;
    let mut sub = subscribe(&*bus, &partway, &[&topic]).await;
    let rest = poll_exactly(&mut *sub, 7, 10).await;
    assert_eq!(payloads(&rest), ["4", "5", "6", "7", "8", "9", "10"]);
    drop(sub);
    let mut sub = subscribe(&*bus, &idle, &[&topic]).await;
    let all = poll_exactly(&mut *sub, 11, 20).await;
    assert_eq!(
        payloads(&all),
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    );
}

/// `lag`, where an adapter reports one, is what the subscription's group has not committed
/// on its topics: polling does not lower it, committing does, another group's commits and
/// other topics do not count. An adapter that reports `None` passes (the method is optional).
pub async fn lag_counts_the_records_a_group_has_not_committed_yet(f: &dyn BusFactory) {
    let names = Names::new("lag");
    let (a, b, other) = (names.topic("a"), names.topic("b"), names.topic("other"));
    let bus = f.open().await;
    let mut sub = subscribe(&*bus, &names.group("g"), &[&a, &b]).await;
    let mut neighbour = subscribe(&*bus, &names.group("n"), &[&a]).await;
    if lag(&mut *sub).await.is_none() {
        return;
    }
    assert_eq!(lag(&mut *sub).await, Some(0), "nothing published yet");

    publish(&*bus, numbered(&a, 0..5)).await;
    publish(&*bus, numbered(&b, 0..3)).await;
    publish(&*bus, numbered(&other, 0..7)).await;
    assert_eq!(
        lag(&mut *sub).await,
        Some(8),
        "both topics count, others do not"
    );

    let records = poll_exactly(&mut *sub, 8, 8).await;
    assert_eq!(lag(&mut *sub).await, Some(8), "polling is not committing");

    let theirs = poll_exactly(&mut *neighbour, 5, 5).await;
    commit(&mut *neighbour, &theirs).await;
    assert_eq!(lag(&mut *neighbour).await, Some(0));
    assert_eq!(
        lag(&mut *sub).await,
        Some(8),
        "another group's commit does not count"
    );

    let first_of_a: Vec<Record> = records
        .iter()
        .filter(|r| r.topic == a)
        .take(2)
        .cloned()
        .collect();
    commit(&mut *sub, &first_of_a).await;
    assert_eq!(lag(&mut *sub).await, Some(6));
    commit(&mut *sub, &records).await;
    assert_eq!(lag(&mut *sub).await, Some(0));
}

/// Topic and group names unique to one test in one run.
struct Names {
    prefix: String,
}

impl Names {
    fn new(test: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self {
            prefix: format!("contract-{test}-{}-{nanos}-{n}", std::process::id()),
        }
    }

    fn topic(&self, name: &str) -> String {
        format!("{}-topic-{name}", self.prefix)
    }

    fn group(&self, name: &str) -> String {
        format!("{}-group-{name}", self.prefix)
    }
}

fn message(topic: &str, key: &str, payload: impl Into<Vec<u8>>) -> Message {
    Message {
        topic: topic.to_owned(),
        key: key.to_owned(),
        payload: payload.into(),
    }
}

/// Messages with payloads "i" for i in `range`, all on one key (so one partition, so the
/// offsets of a partitioned broker are comparable too).
fn numbered(topic: &str, range: std::ops::Range<usize>) -> Vec<Message> {
    range
        .map(|i| message(topic, "task-1", i.to_string()))
        .collect()
}

fn payloads(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect()
}

/// Payloads grouped per (topic, key), in the order given.
fn by_topic_and_key<'a>(
    items: impl Iterator<Item = (&'a String, &'a String, &'a Vec<u8>)>,
) -> BTreeMap<(&'a str, &'a str), Vec<&'a [u8]>> {
    let mut grouped: BTreeMap<(&str, &str), Vec<&[u8]>> = BTreeMap::new();
    for (topic, key, payload) in items {
        grouped.entry((topic, key)).or_default().push(payload);
    }
    grouped
}

fn assert_offsets_increase(records: &[Record]) {
    let mut last: HashMap<(&str, u32), u64> = HashMap::new();
    for r in records {
        if let Some(previous) = last.insert((&r.topic, r.partition), r.offset) {
            assert!(
                r.offset > previous,
                "offsets increase per (topic, partition): {previous} then {} on {}/{}",
                r.offset,
                r.topic,
                r.partition
            );
        }
    }
}

async fn publish(bus: &dyn Bus, messages: Vec<Message>) {
    tokio::time::timeout(GUARD, bus.publish(messages))
        .await
        .expect("publish finishes")
        .expect("publish");
}

async fn subscribe(bus: &dyn Bus, group: &str, topics: &[&str]) -> Box<dyn Subscription> {
    tokio::time::timeout(GUARD, bus.subscribe(group, topics))
        .await
        .expect("subscribe finishes")
        .expect("subscribe")
}

async fn commit(sub: &mut dyn Subscription, records: &[Record]) {
    tokio::time::timeout(GUARD, sub.commit(records))
        .await
        .expect("commit finishes")
        .expect("commit");
}

async fn lag(sub: &mut dyn Subscription) -> Option<u64> {
    tokio::time::timeout(GUARD, sub.lag())
        .await
        .expect("lag finishes")
        .expect("lag")
}

/// One poll, which must return between 1 and `max` records within [`GUARD`].
async fn poll_once(sub: &mut dyn Subscription, max: usize) -> Vec<Record> {
    let records = tokio::time::timeout(GUARD, sub.poll(max))
        .await
        .expect("poll returns records that are available")
        .expect("poll");
    assert!(
        !records.is_empty() && records.len() <= max,
        "poll({max}) returned {} records",
        records.len()
    );
    records
}

/// Polls (`max` at a time) until exactly `count` records have arrived; more is a failure.
async fn poll_exactly(sub: &mut dyn Subscription, count: usize, max: usize) -> Vec<Record> {
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        records.extend(poll_once(sub, max.min(count - records.len())).await);
    }
    records
}
