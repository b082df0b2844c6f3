//! The model in service and its hot reload.
//!
//! The worker reads the current model once per batch from a [`ModelSlot`]; [`watch`] replaces it
//! when the model directory holds a new version (checked every few seconds) or on SIGHUP. A
//! candidate must load, pass its smoke inference and its canary set; otherwise it is refused, the
//! running model keeps serving, and a log line and `cordon_model_reloads_total{outcome="refused"}`
//! say so. Swapping happens between batches, so no message is lost or scored twice.

use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use cordon_classifier::{Classifier, ModelCard};
use cordon_domain::Policy;
use cordon_ops::Metrics;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::reload::{watch_slot, Reload};
use crate::settings::{ModelConfig, PolicyConfig};

/// A loaded model with the policy in force for it.
pub struct LoadedModel {
    /// The classifier.
    pub classifier: Classifier,
    /// Its card's thresholds with the configured overrides.
    pub policy: Policy,
}

/// The model in service, swappable while the worker runs.
pub type ModelSlot = ArcSwap<LoadedModel>;

/// Loads the configured model (smoke test and canaries included) with the policy overrides.
pub fn load(model: &ModelConfig, overrides: &PolicyConfig) -> Result<LoadedModel> {
    cordon_classifier::init_runtime(&model.onnxruntime_path())?;
    let classifier = Classifier::load(&model.dir, model.sessions, model.threads)
        .with_context(|| format!("loading the model in {}", model.dir.display()))?;
    let policy = effective_policy(&classifier.card().policy, overrides)?;
    info!(model = %classifier.card().version, dir = %model.dir.display(), "model loaded");
    Ok(LoadedModel { classifier, policy })
}

/// The policy in force: the model card's thresholds, overridden per category by the config.
pub fn effective_policy(card_policy: &Policy, overrides: &PolicyConfig) -> Result<Policy> {
    let mut policy = card_policy.clone();
    for (category, thresholds) in &overrides.thresholds {
        policy.thresholds.insert(*category, *thresholds);
    }
    policy
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid policy: {e}"))?;
    Ok(policy)
}

/// Replaces the model in `slot` when a new version appears in the model directory or on SIGHUP,
/// until `shutdown`.
pub async fn watch(
    model: ModelConfig,
    overrides: PolicyConfig,
    slot: Arc<ModelSlot>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let dir = model.dir.clone();
    watch_slot(
        slot,
        Reload {
            what: "model",
            on_disk: Box::new(move || {
                ModelCard::read(&dir)
                    .map(|c| c.version)
                    .map_err(|e| e.to_string())
            }),
            version: |m: &LoadedModel| m.classifier.card().version.clone(),
            load: Arc::new(move || load(&model, &overrides)),
            info: metrics.model_info.clone(),
            reloads: metrics.model_reloads.clone(),
        },
        shutdown,
    )
    .await
}
