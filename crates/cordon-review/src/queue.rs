//! The work queue: roles, claim-next with leases, escalation, optimistic versions, and the
//! append-only audit log.
//!
//! Invariants:
//! - Two moderators never hold the same case: claiming locks the chosen row (`FOR UPDATE SKIP
//!   LOCKED`), so concurrent claims pick different cases.
//! - A claim is a lease: when it expires without a decision the case is claimable again; it is
//!   never lost.
//! - Every change bumps the case's `version`; an action naming an older version is refused.
//! - Every action writes an audit entry (actor, action, case before and after) in the same
//!   transaction; the table refuses updates and deletes for every role (trigger).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Row, Transaction};

use crate::{
    case_from_row, Case, CaseSource, CaseState, ReviewError, ReviewStore, Role, CASE_COLUMNS,
};

/// The queue priority of a case: its score, plus a little for reach (log scale, 0.1 per factor
/// of ten) and a quarter per distinct reporter. Age is added when the queue is ordered.
pub fn priority(score: f32, reach: Option<u64>, reporters: u32) -> f32 {
    let reach_boost = reach.map_or(0.0, |r| 0.1 * ((r as f64) + 1.0).log10() as f32);
    score + reach_boost + 0.25 * reporters as f32
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Entry id (increasing).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What: `claim`, `escalate`, `decide:suppress`, `decide:restore`, ...
    pub action: String,
    /// The case acted on, if any.
    pub case_id: Option<i64>,
    /// The item concerned.
    pub item_id: Option<String>,
    /// The case before the action.
    pub before: Option<serde_json::Value>,
    /// The case after the action.
    pub after: Option<serde_json::Value>,
    /// Reason or note.
    pub note: Option<String>,
}

/// Locks a case row for the rest of the transaction.
pub(crate) async fn lock_case(
    tx: &mut Transaction<'_, Postgres>,
    case_id: i64,
) -> Result<Case, ReviewError> {
    let row = sqlx::query(&format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE id = $1 FOR UPDATE"
    ))
    .bind(case_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ReviewError::NotFound(format!("case {case_id}")))?;
    Ok(case_from_row(&row)?)
}

/// Refuses an action on `case` by `moderator` when the case is escalated and the role is not
/// senior, when another moderator's lease holds it, or when it changed since `expected_version`.
pub(crate) fn check_may_act(
    case: &Case,
    moderator: &str,
    role: Role,
    expected_version: Option<i32>,
) -> Result<(), ReviewError> {
    check_may_see(case, role)?;
    if let Some(v) = expected_version {
        if v != case.version {
            return Err(ReviewError::Conflict(format!(
                "case {} changed since you opened it (version {} now, you saw {v})",
                case.id, case.version
            )));
        }
    }
    let held_by_other = case.state == CaseState::Claimed
        && case.lease_until.is_some_and(|t| t > Utc::now())
        && case.claimed_by.as_deref().is_some_and(|c| c != moderator);
    if held_by_other {
        return Err(ReviewError::Conflict(format!(
            "case {} is claimed by {}",
            case.id,
            case.claimed_by.as_deref().unwrap_or("someone")
        )));
    }
    Ok(())
}

/// The one gate of every decision about an item version — a case decision, an item decision,
/// each case of a bulk decision: locks the case named (checking it is about this item version)
/// and every other case about the item version, and applies [`check_may_act`] to each, so no
/// route can decide an escalated case below senior, a case another moderator holds, or a case
/// changed since the moderator saw it. Returns the case the decision resolves, for the audit
/// entry: the named one, else the item version's unresolved case.
pub(crate) async fn lock_for_decision(
    tx: &mut Transaction<'_, Postgres>,
    item_id: &str,
    item_version: u64,
    named: Option<(i64, Option<i32>)>,
    moderator: &str,
    role: Role,
) -> Result<Option<Case>, ReviewError> {
    let rows = sqlx::query(&format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE item_id = $1 AND item_version = $2
         ORDER BY id FOR UPDATE"
    ))
    .bind(item_id)
    .bind(item_version as i64)
    .fetch_all(&mut **tx)
    .await?;
    let cases: Vec<Case> = rows.iter().map(case_from_row).collect::<Result<_, _>>()?;
    let mut resolves = None;
    if let Some((case_id, expected_version)) = named {
        let case = match cases.iter().find(|c| c.id == case_id) {
            Some(c) => c.clone(),
            None => {
                let other = lock_case(tx, case_id).await?;
                return Err(ReviewError::Invalid(format!(
                    "case {case_id} is about {} version {}",
                    other.item_id, other.item_version
                )));
            }
        };
        check_may_act(&case, moderator, role, expected_version)?;
        resolves = Some(case);
    }
    for case in &cases {
        check_may_act(case, moderator, role, None)?;
    }
    // An item whose case is escalated on any version is the seniors' until they resolve it.
    let escalated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM cases WHERE item_id = $1 AND escalated AND state <> 'resolved')",
    )
    .bind(item_id)
    .fetch_one(&mut **tx)
    .await?;
    if escalated && !role.is_senior() {
        return Err(ReviewError::Forbidden(format!(
            "item {item_id} has an escalated case: senior moderators decide it"
        )));
    }
    Ok(resolves.or_else(|| cases.into_iter().find(|c| c.state != CaseState::Resolved)))
}

/// Most cases one moderator may hold claimed at once; claiming more is refused until one is
/// decided, escalated or its lease runs out.
pub const MAX_CLAIMS: i64 = 5;

/// Refuses an escalated case to a role below senior.
fn check_may_see(case: &Case, role: Role) -> Result<(), ReviewError> {
    if case.escalated && !role.is_senior() {
        return Err(ReviewError::Forbidden(format!(
            "case {} is escalated to senior moderators",
            case.id
        )));
    }
    Ok(())
}

/// Writes an audit entry in the caller's transaction.
pub(crate) async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    actor: &str,
    action: &str,
    item_id: &str,
    before: Option<&Case>,
    after: Option<&Case>,
    note: Option<&str>,
) -> Result<(), ReviewError> {
    let json = |c: Option<&Case>| c.map(serde_json::to_value).transpose();
    let (before_json, after_json) = (json(before)?, json(after)?);
    sqlx::query(
        "INSERT INTO audit_log (actor, action, case_id, item_id, before, after, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(actor)
    .bind(action)
    .bind(before.or(after).map(|c| c.id))
    .bind(item_id)
    .bind(before_json)
    .bind(after_json)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl ReviewStore {
    /// One case, as `role` may see it: an escalated case only for seniors and admins.
    pub async fn case_for(&self, id: i64, role: Role) -> Result<Case, ReviewError> {
        let case = self.case(id).await?;
        check_may_see(&case, role)?;
        Ok(case)
    }

    /// Claims the next case for `moderator`: the highest priority (plus a day's age = +1) among
    /// open cases and cases whose lease expired; seniors get escalated cases first. Returns
    /// `None` when nothing is waiting.
    pub async fn claim_next(
        &self,
        moderator: &str,
        role: Role,
        lease: Duration,
    ) -> Result<Option<Case>, ReviewError> {
        let mut tx = self.pool.begin().await?;
        // One moderator's claims are serialized, so the cap cannot be raced.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('claims:' || $1))")
            .bind(moderator)
            .execute(&mut *tx)
            .await?;
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM cases
             WHERE state = 'claimed' AND claimed_by = $1 AND lease_until > now()",
        )
        .bind(moderator)
        .fetch_one(&mut *tx)
        .await?;
        if held >= MAX_CLAIMS {
            return Err(ReviewError::Conflict(format!(
                "you hold {held} claimed cases; decide or escalate one before claiming more"
            )));
        }
        let row = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM cases
             WHERE (state IN ('open', 'escalated') OR (state = 'claimed' AND lease_until < now()))
               AND ($1 OR NOT escalated)
             ORDER BY escalated DESC,
                      priority + EXTRACT(EPOCH FROM now() - created_at) / 86400.0 DESC, id
             LIMIT 1 FOR UPDATE SKIP LOCKED"
        ))
        .bind(role.is_senior())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let before = case_from_row(&row)?;
        let after = sqlx::query(&format!(
            "UPDATE cases SET state = 'claimed', claimed_by = $2,
                    lease_until = now() + make_interval(secs => $3), version = version + 1,
                    updated_at = now()
             WHERE id = $1 RETURNING {CASE_COLUMNS}"
        ))
        .bind(before.id)
        .bind(moderator)
        .bind(lease.as_secs_f64())
        .fetch_one(&mut *tx)
        .await?;
        let after = case_from_row(&after)?;
        audit(
            &mut tx,
            moderator,
            "claim",
            &after.item_id,
            Some(&before),
            Some(&after),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(after))
    }

    /// Sends a case to the senior moderators' queue.
    pub async fn escalate(
        &self,
        case_id: i64,
        moderator: &str,
        role: Role,
        expected_version: Option<i32>,
        note: Option<&str>,
    ) -> Result<Case, ReviewError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_case(&mut tx, case_id).await?;
        check_may_act(&before, moderator, role, expected_version)?;
        if before.state == CaseState::Resolved {
            return Err(ReviewError::Conflict(format!("case {case_id} is resolved")));
        }
        let after = sqlx::query(&format!(
            "UPDATE cases SET state = 'escalated', escalated = true, claimed_by = NULL,
                    lease_until = NULL, version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {CASE_COLUMNS}"
        ))
        .bind(case_id)
        .fetch_one(&mut *tx)
        .await?;
        let after = case_from_row(&after)?;
        audit(
            &mut tx,
            moderator,
            "escalate",
            &after.item_id,
            Some(&before),
            Some(&after),
            note,
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Audit entries, newest first, for one case or all, as `role` may see them: below senior,
    /// nothing about escalated cases.
    pub async fn audit_log(
        &self,
        case_id: Option<i64>,
        limit: i64,
        role: Role,
    ) -> Result<Vec<AuditEntry>, ReviewError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, case_id, item_id, before, after, note FROM audit_log a
             WHERE ($1::bigint IS NULL OR case_id = $1)
               AND ($3 OR NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = a.case_id AND c.escalated))
             ORDER BY id DESC LIMIT $2",
        )
        .bind(case_id)
        .bind(limit)
        .bind(role.is_senior())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    case_id: r.try_get("case_id")?,
                    item_id: r.try_get("item_id")?,
                    before: r.try_get("before")?,
                    after: r.try_get("after")?,
                    note: r.try_get("note")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(ReviewError::from)
    }
}

/// Which cases to list. Every field narrows the list; `None` does not filter. Deserializes from
/// a query string, where an empty value (an HTML form's blank field) means `None`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CaseFilter {
    /// open, claimed, escalated or resolved; `None` lists the unresolved ones.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub state: Option<CaseState>,
    /// The category that brought the case.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub category: Option<String>,
    /// The item's language (`unknown` for cases without one).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub language: Option<String>,
    /// What brought the case.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub source: Option<CaseSource>,
    /// Only cases queued at least this many hours ago.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub min_age_hours: Option<f64>,
    /// Only cases queued at most this many hours ago.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub max_age_hours: Option<f64>,
}

fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(d)?.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Longest queue filter value (category, language, source), in bytes.
const MAX_FILTER_BYTES: usize = 64;

/// How many unresolved cases have one value of a facet.
#[derive(Debug, Clone, Serialize)]
pub struct Facet {
    /// The value (`unknown` for a case without one).
    pub value: String,
    /// Unresolved cases with it.
    pub cases: i64,
}

/// Unresolved cases the role sees, counted by category, language and source.
#[derive(Debug, Clone, Serialize)]
pub struct QueueCounts {
    /// All of them.
    pub total: i64,
    /// By category.
    pub category: Vec<Facet>,
    /// By language.
    pub language: Vec<Facet>,
    /// By source (model or report).
    pub source: Vec<Facet>,
}

impl ReviewStore {
    /// Cases matching `filter`, in queue order (escalated first for seniors, then priority plus
    /// age); escalated cases only for seniors and admins.
    pub async fn list_cases(
        &self,
        filter: &CaseFilter,
        role: Role,
        limit: i64,
    ) -> Result<Vec<Case>, ReviewError> {
        for value in [&filter.category, &filter.language].into_iter().flatten() {
            if value.len() > MAX_FILTER_BYTES {
                return Err(ReviewError::Invalid(format!(
                    "a filter value has at most {MAX_FILTER_BYTES} bytes"
                )));
            }
        }
        let finite = |h: Option<f64>| h.is_none_or(|h| h.is_finite() && (0.0..=1e6).contains(&h));
        if !finite(filter.min_age_hours) || !finite(filter.max_age_hours) {
            return Err(ReviewError::Invalid(
                "ages are hours from 0 to 1,000,000".into(),
            ));
        }
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM cases
             WHERE (CASE WHEN $1::text IS NULL THEN state <> 'resolved' ELSE state = $1 END)
               AND ($2 OR NOT escalated)
               AND ($3::text IS NULL OR category = $3)
               AND ($4::text IS NULL OR COALESCE(language, 'unknown') = $4)
               AND ($5::text IS NULL OR source = $5)
               AND ($6::float8 IS NULL OR created_at <= now() - make_interval(secs => $6 * 3600))
               AND ($7::float8 IS NULL OR created_at >= now() - make_interval(secs => $7 * 3600))
             ORDER BY escalated DESC,
                      priority + EXTRACT(EPOCH FROM now() - created_at) / 86400.0 DESC, id
             LIMIT $8"
        ))
        .bind(filter.state.map(CaseState::as_str))
        .bind(role.is_senior())
        .bind(&filter.category)
        .bind(&filter.language)
        .bind(filter.source.map(CaseSource::as_str))
        .bind(filter.min_age_hours)
        .bind(filter.max_age_hours)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(case_from_row).collect::<Result<_, _>>()?)
    }

    /// Unresolved cases the role sees, by category, language and source.
    pub async fn queue_counts(&self, role: Role) -> Result<QueueCounts, ReviewError> {
        let rows = sqlx::query(
            "SELECT CASE WHEN GROUPING(category) = 0 THEN 'category'
                         WHEN GROUPING(language) = 0 THEN 'language' ELSE 'source' END AS facet,
                    COALESCE(category, language, source) AS value,
                    count(*) AS count
             FROM (SELECT category, COALESCE(language, 'unknown') AS language, source FROM cases
                   WHERE state <> 'resolved' AND ($1 OR NOT escalated)) open
             GROUP BY GROUPING SETS ((category), (language), (source))
             ORDER BY facet, count DESC, value",
        )
        .bind(role.is_senior())
        .fetch_all(&self.pool)
        .await?;
        let mut counts = QueueCounts {
            total: 0,
            category: Vec::new(),
            language: Vec::new(),
            source: Vec::new(),
        };
        for row in &rows {
            let facet: String = row.try_get("facet")?;
            let entry = Facet {
                value: row.try_get("value")?,
                cases: row.try_get("count")?,
            };
            match facet.as_str() {
                "category" => {
                    counts.total += entry.cases;
                    counts.category.push(entry);
                }
                "language" => counts.language.push(entry),
                _ => counts.source.push(entry),
            }
        }
        Ok(counts)
    }
}

/// Queue figures for the stats page.
#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    /// Cases waiting or being worked (not resolved).
    pub open_cases: i64,
    /// Of those, escalated to seniors.
    pub escalated_cases: i64,
    /// Age of the oldest unresolved case, in seconds.
    pub oldest_open_age_seconds: f64,
    /// Moderator decisions per hour over the last 24 hours, oldest hour first.
    pub decisions_per_hour: Vec<HourCount>,
    /// Per category: how moderators decided the cases the model queued.
    pub agreement: Vec<CategoryAgreement>,
}

/// Decisions in one hour.
#[derive(Debug, Clone, Serialize)]
pub struct HourCount {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// Decisions made in it.
    pub decisions: i64,
}

/// Moderators' agreement with the model in one category.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryAgreement {
    /// The category.
    pub category: String,
    /// Model-queued cases a moderator suppressed (agreed the item is illegal).
    pub upheld: i64,
    /// Model-queued cases a moderator restored.
    pub overturned: i64,
    /// upheld / (upheld + overturned).
    pub agreement: f64,
}

impl ReviewStore {
    /// Open and escalated cases, the oldest open case's age, decisions per hour, and moderator
    /// agreement with the model per category.
    pub async fn queue_report(&self) -> Result<QueueReport, ReviewError> {
        let base = self.stats().await?;
        let escalated_cases: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM cases WHERE state <> 'resolved' AND escalated",
        )
        .fetch_one(&self.pool)
        .await?;
        let hours = sqlx::query(
            "SELECT date_trunc('hour', decided_at) AS hour, count(*) AS decisions FROM decisions
             WHERE decided_at > now() - interval '24 hours' AND moderator NOT LIKE 'system:%'
             GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        let report = QueueReport {
            open_cases: base.open_cases,
            escalated_cases,
            oldest_open_age_seconds: base.oldest_open_age_seconds,
            decisions_per_hour: hours
                .iter()
                .map(|r| {
                    Ok(HourCount {
                        hour: r.try_get("hour")?,
                        decisions: r.try_get("decisions")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?,
            agreement: self.agreement(None).await?,
        };
        Ok(report)
    }

    /// Per category, how moderators decided the cases the model queued: all of them, or those
    /// decided after `since`.
    pub async fn agreement(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<CategoryAgreement>, ReviewError> {
        let rows = sqlx::query(
            "SELECT c.category,
                    count(*) FILTER (WHERE d.action = 'suppress') AS upheld,
                    count(*) FILTER (WHERE d.action = 'restore') AS overturned
             FROM decisions d JOIN cases c ON c.id = d.case_id
             WHERE c.source = 'model' AND ($1::timestamptz IS NULL OR d.decided_at > $1)
             GROUP BY c.category ORDER BY c.category",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let agreement = rows
            .iter()
            .map(|r| {
                let upheld: i64 = r.try_get("upheld")?;
                let overturned: i64 = r.try_get("overturned")?;
                Ok(CategoryAgreement {
                    category: r.try_get("category")?,
                    upheld,
                    overturned,
                    agreement: if upheld + overturned == 0 {
                        0.0
                    } else {
                        upheld as f64 / (upheld + overturned) as f64
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(agreement)
    }
}

/// Most cases one bulk decision may name.
pub const BULK_LIMIT: usize = 1000;

/// The result of a bulk decision for one case.
#[derive(Debug, Clone, Serialize)]
pub struct BulkResult {
    /// The case.
    pub case_id: i64,
    /// The decision id, when it was recorded.
    pub decision_id: Option<i64>,
    /// Why it was not, otherwise.
    pub error: Option<String>,
}

impl ReviewStore {
    /// Decides up to [`BULK_LIMIT`] cases the same way, each in its own transaction (one refused
    /// case does not undo the others). `template` gives action, moderator, role, reason and note;
    /// its item and case fields are ignored.
    pub async fn decide_cases(
        &self,
        case_ids: &[i64],
        template: &crate::DecisionRequest,
    ) -> Result<Vec<BulkResult>, ReviewError> {
        if case_ids.is_empty() || case_ids.len() > BULK_LIMIT {
            return Err(ReviewError::Invalid(format!(
                "a bulk decision names 1 to {BULK_LIMIT} cases"
            )));
        }
        let distinct: std::collections::HashSet<i64> = case_ids.iter().copied().collect();
        if distinct.len() != case_ids.len() {
            return Err(ReviewError::Invalid(
                "a bulk decision names each case once".into(),
            ));
        }
        let mut results = Vec::with_capacity(case_ids.len());
        for &case_id in case_ids {
            let outcome = match self.case(case_id).await {
                Ok(case) => {
                    let req = crate::DecisionRequest {
                        item_id: case.item_id,
                        item_version: case.item_version,
                        case_id: Some(case_id),
                        expected_version: None,
                        ..template.clone()
                    };
                    self.decide(&req).await
                }
                Err(e) => Err(e),
            };
            results.push(match outcome {
                Ok(d) => BulkResult {
                    case_id,
                    decision_id: Some(d.id),
                    error: None,
                },
                Err(
                    e @ (ReviewError::Database(_)
                    | ReviewError::Migrate(_)
                    | ReviewError::Publish(_)),
                ) => return Err(e),
                Err(e) => BulkResult {
                    case_id,
                    decision_id: None,
                    error: Some(e.to_string()),
                },
            });
        }
        Ok(results)
    }
}
