//! Drafting a statement of reasons from a restriction and its facts: the database's statement,
//! and the text shown to the channel in its language where a template exists.

use chrono::{DateTime, NaiveDate, Utc};
use cordon_domain::{Category, ContentKind, Contribution};
use serde::{Deserialize, Serialize};

use crate::mapping::StatementsConfig;
use crate::schema::{
    AutomatedDecision, ContentType, DecisionGround, Invalid, SourceType, TdbStatement, YesNo,
    LANGUAGES,
};

/// What Cordon restricted, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restriction {
    /// The model hid the item from public search.
    ModelSuppression,
    /// A moderator hid the item from public search.
    ModeratorSuppression,
    /// Reports hid the item until a person decides.
    ReportHold,
    /// A senior moderator hid every item of the channel from public search.
    ChannelSuppression,
    /// The channel's strikes (restrictions people upheld) reached a threshold: every item of it
    /// hidden, for a time or for good.
    StrikeSuppression,
}

impl Restriction {
    /// Every restriction.
    pub const ALL: [Restriction; 5] = [
        Restriction::ModelSuppression,
        Restriction::ModeratorSuppression,
        Restriction::ReportHold,
        Restriction::ChannelSuppression,
        Restriction::StrikeSuppression,
    ];

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Restriction> {
        Restriction::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::ModelSuppression => "model_suppression",
            Restriction::ModeratorSuppression => "moderator_suppression",
            Restriction::ReportHold => "report_hold",
            Restriction::ChannelSuppression => "channel_suppression",
            Restriction::StrikeSuppression => "strike_suppression",
        }
    }

    /// Whether it restricts a whole channel (its subject is the channel's key).
    pub fn is_channel(self) -> bool {
        matches!(
            self,
            Restriction::ChannelSuppression | Restriction::StrikeSuppression
        )
    }
}

impl std::str::FromStr for Restriction {
    type Err = String;

    fn from_str(name: &str) -> Result<Restriction, String> {
        Restriction::parse(name).ok_or_else(|| format!("unknown restriction `{name}`"))
    }
}

/// Who brought the content to Cordon's attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// Cordon's model (own initiative).
    Model,
    /// A user's report through the platform (Art. 16).
    UserNotice,
    /// A trusted flagger's report (Art. 22), with its name.
    TrustedFlagger(String),
    /// A moderator on their own initiative (no model flag, no report).
    Moderator,
}

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// The system alone (the model's thresholds, or the report threshold of a hold).
    System,
    /// A person.
    Person,
}

/// Everything a statement is drafted from.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The statement's random id: its PUID is `<puid_prefix>-<id>` (no personal data, and
    /// never reused).
    pub id: uuid::Uuid,
    /// What was restricted, and how.
    pub restriction: Restriction,
    /// The category the restriction is for.
    pub category: Category,
    /// Who detected it.
    pub detection: Detection,
    /// Who decided.
    pub decider: Decider,
    /// Whether the model's assessment (its scores, its ranking of the queue, its explanation)
    /// was before the person who decided: their decision is then partially automated.
    pub model_assessed: bool,
    /// The item's kind (a channel suppression: the channel's profile).
    pub kind: ContentKind,
    /// Whether the item carries images.
    pub has_media: bool,
    /// The item's language (ISO 639-1), if known.
    pub language: Option<&'a str>,
    /// The item (or channel) id, shown to the channel, never sent to the database.
    pub subject: &'a str,
    /// When the content was published.
    pub published_at: DateTime<Utc>,
    /// When the restriction took effect.
    pub applied_at: DateTime<Utc>,
    /// The last day of a temporary restriction.
    pub until: Option<NaiveDate>,
    /// The model's score for the category, when the model took part.
    pub score: Option<f32>,
    /// The features that pushed the model's score most.
    pub explanation: &'a [Contribution],
}

/// A drafted statement: the database's form and what the channel is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The statement in the Transparency Database's schema.
    pub tdb: TdbStatement,
    /// The text shown to the channel.
    pub text: String,
    /// The text's language (a template's; English when the item's has none).
    pub text_language: String,
}

/// The words of the model's explanation a person can read: word n-grams and squeezed words,
/// strongest first (character n-grams are left out).
fn readable_signals(explanation: &[Contribution]) -> Vec<String> {
    explanation
        .iter()
        .filter(|c| c.weight > 0.0)
        .filter_map(|c| {
            c.feature
                .strip_prefix("w:")
                .or_else(|| c.feature.strip_prefix("s:"))
        })
        .map(|w| format!("“{w}”"))
        .take(3)
        .collect()
}

/// The channel-facing sentences of one language.
struct Template {
    language: &'static str,
    hidden: fn(what: &str, subject: &str, date: &str) -> String,
    until: fn(date: &str) -> String,
    by_model: &'static str,
    by_model_and_person: &'static str,
    by_person_after_notice: &'static str,
    by_person: &'static str,
    hold: &'static str,
    strikes: &'static str,
    signals: fn(list: &str) -> String,
    lifted: fn(what: &str, subject: &str, date: &str) -> String,
    corrects: fn(puid: &str, date: &str) -> String,
    post: &'static str,
    listing: &'static str,
    channel: &'static str,
}

const TEMPLATES: [Template; 3] = [
    Template {
        language: "en",
        hidden: |what, subject, date| {
            format!("Your {what} “{subject}” was hidden from public search on {date}")
        },
        until: |date| format!(" until {date}"),
        by_model: "Our automated system decided this.",
        by_model_and_person: "Our automated system flagged it and a moderator decided.",
        by_person_after_notice: "A moderator decided after a report.",
        by_person: "A moderator decided.",
        hold: "It is hidden after reports until a moderator decides.",
        strikes: "This follows repeated violations: moderators restricted several of the channel's items.",
        signals: |list| format!("The system noticed: {list}."),
        lifted: |what, subject, date| {
            format!("Your appeal was accepted: your {what} “{subject}” is shown in public search again since {date}.")
        },
        corrects: |puid, date| format!("This corrects the statement of reasons {puid} of {date}."),
        post: "post",
        listing: "listing",
        channel: "channel",
    },
    Template {
        language: "de",
        hidden: |what, subject, date| {
            format!(
                "Ihr {what} „{subject}“ wurde am {date} aus der öffentlichen Suche ausgeblendet"
            )
        },
        until: |date| format!(" bis {date}"),
        by_model: "Unser automatisches System hat dies entschieden.",
        by_model_and_person:
            "Unser automatisches System hat den Inhalt markiert, ein Moderator hat entschieden.",
        by_person_after_notice: "Ein Moderator hat nach einer Meldung entschieden.",
        by_person: "Ein Moderator hat entschieden.",
        hold: "Nach Meldungen ist der Inhalt ausgeblendet, bis ein Moderator entscheidet.",
        strikes: "Dies folgt auf wiederholte Verstöße: Moderatoren haben mehrere Inhalte des Kanals eingeschränkt.",
        signals: |list| format!("Das System bemerkte: {list}."),
        lifted: |what, subject, date| {
            format!("Ihrem Einspruch wurde stattgegeben: Ihr {what} „{subject}“ erscheint seit dem {date} wieder in der öffentlichen Suche.")
        },
        corrects: |puid, date| format!("Dies berichtigt die Begründung {puid} vom {date}."),
        post: "Beitrag",
        listing: "Angebot",
        channel: "Kanal",
    },
    Template {
        language: "fr",
        hidden: |what, subject, date| {
            format!("Votre {what} « {subject} » n’apparaît plus dans la recherche publique depuis le {date}")
        },
        until: |date| format!(" jusqu’au {date}"),
        by_model: "Notre système automatisé l’a décidé.",
        by_model_and_person:
            "Notre système automatisé a signalé le contenu et un modérateur a décidé.",
        by_person_after_notice: "Un modérateur a décidé après un signalement.",
        by_person: "Un modérateur a décidé.",
        hold: "Après des signalements, le contenu est masqué jusqu’à la décision d’un modérateur.",
        strikes: "Cela fait suite à des infractions répétées : des modérateurs ont restreint plusieurs contenus du canal.",
        signals: |list| format!("Le système a relevé : {list}."),
        lifted: |what, subject, date| {
            format!("Votre recours a été accepté : votre {what} « {subject} » apparaît de nouveau dans la recherche publique depuis le {date}.")
        },
        corrects: |puid, date| format!("Ceci corrige l’exposé des motifs {puid} du {date}."),
        post: "message",
        listing: "annonce",
        channel: "canal",
    },
];

/// Drafts the statement of a restriction. Its PUID is `<puid_prefix>-<id>`; the result
/// passes [`TdbStatement::validate`], or the error names the rule the configuration breaks.
pub fn draft(config: &StatementsConfig, facts: &Facts<'_>) -> Result<Draft, Invalid> {
    let ground = config.categories.of(facts.category);
    let automated_detection = match facts.detection {
        Detection::Model => YesNo::Yes,
        _ => YesNo::No,
    };
    let automated_decision = match facts.decider {
        Decider::System => AutomatedDecision::Fully,
        Decider::Person if facts.model_assessed => AutomatedDecision::Partially,
        Decider::Person => AutomatedDecision::NotAutomated,
    };
    let (source_type, source_identity) = match &facts.detection {
        Detection::Model | Detection::Moderator => (SourceType::Voluntary, None),
        Detection::UserNotice => (SourceType::Article16, None),
        Detection::TrustedFlagger(name) => (SourceType::TrustedFlagger, Some(name.clone())),
    };
    let mut content_type = vec![match facts.kind {
        ContentKind::Listing => ContentType::Product,
        ContentKind::ChannelPost | ContentKind::ChannelProfile => ContentType::Text,
    }];
    if facts.has_media {
        content_type.push(ContentType::Image);
    }
    let signals = readable_signals(facts.explanation);
    let how = match (facts.restriction, automated_decision) {
        (Restriction::ReportHold, _) => "held from public search after user reports until a moderator decides",
        (Restriction::ChannelSuppression, _) => "every item of the channel hidden from public search by a senior moderator",
        (Restriction::StrikeSuppression, _) => "every item of the channel hidden from public search automatically, after moderators had restricted several of its items",
        (_, AutomatedDecision::Fully) => "hidden from public search by the platform's automated classifier",
        (_, AutomatedDecision::Partially) => "assessed by the platform's automated classifier and hidden from public search by a moderator",
        (_, AutomatedDecision::NotAutomated) => "hidden from public search by a moderator",
    };
    let mut decision_facts = format!(
        "The {} was {how}. {}",
        kind_name(facts.kind),
        ground.explanation
    );
    if let Some(score) = facts.score {
        decision_facts.push_str(&format!(" Classifier score for the category: {score:.2}."));
    }
    // The model's signals are the author's own words, which may name people, numbers or
    // accounts: they are shown to the channel, never sent to the public database (a statement
    // there carries no personal data).
    let (legal, incompatible) = match ground.ground {
        DecisionGround::IllegalContent => (
            (
                Some(ground.legal_ground.clone()),
                Some(ground.explanation.clone()),
            ),
            (None, None),
        ),
        DecisionGround::IncompatibleContent => (
            (None, None),
            (
                Some(ground.legal_ground.clone()),
                Some(ground.explanation.clone()),
            ),
        ),
    };
    let tdb = TdbStatement {
        decision_visibility: vec![config.hidden_means.visibility()],
        end_date_visibility_restriction: facts.until.map(|d| d.format("%Y-%m-%d").to_string()),
        decision_ground: ground.ground,
        decision_ground_reference_url: ground.reference_url.clone(),
        illegal_content_legal_ground: legal.0,
        illegal_content_explanation: legal.1,
        incompatible_content_ground: incompatible.0,
        incompatible_content_explanation: incompatible.1,
        content_type,
        category: ground.category,
        category_specification: ground.keywords.clone(),
        territorial_scope: config.territorial_scope.clone(),
        content_language: facts
            .language
            .map(str::to_ascii_uppercase)
            .filter(|l| LANGUAGES.contains(&l.as_str())),
        content_date: content_date(facts.published_at, facts.applied_at),
        application_date: facts.applied_at.format("%Y-%m-%d").to_string(),
        decision_facts: decision_facts.chars().take(5000).collect(),
        source_type,
        source_identity,
        automated_detection,
        automated_decision,
        puid: format!("{}-{}", config.puid_prefix, facts.id.simple()),
    };
    tdb.validate()?;
    let template = facts
        .language
        .and_then(|l| {
            TEMPLATES
                .iter()
                .find(|t| t.language.eq_ignore_ascii_case(l))
        })
        .unwrap_or(&TEMPLATES[0]);
    let what = match (facts.restriction, facts.kind) {
        (Restriction::ChannelSuppression | Restriction::StrikeSuppression, _)
        | (_, ContentKind::ChannelProfile) => template.channel,
        (_, ContentKind::Listing) => template.listing,
        (_, ContentKind::ChannelPost) => template.post,
    };
    let date = facts.applied_at.format("%Y-%m-%d").to_string();
    let mut text = (template.hidden)(what, facts.subject, &date);
    if let Some(until) = facts.until {
        text.push_str(&(template.until)(&until.format("%Y-%m-%d").to_string()));
    }
    text.push_str(". ");
    text.push_str(&ground.explanation);
    text.push_str(&format!(" ({}). ", ground.legal_ground));
    text.push_str(match (facts.restriction, automated_decision, source_type) {
        (Restriction::ReportHold, _, _) => template.hold,
        (Restriction::StrikeSuppression, _, _) => template.strikes,
        (_, AutomatedDecision::Fully, _) => template.by_model,
        (_, _, SourceType::Article16 | SourceType::TrustedFlagger) => {
            template.by_person_after_notice
        }
        (_, AutomatedDecision::Partially, _) if automated_detection == YesNo::Yes => {
            template.by_model_and_person
        }
        _ => template.by_person,
    });
    if !signals.is_empty() {
        text.push(' ');
        text.push_str(&(template.signals)(&signals.join(", ")));
    }
    text.push(' ');
    text.push_str(&config.redress);
    Ok(Draft {
        tdb,
        text,
        text_language: template.language.to_string(),
    })
}

/// A restriction lifted on appeal, to be stated: the statement it corrects and when.
#[derive(Debug, Clone)]
pub struct Lifted<'a> {
    /// The correcting statement's random id (its PUID is `<puid_prefix>-<id>`).
    pub id: uuid::Uuid,
    /// The restriction lifted.
    pub restriction: Restriction,
    /// Its statement, as the database received it.
    pub original: &'a TdbStatement,
    /// The item (or channel) id, shown to the channel.
    pub subject: &'a str,
    /// The language the channel was told the restriction in.
    pub language: &'a str,
    /// When the restriction was lifted.
    pub lifted_at: DateTime<Utc>,
}

/// Drafts the statement that corrects a restriction's statement when a person reverses it on
/// appeal (statements are never edited): the same restriction, ended on the day it was lifted
/// (`end_date_visibility_restriction`), its facts saying so and naming the corrected PUID, and a
/// text telling the channel its content is back, in the language it was told before.
pub fn correction(config: &StatementsConfig, lifted: &Lifted<'_>) -> Result<Draft, Invalid> {
    let original = lifted.original;
    let lifted_on = lifted.lifted_at.format("%Y-%m-%d").to_string();
    let mut tdb = original.clone();
    tdb.puid = format!("{}-{}", config.puid_prefix, lifted.id.simple());
    tdb.end_date_visibility_restriction = Some(lifted_on.clone());
    let why = format!(
        " On {lifted_on} a person reversed this decision on the affected party's appeal and \
         lifted the restriction; this statement corrects statement {}.",
        original.puid
    );
    let room = 5000usize.saturating_sub(why.chars().count());
    tdb.decision_facts = original
        .decision_facts
        .chars()
        .take(room)
        .collect::<String>()
        + &why;
    tdb.validate()?;
    let template = TEMPLATES
        .iter()
        .find(|t| t.language == lifted.language)
        .unwrap_or(&TEMPLATES[0]);
    let what = match lifted.restriction {
        r if r.is_channel() => template.channel,
        _ if original.content_type.contains(&ContentType::Product) => template.listing,
        _ => template.post,
    };
    let text = format!(
        "{} {}",
        (template.lifted)(what, lifted.subject, &lifted_on),
        (template.corrects)(&original.puid, &original.application_date)
    );
    Ok(Draft {
        tdb,
        text,
        text_language: template.language.to_string(),
    })
}

/// The content's date as the database takes it: an author's clock is not trusted, so a date
/// before 2000 (the database's first) or after the restriction is moved into that range.
fn content_date(published_at: DateTime<Utc>, applied_at: DateTime<Utc>) -> String {
    let first = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    let applied = applied_at.date_naive();
    published_at
        .date_naive()
        .clamp(first.min(applied), applied)
        .format("%Y-%m-%d")
        .to_string()
}

fn kind_name(kind: ContentKind) -> &'static str {
    match kind {
        ContentKind::ChannelPost => "channel post",
        ContentKind::Listing => "marketplace listing",
        ContentKind::ChannelProfile => "channel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{DecisionVisibility, StatementCategory};

    fn facts(explanation: &[Contribution]) -> Facts<'_> {
        Facts {
            id: uuid::Uuid::from_u128(42),
            restriction: Restriction::ModelSuppression,
            category: Category::Drugs,
            detection: Detection::Model,
            decider: Decider::System,
            model_assessed: true,
            kind: ContentKind::ChannelPost,
            has_media: false,
            language: Some("de"),
            subject: "post/1",
            published_at: "2026-11-20T10:00:00Z".parse().expect("a date"),
            applied_at: "2026-11-21T08:00:00Z".parse().expect("a date"),
            until: None,
            score: Some(0.97),
            explanation,
        }
    }

    fn signals() -> Vec<Contribution> {
        ["w:buy cocaine", "c:<coc", "s:cocaine"]
            .iter()
            .map(|f| Contribution {
                feature: f.to_string(),
                weight: 1.5,
            })
            .collect()
    }

    #[test]
    fn a_model_suppression_is_fully_automated_and_own_initiative() {
        let explanation = signals();
        let d = draft(&StatementsConfig::default(), &facts(&explanation)).expect("drafted");
        let t = &d.tdb;
        assert_eq!(t.automated_detection, YesNo::Yes);
        assert_eq!(t.automated_decision, AutomatedDecision::Fully);
        assert_eq!(t.source_type, SourceType::Voluntary);
        assert_eq!(t.decision_visibility, vec![DecisionVisibility::Demoted]);
        assert_eq!(t.category, StatementCategory::UnsafeAndProhibitedProducts);
        assert_eq!(t.decision_ground, DecisionGround::IllegalContent);
        assert_eq!(t.content_language.as_deref(), Some("DE"));
        assert_eq!(
            (t.content_date.as_str(), t.application_date.as_str()),
            ("2026-11-20", "2026-11-21")
        );
        assert_eq!(t.puid, "cordon-0000000000000000000000000000002a");
        assert!(
            !t.decision_facts.contains("post/1") && !t.decision_facts.contains("cocaine"),
            "no item id and none of the author's words in the public database: {}",
            t.decision_facts
        );
        assert!(t.decision_facts.contains("0.97"), "{}", t.decision_facts);
        // The channel reads it in German, with the signals and the redress.
        assert!(d.text.contains("“buy cocaine”") && !d.text.contains("<coc"));
        assert_eq!(d.text_language, "de");
        assert!(
            d.text
                .starts_with("Ihr Beitrag „post/1“ wurde am 2026-11-21"),
            "{}",
            d.text
        );
        assert!(d.text.contains("Unser automatisches System") && d.text.contains("appeal"));
        // Exactly the database's field names and values.
        let json = serde_json::to_value(t).expect("json");
        assert_eq!(json["automated_decision"], "AUTOMATED_DECISION_FULLY");
        assert_eq!(
            json["category"],
            "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS"
        );
        assert_eq!(
            json["decision_visibility"][0],
            "DECISION_VISIBILITY_CONTENT_DEMOTED"
        );
        assert!(json.get("incompatible_content_ground").is_none());
    }

    #[test]
    fn a_person_with_the_models_assessment_is_partial_and_without_it_not_automated() {
        let mut f = facts(&[]);
        f.restriction = Restriction::ModeratorSuppression;
        f.decider = Decider::Person;
        let partial = draft(&StatementsConfig::default(), &f).expect("drafted");
        assert_eq!(partial.tdb.automated_decision, AutomatedDecision::Partially);
        assert!(partial.text.contains("markiert"), "{}", partial.text);
        // A report the model had scored: notice-sourced, partially automated.
        f.detection = Detection::UserNotice;
        let reported = draft(&StatementsConfig::default(), &f).expect("drafted");
        assert_eq!(
            (reported.tdb.source_type, reported.tdb.automated_decision),
            (SourceType::Article16, AutomatedDecision::Partially)
        );
        assert_eq!(reported.tdb.automated_detection, YesNo::No);
        f.model_assessed = false;
        f.language = Some("pt");
        let noticed = draft(&StatementsConfig::default(), &f).expect("drafted");
        assert_eq!(noticed.tdb.automated_detection, YesNo::No);
        assert_eq!(
            noticed.tdb.automated_decision,
            AutomatedDecision::NotAutomated
        );
        assert_eq!(noticed.tdb.source_type, SourceType::Article16);
        assert_eq!(
            noticed.text_language, "en",
            "no Portuguese template: English"
        );
        assert!(noticed.text.contains("after a report"), "{}", noticed.text);
        f.detection = Detection::TrustedFlagger("Hotline".into());
        let flagged = draft(&StatementsConfig::default(), &f).expect("drafted");
        assert_eq!(flagged.tdb.source_type, SourceType::TrustedFlagger);
        assert_eq!(flagged.tdb.source_identity.as_deref(), Some("Hotline"));
    }

    #[test]
    fn a_hold_is_automated_on_notices_and_a_temporary_restriction_has_its_end() {
        let mut f = facts(&[]);
        f.restriction = Restriction::ReportHold;
        f.detection = Detection::UserNotice;
        f.kind = ContentKind::Listing;
        f.has_media = true;
        f.language = None;
        f.until = NaiveDate::from_ymd_opt(2026, 12, 21);
        let d = draft(&StatementsConfig::default(), &f).expect("drafted");
        assert_eq!(d.tdb.automated_decision, AutomatedDecision::Fully);
        assert_eq!(d.tdb.source_type, SourceType::Article16);
        assert_eq!(
            d.tdb.content_type,
            vec![ContentType::Product, ContentType::Image]
        );
        assert_eq!(
            d.tdb.end_date_visibility_restriction.as_deref(),
            Some("2026-12-21")
        );
        assert!(
            d.text.contains("listing") && d.text.contains("until 2026-12-21"),
            "{}",
            d.text
        );
    }

    #[test]
    fn a_strike_suspension_is_automated_on_peoples_decisions_and_ends() {
        let mut f = facts(&[]);
        f.restriction = Restriction::StrikeSuppression;
        f.detection = Detection::Moderator;
        f.kind = ContentKind::ChannelProfile;
        f.language = Some("en");
        f.subject = "shop-7";
        f.score = None;
        f.until = NaiveDate::from_ymd_opt(2026, 11, 28);
        let d = draft(&StatementsConfig::default(), &f).expect("drafted");
        assert_eq!(
            (
                d.tdb.automated_detection,
                d.tdb.automated_decision,
                d.tdb.source_type
            ),
            (YesNo::No, AutomatedDecision::Fully, SourceType::Voluntary)
        );
        assert!(d
            .tdb
            .decision_facts
            .contains("after moderators had restricted several"));
        assert_eq!(
            d.tdb.end_date_visibility_restriction.as_deref(),
            Some("2026-11-28")
        );
        assert!(
            d.text.starts_with("Your channel “shop-7” was hidden from public search on 2026-11-21 until 2026-11-28.")
                && d.text.contains("repeated violations"),
            "{}",
            d.text
        );
    }

    #[test]
    fn a_ground_against_the_terms_fills_the_terms_fields() {
        let mut config = StatementsConfig::default();
        config.categories.other_illegal.ground = DecisionGround::IncompatibleContent;
        let mut f = facts(&[]);
        f.category = Category::OtherIllegal;
        let d = draft(&config, &f).expect("drafted");
        assert!(d.tdb.illegal_content_legal_ground.is_none());
        assert!(d.tdb.incompatible_content_ground.is_some());
        d.tdb.validate().expect("valid");
    }

    #[test]
    fn an_authors_clock_or_language_tag_does_not_break_the_statement() {
        for (published, language) in [
            ("1970-01-01T00:00:00Z", "\u{202e}xx"),
            ("2999-01-01T00:00:00Z", "xx"),
            ("2026-11-20T10:00:00Z", "zh"),
        ] {
            let mut f = facts(&[]);
            f.published_at = published.parse().expect("a date");
            f.language = Some(language);
            let d = draft(&StatementsConfig::default(), &f).expect("drafted");
            assert!(
                ["2000-01-01", "2026-11-21", "2026-11-20"].contains(&d.tdb.content_date.as_str()),
                "{}",
                d.tdb.content_date
            );
            assert_eq!(d.tdb.content_language, None);
        }
    }

    #[test]
    fn the_database_rules_refuse_what_it_would() {
        let d = draft(&StatementsConfig::default(), &facts(&[])).expect("drafted");
        let mut bad = d.tdb.clone();
        bad.puid = "cordon/42".into();
        assert_eq!(bad.validate().map_err(|e| e.field), Err("puid"));
        let mut bad = d.tdb.clone();
        bad.content_date = "1999-12-31".into();
        assert_eq!(bad.validate().map_err(|e| e.field), Err("content_date"));
        let mut bad = d.tdb.clone();
        bad.illegal_content_legal_ground = None;
        assert!(bad.validate().is_err());
        let mut bad = d.tdb;
        bad.decision_facts = "x".repeat(5001);
        assert_eq!(bad.validate().map_err(|e| e.field), Err("decision_facts"));
    }

    #[test]
    fn a_reversal_corrects_the_statement_with_the_day_the_restriction_ended() {
        let config = StatementsConfig::default();
        let mut original = draft(&config, &facts(&signals())).expect("drafted").tdb;
        original.decision_facts = "y".repeat(5000);
        let lifted = Lifted {
            id: uuid::Uuid::from_u128(43),
            restriction: Restriction::ModelSuppression,
            original: &original,
            subject: "post/1",
            language: "de",
            lifted_at: "2026-12-02T09:30:00Z".parse().expect("a date"),
        };
        let c = correction(&config, &lifted).expect("drafted");
        assert_ne!(c.tdb.puid, original.puid);
        assert_eq!(
            c.tdb.end_date_visibility_restriction.as_deref(),
            Some("2026-12-02")
        );
        assert_eq!(c.tdb.application_date, original.application_date);
        assert_eq!(
            c.tdb.decision_facts.chars().count(),
            5000,
            "kept in the limit"
        );
        assert!(c.tdb.decision_facts.ends_with(&format!(
            "lifted the restriction; this statement corrects statement {}.",
            original.puid
        )));
        assert_eq!(c.text_language, "de");
        assert!(
            c.text
                .contains("„post/1“ erscheint seit dem 2026-12-02 wieder")
                && c.text.contains(&original.puid),
            "{}",
            c.text
        );
        // Its end may not come before the restriction took effect.
        let early = Lifted {
            lifted_at: "2026-11-01T00:00:00Z".parse().expect("a date"),
            ..lifted
        };
        assert_eq!(
            correction(&config, &early).map_err(|e| e.field),
            Err("end_date_visibility_restriction")
        );
    }
}
