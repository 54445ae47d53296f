//! The live inbox feed of a process: new in-app items, as they are committed, for the SSE
//! streams open in this process.
//!
//! Why per user: a single broadcast channel wakes every open stream for every item, and each
//! stream throws away what is not its user's. With a thousand streams and a burst of items
//! that is a thousand wake-ups per item (about 350,000 a second in the load test), so a
//! stream's latency grew with everyone else's traffic. Here each user with an open stream has
//! a channel of their own, found by a map lookup on send: an item wakes only its user's
//! streams, and a user without a stream costs one lookup.
//!
//! A user's channel is small ([`PER_USER`]): it only has to cover the gap between a commit and
//! the stream's next read. A stream that falls further behind is told it lagged and reloads
//! the inbox, which the store holds whole. Channels whose streams have all closed are removed
//! on the next send to that user, and swept when the map has doubled since the last sweep.
//!
//! [`InboxFeed::subscribe_all`] sees every item: the benchmark counts deliveries with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chime_core::UserId;
use chime_store::InboxItem;
use tokio::sync::broadcast;

/// Items buffered per user between a commit and the user's streams reading it.
pub const PER_USER: usize = 256;

/// Never sweep a map smaller than this.
const SWEEP_FLOOR: usize = 64;

/// New in-app notifications, as they are committed, for live subscribers in this process.
/// Cheap to clone: clones share the channels.
#[derive(Clone)]
pub struct InboxFeed {
    inner: Arc<Inner>,
}

struct Inner {
    all: broadcast::Sender<InboxItem>,
    users: Mutex<Users>,
}

struct Users {
    by_user: HashMap<UserId, broadcast::Sender<InboxItem>>,
    sweep_at: usize,
}

impl std::fmt::Debug for InboxFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxFeed").finish_non_exhaustive()
    }
}

impl InboxFeed {
    /// A feed whose every-item subscribers ([`InboxFeed::subscribe_all`]) may fall `capacity`
    /// items behind before they are told they lagged.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                all: broadcast::channel(capacity.max(1)).0,
                users: Mutex::new(Users {
                    by_user: HashMap::new(),
                    sweep_at: SWEEP_FLOOR,
                }),
            }),
        }
    }

    /// `user`'s new items from now on.
    pub fn subscribe(&self, user: &UserId) -> broadcast::Receiver<InboxItem> {
        let mut users = self.users();
        if let Some(tx) = users.by_user.get(user) {
            return tx.subscribe();
        }
        if users.by_user.len() >= users.sweep_at {
            users.by_user.retain(|_, tx| tx.receiver_count() > 0);
            users.sweep_at = (users.by_user.len() * 2).max(SWEEP_FLOOR);
        }
        let (tx, rx) = broadcast::channel(PER_USER);
        users.by_user.insert(user.clone(), tx);
        rx
    }

    /// Every user's new items from now on.
    pub fn subscribe_all(&self) -> broadcast::Receiver<InboxItem> {
        self.inner.all.subscribe()
    }

    /// Whether any stream in this process is open: when none is, there is nothing to send.
    pub fn has_subscribers(&self) -> bool {
        self.inner.all.receiver_count() > 0 || !self.users().by_user.is_empty()
    }

    /// Whether `user` has an open stream in this process.
    pub fn wants(&self, user: &UserId) -> bool {
        self.inner.all.receiver_count() > 0 || self.users().by_user.contains_key(user)
    }

    /// Sends `item` to its user's streams (and to every-item subscribers). No subscriber is
    /// not an error: the inbox has the item.
    pub fn send(&self, item: &InboxItem) {
        if self.inner.all.receiver_count() > 0 {
            let _ = self.inner.all.send(item.clone());
        }
        let mut users = self.users();
        if let Some(tx) = users.by_user.get(&item.user_id) {
            if tx.send(item.clone()).is_err() {
                // Every stream of this user has closed.
                users.by_user.remove(&item.user_id);
            }
        }
    }

    fn users(&self) -> std::sync::MutexGuard<'_, Users> {
        self.inner
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chime_core::{NotificationId, TaskId};
    use jiff::Timestamp;

    fn item(user: &str) -> InboxItem {
        InboxItem {
            id: NotificationId::new(),
            user_id: UserId::parse(user).unwrap(),
            task_id: TaskId::new(),
            task_name: "t".into(),
            due_at: Timestamp::UNIX_EPOCH,
            created_at: Timestamp::UNIX_EPOCH,
            read: false,
            silent: false,
        }
    }

    #[tokio::test]
    async fn a_users_stream_receives_only_that_users_items() {
        let feed = InboxFeed::new(16);
        let alice = UserId::parse("alice").unwrap();
        let mut rx = feed.subscribe(&alice);
        let bobs = item("bob");
        let alices = item("alice");
        feed.send(&bobs);
        feed.send(&alices);
        assert_eq!(rx.recv().await.unwrap().id, alices.id);
        assert!(rx.try_recv().is_err(), "bob's item reached alice's stream");
    }

    #[tokio::test]
    async fn every_item_subscribers_see_every_users_items() {
        let feed = InboxFeed::new(16);
        let mut all = feed.subscribe_all();
        feed.send(&item("alice"));
        feed.send(&item("bob"));
        assert_eq!(all.recv().await.unwrap().user_id.to_string(), "alice");
        assert_eq!(all.recv().await.unwrap().user_id.to_string(), "bob");
    }

    #[test]
    fn a_user_whose_streams_closed_is_forgotten_on_the_next_send() {
        let feed = InboxFeed::new(16);
        let alice = UserId::parse("alice").unwrap();
        let rx = feed.subscribe(&alice);
        assert!(feed.wants(&alice));
        drop(rx);
        feed.send(&item("alice"));
        assert!(!feed.wants(&alice));
        assert!(!feed.has_subscribers());
    }

    #[test]
    fn closed_channels_are_swept_when_the_map_doubles() {
        let feed = InboxFeed::new(16);
        for i in 0..SWEEP_FLOOR {
            drop(feed.subscribe(&UserId::parse(&format!("u{i}")).unwrap()));
        }
        let kept = feed.subscribe(&UserId::parse("kept").unwrap());
        assert_eq!(
            feed.users().by_user.len(),
            1,
            "closed channels were not swept"
        );
        drop(kept);
    }
}
