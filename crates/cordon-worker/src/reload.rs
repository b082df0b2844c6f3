//! Hot reload of a model slot: a new version in the model's directory, or SIGHUP, loads and
//! checks a candidate; only one that passes replaces the model in service, between batches.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, IntGaugeVec};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

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
    // Both outcomes' series exist at 0, so that the first refusal is an increase alerts see.
    for outcome in ["loaded", "refused"] {
        reload.reloads.with_label_values(&[outcome]);
    }
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
                // The old version's series goes: only the version in service is reported.
                let _ = reload.info.remove_label_values(&[&current]);
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
