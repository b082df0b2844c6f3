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
use prometheus::{IntCounterVec, IntGaugeVec};
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
    let dir = config.model.dir.clone();
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
            load: Arc::new(move || load(&config)),
            info: metrics.model_info.clone(),
            reloads: metrics.model_reloads.clone(),
        },
        shutdown,
    )
    .await
}

/// How to reload one kind of model: see [`watch_slot`].
pub struct Reload<T> {
    /// What it is, for log lines.
    pub what: &'static str,
    /// The version in the model directory now, or why it cannot be read.
    pub on_disk: Box<dyn Fn() -> Result<String, String> + Send + Sync>,
    /// The version of a loaded model.
    pub version: fn(&T) -> String,
    /// Loads and checks the model in the directory.
    pub load: Arc<dyn Fn() -> Result<T> + Send + Sync>,
    /// Gauge set to 1 for the version in service.
    pub info: IntGaugeVec,
    /// Reload attempts by outcome.
    pub reloads: IntCounterVec,
}

/// Replaces the model in `slot` when its directory holds a new version (checked every 2 s) or on
/// SIGHUP, until `shutdown`. A candidate that fails to load or its checks is refused (counted,
/// logged) and not tried again until the directory changes or SIGHUP; the running model keeps
/// serving.
pub async fn watch_slot<T: Send + Sync + 'static>(
    slot: Arc<ArcSwap<T>>,
    reload: Reload<T>,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let what = reload.what;
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            error!(error = %e, "cannot watch SIGHUP; {what} reloads only on new versions");
            None
        }
    };
    reload
        .info
        .with_label_values(&[&(reload.version)(&slot.load())])
        .set(1);
    let mut refused: Option<String> = None;
    loop {
        let forced = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => false,
            _ = async { match hangup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => true,
        };
        let current = (reload.version)(&slot.load());
        let candidate = match (reload.on_disk)() {
            Ok(version) => version,
            Err(e) if forced => e,
            Err(_) => continue, // being replaced, or broken: looked at again next time
        };
        if !forced && (candidate == current || refused.as_deref() == Some(candidate.as_str())) {
            continue;
        }
        info!(current = %current, candidate = %candidate, forced, "loading a {what} candidate");
        let load = Arc::clone(&reload.load);
        match tokio::task::spawn_blocking(move || load()).await {
            Ok(Ok(model)) => {
                let version = (reload.version)(&model);
                reload.info.with_label_values(&[&current]).set(0);
                reload.info.with_label_values(&[&version]).set(1);
                reload.reloads.with_label_values(&["loaded"]).inc();
                slot.store(Arc::new(model));
                refused = None;
                info!(from = %current, to = %version, "{what} replaced");
            }
            Ok(Err(e)) => {
                reload.reloads.with_label_values(&["refused"]).inc();
                error!(candidate = %candidate, error = format!("{e:#}"), serving = %current, "{what} refused; the running one keeps serving");
                refused = Some(candidate);
            }
            Err(e) => error!(error = %e, "{what} load task failed"),
        }
    }
}
