//! Starting the server under test, one way for each shape a test needs:
//!
//! - [`TestApp::builder`]: in-process through `chime::start`, on `127.0.0.1:0` with a fresh
//!   data directory; the options that differ between tests (configuration, an injected clock,
//!   a data directory of the test's own) are the builder's. [`spawn_app`] and
//!   [`spawn_app_with`] are its common cases.
//! - [`Serve`]: the real binary, `chime serve`, where a test kills the process, reads its
//!   output or runs the roles apart. [`Serve::start`] returns once it answers `/readyz`, and
//!   fails with the end of its log if it exits first.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chime::{Config, Running};
use chime_core::UserId;
use chime_roles::Clock;
use serde_json::Value;
use tempfile::TempDir;

use super::{free_port, TestClient, PATIENCE};

/// A server's data directory: a temporary one the test owns, or a path it chose (on a small
/// disk, say).
pub enum DataDir {
    Temp(TempDir),
    At(PathBuf),
}

impl DataDir {
    pub fn path(&self) -> &Path {
        match self {
            DataDir::Temp(dir) => dir.path(),
            DataDir::At(path) => path,
        }
    }
}

impl From<TempDir> for DataDir {
    fn from(dir: TempDir) -> DataDir {
        DataDir::Temp(dir)
    }
}

impl From<PathBuf> for DataDir {
    fn from(path: PathBuf) -> DataDir {
        DataDir::At(path)
    }
}

/// A server running in the test's process.
pub struct TestApp {
    pub running: Running,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub http: reqwest::Client,
    pub dir: DataDir,
}

/// A server in-process on a fresh data directory, with the default configuration.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().start().await
}

/// [`spawn_app`] with the configuration changed by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::builder().config(configure).start().await
}

/// A change a test makes to the configuration.
type Configure<'a> = Box<dyn FnOnce(&mut Config) + 'a>;

/// The options of an in-process server; see [`TestApp::builder`].
#[derive(Default)]
pub struct TestAppBuilder<'a> {
    configure: Vec<Configure<'a>>,
    dir: Option<DataDir>,
    clock: Option<Arc<dyn Clock>>,
}

impl<'a> TestAppBuilder<'a> {
    /// Changes the configuration (after the data directory and the address are set).
    pub fn config(mut self, configure: impl FnOnce(&mut Config) + 'a) -> Self {
        self.configure.push(Box::new(configure));
        self
    }

    /// Runs on `dir` instead of a fresh temporary directory: a restart, or a disk the test
    /// controls.
    pub fn data_dir(mut self, dir: impl Into<DataDir>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Reads time from `clock` instead of the system's.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Starts the server; panics if it does not start.
    pub async fn start(self) -> TestApp {
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("start: {e:#}"))
    }

    /// Starts the server, or returns why it did not.
    pub async fn try_start(self) -> anyhow::Result<TestApp> {
        let dir = match self.dir {
            Some(dir) => dir,
            None => DataDir::Temp(tempfile::tempdir().expect("tempdir")),
        };
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..Config::default()
        };
        for configure in self.configure {
            configure(&mut config);
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("bind");
        let running = match self.clock {
            Some(clock) => chime::start_with_clock(&config, listener, clock).await?,
            None => chime::start(&config, listener).await?,
        };
        Ok(TestApp {
            base: format!("http://{}", running.addr),
            running,
            http: reqwest::Client::new(),
            dir,
        })
    }
}

impl TestApp {
    pub fn builder<'a>() -> TestAppBuilder<'a> {
        TestAppBuilder::default()
    }

    /// A token of the server's local issuer for `user`.
    pub fn token(&self, user: &str) -> String {
        self.running
            .issuer
            .sign(
                &UserId::parse(user).expect("user"),
                Duration::from_secs(600),
            )
            .expect("sign")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client calling as `user`.
    pub fn user(&self, user: &str) -> TestClient {
        self.anonymous().bearer(self.token(user))
    }

    /// A client with no token.
    pub fn anonymous(&self) -> TestClient {
        TestClient::with_http(self.http.clone(), self.base.clone())
    }

    /// Creates a task as `user` and returns its JSON; panics unless 201.
    pub async fn create(&self, user: &str, body: &Value) -> Value {
        self.user(user).create_task(body).await
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.anonymous().metrics().await
    }

    /// Stops the server gracefully; its data directory, to start another on.
    pub async fn stop(self) -> DataDir {
        self.running.stop().await.expect("stop");
        self.dir
    }
}

/// Where a process's standard output and error go.
enum Output {
    Null,
    /// Both to one file.
    Log(PathBuf),
    /// Each to a file of its own.
    Files(PathBuf, PathBuf),
    /// Piped, for [`ChimeProcess::exit`].
    Piped,
}

/// `chime serve` with the real binary; the options that differ between tests.
pub struct Serve {
    binary: PathBuf,
    dir: PathBuf,
    port: Option<u16>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_removed: Vec<String>,
    current_dir: Option<PathBuf>,
    output: Output,
}

impl Serve {
    /// `chime serve --data-dir DIR --listen 127.0.0.1:PORT` (a free port unless
    /// [`Serve::port`]), its output discarded.
    pub fn new(dir: impl Into<PathBuf>) -> Serve {
        Serve {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_chime")),
            dir: dir.into(),
            port: None,
            args: Vec::new(),
            env: Vec::new(),
            env_removed: Vec::new(),
            current_dir: None,
            output: Output::Null,
        }
    }

    /// Another `chime` binary (a release build, for figures).
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// Listens on `port`: a restart on the same address, or a port tokens were made for.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// More arguments after `serve` (`--roles`, `--profile`, …).
    pub fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> Self {
        self.args.extend(args.into_iter().map(str::to_owned));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    pub fn envs<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (key, value) in vars {
            self.env
                .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        }
        self
    }

    /// Takes `key` out of the environment the test inherited.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env_removed.push(key.to_owned());
        self
    }

    /// Runs in `dir` (where a relative path or a `config.toml` would be looked for).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Standard output and error, both to `file`.
    pub fn log_to(mut self, file: impl Into<PathBuf>) -> Self {
        self.output = Output::Log(file.into());
        self
    }

    /// Standard output to `stdout`, standard error to `stderr`.
    pub fn output_to(mut self, stdout: impl Into<PathBuf>, stderr: impl Into<PathBuf>) -> Self {
        self.output = Output::Files(stdout.into(), stderr.into());
        self
    }

    /// Standard output and error piped, to read once it exits ([`ChimeProcess::exit`]).
    pub fn piped(mut self) -> Self {
        self.output = Output::Piped;
        self
    }

    /// Starts the process, without waiting for it to be ready.
    pub fn spawn(self) -> ChimeProcess {
        let port = self.port.unwrap_or_else(free_port);
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .arg("serve")
            .args(&self.args)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for key in &self.env_removed {
            command.env_remove(key);
        }
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        let file = |path: &Path| std::fs::File::create(path).expect("an output file");
        let log = match &self.output {
            Output::Null => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
                None
            }
            Output::Log(path) => {
                let log = file(path);
                command
                    .stdout(log.try_clone().expect("the log file"))
                    .stderr(log);
                Some(path.clone())
            }
            Output::Files(stdout, stderr) => {
                command.stdout(file(stdout)).stderr(file(stderr));
                Some(stderr.clone())
            }
            Output::Piped => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                None
            }
        };
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        ChimeProcess {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            dir: self.dir,
            log,
        }
    }

    /// Starts the process and waits until it is ready.
    pub async fn start(self) -> ChimeProcess {
        let mut process = self.spawn();
        process.ready().await;
        process
    }
}

/// A running `chime serve`, killed when dropped: a failing assertion must not leave it running
/// (and loading the machine) for the rest of the test run.
pub struct ChimeProcess {
    child: tokio::process::Child,
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub dir: PathBuf,
    log: Option<PathBuf>,
}

/// How long a process may take to be ready: start-up, migrations, a busy machine.
const READY: Duration = Duration::from_secs(60);

impl ChimeProcess {
    /// Waits until it answers `/readyz`; fails, with the end of its log, if it exits first or
    /// is not ready within a minute. A process announces no readiness the test could await, so
    /// this polls.
    pub async fn ready(&mut self) {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.base);
        let deadline = tokio::time::Instant::now() + READY;
        loop {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().expect("status") {
                panic!(
                    "chime serve on {} exited before it was ready ({status}):\n{}",
                    self.base,
                    self.log_tail()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chime serve on {} was not ready within {READY:?}:\n{}",
                self.base,
                self.log_tail()
            );
            // Backoff of a poll with a deadline.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The last 30 lines of its log, if it has one.
    pub fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return "(no log)".to_owned();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILL, and reaped.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// SIGTERM; its exit status once it has stopped, failing after [`PATIENCE`].
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill -TERM");
        assert!(status.success());
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("the server did not stop on SIGTERM")
            .expect("wait")
    }

    /// Its exit status and piped output ([`Serve::piped`]), once it has exited by itself
    /// within `patience`.
    pub async fn exit(self, patience: Duration) -> std::process::Output {
        tokio::time::timeout(patience, self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("chime serve did not exit within {patience:?}"))
            .expect("wait")
    }

    /// A token of the local issuer of its data directory for `user`.
    pub fn token(&self, user: &str) -> String {
        binary_token(&self.dir, Some(self.port), user)
    }

    /// A client calling as `user`.
    pub fn user(&self, user: &str) -> TestClient {
        TestClient::new(&self.base).bearer(self.token(user))
    }
}

/// `chime token --user USER --data-dir DIR [--listen 127.0.0.1:PORT]` from the real binary: a
/// token of the local issuer, whose `iss` is the server's `http://{listen}`.
pub fn binary_token(dir: &Path, port: Option<u16>, user: &str) -> String {
    let chime = std::process::Command::new(env!("CARGO_BIN_EXE_chime"));
    token_with(chime, dir, port, user)
}

/// [`binary_token`] with `command`: another binary, or an environment of its own.
pub fn token_with(
    mut command: std::process::Command,
    dir: &Path,
    port: Option<u16>,
    user: &str,
) -> String {
    command
        .args(["token", "--user", user, "--data-dir"])
        .arg(dir);
    if let Some(port) = port {
        command.args(["--listen", &format!("127.0.0.1:{port}")]);
    }
    let out = command.output().expect("chime token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}
