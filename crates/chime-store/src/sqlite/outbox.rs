//! The outbox on SQLite: the events written beside each change, read and acknowledged by
//! the relay.

use super::*;

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxRow>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT seq, topic, key, payload FROM outbox ORDER BY seq LIMIT ?1")
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![max as i64], |r| {
                    Ok(OutboxRow {
                        seq: r.get(0)?,
                        topic: r.get(1)?,
                        key: r.get(2)?,
                        payload: r.get(3)?,
                    })
                })
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            Ok(rows)
        })
        .await
    }

    async fn outbox_ack(&self, seqs: &[i64]) -> Result<()> {
        let seqs = seqs.to_vec();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached("DELETE FROM outbox WHERE seq = ?1")
                .map_err(map_err)?;
            for seq in seqs {
                stmt.execute(params![seq]).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn outbox_len(&self) -> Result<u64> {
        self.read(|conn| {
            conn.prepare_cached("SELECT count(*) FROM outbox")
                .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0)))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(map_err)
        })
        .await
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.inner.outbox_signal.clone()
    }
}
