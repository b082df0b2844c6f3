//! Training of Cordon's classifier: corpus generation, SGD training, ONNX export, evaluation.
//!
//! [`train`] is the one entry point: it generates the corpus from `models/corpus/`, trains on the
//! non-held-out templates with the serving featurizer ([`cordon_text`]), writes
//! `model.onnx` and `model.json` into the model directory (atomically, via a temporary
//! directory), loads the written model through ONNX Runtime and reports its metrics on the
//! held-out templates — so the numbers are those of the artifact that will serve.

mod corpus;
mod eval;
mod linear;
mod onnx;

use std::path::{Path, PathBuf};

use cordon_classifier::{Classifier, ModelCard, CARD_FILE, MODEL_FILE};
use cordon_domain::{Category, Policy};
use cordon_text::{FeatureConfig, Featurizer};
use serde::Serialize;

pub use corpus::{Corpus, Example};
pub use eval::{Confusion, Evaluation, Labelled, Rates, Report};
pub use linear::{LinearModel, SgdConfig};

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A corpus file is invalid.
    #[error("corpus file {path}: {why}")]
    Corpus {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The written model could not be loaded back.
    #[error("the exported model does not load: {0}")]
    Classifier(#[from] cordon_classifier::ClassifierError),
    /// The exported model disagrees with the trained one.
    #[error("ONNX scores differ from the trained model's by {0}")]
    Mismatch(f32),
}

impl TrainError {
    fn io(path: &Path, source: std::io::Error) -> TrainError {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Directory of corpus TOML files.
    pub corpus_dir: PathBuf,
    /// The model directory to write (its last component is the model's name).
    pub out_dir: PathBuf,
    /// Texts generated per template.
    pub per_template: usize,
    /// Seed for generation and shuffling.
    pub seed: u64,
    /// Optimizer settings.
    pub sgd: SgdConfig,
    /// Thresholds recorded in the card.
    pub policy: Policy,
}

/// Summary of a training run, also stored in the card.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The new model's version.
    pub version: String,
    /// Examples trained on.
    pub train_examples: usize,
    /// Held-out examples evaluated.
    pub holdout_examples: usize,
    /// Metrics on the held-out templates.
    pub holdout: Report,
}

/// The thresholds written into new model cards.
pub fn default_policy() -> Policy {
    Policy::uniform(0.5, 0.85)
}

/// Trains, exports and evaluates a model. [`cordon_classifier::init_runtime`] must have been called.
pub fn train(opts: &TrainOptions) -> Result<TrainReport, TrainError> {
    let corpus = Corpus::load(&opts.corpus_dir)?;
    let examples = corpus.generate(opts.per_template, opts.seed);
    let config = FeatureConfig::default();
    let featurizer = Featurizer::new(config.clone());
    let mut ids = Vec::new();
    let (holdout, training): (Vec<&Example>, Vec<&Example>) =
        examples.iter().partition(|e| e.holdout);
    let data: Vec<(Vec<u32>, Option<Category>)> = training
        .iter()
        .map(|e| {
            featurizer.featurize(&e.text, &mut ids);
            (ids.clone(), e.label)
        })
        .collect();
    let model = LinearModel::train(&data, config.buckets as usize, &opts.sgd);

    let name = opts
        .out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let weight_bytes: Vec<u8> = model.weights.iter().flat_map(|w| w.to_le_bytes()).collect();
    let version = format!(
        "{name}-{:08x}",
        xxhash_rust::xxh3::xxh3_64(&weight_bytes) as u32
    );
    let onnx = onnx::export(&model.weights, &model.bias, model.buckets, &version);

    let mut card = ModelCard {
        name,
        version: version.clone(),
        categories: Category::ALL.to_vec(),
        feature_fingerprint: config.fingerprint(),
        features: config,
        policy: opts.policy.clone(),
        training: serde_json::json!({
            "generator": "models/corpus",
            "seed": opts.seed,
            "per_template": opts.per_template,
            "train_examples": training.len(),
            "holdout_examples": holdout.len(),
            "languages": examples.iter().map(|e| e.lang.as_str()).collect::<std::collections::BTreeSet<_>>(),
            "sgd": opts.sgd,
        }),
        metrics: serde_json::Value::Null,
    };

    // Write to a sibling temporary directory, check it through ONNX Runtime, then swap it in.
    let parent = opts.out_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".train-")
        .tempdir_in(parent)
        .map_err(|e| TrainError::io(parent, e))?;
    let write = |card: &ModelCard| -> Result<(), TrainError> {
        let path = staging.path().join(CARD_FILE);
        let json = serde_json::to_vec_pretty(card).expect("card serializes");
        std::fs::write(&path, json).map_err(|e| TrainError::io(&path, e))
    };
    let model_path = staging.path().join(MODEL_FILE);
    std::fs::write(&model_path, &onnx).map_err(|e| TrainError::io(&model_path, e))?;
    write(&card)?;

    let served = Classifier::load(staging.path(), 1, 1)?;
    let texts: Vec<&str> = holdout.iter().map(|e| e.text.as_str()).collect();
    let mut evaluation = Evaluation::default();
    let mut max_diff = 0f32;
    for (chunk_examples, chunk) in holdout.chunks(256).zip(texts.chunks(256)) {
        let scores = served.score(chunk)?;
        for (example, s) in chunk_examples.iter().zip(&scores) {
            featurizer.featurize(&example.text, &mut ids);
            let direct = model.predict(&ids);
            for (a, b) in direct.iter().zip(s.0.iter()) {
                max_diff = max_diff.max((a - b).abs());
            }
            evaluation.add(
                &opts.policy,
                Labelled {
                    scores: s,
                    positive: example.label.is_some(),
                    category: example.label,
                    group: example.group.as_deref(),
                },
            );
        }
    }
    if max_diff > 1e-4 {
        return Err(TrainError::Mismatch(max_diff));
    }
    drop(served);
    let report = TrainReport {
        version,
        train_examples: training.len(),
        holdout_examples: holdout.len(),
        holdout: evaluation.report(),
    };
    card.metrics = serde_json::to_value(&report.holdout).expect("report serializes");
    write(&card)?;

    let staged = staging.keep();
    if opts.out_dir.exists() {
        let old = parent.join(format!(".old-{}", std::process::id()));
        std::fs::rename(&opts.out_dir, &old).map_err(|e| TrainError::io(&opts.out_dir, e))?;
        std::fs::rename(&staged, &opts.out_dir).map_err(|e| TrainError::io(&staged, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    } else {
        std::fs::rename(&staged, &opts.out_dir).map_err(|e| TrainError::io(&staged, e))?;
    }
    Ok(report)
}
