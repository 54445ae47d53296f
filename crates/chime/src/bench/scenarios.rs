//! The harness's scenarios (`burst`, `steady`, `create`, `recurring`, `retention`): each
//! schedules its reminders, moves the server's clock to just before the first due instant and
//! waits for every delivery, then reads its figures back as one [`Report`].

use std::time::{Duration, Instant};

use anyhow::bail;
use chime_roles::Clock as _;
use futures::StreamExt;
use jiff::SignedDuration;
use serde_json::json;

use super::harness::Harness;
use super::{positive, Report};

pub(super) async fn burst(h: &mut Harness, n: usize) -> anyhow::Result<Report> {
    positive("--reminders", n)?;
    let due = h.clock.now() + SignedDuration::from_hours(1);
    let before = h.store.used_bytes().await?;
    let rate = h
        .create_over_http(
            n,
            |_| json!({"name": "burst", "startDate": due.to_string()}),
        )
        .await?;
    h.await_scheduled(n).await?;
    let disk = (h.store.used_bytes().await? - before) as f64 / n as f64;
    h.jump_to(due - SignedDuration::from_secs(2))?;
    let last = h.await_delivered(n as u64).await?;
    Ok(Report {
        scenario: "burst".into(),
        reminders: n,
        pending: 0,
        schedule_rate: rate,
        drain: Some(due.duration_until(last)),
        lateness: h.store.lateness().await?,
        peak_rss_bytes: h.peak_rss(),
        disk_per_pending: Some(disk),
        instants: Vec::new(),
    })
}

pub(super) async fn steady(
    h: &mut Harness,
    n: usize,
    over: f64,
    pending: usize,
) -> anyhow::Result<Report> {
    positive("--reminders", n)?;
    if over <= 0.0 {
        bail!("--over must be positive");
    }
    let before = h.store.used_bytes().await?;
    // Far in the future, spread over a year: never due during the run.
    let far = h.clock.now() + SignedDuration::from_hours(24 * 30);
    h.seed(pending, |i| {
        json!({"name": "pending", "startDate": (far + SignedDuration::from_secs(i as i64 % 31_536_000)).to_string()})
    })
    .await?;
    h.await_scheduled(pending).await?;
    let disk = if pending > 0 {
        Some((h.store.used_bytes().await? - before) as f64 / pending as f64)
    } else {
        None
    };

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
    h.jump_to(first - SignedDuration::from_secs(2))?;
    let last = h.await_delivered(n as u64).await?;
    Ok(Report {
        scenario: format!("steady over {over} s"),
        reminders: n,
        pending,
        schedule_rate: rate,
        drain: Some(due_at(n - 1).duration_until(last)),
        lateness: h.store.lateness().await?,
        peak_rss_bytes: h.peak_rss(),
        disk_per_pending: disk,
        instants: Vec::new(),
    })
}

pub(super) async fn create(h: &Harness, seconds: f64) -> anyhow::Result<Report> {
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
                h.post_task(i, &body).await?;
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
        peak_rss_bytes: h.peak_rss(),
        disk_per_pending: None,
        instants: Vec::new(),
    })
}

pub(super) async fn recurring(
    h: &mut Harness,
    tasks: usize,
    rounds: usize,
    over: f64,
) -> anyhow::Result<Report> {
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
        h.jump_to(start - SignedDuration::from_secs(2))?;
        last = h.await_delivered((tasks * (round + 1)) as u64).await?;
    }
    let last_due = first + day * (rounds as i32 - 1) + step * (tasks as i32 - 1);
    Ok(Report {
        scenario: format!("recurring × {rounds} rounds over {over} s"),
        reminders: tasks * rounds,
        pending: 0,
        schedule_rate: rate,
        drain: Some(last_due.duration_until(last)),
        lateness: h.store.lateness().await?,
        peak_rss_bytes: h.peak_rss(),
        disk_per_pending: None,
        instants: Vec::new(),
    })
}

/// `n` reminders fire (the past), a year passes, and a retention run deletes that past while a
/// burst of `n / 10` (at least 100) falls due: prints what the run deleted, how long it took and
/// the store's size before and after; the report is the burst's, so its lateness says what
/// retention costs scheduling.
pub(super) async fn retention(h: &mut Harness, n: usize) -> anyhow::Result<Report> {
    use chime_store::PastKind;
    positive("--reminders", n)?;
    h.embedded("the retention scenario")?;
    let past = burst(h, n).await?;
    eprintln!(
        "{n} reminders fired (their last delivery {} after due); a year passes",
        past.drain.map_or("–".into(), super::ms)
    );
    let year_later = h.clock.now() + SignedDuration::from_hours(24 * 366);
    h.jump_to(year_later)?;
    let m = (n / 10).max(100);
    let due = h.clock.now() + SignedDuration::from_hours(1);
    let rate = h
        .create_over_http(
            m,
            |_| json!({"name": "during retention", "startDate": due.to_string()}),
        )
        .await?;
    h.await_scheduled(m).await?;
    let before = h.store.used_bytes().await?;

    let config = crate::retention::RetentionConfig::default();
    let running = h.embedded("the retention scenario")?;
    let ctx = chime_roles::Context {
        clock: h.clock.clone(),
        metrics: running.metrics.clone(),
        shutdown: tokio_util::sync::CancellationToken::new(),
        store_check: Default::default(),
    };
    let store = running.retention.clone();
    let now = h.clock.now();
    // The clock is moved to 2 s before the burst (as every scenario does, so the timer's
    // wake-up is exact); the run starts 0.3 s before the burst, so the two overlap.
    let start_at = tokio::time::Instant::now() + Duration::from_millis(1_700);
    let run = tokio::spawn(async move {
        tokio::time::sleep_until(start_at).await;
        let started = Instant::now();
        let report = crate::retention::run_once(&*store, &config, now, &ctx).await;
        (report, started.elapsed())
    });
    h.jump_to(due - SignedDuration::from_secs(2))?;
    let last = h.await_delivered((n + m) as u64).await?;
    let (report, took) = run.await?;
    let report = report?;
    let after = h.store.used_bytes().await?;
    let deleted = report.total();
    println!(
        "retention: deleted {deleted} rows ({} finished tasks, {} history entries and {} of \
         their delivery states, {} occurrence states, {} deliveries) in {:.2} s ({:.0} rows/s, windows of {} rows {} ms apart); store \
         {:.1} MiB used before, {:.1} MiB after",
        report.of(PastKind::FinishedTasks),
        report.of(PastKind::History),
        report.of(PastKind::HistoryDeliveries),
        report.of(PastKind::Occurrences),
        report.of(PastKind::Deliveries),
        took.as_secs_f64(),
        deleted as f64 / took.as_secs_f64(),
        crate::retention::RetentionConfig::default().batch,
        crate::retention::RetentionConfig::default().pause_ms,
        before as f64 / (1024.0 * 1024.0),
        after as f64 / (1024.0 * 1024.0),
    );
    if report.of(PastKind::FinishedTasks) != n as u64 {
        bail!(
            "retention deleted {} of the {n} finished tasks",
            report.of(PastKind::FinishedTasks)
        );
    }
    Ok(Report {
        scenario: format!("burst during retention of {n}"),
        reminders: m,
        pending: 0,
        schedule_rate: rate,
        drain: Some(due.duration_until(last)),
        lateness: h.store.lateness_from(due).await?,
        peak_rss_bytes: h.peak_rss(),
        disk_per_pending: None,
        instants: Vec::new(),
    })
}
