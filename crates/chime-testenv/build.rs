//! Checks that the tools the enabled features' tests need are installed; see `src/lib.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Tool {
    what: &'static str,
    present: bool,
    install: &'static str,
}

fn main() {
    for var in [
        "PATH",
        "CHIME_SKIP_TOOL_CHECK",
        "CHIME_TANSU",
        "CHIME_NGINX",
        "PG_BIN",
        "CHROMIUM",
        "PYTHON",
        "SCHEMATHESIS",
        "CHIME_SYNAPSE_PYTHON",
        "SECANTUSD",
        "HOME",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if std::env::var_os("CHIME_SKIP_TOOL_CHECK").is_some_and(|v| v != "0") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let feature = |name: &str| std::env::var_os(format!("CARGO_FEATURE_{name}")).is_some();
    let mut tools = Vec::new();
    if feature("SMTP") {
        tools.push(Tool {
            what: "aiosmtpd (Python), the email tests' SMTP server",
            present: runs(&python(), &["-c", "import aiosmtpd"]),
            install: "python3 -m pip install 'aiosmtpd>=1.4,<2'",
        });
    }
    if feature("SYNAPSE") {
        // The same default as `src/synapse.rs`: a virtual environment of its own.
        let python = std::env::var_os("CHIME_SYNAPSE_PYTHON").map_or_else(
            || {
                std::env::var_os("HOME")
                    .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
                    .join(".cache/chime/synapse/bin/python")
            },
            PathBuf::from,
        );
        tools.push(Tool {
            what: "Synapse (Python, CHIME_SYNAPSE_PYTHON), the Matrix tests' homeserver",
            present: runs(&python.to_string_lossy(), &["-c", "import synapse"]),
            install: "python3 -m venv ~/.cache/chime/synapse && \
                      ~/.cache/chime/synapse/bin/pip install 'matrix-synapse==1.163.2'",
        });
    }
    if feature("SECANTUSDB") {
        // The same default as `src/secantusdb.rs`.
        let program = std::env::var("SECANTUSD").unwrap_or_else(|_| "secantusd-py".to_owned());
        tools.push(Tool {
            what: "SecantusDB (secantusd-py, SECANTUSD), the MongoDB store tests' server",
            present: on_path(&program).is_some() || Path::new(&program).is_file(),
            install: "python3 -m pip install 'secantusdb==0.7.0b3'",
        });
    }
    if feature("KAFKA") {
        tools.push(Tool {
            what: "cmake, to build librdkafka",
            present: on_path("cmake").is_some(),
            install: "apt-get install cmake",
        });
        tools.push(Tool {
            what: "libcurl's headers, to build librdkafka",
            present: curl_headers(),
            install: "apt-get install libcurl4-openssl-dev",
        });
        tools.push(Tool {
            what: "tansu 0.6.0, the tests' Kafka-protocol broker",
            present: std::env::var_os("CHIME_TANSU").map_or_else(
                || {
                    on_path("tansu").is_some()
                        || cargo_home().is_some_and(|home| home.join("bin/tansu").is_file())
                },
                |path| Path::new(&path).is_file(),
            ),
            install:
                "cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --debug",
        });
    }
    if feature("WEB") {
        tools.push(Tool {
            what: "Node.js and npm, for the web app and the OIDC provider",
            present: on_path("npm").is_some() && on_path("node").is_some(),
            install: "apt-get install nodejs npm (20 or later)",
        });
        tools.push(Tool {
            what: "the web app's npm packages",
            present: root.join("web/node_modules/.bin/vitest").is_file(),
            install: "(cd web && npm ci)",
        });
        tools.push(Tool {
            what: "the OIDC provider's npm packages",
            present: root
                .join("crates/chime/tests/support/oidc/node_modules/oidc-provider")
                .is_dir(),
            install: "(cd crates/chime/tests/support/oidc && npm ci)",
        });
        tools.push(Tool {
            what: "Chromium, for the web app's end-to-end tests",
            present: std::env::var_os("CHROMIUM").map_or_else(
                || Path::new("/usr/bin/chromium").is_file(),
                |path| Path::new(&path).is_file(),
            ),
            install: "apt-get install chromium",
        });
        tools.push(Tool {
            what: "schemathesis 4.32.5, the API contract test",
            present: runs(
                &std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned()),
                &["--version"],
            ),
            install: "python3 -m pip install 'schemathesis==4.32.5'",
        });
    }
    if feature("OPS") {
        tools.push(Tool {
            what: "promtool, the alert rules' tests",
            present: on_path("promtool").is_some(),
            install: "apt-get install prometheus",
        });
        tools.push(Tool {
            what: "nginx, the cluster test's gateway",
            present: std::env::var_os("CHIME_NGINX").map_or_else(
                || on_path("nginx").is_some() || Path::new("/usr/sbin/nginx").is_file(),
                |path| Path::new(&path).is_file(),
            ),
            install: "apt-get install nginx",
        });
        tools.push(Tool {
            what: "psql, the cluster test's database set-up",
            present: on_path("psql").is_some(),
            install: "apt-get install postgresql-client",
        });
        tools.push(Tool {
            what: "pg_dump and pg_restore, the PostgreSQL backup tests",
            present: on_path("pg_dump").is_some() && on_path("pg_restore").is_some(),
            install: "apt-get install postgresql-client",
        });
        let pg_bin = std::env::var_os("PG_BIN").map_or_else(
            || PathBuf::from("/usr/lib/postgresql/15/bin"),
            PathBuf::from,
        );
        tools.push(Tool {
            what: "PostgreSQL 15's server programs (initdb, pg_ctl, postgres in PG_BIN, default \
                   /usr/lib/postgresql/15/bin), the failover drill's primary and standby",
            present: ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|p| pg_bin.join(p).is_file()),
            install: "apt-get install postgresql-15",
        });
    }
    let missing: Vec<&Tool> = tools.iter().filter(|t| !t.present).collect();
    if missing.is_empty() {
        return;
    }
    let mut message = String::from(
        "the tests need tools this machine does not have (`./test` installs every one):\n",
    );
    for tool in missing {
        message.push_str(&format!("  missing {}: {}\n", tool.what, tool.install));
    }
    message
        .push_str("(CHIME_SKIP_TOOL_CHECK=1 skips this check, for tests that need none of them)");
    eprintln!("{message}");
    std::process::exit(1);
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

fn curl_headers() -> bool {
    Path::new("/usr/include/curl/curl.h").is_file()
        || std::fs::read_dir("/usr/include")
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| entry.path().join("curl/curl.h").is_file())
}
