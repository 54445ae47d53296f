//! The `chime` binary's library: configuration, and wiring the configured roles to the
//! configured adapters (embedded SQLite and log bus, or PostgreSQL and Kafka: see
//! [`backends`]) and the web app's BFF behind one HTTP listener. `main` is thin; tests
//! and the benchmark start a real server with [`start`] on port 0.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;
use chime_bus::Bus;
use chime_core::task::ParseOptions;
use chime_crypto::{EncryptedBus, EncryptedStore};
use chime_http::{AppState, LocalIssuer, Services};
use chime_roles::definition::{self, Definition};
use chime_roles::execution::{Execution, ExecutionConfig};
use chime_roles::notification::deliveries::TaskDeliveries;
use chime_roles::notification::destinations::Destinations;
use chime_roles::notification::inbox::Inbox;
use chime_roles::notification::recipients::Recipients;
use chime_roles::notification::{DeliveryWake, InboxFeed, Notification, NotificationStores};
use chime_roles::occurrence::{Occurrences, Withdrawal};
use chime_roles::{
    inbox_feed, relay, supervisor, tick, Clock, Context, Metrics, Role, SystemClock,
};
use chime_store::OutboxStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod auth;
pub mod backends;
pub mod backup;
pub mod bench;
mod channels;
pub mod config;
pub mod doctor;
pub mod encryption;
pub mod limits;
pub mod lock;
pub mod profile;
pub mod retention;
pub mod telemetry;
pub mod tls;
mod web;

pub use config::Config;

/// In-app notifications buffered for a subscriber to every user's items (the benchmark)
/// before it is told it lagged; an SSE stream has its own per-user buffer.
const FEED_CAPACITY: usize = 4096;

/// The listener's port, for names that say which instance made them.
fn addr_label(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.port().to_string())
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub bus: Arc<dyn Bus>,
    pub feed: InboxFeed,
    pub metrics: Arc<Metrics>,
    pub issuer: Arc<LocalIssuer>,
    /// The definition role, for in-process callers (the benchmark's bulk seeding).
    pub definition: Definition,
    /// The store's retention port, for in-process callers (the benchmark times a run).
    pub retention: Arc<dyn chime_store::RetentionStore>,
    server: JoinHandle<std::io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
    /// Held until the server has stopped: one server per data directory.
    _lock: lock::DataDirLock,
}

impl Running {
    /// Waits until shutdown is requested and every worker has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.server.await.context("HTTP server panicked")?;
        for worker in self.workers {
            worker.await.context("worker panicked")?;
        }
        served.context("HTTP server failed")
    }

    /// Requests shutdown and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Opens the data directory and starts the configured roles and the HTTP API on `listener`.
pub async fn start(config: &Config, listener: TcpListener) -> anyhow::Result<Running> {
    start_with_clock(config, listener, Arc::new(SystemClock)).await
}

pub async fn start_with_clock(
    config: &Config,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    let roles = config.roles()?;
    // Also here, not only in `Config::load`: a production configuration built in code is held
    // to the same requirements.
    profile::check(config)?;
    // Before anything is opened: a bad certificate stops start-up with nothing to undo.
    let tls = config.tls.load()?;
    let parse_options = ParseOptions::new(&config.default_phone_region)
        .map_err(|e| anyhow::anyhow!("default_phone_region: {}", e.0))?;
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let lock = lock::DataDirLock::acquire(dir)?;
    let backends = backends::open(config, dir).await?;
    let (store, bus) = (backends.store, backends.bus);
    // Personal data is encrypted at the ports: neither adapter ever holds it in clear.
    let keys = encryption::keyring(config).context("cannot load the encryption keys")?;
    // The relay moves outbox rows to the bus as they are stored, sealed by the encrypted
    // store's writes: through the decorators it would open every event only to seal it again.
    let sealed_outbox: Arc<dyn OutboxStore> = store.clone();
    let sealed_bus = bus.clone();
    let store = Arc::new(EncryptedStore::new(store, keys.clone()));
    let keys_dir = config.keys_dir();
    std::fs::create_dir_all(keys_dir)
        .with_context(|| format!("cannot create the keys directory {}", keys_dir.display()))?;
    let bus: Arc<dyn Bus> = Arc::new(EncryptedBus::new(bus, keys));
    let issuer = Arc::new(
        LocalIssuer::load_or_create(
            keys_dir,
            &config
                .auth
                .local_issuer_url(listener.local_addr()?, tls.is_some()),
            &config.auth.audience,
        )
        .context("cannot load the local token issuer's key")?,
    );
    let action_keys =
        encryption::action_keys(keys_dir).context("cannot load the action token key")?;
    if let Err(error) = issuer.remember_url(dir) {
        tracing::warn!(%error, "cannot record the local issuer's URL for `chime token`");
    }
    let auth = auth::build(&config.auth, &issuer)?;
    let metrics = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    let ctx = Context {
        clock,
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        store_check: backends.probe.store_check(),
    };
    let feed = InboxFeed::new(FEED_CAPACITY);

    let mut workers = Vec::new();
    // Online, so scheduling goes on meanwhile: the embedded store's file is copied with
    // `VACUUM INTO` on a connection of its own, a PostgreSQL store dumped with `pg_dump` (one
    // snapshot). With several instances on one database, turn it on for one of them.
    if config.backup.enabled() {
        workers.push(tokio::spawn(backup::run_scheduler(
            dir.clone(),
            config.store.url.clone(),
            config.backup.clone(),
            shutdown.clone(),
        )));
    }
    // Only roles that write the outbox need a relay (tick publishes straight to the bus; web
    // writes through the in-process task API). With a shared store every relay drains the
    // whole outbox, so a needless one only publishes events again.
    if roles.iter().any(|r| !matches!(r, Role::Tick)) {
        let (store, bus, ctx) = (sealed_outbox, sealed_bus, ctx.clone());
        workers.push(supervisor::spawn("relay", shutdown.clone(), move || {
            relay::run(store.clone(), bus.clone(), ctx.clone())
        }));
    }
    // The definition role owns tasks and their history: its instances keep the past as long
    // as the policy says (several at once are fine: each row is deleted once).
    if roles.contains(&Role::Definition) && config.retention.enabled() {
        let store: Arc<dyn chime_store::RetentionStore> = store.clone();
        workers.push(tokio::spawn(retention::run(
            store,
            config.retention.clone(),
            ctx.clone(),
        )));
    }
    if roles.contains(&Role::Definition) {
        let (store, bus, ctx) = (store.clone(), bus.clone(), ctx.clone());
        workers.push(supervisor::spawn(
            "definition-history",
            shutdown.clone(),
            move || definition::run_history(store.clone(), bus.clone(), ctx.clone()),
        ));
    }
    if roles.contains(&Role::Execution) {
        let late_after = jiff::SignedDuration::try_from_secs_f64(config.late_after_seconds)
            .context("late_after_seconds is out of range")?;
        let execution = Execution::new(
            store.clone(),
            ctx.clone(),
            ExecutionConfig {
                late_after,
                ..ExecutionConfig::default()
            },
        );
        let (consumer, bus) = (execution.clone(), bus.clone());
        workers.push(supervisor::spawn(
            "execution-consumer",
            shutdown.clone(),
            move || {
                let (consumer, bus) = (consumer.clone(), bus.clone());
                async move { consumer.run_consumer(bus).await }
            },
        ));
        workers.push(supervisor::spawn(
            "execution-timer",
            shutdown.clone(),
            move || {
                let timer = execution.clone();
                async move { timer.run_timer().await }
            },
        ));
    }
    let delivery_wake = DeliveryWake::new();
    let public_url = config.public_url()?;
    let channels = channels::build(&config.channels, keys_dir, public_url.as_ref())?;
    if roles.contains(&Role::Notification) {
        let notification = Notification::new(
            NotificationStores::of(store.clone()),
            channels.adapters.clone(),
            feed.clone(),
            delivery_wake.clone(),
            ctx.clone(),
            channels::notification_config(&config.delivery),
        )
        .with_action_keys(action_keys.clone());
        let bus = bus.clone();
        let consumer = notification.clone();
        workers.push(supervisor::spawn(
            "notification-consumer",
            shutdown.clone(),
            move || {
                let (consumer, bus) = (consumer.clone(), bus.clone());
                async move { consumer.run_consumer(bus).await }
            },
        ));
        // On a shared store: a dead or cut-off consumer's share is taken over from the store
        // within seconds, not after the broker's session timeout and rebalance.
        if store.keeps_handoffs() {
            let taker = notification.clone();
            workers.push(supervisor::spawn(
                "notification-handoffs",
                shutdown.clone(),
                move || {
                    let taker = taker.clone();
                    async move { taker.run_handoffs().await }
                },
            ));
        }
        for channel in notification.configured_channels() {
            let worker = notification.clone();
            workers.push(supervisor::spawn(
                channel.as_str(),
                shutdown.clone(),
                move || {
                    let worker = worker.clone();
                    async move { worker.run_worker(channel).await }
                },
            ));
        }
    }
    if roles.contains(&Role::Definition)
        && !roles.contains(&Role::Notification)
        && backends.shared_bus
    {
        // The notification role runs elsewhere: live in-app items come over the bus. A group
        // per process (each must see every event), named so an operator can tell whose.
        let group = format!(
            "inbox-feed-{}-{:016x}",
            addr_label(&listener),
            rand::random::<u64>()
        );
        let (store, bus, feed, ctx) = (store.clone(), bus.clone(), feed.clone(), ctx.clone());
        workers.push(supervisor::spawn(
            "inbox-feed",
            shutdown.clone(),
            move || {
                inbox_feed::run(
                    bus.clone(),
                    store.clone(),
                    feed.clone(),
                    group.clone(),
                    ctx.clone(),
                )
            },
        ));
    }
    // Several tick instances are harmless: a tick carries no state and only wakes execution's
    // timer, which claims due rows under a lock (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so
    // an extra tick is an extra look at the schedule, never an extra firing.
    if roles.contains(&Role::Tick) {
        let (bus, ctx) = (bus.clone(), ctx.clone());
        workers.push(supervisor::spawn("tick", shutdown.clone(), move || {
            tick::run(bus.clone(), ctx.clone())
        }));
    }

    let ready = Arc::new(AtomicBool::new(true));
    if !backends.probe.is_empty() {
        workers.push(tokio::spawn(
            backends.probe.run(ready.clone(), shutdown.clone()),
        ));
    }
    let definition = Definition::new(store.clone(), ctx.clone(), parse_options.clone())
        .with_task_limit(config.limits.tasks_per_user)
        .with_destinations(store.clone());
    let mut destinations = Destinations::new(store.clone(), ctx.clone());
    for (settings, adapter) in &channels.destinations {
        destinations = destinations.with_channel(settings.clone(), adapter.clone());
    }
    if let Some(public_url) = &public_url {
        destinations = destinations.with_callbacks(public_url.clone(), action_keys.clone());
    }
    let state = AppState::new(Services {
        definition: definition.clone(),
        deliveries: TaskDeliveries::new(
            definition.clone(),
            store.clone(),
            delivery_wake,
            ctx.clone(),
        ),
        recipients: Recipients::new(store.clone(), ctx.clone())
            .with_parse_options(parse_options)
            .with_push_public_key(channels.push_public_key)
            .allowing_private_addresses(
                config
                    .channels
                    .webhook
                    .as_ref()
                    .is_some_and(|w| w.allow_private),
            ),
        destinations,
        inbox: Inbox::new(store.clone()),
        occurrences: match Withdrawal::of(store.clone(), &channels.adapters) {
            Some(withdrawal) => {
                Occurrences::new(store.clone(), ctx.clone()).with_withdrawal(withdrawal)
            }
            None => Occurrences::new(store.clone(), ctx.clone()),
        },
        action_keys,
        sms_inbound: config.channels.sms.as_ref().and_then(|sms| {
            sms.inbound_url
                .as_ref()
                .map(|url| chime_http::sms_inbound::SmsInbound {
                    auth_token: sms.auth_token.clone(),
                    url: url.clone(),
                })
        }),
        feed: feed.clone(),
        auth: auth.authenticator,
        local_issuer: auth.local_issuer,
        metrics: metrics.clone(),
        ready,
        shutdown: shutdown.clone(),
        guard: Arc::new(chime_http::guard::Guard::new(
            config.limits.guard(tls.is_some()),
        )),
    });
    let addr = listener.local_addr()?;
    let web = if roles.contains(&Role::Web) {
        let public_base = config.auth.local_issuer_url(addr, tls.is_some());
        // The encrypted store: session tokens are sealed like every other secret.
        Some(web::routes(
            config,
            &state,
            &issuer,
            &public_base,
            store.clone(),
            ctx.clock.clone(),
        )?)
    } else {
        None
    };
    let app = chime_http::router_with(state, web);
    let https = tls.is_some();
    let server = tls::serve(listener, app, tls, shutdown.clone())?;
    tracing::info!(%addr, https, roles = ?config.roles, data_dir = %dir.display(), "chime is serving");
    Ok(Running {
        addr,
        shutdown,
        bus,
        feed,
        metrics,
        issuer,
        definition,
        retention: store,
        server,
        workers,
        _lock: lock,
    })
}
