//! `chime bench`: measures what a user feels, on the real path. It starts Chime on a fresh
//! data directory, creates reminders over authenticated HTTP, and measures, for every
//! occurrence, the time from its due instant to its `execute_task` (fire lateness) and to its
//! in-app notification being committed (delivery lateness).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chime_core::event::{Event, Topic};
use chime_core::UserId;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};

use crate::config::Config;

pub mod load;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Reminders to schedule (one-time, due evenly over the window).
    #[arg(long, default_value_t = 5000)]
    pub reminders: usize,
    /// The window, in seconds, over which they fall due.
    #[arg(long, default_value_t = 5.0)]
    pub over: f64,
    /// Seconds from the start of creation to the first due instant.
    #[arg(long, default_value_t = 5.0)]
    pub lead: f64,
    /// Concurrent HTTP clients creating reminders.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Many SSE inbox clients and writers at once against a `chime serve` process: errors,
    /// notifications received by every client, the server's peak RSS and the latency from
    /// due instant to client.
    Load(load::LoadArgs),
}

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    pub reminders: usize,
    pub window_secs: f64,
    pub create_rate: f64,
    /// Due instant to `execute_task`, one per occurrence, sorted.
    pub fire_lateness: Vec<SignedDuration>,
    /// Due instant to the in-app delivery's commit, one per occurrence, sorted.
    pub delivery_lateness: Vec<SignedDuration>,
    /// The last due instant to the last delivery.
    pub drain: SignedDuration,
}

impl Report {
    pub fn print(&self) {
        println!("| reminders | window | create rate (HTTP) | fire lateness p50 / p99 / max | delivery lateness p50 / p99 / max | last due to last delivery |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| {} | {:.1} s | {:.0}/s | {} | {} | {} |",
            self.reminders,
            self.window_secs,
            self.create_rate,
            summary(&self.fire_lateness),
            summary(&self.delivery_lateness),
            ms(self.drain),
        );
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(BenchCommand::Load(load)) = args.command {
        return load::run(load).await;
    }
    measure(args).await?.print();
    Ok(())
}

pub async fn measure(args: BenchArgs) -> anyhow::Result<Report> {
    if args.reminders == 0 || args.over <= 0.0 || args.lead <= 0.0 {
        bail!("--reminders, --over and --lead must be positive");
    }
    let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        // It measures the scheduler, not the abuse limits: one user creates every reminder.
        limits: crate::limits::LimitsConfig {
            writes_per_second: 1e9,
            write_burst: u32::MAX,
            tasks_per_user: usize::MAX,
            concurrent_requests: args.concurrency.max(512),
            ..crate::limits::LimitsConfig::default()
        },
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let running = crate::start(&config, listener).await?;
    let mut fired = running
        .bus
        .subscribe("bench", &[Topic::ExecuteTask.name()])
        .await?;
    let n = args.reminders;
    let mut delivered = running.feed.subscribe();
    // Collected while firing goes on, so that the in-process feed never lags.
    let deliveries = tokio::spawn(async move {
        let mut lateness = Vec::new();
        let mut last = Timestamp::UNIX_EPOCH;
        while lateness.len() < n {
            let Ok(item) = delivered.recv().await else {
                break;
            };
            lateness.push(item.due_at.duration_until(item.created_at));
            last = last.max(item.created_at);
        }
        (lateness, last)
    });

    let token = running
        .issuer
        .sign(&UserId::parse("bench")?, Duration::from_secs(3600))?;
    let url = format!("http://{}/api/v1/tasks", running.addr);
    let client = reqwest::Client::new();
    let first_due = Timestamp::now() + SignedDuration::try_from_secs_f64(args.lead)?;
    let step = SignedDuration::try_from_secs_f64(args.over / n as f64)?;
    let due_at = |i: usize| first_due + step * i as i32;

    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                let body = serde_json::json!({
                    "name": format!("bench {i}"),
                    "startDate": due_at(i).to_string(),
                });
                let response = client
                    .post(&url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("create failed: {}", response.text().await?);
                }
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let create_secs = started.elapsed().as_secs_f64();
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    if Timestamp::now() > first_due {
        bail!("creating took {create_secs:.1} s, past the first due instant: raise --lead");
    }

    let deadline =
        tokio::time::Instant::now() + Duration::from_secs_f64(args.lead + args.over + 60.0);
    let mut fire_lateness = Vec::with_capacity(n);
    while fire_lateness.len() < n {
        let records = tokio::time::timeout_at(deadline, fired.poll(1024))
            .await
            .context("timed out waiting for execute_task")??;
        for record in records {
            if let Ok(Event::ExecuteTask(e)) = Event::from_bytes(&record.payload) {
                fire_lateness.push(e.occurrence.due_at.duration_until(e.fired_at));
            }
        }
    }
    let (mut delivery_lateness, last_delivery) = tokio::time::timeout_at(deadline, deliveries)
        .await
        .context("timed out waiting for deliveries")??;
    running.stop().await?;
    if delivery_lateness.len() != n {
        bail!(
            "expected {n} in-app deliveries, saw {} (the feed lagged)",
            delivery_lateness.len()
        );
    }

    fire_lateness.sort();
    delivery_lateness.sort();
    Ok(Report {
        reminders: n,
        window_secs: args.over,
        create_rate: n as f64 / create_secs,
        fire_lateness,
        delivery_lateness,
        drain: due_at(n - 1).duration_until(last_delivery),
    })
}

/// p50 / p99 / max of sorted samples.
fn summary(samples: &[SignedDuration]) -> String {
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
