//! The outbox on MongoDB: the events written beside each change, claimed by one relay at a
//! time under a lease. Claims take turns on a lock document (every claim writes it first, so
//! two claims conflict and one runs again after the other committed), where PostgreSQL takes
//! an advisory lock.

use super::*;

fn row_from_doc(d: &Document) -> Result<OutboxRow> {
    Ok(OutboxRow {
        seq: int(d, "_id")?,
        topic: text(d, "topic")?,
        key: text(d, "key")?,
        payload: bytes(d, "payload")?,
    })
}

fn wall_clock_micros() -> i64 {
    micros(Timestamp::now())
}

#[async_trait]
impl OutboxStore for MongoStore {
    async fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxRow>> {
        let docs = find_all(
            &self.coll(OUTBOX),
            doc! {},
            Some(doc! { "_id": 1 }),
            Some(max),
        )
        .await?;
        docs.iter().map(row_from_doc).collect()
    }

    async fn outbox_claim(&self, max: usize) -> Result<Vec<OutboxRow>> {
        let me: &str = &self.claimer;
        let lease = i64::try_from(OUTBOX_LEASE.as_micros()).unwrap_or(i64::MAX);
        transaction!(self, |s| {
            self.coll(COUNTERS)
                .update_one(
                    doc! { "_id": "outbox_claim" },
                    doc! { "$inc": { "claims": 1_i64 } },
                )
                .upsert(true)
                .session(&mut *s)
                .await?;
            // Read after the turn is ours: claims committed before it are seen.
            let now = wall_clock_micros();
            // Keys under another instance's live lease, with their oldest claimed seq: an
            // event waits while an older event of its key is claimed elsewhere.
            let held = find_in(
                &self.coll(OUTBOX),
                s,
                doc! { "claimed_by": { "$nin": [Bson::Null, me] }, "claimed_until": { "$gte": now } },
                None,
                None,
            )
            .await?;
            let mut held_from: HashMap<String, i64> = HashMap::new();
            for d in &held {
                let (key, seq) = (text(d, "key")?, int(d, "_id")?);
                let oldest = held_from.entry(key).or_insert(seq);
                *oldest = (*oldest).min(seq);
            }
            // In pages, oldest first, until `max` are taken: events held back behind another
            // instance's claim are passed over without reading the whole outbox.
            let page = max.max(16) * 2;
            let mut rows = Vec::new();
            let mut after = i64::MIN;
            while rows.len() < max {
                let claimable = find_in(
                    &self.coll(OUTBOX),
                    s,
                    doc! {
                        "_id": { "$gt": after },
                        "$or": [
                            { "claimed_by": Bson::Null },
                            { "claimed_by": me },
                            { "claimed_until": { "$lt": now } },
                        ],
                    },
                    Some(doc! { "_id": 1 }),
                    Some(page),
                )
                .await?;
                for d in &claimable {
                    let row = row_from_doc(d)?;
                    after = row.seq;
                    let held_back = held_from
                        .get(&row.key)
                        .is_some_and(|oldest| *oldest < row.seq);
                    if !held_back && rows.len() < max {
                        rows.push(row);
                    }
                }
                if claimable.len() < page {
                    break;
                }
            }
            let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
            if !seqs.is_empty() {
                self.coll(OUTBOX)
                    .update_many(
                        doc! { "_id": { "$in": seqs } },
                        doc! { "$set": { "claimed_by": me, "claimed_until": now + lease } },
                    )
                    .session(&mut *s)
                    .await?;
            }
            Ok(rows)
        })
    }

    async fn outbox_ack(&self, seqs: &[i64]) -> Result<()> {
        self.coll(OUTBOX)
            .delete_many(doc! { "_id": { "$in": seqs } })
            .await?;
        Ok(())
    }

    async fn outbox_len(&self) -> Result<u64> {
        Ok(self.coll(OUTBOX).count_documents(doc! {}).await?)
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.wakers.outbox(self.listener())
    }
}
