//! A load check of the embedded log, ignored by default (it takes seconds in release, much
//! longer in debug): `cargo test -p chime-bus --release --test log_burst -- --ignored --nocapture`.
//! It publishes a burst of a million messages in batches of 1 000 and drains it with one group,
//! committing every poll, as a role would.

use std::time::Instant;

use chime_bus::log::LogBus;
use chime_bus::{Bus, Message};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "load check; run explicitly in release"]
async fn a_million_messages_publish_and_drain() {
    const TOTAL: usize = 1_000_000;
    const BATCH: usize = 1_000;
    let dir = tempfile::tempdir().expect("temporary directory");
    let bus = LogBus::open(&dir.path().join("bus.sqlite"))
        .await
        .expect("open");
    let mut sub = bus.subscribe("g", &["t"]).await.expect("subscribe");

    let started = Instant::now();
    for batch in 0..TOTAL / BATCH {
        let messages = (0..BATCH)
            .map(|i| Message {
                topic: "t".into(),
                key: format!("task-{}", i % 100),
                payload: format!("{{\"batch\":{batch},\"i\":{i},\"pad\":\"{:0>150}\"}}", i)
                    .into_bytes(),
            })
            .collect();
        bus.publish(messages).await.expect("publish");
    }
    let published = started.elapsed();

    let started = Instant::now();
    let mut received = 0;
    while received < TOTAL {
        let records = sub.poll(BATCH).await.expect("poll");
        sub.commit(&records).await.expect("commit");
        received += records.len();
    }
    let drained = started.elapsed();
    println!(
        "published {TOTAL} in {published:?} ({:.0}/s), drained in {drained:?} ({:.0}/s)",
        TOTAL as f64 / published.as_secs_f64(),
        TOTAL as f64 / drained.as_secs_f64()
    );
}
