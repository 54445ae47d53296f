//! Network partitions, the small run: `scripts/partition-drill --scenarios quick` with the
//! `chime` this test build made. The drill puts an execution and a notification instance in
//! network namespaces of their own (veth pairs to the store, the broker and the receiver), cuts
//! one from PostgreSQL, the broker or both while reminders fall due (and some are deleted just
//! before), heals, and checks the ledger from the store and a webhook receiver: nothing lost,
//! nothing doubled, nothing fired after its delete returned. The drill's documentation says
//! how; the full set of scenarios (5, 20 and 60 s cuts of each link, a cut during a commit and
//! one longer than a delivery's lease) is `scripts/partition-drill --scenarios all`, with its
//! figures in BENCHMARKS.md.
//!
//! Needs root (network namespaces), iproute2, PostgreSQL 15's server programs (`PG_BIN`),
//! `psql` and tansu 0.6.0 (`CHIME_TANSU`, the PATH or ~/.cargo/bin), as the test command
//! installs them. About a minute and a half.

use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn partitions_from_the_store_and_the_broker_lose_nothing_double_nothing_and_respect_deletes() {
    // It loads both cores for its run: not beside another heavy test.
    let _heavy = crate::helpers::HEAVY.blocking_lock();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/partition-drill");
    let output = Command::new(&script)
        .args(["--scenarios", "quick", "--reminders", "100"])
        .env("CHIME_BIN", env!("CARGO_BIN_EXE_chime"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): it needs python3", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("partition: "))
        .collect();
    assert!(
        output.status.success(),
        "the drill failed (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
    assert_eq!(lines.len(), 3, "one line per scenario:\n{stdout}\n{stderr}");
    for line in lines {
        let figure = |key: &str| -> f64 {
            line.split_whitespace()
                .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no number `{key}` in `{line}`"))
        };
        assert_eq!(figure("lost"), 0.0, "{line}");
        assert_eq!(figure("duplicates"), 0.0, "{line}");
        assert_eq!(figure("fired_after_delete"), 0.0, "{line}");
        // Every reminder was created before its cut: the scenario ran as written.
        assert_eq!(figure("created"), figure("reminders"), "{line}");
        assert_eq!(figure("refused"), 0.0, "{line}");
    }
}
