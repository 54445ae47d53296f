//! [`Reencrypt`] on SQLite: one IMMEDIATE transaction per batch, keyset-paginated on each
//! table's primary key (so a batch never rescans what the previous ones did, whatever the
//! concurrent writers do), values written back with the storage type they were read with.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, ErrorCode};

use super::{map_err, SqliteStore};
use crate::reencrypt::{PiiColumn, PiiTable, Reencrypt, ReencryptBatch, RewriteFn};
use crate::{Error, Result};

/// The primary key and personal-data columns of each table, as SQL names.
fn layout(table: PiiTable) -> (&'static [&'static str], &'static [&'static str]) {
    match table {
        PiiTable::Tasks => (&["id"], &["body"]),
        PiiTable::Schedule => (&["task_id"], &["body"]),
        PiiTable::Deliveries => (&["task_id", "due_at", "channel", "target"], &["message"]),
        PiiTable::PushSubscriptions => (&["id"], &["endpoint", "p256dh", "auth"]),
        PiiTable::Webhooks => (&["user_id"], &["url", "secret"]),
        PiiTable::Destinations => (&["id"], &["name", "url"]),
        PiiTable::Outbox => (&["seq"], &["payload"]),
        PiiTable::Profiles => (&["user_id"], &["body"]),
    }
}

/// A cursor is the last row's key, as a JSON array of its columns (integers and strings).
fn encode_cursor(key: &[Value]) -> String {
    let parts: Vec<serde_json::Value> = key
        .iter()
        .map(|v| match v {
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Text(s) => serde_json::Value::from(s.as_str()),
            _ => serde_json::Value::Null,
        })
        .collect();
    serde_json::Value::Array(parts).to_string()
}

fn decode_cursor(cursor: &str, columns: usize) -> Result<Vec<Value>> {
    let bad = || Error::Corrupt(format!("re-encryption cursor `{cursor}` is not valid"));
    let parts: Vec<serde_json::Value> = serde_json::from_str(cursor).map_err(|_| bad())?;
    if parts.len() != columns {
        return Err(bad());
    }
    parts
        .into_iter()
        .map(|p| match p {
            serde_json::Value::Number(n) => n.as_i64().map(Value::Integer).ok_or_else(bad),
            serde_json::Value::String(s) => Ok(Value::Text(s)),
            _ => Err(bad()),
        })
        .collect()
}

fn bytes_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Text(s) => Some(s.as_bytes()),
        Value::Blob(b) => Some(b),
        _ => None,
    }
}

/// `new` stored with the type `old` had (TEXT stays TEXT, BLOB stays BLOB).
fn same_type(old: &Value, new: Vec<u8>) -> Result<Value> {
    match old {
        Value::Blob(_) => Ok(Value::Blob(new)),
        _ => String::from_utf8(new)
            .map(Value::Text)
            .map_err(|_| Error::Corrupt("a rewritten text value is not UTF-8".into())),
    }
}

#[async_trait::async_trait]
impl Reencrypt for SqliteStore {
    async fn reencrypt_batch(
        &self,
        table: PiiTable,
        cursor: Option<String>,
        limit: usize,
        rewrite: RewriteFn,
    ) -> Result<ReencryptBatch> {
        let (keys, columns) = layout(table);
        let pii: &'static [PiiColumn] = table.columns();
        let after = cursor
            .as_deref()
            .map(|c| decode_cursor(c, keys.len()))
            .transpose()?;
        self.write(move |tx| {
            let key_list = keys.join(", ");
            let placeholders = vec!["?"; keys.len()].join(", ");
            let name = table.name();
            let select = format!(
                "SELECT {key_list}, {} FROM {name} {} ORDER BY {key_list} LIMIT {}",
                columns.join(", "),
                if after.is_some() {
                    format!("WHERE ({key_list}) > ({placeholders})")
                } else {
                    String::new()
                },
                limit.max(1),
            );
            let rows: Vec<Vec<Value>> = {
                let mut stmt = tx.prepare(&select).map_err(map_err)?;
                let width = keys.len() + columns.len();
                let rows = stmt
                    .query_map(params_from_iter(after.iter().flatten()), |r| {
                        (0..width).map(|i| r.get::<_, Value>(i)).collect()
                    })
                    .map_err(map_err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
            };
            let where_key = keys
                .iter()
                .map(|k| format!("{k} = ?"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let update = format!(
                "UPDATE {name} SET {} WHERE {where_key}",
                columns
                    .iter()
                    .map(|c| format!("{c} = ?"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let delete = format!("DELETE FROM {name} WHERE {where_key}");
            let mut batch = ReencryptBatch {
                cursor: None,
                scanned: rows.len(),
                rewritten: 0,
                removed: 0,
            };
            for row in &rows {
                let (key, values) = row.split_at(keys.len());
                let mut changed = false;
                let mut new_values = Vec::with_capacity(values.len());
                for (value, column) in values.iter().zip(pii) {
                    let rewritten = match bytes_of(value) {
                        Some(bytes) => rewrite(*column, bytes)?,
                        None => None,
                    };
                    match rewritten {
                        Some(new) => {
                            changed = true;
                            new_values.push(same_type(value, new)?);
                        }
                        None => new_values.push(value.clone()),
                    }
                }
                if !changed {
                    continue;
                }
                let updated = tx.execute(
                    &update,
                    params_from_iter(new_values.iter().chain(key.iter())),
                );
                match updated {
                    Ok(_) => batch.rewritten += 1,
                    // The same push endpoint is already stored under the newest key.
                    Err(e)
                        if table == PiiTable::PushSubscriptions
                            && e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) =>
                    {
                        tx.execute(&delete, params_from_iter(key.iter()))
                            .map_err(map_err)?;
                        batch.removed += 1;
                    }
                    Err(e) => return Err(map_err(e)),
                }
            }
            if rows.len() >= limit.max(1) {
                batch.cursor = rows.last().map(|r| encode_cursor(&r[..keys.len()]));
            }
            Ok(batch)
        })
        .await
    }
}
