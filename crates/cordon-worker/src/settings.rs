//! The configuration sections the classifying roles read (`[model]`, `[context]`, `[policy]`,
//! `[worker]` in the TOML file; docs/configuration.md), and the settings each role is started
//! with, built from them by the composition root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cordon_domain::{Category, Thresholds};
use serde::{Deserialize, Serialize};

/// The context stage (docs/model.md): the worker sends it the items whose fast scores are in the
/// band, the context role decides them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextConfig {
    /// Send in-band items to the context stage (and run the context role under `--role all`); off,
    /// the fast model decides every item. Turn it on only with a context role running: the worker
    /// queues no case for what it sends there.
    pub enabled: bool,
    /// Directory holding `head.onnx` and its card `context.json`.
    pub dir: PathBuf,
    /// The encoder directory; empty means `$CORDON_CACHE/encoder/multilingual-e5-small`.
    pub encoder: PathBuf,
    /// Lowest top fast score sent to the context stage; unset means the context card's.
    pub band_low: Option<f32>,
    /// Where the encoder and head run: `cpu` or `cuda`.
    pub device: cordon_context::Device,
    /// Parallel encoder sessions.
    pub sessions: usize,
    /// Intra-op threads per encoder session.
    pub threads: usize,
    /// Most items encoded together.
    pub batch_size: usize,
    /// Milliseconds to wait for a batch to fill.
    pub batch_linger_ms: u64,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            enabled: false,
            dir: "models/cordon-context".into(),
            encoder: PathBuf::new(),
            band_low: None,
            device: cordon_context::Device::Cpu,
            sessions: 1,
            threads: 1,
            batch_size: 16,
            batch_linger_ms: 20,
        }
    }
}

impl ContextConfig {
    /// The encoder directory to load.
    pub fn encoder_dir(&self) -> PathBuf {
        if self.encoder.as_os_str().is_empty() {
            default_encoder_dir()
        } else {
            self.encoder.clone()
        }
    }
}

/// Classifier settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Directory holding `model.onnx` and `model.json`.
    pub dir: PathBuf,
    /// Path of `libonnxruntime.so`; empty means `$ORT_DYLIB_PATH`, then the set-up script's cache.
    pub onnxruntime: PathBuf,
    /// Parallel inference sessions.
    pub sessions: usize,
    /// Intra-op threads per session.
    pub threads: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            dir: "models/cordon-linear".into(),
            onnxruntime: PathBuf::new(),
            sessions: 1,
            threads: 1,
        }
    }
}

impl ModelConfig {
    /// The ONNX Runtime library to load.
    pub fn onnxruntime_path(&self) -> PathBuf {
        if !self.onnxruntime.as_os_str().is_empty() {
            return self.onnxruntime.clone();
        }
        if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
            return p.into();
        }
        cache_dir().join("lib/libonnxruntime.so")
    }
}

/// Where `scripts/setup.sh` puts the converted encoder: the encoder every command and the
/// context role load unless told otherwise.
pub fn default_encoder_dir() -> PathBuf {
    cache_dir().join("encoder/multilingual-e5-small")
}

/// Where the set-up script caches downloads and builds.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("CORDON_CACHE") {
        return p.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".cache/cordon")
}

/// Per-category threshold overrides; categories not named keep the model card's thresholds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Thresholds by category name (`drugs`, `weapons`, `counterfeit`, `stolen_data`, `hacking`,
    /// `other_illegal`).
    pub thresholds: BTreeMap<Category, Thresholds>,
}

/// Worker settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Most messages classified together.
    pub batch_size: usize,
    /// Milliseconds to wait for a batch to fill once its first message arrived.
    pub batch_linger_ms: u64,
    /// Batches handed to the producer and not yet acknowledged while the next one is scored
    /// (their offsets are stored, in order, once acknowledged).
    pub batches_in_flight: usize,
    /// Largest accepted message in bytes; larger ones are dead-lettered.
    pub max_message_bytes: usize,
    /// Largest accepted `text` in bytes; longer ones are dead-lettered.
    pub max_text_bytes: usize,
    /// Most payload bytes a dead letter copies; a longer payload is cut (the original size and
    /// SHA-256 travel in headers).
    pub dead_letter_max_bytes: usize,
    /// Milliseconds between retries when the database or Kafka is unavailable.
    pub retry_backoff_ms: u64,
    /// A batch whose version snapshot is older than this many milliseconds when it is handed
    /// to the producer (the worker stalled: a pause, an outage) has its versions checked again,
    /// and verdicts a newer version overtook are dropped. Keep it below the group's
    /// session timeout (`kafka.session_timeout_ms`, 10000).
    pub fence_after_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch_size: 256,
            batch_linger_ms: 20,
            batches_in_flight: 4,
            max_message_bytes: 256 * 1024,
            max_text_bytes: 64 * 1024,
            dead_letter_max_bytes: 256 * 1024,
            retry_backoff_ms: 500,
            fence_after_ms: 3000,
        }
    }
}

/// The topics the classifying roles read and write.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Content items (the worker reads it).
    pub content: String,
    /// Verdicts (both roles write it).
    pub verdicts: String,
    /// Dead letters (the worker writes it).
    pub dead_letter: String,
    /// Context requests (the worker writes it, the context role reads it).
    pub context: String,
}

/// The worker role's settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The `[worker]` section.
    pub worker: WorkerConfig,
    /// Its topics.
    pub topics: Topics,
    /// Its consumer group, for log lines.
    pub group: String,
    /// The lowest top fast score sent to the context stage; `None` when the context stage is
    /// off ([`crate::band_low`]).
    pub context_band: Option<f32>,
}

/// The context role's settings.
#[derive(Debug, Clone)]
pub struct ContextSettings {
    /// The `[context]` section.
    pub context: ContextConfig,
    /// Its topics.
    pub topics: Topics,
    /// Its consumer group, for log lines.
    pub group: String,
    /// First wait after a dependency failed (`worker.retry_backoff_ms`).
    pub retry_backoff: std::time::Duration,
    /// Age of a version check after which it is made again (`worker.fence_after_ms`).
    pub fence_after: std::time::Duration,
}
