//! Kafka client metrics from librdkafka's statistics: `cordon_consumer_lag{role}` and
//! `cordon_kafka_requests_total{role, client, request}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cordon_stream::Telemetry;
use tokio_util::sync::CancellationToken;

use crate::Metrics;

/// The kind of a role's Kafka client (the `client` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaClient {
    /// A consumer (a group member or the indexer's reader).
    Consumer,
    /// A producer.
    Producer,
}

impl KafkaClient {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaClient::Consumer => "consumer",
            KafkaClient::Producer => "producer",
        }
    }
}

/// Every second until `shutdown`, copies a client's latest statistics (at most
/// [`cordon_stream::STATISTICS_INTERVAL`] old) into the metrics: a consumer's lag into
/// `cordon_consumer_lag{role}`, the requests it sent since the last look into
/// `cordon_kafka_requests_total{role, client, request}`.
pub fn spawn_kafka_metrics(
    metrics: &Metrics,
    role: &'static str,
    client: KafkaClient,
    telemetry: Arc<Telemetry>,
    shutdown: CancellationToken,
) {
    let metrics = metrics.clone();
    tokio::spawn(async move {
        let lag = metrics.consumer_lag.with_label_values(&[role]);
        let mut counted: HashMap<String, u64> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let latest = telemetry.latest();
            if let (KafkaClient::Consumer, Some(behind)) = (client, latest.lag) {
                lag.set(behind);
            }
            for (request, sent) in latest.requests {
                let before = counted.entry(request.clone()).or_default();
                if sent > *before {
                    metrics
                        .kafka_requests
                        .with_label_values(&[role, client.as_str(), &request])
                        .inc_by(sent - *before);
                    *before = sent;
                }
            }
        }
    });
}
