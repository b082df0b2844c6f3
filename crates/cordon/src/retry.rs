//! Retrying an operation on a dependency until it succeeds or the process shuts down.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use prometheus::IntCounterVec;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The retry loop was interrupted by shutdown; the work was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

/// Runs `op` until it succeeds, waiting `backoff` after each failure (doubling up to 8×), and
/// counting retries under `dependency`. While it retries nothing new is consumed: that is the
/// backpressure that keeps an outage from dropping work.
///
/// Shutdown does not cut an attempt short — in-flight work finishes (each attempt is bounded by
/// the dependency's own timeout, and the whole shutdown by `shutdown.deadline_secs`) — but after
/// a failed attempt it stops retrying and reports [`Interrupted`].
pub async fn retry<T, E, F, Fut>(
    dependency: &str,
    shutdown: &CancellationToken,
    backoff: Duration,
    retries: &IntCounterVec,
    mut op: F,
) -> Result<T, Interrupted>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = backoff;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(_) if shutdown.is_cancelled() => return Err(Interrupted),
            Err(e) => {
                warn!(dependency, error = %e, retry_in_ms = wait.as_millis() as u64, "dependency failed; retrying");
                retries.with_label_values(&[dependency]).inc();
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(Interrupted),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(backoff * 8);
            }
        }
    }
}
