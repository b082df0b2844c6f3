//! Operational pieces every Cordon role uses, kept apart so that roles never depend on each
//! other:
//!
//! - [`Metrics`]: the one Prometheus registry, with every exposed name in [`names`] and the
//!   closed label sets [`Stage`] and [`Dependency`] as types.
//! - [`retry()`]: retries an operation on a dependency until it succeeds or shutdown interrupts it
//!   ([`Interrupted`]); while it retries, nothing new is consumed (backpressure).
//! - [`watch_signals`]: SIGINT/SIGTERM start a graceful shutdown bounded by a deadline.
//! - [`spawn_kafka_metrics`]: keeps a Kafka client's `cordon_consumer_lag{role}` and
//!   `cordon_kafka_requests_total` current from librdkafka's statistics.
//! - [`Readiness`]: what `/readyz` asks beyond the database — brokers reachable, an index
//!   caught up once.
//!
//! Architecture invariant: no role logic lives here, and nothing here names a role crate.

mod kafka;
mod metrics;
mod readiness;
mod retry;
mod shutdown;

pub use kafka::{spawn_kafka_metrics, KafkaClient};
pub use metrics::{names, Dependency, Metrics, Stage};
pub use readiness::Readiness;
pub use retry::{retry, Interrupted};
pub use shutdown::watch_signals;
