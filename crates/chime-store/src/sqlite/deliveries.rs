//! Deliveries on SQLite: pending deliveries and their leases, attempts, dead letters and
//! the inbox.

use super::*;

/// `channel, target, outcome, attempts, at, detail, provider_id`.
pub(super) type StatusRow = (
    String,
    String,
    String,
    u32,
    i64,
    Option<String>,
    Option<String>,
);

pub(super) fn status_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatusRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

pub(super) fn status_from_row(
    (channel, target, outcome, attempts, at, detail, provider_id): StatusRow,
) -> Result<DeliveryStatus> {
    Ok(DeliveryStatus {
        channel: parse_channel(&channel)?,
        target,
        outcome: parse_outcome(&outcome)?,
        attempts,
        at: instant(at)?,
        detail,
        provider_id,
    })
}

pub(super) type InboxRow = (String, String, String, String, i64, i64, bool, bool);

pub(super) fn inbox_from_row(
    (id, user, task, name, due, created, read, silent): InboxRow,
) -> Result<InboxItem> {
    Ok(InboxItem {
        id: parse_id(&id)?,
        user_id: parse_user(&user)?,
        task_id: parse_id(&task)?,
        task_name: name,
        due_at: instant(due)?,
        created_at: instant(created)?,
        read,
        silent,
    })
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn record_deliveries(&self, writes: &[DeliveryWrite]) -> Result<Vec<usize>> {
        let writes = writes.to_vec();
        self.write_with_events(
            |new: &Vec<usize>| !new.is_empty(),
            move |tx| {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO deliveries
                     (task_id, due_at, channel, target, user_id, outcome, attempts, at, detail,
                      provider_id, message, first_attempt_at, next_attempt_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                    )
                    .map_err(map_err)?;
                let mut inbox = tx
                .prepare_cached(
                    "INSERT INTO inbox (id, user_id, task_id, task_name, due_at, created_at, read,
                                        silent)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(map_err)?;
                let mut new = Vec::new();
                for (i, w) in writes.iter().enumerate() {
                    let pending = w.status.outcome == DeliveryOutcome::Pending;
                    let inserted = insert
                        .execute(params![
                            w.occurrence.task_id.to_string(),
                            micros(w.occurrence.due_at),
                            w.status.channel.as_str(),
                            w.status.target,
                            w.user_id.as_str(),
                            w.status.outcome.as_str(),
                            w.status.attempts,
                            micros(w.status.at),
                            w.status.detail,
                            w.status.provider_id,
                            w.message.as_ref().map(ToString::to_string),
                            pending.then(|| micros(w.status.at)),
                        ])
                        .map_err(map_err)?;
                    if inserted == 0 {
                        continue;
                    }
                    if let Some(item) = &w.inbox {
                        inbox
                            .execute(params![
                                item.id.to_string(),
                                item.user_id.as_str(),
                                item.task_id.to_string(),
                                item.task_name,
                                micros(item.due_at),
                                micros(item.created_at),
                                item.read,
                                item.silent,
                            ])
                            .map_err(map_err)?;
                    }
                    if let Some(event) = &w.event {
                        insert_outbox(tx, std::slice::from_ref(event))?;
                    }
                    new.push(i);
                }
                Ok(new)
            },
        )
        .await
    }

    async fn inbox(
        &self,
        user: &UserId,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<Vec<InboxItem>> {
        let user = user.clone();
        // Ids are time-ordered; "ntf_g" sorts after every "ntf_<hex>".
        let before = before.map_or_else(|| "ntf_g".to_owned(), |b| b.to_string());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, user_id, task_id, task_name, due_at, created_at, read, silent
                     FROM inbox WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![user.as_str(), before, limit as i64], |r| {
                    Ok((
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
                .collect::<rusqlite::Result<Vec<InboxRow>>>()
                .map_err(map_err)?;
            rows.into_iter().map(inbox_from_row).collect()
        })
        .await
    }

    async fn mark_read(&self, user: &UserId, ids: &[NotificationId]) -> Result<u64> {
        let user = user.clone();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE inbox SET read = 1 WHERE id = ?1 AND user_id = ?2 AND read = 0",
                )
                .map_err(map_err)?;
            let mut changed = 0;
            for id in &ids {
                changed += stmt.execute(params![id, user.as_str()]).map_err(map_err)? as u64;
            }
            Ok(changed)
        })
        .await
    }

    async fn unread_count(&self, user: &UserId) -> Result<u64> {
        let user = user.clone();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM inbox WHERE user_id = ?1 AND read = 0",
                params![user.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        channel: Channel,
        now: Timestamp,
        lease_until: Timestamp,
        max: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.write(move |tx| {
            let rows = tx
                .prepare_cached(
                    "SELECT task_id, due_at, target, user_id, attempts, first_attempt_at, message
                     FROM deliveries
                     WHERE outcome = 'pending' AND channel = ?1 AND next_attempt_at <= ?2
                       AND (leased_until IS NULL OR leased_until <= ?2)
                     ORDER BY next_attempt_at LIMIT ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![channel.as_str(), micros(now), max as i64], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, u32>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, Option<String>>(6)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_err)?;
            let mut lease = tx
                .prepare_cached(
                    "UPDATE deliveries SET leased_until = ?5
                     WHERE task_id = ?1 AND due_at = ?2 AND channel = ?3 AND target = ?4",
                )
                .map_err(map_err)?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (task_id, due_at, target, user, attempts, first, message) in rows {
                lease
                    .execute(params![
                        task_id,
                        due_at,
                        channel.as_str(),
                        target,
                        micros(lease_until)
                    ])
                    .map_err(map_err)?;
                claimed.push(ClaimedDelivery {
                    key: DeliveryKey {
                        occurrence: OccurrenceKey {
                            task_id: parse_id(&task_id)?,
                            due_at: instant(due_at)?,
                        },
                        channel,
                        target,
                    },
                    user_id: parse_user(&user)?,
                    attempts,
                    first_attempt_at: instant(first.unwrap_or(due_at))?,
                    message: parse_json(message.as_deref().unwrap_or("null"))?,
                    lease_until,
                });
            }
            Ok(claimed)
        })
        .await
    }

    async fn next_delivery_at(&self, channel: Channel) -> Result<Option<Timestamp>> {
        self.read(move |conn| {
            let at: Option<i64> = conn
                .query_row(
                    "SELECT MIN(MAX(next_attempt_at, COALESCE(leased_until, 0))) FROM deliveries
                     WHERE outcome = 'pending' AND channel = ?1",
                    params![channel.as_str()],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            at.map(instant).transpose()
        })
        .await
    }

    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        lease_until: Timestamp,
        at: Timestamp,
        result: AttemptResult,
        event: Option<OutboxEvent>,
    ) -> Result<()> {
        let key = key.clone();
        let has_event = event.is_some();
        let signal = self.inner.outbox_signal.clone();
        self.write(move |tx| {
            let columns = AttemptColumns::from(result);
            let changed = tx
                .prepare_cached(
                    "UPDATE deliveries SET
                       outcome = ?5, attempts = attempts + ?12, at = ?6, detail = ?7,
                       provider_id = ?8, next_attempt_at = ?9, leased_until = NULL,
                       message = CASE WHEN ?10 THEN message ELSE NULL END
                     WHERE task_id = ?1 AND due_at = ?2 AND channel = ?3 AND target = ?4
                       AND outcome = 'pending' AND leased_until = ?11",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        key.occurrence.task_id.to_string(),
                        micros(key.occurrence.due_at),
                        key.channel.as_str(),
                        key.target,
                        columns.outcome,
                        micros(at),
                        columns.detail,
                        columns.provider_id,
                        columns.next_attempt_at,
                        columns.keep_message,
                        micros(lease_until),
                        columns.attempted,
                    ])
                })
                .map_err(map_err)?;
            // A delivery no longer pending, or claimed again by another worker after this
            // claim's lease ran out, keeps its state and publishes nothing more.
            if changed == 1 {
                if let Some(event) = &event {
                    insert_outbox(tx, std::slice::from_ref(event))?;
                }
            }
            Ok(())
        })
        .await?;
        if has_event {
            signal.notify_one();
        }
        Ok(())
    }

    async fn retry_dead_letter(
        &self,
        user: &UserId,
        key: &DeliveryKey,
        now: Timestamp,
    ) -> Result<bool> {
        let (user, key) = (user.clone(), key.clone());
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE deliveries SET outcome = 'pending', next_attempt_at = ?6,
                       first_attempt_at = ?6, leased_until = NULL
                     WHERE task_id = ?1 AND due_at = ?2 AND channel = ?3 AND target = ?4
                       AND user_id = ?5 AND outcome = 'deadLettered' AND message IS NOT NULL",
                    params![
                        key.occurrence.task_id.to_string(),
                        micros(key.occurrence.due_at),
                        key.channel.as_str(),
                        key.target,
                        user.as_str(),
                        micros(now),
                    ],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn pending_deliveries(
        &self,
        user: &UserId,
        task: TaskId,
    ) -> Result<Vec<(OccurrenceKey, DeliveryStatus)>> {
        let user = user.clone();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT due_at, channel, target, outcome, attempts, at, detail, provider_id
                     FROM deliveries
                     WHERE user_id = ?1 AND task_id = ?2 AND outcome = 'pending'
                     ORDER BY due_at, channel, target",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![user.as_str(), task.to_string()], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            (
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get(6)?,
                                r.get(7)?,
                            ),
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<(i64, StatusRow)>>>()
                })
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(due, status)| {
                    Ok((
                        OccurrenceKey {
                            task_id: task,
                            due_at: instant(due)?,
                        },
                        status_from_row(status)?,
                    ))
                })
                .collect()
        })
        .await
    }
}
