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
        /// Comma-separated roles: definition,execution,notification,tick [default: all]
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<String>>,
    },
    /// Print a bearer token for USER, signed by the local issuer of the data directory.
    Token {
        /// Data directory [default: ./chime-data; env: CHIME_DATA_DIR]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The user (the token's `sub`).
        #[arg(long)]
        user: String,
        /// Validity in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Measure fire lateness: start Chime on a fresh data directory and schedule reminders.
    Bench(chime::bench::BenchArgs),
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
                },
            )?;
            init_logging(config.log_format);
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
            running.wait().await
        }
        Command::Token {
            data_dir,
            user,
            ttl_hours,
        } => {
            let config = Config::load(
                cli.config.as_deref(),
                &Overrides {
                    data_dir,
                    ..Overrides::default()
                },
            )?;
            let user = UserId::parse(&user).context("--user")?;
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.data_dir.display()
                )
            })?;
            let issuer = LocalIssuer::load_or_create(&config.data_dir)
                .context("cannot load the local token issuer's key")?;
            let token = issuer.sign(&user, Duration::from_secs(ttl_hours.saturating_mul(3600)))?;
            println!("{token}");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", chime_http::openapi_json());
            Ok(())
        }
        Command::Bench(args) => {
            init_logging(LogFormat::Text);
            chime::bench::run(args).await
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHIME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
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
