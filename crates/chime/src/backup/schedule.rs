//! Scheduled backups (`[backup]` of `chime serve`): their file names, which sort in time
//! order, listing and pruning them, and the scheduler that takes one every interval: a copy
//! of the embedded store (`.sqlite`), or a `pg_dump` of a PostgreSQL store (`.pgdump`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::{pg, store_path, take_async, BackupConfig};

/// When nothing has been backed up yet, the first scheduled backup waits at most this long
/// after start (not a whole interval: a server restarted more often than that would never
/// take one).
const FIRST_BACKUP_AFTER: Duration = Duration::from_secs(60);

/// The file name of a scheduled backup taken at `at` with `extension` (`sqlite` or
/// `pgdump`): `chime-20250102T030405.678Z.sqlite`, so that names sort in time order.
pub fn scheduled_name(at: Timestamp, extension: &str) -> String {
    format!(
        "chime-{}.{:03}Z.{extension}",
        at.strftime("%Y%m%dT%H%M%S"),
        at.subsec_millisecond()
    )
}

/// When the scheduled backup called `name` was taken, if it is one.
fn scheduled_at(name: &str) -> Option<Timestamp> {
    let stamp = name.strip_prefix("chime-")?;
    let stamp = stamp
        .strip_suffix("Z.sqlite")
        .or_else(|| stamp.strip_suffix(&format!("Z.{}", pg::EXTENSION)))?;
    let (seconds, millis) = stamp.split_once('.')?;
    let millis: i64 = millis.parse().ok().filter(|_| millis.len() == 3)?;
    let at = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", seconds)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    at.checked_add(jiff::SignedDuration::from_millis(millis))
        .ok()
}

/// The scheduled backups in `dir`, oldest first.
pub fn list(dir: &Path) -> anyhow::Result<Vec<(Timestamp, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if let Some(at) = entry.file_name().to_str().and_then(scheduled_at) {
            found.push((at, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Deletes all but the newest `keep` scheduled backups in `dir`; returns what it deleted.
pub fn prune(dir: &Path, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let all = list(dir)?;
    let excess = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for (_, path) in all.into_iter().take(excess) {
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot delete the old backup {}", path.display()))?;
        removed.push(path);
    }
    Ok(removed)
}

/// The scheduler of `chime serve`: a backup of `data_dir`'s store every
/// `config.interval_seconds` into the backup directory, keeping the newest `config.keep`,
/// until `shutdown`. The first is due one interval after the newest one already there (at
/// once when that is overdue; [`FIRST_BACKUP_AFTER`] after start when there is none), so
/// restarts do not stretch the interval. A failed backup is logged and tried again at the
/// next interval.
/// With `store_url` (a PostgreSQL store) each backup is a `pg_dump` of it instead.
pub async fn run_scheduler(
    data_dir: PathBuf,
    store_url: Option<String>,
    config: BackupConfig,
    shutdown: CancellationToken,
) {
    if let Some(Err(error)) = store_url.as_deref().map(super::refuse_mongodb) {
        tracing::error!(error = format!("{error:#}"), "scheduled backups are off");
        return;
    }
    let interval = Duration::from_secs(config.interval_seconds);
    let dir = config.dir(&data_dir);
    let db = store_path(&data_dir);
    if let Err(error) = prepare_dir(&dir) {
        tracing::error!(error = format!("{error:#}"), "scheduled backups are off");
        return;
    }
    let newest = list(&dir)
        .ok()
        .and_then(|all| all.last().map(|(at, _)| *at));
    let first = match newest {
        Some(at) => Duration::try_from(
            Timestamp::now().duration_until(at.checked_add(interval).unwrap_or(at)),
        )
        .unwrap_or(Duration::ZERO)
        .min(interval),
        None => interval.min(FIRST_BACKUP_AFTER),
    };
    let mut next = tokio::time::Instant::now() + first;
    tracing::info!(dir = %dir.display(), every_seconds = config.interval_seconds, keep = config.keep, first_in_seconds = first.as_secs(), "scheduled backups are on");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        let started = tokio::time::Instant::now();
        let taken = match &store_url {
            Some(url) => {
                let to = dir.join(scheduled_name(Timestamp::now(), pg::EXTENSION));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    taken = pg::dump(url, &to) => taken,
                }
            }
            None => {
                let to = dir.join(scheduled_name(Timestamp::now(), "sqlite"));
                take_async(db.clone(), to, &shutdown).await
            }
        };
        match taken {
            Ok(written) => {
                let pruned = prune(&dir, config.keep).unwrap_or_else(|error| {
                    tracing::warn!(error = format!("{error:#}"), "cannot delete old backups");
                    Vec::new()
                });
                tracing::info!(
                    path = %written.path.display(),
                    bytes = written.bytes,
                    took_ms = written.took.as_millis() as u64,
                    deleted = pruned.len(),
                    "backup taken"
                );
            }
            Err(_) if shutdown.is_cancelled() => return,
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "scheduled backup failed; trying again at the next interval"
                );
            }
        }
        next = (started + interval).max(tokio::time::Instant::now());
    }
}

/// Creates the backup directory (private) and removes what an interrupted backup left.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the backup directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".chime-")
            && (name.ends_with(".sqlite.partial") || name.ends_with(".pgdump.partial"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_names_sort_in_time_order_and_parse_back() {
        let at: Timestamp = "2025-01-02T03:04:05.678Z".parse().expect("instant");
        let name = scheduled_name(at, "sqlite");
        assert_eq!(name, "chime-20250102T030405.678Z.sqlite");
        assert_eq!(scheduled_at(&name), Some(at));
        assert_eq!(scheduled_at(&scheduled_name(at, pg::EXTENSION)), Some(at));
        assert_eq!(scheduled_at("chime-20250102T030405Z.sqlite"), None);
        assert_eq!(scheduled_at("notes.sqlite"), None);
        let later = scheduled_name(at + jiff::SignedDuration::from_millis(1), "sqlite");
        assert!(name < later);
    }

    #[test]
    fn prune_keeps_the_newest_and_ignores_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let start: Timestamp = "2025-01-02T03:04:05Z".parse().expect("instant");
        for i in 0..5 {
            let at = start + jiff::SignedDuration::from_secs(i);
            std::fs::write(dir.path().join(scheduled_name(at, "sqlite")), b"x").expect("write");
        }
        std::fs::write(dir.path().join("mine.sqlite"), b"x").expect("write");
        let removed = prune(dir.path(), 2).expect("prune");
        assert_eq!(removed.len(), 3);
        let left: Vec<Timestamp> = list(dir.path())
            .expect("list")
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(
            left,
            [
                start + jiff::SignedDuration::from_secs(3),
                start + jiff::SignedDuration::from_secs(4)
            ]
        );
        assert!(dir.path().join("mine.sqlite").exists());
    }
}
