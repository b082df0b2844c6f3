//! Topic set-up.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::{KafkaSettings, StreamError};

/// A topic to create if it is missing.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Copies of each partition the brokers keep.
    pub replication_factor: i32,
    /// Copies that must have a record before it is acknowledged (Cordon's producers ask for
    /// `acks=all`), the topic's `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// Log compaction (keep the latest record per key) instead of deletion by age.
    pub compacted: bool,
}

/// Creates the topics that do not exist yet; an existing topic is left as it is.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    specs: &[TopicSpec],
) -> Result<(), StreamError> {
    let admin: AdminClient<DefaultClientContext> = settings.config().create()?;
    let min_insync: Vec<String> = specs
        .iter()
        .map(|s| s.min_insync_replicas.to_string())
        .collect();
    let topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&min_insync)
        .map(|(s, min_insync)| {
            let t = NewTopic::new(
                &s.name,
                s.partitions,
                TopicReplication::Fixed(s.replication_factor),
            )
            .set("min.insync.replicas", min_insync);
            if s.compacted {
                t.set("cleanup.policy", "compact")
            } else {
                t
            }
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&topics, &opts).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(StreamError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}
