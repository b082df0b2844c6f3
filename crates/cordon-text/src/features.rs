//! Hashed n-gram features.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::normalize::{is_alnum, normalize};

/// Version of the featurization algorithm. Bump it whenever the same text and configuration
/// would produce different feature ids; models trained with another version are refused.
pub const FEATURIZER_VERSION: u32 = 5;

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
    /// A text of more words than this is scored in windows of at most this many words (see
    /// [`Featurizer::featurize`]); a shorter text is one window.
    pub window_words: usize,
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
            window_words: 64,
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
        // A struct of numbers always serializes.
        let canonical = serde_json::to_vec(self).expect("a FeatureConfig serializes");
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
        if self.window_words < 2 {
            return Err(FeatureError::Invalid("window_words must be >= 2"));
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

/// Turns text into feature ids in `1..buckets` (0 is padding), one row per window.
///
/// Features of a normalized text: word n-grams (numbers stand as their shape `0` in them), each
/// word (not numbers) with repeated letters squeezed (`weed` → `wed`, `cocaaine` → `cocaine`), and character
/// n-grams of each word with boundary marks (`<coc`, `ine>`).
///
/// A text of at most [`FeatureConfig::window_words`] words is one window. A longer text is cut into
/// paragraphs (at line breaks) and scored in windows: every run of whole consecutive paragraphs
/// that fits in the window size. A paragraph longer than a window is cut into sentences (at `.`,
/// `!`, `?`, `;` and their equivalents followed by a space) and read from each sentence as the
/// longest run of whole sentences that fits; a sentence longer than a window in overlapping slices
/// of that size, half a window apart. A paragraph that fits in a window is never cut, so a sentence
/// is read in its paragraph's context. A model scores each window as if it were a text of its own and a text scores as
/// its strongest window, so an offer written as its own sentences or lines scores the same whatever
/// comes before or after it. The work is bounded: in a long paragraph a window starts at most every
/// eighth of a window, and when the runs of paragraphs would cost more than [`WINDOW_BUDGET`] times
/// the text's words, the windows are runs of whole paragraphs packed end to end plus overlapping
/// slices of the whole text — at most a few windows per `window_words` words either way.
#[derive(Debug, Clone)]
pub struct Featurizer {
    config: FeatureConfig,
}

/// Bound on the work of a windowed text: the words of all its windows together stay below this
/// many times its own words (plus one window).
pub const WINDOW_BUDGET: usize = 64;

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

/// The feature ids of one text, window by window (see [`Featurizer::featurize`]). Every text has
/// at least one window; the empty text's window has no features.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextFeatures {
    ids: Vec<u32>,
    ends: Vec<usize>,
}

impl TextFeatures {
    /// Empty, ready for [`Featurizer::featurize`].
    pub fn new() -> TextFeatures {
        TextFeatures::default()
    }

    /// The windows' feature ids, in text order.
    pub fn windows(&self) -> impl ExactSizeIterator<Item = &[u32]> + '_ {
        (0..self.ends.len()).map(|w| {
            let start = if w == 0 { 0 } else { self.ends[w - 1] };
            &self.ids[start..self.ends[w]]
        })
    }

    /// The number of windows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no window (only before the first [`Featurizer::featurize`]).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn clear(&mut self) {
        self.ids.clear();
        self.ends.clear();
    }
}

/// A normalized text cut into words, with the word indices at which paragraphs and sentences
/// start.
struct Words<'a> {
    words: Vec<&'a str>,
    paragraphs: Vec<usize>,
    sentences: Vec<usize>,
}

impl Words<'_> {
    /// The word ranges of the windows of at most `size` words (see [`Featurizer`]).
    fn windows(&self, size: usize, out: &mut Vec<Range<usize>>) {
        out.clear();
        let n = self.words.len();
        if n <= size {
            out.push(0..n);
            return;
        }
        let paragraphs = ranges(&self.paragraphs, n);
        let budget = WINDOW_BUDGET * n + size;
        let mut spent = 0;
        for (k, p) in paragraphs.iter().enumerate() {
            if p.len() > size {
                // A long paragraph: from each sentence, the longest run of whole sentences that fits.
                let starts: Vec<usize> = std::iter::once(p.start)
                    .chain(
                        self.sentences
                            .iter()
                            .copied()
                            .filter(|&s| s > p.start && s < p.end),
                    )
                    .collect();
                let sentences: Vec<Range<usize>> = starts
                    .iter()
                    .enumerate()
                    .map(|(j, &s)| s..starts.get(j + 1).copied().unwrap_or(p.end))
                    .collect();
                // A window starts at most every `size / 8` words: a sentence that starts sooner
                // inside the last window is read there (bounds the windows of many tiny sentences).
                let mut last = 0..0;
                for (j, sentence) in sentences.iter().enumerate() {
                    if sentence.len() > size {
                        slide(sentence.clone(), size, out);
                        last = 0..0;
                        continue;
                    }
                    if !last.is_empty()
                        && sentence.start < last.start + (size / 8).max(1)
                        && sentence.end <= last.end
                    {
                        continue;
                    }
                    let end = sentences[j..]
                        .iter()
                        .take_while(|t| t.end - sentence.start <= size)
                        .last()
                        .map_or(sentence.end, |t| t.end);
                    last = sentence.start..end;
                    out.push(last.clone());
                }
                spent += 2 * p.len();
                continue;
            }
            // Every run of whole paragraphs from this one that fits.
            for q in paragraphs[k..]
                .iter()
                .take_while(|q| q.end - p.start <= size)
            {
                out.push(p.start..q.end);
                spent += q.end - p.start;
            }
            if spent > budget {
                // Too many short paragraphs: runs of whole paragraphs packed end to end, and
                // overlapping slices of the whole text.
                out.clear();
                let mut start = 0;
                for p in &paragraphs {
                    if p.end - start > size {
                        if p.start > start {
                            out.push(start..p.start);
                        }
                        start = p.start;
                    }
                }
                out.push(start..n);
                out.retain(|r| r.len() <= size);
                slide(0..n, size, out);
                return;
            }
        }
    }
}

/// Consecutive ranges starting at the sorted `starts` (the first is 0) and ending at `n`.
fn ranges(starts: &[usize], n: usize) -> Vec<Range<usize>> {
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| s..starts.get(k + 1).copied().unwrap_or(n))
        .collect()
}

/// Overlapping slices of `size` words, half a window apart, covering `range`.
fn slide(range: Range<usize>, size: usize, out: &mut Vec<Range<usize>>) {
    let mut start = range.start;
    loop {
        let end = (start + size).min(range.end);
        out.push(start..end);
        if end == range.end {
            return;
        }
        start += (size / 2).max(1);
    }
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

    /// Normalizes `text` and writes its windows' feature ids into `out` (cleared first): per window
    /// distinct ids, in the order they first occur (word unigrams of the window, then bigrams, then
    /// each word's squeezed form and character n-grams), at most `max_features` of them.
    pub fn featurize(&self, text: &str, out: &mut TextFeatures) {
        out.clear();
        let normalized = normalize(text);
        let words = tokens(&normalized);
        let mut ranges = Vec::new();
        words.windows(self.config.window_words, &mut ranges);
        SEEN.with_borrow_mut(|seen| {
            seen.resize((self.config.buckets as usize).div_ceil(64), 0);
            let max = self.config.max_features;
            for range in ranges {
                let start = out.ids.len();
                self.each(&words.words[range], |id, _| {
                    let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
                    if seen[word] & bit == 0 {
                        seen[word] |= bit;
                        out.ids.push(id);
                    }
                    out.ids.len() - start < max
                });
                for id in &out.ids[start..] {
                    seen[*id as usize / 64] = 0;
                }
                out.ends.push(out.ids.len());
            }
        });
    }

    /// The features of window `window` of `text` (in [`Featurizer::featurize`]'s order) with
    /// readable names: the ids `featurize` gives that window, in the same order; empty when there is
    /// no such window. Slower; for explanations.
    pub fn explain(&self, text: &str, window: usize) -> Vec<NamedFeature> {
        let normalized = normalize(text);
        let words = tokens(&normalized);
        let mut ranges = Vec::new();
        words.windows(self.config.window_words, &mut ranges);
        let Some(range) = ranges.get(window) else {
            return Vec::new();
        };
        let mut named: Vec<NamedFeature> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        self.each(&words.words[range.clone()], |id, name| {
            if seen.insert(id) {
                named.push(NamedFeature { id, name: name() });
            }
            named.len() < self.config.max_features
        });
        named
    }

    /// The words of window `window` of `text`, normalized and joined by spaces (what the window
    /// reads); `None` when there is no such window.
    pub fn window_text(&self, text: &str, window: usize) -> Option<String> {
        let normalized = normalize(text);
        let words = tokens(&normalized);
        let mut ranges = Vec::new();
        words.windows(self.config.window_words, &mut ranges);
        ranges.get(window).map(|r| words.words[r.clone()].join(" "))
    }

    /// Calls `emit(id, name)` for every feature occurrence of `words` until it returns false;
    /// `name` renders the feature.
    fn each(&self, words: &[&str], mut emit: impl FnMut(u32, &dyn Fn() -> String) -> bool) {
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
        // Unigrams of the whole window first, then bigrams, ...: a long window is covered word by
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
        for word in words {
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

/// Punctuation that ends a sentence when a space or the end of the text follows it.
fn ends_sentence(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | ';' | '…' | '。' | '！' | '？' | '؟' | '।' | '۔'
    )
}

/// Words of a normalized text: runs of letters and digits; each symbol is a word of its own.
/// A paragraph starts at the first word and after every line break, a sentence also after every
/// sentence end.
fn tokens(text: &str) -> Words<'_> {
    let mut words = Vec::with_capacity(text.len() / 4);
    let (mut paragraphs, mut sentences) = (vec![0], vec![0]);
    let mut start = None;
    // What the next word starts: 0 nothing, 1 a sentence, 2 a paragraph.
    let mut boundary = 0u8;
    let mut mark = |boundary: &mut u8, at: usize| {
        if at > 0 {
            if *boundary >= 1 && sentences.last() != Some(&at) {
                sentences.push(at);
            }
            if *boundary == 2 && paragraphs.last() != Some(&at) {
                paragraphs.push(at);
            }
        }
        *boundary = 0;
    };
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_alnum(c) {
            if start.is_none() {
                mark(&mut boundary, words.len());
            }
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            words.push(&text[s..i]);
        }
        if c == '\n' {
            boundary = 2;
        } else if ends_sentence(c) && chars.peek().is_none_or(|(_, n)| n.is_whitespace()) {
            boundary = boundary.max(1);
        }
        if is_symbol_token(c) {
            mark(&mut boundary, words.len());
            words.push(&text[i..i + c.len_utf8()]);
        }
    }
    if let Some(s) = start {
        words.push(&text[s..]);
    }
    Words {
        words,
        paragraphs,
        sentences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windows of `text`, each as its ids.
    fn windows(text: &str) -> Vec<Vec<u32>> {
        let mut out = TextFeatures::new();
        Featurizer::new(FeatureConfig::default()).featurize(text, &mut out);
        out.windows().map(<[u32]>::to_vec).collect()
    }

    /// The features of a short text (one window).
    fn features(text: &str) -> Vec<u32> {
        let mut w = windows(text);
        assert_eq!(w.len(), 1, "{text}");
        w.remove(0)
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
    fn emoji_are_tokens_and_windows_are_bounded() {
        let f = features("❄️❄️ 🔌");
        assert!(!f.is_empty());
        assert_ne!(f, features("🔌"));
        let long = "word ".repeat(10_000) + &"другое ".repeat(5_000);
        let w = windows(&long);
        assert!(w.iter().all(|w| w.len() <= 128));
        assert!(w.len() <= 2 * 15_000 / 32 + 1, "{}", w.len());
        let varied: String = (0..60).map(|i| format!("w{i} ")).collect();
        assert_eq!(
            features(&varied).len(),
            128,
            "the cap holds for word features too"
        );
        assert_eq!(windows(""), vec![Vec::<u32>::new()], "one empty window");
    }

    #[test]
    fn explain_names_the_same_features() {
        let f = Featurizer::new(FeatureConfig::default());
        let text = "Buy c0caine 80$ now";
        let named = f.explain(text, 0);
        let ids: Vec<u32> = named.iter().map(|n| n.id).collect();
        assert_eq!(ids, features(text));
        assert!(f.explain(text, 1).is_empty());
        let names: Vec<&str> = named.iter().map(|n| n.name.as_str()).collect();
        assert!(names.contains(&"w:buy cocaine"), "{names:?}");
        assert!(
            names.contains(&"w:0 $"),
            "numbers stand as their shape: {names:?}"
        );
        assert!(names.contains(&"s:cocaine"));
        assert!(names.contains(&"c:<coc"));
        let long = format!("{}\nbuy cocaine now", "filler words here. ".repeat(40));
        let all = windows(&long);
        let last = all.len() - 1;
        let ids: Vec<u32> = f.explain(&long, last).iter().map(|n| n.id).collect();
        assert_eq!(ids, all[last]);
        assert_eq!(
            f.window_text(&long, last).as_deref(),
            Some("buy cocaine now")
        );
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
            "<b>cocaine</b>",
            "[i]&#99;ocaine[/i]",
        ] {
            assert_eq!(features(evasion), plain, "{evasion}");
        }
        let squeezed = features("cocaaaaine");
        assert!(squeezed.iter().any(|f| plain.contains(f)));
    }

    #[test]
    fn an_offer_in_its_own_paragraphs_keeps_its_window_whatever_surrounds_it() {
        let offer = "Fresh coke 1g 80$. Dead drops all over town!\nDM @plug_bot";
        let bare = features(offer);
        let filler = "The weather was mild and the market opened late. ".repeat(12);
        for text in [
            format!("{filler}\n{offer}"),
            format!("{offer}\n{filler}"),
            format!("{filler}\n{offer}\n{filler}"),
            format!("<p>{filler}</p><div>{offer}</div>"),
        ] {
            let w = windows(&text);
            assert!(w.len() > 1, "{text}");
            assert!(
                w.contains(&bare),
                "the bare offer is one of the windows: {text}"
            );
        }
    }

    fn windows_of(words: usize, paragraphs: &[usize], sentences: &[usize]) -> Vec<Range<usize>> {
        let words = Words {
            words: vec!["w"; words],
            paragraphs: paragraphs.to_vec(),
            sentences: sentences.to_vec(),
        };
        let mut out = Vec::new();
        words.windows(64, &mut out);
        out
    }

    #[test]
    fn windows_cover_every_word() {
        assert_eq!(windows_of(10, &[0], &[0, 5]), vec![0..10]);
        // One long sentence: overlapping slices.
        assert_eq!(windows_of(100, &[0], &[0]), vec![0..64, 32..96, 64..100]);
        // Paragraphs: every run of whole paragraphs that fits.
        let out = windows_of(100, &[0, 30, 60, 90], &[0, 30, 60, 90]);
        assert!(out.contains(&(0..60)) && out.contains(&(30..90)) && out.contains(&(60..100)));
        assert!(out.contains(&(90..100)) && !out.contains(&(0..90)));
        // A long paragraph: from each sentence, the longest run that fits.
        let out = windows_of(100, &[0], &[0, 30, 60, 90]);
        assert_eq!(out, vec![0..60, 30..90, 60..100, 90..100]);
        // Many one-word paragraphs, or one paragraph of one-word sentences: a few windows per
        // window of words, every word covered.
        let starts: Vec<usize> = (0..16_000).collect();
        for out in [
            windows_of(16_000, &starts, &starts),
            windows_of(16_000, &[0], &starts),
        ] {
            assert!(out.len() <= 16_000 / 8 + 16_000 / 32 + 2, "{}", out.len());
            let words: usize = out.iter().map(|r| r.len()).sum();
            assert!(words <= WINDOW_BUDGET * 16_000 + 64, "{words}");
            let mut covered = vec![false; 16_000];
            for r in &out {
                assert!(r.len() <= 64);
                covered[r.clone()].iter_mut().for_each(|c| *c = true);
            }
            assert!(covered.iter().all(|c| *c));
        }
    }

    #[test]
    fn segments_end_at_line_breaks_and_sentence_ends() {
        let n = normalize("one two. three 3.5g\nfour! five");
        let t = tokens(&n);
        assert_eq!(
            t.words,
            ["one", "two", "three", "3", "5", "g", "four", "five"]
        );
        assert_eq!(t.sentences, [0, 2, 6, 7]);
        assert_eq!(t.paragraphs, [0, 6]);
    }

    #[test]
    fn a_paragraph_that_fits_is_read_whole() {
        let shop = "Licensed gun shop. Glock 19 in stock. Permit and ID required at pickup.";
        let filler = "The weather was mild and the market opened late. ".repeat(12);
        let text = format!("{filler}\n{shop}");
        let sentence = features("Glock 19 in stock.");
        assert!(windows(&text).contains(&features(shop)));
        assert!(
            !windows(&text).contains(&sentence),
            "no sentence without its paragraph"
        );
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
