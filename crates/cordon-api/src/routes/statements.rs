//! Statements of reasons over HTTP: what the channel is told about a restriction and what the
//! EU Transparency Database receives.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Viewer;
use crate::error::ApiError;
use crate::extract::{ApiResult, Json, Path, Query};
use crate::routes::review::Limit;
use crate::ApiState;

/// One statement of reasons: the restriction, its subject and decision, the statement in the
/// Transparency Database's schema (`tdb`) and the text shown to the channel.
#[utoipa::path(
    get,
    path = "/v1/statements/{id}",
    tag = "review",
    params(("id" = i64, Path, description = "The statement")),
    security(("session" = [])),
    responses(
        (status = 200, description = "`{id, puid, restriction, subject, item_version, channel_id, decision_id, category, applied_at, tdb, text, text_language}`", body = serde_json::Value),
        crate::error::NotSignedIn,
        crate::error::RoleMayNotSee,
        (status = 404, description = "Unknown statement", body = crate::error::ErrorBody),
        crate::error::Unavailable,
    )
)]
pub(crate) async fn statement(
    State(s): State<ApiState>,
    me: Viewer,
    Path(id): Path<i64>,
) -> ApiResult<Value> {
    Ok(Json(json!(s.store.statement(id, me.role).await?)))
}

/// How the statements' submission to the Transparency Database stands: how many are queued,
/// accepted, already known and rejected, and the latest rejections with the database's reasons
/// (seniors and admins: it names items of escalated cases too).
#[utoipa::path(
    get,
    path = "/v1/transparency/submissions",
    tag = "review",
    params(("limit" = Option<i64>, Query, description = "Most rejections listed (default 50)")),
    security(("session" = [])),
    responses(
        (status = 200, description = "`{counts: {queued, accepted, known, rejected}, rejected: [{statement_id, puid, restriction, subject, reason, at}]}`", body = serde_json::Value),
        crate::error::NotSignedIn,
        crate::error::RoleMayNotSee,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn submissions(
    State(s): State<ApiState>,
    me: Viewer,
    Query(page): Query<Limit>,
) -> ApiResult<Value> {
    seniors_only(&me, "the submissions' state")?;
    let limit = page.within(s.settings.api.max_page_size);
    Ok(Json(json!({
        "counts": s.store.submission_counts().await?,
        "rejected": s.store.rejected_statements(limit).await?,
    })))
}

/// Refuses `what` (403) below senior.
pub(crate) fn seniors_only(me: &Viewer, what: &str) -> Result<(), ApiError> {
    if me.role.is_senior() {
        return Ok(());
    }
    Err(ApiError::Refused(
        StatusCode::FORBIDDEN,
        format!("{what} is for senior moderators and admins"),
    ))
}

/// A period of UTC days, both included, and the answer's format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Period {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    #[serde(default)]
    format: Format,
}

/// JSON or CSV.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    Csv,
}

/// The longest period one report covers, in days.
pub(crate) const MAX_REPORT_DAYS: i64 = 400;

/// The transparency report of a period: restrictions by kind, category, source and automation;
/// reports filed, how they were settled and the median time to a decision; appeals filed, how
/// many were reversed and the median time to a decision; the period's
/// statements and their submission to the Transparency Database. JSON, or CSV
/// (`section,name,category,source,automation,value`) with `format=csv`.
#[utoipa::path(
    get,
    path = "/v1/transparency",
    tag = "review",
    params(
        ("from" = String, Query, description = "First UTC day, YYYY-MM-DD"),
        ("to" = String, Query, description = "Last UTC day, YYYY-MM-DD (at most 400 days after from)"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "`{from, to, restrictions: [{restriction, category, source, automation, count}], reports: {filed, upheld, rejected, no_action, pending, median_seconds_to_decision}, appeals: {filed, upheld, reversed, pending, reversal_rate, median_seconds_to_decision}, statements: {total, submitted, pending, rejected}}`, or the same as CSV", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleMayNotSee,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn transparency(
    State(s): State<ApiState>,
    me: Viewer,
    Query(period): Query<Period>,
) -> Result<Response, ApiError> {
    seniors_only(&me, "the transparency report")?;
    if (period.to - period.from).num_days() >= MAX_REPORT_DAYS {
        return Err(ApiError::bad_request(format!(
            "a report covers at most {MAX_REPORT_DAYS} days"
        )));
    }
    let (from, to) = cordon_review::days(period.from, period.to).map_err(ApiError::bad_request)?;
    let report = s.store.transparency_report(from, to).await?;
    Ok(match period.format {
        Format::Json => axum::Json(report).into_response(),
        Format::Csv => {
            let body = csv_of(&report)
                .map_err(|e| ApiError::internal(format!("writing the CSV report: {e}")))?;
            let name = format!(
                "attachment; filename=\"cordon-transparency-{}-{}.csv\"",
                period.from, period.to
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                body,
            )
                .into_response()
        }
    })
}

/// `x` with `places` decimals, or nothing.
fn decimal(x: Option<f64>, places: usize) -> String {
    x.map_or(String::new(), |x| format!("{x:.places$}"))
}

/// The report as CSV rows: `section,name,category,source,automation,value` (a restriction's
/// name is its kind; a figure's its name).
fn csv_of(r: &cordon_review::TransparencyReport) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "section",
        "name",
        "category",
        "source",
        "automation",
        "value",
    ])?;
    for c in &r.restrictions {
        w.write_record([
            "restrictions",
            &c.restriction,
            &c.category,
            &c.source,
            &c.automation,
            &c.count.to_string(),
        ])?;
    }
    let figures = [
        ("reports", "filed", r.reports.filed.to_string()),
        ("reports", "upheld", r.reports.upheld.to_string()),
        ("reports", "rejected", r.reports.rejected.to_string()),
        ("reports", "no_action", r.reports.no_action.to_string()),
        ("reports", "pending", r.reports.pending.to_string()),
        (
            "reports",
            "median_seconds_to_decision",
            decimal(r.reports.median_seconds_to_decision, 1),
        ),
        ("appeals", "filed", r.appeals.filed.to_string()),
        ("appeals", "upheld", r.appeals.upheld.to_string()),
        ("appeals", "reversed", r.appeals.reversed.to_string()),
        ("appeals", "pending", r.appeals.pending.to_string()),
        (
            "appeals",
            "reversal_rate",
            decimal(r.appeals.reversal_rate, 3),
        ),
        (
            "appeals",
            "median_seconds_to_decision",
            decimal(r.appeals.median_seconds_to_decision, 1),
        ),
        ("statements", "total", r.statements.total.to_string()),
        (
            "statements",
            "submitted",
            r.statements.submitted.to_string(),
        ),
        ("statements", "pending", r.statements.pending.to_string()),
        ("statements", "rejected", r.statements.rejected.to_string()),
    ];
    for (section, name, value) in figures {
        w.write_record([section, name, "", "", "", &value])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
