//! Reading Cordon's metrics.

use anyhow::{Context, Result};

/// The sum of the samples of a process's `/metrics` (at `http`) whose line starts with `prefix`.
pub async fn metric_sum(http: &str, prefix: &str) -> Result<f64> {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// The offsets an indexer at `http` reports as committed with its index
/// (`cordon_index_committed_offset`), summed per topic.
pub async fn index_offsets(http: &str) -> Result<std::collections::BTreeMap<String, i64>> {
    let text = reqwest::get(format!("http://{}/metrics", http))
        .await?
        .text()
        .await?;
    let mut out = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with(&format!("{}{{", cordon_ops::names::INDEX_COMMITTED_OFFSET)))
    {
        let topic = line
            .split("topic=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .context("topic label")?;
        let value: i64 = line.rsplit(' ').next().context("value")?.parse()?;
        *out.entry(topic.to_string()).or_default() += value;
    }
    Ok(out)
}

/// The worker's stages in `cordon_stage_seconds`.
pub const WORKER_STAGES: [cordon_ops::Stage; 6] = [
    cordon_ops::Stage::Decode,
    cordon_ops::Stage::Versions,
    cordon_ops::Stage::Featurize,
    cordon_ops::Stage::Infer,
    cordon_ops::Stage::Publish,
    cordon_ops::Stage::Queue,
];
