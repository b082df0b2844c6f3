//! Training of Cordon's classifier: corpus generation, SGD training, ONNX export, evaluation.
//!
//! [`train`] is the one entry point: it generates the corpus from `models/corpus/`, trains on the
//! non-held-out templates with the serving featurizer ([`cordon_text`]), writes
//! `model.onnx` and `model.json` into the model directory (atomically, via a temporary
//! directory), loads the written model through ONNX Runtime and reports its metrics on the
//! held-out templates — so the numbers are those of the artifact that will serve.

mod baseline;
mod corpus;
mod dataset;
mod eval;
mod linear;

use std::path::{Path, PathBuf};

use cordon_classifier::{Classifier, ModelCard, CANARY_FILE, CARD_FILE, MODEL_FILE};
use cordon_domain::{Category, Policy};
use cordon_text::{FeatureConfig, Featurizer};
use serde::Serialize;

pub use baseline::KeywordBaseline;
pub use corpus::{augment, Corpus, Example};
pub use dataset::{read_labelled, LabelledText};
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
    /// An independently written labelled set to evaluate on (see [`read_labelled`]).
    pub eval_file: Option<PathBuf>,
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
    /// The keyword baseline on the held-out templates.
    pub baseline_holdout: Report,
    /// Metrics on the independent evaluation file, if one was given.
    pub independent: Option<Report>,
    /// The keyword baseline on the independent evaluation file.
    pub baseline_independent: Option<Report>,
}

/// Scores every text with `score` (in chunks) and evaluates the policy's decisions.
pub fn evaluate<F>(
    policy: &Policy,
    items: &[LabelledText],
    mut score: F,
) -> Result<Report, TrainError>
where
    F: FnMut(&[&str]) -> Result<Vec<cordon_domain::Scores>, TrainError>,
{
    let mut evaluation = Evaluation::default();
    for chunk in items.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|i| i.text.as_str()).collect();
        for (item, s) in chunk.iter().zip(score(&texts)?) {
            evaluation.add(
                policy,
                Labelled {
                    scores: &s,
                    positive: item.label == 1,
                    category: item.category,
                    group: item.group.as_deref(),
                },
            );
        }
    }
    Ok(evaluation.report())
}

/// Writes up to five correctly flagged texts per category and twenty correctly allowed ones.
fn write_canaries(
    model: &Classifier,
    policy: &Policy,
    items: &[LabelledText],
    path: &Path,
) -> Result<(), TrainError> {
    let mut lines = Vec::new();
    let mut per_category = std::collections::BTreeMap::new();
    let mut negatives = 0;
    for item in items {
        let decision = policy.decide(&model.score(&[item.text.as_str()])?[0]);
        let flagged = decision.action != cordon_domain::Action::Allow;
        let wanted = match item.category {
            Some(c) if flagged && decision.category == c => {
                let n = per_category.entry(c).or_insert(0);
                *n += 1;
                *n <= 5
            }
            None if !flagged => {
                negatives += 1;
                negatives <= 20
            }
            _ => false,
        };
        if wanted {
            lines.push(
                serde_json::json!({"text": item.text, "flagged": flagged, "category": item.category})
                    .to_string(),
            );
        }
    }
    std::fs::write(path, lines.join("\n") + "\n").map_err(|e| TrainError::io(path, e))
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
    let onnx =
        cordon_classifier::onnx::export(&model.weights, &model.bias, model.buckets, &version);

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
    let mut max_diff = 0f32;
    for example in holdout.iter().take(500) {
        featurizer.featurize(&example.text, &mut ids);
        let direct = model.predict(&ids);
        let onnx = served.score(&[example.text.as_str()])?;
        for (a, b) in direct.iter().zip(onnx[0].0.iter()) {
            max_diff = max_diff.max((a - b).abs());
        }
    }
    if max_diff > 1e-4 {
        return Err(TrainError::Mismatch(max_diff));
    }
    let holdout_items: Vec<LabelledText> = holdout
        .iter()
        .map(|e| LabelledText {
            text: e.text.clone(),
            label: u8::from(e.label.is_some()),
            category: e.label,
            group: e.group.clone(),
            lang: Some(e.lang.clone()),
        })
        .collect();
    let baseline = KeywordBaseline::new(corpus.keywords());
    let by_model = |texts: &[&str]| served.score(texts).map_err(TrainError::from);
    let by_keywords =
        |texts: &[&str]| Ok::<_, TrainError>(texts.iter().map(|t| baseline.score(t)).collect());
    let independent_items = opts.eval_file.as_deref().map(read_labelled).transpose()?;
    let report = TrainReport {
        version,
        train_examples: training.len(),
        holdout_examples: holdout.len(),
        holdout: evaluate(&opts.policy, &holdout_items, by_model)?,
        baseline_holdout: evaluate(&opts.policy, &holdout_items, by_keywords)?,
        independent: independent_items
            .as_deref()
            .map(|items| evaluate(&opts.policy, items, by_model))
            .transpose()?,
        baseline_independent: independent_items
            .as_deref()
            .map(|items| evaluate(&opts.policy, items, by_keywords))
            .transpose()?,
    };
    write_canaries(
        &served,
        &opts.policy,
        &holdout_items,
        &staging.path().join(CANARY_FILE),
    )?;
    drop(served);
    card.metrics = serde_json::to_value(&report).expect("report serializes");
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
