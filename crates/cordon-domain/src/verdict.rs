//! Verdicts: the records on the verdicts topic, and which one is in force for an item.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::category::{Category, Scores};

/// What a verdict does to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The model found nothing: the item is public.
    Allow,
    /// The model is unsure: the item goes to the review queue (public unless pre-moderation is on).
    Review,
    /// Hidden from public search.
    Suppress,
    /// A person decided the item is fine: public again.
    Restore,
    /// Enough distinct people reported the item: hidden until a person decides.
    Hold,
}

impl Action {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Review => "review",
            Action::Suppress => "suppress",
            Action::Restore => "restore",
            Action::Hold => "hold",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Action> {
        [
            Action::Allow,
            Action::Review,
            Action::Suppress,
            Action::Restore,
            Action::Hold,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    /// Orders the model's actions by how much they restrict (allow < review < suppress).
    pub fn severity(self) -> u8 {
        match self {
            Action::Allow | Action::Restore => 0,
            Action::Review | Action::Hold => 1,
            Action::Suppress => 2,
        }
    }
}

/// Which model stage decided: the fast model for every item, the context stage for the items the
/// fast model is unsure about (its verdict replaces the fast one for the same item version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The fast linear model (the worker).
    #[default]
    Fast,
    /// The multilingual encoder and its head (the context role).
    Context,
}

impl Stage {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fast => "fast",
            Stage::Context => "context",
        }
    }
}

/// Who made a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum DecidedBy {
    /// The classifier, under the configured policy.
    Model {
        /// The model version that scored the item.
        model_version: String,
        /// The stage that decided (absent on verdicts written before stages existed: fast).
        #[serde(default)]
        stage: Stage,
    },
    /// A moderator, through the review API.
    Human {
        /// The moderator's account name.
        moderator: String,
        /// The decision's id in the review database; later decisions have larger ids.
        decision_id: i64,
    },
}

/// A moderation verdict for one version of one item, as published on the verdicts topic
/// (keyed by item id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The item's id.
    pub item_id: String,
    /// The item version this verdict is about.
    pub item_version: u64,
    /// What the verdict does.
    pub action: Action,
    /// Model or human, with their identity.
    pub decided_by: DecidedBy,
    /// The category behind the action, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// That category's score, if the model decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Every category's score, if the model decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores>,
    /// The fast model's scores, on a context-stage verdict (`scores` are then the context stage's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_scores: Option<Scores>,
    /// Why: the policy's reason or the moderator's reason code and note.
    pub reason: String,
    /// Set when the verdict is about a whole channel (key `channel:<id>`): suppress hides every item
    /// of the channel from public search, restore undoes that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// The features that pushed the model's score for `category` most (flagged items only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanation: Vec<Contribution>,
    /// When the decision was made.
    pub decided_at: DateTime<Utc>,
}

/// One feature's push on a category's score (its weight in the model's logit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The feature, e.g. `w:buy cocaine` (word n-gram), `s:cocaine` (squeezed word), `c:<coc`
    /// (character n-gram).
    pub feature: String,
    /// Its weight: positive pushes towards the category.
    pub weight: f32,
}

/// Whether public search may show an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Shown in public search.
    Visible,
    /// Hidden by a verdict.
    Suppressed,
    /// Hidden until its verdict arrives (pre-moderation) or a person decides.
    Pending,
}

impl Visibility {
    /// The wire name, also used as the indexed term.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Visible => "visible",
            Visibility::Suppressed => "suppressed",
            Visibility::Pending => "pending",
        }
    }
}

impl Verdict {
    /// The Kafka key and index id of a channel-wide verdict.
    pub fn channel_key(channel_id: &str) -> String {
        format!("{}{channel_id}", Verdict::CHANNEL_KEY_PREFIX)
    }

    /// How the key of a channel verdict starts; no content item id may start so.
    pub const CHANNEL_KEY_PREFIX: &'static str = "channel:";

    /// Whether this verdict takes precedence over `other` for the same item.
    ///
    /// A verdict about a newer item version wins. For the same version a human decision outranks the
    /// model's, a later human decision (larger decision id) outranks an earlier one, the context
    /// stage's verdict outranks the fast model's (and a fast verdict never replaces a context one,
    /// whatever order they arrive in), and a model verdict of a stage replaces an earlier one of the
    /// same stage (a re-scoring).
    pub fn outranks(&self, other: &Verdict) -> bool {
        use std::cmp::Ordering;
        match self.item_version.cmp(&other.item_version) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => match (&self.decided_by, &other.decided_by) {
                (DecidedBy::Human { .. }, DecidedBy::Model { .. }) => true,
                (DecidedBy::Model { .. }, DecidedBy::Human { .. }) => false,
                (
                    DecidedBy::Human { decision_id: a, .. },
                    DecidedBy::Human { decision_id: b, .. },
                ) => a >= b,
                (DecidedBy::Model { stage: a, .. }, DecidedBy::Model { stage: b, .. }) => {
                    !(*a == Stage::Fast && *b == Stage::Context)
                }
            },
        }
    }

    /// The visibility this verdict gives the item version it is about.
    ///
    /// With `premoderation`, items the model queued for review stay hidden until a person decides.
    pub fn visibility(&self, premoderation: bool) -> Visibility {
        match self.action {
            Action::Allow | Action::Restore => Visibility::Visible,
            Action::Suppress => Visibility::Suppressed,
            Action::Hold => Visibility::Pending,
            Action::Review if premoderation => Visibility::Pending,
            Action::Review => Visibility::Visible,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(version: u64, by: DecidedBy, action: Action) -> Verdict {
        Verdict {
            item_id: "a".into(),
            item_version: version,
            action,
            decided_by: by,
            category: None,
            score: None,
            scores: None,
            fast_scores: None,
            reason: String::new(),
            channel_id: None,
            explanation: Vec::new(),
            decided_at: Utc::now(),
        }
    }

    fn model() -> DecidedBy {
        DecidedBy::Model {
            model_version: "m1".into(),
            stage: Stage::Fast,
        }
    }

    fn context() -> DecidedBy {
        DecidedBy::Model {
            model_version: "c1".into(),
            stage: Stage::Context,
        }
    }

    #[test]
    fn the_context_stage_supersedes_the_fast_model_for_the_same_version() {
        let fast = verdict(1, model(), Action::Review);
        let ctx = verdict(1, context(), Action::Suppress);
        assert!(ctx.outranks(&fast));
        assert!(
            !fast.outranks(&ctx),
            "a late or re-delivered fast verdict loses"
        );
        assert!(
            verdict(1, context(), Action::Allow).outranks(&ctx),
            "a re-scoring"
        );
        assert!(verdict(1, human(3), Action::Restore).outranks(&ctx));
        assert!(!ctx.outranks(&verdict(1, human(3), Action::Restore)));
        assert!(
            verdict(2, model(), Action::Allow).outranks(&ctx),
            "a new version"
        );
        assert!(!ctx.outranks(&verdict(2, model(), Action::Allow)));
        // Verdicts written before stages existed read as the fast model's.
        let old: Verdict = serde_json::from_value(serde_json::json!({
            "item_id": "a", "item_version": 1, "action": "allow", "reason": "",
            "decided_by": {"by": "model", "model_version": "m0"},
            "decided_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert!(matches!(
            old.decided_by,
            DecidedBy::Model {
                stage: Stage::Fast,
                ..
            }
        ));
    }

    fn human(id: i64) -> DecidedBy {
        DecidedBy::Human {
            moderator: "ann".into(),
            decision_id: id,
        }
    }

    #[test]
    fn precedence() {
        let m1 = verdict(1, model(), Action::Suppress);
        let h1 = verdict(1, human(5), Action::Restore);
        let h1_later = verdict(1, human(6), Action::Suppress);
        let m2 = verdict(2, model(), Action::Allow);
        assert!(h1.outranks(&m1));
        assert!(
            !m1.outranks(&h1),
            "a re-delivered model verdict must not undo a person"
        );
        assert!(h1_later.outranks(&h1));
        assert!(
            !h1.outranks(&h1_later),
            "an older decision arriving late loses"
        );
        assert!(
            m2.outranks(&h1_later),
            "a new item version is judged afresh"
        );
        assert!(!m1.outranks(&m2), "a verdict about an older version loses");
    }

    #[test]
    fn visibility_follows_action_and_mode() {
        let review = verdict(1, model(), Action::Review);
        assert_eq!(review.visibility(false), Visibility::Visible);
        assert_eq!(review.visibility(true), Visibility::Pending);
        assert_eq!(
            verdict(1, model(), Action::Suppress).visibility(false),
            Visibility::Suppressed
        );
        assert_eq!(
            verdict(1, human(1), Action::Restore).visibility(true),
            Visibility::Visible
        );
    }

    #[test]
    fn wire_format() {
        let v = verdict(3, human(9), Action::Restore);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["decided_by"]["by"], "human");
        assert_eq!(json["decided_by"]["decision_id"], 9);
        assert_eq!(json["action"], "restore");
        let back: Verdict = serde_json::from_value(json).unwrap();
        assert_eq!(back, v);
    }
}
