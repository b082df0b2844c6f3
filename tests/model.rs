//! Model safety against the real ONNX Runtime: a model whose feature configuration, bytes or
//! canaries are wrong is refused; a running worker swaps in a good new model without a restart and
//! keeps serving when a candidate is bad.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use cordon_e2e::{cordon_bin, eventually, repo_root, run_with_input, Deployment};
use serde_json::{json, Value};

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

fn edit_card(dir: &Path, edit: impl FnOnce(&mut Value)) -> Result<()> {
    let path = dir.join("model.json");
    let mut card: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    edit(&mut card);
    std::fs::write(&path, serde_json::to_string_pretty(&card)?)?;
    Ok(())
}

/// Puts a canary the model cannot pass first: the first canary with its expectation flipped.
fn add_failing_canary(dir: &Path) -> Result<()> {
    let lines = std::fs::read_to_string(dir.join("canary.jsonl"))?;
    let first: Value = serde_json::from_str(lines.lines().next().context("a canary")?)?;
    let flipped =
        json!({"text": first["text"], "flagged": !first["flagged"].as_bool().unwrap_or(false)});
    std::fs::write(dir.join("canary.jsonl"), format!("{flipped}\n{lines}"))?;
    Ok(())
}

/// Runs `cordon classify` on one line with the model in `dir`; returns (success, stderr).
fn classify_with(dir: &Path) -> Result<(bool, String)> {
    let out = run_with_input(
        Command::new(cordon_bin())
            .arg("classify")
            .env("CORDON_MODEL__DIR", dir)
            .current_dir(repo_root()),
        "{\"id\": 1, \"text\": \"hello\"}\n",
    )?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn mismatched_corrupt_or_failing_models_are_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let good = repo_root().join("models/cordon-linear");
    assert!(classify_with(&good)?.0, "the trained model loads");

    let fingerprint = tmp.path().join("fingerprint");
    copy_dir(&good, &fingerprint)?;
    edit_card(&fingerprint, |c| c["features"]["buckets"] = json!(1024))?;
    let (ok, err) = classify_with(&fingerprint)?;
    assert!(!ok && err.contains("fingerprint"), "{err}");

    let version = tmp.path().join("version");
    copy_dir(&good, &version)?;
    edit_card(&version, |c| c["features"]["featurizer_version"] = json!(1))?;
    let (ok, err) = classify_with(&version)?;
    assert!(!ok && err.contains("featurizer version"), "{err}");

    let truncated = tmp.path().join("truncated");
    copy_dir(&good, &truncated)?;
    let bytes = std::fs::read(truncated.join("model.onnx"))?;
    std::fs::write(truncated.join("model.onnx"), &bytes[..bytes.len() / 2])?;
    let (ok, err) = classify_with(&truncated)?;
    assert!(!ok && err.contains("ONNX Runtime"), "{err}");

    let canary = tmp.path().join("canary");
    copy_dir(&good, &canary)?;
    add_failing_canary(&canary)?;
    let (ok, err) = classify_with(&canary)?;
    assert!(!ok && err.contains("fails canary 1"), "{err}");
    Ok(())
}

fn item(id: &str) -> String {
    json!({
        "id": id, "kind": "channel_post", "channel": {"id": "c1"},
        "text": "cocaine for sale 1g 80$ fast delivery, telegram @shop",
        "published_at": "2026-11-20T10:00:00Z", "indexed_at": "2026-11-20T10:00:01Z", "version": 1
    })
    .to_string()
}

async fn verdict_model(d: &Deployment, id: &str) -> Result<String> {
    let file = d.dir.path().join(format!("{}.jsonl", id.replace('/', "_")));
    std::fs::write(&file, item(id) + "\n")?;
    d.command(&["produce", &file.display().to_string()])?;
    eventually(Duration::from_secs(30), "the verdict", || async {
        let (status, body) = d.get(&format!("/v1/items/{id}")).await?;
        Ok((status == 200)
            .then(|| {
                body["verdict"]["decided_by"]["model_version"]
                    .as_str()
                    .map(String::from)
            })
            .flatten())
    })
    .await
}

async fn reloads(worker_http: &str, outcome: &str) -> Result<u64> {
    let text = reqwest::get(format!("http://{worker_http}/metrics"))
        .await?
        .text()
        .await?;
    let needle = format!(
        "{}{{outcome=\"{outcome}\"}} ",
        cordon_ops::names::MODEL_RELOADS_TOTAL
    );
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Replaces the model directory the way a deployment would: a complete directory renamed in.
fn swap_in(candidate: &Path, live: &Path) -> Result<()> {
    let old = live.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    std::fs::rename(live, &old)?;
    std::fs::rename(candidate, live)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_reload_swaps_good_models_and_refuses_bad_ones() -> Result<()> {
    let models = tempfile::tempdir()?;
    let live = models.path().join("live");
    copy_dir(&repo_root().join("models/cordon-linear"), &live)?;
    let d = Deployment::new(&format!("[model]\ndir = \"{}\"\n", live.display())).await?;
    let worker = d.start("worker")?;
    let _indexer = d.start("indexer,api")?;
    d.wait_ready().await?;
    let v1 = verdict_model(&d, "reload/1").await?;

    // A truncated model with a new version: refused, the old one keeps serving.
    let bad = models.path().join("bad");
    copy_dir(&live, &bad)?;
    let bytes = std::fs::read(bad.join("model.onnx"))?;
    std::fs::write(bad.join("model.onnx"), &bytes[..bytes.len() / 3])?;
    edit_card(&bad, |c| c["version"] = json!("broken-1"))?;
    swap_in(&bad, &live)?;
    eventually(
        Duration::from_secs(20),
        "the bad model to be refused",
        || async { Ok((reloads(&worker.http(), "refused").await? >= 1).then_some(())) },
    )
    .await
    .with_context(|| worker.log())?;
    assert!(worker.log().contains("model refused"));
    assert_eq!(verdict_model(&d, "reload/2").await?, v1);

    // A good new model: picked up without a restart.
    let new = models.path().join("new");
    d.command(&[
        "train",
        "--seed",
        "7",
        "--per-template",
        "20",
        "--out",
        &new.display().to_string(),
    ])?;
    swap_in(&new, &live)?;
    eventually(
        Duration::from_secs(20),
        "the new model to be loaded",
        || async { Ok((reloads(&worker.http(), "loaded").await? >= 1).then_some(())) },
    )
    .await
    .with_context(|| worker.log())?;
    let v2 = verdict_model(&d, "reload/3").await?;
    assert_ne!(v2, v1);

    // SIGHUP forces a reload of the same version: a broken canary gets it refused.
    add_failing_canary(&live)?;
    let refused_before = reloads(&worker.http(), "refused").await?;
    worker.signal("HUP")?;
    eventually(
        Duration::from_secs(20),
        "the SIGHUP reload to be refused",
        || async { Ok((reloads(&worker.http(), "refused").await? > refused_before).then_some(())) },
    )
    .await?;
    assert_eq!(verdict_model(&d, "reload/4").await?, v2);
    Ok(())
}

#[test]
fn eval_reports_rates_and_rejects_bad_files() -> Result<()> {
    let (ok, json, err) = eval_json(&["--data", "models/eval/heldout.jsonl"])?;
    assert!(ok, "{err}");
    let report = &json["report"];
    for key in ["precision", "recall", "f1", "false_positive_rate"] {
        for part in ["overall", "suppressed"] {
            let v = report[part][key].as_f64().context(key)?;
            assert!((0.0..=1.0).contains(&v), "{part}.{key} = {v}");
        }
    }
    assert!(report["per_category"]["weapons"]["recall"].is_number());
    assert!(report["hard_negatives"]["news"]["false_positive_rate"].is_number());
    assert!(report["hard_negatives_suppressed"]["news"]["false_positive_rate"].is_number());
    assert!(report["per_language"]["ar"]["recall"].is_number());
    assert!(json["adversarial"]["long_preamble"]["within_margin"].is_number());
    // The card records the thresholds chosen on validation data and the numbers behind them,
    // and the model beats the keyword baseline on the independent set nothing was chosen on.
    let card: Value = serde_json::from_str(&std::fs::read_to_string(
        repo_root().join("models/cordon-linear/model.json"),
    )?)?;
    let calibration = &card["metrics"]["calibration"];
    assert_eq!(calibration["targets"]["suppress_precision"], json!(0.99));
    for (category, c) in calibration["per_category"]
        .as_object()
        .context("calibration")?
    {
        for key in ["review_at", "suppress_at"] {
            let (policy, chosen) = (
                card["policy"]["thresholds"][category][key].as_f64(),
                c["thresholds"][key].as_f64(),
            );
            assert!(
                matches!((policy, chosen), (Some(p), Some(c)) if (p - c).abs() < 1e-6),
                "{category}.{key}: the card's policy is the calibrated one"
            );
        }
        let at = c["thresholds"]["suppress_at"]
            .as_f64()
            .context("suppress_at")?;
        let estimate = c["suppress_precision_estimate"]
            .as_f64()
            .context("estimate")?;
        assert!(at > 1.0 || estimate >= 0.99, "{category}: {c}");
    }
    let second = card["metrics"]["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["used_for_validation"] == json!(false)))
        .context("a file nothing was chosen on")?;
    let f1 = |k: &str| second[k]["overall"]["f1"].as_f64().unwrap_or(0.0);
    assert!(f1("model") > f1("baseline"), "{second}");

    let text = Command::new(cordon_bin())
        .args(["eval", "--data", "models/eval/heldout.jsonl"])
        .current_dir(repo_root())
        .output()?;
    assert!(String::from_utf8(text.stdout)?.contains("false-positive rate"));

    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"text\": \"x\", \"label\": 1}\n{\"text\": \"y\", \"label\": 7}\n",
    )?;
    let out = Command::new(cordon_bin())
        .args(["eval", "--data", &bad.display().to_string()])
        .current_dir(repo_root())
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    Ok(())
}

/// Offers wrapped in markup, or with unrelated paragraphs, a long preamble or filler around them,
/// keep their score (within the margin) and their decision; legitimate texts treated the same way
/// are not flagged for it. Inline filler and Markdown around short offers are held to the
/// measured, lower bar docs/model.md states.
#[test]
fn adversarial_variants_keep_the_bare_offers_score() -> Result<()> {
    for data in ["models/eval/heldout.jsonl", "models/eval/second.jsonl"] {
        let (ok, json, err) = eval_json(&["--data", data])?;
        assert!(ok, "{err}");
        let variants = json["adversarial"].as_object().context("adversarial")?;
        assert_eq!(variants.len(), 9, "{data}");
        for (name, r) in variants {
            let get = |k: &str| r[k].as_f64().with_context(|| format!("{data} {name}.{k}"));
            let separated = [
                "paragraph_after",
                "paragraph_before",
                "filler_around",
                "long_preamble",
                "html",
                "bbcode",
            ]
            .contains(&name.as_str());
            let (margin, flagged) = if separated {
                (0.99, 0.99)
            } else {
                (0.75, 0.75)
            };
            assert!(get("within_margin")? >= margin, "{data} {name}: {r}");
            assert!(get("still_flagged")? >= flagged, "{data} {name}: {r}");
            assert!(get("still_suppressed")? >= flagged, "{data} {name}: {r}");
            assert!(
                get("legitimate_newly_flagged")? <= 0.05,
                "{data} {name}: {r}"
            );
        }
    }
    Ok(())
}

/// Runs `cordon eval --json ARGS`: (success, the JSON printed, stderr).
fn eval_json(args: &[&str]) -> Result<(bool, Value, String)> {
    let out = Command::new(cordon_bin())
        .args(["eval", "--json"])
        .args(args)
        .current_dir(repo_root())
        .output()?;
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Ok((
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `cordon eval --json` with the context model in `dir` on the second evaluation set.
fn eval_with_context(dir: &Path) -> Result<(bool, Value, String)> {
    let dir = dir.display().to_string();
    eval_json(&["--data", "models/eval/second.jsonl", "--context", &dir])
}

/// The context stage's model follows the same rules as the fast one: it is refused when it was
/// trained on another encoder, when its head does not load and when it fails a canary; a good one
/// reports the cascade and the share of texts it decides.
#[test]
fn context_models_are_checked_and_the_cascade_is_reported() -> Result<()> {
    let live = repo_root().join("models/cordon-context");
    let (ok, json, err) = eval_with_context(&live)?;
    assert!(ok, "{err}");
    let cascade = &json["cascade"];
    let share = cascade["context_share"].as_f64().context("context_share")?;
    assert!(share > 0.0 && share < 1.0, "{cascade}");
    let f1 = |k: &str| cascade[k]["overall"]["f1"].as_f64().unwrap_or(0.0);
    assert!(
        f1("cascade") > f1("fast"),
        "the cascade beats the fast model: {cascade}"
    );

    let dir = tempfile::tempdir()?;
    let candidate = dir.path().join("candidate");
    let card = |dir: &Path, edit: &dyn Fn(&mut Value)| -> Result<()> {
        let path = dir.join("context.json");
        let mut card: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        edit(&mut card);
        std::fs::write(&path, serde_json::to_string_pretty(&card)?)?;
        Ok(())
    };
    copy_dir(&live, &candidate)?;
    card(&candidate, &|c| c["encoder_sha256"] = json!("0".repeat(64)))?;
    let (ok, _, err) = eval_with_context(&candidate)?;
    assert!(!ok && err.contains("trained on encoder"), "{err}");

    copy_dir(&live, &candidate)?;
    std::fs::write(candidate.join("head.onnx"), b"not a graph")?;
    let (ok, _, err) = eval_with_context(&candidate)?;
    assert!(!ok && err.contains("ONNX Runtime"), "{err}");

    copy_dir(&live, &candidate)?;
    let lines = std::fs::read_to_string(candidate.join("canary.jsonl"))?;
    let mut first: Value = serde_json::from_str(lines.lines().next().context("a canary")?)?;
    first["flagged"] = json!(!first["flagged"].as_bool().unwrap_or(false));
    std::fs::write(candidate.join("canary.jsonl"), format!("{first}\n{lines}"))?;
    let (ok, _, err) = eval_with_context(&candidate)?;
    assert!(!ok && err.contains("fails canary 1"), "{err}");
    Ok(())
}
