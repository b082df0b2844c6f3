//! The one configurable mapping from Cordon's categories and moderators' reason codes to a
//! statement's ground, category and keywords (`[statements]` in the configuration). The defaults
//! are a judgement, not legal advice: a platform's lawyers set their own.

use std::collections::BTreeMap;

use cordon_domain::Category;
use serde::{Deserialize, Serialize};

use crate::schema::{
    is_puid, DecisionGround, DecisionVisibility, Invalid, StatementCategory, COUNTRIES, KEYWORDS,
};

/// What "hidden from public search" is in the database's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenMeans {
    /// Still reachable by its link, no longer found: `DECISION_VISIBILITY_CONTENT_DEMOTED`.
    Demoted,
    /// Not reachable at all (the platform also blocks the link):
    /// `DECISION_VISIBILITY_CONTENT_DISABLED`.
    Disabled,
}

impl HiddenMeans {
    /// The database's value.
    pub fn visibility(self) -> DecisionVisibility {
        match self {
            HiddenMeans::Demoted => DecisionVisibility::Demoted,
            HiddenMeans::Disabled => DecisionVisibility::Disabled,
        }
    }
}

/// The ground of a restriction in one of Cordon's categories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryGround {
    /// Illegal content (with a legal ground) or content against the terms.
    pub ground: DecisionGround,
    /// The legal ground (illegal content) or the terms' ground (≤ 500 characters).
    pub legal_ground: String,
    /// Why content of the category is illegal or against the terms (≤ 2,000 characters).
    pub explanation: String,
    /// The database's category.
    pub category: StatementCategory,
    /// Its `KEYWORD_*` specification.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The law or the terms, as a URL (≤ 500 characters).
    #[serde(default)]
    pub reference_url: Option<String>,
}

/// Each of Cordon's categories with its ground; a category set in the configuration is set
/// whole, the others keep their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)] // one field per category
pub struct CategoryGrounds {
    pub drugs: CategoryGround,
    pub weapons: CategoryGround,
    pub counterfeit: CategoryGround,
    pub stolen_data: CategoryGround,
    pub hacking: CategoryGround,
    pub other_illegal: CategoryGround,
}

impl CategoryGrounds {
    /// The ground of `category`.
    pub fn of(&self, category: Category) -> &CategoryGround {
        match category {
            Category::Drugs => &self.drugs,
            Category::Weapons => &self.weapons,
            Category::Counterfeit => &self.counterfeit,
            Category::StolenData => &self.stolen_data,
            Category::Hacking => &self.hacking,
            Category::OtherIllegal => &self.other_illegal,
        }
    }
}

impl Default for CategoryGrounds {
    fn default() -> CategoryGrounds {
        use StatementCategory::*;
        CategoryGrounds {
            drugs: illegal(
                "Trade in narcotic drugs and psychotropic substances (national drug laws; \
             Council Framework Decision 2004/757/JHA)",
                "The content offers narcotic drugs or psychotropic substances for sale.",
                UnsafeAndProhibitedProducts,
                "KEYWORD_PROHIBITED_PRODUCTS",
            ),
            weapons: illegal(
                "Illegal trade in firearms, ammunition and weapons (national weapons laws; \
             Directive (EU) 2021/555)",
                "The content offers firearms, ammunition or weapons without the licence \
             their sale requires.",
                UnsafeAndProhibitedProducts,
                "KEYWORD_PROHIBITED_PRODUCTS",
            ),
            counterfeit: illegal(
                "Forgery of documents and counterfeiting of currency (national criminal \
             law; Directive 2014/62/EU)",
                "The content offers forged identity documents, certificates or counterfeit \
             money.",
                UnsafeAndProhibitedProducts,
                "KEYWORD_PROHIBITED_PRODUCTS",
            ),
            stolen_data: illegal(
                "Unlawful processing and trade of personal data (Regulation (EU) 2016/679; \
             national computer-crime law)",
                "The content offers stolen personal data, accounts or payment card data.",
                DataProtectionAndPrivacyViolations,
                "KEYWORD_OTHER",
            ),
            hacking: illegal(
                "Attacks against information systems and tools for them (Directive \
             2013/40/EU)",
                "The content offers hacking services, malware or tools to attack \
             information systems.",
                RiskForPublicSecurity,
                "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
            ),
            other_illegal: illegal(
                "Other illegal trade (national criminal law: money laundering, wildlife and \
             organ trade, exam fraud)",
                "The content offers goods or services whose trade is illegal.",
                UnsafeAndProhibitedProducts,
                "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
            ),
        }
    }
}

/// `[statements]`: how statements of reasons are drafted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatementsConfig {
    /// Every PUID starts with it (letters, digits, `-`, `_`); a dash and the statement's
    /// random id follow.
    pub puid_prefix: String,
    /// What hiding an item from public search is.
    pub hidden_means: HiddenMeans,
    /// Where restrictions apply: EU and EEA country codes.
    pub territorial_scope: Vec<String>,
    /// How the channel appeals, appended to every text it is shown.
    pub redress: String,
    /// How a reporter asks for a decision on their report to be reviewed, sent with its outcome.
    pub notifier_redress: String,
    /// The grounds of each category.
    pub categories: CategoryGrounds,
    /// Moderators' reason codes that restrict, with the category each stands for (a decision
    /// with another code takes the category its case was queued for).
    pub reasons: BTreeMap<String, Category>,
}

fn illegal(
    legal_ground: &str,
    explanation: &str,
    category: StatementCategory,
    keyword: &str,
) -> CategoryGround {
    CategoryGround {
        ground: DecisionGround::IllegalContent,
        legal_ground: legal_ground.into(),
        explanation: explanation.into(),
        category,
        keywords: vec![keyword.into()],
        reference_url: None,
    }
}

impl Default for StatementsConfig {
    fn default() -> StatementsConfig {
        StatementsConfig {
            puid_prefix: "cordon".into(),
            hidden_means: HiddenMeans::Demoted,
            territorial_scope: COUNTRIES.iter().map(|c| c.to_string()).collect(),
            redress:
                "You can appeal this decision within six months; a person who did not take it \
                      will review it."
                    .into(),
            notifier_redress: "If you disagree with this decision, you can ask for it to be \
                               reviewed within six months."
                .into(),
            categories: CategoryGrounds::default(),
            reasons: [
                ("illegal_drugs", Category::Drugs),
                ("illegal_weapons", Category::Weapons),
                ("counterfeit", Category::Counterfeit),
                ("stolen_data", Category::StolenData),
                ("hacking_services", Category::Hacking),
                ("other_illegal_trade", Category::OtherIllegal),
            ]
            .into_iter()
            .map(|(code, category)| (code.to_string(), category))
            .collect(),
        }
    }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> Invalid {
    Invalid {
        field,
        problem: problem.into(),
    }
}

impl StatementsConfig {
    /// Checks what the database would refuse in every statement drafted from it, so a mistake
    /// stops the process at start instead of every submission.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !is_puid(&self.puid_prefix) || self.puid_prefix.len() > 100 {
            return Err(invalid(
                "statements.puid_prefix",
                "1 to 100 of [a-zA-Z0-9_-]",
            ));
        }
        if self.territorial_scope.is_empty()
            || !self
                .territorial_scope
                .iter()
                .all(|c| COUNTRIES.contains(&c.as_str()))
        {
            return Err(invalid(
                "statements.territorial_scope",
                format!("EU and EEA country codes: {}", COUNTRIES.join(", ")),
            ));
        }
        if self.redress.trim().is_empty() {
            return Err(invalid(
                "statements.redress",
                "how to appeal, for the channel",
            ));
        }
        if self.notifier_redress.trim().is_empty() {
            return Err(invalid(
                "statements.notifier_redress",
                "how a reporter asks for a review, sent with the outcome",
            ));
        }
        for category in Category::ALL {
            let g = self.categories.of(category);
            let long =
                |text: &str, chars: usize| text.trim().is_empty() || text.chars().count() > chars;
            if long(&g.legal_ground, 500)
                || long(&g.explanation, 2000)
                || g.reference_url.as_deref().is_some_and(|u| {
                    long(u, 500) || !(u.starts_with("https://") || u.starts_with("http://"))
                })
            {
                return Err(invalid(
                    "statements.categories",
                    format!(
                        "{}: legal_ground 1 to 500 characters, explanation 1 to 2,000, \
                         reference_url an http(s) URL of at most 500",
                        category.as_str()
                    ),
                ));
            }
            if let Some(k) = g.keywords.iter().find(|k| !KEYWORDS.contains(&k.as_str())) {
                return Err(invalid(
                    "statements.categories",
                    format!(
                        "{}: keyword {k} is not one of {}",
                        category.as_str(),
                        KEYWORDS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The category a moderator's reason code stands for, if it restricts.
    pub fn reason_category(&self, reason: &str) -> Option<Category> {
        self.reasons.get(reason).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_cover_every_restricting_reason() {
        let config = StatementsConfig::default();
        config.validate().expect("valid defaults");
        assert_eq!(
            config.reason_category("illegal_drugs"),
            Some(Category::Drugs)
        );
        assert_eq!(config.reason_category("not_illegal"), None);
    }

    #[test]
    fn mistakes_are_named() {
        let config = StatementsConfig {
            territorial_scope: vec!["US".into()],
            ..StatementsConfig::default()
        };
        assert_eq!(
            config.validate().map_err(|e| e.field),
            Err("statements.territorial_scope")
        );
        let mut config = StatementsConfig::default();
        config.categories.hacking.keywords = vec!["KEYWORD_MADE_UP".into()];
        assert!(config
            .validate()
            .is_err_and(|e| e.problem.contains("KEYWORD_MADE_UP")));
        let config = StatementsConfig {
            puid_prefix: "cordon/prod".into(),
            ..StatementsConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn the_mapping_reads_from_toml() {
        let config: StatementsConfig = serde_json::from_value(serde_json::json!({
            "hidden_means": "disabled",
            "reasons": {"drugs_offer": "drugs"},
        }))
        .expect("a partial mapping");
        assert_eq!(
            config.hidden_means.visibility(),
            DecisionVisibility::Disabled
        );
        assert_eq!(config.reason_category("drugs_offer"), Some(Category::Drugs));
        assert_eq!(
            config.reason_category("illegal_drugs"),
            None,
            "a map replaces the default"
        );
    }
}
