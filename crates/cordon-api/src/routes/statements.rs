//! Statements of reasons over HTTP: what the channel is told about a restriction and what the
//! EU Transparency Database receives.

use axum::extract::State;
use axum::http::StatusCode;
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
    if !me.role.is_senior() {
        return Err(ApiError::Refused(
            StatusCode::FORBIDDEN,
            "the submissions' state is for senior moderators and admins".into(),
        ));
    }
    let limit = page.within(s.settings.api.max_page_size);
    Ok(Json(json!({
        "counts": s.store.submission_counts().await?,
        "rejected": s.store.rejected_statements(limit).await?,
    })))
}
