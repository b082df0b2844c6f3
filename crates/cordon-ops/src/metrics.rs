//! Prometheus metrics of every role, served at `GET /metrics`.

use std::time::Instant;

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The exposed name of every metric, for dashboards, alerts and tests.
pub mod names {
    /// `cordon_consumed_total`.
    pub const CONSUMED_TOTAL: &str = "cordon_consumed_total";
    /// `cordon_decoded_total`.
    pub const DECODED_TOTAL: &str = "cordon_decoded_total";
    /// `cordon_dead_lettered_total`.
    pub const DEAD_LETTERED_TOTAL: &str = "cordon_dead_lettered_total";
    /// `cordon_unpublishable_total`.
    pub const UNPUBLISHABLE_TOTAL: &str = "cordon_unpublishable_total";
    /// `cordon_fenced_total`.
    pub const FENCED_TOTAL: &str = "cordon_fenced_total";
    /// `cordon_stale_items_total`.
    pub const STALE_ITEMS_TOTAL: &str = "cordon_stale_items_total";
    /// `cordon_classified_total`.
    pub const CLASSIFIED_TOTAL: &str = "cordon_classified_total";
    /// `cordon_context_requested_total`.
    pub const CONTEXT_REQUESTED_TOTAL: &str = "cordon_context_requested_total";
    /// `cordon_context_decided_total`.
    pub const CONTEXT_DECIDED_TOTAL: &str = "cordon_context_decided_total";
    /// `cordon_context_skipped_total`.
    pub const CONTEXT_SKIPPED_TOTAL: &str = "cordon_context_skipped_total";
    /// `cordon_context_model_reloads_total`.
    pub const CONTEXT_MODEL_RELOADS_TOTAL: &str = "cordon_context_model_reloads_total";
    /// `cordon_context_model_info`.
    pub const CONTEXT_MODEL_INFO: &str = "cordon_context_model_info";
    /// `cordon_batch_size`.
    pub const BATCH_SIZE: &str = "cordon_batch_size";
    /// `cordon_stage_seconds`.
    pub const STAGE_SECONDS: &str = "cordon_stage_seconds";
    /// `cordon_end_to_end_seconds`.
    pub const END_TO_END_SECONDS: &str = "cordon_end_to_end_seconds";
    /// `cordon_verdict_apply_seconds`.
    pub const VERDICT_APPLY_SECONDS: &str = "cordon_verdict_apply_seconds";
    /// `cordon_consumer_lag`.
    pub const CONSUMER_LAG: &str = "cordon_consumer_lag";
    /// `cordon_kafka_requests_total`.
    pub const KAFKA_REQUESTS_TOTAL: &str = "cordon_kafka_requests_total";
    /// `cordon_indexed_total`.
    pub const INDEXED_TOTAL: &str = "cordon_indexed_total";
    /// `cordon_index_committed_offset`.
    pub const INDEX_COMMITTED_OFFSET: &str = "cordon_index_committed_offset";
    /// `cordon_cases_queued_total`.
    pub const CASES_QUEUED_TOTAL: &str = "cordon_cases_queued_total";
    /// `cordon_queue_depth`.
    pub const QUEUE_DEPTH: &str = "cordon_queue_depth";
    /// `cordon_oldest_open_case_age_seconds`.
    pub const OLDEST_OPEN_CASE_AGE_SECONDS: &str = "cordon_oldest_open_case_age_seconds";
    /// `cordon_appeals_open`.
    pub const APPEALS_OPEN: &str = "cordon_appeals_open";
    /// `cordon_oldest_open_appeal_age_seconds`.
    pub const OLDEST_OPEN_APPEAL_AGE_SECONDS: &str = "cordon_oldest_open_appeal_age_seconds";
    /// `cordon_suspensions_overdue`.
    pub const SUSPENSIONS_OVERDUE: &str = "cordon_suspensions_overdue";
    /// `cordon_outbox_pending`.
    pub const OUTBOX_PENDING: &str = "cordon_outbox_pending";
    /// `cordon_outbox_refused`.
    pub const OUTBOX_REFUSED: &str = "cordon_outbox_refused";
    /// `cordon_decisions_total`.
    pub const DECISIONS_TOTAL: &str = "cordon_decisions_total";
    /// `cordon_model_reviews`.
    pub const MODEL_REVIEWS: &str = "cordon_model_reviews";
    /// `cordon_retries_total`.
    pub const RETRIES_TOTAL: &str = "cordon_retries_total";
    /// `cordon_http_request_seconds`.
    pub const HTTP_REQUEST_SECONDS: &str = "cordon_http_request_seconds";
    /// `cordon_reports_total`.
    pub const REPORTS_TOTAL: &str = "cordon_reports_total";
    /// `cordon_appeals_total`.
    pub const APPEALS_TOTAL: &str = "cordon_appeals_total";
    /// `cordon_statements_submitted_total`.
    pub const STATEMENTS_SUBMITTED_TOTAL: &str = "cordon_statements_submitted_total";
    /// `cordon_statement_submissions_failed_total`.
    pub const STATEMENT_SUBMISSIONS_FAILED_TOTAL: &str =
        "cordon_statement_submissions_failed_total";
    /// `cordon_statements_queued`.
    pub const STATEMENTS_QUEUED: &str = "cordon_statements_queued";
    /// `cordon_statements_rejected`.
    pub const STATEMENTS_REJECTED: &str = "cordon_statements_rejected";
    /// `cordon_model_reloads_total`.
    pub const MODEL_RELOADS_TOTAL: &str = "cordon_model_reloads_total";
    /// `cordon_model_info`.
    pub const MODEL_INFO: &str = "cordon_model_info";
    /// `cordon_build_info`.
    pub const BUILD_INFO: &str = "cordon_build_info";
    /// `process_cpu_seconds_total` (and the other `process_*` metrics of Prometheus' process
    /// collector: resident and virtual memory, open file descriptors, threads, start time).
    pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
    /// `process_resident_memory_bytes`.
    pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
}

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
    stage_seconds: HistogramVec,
    /// Seconds from an item's `indexed_at` to its verdict being acknowledged.
    pub end_to_end_seconds: Histogram,
    /// Seconds from a verdict's decision to its effect being searchable (indexer).
    pub verdict_apply_seconds: Histogram,
    /// Consumer lag in messages, by role.
    pub consumer_lag: IntGaugeVec,
    /// Requests Kafka clients sent to the brokers, by role, client kind and request type.
    pub kafka_requests: IntCounterVec,
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
    /// Appeals waiting for a decision.
    pub appeals_open: IntGauge,
    /// Age of the oldest appeal waiting, in seconds.
    pub oldest_appeal_age_seconds: IntGauge,
    /// Strike suspensions past their end for over a minute and not yet lifted.
    pub suspensions_overdue: IntGauge,
    /// Moderator verdicts waiting in the outbox.
    pub outbox_pending: IntGauge,
    /// Moderator verdicts set aside in the outbox because they can never be published.
    pub outbox_refused: IntGauge,
    /// Moderator decisions recorded, by action.
    pub decisions: IntCounterVec,
    /// Model-queued cases moderators decided in the last 24 hours, by category and outcome
    /// (`upheld`: suppressed, `overturned`: restored), from the review database.
    pub model_reviews: IntGaugeVec,
    /// Retries after a failure of a dependency, by dependency (database, kafka).
    retries: IntCounterVec,
    /// HTTP request durations, by method, route and status code.
    pub http_seconds: HistogramVec,
    /// User reports, by source (http, kafka) and outcome (filed, refused, skipped).
    pub reports: IntCounterVec,
    /// Appeals, by event (filed, duplicate, refused, upheld, reversed).
    pub appeals: IntCounterVec,
    /// Statements of reasons the Transparency Database answered, by outcome (accepted, known,
    /// rejected).
    pub statements_submitted: IntCounterVec,
    /// Submissions to the Transparency Database that settled nothing, by reason (unavailable,
    /// unauthorized, refused).
    pub statement_submissions_failed: IntCounterVec,
    /// Statements of reasons waiting to be submitted.
    pub statements_queued: IntGauge,
    /// Statements of reasons the Transparency Database rejected (each kept with its reason).
    pub statements_rejected: IntGauge,
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

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let latency = exponential_buckets(0.0005, 2.0, 16).expect("valid buckets");
        let m = Metrics {
            registry: Registry::new(),
            consumed: IntCounter::new(names::CONSUMED_TOTAL, "Messages received from the content topic")
                .expect("valid counter"),
            decoded: IntCounter::new(names::DECODED_TOTAL, "Messages decoded into content items")
                .expect("valid counter"),
            dead_lettered: counter_vec(
                names::DEAD_LETTERED_TOTAL,
                "Messages sent to the dead-letter topic, by reason",
                &["reason"],
            ),
            unpublishable: counter_vec(
                names::UNPUBLISHABLE_TOTAL,
                "Records set aside because they can never be published, by destination topic",
                &["topic"],
            ),
            fenced: IntCounter::new(
                names::FENCED_TOTAL,
                "Verdicts dropped before publishing because a newer version overtook them while the worker stalled",
            )
            .expect("valid counter"),
            stale_items: IntCounter::new(
                names::STALE_ITEMS_TOTAL,
                "Items skipped because a newer version was already seen",
            )
            .expect("valid counter"),
            classified: counter_vec(
                names::CLASSIFIED_TOTAL,
                "Items classified, by category and action",
                &["category", "action"],
            ),
            context_requested: IntCounter::new(
                names::CONTEXT_REQUESTED_TOTAL,
                "Items the worker sent to the context stage",
            )
            .expect("valid counter"),
            context_decided: counter_vec(
                names::CONTEXT_DECIDED_TOTAL,
                "Items the context stage decided, by category and action",
                &["category", "action"],
            ),
            context_skipped: counter_vec(
                names::CONTEXT_SKIPPED_TOTAL,
                "Context requests not decided, by reason (stale, human, invalid)",
                &["reason"],
            ),
            context_model_reloads: counter_vec(
                names::CONTEXT_MODEL_RELOADS_TOTAL,
                "Context model reload attempts, by outcome",
                &["outcome"],
            ),
            context_model_info: IntGaugeVec::new(
                Opts::new(names::CONTEXT_MODEL_INFO, "1 for the context model version in service"),
                &["version"],
            )
            .expect("valid gauge"),
            batch_size: histogram(
                names::BATCH_SIZE,
                "Messages per worker batch",
                exponential_buckets(1.0, 2.0, 12).expect("valid buckets"),
            ),
            stage_seconds: HistogramVec::new(
                HistogramOpts::new(names::STAGE_SECONDS, "Seconds per batch in each pipeline stage")
                    .buckets(exponential_buckets(0.000_01, 2.0, 22).expect("valid buckets")),
                &["stage"],
            )
            .expect("valid histogram"),
            end_to_end_seconds: histogram(
                names::END_TO_END_SECONDS,
                "Seconds from an item's indexed_at to its acknowledged verdict",
                latency.clone(),
            ),
            verdict_apply_seconds: histogram(
                names::VERDICT_APPLY_SECONDS,
                "Seconds from a verdict's decision to its effect being searchable",
                latency.clone(),
            ),
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    names::CONSUMER_LAG,
                    "Messages behind the high watermark, by role",
                ),
                &["role"],
            )
            .expect("valid gauge"),
            kafka_requests: counter_vec(
                names::KAFKA_REQUESTS_TOTAL,
                "Requests Kafka clients sent to the brokers, by role, client and request type",
                &["role", "client", "request"],
            ),
            indexed: counter_vec(
                names::INDEXED_TOTAL,
                "Records applied by the indexer, by kind and outcome",
                &["kind", "outcome"],
            ),
            index_offset: IntGaugeVec::new(
                Opts::new(
                    names::INDEX_COMMITTED_OFFSET,
                    "Next offset per topic and partition committed with the index",
                ),
                &["topic", "partition"],
            )
            .expect("valid gauge"),
            cases_queued: IntCounter::new(names::CASES_QUEUED_TOTAL, "Review cases newly queued")
                .expect("valid counter"),
            queue_depth: IntGauge::new(names::QUEUE_DEPTH, "Unresolved review cases")
                .expect("valid gauge"),
            oldest_case_age_seconds: IntGauge::new(
                names::OLDEST_OPEN_CASE_AGE_SECONDS,
                "Age of the oldest unresolved case",
            )
            .expect("valid gauge"),
            appeals_open: IntGauge::new(names::APPEALS_OPEN, "Appeals waiting for a decision")
                .expect("valid gauge"),
            oldest_appeal_age_seconds: IntGauge::new(
                names::OLDEST_OPEN_APPEAL_AGE_SECONDS,
                "Age of the oldest appeal waiting for a decision",
            )
            .expect("valid gauge"),
            suspensions_overdue: IntGauge::new(
                names::SUSPENSIONS_OVERDUE,
                "Strike suspensions past their end for over a minute and not lifted",
            )
            .expect("valid gauge"),
            outbox_pending: IntGauge::new(
                names::OUTBOX_PENDING,
                "Moderator verdicts waiting to be published",
            )
            .expect("valid gauge"),
            outbox_refused: IntGauge::new(
                names::OUTBOX_REFUSED,
                "Moderator verdicts set aside because they can never be published",
            )
            .expect("valid gauge"),
            decisions: counter_vec(
                names::DECISIONS_TOTAL,
                "Moderator decisions recorded, by action",
                &["action"],
            ),
            model_reviews: IntGaugeVec::new(
                Opts::new(
                    names::MODEL_REVIEWS,
                    "Model-queued cases moderators decided in the last 24 hours, by category and outcome",
                ),
                &["category", "outcome"],
            )
            .expect("valid gauge"),
            retries: counter_vec(
                names::RETRIES_TOTAL,
                "Retries after a dependency failed, by dependency",
                &["dependency"],
            ),
            http_seconds: HistogramVec::new(
                HistogramOpts::new(
                    names::HTTP_REQUEST_SECONDS,
                    "HTTP request durations by method, route and status code",
                )
                .buckets(latency),
                &["method", "route", "status"],
            )
            .expect("valid histogram"),
            reports: counter_vec(
                names::REPORTS_TOTAL,
                "User reports, by source and outcome",
                &["source", "outcome"],
            ),
            appeals: counter_vec(
                names::APPEALS_TOTAL,
                "Appeals of restrictions, by event",
                &["event"],
            ),
            statements_submitted: counter_vec(
                names::STATEMENTS_SUBMITTED_TOTAL,
                "Statements of reasons the Transparency Database answered, by outcome",
                &["outcome"],
            ),
            statement_submissions_failed: counter_vec(
                names::STATEMENT_SUBMISSIONS_FAILED_TOTAL,
                "Submissions to the Transparency Database that settled nothing, by reason",
                &["reason"],
            ),
            statements_queued: IntGauge::new(
                names::STATEMENTS_QUEUED,
                "Statements of reasons waiting to be submitted to the Transparency Database",
            )
            .expect("valid gauge"),
            statements_rejected: IntGauge::new(
                names::STATEMENTS_REJECTED,
                "Statements of reasons the Transparency Database rejected",
            )
            .expect("valid gauge"),
            model_reloads: counter_vec(
                names::MODEL_RELOADS_TOTAL,
                "Model reload attempts, by outcome",
                &["outcome"],
            ),
            model_info: IntGaugeVec::new(
                Opts::new(names::MODEL_INFO, "1 for the model version in service"),
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
            Box::new(m.kafka_requests.clone()),
            Box::new(m.indexed.clone()),
            Box::new(m.index_offset.clone()),
            Box::new(m.cases_queued.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.oldest_case_age_seconds.clone()),
            Box::new(m.appeals_open.clone()),
            Box::new(m.oldest_appeal_age_seconds.clone()),
            Box::new(m.suspensions_overdue.clone()),
            Box::new(m.outbox_pending.clone()),
            Box::new(m.outbox_refused.clone()),
            Box::new(m.decisions.clone()),
            Box::new(m.model_reviews.clone()),
            Box::new(m.retries.clone()),
            Box::new(m.http_seconds.clone()),
            Box::new(m.reports.clone()),
            Box::new(m.appeals.clone()),
            Box::new(m.statements_submitted.clone()),
            Box::new(m.statement_submissions_failed.clone()),
            Box::new(m.statements_queued.clone()),
            Box::new(m.statements_rejected.clone()),
            Box::new(m.model_reloads.clone()),
            Box::new(m.model_info.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric registered once");
        }
        let build = IntGaugeVec::new(
            Opts::new(
                names::BUILD_INFO,
                "1, labelled with the running build's version",
            ),
            &["version"],
        )
        .expect("valid gauge");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        // Series of rare events exist from the start at 0, so that the first one is an increase
        // (an alert on increase() cannot see a series that appears at 1).
        for dependency in Dependency::ALL {
            m.retries.with_label_values(&[dependency.as_str()]);
        }
        m.registry
            .register(Box::new(build))
            .expect("metric registered once");
        m.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("metric registered once");
        m
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// Records the time since `started` as a batch's time in `stage` (`cordon_stage_seconds`).
    pub fn observe_stage(&self, stage: Stage, started: Instant) {
        self.observe_stage_secs(stage, started.elapsed().as_secs_f64());
    }

    /// Records `secs` as a batch's time in `stage`.
    pub fn observe_stage_secs(&self, stage: Stage, secs: f64) {
        self.stage_seconds
            .with_label_values(&[stage.as_str()])
            .observe(secs);
    }

    /// Counts a retry after `dependency` failed (`cordon_retries_total`).
    pub fn retried(&self, dependency: Dependency) {
        self.retries.with_label_values(&[dependency.as_str()]).inc();
    }
}

/// A pipeline stage, the `stage` label of `cordon_stage_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Worker: decoding a batch's messages.
    Decode,
    /// Worker: looking up the newest versions of a batch's items.
    Versions,
    /// Worker: text normalization and features.
    Featurize,
    /// Worker: the fast model's inference.
    Infer,
    /// Worker: waiting for the broker's acknowledgements of a batch.
    Publish,
    /// Worker: queueing a batch's review cases.
    Queue,
    /// Context role: the encoder and the context head.
    Encode,
    /// Context role: publishing its verdicts.
    ContextPublish,
    /// Indexer: applying records since the last commit.
    Apply,
    /// Indexer: committing the index.
    Commit,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 10] = [
        Stage::Decode,
        Stage::Versions,
        Stage::Featurize,
        Stage::Infer,
        Stage::Publish,
        Stage::Queue,
        Stage::Encode,
        Stage::ContextPublish,
        Stage::Apply,
        Stage::Commit,
    ];

    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Versions => "versions",
            Stage::Featurize => "featurize",
            Stage::Infer => "infer",
            Stage::Publish => "publish",
            Stage::Queue => "queue",
            Stage::Encode => "encode",
            Stage::ContextPublish => "context_publish",
            Stage::Apply => "apply",
            Stage::Commit => "commit",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dependency whose failures are retried, the `dependency` label of `cordon_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The Kafka brokers.
    Kafka,
    /// The review database.
    Database,
    /// The outbox relay (the review database or the brokers).
    Outbox,
}

impl Dependency {
    /// Every dependency.
    pub const ALL: [Dependency; 3] = [Dependency::Kafka, Dependency::Database, Dependency::Outbox];

    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::Kafka => "kafka",
            Dependency::Database => "database",
            Dependency::Outbox => "outbox",
        }
    }
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_under_its_constant_name() {
        let m = Metrics::new();
        m.observe_stage_secs(Stage::Decode, 0.1);
        m.model_info.with_label_values(&["v1"]).set(1);
        let text = m.render().expect("renders");
        for name in [
            names::CONSUMED_TOTAL,
            names::STAGE_SECONDS,
            names::MODEL_INFO,
            names::BUILD_INFO,
            names::PROCESS_CPU_SECONDS_TOTAL,
            names::PROCESS_RESIDENT_MEMORY_BYTES,
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
