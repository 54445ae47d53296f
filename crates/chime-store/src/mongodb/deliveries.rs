//! Deliveries on MongoDB: pending deliveries and their leases, attempts, dead letters and the
//! inbox. A lease is taken in a transaction whose write to the delivery conflicts with any
//! other claim of it, so two workers never hold one delivery.

use super::tasks::status_from_doc;
use super::*;

/// The key fields of a delivery (and of its history entry's delivery state).
fn delivery_key(key: &DeliveryKey) -> Document {
    doc! {
        "task_id": key.occurrence.task_id.to_string(),
        "due_at": micros(key.occurrence.due_at),
        "channel": key.channel.as_str(),
        "target": &key.target,
    }
}

fn inbox_from_doc(d: &Document) -> Result<InboxItem> {
    Ok(InboxItem {
        id: parse_id(&text(d, "_id")?)?,
        user_id: parse_user(&text(d, "user_id")?)?,
        task_id: parse_id(&text(d, "task_id")?)?,
        task_name: text(d, "task_name")?,
        due_at: instant(int(d, "due_at")?)?,
        created_at: instant(int(d, "created_at")?)?,
        read: flag(d, "read")?,
        silent: flag(d, "silent")?,
    })
}

#[async_trait]
impl DeliveryStore for MongoStore {
    async fn record_deliveries(&self, writes: &[DeliveryWrite]) -> Result<Vec<usize>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        // In key order, so two instances writing overlapping batches (a replay after a
        // rebalance) meet on the same first key and one of them runs again.
        let key = |w: &DeliveryWrite| DeliveryKey {
            occurrence: w.occurrence,
            channel: w.status.channel,
            target: w.status.target.clone(),
        };
        let mut order: Vec<usize> = (0..writes.len()).collect();
        order.sort_by_cached_key(|&i| {
            let k = key(&writes[i]);
            (
                k.occurrence.task_id.to_string(),
                micros(k.occurrence.due_at),
                k.channel.as_str(),
                k.target,
            )
        });
        let (new, published) = transaction!(self, |s| {
            let mut new = Vec::new();
            for &i in &order {
                let w = &writes[i];
                let filter = delivery_key(&key(w));
                // A delivery already recorded (also earlier in this batch) is left alone.
                if self
                    .coll(DELIVERIES)
                    .find_one(filter.clone())
                    .session(&mut *s)
                    .await?
                    .is_some()
                {
                    continue;
                }
                let first =
                    (w.status.outcome == DeliveryOutcome::Pending).then(|| micros(w.status.at));
                let mut document = filter;
                document.extend(doc! {
                    "user_id": w.user_id.as_str(),
                    "outcome": w.status.outcome.as_str(),
                    "attempts": i64::from(w.status.attempts),
                    "at": micros(w.status.at),
                    "detail": opt(w.status.detail.as_deref()),
                    "provider_id": opt(w.status.provider_id.as_deref()),
                    "message": opt(w.message.as_ref().map(ToString::to_string).as_deref()),
                    "first_attempt_at": opt_i64(first),
                    "next_attempt_at": opt_i64(first),
                    "leased_until": Bson::Null,
                });
                self.coll(DELIVERIES)
                    .insert_one(document)
                    .session(&mut *s)
                    .await?;
                new.push(i);
            }
            new.sort_unstable();
            let inbox: Vec<Document> = new
                .iter()
                .filter_map(|&i| writes[i].inbox.as_ref())
                .map(|item| {
                    doc! {
                        "_id": item.id.to_string(),
                        "user_id": item.user_id.as_str(),
                        "task_id": item.task_id.to_string(),
                        "task_name": &item.task_name,
                        "due_at": micros(item.due_at),
                        "created_at": micros(item.created_at),
                        "read": item.read,
                        "silent": item.silent,
                    }
                })
                .collect();
            if !inbox.is_empty() {
                self.coll(INBOX).insert_many(inbox).session(&mut *s).await?;
            }
            let events: Vec<OutboxEvent> = new
                .iter()
                .filter_map(|&i| writes[i].event.clone())
                .collect();
            self.insert_outbox(s, &events).await?;
            Ok((new, !events.is_empty()))
        })?;
        self.signal_if(published);
        Ok(new)
    }

    async fn inbox(
        &self,
        user: &UserId,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<Vec<InboxItem>> {
        // Ids are time-ordered; "ntf_g" sorts after every "ntf_<hex>" (byte order).
        let before = before.map_or_else(|| "ntf_g".to_owned(), |b| b.to_string());
        let docs = find_all(
            &self.coll(INBOX),
            doc! { "user_id": user.as_str(), "_id": { "$lt": before } },
            Some(doc! { "_id": -1 }),
            Some(limit),
        )
        .await?;
        docs.iter().map(inbox_from_doc).collect()
    }

    async fn mark_read(&self, user: &UserId, ids: &[NotificationId]) -> Result<u64> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let changed = self
            .coll(INBOX)
            .update_many(
                doc! { "user_id": user.as_str(), "read": false, "_id": { "$in": ids } },
                doc! { "$set": { "read": true } },
            )
            .await?;
        Ok(changed.modified_count)
    }

    async fn unread_count(&self, user: &UserId) -> Result<u64> {
        Ok(self
            .coll(INBOX)
            .count_documents(doc! { "user_id": user.as_str(), "read": false })
            .await?)
    }

    async fn claim_deliveries(
        &self,
        channel: Channel,
        now: Timestamp,
        lease_until: Timestamp,
        max: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now_us = micros(now);
        transaction!(self, |s| {
            let due = find_in(
                &self.coll(DELIVERIES),
                s,
                doc! {
                    "outcome": "pending",
                    "channel": channel.as_str(),
                    "next_attempt_at": { "$lte": now_us },
                    "$or": [
                        { "leased_until": Bson::Null },
                        { "leased_until": { "$lte": now_us } },
                    ],
                },
                Some(doc! { "next_attempt_at": 1, "task_id": 1, "due_at": 1, "target": 1 }),
                Some(max),
            )
            .await?;
            let mut claimed = Vec::with_capacity(due.len());
            for d in &due {
                let due_at = int(d, "due_at")?;
                let key = DeliveryKey {
                    occurrence: OccurrenceKey {
                        task_id: parse_id(&text(d, "task_id")?)?,
                        due_at: instant(due_at)?,
                    },
                    channel,
                    target: text(d, "target")?,
                };
                // Another claim of this delivery, committed since this snapshot or still
                // open, makes this write conflict: the claim runs again without it.
                self.coll(DELIVERIES)
                    .update_one(
                        delivery_key(&key),
                        doc! { "$set": { "leased_until": micros(lease_until) } },
                    )
                    .session(&mut *s)
                    .await?;
                claimed.push(ClaimedDelivery {
                    key,
                    user_id: parse_user(&text(d, "user_id")?)?,
                    attempts: count(int(d, "attempts")?, "attempts")?,
                    first_attempt_at: instant(opt_int(d, "first_attempt_at")?.unwrap_or(due_at))?,
                    message: parse_json(opt_text(d, "message")?.as_deref().unwrap_or("null"))?,
                    lease_until,
                });
            }
            Ok(claimed)
        })
    }

    async fn next_delivery_at(&self, channel: Channel) -> Result<Option<Timestamp>> {
        // The earliest of each pending delivery's next attempt or lease end, on the server.
        let mut earliest = self
            .coll(DELIVERIES)
            .aggregate([
                doc! { "$match": { "outcome": "pending", "channel": channel.as_str() } },
                doc! { "$group": {
                    "_id": Bson::Null,
                    "at": { "$min": { "$max": [
                        "$next_attempt_at",
                        { "$ifNull": ["$leased_until", 0_i64] },
                    ] } },
                } },
            ])
            .await?;
        let Some(group) = earliest.try_next().await? else {
            return Ok(None);
        };
        opt_int(&group, "at")?.map(instant).transpose()
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
        let mut filter = delivery_key(key);
        filter.extend(doc! { "outcome": "pending", "leased_until": micros(lease_until) });
        let mut set = doc! {
            "outcome": columns.outcome,
            "at": micros(at),
            "detail": opt(columns.detail.as_deref()),
            "provider_id": opt(columns.provider_id.as_deref()),
            "next_attempt_at": opt_i64(columns.next_attempt_at),
            "leased_until": Bson::Null,
        };
        if !columns.keep_message {
            set.insert("message", Bson::Null);
        }
        let update = doc! {
            "$set": set,
            "$inc": { "attempts": i64::from(columns.attempted) },
        };
        let published = transaction!(self, |s| {
            let changed = self
                .coll(DELIVERIES)
                .update_one(filter.clone(), update.clone())
                .session(&mut *s)
                .await?;
            // A delivery no longer pending, or claimed again by another worker after this
            // claim's lease ran out, keeps its state and publishes nothing more.
            let publish = changed.matched_count == 1 && event.is_some();
            if publish {
                self.insert_outbox(s, event.as_slice()).await?;
            }
            Ok(publish)
        })?;
        self.signal_if(published);
        Ok(())
    }

    async fn retry_dead_letter(
        &self,
        user: &UserId,
        key: &DeliveryKey,
        now: Timestamp,
    ) -> Result<bool> {
        let mut filter = delivery_key(key);
        filter.extend(doc! {
            "user_id": user.as_str(),
            "outcome": "deadLettered",
            "message": { "$ne": Bson::Null },
        });
        let changed = self
            .coll(DELIVERIES)
            .update_one(
                filter,
                doc! { "$set": {
                    "outcome": "pending",
                    "next_attempt_at": micros(now),
                    "first_attempt_at": micros(now),
                    "leased_until": Bson::Null,
                } },
            )
            .await?;
        if changed.modified_count == 1 {
            // Due now: wake the channel's workers in every process (through the change
            // stream on `wakeups`), not only this one's.
            self.coll(WAKEUPS)
                .update_one(
                    doc! { "_id": key.channel.as_str() },
                    doc! { "$inc": { "retried": 1_i64 } },
                )
                .upsert(true)
                .await?;
        }
        Ok(changed.modified_count == 1)
    }

    fn delivery_signal(&self, channel: Channel) -> Option<Arc<Notify>> {
        self.wakers.delivery(channel, self.listener())
    }

    async fn pending_deliveries(
        &self,
        user: &UserId,
        task: TaskId,
    ) -> Result<Vec<(OccurrenceKey, DeliveryStatus)>> {
        let docs = find_all(
            &self.coll(DELIVERIES),
            doc! { "user_id": user.as_str(), "task_id": task.to_string(), "outcome": "pending" },
            Some(doc! { "due_at": 1, "channel": 1, "target": 1 }),
            None,
        )
        .await?;
        docs.iter()
            .map(|d| {
                Ok((
                    OccurrenceKey {
                        task_id: task,
                        due_at: instant(int(d, "due_at")?)?,
                    },
                    status_from_doc(d)?,
                ))
            })
            .collect()
    }
}
