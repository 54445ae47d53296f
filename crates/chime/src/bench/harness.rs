//! What the scenarios run on: a Chime started in this process on a fresh temporary data
//! directory with a [`BenchClock`], an authenticated HTTP client, read-only looks into the
//! store's file, and the count of in-app notifications as they are committed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chime_core::UserId;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::Notify;

use super::apart::{Apart, Backends};
use crate::config::Config;

/// The server's clock: the system clock plus an offset that only ever moves forward.
#[derive(Debug, Default)]
pub struct BenchClock {
    offset_us: AtomicI64,
}

impl BenchClock {
    /// Moves the clock forward so that it reads `at` now; returns the offset it now has.
    pub(super) fn jump_to(&self, at: Timestamp) -> i64 {
        eprintln!("scheduled; moving the server's clock to {at}");
        let offset = Timestamp::now().duration_until(at).as_micros() as i64;
        self.offset_us
            .fetch_max(offset, Ordering::SeqCst)
            .max(offset)
    }

    /// Sets the offset another process's clock moved to.
    pub(super) fn set_offset(&self, offset_us: i64) {
        self.offset_us.fetch_max(offset_us, Ordering::SeqCst);
    }
}

impl chime_roles::Clock for BenchClock {
    fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_micros(self.offset_us.load(Ordering::Relaxed));
        Timestamp::now()
            .checked_add(offset)
            .unwrap_or(Timestamp::MAX)
    }
}

pub(super) struct Harness {
    server: Server,
    /// Read-only looks into the store the server writes.
    pub(super) store: StoreView,
    pub(super) clock: Arc<BenchClock>,
    client: reqwest::Client,
    url: String,
    /// The users reminders are created for, in turn, and their bearer tokens.
    users: Vec<(UserId, String)>,
    pub(super) concurrency: usize,
    _dir: tempfile::TempDir,
}

/// What the scenarios run against.
enum Server {
    /// Every role in this process on the embedded default.
    Embedded {
        running: Box<crate::Running>,
        deliveries: Deliveries,
    },
    /// The roles apart, on PostgreSQL and a broker.
    Apart(Box<Apart>),
}

impl Harness {
    /// Starts the embedded default, or with `backends` the roles apart.
    pub(super) async fn start(
        concurrency: usize,
        users: usize,
        backends: Option<&Backends>,
    ) -> anyhow::Result<Self> {
        if users == 0 {
            bail!("--users must be positive");
        }
        let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
        let clock = Arc::new(BenchClock::default());
        let sign = |issuer: &chime_http::LocalIssuer| -> anyhow::Result<Vec<(UserId, String)>> {
            (0..users)
                .map(|i| {
                    let user = UserId::parse(&if users == 1 {
                        "bench".to_owned()
                    } else {
                        format!("bench{i}")
                    })?;
                    let token = issuer.sign(&user, Duration::from_secs(24 * 3600))?;
                    Ok((user, token))
                })
                .collect()
        };
        let (server, store, url, users) = match backends {
            None => {
                let running = start_embedded(dir.path(), concurrency, &clock).await?;
                let users = sign(&running.issuer)?;
                let deliveries = Deliveries::follow(&running.feed, clock.clone());
                let url = format!("http://{}/api/v1/tasks", running.addr);
                let store = StoreView::Sqlite(dir.path().join("chime.sqlite"));
                let server = Server::Embedded {
                    running: Box::new(running),
                    deliveries,
                };
                (server, store, url, users)
            }
            Some(backends) => {
                let apart = Apart::start(backends, dir.path(), concurrency).await?;
                let store = match sqlx::PgPool::connect(&apart.db_url).await {
                    Ok(pool) => StoreView::Postgres(pool),
                    Err(error) => {
                        let mut apart = apart;
                        apart.stop().await.ok();
                        return Err(error).context("cannot connect to the benchmark's database");
                    }
                };
                let url = format!("http://{}/api/v1/tasks", apart.api);
                let users = sign(apart.issuer.as_ref().context("no issuer")?)?;
                (Server::Apart(Box::new(apart)), store, url, users)
            }
        };
        Ok(Self {
            server,
            store,
            clock,
            client: reqwest::Client::new(),
            url,
            users,
            concurrency,
            _dir: dir,
        })
    }

    /// The in-process server, for what only the embedded default offers.
    pub(super) fn embedded(&self, what: &str) -> anyhow::Result<&crate::Running> {
        match &self.server {
            Server::Embedded { running, .. } => Ok(running),
            Server::Apart(_) => bail!("{what} runs on the embedded default only"),
        }
    }

    /// Moves every server clock so that it reads `at` now.
    pub(super) fn jump_to(&mut self, at: Timestamp) -> anyhow::Result<()> {
        let offset = self.clock.jump_to(at);
        match &mut self.server {
            Server::Embedded { .. } => Ok(()),
            Server::Apart(apart) => apart.set_offset(offset),
        }
    }

    /// Waits until `n` in-app notifications were committed; returns when the last was.
    pub(super) async fn await_delivered(&self, n: u64) -> anyhow::Result<Timestamp> {
        match &self.server {
            Server::Embedded { deliveries, .. } => deliveries.await_count(n, &self.clock).await,
            Server::Apart(_) => {
                let deadline = Instant::now() + Duration::from_secs(1800);
                loop {
                    let (count, last) = self.store.inbox_progress().await?;
                    if count >= n {
                        return Ok(Timestamp::from_microsecond(last)?);
                    }
                    if Instant::now() > deadline {
                        bail!("only {count} of {n} notifications after 30 minutes");
                    }
                    // A benchmark polls; tests await events.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// The server's peak resident set: this process's for the embedded default, the sum of
    /// the role processes' apart.
    pub(super) fn peak_rss(&self) -> u64 {
        match &self.server {
            Server::Embedded { .. } => super::peak_rss(),
            Server::Apart(apart) => apart.peak_rss(),
        }
    }

    pub(super) async fn stop(self) -> anyhow::Result<()> {
        match self.server {
            Server::Embedded { running, .. } => running.stop().await,
            Server::Apart(mut apart) => {
                if let StoreView::Postgres(pool) = &self.store {
                    pool.close().await;
                }
                apart.stop().await
            }
        }
    }

    /// Creates the `i`th reminder (for the `i`th user in turn).
    pub(super) async fn post_task(&self, i: usize, body: &Value) -> anyhow::Result<()> {
        let (_, token) = &self.users[i % self.users.len()];
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("create failed: {}", response.text().await?);
        }
        Ok(())
    }

    /// Creates `n` reminders over HTTP; returns creates per second.
    pub(super) async fn create_over_http(
        &self,
        n: usize,
        body: impl Fn(usize) -> Value,
    ) -> anyhow::Result<f64> {
        eprintln!("creating {n} reminders over HTTP");
        let started = Instant::now();
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..n)
            .map(|i| {
                let body = body(i);
                async move { self.post_task(i, &body).await }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let secs = started.elapsed().as_secs_f64();
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(n as f64 / secs)
    }

    /// Creates `n` reminders in-process through the definition role (the HTTP create's store
    /// write without HTTP), `concurrency` × 4 at a time; over HTTP when the roles are apart.
    pub(super) async fn seed(&self, n: usize, body: impl Fn(usize) -> Value) -> anyhow::Result<()> {
        let Server::Embedded { running, .. } = &self.server else {
            self.create_over_http(n, body).await?;
            return Ok(());
        };
        let definition = &running.definition;
        let started = Instant::now();
        let mut done = 0usize;
        let mut creates = futures::stream::iter(0..n)
            .map(|i| {
                let body = body(i);
                let (user, _) = &self.users[i % self.users.len()];
                async move { definition.create(user, body).await }
            })
            .buffer_unordered(self.concurrency * 4);
        while let Some(created) = creates.next().await {
            created.map_err(|e| anyhow::anyhow!("seeding failed: {e}"))?;
            done += 1;
            if done.is_multiple_of(500_000) {
                eprintln!(
                    "seeded {done} of {n} ({:.0}/s)",
                    done as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        if n > 0 {
            eprintln!(
                "seeded {n} pending reminders in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// Waits until the execution role holds `n` rows to fire (every task event consumed).
    pub(super) async fn await_scheduled(&self, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let scheduled = self.store.scheduled().await?;
            if scheduled >= n as u64 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("only {scheduled} of {n} reminders were scheduled after an hour");
            }
            // A benchmark polls; tests await events.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn start_embedded(
    dir: &std::path::Path,
    concurrency: usize,
    clock: &Arc<BenchClock>,
) -> anyhow::Result<crate::Running> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        // It measures the scheduler, not the abuse limits: one user creates every reminder.
        // The task cap stays finite, so every create checks it as a user's does.
        limits: crate::limits::LimitsConfig {
            writes_per_second: 1e9,
            write_burst: u32::MAX,
            tasks_per_user: 100_000_000,
            concurrent_requests: concurrency.max(512),
            ..crate::limits::LimitsConfig::default()
        },
        // The `retention` scenario runs (and times) retention itself.
        retention: crate::retention::RetentionConfig {
            interval_seconds: 0,
            ..crate::retention::RetentionConfig::default()
        },
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    crate::start_with_clock(&config, listener, clock.clone()).await
}

/// Read-only looks into the server's store: the embedded store's file, or the PostgreSQL
/// database of the roles apart (the same tables, the same microsecond instants).
pub(super) enum StoreView {
    Sqlite(PathBuf),
    Postgres(sqlx::PgPool),
}

/// One fired occurrence's instants, microseconds: due, fired (the execution role's claim),
/// its in-app notification committed (the notification role).
pub type Instants = (i64, i64, i64);

impl StoreView {
    fn open_db(path: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .with_context(|| format!("cannot open {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        Ok(conn)
    }

    /// Rows the execution role holds to fire.
    async fn scheduled(&self) -> anyhow::Result<u64> {
        const SQL: &str = "SELECT count(*) FROM schedule WHERE due_at IS NOT NULL";
        let n: i64 = match self {
            StoreView::Sqlite(path) => Self::open_db(path)?.query_row(SQL, [], |r| r.get(0))?,
            StoreView::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await?,
        };
        Ok(n as u64)
    }

    /// Used bytes of the store: the SQLite file's pages in use (WAL included), or the
    /// PostgreSQL database's size.
    pub(super) async fn used_bytes(&self) -> anyhow::Result<u64> {
        match self {
            StoreView::Sqlite(path) => used_bytes(&Self::open_db(path)?),
            StoreView::Postgres(pool) => {
                let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(pool)
                    .await?;
                Ok(n as u64)
            }
        }
    }

    /// In-app notifications committed, and the latest commit instant (microseconds).
    async fn inbox_progress(&self) -> anyhow::Result<(u64, i64)> {
        const SQL: &str = "SELECT count(*), coalesce(max(created_at), 0) FROM inbox";
        let (n, last): (i64, i64) = match self {
            StoreView::Sqlite(path) => {
                Self::open_db(path)?.query_row(SQL, [], |r| Ok((r.get(0)?, r.get(1)?)))?
            }
            StoreView::Postgres(pool) => sqlx::query_as(SQL).fetch_one(pool).await?,
        };
        Ok((n as u64, last))
    }

    /// Due instant to in-app commit of every notification, sorted.
    pub(super) async fn lateness(&self) -> anyhow::Result<Vec<SignedDuration>> {
        self.lateness_from(Timestamp::MIN).await
    }

    /// [`StoreView::lateness`] of the notifications due at or after `from`.
    pub(super) async fn lateness_from(
        &self,
        from: Timestamp,
    ) -> anyhow::Result<Vec<SignedDuration>> {
        const SQL_SQLITE: &str = "SELECT due_at, created_at FROM inbox WHERE due_at >= ?1";
        const SQL_PG: &str = "SELECT due_at, created_at FROM inbox WHERE due_at >= $1";
        let rows: Vec<(i64, i64)> = match self {
            StoreView::Sqlite(path) => {
                let conn = Self::open_db(path)?;
                let mut stmt = conn.prepare(SQL_SQLITE)?;
                let rows = stmt
                    .query_map([from.as_microsecond()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows
            }
            StoreView::Postgres(pool) => {
                sqlx::query_as(SQL_PG)
                    .bind(from.as_microsecond())
                    .fetch_all(pool)
                    .await?
            }
        };
        let mut lateness: Vec<SignedDuration> = rows
            .into_iter()
            .map(|(due, created)| SignedDuration::from_micros(created - due))
            .collect();
        lateness.sort();
        Ok(lateness)
    }

    /// Every fired occurrence with an in-app notification: where its lateness went.
    pub(super) async fn instants(&self) -> anyhow::Result<Vec<Instants>> {
        const SQL: &str = "SELECT o.due_at, o.fired_at, i.created_at FROM occurrences o \
                           JOIN inbox i ON i.task_id = o.task_id AND i.due_at = o.due_at";
        Ok(match self {
            StoreView::Sqlite(path) => {
                let conn = Self::open_db(path)?;
                let mut stmt = conn.prepare(SQL)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows
            }
            StoreView::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await?,
        })
    }
}

fn used_bytes(conn: &rusqlite::Connection) -> anyhow::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages - free) * size) as u64)
}

/// Counts in-app notifications as the notification role commits them (the in-process feed
/// is published after each commit), and when the latest was seen, on the server's clock.
pub(super) struct Deliveries {
    count: Arc<AtomicU64>,
    last_us: Arc<AtomicI64>,
    changed: Arc<Notify>,
}

impl Deliveries {
    fn follow(feed: &chime_roles::notification::InboxFeed, clock: Arc<BenchClock>) -> Self {
        let (count, last_us, changed) = (Arc::default(), Arc::default(), Arc::default());
        let mut items = feed.subscribe_all();
        let (c, l, n): (Arc<AtomicU64>, Arc<AtomicI64>, Arc<Notify>) = (
            Arc::clone(&count),
            Arc::clone(&last_us),
            Arc::clone(&changed),
        );
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let seen = match items.recv().await {
                    Ok(_) => 1,
                    // Too slow to see each one: they were committed all the same.
                    Err(RecvError::Lagged(missed)) => missed,
                    Err(RecvError::Closed) => return,
                };
                let now = chime_roles::Clock::now(&*clock).as_microsecond();
                l.store(now, Ordering::SeqCst);
                c.fetch_add(seen, Ordering::SeqCst);
                n.notify_waiters();
            }
        });
        Self {
            count,
            last_us,
            changed,
        }
    }

    /// Waits until `n` notifications were committed; returns when the last was seen.
    pub(super) async fn await_count(
        &self,
        n: u64,
        clock: &BenchClock,
    ) -> anyhow::Result<Timestamp> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1800);
        loop {
            let changed = self.changed.notified();
            if self.count.load(Ordering::SeqCst) >= n {
                let last = SignedDuration::from_micros(self.last_us.load(Ordering::SeqCst));
                return Ok(Timestamp::UNIX_EPOCH + last);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                bail!(
                    "only {} of {n} notifications after 30 minutes (server clock {})",
                    self.count.load(Ordering::SeqCst),
                    chime_roles::Clock::now(clock)
                );
            }
        }
    }
}
