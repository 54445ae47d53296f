//! Web sessions on SQLite: keyed by the hash of the session id, with pending OIDC sign-ins.

use super::*;

pub(super) const SESSION_COLUMNS: &str =
    "id_hash, csrf, user_id, access_token, access_expires_at, \
     pending_state, pending_nonce, pending_verifier, pending_return_to, expires_at";

pub(super) type SessionRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    PendingRow,
    i64,
);

pub(super) type PendingRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub(super) fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?),
        r.get(9)?,
    ))
}

pub(super) fn pending_from_row(
    (state, nonce, verifier, return_to): PendingRow,
) -> Option<PendingSignIn> {
    Some(PendingSignIn {
        state: state?,
        nonce: nonce?,
        verifier: verifier?,
        return_to: return_to?,
    })
}

pub(super) fn session_from_row(
    (id_hash, csrf, user, token, token_expires, pending, expires): SessionRow,
) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash,
        csrf,
        user: user.as_deref().map(parse_user).transpose()?,
        access_token: token,
        access_expires_at: token_expires.map(instant).transpose()?,
        pending: pending_from_row(pending),
        expires_at: instant(expires)?,
    })
}

pub(super) fn insert_session(tx: &Connection, s: &SessionRecord) -> Result<()> {
    let pending = s.pending.as_ref();
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO sessions ({SESSION_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            s.id_hash,
            s.csrf,
            s.user.as_ref().map(UserId::as_str),
            s.access_token,
            s.access_expires_at.map(micros),
            pending.map(|p| &p.state),
            pending.map(|p| &p.nonce),
            pending.map(|p| &p.verifier),
            pending.map(|p| &p.return_to),
            micros(s.expires_at),
        ],
    )
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<()> {
        let session = session.clone();
        self.write(move |tx| insert_session(tx, &session)).await
    }

    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>> {
        let id_hash = id_hash.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = ?1 AND expires_at > ?2"
                ),
                params![id_hash, micros(now)],
                session_row,
            )
            .optional()
            .map_err(map_err)?
            .map(session_from_row)
            .transpose()
        })
        .await
    }

    async fn set_pending(
        &self,
        id_hash: &str,
        pending: &PendingSignIn,
        now: Timestamp,
    ) -> Result<bool> {
        let (id_hash, p) = (id_hash.to_owned(), pending.clone());
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE sessions SET pending_state = ?3, pending_nonce = ?4,
                       pending_verifier = ?5, pending_return_to = ?6
                     WHERE id_hash = ?1 AND expires_at > ?2",
                    params![
                        id_hash,
                        micros(now),
                        p.state,
                        p.nonce,
                        p.verifier,
                        p.return_to
                    ],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn take_pending(&self, id_hash: &str, now: Timestamp) -> Result<Option<PendingSignIn>> {
        let id_hash = id_hash.to_owned();
        // Read and clear in one write transaction: the one writer runs them in turn, so a
        // second caller finds it cleared.
        self.write(move |tx| {
            let pending = tx
                .query_row(
                    "SELECT pending_state, pending_nonce, pending_verifier, pending_return_to
                     FROM sessions
                     WHERE id_hash = ?1 AND expires_at > ?2 AND pending_state IS NOT NULL",
                    params![id_hash, micros(now)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(map_err)?
                .and_then(pending_from_row);
            if pending.is_some() {
                tx.execute(
                    "UPDATE sessions SET pending_state = NULL, pending_nonce = NULL,
                       pending_verifier = NULL, pending_return_to = NULL
                     WHERE id_hash = ?1",
                    params![id_hash],
                )
                .map_err(map_err)?;
            }
            Ok(pending)
        })
        .await
    }

    async fn replace_session(&self, old: Option<&str>, new: &SessionRecord) -> Result<()> {
        let (old, new) = (old.map(str::to_owned), new.clone());
        self.write(move |tx| {
            if let Some(old) = &old {
                tx.execute("DELETE FROM sessions WHERE id_hash = ?1", params![old])
                    .map_err(map_err)?;
            }
            insert_session(tx, &new)
        })
        .await
    }

    async fn remove_session(&self, id_hash: &str) -> Result<bool> {
        let id_hash = id_hash.to_owned();
        self.write(move |tx| {
            let changed = tx
                .execute("DELETE FROM sessions WHERE id_hash = ?1", params![id_hash])
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        self.write(move |tx| {
            let removed = tx
                .execute(
                    "DELETE FROM sessions WHERE expires_at <= ?1",
                    params![micros(now)],
                )
                .map_err(map_err)?;
            Ok(removed as u64)
        })
        .await
    }

    async fn count_sessions(&self, now: Timestamp) -> Result<u64> {
        self.read(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sessions WHERE expires_at > ?1",
                    params![micros(now)],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}
