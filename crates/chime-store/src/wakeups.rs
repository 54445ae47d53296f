//! Wake-ups from other processes, for the adapters several processes share (PostgreSQL,
//! MongoDB): the relay's outbox signal and each delivery channel's signal, and the one
//! listener per store that wakes them when another process wrote (PostgreSQL's `LISTEN`,
//! MongoDB's change streams). One place, so that both adapters start the listener the same
//! way (once, on the first signal asked for, stopped with the last clone of the store) and
//! wake the same things.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};

use chime_core::event::Channel;
use tokio::sync::{oneshot, Notify};

/// A store's signals and its listener's stop switch; clones share them.
#[derive(Clone)]
pub(crate) struct Wakers {
    outbox: Arc<Notify>,
    /// Per delivery channel: woken when another process made one of its deliveries due.
    deliveries: Arc<HashMap<Channel, Arc<Notify>>>,
    /// Set once the listener runs; dropping the last clone stops it.
    listening: Arc<OnceLock<oneshot::Sender<()>>>,
}

impl Wakers {
    pub(crate) fn new() -> Self {
        Self {
            outbox: Arc::new(Notify::new()),
            deliveries: Arc::new(
                Channel::ALL
                    .into_iter()
                    .map(|c| (c, Arc::new(Notify::new())))
                    .collect(),
            ),
            listening: Arc::new(OnceLock::new()),
        }
    }

    /// Wakes this process's relay after a commit that wrote events.
    pub(crate) fn wrote_events(&self, wrote: bool) {
        if wrote {
            self.outbox.notify_one();
        }
    }

    /// The relay's signal, with the listener started by `listen`.
    pub(crate) fn outbox<F, L>(&self, listen: L) -> Arc<Notify>
    where
        L: FnOnce(Signals, oneshot::Receiver<()>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        self.listen(listen);
        self.outbox.clone()
    }

    /// `channel`'s workers' signal, with the listener started by `listen`.
    pub(crate) fn delivery<F, L>(&self, channel: Channel, listen: L) -> Option<Arc<Notify>>
    where
        L: FnOnce(Signals, oneshot::Receiver<()>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        self.listen(listen);
        self.deliveries.get(&channel).cloned()
    }

    /// Spawns the listener `listen` makes, once (it needs a Tokio runtime).
    fn listen<F, L>(&self, listen: L)
    where
        L: FnOnce(Signals, oneshot::Receiver<()>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        self.listening.get_or_init(|| {
            let (stop, stopped) = oneshot::channel();
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(listen(
                        Signals {
                            outbox: Arc::downgrade(&self.outbox),
                            deliveries: Arc::downgrade(&self.deliveries),
                        },
                        stopped,
                    ));
                }
                Err(_) => tracing::warn!(
                    "the store's signals were asked for outside a Tokio runtime: other \
                     processes' writes will not wake this one"
                ),
            }
            stop
        });
    }
}

/// What a listener wakes; weak, so that it stops with the store.
pub(crate) struct Signals {
    outbox: Weak<Notify>,
    deliveries: Weak<HashMap<Channel, Arc<Notify>>>,
}

/// What another process's write is about.
pub(crate) enum Wakeup<'a> {
    /// Events in the outbox.
    Outbox,
    /// A delivery of the channel of this name made due.
    Channel(&'a str),
    /// Whatever was committed while the listener was not listening.
    Everything,
}

impl Signals {
    /// Wakes what `wakeup` is about. False once the store is gone: the listener stops.
    pub(crate) fn wake(&self, wakeup: Wakeup<'_>) -> bool {
        let (Some(outbox), Some(deliveries)) = (self.outbox.upgrade(), self.deliveries.upgrade())
        else {
            return false;
        };
        match wakeup {
            Wakeup::Outbox => outbox.notify_one(),
            Wakeup::Channel(name) => {
                if let Some(signal) = Channel::parse(name).and_then(|c| deliveries.get(&c)) {
                    signal.notify_one();
                }
            }
            Wakeup::Everything => {
                outbox.notify_one();
                deliveries.values().for_each(|d| d.notify_one());
            }
        }
        true
    }
}
