//! The worker role: content topic → decode → classify → versions → policy → verdicts topic +
//! review queue.
//!
//! Per batch, in this order: dead-letter what does not decode, score the rest, hand every verdict
//! (and dead letter) to the producer, then — in the [`InOrder`] finisher, batch after batch in
//! order — wait for the broker's acknowledgements, queue review cases and store the statements
//! of reasons of the model's suppressions, and only then store the batch's offsets. Up to `worker.batches_in_flight` batches wait for acknowledgements while the
//! next one is scored, so the broker's round trip does not stall classification. A crash anywhere
//! re-delivers the batches whose offsets were not stored; publishing a verdict again and
//! inserting a case again are harmless. An item the fast model is unsure about
//! (`cordon_context::in_band`) gets its fast verdict and a request on the context topic, in the
//! same batch, instead of a case: the context role decides it, and its verdict outranks the fast
//! one. If a person already decided an item version, the worker re-publishes that decision
//! instead of the model's verdict, so the compacted verdicts topic never ends on a model verdict
//! that a person overruled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use cordon_domain::{Action, ContentItem, DecodeLimits};
use cordon_ops::{retry, Dependency, Metrics, Stage};
use cordon_review::{ItemFacts, ModelSuppression, NewCase, ReviewStore, SeenItem};
use cordon_stream::{GroupConsumer, Publisher, Received, Record, Refused, StreamError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::dead_letter::DeadLetters;
use crate::finisher::{Acks, Effects, InOrder};
use crate::model::ModelSlot;
use crate::settings::WorkerSettings;

/// Everything the worker needs.
pub struct Worker {
    /// Its settings.
    pub settings: WorkerSettings,
    /// Metrics.
    pub metrics: Metrics,
    /// The model in service (swapped by hot reloads between batches).
    pub model: Arc<ModelSlot>,
    /// The review queue.
    pub store: ReviewStore,
    /// Producer for verdicts, context requests and dead letters.
    pub publisher: Publisher,
    /// The content-topic consumer (group member).
    pub consumer: Arc<GroupConsumer>,
}

/// What scoring a batch produced.
pub(crate) struct Scored {
    pub(crate) records: Vec<Record>,
    /// The item version each record is about (`None` for a dead letter).
    pub(crate) versions: Vec<Option<(String, u64)>>,
    pub(crate) cases: Vec<NewCase>,
    /// The model's final suppressions, to be stated.
    pub(crate) suppressions: Vec<ModelSuppression>,
    pub(crate) indexed_at: Vec<DateTime<Utc>>,
    /// When the newest versions were looked up for this batch.
    pub(crate) snapshot_at: Instant,
}

/// A batch handed to the producer, whose effects are not all durable yet.
pub(crate) struct Sent {
    messages: Vec<Received>,
    scored: Scored,
}

impl Worker {
    /// Consumes until `shutdown`, finishes the batches in flight, then commits the stored offsets.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let cfg = self.settings.worker.clone();
        let linger = Duration::from_millis(cfg.batch_linger_ms);
        info!(
            topic = %self.settings.topics.content,
            group = %self.settings.group,
            model = %self.model.load().classifier.card().version,
            batches_in_flight = cfg.batches_in_flight,
            "worker started"
        );
        let worker = Arc::new(Finishing {
            worker: self,
            shutdown: shutdown.clone(),
        });
        let finisher = InOrder::start(Arc::clone(&worker), cfg.batches_in_flight);
        let w = &worker.worker;
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = w.consumer.next_batch(cfg.batch_size, linger, Duration::from_millis(500)) => batch,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "receiving from the content topic failed; retrying");
                    w.metrics.retried(Dependency::Kafka);
                    tokio::time::sleep(w.backoff()).await;
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            let Some(scored) = w.score_batch(&batch, &shutdown).await? else {
                break;
            };
            // A slot first (waits while `batches_in_flight` batches are unacknowledged), then
            // the hand-over, so a finisher that publishes again finds every earlier batch queued.
            let Some(slot) = finisher.slot().await else {
                break; // the finisher stopped: shutdown interrupted it, or it failed
            };
            let Ok(scored) = w.fence(scored, &shutdown).await else {
                break;
            };
            let acks = w.acks(w.publisher.send_all(&scored.records).await);
            slot.hand_over(
                Sent {
                    messages: batch,
                    scored,
                },
                acks,
            );
        }
        finisher.close().await?;
        info!("worker stopping: committing offsets");
        if let Err(e) = w.consumer.commit_stored() {
            // Nothing stored since the last auto-commit is not an error.
            debug!(error = %e, "final offset commit");
        }
        Ok(())
    }

    /// The acknowledgements of a batch handed over at this instant: counted in the `publish`
    /// stage when they arrive, and as a Kafka retry when they fail.
    fn acks(&self, sent: Result<cordon_stream::Acks, StreamError>) -> Acks<Finishing> {
        let metrics = self.metrics.clone();
        let sent_at = Instant::now();
        Box::pin(async move {
            let acked = match sent {
                Ok(acks) => acks.wait().await,
                Err(e) => Err(e),
            };
            match &acked {
                Ok(_) => metrics.observe_stage(Stage::Publish, sent_at),
                Err(_) => metrics.retried(Dependency::Kafka),
            }
            acked
        })
    }

    /// Sets aside the records of a batch that can never be published (too large or invalid for
    /// the producer or the broker): each is counted (`cordon_unpublishable_total`), logged, and
    /// replaced by a bounded dead-letter copy, so the rest of the batch — and every later one —
    /// flows on. `Ok(false)` when shutdown interrupted it.
    async fn set_aside(
        &self,
        records: &[Record],
        refused: Vec<Refused>,
        shutdown: &CancellationToken,
    ) -> Result<bool> {
        if refused.is_empty() {
            return Ok(true);
        }
        let m = &self.metrics;
        let letters = self.dead_letters();
        let copies: Vec<Record> = refused
            .iter()
            .map(|r| {
                let record = &records[r.index];
                error!(
                    topic = %record.topic,
                    item_id = record.key.as_deref().unwrap_or(""),
                    bytes = record.payload.len(),
                    error = %r.error,
                    "a record can never be published; dead-lettering a bounded copy"
                );
                m.unpublishable.with_label_values(&[&record.topic]).inc();
                letters.unpublishable(record, &r.error)
            })
            .collect();
        let Ok(again) = retry(Dependency::Kafka, shutdown, self.backoff(), m, || {
            self.publisher.publish_all(&copies)
        })
        .await
        else {
            return Ok(false);
        };
        for r in again {
            error!(error = %r.error, "the bounded dead-letter copy was refused too; the record is only counted");
            m.unpublishable
                .with_label_values(&[&self.settings.topics.dead_letter])
                .inc();
        }
        Ok(true)
    }

    /// Queues a published batch's review cases, states its model suppressions and stores its
    /// offsets; `Ok(false)` when shutdown interrupted it.
    async fn durable(
        &self,
        messages: &[Received],
        scored: &Scored,
        shutdown: &CancellationToken,
    ) -> Result<bool> {
        let m = &self.metrics;
        let stage = Instant::now();
        let Ok(queued) = retry(Dependency::Database, shutdown, self.backoff(), m, || {
            self.store.insert_cases(&scored.cases)
        })
        .await
        else {
            return Ok(false);
        };
        if !scored.suppressions.is_empty() {
            let Ok(_) = retry(Dependency::Database, shutdown, self.backoff(), m, || {
                self.store.state_model_suppressions(&scored.suppressions)
            })
            .await
            else {
                return Ok(false);
            };
        }
        m.observe_stage(Stage::Queue, stage);
        m.cases_queued.inc_by(queued);
        self.consumer
            .store_offsets(messages)
            .context("storing offsets")?;
        let now = Utc::now();
        for at in &scored.indexed_at {
            let age = (now - *at).num_microseconds().unwrap_or(0) as f64 / 1e6;
            m.end_to_end_seconds.observe(age.max(0.0));
        }
        debug!(messages = messages.len(), queued, "batch done");
        Ok(true)
    }

    /// Decodes and scores one batch: its records to publish and its review cases; `None` when
    /// shutdown interrupted it.
    async fn score_batch(
        &self,
        batch: &[Received],
        shutdown: &CancellationToken,
    ) -> Result<Option<Scored>> {
        let m = &self.metrics;
        m.consumed.inc_by(batch.len() as u64);
        m.batch_size.observe(batch.len() as f64);
        let cfg = &self.settings.worker;
        let limits = DecodeLimits {
            max_message_bytes: cfg.max_message_bytes,
            max_text_bytes: cfg.max_text_bytes,
        };
        let mut records = Vec::with_capacity(batch.len());
        let mut versions = Vec::with_capacity(batch.len());
        let mut items = Vec::with_capacity(batch.len());
        let letters = self.dead_letters();
        let stage = Instant::now();
        for message in batch {
            match ContentItem::decode(message.payload(), &limits) {
                Ok(item) => items.push(item),
                Err(e) => {
                    warn!(
                        partition = message.partition,
                        offset = message.offset,
                        reason = %e,
                        "dead-lettering an undecodable message"
                    );
                    m.dead_lettered.with_label_values(&[e.code()]).inc();
                    records.push(letters.undecodable(message, &e));
                    versions.push(None);
                }
            }
        }
        m.decoded.inc_by(items.len() as u64);
        m.observe_stage(Stage::Decode, stage);

        let classified = self.classify(&items).await?;
        // One round trip, after classification so that a person's decision made meanwhile is
        // still found: record the batch's versions, read the newest seen and people's decisions.
        // A version older than one already seen arrived late: it gets no verdict and no case.
        let keys: Vec<SeenItem<'_>> = items.iter().map(SeenItem::of).collect();
        let stage = Instant::now();
        let Ok(check) = retry(Dependency::Database, shutdown, self.backoff(), m, || {
            self.store.check_versions(&keys)
        })
        .await
        else {
            return Ok(None);
        };
        let snapshot_at = Instant::now();
        m.observe_stage(Stage::Versions, stage);
        let (items, verdicts): (Vec<ContentItem>, Vec<_>) = items
            .into_iter()
            .zip(classified)
            .filter(|(item, _)| {
                let current = check.is_current(&item.id, item.version);
                if !current {
                    debug!(item_id = %item.id, version = item.version, "stale version skipped");
                    m.stale_items.inc();
                }
                current
            })
            .unzip();
        let topics = &self.settings.topics;
        let mut cases = Vec::new();
        let mut suppressions = Vec::new();
        for (item, classified) in items.iter().zip(verdicts) {
            let verdict = match check.decision(&item.id, item.version) {
                Some(human) => human.clone(),
                None => {
                    match classified.context {
                        // The context stage decides whether a person sees it.
                        Some(request) => {
                            m.context_requested.inc();
                            records.push(Record {
                                topic: topics.context.clone(),
                                key: Some(item.id.clone()),
                                payload: serde_json::to_vec(&request)
                                    .context("serializing a context request")?,
                                headers: Vec::new(),
                            });
                            versions.push(Some((item.id.clone(), item.version)));
                        }
                        None => {
                            cases.extend(classified.case);
                            let v = &classified.verdict;
                            if let (Action::Suppress, Some(category), Some(score)) =
                                (v.action, v.category, v.score)
                            {
                                suppressions.push(ModelSuppression {
                                    item_id: item.id.clone(),
                                    item_version: item.version,
                                    category,
                                    score,
                                    explanation: v.explanation.clone(),
                                    facts: Some(ItemFacts::of(item)),
                                    decided_at: v.decided_at,
                                });
                            }
                        }
                    }
                    classified.verdict
                }
            };
            debug!(item_id = %item.id, version = item.version, action = verdict.action.as_str(), reason = %verdict.reason, "verdict");
            records.push(Record {
                topic: topics.verdicts.clone(),
                key: Some(item.id.clone()),
                payload: serde_json::to_vec(&verdict).context("serializing a verdict")?,
                headers: Vec::new(),
            });
            versions.push(Some((item.id.clone(), item.version)));
        }
        Ok(Some(Scored {
            records,
            versions,
            cases,
            suppressions,
            indexed_at: items.iter().map(|i| i.indexed_at).collect(),
            snapshot_at,
        }))
    }

    fn dead_letters(&self) -> DeadLetters {
        DeadLetters {
            topic: self.settings.topics.dead_letter.clone(),
            max_bytes: self.settings.worker.dead_letter_max_bytes,
        }
    }

    pub(crate) fn backoff(&self) -> Duration {
        Duration::from_millis(self.settings.worker.retry_backoff_ms)
    }
}

/// The worker as the finisher's [`Effects`]: publishing again goes through the fence and
/// retries until acknowledged; completing sets aside refused records, queues cases, stores
/// offsets.
pub(crate) struct Finishing {
    worker: Worker,
    shutdown: CancellationToken,
}

impl Effects for Finishing {
    type Batch = Sent;
    type Published = Vec<Refused>;
    type Error = StreamError;

    async fn republish(&self, sent: Sent) -> Option<(Sent, Vec<Refused>)> {
        let w = &self.worker;
        let scored = w.fence(sent.scored, &self.shutdown).await.ok()?;
        let refused = retry(
            Dependency::Kafka,
            &self.shutdown,
            w.backoff(),
            &w.metrics,
            || w.publisher.publish_all(&scored.records),
        )
        .await
        .ok()?;
        Some((
            Sent {
                messages: sent.messages,
                scored,
            },
            refused,
        ))
    }

    async fn complete(&self, mut sent: Sent, refused: Vec<Refused>) -> Result<bool> {
        let w = &self.worker;
        // A suppression whose verdict the brokers refused was never applied: it has no
        // statement.
        let verdicts = &w.settings.topics.verdicts;
        let unapplied: Vec<String> = refused
            .iter()
            .filter_map(|r| sent.scored.records.get(r.index))
            .filter(|record| &record.topic == verdicts)
            .filter_map(|record| record.key.clone())
            .collect();
        sent.scored
            .suppressions
            .retain(|s| !unapplied.contains(&s.item_id));
        Ok(w.set_aside(&sent.scored.records, refused, &self.shutdown)
            .await?
            && w.durable(&sent.messages, &sent.scored, &self.shutdown)
                .await?)
    }
}
