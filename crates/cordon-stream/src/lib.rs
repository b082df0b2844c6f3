//! Kafka plumbing shared by Cordon's roles.
//!
//! - [`GroupConsumer`]: a consumer-group member with at-least-once offsets: auto-commit is on but
//!   offsets are only *stored* by [`GroupConsumer::store_offsets`] after a batch's effects are
//!   durable, so a crash re-delivers at most the batches in flight.
//! - [`AssignedReader`]: a consumer that reads partitions from offsets the caller keeps itself
//!   (the indexer keeps them in its index commits); it never commits to Kafka.
//! - [`Received`]: a consumed record, owned; no librdkafka type leaves this crate.
//! - [`Publisher`]: a producer whose [`Publisher::publish_all`] returns only when every record is
//!   acknowledged; [`Publisher::send_all`] hands records over in order and leaves waiting for the
//!   [`Acks`] to the caller, so it can prepare the next batch meanwhile. A record that can never
//!   be published (too large, invalid: [`StreamError::is_permanent`]) does not fail its batch: it
//!   is reported back as [`Refused`], so one record can never make a caller retry forever.
//! - [`Telemetry`]: what librdkafka's statistics say about each client — a consumer's lag,
//!   read from its own fetch state without asking the broker, and the requests sent by type.
//! - [`ensure_topics`]: creates missing topics.
//! - [`KafkaSecurity`]: TLS and SASL for every client; [`check_connection`] at start turns a
//!   wrong CA, refused credentials or an unreachable broker into one error naming the setting.
//!
//! Nothing here depends on a particular broker: it speaks the Kafka protocol through librdkafka.
//!
//! Architecture invariant: this is the only crate that names librdkafka; every other crate sees
//! the types above.

mod consume;
mod logs;
mod publish;
mod security;
mod telemetry;
mod topics;

pub use consume::{AssignedReader, GroupConsumer, Received};
pub use publish::{Acks, Publisher, Record};
pub use security::{
    check_connection, is_secret_property, KafkaSecurity, Properties, SaslMechanism,
    SecurityProtocol,
};
pub use telemetry::{ClientStats, Telemetry, STATISTICS_INTERVAL};
pub use topics::{ensure_topics, TopicSpec};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why a Kafka operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// librdkafka reported an error (a secret property's value in it printed `***`).
    #[error("kafka: {0}")]
    Kafka(KafkaError),
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
    /// The Kafka settings are incomplete or contradict each other.
    #[error("{0}")]
    Settings(String),
    /// The brokers could not be reached with these settings, checked at start.
    #[error("cannot connect to the Kafka brokers {brokers}: {cause} ({hint})")]
    Unreachable {
        /// `kafka.brokers`.
        brokers: String,
        /// What librdkafka reported last.
        cause: String,
        /// The settings to look at.
        hint: &'static str,
    },
}

impl From<KafkaError> for StreamError {
    /// librdkafka's configuration errors name the property and its value: the value of a
    /// secret property ([`is_secret_property`]) becomes `***`, in the description too.
    fn from(error: KafkaError) -> StreamError {
        StreamError::Kafka(match error {
            KafkaError::ClientConfig(result, description, key, value)
                if is_secret_property(&key) && !value.is_empty() =>
            {
                let redacted = cordon_secret::REDACTED.to_string();
                KafkaError::ClientConfig(
                    result,
                    description.replace(&value, &redacted),
                    key,
                    redacted,
                )
            }
            other => other,
        })
    }
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
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// How long a consumer's fetch may wait at the broker for new records, in milliseconds
    /// (librdkafka's `fetch.wait.max.ms`; `client` may override it).
    pub fetch_wait_max_ms: u64,
    /// How long a group member may go without a heartbeat before the group coordinator gives
    /// its partitions to the others, in milliseconds (`session.timeout.ms`).
    pub session_timeout_ms: u64,
    /// How often a group member's background thread sends heartbeats, in milliseconds
    /// (`heartbeat.interval.ms`).
    pub heartbeat_interval_ms: u64,
    /// Encryption and authentication.
    pub security: KafkaSecurity,
    /// Extra librdkafka settings applied to every client (timeouts, ...); they override
    /// Cordon's own, including `security`'s.
    pub client: Properties,
    /// Extra librdkafka settings of producers only, applied after `client`.
    pub producer: Properties,
    /// Extra librdkafka settings of consumers only, applied after `client`.
    pub consumer: Properties,
}

/// The fetch wait consumers use unless configured otherwise: librdkafka's and Kafka's 500 ms.
/// A Kafka broker answers a fetch as soon as a record arrives, so a long wait costs no latency
/// and keeps idle consumers from polling the broker. A broker that holds every fetch for its
/// whole wait when nothing is new (the local tansu broker does) puts up to this wait on every
/// hop of the pipeline: its local configuration sets a short wait instead (`scripts/run-local.sh`,
/// the tests) and pays for it in idle polling.
pub const DEFAULT_FETCH_WAIT_MAX_MS: u64 = 500;

/// Most bytes one fetch brings per partition, unless `client` says otherwise: 8 MiB instead of
/// librdkafka's 1 MiB, so a consumer that fell behind catches up in fewer, larger fetches (a
/// broker's cost per fetch can grow with the backlog; tansu's does). librdkafka's
/// `queued.max.messages.kbytes` still bounds what is buffered.
pub const MAX_PARTITION_FETCH_BYTES: &str = "8388608";

/// The group session timeout unless configured otherwise: 10 s instead of librdkafka's 45 s, so
/// a killed worker's partitions move to the others within seconds. Heartbeats come from
/// librdkafka's background thread, so a slow batch does not miss them (`max.poll.interval.ms`,
/// 5 minutes, bounds that); only a member cut off from the coordinator that long is dropped.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 10_000;

/// The heartbeat interval unless configured otherwise: a third of the session timeout, as Kafka
/// recommends.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 3_000;

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: String::new(),
            fetch_wait_max_ms: DEFAULT_FETCH_WAIT_MAX_MS,
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            security: KafkaSecurity::default(),
            client: Properties::default(),
            producer: Properties::default(),
            consumer: Properties::default(),
        }
    }
}

impl KafkaSettings {
    pub(crate) fn config(&self) -> ClientConfig {
        self.config_with(&[])
    }

    /// A client configuration with `defaults` that `client` may override.
    pub(crate) fn config_with(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        self.security.apply(&mut config);
        self.client.apply(&mut config);
        config
    }

    /// A producer's configuration: [`KafkaSettings::observed_config_with`] and `producer`.
    pub(crate) fn producer_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = self.observed_config_with(defaults);
        self.producer.apply(&mut config);
        config
    }

    /// The configuration of a client whose context reads its statistics
    /// ([`telemetry::Observed`]): [`KafkaSettings::config_with`] plus librdkafka's statistics
    /// every [`STATISTICS_INTERVAL`] (a client without that context would log them instead).
    pub(crate) fn observed_config_with(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let interval = STATISTICS_INTERVAL.as_millis().to_string();
        let mut all = vec![("statistics.interval.ms", interval.as_str())];
        all.extend_from_slice(defaults);
        self.config_with(&all)
    }

    /// A consumer's configuration: fetch and group session settings, then `consumer`. The
    /// caller's own settings (group, offsets) come after and win.
    pub(crate) fn consumer_config(&self) -> ClientConfig {
        let mut config = self.observed_config_with(&[
            ("fetch.wait.max.ms", &self.fetch_wait_max_ms.to_string()),
            ("max.partition.fetch.bytes", MAX_PARTITION_FETCH_BYTES),
            ("session.timeout.ms", &self.session_timeout_ms.to_string()),
            (
                "heartbeat.interval.ms",
                &self.heartbeat_interval_ms.to_string(),
            ),
        ]);
        self.consumer.apply(&mut config);
        config
    }
}
