//! `cordon statements export`: the statements of reasons of a period as JSON lines in the
//! Transparency Database's schema (what the submitter sends, for an archive, an audit or a
//! submission by other means).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use tracing::info;

use crate::config::Config;

/// Statements read per round trip.
const PAGE: i64 = 1000;

/// Writes the statements applied on the days `from` to `to` (UTC, both included), oldest
/// first, one JSON object per line, to `out` or standard output; logs its progress.
pub async fn export(
    config: &Config,
    from: NaiveDate,
    to: NaiveDate,
    out: Option<&Path>,
) -> Result<ExitCode> {
    let (start, end) = cordon_review::days(from, to).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let store = super::connect_store(config).await?;
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let (mut after, mut written) = (0, 0u64);
    loop {
        let page = store.statements_between(start, end, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for statement in &page {
            serde_json::to_writer(&mut sink, &statement.tdb)?;
            sink.write_all(b"\n")?;
        }
        written += page.len() as u64;
        info!(written, "exporting statements");
    }
    sink.flush().context("writing the statements")?;
    info!(written, %from, %to, "statements exported");
    Ok(ExitCode::SUCCESS)
}
