//! Context-stage throughput on one core: tokenize + encode + head, for 300-character items and
//! for short (15-word) items, in batches of 16 (the context role's default batch).
//!
//! Needs the converted encoder and the trained context model (`scripts/setup.sh`) and
//! `ORT_DYLIB_PATH` (`source scripts/env.sh`). Run:
//! `taskset -c 0 cargo bench -p cordon-context --bench context`. Method and numbers:
//! docs/benchmarks.md.

use std::path::PathBuf;
use std::sync::Arc;

use cordon_classifier::init_runtime;
use cordon_context::{ContextModel, Device, Encoder};
use cordon_domain::Scores;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SNIPPETS: &[&str] = &[
    "Selling my old sofa, good condition, pickup in Berlin, 120 eur, message me for photos. ",
    "c0caine 1g 80$ fast delivery, telegram @shop, also mdma and ketamine in stock. ",
    "Police in Miami seized 200 kg of cocaine hidden in a shipment of bananas, officials said. ",
    "Мефедрон кристаллы 2г 4500р, моментальные клады по всему городу, оператор в профиле. ",
    "Vendo bicicleta de montaña usada, 200 euros, Madrid, entrega en mano, escríbeme. ",
    "fresh cc fullz daily updates, valid rate 90%, bank logs with balance, escrow accepted. ",
];

fn texts(n: usize, words: Option<usize>) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut t = String::new();
            let mut k = i;
            while t.chars().count() < 300 {
                t.push_str(SNIPPETS[k % SNIPPETS.len()]);
                k = k * 7 + 3;
            }
            match words {
                Some(w) => t.split_whitespace().take(w).collect::<Vec<_>>().join(" "),
                None => t.chars().take(300).collect(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default());
    let cache = std::env::var_os("CORDON_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/cordon"));
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("lib/libonnxruntime.so"));
    init_runtime(&library).expect("ONNX Runtime (source scripts/env.sh)");
    let encoder = Encoder::load(
        &cache.join("encoder/multilingual-e5-small"),
        1,
        1,
        Device::Cpu,
    )
    .expect("the converted encoder (scripts/setup.sh)");
    let model = ContextModel::load(
        &root.join("models/cordon-context"),
        Arc::new(encoder),
        1,
        1,
        Device::Cpu,
    )
    .expect("a trained context model (scripts/setup.sh)");
    let mut group = c.benchmark_group("context_one_core");
    group.sample_size(10);
    for (name, words) in [("300_chars", None), ("15_words", Some(15))] {
        let batch = texts(16, words);
        let fast = vec![Scores::default(); batch.len()];
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_function(format!("batch_16_{name}"), |b| {
            b.iter(|| model.score(&batch, &fast).expect("inference"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
