//! The context role: context topic → stale and human checks → encoder + head → policy → verdicts
//! topic + review queue.
//!
//! The worker sends this role the items its fast model is unsure about (`cordon_context::in_band`)
//! and queues no case for them; this role decides them. Per batch, in order: decode the requests,
//! drop versions a newer one overtook and versions a person already decided, score the rest,
//! publish a verdict per item (stage `context`: it outranks the fast verdict of the same version,
//! whatever order they arrive in), wait for the broker's acknowledgements, queue the review cases
//! and state its suppressions (statements of reasons), and only then store the batch's offsets — so a crash re-delivers the batch and every effect is
//! idempotent. Consumers of one group spread the context topic's partitions over machines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use chrono::Utc;
use cordon_context::{ContextCard, ContextModel, ContextRequest, Encoder};
use cordon_domain::{Action, DecidedBy, Policy, Stage, Verdict};
use cordon_ops::{retry, Dependency, Metrics, Stage as PipelineStage};
use cordon_review::{ModelSuppression, NewCase, ReviewStore, SeenItem};
use cordon_stream::{GroupConsumer, Publisher, Received, Record};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::settings::{ContextConfig, ContextSettings, ModelConfig};

/// A loaded context model with the policy in force for it.
pub struct LoadedContext {
    /// The model (head over the shared encoder).
    pub model: ContextModel,
    /// Its card's thresholds.
    pub policy: Policy,
}

/// The context model in service, swappable while the role runs.
pub type ContextSlot = ArcSwap<LoadedContext>;

/// Loads the encoder the context role reads (once per process: it is large).
pub fn load_encoder(c: &ContextConfig, model: &ModelConfig) -> Result<Arc<Encoder>> {
    cordon_classifier::init_runtime(&model.onnxruntime_path())?;
    let dir = c.encoder_dir();
    let encoder = Encoder::load(&dir, c.sessions, c.threads, c.device).with_context(|| {
        format!(
            "loading the encoder in {} (run scripts/setup.sh)",
            dir.display()
        )
    })?;
    info!(encoder = %encoder.card().name, dir = %dir.display(), device = ?c.device, "encoder loaded");
    Ok(Arc::new(encoder))
}

/// Loads the configured context model over `encoder` (smoke test and canaries included).
pub fn load(c: &ContextConfig, encoder: &Arc<Encoder>) -> Result<LoadedContext> {
    let model = ContextModel::load(&c.dir, Arc::clone(encoder), c.sessions, 1, c.device)
        .with_context(|| format!("loading the context model in {}", c.dir.display()))?;
    let policy = model.card().policy.clone();
    info!(model = %model.card().version, dir = %c.dir.display(), "context model loaded");
    Ok(LoadedContext { model, policy })
}

/// The lowest top fast score the worker sends to the context stage: the configured one, else the
/// context card's. `None` when the context stage is off.
pub fn band_low(c: &ContextConfig) -> Result<Option<f32>> {
    if !c.enabled {
        return Ok(None);
    }
    if let Some(b) = c.band_low {
        return Ok(Some(b));
    }
    let card = ContextCard::read(&c.dir).with_context(|| {
        format!(
            "context.enabled is on but the context card in {} cannot be read: train it \
             (scripts/setup.sh) or set context.enabled = false",
            c.dir.display()
        )
    })?;
    Ok(Some(card.band_low))
}

/// A decided batch: verdict records, review cases, suppressions to state, and the request
/// behind each record.
type Decided = (
    Vec<Record>,
    Vec<NewCase>,
    Vec<ModelSuppression>,
    Vec<ContextRequest>,
);

/// Everything the context role needs.
pub struct ContextWorker {
    /// Its settings.
    pub settings: ContextSettings,
    /// Metrics.
    pub metrics: Metrics,
    /// The context model in service.
    pub model: Arc<ContextSlot>,
    /// The review queue.
    pub store: ReviewStore,
    /// Producer for verdicts.
    pub publisher: Publisher,
    /// The context-topic consumer (group member).
    pub consumer: Arc<GroupConsumer>,
}

impl ContextWorker {
    fn backoff(&self) -> Duration {
        self.settings.retry_backoff
    }

    /// Consumes until `shutdown`, then commits the stored offsets.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let c = &self.settings.context;
        let linger = Duration::from_millis(c.batch_linger_ms);
        info!(
            topic = %self.settings.topics.context,
            group = %self.settings.group,
            model = %self.model.load().model.card().version,
            "context role started"
        );
        let m = &self.metrics;
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = self.consumer.next_batch(c.batch_size, linger, Duration::from_millis(500)) => batch,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "receiving from the context topic failed; retrying");
                    m.retried(Dependency::Kafka);
                    tokio::time::sleep(self.backoff()).await;
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            let Some((records, mut cases, mut suppressions, requests)) =
                self.decide(&batch, &shutdown).await?
            else {
                break;
            };
            let stage = Instant::now();
            let Ok(refused) = retry(Dependency::Kafka, &shutdown, self.backoff(), m, || {
                self.publisher.publish_all(&records)
            })
            .await
            else {
                break;
            };
            for r in refused {
                let Some(request) = requests.get(r.index) else {
                    continue;
                };
                error!(item_id = %request.item_id, error = %r.error, "a context verdict can never be published; the fast verdict stands");
                m.unpublishable
                    .with_label_values(&[&self.settings.topics.verdicts])
                    .inc();
                cases.retain(|c| c.item_id != request.item_id);
                cases.extend(fast_case(request));
                suppressions.retain(|s| s.item_id != request.item_id);
            }
            m.observe_stage(PipelineStage::ContextPublish, stage);
            let Ok(queued) = retry(Dependency::Database, &shutdown, self.backoff(), m, || {
                self.store.insert_cases(&cases)
            })
            .await
            else {
                break;
            };
            m.cases_queued.inc_by(queued);
            if !suppressions.is_empty() {
                let Ok(_) = retry(Dependency::Database, &shutdown, self.backoff(), m, || {
                    self.store.state_model_suppressions(&suppressions)
                })
                .await
                else {
                    break;
                };
            }
            self.consumer
                .store_offsets(&batch)
                .context("storing offsets")?;
            debug!(messages = batch.len(), queued, "context batch done");
        }
        info!("context role stopping: committing offsets");
        if let Err(e) = self.consumer.commit_stored() {
            debug!(error = %e, "final offset commit");
        }
        Ok(())
    }

    /// Decides one batch: its verdict records, review cases, and the request behind each record;
    /// `None` when shutdown interrupted.
    async fn decide(
        &self,
        batch: &[Received],
        shutdown: &CancellationToken,
    ) -> Result<Option<Decided>> {
        let m = &self.metrics;
        let mut requests: Vec<ContextRequest> = Vec::with_capacity(batch.len());
        for message in batch {
            match serde_json::from_slice::<ContextRequest>(message.payload().unwrap_or_default()) {
                Ok(r) => requests.push(r),
                Err(e) => {
                    // Only the worker writes this topic: a record that does not decode is a bug or
                    // a foreign writer, never an item to decide. The fast verdict stands for it.
                    error!(partition = message.partition, offset = message.offset, error = %e, "skipping an undecodable context request");
                    m.context_skipped.with_label_values(&["invalid"]).inc();
                }
            }
        }
        if !self.keep_current(&mut requests, shutdown).await {
            return Ok(None);
        }
        let checked_at = Instant::now();
        // A head reads the logits of the fast model it was trained with; a request scored by
        // another one (a fast model reloaded before its head was retrained) is left to the fast
        // verdict, and to a person if the fast model queued it for review.
        let loaded = self.model.load_full();
        let trained_on = loaded.model.card().fast_model.clone();
        let mut fallback = Vec::new();
        requests.retain(|r| {
            if r.fast_model == trained_on {
                return true;
            }
            warn!(item_id = %r.item_id, request = %r.fast_model, head = %trained_on, "context request from another fast model; the fast verdict stands");
            m.context_skipped.with_label_values(&["fast_model"]).inc();
            fallback.extend(fast_case(r));
            false
        });
        if requests.is_empty() {
            return Ok(Some((Vec::new(), fallback, Vec::new(), Vec::new())));
        }
        let scoring = Arc::clone(&loaded);
        let texts: Vec<String> = requests.iter().map(|r| r.text.clone()).collect();
        let fast: Vec<_> = requests.iter().map(|r| r.fast_scores).collect();
        let stage = Instant::now();
        let scores = tokio::task::spawn_blocking(move || scoring.model.score(&texts, &fast))
            .await
            .context("context inference task failed")?
            .context("context inference failed")?;
        m.observe_stage(PipelineStage::Encode, stage);
        // Fence: a role that stalled while scoring (longer than a group session) may have lost
        // these partitions; versions overtaken or decided meanwhile get nothing from it.
        let mut scored: Vec<(ContextRequest, cordon_domain::Scores)> =
            requests.into_iter().zip(scores).collect();
        if checked_at.elapsed() > self.settings.fence_after {
            let mut again: Vec<ContextRequest> = scored.iter().map(|(r, _)| r.clone()).collect();
            if !self.keep_current(&mut again, shutdown).await {
                return Ok(None);
            }
            let kept: std::collections::HashSet<(String, u64)> = again
                .into_iter()
                .map(|r| (r.item_id, r.item_version))
                .collect();
            scored.retain(|(r, _)| kept.contains(&(r.item_id.clone(), r.item_version)));
        }
        let version = loaded.model.card().version.clone();
        let now = Utc::now();
        let mut records = Vec::with_capacity(scored.len());
        let mut cases = fallback;
        let mut suppressions = Vec::new();
        let mut behind = Vec::with_capacity(scored.len());
        for (request, scores) in scored {
            let d = loaded.policy.decide(&scores);
            m.context_decided
                .with_label_values(&[d.category.as_str(), d.action.as_str()])
                .inc();
            let reason = format!("context stage: {}", d.reason);
            if d.action == Action::Review {
                cases.push(NewCase {
                    item_id: request.item_id.clone(),
                    item_version: request.item_version,
                    category: d.category,
                    score: d.score,
                    scores,
                    reason: reason.clone(),
                    model_version: version.clone(),
                    reach: request.reach,
                    language: request.lang.clone(),
                });
            }
            let verdict = Verdict {
                item_id: request.item_id.clone(),
                item_version: request.item_version,
                action: d.action,
                decided_by: DecidedBy::Model {
                    model_version: version.clone(),
                    stage: Stage::Context,
                },
                category: Some(d.category),
                score: Some(d.score),
                scores: Some(scores),
                fast_scores: Some(request.fast_scores),
                reason,
                channel_id: None,
                // The encoder gives no feature weights; people see the fast model's evidence.
                explanation: if d.action == Action::Allow {
                    Vec::new()
                } else {
                    request.fast_explanation.clone()
                },
                decided_at: now,
            };
            debug!(item_id = %verdict.item_id, version = verdict.item_version, action = verdict.action.as_str(), reason = %verdict.reason, "context verdict");
            if d.action == Action::Suppress {
                suppressions.push(ModelSuppression {
                    item_id: request.item_id.clone(),
                    item_version: request.item_version,
                    category: d.category,
                    score: d.score,
                    explanation: verdict.explanation.clone(),
                    facts: None,
                    decided_at: now,
                });
            }
            let age = (now - request.indexed_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
            m.end_to_end_seconds.observe(age.max(0.0));
            records.push(Record {
                topic: self.settings.topics.verdicts.clone(),
                key: Some(verdict.item_id.clone()),
                payload: serde_json::to_vec(&verdict).context("serializing a verdict")?,
                headers: Vec::new(),
            });
            behind.push(request);
        }
        Ok(Some((records, cases, suppressions, behind)))
    }

    /// Drops the requests whose version a newer one overtook or a person already decided;
    /// `false` when shutdown interrupted the lookups.
    async fn keep_current(
        &self,
        requests: &mut Vec<ContextRequest>,
        shutdown: &CancellationToken,
    ) -> bool {
        let m = &self.metrics;
        let keys: Vec<SeenItem<'_>> = requests
            .iter()
            .map(|r| SeenItem {
                id: &r.item_id,
                version: r.item_version,
                item: None,
            })
            .collect();
        let Ok(check) = retry(Dependency::Database, shutdown, self.backoff(), m, || {
            self.store.check_versions(&keys)
        })
        .await
        else {
            return false;
        };
        requests.retain(|r| {
            if !check.is_current(&r.item_id, r.item_version) {
                debug!(item_id = %r.item_id, version = r.item_version, "stale version skipped by the context stage");
                m.context_skipped.with_label_values(&["stale"]).inc();
                return false;
            }
            if check.decision(&r.item_id, r.item_version).is_some() {
                m.context_skipped.with_label_values(&["human"]).inc();
                return false;
            }
            true
        });
        true
    }
}

/// The case the fast model would have queued for `request` (when it decided review): what a
/// person gets when the context stage cannot decide the item.
fn fast_case(request: &ContextRequest) -> Option<NewCase> {
    let (category, score) = request.fast_scores.top();
    (request.fast_action == Action::Review).then(|| NewCase {
        item_id: request.item_id.clone(),
        item_version: request.item_version,
        category,
        score,
        scores: request.fast_scores,
        reason: format!(
            "{} {score:.2}: the context stage could not decide it",
            category.as_str()
        ),
        model_version: request.fast_model.clone(),
        reach: request.reach,
        language: request.lang.clone(),
    })
}
