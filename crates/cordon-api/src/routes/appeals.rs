//! Appeals over HTTP: the platform's backend files them for its channels (signed with a
//! platform key, like reports) and reads their outcome; the deciders list, read and decide them.

use axum::extract::State;
use axum::http::StatusCode;
use cordon_review::{AppealDecision, AppealState, NewAppeal, ReviewError};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::info;

use crate::auth::{Actor, Viewer};
use crate::error::ApiError;
use crate::extract::{ApiResult, Json, Path, Query};
use crate::routes::review::Limit;
use crate::signature::{appeal_message, appeal_status_message, refused, Signature};
use crate::ApiState;

/// An appeal of a restriction, sent by the platform's backend for the channel it hit.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealBody {
    /// The statement of reasons of the restriction appealed (the channel was sent its id).
    statement_id: i64,
    /// The channel that appeals: the statement's.
    channel_id: String,
    /// The platform's opaque id of the person appealing for the channel (1 to 128 bytes).
    appellant: String,
    /// Why the restriction is wrong, in the appellant's words (at most 4,000 characters).
    grounds: String,
    /// `<key id>:<hex HMAC-SHA256(key, "cordon-appeal-v1\n" + statement_id + "\n" + channel_id +
    /// "\n" + appellant)>` by a platform key (`reports.platform_keys`).
    signature: String,
}

/// The platform key a signature names, checked against `message`; a trusted flagger's key
/// does not speak for channels.
fn platform_signed(s: &ApiState, signature: &str, message: &str) -> Result<String, ApiError> {
    let signature = Signature::parse(signature)?;
    let key = s
        .settings
        .reports
        .platform_keys
        .get(signature.key_id)
        .ok_or_else(|| refused("the signature names no platform key"))?;
    signature.verify(key.expose().as_bytes(), message)?;
    Ok(signature.key_id.to_string())
}

/// Files an appeal of a restriction for the channel it hit, within `appeals.window_months` of
/// it; a person who did not take the decision decides it. Appealing a restriction again answers
/// the appeal filed before (`duplicate`).
#[utoipa::path(
    post,
    path = "/v1/appeals",
    tag = "public",
    request_body = AppealBody,
    responses(
        (status = 200, description = "`{appeal_id, duplicate, state}`", body = serde_json::Value),
        (status = 400, description = "A value refused: an appellant id over 128 bytes, grounds missing or too long", body = crate::error::ErrorBody),
        (status = 401, description = "A malformed or wrong signature, or a key that is no platform key", body = crate::error::ErrorBody),
        (status = 404, description = "No such statement of this channel", body = crate::error::ErrorBody),
        (status = 409, description = "The appeal window closed, a later decision replaced the restriction, or the statement lifts one", body = crate::error::ErrorBody),
        (status = 429, description = "Over api.reports_per_second from this client", body = crate::error::ErrorBody),
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn file_appeal(
    State(s): State<ApiState>,
    Json(body): Json<AppealBody>,
) -> ApiResult<Value> {
    let filed = async {
        let key_id = platform_signed(
            &s,
            &body.signature,
            &appeal_message(body.statement_id, &body.channel_id, &body.appellant),
        )?;
        Ok::<_, ApiError>(
            s.store
                .file_appeal(&NewAppeal {
                    statement_id: body.statement_id,
                    channel_id: body.channel_id.clone(),
                    appellant: body.appellant.clone(),
                    key_id,
                    grounds: body.grounds.clone(),
                })
                .await?,
        )
    }
    .await;
    let event = match &filed {
        Ok(f) if f.duplicate => "duplicate",
        Ok(_) => "filed",
        Err(_) => "refused",
    };
    s.metrics.appeals.with_label_values(&[event]).inc();
    let filed = filed?;
    info!(
        appeal_id = filed.appeal_id,
        statement_id = body.statement_id,
        duplicate = filed.duplicate,
        "appeal received"
    );
    Ok(Json(json!(filed)))
}

/// What the appellant is told: where the appeal stands (`open`, `upheld`, `reversed`), when it
/// was decided and why, and when reversed the statement that corrects the original with the
/// channel's text. Read by the platform's backend with a platform key's signature of the
/// appeal's id, or by a signed-in decider of appeals.
#[utoipa::path(
    get,
    path = "/v1/appeals/{id}",
    tag = "public",
    params(
        ("id" = i64, Path, description = "The appeal"),
        ("x-cordon-signature" = Option<String>, Header, description = "`<key id>:<hex HMAC-SHA256(key, \"cordon-appeal-status-v1\\n\" + id)>` by a platform key (not needed when signed in)"),
    ),
    responses(
        (status = 200, description = "`{appeal_id, statement_id, channel_id, appellant, status, filed_at, decided_at, reason, correction_id, correction_text}`", body = serde_json::Value),
        (status = 400, description = "An appeal id that is not a number", body = crate::error::ErrorBody),
        (status = 401, description = "Neither signed in nor a platform key's valid signature", body = crate::error::ErrorBody),
        crate::error::RoleMayNotSee,
        (status = 404, description = "An unknown appeal", body = crate::error::ErrorBody),
        crate::error::Unavailable,
    )
)]
pub(crate) async fn appeal_status(
    State(s): State<ApiState>,
    viewer: Option<axum::Extension<Viewer>>,
    headers: axum::http::HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Value> {
    match viewer {
        Some(axum::Extension(me)) => {
            s.store.appeal(id, me.role).await?;
        }
        None => {
            let signature = headers
                .get("x-cordon-signature")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    refused("sign in, or sign the appeal id (header x-cordon-signature)")
                })?;
            platform_signed(&s, signature, &appeal_status_message(id))?;
        }
    }
    match s.store.appeal_notice(id).await {
        Err(ReviewError::NotFound(_)) => Err(ApiError::Refused(
            StatusCode::NOT_FOUND,
            format!("appeal {id} not found"),
        )),
        other => Ok(Json(json!(other?))),
    }
}

/// Which appeals to list.
#[derive(Debug, Deserialize)]
pub(crate) struct AppealsQuery {
    /// `open` (default: the queue, oldest first), `upheld` or `reversed` (newest first).
    #[serde(default = "open")]
    state: AppealState,
}

fn open() -> AppealState {
    AppealState::Open
}

/// The appeals in one state, for the deciders (`appeals.deciders` and above): the open ones
/// oldest first, decided ones newest first. Each carries the appellant's words.
#[utoipa::path(
    get,
    path = "/v1/appeals",
    tag = "review",
    params(
        ("state" = Option<String>, Query, description = "open (default), upheld or reversed"),
        ("limit" = Option<i64>, Query, description = "At most this many (default 50, at most api.max_page_size)"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "`{appeals: [{id, statement_id, subject, channel_id, appellant, key_id, grounds, state, decided_by, decision_reason, decision_note, decision_id, correction_id, created_at, decided_at}]}`", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleMayNotSee,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn appeals(
    State(s): State<ApiState>,
    me: Viewer,
    Query(q): Query<AppealsQuery>,
    Query(page): Query<Limit>,
) -> ApiResult<Value> {
    let limit = page.within(s.settings.api.max_page_size);
    Ok(Json(
        json!({ "appeals": s.store.appeals(q.state, me.role, limit).await? }),
    ))
}

/// A decision on an appeal.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealDecisionBody {
    /// `uphold` (keep the restriction) or `reverse` (lift it).
    outcome: AppealOutcome,
    /// Policy reason code, sent to the appellant.
    reason: String,
    /// A note for the record (not sent).
    #[serde(default)]
    note: Option<String>,
}

/// What a decider does with an appeal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppealOutcome {
    /// Keep the restriction.
    Uphold,
    /// Lift it: a restore decision through the outbox and a statement correcting the original.
    Reverse,
}

/// Decides an appeal, once: upholding keeps the restriction; reversing restores the item (or
/// channel) through the outbox and issues the statement correcting the original. Refused (403)
/// to the person who took the decision appealed and below `appeals.deciders`.
#[utoipa::path(
    post,
    path = "/v1/appeals/{id}/decision",
    tag = "review",
    params(("id" = i64, Path, description = "The appeal")),
    request_body = AppealDecisionBody,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The appeal as decided", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        (status = 403, description = "Below appeals.deciders, one who took part in the decision appealed, or no CSRF token", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown appeal", body = crate::error::ErrorBody),
        (status = 409, description = "Decided already, a restriction a later decision replaced, or the item's case held by another moderator", body = crate::error::ErrorBody),
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn decide_appeal(
    State(s): State<ApiState>,
    Actor(me): Actor,
    Path(id): Path<i64>,
    Json(body): Json<AppealDecisionBody>,
) -> ApiResult<Value> {
    let reverse = body.outcome == AppealOutcome::Reverse;
    let appeal = s
        .store
        .decide_appeal(&AppealDecision {
            appeal_id: id,
            reverse,
            moderator: me.username,
            role: me.role,
            reason: body.reason,
            note: body.note,
        })
        .await?;
    s.metrics
        .appeals
        .with_label_values(&[appeal.state.as_str()])
        .inc();
    info!(appeal_id = id, subject = %appeal.subject, state = %appeal.state, moderator = appeal.decided_by.as_deref().unwrap_or_default(), "appeal decided");
    Ok(Json(json!(appeal)))
}
