//! [`EncryptedBus`]: the bus port, decorated. Payloads are the events' JSON; the personal data
//! in them (the task's `notify.email` and `notify.sms`, carried by `task_created`,
//! `task_updated` and `execute_task`) is encrypted on publish and decrypted on poll, so the log
//! (or a Kafka topic, with its replicas and retention) only ever holds ciphertext.
//!
//! The rest of the event stays readable (ids, instants, the task's name), so keys, routing and
//! debugging tools keep working. A payload that is not JSON, or has no such field, passes
//! through byte for byte. Decryption happens after the inner poll returned, with no await in
//! between, so `poll` stays cancel-safe.

use std::sync::Arc;

use async_trait::async_trait;
use chime_bus::{Bus, Message, Record, Result, Subscription};

use crate::fields::EVENT_PAYLOAD;
use crate::Keyring;

fn bus_error(e: crate::Error) -> chime_bus::Error {
    chime_bus::Error::Storage(Box::new(e))
}

/// A [`Bus`] that encrypts personal data in payloads before they reach `inner`.
#[derive(Clone)]
pub struct EncryptedBus {
    inner: Arc<dyn Bus>,
    keys: Arc<Keyring>,
}

impl std::fmt::Debug for EncryptedBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedBus")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl EncryptedBus {
    pub fn new(inner: Arc<dyn Bus>, keys: Arc<Keyring>) -> Self {
        Self { inner, keys }
    }
}

#[async_trait]
impl Bus for EncryptedBus {
    async fn publish(&self, mut messages: Vec<Message>) -> Result<()> {
        for message in &mut messages {
            message.payload = EVENT_PAYLOAD
                .encrypt_bytes(&self.keys, std::mem::take(&mut message.payload))
                .map_err(bus_error)?;
        }
        self.inner.publish(messages).await
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        let inner = self.inner.subscribe(group, topics).await?;
        Ok(Box::new(DecryptingSubscription {
            inner,
            keys: self.keys.clone(),
        }))
    }

    async fn subscribe_live(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        let inner = self.inner.subscribe_live(group, topics).await?;
        Ok(Box::new(DecryptingSubscription {
            inner,
            keys: self.keys.clone(),
        }))
    }
}

struct DecryptingSubscription {
    inner: Box<dyn Subscription>,
    keys: Arc<Keyring>,
}

#[async_trait]
impl Subscription for DecryptingSubscription {
    async fn poll(&mut self, max: usize) -> Result<Vec<Record>> {
        let mut records = self.inner.poll(max).await?;
        for record in &mut records {
            record.payload = EVENT_PAYLOAD
                .decrypt_bytes(&self.keys, std::mem::take(&mut record.payload))
                .map_err(bus_error)?;
        }
        Ok(records)
    }

    async fn commit(&mut self, records: &[Record]) -> Result<()> {
        self.inner.commit(records).await
    }

    async fn lag(&mut self) -> Result<Option<u64>> {
        self.inner.lag().await
    }
}
