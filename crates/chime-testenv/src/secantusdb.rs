//! A real MongoDB-wire-protocol server for tests: SecantusDB (`secantusd-py`, PyPI
//! `secantusdb`), started fresh on a free loopback port with its files in a directory of its
//! own, durable on every commit (`--sync-on-commit`), and reporting itself as a single-node
//! replica set, so transactions and change streams work.
//!
//! It runs as a separate process, never linked. It stops when the [`SecantusDb`] is dropped,
//! and also when the test process dies without dropping it (a shared server kept in a
//! `static` is never dropped): a small shell wrapper kills it once its standard input, a pipe
//! from this process, closes. Std only, so a server can outlive any one test's runtime.
//!
//! SecantusDB is slow and slows further with collection size (a query scans every matching
//! document), and the driver's default `retryWrites=true` makes every write rescan its
//! stored retry records: tests use [`SecantusDb::url`], which turns retryable writes off,
//! and keep their data small. It shows compatibility, not performance.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh server may take to accept connections (about 4 s on an idle machine).
const START: Duration = Duration::from_secs(60);

/// What installs the server.
pub const INSTALL: &str = "python3 -m pip install 'secantusdb==0.7.0b3'";

/// A running SecantusDB.
pub struct SecantusDb {
    port: u16,
    dir: PathBuf,
    child: Child,
}

/// The program: `$SECANTUSD`, else `secantusd-py` on the PATH.
pub fn program() -> String {
    std::env::var("SECANTUSD").unwrap_or_else(|_| "secantusd-py".to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl SecantusDb {
    /// Starts a fresh server keeping its files in `dir` (created if missing); returns once it
    /// accepts connections.
    pub fn start(dir: &Path) -> SecantusDb {
        Self::start_on(dir, free_port())
    }

    /// Starts a server on `port` with the files in `dir`: a fresh one, or (with the `dir` and
    /// `port` of one that was stopped) the same server again after a restart.
    pub fn start_on(dir: &Path, port: u16) -> SecantusDb {
        std::fs::create_dir_all(dir).expect("the server's directory");
        let log = std::fs::File::create(dir.join("secantusd.log")).expect("the server's log");
        // `exec` keeps the server's pid the wrapper's child; the wrapper waits for its stdin
        // to close (this process dropped the handle, or died), then stops the server.
        let script =
            r#""$0" "$@" & server=$!; cat >/dev/null; kill "$server" 2>/dev/null; wait "$server""#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(program())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(dir)
            .arg("--sync-on-commit")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("the server's log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {} ({e}); install: {INSTALL}", program()));
        let mut server = SecantusDb {
            port,
            dir: dir.to_owned(),
            child,
        };
        server.wait_until_listening();
        server
    }

    /// Waits until the port accepts connections, failing with the server's log if it exits.
    fn wait_until_listening(&mut self) {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START;
        loop {
            match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
                Ok(_) => return,
                Err(e)
                    if e.kind() == ErrorKind::ConnectionRefused
                        || e.kind() == ErrorKind::TimedOut => {}
                Err(e) => panic!("connecting to SecantusDB on {address}: {e}"),
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "SecantusDB exited ({status}) before it listened; its log:\n{}\ninstall: {INSTALL}",
                    std::fs::read_to_string(self.dir.join("secantusd.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "SecantusDB did not listen on {address} within {START:?}"
            );
            // Nothing to await on a process that has not opened its port yet: look again soon.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where its files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A connection string for `database`: direct to this one node, retryable writes off.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mongodb://127.0.0.1:{}/{database}?directConnection=true&retryWrites=false",
            self.port
        )
    }

    /// Stops the server and waits until it has exited (its files stay, for a restart).
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        // Closing the wrapper's stdin makes it stop the server and wait for it.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for SecantusDb {
    fn drop(&mut self) {
        self.shut_down();
    }
}
