//! Restoring a backup into a data directory (`chime restore`): verified first, never under a
//! running server, never over a store or a key unasked, and the store it replaces kept aside.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use jiff::Timestamp;

use super::keys::{copy_private, plan_keys};
use super::take::{open_source, sync_dir, write_checked};
use super::{store_path, verify, Verified, KEY_FILES, STORE_FILE};
use crate::lock::{DataDirLock, LockError};

/// What `chime restore` did.
#[derive(Debug)]
pub struct Restored {
    pub verified: Verified,
    pub store: PathBuf,
    /// Where the store it replaced went (`--force`).
    pub replaced: Option<PathBuf>,
    /// Key files put back from the backup's `.keys` directory.
    pub keys: Vec<&'static str>,
}

/// Restores the backup `from` into `data_dir`: verifies it, refuses while a server holds the
/// data directory's lock, refuses to replace an existing store unless `force` (which moves it
/// aside, with its WAL, as `chime.sqlite.replaced-<time>`), copies it in under a temporary
/// name, removes a stale `-wal`/`-shm`, renames it into place. Key files in `<from>.keys/` are
/// put back when the data directory lacks them (with `force`, also over different ones).
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> anyhow::Result<Restored> {
    let verified = verify(from)?;
    let _lock = DataDirLock::acquire(data_dir).map_err(|e| match e {
        LockError::Held { .. } => anyhow::anyhow!("refusing to restore: {e}"),
        e => anyhow::Error::new(e),
    })?;
    let db = store_path(data_dir);
    if db.exists() && !force {
        bail!(
            "{} already has a store ({}): refusing to replace it. Pass --force to replace it \
             (it is kept beside as {STORE_FILE}.replaced-<time>), or restore into an empty \
             --data-dir",
            data_dir.display(),
            db.display()
        );
    }
    let keys = plan_keys(from, data_dir, force)?;

    let temp_name = format!(".{STORE_FILE}.restoring");
    let temp = data_dir.join(&temp_name);
    let source = open_source(from)?;
    let _ = std::fs::remove_file(&temp);
    let result = write_checked(&source, &temp);
    drop(source);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }

    let mut replaced = None;
    if db.exists() {
        let aside = data_dir.join(format!(
            "{STORE_FILE}.replaced-{}",
            Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        ));
        std::fs::rename(&db, &aside)
            .with_context(|| format!("cannot move {} aside", db.display()))?;
        // A WAL belongs with its database: it moves too, so the copy aside stays whole.
        let wal = sidecar(&db, "-wal");
        if wal.exists() {
            std::fs::rename(&wal, sidecar(&aside, "-wal"))
                .with_context(|| format!("cannot move {} aside", wal.display()))?;
        }
        replaced = Some(aside);
    }
    // A stale WAL beside the new file would be replayed into it.
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = sidecar(&db, suffix);
        if stale.exists() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("cannot remove {}", stale.display()))?;
        }
    }
    std::fs::rename(&temp, &db)
        .with_context(|| format!("cannot rename {} to {}", temp.display(), db.display()))?;
    sync_dir(data_dir)?;

    let mut copied = Vec::new();
    for (name, from) in keys {
        copy_private(&from, &data_dir.join(name))?;
        copied.push(name);
    }
    sync_dir(data_dir)?;
    Ok(Restored {
        verified,
        store: db,
        replaced,
        keys: copied,
    })
}

/// `chime restore --from FILE --data-dir DIR [--force]`: a `pg_dump` archive goes into the
/// PostgreSQL store at `store_url` (its key files into `data_dir`).
pub async fn restore_command(
    from: &Path,
    data_dir: &Path,
    store_url: Option<&str>,
    force: bool,
) -> anyhow::Result<()> {
    if let Some(url) = store_url {
        super::refuse_mongodb(url)?;
    }
    if super::pg::is_dump(from) {
        let Some(url) = store_url else {
            bail!(
                "{} is a PostgreSQL dump: say which database to restore it into with \
                 --store-url postgres://... (or `[store] url` in the config file)",
                from.display()
            );
        };
        let keys = plan_keys(from, data_dir, force)?;
        let tables = super::pg::restore(from, url, force).await?;
        println!(
            "restored {} into {}: {tables} tables' data, in one transaction",
            from.display(),
            crate::backends::redact(url)
        );
        if !keys.is_empty() {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create {}", data_dir.display()))?;
            let mut copied = Vec::new();
            for (name, from) in keys {
                copy_private(&from, &data_dir.join(name))?;
                copied.push(name);
            }
            sync_dir(data_dir)?;
            println!(
                "key files put back into {}: {}",
                data_dir.display(),
                copied.join(", ")
            );
        }
        println!(
            "start chime on it: the execution role applies tasks whose events were in flight at \
             the dump; occurrences that fired after the dump fire again"
        );
        return Ok(());
    }
    let restored = {
        let (from, data_dir) = (from.to_path_buf(), data_dir.to_path_buf());
        tokio::task::spawn_blocking(move || restore(&from, &data_dir, force))
            .await
            .context("the restore task panicked")??
    };
    let v = &restored.verified;
    println!(
        "restored {} into {}: integrity ok, store schema {}, bus schema {}, {} tasks ({} with \
         occurrences to come)",
        from.display(),
        restored.store.display(),
        v.store_schema,
        v.bus_schema,
        v.tasks,
        v.scheduled
    );
    if let Some(aside) = &restored.replaced {
        println!("the store it replaced is kept as {}", aside.display());
    }
    if !restored.keys.is_empty() {
        println!("key files put back: {}", restored.keys.join(", "));
    }
    let missing: Vec<&str> = KEY_FILES
        .into_iter()
        .filter(|name| !data_dir.join(name).exists())
        .collect();
    if !missing.is_empty() {
        println!(
            "not in {}: {}. Start chime with the same encryption keys the backup was written \
             with (encryption.keys, or that data directory's encryption.key), or personal data \
             cannot be read; without the same issuer-ed25519.pk8, tokens signed before must be \
             issued again; without the same vapid-p256.key, browsers must subscribe to push again",
            data_dir.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
