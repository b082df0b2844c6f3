//! `cordon train` and `cordon train-context`: the fast model and the context stage's head.

use crate::config::Config;
use anyhow::Result;
use cordon_classifier::init_runtime;
use std::process::ExitCode;
use std::time::Instant;
use tracing::info;

pub fn train(
    config: &Config,
    corpus: std::path::PathBuf,
    out: Option<std::path::PathBuf>,
    per_template: usize,
    sgd: cordon_train::SgdConfig,
    validation: std::path::PathBuf,
    eval: Vec<std::path::PathBuf>,
) -> Result<ExitCode> {
    init_runtime(&config.model.onnxruntime_path())?;
    let out_dir = out.unwrap_or_else(|| config.model.dir.clone());
    let started = Instant::now();
    info!(corpus = %corpus.display(), out = %out_dir.display(), "training");
    let report = cordon_train::train(&cordon_train::TrainOptions {
        corpus_dir: corpus,
        out_dir: out_dir.clone(),
        per_template,
        seed: sgd.seed,
        sgd,
        targets: cordon_train::calibrate::Targets::default(),
        validation_file: validation.is_file().then_some(validation),
        eval_files: eval.into_iter().filter(|p| p.is_file()).collect(),
    })?;
    info!(
        version = %report.version,
        train = report.train_examples,
        validation = report.validation_examples,
        test = report.test_examples,
        seconds = started.elapsed().as_secs_f64(),
        "model written to {}",
        out_dir.display()
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

pub fn train_context(
    config: &Config,
    opts: cordon_train::context::ContextOptions,
) -> Result<ExitCode> {
    init_runtime(&config.model.onnxruntime_path())?;
    let started = Instant::now();
    info!(encoder = %opts.encoder.display(), fast = %opts.fast_model.display(), out = %opts.out_dir.display(), "training the context stage");
    let report = cordon_train::context::train_context(&opts)?;
    info!(
        version = %report.version,
        train = report.train_texts,
        calibration = report.calibration_texts,
        seconds = started.elapsed().as_secs_f64(),
        "context model written to {}",
        opts.out_dir.display()
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
