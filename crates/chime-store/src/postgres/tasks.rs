//! The task store on PostgreSQL: task records and their outbox events, written together
//! under the task row's lock; history read back from the fired and delivery rows.

use super::schedule::status_from_row;
use super::*;

pub(super) const TASK_COLUMNS: &str = "id, user_id, version, body, created_at, modified_at";

pub(super) fn task_from_row(row: &PgRow) -> Result<TaskRecord> {
    Ok(TaskRecord {
        id: parse_id(&col::<String>(row, 0)?)?,
        user_id: parse_user(&col::<String>(row, 1)?)?,
        version: col::<i64>(row, 2)? as u64,
        body: parse_json(&col::<String>(row, 3)?)?,
        created_at: instant(col(row, 4)?)?,
        modified_at: instant(col(row, 5)?)?,
    })
}

/// The stored version of `user`'s task `id`, locked until the transaction ends.
pub(super) async fn lock_task_version(
    tx: &mut Tx,
    user: &UserId,
    id: TaskId,
) -> Result<Option<u64>> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT version FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE")
            .bind(id.to_string())
            .bind(user.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_err)?;
    Ok(version.map(|v| v as u64))
}

/// Inserts `task` (the trigger of migration 8 counts it).
async fn insert_task(tx: &mut Tx, task: &TaskRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO tasks (id, user_id, version, body, created_at, modified_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(task.id.to_string())
    .bind(task.user_id.as_str())
    .bind(task.version as i64)
    .bind(task.body.to_string())
    .bind(micros(task.created_at))
    .bind(micros(task.modified_at))
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl TaskStore for PgStore {
    async fn create_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_task(&mut tx, task).await?;
        insert_outbox(&mut tx, &[event]).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(true);
        Ok(())
    }

    async fn create_task_within(
        &self,
        task: &TaskRecord,
        event: OutboxEvent,
        limit: u64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The owner's count row, made if missing and then locked: concurrent creates of one
        // user take their turns here, each seeing the count the previous one left.
        sqlx::query(
            "INSERT INTO task_counts (user_id, tasks) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(task.user_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let count: i64 =
            sqlx::query_scalar("SELECT tasks FROM task_counts WHERE user_id = $1 FOR UPDATE")
                .bind(task.user_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        if u64::try_from(count).unwrap_or(0) >= limit {
            return Ok(false);
        }
        insert_task(&mut tx, task).await?;
        insert_outbox(&mut tx, &[event]).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(true);
        Ok(true)
    }

    async fn update_task(&self, task: &TaskRecord, event: OutboxEvent) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        match lock_task_version(&mut tx, &task.user_id, task.id).await? {
            None => return Ok(false),
            Some(v) if v + 1 != task.version => return Err(Error::Conflict),
            Some(_) => {}
        }
        sqlx::query("UPDATE tasks SET version = $2, body = $3, modified_at = $4 WHERE id = $1")
            .bind(task.id.to_string())
            .bind(task.version as i64)
            .bind(task.body.to_string())
            .bind(micros(task.modified_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_outbox(&mut tx, &[event]).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(true);
        Ok(true)
    }

    async fn delete_task(
        &self,
        user: &UserId,
        id: TaskId,
        version: u64,
        event: OutboxEvent,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        match lock_task_version(&mut tx, user, id).await? {
            None => return Ok(false),
            Some(v) if v != version => return Err(Error::Conflict),
            Some(_) => {}
        }
        sqlx::query("DELETE FROM tasks WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_outbox(&mut tx, &[event]).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(true);
        Ok(true)
    }

    async fn get_task(&self, user: &UserId, id: TaskId) -> Result<Option<TaskRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2"
        ))
        .bind(id.to_string())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn task_by_id(&self, id: TaskId) -> Result<Option<TaskRecord>> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn list_tasks(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = $1 AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(user.as_str())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(task_from_row).collect()
    }

    async fn count_tasks(&self, user: &UserId) -> Result<u64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT tasks FROM task_counts WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    async fn record_fired(&self, fired: &[FiredOccurrence]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for f in fired {
            sqlx::query(
                "INSERT INTO history
                 (task_id, due_at, user_id, seq, fired_at, late, skipped, coalesced)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (task_id, due_at) DO NOTHING",
            )
            .bind(f.occurrence.task_id.to_string())
            .bind(micros(f.occurrence.due_at))
            .bind(f.user_id.as_str())
            .bind(i64::from(f.seq))
            .bind(micros(f.fired_at))
            .bind(f.late)
            .bind(f.skipped)
            .bind(i64::from(f.coalesced))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn record_delivery_states(&self, states: &[DeliveryState]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for s in states {
            sqlx::query(
                "INSERT INTO history_deliveries
                 (task_id, due_at, channel, target, outcome, attempts, at, detail, provider_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (task_id, due_at, channel, target) DO UPDATE SET
                   outcome = excluded.outcome, attempts = excluded.attempts,
                   at = excluded.at, detail = excluded.detail,
                   provider_id = excluded.provider_id
                 WHERE excluded.attempts >= history_deliveries.attempts",
            )
            .bind(s.occurrence.task_id.to_string())
            .bind(micros(s.occurrence.due_at))
            .bind(s.status.channel.as_str())
            .bind(&s.status.target)
            .bind(s.status.outcome.as_str())
            .bind(i64::from(s.status.attempts))
            .bind(micros(s.status.at))
            .bind(text(s.status.detail.as_deref()))
            .bind(text(s.status.provider_id.as_deref()))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = sqlx::query(
            "SELECT due_at, seq, fired_at, late, skipped, coalesced FROM history
             WHERE task_id = $1 AND user_id = $2 AND due_at < $3
             ORDER BY due_at DESC LIMIT $4",
        )
        .bind(&id)
        .bind(user.as_str())
        .bind(before.map(micros).unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let dues: Vec<i64> = rows
            .iter()
            .map(|r| col::<i64>(r, 0))
            .collect::<Result<_>>()?;
        let statuses = sqlx::query(
            "SELECT due_at, channel, target, outcome, attempts, at, detail, provider_id
             FROM history_deliveries
             WHERE task_id = $1 AND due_at = ANY($2) ORDER BY due_at, channel, target",
        )
        .bind(&id)
        .bind(&dues)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut by_due: std::collections::HashMap<i64, Vec<DeliveryStatus>> = Default::default();
        for s in &statuses {
            by_due
                .entry(col(s, 0)?)
                .or_default()
                .push(status_from_row(s, 1)?);
        }
        rows.iter()
            .map(|r| {
                let due: i64 = col(r, 0)?;
                Ok(HistoryEntry {
                    due_at: instant(due)?,
                    seq: count(col(r, 1)?, "seq")?,
                    fired_at: instant(col(r, 2)?)?,
                    late: col(r, 3)?,
                    skipped: col(r, 4)?,
                    coalesced: count(col(r, 5)?, "coalesced")?,
                    deliveries: by_due.remove(&due).unwrap_or_default(),
                })
            })
            .collect()
    }
}
