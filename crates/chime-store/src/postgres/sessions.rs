//! Web sessions on PostgreSQL: keyed by the hash of the session id, with pending OIDC
//! sign-ins taken atomically.

use super::*;

pub(super) const SESSION_COLUMNS: &str =
    "id_hash, csrf, user_id, access_token, access_expires_at, \
     pending_state, pending_nonce, pending_verifier, pending_return_to, expires_at";

/// The pending sign-in in columns `first..first + 4`, when there is one.
pub(super) fn pending_from_row(row: &PgRow, first: usize) -> Result<Option<PendingSignIn>> {
    let state: Option<String> = col(row, first)?;
    let nonce: Option<String> = col(row, first + 1)?;
    let verifier: Option<String> = col(row, first + 2)?;
    let return_to: Option<String> = col(row, first + 3)?;
    Ok((|| {
        Some(PendingSignIn {
            state: state?,
            nonce: nonce?,
            verifier: verifier?,
            return_to: return_to?,
        })
    })())
}

pub(super) fn session_from_row(row: &PgRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: col(row, 0)?,
        csrf: col(row, 1)?,
        user: col::<Option<String>>(row, 2)?
            .as_deref()
            .map(parse_user)
            .transpose()?,
        access_token: col(row, 3)?,
        access_expires_at: col::<Option<i64>>(row, 4)?.map(instant).transpose()?,
        pending: pending_from_row(row, 5)?,
        expires_at: instant(col(row, 9)?)?,
    })
}

pub(super) async fn insert_session<'e, E>(executor: E, s: &SessionRecord) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let pending = s.pending.as_ref();
    sqlx::query(&format!(
        "INSERT INTO sessions ({SESSION_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id_hash) DO UPDATE SET
           csrf = excluded.csrf, user_id = excluded.user_id,
           access_token = excluded.access_token,
           access_expires_at = excluded.access_expires_at,
           pending_state = excluded.pending_state, pending_nonce = excluded.pending_nonce,
           pending_verifier = excluded.pending_verifier,
           pending_return_to = excluded.pending_return_to,
           expires_at = excluded.expires_at"
    ))
    .bind(&s.id_hash)
    .bind(&s.csrf)
    .bind(s.user.as_ref().map(UserId::as_str))
    .bind(text(s.access_token.as_deref()))
    .bind(s.access_expires_at.map(micros))
    .bind(text(pending.map(|p| p.state.as_str())))
    .bind(text(pending.map(|p| p.nonce.as_str())))
    .bind(text(pending.map(|p| p.verifier.as_str())))
    .bind(text(pending.map(|p| p.return_to.as_str())))
    .bind(micros(s.expires_at))
    .execute(executor)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl SessionStore for PgStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<()> {
        insert_session(&self.pool, session).await
    }

    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1 AND expires_at > $2"
        ))
        .bind(id_hash)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn set_pending(
        &self,
        id_hash: &str,
        pending: &PendingSignIn,
        now: Timestamp,
    ) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE sessions SET pending_state = $3, pending_nonce = $4, pending_verifier = $5,
               pending_return_to = $6
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(micros(now))
        .bind(text(Some(&pending.state)))
        .bind(text(Some(&pending.nonce)))
        .bind(text(Some(&pending.verifier)))
        .bind(text(Some(&pending.return_to)))
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn take_pending(&self, id_hash: &str, now: Timestamp) -> Result<Option<PendingSignIn>> {
        // The row is locked by the subquery; a concurrent caller waits for it, then sees the
        // pending columns cleared and matches nothing, so only one gets the old values.
        let row = sqlx::query(
            "UPDATE sessions s SET pending_state = NULL, pending_nonce = NULL,
               pending_verifier = NULL, pending_return_to = NULL
             FROM (
               SELECT id_hash, pending_state, pending_nonce, pending_verifier, pending_return_to
               FROM sessions
               WHERE id_hash = $1 AND expires_at > $2 AND pending_state IS NOT NULL
               FOR UPDATE
             ) old
             WHERE s.id_hash = old.id_hash
             RETURNING old.pending_state, old.pending_nonce, old.pending_verifier,
               old.pending_return_to",
        )
        .bind(id_hash)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        match row {
            Some(row) => pending_from_row(&row, 0),
            None => Ok(None),
        }
    }

    async fn replace_session(&self, old: Option<&str>, new: &SessionRecord) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(old) = old {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        insert_session(&mut *tx, new).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn remove_session(&self, id_hash: &str) -> Result<bool> {
        let changed = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected())
    }

    async fn count_sessions(&self, now: Timestamp) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at > $1")
            .bind(micros(now))
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(n.max(0) as u64)
    }
}
