//! The outbox on PostgreSQL: the events written beside each change, claimed by one relay at
//! a time under a lease (the advisory lock and key order are explained at `outbox_claim`).

use super::*;

#[async_trait]
impl OutboxStore for PgStore {
    async fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query("SELECT seq, topic, key, payload FROM outbox ORDER BY seq LIMIT $1")
            .bind(max as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    seq: col(r, 0)?,
                    topic: col(r, 1)?,
                    key: col(r, 2)?,
                    payload: col(r, 3)?,
                })
            })
            .collect()
    }

    async fn outbox_claim(&self, max: usize) -> Result<Vec<OutboxRow>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Every relay waits for this lock, so a relay that goes silent while it holds it (cut
        // off between this statement and the next) must not hold it for the connection's
        // 5 s (`SESSION_SETTINGS`): its transaction ends 1 s after it went silent. The two
        // statements are one round trip apart.
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1), \
             set_config('idle_in_transaction_session_timeout', '1s', true)",
        )
        .bind(OUTBOX_CLAIM_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // Claimable: unclaimed, claimed by this instance, or a lease that ran out; and no
        // older event of the same key under another instance's live lease. The clock is the
        // database's, read after the lock.
        let rows = sqlx::query(
            "WITH now AS MATERIALIZED (
               SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us
             ),
             claimable AS (
               SELECT o.seq FROM outbox o, now
               WHERE (o.claimed_by IS NULL OR o.claimed_by = $1 OR o.claimed_until < now.us)
                 AND NOT EXISTS (
                   SELECT 1 FROM outbox e
                   WHERE e.key = o.key AND e.seq < o.seq
                     AND e.claimed_by <> $1 AND e.claimed_until >= now.us
                 )
               ORDER BY o.seq
               LIMIT $2
               FOR UPDATE OF o SKIP LOCKED
             )
             UPDATE outbox SET claimed_by = $1, claimed_until = now.us + $3
             FROM claimable, now
             WHERE outbox.seq = claimable.seq
             RETURNING outbox.seq, outbox.topic, outbox.key, outbox.payload",
        )
        .bind(&*self.claimer)
        .bind(max as i64)
        .bind(micros_of(OUTBOX_LEASE))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut rows = rows
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    seq: col(r, 0)?,
                    topic: col(r, 1)?,
                    key: col(r, 2)?,
                    payload: col(r, 3)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING has no order.
        rows.sort_unstable_by_key(|r| r.seq);
        Ok(rows)
    }

    async fn outbox_ack(&self, seqs: &[i64]) -> Result<()> {
        sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)")
            .bind(seqs)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn outbox_len(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.wakers.outbox(self.listener())
    }

    fn keeps_handoffs(&self) -> bool {
        true
    }

    async fn claim_handoffs(
        &self,
        after: Duration,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Handoff>> {
        // The clock is the database's, as where the handoffs were written; two claimers skip
        // each other's rows, and a live lease keeps a handoff from being claimed again. Those
        // recorded by a takeover whose bus copy never came are swept after
        // `HANDOFF_RECORDED_KEPT`.
        let rows = sqlx::query(
            "WITH now AS MATERIALIZED (
               SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us
             ),
             swept AS (
               DELETE FROM handoffs USING now
               WHERE recorded_at IS NOT NULL AND recorded_at < now.us - $4
             ),
             claimable AS (
               SELECT h.id FROM handoffs h, now
               WHERE h.recorded_at IS NULL AND h.at <= now.us - $1
                 AND (h.claimed_until IS NULL OR h.claimed_until < now.us)
               ORDER BY h.at
               LIMIT $2
               FOR UPDATE OF h SKIP LOCKED
             )
             UPDATE handoffs SET claimed_until = now.us + $3
             FROM claimable, now
             WHERE handoffs.id = claimable.id
             RETURNING handoffs.id, handoffs.payload",
        )
        .bind(micros_of(after))
        .bind(max as i64)
        .bind(micros_of(lease))
        .bind(micros_of(HANDOFF_RECORDED_KEPT))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(Handoff {
                    id: col(r, 0)?,
                    payload: col(r, 1)?,
                })
            })
            .collect()
    }
}
