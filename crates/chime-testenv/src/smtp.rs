//! A real SMTP server for tests: `support/smtp_server.py` (aiosmtpd), on 127.0.0.1. It saves
//! every message it accepts in a directory the test chose, as `<n>.eml` (the raw bytes) and
//! `<n>.json` (the envelope), numbered from 1 in arrival order, each written before it answers
//! `250`. Its options (`--auth`, `--rcpt-reply`, `--data-reply`, TLS, `--port`) are in the
//! script's docstring.
//!
//! It says `ready <port>` once it accepts connections, which [`SmtpServer::start`] awaits, and
//! stops when its standard input closes: when the [`SmtpServer`] is dropped, or the test dies.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the server may take to start: Python and aiosmtpd on a busy machine.
const START: Duration = Duration::from_secs(30);

/// A running `smtp_server.py`.
pub struct SmtpServer {
    pub port: u16,
    dir: PathBuf,
    _child: Child,
}

/// One message the server accepted.
pub struct Saved {
    /// The envelope, as JSON: `mail_from`, `rcpt_tos`, `auth_login`, `tls`, `peer`.
    pub envelope: String,
    /// The message as received.
    pub raw: Vec<u8>,
}

impl SmtpServer {
    /// Starts the script (with `$PYTHON`, default `python3`), saving into `dir`, with `args`;
    /// returns once it is ready.
    pub async fn start(dir: &Path, args: &[&str]) -> SmtpServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/smtp_server.py");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(dir)
            .args(args)
            // The script stops when its stdin closes, i.e. when this handle is dropped.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {python}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::time::timeout(START, BufReader::new(stdout).lines().next_line())
            .await
            .unwrap_or_else(|_| panic!("the SMTP server did not say `ready` within {START:?}"))
            .expect("reading the SMTP server's stdout")
            .expect("the SMTP server exited before it was ready (pip install aiosmtpd?)");
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP server: {line:?}"));
        SmtpServer {
            port,
            dir: dir.to_owned(),
            _child: child,
        }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Everything accepted so far, in arrival order.
    pub fn saved(&self) -> Vec<Saved> {
        saved_in(&self.dir)
    }
}

/// Every message saved in `dir`, in arrival order (also by servers that have stopped).
pub fn saved_in(dir: &Path) -> Vec<Saved> {
    (1..)
        .map(|n| dir.join(format!("{n}.json")))
        .take_while(|path| path.exists())
        .map(|json| Saved {
            envelope: std::fs::read_to_string(&json).expect("the envelope"),
            raw: std::fs::read(json.with_extension("eml")).expect("the message"),
        })
        .collect()
}
