//! User reports: "report this search result".
//!
//! A report is unique per reporter and item (a second one is acknowledged, not counted), limited
//! per reporter per hour, and weighted by how the reporter's earlier reports were decided. It
//! opens a case for the item version (or raises the priority of its case); when enough distinct
//! reporters reported an item that no one decided yet, the item is held — hidden until a person
//! decides — through a `hold` decision published like any other. Deciding the case settles the
//! reports: suppress upholds them, restore rejects them.

use cordon_domain::{Action, Category, Scores};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};

use crate::{case_from_row, queue, ReviewError, ReviewStore, CASE_COLUMNS};

/// A report to record.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// The reported item.
    pub item_id: String,
    /// Its current version.
    pub item_version: u64,
    /// Who reports (account or anonymous token).
    pub reporter: String,
    /// Why: a category name or free reason code.
    pub reason: String,
    /// Optional details.
    pub details: Option<String>,
    /// The model's scores for the item, if it has them.
    pub scores: Option<Scores>,
    /// The item's language, if known.
    pub language: Option<String>,
}

/// Report limits.
#[derive(Debug, Clone, Copy)]
pub struct ReportLimits {
    /// Reports one reporter may file per hour.
    pub per_hour: i64,
    /// Distinct reporters that hide an item pending review.
    pub hide_at_reporters: i32,
}

/// What a report did.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOutcome {
    /// The report's id.
    pub report_id: i64,
    /// Whether this reporter had already reported the item (nothing was counted again).
    pub duplicate: bool,
    /// The case the report feeds.
    pub case_id: i64,
    /// Distinct reporters of this item version.
    pub reporters: i32,
    /// Whether the item is now held pending review.
    pub held: bool,
}

/// A report as moderators see it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Report id.
    pub id: i64,
    /// The item version reported.
    pub item_version: u64,
    /// Who reported.
    pub reporter: String,
    /// Why.
    pub reason: String,
    /// The reporter's words.
    pub details: Option<String>,
    /// The reporter's weight when filed.
    pub weight: f32,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// upheld or rejected, once decided.
    pub outcome: Option<String>,
}

/// A reporter's weight: 1 for a new reporter, lower the more of their reports were rejected.
fn weight(upheld: i32, rejected: i32) -> f32 {
    ((1 + upheld) as f32 / (1 + upheld + 2 * rejected) as f32).clamp(0.05, 1.0)
}

impl ReviewStore {
    /// The reports about an item, newest first.
    pub async fn reports(&self, item_id: &str, limit: i64) -> Result<Vec<Report>, ReviewError> {
        let rows = sqlx::query(
            "SELECT id, item_version, reporter, reason, details, weight, created_at, outcome
             FROM reports WHERE item_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(item_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Report {
                    id: r.try_get("id")?,
                    item_version: r.try_get::<i64, _>("item_version")? as u64,
                    reporter: r.try_get("reporter")?,
                    reason: r.try_get("reason")?,
                    details: r.try_get("details")?,
                    weight: r.try_get("weight")?,
                    created_at: r.try_get("created_at")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(ReviewError::from)
    }

    /// Records a report (see the module documentation).
    pub async fn report(
        &self,
        r: &NewReport,
        limits: ReportLimits,
    ) -> Result<ReportOutcome, ReviewError> {
        if r.reason.trim().is_empty() || r.reason.len() > 200 {
            return Err(ReviewError::Invalid(
                "reason must be 1 to 200 characters".into(),
            ));
        }
        if r.details.as_ref().is_some_and(|d| d.len() > 4000) {
            return Err(ReviewError::Invalid(
                "details must be at most 4000 characters".into(),
            ));
        }
        if r.reporter.trim().is_empty() {
            return Err(ReviewError::Invalid("reporter is required".into()));
        }
        let mut tx = self.pool.begin().await?;
        // Serialize one reporter's reports so the rate limit cannot be raced.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&r.reporter)
            .execute(&mut *tx)
            .await?;
        let existing = sqlx::query("SELECT id FROM reports WHERE reporter = $1 AND item_id = $2")
            .bind(&r.reporter)
            .bind(&r.item_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            let case = sqlx::query(&format!(
                "SELECT {CASE_COLUMNS}, reporters, held FROM cases WHERE item_id = $1 ORDER BY item_version DESC LIMIT 1"
            ))
            .bind(&r.item_id)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            let (case_id, reporters, held) = match case {
                Some(c) => (
                    c.try_get("id")?,
                    c.try_get("reporters")?,
                    c.try_get("held")?,
                ),
                None => (0, 0, false),
            };
            return Ok(ReportOutcome {
                report_id: row.try_get("id")?,
                duplicate: true,
                case_id,
                reporters,
                held,
            });
        }
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM reports WHERE reporter = $1 AND created_at > now() - interval '1 hour'",
        )
        .bind(&r.reporter)
        .fetch_one(&mut *tx)
        .await?;
        if recent >= limits.per_hour {
            return Err(ReviewError::RateLimited(format!(
                "at most {} reports per hour; try again later",
                limits.per_hour
            )));
        }
        let history = sqlx::query("SELECT upheld, rejected FROM reporters WHERE reporter = $1")
            .bind(&r.reporter)
            .fetch_optional(&mut *tx)
            .await?;
        let w = match history {
            Some(h) => weight(h.try_get("upheld")?, h.try_get("rejected")?),
            None => 1.0,
        };
        let report_id: i64 = sqlx::query_scalar(
            "INSERT INTO reports (item_id, item_version, reporter, reason, details, weight)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&r.item_id)
        .bind(r.item_version as i64)
        .bind(&r.reporter)
        .bind(&r.reason)
        .bind(&r.details)
        .bind(w)
        .fetch_one(&mut *tx)
        .await?;
        let scores = r.scores.unwrap_or_default();
        let (category, score) = match Category::parse(&r.reason) {
            Some(c) => (c, scores.get(c)),
            None => scores.top(),
        };
        let before = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE item_id = $1 AND item_version = $2 FOR UPDATE"
        ))
        .bind(&r.item_id)
        .bind(r.item_version as i64)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| case_from_row(&row))
        .transpose()?;
        // A new report reopens a version a moderator restored, unless the restore closed it
        // for good ("do not queue this version again").
        let reopen: bool = sqlx::query_scalar(
            "SELECT COALESCE((SELECT action = 'restore' AND NOT no_requeue FROM decisions
                              WHERE item_id = $1 AND item_version = $2
                                AND action IN ('suppress', 'restore')
                              ORDER BY id DESC LIMIT 1), false)",
        )
        .bind(&r.item_id)
        .bind(r.item_version as i64)
        .fetch_one(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "INSERT INTO cases (item_id, item_version, source, category, score, scores, reason,
                                reporters, report_weight, priority, language)
             VALUES ($1, $2, 'report', $3, $4, $5, $6, 1, $7, $4 + 0.25 * $7, $8)
             ON CONFLICT (item_id, item_version) DO UPDATE SET
                 state = CASE WHEN cases.state = 'resolved' AND $9 THEN 'open' ELSE cases.state END,
                 resolved_at = CASE WHEN cases.state = 'resolved' AND $9 THEN NULL
                                    ELSE cases.resolved_at END,
                 reporters = cases.reporters + 1,
                 report_weight = cases.report_weight + $7,
                 priority = cases.priority + 0.25 * $7,
                 version = cases.version + 1,
                 updated_at = now()
             RETURNING {CASE_COLUMNS}, reporters, held"
        ))
        .bind(&r.item_id)
        .bind(r.item_version as i64)
        .bind(category.as_str())
        .bind(score)
        .bind(Json(scores))
        .bind(format!("reported: {}", r.reason))
        .bind(w)
        .bind(&r.language)
        .bind(reopen)
        .fetch_one(&mut *tx)
        .await?;
        let mut after = case_from_row(&row)?;
        let reporters: i32 = row.try_get("reporters")?;
        let mut held: bool = row.try_get("held")?;
        queue::audit(
            &mut tx,
            &r.reporter,
            "report",
            &r.item_id,
            before.as_ref(),
            Some(&after),
            Some(&r.reason),
        )
        .await?;
        if !held && after.state != "resolved" && reporters >= limits.hide_at_reporters {
            let decision = sqlx::query(&format!(
                "INSERT INTO decisions (case_id, item_id, item_version, action, moderator, reason)
                 VALUES ($1, $2, $3, 'hold', 'system:reports', $4) RETURNING {}",
                crate::DECISION_COLUMNS
            ))
            .bind(after.id)
            .bind(&r.item_id)
            .bind(r.item_version as i64)
            .bind(format!("{reporters} distinct reporters"))
            .fetch_one(&mut *tx)
            .await?;
            let decision = crate::decision_from_row(&decision)?;
            crate::enqueue_verdict(&mut tx, &decision).await?;
            let before_hold = after.clone();
            let row = sqlx::query(&format!(
                "UPDATE cases SET held = true, version = version + 1, updated_at = now()
                 WHERE id = $1 RETURNING {CASE_COLUMNS}"
            ))
            .bind(after.id)
            .fetch_one(&mut *tx)
            .await?;
            after = case_from_row(&row)?;
            queue::audit(
                &mut tx,
                "system:reports",
                "hold",
                &r.item_id,
                Some(&before_hold),
                Some(&after),
                Some(&decision.reason),
            )
            .await?;
            held = true;
        }
        tx.commit().await?;
        Ok(ReportOutcome {
            report_id,
            duplicate: false,
            case_id: after.id,
            reporters,
            held,
        })
    }
}

/// Settles the open reports of an item version after a decision: suppress upholds them, restore
/// rejects them, and each reporter's record follows.
pub(crate) async fn settle(
    tx: &mut Transaction<'_, Postgres>,
    item_id: &str,
    item_version: u64,
    action: Action,
) -> Result<(), ReviewError> {
    let outcome = match action {
        Action::Suppress => "upheld",
        Action::Restore => "rejected",
        _ => return Ok(()),
    };
    let reporters: Vec<String> = sqlx::query_scalar(
        "UPDATE reports SET outcome = $3 WHERE item_id = $1 AND item_version = $2 AND outcome IS NULL
         RETURNING reporter",
    )
    .bind(item_id)
    .bind(item_version as i64)
    .bind(outcome)
    .fetch_all(&mut **tx)
    .await?;
    for reporter in reporters {
        sqlx::query(&format!(
            "INSERT INTO reporters (reporter, {outcome}) VALUES ($1, 1)
             ON CONFLICT (reporter) DO UPDATE SET {outcome} = reporters.{outcome} + 1"
        ))
        .bind(reporter)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
