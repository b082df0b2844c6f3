//! Statements of reasons, stored: one drafted for every restriction when it is applied — a model
//! suppression with its batch, a moderator's suppression, a report hold or a channel suppression
//! in the transaction that records it — and never edited afterwards (the table refuses updates
//! and deletes by trigger; a correction is a new statement).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cordon_domain::{Category, ContentItem, ContentKind, Contribution};
use cordon_statements::{
    draft, Decider, Detection, Draft, Facts, Restriction, StatementsConfig, TdbStatement,
};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use tracing::{error, warn};

use crate::{parsed, Case, CaseSource, Decision, ReviewError, ReviewStore, Role};

/// What a statement states about an item besides the decision, as the worker saw its newest
/// version (stored beside the item's version).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemFacts {
    /// The channel it was published in.
    pub channel_id: String,
    /// Post, listing or channel profile.
    pub kind: ContentKind,
    /// When the author published it (by the author's clock).
    pub published_at: DateTime<Utc>,
    /// Whether it carries pictures.
    pub has_images: bool,
    /// The producer's language tag, if any.
    pub language: Option<String>,
}

impl ItemFacts {
    /// What a statement says of an item the worker recorded nothing about (a decision about an
    /// item Cordon never saw): a post, published when it was restricted.
    pub fn unknown(at: DateTime<Utc>) -> ItemFacts {
        ItemFacts {
            channel_id: String::new(),
            kind: ContentKind::ChannelPost,
            published_at: at,
            has_images: false,
            language: None,
        }
    }

    /// The facts of an item.
    pub fn of(item: &ContentItem) -> ItemFacts {
        ItemFacts {
            channel_id: item.channel.id.clone(),
            kind: item.kind,
            published_at: item.published_at,
            has_images: item.has_images(),
            language: item.lang.clone(),
        }
    }
}

/// An item version the model hid from public search, to be stated.
#[derive(Debug, Clone)]
pub struct ModelSuppression {
    /// The item.
    pub item_id: String,
    /// Its version.
    pub item_version: u64,
    /// The category that reached its suppression threshold.
    pub category: Category,
    /// Its score.
    pub score: f32,
    /// The features that pushed the score most.
    pub explanation: Vec<Contribution>,
    /// The item's facts, when the caller has the item (else the ones the worker recorded).
    pub facts: Option<ItemFacts>,
    /// When the model decided.
    pub decided_at: DateTime<Utc>,
}

/// A stored statement of reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// Its id in Cordon.
    pub id: i64,
    /// The platform-unique id the Transparency Database knows it by.
    pub puid: String,
    /// What was restricted, and how.
    pub restriction: Restriction,
    /// The item restricted (for a channel suppression, the channel's key `channel:<id>`).
    pub subject: String,
    /// The item version restricted.
    pub item_version: Option<u64>,
    /// The item's channel.
    pub channel_id: Option<String>,
    /// The decision it states, when a person or the reports decided.
    pub decision_id: Option<i64>,
    /// The case that decision was made on, if any.
    pub case_id: Option<i64>,
    /// The category it is for.
    pub category: Category,
    /// When the restriction took effect.
    pub applied_at: DateTime<Utc>,
    /// The statement in the Transparency Database's schema.
    pub tdb: TdbStatement,
    /// What the channel is told.
    pub text: String,
    /// The language of `text`.
    pub text_language: String,
    /// The statement this one corrects (a restriction lifted on appeal).
    pub corrects: Option<i64>,
}

/// A drafted statement about to be stored.
struct Drafted {
    restriction: Restriction,
    subject: String,
    item_version: Option<u64>,
    channel_id: Option<String>,
    decision_id: Option<i64>,
    case_id: Option<i64>,
    category: Category,
    applied_at: DateTime<Utc>,
    corrects: Option<i64>,
    draft: Draft,
}

/// Whether a statement's decision was made on an escalated case (seniors' only).
const ESCALATED: &str =
    "EXISTS (SELECT 1 FROM cases c WHERE c.id = statements.case_id AND c.escalated)";

/// Most statements the item view lists (the newest).
const MAX_LISTED: i64 = 100;

const STATEMENT_COLUMNS: &str = "id, puid, restriction, subject, item_version, channel_id, \
     decision_id, category, applied_at, tdb, text, text_language, corrects, case_id";

fn statement_from_row(row: &sqlx::postgres::PgRow) -> Result<Statement, sqlx::Error> {
    let category: String = row.try_get("category")?;
    Ok(Statement {
        id: row.try_get("id")?,
        puid: row.try_get("puid")?,
        restriction: parsed(row, "restriction")?,
        subject: row.try_get("subject")?,
        item_version: row
            .try_get::<Option<i64>, _>("item_version")?
            .map(|v| v as u64),
        channel_id: row.try_get("channel_id")?,
        decision_id: row.try_get("decision_id")?,
        case_id: row.try_get("case_id")?,
        category: Category::parse(&category).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "category".into(),
            source: format!("unknown category `{category}`").into(),
        })?,
        applied_at: row.try_get("applied_at")?,
        tdb: row.try_get::<Json<TdbStatement>, _>("tdb")?.0,
        text: row.try_get("text")?,
        text_language: row.try_get("text_language")?,
        corrects: row.try_get("corrects")?,
    })
}

/// Stores drafted statements; one the database already holds (the same model suppression
/// processed again) is left alone. Returns the new ones' ids.
async fn insert(conn: &mut PgConnection, drafted: &[Drafted]) -> Result<Vec<i64>, ReviewError> {
    if drafted.is_empty() {
        return Ok(Vec::new());
    }
    let tdb = drafted
        .iter()
        .map(|d| serde_json::to_value(&d.draft.tdb))
        .collect::<Result<Vec<_>, _>>()?;
    let column = |f: fn(&Drafted) -> &str| drafted.iter().map(f).collect::<Vec<&str>>();
    let result = sqlx::query_scalar(
        "INSERT INTO statements (puid, restriction, subject, item_version, channel_id, decision_id,
                                 category, applied_at, tdb, text, text_language, case_id,
                                 corrects)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                              $6::bigint[], $7::text[], $8::timestamptz[], $9::jsonb[], $10::text[],
                              $11::text[], $12::bigint[], $13::bigint[])
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(column(|d| &d.draft.tdb.puid))
    .bind(column(|d| d.restriction.as_str()))
    .bind(column(|d| &d.subject))
    .bind(
        drafted
            .iter()
            .map(|d| d.item_version.map(|v| v as i64))
            .collect::<Vec<_>>(),
    )
    .bind(
        drafted
            .iter()
            .map(|d| d.channel_id.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(drafted.iter().map(|d| d.decision_id).collect::<Vec<_>>())
    .bind(column(|d| d.category.as_str()))
    .bind(drafted.iter().map(|d| d.applied_at).collect::<Vec<_>>())
    .bind(tdb)
    .bind(column(|d| &d.draft.text))
    .bind(column(|d| &d.draft.text_language))
    .bind(drafted.iter().map(|d| d.case_id).collect::<Vec<_>>())
    .bind(drafted.iter().map(|d| d.corrects).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    Ok(result)
}

/// The facts the worker recorded about the newest versions of these items, for those it saw.
async fn facts_of(
    conn: &mut PgConnection,
    item_ids: &[&str],
) -> Result<HashMap<String, ItemFacts>, ReviewError> {
    let rows = sqlx::query(
        "SELECT item_id, channel_id, kind, published_at, has_images, language FROM item_versions
         WHERE item_id = ANY($1) AND kind IS NOT NULL",
    )
    .bind(item_ids)
    .fetch_all(conn)
    .await?;
    let facts = rows.iter().map(|row| {
        let kind: String = row.try_get("kind")?;
        Ok((
            row.try_get("item_id")?,
            ItemFacts {
                channel_id: row
                    .try_get::<Option<String>, _>("channel_id")?
                    .unwrap_or_default(),
                kind: ContentKind::parse(&kind).unwrap_or(ContentKind::ChannelPost),
                published_at: row.try_get("published_at")?,
                has_images: row
                    .try_get::<Option<bool>, _>("has_images")?
                    .unwrap_or(false),
                language: row.try_get("language")?,
            },
        ))
    });
    Ok(facts.collect::<Result<_, sqlx::Error>>()?)
}

/// Statement `id`, and whether it states a decision on an escalated case.
pub(crate) async fn statement_in(
    conn: &mut PgConnection,
    id: i64,
) -> Result<(Statement, bool), ReviewError> {
    let row = sqlx::query(&format!(
        "SELECT {STATEMENT_COLUMNS}, {ESCALATED} AS escalated FROM statements WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| ReviewError::NotFound(format!("statement {id}")))?;
    Ok((statement_from_row(&row)?, row.try_get("escalated")?))
}

/// Who brought an item version to Cordon: a trusted flagger's report (the first flagger's
/// configured name names it), else a user's report, else `None`.
async fn notice(
    conn: &mut PgConnection,
    item_id: &str,
    item_version: u64,
) -> Result<Option<Detection>, ReviewError> {
    let first = sqlx::query(
        "SELECT lane, flagger_name FROM reports WHERE item_id = $1 AND item_version = $2
         ORDER BY (lane = 'trusted_flagger') DESC, id LIMIT 1",
    )
    .bind(item_id)
    .bind(item_version as i64)
    .fetch_optional(conn)
    .await?;
    let Some(first) = first else { return Ok(None) };
    let lane: String = first.try_get("lane")?;
    let name: Option<String> = first.try_get("flagger_name")?;
    Ok(Some(match (lane.as_str(), name) {
        ("trusted_flagger", Some(name)) => Detection::TrustedFlagger(name),
        _ => Detection::UserNotice,
    }))
}

/// Whether the model's assessment was before the moderator deciding `case`: a case the model
/// queued, or a reported item the model had scored.
fn model_assessed(case: &Case) -> bool {
    case.source == CaseSource::Model || case.scores.0.iter().any(|s| *s > 0.0)
}

/// What a decision restricts, for its statement.
pub(crate) struct DecisionStatement<'a> {
    /// The decision.
    pub decision: &'a Decision,
    /// What it restricts.
    pub restriction: Restriction,
    /// The case it was made on, if any.
    pub case: Option<&'a Case>,
    /// When a temporary restriction ends.
    pub until: Option<DateTime<Utc>>,
    /// The category it is for, when neither the reason nor the case says.
    pub category: Option<Category>,
}

impl ReviewStore {
    /// Drafts statements with this mapping (the defaults until it is set).
    pub fn with_statements(mut self, config: StatementsConfig) -> ReviewStore {
        self.statements = std::sync::Arc::new(config);
        self
    }

    /// Drafts one statement; a draft the database would refuse (a mapping that passed
    /// [`StatementsConfig::validate`] cannot produce one) is an error that names the rule.
    fn draft(&self, facts: &Facts<'_>) -> Result<Draft, ReviewError> {
        draft(&self.statements, facts)
            .map_err(|e| ReviewError::Invalid(format!("statement of reasons: {e}")))
    }

    /// Stores the statements of model suppressions (idempotent per item version). A statement
    /// that cannot be drafted is logged and left out, so it never blocks the pipeline.
    pub async fn state_model_suppressions(
        &self,
        suppressions: &[ModelSuppression],
    ) -> Result<u64, ReviewError> {
        let mut conn = self.pool.acquire().await?;
        let missing: Vec<&str> = suppressions
            .iter()
            .filter(|s| s.facts.is_none())
            .map(|s| s.item_id.as_str())
            .collect();
        let recorded = if missing.is_empty() {
            HashMap::new()
        } else {
            facts_of(&mut conn, &missing).await?
        };
        let drafted: Vec<Drafted> = suppressions
            .iter()
            .filter_map(|s| {
                let facts = match s.facts.as_ref().or_else(|| recorded.get(&s.item_id)) {
                    Some(facts) => facts.clone(),
                    None => {
                        warn!(item_id = %s.item_id, "no recorded facts for a suppressed item; its statement names none");
                        ItemFacts::unknown(s.decided_at)
                    }
                };
                let draft = self.draft(&Facts {
                    id: uuid::Uuid::new_v4(),
                    restriction: Restriction::ModelSuppression,
                    category: s.category,
                    detection: Detection::Model,
                    decider: Decider::System,
                    model_assessed: true,
                    kind: facts.kind,
                    has_media: facts.has_images,
                    language: facts.language.as_deref(),
                    subject: &s.item_id,
                    published_at: facts.published_at,
                    applied_at: s.decided_at,
                    until: None,
                    score: Some(s.score),
                    explanation: &s.explanation,
                });
                match draft {
                    Ok(draft) => Some(Drafted {
                        restriction: Restriction::ModelSuppression,
                        subject: s.item_id.clone(),
                        item_version: Some(s.item_version),
                        channel_id: Some(facts.channel_id).filter(|c| !c.is_empty()),
                        decision_id: None,
                        case_id: None,
                        category: s.category,
                        applied_at: s.decided_at,
                        corrects: None,
                        draft,
                    }),
                    Err(e) => {
                        error!(item_id = %s.item_id, error = %e, "no statement of reasons for a model suppression");
                        None
                    }
                }
            })
            .collect();
        Ok(insert(&mut conn, &drafted).await?.len() as u64)
    }

    /// Drafts and stores the statement of a decision that restricts, in its transaction;
    /// returns its id.
    pub(crate) async fn state_decision(
        &self,
        conn: &mut PgConnection,
        s: DecisionStatement<'_>,
    ) -> Result<i64, ReviewError> {
        let d = s.decision;
        let channel = s.restriction.is_channel();
        let (facts, detection) = if channel {
            (None, None)
        } else {
            (
                facts_of(conn, &[&d.item_id]).await?.remove(&d.item_id),
                notice(conn, &d.item_id, d.item_version).await?,
            )
        };
        let detection = match (s.case, detection) {
            // Reports hold an item: the notices are the source, whoever queued the case.
            (_, Some(notice)) if s.restriction == Restriction::ReportHold => notice,
            (Some(case), _) if case.source == CaseSource::Model => Detection::Model,
            (_, Some(notice)) => notice,
            (Some(case), None) if channel => notice(conn, &case.item_id, case.item_version)
                .await?
                .unwrap_or(Detection::Moderator),
            _ => Detection::Moderator,
        };
        let category = self
            .statements
            .reason_category(&d.reason)
            .or_else(|| s.case.and_then(|c| Category::parse(&c.category)))
            .or(s.category)
            .unwrap_or(Category::OtherIllegal);
        // The channel reads its own id; the statement is stored under the decision's key.
        let shown = d.channel_id.clone().filter(|_| channel);
        let shown = shown.as_deref().unwrap_or(&d.item_id);
        let known = facts.is_some();
        let facts = facts.unwrap_or_else(|| ItemFacts::unknown(d.decided_at));
        let draft = self.draft(&Facts {
            id: uuid::Uuid::new_v4(),
            restriction: s.restriction,
            category,
            detection,
            decider: match s.restriction {
                Restriction::ReportHold | Restriction::StrikeSuppression => Decider::System,
                _ => Decider::Person,
            },
            model_assessed: s.case.is_some_and(model_assessed),
            kind: if channel {
                ContentKind::ChannelProfile
            } else {
                facts.kind
            },
            has_media: facts.has_images,
            language: facts.language.as_deref(),
            subject: shown,
            published_at: facts.published_at,
            applied_at: d.decided_at,
            until: s.until.map(|t| t.date_naive()),
            score: s
                .case
                .filter(|c| model_assessed(c))
                .map(|c| c.scores.get(category)),
            explanation: &[],
        })?;
        let ids = insert(
            conn,
            &[Drafted {
                restriction: s.restriction,
                subject: d.item_id.clone(),
                item_version: (!channel).then_some(d.item_version),
                channel_id: d
                    .channel_id
                    .clone()
                    .or_else(|| known.then_some(facts.channel_id)),
                decision_id: Some(d.id),
                case_id: s.case.map(|c| c.id),
                category,
                applied_at: d.decided_at,
                corrects: None,
                draft,
            }],
        )
        .await?;
        ids.first()
            .copied()
            .ok_or_else(|| ReviewError::Conflict(format!("decision {} is stated already", d.id)))
    }

    /// Drafts and stores, in the caller's transaction, the statement correcting `original`
    /// when `decision` (a person's restore on appeal) lifted its restriction. Returns its id.
    pub(crate) async fn state_correction(
        &self,
        conn: &mut PgConnection,
        original: &Statement,
        decision: &Decision,
    ) -> Result<i64, ReviewError> {
        // The channel reads its own id, as in the statement corrected.
        let shown = original
            .channel_id
            .as_deref()
            .filter(|_| original.restriction.is_channel());
        let draft = cordon_statements::correction(
            &self.statements,
            &cordon_statements::Lifted {
                id: uuid::Uuid::new_v4(),
                restriction: original.restriction,
                original: &original.tdb,
                subject: shown.unwrap_or(&original.subject),
                language: &original.text_language,
                lifted_at: decision.decided_at,
            },
        )
        .map_err(|e| ReviewError::Invalid(format!("statement of reasons: {e}")))?;
        let ids = insert(
            conn,
            &[Drafted {
                restriction: original.restriction,
                subject: original.subject.clone(),
                item_version: original.item_version,
                channel_id: original.channel_id.clone(),
                decision_id: Some(decision.id),
                case_id: original.case_id,
                category: original.category,
                applied_at: decision.decided_at,
                corrects: Some(original.id),
                draft,
            }],
        )
        .await?;
        ids.first().copied().ok_or_else(|| {
            ReviewError::Conflict(format!("statement {} is corrected already", original.id))
        })
    }

    /// The facts the worker recorded about the newest versions of these items (those it saw).
    pub async fn item_facts(
        &self,
        item_ids: &[&str],
    ) -> Result<HashMap<String, ItemFacts>, ReviewError> {
        let mut conn = self.pool.acquire().await?;
        facts_of(&mut conn, item_ids).await
    }

    /// One statement, as `role` may see it: below senior, not one of a decision made on an
    /// escalated case.
    pub async fn statement(&self, id: i64, role: Role) -> Result<Statement, ReviewError> {
        let mut conn = self.pool.acquire().await?;
        let (statement, escalated) = statement_in(&mut conn, id).await?;
        if escalated && !role.is_senior() {
            return Err(ReviewError::Forbidden(format!(
                "statement {id} states a decision on an escalated case"
            )));
        }
        Ok(statement)
    }

    /// Up to `limit` statements applied in `[from, to)` with an id above `after`, in id order
    /// (a page of an export).
    pub async fn statements_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Statement>, ReviewError> {
        let rows = sqlx::query(&format!(
            "SELECT {STATEMENT_COLUMNS} FROM statements
             WHERE applied_at >= $1 AND applied_at < $2 AND id > $3 ORDER BY id LIMIT $4"
        ))
        .bind(from)
        .bind(to)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(statement_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// The newest statements (at most 100) about these items (or channel keys), oldest first,
    /// as `role` may see them.
    pub async fn statements_about(
        &self,
        subjects: &[String],
        role: Role,
    ) -> Result<Vec<Statement>, ReviewError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM (SELECT {STATEMENT_COLUMNS} FROM statements WHERE subject = ANY($1)
                              AND ($2 OR NOT {ESCALATED}) ORDER BY id DESC LIMIT $3) newest
             ORDER BY id"
        ))
        .bind(subjects)
        .bind(role.is_senior())
        .bind(MAX_LISTED)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(statement_from_row)
            .collect::<Result<_, _>>()?)
    }
}
