//! User reports: `POST /v1/reports`, signed by a platform key or a trusted flagger.

use crate::error::ApiError;
use crate::extract::ApiResult;
use crate::extract::{Json, Path};
use crate::settings::TrustedFlagger;
use crate::signature::{refused, report_message, report_status_message, Signature};
use crate::{index_read, lookup, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use cordon_domain::Visibility;
use cordon_review::{NewReport, ReportLane, ReportLimits, ReportOutcome, ReviewError};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::info;

/// A user report, from the HTTP API or the reports topic.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// The item reported (one public search shows).
    item_id: String,
    /// Why, in the platform's words.
    reason: String,
    /// More from the reporter.
    #[serde(default)]
    details: Option<String>,
    /// The platform's opaque id of its user (1 to 128 bytes).
    reporter: String,
    /// `<key id>:<hex HMAC-SHA256(key, "cordon-report-v1\n" + item_id + "\n" + reporter)>`, by
    /// the platform's backend or a trusted flagger: over one reporter reporting one item, so a
    /// signature can be neither replayed for other items nor lent to other reporters.
    #[serde(default)]
    signature: Option<String>,
}

/// Longest reporter id a report may carry, in bytes.
pub(crate) const MAX_REPORTER_BYTES: usize = 128;

/// Who vouches for a report's reporter: its lane, the reporter id namespaced by lane (so an
/// unverified string never shares a track record with a signed identity), and the trusted
/// flagger that signed it. A missing signature (unless `reports.accept_unsigned`), an unknown key or a
/// wrong signature is refused with 401.
pub(crate) fn vouch<'s>(
    s: &'s ApiState,
    body: &ReportBody,
) -> Result<(ReportLane, String, Option<&'s TrustedFlagger>), ApiError> {
    let cfg = &s.settings.reports;
    if body.reporter.is_empty() || body.reporter.len() > MAX_REPORTER_BYTES {
        return Err(ApiError::bad_request(format!(
            "reporter must have 1 to {MAX_REPORTER_BYTES} bytes"
        )));
    }
    let Some(signature) = &body.signature else {
        if cfg.accept_unsigned {
            return Ok((ReportLane::Unverified, format!("u:{}", body.reporter), None));
        }
        return Err(refused(
            "a report needs the platform's signature of its reporter (field `signature`)",
        ));
    };
    let signature = Signature::parse(signature)?;
    let key_id = signature.key_id;
    let (lane, secret, reporter, flagger) = if let Some(key) = cfg.platform_keys.get(key_id) {
        (
            ReportLane::Platform,
            key,
            format!("p:{}", body.reporter),
            None,
        )
    } else if let Some(f) = cfg.trusted_flaggers.get(key_id) {
        (
            ReportLane::TrustedFlagger,
            &f.secret,
            format!("f:{key_id}:{}", body.reporter),
            Some(f),
        )
    } else {
        return Err(refused("the signature names an unknown key"));
    };
    signature.verify(
        secret.expose().as_bytes(),
        &report_message(&body.item_id, &body.reporter),
    )?;
    Ok((lane, reporter, flagger))
}

/// Why a report was not filed: the request's fault (answered as is, never retried) or the
/// store's (retried by the reports consumer while the database is unavailable).
pub enum ReportFailure {
    /// Bad request, bad signature, unknown item, rate limit.
    Refused(ApiError),
    /// The review store failed.
    Store(ReviewError),
}

impl From<ReportFailure> for ApiError {
    fn from(f: ReportFailure) -> ApiError {
        match f {
            ReportFailure::Refused(e) => e,
            ReportFailure::Store(e) => e.into(),
        }
    }
}

/// Files a report against the item's current indexed version. An item public search does not
/// show (unknown, suppressed, held, pending, in a blocked channel) answers 404 alike, so a
/// report cannot tell a hidden item from one that never existed.
pub async fn file_report(s: &ApiState, body: ReportBody) -> Result<ReportOutcome, ReportFailure> {
    let (lane, reporter, flagger) = vouch(s, &body).map_err(ReportFailure::Refused)?;
    let state = lookup(s, &body.item_id)
        .await
        .map_err(ReportFailure::Refused)?
        .filter(|st| st.visibility == Visibility::Visible);
    let found = match state.and_then(|st| {
        let scores = st.verdict().and_then(|v| v.scores);
        st.content.map(|c| (c, scores))
    }) {
        Some((content, scores)) => {
            let search = s.search.clone();
            let channel = content.channel.id.clone();
            let blocked = index_read(move || search.channel_blocked(&channel))
                .await
                .map_err(ReportFailure::Refused)?;
            (!blocked).then_some((content, scores))
        }
        None => None,
    };
    let Some((content, scores)) = found else {
        return Err(ReportFailure::Refused(ApiError::Refused(
            StatusCode::NOT_FOUND,
            "no such item in public search".into(),
        )));
    };
    let r = &s.settings.reports;
    let limits = ReportLimits {
        per_reporter_per_hour: r.per_reporter_per_hour,
        per_item_per_hour: r.per_item_per_hour,
        hold_at: r.hold_at,
    };
    let outcome = s
        .store
        .report(
            &NewReport {
                item_id: body.item_id.clone(),
                item_version: content.version,
                reporter,
                lane,
                flagger_weight: flagger.map(|f| f.weight),
                flagger_name: flagger.map(|f| f.name.clone()),
                reason: body.reason,
                details: body.details,
                scores,
                language: content.lang,
            },
            limits,
        )
        .await
        .map_err(ReportFailure::Store)?;
    info!(item_id = %body.item_id, case_id = outcome.case_id, lane = lane.as_str(), reporters = outcome.reporters, held = outcome.held, duplicate = outcome.duplicate, "report received");
    Ok(outcome)
}

/// What the reporter of a report is told: where it stands (`received`, `upheld`, `rejected`,
/// `no_action`), and once settled when, the decision's reason and the redress. Read by the
/// platform's backend with the signature of the report's id by a key that may read it — a
/// platform key for its users' reports, a trusted flagger's key for its own — or by a signed-in
/// moderator. A report another key filed answers 404, as an unknown one does.
#[utoipa::path(
    get,
    path = "/v1/reports/{id}",
    tag = "public",
    params(
        ("id" = i64, Path, description = "The report"),
        ("x-cordon-signature" = Option<String>, Header, description = "`<key id>:<hex HMAC-SHA256(key, \"cordon-report-status-v1\\n\" + id)>` (not needed when signed in)"),
    ),
    responses(
        (status = 200, description = "`{report_id, item_id, item_version, reporter, lane, flagger?, status, reported_at, decided_at, reason, redress}`", body = serde_json::Value),
        (status = 400, description = "A report id that is not a number", body = crate::error::ErrorBody),
        (status = 401, description = "Neither signed in nor a valid signature", body = crate::error::ErrorBody),
        (status = 404, description = "An unknown report, or one the key may not read", body = crate::error::ErrorBody),
        crate::error::Unavailable,
    )
)]
pub(crate) async fn report_status(
    State(s): State<ApiState>,
    viewer: Option<axum::Extension<crate::auth::Viewer>>,
    headers: axum::http::HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Value> {
    // Who may read it: a moderator any report, a platform key its users', a flagger its own.
    let reader = if viewer.is_some() {
        None
    } else {
        let signature = headers
            .get("x-cordon-signature")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| refused("sign in, or sign the report id (header x-cordon-signature)"))?;
        let signature = Signature::parse(signature)?;
        let key_id = signature.key_id;
        let cfg = &s.settings.reports;
        let (secret, flagger) = match (
            cfg.platform_keys.get(key_id),
            cfg.trusted_flaggers.get(key_id),
        ) {
            (Some(key), _) => (key, None),
            (None, Some(f)) => (&f.secret, Some(key_id.to_string())),
            (None, None) => return Err(refused("the signature names an unknown key")),
        };
        signature.verify(secret.expose().as_bytes(), &report_status_message(id))?;
        Some(flagger)
    };
    let unknown = || ApiError::Refused(StatusCode::NOT_FOUND, format!("report {id} not found"));
    let notice = match s.store.report_notice(id).await {
        Err(ReviewError::NotFound(_)) => return Err(unknown()),
        other => other?,
    };
    let may_read = match &reader {
        None => true,
        Some(None) => notice.flagger.is_none(),
        Some(Some(flagger)) => notice.flagger.as_ref() == Some(flagger),
    };
    if !may_read {
        return Err(unknown());
    }
    Ok(Json(json!(notice)))
}

/// A user report, sent by the platform's backend with its signature.
#[utoipa::path(
    post,
    path = "/v1/reports",
    tag = "public",
    request_body = ReportBody,
    responses(
        (status = 200, description = "`{report_id, duplicate, case_id, reporters, lane, held}`", body = serde_json::Value),
        (status = 400, description = "A value refused: a reporter id over 128 bytes, a reason too long", body = crate::error::ErrorBody),
        (status = 401, description = "A missing, unknown or wrong signature", body = crate::error::ErrorBody),
        (status = 404, description = "An item public search does not show", body = crate::error::ErrorBody),
        (status = 429, description = "Over reports.per_reporter_per_hour or reports.per_item_per_hour", body = crate::error::ErrorBody),
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn report(
    State(s): State<ApiState>,
    Json(body): Json<ReportBody>,
) -> ApiResult<Value> {
    let outcome = file_report(&s, body).await;
    let label = if outcome.is_ok() { "filed" } else { "refused" };
    s.metrics.reports.with_label_values(&["http", label]).inc();
    Ok(Json(json!(outcome?)))
}
