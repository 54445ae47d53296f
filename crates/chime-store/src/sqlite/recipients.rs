//! Recipients on SQLite: push subscriptions, webhook endpoints, destinations and profiles
//! (encrypted above the port), and calendar feeds.

use super::*;

#[async_trait]
impl RecipientStore for SqliteStore {
    async fn put_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
    ) -> Result<PushSubscriptionRecord> {
        let sub = sub.clone();
        self.write(move |tx| {
            // A known endpoint keeps its id; its keys and owner are refreshed (a browser that
            // re-subscribes after sign-in as another user moves to that user).
            tx.execute(
                "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (endpoint) DO UPDATE SET
                   user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth",
                params![
                    sub.id,
                    sub.user_id.as_str(),
                    sub.endpoint,
                    sub.p256dh,
                    sub.auth,
                    micros(sub.created_at)
                ],
            )
            .map_err(map_err)?;
            let (id, created): (String, i64) = tx
                .query_row(
                    "SELECT id, created_at FROM push_subscriptions WHERE endpoint = ?1",
                    params![sub.endpoint],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(map_err)?;
            Ok(PushSubscriptionRecord {
                id,
                created_at: instant(created)?,
                ..sub
            })
        })
        .await
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscriptionRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, endpoint, p256dh, auth, created_at FROM push_subscriptions
                     WHERE user_id = ?1 ORDER BY created_at, id",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![user.as_str()], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(id, endpoint, p256dh, auth, created)| {
                    Ok(PushSubscriptionRecord {
                        id,
                        user_id: user.clone(),
                        endpoint,
                        p256dh,
                        auth,
                        created_at: instant(created)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn remove_push_subscription(&self, user: Option<&UserId>, id: &str) -> Result<bool> {
        let user = user.cloned();
        let id = id.to_owned();
        self.write(move |tx| {
            let changed = match &user {
                Some(user) => tx.execute(
                    "DELETE FROM push_subscriptions WHERE id = ?1 AND user_id = ?2",
                    params![id, user.as_str()],
                ),
                None => tx.execute("DELETE FROM push_subscriptions WHERE id = ?1", params![id]),
            }
            .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let e = endpoint.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO webhooks (user_id, url, secret, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET
                   url = excluded.url, secret = excluded.secret, created_at = excluded.created_at",
                params![e.user_id.as_str(), e.url, e.secret, micros(e.created_at)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn webhook(&self, user: &UserId) -> Result<Option<WebhookEndpoint>> {
        let user = user.clone();
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT url, secret, created_at FROM webhooks WHERE user_id = ?1",
                    params![user.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            row.map(|(url, secret, created)| {
                Ok(WebhookEndpoint {
                    user_id: user.clone(),
                    url,
                    secret,
                    created_at: instant(created)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn remove_webhook(&self, user: &UserId) -> Result<bool> {
        let user = user.clone();
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "DELETE FROM webhooks WHERE user_id = ?1",
                    params![user.as_str()],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn put_destination(&self, destination: &DestinationRecord) -> Result<()> {
        let d = destination.clone();
        self.write(move |tx| {
            // The update applies only to the owner's row: another user's id is left alone
            // (no row changes) and refused.
            let changed = tx
                .execute(
                    "INSERT INTO destinations (id, user_id, name, url, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url
                     WHERE destinations.user_id = excluded.user_id",
                    params![
                        d.id,
                        d.user_id.as_str(),
                        d.name,
                        d.url,
                        micros(d.created_at)
                    ],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(Error::Conflict);
            }
            Ok(())
        })
        .await
    }

    async fn destinations(&self, user: &UserId) -> Result<Vec<DestinationRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, name, url, created_at FROM destinations
                     WHERE user_id = ?1 ORDER BY created_at, id",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![user.as_str()], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(id, name, url, created)| {
                    Ok(DestinationRecord {
                        id,
                        user_id: user.clone(),
                        name,
                        url,
                        created_at: instant(created)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn destination(
        &self,
        user: Option<&UserId>,
        id: &str,
    ) -> Result<Option<DestinationRecord>> {
        let user = user.cloned();
        let id = id.to_owned();
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT user_id, name, url, created_at FROM destinations
                     WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
                    params![id, user.as_ref().map(UserId::as_str)],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            row.map(|(owner, name, url, created)| {
                Ok(DestinationRecord {
                    id: id.clone(),
                    user_id: parse_user(&owner)?,
                    name,
                    url,
                    created_at: instant(created)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn remove_destination(&self, user: &UserId, id: &str) -> Result<bool> {
        let user = user.clone();
        let id = id.to_owned();
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "DELETE FROM destinations WHERE id = ?1 AND user_id = ?2",
                    params![id, user.as_str()],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn put_profile(&self, profile: &ProfileRecord) -> Result<()> {
        let p = profile.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO profiles (user_id, body, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET
                   body = excluded.body, updated_at = excluded.updated_at",
                params![p.user_id.as_str(), p.body, micros(p.updated_at)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn profile(&self, user: &UserId) -> Result<Option<ProfileRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT body, updated_at FROM profiles WHERE user_id = ?1",
                    params![user.as_str()],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            row.map(|(body, updated)| {
                Ok(ProfileRecord {
                    user_id: user.clone(),
                    body,
                    updated_at: instant(updated)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn rotate_feed(&self, user: &UserId, now: Timestamp) -> Result<FeedRecord> {
        let user = user.clone();
        self.write(move |tx| {
            let generation = tx
                .query_row(
                    "INSERT INTO calendar_feeds (user_id, generation, active, created_at)
                     VALUES (?1, 1, 1, ?2)
                     ON CONFLICT (user_id) DO UPDATE SET
                       generation = calendar_feeds.generation + 1, active = 1,
                       created_at = excluded.created_at
                     RETURNING generation",
                    params![user.as_str(), micros(now)],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(map_err)?;
            Ok(FeedRecord {
                user_id: user,
                generation: feed_generation(generation)?,
                created_at: now,
            })
        })
        .await
    }

    async fn feed(&self, user: &UserId) -> Result<Option<FeedRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT generation, created_at FROM calendar_feeds
                     WHERE user_id = ?1 AND active = 1",
                    params![user.as_str()],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            row.map(|(generation, created)| {
                Ok(FeedRecord {
                    user_id: user.clone(),
                    generation: feed_generation(generation)?,
                    created_at: instant(created)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn remove_feed(&self, user: &UserId) -> Result<bool> {
        let user = user.clone();
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE calendar_feeds SET active = 0 WHERE user_id = ?1 AND active = 1",
                    params![user.as_str()],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }
}
