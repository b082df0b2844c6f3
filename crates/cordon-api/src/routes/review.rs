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

/// Claims the next case (highest priority plus age) for `api.claim_lease_secs`.
#[utoipa::path(
    post,
    path = "/v1/cases/claim",
    tag = "review",
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "`{case}`, `{case: null}` when the queue is empty", body = serde_json::Value),
        crate::error::NotSignedIn,
        crate::error::RoleOrCsrf,
        crate::error::CaseConflict,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn claim(State(s): State<ApiState>, Actor(me): Actor) -> ApiResult<Value> {
    let lease = Duration::from_secs(s.settings.api.claim_lease_secs);
    let case = s.store.claim_next(&me.username, me.role, lease).await?;
    Ok(Json(json!({ "case": case })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateBody {
    /// The case version the moderator saw; a stale one is refused (409).
    #[serde(default)]
    version: Option<i32>,
    /// Why, for the seniors (at most 2,000 characters).
    #[serde(default)]
    note: Option<String>,
}

/// Sends a case to the seniors' queue.
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/escalate",
    tag = "review",
    params(("id" = i64, Path, description = "The case")),
    request_body = EscalateBody,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The case", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleOrCsrf,
        crate::error::CaseOrItemUnknown,
        crate::error::CaseConflict,
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelDecisionBody {
    /// The channel.
    channel_id: String,
    /// `suppress` (hide every item of the channel) or `restore`.
    action: String,
    /// A policy reason code (`[a-z0-9_.-]`, 1 to 64 characters).
    reason: String,
    /// At most 2,000 characters.
    #[serde(default)]
    note: Option<String>,
    /// The case the decision resolves; it must be about an item of the channel.
    #[serde(default)]
    case_id: Option<i64>,
    /// That case's version, as the moderator saw it.
    #[serde(default)]
    version: Option<i32>,
}

/// Hides every item of a channel from public search, or undoes that (seniors and admins).
#[utoipa::path(
    post,
    path = "/v1/channel-decisions",
    tag = "review",
    request_body = ChannelDecisionBody,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The decision", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleOrCsrf,
        crate::error::CaseOrItemUnknown,
        crate::error::CaseConflict,
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkBody {
    /// 1 to 1,000 cases, each once.
    case_ids: Vec<i64>,
    /// `suppress` or `restore`.
    action: String,
    /// A policy reason code.
    reason: String,
    /// At most 2,000 characters.
    #[serde(default)]
    note: Option<String>,
    /// With restore: do not queue these item versions again.
    #[serde(default)]
    no_requeue: bool,
}

/// The same decision on many cases, each in its own transaction.
#[utoipa::path(
    post,
    path = "/v1/cases/bulk-decision",
    tag = "review",
    request_body = BulkBody,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "`{decided, results: [{case_id, decision_id | error}]}`", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleOrCsrf,
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
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

/// Queue figures: open and escalated cases, the oldest's age, decisions per hour, agreement.
#[utoipa::path(
    get,
    path = "/v1/stats",
    tag = "review",
    security(("session" = [])),
    responses(
        (status = 200, description = "`{open_cases, escalated_cases, oldest_open_age_seconds, decisions_per_hour, agreement}`", body = serde_json::Value),
        crate::error::NotSignedIn,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn stats(State(s): State<ApiState>, _: Viewer) -> ApiResult<Value> {
    Ok(Json(json!(s.store.queue_report().await?)))
}

#[derive(Deserialize)]
pub(crate) struct AuditParams {
    case_id: Option<i64>,
    #[serde(default = "fifty")]
    limit: i64,
}

/// The append-only audit log, newest first.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "review",
    params(("case_id" = Option<i64>, Query, description = "Only this case's entries"), ("limit" = Option<i64>, Query, description = "At most this many (default 50, at most api.max_page_size)")),
    security(("session" = [])),
    responses(
        (status = 200, description = "`{entries: [...]}`", body = serde_json::Value),
        crate::error::NotSignedIn,
        crate::error::Unavailable,
    )
)]
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

impl Limit {
    /// The limit asked for (default 50), within 1 and `max`.
    pub(crate) fn within(&self, max: usize) -> i64 {
        self.limit.unwrap_or(50).clamp(1, max as i64)
    }
}

pub(crate) fn fifty() -> i64 {
    50
}

/// Cases in queue order, with the counts the role sees.
#[utoipa::path(
    get,
    path = "/v1/cases",
    tag = "review",
    params(("state" = Option<String>, Query, description = "open, claimed, escalated or resolved (default: every unresolved case)"), ("category" = Option<String>, Query, description = "A category"), ("language" = Option<String>, Query, description = "A language code"), ("source" = Option<String>, Query, description = "model or report"), ("min_age_hours" = Option<f64>, Query, description = "Cases at least this old"), ("max_age_hours" = Option<f64>, Query, description = "Cases at most this old"), ("limit" = Option<i64>, Query, description = "At most this many (default 50, at most api.max_page_size)")),
    security(("session" = [])),
    responses(
        (status = 200, description = "`{cases: [...], counts}`", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn cases(
    State(s): State<ApiState>,
    me: Viewer,
    Query(filter): Query<CaseFilter>,
    Query(page): Query<Limit>,
) -> ApiResult<Value> {
    let limit = page.within(s.settings.api.max_page_size);
    let cases = s.store.list_cases(&filter, me.role, limit).await?;
    let counts = s.store.queue_counts(me.role).await?;
    Ok(Json(json!({ "cases": cases, "counts": counts })))
}

/// One case with its scores, why it was queued, version, priority and claim.
#[utoipa::path(
    get,
    path = "/v1/cases/{id}",
    tag = "review",
    params(("id" = i64, Path, description = "The case")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The case", body = serde_json::Value),
        crate::error::NotSignedIn,
        crate::error::RoleMayNotSee,
        crate::error::CaseOrItemUnknown,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn case(
    State(s): State<ApiState>,
    me: Viewer,
    Path(id): Path<i64>,
) -> ApiResult<Value> {
    Ok(Json(json!(s.store.case_for(id, me.role).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    /// The item (`POST /v1/decisions` only; a case names its item).
    #[serde(default)]
    item_id: Option<String>,
    /// The item version decided (`POST /v1/decisions`; default: the indexed version).
    #[serde(default)]
    item_version: Option<u64>,
    /// `suppress` or `restore`.
    action: String,
    /// A policy reason code (`[a-z0-9_.-]`, 1 to 64 characters).
    reason: String,
    /// At most 2,000 characters.
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

/// Decides a case: records the decision, resolves the case, publishes the verdict (outbox).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/decision",
    tag = "review",
    params(("id" = i64, Path, description = "The case")),
    request_body = DecisionBody,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The decision", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleOrCsrf,
        crate::error::CaseOrItemUnknown,
        crate::error::CaseConflict,
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
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

/// Decides any item (its cases rule it as on the case route).
#[utoipa::path(
    post,
    path = "/v1/decisions",
    tag = "review",
    request_body = DecisionBody,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The decision", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleOrCsrf,
        crate::error::CaseOrItemUnknown,
        crate::error::CaseConflict,
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
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
