//! Web sessions on MongoDB: one document per session, keyed by the hash of its id; a pending
//! OIDC sign-in is taken with one `findOneAndUpdate`, atomic on its document.

use super::*;

fn pending_of(d: &Document) -> Result<Option<PendingSignIn>> {
    let Some(Bson::Document(p)) = d.get("pending") else {
        return Ok(None);
    };
    Ok(Some(PendingSignIn {
        state: text(p, "state")?,
        nonce: text(p, "nonce")?,
        verifier: text(p, "verifier")?,
        return_to: text(p, "return_to")?,
    }))
}

fn pending_doc(p: Option<&PendingSignIn>) -> Bson {
    p.map_or(Bson::Null, |p| {
        Bson::Document(doc! {
            "state": &p.state,
            "nonce": &p.nonce,
            "verifier": &p.verifier,
            "return_to": &p.return_to,
        })
    })
}

fn session_from_doc(d: &Document) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: text(d, "_id")?,
        csrf: text(d, "csrf")?,
        user: opt_text(d, "user_id")?
            .as_deref()
            .map(parse_user)
            .transpose()?,
        access_token: opt_text(d, "access_token")?,
        access_expires_at: opt_int(d, "access_expires_at")?.map(instant).transpose()?,
        pending: pending_of(d)?,
        expires_at: instant(int(d, "expires_at")?)?,
    })
}

/// The session's fields (all but `_id`), as stored.
fn session_fields(s: &SessionRecord) -> Document {
    doc! {
        "csrf": &s.csrf,
        "user_id": opt(s.user.as_ref().map(UserId::as_str)),
        "access_token": opt(s.access_token.as_deref()),
        "access_expires_at": opt_i64(s.access_expires_at.map(micros)),
        "pending": pending_doc(s.pending.as_ref()),
        "expires_at": micros(s.expires_at),
    }
}

#[async_trait]
impl SessionStore for MongoStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<()> {
        self.coll(SESSIONS)
            .update_one(
                doc! { "_id": &session.id_hash },
                doc! { "$set": session_fields(session) },
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>> {
        let found = self
            .coll(SESSIONS)
            .find_one(doc! { "_id": id_hash, "expires_at": { "$gt": micros(now) } })
            .await?;
        found.as_ref().map(session_from_doc).transpose()
    }

    async fn set_pending(
        &self,
        id_hash: &str,
        pending: &PendingSignIn,
        now: Timestamp,
    ) -> Result<bool> {
        let changed = self
            .coll(SESSIONS)
            .update_one(
                doc! { "_id": id_hash, "expires_at": { "$gt": micros(now) } },
                doc! { "$set": { "pending": pending_doc(Some(pending)) } },
            )
            .await?;
        Ok(changed.matched_count == 1)
    }

    async fn take_pending(&self, id_hash: &str, now: Timestamp) -> Result<Option<PendingSignIn>> {
        // One operation on one document: of concurrent callers, one finds the pending sign-in
        // and clears it; the others then match nothing.
        let before = self
            .coll(SESSIONS)
            .find_one_and_update(
                doc! {
                    "_id": id_hash,
                    "expires_at": { "$gt": micros(now) },
                    "pending": { "$ne": Bson::Null },
                },
                doc! { "$set": { "pending": Bson::Null } },
            )
            .return_document(ReturnDocument::Before)
            .await?;
        match before {
            Some(d) => pending_of(&d),
            None => Ok(None),
        }
    }

    async fn replace_session(&self, old: Option<&str>, new: &SessionRecord) -> Result<()> {
        let fields = session_fields(new);
        transaction!(self, |s| {
            if let Some(old) = old {
                self.coll(SESSIONS)
                    .delete_one(doc! { "_id": old })
                    .session(&mut *s)
                    .await?;
            }
            self.coll(SESSIONS)
                .update_one(
                    doc! { "_id": &new.id_hash },
                    doc! { "$set": fields.clone() },
                )
                .upsert(true)
                .session(&mut *s)
                .await?;
            Ok(())
        })
    }

    async fn remove_session(&self, id_hash: &str) -> Result<bool> {
        let deleted = self
            .coll(SESSIONS)
            .delete_one(doc! { "_id": id_hash })
            .await?;
        Ok(deleted.deleted_count == 1)
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        let deleted = self
            .coll(SESSIONS)
            .delete_many(doc! { "expires_at": { "$lte": micros(now) } })
            .await?;
        Ok(deleted.deleted_count)
    }

    async fn count_sessions(&self, now: Timestamp) -> Result<u64> {
        Ok(self
            .coll(SESSIONS)
            .count_documents(doc! { "expires_at": { "$gt": micros(now) } })
            .await?)
    }
}
