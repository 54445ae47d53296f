//! Occurrence state on SQLite: open occurrences and acknowledgements (issue 16).

use super::*;

fn occurrence_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OccurrenceColumns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

fn select_one(
    conn: &Connection,
    user: &str,
    task_id: &str,
    due_at: i64,
) -> Result<Option<OccurrenceRecord>> {
    conn.query_row(
        &format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM occurrences
             WHERE task_id = ?1 AND due_at = ?2 AND user_id = ?3"
        ),
        params![task_id, due_at, user],
        occurrence_row,
    )
    .optional()
    .map_err(map_err)?
    .map(occurrence_record)
    .transpose()
}

#[async_trait]
impl OccurrenceStore for SqliteStore {
    async fn open_occurrences(
        &self,
        user: &UserId,
        now: Timestamp,
        before: Option<&OccurrenceKey>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let user = user.to_string();
        let (before_due, before_id) = before.map_or((i64::MAX, String::new()), |k| {
            (micros(k.due_at), k.task_id.to_string())
        });
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {OCCURRENCE_COLUMNS} FROM occurrences
                     WHERE user_id = ?1 AND acked_at IS NULL AND snoozed_until IS NULL
                       AND expires_at > ?2
                       AND (due_at < ?3 OR (due_at = ?3 AND task_id < ?4))
                     ORDER BY due_at DESC, task_id DESC LIMIT ?5"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(
                    params![user, micros(now), before_due, before_id, limit as i64],
                    occurrence_row,
                )
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            rows.into_iter().map(occurrence_record).collect()
        })
        .await
    }

    async fn snoozed_occurrences(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let user = user.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {OCCURRENCE_COLUMNS} FROM occurrences
                     WHERE user_id = ?1 AND acked_at IS NULL AND snoozed_until IS NOT NULL
                       AND wake_at IS NOT NULL
                     ORDER BY wake_at, task_id LIMIT ?2"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![user, limit as i64], occurrence_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            rows.into_iter().map(occurrence_record).collect()
        })
        .await
    }

    async fn task_occurrences(
        &self,
        user: &UserId,
        task: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let (user, task) = (user.to_string(), task.to_string());
        let before = before.map_or(i64::MAX, micros);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {OCCURRENCE_COLUMNS} FROM occurrences
                     WHERE task_id = ?1 AND user_id = ?2 AND due_at < ?3
                     ORDER BY due_at DESC LIMIT ?4"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![task, user, before, limit as i64], occurrence_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            rows.into_iter().map(occurrence_record).collect()
        })
        .await
    }

    async fn occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
    ) -> Result<Option<OccurrenceRecord>> {
        let (user, task_id, due_at) = (
            user.to_string(),
            key.task_id.to_string(),
            micros(key.due_at),
        );
        self.read(move |conn| select_one(conn, &user, &task_id, due_at))
            .await
    }

    async fn acknowledge_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        channel: Channel,
        at: Timestamp,
    ) -> Result<Option<OccurrenceRecord>> {
        let (user, task_id, due_at) = (
            user.to_string(),
            key.task_id.to_string(),
            micros(key.due_at),
        );
        self.write(move |tx| {
            let acked = tx
                .execute(
                    "UPDATE occurrences SET acked_at = ?4, acked_channel = ?5, wake_at = NULL,
                       escalate_at = NULL
                     WHERE task_id = ?1 AND due_at = ?2 AND user_id = ?3 AND acked_at IS NULL",
                    params![task_id, due_at, user, micros(at), channel.as_str()],
                )
                .map_err(map_err)?;
            if acked > 0 {
                tx.execute(
                    "UPDATE inbox SET read = 1
                     WHERE user_id = ?1 AND task_id = ?2 AND due_at = ?3 AND read = 0",
                    params![user, task_id, due_at],
                )
                .map_err(map_err)?;
            }
            select_one(tx, &user, &task_id, due_at)
        })
        .await
    }

    async fn snooze_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        until: Timestamp,
    ) -> Result<Option<OccurrenceRecord>> {
        let (user, task_id, due_at) = (
            user.to_string(),
            key.task_id.to_string(),
            micros(key.due_at),
        );
        self.write(move |tx| {
            tx.execute(
                "UPDATE occurrences SET snoozed_until = ?4, wake_at = ?4, escalate_at = NULL
                 WHERE task_id = ?1 AND due_at = ?2 AND user_id = ?3 AND acked_at IS NULL
                   AND (snoozed_until IS NULL OR wake_at IS NOT NULL)",
                params![task_id, due_at, user, micros(until)],
            )
            .map_err(map_err)?;
            select_one(tx, &user, &task_id, due_at)
        })
        .await
    }

    async fn put_reply_target(
        &self,
        number_hash: &str,
        user: &UserId,
        key: &OccurrenceKey,
        sent_at: Timestamp,
    ) -> Result<()> {
        let (hash, user) = (number_hash.to_owned(), user.to_string());
        let (task_id, due_at) = (key.task_id.to_string(), micros(key.due_at));
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO sms_reply_targets (number_hash, user_id, task_id, due_at, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (number_hash) DO UPDATE SET
                   user_id = excluded.user_id, task_id = excluded.task_id,
                   due_at = excluded.due_at, sent_at = excluded.sent_at
                 WHERE excluded.sent_at >= sms_reply_targets.sent_at",
                params![hash, user, task_id, due_at, micros(sent_at)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn reply_target(&self, number_hash: &str) -> Result<Option<(UserId, OccurrenceKey)>> {
        let hash = number_hash.to_owned();
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT user_id, task_id, due_at FROM sms_reply_targets
                     WHERE number_hash = ?1",
                    params![hash],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            row.map(|(user, task, due)| {
                Ok((
                    parse_user(&user)?,
                    OccurrenceKey {
                        task_id: parse_id(&task)?,
                        due_at: instant(due)?,
                    },
                ))
            })
            .transpose()
        })
        .await
    }
}
