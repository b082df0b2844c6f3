//! Any text (invalid UTF-8 replaced) goes through normalization, featurization and explanation
//! without a panic, and never yields more features than configured.
#![no_main]

use cordon_text::{normalize, FeatureConfig, Featurizer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let normalized = normalize(&text);
    let _ = normalize(&normalized);
    let featurizer = Featurizer::new(FeatureConfig::default());
    let mut ids = Vec::new();
    featurizer.featurize(&text, &mut ids);
    assert!(ids.len() <= featurizer.config().max_features);
    let _ = featurizer.explain(&text);
});
