//! `/metrics` and `/readyz` of the operations listener.

use crate::error::ApiError;
use crate::extract::Json;
use crate::OpsState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;
use tracing::{info, warn};

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "public",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain"))
)]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn metrics(State(s): State<OpsState>) -> Result<impl IntoResponse, ApiError> {
    let text = s
        .metrics
        .render()
        .map_err(|e| ApiError::internal(format!("rendering metrics: {e}")))?;
    Ok(([("content-type", "text/plain; version=0.0.4")], text))
}

/// Ready when the review database answers (if the process uses one), every Kafka consumer
/// reaches a broker, and an indexer in the process has caught up once ([`cordon_ops::Readiness`]).
/// A 503 names what is missing, without the errors' text (`/readyz` is on the public listener
/// too); each change of that answer is logged once, with them, not every probe.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "public",
    responses(
        (status = 200, description = "`{ready: true, problems: []}`", body = serde_json::Value),
        (status = 503, description = "`{ready: false, problems: [...]}`: what is missing", body = serde_json::Value),
    )
)]
pub(crate) async fn readyz(State(s): State<OpsState>) -> Response {
    let mut problems = s.readiness.problems();
    let mut database_error = None;
    if let Some(store) = &s.store {
        let database = tokio::time::timeout(Duration::from_secs(2), store.ping())
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = database {
            problems.push("review database: unreachable".to_string());
            database_error = Some(e);
        }
    }
    let ready = problems.is_empty();
    let summary = problems.join("; ");
    if s.readiness.changed(&summary) {
        if ready {
            info!("ready");
        } else {
            warn!(why = %summary, database_error, "not ready");
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "problems": problems })),
    )
        .into_response()
}
