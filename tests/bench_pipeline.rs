//! The pipeline's speed against its own limits, in one run with the same settings.
//!
//! `cargo bench -p cordon-e2e --bench pipeline` (after `scripts/setup.sh` and `cargo build
//! --release`). Settings by environment: `CORDON_BENCH_ITEMS` (default 100,000),
//! `CORDON_BENCH_FLAGGED` (share of offers the model suppresses, default 0.2),
//! `CORDON_BENCH_TEXT_CHARS` (about how long texts are, default 300), `CORDON_BENCH_LANGS`
//! (comma-separated languages of the texts, default all twelve of the evaluation set),
//! `CORDON_BENCH_COMMIT_MS` (the indexer's commit interval, default 100 as deployed),
//! `CORDON_BENCH_CONFIG` (TOML
//! appended to the deployment's config, to try settings), `CORDON_BENCH_BROKER=mock`
//! (librdkafka's mock cluster instead of tansu: a broker that is not the ceiling, in memory, at
//! most 5 MB per partition — give it enough with `CORDON_MOCK_PARTITIONS`, e.g. 32).
//!
//! 1. Limits: Tantivy indexing alone (in process, same index settings), the classifier alone
//!    (`cordon classify`), the broker's raw produce and consume rates (rdkafka).
//! 2. Backlog: a worker and an indexer process (as deployed) on the broker and PostgreSQL drain
//!    every item produced before they started: items/s from the first record either consumed
//!    to the last verdict applied in the index (the obvious pipeline's clock runs the same way), with progress every second.
//!    Then the index is rebuilt: a fresh indexer alone drains those records (content and
//!    verdicts), once committing every `commit_interval_ms` throughout and once with the
//!    adaptive policy (`behind_commit_interval_ms` while behind); items/s and CPU µs per item.
//! 3. Sustained: traffic offered at `CORDON_BENCH_RATE` items/s (default 20,000) for
//!    `CORDON_BENCH_SUSTAIN_SECS` (default 20) while the pipeline runs; the rate it kept up with
//!    and the backlog it had left when the traffic stopped.
//! 4. Suppression latency: flagged probe items produced every 50 ms while traffic flows at half
//!    the sustained rate; for each, the time from produce to the committed index (what public
//!    search reads) showing it suppressed; p50/p95/p99, and split at the verdict's
//!    `decided_at` (worker side, index side). `CORDON_BENCH_LATENCY_RATE` fixes the rate.
//! 5. Memory over time (`CORDON_BENCH_SOAK_SECS`, default 0 = skipped; 600 for the target): the
//!    latency phase's traffic for that long, resident memory of every process every 10 s.
//! 6. Idle: no traffic for `CORDON_BENCH_IDLE_SECS` (default 20), the CPU each process uses with
//!    the local broker's short fetch wait, then again after restarting Cordon with the default.
//!
//! Every phase reports per-stage time (from `cordon_stage_seconds`), the CPU of each process in
//! cores and in µs per item; the end, peak memory.
//!
//! Results: a table on stdout and `target/pipeline-bench.json`.

mod bench_obvious;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{
    applied_verdicts, cpu_seconds, drained, env_or, eventually, first_record, index_offsets, item,
    local_fetch_wait_max_ms, memory_mib, metric_sum, produce, producer, repo_root, sized, traffic,
    write_report, CordonProcess, Deployment, Mix, WORKER_STAGES,
};
use cordon_ops::{names, Stage};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use serde_json::{json, Value};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// Every topic this bench and Cordon use, which the mock broker creates up front.
const MOCK_TOPICS: [&str; 9] = [
    "cordon.content",
    "cordon.verdicts",
    "cordon.content.dlq",
    "cordon.reports",
    "cordon.report-outcomes",
    "cordon.context",
    "obvious.verdicts",
    "hollow.content",
    "hollow.verdicts",
];

/// Creates the topics on a broker that takes admin requests (the mock broker made them).
async fn create(
    broker: &cordon_e2e::Broker,
    settings: &cordon_stream::KafkaSettings,
    specs: &[cordon_stream::TopicSpec],
) -> Result<()> {
    if !broker.mock {
        cordon_stream::ensure_topics(settings, specs).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = env_or("CORDON_BENCH_ITEMS", 100_000);
    let extra: String = env_or("CORDON_BENCH_CONFIG", String::new());
    // `CORDON_BENCH_BROKER=mock`: librdkafka's mock cluster instead of tansu, to see what Cordon
    // and the obvious pipeline cost when the broker is not the ceiling.
    let d = if env_or("CORDON_BENCH_BROKER", String::new()) == "mock" {
        let broker =
            cordon_e2e::Broker::mock(env!("CARGO_BIN_EXE_cordon-mock-broker"), &MOCK_TOPICS)?;
        Deployment::on(broker, &extra).await?
    } else {
        Deployment::new(&extra).await?
    };
    let mix = Mix::from_env(&d)?;
    let (flagged, chars) = (&mix.flagged, mix.chars);
    let items: Vec<(String, String)> = (0..n).map(|i| mix.item("bench", i)).collect();
    let mut report = serde_json::Map::new();
    println!(
        "Cordon pipeline bench: {n} items, {:.0} % flagged, ~{chars} chars",
        100.0 / mix.every as f64
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

    let brokers = d.broker.addr();
    // The worker and the indexer, as deployed. They start once to create the topics and stop, so
    // the broker's raw rates are measured with nothing else running.
    let commit_ms: String = env_or("CORDON_BENCH_COMMIT_MS", "100".to_string());
    let defaults = [
        ("CORDON_INDEX__COMMIT_INTERVAL_MS", commit_ms.as_str()),
        ("CORDON_LOG__FILTER", "info"),
    ];
    let mut worker = d.start_with_env("worker", &defaults)?;
    let mut indexer = d.start_with_env("indexer,api", &defaults)?;
    if let Err(e) = d.wait_ready().await {
        anyhow::bail!("{e:#}\nindexer log:\n{}", indexer.log());
    }
    worker.terminate(Duration::from_secs(30))?;
    indexer.terminate(Duration::from_secs(30))?;
    let kafka = producer(&brokers)?;
    let started = Instant::now();
    produce(&kafka, "cordon.content", &items).await?;
    let produce_rate = n as f64 / started.elapsed().as_secs_f64();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "bench-raw")
        // The fetch settings Cordon's own consumers use.
        .set("fetch.wait.max.ms", local_fetch_wait_max_ms().to_string())
        .set(
            "max.partition.fetch.bytes",
            cordon_stream::MAX_PARTITION_FETCH_BYTES,
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&["cordon.content"])?;
    let mut started = None;
    let mut read = 0usize;
    let deadline = Instant::now() + Duration::from_secs(300);
    while read < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            started.get_or_insert_with(Instant::now);
            read += usize::from(m.payload().is_some());
        }
    }
    let consume_rate = read as f64 / started.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
    drop(consumer);
    eprintln!("[bench] broker alone: produce {produce_rate:.0}/s, consume {consume_rate:.0}/s");

    // The broker with the pipeline's record flow and no processing: the ceiling of any pipeline
    // of this shape on this broker.
    let offered: f64 = env_or("CORDON_BENCH_RATE", 20_000.0);
    let sustain_secs: u64 = env_or("CORDON_BENCH_SUSTAIN_SECS", 20);
    let hollow_rate =
        hollow_pipeline(&d.broker, &brokers, &kafka, &mix, offered, sustain_secs).await?;
    eprintln!("[bench] hollow pipeline (broker only) kept up with {hollow_rate:.0} items/s");

    // The same job written the obvious way, on the same backlog (its own consumer group).
    create(
        &d.broker,
        &cordon_stream::KafkaSettings {
            brokers: brokers.clone(),
            ..Default::default()
        },
        &[cordon_stream::TopicSpec {
            name: "obvious.verdicts".into(),
            partitions: 4,
            replication_factor: 1,
            min_insync_replicas: 1,
            compacted: false,
        }],
    )
    .await?;
    let cpu_before = cpu_seconds(std::process::id())?;
    let obvious = {
        let (brokers, model) = (brokers.clone(), repo_root().join("models/cordon-linear"));
        tokio::task::spawn_blocking(move || {
            bench_obvious::drain(&brokers, "cordon.content", &model, n)
        })
        .await??
    };
    let obvious_cpu = cpu_seconds(std::process::id())? - cpu_before;
    let obvious_rate = obvious.items as f64 / obvious.seconds;
    let obvious_us = obvious_cpu * 1e6 / n as f64;
    eprintln!(
        "[bench] the obvious pipeline drained the backlog at {obvious_rate:.0} items/s, \
         {obvious_us:.0} CPU µs per item"
    );

    worker.restart()?;
    indexer.restart()?;
    let (pids, http) = watched(&d, &worker, &indexer)?;
    // 2. Backlog: the pipeline drains what was produced before it started.
    // The clock starts at the first record consumed, as the obvious pipeline's does.
    let first = first_record(&http).await?;
    let before = Snapshot::take(&pids, &http).await?;
    drained(&indexer.http(), n).await?;
    let backlog_secs = first.elapsed().as_secs_f64();
    let backlog_rate = n as f64 / backlog_secs;
    let backlog = Snapshot::take(&pids, &http).await?.since(&before, n);
    eprintln!("[bench] backlog of {n} drained at {backlog_rate:.0} items/s");

    // 2b. Rebuilding an index: a fresh indexer drains the backlog's content and verdicts alone
    // (the broker's record flow is the same), once committing at the short interval throughout
    // (the policy before adaptive commits) and once with the adaptive policy as configured.
    let target: i64 = index_offsets(&indexer.http()).await?.values().sum();
    let mut rebuild = serde_json::Map::new();
    for (policy, behind_ms) in [("fixed", Some(commit_ms.as_str())), ("adaptive", None)] {
        let dir = d.dir.path().join(format!("rebuild-{policy}"));
        let dir = dir.display().to_string();
        let mut env = vec![
            defaults[0],
            defaults[1],
            ("CORDON_INDEX__DIR", dir.as_str()),
        ];
        // The adaptive policy as deployed; the fixed one commits at the short interval always.
        env.extend(behind_ms.map(|ms| ("CORDON_INDEX__BEHIND_COMMIT_INTERVAL_MS", ms)));
        let mut rebuilding = d.start_with_env("indexer", &env)?;
        let started = Instant::now();
        eventually(Duration::from_secs(900), "the rebuilt index", || async {
            let at: i64 = index_offsets(&rebuilding.http())
                .await
                .unwrap_or_default()
                .values()
                .sum();
            Ok((at >= target).then_some(()))
        })
        .await?;
        let secs = started.elapsed().as_secs_f64();
        let (rate, us) = (
            n as f64 / secs,
            cpu_seconds(rebuilding.pid())? * 1e6 / n as f64,
        );
        rebuilding.terminate(Duration::from_secs(30))?;
        eprintln!(
            "[bench] index rebuilt ({policy} commits) from {target} records in {secs:.1} s: \
             {rate:.0} items/s, {us:.0} CPU µs per item"
        );
        rebuild.insert(
            policy.into(),
            json!({"behind_commit_interval_ms": behind_ms.unwrap_or("default"), "seconds": secs, "items_per_s": rate, "cpu_us_per_item": us}),
        );
    }

    // 3. Sustained: traffic at the offered rate while the pipeline runs.
    let before = Snapshot::take(&pids, &http).await?;
    let started = Instant::now();
    let sent = traffic(
        &kafka,
        "cordon.content",
        &mix,
        "sustained",
        offered,
        sustain_secs,
    )
    .await?;
    let traffic_secs = started.elapsed().as_secs_f64();
    let left = n as f64 + sent as f64 - applied_verdicts(&indexer.http()).await?;
    drained(&indexer.http(), n + sent).await?;
    let sustained_rate = sent as f64 / started.elapsed().as_secs_f64();
    let sustained = Snapshot::take(&pids, &http).await?.since(&before, sent);
    eprintln!(
        "[bench] offered {:.0} items/s for {traffic_secs:.0} s; the pipeline kept up with \
         {sustained_rate:.0} items/s ({left:.0} items left when the traffic stopped)",
        sent as f64 / traffic_secs
    );

    // 4. Suppression latency at half the sustained rate.
    let rate = match std::env::var("CORDON_BENCH_LATENCY_RATE") {
        Ok(r) => r.parse().context("CORDON_BENCH_LATENCY_RATE")?,
        Err(_) => (sustained_rate.min(offered) / 2.0).max(10.0),
    };
    let before = Snapshot::take(&pids, &http).await?;
    let background = {
        let (kafka, mix) = (kafka.clone(), mix.clone());
        tokio::spawn(async move { traffic(&kafka, "cordon.content", &mix, "load", rate, 10).await })
    };
    let admin = d.admin().await?;
    // Probes are produced by a task of their own (waiting for the broker's acknowledgement
    // does not hold up the polling), and every outstanding probe is looked up concurrently
    // every 25 ms, so the measurement adds ~15 ms, not a sequential round of look-ups (more
    // frequent look-ups load the process that indexes).
    let (probes_tx, mut probes_rx) = tokio::sync::mpsc::unbounded_channel();
    let prober = {
        let (kafka, flagged) = (kafka.clone(), flagged.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut sent = 0usize;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                tick.tick().await;
                let id = format!("probe/{sent}");
                let probe = &flagged[sent % flagged.len()];
                let payload = item(&id, &sized(&probe.text, sent, chars), &probe.lang).to_string();
                let (at, wall) = (Instant::now(), chrono::Utc::now());
                produce(&kafka, "cordon.content", &[(id.clone(), payload)]).await?;
                // The receiver lives until every probe is accounted for.
                let _ = probes_tx.send((id, at, wall));
                sent += 1;
            }
            anyhow::Ok(sent)
        })
    };
    let mut latencies = Vec::new();
    // Each probe's latency split at its verdict's `decided_at` (this machine's clock, like the
    // produce time): the broker and the worker before it, the broker and the indexer after.
    let (mut to_verdict, mut to_search) = (Vec::new(), Vec::new());
    let mut outstanding: Vec<(String, Instant, chrono::DateTime<chrono::Utc>)> = Vec::new();
    let mut unsuppressed = 0usize;
    let mut producing = true;
    while producing || !outstanding.is_empty() {
        loop {
            match probes_rx.try_recv() {
                Ok(probe) => outstanding.push(probe),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    producing = false;
                    break;
                }
            }
        }
        let mut lookups = tokio::task::JoinSet::new();
        for (id, at, wall) in outstanding.drain(..) {
            let admin = admin.clone();
            lookups.spawn(async move {
                let (_, state) = admin.get(&format!("/v1/items/{id}")).await?;
                anyhow::Ok((id, at, wall, state))
            });
        }
        while let Some(looked_up) = lookups.join_next().await {
            let (id, at, wall, state) = looked_up??;
            if state["visibility"] == "suppressed" {
                let total = at.elapsed().as_secs_f64();
                let decided: chrono::DateTime<chrono::Utc> =
                    serde_json::from_value(state["verdict"]["decided_at"].clone())
                        .context("the probe's verdict has no decided_at")?;
                let worker = (decided - wall).num_microseconds().unwrap_or(0) as f64 / 1e6;
                latencies.push(total);
                to_verdict.push(worker);
                to_search.push(total - worker);
            } else if at.elapsed() < Duration::from_secs(10) {
                outstanding.push((id, at, wall));
            } else {
                // The model did not suppress this probe text at this size: not a latency.
                unsuppressed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let p = prober.await??;
    let background_sent = background.await??;
    let latency_phase = Snapshot::take(&pids, &http)
        .await?
        .since(&before, background_sent + p);
    eprintln!("[bench] latency run: {background_sent} background items, {p} probes");
    for v in [&mut latencies, &mut to_verdict, &mut to_search] {
        v.sort_by(f64::total_cmp);
    }
    let quantiles = |v: &[f64]| json!({"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "p99": percentile(v, 0.99)});

    // 5. Memory over a long run at the same rate.
    let soak_secs: u64 = env_or("CORDON_BENCH_SOAK_SECS", 0);
    let mut soak = Vec::new();
    if soak_secs > 0 {
        let load = {
            let (kafka, mix) = (kafka.clone(), mix.clone());
            tokio::spawn(async move {
                traffic(&kafka, "cordon.content", &mix, "soak", rate, soak_secs).await
            })
        };
        let started = Instant::now();
        while !load.is_finished() {
            let mut sample = serde_json::Map::new();
            sample.insert("second".into(), json!(started.elapsed().as_secs()));
            for (name, pid) in pids {
                sample.insert(name.into(), json!(memory_mib(pid, "VmRSS")?.round()));
            }
            eprintln!("[bench] soak: {}", Value::Object(sample.clone()));
            soak.push(Value::Object(sample));
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        load.await??;
    }

    // 6. Idle: no traffic, with the local fetch wait and then with the default one.
    let idle_secs: u64 = env_or("CORDON_BENCH_IDLE_SECS", 20);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = Snapshot::take(&pids, &http).await?;
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_local = Snapshot::take(&pids, &http).await?.since(&before, 0);
    eprintln!(
        "[bench] idle, fetch wait {} ms: {idle_local}",
        local_fetch_wait_max_ms()
    );
    let mut processes = serde_json::Map::new();
    for (name, pid) in pids {
        let (cpu, mem) = (cpu_seconds(pid)?, memory_mib(pid, "VmHWM")?);
        // Resident memory that is not file-backed (the index's memory-mapped segments count as
        // resident too), at the end of the run.
        let anon = memory_mib(pid, "RssAnon")?;
        processes.insert(
            name.into(),
            json!({"cpu_seconds": cpu, "peak_rss_mib": mem, "rss_anon_mib_at_end": anon}),
        );
    }
    let default_wait = cordon_stream::DEFAULT_FETCH_WAIT_MAX_MS.to_string();
    let with_default_wait = [
        defaults[0],
        defaults[1],
        ("CORDON_KAFKA__FETCH_WAIT_MAX_MS", default_wait.as_str()),
    ];
    worker.terminate(Duration::from_secs(30))?;
    indexer.terminate(Duration::from_secs(30))?;
    let worker = d.start_with_env("worker", &with_default_wait)?;
    let indexer = d.start_with_env("indexer,api", &with_default_wait)?;
    d.wait_ready().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (pids, http) = watched(&d, &worker, &indexer)?;
    let before = Snapshot::take(&pids, &http).await?;
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_default = Snapshot::take(&pids, &http).await?.since(&before, 0);
    eprintln!("[bench] idle, fetch wait {default_wait} ms: {idle_default}");

    let slowest = [tantivy_rate, classifier_rate, consume_rate]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    report.insert("items".into(), json!(n));
    report.insert("limits_items_per_s".into(), json!({"tantivy_alone": tantivy_rate, "classifier_alone": classifier_rate, "broker_produce": produce_rate, "broker_consume": consume_rate, "hollow_pipeline_sustained": hollow_rate}));
    report.insert("backlog".into(), json!({"items_per_s": backlog_rate, "share_of_slowest_limit": backlog_rate / slowest, "phase": backlog}));
    report.insert("sustained".into(), json!({"offered_items_per_s": offered, "items_per_s": sustained_rate, "share_of_slowest_limit": sustained_rate / slowest, "share_of_hollow_pipeline": sustained_rate / hollow_rate, "left_when_traffic_stopped": left, "phase": sustained}));
    report.insert("suppression_latency_s".into(), json!({"rate_items_per_s": rate, "probes": latencies.len(), "probes_sent": p, "probes_not_suppressed_within_10s": unsuppressed, "p50": percentile(&latencies, 0.5), "p95": percentile(&latencies, 0.95), "p99": percentile(&latencies, 0.99), "produce_to_verdict": quantiles(&to_verdict), "verdict_to_search": quantiles(&to_search), "phase": latency_phase}));
    report.insert(
        "obvious_pipeline".into(),
        json!({"backlog_items_per_s": obvious_rate, "cpu_us_per_item": obvious_us, "cordon_backlog_ratio": backlog_rate / obvious_rate}),
    );
    report.insert("index_rebuild".into(), Value::Object(rebuild.clone()));
    report.insert("soak_rss_mib".into(), json!(soak));
    report.insert(
        "idle".into(),
        json!({"local_fetch_wait": idle_local, "default_fetch_wait": idle_default}),
    );
    report.insert("processes".into(), Value::Object(processes.clone()));

    println!("| measure | value |\n|---|---|");
    println!("| Tantivy indexing alone | {tantivy_rate:.0} items/s |");
    println!("| classifier alone (`cordon classify`) | {classifier_rate:.0} items/s |");
    println!("| broker raw produce / consume | {produce_rate:.0} / {consume_rate:.0} items/s |");
    println!(
        "| hollow pipeline (broker only, same record flow, sustained) | {hollow_rate:.0} items/s |"
    );
    println!("| the obvious single-process pipeline draining the same backlog | {obvious_rate:.0} items/s, {obvious_us:.0} CPU µs per item |");
    println!("| pipeline draining a backlog | {backlog_rate:.0} items/s ({:.0} % of the slowest limit; {:.2}× the obvious pipeline) |", 100.0 * backlog_rate / slowest, backlog_rate / obvious_rate);
    for (policy, r) in &rebuild {
        println!(
            "| index rebuilt from the backlog's records, {policy} commits | {:.0} items/s, {:.0} CPU µs per item |",
            r["items_per_s"].as_f64().unwrap_or(0.0),
            r["cpu_us_per_item"].as_f64().unwrap_or(0.0)
        );
    }
    println!("| **pipeline sustained** (offered {offered:.0}/s) | **{sustained_rate:.0} items/s** ({:.0} % of the hollow pipeline; {left:.0} items behind when the traffic stopped) |", 100.0 * sustained_rate / hollow_rate);
    println!("| suppression latency at {rate:.0} items/s ({} probes) | p50 {:.3} s, p95 {:.3} s, p99 {:.3} s |", latencies.len(), percentile(&latencies, 0.5), percentile(&latencies, 0.95), percentile(&latencies, 0.99));
    println!(
        "| of which: produce to the worker's verdict / verdict to the committed index | {} / {} |",
        quantiles(&to_verdict),
        quantiles(&to_search)
    );
    for (phase, v) in [
        ("backlog", &backlog),
        ("sustained", &sustained),
        ("latency", &latency_phase),
        ("idle (local fetch wait)", &idle_local),
        ("idle (default fetch wait)", &idle_default),
    ] {
        println!("| {phase} phase | {} |", v);
    }
    for (name, v) in &processes {
        println!(
            "| {name} | {:.1} CPU s, peak {:.0} MiB, anonymous at the end {:.0} MiB |",
            v["cpu_seconds"].as_f64().unwrap_or(0.0),
            v["peak_rss_mib"].as_f64().unwrap_or(0.0),
            v["rss_anon_mib_at_end"].as_f64().unwrap_or(0.0)
        );
    }
    if let (Some(first), Some(last)) = (soak.first(), soak.last()) {
        println!("| memory over {soak_secs} s (MiB, first → last sample) | {first} → {last} |");
    }
    write_report("pipeline-bench.json", &Value::Object(report))?;
    Ok(())
}

/// The processes a phase watches — their pids, and the worker's and indexer's HTTP addresses.
type Watched = ([(&'static str, u32); 3], [String; 2]);

fn watched(d: &Deployment, worker: &CordonProcess, indexer: &CordonProcess) -> Result<Watched> {
    Ok((
        [
            ("worker", worker.pid()),
            ("indexer+api", indexer.pid()),
            ("broker", d.broker.pid().context("broker pid")?),
        ],
        [worker.http(), indexer.http()],
    ))
}

/// Offers `mix` at `rate` items/s for `secs` s to a pass-through "worker" (a group consumer that
/// answers each record with a verdict-sized record on a second topic) and a reader of both topics
/// (the "indexer"), all doing nothing else; returns the rate the reader kept up with.
async fn hollow_pipeline(
    broker: &cordon_e2e::Broker,
    brokers: &str,
    kafka: &FutureProducer,
    mix: &Mix,
    rate: f64,
    secs: u64,
) -> Result<f64> {
    let settings = cordon_stream::KafkaSettings {
        brokers: brokers.to_string(),
        fetch_wait_max_ms: local_fetch_wait_max_ms(),
        ..Default::default()
    };
    let spec = |name: &str| cordon_stream::TopicSpec {
        name: name.into(),
        partitions: 4,
        replication_factor: 1,
        min_insync_replicas: 1,
        compacted: false,
    };
    create(
        broker,
        &settings,
        &[spec("hollow.content"), spec("hollow.verdicts")],
    )
    .await?;
    let worker = cordon_stream::GroupConsumer::new(&settings, "hollow", &["hollow.content"])?;
    let pass = {
        let kafka = kafka.clone();
        tokio::spawn(async move {
            let verdict = "v".repeat(500);
            while let Ok(message) = worker.recv().await {
                let key = message.key.unwrap_or_default();
                let record = FutureRecord::to("hollow.verdicts")
                    .key(&key)
                    .payload(&verdict);
                // The reader counting the verdicts is the acknowledgement.
                drop(kafka.send_result(record).map_err(|(e, _)| e)?);
            }
            anyhow::Ok(())
        })
    };
    let reader = cordon_stream::AssignedReader::new(
        &settings,
        &["hollow.content", "hollow.verdicts"],
        &Default::default(),
    )?;
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = {
        let read = std::sync::Arc::clone(&read);
        tokio::spawn(async move {
            while reader.recv().await.is_ok() {
                read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let sent = traffic(kafka, "hollow.content", mix, "hollow", rate, secs).await?;
    eventually(Duration::from_secs(600), "the hollow pipeline", || async {
        let done = read.load(std::sync::atomic::Ordering::Relaxed);
        eprint!(
            "\r[bench] hollow pipeline: {done}/{} records read",
            2 * sent
        );
        Ok((done >= 2 * sent).then_some(()))
    })
    .await?;
    eprintln!();
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    pass.abort();
    counting.abort();
    Ok(rate)
}

const INDEXER_STAGES: [Stage; 2] = [Stage::Apply, Stage::Commit];

/// Stage times and CPU seconds at one moment, to report a phase as the difference of two.
struct Snapshot {
    at: Instant,
    /// Stage → (seconds, observations).
    stages: BTreeMap<&'static str, (f64, f64)>,
    cpu: BTreeMap<&'static str, f64>,
}

impl Snapshot {
    async fn take(pids: &[(&'static str, u32)], http: &[String; 2]) -> Result<Snapshot> {
        let mut stages = BTreeMap::new();
        for (process, role_stages) in [
            (&http[0], &WORKER_STAGES[..]),
            (&http[1], &INDEXER_STAGES[..]),
        ] {
            for stage in role_stages {
                let metric = |part: &str| {
                    format!(
                        "{}_{part}{{stage=\"{}\"}}",
                        names::STAGE_SECONDS,
                        stage.as_str()
                    )
                };
                let sum = metric_sum(process, &metric("sum")).await?;
                let count = metric_sum(process, &metric("count")).await?;
                stages.insert(stage.as_str(), (sum, count));
            }
        }
        let mut cpu = BTreeMap::new();
        for (name, pid) in pids {
            cpu.insert(*name, cpu_seconds(*pid)?);
        }
        Ok(Snapshot {
            at: Instant::now(),
            stages,
            cpu,
        })
    }

    /// The phase from `before` to this snapshot: ms per batch of each stage, and each process's
    /// CPU use in cores and, when the phase had `items`, in µs per item.
    fn since(&self, before: &Snapshot, items: usize) -> Value {
        let secs = self.at.duration_since(before.at).as_secs_f64();
        let mut stages = serde_json::Map::new();
        for (stage, (sum, count)) in &self.stages {
            let (sum0, count0) = before.stages.get(stage).copied().unwrap_or_default();
            let batches = count - count0;
            if batches > 0.0 {
                stages.insert(
                    stage.to_string(),
                    json!((1000.0 * (sum - sum0) / batches * 100.0).round() / 100.0),
                );
            }
        }
        let mut cores = serde_json::Map::new();
        let mut per_item = serde_json::Map::new();
        for (name, cpu) in &self.cpu {
            let used = cpu - before.cpu.get(name).copied().unwrap_or_default();
            cores.insert(
                name.to_string(),
                json!((used / secs * 100.0).round() / 100.0),
            );
            if items > 0 {
                per_item.insert(name.to_string(), json!((used * 1e6 / items as f64).round()));
            }
        }
        json!({"seconds": (secs * 10.0).round() / 10.0, "ms_per_batch": stages, "cpu_cores": cores, "cpu_us_per_item": per_item})
    }
}
