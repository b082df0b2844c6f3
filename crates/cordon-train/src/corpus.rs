//! The training corpus generator: templates with slots, one TOML file per language.
//!
//! Each file has a `lang`, a `[slots]` table of word lists and `[[templates]]` blocks of texts of
//! one category (`none` for hard negatives). `{slot}` in a text or slot entry is replaced by a
//! random entry of that slot (the file's own, else `common.toml`'s); `{n}` by a random number.
//! Generation is deterministic for a seed. Whole templates are held out for evaluation.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use cordon_domain::Category;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::TrainError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LangFile {
    lang: String,
    #[serde(default)]
    slots: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    templates: Vec<TemplateGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateGroup {
    category: String,
    #[serde(default)]
    group: Option<String>,
    texts: Vec<String>,
}

/// One generated training or evaluation text.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The text.
    pub text: String,
    /// Its category, or `None` for a negative.
    pub label: Option<Category>,
    /// The language file it came from.
    pub lang: String,
    /// The negative group (`news`, `legal_shop`, ...), for hard-negative reporting.
    pub group: Option<String>,
    /// Which part of the corpus its template belongs to.
    pub split: Split,
    /// A hash naming its template (texts of one template share it).
    pub template: u64,
}

/// The three parts of a generated corpus, split by whole templates so that no phrasing of a
/// validation or test template is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Trained on (three templates in five).
    Train,
    /// Thresholds are chosen on it (one in five).
    Validation,
    /// Only reported (one in five): the held-out templates.
    Test,
}

impl Split {
    /// The split of `template` in language `lang`: by its hash, so it never changes when other
    /// templates are added.
    fn of(lang: &str, template: &str) -> Split {
        match xxh3_64(format!("{lang}\0{template}").as_bytes()) % SPLIT_ONE_IN {
            0 => Split::Test,
            1 => Split::Validation,
            _ => Split::Train,
        }
    }
}

/// All language files of a corpus directory.
#[derive(Debug)]
pub struct Corpus {
    langs: Vec<LangFile>,
    common: BTreeMap<String, Vec<String>>,
}

/// One in this many templates is held out for testing, and one more for validation.
const SPLIT_ONE_IN: u64 = 5;

/// Share of generated texts that get one evasion applied (see [`augment`]).
const AUGMENT_SHARE: f64 = 0.3;

/// Applies one evasion sellers use to one word of four letters or more: leetspeak, spaced or
/// dotted letters, a Cyrillic homoglyph, a stretched letter, upper case, or a zero-width space.
/// Normalization undoes most of them; training on them covers what it does not.
pub fn augment(text: &str, rng: &mut StdRng) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let candidates: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].chars().count() >= 4 && words[i].chars().all(char::is_alphabetic))
        .collect();
    let Some(&pick) = candidates.choose(rng) else {
        return text.to_string();
    };
    let word = words[pick];
    let chars: Vec<char> = word.chars().collect();
    let replaced: String = match rng.random_range(0..6) {
        0 => word
            .chars()
            .map(|c| match c {
                'o' => '0',
                'i' => '1',
                'e' => '3',
                'a' => '@',
                's' => '$',
                other => other,
            })
            .collect(),
        1 => {
            let sep = [" ", ".", "-", "*"].choose(rng).copied().unwrap_or(" ");
            chars
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(sep)
        }
        2 => word
            .chars()
            .map(|c| match c {
                'a' => 'а',
                'e' => 'е',
                'o' => 'о',
                'c' => 'с',
                'p' => 'р',
                other => other,
            })
            .collect(),
        3 => {
            let at = rng.random_range(0..chars.len());
            let mut out: String = chars[..at].iter().collect();
            for _ in 0..rng.random_range(3..6) {
                out.push(chars[at]);
            }
            out.extend(&chars[at + 1..]);
            out
        }
        4 => word.to_uppercase(),
        _ => {
            let at = rng.random_range(1..chars.len());
            let mut out: String = chars[..at].iter().collect();
            out.push('\u{200B}');
            out.extend(&chars[at..]);
            out
        }
    };
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    out[pick] = replaced;
    out.join(" ")
}

impl Corpus {
    /// Reads every `*.toml` file in `dir` (`common.toml` holds the shared slots) and checks that
    /// every category is known and every slot used is defined.
    pub fn load(dir: &Path) -> Result<Corpus, TrainError> {
        let mut langs = Vec::new();
        let mut common = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
            let file: LangFile = toml::from_str(&text).map_err(|e| TrainError::Corpus {
                path: path.clone(),
                why: e.to_string(),
            })?;
            if file.lang == "common" {
                common = file.slots;
            } else {
                langs.push((path, file));
            }
        }
        let corpus = Corpus {
            langs: Vec::new(),
            common,
        };
        let mut checked = corpus;
        for (path, file) in langs {
            checked.check(&path, &file)?;
            checked.langs.push(file);
        }
        if checked.langs.is_empty() {
            return Err(TrainError::Corpus {
                path: dir.to_path_buf(),
                why: "no language files".into(),
            });
        }
        Ok(checked)
    }

    fn check(&self, path: &Path, file: &LangFile) -> Result<(), TrainError> {
        let bad = |why: String| TrainError::Corpus {
            path: path.to_path_buf(),
            why,
        };
        for group in &file.templates {
            if group.category != "none" && Category::parse(&group.category).is_none() {
                return Err(bad(format!("unknown category `{}`", group.category)));
            }
        }
        let texts = file
            .templates
            .iter()
            .flat_map(|g| g.texts.iter())
            .chain(file.slots.values().flatten())
            .chain(self.common.values().flatten());
        for text in texts {
            for slot in slot_names(text) {
                if slot != "n" && !file.slots.contains_key(slot) && !self.common.contains_key(slot)
                {
                    return Err(bad(format!(
                        "slot `{{{slot}}}` in \"{text}\" is not defined"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Generates `per_template` texts from every template, deduplicated, with the seed's randomness.
    pub fn generate(&self, per_template: usize, seed: u64) -> Vec<Example> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for file in &self.langs {
            for group in &file.templates {
                let label = Category::parse(&group.category);
                for template in &group.texts {
                    let split = Split::of(&file.lang, template);
                    let template_id = xxh3_64(format!("{}\0{template}", file.lang).as_bytes());
                    for _ in 0..per_template {
                        let mut text = self.fill(file, template, &mut rng, 0);
                        if rng.random_bool(AUGMENT_SHARE) {
                            text = augment(&text, &mut rng);
                        }
                        if seen.insert(text.clone()) {
                            out.push(Example {
                                text,
                                label,
                                lang: file.lang.clone(),
                                group: group.group.clone(),
                                split,
                                template: template_id,
                            });
                        }
                    }
                }
            }
        }
        out.shuffle(&mut rng);
        out
    }

    /// Slot entries that name illegal goods, by the category they belong to: the word lists a
    /// keyword filter would use.
    pub fn keywords(&self) -> Vec<(Category, String)> {
        const SLOTS: &[(&str, Category)] = &[
            ("drug", Category::Drugs),
            ("weapon", Category::Weapons),
            ("document", Category::Counterfeit),
            ("fake_money", Category::Counterfeit),
            ("replica", Category::Counterfeit),
            ("stolen", Category::StolenData),
            ("hack", Category::Hacking),
            ("launder", Category::OtherIllegal),
            ("wildlife", Category::OtherIllegal),
            ("organ", Category::OtherIllegal),
            ("exam", Category::OtherIllegal),
        ];
        let mut out = Vec::new();
        for file in &self.langs {
            for (slot, category) in SLOTS {
                for entry in file.slots.get(*slot).into_iter().flatten() {
                    out.push((*category, entry.clone()));
                }
            }
        }
        out
    }

    fn fill(&self, file: &LangFile, template: &str, rng: &mut StdRng, depth: usize) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            out.push_str(&rest[..open]);
            let name = &rest[open + 1..open + close];
            if name == "n" {
                let n: u32 = rng.random_range(2..2000);
                out.push_str(&n.to_string());
            } else if let Some(choice) = file
                .slots
                .get(name)
                .or_else(|| self.common.get(name))
                .and_then(|entries| entries.choose(rng))
            {
                if depth < 4 {
                    out.push_str(&self.fill(file, choice, rng, depth + 1));
                } else {
                    out.push_str(choice);
                }
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn slot_names(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/corpus")
    }

    #[test]
    fn generates_deterministic_deduplicated_examples_with_holdout() {
        let corpus = Corpus::load(&corpus_dir()).expect("corpus loads");
        let a = corpus.generate(3, 7);
        assert_eq!(a, corpus.generate(3, 7));
        let unique: HashSet<_> = a.iter().map(|e| &e.text).collect();
        assert_eq!(unique.len(), a.len());
        assert!(a.iter().all(|e| !e.text.contains('{')), "all slots filled");
        for split in [Split::Train, Split::Validation, Split::Test] {
            assert!(a.iter().any(|e| e.split == split), "{split:?} present");
        }
        for c in Category::ALL {
            assert!(a.iter().any(|e| e.label == Some(c)), "{c} present");
        }
    }

    #[test]
    fn rejects_undefined_slots() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("xx.toml"),
            "lang = \"xx\"\n[[templates]]\ncategory = \"drugs\"\ntexts = [\"{nope}\"]\n",
        )
        .unwrap();
        let err = Corpus::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
