//! The `[index]` configuration section (docs/configuration.md).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::CommitPolicy;

/// Indexer settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Index directory.
    pub dir: PathBuf,
    /// Milliseconds between index commits while changes are pending and the indexer keeps up
    /// (bounds suppression latency).
    pub commit_interval_ms: u64,
    /// Milliseconds between index commits while the indexer is behind (see `behind_after_ms`):
    /// larger commits drain a backlog faster.
    pub behind_commit_interval_ms: u64,
    /// The indexer is behind while the newest record it applied had waited longer than this in
    /// its topic (Kafka timestamp against this machine's clock).
    pub behind_after_ms: u64,
    /// Writer memory budget in MiB.
    pub writer_memory_mb: usize,
    /// Pre-moderation: hide new items until their verdict arrives, and review items until a
    /// person decides.
    pub premoderation: bool,
    /// The process is ready (`/readyz`) once the indexer has been at most this many records
    /// behind the content and verdicts topics (from then on, while it reaches a broker).
    pub ready_max_lag: i64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            dir: ".cordon/index".into(),
            commit_interval_ms: 100,
            behind_commit_interval_ms: 500,
            behind_after_ms: 1000,
            writer_memory_mb: 64,
            premoderation: false,
            ready_max_lag: 1000,
        }
    }
}

impl IndexConfig {
    /// The commit policy these settings describe.
    pub fn commit_policy(&self) -> CommitPolicy {
        CommitPolicy {
            caught_up: Duration::from_millis(self.commit_interval_ms),
            behind: Duration::from_millis(self.behind_commit_interval_ms),
            behind_after: Duration::from_millis(self.behind_after_ms),
        }
    }
}

/// The indexer role's settings.
#[derive(Debug, Clone)]
pub struct IndexerSettings {
    /// The `[index]` section.
    pub index: IndexConfig,
    /// The content topic it applies.
    pub content_topic: String,
    /// The verdicts topic it applies.
    pub verdicts_topic: String,
    /// The decode limits of content items (`worker.max_message_bytes`, `worker.max_text_bytes`).
    pub limits: cordon_domain::DecodeLimits,
}
