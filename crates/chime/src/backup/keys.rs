//! The key files a backup does not hold: `chime backup --with-keys` copies them beside it
//! (`<FILE>.keys/`), and a restore puts them back without replacing a different key unasked.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::take::sync_dir;
use super::KEY_FILES;

/// Where `chime backup --with-keys` puts the key files of a backup at `backup`.
pub fn keys_dir(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".keys");
    PathBuf::from(name)
}

/// Copies the key files of `data_dir` into [`keys_dir`] of `backup` (private); returns their
/// names.
pub fn copy_keys(data_dir: &Path, backup: &Path) -> anyhow::Result<Vec<&'static str>> {
    let into = keys_dir(backup);
    std::fs::create_dir_all(&into).with_context(|| format!("cannot create {}", into.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&into, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut copied = Vec::new();
    for name in KEY_FILES {
        let from = data_dir.join(name);
        if from.is_file() {
            copy_private(&from, &into.join(name))?;
            copied.push(name);
        }
    }
    sync_dir(&into)?;
    Ok(copied)
}

pub(super) fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let temp = to.with_extension("partial");
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options
            .open(&temp)
            .with_context(|| format!("cannot write {}", temp.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, to).with_context(|| format!("cannot write {}", to.display()))
}

/// The key files of `<from>.keys/` to put into `data_dir`; a different one already there is
/// an error unless `force`.
pub(super) fn plan_keys(
    from: &Path,
    data_dir: &Path,
    force: bool,
) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let dir = keys_dir(from);
    let mut plan = Vec::new();
    if !dir.is_dir() {
        return Ok(plan);
    }
    for name in KEY_FILES {
        let source = dir.join(name);
        if !source.is_file() {
            continue;
        }
        let target = data_dir.join(name);
        if target.is_file() {
            let same = std::fs::read(&source).ok() == std::fs::read(&target).ok();
            if same {
                continue;
            }
            if !force {
                bail!(
                    "{} differs from the backup's {}: refusing to replace a key (pass --force \
                     to replace it)",
                    target.display(),
                    source.display()
                );
            }
        }
        plan.push((name, source));
    }
    Ok(plan)
}
