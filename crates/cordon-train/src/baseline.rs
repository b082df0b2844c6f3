//! The keyword-list baseline: flags a text when it names a listed good, whatever the context.
//! Evaluated beside the model in every training run to show what the model adds.

use cordon_domain::{Category, Scores};
use cordon_text::normalize;

/// Keyword lists per category.
#[derive(Debug, Clone)]
pub struct KeywordBaseline {
    keywords: Vec<(Category, String)>,
}

fn words(text: &str) -> String {
    let spaced: String = normalize(text)
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    format!(
        " {} ",
        spaced.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

impl KeywordBaseline {
    /// A baseline from `(category, keyword)` pairs; keywords are normalized like texts.
    pub fn new(keywords: Vec<(Category, String)>) -> KeywordBaseline {
        let mut keywords: Vec<(Category, String)> = keywords
            .into_iter()
            .map(|(c, k)| (c, words(&k)))
            .filter(|(_, k)| k.trim().chars().count() >= 2)
            .collect();
        keywords.sort();
        keywords.dedup();
        KeywordBaseline { keywords }
    }

    /// 1.0 for every category one of whose keywords appears as whole words, else 0.0.
    pub fn score(&self, text: &str) -> Scores {
        let haystack = words(text);
        let mut scores = Scores::default();
        for (category, keyword) in &self.keywords {
            if haystack.contains(keyword.as_str()) {
                scores.0[category.index()] = 1.0;
            }
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_whole_words_after_normalization() {
        let b = KeywordBaseline::new(vec![
            (Category::Drugs, "cocaine".into()),
            (Category::Weapons, "ak-47".into()),
        ]);
        assert_eq!(b.score("Buy C0CAINE now").get(Category::Drugs), 1.0);
        assert_eq!(
            b.score("police seized cocaine").get(Category::Drugs),
            1.0,
            "no context"
        );
        assert_eq!(b.score("ak 47 skin").get(Category::Weapons), 1.0);
        assert_eq!(b.score("cocaines").get(Category::Drugs), 0.0);
    }
}
