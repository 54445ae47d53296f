//! Recipients on PostgreSQL: push subscriptions, webhook endpoints, destinations and profiles
//! (encrypted above the port), and calendar feeds.

use super::*;

#[async_trait]
impl RecipientStore for PgStore {
    async fn put_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
    ) -> Result<PushSubscriptionRecord> {
        // A known endpoint keeps its id; its keys and owner are refreshed (a browser that
        // re-subscribes after sign-in as another user moves to that user).
        let row = sqlx::query(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (endpoint) DO UPDATE SET
               user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth
             RETURNING id, created_at",
        )
        .bind(&sub.id)
        .bind(sub.user_id.as_str())
        .bind(&sub.endpoint)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(micros(sub.created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(PushSubscriptionRecord {
            id: col(&row, 0)?,
            created_at: instant(col(&row, 1)?)?,
            ..sub.clone()
        })
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscriptionRecord>> {
        let rows = sqlx::query(
            "SELECT id, endpoint, p256dh, auth, created_at FROM push_subscriptions
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(PushSubscriptionRecord {
                    id: col(r, 0)?,
                    user_id: user.clone(),
                    endpoint: col(r, 1)?,
                    p256dh: col(r, 2)?,
                    auth: col(r, 3)?,
                    created_at: instant(col(r, 4)?)?,
                })
            })
            .collect()
    }

    async fn remove_push_subscription(&self, user: Option<&UserId>, id: &str) -> Result<bool> {
        let changed = match user {
            Some(user) => {
                sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user.as_str())
                    .execute(&self.pool)
                    .await
            }
            None => {
                sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
            }
        }
        .map_err(map_err)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhooks (user_id, url, secret, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET
               url = excluded.url, secret = excluded.secret, created_at = excluded.created_at",
        )
        .bind(endpoint.user_id.as_str())
        .bind(&endpoint.url)
        .bind(&endpoint.secret)
        .bind(micros(endpoint.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn webhook(&self, user: &UserId) -> Result<Option<WebhookEndpoint>> {
        let row = sqlx::query("SELECT url, secret, created_at FROM webhooks WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| {
            Ok(WebhookEndpoint {
                user_id: user.clone(),
                url: col(&r, 0)?,
                secret: col(&r, 1)?,
                created_at: instant(col(&r, 2)?)?,
            })
        })
        .transpose()
    }

    async fn remove_webhook(&self, user: &UserId) -> Result<bool> {
        let changed = sqlx::query("DELETE FROM webhooks WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn put_destination(&self, destination: &DestinationRecord) -> Result<()> {
        // The update applies only to the owner's row: another user's id is left alone (no row
        // changes) and refused.
        let changed = sqlx::query(
            "INSERT INTO destinations (id, user_id, name, url, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url
             WHERE destinations.user_id = excluded.user_id",
        )
        .bind(&destination.id)
        .bind(destination.user_id.as_str())
        .bind(&destination.name)
        .bind(&destination.url)
        .bind(micros(destination.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        if changed == 0 {
            return Err(Error::Conflict);
        }
        Ok(())
    }

    async fn destinations(&self, user: &UserId) -> Result<Vec<DestinationRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, url, created_at FROM destinations
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(DestinationRecord {
                    id: col(r, 0)?,
                    user_id: user.clone(),
                    name: col(r, 1)?,
                    url: col(r, 2)?,
                    created_at: instant(col(r, 3)?)?,
                })
            })
            .collect()
    }

    async fn destination(
        &self,
        user: Option<&UserId>,
        id: &str,
    ) -> Result<Option<DestinationRecord>> {
        let row = sqlx::query(
            "SELECT user_id, name, url, created_at FROM destinations
             WHERE id = $1 AND ($2::text IS NULL OR user_id = $2)",
        )
        .bind(id)
        .bind(user.map(UserId::as_str))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(DestinationRecord {
                id: id.to_owned(),
                user_id: parse_user(&col::<String>(&r, 0)?)?,
                name: col(&r, 1)?,
                url: col(&r, 2)?,
                created_at: instant(col(&r, 3)?)?,
            })
        })
        .transpose()
    }

    async fn remove_destination(&self, user: &UserId, id: &str) -> Result<bool> {
        let changed = sqlx::query("DELETE FROM destinations WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn put_profile(&self, profile: &ProfileRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO profiles (user_id, body, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET
               body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(profile.user_id.as_str())
        .bind(&profile.body)
        .bind(micros(profile.updated_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn profile(&self, user: &UserId) -> Result<Option<ProfileRecord>> {
        let row = sqlx::query("SELECT body, updated_at FROM profiles WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| {
            Ok(ProfileRecord {
                user_id: user.clone(),
                body: col(&r, 0)?,
                updated_at: instant(col(&r, 1)?)?,
            })
        })
        .transpose()
    }

    async fn rotate_feed(&self, user: &UserId, now: Timestamp) -> Result<FeedRecord> {
        let row = sqlx::query(
            "INSERT INTO calendar_feeds (user_id, generation, active, created_at)
             VALUES ($1, 1, TRUE, $2)
             ON CONFLICT (user_id) DO UPDATE SET
               generation = calendar_feeds.generation + 1, active = TRUE,
               created_at = excluded.created_at
             RETURNING generation",
        )
        .bind(user.as_str())
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(FeedRecord {
            user_id: user.clone(),
            generation: feed_generation(col(&row, 0)?)?,
            created_at: now,
        })
    }

    async fn feed(&self, user: &UserId) -> Result<Option<FeedRecord>> {
        let row = sqlx::query(
            "SELECT generation, created_at FROM calendar_feeds WHERE user_id = $1 AND active",
        )
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(FeedRecord {
                user_id: user.clone(),
                generation: feed_generation(col(&r, 0)?)?,
                created_at: instant(col(&r, 1)?)?,
            })
        })
        .transpose()
    }

    async fn remove_feed(&self, user: &UserId) -> Result<bool> {
        let changed =
            sqlx::query("UPDATE calendar_feeds SET active = FALSE WHERE user_id = $1 AND active")
                .bind(user.as_str())
                .execute(&self.pool)
                .await
                .map_err(map_err)?
                .rows_affected();
        Ok(changed == 1)
    }
}
