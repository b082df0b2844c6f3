//! Reading Cordon's metrics.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::eventually;

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

/// Verdicts applied and committed in the index (the sum of the verdicts topic's offsets).
pub async fn applied_verdicts(http: &str) -> Result<f64> {
    Ok(index_offsets(http)
        .await?
        .get("cordon.verdicts")
        .copied()
        .unwrap_or(0) as f64)
}

/// Waits until `total` verdicts are applied, showing progress.
pub async fn drained(http: &str, total: usize) -> Result<()> {
    eventually(
        Duration::from_secs(3600),
        "every verdict to be applied",
        || async {
            let applied = applied_verdicts(http).await?;
            eprint!("\r[bench] {applied:.0}/{total} verdicts applied");
            Ok((applied as usize >= total).then_some(()))
        },
    )
    .await?;
    eprintln!();
    Ok(())
}

/// Waits until one of the processes at `http` (workers, indexers) has received its first
/// record (`cordon_consumed_total` or `cordon_indexed_total` above zero; polled every 100 ms)
/// and returns when: where a backlog's clock starts, as for any consumer.
pub async fn first_record(http: &[String]) -> Result<std::time::Instant> {
    eventually(
        Duration::from_secs(120),
        "the first record consumed",
        || async {
            for process in http {
                for name in [
                    cordon_ops::names::CONSUMED_TOTAL,
                    cordon_ops::names::INDEXED_TOTAL,
                ] {
                    if metric_sum(process, name).await.unwrap_or(0.0) > 0.0 {
                        return Ok(Some(std::time::Instant::now()));
                    }
                }
            }
            Ok(None)
        },
    )
    .await
}
