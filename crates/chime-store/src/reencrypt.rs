//! Re-encryption support: the one capability `chime keys rotate` needs from a store adapter.
//!
//! Personal data is encrypted field by field *above* the store (by the `chime-crypto`
//! decorator), so an adapter never knows keys. What only the adapter can do is walk its own
//! rows: [`Reencrypt::reencrypt_batch`] reads one batch of a table's personal-data columns
//! after a cursor, hands each value to a [`RewriteFn`] (which decrypts it with whichever key
//! it was written with and encrypts it with the newest) and writes back the values that
//! changed, all in one short transaction, so a running `chime serve` on the same storage only
//! waits for one batch at a time. The cursor makes a pass resumable; a rewrite that leaves
//! values already on the newest key alone makes it idempotent.
//!
//! Kept deliberately small (one method, opaque cursors) so that the PostgreSQL adapter, and a
//! document store later, implement it in a few lines: `SELECT … WHERE key > cursor ORDER BY key
//! LIMIT n FOR UPDATE`, then `UPDATE` the changed rows.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;

/// A stored value that holds personal data (or a document with personal data in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiColumn {
    /// [`TaskRecord::body`](crate::TaskRecord::body): JSON.
    TaskBody,
    /// [`ScheduledTask::body`](crate::ScheduledTask::body): JSON.
    ScheduleBody,
    /// [`DeliveryWrite::message`](crate::DeliveryWrite::message): JSON.
    DeliveryMessage,
    /// [`OutboxEvent::payload`](crate::OutboxEvent::payload): JSON bytes of an event.
    OutboxPayload,
    /// [`PushSubscriptionRecord::endpoint`](crate::PushSubscriptionRecord::endpoint). Unique:
    /// its encryption is deterministic, so equal endpoints still compare equal.
    PushEndpoint,
    PushP256dh,
    PushAuth,
    WebhookUrl,
    WebhookSecret,
    /// [`DestinationRecord::name`](crate::DestinationRecord::name): the user's own text.
    DestinationName,
    /// [`DestinationRecord::url`](crate::DestinationRecord::url): holds the service's token.
    DestinationUrl,
    /// [`ProfileRecord::body`](crate::ProfileRecord::body): the stored JSON, encrypted whole.
    ProfileBody,
}

/// A table (or collection) holding [`PiiColumn`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiTable {
    Tasks,
    Schedule,
    Deliveries,
    PushSubscriptions,
    Webhooks,
    Destinations,
    Outbox,
    Profiles,
}

impl PiiTable {
    /// Every table, in the order a rotation visits them.
    pub const ALL: [PiiTable; 8] = [
        PiiTable::Tasks,
        PiiTable::Schedule,
        PiiTable::Deliveries,
        PiiTable::PushSubscriptions,
        PiiTable::Webhooks,
        PiiTable::Destinations,
        PiiTable::Outbox,
        PiiTable::Profiles,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PiiTable::Tasks => "tasks",
            PiiTable::Schedule => "schedule",
            PiiTable::Deliveries => "deliveries",
            PiiTable::PushSubscriptions => "push_subscriptions",
            PiiTable::Webhooks => "webhooks",
            PiiTable::Destinations => "destinations",
            PiiTable::Outbox => "outbox",
            PiiTable::Profiles => "profiles",
        }
    }

    /// The table's personal-data columns.
    pub fn columns(self) -> &'static [PiiColumn] {
        match self {
            PiiTable::Tasks => &[PiiColumn::TaskBody],
            PiiTable::Schedule => &[PiiColumn::ScheduleBody],
            PiiTable::Deliveries => &[PiiColumn::DeliveryMessage],
            PiiTable::PushSubscriptions => &[
                PiiColumn::PushEndpoint,
                PiiColumn::PushP256dh,
                PiiColumn::PushAuth,
            ],
            PiiTable::Webhooks => &[PiiColumn::WebhookUrl, PiiColumn::WebhookSecret],
            PiiTable::Destinations => &[PiiColumn::DestinationName, PiiColumn::DestinationUrl],
            PiiTable::Outbox => &[PiiColumn::OutboxPayload],
            PiiTable::Profiles => &[PiiColumn::ProfileBody],
        }
    }
}

/// Rewrites one stored value (never called for an absent one): `Ok(None)` leaves it as it
/// is; an error aborts the batch, which then changes nothing.
pub type RewriteFn = Arc<dyn Fn(PiiColumn, &[u8]) -> Result<Option<Vec<u8>>> + Send + Sync>;

/// What one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReencryptBatch {
    /// Where the next batch starts; `None` when the table has no rows after this batch.
    pub cursor: Option<String>,
    /// Rows read.
    pub scanned: usize,
    /// Rows written back (at least one value changed).
    pub rewritten: usize,
    /// Rows removed because their rewritten push endpoint equals another row's (the same
    /// browser subscribed again under the newest key while this row was on an older one; the
    /// other row, put later, wins, as a put of a known endpoint would have).
    pub removed: usize,
}

#[async_trait]
pub trait Reencrypt: Send + Sync + 'static {
    /// Reads up to `limit` rows of `table` after `cursor` (from the start when `None`), in a
    /// stable key order, applies `rewrite` to each present value of the table's
    /// [`PiiTable::columns`], and writes back the rows whose values changed, in one
    /// transaction.
    async fn reencrypt_batch(
        &self,
        table: PiiTable,
        cursor: Option<String>,
        limit: usize,
        rewrite: RewriteFn,
    ) -> Result<ReencryptBatch>;
}
