//! Classification: the fast model's scores and the policy's decision for each item, with its
//! explanation, its review case, or its request to the context stage.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Utc;
use cordon_context::ContextRequest;
use cordon_domain::{Action, ContentItem, DecidedBy, Stage as VerdictStage, Verdict};
use cordon_ops::Stage;
use cordon_review::NewCase;

use crate::worker::Worker;

/// How many features an explanation names.
pub const EXPLAIN_FEATURES: usize = 5;

/// What the worker decided for one item: the fast verdict, a review case, or a request to the
/// context stage (which then decides whether to queue it).
pub(crate) struct Classified {
    pub(crate) verdict: Verdict,
    pub(crate) case: Option<NewCase>,
    pub(crate) context: Option<ContextRequest>,
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

impl Worker {
    /// Scores the items and applies the policy: a verdict per item, and a case for review items or,
    /// for items in the context stage's band, a request to it.
    pub(crate) async fn classify(&self, items: &[ContentItem]) -> Result<Vec<Classified>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.model.load_full();
        let texts: Arc<Vec<String>> =
            Arc::new(items.iter().map(ContentItem::classifier_text).collect());
        let (scoring, read) = (Arc::clone(&model), Arc::clone(&texts));
        let metrics = self.metrics.clone();
        let scored = tokio::task::spawn_blocking(move || {
            let texts = read;
            let started = Instant::now();
            let classifier = &scoring.classifier;
            let features: Vec<_> = texts.iter().map(|t| classifier.featurize(t)).collect();
            metrics.observe_stage(Stage::Featurize, started);
            let started = Instant::now();
            let scores = classifier.score_features(&features);
            metrics.observe_stage(Stage::Infer, started);
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
                    .settings
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
                        stage: VerdictStage::Fast,
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
}
