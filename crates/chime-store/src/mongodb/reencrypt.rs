//! [`Reencrypt`] on MongoDB: one transaction per batch, walking each collection in key order
//! after a cursor (the last key as a JSON array, as on the SQL adapters). A writer that
//! changes one of the batch's documents meanwhile conflicts with the batch's write, and one of
//! them runs again on the other's result, so no change is overwritten with a stale value.

use super::*;
use crate::reencrypt::{PiiColumn, PiiTable, Reencrypt, ReencryptBatch, RewriteFn};

/// The collection of `table`, its key fields (in walk order) and its personal-data fields.
fn layout(
    table: PiiTable,
) -> (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
) {
    match table {
        PiiTable::Tasks => (TASKS, &["_id"], &["body"]),
        PiiTable::Schedule => (SCHEDULE, &["_id"], &["body"]),
        PiiTable::Deliveries => (
            DELIVERIES,
            &["task_id", "due_at", "channel", "target"],
            &["message"],
        ),
        PiiTable::PushSubscriptions => (
            PUSH_SUBSCRIPTIONS,
            &["_id"],
            &["endpoint", "p256dh", "auth"],
        ),
        PiiTable::Webhooks => (WEBHOOKS, &["_id"], &["url", "secret"]),
        PiiTable::Destinations => (DESTINATIONS, &["_id"], &["name", "url"]),
        PiiTable::Outbox => (OUTBOX, &["_id"], &["payload"]),
        PiiTable::Profiles => (PROFILES, &["_id"], &["body"]),
    }
}

fn bad_cursor(cursor: &str) -> Error {
    Error::Corrupt(format!("re-encryption cursor `{cursor}` is not valid"))
}

/// The cursor's key values, typed as stored (integers stay integers).
fn decode_cursor(cursor: &str, keys: &[&str]) -> Result<Vec<Bson>> {
    let parts: Vec<serde_json::Value> =
        serde_json::from_str(cursor).map_err(|_| bad_cursor(cursor))?;
    if parts.len() != keys.len() {
        return Err(bad_cursor(cursor));
    }
    parts
        .into_iter()
        .map(|p| match p {
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Bson::Int64)
                .ok_or_else(|| bad_cursor(cursor)),
            serde_json::Value::String(s) => Ok(Bson::String(s)),
            _ => Err(bad_cursor(cursor)),
        })
        .collect()
}

fn encode_cursor(key: &[Bson]) -> String {
    let parts: Vec<serde_json::Value> = key
        .iter()
        .map(|k| match k {
            Bson::Int64(i) => serde_json::Value::from(*i),
            Bson::Int32(i) => serde_json::Value::from(*i),
            Bson::String(s) => serde_json::Value::from(s.as_str()),
            other => serde_json::Value::from(other.to_string()),
        })
        .collect();
    serde_json::Value::Array(parts).to_string()
}

/// Documents whose key is after `after`, field by field.
fn after(keys: &[&str], after: &[Bson]) -> Document {
    let alternatives: Vec<Bson> = (0..keys.len())
        .map(|i| {
            let mut alternative = Document::new();
            for (k, v) in keys.iter().zip(after).take(i) {
                alternative.insert(*k, v.clone());
            }
            alternative.insert(keys[i], doc! { "$gt": after[i].clone() });
            Bson::Document(alternative)
        })
        .collect();
    doc! { "$or": alternatives }
}

fn value_bytes(d: &Document, field: &str) -> Result<Option<Vec<u8>>> {
    match d.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone().into_bytes())),
        Some(Bson::Binary(b)) => Ok(Some(b.bytes.clone())),
        Some(_) => Err(missing(field)),
    }
}

#[async_trait]
impl Reencrypt for MongoStore {
    async fn reencrypt_batch(
        &self,
        table: PiiTable,
        cursor: Option<String>,
        limit: usize,
        rewrite: RewriteFn,
    ) -> Result<ReencryptBatch> {
        let (collection, keys, fields) = layout(table);
        let pii: &'static [PiiColumn] = table.columns();
        let filter = match cursor.as_deref() {
            Some(c) => after(keys, &decode_cursor(c, keys)?),
            None => Document::new(),
        };
        let sort: Document = keys
            .iter()
            .map(|k| ((*k).to_owned(), Bson::Int32(1)))
            .collect();
        let limit = limit.max(1);
        transaction!(self, |s| {
            let docs = find_in(
                &self.coll(collection),
                s,
                filter.clone(),
                Some(sort.clone()),
                Some(limit),
            )
            .await?;
            let mut batch = ReencryptBatch {
                cursor: None,
                scanned: docs.len(),
                rewritten: 0,
                removed: 0,
            };
            for d in &docs {
                let mut set = Document::new();
                for (field, column) in fields.iter().zip(pii) {
                    let Some(value) = value_bytes(d, field)? else {
                        continue;
                    };
                    if let Some(new) = rewrite(*column, &value)? {
                        let stored = if *column == PiiColumn::OutboxPayload {
                            Bson::Binary(binary(&new))
                        } else {
                            Bson::String(String::from_utf8(new).map_err(|_| {
                                Error::Corrupt("a rewritten text value is not UTF-8".into())
                            })?)
                        };
                        set.insert(*field, stored);
                    }
                }
                if set.is_empty() {
                    continue;
                }
                let id = d.get("_id").cloned().unwrap_or(Bson::Null);
                // The same push endpoint may already be stored under the newest key (the
                // browser subscribed again): that later document wins and this one goes.
                // Checked first: a unique-index failure would abort the whole transaction.
                let duplicate = table == PiiTable::PushSubscriptions
                    && match set.get("endpoint") {
                        Some(endpoint) => self
                            .coll(PUSH_SUBSCRIPTIONS)
                            .find_one(
                                doc! { "endpoint": endpoint.clone(), "_id": { "$ne": id.clone() } },
                            )
                            .session(&mut *s)
                            .await?
                            .is_some(),
                        None => false,
                    };
                if duplicate {
                    self.coll(collection)
                        .delete_one(doc! { "_id": id })
                        .session(&mut *s)
                        .await?;
                    batch.removed += 1;
                } else {
                    self.coll(collection)
                        .update_one(doc! { "_id": id }, doc! { "$set": set })
                        .session(&mut *s)
                        .await?;
                    batch.rewritten += 1;
                }
            }
            if docs.len() >= limit {
                if let Some(last) = docs.last() {
                    let key: Vec<Bson> = keys
                        .iter()
                        .map(|k| last.get(*k).cloned().unwrap_or(Bson::Null))
                        .collect();
                    batch.cursor = Some(encode_cursor(&key));
                }
            }
            Ok(batch)
        })
    }
}
