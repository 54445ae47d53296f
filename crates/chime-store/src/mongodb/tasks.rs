//! The task store on MongoDB: task documents and their outbox events, written in one
//! transaction guarded by the stored version (two writers of one task conflict, and the one
//! that runs again reads the other's version); history read back from one snapshot.

use super::*;

pub(super) fn task_from_doc(d: &Document) -> Result<TaskRecord> {
    Ok(TaskRecord {
        id: parse_id(&text(d, "_id")?)?,
        user_id: parse_user(&text(d, "user_id")?)?,
        version: int(d, "version")? as u64,
        body: parse_json(&text(d, "body")?)?,
        created_at: instant(int(d, "created_at")?)?,
        modified_at: instant(int(d, "modified_at")?)?,
    })
}

/// `channel, target, outcome, attempts, at, detail, provider_id` of a delivery document.
pub(super) fn status_from_doc(d: &Document) -> Result<DeliveryStatus> {
    Ok(DeliveryStatus {
        channel: parse_channel(&text(d, "channel")?)?,
        target: text(d, "target")?,
        outcome: parse_outcome(&text(d, "outcome")?)?,
        attempts: count(int(d, "attempts")?, "attempts")?,
        at: instant(int(d, "at")?)?,
        detail: opt_text(d, "detail")?,
        provider_id: opt_text(d, "provider_id")?,
    })
}

#[async_trait]
impl TaskStore for MongoStore {
    async fn create_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<()> {
        let task_doc = doc! {
            "_id": task.id.to_string(),
            "user_id": task.user_id.as_str(),
            "version": task.version as i64,
            "body": task.body.to_string(),
            "created_at": micros(task.created_at),
            "modified_at": micros(task.modified_at),
        };
        transaction!(self, |s| {
            self.coll(TASKS)
                .insert_one(task_doc.clone())
                .session(&mut *s)
                .await?;
            self.insert_outbox(s, std::slice::from_ref(&event)).await
        })?;
        self.signal_if(true);
        Ok(())
    }

    async fn create_task_within(
        &self,
        task: &TaskRecord,
        event: OutboxEvent,
        limit: u64,
    ) -> Result<bool> {
        let task_doc = doc! {
            "_id": task.id.to_string(),
            "user_id": task.user_id.as_str(),
            "version": task.version as i64,
            "body": task.body.to_string(),
            "created_at": micros(task.created_at),
            "modified_at": micros(task.modified_at),
        };
        let turn = format!("tasks:{}", task.user_id.as_str());
        let created = transaction!(self, |s| {
            // Every create of one user writes this document first, so two concurrent ones
            // conflict and one runs again, seeing the other's task in its count: the count
            // and the insert cannot interleave (snapshot isolation alone would let both
            // count the same last free place).
            self.coll(COUNTERS)
                .update_one(doc! { "_id": &turn }, doc! { "$inc": { "turns": 1_i64 } })
                .upsert(true)
                .session(&mut *s)
                .await?;
            let count = self
                .coll(TASKS)
                .count_documents(doc! { "user_id": task.user_id.as_str() })
                .session(&mut *s)
                .await?;
            if count >= limit {
                return Ok(false);
            }
            self.coll(TASKS)
                .insert_one(task_doc.clone())
                .session(&mut *s)
                .await?;
            self.insert_outbox(s, std::slice::from_ref(&event)).await?;
            Ok(true)
        })?;
        self.signal_if(created);
        Ok(created)
    }

    async fn update_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<bool> {
        let id = task.id.to_string();
        let updated = transaction!(self, |s| {
            let stored = self
                .coll(TASKS)
                .find_one(doc! { "_id": &id, "user_id": task.user_id.as_str() })
                .session(&mut *s)
                .await?;
            let Some(stored) = stored else {
                return Ok(false);
            };
            if int(&stored, "version")? as u64 + 1 != task.version {
                return Err(Error::Conflict);
            }
            self.coll(TASKS)
                .update_one(
                    doc! { "_id": &id },
                    doc! { "$set": {
                        "version": task.version as i64,
                        "body": task.body.to_string(),
                        "modified_at": micros(task.modified_at),
                    } },
                )
                .session(&mut *s)
                .await?;
            self.insert_outbox(s, std::slice::from_ref(&event)).await?;
            Ok(true)
        })?;
        self.signal_if(updated);
        Ok(updated)
    }

    async fn delete_task(
        &self,
        user: &UserId,
        id: TaskId,
        version: u64,
        event: OutboxEvent,
    ) -> Result<bool> {
        let id = id.to_string();
        let deleted = transaction!(self, |s| {
            let stored = self
                .coll(TASKS)
                .find_one(doc! { "_id": &id, "user_id": user.as_str() })
                .session(&mut *s)
                .await?;
            let Some(stored) = stored else {
                return Ok(false);
            };
            if int(&stored, "version")? as u64 != version {
                return Err(Error::Conflict);
            }
            self.coll(TASKS)
                .delete_one(doc! { "_id": &id })
                .session(&mut *s)
                .await?;
            self.insert_outbox(s, std::slice::from_ref(&event)).await?;
            Ok(true)
        })?;
        self.signal_if(deleted);
        Ok(deleted)
    }

    async fn get_task(&self, user: &UserId, id: TaskId) -> Result<Option<TaskRecord>> {
        let found = self
            .coll(TASKS)
            .find_one(doc! { "_id": id.to_string(), "user_id": user.as_str() })
            .await?;
        found.as_ref().map(task_from_doc).transpose()
    }

    async fn task_by_id(&self, id: TaskId) -> Result<Option<TaskRecord>> {
        let found = self
            .coll(TASKS)
            .find_one(doc! { "_id": id.to_string() })
            .await?;
        found.as_ref().map(task_from_doc).transpose()
    }

    async fn list_tasks(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        let docs = find_all(
            &self.coll(TASKS),
            doc! {
                "user_id": user.as_str(),
                "_id": { "$gt": after.map(|a| a.to_string()).unwrap_or_default() },
            },
            Some(doc! { "_id": 1 }),
            Some(limit),
        )
        .await?;
        docs.iter().map(task_from_doc).collect()
    }

    async fn count_tasks(&self, user: &UserId) -> Result<u64> {
        Ok(self
            .coll(TASKS)
            .count_documents(doc! { "user_id": user.as_str() })
            .await?)
    }

    async fn record_fired(&self, fired: &[FiredOccurrence]) -> Result<()> {
        transaction!(self, |s| {
            for f in fired {
                let key = doc! {
                    "task_id": f.occurrence.task_id.to_string(),
                    "due_at": micros(f.occurrence.due_at),
                };
                // A replay finds its entry and writes nothing.
                self.coll(HISTORY)
                    .update_one(
                        key,
                        doc! { "$setOnInsert": {
                            "user_id": f.user_id.as_str(),
                            "seq": i64::from(f.seq),
                            "fired_at": micros(f.fired_at),
                            "late": f.late,
                            "skipped": f.skipped,
                            "coalesced": i64::from(f.coalesced),
                        } },
                    )
                    .upsert(true)
                    .session(&mut *s)
                    .await?;
            }
            Ok(())
        })
    }

    async fn record_delivery_states(&self, states: &[DeliveryState]) -> Result<()> {
        transaction!(self, |s| {
            for state in states {
                let key = doc! {
                    "task_id": state.occurrence.task_id.to_string(),
                    "due_at": micros(state.occurrence.due_at),
                    "channel": state.status.channel.as_str(),
                    "target": &state.status.target,
                };
                let attempts = i64::from(state.status.attempts);
                let fields = doc! {
                    "outcome": state.status.outcome.as_str(),
                    "attempts": attempts,
                    "at": micros(state.status.at),
                    "detail": opt(state.status.detail.as_deref()),
                    "provider_id": opt(state.status.provider_id.as_deref()),
                };
                let stored = self
                    .coll(HISTORY_DELIVERIES)
                    .find_one(key.clone())
                    .session(&mut *s)
                    .await?;
                match stored {
                    // The state with the most attempts wins (a late event of an earlier
                    // attempt changes nothing).
                    Some(stored) if int(&stored, "attempts")? > attempts => {}
                    Some(_) => {
                        self.coll(HISTORY_DELIVERIES)
                            .update_one(key, doc! { "$set": fields })
                            .session(&mut *s)
                            .await?;
                    }
                    None => {
                        let mut document = key;
                        document.extend(fields);
                        self.coll(HISTORY_DELIVERIES)
                            .insert_one(document)
                            .session(&mut *s)
                            .await?;
                    }
                }
            }
            Ok(())
        })
    }

    async fn history(
        &self,
        user: &UserId,
        id: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let id = id.to_string();
        // One snapshot for both reads, so deliveries match the firings they belong to.
        let (entries, statuses) = transaction!(self, |s| {
            let entries = find_in(
                &self.coll(HISTORY),
                s,
                doc! {
                    "task_id": &id,
                    "user_id": user.as_str(),
                    "due_at": { "$lt": before.map_or(i64::MAX, micros) },
                },
                Some(doc! { "due_at": -1 }),
                Some(limit),
            )
            .await?;
            let dues: Vec<i64> = entries
                .iter()
                .map(|e| int(e, "due_at"))
                .collect::<Result<_>>()?;
            let statuses = find_in(
                &self.coll(HISTORY_DELIVERIES),
                s,
                doc! { "task_id": &id, "due_at": { "$in": dues } },
                Some(doc! { "due_at": 1, "channel": 1, "target": 1 }),
                None,
            )
            .await?;
            Ok((entries, statuses))
        })?;
        let mut by_due: HashMap<i64, Vec<DeliveryStatus>> = HashMap::new();
        for s in &statuses {
            by_due
                .entry(int(s, "due_at")?)
                .or_default()
                .push(status_from_doc(s)?);
        }
        entries
            .iter()
            .map(|e| {
                let due = int(e, "due_at")?;
                Ok(HistoryEntry {
                    due_at: instant(due)?,
                    seq: count(int(e, "seq")?, "seq")?,
                    fired_at: instant(int(e, "fired_at")?)?,
                    late: flag(e, "late")?,
                    skipped: flag(e, "skipped")?,
                    coalesced: count(int(e, "coalesced")?, "coalesced")?,
                    deliveries: by_due.remove(&due).unwrap_or_default(),
                })
            })
            .collect()
    }
}
