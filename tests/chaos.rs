//! Chaos: items stream through a real broker and the real PostgreSQL while worker and indexer
//! processes are killed with SIGKILL and restarted again and again, a third worker joins and
//! leaves (consumer-group rebalances), and the broker itself is killed once and restarted on its
//! durable store. Afterwards every item has exactly its one expected verdict in the index, search
//! agrees with the verdicts item for item, every review case exists exactly once, and the
//! offsets the indexer reports are exactly the ends of the topics it applied.
//!
//! Short form (CI): 3,000 items. Long form: `CORDON_CHAOS_ITEMS=100000 cargo test --release -p
//! cordon-e2e --test chaos`.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{
    cases, cordon_bin, eventually, ids_with, index_offsets, metric_sum, repo_root, wait_applied,
    write_items, CordonProcess, Deployment,
};
use cordon_ops::names;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

fn item_count() -> usize {
    std::env::var("CORDON_CHAOS_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// Sends each file with `cordon produce`, retrying a file until it goes through (the broker may
/// be down; a partly sent file sent again only repeats messages, which is harmless).
fn produce_all(config: std::path::PathBuf, files: Vec<std::path::PathBuf>) -> Result<()> {
    for file in files {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let output = Command::new(cordon_bin())
                .arg("--config")
                .arg(&config)
                .arg("produce")
                .arg(&file)
                .env("CORDON_KAFKA__DELIVERY_TIMEOUT_SECS", "5")
                .current_dir(repo_root())
                .output()?;
            if output.status.success() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "could not produce {}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(())
}

/// The high watermarks of `topics`, summed per topic: how many records each holds.
fn topic_ends(brokers: &str, topics: &[&str]) -> Result<BTreeMap<String, i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "chaos-watermarks")
        .create()?;
    let mut out = BTreeMap::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        let mut sum = 0;
        for p in 0..partitions as i32 {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            sum += high;
        }
        out.insert(topic.to_string(), sum);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn kills_rebalances_and_a_broker_crash_lose_and_double_nothing() -> Result<()> {
    let n = item_count();
    let mut d = Deployment::new("[worker]\nbatch_size = 64\nbatch_linger_ms = 5\n").await?;
    d.spread_policy(&repo_root().join("examples/sample-feed.jsonl"))?;
    let dir = d.dir.path().to_path_buf();
    // n items in ten chunks, then new versions (other texts) of a tenth of them.
    let chunk = n.div_ceil(10);
    let mut files = Vec::new();
    for c in 0..10 {
        let path = dir.join(format!("chunk{c}.jsonl"));
        write_items(&path, c * chunk..((c + 1) * chunk).min(n), 1, 0)?;
        files.push(path);
    }
    let updates = dir.join("updates.jsonl");
    write_items(&updates, 0..n / 10, 2, 5)?;
    let mut expected_v1: HashMap<String, String> = HashMap::new();
    for f in &files {
        expected_v1.extend(d.expected_actions(f)?);
    }
    let expected_v2 = d.expected_actions(&updates)?;
    files.push(updates);

    let mut workers = [d.start("worker")?, d.start("worker")?];
    let mut indexer = d.start("indexer,api")?;
    d.wait_ready().await?;
    let producer = tokio::task::spawn_blocking({
        let config = d.config.clone();
        move || produce_all(config, files)
    });

    // Chaos until every file is produced: a kill -9 every ~1.5 s, rotating over the processes;
    // the broker dies once; a third worker joins, then leaves with SIGTERM.
    let mut round = 0;
    let mut extra: Option<CordonProcess> = None;
    while !producer.is_finished() || round < 8 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        match round % 3 {
            0 => workers[0].restart()?,
            1 => indexer.restart()?,
            _ => workers[1].restart()?,
        }
        if round == 3 {
            d.broker.kill();
            tokio::time::sleep(Duration::from_secs(3)).await;
            d.broker.restart()?;
        }
        if round == 5 {
            extra = Some(d.start("worker")?);
        }
        if round == 9 {
            if let Some(mut w) = extra.take() {
                w.terminate(Duration::from_secs(30))?;
            }
        }
        round += 1;
    }
    producer.await??;
    drop(extra);
    d.wait_ready().await?;

    let mut versions: BTreeMap<String, u64> =
        expected_v1.keys().map(|id| (id.clone(), 1)).collect();
    for id in expected_v2.keys() {
        versions.insert(id.clone(), 2);
    }
    let budget = Duration::from_secs(120 + n as u64 / 200);
    let tail = |p: &CordonProcess| {
        let log = p.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    wait_applied(&d, &versions, budget).await.with_context(|| {
        format!(
            "worker 0:\n{}\nworker 1:\n{}\nindexer:\n{}",
            tail(&workers[0]),
            tail(&workers[1]),
            tail(&indexer)
        )
    })?;

    // Search agrees with the verdicts, item for item.
    let mut latest = expected_v1.clone();
    latest.extend(expected_v2.clone());
    assert_eq!(
        d.visible_ids().await?,
        ids_with(&latest, &["allow", "review"])
    );

    // Every review case exists exactly once: none lost, none doubled.
    let mut expected_cases = BTreeMap::new();
    for (map, version) in [(&expected_v1, 1), (&expected_v2, 2)] {
        for id in ids_with(map, &["review"]) {
            expected_cases.insert((id, version), 1);
        }
    }
    assert!(!expected_cases.is_empty());
    // A worker killed after its verdicts were acknowledged but before its cases were queued
    // left that batch's offsets unstored: the verdicts are already applied, and the cases come
    // when the batch's next owner re-processes it (after the group notices the kill). Wait for
    // that, then demand exactly the expected cases: none lost, none doubled.
    let _ = eventually(budget, "every review case", || async {
        Ok((cases(&d.db.url).await? == expected_cases).then_some(()))
    })
    .await;
    assert_eq!(cases(&d.db.url).await?, expected_cases);

    // The offsets the indexer reports are exactly the ends of what it applied.
    let topics = ["cordon.content", "cordon.verdicts"];
    let ends = topic_ends(&d.broker.addr(), &topics)?;
    eventually(
        Duration::from_secs(30),
        "reported offsets = topic ends",
        || async {
            let reported = index_offsets(&indexer.http()).await?;
            Ok((reported == ends).then_some(()))
        },
    )
    .await
    .with_context(|| format!("topic ends {ends:?}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_work_and_a_second_signal_exits_at_once() -> Result<()> {
    let d = Deployment::new("[worker]\nbatch_size = 64\nbatch_linger_ms = 5\n").await?;
    d.spread_policy(&repo_root().join("examples/sample-feed.jsonl"))?;
    let feed = d.dir.path().join("items.jsonl");
    write_items(&feed, 0..2000, 1, 0)?;
    let expected = d.expected_actions(&feed)?;
    let mut worker = d.start("worker")?;
    let mut indexer = d.start("indexer,api")?;
    d.wait_ready().await?;
    d.command(&["produce", &feed.display().to_string()])?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // SIGTERM mid-stream: the worker finishes its batch, commits offsets and exits cleanly.
    let started = Instant::now();
    let code = worker.terminate(Duration::from_secs(30))?;
    assert_eq!(code, Some(0), "{}", worker.log());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(worker.log().contains("worker stopping: committing offsets"));
    // Two signals: the indexer exits at once (status 130), its last commit intact.
    indexer.signal("TERM")?;
    indexer.signal("TERM")?;
    let code = indexer.terminate(Duration::from_secs(10))?;
    assert!(matches!(code, Some(0 | 130)), "{code:?}");

    // Restarted, they carry on from where they stopped: nothing lost, nothing doubled.
    worker.restart()?;
    indexer.restart()?;
    d.wait_ready().await?;
    let versions: BTreeMap<String, u64> = expected.keys().map(|id| (id.clone(), 1)).collect();
    wait_applied(&d, &versions, Duration::from_secs(120)).await?;
    assert_eq!(
        d.visible_ids().await?,
        ids_with(&expected, &["allow", "review"])
    );
    let expected_cases: BTreeMap<(String, i64), i64> = ids_with(&expected, &["review"])
        .into_iter()
        .map(|id| ((id, 1), 1))
        .collect();
    assert_eq!(cases(&d.db.url).await?, expected_cases);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn outages_apply_backpressure_and_keep_decisions_until_kafka_returns() -> Result<()> {
    let mut d = Deployment::new("[worker]\nbatch_size = 64\nbatch_linger_ms = 5\n").await?;
    d.spread_policy(&repo_root().join("examples/sample-feed.jsonl"))?;
    let feed = d.dir.path().join("items.jsonl");
    write_items(&feed, 0..600, 1, 0)?;
    let expected = d.expected_actions(&feed)?;
    // Every process reaches PostgreSQL through a proxy the test can cut.
    let admin_host = cordon_e2e::admin_url();
    let host = admin_host
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    let proxy = cordon_e2e::OutageProxy::start(&host).await?;
    let via_proxy = d.db.url.replace(&host, &proxy.addr);
    let env = [
        ("CORDON_DATABASE__URL", via_proxy.as_str()),
        ("CORDON_DATABASE__ACQUIRE_TIMEOUT_SECS", "2"),
        ("CORDON_KAFKA__DELIVERY_TIMEOUT_SECS", "5"),
    ];
    let worker = d.start_with_env("worker", &env)?;
    let api = d.start_with_env("indexer,api", &env)?;
    d.wait_ready().await?;
    let admin = d.admin().await?.clone();

    // PostgreSQL down: the worker stops taking work (it retries the batch in hand) and queues no
    // case; the API answers 503 quickly instead of hanging.
    proxy.down();
    d.command(&["produce", &feed.display().to_string()])?;
    eventually(
        Duration::from_secs(30),
        "the worker to retry the database",
        || async {
            Ok((metric_sum(
                &worker.http(),
                &format!("{}{{dependency=\"database\"}}", names::RETRIES_TOTAL),
            )
            .await?
                >= 2.0)
                .then_some(()))
        },
    )
    .await?;
    let classified_during = metric_sum(&worker.http(), names::CLASSIFIED_TOTAL).await?;
    let started = Instant::now();
    let (status, _) = admin.get("/v1/cases").await?;
    assert_eq!(status, 503);
    assert!(started.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        metric_sum(&worker.http(), names::CLASSIFIED_TOTAL).await?,
        classified_during
    );

    // Back up: it resumes by itself; everything is applied once.
    proxy.up().await?;
    let versions: BTreeMap<String, u64> = expected.keys().map(|id| (id.clone(), 1)).collect();
    wait_applied(&d, &versions, Duration::from_secs(120)).await?;
    let expected_cases: BTreeMap<(String, i64), i64> = ids_with(&expected, &["review"])
        .into_iter()
        .map(|id| ((id, 1), 1))
        .collect();
    assert_eq!(cases(&d.db.url).await?, expected_cases);

    // Kafka down: a moderator's decision is recorded and waits in the outbox; it reaches the
    // index when the broker is back.
    let (_, open) = admin.get("/v1/cases?state=open&limit=1").await?;
    let case = open["cases"][0].clone();
    let item = case["item_id"]
        .as_str()
        .context("a queued case")?
        .to_string();
    d.broker.kill();
    let (status, decision) = admin
        .post(
            &format!("/v1/cases/{}/decision", case["id"]),
            &serde_json::json!({"action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    assert_eq!(status, 200, "{decision}");
    eventually(
        Duration::from_secs(20),
        "the verdict to wait in the outbox",
        || async {
            Ok((metric_sum(&api.http(), names::OUTBOX_PENDING).await? >= 1.0).then_some(()))
        },
    )
    .await?;
    // While the broker is down, /readyz says so, and the logs hold repeats back: librdkafka
    // reports each failed reconnect of each client several times a second.
    let readiness_says = |process: &CordonProcess, status: u16, says: &'static str| {
        let url = format!("http://{}/readyz", process.http());
        async move {
            eventually(Duration::from_secs(30), says, || async {
                let answer = reqwest::get(&url).await?;
                let answered = answer.status().as_u16();
                let body = answer.text().await?;
                Ok((answered == status && body.contains(says)).then_some(()))
            })
            .await
        }
    };
    for process in [&worker, &api] {
        readiness_says(process, 503, "no Kafka broker reachable").await?;
    }
    let before = [worker.log().lines().count(), api.log().lines().count()];
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    for (process, before) in [&worker, &api].into_iter().zip(before) {
        let log = process.log();
        let during: Vec<&str> = log.lines().skip(before).collect();
        eprintln!(
            "[chaos] {} log lines in {window:?} with the broker down",
            during.len()
        );
        assert!(
            during.len() <= 20,
            "{} lines in {window:?}:\n{}",
            during.len(),
            during.join("\n")
        );
    }
    d.broker.restart()?;
    for process in [&worker, &api] {
        readiness_says(process, 200, "\"ready\":true").await?;
    }
    eventually(
        Duration::from_secs(90),
        "the decision to reach the index",
        || async {
            let (_, state) = admin.get(&format!("/v1/items/{item}")).await?;
            Ok((state["visibility"] == "suppressed").then_some(()))
        },
    )
    .await?;
    Ok(())
}
