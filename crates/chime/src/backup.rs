//! Online backups of the embedded default, and restoring one: `chime backup`, `chime restore`,
//! and the scheduler inside `chime serve` (`[backup]`). A PostgreSQL store is backed up with
//! `pg_dump` and restored with `pg_restore` by the same commands (see `pg`). A MongoDB store
//! is the operator's to back up (`mongodump --oplog`, or their platform's snapshots): these
//! commands refuse it rather than take a copy that is not one snapshot.
//!
//! The store and the bus log share one SQLite file (`<data-dir>/chime.sqlite`), so one
//! consistent copy of that file is a consistent copy of both: no event is in the outbox and
//! the log at once, and no consumer offset runs ahead of the effects it stands for.
//!
//! **How a backup is taken, and why that way.** `VACUUM INTO` on a read-only connection of its
//! own: one read transaction, so the copy is one snapshot, and in WAL mode a reader never
//! blocks a writer, so scheduling goes on while it runs (checkpoints cannot pass the snapshot
//! until it ends, so the WAL grows a little meanwhile). The alternative, the online backup API
//! in small steps with pauses, does not work here: every commit by *another* connection (the
//! server's writer) restarts the copy from the first page, so under a steady write load it
//! never finishes. Measured on a 188 MB file with a writer committing every 0.5 ms (see
//! `docs/backups.md`): `VACUUM INTO` 0.54 s and the backup API in one step 0.51 s, both with
//! the writer's p50 commit latency unchanged (30-33 µs) and its maximum no worse than without
//! a backup (the WAL auto-checkpoint's 20 ms); the stepped backup (100 or 1000 pages, 1 ms
//! pauses) restarted thousands of times and had not finished after 30 s. `VACUUM INTO` wins
//! over the one-step backup API by writing a compacted file (no free pages) in rollback mode,
//! self-contained (no `-wal` beside it).
//!
//! **How a backup is written.** Into a temporary name beside the target
//! (`.<name>.partial`), checked (`PRAGMA quick_check`), made private (0600), fsynced, renamed,
//! and the directory fsynced: a backup file that exists is complete.
//!
//! **Keys are not in it.** Personal data in the file is encrypted: restoring needs the same
//! encryption keys (configured `encryption.keys`, or the data directory's `encryption.key`),
//! and tokens signed by the local issuer keep working only with the same
//! `issuer-ed25519.pk8`; web-push subscriptions need the same `vapid-p256.key`. `chime backup
//! --with-keys` copies the data directory's key files into `<FILE>.keys/`, which `chime
//! restore` then puts back.
//!
//! Taking one is in `take`, the schedule in `schedule`, the key files in `keys`, what a
//! usable backup is in `verify`, restoring in `restore`.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::{Deserialize, Serialize};

mod keys;
pub mod pg;
mod restore;
mod schedule;
mod take;
mod verify;

pub use keys::{copy_keys, keys_dir};
pub use restore::{restore, restore_command, Restored};
pub use schedule::{list, prune, run_scheduler, scheduled_name};
pub use take::{command, take, take_async, Written};
pub use verify::{verify, verify_connection, Verified};

/// The store's (and the bus log's) file inside the data directory.
pub const STORE_FILE: &str = "chime.sqlite";

/// The key files a data directory may hold, which a backup does not contain: the local
/// issuer's signing key (`chime_http::LocalIssuer`), the VAPID key of web push, and the
/// encryption key of the data-directory fallback.
pub const KEY_FILES: [&str; 4] = [
    "issuer-ed25519.pk8",
    chime_channels::push::VapidKeys::FILE,
    crate::encryption::KEY_FILE,
    chime_roles::occurrence::tokens::ActionKeys::FILE,
];

/// `[backup]`: the scheduled backups of `chime serve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Seconds between two backups; 0 turns the scheduler off.
    pub interval_seconds: u64,
    /// Where they go [default: `<data_dir>/backups`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// How many to keep; older ones are deleted after each new one.
    pub keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            interval_seconds: 3600,
            dir: None,
            keep: 24,
        }
    }
}

impl BackupConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.interval_seconds > 0 && self.keep == 0 {
            bail!("backup.keep must be at least 1 (or set backup.interval_seconds = 0 to turn scheduled backups off)");
        }
        if self.interval_seconds > 366 * 86_400 {
            bail!(
                "backup.interval_seconds must be at most a year, not {}",
                self.interval_seconds
            );
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.interval_seconds > 0
    }

    /// The backup directory for `data_dir`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("backups"))
    }
}

/// The store file of `data_dir`.
/// `chime backup`, `chime restore` and scheduled backups do not copy a MongoDB store: a
/// consistent copy of a replica set needs `mongodump --oplog` (or a filesystem snapshot of a
/// member), which the operator runs with the cluster's own credentials and tools.
pub fn refuse_mongodb(store_url: &str) -> anyhow::Result<()> {
    if crate::backends::StoreKind::of(store_url) == Some(crate::backends::StoreKind::Mongo) {
        bail!(
            "the store is MongoDB ({}), which chime does not back up or restore itself: use \
             `mongodump --oplog` and `mongorestore --oplogReplay` (or your platform's \
             snapshots); see docs/mongodb.md",
            crate::backends::redact(store_url)
        );
    }
    Ok(())
}

pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}
