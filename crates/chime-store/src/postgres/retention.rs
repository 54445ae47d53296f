//! Retention on PostgreSQL: the shared rules of `crate::retention`, a window per transaction.
//! Several instances may walk at once: a row two of them delete is deleted once, and each
//! counts only its own.

use sqlx::postgres::PgArguments;
use sqlx::query::Query;

use super::*;
use crate::retention::{KeyType, KeyValue, PastCursor, PastKind, Purged, RetentionStore};

fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    key: &'q KeyValue,
) -> Query<'q, Postgres, PgArguments> {
    match key {
        KeyValue::Text(s) => query.bind(s.as_str()),
        KeyValue::Int(i) => query.bind(*i),
    }
}

#[async_trait]
impl RetentionStore for PgStore {
    async fn purge_past(
        &self,
        kind: PastKind,
        cutoff: Timestamp,
        now: Timestamp,
        after: Option<&PastCursor>,
        max: usize,
    ) -> Result<Purged> {
        let (table, max) = (kind.table(), max.max(1));
        let window_sql = table.window(after.is_some());
        let mut window = sqlx::query(&window_sql);
        for key in after.map_or(&[][..], |c| &c.0[..]) {
            window = bind(window, key);
        }
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let rows = window
            .bind(max as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let keys = rows
            .iter()
            .map(|row| {
                table
                    .key
                    .iter()
                    .enumerate()
                    .map(|(i, (_, ty))| match ty {
                        KeyType::Text => col(row, i).map(KeyValue::Text),
                        KeyType::Int => col(row, i).map(KeyValue::Int),
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            return Ok(Purged {
                deleted: 0,
                next: None,
            });
        };
        let purge_sql = table.purge();
        let mut purge = sqlx::query(&purge_sql)
            .bind(micros(cutoff))
            .bind(micros(now));
        for key in first.iter().chain(last) {
            purge = bind(purge, key);
        }
        let deleted = purge
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        tx.commit().await.map_err(map_err)?;
        Ok(Purged {
            deleted,
            next: (keys.len() == max).then(|| PastCursor(last.clone())),
        })
    }

    async fn count_past(&self, kind: PastKind, cutoff: Timestamp, now: Timestamp) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(&kind.table().count())
            .bind(micros(cutoff))
            .bind(micros(now))
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(n.max(0) as u64)
    }
}
