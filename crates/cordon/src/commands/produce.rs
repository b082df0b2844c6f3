//! `cordon produce`: sends a JSON-lines file of content items to the content topic.

use crate::config::Config;
use anyhow::{Context, Result};
use cordon_domain::{ContentItem, DecodeLimits};
use cordon_stream::{Publisher, Record};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tracing::{error, info};

pub async fn produce(
    config: &Config,
    file: &Path,
    topic: Option<String>,
    raw: bool,
) -> Result<ExitCode> {
    let topic = topic.unwrap_or_else(|| config.kafka.content_topic.clone());
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let kafka = config.kafka.settings();
    let publisher = Publisher::new(
        &kafka,
        Duration::from_secs(config.kafka.delivery_timeout_secs),
        config.kafka.max_message_bytes,
    )?;
    let limits = DecodeLimits {
        max_message_bytes: config.worker.max_message_bytes,
        max_text_bytes: config.worker.max_text_bytes,
    };
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect();
    let mut records = Vec::with_capacity(lines.len());
    let mut rejected = 0;
    for (line_no, line) in &lines {
        let key = match ContentItem::decode(Some(line.as_bytes()), &limits) {
            Ok(item) => Some(item.id),
            Err(e) if raw => {
                info!(line = line_no, reason = %e, "sending an invalid item as asked");
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from))
            }
            Err(e) => {
                error!(line = line_no, reason = %e, "not a valid content item; not sent");
                rejected += 1;
                continue;
            }
        };
        records.push(Record {
            topic: topic.clone(),
            key,
            payload: line.as_bytes().to_vec(),
            headers: Vec::new(),
        });
    }
    let started = Instant::now();
    let mut sent = 0;
    for chunk in records.chunks(1000) {
        let refused = publisher.publish_all(chunk).await?;
        for r in &refused {
            error!(error = %r.error, bytes = chunk[r.index].payload.len(), "the broker or the client refused a line; not sent");
        }
        rejected += refused.len();
        sent += chunk.len() - refused.len();
        info!(sent, of = records.len(), topic = %topic, "producing");
    }
    info!(
        sent,
        rejected,
        seconds = started.elapsed().as_secs_f64(),
        "done"
    );
    Ok(if rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
