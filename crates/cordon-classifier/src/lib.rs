//! Batched ONNX inference of Cordon's illegal-goods classifier.
//!
//! A model lives in a directory holding `model.onnx` and its card `model.json` ([`ModelCard`]).
//! [`Classifier::load`] checks the card against this build (categories, feature configuration,
//! policy), opens a small pool of ONNX Runtime sessions and runs a smoke inference before it
//! returns, so a broken model is refused before it can serve.
//!
//! ONNX Runtime is loaded dynamically: call [`init_runtime`] once per process with the path of
//! `libonnxruntime.so` before loading a model.

pub mod onnx;
mod runtime;

use std::path::{Path, PathBuf};

use cordon_domain::{Action, Category, Contribution, Policy, Scores};
use cordon_text::{FeatureConfig, Featurizer, TextFeatures};
use serde::{Deserialize, Serialize};

pub use runtime::{init_runtime, Device, Input, RuntimeError, SessionPool};

/// File name of the ONNX graph inside a model directory.
pub const MODEL_FILE: &str = "model.onnx";
/// File name of the model card inside a model directory.
pub const CARD_FILE: &str = "model.json";
/// File of canary texts inside a model directory (optional): JSON lines `{"text", "flagged"}` that
/// the model must decide as recorded under its card's policy before it may serve.
pub const CANARY_FILE: &str = "canary.jsonl";
/// Name of the model's input tensor: int64 feature ids `[batch, len]`, 0 = padding.
pub const INPUT: &str = "features";
/// Name of the model's output tensor: float probabilities `[batch, categories]`.
pub const OUTPUT: &str = "scores";
/// Most windows scored in one ONNX Runtime call.
pub const MAX_ROWS: usize = 2048;

/// Everything Cordon needs to know about a model, stored beside it as `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// The model's name (its directory name under `models/`).
    pub name: String,
    /// A version string that changes whenever the weights change.
    pub version: String,
    /// The output categories, in output order; must equal [`Category::ALL`].
    pub categories: Vec<Category>,
    /// How text was featurized for training.
    pub features: FeatureConfig,
    /// Fingerprint of `features`, checked on load.
    pub feature_fingerprint: String,
    /// The thresholds recommended with this model (the service may override them).
    pub policy: Policy,
    /// Free-form description of the training data.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Evaluation results on the held-out set.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// A model file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `model.json` is not a valid card.
    #[error("invalid model card {path}: {source}")]
    Card {
        /// The card's path.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The card does not match this build.
    #[error("model {model} is not compatible with this build: {why}")]
    Incompatible {
        /// The model's directory.
        model: PathBuf,
        /// What does not match.
        why: String,
    },
    /// ONNX Runtime could not be loaded or failed, or the graph's output has the wrong shape.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// One line of a model's [`CANARY_FILE`]: a text, whether the model must flag it under its card's
/// policy, and what else that kind of model needs to score it (`extra`).
#[derive(Debug, Clone, Deserialize)]
pub struct Canary<T> {
    /// The text.
    pub text: String,
    /// Whether the model must flag it (review or suppress).
    pub flagged: bool,
    /// The other fields of the line.
    #[serde(flatten)]
    pub extra: T,
}

impl<T> Canary<T> {
    /// Why a model that decides this canary otherwise is refused.
    pub fn failure(&self, line: usize) -> String {
        format!(
            "fails canary {line} (expected flagged={}): {}",
            self.flagged, self.text
        )
    }
}

/// The canaries in `dir` with their line numbers (empty when the directory has none), or which
/// line does not parse.
fn read_canaries<T: serde::de::DeserializeOwned>(
    dir: &Path,
) -> Result<Vec<(usize, Canary<T>)>, String> {
    let Ok(text) = std::fs::read_to_string(dir.join(CANARY_FILE)) else {
        return Ok(Vec::new());
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map(|c| (i + 1, c))
                .map_err(|e| format!("canary line {}: {e}", i + 1))
        })
        .collect()
}

/// Runs the canaries of `dir` through `score` and decides each under `policy`: `Ok(Err(why))`
/// names the first line that does not parse or is decided otherwise than recorded; `Err` is a
/// scoring failure.
pub fn check_canaries<T: serde::de::DeserializeOwned, E>(
    dir: &Path,
    policy: &Policy,
    mut score: impl FnMut(&Canary<T>) -> Result<Scores, E>,
) -> Result<Result<(), String>, E> {
    let canaries = match read_canaries::<T>(dir) {
        Ok(c) => c,
        Err(why) => return Ok(Err(why)),
    };
    for (line, canary) in canaries {
        let flagged = policy.decide(&score(&canary)?).action != Action::Allow;
        if flagged != canary.flagged {
            return Ok(Err(canary.failure(line)));
        }
    }
    Ok(Ok(()))
}

/// Checks a smoke inference: every score a probability, else why the model is refused.
pub fn check_smoke(scores: &[Scores]) -> Result<(), String> {
    if scores
        .iter()
        .all(|s| s.0.iter().all(|p| (0.0..=1.0).contains(p)))
    {
        Ok(())
    } else {
        Err("smoke inference produced scores outside [0, 1]".into())
    }
}

/// A loaded model: its card, its featurizer and a pool of inference sessions.
pub struct Classifier {
    card: ModelCard,
    dir: PathBuf,
    featurizer: Featurizer,
    weights: Option<onnx::LinearWeights>,
    sessions: SessionPool,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("dir", &self.dir)
            .field("version", &self.card.version)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl ModelCard {
    /// Reads and checks the card in `dir`.
    pub fn read(dir: &Path) -> Result<ModelCard, ClassifierError> {
        let path = dir.join(CARD_FILE);
        let bytes = std::fs::read(&path).map_err(|source| ClassifierError::Io {
            path: path.clone(),
            source,
        })?;
        let card: ModelCard = serde_json::from_slice(&bytes)
            .map_err(|source| ClassifierError::Card { path, source })?;
        let incompatible = |why: String| ClassifierError::Incompatible {
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
        card.features
            .check(&card.feature_fingerprint)
            .map_err(|e| incompatible(e.to_string()))?;
        card.policy.validate().map_err(incompatible)?;
        Ok(card)
    }
}

impl Classifier {
    /// Loads the model in `dir` with `sessions` parallel sessions of `threads` intra-op threads each,
    /// and checks it with a smoke inference.
    pub fn load(
        dir: &Path,
        sessions: usize,
        threads: usize,
    ) -> Result<Classifier, ClassifierError> {
        let card = ModelCard::read(dir)?;
        let model_path = dir.join(MODEL_FILE);
        let bytes = std::fs::read(&model_path).map_err(|source| ClassifierError::Io {
            path: model_path.clone(),
            source,
        })?;
        let pool = SessionPool::new(&bytes, sessions, threads, Device::Cpu)?;
        let weights = onnx::read_linear(&bytes);
        let classifier = Classifier {
            featurizer: Featurizer::new(card.features.clone()),
            weights,
            card,
            dir: dir.to_path_buf(),
            sessions: pool,
        };
        check_smoke(&classifier.score(&["smoke test", ""])?).map_err(|why| {
            ClassifierError::Incompatible {
                model: dir.to_path_buf(),
                why,
            }
        })?;
        classifier.check_canaries()?;
        Ok(classifier)
    }

    fn check_canaries(&self) -> Result<(), ClassifierError> {
        let outcome = check_canaries::<serde_json::Map<String, serde_json::Value>, ClassifierError>(
            &self.dir,
            &self.card.policy,
            |c| Ok(self.score(&[c.text.as_str()])?.remove(0)),
        )?;
        outcome.map_err(|why| ClassifierError::Incompatible {
            model: self.dir.clone(),
            why,
        })
    }

    /// The model's card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The featurizer the model was trained with.
    pub fn featurizer(&self) -> &Featurizer {
        &self.featurizer
    }

    /// The index of the window of `features` that scores highest for `category` by the model's
    /// own weights (0 for models whose weights cannot be read).
    fn strongest_window(&self, features: &TextFeatures, category: Category) -> usize {
        let Some(w) = &self.weights else {
            return 0;
        };
        let categories = Category::ALL.len();
        let sum = |ids: &[u32]| -> f32 {
            ids.iter()
                .filter_map(|id| w.weights.get(*id as usize * categories + category.index()))
                .sum()
        };
        features
            .windows()
            .enumerate()
            .max_by(|a, b| sum(a.1).total_cmp(&sum(b.1)))
            .map_or(0, |(i, _)| i)
    }

    /// The `k` features of `text` that push `category`'s score up the most, strongest first, from
    /// the window that scores highest for `category` (the one that decided the text's score).
    /// Empty for models whose weights cannot be read (not a linear model).
    pub fn explain(&self, text: &str, category: Category, k: usize) -> Vec<Contribution> {
        let Some(w) = &self.weights else {
            return Vec::new();
        };
        let categories = Category::ALL.len();
        let window = self.strongest_window(&self.featurize(text), category);
        let mut contributions: Vec<Contribution> = self
            .featurizer
            .explain(text, window)
            .into_iter()
            .filter_map(|f| {
                let weight = *w
                    .weights
                    .get(f.id as usize * categories + category.index())?;
                (weight > 0.0).then_some(Contribution {
                    feature: f.name,
                    weight,
                })
            })
            .collect();
        contributions.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        contributions.truncate(k);
        contributions
    }

    /// What the window of `text` that scores highest for `category` reads (normalized words): the
    /// part of a long text the model's score came from. `None` for a text of one window.
    pub fn strongest_window_text(&self, text: &str, category: Category) -> Option<String> {
        let features = self.featurize(text);
        if features.len() < 2 {
            return None;
        }
        self.featurizer
            .window_text(text, self.strongest_window(&features, category))
    }

    /// Featurizes one text for [`Classifier::score_features`].
    pub fn featurize(&self, text: &str) -> TextFeatures {
        let mut features = TextFeatures::new();
        self.featurizer.featurize(text, &mut features);
        features
    }

    /// Scores a batch of texts, one [`Scores`] per text, in order.
    pub fn score<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Scores>, ClassifierError> {
        let features: Vec<TextFeatures> =
            texts.iter().map(|t| self.featurize(t.as_ref())).collect();
        self.score_features(&features)
    }

    /// Scores already featurized texts: every window is scored, and a text's score in each
    /// category is its strongest window's. Windows go to ONNX Runtime at most [`MAX_ROWS`] at a
    /// time, so a batch of long texts never needs more than one chunk's memory.
    pub fn score_features(&self, texts: &[TextFeatures]) -> Result<Vec<Scores>, ClassifierError> {
        let windows: Vec<&[u32]> = texts.iter().flat_map(TextFeatures::windows).collect();
        let mut rows = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(MAX_ROWS) {
            rows.extend(self.infer(chunk)?);
        }
        let mut rows = rows.into_iter();
        Ok(texts
            .iter()
            .map(|text| {
                if text.is_empty() {
                    return Scores::default();
                }
                let mut s = Scores([f32::MIN; 6]);
                for row in rows.by_ref().take(text.len()) {
                    for (best, score) in s.0.iter_mut().zip(row.0) {
                        *best = best.max(score);
                    }
                }
                s
            })
            .collect())
    }

    /// Runs the graph on feature rows, one [`Scores`] per row.
    fn infer(&self, windows: &[&[u32]]) -> Result<Vec<Scores>, ClassifierError> {
        let rows = windows.len();
        if rows == 0 {
            return Ok(Vec::new());
        }
        let len = windows.iter().map(|w| w.len()).max().unwrap_or(0).max(1);
        let mut input = vec![0i64; rows * len];
        for (row, ids) in windows.iter().enumerate() {
            for (col, id) in ids.iter().enumerate() {
                input[row * len + col] = i64::from(*id);
            }
        }
        let categories = Category::ALL.len();
        let data = self.sessions.run(
            vec![(
                INPUT,
                Input::Int64 {
                    shape: [rows, len],
                    data: input,
                },
            )],
            OUTPUT,
            rows,
            categories,
        )?;
        Ok(data
            .chunks_exact(categories)
            .map(|row| {
                let mut s = Scores::default();
                s.0.copy_from_slice(row);
                s
            })
            .collect())
    }
}
