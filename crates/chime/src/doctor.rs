//! `chime doctor`: checks a deployment before (or while) it runs, and says what is wrong and
//! how to fix it, one line per check.
//!
//! It changes nothing: the store is opened read-only (PostgreSQL: one connection that reads
//! the applied schema version; the broker: one metadata request), no key file is created, no
//! message is sent (SMTP: connect, EHLO, NOOP, QUIT; SMS: one GET of the gateway's base URL). A check
//! that cannot run because an earlier one failed (no configuration) is not printed. `warn`
//! lines are worth reading but do not fail the run; any `FAIL` makes it exit non-zero.
//!
//! Each group of checks is a module: `settings` (configuration, TLS, the server), `store`,
//! `bus`, `keys` (encryption keys, the token issuer), `backups`, `providers` (the channels).

use std::fmt;
use std::path::Path;

use crate::config::{Config, Overrides};

mod backups;
mod bus;
mod keys;
mod providers;
mod retention;
mod settings;
mod store;

use backups::backups_check;
use bus::kafka_check;
use keys::{issuer_check, keys_check};
use providers::provider_checks;
use retention::retention_check;
use settings::{config_checks, server_check, tls_check};
use store::{shared_store_check, store_checks};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub status: Status,
    pub name: String,
    pub detail: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        write!(f, "{status}  {}: {}", self.name, self.detail)
    }
}

fn check(status: Status, name: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        status,
        name: name.into(),
        detail: detail.into(),
    }
}

/// Runs every check, prints one line each, and returns whether none failed.
pub async fn run(file: Option<&Path>, overrides: &Overrides) -> bool {
    let checks = checks(file, overrides).await;
    for c in &checks {
        println!("{c}");
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed == 0 {
        println!("all checks passed");
    } else {
        println!("{failed} check(s) failed");
    }
    failed == 0
}

/// Every check's result, in the order printed.
pub async fn checks(file: Option<&Path>, overrides: &Overrides) -> Vec<Check> {
    let mut out = Vec::new();
    let config = match Config::load_unvalidated(file, overrides) {
        Ok(config) => config,
        Err(e) => {
            out.push(check(
                Status::Fail,
                "config",
                format!("{e:#}: fix the key it names in the config file or CHIME_* variable"),
            ));
            return out;
        }
    };
    config_checks(&config, overrides, &mut out);
    out.push(tls_check(&config));
    out.push(server_check(&config.data_dir));
    // The embedded store and log share one file; a distributed backend replaces its half.
    let (pg, kafka) = (config.store.url.clone(), config.bus.kafka_bootstrap.clone());
    if pg.is_none() || kafka.is_none() {
        let data_dir = config.data_dir.clone();
        match tokio::task::spawn_blocking(move || store_checks(&data_dir)).await {
            Ok(checks) => out.extend(checks.into_iter().filter(|c| {
                (c.name == "store" && pg.is_none()) || (c.name == "bus" && kafka.is_none())
            })),
            Err(e) => out.push(check(
                Status::Fail,
                "store",
                format!("the check panicked: {e}"),
            )),
        }
    }
    if let Some(url) = &config.store.url {
        out.push(shared_store_check(url, config.store.migrate).await);
    }
    if let Some(bootstrap) = &config.bus.kafka_bootstrap {
        out.push(kafka_check(&config.bus, bootstrap).await);
    }
    out.push(keys_check(&config));
    out.push(backups_check(&config));
    out.push(retention_check(&config).await);
    out.extend(provider_checks(&config).await);
    out.push(issuer_check(&config).await);
    out
}

/// An error and its sources, each once: drivers often repeat their source in their own text.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = e.source();
    }
    text
}

/// An error and its causes, each once.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
