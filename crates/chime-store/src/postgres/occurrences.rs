//! Occurrence state on PostgreSQL: open occurrences and acknowledgements (issue 16).

use super::*;

fn occurrence_from_row(row: &PgRow) -> Result<OccurrenceRecord> {
    occurrence_record((
        col(row, 0)?,
        col(row, 1)?,
        col(row, 2)?,
        col(row, 3)?,
        col(row, 4)?,
        col(row, 5)?,
        col(row, 6)?,
        col(row, 7)?,
        col(row, 8)?,
        col(row, 9)?,
        col(row, 10)?,
        col(row, 11)?,
        col(row, 12)?,
        col(row, 13)?,
        col(row, 14)?,
    ))
}

#[async_trait]
impl OccurrenceStore for PgStore {
    async fn open_occurrences(
        &self,
        user: &UserId,
        now: Timestamp,
        before: Option<&OccurrenceKey>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let (before_due, before_id) = before.map_or((i64::MAX, String::new()), |k| {
            (micros(k.due_at), k.task_id.to_string())
        });
        let rows = sqlx::query(&format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM occurrences
             WHERE user_id = $1 AND acked_at IS NULL AND snoozed_until IS NULL
               AND expires_at > $2
               AND (due_at < $3 OR (due_at = $3 AND task_id < $4))
             ORDER BY due_at DESC, task_id DESC LIMIT $5"
        ))
        .bind(user.to_string())
        .bind(micros(now))
        .bind(before_due)
        .bind(before_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(occurrence_from_row).collect()
    }

    async fn snoozed_occurrences(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM occurrences
             WHERE user_id = $1 AND acked_at IS NULL AND snoozed_until IS NOT NULL
               AND wake_at IS NOT NULL
             ORDER BY wake_at, task_id LIMIT $2"
        ))
        .bind(user.to_string())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(occurrence_from_row).collect()
    }

    async fn task_occurrences(
        &self,
        user: &UserId,
        task: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM occurrences
             WHERE task_id = $1 AND user_id = $2 AND due_at < $3
             ORDER BY due_at DESC LIMIT $4"
        ))
        .bind(task.to_string())
        .bind(user.to_string())
        .bind(before.map_or(i64::MAX, micros))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(occurrence_from_row).collect()
    }

    async fn occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
    ) -> Result<Option<OccurrenceRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM occurrences
             WHERE task_id = $1 AND due_at = $2 AND user_id = $3"
        ))
        .bind(key.task_id.to_string())
        .bind(micros(key.due_at))
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(occurrence_from_row).transpose()
    }

    async fn acknowledge_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        channel: Channel,
        at: Timestamp,
    ) -> Result<Option<OccurrenceRecord>> {
        // One statement on the row: a concurrent second acknowledgement waits for the first's
        // row lock, then finds `acked_at` set and changes nothing. The inbox items are marked
        // in the same statement, only by the acknowledgement that took.
        sqlx::query(
            "WITH acked AS (
                 UPDATE occurrences SET acked_at = $4, acked_channel = $5, wake_at = NULL,
                       escalate_at = NULL
                 WHERE task_id = $1 AND due_at = $2 AND user_id = $3 AND acked_at IS NULL
                 RETURNING task_id, due_at, user_id)
             UPDATE inbox i SET read = TRUE FROM acked a
             WHERE i.user_id = a.user_id AND i.task_id = a.task_id AND i.due_at = a.due_at
               AND NOT i.read",
        )
        .bind(key.task_id.to_string())
        .bind(micros(key.due_at))
        .bind(user.to_string())
        .bind(micros(at))
        .bind(channel.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        self.occurrence(user, key).await
    }

    async fn snooze_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        until: Timestamp,
    ) -> Result<Option<OccurrenceRecord>> {
        let row = sqlx::query(&format!(
            "WITH snoozed AS (
                 UPDATE occurrences SET snoozed_until = $4, wake_at = $4, escalate_at = NULL
                 WHERE task_id = $1 AND due_at = $2 AND user_id = $3 AND acked_at IS NULL
                   AND (snoozed_until IS NULL OR wake_at IS NOT NULL)
                 RETURNING {OCCURRENCE_COLUMNS})
             SELECT {OCCURRENCE_COLUMNS} FROM snoozed"
        ))
        .bind(key.task_id.to_string())
        .bind(micros(key.due_at))
        .bind(user.to_string())
        .bind(micros(until))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        match row {
            Some(row) => occurrence_from_row(&row).map(Some),
            // Not changed: answer its state as it is.
            None => self.occurrence(user, key).await,
        }
    }

    async fn put_reply_target(
        &self,
        number_hash: &str,
        user: &UserId,
        key: &OccurrenceKey,
        sent_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sms_reply_targets (number_hash, user_id, task_id, due_at, sent_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (number_hash) DO UPDATE SET
               user_id = excluded.user_id, task_id = excluded.task_id,
               due_at = excluded.due_at, sent_at = excluded.sent_at
             WHERE excluded.sent_at >= sms_reply_targets.sent_at",
        )
        .bind(number_hash)
        .bind(user.to_string())
        .bind(key.task_id.to_string())
        .bind(micros(key.due_at))
        .bind(micros(sent_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn reply_target(&self, number_hash: &str) -> Result<Option<(UserId, OccurrenceKey)>> {
        let row = sqlx::query(
            "SELECT user_id, task_id, due_at FROM sms_reply_targets WHERE number_hash = $1",
        )
        .bind(number_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|row| {
            Ok((
                parse_user(&col::<String>(&row, 0)?)?,
                OccurrenceKey {
                    task_id: parse_id(&col::<String>(&row, 1)?)?,
                    due_at: instant(col(&row, 2)?)?,
                },
            ))
        })
        .transpose()
    }
}
