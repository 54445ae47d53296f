//! Taking a backup: `VACUUM INTO` a temporary file from a read-only connection of its own,
//! checked, made private, fsynced and renamed (the module's documentation says why), and
//! `chime backup`, which takes one now. The restore writes its copy with the same steps.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use rusqlite::{Connection, OpenFlags};
use tokio_util::sync::CancellationToken;

use super::{copy_keys, keys_dir, store_path};

/// A backup written.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub took: Duration,
}

/// Takes a backup of the store `db` into `to`, which must not exist yet. Blocking; safe while
/// `chime serve` runs on the same file.
pub fn take(db: &Path, to: &Path) -> anyhow::Result<Written> {
    let started = std::time::Instant::now();
    if to.exists() {
        bail!(
            "{} already exists: choose a new file name (backups are never overwritten)",
            to.display()
        );
    }
    let source = open_source(db)?;
    let bytes = snapshot(&source, to)?;
    Ok(Written {
        path: to.to_path_buf(),
        bytes,
        took: started.elapsed(),
    })
}

/// [`take`] on the blocking pool; `shutdown` interrupts it (and nothing is left behind).
pub async fn take_async(
    db: PathBuf,
    to: PathBuf,
    shutdown: &CancellationToken,
) -> anyhow::Result<Written> {
    let started = std::time::Instant::now();
    let source = tokio::task::spawn_blocking(move || open_source(&db))
        .await
        .context("the backup task panicked")??;
    let interrupt = source.get_interrupt_handle();
    let job = {
        let to = to.clone();
        tokio::task::spawn_blocking(move || snapshot(&source, &to))
    };
    tokio::pin!(job);
    let bytes = tokio::select! {
        done = &mut job => done,
        () = shutdown.cancelled() => {
            interrupt.interrupt();
            job.await
        }
    }
    .context("the backup task panicked")??;
    Ok(Written {
        path: to,
        bytes,
        took: started.elapsed(),
    })
}

/// A read-only connection for copying `db` from.
pub(super) fn open_source(db: &Path) -> anyhow::Result<Connection> {
    if !db.is_file() {
        bail!(
            "there is no store at {}: check --data-dir (or data_dir)",
            db.display()
        );
    }
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// `VACUUM INTO` a temporary file beside `to`, checked, private, fsynced, renamed to `to`.
fn snapshot(source: &Connection, to: &Path) -> anyhow::Result<u64> {
    let dir = match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let name = to
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} is not a usable file name", to.display()))?;
    let temp = dir.join(format!(".{name}.partial"));
    let result = write_checked(source, &temp).and_then(|bytes| {
        std::fs::rename(&temp, to)
            .with_context(|| format!("cannot rename {} to {}", temp.display(), to.display()))?;
        sync_dir(&dir)?;
        Ok(bytes)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

pub(super) fn write_checked(source: &Connection, temp: &Path) -> anyhow::Result<u64> {
    let _ = std::fs::remove_file(temp);
    let target = temp
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", temp.display()))?;
    source
        .execute("VACUUM INTO ?1", [target])
        .with_context(|| format!("cannot write a snapshot into {}", temp.display()))?;
    {
        let copy = Connection::open_with_flags(temp, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open the snapshot {}", temp.display()))?;
        let check: String = copy
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .context("cannot check the snapshot")?;
        if check != "ok" {
            bail!("the snapshot failed its check: {check}");
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(temp)
        .with_context(|| format!("cannot open {}", temp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.sync_all()
        .with_context(|| format!("cannot fsync {}", temp.display()))?;
    Ok(file.metadata()?.len())
}

pub(super) fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync the directory {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// `chime backup --to FILE [--with-keys]`: takes one now and says what it needs to restore.
pub async fn command(config: &crate::Config, to: &Path, with_keys: bool) -> anyhow::Result<()> {
    if let Some(url) = &config.store.url {
        super::refuse_mongodb(url)?;
    }
    let (written, copied) = if let Some(url) = &config.store.url {
        let written = super::pg::dump(url, to).await?;
        let copied = if with_keys {
            copy_keys(&config.data_dir, to)?
        } else {
            Vec::new()
        };
        (written, copied)
    } else {
        let db = store_path(&config.data_dir);
        let (db, to, data_dir) = (db, to.to_path_buf(), config.data_dir.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let written = take(&db, &to)?;
            let copied = if with_keys {
                copy_keys(&data_dir, &to)?
            } else {
                Vec::new()
            };
            Ok((written, copied))
        })
        .await
        .context("the backup task panicked")??
    };
    println!(
        "backup written: {} ({} bytes, {} ms)",
        written.path.display(),
        written.bytes,
        written.took.as_millis()
    );
    if with_keys {
        println!(
            "key files copied into {}: {}",
            keys_dir(to).display(),
            if copied.is_empty() {
                "none found".to_owned()
            } else {
                copied.join(", ")
            }
        );
    } else {
        println!(
            "the backup holds no keys: restoring needs the same encryption keys and, for tokens \
             to keep working, the same issuer key (see docs/backups.md, or pass --with-keys)"
        );
    }
    if !config.encryption.keys.is_empty() {
        println!(
            "encryption.keys is configured: keep those keys (all of them, old ones too) in your \
             secret store; the backup cannot be read without them"
        );
    }
    Ok(())
}
