//! The same job written the obvious way, for the pipeline bench to compare Cordon with: one
//! process, one loop — a group consumer on the content topic, JSON decoding, the same trained
//! classifier and policy, a verdict per item on a topic of its own, Tantivy documents carrying
//! the item's visibility, and every 100 ms an index commit, a producer flush and an offset
//! commit (so a crash loses nothing it reported). No dead letters, no version check, no review
//! queue, no explanations, no second topic into the index: what a first version would do.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_classifier::{init_runtime, Classifier};
use cordon_domain::Action;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message};
use serde_json::{json, Value};
use tantivy::schema::{Schema, STORED, STRING, TEXT};
use tantivy::{doc, Index};

/// What the obvious pipeline measured on a backlog.
pub struct Obvious {
    /// Items indexed and committed.
    pub items: usize,
    /// Seconds from the first record consumed to the commit that covered the last item.
    pub seconds: f64,
}

/// Drains `items` items of `topic` from its beginning, as described above.
pub fn drain(brokers: &str, topic: &str, model_dir: &Path, items: usize) -> Result<Obvious> {
    let library = std::env::var("ORT_DYLIB_PATH").context("ORT_DYLIB_PATH (scripts/env.sh)")?;
    init_runtime(Path::new(&library))?;
    let classifier = Classifier::load(model_dir, 1, 1)?;
    let policy = classifier.card().policy.clone();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-obvious")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set(
            "fetch.wait.max.ms",
            cordon_e2e::local_fetch_wait_max_ms().to_string(),
        )
        .create()?;
    consumer.subscribe(&[topic])?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()?;

    let dir = tempfile::tempdir()?;
    let mut schema = Schema::builder();
    let id = schema.add_text_field("id", STRING | STORED);
    let text = schema.add_text_field("text", TEXT);
    let visibility = schema.add_text_field("visibility", STRING);
    let index = Index::create_in_dir(dir.path(), schema.build())?;
    let mut writer = index.writer_with_num_threads(1, 64_000_000)?;

    let mut started = None;
    let mut done = 0usize;
    let mut pending = 0usize;
    let mut last_commit = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(900);
    while done < items && Instant::now() < deadline {
        let mut batch = Vec::with_capacity(256);
        while batch.len() < 256 {
            match consumer.poll(Duration::from_millis(if batch.is_empty() {
                100
            } else {
                0
            })) {
                Some(Ok(m)) => {
                    started.get_or_insert_with(Instant::now);
                    let item: Value =
                        serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
                    batch.push(item);
                }
                Some(Err(e)) => return Err(e.into()),
                None => break,
            }
        }
        let texts: Vec<&str> = batch
            .iter()
            .map(|i| i["text"].as_str().unwrap_or(""))
            .collect();
        let scores = classifier.score(&texts)?;
        for (item, scores) in batch.iter().zip(&scores) {
            let item_id = item["id"].as_str().unwrap_or("");
            let decision = policy.decide(scores);
            let verdict = json!({"item_id": item_id, "action": decision.action.as_str()});
            let payload = verdict.to_string();
            while let Err((e, _)) = producer.send(
                BaseRecord::to("obvious.verdicts")
                    .key(item_id)
                    .payload(&payload),
            ) {
                anyhow::ensure!(
                    e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    "producing a verdict: {e}"
                );
                producer.poll(Duration::from_millis(10));
            }
            let shown = if decision.action == Action::Suppress {
                "suppressed"
            } else {
                "visible"
            };
            writer.add_document(doc!(
                id => item_id,
                text => item["text"].as_str().unwrap_or(""),
                visibility => shown,
            ))?;
        }
        producer.poll(Duration::ZERO);
        pending += batch.len();
        if pending > 0 && (last_commit.elapsed() >= Duration::from_millis(100) || batch.is_empty())
        {
            writer.commit()?;
            producer.flush(Duration::from_secs(30))?;
            consumer.commit_consumer_state(CommitMode::Sync)?;
            done += pending;
            pending = 0;
            last_commit = Instant::now();
        }
    }
    anyhow::ensure!(
        done >= items,
        "the obvious pipeline indexed {done} of {items} items"
    );
    Ok(Obvious {
        items: done,
        seconds: started.map_or(f64::NAN, |s| s.elapsed().as_secs_f64()),
    })
}
