//! The dashboards and alert rules against a real Prometheus scraping a running, fed Cordon: every
//! panel's query and every alert's expression is evaluated through Prometheus' HTTP API, and a
//! query that names a metric or label Cordon does not expose, or returns nothing, fails the test.
//!
//! Cordon runs split as in production (worker, search = indexer + API, context), each process a
//! scrape job of its own, fed with the sample feed (its malformed line is dead-lettered), items
//! from it, searches, refused requests and a moderator decision, which the moderator agreement
//! gauge then counts.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use cordon_e2e::{
    applied_verdicts, eventually, feed_versions, metric_sum, repo_root, wait_applied, write_items,
    Deployment, Prometheus, TransparencyDatabaseDouble,
};
use serde_json::{json, Value};

/// Every dashboard under deploy/grafana/dashboards, by file name.
fn dashboards() -> Result<Vec<(String, Value)>> {
    let dir = repo_root().join("deploy/grafana/dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            let name: String = path.file_name().context("name")?.to_string_lossy().into();
            out.push((
                name,
                serde_json::from_str(&text).with_context(|| format!("{path:?}"))?,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The alert rules' (name, expression) from deploy/prometheus/alerts.yml.
fn alert_rules() -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(alerts_file())?;
    let rules: Value = yaml_serde::from_str(&text)?;
    let mut out = Vec::new();
    for group in rules["groups"].as_array().context("groups")? {
        for rule in group["rules"].as_array().context("rules")? {
            out.push((
                rule["alert"].as_str().context("alert")?.to_string(),
                rule["expr"].as_str().context("expr")?.trim().to_string(),
            ));
        }
    }
    Ok(out)
}

fn alerts_file() -> PathBuf {
    repo_root().join("deploy/prometheus/alerts.yml")
}

/// The series selectors of `expr` that name Cordon's or the process collector's metrics, with
/// their label matchers: `cordon_x{a="b"}`.
fn selectors(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let rest = &expr[i..];
        if starts_word && (rest.starts_with("cordon_") || rest.starts_with("process_")) {
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let mut end = name_len;
            if rest[name_len..].starts_with('{') {
                end = name_len + rest[name_len..].find('}').map_or(0, |j| j + 1);
            }
            out.insert(rest[..end].to_string());
            i += end;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn selectors_are_found_with_their_matchers() {
    let found = selectors(
        "sum(rate(cordon_x_total{a=\"b\"}[5m])) / on (job) process_cpu_seconds_total > my_cordon_y",
    );
    assert_eq!(
        found,
        BTreeSet::from([
            "cordon_x_total{a=\"b\"}".to_string(),
            "process_cpu_seconds_total".to_string()
        ])
    );
}

/// Whether a query's answer holds at least one finite number (a series of NaN is no data).
fn has_a_number(data: &Value) -> bool {
    data["result"].as_array().is_some_and(|series| {
        series.iter().any(|s| {
            s["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(f64::is_finite)
        })
    })
}

/// Every (dashboard, panel title, expression) of the dashboards; checks each panel's data source
/// is the provisioned Prometheus and that panel ids are unique.
fn panel_queries(dashboards: &[(String, Value)]) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for (name, dashboard) in dashboards {
        let mut ids = BTreeSet::new();
        for panel in dashboard["panels"].as_array().context("panels")? {
            let id = panel["id"].as_i64().context("panel id")?;
            assert!(ids.insert(id), "{name}: panel id {id} twice");
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().context("title")?.to_string();
            assert_eq!(panel["datasource"]["uid"], "prometheus", "{name}: {title}");
            assert!(
                panel["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}: {title} says what it shows"
            );
            let targets = panel["targets"].as_array().context("targets")?;
            assert!(!targets.is_empty(), "{name}: {title} has a query");
            for target in targets {
                let expr = target["expr"].as_str().context("expr")?;
                out.push((name.clone(), title.clone(), expr.to_string()));
            }
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_and_alert_returns_data_from_a_fed_cordon() -> Result<()> {
    let dashboards = dashboards()?;
    assert!(
        dashboards.len() >= 3,
        "the pipeline, review and service dashboards"
    );
    let panels = panel_queries(&dashboards)?;
    let alerts = alert_rules()?;

    // The API role submits statements of reasons (to a test double of the Transparency
    // Database), so the submitter's series exist as in a deployment that enables it.
    let tdb = TransparencyDatabaseDouble::start("platform-token").await?;
    let d = Deployment::new(&format!(
        "[transparency]\nenabled = true\nurl = \"{}\"\ntoken = \"platform-token\"\n",
        tdb.url
    ))
    .await?;
    let context = [("CORDON_CONTEXT__ENABLED", "true")];
    let search = d.start("indexer,api")?;
    let worker = d.start_with_env("worker", &context)?;
    let context_role = d.start_with_env("context", &context)?;
    d.wait_ready().await?;
    let (search_ops, worker_ops, context_ops) = (search.http(), worker.http(), context_role.http());
    let alerts_path = alerts_file();
    let prometheus = Prometheus::start(
        &[
            ("search", &search_ops),
            ("worker", &worker_ops),
            ("context", &context_ops),
        ],
        &[alerts_path.as_path()],
    )
    .await?;
    eventually(Duration::from_secs(30), "every target scraped", || async {
        let up = prometheus.query("sum(up)").await?;
        Ok((up["result"][0]["value"][1] == "3").then_some(()))
    })
    .await
    .with_context(|| prometheus.log())?;

    // Traffic while Prometheus scrapes: the sample feed (one malformed line), 300 more items.
    d.command(&["produce", "--no-validate", "examples/sample-feed.jsonl"])?;
    let items = d.dir.path().join("items.jsonl");
    write_items(&items, 0..300, 1, 0)?;
    d.command(&["produce", &items.display().to_string()])?;
    wait_applied(&d, &feed_versions(&items)?, Duration::from_secs(60)).await?;
    eventually(Duration::from_secs(30), "verdicts committed", || async {
        Ok((applied_verdicts(&search_ops).await? >= 300.0).then_some(()))
    })
    .await?;
    // Searches and refused requests (anonymous review read, unknown path), twice, scrapes apart:
    // an HTTP series is born at its first request, so only the second round is a rate.
    for round in 0..2 {
        if round > 0 {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        for q in ["", "news", "buy"] {
            let (status, _) = d.get(&format!("/v1/search?q={q}")).await?;
            assert_eq!(status, 200);
        }
        let anonymous = reqwest::get(format!("http://{}/v1/cases", d.api)).await?;
        assert_eq!(anonymous.status().as_u16(), 401);
        let unknown = reqwest::get(format!("http://{}/no/such/route", d.api)).await?;
        assert_eq!(unknown.status().as_u16(), 404);
    }
    // One decision on a case the model queued.
    let (_, cases) = d.get("/v1/cases?source=model").await?;
    let case = cases["cases"]
        .as_array()
        .and_then(|c| c.first())
        .context("a case the model queued (the sample feed has borderline items)")?;
    let id = case["id"].as_i64().context("case id")?;
    let category = case["category"].as_str().context("category")?.to_string();
    let (status, body) = d
        .post(
            &format!("/v1/cases/{id}/decision"),
            &json!({"action": "suppress", "reason": "illegal_drugs", "version": case["version"]}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    // The agreement gauge counts it (read from the database every 30 s).
    let upheld = format!(
        "{}{{category=\"{category}\",outcome=\"upheld\"}}",
        cordon_ops::names::MODEL_REVIEWS
    );
    eventually(
        Duration::from_secs(45),
        "the decision in the agreement gauge",
        || async { Ok((metric_sum(&search_ops, &upheld).await? >= 1.0).then_some(())) },
    )
    .await?;
    // A few more scrapes, so that every rate has two samples after the traffic.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut failures = Vec::new();
    for (dashboard, title, expr) in &panels {
        match prometheus.query(expr).await {
            Ok(data) if has_a_number(&data) => {}
            Ok(data) => failures.push(format!(
                "{dashboard} / {title}: no number for {expr}: {data}"
            )),
            Err(e) => failures.push(format!("{dashboard} / {title}: {e}")),
        }
    }
    for (alert, expr) in &alerts {
        if let Err(e) = prometheus.query(expr).await {
            failures.push(format!("alert {alert}: {e}"));
        }
        // A healthy Cordon fires none of them, so each series it reads must exist instead.
        for selector in selectors(expr) {
            match prometheus.query(&format!("count({selector})")).await {
                Ok(data) if has_a_number(&data) => {}
                Ok(_) => failures.push(format!("alert {alert}: no series {selector}")),
                Err(e) => failures.push(format!("alert {alert}: {e}")),
            }
        }
    }
    // Prometheus loaded every rule and evaluates each without error.
    let groups = prometheus.rules().await?;
    let loaded: Vec<(String, String)> = groups
        .as_array()
        .context("rule groups")?
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["health"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for (alert, _) in &alerts {
        match loaded.iter().find(|(name, _)| name == alert) {
            Some((_, health)) if health == "ok" => {}
            Some((_, health)) => failures.push(format!("alert {alert}: rule health {health}")),
            None => failures.push(format!("alert {alert}: not loaded by Prometheus")),
        }
    }
    // Firing or pending (most rules wait minutes before they fire): none.
    let alerting = prometheus.query("ALERTS").await?;
    assert!(
        alerting["result"].as_array().is_some_and(|r| r.is_empty()),
        "a healthy Cordon raises no alert: {alerting}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} panel queries and {} alerts failed:\n{}",
        failures.len(),
        panels.len(),
        alerts.len(),
        failures.join("\n")
    );
    Ok(())
}
