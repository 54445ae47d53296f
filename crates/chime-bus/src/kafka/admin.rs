//! Topic administration: creating the design's topics (at start-up, or on first use) and
//! waiting until the broker's metadata shows a leader for every partition, and the metadata
//! request behind readiness. Kept apart from publishing and consuming, which only need
//! [`KafkaBus::ensure_topics`] from here.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;

use super::{blocking, distinct, failed, failed_because, KafkaBus};
use crate::Result;

/// The topic settings Chime asks for besides partitions and replicas: with three replicas or
/// more, `min.insync.replicas = 2`, so that a write the producer saw acknowledged (`acks=all`)
/// is on two brokers and losing one loses no event; Apache Kafka's own default is 1. With the
/// broker's default replication (`-1`) the broker's settings apply (set it there).
fn topic_configs(replication_factor: i32) -> Vec<(&'static str, &'static str)> {
    if replication_factor >= 3 {
        vec![("min.insync.replicas", "2")]
    } else {
        Vec::new()
    }
}

impl KafkaBus {
    /// Creates `topics` with [`KafkaOptions::partitions`] partitions and
    /// [`KafkaOptions::replication_factor`], unless they exist, then waits until the broker's
    /// metadata shows every one of them with a leader for each partition. Safe to call on
    /// every start of every instance.
    ///
    /// [`KafkaOptions::partitions`]: super::KafkaOptions::partitions
    /// [`KafkaOptions::replication_factor`]: super::KafkaOptions::replication_factor
    pub async fn create_topics(&self, topics: &[&str]) -> Result<()> {
        let topics = distinct(topics);
        if topics.is_empty() {
            return Ok(());
        }
        let configs = topic_configs(self.options.replication_factor);
        let named: Vec<String> = topics.iter().map(|t| self.options.named(t)).collect();
        let new: Vec<NewTopic<'_>> = named
            .iter()
            .map(|t| {
                configs.iter().fold(
                    NewTopic::new(
                        t,
                        self.options.partitions,
                        TopicReplication::Fixed(self.options.replication_factor),
                    ),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        let admin_options = AdminOptions::new()
            .request_timeout(Some(self.options.request_timeout))
            .operation_timeout(Some(self.options.request_timeout));
        let results = self
            .admin
            .create_topics(&new, &admin_options)
            .await
            .map_err(|e| failed("cannot create topics", e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(failed(
                        format!("cannot create topic `{topic}`"),
                        KafkaError::AdminOp(code),
                    ))
                }
            }
        }
        self.await_topics(&named.iter().map(String::as_str).collect::<Vec<_>>())
            .await?;
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(topics.iter().map(|t| (*t).to_owned()));
        Ok(())
    }

    /// Waits until the metadata shows `topics` with a leader for every partition. A broker
    /// announces no such event, so this asks again, with a growing pause, until
    /// [`KafkaOptions::request_timeout`].
    ///
    /// [`KafkaOptions::request_timeout`]: super::KafkaOptions::request_timeout
    async fn await_topics(&self, topics: &[&str]) -> Result<()> {
        let deadline = Instant::now() + self.options.request_timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let mut missing = Vec::new();
            for topic in topics {
                if !self.topic_is_ready(topic).await? {
                    missing.push(*topic);
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed_because(format!(
                    "topics {missing:?} were created but have no leader after {:?}",
                    self.options.request_timeout
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn topic_is_ready(&self, topic: &str) -> Result<bool> {
        let producer = self.producer.clone();
        let timeout = self.options.request_timeout;
        let topic = topic.to_owned();
        blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| failed(format!("cannot read the metadata of `{topic}`"), e))?;
            Ok(metadata.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions()
                        .iter()
                        .all(|p| p.error().is_none() && p.leader() >= 0)
            }))
        })
        .await
    }

    /// One metadata request: whether a broker answers, for readiness.
    pub async fn ping(&self) -> Result<()> {
        let producer = self.producer.clone();
        let timeout = self.options.request_timeout;
        blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| failed("no broker answers a metadata request", e))
        })
        .await
    }

    pub(super) async fn ensure_topics(&self, topics: &[&str]) -> Result<()> {
        if !self.options.create_topics_on_use {
            return Ok(());
        }
        let missing: Vec<&str> = {
            let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
            topics
                .iter()
                .copied()
                .filter(|t| !ready.contains(*t))
                .collect()
        };
        self.create_topics(&missing).await
    }
}

#[cfg(test)]
mod tests {
    use super::topic_configs;

    #[test]
    fn three_replicas_or_more_need_two_in_sync_and_fewer_ask_nothing() {
        assert_eq!(topic_configs(3), [("min.insync.replicas", "2")]);
        assert_eq!(topic_configs(5), [("min.insync.replicas", "2")]);
        assert!(topic_configs(1).is_empty());
        assert!(topic_configs(2).is_empty());
        assert!(topic_configs(-1).is_empty());
    }
}
