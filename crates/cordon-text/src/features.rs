//! Hashed n-gram features.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::normalize::normalize;

/// Version of the featurization algorithm. Bump it whenever the same text and configuration
/// would produce different feature ids; models trained with another version are refused.
pub const FEATURIZER_VERSION: u32 = 4;

/// How text becomes feature ids. Stored in every model card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// The featurizer algorithm version ([`FEATURIZER_VERSION`] when trained).
    pub featurizer_version: u32,
    /// Number of hash buckets, including the reserved padding id 0.
    pub buckets: u32,
    /// At most this many distinct feature ids per text.
    pub max_features: usize,
    /// Word n-grams from 1 up to this length.
    pub word_ngrams: usize,
    /// Smallest character n-gram (within a word, with boundary marks).
    pub char_ngram_min: usize,
    /// Largest character n-gram.
    pub char_ngram_max: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            featurizer_version: FEATURIZER_VERSION,
            buckets: 1 << 18,
            max_features: 128,
            word_ngrams: 2,
            char_ngram_min: 3,
            char_ngram_max: 5,
        }
    }
}

/// A feature configuration this build cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// The model was trained with another featurizer algorithm.
    #[error("model was featurized with featurizer version {found}, this build has {expected}")]
    Version {
        /// The version the model names.
        found: u32,
        /// This build's version.
        expected: u32,
    },
    /// The card's fingerprint does not match its configuration.
    #[error("feature config fingerprint {found} does not match the config ({expected})")]
    Fingerprint {
        /// The fingerprint the model names.
        found: String,
        /// The fingerprint of the configuration it names.
        expected: String,
    },
    /// A value is out of range.
    #[error("invalid feature config: {0}")]
    Invalid(&'static str),
}

impl FeatureConfig {
    /// A short stable hash of the configuration and the algorithm version.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        format!("{:016x}", xxh3_64_with_seed(&canonical, 0))
    }

    /// Checks that this build can reproduce the features of a model trained with this configuration,
    /// whose card recorded `fingerprint`.
    pub fn check(&self, fingerprint: &str) -> Result<(), FeatureError> {
        if self.featurizer_version != FEATURIZER_VERSION {
            return Err(FeatureError::Version {
                found: self.featurizer_version,
                expected: FEATURIZER_VERSION,
            });
        }
        if self.buckets < 2 || self.max_features == 0 || self.word_ngrams == 0 {
            return Err(FeatureError::Invalid(
                "buckets must be >= 2, max_features and word_ngrams >= 1",
            ));
        }
        if self.char_ngram_min > self.char_ngram_max {
            return Err(FeatureError::Invalid(
                "char_ngram_min must not exceed char_ngram_max",
            ));
        }
        let expected = self.fingerprint();
        if expected != fingerprint {
            return Err(FeatureError::Fingerprint {
                found: fingerprint.to_string(),
                expected,
            });
        }
        Ok(())
    }
}

/// Turns text into a sorted set of feature ids in `1..buckets` (0 is padding).
///
/// Features of a normalized text: word n-grams (numbers stand as their shape `0` in them), each
/// word (not numbers) with repeated letters squeezed (`weed` → `wed`, `cocaaine` → `cocaine`), and character
/// n-grams of each word with boundary marks (`<coc`, `ine>`).
#[derive(Debug, Clone)]
pub struct Featurizer {
    config: FeatureConfig,
}

thread_local! {
    /// A bit per bucket, all clear between calls: the distinct-feature filter of `featurize`.
    static SEEN: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

const SEED_WORD: u64 = 0x5752_4431;
const SEED_CHAR: u64 = 0x4348_4152;
const SEED_SQUEEZED: u64 = 0x5351_5a44;

/// A feature with its readable form, from [`Featurizer::explain`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamedFeature {
    /// The feature id.
    pub id: u32,
    /// What it stands for: `w:buy cocaine`, `s:cocaine`, `c:<coc`.
    pub name: String,
}

impl Featurizer {
    /// A featurizer for `config`.
    pub fn new(config: FeatureConfig) -> Featurizer {
        Featurizer { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Normalizes `text` and writes its feature ids into `out` (cleared first): distinct, in the
    /// order they first occur (word unigrams of the whole text, then bigrams, then each word's
    /// squeezed form and character n-grams), at most `max_features` of them.
    pub fn featurize(&self, text: &str, out: &mut Vec<u32>) {
        out.clear();
        SEEN.with_borrow_mut(|seen| {
            seen.resize((self.config.buckets as usize).div_ceil(64), 0);
            let max = self.config.max_features;
            self.each(text, |id, _| {
                let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    out.push(id);
                }
                out.len() < max
            });
            for id in out.iter() {
                seen[*id as usize / 64] = 0;
            }
        });
    }

    /// The features of `text` with readable names: the ids [`Featurizer::featurize`] gives, in
    /// the same order. Slower; for explanations.
    pub fn explain(&self, text: &str) -> Vec<NamedFeature> {
        let mut named: Vec<NamedFeature> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        self.each(text, |id, name| {
            if seen.insert(id) {
                named.push(NamedFeature { id, name: name() });
            }
            named.len() < self.config.max_features
        });
        named
    }

    /// Calls `emit(id, name)` for every feature occurrence of `text` until it returns false;
    /// `name` renders the feature.
    fn each(&self, text: &str, mut emit: impl FnMut(u32, &dyn Fn() -> String) -> bool) {
        let normalized = normalize(text);
        let words = tokens(&normalized);
        let shapes: Vec<&str> = words
            .iter()
            .map(|w| {
                if w.chars().all(|c| c.is_ascii_digit()) {
                    "0"
                } else {
                    *w
                }
            })
            .collect();
        // Unigrams of the whole text first, then bigrams, ...: a long text is covered word by
        // word before character n-grams fill what room is left.
        for len in 1..=self.config.word_ngrams {
            for i in 0..shapes.len().saturating_sub(len - 1) {
                let gram = &shapes[i..i + len];
                let mut h = SEED_WORD;
                for (k, word) in gram.iter().enumerate() {
                    h = xxh3_64_with_seed(word.as_bytes(), h ^ (k as u64));
                }
                if !emit(self.bucket(h), &|| format!("w:{}", gram.join(" "))) {
                    return;
                }
            }
        }
        let mut padded = String::new();
        let mut squeezed = String::new();
        let mut bounds: Vec<usize> = Vec::new();
        for word in &words {
            squeezed.clear();
            let mut last = None;
            for c in word.chars() {
                if Some(c) != last {
                    squeezed.push(c);
                }
                last = Some(c);
            }
            if squeezed.chars().count() > 1 && !squeezed.chars().all(|c| c.is_ascii_digit()) {
                let id = self.bucket(xxh3_64_with_seed(squeezed.as_bytes(), SEED_SQUEEZED));
                if !emit(id, &|| format!("s:{squeezed}")) {
                    return;
                }
            }
            padded.clear();
            padded.push('<');
            padded.push_str(word);
            padded.push('>');
            bounds.clear();
            bounds.extend(padded.char_indices().map(|(i, _)| i));
            bounds.push(padded.len());
            let chars = bounds.len() - 1;
            for len in self.config.char_ngram_min..=self.config.char_ngram_max {
                if len > chars {
                    break;
                }
                for start in 0..=(chars - len) {
                    let gram = &padded[bounds[start]..bounds[start + len]];
                    let id =
                        self.bucket(xxh3_64_with_seed(gram.as_bytes(), SEED_CHAR + len as u64));
                    if !emit(id, &|| format!("c:{gram}")) {
                        return;
                    }
                }
            }
        }
    }

    fn bucket(&self, hash: u64) -> u32 {
        (hash % u64::from(self.config.buckets - 1)) as u32 + 1
    }
}

/// Pictographs, other symbols (emoji used as codes) and currency signs are words of their own.
fn is_symbol_token(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '₽' | '₺' | '₴' | '₹' | '₿')
        || ((c as u32) >= 0x2100
            && !is_alnum(c)
            && !c.is_whitespace()
            && !matches!(c as u32, 0x3000..=0x303F | 0xFE30..=0xFE4F | 0xFF00..=0xFF0F))
}

/// `char::is_alphanumeric` with fast paths for ASCII, Latin-1 and Cyrillic.
pub(crate) fn is_alnum(c: char) -> bool {
    match c as u32 {
        0..=0x7F => c.is_ascii_alphanumeric(),
        0xC0..=0xFF => c != '×' && c != '÷',
        0x400..=0x481 | 0x48A..=0x52F => true,
        _ => c.is_alphanumeric(),
    }
}

/// Words of a normalized text: runs of letters and digits; each symbol is a word of its own.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / 4);
    let mut start = None;
    for (i, c) in text.char_indices() {
        if is_alnum(c) {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(&text[s..i]);
        }
        if is_symbol_token(c) {
            out.push(&text[i..i + c.len_utf8()]);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        Featurizer::new(FeatureConfig::default()).featurize(text, &mut out);
        out
    }

    #[test]
    fn same_text_same_features_and_normalization_applies() {
        let a = features("Buy COCAINE now");
        assert_eq!(a, features("buy  cocaine\u{200B} now"));
        assert_ne!(a, features("buy coffee now"));
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), a.len(), "distinct");
        assert!(a.iter().all(|f| (1..1 << 18).contains(f)));
    }

    #[test]
    fn emoji_are_tokens_and_bounded_output() {
        let f = features("❄️❄️ 🔌");
        assert!(!f.is_empty());
        assert_ne!(f, features("🔌"));
        let long = "word ".repeat(10_000) + &"другое ".repeat(5_000);
        assert!(features(&long).len() <= 128);
        let varied: String = (0..2000).map(|i| format!("w{i} ")).collect();
        assert_eq!(
            features(&varied).len(),
            128,
            "the cap holds for word features too"
        );
        assert!(features("").is_empty());
    }

    #[test]
    fn explain_names_the_same_features() {
        let f = Featurizer::new(FeatureConfig::default());
        let text = "Buy c0caine 80$ now";
        let named = f.explain(text);
        let ids: Vec<u32> = named.iter().map(|n| n.id).collect();
        assert_eq!(ids, features(text));
        let names: Vec<&str> = named.iter().map(|n| n.name.as_str()).collect();
        assert!(names.contains(&"w:buy cocaine"), "{names:?}");
        assert!(
            names.contains(&"w:0 $"),
            "numbers stand as their shape: {names:?}"
        );
        assert!(names.contains(&"s:cocaine"));
        assert!(names.contains(&"c:<coc"));
    }

    #[test]
    fn evasions_share_features_with_the_plain_word() {
        let plain = features("cocaine");
        for evasion in [
            "c0ca1ne",
            "C O C A I N E",
            "\u{0441}\u{043e}\u{0441}\u{0430}ine",
            "ｃｏｃａｉｎｅ",
            "coca\u{200b}ine",
        ] {
            assert_eq!(features(evasion), plain, "{evasion}");
        }
        let squeezed = features("cocaaaaine");
        assert!(squeezed.iter().any(|f| plain.contains(f)));
    }

    #[test]
    fn fingerprint_checks() {
        let config = FeatureConfig::default();
        assert!(config.check(&config.fingerprint()).is_ok());
        assert!(config.check("0000").is_err());
        let old = FeatureConfig {
            featurizer_version: 0,
            ..FeatureConfig::default()
        };
        assert!(matches!(
            old.check(&old.fingerprint()),
            Err(FeatureError::Version { .. })
        ));
    }
}
