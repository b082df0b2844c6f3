//! The transparency report of a period (DSA Art. 15 and 24): the restrictions by what they were,
//! their ground's category, their source and how far they were automated; the reports and how
//! long people took to decide them; the appeals, how many were reversed and how long people
//! took; the statements and where their submission stands.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::{ReviewError, ReviewStore};

/// Restrictions of one kind, category, source and automation.
#[derive(Debug, Clone, Serialize)]
pub struct RestrictionCount {
    /// What was restricted, and how (`model_suppression`, ...).
    pub restriction: String,
    /// Cordon's category.
    pub category: String,
    /// The Transparency Database's source (`SOURCE_VOLUNTARY`, ...).
    pub source: String,
    /// How far it was automated (`AUTOMATED_DECISION_FULLY`, ...).
    pub automation: String,
    /// How many.
    pub count: i64,
}

/// The period's reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportFigures {
    /// Filed in the period.
    pub filed: i64,
    /// Of them, upheld.
    pub upheld: i64,
    /// Rejected.
    pub rejected: i64,
    /// Settled without a decision on the reported version.
    pub no_action: i64,
    /// Not settled yet.
    pub pending: i64,
    /// The median time from a report to its decision, in seconds (of those settled).
    pub median_seconds_to_decision: Option<f64>,
}

/// The period's appeals (DSA Art. 24(1)(a)).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppealFigures {
    /// Filed in the period.
    pub filed: i64,
    /// Of them, upheld (the restriction kept).
    pub upheld: i64,
    /// Reversed (the restriction lifted).
    pub reversed: i64,
    /// Not decided yet.
    pub pending: i64,
    /// Reversed of those decided, from 0 to 1.
    pub reversal_rate: Option<f64>,
    /// The median time from an appeal to its decision, in seconds (of those decided).
    pub median_seconds_to_decision: Option<f64>,
}

/// The period's statements and their submission.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatementFigures {
    /// Statements of the period's restrictions and of those lifted on appeal in it.
    pub total: i64,
    /// Submitted to the Transparency Database (accepted, or already known to it).
    pub submitted: i64,
    /// Waiting to be submitted.
    pub pending: i64,
    /// Rejected by it.
    pub rejected: i64,
}

/// The transparency report of `[from, to)`.
#[derive(Debug, Clone, Serialize)]
pub struct TransparencyReport {
    /// The period's start.
    pub from: DateTime<Utc>,
    /// Its end (excluded).
    pub to: DateTime<Utc>,
    /// Restrictions applied in the period (a correction lifting one on appeal is no new one).
    pub restrictions: Vec<RestrictionCount>,
    /// Reports filed in the period.
    pub reports: ReportFigures,
    /// Appeals filed in the period.
    pub appeals: AppealFigures,
    /// The statements of the period's restrictions.
    pub statements: StatementFigures,
}

/// The UTC days `from` to `to`, both included, as `[start, end)`; an error says what is wrong.
pub fn days(from: NaiveDate, to: NaiveDate) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    if from > to {
        return Err(format!("from ({from}) is after to ({to})"));
    }
    let start = from.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let end = to
        .checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    start
        .zip(end)
        .ok_or_else(|| format!("{to} is too far in the future"))
}

impl ReviewStore {
    /// The transparency report of `[from, to)`.
    pub async fn transparency_report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<TransparencyReport, ReviewError> {
        let rows = sqlx::query(
            "SELECT restriction, category, tdb->>'source_type' AS source,
                    tdb->>'automated_decision' AS automation, count(*) AS count
             FROM statements WHERE applied_at >= $1 AND applied_at < $2 AND corrects IS NULL
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let restrictions = rows
            .iter()
            .map(|r| {
                Ok(RestrictionCount {
                    restriction: r.try_get("restriction")?,
                    category: r.try_get("category")?,
                    source: r
                        .try_get::<Option<String>, _>("source")?
                        .unwrap_or_default(),
                    automation: r
                        .try_get::<Option<String>, _>("automation")?
                        .unwrap_or_default(),
                    count: r.try_get("count")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let r = sqlx::query(
            "SELECT count(*) AS filed,
                    count(*) FILTER (WHERE outcome = 'upheld') AS upheld,
                    count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
                    count(*) FILTER (WHERE outcome = 'no_action') AS no_action,
                    count(*) FILTER (WHERE outcome IS NULL) AS pending,
                    (percentile_cont(0.5) WITHIN GROUP
                        (ORDER BY EXTRACT(EPOCH FROM decided_at - created_at)))::float8 AS median
             FROM reports WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        let reports = ReportFigures {
            filed: r.try_get("filed")?,
            upheld: r.try_get("upheld")?,
            rejected: r.try_get("rejected")?,
            no_action: r.try_get("no_action")?,
            pending: r.try_get("pending")?,
            median_seconds_to_decision: r.try_get("median")?,
        };
        let a = sqlx::query(
            "SELECT count(*) AS filed,
                    count(*) FILTER (WHERE state = 'upheld') AS upheld,
                    count(*) FILTER (WHERE state = 'reversed') AS reversed,
                    count(*) FILTER (WHERE state = 'open') AS pending,
                    (percentile_cont(0.5) WITHIN GROUP
                        (ORDER BY EXTRACT(EPOCH FROM decided_at - created_at)))::float8 AS median
             FROM appeals WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        let (upheld, reversed): (i64, i64) = (a.try_get("upheld")?, a.try_get("reversed")?);
        let appeals = AppealFigures {
            filed: a.try_get("filed")?,
            upheld,
            reversed,
            pending: a.try_get("pending")?,
            reversal_rate: (upheld + reversed > 0)
                .then(|| reversed as f64 / (upheld + reversed) as f64),
            median_seconds_to_decision: a.try_get("median")?,
        };
        let s = sqlx::query(
            "SELECT count(*) AS total,
                    count(*) FILTER (WHERE x.outcome IN ('accepted', 'known')) AS submitted,
                    count(*) FILTER (WHERE q.statement_id IS NOT NULL) AS pending,
                    count(*) FILTER (WHERE x.outcome = 'rejected') AS rejected
             FROM statements s
             LEFT JOIN statement_submissions x ON x.statement_id = s.id
             LEFT JOIN statement_queue q ON q.statement_id = s.id
             WHERE s.applied_at >= $1 AND s.applied_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        Ok(TransparencyReport {
            from,
            to,
            restrictions,
            reports,
            appeals,
            statements: StatementFigures {
                total: s.try_get("total")?,
                submitted: s.try_get("submitted")?,
                pending: s.try_get("pending")?,
                rejected: s.try_get("rejected")?,
            },
        })
    }
}
