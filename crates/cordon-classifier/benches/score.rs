//! Normalize + featurize + infer throughput on one core, for 300-character items.
//!
//! Needs a trained model (`scripts/setup.sh`) and `ORT_DYLIB_PATH` (`source scripts/env.sh`).
//! Run: `cargo bench -p cordon-classifier --bench score`. Method and numbers: docs/benchmarks.md.

use std::path::PathBuf;

use cordon_classifier::{init_runtime, Classifier};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SNIPPETS: &[&str] = &[
    "Selling my old sofa, good condition, pickup in Berlin, 120 eur, message me for photos. ",
    "c0caine 1g 80$ fast delivery, telegram @shop, also mdma and ketamine in stock. ",
    "Police in Miami seized 200 kg of cocaine hidden in a shipment of bananas, officials said. ",
    "Мефедрон кристаллы 2г 4500р, моментальные клады по всему городу, оператор в профиле. ",
    "Vendo bicicleta de montaña usada, 200 euros, Madrid, entrega en mano, escríbeme. ",
    "fresh cc fullz daily updates, valid rate 90%, bank logs with balance, escrow accepted. ",
];

/// `n` texts of 300 characters, each a different mix of snippets.
fn texts(n: usize) -> Vec<String> {
    texts_of(n, 300)
}

/// `n` texts of `chars` characters, each a different mix of snippets.
fn texts_of(n: usize, chars: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut t = String::new();
            let mut k = i;
            while t.chars().count() < chars {
                t.push_str(SNIPPETS[k % SNIPPETS.len()]);
                k = k * 7 + 3;
            }
            t.chars().take(chars).collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/cordon/lib/libonnxruntime.so")
        });
    init_runtime(&library).expect("ONNX Runtime (source scripts/env.sh)");
    let model = std::env::var_os("CORDON_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/cordon-linear"));
    let classifier = Classifier::load(&model, 1, 1).expect("a trained model (scripts/setup.sh)");
    let mut group = c.benchmark_group("score_300_chars_one_core");
    for batch in [32usize, 256] {
        let texts = texts(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter(|| classifier.score(&texts).expect("inference"))
        });
    }
    // Long posts are scored in windows (docs/model.md): cost grows with length and sentences.
    for chars in [1_000usize, 3_000] {
        let long = texts_of(256, chars);
        group.bench_function(format!("batch_256_{chars}_chars"), |b| {
            b.iter(|| classifier.score(&long).expect("inference"))
        });
    }
    let texts = texts(256);
    let featurizer = classifier.featurizer();
    let mut ids = cordon_text::TextFeatures::new();
    group.throughput(Throughput::Elements(256));
    group.bench_function("featurize_only_256", |b| {
        b.iter(|| {
            for t in &texts {
                featurizer.featurize(t, &mut ids);
            }
        })
    });
    let features: Vec<_> = texts.iter().map(|t| classifier.featurize(t)).collect();
    group.bench_function("infer_only_256", |b| {
        b.iter(|| classifier.score_features(&features).expect("inference"))
    });
    group.bench_function("normalize_only_256", |b| {
        b.iter(|| {
            for t in &texts {
                std::hint::black_box(cordon_text::normalize(t));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
