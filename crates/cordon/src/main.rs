//! `cordon`: keeps illegal-goods offers out of public search.
//!
//! See `cordon --help`, README.md and docs/ARCHITECTURE.md.

mod commands;
mod config;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's allocator: the indexer allocates and frees many short-lived
/// buffers per record (payloads, states, documents), and with glibc's allocator it spent a
/// sixth of its time in malloc and free and kept freed memory resident (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use crate::commands::{classify, eval, produce, statements, train, user};
use crate::config::{Config, LogFormat, REFERENCE};

/// Keeps illegal-goods offers out of a messaging platform's public search.
#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    after_help = "Configuration: defaults, then --config FILE (TOML), then CORDON_<SECTION>__<KEY> \
                  environment variables. `cordon config --reference` prints every option with its \
                  documentation; docs/configuration.md explains them."
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short, global = true, env = "CORDON_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the service: worker, indexer, API and context roles, in one process or split.
    Run {
        /// Comma-separated roles: worker, indexer, api, context, or all (context only when
        /// context.enabled).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
        role: Vec<run::Role>,
    },
    /// Scores JSON lines (`id`, `text`) offline: one JSON line out per line in.
    Classify {
        /// Input file; `-` reads standard input.
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// Sends a JSON-lines file of content items to the content topic.
    Produce {
        /// The JSON-lines file.
        file: PathBuf,
        /// Topic to send to (default: kafka.content_topic).
        #[arg(long)]
        topic: Option<String>,
        /// Send lines as they are, even ones that are not valid content items (to exercise the
        /// dead-letter path).
        #[arg(long)]
        no_validate: bool,
    },
    /// Trains the classifier from the corpus generator and writes the model directory.
    Train {
        /// Directory of corpus TOML files.
        #[arg(long, default_value = "models/corpus")]
        corpus: PathBuf,
        /// Model directory to write (default: model.dir).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Texts generated per template.
        #[arg(long, default_value_t = 100)]
        per_template: usize,
        /// Seed of generation and training.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Training passes.
        #[arg(long, default_value_t = 8)]
        epochs: usize,
        /// Initial SGD step size.
        #[arg(long, default_value_t = 0.2)]
        learning_rate: f32,
        /// L2 penalty.
        #[arg(long, default_value_t = 1e-5)]
        l2: f32,
        /// A hand-written labelled set that, with the validation templates, thresholds are chosen on.
        #[arg(long, default_value = "models/eval/heldout.jsonl")]
        validation: PathBuf,
        /// Independent labelled sets to report on only (repeatable).
        #[arg(long, default_value = "models/eval/second.jsonl")]
        eval: Vec<PathBuf>,
    },
    /// Trains the context stage's head over the encoder set-up converted and the configured fast
    /// model, chooses its thresholds and writes models/cordon-context.
    TrainContext {
        /// Directory of corpus TOML files (as for `train`).
        #[arg(long, default_value = "models/corpus")]
        corpus: PathBuf,
        /// Model directory to write.
        #[arg(long, default_value = "models/cordon-context")]
        out: PathBuf,
        /// The encoder directory (default: $CORDON_CACHE/encoder/multilingual-e5-small).
        #[arg(long)]
        encoder: Option<PathBuf>,
        /// Texts generated per template (as for `train`).
        #[arg(long, default_value_t = 100)]
        per_template: usize,
        /// Seed (as for `train`).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Most texts to train the head on.
        #[arg(long, default_value_t = 4000)]
        train_texts: usize,
        /// Most generated texts to choose thresholds on.
        #[arg(long, default_value_t = 1500)]
        calibration_texts: usize,
        /// Most test-template texts to report on.
        #[arg(long, default_value_t = 1000)]
        test_texts: usize,
        /// The lowest top fast score that sends an item to the context stage.
        #[arg(long, default_value_t = 0.05)]
        band_low: f32,
        /// The hand-written validation file.
        #[arg(long, default_value = "models/eval/heldout.jsonl")]
        validation: PathBuf,
        /// Files to report on only (repeatable).
        #[arg(long, default_value = "models/eval/second.jsonl")]
        eval: Vec<PathBuf>,
        /// Encoder threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Evaluates the configured model on a labelled JSON-lines file (`text`, `label` 0/1,
    /// optional `category` and `group`): precision, recall, F1, false-positive rate.
    Eval {
        /// The labelled file.
        #[arg(long)]
        data: PathBuf,
        /// Also evaluate the cascade with this context model (e.g. models/cordon-context).
        #[arg(long)]
        context: Option<PathBuf>,
        /// The context model's encoder (default: $CORDON_CACHE/encoder/multilingual-e5-small).
        #[arg(long)]
        encoder: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manages console accounts (the first admin, before anyone can sign in).
    User {
        /// What to do.
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Statements of reasons.
    Statements {
        /// What to do.
        #[command(subcommand)]
        action: StatementsCommand,
    },
    /// Prints the effective configuration, or with --reference every option documented.
    Config {
        /// Print the documented reference instead of the effective values.
        #[arg(long)]
        reference: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Creates an account. The password is read from standard input (one line); with --sso the
    /// account has none and signs in only through the single-sign-on proxy.
    Add {
        /// User name (lower-case letters, digits, `._@-`).
        username: String,
        /// moderator, senior or admin.
        #[arg(long, default_value = "moderator")]
        role: String,
        /// No password: single sign-on only.
        #[arg(long)]
        sso: bool,
    },
    /// Lists accounts.
    List,
}

#[derive(Subcommand)]
enum StatementsCommand {
    /// Writes the statements applied from --from to --to (UTC days, both included) as JSON
    /// lines in the Transparency Database's schema, oldest first, to standard output or --out.
    Export {
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs a parsed command line.
fn dispatch(cli: Cli) -> Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config)?;
    match cli.command {
        Command::Run { role } => runtime()?.block_on(run::run(config, &role)),
        Command::Classify { input } => classify::classify(&config, &input),
        Command::Produce {
            file,
            topic,
            no_validate,
        } => runtime()?.block_on(produce::produce(&config, &file, topic, no_validate)),
        Command::Train {
            corpus,
            out,
            per_template,
            seed,
            epochs,
            learning_rate,
            l2,
            validation,
            eval,
        } => train::train(
            &config,
            corpus,
            out,
            per_template,
            cordon_train::SgdConfig {
                epochs,
                learning_rate,
                l2,
                seed,
            },
            validation,
            eval,
        ),
        Command::TrainContext {
            corpus,
            out,
            encoder,
            per_template,
            seed,
            train_texts,
            calibration_texts,
            test_texts,
            band_low,
            validation,
            eval,
            threads,
        } => train::train_context(
            &config,
            cordon_train::context::ContextOptions {
                corpus_dir: corpus,
                out_dir: out,
                fast_model: config.model.dir.clone(),
                encoder: encoder.unwrap_or_else(cordon_worker::default_encoder_dir),
                per_template,
                seed,
                train_texts,
                calibration_texts,
                test_texts,
                band_low,
                targets: cordon_train::calibrate::Targets::default(),
                validation_file: validation.is_file().then_some(validation),
                eval_files: eval.into_iter().filter(|p| p.is_file()).collect(),
                cache_dir: cordon_worker::cache_dir().join("embeddings"),
                threads,
            },
        ),
        Command::Eval {
            data,
            context,
            encoder,
            json,
        } => eval::eval(&config, &data, context.as_deref(), encoder, json),
        Command::User { action } => runtime()?.block_on(user::user(&config, action)),
        Command::Statements {
            action: StatementsCommand::Export { from, to, out },
        } => runtime()?.block_on(statements::export(&config, from, to, out.as_deref())),
        Command::Config { reference } => {
            if reference {
                print!("{REFERENCE}");
            } else {
                print!("{}", toml::to_string_pretty(&config)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_logging(config: &Config) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.filter))
        .context("invalid log.filter")?;
    // Colours only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
