//! Calibrated policy: per-category thresholds chosen on validation data to meet explicit targets.
//!
//! For each category, on scored validation texts:
//! - `suppress_at` is the lowest threshold (from 0.5) at which the estimated precision of
//!   suppression — over every text at or above it — is at least [`Targets::suppress_precision`]. The estimate
//!   counts one false positive more than were seen (`tp / (tp + fp + 1)`), so 99 % needs at least
//!   99 offers above the threshold and none legitimate — a category without enough evidence gets
//!   `suppress_at = `[`Thresholds::NEVER`]: nothing of it is hidden without a person.
//! - `review_at` is the highest threshold that still sends [`Targets::review_recall`] of the
//!   category's offers to review, raised if needed until the category's false-positive rate on
//!   legitimate texts is at most [`Targets::review_false_positive_rate`] (the moderators' load).

use std::collections::BTreeMap;

use cordon_domain::{Category, Policy, Scores, Thresholds};
use serde::Serialize;

/// What the thresholds must achieve on validation data.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Targets {
    /// Least estimated precision of automatic suppression.
    pub suppress_precision: f64,
    /// Share of a category's offers the review band should reach.
    pub review_recall: f64,
    /// Most share of legitimate texts a category may send to review.
    pub review_false_positive_rate: f64,
}

impl Default for Targets {
    fn default() -> Targets {
        Targets {
            suppress_precision: 0.99,
            review_recall: 0.95,
            review_false_positive_rate: 0.01,
        }
    }
}

/// The lowest threshold the review band may start at: below it, a text's strongest window reaches
/// the band by chance in long unrelated texts.
const MIN_REVIEW_AT: f32 = 0.3;

/// The lowest threshold automatic suppression may start at.
const MIN_SUPPRESS_AT: f32 = 0.5;

/// One category's chosen thresholds and the validation numbers behind them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CategoryCalibration {
    /// The thresholds chosen.
    pub thresholds: Thresholds,
    /// Validation texts of any offer category at or above `suppress_at`.
    pub suppressed_offers: u64,
    /// Legitimate validation texts at or above `suppress_at`.
    pub suppressed_legitimate: u64,
    /// `suppressed_offers / (suppressed_offers + suppressed_legitimate + 1)`.
    pub suppress_precision_estimate: f64,
    /// Share of the category's validation offers at or above `suppress_at`.
    pub suppress_recall: f64,
    /// Share of the category's validation offers at or above `review_at`.
    pub review_recall: f64,
    /// Share of legitimate validation texts at or above `review_at`.
    pub review_false_positive_rate: f64,
    /// Whether the review band reaches [`Targets::review_recall`].
    pub recall_target_met: bool,
}

/// The calibration recorded in a model card.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Calibration {
    /// The targets.
    pub targets: Targets,
    /// Validation texts used.
    pub validation_texts: usize,
    /// Per category.
    pub per_category: BTreeMap<Category, CategoryCalibration>,
}

/// One scored validation text: its scores and its category (`None`: legitimate).
pub type Scored = (Scores, Option<Category>);

/// The candidate thresholds, ascending: hundredths, then thousandths above 0.99, then 1.
fn grid() -> Vec<f32> {
    let mut out: Vec<f32> = (30..=99).map(|i| i as f32 / 100.0).collect();
    out.extend((991..=999).map(|i| i as f32 / 1000.0));
    out.push(1.0);
    out
}

/// Chooses every category's thresholds on `validation` to meet `targets`.
pub fn calibrate(validation: &[Scored], targets: Targets) -> (Policy, Calibration) {
    let legitimate = validation.iter().filter(|(_, c)| c.is_none()).count() as f64;
    let mut per_category = BTreeMap::new();
    for category in Category::ALL {
        let own = validation
            .iter()
            .filter(|(_, c)| *c == Some(category))
            .count() as f64;
        let at = |t: f32| {
            let (mut offers, mut legit, mut own_hits) = (0u64, 0u64, 0u64);
            for (s, c) in validation {
                if s.get(category) >= t {
                    match c {
                        Some(c) => {
                            offers += 1;
                            own_hits += u64::from(*c == category);
                        }
                        None => legit += 1,
                    }
                }
            }
            (offers, legit, own_hits)
        };
        let precision =
            |(offers, legit, _): (u64, u64, u64)| offers as f64 / (offers + legit + 1) as f64;
        let ratio = |a: u64, b: f64| if b == 0.0 { 0.0 } else { a as f64 / b };
        let grid = grid();
        // Everything at or above the threshold is suppressed: the lowest one whose set meets the
        // precision target (never below MIN_SUPPRESS_AT).
        let suppress_at = grid
            .iter()
            .copied()
            .filter(|&t| t >= MIN_SUPPRESS_AT)
            .find(|&t| precision(at(t)) >= targets.suppress_precision)
            .unwrap_or(Thresholds::NEVER);
        let recall_at = grid
            .iter()
            .rev()
            .copied()
            .find(|&t| ratio(at(t).2, own) >= targets.review_recall)
            .unwrap_or(MIN_REVIEW_AT);
        let load_at = grid
            .iter()
            .copied()
            .find(|&t| ratio(at(t).1, legitimate) <= targets.review_false_positive_rate)
            .unwrap_or(1.0);
        let review_at = recall_at.max(load_at).max(MIN_REVIEW_AT).min(suppress_at);
        let (offers, legit, own_suppressed) = at(suppress_at);
        let (_, review_legit, own_reviewed) = at(review_at);
        per_category.insert(
            category,
            CategoryCalibration {
                thresholds: Thresholds {
                    review_at,
                    suppress_at,
                },
                suppressed_offers: offers,
                suppressed_legitimate: legit,
                suppress_precision_estimate: precision((offers, legit, own_suppressed)),
                suppress_recall: ratio(own_suppressed, own),
                review_recall: ratio(own_reviewed, own),
                review_false_positive_rate: ratio(review_legit, legitimate),
                recall_target_met: ratio(own_reviewed, own) >= targets.review_recall,
            },
        );
    }
    let policy = Policy {
        thresholds: per_category
            .iter()
            .map(|(c, k)| (*c, k.thresholds))
            .collect(),
    };
    (
        policy,
        Calibration {
            targets,
            validation_texts: validation.len(),
            per_category,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(drugs: f32, label: Option<Category>) -> Scored {
        let mut s = Scores::default();
        s.0[Category::Drugs.index()] = drugs;
        (s, label)
    }

    #[test]
    fn suppression_needs_evidence_and_review_follows_recall() {
        let mut v = Vec::new();
        // 300 drug offers spread over 0.40..0.99, 200 legitimate texts up to 0.70.
        for i in 0..300 {
            v.push(scored(
                0.40 + 0.59 * i as f32 / 299.0,
                Some(Category::Drugs),
            ));
        }
        for i in 0..200 {
            v.push(scored(0.70 * i as f32 / 199.0, None));
        }
        let (policy, cal) = calibrate(&v, Targets::default());
        assert!(policy.validate().is_ok());
        let drugs = &cal.per_category[&Category::Drugs];
        let t = drugs.thresholds;
        assert!(t.suppress_at > 0.70 && t.suppress_at < 0.75, "{t:?}");
        assert_eq!(drugs.suppressed_legitimate, 0);
        assert!(drugs.suppress_precision_estimate >= 0.99);
        // 95 % recall needs review from about 0.43; the false-positive budget (1 % of 200
        // legitimate texts) allows two of them, so review starts near 0.70.
        assert!(t.review_at >= 0.69 && t.review_at <= t.suppress_at, "{t:?}");
        assert!(!drugs.recall_target_met);
        // No evidence for a category: nothing is suppressed automatically.
        let weapons = &cal.per_category[&Category::Weapons];
        assert_eq!(weapons.thresholds.suppress_at, Thresholds::NEVER);
    }

    #[test]
    fn a_few_offers_are_not_enough_to_suppress() {
        let v: Vec<Scored> = (0..50)
            .map(|_| scored(0.99, Some(Category::Drugs)))
            .collect();
        let (_, cal) = calibrate(&v, Targets::default());
        assert_eq!(
            cal.per_category[&Category::Drugs].thresholds.suppress_at,
            Thresholds::NEVER
        );
    }
}
