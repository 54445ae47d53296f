//! The PostgreSQL disaster drill, `scripts/pg-failover-drill`, run with the `chime` this test
//! build made: two PostgreSQL 15 clusters of its own (a primary and a synchronous streaming
//! replica made by `pg_basebackup -R`), `chime serve` on the primary through a TCP forwarder
//! (what a Service or VIP is in a real deployment), the primary SIGKILLed while reminders are
//! being created and are falling due, the replica promoted and the forwarder switched to it.
//! The script checks from outside (the promoted database, a webhook receiver) and prints one
//! line of figures, which this test reads: no acknowledged reminder lost, none notified twice.
//!
//! How the drill works, and why each choice, is the script's own documentation; its figures
//! are in docs/backups.md ("Standby and failover"). It needs PostgreSQL 15's server binaries
//! (`PG_BIN`, default /usr/lib/postgresql/15/bin), `psql` and python3; it never touches the
//! PostgreSQL on 5432 that the other tests use. About 40 s.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Longer than the script's own deadlines (it fails by itself well before): only a hung
/// script runs into this.
const LIMIT: Duration = Duration::from_secs(600);

/// Runs the drill and returns its figures line, parsed, and that line.
fn drill(reminders: usize) -> (HashMap<String, f64>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-failover-drill");
    let child = Command::new(&script)
        .args(["--reminders", &reminders.to_string(), "--window", "20"])
        .env("CHIME_BIN", env!("CARGO_BIN_EXE_chime"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): it needs python3", script.display()));
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(LIMIT) {
        Ok(output) => output.expect("the drill's output"),
        Err(_) => {
            // SIGTERM, not SIGKILL: the script stops its servers on the way out.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let output = finished.recv().expect("the drill ends").expect("output");
            panic!(
                "the drill ran past {LIMIT:?}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("drill: "))
        .unwrap_or_else(|| {
            panic!(
                "the drill printed no figures (exit {:?}):\n{stdout}\n{stderr}",
                output.status.code()
            )
        })
        .to_owned();
    assert!(
        output.status.success(),
        "the drill failed (exit {:?}): {line}\n{stderr}",
        output.status.code()
    );
    let figures = line["drill: ".len()..]
        .split_whitespace()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("`{pair}` in `{line}` is not key=value"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("`{pair}` in `{line}` is not a number"));
            (key.to_owned(), value)
        })
        .collect();
    (figures, line)
}

#[test]
fn a_postgresql_failover_under_load_loses_no_acknowledged_reminder_and_notifies_none_twice() {
    // It loads both cores for its run and measures time: not beside another heavy test.
    let _heavy = crate::helpers::HEAVY.blocking_lock();
    let reminders = 300;
    let (figures, line) = drill(reminders);
    eprintln!("{line}");
    let figure = |key: &str| {
        *figures
            .get(key)
            .unwrap_or_else(|| panic!("no `{key}` in `{line}`"))
    };
    assert_eq!(figure("acknowledged"), reminders as f64, "{line}");
    assert_eq!(figure("lost"), 0.0, "{line}");
    assert_eq!(figure("duplicates"), 0.0, "{line}");
    // The kill fell inside the window: occurrences fired through each server.
    assert!(figure("fired_before_kill") > 0.0, "{line}");
    assert!(figure("fired_after_kill") > 0.0, "{line}");
    assert!(figure("resumed_after_ms") >= 0.0, "{line}");
}
