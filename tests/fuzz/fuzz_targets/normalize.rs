//! Any text (invalid UTF-8 replaced) goes through markup stripping, normalization, windowed
//! featurization and explanation without a panic; every window stays within the configured
//! number of features, and explanation names the same window's features.
#![no_main]

use cordon_text::{normalize, strip_markup, FeatureConfig, Featurizer, TextFeatures};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = strip_markup(&text);
    let normalized = normalize(&text);
    let _ = normalize(&normalized);
    let featurizer = Featurizer::new(FeatureConfig::default());
    let mut features = TextFeatures::new();
    featurizer.featurize(&text, &mut features);
    assert!(!features.is_empty());
    assert!(features.windows().all(|w| w.len() <= featurizer.config().max_features));
    let last = features.len() - 1;
    let named = featurizer.explain(&text, last);
    assert_eq!(named.len(), features.windows().nth(last).map_or(0, <[u32]>::len));
    assert!(featurizer.explain(&text, features.len()).is_empty());
});
