//! Retrying an operation on a dependency until it succeeds or the process shuts down.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{Dependency, Metrics};

/// The retry loop was interrupted by shutdown; the work was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

/// Runs `op` until it succeeds, waiting `backoff` after each failure (doubling up to 8×), and
/// counting retries under `dependency`; the 1st, 2nd, 4th, 8th ... failure in a row is logged,
/// and the recovery after them. While it retries nothing new is consumed: that is the
/// backpressure that keeps an outage from dropping work.
///
/// Shutdown does not cut an attempt short — in-flight work finishes (each attempt is bounded by
/// the dependency's own timeout, and the whole shutdown by `shutdown.deadline_secs`) — but after
/// a failed attempt it stops retrying and reports [`Interrupted`].
pub async fn retry<T, E, F, Fut>(
    dependency: Dependency,
    shutdown: &CancellationToken,
    backoff: Duration,
    metrics: &Metrics,
    mut op: F,
) -> Result<T, Interrupted>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = backoff;
    let mut failures: u64 = 0;
    loop {
        match op().await {
            Ok(v) => {
                if failures > 0 {
                    info!(%dependency, failures, "dependency answers again");
                }
                return Ok(v);
            }
            Err(_) if shutdown.is_cancelled() => return Err(Interrupted),
            Err(e) => {
                failures += 1;
                // The 1st, 2nd, 4th, 8th ... failure in a row: a long outage writes a few lines,
                // not one per attempt.
                if failures.is_power_of_two() {
                    warn!(%dependency, error = %e, failures, retry_in_ms = wait.as_millis() as u64, "dependency failed; retrying");
                }
                metrics.retried(dependency);
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(Interrupted),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(backoff * 8);
            }
        }
    }
}
