//! The data directory's lock: `<data-dir>/chime.lock`, held exclusively by `chime serve` (and
//! by `chime restore` while it replaces the store).
//!
//! Why: the embedded default is one process per data directory (the bus's consumer groups and
//! wake-ups live in that process), so a second server on the same directory is a mistake, and
//! a restore under a running server would swap the file out from under it. The lock is an
//! advisory `flock(2)` on an open file: the kernel releases it when the holder exits, however
//! it exits, so a crashed server never leaves a stale lock behind. The file itself stays; it
//! holds the holder's pid for the person reading the error. Not on Windows (there the lock is
//! a no-op and the check is the operator's).

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "chime.lock";

/// An exclusive hold on a data directory, released on drop.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another chime process holds {path} (pid {holder}): a `chime serve` is running on this \
         data directory; stop it first, or use another --data-dir"
    )]
    Held { path: PathBuf, holder: String },
    #[error("cannot open the lock file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (creating the directory and the file when needed), or
    /// fails at once when another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if !try_lock(&file).map_err(io)? {
            let holder = std::fs::read_to_string(&path)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".to_owned());
            return Err(LockError::Held { path, holder });
        }
        // Ours now: record who holds it. Best effort: the lock, not the text, is what counts.
        let _ = write_pid(&file);
        Ok(DataDirLock { _file: file, path })
    }

    /// Whether some process holds the lock of `data_dir` right now (taking and releasing it to
    /// find out). A directory without a lock file is not locked.
    pub fn is_held(data_dir: &Path) -> anyhow::Result<bool> {
        let path = data_dir.join(LOCK_FILE);
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot open {}", path.display()));
            }
        };
        let free = try_lock(&file).with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(!free)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_pid(mut file: &File) -> std::io::Result<()> {
    use std::io::{Seek as _, Write as _};
    file.set_len(0)?;
    file.seek(std::io::SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

/// `flock(LOCK_EX | LOCK_NB)`: `Ok(false)` when another open file holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!DataDirLock::is_held(dir.path()).expect("check"));
        let first = DataDirLock::acquire(dir.path()).expect("first");
        let error = DataDirLock::acquire(dir.path()).expect_err("second");
        let message = error.to_string();
        assert!(
            message.contains(&std::process::id().to_string()),
            "names the holder: {message}"
        );
        assert!(DataDirLock::is_held(dir.path()).expect("check"));
        drop(first);
        assert!(!DataDirLock::is_held(dir.path()).expect("check"));
        DataDirLock::acquire(dir.path()).expect("free again");
    }
}
