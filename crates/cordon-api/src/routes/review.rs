//! The review queue over HTTP: cases, claims, escalation, decisions (item, case, channel, bulk),
//! statistics and the audit log.

use crate::auth::{Actor, Viewer};
use crate::error::ApiError;
use crate::extract::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::{lookup, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use cordon_domain::Action;
use cordon_review::{CaseFilter, ChannelDecision, DecisionRequest};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tracing::info;

pub(crate) async fn claim(State(s): State<ApiState>, Actor(me): Actor) -> ApiResult<Value> {
    let lease = Duration::from_secs(s.settings.api.claim_lease_secs);
    let case = s.store.claim_next(&me.username, me.role, lease).await?;
    Ok(Json(json!({ "case": case })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateBody {
    #[serde(default)]
    version: Option<i32>,
    #[serde(default)]
    note: Option<String>,
}

pub(crate) async fn escalate(
    State(s): State<ApiState>,
    Actor(me): Actor,
    Path(id): Path<i64>,
    Json(body): Json<EscalateBody>,
) -> ApiResult<Value> {
    let case = s
        .store
        .escalate(
            id,
            &me.username,
            me.role,
            body.version,
            body.note.as_deref(),
        )
        .await?;
    info!(case_id = id, moderator = %me.username, "case escalated");
    Ok(Json(json!(case)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelDecisionBody {
    channel_id: String,
    action: String,
    reason: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    case_id: Option<i64>,
    #[serde(default)]
    version: Option<i32>,
}

pub(crate) async fn decide_channel(
    State(s): State<ApiState>,
    Actor(me): Actor,
    Json(body): Json<ChannelDecisionBody>,
) -> ApiResult<Value> {
    let suppress = moderator_action(&body.action)? == Action::Suppress;
    // The case a channel decision resolves must be about an item of that channel.
    if let Some(case_id) = body.case_id {
        let case = s.store.case_for(case_id, me.role).await?;
        let channel = lookup(&s, &case.item_id)
            .await?
            .and_then(|st| st.content)
            .map(|c| c.channel.id);
        if channel.as_deref() != Some(body.channel_id.as_str()) {
            return Err(ApiError::bad_request(format!(
                "case {case_id} is not about an item of channel {}",
                body.channel_id
            )));
        }
    }
    let decision = s
        .store
        .decide_channel(&ChannelDecision {
            channel_id: body.channel_id.clone(),
            suppress,
            moderator: me.username,
            role: me.role,
            reason: body.reason,
            note: body.note,
            case: body.case_id.map(|id| (id, body.version)),
        })
        .await?;
    s.metrics
        .decisions
        .with_label_values(&[decision.action.as_str()])
        .inc();
    info!(channel_id = %body.channel_id, action = %decision.action, moderator = %decision.moderator, "channel decision recorded");
    Ok(Json(json!(decision)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkBody {
    case_ids: Vec<i64>,
    action: String,
    reason: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    no_requeue: bool,
}

pub(crate) async fn decide_bulk(
    State(s): State<ApiState>,
    Actor(me): Actor,
    Json(body): Json<BulkBody>,
) -> ApiResult<Value> {
    let action = moderator_action(&body.action)?;
    let template = DecisionRequest {
        item_id: String::new(),
        item_version: 0,
        action,
        moderator: me.username,
        reason: body.reason,
        note: body.note,
        case_id: None,
        expected_version: None,
        role: me.role,
        no_requeue: body.no_requeue,
    };
    let results = s.store.decide_cases(&body.case_ids, &template).await?;
    let decided = results.iter().filter(|r| r.decision_id.is_some()).count();
    s.metrics
        .decisions
        .with_label_values(&[action.as_str()])
        .inc_by(decided as u64);
    info!(cases = body.case_ids.len(), decided, moderator = %template.moderator, "bulk decision");
    Ok(Json(json!({ "decided": decided, "results": results })))
}

pub(crate) async fn stats(State(s): State<ApiState>, _: Viewer) -> ApiResult<Value> {
    Ok(Json(json!(s.store.queue_report().await?)))
}

#[derive(Deserialize)]
pub(crate) struct AuditParams {
    case_id: Option<i64>,
    #[serde(default = "fifty")]
    limit: i64,
}

pub(crate) async fn audit_log(
    State(s): State<ApiState>,
    me: Viewer,
    Query(p): Query<AuditParams>,
) -> ApiResult<Value> {
    let limit = p.limit.clamp(1, s.settings.api.max_page_size as i64);
    Ok(Json(
        json!({ "entries": s.store.audit_log(p.case_id, limit, me.role).await? }),
    ))
}

/// How many cases to list.
#[derive(Debug, Default, Deserialize)]
pub struct Limit {
    /// At most this many (default 50, at most `api.max_page_size`).
    pub limit: Option<i64>,
}

pub(crate) fn fifty() -> i64 {
    50
}

pub(crate) async fn cases(
    State(s): State<ApiState>,
    me: Viewer,
    Query(filter): Query<CaseFilter>,
    Query(page): Query<Limit>,
) -> ApiResult<Value> {
    let limit = page
        .limit
        .unwrap_or(50)
        .clamp(1, s.settings.api.max_page_size as i64);
    let cases = s.store.list_cases(&filter, me.role, limit).await?;
    let counts = s.store.queue_counts(me.role).await?;
    Ok(Json(json!({ "cases": cases, "counts": counts })))
}

pub(crate) async fn case(
    State(s): State<ApiState>,
    me: Viewer,
    Path(id): Path<i64>,
) -> ApiResult<Value> {
    Ok(Json(json!(s.store.case_for(id, me.role).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    item_version: Option<u64>,
    action: String,
    reason: String,
    #[serde(default)]
    note: Option<String>,
    /// The case version the moderator saw (case decisions); a stale one is refused.
    #[serde(default)]
    version: Option<i32>,
    /// With restore: do not queue this item version again.
    #[serde(default)]
    no_requeue: bool,
}

/// Parses a moderator's item decision: suppress or restore.
pub fn moderator_action(name: &str) -> Result<Action, ApiError> {
    match Action::parse(name) {
        Some(a @ (Action::Suppress | Action::Restore)) => Ok(a),
        _ => Err(ApiError::Refused(
            StatusCode::BAD_REQUEST,
            format!("action must be `suppress` or `restore`, not `{name}`"),
        )),
    }
}

pub(crate) async fn record(s: &ApiState, req: DecisionRequest) -> ApiResult<Value> {
    let decision = s.store.decide(&req).await?;
    s.metrics
        .decisions
        .with_label_values(&[req.action.as_str()])
        .inc();
    info!(
        item_id = %decision.item_id,
        version = decision.item_version,
        action = %decision.action,
        moderator = %decision.moderator,
        decision_id = decision.id,
        "moderator decision recorded"
    );
    Ok(Json(json!(decision)))
}

pub(crate) async fn decide_case(
    State(s): State<ApiState>,
    Actor(me): Actor,
    Path(id): Path<i64>,
    Json(body): Json<DecisionBody>,
) -> ApiResult<Value> {
    let action = moderator_action(&body.action)?;
    let case = s.store.case(id).await?;
    record(
        &s,
        DecisionRequest {
            item_id: case.item_id,
            item_version: case.item_version,
            action,
            moderator: me.username,
            reason: body.reason,
            note: body.note,
            case_id: Some(id),
            expected_version: body.version,
            role: me.role,
            no_requeue: body.no_requeue,
        },
    )
    .await
}

pub(crate) async fn decide_item(
    State(s): State<ApiState>,
    Actor(me): Actor,
    Json(body): Json<DecisionBody>,
) -> ApiResult<Value> {
    let action = moderator_action(&body.action)?;
    let item_id = body
        .item_id
        .ok_or_else(|| ApiError::Refused(StatusCode::BAD_REQUEST, "item_id is required".into()))?;
    let item_version = match body.item_version {
        Some(v) => v,
        None => {
            let state = lookup(&s, &item_id).await?;
            state
                .and_then(|st| st.content.map(|c| c.version))
                .ok_or_else(|| {
                    ApiError::Refused(
                        StatusCode::NOT_FOUND,
                        format!("item {item_id} is not indexed; give item_version explicitly"),
                    )
                })?
        }
    };
    record(
        &s,
        DecisionRequest {
            item_id,
            item_version,
            action,
            moderator: me.username,
            reason: body.reason,
            note: body.note,
            case_id: None,
            expected_version: None,
            role: me.role,
            no_requeue: body.no_requeue,
        },
    )
    .await
}
