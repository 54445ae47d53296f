//! `chime bench sqlite`: the machine's own limit, bare SQLite commits on this disk with no
//! Chime code involved, to read the other scenarios' figures against.

use std::time::Instant;

use super::positive;

/// Bare SQLite on this disk, WAL and `synchronous=NORMAL` like the store: one-row
/// transactions per second, then rows per second committed in batches of several sizes.
pub(super) fn sqlite_limits(rows: usize) -> anyhow::Result<()> {
    positive("--rows", rows)?;
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("limits.sqlite"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE schedule (task_id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
             version INTEGER NOT NULL, body TEXT, due_at INTEGER, seq INTEGER NOT NULL)
             WITHOUT ROWID;
         CREATE INDEX schedule_by_due ON schedule (due_at) WHERE due_at IS NOT NULL;",
    )?;
    let body = r#"{"name":"bench","startDate":"2026-12-01T09:00:00Z","timeZone":"UTC","notify":{"inApp":true}}"#;
    let mut next = 0usize;
    let mut insert = |conn: &rusqlite::Connection, n: usize| -> anyhow::Result<()> {
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                 VALUES (?1, 'bench', 1, ?2, ?3, 0)",
            )?;
            for _ in 0..n {
                next += 1;
                stmt.execute(rusqlite::params![
                    chime_core::TaskId::new().to_string(),
                    body,
                    next as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    };
    println!("| rows per commit | commits/s | rows/s |");
    println!("|---|---|---|");
    for per_commit in [1usize, 10, 100, 1000, 10_000] {
        let commits = (rows / per_commit).max(1);
        let started = Instant::now();
        for _ in 0..commits {
            insert(&conn, per_commit)?;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {per_commit} | {:.0} | {:.0} |",
            commits as f64 / secs,
            (commits * per_commit) as f64 / secs
        );
    }
    Ok(())
}
