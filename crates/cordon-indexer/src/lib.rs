//! The indexer role: applies the content and verdicts topics to the Tantivy index.
//!
//! It reads every partition of both topics from the offsets stored in the index's last commit,
//! applies records in order, and commits the index together with the offsets it has applied
//! when changes have been pending for the [`CommitPolicy`]'s interval: `commit_interval_ms` while
//! it keeps up, `behind_commit_interval_ms` while it drains a backlog. So the index never runs
//! ahead of or behind the offsets it reports, and a crash replays only what was not committed
//! (applying a record twice is harmless: content is versioned and verdicts follow precedence).
//! A commit is written on a blocking thread while the next records are applied; one commit at
//! a time, the next due once the previous one is done.

//!
//! Architecture invariant: the offsets live only in the index's commits (`commit` below);
//! nothing is committed to Kafka.
//!
//! API boundary: [`start`] with an [`IndexerSettings`] built from the `[index]` section
//! ([`IndexConfig`]); it returns the search handle the HTTP role reads.

mod commit_policy;
mod settings;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use cordon_domain::{ContentItem, Verdict};
use cordon_index::{
    Applied, ContentIndex, IndexError, IndexSettings, Offsets, SearchHandle, Written,
};
use cordon_ops::{spawn_kafka_metrics, Dependency, KafkaClient, Metrics, Readiness, Stage};
use cordon_stream::{AssignedReader, KafkaSettings, Received};
use prometheus::IntCounter;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use commit_policy::{CommitPolicy, Pace};
pub use settings::{IndexConfig, IndexerSettings};

/// The kind of a record the indexer applies, by the topic it came from (the `kind` label of
/// `cordon_indexed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A content item from the content topic.
    Content,
    /// A verdict from the verdicts topic.
    Verdict,
}

impl RecordKind {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Content => "content",
            RecordKind::Verdict => "verdict",
        }
    }
}

/// What applying one record did (the `outcome` label of `cordon_indexed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The item's state changed.
    Changed,
    /// The record was older than what the index holds.
    Stale,
    /// The record could not be read.
    Invalid,
}

impl Outcome {
    fn of(applied: Option<Applied>) -> Outcome {
        match applied {
            Some(Applied::Changed { .. }) => Outcome::Changed,
            Some(Applied::Stale) => Outcome::Stale,
            None => Outcome::Invalid,
        }
    }

    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Changed => "changed",
            Outcome::Stale => "stale",
            Outcome::Invalid => "invalid",
        }
    }
}

/// Starts the indexer role: opens the index, joins its partitions from the committed offsets,
/// and makes the process ready (`readiness`) once it has caught up with the topics
/// (`index.ready_max_lag`). Returns the search handle and the future that runs the role until
/// `shutdown`.
pub fn start(
    settings: IndexerSettings,
    kafka: &KafkaSettings,
    metrics: Metrics,
    readiness: &Readiness,
    shutdown: CancellationToken,
) -> Result<(SearchHandle, impl Future<Output = Result<()>>)> {
    let (index, handle) = ContentIndex::open(&IndexSettings {
        dir: settings.index.dir.clone(),
        writer_memory_bytes: settings.index.writer_memory_mb * 1024 * 1024,
        premoderation: settings.index.premoderation,
    })?;
    let indexer = Indexer::new(settings, metrics, index, kafka)?;
    spawn_kafka_metrics(
        &indexer.metrics,
        "indexer",
        KafkaClient::Consumer,
        indexer.consumer.telemetry(),
        shutdown.clone(),
    );
    readiness.watch_catch_up(
        "indexer",
        indexer.consumer.telemetry(),
        indexer.settings.index.ready_max_lag,
    );
    Ok((handle, indexer.run(shutdown)))
}

/// How long the indexer waits for a record when nothing is due.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// A commit being written on a blocking thread, and what it accounts for once written.
struct InFlight {
    task: JoinHandle<Result<Written, IndexError>>,
    started: Instant,
    /// `decided_at` of the verdicts that changed a visibility, searchable once it is written.
    verdicts: Vec<DateTime<Utc>>,
}

/// The indexer and its state.
struct Indexer {
    settings: IndexerSettings,
    metrics: Metrics,
    index: ContentIndex,
    consumer: AssignedReader,
    offsets: Offsets,
    policy: CommitPolicy,
    /// Whether the newest record applied showed a backlog.
    pace: Pace,
    /// `cordon_indexed_total` by record kind and outcome, looked up once.
    indexed: [[IntCounter; 3]; 2],
    /// When the first change not yet taken by a commit was applied.
    dirty_since: Option<Instant>,
    in_flight: Option<InFlight>,
    applied_verdicts: Vec<DateTime<Utc>>,
    /// Time spent applying records since the last commit.
    apply_time: Duration,
}

impl Indexer {
    /// Opens a reader positioned at the index's committed offsets.
    fn new(
        settings: IndexerSettings,
        metrics: Metrics,
        index: ContentIndex,
        kafka: &KafkaSettings,
    ) -> Result<Indexer> {
        let offsets = index.committed_offsets().clone();
        let topics = [
            settings.content_topic.as_str(),
            settings.verdicts_topic.as_str(),
        ];
        let consumer =
            AssignedReader::new(kafka, &topics, &offsets).context("assigning partitions")?;
        info!(?offsets, "indexer resuming from committed offsets");
        let indexed = [RecordKind::Content, RecordKind::Verdict].map(|kind| {
            [Outcome::Changed, Outcome::Stale, Outcome::Invalid].map(|outcome| {
                metrics
                    .indexed
                    .with_label_values(&[kind.as_str(), outcome.as_str()])
            })
        });
        let indexer = Indexer {
            policy: settings.index.commit_policy(),
            pace: Pace::CaughtUp,
            indexed,
            settings,
            metrics,
            index,
            consumer,
            offsets,
            dirty_since: None,
            in_flight: None,
            applied_verdicts: Vec::new(),
            apply_time: Duration::ZERO,
        };
        indexer.report_offsets();
        Ok(indexer)
    }

    /// Applies records until `shutdown`, then commits what was applied.
    async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        loop {
            // While a commit is written, records are still applied; the next commit waits.
            let wait = match self.dirty_since {
                Some(since) if self.in_flight.is_none() => {
                    self.policy.remaining(since.elapsed(), self.pace)
                }
                _ => IDLE_WAIT,
            };
            let in_flight = &mut self.in_flight;
            let written = async move {
                match in_flight {
                    Some(f) => (&mut f.task).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                written = written => self.finish_commit(written)?,
                received = tokio::time::timeout(wait, self.consumer.recv()) => match received {
                    Err(_) => {}
                    Ok(Ok(message)) => {
                        let started = Instant::now();
                        self.apply(&message)?;
                        self.apply_time += started.elapsed();
                    }
                    Ok(Err(e)) => {
                        warn!(error = %e, "receiving failed; retrying");
                        self.metrics.retried(Dependency::Kafka);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            if self.in_flight.is_none()
                && self
                    .dirty_since
                    .is_some_and(|s| self.policy.remaining(s.elapsed(), self.pace).is_zero())
            {
                self.start_commit()?;
            }
        }
        info!("indexer stopping: committing the index");
        self.wait_for_commit().await?;
        if self.dirty_since.is_some() {
            self.start_commit()?;
            self.wait_for_commit().await?;
        }
        tokio::task::block_in_place(|| self.index.close()).context("closing the index")?;
        Ok(())
    }

    fn apply(&mut self, message: &Received) -> Result<()> {
        let kind = if message.topic == self.settings.content_topic {
            RecordKind::Content
        } else {
            RecordKind::Verdict
        };
        let outcome = if kind == RecordKind::Content {
            match ContentItem::decode(message.payload(), &self.settings.limits) {
                Ok(item) => {
                    let id = item.id.clone();
                    let applied = self.index.apply_content(item)?;
                    debug!(item_id = %id, ?applied, "content applied");
                    Some(applied)
                }
                // The worker dead-letters it; the index has nothing to show.
                Err(_) => None,
            }
        } else {
            match message.payload().map(serde_json::from_slice::<Verdict>) {
                Some(Ok(verdict)) => {
                    let decided_at = verdict.decided_at;
                    let id = verdict.item_id.clone();
                    let applied = self.index.apply_verdict(verdict)?;
                    debug!(item_id = %id, ?applied, "verdict applied");
                    if let Applied::Changed { before, after } = applied {
                        if before.is_some_and(|b| b != after) {
                            self.applied_verdicts.push(decided_at);
                        }
                    }
                    Some(applied)
                }
                Some(Err(e)) => {
                    warn!(offset = message.offset, error = %e, "skipping an unreadable verdict");
                    None
                }
                None => None,
            }
        };
        self.indexed[kind as usize][Outcome::of(outcome) as usize].inc();
        match self.offsets.get_mut(&message.topic) {
            Some(partitions) => partitions.insert(message.partition, message.offset + 1),
            None => self
                .offsets
                .entry(message.topic.clone())
                .or_default()
                .insert(message.partition, message.offset + 1),
        };
        self.dirty_since.get_or_insert_with(Instant::now);
        self.keep_pace(message.timestamp_ms);
        Ok(())
    }

    /// Notes whether the record just applied shows a backlog (the commit interval follows).
    fn keep_pace(&mut self, timestamp_ms: Option<i64>) {
        let age = timestamp_ms.map(|t| {
            let millis = Utc::now().timestamp_millis().saturating_sub(t);
            Duration::from_millis(u64::try_from(millis).unwrap_or(0))
        });
        let pace = self.policy.pace(age);
        if pace != self.pace {
            debug!(?pace, record_age = ?age, "indexer pace changed");
            self.pace = pace;
        }
    }

    /// Publishes the committed offsets as `cordon_index_committed_offset`.
    fn report_offsets(&self) {
        for (topic, partitions) in self.index.committed_offsets() {
            for (partition, offset) in partitions {
                self.metrics
                    .index_offset
                    .with_label_values(&[topic.as_str(), &partition.to_string()])
                    .set(*offset);
            }
        }
    }

    /// Takes what was applied as a commit and writes it on a blocking thread.
    fn start_commit(&mut self) -> Result<()> {
        let commit = self
            .index
            .start_commit(&self.offsets)
            .context("starting a commit")?;
        self.metrics.observe_stage_secs(
            Stage::Apply,
            std::mem::take(&mut self.apply_time).as_secs_f64(),
        );
        self.in_flight = Some(InFlight {
            task: tokio::task::spawn_blocking(move || commit.write()),
            started: Instant::now(),
            verdicts: std::mem::take(&mut self.applied_verdicts),
        });
        self.dirty_since = None;
        Ok(())
    }

    /// Waits for the commit in flight, if any, and accounts for it.
    async fn wait_for_commit(&mut self) -> Result<()> {
        if let Some(f) = self.in_flight.as_mut() {
            let written = (&mut f.task).await;
            self.finish_commit(written)?;
        }
        Ok(())
    }

    /// Accounts for the commit in flight once written: its offsets are the committed ones.
    fn finish_commit(
        &mut self,
        written: Result<Result<Written, IndexError>, JoinError>,
    ) -> Result<()> {
        let in_flight = self.in_flight.take().context("no commit in flight")?;
        let written = written
            .context("the commit's thread failed")?
            .context("committing the index")?;
        self.index.finish_commit(written);
        self.report_offsets();
        self.metrics.observe_stage(Stage::Commit, in_flight.started);
        let now = Utc::now();
        for decided_at in in_flight.verdicts {
            let secs = (now - decided_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
            self.metrics.verdict_apply_seconds.observe(secs.max(0.0));
        }
        Ok(())
    }
}
