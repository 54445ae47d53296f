//! The distributed shape on loopback, end to end, with the real binary: a fresh PostgreSQL
//! database, a tansu broker (Kafka protocol), `chime migrate`, two instances each of
//! definition, execution, notification and web (the BFF calling the task API over HTTP, as
//! `deploy/k8s` configures it; sessions in the shared store), one tick, and nginx in front (rendered by
//! `deploy/nginx/render`, TLS with a certificate made here). Through the gateway, with tokens
//! of the shared local issuer: reminders (a third of them daily) due over a window; during it,
//! one execution and one notification instance are SIGKILLed and replacements started, as
//! Kubernetes would. At the end, counted at a webhook receiver: every occurrence delivered,
//! under one `webhook-id`; lateness p50, p99 and max printed. The live inbox stream of one user,
//! held open through the gateway on a definition instance, must see each of that user's in-app
//! notifications, which a notification instance in another process wrote. A browser signed
//! in through the gateway sees its user's task on both web instances, and another user does
//! not.
//!
//! Webhook delivery is at-least-once with a stable `webhook-id` (as in the crash loop): a
//! notification instance killed between its POST and recording it leaves the delivery to be
//! attempted again when its lease (the webhook timeout, 10 s, plus 10 s) expires. So "none twice" is one `webhook-id` per
//! occurrence, what a receiver deduplicating by id sees; raw repeated POSTs are printed.
//!
//! Needs PostgreSQL (`CHIME_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, a user that may create databases, and `psql`),
//! tansu 0.6.0 (`CHIME_TANSU` or on the PATH or in ~/.cargo/bin) and nginx (`CHIME_NGINX`,
//! default `nginx` on the PATH or /usr/sbin/nginx). A missing one fails the test saying how to
//! install it.
//!
//! Sized by environment variables; the defaults are the run, which the test command
//! runs: `CHIME_CLUSTER_REMINDERS` (10000), `CHIME_CLUSTER_WINDOW_SECONDS` (20: due instants
//! spread over it), `CHIME_CLUSTER_LEAD_SECONDS` (5 + reminders/100: time allowed for creating
//! them; debug builds on a loaded machine created 10,000 in 51 s),
//! `CHIME_CLUSTER_SETTLE_SECONDS` (120: how long after the window delivery may take),
//! `CHIME_CLUSTER_KILLS` (1; 0 runs without kills, for figures of the undisturbed cluster),
//! `CHIME_CLUSTER_KILL_AT` (0.4: when in the window the kills come, as a fraction of it),
//! `CHIME_CLUSTER_REPLACE_AFTER_SECONDS` (7: how long after the kills their replacements start;
//! see the kills below for why not at once, as a kubelet would),
//! `CHIME_CLUSTER_BOOTSTRAP` (`host:port[,…]`: run against that Kafka-protocol broker instead
//! of a tansu of the test's own; topics and groups get a prefix of this run's, so earlier
//! runs' events never replay),
//! `CHIME_CLUSTER_KEEP` (keep the logs, and with `CHIME_CLUSTER_KEEP_DATABASE` the database,
//! also when the test passes; without it, both are kept only when it fails),
//! `CHIME_CLUSTER_BIN` (the `chime` binary to run, default the one cargo built for the test:
//! point it at `target/release/chime` for release figures). A window of 0 is a burst: every
//! reminder due at one instant. `CHIME_CLUSTER_STORE=mongodb` runs the same cluster on MongoDB
//! instead of PostgreSQL: a SecantusDB server of its own (a MongoDB-wire-protocol server,
//! `chime_testenv::secantusdb`), migrated by `chime migrate`; SecantusDB is slow, so run it
//! small and without the fence race, which it is too slow to let race
//! (`CHIME_CLUSTER_REMINDERS=300 CHIME_CLUSTER_FENCE_REMINDERS=0`); the per-stage figures
//! (read with SQL) are left out. Its lateness says nothing about MongoDB's.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{
    eventually, free_port, param, token_with, webhook_hits, Browser, ChimeProcess, Occurrence,
    Receiver, Reply, Serve, StatusCode, TestClient,
};

#[path = "../../../chime-bus/tests/tansu/mod.rs"]
mod tansu;

/// Tasks per user, under the per-user cap (raised anyway below).
const PER_USER: usize = 5_000;
/// Creates in flight at once, through the gateway.
const CREATE_CONCURRENCY: usize = 32;
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of its own on the PostgreSQL server, dropped (with its connections) on drop.
struct Database {
    admin_url: String,
    name: String,
}

impl Database {
    fn create() -> Self {
        let admin_url =
            std::env::var("CHIME_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("chime_cluster_{}_{nanos}", std::process::id());
        let db = Self { admin_url, name };
        db.psql(&format!("CREATE DATABASE \"{}\"", db.name));
        db
    }

    /// The database's URL: the admin URL with its database replaced.
    fn url(&self) -> String {
        let base = match self.admin_url.rsplit_once('/') {
            Some((base, _)) if base.contains("://") && base != "postgres:" => base.to_owned(),
            _ => self.admin_url.clone(),
        };
        format!("{base}/{}", self.name)
    }

    fn psql(&self, sql: &str) {
        self.psql_on(&self.admin_url, sql);
    }

    /// What a query on the test's database prints (`psql -At`).
    fn query(&self, sql: &str) -> String {
        self.psql_on(&self.url(), sql)
    }

    fn psql_on(&self, url: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run psql ({e}): the cluster test needs PostgreSQL and its client \
                     (`apt-get install postgresql postgresql-client`), reachable at \
                     CHIME_TEST_POSTGRES_URL (default {DEFAULT_POSTGRES}, trust auth)"
                )
            });
        assert!(
            out.status.success(),
            "PostgreSQL refused `{sql}` (is it running at CHIME_TEST_POSTGRES_URL, default \
             {DEFAULT_POSTGRES}, with a user that may create databases?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let keep = std::env::var_os("CHIME_CLUSTER_KEEP_DATABASE").is_some();
        if keep && (std::thread::panicking() || std::env::var_os("CHIME_CLUSTER_KEEP").is_some()) {
            eprintln!("cluster: database {} kept", self.name);
            return;
        }
        let _ = Command::new("psql")
            .args([
                &self.admin_url,
                "-qAtc",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// The store the cluster shares: a PostgreSQL database of its own, or (with
/// `CHIME_CLUSTER_STORE=mongodb`) a SecantusDB server of its own.
enum Store {
    Postgres(Database),
    Mongo(chime_testenv::secantusdb::SecantusDb),
}

impl Store {
    fn create(dir: &Path) -> Self {
        match std::env::var("CHIME_CLUSTER_STORE").as_deref() {
            Ok("mongodb") => Store::Mongo(chime_testenv::secantusdb::SecantusDb::start(
                &dir.join("secantusdb"),
            )),
            Ok("postgres") | Err(_) => Store::Postgres(Database::create()),
            Ok(other) => panic!("CHIME_CLUSTER_STORE is `postgres` or `mongodb`, not `{other}`"),
        }
    }

    fn url(&self) -> String {
        match self {
            Store::Postgres(db) => db.url(),
            Store::Mongo(server) => server.url("chime"),
        }
    }
}

/// The test's directory (instances' data directories and logs, the gateway's prefix): removed
/// when the test passes, kept and named when it fails, for the logs.
struct KeptOnFailure(Option<tempfile::TempDir>);

impl KeptOnFailure {
    fn path(&self) -> &Path {
        self.0.as_ref().expect("present until dropped").path()
    }
}

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("CHIME_CLUSTER_KEEP").is_some() {
            if let Some(dir) = self.0.take() {
                eprintln!("cluster: logs kept in {}", dir.keep().display());
            }
        }
    }
}

/// A child process killed (and reaped) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What every instance shares: the backends, the keys, the gateway's public URL.
struct Cluster {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    started: usize,
}

/// One running `chime serve --roles …`.
struct Instance {
    name: String,
    process: ChimeProcess,
}

impl Cluster {
    /// `CHIME_CLUSTER_BIN`, else the binary cargo built for the test.
    fn binary() -> PathBuf {
        std::env::var_os("CHIME_CLUSTER_BIN")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_chime")), PathBuf::from)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(Cluster::binary());
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Starts an instance of `roles` on a fresh port and data directory (a new pod).
    fn spawn(&mut self, roles: &str) -> Instance {
        self.spawn_with(roles, &[])
    }

    /// [`Cluster::spawn`] with settings of its own on top of the shared ones.
    fn spawn_with(&mut self, roles: &str, env: &[(&str, String)]) -> Instance {
        self.started += 1;
        let name = format!("{}-{}", roles.replace(',', "+"), self.started);
        let process = Serve::new(self.dir.join(&name))
            .binary(Cluster::binary())
            .args(["--roles", roles])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .log_to(self.dir.join(format!("{name}.log")))
            .spawn();
        Instance { name, process }
    }

    fn token(&self, user: &str) -> String {
        token_with(self.command(), &self.dir.join("token"), None, user)
    }
}

/// A fresh encryption key for `CHIME_ENCRYPTION__KEYS`, shared by every instance of a run.
fn encryption_key() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    format!(
        "k1:{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CHIME_NGINX") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the cluster test needs nginx for its gateway and it is not installed: \
                 `apt-get install nginx` (deploy/check does), or set CHIME_NGINX to its path"
            )
        })
}

/// Renders the gateway with `deploy/nginx/render` and starts nginx in the foreground.
fn gateway(dir: &Path, port: u16, definitions: &[u16], webs: &[u16]) -> (Process, String) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let (cert, key) = (dir.join("gateway.crt"), dir.join("gateway.key"));
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    let prefix = dir.join("gateway");
    let render = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/render");
    let mut command = Command::new(&render);
    command
        .arg("--out")
        .arg(&prefix)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["--exempt", "127.0.0.0/8"]);
    for p in definitions {
        command.args(["--definition", &format!("127.0.0.1:{p}")]);
    }
    for p in webs {
        command.args(["--web", &format!("127.0.0.1:{p}")]);
    }
    let out = command.output().expect("deploy/nginx/render");
    assert!(
        out.status.success(),
        "render: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = prefix.join("nginx.conf");
    let log = std::fs::File::create(dir.join("nginx.log")).expect("log");
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        // One process: killing it on drop leaves no orphaned worker behind.
        .args(["-e", "stderr", "-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start nginx");
    (Process(child), generated.cert.pem())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_delivers_every_occurrence_once_while_an_execution_and_a_notification_instance_are_killed(
) {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let reminders: usize = param("CHIME_CLUSTER_REMINDERS", 10_000);
    let window: f64 = param("CHIME_CLUSTER_WINDOW_SECONDS", 20.0);
    // The lead (creates -> first due) is measured, not guessed: see `calibrate_lead`.
    let lead_override: Option<f64> = std::env::var("CHIME_CLUSTER_LEAD_SECONDS").ok().map(|v| {
        v.parse()
            .expect("CHIME_CLUSTER_LEAD_SECONDS is a number of seconds")
    });
    let settle: f64 = param("CHIME_CLUSTER_SETTLE_SECONDS", 120.0);
    let kills: u8 = param("CHIME_CLUSTER_KILLS", 1);
    let started = Instant::now();

    // The backends: a database of our own (migrated by `chime migrate`) and a broker.
    // Before anything starts: a missing gateway fails at once, saying how to install it.
    nginx_binary();
    let dir = KeptOnFailure(Some(tempfile::tempdir().expect("tempdir")));
    let db = Store::create(dir.path());
    // A broker given by address, or one of the test's own.
    let (broker, bootstrap) = match std::env::var("CHIME_CLUSTER_BOOTSTRAP") {
        Ok(bootstrap) => (None, bootstrap),
        Err(_) => {
            let broker = tansu::Tansu::start().await;
            let bootstrap = broker.options().bootstrap_servers;
            (Some(broker), bootstrap)
        }
    };
    let prefix = format!(
        "chime-cluster-{}-{}-",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    );
    let gateway_port = free_port();
    let public = format!("https://127.0.0.1:{gateway_port}");
    let key = encryption_key();
    let mut cluster = Cluster {
        dir: dir.path().to_owned(),
        env: vec![
            (
                "CHIME_LOG",
                "info,tower_http=warn,chime_bus=debug,chime_roles::consumer=debug,rdkafka=info"
                    .into(),
            ),
            ("CHIME_STORE__URL", db.url()),
            ("CHIME_STORE__MIGRATE", "false".into()),
            ("CHIME_STORE__POOL_SIZE", "8".into()),
            ("CHIME_BUS__KAFKA_BOOTSTRAP", bootstrap),
            ("CHIME_BUS__PARTITIONS", "6".into()),
            ("CHIME_BUS__REPLICATION_FACTOR", "1".into()),
            ("CHIME_BUS__PREFIX", prefix),
            (
                "CHIME_KEYS_DIR",
                dir.path().join("keys").display().to_string(),
            ),
            ("CHIME_AUTH__PUBLIC_BASE_URL", public.clone()),
            ("CHIME_ENCRYPTION__KEYS", key),
            ("CHIME_CHANNELS__WEBHOOK__ALLOW_PRIVATE", "true".into()),
            ("CHIME_DELIVERY__RETRY_BASE_SECONDS", "0.2".into()),
            ("CHIME_DELIVERY__RETRY_MAX_DELAY_SECONDS", "2".into()),
            ("CHIME_LIMITS__WRITES_PER_SECOND", "1000000".into()),
            ("CHIME_LIMITS__WRITE_BURST", "1000000".into()),
            ("CHIME_LIMITS__TASKS_PER_USER", "1000000".into()),
        ],
        started: 0,
    };
    let migrate = cluster
        .command()
        .args(["migrate", "--store-url", &db.url()])
        .output()
        .expect("chime migrate");
    assert!(
        migrate.status.success(),
        "chime migrate: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    // Tokens first: this creates the shared issuer key every instance then loads.
    let users: Vec<String> = (0..reminders.div_ceil(PER_USER).max(1))
        .map(|i| format!("cluster{i}"))
        .collect();
    let tokens: Vec<String> = users.iter().map(|u| cluster.token(u)).collect();

    let mut instances: Vec<Instance> = ["definition", "definition", "execution", "execution"]
        .into_iter()
        .chain(["notification", "notification", "tick"])
        .map(|roles| cluster.spawn(roles))
        .collect();
    let definitions: Vec<u16> = instances[..2].iter().map(|i| i.process.port).collect();
    // Two web instances: their BFFs call the task API over HTTP (in Kubernetes, the
    // definition Service) and share browser sessions through the store.
    for _ in 0..2 {
        instances.push(cluster.spawn_with(
            "web",
            &[(
                "CHIME_WEB__API_URL",
                format!("http://127.0.0.1:{}", definitions[0]),
            )],
        ));
    }
    for instance in &mut instances {
        instance.process.ready().await;
    }
    let webs: Vec<u16> = instances[instances.len() - 2..]
        .iter()
        .map(|i| i.process.port)
        .collect();
    let (_nginx, cert) = gateway(dir.path(), gateway_port, &definitions, &webs);
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).expect("cert"))
        .build()
        .expect("client");
    let gateway = TestClient::with_http(http, &public);
    eventually("the gateway to answer", || async {
        let r = gateway
            .request(reqwest::Method::GET, "/_gateway/healthz")
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    let hook = Receiver::start(Reply::status(204)).await;
    let clients: Vec<TestClient> = tokens.iter().map(|t| gateway.bearer(t)).collect();
    for client in &clients {
        client.set_webhook(&hook.url("/hook")).await;
    }
    // The live inbox of the first user, on whichever definition instance the gateway picks:
    // never the process that writes the items.
    let mut sse = clients[0].sse("/api/v1/notifications/stream").await;
    let streamed = Arc::new(Mutex::new((0usize, 0usize)));
    let sse_task = {
        let streamed = streamed.clone();
        tokio::spawn(async move {
            loop {
                let event = sse.next_until_closed().await;
                let mut s = streamed.lock().expect("lock");
                match event.as_deref() {
                    Some("notification") => s.0 += 1,
                    Some(_) => s.1 += 1,
                    None => return,
                }
            }
        })
    };

    let (lead, probes) = match lead_override {
        Some(lead) => (lead, HashSet::new()),
        None => calibrate_lead(&clients[0], reminders).await,
    };

    // Due instants spread evenly over the window after the lead; every third task is daily
    // (its first occurrence in the window), every tenth of the first user's also in-app.
    let window_start = jiff::Timestamp::now() + jiff::SignedDuration::from_secs_f64(lead);
    let window_start_instant = Instant::now() + Duration::from_secs_f64(lead);
    let mut in_app_expected = 0;
    let bodies: Vec<(usize, Value)> = (0..reminders)
        .map(|i| {
            let offset = window * i as f64 / reminders as f64;
            let due = window_start + jiff::SignedDuration::from_secs_f64(offset);
            let due = jiff::Timestamp::from_millisecond(due.as_millisecond()).expect("due");
            let user = i % users.len();
            let repeats = if i % 3 == 0 {
                json!({"period": "day"})
            } else {
                Value::Null
            };
            let in_app = user == 0 && i % 10 == 0;
            in_app_expected += usize::from(in_app);
            let body = json!({
                "name": format!("cluster {i}"),
                "startDate": due.to_string(),
                "repeats": repeats,
                "notify": {"inApp": in_app, "webhook": true},
            });
            (user, body)
        })
        .collect();
    let created_by: Vec<(usize, Occurrence)> = futures::stream::iter(bodies)
        .map(|(user, body)| {
            let client = clients[user].clone();
            async move {
                let task = client.create_task(&body).await;
                let id = task["id"].as_str().expect("id").to_owned();
                (
                    user,
                    (
                        id,
                        task["startDate"].as_str().expect("startDate").to_owned(),
                    ),
                )
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let created: Vec<Occurrence> = created_by.iter().map(|(_, o)| o.clone()).collect();
    let created_in = started.elapsed();
    if Instant::now() > window_start_instant {
        eprintln!(
            "cluster: creating took until past the {lead} s lead; the first reminders fell \
             due before the kills"
        );
    }

    // The kills, inside the window, then a replacement of each (a new process: new port, new
    // data directory). The killed members' partitions move to the survivors when the
    // coordinator has heard nothing from them for the session timeout (6 s by default):
    // Kafka's expires them by itself, tansu 0.6.0 on a survivor's heartbeat (every second)
    // after that timeout. The replacements start once that has happened (7 s), not at once as
    // a kubelet would restart a killed container: a join before the timeout makes tansu form
    // the new generation with the dead member in it, holding its partitions, and it never
    // expires it afterwards (seen with the range assignor: one partition's events never
    // delivered). Kafka waits for the dead member's session to run out before it completes
    // such a join, so there the moment does not matter; `CHIME_CLUSTER_REPLACE_AFTER_SECONDS=0`
    // runs it so against a broker given by `CHIME_CLUSTER_BOOTSTRAP`.
    let kill_at_fraction: f64 = param("CHIME_CLUSTER_KILL_AT", 0.4);
    let replace_after: f64 = param("CHIME_CLUSTER_REPLACE_AFTER_SECONDS", 7.0);
    let kill_at = window_start_instant + Duration::from_secs_f64(window * kill_at_fraction);
    let mut killed = Vec::new();
    if kills != 0 {
        tokio::time::sleep_until(kill_at.into()).await;
    }
    for role in ["execution", "notification"]
        .into_iter()
        .filter(|_| kills != 0)
    {
        let index = instances
            .iter()
            .position(|i| i.name.starts_with(role))
            .expect("an instance of the role");
        let mut victim = instances.remove(index);
        victim.process.kill().await;
        killed.push(victim.name.clone());
    }
    let killed_at = jiff::Timestamp::now();
    let expired = Instant::now() + Duration::from_secs_f64(replace_after);
    if kills != 0 {
        tokio::time::sleep_until(expired.into()).await;
    }
    for role in ["execution", "notification"]
        .into_iter()
        .filter(|_| kills != 0)
    {
        let mut replacement = cluster.spawn(role);
        replacement.process.ready().await;
        instances.push(replacement);
    }

    let expected: HashSet<Occurrence> = created.iter().cloned().collect();
    assert_eq!(expected.len(), reminders);
    let mut listed = HashSet::new();
    for client in &clients {
        for task in client.all_pages("/api/v1/tasks", "tasks").await {
            listed.insert(task["id"].as_str().expect("id").to_owned());
        }
    }
    listed.retain(|id| !probes.contains(id));
    let acknowledged: HashSet<String> = created.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        listed, acknowledged,
        "GET /api/v1/tasks differs from the creates"
    );
    web_sessions_see_their_own_tasks(&public, &cert, &webs, &users, &created_by).await;

    // Settle: until every occurrence has arrived (and the stream has seen the in-app ones),
    // or the deadline.
    let deadline = window_start_instant + Duration::from_secs_f64(window + settle);
    loop {
        let distinct_ids = webhook_hits(&hook)
            .into_iter()
            .map(|(id, ..)| id)
            .collect::<HashSet<_>>()
            .len();
        let done = distinct_ids >= reminders && streamed.lock().expect("lock").0 >= in_app_expected;
        if done || Instant::now() > deadline {
            break;
        }
        // Backoff of a poll with a deadline: two counters, one of another task's stream; the
        // deadline ends the wait without failing (what is missing is counted below).
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let total = started.elapsed();
    let (sse_notifications, sse_other) = *streamed.lock().expect("lock");
    sse_task.abort();
    let inbox = clients[0]
        .all_pages("/api/v1/notifications", "notifications")
        .await
        .len();

    // How many occurrences the live notification instances took over from the store
    // (handoffs: what no consumer had recorded from the bus in time).
    let mut handoffs_taken = 0.0;
    for instance in instances
        .iter()
        .filter(|i| i.name.starts_with("notification"))
    {
        let metrics = TestClient::new(instance.process.base.clone())
            .metrics()
            .await;
        handoffs_taken += metrics
            .lines()
            .find_map(|l| l.strip_prefix("chime_handoffs_taken_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    let hits = webhook_hits(&hook);
    let raw_posts = hits.len();
    let mut ids_per_occurrence: HashMap<&Occurrence, HashSet<&str>> = HashMap::new();
    let mut first_arrival: HashMap<&Occurrence, jiff::Timestamp> = HashMap::new();
    let mut posts_per_id: HashMap<&str, usize> = HashMap::new();
    for (id, occurrence, at) in &hits {
        ids_per_occurrence
            .entry(occurrence)
            .or_default()
            .insert(id.as_str());
        *posts_per_id.entry(id.as_str()).or_default() += 1;
        first_arrival
            .entry(occurrence)
            .and_modify(|first| *first = (*first).min(*at))
            .or_insert(*at);
    }
    let distinct_ids = posts_per_id.len();
    let ids_posted_twice = posts_per_id.values().filter(|&&n| n > 1).count();
    let occurrences_with_two_ids = ids_per_occurrence.values().filter(|s| s.len() > 1).count();
    let not_delivered = expected
        .iter()
        .filter(|o| !ids_per_occurrence.contains_key(o))
        .count();
    let unexpected = ids_per_occurrence
        .keys()
        .filter(|o| !expected.contains(*o))
        .count();
    let mut lateness: Vec<f64> = first_arrival
        .iter()
        .filter_map(|((_, due), at)| {
            let due: jiff::Timestamp = due.parse().ok()?;
            Some(at.duration_since(due).as_secs_f64())
        })
        .collect();
    lateness.sort_by(f64::total_cmp);
    // The occurrences due in the 10 s after the kills: those the killed instances held.
    let mut around_kill: Vec<f64> = first_arrival
        .iter()
        .filter_map(|((_, due), at)| {
            let due: jiff::Timestamp = due.parse().ok()?;
            let since_kill = due.duration_since(killed_at).as_secs_f64();
            (kills != 0 && (0.0..10.0).contains(&since_kill))
                .then(|| at.duration_since(due).as_secs_f64())
        })
        .collect();
    around_kill.sort_by(f64::total_cmp);

    eprintln!(
        "cluster: {reminders} reminders ({} users, a third daily) due over {window} s, created \
         through the gateway in {created_in:?}; SIGKILLed {killed:?} and started replacements; \
         total {total:?}\n  webhook: {raw_posts} raw POSTs, {distinct_ids} distinct \
         webhook-ids, {ids_posted_twice} ids POSTed more than once, {occurrences_with_two_ids} \
         occurrences with two ids, {not_delivered} missing, {unexpected} unexpected\n  \
         lateness (due -> first POST received): p50 {:.3} s, p99 {:.3} s, max {:.3} s\n  \
         due in the 10 s after the kills ({} at {kill_at_fraction} of the window): p50 {:.3} s, \
         p99 {:.3} s, max {:.3} s\n  \
         stages (p50 / p99 / max, s): {}\n  \
         taken over from the store by the live notification instances: {handoffs_taken}\n  \
         in-app (user 0): {in_app_expected} expected, {inbox} in the inbox, {sse_notifications} \
         on the live stream through the gateway, {sse_other} other stream events\n  logs: {}",
        users.len(),
        percentile(&lateness, 50.0),
        percentile(&lateness, 99.0),
        lateness.last().copied().unwrap_or(f64::NAN),
        around_kill.len(),
        percentile(&around_kill, 50.0),
        percentile(&around_kill, 99.0),
        around_kill.last().copied().unwrap_or(f64::NAN),
        stages(&db),
        dir.path().display(),
    );
    assert_eq!(not_delivered, 0, "webhook deliveries lost");
    assert_eq!(
        occurrences_with_two_ids, 0,
        "an occurrence sent under two ids"
    );
    assert_eq!(unexpected, 0, "webhooks for no occurrence");
    assert_eq!(distinct_ids, reminders);
    assert_eq!(inbox, in_app_expected, "in-app notifications in the inbox");
    assert_eq!(
        sse_notifications, in_app_expected,
        "in-app notifications on the live stream of another process ({sse_other} other events)"
    );

    // "What the API answered is what happens" with the roles apart: reminders deleted or
    // moved just before they fall due, through the gateway, never fire once the change came
    // back in time (see `fence.rs`). `CHIME_CLUSTER_FENCE_REMINDERS=0` leaves it out: on a
    // store too slow for a change to come back before its due instant (SecantusDB takes about
    // a second a change under the race's load), the race cannot test anything.
    let fence_reminders = param("CHIME_CLUSTER_FENCE_REMINDERS", 80);
    if fence_reminders == 0 {
        println!("fence: not raced (CHIME_CLUSTER_FENCE_REMINDERS=0)");
    } else {
        crate::fence::race(&gateway, |user| cluster.token(user), fence_reminders)
            .await
            .assert_none_fired_after_a_timely_success(match db {
                Store::Postgres(_) => "cluster: PostgreSQL and Kafka, roles apart",
                Store::Mongo(_) => "cluster: MongoDB (SecantusDB) and Kafka, roles apart",
            });
    }
    drop(instances);
    drop(broker);
}

/// How long creating `reminders` tasks through the gateway will take, and so the lead to give
/// the first due instant: a one-time reminder whose due instant has passed by the time its
/// create arrives is refused (422), so a guessed lead fails the run whenever the machine is
/// busier than the guess (CI runs other suites beside this one). Creates a probe of far-future
/// tasks at the same concurrency, measures their rate, and allows twice the time it predicts.
/// Returns the lead and the probes' ids (they are the first user's, and never fire in the run).
async fn calibrate_lead(client: &TestClient, reminders: usize) -> (f64, HashSet<String>) {
    let probes = (reminders / 50).clamp(CREATE_CONCURRENCY, 400);
    let due = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).to_string();
    let started = Instant::now();
    let ids: HashSet<String> = futures::stream::iter(0..probes)
        .map(|i| {
            let body = json!({"name": format!("probe {i}"), "startDate": due});
            async move {
                let task = client.create_task(&body).await;
                task["id"].as_str().expect("id").to_owned()
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let rate = probes as f64 / started.elapsed().as_secs_f64();
    let lead = 5.0 + 2.0 * reminders as f64 / rate;
    eprintln!("cluster: {probes} probe creates at {rate:.0}/s; lead {lead:.1} s");
    (lead, ids)
}

/// A browser signs in through the gateway (local sign-in: the cluster has no OIDC provider)
/// and opens one of its user's tasks on each web instance (the session is in the shared
/// store, so whichever instance the gateway picks knows it); signed in as someone else, the
/// same task is not found. The web role holds no task: each page is its BFF calling a
/// definition instance over HTTP.
async fn web_sessions_see_their_own_tasks(
    public: &str,
    cert: &str,
    webs: &[u16],
    users: &[String],
    created_by: &[(usize, Occurrence)],
) {
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).expect("cert"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let own = created_by
        .iter()
        .find(|(user, _)| *user == 0)
        .map(|(_, (id, _))| id.clone())
        .expect("a task of user 0");
    for (user, expected) in [
        (users[0].as_str(), StatusCode::OK),
        ("someone-else", StatusCode::NOT_FOUND),
    ] {
        // A new session, signed in through the gateway (local sign-in: the cluster has no
        // OIDC provider) ...
        let mut browser = Browser::open_with(http.clone(), public).await;
        browser.signed_in_as(user).await;
        // ... known to each web instance.
        for web in webs {
            browser.base = format!("http://127.0.0.1:{web}");
            let body: Value = browser
                .client()
                .get(&format!("/bff/tasks/{own}"), expected)
                .await;
            if expected == StatusCode::OK {
                assert_eq!(body["task"]["id"], own.as_str(), "{user} on :{web}: {body}");
            }
        }
    }
}

/// Where the lateness comes from, from the store's own instants (microseconds, each stage's
/// clock its instance's): due to fired (execution; from the history the definition role
/// builds, which may still be catching up: its row count is printed), due to the pending
/// webhook delivery's record (execution, relay, broker, notification consumer), and record to
/// sent (the channel worker and the POST).
fn stages(store: &Store) -> String {
    let Store::Postgres(db) = store else {
        return "stages not measured (read with SQL: PostgreSQL only)".to_owned();
    };
    let stats = |expr: &str| {
        format!(
            "round((percentile_cont(0.5) WITHIN GROUP (ORDER BY {expr}) / 1e6)::numeric, 3) \
             || ' / ' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY {expr}) / 1e6)::numeric, 3) \
             || ' / ' || round((max({expr}) / 1e6)::numeric, 3)"
        )
    };
    let fired = db.query(&format!(
        "SELECT {} || ' (' || count(*) || ' in history)' FROM history",
        stats("fired_at - due_at"),
    ));
    let delivered = db.query(&format!(
        "SELECT 'recorded ' || {} || '; sent ' || {} FROM deliveries
         WHERE channel = 'webhook' AND outcome = 'sent'",
        stats("first_attempt_at - due_at"),
        stats("at - first_attempt_at"),
    ));
    format!("fired {fired}; {delivered}")
}

/// `chime bench` of the distributed mode (`--store-url`, `--kafka-bootstrap`): the roles run
/// apart on PostgreSQL and a broker, every occurrence is measured with its stages, and the
/// run's database is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_harness_measures_the_roles_apart() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let broker = tansu::Tansu::start().await;
    let store_url =
        std::env::var("CHIME_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
    let backends = chime::bench::Backends {
        store_url: store_url.clone(),
        kafka_bootstrap: broker.options().bootstrap_servers,
        instances: 1,
        binary: Cluster::binary(),
    };
    let reports = chime::bench::smoke(Some(&backends))
        .await
        .expect("bench smoke, roles apart");
    crate::flow::assert_every_occurrence_measured(&reports, false);
    let left = Command::new("psql")
        .args([
            &store_url,
            "-qAtc",
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'chime_bench_{}_%'",
                std::process::id()
            ),
        ])
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0");
}

/// The handoff (issue 24), on its own: what no notification instance records from the bus is
/// taken over from the store. Two processes on one PostgreSQL database, each with the embedded
/// log as its bus, so nothing one publishes reaches the other: definition, execution and tick
/// in one, notification in the other, started once the first has fired the occurrences and
/// relayed their events to its own log (every relay drains the shared outbox, so the second's
/// would otherwise take some of them to its own consumer). Those events never reach a
/// consumer, exactly as a dead consumer's partitions' events do until the broker moves them;
/// the second process must take each over from the store's handoffs, decrypt it (the store is
/// encrypted), and deliver it once per channel: one webhook id and one inbox item per
/// occurrence, each counted in `chime_handoffs_taken_total`, and each handoff left marked
/// recorded (for the bus's copy to be skipped), none waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occurrences_no_consumer_records_from_the_bus_are_taken_over_from_the_store() {
    let dir = KeptOnFailure(Some(tempfile::tempdir().expect("tempdir")));
    let db = Database::create();
    let key = encryption_key();
    let mut cluster = Cluster {
        dir: dir.path().to_owned(),
        env: vec![
            ("CHIME_LOG", "info,chime_roles::notification=debug".into()),
            ("CHIME_STORE__URL", db.url()),
            (
                "CHIME_KEYS_DIR",
                dir.path().join("keys").display().to_string(),
            ),
            ("CHIME_ENCRYPTION__KEYS", key),
            ("CHIME_CHANNELS__WEBHOOK__ALLOW_PRIVATE", "true".into()),
            ("CHIME_DELIVERY__HANDOFF_AFTER_SECONDS", "1".into()),
            // The tokens' issuer, the same for both processes and `chime token`.
            (
                "CHIME_AUTH__PUBLIC_BASE_URL",
                "https://chime.invalid".into(),
            ),
        ],
        started: 0,
    };
    let token = cluster.token("handoff");
    let mut firing = cluster.spawn("definition,execution,tick");
    firing.process.ready().await;

    let hook = Receiver::start(Reply::status(204)).await;
    let client = TestClient::new(firing.process.base.clone()).bearer(token);
    client.set_webhook(&hook.url("/hook")).await;
    let reminders = 20;
    let due = crate::helpers::in_ms(3_000);
    let mut expected = HashSet::new();
    for i in 0..reminders {
        let task = client
            .create_task(&json!({
                "name": format!("handoff {i}"),
                "startDate": due,
                "notify": {"inApp": true, "webhook": true},
            }))
            .await;
        expected.insert((
            task["id"].as_str().expect("id").to_owned(),
            task["startDate"].as_str().expect("startDate").to_owned(),
        ));
    }

    eventually("the occurrences fired and their events relayed", || async {
        let counts = db.query(
            "SELECT (SELECT count(*) FROM handoffs) || ' ' || (SELECT count(*) FROM outbox)",
        );
        (counts == format!("{reminders} 0")).then_some(())
    })
    .await;
    let mut notifying = cluster.spawn("notification");
    notifying.process.ready().await;

    let hits = eventually(
        "every occurrence's webhook, taken over from the store",
        || async {
            let hits = webhook_hits(&hook);
            let arrived = hits.iter().map(|(_, o, _)| o).collect::<HashSet<_>>().len();
            (arrived >= reminders).then_some(hits)
        },
    )
    .await;
    let mut ids_per_occurrence: HashMap<Occurrence, HashSet<String>> = HashMap::new();
    for (id, occurrence, _) in &hits {
        ids_per_occurrence
            .entry(occurrence.clone())
            .or_default()
            .insert(id.clone());
    }
    assert_eq!(
        ids_per_occurrence.keys().cloned().collect::<HashSet<_>>(),
        expected
    );
    assert!(
        ids_per_occurrence.values().all(|ids| ids.len() == 1),
        "an occurrence under two webhook ids: {ids_per_occurrence:?}"
    );
    let inbox = client
        .all_pages("/api/v1/notifications", "notifications")
        .await;
    assert_eq!(inbox.len(), reminders, "one inbox item per occurrence");
    let taken = eventually("the takeovers counted", || async {
        let metrics = TestClient::new(notifying.process.base.clone())
            .metrics()
            .await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("chime_handoffs_taken_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|&n| n >= reminders as f64)
    })
    .await;
    assert_eq!(taken, reminders as f64, "each occurrence taken over once");
    // Each kept, recorded, for the bus's copy to be skipped (which never comes here).
    assert_eq!(
        db.query(
            "SELECT count(*) FILTER (WHERE recorded_at IS NULL) || ' ' || \
             count(*) FILTER (WHERE recorded_at IS NOT NULL) FROM handoffs"
        ),
        format!("0 {reminders}")
    );
}
