//! Recipients on MongoDB: push subscriptions, webhook endpoints, destinations and profiles
//! (encrypted above the port), and calendar feeds. Each write is one document, so each is
//! one atomic operation; an upsert keyed by `_id` (or the unique endpoint) replaces in place.

use super::*;

fn push_from_doc(d: &Document) -> Result<PushSubscriptionRecord> {
    Ok(PushSubscriptionRecord {
        id: text(d, "_id")?,
        user_id: parse_user(&text(d, "user_id")?)?,
        endpoint: text(d, "endpoint")?,
        p256dh: text(d, "p256dh")?,
        auth: text(d, "auth")?,
        created_at: instant(int(d, "created_at")?)?,
    })
}

fn destination_from_doc(d: &Document) -> Result<DestinationRecord> {
    Ok(DestinationRecord {
        id: text(d, "_id")?,
        user_id: parse_user(&text(d, "user_id")?)?,
        name: text(d, "name")?,
        url: text(d, "url")?,
        created_at: instant(int(d, "created_at")?)?,
    })
}

fn feed_from_doc(user: &UserId, d: &Document) -> Result<FeedRecord> {
    Ok(FeedRecord {
        user_id: user.clone(),
        generation: feed_generation(int(d, "generation")?)?,
        created_at: instant(int(d, "created_at")?)?,
    })
}

#[async_trait]
impl RecipientStore for MongoStore {
    async fn put_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
    ) -> Result<PushSubscriptionRecord> {
        // A known endpoint keeps its id and creation; its keys and owner are refreshed (a
        // browser that re-subscribes after sign-in as another user moves to that user).
        let stored = self
            .coll(PUSH_SUBSCRIPTIONS)
            .find_one_and_update(
                doc! { "endpoint": &sub.endpoint },
                doc! {
                    "$set": {
                        "user_id": sub.user_id.as_str(),
                        "p256dh": &sub.p256dh,
                        "auth": &sub.auth,
                    },
                    "$setOnInsert": { "_id": &sub.id, "created_at": micros(sub.created_at) },
                },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await?
            .ok_or_else(|| Error::Corrupt("an upserted push subscription is missing".into()))?;
        push_from_doc(&stored)
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscriptionRecord>> {
        let docs = find_all(
            &self.coll(PUSH_SUBSCRIPTIONS),
            doc! { "user_id": user.as_str() },
            Some(doc! { "created_at": 1, "_id": 1 }),
            None,
        )
        .await?;
        docs.iter().map(push_from_doc).collect()
    }

    async fn remove_push_subscription(&self, user: Option<&UserId>, id: &str) -> Result<bool> {
        let mut filter = doc! { "_id": id };
        if let Some(user) = user {
            filter.insert("user_id", user.as_str());
        }
        let deleted = self.coll(PUSH_SUBSCRIPTIONS).delete_one(filter).await?;
        Ok(deleted.deleted_count == 1)
    }

    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        self.coll(WEBHOOKS)
            .update_one(
                doc! { "_id": endpoint.user_id.as_str() },
                doc! { "$set": {
                    "url": &endpoint.url,
                    "secret": &endpoint.secret,
                    "created_at": micros(endpoint.created_at),
                } },
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    async fn webhook(&self, user: &UserId) -> Result<Option<WebhookEndpoint>> {
        let found = self
            .coll(WEBHOOKS)
            .find_one(doc! { "_id": user.as_str() })
            .await?;
        found
            .map(|d| {
                Ok(WebhookEndpoint {
                    user_id: user.clone(),
                    url: text(&d, "url")?,
                    secret: text(&d, "secret")?,
                    created_at: instant(int(&d, "created_at")?)?,
                })
            })
            .transpose()
    }

    async fn remove_webhook(&self, user: &UserId) -> Result<bool> {
        let deleted = self
            .coll(WEBHOOKS)
            .delete_one(doc! { "_id": user.as_str() })
            .await?;
        Ok(deleted.deleted_count == 1)
    }

    async fn put_destination(&self, destination: &DestinationRecord) -> Result<()> {
        // Keyed by id and owner: another user's id matches nothing, so the upsert tries to
        // insert that id again and the unique `_id` refuses it, changing nothing.
        let put = self
            .coll(DESTINATIONS)
            .update_one(
                doc! { "_id": &destination.id, "user_id": destination.user_id.as_str() },
                doc! {
                    "$set": { "name": &destination.name, "url": &destination.url },
                    "$setOnInsert": { "created_at": micros(destination.created_at) },
                },
            )
            .upsert(true)
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == Some(11000) => Err(Error::Conflict),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn destinations(&self, user: &UserId) -> Result<Vec<DestinationRecord>> {
        let docs = find_all(
            &self.coll(DESTINATIONS),
            doc! { "user_id": user.as_str() },
            Some(doc! { "created_at": 1, "_id": 1 }),
            None,
        )
        .await?;
        docs.iter().map(destination_from_doc).collect()
    }

    async fn destination(
        &self,
        user: Option<&UserId>,
        id: &str,
    ) -> Result<Option<DestinationRecord>> {
        let mut filter = doc! { "_id": id };
        if let Some(user) = user {
            filter.insert("user_id", user.as_str());
        }
        let found = self.coll(DESTINATIONS).find_one(filter).await?;
        found.as_ref().map(destination_from_doc).transpose()
    }

    async fn remove_destination(&self, user: &UserId, id: &str) -> Result<bool> {
        let deleted = self
            .coll(DESTINATIONS)
            .delete_one(doc! { "_id": id, "user_id": user.as_str() })
            .await?;
        Ok(deleted.deleted_count == 1)
    }

    async fn put_profile(&self, profile: &ProfileRecord) -> Result<()> {
        self.coll(PROFILES)
            .update_one(
                doc! { "_id": profile.user_id.as_str() },
                doc! { "$set": {
                    "body": &profile.body,
                    "updated_at": micros(profile.updated_at),
                } },
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    async fn profile(&self, user: &UserId) -> Result<Option<ProfileRecord>> {
        let found = self
            .coll(PROFILES)
            .find_one(doc! { "_id": user.as_str() })
            .await?;
        found
            .map(|d| {
                Ok(ProfileRecord {
                    user_id: user.clone(),
                    body: text(&d, "body")?,
                    updated_at: instant(int(&d, "updated_at")?)?,
                })
            })
            .transpose()
    }

    async fn rotate_feed(&self, user: &UserId, now: Timestamp) -> Result<FeedRecord> {
        // Revoking keeps the generation, so a feed made again continues past every earlier
        // one: the first rotation inserts generation 1, each later one adds 1.
        let stored = self
            .coll(CALENDAR_FEEDS)
            .find_one_and_update(
                doc! { "_id": user.as_str() },
                doc! {
                    "$inc": { "generation": 1_i64 },
                    "$set": { "active": true, "created_at": micros(now) },
                },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await?
            .ok_or_else(|| Error::Corrupt("an upserted calendar feed is missing".into()))?;
        feed_from_doc(user, &stored)
    }

    async fn feed(&self, user: &UserId) -> Result<Option<FeedRecord>> {
        let found = self
            .coll(CALENDAR_FEEDS)
            .find_one(doc! { "_id": user.as_str(), "active": true })
            .await?;
        found.map(|d| feed_from_doc(user, &d)).transpose()
    }

    async fn remove_feed(&self, user: &UserId) -> Result<bool> {
        let changed = self
            .coll(CALENDAR_FEEDS)
            .update_one(
                doc! { "_id": user.as_str(), "active": true },
                doc! { "$set": { "active": false } },
            )
            .await?;
        Ok(changed.modified_count == 1)
    }
}
