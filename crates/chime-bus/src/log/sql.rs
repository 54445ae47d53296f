//! The blocking SQLite half of the embedded log: schema, append, fetch, offsets, retention.
//!
//! Everything here is synchronous and takes a `&Connection`, so it can be unit-tested without a
//! runtime and called from `spawn_blocking` by the async half in [`super`]. Statements on the
//! hot paths (append, fetch) go through rusqlite's statement cache, so a burst of publishes
//! and polls prepares each statement once per connection.
//!
//! Schema:
//! - `bus_records`: one row per message. `seq` (the rowid) is a global publish order across
//!   topics, used to interleave the topics of one subscription fairly (oldest first). The
//!   logical key is `(topic, offset)` (a `UNIQUE` index, which is also what polls scan); it is
//!   not the SQL primary key only because a rowid table appends cheaply and gives `seq` for free.
//! - `bus_topics`: each topic's next offset. Kept apart from `records` so offsets never restart
//!   when retention has deleted every record of a topic.
//! - `bus_group_offsets`: each group's committed next offset per topic. A row is created (at 0)
//!   when a group first subscribes, so retention also waits for groups that have subscribed but
//!   not committed yet.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::Synchronous;
use crate::Message;

/// Bumped when the schema changes; kept in `bus_meta` (not `PRAGMA user_version`, which the
/// store that shares the file owns).
pub(super) const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bus_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_records (
    seq     INTEGER PRIMARY KEY,
    topic   TEXT    NOT NULL,
    offset  INTEGER NOT NULL,
    key     TEXT    NOT NULL,
    payload BLOB    NOT NULL,
    UNIQUE (topic, offset)
);
CREATE TABLE IF NOT EXISTS bus_topics (
    topic       TEXT    PRIMARY KEY,
    next_offset INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_group_offsets (
    group_name  TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_name, topic)
) WITHOUT ROWID;
";

/// A record as read from the table, before it is turned into a [`crate::Record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    pub seq: i64,
    pub offset: u64,
    pub key: String,
    pub payload: Vec<u8>,
}

/// The schema on disk is newer (or otherwise unknown) than this code understands.
#[derive(Debug, thiserror::Error)]
#[error("bus database has schema version {found}, this build understands {SCHEMA_VERSION}")]
pub(super) struct UnknownSchema {
    found: i64,
}

/// Opens a connection with the log's pragmas. The writer also creates the schema.
pub(super) fn open(
    path: &Path,
    synchronous: Synchronous,
    busy_timeout: Duration,
    writer: bool,
) -> crate::Result<Connection> {
    let conn = Connection::open(path).map_err(storage)?;
    // Set first, so that even the pragmas below wait for a concurrent opener instead of failing.
    conn.busy_timeout(busy_timeout).map_err(storage)?;
    let journal_mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(storage)?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(crate::Error::Storage(
            format!("could not switch the bus database to WAL (journal_mode is {journal_mode})")
                .into(),
        ));
    }
    let sync = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(storage)?;
    if writer {
        migrate(&conn)?;
    } else {
        // The reader only reads; make a mistake there fail loudly instead of writing.
        conn.pragma_update(None, "query_only", true)
            .map_err(storage)?;
    }
    Ok(conn)
}

fn migrate(conn: &Connection) -> crate::Result<()> {
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bus_meta')",
            [],
            |row| row.get(0),
        )
        .map_err(storage)?;
    let version: i64 = if has_meta {
        conn.query_row(
            "SELECT value FROM bus_meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(storage)?
        .unwrap_or(0)
    } else {
        0
    };
    match version {
        0 => {
            conn.execute_batch(SCHEMA).map_err(storage)?;
            conn.execute(
                "INSERT OR REPLACE INTO bus_meta (key, value) VALUES ('schema_version', ?1)",
                params![SCHEMA_VERSION],
            )
            .map(|_| ())
            .map_err(storage)
        }
        SCHEMA_VERSION => Ok(()),
        found => Err(crate::Error::Storage(Box::new(UnknownSchema { found }))),
    }
}

/// Runs `f` in one IMMEDIATE transaction on `conn` and commits it.
///
/// `BEGIN IMMEDIATE` takes the write lock up front, so reading `topics.next_offset` and
/// writing the records cannot interleave with another writer on the same file.
pub(super) fn in_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Test convenience: [`append_in`] in a transaction of its own.
#[cfg(test)]
pub(super) fn append(conn: &mut Connection, messages: &[Message]) -> rusqlite::Result<Vec<String>> {
    in_tx(conn, |tx| append_in(tx, messages))
}

/// Appends `messages` inside the caller's write transaction and returns the topics written
/// to. The caller must hold the file's write lock for the whole transaction (an IMMEDIATE
/// transaction, or the one writer every write of the file goes through).
pub(crate) fn append_in(tx: &Connection, messages: &[Message]) -> rusqlite::Result<Vec<String>> {
    let mut next: HashMap<&str, u64> = HashMap::new();
    {
        let mut read_next =
            tx.prepare_cached("SELECT next_offset FROM bus_topics WHERE topic = ?1")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO bus_records (topic, offset, key, payload) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for message in messages {
            let topic = message.topic.as_str();
            let offset = match next.get_mut(topic) {
                Some(offset) => offset,
                None => {
                    let stored: Option<u64> =
                        read_next.query_row([topic], |row| row.get(0)).optional()?;
                    next.entry(topic).or_insert(stored.unwrap_or(0))
                }
            };
            insert.execute(params![topic, *offset, message.key, message.payload])?;
            *offset += 1;
        }
        let mut write_next = tx.prepare_cached(
            "INSERT INTO bus_topics (topic, next_offset) VALUES (?1, ?2)
             ON CONFLICT (topic) DO UPDATE SET next_offset = excluded.next_offset",
        )?;
        for (topic, offset) in &next {
            write_next.execute(params![topic, offset])?;
        }
    }
    Ok(next.into_keys().map(str::to_owned).collect())
}

/// Up to `max` records of `topic` from `from` on, in offset order.
pub(super) fn fetch(
    conn: &Connection,
    topic: &str,
    from: u64,
    max: usize,
) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, offset, key, payload FROM bus_records
         WHERE topic = ?1 AND offset >= ?2 ORDER BY offset LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![topic, from, max], |row| {
        Ok(Row {
            seq: row.get(0)?,
            offset: row.get(1)?,
            key: row.get(2)?,
            payload: row.get(3)?,
        })
    })?;
    rows.collect()
}

/// Test convenience: [`join_in`] in a transaction of its own.
#[cfg(test)]
pub(super) fn join(
    conn: &mut Connection,
    group: &str,
    topics: &[String],
) -> rusqlite::Result<Vec<u64>> {
    in_tx(conn, |tx| join_in(tx, group, topics))
}

/// Registers `group` on `topics` (at offset 0 where it has no row yet, so retention waits for
/// it) and returns its committed next offset per topic, in the order of `topics`.
pub(super) fn join_in(
    tx: &Connection,
    group: &str,
    topics: &[String],
) -> rusqlite::Result<Vec<u64>> {
    let mut next = Vec::with_capacity(topics.len());
    {
        let mut register = tx.prepare_cached(
            "INSERT INTO bus_group_offsets (group_name, topic, next_offset) VALUES (?1, ?2, 0)
             ON CONFLICT (group_name, topic) DO NOTHING",
        )?;
        let mut read = tx.prepare_cached(
            "SELECT next_offset FROM bus_group_offsets WHERE group_name = ?1 AND topic = ?2",
        )?;
        for topic in topics {
            register.execute(params![group, topic])?;
            next.push(read.query_row(params![group, topic], |row| row.get(0))?);
        }
    }
    Ok(next)
}

/// Test convenience: [`commit_in`] in a transaction of its own.
#[cfg(test)]
pub(super) fn commit(
    conn: &mut Connection,
    group: &str,
    next: &HashMap<String, u64>,
) -> rusqlite::Result<()> {
    in_tx(conn, |tx| commit_in(tx, group, next))
}

/// Stores `next` (topic, next offset) for `group`, never moving an offset backwards.
pub(super) fn commit_in(
    tx: &Connection,
    group: &str,
    next: &HashMap<String, u64>,
) -> rusqlite::Result<()> {
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO bus_group_offsets (group_name, topic, next_offset) VALUES (?1, ?2, ?3)
             ON CONFLICT (group_name, topic)
             DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
        )?;
        for (topic, offset) in next {
            upsert.execute(params![group, topic, offset])?;
        }
    }
    Ok(())
}

/// How many records of `topics` are published and not yet committed by `group`, summed:
/// per topic, its next offset minus the later of the group's committed offset and the oldest
/// record still kept (a group that has never committed counts from what retention left).
pub(super) fn lag(conn: &Connection, group: &str, topics: &[String]) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(
        "SELECT max(0, t.next_offset - max(
                    coalesce((SELECT g.next_offset FROM bus_group_offsets g
                              WHERE g.group_name = ?1 AND g.topic = t.topic), 0),
                    coalesce((SELECT min(r.offset) FROM bus_records r WHERE r.topic = t.topic),
                             t.next_offset)))
         FROM bus_topics t WHERE t.topic = ?2",
    )?;
    let mut lag = 0u64;
    for topic in topics {
        let topic_lag: Option<u64> = stmt
            .query_row(params![group, topic], |row| row.get(0))
            .optional()?;
        lag = lag.saturating_add(topic_lag.unwrap_or(0));
    }
    Ok(lag)
}

/// Test convenience: [`retain_in`] in a transaction of its own.
#[cfg(test)]
pub(super) fn retain(conn: &mut Connection) -> rusqlite::Result<usize> {
    in_tx(conn, retain_in)
}

/// Deletes, on every topic some group has joined, the records every such group has
/// committed. Topics no group has joined keep everything. Returns the number deleted.
pub(super) fn retain_in(tx: &Connection) -> rusqlite::Result<usize> {
    let mut deleted = 0;
    {
        let floors: Vec<(String, u64)> = tx
            .prepare_cached("SELECT topic, min(next_offset) FROM bus_group_offsets GROUP BY topic")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut delete =
            tx.prepare_cached("DELETE FROM bus_records WHERE topic = ?1 AND offset < ?2")?;
        for (topic, floor) in floors {
            deleted += delete.execute(params![topic, floor])?;
        }
    }
    Ok(deleted)
}

pub(super) fn storage(e: rusqlite::Error) -> crate::Error {
    crate::Error::Storage(Box::new(e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn writer() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(
            &dir.path().join("bus.sqlite"),
            Synchronous::Normal,
            Duration::from_secs(5),
            true,
        )
        .unwrap();
        (dir, conn)
    }

    fn message(topic: &str, key: &str, payload: &[u8]) -> Message {
        Message {
            topic: topic.into(),
            key: key.into(),
            payload: payload.to_vec(),
        }
    }

    fn count(conn: &Connection, topic: &str) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM bus_records WHERE topic = ?1",
            [topic],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn offsets_count_from_zero_per_topic_across_batches() {
        let (_dir, mut conn) = writer();
        append(
            &mut conn,
            &[message("a", "k", b"1"), message("b", "k", b"1")],
        )
        .unwrap();
        append(
            &mut conn,
            &[message("a", "k", b"2"), message("a", "k", b"3")],
        )
        .unwrap();
        let offsets: Vec<u64> = fetch(&conn, "a", 0, 10)
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [0, 1, 2]);
        assert_eq!(fetch(&conn, "b", 0, 10).unwrap()[0].offset, 0);
    }

    #[test]
    fn offsets_do_not_restart_when_retention_has_emptied_a_topic() {
        let (_dir, mut conn) = writer();
        append(
            &mut conn,
            &[message("t", "k", b"0"), message("t", "k", b"1")],
        )
        .unwrap();
        join(&mut conn, "g", &["t".into()]).unwrap();
        commit(&mut conn, "g", &HashMap::from([("t".into(), 2)])).unwrap();
        assert_eq!(retain(&mut conn).unwrap(), 2);
        assert_eq!(count(&conn, "t"), 0);

        append(&mut conn, &[message("t", "k", b"2")]).unwrap();
        assert_eq!(fetch(&conn, "t", 0, 10).unwrap()[0].offset, 2);
    }

    #[test]
    fn retention_keeps_topics_no_group_has_joined() {
        let (_dir, mut conn) = writer();
        append(
            &mut conn,
            &[message("kept", "k", b"0"), message("used", "k", b"0")],
        )
        .unwrap();
        join(&mut conn, "g", &["used".into()]).unwrap();
        commit(&mut conn, "g", &HashMap::from([("used".into(), 1)])).unwrap();
        retain(&mut conn).unwrap();
        assert_eq!(count(&conn, "kept"), 1);
        assert_eq!(count(&conn, "used"), 0);
    }

    #[test]
    fn retention_waits_for_a_group_that_joined_but_never_committed() {
        let (_dir, mut conn) = writer();
        append(
            &mut conn,
            &[message("t", "k", b"0"), message("t", "k", b"1")],
        )
        .unwrap();
        join(&mut conn, "fast", &["t".into()]).unwrap();
        join(&mut conn, "idle", &["t".into()]).unwrap();
        commit(&mut conn, "fast", &HashMap::from([("t".into(), 2)])).unwrap();
        assert_eq!(retain(&mut conn).unwrap(), 0);

        commit(&mut conn, "idle", &HashMap::from([("t".into(), 1)])).unwrap();
        assert_eq!(retain(&mut conn).unwrap(), 1);
        assert_eq!(fetch(&conn, "t", 0, 10).unwrap()[0].offset, 1);
    }

    #[test]
    fn commit_keeps_the_highest_offset() {
        let (_dir, mut conn) = writer();
        let topics = ["t".to_owned()];
        commit(&mut conn, "g", &HashMap::from([("t".into(), 5)])).unwrap();
        commit(&mut conn, "g", &HashMap::from([("t".into(), 3)])).unwrap();
        assert_eq!(join(&mut conn, "g", &topics).unwrap(), [5]);
    }

    #[test]
    fn join_leaves_an_existing_commit_alone() {
        let (_dir, mut conn) = writer();
        let topics = ["t".to_owned(), "u".to_owned()];
        commit(&mut conn, "g", &HashMap::from([("t".into(), 7)])).unwrap();
        assert_eq!(join(&mut conn, "g", &topics).unwrap(), [7, 0]);
        assert_eq!(join(&mut conn, "g", &topics).unwrap(), [7, 0]);
    }

    #[test]
    fn seq_follows_publish_order_across_topics() {
        let (_dir, mut conn) = writer();
        append(&mut conn, &[message("a", "k", b""), message("b", "k", b"")]).unwrap();
        append(&mut conn, &[message("a", "k", b"")]).unwrap();
        let a = fetch(&conn, "a", 0, 10).unwrap();
        let b = fetch(&conn, "b", 0, 10).unwrap();
        assert!(a[0].seq < b[0].seq && b[0].seq < a[1].seq);
    }

    #[test]
    fn an_empty_payload_reads_back_empty() {
        let (_dir, mut conn) = writer();
        append(&mut conn, &[message("t", "", b"")]).unwrap();
        let row = &fetch(&conn, "t", 0, 1).unwrap()[0];
        assert_eq!((row.key.as_str(), row.payload.as_slice()), ("", &b""[..]));
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "CREATE TABLE bus_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                 INSERT INTO bus_meta VALUES ('schema_version', {});",
                SCHEMA_VERSION + 1
            ))
            .unwrap();
        let err = open(&path, Synchronous::Full, Duration::from_secs(1), true).unwrap_err();
        assert!(matches!(err, crate::Error::Storage(_)), "{err:?}");
    }
}
