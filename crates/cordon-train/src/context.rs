//! Training of the context stage's head: the encoder's embedding and the fast model's scores in,
//! six probabilities out (a logistic regression per category over 384 + 6 inputs).
//!
//! The head must learn how far to trust the fast model, so it trains on texts the fast model
//! never saw: the texts of two in three validation templates. The other third of the templates
//! (never trained on by either model), with the validation file, chooses the context stage's
//! thresholds ([`crate::calibrate`]) on the texts
//! the cascade would send it (fast top score at or above the band, not suppressed by the fast
//! model). Embeddings are cached on disk by text, so a second run embeds nothing it has embedded.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cordon_classifier::Classifier;
use cordon_context::{
    fast_logits, in_band, ContextCard, ContextModel, Device, Encoder, CANARY_FILE,
    CONTEXT_CARD_FILE, HEAD_FILE,
};
use cordon_domain::{Action, Category, Policy, Scores};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use tracing::info;
use xxhash_rust::xxh3::xxh3_64;

use crate::calibrate::{self, Calibration, Targets};
use crate::eval::{Evaluation, Labelled, Report};
use crate::{read_labelled, Corpus, Example, LabelledText, Split, TrainError};

/// What to train.
#[derive(Debug, Clone)]
pub struct ContextOptions {
    /// Directory of corpus TOML files (the fast model's, with the same seed and size).
    pub corpus_dir: PathBuf,
    /// The model directory to write.
    pub out_dir: PathBuf,
    /// The fast model whose scores the head reads.
    pub fast_model: PathBuf,
    /// The encoder directory.
    pub encoder: PathBuf,
    /// Texts generated per template (as for the fast model).
    pub per_template: usize,
    /// Seed.
    pub seed: u64,
    /// Most texts to train the head on.
    pub train_texts: usize,
    /// Most generated texts to choose thresholds on (the validation file comes on top).
    pub calibration_texts: usize,
    /// Most test-template texts to report on.
    pub test_texts: usize,
    /// The lowest top fast score that sends an item to the context stage.
    pub band_low: f32,
    /// Threshold targets.
    pub targets: Targets,
    /// The hand-written validation file (thresholds are chosen on it too).
    pub validation_file: Option<PathBuf>,
    /// Files only reported.
    pub eval_files: Vec<PathBuf>,
    /// Where embeddings are cached.
    pub cache_dir: PathBuf,
    /// Encoder threads.
    pub threads: usize,
}

/// The cascade on one labelled set.
#[derive(Debug, Clone, Serialize)]
pub struct CascadeReport {
    /// The set (a file path, or `test templates`).
    pub set: String,
    /// Whether thresholds were chosen on it.
    pub used_for_validation: bool,
    /// Share of its texts the cascade sends to the context stage.
    pub context_share: f64,
    /// Share of its legitimate texts the cascade sends to the context stage (on a platform's
    /// traffic, mostly legitimate, this is close to the share of all traffic).
    pub context_share_legitimate: f64,
    /// The fast model alone, under its own policy.
    pub fast: Report,
    /// The cascade: the fast model's decision outside the band, the context stage's inside.
    pub cascade: Report,
}

/// Summary of a context training run, also stored in the card.
#[derive(Debug, Clone, Serialize)]
pub struct ContextReport {
    /// The new model's version.
    pub version: String,
    /// Texts the head trained on.
    pub train_texts: usize,
    /// Texts in the band thresholds were chosen on.
    pub calibration_texts: usize,
    /// The thresholds and the numbers behind them.
    pub calibration: Calibration,
    /// Per set.
    pub sets: Vec<CascadeReport>,
}

/// The cascade's decision rule: the fast model decides outside the band, the context stage
/// inside it.
#[derive(Debug, Clone, Copy)]
pub struct Cascade<'a> {
    /// The fast model's policy.
    pub fast_policy: &'a Policy,
    /// The context stage's policy.
    pub context_policy: &'a Policy,
    /// See [`cordon_context::in_band`].
    pub band_low: f32,
}

/// One labelled item as the cascade saw it.
#[derive(Debug, Clone)]
pub struct CascadeItem {
    /// Its category (`None`: legitimate).
    pub label: Option<Category>,
    /// Its negative kind.
    pub group: Option<String>,
    /// Its language.
    pub lang: Option<String>,
    /// The fast model's scores.
    pub fast: Scores,
    /// The context stage's scores, where it scored the item (at least where it is in the band).
    pub context: Option<Scores>,
}

impl Cascade<'_> {
    /// Whether the context stage decides an item with these fast scores.
    pub fn sends(&self, fast: &Scores) -> bool {
        in_band(self.fast_policy, fast, self.band_low)
    }

    /// The fast model alone and the cascade on `items`.
    pub fn report(
        &self,
        set: String,
        used_for_validation: bool,
        items: &[CascadeItem],
    ) -> CascadeReport {
        let (mut fast_eval, mut cascade_eval, mut sent) =
            (Evaluation::default(), Evaluation::default(), 0usize);
        let (mut legitimate, mut legitimate_sent) = (0usize, 0usize);
        for item in items {
            let labelled = |scores| Labelled {
                scores,
                positive: item.label.is_some(),
                category: item.label,
                group: item.group.as_deref(),
                lang: item.lang.as_deref(),
            };
            fast_eval.add(self.fast_policy, labelled(&item.fast));
            legitimate += usize::from(item.label.is_none());
            match item.context.as_ref().filter(|_| self.sends(&item.fast)) {
                Some(context) => {
                    sent += 1;
                    legitimate_sent += usize::from(item.label.is_none());
                    cascade_eval.add(self.context_policy, labelled(context));
                }
                None => cascade_eval.add(self.fast_policy, labelled(&item.fast)),
            }
        }
        CascadeReport {
            set,
            used_for_validation,
            context_share: sent as f64 / items.len().max(1) as f64,
            context_share_legitimate: legitimate_sent as f64 / legitimate.max(1) as f64,
            fast: fast_eval.report(),
            cascade: cascade_eval.report(),
        }
    }
}

/// Embeddings by text, cached in one append-only file per encoder.
struct EmbeddingCache {
    path: PathBuf,
    dims: usize,
    known: HashMap<u64, Vec<f32>>,
}

impl EmbeddingCache {
    fn open(dir: &Path, encoder: &Encoder) -> Result<EmbeddingCache, TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let sha = &encoder.card().onnx_sha256;
        let path = dir.join(format!("{}.bin", &sha[..16.min(sha.len())]));
        let dims = encoder.card().dimensions;
        let mut known = HashMap::new();
        if let Ok(bytes) = std::fs::read(&path) {
            let record = 8 + 4 * dims;
            let whole = bytes.len() / record * record;
            if whole < bytes.len() {
                // A write torn by a crash: drop the partial record so later ones stay aligned.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| TrainError::io(&path, e))?;
                file.set_len(whole as u64)
                    .map_err(|e| TrainError::io(&path, e))?;
            }
            for chunk in bytes[..whole].chunks_exact(record) {
                let key = u64::from_le_bytes(chunk[..8].try_into().unwrap_or_default());
                let v = chunk[8..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                known.insert(key, v);
            }
        }
        Ok(EmbeddingCache { path, dims, known })
    }

    /// The embeddings of `texts`, embedding (and caching) the ones not seen before.
    fn embed(
        &mut self,
        encoder: &Encoder,
        texts: &[&str],
        threads: usize,
    ) -> Result<Vec<Vec<f32>>, TrainError> {
        let missing: Vec<&str> = {
            let mut seen = std::collections::HashSet::new();
            texts
                .iter()
                .copied()
                .filter(|t| !self.known.contains_key(&xxh3_64(t.as_bytes())) && seen.insert(*t))
                .collect()
        };
        if !missing.is_empty() {
            info!(texts = missing.len(), "embedding");
            let started = std::time::Instant::now();
            let chunks: Vec<&[&str]> = missing
                .chunks(missing.len().div_ceil(threads.max(1)))
                .collect();
            let results: Vec<Result<Vec<Vec<f32>>, TrainError>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunks
                    .iter()
                    .map(|chunk| {
                        s.spawn(move || {
                            let mut out = Vec::with_capacity(chunk.len());
                            for batch in chunk.chunks(16) {
                                out.extend(encoder.embed(batch).map_err(TrainError::from)?);
                            }
                            Ok(out)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(TrainError::Embedding("an encoder thread panicked".into()))
                        })
                    })
                    .collect()
            });
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| TrainError::io(&self.path, e))?;
            let mut done = 0;
            for (chunk, result) in chunks.iter().zip(results) {
                for (text, v) in chunk.iter().zip(result?) {
                    let key = xxh3_64(text.as_bytes());
                    let mut record = key.to_le_bytes().to_vec();
                    record.extend(v.iter().flat_map(|f| f.to_le_bytes()));
                    file.write_all(&record)
                        .map_err(|e| TrainError::io(&self.path, e))?;
                    self.known.insert(key, v);
                    done += 1;
                }
            }
            info!(
                texts = done,
                per_second = done as f64 / started.elapsed().as_secs_f64(),
                "embedded"
            );
        }
        texts
            .iter()
            .map(|t| {
                self.known
                    .get(&xxh3_64(t.as_bytes()))
                    .cloned()
                    .filter(|v| v.len() == self.dims)
                    .ok_or_else(|| TrainError::Embedding(format!("no embedding for {t:?}")))
            })
            .collect()
    }
}

/// A logistic regression per category over standardized dense inputs, trained by mini-batch
/// gradient descent; [`Head::raw`] folds the standardization back into the weights.
struct Head {
    /// Row-major `[inputs, categories]`, on standardized inputs.
    weights: Vec<f32>,
    bias: [f32; 6],
    mean: Vec<f32>,
    scale: Vec<f32>,
}

const EPOCHS: usize = 60;
const LEARNING_RATE: f32 = 0.05;
const L2: f32 = 1e-3;

impl Head {
    fn train(rows: &[Vec<f32>], labels: &[Option<Category>], seed: u64) -> Head {
        let inputs = rows.first().map_or(0, Vec::len);
        let n = rows.len().max(1) as f32;
        let mut mean = vec![0f32; inputs];
        for r in rows {
            for (m, x) in mean.iter_mut().zip(r) {
                *m += x / n;
            }
        }
        let mut scale = vec![0f32; inputs];
        for r in rows {
            for ((s, x), m) in scale.iter_mut().zip(r).zip(&mean) {
                *s += (x - m) * (x - m) / n;
            }
        }
        for s in &mut scale {
            *s = 1.0 / s.sqrt().max(1e-6);
        }
        let standard: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((x, m), s)| (x - m) * s)
                    .collect()
            })
            .collect();
        let mut head = Head {
            weights: vec![0f32; inputs * 6],
            bias: [-2.0; 6],
            mean,
            scale,
        };
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xC0DE);
        for epoch in 0..EPOCHS {
            order.shuffle(&mut rng);
            let lr = LEARNING_RATE * (1.0 - 0.9 * epoch as f32 / EPOCHS as f32);
            for &i in &order {
                let x = &standard[i];
                let p = head.predict_standard(x);
                for (c, pc) in p.iter().enumerate() {
                    let y = if labels[i].map(Category::index) == Some(c) {
                        1.0
                    } else {
                        0.0
                    };
                    let g = pc - y;
                    head.bias[c] -= lr * g;
                    for (k, xk) in x.iter().enumerate() {
                        let w = &mut head.weights[k * 6 + c];
                        *w -= lr * (g * xk + L2 * *w);
                    }
                }
            }
        }
        head
    }

    fn predict_standard(&self, x: &[f32]) -> [f32; 6] {
        let mut z = self.bias;
        for (k, xk) in x.iter().enumerate() {
            for (c, zc) in z.iter_mut().enumerate() {
                *zc += self.weights[k * 6 + c] * xk;
            }
        }
        z.map(|z| 1.0 / (1.0 + (-z).exp()))
    }

    /// Weights and bias on raw inputs: `w_raw = w · s`, `b_raw = b − Σ w · s · m`.
    fn raw(&self) -> (Vec<f32>, [f32; 6]) {
        let mut weights = self.weights.clone();
        let mut bias = self.bias;
        for (k, (m, s)) in self.mean.iter().zip(&self.scale).enumerate() {
            for c in 0..6 {
                weights[k * 6 + c] *= s;
                bias[c] -= weights[k * 6 + c] * m;
            }
        }
        (weights, bias)
    }
}

/// One labelled text with the fast model's scores and its embedding.
struct Item {
    text: String,
    label: Option<Category>,
    group: Option<String>,
    lang: Option<String>,
    fast: Scores,
    embedding: Vec<f32>,
}

fn take(examples: Vec<&Example>, n: usize, seed: u64) -> Vec<&Example> {
    let mut examples = examples;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    examples.shuffle(&mut rng);
    examples.truncate(n);
    examples
}

/// Trains, exports, calibrates and evaluates a context model. ONNX Runtime must be initialized.
pub fn train_context(opts: &ContextOptions) -> Result<ContextReport, TrainError> {
    let fast = Classifier::load(&opts.fast_model, 1, 1)?;
    let fast_policy = fast.card().policy.clone();
    let encoder = Arc::new(Encoder::load(
        &opts.encoder,
        opts.threads.max(1),
        1,
        Device::Cpu,
    )?);
    let mut cache = EmbeddingCache::open(&opts.cache_dir, &encoder)?;

    let corpus = Corpus::load(&opts.corpus_dir)?;
    let examples = corpus.generate(opts.per_template, opts.seed);
    let validation: Vec<&Example> = examples
        .iter()
        .filter(|e| e.split == Split::Validation)
        .collect();
    let (head_part, calibration_part): (Vec<&Example>, Vec<&Example>) = validation
        .into_iter()
        .partition(|e| !(e.template / 7).is_multiple_of(3));
    let test: Vec<&Example> = examples.iter().filter(|e| e.split == Split::Test).collect();

    let mut prepare = |items: Vec<LabelledText>| -> Result<Vec<Item>, TrainError> {
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        let mut scores = Vec::with_capacity(items.len());
        for chunk in texts.chunks(256) {
            scores.extend(fast.score(chunk)?);
        }
        let embeddings = cache.embed(&encoder, &texts, opts.threads)?;
        Ok(items
            .into_iter()
            .zip(scores)
            .zip(embeddings)
            .map(|((i, fast), embedding)| Item {
                label: (i.label == 1).then(|| i.category.unwrap_or(fast.top().0)),
                text: i.text,
                group: i.group,
                lang: i.lang,
                fast,
                embedding,
            })
            .collect())
    };
    let train = prepare(crate::labelled(&take(
        head_part,
        opts.train_texts,
        opts.seed,
    )))?;
    let mut calibration_items =
        crate::labelled(&take(calibration_part, opts.calibration_texts, opts.seed));
    let validation_file = opts
        .validation_file
        .as_deref()
        .map(read_labelled)
        .transpose()?;
    calibration_items.extend(validation_file.iter().flatten().cloned());
    let calibration_set = prepare(calibration_items)?;

    let features = |i: &Item| {
        let mut x = i.embedding.clone();
        x.extend(fast_logits(&i.fast));
        x
    };
    let rows: Vec<Vec<f32>> = train.iter().map(features).collect();
    let labels: Vec<Option<Category>> = train.iter().map(|i| i.label).collect();
    let head = Head::train(&rows, &labels, opts.seed);
    let (weights, bias) = head.raw();
    let dims = encoder.card().dimensions;
    let name = opts
        .out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "context".into());
    let weight_bytes: Vec<u8> = weights
        .iter()
        .chain(&bias)
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let version = format!("{name}-{:08x}", xxh3_64(&weight_bytes) as u32);
    let onnx = cordon_classifier::onnx::export_head(&weights, &bias, dims, &version);

    let mut card = ContextCard {
        name,
        version: version.clone(),
        categories: Category::ALL.to_vec(),
        encoder_name: encoder.card().name.clone(),
        encoder_sha256: encoder.card().onnx_sha256.clone(),
        fast_model: fast.card().version.clone(),
        policy: crate::default_policy(),
        band_low: opts.band_low,
        training: serde_json::json!({
            "generator": "models/corpus",
            "seed": opts.seed,
            "head": "logistic regression per category over the embedding and the fast model's six logits, standardized",
            "train_texts": train.len(),
            "train_from": "the texts of two in three validation templates (the fast model never saw them); thresholds on the other third",
            "epochs": EPOCHS, "learning_rate": LEARNING_RATE, "l2": L2,
        }),
        metrics: serde_json::Value::Null,
    };
    let staging = crate::staging(&opts.out_dir)?;
    let write = |card: &ContextCard| -> Result<(), TrainError> {
        let path = staging.path().join(CONTEXT_CARD_FILE);
        let json = serde_json::to_vec_pretty(card).expect("card serializes");
        std::fs::write(&path, json).map_err(|e| TrainError::io(&path, e))
    };
    let head_path = staging.path().join(HEAD_FILE);
    std::fs::write(&head_path, &onnx).map_err(|e| TrainError::io(&head_path, e))?;
    write(&card)?;
    let served = ContextModel::load(staging.path(), Arc::clone(&encoder), 1, 1, Device::Cpu)?;
    let score = |items: &[&Item]| -> Result<Vec<Scores>, TrainError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(256) {
            let embeddings: Vec<Vec<f32>> = chunk.iter().map(|i| i.embedding.clone()).collect();
            let fast: Vec<Scores> = chunk.iter().map(|i| i.fast).collect();
            out.extend(served.score_embedded(&embeddings, &fast)?);
        }
        Ok(out)
    };

    // Thresholds: on the calibration texts the cascade would send to the context stage.
    let in_band_items: Vec<&Item> = calibration_set
        .iter()
        .filter(|i| in_band(&fast_policy, &i.fast, opts.band_low))
        .collect();
    let band_scores = score(&in_band_items)?;
    let scored: Vec<calibrate::Scored> = band_scores
        .into_iter()
        .zip(&in_band_items)
        .map(|(s, i)| (s, i.label))
        .collect();
    let (policy, calibration) = calibrate::calibrate(&scored, opts.targets);
    card.policy = policy.clone();

    let cascade = |set: String, used: bool, items: &[Item]| -> Result<CascadeReport, TrainError> {
        let context = score(&items.iter().collect::<Vec<_>>())?;
        let rows: Vec<CascadeItem> = items
            .iter()
            .zip(context)
            .map(|(i, c)| CascadeItem {
                label: i.label,
                group: i.group.clone(),
                lang: i.lang.clone(),
                fast: i.fast,
                context: Some(c),
            })
            .collect();
        Ok(Cascade {
            fast_policy: &fast_policy,
            context_policy: &policy,
            band_low: opts.band_low,
        }
        .report(set, used, &rows))
    };
    let mut sets = vec![cascade(
        "validation (calibration part)".into(),
        true,
        &calibration_set,
    )?];
    let test_items = prepare(crate::labelled(&take(test, opts.test_texts, opts.seed)))?;
    sets.push(cascade("test templates".into(), false, &test_items)?);
    for path in &opts.eval_files {
        let items = prepare(read_labelled(path)?)?;
        sets.push(cascade(path.display().to_string(), false, &items)?);
    }

    // Canaries: texts in the band the model decides as recorded.
    let mut canaries = Vec::new();
    for item in in_band_items.iter().take(400) {
        let s = served.score(&[item.text.as_str()], &[item.fast])?;
        let flagged = policy.decide(&s[0]).action != Action::Allow;
        if flagged == item.label.is_some() && canaries.len() < 20 {
            canaries.push(
                serde_json::json!({"text": item.text, "fast_scores": item.fast, "flagged": flagged}).to_string(),
            );
        }
    }
    let canary_path = staging.path().join(CANARY_FILE);
    std::fs::write(&canary_path, canaries.join("\n") + "\n")
        .map_err(|e| TrainError::io(&canary_path, e))?;
    drop(served);

    let report = ContextReport {
        version,
        train_texts: train.len(),
        calibration_texts: scored.len(),
        calibration,
        sets,
    };
    card.metrics = serde_json::to_value(&report).expect("report serializes");
    write(&card)?;
    crate::swap_in(staging, &opts.out_dir)?;
    Ok(report)
}
