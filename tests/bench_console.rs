//! Console page speed: server time of the queue, case, stats and audit pages with a large queue.
//!
//! `cargo bench -p cordon-e2e --bench console` (after `scripts/setup.sh`; `CORDON_BENCH_ITEMS`
//! sets the queue size, default 20,000). Starts a broker, PostgreSQL database and one `cordon`
//! process, feeds items that are all queued for review (100 per channel), signs in, then
//! requests each page repeatedly and reports the server time (`Server-Timing`) and the time the
//! client waited, as percentiles. Results go to stdout and `target/console-bench.json`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{eventually, Deployment, Session, REVIEW_EVERYTHING};
use serde_json::json;

const TEXTS: [&str; 6] = [
    "Cocaine for sale 1g 80$ fast delivery, write to @shop",
    "Selling my sofa, good condition, pickup in Berlin",
    "Продам мефедрон 5г, закладки по городу, пишите в лс",
    "Fresh cvv dumps with pin, balance checked, escrow ok",
    "Glock 19 with two magazines, no papers needed, cash only",
    "Vendo pasaporte falso, calidad premium, envío discreto",
];
const LANGS: [&str; 6] = ["en", "en", "ru", "en", "en", "es"];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Timing {
    server_ms: Vec<f64>,
    client_ms: Vec<f64>,
}

async fn measure(session: &Session, api: &str, paths: &[String]) -> Result<Timing> {
    let client = reqwest::Client::new();
    let mut t = Timing {
        server_ms: Vec::new(),
        client_ms: Vec::new(),
    };
    for path in paths {
        let started = Instant::now();
        let response = client
            .get(format!("http://{api}{path}"))
            .header("cookie", session.cookie())
            .send()
            .await?;
        let status = response.status();
        let server = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("dur=").nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .context("server-timing header")?;
        response.bytes().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status}");
        t.client_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        t.server_ms.push(server);
    }
    t.server_ms.sort_by(f64::total_cmp);
    t.client_ms.sort_by(f64::total_cmp);
    Ok(t)
}

#[tokio::main]
async fn main() -> Result<()> {
    let items: usize = std::env::var("CORDON_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let requests = 200;
    let d = Deployment::new(REVIEW_EVERYTHING).await?;
    let cordon = d.start("all")?;
    d.wait_ready().await?;
    let feed = d.dir.path().join("feed.jsonl");
    let mut lines = String::new();
    for n in 0..items {
        let k = n % TEXTS.len();
        lines.push_str(
            &json!({
                "id": format!("bench:{n}"),
                "kind": "channel_post",
                "channel": {"id": format!("bench:channel/{}", n / 100), "title": "Bench channel", "subscribers": n},
                "text": format!("{} #{n}", TEXTS[k]),
                "lang": LANGS[k],
                "published_at": "2026-11-01T10:00:00Z",
                "indexed_at": "2026-11-01T10:00:01Z",
                "version": 1
            })
            .to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(&feed, lines)?;
    eprintln!("[bench] queueing {items} items");
    let started = Instant::now();
    d.command(&["produce", &feed.display().to_string()])?;
    let pool = sqlx::PgPool::connect(&d.db.url).await?;
    let last = std::sync::atomic::AtomicI64::new(-1);
    let budget = Duration::from_secs(60 + items as u64 / 50);
    // The worker records every item's version before it queues the item's case.
    let scored = eventually(budget, "every item to be scored", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM item_versions")
            .fetch_one(&pool)
            .await?;
        if last.swap(n, std::sync::atomic::Ordering::Relaxed) != n {
            eprint!("\r[bench] {n} items scored");
        }
        Ok((n as usize >= items).then_some(()))
    })
    .await;
    if let Err(e) = scored {
        let log = cordon.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        anyhow::bail!(
            "{e:#}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cases: i64 = sqlx::query_scalar("SELECT count(*) FROM cases")
        .fetch_one(&pool)
        .await?;
    eprintln!(
        " in {:.0} s; {cases} queued for review (the rest scored 1.0 and were suppressed)",
        started.elapsed().as_secs_f64()
    );
    anyhow::ensure!(
        cases > 1100,
        "too few cases to measure: {cases} (raise CORDON_BENCH_ITEMS)"
    );
    let admin = d.admin().await?;
    // Some history: a thousand decisions, so stats and audit pages have rows to read.
    let (_, bulk) = admin
        .post(
            "/v1/cases/bulk-decision",
            &json!({"case_ids": (1..=1000).collect::<Vec<i64>>(), "action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    anyhow::ensure!(bulk["decided"] == 1000, "bulk decision: {bulk}");
    // Wait until the index has the items (the case page reads content and the channel).
    eventually(
        Duration::from_secs(120),
        "the index to hold every item",
        || async {
            let (_, item) = admin.get(&format!("/v1/items/bench:{}", items - 1)).await?;
            Ok((item["indexed"] == true).then_some(()))
        },
    )
    .await?;

    let case_ids: Vec<i64> = (0..requests)
        .map(|i| 1001 + (i as i64 * 7919) % (cases - 1000))
        .collect();
    let pages: Vec<(&str, Vec<String>)> = vec![
        ("queue", vec!["/console".to_string(); requests]),
        (
            "queue filtered (language ru, older than 0 h)",
            vec!["/console?language=ru&min_age_hours=0".to_string(); requests],
        ),
        (
            "case view",
            case_ids
                .iter()
                .map(|id| format!("/console/cases/{id}"))
                .collect(),
        ),
        ("stats", vec!["/console/stats".to_string(); requests]),
        ("audit log", vec!["/console/audit".to_string(); requests]),
    ];
    let mut report = Vec::new();
    println!(
        "\nConsole pages, {items} items, {cases} cases, {requests} sequential requests each (ms)"
    );
    println!(
        "| page | server p50 | server p95 | server p99 | server max | client p50 | client p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, paths) in &pages {
        measure(admin, &d.api, &paths[..10]).await?; // warm-up
        let t = measure(admin, &d.api, paths).await?;
        let s = &t.server_ms;
        let c = &t.client_ms;
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            percentile(s, 0.5),
            percentile(s, 0.95),
            percentile(s, 0.99),
            s[s.len() - 1],
            percentile(c, 0.5),
            percentile(c, 0.99)
        );
        report.push(json!({
            "page": name,
            "server_ms": {"p50": percentile(s, 0.5), "p95": percentile(s, 0.95), "p99": percentile(s, 0.99), "max": s[s.len() - 1]},
            "client_ms": {"p50": percentile(c, 0.5), "p99": percentile(c, 0.99)},
        }));
    }
    let out = cordon_e2e::repo_root().join("target/console-bench.json");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(
            &json!({"items": items, "cases": cases, "requests": requests, "pages": report}),
        )?,
    )?;
    eprintln!("[bench] results in {}", out.display());
    Ok(())
}
