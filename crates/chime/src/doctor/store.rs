//! The store: the embedded SQLite file, opened read-only (intact, of a schema this build can
//! open), or PostgreSQL or MongoDB (reachable, migrated). The embedded file holds the bus log too, so
//! its check also runs the bus's.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::bus::bus_check;
use super::{causes, check, Check, Status};
use crate::backup;

/// The PostgreSQL or MongoDB store: reachable, and migrated to this build's schema.
pub(super) async fn shared_store_check(url: &str, migrates: bool) -> Check {
    use crate::backends::{SharedStore, StoreKind};
    let shown = crate::backends::redact(url);
    let Some(kind) = StoreKind::of(url) else {
        return check(
            Status::Fail,
            "store",
            format!("{shown} is neither a postgres:// nor a mongodb:// URL"),
        );
    };
    let db = kind.name();
    let hint = match kind {
        StoreKind::Postgres => "check store.url, the server and its pg_hba.conf",
        StoreKind::Mongo => {
            "check store.url (its database, credentials and replica set) and the server"
        }
    };
    let inner = async {
        SharedStore::open(kind, url, 1)
            .await?
            .schema_versions()
            .await
    };
    match tokio::time::timeout(Duration::from_secs(15), inner).await {
        Err(_) => check(
            Status::Fail,
            "store",
            format!("{db} at {shown} did not answer within 15 s"),
        ),
        Ok(Err(e)) => check(
            Status::Fail,
            "store",
            format!("{db} at {shown}: {}: {hint}", causes(&e)),
        ),
        Ok(Ok((applied, built))) if applied == built => check(
            Status::Ok,
            "store",
            format!("{db} at {shown}, schema version {applied}"),
        ),
        Ok(Ok((applied, built))) if applied > built => check(
            Status::Fail,
            "store",
            format!(
                "{db} at {shown} has schema version {applied}, newer than this build's \
                 {built}: upgrade chime"
            ),
        ),
        Ok(Ok((applied, built))) => check(
            if migrates { Status::Warn } else { Status::Fail },
            "store",
            format!(
                "{db} at {shown} has schema version {applied} of {built}: run \
                 `chime migrate`{}",
                if migrates {
                    " (or `chime serve` does it, since store.migrate is on)"
                } else {
                    " (store.migrate is off)"
                }
            ),
        ),
    }
}

pub(super) fn store_checks(data_dir: &Path) -> Vec<Check> {
    let path = backup::store_path(data_dir);
    if !path.is_file() {
        return vec![check(
            Status::Fail,
            "store",
            format!(
                "no store at {}: check --data-dir (or data_dir); `chime serve` creates it, \
                 `chime restore --from BACKUP --data-dir DIR` restores one",
                path.display()
            ),
        )];
    }
    let conn = match Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(conn) => conn,
        Err(e) => {
            return vec![check(
                Status::Fail,
                "store",
                format!(
                    "cannot open {} read-only: {e}: check its permissions",
                    path.display()
                ),
            )]
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    vec![store_check(&conn, &path), bus_check(&conn)]
}

fn store_check(conn: &Connection, path: &Path) -> Check {
    let inner = || -> anyhow::Result<Check> {
        let integrity: Vec<String> = conn
            .prepare("PRAGMA integrity_check(10)")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if integrity != ["ok"] {
            return Ok(check(
                Status::Fail,
                "store",
                format!(
                    "{} is damaged ({}): restore the newest backup (`chime restore --from \
                     BACKUP --data-dir NEW`) and start on that",
                    path.display(),
                    integrity.join("; ")
                ),
            ));
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = chime_store::sqlite::SCHEMA_VERSION as i64;
        if version == 0 || version > known {
            return Ok(check(
                Status::Fail,
                "store",
                if version == 0 {
                    format!("{} is not a Chime store (schema version 0)", path.display())
                } else {
                    format!(
                        "schema version {version} is newer than this build knows ({known}): \
                         run a newer chime"
                    )
                },
            ));
        }
        let tasks: i64 = conn.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))?;
        let scheduled: i64 = conn.query_row(
            "SELECT count(*) FROM schedule WHERE due_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        let note = if version < known {
            format!(" (this build migrates it to {known} at start)")
        } else {
            String::new()
        };
        Ok(check(
            Status::Ok,
            "store",
            format!(
                "{}: integrity ok, schema version {version}{note}, {tasks} tasks, {scheduled} \
                 with occurrences to come",
                path.display()
            ),
        ))
    };
    inner().unwrap_or_else(|e| check(Status::Fail, "store", format!("cannot read it: {e:#}")))
}
