//! User reports: "report this search result".
//!
//! A report is unique per reporter and item (a second one is acknowledged, not counted), limited
//! per reporter and per item, lane and hour, and comes by a [`ReportLane`]: a reporter the
//! platform's backend vouches for (a signed identity), a trusted flagger, or an unverified
//! string. It opens a case for the item version or joins its case. Only *vouched* weight —
//! signed reporters, weighted by their track record (rejected reports weigh less), and trusted
//! flaggers — raises the case's priority (by a bounded amount) and
//! holds the item (hidden until a person decides, through a `hold` decision published like any
//! other) once it reaches [`ReportLimits::hold_at`]. Invented reporter names therefore cost the
//! attacker a report each and move nothing. Deciding the case settles the reports: suppress
//! upholds them, restore rejects them. The audit log records what reports did to a case (opened,
//! reopened, held), as the actor `system:reports`, never once per report nor under a reporter's
//! own string.
//!
//! The reporter hears back (DSA Art. 16): a notice on the outcomes topic when the report is
//! filed (`received`) and when it is settled (`upheld`, `rejected`, or `no_action` when the
//! reported version was replaced before anyone decided it), each written to the outbox in the
//! transaction that files or settles the report, and [`ReviewStore::report_notice`] for
//! `GET /v1/reports/{id}`.

use cordon_domain::{Action, Category, Scores};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};

use crate::{
    case_from_row, check_id, check_reason, check_text, queue, ReviewError, ReviewStore,
    CASE_COLUMNS,
};

/// The actor of the audit entries reports cause.
pub const REPORTS_ACTOR: &str = "system:reports";
/// Longest reporter id as stored (namespaced by lane: `p:`, `f:<key id>:`), in bytes.
pub const MAX_REPORTER_BYTES: usize = 256;
/// Longest report details, in characters.
pub const MAX_DETAILS_CHARS: usize = 4000;
/// Most priority reports add to a case (a quarter per unit of vouched weight, up to this).
pub const MAX_REPORT_PRIORITY: f32 = 1.0;

/// How a reporter's identity reached Cordon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportLane {
    /// A reporter string nobody vouches for: recorded and queued, but it holds nothing and
    /// raises no priority (anyone can claim any string, its track record included).
    Unverified,
    /// A reporter the platform's backend vouches for with a signature.
    Platform,
    /// A trusted flagger (DSA Art. 22), signed with its own key and weighted by configuration.
    TrustedFlagger,
}

impl ReportLane {
    /// The lane's name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportLane::Unverified => "unverified",
            ReportLane::Platform => "platform",
            ReportLane::TrustedFlagger => "trusted_flagger",
        }
    }
}

/// A report to record.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// The reported item.
    pub item_id: String,
    /// Its current version.
    pub item_version: u64,
    /// Who reports: the caller namespaces it by lane, so an unverified string never shares a
    /// record with a signed identity.
    pub reporter: String,
    /// The lane the reporter came by.
    pub lane: ReportLane,
    /// A trusted flagger's configured weight (other lanes weigh by track record).
    pub flagger_weight: Option<f32>,
    /// A trusted flagger's configured name (statements of reasons name it as the source).
    pub flagger_name: Option<String>,
    /// Why: a reason code (e.g. a category name).
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
    pub per_reporter_per_hour: i64,
    /// Reports one item may receive per hour in each lane (from all its reporters), so
    /// unverified reports can never use up the signed reporters' share.
    pub per_item_per_hour: i64,
    /// Vouched weight that holds an item until a moderator decides (a new signed reporter
    /// weighs 1).
    pub hold_at: f32,
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
    /// The lane the report came by.
    pub lane: ReportLane,
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
    /// The lane it came by (`unverified`, `platform`, `trusted_flagger`).
    pub lane: String,
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

/// Where a report stands, as its reporter is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Filed; a person (or the reports' hold) has not settled it yet.
    Received,
    /// The item was restricted.
    Upheld,
    /// A person found nothing to restrict.
    Rejected,
    /// The reported version was replaced before anyone decided it.
    NoAction,
}

impl ReportStatus {
    fn of(outcome: Option<&str>) -> ReportStatus {
        match outcome {
            Some("upheld") => ReportStatus::Upheld,
            Some("rejected") => ReportStatus::Rejected,
            Some("no_action") => ReportStatus::NoAction,
            _ => ReportStatus::Received,
        }
    }
}

/// What a reporter is told about their report (the outcomes topic, `GET /v1/reports/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct ReportNotice {
    /// The report.
    pub report_id: i64,
    /// The item reported.
    pub item_id: String,
    /// Its version when reported.
    pub item_version: u64,
    /// The platform's id of the reporter (as it sent it).
    pub reporter: String,
    /// The lane it came by.
    pub lane: String,
    /// The key id of the trusted flagger that filed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagger: Option<String>,
    /// Where it stands.
    pub status: ReportStatus,
    /// When it was filed.
    pub reported_at: chrono::DateTime<chrono::Utc>,
    /// When it was settled.
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The decision's reason code, once settled.
    pub reason: Option<String>,
    /// How the reporter can ask for the decision to be reviewed, once settled.
    pub redress: Option<String>,
}

/// The columns a notice is read from.
const NOTICE_COLUMNS: &str =
    "id, item_id, item_version, reporter, lane, outcome, created_at, decided_at, decision_reason";

fn notice_from_row(
    row: &sqlx::postgres::PgRow,
    redress: &str,
) -> Result<ReportNotice, sqlx::Error> {
    let reporter: String = row.try_get("reporter")?;
    // The stored id is namespaced by lane (`p:`, `u:`, `f:<key id>:`); the reporter is told
    // about the id its platform sent.
    let (flagger, platform_id) = match reporter.strip_prefix("f:").and_then(|r| r.split_once(':')) {
        Some((key, id)) => (Some(key.to_string()), id.to_string()),
        None => (
            None,
            reporter
                .split_once(':')
                .map_or(reporter.clone(), |(_, id)| id.to_string()),
        ),
    };
    let status = ReportStatus::of(row.try_get::<Option<String>, _>("outcome")?.as_deref());
    Ok(ReportNotice {
        report_id: row.try_get("id")?,
        item_id: row.try_get("item_id")?,
        item_version: row.try_get::<i64, _>("item_version")? as u64,
        reporter: platform_id,
        lane: row.try_get("lane")?,
        flagger,
        status,
        reported_at: row.try_get("created_at")?,
        decided_at: row.try_get("decided_at")?,
        reason: row.try_get("decision_reason")?,
        redress: (status != ReportStatus::Received).then(|| redress.to_string()),
    })
}

/// Queues each notice for the outcomes topic, keyed by report id, in the caller's transaction.
async fn notify(
    tx: &mut Transaction<'_, Postgres>,
    notices: &[ReportNotice],
) -> Result<(), ReviewError> {
    for notice in notices {
        crate::enqueue_outcome(tx, &notice.report_id.to_string(), notice).await?;
    }
    Ok(())
}

/// A reporter's weight: 1 for a new reporter, lower the more of their reports were rejected.
fn weight(upheld: i32, rejected: i32) -> f32 {
    ((1 + upheld) as f32 / (1 + upheld + 2 * rejected) as f32).clamp(0.05, 1.0)
}

impl ReviewStore {
    /// What the reporter of report `id` is told: where it stands, and once settled the
    /// decision's reason and the redress.
    pub async fn report_notice(&self, id: i64) -> Result<ReportNotice, ReviewError> {
        let row = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM reports WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| ReviewError::NotFound(format!("report {id}")))?;
        Ok(notice_from_row(&row, &self.statements.notifier_redress)?)
    }

    /// The reports about an item, newest first.
    pub async fn reports(&self, item_id: &str, limit: i64) -> Result<Vec<Report>, ReviewError> {
        let rows = sqlx::query(
            "SELECT id, item_version, reporter, lane, reason, details, weight, created_at, outcome
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
                    lane: r.try_get("lane")?,
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
        check_reason(&r.reason)?;
        check_text("details", r.details.as_deref(), MAX_DETAILS_CHARS)?;
        check_id("reporter", &r.reporter)?;
        if r.reporter.len() > MAX_REPORTER_BYTES {
            return Err(ReviewError::Invalid(format!(
                "reporter is at most {MAX_REPORTER_BYTES} bytes"
            )));
        }
        check_id("item_id", &r.item_id)?;
        let mut tx = self.pool.begin().await?;
        // Serialize one reporter's reports, and one item's, so neither limit can be raced.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('reporter:' || $1))")
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
                lane: r.lane,
                held,
            });
        }
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM reports WHERE reporter = $1 AND created_at > now() - interval '1 hour'",
        )
        .bind(&r.reporter)
        .fetch_one(&mut *tx)
        .await?;
        if recent >= limits.per_reporter_per_hour {
            return Err(ReviewError::RateLimited(format!(
                "at most {} reports per reporter and hour; try again later",
                limits.per_reporter_per_hour
            )));
        }
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('item:' || $1))")
            .bind(&r.item_id)
            .execute(&mut *tx)
            .await?;
        let about_item: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM reports
             WHERE item_id = $1 AND lane = $2 AND created_at > now() - interval '1 hour'",
        )
        .bind(&r.item_id)
        .bind(r.lane.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if about_item >= limits.per_item_per_hour {
            return Err(ReviewError::RateLimited(format!(
                "this item has {} such reports this hour, the most it takes; it is queued for review",
                limits.per_item_per_hour
            )));
        }
        let history = sqlx::query("SELECT upheld, rejected FROM reporters WHERE reporter = $1")
            .bind(&r.reporter)
            .fetch_optional(&mut *tx)
            .await?;
        let (upheld, rejected): (i32, i32) = match history {
            Some(h) => (h.try_get("upheld")?, h.try_get("rejected")?),
            None => (0, 0),
        };
        let w = r.flagger_weight.unwrap_or_else(|| weight(upheld, rejected));
        let vouched = match r.lane {
            ReportLane::Platform | ReportLane::TrustedFlagger => w,
            ReportLane::Unverified => 0.0,
        };
        let filed = sqlx::query(&format!(
            "INSERT INTO reports (item_id, item_version, reporter, reason, details, weight, lane,
                                  flagger_name)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {NOTICE_COLUMNS}"
        ))
        .bind(&r.item_id)
        .bind(r.item_version as i64)
        .bind(&r.reporter)
        .bind(&r.reason)
        .bind(&r.details)
        .bind(w)
        .bind(r.lane.as_str())
        .bind(&r.flagger_name)
        .fetch_one(&mut *tx)
        .await?;
        let received = notice_from_row(&filed, "")?;
        let report_id = received.report_id;
        notify(&mut tx, &[received]).await?;
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
        // Priority rises a quarter per unit of vouched weight, by at most MAX_REPORT_PRIORITY.
        let row = sqlx::query(&format!(
            "INSERT INTO cases (item_id, item_version, source, category, score, scores, reason,
                                reporters, report_weight, vouched_weight, priority, language)
             VALUES ($1, $2, 'report', $3, $4, $5, $6, 1, $7, $8, $4 + LEAST(0.25 * $8, $10), $9)
             ON CONFLICT (item_id, item_version) DO UPDATE SET
                 state = CASE WHEN cases.state = 'resolved' AND $11 THEN 'open' ELSE cases.state END,
                 resolved_at = CASE WHEN cases.state = 'resolved' AND $11 THEN NULL
                                    ELSE cases.resolved_at END,
                 reporters = cases.reporters + 1,
                 report_weight = cases.report_weight + $7,
                 vouched_weight = cases.vouched_weight + $8,
                 priority = cases.priority
                     + LEAST(0.25 * (cases.vouched_weight + $8), $10)
                     - LEAST(0.25 * cases.vouched_weight, $10),
                 version = cases.version + 1,
                 updated_at = now()
             RETURNING {CASE_COLUMNS}, reporters, held, vouched_weight"
        ))
        .bind(&r.item_id)
        .bind(r.item_version as i64)
        .bind(category.as_str())
        .bind(score)
        .bind(Json(scores))
        .bind(format!("reported: {}", r.reason))
        .bind(w)
        .bind(vouched)
        .bind(&r.language)
        .bind(MAX_REPORT_PRIORITY)
        .bind(reopen)
        .fetch_one(&mut *tx)
        .await?;
        let mut after = case_from_row(&row)?;
        let reporters: i32 = row.try_get("reporters")?;
        let vouched_total: f32 = row.try_get("vouched_weight")?;
        let mut held: bool = row.try_get("held")?;
        let opened = match &before {
            None => Some("report:open"),
            Some(b)
                if b.state == crate::CaseState::Resolved
                    && after.state != crate::CaseState::Resolved =>
            {
                Some("report:reopen")
            }
            Some(_) => None,
        };
        if let Some(action) = opened {
            let note = format!("{} report: {}", r.lane.as_str(), r.reason);
            queue::audit(
                &mut tx,
                REPORTS_ACTOR,
                action,
                &r.item_id,
                before.as_ref(),
                Some(&after),
                Some(&note),
            )
            .await?;
        }
        if !held && after.state != crate::CaseState::Resolved && vouched_total >= limits.hold_at {
            let decision = sqlx::query(&format!(
                "INSERT INTO decisions (case_id, item_id, item_version, action, moderator, reason)
                 VALUES ($1, $2, $3, 'hold', $4, $5) RETURNING {}",
                crate::DECISION_COLUMNS
            ))
            .bind(after.id)
            .bind(&r.item_id)
            .bind(r.item_version as i64)
            .bind(REPORTS_ACTOR)
            .bind(format!(
                "reported by vouched reporters (weight {vouched_total:.2} of {reporters} reporters)"
            ))
            .fetch_one(&mut *tx)
            .await?;
            let decision = crate::decision_from_row(&decision)?;
            crate::enqueue_verdict(&mut tx, &decision).await?;
            self.state_decision(
                &mut tx,
                crate::DecisionStatement {
                    decision: &decision,
                    restriction: cordon_statements::Restriction::ReportHold,
                    case: Some(&after),
                    until: None,
                    category: None,
                },
            )
            .await?;
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
                REPORTS_ACTOR,
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
            lane: r.lane,
            held,
        })
    }
}

/// Settles the open reports of an item after a decision on `item_version`: suppress upholds
/// the version's reports, restore rejects them, and each reporter's record follows; reports of
/// older versions, which nobody decided, get no action. Every settled reporter is notified.
pub(crate) async fn settle(
    tx: &mut Transaction<'_, Postgres>,
    item_id: &str,
    item_version: u64,
    action: Action,
    reason: &str,
    redress: &str,
) -> Result<(), ReviewError> {
    let outcome = match action {
        Action::Suppress => "upheld",
        Action::Restore => "rejected",
        _ => return Ok(()),
    };
    let rows = sqlx::query(&format!(
        "UPDATE reports
         SET outcome = CASE WHEN item_version = $2 THEN $3 ELSE 'no_action' END,
             decided_at = now(), decision_reason = $4
         WHERE item_id = $1 AND item_version <= $2 AND outcome IS NULL
         RETURNING {NOTICE_COLUMNS}"
    ))
    .bind(item_id)
    .bind(item_version as i64)
    .bind(outcome)
    .bind(reason)
    .fetch_all(&mut **tx)
    .await?;
    let notices = rows
        .iter()
        .map(|r| notice_from_row(r, redress))
        .collect::<Result<Vec<_>, _>>()?;
    notify(tx, &notices).await?;
    let reporters = rows
        .iter()
        .filter(|r| {
            r.try_get::<i64, _>("item_version")
                .is_ok_and(|v| v == item_version as i64)
        })
        .map(|r| r.try_get::<String, _>("reporter"))
        .collect::<Result<Vec<_>, _>>()?;
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
