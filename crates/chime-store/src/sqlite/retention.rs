//! Retention on SQLite: the shared rules of `crate::retention`, a window per write.

use rusqlite::types::Value;

use super::*;
use crate::retention::{KeyType, KeyValue, PastCursor, PastKind, Purged, RetentionStore};

/// SQLite numbers parameters `?n`; the shared statements write `$n`.
fn sqlite(sql: String) -> String {
    sql.replace('$', "?")
}

fn value(key: &KeyValue) -> Value {
    match key {
        KeyValue::Text(s) => Value::Text(s.clone()),
        KeyValue::Int(i) => Value::Integer(*i),
    }
}

/// How many rows of `kind` retention would delete: also for `chime doctor`, which opens the
/// file read-only without a store.
pub fn count_past(
    conn: &Connection,
    kind: PastKind,
    cutoff: Timestamp,
    now: Timestamp,
) -> Result<u64> {
    let mut stmt = conn
        .prepare_cached(&sqlite(kind.table().count()))
        .map_err(map_err)?;
    // A rule without `now` has one parameter, and SQLite counts only those it sees.
    let bound = [micros(cutoff), micros(now)];
    let used = stmt.parameter_count().min(2);
    let n: i64 = stmt
        .query_row(rusqlite::params_from_iter(&bound[..used]), |r| r.get(0))
        .map_err(map_err)?;
    Ok(n.max(0) as u64)
}

fn purge(
    tx: &Connection,
    kind: PastKind,
    cutoff: Timestamp,
    now: Timestamp,
    after: Option<&PastCursor>,
    max: usize,
) -> Result<Purged> {
    let table = kind.table();
    let mut bound: Vec<Value> = after.map_or_else(Vec::new, |c| c.0.iter().map(value).collect());
    bound.push(Value::Integer(max as i64));
    let window: Vec<Vec<KeyValue>> = {
        let mut stmt = tx
            .prepare_cached(&sqlite(table.window(after.is_some())))
            .map_err(map_err)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(bound), |r| {
                table
                    .key
                    .iter()
                    .enumerate()
                    .map(|(i, (_, ty))| match ty {
                        KeyType::Text => r.get(i).map(KeyValue::Text),
                        KeyType::Int => r.get(i).map(KeyValue::Int),
                    })
                    .collect()
            })
            .map_err(map_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
    };
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return Ok(Purged {
            deleted: 0,
            next: None,
        });
    };
    let mut values = vec![Value::Integer(micros(cutoff)), Value::Integer(micros(now))];
    values.extend(first.iter().chain(last).map(value));
    let deleted = tx
        .prepare_cached(&sqlite(table.purge()))
        .and_then(|mut s| s.execute(rusqlite::params_from_iter(values)))
        .map_err(map_err)?;
    Ok(Purged {
        deleted: deleted as u64,
        next: (window.len() == max).then(|| PastCursor(last.clone())),
    })
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn purge_past(
        &self,
        kind: PastKind,
        cutoff: Timestamp,
        now: Timestamp,
        after: Option<&PastCursor>,
        max: usize,
    ) -> Result<Purged> {
        let after = after.cloned();
        self.write(move |tx| purge(tx, kind, cutoff, now, after.as_ref(), max.max(1)))
            .await
    }

    async fn count_past(&self, kind: PastKind, cutoff: Timestamp, now: Timestamp) -> Result<u64> {
        self.read(move |conn| count_past(conn, kind, cutoff, now))
            .await
    }
}
