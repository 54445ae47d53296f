//! `chime doctor`: checks a deployment before (or while) it runs, and says what is wrong and
//! how to fix it, one line per check.
//!
//! It changes nothing: the store is opened read-only (PostgreSQL: one connection that reads
//! the applied schema version; the broker: one metadata request), no key file is created, no
//! message is sent (SMTP: connect, EHLO, NOOP, QUIT; SMS: one GET of the gateway's base URL). A check
//! that cannot run because an earlier one failed (no configuration) is not printed. `warn`
//! lines are worth reading but do not fail the run; any `FAIL` makes it exit non-zero.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

use crate::backup;
use crate::config::{Config, Overrides};
use crate::lock::DataDirLock;
use crate::profile::{self, Environment};

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
        out.push(postgres_check(url, config.store.migrate).await);
    }
    if let Some(bootstrap) = &config.bus.kafka_bootstrap {
        out.push(kafka_check(&config.bus, bootstrap).await);
    }
    out.push(keys_check(&config));
    out.push(backups_check(&config));
    out.extend(provider_checks(&config).await);
    out.push(issuer_check(&config).await);
    out
}

fn config_checks(config: &Config, overrides: &Overrides, out: &mut Vec<Check>) {
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

fn tls_check(config: &Config) -> Check {
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

fn server_check(data_dir: &Path) -> Check {
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

/// The PostgreSQL store: reachable, and migrated to this build's schema.
async fn postgres_check(url: &str, migrates: bool) -> Check {
    use chime_store::postgres::{PgStore, SCHEMA_VERSION};
    let shown = crate::backends::redact(url);
    let inner = async {
        let store = PgStore::connect(url, 1).await?;
        store.applied_schema_version().await
    };
    match tokio::time::timeout(Duration::from_secs(15), inner).await {
        Err(_) => check(
            Status::Fail,
            "store",
            format!("PostgreSQL at {shown} did not answer within 15 s"),
        ),
        Ok(Err(e)) => check(
            Status::Fail,
            "store",
            format!(
                "PostgreSQL at {shown}: {}: check store.url, the server and its pg_hba.conf",
                causes(&e)
            ),
        ),
        Ok(Ok(applied)) if applied == SCHEMA_VERSION => check(
            Status::Ok,
            "store",
            format!("PostgreSQL at {shown}, schema version {applied}"),
        ),
        Ok(Ok(applied)) if applied > SCHEMA_VERSION => check(
            Status::Fail,
            "store",
            format!(
                "PostgreSQL at {shown} has schema version {applied}, newer than this build's \
                 {SCHEMA_VERSION}: upgrade chime"
            ),
        ),
        Ok(Ok(applied)) => check(
            if migrates { Status::Warn } else { Status::Fail },
            "store",
            format!(
                "PostgreSQL at {shown} has schema version {applied} of {SCHEMA_VERSION}: run \
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

/// The Kafka-protocol broker, in a build without the adapter: it cannot be reached.
#[cfg(not(feature = "kafka"))]
async fn kafka_check(_bus: &crate::backends::BusConfig, _bootstrap: &str) -> Check {
    check(Status::Fail, "bus", crate::backends::NO_KAFKA.to_owned())
}

/// The Kafka-protocol broker: one metadata request.
#[cfg(feature = "kafka")]
async fn kafka_check(bus: &crate::backends::BusConfig, bootstrap: &str) -> Check {
    let options = chime_bus::kafka::KafkaOptions {
        bootstrap_servers: bootstrap.to_owned(),
        settings: bus
            .kafka_settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..chime_bus::kafka::KafkaOptions::default()
    };
    let pinged = match chime_bus::kafka::KafkaBus::connect(options) {
        Ok(kafka) => tokio::time::timeout(Duration::from_secs(15), kafka.ping())
            .await
            .map_err(|_| "no answer within 15 s".to_owned())
            .and_then(|r| r.map_err(|e| causes(&e))),
        Err(e) => Err(causes(&e)),
    };
    match pinged {
        Ok(()) => check(
            Status::Ok,
            "bus",
            format!("Kafka broker at {bootstrap} answers"),
        ),
        Err(e) => check(
            Status::Fail,
            "bus",
            format!("Kafka broker at {bootstrap}: {e}: check bus.kafka_bootstrap and the broker"),
        ),
    }
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

fn store_checks(data_dir: &Path) -> Vec<Check> {
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

fn bus_check(conn: &Connection) -> Check {
    let inner = || -> anyhow::Result<Check> {
        let has_meta: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bus_meta')",
            [],
            |r| r.get(0),
        )?;
        if !has_meta {
            return Ok(check(
                Status::Warn,
                "bus",
                "the log's tables are not in the store's file yet: `chime serve` creates them",
            ));
        }
        let version: i64 = conn
            .query_row(
                "SELECT value FROM bus_meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if version != chime_bus::log::SCHEMA_VERSION {
            return Ok(check(
                Status::Fail,
                "bus",
                format!(
                    "the log's schema version is {version}, this build knows {}: run the chime \
                     that wrote it",
                    chime_bus::log::SCHEMA_VERSION
                ),
            ));
        }
        let lag: Vec<(String, i64)> = conn
            .prepare(
                "SELECT g.group_name, SUM(MAX(t.next_offset - g.next_offset, 0))
                   FROM bus_group_offsets g JOIN bus_topics t ON t.topic = g.topic
                  GROUP BY g.group_name ORDER BY g.group_name",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let outbox: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        let lag = if lag.is_empty() {
            "no consumer group yet".to_owned()
        } else {
            lag.iter()
                .map(|(group, n)| format!("{group} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(check(
            Status::Ok,
            "bus",
            format!(
                "log schema version {version}; consumer lag: {lag}; outbox: {outbox} events not \
                 yet relayed"
            ),
        ))
    };
    inner().unwrap_or_else(|e| check(Status::Fail, "bus", format!("cannot read it: {e:#}")))
}

fn keys_check(config: &Config) -> Check {
    let encryption = &config.encryption;
    if !encryption.keys.is_empty() {
        return match chime_crypto::Keyring::parse(&encryption.keys) {
            Ok(keys) => check(
                Status::Ok,
                "encryption keys",
                format!(
                    "{} configured (ids {}); {} encrypts",
                    keys.key_ids().len(),
                    keys.key_ids().join(", "),
                    keys.current_id()
                ),
            ),
            Err(e) => check(
                Status::Fail,
                "encryption keys",
                format!("encryption.keys: {e}: each is `id:<base64 of 32 bytes>`"),
            ),
        };
    }
    let path = config.data_dir.join(crate::encryption::KEY_FILE);
    if !encryption.data_dir_key {
        return check(
            Status::Fail,
            "encryption keys",
            "none configured and encryption.data_dir_key is off: configure encryption.keys",
        );
    }
    match std::fs::read_to_string(&path) {
        Ok(spec) => match chime_crypto::Keyring::parse(&[spec.trim()]) {
            Ok(_) => check(
                Status::Ok,
                "encryption keys",
                format!(
                    "the data directory's key file {} (fine for one machine; production \
                     configures encryption.keys)",
                    path.display()
                ),
            ),
            Err(e) => check(
                Status::Fail,
                "encryption keys",
                format!("{} is not a key: {e}", path.display()),
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => check(
            Status::Warn,
            "encryption keys",
            format!(
                "no key configured and no {} yet: `chime serve` creates one; a store restored \
                 from another data directory needs that directory's key file copied here first",
                path.display()
            ),
        ),
        Err(e) => check(
            Status::Fail,
            "encryption keys",
            format!("cannot read {}: {e}", path.display()),
        ),
    }
}

fn backups_check(config: &Config) -> Check {
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

async fn provider_checks(config: &Config) -> Vec<Check> {
    let channels = &config.channels;
    let mut out = Vec::new();
    match &channels.email {
        None => out.push(check(
            Status::Ok,
            "email",
            "not configured (deliveries skipped)",
        )),
        Some(email) => out.push(match chime_channels::email::EmailChannel::new(email) {
            Err(e) => check(Status::Fail, "email", format!("channels.email: {e}")),
            Ok(channel) => match channel.check_connection().await {
                Ok(()) => check(
                    Status::Ok,
                    "email",
                    "the SMTP relay answers EHLO and NOOP (nothing sent)",
                ),
                Err(e) => check(
                    Status::Fail,
                    "email",
                    format!(
                        "cannot talk to the SMTP relay: {e}. Check channels.email.smtp_url \
                         (CHIME_SMTP_URL): host, port, `?tls=` or smtps://, credentials; and \
                         that the relay is up and reachable from here"
                    ),
                ),
            },
        }),
    }
    match &channels.sms {
        None => out.push(check(
            Status::Ok,
            "sms",
            "not configured (deliveries skipped)",
        )),
        Some(sms) => out.push(match chime_channels::sms::SmsChannel::new(sms) {
            Err(e) => check(Status::Fail, "sms", format!("channels.sms: {e}")),
            Ok(_) => sms_reachable(&sms.base_url, sms.timeout_seconds).await,
        }),
    }
    match &channels.push {
        None => out.push(check(
            Status::Ok,
            "push",
            "not configured (deliveries skipped)",
        )),
        Some(_) => {
            let file = config
                .keys_dir()
                .join(chime_channels::push::VapidKeys::FILE);
            out.push(if file.is_file() {
                match chime_channels::push::VapidKeys::load_or_create(config.keys_dir()) {
                    Ok(keys) => check(
                        Status::Ok,
                        "push",
                        format!(
                            "the VAPID key loads (public key {}…)",
                            keys.public_key_base64url().get(..12).unwrap_or_default()
                        ),
                    ),
                    Err(e) => check(
                        Status::Fail,
                        "push",
                        format!(
                            "{e}: restore the key file from a backup (browsers subscribed to \
                             this key)"
                        ),
                    ),
                }
            } else {
                check(
                    Status::Warn,
                    "push",
                    format!(
                        "no VAPID key at {} yet: `chime serve` creates one; browsers subscribed \
                         to an earlier key must subscribe again",
                        file.display()
                    ),
                )
            });
        }
    }
    out.push(match &channels.webhook {
        None => check(Status::Ok, "webhook", "not configured"),
        Some(w) => check(
            Status::Ok,
            "webhook",
            format!(
                "nothing to check: endpoints are per user (allow_private = {})",
                w.allow_private
            ),
        ),
    });
    out
}

/// One GET of the gateway's base URL: any HTTP answer means it is reachable. Sends nothing.
async fn sms_reachable(base_url: &str, timeout_seconds: u64) -> Check {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(timeout_seconds.clamp(1, 300)))
        .build()
    {
        Ok(client) => client,
        Err(e) => return check(Status::Fail, "sms", format!("cannot build a client: {e}")),
    };
    match client.get(base_url.trim()).send().await {
        Ok(response) => check(
            Status::Ok,
            "sms",
            format!(
                "the gateway {} is reachable (GET answered {}; nothing sent)",
                base_url.trim(),
                response.status()
            ),
        ),
        Err(e) => check(
            Status::Fail,
            "sms",
            format!(
                "cannot reach the gateway {}: {}. Check channels.sms.base_url and the network \
                 path to it",
                base_url.trim(),
                error_chain(&e)
            ),
        ),
    }
}

async fn issuer_check(config: &Config) -> Check {
    match &config.auth.issuer {
        Some(issuer) => {
            let keys = match chime_http::OidcKeys::new(issuer, Duration::from_secs(60)) {
                Ok(keys) => keys,
                Err(e) => return check(Status::Fail, "issuer", format!("auth.issuer: {e}")),
            };
            match keys.check().await {
                Ok(n) => check(
                    Status::Ok,
                    "issuer",
                    format!(
                        "{issuer}: discovery document and JWKS fetched, {n} usable signing key(s)"
                    ),
                ),
                Err(e) => check(
                    Status::Fail,
                    "issuer",
                    format!(
                        "{issuer}: {}. Check auth.issuer (it must be the provider's exact `iss`, \
                         serving /.well-known/openid-configuration) and that it is reachable \
                         from here",
                        error_chain(&e)
                    ),
                ),
            }
        }
        None => {
            let file = config.keys_dir().join(backup::KEY_FILES[0]);
            if !file.is_file() {
                return check(
                    Status::Warn,
                    "issuer",
                    format!(
                        "local issuer: no key at {} yet: `chime serve` (or `chime token`) \
                         creates one; tokens signed with an earlier key stop working",
                        file.display()
                    ),
                );
            }
            match chime_http::LocalIssuer::load_or_create(
                config.keys_dir(),
                "http://doctor.invalid",
                &config.auth.audience,
            ) {
                Ok(issuer) => check(
                    Status::Ok,
                    "issuer",
                    format!(
                        "local issuer: the signing key loads (kid {}); production uses \
                         [auth] issuer instead",
                        issuer.kid()
                    ),
                ),
                Err(e) => check(
                    Status::Fail,
                    "issuer",
                    format!(
                        "local issuer: {e}: restore {} from a backup, or delete it to start a \
                         new key (every token must then be issued again)",
                        file.display()
                    ),
                ),
            }
        }
    }
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
