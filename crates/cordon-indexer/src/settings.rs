//! The `[index]` configuration section (docs/configuration.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Indexer settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Index directory.
    pub dir: PathBuf,
    /// Milliseconds between index commits while changes are pending (bounds suppression latency).
    pub commit_interval_ms: u64,
    /// Writer memory budget in MiB.
    pub writer_memory_mb: usize,
    /// Pre-moderation: hide new items until their verdict arrives, and review items until a
    /// person decides.
    pub premoderation: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            dir: ".cordon/index".into(),
            commit_interval_ms: 100,
            writer_memory_mb: 64,
            premoderation: false,
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
