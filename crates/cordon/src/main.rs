//! `cordon`: keeps illegal-goods offers out of public search.
//!
//! See `cordon --help`, README.md and docs/ARCHITECTURE.md.

mod api;
mod cli;
mod config;
mod indexer;
mod metrics;
mod retry;
mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Runs the service: worker, indexer and API roles, in one process or split.
    Run {
        /// Comma-separated roles: worker, indexer, api, or all.
        #[arg(long, default_value = "all")]
        role: String,
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
        #[arg(long, default_value_t = 40)]
        per_template: usize,
        /// Seed of generation and training.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Training passes.
        #[arg(long, default_value_t = 8)]
        epochs: usize,
    },
    /// Prints the effective configuration, or with --reference every option documented.
    Config {
        /// Print the documented reference instead of the effective values.
        #[arg(long)]
        reference: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
