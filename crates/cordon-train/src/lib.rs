//! Training of Cordon's classifier: corpus generation, SGD training, ONNX export, evaluation.
//!
//! [`train`] is the one entry point: it generates the corpus from `models/corpus/`, trains on the
//! training templates with the serving featurizer ([`cordon_text`]), writes `model.onnx` and
//! `model.json` into the model directory (atomically, via a temporary directory), loads the
//! written model through ONNX Runtime, chooses its thresholds on validation data
//! ([`calibrate`]) and reports its metrics on the test templates and on independent sets — so
//! the numbers are those of the artifact that will serve.

pub mod adversarial;
mod baseline;
pub mod calibrate;
pub mod context;
mod corpus;
mod dataset;
mod eval;
mod linear;

use std::path::{Path, PathBuf};

use cordon_classifier::{Classifier, ModelCard, CANARY_FILE, CARD_FILE, MODEL_FILE};
use cordon_domain::{Category, Policy};
use cordon_text::{FeatureConfig, Featurizer, TextFeatures};
use serde::Serialize;

pub use baseline::KeywordBaseline;
pub use corpus::{augment, Corpus, Example, Split};
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
    /// The context model or its encoder could not be loaded or run.
    #[error("context stage: {0}")]
    Context(#[from] cordon_context::ContextError),
    /// Embedding failed.
    #[error("embedding: {0}")]
    Embedding(String),
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
    /// What the thresholds must achieve on validation data.
    pub targets: calibrate::Targets,
    /// A hand-written labelled set added to the validation templates for choosing thresholds
    /// (see [`read_labelled`]); it is also reported.
    pub validation_file: Option<PathBuf>,
    /// Independently written labelled sets that nothing is chosen on: only reported.
    pub eval_files: Vec<PathBuf>,
}

/// Summary of a training run, also stored in the card.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The new model's version.
    pub version: String,
    /// Examples trained on (filler-augmented copies included).
    pub train_examples: usize,
    /// Validation examples thresholds were chosen on.
    pub validation_examples: usize,
    /// Test examples (held-out templates) evaluated.
    pub test_examples: usize,
    /// The thresholds chosen and the validation numbers behind them.
    pub calibration: calibrate::Calibration,
    /// Metrics on the held-out test templates.
    pub test: Report,
    /// The keyword baseline on the held-out test templates.
    pub baseline_test: Report,
    /// Metrics on each labelled file (the validation file first), by path.
    pub files: Vec<FileReport>,
}

/// The model and the keyword baseline on one labelled file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Whether thresholds were chosen on it.
    pub used_for_validation: bool,
    /// The model.
    pub model: Report,
    /// The keyword baseline.
    pub baseline: Report,
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
                    lang: item.lang.as_deref(),
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

/// The thresholds a new model is checked with before it is calibrated.
pub fn default_policy() -> Policy {
    Policy::uniform(0.5, 0.85)
}

/// Share of the training texts of the smaller class (offers or legitimate texts) that also train
/// as a filler-augmented copy; the larger class gets as many copies, so filler is balanced.
const FILLER_SHARE: f64 = 0.5;

/// Negative groups whose texts serve as filler: unrelated to every category.
const FILLER_GROUPS: &[&str] = &["everyday", "games"];

/// Training rows: every window of every training text, plus for a share of texts a copy with
/// unrelated words from the corpus's everyday texts before or after it (on the same line, as its
/// own sentence or as its own paragraph) that still fits in one window — so words that carry no
/// evidence either way learn to weigh nothing, and an offer next to filler is still an offer.
fn training_rows(
    training: &[&Example],
    featurizer: &Featurizer,
    seed: u64,
) -> Vec<(Vec<u32>, Option<Category>)> {
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xF111);
    let fillers: Vec<Vec<&str>> = training
        .iter()
        .filter(|e| {
            e.label.is_none()
                && e.group
                    .as_deref()
                    .is_some_and(|g| FILLER_GROUPS.contains(&g))
        })
        .map(|e| e.text.split_whitespace().collect())
        .collect();
    let offers = training.iter().filter(|e| e.label.is_some()).count() as f64;
    let legitimate = training.len() as f64 - offers;
    let copies = FILLER_SHARE * offers.min(legitimate);
    let share = |offer: bool| (copies / if offer { offers } else { legitimate }).min(1.0);
    let window = featurizer.config().window_words;
    let mut features = TextFeatures::new();
    let mut rows = Vec::with_capacity(training.len() * 2);
    let mut push = |text: &str, label, rows: &mut Vec<(Vec<u32>, Option<Category>)>| {
        featurizer.featurize(text, &mut features);
        rows.extend(features.windows().map(|w| (w.to_vec(), label)));
    };
    for e in training {
        push(&e.text, e.label, &mut rows);
        if !rng.random_bool(share(e.label.is_some())) {
            continue;
        }
        let mut words = Vec::new();
        let wanted = rng.random_range(3..=window);
        while words.len() < wanted {
            let Some(filler) = fillers.choose(&mut rng) else {
                break;
            };
            words.extend_from_slice(filler);
        }
        let room = window.saturating_sub(e.text.split_whitespace().count());
        words.truncate(wanted.min(room));
        if words.is_empty() {
            continue;
        }
        let filler = words.join(" ");
        let sep = [" ", ". ", "\n"][rng.random_range(0..3)];
        let text = if rng.random_bool(0.5) {
            format!("{}{sep}{filler}", e.text)
        } else {
            format!("{filler}{sep}{}", e.text)
        };
        // The copy must stay one window (the featurizer's words, not white space, count): a
        // window of filler alone must never be labelled an offer.
        let mut copy = TextFeatures::new();
        featurizer.featurize(&text, &mut copy);
        if copy.len() == 1 {
            rows.extend(copy.windows().map(|w| (w.to_vec(), e.label)));
        }
    }
    rows
}

/// Share of validation texts that also validate as a long text (see [`long_variants`]).
const LONG_SHARE: f64 = 0.2;

/// Long texts for validation: a text with two to six legitimate texts of the same set as
/// paragraphs around it, labelled as the text. A long text is scored in windows and its score is
/// its strongest window's, so thresholds chosen on short texts alone would flag long benign ones.
fn long_variants(items: &[LabelledText], seed: u64) -> Vec<LabelledText> {
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x1046);
    let legitimate: Vec<&str> = items
        .iter()
        .filter(|i| i.label == 0)
        .map(|i| i.text.as_str())
        .collect();
    let mut out = Vec::new();
    for item in items {
        if legitimate.is_empty() || !rng.random_bool(LONG_SHARE) {
            continue;
        }
        let mut paragraphs: Vec<&str> = (0..rng.random_range(2..=6))
            .filter_map(|_| legitimate.choose(&mut rng).copied())
            .collect();
        paragraphs.insert(rng.random_range(0..=paragraphs.len()), &item.text);
        out.push(LabelledText {
            text: paragraphs.join("\n"),
            ..item.clone()
        });
    }
    out
}

pub(crate) fn labelled(examples: &[&Example]) -> Vec<LabelledText> {
    examples
        .iter()
        .map(|e| LabelledText {
            text: e.text.clone(),
            label: u8::from(e.label.is_some()),
            category: e.label,
            group: e.group.clone(),
            lang: Some(e.lang.clone()),
        })
        .collect()
}

/// Trains, exports, calibrates and evaluates a model. [`cordon_classifier::init_runtime`] must
/// have been called.
pub fn train(opts: &TrainOptions) -> Result<TrainReport, TrainError> {
    let corpus = Corpus::load(&opts.corpus_dir)?;
    let examples = corpus.generate(opts.per_template, opts.seed);
    let config = FeatureConfig::default();
    let featurizer = Featurizer::new(config.clone());
    let part = |split| -> Vec<&Example> { examples.iter().filter(|e| e.split == split).collect() };
    let (training, validation, test) = (
        part(Split::Train),
        part(Split::Validation),
        part(Split::Test),
    );
    let data = training_rows(&training, &featurizer, opts.seed);
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
        policy: default_policy(),
        training: serde_json::json!({
            "generator": "models/corpus",
            "seed": opts.seed,
            "per_template": opts.per_template,
            "train_texts": training.len(),
            "train_rows": data.len(),
            "filler_share": FILLER_SHARE,
            "validation_examples": validation.len(),
            "test_examples": test.len(),
            "validation_file": opts.validation_file,
            "languages": examples.iter().map(|e| e.lang.as_str()).collect::<std::collections::BTreeSet<_>>(),
            "sgd": opts.sgd,
        }),
        metrics: serde_json::Value::Null,
    };

    // Write to a sibling temporary directory, check it through ONNX Runtime, then swap it in.
    let staging = staging(&opts.out_dir)?;
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
    let mut features = TextFeatures::new();
    for example in test.iter().take(500) {
        featurizer.featurize(&example.text, &mut features);
        let mut direct = [f32::MIN; 6];
        for window in features.windows() {
            for (best, p) in direct.iter_mut().zip(model.predict(window)) {
                *best = best.max(p);
            }
        }
        let onnx = served.score(&[example.text.as_str()])?;
        for (a, b) in direct.iter().zip(onnx[0].0.iter()) {
            max_diff = max_diff.max((a - b).abs());
        }
    }
    if max_diff > 1e-4 {
        return Err(TrainError::Mismatch(max_diff));
    }

    // Thresholds: chosen on the validation templates and the validation file.
    let validation_file = opts
        .validation_file
        .as_deref()
        .map(read_labelled)
        .transpose()?;
    let mut validation_items = labelled(&validation);
    validation_items.extend(long_variants(&validation_items, opts.seed));
    validation_items.extend(validation_file.iter().flatten().cloned());
    let mut scored = Vec::with_capacity(validation_items.len());
    for chunk in validation_items.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|i| i.text.as_str()).collect();
        for (item, s) in chunk.iter().zip(served.score(&texts)?) {
            // A positive without a category counts as an offer of its top category.
            let category = (item.label == 1).then(|| item.category.unwrap_or(s.top().0));
            scored.push((s, category));
        }
    }
    let (policy, calibration) = calibrate::calibrate(&scored, opts.targets);
    card.policy = policy.clone();

    let test_items = labelled(&test);
    let baseline = KeywordBaseline::new(corpus.keywords());
    let by_model = |texts: &[&str]| served.score(texts).map_err(TrainError::from);
    let by_keywords =
        |texts: &[&str]| Ok::<_, TrainError>(texts.iter().map(|t| baseline.score(t)).collect());
    let mut files = Vec::new();
    let named = opts.validation_file.iter().map(|p| (p, true));
    for (path, used_for_validation) in named.chain(opts.eval_files.iter().map(|p| (p, false))) {
        let items = read_labelled(path)?;
        files.push(FileReport {
            path: path.clone(),
            used_for_validation,
            model: evaluate(&policy, &items, by_model)?,
            baseline: evaluate(&policy, &items, by_keywords)?,
        });
    }
    let report = TrainReport {
        version,
        train_examples: data.len(),
        validation_examples: validation_items.len(),
        test_examples: test_items.len(),
        calibration,
        test: evaluate(&policy, &test_items, by_model)?,
        baseline_test: evaluate(&policy, &test_items, by_keywords)?,
        files,
    };
    write_canaries(
        &served,
        &policy,
        &test_items,
        &staging.path().join(CANARY_FILE),
    )?;
    drop(served);
    card.metrics = serde_json::to_value(&report).expect("report serializes");
    write(&card)?;

    swap_in(staging, &opts.out_dir)?;
    Ok(report)
}

/// A temporary directory beside `out_dir` to write a model into, checked before it replaces
/// `out_dir` ([`swap_in`]).
pub(crate) fn staging(out_dir: &Path) -> Result<tempfile::TempDir, TrainError> {
    let parent = out_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    tempfile::Builder::new()
        .prefix(".train-")
        .tempdir_in(parent)
        .map_err(|e| TrainError::io(parent, e))
}

/// Renames the staged directory into `out_dir`'s place (the old one moved aside, then removed),
/// so a watcher never sees a half-written model.
pub(crate) fn swap_in(staging: tempfile::TempDir, out_dir: &Path) -> Result<(), TrainError> {
    let staged = staging.keep();
    if out_dir.exists() {
        let parent = out_dir.parent().unwrap_or(Path::new("."));
        let old = parent.join(format!(".old-{}", std::process::id()));
        std::fs::rename(out_dir, &old).map_err(|e| TrainError::io(out_dir, e))?;
        std::fs::rename(&staged, out_dir).map_err(|e| TrainError::io(&staged, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    } else {
        std::fs::rename(&staged, out_dir).map_err(|e| TrainError::io(&staged, e))?;
    }
    Ok(())
}
