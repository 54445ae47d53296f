//! Key rotation: moves every encrypted field (and any plaintext left from before encryption)
//! to the newest key of a [`Keyring`], through the store's [`Reencrypt`] capability.
//!
//! - **Online.** Each batch is one short transaction of the adapter; a `chime serve` running on
//!   the same storage waits at most for one batch. Every instance must already have the new key
//!   in its config (so that what it writes meanwhile is on the new key, and it can read what the
//!   rotation wrote); a row written on an old key by an instance that had not been restarted yet
//!   is simply caught by the next run.
//! - **Resumable and idempotent.** A field already on the newest key is never rewritten, so a
//!   rotation stopped part way is finished by running it again, and a second run rewrites
//!   nothing.
//! - **The bus is not rewritten.** Its records are transient: a consumer group commits them
//!   within moments, and the embedded log's retention deletes records every group has
//!   committed (Kafka's retention does the same by time); an append-only log (Kafka) cannot be
//!   rewritten anyway. Records published before the new key was configured stay on the old key
//!   until they are consumed and retired, which is why an old key is removed from the config
//!   only after the rotation *and* after the bus has drained (every group caught up, one
//!   retention interval passed). Should a retained record outlive that (a topic no group reads),
//!   it fails to decrypt with an error naming its key id, never silently.
//! - **Old ciphertext on disk.** An UPDATE does not erase the old bytes at once: SQLite's WAL
//!   and free pages keep them until they are checkpointed and reused. After a rotation made
//!   because a key leaked, also `VACUUM` the store (or enable `secure_delete`) and rotate or
//!   drain the bus, so no copy under the leaked key survives; backups taken before stay
//!   readable with the old key, so destroy it only when they expire.

use std::sync::Arc;

use chime_store::{PiiTable, Reencrypt, RewriteFn};

use crate::fields::reencrypt_column;
use crate::Keyring;

/// Rows per transaction: short enough that a running server barely notices.
pub const DEFAULT_BATCH: usize = 500;

/// One batch's outcome, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub table: PiiTable,
    /// Totals of the table so far.
    pub scanned: usize,
    pub rewritten: usize,
    pub removed: usize,
    /// The table is finished.
    pub done: bool,
}

/// What a whole rotation did, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub tables: Vec<Progress>,
}

impl Summary {
    /// Rows written back, over every table: 0 when everything already was on the newest key.
    pub fn rewritten(&self) -> usize {
        self.tables.iter().map(|t| t.rewritten + t.removed).sum()
    }
}

/// Re-encrypts every personal-data field in `store` to `keys`' newest key, `batch` rows per
/// transaction, calling `progress` after each batch.
pub async fn rotate(
    store: &dyn Reencrypt,
    keys: Arc<Keyring>,
    batch: usize,
    mut progress: impl FnMut(&Progress),
) -> chime_store::Result<Summary> {
    let rewrite: RewriteFn = Arc::new(move |column, value| {
        reencrypt_column(&keys, column, value).map_err(|e| chime_store::Error::Storage(Box::new(e)))
    });
    let mut summary = Summary::default();
    for table in PiiTable::ALL {
        let mut totals = Progress {
            table,
            scanned: 0,
            rewritten: 0,
            removed: 0,
            done: false,
        };
        let mut cursor = None;
        loop {
            let done = store
                .reencrypt_batch(table, cursor, batch, rewrite.clone())
                .await?;
            totals.scanned += done.scanned;
            totals.rewritten += done.rewritten;
            totals.removed += done.removed;
            cursor = done.cursor;
            totals.done = cursor.is_none();
            progress(&totals);
            if totals.done {
                break;
            }
        }
        summary.tables.push(totals);
    }
    Ok(summary)
}
