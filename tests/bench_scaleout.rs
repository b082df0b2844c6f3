//! Scale-out: one consumer group of one, two and three worker processes, and two indexer
//! replicas, each on the same backlog and under the same sustained traffic, on one broker and
//! one PostgreSQL.
//!
//! `cargo bench -p cordon-e2e --bench scaleout` (after `scripts/setup.sh` and `cargo build
//! --release`). Settings by environment: `CORDON_BENCH_ITEMS` (backlog, default 100,000),
//! `CORDON_BENCH_RATE` (sustained traffic, items/s, default 4,000), `CORDON_BENCH_SUSTAIN_SECS`
//! (default 20), `CORDON_BENCH_WORKERS` (the worker counts to run, default `1,2,3`), and the
//! item mix of the pipeline bench (`CORDON_BENCH_FLAGGED`, `CORDON_BENCH_TEXT_CHARS`,
//! `CORDON_BENCH_LANGS`). Topics have 6 partitions, so one, two and three workers share them
//! evenly.
//!
//! Each run gets a fresh broker and database. Run "N workers": the backlog is produced, N
//! worker processes and one indexer+API start, and the backlog's rate is items ÷ time from the
//! first record any of them consumed to the last verdict applied in the index (the pipeline
//! bench's clock; the time from there to the first verdict in the index is reported too); then traffic is offered at the
//! sustained rate, and every 500 ms the bench samples the lag of the worker group (the content
//! topic's end offsets minus the items the workers finished) and of each index replica (both
//! topics' end offsets minus the records committed to it): its peak, the lag when the traffic stopped and how long the pipeline then took to
//! catch up. Run "2 indexer replicas": two workers and two indexers (one also serving the API),
//! each replica with its own index from the same topics; the same phases, the lag of each
//! replica, and a check that both end at the same offsets.
//!
//! Results: a table on stdout and `target/scaleout-bench.json`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{
    applied_verdicts, cpu_seconds, drained, env_or, eventually, first_record, index_offsets,
    metric_sum, producer, traffic, write_report, CordonProcess, Deployment, Mix,
};
use cordon_ops::names;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use serde_json::{json, Value};

/// Partitions of every topic in these runs.
const PARTITIONS: &str = "6";

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = env_or("CORDON_BENCH_ITEMS", 100_000);
    let rate: f64 = env_or("CORDON_BENCH_RATE", 4_000.0);
    let secs: u64 = env_or("CORDON_BENCH_SUSTAIN_SECS", 20);
    let counts: Vec<usize> = env_or("CORDON_BENCH_WORKERS", "1,2,3".to_string())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    println!("Cordon scale-out bench: backlog {n} items, then {rate:.0} items/s for {secs} s");
    let mut runs = Vec::new();
    for workers in counts {
        runs.push(run(workers, 1, n, rate, secs).await?);
    }
    runs.push(run(2, 2, n, rate, secs).await?);

    println!("\n| run | first verdict after (s) | backlog items/s | peak lag under traffic (worker / index records) | lag when traffic stopped | caught up after | CPU µs per item while draining |");
    println!("|---|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {} | {:.0} | {} / {} | {} / {} | {:.1} s | {} |",
            r["run"].as_str().unwrap_or(""),
            r["first_verdict_s"],
            r["backlog_items_per_s"].as_f64().unwrap_or(f64::NAN),
            r["sustained"]["peak_worker_lag"],
            r["sustained"]["peak_index_lag"],
            r["sustained"]["worker_lag_at_stop"],
            r["sustained"]["index_lag_at_stop"],
            r["sustained"]["caught_up_after_s"]
                .as_f64()
                .unwrap_or(f64::NAN),
            r["cpu_us_per_item"],
        );
    }
    println!("\n| run | Kafka requests per 1,000 items, whole run |\n|---|---|");
    for r in &runs {
        println!(
            "| {} | {} |",
            r["run"].as_str().unwrap_or(""),
            r["requests_per_1000_items"]
        );
    }
    write_report("scaleout-bench.json", &Value::Array(runs))?;
    Ok(())
}

/// The processes of one run.
struct Run {
    workers: Vec<CordonProcess>,
    /// The indexer replicas (the first also serves the API).
    indexers: Vec<CordonProcess>,
    d: Deployment,
}

impl Run {
    /// Items each worker process finished (published and durable).
    async fn finished_per_worker(&self) -> Result<Vec<f64>> {
        let mut done = Vec::new();
        for w in &self.workers {
            done.push(
                metric_sum(&w.http(), &format!("{}_count", names::END_TO_END_SECONDS)).await?,
            );
        }
        Ok(done)
    }

    /// Items the worker group finished, summed over its processes.
    async fn finished(&self) -> Result<f64> {
        Ok(self.finished_per_worker().await?.iter().sum())
    }

    /// Records (content and verdicts) each replica has committed to its index.
    async fn committed(&self) -> Result<Vec<f64>> {
        let mut out = Vec::new();
        for i in &self.indexers {
            out.push(index_offsets(&i.http()).await?.values().sum::<i64>() as f64);
        }
        Ok(out)
    }

    /// Requests each process's Kafka clients sent over the whole run, per 1,000 of its `items`,
    /// by client and request type (`cordon_kafka_requests_total`, once the statistics of the
    /// end of the run are in).
    async fn requests<'a>(&'a self, items: f64) -> Result<Value> {
        tokio::time::sleep(cordon_stream::STATISTICS_INTERVAL + Duration::from_secs(2)).await;
        let mut out = serde_json::Map::new();
        let numbered = |role, processes: &'a [CordonProcess]| {
            processes
                .iter()
                .enumerate()
                .map(move |(k, p)| (role, k + 1, p))
        };
        for (role, k, process) in
            numbered("worker", &self.workers).chain(numbered("indexer", &self.indexers))
        {
            let mut by_type = serde_json::Map::new();
            for (client, request) in [
                ("consumer", "Fetch"),
                ("producer", "Produce"),
                ("consumer", "OffsetCommit"),
                ("consumer", "Heartbeat"),
            ] {
                let prefix = format!(
                    "{}{{client=\"{client}\",request=\"{request}\",role=\"{role}\"}}",
                    names::KAFKA_REQUESTS_TOTAL
                );
                let sent = metric_sum(&process.http(), &prefix).await?;
                if sent > 0.0 {
                    by_type.insert(
                        format!("{client} {request}"),
                        json!((sent * 1000.0 / items * 100.0).round() / 100.0),
                    );
                }
            }
            let all = metric_sum(&process.http(), names::KAFKA_REQUESTS_TOTAL).await?;
            by_type.insert(
                "all".into(),
                json!((all * 1000.0 / items * 100.0).round() / 100.0),
            );
            out.insert(format!("{role} {k}"), Value::Object(by_type));
        }
        Ok(Value::Object(out))
    }

    fn cpu(&self) -> Result<Vec<(String, f64)>> {
        let mut out = Vec::new();
        for (k, w) in self.workers.iter().enumerate() {
            out.push((format!("worker {}", k + 1), cpu_seconds(w.pid())?));
        }
        for (k, i) in self.indexers.iter().enumerate() {
            out.push((format!("indexer {}", k + 1), cpu_seconds(i.pid())?));
        }
        out.push((
            "broker".into(),
            cpu_seconds(self.d.broker.pid().context("broker pid")?)?,
        ));
        Ok(out)
    }
}

/// One run: `workers` worker processes and `replicas` indexers on a fresh deployment.
async fn run(workers: usize, replicas: usize, n: usize, rate: f64, secs: u64) -> Result<Value> {
    let name = if replicas == 1 {
        format!("{workers} worker{}", if workers == 1 { "" } else { "s" })
    } else {
        format!("{workers} workers, {replicas} indexer replicas")
    };
    eprintln!("[bench] {name}");
    let d = Deployment::new("").await?;
    let mix = Mix::from_env(&d)?;
    let env = [
        ("CORDON_KAFKA__PARTITIONS", PARTITIONS),
        ("CORDON_LOG__FILTER", "info"),
    ];
    // Started once to create the topics, then stopped, so the backlog waits for every process.
    let mut first = d.start_with_env("worker", &env)?;
    let mut api = d.start_with_env("indexer,api", &env)?;
    d.wait_ready().await?;
    first.terminate(Duration::from_secs(30))?;
    api.terminate(Duration::from_secs(30))?;

    let kafka = producer(&d.broker.addr())?;
    let items: Vec<(String, String)> = (0..n).map(|i| mix.item("backlog", i)).collect();
    cordon_e2e::produce(&kafka, "cordon.content", &items).await?;
    drop(items);

    let mut run = Run {
        workers: Vec::new(),
        indexers: Vec::new(),
        d,
    };
    for _ in 0..workers {
        run.workers.push(run.d.start_with_env("worker", &env)?);
    }
    run.indexers
        .push(run.d.start_with_env("indexer,api", &env)?);
    let replica_dir = run.d.dir.path().join("replica-index");
    let replica_dir = replica_dir.display().to_string();
    for _ in 1..replicas {
        let mut with_dir = env.to_vec();
        with_dir.push(("CORDON_INDEX__DIR", replica_dir.as_str()));
        run.indexers
            .push(run.d.start_with_env("indexer", &with_dir)?);
    }
    let every: Vec<String> = run
        .workers
        .iter()
        .chain(&run.indexers)
        .map(CordonProcess::http)
        .collect();
    let started = first_record(&every).await?;
    let cpu_before = run.cpu()?;
    let first = run.indexers[0].http();
    eventually(Duration::from_secs(120), "the first verdict", || async {
        Ok((applied_verdicts(&first).await? > 0.0).then_some(()))
    })
    .await?;
    let first_verdict = started.elapsed().as_secs_f64();
    for i in &run.indexers {
        drained(&i.http(), n).await?;
    }
    let backlog_secs = started.elapsed().as_secs_f64();
    let cpu_after = run.cpu()?;
    let per_item: serde_json::Map<String, Value> = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|((name, b), (_, a))| (name.clone(), json!(((a - b) * 1e6 / n as f64).round())))
        .collect();
    let spread = run.finished_per_worker().await?;
    eprintln!(
        "[bench] {name}: first verdict after {first_verdict:.1} s, backlog {:.0} items/s, items per worker {spread:?}",
        n as f64 / backlog_secs
    );

    let sustained = sustained(&run, &kafka, &mix, n, rate, secs).await?;
    let offsets: Vec<_> = {
        let mut all = Vec::new();
        for i in &run.indexers {
            all.push(index_offsets(&i.http()).await?);
        }
        all
    };
    anyhow::ensure!(
        offsets.windows(2).all(|w| w[0] == w[1]),
        "the replicas ended at different offsets: {offsets:?}"
    );
    let requests = run
        .requests(sustained["items"].as_f64().unwrap_or(f64::NAN))
        .await?;
    for p in run.workers.iter_mut().chain(run.indexers.iter_mut()) {
        p.terminate(Duration::from_secs(30))?;
    }
    Ok(json!({
        "run": name,
        "workers": workers,
        "indexer_replicas": replicas,
        "backlog_items": n,
        "first_verdict_s": (first_verdict * 10.0).round() / 10.0,
        "backlog_items_per_s": (n as f64 / backlog_secs).round(),
        "items_per_worker": spread,
        "cpu_us_per_item": per_item,
        "sustained": sustained,
        "requests_per_1000_items": requests,
        // One verdict per item unless a batch was published twice (a rebalance re-delivers the
        // batches whose offsets were not stored yet; applying them again changes nothing).
        "verdict_records": offsets[0].get("cordon.verdicts"),
    }))
}

/// The end offsets of the content and verdicts topics, summed over their partitions.
struct Ends {
    content: i64,
    verdicts: i64,
}

fn ends(consumer: &BaseConsumer) -> Result<Ends> {
    let end = |topic: &str| -> Result<i64> {
        let mut sum = 0;
        for p in 0..PARTITIONS.parse::<i32>()? {
            sum += consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))?
                .1;
        }
        Ok(sum)
    };
    Ok(Ends {
        content: end("cordon.content")?,
        verdicts: end("cordon.verdicts")?,
    })
}

/// Offers `rate` items/s for `secs` s after the `backlog` items, samples the lag every 500 ms,
/// and waits until every replica has committed every record of both topics.
async fn sustained(
    run: &Run,
    kafka: &FutureProducer,
    mix: &Mix,
    backlog: usize,
    rate: f64,
    secs: u64,
) -> Result<Value> {
    let watermarks: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", run.d.broker.addr())
        .create()?;
    let producing = {
        let (kafka, mix) = (kafka.clone(), mix.clone());
        tokio::spawn(
            async move { traffic(&kafka, "cordon.content", &mix, "traffic", rate, secs).await },
        )
    };
    let (mut peak_worker, mut peak_index) = (0.0f64, vec![0.0f64; run.indexers.len()]);
    let lags = |ends: &Ends| {
        let (content, verdicts) = (ends.content as f64, ends.verdicts as f64);
        async move {
            let worker = content - run.finished().await?;
            let index: Vec<f64> = run
                .committed()
                .await?
                .iter()
                .map(|done| content + verdicts - done)
                .collect();
            anyhow::Ok((worker, index))
        }
    };
    while !producing.is_finished() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (worker, index) = lags(&ends(&watermarks)?).await?;
        peak_worker = peak_worker.max(worker);
        for (peak, lag) in peak_index.iter_mut().zip(index) {
            *peak = peak.max(lag);
        }
    }
    let total = backlog + producing.await??;
    let (worker_at_stop, index_at_stop) = lags(&ends(&watermarks)?).await?;
    let stopped = Instant::now();
    // Caught up: every replica has committed every record of both topics.
    eventually(
        Duration::from_secs(600),
        "every replica to catch up",
        || async {
            let end = ends(&watermarks)?;
            let done = run.committed().await?;
            Ok(done
                .iter()
                .all(|d| *d >= (end.content + end.verdicts) as f64)
                .then_some(()))
        },
    )
    .await?;
    let caught_up = stopped.elapsed().as_secs_f64();
    Ok(json!({
        "offered_items_per_s": rate,
        "seconds": secs,
        "peak_worker_lag": peak_worker.round(),
        "peak_index_lag": peak_index.iter().map(|l| l.round()).collect::<Vec<_>>(),
        "worker_lag_at_stop": worker_at_stop.round(),
        "index_lag_at_stop": index_at_stop.iter().map(|l| l.round()).collect::<Vec<_>>(),
        "caught_up_after_s": (caught_up * 10.0).round() / 10.0,
        "items": total,
    }))
}
