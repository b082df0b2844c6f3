//! Consuming: a consumer-group member whose offsets are stored only after a batch's effects are
//! durable, and a reader of partitions from offsets the caller keeps.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::telemetry::Observed;
use crate::{KafkaSettings, StreamError, Telemetry};

/// One record as received, owned: where it came from and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its payload; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// Its headers in order (a header without a value has an empty one).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Its timestamp in milliseconds since the epoch (the producer's create time or the
    /// broker's append time), if it has one.
    pub timestamp_ms: Option<i64>,
}

impl Received {
    fn of(message: &BorrowedMessage<'_>) -> Received {
        Received {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
            timestamp_ms: message.timestamp().to_millis(),
        }
    }

    /// The payload, if any.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }
}

/// The next record of `consumer`. Lost broker connections are not errors to the caller:
/// librdkafka reconnects by itself, so they are logged (repeats held back) and the wait goes on;
/// `/readyz` reports the brokers meanwhile. Every other error is returned.
async fn next_record(consumer: &StreamConsumer<Observed>) -> Result<Received, StreamError> {
    loop {
        match consumer.recv().await {
            Ok(message) => return Ok(Received::of(&message)),
            Err(KafkaError::MessageConsumption(
                code @ (RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve),
            )) => consumer.context().connection_lost(code),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A consumer-group member with at-least-once offsets: auto-commit is on, but an offset is only
/// *stored* by [`GroupConsumer::store_offsets`] once the batch's effects are durable, so a crash
/// re-delivers at most the batches in flight.
pub struct GroupConsumer {
    consumer: StreamConsumer<Observed>,
    telemetry: Arc<Telemetry>,
}

impl GroupConsumer {
    /// A member of `group_id` subscribed to `topics`.
    pub fn new(
        settings: &KafkaSettings,
        group_id: &str,
        topics: &[&str],
    ) -> Result<GroupConsumer, StreamError> {
        let telemetry = Arc::new(Telemetry::default());
        let consumer: StreamConsumer<Observed> = settings
            .consumer_config()
            .set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create_with_context(Observed::new(Arc::clone(&telemetry)))?;
        consumer.subscribe(topics)?;
        Ok(GroupConsumer {
            consumer,
            telemetry,
        })
    }

    /// The next record.
    pub async fn recv(&self) -> Result<Received, StreamError> {
        next_record(&self.consumer).await
    }

    /// Receives up to `max` records: waits up to `idle` for the first, then at most `linger`
    /// for more. Returns an empty batch when nothing arrived within `idle`.
    pub async fn next_batch(
        &self,
        max: usize,
        linger: Duration,
        idle: Duration,
    ) -> Result<Vec<Received>, StreamError> {
        let mut batch = Vec::new();
        match tokio::time::timeout(idle, self.recv()).await {
            Err(_) => return Ok(batch),
            Ok(message) => batch.push(message?),
        }
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Err(_) => break,
                Ok(message) => batch.push(message?),
            }
        }
        Ok(batch)
    }

    /// Stores, for each partition in `batch`, the offset after its last record, to be committed
    /// by the next auto-commit. A partition revoked in the meantime is skipped: its new owner
    /// will re-deliver those records, and every effect is idempotent.
    pub fn store_offsets(&self, batch: &[Received]) -> Result<(), StreamError> {
        let mut last: HashMap<(&str, i32), i64> = HashMap::new();
        for m in batch {
            let slot = last
                .entry((m.topic.as_str(), m.partition))
                .or_insert(m.offset);
            *slot = (*slot).max(m.offset);
        }
        for ((topic, partition), offset) in last {
            match self.consumer.store_offset(topic, partition, offset) {
                Ok(()) => {}
                Err(KafkaError::StoreOffset(RDKafkaErrorCode::State)) => {
                    tracing::info!(
                        topic,
                        partition,
                        "partition revoked before its offset was stored"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Its statistics: lag and requests sent.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        Arc::clone(&self.telemetry)
    }

    /// Commits the stored offsets now and waits for the broker (at shutdown).
    pub fn commit_stored(&self) -> Result<(), StreamError> {
        Ok(self.consumer.commit_consumer_state(CommitMode::Sync)?)
    }
}

/// A consumer that reads every partition of its topics from offsets the caller keeps (the
/// indexer keeps them in its index commits); it never commits offsets to Kafka.
pub struct AssignedReader {
    consumer: StreamConsumer<Observed>,
    telemetry: Arc<Telemetry>,
}

impl AssignedReader {
    /// Reads every partition of `topics` from the given offsets (the next offset to read;
    /// partitions not listed start at the beginning).
    pub fn new(
        settings: &KafkaSettings,
        topics: &[&str],
        offsets: &BTreeMap<String, BTreeMap<i32, i64>>,
    ) -> Result<AssignedReader, StreamError> {
        let telemetry = Arc::new(Telemetry::default());
        let consumer: StreamConsumer<Observed> = settings
            .consumer_config()
            .set("group.id", "cordon-indexer")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create_with_context(Observed::new(Arc::clone(&telemetry)))?;
        let mut assignment = TopicPartitionList::new();
        for topic in topics {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == *topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if partitions.is_empty() {
                return Err(StreamError::NoSuchTopic(topic.to_string()));
            }
            for p in partitions {
                let offset = offsets
                    .get(*topic)
                    .and_then(|m| m.get(&p))
                    .map(|o| Offset::Offset(*o))
                    .unwrap_or(Offset::Beginning);
                assignment.add_partition_offset(topic, p, offset)?;
            }
        }
        consumer.assign(&assignment)?;
        Ok(AssignedReader {
            consumer,
            telemetry,
        })
    }

    /// The next record.
    pub async fn recv(&self) -> Result<Received, StreamError> {
        next_record(&self.consumer).await
    }

    /// Its statistics: lag and requests sent.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        Arc::clone(&self.telemetry)
    }
}
