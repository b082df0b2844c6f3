//! One module per command of the command line (`cordon run` is the composition root in
//! `run.rs`).

pub mod classify;
pub mod eval;
pub mod produce;
pub mod statements;
pub mod train;
pub mod user;

use std::time::Duration;

use anyhow::{Context, Result};
use cordon_review::ReviewStore;

use crate::config::Config;

/// Connects a command to the review database (one connection; migrations applied).
pub async fn connect_store(config: &Config) -> Result<ReviewStore> {
    let db = &config.database;
    ReviewStore::connect(
        &db.connect_url()?,
        1,
        Duration::from_secs(db.acquire_timeout_secs),
    )
    .await
    .with_context(|| {
        format!(
            "connecting to the review database at {} (check database.url, its sslmode, and \
             database.ca_file)",
            db.url
        )
    })
}
