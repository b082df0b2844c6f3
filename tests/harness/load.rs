//! Test traffic for benchmarks: realistic item mixes, a producer, and process CPU and memory
//! from /proc.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

use crate::{repo_root, Deployment};

/// The environment variable `name` parsed, or `default` when it is unset or does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A text and its language.
#[derive(Clone)]
pub struct Text {
    /// The text.
    pub text: String,
    /// Its language.
    pub lang: String,
}

/// Texts the model suppresses and texts it allows: the hand-written evaluation set (12
/// languages, offers with evasions and hard negatives) and the sample feed, limited to the
/// languages in `langs` (all when empty), classified offline at the size they are sent.
pub fn texts(d: &Deployment, langs: &[String], chars: usize) -> Result<(Vec<Text>, Vec<Text>)> {
    let mut all = Vec::new();
    for file in ["models/eval/heldout.jsonl", "examples/sample-feed.jsonl"] {
        for line in std::fs::read_to_string(repo_root().join(file))?.lines() {
            let v: Value = serde_json::from_str(line)?;
            let (Some(text), lang) = (v["text"].as_str(), v["lang"].as_str().unwrap_or("en"))
            else {
                continue;
            };
            if langs.is_empty() || langs.iter().any(|l| l == lang) {
                all.push(Text {
                    text: text.to_string(),
                    lang: lang.to_string(),
                });
            }
        }
    }
    let input = d.dir.path().join("texts.jsonl");
    std::fs::write(
        &input,
        all.iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"id": i.to_string(), "text": sized(&t.text, 0, chars)}).to_string() + "\n"
            })
            .collect::<String>(),
    )?;
    let out = d.command(&["classify", &input.display().to_string()])?;
    let (mut flagged, mut clean) = (Vec::new(), Vec::new());
    for line in out.lines() {
        let v: Value = serde_json::from_str(line)?;
        let Some(text) = v["id"]
            .as_str()
            .and_then(|id| all.get(id.parse::<usize>().ok()?))
        else {
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
        "no suppressed or no allowed text in the languages {langs:?}"
    );
    Ok((flagged, clean))
}

/// Repeats `base` to about `chars` characters (the language stays the same), so sizes are
/// realistic; `#n` keeps every text distinct.
pub fn sized(base: &str, n: usize, chars: usize) -> String {
    let mut text = format!("{base} #{n}");
    while text.len() < chars {
        text.push(' ');
        text.push_str(base);
    }
    text
}

/// A content item (version 1, published and indexed now) as JSON.
pub fn item(id: &str, text: &str, lang: &str) -> Value {
    let now = chrono::Utc::now().to_rfc3339();
    json!({
        "id": id,
        "kind": "channel_post",
        "channel": {"id": format!("bench:{}", id.len() % 97), "subscribers": 1000},
        "text": text,
        "lang": lang,
        "published_at": now,
        "indexed_at": now,
        "version": 1
    })
}

/// A producer for test traffic: 5 ms linger and room for a million queued records.
pub fn producer(brokers: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

/// Sends `(key, payload)` records to `topic` and waits until the broker acknowledged all.
pub async fn produce(p: &FutureProducer, topic: &str, items: &[(String, String)]) -> Result<()> {
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

/// CPU seconds (user + system) a process has used, from /proc.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// A memory figure of a process in MiB from /proc: `VmRSS` (resident now) or `VmHWM` (peak).
pub fn memory_mib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .with_context(|| format!("{field} of process {pid}"))?;
    Ok(kb / 1024.0)
}

/// What traffic is made of.
#[derive(Clone)]
pub struct Mix {
    /// Texts the model suppresses.
    pub flagged: Vec<Text>,
    /// Texts it allows.
    pub clean: Vec<Text>,
    /// Every how many items one is flagged.
    pub every: usize,
    /// About how many characters each text has.
    pub chars: usize,
}

impl Mix {
    /// The mix the environment asks for: `CORDON_BENCH_FLAGGED` (share of offers the model
    /// suppresses, default 0.2), `CORDON_BENCH_TEXT_CHARS` (about how long texts are, default
    /// 300), `CORDON_BENCH_LANGS` (comma-separated languages, default all twelve of the
    /// evaluation set).
    pub fn from_env(d: &Deployment) -> Result<Mix> {
        let flagged_share: f64 = env_or("CORDON_BENCH_FLAGGED", 0.2);
        let chars: usize = env_or("CORDON_BENCH_TEXT_CHARS", 300);
        let langs: Vec<String> = env_or("CORDON_BENCH_LANGS", String::new())
            .split(',')
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        let (flagged, clean) = texts(d, &langs, chars)?;
        Ok(Mix {
            flagged,
            clean,
            every: (1.0 / flagged_share.max(1e-6)).round().max(1.0) as usize,
            chars,
        })
    }

    /// Item `i` of the mix: its id `prefix/i` and its JSON.
    pub fn item(&self, prefix: &str, i: usize) -> (String, String) {
        let base = if i.is_multiple_of(self.every) {
            &self.flagged[i % self.flagged.len()]
        } else {
            &self.clean[i % self.clean.len()]
        };
        let id = format!("{prefix}/{i}");
        let payload = item(&id, &sized(&base.text, i, self.chars), &base.lang).to_string();
        (id, payload)
    }
}

/// Produces `rate` items/s of `mix` for `secs` seconds (ids `prefix/N`); returns how many.
pub async fn traffic(
    kafka: &FutureProducer,
    topic: &str,
    mix: &Mix,
    prefix: &str,
    rate: f64,
    secs: u64,
) -> Result<usize> {
    let started = Instant::now();
    let mut sent = 0usize;
    while started.elapsed() < Duration::from_secs(secs) {
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        let batch: Vec<(String, String)> = (sent..due).map(|i| mix.item(prefix, i)).collect();
        sent = due;
        produce(kafka, topic, &batch).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(sent)
}

/// Writes a benchmark's results as JSON to `target/<file>` in the repository and says where.
pub fn write_report(file: &str, report: &Value) -> Result<()> {
    let out = repo_root().join("target").join(file);
    std::fs::create_dir_all(out.parent().context("target dir")?)?;
    std::fs::write(&out, serde_json::to_string_pretty(report)?)?;
    eprintln!("[bench] results in {}", out.display());
    Ok(())
}
