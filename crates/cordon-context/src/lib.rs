//! The context stage: a multilingual sentence encoder ([`Encoder`]) whose embedding, together
//! with the fast model's six scores, feeds a trained head ([`ContextModel`]).
//!
//! The encoder reads the whole text in context and is thousands of times slower than the fast
//! model, so it only sees the items the fast model is unsure about (docs/model.md). A context
//! model directory holds `head.onnx` (written by [`cordon_classifier::onnx::export_head`]), its
//! card `context.json` ([`ContextCard`]) and `canary.jsonl`; [`ContextModel::load`] checks the
//! card against the encoder it is given, runs a smoke inference and the canaries, as the fast
//! model's load does. ONNX Runtime must have been initialized
//! ([`cordon_classifier::init_runtime`]).

mod encoder;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cordon_classifier::onnx::{HEAD_EMBEDDING, HEAD_FAST_LOGITS};
use cordon_classifier::{check_canaries, check_smoke, Input, SessionPool};
use cordon_domain::{Action, Category, Policy, Scores};
use serde::{Deserialize, Serialize};

pub use encoder::{Encoder, EncoderCard, ENCODER_CARD_FILE, ENCODER_FILE, TOKENIZER_FILE};

/// File name of the head's graph inside a context model directory.
pub const HEAD_FILE: &str = "head.onnx";
/// File name of the card inside a context model directory.
pub const CONTEXT_CARD_FILE: &str = "context.json";
/// File of canaries inside a context model directory (the fast model's file name): JSON lines
/// `{"text", "fast_scores", "flagged"}` the model must decide as recorded under its card's policy.
pub use cordon_classifier::CANARY_FILE;

pub use cordon_classifier::Device;

/// Why a context model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A card is not valid JSON of its shape.
    #[error("invalid card {path}: {source}")]
    Card {
        /// The card's path.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The model does not match this build or its encoder, or fails its checks.
    #[error("model {model} cannot serve: {why}")]
    Incompatible {
        /// The model's directory.
        model: PathBuf,
        /// What does not match.
        why: String,
    },
    /// The tokenizer failed, or the model was given inconsistent inputs.
    #[error("context model: {0}")]
    Runtime(String),
    /// ONNX Runtime failed.
    #[error(transparent)]
    Onnx(#[from] cordon_classifier::RuntimeError),
}

pub(crate) fn runtime<E: std::fmt::Display>(e: E) -> ContextError {
    ContextError::Runtime(e.to_string())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, ContextError> {
    std::fs::read(path).map_err(|source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ContextError> {
    serde_json::from_slice(&read(path)?).map_err(|source| ContextError::Card {
        path: path.to_path_buf(),
        source,
    })
}

/// Everything Cordon needs to know about a context model, stored beside it as `context.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextCard {
    /// The model's name (its directory name).
    pub name: String,
    /// A version string that changes whenever the weights change.
    pub version: String,
    /// The output categories, in output order; must equal [`Category::ALL`].
    pub categories: Vec<Category>,
    /// The encoder's name.
    pub encoder_name: String,
    /// The SHA-256 of the encoder graph the head was trained on ([`EncoderCard::onnx_sha256`]).
    pub encoder_sha256: String,
    /// The version of the fast model whose scores the head reads.
    pub fast_model: String,
    /// The thresholds for the context stage's decisions (the service may override them).
    pub policy: Policy,
    /// The lowest top fast score that sends an item to the context stage, recommended with this
    /// model (the service's `[context] band_low` overrides it).
    pub band_low: f32,
    /// Description of the training data.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Evaluation results.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// Whether the cascade sends an item with these fast scores to the context stage: the fast model
/// does not suppress it (near-certain offers are hidden at once) and its top score is at least
/// `band_low`. Below the band the fast model's decision stands.
pub fn in_band(fast_policy: &Policy, fast: &Scores, band_low: f32) -> bool {
    fast_policy.decide(fast).action != Action::Suppress && fast.top().1 >= band_low
}

/// Texts up to this many characters go to the context stage whole (about 512 tokens of the
/// encoder in the densest scripts); longer ones as the fast model's strongest window.
pub const MAX_REQUEST_CHARS: usize = 1000;

/// What the worker sends the context stage about one item version (a record of the context topic,
/// keyed by item id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextRequest {
    /// The item's id.
    pub item_id: String,
    /// The item version scored.
    pub item_version: u64,
    /// The text the classifier read (title and body); for a text longer than
    /// [`MAX_REQUEST_CHARS`], the words of the fast model's strongest window instead (the encoder
    /// reads at most 512 tokens, and that window is what the fast score came from).
    pub text: String,
    /// The item's language, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The channel's subscribers, if known (the review queue's reach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach: Option<u64>,
    /// The fast model's scores.
    pub fast_scores: Scores,
    /// The fast model's version.
    pub fast_model: String,
    /// The fast model's decision under its policy (allow or review: what stands, and whether a
    /// person sees the item, if the context stage cannot decide it).
    pub fast_action: Action,
    /// The fast model's explanation for its top category (the features behind its score).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fast_explanation: Vec<cordon_domain::Contribution>,
    /// When the platform indexed the item (for end-to-end latency).
    pub indexed_at: chrono::DateTime<chrono::Utc>,
}

/// The head's input from the fast model: each score as a logit, clamped to ±12.
pub fn fast_logits(scores: &Scores) -> [f32; 6] {
    scores.0.map(|p| {
        let p = p.clamp(6e-6, 1.0 - 6e-6);
        (p / (1.0 - p)).ln().clamp(-12.0, 12.0)
    })
}

/// A loaded context model: its card, the encoder it reads, and a pool of head sessions.
pub struct ContextModel {
    card: ContextCard,
    dir: PathBuf,
    encoder: Arc<Encoder>,
    sessions: SessionPool,
}

impl std::fmt::Debug for ContextModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextModel")
            .field("dir", &self.dir)
            .field("version", &self.card.version)
            .finish()
    }
}

impl ContextCard {
    /// Reads and checks the card in `dir`.
    pub fn read(dir: &Path) -> Result<ContextCard, ContextError> {
        let card: ContextCard = read_json(&dir.join(CONTEXT_CARD_FILE))?;
        let incompatible = |why: String| ContextError::Incompatible {
            model: dir.to_path_buf(),
            why,
        };
        if card.categories != Category::ALL {
            return Err(incompatible(format!(
                "categories {:?} differ from {:?}",
                card.categories,
                Category::ALL
            )));
        }
        card.policy.validate().map_err(incompatible)?;
        if !(0.0..1.0).contains(&card.band_low) {
            return Err(incompatible(format!(
                "band_low {} is not in [0, 1)",
                card.band_low
            )));
        }
        Ok(card)
    }
}

impl ContextModel {
    /// Loads the context model in `dir` over `encoder`, with `sessions` head sessions of
    /// `threads` threads on `device`, and checks it (encoder fingerprint, smoke inference,
    /// canaries).
    pub fn load(
        dir: &Path,
        encoder: Arc<Encoder>,
        sessions: usize,
        threads: usize,
        device: Device,
    ) -> Result<ContextModel, ContextError> {
        let card = ContextCard::read(dir)?;
        if card.encoder_sha256 != encoder.card().onnx_sha256 {
            return Err(ContextError::Incompatible {
                model: dir.to_path_buf(),
                why: format!(
                    "trained on encoder {} ({}), the encoder given is {} ({})",
                    card.encoder_name,
                    card.encoder_sha256,
                    encoder.card().name,
                    encoder.card().onnx_sha256
                ),
            });
        }
        let bytes = read(&dir.join(HEAD_FILE))?;
        let pool = SessionPool::new(&bytes, sessions, threads, device)?;
        let model = ContextModel {
            card,
            dir: dir.to_path_buf(),
            encoder,
            sessions: pool,
        };
        check_smoke(&model.score(&["smoke test", ""], &[Scores::default(); 2])?).map_err(
            |why| ContextError::Incompatible {
                model: dir.to_path_buf(),
                why,
            },
        )?;
        model.check_canaries()?;
        Ok(model)
    }

    fn check_canaries(&self) -> Result<(), ContextError> {
        #[derive(Deserialize)]
        struct Fast {
            fast_scores: Scores,
        }
        let outcome = check_canaries::<Fast, _>(&self.dir, &self.card.policy, |c| {
            Ok::<_, ContextError>(
                self.score(&[c.text.as_str()], &[c.extra.fast_scores])?
                    .remove(0),
            )
        })?;
        outcome.map_err(|why| ContextError::Incompatible {
            model: self.dir.clone(),
            why,
        })
    }

    /// The model's card.
    pub fn card(&self) -> &ContextCard {
        &self.card
    }

    /// The encoder it reads.
    pub fn encoder(&self) -> &Arc<Encoder> {
        &self.encoder
    }

    /// Scores texts given the fast model's scores for each, in order.
    pub fn score<S: AsRef<str>>(
        &self,
        texts: &[S],
        fast: &[Scores],
    ) -> Result<Vec<Scores>, ContextError> {
        let embeddings = self.encoder.embed(texts)?;
        self.score_embedded(&embeddings, fast)
    }

    /// Scores already embedded texts given the fast model's scores for each.
    pub fn score_embedded(
        &self,
        embeddings: &[Vec<f32>],
        fast: &[Scores],
    ) -> Result<Vec<Scores>, ContextError> {
        let batch = embeddings.len();
        if batch != fast.len() {
            return Err(runtime(format!(
                "{batch} embeddings but {} fast scores",
                fast.len()
            )));
        }
        if batch == 0 {
            return Ok(Vec::new());
        }
        let dims = self.encoder.card().dimensions;
        let flat: Vec<f32> = embeddings.iter().flatten().copied().collect();
        if flat.len() != batch * dims {
            return Err(runtime("embeddings of the wrong size"));
        }
        let logits: Vec<f32> = fast.iter().flat_map(fast_logits).collect();
        let data = self.sessions.run(
            vec![
                (
                    HEAD_EMBEDDING,
                    Input::Float {
                        shape: [batch, dims],
                        data: flat,
                    },
                ),
                (
                    HEAD_FAST_LOGITS,
                    Input::Float {
                        shape: [batch, 6],
                        data: logits,
                    },
                ),
            ],
            cordon_classifier::OUTPUT,
            batch,
            6,
        )?;
        Ok(data
            .chunks_exact(6)
            .map(|row| {
                let mut s = Scores::default();
                s.0.copy_from_slice(row);
                s
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_logits_are_bounded_and_monotone() {
        let l = fast_logits(&Scores([0.0, 1.0, 0.5, 0.9, 0.1, 0.999_999]));
        assert_eq!(l[0], -12.0);
        assert_eq!(l[1], 12.0);
        assert!(l[2].abs() < 1e-6);
        assert!(l[3] > 2.0 && l[4] < -2.0 && l[5] <= 12.0);
    }
}
