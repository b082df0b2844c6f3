//! Public search latency on a large index while ingestion runs at full speed.
//!
//! `cargo bench -p cordon-e2e --bench search` (`CORDON_BENCH_SEARCH_ITEMS`, default 1,000,000).
//! Builds an index of that many ~300-character items with Cordon's index code (the indexer's
//! writer settings), then keeps ingesting new items as fast as one thread can — committing every
//! 250 ms like the indexer — while another thread runs public searches (one- and two-word
//! queries, first page of 20) back to back for 30 s through the same `SearchHandle` the API
//! uses. Reports search latency percentiles and the ingest rate reached meanwhile.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use cordon_domain::ContentItem;
use cordon_index::{ContentIndex, IndexSettings};

const WORDS: [&str; 24] = [
    "sofa", "delivery", "price", "city", "bike", "phone", "shop", "fresh", "cheap", "new",
    "channel", "today", "write", "sale", "coffee", "books", "garden", "tickets", "course",
    "jacket", "laptop", "camera", "guitar", "lamp",
];

fn item(n: usize) -> Result<ContentItem> {
    let mut text = String::with_capacity(320);
    let mut k = n;
    while text.len() < 300 {
        text.push_str(WORDS[k % WORDS.len()]);
        text.push(' ');
        k = k.wrapping_mul(2_654_435_761).wrapping_add(12_345) >> 3;
    }
    let json = serde_json::json!({
        "id": format!("s/{n}"), "kind": "listing",
        "channel": {"id": format!("c/{}", n % 5000)}, "text": text, "lang": "en",
        "published_at": "2026-11-01T10:00:00Z", "indexed_at": "2026-11-01T10:00:00Z", "version": 1
    });
    Ok(ContentItem::decode(
        Some(json.to_string().as_bytes()),
        &Default::default(),
    )?)
}

fn main() -> Result<()> {
    let n: usize = std::env::var("CORDON_BENCH_SEARCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let (mut index, search) = ContentIndex::open(&IndexSettings {
        dir: dir.path().to_path_buf(),
        writer_memory_bytes: 100_000_000,
        premoderation: false,
    })?;
    let started = Instant::now();
    for i in 0..n {
        index.apply_content(item(i)?)?;
        if i % 100_000 == 99_999 {
            index.commit(&Default::default())?;
            eprint!("\r[bench] {} items indexed", i + 1);
        }
    }
    index.commit(&Default::default())?;
    eprintln!(
        "\r[bench] {n} items indexed in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let ingested = Arc::new(AtomicUsize::new(0));
    let ingest = {
        let (stop, ingested) = (Arc::clone(&stop), Arc::clone(&ingested));
        std::thread::spawn(move || -> Result<()> {
            let mut last_commit = Instant::now();
            let mut i = n;
            while !stop.load(Ordering::Relaxed) {
                index.apply_content(item(i)?)?;
                i += 1;
                ingested.fetch_add(1, Ordering::Relaxed);
                if last_commit.elapsed() >= Duration::from_millis(250) {
                    index.commit(&Default::default())?;
                    last_commit = Instant::now();
                }
            }
            index.commit(&Default::default())?;
            Ok(())
        })
    };
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut q = 0usize;
    while started.elapsed() < Duration::from_secs(30) {
        let query = if q.is_multiple_of(2) {
            WORDS[q % WORDS.len()].to_string()
        } else {
            format!(
                "{} {}",
                WORDS[q % WORDS.len()],
                WORDS[(q * 7) % WORDS.len()]
            )
        };
        let t = Instant::now();
        let page = search.search(&query, 0, 20)?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(page.total > 0);
        q += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    ingest
        .join()
        .map_err(|_| anyhow::anyhow!("ingest thread panicked"))??;
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!("| index | searches | p50 ms | p95 ms | p99 ms | max ms | ingest meanwhile |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {n} items | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} items/s |",
        latencies.len(),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        latencies[latencies.len() - 1],
        ingested.load(Ordering::Relaxed) as f64 / seconds
    );
    Ok(())
}
