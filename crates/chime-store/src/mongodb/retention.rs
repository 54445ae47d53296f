//! Retention on MongoDB: the rules of `crate::retention` (written there in SQL for both SQL
//! adapters) evaluated here on documents, a window per transaction. A window's related
//! documents (occurrences, deliveries, history, schedule rows of its tasks) are read with
//! one query each, in the window's snapshot, and the rule decides in memory.

use std::collections::HashSet;

use super::*;
use crate::retention::{KeyValue, PastCursor, PastKind, Purged, RetentionStore};

/// The collection of `kind` and its key fields, in walk order (integers: `due_at`).
fn layout(kind: PastKind) -> (&'static str, &'static [&'static str]) {
    const OCCURRENCE: &[&str] = &["task_id", "due_at"];
    const DELIVERY: &[&str] = &["task_id", "due_at", "channel", "target"];
    match kind {
        PastKind::FinishedTasks => (TASKS, &["_id"]),
        PastKind::History => (HISTORY, OCCURRENCE),
        PastKind::HistoryDeliveries => (HISTORY_DELIVERIES, DELIVERY),
        PastKind::Occurrences => (OCCURRENCES, OCCURRENCE),
        PastKind::Deliveries => (DELIVERIES, DELIVERY),
        PastKind::ReadInbox => (INBOX, &["_id"]),
        PastKind::ReplyTargets => (REPLY_TARGETS, &["_id"]),
    }
}

fn key_bson(value: &KeyValue) -> Bson {
    match value {
        KeyValue::Text(s) => Bson::String(s.clone()),
        KeyValue::Int(i) => Bson::Int64(*i),
    }
}

/// Documents whose key is after `after` (lexicographically, field by field).
fn after_filter(fields: &[&str], after: &[KeyValue]) -> Document {
    let alternatives: Vec<Bson> = (0..fields.len().min(after.len()))
        .map(|i| {
            let mut alternative = Document::new();
            for (field, value) in fields.iter().zip(after).take(i) {
                alternative.insert(*field, key_bson(value));
            }
            alternative.insert(fields[i], doc! { "$gt": key_bson(&after[i]) });
            Bson::Document(alternative)
        })
        .collect();
    doc! { "$or": alternatives }
}

fn key_of(d: &Document, fields: &[&str]) -> Result<Vec<KeyValue>> {
    fields
        .iter()
        .map(|f| {
            Ok(if *f == "due_at" {
                KeyValue::Int(int(d, f)?)
            } else {
                KeyValue::Text(text(d, f)?)
            })
        })
        .collect()
}

/// An occurrence with nothing still to come at `now`: acknowledged or expired, with no
/// snooze's return, repeat or escalation step pending.
fn settled(o: &Document, now: i64) -> Result<bool> {
    Ok(
        (opt_int(o, "acked_at")?.is_some() || int(o, "expires_at")? <= now)
            && opt_int(o, "wake_at")?.is_none()
            && opt_int(o, "escalate_at")?.is_none(),
    )
}

/// What the rules look up about a window's tasks, read in one snapshot.
#[derive(Default)]
struct Related {
    /// Occurrences by (task, due): settled at `now`, and fired at.
    occurrences: HashMap<(String, i64), (bool, i64)>,
    /// (task, due) of pending deliveries.
    pending: HashSet<(String, i64)>,
    /// History entries by (task, due): fired at.
    history: HashMap<(String, i64), i64>,
    /// Schedule rows by task: version and whether it is a tombstone.
    schedule: HashMap<String, (i64, bool)>,
}

impl MongoStore {
    async fn related(
        &self,
        s: &mut ClientSession,
        kind: PastKind,
        tasks: Vec<String>,
        now: i64,
    ) -> Result<Related> {
        let mut related = Related::default();
        if matches!(kind, PastKind::ReadInbox | PastKind::ReplyTargets) || tasks.is_empty() {
            return Ok(related);
        }
        let of_tasks = doc! { "task_id": { "$in": &tasks } };
        if kind != PastKind::HistoryDeliveries {
            for o in find_in(&self.coll(OCCURRENCES), s, of_tasks.clone(), None, None).await? {
                related.occurrences.insert(
                    (text(&o, "task_id")?, int(&o, "due_at")?),
                    (settled(&o, now)?, int(&o, "fired_at")?),
                );
            }
            let mut pending = of_tasks.clone();
            pending.insert("outcome", "pending");
            for d in find_in(&self.coll(DELIVERIES), s, pending, None, None).await? {
                related
                    .pending
                    .insert((text(&d, "task_id")?, int(&d, "due_at")?));
            }
        }
        if matches!(kind, PastKind::FinishedTasks | PastKind::HistoryDeliveries) {
            for h in find_in(&self.coll(HISTORY), s, of_tasks, None, None).await? {
                related.history.insert(
                    (text(&h, "task_id")?, int(&h, "due_at")?),
                    int(&h, "fired_at")?,
                );
            }
        }
        if kind == PastKind::FinishedTasks {
            let rows = find_in(
                &self.coll(SCHEDULE),
                s,
                doc! { "_id": { "$in": &tasks } },
                None,
                None,
            )
            .await?;
            for r in rows {
                related.schedule.insert(
                    text(&r, "_id")?,
                    (int(&r, "version")?, opt_int(&r, "due_at")?.is_none()),
                );
            }
        }
        Ok(related)
    }

    /// Which of `docs` (of `kind`) the rule lets go at `now`.
    async fn letting_go(
        &self,
        s: &mut ClientSession,
        kind: PastKind,
        docs: &[Document],
        cutoff: i64,
        now: i64,
    ) -> Result<Vec<bool>> {
        let task_field = if kind == PastKind::FinishedTasks {
            "_id"
        } else {
            "task_id"
        };
        let tasks: Vec<String> = if matches!(kind, PastKind::ReadInbox | PastKind::ReplyTargets) {
            Vec::new()
        } else {
            docs.iter()
                .map(|d| text(d, task_field))
                .collect::<Result<HashSet<_>>>()?
                .into_iter()
                .collect()
        };
        let r = self.related(s, kind, tasks, now).await?;
        let unsettled = |key: &(String, i64)| r.occurrences.get(key).is_some_and(|(s, _)| !s);
        docs.iter()
            .map(|x| {
                Ok(match kind {
                    PastKind::FinishedTasks => {
                        let id = text(x, "_id")?;
                        int(x, "modified_at")? < cutoff
                            && r.schedule.get(&id) == Some(&(int(x, "version")?, true))
                            && !r.occurrences.iter().any(|((t, _), (settled, fired))| {
                                *t == id && (*fired >= cutoff || !settled)
                            })
                            && !r
                                .history
                                .iter()
                                .any(|((t, _), fired)| *t == id && *fired >= cutoff)
                            && !r.pending.iter().any(|(t, _)| *t == id)
                    }
                    PastKind::History => {
                        let key = (text(x, "task_id")?, int(x, "due_at")?);
                        int(x, "fired_at")? < cutoff
                            && !unsettled(&key)
                            && !r.pending.contains(&key)
                    }
                    PastKind::HistoryDeliveries => {
                        let key = (text(x, "task_id")?, int(x, "due_at")?);
                        int(x, "at")? < cutoff && !r.history.contains_key(&key)
                    }
                    PastKind::Occurrences => {
                        let key = (text(x, "task_id")?, int(x, "due_at")?);
                        int(x, "fired_at")? < cutoff
                            && settled(x, now)?
                            && !r.pending.contains(&key)
                    }
                    PastKind::Deliveries => {
                        let key = (text(x, "task_id")?, int(x, "due_at")?);
                        int(x, "at")? < cutoff
                            && text(x, "outcome")? != "pending"
                            && !unsettled(&key)
                    }
                    PastKind::ReadInbox => flag(x, "read")? && int(x, "created_at")? < cutoff,
                    PastKind::ReplyTargets => int(x, "sent_at")? < cutoff,
                })
            })
            .collect()
    }
}

#[async_trait]
impl RetentionStore for MongoStore {
    async fn purge_past(
        &self,
        kind: PastKind,
        cutoff: Timestamp,
        now: Timestamp,
        after: Option<&PastCursor>,
        max: usize,
    ) -> Result<Purged> {
        let (collection, fields) = layout(kind);
        let max = max.max(1);
        let filter = after.map_or_else(Document::new, |c| after_filter(fields, &c.0));
        let sort: Document = fields
            .iter()
            .map(|f| ((*f).to_owned(), Bson::Int32(1)))
            .collect();
        let (cutoff, now) = (micros(cutoff), micros(now));
        transaction!(self, |s| {
            let window = find_in(
                &self.coll(collection),
                s,
                filter.clone(),
                Some(sort.clone()),
                Some(max),
            )
            .await?;
            let Some(last) = window.last() else {
                return Ok(Purged {
                    deleted: 0,
                    next: None,
                });
            };
            let next = (window.len() == max)
                .then(|| key_of(last, fields).map(PastCursor))
                .transpose()?;
            let going = self.letting_go(s, kind, &window, cutoff, now).await?;
            let ids: Vec<Bson> = window
                .iter()
                .zip(going)
                .filter(|(_, going)| *going)
                .filter_map(|(d, _)| d.get("_id").cloned())
                .collect();
            let deleted = if ids.is_empty() {
                0
            } else {
                self.coll(collection)
                    .delete_many(doc! { "_id": { "$in": ids } })
                    .session(&mut *s)
                    .await?
                    .deleted_count
            };
            Ok(Purged { deleted, next })
        })
    }

    async fn count_past(&self, kind: PastKind, cutoff: Timestamp, now: Timestamp) -> Result<u64> {
        let (collection, _) = layout(kind);
        let (cutoff, now) = (micros(cutoff), micros(now));
        transaction!(self, |s| {
            let all = find_in(&self.coll(collection), s, doc! {}, None, None).await?;
            let going = self.letting_go(s, kind, &all, cutoff, now).await?;
            Ok(going.into_iter().filter(|g| *g).count() as u64)
        })
    }
}
