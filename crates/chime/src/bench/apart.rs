//! The distributed mode of the harness: the roles apart, each a `chime` process of its own on
//! a PostgreSQL server and a Kafka-protocol broker given by address, as a deployment runs them.
//!
//! Every run gets a fresh database on that server (created here, migrated, dropped at the end)
//! and a fresh topic and group prefix on the broker, so no earlier run's events replay. The
//! processes are this binary's hidden `bench role` command: `chime serve` with a [`BenchClock`]
//! whose offset the harness writes to its standard input, one line per move (the offset in
//! microseconds, the same for every process, so their clocks agree as the machine's do). The
//! end of that input stops the process, so none outlives the harness.
//!
//! Processes: one `definition,web` (the API the harness creates through), `--instances`
//! execution and notification instances each, and one tick.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::AsyncBufReadExt as _;

use super::harness::BenchClock;
use crate::config::{Config, Overrides};

/// Where the distributed mode runs: `--store-url` and `--kafka-bootstrap`.
#[derive(Debug, Clone)]
pub struct Backends {
    /// A PostgreSQL server (any database on it): the run creates a database of its own there.
    pub store_url: String,
    pub kafka_bootstrap: String,
    /// Execution and notification instances, each.
    pub instances: usize,
    /// The `chime` the processes run (this one, unless a test's harness is this process).
    pub binary: PathBuf,
}

/// The running processes and the database they share.
pub(super) struct Apart {
    processes: Vec<RoleProcess>,
    /// The database's URL, for the harness's own reads.
    pub(super) db_url: String,
    admin_url: String,
    db_name: String,
    /// The API's address (`definition,web`).
    pub(super) api: SocketAddr,
    /// The issuer the API trusts, for the harness's tokens.
    pub(super) issuer: Option<chime_http::LocalIssuer>,
    dir: PathBuf,
}

struct RoleProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Apart {
    pub(super) async fn start(
        backends: &Backends,
        dir: &Path,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        if backends.instances == 0 {
            bail!("--instances must be positive");
        }
        if !backends.store_url.starts_with("postgres://")
            && !backends.store_url.starts_with("postgresql://")
        {
            bail!(
                "--store-url must be a postgres:// URL (the harness reads its figures with SQL), \
                 not `{}`",
                redact(&backends.store_url)
            );
        }
        let run = format!(
            "chime_bench_{}_{}",
            std::process::id(),
            jiff::Timestamp::now().as_millisecond()
        );
        let db_url = create_database(&backends.store_url, &run).await?;
        let mut apart = Apart {
            processes: Vec::new(),
            db_url: db_url.clone(),
            admin_url: backends.store_url.clone(),
            db_name: run.clone(),
            api: "127.0.0.1:0".parse()?,
            issuer: None,
            dir: dir.to_owned(),
        };
        // From here on a failure drops the database (the caller stops what started).
        if let Err(error) = apart.spawn_all(backends, &run, concurrency).await {
            apart.stop().await.ok();
            return Err(error);
        }
        Ok(apart)
    }

    async fn spawn_all(
        &mut self,
        backends: &Backends,
        run: &str,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        crate::backends::SharedStore::connect(&self.db_url, 1)
            .await?
            .migrate()
            .await
            .context("cannot migrate the benchmark's database")?;
        // What every process shares, made before any starts: the issuer's key (the harness's
        // tokens must verify at the API), the action key and the encryption key.
        let keys = self.dir.join("keys");
        std::fs::create_dir_all(&keys)?;
        self.api = free_addr()?;
        self.issuer = Some(
            chime_http::LocalIssuer::load_or_create(
                &keys,
                &format!("http://{}", self.api),
                chime_http::LocalIssuer::AUDIENCE,
            )
            .context("cannot create the issuer's key")?,
        );
        crate::encryption::action_keys(&keys)?;
        let env: Vec<(&str, String)> = vec![
            ("CHIME_STORE__URL", self.db_url.clone()),
            ("CHIME_STORE__MIGRATE", "false".into()),
            (
                "CHIME_BUS__KAFKA_BOOTSTRAP",
                backends.kafka_bootstrap.clone(),
            ),
            ("CHIME_BUS__PREFIX", format!("{run}-")),
            ("CHIME_KEYS_DIR", keys.display().to_string()),
            (
                "CHIME_ENCRYPTION__KEYS",
                chime_crypto::Keyring::generate_spec("bench")?,
            ),
            // As the embedded harness: the abuse limits out of the way, the task cap finite.
            ("CHIME_LIMITS__WRITES_PER_SECOND", "1000000000".into()),
            ("CHIME_LIMITS__WRITE_BURST", u32::MAX.to_string()),
            ("CHIME_LIMITS__TASKS_PER_USER", "100000000".into()),
            (
                "CHIME_LIMITS__CONCURRENT_REQUESTS",
                concurrency.max(512).to_string(),
            ),
            ("CHIME_RETENTION__INTERVAL_SECONDS", "0".into()),
        ];
        let mut roles = vec![("definition,web".to_owned(), self.api)];
        for i in 0..backends.instances {
            roles.push((format!("execution#{i}"), free_addr()?));
            roles.push((format!("notification#{i}"), free_addr()?));
        }
        roles.push(("tick".to_owned(), free_addr()?));
        for (name, listen) in &roles {
            let process = spawn(&backends.binary, name, *listen, &self.dir, &env)?;
            self.processes.push(process);
        }
        eprintln!(
            "started {} processes; waiting until each is ready",
            roles.len()
        );
        for (process, (_, listen)) in self.processes.iter_mut().zip(&roles) {
            await_ready(process, *listen, &self.dir).await?;
        }
        Ok(())
    }

    /// Sets every process's clock offset.
    pub(super) fn set_offset(&mut self, offset_us: i64) -> anyhow::Result<()> {
        for process in &mut self.processes {
            let stdin = process.stdin.as_mut().context("the process was stopped")?;
            writeln!(stdin, "{offset_us}")
                .with_context(|| format!("cannot reach the {} process", process.name))?;
        }
        Ok(())
    }

    /// Every process's peak resident set (`VmHWM`), summed: the deployment's memory.
    pub(super) fn peak_rss(&self) -> u64 {
        self.processes
            .iter()
            .map(|p| super::peak_rss_of(&format!("/proc/{}/status", p.child.id())))
            .sum()
    }

    /// Stops every process (the end of its input), then drops the database.
    pub(super) async fn stop(&mut self) -> anyhow::Result<()> {
        for process in &mut self.processes {
            process.stdin.take();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for process in &mut self.processes {
            while process.child.try_wait()?.is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.processes.clear();
        drop_database(&self.admin_url, &self.db_name).await
    }
}

/// `chime bench role` of `name`'s roles (what precedes a `#`) on `listen`, its output in
/// `DIR/NAME.log`.
fn spawn(
    binary: &Path,
    name: &str,
    listen: SocketAddr,
    dir: &Path,
    env: &[(&str, String)],
) -> anyhow::Result<RoleProcess> {
    let roles = name.split('#').next().unwrap_or(name);
    let data_dir = dir.join(file_name(name));
    std::fs::create_dir_all(&data_dir)?;
    let log = std::fs::File::create(log_path(dir, name))?;
    let mut child = Command::new(binary)
        .args(["bench", "role", "--roles", roles])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("CHIME_DATA_DIR", &data_dir)
        .env("CHIME_LISTEN", listen.to_string())
        .current_dir(&data_dir)
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start a role process")?;
    Ok(RoleProcess {
        name: name.to_owned(),
        stdin: child.stdin.take(),
        child,
    })
}

async fn await_ready(
    process: &mut RoleProcess,
    listen: SocketAddr,
    dir: &Path,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = format!("http://{listen}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = process.child.try_wait()? {
            bail!(
                "the {} process exited ({status}) before it was ready; its log ends:\n{}",
                process.name,
                log_tail(dir, &process.name)
            );
        }
        if let Ok(response) = client.get(&url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the {} process was not ready after 60 s; its log ends:\n{}",
                process.name,
                log_tail(dir, &process.name)
            );
        }
        // A benchmark polls; tests await events.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn file_name(process: &str) -> String {
    process.replace([',', '#'], "-")
}

fn log_path(dir: &Path, process: &str) -> PathBuf {
    dir.join(format!("{}.log", file_name(process)))
}

/// The last lines of a process's log (the directory is removed when the harness stops).
fn log_tail(dir: &Path, process: &str) -> String {
    let log = std::fs::read_to_string(log_path(dir, process)).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url).context("--store-url is not a URL")?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "(not a URL)".to_owned(),
        |mut u| {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        },
    )
}

async fn admin(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))
}

async fn create_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut conn = admin(url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot create the database {name}"))?;
    eprintln!("created the database {name} for this run");
    with_database(url, name)
}

async fn drop_database(url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = admin(url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot drop the database {name}"))?;
    Ok(())
}

/// `chime bench role`: `chime serve` of `roles` (configured by the environment the harness
/// sets) on a [`BenchClock`] moved by offsets read from standard input, until its end.
pub async fn serve_role(roles: Vec<String>) -> anyhow::Result<()> {
    let config = Config::load(
        None,
        &Overrides {
            roles: Some(roles),
            ..Overrides::default()
        },
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let clock = Arc::new(BenchClock::default());
    let running = crate::start_with_clock(&config, listener, clock.clone()).await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let offset: i64 = line
            .trim()
            .parse()
            .with_context(|| format!("not a clock offset in microseconds: `{line}`"))?;
        clock.set_offset(offset);
    }
    running.stop().await
}
