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

use crate::config::Config;

/// The server's clock: the system clock plus an offset that only ever moves forward.
#[derive(Debug, Default)]
pub struct BenchClock {
    offset_us: AtomicI64,
}

impl BenchClock {
    /// Moves the clock forward so that it reads `at` now.
    pub(super) fn jump_to(&self, at: Timestamp) {
        eprintln!("scheduled; moving the server's clock to {at}");
        let offset = Timestamp::now().duration_until(at).as_micros() as i64;
        self.offset_us.fetch_max(offset, Ordering::SeqCst);
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
    _dir: tempfile::TempDir,
    db: PathBuf,
    pub(super) running: crate::Running,
    pub(super) clock: Arc<BenchClock>,
    pub(super) deliveries: Deliveries,
    client: reqwest::Client,
    url: String,
    token: String,
    user: UserId,
    pub(super) concurrency: usize,
}

impl Harness {
    pub(super) async fn start(concurrency: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
        let config = Config {
            data_dir: dir.path().to_path_buf(),
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
        let clock = Arc::new(BenchClock::default());
        let running = crate::start_with_clock(&config, listener, clock.clone()).await?;
        let deliveries = Deliveries::follow(&running.feed, clock.clone());
        let user = UserId::parse("bench")?;
        let token = running.issuer.sign(&user, Duration::from_secs(24 * 3600))?;
        let url = format!("http://{}/api/v1/tasks", running.addr);
        Ok(Self {
            db: dir.path().join("chime.sqlite"),
            _dir: dir,
            running,
            clock,
            deliveries,
            client: reqwest::Client::new(),
            url,
            token,
            user,
            concurrency,
        })
    }

    pub(super) async fn post_task(&self, body: &Value) -> anyhow::Result<()> {
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
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
                async move { self.post_task(&body).await }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let secs = started.elapsed().as_secs_f64();
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(n as f64 / secs)
    }

    /// Creates `n` reminders in-process through the definition role (the HTTP create's store
    /// write without HTTP), `concurrency` × 4 at a time.
    pub(super) async fn seed(&self, n: usize, body: impl Fn(usize) -> Value) -> anyhow::Result<()> {
        let definition = &self.running.definition;
        let started = Instant::now();
        let mut done = 0usize;
        let mut creates = futures::stream::iter(0..n)
            .map(|i| {
                let body = body(i);
                async move { definition.create(&self.user, body).await }
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

    fn open_db(&self) -> anyhow::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .with_context(|| format!("cannot open {}", self.db.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        Ok(conn)
    }

    /// Waits until the execution role holds `n` rows to fire (every task event consumed).
    pub(super) async fn await_scheduled(&self, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(3600);
        let conn = self.open_db()?;
        loop {
            let scheduled: i64 = conn.query_row(
                "SELECT count(*) FROM schedule WHERE due_at IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            if scheduled as usize >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("only {scheduled} of {n} reminders were scheduled after an hour");
            }
            // A benchmark polls; tests await events.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Used bytes of the store's file (pages in use, WAL included).
    pub(super) fn used_bytes(&self) -> anyhow::Result<u64> {
        used_bytes(&self.open_db()?)
    }

    /// Due instant to in-app commit of every notification, sorted.
    pub(super) fn lateness(&self) -> anyhow::Result<Vec<SignedDuration>> {
        self.lateness_from(Timestamp::MIN)
    }

    /// [`Harness::lateness`] of the notifications due at or after `from`.
    pub(super) fn lateness_from(&self, from: Timestamp) -> anyhow::Result<Vec<SignedDuration>> {
        let conn = self.open_db()?;
        let mut stmt = conn.prepare("SELECT due_at, created_at FROM inbox WHERE due_at >= ?1")?;
        let mut lateness = stmt
            .query_map([from.as_microsecond()], |r| {
                Ok(SignedDuration::from_micros(
                    r.get::<_, i64>(1)? - r.get::<_, i64>(0)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        lateness.sort();
        Ok(lateness)
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
