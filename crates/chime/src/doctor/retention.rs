//! Retention: the policy `chime serve` runs, and what it would delete if it ran now.

use std::time::Duration;

use chime_store::PastKind;
use jiff::Timestamp;

use super::{causes, check, Check, Status};
use crate::backup;
use crate::config::Config;

/// What each kind is called in the check's line.
fn noun(kind: PastKind) -> &'static str {
    match kind {
        PastKind::FinishedTasks => "finished tasks",
        PastKind::History => "history entries",
        PastKind::HistoryDeliveries => "history delivery states",
        PastKind::Occurrences => "occurrence states",
        PastKind::Deliveries => "final deliveries",
        PastKind::ReadInbox => "read inbox items",
        PastKind::ReplyTargets => "SMS reply targets",
    }
}

pub(super) async fn retention_check(config: &Config) -> Check {
    let policy = &config.retention;
    if !policy.enabled() {
        return check(
            Status::Warn,
            "retention",
            "off (retention.interval_seconds = 0): nothing of the past is ever deleted",
        );
    }
    let now = Timestamp::now();
    let counts = match tokio::time::timeout(Duration::from_secs(30), counts(config, now)).await {
        Err(_) => Err("the count took longer than 30 s".to_owned()),
        Ok(counts) => counts,
    };
    let days = |d: u32| {
        if d == 0 {
            "forever".to_owned()
        } else {
            format!("{d} days")
        }
    };
    let kept = format!(
        "every {} s, keeps finished tasks {}, history {}, read inbox items {}",
        policy.interval_seconds,
        days(policy.finished_tasks_days),
        days(policy.history_days),
        days(policy.read_inbox_days)
    );
    match counts {
        Ok(counts) => {
            let would: Vec<String> = counts
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| format!("{n} {}", noun(*kind)))
                .collect();
            let would = if would.is_empty() {
                "nothing".to_owned()
            } else {
                would.join(", ")
            };
            check(
                Status::Ok,
                "retention",
                format!("{kept}; would delete now: {would}"),
            )
        }
        Err(why) => check(
            Status::Warn,
            "retention",
            format!("{kept}; cannot count what it would delete: {why}"),
        ),
    }
}

/// Per kind the policy deletes at all, how many rows it would delete at `now`.
async fn counts(config: &Config, now: Timestamp) -> Result<Vec<(PastKind, u64)>, String> {
    let kinds: Vec<(PastKind, Timestamp)> = PastKind::ALL
        .into_iter()
        .filter_map(|kind| Some((kind, config.retention.cutoff(kind, now)?)))
        .collect();
    if let Some(url) = &config.store.url {
        let store = crate::backends::SharedStore::connect(url, 1)
            .await
            .map_err(|e| causes(&*e))?
            .store();
        let mut out = Vec::new();
        for (kind, cutoff) in kinds {
            let n = store
                .count_past(kind, cutoff, now)
                .await
                .map_err(|e| causes(&e))?;
            out.push((kind, n));
        }
        return Ok(out);
    }
    let path = backup::store_path(&config.data_dir);
    if !path.is_file() {
        return Err(format!("no store at {}", path.display()));
    }
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .map_err(|e| causes(&e))?;
        kinds
            .into_iter()
            .map(|(kind, cutoff)| {
                chime_store::sqlite::retention::count_past(&conn, kind, cutoff, now)
                    .map(|n| (kind, n))
                    .map_err(|e| causes(&e))
            })
            .collect()
    })
    .await
    .map_err(|e| format!("the count panicked: {e}"))?
}
