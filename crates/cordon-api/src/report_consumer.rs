//! The report consumer: files the reports that arrive on the reports topic (the same checks as
//! `POST /v1/reports`).

use std::time::Duration;

use cordon_review::ReportOutcome;
use cordon_stream::GroupConsumer;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::routes::reports::{file_report, ReportBody, ReportFailure};
use crate::ApiState;

/// Files the reports that arrive on the reports topic until `shutdown`. A report that cannot
/// be filed (bad JSON, bad signature, unknown item, rate limit, a value the database refuses) is
/// logged, counted and skipped; only while the database is unavailable does the consumer wait
/// and retry, storing no offset.
pub async fn consume_reports(s: ApiState, consumer: GroupConsumer, shutdown: CancellationToken) {
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return,
            b = consumer.next_batch(100, Duration::from_millis(20), Duration::from_millis(500)) => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "receiving reports failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for message in &batch {
            let parsed = message
                .payload()
                .ok_or_else(|| "empty message".to_string())
                .and_then(|p| {
                    if p.len() > s.settings.api.max_body_bytes {
                        return Err(format!("{} bytes, over api.max_body_bytes", p.len()));
                    }
                    serde_json::from_slice::<ReportBody>(p).map_err(|e| e.to_string())
                });
            // Only an unavailable store is retried (its own error kind says so); everything
            // else is the report's fault and skips it.
            let outcome: Result<ReportOutcome, String> = match parsed {
                Err(e) => Err(e),
                Ok(body) => loop {
                    match file_report(&s, body.clone()).await {
                        Err(ReportFailure::Store(e)) if e.is_unavailable() => {
                            warn!(error = %e, "database unavailable; the report waits");
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            }
                        }
                        Err(ReportFailure::Store(e)) => break Err(e.to_string()),
                        Err(ReportFailure::Refused(e)) => break Err(e.message().to_string()),
                        Ok(outcome) => break Ok(outcome),
                    }
                },
            };
            let label = match &outcome {
                Ok(_) => "filed",
                Err(e) => {
                    warn!(offset = message.offset, error = %e, "report from the topic skipped");
                    "skipped"
                }
            };
            s.metrics.reports.with_label_values(&["kafka", label]).inc();
        }
        if let Err(e) = consumer.store_offsets(&batch) {
            warn!(error = %e, "storing report offsets failed");
        }
    }
}
