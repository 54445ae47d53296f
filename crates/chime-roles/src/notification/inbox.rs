//! The in-app inbox as a user reads it: their notifications page by page with the unread
//! count, and marking them read. The notification role's consumer writes the items (see
//! [`super`]); this service only reads and marks them, so it runs wherever the API does.

use std::sync::Arc;

use chime_core::{NotificationId, UserId};
use chime_store::{DeliveryStore, InboxItem};

use super::error::Result;

/// One page of a user's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxPage {
    /// Newest first.
    pub items: Vec<InboxItem>,
    /// Unread items in the whole inbox, not only on this page.
    pub unread: u64,
}

#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn DeliveryStore>,
}

impl Inbox {
    pub fn new(store: Arc<dyn DeliveryStore>) -> Self {
        Self { store }
    }

    /// `user`'s items older than `before` (an item id), at most `limit`, and the unread count.
    pub async fn page(
        &self,
        user: &UserId,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<InboxPage> {
        let items = self.store.inbox(user, before, limit).await?;
        let unread = self.store.unread_count(user).await?;
        Ok(InboxPage { items, unread })
    }

    /// Marks `user`'s items `ids` read (ids of other users' items change nothing); returns how
    /// many were unread.
    pub async fn mark_read(&self, user: &UserId, ids: &[NotificationId]) -> Result<u64> {
        Ok(self.store.mark_read(user, ids).await?)
    }
}
