//! `/metrics` and `/readyz` of the operations listener.

use crate::error::ApiError;
use crate::extract::Json;
use crate::OpsState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;
use tracing::warn;

pub(crate) async fn metrics(State(s): State<OpsState>) -> Result<impl IntoResponse, ApiError> {
    let text = s
        .metrics
        .render()
        .map_err(|e| ApiError::internal(format!("rendering metrics: {e}")))?;
    Ok(([("content-type", "text/plain; version=0.0.4")], text))
}

pub(crate) async fn readyz(State(s): State<OpsState>) -> Response {
    let Some(store) = s.store else {
        return (StatusCode::OK, Json(json!({ "ready": true }))).into_response();
    };
    let database = tokio::time::timeout(Duration::from_secs(2), store.ping())
        .await
        .map_err(|_| "timed out".to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    match database {
        Ok(()) => (StatusCode::OK, Json(json!({ "ready": true }))).into_response(),
        Err(e) => {
            warn!(error = %e, "not ready: the review database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ready": false, "database": "unreachable" })),
            )
                .into_response()
        }
    }
}
