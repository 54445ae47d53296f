//! The schedule on SQLite: applying the execution role's changes and claiming what is due,
//! fenced by the task's current version (see `ScheduleStore::fire_due`).

use super::*;

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn apply_schedule_changes(&self, changes: &[ScheduleChange]) -> Result<()> {
        let changes = changes.to_vec();
        self.write(move |tx| {
            let mut set = tx
                .prepare_cached(
                    "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (task_id) DO UPDATE SET
                       user_id = excluded.user_id, version = excluded.version,
                       body = excluded.body, due_at = excluded.due_at, seq = excluded.seq
                     WHERE excluded.version > schedule.version",
                )
                .map_err(map_err)?;
            for change in &changes {
                match ScheduleRow::from(change) {
                    ScheduleRow::Set(r) => {
                        set.execute(params![
                            r.task_id, r.user_id, r.version, r.body, r.due_at, r.seq
                        ])
                        .map_err(map_err)?;
                    }
                    ScheduleRow::Delete { task_id, version } => {
                        tx.execute(
                            "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                             VALUES (?1, '', ?2, NULL, NULL, 0)
                             ON CONFLICT (task_id) DO UPDATE SET
                               version = excluded.version, body = NULL, due_at = NULL
                             WHERE excluded.version > schedule.version",
                            params![task_id, version],
                        )
                        .map_err(map_err)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        self.read(|conn| {
            let due: Option<i64> = conn
                .query_row(
                    "SELECT MIN(due) FROM (
                       SELECT MIN(due_at) AS due FROM schedule WHERE due_at IS NOT NULL
                       UNION ALL
                       SELECT MIN(wake_at) FROM occurrences WHERE wake_at IS NOT NULL
                       UNION ALL
                       SELECT MIN(escalate_at) FROM occurrences WHERE escalate_at IS NOT NULL)",
                    [],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            due.map(instant).transpose()
        })
        .await
    }

    async fn fire_due(&self, now: Timestamp, max: usize, fire: FireFn) -> Result<usize> {
        self.write_with_events(
            |fired| *fired > 0,
            move |tx| {
                // The fence: each row comes with its task's current version (NULL once the
                // task is deleted), read in this transaction, so a change that committed before
                // the claim is seen even if its event has not reached the schedule yet.
                let due = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT s.task_id, s.user_id, s.version, s.body, s.due_at, s.seq,
                                    t.version
                             FROM schedule s LEFT JOIN tasks t ON t.id = s.task_id
                             WHERE s.due_at IS NOT NULL AND s.due_at <= ?1
                             ORDER BY s.due_at LIMIT ?2",
                        )
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map(params![micros(now), max as i64], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, u32>(5)?,
                                r.get::<_, Option<i64>>(6)?,
                            ))
                        })
                        .map_err(map_err)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(map_err)?;
                    rows
                };
                let mut advance = tx
                    .prepare_cached("UPDATE schedule SET due_at = ?2, seq = ?3 WHERE task_id = ?1")
                    .map_err(map_err)?;
                let mut finish = tx
                    .prepare_cached(
                        "UPDATE schedule SET due_at = NULL, body = NULL WHERE task_id = ?1",
                    )
                    .map_err(map_err)?;
                let mut opened = tx
                    .prepare_cached(
                        "INSERT INTO occurrences
                           (task_id, due_at, user_id, fired_at, expires_at, seq,
                            nag_every, nags_left, wake_at, escalate_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
                    )
                    .map_err(map_err)?;
                let mut fired = 0;
                for (task_id, user_id, version, body, due_at, seq, current) in due {
                    if current != Some(version) {
                        // Stale: the task was deleted or changed after this row was written.
                        // The row becomes a tombstone at its version; the change's own event
                        // brings the task's current state (if any) when it arrives.
                        finish.execute(params![task_id]).map_err(map_err)?;
                        continue;
                    }
                    fired += 1;
                    let row = ScheduledTask {
                        task_id: parse_id(&task_id)?,
                        user_id: parse_user(&user_id)?,
                        version: version as u64,
                        body: parse_json(&body)?,
                        due_at: instant(due_at)?,
                        seq,
                    };
                    let decision = fire(&row);
                    insert_outbox(tx, &decision.events)?;
                    // The occurrence is open from the claim that fires it (same transaction).
                    opened
                        .execute(params![
                            task_id,
                            due_at,
                            user_id,
                            micros(now),
                            expires_at(row.due_at, decision.next),
                            seq,
                            decision.nag.map(|n| n.every().as_micros() as i64),
                            decision.nag.map_or(0, |n| i64::from(n.times)),
                            decision
                                .nag
                                .map(|n| micros(now).saturating_add(n.every().as_micros() as i64)),
                            decision.escalate_at.map(micros)
                        ])
                        .map_err(map_err)?;
                    match decision.next {
                        Some((at, seq)) => advance.execute(params![task_id, micros(at), seq]),
                        None => finish.execute(params![task_id]),
                    }
                    .map_err(map_err)?;
                }
                Ok(fired)
            },
        )
        .await
    }

    async fn wake_due(&self, now: Timestamp, max: usize, wake: WakeFn) -> Result<usize> {
        // The timer asks after every claim; most of the time nothing is snoozed. A read (on
        // its own connection) answers that without a turn on the single writer.
        let any = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM occurrences
                                    WHERE wake_at IS NOT NULL AND wake_at <= ?1)",
                    params![micros(now)],
                    |r| r.get::<_, bool>(0),
                )
                .map_err(map_err)
            })
            .await?;
        if !any {
            return Ok(0);
        }
        self.write_with_events(
            |woke| *woke > 0,
            move |tx| {
                let due = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT o.task_id, o.due_at, o.user_id, o.seq, o.wake_at,
                                    t.version, t.body, o.snoozed_until, o.nag_every, o.nags_left,
                                    o.escalated, o.escalate_at
                             FROM occurrences o LEFT JOIN tasks t ON t.id = o.task_id
                             WHERE o.wake_at IS NOT NULL AND o.wake_at <= ?1
                             ORDER BY o.wake_at LIMIT ?2",
                        )
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map(params![micros(now), max as i64], |r| {
                            let columns: WakeColumns = (
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get(6)?,
                            );
                            let woke = Woke {
                                snoozed_until: r.get(7)?,
                                nag_every: r.get(8)?,
                                nags_left: r.get(9)?,
                                escalated: r.get(10)?,
                                escalate_at: r.get(11)?,
                            };
                            Ok((columns, woke))
                        })
                        .map_err(map_err)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(map_err)?;
                    rows
                };
                // Fired: a repeat (no snooze was set) marks the row superseded by it.
                let mut returned = tx
                    .prepare_cached(
                        "UPDATE occurrences SET
                           nagged = CASE WHEN snoozed_until IS NULL THEN 1 ELSE nagged END,
                           snoozed_until = COALESCE(snoozed_until, wake_at), wake_at = NULL,
                           escalate_at = NULL
                         WHERE task_id = ?1 AND due_at = ?2",
                    )
                    .map_err(map_err)?;
                let mut ended = tx
                    .prepare_cached(
                        "UPDATE occurrences SET wake_at = NULL, escalate_at = NULL
                         WHERE task_id = ?1 AND due_at = ?2",
                    )
                    .map_err(map_err)?;
                let mut opened = tx
                    .prepare_cached(
                        "INSERT INTO occurrences
                           (task_id, due_at, user_id, fired_at, expires_at, seq, snoozed_from,
                            nag_every, nags_left, wake_at, escalated, escalate_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                         ON CONFLICT DO NOTHING",
                    )
                    .map_err(map_err)?;
                let mut woke = 0;
                for (row, woke_row) in due {
                    let (task_id, due_at) = (row.0.clone(), row.1);
                    let Some(w) = wake_of(row, woke_row.snoozed_until)? else {
                        // Its task is gone: it will not return.
                        ended.execute(params![task_id, due_at]).map_err(map_err)?;
                        continue;
                    };
                    let Some(woken) = wake(&w) else { continue };
                    woke += 1;
                    insert_outbox(tx, &woken.events)?;
                    let next = follow(&woke_row, woken.escalate_at, now);
                    opened
                        .execute(params![
                            task_id,
                            micros(w.key.due_at),
                            w.user_id.as_str(),
                            micros(now),
                            expires_at(w.key.due_at, None),
                            w.seq,
                            due_at,
                            next.nag_every,
                            next.nags_left,
                            next.wake_at,
                            next.escalated,
                            next.escalate_at
                        ])
                        .map_err(map_err)?;
                    returned
                        .execute(params![task_id, due_at])
                        .map_err(map_err)?;
                }
                Ok(woke)
            },
        )
        .await
    }

    async fn escalate_due(&self, now: Timestamp, max: usize, step: EscalateFn) -> Result<usize> {
        // As `wake_due`: a read answers "nothing due" without a turn on the single writer.
        let any = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM occurrences
                                    WHERE escalate_at IS NOT NULL AND escalate_at <= ?1)",
                    params![micros(now)],
                    |r| r.get::<_, bool>(0),
                )
                .map_err(map_err)
            })
            .await?;
        if !any {
            return Ok(0);
        }
        self.write_with_events(
            |fired| *fired > 0,
            move |tx| {
                let due = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT o.task_id, o.due_at, o.user_id, o.seq, o.escalate_at,
                                    o.escalated, t.version, t.body
                             FROM occurrences o LEFT JOIN tasks t ON t.id = o.task_id
                             WHERE o.escalate_at IS NOT NULL AND o.escalate_at <= ?1
                             ORDER BY o.escalate_at LIMIT ?2",
                        )
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map(params![micros(now), max as i64], |r| {
                            Ok::<EscalateColumns, _>((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get(6)?,
                                r.get(7)?,
                            ))
                        })
                        .map_err(map_err)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(map_err)?;
                    rows
                };
                let mut moved = tx
                    .prepare_cached(
                        "UPDATE occurrences SET escalated = escalated + ?3, escalate_at = ?4
                         WHERE task_id = ?1 AND due_at = ?2",
                    )
                    .map_err(map_err)?;
                let mut fired = 0;
                for row in due {
                    let (task_id, due_at) = (row.0.clone(), row.1);
                    // The step is reached (counted, the next one due) whatever it published.
                    let (decided, reached) = match escalate_of(row)? {
                        Some(e) => match step(&e) {
                            Some(decided) => (decided, 1),
                            None => continue,
                        },
                        // Its task is gone: the chain ends.
                        None => (Escalated::default(), 0),
                    };
                    fired += reached as usize;
                    insert_outbox(tx, &decided.events)?;
                    moved
                        .execute(params![
                            task_id,
                            due_at,
                            reached,
                            decided.next_at.map(micros)
                        ])
                        .map_err(map_err)?;
                }
                Ok(fired)
            },
        )
        .await
    }

    async fn scheduled(&self, task_id: TaskId) -> Result<Option<ScheduledTask>> {
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT user_id, version, body, due_at, seq FROM schedule
                     WHERE task_id = ?1 AND due_at IS NOT NULL",
                    params![task_id.to_string()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, u32>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            row.map(|(user, version, body, due, seq)| {
                Ok(ScheduledTask {
                    task_id,
                    user_id: parse_user(&user)?,
                    version: version as u64,
                    body: parse_json(&body)?,
                    due_at: instant(due)?,
                    seq,
                })
            })
            .transpose()
        })
        .await
    }

    async fn unscheduled_tasks(
        &self,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&crate::UNSCHEDULED_TASKS.replace('$', "?"))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![after, limit as i64], super::tasks::task_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            rows.into_iter().map(super::tasks::task_from_row).collect()
        })
        .await
    }
}
