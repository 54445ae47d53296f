//! Scheduled backups: on, and the newest one no older than two intervals.

use super::{check, Check, Status};
use crate::backup;
use crate::config::Config;

pub(super) fn backups_check(config: &Config) -> Check {
    let settings = &config.backup;
    if !settings.enabled() {
        return check(
            Status::Warn,
            "backups",
            "scheduled backups are off (backup.interval_seconds = 0): take them with `chime \
             backup --to FILE` from cron, or turn them on",
        );
    }
    let dir = settings.dir(&config.data_dir);
    match backup::list(&dir) {
        Ok(all) => match all.last() {
            None => check(
                Status::Warn,
                "backups",
                format!(
                    "none in {} yet: `chime serve` takes the first within a minute of starting",
                    dir.display()
                ),
            ),
            Some((at, path)) => {
                let age = jiff::Timestamp::now().duration_since(*at);
                let secs = age.as_secs().max(0) as u64;
                let stale = secs > settings.interval_seconds.saturating_mul(2);
                check(
                    if stale { Status::Warn } else { Status::Ok },
                    "backups",
                    format!(
                        "{} kept in {}; the newest, {}, is {secs} s old{}",
                        all.len(),
                        dir.display(),
                        path.file_name().unwrap_or_default().to_string_lossy(),
                        if stale {
                            ": older than two intervals: is the server running? its log says \
                             why a scheduled backup failed"
                        } else {
                            ""
                        }
                    ),
                )
            }
        },
        Err(e) => check(Status::Fail, "backups", format!("{e:#}")),
    }
}
