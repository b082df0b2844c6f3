//! The submitter: drains the statement queue through the client, a batch at a time, waiting
//! `interval_secs` when it is empty and backing off (doubling, up to `max_backoff_secs`) while
//! the database or the review store fails.

use std::time::Duration;

use cordon_ops::{Dependency, Metrics};
use cordon_review::{ReviewError, ReviewStore, Submitted};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{Failure, TdbClient, TransparencyConfig};

/// Submits queued statements until `shutdown` (a call in flight finishes first); fails only
/// when it cannot start (no HTTP client).
pub async fn run(
    config: TransparencyConfig,
    store: ReviewStore,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let client = TdbClient::new(
        &config.url,
        config.token.clone(),
        Duration::from_secs(config.timeout_secs),
    )?;
    for outcome in ["accepted", "known", "rejected"] {
        metrics.statements_submitted.with_label_values(&[outcome]);
    }
    for reason in ["unavailable", "unauthorized", "refused"] {
        metrics
            .statement_submissions_failed
            .with_label_values(&[reason]);
    }
    info!(url = %config.url, batch_size = config.batch_size, "statement submitter started");
    let first_backoff = Duration::from_millis(config.retry_backoff_ms);
    let mut backoff = first_backoff;
    let mut failures: u64 = 0;
    while !shutdown.is_cancelled() {
        let m = &metrics;
        let client = &client;
        let round = store
            .submit_statements(config.batch_size as i64, |batch| async move {
                let answers = client.submit(&batch).await.map_err(|f| {
                    m.statement_submissions_failed
                        .with_label_values(&[f.reason()])
                        .inc();
                    f.to_string()
                })?;
                for (id, answer) in &answers {
                    let outcome = match answer {
                        Submitted::Accepted { .. } => "accepted",
                        Submitted::Known => "known",
                        Submitted::Rejected { reason } => {
                            warn!(statement_id = id, %reason, "the Transparency Database rejected a statement");
                            "rejected"
                        }
                    };
                    m.statements_submitted.with_label_values(&[outcome]).inc();
                }
                debug!(sent = batch.len(), settled = answers.len(), "statements submitted");
                Ok(answers)
            })
            .await;
        let wait = match round {
            Ok(settled) => {
                if failures > 0 {
                    info!(failures, "statement submissions succeed again");
                }
                failures = 0;
                backoff = first_backoff;
                if settled > 0 {
                    continue;
                }
                Duration::from_secs(config.interval_secs)
            }
            Err(e) => {
                failures += 1;
                // The 1st, 2nd, 4th, 8th ... failure in a row: a long outage writes a few lines.
                if failures.is_power_of_two() {
                    warn!(error = %e, failures, retry_in_ms = backoff.as_millis() as u64, "submitting statements failed; they stay queued");
                }
                if !matches!(e, ReviewError::Submit(_)) {
                    m.retried(Dependency::Database);
                }
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(config.max_backoff_secs));
                wait
            }
        };
        // The backlog's gauges, also while calls fail (when the queue grows).
        refresh(&store, m).await;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    info!("statement submitter stopped");
    Ok(())
}

/// Sets the queue's gauges from the store.
async fn refresh(store: &ReviewStore, metrics: &Metrics) {
    match store.submission_backlog().await {
        Ok((queued, rejected)) => {
            metrics.statements_queued.set(queued);
            metrics.statements_rejected.set(rejected);
        }
        Err(e) => debug!(error = %e, "reading the statement backlog failed"),
    }
}
