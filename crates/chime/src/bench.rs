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
//!
//! With `--store-url` and `--kafka-bootstrap` the same scenarios run on the distributed mode:
//! the roles apart, each a process of its own, on a database and topic prefix of the run's own
//! (see `apart`); figures are then read from that database.
//!
//! The scenarios are in `scenarios`, what they run on (the server, its clock, the client, the
//! delivery count) in `harness`; `load` and `sqlite` are scenarios of their own.

use anyhow::bail;
use jiff::SignedDuration;

mod apart;
mod harness;
pub mod load;
mod scenarios;
mod sqlite;

pub use apart::Backends;
pub use harness::BenchClock;
use harness::Harness;
pub use harness::Instants;
use scenarios::{burst, create, recurring, retention, steady};
use sqlite::sqlite_limits;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Concurrent HTTP clients (and in-process callers when seeding pending reminders).
    #[arg(long, global = true, default_value_t = 64)]
    pub concurrency: usize,
    /// The distributed mode: the roles apart, as processes of their own, on this PostgreSQL
    /// server (a database of the run's own is created on it and dropped at the end). Needs
    /// `--kafka-bootstrap`.
    #[arg(long, global = true, requires = "kafka_bootstrap")]
    pub store_url: Option<String>,
    /// The distributed mode's broker (topics under a prefix of the run's own).
    #[arg(long, global = true, requires = "store_url")]
    pub kafka_bootstrap: Option<String>,
    /// The distributed mode's execution and notification instances, each.
    #[arg(long, global = true, default_value_t = 1)]
    pub instances: usize,
    /// Users the reminders are created for, in turn (before the scenario: `bench --users 100
    /// burst`). One by default; on PostgreSQL each user's creates are serial (the exact task
    /// cap locks the user's count until the create commits).
    #[arg(long, default_value_t = 1)]
    pub users: usize,
}

impl BenchArgs {
    fn backends(&self) -> anyhow::Result<Option<Backends>> {
        let (Some(store_url), Some(kafka_bootstrap)) = (&self.store_url, &self.kafka_bootstrap)
        else {
            return Ok(None);
        };
        if !cfg!(feature = "kafka") {
            bail!(
                "--kafka-bootstrap needs a chime built with the Kafka bus: \
                 cargo build --release -p chime --features kafka"
            );
        }
        Ok(Some(Backends {
            store_url: store_url.clone(),
            kafka_bootstrap: kafka_bootstrap.clone(),
            instances: self.instances,
            binary: std::env::current_exe()?,
        }))
    }
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
    /// N reminders fire, a year passes, and a retention run deletes that past while a burst
    /// of N/10 falls due: what the run deleted and took, and the burst's lateness meanwhile.
    Retention {
        #[arg(long, default_value_t = 100_000)]
        reminders: usize,
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
    /// One process of the distributed mode (started by the harness, not by hand).
    #[command(hide = true)]
    Role {
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
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
    /// Where the lateness went, per occurrence (empty for `create`).
    pub instants: Vec<Instants>,
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

    /// The stages of the lateness, p50 / p99 / max: due to fired (the execution role's
    /// claim) and fired to the in-app notification committed (outbox, bus, notification role).
    pub fn print_stages(&self) {
        if self.instants.is_empty() {
            return;
        }
        let stage = |f: fn(&Instants) -> i64| {
            let mut samples: Vec<SignedDuration> = self
                .instants
                .iter()
                .map(|i| SignedDuration::from_micros(f(i)))
                .collect();
            samples.sort();
            summary(&samples)
        };
        println!(
            "{}: due → fired {}; fired → in-app committed {} ({} occurrences)",
            self.scenario,
            stage(|(due, fired, _)| fired - due),
            stage(|(_, fired, committed)| committed - fired),
            self.instants.len(),
        );
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario {
        Scenario::Sqlite { rows } => {
            return tokio::task::spawn_blocking(move || sqlite_limits(rows)).await?
        }
        Scenario::Load(load) => return load::run(load).await,
        Scenario::Role { roles } => return apart::serve_role(roles).await,
        _ => {}
    }
    let backends = args.backends()?;
    let reports = match args.scenario {
        Scenario::Smoke => smoke(backends.as_ref()).await?,
        scenario => vec![measure(scenario, args.concurrency, args.users, backends.as_ref()).await?],
    };
    Report::print_header();
    for report in &reports {
        report.print();
    }
    for report in &reports {
        report.print_stages();
    }
    Ok(())
}

/// Every scenario at a small size (apart: every one but `retention`, which runs in process).
pub async fn smoke(backends: Option<&Backends>) -> anyhow::Result<Vec<Report>> {
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
        Scenario::Retention { reminders: 200 },
    ];
    let mut reports = Vec::new();
    for scenario in scenarios {
        if backends.is_some() && matches!(scenario, Scenario::Retention { .. }) {
            continue;
        }
        reports.push(measure(scenario, 16, 1, backends).await?);
    }
    Ok(reports)
}

pub async fn measure(
    scenario: Scenario,
    concurrency: usize,
    users: usize,
    backends: Option<&Backends>,
) -> anyhow::Result<Report> {
    if concurrency == 0 {
        bail!("--concurrency must be positive");
    }
    let mut harness = Harness::start(concurrency, users, backends).await?;
    let h = &mut harness;
    let result = match scenario {
        Scenario::Burst { reminders } => burst(h, reminders).await,
        Scenario::Steady {
            reminders,
            over,
            pending,
        } => steady(h, reminders, over, pending).await,
        Scenario::Create { seconds } => create(h, seconds).await,
        Scenario::Recurring {
            tasks,
            rounds,
            over,
        } => recurring(h, tasks, rounds, over).await,
        Scenario::Retention { reminders } => retention(h, reminders).await,
        Scenario::Smoke | Scenario::Sqlite { .. } | Scenario::Load(_) | Scenario::Role { .. } => {
            Err(anyhow::anyhow!("not a scenario of the harness"))
        }
    };
    let result = match result {
        Ok(mut report) => harness.store.instants().await.map(|instants| {
            report.instants = instants;
            report
        }),
        Err(error) => Err(error),
    };
    harness.stop().await?;
    result
}

fn positive(name: &str, n: usize) -> anyhow::Result<()> {
    if n == 0 {
        bail!("{name} must be positive");
    }
    Ok(())
}

/// This process's peak resident set (`VmHWM`), in bytes; 0 where `/proc` is missing.
fn peak_rss() -> u64 {
    peak_rss_of("/proc/self/status")
}

/// The peak resident set a `/proc/PID/status` file gives, in bytes; 0 when unreadable.
fn peak_rss_of(status: &str) -> u64 {
    std::fs::read_to_string(status)
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
