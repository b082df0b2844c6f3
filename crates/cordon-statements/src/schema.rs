//! The EU Transparency Database's statement of reasons: field names and allowed values exactly as
//! its API documents them (aligned to Implementing Regulation (EU) 2024/2835), and the rules it
//! checks before it accepts one.

use serde::{Deserialize, Serialize};

/// How the visibility of the content was restricted (`decision_visibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionVisibility {
    /// Removed.
    #[serde(rename = "DECISION_VISIBILITY_CONTENT_REMOVED")]
    Removed,
    /// Disabled: not reachable at all.
    #[serde(rename = "DECISION_VISIBILITY_CONTENT_DISABLED")]
    Disabled,
    /// Demoted: still reachable by its link, but no longer found (hidden from search).
    #[serde(rename = "DECISION_VISIBILITY_CONTENT_DEMOTED")]
    Demoted,
}

/// Whether the content was illegal or against the terms (`decision_ground`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionGround {
    /// Illegal content: a legal ground is named.
    #[serde(rename = "DECISION_GROUND_ILLEGAL_CONTENT")]
    IllegalContent,
    /// Incompatible with the terms and conditions.
    #[serde(rename = "DECISION_GROUND_INCOMPATIBLE_CONTENT")]
    IncompatibleContent,
}

/// What kind of content it was (`content_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentType {
    /// Text.
    #[serde(rename = "CONTENT_TYPE_TEXT")]
    Text,
    /// An image.
    #[serde(rename = "CONTENT_TYPE_IMAGE")]
    Image,
    /// A product (a marketplace listing).
    #[serde(rename = "CONTENT_TYPE_PRODUCT")]
    Product,
}

/// The statement's category (`category`, `category_addition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // the names are the database's
pub enum StatementCategory {
    #[serde(rename = "STATEMENT_CATEGORY_ANIMAL_WELFARE")]
    AnimalWelfare,
    #[serde(rename = "STATEMENT_CATEGORY_CONSUMER_INFORMATION")]
    ConsumerInformation,
    #[serde(rename = "STATEMENT_CATEGORY_CYBER_VIOLENCE")]
    CyberViolence,
    #[serde(rename = "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN")]
    CyberViolenceAgainstWomen,
    #[serde(rename = "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS")]
    DataProtectionAndPrivacyViolations,
    #[serde(rename = "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH")]
    IllegalOrHarmfulSpeech,
    #[serde(rename = "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS")]
    IntellectualPropertyInfringements,
    #[serde(rename = "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS")]
    NegativeEffectsOnCivicDiscourseOrElections,
    #[serde(rename = "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE")]
    NotSpecifiedNotice,
    #[serde(rename = "STATEMENT_CATEGORY_OTHER_VIOLATION_TC")]
    OtherViolationTc,
    #[serde(rename = "STATEMENT_CATEGORY_PROTECTION_OF_MINORS")]
    ProtectionOfMinors,
    #[serde(rename = "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY")]
    RiskForPublicSecurity,
    #[serde(rename = "STATEMENT_CATEGORY_SCAMS_AND_FRAUD")]
    ScamsAndFraud,
    #[serde(rename = "STATEMENT_CATEGORY_SELF_HARM")]
    SelfHarm,
    #[serde(rename = "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS")]
    UnsafeAndProhibitedProducts,
    #[serde(rename = "STATEMENT_CATEGORY_VIOLENCE")]
    Violence,
}

/// Where the restriction came from (`source_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceType {
    /// A notice by a user (DSA Art. 16).
    #[serde(rename = "SOURCE_ARTICLE_16")]
    Article16,
    /// A notice by a trusted flagger (Art. 22).
    #[serde(rename = "SOURCE_TRUSTED_FLAGGER")]
    TrustedFlagger,
    /// Another notification.
    #[serde(rename = "SOURCE_TYPE_OTHER_NOTIFICATION")]
    OtherNotification,
    /// The platform's own initiative (its detection).
    #[serde(rename = "SOURCE_VOLUNTARY")]
    Voluntary,
}

/// `Yes` or `No` (`automated_detection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum YesNo {
    /// Yes.
    Yes,
    /// No.
    No,
}

/// How far the decision was automated (`automated_decision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutomatedDecision {
    /// Taken by the system alone.
    #[serde(rename = "AUTOMATED_DECISION_FULLY")]
    Fully,
    /// The system proposed, a person decided.
    #[serde(rename = "AUTOMATED_DECISION_PARTIALLY")]
    Partially,
    /// A person decided without the system's proposal.
    #[serde(rename = "AUTOMATED_DECISION_NOT_AUTOMATED")]
    NotAutomated,
}

/// The member states and EEA countries a restriction may apply in (`territorial_scope`).
pub const COUNTRIES: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The languages a statement names (`content_language`, ISO 639-1): the EU's official
/// languages and the other European languages the database lists. Another language is left
/// out (the field is optional), so a producer's tag can never make the database refuse a
/// statement.
pub const LANGUAGES: [&str; 40] = [
    "BG", "CS", "DA", "DE", "EL", "EN", "ES", "ET", "FI", "FR", "GA", "HR", "HU", "IT", "LT", "LV",
    "MT", "NL", "PL", "PT", "RO", "SK", "SL", "SV", "BS", "CA", "EU", "GL", "IS", "LB", "MK", "NO",
    "SQ", "SR", "TR", "UK", "RU", "BE", "CY", "HY",
];

/// The `KEYWORD_*` values of `category_specification` Cordon's mapping may use.
pub const KEYWORDS: [&str; 10] = [
    "KEYWORD_PROHIBITED_PRODUCTS",
    "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
    "KEYWORD_UNSAFE_PRODUCTS",
    "KEYWORD_TRADEMARK_INFRINGEMENT",
    "KEYWORD_DATA_FALSIFICATION",
    "KEYWORD_PHISHING",
    "KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING",
    "KEYWORD_INAUTHENTIC_LISTINGS",
    "KEYWORD_HUMAN_TRAFFICKING",
    "KEYWORD_OTHER",
];

/// One statement of reasons as the Transparency Database takes it (`POST /api/v1/statements`).
/// Dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TdbStatement {
    /// How visibility was restricted.
    pub decision_visibility: Vec<DecisionVisibility>,
    /// The last day of a temporary restriction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_visibility_restriction: Option<String>,
    /// Illegal or against the terms.
    pub decision_ground: DecisionGround,
    /// The law or the terms (a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_ground_reference_url: Option<String>,
    /// With illegal content: the legal ground (≤ 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub illegal_content_legal_ground: Option<String>,
    /// With illegal content: why it is illegal (≤ 2,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub illegal_content_explanation: Option<String>,
    /// With incompatible content: the terms' ground (≤ 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incompatible_content_ground: Option<String>,
    /// With incompatible content: why (≤ 2,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incompatible_content_explanation: Option<String>,
    /// What kind of content.
    pub content_type: Vec<ContentType>,
    /// The category.
    pub category: StatementCategory,
    /// `KEYWORD_*` values (see [`KEYWORDS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category_specification: Vec<String>,
    /// Where the restriction applies ([`COUNTRIES`]).
    pub territorial_scope: Vec<String>,
    /// The content's language, upper-case ISO 639-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// When the content was published.
    pub content_date: String,
    /// When the restriction was applied.
    pub application_date: String,
    /// The facts and circumstances (≤ 5,000).
    pub decision_facts: String,
    /// Where the restriction came from.
    pub source_type: SourceType,
    /// Who notified (not for own initiative; ≤ 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// Whether the content was detected by automated means.
    pub automated_detection: YesNo,
    /// How far the decision was automated.
    pub automated_decision: AutomatedDecision,
    /// The platform's unique id of the statement (`^[a-zA-Z0-9_-]+$`, ≤ 500, no personal data).
    pub puid: String,
}

/// A rule of the Transparency Database a statement breaks: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn check(ok: bool, field: &'static str, problem: &str) -> Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err(Invalid {
            field,
            problem: problem.to_string(),
        })
    }
}

fn at_most(value: &Option<String>, chars: usize, field: &'static str) -> Result<(), Invalid> {
    let length = value.as_deref().map_or(0, |v| v.chars().count());
    check(
        length <= chars,
        field,
        &format!("at most {chars} characters"),
    )
}

fn is_date(value: &str, after: &str) -> bool {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
        && value.len() == 10
        && value >= after
}

/// Whether `puid` is one the database takes: 1 to 500 characters of `[a-zA-Z0-9_-]`.
pub fn is_puid(puid: &str) -> bool {
    (1..=500).contains(&puid.len())
        && puid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl TdbStatement {
    /// The database's documented rules for one statement: the fields a ground requires, lengths,
    /// allowed values, dates, the PUID's pattern. The first rule broken, if any.
    pub fn validate(&self) -> Result<(), Invalid> {
        check(
            !self.decision_visibility.is_empty(),
            "decision_visibility",
            "a restriction of visibility is named",
        )?;
        match self.decision_ground {
            DecisionGround::IllegalContent => {
                check(
                    self.illegal_content_legal_ground.is_some()
                        && self.illegal_content_explanation.is_some(),
                    "illegal_content_legal_ground",
                    "illegal content names its legal ground and explanation",
                )?;
                check(
                    self.incompatible_content_ground.is_none(),
                    "incompatible_content_ground",
                    "only with incompatible content",
                )?;
            }
            DecisionGround::IncompatibleContent => {
                check(
                    self.incompatible_content_ground.is_some()
                        && self.incompatible_content_explanation.is_some(),
                    "incompatible_content_ground",
                    "incompatible content names its ground and explanation",
                )?;
                check(
                    self.illegal_content_legal_ground.is_none(),
                    "illegal_content_legal_ground",
                    "only with illegal content",
                )?;
            }
        }
        at_most(
            &self.illegal_content_legal_ground,
            500,
            "illegal_content_legal_ground",
        )?;
        at_most(
            &self.illegal_content_explanation,
            2000,
            "illegal_content_explanation",
        )?;
        at_most(
            &self.incompatible_content_ground,
            500,
            "incompatible_content_ground",
        )?;
        at_most(
            &self.incompatible_content_explanation,
            2000,
            "incompatible_content_explanation",
        )?;
        at_most(
            &self.decision_ground_reference_url,
            500,
            "decision_ground_reference_url",
        )?;
        check(
            !self.content_type.is_empty(),
            "content_type",
            "at least one content type",
        )?;
        check(
            self.category_specification
                .iter()
                .all(|k| KEYWORDS.contains(&k.as_str())),
            "category_specification",
            "only KEYWORD_* values the database knows",
        )?;
        check(
            !self.territorial_scope.is_empty()
                && self
                    .territorial_scope
                    .iter()
                    .all(|c| COUNTRIES.contains(&c.as_str())),
            "territorial_scope",
            "EU and EEA country codes",
        )?;
        check(
            self.content_language
                .as_deref()
                .is_none_or(|l| LANGUAGES.contains(&l)),
            "content_language",
            "an upper-case ISO 639-1 code of LANGUAGES",
        )?;
        check(
            is_date(&self.content_date, "2000-01-01"),
            "content_date",
            "YYYY-MM-DD, from 2000-01-01",
        )?;
        check(
            is_date(&self.application_date, "2020-01-01"),
            "application_date",
            "YYYY-MM-DD, from 2020-01-01",
        )?;
        if let Some(end) = &self.end_date_visibility_restriction {
            check(
                is_date(end, &self.application_date),
                "end_date_visibility_restriction",
                "YYYY-MM-DD, not before the application date",
            )?;
        }
        check(
            (1..=5000).contains(&self.decision_facts.chars().count()),
            "decision_facts",
            "1 to 5,000 characters",
        )?;
        at_most(&self.source_identity, 500, "source_identity")?;
        check(is_puid(&self.puid), "puid", "1 to 500 of [a-zA-Z0-9_-]")
    }
}
