//! The schedule on PostgreSQL: applying the execution role's changes and claiming what is
//! due with `FOR UPDATE OF s SKIP LOCKED`, fenced by the task's current version (see
//! `ScheduleStore::fire_due`).

use super::*;

/// `channel, target, outcome, attempts, at, detail, provider_id` from column `from` on.
pub(super) fn status_from_row(row: &PgRow, from: usize) -> Result<DeliveryStatus> {
    Ok(DeliveryStatus {
        channel: parse_channel(&col::<String>(row, from)?)?,
        target: col(row, from + 1)?,
        outcome: parse_outcome(&col::<String>(row, from + 2)?)?,
        attempts: count(col(row, from + 3)?, "attempts")?,
        at: instant(col(row, from + 4)?)?,
        detail: col(row, from + 5)?,
        provider_id: col(row, from + 6)?,
    })
}

pub(super) fn scheduled_from_row(row: &PgRow) -> Result<ScheduledTask> {
    Ok(ScheduledTask {
        task_id: parse_id(&col::<String>(row, 0)?)?,
        user_id: parse_user(&col::<String>(row, 1)?)?,
        version: col::<i64>(row, 2)? as u64,
        body: parse_json(&col::<String>(row, 3)?)?,
        due_at: instant(col(row, 4)?)?,
        seq: count(col(row, 5)?, "seq")?,
    })
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for change in changes {
            let query = match ScheduleRow::from(change) {
                ScheduleRow::Set(r) => sqlx::query(
                    "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (task_id) DO UPDATE SET
                       user_id = excluded.user_id, version = excluded.version,
                       body = excluded.body, due_at = excluded.due_at, seq = excluded.seq
                     WHERE excluded.version > schedule.version",
                )
                .bind(r.task_id)
                .bind(r.user_id)
                .bind(r.version)
                .bind(r.body)
                .bind(r.due_at)
                .bind(r.seq),
                ScheduleRow::Delete { task_id, version } => sqlx::query(
                    "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                     VALUES ($1, '', $2, NULL, NULL, 0)
                     ON CONFLICT (task_id) DO UPDATE SET
                       version = excluded.version, body = NULL, due_at = NULL
                     WHERE excluded.version > schedule.version",
                )
                .bind(task_id)
                .bind(version),
            };
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT LEAST(
               (SELECT MIN(due_at) FROM schedule WHERE due_at IS NOT NULL),
               (SELECT MIN(wake_at) FROM occurrences WHERE wake_at IS NOT NULL),
               (SELECT MIN(escalate_at) FROM occurrences WHERE escalate_at IS NOT NULL))",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        due.map(instant).transpose()
    }

    async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> Result<usize> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // SKIP LOCKED: rows another instance is firing right now are not ours to fire, and
        // waiting for them would only serialise the instances. A row it advanced and
        // committed meanwhile is re-checked against `due_at <= now` before it is locked.
        //
        // The fence: each row comes with its task's current version (NULL once the task is
        // deleted) as of this statement's snapshot, taken after `now`: a change that
        // committed before the due instant is seen even if its event has not reached the
        // schedule yet. Only the schedule row is locked, never the task (`OF s`).
        let due = sqlx::query(
            "SELECT s.task_id, s.user_id, s.version, s.body, s.due_at, s.seq, t.version
             FROM schedule s LEFT JOIN tasks t ON t.id = s.task_id
             WHERE s.due_at IS NOT NULL AND s.due_at <= $1
             ORDER BY s.due_at LIMIT $2
             FOR UPDATE OF s SKIP LOCKED",
        )
        .bind(micros(now))
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::with_capacity(due.len());
        let mut ids = Vec::with_capacity(due.len());
        let mut next_due = Vec::with_capacity(due.len());
        let mut next_seq = Vec::with_capacity(due.len());
        let (mut occ_tasks, mut occ_users, mut occ_due, mut occ_expires, mut occ_seq) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // A nagging task's occurrence also gets its repeats and the wake of the first one.
        let mut occ_nag_every: Vec<Option<i64>> = Vec::new();
        let mut occ_nags: Vec<i64> = Vec::new();
        let mut occ_wake: Vec<Option<i64>> = Vec::new();
        let mut occ_escalate: Vec<Option<i64>> = Vec::new();
        let mut fired = 0;
        for row in &due {
            let task = scheduled_from_row(row)?;
            if col::<Option<i64>>(row, 6)? != Some(task.version as i64) {
                // Stale: the task was deleted or changed after this row was written. The row
                // becomes a tombstone at its version; the change's own event brings the
                // task's current state (if any) when it arrives.
                ids.push(task.task_id.to_string());
                next_due.push(None);
                next_seq.push(None);
                continue;
            }
            fired += 1;
            // A panicking FireFn (a bug in recurrence code) fails this call and commits
            // nothing, as on SQLite, instead of unwinding through the caller's worker.
            let decision = catch_unwind(AssertUnwindSafe(|| fire(&task))).map_err(|_| {
                Error::Storage(format!("firing task {} panicked", task.task_id).into())
            })?;
            events.extend(decision.events);
            occ_tasks.push(task.task_id.to_string());
            occ_users.push(task.user_id.to_string());
            occ_due.push(micros(task.due_at));
            occ_expires.push(expires_at(task.due_at, decision.next));
            occ_seq.push(i64::from(task.seq));
            let every = decision.nag.map(|n| n.every().as_micros() as i64);
            occ_nag_every.push(every);
            occ_nags.push(decision.nag.map_or(0, |n| i64::from(n.times)));
            occ_wake.push(every.map(|e| micros(now).saturating_add(e)));
            occ_escalate.push(decision.escalate_at.map(micros));
            ids.push(task.task_id.to_string());
            next_due.push(decision.next.map(|(at, _)| micros(at)));
            next_seq.push(decision.next.map(|(_, seq)| i64::from(seq)));
        }
        insert_outbox(&mut tx, &events).await?;
        // The occurrences are open from the claim that fires them (same transaction).
        sqlx::query(
            "INSERT INTO occurrences
               (task_id, user_id, due_at, expires_at, seq, nag_every, nags_left, wake_at,
                escalate_at, fired_at)
             SELECT n.task_id, n.user_id, n.due_at, n.expires_at, n.seq, n.nag_every,
                    n.nags_left, n.wake_at, n.escalate_at, $10
             FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
                         $6::int8[], $7::int8[], $8::int8[], $9::int8[])
               AS n (task_id, user_id, due_at, expires_at, seq, nag_every, nags_left, wake_at,
                     escalate_at)
             ON CONFLICT DO NOTHING",
        )
        .bind(&occ_tasks)
        .bind(&occ_users)
        .bind(&occ_due)
        .bind(&occ_expires)
        .bind(&occ_seq)
        .bind(&occ_nag_every)
        .bind(&occ_nags)
        .bind(&occ_wake)
        .bind(&occ_escalate)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // A finished row becomes a tombstone (no due instant, no body), keeping its version.
        sqlx::query(
            "UPDATE schedule AS s SET
               due_at = n.due_at,
               seq = COALESCE(n.seq, s.seq),
               body = CASE WHEN n.due_at IS NULL THEN NULL ELSE s.body END
             FROM UNNEST($1::text[], $2::int8[], $3::int8[]) AS n (task_id, due_at, seq)
             WHERE s.task_id = n.task_id",
        )
        .bind(&ids)
        .bind(&next_due)
        .bind(&next_seq)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(!events.is_empty());
        Ok(fired)
    }

    async fn wake_due(&self, now: Timestamp, max: usize, wake: WakeFn) -> Result<usize> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // As `fire_due`: SKIP LOCKED so instances split the returns, and the task's current
        // state read in the same snapshot (a deleted task's snooze ends without returning).
        let due = sqlx::query(
            "SELECT o.task_id, o.due_at, o.user_id, o.seq, o.wake_at, t.version, t.body,
                    o.snoozed_until, o.nag_every, o.nags_left, o.escalated, o.escalate_at
             FROM occurrences o LEFT JOIN tasks t ON t.id = o.task_id
             WHERE o.wake_at IS NOT NULL AND o.wake_at <= $1
             ORDER BY o.wake_at LIMIT $2
             FOR UPDATE OF o SKIP LOCKED",
        )
        .bind(micros(now))
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::new();
        let mut woke = 0;
        for row in &due {
            let (task_id, due_at): (String, i64) = (col(row, 0)?, col(row, 1)?);
            let columns: WakeColumns = (
                task_id.clone(),
                due_at,
                col(row, 2)?,
                col(row, 3)?,
                col(row, 4)?,
                col(row, 5)?,
                col(row, 6)?,
            );
            let snoozed_until: Option<i64> = col(row, 7)?;
            let Some(w) = wake_of(columns, snoozed_until)? else {
                // Its task is gone: it will not return.
                sqlx::query(
                    "UPDATE occurrences SET wake_at = NULL, escalate_at = NULL
                     WHERE task_id = $1 AND due_at = $2",
                )
                .bind(&task_id)
                .bind(due_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                continue;
            };
            let decided = catch_unwind(AssertUnwindSafe(|| wake(&w)))
                .map_err(|_| Error::Storage(format!("waking task {task_id} panicked").into()))?;
            let Some(woken) = decided else { continue };
            woke += 1;
            events.extend(woken.events);
            let woke_row = Woke {
                snoozed_until,
                nag_every: col(row, 8)?,
                nags_left: col(row, 9)?,
                escalated: col(row, 10)?,
                escalate_at: col(row, 11)?,
            };
            let next = follow(&woke_row, woken.escalate_at, now);
            sqlx::query(
                "INSERT INTO occurrences
                   (task_id, due_at, user_id, fired_at, expires_at, seq, snoozed_from,
                    nag_every, nags_left, wake_at, escalated, escalate_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&task_id)
            .bind(micros(w.key.due_at))
            .bind(w.user_id.as_str())
            .bind(micros(now))
            .bind(expires_at(w.key.due_at, None))
            .bind(i64::from(w.seq))
            .bind(due_at)
            .bind(next.nag_every)
            .bind(next.nags_left)
            .bind(next.wake_at)
            .bind(next.escalated)
            .bind(next.escalate_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            // Fired: a repeat (no snooze was set) marks the row superseded by it.
            sqlx::query(
                "UPDATE occurrences SET
                   nagged = nagged OR snoozed_until IS NULL,
                   snoozed_until = COALESCE(snoozed_until, wake_at), wake_at = NULL,
                   escalate_at = NULL
                 WHERE task_id = $1 AND due_at = $2",
            )
            .bind(&task_id)
            .bind(due_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        insert_outbox(&mut tx, &events).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(!events.is_empty());
        Ok(woke)
    }

    async fn escalate_due(&self, now: Timestamp, max: usize, step: EscalateFn) -> Result<usize> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // As `wake_due`: SKIP LOCKED so instances split the steps. An acknowledgement that
        // committed first has cleared `escalate_at`, which the locking read re-checks.
        let due = sqlx::query(
            "SELECT o.task_id, o.due_at, o.user_id, o.seq, o.escalate_at, o.escalated,
                    t.version, t.body
             FROM occurrences o LEFT JOIN tasks t ON t.id = o.task_id
             WHERE o.escalate_at IS NOT NULL AND o.escalate_at <= $1
             ORDER BY o.escalate_at LIMIT $2
             FOR UPDATE OF o SKIP LOCKED",
        )
        .bind(micros(now))
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::new();
        let mut fired = 0;
        for row in &due {
            let (task_id, due_at): (String, i64) = (col(row, 0)?, col(row, 1)?);
            let columns: EscalateColumns = (
                task_id.clone(),
                due_at,
                col(row, 2)?,
                col(row, 3)?,
                col(row, 4)?,
                col(row, 5)?,
                col(row, 6)?,
                col(row, 7)?,
            );
            // The step is reached (counted, the next one due) whatever it published.
            let (decided, reached) = match escalate_of(columns)? {
                Some(e) => {
                    let decided = catch_unwind(AssertUnwindSafe(|| step(&e))).map_err(|_| {
                        Error::Storage(format!("escalating task {task_id} panicked").into())
                    })?;
                    match decided {
                        Some(decided) => (decided, 1_i64),
                        None => continue,
                    }
                }
                // Its task is gone: the chain ends.
                None => (Escalated::default(), 0),
            };
            fired += reached as usize;
            events.extend(decided.events);
            sqlx::query(
                "UPDATE occurrences SET escalated = escalated + $3, escalate_at = $4
                 WHERE task_id = $1 AND due_at = $2",
            )
            .bind(&task_id)
            .bind(due_at)
            .bind(reached)
            .bind(decided.next_at.map(micros))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        insert_outbox(&mut tx, &events).await?;
        tx.commit().await.map_err(map_err)?;
        self.signal_if(!events.is_empty());
        Ok(fired)
    }

    async fn scheduled(&self, task_id: TaskId) -> Result<Option<ScheduledTask>> {
        let row = sqlx::query(
            "SELECT task_id, user_id, version, body, due_at, seq FROM schedule
             WHERE task_id = $1 AND due_at IS NOT NULL",
        )
        .bind(task_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(scheduled_from_row).transpose()
    }

    async fn unscheduled_tasks(
        &self,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(crate::UNSCHEDULED_TASKS)
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(super::tasks::task_from_row).collect()
    }
}
