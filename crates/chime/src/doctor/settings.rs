//! The settings themselves (the environment's requirements, then the rest of validation), the
//! TLS files they name, and whether a server already runs on their data directory: what can
//! be checked without reaching any backend.

use std::path::Path;

use super::{check, Check, Status};
use crate::config::{Config, Overrides};
use crate::lock::DataDirLock;
use crate::profile::{self, Environment};

pub(super) fn config_checks(config: &Config, overrides: &Overrides, out: &mut Vec<Check>) {
    let problems = profile::problems(config);
    for problem in &problems {
        out.push(check(
            Status::Fail,
            format!("config ({})", config.environment.name()),
            problem,
        ));
    }
    // The rest of validation, past the environment's requirements just reported.
    let mut rest = config.clone();
    rest.environment = Environment::Development;
    if rest.encryption.keys.is_empty() {
        // Missing keys are the keys check's to report, once.
        rest.encryption.data_dir_key = true;
    }
    match rest.validate() {
        Err(e) => out.push(check(Status::Fail, "config", format!("{e:#}"))),
        Ok(()) if problems.is_empty() => out.push(check(
            Status::Ok,
            "config",
            format!(
                "valid; environment {}{}, data directory {}",
                config.environment.name(),
                overrides
                    .profile
                    .as_deref()
                    .map(|p| format!(" (profile {p})"))
                    .unwrap_or_default(),
                config.data_dir.display()
            ),
        )),
        Ok(()) => {}
    }
}

pub(super) fn tls_check(config: &Config) -> Check {
    if config.tls.enabled() {
        return match config.tls.load() {
            Ok(_) => check(Status::Ok, "tls", "the certificate and key load and match"),
            Err(e) => check(Status::Fail, "tls", format!("{e:#}")),
        };
    }
    if config.behind_tls_gateway {
        check(
            Status::Ok,
            "tls",
            "plain HTTP on the listener, behind a TLS gateway (behind_tls_gateway = true)",
        )
    } else {
        check(
            Status::Ok,
            "tls",
            "plain HTTP (no [tls]): fine on loopback or behind a gateway; set [tls] cert_file \
             and key_file to serve HTTPS",
        )
    }
}

pub(super) fn server_check(data_dir: &Path) -> Check {
    match DataDirLock::is_held(data_dir) {
        Ok(true) => check(
            Status::Ok,
            "server",
            format!(
                "a chime serve holds {} (running)",
                data_dir.join(crate::lock::LOCK_FILE).display()
            ),
        ),
        Ok(false) => check(Status::Ok, "server", "no chime serve is running on it"),
        Err(e) => check(Status::Warn, "server", format!("cannot tell: {e:#}")),
    }
}
