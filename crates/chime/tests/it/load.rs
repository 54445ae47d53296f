//! Many SSE inbox clients and writers at once (the short version of `chime bench load`, whose
//! full-size figures are in BENCHMARKS.md): against the real binary on loopback, no request or
//! stream fails, every client receives every notification of its user exactly once, and the
//! server's peak resident memory stays bounded.

use std::path::Path;

use chime::bench::load::{measure, LoadArgs};

/// The server's peak RSS allowed for this size: a few times what it uses, far below what a
/// buffer per client per notification or a leak per connection would take.
const PEAK_RSS_BOUND: u64 = 256 * 1024 * 1024;

#[tokio::test]
async fn a_hundred_sse_clients_and_twenty_writers_get_every_notification_with_no_error() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let args = LoadArgs {
        clients: 100,
        writers: 20,
        seconds: 4.0,
        users: 20,
        write_interval_ms: 100,
        due_in: 1.5,
    };
    let report = measure(&args, Path::new(env!("CARGO_BIN_EXE_chime")))
        .await
        .expect("load run");
    report.print();
    assert!(report.errors.is_empty(), "errors: {:#?}", report.errors);
    assert!(
        report.created >= args.writers,
        "only {} created",
        report.created
    );
    // 100 clients over 20 users: each reminder reaches its user's 5 clients.
    assert_eq!(report.expected, report.created * 5);
    assert_eq!(report.received, report.expected);
    if let Some(peak) = report.peak_rss_bytes {
        assert!(peak < PEAK_RSS_BOUND, "server peak RSS {} MiB", peak >> 20);
    }
}
