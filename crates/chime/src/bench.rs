//! `chime bench`: measures what a user feels, on the real path, and prints one table row per
//! run. It starts Chime (every role in this process, embedded default) on a fresh temporary
//! data directory, schedules reminders over authenticated HTTP, and counts every in-app
//! notification as the notification role commits it.
//!
//! Scenarios (the performance issue's):
//! - `burst`: N one-time reminders due at one instant (the top of the hour);
//! - `steady`: N reminders due evenly over a window, with P others pending far in the future;
//! - `create`: sustained single creates over HTTP from many concurrent clients;
//! - `recurring`: N daily tasks, several rounds of firing.
//!
//! Waiting for a due instant an hour away would make every run an hour long, so the server
//! runs on a [`BenchClock`]: the system clock plus an offset. Once every reminder is scheduled
//! (the schedule table holds them all), the harness moves the offset so that the server's clock
//! reads two seconds before the first due instant; from there time runs at its real pace and
//! the timer wakes at the due instant exactly as it would have. Every instant reported (due,
//! delivered) is read on that clock. The `recurring` scenario's daily tasks fire in rounds a
//! day apart with the idle day skipped, which to the scheduler is what per-minute tasks would be.
//!
//! What is measured per reminder: the due instant to the commit of its in-app notification
//! (`created_at` of the inbox row, written in the committing transaction), read back from the
//! store's file at the end; "due to last delivery" is the due instant to when the harness saw the
//! last notification committed. Peak RSS is this process's high-water mark (server and load
//! generator together); disk per pending reminder is the store file's used pages divided by
//! the reminders pending in it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chime_core::UserId;
use chime_roles::Clock as _;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::config::Config;

pub mod load;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Concurrent HTTP clients (and in-process callers when seeding pending reminders).
    #[arg(long, global = true, default_value_t = 64)]
    pub concurrency: usize,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// N one-time reminders due at the same instant.
    Burst {
        #[arg(long, default_value_t = 100_000)]
        reminders: usize,
    },
    /// N reminders due evenly over a window, with P others pending far in the future.
    Steady {
        #[arg(long, default_value_t = 100_000)]
        reminders: usize,
        /// The window, in seconds.
        #[arg(long, default_value_t = 60.0)]
        over: f64,
        /// Reminders pending far in the future meanwhile (created in-process through the
        /// definition role, the same store write as an HTTP create, to save time).
        #[arg(long, default_value_t = 0)]
        pending: usize,
    },
    /// Single creates over authenticated HTTP for a while.
    Create {
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Daily tasks, fired in rounds (a day apart, the idle day skipped).
    Recurring {
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Each round's occurrences fall due evenly over this many seconds.
        #[arg(long, default_value_t = 60.0)]
        over: f64,
    },
    /// Every scenario at a small size: what the test command runs so the harness cannot rot.
    Smoke,
    /// Many SSE inbox clients and writers at once against a `chime serve` process: errors,
    /// notifications received by every client, the server's peak RSS and the latency from
    /// due instant to client.
    Load(load::LoadArgs),
    /// The machine's own limit: bare SQLite commits per second, and rows per second in
    /// batches, on a table shaped like the schedule (no Chime code involved).
    Sqlite {
        #[arg(long, default_value_t = 200_000)]
        rows: usize,
    },
}

/// One run's figures: one row of the table.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    /// Reminders (or occurrences) measured.
    pub reminders: usize,
    pub pending: usize,
    /// Reminders scheduled per second over HTTP.
    pub schedule_rate: f64,
    /// The last due instant to the last delivery (`None` for `create`).
    pub drain: Option<SignedDuration>,
    /// Due instant to delivery for every occurrence (request latency for `create`), sorted.
    pub lateness: Vec<SignedDuration>,
    pub peak_rss_bytes: u64,
    /// Store bytes per pending reminder (`None` when nothing was left pending to measure).
    pub disk_per_pending: Option<f64>,
}

impl Report {
    pub fn print_header() {
        println!("| scenario | reminders | pending | schedule rate (HTTP) | due to last delivery | lateness p50 / p99 / max | peak RSS | disk per pending |");
        println!("|---|---|---|---|---|---|---|---|");
    }

    pub fn print(&self) {
        println!(
            "| {} | {} | {} | {:.0}/s | {} | {} | {:.0} MiB | {} |",
            self.scenario,
            self.reminders,
            self.pending,
            self.schedule_rate,
            self.drain.map_or("–".into(), ms),
            summary(&self.lateness),
            self.peak_rss_bytes as f64 / (1024.0 * 1024.0),
            self.disk_per_pending
                .map_or("–".into(), |b| format!("{b:.0} B")),
        );
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario {
        Scenario::Sqlite { rows } => {
            return tokio::task::spawn_blocking(move || sqlite_limits(rows)).await?
        }
        Scenario::Load(load) => return load::run(load).await,
        _ => {}
    }
    let reports = match args.scenario {
        Scenario::Smoke => smoke().await?,
        scenario => vec![measure(scenario, args.concurrency).await?],
    };
    Report::print_header();
    for report in &reports {
        report.print();
    }
    Ok(())
}

/// Every scenario at a small size.
pub async fn smoke() -> anyhow::Result<Vec<Report>> {
    let scenarios = [
        Scenario::Burst { reminders: 200 },
        Scenario::Steady {
            reminders: 200,
            over: 1.0,
            pending: 500,
        },
        Scenario::Create { seconds: 1.0 },
        Scenario::Recurring {
            tasks: 100,
            rounds: 2,
            over: 1.0,
        },
    ];
    let mut reports = Vec::new();
    for scenario in scenarios {
        reports.push(measure(scenario, 16).await?);
    }
    Ok(reports)
}

pub async fn measure(scenario: Scenario, concurrency: usize) -> anyhow::Result<Report> {
    if concurrency == 0 {
        bail!("--concurrency must be positive");
    }
    let harness = Harness::start(concurrency).await?;
    let result = match scenario {
        Scenario::Burst { reminders } => burst(&harness, reminders).await,
        Scenario::Steady {
            reminders,
            over,
            pending,
        } => steady(&harness, reminders, over, pending).await,
        Scenario::Create { seconds } => create(&harness, seconds).await,
        Scenario::Recurring {
            tasks,
            rounds,
            over,
        } => recurring(&harness, tasks, rounds, over).await,
        Scenario::Smoke | Scenario::Sqlite { .. } | Scenario::Load(_) => {
            bail!("not a scenario of the harness")
        }
    };
    harness.running.stop().await?;
    result
}

async fn burst(h: &Harness, n: usize) -> anyhow::Result<Report> {
    positive("--reminders", n)?;
    let due = h.clock.now() + SignedDuration::from_hours(1);
    let before = h.used_bytes()?;
    let rate = h
        .create_over_http(
            n,
            |_| json!({"name": "burst", "startDate": due.to_string()}),
        )
        .await?;
    h.await_scheduled(n).await?;
    let disk = (h.used_bytes()? - before) as f64 / n as f64;
    h.clock.jump_to(due - SignedDuration::from_secs(2));
    let last = h.deliveries.await_count(n as u64, &h.clock).await?;
    Ok(Report {
        scenario: "burst".into(),
        reminders: n,
        pending: 0,
        schedule_rate: rate,
        drain: Some(due.duration_until(last)),
        lateness: h.lateness()?,
        peak_rss_bytes: peak_rss(),
        disk_per_pending: Some(disk),
    })
}

async fn steady(h: &Harness, n: usize, over: f64, pending: usize) -> anyhow::Result<Report> {
    positive("--reminders", n)?;
    if over <= 0.0 {
        bail!("--over must be positive");
    }
    let before = h.used_bytes()?;
    // Far in the future, spread over a year: never due during the run.
    let far = h.clock.now() + SignedDuration::from_hours(24 * 30);
    h.seed(pending, |i| {
        json!({"name": "pending", "startDate": (far + SignedDuration::from_secs(i as i64 % 31_536_000)).to_string()})
    })
    .await?;
    h.await_scheduled(pending).await?;
    let disk =
        (pending > 0).then(|| (h.used_bytes().unwrap_or(before) - before) as f64 / pending as f64);

    let first = h.clock.now() + SignedDuration::from_hours(1);
    let step = SignedDuration::try_from_secs_f64(over / n as f64)?;
    let due_at = move |i: usize| first + step * i as i32;
    let rate = h
        .create_over_http(
            n,
            |i| json!({"name": "steady", "startDate": due_at(i).to_string()}),
        )
        .await?;
    h.await_scheduled(pending + n).await?;
    h.clock.jump_to(first - SignedDuration::from_secs(2));
    let last = h.deliveries.await_count(n as u64, &h.clock).await?;
    Ok(Report {
        scenario: format!("steady over {over} s"),
        reminders: n,
        pending,
        schedule_rate: rate,
        drain: Some(due_at(n - 1).duration_until(last)),
        lateness: h.lateness()?,
        peak_rss_bytes: peak_rss(),
        disk_per_pending: disk,
    })
}

async fn create(h: &Harness, seconds: f64) -> anyhow::Result<Report> {
    if seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    let far = h.clock.now() + SignedDuration::from_hours(24);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let latencies: Vec<anyhow::Result<SignedDuration>> = futures::stream::iter(0..)
        .take_while(|_| std::future::ready(Instant::now() < until))
        .map(|i: usize| {
            let body = json!({"name": "create", "startDate": (far + SignedDuration::from_millis(i as i64)).to_string()});
            async move {
                let sent = Instant::now();
                h.post_task(&body).await?;
                Ok(SignedDuration::try_from(sent.elapsed())?)
            }
        })
        .buffer_unordered(h.concurrency)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let mut latencies = latencies.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    latencies.sort();
    let n = latencies.len();
    h.await_scheduled(n).await?;
    Ok(Report {
        scenario: "create (request latency)".into(),
        reminders: n,
        pending: n,
        schedule_rate: n as f64 / secs,
        drain: None,
        lateness: latencies,
        peak_rss_bytes: peak_rss(),
        disk_per_pending: None,
    })
}

async fn recurring(h: &Harness, tasks: usize, rounds: usize, over: f64) -> anyhow::Result<Report> {
    positive("--tasks", tasks)?;
    positive("--rounds", rounds)?;
    if over <= 0.0 || over >= 3600.0 {
        bail!("--over must be between 0 and 3600 seconds");
    }
    let first = h.clock.now() + SignedDuration::from_hours(1);
    let step = SignedDuration::try_from_secs_f64(over / tasks as f64)?;
    let rate = h
        .create_over_http(tasks, |i| {
            json!({
                "name": "recurring",
                "startDate": (first + step * i as i32).to_string(),
                "repeats": {"period": "day"},
            })
        })
        .await?;
    h.await_scheduled(tasks).await?;
    let day = SignedDuration::from_hours(24);
    let mut last = first;
    for round in 0..rounds {
        let start = first + day * round as i32;
        // Only once every row moved on to this round's occurrence (the previous round's
        // deliveries counted means its rows were claimed and advanced).
        h.clock.jump_to(start - SignedDuration::from_secs(2));
        last = h
            .deliveries
            .await_count((tasks * (round + 1)) as u64, &h.clock)
            .await?;
    }
    let last_due = first + day * (rounds as i32 - 1) + step * (tasks as i32 - 1);
    Ok(Report {
        scenario: format!("recurring × {rounds} rounds over {over} s"),
        reminders: tasks * rounds,
        pending: 0,
        schedule_rate: rate,
        drain: Some(last_due.duration_until(last)),
        lateness: h.lateness()?,
        peak_rss_bytes: peak_rss(),
        disk_per_pending: None,
    })
}

/// Bare SQLite on this disk, WAL and `synchronous=NORMAL` like the store: one-row
/// transactions per second, then rows per second committed in batches of several sizes.
fn sqlite_limits(rows: usize) -> anyhow::Result<()> {
    positive("--rows", rows)?;
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("limits.sqlite"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE schedule (task_id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
             version INTEGER NOT NULL, body TEXT, due_at INTEGER, seq INTEGER NOT NULL)
             WITHOUT ROWID;
         CREATE INDEX schedule_by_due ON schedule (due_at) WHERE due_at IS NOT NULL;",
    )?;
    let body = r#"{"name":"bench","startDate":"2026-12-01T09:00:00Z","timeZone":"UTC","notify":{"inApp":true}}"#;
    let mut next = 0usize;
    let mut insert = |conn: &rusqlite::Connection, n: usize| -> anyhow::Result<()> {
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO schedule (task_id, user_id, version, body, due_at, seq)
                 VALUES (?1, 'bench', 1, ?2, ?3, 0)",
            )?;
            for _ in 0..n {
                next += 1;
                stmt.execute(rusqlite::params![
                    chime_core::TaskId::new().to_string(),
                    body,
                    next as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    };
    println!("| rows per commit | commits/s | rows/s |");
    println!("|---|---|---|");
    for per_commit in [1usize, 10, 100, 1000, 10_000] {
        let commits = (rows / per_commit).max(1);
        let started = Instant::now();
        for _ in 0..commits {
            insert(&conn, per_commit)?;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {per_commit} | {:.0} | {:.0} |",
            commits as f64 / secs,
            (commits * per_commit) as f64 / secs
        );
    }
    Ok(())
}

fn positive(name: &str, n: usize) -> anyhow::Result<()> {
    if n == 0 {
        bail!("{name} must be positive");
    }
    Ok(())
}

/// The server's clock: the system clock plus an offset that only ever moves forward.
#[derive(Debug, Default)]
pub struct BenchClock {
    offset_us: AtomicI64,
}

impl BenchClock {
    /// Moves the clock forward so that it reads `at` now.
    fn jump_to(&self, at: Timestamp) {
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

struct Harness {
    _dir: tempfile::TempDir,
    db: PathBuf,
    running: crate::Running,
    clock: Arc<BenchClock>,
    deliveries: Deliveries,
    client: reqwest::Client,
    url: String,
    token: String,
    user: UserId,
    concurrency: usize,
}

impl Harness {
    async fn start(concurrency: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse()?,
            // It measures the scheduler, not the abuse limits: one user creates every reminder.
            limits: crate::limits::LimitsConfig {
                writes_per_second: 1e9,
                write_burst: u32::MAX,
                tasks_per_user: usize::MAX,
                concurrent_requests: concurrency.max(512),
                ..crate::limits::LimitsConfig::default()
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

    async fn post_task(&self, body: &Value) -> anyhow::Result<()> {
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
    async fn create_over_http(
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
    async fn seed(&self, n: usize, body: impl Fn(usize) -> Value) -> anyhow::Result<()> {
        let definition = &self.running.definition;
        let started = Instant::now();
        let mut done = 0usize;
        let mut creates = futures::stream::iter(0..n)
            .map(|i| {
                let body = body(i);
                async move { definition.create(&self.user, &body).await }
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
    async fn await_scheduled(&self, n: usize) -> anyhow::Result<()> {
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
    fn used_bytes(&self) -> anyhow::Result<u64> {
        used_bytes(&self.open_db()?)
    }

    /// Due instant to in-app commit of every notification, sorted.
    fn lateness(&self) -> anyhow::Result<Vec<SignedDuration>> {
        let conn = self.open_db()?;
        let mut stmt = conn.prepare("SELECT due_at, created_at FROM inbox")?;
        let mut lateness = stmt
            .query_map([], |r| {
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
struct Deliveries {
    count: Arc<AtomicU64>,
    last_us: Arc<AtomicI64>,
    changed: Arc<Notify>,
}

impl Deliveries {
    fn follow(feed: &chime_roles::notification::InboxFeed, clock: Arc<BenchClock>) -> Self {
        let (count, last_us, changed) = (Arc::default(), Arc::default(), Arc::default());
        let mut items = feed.subscribe();
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
    async fn await_count(&self, n: u64, clock: &BenchClock) -> anyhow::Result<Timestamp> {
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

/// This process's peak resident set (`VmHWM`), in bytes; 0 where `/proc` is missing.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// p50 / p99 / max of sorted samples.
fn summary(samples: &[SignedDuration]) -> String {
    if samples.is_empty() {
        return "–".into();
    }
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "{} / {} / {}",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(samples[samples.len() - 1])
    )
}

fn ms(d: SignedDuration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
