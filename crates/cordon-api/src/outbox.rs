//! The outbox relay: publishes moderators' decisions, queued in the review database in the same
//! transaction as the decision, to the verdicts topic — so a decision is never lost nor
//! published without being recorded — and the reporters' and appellants' notices to the
//! outcomes topic; and, every second, the restore of channels whose suspension ended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_domain::Category;
use cordon_ops::{Dependency, Metrics};
use cordon_review::{OutboxTopic, ReviewStore};
use cordon_stream::{Publisher, Record};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::settings::ApiSettings;

/// How often channels whose suspension ended are restored.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How often the moderator agreement gauge is read from the review database.
const AGREEMENT_EVERY: Duration = Duration::from_secs(30);

/// Publishes moderator verdicts from the outbox until `shutdown`, lifts ended suspensions, and
/// refreshes queue gauges.
pub(crate) async fn relay_outbox(
    store: ReviewStore,
    publisher: Publisher,
    settings: Arc<ApiSettings>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let interval = Duration::from_millis(settings.api.outbox_interval_ms);
    let mut last_stats = Instant::now() - Duration::from_secs(60);
    let mut last_agreement = Instant::now() - AGREEMENT_EVERY;
    let mut last_sweep = Instant::now() - SWEEP_EVERY;
    loop {
        let settings = &settings;
        let publisher = &publisher;
        let result = store
            .relay_outbox(500, |rows| async move {
                let records: Vec<Record> = rows
                    .into_iter()
                    .map(|r| Record {
                        topic: match r.topic {
                            OutboxTopic::Verdicts => settings.verdicts_topic.clone(),
                            OutboxTopic::Outcomes => settings.outcomes_topic.clone(),
                        },
                        key: Some(r.key),
                        payload: r.payload.into_bytes(),
                        headers: Vec::new(),
                    })
                    .collect();
                let refused = publisher
                    .publish_all(&records)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(refused
                    .into_iter()
                    .map(|r| {
                        error!(item_id = %records[r.index].key.as_deref().unwrap_or(""), bytes = records[r.index].payload.len(), error = %r.error, "a moderator verdict can never be published; set aside in the outbox");
                        (r.index, r.error.to_string())
                    })
                    .collect())
            })
            .await;
        let published = match result {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "outbox relay failed; decisions stay queued");
                metrics.retried(Dependency::Outbox);
                0
            }
        };
        if published > 0 {
            info!(published, "moderator verdicts published");
        }
        if last_stats.elapsed() >= Duration::from_secs(2) || published > 0 {
            last_stats = Instant::now();
            if let Ok(stats) = store.stats().await {
                metrics.queue_depth.set(stats.open_cases);
                metrics
                    .oldest_case_age_seconds
                    .set(stats.oldest_open_age_seconds as i64);
                metrics.outbox_pending.set(stats.outbox_pending);
                metrics.outbox_refused.set(stats.outbox_refused);
                metrics.appeals_open.set(stats.open_appeals);
                metrics
                    .oldest_appeal_age_seconds
                    .set(stats.oldest_open_appeal_age_seconds as i64);
                metrics.suspensions_overdue.set(stats.overdue_suspensions);
            }
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            match store.lift_ended_suspensions().await {
                Ok(lifted) => {
                    for s in &lifted {
                        info!(channel_id = %s.channel_id, decision_id = s.decision_id, "a channel's suspension ended");
                    }
                }
                Err(e) => warn!(error = %e, "lifting ended suspensions failed; retried shortly"),
            }
        }
        if last_agreement.elapsed() >= AGREEMENT_EVERY {
            last_agreement = Instant::now();
            refresh_agreement(&store, &metrics).await;
        }
        if published == 500 {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Sets `cordon_model_reviews` to the last 24 hours' decisions on model-queued cases (every
/// category and outcome has a series, 0 where nothing was decided).
async fn refresh_agreement(store: &ReviewStore, metrics: &Metrics) {
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let Ok(rows) = store.agreement(Some(since)).await else {
        return;
    };
    for category in Category::ALL {
        let row = rows.iter().find(|r| r.category == category.as_str());
        let (upheld, overturned) = row.map_or((0, 0), |r| (r.upheld, r.overturned));
        for (outcome, count) in [("upheld", upheld), ("overturned", overturned)] {
            metrics
                .model_reviews
                .with_label_values(&[category.as_str(), outcome])
                .set(count);
        }
    }
}
