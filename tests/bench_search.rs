//! Public search latency on a large index while ingestion runs at full speed.
//!
//! `cargo bench -p cordon-e2e --bench search` (`CORDON_BENCH_SEARCH_ITEMS`, default 1,000,000).
//! Builds an index of that many ~300-character items with Cordon's index code (the indexer's
//! writer settings), then keeps ingesting new items as fast as one thread can — committing every
//! 100 ms like the indexer — while another thread runs public searches (one- and two-word
//! queries, first page of 20, with the total count) back to back for 30 s through the same
//! `SearchHandle` the API uses. Reports search latency percentiles, the median number of matches
//! per query and the ingest rate reached meanwhile. Two vocabularies, one after the other: a
//! realistic one (20,000 words with Zipf frequencies; queries of content words) and the worst
//! case (24 words: every query matches nearly every item).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use cordon_domain::ContentItem;
use cordon_index::{ContentIndex, IndexSettings};

/// The words items and queries are made of.
enum Vocabulary {
    /// 20,000 words with Zipf frequencies (rank r has weight 1/r), like natural text: queries
    /// draw content words (ranks 50 to 5,000), so they match a realistic share of the index.
    Zipf {
        words: Vec<String>,
        cumulative: Vec<f64>,
    },
    /// The worst case: 24 words, so every query matches nearly every item.
    Tiny,
}

const TINY: [&str; 24] = [
    "sofa", "delivery", "price", "city", "bike", "phone", "shop", "fresh", "cheap", "new",
    "channel", "today", "write", "sale", "coffee", "books", "garden", "tickets", "course",
    "jacket", "laptop", "camera", "guitar", "lamp",
];

impl Vocabulary {
    fn zipf() -> Vocabulary {
        const SYLLABLES: [&str; 16] = [
            "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "de", "po", "la", "me", "ni", "go",
            "ba", "zu",
        ];
        let words = (0..20_000usize)
            .map(|mut k| {
                let mut w = String::new();
                loop {
                    w.push_str(SYLLABLES[k % 16]);
                    k /= 16;
                    if k == 0 {
                        break w;
                    }
                }
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=20_000)
            .map(|r| {
                total += 1.0 / f64::from(r);
                total
            })
            .collect();
        Vocabulary::Zipf { words, cumulative }
    }

    /// A word for the pseudo-random number `x`.
    fn word(&self, x: u64) -> &str {
        match self {
            Vocabulary::Zipf { words, cumulative } => {
                let total = cumulative[cumulative.len() - 1];
                let u = (x >> 11) as f64 / (1u64 << 53) as f64 * total;
                &words[cumulative.partition_point(|c| *c < u).min(words.len() - 1)]
            }
            Vocabulary::Tiny => TINY[(x % 24) as usize],
        }
    }

    /// A query of one or two words.
    fn query(&self, q: u64) -> String {
        let pick = |x: u64| match self {
            Vocabulary::Zipf { words, .. } => words[50 + (next(x) % 4_950) as usize].clone(),
            Vocabulary::Tiny => TINY[(next(x) % 24) as usize].to_string(),
        };
        if q.is_multiple_of(2) {
            pick(q)
        } else {
            format!("{} {}", pick(q), pick(q ^ 0x9e37_79b9))
        }
    }
}

/// splitmix64: a pseudo-random number from a counter.
fn next(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn item(vocabulary: &Vocabulary, n: usize) -> Result<ContentItem> {
    let mut text = String::with_capacity(320);
    let mut x = n as u64;
    while text.len() < 300 {
        x = next(x);
        text.push_str(vocabulary.word(x));
        text.push(' ');
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
    println!("| vocabulary | index | searches | p50 ms | p95 ms | p99 ms | max ms | matches per query (median) | ingest meanwhile |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, vocabulary) in [
        ("Zipf, 20,000 words", Vocabulary::zipf()),
        ("worst case, 24 words", Vocabulary::Tiny),
    ] {
        run(name, Arc::new(vocabulary), n)?;
    }
    Ok(())
}

/// Builds the index, then searches while ingesting; prints one table row.
fn run(name: &str, vocabulary: Arc<Vocabulary>, n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut index, search) = ContentIndex::open(&IndexSettings {
        dir: dir.path().to_path_buf(),
        writer_memory_bytes: 100_000_000,
        premoderation: false,
    })?;
    let started = Instant::now();
    for i in 0..n {
        index.apply_content(item(&vocabulary, i)?)?;
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
        let vocabulary = Arc::clone(&vocabulary);
        std::thread::spawn(move || -> Result<()> {
            let mut last_commit = Instant::now();
            let mut i = n;
            while !stop.load(Ordering::Relaxed) {
                index.apply_content(item(&vocabulary, i)?)?;
                i += 1;
                ingested.fetch_add(1, Ordering::Relaxed);
                if last_commit.elapsed() >= Duration::from_millis(100) {
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
    let mut matches = Vec::new();
    let mut q = 0u64;
    while started.elapsed() < Duration::from_secs(30) {
        let query = vocabulary.query(q);
        let t = Instant::now();
        let page = search.search(&cordon_index::PlainQuery::parse(&query)?, 0, 20)?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        matches.push(page.total);
        q += 1;
    }
    matches.sort_unstable();
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    ingest
        .join()
        .map_err(|_| anyhow::anyhow!("ingest thread panicked"))??;
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "| {name} | {n} items | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} items/s |",
        latencies.len(),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        latencies[latencies.len() - 1],
        matches[matches.len() / 2],
        ingested.load(Ordering::Relaxed) as f64 / seconds
    );
    Ok(())
}
