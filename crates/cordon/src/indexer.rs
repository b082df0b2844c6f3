//! The indexer role: applies the content and verdicts topics to the Tantivy index.
//!
//! It reads every partition of both topics from the offsets stored in the index's last commit,
//! applies records in order, and commits the index together with the offsets it has applied at
//! most every `commit_interval_ms` while changes are pending. So the index never runs ahead of or
//! behind the offsets it reports, and a crash replays only what was not committed (applying a
//! record twice is harmless: content is versioned and verdicts follow precedence).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use cordon_domain::{ContentItem, DecodeLimits, Verdict};
use cordon_index::{Applied, ContentIndex, Offsets};
use cordon_stream::rdkafka::consumer::StreamConsumer;
use cordon_stream::rdkafka::Message;
use cordon_stream::{assigned_reader, KafkaSettings};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::metrics::Metrics;

/// The indexer and its state.
pub struct Indexer {
    config: Config,
    metrics: Metrics,
    index: ContentIndex,
    consumer: Arc<StreamConsumer>,
    offsets: Offsets,
    dirty_since: Option<Instant>,
    applied_verdicts: Vec<DateTime<Utc>>,
    /// Time spent applying records since the last commit.
    apply_time: Duration,
}

impl Indexer {
    /// Opens a reader positioned at the index's committed offsets.
    pub fn new(
        config: Config,
        metrics: Metrics,
        index: ContentIndex,
        kafka: &KafkaSettings,
    ) -> Result<Indexer> {
        let offsets = index.committed_offsets().clone();
        let topics = [
            config.kafka.content_topic.as_str(),
            config.kafka.verdicts_topic.as_str(),
        ];
        let consumer = assigned_reader(kafka, &topics, &offsets).context("assigning partitions")?;
        info!(?offsets, "indexer resuming from committed offsets");
        let indexer = Indexer {
            config,
            metrics,
            index,
            consumer: Arc::new(consumer),
            offsets,
            dirty_since: None,
            applied_verdicts: Vec::new(),
            apply_time: Duration::ZERO,
        };
        indexer.report_offsets();
        Ok(indexer)
    }

    /// The consumer, for lag metrics.
    pub fn consumer(&self) -> Arc<StreamConsumer> {
        Arc::clone(&self.consumer)
    }

    /// Applies records until `shutdown`, then commits what was applied.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let interval = Duration::from_millis(self.config.index.commit_interval_ms);
        loop {
            let wait = match self.dirty_since {
                Some(since) => interval.saturating_sub(since.elapsed()),
                None => Duration::from_millis(500),
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                received = tokio::time::timeout(wait, self.consumer.recv()) => match received {
                    Err(_) => {}
                    Ok(Ok(message)) => {
                        let started = Instant::now();
                        let message = message.detach();
                        self.apply(&message)?;
                        self.apply_time += started.elapsed();
                    }
                    Ok(Err(e)) => {
                        warn!(error = %e, "receiving failed; retrying");
                        self.metrics.retries.with_label_values(&["kafka"]).inc();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            if self
                .dirty_since
                .is_some_and(|since| since.elapsed() >= interval)
            {
                self.commit()?;
            }
        }
        info!("indexer stopping: committing the index");
        if self.dirty_since.is_some() {
            self.commit()?;
        }
        tokio::task::block_in_place(|| self.index.close()).context("closing the index")?;
        Ok(())
    }

    fn apply(&mut self, message: &cordon_stream::rdkafka::message::OwnedMessage) -> Result<()> {
        let topic = message.topic();
        let kind = if topic == self.config.kafka.content_topic {
            "content"
        } else {
            "verdict"
        };
        let outcome = if kind == "content" {
            let limits = DecodeLimits {
                max_message_bytes: self.config.worker.max_message_bytes,
                max_text_bytes: self.config.worker.max_text_bytes,
            };
            match ContentItem::decode(message.payload(), &limits) {
                Ok(item) => {
                    let id = item.id.clone();
                    let applied = self.index.apply_content(item)?;
                    debug!(item_id = %id, ?applied, "content applied");
                    Some(applied)
                }
                // The worker dead-letters it; the index has nothing to show.
                Err(_) => None,
            }
        } else {
            match message.payload().map(serde_json::from_slice::<Verdict>) {
                Some(Ok(verdict)) => {
                    let decided_at = verdict.decided_at;
                    let id = verdict.item_id.clone();
                    let applied = self.index.apply_verdict(verdict)?;
                    debug!(item_id = %id, ?applied, "verdict applied");
                    if let Applied::Changed { before, after } = applied {
                        if before.is_some_and(|b| b != after) {
                            self.applied_verdicts.push(decided_at);
                        }
                    }
                    Some(applied)
                }
                Some(Err(e)) => {
                    warn!(offset = message.offset(), error = %e, "skipping an unreadable verdict");
                    None
                }
                None => None,
            }
        };
        let outcome_label = match outcome {
            Some(Applied::Changed { .. }) => "changed",
            Some(Applied::Stale) => "stale",
            None => "invalid",
        };
        self.metrics
            .indexed
            .with_label_values(&[kind, outcome_label])
            .inc();
        self.offsets
            .entry(topic.to_string())
            .or_default()
            .insert(message.partition(), message.offset() + 1);
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Publishes the committed offsets as `cordon_index_committed_offset`.
    fn report_offsets(&self) {
        for (topic, partitions) in &self.offsets {
            for (partition, offset) in partitions {
                self.metrics
                    .index_offset
                    .with_label_values(&[topic.as_str(), &partition.to_string()])
                    .set(*offset);
            }
        }
    }

    fn commit(&mut self) -> Result<()> {
        let started = Instant::now();
        let offsets = self.offsets.clone();
        tokio::task::block_in_place(|| self.index.commit(&offsets))
            .context("committing the index")?;
        self.report_offsets();
        crate::metrics::observe_stage(&self.metrics.stage_seconds, "commit", started);
        self.metrics
            .stage_seconds
            .with_label_values(&["apply"])
            .observe(std::mem::take(&mut self.apply_time).as_secs_f64());
        let now = Utc::now();
        for decided_at in self.applied_verdicts.drain(..) {
            let secs = (now - decided_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
            self.metrics.verdict_apply_seconds.observe(secs.max(0.0));
        }
        self.dirty_since = None;
        Ok(())
    }
}
