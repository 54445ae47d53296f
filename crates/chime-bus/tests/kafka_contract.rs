//! Runs the bus contract suite on the Kafka adapter against a real Kafka-protocol broker on
//! loopback: tansu 0.6.0, one broker per test (memory storage, a free port), killed when the
//! test ends, so tests share nothing and a failing test leaves no process behind.
//!
//! tansu does not create topics on first use (nor do production clusters, as a rule), so the
//! factory's buses create each topic on first use, through the admin API.

mod tansu;

use std::sync::Arc;

use async_trait::async_trait;
use chime_bus::contract::BusFactory;
use chime_bus::kafka::{KafkaBus, KafkaOptions};
use chime_bus::Bus;

use tansu::Tansu;

/// A broker that lives as long as the factory. Opening again is a restart of the client
/// side: a new producer and new consumers on the same broker.
struct KafkaFactory {
    broker: Tansu,
}

impl KafkaFactory {
    async fn start() -> Self {
        Self {
            broker: Tansu::start().await,
        }
    }
}

#[async_trait]
impl BusFactory for KafkaFactory {
    async fn open(&self) -> Arc<dyn Bus> {
        Arc::new(KafkaBus::connect(self.broker.options()).expect("connect to tansu"))
    }
}

chime_bus::bus_contract_tests!(KafkaFactory::start().await);

/// `create_topics` is what the binary calls on every start: calling it on topics that exist
/// is a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_succeeds_when_the_topics_already_exist() {
    let broker = Tansu::start().await;
    let bus = KafkaBus::connect(KafkaOptions {
        create_topics_on_use: false,
        ..broker.options()
    })
    .expect("connect");
    let topics = [
        "task-events",
        "schedule-ticks",
        "execute-task",
        "notification-sent",
    ];
    bus.create_topics(&topics).await.expect("create");
    bus.create_topics(&topics).await.expect("create again");
}

/// Two deployments on one broker, told apart by their prefixes: each reads only its own
/// events, under the topic names it gave, and commits under its own group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buses_with_different_prefixes_share_a_broker_without_reading_each_other() {
    use chime_bus::Message;

    let broker = Tansu::start().await;
    let bus = |prefix: &str| {
        KafkaBus::connect(KafkaOptions {
            prefix: prefix.to_owned(),
            ..broker.options()
        })
        .expect("connect")
    };
    let (blue, green) = (bus("blue."), bus("green."));
    let message = |payload: &str| Message {
        topic: "task-events".to_owned(),
        key: "tsk_1".to_owned(),
        payload: payload.as_bytes().to_vec(),
    };
    blue.publish(vec![message("blue's")])
        .await
        .expect("publish");
    green
        .publish(vec![message("green's")])
        .await
        .expect("publish");
    for (bus, own) in [(&blue, "blue's"), (&green, "green's")] {
        let mut subscription = bus
            .subscribe("history", &["task-events"])
            .await
            .expect("join");
        let records = subscription.poll(10).await.expect("poll");
        let seen: Vec<(&str, &[u8])> = records
            .iter()
            .map(|r| (r.topic.as_str(), r.payload.as_slice()))
            .collect();
        assert_eq!(seen, [("task-events", own.as_bytes())]);
        subscription.commit(&records).await.expect("commit");
    }
}

/// A figure, not a check (ignored by default): publish throughput, and the latency from the
/// start of a publish of one message to the poll that returns it, against tansu on loopback.
/// `cargo test -p chime-bus --features kafka --test kafka_contract -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run explicitly"]
async fn publish_throughput_and_publish_to_poll_latency() {
    use std::time::{Duration, Instant};

    use chime_bus::Message;

    const TOTAL: usize = 20_000;
    const BATCH: usize = 500;
    const ROUND_TRIPS: usize = 500;
    let broker = Tansu::start().await;
    let bus = KafkaBus::connect(broker.options()).expect("connect");
    let payload = vec![b'x'; 200];
    let message = |topic: &str, i: usize| Message {
        topic: topic.to_owned(),
        key: format!("tsk_{}", i % 100),
        payload: payload.clone(),
    };
    bus.create_topics(&["bench-throughput", "bench-latency"])
        .await
        .expect("topics");

    let started = Instant::now();
    for batch in 0..TOTAL / BATCH {
        let messages = (0..BATCH)
            .map(|i| message("bench-throughput", batch * BATCH + i))
            .collect();
        bus.publish(messages).await.expect("publish");
    }
    let elapsed = started.elapsed();
    println!(
        "publish: {TOTAL} messages of 200 bytes in batches of {BATCH}: {elapsed:?}, {:.0} msgs/s",
        TOTAL as f64 / elapsed.as_secs_f64()
    );

    let mut sub = bus
        .subscribe("bench-latency", &["bench-latency"])
        .await
        .expect("subscribe");
    let mut latencies = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS {
        let started = Instant::now();
        bus.publish(vec![message("bench-latency", i)])
            .await
            .expect("publish");
        let records = sub.poll(10).await.expect("poll");
        latencies.push(started.elapsed());
        assert_eq!(records.len(), 1);
        sub.commit(&records).await.expect("commit");
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "publish->poll, one message at a time, {ROUND_TRIPS} times: p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or(Duration::ZERO)
    );
}
