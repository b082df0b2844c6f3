//! Prometheus metrics of every role, served at `GET /metrics`.

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// All of Cordon's metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Messages received from the content topic by the worker.
    pub consumed: IntCounter,
    /// Messages decoded into content items.
    pub decoded: IntCounter,
    /// Messages sent to the dead-letter topic, by reason code.
    pub dead_lettered: IntCounterVec,
    /// Records that can never be published (too large or invalid), set aside, by the topic they
    /// were meant for.
    pub unpublishable: IntCounterVec,
    /// Items skipped because a newer version of them was already seen.
    pub stale_items: IntCounter,
    /// Verdicts a stalled worker dropped at its fence because a newer version overtook them.
    pub fenced: IntCounter,
    /// Items classified, by category and action.
    pub classified: IntCounterVec,
    /// Items the worker sent to the context stage (fast top score in its band).
    pub context_requested: IntCounter,
    /// Items the context stage decided, by category and action.
    pub context_decided: IntCounterVec,
    /// Context requests the context stage did not decide, by reason (stale, human, invalid).
    pub context_skipped: IntCounterVec,
    /// Context model reload attempts, by outcome (loaded, refused).
    pub context_model_reloads: IntCounterVec,
    /// 1 for the context model version in service.
    pub context_model_info: IntGaugeVec,
    /// Messages per worker batch.
    pub batch_size: Histogram,
    /// Seconds per batch spent in each stage: `decode`, `versions`, `featurize`, `infer`,
    /// `publish`, `queue` (worker) and `apply`, `commit` (indexer).
    pub stage_seconds: HistogramVec,
    /// Seconds from an item's `indexed_at` to its verdict being acknowledged.
    pub end_to_end_seconds: Histogram,
    /// Seconds from a verdict's decision to its effect being searchable (indexer).
    pub verdict_apply_seconds: Histogram,
    /// Consumer lag in messages, by role.
    pub consumer_lag: IntGaugeVec,
    /// Records applied by the indexer, by kind (content, verdict) and outcome (changed, stale, invalid).
    pub indexed: IntCounterVec,
    /// The next offset per topic and partition in the index's last commit: what it has applied.
    pub index_offset: IntGaugeVec,
    /// Review cases newly queued.
    pub cases_queued: IntCounter,
    /// Unresolved review cases.
    pub queue_depth: IntGauge,
    /// Age of the oldest unresolved case, in seconds.
    pub oldest_case_age_seconds: IntGauge,
    /// Moderator verdicts waiting in the outbox.
    pub outbox_pending: IntGauge,
    /// Moderator verdicts set aside in the outbox because they can never be published.
    pub outbox_refused: IntGauge,
    /// Moderator decisions recorded, by action.
    pub decisions: IntCounterVec,
    /// Retries after a failure of a dependency, by dependency (database, kafka).
    pub retries: IntCounterVec,
    /// HTTP request durations, by route.
    pub http_seconds: HistogramVec,
    /// User reports, by source (http, kafka) and outcome (filed, refused, skipped).
    pub reports: IntCounterVec,
    /// Model reload attempts, by outcome (loaded, refused).
    pub model_reloads: IntCounterVec,
    /// 1 for the model version in service.
    pub model_info: IntGaugeVec,
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid histogram")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let latency = exponential_buckets(0.0005, 2.0, 16).expect("valid buckets");
        let m = Metrics {
            registry: Registry::new_custom(Some("cordon".into()), None).expect("valid registry"),
            consumed: IntCounter::new("consumed_total", "Messages received from the content topic")
                .expect("valid counter"),
            decoded: IntCounter::new("decoded_total", "Messages decoded into content items")
                .expect("valid counter"),
            dead_lettered: counter_vec(
                "dead_lettered_total",
                "Messages sent to the dead-letter topic, by reason",
                &["reason"],
            ),
            unpublishable: counter_vec(
                "unpublishable_total",
                "Records set aside because they can never be published, by destination topic",
                &["topic"],
            ),
            fenced: IntCounter::new(
                "fenced_total",
                "Verdicts dropped before publishing because a newer version overtook them while the worker stalled",
            )
            .expect("valid counter"),
            stale_items: IntCounter::new(
                "stale_items_total",
                "Items skipped because a newer version was already seen",
            )
            .expect("valid counter"),
            classified: counter_vec(
                "classified_total",
                "Items classified, by category and action",
                &["category", "action"],
            ),
            context_requested: IntCounter::new(
                "context_requested_total",
                "Items the worker sent to the context stage",
            )
            .expect("valid counter"),
            context_decided: counter_vec(
                "context_decided_total",
                "Items the context stage decided, by category and action",
                &["category", "action"],
            ),
            context_skipped: counter_vec(
                "context_skipped_total",
                "Context requests not decided, by reason (stale, human, invalid)",
                &["reason"],
            ),
            context_model_reloads: counter_vec(
                "context_model_reloads_total",
                "Context model reload attempts, by outcome",
                &["outcome"],
            ),
            context_model_info: IntGaugeVec::new(
                Opts::new("context_model_info", "1 for the context model version in service"),
                &["version"],
            )
            .expect("valid gauge"),
            batch_size: histogram(
                "batch_size",
                "Messages per worker batch",
                exponential_buckets(1.0, 2.0, 12).expect("valid buckets"),
            ),
            stage_seconds: HistogramVec::new(
                HistogramOpts::new("stage_seconds", "Seconds per batch in each pipeline stage")
                    .buckets(exponential_buckets(0.000_01, 2.0, 22).expect("valid buckets")),
                &["stage"],
            )
            .expect("valid histogram"),
            end_to_end_seconds: histogram(
                "end_to_end_seconds",
                "Seconds from an item's indexed_at to its acknowledged verdict",
                latency.clone(),
            ),
            verdict_apply_seconds: histogram(
                "verdict_apply_seconds",
                "Seconds from a verdict's decision to its effect being searchable",
                latency.clone(),
            ),
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "consumer_lag",
                    "Messages behind the high watermark, by role",
                ),
                &["role"],
            )
            .expect("valid gauge"),
            indexed: counter_vec(
                "indexed_total",
                "Records applied by the indexer, by kind and outcome",
                &["kind", "outcome"],
            ),
            index_offset: IntGaugeVec::new(
                Opts::new(
                    "index_committed_offset",
                    "Next offset per topic and partition committed with the index",
                ),
                &["topic", "partition"],
            )
            .expect("valid gauge"),
            cases_queued: IntCounter::new("cases_queued_total", "Review cases newly queued")
                .expect("valid counter"),
            queue_depth: IntGauge::new("queue_depth", "Unresolved review cases")
                .expect("valid gauge"),
            oldest_case_age_seconds: IntGauge::new(
                "oldest_open_case_age_seconds",
                "Age of the oldest unresolved case",
            )
            .expect("valid gauge"),
            outbox_pending: IntGauge::new(
                "outbox_pending",
                "Moderator verdicts waiting to be published",
            )
            .expect("valid gauge"),
            outbox_refused: IntGauge::new(
                "outbox_refused",
                "Moderator verdicts set aside because they can never be published",
            )
            .expect("valid gauge"),
            decisions: counter_vec(
                "decisions_total",
                "Moderator decisions recorded, by action",
                &["action"],
            ),
            retries: counter_vec(
                "retries_total",
                "Retries after a dependency failed, by dependency",
                &["dependency"],
            ),
            http_seconds: HistogramVec::new(
                HistogramOpts::new("http_request_seconds", "HTTP request durations by route")
                    .buckets(latency),
                &["route"],
            )
            .expect("valid histogram"),
            reports: counter_vec(
                "reports_total",
                "User reports, by source and outcome",
                &["source", "outcome"],
            ),
            model_reloads: counter_vec(
                "model_reloads_total",
                "Model reload attempts, by outcome",
                &["outcome"],
            ),
            model_info: IntGaugeVec::new(
                Opts::new("model_info", "1 for the model version in service"),
                &["version"],
            )
            .expect("valid gauge"),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.consumed.clone()),
            Box::new(m.decoded.clone()),
            Box::new(m.dead_lettered.clone()),
            Box::new(m.unpublishable.clone()),
            Box::new(m.stale_items.clone()),
            Box::new(m.fenced.clone()),
            Box::new(m.classified.clone()),
            Box::new(m.context_requested.clone()),
            Box::new(m.context_decided.clone()),
            Box::new(m.context_skipped.clone()),
            Box::new(m.context_model_reloads.clone()),
            Box::new(m.context_model_info.clone()),
            Box::new(m.batch_size.clone()),
            Box::new(m.stage_seconds.clone()),
            Box::new(m.end_to_end_seconds.clone()),
            Box::new(m.verdict_apply_seconds.clone()),
            Box::new(m.consumer_lag.clone()),
            Box::new(m.indexed.clone()),
            Box::new(m.index_offset.clone()),
            Box::new(m.cases_queued.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.oldest_case_age_seconds.clone()),
            Box::new(m.outbox_pending.clone()),
            Box::new(m.outbox_refused.clone()),
            Box::new(m.decisions.clone()),
            Box::new(m.retries.clone()),
            Box::new(m.http_seconds.clone()),
            Box::new(m.reports.clone()),
            Box::new(m.model_reloads.clone()),
            Box::new(m.model_info.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric registered once");
        }
        m
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Records the time since `started` as a batch's time in `stage` of `cordon_stage_seconds`.
pub fn observe_stage(stages: &HistogramVec, stage: &str, started: std::time::Instant) {
    stages
        .with_label_values(&[stage])
        .observe(started.elapsed().as_secs_f64());
}
