//! The policy that turns scores into an action.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::category::{Category, Scores};
use crate::verdict::Action;

/// A category's two thresholds: at `review_at` an item goes to people, at `suppress_at` it is hidden.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Score from which an item is queued for human review.
    pub review_at: f32,
    /// Score from which an item is suppressed from public search.
    pub suppress_at: f32,
}

impl Thresholds {
    /// A `suppress_at` no score reaches: the category is never suppressed without a person.
    pub const NEVER: f32 = 2.0;
}

/// Per-category thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Thresholds by category; every category must be present.
    pub thresholds: BTreeMap<Category, Thresholds>,
}

/// What the policy decided for one set of scores.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDecision {
    /// Allow, review or suppress.
    pub action: Action,
    /// The category behind the action (the top category when allowed).
    pub category: Category,
    /// That category's score.
    pub score: f32,
    /// A human-readable reason, e.g. `drugs 0.62 >= review_at 0.50`.
    pub reason: String,
}

impl Policy {
    /// The same thresholds for every category.
    pub fn uniform(review_at: f32, suppress_at: f32) -> Policy {
        Policy {
            thresholds: Category::ALL
                .into_iter()
                .map(|c| {
                    (
                        c,
                        Thresholds {
                            review_at,
                            suppress_at,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Checks that every category has thresholds with `0 < review_at <= 1` and
    /// `review_at <= suppress_at <= `[`Thresholds::NEVER`] (a `suppress_at` above 1 is never
    /// reached: the category is never suppressed without a person).
    pub fn validate(&self) -> Result<(), String> {
        for c in Category::ALL {
            let t = self
                .thresholds
                .get(&c)
                .ok_or_else(|| format!("no thresholds for category {c}"))?;
            if !(t.review_at > 0.0
                && t.review_at <= 1.0
                && t.review_at <= t.suppress_at
                && t.suppress_at <= Thresholds::NEVER)
            {
                return Err(format!(
                    "category {c}: need 0 < review_at <= 1 and review_at <= suppress_at <= 2, got {} and {}",
                    t.review_at, t.suppress_at
                ));
            }
        }
        Ok(())
    }

    /// Decides the action for a set of scores: suppress if any category reaches its `suppress_at`,
    /// else review if any reaches its `review_at`, else allow. Among several categories over a
    /// threshold the one with the highest score is named.
    pub fn decide(&self, scores: &Scores) -> PolicyDecision {
        let mut best: Option<(Action, Category, f32, f32)> = None;
        for c in Category::ALL {
            let Some(t) = self.thresholds.get(&c) else {
                continue;
            };
            let s = scores.get(c);
            let (action, threshold) = if s >= t.suppress_at {
                (Action::Suppress, t.suppress_at)
            } else if s >= t.review_at {
                (Action::Review, t.review_at)
            } else {
                continue;
            };
            let better = match best {
                None => true,
                Some((a, _, bs, _)) => action.severity() > a.severity() || (action == a && s > bs),
            };
            if better {
                best = Some((action, c, s, threshold));
            }
        }
        match best {
            Some((action, category, score, threshold)) => PolicyDecision {
                action,
                category,
                score,
                reason: format!(
                    "{category} {score:.2} >= {}_at {threshold:.2}",
                    action.as_str()
                ),
            },
            None => {
                let (category, score) = scores.top();
                PolicyDecision {
                    action: Action::Allow,
                    category,
                    score,
                    reason: format!(
                        "no category over its review threshold (top: {category} {score:.2})"
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(pairs: &[(Category, f32)]) -> Scores {
        let mut s = Scores::default();
        for (c, v) in pairs {
            s.0[c.index()] = *v;
        }
        s
    }

    #[test]
    fn suppress_beats_review_and_names_category() {
        let mut policy = Policy::uniform(0.5, 0.9);
        policy.thresholds.insert(
            Category::Weapons,
            Thresholds {
                review_at: 0.3,
                suppress_at: 0.6,
            },
        );
        let d = policy.decide(&scores(&[
            (Category::Drugs, 0.8),
            (Category::Weapons, 0.65),
        ]));
        assert_eq!(d.action, Action::Suppress);
        assert_eq!(d.category, Category::Weapons);
        assert_eq!(d.reason, "weapons 0.65 >= suppress_at 0.60");

        let d = policy.decide(&scores(&[
            (Category::Drugs, 0.55),
            (Category::Hacking, 0.7),
        ]));
        assert_eq!((d.action, d.category), (Action::Review, Category::Hacking));

        let d = policy.decide(&scores(&[(Category::Drugs, 0.1)]));
        assert_eq!((d.action, d.category), (Action::Allow, Category::Drugs));
    }

    #[test]
    fn validate_rejects_inverted_thresholds() {
        assert!(Policy::uniform(0.5, 0.9).validate().is_ok());
        assert!(Policy::uniform(0.9, 0.5).validate().is_err());
        let mut missing = Policy::uniform(0.5, 0.9);
        missing.thresholds.remove(&Category::Drugs);
        assert!(missing.validate().is_err());
    }

    #[test]
    fn scores_round_trip_as_map() {
        let s = scores(&[(Category::StolenData, 0.25)]);
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json["stolen_data"], 0.25);
        let back: Scores = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Scores>(r#"{"nope": 1}"#).is_err());
    }
}
