//! [`Reencrypt`] on PostgreSQL: one transaction per batch, keyset-paginated on each table's
//! primary key and locking the batch's rows (`FOR UPDATE`), so writers of the same rows wait
//! for one batch at most and none of their changes is overwritten with a stale value.

use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{map_err, PgStore};
use crate::reencrypt::{PiiColumn, PiiTable, Reencrypt, ReencryptBatch, RewriteFn};
use crate::{Error, Result};

/// A key column's SQL type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Text,
    BigInt,
}

/// A value's storage.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueType {
    Text,
    Bytes,
}

struct Layout {
    keys: &'static [(&'static str, KeyType)],
    columns: &'static [(&'static str, ValueType)],
}

fn layout(table: PiiTable) -> Layout {
    use KeyType::{BigInt, Text as K};
    use ValueType::{Bytes, Text as V};
    match table {
        PiiTable::Tasks => Layout {
            keys: &[("id", K)],
            columns: &[("body", V)],
        },
        PiiTable::Schedule => Layout {
            keys: &[("task_id", K)],
            columns: &[("body", V)],
        },
        PiiTable::Deliveries => Layout {
            keys: &[
                ("task_id", K),
                ("due_at", BigInt),
                ("channel", K),
                ("target", K),
            ],
            columns: &[("message", V)],
        },
        PiiTable::PushSubscriptions => Layout {
            keys: &[("id", K)],
            columns: &[("endpoint", V), ("p256dh", V), ("auth", V)],
        },
        PiiTable::Webhooks => Layout {
            keys: &[("user_id", K)],
            columns: &[("url", V), ("secret", V)],
        },
        PiiTable::Destinations => Layout {
            keys: &[("id", K)],
            columns: &[("name", V), ("url", V)],
        },
        PiiTable::Outbox => Layout {
            keys: &[("seq", BigInt)],
            columns: &[("payload", Bytes)],
        },
        PiiTable::Profiles => Layout {
            keys: &[("user_id", K)],
            columns: &[("body", V)],
        },
    }
}

/// One key value.
#[derive(Clone, Debug)]
enum Key {
    Text(String),
    Int(i64),
}

/// A cursor is the last row's key as a JSON array (integers and strings), as on SQLite.
fn encode_cursor(key: &[Key]) -> String {
    let parts: Vec<serde_json::Value> = key
        .iter()
        .map(|k| match k {
            Key::Int(i) => serde_json::Value::from(*i),
            Key::Text(s) => serde_json::Value::from(s.as_str()),
        })
        .collect();
    serde_json::Value::Array(parts).to_string()
}

fn decode_cursor(cursor: &str, keys: &[(&str, KeyType)]) -> Result<Vec<Key>> {
    let bad = || Error::Corrupt(format!("re-encryption cursor `{cursor}` is not valid"));
    let parts: Vec<serde_json::Value> = serde_json::from_str(cursor).map_err(|_| bad())?;
    if parts.len() != keys.len() {
        return Err(bad());
    }
    parts
        .into_iter()
        .zip(keys)
        .map(|(p, (_, ty))| match (p, ty) {
            (serde_json::Value::Number(n), KeyType::BigInt) => {
                n.as_i64().map(Key::Int).ok_or_else(bad)
            }
            (serde_json::Value::String(s), KeyType::Text) => Ok(Key::Text(s)),
            _ => Err(bad()),
        })
        .collect()
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_key<'q>(query: Query<'q>, key: &Key) -> Query<'q> {
    match key {
        Key::Text(s) => query.bind(s.clone()),
        Key::Int(i) => query.bind(*i),
    }
}

fn read_key(row: &PgRow, keys: &[(&str, KeyType)]) -> Result<Vec<Key>> {
    keys.iter()
        .enumerate()
        .map(|(i, (_, ty))| {
            Ok(match ty {
                KeyType::Text => Key::Text(row.try_get(i).map_err(map_err)?),
                KeyType::BigInt => Key::Int(row.try_get(i).map_err(map_err)?),
            })
        })
        .collect()
}

fn read_value(row: &PgRow, i: usize, ty: ValueType) -> Result<Option<Vec<u8>>> {
    Ok(match ty {
        ValueType::Text => row
            .try_get::<Option<String>, _>(i)
            .map_err(map_err)?
            .map(String::into_bytes),
        ValueType::Bytes => row.try_get::<Option<Vec<u8>>, _>(i).map_err(map_err)?,
    })
}

#[async_trait::async_trait]
impl Reencrypt for PgStore {
    async fn reencrypt_batch(
        &self,
        table: PiiTable,
        cursor: Option<String>,
        limit: usize,
        rewrite: RewriteFn,
    ) -> Result<ReencryptBatch> {
        let Layout { keys, columns } = layout(table);
        let pii: &'static [PiiColumn] = table.columns();
        let after = cursor
            .as_deref()
            .map(|c| decode_cursor(c, keys))
            .transpose()?;
        let limit = limit.max(1);
        let name = table.name();
        let key_list = keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ");
        let column_list = columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ");
        let filter = if after.is_some() {
            let placeholders = (1..=keys.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("WHERE ({key_list}) > ({placeholders})")
        } else {
            String::new()
        };
        let select = format!(
            "SELECT {key_list}, {column_list} FROM {name} {filter}
             ORDER BY {key_list} LIMIT {limit} FOR UPDATE"
        );
        let where_key = |from: usize| {
            keys.iter()
                .enumerate()
                .map(|(i, (k, _))| format!("{k} = ${}", from + i))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let update = format!(
            "UPDATE {name} SET {} WHERE {}",
            columns
                .iter()
                .enumerate()
                .map(|(i, (c, _))| format!("{c} = ${}", i + 1))
                .collect::<Vec<_>>()
                .join(", "),
            where_key(columns.len() + 1)
        );
        let delete = format!("DELETE FROM {name} WHERE {}", where_key(1));

        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let mut query = sqlx::query(&select);
        for key in after.iter().flatten() {
            query = bind_key(query, key);
        }
        let rows = query.fetch_all(&mut *tx).await.map_err(map_err)?;
        let mut batch = ReencryptBatch {
            cursor: None,
            scanned: rows.len(),
            rewritten: 0,
            removed: 0,
        };
        let mut last_key = None;
        for row in &rows {
            let key = read_key(row, keys)?;
            let mut changed = false;
            let mut values = Vec::with_capacity(columns.len());
            for (i, ((_, ty), column)) in columns.iter().zip(pii).enumerate() {
                let value = read_value(row, keys.len() + i, *ty)?;
                let rewritten = match &value {
                    Some(bytes) => rewrite(*column, bytes)?,
                    None => None,
                };
                changed |= rewritten.is_some();
                values.push(rewritten.or(value));
            }
            if changed {
                // The same push endpoint may already be stored under the newest key (the
                // browser subscribed again): that later row wins and this one goes. Checked
                // first, because a failed statement would abort the whole transaction.
                let duplicate = table == PiiTable::PushSubscriptions && {
                    let endpoint = values[0]
                        .as_deref()
                        .map(|b| String::from_utf8_lossy(b).into_owned());
                    let Key::Text(id) = &key[0] else {
                        return Err(Error::Corrupt("push subscription key".into()));
                    };
                    sqlx::query_scalar::<_, bool>(
                        "SELECT EXISTS (SELECT 1 FROM push_subscriptions
                                        WHERE endpoint = $1 AND id <> $2)",
                    )
                    .bind(endpoint)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?
                };
                if duplicate {
                    let mut query = sqlx::query(&delete);
                    for k in &key {
                        query = bind_key(query, k);
                    }
                    query.execute(&mut *tx).await.map_err(map_err)?;
                    batch.removed += 1;
                } else {
                    let mut query = sqlx::query(&update);
                    for ((_, ty), value) in columns.iter().zip(values) {
                        query = match ty {
                            ValueType::Bytes => query.bind(value),
                            ValueType::Text => query.bind(
                                value.map(String::from_utf8).transpose().map_err(|_| {
                                    Error::Corrupt("a rewritten text value is not UTF-8".into())
                                })?,
                            ),
                        };
                    }
                    for k in &key {
                        query = bind_key(query, k);
                    }
                    query.execute(&mut *tx).await.map_err(map_err)?;
                    batch.rewritten += 1;
                }
            }
            last_key = Some(key);
        }
        tx.commit().await.map_err(map_err)?;
        if rows.len() >= limit {
            batch.cursor = last_key.as_deref().map(encode_cursor);
        }
        Ok(batch)
    }
}
