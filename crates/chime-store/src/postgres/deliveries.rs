//! Deliveries on PostgreSQL: pending deliveries and their leases, attempts, dead letters and
//! the inbox.

use super::schedule::status_from_row;
use super::*;

pub(super) fn inbox_from_row(row: &PgRow) -> Result<InboxItem> {
    Ok(InboxItem {
        id: parse_id(&col::<String>(row, 0)?)?,
        user_id: parse_user(&col::<String>(row, 1)?)?,
        task_id: parse_id(&col::<String>(row, 2)?)?,
        task_name: col(row, 3)?,
        due_at: instant(col(row, 4)?)?,
        created_at: instant(col(row, 5)?)?,
        read: col(row, 6)?,
        silent: col(row, 7)?,
    })
}

#[async_trait]
impl DeliveryStore for PgStore {
    async fn record_deliveries(&self, writes: &[DeliveryWrite]) -> Result<Vec<usize>> {
        self.record_handled(writes, &[], false).await
    }

    async fn recorded_handoffs(&self, ids: &[String]) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT id FROM handoffs WHERE id = ANY($1) AND recorded_at IS NOT NULL")
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn record_handled(
        &self,
        writes: &[DeliveryWrite],
        handled: &[String],
        taken: bool,
    ) -> Result<Vec<usize>> {
        if writes.is_empty() && handled.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole batch (a round trip per delivery was most of a
        // notification batch's time), in key order, so two instances writing overlapping
        // batches (a replay after a rebalance) take the rows' locks in the same order and
        // never deadlock. A concurrent writer of the same key makes this wait for its commit,
        // then do nothing: one delivery per key, whichever instance got there first.
        let mut order: Vec<usize> = (0..writes.len()).collect();
        let key = |w: &DeliveryWrite| {
            (
                w.occurrence.task_id.to_string(),
                micros(w.occurrence.due_at),
                w.status.channel.as_str(),
                w.status.target.clone(),
            )
        };
        order.sort_by_cached_key(|&i| key(&writes[i]));
        let column = |f: &dyn Fn(&DeliveryWrite) -> Option<String>| -> Vec<Option<String>> {
            order.iter().map(|&i| f(&writes[i])).collect()
        };
        let number = |f: &dyn Fn(&DeliveryWrite) -> Option<i64>| -> Vec<Option<i64>> {
            order.iter().map(|&i| f(&writes[i])).collect()
        };
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let inserted = sqlx::query(
            "INSERT INTO deliveries
             (task_id, due_at, channel, target, user_id, outcome, attempts, at, detail,
              provider_id, message, first_attempt_at, next_attempt_at)
             SELECT task_id, due_at, channel, target, user_id, outcome, attempts, at, detail,
                    provider_id, message, first_attempt_at, first_attempt_at
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::text[],
                         $11::text[], $12::bigint[]) WITH ORDINALITY
               AS w (task_id, due_at, channel, target, user_id, outcome, attempts, at, detail,
                     provider_id, message, first_attempt_at, n)
             ORDER BY n
             ON CONFLICT (task_id, due_at, channel, target) DO NOTHING
             RETURNING task_id, due_at, channel, target",
        )
        .bind(column(&|w| Some(w.occurrence.task_id.to_string())))
        .bind(number(&|w| Some(micros(w.occurrence.due_at))))
        .bind(column(&|w| Some(w.status.channel.as_str().to_owned())))
        .bind(column(&|w| Some(w.status.target.clone())))
        .bind(column(&|w| Some(w.user_id.as_str().to_owned())))
        .bind(column(&|w| Some(w.status.outcome.as_str().to_owned())))
        .bind(number(&|w| Some(i64::from(w.status.attempts))))
        .bind(number(&|w| Some(micros(w.status.at))))
        .bind(column(&|w| text(w.status.detail.as_deref())))
        .bind(column(&|w| text(w.status.provider_id.as_deref())))
        .bind(column(&|w| w.message.as_ref().map(ToString::to_string)))
        .bind(number(&|w| {
            (w.status.outcome == DeliveryOutcome::Pending).then(|| micros(w.status.at))
        }))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let inserted: std::collections::HashSet<(String, i64, String, String)> = inserted
            .iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?, col(r, 2)?, col(r, 3)?)))
            .collect::<Result<_>>()?;
        // The first write of each inserted key (a batch may repeat one: a replayed event).
        let mut new = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, w) in writes.iter().enumerate() {
            let (task, due, channel, target) = key(w);
            let k = (task, due, channel.to_owned(), target);
            if inserted.contains(&k) && seen.insert(k) {
                new.push(i);
            }
        }
        let inbox: Vec<&InboxItem> = new
            .iter()
            .filter_map(|&i| writes[i].inbox.as_ref())
            .collect();
        if !inbox.is_empty() {
            sqlx::query(
                "INSERT INTO inbox (id, user_id, task_id, task_name, due_at, created_at, read,
                                    silent)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                                      $5::bigint[], $6::bigint[], $7::boolean[], $8::boolean[])",
            )
            .bind(inbox.iter().map(|i| i.id.to_string()).collect::<Vec<_>>())
            .bind(inbox.iter().map(|i| i.user_id.as_str()).collect::<Vec<_>>())
            .bind(
                inbox
                    .iter()
                    .map(|i| i.task_id.to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                inbox
                    .iter()
                    .map(|i| i.task_name.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(inbox.iter().map(|i| micros(i.due_at)).collect::<Vec<_>>())
            .bind(
                inbox
                    .iter()
                    .map(|i| micros(i.created_at))
                    .collect::<Vec<_>>(),
            )
            .bind(inbox.iter().map(|i| i.read).collect::<Vec<_>>())
            .bind(inbox.iter().map(|i| i.silent).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let events: Vec<OutboxEvent> = new
            .iter()
            .filter_map(|&i| writes[i].event.clone())
            .collect();
        insert_outbox(&mut tx, &events).await?;
        if !handled.is_empty() {
            // Locked in id order, so two instances finishing overlapping handoffs (one from
            // the bus, one claimed from here) never deadlock. Taken over: kept, marked and
            // without its payload, until the bus's copy comes (see migration 0009).
            let statement = if taken {
                "UPDATE handoffs
                 SET recorded_at = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                     payload = ''::bytea, claimed_until = NULL
                 WHERE id IN (
                   SELECT id FROM handoffs WHERE id = ANY($1) ORDER BY id FOR UPDATE
                 )"
            } else {
                "DELETE FROM handoffs WHERE id IN (
                   SELECT id FROM handoffs WHERE id = ANY($1) ORDER BY id FOR UPDATE
                 )"
            };
            sqlx::query(statement)
                .bind(handled)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        self.signal_if(!events.is_empty());
        Ok(new)
    }

    async fn inbox(
        &self,
        user: &UserId,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<Vec<InboxItem>> {
        // Ids are time-ordered; "ntf_g" sorts after every "ntf_<hex>" (byte order: COLLATE "C").
        let before = before.map_or_else(|| "ntf_g".to_owned(), |b| b.to_string());
        let rows = sqlx::query(
            "SELECT id, user_id, task_id, task_name, due_at, created_at, read, silent FROM inbox
             WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user.as_str())
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(inbox_from_row).collect()
    }

    async fn mark_read(&self, user: &UserId, ids: &[NotificationId]) -> Result<u64> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let changed = sqlx::query(
            "UPDATE inbox SET read = TRUE WHERE user_id = $1 AND NOT read AND id = ANY($2)",
        )
        .bind(user.as_str())
        .bind(&ids)
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(changed)
    }

    async fn unread_count(&self, user: &UserId) -> Result<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE user_id = $1 AND NOT read")
                .bind(user.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn claim_deliveries(
        &self,
        channel: Channel,
        now: Timestamp,
        lease_until: Timestamp,
        max: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        // One statement: pick the due rows no other claim holds (SKIP LOCKED), lease them.
        let rows = sqlx::query(
            "UPDATE deliveries AS d SET leased_until = $3
             FROM (
               SELECT task_id, due_at, channel, target FROM deliveries
               WHERE outcome = 'pending' AND channel = $1 AND next_attempt_at <= $2
                 AND (leased_until IS NULL OR leased_until <= $2)
               ORDER BY next_attempt_at LIMIT $4
               FOR UPDATE SKIP LOCKED
             ) AS c
             WHERE d.task_id = c.task_id AND d.due_at = c.due_at
               AND d.channel = c.channel AND d.target = c.target
             RETURNING d.task_id, d.due_at, d.target, d.user_id, d.attempts,
               d.first_attempt_at, d.message, d.next_attempt_at",
        )
        .bind(channel.as_str())
        .bind(micros(now))
        .bind(micros(lease_until))
        .bind(max as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let due_at: i64 = col(row, 1)?;
            let next: i64 = col(row, 7)?;
            let message: Option<String> = col(row, 6)?;
            claimed.push((
                next,
                ClaimedDelivery {
                    key: DeliveryKey {
                        occurrence: OccurrenceKey {
                            task_id: parse_id(&col::<String>(row, 0)?)?,
                            due_at: instant(due_at)?,
                        },
                        channel,
                        target: col(row, 2)?,
                    },
                    user_id: parse_user(&col::<String>(row, 3)?)?,
                    attempts: count(col(row, 4)?, "attempts")?,
                    first_attempt_at: instant(col::<Option<i64>>(row, 5)?.unwrap_or(due_at))?,
                    message: parse_json(message.as_deref().unwrap_or("null"))?,
                    lease_until,
                },
            ));
        }
        // RETURNING keeps no order: earliest next attempt first, as claimed.
        claimed.sort_by(|(a, x), (b, y)| {
            a.cmp(b)
                .then_with(|| x.key.occurrence.task_id.cmp(&y.key.occurrence.task_id))
                .then_with(|| x.key.occurrence.due_at.cmp(&y.key.occurrence.due_at))
                .then_with(|| x.key.target.cmp(&y.key.target))
        });
        Ok(claimed.into_iter().map(|(_, c)| c).collect())
    }

    async fn next_delivery_at(&self, channel: Channel) -> Result<Option<Timestamp>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(GREATEST(next_attempt_at, COALESCE(leased_until, 0))) FROM deliveries
             WHERE outcome = 'pending' AND channel = $1",
        )
        .bind(channel.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        at.map(instant).transpose()
    }

    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        lease_until: Timestamp,
        at: Timestamp,
        result: AttemptResult,
        event: Option<OutboxEvent>,
    ) -> Result<()> {
        let columns = AttemptColumns::from(result);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let changed = sqlx::query(
            "UPDATE deliveries SET
               outcome = $5, attempts = attempts + $12, at = $6, detail = $7,
               provider_id = $8, next_attempt_at = $9, leased_until = NULL,
               message = CASE WHEN $10 THEN message ELSE NULL END
             WHERE task_id = $1 AND due_at = $2 AND channel = $3 AND target = $4
               AND outcome = 'pending' AND leased_until = $11",
        )
        .bind(key.occurrence.task_id.to_string())
        .bind(micros(key.occurrence.due_at))
        .bind(key.channel.as_str())
        .bind(&key.target)
        .bind(columns.outcome)
        .bind(micros(at))
        .bind(text(columns.detail.as_deref()))
        .bind(text(columns.provider_id.as_deref()))
        .bind(columns.next_attempt_at)
        .bind(columns.keep_message)
        .bind(micros(lease_until))
        .bind(columns.attempted)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        // A delivery no longer pending, or claimed again by another worker after this
        // claim's lease ran out, keeps its state and publishes nothing more.
        let publish = changed == 1 && event.is_some();
        if publish {
            insert_outbox(&mut tx, event.as_slice()).await?;
        }
        tx.commit().await.map_err(map_err)?;
        self.signal_if(publish);
        Ok(())
    }

    async fn retry_dead_letter(
        &self,
        user: &UserId,
        key: &DeliveryKey,
        now: Timestamp,
    ) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE deliveries SET outcome = 'pending', next_attempt_at = $6,
               first_attempt_at = $6, leased_until = NULL
             WHERE task_id = $1 AND due_at = $2 AND channel = $3 AND target = $4
               AND user_id = $5 AND outcome = 'deadLettered' AND message IS NOT NULL",
        )
        .bind(key.occurrence.task_id.to_string())
        .bind(micros(key.occurrence.due_at))
        .bind(key.channel.as_str())
        .bind(&key.target)
        .bind(user.as_str())
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        if changed == 1 {
            // Due now: wake the channel's workers in every process, not only this one's.
            sqlx::query("SELECT pg_notify('chime_deliveries', $1)")
                .bind(key.channel.as_str())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        }
        Ok(changed == 1)
    }

    fn delivery_signal(&self, channel: Channel) -> Option<Arc<Notify>> {
        self.wakers.delivery(channel, self.listener())
    }

    async fn pending_deliveries(
        &self,
        user: &UserId,
        task: TaskId,
    ) -> Result<Vec<(OccurrenceKey, DeliveryStatus)>> {
        let rows = sqlx::query(
            "SELECT due_at, channel, target, outcome, attempts, at, detail, provider_id
             FROM deliveries
             WHERE user_id = $1 AND task_id = $2 AND outcome = 'pending'
             ORDER BY due_at, channel, target",
        )
        .bind(user.as_str())
        .bind(task.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    OccurrenceKey {
                        task_id: task,
                        due_at: instant(col(r, 0)?)?,
                    },
                    status_from_row(r, 1)?,
                ))
            })
            .collect()
    }
}
