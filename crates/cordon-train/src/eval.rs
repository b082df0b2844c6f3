//! Evaluation: precision, recall and F1 of the policy's decisions against labels.

use std::collections::BTreeMap;

use cordon_domain::{Action, Category, Policy, Scores};
use serde::Serialize;

/// Counts for one binary question.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Confusion {
    /// Flagged and positive.
    pub tp: u64,
    /// Flagged and negative.
    pub fp: u64,
    /// Not flagged and positive.
    pub fn_: u64,
    /// Not flagged and negative.
    pub tn: u64,
}

/// Precision, recall, F1 and false-positive rate from a [`Confusion`].
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Rates {
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// fp / (fp + tn).
    pub false_positive_rate: f64,
    /// Positives in the set.
    pub positives: u64,
    /// Negatives in the set.
    pub negatives: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl Confusion {
    fn add(&mut self, flagged: bool, positive: bool) {
        match (flagged, positive) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// The rates of these counts.
    pub fn rates(&self) -> Rates {
        let precision = ratio(self.tp, self.tp + self.fp);
        let recall = ratio(self.tp, self.tp + self.fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Rates {
            precision,
            recall,
            f1,
            false_positive_rate: ratio(self.fp, self.fp + self.tn),
            positives: self.tp + self.fn_,
            negatives: self.fp + self.tn,
        }
    }
}

/// One labelled, scored example for [`Evaluation::add`].
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    /// The model's scores.
    pub scores: &'a Scores,
    /// Whether the example is an illegal offer.
    pub positive: bool,
    /// Its category, if known.
    pub category: Option<Category>,
    /// Its negative group (hard-negative kind), if any.
    pub group: Option<&'a str>,
    /// Its language, if known.
    pub lang: Option<&'a str>,
}

/// Accumulated evaluation of one policy over a labelled set. "Flagged" means the policy sends the
/// item to review or suppresses it.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    overall: Confusion,
    suppressed: Confusion,
    per_category: BTreeMap<Category, Confusion>,
    per_group: BTreeMap<String, Confusion>,
    per_language: BTreeMap<String, Confusion>,
    suppressed_per_group: BTreeMap<String, Confusion>,
}

/// The result of an [`Evaluation`], as printed by `cordon eval --json` and stored in model cards.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Flagged (review or suppress) vs. positive.
    pub overall: Rates,
    /// Suppressed vs. positive: what disappears without a person looking.
    pub suppressed: Rates,
    /// Per category: flagged under that category vs. labelled with it.
    pub per_category: BTreeMap<Category, Rates>,
    /// False-positive rate per hard-negative group (flagged).
    pub hard_negatives: BTreeMap<String, Rates>,
    /// Share of each hard-negative group suppressed without a person.
    pub hard_negatives_suppressed: BTreeMap<String, Rates>,
    /// Per language: flagged vs. positive.
    pub per_language: BTreeMap<String, Rates>,
}

fn rates(counts: &BTreeMap<String, Confusion>) -> BTreeMap<String, Rates> {
    counts.iter().map(|(k, m)| (k.clone(), m.rates())).collect()
}

impl Evaluation {
    /// Adds one example decided under `policy`.
    pub fn add(&mut self, policy: &Policy, example: Labelled<'_>) {
        let decision = policy.decide(example.scores);
        let flagged = decision.action != Action::Allow;
        self.overall.add(flagged, example.positive);
        self.suppressed
            .add(decision.action == Action::Suppress, example.positive);
        for c in Category::ALL {
            self.per_category.entry(c).or_default().add(
                flagged && decision.category == c,
                example.positive && example.category == Some(c),
            );
        }
        if let Some(group) = example.group.filter(|_| !example.positive) {
            self.per_group
                .entry(group.to_string())
                .or_default()
                .add(flagged, false);
            self.suppressed_per_group
                .entry(group.to_string())
                .or_default()
                .add(decision.action == Action::Suppress, false);
        }
        if let Some(lang) = example.lang {
            self.per_language
                .entry(lang.to_string())
                .or_default()
                .add(flagged, example.positive);
        }
    }

    /// The rates so far.
    pub fn report(&self) -> Report {
        Report {
            overall: self.overall.rates(),
            suppressed: self.suppressed.rates(),
            per_category: self
                .per_category
                .iter()
                .map(|(c, m)| (*c, m.rates()))
                .collect(),
            hard_negatives: rates(&self.per_group),
            hard_negatives_suppressed: rates(&self.suppressed_per_group),
            per_language: rates(&self.per_language),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rates() {
        let policy = Policy::uniform(0.5, 0.9);
        let mut eval = Evaluation::default();
        let mut hit = Scores::default();
        hit.0[Category::Drugs.index()] = 0.95;
        let miss = Scores::default();
        let mut review = Scores::default();
        review.0[Category::Weapons.index()] = 0.6;
        let add = |eval: &mut Evaluation, s: &Scores, positive, category, group| {
            eval.add(
                &policy,
                Labelled {
                    scores: s,
                    positive,
                    category,
                    group,
                    lang: Some("en"),
                },
            )
        };
        add(&mut eval, &hit, true, Some(Category::Drugs), None);
        add(&mut eval, &miss, true, Some(Category::Drugs), None);
        add(&mut eval, &review, false, None, Some("news"));
        add(&mut eval, &miss, false, None, Some("news"));
        let r = eval.report();
        assert_eq!(r.overall.precision, 0.5);
        assert_eq!(r.overall.recall, 0.5);
        assert_eq!(r.overall.false_positive_rate, 0.5);
        assert_eq!(r.suppressed.precision, 1.0);
        assert_eq!(r.per_category[&Category::Drugs].recall, 0.5);
        assert_eq!(r.hard_negatives["news"].false_positive_rate, 0.5);
        assert_eq!(r.hard_negatives_suppressed["news"].false_positive_rate, 0.0);
        assert_eq!(r.per_language["en"].recall, 0.5);
    }
}
