//! A tansu broker for one test: started on a free loopback port, killed on drop.
//!
//! tansu 0.6.0's SQLite engine panics now and then when group updates race (`more or less
//! than one row` in `update_group`, lite.rs:503; fixed upstream after 0.6.0, commit 50e5666,
//! "fixes a libsql panic on unexpected row counts"), after which the process lives on and
//! answers nothing. A watcher restarts it on the same port and storage when its log shows a
//! panic: a broker restart, which the clients ride out, instead of a dead test broker.
//!
//! Its storage is SQLite (a file in a temporary directory), not `memory://`: tansu 0.6.0's
//! memory engine answers a fetch from an offset inside a batch with the batches that *start*
//! at or after it (`offsets.split_off(&offset)` in its dynostore), so a group resuming from a
//! committed offset in the middle of a batch silently skips the rest of that batch. Real Kafka
//! returns the batch that contains the offset. The SQL engine reads records by offset.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chime_bus::kafka::KafkaOptions;

/// Longest wait for a started broker to accept connections.
const START: Duration = Duration::from_secs(30);

const INSTALL: &str =
    "cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --debug";

pub struct Tansu {
    child: Arc<Mutex<Child>>,
    port: u16,
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
}

impl Tansu {
    /// Starts a broker and returns once it accepts connections.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    /// [`Tansu::start`] on `host` (an address of this machine).
    pub async fn start_on(host: &str) -> Self {
        let binary = binary();
        let port = free_port();
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("tcp://{host}:{port}");
        let child = Arc::new(Mutex::new(spawn(&binary, &url, dir.path())));
        let stop = Arc::new(AtomicBool::new(false));
        watch(
            binary,
            url,
            dir.path().to_owned(),
            child.clone(),
            stop.clone(),
        );
        let mut broker = Self {
            child,
            port,
            dir,
            stop,
        };
        broker.await_listening(host).await;
        broker
    }

    /// Options of a bus on this broker: few partitions (enough to spread keys), replication 1
    /// (one broker), topics created on first use.
    pub fn options(&self) -> KafkaOptions {
        KafkaOptions {
            bootstrap_servers: format!("127.0.0.1:{}", self.port),
            partitions: 3,
            replication_factor: 1,
            create_topics_on_use: true,
            ..KafkaOptions::default()
        }
    }

    /// A process announces no "listening" event we could await, so this tries to connect,
    /// with a short pause between tries, until it works, the process exits, or [`START`].
    async fn await_listening(&mut self, host: &str) {
        let deadline = Instant::now() + START;
        loop {
            if tokio::net::TcpStream::connect((host, self.port))
                .await
                .is_ok()
            {
                return;
            }
            let exited = self
                .child
                .lock()
                .expect("lock")
                .try_wait()
                .expect("tansu status");
            if let Some(status) = exited {
                panic!("tansu exited before listening ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on port {} within {START:?}: {}",
                self.port,
                self.log()
            );
            // Backoff of a poll with a deadline: the broker announces nothing to await.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn spawn(binary: &Path, url: &str, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .expect("log file");
    Command::new(binary)
        .args([
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ])
        // tansu reads the path of `sqlite://PATH` as relative, even with a leading `/`.
        .args(["--storage-engine", "sqlite://tansu.db"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// Restarts the broker when its log shows one more panic than before (see the module's
/// documentation), until `stop`. A log has no event to await, so it looks twice a second.
fn watch(
    binary: PathBuf,
    url: String,
    dir: PathBuf,
    child: Arc<Mutex<Child>>,
    stop: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        let panics = || {
            std::fs::read_to_string(dir.join("tansu.log"))
                .map(|log| log.matches("panicked at").count())
                .unwrap_or(0)
        };
        let mut seen = 0;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(500));
            let now = panics();
            if now > seen && !stop.load(Ordering::SeqCst) {
                seen = now;
                eprintln!("tansu panicked (its bug, see tests/tansu/mod.rs): restarting it");
                let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
                let _ = child.kill();
                let _ = child.wait();
                *child = spawn(&binary, &url, &dir);
            }
        }
    });
}

/// `CHIME_TANSU`, else `tansu` on the `PATH`, else cargo's bin directory; a clear failure
/// saying how to install it when there is none.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CHIME_TANSU") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    on_path
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Kafka bus contract tests need tansu 0.6.0, a Kafka-protocol broker, and it \
                 is not installed: `{INSTALL}` (as .ci/run does), or set CHIME_TANSU to its path"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
