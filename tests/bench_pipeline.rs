//! The pipeline's speed against its own limits, in one run with the same settings.
//!
//! `cargo bench -p cordon-e2e --bench pipeline` (after `scripts/setup.sh` and `cargo build
//! --release`). Settings by environment: `CORDON_BENCH_ITEMS` (default 100,000),
//! `CORDON_BENCH_FLAGGED` (share of offers the model suppresses, default 0.2),
//! `CORDON_BENCH_TEXT_CHARS` (about how long texts are, default 300).
//!
//! 1. Limits: Tantivy indexing alone (in process, same index settings), the classifier alone
//!    (`cordon classify`), the broker's raw produce and consume rates (rdkafka).
//! 2. Throughput: a worker and an indexer process (as deployed) on the broker and PostgreSQL;
//!    every item is produced first, then the pipeline drains it: items/s from the first verdict
//!    to the last one applied in the index, with progress every second.
//! 3. Suppression latency: flagged probe items produced at half the measured throughput while
//!    clean traffic flows; for each, the time from produce to the committed index (what public
//!    search reads) showing it suppressed; p50/p95/p99.
//! 4. Per-stage time (from `cordon_stage_seconds`), CPU seconds and peak memory of each process.
//!
//! Results: a table on stdout and `target/pipeline-bench.json`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{eventually, metric_sum, repo_root, Deployment};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use serde_json::{json, Value};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Texts the model suppresses and texts it allows, from the sample feed (classified offline).
fn texts(d: &Deployment) -> Result<(Vec<String>, Vec<String>)> {
    let out = d.command(&[
        "classify",
        &repo_root()
            .join("examples/sample-feed.jsonl")
            .display()
            .to_string(),
    ])?;
    let feed = std::fs::read_to_string(repo_root().join("examples/sample-feed.jsonl"))?;
    let by_id: BTreeMap<String, String> = feed
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            Some((
                v["id"].as_str()?.to_string(),
                v["text"].as_str()?.to_string(),
            ))
        })
        .collect();
    let (mut flagged, mut clean) = (Vec::new(), Vec::new());
    for line in out.lines() {
        let v: Value = serde_json::from_str(line)?;
        let Some(text) = v["id"].as_str().and_then(|id| by_id.get(id)) else {
            continue;
        };
        match v["action"].as_str() {
            Some("suppress") => flagged.push(text.clone()),
            Some("allow") => clean.push(text.clone()),
            _ => {}
        }
    }
    anyhow::ensure!(
        !flagged.is_empty() && !clean.is_empty(),
        "the sample feed has no suppressed or no allowed text"
    );
    Ok((flagged, clean))
}

/// Pads `base` with filler words to about `chars` characters, so sizes are realistic.
fn sized(base: &str, n: usize, chars: usize) -> String {
    const FILLER: [&str; 8] = [
        "channel", "update", "today", "write", "price", "city", "new", "info",
    ];
    let mut text = format!("{base} #{n}");
    let mut i = n;
    while text.len() < chars {
        text.push(' ');
        text.push_str(FILLER[i % FILLER.len()]);
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    text
}

fn item(id: &str, text: &str) -> Value {
    let now = chrono::Utc::now().to_rfc3339();
    json!({
        "id": id,
        "kind": "channel_post",
        "channel": {"id": format!("bench:{}", id.len() % 97), "subscribers": 1000},
        "text": text,
        "lang": "en",
        "published_at": now,
        "indexed_at": now,
        "version": 1
    })
}

fn producer(brokers: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

async fn produce(p: &FutureProducer, topic: &str, items: &[(String, String)]) -> Result<()> {
    // Enqueue without waiting (librdkafka batches them), then wait for the acknowledgements in
    // chunks, so the queue (1,000,000 messages) never fills.
    for chunk in items.chunks(10_000) {
        let mut pending = Vec::with_capacity(chunk.len());
        for (id, payload) in chunk {
            let record = FutureRecord::to(topic)
                .key(id.as_str())
                .payload(payload.as_str());
            pending.push(p.send_result(record).map_err(|(e, _)| e)?);
        }
        for delivery in pending {
            delivery.await?.map_err(|(e, _)| e)?;
        }
    }
    Ok(())
}

/// CPU seconds used and peak resident memory (MiB) of a process, from /proc.
fn usage(pid: u32) -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    Ok((ticks / 100.0, hwm_kb / 1024.0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = env_or("CORDON_BENCH_ITEMS", 100_000);
    let flagged_share: f64 = env_or("CORDON_BENCH_FLAGGED", 0.2);
    let chars: usize = env_or("CORDON_BENCH_TEXT_CHARS", 300);
    let d = Deployment::new("").await?;
    let (flagged, clean) = texts(&d)?;
    let every = (1.0 / flagged_share.max(1e-6)).round().max(1.0) as usize;
    let items: Vec<(String, String)> = (0..n)
        .map(|i| {
            let base = if i % every == 0 {
                &flagged[i % flagged.len()]
            } else {
                &clean[i % clean.len()]
            };
            let id = format!("bench/{i}");
            let payload = item(&id, &sized(base, i, chars)).to_string();
            (id, payload)
        })
        .collect();
    let mut report = serde_json::Map::new();
    println!(
        "Cordon pipeline bench: {n} items, {:.0} % flagged, ~{chars} chars",
        flagged_share * 100.0
    );

    // 1. Limits.
    let index_dir = tempfile::tempdir()?;
    let (mut index, _) = cordon_index::ContentIndex::open(&cordon_index::IndexSettings {
        dir: index_dir.path().to_path_buf(),
        writer_memory_bytes: 100_000_000,
        premoderation: false,
    })?;
    let started = Instant::now();
    for (_, payload) in &items {
        let item =
            cordon_domain::ContentItem::decode(Some(payload.as_bytes()), &Default::default())?;
        index.apply_content(item)?;
    }
    index.commit(&Default::default())?;
    let tantivy_rate = n as f64 / started.elapsed().as_secs_f64();
    drop(index);

    let classify_file = d.dir.path().join("classify.jsonl");
    std::fs::write(
        &classify_file,
        items
            .iter()
            .map(|(id, p)| {
                let v: Value = serde_json::from_str(p).unwrap_or_default();
                json!({"id": id, "text": v["text"]}).to_string() + "\n"
            })
            .collect::<String>(),
    )?;
    let started = Instant::now();
    d.command(&["classify", &classify_file.display().to_string()])?;
    let classifier_rate = n as f64 / started.elapsed().as_secs_f64();

    // The worker and the indexer, as deployed; topics are created by them.
    // The deployed defaults, not the harness's quick test settings.
    let defaults = [
        ("CORDON_INDEX__COMMIT_INTERVAL_MS", "250"),
        ("CORDON_LOG__FILTER", "info"),
    ];
    let worker = d.start_with_env("worker", &defaults)?;
    let indexer = d.start_with_env("indexer,api", &defaults)?;
    d.wait_ready().await?;
    let brokers = d.broker.addr();
    let kafka = producer(&brokers)?;
    let started = Instant::now();
    produce(&kafka, "cordon.content", &items).await?;
    let produce_rate = n as f64 / started.elapsed().as_secs_f64();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "bench-raw")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&["cordon.content"])?;
    let started = Instant::now();
    let mut read = 0usize;
    while read < n && started.elapsed() < Duration::from_secs(300) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            read += usize::from(m.payload().is_some());
        }
    }
    let consume_rate = read as f64 / started.elapsed().as_secs_f64();
    drop(consumer);

    // 2. Throughput: the pipeline drains what was produced (it started consuming at once).
    let verdict_offsets = |http: String| async move {
        let text = reqwest::get(format!("http://{http}/metrics"))
            .await?
            .text()
            .await?;
        Ok::<f64, anyhow::Error>(
            text.lines()
                .filter(|l| {
                    l.starts_with("cordon_index_committed_offset{")
                        && l.contains("topic=\"cordon.verdicts\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    };
    let first_verdict = eventually(Duration::from_secs(120), "the first verdict", || async {
        Ok((verdict_offsets(indexer.http()).await? > 0.0).then(Instant::now))
    })
    .await?;
    eventually(
        Duration::from_secs(3600),
        "every verdict to be applied",
        || async {
            let applied = verdict_offsets(indexer.http()).await?;
            eprint!("\r[bench] {applied:.0}/{n} verdicts applied");
            Ok((applied as usize >= n).then_some(()))
        },
    )
    .await?;
    let pipeline_secs = first_verdict.elapsed().as_secs_f64();
    let pipeline_rate = n as f64 / pipeline_secs;
    eprintln!();

    // 3. Suppression latency at half that rate: background traffic (the configured mix) at
    //    `rate`, and one flagged probe every 50 ms whose suppression is watched through the API.
    let rate = (pipeline_rate / 2.0).max(10.0);
    let admin = d.admin().await?;
    let background = {
        let kafka = kafka.clone();
        let (flagged, clean) = (flagged.clone(), clean.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut sent = 0usize;
            while started.elapsed() < Duration::from_secs(10) {
                let due = (started.elapsed().as_secs_f64() * rate) as usize;
                let batch: Vec<(String, String)> = (sent..due)
                    .map(|i| {
                        let base = if i % every == 0 {
                            &flagged[i % flagged.len()]
                        } else {
                            &clean[i % clean.len()]
                        };
                        let id = format!("load/{i}");
                        let payload = item(&id, &sized(base, n + i, chars)).to_string();
                        (id, payload)
                    })
                    .collect();
                sent = due;
                produce(&kafka, "cordon.content", &batch).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(sent)
        })
    };
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut outstanding: Vec<(String, Instant)> = Vec::new();
    let mut next_probe = Instant::now();
    let mut p = 0usize;
    while started.elapsed() < Duration::from_secs(10) || !outstanding.is_empty() {
        if started.elapsed() < Duration::from_secs(10) && Instant::now() >= next_probe {
            let id = format!("probe/{p}");
            let payload = item(&id, &sized(&flagged[p % flagged.len()], p, chars)).to_string();
            let at = Instant::now();
            produce(&kafka, "cordon.content", &[(id.clone(), payload)]).await?;
            outstanding.push((id, at));
            next_probe += Duration::from_millis(50);
            p += 1;
        }
        let mut still = Vec::new();
        for (id, at) in outstanding.drain(..) {
            let (_, state) = admin.get(&format!("/v1/items/{id}")).await?;
            if state["visibility"] == "suppressed" {
                latencies.push(at.elapsed().as_secs_f64());
            } else if at.elapsed() < Duration::from_secs(60) {
                still.push((id, at));
            }
        }
        outstanding = still;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let background_sent = background.await??;
    eprintln!("[bench] latency run: {background_sent} background items, {p} probes");
    latencies.sort_by(f64::total_cmp);

    // 4. Stages, CPU, memory.
    let mut stages = serde_json::Map::new();
    for (process, names) in [
        (
            &worker,
            &[
                "decode",
                "versions",
                "featurize",
                "infer",
                "publish",
                "queue",
            ][..],
        ),
        (&indexer, &["apply", "commit"][..]),
    ] {
        for stage in names {
            let sum = metric_sum(
                &process.http(),
                &format!("cordon_stage_seconds_sum{{stage=\"{stage}\"}}"),
            )
            .await?;
            let count = metric_sum(
                &process.http(),
                &format!("cordon_stage_seconds_count{{stage=\"{stage}\"}}"),
            )
            .await?;
            stages.insert(stage.to_string(), json!({"seconds": sum, "batches": count, "ms_per_batch": 1000.0 * sum / count.max(1.0)}));
        }
    }
    let mut processes = serde_json::Map::new();
    for (name, process) in [("worker", &worker), ("indexer+api", &indexer)] {
        let (cpu, mem) = usage(process.pid())?;
        processes.insert(
            name.into(),
            json!({"cpu_seconds": cpu, "peak_rss_mib": mem}),
        );
    }
    let slowest = [tantivy_rate, classifier_rate, consume_rate]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    report.insert("items".into(), json!(n));
    report.insert("limits_items_per_s".into(), json!({"tantivy_alone": tantivy_rate, "classifier_alone": classifier_rate, "broker_produce": produce_rate, "broker_consume": consume_rate}));
    report.insert("pipeline_items_per_s".into(), json!(pipeline_rate));
    report.insert(
        "pipeline_share_of_slowest_limit".into(),
        json!(pipeline_rate / slowest),
    );
    report.insert("suppression_latency_s".into(), json!({"rate_items_per_s": rate, "probes": latencies.len(), "probes_sent": p, "p50": percentile(&latencies, 0.5), "p95": percentile(&latencies, 0.95), "p99": percentile(&latencies, 0.99)}));
    report.insert("stages".into(), Value::Object(stages.clone()));
    report.insert("processes".into(), Value::Object(processes.clone()));

    println!("| measure | value |\n|---|---|");
    println!("| Tantivy indexing alone | {tantivy_rate:.0} items/s |");
    println!("| classifier alone (`cordon classify`) | {classifier_rate:.0} items/s |");
    println!("| broker raw produce / consume | {produce_rate:.0} / {consume_rate:.0} items/s |");
    println!("| **pipeline end to end** | **{pipeline_rate:.0} items/s** ({:.0} % of the slowest limit) |", 100.0 * pipeline_rate / slowest);
    println!("| suppression latency at {rate:.0} items/s ({} probes) | p50 {:.3} s, p95 {:.3} s, p99 {:.3} s |", latencies.len(), percentile(&latencies, 0.5), percentile(&latencies, 0.95), percentile(&latencies, 0.99));
    for (stage, v) in &stages {
        println!(
            "| stage {stage} | {:.2} ms/batch, {:.1} s total |",
            v["ms_per_batch"].as_f64().unwrap_or(0.0),
            v["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    for (name, v) in &processes {
        println!(
            "| {name} | {:.1} CPU s, peak {:.0} MiB |",
            v["cpu_seconds"].as_f64().unwrap_or(0.0),
            v["peak_rss_mib"].as_f64().unwrap_or(0.0)
        );
    }
    let out = repo_root().join("target/pipeline-bench.json");
    std::fs::create_dir_all(out.parent().context("target dir")?)?;
    std::fs::write(&out, serde_json::to_string_pretty(&Value::Object(report))?)?;
    eprintln!("[bench] results in {}", out.display());
    Ok(())
}
