//! The consumer-lag gauge.

use std::sync::Arc;
use std::time::Duration;

use cordon_stream::Lag;
use tokio_util::sync::CancellationToken;

use crate::Metrics;

/// Sets `cordon_consumer_lag{role}` to `consumer`'s lag every 5 s until `shutdown`.
pub fn spawn_lag_gauge(
    metrics: &Metrics,
    role: &'static str,
    consumer: Arc<impl Lag>,
    shutdown: CancellationToken,
) {
    let gauge = metrics.consumer_lag.with_label_values(&[role]);
    tokio::spawn(async move {
        loop {
            let c = Arc::clone(&consumer);
            if let Ok(Ok(lag)) =
                tokio::task::spawn_blocking(move || c.lag(Duration::from_secs(2))).await
            {
                gauge.set(lag);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    });
}
