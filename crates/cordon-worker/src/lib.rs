//! Cordon's classifying roles.
//!
//! - The **worker** ([`Worker`], `worker.rs`): content topic → decode (`worker.rs`, dead letters
//!   in `dead_letter.rs`) → newest versions → fast model and policy (`classify.rs`) → self-fence
//!   (`fence.rs`) → verdicts, context requests and dead letters handed to the producer → the
//!   [`InOrder`] finisher (`finisher.rs`): acknowledgements, review cases, offsets.
//! - The **context role** ([`ContextWorker`], `context.rs`): context topic → stale and human
//!   checks → encoder and head → policy → verdicts topic + review queue.
//! - The **model slots** (`model.rs`, `reload.rs`): the model in service, swapped by a hot
//!   reload between batches only after the candidate passed its smoke inference and canaries.
//!
//! Architecture invariants:
//! - No offset is stored before every effect of its batch and of every earlier batch is
//!   acknowledged or durable (`finisher.rs`, with its own unit tests).
//! - After a failed publication, that batch and every later one are published again in order
//!   before anything new is handed over (`finisher.rs`).
//! - A person's decision is never overwritten by a model verdict of the same item version
//!   (`worker.rs` re-publishes the human verdict; `context.rs` skips decided versions).
//! - A stalled worker publishes nothing a newer version overtook (`fence.rs`).
//!
//! API boundary: the composition root builds a [`WorkerSettings`] or [`ContextSettings`] from the
//! configuration sections defined here ([`WorkerConfig`], [`ModelConfig`], [`ContextConfig`],
//! [`PolicyConfig`]) and starts the role with its consumer, producer and store.

mod classify;
mod context;
mod dead_letter;
mod fence;
mod finisher;
mod model;
mod reload;
mod settings;
mod worker;

use std::future::Future;
use std::sync::Arc;

use anyhow::Result;
use cordon_ops::{spawn_kafka_metrics, KafkaClient, Metrics, Readiness};
use cordon_review::ReviewStore;
use cordon_stream::{GroupConsumer, KafkaSettings, Publisher};
use tokio_util::sync::CancellationToken;

pub use classify::EXPLAIN_FEATURES;
pub use context::{band_low, ContextSlot, ContextWorker, LoadedContext};
pub use dead_letter::{
    DeadLetters, ERROR_CODE_HEADER, ERROR_HEADER, HEADERS_DROPPED_HEADER, ORIGINAL_BYTES_HEADER,
    ORIGINAL_SHA256_HEADER, SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER,
    TRUNCATED_HEADER, UNPUBLISHABLE_CODE,
};
pub use finisher::{Acks, Effects, InOrder, Slot};
pub use model::{load as load_model, LoadedModel, ModelSlot};
pub use settings::{
    cache_dir, default_encoder_dir, ContextConfig, ContextSettings, ModelConfig, PolicyConfig,
    Topics, WorkerConfig, WorkerSettings,
};
pub use worker::Worker;

/// What a classifying role is started with besides its settings.
pub struct Deps {
    /// Metrics.
    pub metrics: Metrics,
    /// The review queue.
    pub store: ReviewStore,
    /// How to reach the brokers (for the role's consumer).
    pub kafka: KafkaSettings,
    /// The role's producer.
    pub publisher: Publisher,
    /// The process's readiness: the role's consumer must reach a broker.
    pub readiness: Readiness,
}

/// A member of `group` on `topic`, with the Kafka metrics of `role` (its lag, its consumer's
/// and its producer's requests) kept up to date.
fn role_consumer(
    deps: &Deps,
    group: &str,
    topic: &str,
    role: &'static str,
    shutdown: &CancellationToken,
) -> Result<Arc<GroupConsumer>> {
    let consumer = Arc::new(GroupConsumer::new(&deps.kafka, group, &[topic])?);
    for (client, telemetry) in [
        (KafkaClient::Consumer, consumer.telemetry()),
        (KafkaClient::Producer, deps.publisher.telemetry()),
    ] {
        spawn_kafka_metrics(&deps.metrics, role, client, telemetry, shutdown.clone());
    }
    deps.readiness.watch_kafka(role, consumer.telemetry());
    Ok(consumer)
}

/// Starts the worker role: loads the model (it must pass its checks), watches it for hot
/// reloads, joins the worker group. The returned future runs the role until `shutdown`.
pub fn start_worker(
    settings: WorkerSettings,
    model: ModelConfig,
    overrides: PolicyConfig,
    deps: Deps,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = Result<()>>> {
    let slot = Arc::new(ModelSlot::from_pointee(model::load(&model, &overrides)?));
    tokio::spawn(model::watch(
        model,
        overrides,
        Arc::clone(&slot),
        deps.metrics.clone(),
        shutdown.clone(),
    ));
    let consumer = role_consumer(
        &deps,
        &settings.group,
        &settings.topics.content,
        "worker",
        &shutdown,
    )?;
    // The series of records set aside exist at 0 for every topic the worker writes, so that the
    // first one is an increase alerts see.
    let topics = &settings.topics;
    for topic in [&topics.verdicts, &topics.dead_letter, &topics.context] {
        deps.metrics.unpublishable.with_label_values(&[topic]);
    }
    let worker = Worker {
        settings,
        metrics: deps.metrics,
        model: slot,
        store: deps.store,
        publisher: deps.publisher,
        consumer,
    };
    Ok(worker.run(shutdown))
}

/// Starts the context role: loads the encoder and the context model (they must pass their
/// checks), watches the context model for hot reloads, joins the context group. The returned
/// future runs the role until `shutdown`.
pub fn start_context(
    settings: ContextSettings,
    model: &ModelConfig,
    deps: Deps,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = Result<()>>> {
    let encoder = context::load_encoder(&settings.context, model)?;
    let loaded = context::load(&settings.context, &encoder)?;
    let slot = Arc::new(ContextSlot::from_pointee(loaded));
    let (dir, config) = (settings.context.dir.clone(), settings.context.clone());
    tokio::spawn(reload::watch_slot(
        Arc::clone(&slot),
        reload::Reload {
            what: "context model",
            on_disk: Box::new(move || {
                cordon_context::ContextCard::read(&dir)
                    .map(|c| c.version)
                    .map_err(|e| e.to_string())
            }),
            version: |m: &LoadedContext| m.model.card().version.clone(),
            load: Arc::new(move || context::load(&config, &encoder)),
            info: deps.metrics.context_model_info.clone(),
            reloads: deps.metrics.context_model_reloads.clone(),
        },
        shutdown.clone(),
    ));
    let consumer = role_consumer(
        &deps,
        &settings.group,
        &settings.topics.context,
        "context",
        &shutdown,
    )?;
    // The context role writes verdicts only; that series exists at 0 (see start_worker).
    deps.metrics
        .unpublishable
        .with_label_values(&[&settings.topics.verdicts]);
    let role = ContextWorker {
        settings,
        metrics: deps.metrics,
        model: slot,
        store: deps.store,
        publisher: deps.publisher,
        consumer,
    };
    Ok(role.run(shutdown))
}
