//! The worker role: content topic → decode → classify → policy → verdicts topic + review queue.
//!
//! Per batch, in this order: dead-letter what does not decode, score the rest, hand every verdict
//! (and dead letter) to the producer, then — in a second task, batch after batch in order — wait
//! for the broker's acknowledgements, queue review cases, and only then store the batch's offsets.
//! Up to `worker.batches_in_flight` batches wait for acknowledgements while the next one is
//! scored, so the broker's round trip does not stall classification. A crash anywhere re-delivers
//! the batches whose offsets were not stored; publishing a verdict again and inserting a case
//! again are harmless. An item the fast model is unsure about (`cordon_context::in_band`) gets its
//! fast verdict and a request on the context topic, in the same batch, instead of a case: the
//! context role decides it, and its verdict outranks the fast one. If a batch's publication fails, no new batch is handed over until it and
//! every batch handed over after it are published again in order, so a partition of the
//! compacted verdicts topic never ends on an older batch's verdict. If a person already decided
//! an item version, the worker re-publishes that decision instead of the model's verdict, so the
//! compacted verdicts topic never ends on a model verdict that a person overruled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use cordon_context::ContextRequest;
use cordon_domain::{Action, ContentItem, DecidedBy, DecodeLimits, Policy, Stage, Verdict};
use cordon_review::{NewCase, ReviewStore};
use cordon_stream::rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use cordon_stream::rdkafka::message::{Headers, OwnedMessage};
use cordon_stream::rdkafka::Message;
use cordon_stream::{next_batch, store_offsets, Acks, Publisher, Record, Refused, StreamError};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::metrics::{observe_stage, Metrics};
use crate::model::ModelSlot;
use crate::retry::retry;

/// Everything the worker needs.
pub struct Worker {
    /// Configuration.
    pub config: Config,
    /// Metrics.
    pub metrics: Metrics,
    /// The model in service (swapped by hot reloads between batches).
    pub model: Arc<ModelSlot>,
    /// The review queue.
    pub store: ReviewStore,
    /// Producer for verdicts and dead letters.
    pub publisher: Publisher,
    /// The content-topic consumer (group member).
    pub consumer: Arc<StreamConsumer>,
    /// The lowest top fast score sent to the context stage; `None` when the context stage is off.
    pub context_band: Option<f32>,
}

/// What the worker decided for one item: the fast verdict, a review case, or a request to the
/// context stage (which then decides whether to queue it).
struct Classified {
    verdict: Verdict,
    case: Option<NewCase>,
    context: Option<ContextRequest>,
}

/// The text the context stage reads: the whole text, or for a long one the fast model's strongest
/// window for its top category.
fn context_text(
    classifier: &cordon_classifier::Classifier,
    text: &str,
    scores: &cordon_domain::Scores,
) -> String {
    if text.chars().count() <= cordon_context::MAX_REQUEST_CHARS {
        return text.to_string();
    }
    classifier
        .strongest_window_text(text, scores.top().0)
        .unwrap_or_else(|| {
            text.chars()
                .take(cordon_context::MAX_REQUEST_CHARS)
                .collect()
        })
}

/// How many features an explanation names.
pub const EXPLAIN_FEATURES: usize = 5;

/// Header carrying the reason a message was dead-lettered.
pub const ERROR_HEADER: &str = "cordon.error";
/// Header carrying the reason's short code (`too_large`, `json`, ..., `unpublishable`).
pub const ERROR_CODE_HEADER: &str = "cordon.error.code";
/// Header naming the topic the dead-lettered record came from (or was meant for).
pub const SOURCE_TOPIC_HEADER: &str = "cordon.source.topic";
/// Header carrying the original payload's size in bytes.
pub const ORIGINAL_BYTES_HEADER: &str = "cordon.original.bytes";
/// Header carrying the original payload's SHA-256, in hex.
pub const ORIGINAL_SHA256_HEADER: &str = "cordon.original.sha256";
/// Header present (`true`) when the dead-letter payload is cut to `worker.dead_letter_max_bytes`.
pub const TRUNCATED_HEADER: &str = "cordon.truncated";
/// Original headers are copied into a dead letter only while they total at most this.
const MAX_COPIED_HEADER_BYTES: usize = 16 * 1024;

/// A batch scored and handed to the producer, whose effects are not all durable yet.
struct Sent {
    messages: Vec<OwnedMessage>,
    scored: Scored,
    acks: Result<Acks, StreamError>,
    sent_at: Instant,
}

/// What scoring a batch produced.
struct Scored {
    records: Vec<Record>,
    /// The item version each record is a verdict about (`None` for a dead letter).
    versions: Vec<Option<(String, u64)>>,
    cases: Vec<NewCase>,
    indexed_at: Vec<DateTime<Utc>>,
    /// When the newest versions were looked up for this batch.
    snapshot_at: Instant,
}

impl Worker {
    /// Consumes until `shutdown`, finishes the batches in flight, then commits the stored offsets.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let worker = Arc::new(self);
        let cfg = &worker.config.worker;
        let linger = Duration::from_millis(cfg.batch_linger_ms);
        info!(
            topic = %worker.config.kafka.content_topic,
            group = %worker.config.kafka.worker_group,
            model = %worker.model.load().classifier.card().version,
            batches_in_flight = cfg.batches_in_flight,
            "worker started"
        );
        // Held while a batch is handed to the producer; the finisher holds it while it publishes
        // again after a failure, so nothing is handed over in between.
        let handing_over = Arc::new(Mutex::new(()));
        let (tx, rx) = mpsc::channel(cfg.batches_in_flight);
        let finisher = tokio::spawn(Arc::clone(&worker).finish_all(
            rx,
            Arc::clone(&handing_over),
            shutdown.clone(),
        ));
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = next_batch(&worker.consumer, cfg.batch_size, linger, Duration::from_millis(500)) => batch,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "receiving from the content topic failed; retrying");
                    worker.metrics.retries.with_label_values(&["kafka"]).inc();
                    tokio::time::sleep(Duration::from_millis(cfg.retry_backoff_ms)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            let Some(scored) = worker.score_batch(&batch, &shutdown).await? else {
                break;
            };
            // A slot first (waits while `batches_in_flight` batches are unacknowledged), then the
            // hand-over, so a finisher that publishes again finds every earlier batch queued.
            let Ok(slot) = tx.reserve().await else {
                break; // the finisher stopped: shutdown interrupted it, or it failed
            };
            let _handing_over = handing_over.lock().await;
            let Ok(scored) = worker.fence(scored, &shutdown).await else {
                break;
            };
            let sent_at = Instant::now();
            let acks = worker.publisher.send_all(&scored.records).await;
            slot.send(Sent {
                messages: batch,
                scored,
                acks,
                sent_at,
            });
        }
        drop(tx);
        finisher.await.context("the batch finisher panicked")??;
        info!("worker stopping: committing offsets");
        if let Err(e) = worker.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last auto-commit is not an error.
            debug!(error = %e, "final offset commit");
        }
        Ok(())
    }

    /// Finishes batches in the order they were handed over: acknowledgements, review cases,
    /// offsets. Returns when the sender is gone and every batch is finished, or when shutdown
    /// interrupted a retry (the unfinished batches are then re-delivered to the next owner).
    async fn finish_all(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Sent>,
        handing_over: Arc<Mutex<()>>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        while let Some(sent) = rx.recv().await {
            let m = &self.metrics;
            let Sent {
                messages,
                scored,
                acks,
                sent_at,
            } = sent;
            let acked = match acks {
                Ok(acks) => acks.wait().await,
                Err(e) => Err(e),
            };
            let refused = match acked {
                Ok(refused) => refused,
                Err(e) => {
                    warn!(error = %e, "publishing a batch failed; publishing it and the batches after it again");
                    m.retries.with_label_values(&["kafka"]).inc();
                    let _paused = handing_over.lock().await;
                    let mut again = vec![(messages, scored)];
                    while let Ok(later) = rx.try_recv() {
                        // Its acknowledgements no longer matter: it is published again after this one.
                        again.push((later.messages, later.scored));
                    }
                    for (messages, scored) in again {
                        let Ok(scored) = self.fence(scored, &shutdown).await else {
                            return Ok(());
                        };
                        let Ok(refused) =
                            retry("kafka", &shutdown, self.backoff(), &m.retries, || {
                                self.publisher.publish_all(&scored.records)
                            })
                            .await
                        else {
                            return Ok(());
                        };
                        if !self.set_aside(&scored.records, refused, &shutdown).await?
                            || !self.durable(&messages, &scored, &shutdown).await?
                        {
                            return Ok(());
                        }
                    }
                    continue;
                }
            };
            observe_stage(&m.stage_seconds, "publish", sent_at);
            if !self.set_aside(&scored.records, refused, &shutdown).await?
                || !self.durable(&messages, &scored, &shutdown).await?
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The self-fence of a worker that may have lost its partitions without noticing (a GC
    /// pause, a frozen VM, SIGSTOP, a broker outage): there are no broker transactions to fence
    /// it, so when a batch's version snapshot is older than `worker.fence_after_ms` — long
    /// enough for the group to have handed its partitions to another worker — the newest
    /// versions are looked up again right before the batch is handed to the producer, and every
    /// verdict (and case) a newer version has overtaken is dropped (`cordon_fenced_total`). The
    /// new owner has published the newer version's verdict, and the compacted verdicts topic
    /// must not end on this older one. `Err` when shutdown interrupted the look-up.
    async fn fence(
        &self,
        mut scored: Scored,
        shutdown: &CancellationToken,
    ) -> Result<Scored, crate::retry::Interrupted> {
        let age = scored.snapshot_at.elapsed();
        if age < Duration::from_millis(self.config.worker.fence_after_ms) {
            return Ok(scored);
        }
        let m = &self.metrics;
        let ids: Vec<String> = scored
            .versions
            .iter()
            .flatten()
            .map(|(id, _)| id.clone())
            .collect();
        let newest = retry("database", shutdown, self.backoff(), &m.retries, || {
            self.store.current_versions(&ids)
        })
        .await?;
        let overtaken =
            |id: &str, version: u64| newest.get(id).is_some_and(|newest| *newest > version);
        let current = |v: &Option<(String, u64)>| {
            v.as_ref()
                .is_none_or(|(id, version)| !overtaken(id, *version))
        };
        let before = scored.records.len();
        let mut keep = scored.versions.iter().map(current);
        scored.records.retain(|_| keep.next().unwrap_or(true));
        scored.versions.retain(current);
        scored
            .cases
            .retain(|c| !overtaken(&c.item_id, c.item_version));
        scored.snapshot_at = Instant::now();
        let fenced = before - scored.records.len();
        if fenced > 0 {
            warn!(
                fenced,
                snapshot_age_secs = age.as_secs_f64(),
                "dropping verdicts that newer versions overtook while this worker stalled"
            );
            m.fenced.inc_by(fenced as u64);
        }
        Ok(scored)
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
                let headers = vec![
                    (ERROR_HEADER.to_string(), r.error.to_string().into_bytes()),
                    (ERROR_CODE_HEADER.to_string(), b"unpublishable".to_vec()),
                    (
                        SOURCE_TOPIC_HEADER.to_string(),
                        record.topic.clone().into_bytes(),
                    ),
                ];
                self.dead_letter_copy(
                    record.key.as_deref().map(str::as_bytes),
                    &record.payload,
                    headers,
                    Vec::new(),
                )
            })
            .collect();
        let Ok(again) = retry("kafka", shutdown, self.backoff(), &m.retries, || {
            self.publisher.publish_all(&copies)
        })
        .await
        else {
            return Ok(false);
        };
        for r in again {
            error!(error = %r.error, "the bounded dead-letter copy was refused too; the record is only counted");
            m.unpublishable
                .with_label_values(&[&self.config.kafka.dead_letter_topic])
                .inc();
        }
        Ok(true)
    }

    /// Queues a published batch's review cases and stores its offsets; `Ok(false)` when shutdown
    /// interrupted it.
    async fn durable(
        &self,
        messages: &[OwnedMessage],
        scored: &Scored,
        shutdown: &CancellationToken,
    ) -> Result<bool> {
        let m = &self.metrics;
        let stage = Instant::now();
        let Ok(queued) = retry("database", shutdown, self.backoff(), &m.retries, || {
            self.store.insert_cases(&scored.cases)
        })
        .await
        else {
            return Ok(false);
        };
        observe_stage(&m.stage_seconds, "queue", stage);
        m.cases_queued.inc_by(queued);
        store_offsets(&self.consumer, messages).context("storing offsets")?;
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
        batch: &[OwnedMessage],
        shutdown: &CancellationToken,
    ) -> Result<Option<Scored>> {
        let m = &self.metrics;
        m.consumed.inc_by(batch.len() as u64);
        m.batch_size.observe(batch.len() as f64);
        let limits = DecodeLimits {
            max_message_bytes: self.config.worker.max_message_bytes,
            max_text_bytes: self.config.worker.max_text_bytes,
        };
        let mut records = Vec::with_capacity(batch.len());
        let mut versions = Vec::with_capacity(batch.len());
        let mut items = Vec::with_capacity(batch.len());
        let stage = Instant::now();
        for message in batch {
            match ContentItem::decode(message.payload(), &limits) {
                Ok(item) => items.push(item),
                Err(e) => {
                    warn!(
                        partition = message.partition(),
                        offset = message.offset(),
                        reason = %e,
                        "dead-lettering an undecodable message"
                    );
                    m.dead_lettered.with_label_values(&[e.code()]).inc();
                    records.push(self.dead_letter(message, &e));
                    versions.push(None);
                }
            }
        }
        m.decoded.inc_by(items.len() as u64);
        observe_stage(&m.stage_seconds, "decode", stage);

        // A version older than one already seen arrived late: it gets no verdict and no case.
        let keys: Vec<(String, u64)> = items.iter().map(|i| (i.id.clone(), i.version)).collect();
        let stage = Instant::now();
        let Ok(newest) = retry("database", shutdown, self.backoff(), &m.retries, || {
            self.store.newest_versions(&keys)
        })
        .await
        else {
            return Ok(None);
        };
        let snapshot_at = Instant::now();
        observe_stage(&m.stage_seconds, "versions", stage);
        items.retain(|item| {
            let current = newest.get(&item.id).is_none_or(|v| *v <= item.version);
            if !current {
                debug!(item_id = %item.id, version = item.version, "stale version skipped");
                m.stale_items.inc();
            }
            current
        });

        let verdicts = self.classify(&items).await?;
        let keys: Vec<(String, u64)> = items.iter().map(|i| (i.id.clone(), i.version)).collect();
        let Ok(humans) = retry("database", shutdown, self.backoff(), &m.retries, || {
            self.store.human_verdicts(&keys)
        })
        .await
        else {
            return Ok(None);
        };
        let mut cases = Vec::new();
        for (item, classified) in items.iter().zip(verdicts) {
            let verdict = match humans.get(&(item.id.clone(), item.version)) {
                Some(human) => human.clone(),
                None => {
                    match classified.context {
                        // The context stage decides whether a person sees it.
                        Some(request) => {
                            m.context_requested.inc();
                            records.push(Record {
                                topic: self.config.kafka.context_topic.clone(),
                                key: Some(item.id.clone()),
                                payload: serde_json::to_vec(&request)
                                    .context("serializing a context request")?,
                                headers: Vec::new(),
                            });
                            versions.push(Some((item.id.clone(), item.version)));
                        }
                        None => cases.extend(classified.case),
                    }
                    classified.verdict
                }
            };
            debug!(item_id = %item.id, version = item.version, action = verdict.action.as_str(), reason = %verdict.reason, "verdict");
            records.push(Record {
                topic: self.config.kafka.verdicts_topic.clone(),
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
            indexed_at: items.iter().map(|i| i.indexed_at).collect(),
            snapshot_at,
        }))
    }

    /// Scores the items and applies the policy: a verdict per item, and a case for review items or,
    /// for items in the context stage's band, a request to it.
    async fn classify(&self, items: &[ContentItem]) -> Result<Vec<Classified>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.model.load_full();
        let texts: Arc<Vec<String>> =
            Arc::new(items.iter().map(ContentItem::classifier_text).collect());
        let (scoring, read) = (Arc::clone(&model), Arc::clone(&texts));
        let stages = self.metrics.stage_seconds.clone();
        let scored = tokio::task::spawn_blocking(move || {
            let texts = read;
            let started = Instant::now();
            let classifier = &scoring.classifier;
            let features: Vec<_> = texts.iter().map(|t| classifier.featurize(t)).collect();
            observe_stage(&stages, "featurize", started);
            let started = Instant::now();
            let scores = classifier.score_features(&features);
            observe_stage(&stages, "infer", started);
            scores
        })
        .await;
        // A model that passed its load checks does not fail on input; if inference fails anyway,
        // the worker stops without acknowledging the batch.
        let scores = scored
            .context("inference task failed")?
            .context("inference failed")?;
        let model_version = model.classifier.card().version.clone();
        let now = Utc::now();
        Ok(items
            .iter()
            .zip(texts.iter())
            .zip(scores)
            .map(|((item, text), scores)| {
                let d = model.policy.decide(&scores);
                self.metrics
                    .classified
                    .with_label_values(&[d.category.as_str(), d.action.as_str()])
                    .inc();
                let case = (d.action == Action::Review).then(|| NewCase {
                    item_id: item.id.clone(),
                    item_version: item.version,
                    category: d.category,
                    score: d.score,
                    scores,
                    reason: d.reason.clone(),
                    model_version: model_version.clone(),
                    reach: item.channel.subscribers,
                    language: item.lang.clone(),
                });
                // People see why the model flagged an item; allowed items need no explanation.
                let explanation = if d.action == Action::Allow {
                    Vec::new()
                } else {
                    model.classifier.explain(text, d.category, EXPLAIN_FEATURES)
                };
                let context = self
                    .context_band
                    .filter(|band| cordon_context::in_band(&model.policy, &scores, *band))
                    .map(|_| ContextRequest {
                        item_id: item.id.clone(),
                        item_version: item.version,
                        text: context_text(&model.classifier, text, &scores),
                        lang: item.lang.clone(),
                        reach: item.channel.subscribers,
                        fast_scores: scores,
                        fast_model: model_version.clone(),
                        fast_action: d.action,
                        fast_explanation: if explanation.is_empty() {
                            model
                                .classifier
                                .explain(text, scores.top().0, EXPLAIN_FEATURES)
                        } else {
                            explanation.clone()
                        },
                        indexed_at: item.indexed_at,
                    });
                let verdict = Verdict {
                    item_id: item.id.clone(),
                    item_version: item.version,
                    action: d.action,
                    decided_by: DecidedBy::Model {
                        model_version: model_version.clone(),
                        stage: Stage::Fast,
                    },
                    category: Some(d.category),
                    score: Some(d.score),
                    scores: Some(scores),
                    fast_scores: None,
                    reason: d.reason,
                    channel_id: None,
                    explanation,
                    decided_at: now,
                };
                Classified {
                    verdict,
                    case,
                    context,
                }
            })
            .collect())
    }

    fn dead_letter(&self, message: &OwnedMessage, error: &cordon_domain::DecodeError) -> Record {
        let headers: Vec<(String, Vec<u8>)> = vec![
            (ERROR_HEADER.into(), error.to_string().into_bytes()),
            (ERROR_CODE_HEADER.into(), error.code().as_bytes().to_vec()),
            (
                SOURCE_TOPIC_HEADER.into(),
                message.topic().as_bytes().to_vec(),
            ),
            (
                "cordon.source.partition".into(),
                message.partition().to_string().into_bytes(),
            ),
            (
                "cordon.source.offset".into(),
                message.offset().to_string().into_bytes(),
            ),
        ];
        let original = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        self.dead_letter_copy(
            message.key(),
            message.payload().unwrap_or_default(),
            headers,
            original,
        )
    }

    /// A dead-letter record that always fits the producer's limit: the payload whole when it
    /// has at most `worker.dead_letter_max_bytes`, else its first that many bytes (header
    /// `cordon.truncated`); the original size and SHA-256 always travel in headers, the key is cut
    /// to 1 KiB, and the original headers are kept only while they total at most 16 KiB.
    fn dead_letter_copy(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        mut headers: Vec<(String, Vec<u8>)>,
        original_headers: Vec<(String, Vec<u8>)>,
    ) -> Record {
        let max = self.config.worker.dead_letter_max_bytes;
        headers.push((
            ORIGINAL_BYTES_HEADER.into(),
            payload.len().to_string().into_bytes(),
        ));
        headers.push((
            ORIGINAL_SHA256_HEADER.into(),
            hex::encode(Sha256::digest(payload)).into_bytes(),
        ));
        let kept = if payload.len() > max {
            headers.push((TRUNCATED_HEADER.into(), b"true".to_vec()));
            &payload[..max]
        } else {
            payload
        };
        let original_size: usize = original_headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if original_size <= MAX_COPIED_HEADER_BYTES {
            headers.extend(original_headers);
        } else {
            headers.push((
                "cordon.headers.dropped".into(),
                original_size.to_string().into_bytes(),
            ));
        }
        Record {
            topic: self.config.kafka.dead_letter_topic.clone(),
            key: key.map(|k| String::from_utf8_lossy(&k[..k.len().min(1024)]).into_owned()),
            payload: kept.to_vec(),
            headers,
        }
    }

    fn backoff(&self) -> Duration {
        Duration::from_millis(self.config.worker.retry_backoff_ms)
    }
}

/// The policy in force: the model card's thresholds, overridden per category by the config.
pub fn effective_policy(card_policy: &Policy, config: &Config) -> Result<Policy> {
    let mut policy = card_policy.clone();
    let overrides: HashMap<_, _> = config.policy.thresholds.iter().collect();
    for (category, thresholds) in overrides {
        policy.thresholds.insert(*category, *thresholds);
    }
    policy
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid policy: {e}"))?;
    Ok(policy)
}
