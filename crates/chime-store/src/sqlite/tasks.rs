//! The task store on SQLite: task records and their outbox events, written together;
//! history read back from the fired and delivery rows.

use super::deliveries::{status_from_row, status_row};
use super::*;

/// The columns of `tasks` in the order [`task_from_row`] reads them.
pub(super) const TASK_COLUMNS: &str = "id, user_id, version, body, created_at, modified_at";

pub(super) type TaskRow = (String, String, i64, String, i64, i64);

pub(super) fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

pub(super) fn task_from_row(
    (id, user, version, body, created, modified): TaskRow,
) -> Result<TaskRecord> {
    Ok(TaskRecord {
        id: parse_id(&id)?,
        user_id: parse_user(&user)?,
        version: version as u64,
        body: parse_json(&body)?,
        created_at: instant(created)?,
        modified_at: instant(modified)?,
    })
}

/// Inserts `task` and its event (the trigger of migration 8 counts it).
fn insert_task(tx: &Tx<'_>, task: &TaskRecord, event: OutboxEvent) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO tasks (id, user_id, version, body, created_at, modified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            task.id.to_string(),
            task.user_id.as_str(),
            task.version as i64,
            task.body.to_string(),
            micros(task.created_at),
            micros(task.modified_at),
        ])
    })
    .map_err(map_err)?;
    insert_outbox(tx, &[event])
}

/// `user`'s number of tasks, from the count the triggers keep.
fn task_count(conn: &Connection, user: &UserId) -> Result<u64> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT tasks FROM task_counts WHERE user_id = ?1")
        .and_then(|mut s| s.query_row([user.as_str()], |r| r.get(0)).optional())
        .map_err(map_err)?;
    Ok(n.map_or(0, |n| n.max(0) as u64))
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<()> {
        let task = task.clone();
        self.write_with_events(|_| true, move |tx| insert_task(tx, &task, event))
            .await
    }

    async fn create_task_within(
        &self,
        task: &TaskRecord,
        event: OutboxEvent,
        limit: u64,
    ) -> Result<bool> {
        let task = task.clone();
        // Read and insert in one write transaction: the one writer runs creates in turn, so
        // two creates can never both see the last free place.
        self.write_with_events(
            |created| *created,
            move |tx| {
                if task_count(tx, &task.user_id)? >= limit {
                    return Ok(false);
                }
                insert_task(tx, &task, event).map(|()| true)
            },
        )
        .await
    }

    async fn update_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<bool> {
        let task = task.clone();
        self.write_with_events(
            |updated| *updated,
            move |tx| {
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM tasks WHERE id = ?1 AND user_id = ?2",
                        params![task.id.to_string(), task.user_id.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                match stored {
                    None => return Ok(false),
                    Some(v) if v as u64 + 1 != task.version => return Err(Error::Conflict),
                    Some(_) => {}
                }
                tx.execute(
                    "UPDATE tasks SET version = ?2, body = ?3, modified_at = ?4 WHERE id = ?1",
                    params![
                        task.id.to_string(),
                        task.version as i64,
                        task.body.to_string(),
                        micros(task.modified_at),
                    ],
                )
                .map_err(map_err)?;
                insert_outbox(tx, &[event])?;
                Ok(true)
            },
        )
        .await
    }

    async fn delete_task(
        &self,
        user: &UserId,
        id: TaskId,
        version: u64,
        event: OutboxEvent,
    ) -> Result<bool> {
        let user = user.clone();
        self.write_with_events(
            |deleted| *deleted,
            move |tx| {
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM tasks WHERE id = ?1 AND user_id = ?2",
                        params![id.to_string(), user.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                match stored {
                    None => return Ok(false),
                    Some(v) if v as u64 != version => return Err(Error::Conflict),
                    Some(_) => {}
                }
                tx.execute("DELETE FROM tasks WHERE id = ?1", params![id.to_string()])
                    .map_err(map_err)?;
                insert_outbox(tx, &[event])?;
                Ok(true)
            },
        )
        .await
    }

    async fn get_task(&self, user: &UserId, id: TaskId) -> Result<Option<TaskRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1 AND user_id = ?2"
                ))
                .and_then(|mut s| {
                    s.query_row(params![id.to_string(), user.as_str()], task_row)
                        .optional()
                })
                .map_err(map_err)?;
            row.map(task_from_row).transpose()
        })
        .await
    }

    async fn task_by_id(&self, id: TaskId) -> Result<Option<TaskRecord>> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))
                .and_then(|mut s| s.query_row(params![id.to_string()], task_row).optional())
                .map_err(map_err)?;
            row.map(task_from_row).transpose()
        })
        .await
    }

    async fn list_tasks(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        let user = user.clone();
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = ?1 AND id > ?2
                     ORDER BY id LIMIT ?3"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![user.as_str(), after, limit as i64], task_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            rows.into_iter().map(task_from_row).collect()
        })
        .await
    }

    async fn count_tasks(&self, user: &UserId) -> Result<u64> {
        let user = user.clone();
        self.read(move |conn| task_count(conn, &user)).await
    }

    async fn record_fired(&self, fired: &[FiredOccurrence]) -> Result<()> {
        let fired = fired.to_vec();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO history
                     (task_id, due_at, user_id, seq, fired_at, late, skipped, coalesced)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(map_err)?;
            for f in &fired {
                stmt.execute(params![
                    f.occurrence.task_id.to_string(),
                    micros(f.occurrence.due_at),
                    f.user_id.as_str(),
                    f.seq,
                    micros(f.fired_at),
                    f.late,
                    f.skipped,
                    f.coalesced,
                ])
                .map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn record_delivery_states(&self, states: &[DeliveryState]) -> Result<()> {
        let states = states.to_vec();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO history_deliveries
                     (task_id, due_at, channel, target, outcome, attempts, at, detail, provider_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (task_id, due_at, channel, target) DO UPDATE SET
                       outcome = excluded.outcome, attempts = excluded.attempts,
                       at = excluded.at, detail = excluded.detail,
                       provider_id = excluded.provider_id
                     WHERE excluded.attempts >= history_deliveries.attempts",
                )
                .map_err(map_err)?;
            for s in &states {
                stmt.execute(params![
                    s.occurrence.task_id.to_string(),
                    micros(s.occurrence.due_at),
                    s.status.channel.as_str(),
                    s.status.target,
                    s.status.outcome.as_str(),
                    s.status.attempts,
                    micros(s.status.at),
                    s.status.detail,
                    s.status.provider_id,
                ])
                .map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn history(
        &self,
        user: &UserId,
        id: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let user = user.clone();
        let before = before.map(micros).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let id = id.to_string();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT due_at, seq, fired_at, late, skipped, coalesced FROM history
                     WHERE task_id = ?1 AND user_id = ?2 AND due_at < ?3
                     ORDER BY due_at DESC LIMIT ?4",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![id, user.as_str(), before, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, bool>(4)?,
                        r.get::<_, u32>(5)?,
                    ))
                })
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            let mut deliveries = conn
                .prepare_cached(
                    "SELECT channel, target, outcome, attempts, at, detail, provider_id
                     FROM history_deliveries
                     WHERE task_id = ?1 AND due_at = ?2 ORDER BY channel, target",
                )
                .map_err(map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for (due, seq, fired, late, skipped, coalesced) in rows {
                let statuses = deliveries
                    .query_map(params![id, due], status_row)
                    .map_err(map_err)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_err)?
                    .into_iter()
                    .map(status_from_row)
                    .collect::<Result<Vec<_>>>()?;
                out.push(HistoryEntry {
                    due_at: instant(due)?,
                    seq,
                    fired_at: instant(fired)?,
                    late,
                    skipped,
                    coalesced,
                    deliveries: statuses,
                });
            }
            Ok(out)
        })
        .await
    }
}
