//! Kafka plumbing shared by Cordon's roles.
//!
//! - [`group_consumer`]: a consumer-group member with at-least-once offsets: auto-commit is on but
//!   offsets are only *stored* by [`store_offsets`] after a batch's effects are durable, so a crash
//!   re-delivers at most the batches in flight.
//! - [`assigned_reader`]: a consumer that reads partitions from offsets the caller keeps itself
//!   (the indexer keeps them in its index commits); it never commits to Kafka.
//! - [`Publisher`]: a producer whose [`Publisher::publish_all`] returns only when every record is
//!   acknowledged; [`Publisher::send_all`] hands records over in order and leaves waiting for the
//!   [`Acks`] to the caller, so it can prepare the next batch meanwhile. A record that can never
//!   be published (too large, invalid: [`StreamError::is_permanent`]) does not fail its batch: it
//!   is reported back as [`Refused`], so one record can never make a caller retry forever.
//! - [`ensure_topics`]: creates missing topics.
//!
//! Nothing here depends on a particular broker: it speaks the Kafka protocol through librdkafka.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

pub use rdkafka;

/// Why a Kafka operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// librdkafka reported an error.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A topic could not be created.
    #[error("creating topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// A topic the caller needs does not exist.
    #[error("topic {0} does not exist")]
    NoSuchTopic(String),
}

impl StreamError {
    /// Whether publishing the same record again can never succeed: it is larger than the
    /// producer's or the broker's limit, or the broker finds the record invalid. Everything else
    /// (timeouts, corrupt transfers, unreachable or restarting brokers, full queues) is worth
    /// retrying. Keep the producer's `message.max.bytes` at most the topics' limit, so that size
    /// is judged per record here and not per batch by the broker.
    pub fn is_permanent(&self) -> bool {
        let code = match self {
            StreamError::Kafka(e) => e.rdkafka_error_code(),
            _ => None,
        };
        matches!(
            code,
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::InvalidMessageSize
                    | RDKafkaErrorCode::MessageBatchTooLarge
                    | RDKafkaErrorCode::InvalidRecord
                    | RDKafkaErrorCode::InvalidTimestamp
            )
        )
    }
}

/// A record the client or the broker refused for good ([`StreamError::is_permanent`]): the
/// caller sets it aside (counts it, dead-letters a bounded note of it) and the rest flows on.
#[derive(Debug)]
pub struct Refused {
    /// The record's position in the slice that was handed over.
    pub index: usize,
    /// Why it was refused.
    pub error: StreamError,
}

/// How to reach the brokers.
#[derive(Debug, Clone, Default)]
pub struct KafkaSettings {
    /// Bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// Extra librdkafka settings applied to every client (security, timeouts, ...).
    pub client: BTreeMap<String, String>,
}

/// How long a consumer's fetch may wait at the broker for new records, in milliseconds, unless
/// `client` says otherwise. librdkafka's default of 500 ms puts up to half a second on every hop
/// of the pipeline with a broker that holds a fetch for its whole wait when nothing is new
/// (tansu does); this bounds each hop's idle wait.
pub const FETCH_WAIT_MAX_MS: &str = "20";

/// Most bytes one fetch brings per partition, unless `client` says otherwise: 8 MiB instead of
/// librdkafka's 1 MiB, so a consumer that fell behind catches up in fewer, larger fetches (a
/// broker's cost per fetch can grow with the backlog; tansu's does). librdkafka's
/// `queued.max.messages.kbytes` still bounds what is buffered.
pub const MAX_PARTITION_FETCH_BYTES: &str = "8388608";

impl KafkaSettings {
    fn config(&self) -> ClientConfig {
        self.config_with(&[])
    }

    /// A client configuration with `defaults` that `client` may override.
    fn config_with(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.client {
            config.set(k, v);
        }
        config
    }

    fn consumer_config(&self) -> ClientConfig {
        self.config_with(&[
            ("fetch.wait.max.ms", FETCH_WAIT_MAX_MS),
            ("max.partition.fetch.bytes", MAX_PARTITION_FETCH_BYTES),
        ])
    }
}

/// A topic to create if it is missing.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Log compaction (keep the latest record per key) instead of deletion by age.
    pub compacted: bool,
}

/// Creates the topics that do not exist yet.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    specs: &[TopicSpec],
) -> Result<(), StreamError> {
    let admin: AdminClient<DefaultClientContext> = settings.config().create()?;
    let topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|s| {
            let t = NewTopic::new(&s.name, s.partitions, TopicReplication::Fixed(1));
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

/// A consumer-group member subscribed to `topics`, with offsets stored only by [`store_offsets`].
pub fn group_consumer(
    settings: &KafkaSettings,
    group_id: &str,
    topics: &[&str],
) -> Result<StreamConsumer, StreamError> {
    let consumer: StreamConsumer = settings
        .consumer_config()
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create()?;
    consumer.subscribe(topics)?;
    Ok(consumer)
}

/// A consumer that reads every partition of `topics` from the given offsets (next offset to read;
/// partitions not listed start at the beginning). It never commits offsets to Kafka.
pub fn assigned_reader(
    settings: &KafkaSettings,
    topics: &[&str],
    offsets: &BTreeMap<String, BTreeMap<i32, i64>>,
) -> Result<StreamConsumer, StreamError> {
    let consumer: StreamConsumer = settings
        .consumer_config()
        .set("group.id", "cordon-indexer")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
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
    Ok(consumer)
}

/// Receives up to `max` messages: waits up to `idle` for the first, then at most `linger` for
/// more. Returns an empty batch when nothing arrived within `idle`.
pub async fn next_batch(
    consumer: &StreamConsumer,
    max: usize,
    linger: Duration,
    idle: Duration,
) -> Result<Vec<OwnedMessage>, StreamError> {
    let mut batch = Vec::new();
    match tokio::time::timeout(idle, consumer.recv()).await {
        Err(_) => return Ok(batch),
        Ok(message) => batch.push(message?.detach()),
    }
    let deadline = tokio::time::Instant::now() + linger;
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(message) => batch.push(message?.detach()),
        }
    }
    Ok(batch)
}

/// Stores, for each partition in `batch`, the offset after its last message, to be committed by
/// the next auto-commit. A partition revoked in the meantime is skipped: its new owner will
/// re-deliver those messages, and every effect is idempotent.
pub fn store_offsets(consumer: &StreamConsumer, batch: &[OwnedMessage]) -> Result<(), StreamError> {
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for m in batch {
        let slot = last.entry((m.topic(), m.partition())).or_insert(m.offset());
        *slot = (*slot).max(m.offset());
    }
    for ((topic, partition), offset) in last {
        match consumer.store_offset(topic, partition, offset) {
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

/// Total lag (high watermark minus position) over the consumer's assigned partitions. Blocking:
/// call it from a blocking task.
pub fn lag(consumer: &StreamConsumer, timeout: Duration) -> Result<i64, StreamError> {
    let positions = consumer.position()?;
    let mut total = 0;
    for element in positions.elements() {
        let (_, high) = consumer.fetch_watermarks(element.topic(), element.partition(), timeout)?;
        let position = match element.offset() {
            Offset::Offset(o) => o,
            _ => continue,
        };
        total += (high - position).max(0);
    }
    Ok(total)
}

/// The broker's acknowledgements of records handed over by [`Publisher::send_all`].
#[must_use = "records are only durable once their acknowledgements arrived"]
pub struct Acks {
    pending: Vec<(usize, DeliveryFuture)>,
    refused: Vec<Refused>,
}

impl Acks {
    /// Waits until every record is acknowledged or refused for good; the refused ones come back
    /// in order. Any other failure is the error: the caller publishes the records again.
    pub async fn wait(self) -> Result<Vec<Refused>, StreamError> {
        let (indexes, futures): (Vec<usize>, Vec<DeliveryFuture>) =
            self.pending.into_iter().unzip();
        let results = try_join_all(futures)
            .await
            .map_err(|_| KafkaError::Canceled)?;
        let mut refused = self.refused;
        for (index, result) in indexes.into_iter().zip(results) {
            if let Err((e, _)) = result {
                let error = StreamError::from(e);
                if !error.is_permanent() {
                    return Err(error);
                }
                refused.push(Refused { index, error });
            }
        }
        refused.sort_by_key(|r| r.index);
        Ok(refused)
    }
}

/// One record to publish.
#[derive(Debug, Clone)]
pub struct Record {
    /// Destination topic.
    pub topic: String,
    /// Partitioning key.
    pub key: Option<String>,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// An acknowledged producer.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
}

impl Publisher {
    /// A producer that waits for all in-sync replicas, gives up on a record after
    /// `delivery_timeout` (the caller then retries), and refuses records over
    /// `max_message_bytes` (librdkafka's `message.max.bytes`; keep it at most the broker's
    /// limit, so that an oversized record is refused here, as [`Refused`], not by the broker).
    pub fn new(
        settings: &KafkaSettings,
        delivery_timeout: Duration,
        max_message_bytes: usize,
    ) -> Result<Publisher, StreamError> {
        let producer: FutureProducer = settings
            .config_with(&[("message.max.bytes", &max_message_bytes.to_string())])
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            )
            .create()?;
        Ok(Publisher { producer })
    }

    /// Publishes every record and returns once all are acknowledged or refused for good (the
    /// refused ones are returned), or the first other error.
    pub async fn publish_all(&self, records: &[Record]) -> Result<Vec<Refused>, StreamError> {
        self.send_all(records).await?.wait().await
    }

    /// Hands every record to the producer in order and returns without waiting for the broker:
    /// [`Acks::wait`] does. Waits only while the producer's queue is full. A record the client
    /// refuses for good at once (over `message.max.bytes`) is reported by [`Acks::wait`].
    pub async fn send_all(&self, records: &[Record]) -> Result<Acks, StreamError> {
        let mut pending = Vec::with_capacity(records.len());
        let mut refused = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &record.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut future_record = FutureRecord::to(&record.topic)
                .payload(&record.payload)
                .headers(headers);
            if let Some(key) = &record.key {
                future_record = future_record.key(key);
            }
            loop {
                match self.producer.send_result(future_record) {
                    Ok(delivery) => {
                        pending.push((index, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        future_record = r;
                        self.producer.poll(Duration::from_millis(10));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        let error = StreamError::from(e);
                        if !error.is_permanent() {
                            return Err(error);
                        }
                        refused.push(Refused { index, error });
                        break;
                    }
                }
            }
        }
        Ok(Acks { pending, refused })
    }

    /// Waits up to `timeout` for queued records to be delivered.
    pub fn flush(&self, timeout: Duration) -> Result<(), StreamError> {
        Ok(self.producer.flush(timeout)?)
    }
}
