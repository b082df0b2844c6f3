//! The HTTP API role: public search, item and review endpoints, metrics and health, plus the
//! outbox relay that publishes moderator decisions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use cordon_domain::{Action, Visibility};
use cordon_index::{PlainQuery, SearchHandle};
use cordon_review::{
    AccountChange, CaseFilter, ChannelDecision, DecisionRequest, NewReport, ReportLane,
    ReportLimits, ReportOutcome, ReviewError, ReviewStore, Role,
};
use cordon_stream::{Publisher, Record};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::auth::{self, Actor, Admin, Viewer};
use crate::config::Config;
use crate::extract::{Json, Path, Query};
use crate::metrics::Metrics;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct ApiState {
    /// Configuration.
    pub config: Arc<Config>,
    /// Metrics.
    pub metrics: Metrics,
    /// The search index.
    pub search: SearchHandle,
    /// The review queue.
    pub store: ReviewStore,
    /// Per-client rate limits of the public routes.
    pub limits: Arc<crate::limits::RateLimits>,
    /// The console's media proxy.
    pub media: Arc<crate::media::MediaProxy>,
}

/// An error answered as JSON `{"error": ...}` with a fitting status.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        let status = match &e {
            ReviewError::NotFound(_) => StatusCode::NOT_FOUND,
            ReviewError::Invalid(_) => StatusCode::BAD_REQUEST,
            ReviewError::Conflict(_) => StatusCode::CONFLICT,
            ReviewError::Forbidden(_) => StatusCode::FORBIDDEN,
            ReviewError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ReviewError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            _ if e.is_bad_input() => {
                warn!(error = %e, "the review database refused a value");
                return ApiError(
                    StatusCode::BAD_REQUEST,
                    "invalid request: a value the review database cannot store".into(),
                );
            }
            _ if e.is_unavailable() => {
                warn!(error = %e, "review database unavailable");
                return ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the review database is unavailable; try again shortly".into(),
                );
            }
            _ => {
                error!(error = %e, "review database error");
                return ApiError::internal();
            }
        };
        ApiError(status, e.to_string())
    }
}

impl From<cordon_index::IndexError> for ApiError {
    fn from(e: cordon_index::IndexError) -> Self {
        error!(error = %e, "index error");
        ApiError::internal()
    }
}

impl ApiError {
    /// A failure inside Cordon: the answer names no path, query or message (the log does).
    pub fn internal() -> ApiError {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (logged)".into(),
        )
    }

    /// A bad request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs a blocking index read off the async worker threads.
async fn index_read<T, F>(read: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, cordon_index::IndexError> + Send + 'static,
{
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| {
            error!(error = %e, "index read task failed");
            ApiError::internal()
        })?
        .map_err(ApiError::from)
}

/// The committed index state of one item.
pub(crate) async fn lookup(
    s: &ApiState,
    id: &str,
) -> Result<Option<cordon_index::ItemState>, ApiError> {
    let search = s.search.clone();
    let id = id.to_string();
    index_read(move || search.get(&id)).await
}

/// The public search, item, review and account routes and the console, behind sign-in.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/v1/session",
            post(auth::login).get(auth::whoami).delete(auth::logout),
        )
        .route("/v1/accounts", get(accounts).post(add_account))
        .route("/v1/accounts/{username}", patch(update_account))
        .route("/v1/search", get(search))
        .route("/v1/items/{*id}", get(item))
        .route("/v1/cases", get(cases))
        .route("/v1/cases/{id}", get(case))
        .route("/v1/cases/claim", post(claim))
        .route("/v1/cases/bulk-decision", post(decide_bulk))
        .route("/v1/cases/{id}/decision", post(decide_case))
        .route("/v1/cases/{id}/escalate", post(escalate))
        .route("/v1/audit", get(audit_log))
        .route("/v1/stats", get(stats))
        .route("/v1/reports", post(report))
        .route("/v1/channel-decisions", post(decide_channel))
        .route("/v1/decisions", post(decide_item))
        .merge(crate::console::routes())
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.api.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::limits::rate_limit,
        ))
        .with_state(state)
}

/// What every process serves, whatever its roles: metrics and health.
#[derive(Clone)]
pub struct OpsState {
    /// Metrics.
    pub metrics: Metrics,
    /// The review database, when the process uses one (checked by `/readyz`).
    pub store: Option<ReviewStore>,
}

/// `/healthz` and `/readyz`.
pub fn health(ops: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(ops)
}

/// The operations listener of every process: `/metrics` and health.
pub fn ops_router(ops: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(ops.clone())
        .merge(health(ops))
}

/// `app` behind request metrics, a body-read timeout (408) and a whole-request timeout (503);
/// an unknown route or method answers the JSON error shape too.
pub fn with_limits(app: Router, ops: OpsState, api: &crate::config::ApiConfig) -> Router {
    app.fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(ops, observe))
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_secs(api.body_timeout_secs),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(api.request_timeout_secs),
        ))
}

/// Middleware: an error answer to a request that carried a body says `Connection: close`. The
/// body may not have been read (a rejection, 413, 401 before the handler), and then the server
/// closes the connection after answering; saying so keeps clients from sending their next
/// request into it.
async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let has_body = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || request
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING);
    let mut response = next.run(request).await;
    if has_body && (response.status().is_client_error() || response.status().is_server_error()) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

async fn observe(State(state): State<OpsState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .http_seconds
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}

#[derive(Deserialize)]
struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(default = "one")]
    page: usize,
    #[serde(default = "twenty")]
    per_page: usize,
}

fn one() -> usize {
    1
}

fn twenty() -> usize {
    20
}

async fn search(State(s): State<ApiState>, Query(p): Query<SearchParams>) -> ApiResult<Value> {
    let limits = &s.config.api;
    if p.page == 0 || p.per_page == 0 || p.per_page > limits.max_page_size {
        return Err(ApiError::bad_request(format!(
            "page must be >= 1 and per_page between 1 and {}",
            limits.max_page_size
        )));
    }
    if p.q.len() > limits.max_query_bytes {
        return Err(ApiError::bad_request(format!(
            "q is at most {} bytes",
            limits.max_query_bytes
        )));
    }
    let offset = (p.page - 1).saturating_mul(p.per_page);
    if offset.saturating_add(p.per_page) > limits.max_search_depth {
        return Err(ApiError::bad_request(format!(
            "search pages go {} results deep at most; narrow the query",
            limits.max_search_depth
        )));
    }
    let query = PlainQuery::parse(&p.q).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let search = s.search.clone();
    let page = index_read(move || search.search(&query, offset, p.per_page)).await?;
    Ok(Json(json!({
        "total": page.total,
        "page": p.page,
        "per_page": p.per_page,
        "items": page.items.into_iter().map(|h| h.item).collect::<Vec<_>>(),
    })))
}

async fn item(State(s): State<ApiState>, me: Viewer, Path(id): Path<String>) -> ApiResult<Value> {
    let state = lookup(&s, &id).await?;
    let (cases, decisions) = s.store.history(&id, me.role).await?;
    let Some(state) = state else {
        if cases.is_empty() && decisions.is_empty() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("item {id} not found"),
            ));
        }
        return Ok(Json(
            json!({ "id": id, "indexed": false, "cases": cases, "decisions": decisions }),
        ));
    };
    let channel_suppressed = match &state.content {
        Some(c) => {
            let search = s.search.clone();
            let channel = c.channel.id.clone();
            index_read(move || search.channel_blocked(&channel)).await?
        }
        None => false,
    };
    Ok(Json(json!({
        "id": id,
        "indexed": true,
        "visibility": state.visibility,
        "channel_suppressed": channel_suppressed,
        "verdict": state.verdict(),
        "content": state.content,
        "verdicts": state.verdicts,
        "cases": cases,
        "decisions": decisions,
    })))
}

async fn claim(State(s): State<ApiState>, Actor(me): Actor) -> ApiResult<Value> {
    let lease = Duration::from_secs(s.config.api.claim_lease_secs);
    let case = s.store.claim_next(&me.username, me.role, lease).await?;
    Ok(Json(json!({ "case": case })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalateBody {
    #[serde(default)]
    version: Option<i32>,
    #[serde(default)]
    note: Option<String>,
}

async fn escalate(
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

/// A user report, from the HTTP API or the reports topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    item_id: String,
    reason: String,
    #[serde(default)]
    details: Option<String>,
    reporter: String,
    /// `<key id>:<hex HMAC-SHA256>` of the reporter for this item, by the platform's backend or
    /// a trusted flagger (see [`report_mac`]).
    #[serde(default)]
    signature: Option<String>,
}

/// Longest reporter id a report may carry, in bytes.
const MAX_REPORTER_BYTES: usize = 128;

/// The MAC a report signature carries: over one reporter reporting one item, so a signature can
/// be neither replayed for other items nor lent to other reporters. The platform's backend
/// computes the same: `hex(HMAC-SHA256(key, "cordon-report-v1\n" + item_id + "\n" + reporter))`.
fn report_mac(secret: &[u8], item_id: &str, reporter: &str) -> hmac::Hmac<sha2::Sha256> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(format!("cordon-report-v1\n{item_id}\n{reporter}").as_bytes());
    mac
}

/// Who vouches for a report's reporter: its lane, the reporter id namespaced by lane (so an
/// unverified string never shares a track record with a signed identity), and a trusted
/// flagger's weight. A missing signature (unless `reports.accept_unsigned`), an unknown key or a
/// wrong signature is refused with 401.
fn vouch(s: &ApiState, body: &ReportBody) -> Result<(ReportLane, String, Option<f32>), ApiError> {
    use hmac::Mac;
    let cfg = &s.config.reports;
    let refused = |why: &str| ApiError(StatusCode::UNAUTHORIZED, why.to_string());
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
    let (key_id, mac) = signature
        .split_once(':')
        .ok_or_else(|| refused("signature must be `<key id>:<hex HMAC>`"))?;
    let mac = hex::decode(mac).map_err(|_| refused("signature must be `<key id>:<hex HMAC>`"))?;
    let (lane, secret, reporter, weight) = if let Some(key) = cfg.platform_keys.get(key_id) {
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
            Some(f.weight),
        )
    } else {
        return Err(refused("the signature names an unknown key"));
    };
    report_mac(secret.expose(), &body.item_id, &body.reporter)
        .verify_slice(&mac)
        .map_err(|_| refused("the signature does not match"))?;
    Ok((lane, reporter, weight))
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
    let (lane, reporter, flagger_weight) = vouch(s, &body).map_err(ReportFailure::Refused)?;
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
        return Err(ReportFailure::Refused(ApiError(
            StatusCode::NOT_FOUND,
            "no such item in public search".into(),
        )));
    };
    let r = &s.config.reports;
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
                flagger_weight,
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

async fn report(State(s): State<ApiState>, Json(body): Json<ReportBody>) -> ApiResult<Value> {
    let outcome = file_report(&s, body).await;
    let label = if outcome.is_ok() { "filed" } else { "refused" };
    s.metrics.reports.with_label_values(&["http", label]).inc();
    Ok(Json(json!(outcome?)))
}

/// Files the reports that arrive on the reports topic until `shutdown`. A report that cannot
/// be filed (bad JSON, bad signature, unknown item, rate limit, a value the database refuses) is
/// logged, counted and skipped; only while the database is unavailable does the consumer wait
/// and retry, storing no offset.
pub async fn consume_reports(
    s: ApiState,
    consumer: cordon_stream::rdkafka::consumer::StreamConsumer,
    shutdown: CancellationToken,
) {
    use cordon_stream::rdkafka::Message;
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return,
            b = cordon_stream::next_batch(&consumer, 100, Duration::from_millis(20), Duration::from_millis(500)) => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "receiving reports failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for message in &batch {
            let parsed = message
                .payload()
                .ok_or_else(|| "empty message".to_string())
                .and_then(|p| {
                    if p.len() > s.config.api.max_body_bytes {
                        return Err(format!("{} bytes, over api.max_body_bytes", p.len()));
                    }
                    serde_json::from_slice::<ReportBody>(p).map_err(|e| e.to_string())
                });
            let outcome = match parsed {
                Err(e) => Err(ApiError::bad_request(e)),
                Ok(body) => loop {
                    match file_report(&s, body.clone()).await {
                        Err(ReportFailure::Store(e)) if e.is_unavailable() => {
                            warn!(error = %e, "database unavailable; the report waits");
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            }
                        }
                        other => break other.map_err(ApiError::from),
                    }
                },
            };
            let label = match &outcome {
                Ok(_) => "filed",
                Err(ApiError(_, e)) => {
                    warn!(offset = message.offset(), error = %e, "report from the topic skipped");
                    "skipped"
                }
            };
            s.metrics.reports.with_label_values(&["kafka", label]).inc();
        }
        if let Err(e) = cordon_stream::store_offsets(&consumer, &batch) {
            warn!(error = %e, "storing report offsets failed");
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelDecisionBody {
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

async fn decide_channel(
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
struct BulkBody {
    case_ids: Vec<i64>,
    action: String,
    reason: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    no_requeue: bool,
}

async fn decide_bulk(
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

async fn stats(State(s): State<ApiState>, _: Viewer) -> ApiResult<Value> {
    Ok(Json(json!(s.store.queue_report().await?)))
}

#[derive(Deserialize)]
struct AuditParams {
    case_id: Option<i64>,
    #[serde(default = "fifty")]
    limit: i64,
}

async fn audit_log(
    State(s): State<ApiState>,
    me: Viewer,
    Query(p): Query<AuditParams>,
) -> ApiResult<Value> {
    let limit = p.limit.clamp(1, s.config.api.max_page_size as i64);
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

fn fifty() -> i64 {
    50
}

async fn cases(
    State(s): State<ApiState>,
    me: Viewer,
    Query(filter): Query<CaseFilter>,
    Query(page): Query<Limit>,
) -> ApiResult<Value> {
    let limit = page
        .limit
        .unwrap_or(50)
        .clamp(1, s.config.api.max_page_size as i64);
    let cases = s.store.list_cases(&filter, me.role, limit).await?;
    let counts = s.store.queue_counts(me.role).await?;
    Ok(Json(json!({ "cases": cases, "counts": counts })))
}

async fn case(State(s): State<ApiState>, me: Viewer, Path(id): Path<i64>) -> ApiResult<Value> {
    Ok(Json(json!(s.store.case_for(id, me.role).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
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
        _ => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("action must be `suppress` or `restore`, not `{name}`"),
        )),
    }
}

async fn record(s: &ApiState, req: DecisionRequest) -> ApiResult<Value> {
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

async fn decide_case(
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

async fn decide_item(
    State(s): State<ApiState>,
    Actor(me): Actor,
    Json(body): Json<DecisionBody>,
) -> ApiResult<Value> {
    let action = moderator_action(&body.action)?;
    let item_id = body
        .item_id
        .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "item_id is required".into()))?;
    let item_version = match body.item_version {
        Some(v) => v,
        None => {
            let state = lookup(&s, &item_id).await?;
            state
                .and_then(|st| st.content.map(|c| c.version))
                .ok_or_else(|| {
                    ApiError(
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

fn parse_role(name: &str) -> Result<Role, ApiError> {
    Role::parse(name).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("role must be moderator, senior or admin, not `{name}`"),
        )
    })
}

async fn accounts(State(s): State<ApiState>, Admin(_): Admin) -> ApiResult<Value> {
    Ok(Json(json!({ "accounts": s.store.accounts().await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    username: String,
    role: String,
    /// Absent for an account that signs in only through the SSO proxy.
    #[serde(default)]
    password: Option<String>,
}

async fn add_account(
    State(s): State<ApiState>,
    Admin(me): Admin,
    Json(body): Json<NewAccountBody>,
) -> ApiResult<Value> {
    let role = parse_role(&body.role)?;
    let account = s
        .store
        .add_account(&me.username, &body.username, role, body.password)
        .await?;
    info!(admin = %me.username, username = %account.username, role = role.as_str(), "account created");
    Ok(Json(json!(account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountChangeBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    password: Option<String>,
}

async fn update_account(
    State(s): State<ApiState>,
    Admin(me): Admin,
    Path(username): Path<String>,
    Json(body): Json<AccountChangeBody>,
) -> ApiResult<Value> {
    if username == me.username && (body.disabled == Some(true) || body.role.is_some()) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "admins do not disable or demote themselves; ask another admin".into(),
        ));
    }
    let change = AccountChange {
        role: body.role.as_deref().map(parse_role).transpose()?,
        disabled: body.disabled,
        password: body.password,
    };
    let account = s
        .store
        .update_account(&me.username, &username, change)
        .await?;
    info!(admin = %me.username, username = %account.username, "account changed");
    Ok(Json(json!(account)))
}

async fn metrics(State(s): State<OpsState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn readyz(State(s): State<OpsState>) -> Response {
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

/// Publishes moderator verdicts from the outbox until `shutdown`, and refreshes queue gauges.
pub async fn relay_outbox(
    store: ReviewStore,
    publisher: Publisher,
    config: Arc<Config>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let interval = Duration::from_millis(config.api.outbox_interval_ms);
    let mut last_stats = Instant::now() - Duration::from_secs(60);
    loop {
        let topic = config.kafka.verdicts_topic.clone();
        let publisher = &publisher;
        let result = store
            .relay_outbox(500, |rows| async move {
                let records: Vec<Record> = rows
                    .into_iter()
                    .map(|r| Record {
                        topic: topic.clone(),
                        key: Some(r.key),
                        payload: r.payload.into_bytes(),
                        headers: Vec::new(),
                    })
                    .collect();
                let refused = publisher
                    .publish_all(&records)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(refused
                    .into_iter()
                    .map(|r| {
                        error!(item_id = %records[r.index].key.as_deref().unwrap_or(""), bytes = records[r.index].payload.len(), error = %r.error, "a moderator verdict can never be published; set aside in the outbox");
                        (r.index, r.error.to_string())
                    })
                    .collect())
            })
            .await;
        let published = match result {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "outbox relay failed; decisions stay queued");
                metrics.retries.with_label_values(&["outbox"]).inc();
                0
            }
        };
        if published > 0 {
            info!(published, "moderator verdicts published");
        }
        if last_stats.elapsed() >= Duration::from_secs(2) || published > 0 {
            last_stats = Instant::now();
            if let Ok(stats) = store.stats().await {
                metrics.queue_depth.set(stats.open_cases);
                metrics
                    .oldest_case_age_seconds
                    .set(stats.oldest_open_age_seconds as i64);
                metrics.outbox_pending.set(stats.outbox_pending);
                metrics.outbox_refused.set(stats.outbox_refused);
            }
        }
        if published == 500 {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
