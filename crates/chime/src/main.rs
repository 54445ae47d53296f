//! `chime`: one binary, every role. See `chime --help`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chime::config::{Config, LogFormat, Overrides};
use chime_core::UserId;
use chime_http::LocalIssuer;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chime",
    version,
    about = "Personal reminders, notified when due"
)]
struct Cli {
    /// A TOML config file (default: ./chime.toml when it exists).
    #[arg(long, global = true, env = "CHIME_CONFIG")]
    config: Option<PathBuf>,
    /// An environment's configuration, layered between the defaults and the config file:
    /// internal_integration or production (deploy/config/NAME.toml, compiled in).
    #[arg(long, global = true, env = "CHIME_PROFILE")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Chime: every role by default, on the embedded default (SQLite, durable log bus).
    Serve {
        /// Data directory [default: ./chime-data; env: CHIME_DATA_DIR]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Listen address [default: 127.0.0.1:8080; env: CHIME_LISTEN]
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Comma-separated roles: definition,execution,notification,tick,web [default: all]
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<String>>,
    },
    /// Print a bearer token for USER, signed by the local issuer of the data directory.
    Token {
        /// Data directory [default: ./chime-data; env: CHIME_DATA_DIR]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's listen address, whose `http://{listen}` is the token's issuer unless
        /// `auth.public_base_url` is set [default: the address the server on this data
        /// directory last used, else 127.0.0.1:8080; env: CHIME_LISTEN]
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The user (the token's `sub`).
        #[arg(long)]
        user: String,
        /// Validity in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Benchmarks: burst, steady, create, recurring, retention, load, sqlite, smoke (see BENCHMARKS.md).
    Bench(chime::bench::BenchArgs),
    /// Manage the keys that encrypt personal data at rest.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Take an online backup of the store (and bus log) now, beside a running `chime serve`
    /// or not: a copy of the embedded store, or a `pg_dump` of a PostgreSQL one (`[store]
    /// url`). It holds no keys: see `--with-keys` and docs/backups.md.
    Backup {
        /// The backup file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
        /// Data directory [default: ./chime-data; env: CHIME_DATA_DIR]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Also copy the data directory's key files (issuer, VAPID, encryption.key) into
        /// FILE.keys/, which `chime restore` puts back. Keep that directory as safe as the keys.
        #[arg(long)]
        with_keys: bool,
    },
    /// Restore a backup into a data directory (verified first; never under a running server).
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The data directory to restore into.
        #[arg(long)]
        data_dir: PathBuf,
        /// Replace an existing store (it is moved aside, not deleted; a PostgreSQL one is
        /// replaced in one transaction) and differing key files.
        #[arg(long)]
        force: bool,
        /// For a PostgreSQL dump: the database to restore it into [default: `[store] url`
        /// of the config file]
        #[arg(long)]
        store_url: Option<String>,
    },
    /// Create or upgrade the schema of a PostgreSQL or MongoDB store (for MongoDB: its
    /// collections, validators and indexes): safe to run again, and from several hosts at
    /// once. The SQLite store migrates when opened.
    #[cfg(feature = "postgres")]
    Migrate {
        /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE or mongodb://HOST[:PORT]/DATABASE
        /// [default: `[store] url` of the
        /// configuration, as `chime serve` uses it (env CHIME_STORE__URL)]
        #[arg(long, env = "CHIME_STORE_URL", hide_env_values = true)]
        store_url: Option<String>,
    },
    /// Check the configuration, the store, the bus, every configured provider and the issuer,
    /// and say what is wrong and how to fix it. Exits non-zero when a check fails.
    Doctor {
        /// Data directory [default: ./chime-data; env: CHIME_DATA_DIR]
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create the local token issuer's key, the VAPID key of web push and the key of action
    /// links in DIR (those missing), for instances that share them through `keys_dir` (a
    /// mounted Secret).
    Init {
        /// The directory [default: `keys_dir`, else the data directory; env: CHIME_KEYS_DIR]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Re-encrypt every personal-data field to the newest key of `encryption.keys`: online
    /// (beside a running `chime serve`), in batches, and safe to run again.
    Rotate {
        /// Data directory [default: ./chime-data; env: CHIME_DATA_DIR]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Rows per transaction.
        #[arg(long, default_value_t = chime::encryption::DEFAULT_ROTATE_BATCH)]
        batch: usize,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chime: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            data_dir,
            listen,
            roles,
        } => {
            let config = Config::load(
                cli.config.as_deref(),
                &Overrides {
                    data_dir,
                    listen,
                    roles,
                    profile: cli.profile.clone(),
                },
            )?;
            let telemetry = chime::telemetry::Telemetry::init(&config.telemetry)?;
            init_logging_with(config.log_format, telemetry.as_ref());
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let running = chime::start(&config, listener).await?;
            let shutdown = running.shutdown.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                shutdown.cancel();
            });
            let served = running.wait().await;
            // After every worker has stopped: their last spans are queued by now.
            if let Some(telemetry) = telemetry {
                if let Err(error) = telemetry.shutdown().await {
                    tracing::warn!(error = %format!("{error:#}"), "traces may be incomplete");
                }
            }
            served
        }
        Command::Token {
            data_dir,
            listen,
            user,
            ttl_hours,
        } => {
            let config = Config::load(
                cli.config.as_deref(),
                &Overrides {
                    data_dir,
                    listen,
                    profile: cli.profile.clone(),
                    ..Overrides::default()
                },
            )?;
            if let Some(issuer) = &config.auth.issuer {
                anyhow::bail!(
                    "auth.issuer is set ({issuer}): the server accepts that issuer's tokens only, \
                     not the local issuer's"
                );
            }
            let user = UserId::parse(&user).context("--user")?;
            for dir in [&config.data_dir, config.keys_dir()] {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the directory {}", dir.display()))?;
            }
            // The server's `iss`: its public base URL when configured, else that of the
            // listen address given here, else the one the server on this data directory
            // recorded, else that of the configured listen address.
            let remembered = LocalIssuer::remembered_url(&config.data_dir)
                .filter(|_| listen.is_none() && config.auth.public_base_url.is_none());
            let url = remembered.unwrap_or_else(|| {
                config
                    .auth
                    .local_issuer_url(config.listen, config.tls.cert_file.is_some())
            });
            let issuer =
                LocalIssuer::load_or_create(config.keys_dir(), &url, &config.auth.audience)
                    .context("cannot load the local token issuer's key")?;
            let token = issuer.sign(&user, Duration::from_secs(ttl_hours.saturating_mul(3600)))?;
            println!("{token}");
            Ok(())
        }
        Command::Backup {
            to,
            data_dir,
            with_keys,
        } => {
            let config = Config::load(
                cli.config.as_deref(),
                &Overrides {
                    data_dir,
                    profile: cli.profile.clone(),
                    ..Overrides::default()
                },
            )?;
            chime::backup::command(&config, &to, with_keys).await
        }
        Command::Restore {
            from,
            data_dir,
            force,
            store_url,
        } => {
            let store_url = match store_url {
                Some(url) => Some(url),
                // Only a dump needs one; a config file that does not load is not this
                // command's business otherwise.
                None if chime::backup::pg::is_dump(&from) => {
                    Config::load(cli.config.as_deref(), &Overrides::default())?
                        .store
                        .url
                }
                None => None,
            };
            chime::backup::restore_command(&from, &data_dir, store_url.as_deref(), force).await
        }
        Command::Doctor { data_dir } => {
            let healthy = chime::doctor::run(
                cli.config.as_deref(),
                &Overrides {
                    data_dir,
                    profile: cli.profile.clone(),
                    ..Overrides::default()
                },
            )
            .await;
            if healthy {
                Ok(())
            } else {
                Err(anyhow::anyhow!("some checks failed (see above)"))
            }
        }
        #[cfg(feature = "postgres")]
        Command::Migrate { store_url } => {
            let url = match store_url {
                Some(url) => url,
                None => Config::load(
                    cli.config.as_deref(),
                    &Overrides {
                        profile: cli.profile.clone(),
                        ..Overrides::default()
                    },
                )?
                .store
                .url
                .context(
                    "no PostgreSQL or MongoDB store to migrate: give --store-url, or set \
                     [store] url (CHIME_STORE__URL)",
                )?,
            };
            migrate(&url).await
        }
        Command::Openapi => {
            println!("{}", chime_http::openapi_json());
            Ok(())
        }
        Command::Bench(args) => {
            init_logging(LogFormat::Text);
            chime::bench::run(args).await
        }
        Command::Keys {
            command: KeysCommand::Init { dir },
        } => {
            let config = Config::load(
                cli.config.as_deref(),
                &Overrides {
                    profile: cli.profile.clone(),
                    ..Overrides::default()
                },
            )?;
            let dir = dir.unwrap_or_else(|| config.keys_dir().to_owned());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let issuer = LocalIssuer::load_or_create(&dir, "http://unused", "unused")
                .context("cannot create the local token issuer's key")?;
            chime_channels::push::VapidKeys::load_or_create(&dir)
                .context("cannot create the VAPID key")?;
            chime::encryption::action_keys(&dir).context("cannot create the action token key")?;
            println!(
                "{}: the issuer key (kid {}), the VAPID key and the action token key are there",
                dir.display(),
                issuer.kid()
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { data_dir, batch },
        } => {
            let config = Config::load(
                cli.config.as_deref(),
                &Overrides {
                    data_dir,
                    profile: cli.profile.clone(),
                    ..Overrides::default()
                },
            )?;
            init_logging(config.log_format);
            let summary = chime::encryption::rotate(&config, batch, |p| {
                println!(
                    "{}: {} rows scanned, {} re-encrypted, {} duplicates removed{}",
                    p.table.name(),
                    p.scanned,
                    p.rewritten,
                    p.removed,
                    if p.done { " (done)" } else { "" }
                );
            })
            .await?;
            println!(
                "{} rows moved to the newest key; run again to check: it rewrites nothing once \
                 every field is on it",
                summary.rewritten()
            );
            Ok(())
        }
    }
}

#[cfg(feature = "postgres")]
async fn migrate(store_url: &str) -> anyhow::Result<()> {
    use chime::backends::{SharedStore, StoreKind};
    if StoreKind::of(store_url).is_none() {
        anyhow::bail!(
            "--store-url must be a postgres:// or mongodb:// URL (the SQLite store migrates \
             itself when opened)"
        );
    }
    let store = SharedStore::connect(store_url, 1).await?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the {} store", store.kind().name()))?;
    let (applied, _) = store.schema_versions().await?;
    println!("the store is at schema version {applied}");
    Ok(())
}

fn init_logging(format: LogFormat) {
    init_logging_with(format, None);
}

/// Logs to stdout, filtered by `CHIME_LOG`; with `telemetry`, spans also go to its exporter
/// under a filter of their own, so that `CHIME_LOG=warn` quiets the log, not the traces.
fn init_logging_with(format: LogFormat, telemetry: Option<&chime::telemetry::Telemetry>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;

    let filter = tracing_subscriber::EnvFilter::try_from_env("CHIME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let log = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().with_filter(filter).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(telemetry.map(|t| t.layer()))
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
