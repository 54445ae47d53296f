//! What makes a file a usable backup: intact, of a schema version this build can open, with
//! the store's and the bus log's tables. The restore checks it first, `chime doctor` on the
//! live store.

use std::path::Path;

use anyhow::{bail, Context as _};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

/// Tables a store must have to be restored: the store's (migration 1) and the bus log's.
const REQUIRED_TABLES: [&str; 9] = [
    "tasks",
    "schedule",
    "inbox",
    "history",
    "outbox",
    "bus_meta",
    "bus_records",
    "bus_topics",
    "bus_group_offsets",
];

/// What a backup file holds, once verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The store's schema version (`PRAGMA user_version`).
    pub store_schema: i64,
    pub bus_schema: i64,
    pub tasks: i64,
    /// Tasks with an occurrence still to fire.
    pub scheduled: i64,
}

/// Checks that `path` is an intact store of this build: `PRAGMA integrity_check`, a schema
/// version this build can open, the store's and the bus log's tables.
pub fn verify(path: &Path) -> anyhow::Result<Verified> {
    if !path.is_file() {
        bail!("{} is not a file", path.display());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    verify_connection(&conn).with_context(|| format!("{} is not a usable backup", path.display()))
}

/// [`verify`] on an open connection (`chime doctor` uses it on the live store).
pub fn verify_connection(conn: &Connection) -> anyhow::Result<Verified> {
    let mut problems = Vec::new();
    {
        let mut stmt = conn
            .prepare("PRAGMA integrity_check(20)")
            .context("not a SQLite database")?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .context("the integrity check failed")?;
        for row in rows {
            let row = row.context("the integrity check failed")?;
            if row != "ok" {
                problems.push(row);
            }
        }
    }
    if !problems.is_empty() {
        bail!("the integrity check failed: {}", problems.join("; "));
    }
    let store_schema: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = chime_store::sqlite::SCHEMA_VERSION as i64;
    if store_schema == 0 {
        bail!("schema version 0: not a Chime store");
    }
    if store_schema > known {
        bail!(
            "its schema version {store_schema} is newer than this build knows ({known}): \
             restore it with a newer chime"
        );
    }
    let mut missing = Vec::new();
    for table in REQUIRED_TABLES {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )?;
        if !exists {
            missing.push(table);
        }
    }
    if !missing.is_empty() {
        bail!(
            "tables missing: {}: not a store of Chime's embedded default",
            missing.join(", ")
        );
    }
    let bus_schema: i64 = conn
        .query_row(
            "SELECT value FROM bus_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    if bus_schema != chime_bus::log::SCHEMA_VERSION {
        bail!(
            "the bus log's schema version is {bus_schema}, this build knows {}",
            chime_bus::log::SCHEMA_VERSION
        );
    }
    let tasks: i64 = conn.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))?;
    let scheduled: i64 = conn.query_row(
        "SELECT count(*) FROM schedule WHERE due_at IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    Ok(Verified {
        store_schema,
        bus_schema,
        tasks,
        scheduled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_chime_store_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, b"not a database at all, just some bytes").expect("write");
        assert!(verify(&junk).is_err());
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 1;"))
            .expect("other database");
        let error = format!("{:#}", verify(&other).expect_err("not chime"));
        assert!(error.contains("tables missing"), "{error}");
    }
}
