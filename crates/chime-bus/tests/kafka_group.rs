//! What the Kafka adapter adds to the contract: a group with several members (the embedded
//! log allows one per group, so the shared suite cannot check this). Against tansu on
//! loopback, like the contract suite.

mod tansu;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chime_bus::contract::GUARD;
use chime_bus::kafka::KafkaBus;
use chime_bus::{Bus, Message, Record};

use tansu::Tansu;

/// Two members of one group split the topic's partitions, and between them receive every
/// message once. When one leaves without committing, the other takes its partitions over
/// from the group's committed offsets and receives what the leaver had not committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_one_group_share_the_partitions_and_take_over_when_one_leaves() {
    share_and_take_over(&[]).await;
}

/// The same with incremental rebalancing (`cooperative-sticky`), which the settings may
/// choose: only the partitions that move are taken away, and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_and_take_over_with_incremental_rebalancing_too() {
    share_and_take_over(&[("partition.assignment.strategy", "cooperative-sticky")]).await;
}

async fn share_and_take_over(settings: &[(&str, &str)]) {
    let broker = Tansu::start().await;
    let options = chime_bus::kafka::KafkaOptions {
        settings: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..broker.options()
    };
    let bus = Arc::new(KafkaBus::connect(options).expect("connect"));
    let (topic, group) = ("shared", "role");
    bus.create_topics(&[topic]).await.expect("topic");
    let mut first = bus.subscribe(group, &[topic]).await.expect("first member");

    // The second member's join makes the group rebalance, and the first member takes part
    // only while it polls (as a role does): it polls until the second has joined.
    let mut joining = tokio::spawn({
        let bus = bus.clone();
        async move { bus.subscribe(group, &[topic]).await }
    });
    let mut second = tokio::time::timeout(GUARD, async {
        tokio::select! {
            joined = &mut joining => joined.expect("join task").expect("second member"),
            polled = first.poll(10) => panic!("nothing was published: {polled:?}"),
        }
    })
    .await
    .expect("the second member joins");

    let messages: Vec<Message> = (0..60)
        .map(|i| Message {
            topic: topic.to_owned(),
            key: format!("task-{}", i % 20),
            payload: i.to_string().into_bytes(),
        })
        .collect();
    bus.publish(messages.clone()).await.expect("publish");

    let (mut from_first, mut from_second) = (Vec::new(), Vec::new());
    tokio::time::timeout(GUARD, async {
        while from_first.len() + from_second.len() < messages.len() {
            tokio::select! {
                polled = first.poll(100) => from_first.extend(polled.expect("poll")),
                polled = second.poll(100) => from_second.extend(polled.expect("poll")),
            }
        }
    })
    .await
    .expect("every message arrives");
    assert_eq!(
        from_first.len() + from_second.len(),
        messages.len(),
        "once each"
    );
    assert!(!from_first.is_empty() && !from_second.is_empty());
    let partitions =
        |records: &[Record]| -> BTreeSet<u32> { records.iter().map(|r| r.partition).collect() };
    assert!(
        partitions(&from_first).is_disjoint(&partitions(&from_second)),
        "a partition belongs to one member"
    );
    let mut all: Vec<Record> = from_first.iter().chain(&from_second).cloned().collect();
    all.sort_by_key(|r| (r.partition, r.offset));
    assert_eq!(per_key(&all), per_key_messages(&messages));

    second.commit(&from_second).await.expect("commit");
    drop(first);
    let mut taken_over = Vec::new();
    tokio::time::timeout(GUARD, async {
        while taken_over.len() < from_first.len() {
            taken_over.extend(second.poll(100).await.expect("poll"));
        }
    })
    .await
    .expect("the remaining member receives what the leaver had not committed");
    let payloads = |records: &[Record]| -> BTreeSet<Vec<u8>> {
        records.iter().map(|r| r.payload.clone()).collect()
    };
    assert_eq!(payloads(&taken_over), payloads(&from_first));
}

fn per_key(records: &[Record]) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut grouped: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for r in records {
        grouped
            .entry(r.key.clone())
            .or_default()
            .push(r.payload.clone());
    }
    grouped
}

fn per_key_messages(messages: &[Message]) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut grouped: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for m in messages {
        grouped
            .entry(m.key.clone())
            .or_default()
            .push(m.payload.clone());
    }
    grouped
}
