//! Acknowledged publishing.

use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::telemetry::Observed;
use crate::{KafkaSettings, Refused, StreamError, Telemetry};

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
    producer: FutureProducer<Observed>,
    telemetry: Arc<Telemetry>,
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
        let telemetry = Arc::new(Telemetry::default());
        let producer: FutureProducer<Observed> = settings
            .producer_config(&[
                ("message.max.bytes", &max_message_bytes.to_string()),
                ("compression.type", "lz4"),
                ("linger.ms", "5"),
                (
                    "message.timeout.ms",
                    &delivery_timeout.as_millis().to_string(),
                ),
            ])
            // Not configurable: a verdict or a decision is published only once every in-sync
            // replica has it.
            .set("acks", "all")
            .create_with_context(Observed::new(Arc::clone(&telemetry)))?;
        Ok(Publisher {
            producer,
            telemetry,
        })
    }

    /// Its statistics: requests sent.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        Arc::clone(&self.telemetry)
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
}
