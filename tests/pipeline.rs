//! The pipeline end to end against a real broker process (tansu) and the real PostgreSQL:
//! flagged items leave public search, borderline ones are queued once, clean ones stay, malformed
//! messages are dead-lettered, a moderator's restore brings an item back, and killing the worker and
//! indexer mid-stream loses and doubles nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result};
use cordon_e2e::{
    cases, eventually, ids_with, metric_sum, repo_root, signed_report, wait_applied, Deployment,
    SampleFeed, WORKER_STAGES,
};
use cordon_ops::names;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use serde_json::{json, Value};

/// The last record the verdicts topic holds for `key` (read from the start to its current end).
async fn last_verdict(brokers: &str, key: &str) -> Result<Value> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-last-verdict")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let metadata = consumer.fetch_metadata(Some("cordon.verdicts"), Duration::from_secs(10))?;
    let mut ends = BTreeMap::new();
    for p in metadata.topics()[0].partitions() {
        let (_, high) =
            consumer.fetch_watermarks("cordon.verdicts", p.id(), Duration::from_secs(10))?;
        if high > 0 {
            ends.insert(p.id(), high);
        }
    }
    consumer.subscribe(&["cordon.verdicts"])?;
    let mut last = None;
    while !ends.is_empty() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
        if m.key() == Some(key.as_bytes()) {
            last = Some(serde_json::from_slice(m.payload().context("payload")?)?);
        }
        if ends
            .get(&m.partition())
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            ends.remove(&m.partition());
        }
    }
    last.context("no verdict for the key")
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_feed_end_to_end() -> Result<()> {
    let sample = SampleFeed::deploy().await?;
    let SampleFeed {
        d, feed, expected, ..
    } = &sample;
    let suppressed = ids_with(expected, &["suppress"]);
    let review = ids_with(expected, &["review"]);
    let visible = ids_with(expected, &["allow", "review"]);
    assert!(
        !suppressed.is_empty() && !review.is_empty() && !visible.is_empty(),
        "the sample feed must exercise every action: {expected:?}"
    );

    let [worker, indexer] = sample.run(&[]).await?;

    // Flagged items are gone from public search, clean and borderline ones are there.
    assert_eq!(d.visible_ids().await?, visible);
    for id in &suppressed {
        let (_, item) = d.get(&format!("/v1/items/{id}")).await?;
        assert_eq!(item["visibility"], "suppressed", "{id}: {item}");
        assert_eq!(item["verdict"]["decided_by"]["by"], "model");
        // Still findable by moderators, with scores, the reason and what drove the score.
        assert!(item["verdict"]["scores"]["drugs"].is_number());
        let explanation = item["verdict"]["explanation"]
            .as_array()
            .context("explanation")?;
        assert!(
            !explanation.is_empty() && explanation[0]["feature"].is_string(),
            "{item}"
        );
    }
    // Borderline items are queued exactly once.
    let queued = cases(&d.db.url).await?;
    let expected_cases: BTreeMap<(String, i64), i64> =
        review.iter().map(|id| ((id.clone(), 1), 1)).collect();
    assert_eq!(queued, expected_cases);

    // The malformed line is in the dead-letter topic, with the reason, and counted.
    let dlq: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", d.broker.addr())
        .set("group.id", "test-dlq")
        .set("auto.offset.reset", "earliest")
        .create()?;
    dlq.subscribe(&["cordon.content.dlq"])?;
    let dead = tokio::time::timeout(Duration::from_secs(30), dlq.recv()).await??;
    let reason = dead
        .headers()
        .and_then(|h| {
            h.iter()
                .find(|h| h.key == cordon_worker::ERROR_HEADER)
                .and_then(|h| h.value)
        })
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .context("cordon.error header")?;
    assert!(reason.contains("missing field `channel`"), "{reason}");
    assert!(dead
        .payload_view::<str>()
        .and_then(|p| p.ok())
        .is_some_and(|p| p.contains("broken")));
    let metrics = reqwest::get(format!("http://{}/metrics", worker.http()))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(&format!(
            "{}{{reason=\"json\"}} 1",
            names::DEAD_LETTERED_TOTAL
        )),
        "{metrics}"
    );
    // Every worker stage reports its time per batch.
    for stage in WORKER_STAGES {
        let line = format!(
            "{}_count{{stage=\"{}\"}}",
            names::STAGE_SECONDS,
            stage.as_str()
        );
        let count = metric_sum(&worker.http(), &line).await?;
        assert!(count > 0.0, "{stage}: {metrics}");
    }

    // Every role counts the requests its Kafka clients send, from their statistics.
    for (process, role, client, request) in [
        (&worker, "worker", "consumer", "Fetch"),
        (&worker, "worker", "producer", "Produce"),
        (&indexer, "indexer", "consumer", "Fetch"),
    ] {
        let line = format!(
            "{}{{client=\"{client}\",request=\"{request}\",role=\"{role}\"}}",
            names::KAFKA_REQUESTS_TOTAL
        );
        eventually(Duration::from_secs(20), &line, || async {
            Ok((metric_sum(&process.http(), &line).await? > 0.0).then_some(()))
        })
        .await?;
    }

    // A moderator restores a suppressed item: it becomes searchable again, with its history.
    let restored = suppressed
        .iter()
        .next()
        .context("a suppressed item")?
        .clone();
    let (status, decision) = d
        .post(
            "/v1/decisions",
            &json!({"item_id": restored, "action": "restore", "reason": "not_illegal", "note": "satire"}),
        )
        .await?;
    assert_eq!(status, 200, "{decision}");
    eventually(
        Duration::from_secs(10),
        "the restored item to be searchable",
        || async { Ok(d.visible_ids().await?.contains(&restored).then_some(())) },
    )
    .await?;
    let (_, item) = d.get(&format!("/v1/items/{restored}")).await?;
    assert_eq!(item["verdict"]["decided_by"]["by"], "human");
    assert_eq!(item["decisions"][0]["moderator"], "ann");

    // The platform sends the restored item again at the same version (a re-delivery): the worker
    // scores it, finds the person's decision and publishes that, so the compacted verdicts topic
    // still ends on the person's restore, not on the model's suppression.
    let line = std::fs::read_to_string(feed)?
        .lines()
        .find(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["id"] == restored.as_str()))
        .context("the restored item's line")?
        .to_string();
    let again = d.dir.path().join("again.jsonl");
    std::fs::write(&again, line + "\n")?;
    let finished = format!("{}_count", names::END_TO_END_SECONDS);
    let before = metric_sum(&worker.http(), &finished).await?;
    d.command(&["produce", &again.display().to_string()])?;
    eventually(
        Duration::from_secs(30),
        "the re-sent item to be scored",
        || async { Ok((metric_sum(&worker.http(), &finished).await? > before).then_some(())) },
    )
    .await?;
    let last = last_verdict(&d.broker.addr(), &restored).await?;
    assert_eq!(last["decided_by"]["by"], "human", "{last}");
    assert_eq!(last["action"], "restore", "{last}");

    // A moderator decides a queued case: it is resolved and the item is suppressed.
    let case_item = review.iter().next().context("a review item")?.clone();
    let (_, listed) = d.get("/v1/cases?state=open").await?;
    let case_id = listed["cases"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["item_id"] == case_item.as_str()))
        .and_then(|c| c["id"].as_i64())
        .context("the review case")?;
    let (status, _) = d
        .post(
            &format!("/v1/cases/{case_id}/decision"),
            &json!({"action": "suppress", "reason": "drugs_offer"}),
        )
        .await?;
    assert_eq!(status, 200);
    eventually(
        Duration::from_secs(10),
        "the decided item to leave search",
        || async { Ok((!d.visible_ids().await?.contains(&case_item)).then_some(())) },
    )
    .await?;
    let (_, case) = d.get(&format!("/v1/cases/{case_id}")).await?;
    assert_eq!(case["state"], "resolved");

    // Clear errors for bad requests.
    let (status, body) = d
        .post(
            "/v1/decisions",
            &json!({"item_id": restored, "action": "delete", "reason": "x"}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    let (status, _) = d.get("/v1/items/no-such-item").await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn premoderation_hides_items_until_cleared() -> Result<()> {
    // The mode is set through the environment, as operators would override the file.
    let SampleFeed {
        d,
        feed,
        expected,
        versions,
    } = SampleFeed::deploy().await?;
    let env = [
        (
            "CORDON_INDEX__PREMODERATION".to_string(),
            "true".to_string(),
        ),
        ("CORDON_API__LISTEN".to_string(), d.api.clone()),
    ];
    let config = d.config.display().to_string();
    let _indexer = cordon_e2e::CordonProcess::start(
        &["--config", &config, "run", "--role", "indexer,api"],
        &env,
        &d.dir.path().join("indexer.log"),
    )?;
    d.wait_ready().await?;
    // Content arrives before any worker runs: nothing may be public yet.
    d.command(&["produce", &feed.display().to_string(), "--no-validate"])?;
    eventually(Duration::from_secs(30), "content to be indexed", || async {
        let (status, item) = d
            .get(&format!("/v1/items/{}", versions.keys().next().unwrap()))
            .await?;
        Ok((status == 200 && item["visibility"] == "pending").then_some(()))
    })
    .await?;
    assert!(d.visible_ids().await?.is_empty());
    // Once verdicts arrive, only allowed items appear; review items wait for a person.
    let _worker = d.start("worker")?;
    wait_applied(&d, &versions, Duration::from_secs(120)).await?;
    let allowed = ids_with(&expected, &["allow"]);
    assert!(
        !ids_with(&expected, &["review"]).is_empty(),
        "the feed has review items to hold back"
    );
    assert_eq!(d.visible_ids().await?, allowed);
    Ok(())
}

#[test]
fn classify_answers_every_line_and_flags_bad_ones() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"text\": \"cocaine for sale 1g 80$ fast delivery, telegram @shop\"}\n\
         not json\n\
         {\"id\": \"b\", \"text\": \"selling my sofa, good condition\"}\n",
    )?;
    let out = std::process::Command::new(cordon_e2e::cordon_bin())
        .arg("classify")
        .arg(&input)
        .current_dir(repo_root())
        .output()?;
    assert!(
        !out.status.success(),
        "a bad line makes the exit status non-zero"
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["top_category"], "drugs");
    assert_eq!(lines[0]["action"], "suppress");
    assert!(lines[0]["scores"]["weapons"].is_number());
    let why = lines[0]["explanation"].as_array().context("explanation")?;
    assert!(!why.is_empty() && why.iter().all(|c| c["weight"].as_f64() > Some(0.0)));
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(lines[2]["action"], "allow");
    assert!(String::from_utf8(out.stderr)?.contains("1 of 3 lines"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn user_reports_hide_an_item_until_a_moderator_decides() -> Result<()> {
    let sample = SampleFeed::deploy().await?;
    let SampleFeed { d, expected, .. } = &sample;
    let [_worker, _api] = sample.run(&[("CORDON_REPORTS__HOLD_AT", "2")]).await?;

    let target = ids_with(expected, &["allow"])
        .into_iter()
        .next()
        .context("an allowed item")?;
    let report = |who: &str| signed_report(&target, who, "drugs");
    let (status, first) = d.post("/v1/reports", &report("r1")).await?;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["held"], false);
    let (_, repeat) = d.post("/v1/reports", &report("r1")).await?;
    assert_eq!(repeat["duplicate"], true);
    let (_, second) = d.post("/v1/reports", &report("r2")).await?;
    assert_eq!(second["held"], true, "{second}");
    eventually(
        Duration::from_secs(10),
        "the reported item to leave search",
        || async { Ok((!d.visible_ids().await?.contains(&target)).then_some(())) },
    )
    .await?;
    let (_, item) = d.get(&format!("/v1/items/{target}")).await?;
    assert_eq!(item["visibility"], "pending");

    // A moderator rejects the reports: the item is public again.
    let case_id = first["case_id"].as_i64().context("case id")?;
    let (status, body) = d
        .post(
            &format!("/v1/cases/{case_id}/decision"),
            &json!({"action": "restore", "reason": "not_illegal"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    eventually(
        Duration::from_secs(10),
        "the item to return to search",
        || async { Ok(d.visible_ids().await?.contains(&target).then_some(())) },
    )
    .await?;
    let (status, _) = d
        .post("/v1/reports", &signed_report("nope", "r1", "drugs"))
        .await?;
    assert_eq!(status, 404);

    // Reports from other systems arrive on the reports topic; a malformed one is skipped.
    let other = ids_with(expected, &["allow"])
        .into_iter()
        .find(|id| *id != target)
        .context("a second allowed item")?;
    let file = d.dir.path().join("reports.jsonl");
    std::fs::write(
        &file,
        format!("{}\nnot a report\n", signed_report(&other, "k1", "weapons")),
    )?;
    d.command(&[
        "produce",
        "--no-validate",
        "--topic",
        "cordon.reports",
        &file.display().to_string(),
    ])?;
    eventually(
        Duration::from_secs(20),
        "the topic's report to open a case",
        || async {
            let (_, item) = d.get(&format!("/v1/items/{other}")).await?;
            Ok(item["cases"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
                .then_some(()))
        },
    )
    .await?;
    eventually(
        Duration::from_secs(10),
        "the malformed report to be counted",
        || async {
            let metrics = reqwest::get(format!("http://{}/metrics", _api.http()))
                .await?
                .text()
                .await?;
            Ok((metrics.contains(&format!(
                "{}{{outcome=\"skipped\",source=\"kafka\"}} 1",
                names::REPORTS_TOTAL
            )) && metrics.contains(&format!(
                "{}{{outcome=\"filed\",source=\"kafka\"}} 1",
                names::REPORTS_TOTAL
            )))
            .then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_decision_hides_every_item_of_the_channel() -> Result<()> {
    let sample = SampleFeed::deploy().await?;
    let SampleFeed {
        d, feed, expected, ..
    } = &sample;
    let [_worker, _api] = sample.run(&[]).await?;

    let visible = ids_with(expected, &["allow", "review"]);
    let target = visible.iter().next().context("a visible item")?.clone();
    let (_, item) = d.get(&format!("/v1/items/{target}")).await?;
    let channel = item["content"]["channel"]["id"]
        .as_str()
        .context("channel")?
        .to_string();
    let channel_of = |id: &String| -> Result<String> {
        let line = std::fs::read_to_string(feed)?
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["id"] == id.as_str())
            .context("item in feed")?;
        Ok(line["channel"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    };
    let mut others = BTreeSet::new();
    for id in &visible {
        if channel_of(id)? != channel {
            others.insert(id.clone());
        }
    }

    let decide =
        |action: &str| json!({"channel_id": channel, "action": action, "reason": "drug_shop"});
    let (status, body) = d.post("/v1/channel-decisions", &decide("suppress")).await?;
    assert_eq!(status, 200, "{body}");
    eventually(
        Duration::from_secs(10),
        "the channel to leave search",
        || async { Ok((d.visible_ids().await? == others).then_some(())) },
    )
    .await?;
    let (_, item) = d.get(&format!("/v1/items/{target}")).await?;
    assert_eq!(item["channel_suppressed"], true);

    let (status, _) = d.post("/v1/channel-decisions", &decide("restore")).await?;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(10), "the channel to return", || async {
        Ok((d.visible_ids().await? == visible).then_some(()))
    })
    .await?;
    let (_, log) = d.get("/v1/audit?limit=5").await?;
    assert_eq!(log["entries"][0]["action"], "restore_channel");
    assert_eq!(log["entries"][0]["actor"], "ann");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_older_version_gets_no_verdict() -> Result<()> {
    let d = Deployment::new("").await?;
    let worker = d.start("worker")?;
    let worker_metrics = worker.http();
    let dir = d.dir.path();
    let item = |version: u64, text: &str| {
        json!({
            "id": "late/1", "kind": "listing", "channel": {"id": "c9"}, "text": text,
            "published_at": "2026-11-20T10:00:00Z", "indexed_at": "2026-11-20T10:00:01Z",
            "version": version
        })
    };
    std::fs::write(
        dir.join("v2.jsonl"),
        format!("{}\n", item(2, "selling my sofa, good condition")),
    )?;
    std::fs::write(
        dir.join("v1.jsonl"),
        format!("{}\n", item(1, "cocaine for sale 1g 80$ telegram @shop")),
    )?;
    d.command(&["produce", &dir.join("v2.jsonl").display().to_string()])?;
    eventually(
        Duration::from_secs(30),
        "version 2 to be decided",
        || async {
            let m = reqwest::get(format!("http://{worker_metrics}/metrics"))
                .await?
                .text()
                .await?;
            Ok(m.contains(&format!("{} 1", names::DECODED_TOTAL))
                .then_some(()))
        },
    )
    .await?;
    d.command(&["produce", &dir.join("v1.jsonl").display().to_string()])?;
    eventually(
        Duration::from_secs(30),
        "version 1 to be skipped as stale",
        || async {
            let m = reqwest::get(format!("http://{worker_metrics}/metrics"))
                .await?
                .text()
                .await?;
            Ok(m.contains(&format!("{} 1", names::STALE_ITEMS_TOTAL))
                .then_some(()))
        },
    )
    .await?;
    // The verdicts topic holds one verdict for the item: about version 2.
    let verdicts: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", d.broker.addr())
        .set("group.id", "test-verdicts")
        .set("auto.offset.reset", "earliest")
        .create()?;
    verdicts.subscribe(&["cordon.verdicts"])?;
    let first = tokio::time::timeout(Duration::from_secs(30), verdicts.recv()).await??;
    let v: Value = serde_json::from_slice(first.payload().context("payload")?)?;
    assert_eq!(v["item_version"], 2);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), verdicts.recv())
            .await
            .is_err(),
        "no second verdict"
    );
    Ok(())
}
