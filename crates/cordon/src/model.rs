//! The model in service and its hot reload.
//!
//! The worker reads the current model once per batch from a [`ModelSlot`]; [`watch`] replaces it
//! when the model directory holds a new version (checked every few seconds) or on SIGHUP. A
//! candidate must load, pass its smoke inference and its canary set; otherwise it is refused, the
//! running model keeps serving, and a log line and `cordon_model_reloads_total{outcome="refused"}`
//! say so. Swapping happens between batches, so no message is lost or scored twice.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use cordon_classifier::{Classifier, ModelCard};
use cordon_domain::Policy;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::worker::effective_policy;

/// A loaded model with the policy in force for it.
pub struct LoadedModel {
    /// The classifier.
    pub classifier: Classifier,
    /// Its card's thresholds with the configured overrides.
    pub policy: Policy,
}

/// The model in service, swappable while the worker runs.
pub type ModelSlot = ArcSwap<LoadedModel>;

/// Loads the configured model (smoke test and canaries included).
pub fn load(config: &Config) -> Result<LoadedModel> {
    cordon_classifier::init_runtime(&config.model.onnxruntime_path())?;
    let classifier = Classifier::load(
        &config.model.dir,
        config.model.sessions,
        config.model.threads,
    )
    .with_context(|| format!("loading the model in {}", config.model.dir.display()))?;
    let policy = effective_policy(&classifier.card().policy, config)?;
    info!(model = %classifier.card().version, dir = %config.model.dir.display(), "model loaded");
    Ok(LoadedModel { classifier, policy })
}

/// Replaces the model in `slot` when a new version appears in the model directory or on SIGHUP,
/// until `shutdown`.
pub async fn watch(
    config: Arc<Config>,
    slot: Arc<ModelSlot>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            error!(error = %e, "cannot watch SIGHUP; model reloads only on new versions");
            None
        }
    };
    metrics
        .model_info
        .with_label_values(&[&slot.load().classifier.card().version])
        .set(1);
    // The last version refused: not tried again until the directory changes or SIGHUP.
    let mut refused: Option<String> = None;
    loop {
        let forced = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => false,
            _ = async { match hangup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => true,
        };
        let current = slot.load().classifier.card().version.clone();
        let candidate = match ModelCard::read(&config.model.dir) {
            Ok(card) => card.version,
            Err(e) if forced => e.to_string(),
            Err(_) => continue, // being replaced, or broken: looked at again next time
        };
        if !forced && (candidate == current || refused.as_deref() == Some(candidate.as_str())) {
            continue;
        }
        info!(current = %current, candidate = %candidate, forced, "loading a model candidate");
        let cfg = Arc::clone(&config);
        match tokio::task::spawn_blocking(move || load(&cfg)).await {
            Ok(Ok(model)) => {
                let version = model.classifier.card().version.clone();
                metrics.model_info.with_label_values(&[&current]).set(0);
                metrics.model_info.with_label_values(&[&version]).set(1);
                metrics.model_reloads.with_label_values(&["loaded"]).inc();
                slot.store(Arc::new(model));
                refused = None;
                info!(from = %current, to = %version, "model replaced");
            }
            Ok(Err(e)) => {
                metrics.model_reloads.with_label_values(&["refused"]).inc();
                error!(candidate = %candidate, error = format!("{e:#}"), serving = %current, "model refused; the running model keeps serving");
                refused = Some(candidate);
            }
            Err(e) => error!(error = %e, "model load task failed"),
        }
    }
}
