//! Occurrence state on MongoDB: open occurrences, acknowledgements, snoozes and the SMS reply
//! targets (issue 16).

use super::schedule::occurrence_key;
use super::*;

fn occurrence_from_doc(d: &Document) -> Result<OccurrenceRecord> {
    occurrence_record((
        text(d, "task_id")?,
        int(d, "due_at")?,
        text(d, "user_id")?,
        int(d, "fired_at")?,
        int(d, "expires_at")?,
        opt_int(d, "acked_at")?,
        opt_text(d, "acked_channel")?,
        int(d, "seq")?,
        opt_int(d, "snoozed_until")?,
        opt_int(d, "wake_at")?,
        opt_int(d, "snoozed_from")?,
        flag(d, "nagged")?,
        opt_int(d, "nags_left")?.unwrap_or(0),
        opt_int(d, "escalated")?.unwrap_or(0),
        opt_int(d, "escalate_at")?,
    ))
}

fn user_key(user: &UserId, key: &OccurrenceKey) -> Document {
    let mut filter = occurrence_key(&key.task_id.to_string(), micros(key.due_at));
    filter.insert("user_id", user.as_str());
    filter
}

#[async_trait]
impl OccurrenceStore for MongoStore {
    async fn open_occurrences(
        &self,
        user: &UserId,
        now: Timestamp,
        before: Option<&OccurrenceKey>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let (before_due, before_id) = before.map_or((i64::MAX, String::new()), |k| {
            (micros(k.due_at), k.task_id.to_string())
        });
        let docs = find_all(
            &self.coll(OCCURRENCES),
            doc! {
                "user_id": user.as_str(),
                "acked_at": Bson::Null,
                "snoozed_until": Bson::Null,
                "expires_at": { "$gt": micros(now) },
                "$or": [
                    { "due_at": { "$lt": before_due } },
                    { "due_at": before_due, "task_id": { "$lt": before_id } },
                ],
            },
            Some(doc! { "due_at": -1, "task_id": -1 }),
            Some(limit),
        )
        .await?;
        docs.iter().map(occurrence_from_doc).collect()
    }

    async fn snoozed_occurrences(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let docs = find_all(
            &self.coll(OCCURRENCES),
            doc! {
                "user_id": user.as_str(),
                "acked_at": Bson::Null,
                "snoozed_until": { "$ne": Bson::Null },
                "wake_at": { "$ne": Bson::Null },
            },
            Some(doc! { "wake_at": 1, "task_id": 1 }),
            Some(limit),
        )
        .await?;
        docs.iter().map(occurrence_from_doc).collect()
    }

    async fn task_occurrences(
        &self,
        user: &UserId,
        task: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<OccurrenceRecord>> {
        let docs = find_all(
            &self.coll(OCCURRENCES),
            doc! {
                "task_id": task.to_string(),
                "user_id": user.as_str(),
                "due_at": { "$lt": before.map_or(i64::MAX, micros) },
            },
            Some(doc! { "due_at": -1 }),
            Some(limit),
        )
        .await?;
        docs.iter().map(occurrence_from_doc).collect()
    }

    async fn occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
    ) -> Result<Option<OccurrenceRecord>> {
        let found = self.coll(OCCURRENCES).find_one(user_key(user, key)).await?;
        found.as_ref().map(occurrence_from_doc).transpose()
    }

    async fn acknowledge_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        channel: Channel,
        at: Timestamp,
    ) -> Result<Option<OccurrenceRecord>> {
        // A second acknowledgement finds `acked_at` set and changes nothing; the inbox items
        // are marked in the same transaction, only by the acknowledgement that took.
        let mut filter = user_key(user, key);
        filter.insert("acked_at", Bson::Null);
        transaction!(self, |s| {
            let acked = self
                .coll(OCCURRENCES)
                .update_one(
                    filter.clone(),
                    doc! { "$set": {
                        "acked_at": micros(at),
                        "acked_channel": channel.as_str(),
                        "wake_at": Bson::Null,
                        "escalate_at": Bson::Null,
                    } },
                )
                .session(&mut *s)
                .await?;
            if acked.modified_count == 1 {
                self.coll(INBOX)
                    .update_many(
                        doc! {
                            "user_id": user.as_str(),
                            "task_id": key.task_id.to_string(),
                            "due_at": micros(key.due_at),
                            "read": false,
                        },
                        doc! { "$set": { "read": true } },
                    )
                    .session(&mut *s)
                    .await?;
            }
            Ok(())
        })?;
        self.occurrence(user, key).await
    }

    async fn snooze_occurrence(
        &self,
        user: &UserId,
        key: &OccurrenceKey,
        until: Timestamp,
    ) -> Result<Option<OccurrenceRecord>> {
        // Only an occurrence neither acknowledged nor already returned from a snooze.
        let mut filter = user_key(user, key);
        filter.extend(doc! {
            "acked_at": Bson::Null,
            "$or": [
                { "snoozed_until": Bson::Null },
                { "wake_at": { "$ne": Bson::Null } },
            ],
        });
        let snoozed = self
            .coll(OCCURRENCES)
            .find_one_and_update(
                filter,
                doc! { "$set": {
                    "snoozed_until": micros(until),
                    "wake_at": micros(until),
                    "escalate_at": Bson::Null,
                } },
            )
            .return_document(ReturnDocument::After)
            .await?;
        match snoozed {
            Some(d) => occurrence_from_doc(&d).map(Some),
            // Not changed: answer its state as it is.
            None => self.occurrence(user, key).await,
        }
    }

    async fn put_reply_target(
        &self,
        number_hash: &str,
        user: &UserId,
        key: &OccurrenceKey,
        sent_at: Timestamp,
    ) -> Result<()> {
        let fields = doc! {
            "user_id": user.as_str(),
            "task_id": key.task_id.to_string(),
            "due_at": micros(key.due_at),
            "sent_at": micros(sent_at),
        };
        transaction!(self, |s| {
            let stored = self
                .coll(REPLY_TARGETS)
                .find_one(doc! { "_id": number_hash })
                .session(&mut *s)
                .await?;
            match stored {
                // An earlier SMS (a slow retry) does not replace a later one.
                Some(d) if int(&d, "sent_at")? > micros(sent_at) => {}
                Some(_) => {
                    self.coll(REPLY_TARGETS)
                        .update_one(doc! { "_id": number_hash }, doc! { "$set": fields.clone() })
                        .session(&mut *s)
                        .await?;
                }
                None => {
                    let mut document = doc! { "_id": number_hash };
                    document.extend(fields.clone());
                    self.coll(REPLY_TARGETS)
                        .insert_one(document)
                        .session(&mut *s)
                        .await?;
                }
            }
            Ok(())
        })
    }

    async fn reply_target(&self, number_hash: &str) -> Result<Option<(UserId, OccurrenceKey)>> {
        let found = self
            .coll(REPLY_TARGETS)
            .find_one(doc! { "_id": number_hash })
            .await?;
        found
            .map(|d| {
                Ok((
                    parse_user(&text(&d, "user_id")?)?,
                    OccurrenceKey {
                        task_id: parse_id(&text(&d, "task_id")?)?,
                        due_at: instant(int(&d, "due_at")?)?,
                    },
                ))
            })
            .transpose()
    }
}
