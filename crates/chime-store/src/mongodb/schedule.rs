//! The schedule on MongoDB: applying the execution role's changes by version, and claiming
//! what is due in a transaction that marks every row it read before it decides anything, so
//! that a row another instance is claiming fails the claim with a write conflict (and the
//! claim runs again without it) instead of being fired twice; fenced by the task's current
//! version (see `ScheduleStore::fire_due`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;
use crate::{Fire, Woken};

pub(super) fn scheduled_from_doc(d: &Document) -> Result<ScheduledTask> {
    Ok(ScheduledTask {
        task_id: parse_id(&text(d, "_id")?)?,
        user_id: parse_user(&text(d, "user_id")?)?,
        version: int(d, "version")? as u64,
        body: parse_json(&text(d, "body")?)?,
        due_at: instant(int(d, "due_at")?)?,
        seq: count(int(d, "seq")?, "seq")?,
    })
}

/// The key of an occurrence document.
pub(super) fn occurrence_key(task_id: &str, due_at: i64) -> Document {
    doc! { "task_id": task_id, "due_at": due_at }
}

/// What a claim took: its due rows (earliest first), each already marked by the claim in its
/// transaction, and the current version and body of each row's task (the fence).
struct Claimed {
    rows: Vec<Document>,
    /// Each row's task id and due instant (for occurrences; the schedule's rows are keyed by
    /// task alone and give their own `due_at`).
    keys: Vec<(String, i64)>,
    tasks: HashMap<String, (i64, String)>,
}

/// Reads up to `max` rows of `collection` whose `field` is due at `now` and marks each as
/// claimed by `token`: the write that makes a concurrent claim of the same rows conflict
/// before either has decided anything. Then reads their tasks in the same snapshot, which
/// began after `now` was read, so a change committed before the due instant is seen even
/// when its event has not reached the schedule yet.
async fn claim(
    store: &MongoStore,
    session: &mut ClientSession,
    collection: &str,
    field: &str,
    now: Timestamp,
    max: usize,
    token: &str,
) -> Result<Claimed> {
    let schedule = collection == SCHEDULE;
    let task_field = if schedule { "_id" } else { "task_id" };
    let sort = if schedule {
        doc! { field: 1, "_id": 1 }
    } else {
        doc! { field: 1, "task_id": 1, "due_at": 1 }
    };
    let coll = store.coll(collection);
    let rows = find_in(
        &coll,
        session,
        doc! { field: { "$ne": Bson::Null, "$lte": micros(now) } },
        Some(sort),
        Some(max),
    )
    .await?;
    let keys: Vec<(String, i64)> = rows
        .iter()
        .map(|d| Ok((text(d, task_field)?, int(d, "due_at")?)))
        .collect::<Result<_>>()?;
    for (task_id, due_at) in &keys {
        let key = if schedule {
            doc! { "_id": task_id }
        } else {
            occurrence_key(task_id, *due_at)
        };
        coll.update_one(key, doc! { "$set": { "claimed_by": token } })
            .session(&mut *session)
            .await?;
    }
    let ids: Vec<&String> = keys.iter().map(|(t, _)| t).collect();
    let tasks = if ids.is_empty() {
        HashMap::new()
    } else {
        find_in(
            &store.coll(TASKS),
            session,
            doc! { "_id": { "$in": ids } },
            None,
            None,
        )
        .await?
        .iter()
        .map(|t| Ok((text(t, "_id")?, (int(t, "version")?, text(t, "body")?))))
        .collect::<Result<_>>()?
    };
    Ok(Claimed { rows, keys, tasks })
}

/// What the caller's pure function decided for a row in this state (task, due instant, and
/// the instant that made it due), asked once per call of the claim however often its
/// transaction runs. A panic (a bug in recurrence code) fails the claim, which then commits
/// nothing, instead of unwinding through the caller's worker.
fn decide<T: Clone>(
    decided: &mut HashMap<(String, i64, i64), T>,
    state: (String, i64, i64),
    what: &str,
    ask: impl FnOnce() -> T,
) -> Result<T> {
    if let Some(decision) = decided.get(&state) {
        return Ok(decision.clone());
    }
    let decision = catch_unwind(AssertUnwindSafe(ask))
        .map_err(|_| Error::Storage(format!("{what} task {} panicked", state.0).into()))?;
    decided.insert(state, decision.clone());
    Ok(decision)
}

/// The earliest value of `field` in `collection` (a non-null one).
async fn earliest(store: &MongoStore, collection: &str, field: &str) -> Result<Option<i64>> {
    let found = store
        .coll(collection)
        .find_one(doc! { field: { "$ne": Bson::Null } })
        .sort(doc! { field: 1 })
        .await?;
    found.map_or(Ok(None), |d| opt_int(&d, field))
}

fn claim_token() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[async_trait]
impl ScheduleStore for MongoStore {
    async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> Result<()> {
        transaction!(self, |s| {
            for change in changes {
                let (task_id, version) = match ScheduleRow::from(change) {
                    ScheduleRow::Set(r) => (r.task_id, r.version),
                    ScheduleRow::Delete { task_id, version } => (task_id, version),
                };
                let stored = self
                    .coll(SCHEDULE)
                    .find_one(doc! { "_id": &task_id })
                    .session(&mut *s)
                    .await?;
                let stored_version = stored.as_ref().map(|d| int(d, "version")).transpose()?;
                if stored_version.is_some_and(|v| v >= version) {
                    continue;
                }
                let fields = match ScheduleRow::from(change) {
                    ScheduleRow::Set(r) => doc! {
                        "user_id": r.user_id,
                        "version": r.version,
                        "body": opt(r.body.as_deref()),
                        "due_at": opt_i64(r.due_at),
                        "seq": r.seq,
                    },
                    // A tombstone keeps the version, drops the body and the due instant.
                    ScheduleRow::Delete { version, .. } if stored.is_some() => doc! {
                        "version": version,
                        "body": Bson::Null,
                        "due_at": Bson::Null,
                    },
                    ScheduleRow::Delete { version, .. } => doc! {
                        "user_id": "",
                        "version": version,
                        "body": Bson::Null,
                        "due_at": Bson::Null,
                        "seq": 0_i64,
                    },
                };
                if stored.is_some() {
                    self.coll(SCHEDULE)
                        .update_one(doc! { "_id": &task_id }, doc! { "$set": fields })
                        .session(&mut *s)
                        .await?;
                } else {
                    let mut document = doc! { "_id": &task_id };
                    document.extend(fields);
                    self.coll(SCHEDULE)
                        .insert_one(document)
                        .session(&mut *s)
                        .await?;
                }
            }
            Ok(())
        })
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let candidates = [
            earliest(self, SCHEDULE, "due_at").await?,
            earliest(self, OCCURRENCES, "wake_at").await?,
            earliest(self, OCCURRENCES, "escalate_at").await?,
        ];
        candidates
            .into_iter()
            .flatten()
            .min()
            .map(instant)
            .transpose()
    }

    async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> Result<usize> {
        let token = claim_token();
        // What `fire` decided for a row state, kept across runs of the transaction: a claim
        // that runs again (after a conflict elsewhere) does not ask twice.
        let mut decided: HashMap<(String, i64, i64), Fire> = HashMap::new();
        let (fired, published) = transaction!(self, |s| {
            let Claimed {
                rows: due, tasks, ..
            } = claim(self, s, SCHEDULE, "due_at", now, max, &token).await?;
            if due.is_empty() {
                return Ok((0, false));
            }
            let mut events = Vec::new();
            let mut fired = 0;
            for row in &due {
                let task = scheduled_from_doc(row)?;
                let id = task.task_id.to_string();
                if tasks.get(&id).map(|(v, _)| *v) != Some(task.version as i64) {
                    // Stale: the row becomes a tombstone at its version; the change's own
                    // event brings the task's current state when it arrives.
                    self.coll(SCHEDULE)
                        .update_one(
                            doc! { "_id": &id },
                            doc! { "$set": { "due_at": Bson::Null, "body": Bson::Null } },
                        )
                        .session(&mut *s)
                        .await?;
                    continue;
                }
                fired += 1;
                let state = (id.clone(), task.version as i64, micros(task.due_at));
                let decision = decide(&mut decided, state, "firing", || fire(&task))?;
                events.extend(decision.events);
                // The occurrence is open from the claim that fires it (same transaction).
                let every = decision.nag.map(|n| n.every().as_micros() as i64);
                self.coll(OCCURRENCES)
                    .update_one(
                        occurrence_key(&id, micros(task.due_at)),
                        doc! { "$setOnInsert": {
                            "user_id": task.user_id.as_str(),
                            "fired_at": micros(now),
                            "expires_at": expires_at(task.due_at, decision.next),
                            "acked_at": Bson::Null,
                            "acked_channel": Bson::Null,
                            "seq": i64::from(task.seq),
                            "snoozed_until": Bson::Null,
                            "wake_at": opt_i64(every.map(|e| micros(now).saturating_add(e))),
                            "snoozed_from": Bson::Null,
                            "nag_every": opt_i64(every),
                            "nags_left": decision.nag.map_or(0, |n| i64::from(n.times)),
                            "nagged": false,
                            "escalate_at": opt_i64(decision.escalate_at.map(micros)),
                            "escalated": 0_i64,
                        } },
                    )
                    .upsert(true)
                    .session(&mut *s)
                    .await?;
                // A finished row becomes a tombstone (no due instant, no body), keeping its
                // version.
                let update = match decision.next {
                    Some((at, seq)) => doc! { "due_at": micros(at), "seq": i64::from(seq) },
                    None => doc! { "due_at": Bson::Null, "body": Bson::Null },
                };
                self.coll(SCHEDULE)
                    .update_one(doc! { "_id": &id }, doc! { "$set": update })
                    .session(&mut *s)
                    .await?;
            }
            self.insert_outbox(s, &events).await?;
            Ok((fired, !events.is_empty()))
        })?;
        self.signal_if(published);
        Ok(fired)
    }

    async fn wake_due(&self, now: Timestamp, max: usize, wake: WakeFn) -> Result<usize> {
        let token = claim_token();
        let mut decided: HashMap<(String, i64, i64), Option<Woken>> = HashMap::new();
        let (woke, published) = transaction!(self, |s| {
            let Claimed {
                rows: due,
                keys,
                tasks,
            } = claim(self, s, OCCURRENCES, "wake_at", now, max, &token).await?;
            if due.is_empty() {
                return Ok((0, false));
            }
            let mut events = Vec::new();
            let mut woke = 0;
            for (row, (task_id, due_at)) in due.iter().zip(&keys) {
                let wake_at = int(row, "wake_at")?;
                let task = tasks.get(task_id);
                let columns: WakeColumns = (
                    task_id.clone(),
                    *due_at,
                    text(row, "user_id")?,
                    int(row, "seq")?,
                    wake_at,
                    task.map(|(v, _)| *v),
                    task.map(|(_, b)| b.clone()),
                );
                let snoozed_until = opt_int(row, "snoozed_until")?;
                let Some(w) = wake_of(columns, snoozed_until)? else {
                    // Its task is gone: it will not return.
                    self.coll(OCCURRENCES)
                        .update_one(
                            occurrence_key(task_id, *due_at),
                            doc! { "$set": { "wake_at": Bson::Null, "escalate_at": Bson::Null } },
                        )
                        .session(&mut *s)
                        .await?;
                    continue;
                };
                let state = (task_id.clone(), *due_at, wake_at);
                let decision = decide(&mut decided, state, "waking", || wake(&w))?;
                let Some(woken) = decision else { continue };
                woke += 1;
                events.extend(woken.events);
                let woke_row = Woke {
                    snoozed_until,
                    nag_every: opt_int(row, "nag_every")?,
                    nags_left: int(row, "nags_left")?,
                    escalated: int(row, "escalated")?,
                    escalate_at: opt_int(row, "escalate_at")?,
                };
                let next = follow(&woke_row, woken.escalate_at, now);
                self.coll(OCCURRENCES)
                    .update_one(
                        occurrence_key(task_id, micros(w.key.due_at)),
                        doc! { "$setOnInsert": {
                            "user_id": w.user_id.as_str(),
                            "fired_at": micros(now),
                            "expires_at": expires_at(w.key.due_at, None),
                            "acked_at": Bson::Null,
                            "acked_channel": Bson::Null,
                            "seq": i64::from(w.seq),
                            "snoozed_until": Bson::Null,
                            "wake_at": opt_i64(next.wake_at),
                            "snoozed_from": *due_at,
                            "nag_every": opt_i64(next.nag_every),
                            "nags_left": next.nags_left,
                            "nagged": false,
                            "escalate_at": opt_i64(next.escalate_at),
                            "escalated": next.escalated,
                        } },
                    )
                    .upsert(true)
                    .session(&mut *s)
                    .await?;
                // Fired: a repeat (no snooze was set) marks the row superseded by it.
                self.coll(OCCURRENCES)
                    .update_one(
                        occurrence_key(task_id, *due_at),
                        doc! { "$set": {
                            "nagged": flag(row, "nagged")? || snoozed_until.is_none(),
                            "snoozed_until": snoozed_until.unwrap_or(wake_at),
                            "wake_at": Bson::Null,
                            "escalate_at": Bson::Null,
                        } },
                    )
                    .session(&mut *s)
                    .await?;
            }
            self.insert_outbox(s, &events).await?;
            Ok((woke, !events.is_empty()))
        })?;
        self.signal_if(published);
        Ok(woke)
    }

    async fn escalate_due(&self, now: Timestamp, max: usize, step: EscalateFn) -> Result<usize> {
        let token = claim_token();
        let mut decided: HashMap<(String, i64, i64), Option<Escalated>> = HashMap::new();
        let (reached, published) = transaction!(self, |s| {
            // An acknowledgement that committed first has cleared `escalate_at` (this
            // snapshot does not list the row); one committing now conflicts with the mark.
            let Claimed {
                rows: due,
                keys,
                tasks,
            } = claim(self, s, OCCURRENCES, "escalate_at", now, max, &token).await?;
            if due.is_empty() {
                return Ok((0, false));
            }
            let mut events = Vec::new();
            let mut reached_total = 0;
            for (row, (task_id, due_at)) in due.iter().zip(&keys) {
                let at = int(row, "escalate_at")?;
                let task = tasks.get(task_id);
                let columns: EscalateColumns = (
                    task_id.clone(),
                    *due_at,
                    text(row, "user_id")?,
                    int(row, "seq")?,
                    at,
                    int(row, "escalated")?,
                    task.map(|(v, _)| *v),
                    task.map(|(_, b)| b.clone()),
                );
                // The step is reached (counted, the next one due) whatever it published.
                let (decision, reached) = match escalate_of(columns)? {
                    Some(e) => {
                        let state = (task_id.clone(), *due_at, at);
                        let decision = decide(&mut decided, state, "escalating", || step(&e))?;
                        match decision {
                            Some(decision) => (decision, 1_i64),
                            None => continue,
                        }
                    }
                    // Its task is gone: the chain ends.
                    None => (Escalated::default(), 0),
                };
                reached_total += reached as usize;
                events.extend(decision.events);
                self.coll(OCCURRENCES)
                    .update_one(
                        occurrence_key(task_id, *due_at),
                        doc! {
                            "$inc": { "escalated": reached },
                            "$set": { "escalate_at": opt_i64(decision.next_at.map(micros)) },
                        },
                    )
                    .session(&mut *s)
                    .await?;
            }
            self.insert_outbox(s, &events).await?;
            Ok((reached_total, !events.is_empty()))
        })?;
        self.signal_if(published);
        Ok(reached)
    }

    async fn scheduled(&self, task_id: TaskId) -> Result<Option<ScheduledTask>> {
        let found = self
            .coll(SCHEDULE)
            .find_one(doc! { "_id": task_id.to_string(), "due_at": { "$ne": Bson::Null } })
            .await?;
        found.as_ref().map(scheduled_from_doc).transpose()
    }

    async fn unscheduled_tasks(
        &self,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        // No join: pages of tasks in id order, each compared with its schedule rows.
        if limit == 0 {
            return Ok(Vec::new());
        }
        let page = limit.max(100);
        let mut cursor = after.map(|a| a.to_string()).unwrap_or_default();
        let mut found = Vec::new();
        loop {
            let tasks = find_all(
                &self.coll(TASKS),
                doc! { "_id": { "$gt": &cursor } },
                Some(doc! { "_id": 1 }),
                Some(page),
            )
            .await?;
            let ids: Vec<String> = tasks
                .iter()
                .map(|t| text(t, "_id"))
                .collect::<Result<_>>()?;
            let rows = find_all(
                &self.coll(SCHEDULE),
                doc! { "_id": { "$in": &ids } },
                None,
                None,
            )
            .await?;
            let scheduled: HashMap<String, i64> = rows
                .iter()
                .map(|r| Ok((text(r, "_id")?, int(r, "version")?)))
                .collect::<Result<_>>()?;
            for t in &tasks {
                let (id, version) = (text(t, "_id")?, int(t, "version")?);
                if scheduled.get(&id).is_none_or(|v| *v < version) {
                    found.push(super::tasks::task_from_doc(t)?);
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
            match ids.last() {
                Some(last) if tasks.len() == page => cursor = last.clone(),
                _ => return Ok(found),
            }
        }
    }
}
