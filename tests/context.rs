//! The context stage against the real broker, PostgreSQL, ONNX Runtime and the converted encoder:
//! the worker sends the items its fast model is unsure about to the context topic and queues no
//! case for them; the context role decides them, its verdict (stage `context`, with both stages'
//! scores) is the one in force, and a person's decision still outranks it.

use std::time::Duration;

use anyhow::{Context, Result};
use cordon_e2e::{eventually, wait_applied, Deployment};
use cordon_ops::names;
use serde_json::{json, Value};

/// Items from the second evaluation set with the fast model's decision and top score.
fn candidates(d: &Deployment) -> Result<Vec<(String, String, f64)>> {
    let lines: Vec<Value> =
        std::fs::read_to_string(cordon_e2e::repo_root().join("models/eval/second.jsonl"))?
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
    let input: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| json!({"id": i.to_string(), "text": l["text"]}).to_string() + "\n")
        .collect();
    let file = d.dir.path().join("candidates.jsonl");
    std::fs::write(&file, input)?;
    let out = d.command(&["classify", &file.display().to_string()])?;
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)?;
            let i: usize = v["id"].as_str().context("id")?.parse()?;
            Ok((
                lines[i]["text"].as_str().context("text")?.to_string(),
                v["action"].as_str().context("action")?.to_string(),
                v["top_score"].as_f64().context("top_score")?,
            ))
        })
        .collect()
}

/// Up to `n` candidates the worker sends to the context stage: not suppressed by the fast model,
/// top fast score at least the band's 0.05.
fn in_band(all: &[(String, String, f64)], n: usize) -> Vec<&(String, String, f64)> {
    all.iter()
        .filter(|(_, action, top)| action != "suppress" && *top >= 0.05)
        .take(n)
        .collect()
}

/// Sends `(id, text)` items to the content topic.
fn produce<'a>(d: &Deployment, items: impl IntoIterator<Item = (String, &'a str)>) -> Result<()> {
    let lines: String = items
        .into_iter()
        .map(|(id, text)| item(&id, text) + "\n")
        .collect();
    let file = d.dir.path().join("items.jsonl");
    std::fs::write(&file, lines)?;
    d.command(&["produce", &file.display().to_string()])?;
    Ok(())
}

fn item(id: &str, text: &str) -> String {
    json!({
        "id": id, "kind": "channel_post", "channel": {"id": "ctx", "subscribers": 1000},
        "text": text, "lang": "en",
        "published_at": "2026-11-20T10:00:00Z", "indexed_at": "2026-11-20T10:00:01Z", "version": 1
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_context_stage_decides_the_items_the_fast_model_is_unsure_about() -> Result<()> {
    let d = Deployment::new("").await?;
    let all = candidates(&d)?;
    let band = in_band(&all, 12);
    let below = all
        .iter()
        .find(|(_, action, top)| action == "allow" && *top < 0.01)
        .context("a text below the band")?;
    let sure = all
        .iter()
        .find(|(_, action, _)| action == "suppress")
        .context("a text the fast model suppresses")?;
    assert!(band.len() >= 4, "enough texts in the band");

    let cordon = d.start_with_env("all", &[("CORDON_CONTEXT__ENABLED", "true")])?;
    d.wait_ready().await?;
    let items = band
        .iter()
        .enumerate()
        .map(|(k, (text, _, _))| (format!("ctx/band/{k}"), text.as_str()))
        .chain([
            ("ctx/below".to_string(), below.0.as_str()),
            ("ctx/sure".to_string(), sure.0.as_str()),
        ]);
    produce(&d, items)?;

    // Every in-band item ends with the context stage's verdict in force, carrying both scores.
    let mut reviewed = Vec::new();
    for k in 0..band.len() {
        let id = format!("ctx/band/{k}");
        let body = eventually(Duration::from_secs(60), "a context verdict", || async {
            let (status, body) = d.get(&format!("/v1/items/{id}")).await?;
            // A suppression's statement is written once the verdict is acknowledged.
            let stated = body["verdict"]["action"] != "suppress"
                || body["statements"].as_array().is_some_and(|s| !s.is_empty());
            Ok(
                (status == 200 && body["verdict"]["decided_by"]["stage"] == "context" && stated)
                    .then_some(body),
            )
        })
        .await?;
        let v = &body["verdict"];
        assert!(
            v["scores"].is_object() && v["fast_scores"].is_object(),
            "{v}"
        );
        assert!(
            v["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("context stage:"),
            "{v}"
        );
        let stages: Vec<&str> = body["verdicts"]
            .as_array()
            .context("verdicts")?
            .iter()
            .filter_map(|v| v["decided_by"]["stage"].as_str())
            .collect();
        assert!(stages.contains(&"context"), "{body}");
        // A case exists only if the context stage queued it, and it names the context model.
        let cases = body["cases"].as_array().context("cases")?;
        if v["action"] == "review" {
            reviewed.push(id.clone());
            assert_eq!(cases.len(), 1, "{body}");
            assert_eq!(cases[0]["model_version"], v["decided_by"]["model_version"]);
        } else {
            assert!(cases.is_empty(), "the worker queued no case: {body}");
        }
        // A suppression by the context stage has its statement of reasons, as the fast
        // model's would; nothing else restricted the item.
        let statements = body["statements"].as_array().context("statements")?;
        if v["action"] == "suppress" {
            assert_eq!(statements.len(), 1, "{body}");
            assert_eq!(statements[0]["restriction"], "model_suppression");
            assert_eq!(
                statements[0]["tdb"]["automated_decision"],
                "AUTOMATED_DECISION_FULLY"
            );
        } else {
            assert!(statements.is_empty(), "{body}");
        }
    }
    // Outside the band the fast model decides alone, at once.
    for (id, action) in [("ctx/below", "allow"), ("ctx/sure", "suppress")] {
        let body = eventually(Duration::from_secs(30), "a fast verdict", || async {
            let (status, body) = d.get(&format!("/v1/items/{id}")).await?;
            let stated = body["verdict"]["action"] != "suppress"
                || body["statements"].as_array().is_some_and(|s| !s.is_empty());
            Ok((status == 200 && body["verdict"].is_object() && stated).then_some(body))
        })
        .await?;
        assert_eq!(body["verdict"]["decided_by"]["stage"], "fast", "{body}");
        assert_eq!(body["verdict"]["action"], action, "{body}");
        let stated = body["statements"].as_array().map_or(0, Vec::len);
        assert_eq!(stated, usize::from(action == "suppress"), "{body}");
    }
    let metrics = reqwest::get(format!("http://{}/metrics", cordon.http()))
        .await?
        .text()
        .await?;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(value(names::CONTEXT_REQUESTED_TOTAL), band.len() as f64);
    assert_eq!(value(names::CONTEXT_DECIDED_TOTAL), band.len() as f64);
    assert_eq!(value(names::CONTEXT_MODEL_INFO), 1.0);

    // A person outranks the context stage: restoring a reviewed item (or suppressing an allowed
    // one) is the verdict in force, and stays so.
    let target = reviewed
        .first()
        .cloned()
        .unwrap_or_else(|| "ctx/band/0".into());
    let (status, body) = d.get(&format!("/v1/items/{target}")).await?;
    assert_eq!(status, 200);
    let case = body["cases"].as_array().and_then(|c| c.first()).cloned();
    if let Some(case) = case {
        let id = case["id"].as_i64().context("case id")?;
        // The console's case page names the stage that decided and shows both stages' scores.
        let admin = d.admin().await?;
        let page = cordon_e2e::http_client()
            .get(format!("http://{}/console/cases/{id}", d.api))
            .header("cookie", admin.cookie())
            .send()
            .await?
            .text()
            .await?;
        assert!(page.contains("context</span> stage"), "{page}");
        assert!(page.contains("Fast model"), "{page}");
        let (status, _) = d
            .post(
                &format!("/v1/cases/{id}/decision"),
                &json!({"action": "restore", "reason": "not_illegal"}),
            )
            .await?;
        assert_eq!(status, 200);
        eventually(
            Duration::from_secs(30),
            "the person's verdict in force",
            || async {
                let (_, body) = d.get(&format!("/v1/items/{target}")).await?;
                Ok((body["verdict"]["decided_by"]["by"] == "human").then_some(()))
            },
        )
        .await?;
    }
    drop(cordon);
    Ok(())
}

/// A head trained on another fast model is not let loose on this one's scores: the context role
/// decides nothing, the fast verdicts stand, and the items the fast model queued for review reach
/// people anyway.
#[tokio::test(flavor = "multi_thread")]
async fn a_head_of_another_fast_model_decides_nothing() -> Result<()> {
    let d = Deployment::new("").await?;
    let all = candidates(&d)?;
    let band = in_band(&all, 8);
    let reviews = band.iter().filter(|(_, a, _)| a == "review").count();
    let copy = d.dir.path().join("context-model");
    std::fs::create_dir_all(&copy)?;
    for entry in std::fs::read_dir(cordon_e2e::repo_root().join("models/cordon-context"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), copy.join(entry.file_name()))?;
    }
    let card_path = copy.join("context.json");
    let mut card: Value = serde_json::from_str(&std::fs::read_to_string(&card_path)?)?;
    card["fast_model"] = json!("cordon-linear-someotherversion");
    std::fs::write(&card_path, serde_json::to_string_pretty(&card)?)?;

    let dir = copy.display().to_string();
    let cordon = d.start_with_env(
        "all",
        &[
            ("CORDON_CONTEXT__ENABLED", "true"),
            ("CORDON_CONTEXT__DIR", &dir),
        ],
    )?;
    d.wait_ready().await?;
    produce(
        &d,
        band.iter()
            .enumerate()
            .map(|(k, (text, _, _))| (format!("other/{k}"), text.as_str())),
    )?;
    let metrics = || async {
        let text = reqwest::get(format!("http://{}/metrics", cordon.http()))
            .await?
            .text()
            .await?;
        Ok::<_, anyhow::Error>(text)
    };
    eventually(Duration::from_secs(60), "every request skipped", || async {
        let text = metrics().await?;
        let skipped = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "{}{{reason=\"fast_model\"}} ",
                    names::CONTEXT_SKIPPED_TOTAL
                ))
            })
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        Ok((skipped == band.len()).then_some(()))
    })
    .await?;
    // The skips are counted before the indexer has applied every fast verdict.
    let versions = (0..band.len()).map(|k| (format!("other/{k}"), 1)).collect();
    wait_applied(&d, &versions, Duration::from_secs(60)).await?;
    let mut cases = 0;
    for k in 0..band.len() {
        let (status, body) = d.get(&format!("/v1/items/other/{k}")).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["verdict"]["decided_by"]["stage"], "fast", "{body}");
        cases += body["cases"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(cases, reviews, "the fast model's review items reach people");
    drop(cordon);
    Ok(())
}
