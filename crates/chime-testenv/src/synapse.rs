//! A real Matrix homeserver for tests: Synapse, run by `support/synapse_server.py` with a fresh
//! configuration in a directory the test chose (SQLite, one client listener on 127.0.0.1 on a
//! free port, no federation, registration only through the shared-secret admin API). Before it
//! says `ready`, the script registers two users, `owner` and `bot` (with HMAC-SHA1 over the
//! server's nonce, as Synapse's admin API asks), and, as `owner`, creates a private room with
//! the alias `#reminders:chime.test` and invites `bot`, who has not joined.
//!
//! Synapse runs in the script's own Python process, with `$CHIME_SYNAPSE_PYTHON` (default
//! `~/.cache/chime/synapse/bin/python`: a virtual environment, since Synapse pins many
//! packages; see [`INSTALL`]). It stops when its standard input closes or it is killed: when
//! the [`Synapse`] is dropped, or the test dies. A fresh server is ready in a few seconds.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the server may take to be ready: a fresh database on a busy machine.
const START: Duration = Duration::from_secs(180);

/// What installs Synapse where [`python`] looks by default.
pub const INSTALL: &str = "python3 -m venv ~/.cache/chime/synapse && \
                           ~/.cache/chime/synapse/bin/pip install 'matrix-synapse==1.163.2'";

/// A running Synapse with its users and room.
pub struct Synapse {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// `chime.test`: the server part of its user ids and aliases.
    pub server_name: String,
    /// The room `owner` created (`!…`).
    pub room_id: String,
    /// `#reminders:chime.test`.
    pub room_alias: String,
    /// `@owner:chime.test`, in the room.
    pub owner_id: String,
    pub owner_token: String,
    /// `bot`: invited to the room, not joined; the tests log in with this password.
    pub bot_user: String,
    /// `@bot:chime.test`.
    pub bot_id: String,
    pub bot_password: String,
    _child: Child,
}

/// The Python that runs Synapse: `$CHIME_SYNAPSE_PYTHON`, else the virtual environment that
/// [`INSTALL`] makes.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("CHIME_SYNAPSE_PYTHON") {
        return PathBuf::from(python);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/chime/synapse/bin/python")
}

impl Synapse {
    /// Starts a fresh server keeping its files in `dir`; returns once its users and room
    /// exist.
    pub async fn start(dir: &Path) -> Synapse {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/synapse_server.py");
        let python = python();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(dir)
            // The script stops when its stdin closes, i.e. when this handle is dropped.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {} ({e}); install Synapse: {INSTALL}",
                    python.display()
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::time::timeout(START, BufReader::new(stdout).lines().next_line())
            .await
            .unwrap_or_else(|_| panic!("Synapse did not say `ready` within {START:?}"))
            .expect("reading the Synapse script's stdout")
            .unwrap_or_else(|| {
                panic!(
                    "the Synapse script exited before it was ready (see {}/homeserver.log; \
                     install: {INSTALL})",
                    dir.display()
                )
            });
        let facts: serde_json::Value = line
            .strip_prefix("ready ")
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_else(|| panic!("unexpected first line from the Synapse script: {line:?}"));
        let text = |pointer: &str| {
            facts
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("no {pointer} in the Synapse script's `ready` line"))
                .to_owned()
        };
        Synapse {
            base_url: text("/base_url"),
            server_name: text("/server_name"),
            room_id: text("/room_id"),
            room_alias: text("/room_alias"),
            owner_id: text("/owner/user_id"),
            owner_token: text("/owner/access_token"),
            bot_user: text("/bot/user"),
            bot_id: text("/bot/user_id"),
            bot_password: text("/bot/password"),
            _child: child,
        }
    }

    /// `127.0.0.1:PORT`, for a `matrix://` URL.
    pub fn authority(&self) -> &str {
        self.base_url
            .strip_prefix("http://")
            .expect("the server's base URL is http://")
    }
}
