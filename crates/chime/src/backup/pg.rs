//! Backups of a PostgreSQL store: `pg_dump` in its custom format, and `pg_restore` back.
//!
//! `pg_dump` reads one snapshot (a repeatable-read transaction), so a dump is one consistent
//! state of every table while `chime serve` keeps writing; it takes no lock that blocks
//! Chime's writes (only `ACCESS SHARE`, which a schema change would wait for). The dump is
//! written beside its target under a temporary name, listed back with `pg_restore --list` (a
//! dump that does not list is not kept), made private, fsynced and renamed: a dump file that
//! exists is complete.
//!
//! Restoring runs `pg_restore` in a single transaction that stops at the first error, so a
//! refused or failed restore changes nothing. Without `--force` it refuses a database that
//! already has Chime's tables (the restore's `CREATE TABLE` fails, and the transaction rolls
//! back); with it, `--clean --if-exists` replaces them.
//!
//! What a restore brings back is the store as it was at the dump. Events that were on the bus
//! then (relayed from the outbox, not yet applied) are not in the dump and will not be
//! delivered again: tasks the schedule had not yet heard of are applied when the execution
//! role starts (`Execution::catch_up`); occurrences that fired after the dump fire again.
//!
//! The password never appears on a command line (where `ps` shows it): it is taken out of the
//! URL and handed over in `PGPASSWORD`.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context as _};
use tokio::process::Command;

use super::take::sync_dir;
use super::Written;
use crate::backends::redact;

/// The extension of a scheduled PostgreSQL backup.
pub const EXTENSION: &str = "pgdump";

/// The first bytes of every custom-format archive.
const MAGIC: &[u8] = b"PGDMP";

/// Whether `path` is a `pg_dump` custom-format archive (else an embedded store's backup).
pub fn is_dump(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 5];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == MAGIC)
}

/// `url` without its password, and the password (percent-decoded), for libpq's tools.
fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| *c == '/' || *c == '?')
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    match userinfo.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}@{host}{tail}"),
            Some(percent_decode(password)),
        ),
        None => (url.to_owned(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok();
        match (bytes[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A libpq tool (`pg_dump`, `pg_restore`) with `args`, connected to `url` when given.
fn tool(name: &str, url: Option<&str>, args: &[&std::ffi::OsStr]) -> Command {
    let mut command = Command::new(name);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = url {
        let (url, password) = split_password(url);
        command.arg(format!("--dbname={url}"));
        if let Some(password) = password {
            command.env("PGPASSWORD", password);
        }
    }
    command
}

/// Runs `command`; its stdout, or why it failed (its stderr, which libpq keeps free of the
/// password).
async fn run(name: &str, mut command: Command) -> anyhow::Result<String> {
    let output = command.output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "{name} is not installed: install PostgreSQL's client tools of the server's \
                 major version or newer (Debian: apt-get install postgresql-client)"
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot run {name}"))
        }
    })?;
    if !output.status.success() {
        bail!(
            "{name} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// How many tables' data `archive` holds: `pg_restore --list` reads it through.
pub async fn verify(archive: &Path) -> anyhow::Result<usize> {
    let listing = run(
        "pg_restore",
        tool(
            "pg_restore",
            None,
            &["--list".as_ref(), archive.as_os_str()],
        ),
    )
    .await
    .with_context(|| format!("{} is not a readable pg_dump archive", archive.display()))?;
    Ok(listing
        .lines()
        .filter(|l| !l.starts_with(';') && l.contains(" TABLE DATA "))
        .count())
}

/// Dumps the PostgreSQL store at `url` into `to`, which must not exist yet.
pub async fn dump(url: &str, to: &Path) -> anyhow::Result<Written> {
    let started = Instant::now();
    if to.exists() {
        bail!("{} already exists: choose a new file", to.display());
    }
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = to
        .file_name()
        .with_context(|| format!("{} names no file", to.display()))?;
    let temp = dir.join(format!(".{}.partial", name.to_string_lossy()));
    let _ = std::fs::remove_file(&temp);
    let file_arg = {
        let mut arg = std::ffi::OsString::from("--file=");
        arg.push(&temp);
        arg
    };
    let result = async {
        run(
            "pg_dump",
            tool(
                "pg_dump",
                Some(url),
                &["--format=custom".as_ref(), "--no-owner".as_ref(), &file_arg],
            ),
        )
        .await
        .with_context(|| format!("cannot dump the PostgreSQL store {}", redact(url)))?;
        verify(&temp).await?;
        let file = std::fs::File::open(&temp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.sync_all()
            .with_context(|| format!("cannot fsync {}", temp.display()))?;
        anyhow::Ok(file.metadata()?.len())
    }
    .await;
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    std::fs::rename(&temp, to)
        .with_context(|| format!("cannot rename {} to {}", temp.display(), to.display()))?;
    sync_dir(&dir)?;
    Ok(Written {
        path: to.to_path_buf(),
        bytes,
        took: started.elapsed(),
    })
}

/// Restores the dump `from` into the PostgreSQL database at `url`, in one transaction: into
/// an empty database, or over Chime's tables with `force`. Returns how many tables' data it
/// restored.
pub async fn restore(from: &Path, url: &str, force: bool) -> anyhow::Result<usize> {
    let tables = verify(from).await?;
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--single-transaction".as_ref(),
        "--exit-on-error".as_ref(),
        "--no-owner".as_ref(),
    ];
    if force {
        args.push("--clean".as_ref());
        args.push("--if-exists".as_ref());
    }
    args.push(from.as_os_str());
    match run("pg_restore", tool("pg_restore", Some(url), &args)).await {
        Ok(_) => Ok(tables),
        Err(e) if !force && format!("{e:#}").contains("already exists") => bail!(
            "the database {} already has Chime's tables: refusing to replace them (nothing was \
             changed). Restore into an empty database, or pass --force to replace them",
            redact(url)
        ),
        Err(e) => Err(e.context(format!(
            "cannot restore {} into {} (nothing was changed: the restore is one transaction)",
            from.display(),
            redact(url)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_decoded_and_the_rest_stays() {
        assert_eq!(
            split_password("postgres://chime:s%40cr%3At@db:5432/chime?sslmode=require"),
            (
                "postgres://chime@db:5432/chime?sslmode=require".to_owned(),
                Some("s@cr:t".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://postgres@127.0.0.1/x"),
            ("postgres://postgres@127.0.0.1/x".to_owned(), None)
        );
        assert_eq!(
            split_password("postgresql://u:p@h"),
            ("postgresql://u@h".to_owned(), Some("p".to_owned()))
        );
    }
}
