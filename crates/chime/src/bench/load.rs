//! `chime bench load`: many in-app inbox clients (Server-Sent Events) and many writers at once,
//! against a real `chime serve` process on loopback.
//!
//! The server runs as a child process (this same binary) so that its peak resident memory
//! (`VmHWM`) is its own, not the load generator's. Clients are spread evenly over `--users`
//! users and each listens to its user's stream; writers create one-time reminders for those
//! users, due `--due-in` seconds later, until `--seconds` have passed. Then it waits until
//! every client has every notification of its user, or gives up after a grace period, and
//! reports what it saw: reminders created, notifications expected and received across
//! clients, every error (a failed request, a stream that ended or lagged, a notification
//! seen twice or for another user), the server's peak RSS and the latency from each
//! occurrence's due instant to its arrival at each client.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use chime_core::UserId;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Concurrent SSE inbox clients (`GET /api/v1/notifications/stream`); 0 measures creates
    /// alone (with `--due-in` far enough that nothing falls due during the run).
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Concurrent writers creating reminders.
    #[arg(long, default_value_t = 200)]
    pub writers: usize,
    /// How long the writers write.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Users the clients and reminders are spread over.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Each writer's pause between two creates, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub write_interval_ms: u64,
    /// Seconds from a reminder's creation to its due instant.
    #[arg(long, default_value_t = 1.5)]
    pub due_in: f64,
}

/// What one run saw.
#[derive(Debug)]
pub struct LoadReport {
    pub clients: usize,
    pub writers: usize,
    pub users: usize,
    pub seconds: f64,
    /// Reminders created (each one notification to every client of its user).
    pub created: usize,
    /// Notifications the clients should have received, summed over clients.
    pub expected: usize,
    /// Notifications the clients did receive (each counted once per client).
    pub received: usize,
    /// Every error, in words.
    pub errors: Vec<String>,
    /// Each successful create's request time, sorted.
    pub create_latency: Vec<SignedDuration>,
    /// The server process's peak resident memory (`VmHWM`), when the OS tells it.
    pub peak_rss_bytes: Option<u64>,
    /// Due instant to arrival at a client, one per received notification, sorted.
    pub latency: Vec<SignedDuration>,
}

impl LoadReport {
    pub fn print(&self) {
        println!(
            "| clients | writers | users | seconds | reminders created | creates/s | create p50 / p99 / max | notifications expected / received | errors | server peak RSS | due to client p50 / p99 / max |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        let latency = if self.latency.is_empty() {
            "-".to_owned()
        } else {
            super::summary(&self.latency)
        };
        let create_latency = if self.create_latency.is_empty() {
            "-".to_owned()
        } else {
            super::summary(&self.create_latency)
        };
        println!(
            "| {} | {} | {} | {:.0} s | {} | {:.0} | {} | {} / {} | {} | {} | {} |",
            self.clients,
            self.writers,
            self.users,
            self.seconds,
            self.created,
            self.created as f64 / self.seconds,
            create_latency,
            self.expected,
            self.received,
            self.errors.len(),
            self.peak_rss_bytes
                .map_or("-".to_owned(), |b| format!("{} MiB", b / (1024 * 1024))),
            latency,
        );
        for error in self.errors.iter().take(20) {
            println!("error: {error}");
        }
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this binary to run the server")?;
    let report = measure(&args, &exe).await?;
    report.print();
    if !report.errors.is_empty() || report.received != report.expected {
        bail!(
            "{} errors, {} of {} notifications received",
            report.errors.len(),
            report.received,
            report.expected
        );
    }
    Ok(())
}

/// One client's view: notification (task id) to arrival latency, and its errors.
struct ClientResult {
    user: usize,
    seen: HashMap<String, SignedDuration>,
    errors: Vec<String>,
}

/// Runs the load against `chime serve` started from `exe` (this binary, or in tests the
/// built one).
pub async fn measure(args: &LoadArgs, exe: &Path) -> anyhow::Result<LoadReport> {
    if args.writers == 0 || args.users == 0 || args.seconds <= 0.0 {
        bail!("--writers, --users and --seconds must be positive");
    }
    // Each client and writer holds a connection here and in the server (a child inherits the
    // limit), plus the store's files and some slack.
    raise_open_files((args.clients + args.writers) as u64 + 256);
    let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let mut server = tokio::process::Command::new(exe)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &addr.to_string()])
        // It measures fan-out, not the abuse limits.
        .env("CHIME_LIMITS__WRITES_PER_SECOND", "1000000")
        .env("CHIME_LIMITS__WRITE_BURST", "1000000")
        .env("CHIME_LIMITS__TASKS_PER_USER", "100000000")
        .env(
            "CHIME_LIMITS__EVENT_STREAMS",
            (args.clients + 16).to_string(),
        )
        .env(
            "CHIME_LIMITS__CONCURRENT_REQUESTS",
            (args.writers * 2).max(512).to_string(),
        )
        .env("CHIME_LOG", "warn")
        .env_remove("CHIME_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} serve", exe.display()))?;
    let pid = server.id().context("the server exited at once")?;
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.writers)
        .build()?;
    let ready = async {
        loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = ready => {}
        status = server.wait() => bail!(
            "the server exited ({status:?}): {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        ),
        () = tokio::time::sleep(Duration::from_secs(60)) => bail!("the server never became ready"),
    }

    let config = Config::default();
    let issuer = chime_http::LocalIssuer::load_or_create(
        &dir.path().join("data"),
        &config.auth.local_issuer_url(addr, false),
        &config.auth.audience,
    )
    .context("cannot load the server's local issuer")?;
    let tokens: Vec<String> = (0..args.users)
        .map(|u| {
            let user = UserId::parse(&format!("load-{u}"))?;
            Ok(issuer.sign(&user, Duration::from_secs(3600))?)
        })
        .collect::<anyhow::Result<_>>()?;

    // Clients connect first; the writers start once every stream is open (subscribed).
    let stop = CancellationToken::new();
    let arrivals = Arc::new(AtomicUsize::new(0));
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<Result<(), String>>(64);
    let mut clients = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let user = i % args.users;
        let (client, url, token) = (
            client.clone(),
            format!("{base}/api/v1/notifications/stream"),
            tokens[user].clone(),
        );
        let (stop, opened, arrivals) = (stop.clone(), opened_tx.clone(), arrivals.clone());
        clients.push(tokio::spawn(async move {
            listen(client, url, token, user, stop, opened, arrivals).await
        }));
    }
    drop(opened_tx);
    let mut open_errors = Vec::new();
    for _ in 0..args.clients {
        match opened_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => open_errors.push(e),
            None => break,
        }
    }

    let created: Arc<Mutex<Vec<(usize, String, SignedDuration)>>> = Arc::default();
    let write_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let until = tokio::time::Instant::now() + Duration::from_secs_f64(args.seconds);
    let due_in = SignedDuration::try_from_secs_f64(args.due_in)?;
    let writers: Vec<_> = (0..args.writers)
        .map(|w| {
            let (client, url, tokens) = (
                client.clone(),
                format!("{base}/api/v1/tasks"),
                tokens.clone(),
            );
            let (created, errors) = (created.clone(), write_errors.clone());
            let (users, writers, interval) = (args.users, args.writers, args.write_interval_ms);
            tokio::spawn(async move {
                let mut k = 0usize;
                while tokio::time::Instant::now() < until {
                    let user = (w + k * writers) % users;
                    k += 1;
                    let due = Timestamp::now() + due_in;
                    let due = Timestamp::from_millisecond(due.as_millisecond()).unwrap_or(due);
                    let body = serde_json::json!({
                        "name": format!("load {w}.{k}"),
                        "startDate": due.to_string(),
                    });
                    let sent = tokio::time::Instant::now();
                    match create(&client, &url, &tokens[user], &body).await {
                        Ok(id) => {
                            let took = SignedDuration::try_from(sent.elapsed())
                                .unwrap_or(SignedDuration::MAX);
                            created.lock().expect("lock").push((user, id, took));
                        }
                        Err(e) => errors
                            .lock()
                            .expect("lock")
                            .push(format!("writer {w}: {e:#}")),
                    }
                    if interval > 0 {
                        tokio::time::sleep(Duration::from_millis(interval)).await;
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.context("a writer panicked")?;
    }

    let created = std::mem::take(&mut *created.lock().expect("lock"));
    let mut create_latency: Vec<SignedDuration> = created.iter().map(|c| c.2).collect();
    create_latency.sort();
    let mut expected_by_user: HashMap<usize, HashSet<String>> = HashMap::new();
    for (user, id, _) in &created {
        expected_by_user
            .entry(*user)
            .or_default()
            .insert(id.clone());
    }
    let clients_per_user = |u: usize| (0..args.clients).filter(|i| i % args.users == u).count();
    let expected: usize = expected_by_user
        .iter()
        .map(|(u, ids)| ids.len() * clients_per_user(*u))
        .sum();
    // Every reminder falls due within `due_in` of the last create; wait until every client
    // has every notification of its user, or the grace period is over.
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs_f64(args.due_in)
        + Duration::from_secs(30);
    while arrivals.load(Ordering::Relaxed) < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peak_rss_bytes = peak_rss(pid);
    stop.cancel();
    let mut results = Vec::with_capacity(args.clients);
    for client in clients {
        results.push(client.await.context("a client panicked")?);
    }
    let _ = server.start_kill();
    let _ = server.wait().await;

    let mut errors = open_errors;
    errors.extend(std::mem::take(&mut *write_errors.lock().expect("lock")));
    let mut received = 0;
    let mut latency = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        errors.extend(result.errors);
        let want = expected_by_user.get(&result.user);
        for (id, late) in result.seen {
            if want.is_some_and(|w| w.contains(&id)) {
                received += 1;
                latency.push(late);
            } else {
                errors.push(format!(
                    "client {i} got a notification of task {id}, not one of its user's"
                ));
            }
        }
    }
    latency.sort();
    Ok(LoadReport {
        clients: args.clients,
        writers: args.writers,
        users: args.users,
        seconds: args.seconds,
        created: created.len(),
        expected,
        received,
        errors,
        create_latency,
        peak_rss_bytes,
        latency,
    })
}

async fn create(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> anyhow::Result<String> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let status = response.status();
    if status != reqwest::StatusCode::CREATED {
        bail!("create answered {status}: {}", response.text().await?);
    }
    let task: serde_json::Value = response.json().await?;
    task["id"]
        .as_str()
        .map(str::to_owned)
        .context("a created task has no id")
}

/// One SSE client: opens the stream, says so on `opened`, and records every notification
/// until `stop`.
async fn listen(
    client: reqwest::Client,
    url: String,
    token: String,
    user: usize,
    stop: CancellationToken,
    opened: tokio::sync::mpsc::Sender<Result<(), String>>,
    arrivals: Arc<AtomicUsize>,
) -> ClientResult {
    let mut result = ClientResult {
        user,
        seen: HashMap::new(),
        errors: Vec::new(),
    };
    let response = match client.get(&url).bearer_auth(&token).send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            let _ = opened
                .send(Err(format!("stream answered {}", r.status())))
                .await;
            return result;
        }
        Err(e) => {
            let _ = opened.send(Err(format!("stream failed: {e}"))).await;
            return result;
        }
    };
    let _ = opened.send(Ok(())).await;
    drop(opened);
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    loop {
        let chunk = tokio::select! {
            () = stop.cancelled() => break,
            chunk = body.next() => chunk,
        };
        let chunk = match chunk {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                result
                    .errors
                    .push(format!("stream of user {user} failed: {e}"));
                break;
            }
            None => {
                result.errors.push(format!("stream of user {user} ended"));
                break;
            }
        };
        let now = Timestamp::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = if v.trim() == "notification" {
                        "notification"
                    } else if v.trim() == "lagged" {
                        "lagged"
                    } else {
                        "other"
                    };
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            match event {
                "notification" => {
                    let parsed: Option<(String, Timestamp)> =
                        serde_json::from_str::<serde_json::Value>(&data)
                            .ok()
                            .and_then(|v| {
                                Some((
                                    v["taskId"].as_str()?.to_owned(),
                                    v["dueAt"].as_str()?.parse().ok()?,
                                ))
                            });
                    match parsed {
                        Some((task, due)) => {
                            if result
                                .seen
                                .insert(task.clone(), due.duration_until(now))
                                .is_some()
                            {
                                result.errors.push(format!("task {task} notified twice"));
                            } else {
                                arrivals.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        None => result
                            .errors
                            .push(format!("unreadable notification: {data}")),
                    }
                }
                "lagged" => result.errors.push(format!("stream lagged: {data}")),
                _ => {}
            }
        }
    }
    result
}

/// Peak resident memory of `pid` (`VmHWM`), on Linux.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Raises this process's soft limit of open files to `want` (at most the hard limit): each
/// client is a socket, and the server child inherits the limit.
fn raise_open_files(want: u64) {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        let current = limit.current.unwrap_or(u64::MAX);
        if current >= want {
            return;
        }
        let target = limit.maximum.map_or(want, |max| want.min(max));
        if let Err(e) = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            },
        ) {
            eprintln!("cannot raise the open-file limit from {current} to {target}: {e}");
        }
    }
    #[cfg(not(unix))]
    let _ = want;
}
